//! SIGTERM while the dispatcher is busy (a chat's replies hang, its queue is full, the dispatcher
//! waits to hand on the next update): the bot stops within its deadline every time, in both
//! modes, flushes, deletes its webhook, and what it did not finish is handled after the restart.
//! (teloxide's own shutdown missed a stop requested while its loop was busy: the process ran on
//! until killed.)

use std::time::{Duration, Instant};

use crate::bot_harness::World;
use articlebot_testkit::{Fault, FaultRule};

const TRIALS: usize = 10;
/// The bot's deadline for updates in flight is 5 s; the flush and `deleteWebhook` come after.
const EXIT_WITHIN: Duration = Duration::from_secs(9);

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_during_a_busy_dispatch_stops_within_the_deadline() {
    let mut slowest = Duration::ZERO;
    for trial in 0..TRIALS {
        let webhook = trial % 2 == 1;
        let args = ["--no-rate-limit", "--flood-max", "100000"];
        let mut w = if webhook { World::webhook(&args).await.0 } else { World::with_args(&args).await };
        const BUSY: i64 = 400;
        w.fake.add_fault(FaultRule::on("sendMessage", Fault::Delay(Duration::from_secs(300))).for_chat(BUSY).forever());
        let mut last = 0;
        for _ in 0..100 {
            last = w.fake.send_text(BUSY, BUSY, "knee pain").update_id;
        }
        let other = w.fake.send_text(401, 401, "sportswear for running").update_id;
        // Busy: the dispatcher has taken what the busy chat's queue holds and waits. A setup
        // step, not a figure: on a machine busy with the other tests' bots it may take a while.
        if !w.fake.wait_delivered(70, Duration::from_secs(60)).await {
            panic!("trial {trial}: updates reach the bot (webhook {webhook})\n{}", w.bot().logs());
        }
        // Land the stop at different moments of the busy loop.
        tokio::time::sleep(Duration::from_millis(37 * trial as u64)).await;
        let mark = w.fake.mark();
        let asked = Instant::now();
        w.bot().signal("TERM");
        let status = w.bot_mut().wait_exit(EXIT_WITHIN);
        let took = asked.elapsed();
        let logs = w.bot().logs();
        let status = status.unwrap_or_else(|| {
            panic!("trial {trial} (webhook {webhook}): still running {took:?} after SIGTERM:\n{logs}")
        });
        assert!(status.success(), "trial {trial}: a clean exit: {status:?}\n{logs}");
        assert!(logs.contains("flushing the database"), "trial {trial}: the final flush: {logs}");
        if webhook {
            let deleted = w.fake.wait_for_method(mark, "deleteWebhook", Duration::from_secs(1)).await;
            assert!(deleted.is_some(), "trial {trial}: the webhook is deleted at the stop");
        }
        slowest = slowest.max(took);
        eprintln!("trial {trial} (webhook {webhook}): exited {took:?} after SIGTERM");
        w.bot = None;
        if trial == 0 || trial == TRIALS - 1 {
            // What was not finished is handled at the next start, once.
            w.fake.clear_faults();
            w.start().await;
            assert!(w.fake.nth_reply(401, 0, Duration::from_secs(30)).await.is_some(), "trial {trial}: update {other}");
            let all = w.fake.wait_for_replies(BUSY, 100, Duration::from_secs(60)).await;
            assert!(all.is_some(), "trial {trial}: all 100 (up to {last}): {}", w.fake.replies(BUSY).len());
        }
    }
    eprintln!("slowest stop: {slowest:?}");
}
