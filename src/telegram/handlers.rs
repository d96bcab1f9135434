//! The dptree handler tree: each endpoint turns one kind of update into conversation calls and
//! the reply into Bot API calls. Nothing here decides what to answer.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use teloxide::dispatching::UpdateFilterExt;
use teloxide::prelude::*;
use teloxide::types::{
    ChatAction, InlineQueryResult, InlineQueryResultArticle, InputMessageContent, InputMessageContentText,
    LinkPreviewOptions, MessageId, ParseMode, ThreadId,
};
use teloxide::{ApiError, RequestError};

use super::callback::Action;
use super::render::{self, Rendered};
use super::{admin, App, FloodVerdict, TgBot};
use crate::conversation::{text, Input, Outcome, Reply, User as ConvUser};

pub type HandlerResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;

/// The handler tree: messages (new and edited), button taps, inline queries.
pub fn schema() -> teloxide::dispatching::UpdateHandler<Box<dyn std::error::Error + Send + Sync + 'static>> {
    dptree::entry()
        .branch(Update::filter_message().endpoint(on_message))
        .branch(Update::filter_edited_message().endpoint(on_message))
        .branch(Update::filter_callback_query().endpoint(on_callback))
        .branch(Update::filter_inline_query().endpoint(on_inline))
}

/// Runs a handler body so that a panic is logged instead of taking a worker down (teloxide
/// issue #1435), then takes the update out of the inbox: handled, whatever the outcome.
async fn guarded(
    app: &Arc<App>,
    update: u32,
    what: &'static str,
    fut: impl Future<Output = HandlerResult>,
) -> HandlerResult {
    let result = AssertUnwindSafe(fut).catch_unwind().await;
    super::inbox::done(app, update);
    match result {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(handler = what, panic = %msg, "handler panicked; the bot keeps running");
            super::metrics::count_error("panic");
            Ok(())
        }
    }
}

/// What a text message asks for.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Command {
    Conversation(Input),
    Reload,
    Stats,
    Unanswered,
    /// A command this bot does not have: help in a private chat, ignored in a group (it is
    /// probably another bot's).
    Unknown,
    /// A command for another bot in a group.
    NotForUs,
}

/// Reads a message text: commands (`/help`, `/help@this_bot`), or a question with any mention of
/// the bot removed.
pub(crate) fn parse_text(text: &str, bot_username: &str) -> Command {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix('/') {
        let (head, arg) = rest.split_once(char::is_whitespace).map_or((rest, ""), |(h, a)| (h, a.trim()));
        let (name, target) = head.split_once('@').map_or((head, None), |(n, b)| (n, Some(b)));
        if target.is_some_and(|b| !b.eq_ignore_ascii_case(bot_username)) {
            return Command::NotForUs;
        }
        return match name.to_ascii_lowercase().as_str() {
            "start" => Command::Conversation(Input::Start((!arg.is_empty()).then(|| arg.to_string()))),
            "help" => Command::Conversation(Input::Help),
            "topics" => Command::Conversation(Input::Topics(0)),
            "more" | "next" => Command::Conversation(Input::More),
            "back" => Command::Conversation(Input::Back),
            "reset" => Command::Conversation(Input::Reset),
            "forget" => Command::Conversation(Input::Forget),
            "reload" => Command::Reload,
            "stats" => Command::Stats,
            "unanswered" => Command::Unanswered,
            _ => Command::Unknown,
        };
    }
    let cleaned = strip_mentions(t, bot_username);
    Command::Conversation(Input::Question(cleaned.split_whitespace().collect::<Vec<_>>().join(" ")))
}

/// Byte offsets of `@bot_username` mentions, ignoring ASCII case. A mention ends where the
/// username does: `@botanist` is not a mention of `@bot` (usernames are `[A-Za-z0-9_]`).
fn mentions<'a>(text: &'a str, bot_username: &'a str) -> impl Iterator<Item = usize> + 'a {
    let (h, n) = (text.as_bytes(), bot_username.as_bytes());
    let is_name_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    (0..h.len()).filter(move |&i| {
        !n.is_empty()
            && h[i] == b'@'
            && h.len() >= i + 1 + n.len()
            && h[i + 1..i + 1 + n.len()].eq_ignore_ascii_case(n)
            && h.get(i + 1 + n.len()).is_none_or(|&b| !is_name_byte(b))
    })
}

