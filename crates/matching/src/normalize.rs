//! Text to terms: Unicode folding (NFKC, case, accents, quotes), word segmentation (UAX #29, with
//! character bigrams for scripts written without spaces), stop words, irregular English forms and
//! Snowball stemming. Index and queries go through the same code, so they always agree.

use rust_stemmers::{Algorithm, Stemmer};
use unicode_normalization::char::decompose_canonical;
use unicode_normalization::UnicodeNormalization;

use super::fxhash::{FxHashMap, FxHashSet};
use super::segment::for_each_segment;

/// One word of analysed text. Offsets are byte offsets into the analysed text (for highlighting);
/// `surface` (the folded word) is a range into `Analysis::buf`. Stems are computed on demand
/// (`Normalizer::stem_word`), since the index knows the term of every word it has seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Word {
    pub start: u32,
    pub end: u32,
    surface: (u32, u32),
    pub stop: bool,
    /// Joined to the previous word by a hyphen ("sit-ups"): the pair also counts as one word.
    pub hyphen_before: bool,
    /// A character bigram from a script without spaces.
    pub bigram: bool,
}

/// Analysed text, kept between calls so the query path reuses its buffers.
#[derive(Debug, Default, Clone)]
pub struct Analysis {
    buf: String,
    pub words: Vec<Word>,
}

impl Analysis {
    pub fn surface(&self, w: &Word) -> &str {
        &self.buf[w.surface.0 as usize..w.surface.1 as usize]
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.words.clear();
    }
}

/// Where `analyze` is in the text between segments.
#[derive(Default)]
struct Segmenting {
    hyphen_pending: bool,
    last_was_word: bool,
    /// Words in the current hyphen chain. Only pairs ("sit-ups", "e-mail") are compounds;
    /// longer chains are slugs and URLs ("how-to-get-in-google"), whose joins would be noise.
    chain: usize,
}

/// English forms the Snowball stemmer leaves apart from their base word.
const IRREGULAR: &[(&str, &str)] = &[
    ("feet", "foot"),
    ("teeth", "tooth"),
    ("men", "man"),
    ("women", "woman"),
    ("children", "child"),
    ("mice", "mouse"),
    ("geese", "goose"),
    ("people", "person"),
    ("lives", "life"),
    ("knives", "knife"),
    ("wives", "wife"),
    ("halves", "half"),
    ("leaves", "leaf"),
    ("calves", "calf"),
    ("shelves", "shelf"),
    ("ran", "run"),
    ("swam", "swim"),
    ("swum", "swim"),
    ("ate", "eat"),
    ("eaten", "eat"),
    ("went", "go"),
    ("gone", "go"),
    ("felt", "feel"),
    ("made", "make"),
    ("took", "take"),
    ("taken", "take"),
    ("wrote", "write"),
    ("written", "write"),
    ("drove", "drive"),
    ("driven", "drive"),
    ("broke", "break"),
    ("broken", "break"),
    ("fell", "fall"),
    ("fallen", "fall"),
    ("got", "get"),
    ("gotten", "get"),
    ("began", "begin"),
    ("begun", "begin"),
    ("knew", "know"),
    ("known", "know"),
    ("grew", "grow"),
    ("grown", "grow"),
    ("threw", "throw"),
    ("thrown", "throw"),
    ("slept", "sleep"),
    ("kept", "keep"),
    ("lost", "lose"),
    ("paid", "pay"),
    ("bought", "buy"),
    ("brought", "bring"),
    ("thought", "think"),
    ("caught", "catch"),
    ("taught", "teach"),
    ("sought", "seek"),
    ("fought", "fight"),
    ("rode", "ride"),
    ("ridden", "ride"),
    ("chose", "choose"),
    ("chosen", "choose"),
    ("froze", "freeze"),
    ("frozen", "freeze"),
    ("stole", "steal"),
    ("stolen", "steal"),
    ("woke", "wake"),
    ("woken", "wake"),
    ("spoke", "speak"),
    ("spoken", "speak"),
    ("sang", "sing"),
    ("sung", "sing"),
    ("drank", "drink"),
    ("drunk", "drink"),
    ("sank", "sink"),
    ("sunk", "sink"),
    ("sent", "send"),
    ("spent", "spend"),
    ("built", "build"),
    ("bent", "bend"),
    ("lent", "lend"),
    ("meant", "mean"),
    ("sat", "sit"),
    ("stood", "stand"),
    ("understood", "understand"),
    ("found", "find"),
    ("bound", "bind"),
    ("held", "hold"),
    ("told", "tell"),
    ("sold", "sell"),
    ("did", "do"),
    ("done", "do"),
    ("seen", "see"),
    ("gave", "give"),
    ("given", "give"),
    ("came", "come"),
    ("became", "become"),
    ("wore", "wear"),
    ("worn", "wear"),
    ("tore", "tear"),
    ("torn", "tear"),
    ("hid", "hide"),
    ("hidden", "hide"),
    ("shook", "shake"),
    ("shaken", "shake"),
    ("flew", "fly"),
    ("flown", "fly"),
    ("drew", "draw"),
    ("drawn", "draw"),
];

