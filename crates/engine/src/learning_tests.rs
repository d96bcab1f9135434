//! The learning loop at the engine: signals from what users do, proposals, and a reviewed
//! question written into a copy of the shipped knowledge dir.

use std::path::{Path, PathBuf};

use crate::state::UserState;
use crate::*;
use articlebot_testkit::copy_dir;

const T0: u64 = 1_700_000_000;

/// An engine over a copy of the shipped knowledge dir (reviews write into it).
fn engine_on_copy() -> (tempfile::TempDir, PathBuf, Engine<SledStore>) {
    let tmp = tempfile::tempdir().unwrap();
    let kb = tmp.path().join("knowledge");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge"), &kb);
    let e = Engine::open(&kb, SledStore::temporary().unwrap(), Options::default()).unwrap().0;
    (tmp, kb, e)
}

fn user(id: i64) -> User {
    User { id, language: None }
}

fn ask(e: &Engine<SledStore>, id: i64, input: Input, at: u64) -> Reply {
    let out = e.handle(&user(id), input, None, at);
    assert!(out.stored.is_ok(), "{:?}", out.stored);
    out.reply
}

/// Asks `q` (which must get did-you-mean choices) and picks the `n`-th; the article picked.
fn ask_and_pick(e: &Engine<SledStore>, id: i64, q: &str, n: usize, at: u64) -> String {
    let Reply::Suggest(choices) = ask(e, id, Input::Question(q.into()), at) else { panic!("{q}: choices expected") };
    let Reply::Answer(a) = ask(e, id, Input::Pick(n), at + 1) else { panic!("an answer expected") };
    assert_eq!(a.article.id, choices[n - 1].topic.id);
    a.article.id
}

