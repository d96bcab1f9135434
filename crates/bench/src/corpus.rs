//! A generated site: pages in the scraped page format with a Zipf-like vocabulary, prev/next
//! links and Recommend blocks (some pointing at pages never written, which load as stubs), and
//! queries made from the pages the way people ask: title paraphrases, one or two words, typos,
//! chatty sentences, and words the knowledge base has never seen.
//!
//! Everything comes from one seeded PRNG, split into independent streams per page and purpose,
//! so a run is reproducible and a page's text does not depend on how many pages there are.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use crate::rng::SplitMix as Rng;

/// Ranks drawn with probability proportional to `1 / (rank + 1)^s`.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|r| {
                total += 1.0 / ((r + 1) as f64).powf(s);
                total
            })
            .collect();
        Zipf { cumulative }
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let u = rng.unit() * total;
        self.cumulative.partition_point(|&c| c <= u).min(self.cumulative.len().saturating_sub(1))
    }
}

// ---------------------------------------------------------------------------------------------
// Vocabulary.

/// Real words mixed into the generated ones, so synonyms, irregular forms and stemming see some
/// of the words they were made for.
const REAL_WORDS: &[&str] = &[
    "running",
    "knee",
    "pain",
    "exercise",
    "muscle",
    "weight",
    "training",
    "shoes",
    "stretch",
    "warm",
    "injury",
    "swimming",
    "cycling",
    "diet",
    "protein",
    "sleep",
    "heart",
    "breathing",
    "posture",
    "strength",
    "calves",
    "abdominal",
    "fitness",
    "beginner",
    "treadmill",
    "yoga",
    "recovery",
    "hydration",
    "marathon",
    "sprint",
    "jogging",
    "walking",
    "stairs",
    "shoulder",
    "ankle",
    "wrist",
    "hip",
    "joint",
    "bone",
    "fat",
    "calorie",
    "metabolism",
    "energy",
    "breakfast",
    "vegetables",
    "water",
    "coffee",
    "tea",
    "sugar",
    "salt",
    "blood",
    "pressure",
    "doctor",
    "therapy",
    "massage",
    "ice",
    "heat",
    "bandage",
    "brace",
    "pads",
    "helmet",
    "bicycle",
    "basketball",
    "football",
    "tennis",
    "golf",
    "rope",
    "jump",
    "squat",
    "plank",
    "lunge",
    "deadlift",
    "dumbbell",
    "barbell",
    "gym",
    "coach",
    "schedule",
    "routine",
    "habit",
    "motivation",
    "goal",
    "progress",
    "speed",
    "distance",
    "pace",
    "endurance",
    "flexibility",
    "balance",
    "core",
    "chest",
    "arms",
    "legs",
    "thigh",
    "foot",
    "feet",
    "toe",
    "heel",
    "laptop",
    "github",
    "markdown",
    "browser",
    "password",
    "email",
    "account",
    "server",
    "database",
    "update",
    "install",
    "python",
    "script",
    "error",
    "file",
    "folder",
    "backup",
    "network",
    "printer",
    "keyboard",
    "screen",
    "battery",
    "phone",
    "delete",
    "remove",
    "picture",
    "video",
    "change",
    "problem",
    "fix",
    "start",
    "stop",
    "create",
    "search",
    "display",
    "children",
    "people",
    "women",
    "ran",
];

const ONSETS: &[&str] = &[
    "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "br", "cr", "dr", "fl", "gr", "pl",
    "pr", "sh", "sl", "sp", "st", "tr", "ch", "th",
];
const VOWELS: &[&str] = &["a", "e", "i", "o", "u", "a", "e", "o", "ai", "ea", "ee", "oo", "ou", "ie"];
const CODAS: &[&str] = &["", "", "", "n", "r", "s", "t", "l", "m", "nd", "nt", "st", "ck", "ng", "rk", "ll"];
/// Endings that make families the stemmer folds together, as in real text.
const SUFFIXES: &[&str] = &["", "", "", "", "", "", "s", "s", "ing", "ed", "er", "ness", "ment", "ly", "tion"];
/// Syllables no vocabulary word is made of, for out-of-vocabulary queries.
const ALIEN_ONSETS: &[&str] = &["zy", "qu", "xa", "jy", "vy", "zo", "xu", "qy"];
const ALIEN_CODAS: &[&str] = &["x", "zz", "q", "jx", "yx", "zq"];

