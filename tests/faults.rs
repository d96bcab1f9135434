//! The bot against a misbehaving Bot API, hostile users and knowledge reloads under traffic,
//! and its operations surface (metrics, logs): the real `articlebot serve` process and the fake
//! API on 127.0.0.1.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::bot_harness::{BotOptions, BotProcess, World, ADMIN, WAIT};
use articlebot_testkit::{Fault, FaultRule};

#[tokio::test(flavor = "multi_thread")]
async fn sends_refused_with_429_are_retried_after_retry_after() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    w.fake.fail_with_429("sendMessage", 2, 1);
    let t0 = Instant::now();
    let r = w.fake.send_text_and_wait(1, 1, "knee pain when running", WAIT).await.expect("answered after the 429s");
    assert!(r.plain.starts_with("What causes knee pain"));
    assert!(t0.elapsed() >= Duration::from_secs(1), "retry_after was honoured");
    assert_eq!(w.fake.calls_of("sendMessage").len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn dropped_connections_and_slow_answers_are_retried() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    w.fake.drop_connections("sendMessage", 3);
    let r = w.fake.send_text_and_wait(2, 2, "sportswear for running", WAIT).await.expect("answered after drops");
    assert!(r.plain.starts_with("What sportswear"));
    w.fake.delay("sendMessage", 1, Duration::from_secs(2));
    assert!(w.fake.send_text_and_wait(2, 2, "knee pain", WAIT).await.is_some(), "a slow API only delays");
}

