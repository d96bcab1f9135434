//! [`PgTables`]: the engine's tables in PostgreSQL's `kv` table.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use articlebot_engine::{EachEntry, KeyValue, StoreError, Tree};
use postgres::{Client, NoTls, Statement};

use crate::backoff::Backoff;
use crate::schema;

/// The most connections a process opens for writes that wait for the disk, and for statistics:
/// 24 in all, so that three replicas stay within PostgreSQL's default 100. More threads than
/// that wait for one (opening a connection per call instead cost 6 ms an update).
const DURABLE_CONNECTIONS: usize = 16;
const STATISTICS_CONNECTIONS: usize = 8;
/// Both, for tests.
#[cfg(test)]
pub(crate) const MAX_CONNECTIONS: usize = DURABLE_CONNECTIONS + STATISTICS_CONNECTIONS;
/// How long a call waits for a connection of a full pool.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How many times an `update` that lost a race to insert the same new key is tried again.
const UPDATE_TRIES: usize = 8;

/// Tables whose writes are statistics: committed without waiting for the server's disk.
fn is_statistics(t: Tree) -> bool {
    matches!(t, Tree::Counters | Tree::Questions | Tree::Unanswered | Tree::Feedback)
}

/// A server's error as the store's: a connection that broke or could not be made is
/// [`StoreError::Unreachable`], anything else [`StoreError::Server`].
pub(crate) fn server_error(e: postgres::Error) -> StoreError {
    let code = e.code().map(|c| c.code().to_string()).unwrap_or_default();
    // Class 08: connection exceptions; 57P01..57P03: the server is shutting down, crashed or
    // starting.
    let going_away = code.starts_with("08") || code.starts_with("57P");
    // Read-only (a standby after a failover), a serialization failure or deadlock, a statement
    // timeout, lock not available, out of disk, memory or connections.
    let busy = matches!(code.as_str(), "25006" | "40001" | "40P01" | "57014" | "55P03" | "53100" | "53200" | "53300");
    if e.is_closed() || going_away || (e.as_db_error().is_none() && e.code().is_none()) {
        StoreError::Unreachable(Box::new(e))
    } else if busy {
        StoreError::Busy(Box::new(e))
    } else {
        StoreError::Server(Box::new(e))
    }
}

/// `url` with its password replaced, for logs and messages: a URL's password (everything
/// between the user's `:` and the last `@`, whatever characters it holds) and any
/// `password=` parameter, of a URL or of a `key=value` connection string.
pub fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (main, query) = rest.split_once('?').map_or((rest, None), |(m, q)| (m, Some(q)));
            let main = match main.rfind('@') {
                Some(at) => match main[..at].split_once(':') {
                    Some((user, _)) => format!("{user}:***{}", &main[at..]),
                    None => main.to_string(),
                },
                None => main.to_string(),
            };
            match query {
                Some(q) => format!("{scheme}://{main}?{}", mask_password_params(q, '&')),
                None => format!("{scheme}://{main}"),
            }
        }
        None => mask_password_params(url, ' '),
    }
}

