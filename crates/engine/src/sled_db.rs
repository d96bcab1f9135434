//! The database under [`crate::SledStore`]: sled opened with its damage looked for, and kept
//! usable when the disk fills up.
//!
//! **Opening.** sled opens a damaged database in several ways, none of them loud: a truncated
//! `db` file may open as an empty database, or fail, or panic; zeroed pages open fine and fail
//! only when read. So opening (`open_checked`) catches sled's panics, reads every entry of every
//! tree (stopping at the first error: a sled iterator repeats its error without moving on), and
//! compares the database's identity (`meta/id`) with a marker file next to sled's own files,
//! written once the database is made: a marker without its database means the files were lost
//! and sled made a new, empty one. A damaged database is refused with [`Damage`] saying what
//! was found, or, when the operator accepts the loss, set aside (moved into `damaged-<time>/`,
//! never deleted) and replaced by a new one holding whatever could still be read.
//!
//! **Writing.** After its first failed write (no space left), sled refuses every write until
//! it is opened again, even once the disk has room. So every write is also noted in a journal
//! until a flush makes it durable; on a failed write or flush the journal becomes the place
//! writes go (reads look there first), and a recovery thread probes the disk every second, and
//! once it can be written, opens sled again and writes the journal into it. Nothing written
//! while the disk was full is lost unless the process stops before it recovers (the final
//! flush then fails and says how many changes are lost), or more than `MAX_HELD_BYTES` wait.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, RwLock, RwLockReadGuard, Weak};
use std::time::{Duration, Instant};

use sled::IVec;

use crate::store::{Damage, StoreError};

/// sled's page cache (its default is 1 GiB): enough for the hot users, and it bounds the
/// process's memory however many users the database holds.
pub const CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// Background flush interval. Replies wait for an explicit flush of the user's state; this
/// one makes the bookkeeping after a reply ("replied", inbox removal) durable soon, so a crash
/// repeats at most the replies of the last few milliseconds.
const FLUSH_EVERY_MS: u64 = 20;
/// The journal of writes not yet known to be durable is flushed when it grows past this (in
/// normal operation explicit flushes keep it at a few entries; this bounds it when nobody
/// flushes, as in `articlebot chat` or a bench).
const JOURNAL_FLUSH_BYTES: usize = 2 * 1024 * 1024;
/// While the database cannot be written, at most this much waits in memory; beyond it new
/// writes are refused (and counted, and reported when the database recovers).
const MAX_HELD_BYTES: usize = 64 * 1024 * 1024;
/// How often a database that cannot be written is probed.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// Written (and removed) to see whether the disk has room before reopening.
const PROBE_BYTES: usize = 1024 * 1024;
/// The marker file, beside sled's own files (`conf`, `db`, `snap.*`, `blobs/`).
pub const MARKER: &str = "articlebot.marker";

pub use crate::kv::Tree as T;

/// What to do when the database turns out to be damaged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IfDamaged {
    /// Refuse to open it ([`StoreError::Damaged`]), changing nothing.
    #[default]
    Refuse,
    /// Move its files aside (into `damaged-<unix time>/` in the same dir), start a new
    /// database with what can still be read, and log what was done.
    KeepWhatCanBeRead,
}

/// Maps sled's errors to ours: a lock held by another process, the operating system's refusal,
/// damage.
pub fn db_err(e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(io) if lock_held(&io) => StoreError::Locked(io),
        sled::Error::Io(io) => StoreError::Io(io),
        e @ sled::Error::Corruption { .. } => StoreError::Corrupt(e),
        other => StoreError::Db(other),
    }
}

/// Whether sled could not take its file lock: another process (or, for a moment, a database
/// this process just closed) holds it.
fn lock_held(io: &std::io::Error) -> bool {
    // sled takes an exclusive file lock on open; someone else holding it is WouldBlock.
    io.kind() == std::io::ErrorKind::WouldBlock || io.to_string().contains("lock")
}

fn config(dir: &Path) -> sled::Config {
    sled::Config::new().path(dir).cache_capacity(CACHE_BYTES).flush_every_ms(Some(FLUSH_EVERY_MS))
}

/// An open sled database and its trees.
pub struct Open {
    pub db: sled::Db,
    trees: Vec<sled::Tree>,
}

impl Open {
    fn new(db: sled::Db) -> Result<Open, sled::Error> {
        let trees = T::ALL.iter().map(|t| db.open_tree(t.name())).collect::<Result<_, _>>()?;
        Ok(Open { db, trees })
    }

    pub fn tree(&self, t: T) -> &sled::Tree {
        &self.trees[t as usize]
    }

    /// Every tree holding entries that a backup keeps: ours but `meta` (a restored database
    /// gets its own identity), and any a newer version made.
    pub fn data_trees(&self) -> Vec<(String, sled::Tree)> {
        let mut out: Vec<(String, sled::Tree)> =
            T::ALL.iter().filter(|t| **t != T::Meta).map(|t| (t.name().to_string(), self.tree(*t).clone())).collect();
        for name in self.db.tree_names() {
            let name = String::from_utf8_lossy(&name).into_owned();
            if name != "__sled__default" && T::named(&name).is_none() {
                if let Ok(tree) = self.db.open_tree(&name) {
                    out.push((name, tree));
                }
            }
        }
        out
    }
}

