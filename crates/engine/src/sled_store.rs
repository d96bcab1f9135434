//! The sled-backed `Store`. Trees and keys are laid out so that the database grows with the
//! number of users and distinct questions, never with the number of messages:
//!
//! - `users`: user id (8 bytes, big-endian) → encoded `UserState` (itself capped);
//! - `counters`: `total:<intent>`, `day:<day>:<intent>` (pruned after `KEEP_DAYS`),
//!   `article:<id>`, `users` → u64;
//! - `questions`: normalised question → count and last time (top questions), capped;
//! - `unanswered`: normalised question → count, last time and one example, capped;
//! - `feedback`: `<article>\0<section>` → 👍 and 👎 counts (bounded by the knowledge base);
//! - `signals`: user id (8 bytes) + normalised question + `\0` + article id → which kinds of
//!   learning signal this user gave for the pair (a bit each) and when, so each counts once per
//!   user; capped (the oldest go), and a user's go with /forget;
//! - `evidence`: normalised question + `\0` + article id → the pair's [`Evidence`], capped;
//! - `verdicts`: sequence number (8 bytes) → a review decision (bounded by the reviews made);
//! - `inbox`: update id → a received update not yet fully handled (emptied as they are), so
//!   that a crash between receiving and answering loses nothing;
//! - `meta`: the database's identity.
//!
//! Underneath, `sled_db` looks for damage when the database is opened and keeps writes when the
//! disk is full; `backup` writes and restores backups.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use articlebot_matching::Intent;

use crate::backup::{self, BackupReport, RestoreReport};
use crate::kv::KeyValue;
use crate::learning::{Evidence, PairEvidence, Signal, SignalKind, VerdictRecord};
use crate::sled_db::{self, Db, IfDamaged, T};
use crate::state::UserState;
use crate::store::{day_of, DayCounts, QuestionRecord, Stats, Store, StoreError, Unanswered, STATS_DAYS};
use crate::watch::{self, Watch, WatchAdded};

/// Distinct questions tracked in `questions` and in `unanswered`; beyond this the least asked
/// are dropped.
pub const MAX_TRACKED: u64 = 10_000;
/// Daily counters kept.
pub const KEEP_DAYS: u64 = 400;
/// Per-user learning signals kept; beyond this the oldest fifth goes.
pub const MAX_SIGNALS: u64 = 50_000;
/// The longest normalised question kept, in bytes; a longer one is cut at a character boundary.
pub(crate) const MAX_NORMALIZED_BYTES: usize = 200;
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

/// The conversation store over key-value tables ([`KeyValue`]): the layout above, on sled
/// ([`SledStore`]) or on a database server.
pub struct KvStore<K: KeyValue> {
    db: Arc<K>,
    /// Approximate entry counts of the capped trees, so pruning needs no full scan per write.
    questions_len: AtomicU64,
    unanswered_len: AtomicU64,
    signals_len: AtomicU64,
    evidence_len: AtomicU64,
    popular: Mutex<Option<PopularSnapshot>>,
}

/// The store in a sled database on disk (or a temporary one for `articlebot chat`).
pub type SledStore = KvStore<Db>;

impl<K: KeyValue> std::fmt::Debug for KvStore<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStore").finish_non_exhaustive()
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

/// When a `signals` entry was last written (its value: the kinds' bits, then the time).
fn signal_at(v: &[u8]) -> u64 {
    read_u64(v.get(1..9))
}

fn read_u64(v: Option<&[u8]>) -> u64 {
    v.and_then(|b| b.try_into().ok()).map_or(0, u64::from_be_bytes)
}

impl KvStore<Db> {
    /// Opens (creating) the database in `dir`. Fails clearly when the dir is read-only, not a
    /// directory, in use by another running instance, or holds a damaged database
    /// ([`StoreError::Damaged`]; nothing is changed then).
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_with(dir, IfDamaged::Refuse)
    }

    /// [`open`](Self::open), choosing what happens to a damaged database.
    pub fn open_with(dir: &Path, if_damaged: IfDamaged) -> Result<Self, StoreError> {
        let open = sled_db::open_checked(dir, if_damaged)?;
        Self::with_tables(Db::new(open, Some(dir.to_path_buf())))
    }

    /// A database that lives in a temporary file and is removed on drop.
    pub fn temporary() -> Result<Self, StoreError> {
        Self::with_tables(Db::new(sled_db::temporary()?, None))
    }

    /// Writes a backup of everything stored to `out` (the format is `backup`'s). It is one
    /// moment's state: writes wait while it is taken. `articlebot backup` takes it with the bot
    /// stopped, since sled lets one process at a time open a database.
    pub fn backup(&self, out: &mut dyn std::io::Write) -> Result<BackupReport, StoreError> {
        backup::write(&*self.db, out)
    }

    /// Restores the backup file `from` into the database dir `dir`, which no process may have
    /// open. The whole backup is checked before anything is touched; a database already in
    /// `dir` is moved aside (into `replaced-<unix time>/`), never deleted.
    pub fn restore(from: &Path, dir: &Path) -> Result<RestoreReport, StoreError> {
        backup::restore(from, dir)
    }

    /// Whether writes reach the disk now (false while the disk is full: they are kept in memory
    /// until it has room again).
    pub fn writable(&self) -> bool {
        self.db.writable()
    }

    /// Makes everything written so far durable without blocking the async runtime.
    pub async fn flush_async(&self) -> Result<(), StoreError> {
        self.db.flush_async().await
    }
}