/// The text with every mention of the bot replaced by a space; any Unicode around it is kept.
fn strip_mentions(text: &str, bot_username: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for i in mentions(text, bot_username) {
        out.push_str(&text[at..i]);
        out.push(' ');
        at = i + 1 + bot_username.len();
    }
    out.push_str(&text[at..]);
    out
}

/// In a group the bot answers only commands, mentions of itself and replies to its messages.
fn addressed_to_us(msg: &Message, bot_username: &str) -> bool {
    if msg.chat.is_private() {
        return true;
    }
    let text = msg.text().or(msg.caption()).unwrap_or("");
    if text.trim_start().starts_with('/') {
        return true;
    }
    if mentions(text, bot_username).next().is_some() {
        return true;
    }
    msg.reply_to_message()
        .and_then(|m| m.from.as_ref())
        .is_some_and(|u| u.is_bot && u.username.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(bot_username)))
}

async fn on_message(bot: TgBot, msg: Message, upd: Update, app: Arc<App>) -> HandlerResult {
    guarded(&app.clone(), upd.id.0, "message", async move {
        let Some(from) = msg.from.clone() else { return Ok(()) };
        if from.is_bot || !addressed_to_us(&msg, &app.bot_username) {
            return Ok(());
        }
        // Service messages (a pin, a member joining, a topic created) are not the user talking.
        if !matches!(msg.kind, teloxide::types::MessageKind::Common(_) | teloxide::types::MessageKind::Dice(_)) {
            return Ok(());
        }
        // An album arrives as one message per photo: "send text" once is enough.
        if let Some(album) = msg.media_group_id() {
            if !app.first_of_album(&album.0) {
                return Ok(());
            }
        }
        let user_id = from.id.0 as i64;
        match app.flood.check(user_id, Instant::now()) {
            FloodVerdict::Allow => {}
            FloodVerdict::Notice => {
                super::metrics::count_error("flood");
                let r = Rendered { html: render::escape(super::FLOOD_NOTICE), keyboard: None };
                return deliver(&bot, &app, Dest::of(&msg), &r, None).await.map_err(Into::into);
            }
            FloodVerdict::Drop => return Ok(()),
        }
        // Message text only at debug level: info logs carry no user content.
        tracing::debug!(chat = msg.chat.id.0, text = msg.text().unwrap_or(""), "message");
        let command = match msg.text() {
            Some(t) => parse_text(t, &app.bot_username),
            None => Command::Conversation(Input::NotText),
        };
        let input = match command {
            Command::NotForUs => return Ok(()),
            Command::Unknown if !msg.chat.is_private() => return Ok(()),
            Command::Unknown => Input::Help,
            Command::Reload | Command::Stats | Command::Unanswered => {
                return admin::run(&bot, &app, &msg, user_id, command).await;
            }
            Command::Conversation(input) => input,
        };
        // Typing shows while the answer is prepared; it must never delay or fail the answer.
        let typing = bot.clone();
        let to = Dest::of(&msg);
        tokio::spawn(async move {
            let mut req = typing.send_chat_action(to.chat, ChatAction::Typing);
            if let Some(thread) = to.thread {
                req = req.message_thread_id(thread);
            }
            let _ = req.await;
        });
        let user = ConvUser { id: user_id, language: from.language_code.clone() };
        let outcome = handle(&app, user, input, upd.id.0 as u64).await?;
        respond(&bot, &app, Dest::of(&msg), None, user_id, upd.id.0 as u64, &outcome).await
    })
    .await
}

