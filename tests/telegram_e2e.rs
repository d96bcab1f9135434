//! End to end: the real `articlebot serve` process against a fake Telegram Bot API on
//! 127.0.0.1, covering every conversation flow, admin commands, groups, inline mode and a
//! restart with state kept.

use std::time::Duration;

use crate::bot_harness::{World, ADMIN, WAIT};
use articlebot_testkit::{ReplyKind, TestChat};

const USER: i64 = 1001;

fn article_file(title: &str, id: &str, body: &str) -> String {
    format!("+++\nid = \"{id}\"\ntitle = \"{title}\"\n+++\n\n{body}\n")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_question_gets_an_html_answer_with_buttons_and_typing() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    let mark = w.fake.mark();
    let r = w.fake.send_text_and_wait(USER, USER, "my knees hurt after jogging, why?", WAIT).await.expect("a reply");
    assert_eq!(r.parse_mode.as_deref(), Some("HTML"));
    assert!(r.text.starts_with("<b>What causes knee pain when running?</b>"), "{}", r.text);
    assert!(r.text.contains("https://t.me/test_articlebot?start=what-causes-knee-pain-when-running"), "{}", r.text);
    let buttons = r.buttons();
    let labels: Vec<&str> = buttons.iter().map(|b| b.text.as_str()).collect();
    assert!(labels.contains(&"👍") && labels.contains(&"👎"), "{labels:?}");
    let topics = buttons.iter().filter(|b| b.callback_data.as_deref().is_some_and(|d| d.starts_with("1:o:"))).count();
    assert!((1..=6).contains(&topics), "up to 4 related and the next and previous articles: {labels:?}");
    assert!(buttons.iter().all(|b| b.callback_data.as_ref().is_some_and(|d| d.len() <= 64)));
    assert!(w.fake.wait_for_after(mark, |c| c.method == "sendChatAction", WAIT).await.is_some(), "typing shown");
    let menu = w.fake.commands(None, None).expect("command menu registered");
    let names: Vec<&str> = menu.as_array().unwrap().iter().filter_map(|c| c["command"].as_str()).collect();
    assert_eq!(names, vec!["start", "help", "topics", "more", "reset", "forget"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn next_section_edits_in_place_and_more_continues() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    let first = w.fake.send_text_and_wait(USER, USER, "/start what-causes-knee-pain-when-running", WAIT).await.unwrap();
    assert!(first.text.contains("(1/5)"), "{}", first.text);
    let q = w.fake.press_button_labeled(USER, USER, first.message_id, "Next section").expect("next button");
    let edited = w.fake.nth_reply(USER, 1, WAIT).await.expect("an edit");
    assert_eq!(edited.kind, ReplyKind::Edited);
    assert_eq!(edited.message_id, first.message_id);
    assert!(edited.text.contains("(2/5)"), "{}", edited.text);
    assert!(w.fake.query_answered(&q.id));
    let more = w.fake.send_text_and_wait(USER, USER, "/more", WAIT).await.unwrap();
    assert_eq!(more.kind, ReplyKind::Sent);
    assert!(more.text.contains("(3/5)"), "{}", more.text);
}

/// With Telegram's limits on, a chat's replies go out one a second; a tap must not wait behind
/// them to be answered.
#[tokio::test(flavor = "multi_thread")]
async fn a_tap_is_answered_while_earlier_replies_still_wait_for_their_slot() {
    let w = World::with_args(&[]).await;
    let first = w.fake.send_text_and_wait(USER, USER, "knee pain when running", WAIT).await.unwrap();
    for q in ["sportswear for running", "sit-ups", "calves running"] {
        w.fake.send_text(USER, USER, q);
    }
    let next = first.button_data("Next section").unwrap();
    let tap = w.fake.press_button(USER, USER, first.message_id, &next);
    assert!(w.fake.wait_query_answered(&tap.id, WAIT).await);
    let sent = w.fake.replies(USER).len();
    assert!(sent <= 2, "the tap was answered before the queued replies went out ({sent} of 4 sent)");
    assert!(w.fake.wait_for_replies(USER, 5, WAIT).await.is_some(), "and every reply still arrives");
}

#[tokio::test(flavor = "multi_thread")]
async fn tapping_a_topic_answers_the_callback_and_shows_the_stub() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    let r = w.fake.send_text_and_wait(USER, USER, "knee pain when running", WAIT).await.unwrap();
    let related = |b: &articlebot_testkit::Button| !b.text.starts_with("Next article") && !b.text.starts_with('◀');
    let topic = r
        .buttons()
        .into_iter()
        .find(|b| related(b) && b.callback_data.as_deref().is_some_and(|d| d.starts_with("1:o:")))
        .unwrap();
    let q = w.fake.press_button(USER, USER, r.message_id, topic.callback_data.as_deref().unwrap());
    let shown = w.fake.nth_reply(USER, 1, WAIT).await.expect("the topic");
    assert!(w.fake.query_answered(&q.id));
    assert!(shown.plain.starts_with(&topic.text.trim_end_matches('…').to_string()), "{} / {}", shown.plain, topic.text);
    assert!(shown.plain.contains("the full article is on the site"), "{}", shown.plain);
}

/// A stub (a topic known by its title and summary) used to link "Read the full article" to a
/// deep link that showed the same summary again; its buttons were more stubs.
#[tokio::test(flavor = "multi_thread")]
async fn a_stub_says_the_article_is_on_the_site_and_offers_full_articles() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    let r = w.fake.send_text_and_wait(USER, USER, "/start metabolism-and-weight-loss", WAIT).await.unwrap();
    assert!(r.plain.starts_with("Metabolism and Weight Loss"), "{}", r.plain);
    assert!(r.plain.contains("That is all I have on this topic: the full article is on the site."), "{}", r.plain);
    assert!(!r.text.contains("t.me/"), "no link back to the same summary: {}", r.text);
    assert!(!r.plain.contains("Read the full article"), "{}", r.plain);
    let full = r.button_data("What causes knee pain when running?").expect("the full article is offered");
    w.fake.press_button(USER, USER, r.message_id, &full);
    let opened = w.fake.nth_reply(USER, 1, WAIT).await.unwrap();
    assert!(opened.text.contains("(1/5)"), "{}", opened.text);
    let more = w.fake.send_text_and_wait(USER, USER, "/start metabolism-and-weight-loss", WAIT).await.unwrap();
    assert!(more.plain.starts_with("Metabolism"), "{}", more.plain);
    let end = w.fake.send_text_and_wait(USER, USER, "more", WAIT).await.unwrap();
    assert!(end.plain.contains("There is nothing further on this topic here"), "{}", end.plain);
}

