//! What `/why` and `ask --explain` tell: how each word was read and which rule decided, on the
//! shipped knowledge base.

use crate::{Intent, Matcher, Reading, Rule};
use articlebot_knowledge as knowledge;

fn matcher() -> &'static Matcher {
    static M: std::sync::OnceLock<Matcher> = std::sync::OnceLock::new();
    M.get_or_init(|| {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge");
        Matcher::new(knowledge::load(&dir).expect("shipped knowledge").kb)
    })
}

fn readings(word: &str, of: &str) -> Vec<(String, Reading, u8)> {
    let r = matcher().read_query(of);
    r.into_iter().find(|w| w.word == word).unwrap_or_else(|| panic!("{word} not read in {of:?}")).readings
}

#[test]
fn each_word_says_how_it_was_found() {
    let q = "sprained kneess hurt xqzzyv";
    let how = |word| readings(word, q).iter().map(|r| r.1).collect::<Vec<_>>();
    // The knowledge base writes "sprains": the same stem, not the same word.
    assert_eq!(readings("sprained", q)[0].1, Reading::Stem, "{:?}", readings("sprained", q));
    assert_eq!(readings("kneess", q), vec![("knee".to_string(), Reading::Typo, 1)]);
    assert!(how("hurt").contains(&Reading::Exact) && how("hurt").contains(&Reading::Synonym), "{:?}", how("hurt"));
    assert!(readings("xqzzyv", q).is_empty());
    let shown = matcher().describe_query(q).join(" ");
    assert!(shown.contains("kneess(") && shown.contains("=knee:typo1") && shown.contains(":synonym"), "{shown}");
    assert!(shown.contains("xqzzyv(") && shown.ends_with("=?"), "{shown}");
}

#[test]
fn the_rule_that_decided_is_named_with_its_numbers() {
    let m = matcher();
    let rule = |q: &str| {
        let d = m.decide(q, 5);
        assert_eq!(d.rule.intent(), d.intent, "{q}");
        (d.rule, d.why())
    };
    let (r, why) = rule("my knees hurt after jogging, why?");
    assert_eq!(r, Rule::Confident);
    assert!(why.starts_with("answer: relevance 0.") && why.contains("≥ answer 0.") && why.contains("ahead"), "{why}");
    let (r, why) = rule("running");
    assert_eq!(r, Rule::NamesATopic, "{why}");
    assert!(why.starts_with("suggest: evidence"), "{why}");
    let (r, why) = rule("how do I bake sourdough bread");
    assert!(matches!(r, Rule::NoCandidate | Rule::OutOfScope | Rule::BelowSuggest), "{why}");
    assert!(why.starts_with("unknown: "), "{why}");
    let (r, why) = rule("kneess hurt");
    assert_eq!(r, Rule::CloseRunnerUp, "{why}");
    assert!(why.contains("within margin"), "{why}");
    let (r, _) = rule("hello there");
    assert_eq!(r, Rule::Smalltalk);
}

#[test]
fn the_explanation_fits_one_telegram_message_whatever_the_question() {
    let m = matcher();
    let long = "why do my knees and calves hurt when running on hard ground ".repeat(150);
    for q in ["my knees hurt after jogging, why?", long.as_str(), "", "???", "🏃‍♀️🏃‍♀️"] {
        let d = m.decide(q, 3);
        let text = m.explain(q, &d, 3);
        assert!(text.starts_with("decision: "), "{text}");
        assert!(text.chars().count() < 3500, "{} characters for a {}-byte question", text.chars().count(), q.len());
        if d.intent != Intent::Unknown {
            assert!(text.contains("\n1. ") && text.contains("lexical"), "{text}");
        }
    }
}