/// Function words between the content words of generated sentences.
const FUNCTION_WORDS: &[&str] = &[
    "the", "a", "an", "of", "to", "and", "in", "is", "it", "you", "that", "for", "on", "with", "as", "are", "be",
    "this", "your", "can", "or", "by", "from", "at", "not", "have", "will", "if", "more", "when", "which", "may",
    "should", "do", "so", "but", "their", "they", "we", "its", "into", "than", "some", "most", "very", "after",
    "before", "about", "all", "many", "there", "been", "has", "was", "other", "these", "our", "my",
];

/// Words of the generated texts: content words ranked by frequency.
struct Vocabulary {
    words: Vec<String>,
    zipf: Zipf,
    /// Mid-frequency ranks a page's topic is drawn from.
    topic_zipf: Zipf,
}

/// Distinct content words; with inflections the index sees about twice as many surface forms.
const VOCABULARY: usize = 5000;
/// The most common words are everywhere; a page's topic words come from below them.
const TOPIC_OFFSET: usize = 40;

impl Vocabulary {
    fn new(seed: u64) -> Self {
        // The matcher's English stop words: NLTK's list, also without apostrophes ("dont").
        let stop_words: HashSet<String> =
            stop_words::lookup("en").unwrap_or(&[]).iter().flat_map(|w| [w.to_string(), w.replace('\'', "")]).collect();
        let mut rng = Rng::stream(seed, 0, VOCABULARY_STREAM);
        let mut seen: HashSet<String> = HashSet::new();
        let mut words: Vec<String> = Vec::with_capacity(VOCABULARY);
        for w in REAL_WORDS {
            if seen.insert(w.to_string()) {
                words.push(w.to_string());
            }
        }
        while words.len() < VOCABULARY {
            let w = made_up_word(&mut rng);
            if w.len() >= 3 && !stop_words.contains(&w) && seen.insert(w.clone()) {
                words.push(w);
            }
        }
        // Real words at random ranks, not all at the top.
        for i in (1..words.len()).rev() {
            let j = rng.below(i + 1);
            words.swap(i, j);
        }
        let topic_zipf = Zipf::new(words.len().saturating_sub(TOPIC_OFFSET).max(1), 0.9);
        Vocabulary { zipf: Zipf::new(words.len(), 1.0), topic_zipf, words }
    }

    fn common(&self, rng: &mut Rng) -> u32 {
        self.zipf.sample(rng) as u32
    }

    fn topical(&self, rng: &mut Rng) -> u32 {
        ((self.topic_zipf.sample(rng) + TOPIC_OFFSET).min(self.words.len().saturating_sub(1))) as u32
    }

    fn word(&self, id: u32) -> &str {
        self.words.get(id as usize).map_or("", String::as_str)
    }
}

fn made_up_word(rng: &mut Rng) -> String {
    let syllables = [1, 2, 2, 2, 3, 3][rng.below(6)];
    let mut w = String::new();
    for _ in 0..syllables {
        w.push_str(rng.pick(ONSETS));
        w.push_str(rng.pick(VOWELS));
        w.push_str(rng.pick(CODAS));
    }
    w.push_str(rng.pick(SUFFIXES));
    w
}

fn alien_word(rng: &mut Rng) -> String {
    let mut w = String::new();
    for _ in 0..rng.between(1, 2) {
        w.push_str(rng.pick(ALIEN_ONSETS));
        w.push_str(rng.pick(VOWELS));
        w.push_str(rng.pick(ALIEN_CODAS));
    }
    w
}

// ---------------------------------------------------------------------------------------------
// Pages.

/// Stream purposes: each page has its own stream per purpose.
const VOCABULARY_STREAM: u64 = 1;
const TOPIC_STREAM: u64 = 2;
const TITLE_STREAM: u64 = 3;
const BODY_STREAM: u64 = 4;
const LINK_STREAM: u64 = 5;
pub const QUERY_STREAM: u64 = 6;
pub const WARM_UP_STREAM: u64 = 7;

