//! The owner's commands (`stats`, `unanswered`, `export-learned`, `review`) against the real
//! `articlebot serve`: through its admin socket while it runs (sled's lock keeps everyone else
//! out of the database), opened directly once it is stopped, with the same output both ways; a
//! stale or bad socket is one clear error, and a stalling client does not hold the bot up.

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::time::{Duration, Instant};

use articlebot_testkit::ReplyKind;

use crate::bot_harness::{World, ADMIN, WAIT};

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs an owner command that must succeed; its stdout.
fn ok(args: &[&str], w: &World) -> String {
    let out = w.owner_command(args, "");
    assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
    text(&out.stdout)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// The width and height of a PNG, every chunk's CRC checked and the chunks in order (IHDR
/// first, image data, IEND last).
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "the PNG signature");
    let mut at = 8;
    let mut kinds = Vec::new();
    while at < png.len() {
        let len = u32::from_be_bytes(png[at..at + 4].try_into().unwrap()) as usize;
        let body = &png[at + 4..at + 8 + len];
        let crc = u32::from_be_bytes(png[at + 8 + len..at + 12 + len].try_into().unwrap());
        assert_eq!(crc32(body), crc, "CRC of chunk {}", String::from_utf8_lossy(&body[..4]));
        kinds.push(String::from_utf8_lossy(&body[..4]).into_owned());
        at += 12 + len;
    }
    assert_eq!(at, png.len(), "nothing after the last chunk");
    assert_eq!(kinds.first().map(String::as_str), Some("IHDR"), "{kinds:?}");
    assert_eq!(kinds.last().map(String::as_str), Some("IEND"), "{kinds:?}");
    assert!(kinds.iter().any(|k| k == "IDAT"), "{kinds:?}");
    (u32::from_be_bytes(png[16..20].try_into().unwrap()), u32::from_be_bytes(png[20..24].try_into().unwrap()))
}

/// Two users pick the same did-you-mean choice for "calves", a third finds none fits: a
/// proposal and an unanswered question. The picked article's title.
async fn teach(w: &World) -> String {
    let mut picked = String::new();
    for user in [3001, 3002] {
        let r = w.fake.send_text_and_wait(user, user, "calves", WAIT).await.unwrap();
        assert!(r.plain.starts_with("I'm not sure I understood"), "{}", r.plain);
        let choice = &r.buttons()[1];
        picked = choice.text.trim_end_matches('…').to_string();
        w.fake.press_button(user, user, r.message_id, choice.callback_data.as_deref().unwrap());
        w.fake.nth_reply(user, 1, WAIT).await.unwrap();
    }
    let r = w.fake.send_text_and_wait(3003, 3003, "calves", WAIT).await.unwrap();
    w.fake.press_button_labeled(3003, 3003, r.message_id, "None of these").expect("the button");
    w.fake.nth_reply(3003, 1, WAIT).await.unwrap();
    picked
}

/// The commands whose output must not depend on the way the database was reached.
const READERS: &[&[&str]] = &[
    &["stats"],
    &["stats", "--json"],
    &["unanswered"],
    &["unanswered", "--json"],
    &["unanswered", "--csv"],
    &["export-learned"],
];

