//! `articlebot bench`: generates a large knowledge base in the page format and measures load and
//! index time, query latency and memory.
//!
//! Everything generated comes from one seeded PRNG, split into independent streams per page and
//! purpose, so a run is reproducible and a page's text does not depend on how many pages there
//! are. The vocabulary has a Zipf-like frequency so postings lists are as skewed as in real text.
//! Queries are made from the pages the way people ask: title paraphrases, one or two words,
//! typos, chatty sentences, and words the knowledge base has never seen.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;

use super::Failure;
use crate::knowledge::{self, KbStats};
use crate::matching::normalize::Normalizer;
use crate::matching::{Decision, Intent, Matcher, Snippet};

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Pages to generate (each about five sections)
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pages: usize,
    /// Queries to time (after as many as 1000 warm-up queries)
    #[arg(long, default_value_t = 5_000, value_name = "Q")]
    queries: usize,
    /// Seed of the generator: the same seed gives the same pages and queries
    #[arg(long, default_value_t = 1, value_name = "S")]
    seed: u64,
    /// Write the knowledge base to DIR (new or empty) and keep it, instead of a temp dir
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// Print one JSON object instead of the report
    #[arg(long)]
    json: bool,
    /// Also write the timed queries to FILE, one a line (to replay them with `ask`)
    #[arg(long, value_name = "FILE")]
    queries_out: Option<PathBuf>,
}

/// Warm-up queries run before timing, so caches and the per-thread scratch are in steady state.
const WARM_UP: usize = 1000;
/// Results per query, as the bot asks for them.
const TOP: usize = 3;
/// Snippet length, as the bot shows it.
const SNIPPET_CHARS: usize = 600;

pub fn run(args: BenchArgs) -> Result<(), Failure> {
    if args.pages == 0 || args.queries == 0 {
        return Err(Failure::usage("--pages and --queries must be at least 1"));
    }
    let dir = BenchDir::create(args.keep.as_deref())?;
    let started = Instant::now();
    let corpus = Corpus::new(args.seed, args.pages);
    let expected = corpus.write(dir.path())?;
    let generate = started.elapsed();
    let queries = corpus.queries(args.queries, QUERY_STREAM);
    let warm_up = corpus.queries(args.queries.min(WARM_UP), WARM_UP_STREAM);
    if let Some(path) = &args.queries_out {
        let lines: String = queries.iter().map(|q| format!("{}\n", q.text)).collect();
        fs::write(path, lines).map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))?;
    }

    let report = measure(dir.path(), &corpus, &queries, &warm_up)?;
    if report
        .stats
        .is_some_and(|s| (s.articles, s.stubs, s.sections) != (expected.articles, expected.stubs, expected.sections))
    {
        eprintln!("warning: the loader did not find the {expected:?} written");
    }
    let report = Report { generate, dir: dir.path().to_path_buf(), kept: dir.keep, seed: args.seed, ..report };
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.human());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The knowledge dir.

/// The dir the pages are written to: a fresh temp dir removed on drop, or the user's `--keep` dir.
struct BenchDir {
    path: PathBuf,
    keep: bool,
}

