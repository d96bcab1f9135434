//! Telegram's limits as Telegram sees them: the real `articlebot serve` under load against the
//! fake Bot API, measured by when each call *arrived* there (`Call::received_at`), and messages
//! whose length Telegram measures in UTF-16 code units.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use articlebot_testkit::{Call, RateLimits, TestChat};

use crate::bot_harness::{World, ADMIN, WAIT};

/// The calls Telegram counts against its 30 a second: messages, edits and chat actions.
pub(crate) const COUNTED: &[&str] = &["sendMessage", "editMessageText", "sendChatAction"];
/// The calls Telegram counts per chat (a chat action is not a message).
const PER_CHAT: &[&str] = &["sendMessage", "editMessageText"];

const QUESTIONS: &[&str] = &[
    "why do my knees hurt when I run",
    "is swimming easier on the knees than running",
    "how do I do a proper sit up",
    "what should I wear for running",
    "does walking help with weight loss",
    "how do I bake bread",
    "/more",
];

/// The most calls that arrived within any 1 s (a trailing window ending at a call).
pub(crate) fn busiest_second(times: &[Instant]) -> usize {
    let mut sorted = times.to_vec();
    sorted.sort();
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..sorted.len() {
        while sorted[hi] - sorted[lo] >= Duration::from_secs(1) {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

/// Arrival times of the calls counted per chat, per chat.
pub(crate) fn by_chat(calls: &[Call]) -> BTreeMap<i64, Vec<Instant>> {
    let mut out: BTreeMap<i64, Vec<Instant>> = BTreeMap::new();
    for c in calls.iter().filter(|c| PER_CHAT.contains(&c.method.as_str())) {
        if let Some(chat) = c.chat_id() {
            out.entry(chat).or_default().push(c.received_at);
        }
    }
    out
}

/// The shortest time between two counted calls to one chat.
pub(crate) fn closest(times: &[Instant]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted.windows(2).map(|w| w[1] - w[0]).min().unwrap_or(Duration::MAX)
}

#[tokio::test(flavor = "multi_thread")]
async fn under_load_no_second_no_chat_and_no_group_exceeds_telegrams_limits() {
    let w = World::new().await;
    w.fake.enable_rate_limits(RateLimits::default());
    let groups: Vec<i64> = vec![-1001, -1002, -1003];
    for (i, g) in groups.iter().enumerate() {
        w.fake.add_chat(TestChat::group(*g, &format!("Group {i}")));
    }
    let mention = format!("@{} knee pain when running", w.fake.bot_username());
    let started = Instant::now();
    // 100 users, 5 questions each, waiting for each answer as people do...
    let users = (0..100i64).map(|u| {
        let fake = &w.fake;
        async move {
            let user = 5_000 + u;
            for i in 0..5 {
                fake.send_text(user, user, QUESTIONS[(u as usize + i) % QUESTIONS.len()]);
                if fake.nth_reply(user, i, Duration::from_secs(90)).await.is_none() {
                    return Err(format!("user {user}: no answer to question {i}"));
                }
            }
            Ok(())
        }
    });
    // ...and three groups where four members ask the bot at once, twice.
    let group_traffic = async {
        for round in 0..2 {
            for g in &groups {
                for m in 0..4 {
                    w.fake.send_text(*g, 9_000 + m + 10 * round, &mention);
                }
            }
        }
        for g in &groups {
            if w.fake.wait_for_replies(*g, 8, Duration::from_secs(90)).await.is_none() {
                return Err(format!("group {g}: not every mention was answered"));
            }
        }
        Ok(())
    };
    let (results, groups_done) = tokio::join!(futures::future::join_all(users), group_traffic);
    let log = || w.bot().logs();
    for r in results {
        r.unwrap_or_else(|e| panic!("{e}\n{}", log()));
    }
    groups_done.unwrap_or_else(|e| panic!("{e}\n{}", log()));
    let took = started.elapsed();

    let calls = w.fake.calls();
    let counted: Vec<Instant> =
        calls.iter().filter(|c| COUNTED.contains(&c.method.as_str())).map(|c| c.received_at).collect();
    assert!(counted.len() >= 524, "500 answers and 24 group replies: {}", counted.len());
    let busiest = busiest_second(&counted);
    assert!(busiest <= 30, "{busiest} calls reached the API within one second");
    for (chat, times) in by_chat(&calls) {
        let least = if chat < 0 { Duration::from_secs(3) } else { Duration::from_secs(1) };
        let gap = closest(&times);
        assert!(gap >= least, "chat {chat}: two calls {gap:?} apart at the API");
        if chat < 0 {
            let per_minute = times.iter().filter(|t| **t < times[0] + Duration::from_secs(60)).count();
            assert!(per_minute <= 20, "group {chat}: {per_minute} calls in a minute");
        }
    }
    assert_eq!(w.fake.counters().rate_limited, 0, "the API never had to refuse a call");
    // Evenly spread, not bursts: the throughput is close to the limit, and not above it.
    let rate = counted.len() as f64 / took.as_secs_f64();
    eprintln!("{} counted calls in {took:?} ({rate:.1}/s), at most {busiest} in a second", counted.len());
    assert!(rate <= 30.0, "{rate:.1}/s");
}

#[tokio::test(flavor = "multi_thread")]
async fn reports_of_emoji_questions_reach_the_admin_within_telegrams_length() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    // 20 different unanswerable questions of about 290 emoji: each kept with its example of
    // 300 characters, which Telegram counts as almost 600. No two share a word, so /unanswered
    // lists them apart.
    for i in 0..20i64 {
        let word: String = std::iter::repeat_n(char::from(b'a' + i as u8), 3).collect();
        let q = format!("zorb{word} quux{word} {}", "🍞".repeat(290));
        w.fake.send_text_and_wait(100 + i, 100 + i, &q, WAIT).await.expect("an answer");
    }
    for cmd in ["/unanswered", "/stats"] {
        let r = w
            .fake
            .send_text_and_wait(ADMIN, ADMIN, cmd, WAIT)
            .await
            .unwrap_or_else(|| panic!("{cmd}: the admin got nothing\n{}", w.bot().logs()));
        let units = r.plain.encode_utf16().count();
        assert!(units <= 4096, "{cmd}: {units} UTF-16 units");
        if cmd == "/unanswered" {
            assert!(r.plain.contains("🍞"), "{}", r.plain);
            assert!(units > 3500, "{cmd}: cut at the limit, not far below it: {units}");
            assert!(r.plain.ends_with('…'), "cut, and says so");
        }
    }
    assert_eq!(w.fake.counters().bad_requests, 0, "Telegram refused nothing as too long");
}