fn evidence(e: &Engine<SledStore>, article: &str) -> Vec<(String, Evidence)> {
    let mut v: Vec<(String, Evidence)> = e
        .store()
        .evidence()
        .unwrap()
        .into_iter()
        .filter(|p| p.article == article)
        .map(|p| (p.normalized, Evidence { last: 0, example: String::new(), ..p.evidence }))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

fn ev(users: u64, picks: u64, ups: u64, downs: u64, rephrases: u64) -> Evidence {
    Evidence { users, picks, ups, downs, rephrases, last: 0, example: String::new(), resolved: 0 }
}

#[test]
fn picks_votes_and_rephrases_count_once_per_user_and_pair() {
    let (_t, _kb, e) = engine_on_copy();
    let a = ask_and_pick(&e, 1, "calves", 2, T0);
    let calves = e.store().evidence().unwrap()[0].normalized.clone();
    assert_eq!(evidence(&e, &a), vec![(calves.clone(), ev(1, 1, 0, 0, 0))]);
    // The same user again, by button this time: still one pick.
    let Reply::Suggest(choices) = ask(&e, 1, Input::Question("Calves?".into()), T0 + 10) else { panic!() };
    let key = choices[1].topic.key.clone();
    assert!(matches!(
        ask(&e, 1, Input::Open { key: key.clone(), section: choices[1].section }, T0 + 11),
        Reply::Answer(_)
    ));
    assert_eq!(evidence(&e, &a), vec![(calves.clone(), ev(1, 1, 0, 0, 0))], "once per user");
    // 👍 for it, twice: one vote.
    ask(&e, 1, Input::Rate { up: true }, T0 + 12);
    ask(&e, 1, Input::Rate { up: true }, T0 + 13);
    assert_eq!(evidence(&e, &a), vec![(calves.clone(), ev(1, 1, 1, 0, 0))]);
    // A second user picks it and votes it down.
    assert_eq!(ask_and_pick(&e, 2, "calves", 2, T0), a);
    ask(&e, 2, Input::Rate { up: false }, T0 + 5);
    assert_eq!(evidence(&e, &a), vec![(calves.clone(), ev(2, 2, 1, 1, 0))]);
    // A user who changes their mind has one vote, the last: user 2's 👎 becomes a 👍, and back.
    ask(&e, 2, Input::Rate { up: true }, T0 + 6);
    assert_eq!(evidence(&e, &a), vec![(calves.clone(), ev(2, 2, 2, 0, 0))], "👍 replaced the 👎");
    ask(&e, 2, Input::Rate { up: false }, T0 + 7);
    assert_eq!(evidence(&e, &a), vec![(calves.clone(), ev(2, 2, 1, 1, 0))], "👎 replaced the 👍");
    // An article opened from elsewhere is not a pick, nor a vote on an older answer.
    ask(&e, 3, Input::Question("calves".into()), T0);
    ask(&e, 3, Input::Start(None), T0 + 1);
    assert!(matches!(ask(&e, 3, Input::Open { key, section: None }, T0 + 2), Reply::Answer(_)));
    ask(&e, 3, Input::Rate { up: true }, T0 + 3);
    assert_eq!(evidence(&e, &a), vec![(calves.clone(), ev(2, 2, 1, 1, 0))]);
}

#[test]
fn a_quick_new_question_after_an_answer_weakens_it() {
    let (_t, _kb, e) = engine_on_copy();
    let Reply::Answer(a) = ask(&e, 1, Input::Question("knees".into()), T0) else { panic!() };
    let id = a.article.id.clone();
    ask(&e, 1, Input::Question("pain in the knee when I jog".into()), T0 + REPHRASE_SECS);
    let ev1 = evidence(&e, &id);
    assert_eq!(ev1.len(), 1, "{ev1:?}");
    assert_eq!(ev1[0].1, ev(1, 0, 0, 0, 1));
    // Slower than that, after a 👍, or small talk: not a rephrase.
    ask(&e, 2, Input::Question("knees".into()), T0);
    ask(&e, 2, Input::Question("calves".into()), T0 + REPHRASE_SECS + 1);
    ask(&e, 3, Input::Question("knees".into()), T0);
    ask(&e, 3, Input::Rate { up: true }, T0 + 1);
    ask(&e, 3, Input::Question("calves".into()), T0 + 2);
    ask(&e, 4, Input::Question("knees".into()), T0);
    ask(&e, 4, Input::Question("thanks".into()), T0 + 1);
    assert_eq!(evidence(&e, &id), vec![(ev1[0].0.clone(), ev(2, 0, 1, 0, 1))]);
    // A rephrase alone never makes a proposal.
    assert!(e.proposals(1).unwrap().iter().all(|p| p.article != id || p.evidence.net() > 0));
}

#[test]
fn none_of_these_notes_the_question_as_unanswered_once() {
    let (_t, _kb, e) = engine_on_copy();
    assert!(matches!(ask(&e, 1, Input::NoneOfThese, T0), Reply::NoSuchChoice), "nothing on screen");
    ask(&e, 1, Input::Question("calves".into()), T0);
    assert!(matches!(ask(&e, 1, Input::NoneOfThese, T0 + 1), Reply::Unknown { noted: true, .. }));
    assert!(matches!(ask(&e, 1, Input::NoneOfThese, T0 + 2), Reply::NoSuchChoice), "once per question shown");
    ask(&e, 1, Input::Question("calves".into()), T0 + 3);
    ask(&e, 1, Input::Question("none of these".into()), T0 + 4);
    let un = e.store().unanswered(10).unwrap();
    assert_eq!(un.len(), 1, "{un:?}");
    assert_eq!((un[0].count, un[0].example.as_str()), (1, "calves"), "once per user");
    assert!(e.store().evidence().unwrap().is_empty(), "no article gains from it");
}

#[test]
fn forget_takes_the_users_signals_but_not_the_evidence() {
    let (_t, _kb, e) = engine_on_copy();
    let a = ask_and_pick(&e, 1, "calves", 1, T0);
    ask(&e, 1, Input::Forget, T0 + 5);
    assert_eq!(e.store().load_user(1).unwrap(), None::<UserState>);
    // The pair's evidence stays (it names no user); the user may give it again, as new.
    assert_eq!(ask_and_pick(&e, 1, "calves", 1, T0 + 10), a);
    assert_eq!(evidence(&e, &a)[0].1, ev(2, 2, 0, 0, 0));
}

#[test]
fn an_accepted_question_is_written_answers_the_next_user_and_undo_takes_it_back() {
    let (_t, _kb, e) = engine_on_copy();
    let a = ask_and_pick(&e, 1, "calves", 2, T0);
    assert_eq!(ask_and_pick(&e, 2, "calves", 2, T0), a);
    ask(&e, 2, Input::Rate { up: true }, T0 + 3);
    assert!(e.proposals(3).unwrap().is_empty(), "fewer users than asked for");
    let ps = e.proposals(2).unwrap();
    let p = &ps[0];
    assert_eq!((p.question.as_str(), p.article.as_str()), ("calves", a.as_str()));
    assert_eq!(Evidence { last: 0, example: String::new(), ..p.evidence.clone() }, ev(2, 2, 1, 0, 0));
    assert!(!p.alternatives.is_empty() && !p.alternatives.contains(&a), "{:?}", p.alternatives);

    let lib = e.library();
    let file = lib.kb().articles[lib.kb().by_id(&a).unwrap() as usize].source.clone();
    let before = std::fs::read_to_string(&file).unwrap();
    let done = e.accept(p, &a, T0 + 100).unwrap();
    assert!(done.written && done.answers_now, "{done:?}");
    assert_eq!(done.file, file);
    let after = std::fs::read_to_string(&file).unwrap();
    assert!(after.contains("\"calves\""), "{after}");
    // Only the one question is new: every line of the file before is still there, in order.
    assert_eq!(after.lines().filter(|l| !before.lines().any(|b| b == *l)).count(), 1, "{after}");
    let Reply::Answer(got) = ask(&e, 9, Input::Question("calves".into()), T0 + 101) else { panic!("now answered") };
    assert_eq!(got.article.id, a);
    assert!(e.proposals(1).unwrap().iter().all(|q| q.normalized != p.normalized), "decided");
    assert_eq!(e.learned().unwrap().len(), 1);

    let undone = e.undo().unwrap().unwrap();
    assert_eq!((undone.verdict, undone.article.as_str()), (Verdict::Added, a.as_str()));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before, "byte for byte as before");
    assert!(matches!(ask(&e, 10, Input::Question("calves".into()), T0 + 102), Reply::Suggest(_)));
    assert!(e.learned().unwrap().is_empty());
    assert_eq!(e.proposals(2).unwrap()[0].article, a, "proposed again");
    assert!(e.undo().unwrap().is_none(), "nothing more to undo");
}

