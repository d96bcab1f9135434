//! articlebot's conversation store on PostgreSQL: the engine's key-value tables
//! ([`articlebot_engine::KeyValue`]) in one table of a server that several replicas of the bot
//! share. [`PgStore`] is the engine's store over it, with exactly the sled store's behaviour (the
//! same checks run on both: `articlebot_engine::conformance`).
//!
//! - `tables`: [`PgTables`], the backend: a small pool of connections, statements prepared once
//!   per connection, every `update` one transaction with the row locked, writes of statistics
//!   committed without waiting for the disk (a crash of the server may lose their last moment,
//!   never a user's position);
//! - `schema`: the schema's versioned migrations, embedded, applied at connect under a lock so
//!   that replicas starting together apply each once;
//! - `replicas`: what replicas share besides: the inbox they take updates from one chat at a
//!   time ([`Replica`]), Telegram's send limits ([`SendClock`]), the notifications that wake them;
//! - `backoff`: while the server is down, calls fail at once instead of each waiting for a
//!   connection, and one attempt to reconnect is made per backoff step.

mod backoff;
mod replicas;
mod schema;
mod tables;

pub use replicas::{
    chat_lock, listen, Claim, Next, Notice, Notifications, Replica, SendClock, Taken, INBOX_CHANNEL, RELOAD_CHANNEL,
};
pub use schema::{Migration, MIGRATIONS, SCHEMA_VERSION};
pub use tables::{redact, PgTables};

/// The conversation store on PostgreSQL.
pub type PgStore = articlebot_engine::KvStore<PgTables>;

/// Connects to the server at `url` (`postgres://user:password@host:port/db`), applies the
/// schema's migrations, and opens the store over its tables.
pub fn open(url: &str) -> Result<PgStore, articlebot_engine::StoreError> {
    PgStore::with_tables(std::sync::Arc::new(PgTables::connect(url)?))
}

/// Whether `s` names a PostgreSQL server rather than a directory: a `postgres://` URL or a
/// `key=value` connection string (`host=db user=bot dbname=articlebot`).
pub fn is_url(s: &str) -> bool {
    let conninfo = s
        .split_whitespace()
        .any(|p| p.split_once('=').is_some_and(|(k, _)| matches!(k, "host" | "hostaddr" | "dbname" | "user" | "port")));
    s.starts_with("postgres://") || s.starts_with("postgresql://") || conninfo
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use articlebot_engine::{Store, StoreError};
    use articlebot_testkit::postgres::{fresh_database, TestPostgres};

    #[test]
    fn postgres_passes_the_store_conformance_checks() {
        let databases: Mutex<HashMap<usize, String>> = Mutex::default();
        let open = |n: usize| {
            let url = databases
                .lock()
                .unwrap()
                .entry(n)
                .or_insert_with(|| fresh_database().expect("a PostgreSQL server for the tests"))
                .clone();
            super::open(&url).unwrap()
        };
        articlebot_engine::conformance::all(&open);
    }

    #[test]
    fn a_server_that_goes_away_and_comes_back_is_used_again() {
        let mut pg = TestPostgres::start().expect("PostgreSQL for the tests");
        let url = pg.fresh_database().unwrap();
        let s = super::open(&url).unwrap();
        s.save_user(1, &Default::default(), true).unwrap();
        pg.stop();
        let e = s.load_user(1).unwrap_err();
        assert!(matches!(e, StoreError::Unreachable(_)), "{e:?}");
        assert!(matches!(s.load_user(1), Err(StoreError::Unreachable(_))), "in backoff: at once");
        pg.start_again().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let back = loop {
            match s.load_user(1) {
                Ok(state) => break state,
                Err(_) if std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(50))
                }
                Err(e) => panic!("not back: {e:?}"),
            }
        };
        assert!(back.is_some(), "what was written before the stop is there");
    }

    #[test]
    fn a_sled_backup_restores_into_postgres_and_back() {
        let dir = tempfile::tempdir().unwrap();
        let sled = articlebot_engine::SledStore::open(&dir.path().join("db")).unwrap();
        for user in 0..30 {
            sled.save_user(user, &Default::default(), true).unwrap();
        }
        let backup = dir.path().join("backup.jsonl");
        let written = sled.backup(&mut std::fs::File::create(&backup).unwrap()).unwrap();
        let pg = super::open(&fresh_database().unwrap()).unwrap();
        pg.save_user(999, &Default::default(), true).unwrap();
        let restored = pg.tables().restore(&backup).unwrap();
        assert_eq!(restored, written);
        assert!(pg.load_user(999).unwrap().is_none(), "what was there before is replaced");
        assert!((0..30).all(|u| pg.load_user(u).unwrap().is_some()));
        assert_eq!(pg.stats(0, 1).unwrap().users, 30);
        let mut again = Vec::new();
        assert_eq!(articlebot_engine::write_backup(pg.tables(), &mut again).unwrap(), written, "and back out");
        std::fs::write(&backup, &again[..again.len() / 2]).unwrap();
        assert!(matches!(pg.tables().restore(&backup), Err(StoreError::BadBackup { .. })));
        assert_eq!(pg.stats(0, 1).unwrap().users, 30, "a cut backup changes nothing");
    }

    #[test]
    fn many_threads_share_a_bounded_pool() {
        let url = fresh_database().unwrap();
        let s = super::open(&url).unwrap();
        let db = url.rsplit('/').next().unwrap().to_string();
        let most = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|scope| {
            for t in 0..40i64 {
                let s = &s;
                scope.spawn(move || {
                    for i in 0..20 {
                        s.save_user(t * 100 + i, &Default::default(), true).unwrap();
                    }
                });
            }
            let (most, db, url) = (&most, &db, &url);
            scope.spawn(move || {
                for _ in 0..20 {
                    let sql = format!("SELECT count(*) FROM pg_stat_activity WHERE datname = '{db}' AND application_name = 'articlebot'");
                    let n: usize = articlebot_testkit::postgres::psql(url, &sql).unwrap().trim().parse().unwrap();
                    most.fetch_max(n, std::sync::atomic::Ordering::Relaxed);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            });
        });
        assert_eq!(s.stats(0, 1).unwrap().users, 800, "every write made it");
        let most = most.into_inner();
        assert!(most > 1 && most <= super::tables::MAX_CONNECTIONS, "{most} connections open at once");
    }

    #[test]
    fn migrations_apply_once_and_a_newer_schema_is_refused() {
        let url = fresh_database().unwrap();
        let first = super::PgTables::connect(&url).unwrap();
        assert_eq!(first.schema_version().unwrap(), super::SCHEMA_VERSION);
        // Replicas starting together: each migration once.
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| super::PgTables::connect(&url).unwrap());
            }
        });
        let applied = articlebot_testkit::postgres::psql(&url, "SELECT count(*) FROM schema_migrations").unwrap();
        assert_eq!(applied.trim(), super::MIGRATIONS.len().to_string());
        articlebot_testkit::postgres::psql(
            &url,
            "INSERT INTO schema_migrations (version, name) VALUES (999, 'future')",
        )
        .unwrap();
        let e = super::PgTables::connect(&url).unwrap_err();
        assert!(matches!(e, StoreError::NewerSchema { found: 999, .. }), "{e:?}");
    }
}