/// The article's next one was queued behind 15 related topics and never shown.
#[tokio::test(flavor = "multi_thread")]
async fn the_next_and_previous_articles_have_their_own_buttons() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    let r = w.fake.send_text_and_wait(USER, USER, "/start what-causes-knee-pain-when-running", WAIT).await.unwrap();
    let labels: Vec<String> = r.buttons().into_iter().map(|b| b.text).collect();
    assert_eq!(labels[0], "Next section ▶", "{labels:?}");
    assert!(labels[1].starts_with("Next article: What sportswear should I wear for running?"), "{labels:?}");
    assert!(labels[2].starts_with("◀ Previous article: What should I do if I can"), "{labels:?}");
    assert_eq!(labels.len(), 3 + 4 + 2, "next section, next and previous, 4 related, 2 votes: {labels:?}");
    let next = r.buttons().into_iter().nth(1).unwrap().callback_data.unwrap();
    w.fake.press_button(USER, USER, r.message_id, &next);
    let opened = w.fake.nth_reply(USER, 1, WAIT).await.unwrap();
    assert!(opened.plain.starts_with("What sportswear should I wear for running?"), "{}", opened.plain);
}

#[tokio::test(flavor = "multi_thread")]
async fn ambiguous_questions_get_did_you_mean_choices() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    let r = w.fake.send_text_and_wait(USER, USER, "calves", WAIT).await.unwrap();
    assert!(r.plain.starts_with("I'm not sure I understood"), "{}", r.plain);
    let mut choices = r.buttons();
    let none = choices.pop().expect("buttons");
    assert_eq!((none.text.as_str(), none.callback_data.as_deref()), ("None of these", Some("1:z")), "last: {none:?}");
    assert!((2..=3).contains(&choices.len()), "{choices:?}");
    w.fake.press_button(USER, USER, r.message_id, choices[1].callback_data.as_deref().unwrap());
    let picked = w.fake.nth_reply(USER, 1, WAIT).await.unwrap();
    assert!(picked.plain.starts_with(choices[1].text.trim_end_matches('…')), "{}", picked.plain);
}