thread_local! {
    /// Set while sled is called under `quietly`: its panics are caught and reported as damage,
    /// so the panic hook must not print them as a crash.
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, turning a panic into `Err(message)` without the panic hook printing it. sled
/// panics on some damaged files (an index out of bounds reading segments).
fn quietly<R>(f: impl FnOnce() -> R) -> Result<R, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                previous(info);
            }
        }));
    });
    QUIET.with(|q| q.set(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(false));
    result.map_err(|panic| {
        panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".into())
    })
}

/// sled opened at `dir`, its panics caught. An I/O error (a lock, permissions) is an error;
/// anything else sled reports is damage.
/// How long an open waits for sled's file lock. A database this process closed a moment ago
/// holds it until sled's background threads let go (a restore, a recovery, a test reopening);
/// another process holding it holds it for good, and is reported after this wait.
const LOCK_WAIT: Duration = Duration::from_secs(2);

fn open_sled(dir: &Path) -> Result<Open, Opened> {
    let started = Instant::now();
    let opened = loop {
        match quietly(|| config(dir).open().and_then(Open::new)) {
            Ok(Err(sled::Error::Io(io))) if lock_held(&io) && started.elapsed() < LOCK_WAIT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => break other,
        }
    };
    match opened {
        Ok(Ok(open)) => Ok(open),
        Ok(Err(e @ sled::Error::Io(_))) => Err(Opened::Failed(db_err(e))),
        Ok(Err(e)) => Err(Opened::Damaged(Damage::Unopenable(e), None)),
        Err(message) => Err(Opened::Damaged(Damage::Panicked { doing: "opening", message }, None)),
    }
}

/// Why a database was not opened for use.
enum Opened {
    Failed(StoreError),
    /// Damaged; the database if sled could open it (to read from when setting it aside).
    Damaged(Damage, Option<Box<Open>>),
}

/// Reads every entry of every tree; the number of entries in each of ours.
fn scan(open: &Open) -> Result<HashMap<T, u64>, Damage> {
    let mut counts = HashMap::new();
    let scan_tree = |name: &str, tree: &sled::Tree| -> Result<u64, Damage> {
        let mut n = 0;
        for item in tree.iter() {
            // The first error ends the scan: a sled iterator returns it again and again.
            if let Err(source) = item {
                return Err(Damage::Unreadable { tree: name.to_string(), after: n, source });
            }
            n += 1;
        }
        Ok(n)
    };
    for t in T::ALL {
        counts.insert(t, scan_tree(t.name(), open.tree(t))?);
    }
    scan_tree("__sled__default", &open.db)?;
    Ok(counts)
}

/// What a marker file says: the database's id, and its generation and users when last
/// recorded. The generation is written into the database and flushed before it is written
/// here, so a database whose generation is lower than its marker's went back in time: sled
/// recovered an earlier state from a damaged file, and what came after is lost.
struct Marker {
    id: String,
    users: Option<u64>,
    generation: Option<u64>,
}

/// The marker file, if there is one.
fn read_marker(dir: &Path) -> Result<Option<Marker>, StoreError> {
    match std::fs::read_to_string(dir.join(MARKER)) {
        Ok(text) => {
            let mut lines = text.lines();
            let id = lines.next().unwrap_or("").trim().to_string();
            let rest: Vec<&str> = lines.collect();
            let field = |name: &str| -> Option<u64> {
                rest.iter().find_map(|l| l.strip_prefix(name)).and_then(|n| n.trim().parse().ok())
            };
            Ok(Some(Marker { id, users: field("users "), generation: field("generation ") }))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StoreError::Io(e)),
    }
}

/// Writes the marker through a temporary file and a rename, so it is whole or absent.
fn write_marker(dir: &Path, id: &str, users: u64, generation: u64) -> Result<(), StoreError> {
    let tmp = dir.join(format!(".{MARKER}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    writeln!(f, "{id}")?;
    writeln!(f, "users {users}")?;
    writeln!(f, "generation {generation}")?;
    writeln!(f, "# articlebot's mark on its database {id} (meta/id inside it): its users and generation")?;
    writeln!(f, "# when last written. If this file is here and the database is not, is empty, holds far fewer")?;
    writeln!(f, "# users or an older generation, the database was damaged: articlebot refuses to start on it.")?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(MARKER))?;
    Ok(())
}

/// A new identity: the time and the process, enough to tell databases apart.
fn new_id() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{nanos:x}-{:x}", std::process::id())
}

/// Gives `open` (at `dir`) an identity: in `meta`, flushed, then in the marker file.
fn mark(open: &Open, dir: &Path) -> Result<(), StoreError> {
    let id = new_id();
    open.tree(T::Meta).insert("id", id.as_bytes()).map_err(db_err)?;
    open.db.flush().map_err(db_err)?;
    write_marker(dir, &id, open.tree(T::Users).len() as u64, generation_of(open))
}

