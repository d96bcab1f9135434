//! /unanswered's groups end to end: alike unanswered questions are one group with a 📝 button;
//! its card adds all of them to an article the matcher offers (the next user asking gets it) or
//! puts them on the to-do list; taps by non-admins, forged articles and gone groups change
//! nothing; review's undo takes a decision back.

use crate::bot_harness::{World, ADMIN, WAIT};
use articlebot_testkit::{Reply, ReplyKind};

/// `user` asks `q` and taps "None of these" under the choices: the question is unanswered.
async fn none_of_these(w: &World, user: i64, q: &str) {
    let r = w.fake.send_text_and_wait(user, user, q, WAIT).await.unwrap();
    assert!(r.plain.starts_with("I'm not sure I understood"), "{q}: {}", r.plain);
    w.fake.press_button_labeled(user, user, r.message_id, "None of these").expect("the button");
    w.fake.nth_reply(user, 1, WAIT).await.unwrap();
}

async fn admin_reply_after(w: &World, act: impl FnOnce()) -> Reply {
    let n = w.fake.replies(ADMIN).len();
    act();
    w.fake.nth_reply(ADMIN, n, WAIT).await.expect("the admin got a reply")
}

async fn notice(w: &World, user: i64, message: i32, data: &str) -> String {
    let q = w.fake.press_button(user, user, message, data);
    assert!(w.fake.wait_query_answered(&q.id, WAIT).await, "{data}: the tap is answered");
    let call =
        w.fake.calls_of("answerCallbackQuery").into_iter().find(|c| c.str_param("callback_query_id") == Some(&q.id));
    call.and_then(|c| c.str_param("text").map(str::to_string)).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_of_unanswered_questions_goes_to_an_article_or_the_to_do_list() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    none_of_these(&w, 4001, "calves").await;
    none_of_these(&w, 4002, "my calves").await;
    let z = w.fake.send_text_and_wait(4003, 4003, "where can I park my zeppelin", WAIT).await.unwrap();
    assert!(z.plain.starts_with("Sorry, I don't have an article about that"), "{}", z.plain);

    let list = w.fake.send_text_and_wait(ADMIN, ADMIN, "/unanswered", WAIT).await.unwrap();
    // Both read as one question (the same content words): asked twice.
    assert!(list.plain.contains("1. my calves — asked 2×"), "{}", list.plain);
    let open = list.button_data("📝 1").expect("a button per group");
    assert!(list.button_data("📝 2").is_some(), "{:?}", list.buttons());

    // Not an admin: nothing opens. A forged group id: gone.
    assert_eq!(notice(&w, 4001, list.message_id, &open).await, "Sorry, only admins can review.");
    let forged = "1:g:o:0123456789abcdef";
    assert!(notice(&w, ADMIN, list.message_id, forged).await.starts_with("This group is not on the list"));

    let card = admin_reply_after(&w, || {
        w.fake.press_button(ADMIN, ADMIN, list.message_id, &open);
    })
    .await;
    assert_eq!(card.kind, ReplyKind::Sent, "a card of its own: {}", card.plain);
    assert!(card.plain.contains("• my calves (2)"), "{}", card.plain);
    let target = card.buttons().into_iter().find(|b| b.text.starts_with("↪ ")).expect("an article to add to");
    let title = target.text.trim_start_matches("↪ ").trim_end_matches('…').to_string();
    // An article the card did not offer is refused.
    let data = target.callback_data.clone().unwrap();
    let forged = format!("{}:AAAAAAAA", &data[..data.rfind(':').unwrap()]);
    assert!(notice(&w, ADMIN, card.message_id, &forged).await.starts_with("This group is not on the list"));

    let done = admin_reply_after(&w, || {
        w.fake.press_button(ADMIN, ADMIN, card.message_id, &data);
    })
    .await;
    assert_eq!((done.kind, done.message_id), (ReplyKind::Edited, card.message_id));
    assert!(done.plain.starts_with("✅ Added 1 question(s) to “"), "{}", done.plain);
    let r = w.fake.send_text_and_wait(4004, 4004, "my calves", WAIT).await.unwrap();
    assert!(r.plain.starts_with(&title), "answered with the article now: {}", r.plain);

    // The zeppelin goes on the to-do list; the list shows it there and not among the groups.
    let list = w.fake.send_text_and_wait(ADMIN, ADMIN, "/unanswered", WAIT).await.unwrap();
    assert!(!list.plain.contains("calves"), "{}", list.plain);
    let card = admin_reply_after(&w, || {
        w.fake.press_button(ADMIN, ADMIN, list.message_id, &list.button_data("📝 1").unwrap());
    })
    .await;
    assert!(card.plain.contains("zeppelin"), "{}", card.plain);
    let done = admin_reply_after(&w, || {
        w.fake.press_button_labeled(ADMIN, ADMIN, card.message_id, "✍ Write an article").expect("the button");
    })
    .await;
    assert!(done.plain.starts_with("✍ On the to-do list"), "{}", done.plain);
    let list = w.fake.send_text_and_wait(ADMIN, ADMIN, "/unanswered", WAIT).await.unwrap();
    assert!(
        list.plain.contains("To write (1)") && list.plain.contains("✍ where can I park my zeppelin"),
        "{}",
        list.plain
    );
    assert!(!list.plain.contains("1. where can I park"), "{}", list.plain);

    // Review's undo takes the mark back: the question is a group again.
    let undone = w.fake.send_text_and_wait(ADMIN, ADMIN, "/review undo", WAIT).await.unwrap();
    assert!(undone.plain.contains("off the to-do list again"), "{}", undone.plain);
    let list = w.fake.send_text_and_wait(ADMIN, ADMIN, "/unanswered", WAIT).await.unwrap();
    assert!(
        list.plain.contains("1. where can I park my zeppelin") && !list.plain.contains("To write"),
        "{}",
        list.plain
    );
}