#[tokio::test(flavor = "multi_thread")]
async fn owner_commands_work_while_the_bot_serves_and_print_the_same_once_it_stopped() {
    let mut w = World::with_args(&["--no-rate-limit"]).await;
    let picked = teach(&w).await;

    let sock = w.opts.data.join("admin.sock");
    let meta = std::fs::symlink_metadata(&sock).expect("the running bot has an admin socket");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "owner only");

    // What the store holds, through the socket.
    let stats: serde_json::Value = serde_json::from_str(&ok(&["stats", "--json"], &w)).unwrap();
    assert_eq!(stats["questions_total"], 3, "{stats}");
    assert_eq!(stats["suggested_total"], 3, "{stats}");
    assert_eq!(stats["users"], 3, "{stats}");
    assert_eq!(stats["days"].as_array().map(Vec::len), Some(30), "{stats}");
    assert_eq!(stats["days"][29]["suggested"], 3, "today's bar: {stats}");
    let shown = ok(&["stats"], &w);
    assert!(shown.starts_with("Statistics\nUsers: 3\n"), "{shown}");
    assert!(shown.contains("Questions in total: 3 (answered 0%, did-you-mean 3,"), "{shown}");
    // /stats is a chart with the text the console prints as its caption.
    let mark = w.fake.mark();
    let in_telegram = w.fake.send_text_and_wait(ADMIN, ADMIN, "/stats", WAIT).await.unwrap();
    assert_eq!(in_telegram.kind, ReplyKind::Photo);
    assert_eq!(in_telegram.plain.trim_end(), shown.trim_end(), "the caption is the console's text");
    let photo = w.fake.calls_of("sendPhoto").into_iter().find(|c| c.seq >= mark).expect("a sendPhoto call");
    let file = photo.param("photo").expect("an uploaded photo");
    assert_eq!(file["file_name"], "stats.png");
    assert_eq!(png_size(&unhex(file["hex"].as_str().unwrap())), (800, 480));
    // And the console draws the same chart.
    let png = w.opts.data.with_file_name("stats.png");
    ok(&["stats", "--png", png.to_str().unwrap()], &w);
    assert_eq!(png_size(&std::fs::read(&png).unwrap()), (800, 480));
    let csv = ok(&["unanswered", "--csv"], &w);
    assert!(csv.starts_with("\"question\",\"count\",\"last_asked\",\"normalized\"\r\n"), "{csv}");
    assert!(csv.contains("\r\n\"calves\",\"1\","), "{csv}");
    let list: serde_json::Value = serde_json::from_str(&ok(&["unanswered", "--json"], &w)).unwrap();
    assert_eq!(list[0]["example"], "calves", "{list}");
    assert_eq!(ok(&["export-learned"], &w), "", "nothing reviewed yet");

    // Review through the socket: the running bot writes the question and reloads itself.
    let out = w.owner_command(&["review"], "a\n");
    let review = text(&out.stdout);
    assert!(out.status.success(), "{review}\n{}", text(&out.stderr));
    assert!(review.contains("Question: \"calves\""), "{review}");
    assert!(review.contains("Evidence: 2 user(s): 2 pick(s), 0 👍, 0 👎, 0 rephrase(s)"), "{review}");
    assert!(review.contains("Added \"calves\" to ") && review.contains("now: yes."), "{review}");
    let r = w.fake.send_text_and_wait(3004, 3004, "calves", WAIT).await.unwrap();
    assert!(r.plain.starts_with(&picked), "the running bot answers it now: {}", r.plain);
    let learned = ok(&["export-learned"], &w);
    let line: serde_json::Value = serde_json::from_str(learned.trim_end()).expect("one JSON line");
    assert_eq!(line["question"], "calves");

    // An undo through the socket takes it back out, in the running bot too.
    let out = w.owner_command(&["review"], "u\nq\n");
    assert!(text(&out.stdout).contains("Undone: \"calves\""), "{}", text(&out.stdout));
    let r = w.fake.send_text_and_wait(3005, 3005, "calves", WAIT).await.unwrap();
    assert!(r.plain.starts_with("I'm not sure I understood"), "not answered outright any more: {}", r.plain);
    let out = w.owner_command(&["review"], "a\n");
    assert!(text(&out.stdout).contains("now: yes."), "{}", text(&out.stdout));

    let through_socket: Vec<String> = READERS.iter().map(|args| ok(args, &w)).collect();
    let logs = w.bot().logs();
    assert!(logs.contains("admin socket: request") && logs.contains("cmd=\"accept\""), "{logs}");
    assert!(!logs.lines().any(|l| l.contains("admin socket") && l.contains("calves")), "no user text: {logs}");

    let bot = w.bot.take().unwrap();
    assert!(bot.terminate().success());
    assert!(std::fs::symlink_metadata(&sock).is_err(), "a clean stop removes the socket");
    for (args, before) in READERS.iter().zip(&through_socket) {
        assert_eq!(&ok(args, &w), before, "{args:?}: the same output with the database opened directly");
    }
}