/// Words per page topic: titles and a share of the body come from these.
const TOPIC_WORDS: usize = 10;
/// Share of a sentence's content words taken from the page's topic.
const TOPIC_SHARE: f64 = 0.35;
/// Share of a sentence's words that are function words.
const FUNCTION_SHARE: f64 = 0.4;
/// Pages linked from Recommend blocks but not written, which the loader turns into stubs: one
/// for every this many pages.
const STUB_EVERY: usize = 10;

/// Question shapes of titles; `{}` is replaced by topic words.
const TITLE_FORMS: &[(&str, &str)] = &[
    ("How to", ""),
    ("What causes", "?"),
    ("Why does", "?"),
    ("Tips for", ""),
    ("Can", "help?"),
    ("Which", "is best?"),
    ("Is it safe to", "?"),
    ("", ""),
];

/// What queries and Recommend blocks need to know about a page.
pub struct PageMeta {
    pub title: String,
    /// Vocabulary ids of the topic words in the title.
    title_words: Vec<u32>,
    /// The first words of the first paragraph, cut with an ellipsis as sites do.
    teaser: String,
}

/// The generated knowledge base: `pages` pages written, and `metas` for them plus the pages that
/// are only linked (stubs).
pub struct Corpus {
    seed: u64,
    pages: usize,
    vocabulary: Vocabulary,
    pub metas: Vec<PageMeta>,
}

/// What the loader should find in a written corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expected {
    pub articles: usize,
    pub stubs: usize,
    pub sections: usize,
}

impl Corpus {
    pub fn new(seed: u64, pages: usize) -> Self {
        let vocabulary = Vocabulary::new(seed);
        let total = pages + pages / STUB_EVERY;
        let mut seen_titles = HashSet::with_capacity(total);
        let metas = (0..total)
            .map(|i| {
                let (title, title_words) = unique_title(&vocabulary, seed, i, &mut seen_titles);
                let body = page_body(&vocabulary, seed, i);
                PageMeta { title, title_words, teaser: teaser(body.first().map_or("", String::as_str)) }
            })
            .collect();
        Corpus { seed, pages, vocabulary, metas }
    }

    /// The page indexes a page recommends: other pages, some of them never written.
    fn recommended(&self, i: usize) -> Vec<usize> {
        let mut rng = Rng::stream(self.seed, i as u64, LINK_STREAM);
        let total = self.metas.len();
        let want = rng.between(5, 15).min(total.saturating_sub(1));
        let mut out: Vec<usize> = Vec::with_capacity(want);
        for _ in 0..want * 4 {
            if out.len() >= want {
                break;
            }
            let j = rng.below(total);
            if j != i && !out.contains(&j) {
                out.push(j);
            }
        }
        out
    }

    /// The text of page `i` with paragraphs `body`, in the scraped page format.
    fn page_text(&self, i: usize, body: &[String]) -> String {
        let meta = &self.metas[i];
        let mut out = String::with_capacity(4096);
        let _ = write!(out, "{0}\n\n{0}\n\n", meta.title);
        for p in body {
            out.push_str(p);
            out.push_str("\n\n");
        }
        if i > 0 {
            let _ = write!(out, "<<:\u{a0} {}\n\n", self.metas[i - 1].title);
        }
        if i + 1 < self.pages {
            let _ = write!(out, ">>:\u{a0} {}\n\n", self.metas[i + 1].title);
        }
        let recommended = self.recommended(i);
        if !recommended.is_empty() {
            out.push_str("Recommend\n\n");
            for j in recommended {
                let _ = write!(out, "{}\n\n{}\n\n", self.metas[j].title, self.metas[j].teaser);
            }
        }
        out
    }

    /// Writes the pages into `dir` and returns what loading them should give.
    pub fn write(&self, dir: &Path) -> Result<Expected, String> {
        let mut sections = 0;
        let mut stubs = HashSet::new();
        for i in 0..self.pages {
            let body = page_body(&self.vocabulary, self.seed, i);
            let path = dir.join(format!("page-{i:06}.txt"));
            fs::write(&path, self.page_text(i, &body)).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            sections += body.len();
            stubs.extend(self.recommended(i).into_iter().filter(|&j| j >= self.pages));
        }
        Ok(Expected { articles: self.pages, stubs: stubs.len(), sections })
    }
}