impl BenchDir {
    fn create(keep: Option<&Path>) -> Result<Self, Failure> {
        let fail = |p: &Path, e: std::io::Error| Failure::usage(format!("cannot create {}: {e}", p.display()));
        match keep {
            Some(p) => {
                fs::create_dir_all(p).map_err(|e| fail(p, e))?;
                let mut entries = fs::read_dir(p).map_err(|e| fail(p, e))?;
                if entries.next().is_some() {
                    return Err(Failure::usage(format!(
                        "{} is not empty: --keep needs a new or empty dir",
                        p.display()
                    )));
                }
                Ok(BenchDir { path: p.to_path_buf(), keep: true })
            }
            None => {
                let nanos =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
                let path = std::env::temp_dir().join(format!("articlebot-bench-{}-{nanos}", std::process::id()));
                // `create_dir`, not `create_dir_all`: the dir must be ours, since drop removes it.
                fs::create_dir(&path).map_err(|e| fail(&path, e))?;
                Ok(BenchDir { path, keep: false })
            }
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for BenchDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Deterministic randomness.

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
        let normalizer = Normalizer::new("english");
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
            if w.len() >= 3 && !normalizer.is_stop_word(&w) && seen.insert(w.clone()) {
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
const QUERY_STREAM: u64 = 6;
const WARM_UP_STREAM: u64 = 7;

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
struct PageMeta {
    title: String,
    /// Vocabulary ids of the topic words in the title.
    title_words: Vec<u32>,
    /// The first words of the first paragraph, cut with an ellipsis as sites do.
    teaser: String,
}

/// The generated knowledge base: `pages` pages written, and `metas` for them plus the pages that
/// are only linked (stubs).
struct Corpus {
    seed: u64,
    pages: usize,
    vocabulary: Vocabulary,
    metas: Vec<PageMeta>,
}

/// What the loader should find in a written corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expected {
    articles: usize,
    stubs: usize,
    sections: usize,
}

impl Corpus {
    fn new(seed: u64, pages: usize) -> Self {
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
    fn write(&self, dir: &Path) -> Result<Expected, Failure> {
        let mut sections = 0;
        let mut stubs = HashSet::new();
        for i in 0..self.pages {
            let body = page_body(&self.vocabulary, self.seed, i);
            let path = dir.join(format!("page-{i:06}.txt"));
            fs::write(&path, self.page_text(i, &body))
                .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))?;
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
enum Kind {
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

const KINDS: [Kind; 5] = [Kind::Title, Kind::Short, Kind::Typo, Kind::Chatty, Kind::Unknown];

impl Kind {
    fn name(self) -> &'static str {
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

struct Query {
    text: String,
    kind: Kind,
    /// The page it was made from (none for unknown words).
    target: Option<usize>,
}

impl Corpus {
    /// `n` queries of the mix in `Kind::share`, from the stream `purpose`.
    fn queries(&self, n: usize, purpose: u64) -> Vec<Query> {
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

// ---------------------------------------------------------------------------------------------
// Measuring.

/// VmRSS and VmHWM of this process, in KiB.
#[derive(Debug, Clone, Copy, Default)]
struct Memory {
    rss_kib: u64,
    hwm_kib: u64,
}

impl Memory {
    fn now() -> Self {
        let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Memory { rss_kib: field("VmRSS:"), hwm_kib: field("VmHWM:") }
    }

    /// Resets VmHWM to the current RSS (Linux), so the peak is that of loading and indexing,
    /// not of generating the pages.
    fn reset_peak() {
        let _ = fs::write("/proc/self/clear_refs", "5");
    }
}

/// Latency figures of a set of queries.
#[derive(Debug, Clone, Copy, Default)]
struct Latency {
    count: usize,
    p50: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
    mean: Duration,
}

impl Latency {
    fn of(mut times: Vec<Duration>) -> Self {
        times.sort_unstable();
        let at = |p: f64| {
            let i = ((p * times.len() as f64).ceil() as usize).clamp(1, times.len().max(1)) - 1;
            times.get(i).copied().unwrap_or_default()
        };
        let total: Duration = times.iter().sum();
        Latency {
            count: times.len(),
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: times.last().copied().unwrap_or_default(),
            mean: total.checked_div(times.len().max(1) as u32).unwrap_or_default(),
        }
    }

    fn json(&self) -> serde_json::Value {
        json!({
            "count": self.count,
            "p50_ms": ms(self.p50),
            "p90_ms": ms(self.p90),
            "p99_ms": ms(self.p99),
            "max_ms": ms(self.max),
            "mean_ms": ms(self.mean),
        })
    }
}

/// Per query kind: latency, and how often the page it was made from came first (or, for unknown
/// words, how often the bot answered anyway: it should not).
#[derive(Debug, Clone, Copy, Default)]
struct KindFigures {
    latency: Latency,
    top1: usize,
    top3: usize,
    answered: usize,
}

#[derive(Debug, Default)]
struct Report {
    seed: u64,
    dir: PathBuf,
    kept: bool,
    stats: Option<KbStats>,
    vocabulary: usize,
    postings: usize,
    index_heap: usize,
    generate: Duration,
    load: Duration,
    index: Duration,
    warm_up: usize,
    latency: Latency,
    wall: Duration,
    kinds: Vec<(Kind, KindFigures)>,
    digest: u64,
    /// The slowest queries: (time, kind, text).
    slowest: Vec<(Duration, Kind, String)>,
    before_load: Memory,
    after_load: Memory,
    after_index: Memory,
}

fn measure(dir: &Path, corpus: &Corpus, queries: &[Query], warm_up: &[Query]) -> Result<Report, Failure> {
    Memory::reset_peak();
    let before_load = Memory::now();
    let started = Instant::now();
    let loaded = knowledge::load(dir)?;
    let load = started.elapsed();
    let after_load = Memory::now();
    let stats = loaded.kb.stats();
    let started = Instant::now();
    let matcher = Matcher::new(loaded.kb);
    let index = started.elapsed();
    let after_index = Memory::now();

    for q in warm_up {
        black_box(ask(&matcher, &q.text));
    }
    let mut times = Vec::with_capacity(queries.len());
    let mut outcomes = Vec::with_capacity(queries.len());
    let started = Instant::now();
    for q in queries {
        let t = Instant::now();
        let outcome = ask(&matcher, &q.text);
        times.push(t.elapsed());
        outcomes.push(black_box(outcome));
    }
    let wall = started.elapsed();
    let slowest = slowest(queries, &times, SLOWEST);

    let mut digest = Fnv::default();
    for o in &outcomes {
        digest.outcome(o);
    }
    let kinds = KINDS.iter().map(|&k| (k, kind_figures(&matcher, corpus, k, queries, &outcomes, &times))).collect();
    Ok(Report {
        stats: Some(stats),
        vocabulary: matcher.index().vocabulary_size(),
        postings: matcher.index().posting_count(),
        index_heap: matcher.index().heap_bytes(),
        load,
        index,
        warm_up: warm_up.len(),
        latency: Latency::of(times),
        wall,
        kinds,
        digest: digest.0,
        slowest,
        before_load,
        after_load,
        after_index,
        ..Report::default()
    })
}

/// Slowest queries listed in the report.
const SLOWEST: usize = 5;

/// The `n` slowest queries, slowest first: where to look when the tail grows.
fn slowest(queries: &[Query], times: &[Duration], n: usize) -> Vec<(Duration, Kind, String)> {
    let mut order: Vec<usize> = (0..times.len().min(queries.len())).collect();
    order.sort_unstable_by(|&a, &b| times[b].cmp(&times[a]));
    order.into_iter().take(n).map(|i| (times[i], queries[i].kind, queries[i].text.clone())).collect()
}

/// What the bot does with a message: decide, and snippet the best hit.
fn ask(m: &Matcher, q: &str) -> (Decision, Option<Snippet>) {
    let d = m.decide(q, TOP);
    let snippet = d.hits.first().map(|h| m.snippet(h, &d.terms, SNIPPET_CHARS));
    (d, snippet)
}

fn kind_figures(
    m: &Matcher,
    corpus: &Corpus,
    kind: Kind,
    queries: &[Query],
    outcomes: &[(Decision, Option<Snippet>)],
    times: &[Duration],
) -> KindFigures {
    let mut f = KindFigures::default();
    let mut kind_times = Vec::new();
    for ((q, (d, _)), &t) in queries.iter().zip(outcomes).zip(times).filter(|((q, _), _)| q.kind == kind) {
        kind_times.push(t);
        f.answered += usize::from(d.intent == Intent::Answer);
        let Some(target) = q.target.and_then(|i| corpus.metas.get(i)) else { continue };
        let is_target = |h: &crate::matching::Hit| m.article(h).title == target.title;
        f.top1 += usize::from(d.hits.first().is_some_and(is_target));
        f.top3 += usize::from(d.hits.iter().any(is_target));
    }
    f.latency = Latency::of(kind_times);
    f
}

/// FNV-1a over the results, so two builds can be checked to answer exactly alike.
#[derive(Debug)]
struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv {
    fn add(&mut self, x: u64) {
        for b in x.to_le_bytes() {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }

    fn outcome(&mut self, (d, snippet): &(Decision, Option<Snippet>)) {
        self.add(d.intent as u64);
        self.add(u64::from(d.confidence.to_bits()));
        for h in &d.hits {
            self.add(u64::from(h.article));
            self.add(h.section.map_or(u64::MAX, |s| s as u64));
            self.add(u64::from(h.score.to_bits()));
        }
        for &t in &d.terms {
            self.add(u64::from(t));
        }
        if let Some(s) = snippet {
            s.text.bytes().for_each(|b| self.add(u64::from(b)));
            for &(a, b) in &s.highlights {
                self.add(a as u64);
                self.add(b as u64);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reporting.

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e3).round() / 1e3
}

fn mib(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

fn percent(n: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        (n as f64 * 1000.0 / of as f64).round() / 10.0
    }
}

impl Report {
    fn qps(&self) -> f64 {
        let s = self.wall.as_secs_f64();
        if s > 0.0 {
            (self.latency.count as f64 / s).round()
        } else {
            0.0
        }
    }

    fn human(&self) -> String {
        let mut o = String::new();
        let stats = self.stats.unwrap_or(KbStats { articles: 0, stubs: 0, sections: 0, synonym_groups: 0 });
        let _ = writeln!(o, "articlebot bench (seed {})", self.seed);
        let _ = writeln!(
            o,
            "knowledge   {} articles, {} stubs, {} sections; {} words indexed, {} postings",
            stats.articles, stats.stubs, stats.sections, self.vocabulary, self.postings
        );
        let _ = writeln!(o, "            {} ({})", self.dir.display(), if self.kept { "kept" } else { "removed" });
        let _ = writeln!(o, "generate    {:>8.3} s", secs(self.generate));
        let _ = writeln!(o, "load        {:>8.3} s", secs(self.load));
        let _ = writeln!(o, "index       {:>8.3} s", secs(self.index));
        let _ = writeln!(o, "load+index  {:>8.3} s", secs(self.load + self.index));
        let l = &self.latency;
        let _ = writeln!(
            o,
            "queries     {} timed after {} warm-up, one thread, decide(top {TOP}) + snippet of the best hit",
            l.count, self.warm_up
        );
        let _ = writeln!(
            o,
            "latency     p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms  mean {:.3} ms  ({} queries/s)",
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.max),
            ms(l.mean),
            self.qps()
        );
        for (k, f) in &self.kinds {
            let n = f.latency.count;
            let found = if *k == Kind::Unknown {
                format!("answered {:>5.1}%", percent(f.answered, n))
            } else {
                format!("top1 {:>5.1}%  top3 {:>5.1}%", percent(f.top1, n), percent(f.top3, n))
            };
            let _ = writeln!(
                o,
                "  {:<8} {:>5}  p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  {found}",
                k.name(),
                n,
                ms(f.latency.p50),
                ms(f.latency.p99),
                ms(f.latency.max)
            );
        }
        let _ = writeln!(o, "slowest");
        for (t, k, q) in &self.slowest {
            let _ = writeln!(o, "  {:.3} ms  {:<8} {q}", ms(*t), k.name());
        }
        let _ = writeln!(o, "memory      VmRSS / VmHWM");
        for (name, m) in
            [("before load", self.before_load), ("after load", self.after_load), ("after index", self.after_index)]
        {
            let _ = writeln!(o, "  {name:<12} {:>7.1} MiB / {:>7.1} MiB", mib(m.rss_kib), mib(m.hwm_kib));
        }
        let _ = writeln!(o, "  index heap   {:>7.1} MiB (estimate)", self.index_heap as f64 / (1024.0 * 1024.0));
        let _ = writeln!(o, "results     digest {:016x}", self.digest);
        o
    }

    fn json(&self) -> serde_json::Value {
        let mem = |m: Memory| json!({ "rss_mib": mib(m.rss_kib), "hwm_mib": mib(m.hwm_kib) });
        let kinds: serde_json::Map<String, serde_json::Value> = self
            .kinds
            .iter()
            .map(|(k, f)| {
                let n = f.latency.count;
                (
                    k.name().to_string(),
                    json!({
                        "latency": f.latency.json(),
                        "top1": percent(f.top1, n) / 100.0,
                        "top3": percent(f.top3, n) / 100.0,
                        "answered": percent(f.answered, n) / 100.0,
                    }),
                )
            })
            .collect();
        json!({
            "seed": self.seed,
            "dir": self.dir.display().to_string(),
            "kept": self.kept,
            "knowledge": self.stats,
            "vocabulary": self.vocabulary,
            "postings": self.postings,
            "generate_s": secs(self.generate),
            "load_s": secs(self.load),
            "index_s": secs(self.index),
            "load_index_s": secs(self.load + self.index),
            "warm_up": self.warm_up,
            "latency": self.latency.json(),
            "qps": self.qps(),
            "kinds": kinds,
            "slowest": self.slowest.iter().map(|(t, k, q)| json!({ "ms": ms(*t), "kind": k.name(), "query": q })).collect::<Vec<_>>(),
            "memory": {
                "before_load": mem(self.before_load),
                "after_load": mem(self.after_load),
                "after_index": mem(self.after_index),
                "index_heap_mib": (self.index_heap as f64 / (1024.0 * 1024.0) * 10.0).round() / 10.0,
            },
            "digest": format!("{:016x}", self.digest),
        })
    }
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

        let loaded = knowledge::load(a.path()).unwrap();
        let stats = loaded.kb.stats();
        assert_eq!(stats.articles, 40);
        assert_eq!(stats.stubs, expected.stubs);
        assert_eq!(stats.sections, expected.sections);
        assert!(expected.stubs > 0, "some Recommend links point at pages not written");
        assert!((3 * 40..=7 * 40).contains(&stats.sections));
    }

    #[test]
    fn pages_have_the_page_format() {
        let corpus = Corpus::new(3, 20);
        let text = corpus.page_text(5, &page_body(&corpus.vocabulary, 3, 5));
        let page = knowledge::page::parse_page(&text, knowledge::page::PageFormat::Text).unwrap();
        assert_eq!(page.title, corpus.metas[5].title);
        let words = page.title.split_whitespace().count();
        assert!((5..=12).contains(&words), "{}", page.title);
        assert_eq!(page.prev.as_deref(), Some(corpus.metas[4].title.as_str()));
        assert_eq!(page.next.as_deref(), Some(corpus.metas[6].title.as_str()));
        assert!((5..=15).contains(&page.recommend.len()));
        assert!(page.recommend.iter().all(|t| t.teaser.as_deref().is_some_and(|s| s.ends_with("..."))));
        for s in &page.sections {
            let n = s.body.split_whitespace().count();
            assert!((40..=130).contains(&n), "{n} words");
        }
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

    #[test]
    fn latency_percentiles() {
        let times: Vec<Duration> = (1..=100).map(Duration::from_micros).collect();
        let l = Latency::of(times);
        assert_eq!(
            (l.p50, l.p99, l.max),
            (Duration::from_micros(50), Duration::from_micros(99), Duration::from_micros(100))
        );
    }
}