#[test]
fn another_article_can_be_chosen_and_a_rejected_pair_is_never_proposed_again() {
    let (_t, _kb, e) = engine_on_copy();
    let a = ask_and_pick(&e, 1, "calves", 1, T0);
    let p = e.proposals(1).unwrap().into_iter().find(|p| p.article == a).unwrap();
    e.reject(&p, T0 + 10).unwrap();
    assert!(e.proposals(1).unwrap().iter().all(|q| q.normalized != p.normalized || q.article != a));
    for u in 2..6 {
        ask_and_pick(&e, u, "calves", 1, T0 + 20);
    }
    assert!(e.proposals(1).unwrap().iter().all(|q| q.normalized != p.normalized || q.article != a), "never again");
    // Undoing the rejection lets it be proposed again; another article may be chosen instead.
    e.undo().unwrap().unwrap();
    let p = e.proposals(1).unwrap().into_iter().find(|p| p.article == a).unwrap();
    let other = p.alternatives[0].clone();
    let done = e.accept(&p, &other, T0 + 30).unwrap();
    assert!(done.written && done.answers_now, "{done:?}");
    assert_eq!(e.learned().unwrap()[0].article, other);
    let missing = e.accept(&p, "no-such-article", T0).unwrap_err();
    assert!(matches!(missing, LearnError::NoArticle(_)), "{missing}");
}

