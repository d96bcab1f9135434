//! The fake Telegram Bot API (`articlebot_testkit`) driven by real teloxide: plain requests,
//! a dispatcher over long polling and over a webhook, validation, fault injection and the
//! rate limiter. Every test is bounded (see `bounded`) and takes at most a few seconds.

use std::error::Error;
use std::future::{Future, IntoFuture};
use std::time::{Duration, Instant};

use articlebot_testkit::{
    FakeTelegram, Fault, FaultRule, Incoming, Outcome, RateLimits, ReplyKind, TestChat, TestUser, TEST_BOT_USERNAME,
};
use serde_json::{json, Value};
use teloxide::dispatching::{ShutdownToken, UpdateFilterExt, UpdateHandler};
use teloxide::prelude::*;
use teloxide::types::{
    AllowedUpdate, BotCommand, BotCommandScope, CallbackQueryId, ChatAction, InlineKeyboardButton,
    InlineKeyboardMarkup, InlineQueryResultArticle, InputMessageContent, InputMessageContentText, MessageId, ParseMode,
    Recipient,
};
use teloxide::update_listeners::{webhooks, Polling};
use teloxide::{ApiError, RequestError};

const T: Duration = Duration::from_secs(5);

/// No test may hang: each runs under this cap.
async fn bounded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f).await.expect("the test took longer than 30 s")
}

fn bot_for(fake: &FakeTelegram) -> Bot {
    Bot::new(fake.token()).set_api_url(fake.api_url())
}

type HandlerError = Box<dyn Error + Send + Sync>;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// Describes what the echo bot received, so tests can check how teloxide read the update.
fn describe(msg: &Message) -> String {
    let mut parts = Vec::new();
    if let Some(t) = msg.text() {
        parts.push(format!("echo: {t}"));
    } else if let Some(s) = msg.sticker() {
        parts.push(format!("sticker {}", s.emoji.clone().unwrap_or_default()));
    } else if msg.photo().is_some() {
        parts.push(format!("photo {}", msg.caption().unwrap_or("")));
    } else if let Some(v) = msg.voice() {
        parts.push(format!("voice {}s", v.duration.seconds()));
    } else if let Some(l) = msg.location() {
        parts.push(format!("location {:.1},{:.1}", l.latitude, l.longitude));
    } else {
        parts.push("something".into());
    }
    if !msg.chat.is_private() {
        parts.push(format!("in {}", msg.chat.title().unwrap_or("?")));
    }
    if let Some(u) = msg.from.as_ref().and_then(|u| u.username.clone()) {
        parts.push(format!("from @{u}"));
    }
    if let Some(lang) = msg.from.as_ref().and_then(|u| u.language_code.clone()) {
        parts.push(format!("lang {lang}"));
    }
    let kinds: Vec<String> = msg.entities().unwrap_or_default().iter().map(|e| format!("{:?}", e.kind)).collect();
    if !kinds.is_empty() {
        parts.push(format!("entities {}", kinds.join(",")));
    }
    if msg.reply_to_message().and_then(|m| m.from.as_ref()).is_some_and(|u| u.is_bot) {
        parts.push("replying to the bot".into());
    }
    parts.join(" | ")
}

/// A tiny bot: echoes messages (with a button), reports edits, answers buttons by editing the
/// message, answers inline queries.
fn schema() -> UpdateHandler<HandlerError> {
    dptree::entry()
        .branch(Update::filter_message().endpoint(|bot: Bot, msg: Message| async move {
            let kb = InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback("More", "more:1")]]);
            bot.send_message(msg.chat.id, format!("<i>{}</i>", escape(&describe(&msg))))
                .parse_mode(ParseMode::Html)
                .reply_markup(kb)
                .await?;
            Ok(())
        }))
        .branch(Update::filter_edited_message().endpoint(|bot: Bot, msg: Message| async move {
            bot.send_message(msg.chat.id, format!("edited: {}", msg.text().unwrap_or(""))).await?;
            Ok(())
        }))
        .branch(Update::filter_callback_query().endpoint(|bot: Bot, q: CallbackQuery| async move {
            bot.answer_callback_query(q.id.clone()).text("done").await?;
            if let Some(m) = q.regular_message() {
                bot.edit_message_text(m.chat.id, m.id, format!("pressed {}", q.data.clone().unwrap_or_default()))
                    .await?;
            }
            Ok(())
        }))
        .branch(Update::filter_inline_query().endpoint(|bot: Bot, q: InlineQuery| async move {
            let r = InlineQueryResultArticle::new(
                "r1",
                "Echo",
                InputMessageContent::Text(
                    InputMessageContentText::new(format!("<b>{}</b>", escape(&q.query))).parse_mode(ParseMode::Html),
                ),
            );
            bot.answer_inline_query(q.id, vec![r.into()]).await?;
            Ok(())
        }))
}

