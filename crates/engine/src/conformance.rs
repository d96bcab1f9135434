//! What every [`KeyValue`] backend must give the conversation store, as checks run on each: sled
//! (this crate's tests) and PostgreSQL (crate `articlebot-postgres`). Each check takes `open`,
//! which opens database number `n` (a new, empty one the first time a number is used, the same
//! one after) and panics with what failed.
//!
//! Built for tests only (feature `conformance`); the shipped binary does not carry it.

use articlebot_matching::Intent;

use crate::kv::{KeyValue, Tree};
use crate::learning::{Signal, SignalKind, Verdict, VerdictRecord};
use crate::sled_store::{KvStore, MAX_TRACKED};
use crate::state::{Position, UserState};
use crate::store::{QuestionRecord, Store, STATS_DAYS};
use crate::watch::{Watch, WatchAdded, MAX_PER_USER};

/// Opens database number `n` of the backend under test.
pub type Open<'a, K> = &'a (dyn Fn(usize) -> KvStore<K> + Sync);

/// Every check, each on a database of its own.
pub fn all<K: KeyValue>(open: Open<'_, K>) {
    users_round_trip_and_delete(open, 0);
    an_unreadable_state_is_reset(open, 1);
    stats_and_unanswered_merge_by_normalised_text(open, 2);
    tracked_questions_are_capped(open, 3);
    old_daily_counters_are_pruned(open, 4);
    the_inbox_keeps_updates_in_order_until_done(open, 5);
    learning_signals_count_once_per_user(open, 6);
    verdicts_and_watches_are_kept_in_order(open, 7);
    concurrent_writers_lose_no_count(open, 8);
    scans_see_prefixes_bytewise(open, 9);
    a_backup_lists_what_is_stored(open, 10);
}

fn q<'a>(n: &'a str, intent: Intent, at: u64) -> QuestionRecord<'a> {
    QuestionRecord { normalized: n, example: n, intent, article: (intent == Intent::Answer).then_some("a"), at }
}

fn at_section(section: usize) -> UserState {
    let mut st = UserState::new(1);
    st.go_to(Position { article: "a".into(), section: Some(section) });
    st
}

pub fn users_round_trip_and_delete<K: KeyValue>(open: Open<'_, K>, n: usize) {
    let s = open(n);
    assert!(s.load_user(7).unwrap().is_none());
    let st = at_section(1);
    s.save_user(7, &st, true).unwrap();
    s.save_user(-8, &at_section(2), true).unwrap();
    assert_eq!(s.load_user(7).unwrap().unwrap(), UserState::decode(&st.encode()).unwrap());
    assert_eq!(s.stats(0, 5).unwrap().users, 2);
    s.flush().unwrap();
    drop(s);
    let s = open(n);
    assert_eq!(s.load_user(-8).unwrap().unwrap().position.and_then(|p| p.section), Some(2), "kept across a reopen");
    assert!(s.delete_user(7).unwrap());
    assert!(!s.delete_user(7).unwrap());
    assert!(s.load_user(7).unwrap().is_none());
    assert_eq!(s.stats(0, 5).unwrap().users, 1);
}

pub fn an_unreadable_state_is_reset<K: KeyValue>(open: Open<'_, K>, n: usize) {
    let s = open(n);
    s.tables().insert(Tree::Users, &9i64.to_be_bytes(), b"\xff not json".to_vec()).unwrap();
    assert_eq!(s.load_user(9).unwrap().unwrap().position, None);
}

pub fn stats_and_unanswered_merge_by_normalised_text<K: KeyValue>(open: Open<'_, K>, n: usize) {
    let s = open(n);
    let day = 20_000 * 86_400;
    s.record_question(&q("bake bread", Intent::Unknown, day)).unwrap();
    s.record_question(&q("bake bread", Intent::Unknown, day + 5)).unwrap();
    s.record_question(&q("knee pain", Intent::Answer, day + 6)).unwrap();
    s.record_question(&q("hi", Intent::Smalltalk, day + 7)).unwrap();
    s.record_feedback("a", Some(0), true, None).unwrap();
    s.record_feedback("a", Some(1), false, None).unwrap();
    s.record_feedback("a", Some(1), true, Some(false)).unwrap();
    s.record_feedback("a", Some(1), true, Some(true)).unwrap();
    let st = s.stats(day + 10, 10).unwrap();
    assert_eq!((st.questions_total, st.questions_today, st.answered_total, st.unknown_total), (4, 4, 1, 2));
    assert_eq!(st.top_questions[0], ("bake bread".to_string(), 2));
    assert_eq!(st.top_articles, vec![("a".to_string(), 1)]);
    assert_eq!(s.top_articles(3).unwrap(), st.top_articles);
    assert_eq!(st.feedback, vec![("a".to_string(), 2, 0)], "a changed vote replaces the first");
    assert_eq!(s.stats(day + 86_400, 10).unwrap().questions_today, 0);
    assert_eq!(st.days.len() as u64, STATS_DAYS);
    let last = st.days.last().unwrap();
    assert_eq!((last.day, last.answered, last.suggested, last.unknown, last.smalltalk), (20_000, 1, 0, 2, 1));
    let un = s.unanswered(10).unwrap();
    assert_eq!(un.len(), 1);
    assert_eq!((un[0].count, un[0].last_asked, un[0].example.as_str()), (2, day + 5, "bake bread"));
}

