//! The sled-backed `Store`. Trees and keys are laid out so that the database grows with the
//! number of users and distinct questions, never with the number of messages:
//!
//! - `users`: user id (8 bytes, big-endian) → encoded `UserState` (itself capped);
//! - `counters`: `total:<intent>`, `day:<day>:<intent>` (pruned after `KEEP_DAYS`),
//!   `article:<id>`, `users` → u64;
//! - `questions`: normalised question → count and last time (top questions), capped;
//! - `unanswered`: normalised question → count, last time and one example, capped;
//! - `feedback`: `<article>\0<section>` → 👍 and 👎 counts (bounded by the knowledge base);
//! - `inbox`: update id → a received update not yet fully handled (emptied as they are), so
//!   that a crash between receiving and answering loses nothing.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use articlebot_matching::Intent;

use crate::state::UserState;
use crate::store::{day_of, QuestionRecord, Stats, Store, StoreError, Unanswered};

/// Distinct questions tracked in `questions` and in `unanswered`; beyond this the least asked
/// are dropped.
pub const MAX_TRACKED: u64 = 10_000;
/// sled's page cache (its default is 1 GiB): enough for the hot users, and it bounds the
/// process's memory however many users the database holds.
pub const CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// Daily counters kept.
pub const KEEP_DAYS: u64 = 400;
const MAX_NORMALIZED_BYTES: usize = 200;
/// Background flush interval. Replies wait for an explicit flush of the user's state; this
/// one makes the bookkeeping after a reply ("replied", inbox removal) durable soon, so a crash
/// repeats at most the replies of the last few milliseconds.
const FLUSH_EVERY_MS: u64 = 20;
const MAX_EXAMPLE_CHARS: usize = 300;
/// /start shows the most read articles; their order changes slowly, so a snapshot this old is
/// fine and a burst of /start does not scan the counters each time.
const POPULAR_TTL: Duration = Duration::from_secs(60);

/// The last `top_articles` answer.
struct PopularSnapshot {
    taken: Instant,
    top: usize,
    articles: Vec<(String, u64)>,
}

pub struct SledStore {
    db: sled::Db,
    users: sled::Tree,
    counters: sled::Tree,
    questions: sled::Tree,
    unanswered: sled::Tree,
    feedback: sled::Tree,
    inbox: sled::Tree,
    /// Approximate entry counts of the capped trees, so pruning needs no full scan per write.
    questions_len: AtomicU64,
    unanswered_len: AtomicU64,
    popular: Mutex<Option<PopularSnapshot>>,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore").finish_non_exhaustive()
    }
}

