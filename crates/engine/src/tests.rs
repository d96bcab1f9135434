use crate::state::UserState;
use crate::*;

fn shipped() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge")
}

fn engine() -> Engine<SledStore> {
    let store = SledStore::temporary().expect("temporary sled");
    Engine::open(&shipped(), store, Options::default()).expect("shipped knowledge loads").0
}

fn user(id: i64) -> User {
    User { id, language: Some("en".into()) }
}

fn ask(e: &Engine<SledStore>, id: i64, input: Input) -> Reply {
    let out = e.handle(&user(id), input, None, 1_700_000_000);
    assert!(out.stored.is_ok(), "{:?}", out.stored);
    out.reply
}

fn answer(r: Reply) -> AnswerView {
    match r {
        Reply::Answer(a) => a,
        other => panic!("expected an answer, got {other:?}"),
    }
}

#[test]
fn a_question_gets_the_article_with_next_section_and_related() {
    let e = engine();
    let a = answer(ask(&e, 1, Input::Question("my knees hurt after jogging, why?".into())));
    assert_eq!(a.article.title, "What causes knee pain when running?");
    assert_eq!(a.sections, 5);
    let s = a.section.unwrap();
    assert_eq!(a.next, (s + 1 < 5).then_some(s + 1));
    assert!(!a.related.is_empty() && a.related.len() <= 4);
    assert!(!a.snippet.highlights.is_empty(), "matched words are marked");
    assert!(matches!(a.link, Some(Link::Start { ref id, ref param })
        if id == "what-causes-knee-pain-when-running" && param == id));
}

#[test]
fn more_walks_the_sections_then_ends() {
    let e = engine();
    let key = e.library().kb().articles[e.library().kb().by_id("what-causes-knee-pain-when-running").unwrap() as usize]
        .key
        .clone();
    let first = answer(ask(&e, 2, Input::Open { key, section: None }));
    assert_eq!(first.section, Some(0));
    for want in 1..5 {
        let a = answer(ask(&e, 2, Input::More));
        assert_eq!(a.section, Some(want));
    }
    assert!(matches!(ask(&e, 2, Input::More), Reply::EndOfArticle { .. }));
}

#[test]
fn suggestions_are_picked_by_number() {
    let e = engine();
    // Force a did-you-mean by asking about two topics at once.
    let r = ask(&e, 3, Input::Start(None));
    let Reply::Welcome { popular, .. } = r else { panic!("welcome expected") };
    assert!(!popular.is_empty());
    let picked = answer(ask(&e, 3, Input::Question("1".into())));
    assert_eq!(picked.article.id, popular[0].id);
    assert!(matches!(ask(&e, 3, Input::Pick(99)), Reply::NoSuchChoice));
}

#[test]
fn out_of_scope_is_unknown_and_logged() {
    let e = engine();
    assert!(matches!(ask(&e, 4, Input::Question("how do I bake bread".into())), Reply::Unknown { .. }));
    assert!(matches!(ask(&e, 5, Input::Question("How do I BAKE bread?".into())), Reply::Unknown { .. }));
    let un = e.store().unanswered(10).unwrap();
    assert_eq!(un.len(), 1, "{un:?}");
    assert_eq!(un[0].count, 2);
    assert_eq!(un[0].normalized, "bake bread");
}

#[test]
fn small_talk_empty_and_non_text() {
    let e = engine();
    assert!(matches!(
        ask(&e, 6, Input::Question("hi there".into())),
        Reply::Smalltalk { kind: Smalltalk::Greeting, .. }
    ));
    assert!(matches!(ask(&e, 6, Input::Question("   ".into())), Reply::Empty));
    assert!(matches!(ask(&e, 6, Input::NotText), Reply::TextOnly));
    assert!(matches!(ask(&e, 6, Input::More), Reply::NothingToContinue));
}