async fn on_callback(bot: TgBot, q: CallbackQuery, upd: Update, app: Arc<App>) -> HandlerResult {
    guarded(&app.clone(), upd.id.0, "callback", async move {
        let user_id = q.from.id.0 as i64;
        // Button taps count against the same per-user budget as messages; every tap is still
        // answered, so the client stops its spinner.
        match app.flood.check(user_id, Instant::now()) {
            FloodVerdict::Allow => {}
            verdict => {
                if verdict == FloodVerdict::Notice {
                    super::metrics::count_error("flood");
                }
                let notice = (verdict == FloodVerdict::Notice).then_some(super::FLOOD_NOTICE);
                answer_callback(&bot, &q, notice).await;
                return Ok(());
            }
        }
        let action = match Action::decode(q.data.as_deref().unwrap_or("")) {
            Ok(a) => a,
            Err(e) => {
                tracing::info!(user = user_id, error = %e, "refused button data");
                super::metrics::count_error("bad_callback");
                answer_callback(&bot, &q, Some(text::GONE)).await;
                return Ok(());
            }
        };
        let message = q.regular_message().map(|m| (m.chat.id, m.id));
        // Replies go where the button was; an inline-mode message has no chat: the user's own.
        let to = q.regular_message().map_or(Dest::chat(ChatId(user_id)), Dest::of);
        let (input, edit) = match action {
            Action::Open { key, section } => (Input::Open { key, section }, None),
            Action::Next { key, section } => (Input::Open { key, section: Some(section) }, message.map(|m| m.1)),
            Action::Topics { page } => (Input::Topics(page), message.map(|m| m.1)),
            Action::Feedback { key, section, up } => (Input::Feedback { key, section, up }, None),
        };
        let user = ConvUser { id: user_id, language: q.from.language_code.clone() };
        let outcome = handle(&app, user, input, upd.id.0 as u64).await?;
        match &outcome.reply {
            Reply::FeedbackThanks { up } => {
                answer_callback(&bot, &q, Some(text::feedback_thanks(*up))).await;
                mark_replied(&app, user_id, upd.id.0 as u64).await;
                Ok(())
            }
            Reply::Gone => {
                answer_callback(&bot, &q, Some(text::GONE)).await;
                mark_replied(&app, user_id, upd.id.0 as u64).await;
                Ok(())
            }
            _ => {
                answer_callback(&bot, &q, None).await;
                respond(&bot, &app, to, edit, user_id, upd.id.0 as u64, &outcome).await
            }
        }
    })
    .await
}

async fn on_inline(bot: TgBot, q: InlineQuery, upd: Update, app: Arc<App>) -> HandlerResult {
    guarded(&app.clone(), upd.id.0, "inline", async move {
        let started = Instant::now();
        let app2 = app.clone();
        let query = q.query.clone();
        let found = tokio::task::spawn_blocking(move || app2.engine.search(&query, 5)).await?;
        let results: Vec<InlineQueryResult> = found
            .iter()
            .map(|(topic, snippet, url)| {
                let html = render::inline_html(topic, snippet, url.as_deref(), &app.bot_username);
                let description: String = snippet.text.chars().take(120).collect();
                InlineQueryResultArticle::new(
                    topic.key.clone(),
                    topic.title.clone(),
                    InputMessageContent::Text(InputMessageContentText::new(html).parse_mode(ParseMode::Html)),
                )
                .description(description)
                .into()
            })
            .collect();
        tracing::info!(
            user = q.from.id.0,
            results = results.len(),
            ms = started.elapsed().as_millis() as u64,
            "inline query"
        );
        bot.answer_inline_query(q.id.clone(), results).cache_time(30).await?;
        Ok(())
    })
    .await
}

/// Runs the conversation for one input and makes the new state durable before anything is sent.
async fn handle(app: &Arc<App>, user: ConvUser, input: Input, update: u64) -> Result<Outcome, tokio::task::JoinError> {
    let app = app.clone();
    tokio::task::spawn_blocking(move || {
        let outcome = app.engine.handle(&user, input, Some(update), crate::conversation::now_unix());
        if !matches!(outcome.reply, Reply::Duplicate) {
            if let Err(e) = crate::conversation::Store::flush(app.engine.store()) {
                tracing::warn!(error = %e, "could not flush the database; answering anyway");
                super::metrics::count_error("storage");
            }
        }
        outcome
    })
    .await
}

async fn mark_replied(app: &Arc<App>, user: i64, update: u64) {
    let app = app.clone();
    let _ = tokio::task::spawn_blocking(move || {
        if let Err(e) = app.engine.replied(user, update) {
            tracing::warn!(error = %e, "could not record a sent reply");
        }
    })
    .await;
}

/// Where a reply goes: the chat, and in a forum supergroup the topic the user wrote in (else it
/// would land in the General topic).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dest {
    pub chat: ChatId,
    pub thread: Option<ThreadId>,
}

