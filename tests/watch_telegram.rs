//! "Tell me when there's an answer" end to end: users of the real `articlebot serve` (against
//! the fake Bot API) wait for an answer to a question the knowledge base had none for; after a
//! reload (or a reviewed question) makes it answerable, each gets the answer once; /forget and
//! forged taps keep anyone else from being told.

use std::time::Duration;

use crate::bot_harness::{World, ADMIN, WAIT};
use articlebot_testkit::Reply;

const QUESTION: &str = "how do I bake sourdough bread?";
const ADDED: &str = "OK: I'll send you the answer once I have one.";
const ALREADY: &str = "You're on the list already: I'll send you the answer once I have one.";
const STALE: &str = "That question is no longer the last one you asked. Ask it again to wait for its answer.";

/// The notice on the answer to `user`'s tap of `data` on `message` (waited for).
async fn tap_notice(w: &World, user: i64, message: i32, data: &str) -> String {
    let q = w.fake.press_button(user, user, message, data);
    assert!(w.fake.wait_query_answered(&q.id, WAIT).await, "{data}: the tap is answered");
    let call =
        w.fake.calls_of("answerCallbackQuery").into_iter().find(|c| c.str_param("callback_query_id") == Some(&q.id));
    call.and_then(|c| c.str_param("text").map(str::to_string)).unwrap_or_default()
}

/// `user` asks the question and gets the don't-know with the button; its data.
async fn dont_know(w: &World, user: i64) -> (Reply, String) {
    let r = w.fake.send_text_and_wait(user, user, QUESTION, WAIT).await.unwrap();
    assert!(r.plain.starts_with("Sorry, I don't have an article about that"), "{}", r.plain);
    let data = r.button_data("🔔 Tell me when there's an answer").expect("the button under the don't-know");
    assert!(data.len() <= 64 && !data.contains("bread"), "no question text in the button: {data}");
    (r, data)
}

fn sourdough_article() -> String {
    "+++\nid = \"how-to-bake-sourdough-bread\"\ntitle = \"How to bake sourdough bread\"\n\
     questions = [\"how do I bake sourdough bread\"]\n+++\n\n\
     Feed the starter the day before, knead, let the dough rise overnight and bake it hot.\n"
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn waiting_users_get_the_answer_once_after_a_reload_and_forget_stops_it() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    let (waiter, forgetter, other) = (4001, 4002, 4003);
    let (r, data) = dont_know(&w, waiter).await;
    assert_eq!(tap_notice(&w, waiter, r.message_id, &data).await, ADDED);
    assert_eq!(tap_notice(&w, waiter, r.message_id, &data).await, ALREADY);
    let (r, data) = dont_know(&w, forgetter).await;
    assert_eq!(tap_notice(&w, forgetter, r.message_id, &data).await, ADDED);
    let forgot = w.fake.send_text_and_wait(forgetter, forgetter, "/forget", WAIT).await.unwrap();
    assert!(!forgot.plain.is_empty());
    // Someone who never tapped, and a tap for a question the user did not ask last.
    let (r, data) = dont_know(&w, other).await;
    assert_eq!(tap_notice(&w, other, r.message_id, "1:w:0123456789abcdef").await, STALE);
    w.fake.send_text_and_wait(other, other, "knee pain when running", WAIT).await.unwrap();
    assert_eq!(tap_notice(&w, other, r.message_id, &data).await, STALE, "another question was asked since");

    let before = |u| w.fake.replies(u).len();
    let counts = [before(waiter), before(forgetter), before(other)];
    std::fs::write(w.opts.knowledge.join("articles/how-to-bake-sourdough-bread.md"), sourdough_article()).unwrap();
    let r = w.fake.send_text_and_wait(ADMIN, ADMIN, "/reload", WAIT).await.unwrap();
    assert!(r.plain.starts_with("Knowledge reloaded"), "{}", r.plain);
    let told = w.fake.nth_reply(waiter, counts[0], WAIT).await.expect("the waiting user is told");
    assert!(told.plain.starts_with(&format!("🔔 You asked “{QUESTION}”, and I have an answer now:")), "{}", told.plain);
    assert!(told.plain.contains("How to bake sourdough bread"), "{}", told.plain);
    assert!(told.button_data("👍").is_some(), "an answer like any other: {}", told.plain);

    // A second reload: nobody is told twice; the forgetter and the other user never.
    let r = w.fake.send_text_and_wait(ADMIN, ADMIN, "/reload", WAIT).await.unwrap();
    assert!(r.plain.starts_with("Knowledge reloaded"), "{}", r.plain);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(w.fake.replies(waiter).len(), counts[0] + 1, "once");
    assert_eq!(w.fake.replies(forgetter).len(), counts[1], "/forget removed the watch");
    assert_eq!(w.fake.replies(other).len(), counts[2]);
    // The user's conversation follows on from the answer sent: 👍 is about it.
    let up = told.button_data("👍").unwrap();
    assert!(tap_notice(&w, waiter, told.message_id, &up).await.starts_with("Thank"), "a vote on the answer");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_question_added_by_review_tells_those_who_waited() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    // Two users pick an article for "calves"; a third finds none fits and waits for an answer.
    for user in [4101, 4102] {
        let r = w.fake.send_text_and_wait(user, user, "calves", WAIT).await.unwrap();
        let first = r.buttons()[0].callback_data.clone().unwrap();
        w.fake.press_button(user, user, r.message_id, &first);
        w.fake.nth_reply(user, 1, WAIT).await.unwrap();
    }
    let waiter = 4103;
    let r = w.fake.send_text_and_wait(waiter, waiter, "calves", WAIT).await.unwrap();
    w.fake.press_button_labeled(waiter, waiter, r.message_id, "None of these").expect("the button");
    let unknown = w.fake.nth_reply(waiter, 1, WAIT).await.unwrap();
    let data = unknown.button_data("🔔 Tell me when there's an answer").expect("offered after None of these too");
    assert_eq!(tap_notice(&w, waiter, unknown.message_id, &data).await, ADDED);

    let n = w.fake.replies(ADMIN).len();
    w.fake.send_text(ADMIN, ADMIN, "/review");
    let card = w.fake.nth_reply(ADMIN, n, WAIT).await.unwrap();
    w.fake.press_button_labeled(ADMIN, ADMIN, card.message_id, "✅ Add").expect("✅");
    let added = w.fake.nth_reply(ADMIN, n + 1, WAIT).await.unwrap();
    assert!(added.plain.starts_with("✅ Added"), "{}", added.plain);
    let told = w.fake.nth_reply(waiter, 2, WAIT).await.expect("told after the review");
    assert!(told.plain.starts_with("🔔 You asked “calves”, and I have an answer now:"), "{}", told.plain);
}