pub fn tracked_questions_are_capped<K: KeyValue>(open: Open<'_, K>, n: usize) {
    let s = open(n);
    for i in 0..(MAX_TRACKED + 10) {
        s.record_question(&q(&format!("question {i}"), Intent::Unknown, i)).unwrap();
    }
    s.record_question(&q("question 5", Intent::Unknown, 1)).unwrap();
    let t = s.tables();
    assert!(t.len(Tree::Unanswered).unwrap() as u64 <= MAX_TRACKED);
    assert!(t.len(Tree::Questions).unwrap() as u64 <= MAX_TRACKED);
    assert!(t.get(Tree::Unanswered, b"question 5").unwrap().is_some(), "the one asked twice survives pruning");
}

pub fn old_daily_counters_are_pruned<K: KeyValue>(open: Open<'_, K>, n: usize) {
    let s = open(n);
    s.record_question(&q("x", Intent::Answer, 0)).unwrap();
    assert!(s.tables().get(Tree::Counters, b"day:0:answer").unwrap().is_some());
    s.record_question(&q("x", Intent::Answer, (crate::sled_store::KEEP_DAYS + 5) * 86_400)).unwrap();
    assert!(s.tables().get(Tree::Counters, b"day:0:answer").unwrap().is_none());
    assert_eq!(s.stats(0, 1).unwrap().answered_total, 2);
}

pub fn the_inbox_keeps_updates_in_order_until_done<K: KeyValue>(open: Open<'_, K>, n: usize) {
    {
        let s = open(n);
        s.inbox_put(7, b"seven").unwrap();
        s.inbox_put(300, b"three hundred").unwrap();
        s.inbox_put(8, b"eight").unwrap();
        s.inbox_done(8).unwrap();
        s.flush().unwrap();
    }
    let s = open(n);
    assert_eq!(s.inbox_pending().unwrap(), vec![(7, b"seven".to_vec()), (300, b"three hundred".to_vec())]);
}

pub fn learning_signals_count_once_per_user<K: KeyValue>(open: Open<'_, K>, n: usize) {
    let s = open(n);
    let signal = |user: i64, kind: SignalKind| Signal {
        user,
        normalized: "knee pain",
        example: "Knee pain?",
        article: (kind != SignalKind::NoneOfThese).then_some("a"),
        kind,
        at: 100 + user as u64,
    };
    assert!(s.record_signal(&signal(1, SignalKind::Pick)).unwrap());
    assert!(!s.record_signal(&signal(1, SignalKind::Pick)).unwrap(), "the same user again");
    assert!(s.record_signal(&signal(2, SignalKind::Up)).unwrap());
    assert!(s.record_signal(&signal(2, SignalKind::Down)).unwrap(), "a changed vote counts");
    assert!(s.record_signal(&signal(3, SignalKind::NoneOfThese)).unwrap());
    let e = s.evidence().unwrap();
    assert_eq!(e.len(), 1);
    let ev = &e[0].evidence;
    assert_eq!((e[0].normalized.as_str(), e[0].article.as_str()), ("knee pain", "a"));
    assert_eq!((ev.users, ev.picks, ev.ups, ev.downs), (2, 1, 0, 1), "the 👎 replaced user 2's 👍");
    assert_eq!(s.unanswered(5).unwrap()[0].normalized, "knee pain", "None of these counts as unanswered");
    s.delete_user(1).unwrap();
    assert!(s.record_signal(&signal(1, SignalKind::Pick)).unwrap(), "a forgotten user's signals are gone");
}