fn db_err(e: sled::Error) -> StoreError {
    match e {
        // sled takes an exclusive file lock on open; another process holding it is WouldBlock.
        sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock") => {
            StoreError::Locked(io)
        }
        sled::Error::Io(io) => StoreError::Io(io),
        e @ sled::Error::Corruption { .. } => StoreError::Corrupt(e),
        other => StoreError::Db(other),
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Tally {
    count: u64,
    last: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    example: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Votes {
    up: u64,
    down: u64,
}

fn read_u64(v: Option<&[u8]>) -> u64 {
    v.and_then(|b| b.try_into().ok()).map_or(0, u64::from_be_bytes)
}

impl SledStore {
    /// Opens (creating) the database in `dir`. Fails clearly when the dir is read-only, not a
    /// directory, or in use by another running instance.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let db = sled::Config::new()
            .path(dir)
            .cache_capacity(CACHE_BYTES)
            .flush_every_ms(Some(FLUSH_EVERY_MS))
            .open()
            .map_err(db_err)?;
        Self::with_db(db)
    }

    /// A database that lives in a temporary file and is removed on drop.
    pub fn temporary() -> Result<Self, StoreError> {
        let db = sled::Config::new().temporary(true).open().map_err(db_err)?;
        Self::with_db(db)
    }

    fn with_db(db: sled::Db) -> Result<Self, StoreError> {
        let tree = |name: &str| db.open_tree(name).map_err(db_err);
        let store = SledStore {
            users: tree("users")?,
            counters: tree("counters")?,
            questions: tree("questions")?,
            unanswered: tree("unanswered")?,
            feedback: tree("feedback")?,
            inbox: tree("inbox")?,
            questions_len: AtomicU64::new(0),
            unanswered_len: AtomicU64::new(0),
            popular: Mutex::new(None),
            db,
        };
        store.questions_len.store(store.questions.len() as u64, Ordering::Relaxed);
        store.unanswered_len.store(store.unanswered.len() as u64, Ordering::Relaxed);
        Ok(store)
    }

    /// The most answered articles, reading only the `article:` counters.
    fn scan_top_articles(&self, top: usize) -> Result<Vec<(String, u64)>, StoreError> {
        let mut articles = Vec::new();
        for item in self.counters.scan_prefix(b"article:") {
            let (k, v) = item.map_err(db_err)?;
            articles.push((String::from_utf8_lossy(&k["article:".len()..]).into_owned(), read_u64(Some(&v))));
        }
        articles.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        articles.truncate(top);
        Ok(articles)
    }

    fn add(&self, key: &str, delta: i64) -> Result<u64, StoreError> {
        let new = self
            .counters
            .update_and_fetch(key.as_bytes(), |old| {
                let v = read_u64(old).saturating_add_signed(delta);
                Some(v.to_be_bytes().to_vec())
            })
            .map_err(db_err)?;
        Ok(read_u64(new.as_deref()))
    }

    fn counter(&self, key: &str) -> Result<u64, StoreError> {
        Ok(read_u64(self.counters.get(key.as_bytes()).map_err(db_err)?.as_deref()))
    }

    /// Adds one to a tally, creating it; returns whether it is new.
    fn bump(tree: &sled::Tree, key: &str, at: u64, example: Option<&str>) -> Result<bool, StoreError> {
        let mut created = false;
        tree.update_and_fetch(key.as_bytes(), |old| {
            let mut t: Tally = old.and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default();
            created = old.is_none();
            t.count += 1;
            t.last = at;
            if let Some(e) = example {
                t.example = e.chars().take(MAX_EXAMPLE_CHARS).collect();
            }
            serde_json::to_vec(&t).ok()
        })
        .map_err(db_err)?;
        Ok(created)
    }

    /// Drops the least asked fifth of a capped tree once it outgrows `MAX_TRACKED`.
    fn prune(tree: &sled::Tree, len: &AtomicU64) -> Result<(), StoreError> {
        if len.load(Ordering::Relaxed) <= MAX_TRACKED {
            return Ok(());
        }
        let mut all: Vec<(u64, u64, sled::IVec)> = Vec::new();
        for item in tree.iter() {
            let (k, v) = item.map_err(db_err)?;
            let t: Tally = serde_json::from_slice(&v).unwrap_or_default();
            all.push((t.count, t.last, k));
        }
        all.sort_unstable_by_key(|(c, l, _)| (*c, *l));
        let drop = all.len().saturating_sub((MAX_TRACKED * 4 / 5) as usize);
        for (_, _, k) in all.iter().take(drop) {
            tree.remove(k).map_err(db_err)?;
        }
        len.store((all.len() - drop) as u64, Ordering::Relaxed);
        Ok(())
    }

    fn top(tree: &sled::Tree, n: usize) -> Result<Vec<(String, Tally)>, StoreError> {
        let mut all = Vec::new();
        for item in tree.iter() {
            let (k, v) = item.map_err(db_err)?;
            let t: Tally = serde_json::from_slice(&v).unwrap_or_default();
            all.push((String::from_utf8_lossy(&k).into_owned(), t));
        }
        all.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(b.1.last.cmp(&a.1.last)));
        all.truncate(n);
        Ok(all)
    }

    /// Removes daily counters older than `KEEP_DAYS` (run when a new day starts).
    fn prune_days(&self, today: u64) -> Result<(), StoreError> {
        let oldest = today.saturating_sub(KEEP_DAYS);
        let mut stale = Vec::new();
        for item in self.counters.scan_prefix(b"day:") {
            let (k, _) = item.map_err(db_err)?;
            let day = std::str::from_utf8(&k[4..]).ok().and_then(|s| s.split(':').next()?.parse::<u64>().ok());
            if day.is_some_and(|d| d < oldest) {
                stale.push(k);
            }
        }
        for k in stale {
            self.counters.remove(k).map_err(db_err)?;
        }
        Ok(())
    }
}