/// `password=...` parameters (separated by `sep`) with their values replaced.
fn mask_password_params(params: &str, sep: char) -> String {
    params
        .split(sep)
        .map(|p| match p.split_once('=') {
            Some((k, _)) if k.trim().eq_ignore_ascii_case("password") => format!("{k}=***"),
            _ => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join(&sep.to_string())
}

/// The statements every connection prepares once.
struct Statements {
    get: Statement,
    get_for_update: Statement,
    upsert: Statement,
    insert_new: Statement,
    set: Statement,
    delete: Statement,
    scan_from: Statement,
    scan_range: Statement,
    count: Statement,
}

/// A connection and its statements.
struct Conn {
    client: Client,
    st: Statements,
}

impl Conn {
    fn new(mut client: Client) -> Result<Conn, postgres::Error> {
        let mut prepare = |sql: &str| client.prepare(sql);
        let st = Statements {
            get: prepare("SELECT value FROM kv WHERE tree = $1 AND key = $2")?,
            get_for_update: prepare("SELECT value FROM kv WHERE tree = $1 AND key = $2 FOR UPDATE")?,
            upsert: prepare(
                "INSERT INTO kv (tree, key, value) VALUES ($1, $2, $3)
                 ON CONFLICT (tree, key) DO UPDATE SET value = EXCLUDED.value",
            )?,
            insert_new: prepare("INSERT INTO kv (tree, key, value) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")?,
            set: prepare("UPDATE kv SET value = $3 WHERE tree = $1 AND key = $2")?,
            delete: prepare("DELETE FROM kv WHERE tree = $1 AND key = $2 RETURNING value")?,
            scan_from: prepare("SELECT key, value FROM kv WHERE tree = $1 AND key >= $2 ORDER BY key")?,
            scan_range: prepare("SELECT key, value FROM kv WHERE tree = $1 AND key >= $2 AND key < $3 ORDER BY key")?,
            count: prepare("SELECT count(*) FROM kv WHERE tree = $1")?,
        };
        Ok(Conn { client, st })
    }
}

/// Connections to one server with one setting of `synchronous_commit`, at most `max` open.
struct Pool {
    config: postgres::Config,
    max: usize,
    state: Mutex<PoolState>,
    freed: std::sync::Condvar,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Conn>,
    /// Connections open or being opened, idle ones included.
    open: usize,
}

/// What a caller gets from the pool: a connection, or the right to open one.
enum Checkout {
    Idle(Box<Conn>),
    Open,
}

/// A connection says goodbye to its server on its own small runtime, which cannot start on a
/// thread that drives an async runtime (the store may be dropped on one as a bot stops): the
/// last connections go on a thread of their own.
impl Drop for Pool {
    fn drop(&mut self) {
        let idle = std::mem::take(&mut self.lock().idle);
        if !idle.is_empty() {
            let _ = std::thread::spawn(move || drop(idle)).join();
        }
    }
}

impl Pool {
    fn new(config: postgres::Config, max: usize) -> Pool {
        Pool { config, max, state: Mutex::default(), freed: std::sync::Condvar::new() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// An idle connection, else the right to open one while fewer than `max` are open, else
    /// waits (up to [`POOL_WAIT`]) for one to come back.
    fn checkout(&self) -> Option<Checkout> {
        let deadline = std::time::Instant::now() + POOL_WAIT;
        let mut state = self.lock();
        loop {
            if let Some(c) = state.idle.pop() {
                return Some(Checkout::Idle(Box::new(c)));
            }
            if state.open < self.max {
                state.open += 1;
                return Some(Checkout::Open);
            }
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            state = self.freed.wait_timeout(state, left).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    fn checkin(&self, conn: Conn) {
        self.lock().idle.push(conn);
        self.freed.notify_one();
    }

    /// A connection (or the right to open one) given up.
    fn release(&self) {
        let mut state = self.lock();
        state.open = state.open.saturating_sub(1);
        drop(state);
        self.freed.notify_one();
    }

    /// Closes the idle connections (the server went away: they are broken too).
    fn discard_idle(&self) {
        let idle = {
            let mut state = self.lock();
            state.open = state.open.saturating_sub(state.idle.len());
            std::mem::take(&mut state.idle)
        };
        drop(idle);
        self.freed.notify_all();
    }
}

/// The engine's tables on a PostgreSQL server, shared by every replica connected to it.
pub struct PgTables {
    /// Writes that wait for the server's disk (users, the inbox, what the learning loop keeps).
    durable: Pool,
    /// Statistics: their sessions commit without waiting (`synchronous_commit = off`).
    statistics: Pool,
    /// The URL without its password.
    shown: String,
    backoff: Backoff,
    /// Statistics writes committed without waiting for the disk, counted.
    statistics_written: AtomicU64,
    /// How many of them are known durable: a write that waited and changed something, begun
    /// after they were committed, was committed after them in the server's log, which is
    /// written in order, so it made them durable too.
    statistics_synced: AtomicU64,
    /// The migrations this connect applied.
    migrated: Vec<i32>,
}

impl std::fmt::Debug for PgTables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgTables").field("server", &self.shown).finish_non_exhaustive()
    }
}

/// The pool for writes to (or reads of) `t`.
fn pool_for(tables: &PgTables, t: Tree) -> &Pool {
    if is_statistics(t) {
        &tables.statistics
    } else {
        &tables.durable
    }
}

impl PgTables {
    /// Connects to `url` and brings its schema to this build's version. Fails when the URL is
    /// not one, the server cannot be reached, or its schema is newer than this build.
    pub fn connect(url: &str) -> Result<PgTables, StoreError> {
        let mut config = postgres::Config::from_str(url).map_err(|e| StoreError::Server(Box::new(e)))?;
        config.connect_timeout(CONNECT_TIMEOUT).keepalives(true).keepalives_idle(Duration::from_secs(30));
        if config.get_application_name().is_none() {
            config.application_name("articlebot");
        }
        let mut statistics = config.clone();
        // Whatever the server's or the role's default: these writes wait for the disk.
        let options = config.get_options().map(|o| format!("{o} ")).unwrap_or_default();
        config.options(&format!("{options}-c synchronous_commit=on"));
        let options = statistics.get_options().map(|o| format!("{o} ")).unwrap_or_default();
        statistics.options(&format!("{options}-c synchronous_commit=off"));
        let tables = PgTables {
            durable: Pool::new(config, DURABLE_CONNECTIONS),
            statistics: Pool::new(statistics, STATISTICS_CONNECTIONS),
            shown: redact(url),
            backoff: Backoff::default(),
            statistics_written: AtomicU64::new(0),
            statistics_synced: AtomicU64::new(0),
            migrated: Vec::new(),
        };
        let mut tables = tables;
        let mut client = tables.durable.config.connect(NoTls).map_err(server_error)?;
        tables.migrated = schema::migrate(&mut client)?;
        let first = Conn::new(client).map_err(server_error)?;
        tables.durable.lock().open += 1;
        tables.durable.checkin(first);
        Ok(tables)
    }

    /// The schema versions this connect applied (none: it was up to date).
    pub fn migrated(&self) -> &[i32] {
        &self.migrated
    }

    /// The server, without its password.
    pub fn server(&self) -> &str {
        &self.shown
    }

    /// The schema version of the server's tables.
    pub fn schema_version(&self) -> Result<i32, StoreError> {
        let mut conn = self.take(&self.durable)?;
        let version = schema::version(&mut conn.client);
        if conn.client.is_closed() {
            drop(conn);
            self.durable.release();
        } else {
            self.durable.checkin(conn);
        }
        version
    }

    /// An idle connection of `pool`, or a new one (none while the backoff says wait).
    fn take(&self, pool: &Pool) -> Result<Conn, StoreError> {
        match pool.checkout() {
            Some(Checkout::Idle(c)) => return Ok(*c),
            Some(Checkout::Open) => {}
            None => {
                return Err(StoreError::Busy(
                    format!("all {} connections to the database server stayed busy for {POOL_WAIT:?}", pool.max).into(),
                ))
            }
        }
        if !self.backoff.may_try() {
            pool.release();
            return Err(StoreError::Unreachable("still unreachable; trying again shortly".into()));
        }
        match pool.config.connect(NoTls).and_then(Conn::new) {
            Ok(c) => {
                if self.backoff.worked() {
                    tracing::info!(server = %self.shown, "the database server is reachable again");
                }
                Ok(c)
            }
            Err(e) => {
                pool.release();
                let e = server_error(e);
                // A refusal (a wrong password, no such database) is said as it is, every time.
                if !e.is_transient() {
                    return Err(e);
                }
                if self.backoff.failed() {
                    tracing::error!(
                        server = %self.shown,
                        error = %articlebot_engine::ErrorChain(&e),
                        "the database server cannot be reached; trying again with backoff"
                    );
                }
                Err(e)
            }
        }
    }

    /// Runs `f` on a connection of `pool`. A connection that broke is dropped with the idle
    /// ones (they went to the same server); a working one goes back.
    fn with<R>(&self, pool: &Pool, f: impl FnOnce(&mut Conn) -> Result<R, postgres::Error>) -> Result<R, StoreError> {
        let mut conn = self.take(pool)?;
        // A panic in `f` must not cost the pool its slot.
        let result = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&mut conn))) {
            Ok(r) => r,
            Err(panic) => {
                drop(conn);
                pool.release();
                std::panic::resume_unwind(panic);
            }
        };
        let broken = match &result {
            Ok(_) => false,
            Err(e) => e.is_closed() || conn.client.is_closed() || conn.client.is_valid(Duration::from_secs(2)).is_err(),
        };
        if broken {
            drop(conn);
            pool.release();
            self.durable.discard_idle();
            self.statistics.discard_idle();
        } else {
            pool.checkin(conn);
        }
        result.map_err(server_error)
    }

    /// Runs `f` on a connection whose writes wait for the server's disk.
    pub(crate) fn with_durable<R>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<R, postgres::Error>,
    ) -> Result<R, StoreError> {
        self.with(&self.durable, |c| f(&mut c.client))
    }

    /// Statistics written so far, read before a write begins.
    fn written_before(&self) -> u64 {
        self.statistics_written.load(Ordering::Acquire)
    }

    /// A write to `t` was committed; `before` is [`Self::written_before`] from before it began,
    /// `changed` whether it wrote anything (one that wrote nothing commits nothing to the log).
    fn wrote(&self, t: Tree, before: u64, changed: bool) {
        if !changed {
            return;
        }
        if is_statistics(t) {
            self.statistics_written.fetch_add(1, Ordering::AcqRel);
        } else {
            self.statistics_synced.fetch_max(before, Ordering::AcqRel);
        }
    }

    /// Restores the backup at `from` into the server's tables, replacing what they hold, in one
    /// transaction: the whole backup is checked first, and a failure changes nothing.
    pub fn restore(&self, from: &std::path::Path) -> Result<articlebot_engine::BackupReport, StoreError> {
        articlebot_engine::read_backup(from, |_, _, _| Ok(()))?;
        let mut conn = self.take(&self.durable)?;
        let restored = (|| {
            let Conn { client, st } = &mut conn;
            let mut tx = client.transaction().map_err(server_error)?;
            tx.execute("DELETE FROM kv WHERE tree <> $1", &[&Tree::Meta.name()]).map_err(server_error)?;
            let report = articlebot_engine::read_backup(from, |tree, k, v| {
                tx.execute(&st.upsert, &[&tree, &k, &v]).map(|_| ()).map_err(server_error)
            })?;
            tx.commit().map_err(server_error)?;
            Ok(report)
        })();
        if restored.is_ok() || !conn.client.is_closed() {
            self.durable.checkin(conn);
        } else {
            drop(conn);
            self.durable.release();
        }
        restored
    }
}