#[test]
fn gone_topics_and_forged_keys_change_nothing() {
    let e = engine();
    answer(ask(&e, 7, Input::Question("knee pain running".into())));
    let before = e.store().load_user(7).unwrap().unwrap().position;
    assert!(matches!(ask(&e, 7, Input::Open { key: "nope1234".into(), section: Some(0) }), Reply::Gone));
    assert!(matches!(ask(&e, 7, Input::Feedback { key: "../../etc".into(), section: None, up: true }), Reply::Gone));
    assert_eq!(e.store().load_user(7).unwrap().unwrap().position, before);
}

#[test]
fn back_returns_to_the_previous_article() {
    let e = engine();
    let first = answer(ask(&e, 8, Input::Question("knee pain when running".into())));
    let second = answer(ask(&e, 8, Input::Question("sportswear for running".into())));
    assert_ne!(first.article.id, second.article.id);
    let back = answer(ask(&e, 8, Input::Back));
    assert_eq!(back.article.id, first.article.id);
    assert!(matches!(ask(&e, 8, Input::Back), Reply::NothingBefore));
}

#[test]
fn back_after_finishing_an_article_shows_its_last_section() {
    let e = engine();
    let first = answer(ask(&e, 9, Input::Question("knee pain when running".into())));
    while !matches!(ask(&e, 9, Input::More), Reply::EndOfArticle { .. }) {}
    answer(ask(&e, 9, Input::Question("sportswear for running".into())));
    let back = answer(ask(&e, 9, Input::Back));
    assert_eq!(back.article.id, first.article.id);
    assert_eq!(back.section, Some(first.sections - 1));
}

#[test]
fn related_topics_put_unseen_first() {
    let e = engine();
    let a = answer(ask(&e, 9, Input::Question("knee pain when running".into())));
    let first_related = a.related[0].clone();
    answer(ask(&e, 9, Input::Open { key: first_related.key.clone(), section: None }));
    let again = answer(ask(&e, 9, Input::Question("knee pain when running".into())));
    assert!(!again.related.iter().any(|r| r.id == first_related.id), "a seen topic moves behind unseen ones");
}

#[test]
fn stubs_show_their_teaser_and_link_back() {
    let e = engine();
    let lib = e.library();
    let idx = lib.kb().by_id("metabolism-and-weight-loss").unwrap();
    let key = lib.kb().articles[idx as usize].key.clone();
    let a = answer(ask(&e, 10, Input::Open { key, section: None }));
    assert_eq!(a.section, None);
    assert!(a.snippet.text.starts_with("Metabolism is related"));
    assert!(a.related.iter().any(|r| r.id == "what-causes-knee-pain-when-running"));
}

/// The shipped stubs have no url and the site no base url: the console and Telegram offered a
/// "full article" link that only showed the same summary again, and "more" repeated it.
#[test]
fn a_stub_says_what_it_is_and_offers_full_articles_instead_of_looping() {
    let e = engine();
    let lib = e.library();
    let kb = lib.kb();
    let stub = kb.by_id("metabolism-and-weight-loss").unwrap();
    let key = kb.articles[stub as usize].key.clone();
    let a = answer(ask(&e, 70, Input::Open { key, section: None }));
    assert!(a.stub);
    assert_eq!(a.article.title, "Metabolism and Weight Loss");
    assert_eq!(a.link, None, "no link back to the same summary");
    assert!(!a.related.is_empty());
    assert!(a.related.iter().all(|t| !kb.articles[t.idx as usize].is_stub()), "{:?}", a.related);
    match ask(&e, 70, Input::More) {
        Reply::EndOfArticle { stub: true, related, .. } => assert_eq!(related, a.related),
        other => panic!("more on a stub: {other:?}"),
    }
    // The full articles offered are picked by number.
    let picked = answer(ask(&e, 70, Input::Pick(1)));
    assert!(!picked.stub);
    assert_eq!(Some(&picked.article), a.offered().next());
}