/// The inbox of received updates (see the module doc). Front ends put an update before
/// handling it and take it out when done; whatever is left after a crash is handled again.
impl SledStore {
    /// Keeps a received update; durable once `flush_async` returns.
    pub fn inbox_put(&self, update_id: u32, update: &[u8]) -> Result<(), StoreError> {
        self.inbox.insert(update_id.to_be_bytes(), update).map(|_| ()).map_err(db_err)
    }

    pub fn inbox_done(&self, update_id: u32) -> Result<(), StoreError> {
        self.inbox.remove(update_id.to_be_bytes()).map(|_| ()).map_err(db_err)
    }

    /// Updates received but not handled, oldest first.
    pub fn inbox_pending(&self) -> Result<Vec<(u32, Vec<u8>)>, StoreError> {
        self.inbox
            .iter()
            .map(|item| {
                let (k, v) = item.map_err(db_err)?;
                let id = k.as_ref().try_into().map(u32::from_be_bytes).unwrap_or(0);
                Ok((id, v.to_vec()))
            })
            .collect()
    }

    /// Makes everything written so far durable without blocking the async runtime.
    pub async fn flush_async(&self) -> Result<(), StoreError> {
        self.db.flush_async().await.map(|_| ()).map_err(db_err)
    }
}

impl Store for SledStore {
    fn load_user(&self, user: i64) -> Result<Option<UserState>, StoreError> {
        let Some(bytes) = self.users.get(user.to_be_bytes()).map_err(db_err)? else {
            return Ok(None);
        };
        match UserState::decode(&bytes) {
            Ok(s) => Ok(Some(s)),
            Err(e) => {
                tracing::warn!(user, error = %e, "resetting a user state that cannot be read");
                Ok(Some(UserState::default()))
            }
        }
    }

    fn save_user(&self, user: i64, state: &UserState, is_new: bool) -> Result<(), StoreError> {
        self.users.insert(user.to_be_bytes(), state.encode()).map_err(db_err)?;
        if is_new {
            self.add("users", 1)?;
        }
        Ok(())
    }

    fn delete_user(&self, user: i64) -> Result<bool, StoreError> {
        let existed = self.users.remove(user.to_be_bytes()).map_err(db_err)?.is_some();
        if existed {
            self.add("users", -1)?;
        }
        Ok(existed)
    }

    fn record_question(&self, q: &QuestionRecord) -> Result<(), StoreError> {
        let day = day_of(q.at);
        let intent = q.intent.as_str();
        self.add(&format!("total:{intent}"), 1)?;
        if self.add(&format!("day:{day}:{intent}"), 1)? == 1 && self.add(&format!("day:{day}:first"), 1)? == 1 {
            self.prune_days(day)?;
        }
        if let Some(a) = q.article {
            self.add(&format!("article:{a}"), 1)?;
        }
        let key = &q.normalized[..q.normalized.floor_char_boundary(MAX_NORMALIZED_BYTES)];
        if key.is_empty() || q.intent == Intent::Smalltalk {
            return Ok(());
        }
        if Self::bump(&self.questions, key, q.at, None)? {
            self.questions_len.fetch_add(1, Ordering::Relaxed);
            Self::prune(&self.questions, &self.questions_len)?;
        }
        if q.intent == Intent::Unknown && Self::bump(&self.unanswered, key, q.at, Some(q.example))? {
            self.unanswered_len.fetch_add(1, Ordering::Relaxed);
            Self::prune(&self.unanswered, &self.unanswered_len)?;
        }
        Ok(())
    }

