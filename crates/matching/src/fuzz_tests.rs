//! Hostile questions: arbitrary text (any script, control characters, huge, empty) never makes
//! the normaliser, matcher or snippet builder panic, and stays fast.

use std::time::{Duration, Instant};

use crate::{Intent, Matcher};
use articlebot_knowledge as knowledge;
use proptest::prelude::*;

fn matcher() -> &'static Matcher {
    static M: std::sync::OnceLock<Matcher> = std::sync::OnceLock::new();
    M.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge");
        Matcher::new(knowledge::load(&dir).expect("shipped knowledge").kb)
    })
}

fn check(q: &str) {
    let m = matcher();
    let started = Instant::now();
    let d = m.decide(q, 5);
    assert!((0.0..=1.0).contains(&d.confidence), "{q:?}: {}", d.confidence);
    assert!(d.hits.len() <= 5);
    assert!(d.hits.windows(2).all(|w| w[0].score >= w[1].score), "best first");
    if d.intent == Intent::Answer {
        assert!(!d.hits.is_empty());
    }
    for h in &d.hits {
        let s = m.snippet(h, &d.terms, 600);
        for &(a, b) in &s.highlights {
            assert!(a < b && b <= s.text.len() && s.text.is_char_boundary(a) && s.text.is_char_boundary(b));
        }
        assert!(s.text.chars().count() <= 620, "{}", s.text.chars().count());
    }
    assert!(started.elapsed() < Duration::from_millis(200), "{q:?} took {:?}", started.elapsed());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_text(q in "\\PC{0,300}") {
        check(&q);
    }

    #[test]
    fn any_characters_including_controls(q in proptest::collection::vec(any::<char>(), 0..200)) {
        check(&q.into_iter().collect::<String>());
    }

    #[test]
    fn words_of_the_knowledge_base_with_typos(words in proptest::collection::vec("(knee|pain|running|sit-ups|calves|muscle|abdominal|weight|basketball)[a-z]{0,2}", 1..12)) {
        check(&words.join(" "));
    }
}

#[test]
fn huge_and_degenerate_questions() {
    for q in [
        String::new(),
        " ".repeat(10_000),
        "knee ".repeat(5_000),
        "a".repeat(100_000),
        "🏃".repeat(3_000),
        "膝盖疼".repeat(2_000),
        "\u{0}\u{1}\u{7f}\u{200b}\u{feff}".repeat(100),
        "-".repeat(5000),
        "sit-ups-".repeat(1000),
        "'s".repeat(1000),
    ] {
        check(&q);
    }
}

#[test]
fn a_smaller_knowledge_base_after_a_bigger_one_on_the_same_thread() {
    // Per-thread buffers sized for the first index must not leak into the second (a reload).
    check("my knees hurt after jogging");
    let dir = tempfile::tempdir().unwrap();
    for (id, title) in [("a", "Alpha tea"), ("b", "Beta coffee")] {
        std::fs::write(
            dir.path().join(format!("{id}.md")),
            format!("+++\nid = \"{id}\"\ntitle = \"{title}\"\n+++\n\n{title} text.\n"),
        )
        .unwrap();
    }
    let small = Matcher::new(knowledge::load(dir.path()).unwrap().kb);
    for q in ["alpha tea", "coffee", "my knees hurt after jogging"] {
        let d = small.decide(q, 3);
        assert!(d.hits.len() <= 2);
    }
    check("knee pain running");
}

/// Pieces whose folding changes their length or that combine (Thai, Lao, Khmer signs, kana
/// digraphs, ligatures, compatibility forms): highlights must still fall on character boundaries.
const TRICKY: &[&str] = &[
    "knee",
    " ",
    "-",
    "'",
    "’s",
    ".",
    "\n\n",
    "ヿ",
    "ゟ",
    "ア",
    "膝",
    "盖",
    "น้ำ",
    "ทำ",
    "ำ",
    "ﬁ",
    "ß",
    "İ",
    "ǅ",
    "e\u{301}",
    "\u{301}",
    "🏃‍♂️",
    "Ｋ",
    "ｶﾞ",
    "한국",
    "ﷺ",
    "㍿",
    "…",
    "。",
    "ΐ",
    "ﬃ",
    "ẞ",
    "Ⅻ",
    "½",
    "\u{200d}",
    "ຳ",
    "ា",
    "ើ",
    "ꦲ",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn tricky_knowledge_text_never_breaks_snippets(
        title in proptest::collection::vec(0..TRICKY.len(), 1..5),
        body in proptest::collection::vec(0..TRICKY.len(), 1..60),
        queries in proptest::collection::vec((0..60usize, 1..6usize), 1..20),
    ) {
        let title: String = title.iter().map(|&i| TRICKY[i]).collect::<String>().replace(['\n', '"', '\\'], " ");
        let body: String = body.iter().map(|&i| TRICKY[i]).collect();
        let dir = tempfile::tempdir().unwrap();
        let title = if title.trim().is_empty() { "t".to_string() } else { title };
        std::fs::write(dir.path().join("a.md"), format!("+++\nid = \"a\"\ntitle = \"{title}\"\n+++\n\n{body}\nplain end.\n")).unwrap();
        let Ok(loaded) = knowledge::load(dir.path()) else { return Ok(()) };
        let m = Matcher::new(loaded.kb);
        let chars: Vec<char> = body.chars().collect();
        for (start, len) in queries {
            let s = start.min(chars.len().saturating_sub(1));
            let q: String = chars[s..(s + len).min(chars.len())].iter().collect();
            let d = m.decide(&q, 3);
            for h in &d.hits {
                let snip = m.snippet(h, &d.terms, 25);
                for &(a, b) in &snip.highlights {
                    prop_assert!(snip.text.is_char_boundary(a) && snip.text.is_char_boundary(b));
                }
                let _ = snip.render("<b>", "</b>", |t| t.to_string());
            }
        }
    }
}