impl Dest {
    pub fn chat(chat: ChatId) -> Self {
        Dest { chat, thread: None }
    }

    /// The chat and topic of a message, to answer it there.
    pub fn of(msg: &Message) -> Self {
        Dest { chat: msg.chat.id, thread: msg.thread_id.filter(|_| msg.is_topic_message) }
    }
}

/// Logs the outcome (no message text at info level) and sends the reply.
async fn respond(
    bot: &TgBot,
    app: &Arc<App>,
    to: Dest,
    edit: Option<MessageId>,
    user: i64,
    update: u64,
    outcome: &Outcome,
) -> HandlerResult {
    let chat = to.chat;
    if let Err(e) = &outcome.stored {
        tracing::warn!(chat = chat.0, error = %e, "storage error; answering anyway");
        super::metrics::count_error("storage");
    }
    let intent =
        outcome.intent.map(|i| format!("{i:?}").to_lowercase()).unwrap_or_else(|| reply_kind(&outcome.reply).into());
    tracing::info!(
        chat = chat.0,
        intent = %intent,
        article = outcome.article.as_deref().unwrap_or("-"),
        us = outcome.elapsed.as_micros() as u64,
        "update"
    );
    super::metrics::count_reply(&intent, outcome.elapsed);
    let Some(r) = render::render(&outcome.reply, &app.bot_username) else { return Ok(()) };
    deliver(bot, app, to, &r, edit).await?;
    mark_replied(app, user, update).await;
    Ok(())
}

fn reply_kind(r: &Reply) -> &'static str {
    match r {
        Reply::Answer(_) => "open",
        Reply::Suggest(_) => "suggest",
        Reply::Unknown => "unknown",
        Reply::Smalltalk { .. } => "smalltalk",
        Reply::Welcome { .. } => "start",
        Reply::Help { .. } => "help",
        Reply::Topics { .. } => "topics",
        Reply::EndOfArticle { .. } => "end",
        Reply::NothingToContinue => "nothing",
        Reply::Gone => "gone",
        Reply::NoSuchChoice => "no_choice",
        Reply::Reset => "reset",
        Reply::Forgotten { .. } => "forget",
        Reply::FeedbackThanks { .. } => "feedback",
        Reply::TextOnly => "not_text",
        Reply::Empty => "empty",
        Reply::Duplicate => "duplicate",
    }
}

async fn answer_callback(bot: &TgBot, q: &CallbackQuery, text: Option<&str>) {
    let mut req = bot.answer_callback_query(q.id.clone());
    if let Some(t) = text {
        req = req.text(t);
    }
    if let Err(e) = req.await {
        tracing::warn!(error = %e, "could not answer a callback query");
    }
}

/// Errors worth retrying: the API or the network is having a bad moment.
pub(crate) fn is_transient(e: &RequestError) -> bool {
    match e {
        RequestError::Network(_)
        | RequestError::Io(_)
        | RequestError::RetryAfter(_)
        | RequestError::InvalidJson { .. } => true,
        RequestError::Api(ApiError::Unknown(desc)) => {
            let d = desc.to_ascii_lowercase();
            [
                "internal server error",
                "bad gateway",
                "service unavailable",
                "gateway timeout",
                "too many requests",
                "timeout",
            ]
            .iter()
            .any(|s| d.contains(s))
        }
        _ => false,
    }
}

/// How long a reply keeps being retried while the API is down.
const DELIVERY_WINDOW: Duration = Duration::from_secs(600);
const MAX_BACKOFF: Duration = Duration::from_secs(20);