#[tokio::test(flavor = "multi_thread")]
async fn out_of_scope_questions_are_logged_for_admins() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    let r = w.fake.send_text_and_wait(USER, USER, "how do I bake sourdough bread?", WAIT).await.unwrap();
    assert!(r.plain.starts_with("Sorry, I don't have an article about that"), "{}", r.plain);
    assert!(r.button_data("Topics").is_some());
    w.fake.send_text_and_wait(USER + 1, USER + 1, "How do I bake sourdough bread", WAIT).await.unwrap();
    w.fake.send_text_and_wait(USER + 2, USER + 2, "baking sourdough bread at home", WAIT).await.unwrap();
    w.fake.send_text_and_wait(USER + 3, USER + 3, "where can I park my zeppelin", WAIT).await.unwrap();
    // Alike questions are one line, named by the most asked, the others under it.
    let list = w.fake.send_text_and_wait(ADMIN, ADMIN, "/unanswered", WAIT).await.unwrap();
    let lines: Vec<&str> = list.plain.lines().collect();
    assert!(lines[1].starts_with("1. ") && lines[1].contains("bake sourdough bread — asked 3×"), "{}", list.plain);
    assert!(lines[1].contains("also “baking sourdough bread at home” (1)"), "{}", list.plain);
    assert!(lines[2].starts_with("2. where can I park my zeppelin — asked 1×"), "{}", list.plain);
    let stats = w.fake.send_text_and_wait(ADMIN, ADMIN, "/stats", WAIT).await.unwrap();
    assert!(stats.plain.contains("Users: 4"), "{}", stats.plain);
    assert!(stats.plain.contains("unknown 4"), "{}", stats.plain);
}

#[tokio::test(flavor = "multi_thread")]
async fn why_tells_an_admin_how_a_question_was_read_and_what_decided() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    let r = w.fake.send_text_and_wait(ADMIN, ADMIN, "/why my kneess hurt after jogging", WAIT).await.unwrap();
    let why = &r.plain;
    assert!(why.starts_with("Why\ndecision: answer: relevance"), "{why}");
    assert!(why.contains("kneess(") && why.contains("=knee:typo1") && why.contains("run:synonym"), "{why}");
    assert!(why.contains("1. What causes knee pain when running? (section"), "{why}");
    let r = w.fake.send_text_and_wait(ADMIN, ADMIN, "/why how do I bake sourdough bread", WAIT).await.unwrap();
    assert!(r.plain.contains("decision: unknown: "), "{}", r.plain);
    let r = w.fake.send_text_and_wait(ADMIN, ADMIN, "/why", WAIT).await.unwrap();
    assert!(r.plain.contains("Write the question after the command"), "{}", r.plain);
    // Asking why is not asking: nothing is recorded as a question of the admin's.
    let list = w.fake.send_text_and_wait(ADMIN, ADMIN, "/unanswered", WAIT).await.unwrap();
    assert!(!list.plain.contains("sourdough"), "{}", list.plain);
}

