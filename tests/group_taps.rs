//! Button taps in a group with Telegram's limits on (a group gets a message every 3 s): quick
//! taps on one message do not build a backlog of edits that the group's questions wait behind.

use std::time::{Duration, Instant};

use crate::bot_harness::{World, WAIT};
use articlebot_testkit::{RateLimits, TestChat};

#[tokio::test(flavor = "multi_thread")]
async fn quick_taps_in_a_group_never_hold_up_its_questions() {
    let w = World::with_args(&["--flood-max", "100"]).await;
    let group = -5300;
    w.fake.add_chat(TestChat::group(group, "Runners"));
    w.fake.enable_rate_limits(RateLimits::default());
    w.fake.send_text(group, 1, "@test_articlebot knee pain when running");
    let answer = w.fake.nth_reply(group, 0, WAIT).await.expect("the question is answered");
    let mark = w.fake.mark();
    // One member taps "Next section" twice a second for 8 s, on the button as it is shown.
    let started = Instant::now();
    let mut taps = Vec::new();
    let mut asked = None;
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    while started.elapsed() < Duration::from_secs(8) {
        tick.tick().await;
        if let Some(q) = w.fake.press_button_labeled(group, 1, answer.message_id, "Next section") {
            taps.push(q);
        }
        if asked.is_none() && started.elapsed() >= Duration::from_secs(4) {
            // Meanwhile another member asks.
            w.fake.send_text(group, 2, "@test_articlebot sportswear for running");
            asked = Some(Instant::now());
        }
    }
    let asked = asked.expect("the question was asked");
    let other = w
        .fake
        .wait_for_after(
            mark,
            |c| c.method == "sendMessage" && c.text().is_some_and(|t| t.contains("What sportswear")),
            Duration::from_secs(10),
        )
        .await;
    let other = other.expect("the other member is answered despite the taps");
    let waited = other.received_at.saturating_duration_since(asked);
    eprintln!("{} taps; the other member waited {waited:?}", taps.len());
    // At most its own slot plus one edit's slot ahead of it, with room for a loaded machine.
    assert!(waited < Duration::from_secs(8), "the question waited {waited:?} behind the taps");
    for q in &taps {
        assert!(w.fake.wait_query_answered(&q.id, WAIT).await, "every tap's spinner stops");
    }
    let edits = w.fake.calls_of("editMessageText").into_iter().filter(|c| c.seq >= mark).count();
    // Coalesced: about one per 3 s slot, however many taps; none refused as "not modified".
    assert!(edits <= 6, "{edits} edits for {} taps", taps.len());
    assert_eq!(w.fake.counters().rate_limited, 0, "Telegram never had to refuse a message");
    let not_modified = w.fake.calls_of("editMessageText").iter().filter(|c| c.error().is_some()).count();
    assert_eq!(not_modified, 0, "no edit that changed nothing was sent");
}