/// Sends (or edits in place) a rendered reply within Telegram's limits, retrying transient
/// failures (429 after its `retry_after`, 5xx, network) with capped backoff.
/// An edit that cannot be applied becomes a new message.
pub(crate) async fn deliver(
    bot: &TgBot,
    app: &App,
    to: Dest,
    r: &Rendered,
    mut edit: Option<MessageId>,
) -> Result<(), RequestError> {
    let chat = to.chat;
    let started = Instant::now();
    let mut delay = Duration::from_millis(200);
    let no_preview = LinkPreviewOptions {
        is_disabled: true,
        url: None,
        prefer_small_media: false,
        prefer_large_media: false,
        show_above_text: false,
    };
    loop {
        app.limiter.acquire(chat.0).await;
        let result = match edit {
            Some(id) => {
                let mut req = bot.edit_message_text(chat, id, r.html.clone()).parse_mode(ParseMode::Html);
                req = req.link_preview_options(no_preview.clone());
                if let Some(k) = &r.keyboard {
                    req = req.reply_markup(k.clone());
                }
                req.await.map(|_| ())
            }
            None => {
                let mut req = bot.send_message(chat, r.html.clone()).parse_mode(ParseMode::Html);
                req = req.link_preview_options(no_preview.clone());
                if let Some(thread) = to.thread {
                    req = req.message_thread_id(thread);
                }
                if let Some(k) = &r.keyboard {
                    req = req.reply_markup(k.clone());
                }
                req.await.map(|_| ())
            }
        };
        match result {
            Ok(()) => return Ok(()),
            Err(RequestError::Api(ApiError::MessageNotModified)) => return Ok(()),
            Err(RequestError::Api(ApiError::MessageToEditNotFound | ApiError::MessageCantBeEdited))
                if edit.is_some() =>
            {
                edit = None;
            }
            Err(e) if is_transient(&e) && started.elapsed() < DELIVERY_WINDOW => {
                super::metrics::count_error("send_retry");
                let wait = match &e {
                    RequestError::RetryAfter(s) => s.duration().max(delay),
                    _ => delay,
                };
                tracing::warn!(chat = chat.0, error = %e, retry_in_ms = wait.as_millis() as u64, "send failed; retrying");
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(MAX_BACKOFF);
            }
            Err(e) => {
                super::metrics::count_error("send_failed");
                tracing::error!(chat = chat.0, error = %e, "could not send a reply");
                return Err(e);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_mentions() {
        let q = |s: &str| Command::Conversation(Input::Question(s.into()));
        assert_eq!(parse_text("/start", "bot"), Command::Conversation(Input::Start(None)));
        assert_eq!(
            parse_text("/start knee-pain", "bot"),
            Command::Conversation(Input::Start(Some("knee-pain".into())))
        );
        assert_eq!(parse_text("/help@Bot", "bot"), Command::Conversation(Input::Help));
        assert_eq!(parse_text("/help@other_bot", "bot"), Command::NotForUs);
        assert_eq!(parse_text("/reload", "bot"), Command::Reload);
        assert_eq!(parse_text("/whatever", "bot"), Command::Unknown);
        assert_eq!(parse_text("@Bot why do knees hurt", "bot"), q("why do knees hurt"));
        assert_eq!(parse_text("ask @botanist, not @bot_2", "bot"), q("ask @botanist, not @bot_2"));
        assert_eq!(parse_text("@bot, knees?@bot", "bot"), q(", knees?"));
        assert_eq!(parse_text("  knee   pain  ", "bot"), q("knee pain"));
        assert_eq!(parse_text("İstanbul @BOT knees", "bot"), q("İstanbul knees"));
    }

    #[tokio::test]
    async fn a_panicking_handler_is_contained_and_its_update_leaves_the_inbox() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge");
        let kb = crate::knowledge::load(&dir).unwrap().kb;
        let store = crate::conversation::SledStore::temporary().unwrap();
        store.inbox_put(5, b"{}").unwrap();
        let engine = crate::conversation::Engine::new(crate::matching::Matcher::new(kb), store);
        let app = Arc::new(App::new(engine, Default::default(), dir, "bot".into(), Default::default(), None));
        let r = guarded(&app, 5, "test", async { panic!("boom") }).await;
        assert!(r.is_ok(), "the panic does not escape");
        assert!(app.engine.store().inbox_pending().unwrap().is_empty());
        let r = guarded(&app, 6, "test", async { Err("an error".into()) }).await;
        assert!(r.is_err(), "errors still reach teloxide's error handler");
    }

    #[test]
    fn transient_errors() {
        assert!(is_transient(&RequestError::Api(ApiError::Unknown("Internal Server Error".into()))));
        assert!(is_transient(&RequestError::RetryAfter(teloxide::types::Seconds::from_seconds(1))));
        assert!(!is_transient(&RequestError::Api(ApiError::MessageTextIsEmpty)));
    }
}