#[tokio::test(flavor = "multi_thread")]
async fn inline_queries_list_matching_articles() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    let mark = w.fake.mark();
    let q = w.fake.inline_query(USER, "knee pain");
    let call = w.fake.wait_for_after(mark, |c| c.method == "answerInlineQuery", WAIT).await.expect("answered");
    assert!(call.is_ok(), "{call:?}");
    assert_eq!(call.str_param("inline_query_id"), Some(q.id.as_str()));
    let results = call.param("results").and_then(|r| r.as_array()).cloned().unwrap_or_default();
    assert!(!results.is_empty());
    assert_eq!(results[0]["title"], "What causes knee pain when running?");
    assert_eq!(results[0]["input_message_content"]["parse_mode"], "HTML");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_album_gets_one_notice_and_service_messages_none() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    let user = USER + 40;
    let chat = serde_json::json!({"id": user, "type": "private", "first_name": "Ann"});
    let from = serde_json::json!({"id": user, "is_bot": false, "first_name": "Ann"});
    let photo = serde_json::json!([{"file_id": "f", "file_unique_id": "u", "width": 90, "height": 90}]);
    let mark = w.fake.mark();
    for i in 0..5 {
        w.fake.push_raw_update(serde_json::json!({"message": {
            "message_id": 9000 + i, "date": 1_700_000_000, "chat": chat, "from": from,
            "media_group_id": "album-1", "photo": photo,
        }}));
    }
    w.fake.push_raw_update(serde_json::json!({"message": {
        "message_id": 9100, "date": 1_700_000_000, "chat": chat, "from": from,
        "pinned_message": {"message_id": 9000, "date": 1_700_000_000, "chat": chat, "from": from, "text": "hi"},
    }}));
    assert!(w.fake.wait_all_confirmed(WAIT).await);
    // Updates are confirmed once stored, before they are handled: wait for the album's notice so
    // that it is not taken for the answer below.
    let notice = w.fake.wait_for_after(mark, |c| c.method == "sendMessage" && c.chat_id() == Some(user), WAIT).await;
    assert!(notice.is_some(), "the album got its notice");
    let after = w.fake.send_text_and_wait(user, user, "knee pain", WAIT).await.expect("still answered");
    assert!(after.plain.starts_with("What causes knee pain"), "{}", after.plain);
    let replies = w.fake.replies(user);
    let texts: Vec<&str> = replies.iter().map(|r| r.plain.as_str()).collect();
    assert_eq!(texts.len(), 2, "one notice for the album, none for the pin, then the answer: {texts:?}");
    assert!(texts[0].contains("text message"), "{texts:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn non_text_empty_huge_and_edited_messages() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    w.fake.send_sticker(USER, USER, "👍");
    let r = w.fake.nth_reply(USER, 0, WAIT).await.unwrap();
    assert!(r.plain.contains("send me your question as a text message"), "{}", r.plain);
    w.fake.send_location(USER, USER, 52.5, 13.4);
    assert!(w.fake.nth_reply(USER, 1, WAIT).await.unwrap().plain.contains("text"));
    let huge = "knee pain ".repeat(409);
    assert!(huge.chars().count() <= 4096);
    let r = w.fake.send_text_and_wait(USER, USER, &huge, WAIT).await.expect("an answer to a huge message");
    assert!(r.plain.contains("knee"));
    let m = w.fake.send_text(USER, USER, "hello");
    w.fake.nth_reply(USER, 3, WAIT).await.unwrap();
    w.fake.edit_text(USER, USER, m.message_id, "sportswear for running");
    let again = w.fake.nth_reply(USER, 4, WAIT).await.expect("edited messages are answered again");
    assert!(again.plain.starts_with("What sportswear should I wear for running?"), "{}", again.plain);
    assert_eq!(w.fake.counters().bad_requests, 0, "no request was refused by the API");
}

