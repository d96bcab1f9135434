//! Where the bot keeps conversations and statistics: sled in a dir (the default, one process) or
//! a PostgreSQL server (`--store postgres://...`, several replicas). [`DataStore`] is either, for
//! the front ends and the owner's tools alike.
//!
//! PostgreSQL's client blocks on its own runtime, which cannot run inside a worker of ours:
//! called from async code, its calls step out of the worker first (`block_in_place`).

use std::path::{Path, PathBuf};

use articlebot_engine::{
    IfDamaged, PairEvidence, QuestionRecord, Signal, SledStore, Stats, Store, StoreError, Unanswered, VerdictRecord,
    Watch, WatchAdded,
};
use articlebot_postgres::PgStore;

/// Where the data is, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Sled(PathBuf),
    /// The URL (with any password: never print it, use [`Location::shown`]).
    Postgres(String),
}

impl Location {
    /// `--store` if given (a PostgreSQL URL, or a dir), else the sled dir `data`.
    pub fn from_args(store: Option<&str>, data: &Path) -> Location {
        match store {
            Some(s) if articlebot_postgres::is_url(s) => Location::Postgres(s.to_string()),
            Some(dir) => Location::Sled(PathBuf::from(dir)),
            None => Location::Sled(data.to_path_buf()),
        }
    }

    /// For messages: the dir, or the URL without its password.
    pub fn shown(&self) -> String {
        match self {
            Location::Sled(dir) => dir.display().to_string(),
            Location::Postgres(url) => articlebot_postgres::redact(url),
        }
    }
}

pub enum DataStore {
    Sled(SledStore),
    Postgres(PgStore),
}

impl std::fmt::Debug for DataStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DataStore::Sled(_) => "DataStore::Sled",
            DataStore::Postgres(_) => "DataStore::Postgres",
        })
    }
}

/// Runs a blocking call of the PostgreSQL client where it may block: outside any runtime as it
/// is, inside a multi-threaded runtime's worker after stepping out of it.
pub fn blocking<R>(f: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

macro_rules! each {
    ($self:ident, $s:ident => $call:expr) => {
        match $self {
            DataStore::Sled($s) => $call,
            DataStore::Postgres($s) => blocking(|| $call),
        }
    };
}

impl DataStore {
    /// Opens the store at `location`: sled's dir (choosing what happens to a damaged one), or the
    /// server, its schema migrated.
    pub fn open(location: &Location, if_damaged: IfDamaged) -> Result<DataStore, StoreError> {
        match location {
            Location::Sled(dir) => SledStore::open_with(dir, if_damaged).map(DataStore::Sled),
            Location::Postgres(url) => blocking(|| articlebot_postgres::open(url)).map(DataStore::Postgres),
        }
    }

    /// Whether several processes may use this store at once.
    pub fn is_shared(&self) -> bool {
        matches!(self, DataStore::Postgres(_))
    }

    pub fn backup(&self, out: &mut dyn std::io::Write) -> Result<articlebot_engine::BackupReport, StoreError> {
        match self {
            DataStore::Sled(s) => s.backup(out),
            DataStore::Postgres(s) => blocking(|| articlebot_engine::write_backup(s.tables(), out)),
        }
    }

    pub fn inbox_put(&self, update_id: u32, update: &[u8]) -> Result<(), StoreError> {
        each!(self, s => s.inbox_put(update_id, update))
    }

    pub fn inbox_done(&self, update_id: u32) -> Result<(), StoreError> {
        each!(self, s => s.inbox_done(update_id))
    }

    pub fn inbox_pending(&self) -> Result<Vec<(u32, Vec<u8>)>, StoreError> {
        each!(self, s => s.inbox_pending())
    }

    /// Makes everything written so far durable without blocking the async runtime.
    pub async fn flush_async(&self) -> Result<(), StoreError> {
        match self {
            DataStore::Sled(s) => s.flush_async().await,
            DataStore::Postgres(s) => blocking(|| s.flush()),
        }
    }
}

impl Store for DataStore {
    fn load_user(&self, user: i64) -> Result<Option<articlebot_engine::UserState>, StoreError> {
        each!(self, s => s.load_user(user))
    }
    fn save_user(&self, user: i64, state: &articlebot_engine::UserState, is_new: bool) -> Result<(), StoreError> {
        each!(self, s => s.save_user(user, state, is_new))
    }
    fn delete_user(&self, user: i64) -> Result<bool, StoreError> {
        each!(self, s => s.delete_user(user))
    }
    fn record_question(&self, q: &QuestionRecord) -> Result<(), StoreError> {
        each!(self, s => s.record_question(q))
    }
    fn record_feedback(
        &self,
        article: &str,
        section: Option<usize>,
        up: bool,
        previous: Option<bool>,
    ) -> Result<(), StoreError> {
        each!(self, s => s.record_feedback(article, section, up, previous))
    }
    fn stats(&self, now: u64, top: usize) -> Result<Stats, StoreError> {
        each!(self, s => s.stats(now, top))
    }
    fn top_articles(&self, top: usize) -> Result<Vec<(String, u64)>, StoreError> {
        each!(self, s => s.top_articles(top))
    }
    fn unanswered(&self, top: usize) -> Result<Vec<Unanswered>, StoreError> {
        each!(self, s => s.unanswered(top))
    }
    fn record_signal(&self, signal: &Signal) -> Result<bool, StoreError> {
        each!(self, s => s.record_signal(signal))
    }
    fn evidence(&self) -> Result<Vec<PairEvidence>, StoreError> {
        each!(self, s => s.evidence())
    }
    fn verdicts(&self) -> Result<Vec<VerdictRecord>, StoreError> {
        each!(self, s => s.verdicts())
    }
    fn add_verdict(&self, v: &VerdictRecord) -> Result<u64, StoreError> {
        each!(self, s => s.add_verdict(v))
    }
    fn remove_verdict(&self, seq: u64) -> Result<bool, StoreError> {
        each!(self, s => s.remove_verdict(seq))
    }
    fn add_watch(&self, w: &Watch) -> Result<WatchAdded, StoreError> {
        each!(self, s => s.add_watch(w))
    }
    fn watches(&self) -> Result<Vec<Watch>, StoreError> {
        each!(self, s => s.watches())
    }
    fn remove_watch(&self, user: i64, question: u64) -> Result<bool, StoreError> {
        each!(self, s => s.remove_watch(user, question))
    }
    fn flush(&self) -> Result<(), StoreError> {
        each!(self, s => s.flush())
    }
    fn size_on_disk(&self) -> Option<u64> {
        each!(self, s => s.size_on_disk())
    }
}
