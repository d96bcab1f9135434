//! The bot on PostgreSQL (`--store postgres://...`): the real process killed with -9 again and
//! again under load, and the PostgreSQL server itself restarted in the middle, on a private
//! cluster on 127.0.0.1; then the owner's commands (`migrate`, `backup`, `restore`, `stats`) on
//! that server.

use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use articlebot_testkit::postgres::{psql, TestPostgres};
use articlebot_testkit::FakeTelegram;

use crate::bot_harness::{BotOptions, BotProcess};
use crate::crash_restart::{check_reading, reader};

const USERS: i64 = 10;
const KILLS: usize = 10;

fn articlebot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_articlebot")).args(args).output().expect("run articlebot")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn kills_of_the_bot_and_a_restart_of_postgres_lose_nothing() {
    let mut pg = TestPostgres::start().expect("PostgreSQL for the tests");
    let url = pg.fresh_database().unwrap();
    let fake = Arc::new(FakeTelegram::start().await);
    let dir = tempfile::tempdir().unwrap();
    let mut opts =
        BotOptions::in_dir(dir.path(), &["--no-rate-limit", "--flood-max", "100000", "--store", url.as_str()]);
    opts.rust_log = "info".into();
    let mut bot = BotProcess::start(&fake, &opts).await;

    let readers: Vec<_> = (0..USERS).map(|u| tokio::spawn(reader(fake.clone(), 60_000 + u))).collect();
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    for kill in 0..KILLS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(200 + seed % 400)).await;
        if kill == KILLS / 2 {
            // The database goes away under the running bot, and comes back.
            pg.stop();
            tokio::time::sleep(Duration::from_millis(1500)).await;
            pg.start_again().unwrap();
            // Time for the running bot to find it back (its backoff is at 1.6 s by now).
            tokio::time::sleep(Duration::from_secs(4)).await;
            continue;
        }
        bot.kill9();
        tokio::time::sleep(Duration::from_millis(100)).await;
        bot = BotProcess::start(&fake, &opts).await;
    }
    let mut waited = 0;
    for (u, r) in readers.into_iter().enumerate() {
        let read = r.await.expect("reader task").unwrap_or_else(|e| panic!("{e}\nbot log:\n{}", bot.logs()));
        waited += read.waited_for_restart;
        check_reading(u, &read.shown);
    }
    assert!(waited >= 5, "the kills must hit conversations in progress (only {waited} replies waited)");
    let log_path = bot.log.clone();
    let status = bot.terminate();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(status.success(), "the last instance stops cleanly: {status:?}\n{log}");
    let logs: String = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("bot-"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect();
    assert!(logs.contains("waits for the database server"), "the restart of PostgreSQL was felt:\n{logs}");
    assert!(logs.contains("the database server is back"), "and its end:\n{logs}");
    let left = psql(&url, "SELECT count(*) FROM inbox").unwrap();
    assert_eq!(left.trim(), "0", "every update left the inbox once handled");
    let users = psql(&url, "SELECT count(*) FROM kv WHERE tree = 'users'").unwrap();
    assert_eq!(users.trim(), USERS.to_string());
}

#[test]
fn migrate_backup_restore_and_stats_work_on_postgres() {
    let pg = articlebot_testkit::postgres::shared_server().expect("PostgreSQL for the tests");
    let url = pg.fresh_database().unwrap();
    let first = articlebot(&["migrate", "--store", &url]);
    assert!(first.status.success(), "{first:?}");
    assert!(stdout(&first).contains("applied 2 migration(s) (1, 2)"), "{}", stdout(&first));
    let again = articlebot(&["migrate", "--store", &url]);
    assert!(stdout(&again).contains("nothing to do"), "{}", stdout(&again));

    // Something to back up: two users' answers through `chat`-free means: the store's own data
    // comes from a sled database restored into it.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    {
        use articlebot_engine::Store;
        let sled = articlebot_engine::SledStore::open(&data).unwrap();
        for user in [1, 2] {
            sled.save_user(user, &Default::default(), true).unwrap();
        }
        sled.record_question(&articlebot_engine::QuestionRecord {
            normalized: "knee pain running",
            example: "knee pain running?",
            intent: articlebot_engine::Intent::Unknown,
            article: None,
            at: 1_700_000_000,
        })
        .unwrap();
        sled.flush().unwrap();
    }
    let sled_backup = dir.path().join("sled.backup");
    let o = articlebot(&["backup", "--data", data.to_str().unwrap(), "--out", sled_backup.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    let o = articlebot(&["restore", sled_backup.to_str().unwrap(), "--store", &url]);
    assert!(o.status.success(), "{o:?}");
    assert!(stdout(&o).contains("restored"), "{}", stdout(&o));

    let o = articlebot(&["stats", "--store", &url, "--json"]);
    assert!(o.status.success(), "{o:?}");
    let stats: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(stats["users"], 2, "{stats}");
    assert_eq!(stats["unknown_total"], 1, "{stats}");
    let o = articlebot(&["unanswered", "--store", &url, "--json"]);
    assert!(stdout(&o).contains("knee pain running"), "{o:?}");

    let pg_backup = dir.path().join("pg.backup");
    let o = articlebot(&["backup", "--store", &url, "--out", pg_backup.to_str().unwrap()]);
    assert!(o.status.success(), "{o:?}");
    let other = pg.fresh_database().unwrap();
    let o = articlebot(&["restore", pg_backup.to_str().unwrap(), "--store", &other]);
    assert!(o.status.success(), "{o:?}");
    let o = articlebot(&["stats", "--store", &other, "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(stats["users"], 2, "the PostgreSQL backup restores into another server's database: {stats}");

    let o = articlebot(&["stats", "--store", "postgres://nobody:secret@127.0.0.1:1/none"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot open the database postgres://nobody:***@127.0.0.1:1/none"), "{err}");
    assert!(!err.contains("secret"), "{err}");
}