/// A title not used before (titles are article identities: two pages with one title are an
/// error), with the topic words it holds.
fn unique_title(v: &Vocabulary, seed: u64, i: usize, seen: &mut HashSet<String>) -> (String, Vec<u32>) {
    let mut attempt = 0;
    loop {
        let (title, words) = title(v, seed, i, attempt);
        if seen.insert(title.to_lowercase()) {
            return (title, words);
        }
        attempt += 1;
    }
}

fn title(v: &Vocabulary, seed: u64, i: usize, attempt: u64) -> (String, Vec<u32>) {
    let topic = page_topic(v, seed, i);
    let mut rng = Rng::stream(seed, i as u64, TITLE_STREAM + (attempt << 8));
    let (lead, tail) = TITLE_FORMS[rng.below(TITLE_FORMS.len())];
    let frame = lead.split_whitespace().count() + tail.split_whitespace().filter(|w| *w != "?").count();
    // 5 to 10 words in all; later attempts add a word, which soon makes any title unique.
    let want = rng.between(5, 10).saturating_sub(frame).max(2) + attempt as usize;
    let mut words: Vec<u32> = Vec::with_capacity(want);
    while words.len() < want {
        let w = topic.get(rng.below(topic.len())).copied().unwrap_or(0);
        // A repeated topic word gives way to another topical word (which may repeat: rarely).
        words.push(if words.contains(&w) { v.topical(&mut rng) } else { w });
    }
    let mut text = String::from(lead);
    for &w in &words {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(v.word(w));
    }
    match tail {
        "" => {}
        "?" => text.push('?'),
        t => {
            text.push(' ');
            text.push_str(t);
        }
    }
    (capitalise(&text), words)
}

fn page_topic(v: &Vocabulary, seed: u64, i: usize) -> Vec<u32> {
    let mut rng = Rng::stream(seed, i as u64, TOPIC_STREAM);
    (0..TOPIC_WORDS).map(|_| v.topical(&mut rng)).collect()
}

/// The paragraphs of page `i`: 3 to 7, of 40 to 120 words.
fn page_body(v: &Vocabulary, seed: u64, i: usize) -> Vec<String> {
    let topic = page_topic(v, seed, i);
    let mut rng = Rng::stream(seed, i as u64, BODY_STREAM);
    let n = rng.between(3, 7);
    (0..n).map(|_| paragraph(v, &topic, &mut rng)).collect()
}

fn paragraph(v: &Vocabulary, topic: &[u32], rng: &mut Rng) -> String {
    let target = rng.between(40, 120);
    let mut out = String::with_capacity(target * 8);
    let mut count = 0;
    while count < target {
        let len = rng.between(6, 18).min(target - count).max(3);
        sentence(v, topic, len, rng, &mut out);
        count += len;
    }
    out
}

fn sentence(v: &Vocabulary, topic: &[u32], len: usize, rng: &mut Rng, out: &mut String) {
    if !out.is_empty() {
        out.push(' ');
    }
    let start = out.len();
    for k in 0..len {
        if k > 0 {
            out.push(if rng.chance(0.06) { ',' } else { ' ' });
            if out.ends_with(',') {
                out.push(' ');
            }
        }
        if rng.chance(FUNCTION_SHARE) {
            out.push_str(rng.pick(FUNCTION_WORDS));
        } else {
            let w = if rng.chance(TOPIC_SHARE) { topic[rng.below(topic.len())] } else { v.common(rng) };
            out.push_str(v.word(w));
            // Now and then a hyphenated compound, as in "warm-up".
            if rng.chance(0.01) {
                out.push('-');
                out.push_str(v.word(v.common(rng)));
            }
        }
    }
    out.push('.');
    let first = out[start..].chars().next().map(|c| c.to_uppercase().collect::<String>());
    if let Some(upper) = first {
        let n = out[start..].chars().next().map_or(0, char::len_utf8);
        out.replace_range(start..start + n, &upper);
    }
}