#[test]
fn a_read_only_article_file_is_refused_and_nothing_is_recorded() {
    use std::os::unix::fs::PermissionsExt;
    let (_t, _kb, e) = engine_on_copy();
    let a = ask_and_pick(&e, 1, "calves", 2, T0);
    let p = e.proposals(1).unwrap().into_iter().find(|p| p.article == a).unwrap();
    let lib = e.library();
    let file = lib.kb().articles[lib.kb().by_id(&a).unwrap() as usize].source.clone();
    let before = std::fs::read_to_string(&file).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).unwrap();
    let err = e.accept(&p, &a, T0).unwrap_err();
    assert!(err.to_string().contains("read-only") && err.to_string().contains("nothing was changed"), "{err}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    assert!(e.store().verdicts().unwrap().is_empty());
    assert_eq!(e.proposals(1).unwrap().iter().filter(|q| q.article == a).count(), 1, "still to review");
}

#[test]
fn signals_survive_a_restart_of_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let kb = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge");
    let data = tmp.path().join("data");
    let a = {
        let e = Engine::open(&kb, SledStore::open(&data).unwrap(), Options::default()).unwrap().0;
        let a = ask_and_pick(&e, 1, "calves", 1, T0);
        e.store().flush().unwrap();
        a
    };
    let e = Engine::open(&kb, SledStore::open(&data).unwrap(), Options::default()).unwrap().0;
    assert_eq!(evidence(&e, &a)[0].1, ev(1, 1, 0, 0, 0));
    assert_eq!(ask_and_pick(&e, 1, "calves", 1, T0 + 9), a);
    assert_eq!(evidence(&e, &a)[0].1, ev(1, 1, 0, 0, 0), "still once per user after a restart");
}

/// An engine over a copy of the shipped knowledge dir whose site.toml accepts a question by
/// itself once `n` users backed it.
fn engine_auto(n: u64) -> (tempfile::TempDir, PathBuf, Engine<SledStore>) {
    let tmp = tempfile::tempdir().unwrap();
    let kb = tmp.path().join("knowledge");
    copy_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge"), &kb);
    let site = kb.join("site.toml");
    let text = std::fs::read_to_string(&site).unwrap();
    std::fs::write(&site, format!("{text}\n[learning]\nauto_accept_users = {n}\n")).unwrap();
    let e = Engine::open(&kb, SledStore::temporary().unwrap(), Options::default()).unwrap().0;
    (tmp, kb, e)
}

/// Asks `q`, which must get choices, picks the `n`-th and says whether the pick was queued.
fn pick_due(e: &Engine<SledStore>, id: i64, q: &str, n: usize, at: u64) -> (String, bool) {
    let Reply::Suggest(choices) = ask(e, id, Input::Question(q.into()), at) else { panic!("{q}: choices expected") };
    let out = e.handle(&user(id), Input::Pick(n), None, at + 1);
    let Reply::Answer(a) = out.reply else { panic!("an answer expected") };
    assert_eq!(a.article.id, choices[n - 1].topic.id);
    (a.article.id, out.learning_due)
}

fn file_of(e: &Engine<SledStore>, article: &str) -> PathBuf {
    let lib = e.library();
    lib.kb().articles[lib.kb().by_id(article).unwrap() as usize].source.clone()
}

#[test]
fn automatic_acceptance_is_off_unless_the_site_turns_it_on() {
    let (_t, _kb, e) = engine_on_copy();
    let mut a = String::new();
    for u in 1..=5 {
        let (got, due) = pick_due(&e, u, "calves", 2, T0 + 10 * u as u64);
        assert!(!due, "nothing is queued when the site has no auto_accept_users");
        a = got;
    }
    let before = std::fs::read_to_string(file_of(&e, &a)).unwrap();
    assert!(e.accept_due(T0 + 100).is_empty());
    assert_eq!(std::fs::read_to_string(file_of(&e, &a)).unwrap(), before);
    assert!(e.store().verdicts().unwrap().is_empty());
    assert_eq!(e.proposals(5).unwrap()[0].article, a, "still waits for review");
}

