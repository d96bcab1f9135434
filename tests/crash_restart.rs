//! kill -9 under load, 20 times in a row: the sled database always opens again, every question
//! is answered (those sent while the bot was down, after the restart), and each user's position
//! moves one section at a time, never skipping and never taking another user's.

use std::sync::Arc;
use std::time::Duration;

use crate::bot_harness::{BotOptions, BotProcess};
use articlebot_testkit::FakeTelegram;

const USERS: i64 = 12;
const STEPS: usize = 40;
const KILLS: usize = 20;
const DEADLINE: Duration = Duration::from_secs(30);

/// The section a reply shows ("(3/5)" → 3), or 0 for the end of the article.
pub(crate) fn section_of(text: &str) -> Option<u32> {
    if text.contains("end of the article") {
        return Some(0);
    }
    let open = text.find(" <i>(")?;
    let rest = &text[open + 5..];
    rest[..rest.find('/')?].parse().ok()
}

/// Asserts that a reader's sections moved one at a time: a step whose reply was lost in a crash
/// is shown again after the restart (same section); anything else must be exactly the next one.
pub(crate) fn check_reading(u: usize, shown: &[u32]) {
    let mut expected = 1;
    for (i, &s) in shown.iter().enumerate() {
        let repeat = i > 0 && s == shown[i - 1];
        assert!(s == expected || repeat, "user {u}: step {i} showed {s}, expected {expected}: {shown:?}");
        expected = match s {
            0 => 1,
            5 => 0,
            n => n + 1,
        };
    }
}

/// What a reader saw: the sections shown, and how many replies had to wait for a restart.
pub(crate) struct Read {
    pub shown: Vec<u32>,
    pub waited_for_restart: usize,
}

/// One user reads the article with /more, starting over after its end, pausing between steps
/// like a reader so that the kills land in the middle of conversations.
pub(crate) async fn reader(fake: Arc<FakeTelegram>, user: i64) -> Result<Read, String> {
    let mut shown = Vec::new();
    let mut waited_for_restart = 0;
    let mut next = "/start what-causes-knee-pain-when-running";
    let mut pause = user as u64;
    // One reply per step: the step number is also the index of the reply awaited.
    for (step, seen) in (0..STEPS).zip(0..) {
        pause = pause.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        tokio::time::sleep(Duration::from_millis(120 + (pause >> 33) % 200)).await;
        let sent = std::time::Instant::now();
        fake.send_text(user, user, next);
        let Some(r) = fake.nth_reply(user, seen, DEADLINE).await else {
            return Err(format!("user {user}: no reply to step {step} ({next})"));
        };
        if r.at.duration_since(sent) > Duration::from_millis(100) {
            waited_for_restart += 1;
        }
        let s = section_of(&r.text).ok_or_else(|| format!("user {user}: unexpected reply {:?}", r.text))?;
        shown.push(s);
        next = if s == 0 { "/start what-causes-knee-pain-when-running" } else { "/more" };
    }
    Ok(Read { shown, waited_for_restart })
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_kills_under_load_lose_nothing() {
    let fake = Arc::new(FakeTelegram::start().await);
    let dir = tempfile::tempdir().unwrap();
    // These readers are faster than any person: flood control must not slow them down.
    let mut opts = BotOptions::in_dir(dir.path(), &["--no-rate-limit", "--flood-max", "100000"]);
    opts.rust_log = "warn".into();
    let mut bot = BotProcess::start(&fake, &opts).await;

    let readers: Vec<_> = (0..USERS).map(|u| tokio::spawn(reader(fake.clone(), 50_000 + u))).collect();
    let mut kills = 0;
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    while kills < KILLS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(150 + seed % 400)).await;
        bot.kill9();
        kills += 1;
        // Questions arrive while the bot is down.
        tokio::time::sleep(Duration::from_millis(100)).await;
        bot = BotProcess::start(&fake, &opts).await;
    }

    let mut waited = 0;
    for (u, r) in readers.into_iter().enumerate() {
        let read = r.await.expect("reader task").unwrap_or_else(|e| panic!("{e}\nbot log:\n{}", bot.logs()));
        waited += read.waited_for_restart;
        assert_eq!(read.shown.len(), STEPS);
        check_reading(u, &read.shown);
    }
    eprintln!("{waited} replies waited for a restart");
    assert!(waited >= 5, "the kills must hit conversations in progress (only {waited} replies waited for a restart)");
    let status = bot.terminate();
    assert!(status.success(), "the last instance stops cleanly");
}
