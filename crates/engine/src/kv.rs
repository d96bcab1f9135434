//! The key-value tables the conversation store is kept in, and what a backend must do to hold
//! them: [`KeyValue`]. [`KvStore`](crate::KvStore) is the store over any backend; sled on disk
//! (`sled_db`) is the embedded one, a database server another (crate `articlebot-postgres`).
//! Keys and values are bytes laid out by `sled_store`; a backend only keeps them.

use crate::store::StoreError;

/// The tables, by their names (sled trees on disk, or rows of a server's table). Anything that
/// names one goes through this list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Tree {
    Users,
    Counters,
    Questions,
    Unanswered,
    Feedback,
    Inbox,
    /// The database's identity (`id`), and `incomplete` while a restore or repair is under way.
    Meta,
    /// What the learning loop was told (see `sled_store`).
    Signals,
    Evidence,
    Verdicts,
    /// Users waiting for an answer to a question that had none (see `watch`).
    Watches,
}

impl Tree {
    pub const ALL: [Tree; 11] = [
        Tree::Users,
        Tree::Counters,
        Tree::Questions,
        Tree::Unanswered,
        Tree::Feedback,
        Tree::Inbox,
        Tree::Meta,
        Tree::Signals,
        Tree::Evidence,
        Tree::Verdicts,
        Tree::Watches,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tree::Users => "users",
            Tree::Counters => "counters",
            Tree::Questions => "questions",
            Tree::Unanswered => "unanswered",
            Tree::Feedback => "feedback",
            Tree::Inbox => "inbox",
            Tree::Meta => "meta",
            Tree::Signals => "signals",
            Tree::Evidence => "evidence",
            Tree::Verdicts => "verdicts",
            Tree::Watches => "watches",
        }
    }

    pub fn named(name: &str) -> Option<Tree> {
        Tree::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// Entries as a scan gives them: (key, value), in key order.
pub type Entries<B> = Vec<(B, B)>;
/// What an export hands each entry to: table name, key, value.
pub type EachEntry<'a> = &'a mut dyn FnMut(&str, &[u8], &[u8]) -> std::io::Result<()>;

/// Where a [`KvStore`](crate::KvStore) keeps its tables. Each call is one atomic step; several
/// processes may share one backend that says so ([`KeyValue::shared`]), and then `update` must
/// be atomic across them too.
pub trait KeyValue: Send + Sync + 'static {
    /// A value as the backend hands it out.
    type Bytes: std::ops::Deref<Target = [u8]> + Clone + Send;
    fn get(&self, t: Tree, key: &[u8]) -> Result<Option<Self::Bytes>, StoreError>;
    fn insert(&self, t: Tree, key: &[u8], value: Vec<u8>) -> Result<(), StoreError>;
    /// Removes a key; the value it had.
    fn remove(&self, t: Tree, key: &[u8]) -> Result<Option<Self::Bytes>, StoreError>;
    /// The new value of `key` from its old one, read and written as one step (`f` may run more
    /// than once); `None` from `f` removes the key.
    fn update<F>(&self, t: Tree, key: &[u8], f: F) -> Result<Option<Self::Bytes>, StoreError>
    where
        F: FnMut(Option<&[u8]>) -> Option<Vec<u8>>;
    /// Every entry of `t` whose key starts with `prefix`, in key order (bytewise).
    fn scan(&self, t: Tree, prefix: &[u8]) -> Result<Entries<Self::Bytes>, StoreError>;
    /// Entries in `t`.
    fn len(&self, t: Tree) -> Result<usize, StoreError>;
    /// Makes everything written so far durable.
    fn flush(&self) -> Result<(), StoreError>;
    /// Bytes the tables take, when known.
    fn size_on_disk(&self) -> Option<u64>;
    /// Hands every entry of every table but [`Tree::Meta`] to `each`, table by table in key
    /// order, as one moment's state; the entries per table.
    fn export(&self, each: EachEntry<'_>) -> Result<Vec<(String, u64)>, StoreError>;
    /// Whether other processes may write the same tables at the same time (a server), so that
    /// counts this process keeps of its own writes are only estimates.
    fn shared(&self) -> bool {
        false
    }
}
