//! Hostile questions: arbitrary text (any script, control characters, huge, empty) never makes
//! the normaliser, matcher or snippet builder panic, and stays fast.

use std::time::{Duration, Instant};

use articlebot::knowledge;
use articlebot::matching::{Intent, Matcher};
use proptest::prelude::*;

fn matcher() -> &'static Matcher {
    static M: std::sync::OnceLock<Matcher> = std::sync::OnceLock::new();
    M.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge");
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