#[test]
fn a_question_is_accepted_automatically_at_exactly_n_users_and_undo_takes_it_back_for_good() {
    let (_t, _kb, e) = engine_auto(3);
    let (a, _) = pick_due(&e, 1, "calves", 2, T0);
    let file = file_of(&e, &a);
    let before = std::fs::read_to_string(&file).unwrap();
    // The same user again is still one user: nothing is accepted.
    pick_due(&e, 1, "calves", 2, T0 + 5);
    assert!(e.accept_due(T0 + 6).is_empty());
    let (a2, due) = pick_due(&e, 2, "calves", 2, T0 + 10);
    assert_eq!(a2, a);
    assert!(due, "a pick is queued for the drain, which decides");
    assert!(e.accept_due(T0 + 12).is_empty(), "two users of three");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before, "nothing written before N users");
    assert!(e.store().verdicts().unwrap().is_empty());
    // Handling the third user's pick writes nothing yet: the front end drains after replying.
    let (_, due) = pick_due(&e, 3, "calves", 2, T0 + 20);
    assert!(due);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before, "not written on the request path");
    let done = e.accept_due(T0 + 22);
    assert_eq!(done.len(), 1, "{done:?}");
    assert_eq!((done[0].proposal.article.as_str(), done[0].proposal.evidence.users), (a.as_str(), 3));
    let accepted = done[0].result.as_ref().unwrap();
    assert!(accepted.written && accepted.answers_now, "{accepted:?}");
    assert!(std::fs::read_to_string(&file).unwrap().contains("\"calves\""));
    let learned = e.learned().unwrap();
    assert_eq!(learned.len(), 1);
    assert!(learned[0].automatic && learned[0].verdict == Verdict::Added, "{learned:?}");
    let Reply::Answer(got) = ask(&e, 9, Input::Question("calves".into()), T0 + 30) else { panic!("answered now") };
    assert_eq!(got.article.id, a);
    assert!(e.accept_due(T0 + 31).is_empty(), "drained");

    // Undo: the question comes out again, and more users do not put it back by themselves.
    let undone = e.undo().unwrap().unwrap();
    assert!(undone.automatic && undone.verdict == Verdict::Added, "{undone:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before, "byte for byte as before");
    assert!(e.learned().unwrap().is_empty());
    let left = e.store().verdicts().unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!((left[0].verdict, left[0].article.as_str(), left[0].automatic), (Verdict::Rejected, a.as_str(), false));
    for u in 4..8 {
        pick_due(&e, u, "calves", 2, T0 + 40 + u as u64);
    }
    assert!(e.accept_due(T0 + 60).is_empty(), "an undone automatic acceptance stays undone");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    // Undoing that rejection too hands the pair to review again (not to users alone).
    e.undo().unwrap().unwrap();
    assert!(e.proposals(3).unwrap().iter().any(|p| p.article == a));
}

#[test]
fn a_rejected_pair_is_never_accepted_automatically() {
    let (_t, _kb, e) = engine_auto(2);
    let (a, _) = pick_due(&e, 1, "calves", 1, T0);
    let p = e.proposals(1).unwrap().into_iter().find(|p| p.article == a).unwrap();
    e.reject(&p, T0 + 5).unwrap();
    let before = std::fs::read_to_string(file_of(&e, &a)).unwrap();
    for u in 2..6 {
        let (_, due) = pick_due(&e, u, "calves", 1, T0 + 10 * u as u64);
        assert!(due);
        assert!(e.accept_due(T0 + 10 * u as u64 + 2).is_empty(), "user {u}");
    }
    assert_eq!(std::fs::read_to_string(file_of(&e, &a)).unwrap(), before);
    assert_eq!(e.store().verdicts().unwrap().len(), 1, "only the rejection");
}