impl<K: KeyValue> KvStore<K> {
    /// The store over `db`'s tables.
    pub fn with_tables(db: Arc<K>) -> Result<Self, StoreError> {
        let questions_len = AtomicU64::new(db.len(T::Questions)? as u64);
        let unanswered_len = AtomicU64::new(db.len(T::Unanswered)? as u64);
        let signals_len = AtomicU64::new(db.len(T::Signals)? as u64);
        let evidence_len = AtomicU64::new(db.len(T::Evidence)? as u64);
        Ok(KvStore { db, questions_len, unanswered_len, signals_len, evidence_len, popular: Mutex::new(None) })
    }

    /// The tables underneath.
    pub fn tables(&self) -> &K {
        &self.db
    }

    /// The most answered articles, reading only the `article:` counters.
    fn scan_top_articles(&self, top: usize) -> Result<Vec<(String, u64)>, StoreError> {
        let mut articles: Vec<(String, u64)> = self
            .db
            .scan(T::Counters, b"article:")?
            .into_iter()
            .map(|(k, v)| (String::from_utf8_lossy(&k["article:".len()..]).into_owned(), read_u64(Some(&v))))
            .collect();
        articles.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        articles.truncate(top);
        Ok(articles)
    }

    fn add(&self, key: &str, delta: i64) -> Result<u64, StoreError> {
        let new = self.db.update(T::Counters, key.as_bytes(), |old| {
            let v = read_u64(old).saturating_add_signed(delta);
            Some(v.to_be_bytes().to_vec())
        })?;
        Ok(read_u64(new.as_deref()))
    }

    fn counter(&self, key: &str) -> Result<u64, StoreError> {
        Ok(read_u64(self.db.get(T::Counters, key.as_bytes())?.as_deref()))
    }

    /// Adds one to a tally, creating it; returns whether it is new.
    fn bump(&self, tree: T, key: &str, at: u64, example: Option<&str>) -> Result<bool, StoreError> {
        let mut created = false;
        self.db.update(tree, key.as_bytes(), |old| {
            let mut t: Tally = old.and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default();
            created = old.is_none();
            t.count += 1;
            t.last = at;
            if let Some(e) = example {
                t.example = e.chars().take(MAX_EXAMPLE_CHARS).collect();
            }
            serde_json::to_vec(&t).ok()
        })?;
        Ok(created)
    }

    /// Drops the least asked fifth of a capped tree once it outgrows `MAX_TRACKED`.
    fn prune(&self, tree: T, len: &AtomicU64) -> Result<(), StoreError> {
        if len.load(Ordering::Relaxed) <= MAX_TRACKED {
            return Ok(());
        }
        let mut all: Vec<(u64, u64, K::Bytes)> = self
            .db
            .scan(tree, b"")?
            .into_iter()
            .map(|(k, v)| {
                let t: Tally = serde_json::from_slice(&v).unwrap_or_default();
                (t.count, t.last, k)
            })
            .collect();
        all.sort_unstable_by_key(|(c, l, _)| (*c, *l));
        let drop = all.len().saturating_sub((MAX_TRACKED * 4 / 5) as usize);
        for (_, _, k) in all.iter().take(drop) {
            self.db.remove(tree, k)?;
        }
        len.store((all.len() - drop) as u64, Ordering::Relaxed);
        Ok(())
    }