fn teaser(paragraph: &str) -> String {
    let cut = paragraph.char_indices().nth(45).map_or(paragraph.len(), |(i, _)| i);
    format!("{}...", paragraph[..cut].trim_end())
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Queries.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The title with a word or two dropped.
    Title,
    /// One or two of the title's words.
    Short,
    /// A title paraphrase with misspelt words.
    Typo,
    /// A title paraphrase inside a chatty sentence.
    Chatty,
    /// Words the knowledge base has never seen.
    Unknown,
}

pub const KINDS: [Kind; 5] = [Kind::Title, Kind::Short, Kind::Typo, Kind::Chatty, Kind::Unknown];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Title => "title",
            Kind::Short => "short",
            Kind::Typo => "typo",
            Kind::Chatty => "chatty",
            Kind::Unknown => "unknown",
        }
    }

    /// Share of the query mix, in percent.
    fn share(self) -> usize {
        match self {
            Kind::Title => 30,
            Kind::Short => 20,
            Kind::Typo => 20,
            Kind::Chatty => 20,
            Kind::Unknown => 10,
        }
    }
}

const CHATTY_OPENINGS: &[&str] = &[
    "hi, ",
    "hello there, ",
    "hey, quick question: ",
    "so I was wondering ",
    "can you please tell me ",
    "I'd like to know ",
    "good morning! ",
    "ok so ",
    "my friend asked me ",
    "",
];
const CHATTY_ENDINGS: &[&str] =
    &["? thanks", " please", ", I've been trying for weeks", ", any advice?", " lol", "!!", " thank you so much", ""];
const QUESTION_WORDS: &[&str] = &["how", "what", "why", "how do i", "is it ok", "where", "when should i"];

pub struct Query {
    pub text: String,
    pub kind: Kind,
    /// The page it was made from (none for unknown words).
    pub target: Option<usize>,
}

impl Corpus {
    /// `n` queries of the mix in `Kind::share`, from the stream `purpose`.
    pub fn queries(&self, n: usize, purpose: u64) -> Vec<Query> {
        let mut rng = Rng::stream(self.seed, u64::MAX, purpose);
        (0..n).map(|_| self.query(&mut rng)).collect()
    }

    fn query(&self, rng: &mut Rng) -> Query {
        let mut roll = rng.below(100);
        let kind = KINDS
            .iter()
            .copied()
            .find(|k| {
                let hit = roll < k.share();
                roll = roll.saturating_sub(k.share());
                hit
            })
            .unwrap_or(Kind::Title);
        let target = rng.below(self.pages);
        let text = match kind {
            Kind::Title => self.paraphrase(target, rng),
            Kind::Short => self.short(target, rng),
            Kind::Typo => typos(&self.paraphrase(target, rng), rng),
            Kind::Chatty => {
                format!("{}{}{}", rng.pick(CHATTY_OPENINGS), self.paraphrase(target, rng), rng.pick(CHATTY_ENDINGS))
            }
            Kind::Unknown => unknown(rng),
        };
        Query { text, kind, target: (kind != Kind::Unknown).then_some(target) }
    }

    /// The title's topic words, one or two dropped, after a question word.
    fn paraphrase(&self, i: usize, rng: &mut Rng) -> String {
        let mut words: Vec<&str> = self.metas[i].title_words.iter().map(|&w| self.vocabulary.word(w)).collect();
        let drop = rng.between(0, 2).min(words.len().saturating_sub(2));
        for _ in 0..drop {
            words.remove(rng.below(words.len()));
        }
        let mut q = String::from(rng.pick(QUESTION_WORDS));
        for w in words {
            q.push(' ');
            q.push_str(w);
        }
        q
    }

    fn short(&self, i: usize, rng: &mut Rng) -> String {
        let words = &self.metas[i].title_words;
        let a = words.get(rng.below(words.len())).copied().unwrap_or(0);
        let mut q = self.vocabulary.word(a).to_string();
        if rng.chance(0.5) {
            if let Some(&b) = words.get(rng.below(words.len())).filter(|&&b| b != a) {
                q.push(' ');
                q.push_str(self.vocabulary.word(b));
            }
        }
        q
    }
}

