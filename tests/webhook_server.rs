//! The webhook server against slow, idle and too many clients, and kill -9 right after it said
//! 200: the real `articlebot serve` in webhook mode, the fake Bot API posting to it.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::bot_harness::{World, WAIT};
use articlebot_testkit::{Fault, FaultRule};

/// The bot's header (and idle) timeout is 10 s.
const CLOSED_WITHIN: Duration = Duration::from_secs(16);

/// Reads until the server closes the connection; how long that took, or `None` if it was still
/// open after `limit`.
async fn closed_after(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => {}
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_and_half_sent_headers_are_closed() {
    let (w, port) = World::webhook(&["--no-rate-limit"]).await;
    let addr = format!("127.0.0.1:{port}");
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    let mut half = TcpStream::connect(&addr).await.unwrap();
    half.write_all(b"POST /telegram HTTP/1.1\r\nHost: x\r\nContent-Le").await.unwrap();
    let mut kept_alive = TcpStream::connect(&addr).await.unwrap();
    kept_alive.write_all(b"POST /telegram HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}").await.unwrap();
    let mut stalled_body = TcpStream::connect(&addr).await.unwrap();
    stalled_body
        .write_all(b"POST /telegram HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\nX-Telegram-Bot-Api-Secret-Token: s3cret_token-1\r\n\r\n{")
        .await
        .unwrap();
    let (a, b, c, d) = tokio::join!(
        closed_after(&mut silent, CLOSED_WITHIN),
        closed_after(&mut half, CLOSED_WITHIN),
        closed_after(&mut kept_alive, CLOSED_WITHIN),
        closed_after(&mut stalled_body, CLOSED_WITHIN),
    );
    assert!(a.is_some(), "a connection that never sends anything is closed");
    assert!(b.is_some(), "a connection whose headers stop halfway is closed");
    assert!(c.is_some(), "a kept-alive connection left idle after its request is closed");
    assert!(d.is_some(), "a request whose body stalls is ended");
    // Real updates still come through.
    assert!(w.fake.send_text_and_wait(1, 1, "knee pain", WAIT).await.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn many_idle_connections_cannot_keep_updates_out() {
    let mut w = World::unstarted(&["--no-rate-limit"]).await;
    let port = crate::bot_harness::free_port();
    w.opts.extra_args.extend(crate::bot_harness::webhook_args(port));
    // Fewer file descriptors than the idle connections below: before the connection cap they
    // ran the bot out of them ("Too many open files"), and Telegram's requests were refused.
    w.opts.fd_limit = Some(128);
    w.start().await;
    // The crowd comes before Telegram's first post, so that its connection is a new one and
    // must be accepted behind them.
    let addr = format!("127.0.0.1:{port}");
    let mut idle = Vec::new();
    for _ in 0..200 {
        idle.push(TcpStream::connect(&addr).await.expect("connect"));
    }
    let asked = Instant::now();
    let r = w.fake.send_text_and_wait(2, 2, "sportswear for running", Duration::from_secs(8)).await;
    assert!(r.is_some(), "an update gets through 200 idle connections; log:\n{}", w.bot().logs());
    eprintln!("answered {:?} after the question, with 200 idle connections open", asked.elapsed());
    assert!(w.bot_mut().running());
    drop(idle);
}

/// The update Telegram got a 200 for is on disk: a kill -9 right after loses nothing, even when
/// the dispatcher is too busy to take it (teloxide's webhook answered 200 as soon as the update
/// was in a queue in memory).
#[tokio::test(flavor = "multi_thread")]
async fn every_update_the_webhook_took_survives_a_kill() {
    let (mut w, _) = World::webhook(&["--no-rate-limit", "--flood-max", "100000"]).await;
    const BUSY: i64 = 300;
    // The busy chat's replies hang: its worker and queue fill up, then the dispatcher blocks.
    w.fake.add_fault(FaultRule::on("sendMessage", Fault::Delay(Duration::from_secs(300))).for_chat(BUSY).forever());
    for _ in 0..80 {
        w.fake.send_text(BUSY, BUSY, "knee pain");
    }
    let others: Vec<i64> = (301..306).collect();
    for &u in &others {
        w.fake.send_text(u, u, "sportswear for running");
    }
    assert!(w.fake.wait_all_confirmed(Duration::from_secs(30)).await, "the webhook took every update");
    w.bot.take().expect("running").kill9();
    w.fake.clear_faults();
    w.start().await;
    for &u in &others {
        let r = w.fake.nth_reply(u, 0, Duration::from_secs(20)).await;
        assert!(r.is_some(), "user {u}'s update, taken before the kill, is answered after it");
    }
    let busy = w.fake.wait_for_replies(BUSY, 80, Duration::from_secs(30)).await;
    assert!(busy.is_some(), "all 80 of the busy chat: {}", w.fake.replies(BUSY).len());
}