#[test]
fn a_failed_automatic_acceptance_is_reported_once_and_not_retried() {
    use std::os::unix::fs::PermissionsExt;
    let (_t, _kb, e) = engine_auto(2);
    let (a, _) = pick_due(&e, 1, "calves", 2, T0);
    let file = file_of(&e, &a);
    let before = std::fs::read_to_string(&file).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).unwrap();
    pick_due(&e, 2, "calves", 2, T0 + 10);
    let done = e.accept_due(T0 + 12);
    assert_eq!(done.len(), 1);
    let err = done[0].result.as_ref().unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    assert!(e.store().verdicts().unwrap().is_empty());
    // Another user's pick is not queued again: the pair waits for review.
    let (_, due) = pick_due(&e, 3, "calves", 2, T0 + 20);
    assert!(!due, "a failed pair is not tried again by this process");
    assert!(e.accept_due(T0 + 22).is_empty());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), before);
    assert!(e.proposals(2).unwrap().iter().any(|p| p.article == a), "still to review");
}

#[test]
fn an_article_confirmed_after_a_rephrase_counts_for_the_question_answered_wrong() {
    let (_t, _kb, e) = engine_on_copy();
    let Reply::Answer(first) = ask(&e, 1, Input::Question("knees".into()), T0) else { panic!("knees is answered") };
    let knees = e.store().load_user(1).unwrap().unwrap().asked.unwrap().normalized;
    // Not what the user wanted: they ask again at once, get choices and pick one.
    let picked = ask_and_pick(&e, 1, "calves", 2, T0 + 5);
    assert_ne!(picked, first.article.id);
    let for_knees = |article: &str| {
        evidence(&e, article).into_iter().find(|(q, _)| *q == knees).map(|(_, ev)| ev).unwrap_or_default()
    };
    assert_eq!(for_knees(&first.article.id), ev(1, 0, 0, 0, 1), "against the wrong answer");
    assert_eq!(for_knees(&picked), Evidence { resolved: 1, ..ev(1, 0, 0, 0, 0) }, "for the article found");
    // A 👍 on top is the same confirmation: credited once.
    ask(&e, 1, Input::Rate { up: true }, T0 + 9);
    assert_eq!(for_knees(&picked).resolved, 1);
    let p = e.proposals(1).unwrap().into_iter().find(|p| p.normalized == knees).expect("proposed for knees");
    assert_eq!((p.question.as_str(), p.article.as_str()), ("knees", picked.as_str()));

    // A 👍 for the rephrasing's own answer confirms it the same way; a 👎 does not.
    ask(&e, 2, Input::Question("knees".into()), T0);
    let Reply::Answer(b) = ask(&e, 2, Input::Question("What is the correct way to do sit-ups?".into()), T0 + 5) else {
        panic!("answered by title")
    };
    assert_ne!(b.article.id, first.article.id);
    ask(&e, 2, Input::Rate { up: false }, T0 + 6);
    assert_eq!(for_knees(&b.article.id), Evidence::default(), "a 👎 confirms nothing");
    ask(&e, 2, Input::Rate { up: true }, T0 + 7);
    assert_eq!(for_knees(&b.article.id), Evidence { resolved: 1, ..ev(1, 0, 0, 0, 0) });
    assert_eq!(for_knees(&first.article.id).rephrases, 2, "users 1 and 2 rephrased the answer to knees");
    // Too slow to be a rephrase, nothing is credited.
    ask(&e, 4, Input::Question("knees".into()), T0);
    assert_eq!(ask_and_pick(&e, 4, "calves", 2, T0 + REPHRASE_SECS + 1), picked);
    assert_eq!(for_knees(&picked).resolved, 1);
}
