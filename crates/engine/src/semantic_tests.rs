//! The engine with a sentence model (the test model, all-MiniLM-L6-v2): paraphrases that words
//! alone get wrong, out-of-scope questions, the vector cache, a model that cannot load.

use std::path::{Path, PathBuf};

use crate::*;
use articlebot_testkit::copy_dir;

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge")
}

fn options(model: &Path, cache: Option<&Path>) -> Options {
    Options { model: Some(model.to_path_buf()), cache_dir: cache.map(Path::to_path_buf), ..Options::default() }
}

fn ask(e: &Engine<SledStore>, user: i64, q: &str) -> Outcome {
    e.handle(&User { id: user, language: None }, Input::Question(q.into()), None, 1)
}

fn title(e: &Engine<SledStore>, out: &Outcome) -> Option<String> {
    let hit = out.decision.as_ref()?.hits.first()?;
    Some(e.library().kb().articles[hit.article as usize].title.clone())
}

#[test]
fn a_paraphrase_gets_its_article_where_words_alone_went_elsewhere() {
    let Some(model) = articlebot_testkit::require_test_model("semantic paraphrases") else { return };
    let lexical = Engine::open(&shipped(), SledStore::temporary().unwrap(), Options::default()).unwrap().0;
    let hybrid = Engine::open(&shipped(), SledStore::temporary().unwrap(), options(&model, None)).unwrap().0;
    let sportswear = "What sportswear should I wear for running?";
    let q = "athletic gear for a run";
    assert_ne!(title(&lexical, &ask(&lexical, 1, q)).as_deref(), Some(sportswear), "words alone pick another article");
    let out = ask(&hybrid, 1, q);
    assert!(matches!(out.reply, Reply::Answer(_)), "{:?}", out.reply);
    assert_eq!(title(&hybrid, &out).as_deref(), Some(sportswear));
    let hit = &out.decision.as_ref().unwrap().hits[0];
    assert!(hit.semantic.is_some_and(|s| s > 0.6), "{hit:?}");
    assert!(hit.lexical < hit.score, "the semantic part carried it: {hit:?}");
}

#[test]
fn out_of_scope_questions_stay_unanswered_with_a_model() {
    let Some(model) = articlebot_testkit::require_test_model("semantic out of scope") else { return };
    let e = Engine::open(&shipped(), SledStore::temporary().unwrap(), options(&model, None)).unwrap().0;
    for q in ["how do I bake sourdough bread", "what is the capital of France", "recommend a laptop for programming"] {
        let out = ask(&e, 2, q);
        assert!(matches!(out.reply, Reply::Unknown { .. }), "{q}: {:?}", out.reply);
    }
}

#[test]
fn vectors_are_cached_and_only_changed_texts_embedded_again() {
    let Some(model) = articlebot_testkit::require_test_model("the vector cache") else { return };
    let tmp = tempfile::tempdir().unwrap();
    let kb = tmp.path().join("knowledge");
    copy_dir(&shipped(), &kb);
    let cache = tmp.path().join("cache");
    let (e, first) = Engine::open(&kb, SledStore::temporary().unwrap(), options(&model, Some(&cache))).unwrap();
    let first = first.semantic.expect("semantic report");
    assert!(first.embedded > 0 && first.cached == 0 && first.cache_error.is_none(), "{first:?}");
    let (_, second) = Engine::open(&kb, SledStore::temporary().unwrap(), options(&model, Some(&cache))).unwrap();
    let second = second.semantic.unwrap();
    assert_eq!((second.embedded, second.cached), (0, first.units), "a restart embeds nothing");

    let article = kb.join("articles/what-causes-knee-pain-when-running.md");
    let text = std::fs::read_to_string(&article).unwrap();
    std::fs::write(&article, format!("{text}\nA new closing paragraph about cooling down slowly.\n")).unwrap();
    let reloaded = e.reload().unwrap().semantic.unwrap();
    assert_eq!(reloaded.embedded, 1, "only the new paragraph: {reloaded:?}");
    assert_eq!(reloaded.units, first.units + 1);
}

#[test]
fn a_model_that_cannot_load_is_one_clear_error() {
    let missing = Path::new("/nonexistent/model");
    let e = Engine::open(&shipped(), SledStore::temporary().unwrap(), options(missing, None)).unwrap_err();
    let line = ErrorChain(&e).to_string();
    assert!(matches!(e, OpenError::Model { .. }) && line.contains("/nonexistent/model"), "{line}");
    assert!(line.contains("no such directory") && !line.contains('\n'), "{line}");
}

#[test]
fn our_own_questions_stay_above_the_floor_with_a_model() {
    let Some(model) = articlebot_testkit::require_test_model("semantic quality") else { return };
    let e = Engine::open(&shipped(), SledStore::temporary().unwrap(), options(&model, None)).unwrap().0;
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/seed_questions.jsonl"))
            .unwrap();
    let (mut ok, mut total, mut oos_answered) = (0, 0, 0);
    for (i, line) in text.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let q: serde_json::Value = serde_json::from_str(line).unwrap();
        let out = ask(&e, i as i64, q["q"].as_str().unwrap());
        let answered = matches!(out.reply, Reply::Answer(_));
        total += 1;
        match q["title"].as_str() {
            None => {
                ok += usize::from(!answered);
                oos_answered += usize::from(answered);
            }
            Some(want) => ok += usize::from(answered && title(&e, &out).is_some_and(|t| fold(&t) == fold(want))),
        }
    }
    let overall = ok as f64 / total as f64;
    assert!(overall >= 0.95, "overall {overall:.3}");
    assert_eq!(oos_answered, 0, "no out-of-scope question answered");
}

#[test]
fn stand_in_vectors_fill_the_cache_for_every_text() {
    let Some(dir) = articlebot_testkit::require_test_model("the benchmark's stand-in vectors") else { return };
    let model = std::sync::Arc::new(Model::load(&dir, &ModelOptions { threads: 1 }).unwrap());
    let loaded = load_knowledge(&shipped()).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let written = fill_cache_with_stand_ins(&loaded.kb, &model, tmp.path()).unwrap();
    let (matcher, report) = Matcher::with_semantic(loaded.kb, model, Some(tmp.path()), &mut |_, _| {}).unwrap();
    assert_eq!((report.embedded, report.cached), (0, report.units), "the model ran: {report:?}");
    assert!(written > 0 && written <= report.units);
    assert_eq!(matcher.index_size().vectors, report.units);
}