/// Words that frame an English question rather than say what it is about ("is it possible",
/// "I'd like to", "the easiest way"). They count for little in a query: a knowledge base may
/// use them anywhere, and a question may be full of them.
const FRAMING_EN: &[&str] = &[
    "possible",
    "possibly",
    "way",
    "ways",
    "like",
    "want",
    "wanna",
    "wish",
    "able",
    "know",
    "easiest",
    "easy",
    "easily",
    "simple",
    "simplest",
    "best",
    "better",
    "anyone",
    "anybody",
    "someone",
    "somebody",
    "please",
    "help",
    "thanks",
    "option",
    "options",
    "method",
    "thing",
    "things",
    "need",
    "trying",
    "try",
    "tried",
    "ever",
    "really",
    "actually",
    "somehow",
    "particular",
    "specific",
    "certain",
    "kind",
    "sort",
    "lot",
    "quick",
    "quickly",
    "efficient",
    "efficiently",
    "idea",
    "ideas",
    "advice",
    "suggestion",
    "suggestions",
    "question",
    "wondering",
    "wonder",
    "anyway",
    "exactly",
    "properly",
    "correctly",
    "good",
    "great",
    "use",
    "using",
    "get",
    "getting",
    "got",
    "go",
    "going",
    "do",
    "doing",
    "make",
    "making",
    "still",
    "also",
    "already",
    "even",
];

/// Turns text into stemmed terms. Build once per knowledge base (it holds stemmers and lists).
pub struct Normalizer {
    latin: Option<Stemmer>,
    russian: Stemmer,
    greek: Stemmer,
    stop: FxHashSet<String>,
    english: bool,
    /// Stems of the thousand most used English words (English sites only): a question word the
    /// knowledge base has never seen says little about the topic when it is one of these
    /// ("started", "weeks", "wrong"), and a lot when it is not ("headaches", "puppy").
    common: FxHashSet<String>,
    irregular: FxHashMap<&'static str, &'static str>,
}

impl std::fmt::Debug for Normalizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Normalizer").field("stop_words", &self.stop.len()).finish()
    }
}

