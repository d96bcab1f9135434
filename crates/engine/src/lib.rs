//! articlebot's engine: everything that answers a question, with no front end. A Telegram bot,
//! a console or a test drives it through [`Engine`]; nothing here knows Telegram, tokio or the
//! command line.
//!
//! Data flows one way, and crate boundaries keep it so:
//!
//! - **knowledge** (crate `articlebot-knowledge`): a knowledge dir read, validated and imported
//!   into a [`KnowledgeBase`]; every problem a [`Diagnostic`] with file and line;
//! - **matching** (crate `articlebot-matching`): the [`Matcher`] indexes a knowledge base and
//!   decides what a question is ([`Decision`]: answer, did-you-mean, small talk, don't know);
//! - **conversation** (this crate): per-user state machines over a [`Store`] ([`SledStore`] on
//!   disk), the command [`vocabulary`] and the bot's wording ([`text`]).
//!
//! This crate's modules:
//! - `engine`: [`Engine`] (open, reload, handle);
//! - `library`: [`Library`], a knowledge dir loaded and indexed;
//! - `clusters`: unanswered questions grouped by what they ask;
//! - `learning`: signals from users → proposals → reviewed alternate questions in the files;
//! - `turn`: one input applied to one user's state;
//! - `replay`: reviewed questions asked of a new knowledge base before it is swapped in;
//! - `watch`: users waiting for an answer to a question that had none;
//! - `reply`: what the conversation answers ([`Reply`]);
//! - [`vocabulary`]: commands, typed words and numbers → [`Input`];
//! - `state`: what is stored per user, and its versioned encoding;
//! - `store`, `sled_store`: the [`Store`] trait and [`KvStore`], the store over key-value tables;
//! - `kv`: those tables ([`Tree`]) and what a backend of them does ([`KeyValue`]);
//! - `sled_db`: sled underneath, opened with its damage looked for, kept usable on a full disk;
//! - `backup`: backups of the database and their restore;
//! - [`text`]: the wording every front end shares.

mod backup;
mod clusters;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod engine;
mod kv;
mod learning;
mod library;
mod replay;
mod reply;
mod sled_db;
mod sled_store;
mod state;
mod store;
pub mod text;
mod turn;
pub mod vocabulary;
mod watch;

#[cfg(test)]
mod learning_tests;
#[cfg(test)]
mod semantic_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod watch_tests;

/// Loads a knowledge dir without indexing it, for tools that read articles; front ends open an
/// [`Engine`] instead.
pub use articlebot_knowledge::load as load_knowledge;
pub use articlebot_knowledge::{
    count, import, import_site, is_key, Article, ArticleIdx, Diagnostic, ErrorChain, FetchedPage, ImportReport,
    KbStats, KnowledgeBase, LearningConfig, LoadError, Loaded, Section, SiteConfig, SiteImport, SiteInputs,
    AUTO_ACCEPT_MIN_USERS,
};
pub use articlebot_matching::{
    fill_cache_with_stand_ins, fold, Candidate, Decision, Hit, IndexSize, Intent, Matcher, Model, ModelError,
    ModelOptions, QueryStats, Scan, SemanticReport, Smalltalk, Snippet, FIRST_PASS_ABOVE,
};
pub use backup::{read as read_backup, write as write_backup, BackupReport, RestoreReport};
pub use clusters::{cluster_unanswered, group_id, AttachedGroup, Cluster, GROUPED_FROM};
pub use engine::{Engine, Outcome, User};
pub use kv::{EachEntry, Entries, KeyValue, Tree};
pub use learning::{
    proposals, Accepted, AutoAccepted, Card, CardArticle, Evidence, LearnError, PairEvidence, Proposal, ReviewSession,
    Signal, SignalKind, Verdict, VerdictRecord, MIN_USERS, REPHRASE_SECS,
};
pub use library::{Library, LoadReport, OpenError};
pub use replay::{replay, Guard, Now, Regression, ReloadError, ReplayReport, DEFAULT_MAX_BROKEN};
pub use reply::{AnswerView, Choice, EmbedProgress, Link, Options, Reply, TopicRef};
pub use sled_db::IfDamaged;
pub use sled_store::{KvStore, SledStore};
pub use state::UserState;
pub use store::{
    date_of, day_of, now_unix, Damage, DayCounts, QuestionRecord, Stats, Store, StoreError, Unanswered, STATS_DAYS,
};
pub use vocabulary::Input;
pub use watch::{question_id, Answered, Watch, WatchAdded, Watching, MAX_PER_USER as MAX_WATCHES_PER_USER};
