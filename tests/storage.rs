//! The database as an operator meets it: a damaged one refused at start with one line that says
//! what to do, `--accept-data-loss`, `articlebot backup` and `restore` (backup, damage, restore,
//! and every user is where they were), and a disk that fills up and frees again while the bot
//! runs. The real `articlebot serve` process against the fake Bot API.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::bot_harness::{knowledge_copy, BotOptions, BotProcess, World, WAIT};

const ARTICLE: &str = "/start what-causes-knee-pain-when-running";

fn articlebot(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_articlebot")).args(args).output().expect("run articlebot")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The section ("3" of "(3/5)") an answer shows.
fn section(html: &str) -> Option<u32> {
    let at = html.find("/5)")?;
    html[..at].rsplit('(').next()?.parse().ok()
}

/// Asks `/more` and returns the section shown.
async fn more(w: &World, user: i64) -> Option<u32> {
    let r = w.fake.send_text_and_wait(user, user, "/more", WAIT).await?;
    section(&r.text)
}

/// Readers at sections 1..=3 of the article: user 10+k has read k+1 sections.
async fn readers(w: &World) {
    for k in 0..3 {
        let user = 10 + k;
        let r = w.fake.send_text_and_wait(user, user, ARTICLE, WAIT).await.expect("an answer");
        assert_eq!(section(&r.text), Some(1), "{}", r.text);
        for s in 0..k {
            assert_eq!(more(w, user).await, Some(s as u32 + 2));
        }
    }
}

fn truncate_db(data: &Path, percent: u64) {
    let f = std::fs::OpenOptions::new().write(true).open(data.join("db")).expect("the db file");
    let len = f.metadata().unwrap().len();
    f.set_len(len * percent / 100).unwrap();
}

/// Starts the bot and waits (bounded) for it to exit by itself: its exit code and stderr.
fn start_expecting_exit(w: &World, extra: &[&str]) -> (Option<i32>, String) {
    let opts = BotOptions {
        knowledge: w.opts.knowledge.clone(),
        data: w.opts.data.clone(),
        admins: vec![],
        extra_args: extra.iter().map(ToString::to_string).collect(),
        rust_log: "info".into(),
        fd_limit: None,
    };
    let mut bot = BotProcess::spawn(&w.fake, &opts);
    let status = bot.wait_exit(Duration::from_secs(20));
    (status.and_then(|s| s.code()), bot.logs())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_database_stops_the_start_with_one_line_and_the_loss_can_be_accepted() {
    for (damage, percent) in [("truncated to 0", 0), ("truncated to 10 %", 10), ("truncated to 50 %", 50)] {
        let mut w = World::with_args(&["--no-rate-limit"]).await;
        readers(&w).await;
        let status = w.bot.take().unwrap().terminate();
        assert!(status.success());
        truncate_db(&w.opts.data, percent);

        let (code, log) = start_expecting_exit(&w, &[]);
        assert_eq!(code, Some(2), "{damage}: refused, exit code 2: {log}");
        let errors: Vec<&str> = log.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{damage}: one line: {log}");
        let line = errors[0];
        let dir = w.opts.data.display().to_string();
        assert!(line.contains(&format!("cannot open the database {dir}")), "{damage}: names the dir: {line}");
        assert!(line.contains("damaged"), "{line}");
        assert!(line.contains(&format!("articlebot restore FILE --data {dir}")), "says what to do: {line}");
        assert!(line.contains("--accept-data-loss"), "{line}");
        assert!(!log.contains("panicked"), "{damage}: no panic shows: {log}");

        // With the loss accepted the bot starts, says what it did, and keeps the damaged files.
        w.opts.extra_args.push("--accept-data-loss".into());
        w.bot = Some(BotProcess::start(&w.fake, &w.opts).await);
        let r = w.fake.send_text_and_wait(10, 10, "knee pain when running", WAIT).await.expect("answered");
        assert!(r.text.contains("What causes knee pain"), "{}", r.text);
        let log = w.bot().logs();
        assert!(log.contains("the database was damaged"), "{log}");
        let aside = std::fs::read_dir(&w.opts.data)
            .unwrap()
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().starts_with("damaged-"));
        assert!(aside, "the damaged files are kept aside");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn backup_damage_restore_and_every_reader_goes_on_where_they_were() {
    let mut w = World::with_args(&["--no-rate-limit"]).await;
    readers(&w).await;
    let data = w.opts.data.display().to_string();
    let file = w.opts.data.with_file_name("backup.jsonl");
    let file_s = file.display().to_string();

    // While the bot runs the database is in use: said so, nothing written.
    let out = articlebot(&["backup", "--data", &data, "--out", &file_s]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("is in use (is the bot running?)"), "{}", text(&out.stderr));
    assert!(!file.exists());

    assert!(w.bot.take().unwrap().terminate().success());
    let out = articlebot(&["backup", "--data", &data, "--out", &file_s]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("backed up "), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("users 3"), "{}", text(&out.stdout));

    // (The degrees of damage are the test above; here, one that is always refused.)
    truncate_db(&w.opts.data, 0);
    let (code, _) = start_expecting_exit(&w, &[]);
    assert_eq!(code, Some(2), "the damage is noticed");

    let out = articlebot(&["restore", &file_s, "--data", &data]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.contains("restored") && said.contains("is kept in"), "{said}");

    w.bot = Some(BotProcess::start(&w.fake, &w.opts).await);
    for k in 0..3 {
        assert_eq!(more(&w, 10 + k).await, Some(k as u32 + 2), "reader {k} goes on from the section they were at");
    }

    // A backup that is not one is refused whole, and the database is untouched.
    std::fs::write(&file, "{\"articlebot_backup\":1,\"created\":0}\n").unwrap();
    assert!(w.bot.take().unwrap().terminate().success());
    let out = articlebot(&["restore", &file_s, "--data", &data]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not a complete articlebot backup"), "{}", text(&out.stderr));
    w.bot = Some(BotProcess::start(&w.fake, &w.opts).await);
    assert_eq!(more(&w, 12).await, Some(5));
}

/// A tmpfs of `mib` MiB, unmounted when dropped; `None` where one cannot be mounted.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, mib: u32) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(at)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system of `dir` with one file; returns it.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![1u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    while f.write_all(&chunk[..512]).is_ok() {}
    path
}

async fn wait_log(bot: &BotProcess, needle: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if bot.logs().contains(needle) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_then_room_again_loses_no_position_and_needs_no_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let Some(disk) = Tmpfs::mount(&tmp.path().join("disk"), 8) else {
        eprintln!(
            "NOT RUN: cannot mount a tmpfs here (needs root); the engine's injected-failure test covers the logic"
        );
        return;
    };
    // The database on the small disk, the logs beside it on the normal one (through a symlink,
    // since the harness puts the logs next to the data dir).
    std::fs::create_dir(disk.0.join("data")).unwrap();
    let data = tmp.path().join("data");
    std::os::unix::fs::symlink(disk.0.join("data"), &data).unwrap();
    let fake = articlebot_testkit::FakeTelegram::start().await;
    let opts = BotOptions {
        knowledge: knowledge_copy(tmp.path()),
        data,
        admins: vec![],
        extra_args: vec!["--no-rate-limit".into(), "--flood-max".into(), "1000".into()],
        rust_log: "info".into(),
        fd_limit: None,
    };
    let bot = BotProcess::start(&fake, &opts).await;
    let users: Vec<i64> = (20..30).collect();
    for &u in &users {
        let r = fake.send_text_and_wait(u, u, ARTICLE, WAIT).await.expect("an answer");
        assert_eq!(section(&r.text), Some(1));
    }

    let filler = fill(&disk.0);
    // Everyone reads on while the disk is full: still answered, every step the next section.
    for step in 2..=4u32 {
        for &u in &users {
            let r = fake.send_text_and_wait(u, u, "/more", WAIT).await.expect("answered while the disk is full");
            assert_eq!(section(&r.text), Some(step), "user {u}: {}", r.text);
        }
    }
    assert!(wait_log(&bot, "flush failed", WAIT).await, "the failure is named: {}", bot.logs());

    std::fs::remove_file(&filler).unwrap();
    assert!(
        wait_log(&bot, "the database can be written again", Duration::from_secs(20)).await,
        "recovers without a restart: {}",
        bot.logs()
    );
    let log = bot.log.clone();
    let status = bot.terminate();
    let log = std::fs::read_to_string(log).unwrap_or_default();
    assert!(status.success(), "a clean stop: the final flush succeeds: {log}");

    // After a restart every position written while the disk was full is there: the next
    // section is the fifth.
    let bot = BotProcess::start(&fake, &opts).await;
    for &u in &users {
        let r = fake.send_text_and_wait(u, u, "/more", WAIT).await.expect("answered");
        assert_eq!(section(&r.text), Some(5), "user {u}: {}", r.text);
    }
    assert!(!bot.logs().contains("flush failed"), "{}", bot.logs());
}