/// The first key after every key that starts with `prefix`, if there is one.
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

impl KeyValue for PgTables {
    type Bytes = Vec<u8>;

    fn get(&self, t: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(pool_for(self, t), |c| Ok(c.client.query_opt(&c.st.get, &[&t.name(), &key])?.map(|r| r.get(0))))
    }

    fn insert(&self, t: Tree, key: &[u8], value: Vec<u8>) -> Result<(), StoreError> {
        let before = self.written_before();
        self.with(pool_for(self, t), |c| c.client.execute(&c.st.upsert, &[&t.name(), &key, &value]))?;
        self.wrote(t, before, true);
        Ok(())
    }

    fn remove(&self, t: Tree, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let before = self.written_before();
        let old = self
            .with(pool_for(self, t), |c| Ok(c.client.query_opt(&c.st.delete, &[&t.name(), &key])?.map(|r| r.get(0))))?;
        self.wrote(t, before, old.is_some());
        Ok(old)
    }

    fn update<F>(&self, t: Tree, key: &[u8], mut f: F) -> Result<Option<Vec<u8>>, StoreError>
    where
        F: FnMut(Option<&[u8]>) -> Option<Vec<u8>>,
    {
        let name = t.name();
        for _ in 0..UPDATE_TRIES {
            let before = self.written_before();
            // `None`: another writer inserted the same new key meanwhile; read it again.
            let done = self.with(pool_for(self, t), |c| {
                let Conn { client, st } = c;
                let mut tx = client.transaction()?;
                let old: Option<Vec<u8>> = tx.query_opt(&st.get_for_update, &[&name, &key])?.map(|r| r.get(0));
                let new = f(old.as_deref());
                let changed = old.is_some() || new.is_some();
                match (&old, &new) {
                    (None, None) => {}
                    (Some(_), None) => {
                        tx.execute(&st.delete, &[&name, &key])?;
                    }
                    (Some(_), Some(v)) => {
                        tx.execute(&st.set, &[&name, &key, v])?;
                    }
                    (None, Some(v)) => {
                        if tx.execute(&st.insert_new, &[&name, &key, v])? == 0 {
                            tx.rollback()?;
                            return Ok(None);
                        }
                    }
                }
                tx.commit()?;
                Ok(Some((new, changed)))
            })?;
            if let Some((new, changed)) = done {
                self.wrote(t, before, changed);
                return Ok(new);
            }
        }
        Err(StoreError::Busy(format!("an update of `{name}` lost {UPDATE_TRIES} races in a row").into()))
    }