struct Running {
    token: ShutdownToken,
    handle: tokio::task::JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        stop_dispatcher(&self.token, self.handle).await;
    }
}

/// Stops a running dispatcher and waits until its task has ended. The future returned by
/// `ShutdownToken::shutdown` is not awaited: teloxide 0.17 sometimes finishes before that future
/// registers for the "done" notification, and then it never resolves.
async fn stop_dispatcher(token: &ShutdownToken, handle: tokio::task::JoinHandle<()>) {
    drop(token.shutdown().expect("the dispatcher is running"));
    tokio::time::timeout(T, handle).await.expect("the dispatcher stops").expect("dispatcher task");
}

/// Runs the echo bot over long polling (short poll timeout, fast backoff) until `stop`.
async fn run_echo_bot(fake: &FakeTelegram) -> Running {
    let bot = bot_for(fake);
    let mark = fake.mark();
    let mut dispatcher = Dispatcher::builder(bot.clone(), schema()).build();
    let token = dispatcher.shutdown_token();
    let listener =
        Polling::builder(bot).timeout(Duration::from_secs(2)).backoff_strategy(|_| Duration::from_millis(50)).build();
    let handle = tokio::spawn(async move {
        dispatcher.dispatch_with_listener(listener, LoggingErrorHandler::new()).await;
    });
    fake.wait_for_method(mark, "getUpdates", T).await.expect("the dispatcher polls");
    Running { token, handle }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_requests_round_trip() {
    bounded(async {
        let fake = FakeTelegram::start().await;
        let bot = bot_for(&fake);

        let me = bot.get_me().await.unwrap();
        assert_eq!(me.username(), TEST_BOT_USERNAME);
        assert!(me.user.is_bot && me.can_join_groups && me.supports_inline_queries);
        assert_eq!(me.user.id.0 as i64, fake.bot_id());

        let kb = InlineKeyboardMarkup::new(vec![vec![
            InlineKeyboardButton::callback("Yes", "y"),
            InlineKeyboardButton::url("Docs", "https://example.com/docs".parse().unwrap()),
        ]]);
        let m = bot
            .send_message(ChatId(42), "<b>Hello</b> &amp; <a href=\"https://e.com\">welcome</a>")
            .parse_mode(ParseMode::Html)
            .reply_markup(kb)
            .await
            .unwrap();
        assert_eq!(m.text(), Some("Hello & welcome"));
        assert_eq!(m.chat.id, ChatId(42));
        assert!(m.chat.is_private());
        assert!(m.from.as_ref().unwrap().is_bot);
        assert!(m.reply_markup().is_some());
        let m2 = bot.send_message(ChatId(42), "second").await.unwrap();
        assert_eq!(m2.id.0, m.id.0 + 1, "message ids grow per chat");
        assert_eq!(bot.send_message(ChatId(43), "other chat").await.unwrap().id.0, 1);

        let sent = fake.sent_messages(42);
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[0].text, "<b>Hello</b> &amp; <a href=\"https://e.com\">welcome</a>");
        assert_eq!(sent[0].plain, "Hello & welcome");
        assert_eq!(sent[0].parse_mode.as_deref(), Some("HTML"));
        assert_eq!(sent[0].button_data("Yes").as_deref(), Some("y"));
        assert_eq!(sent[0].buttons()[1].url.as_deref(), Some("https://example.com/docs"));
        let call = &fake.calls_of("sendMessage")[0];
        assert_eq!((call.chat_id(), call.str_param("parse_mode")), (Some(42), Some("HTML")));
        assert_eq!(call.result().unwrap()["message_id"], json!(m.id.0));
        assert_eq!(sent[0].call_seq, call.seq);

        // A button press, answered once; a second answer is refused like Telegram does.
        let q = fake.press_button(42, 42, m.id.0, "y");
        bot.answer_callback_query(CallbackQueryId(q.id.clone())).text("ok").await.unwrap();
        assert!(fake.query_answered(&q.id));
        assert!(bot.answer_callback_query(CallbackQueryId(q.id.clone())).await.is_err());

        // Edits.
        let e = bot.edit_message_text(ChatId(42), m.id, "edited").await.unwrap();
        assert_eq!(e.text(), Some("edited"));
        assert!(e.reply_markup().is_none(), "an edit without reply_markup removes the keyboard");
        let err = bot.edit_message_text(ChatId(42), m.id, "edited").await.unwrap_err();
        assert!(matches!(err, RequestError::Api(ApiError::MessageNotModified)), "{err:?}");
        let err = bot.edit_message_text(ChatId(42), MessageId(999), "x").await.unwrap_err();
        assert!(matches!(err, RequestError::Api(ApiError::MessageToEditNotFound)), "{err:?}");
        let kb2 = InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback("No", "n")]]);
        bot.edit_message_reply_markup(ChatId(42), m.id).reply_markup(kb2.clone()).await.unwrap();
        let err = bot.edit_message_reply_markup(ChatId(42), m.id).reply_markup(kb2).await.unwrap_err();
        assert!(matches!(err, RequestError::Api(ApiError::MessageNotModified)), "{err:?}");
        assert_eq!(fake.message(42, m.id.0).unwrap()["reply_markup"]["inline_keyboard"][0][0]["text"], json!("No"));
        let kinds: Vec<ReplyKind> = fake.replies(42).iter().map(|r| r.kind).collect();
        assert_eq!(kinds, vec![ReplyKind::Sent, ReplyKind::Sent, ReplyKind::Edited]);

        // Commands, per scope.
        bot.set_my_commands(vec![BotCommand::new("start", "Start"), BotCommand::new("help", "Help")]).await.unwrap();
        assert_eq!(bot.get_my_commands().await.unwrap().len(), 2);
        bot.set_my_commands(vec![BotCommand::new("stats", "Stats")])
            .scope(BotCommandScope::Chat { chat_id: Recipient::Id(ChatId(7)) })
            .await
            .unwrap();
        assert_eq!(
            fake.commands(Some(json!({"type": "chat", "chat_id": 7})), None).unwrap()[0]["command"],
            json!("stats")
        );
        assert!(bot.set_my_commands(vec![BotCommand::new("Bad Command", "x")]).await.is_err());
        bot.delete_my_commands().await.unwrap();
        assert!(bot.get_my_commands().await.unwrap().is_empty());

        // The harmless rest.
        bot.send_chat_action(ChatId(42), ChatAction::Typing).await.unwrap();
        bot.delete_webhook().await.unwrap();
        assert!(bot.get_webhook_info().await.unwrap().url.is_none());
        bot.delete_message(ChatId(42), m2.id).await.unwrap();
        assert!(bot.delete_message(ChatId(42), m2.id).await.is_err());
        bot.close().await.unwrap();
        bot.log_out().await.unwrap();

        let stats = fake.stats();
        assert_eq!(stats.calls_by_method["sendMessage"], 3);
        assert!(fake.calls().iter().all(|c| c.answered_at >= c.received_at));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validates_like_telegram() {
    bounded(async {
        let fake = FakeTelegram::start().await;
        let bot = bot_for(&fake);
        let api_err = |r: Result<Message, RequestError>| match r {
            Err(RequestError::Api(e)) => e,
            other => panic!("expected an API error, got {other:?}"),
        };

        bot.send_message(ChatId(1), "a".repeat(4096)).await.unwrap();
        assert_eq!(api_err(bot.send_message(ChatId(1), "é".repeat(4097)).await), ApiError::MessageIsTooLong);
        // Telegram counts UTF-16 code units: an emoji is two.
        bot.send_message(ChatId(1), "🍕".repeat(2048)).await.unwrap();
        assert_eq!(api_err(bot.send_message(ChatId(1), "🍕".repeat(2049)).await), ApiError::MessageIsTooLong);
        assert_eq!(api_err(bot.send_message(ChatId(1), "").await), ApiError::MessageTextIsEmpty);
        assert_eq!(
            api_err(bot.send_message(ChatId(1), "<b> </b>").parse_mode(ParseMode::Html).await),
            ApiError::MessageTextIsEmpty
        );
        // 4096 characters after the markup is removed are fine.
        bot.send_message(ChatId(1), format!("<b>{}</b>", "x".repeat(4096))).parse_mode(ParseMode::Html).await.unwrap();

        for bad in ["<b>unclosed", "x</b>", "<b>x</i>", "a <br> b", "1 < 2", "<span>s</span>"] {
            match api_err(bot.send_message(ChatId(1), bad).parse_mode(ParseMode::Html).await) {
                ApiError::CantParseEntities(d) => assert!(d.starts_with("Bad Request: can't parse entities: "), "{d}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        // Without parse_mode anything goes; Telegram keeps a stray `&`.
        bot.send_message(ChatId(1), "1 < 2 <b>").await.unwrap();
        bot.send_message(ChatId(1), "Q&A").parse_mode(ParseMode::Html).await.unwrap();

        let kb = |data: String| InlineKeyboardMarkup::new(vec![vec![InlineKeyboardButton::callback("b", data)]]);
        bot.send_message(ChatId(1), "ok").reply_markup(kb("d".repeat(64))).await.unwrap();
        assert_eq!(
            api_err(bot.send_message(ChatId(1), "x").reply_markup(kb("d".repeat(65))).await),
            ApiError::ButtonDataInvalid
        );
        let many = InlineKeyboardMarkup::new(
            (0..11)
                .map(|r| (0..10).map(|c| InlineKeyboardButton::callback("b", format!("{r}:{c}"))).collect::<Vec<_>>())
                .collect::<Vec<_>>(),
        );
        assert!(bot.send_message(ChatId(1), "x").reply_markup(many).await.is_err());
        let last = fake.calls_of("sendMessage").pop().unwrap();
        assert_eq!(last.error(), Some((400, "Bad Request: reply markup is too long")));

        // Replies to unknown messages, blocked users, unknown queries.
        let err = bot
            .send_message(ChatId(1), "x")
            .reply_parameters(teloxide::types::ReplyParameters::new(MessageId(777)))
            .await;
        assert_eq!(api_err(err), ApiError::MessageToReplyNotFound);
        fake.block_bot(5);
        assert_eq!(api_err(bot.send_message(ChatId(5), "x").await), ApiError::BotBlocked);
        fake.unblock_bot(5);
        bot.send_message(ChatId(5), "x").await.unwrap();
        assert!(bot.answer_callback_query(CallbackQueryId("nope".into())).await.is_err());

        let c = fake.counters();
        assert!(c.bad_requests >= 12, "{c:?}");
        assert_eq!(c.rate_limited, 0);

        // A wrong token is refused like Telegram does (teloxide: InvalidToken).
        let wrong = Bot::new("999:WRONG").set_api_url(fake.api_url());
        assert!(matches!(wrong.get_me().await, Err(RequestError::Api(ApiError::InvalidToken))));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepts_json_form_multipart_and_query_bodies() {
    bounded(async {
        let fake = FakeTelegram::start().await;
        let http = reqwest::Client::new();
        let base = format!("{}/bot{}", fake.api_url_string(), fake.token());

        let r = http.get(format!("{base}/getMe")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(v["result"]["username"], json!(TEST_BOT_USERNAME));

        // Form body; method names are case-insensitive; "12" stays text.
        let r = http
            .post(format!("{base}/SENDMESSAGE"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("chat_id=77&text=12&reply_markup=%7B%22inline_keyboard%22%3A%5B%5B%7B%22text%22%3A%22a%22%2C%22callback_data%22%3A%22b%22%7D%5D%5D%7D")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(v["result"]["text"], json!("12"));
        assert_eq!(fake.sent_messages(77)[0].button_data("a").as_deref(), Some("b"));

        // Multipart body.
        let body = "--XX\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n78\r\n--XX\r\nContent-Disposition: form-data; name=\"text\"\r\n\r\nfrom multipart\r\n--XX--\r\n";
        let r = http
            .post(format!("{base}/sendMessage"))
            .header("content-type", "multipart/form-data; boundary=XX")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(fake.sent_messages(78)[0].plain, "from multipart");

        // Query string.
        let r = http.post(format!("{base}/sendMessage?chat_id=79&text=q")).send().await.unwrap();
        assert_eq!(r.status(), 200);

        // Unknown method and unknown path.
        let r = http.post(format!("{base}/sendTelepathy")).json(&json!({})).send().await.unwrap();
        assert_eq!(r.status(), 404);
        let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(v, json!({"ok": false, "error_code": 404, "description": "Not Found: method not found"}));
        assert_eq!(http.get(format!("{}/nothing", fake.api_url_string())).send().await.unwrap().status(), 404);
        assert_eq!(fake.calls_of("sendTelepathy").len(), 1);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatcher_receives_every_kind_of_update() {
    bounded(async {
        let fake = FakeTelegram::start().await;
        fake.add_user(TestUser::new(7, "Ann").username("ann").language(Some("de")));
        fake.add_chat(TestChat::group(-100, "Team"));
        let bot = run_echo_bot(&fake).await;

        // Private text.
        let r = fake.send_text_and_wait(7, 7, "hello <world>", T).await.expect("a reply");
        assert_eq!(r.plain, "echo: hello <world> | from @ann | lang de");
        assert_eq!(r.text, "<i>echo: hello &lt;world&gt; | from @ann | lang de</i>");

        // Non-text messages.
        fake.send_sticker(8, 8, "👍");
        fake.send_photo(8, 8, Some("cat"));
        fake.send_voice(8, 8, 3);
        fake.send_location(8, 8, 52.5, 13.4);
        let replies = fake.wait_for_replies(8, 4, T).await.expect("four replies");
        let mut plain: Vec<String> = replies.iter().map(|r| r.plain.clone()).collect();
        plain.sort();
        assert_eq!(
            plain,
            vec!["location 52.5,13.4 | lang en", "photo cat | lang en", "sticker 👍 | lang en", "voice 3s | lang en"]
        );

        // Group: a command with the bot's name, a mention, a reply to the bot.
        let r = fake.send_text_and_wait(-100, 7, "/help@test_articlebot", T).await.unwrap();
        assert_eq!(r.plain, "echo: /help@test_articlebot | in Team | from @ann | lang de | entities BotCommand");
        let r = fake.send_text_and_wait(-100, 7, "hey @test_articlebot", T).await.unwrap();
        assert!(r.plain.ends_with("entities Mention"), "{}", r.plain);
        let r = fake.send(Incoming::text(-100, 7, "thanks").reply_to(r.message_id));
        let reply = fake.nth_reply(-100, 2, T).await.unwrap();
        assert!(reply.plain.ends_with("replying to the bot"), "{}", reply.plain);
        assert!(fake.wait_delivered(r.update_id, T).await);

        // An edited message.
        let sent = fake.send_text(9, 9, "first");
        fake.nth_reply(9, 0, T).await.unwrap();
        fake.edit_text(9, 9, sent.message_id, "second");
        assert_eq!(fake.nth_reply(9, 1, T).await.unwrap().plain, "edited: second");

        // A button on the bot's message: answered, and the message edited.
        let bot_msg = fake.nth_reply(9, 0, T).await.unwrap();
        let q = fake.press_button_labeled(9, 9, bot_msg.message_id, "More").expect("the button exists");
        let edit = fake.nth_reply(9, 2, T).await.unwrap();
        assert_eq!(
            (edit.kind, edit.message_id, edit.plain.as_str()),
            (ReplyKind::Edited, bot_msg.message_id, "pressed more:1")
        );
        let answered = fake
            .wait_for(|c| c.method == "answerCallbackQuery" && c.str_param("callback_query_id") == Some(&q.id), T)
            .await;
        assert!(answered.unwrap().is_ok());
        assert_eq!(fake.message(9, bot_msg.message_id).unwrap()["text"], json!("pressed more:1"));

        // An inline query.
        let q = fake.inline_query(7, "a & b");
        let call = fake.wait_for(|c| c.method == "answerInlineQuery", T).await.unwrap();
        assert!(call.is_ok(), "{call:?}");
        assert_eq!(call.str_param("inline_query_id"), Some(q.id.as_str()));
        assert_eq!(
            call.param("results").unwrap()[0]["input_message_content"]["message_text"],
            json!("<b>a &amp; b</b>")
        );

        bot.stop().await;
        assert!(fake.wait_all_confirmed(T).await, "the dispatcher confirmed every update on shutdown");
        let stats = fake.stats();
        assert_eq!(stats.updates_injected, stats.updates_delivered);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polling_semantics() {
    bounded(async {
        let fake = FakeTelegram::start().await;
        let bot = bot_for(&fake);
        let a = fake.send_text(1, 1, "a");
        fake.send_text(1, 1, "b");
        let c = fake.send_text(1, 1, "c");

        let ups = bot.get_updates().limit(2).await.unwrap();
        assert_eq!(ups.iter().map(|u| u.id.0 as i64).collect::<Vec<_>>(), vec![a.update_id, a.update_id + 1]);
        let ups = bot.get_updates().offset(ups[1].id.as_offset()).await.unwrap();
        assert_eq!(ups.len(), 1);
        assert_eq!(ups[0].id.0 as i64, c.update_id);
        assert_eq!(fake.pending_updates(), 1);
        let next = ups[0].id.as_offset();

        // A long poll wakes up as soon as an update arrives.
        let t0 = Instant::now();
        let poll = tokio::spawn(bot.get_updates().offset(next).timeout(5).send().into_future());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let d = fake.send_text(1, 1, "d");
        let ups = poll.await.unwrap().unwrap();
        assert_eq!(ups[0].id.0 as i64, d.update_id);
        assert!(t0.elapsed() < Duration::from_secs(2));
        assert_eq!(fake.pending_updates(), 1, "c is confirmed, d is not yet");

        // An empty long poll lasts its timeout.
        let t0 = Instant::now();
        let ups = bot.get_updates().offset(ups[0].id.as_offset()).timeout(1).await.unwrap();
        assert!(ups.is_empty());
        assert!(t0.elapsed() >= Duration::from_millis(950) && t0.elapsed() < Duration::from_secs(3));
        assert_eq!(fake.pending_updates(), 0);

        // Negative offset: only the last update survives.
        fake.send_text(1, 1, "e");
        let g = {
            fake.send_text(1, 1, "f");
            fake.send_text(1, 1, "g")
        };
        let ups = bot.get_updates().offset(-1).await.unwrap();
        assert_eq!(ups.len(), 1);
        assert_eq!(ups[0].id.0 as i64, g.update_id);
        bot.get_updates().offset(ups[0].id.as_offset()).await.unwrap();

        // allowed_updates filters.
        fake.inline_query(1, "q");
        let m = fake.send_text(1, 1, "m");
        let ups = bot.get_updates().allowed_updates(vec![AllowedUpdate::Message]).await.unwrap();
        assert_eq!(ups.iter().map(|u| u.id.0 as i64).collect::<Vec<_>>(), vec![m.update_id]);
        bot.get_updates().offset(ups[0].id.as_offset()).allowed_updates(vec![]).await.unwrap();

        // A second poller ends the first one with 409 Conflict.
        let mark = fake.mark();
        let first = tokio::spawn(bot.get_updates().timeout(5).send().into_future());
        tokio::time::sleep(Duration::from_millis(200)).await;
        bot.get_updates().timeout(0).await.unwrap();
        let err = first.await.unwrap().unwrap_err();
        assert!(matches!(err, RequestError::Api(ApiError::TerminatedByOtherGetUpdates)), "{err:?}");
        assert!(fake.calls().iter().skip(mark).any(|c| c.error().is_some_and(|(s, _)| s == 409)));

        // Shutdown ends a pending poll at once.
        let poll = tokio::spawn(bot.get_updates().timeout(5).send().into_future());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t0 = Instant::now();
        fake.shutdown();
        let _ = poll.await.unwrap();
        assert!(t0.elapsed() < Duration::from_secs(2));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_surface_as_retry_after() {
    bounded(async {
        let fake = FakeTelegram::start().await;
        let bot = bot_for(&fake);

        // A plain Bot surfaces the 429 at once; it does not retry by itself.
        fake.fail_with_429("sendMessage", 1, 1);
        let t0 = Instant::now();
        let err = bot.send_message(ChatId(5), "x").await.unwrap_err();
        assert!(matches!(err, RequestError::RetryAfter(s) if s.seconds() == 1), "{err:?}");
        assert!(t0.elapsed() < Duration::from_millis(900));
        bot.send_message(ChatId(5), "x").await.unwrap();
        let first = &fake.calls_of("sendMessage")[0];
        assert_eq!(
            first.outcome,
            Outcome::Err { status: 429, description: "Too Many Requests: retry after 1".into(), retry_after: Some(1) }
        );

        // Honouring it is the caller's job: wait retry_after, send again.
        fake.fail_with_429("sendMessage", 1, 1);
        let t0 = Instant::now();
        let sent = loop {
            match bot.send_message(ChatId(6), "y").await {
                Err(RequestError::RetryAfter(s)) => tokio::time::sleep(s.duration()).await,
                other => break other,
            }
        };
        sent.unwrap();
        assert!(t0.elapsed() >= Duration::from_millis(1000), "{:?}", t0.elapsed());
        let to6: Vec<_> = fake.calls_of("sendMessage").into_iter().filter(|c| c.chat_id() == Some(6)).collect();
        assert_eq!(to6.len(), 2);
        assert!(!to6[0].is_ok() && to6[1].is_ok());
        assert_eq!(fake.counters().injected_429, 2);
        assert_eq!(fake.sent_messages(6).len(), 1);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_drops_delays_and_api_errors() {
    bounded(async {
        let fake = FakeTelegram::start().await;
        let bot = bot_for(&fake);
        let http = reqwest::Client::new();
        let base = format!("{}/bot{}", fake.api_url_string(), fake.token());

        // 5xx: checked over raw HTTP, because teloxide sleeps 10 s after any 5xx.
        fake.fail_with_status("getMe", 1, 500);
        fake.fail_with_status("sendMessage", 1, 502);
        let r = http.post(format!("{base}/getMe")).send().await.unwrap();
        assert_eq!(r.status(), 500);
        let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        assert_eq!(v, json!({"ok": false, "error_code": 500, "description": "Internal Server Error"}));
        let r =
            http.post(format!("{base}/sendMessage")).json(&json!({"chat_id": 1, "text": "x"})).send().await.unwrap();
        assert_eq!(r.status(), 502);
        assert_eq!(http.post(format!("{base}/getMe")).send().await.unwrap().status(), 200, "only the next call fails");
        assert!(fake.sent_messages(1).is_empty());

        // A dropped connection is a network error for teloxide; the next call works.
        fake.drop_connections("sendMessage", 1);
        let err = bot.send_message(ChatId(1), "x").await.unwrap_err();
        assert!(matches!(err, RequestError::Network(_)), "{err:?}");
        bot.send_message(ChatId(1), "x").await.unwrap();
        assert!(fake.calls_of("sendMessage").iter().any(|c| c.outcome == Outcome::Dropped));

        // Delays.
        fake.delay("getMe", 1, Duration::from_millis(300));
        let t0 = Instant::now();
        bot.get_me().await.unwrap();
        assert!(t0.elapsed() >= Duration::from_millis(300));
        bot.get_me().await.unwrap();
        let me_calls = fake.calls_of("getMe");
        let held = |c: &articlebot_testkit::Call| c.answered_at - c.received_at;
        assert!(held(&me_calls[2]) >= Duration::from_millis(300));
        assert!(held(&me_calls[3]) < Duration::from_millis(300), "the delay rule is used up");

        // Any API error, for one chat only, twice.
        fake.add_fault(
            FaultRule::on(
                "sendMessage",
                Fault::ApiError { code: 403, description: "Forbidden: bot was blocked by the user".into() },
            )
            .for_chat(9)
            .times(2),
        );
        bot.send_message(ChatId(8), "x").await.unwrap();
        for _ in 0..2 {
            assert!(matches!(bot.send_message(ChatId(9), "x").await, Err(RequestError::Api(ApiError::BotBlocked))));
        }
        bot.send_message(ChatId(9), "x").await.unwrap();

        // A rule for every method, forever, until cleared.
        fake.add_fault(FaultRule::any_method(Fault::TooManyRequests { retry_after: 3 }).forever());
        assert!(bot.get_me().await.is_err() && bot.send_message(ChatId(1), "x").await.is_err());
        fake.clear_faults();
        bot.get_me().await.unwrap();
        assert!(fake.counters().injected_faults >= 7);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_survives_get_updates_faults() {
    bounded(async {
        let fake = FakeTelegram::start().await;
        fake.drop_connections("getUpdates", 2);
        fake.add_fault(FaultRule::on("getUpdates", Fault::TooManyRequests { retry_after: 1 }));
        let bot = run_echo_bot(&fake).await;
        let r = fake.send_text_and_wait(3, 3, "still there?", T).await.expect("the bot recovers");
        assert!(r.plain.starts_with("echo: still there?"));
        let polls = fake.calls_of("getUpdates");
        assert_eq!(polls.iter().filter(|c| c.outcome == Outcome::Dropped).count(), 2);
        assert_eq!(polls.iter().filter(|c| c.error().is_some_and(|(s, _)| s == 429)).count(), 1);
        bot.stop().await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limiter_enforces_telegram_limits() {
    bounded(async {
        let fake = FakeTelegram::start().await;
        let bot = bot_for(&fake);
        // Off by default.
        for _ in 0..3 {
            bot.send_message(ChatId(1), "x").await.unwrap();
        }

        fake.enable_rate_limits(RateLimits::default());
        bot.send_message(ChatId(1), "x").await.unwrap();
        let err = bot.send_message(ChatId(1), "x").await.unwrap_err();
        assert!(matches!(err, RequestError::RetryAfter(s) if s.seconds() == 1), "{err:?}");
        // Chat actions and edits are not messages.
        bot.send_chat_action(ChatId(1), ChatAction::Typing).await.unwrap();

        // Overall: 30 messages a second by default (a unit test checks that exactly); 5 here so
        // that a slow machine still sends them within the second.
        fake.enable_rate_limits(RateLimits { overall_per_sec: 5, ..RateLimits::default() });
        for chat in 100..105 {
            bot.send_message(ChatId(chat), "x").await.unwrap();
        }
        assert!(matches!(bot.send_message(ChatId(105), "x").await, Err(RequestError::RetryAfter(_))));
        assert_eq!(fake.counters().rate_limited, 2);

        // Groups: 20 a minute (shortened here by a custom limit of 2).
        fake.enable_rate_limits(RateLimits { per_group_per_min: 2, per_chat_per_sec: 100, ..RateLimits::default() });
        bot.send_message(ChatId(-5), "x").await.unwrap();
        bot.send_message(ChatId(-5), "x").await.unwrap();
        let err = bot.send_message(ChatId(-5), "x").await.unwrap_err();
        assert!(matches!(err, RequestError::RetryAfter(s) if s.seconds() > 50), "{err:?}");

        // A sender that keeps one message a second per chat never sees a 429.
        fake.enable_rate_limits(RateLimits::default());
        let before = fake.counters().rate_limited;
        for k in 0..3 {
            if k > 0 {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            bot.send_message(ChatId(2), format!("m{k}")).await.unwrap();
        }
        assert_eq!(fake.counters().rate_limited, before);
        assert_eq!(fake.sent_messages(2).len(), 3);

        fake.disable_rate_limits();
        bot.send_message(ChatId(2), "x").await.unwrap();
        bot.send_message(ChatId(2), "x").await.unwrap();
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_delivery_to_teloxide() {
    bounded(async {
        let fake = FakeTelegram::start().await;
        let bot = bot_for(&fake);
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let url: url::Url = format!("http://{addr}/hook").parse().unwrap();
        // setWebhook goes out as multipart/form-data.
        let options = webhooks::Options::new(addr, url.clone()).secret_token("s3cret_token".into());
        let (listener, stop, router) = webhooks::axum_to_router(bot.clone(), options).await.unwrap();
        assert_eq!(fake.webhook_url().as_deref(), Some(url.as_str()));
        assert_eq!(fake.calls_of("setWebhook")[0].str_param("secret_token"), Some("s3cret_token"));
        let server = tokio::spawn(axum::serve(tcp, router).with_graceful_shutdown(stop).into_future());

        let mut dispatcher = Dispatcher::builder(bot.clone(), schema()).build();
        let token = dispatcher.shutdown_token();
        let handle = tokio::spawn(async move {
            dispatcher.dispatch_with_listener(listener, LoggingErrorHandler::new()).await;
        });

        let r = fake.send_text_and_wait(5, 5, "via webhook", T).await.expect("a reply");
        assert!(r.plain.starts_with("echo: via webhook"), "{}", r.plain);
        assert!(fake.wait_all_confirmed(T).await);
        assert_eq!(bot.get_webhook_info().await.unwrap().url.as_ref().map(|u| u.as_str()), Some(url.as_str()));
        // While a webhook is set, getUpdates is refused.
        assert!(bot.get_updates().await.is_err());
        assert_eq!(fake.calls_of("getUpdates")[0].error().map(|e| e.0), Some(409));

        // Stopping the dispatcher stops the listener, which deletes the webhook.
        let mark = fake.mark();
        stop_dispatcher(&token, handle).await;
        fake.wait_for_method(mark, "deleteWebhook", T).await.expect("deleteWebhook");
        assert!(fake.webhook_url().is_none());
        let _ = tokio::time::timeout(T, server).await;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_statistics() {
    bounded(async {
        let fake = FakeTelegram::start().await;
        let bot = run_echo_bot(&fake).await;
        let users: Vec<i64> = (1000..1040).collect();
        let questions = 3;
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        let fake = std::sync::Arc::new(fake);
        for &u in &users {
            let fake = fake.clone();
            tasks.push(tokio::spawn(async move {
                for q in 0..questions {
                    fake.send_text_and_wait(u, u, &format!("question {q}"), T).await.expect("a reply");
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let elapsed = t0.elapsed();
        let latencies = fake.reply_latencies();
        assert_eq!(latencies.len(), users.len() * questions);
        let stats = fake.stats();
        assert_eq!(stats.replies, users.len() * questions);
        assert_eq!(stats.updates_injected, users.len() * questions);
        let cs = fake.chat_stats(users[0]);
        assert_eq!((cs.injected.len(), cs.replies.len()), (questions, questions));
        assert!(cs.replies.windows(2).all(|w| w[0].at <= w[1].at));
        let max = latencies.iter().max().unwrap();
        eprintln!(
            "load: {} replies in {:?} ({:.0}/s), max latency {:?}",
            stats.replies,
            elapsed,
            stats.replies as f64 / elapsed.as_secs_f64(),
            max
        );
        bot.stop().await;
    })
    .await
}