#[test]
fn the_next_and_previous_articles_are_offered_apart_from_related() {
    let e = engine();
    let a = answer(ask(&e, 71, Input::Start(Some("what-causes-knee-pain-when-running".into()))));
    let next = a.next_article.clone().expect("the article has a next one");
    let prev = a.prev_article.clone().expect("and a previous one");
    assert_eq!(next.id, "what-sportswear-should-i-wear-for-running");
    assert_eq!(prev.id, "what-should-i-do-if-i-cant-play-basketball");
    assert!(!a.related.contains(&next) && !a.related.contains(&prev));
    assert_eq!(a.related.len(), 4);
    let offered: Vec<&TopicRef> = a.offered().collect();
    assert_eq!(offered[..2], [&next, &prev]);
    assert_eq!(answer(ask(&e, 71, Input::Pick(1))).article, next, "1 is the next article");
    assert_eq!(answer(ask(&e, 71, Input::Back)).article.id, "what-causes-knee-pain-when-running");
    let end = loop {
        if let r @ Reply::EndOfArticle { .. } = ask(&e, 71, Input::More) {
            break r;
        }
    };
    let Reply::EndOfArticle { next_article, stub: false, .. } = end else { panic!("{end:?}") };
    assert_eq!(next_article, Some(next), "the end of an article leads on to the next one");
}

#[test]
fn numbers_and_more_follow_the_last_list_and_back_walks_back_through_it() {
    let e = engine();
    let Reply::Topics { items: first, .. } = ask(&e, 72, Input::Topics(0)) else { panic!() };
    let Reply::Topics { page: 1, items: second, .. } = ask(&e, 72, Input::More) else { panic!("more: next page") };
    assert_ne!(first, second);
    assert_eq!(answer(ask(&e, 72, Input::Pick(1))).article, second[0], "numbers pick from the page shown");
    let Reply::Topics { page: 1, .. } = ask(&e, 72, Input::Back) else { panic!("back to the page") };
    let Reply::Topics { page: 0, .. } = ask(&e, 72, Input::Back) else { panic!("back to the first page") };
    assert!(matches!(ask(&e, 72, Input::Back), Reply::NothingBefore));

    let Reply::Suggest(choices) = ask(&e, 73, Input::Question("running".into())) else { panic!("choices") };
    assert!(matches!(ask(&e, 73, Input::More), Reply::NoMoreChoices));
    assert!(matches!(ask(&e, 73, Input::Back), Reply::NothingBefore));
    let picked = answer(ask(&e, 73, Input::Pick(2)));
    assert_eq!(picked.article, choices[1].topic);
    assert_eq!(ask(&e, 73, Input::Back), Reply::Suggest(choices.clone()), "back returns to the choices");
    assert_eq!(answer(ask(&e, 73, Input::Pick(1))).article, choices[0].topic);
}

#[test]
fn typed_votes_rate_the_answer_on_screen_and_nothing_after_reset() {
    let e = engine();
    assert!(matches!(ask(&e, 74, Input::Rate { up: true }), Reply::NothingToRate), "before any answer");
    let a = answer(ask(&e, 74, Input::Question("knee pain when running".into())));
    assert!(matches!(ask(&e, 74, Input::Rate { up: true }), Reply::FeedbackThanks { up: true }));
    assert_eq!(e.store().stats(1_700_000_000, 5).unwrap().feedback, vec![(a.article.id.clone(), 1, 0)]);
    ask(&e, 74, Input::Reset);
    assert!(matches!(ask(&e, 74, Input::Rate { up: false }), Reply::NothingToRate));
    answer(ask(&e, 74, Input::Question("knee pain when running".into())));
    ask(&e, 74, Input::Forget);
    assert!(matches!(ask(&e, 74, Input::Rate { up: false }), Reply::NothingToRate));
    assert_eq!(e.store().stats(1_700_000_000, 5).unwrap().feedback, vec![(a.article.id.clone(), 1, 0)]);
}