#[tokio::test(flavor = "multi_thread")]
async fn in_groups_only_commands_mentions_and_replies_are_answered() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    let group = -5001;
    w.fake.add_chat(TestChat::group(group, "Runners"));
    w.fake.send_text(group, USER, "knee pain when running");
    let mention = w.fake.send_text(group, USER, "@test_articlebot knee pain when running");
    let first = w.fake.nth_reply(group, 0, WAIT).await.expect("a mention is answered");
    assert!(first.plain.starts_with("What causes knee pain"), "{}", first.plain);
    assert!(w.fake.wait_delivered(mention.update_id, WAIT).await);
    w.fake.send_reply(group, USER, "sportswear for running", first.message_id);
    let second = w.fake.nth_reply(group, 1, WAIT).await.expect("a reply to the bot is answered");
    assert!(second.plain.starts_with("What sportswear"), "{}", second.plain);
    w.fake.send_text(group, USER, "/help@test_articlebot");
    assert!(w.fake.nth_reply(group, 2, WAIT).await.is_some(), "a command is answered");
    w.fake.send_text(group, USER, "/help@some_other_bot");
    w.fake.send_text(group, USER, "/roll_dice");
    w.fake.send_text(group, USER, "just chatting about sportswear");
    w.fake.send_text(group, USER, "ask @test_articlebot_fan about knee pain");
    assert!(w.fake.wait_all_confirmed(WAIT).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        w.fake.replies(group).len(),
        3,
        "plain group chatter, other bots' commands, unknown commands and a longer username are ignored"
    );
    // What people asked is not shown to a whole group, even to an admin.
    let stats = w.fake.send_text_and_wait(group, ADMIN, "/stats", WAIT).await.expect("a reply");
    assert!(stats.plain.contains("private chat"), "{}", stats.plain);
    assert!(!stats.plain.contains("Users:"), "{}", stats.plain);
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_forum_the_answer_goes_to_the_topic_asked_in() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    let forum = serde_json::json!({"id": -5002, "type": "supergroup", "title": "Runners", "is_forum": true});
    let from = serde_json::json!({"id": USER, "is_bot": false, "first_name": "Ann"});
    let mark = w.fake.mark();
    w.fake.push_raw_update(serde_json::json!({"message": {
        "message_id": 77, "message_thread_id": 12, "is_topic_message": true, "date": 1_700_000_000,
        "chat": forum, "from": from, "text": "@test_articlebot knee pain when running",
    }}));
    let sent = w.fake.wait_for_after(mark, |c| c.method == "sendMessage", WAIT).await.expect("an answer");
    assert_eq!(sent.param("message_thread_id").and_then(|v| v.as_i64()), Some(12), "{sent:?}");
    assert!(sent.str_param("text").is_some_and(|t| t.contains("What causes knee pain")), "{sent:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn admins_reload_and_a_broken_dir_keeps_the_old_knowledge() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    let new = article_file(
        "How to stretch hamstrings",
        "how-to-stretch-hamstrings",
        "Sit down and reach for your toes slowly.",
    );
    std::fs::write(w.opts.knowledge.join("articles/how-to-stretch-hamstrings.md"), new).unwrap();
    let r = w.fake.send_text_and_wait(ADMIN, ADMIN, "/reload", WAIT).await.unwrap();
    assert!(r.plain.starts_with("Knowledge reloaded"), "{}", r.plain);
    assert!(r.plain.contains("2 articles, 6 sections, 17 stubs"), "{}", r.plain);
    let a = w.fake.send_text_and_wait(USER, USER, "hamstring stretch", WAIT).await.unwrap();
    assert!(a.plain.starts_with("How to stretch hamstrings"), "{}", a.plain);

    std::fs::write(w.opts.knowledge.join("articles/broken.md"), "+++\nid = \"broken\"\ntitle = \n+++\n").unwrap();
    let r = w.fake.send_text_and_wait(ADMIN, ADMIN, "/reload", WAIT).await.unwrap();
    assert!(r.plain.starts_with("Reload failed"), "{}", r.plain);
    assert!(r.plain.contains("broken.md:3"), "{}", r.plain);
    let still = w.fake.send_text_and_wait(USER, USER, "hamstring stretch", WAIT).await.unwrap();
    assert!(still.plain.starts_with("How to stretch hamstrings"), "the previous knowledge keeps serving");
}

