//! Updates teloxide cannot read (a lone surrogate escape in a text, a known kind with fields it
//! cannot read, fields of the wrong type), sent by the fake Bot API exactly as written: they cost
//! only themselves, never their batch or the users beside them; they do not stay in the inbox;
//! and nobody's text reaches the logs above debug level, whatever arrives.

use crate::bot_harness::{World, WAIT, WEBHOOK_SECRET};

/// Text that must never appear in a log line at info or warn level.
const MARKER: &str = "zebra-lantern-7781";

/// A private message's update as JSON text; `text` is put in as written (JSON escapes and all).
fn raw_message(user: i64, message_id: i64, text: &str) -> String {
    format!(
        r#"{{"message": {{"message_id": {message_id}, "date": 1700000000, "chat": {{"id": {user}, "type": "private", "first_name": "U"}}, "from": {{"id": {user}, "is_bot": false, "first_name": "U"}}, "text": "{text}"}}}}"#
    )
}

/// Updates teloxide cannot read as they are, with the marker in their text; their ids.
fn push_bad_updates(w: &World, user: i64) -> Vec<i64> {
    vec![
        // Readable once the surrogate is replaced: this user is still answered.
        w.fake.push_raw_update_text(&raw_message(user, 1, &format!(r"knee \ud800 pain when running {MARKER}"))),
        // A known kind whose fields teloxide cannot read (it makes it `UpdateKind::Error`).
        w.fake.push_raw_update_text(&format!(r#"{{"message": {{"bogus": "{MARKER}"}}}}"#)),
        // Fields of the wrong type, and a lone surrogate where no repair helps.
        w.fake.push_raw_update_text(&format!(r#"{{"callback_query": {{"id": 5, "from": "{MARKER} \udc00"}}}}"#)),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn one_unreadable_update_costs_only_itself_never_its_batch() {
    let mut w = World::unstarted(&["--no-rate-limit"]).await;
    // All of it waits for the bot's first getUpdates: one batch.
    w.fake.send_text(1, 1, "knee pain when running");
    let bad = push_bad_updates(&w, 2);
    w.fake.send_text(3, 3, "sportswear for running");
    w.start().await;

    for (user, starts) in [(1, "What causes knee pain"), (2, "What causes knee pain"), (3, "What sportswear")] {
        let r = w.fake.nth_reply(user, 0, WAIT).await;
        let r = r.unwrap_or_else(|| panic!("user {user} is answered; log:\n{}", w.bot().logs()));
        assert!(r.plain.starts_with(starts), "user {user}: {}", r.plain);
    }
    assert!(w.fake.wait_all_confirmed(WAIT).await, "the offset moved past every update of the batch");
    let first = &w.fake.calls_of("getUpdates")[0];
    assert_eq!(first.result().and_then(|r| r.as_array()).map(Vec::len), Some(5), "one batch: {first:?}");
    let logs = w.bot().logs();
    for id in &bad[1..] {
        assert!(
            logs.lines().any(|l| l.contains("skipping an update") && l.contains(&format!("update={id}"))),
            "the skipped update {id} is logged by id: {logs}"
        );
    }
    assert!(!logs.contains(MARKER), "no user text in the logs: {logs}");
    // The bot polls on: a later question is answered too.
    assert!(w.fake.send_text_and_wait(4, 4, "knee pain", WAIT).await.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn updates_that_cannot_be_handled_do_not_stay_in_the_inbox() {
    for webhook in [false, true] {
        let mut w = if webhook {
            World::webhook(&["--no-rate-limit"]).await.0
        } else {
            World::with_args(&["--no-rate-limit"]).await
        };
        let bad = [
            w.fake.push_raw_update_text(r#"{"message": {"bogus": true}}"#),
            w.fake.push_raw_update_text(r#"{"edited_message": {"message_id": "not a number"}}"#),
        ];
        let after = w.fake.send_text_and_wait(5, 5, "knee pain", WAIT).await;
        assert!(after.is_some(), "webhook {webhook}: the next update is handled");
        assert!(w.fake.wait_all_confirmed(WAIT).await);
        // kill -9: what is in the inbox is on disk (kept updates are flushed before they are
        // confirmed), and no stop gets a chance to tidy up.
        w.bot.take().expect("running").kill9();
        let store = articlebot_engine::SledStore::open(&w.opts.data).expect("the database opens");
        let left: Vec<i64> = store.inbox_pending().expect("inbox").into_iter().map(|(id, _)| i64::from(id)).collect();
        assert!(
            bad.iter().all(|id| !left.contains(id)),
            "webhook {webhook}: updates {bad:?} no handler can take are not left in the inbox: {left:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn user_text_is_never_logged_above_debug() {
    for level in ["info", "warn"] {
        for webhook in [false, true] {
            let mut w = World::unstarted(&["--no-rate-limit"]).await;
            w.opts.rust_log = level.into();
            let port = crate::bot_harness::free_port();
            if webhook {
                w.opts.extra_args.extend(crate::bot_harness::webhook_args(port));
            }
            w.start().await;
            push_bad_updates(&w, 20);
            w.fake.send_text(21, 21, &format!("knee pain {MARKER}"));
            assert!(w.fake.nth_reply(20, 0, WAIT).await.is_some(), "{level}, webhook {webhook}: the repaired one");
            assert!(w.fake.nth_reply(21, 0, WAIT).await.is_some(), "{level}, webhook {webhook}");
            assert!(w.fake.wait_all_confirmed(WAIT).await);
            if webhook {
                // Bodies that are no update at all, posted with the right secret.
                let url = format!("http://127.0.0.1:{port}/telegram");
                let client = reqwest::Client::new();
                for body in [
                    format!(r#"{{"update_id": 990001, "message": "{MARKER}"}}"#),
                    format!(r#"{{"update_id": 990002, "message": {{"text": "{MARKER}"#),
                    format!(r#"["{MARKER}"]"#),
                ] {
                    let status = client
                        .post(&url)
                        .header("X-Telegram-Bot-Api-Secret-Token", WEBHOOK_SECRET)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .expect("the webhook answers")
                        .status();
                    assert_eq!(status, 200, "taken, so that Telegram does not post it again for ever");
                }
            }
            let logs = w.bot().logs();
            assert!(
                logs.contains("skipping an update"),
                "{level}, webhook {webhook}: the bad updates were seen: {logs}"
            );
            assert!(!logs.contains(MARKER), "{level}, webhook {webhook}: no user text in the logs: {logs}");
        }
    }
}