#[test]
fn only_questions_are_noted_and_noted_is_said_only_when_kept() {
    let e = engine();
    for typed in ["???", "🙂", "up", "/foo", "/stats", "more", "back", "👍"] {
        let r = ask(&e, 75, Input::Question(typed.into()));
        assert!(!matches!(r, Reply::Unknown { .. }), "{typed}: {r:?}");
    }
    assert!(e.store().unanswered(10).unwrap().is_empty(), "{:?}", e.store().unanswered(10));
    assert!(matches!(ask(&e, 75, Input::Question("how do I bake bread".into())), Reply::Unknown { noted: true, .. }));
    let throwaway = Options { keeps_questions: false, ..Options::default() };
    let e = Engine::open(&shipped(), SledStore::temporary().unwrap(), throwaway).unwrap().0;
    assert!(matches!(ask(&e, 75, Input::Question("how do I bake bread".into())), Reply::Unknown { noted: false, .. }));
    let full = Engine::open(&shipped(), FullDisk(SledStore::temporary().unwrap()), Options::default()).unwrap().0;
    let out = full.handle(&user(1), Input::Question("how do I bake bread".into()), None, 1);
    assert!(matches!(out.reply, Reply::Unknown { noted: false, .. }), "a failed write is not noted");
}

#[test]
fn did_you_mean_choices_keep_the_ranking_order() {
    let e = engine();
    for q in ["running", "muscle"] {
        let out = e.handle(&user(76), Input::Question(q.into()), None, 1);
        let Reply::Suggest(choices) = out.reply else { panic!("{q}: choices expected") };
        let hits = out.decision.unwrap().hits;
        let ranked: Vec<(u32, Option<usize>)> =
            hits.iter().take(choices.len()).map(|h| (h.article, h.section)).collect();
        let shown: Vec<(u32, Option<usize>)> = choices.iter().map(|c| (c.topic.idx, c.section)).collect();
        assert_eq!(shown, ranked, "{q}");
        assert!(hits.windows(2).all(|w| w[0].score >= w[1].score), "{q}: best first");
    }
}

#[test]
fn reset_and_forget() {
    let e = engine();
    answer(ask(&e, 11, Input::Question("knee pain when running".into())));
    assert!(matches!(ask(&e, 11, Input::Reset), Reply::Reset));
    assert_eq!(e.store().load_user(11).unwrap().unwrap().position, None);
    assert!(matches!(ask(&e, 11, Input::Forget), Reply::Forgotten { existed: Some(true) }));
    assert!(e.store().load_user(11).unwrap().is_none());
    assert!(matches!(ask(&e, 11, Input::Forget), Reply::Forgotten { existed: Some(false) }));
}

#[test]
fn redelivered_updates_are_not_answered_twice() {
    let e = engine();
    let u = user(12);
    let out = e.handle(&u, Input::Question("knee pain".into()), Some(41), 1);
    assert!(matches!(out.reply, Reply::Answer(_)));
    e.replied(12, 41).unwrap();
    assert!(matches!(e.handle(&u, Input::Question("knee pain".into()), Some(41), 2).reply, Reply::Duplicate));
    assert!(matches!(e.handle(&u, Input::Question("knee pain".into()), Some(42), 2).reply, Reply::Answer(_)));
}

#[test]
fn deep_links_open_by_id_or_key() {
    let e = engine();
    let lib = e.library();
    let idx = lib.kb().by_id("what-sportswear-should-i-wear-for-running").unwrap();
    let key = lib.kb().articles[idx as usize].key.clone();
    for p in ["what-sportswear-should-i-wear-for-running", key.as_str()] {
        let a = answer(ask(&e, 13, Input::Start(Some(p.into()))));
        assert_eq!(a.article.idx, idx);
    }
    assert!(matches!(ask(&e, 13, Input::Start(Some("no-such-article".into()))), Reply::Welcome { .. }));
}