/// A 5xx costs the backoff README states (200 ms doubling for sends, 250 ms doubling for
/// getUpdates), not teloxide-core's fixed 10 s sleep before it even reports the error.
#[tokio::test(flavor = "multi_thread")]
async fn a_5xx_costs_the_backoff_not_ten_seconds() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    w.fake.fail_with_status("sendMessage", 2, 502);
    let asked = Instant::now();
    let r = w.fake.send_text_and_wait(3, 3, "knee pain", WAIT).await.expect("answered after two 502s");
    let took = asked.elapsed();
    assert!(r.plain.starts_with("What causes knee pain"));
    let sends = w.fake.calls_of("sendMessage");
    assert_eq!(sends.len(), 3);
    let gaps: Vec<Duration> =
        sends.windows(2).map(|p| p[1].received_at.saturating_duration_since(p[0].answered_at)).collect();
    assert!(gaps[0] >= Duration::from_millis(190) && gaps[1] >= Duration::from_millis(390), "backoff: {gaps:?}");
    assert!(took < Duration::from_secs(4), "two 502s cost {took:?}");

    // getUpdates: the poll after the next update gets 502 twice; a question right after is
    // answered after 250 ms + 500 ms of backoff.
    w.fake.fail_with_status("getUpdates", 2, 502);
    w.fake.send_text_and_wait(4, 4, "knee pain", WAIT).await.expect("answered");
    let asked = Instant::now();
    let r = w.fake.send_text_and_wait(5, 5, "sportswear for running", WAIT).await;
    let took = asked.elapsed();
    assert!(r.is_some(), "polling goes on after 502s");
    assert!(took < Duration::from_secs(4), "two getUpdates 502s cost {took:?}");
    let logs = w.bot().logs();
    assert!(logs.contains("getUpdates failed; retrying") && logs.contains("retry_in_ms=250"), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn get_updates_failures_never_stop_the_bot() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    w.fake.drop_connections("getUpdates", 4);
    w.fake.fail_with_429("getUpdates", 1, 1);
    let r = w.fake.send_text_and_wait(4, 4, "knee pain", Duration::from_secs(20)).await;
    assert!(r.is_some(), "the bot polls again after getUpdates failures");
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_is_lost_while_the_api_is_down() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    w.fake.add_fault(FaultRule::on("sendMessage", Fault::DropConnection).forever());
    for u in 10..20 {
        w.fake.send_text(u, u, "knee pain when running");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!((10..20).all(|u| w.fake.replies(u).is_empty()));
    w.fake.clear_faults();
    for u in 10..20 {
        let r = w.fake.nth_reply(u, 0, Duration::from_secs(30)).await;
        assert!(r.is_some(), "user {u} is answered once the API recovers");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!((10..20).all(|u| w.fake.replies(u).len() == 1), "and only once");
}

#[tokio::test(flavor = "multi_thread")]
async fn telegram_limits_hold_by_default() {
    let w = World::new().await;
    w.fake.enable_rate_limits(articlebot_testkit::RateLimits::default());
    // Two users, three quick questions each: one reply per second per chat, none refused.
    for _ in 0..3 {
        w.fake.send_text(30, 30, "knee pain");
        w.fake.send_text(31, 31, "sportswear for running");
    }
    for u in [30, 31] {
        let replies = w.fake.wait_for_replies(u, 3, Duration::from_secs(20)).await.expect("all answered");
        for pair in replies.windows(2) {
            assert!(pair[1].at.duration_since(pair[0].at) >= Duration::from_millis(900), "1 message/s per chat");
        }
    }
    assert_eq!(w.fake.counters().rate_limited, 0, "Telegram never had to refuse a message");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flooding_user_is_slowed_with_one_notice_and_others_are_not() {
    let w = World::with_args(&["--no-rate-limit", "--flood-max", "5", "--flood-window", "30"]).await;
    for _ in 0..12 {
        w.fake.send_text(40, 40, "knee pain");
    }
    let calm = w.fake.send_text_and_wait(41, 41, "knee pain", WAIT).await.expect("another user is answered");
    assert!(calm.plain.starts_with("What causes knee pain"));
    assert!(w.fake.wait_all_confirmed(WAIT).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let replies = w.fake.replies(40);
    let notices = replies.iter().filter(|r| r.plain.contains("very fast")).count();
    assert_eq!(notices, 1, "one polite notice");
    assert_eq!(
        replies.len(),
        6,
        "five answers and the notice: {:?}",
        replies.iter().map(|r| &r.plain).collect::<Vec<_>>()
    );

    // Button taps count too: every tap is answered (the spinner stops), the first over the
    // limit with the notice, and none of them sends a message.
    let mark = w.fake.mark();
    let next = replies[0].button_data("Next section").expect("a next-section button");
    let taps: Vec<_> = (0..3).map(|_| w.fake.press_button(40, 40, replies[0].message_id, &next)).collect();
    for q in &taps {
        assert!(w.fake.wait_query_answered(&q.id, WAIT).await, "every tap is answered");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.fake.replies(40).len(), 6, "taps over the limit change nothing");
    let tapper = w.fake.send_text_and_wait(42, 42, "knee pain", WAIT).await.unwrap();
    let next = tapper.button_data("Next section").unwrap();
    for _ in 0..6 {
        let q = w.fake.press_button(42, 42, tapper.message_id, &next);
        assert!(w.fake.wait_query_answered(&q.id, WAIT).await);
    }
    let notice = w
        .fake
        .wait_for_after(
            mark,
            |c| c.method == "answerCallbackQuery" && c.str_param("text").is_some_and(|t| t.contains("very fast")),
            WAIT,
        )
        .await;
    assert!(notice.is_some(), "the sixth update of a flooding tapper gets the notice");
}

#[tokio::test(flavor = "multi_thread")]
async fn reloads_racing_traffic_never_mix_knowledge_bases() {
    let w = World::with_args(&["--no-rate-limit", "--flood-max", "100000"]).await;
    let path = w.opts.knowledge.join("articles/kettlebell-swings.md");
    let version = |v: &str| {
        format!("+++\nid = \"kettlebell-swings\"\ntitle = \"Kettlebell swings {v}\"\n+++\n\nKettlebell swings build the {v} posterior chain.\n")
    };
    std::fs::write(&path, version("alpha")).unwrap();
    w.fake.send_text_and_wait(ADMIN, ADMIN, "/reload", WAIT).await.unwrap();
    let fake = Arc::new(w.fake);
    let users: Vec<_> = (0..20)
        .map(|u| {
            let fake = fake.clone();
            tokio::spawn(async move {
                let mut out = Vec::new();
                for _ in 0..10 {
                    match fake.send_text_and_wait(100 + u, 100 + u, "kettlebell swings", WAIT).await {
                        Some(r) => out.push(r.plain),
                        None => return Err(format!("user {u}: a reply was lost")),
                    }
                }
                Ok(out)
            })
        })
        .collect();
    for i in 0..10 {
        std::fs::write(&path, version(if i % 2 == 0 { "beta" } else { "alpha" })).unwrap();
        fake.send_text_and_wait(ADMIN, ADMIN, "/reload", WAIT).await.expect("reload answered");
    }
    for u in users {
        for plain in u.await.unwrap().unwrap_or_else(|e| panic!("{e}")) {
            let v = if plain.starts_with("Kettlebell swings alpha") { "alpha" } else { "beta" };
            assert!(plain.starts_with(&format!("Kettlebell swings {v}")), "{plain}");
            assert!(
                plain.contains(&format!("build the {v} posterior")),
                "title and text from one knowledge base: {plain}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_updates_replies_and_errors() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let w = World::with_args(&["--no-rate-limit", "--metrics", &addr]).await;
    w.fake.send_text_and_wait(50, 50, "knee pain", WAIT).await.unwrap();
    w.fake.send_text_and_wait(50, 50, "how to bake bread", WAIT).await.unwrap();
    w.fake.send_text_and_wait(51, 51, "/reload", WAIT).await.unwrap();
    let body = reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap();
    assert!(body.contains("articlebot_replies_total{intent=\"answer\"} 1"), "{body}");
    assert!(body.contains("articlebot_replies_total{intent=\"unknown\"} 1"), "{body}");
    assert!(body.contains("articlebot_errors_total{kind=\"not_admin\"} 1"), "{body}");
    assert!(body.contains("articlebot_reply_seconds_count"), "{body}");
    assert!(body.contains("articlebot_knowledge_articles 18"), "{body}");
    let health = reqwest::get(format!("http://{addr}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200, "serving: healthy");
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_is_503_until_the_bot_takes_updates() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let fake = articlebot_testkit::FakeTelegram::start().await;
    // getMe keeps failing: the bot has loaded its knowledge and listens for metrics, but does not serve.
    fake.add_fault(FaultRule::on("getMe", Fault::ServerError { status: 502 }).forever());
    let dir = tempfile::tempdir().unwrap();
    let opts = BotOptions::in_dir(dir.path(), &["--no-rate-limit", "--metrics", &addr]);
    let bot = BotProcess::spawn(&fake, &opts);
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Ok(r) = reqwest::get(format!("http://{addr}/healthz")).await {
            break Some(r.status());
        }
        if std::time::Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.map(|s| s.as_u16()), Some(503), "not yet connected to the Bot API: unhealthy");
    bot.kill9();
}

#[tokio::test(flavor = "multi_thread")]
async fn info_logs_have_one_line_per_update_and_no_message_text() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    w.fake.send_text_and_wait(60, 60, "my secret knee question", WAIT).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = w.bot().logs();
    let update_lines: Vec<&str> = logs.lines().filter(|l| l.contains(" update ") || l.ends_with(" update")).collect();
    assert_eq!(update_lines.len(), 1, "{logs}");
    let line = update_lines[0];
    assert!(
        line.contains("chat=60") && line.contains("intent=") && line.contains("article=") && line.contains("us="),
        "{line}"
    );
    assert!(!logs.contains("secret knee question"), "no message text at info level");
}