    fn record_feedback(
        &self,
        article: &str,
        section: Option<usize>,
        up: bool,
        previous: Option<bool>,
    ) -> Result<(), StoreError> {
        if previous == Some(up) {
            return Ok(());
        }
        let key = format!("{article}\0{}", section.map_or("-".to_string(), |s| s.to_string()));
        self.feedback
            .update_and_fetch(key.as_bytes(), |old| {
                let mut v: Votes = old.and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default();
                let (add, take) = if up { (&mut v.up, &mut v.down) } else { (&mut v.down, &mut v.up) };
                *add += 1;
                if previous.is_some() {
                    *take = take.saturating_sub(1);
                }
                serde_json::to_vec(&v).ok()
            })
            .map_err(db_err)?;
        Ok(())
    }

    fn stats(&self, now: u64, top: usize) -> Result<Stats, StoreError> {
        let day = day_of(now);
        let mut s = Stats { users: self.counter("users")?, ..Default::default() };
        for i in Intent::ALL {
            let total = self.counter(&format!("total:{}", i.as_str()))?;
            let today = self.counter(&format!("day:{day}:{}", i.as_str()))?;
            s.questions_total += total;
            s.questions_today += today;
            match i {
                Intent::Answer => {
                    s.answered_total = total;
                    s.answered_today = today;
                }
                Intent::Suggest => s.suggested_total = total,
                Intent::Unknown => s.unknown_total = total,
                Intent::Smalltalk => s.smalltalk_total = total,
            }
        }
        s.top_questions = Self::top(&self.questions, top)?.into_iter().map(|(k, t)| (k, t.count)).collect();
        s.top_articles = self.scan_top_articles(top)?;
        let mut votes: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
        for item in self.feedback.iter() {
            let (k, v) = item.map_err(db_err)?;
            let key = String::from_utf8_lossy(&k).into_owned();
            let article = key.split('\0').next().unwrap_or("").to_string();
            let v: Votes = serde_json::from_slice(&v).unwrap_or_default();
            let e = votes.entry(article).or_default();
            e.0 += v.up;
            e.1 += v.down;
        }
        let mut fb: Vec<(String, u64, u64)> = votes.into_iter().map(|(a, (u, d))| (a, u, d)).collect();
        fb.sort_by(|a, b| (b.1 + b.2).cmp(&(a.1 + a.2)).then(a.0.cmp(&b.0)));
        fb.truncate(top);
        s.feedback = fb;
        Ok(s)
    }

    fn top_articles(&self, top: usize) -> Result<Vec<(String, u64)>, StoreError> {
        let mut cache = self.popular.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = cache.as_ref().filter(|p| p.top >= top && p.taken.elapsed() < POPULAR_TTL) {
            return Ok(p.articles.iter().take(top).cloned().collect());
        }
        let articles = self.scan_top_articles(top)?;
        *cache = Some(PopularSnapshot { taken: Instant::now(), top, articles: articles.clone() });
        Ok(articles)
    }

    fn unanswered(&self, top: usize) -> Result<Vec<Unanswered>, StoreError> {
        Ok(Self::top(&self.unanswered, top)?
            .into_iter()
            .map(|(k, t)| Unanswered { normalized: k, count: t.count, last_asked: t.last, example: t.example })
            .collect())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map(|_| ()).map_err(db_err)
    }