#[test]
fn topics_are_paginated() {
    let e = engine();
    let Reply::Topics { page, pages, items } = ask(&e, 14, Input::Topics(0)) else { panic!() };
    assert_eq!((page, pages), (0, 3));
    assert_eq!(items.len(), 8);
    let Reply::Topics { page, items, .. } = ask(&e, 14, Input::Topics(99)) else { panic!() };
    assert_eq!(page, 2);
    assert_eq!(items.len(), 2);
}

#[test]
fn reload_swaps_the_knowledge_base() {
    let e = engine();
    let before = e.library().generation;
    let report = e.reload().expect("the shipped knowledge reloads");
    assert_eq!(report.generation, before + 1);
    assert_eq!(e.library().generation, before + 1);
    assert_eq!(report.stats, e.library().kb().stats());
}

#[test]
fn statistics_count_questions_and_feedback() {
    let e = engine();
    let a = answer(ask(&e, 15, Input::Question("knee pain when running".into())));
    ask(&e, 15, Input::Feedback { key: a.article.key.clone(), section: a.section, up: true });
    ask(&e, 16, Input::Question("how to cook rice".into()));
    let s = e.store().stats(1_700_000_000, 5).unwrap();
    assert_eq!(s.users, 2);
    assert_eq!(s.questions_total, 2);
    assert_eq!(s.answered_total, 1);
    assert_eq!(s.feedback, vec![(a.article.id.clone(), 1, 0)]);
}

#[test]
fn a_vote_counts_once_and_can_be_changed() {
    let e = engine();
    let a = answer(ask(&e, 18, Input::Question("knee pain when running".into())));
    let vote = |id, up| ask(&e, id, Input::Feedback { key: a.article.key.clone(), section: a.section, up });
    let totals = || e.store().stats(1_700_000_000, 5).unwrap().feedback;
    vote(18, true);
    vote(18, true);
    assert_eq!(totals(), vec![(a.article.id.clone(), 1, 0)], "the same vote twice is one vote");
    vote(18, false);
    assert_eq!(totals(), vec![(a.article.id.clone(), 0, 1)], "a changed vote moves");
    vote(19, false);
    assert_eq!(totals(), vec![(a.article.id.clone(), 0, 2)], "another user's vote counts");
    let forged = Input::Feedback { key: a.article.key.clone(), section: Some(a.sections), up: true };
    assert!(matches!(ask(&e, 18, forged), Reply::Gone), "a section the article does not have");
    assert_eq!(totals(), vec![(a.article.id.clone(), 0, 2)]);
}

#[test]
fn a_redelivered_step_is_not_taken_twice() {
    let e = engine();
    let u = user(17);
    e.handle(&u, Input::Start(Some("what-causes-knee-pain-when-running".into())), Some(1), 1);
    e.replied(17, 1).unwrap();
    let first = answer(e.handle(&u, Input::More, Some(2), 2).reply);
    assert_eq!(first.section, Some(1));
    // The process died before the reply to update 2 was sent; update 2 comes again.
    let again = answer(e.handle(&u, Input::More, Some(2), 3).reply);
    assert_eq!(again.section, Some(1), "the same section is shown again, not the next one");
    e.replied(17, 2).unwrap();
    assert_eq!(answer(e.handle(&u, Input::More, Some(3), 4).reply).section, Some(2));
}

/// A store whose disk is full: every write fails.
struct FullDisk(SledStore);