/// A listener at the socket's path that answers every connection with `reply`.
fn fake_socket(path: &std::path::Path, reply: &'static [u8]) -> std::thread::JoinHandle<()> {
    let _ = std::fs::remove_file(path);
    let listener = std::os::unix::net::UnixListener::bind(path).unwrap();
    std::thread::spawn(move || {
        if let Ok((mut s, _)) = listener.accept() {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf);
            let _ = s.write_all(reply);
        }
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_or_foreign_socket_is_one_clear_error_and_a_killed_bots_socket_is_replaced() {
    let mut w = World::with_args(&["--no-rate-limit"]).await;
    w.fake.send_text_and_wait(3101, 3101, "calves", WAIT).await.unwrap();
    let sock = w.opts.data.join("admin.sock");
    w.bot.take().unwrap().kill9();
    assert!(std::fs::symlink_metadata(&sock).is_ok(), "a killed bot leaves its socket file");

    // The database locked by something else while the killed bot's file is still there.
    {
        let _lock = articlebot_engine::SledStore::open(&w.opts.data).expect("the database opens");
        let out = w.owner_command(&["stats"], "");
        let err = text(&out.stderr);
        assert!(!out.status.success());
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: nothing answers on the admin socket") && err.contains("stale"), "{err}");

        let garbage = fake_socket(&sock, b"HTTP/1.1 400 Bad Request\r\n\r\n");
        let out = w.owner_command(&["unanswered", "--csv"], "");
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("error: the admin socket") && err.contains("not articlebot's"), "{err}");
        garbage.join().unwrap();

        let refusal = fake_socket(&sock, b"{\"error\":\"no such thing\"}\n");
        let out = w.owner_command(&["export-learned"], "");
        assert_eq!(text(&out.stderr), "error: no such thing\n");
        refusal.join().unwrap();

        std::fs::remove_file(&sock).unwrap();
        let out = w.owner_command(&["stats"], "");
        let err = text(&out.stderr);
        assert!(err.contains("is in use (is the bot running?)") && err.contains("no admin socket"), "{err}");
    }

    // A socket file left by a killed bot is replaced at the next start.
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    w.start().await;
    let stats: serde_json::Value = serde_json::from_str(&ok(&["stats", "--json"], &w)).unwrap();
    assert_eq!(stats["questions_total"], 1, "{stats}");

    // A client that sends nothing, or too much, holds nothing up.
    let mut silent = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    let mut flood = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    let _ = flood.write_all(&vec![b'x'; 100 * 1024]);
    let started = Instant::now();
    assert!(ok(&["stats"], &w).contains("Users: 1"));
    assert!(started.elapsed() < Duration::from_secs(4), "not queued behind the silent client");
    let mut answer = String::new();
    let _ = flood.read_to_string(&mut answer);
    assert!(answer.contains("\"error\"") && answer.contains("at most 65536 bytes"), "{answer}");
    let r = w.fake.send_text_and_wait(3102, 3102, "calves", WAIT).await.unwrap();
    assert!(!r.plain.is_empty());
    silent.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut answer = String::new();
    let _ = silent.read_to_string(&mut answer);
    assert!(answer.contains("no request line within"), "the silent client is let go: {answer}");

    // At most four requests at a time: a fifth is told so at once, not queued.
    let held: Vec<_> = (0..4).map(|_| std::os::unix::net::UnixStream::connect(&sock).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(200));
    let out = w.owner_command(&["stats"], "");
    let err = text(&out.stderr);
    assert_eq!(err, "error: the bot is busy with 4 owner requests; try again\n");
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    assert!(ok(&["stats"], &w).contains("Users: 2"), "free again once they are gone");

    // A request that is not one.
    let mut bad = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    bad.write_all(b"{\"cmd\":\"drop-tables\"}\n").unwrap();
    let mut answer = String::new();
    bad.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("{\"error\":\"not a request:"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_too_long_for_a_caption_follow_the_chart_as_a_message() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    // Ten long questions: the top questions alone are longer than a caption may be.
    for i in 0..10 {
        let user = 3200 + i;
        let q = format!(
            "zebra{i} quantum photosynthesis cryptocurrency metamorphosis thermodynamics paleontology \
             astrophysics orchestration choreography calligraphy"
        );
        w.fake.send_text_and_wait(user, user, &q, WAIT).await.unwrap();
    }
    let photo = w.fake.send_text_and_wait(ADMIN, ADMIN, "/stats", WAIT).await.unwrap();
    assert_eq!((photo.kind, photo.plain.as_str()), (ReplyKind::Photo, "Statistics"));
    let text = w.fake.nth_reply(ADMIN, 1, WAIT).await.expect("the text after the chart");
    assert_eq!(text.kind, ReplyKind::Sent);
    assert!(text.plain.starts_with("Statistics\nUsers: 10") && text.plain.contains("zebra9"), "{}", text.plain);
    assert!(text.plain.encode_utf16().count() > 1024, "{}", text.plain.len());
}