pub fn verdicts_and_watches_are_kept_in_order<K: KeyValue>(open: Open<'_, K>, n: usize) {
    let s = open(n);
    let v = |q: &str| VerdictRecord {
        seq: 0,
        normalized: q.into(),
        question: q.into(),
        article: "a".into(),
        verdict: Verdict::Rejected,
        at: 5,
        automatic: false,
    };
    let first = s.add_verdict(&v("one")).unwrap();
    let second = s.add_verdict(&v("two")).unwrap();
    assert!(second > first);
    assert!(s.remove_verdict(first).unwrap());
    assert!(!s.remove_verdict(first).unwrap());
    let third = s.add_verdict(&v("three")).unwrap();
    let kept: Vec<(u64, String)> = s.verdicts().unwrap().into_iter().map(|r| (r.seq, r.normalized)).collect();
    assert_eq!(kept, vec![(second, "two".into()), (third, "three".into())]);

    let w = |user: i64, question: u64| Watch { user, question, example: format!("q{question}"), at: 1 };
    assert_eq!(s.add_watch(&w(1, 10)).unwrap(), WatchAdded::Added);
    assert_eq!(s.add_watch(&w(1, 10)).unwrap(), WatchAdded::Already);
    for q in 11..(10 + MAX_PER_USER as u64) {
        assert_eq!(s.add_watch(&w(1, q)).unwrap(), WatchAdded::Added);
    }
    assert_eq!(s.add_watch(&w(1, 99)).unwrap(), WatchAdded::Full);
    assert_eq!(s.add_watch(&w(2, 10)).unwrap(), WatchAdded::Added);
    assert!(s.remove_watch(2, 10).unwrap());
    assert!(!s.remove_watch(2, 10).unwrap());
    s.save_user(1, &at_section(0), true).unwrap();
    s.delete_user(1).unwrap();
    assert!(s.watches().unwrap().is_empty(), "/forget takes the user's watches");
}

/// Two stores over the same tables when the backend is shared by processes (else one store),
/// four threads each: every counter update is one atomic step.
pub fn concurrent_writers_lose_no_count<K: KeyValue>(open: Open<'_, K>, n: usize) {
    let first = open(n);
    let second = first.tables().shared().then(|| open(n));
    let stores: Vec<&KvStore<K>> = std::iter::once(&first).chain(second.as_ref()).collect();
    const EACH: u64 = 50;
    std::thread::scope(|scope| {
        for t in 0..4 {
            let s = stores[t % stores.len()];
            scope.spawn(move || {
                for i in 0..EACH {
                    s.record_question(&q("same question", Intent::Answer, i)).unwrap();
                    s.record_feedback("a", Some(0), true, None).unwrap();
                }
            });
        }
    });
    let st = first.stats(0, 3).unwrap();
    assert_eq!(st.answered_total, 4 * EACH);
    assert_eq!(st.top_questions, vec![("same question".to_string(), 4 * EACH)]);
    assert_eq!(st.top_articles, vec![("a".to_string(), 4 * EACH)]);
    assert_eq!(st.feedback, vec![("a".to_string(), 4 * EACH, 0)]);
}

pub fn scans_see_prefixes_bytewise<K: KeyValue>(open: Open<'_, K>, n: usize) {
    let s = open(n);
    let t = s.tables();
    for key in [&b"ab"[..], b"a\xff", b"a\xff\xff", b"a", b"b", b"a\x00"] {
        t.insert(Tree::Feedback, key, key.to_vec()).unwrap();
    }
    let keys: Vec<Vec<u8>> = t.scan(Tree::Feedback, b"a").unwrap().into_iter().map(|(k, _)| k.to_vec()).collect();
    assert_eq!(keys, vec![b"a".to_vec(), b"a\x00".to_vec(), b"ab".to_vec(), b"a\xff".to_vec(), b"a\xff\xff".to_vec()]);
    let keys = t.scan(Tree::Feedback, b"a\xff").unwrap().len();
    assert_eq!(keys, 2);
    assert!(t.update(Tree::Feedback, b"b", |_| None).unwrap().is_none(), "an update to None removes");
    assert!(t.get(Tree::Feedback, b"b").unwrap().is_none());
    assert_eq!(t.remove(Tree::Feedback, b"ab").unwrap().as_deref(), Some(&b"ab"[..]));
    assert_eq!(t.len(Tree::Feedback).unwrap(), 4);
}

pub fn a_backup_lists_what_is_stored<K: KeyValue>(open: Open<'_, K>, n: usize) {
    let s = open(n);
    s.save_user(1, &at_section(3), true).unwrap();
    s.record_question(&q("knee pain", Intent::Answer, 7)).unwrap();
    s.tables().insert(Tree::Meta, b"conformance", b"not in backups".to_vec()).unwrap();
    let mut out = Vec::new();
    crate::backup::write(s.tables(), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    let trees: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("\"tree\":\"").nth(1)?.split('"').next())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(trees, vec!["counters", "questions", "users"], "{text}");
    assert!(text.lines().last().unwrap().contains("\"users\":1"));
}