impl Store for FullDisk {
    fn load_user(&self, user: i64) -> Result<Option<UserState>, StoreError> {
        self.0.load_user(user)
    }
    fn save_user(&self, _: i64, _: &UserState, _: bool) -> Result<(), StoreError> {
        Err(StoreError::Io(std::io::Error::from(std::io::ErrorKind::StorageFull)))
    }
    fn delete_user(&self, _: i64) -> Result<bool, StoreError> {
        Err(StoreError::Io(std::io::Error::from(std::io::ErrorKind::StorageFull)))
    }
    fn record_question(&self, _: &QuestionRecord) -> Result<(), StoreError> {
        Err(StoreError::Io(std::io::Error::from(std::io::ErrorKind::StorageFull)))
    }
    fn record_feedback(&self, _: &str, _: Option<usize>, _: bool, _: Option<bool>) -> Result<(), StoreError> {
        Err(StoreError::Io(std::io::Error::from(std::io::ErrorKind::StorageFull)))
    }
    fn stats(&self, now: u64, top: usize) -> Result<Stats, StoreError> {
        self.0.stats(now, top)
    }
    fn top_articles(&self, top: usize) -> Result<Vec<(String, u64)>, StoreError> {
        self.0.top_articles(top)
    }
    fn unanswered(&self, top: usize) -> Result<Vec<Unanswered>, StoreError> {
        self.0.unanswered(top)
    }
    fn record_signal(&self, _: &Signal) -> Result<bool, StoreError> {
        Err(StoreError::Io(std::io::Error::from(std::io::ErrorKind::StorageFull)))
    }
    fn evidence(&self) -> Result<Vec<PairEvidence>, StoreError> {
        self.0.evidence()
    }
    fn verdicts(&self) -> Result<Vec<VerdictRecord>, StoreError> {
        self.0.verdicts()
    }
    fn add_verdict(&self, _: &VerdictRecord) -> Result<u64, StoreError> {
        Err(StoreError::Io(std::io::Error::from(std::io::ErrorKind::StorageFull)))
    }
    fn remove_verdict(&self, _: u64) -> Result<bool, StoreError> {
        Err(StoreError::Io(std::io::Error::from(std::io::ErrorKind::StorageFull)))
    }
    fn add_watch(&self, _: &crate::watch::Watch) -> Result<crate::watch::WatchAdded, StoreError> {
        Err(StoreError::Io(std::io::Error::from(std::io::ErrorKind::StorageFull)))
    }
    fn watches(&self) -> Result<Vec<crate::watch::Watch>, StoreError> {
        self.0.watches()
    }
    fn remove_watch(&self, _: i64, _: u64) -> Result<bool, StoreError> {
        Err(StoreError::Io(std::io::Error::from(std::io::ErrorKind::StorageFull)))
    }
    fn flush(&self) -> Result<(), StoreError> {
        Err(StoreError::Io(std::io::Error::from(std::io::ErrorKind::StorageFull)))
    }
    fn size_on_disk(&self) -> Option<u64> {
        None
    }
}

#[test]
fn a_failing_store_still_gets_an_answer() {
    let e = Engine::open(&shipped(), FullDisk(SledStore::temporary().unwrap()), Options::default()).unwrap().0;
    let out = e.handle(&user(1), Input::Question("knee pain when running".into()), Some(1), 1);
    assert!(matches!(out.reply, Reply::Answer(_)), "{:?}", out.reply);
    assert!(out.stored.is_err(), "the failure is reported for logging");
    let out = e.handle(&user(1), Input::Question("how to bake bread".into()), Some(2), 1);
    assert!(matches!(out.reply, Reply::Unknown { .. }));
    let out = e.handle(&user(1), Input::Forget, Some(3), 1);
    assert!(matches!(out.reply, Reply::Forgotten { existed: None }) && out.stored.is_err());
}

#[test]
fn a_redelivered_step_past_the_end_shows_the_end_again() {
    let e = engine();
    let u = user(18);
    e.handle(&u, Input::Start(Some("what-causes-knee-pain-when-running".into())), Some(1), 1);
    for n in 2..=5 {
        e.handle(&u, Input::More, Some(n), 1);
        e.replied(18, n).unwrap();
    }
    assert!(matches!(e.handle(&u, Input::More, Some(6), 1).reply, Reply::EndOfArticle { .. }));
    assert!(matches!(e.handle(&u, Input::More, Some(6), 1).reply, Reply::EndOfArticle { .. }), "the same reply again");
    e.replied(18, 6).unwrap();
    assert!(matches!(e.handle(&u, Input::More, Some(7), 1).reply, Reply::EndOfArticle { .. }));
}