/// The generation recorded in the database (see [`Marker`]).
fn generation_of(open: &Open) -> u64 {
    open.tree(T::Meta)
        .get("generation")
        .ok()
        .flatten()
        .and_then(|v| v.as_ref().try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

fn id_of(open: &Open) -> Option<String> {
    open.tree(T::Meta).get("id").ok().flatten().map(|v| String::from_utf8_lossy(&v).into_owned())
}

/// Opens the database in `dir` (creating it), checked for damage (see the module doc).
pub fn open_checked(dir: &Path, if_damaged: IfDamaged) -> Result<Open, StoreError> {
    std::fs::create_dir_all(dir)?;
    let marker = read_marker(dir)?;
    match check(dir, marker.as_ref()) {
        Ok(open) => Ok(open),
        Err(Opened::Failed(e)) => Err(e),
        Err(Opened::Damaged(damage, open)) => match if_damaged {
            IfDamaged::Refuse => Err(StoreError::Damaged { dir: dir.to_path_buf(), damage }),
            IfDamaged::KeepWhatCanBeRead => {
                drop(open);
                set_aside(dir, damage)
            }
        },
    }
}

fn check(dir: &Path, marker: Option<&Marker>) -> Result<Open, Opened> {
    // sled would make a new, empty `db`: refuse before it changes anything.
    if marker.is_some() && !dir.join("db").exists() {
        return Err(Opened::Damaged(Damage::Emptied, None));
    }
    let open = open_sled(dir)?;
    let counts = match quietly(|| scan(&open)) {
        Ok(Ok(counts)) => counts,
        Ok(Err(damage)) => return Err(Opened::Damaged(damage, Some(Box::new(open)))),
        Err(message) => {
            return Err(Opened::Damaged(Damage::Panicked { doing: "reading", message }, Some(Box::new(open))))
        }
    };
    let meta = open.tree(T::Meta);
    let (incomplete, id) = match (meta.get("incomplete"), meta.get("id")) {
        (Ok(incomplete), Ok(id)) => (incomplete.is_some(), id.map(|v| String::from_utf8_lossy(&v).into_owned())),
        (Err(e), _) | (_, Err(e)) => return Err(Opened::Failed(db_err(e))),
    };
    if incomplete {
        return Err(Opened::Damaged(Damage::Incomplete, Some(Box::new(open))));
    }
    let entries: u64 = counts.values().sum();
    let users = counts[&T::Users];
    let marker_users = marker.and_then(|m| m.users);
    let marker_generation = marker.and_then(|m| m.generation);
    let marker = marker.map(|m| m.id.as_str());
    match (marker, id) {
        (Some(m), Some(id)) if m == id => {}
        (Some(_), Some(_)) => return Err(Opened::Damaged(Damage::Replaced, Some(Box::new(open)))),
        (Some(_), None) if entries == 0 => return Err(Opened::Damaged(Damage::Emptied, Some(Box::new(open)))),
        (Some(_), None) => return Err(Opened::Damaged(Damage::Replaced, Some(Box::new(open)))),
        (None, Some(id)) => {
            tracing::warn!(dir = %dir.display(), "the database's marker file was missing; writing it again");
            write_marker(dir, &id, users, generation_of(&open)).map_err(Opened::Failed)?;
        }
        (None, None) => {
            if entries > 0 {
                tracing::info!(dir = %dir.display(), entries, "marking a database made before marker files");
            }
            mark(&open, dir).map_err(Opened::Failed)?;
        }
    }
    // sled recovers a damaged file to an earlier consistent state without a word: only a count
    // kept outside it, or one of its own counters, can tell that users are gone.
    let generation = generation_of(&open);
    if let Some(expected) = marker_generation.filter(|g| *g > generation) {
        return Err(Opened::Damaged(Damage::Older { found: generation, expected }, Some(Box::new(open))));
    }
    let expected = stored_users(&open).max(marker_users.unwrap_or(0));
    if expected > users + USERS_ADRIFT {
        return Err(Opened::Damaged(Damage::Missing { counted: users, expected }, Some(Box::new(open))));
    }
    repair_user_count(&open, users);
    Ok(open)
}

/// How far the users recorded (the `users` counter, the marker) may run ahead of the users
/// stored without that being damage: a crash between writing a new user's state and counting
/// them leaves the counter one ahead per user being answered at that moment, and the marker is
/// brought down only after a flush.
const USERS_ADRIFT: u64 = 64;
/// The marker is brought up to date at most this often while the database is written to (and
/// at once when users were forgotten, and on close).
const MARKER_EVERY: Duration = Duration::from_secs(1);

fn stored_users(open: &Open) -> u64 {
    let counters = open.tree(T::Counters);
    counters.get("users").ok().flatten().and_then(|v| v.as_ref().try_into().ok()).map_or(0, u64::from_be_bytes)
}

/// The `users` counter is written apart from the user's state; a crash between the two leaves
/// it off by one. The scan has just counted them: set it right.
fn repair_user_count(open: &Open, users: u64) {
    let stored = stored_users(open);
    if stored != users {
        tracing::info!(counted = users, stored, "setting the users counter to the users stored");
        let _ = open.tree(T::Counters).insert("users", users.to_be_bytes().to_vec());
    }
}

/// sled's files (and our marker) in `dir`.
fn sled_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if ["conf", "db", "blobs", MARKER].contains(&name.as_str()) || name.starts_with("snap.") {
            out.push(entry.path());
        }
    }
    Ok(out)
}