    fn size_on_disk(&self) -> Option<u64> {
        self.db.size_on_disk().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Position;

    fn q<'a>(n: &'a str, intent: &str, at: u64) -> QuestionRecord<'a> {
        let intent = *Intent::ALL.iter().find(|i| i.as_str() == intent).expect("an intent's name");
        QuestionRecord { normalized: n, example: n, intent, article: (intent == Intent::Answer).then_some("a"), at }
    }

    #[test]
    fn users_round_trip_and_delete() {
        let s = SledStore::temporary().unwrap();
        assert!(s.load_user(7).unwrap().is_none());
        let mut st = UserState::new(1);
        st.go_to(Position { article: "a".into(), section: Some(1) });
        s.save_user(7, &st, true).unwrap();
        assert_eq!(s.load_user(7).unwrap().unwrap(), UserState::decode(&st.encode()).unwrap());
        assert_eq!(s.stats(0, 5).unwrap().users, 1);
        assert!(s.delete_user(7).unwrap());
        assert!(!s.delete_user(7).unwrap());
        assert!(s.load_user(7).unwrap().is_none());
        assert_eq!(s.stats(0, 5).unwrap().users, 0);
    }

    #[test]
    fn unreadable_state_is_reset_not_an_error() {
        let s = SledStore::temporary().unwrap();
        s.users.insert(9i64.to_be_bytes(), &b"\xff not json"[..]).unwrap();
        let st = s.load_user(9).unwrap().unwrap();
        assert_eq!(st.position, None);
    }

    #[test]
    fn stats_and_unanswered_merge_by_normalised_text() {
        let s = SledStore::temporary().unwrap();
        let day = 20_000 * 86_400;
        s.record_question(&q("bake bread", "unknown", day)).unwrap();
        s.record_question(&q("bake bread", "unknown", day + 5)).unwrap();
        s.record_question(&q("knee pain", "answer", day + 6)).unwrap();
        s.record_question(&q("hi", "smalltalk", day + 7)).unwrap();
        s.record_feedback("a", Some(0), true, None).unwrap();
        s.record_feedback("a", Some(1), false, None).unwrap();
        let st = s.stats(day + 10, 10).unwrap();
        assert_eq!(st.questions_total, 4);
        assert_eq!(st.questions_today, 4);
        assert_eq!(st.answered_total, 1);
        assert_eq!(st.unknown_total, 2);
        assert_eq!(st.top_questions[0], ("bake bread".to_string(), 2));
        assert_eq!(st.top_articles, vec![("a".to_string(), 1)]);
        assert_eq!(s.top_articles(3).unwrap(), st.top_articles);
        assert_eq!(st.feedback, vec![("a".to_string(), 1, 1)]);
        assert_eq!(s.stats(day + 86_400, 10).unwrap().questions_today, 0);
        let un = s.unanswered(10).unwrap();
        assert_eq!(un.len(), 1);
        assert_eq!(un[0].count, 2);
        assert_eq!(un[0].last_asked, day + 5);
    }

    #[test]
    fn tracked_questions_are_capped() {
        let s = SledStore::temporary().unwrap();
        for i in 0..(MAX_TRACKED + 10) {
            s.record_question(&q(&format!("question {i}"), "unknown", i)).unwrap();
        }
        s.record_question(&q("question 5", "unknown", 1)).unwrap();
        assert!(s.unanswered.len() as u64 <= MAX_TRACKED);
        assert!(s.questions.len() as u64 <= MAX_TRACKED);
        // The one asked twice survives pruning.
        assert!(s.unanswered.get("question 5").unwrap().is_some());
    }

    #[test]
    fn old_daily_counters_are_pruned() {
        let s = SledStore::temporary().unwrap();
        s.record_question(&q("x", "answer", 0)).unwrap();
        assert!(s.counters.get("day:0:answer").unwrap().is_some());
        s.record_question(&q("x", "answer", (KEEP_DAYS + 5) * 86_400)).unwrap();
        assert!(s.counters.get("day:0:answer").unwrap().is_none());
        assert_eq!(s.stats(0, 1).unwrap().answered_total, 2);
    }

    #[test]
    fn the_inbox_keeps_updates_in_order_until_done() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = SledStore::open(dir.path()).unwrap();
            s.inbox_put(7, b"seven").unwrap();
            s.inbox_put(300, b"three hundred").unwrap();
            s.inbox_put(8, b"eight").unwrap();
            s.inbox_done(8).unwrap();
            s.flush().unwrap();
        }
        let s = SledStore::open(dir.path()).unwrap();
        let pending = s.inbox_pending().unwrap();
        assert_eq!(pending, vec![(7, b"seven".to_vec()), (300, b"three hundred".to_vec())]);
    }

    #[test]
    fn a_second_open_of_the_same_dir_fails_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let _first = SledStore::open(dir.path()).unwrap();
        let second = SledStore::open(dir.path());
        assert!(second.is_err());
    }
}
