//! Waiting for an answer at the engine, and the review session shared by the front ends.

use std::path::{Path, PathBuf};

use crate::*;
use articlebot_testkit::copy_dir;

const T0: u64 = 1_700_000_000;
const BREAD: &str = "how do I bake sourdough bread";

fn engine_on_copy() -> (tempfile::TempDir, PathBuf, Engine<SledStore>) {
    let tmp = tempfile::tempdir().unwrap();
    let kb = tmp.path().join("knowledge");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge"), &kb);
    let e = Engine::open(&kb, SledStore::temporary().unwrap(), Options::default()).unwrap().0;
    (tmp, kb, e)
}

fn ask(e: &Engine<SledStore>, id: i64, input: Input, at: u64) -> Reply {
    e.handle(&User { id, language: None }, input, None, at).reply
}

/// Asks the bread question; the id its don't-know offers to wait on.
fn unknown(e: &Engine<SledStore>, id: i64) -> u64 {
    match ask(e, id, Input::Question(BREAD.into()), T0) {
        Reply::Unknown { noted: true, watch: Some(q) } => q,
        other => panic!("a don't-know with a watch expected: {other:?}"),
    }
}

#[test]
fn a_watch_is_only_for_the_last_unanswered_question_and_capped() {
    let (_t, _kb, e) = engine_on_copy();
    assert_eq!(e.watch(1, 42, T0).unwrap(), Watching::Stale, "a user with no state");
    let q = unknown(&e, 1);
    assert_eq!(e.watch(1, q ^ 1, T0).unwrap(), Watching::Stale, "another question's id");
    assert_eq!(e.watch(2, q, T0).unwrap(), Watching::Stale, "another user's question");
    assert_eq!(e.watch(1, q, T0).unwrap(), Watching::Added);
    assert_eq!(e.watch(1, q, T0).unwrap(), Watching::Already);
    // An answered question since: the old button is stale.
    let Reply::Answer(_) = ask(&e, 1, Input::Question("knee pain when running".into()), T0 + 1) else { panic!() };
    assert_eq!(e.watch(1, q, T0).unwrap(), Watching::Stale);
    // Did-you-mean choices are not a don't-know.
    let Reply::Suggest(_) = ask(&e, 3, Input::Question("calves".into()), T0) else { panic!() };
    let calves = crate::watch::question_id(&e.store().load_user(3).unwrap().unwrap().asked.unwrap().normalized);
    assert_eq!(e.watch(3, calves, T0).unwrap(), Watching::Stale);
    // Five questions per user at most.
    for i in 0..MAX_WATCHES_PER_USER {
        let Reply::Unknown { watch: Some(q), .. } = ask(&e, 4, Input::Question(format!("bread recipe number {i}")), T0)
        else {
            panic!("a don't-know")
        };
        assert_eq!(e.watch(4, q, T0).unwrap(), Watching::Added, "{i}");
    }
    let q = unknown(&e, 4);
    assert_eq!(e.watch(4, q, T0).unwrap(), Watching::Full);
    assert_eq!(e.store().watches().unwrap().iter().filter(|w| w.user == 4).count(), MAX_WATCHES_PER_USER);
    // /forget takes them all.
    ask(&e, 4, Input::Forget, T0);
    assert!(e.store().watches().unwrap().iter().all(|w| w.user != 4));
}

#[test]
fn a_reload_that_answers_a_watched_question_answers_it_once() {
    let (_t, kb, e) = engine_on_copy();
    let q = unknown(&e, 1);
    assert_eq!(e.watch(1, q, T0).unwrap(), Watching::Added);
    let q2 = unknown(&e, 2);
    assert_eq!(e.watch(2, q2, T0).unwrap(), Watching::Added);
    assert!(e.answered_watches(T0).unwrap().is_empty(), "not answerable yet");
    assert_eq!(e.store().watches().unwrap().len(), 2, "kept");
    std::fs::write(
        kb.join("articles/how-to-bake-sourdough-bread.md"),
        "+++\nid = \"sourdough\"\ntitle = \"How to bake sourdough bread\"\nquestions = [\"how do I bake sourdough bread\"]\n+++\n\nFeed the starter, knead, let it rise, bake.\n",
    )
    .unwrap();
    ask(&e, 2, Input::Forget, T0);
    e.reload().unwrap();
    let got = e.answered_watches(T0 + 5).unwrap();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].user, got[0].question.as_str()), (1, BREAD));
    let Reply::Answer(a) = &got[0].outcome.reply else { panic!("{:?}", got[0].outcome.reply) };
    assert_eq!(a.article.id, "sourdough");
    assert!(e.answered_watches(T0 + 6).unwrap().is_empty(), "once");
    assert!(e.store().watches().unwrap().is_empty());
    // The user's conversation is at the answer: a 👍 rates it.
    assert!(matches!(ask(&e, 1, Input::Rate { up: true }, T0 + 7), Reply::FeedbackThanks { up: true }));
}

#[test]
fn a_review_session_skips_by_pair_and_cards_name_titles() {
    let (_t, _kb, e) = engine_on_copy();
    let Reply::Suggest(choices) = ask(&e, 1, Input::Question("calves".into()), T0) else { panic!() };
    ask(&e, 1, Input::Pick(1), T0 + 1);
    let mut session = ReviewSession::default();
    let ps = e.to_review(&session, MIN_USERS).unwrap();
    assert_eq!(ps.len(), 1);
    let p = &ps[0];
    assert_eq!(e.proposal(p.id(), MIN_USERS).unwrap().as_ref(), Some(p));
    assert_eq!(e.proposal(p.id() ^ 1, MIN_USERS).unwrap(), None);
    let card = e.card(p);
    assert_eq!(
        (card.article.id.as_str(), card.article.title.as_str()),
        (p.article.as_str(), choices[0].topic.title.as_str())
    );
    assert!(is_key(&card.article.key));
    assert_eq!(card.alternatives.iter().map(|a| a.id.clone()).collect::<Vec<_>>(), p.alternatives);
    assert_eq!(card.evidence.summary(), "1 user(s): 1 pick(s), 0 👍, 0 👎, 0 rephrase(s)");
    session.skip(p);
    assert!(e.to_review(&session, MIN_USERS).unwrap().is_empty());
    assert!(e.proposal(p.id(), MIN_USERS).unwrap().is_some(), "a skipped card still works");
    assert_eq!(e.to_review(&ReviewSession::default(), MIN_USERS).unwrap().len(), 1, "a new session shows it");
}
