//! `/review` in Telegram end to end: users of the real `articlebot serve` (against the fake Bot
//! API) pick did-you-mean choices; an admin reviews the proposal with the card's buttons while
//! the bot runs; the file changes (or is restored byte for byte) and the next user's question
//! gets the article. Refusals: non-admins, forged and stale taps, a read-only knowledge dir.

use std::path::{Path, PathBuf};

use crate::bot_harness::{World, ADMIN, WAIT};
use articlebot_testkit::{Reply, ReplyKind};

/// What the bot's `STALE` and `ADMINS_ONLY` notices begin with.
const STALE: &str = "This card is out of date";
const ADMINS_ONLY: &str = "Sorry, only admins can review.";

/// `user` asks "calves" and taps the second did-you-mean choice; the title picked.
async fn pick_second(w: &World, user: i64) -> String {
    let r = w.fake.send_text_and_wait(user, user, "calves", WAIT).await.unwrap();
    assert!(r.plain.starts_with("I'm not sure I understood"), "{}", r.plain);
    let choice = r.buttons()[1].clone();
    let title = choice.text.trim_end_matches('…').to_string();
    w.fake.press_button(user, user, r.message_id, choice.callback_data.as_deref().unwrap());
    let answer = w.fake.nth_reply(user, 1, WAIT).await.unwrap();
    assert!(answer.plain.starts_with(&title), "{}", answer.plain);
    title
}

/// The admin's next reply (sent or edited) after `act`.
async fn admin_reply_after(w: &World, act: impl FnOnce()) -> Reply {
    let n = w.fake.replies(ADMIN).len();
    act();
    w.fake.nth_reply(ADMIN, n, WAIT).await.expect("the admin got a reply")
}

/// Taps `label` on the card and returns the card as edited.
async fn tap(w: &World, card: &Reply, label: &str) -> Reply {
    let r = admin_reply_after(w, || {
        w.fake.press_button_labeled(ADMIN, ADMIN, card.message_id, label).expect("the button");
    })
    .await;
    assert_eq!((r.kind, r.message_id), (ReplyKind::Edited, card.message_id), "edited in place: {}", r.plain);
    r
}

/// The notice on the answer to the tap with `data`, by `user` on `message` (waited for).
async fn tap_notice(w: &World, user: i64, message: i32, data: &str) -> String {
    let q = w.fake.press_button(ADMIN, user, message, data);
    assert!(w.fake.wait_query_answered(&q.id, WAIT).await, "{data}: the tap is answered");
    let call =
        w.fake.calls_of("answerCallbackQuery").into_iter().find(|c| c.str_param("callback_query_id") == Some(&q.id));
    call.and_then(|c| c.str_param("text").map(str::to_string)).unwrap_or_default()
}