/// Fails with [`StoreError::Locked`] when another process has the database in `dir` open
/// (sled's file lock); a damaged or missing database is not in use.
pub fn not_in_use(dir: &Path) -> Result<(), StoreError> {
    if !dir.join("db").exists() && !dir.join("conf").exists() {
        return Ok(());
    }
    match quietly(|| config(dir).open()) {
        Ok(Err(e @ sled::Error::Io(_))) => Err(db_err(e)),
        _ => Ok(()),
    }
}

/// Moves sled's files and the marker from `dir` into a new dir `<dir>/<prefix>-<unix time>`;
/// `None` when there were none.
pub fn move_aside(dir: &Path, prefix: &str) -> Result<Option<PathBuf>, StoreError> {
    let files = sled_files(dir)?;
    if files.is_empty() {
        return Ok(None);
    }
    let now = crate::store::now_unix();
    let mut aside = dir.join(format!("{prefix}-{now}"));
    let mut n = 1;
    while aside.exists() {
        aside = dir.join(format!("{prefix}-{now}-{n}"));
        n += 1;
    }
    std::fs::create_dir(&aside)?;
    for f in files {
        if let Some(name) = f.file_name() {
            std::fs::rename(&f, aside.join(name))?;
        }
    }
    Ok(Some(aside))
}

/// A new database in `dir`, marked incomplete until `finish` (so that a crash while it is being
/// filled is not taken for a good database).
pub fn start_new(dir: &Path) -> Result<Open, StoreError> {
    let open = match open_sled(dir) {
        Ok(open) => open,
        Err(Opened::Failed(e)) => return Err(e),
        Err(Opened::Damaged(damage, _)) => return Err(StoreError::Damaged { dir: dir.to_path_buf(), damage }),
    };
    open.tree(T::Meta).insert("incomplete", &b"1"[..]).map_err(db_err)?;
    open.db.flush().map_err(db_err)?;
    Ok(open)
}

/// Ends `start_new`: the data is flushed, then the database gets its identity.
pub fn finish(open: &Open, dir: &Path) -> Result<(), StoreError> {
    open.db.flush().map_err(db_err)?;
    open.tree(T::Meta).remove("incomplete").map_err(db_err)?;
    mark(open, dir)
}

/// Copies every entry that can be read from the database at `from` into `to` (all trees but
/// `meta`), each tree up to its first error; the number copied.
pub fn copy_readable(from: &Path, to: &Open) -> u64 {
    let Ok(source) = open_sled(from) else { return 0 };
    let copied = quietly(|| {
        let mut copied = 0;
        for (name, tree) in source.data_trees() {
            let Ok(target) = to.db.open_tree(&name) else { continue };
            for item in tree.iter() {
                let Ok((k, v)) = item else { break };
                if target.insert(k, v).is_err() {
                    return copied;
                }
                copied += 1;
            }
        }
        copied
    });
    copied.unwrap_or(0)
}

/// The operator accepted the loss: the damaged files go aside, a new database takes what can
/// still be read from them.
fn set_aside(dir: &Path, damage: Damage) -> Result<Open, StoreError> {
    let aside = move_aside(dir, "damaged")?;
    let open = start_new(dir)?;
    let copied = aside.as_deref().map_or(0, |a| copy_readable(a, &open));
    // The counters came along; the users did only in part.
    repair_user_count(&open, open.tree(T::Users).len() as u64);
    finish(&open, dir)?;
    tracing::warn!(
        dir = %dir.display(),
        damage = %crate::ErrorChain(&damage),
        kept_in = %aside.as_deref().map_or_else(|| "-".to_string(), |a| a.display().to_string()),
        entries_kept = copied,
        "the database was damaged; starting with what could be read (--accept-data-loss). The damaged files are kept aside; delete them when no longer needed"
    );
    Ok(open)
}

/// A write that sled could not make durable, or that went only to the journal.
struct Failure {
    kind: std::io::ErrorKind,
    message: String,
    since: Instant,
}

impl Failure {
    fn error(&self) -> std::io::Error {
        std::io::Error::new(self.kind, self.message.clone())
    }
}

/// Writes not yet known to be durable (see the module doc): the latest value of each key
/// written since the last successful flush began, or `None` for a removal.
#[derive(Default)]
struct Journal {
    entries: HashMap<(T, IVec), (u64, Option<IVec>)>,
    bytes: usize,
    /// Numbers the writes, so that a flush forgets only what was written before it began.
    seq: u64,
    /// Set from the first failed write or flush until sled is writable again.
    failure: Option<Failure>,
    /// Writes refused because `MAX_HELD_BYTES` were waiting.
    lost: u64,
}