#[tokio::test(flavor = "multi_thread")]
async fn non_admins_cannot_use_admin_commands_even_with_an_admins_username() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    w.fake.add_user(articlebot_testkit::TestUser::new(ADMIN, "Boss").username("boss"));
    w.fake.add_user(articlebot_testkit::TestUser::new(USER, "Mallory").username("boss"));
    std::fs::write(w.opts.knowledge.join("articles/extra.md"), article_file("Extra", "extra", "Extra text.")).unwrap();
    for cmd in ["/reload", "/stats", "/unanswered", "/why knee pain"] {
        let r = w.fake.send_text_and_wait(USER, USER, cmd, WAIT).await.unwrap();
        assert_eq!(r.plain, "Sorry, this command is for admins only.", "{cmd}");
    }
    let a = w.fake.send_text_and_wait(USER, USER, "extra text", WAIT).await.unwrap();
    assert!(!a.plain.starts_with("Extra"), "nothing was reloaded: {}", a.plain);
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_buttons_change_nothing_and_forget_deletes_the_user() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    let r = w.fake.send_text_and_wait(USER, USER, "knee pain when running", WAIT).await.unwrap();
    for forged in ["1:o:../../etc:0", "9:o:AAAAAAAA:0", "garbage", "1:o:AAAAAAAA:0"] {
        let q = w.fake.press_button(USER, USER, r.message_id, forged);
        let mark = w.fake.mark();
        let answered = w
            .fake
            .wait_for_after(
                0,
                |c| c.method == "answerCallbackQuery" && c.str_param("callback_query_id") == Some(q.id.as_str()),
                WAIT,
            )
            .await;
        let answered = answered.expect("every callback is answered");
        assert!(
            answered.str_param("text").is_some_and(|t| t.contains("no longer available")),
            "{forged}: {answered:?}"
        );
        let _ = mark;
    }
    assert_eq!(w.fake.replies(USER).len(), 1, "forged buttons send no message");
    let more = w.fake.send_text_and_wait(USER, USER, "/more", WAIT).await.unwrap();
    assert!(more.plain.starts_with("What causes knee pain when running?"), "the position is unchanged: {}", more.plain);
    let f = w.fake.send_text_and_wait(USER, USER, "/forget", WAIT).await.unwrap();
    assert!(f.plain.starts_with("Done: I've deleted everything"), "{}", f.plain);
    let more = w.fake.send_text_and_wait(USER, USER, "/more", WAIT).await.unwrap();
    assert!(more.plain.starts_with("There is nothing to continue"), "{}", more.plain);
}

