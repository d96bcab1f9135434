//! A quality floor for the matcher on the shipped knowledge base, with our own questions
//! (`tests/data/seed_questions.jsonl`: paraphrases, typos, chatty questions, out-of-scope ones
//! sharing words with the articles). Guards against regressions; the evaluation sets in
//! `../shared/eval` are run by `.ci/run`.

use crate::Matcher;
use articlebot_knowledge as knowledge;

fn fold(s: &str) -> String {
    crate::fold(s).replace('\u{2019}', "'")
}

#[test]
fn our_own_questions_stay_above_the_floor() {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."));
    let m = Matcher::new(knowledge::load(&dir.join("knowledge")).expect("shipped knowledge").kb);
    let text = std::fs::read_to_string(dir.join("tests/data/seed_questions.jsonl")).unwrap();
    let (mut ok, mut total, mut sec_ok, mut sec_total) = (0, 0, 0, 0);
    let mut misses = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let q: serde_json::Value = serde_json::from_str(line).unwrap();
        let question = q["q"].as_str().unwrap();
        let d = m.decide(question, 3);
        total += 1;
        let good = match q["title"].as_str() {
            None => !d.answered(),
            Some(want) => {
                let top = d.hits.first().map(|h| fold(&m.article(h).title));
                let right = d.answered() && top.as_deref() == Some(fold(want).as_str());
                if let Some(phrase) = q["section"].as_str() {
                    sec_total += 1;
                    if right && d.hits.first().is_some_and(|h| fold(m.hit_text(h)).contains(&fold(phrase))) {
                        sec_ok += 1;
                    }
                }
                right
            }
        };
        if good {
            ok += 1;
        } else {
            misses.push(question.to_string());
        }
    }
    let overall = ok as f64 / total as f64;
    let sections = sec_ok as f64 / sec_total as f64;
    assert!(overall >= 0.88, "overall {overall:.3} below the floor; misses: {misses:#?}");
    assert!(sections >= 0.8, "sections {sections:.3} below the floor");
}