#[test]
fn typed_steps_are_not_taken_twice_when_redelivered() {
    let e = engine();
    let u = user(19);
    e.handle(&u, Input::Start(Some("what-causes-knee-pain-when-running".into())), Some(1), 1);
    e.replied(19, 1).unwrap();
    assert_eq!(answer(e.handle(&u, Input::Question("more".into()), Some(2), 1).reply).section, Some(1));
    assert_eq!(answer(e.handle(&u, Input::Question(" More ".into()), Some(2), 1).reply).section, Some(1));
}

#[test]
fn replies_are_remembered_by_exact_id() {
    let e = engine();
    let u = user(20);
    e.handle(&u, Input::Question("knee pain".into()), Some(31), 1);
    e.replied(20, 31).unwrap();
    // An earlier update finishing later (another worker), or ids starting anew after a week.
    assert!(matches!(e.handle(&u, Input::Question("knee pain".into()), Some(30), 1).reply, Reply::Answer(_)));
    assert!(matches!(e.handle(&u, Input::Question("knee pain".into()), Some(5), 1).reply, Reply::Answer(_)));
    assert!(matches!(e.handle(&u, Input::Question("knee pain".into()), Some(31), 1).reply, Reply::Duplicate));
}

#[test]
fn start_offers_the_most_read_articles_first() {
    let e = engine();
    let hub = e.library().hubs.first().copied();
    let read = answer(ask(&e, 41, Input::Question("the correct way to do sit-ups".into())));
    assert_ne!(Some(read.article.idx), hub, "the test needs an article that is not offered first anyway");
    for u in 42..44 {
        assert_eq!(answer(ask(&e, u, Input::Question("correct way to do sit ups".into()))).article, read.article);
    }
    let Reply::Welcome { popular, .. } = ask(&e, 45, Input::Start(None)) else { panic!("welcome expected") };
    assert_eq!(popular[0], read.article, "{popular:?}");
}

#[test]
fn a_bare_number_is_a_choice_never_a_question() {
    let e = engine();
    for typed in ["1", "-1", "2.", "3)", "2024"] {
        assert!(matches!(ask(&e, 50, Input::Question(typed.into())), Reply::NoSuchChoice), "{typed}");
    }
    let Reply::Welcome { popular, .. } = ask(&e, 50, Input::Start(None)) else { panic!("welcome expected") };
    assert_eq!(answer(ask(&e, 50, Input::Question("1.".into()))).article, popular[0]);
}

#[test]
fn a_common_word_the_site_covers_gets_choices_not_a_dont_know() {
    let e = engine();
    for word in ["running", "muscle"] {
        match ask(&e, 51, Input::Question(word.into())) {
            Reply::Suggest(choices) => assert!(choices.len() >= 2, "{word}: {choices:?}"),
            other => panic!("{word}: {other:?}"),
        }
    }
    assert!(matches!(ask(&e, 51, Input::Question("bread".into())), Reply::Unknown { .. }));
    assert!(matches!(ask(&e, 51, Input::Question("running bread recipes".into())), Reply::Unknown { .. }));
}

#[test]
fn a_question_answered_again_after_a_crash_is_counted_once() {
    let e = engine();
    let u = user(60);
    let first = e.handle(&u, Input::Question("knee pain when running".into()), Some(7), 1_700_000_000);
    // The process died before the reply went out: the same update comes again.
    let again = e.handle(&u, Input::Question("knee pain when running".into()), Some(7), 1_700_000_001);
    assert_eq!(answer(again.reply).article, answer(first.reply).article, "the user still gets the answer");
    let s = e.store().stats(1_700_000_001, 5).unwrap();
    assert_eq!((s.questions_total, s.answered_total), (1, 1));
    let state = e.store().load_user(60).unwrap().unwrap();
    assert_eq!((state.counts.questions, state.questions.len()), (1, 1));
}
