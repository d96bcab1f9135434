//! Where conversations and statistics are kept. `Store` is what the conversation logic needs;
//! `SledStore` keeps it in a sled database on disk (or a temporary one for `articlebot chat`).

use articlebot_matching::Intent;
use serde::{Deserialize, Serialize};

use crate::learning::{PairEvidence, Signal, VerdictRecord};
use crate::state::UserState;
use crate::watch::{Watch, WatchAdded};

/// Why the store could not do something. The cause is the error's `source()`: print the chain
/// (see [`crate::ErrorChain`]).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database is locked by another running articlebot (or another process)")]
    Locked(#[source] std::io::Error),
    /// The operating system refused: no space left, permission denied, a read-only disk.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("the database is damaged")]
    Corrupt(#[source] sled::Error),
    #[error("database error")]
    Db(#[source] sled::Error),
    /// Found when the database was opened; nothing was changed. The message says what to do.
    #[error(
        "the database is damaged, and articlebot does not start on it (it would start with every \
         user's position gone): restore a backup (`articlebot restore FILE --data {dir}`), or start \
         with `--accept-data-loss` to set the damaged files aside and keep what can be read",
        dir = .dir.display()
    )]
    Damaged {
        dir: std::path::PathBuf,
        #[source]
        damage: Damage,
    },
    /// Changes are not on disk. The database keeps them in memory (up to a limit) and writes
    /// them once it can: the disk has room again.
    #[error("flush failed: {held} change(s) not on disk, kept in memory and written once the disk has room")]
    Flush {
        held: usize,
        #[source]
        source: std::io::Error,
    },
    /// The database has not been writable for a while and holds as many changes in memory as
    /// it may: this one is lost.
    #[error("cannot write: the database has not been writable since {seconds} s ago and {held} changes already wait in memory; this one is lost")]
    Unwritable {
        seconds: u64,
        held: usize,
        #[source]
        source: std::io::Error,
    },
    /// The database is being opened again after it could not be written; try again shortly.
    #[error("the database is being reopened")]
    Reopening,
    /// The database server cannot be reached, or the connection to it broke: nothing was
    /// changed by this call (or, for a write whose answer was lost, it may have been); calls are
    /// tried again with backoff.
    #[error("the database server cannot be reached")]
    Unreachable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database server could not do it now (it is read-only during a failover, out of disk
    /// or connections, or the call lost a race or waited too long); trying again later may work.
    #[error("the database server is busy")]
    Busy(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database server refused or failed a statement.
    #[error("the database server failed")]
    Server(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database's tables were made by a newer articlebot; this one does not touch them.
    #[error("the database's schema is version {found}, newer than this articlebot's {known}: upgrade articlebot")]
    NewerSchema { found: i32, known: i32 },
    /// A backup file that is not one, or is damaged or cut short; nothing was restored.
    #[error("{path}: not a complete articlebot backup (line {line}: {reason}); nothing was restored", path = .path.display())]
    BadBackup { path: std::path::PathBuf, line: usize, reason: String },
}

impl StoreError {
    /// Whether trying again later may work: the database server is away or busy, or the
    /// database is being reopened.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unreachable(_) | StoreError::Busy(_) | StoreError::Reopening)
    }
}

/// What is wrong with a damaged database (the cause of [`StoreError::Damaged`]).
#[derive(Debug, thiserror::Error)]
pub enum Damage {
    #[error("sled cannot open it")]
    Unopenable(#[source] sled::Error),
    #[error("sled failed while {doing} it ({message})")]
    Panicked { doing: &'static str, message: String },
    #[error("tree `{tree}` cannot be read after {after} entries")]
    Unreadable {
        tree: String,
        after: u64,
        #[source]
        source: sled::Error,
    },
    #[error("it is older than its marker file says (generation {found}, not {expected}): sled fell back to an earlier state, and the changes after it are lost")]
    Older { found: u64, expected: u64 },
    #[error("it holds {counted} users where it last held {expected}: the rest cannot be read")]
    Missing { counted: u64, expected: u64 },
    #[error("it is empty, but its marker file says it held data: its files were deleted or replaced")]
    Emptied,
    #[error("its marker file belongs to another database: its files were replaced")]
    Replaced,
    #[error("a restore or repair into it did not finish")]
    Incomplete,
}

/// One question as statistics see it: normalised text (no user id), what the bot did with it.
#[derive(Debug, Clone, Copy)]
pub struct QuestionRecord<'a> {
    pub normalized: &'a str,
    pub example: &'a str,
    pub intent: Intent,
    pub article: Option<&'a str>,
    pub at: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub users: u64,
    pub questions_total: u64,
    pub questions_today: u64,
    pub answered_total: u64,
    pub answered_today: u64,
    pub suggested_total: u64,
    pub unknown_total: u64,
    pub smalltalk_total: u64,
    pub top_questions: Vec<(String, u64)>,
    pub top_articles: Vec<(String, u64)>,
    /// (article id, 👍, 👎), most rated first.
    pub feedback: Vec<(String, u64, u64)>,
    /// Questions per day, oldest first, the last [`STATS_DAYS`] days up to `now`'s (days with
    /// none included, so a chart's bars are evenly spaced). Missing in older `--json` output.
    #[serde(default)]
    pub days: Vec<DayCounts>,
}

/// Days of questions that [`Store::stats`] gives per day.
pub const STATS_DAYS: u64 = 30;

/// What the bot did with one day's questions (UTC days).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayCounts {
    /// Days since 1970-01-01 ([`day_of`]).
    pub day: u64,
    pub answered: u64,
    pub suggested: u64,
    pub unknown: u64,
    pub smalltalk: u64,
}

/// A question the bot could not answer, merged by normalised text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unanswered {
    pub normalized: String,
    pub count: u64,
    pub last_asked: u64,
    pub example: String,
}

/// Storage for the conversation engine. Calls are short and synchronous; `flush` is the
/// durability point (call it off the async runtime's worker threads).
pub trait Store: Send + Sync + 'static {
    /// The user's state; `None` for a new user. A state that cannot be decoded is reported as
    /// a fresh one (and logged), never as an error: the user must still get an answer.
    fn load_user(&self, user: i64) -> Result<Option<UserState>, StoreError>;
    fn save_user(&self, user: i64, state: &UserState, is_new: bool) -> Result<(), StoreError>;
    /// Deletes everything kept about the user; whether there was anything.
    fn delete_user(&self, user: i64) -> Result<bool, StoreError>;
    fn record_question(&self, q: &QuestionRecord) -> Result<(), StoreError>;
    /// Counts a 👍 or 👎; `previous` is the user's earlier vote on the same section, which this
    /// one replaces (the same vote again changes nothing).
    fn record_feedback(
        &self,
        article: &str,
        section: Option<usize>,
        up: bool,
        previous: Option<bool>,
    ) -> Result<(), StoreError>;
    fn stats(&self, now: u64, top: usize) -> Result<Stats, StoreError>;
    /// The most answered article ids with their counts, best first; may be a minute old.
    fn top_articles(&self, top: usize) -> Result<Vec<(String, u64)>, StoreError>;
    fn unanswered(&self, top: usize) -> Result<Vec<Unanswered>, StoreError>;
    /// Counts a learning signal once per user, pair and kind; whether it counted (false: this
    /// user said so before). A "None of these" counts the question as unanswered.
    fn record_signal(&self, s: &Signal) -> Result<bool, StoreError>;
    /// The evidence gathered for every (normalised question, article) pair kept.
    fn evidence(&self) -> Result<Vec<PairEvidence>, StoreError>;
    /// Every review decision, in the order they were made.
    fn verdicts(&self) -> Result<Vec<VerdictRecord>, StoreError>;
    /// Keeps a decision (its `seq` is given here); returns the `seq`.
    fn add_verdict(&self, v: &VerdictRecord) -> Result<u64, StoreError>;
    /// Removes the decision `seq`; whether there was one.
    fn remove_verdict(&self, seq: u64) -> Result<bool, StoreError>;
    /// Keeps `w` until it is answered or the user is forgotten, within the per-user and total
    /// caps ([`crate::watch::MAX_PER_USER`], [`crate::watch::MAX_TOTAL`]).
    fn add_watch(&self, w: &Watch) -> Result<WatchAdded, StoreError>;
    /// Every question users wait for an answer to.
    fn watches(&self) -> Result<Vec<Watch>, StoreError>;
    /// Removes `user`'s watch of `question`; whether there was one.
    fn remove_watch(&self, user: i64, question: u64) -> Result<bool, StoreError>;
    /// Makes everything written so far durable.
    fn flush(&self) -> Result<(), StoreError>;
    /// Bytes on disk, when known.
    fn size_on_disk(&self) -> Option<u64>;
}

/// The wall clock as the engine's `now` arguments take it: seconds since 1970 (0 if the clock
/// is before that).
pub fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Day number (days since 1970-01-01, UTC) of a unix time.
pub fn day_of(unix: u64) -> u64 {
    unix / 86_400
}

/// `YYYY-MM-DD` of a unix time (UTC).
pub fn date_of(unix: u64) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let z = day_of(unix) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date_of(0), "1970-01-01");
        assert_eq!(date_of(1_700_000_000), "2023-11-14");
        assert_eq!(date_of(951_782_400), "2000-02-29");
    }
}