/// What an entry of the journal takes in memory: its key and value, and the map's own share
/// (the bucket, the sequence number, two `IVec` headers), so that the limits bound memory.
fn entry_bytes(key: &[u8], value: Option<&IVec>) -> usize {
    const OVERHEAD: usize = 96;
    OVERHEAD + key.len() + value.map_or(0, |v| v.len())
}

impl Journal {
    fn note(&mut self, t: T, key: &[u8], value: Option<IVec>) {
        self.seq += 1;
        let size = entry_bytes(key, value.as_ref());
        if let Some((_, old)) = self.entries.insert((t, IVec::from(key)), (self.seq, value)) {
            self.bytes -= entry_bytes(key, old.as_ref());
        }
        self.bytes += size;
    }

    /// Forgets what was written before the flush numbered `seq` began.
    fn trim(&mut self, seq: u64) {
        let mut bytes = self.bytes;
        self.entries.retain(|(_, k), (s, v)| {
            let keep = *s > seq;
            if !keep {
                bytes -= entry_bytes(k, v.as_ref());
            }
            keep
        });
        self.bytes = bytes;
    }

    fn get(&self, t: T, key: &[u8]) -> Option<&Option<IVec>> {
        self.entries.get(&(t, IVec::from(key))).map(|(_, v)| v)
    }
}

/// What the marker file says, and the journal's `seq` when it was written.
struct Recorded {
    users: u64,
    generation: u64,
    seq: u64,
    at: Instant,
}

/// The database in use: sled, the journal, and what it takes to recover from a full disk.
pub struct Db {
    /// `None` for a temporary database, which cannot be opened again.
    dir: Option<PathBuf>,
    /// Operations hold it shared; reopening and a backup hold it alone. `None` only while a
    /// reopen has failed.
    open: RwLock<Option<Open>>,
    journal: Mutex<Journal>,
    /// Writes go to the journal only (sled refuses them since its first failure).
    degraded: AtomicBool,
    /// When a reopen was last tried; held while one is tried.
    last_attempt: Mutex<Option<Instant>>,
    recovering: AtomicBool,
    me: Weak<Db>,
    /// What the marker file says now.
    recorded: Mutex<Recorded>,
    /// Tests: the disk has no room, whatever the probe finds.
    #[cfg(test)]
    pub still_full: AtomicBool,
}

type Guard<'a> = RwLockReadGuard<'a, Option<Open>>;

impl Db {
    pub fn new(open: Open, dir: Option<PathBuf>) -> std::sync::Arc<Db> {
        let marker = dir.as_deref().and_then(|d| read_marker(d).ok().flatten());
        let recorded = Recorded {
            users: marker.as_ref().and_then(|m| m.users).unwrap_or_else(|| stored_users(&open)),
            generation: marker.as_ref().and_then(|m| m.generation).unwrap_or(0).max(generation_of(&open)),
            seq: 0,
            at: Instant::now(),
        };
        std::sync::Arc::new_cyclic(|me| Db {
            recorded: Mutex::new(recorded),
            dir,
            open: RwLock::new(Some(open)),
            journal: Mutex::new(Journal::default()),
            degraded: AtomicBool::new(false),
            last_attempt: Mutex::new(None),
            recovering: AtomicBool::new(false),
            me: me.clone(),
            #[cfg(test)]
            still_full: AtomicBool::new(false),
        })
    }