#[tokio::test(flavor = "multi_thread")]
async fn state_survives_a_restart() {
    let mut w = World::with_args(&["--no-rate-limit"]).await;
    let first = w.fake.send_text_and_wait(USER, USER, "/start what-causes-knee-pain-when-running", WAIT).await.unwrap();
    assert!(first.text.contains("(1/5)"));
    w.restart().await;
    w.fake.press_button_labeled(USER, USER, first.message_id, "Next section").unwrap();
    let edited = w.fake.nth_reply(USER, 1, WAIT).await.unwrap();
    assert!(edited.text.contains("(2/5)"), "{}", edited.text);
    let stopped = w.restart().await;
    assert!(stopped.contains("flushing the database"), "graceful stop flushes sled: {stopped}");
    let more = w.fake.send_text_and_wait(USER, USER, "/more", WAIT).await.unwrap();
    assert!(more.text.contains("(3/5)"), "the position was kept across restarts: {}", more.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn sighup_reloads_and_the_token_is_never_logged() {
    let mut w = World::new().await;
    // Trace level: the most verbose logging must not leak the token either.
    w.opts.rust_log = "trace".into();
    w.restart().await;
    std::fs::write(
        w.opts.knowledge.join("articles/extra.md"),
        article_file("Extra topic", "extra", "Extra text about kettlebells."),
    )
    .unwrap();
    w.bot().signal("HUP");
    let mut answered = false;
    for _ in 0..50 {
        let r = w.fake.send_text_and_wait(USER, USER, "kettlebells", WAIT).await.unwrap();
        if r.plain.starts_with("Extra topic") {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(answered, "SIGHUP reloaded the knowledge base");
    let logs = w.bot().logs();
    assert!(logs.contains("SIGHUP"), "the reload is logged");
    assert!(!logs.contains(w.fake.token()) && !logs.contains("TEST"), "the token must not appear in logs");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_topic_list_pages_in_place() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    let first = w.fake.send_text_and_wait(USER, USER, "/topics", WAIT).await.unwrap();
    assert!(first.plain.starts_with("Topics I can answer: (1/3)"), "{}", first.plain);
    assert_eq!(first.buttons().iter().filter(|b| b.text != "Next ▶").count(), 8);
    w.fake.press_button_labeled(USER, USER, first.message_id, "Next ▶").expect("a next page button");
    let second = w.fake.nth_reply(USER, 1, WAIT).await.unwrap();
    assert_eq!((second.kind, second.message_id), (ReplyKind::Edited, first.message_id));
    assert!(second.plain.starts_with("Topics I can answer: (2/3)"), "{}", second.plain);
    assert!(second.button_data("Previous").is_some());
    let help = w.fake.send_text_and_wait(USER, USER, "/help", WAIT).await.unwrap();
    assert!(help.plain.contains("/topics") && help.plain.contains("/forget"), "{}", help.plain);
}

/// A reply as a person sees it in the Telegram app: the text, then the keyboard row by row.
fn as_seen(r: &articlebot_testkit::Reply) -> String {
    let mut out = r.plain.trim_end().to_string();
    let rows = r.reply_markup.as_ref().and_then(|m| m["inline_keyboard"].as_array()).cloned().unwrap_or_default();
    for row in rows {
        let labels: Vec<String> = row
            .as_array()
            .into_iter()
            .flatten()
            .map(|b| format!("[{}]", b["text"].as_str().unwrap_or_default()))
            .collect();
        out.push('\n');
        out.push_str(&labels.join(" "));
    }
    out
}

/// README shows a Telegram conversation; this test holds the bot to it, so the transcript is
/// what the bot says today (recorded from the Bot API calls the real process makes).
#[tokio::test(flavor = "multi_thread")]
async fn the_readme_transcript_is_what_the_bot_says() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    let mut transcript = Vec::new();
    let mut said = |who: &str, what: String| transcript.push(format!("{who}\n{what}"));

    let q = "my knees hurt after jogging, why?";
    let answer = w.fake.send_text_and_wait(USER, USER, q, WAIT).await.expect("an answer");
    said(&format!("» {q}"), as_seen(&answer));
    w.fake.press_button_labeled(USER, USER, answer.message_id, "Next section").expect("a next section button");
    let next = w.fake.nth_reply(USER, 1, WAIT).await.expect("the next section");
    assert_eq!(next.kind, ReplyKind::Edited);
    said("» taps [Next section ▶] (the message changes in place)", as_seen(&next));
    let q = "calves";
    let unsure = w.fake.send_text_and_wait(USER, USER, q, WAIT).await.expect("choices");
    said(&format!("» {q}"), as_seen(&unsure));
    let first = unsure.buttons().into_iter().next().expect("a choice");
    w.fake.press_button(USER, USER, unsure.message_id, first.callback_data.as_deref().expect("callback data"));
    let picked = w.fake.nth_reply(USER, 3, WAIT).await.expect("the picked topic");
    said(&format!("» taps [{}]", first.text), as_seen(&picked));
    let q = "how do I bake bread";
    let unknown = w.fake.send_text_and_wait(USER, USER, q, WAIT).await.expect("a reply");
    said(&format!("» {q}"), as_seen(&unknown));
    let recorded = transcript.join("\n\n");

    let readme_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&readme_path).expect("README.md");
    let (open, close) = ("<!-- telegram transcript: begin -->\n```text\n", "```\n<!-- telegram transcript: end -->");
    let shown = readme
        .split_once(open)
        .and_then(|(_, rest)| rest.split_once(close))
        .map(|(block, _)| block.trim_end().to_string())
        .expect("README has the transcript block");
    if shown != recorded {
        let fresh = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/telegram-transcript.txt");
        let _ = std::fs::write(&fresh, &recorded);
        panic!("README's transcript is not what the bot says now (written to {}):\n{recorded}", fresh.display());
    }
}