    fn scan(&self, t: Tree, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let end = prefix_end(prefix);
        self.with(pool_for(self, t), |c| {
            let rows = match &end {
                Some(end) => c.client.query(&c.st.scan_range, &[&t.name(), &prefix, end])?,
                None => c.client.query(&c.st.scan_from, &[&t.name(), &prefix])?,
            };
            Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }

    fn len(&self, t: Tree) -> Result<usize, StoreError> {
        self.with(pool_for(self, t), |c| Ok(c.client.query_one(&c.st.count, &[&t.name()])?.get::<_, i64>(0) as usize))
    }

    /// Statistics committed without waiting are made durable by one write that waits: the
    /// server's log is written in order.
    fn flush(&self) -> Result<(), StoreError> {
        let written = self.written_before();
        if self.statistics_synced.load(Ordering::Acquire) >= written {
            return Ok(());
        }
        self.with(&self.durable, |c| c.client.execute(&c.st.upsert, &[&Tree::Meta.name(), &&b"flush"[..], &&b""[..]]))?;
        self.statistics_synced.fetch_max(written, Ordering::AcqRel);
        Ok(())
    }

    fn size_on_disk(&self) -> Option<u64> {
        self.with(&self.durable, |c| c.client.query_one("SELECT pg_total_relation_size('kv')", &[]))
            .ok()
            .map(|r| r.get::<_, i64>(0).max(0) as u64)
    }

    fn export(&self, each: EachEntry<'_>) -> Result<Vec<(String, u64)>, StoreError> {
        let mut io_error = None;
        let counts = self.with(&self.durable, |c| {
            let mut tx = c
                .client
                .build_transaction()
                .isolation_level(postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()?;
            // The engine's tables in its order (as sled's backups list them), then any a newer
            // version made.
            let mut trees: Vec<String> =
                Tree::ALL.iter().filter(|t| **t != Tree::Meta).map(|t| t.name().to_string()).collect();
            for row in tx.query("SELECT DISTINCT tree FROM kv ORDER BY tree", &[])? {
                let tree: String = row.get(0);
                if Tree::named(&tree).is_none() {
                    trees.push(tree);
                }
            }
            let stmt = tx.prepare("SELECT key, value FROM kv WHERE tree = $1 ORDER BY key")?;
            let mut counts: Vec<(String, u64)> = Vec::new();
            'trees: for tree in trees {
                let portal = tx.bind(&stmt, &[&tree])?;
                let mut n = 0;
                loop {
                    let rows = tx.query_portal(&portal, 1000)?;
                    if rows.is_empty() {
                        break;
                    }
                    for r in rows {
                        if let Err(e) = each(&tree, r.get(0), r.get(1)) {
                            io_error = Some(e);
                            break 'trees;
                        }
                        n += 1;
                    }
                }
                counts.push((tree, n));
            }
            tx.commit()?;
            Ok(counts)
        })?;
        match io_error {
            Some(e) => Err(StoreError::Io(e)),
            None => Ok(counts),
        }
    }

    fn shared(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("postgres://bot:s3cret@db:5432/articlebot"), "postgres://bot:***@db:5432/articlebot");
        assert_eq!(redact("postgres://bot@db/articlebot"), "postgres://bot@db/articlebot");
        assert_eq!(redact("postgres://bot:p@ss@db"), "postgres://bot:***@db");
        assert_eq!(redact("postgres://bot@db/x?password=s3cret"), "postgres://bot@db/x?password=***");
        assert!(!redact("postgresql://u:pw@h:1/d?sslmode=disable").contains("pw"));
        assert_eq!(redact("postgres://bot:ab/cd@db/x"), "postgres://bot:***@db/x", "a / in the password");
        assert_eq!(redact("postgres://bot:a@b@db"), "postgres://bot:***@db");
        assert_eq!(redact("host=db user=bot password=s3cret dbname=x"), "host=db user=bot password=*** dbname=x");
    }

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }
}