fn algorithm(language: &str) -> Option<(Algorithm, &'static str)> {
    Some(match language {
        "english" => (Algorithm::English, "en"),
        "french" => (Algorithm::French, "fr"),
        "german" => (Algorithm::German, "de"),
        "spanish" => (Algorithm::Spanish, "es"),
        "italian" => (Algorithm::Italian, "it"),
        "portuguese" => (Algorithm::Portuguese, "pt"),
        "dutch" => (Algorithm::Dutch, "nl"),
        "swedish" => (Algorithm::Swedish, "sv"),
        "norwegian" => (Algorithm::Norwegian, "no"),
        "danish" => (Algorithm::Danish, "da"),
        "finnish" => (Algorithm::Finnish, "fi"),
        "hungarian" => (Algorithm::Hungarian, "hu"),
        "romanian" => (Algorithm::Romanian, "ro"),
        "turkish" => (Algorithm::Turkish, "tr"),
        _ => return None,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Script {
    Latin,
    Cyrillic,
    Greek,
    /// Han, kana, Hangul syllables written without spaces, Thai, Lao, Khmer, Myanmar: bigrams.
    Unspaced,
    Other,
}

fn script_of(c: char) -> Script {
    match c as u32 {
        0x0041..=0x024F | 0x1E00..=0x1EFF => Script::Latin,
        0x0370..=0x03FF | 0x1F00..=0x1FFF => Script::Greek,
        0x0400..=0x052F => Script::Cyrillic,
        0x0E00..=0x0EFF
        | 0x1000..=0x109F
        | 0x1780..=0x17FF
        | 0x3040..=0x30FF
        | 0x3400..=0x4DBF
        | 0x4E00..=0x9FFF
        | 0xF900..=0xFAFF
        | 0x20000..=0x2FFFF => Script::Unspaced,
        _ => Script::Other,
    }
}

/// Folds one piece of text for matching: NFKC, lower case, accents off Latin/Greek/Cyrillic letters,
/// typographic quotes to ASCII. Appends to `out`.
pub fn fold_into(text: &str, out: &mut String) {
    for c in text.nfkc() {
        for lc in c.to_lowercase() {
            match lc {
                '\u{2018}' | '\u{2019}' | '\u{02bc}' | '\u{2032}' | '`' => out.push('\''),
                '\u{201c}' | '\u{201d}' | '\u{00ab}' | '\u{00bb}' => out.push('"'),
                'ß' => out.push_str("ss"),
                c if c.is_ascii() => out.push(c),
                c => decompose_canonical(c, |d| {
                    if !('\u{0300}'..='\u{036f}').contains(&d) {
                        out.push(d)
                    }
                }),
            }
        }
    }
}

/// `fold_into` into a new string.
pub fn fold(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    fold_into(text, &mut s);
    s
}

impl Normalizer {
    /// `language` is the site's stemming language (see `SiteConfig::language`); an unknown one
    /// leaves Latin words unstemmed.
    pub fn new(language: &str) -> Self {
        let latin = algorithm(language);
        let mut stop = FxHashSet::default();
        let mut add = |code: &str| {
            for w in stop_words::lookup(code).unwrap_or(&[]) {
                let f = fold(w);
                stop.insert(f.replace('\'', ""));
                stop.insert(f);
            }
        };
        add(latin.map_or("en", |l| l.1));
        // Other scripts cannot collide with Latin words, so their lists are always on.
        for code in ["ru", "el", "ar", "he", "kk", "be", "tg", "ne", "bn", "zh"] {
            add(code);
        }
        let mut n = Normalizer {
            latin: latin.map(|l| Stemmer::create(l.0)),
            russian: Stemmer::create(Algorithm::Russian),
            greek: Stemmer::create(Algorithm::Greek),
            stop,
            english: language == "english",
            common: FxHashSet::default(),
            irregular: IRREGULAR.iter().copied().collect(),
        };
        if n.english {
            let words: Vec<String> = top_english_words::get_words();
            n.common = words.iter().map(|w| n.stem_word(&fold(w.trim())).into_owned()).collect();
        }
        n
    }

    /// Whether a folded query word only frames the question (English sites only).
    pub fn is_framing_word(&self, folded: &str) -> bool {
        self.english && FRAMING_EN.contains(&folded)
    }

    /// Whether a folded word is among the most used words of English (English sites only).
    pub fn is_common_word(&self, folded: &str) -> bool {
        self.english && self.common.contains(&*self.stem_word(folded))
    }

    pub fn is_stop_word(&self, folded: &str) -> bool {
        self.stop.contains(folded)
    }

    /// Analyses `text` into `out` (cleared first).
    pub fn analyze(&self, text: &str, out: &mut Analysis) {
        out.clear();
        let mut state = Segmenting::default();
        for_each_segment(text, |start, seg| self.segment(start, seg, &mut state, out));
        self.merge_unspaced_runs(text, out);
    }

    /// Adds one word-boundary segment: a word, the characters of an unspaced script, or
    /// punctuation and space (which only matter as hyphens between words).
    fn segment(&self, start: usize, seg: &str, state: &mut Segmenting, out: &mut Analysis) {
        let ascii = seg.is_ascii();
        let word =
            if ascii { seg.bytes().any(|b| b.is_ascii_alphanumeric()) } else { seg.chars().any(char::is_alphanumeric) };
        if !word {
            state.hyphen_pending = state.last_was_word && matches!(seg, "-" | "\u{2010}" | "\u{2011}");
            state.last_was_word = false;
            return;
        }
        // ASCII words are Latin, or digits: never an unspaced script.
        if !ascii && self.unspaced(seg) {
            self.push_bigrams(start, seg, out);
            state.last_was_word = false;
            state.hyphen_pending = false;
            return;
        }
        state.chain = if state.hyphen_pending { state.chain + 1 } else { 1 };
        self.push_word(start, seg, state.hyphen_pending, out);
        if state.chain > 2 {
            let n = out.words.len();
            for w in &mut out.words[n.saturating_sub(state.chain - 1)..] {
                w.hyphen_before = false;
            }
        }
        state.hyphen_pending = false;
        state.last_was_word = true;
    }

    /// Whether a word is in a script written without spaces (its first letter decides).
    fn unspaced(&self, seg: &str) -> bool {
        let first = seg.chars().next().unwrap_or(' ');
        script_of(seg.chars().find(|c| c.is_alphabetic()).unwrap_or(first)) == Script::Unspaced
    }

    fn push_word(&self, start: usize, seg: &str, hyphen_before: bool, out: &mut Analysis) {
        let s0 = out.buf.len();
        if seg.is_ascii() {
            // ASCII is already NFKC and accent-free: lower-casing is the whole fold.
            out.buf.push_str(seg);
            out.buf[s0..].make_ascii_lowercase();
        } else {
            fold_into(seg, &mut out.buf);
        }
        // Apostrophes: "knee's" is "knee", "don't" is "dont".
        let folded = &out.buf[s0..];
        let cut = if folded.ends_with("'s") { folded.len() - 2 } else { folded.len() };
        if out.buf.as_bytes()[s0..s0 + cut].contains(&b'\'') {
            let cleaned: String = out.buf[s0..s0 + cut].chars().filter(|&c| c != '\'').collect();
            out.buf.truncate(s0);
            out.buf.push_str(&cleaned);
        } else {
            out.buf.truncate(s0 + cut);
        }
        let s1 = out.buf.len();
        if s1 == s0 {
            return;
        }
        let cleaned = &out.buf[s0..s1];
        let stop = self.stop.contains(cleaned);
        out.words.push(Word {
            start: start as u32,
            end: (start + seg.len()) as u32,
            surface: (s0 as u32, s1 as u32),
            stop,
            hyphen_before,
            bigram: false,
        });
    }

    /// The term of a folded word: its base form if irregular, else its Snowball stem.
    pub fn stem_word<'a>(&self, folded: &'a str) -> std::borrow::Cow<'a, str> {
        let script = folded.chars().find(|c| c.is_alphabetic()).map_or(Script::Other, script_of);
        self.stem_of(folded, script)
    }

    fn stem_of<'a>(&self, folded: &'a str, script: Script) -> std::borrow::Cow<'a, str> {
        match script {
            Script::Latin => {
                if let Some(base) = self.irregular.get(folded) {
                    return std::borrow::Cow::Borrowed(base);
                }
                match &self.latin {
                    Some(s) => s.stem(folded),
                    None => folded.into(),
                }
            }
            Script::Cyrillic => self.russian.stem(folded),
            Script::Greek => self.greek.stem(folded),
            _ => folded.into(),
        }
    }

    fn push_bigrams(&self, start: usize, seg: &str, out: &mut Analysis) {
        // Each unspaced segment is pushed as one "word" of its characters; runs of them are
        // merged into bigrams afterwards, once the whole run is known.
        let s0 = out.buf.len();
        fold_into(seg, &mut out.buf);
        let s1 = out.buf.len();
        out.words.push(Word {
            start: start as u32,
            end: (start + seg.len()) as u32,
            surface: (s0 as u32, s1 as u32),
            stop: false,
            hyphen_before: false,
            bigram: true,
        });
    }

    /// Rewrites runs of adjacent unspaced segments as overlapping character bigrams, the usual
    /// way to match Chinese, Japanese or Thai without a dictionary. A lone character stays a
    /// unigram.
    fn merge_unspaced_runs(&self, text: &str, out: &mut Analysis) {
        if !out.words.iter().any(|w| w.bigram) {
            return;
        }
        let words = std::mem::take(&mut out.words);
        let mut i = 0;
        while i < words.len() {
            if !words[i].bigram {
                out.words.push(words[i]);
                i += 1;
                continue;
            }
            let mut j = i;
            while j + 1 < words.len() && words[j + 1].bigram && words[j + 1].start == words[j].end {
                j += 1;
            }
            // Folded characters of the run, each with the source character it came from: folding
            // one character can give several ("ヿ" is "コト"), and highlights must cut the source
            // text on its character boundaries.
            let mut chars: Vec<(u32, u32, String)> = Vec::new();
            let mut one = String::new();
            for w in &words[i..=j] {
                let source = text.get(w.start as usize..w.end as usize).unwrap_or("");
                for (offset, c) in source.char_indices() {
                    let (s, e) = (w.start + offset as u32, w.start + (offset + c.len_utf8()) as u32);
                    one.clear();
                    let mut buf = [0u8; 4];
                    fold_into(c.encode_utf8(&mut buf), &mut one);
                    chars.extend(one.chars().map(|f| (s, e, f.to_string())));
                }
            }
            let grams: Vec<(u32, u32, String)> = if chars.len() == 1 {
                chars
            } else {
                chars.windows(2).map(|p| (p[0].0, p[1].1, format!("{}{}", p[0].2, p[1].2))).collect()
            };
            for (s, e, g) in grams {
                let b0 = out.buf.len() as u32;
                out.buf.push_str(&g);
                let b1 = out.buf.len() as u32;
                out.words.push(Word {
                    start: s,
                    end: e,
                    surface: (b0, b1),
                    stop: false,
                    hyphen_before: false,
                    bigram: true,
                });
            }
            i = j + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms(n: &Normalizer, text: &str) -> Vec<String> {
        let mut a = Analysis::default();
        n.analyze(text, &mut a);
        a.words.iter().filter(|w| !w.stop).map(|w| n.stem_word(a.surface(w)).into_owned()).collect()
    }

    #[test]
    fn folding() {
        assert_eq!(fold("Ｃａｆé Don’t ﬁt STRASSE Straße"), "cafe don't fit strasse strasse");
        assert_eq!(fold("Ёлка"), "елка");
    }

    #[test]
    fn english_inflections_meet() {
        let n = Normalizer::new("english");
        assert_eq!(terms(&n, "Running knees hurts"), terms(&n, "run knee hurt"));
        assert_eq!(terms(&n, "my feet"), vec!["foot"]);
        assert_eq!(terms(&n, "protective"), terms(&n, "protection"));
        assert_eq!(terms(&n, "What's the knee’s problem?"), vec!["knee", "problem"]);
    }

    #[test]
    fn stop_words_are_marked_not_dropped() {
        let n = Normalizer::new("english");
        let mut a = Analysis::default();
        n.analyze("how to do it", &mut a);
        assert_eq!(a.words.len(), 4);
        assert!(a.words.iter().all(|w| w.stop));
    }

    #[test]
    fn offsets_point_into_the_original() {
        let n = Normalizer::new("english");
        let text = "Ｋnee — “pain”, sit-ups!";
        let mut a = Analysis::default();
        n.analyze(text, &mut a);
        let spans: Vec<&str> = a.words.iter().map(|w| &text[w.start as usize..w.end as usize]).collect();
        assert_eq!(spans, vec!["Ｋnee", "pain", "sit", "ups"]);
        assert!(a.words[3].hyphen_before);
        assert!(!a.words[2].hyphen_before);
        n.analyze("see how-to-get-it or warm-up", &mut a);
        let joined: Vec<bool> = a.words.iter().map(|w| w.hyphen_before).collect();
        assert_eq!(joined, vec![false, false, false, false, false, false, false, true]);
    }

    #[test]
    fn other_scripts() {
        let n = Normalizer::new("english");
        assert_eq!(terms(&n, "боль в колене"), terms(&n, "боли колени"));
        assert_eq!(terms(&n, "膝盖疼"), vec!["膝盖", "盖疼"]);
        assert_eq!(terms(&n, "痛"), vec!["痛"]);
        assert!(terms(&n, "🏃‍♂️ 👍").is_empty());
    }

    #[test]
    fn unspaced_spans_are_on_character_boundaries() {
        let n = Normalizer::new("english");
        for text in ["ヿア", "ทำงาน", "ｶﾞｷﾞ", "膝盖疼", "ﾊﾟﾝ ブ"] {
            let mut a = Analysis::default();
            n.analyze(text, &mut a);
            for w in &a.words {
                assert!(
                    text.is_char_boundary(w.start as usize) && text.is_char_boundary(w.end as usize),
                    "{text:?} {w:?}"
                );
                assert!(w.start < w.end);
            }
        }
    }

    #[test]
    fn unknown_language_leaves_words_unstemmed() {
        let n = Normalizer::new("klingon");
        assert_eq!(terms(&n, "running"), vec!["running"]);
    }

    #[test]
    fn common_english_words() {
        let n = Normalizer::new("english");
        for w in ["started", "weeks", "ago", "wrong", "life"] {
            assert!(n.is_common_word(w), "{w}");
        }
        for w in ["headaches", "puppy", "chess", "strikethrough"] {
            assert!(!n.is_common_word(w), "{w}");
        }
        assert!(!Normalizer::new("german").is_common_word("started"));
    }

    #[test]
    fn stem_word_detects_the_script() {
        let n = Normalizer::new("english");
        assert_eq!(n.stem_word("running"), "run");
        assert_eq!(n.stem_word("бегать"), "бега");
        assert_eq!(n.stem_word("ran"), "run");
    }
}