    fn read(&self) -> Guard<'_> {
        self.open.read().unwrap_or_else(|p| p.into_inner())
    }

    fn journal(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A key's value as a reader sees it: the journal's when it holds a change not yet on disk.
    fn held_or_stored(journal: &Journal, guard: &Guard<'_>, t: T, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        match journal.get(t, key) {
            Some(v) => Ok(v.clone()),
            None => guard.as_ref().ok_or(StoreError::Reopening)?.tree(t).get(key).map_err(db_err),
        }
    }

    fn degraded(&self) -> bool {
        self.degraded.load(Ordering::Acquire)
    }

    /// Whether writes can reach sled now.
    pub fn writable(&self) -> bool {
        !self.degraded()
    }

    pub fn get(&self, t: T, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        let guard = self.read();
        if self.degraded() {
            if let Some(v) = self.journal().get(t, key) {
                return Ok(v.clone());
            }
        }
        let open = guard.as_ref().ok_or(StoreError::Reopening)?;
        open.tree(t).get(key).map_err(db_err)
    }

    pub fn insert(&self, t: T, key: &[u8], value: impl Into<IVec>) -> Result<(), StoreError> {
        let value = value.into();
        let guard = self.read();
        if let (false, Some(open)) = (self.degraded(), guard.as_ref()) {
            match open.tree(t).insert(key, value.clone()) {
                Ok(_) => return self.noted(open, t, key, Some(value)),
                Err(sled::Error::Io(e)) => self.fail(e),
                Err(e) => return Err(db_err(e)),
            }
        }
        self.hold(&mut self.journal(), t, key, Some(value))
    }

    /// Removes a key; the value it had.
    pub fn remove(&self, t: T, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        let guard = self.read();
        if let (false, Some(open)) = (self.degraded(), guard.as_ref()) {
            match open.tree(t).remove(key) {
                Ok(old) => return self.noted(open, t, key, None).map(|()| old),
                Err(sled::Error::Io(e)) => self.fail(e),
                Err(e) => return Err(db_err(e)),
            }
        }
        let mut journal = self.journal();
        let old = Self::held_or_stored(&journal, &guard, t, key)?;
        self.hold(&mut journal, t, key, None)?;
        Ok(old)
    }

    /// sled's `update_and_fetch`: the new value of `key` from its old one (`f` may run more
    /// than once).
    pub fn update(
        &self,
        t: T,
        key: &[u8],
        mut f: impl FnMut(Option<&[u8]>) -> Option<Vec<u8>>,
    ) -> Result<Option<IVec>, StoreError> {
        let guard = self.read();
        if let (false, Some(open)) = (self.degraded(), guard.as_ref()) {
            match open.tree(t).update_and_fetch(key, &mut f) {
                Ok(new) => return self.noted(open, t, key, new.clone()).map(|()| new),
                Err(sled::Error::Io(e)) => self.fail(e),
                Err(e) => return Err(db_err(e)),
            }
        }
        // The journal's lock makes the read and the write one step, as sled's update is.
        let mut journal = self.journal();
        let old = Self::held_or_stored(&journal, &guard, t, key)?;
        let new = f(old.as_deref()).map(IVec::from);
        self.hold(&mut journal, t, key, new.clone())?;
        Ok(new)
    }

    /// Every entry of `t` whose key starts with `prefix`, in key order.
    pub fn scan(&self, t: T, prefix: &[u8]) -> Result<Vec<(IVec, IVec)>, StoreError> {
        let guard = self.read();
        let degraded = self.degraded();
        let from_sled = match guard.as_ref() {
            Some(open) => open.tree(t).scan_prefix(prefix).collect::<Result<Vec<_>, _>>().map_err(db_err)?,
            None if degraded => Vec::new(),
            None => return Err(StoreError::Reopening),
        };
        if !degraded {
            return Ok(from_sled);
        }
        let mut merged: BTreeMap<IVec, IVec> = from_sled.into_iter().collect();
        for ((tree, k), (_, v)) in &self.journal().entries {
            if *tree == t && k.starts_with(prefix) {
                match v {
                    Some(v) => merged.insert(k.clone(), v.clone()),
                    None => merged.remove(k),
                };
            }
        }
        Ok(merged.into_iter().collect())
    }

    /// Writes noted and not yet known to be durable (tests).
    #[cfg(test)]
    pub fn journal_len(&self) -> usize {
        self.journal().entries.len()
    }

    /// Entries in `t` (a full scan in sled).
    pub fn len(&self, t: T) -> usize {
        self.read().as_ref().map_or(0, |o| o.tree(t).len())
    }

    /// Makes everything written so far durable. While the database cannot be written this
    /// tries to reopen it first (at most once a second) and otherwise says how much is held.
    pub fn flush(&self) -> Result<(), StoreError> {
        if self.degraded() && !self.try_recover() {
            return Err(self.flush_error());
        }
        let guard = self.read();
        let open = guard.as_ref().ok_or(StoreError::Reopening)?;
        self.flush_open(open)
    }

    fn flush_open(&self, open: &Open) -> Result<(), StoreError> {
        let seq = self.journal().seq;
        self.flushed(open.db.flush(), seq, Some(open))
    }

    /// What a flush that covered the journal up to `seq` leaves: written entries leave the
    /// journal, an I/O error degrades the store.
    fn flushed(&self, result: sled::Result<usize>, seq: u64, open: Option<&Open>) -> Result<(), StoreError> {
        match result {
            Ok(_) => {
                self.journal().trim(seq);
                if let Some(open) = open {
                    self.record(open, false);
                }
                Ok(())
            }
            Err(sled::Error::Io(e)) => {
                self.fail(e);
                Err(self.flush_error())
            }
            Err(e) => Err(db_err(e)),
        }
    }

    /// `flush` without blocking the async runtime. It does not reopen (that blocks): the
    /// recovery thread and `flush` do.
    pub async fn flush_async(&self) -> Result<(), StoreError> {
        if self.degraded() {
            return Err(self.flush_error());
        }
        let (db, seq) = {
            let guard = self.read();
            let open = guard.as_ref().ok_or(StoreError::Reopening)?;
            (open.db.clone(), self.journal().seq)
        };
        let result = db.flush_async().await;
        self.flushed(result, seq, self.read().as_ref())
    }

    /// Brings the marker up to date after a flush: a new generation into the database, flushed,
    /// then into the marker. At most once every `MARKER_EVERY` while writes go on; at once when
    /// users were forgotten (a marker counting more users than there are looks like damage),
    /// and when `now` (on close).
    fn record(&self, open: &Open, now: bool) {
        let (Some(dir), Some(id)) = (&self.dir, id_of(open)) else { return };
        let users = stored_users(open);
        let seq = self.journal().seq;
        let mut recorded = self.recorded.lock().unwrap_or_else(|p| p.into_inner());
        let due = seq != recorded.seq && (now || users < recorded.users || recorded.at.elapsed() >= MARKER_EVERY);
        if !due {
            return;
        }
        let generation = recorded.generation + 1;
        // Written to sled directly, not noted: it is not state, and a failed flush here is
        // found by the next flush of state.
        let flushed =
            open.tree(T::Meta).insert("generation", generation.to_be_bytes().to_vec()).and_then(|_| open.db.flush());
        if flushed.is_err() {
            return;
        }
        match write_marker(dir, &id, users, generation) {
            Ok(()) => *recorded = Recorded { users, generation, seq, at: Instant::now() },
            Err(e) => tracing::debug!(error = %crate::ErrorChain(&e), "cannot update the marker file yet"),
        }
    }

    pub fn size_on_disk(&self) -> Option<u64> {
        self.read().as_ref().and_then(|o| o.db.size_on_disk().ok())
    }

    /// A write sled accepted: noted until a flush makes it durable (and flushed now if the
    /// notes grow large, which happens only when nobody flushes).
    fn noted(&self, open: &Open, t: T, key: &[u8], value: Option<IVec>) -> Result<(), StoreError> {
        let mut journal = self.journal();
        journal.note(t, key, value);
        let large = journal.bytes > JOURNAL_FLUSH_BYTES;
        drop(journal);
        if large {
            // The write itself is done; a failed flush is the flush's news, handled there.
            let _ = self.flush_open(open);
        }
        Ok(())
    }

    /// A write while sled cannot be written: into the journal, unless too much waits there.
    fn hold(&self, journal: &mut Journal, t: T, key: &[u8], value: Option<IVec>) -> Result<(), StoreError> {
        if journal.bytes > MAX_HELD_BYTES && journal.get(t, key).is_none() {
            journal.lost += 1;
            let failure = journal.failure.as_ref();
            return Err(StoreError::Unwritable {
                seconds: failure.map_or(0, |f| f.since.elapsed().as_secs()),
                held: journal.entries.len(),
                source: failure.map_or_else(|| std::io::Error::other("unknown"), Failure::error),
            });
        }
        journal.note(t, key, value);
        Ok(())
    }

    /// sled failed to write: from now on writes go to the journal until it is opened again.
    pub(crate) fn fail(&self, e: std::io::Error) {
        let mut journal = self.journal();
        if journal.failure.is_none() {
            tracing::error!(
                error = %e,
                pending = journal.entries.len(),
                "the database cannot be written; changes are kept in memory and written once it can be again"
            );
            journal.failure = Some(Failure { kind: e.kind(), message: e.to_string(), since: Instant::now() });
        }
        self.degraded.store(true, Ordering::Release);
        drop(journal);
        self.spawn_recovery();
    }

    fn flush_error(&self) -> StoreError {
        let journal = self.journal();
        StoreError::Flush {
            held: journal.entries.len(),
            source: journal
                .failure
                .as_ref()
                .map_or_else(|| std::io::Error::other("the database cannot be written"), Failure::error),
        }
    }

    /// One thread per outage: probes every `RETRY_EVERY` until the database is writable again
    /// (or the store is gone).
    fn spawn_recovery(&self) {
        if self.dir.is_none() || self.recovering.swap(true, Ordering::AcqRel) {
            return;
        }
        let me = self.me.clone();
        let spawned = std::thread::Builder::new().name("articlebot-db-recovery".into()).spawn(move || loop {
            std::thread::sleep(RETRY_EVERY);
            let Some(db) = me.upgrade() else { return };
            if db.try_recover() {
                db.recovering.store(false, Ordering::Release);
                // A failure in between (after the recovery, before the flag) would have found
                // the flag set and not started a thread: look once more.
                if db.degraded() {
                    db.spawn_recovery();
                }
                return;
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the database recovery thread; flushes will retry");
            self.recovering.store(false, Ordering::Release);
        }
    }

    /// Opens sled again if the disk has room, and writes the journal into it. Whether the
    /// database is writable now.
    pub fn try_recover(&self) -> bool {
        if !self.degraded() {
            return true;
        }
        let Some(dir) = &self.dir else { return false };
        let Ok(mut last) = self.last_attempt.try_lock() else { return false };
        if last.is_some_and(|t| t.elapsed() < RETRY_EVERY) {
            return false;
        }
        *last = Some(Instant::now());
        #[cfg(test)]
        if self.still_full.load(Ordering::Acquire) {
            return false;
        }
        if let Err(e) = probe(dir) {
            tracing::debug!(error = %e, "the database's disk still has no room");
            return false;
        }
        let mut open = self.open.write().unwrap_or_else(|p| p.into_inner());
        // The old instance must be gone before sled opens the dir again (it holds a file lock);
        // after its failure it skips the final flush.
        drop(open.take());
        let fresh = match open_sled(dir) {
            Ok(fresh) => fresh,
            Err(Opened::Failed(e)) => {
                tracing::warn!(error = %crate::ErrorChain(&e), "cannot open the database again yet");
                return false;
            }
            Err(Opened::Damaged(damage, _)) => {
                tracing::error!(damage = %crate::ErrorChain(&damage), "the database cannot be opened again");
                return false;
            }
        };
        let mut journal = self.journal();
        let replayed = journal.entries.iter().try_for_each(|((t, k), (_, v))| match v {
            Some(v) => fresh.tree(*t).insert(k, v.clone()).map(|_| ()),
            None => fresh.tree(*t).remove(k).map(|_| ()),
        });
        if let Err(e) = replayed.and_then(|()| fresh.db.flush().map(|_| ())) {
            tracing::warn!(error = %e, "the database still cannot be written");
            *open = Some(fresh);
            return false;
        }
        let written = journal.entries.len();
        let lost = std::mem::take(&mut journal.lost);
        let down = journal.failure.take().map_or(0, |f| f.since.elapsed().as_secs());
        // A new map: the old one keeps the room the outage needed (up to `MAX_HELD_BYTES`).
        journal.entries = HashMap::new();
        journal.bytes = 0;
        self.degraded.store(false, Ordering::Release);
        *open = Some(fresh);
        tracing::info!(
            written,
            seconds = down,
            "the database can be written again; the changes kept in memory are on disk"
        );
        if lost > 0 {
            tracing::error!(lost, "changes refused while the database could not be written are lost");
        }
        true
    }

    /// Hands every entry of every data tree (see [`Open::data_trees`]) to `each`, tree by tree
    /// in key order, while holding the database alone: no write happens meanwhile, so what
    /// `each` sees is one moment's state. The number of entries per tree.
    pub fn export(
        &self,
        mut each: impl FnMut(&str, &[u8], &[u8]) -> std::io::Result<()>,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let open = self.open.write().unwrap_or_else(|p| p.into_inner());
        let open = open.as_ref().ok_or(StoreError::Reopening)?;
        let journal = self.journal();
        let degraded = self.degraded();
        let mut counts = Vec::new();
        for (name, tree) in open.data_trees() {
            let mut n = 0;
            if degraded {
                // What is waiting in memory is part of the state too.
                let mut merged: BTreeMap<IVec, IVec> = tree.iter().collect::<Result<_, _>>().map_err(db_err)?;
                for ((t, k), (_, v)) in &journal.entries {
                    if t.name() == name {
                        match v {
                            Some(v) => merged.insert(k.clone(), v.clone()),
                            None => merged.remove(k),
                        };
                    }
                }
                for (k, v) in &merged {
                    each(&name, k, v)?;
                    n += 1;
                }
            } else {
                for item in tree.iter() {
                    let (k, v) = item.map_err(db_err)?;
                    each(&name, &k, &v)?;
                    n += 1;
                }
            }
            counts.push((name, n));
        }
        Ok(counts)
    }
}

/// sled as a [`crate::kv::KeyValue`] backend: the inherent methods above, which also keep writes
/// in memory while the disk is full.
impl crate::kv::KeyValue for Db {
    type Bytes = IVec;

    fn get(&self, t: T, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        Db::get(self, t, key)
    }

    fn insert(&self, t: T, key: &[u8], value: Vec<u8>) -> Result<(), StoreError> {
        Db::insert(self, t, key, value)
    }

    fn remove(&self, t: T, key: &[u8]) -> Result<Option<IVec>, StoreError> {
        Db::remove(self, t, key)
    }

    fn update<F>(&self, t: T, key: &[u8], f: F) -> Result<Option<IVec>, StoreError>
    where
        F: FnMut(Option<&[u8]>) -> Option<Vec<u8>>,
    {
        Db::update(self, t, key, f)
    }

    fn scan(&self, t: T, prefix: &[u8]) -> Result<Vec<(IVec, IVec)>, StoreError> {
        Db::scan(self, t, prefix)
    }

    fn len(&self, t: T) -> Result<usize, StoreError> {
        Ok(Db::len(self, t))
    }

    fn flush(&self) -> Result<(), StoreError> {
        Db::flush(self)
    }

    fn size_on_disk(&self) -> Option<u64> {
        Db::size_on_disk(self)
    }

    fn export(&self, each: crate::kv::EachEntry<'_>) -> Result<Vec<(String, u64)>, StoreError> {
        Db::export(self, each)
    }
}

/// Whether `dir`'s disk takes a write of `PROBE_BYTES` (written, synced, removed).
fn probe(dir: &Path) -> std::io::Result<()> {
    let path = dir.join(".articlebot-probe");
    let result = (|| {
        let mut f = std::fs::File::create(&path)?;
        f.write_all(&vec![0u8; PROBE_BYTES])?;
        f.sync_all()
    })();
    let _ = std::fs::remove_file(&path);
    result
}

impl Drop for Db {
    /// A clean close records the final count of users in the marker.
    fn drop(&mut self) {
        if self.degraded() {
            return;
        }
        let guard = self.read();
        if let Some(open) = guard.as_ref() {
            if open.db.flush().is_ok() {
                self.record(open, true);
            }
        }
    }
}

/// A temporary database (removed when dropped).
pub fn temporary() -> Result<Open, StoreError> {
    sled::Config::new().temporary(true).open().and_then(Open::new).map_err(db_err)
}