/// The article file whose title starts with `title` (a button's label may be cut), and the
/// shipped original of it.
fn article_file(knowledge: &Path, title: &str) -> (PathBuf, PathBuf) {
    let file = std::fs::read_dir(knowledge.join("articles"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| std::fs::read_to_string(p).unwrap().contains(&format!("title = \"{title}")))
        .expect("an article file with the title");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge/articles").join(file.file_name().unwrap());
    (file, shipped)
}

fn files_with_calves(knowledge: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(knowledge.join("articles"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| std::fs::read_to_string(p).unwrap().contains("\"calves\""))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_reviews_in_telegram_and_the_next_user_gets_the_article() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    let title = pick_second(&w, 3001).await;
    assert_eq!(pick_second(&w, 3002).await, title);
    let (file, shipped) = article_file(&w.opts.knowledge, &title);

    let card = admin_reply_after(&w, || {
        w.fake.send_text(ADMIN, ADMIN, "/review");
    })
    .await;
    assert!(card.plain.contains("(1 to review)"), "{}", card.plain);
    assert!(card.plain.contains("Question: “calves”"), "{}", card.plain);
    assert!(card.plain.contains(&format!("Proposed article: {title}")), "{}", card.plain);
    assert!(card.plain.contains("Evidence: 2 user(s): 2 pick(s), 0 👍, 0 👎, 0 rephrase(s)"), "{}", card.plain);
    let buttons = card.buttons();
    let labels: Vec<&str> = buttons.iter().map(|b| b.text.as_str()).collect();
    assert_eq!((labels[0], labels[1], *labels.last().unwrap()), ("✅ Add", "❌ Reject", "⏭ Skip"), "{labels:?}");
    let others: Vec<String> = labels.iter().filter_map(|l| l.strip_prefix("↪ ")).map(str::to_string).collect();
    assert!(!others.is_empty() && !others.contains(&title), "{labels:?}");
    for b in &buttons {
        let data = b.callback_data.as_deref().unwrap();
        assert!(data.len() <= 64 && !data.contains("calves"), "compact, no question text: {data}");
    }

    // ⏭: the only card is skipped; a new /review shows it again.
    let skipped = tap(&w, &card, "⏭ Skip").await;
    assert!(skipped.plain.starts_with("⏭ Skipped \"calves\""), "{}", skipped.plain);
    assert!(skipped.plain.ends_with("Nothing left to review."), "{}", skipped.plain);
    assert!(skipped.buttons().is_empty());
    let card = admin_reply_after(&w, || {
        w.fake.send_text(ADMIN, ADMIN, "/review");
    })
    .await;
    assert!(card.plain.contains("Question: “calves”"), "{}", card.plain);
    let add = card.button_data("✅ Add").unwrap();

    // ✅: written into the file, reloaded; the next user asking gets the article.
    let added = tap(&w, &card, "✅ Add").await;
    assert!(added.plain.starts_with(&format!("✅ Added \"calves\" to “{title}")), "{}", added.plain);
    assert!(added.plain.contains("The next user asking it gets this article."), "{}", added.plain);
    assert!(added.plain.ends_with("Nothing left to review."), "{}", added.plain);
    assert!(std::fs::read_to_string(&file).unwrap().contains("questions = [\"calves\"]"));
    let r = w.fake.send_text_and_wait(3003, 3003, "calves", WAIT).await.unwrap();
    assert!(r.plain.starts_with(&title), "answered now: {}", r.plain);

    // The card's ✅ again (a stale card): nothing happens, politely.
    assert!(tap_notice(&w, ADMIN, card.message_id, &add).await.starts_with(STALE));
    assert_eq!(files_with_calves(&w.opts.knowledge), vec![file.clone()]);

    // /review undo: the file byte for byte as shipped, the question unanswered again.
    let undone = admin_reply_after(&w, || {
        w.fake.send_text(ADMIN, ADMIN, "/review undo");
    })
    .await;
    assert!(undone.plain.contains("↩ Undone: \"calves\" is no longer a question of"), "{}", undone.plain);
    assert_eq!(std::fs::read(&file).unwrap(), std::fs::read(&shipped).unwrap(), "byte for byte as shipped");
    let r = w.fake.send_text_and_wait(3004, 3004, "calves", WAIT).await.unwrap();
    assert!(r.plain.starts_with("I'm not sure I understood"), "unanswered again: {}", r.plain);

    // ↪: the question goes to the other article instead.
    let card = admin_reply_after(&w, || {
        w.fake.send_text(ADMIN, ADMIN, "/review");
    })
    .await;
    let other = &others[0];
    let moved = tap(&w, &card, &format!("↪ {other}")).await;
    assert!(
        moved.plain.starts_with(&format!("✅ Added \"calves\" to “{}", other.trim_end_matches('…'))),
        "{}",
        moved.plain
    );
    let (other_file, other_shipped) = article_file(&w.opts.knowledge, other.trim_end_matches('…'));
    assert_eq!(files_with_calves(&w.opts.knowledge), vec![other_file.clone()]);
    let undone = admin_reply_after(&w, || {
        w.fake.send_text(ADMIN, ADMIN, "/review undo");
    })
    .await;
    assert!(undone.plain.contains("↩ Undone"), "{}", undone.plain);
    assert_eq!(std::fs::read(&other_file).unwrap(), std::fs::read(&other_shipped).unwrap());

    // ❌: never proposed again, however many more users pick it.
    let card = admin_reply_after(&w, || {
        w.fake.send_text(ADMIN, ADMIN, "/review");
    })
    .await;
    let rejected = tap(&w, &card, "❌ Reject").await;
    assert!(rejected.plain.starts_with("❌ Rejected: \"calves\" is not proposed for"), "{}", rejected.plain);
    assert!(rejected.plain.ends_with("Nothing left to review."), "{}", rejected.plain);
    for user in [3005, 3006] {
        assert_eq!(pick_second(&w, user).await, title);
    }
    let again = admin_reply_after(&w, || {
        w.fake.send_text(ADMIN, ADMIN, "/review");
    })
    .await;
    assert_eq!(again.plain, "Nothing left to review.");
    assert!(files_with_calves(&w.opts.knowledge).is_empty());
    let nothing = admin_reply_after(&w, || {
        w.fake.send_text(ADMIN, ADMIN, "/review undo");
    })
    .await;
    assert!(nothing.plain.contains("may be proposed for"), "the rejection is undone: {}", nothing.plain);
}

#[tokio::test(flavor = "multi_thread")]
async fn review_is_refused_to_non_admins_forged_taps_and_a_read_only_knowledge_dir() {
    use std::os::unix::fs::PermissionsExt;
    const USER: i64 = 3101;
    let w = World::with_args(&["--no-rate-limit"]).await;
    let title = pick_second(&w, USER).await;
    let (file, shipped) = article_file(&w.opts.knowledge, &title);

    let r = w.fake.send_text_and_wait(USER, USER, "/review", WAIT).await.unwrap();
    assert_eq!(r.plain, "Sorry, this command is for admins only.");
    let r = w.fake.send_text_and_wait(USER, USER, "/review undo", WAIT).await.unwrap();
    assert_eq!(r.plain, "Sorry, this command is for admins only.");

    let card = admin_reply_after(&w, || {
        w.fake.send_text(ADMIN, ADMIN, "/review");
    })
    .await;
    let add = card.button_data("✅ Add").unwrap();
    let id = add.strip_prefix("1:r:a:").expect("the proposal id").to_string();
    // A non-admin tapping the admin's card (a forwarded card, or forged data).
    assert_eq!(tap_notice(&w, USER, card.message_id, &add).await, ADMINS_ONLY);
    // Forged by an admin: a made-up id, another article than the card offers, bad shapes.
    let unknown_key = "1:r:o:".to_string() + &id + ":AAAAAAAA";
    for forged in ["1:r:a:0123456789abcdef", unknown_key.as_str(), "1:r:x:0000000000000000"] {
        assert!(tap_notice(&w, ADMIN, card.message_id, forged).await.starts_with(STALE), "{forged}");
    }
    for malformed in ["1:r:a:calves", "1:r:a:", "1:r:o:0123456789abcdef"] {
        let notice = tap_notice(&w, ADMIN, card.message_id, malformed).await;
        assert!(!notice.is_empty(), "{malformed}: a polite notice");
    }
    assert_eq!(std::fs::read(&file).unwrap(), std::fs::read(&shipped).unwrap(), "nothing changed");
    assert_eq!(w.fake.replies(ADMIN).len(), 1, "the card was not touched");

    // A read-only knowledge dir: said clearly on the card, nothing changed, the card stays.
    let articles = w.opts.knowledge.join("articles");
    let set = |mode| std::fs::set_permissions(&articles, std::fs::Permissions::from_mode(mode)).unwrap();
    set(0o555);
    let failed = tap(&w, &card, "✅ Add").await;
    set(0o755);
    assert!(failed.plain.starts_with("⚠ Not added:"), "{}", failed.plain);
    assert!(failed.plain.contains("read-only") && failed.plain.contains("nothing was changed"), "{}", failed.plain);
    assert!(failed.plain.contains("Question: “calves”") && failed.button_data("✅ Add").is_some(), "{}", failed.plain);
    assert_eq!(std::fs::read(&file).unwrap(), std::fs::read(&shipped).unwrap());
    let r = w.fake.send_text_and_wait(3102, 3102, "calves", WAIT).await.unwrap();
    assert!(r.plain.starts_with("I'm not sure I understood"), "{}", r.plain);
    // Writable again: the same card works.
    let added = tap(&w, &failed, "✅ Add").await;
    assert!(added.plain.starts_with("✅ Added"), "{}", added.plain);

    // In a group, even an admin's /review is refused (cards show what people asked).
    let group = -5005;
    let r = w.fake.send_text_and_wait(group, ADMIN, "/review", WAIT).await.unwrap();
    assert_eq!(r.plain, "Review cards show what people asked: send /review to me in a private chat.");
}