/// Misspells one or two of the longer words: a swap of neighbours, a dropped or a wrong letter.
fn typos(text: &str, rng: &mut Rng) -> String {
    let mut words: Vec<String> = text.split(' ').map(str::to_string).collect();
    let long: Vec<usize> = (0..words.len()).filter(|&i| words[i].chars().count() >= 5).collect();
    for _ in 0..rng.between(1, 2).min(long.len()) {
        let i = long[rng.below(long.len())];
        let mut chars: Vec<char> = words[i].chars().collect();
        // Not the first letter: people rarely get that one wrong.
        let at = rng.between(1, chars.len().saturating_sub(2).max(1));
        match rng.below(3) {
            0 if at + 1 < chars.len() => chars.swap(at, at + 1),
            1 => {
                chars.remove(at);
            }
            _ => chars[at] = (b'a' + rng.below(26) as u8) as char,
        }
        words[i] = chars.into_iter().collect();
    }
    words.join(" ")
}

fn unknown(rng: &mut Rng) -> String {
    let mut q = String::from(rng.pick(QUESTION_WORDS));
    for _ in 0..rng.between(1, 4) {
        q.push(' ');
        if rng.chance(0.3) {
            q.push_str(rng.pick(FUNCTION_WORDS));
            q.push(' ');
        }
        q.push_str(&alien_word(rng));
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(dir: &Path) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                (p.file_name().unwrap().to_string_lossy().into_owned(), fs::read_to_string(&p).unwrap())
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn generated_pages_are_deterministic_and_load() {
        let (a, b, c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let expected = Corpus::new(7, 40).write(a.path()).unwrap();
        Corpus::new(7, 40).write(b.path()).unwrap();
        Corpus::new(8, 40).write(c.path()).unwrap();
        assert_eq!(files(a.path()).len(), 40);
        assert_eq!(files(a.path()), files(b.path()), "one seed, one knowledge base");
        assert_ne!(files(a.path()), files(c.path()), "another seed, other pages");

        let loaded = articlebot_engine::load_knowledge(a.path()).unwrap();
        let stats = loaded.kb.stats();
        assert_eq!(stats.articles, 40);
        assert_eq!(stats.stubs, expected.stubs);
        assert_eq!(stats.sections, expected.sections);
        assert!(expected.stubs > 0, "some Recommend links point at pages not written");
        assert!((3 * 40..=7 * 40).contains(&stats.sections));
    }

    #[test]
    fn pages_load_as_articles_with_links_and_teasers() {
        let corpus = Corpus::new(3, 20);
        let dir = tempfile::tempdir().unwrap();
        corpus.write(dir.path()).unwrap();
        let kb = articlebot_engine::load_knowledge(dir.path()).unwrap().kb;
        let a = kb.articles.iter().find(|a| a.title == corpus.metas[5].title).expect("page 5 is an article");
        let words = a.title.split_whitespace().count();
        assert!((5..=12).contains(&words), "{}", a.title);
        let title = |i: Option<u32>| i.and_then(|i| kb.article(i)).map(|a| a.title.as_str());
        assert_eq!(title(a.prev), Some(corpus.metas[4].title.as_str()));
        assert_eq!(title(a.next), Some(corpus.metas[6].title.as_str()));
        assert!((5..=15).contains(&a.related.len()));
        for s in &a.sections {
            let n = s.text.split_whitespace().count();
            assert!((40..=130).contains(&n), "{n} words");
        }
        let stubs: Vec<_> = kb.articles.iter().filter(|a| a.is_stub()).collect();
        assert!(!stubs.is_empty());
        assert!(stubs.iter().all(|s| s.teaser.as_deref().is_some_and(|t| t.ends_with("..."))));
    }

    #[test]
    fn query_mix_is_deterministic_and_varied() {
        let corpus = Corpus::new(5, 50);
        let a: Vec<String> = corpus.queries(200, QUERY_STREAM).into_iter().map(|q| q.text).collect();
        let b: Vec<String> = corpus.queries(200, QUERY_STREAM).into_iter().map(|q| q.text).collect();
        assert_eq!(a, b);
        let kinds: HashSet<&str> = corpus.queries(200, QUERY_STREAM).iter().map(|q| q.kind.name()).collect();
        assert_eq!(kinds.len(), KINDS.len());
    }
}