    fn top(&self, tree: T, n: usize) -> Result<Vec<(String, Tally)>, StoreError> {
        let mut all: Vec<(String, Tally)> = self
            .db
            .scan(tree, b"")?
            .into_iter()
            .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), serde_json::from_slice(&v).unwrap_or_default()))
            .collect();
        all.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(b.1.last.cmp(&a.1.last)));
        all.truncate(n);
        Ok(all)
    }

    /// Drops the oldest fifth of the per-user signals once there are more than `MAX_SIGNALS`
    /// (the evidence they added stays: only the memory of who gave it goes).
    fn prune_signals(&self) -> Result<(), StoreError> {
        if self.signals_len.load(Ordering::Relaxed) <= MAX_SIGNALS {
            return Ok(());
        }
        let mut all: Vec<(u64, K::Bytes)> =
            self.db.scan(T::Signals, b"")?.into_iter().map(|(k, v)| (signal_at(&v), k)).collect();
        all.sort_unstable_by_key(|(at, _)| *at);
        let drop = all.len().saturating_sub((MAX_SIGNALS * 4 / 5) as usize);
        for (_, k) in all.iter().take(drop) {
            self.db.remove(T::Signals, k)?;
        }
        self.signals_len.store((all.len() - drop) as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Drops the least supported fifth of the evidence once it outgrows `MAX_TRACKED`.
    fn prune_evidence(&self) -> Result<(), StoreError> {
        if self.evidence_len.load(Ordering::Relaxed) <= MAX_TRACKED {
            return Ok(());
        }
        let mut all: Vec<(u64, u64, K::Bytes)> = self
            .db
            .scan(T::Evidence, b"")?
            .into_iter()
            .map(|(k, v)| {
                let e: Evidence = serde_json::from_slice(&v).unwrap_or_default();
                (e.users, e.last, k)
            })
            .collect();
        all.sort_unstable_by_key(|(u, l, _)| (*u, *l));
        let drop = all.len().saturating_sub((MAX_TRACKED * 4 / 5) as usize);
        for (_, _, k) in all.iter().take(drop) {
            self.db.remove(T::Evidence, k)?;
        }
        self.evidence_len.store((all.len() - drop) as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Removes daily counters older than `KEEP_DAYS` (run when a new day starts).
    fn prune_days(&self, today: u64) -> Result<(), StoreError> {
        let oldest = today.saturating_sub(KEEP_DAYS);
        for (k, _) in self.db.scan(T::Counters, b"day:")? {
            let day = std::str::from_utf8(&k[4..]).ok().and_then(|s| s.split(':').next()?.parse::<u64>().ok());
            if day.is_some_and(|d| d < oldest) {
                self.db.remove(T::Counters, &k)?;
            }
        }
        Ok(())
    }
}

/// The inbox of received updates (see the module doc). Front ends put an update before
/// handling it and take it out when done; whatever is left after a crash is handled again.
impl<K: KeyValue> KvStore<K> {
    /// Keeps a received update; durable once the store is flushed.
    pub fn inbox_put(&self, update_id: u32, update: &[u8]) -> Result<(), StoreError> {
        self.db.insert(T::Inbox, &update_id.to_be_bytes(), update.to_vec())
    }

    pub fn inbox_done(&self, update_id: u32) -> Result<(), StoreError> {
        self.db.remove(T::Inbox, &update_id.to_be_bytes()).map(|_| ())
    }

    /// Updates received but not handled, oldest first.
    pub fn inbox_pending(&self) -> Result<Vec<(u32, Vec<u8>)>, StoreError> {
        Ok(self
            .db
            .scan(T::Inbox, b"")?
            .into_iter()
            .map(|(k, v)| (<[u8; 4]>::try_from(&k[..]).map(u32::from_be_bytes).unwrap_or(0), v.to_vec()))
            .collect())
    }
}

/// A watch's key: the user first, so /forget finds theirs by prefix.
fn watch_key(user: i64, question: u64) -> [u8; 16] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&user.to_be_bytes());
    k[8..].copy_from_slice(&question.to_be_bytes());
    k
}

impl<K: KeyValue> Store for KvStore<K> {
    fn load_user(&self, user: i64) -> Result<Option<UserState>, StoreError> {
        let Some(bytes) = self.db.get(T::Users, &user.to_be_bytes())? else {
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
        self.db.insert(T::Users, &user.to_be_bytes(), state.encode())?;
        if is_new {
            self.add("users", 1)?;
        }
        Ok(())
    }

    fn delete_user(&self, user: i64) -> Result<bool, StoreError> {
        let existed = self.db.remove(T::Users, &user.to_be_bytes())?.is_some();
        if existed {
            self.add("users", -1)?;
        }
        for (k, _) in self.db.scan(T::Signals, &user.to_be_bytes())? {
            self.db.remove(T::Signals, &k)?;
            self.signals_len.fetch_sub(1, Ordering::Relaxed);
        }
        // /forget: nobody is told about an answer they no longer wait for.
        for (k, _) in self.db.scan(T::Watches, &user.to_be_bytes())? {
            self.db.remove(T::Watches, &k)?;
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
        if self.bump(T::Questions, key, q.at, None)? {
            self.questions_len.fetch_add(1, Ordering::Relaxed);
            self.prune(T::Questions, &self.questions_len)?;
        }
        if q.intent == Intent::Unknown && self.bump(T::Unanswered, key, q.at, Some(q.example))? {
            self.unanswered_len.fetch_add(1, Ordering::Relaxed);
            self.prune(T::Unanswered, &self.unanswered_len)?;
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
        self.db.update(T::Feedback, key.as_bytes(), |old| {
            let mut v: Votes = old.and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default();
            let (add, take) = if up { (&mut v.up, &mut v.down) } else { (&mut v.down, &mut v.up) };
            *add += 1;
            if previous.is_some() {
                *take = take.saturating_sub(1);
            }
            serde_json::to_vec(&v).ok()
        })?;
        Ok(())
    }

    fn record_signal(&self, s: &Signal) -> Result<bool, StoreError> {
        let norm = &s.normalized[..s.normalized.floor_char_boundary(MAX_NORMALIZED_BYTES)];
        let article = s.article.unwrap_or("");
        if norm.is_empty() || (article.is_empty() != (s.kind == SignalKind::NoneOfThese)) {
            return Ok(false);
        }
        let mut key = Vec::with_capacity(8 + norm.len() + 1 + article.len());
        key.extend_from_slice(&s.user.to_be_bytes());
        key.extend_from_slice(norm.as_bytes());
        key.push(0);
        key.extend_from_slice(article.as_bytes());
        let bit = s.kind.bit();
        // A user's vote on a pair is one vote: 👎 after 👍 (or the other way) replaces it.
        let opposite = match s.kind {
            SignalKind::Up => Some(SignalKind::Down),
            SignalKind::Down => Some(SignalKind::Up),
            _ => None,
        };
        let (mut counts, mut new_user, mut retracted) = (false, false, None);
        self.db.update(T::Signals, &key, |old| {
            let mut bits = old.and_then(|b| b.first().copied()).unwrap_or(0);
            new_user = old.is_none();
            counts = bits & bit == 0;
            retracted = opposite.filter(|o| counts && bits & o.bit() != 0);
            if let Some(o) = retracted {
                bits &= !o.bit();
            }
            let mut v = Vec::with_capacity(9);
            v.push(bits | bit);
            v.extend_from_slice(&s.at.to_be_bytes());
            Some(v)
        })?;
        if !counts {
            return Ok(false);
        }
        if new_user {
            self.signals_len.fetch_add(1, Ordering::Relaxed);
            self.prune_signals()?;
        }
        if s.kind == SignalKind::NoneOfThese {
            if self.bump(T::Unanswered, norm, s.at, Some(s.example))? {
                self.unanswered_len.fetch_add(1, Ordering::Relaxed);
                self.prune(T::Unanswered, &self.unanswered_len)?;
            }
            return Ok(true);
        }
        let ekey = &key[8..];
        let mut created = false;
        self.db.update(T::Evidence, ekey, |old| {
            let mut e: Evidence = old.and_then(|b| serde_json::from_slice(b).ok()).unwrap_or_default();
            created = old.is_none();
            e.users += u64::from(new_user);
            e.add(s.kind);
            if let Some(o) = retracted {
                e.remove(o);
            }
            e.last = s.at;
            // The example a reviewer reads: one a user confirmed, else the first one seen.
            if e.example.is_empty() || matches!(s.kind, SignalKind::Pick | SignalKind::Up | SignalKind::Resolved) {
                e.example = s.example.chars().take(MAX_EXAMPLE_CHARS).collect();
            }
            serde_json::to_vec(&e).ok()
        })?;
        if created {
            self.evidence_len.fetch_add(1, Ordering::Relaxed);
            self.prune_evidence()?;
        }
        Ok(true)
    }

    fn evidence(&self) -> Result<Vec<PairEvidence>, StoreError> {
        Ok(self
            .db
            .scan(T::Evidence, b"")?
            .into_iter()
            .filter_map(|(k, v)| {
                let key = std::str::from_utf8(&k).ok()?;
                let (q, a) = key.split_once('\0')?;
                let evidence: Evidence = serde_json::from_slice(&v).ok()?;
                Some(PairEvidence { normalized: q.to_string(), article: a.to_string(), evidence })
            })
            .collect())
    }

    fn verdicts(&self) -> Result<Vec<VerdictRecord>, StoreError> {
        Ok(self.db.scan(T::Verdicts, b"")?.into_iter().filter_map(|(_, v)| serde_json::from_slice(&v).ok()).collect())
    }

    fn add_verdict(&self, v: &VerdictRecord) -> Result<u64, StoreError> {
        let seq = self.add("verdicts:seq", 1)?;
        let record = VerdictRecord { seq, ..v.clone() };
        let bytes = serde_json::to_vec(&record).map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
        self.db.insert(T::Verdicts, &seq.to_be_bytes(), bytes)?;
        Ok(seq)
    }

    fn remove_verdict(&self, seq: u64) -> Result<bool, StoreError> {
        Ok(self.db.remove(T::Verdicts, &seq.to_be_bytes())?.is_some())
    }

    fn add_watch(&self, w: &Watch) -> Result<WatchAdded, StoreError> {
        let key = watch_key(w.user, w.question);
        if self.db.get(T::Watches, &key)?.is_some() {
            return Ok(WatchAdded::Already);
        }
        if self.db.scan(T::Watches, &w.user.to_be_bytes())?.len() >= watch::MAX_PER_USER
            || self.db.len(T::Watches)? >= watch::MAX_TOTAL
        {
            return Ok(WatchAdded::Full);
        }
        let bytes = serde_json::to_vec(w).map_err(|e| StoreError::Io(std::io::Error::other(e)))?;
        self.db.insert(T::Watches, &key, bytes)?;
        Ok(WatchAdded::Added)
    }

    fn watches(&self) -> Result<Vec<Watch>, StoreError> {
        Ok(self.db.scan(T::Watches, b"")?.into_iter().filter_map(|(_, v)| serde_json::from_slice(&v).ok()).collect())
    }

    fn remove_watch(&self, user: i64, question: u64) -> Result<bool, StoreError> {
        Ok(self.db.remove(T::Watches, &watch_key(user, question))?.is_some())
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
        s.top_questions = self.top(T::Questions, top)?.into_iter().map(|(k, t)| (k, t.count)).collect();
        s.top_articles = self.scan_top_articles(top)?;
        let mut votes: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
        for (k, v) in self.db.scan(T::Feedback, b"")? {
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
        // One counter read per day and intent (STATS_DAYS × 4 gets): no scan of the counters.
        for d in day.saturating_sub(STATS_DAYS - 1)..=day {
            let n = |i: Intent| self.counter(&format!("day:{d}:{}", i.as_str()));
            s.days.push(DayCounts {
                day: d,
                answered: n(Intent::Answer)?,
                suggested: n(Intent::Suggest)?,
                unknown: n(Intent::Unknown)?,
                smalltalk: n(Intent::Smalltalk)?,
            });
        }
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
        Ok(self
            .top(T::Unanswered, top)?
            .into_iter()
            .map(|(k, t)| Unanswered { normalized: k, count: t.count, last_asked: t.last, example: t.example })
            .collect())
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()
    }

    fn size_on_disk(&self) -> Option<u64> {
        self.db.size_on_disk()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Position;
    use crate::store::Damage;

    fn q<'a>(n: &'a str, intent: &str, at: u64) -> QuestionRecord<'a> {
        let intent = *Intent::ALL.iter().find(|i| i.as_str() == intent).expect("an intent's name");
        QuestionRecord { normalized: n, example: n, intent, article: (intent == Intent::Answer).then_some("a"), at }
    }

    #[test]
    fn sled_passes_the_store_conformance_checks() {
        let root = tempfile::tempdir().unwrap();
        let open = |n: usize| SledStore::open(&root.path().join(n.to_string())).unwrap();
        crate::conformance::all(&open);
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
        s.db.insert(T::Users, &9i64.to_be_bytes(), &b"\xff not json"[..]).unwrap();
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
        let days = &st.days;
        assert_eq!(days.len() as u64, STATS_DAYS);
        assert_eq!(days.last().unwrap().day, 20_000);
        assert_eq!(days[0].day, 20_000 - (STATS_DAYS - 1));
        let last = days.last().unwrap();
        assert_eq!((last.answered, last.suggested, last.unknown, last.smalltalk), (1, 0, 2, 1));
        assert!(days[..days.len() - 1].iter().all(|d| d.answered + d.suggested + d.unknown + d.smalltalk == 0));
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
        assert!(s.db.len(T::Unanswered) as u64 <= MAX_TRACKED);
        assert!(s.db.len(T::Questions) as u64 <= MAX_TRACKED);
        // The one asked twice survives pruning.
        assert!(s.db.get(T::Unanswered, b"question 5").unwrap().is_some());
    }

    #[test]
    fn old_daily_counters_are_pruned() {
        let s = SledStore::temporary().unwrap();
        s.record_question(&q("x", "answer", 0)).unwrap();
        assert!(s.db.get(T::Counters, b"day:0:answer").unwrap().is_some());
        s.record_question(&q("x", "answer", (KEEP_DAYS + 5) * 86_400)).unwrap();
        assert!(s.db.get(T::Counters, b"day:0:answer").unwrap().is_none());
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

    /// A database in `dir` with `n` users, each at section `u % 7` of article `a<u>`, flushed
    /// and closed.
    fn populated(dir: &Path, n: i64) {
        let s = SledStore::open(dir).unwrap();
        for u in 0..n {
            let mut st = UserState::new(1);
            st.go_to(Position { article: format!("a{u}"), section: Some((u % 7) as usize) });
            st.log_question(&"a question of some length, to make the file larger ".repeat(4), "answer", 1);
            s.save_user(u, &st, true).unwrap();
        }
        s.record_question(&q("knee pain", "answer", 5)).unwrap();
        s.flush().unwrap();
    }

    fn section_of(s: &SledStore, user: i64) -> Option<usize> {
        s.load_user(user).unwrap().and_then(|st| st.position).and_then(|p| p.section)
    }

    fn truncate(path: &Path, percent: u64) {
        let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        let len = f.metadata().unwrap().len();
        f.set_len(len * percent / 100).unwrap();
    }

    type Damager = fn(&Path);

    const DAMAGES: &[(&str, Damager)] = &[
        ("db truncated to 0", |d| truncate(&d.join("db"), 0)),
        ("db truncated to 10 %", |d| truncate(&d.join("db"), 10)),
        ("db truncated to 50 %", |d| truncate(&d.join("db"), 50)),
        ("db overwritten", |d| {
            let len = std::fs::metadata(d.join("db")).unwrap().len() as usize;
            std::fs::write(d.join("db"), vec![0x5a; len]).unwrap();
        }),
        ("db and snapshots deleted", |d| {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                if name == "db" || name.starts_with("snap.") {
                    std::fs::remove_file(p).unwrap();
                }
            }
        }),
        ("every file but the marker deleted", |d| {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.file_name() != Some(sled_db::MARKER.as_ref()) {
                    if p.is_dir() {
                        std::fs::remove_dir_all(p).unwrap();
                    } else {
                        std::fs::remove_file(p).unwrap();
                    }
                }
            }
        }),
    ];

    #[test]
    fn a_damaged_database_is_refused_and_never_opens_empty() {
        let tmp = tempfile::tempdir().unwrap();
        let good = tmp.path().join("good");
        populated(&good, 3000);
        for (i, (what, damage)) in DAMAGES.iter().enumerate() {
            let dir = tmp.path().join(format!("case{i}"));
            articlebot_testkit::copy_dir(&good, &dir);
            damage(&dir);
            let names = |d: &Path| -> std::collections::BTreeSet<String> {
                std::fs::read_dir(d).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
            };
            let files_before = names(&dir);
            match SledStore::open(&dir) {
                Err(e @ StoreError::Damaged { .. }) => {
                    let line = crate::ErrorChain(&e).to_string();
                    assert!(
                        line.contains("articlebot restore FILE --data") && line.contains("--accept-data-loss"),
                        "{line}"
                    );
                    assert!(!line.contains('\n'), "one line: {line}");
                }
                Err(e) => panic!("{what}: not reported as damage: {}", crate::ErrorChain(&e)),
                Ok(s) => {
                    // Only if sled found everything after all (a torn tail it can drop).
                    let users = s.stats(0, 1).unwrap().users;
                    assert_eq!(users, 3000, "{what}: opened with {users} users and no word");
                    assert!((0..3000).all(|u| section_of(&s, u) == Some((u % 7) as usize)), "{what}");
                    continue;
                }
            }
            // sled may write a snapshot of what it recovered; nothing of ours goes or is moved.
            let after = names(&dir);
            assert!(files_before.is_subset(&after), "{what}: refusing removes nothing: {files_before:?} -> {after:?}");
            assert!(!after.iter().any(|n| n.starts_with("damaged-")), "{what}");
        }
        // The intact copy opens, with everything.
        let s = SledStore::open(&good).unwrap();
        assert_eq!(s.stats(0, 1).unwrap().users, 3000);
    }

    #[test]
    fn accepting_the_loss_sets_the_damaged_files_aside_and_keeps_what_is_readable() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        populated(&dir, 300);
        truncate(&dir.join("db"), 0);
        assert!(matches!(SledStore::open(&dir), Err(StoreError::Damaged { .. })));
        let s = SledStore::open_with(&dir, IfDamaged::KeepWhatCanBeRead).unwrap();
        let aside: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("damaged-"))
            .collect();
        assert_eq!(aside.len(), 1, "the damaged files are kept");
        assert!(dir.join(&aside[0]).join("db").exists());
        s.save_user(9, &UserState::new(1), true).unwrap();
        s.flush().unwrap();
        drop(s);
        // The new database is a good one from now on.
        let s = SledStore::open(&dir).unwrap();
        assert!(s.load_user(9).unwrap().is_some());
        assert_eq!(s.stats(0, 1).unwrap().users, 1, "the counter agrees with the states");
    }

    #[test]
    fn what_can_be_read_is_kept_when_accepting_the_loss() {
        // A database whose files were deleted is empty: nothing to keep, but the start goes on.
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        populated(&dir, 10);
        let (_, wipe) = DAMAGES[5];
        wipe(&dir);
        assert!(matches!(SledStore::open(&dir), Err(StoreError::Damaged { damage: Damage::Emptied, .. })));
        assert!(SledStore::open_with(&dir, IfDamaged::KeepWhatCanBeRead).is_ok());
        // A readable database that is "damaged" only by a foreign marker keeps everything.
        let dir = tmp.path().join("other");
        populated(&dir, 10);
        std::fs::write(dir.join(sled_db::MARKER), "someone-else\n").unwrap();
        assert!(matches!(SledStore::open(&dir), Err(StoreError::Damaged { damage: Damage::Replaced, .. })));
        let s = SledStore::open_with(&dir, IfDamaged::KeepWhatCanBeRead).unwrap();
        assert!((0..10).all(|u| section_of(&s, u) == Some((u % 7) as usize)));
    }

    #[test]
    fn a_database_from_before_markers_is_marked_not_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        {
            // What an earlier version wrote: no `meta` tree, no marker.
            let db = sled::Config::new().path(&dir).open().unwrap();
            let mut st = UserState::new(1);
            st.go_to(Position { article: "a".into(), section: Some(3) });
            db.open_tree("users").unwrap().insert(5i64.to_be_bytes(), st.encode()).unwrap();
            db.open_tree("counters").unwrap().insert("users", 1u64.to_be_bytes().to_vec()).unwrap();
            db.flush().unwrap();
        }
        let s = SledStore::open(&dir).unwrap();
        assert_eq!(section_of(&s, 5), Some(3));
        drop(s);
        assert!(dir.join(sled_db::MARKER).exists());
        // A lost marker is written again: the database itself says who it is.
        std::fs::remove_file(dir.join(sled_db::MARKER)).unwrap();
        assert_eq!(section_of(&SledStore::open(&dir).unwrap(), 5), Some(3));
        assert!(dir.join(sled_db::MARKER).exists());
    }

    #[test]
    fn backup_damage_restore_and_everything_is_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        populated(&dir, 500);
        let s = SledStore::open(&dir).unwrap();
        s.inbox_put(77, b"{\"update\":77}").unwrap();
        s.record_feedback("a1", Some(0), true, None).unwrap();
        let mut out = Vec::new();
        let report = s.backup(&mut out).unwrap();
        assert_eq!(report.trees.iter().find(|(t, _)| t == "users").unwrap().1, 500);
        let before = s.stats(0, 10).unwrap();
        drop(s);
        let file = tmp.path().join("backup.jsonl");
        std::fs::write(&file, &out).unwrap();

        truncate(&dir.join("db"), 50);
        assert!(SledStore::open(&dir).is_err(), "the damage is noticed");
        let restored = SledStore::restore(&file, &dir).unwrap();
        assert_eq!(restored.restored, report);
        assert!(restored.replaced.as_ref().is_some_and(|p| p.join("db").exists()), "the damaged one is kept");
        let s = SledStore::open(&dir).unwrap();
        assert!((0..500).all(|u| section_of(&s, u) == Some((u % 7) as usize)), "every position is back");
        assert_eq!(s.stats(0, 10).unwrap(), before);
        assert_eq!(s.inbox_pending().unwrap(), vec![(77, b"{\"update\":77}".to_vec())]);
    }

    #[test]
    fn a_cut_or_changed_backup_is_refused_whole() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        populated(&dir, 50);
        let mut out = Vec::new();
        SledStore::open(&dir).unwrap().backup(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let target = tmp.path().join("target");
        let cases = [
            ("cut short", text[..text.len() / 2].to_string()),
            ("last line missing", text.lines().take(text.lines().count() - 1).collect::<Vec<_>>().join("\n")),
            ("a value changed", text.replacen("\"value\":\"7b", "\"value\":\"7c", 1)),
            ("a line dropped", {
                let mut l: Vec<&str> = text.lines().collect();
                l.remove(3);
                l.join("\n") + "\n"
            }),
            ("not a backup", "hello\n".to_string()),
            ("empty", String::new()),
        ];
        for (what, content) in cases {
            let file = tmp.path().join("bad.jsonl");
            std::fs::write(&file, content).unwrap();
            match SledStore::restore(&file, &target) {
                Err(e @ StoreError::BadBackup { .. }) => assert!(e.to_string().contains("nothing was restored"), "{e}"),
                other => panic!("{what}: {other:?}"),
            }
            assert!(!target.join("db").exists(), "{what}: nothing was written");
        }
    }

    #[test]
    fn restore_refuses_a_database_in_use() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        populated(&dir, 5);
        let s = SledStore::open(&dir).unwrap();
        let mut out = Vec::new();
        s.backup(&mut out).unwrap();
        let file = tmp.path().join("b.jsonl");
        std::fs::write(&file, &out).unwrap();
        assert!(matches!(SledStore::restore(&file, &dir), Err(StoreError::Locked(_))));
        assert_eq!(section_of(&s, 3), Some(3), "the running one is untouched");
    }

    /// Opens `dir` again right after a store on it was dropped: after a failed write sled's
    /// writer threads may hold its file (and lock) a moment longer.
    fn reopen(dir: &Path) -> SledStore {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match SledStore::open(dir) {
                Err(StoreError::Locked(_)) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                other => return other.unwrap(),
            }
        }
    }

    fn full_disk() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device (os error 28)")
    }

    #[test]
    fn while_the_disk_is_full_writes_wait_in_memory_and_reach_the_disk_after() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let s = SledStore::open(&dir).unwrap();
        let at = |section| {
            let mut st = UserState::new(1);
            st.go_to(Position { article: "a".into(), section: Some(section) });
            st
        };
        s.save_user(1, &at(0), true).unwrap();
        s.flush().unwrap();
        s.db.still_full.store(true, Ordering::Release);
        s.db.fail(full_disk());
        assert!(!s.writable());
        // Writes are taken and read back...
        s.save_user(1, &at(4), false).unwrap();
        s.save_user(2, &at(2), true).unwrap();
        s.record_question(&q("bake bread", "unknown", 9)).unwrap();
        s.inbox_put(5, b"five").unwrap();
        assert_eq!(section_of(&s, 1), Some(4));
        assert_eq!(s.stats(0, 5).unwrap().users, 2);
        assert_eq!(s.unanswered(5).unwrap()[0].normalized, "bake bread");
        assert_eq!(s.inbox_pending().unwrap(), vec![(5, b"five".to_vec())]);
        s.inbox_done(5).unwrap();
        assert!(s.inbox_pending().unwrap().is_empty());
        // ...and the flush says what happened.
        let e = s.flush().unwrap_err();
        let line = crate::ErrorChain(&e).to_string();
        assert!(line.starts_with("flush failed") && line.contains("No space left on device"), "{line}");
        assert!(matches!(e, StoreError::Flush { held, .. } if held >= 4), "{line}");
        // Room again: the recovery thread writes them (within a few seconds, bounded).
        s.db.still_full.store(false, Ordering::Release);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !s.writable() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(s.writable(), "recovered");
        s.flush().unwrap();
        s.save_user(3, &at(1), true).unwrap();
        s.flush().unwrap();
        drop(s);
        let s = reopen(&dir);
        assert_eq!(section_of(&s, 1), Some(4), "the position written while the disk was full is on disk");
        assert_eq!(section_of(&s, 2), Some(2));
        assert_eq!(section_of(&s, 3), Some(1));
        assert_eq!(s.stats(0, 5).unwrap().users, 3);
        assert!(s.inbox_pending().unwrap().is_empty(), "a removal is kept too");
    }

    #[test]
    fn the_journal_stays_small_when_flushed() {
        let s = SledStore::temporary().unwrap();
        for u in 0..1000 {
            s.save_user(u, &UserState::new(1), true).unwrap();
            if u % 10 == 0 {
                s.flush().unwrap();
            }
        }
        s.flush().unwrap();
        assert_eq!(s.db.journal_len(), 0);
        // Without flushes it is flushed when it grows large, not kept.
        let big = UserState {
            questions: (0..20)
                .map(|i| crate::state::AskedQuestion { text: "x".repeat(300), intent: "answer".into(), at: i })
                .collect(),
            ..UserState::new(1)
        };
        for u in 0..10_000 {
            s.save_user(u, &big, false).unwrap();
        }
        assert!(s.db.journal_len() < 10_000);
    }

    /// A tmpfs of `mib` MiB, unmounted when dropped; `None` where one cannot be mounted (not
    /// root), and the real-disk test then says it did not run. The temporary dir (the second
    /// field) holds the mount point and is removed after the unmount.
    struct Tmpfs(std::path::PathBuf, #[allow(dead_code)] tempfile::TempDir);

    impl Tmpfs {
        fn mount(mib: u32) -> Option<Tmpfs> {
            let dir = tempfile::tempdir().ok()?;
            let mnt = dir.path().join("mnt");
            std::fs::create_dir(&mnt).ok()?;
            let ok = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
                .arg(&mnt)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            ok.then_some(Tmpfs(mnt, dir))
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }

    /// Fills the file system of `dir` with a file; returns its path.
    fn fill(dir: &Path) -> std::path::PathBuf {
        use std::io::Write;
        let path = dir.join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![1u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        while f.write_all(&chunk[..512]).is_ok() {}
        let _ = f.sync_all();
        path
    }

    #[test]
    fn a_really_full_disk_then_room_again_loses_no_position() {
        let Some(fs) = Tmpfs::mount(8) else {
            eprintln!("NOT RUN: cannot mount a tmpfs here (needs root); the injected-failure test covers the logic");
            return;
        };
        let dir = fs.0.join("data");
        let s = SledStore::open(&dir).unwrap();
        let at = |section| {
            let mut st = UserState::new(1);
            st.go_to(Position { article: "a".into(), section: Some(section) });
            st.log_question(&"y".repeat(300), "answer", 1);
            st
        };
        for u in 0..50 {
            s.save_user(u, &at(0), true).unwrap();
        }
        s.flush().unwrap();
        let filler = fill(&fs.0);
        // Users go on while the disk is full: every write is taken, flushes fail until sled
        // itself notices (its buffers take the first few).
        let mut failed = 0;
        for round in 1..=40usize {
            for u in 0..50 {
                s.save_user(u, &at(round), false).unwrap();
            }
            if s.flush().is_err() {
                failed += 1;
            }
        }
        assert!(failed > 0 && !s.writable(), "the full disk was noticed");
        std::fs::remove_file(&filler).unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        while !s.writable() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(s.writable(), "writable again once there is room, without a restart");
        s.save_user(99, &at(7), true).unwrap();
        s.flush().unwrap();
        drop(s);
        let s = reopen(&dir);
        assert!((0..50).all(|u| section_of(&s, u) == Some(40)), "every position written while full is there");
        assert_eq!(section_of(&s, 99), Some(7));
        assert_eq!(s.stats(0, 1).unwrap().users, 51);
    }

    #[test]
    fn learning_signals_and_evidence_stay_bounded_and_go_into_backups() {
        let s = SledStore::temporary().unwrap();
        fn signal(user: i64, q: &str, kind: SignalKind) -> Signal<'_> {
            Signal { user, normalized: q, example: q, article: Some("a"), kind, at: user as u64 }
        }
        for u in 0..=(MAX_SIGNALS as i64) {
            assert!(s.record_signal(&signal(u, "one question", SignalKind::Pick)).unwrap());
        }
        assert!(s.db.len(T::Signals) as u64 <= MAX_SIGNALS, "{}", s.db.len(T::Signals));
        let e = s.evidence().unwrap();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].evidence.users, MAX_SIGNALS + 1, "the evidence outlives the per-user records");
        // The newest users are still remembered: their pick again does not count twice.
        assert!(!s.record_signal(&signal(MAX_SIGNALS as i64, "one question", SignalKind::Pick)).unwrap());
        for i in 0..=MAX_TRACKED {
            s.record_signal(&signal(1, &format!("question {i}"), SignalKind::Up)).unwrap();
        }
        assert!(s.evidence().unwrap().len() as u64 <= MAX_TRACKED);
        // A signal that does not fit its kind is not counted.
        let mut odd = signal(7, "q", SignalKind::NoneOfThese);
        assert!(!s.record_signal(&odd).unwrap(), "None of these names no article");
        odd.article = None;
        odd.kind = SignalKind::Pick;
        assert!(!s.record_signal(&odd).unwrap(), "a pick names one");
        let mut out = Vec::new();
        let report = s.backup(&mut out).unwrap();
        assert!(report.trees.iter().any(|(t, n)| t == "evidence" && *n > 0), "{report:?}");
        assert!(report.trees.iter().any(|(t, n)| t == "signals" && *n > 0), "{report:?}");
    }
}
