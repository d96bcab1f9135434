//! The dptree handler tree. Gates are branches: who sent it (not a bot), whether a group message
//! is addressed to us, what kind of message it is, per-user flood control, admin rights. Each
//! endpoint turns one kind of update into engine calls and the reply into Bot API calls; nothing
//! here decides what to answer. An update no branch takes goes to the dispatcher's default
//! handler, which takes it out of the inbox.

use std::sync::Arc;
use std::time::Instant;

use articlebot_engine::vocabulary::AdminCommand;
use articlebot_engine::{now_unix, ErrorChain, Input, Outcome, Reply, Store, User};
use teloxide::dispatching::{UpdateFilterExt, UpdateHandler};
use teloxide::payloads::AnswerInlineQuerySetters;
use teloxide::prelude::*;
use teloxide::types::{
    InlineQueryResult, InlineQueryResultArticle, InputMessageContent, InputMessageContentText, MessageId, MessageKind,
    ParseMode,
};

use super::admin;
use super::api::{self, CallError};
use super::app::App;
use super::callback::{Action, CallbackError};
use super::command::{addressed_to_us, parse_text, Request};
use super::inbox::handled;
use super::limits::FloodVerdict;
use super::metrics;
use super::render::{self, escape, Rendered};
use super::send::{answer_callback, deliver, show_typing, Dest};
use super::HandlerResult;

pub const FLOOD_NOTICE: &str = "You're sending messages very fast. I'll answer again in a few seconds.";

/// The handler tree: messages (new and edited), button taps, inline queries.
pub fn schema() -> UpdateHandler<Box<dyn std::error::Error + Send + Sync + 'static>> {
    dptree::entry()
        .branch(Update::filter_message().chain(messages()))
        .branch(Update::filter_edited_message().chain(messages()))
        .branch(Update::filter_callback_query().chain(button_taps()))
        .branch(Update::filter_inline_query().endpoint(on_inline))
}

fn messages() -> UpdateHandler<Box<dyn std::error::Error + Send + Sync + 'static>> {
    dptree::filter_map(|msg: Message| msg.from.filter(|u| !u.is_bot))
        .filter(|msg: Message, app: Arc<App>| addressed_to_us(&msg, &app.bot_username))
        // Service messages (a pin, a member joining, a topic created) are not the user talking.
        .filter(|msg: Message| matches!(msg.kind, MessageKind::Common(_) | MessageKind::Dice(_)))
        // An album arrives as one message per photo: "send text" once is enough.
        .filter(|msg: Message, app: Arc<App>| msg.media_group_id().is_none_or(|g| app.first_of_album(&g.0)))
        .map(|from: teloxide::types::User, app: Arc<App>| app.flood.check(from.id.0 as i64, Instant::now()))
        .branch(dptree::filter(|v: FloodVerdict| v == FloodVerdict::Notice).endpoint(flood_notice))
        .branch(
            dptree::filter(|v: FloodVerdict| v == FloodVerdict::Allow)
                .map(|msg: Message, app: Arc<App>| match msg.text() {
                    Some(t) => parse_text(t, &app.bot_username),
                    None => Request::Conversation(Input::NotText),
                })
                .branch(
                    dptree::filter_map(|r: Request| match r {
                        Request::Admin(cmd) => Some(cmd),
                        _ => None,
                    })
                    .branch(
                        dptree::filter(|app: Arc<App>, from: teloxide::types::User| app.is_admin(from.id.0 as i64))
                            .branch(
                                dptree::filter(|cmd: AdminCommand, msg: Message| admin::allowed_here(&cmd, &msg))
                                    .endpoint(admin::run),
                            )
                            .endpoint(admin::private_only),
                    )
                    .endpoint(admin::refuse),
                )
                .branch(
                    dptree::filter_map(|r: Request, msg: Message| match r {
                        Request::Conversation(input) => Some(input),
                        // Probably another bot's command in a group; help in a private chat.
                        Request::Unknown if msg.chat.is_private() => Some(Input::Help),
                        _ => None,
                    })
                    .endpoint(on_message),
                ),
        )
}

fn button_taps() -> UpdateHandler<Box<dyn std::error::Error + Send + Sync + 'static>> {
    // Button taps count against the same per-user budget as messages; every tap is still
    // answered, so the client stops its spinner.
    dptree::map(|q: CallbackQuery, app: Arc<App>| app.flood.check(q.from.id.0 as i64, Instant::now()))
        .branch(dptree::filter(|v: FloodVerdict| v != FloodVerdict::Allow).endpoint(flooded_tap))
        .map(|q: CallbackQuery| Action::decode(q.data.as_deref().unwrap_or("")))
        .branch(dptree::filter_map(|a: Result<Action, CallbackError>| a.err()).endpoint(refused_tap))
        .branch(dptree::filter_map(|a: Result<Action, CallbackError>| a.ok()).endpoint(on_callback))
}

async fn flood_notice(bot: Bot, msg: Message, upd: Update, app: Arc<App>) -> HandlerResult {
    handled(&app.clone(), upd.id.0, "message", async move {
        metrics::count_error("flood");
        let r = Rendered { html: escape(FLOOD_NOTICE), keyboard: None };
        deliver(&bot, &app, Dest::of(&msg), &r, None).await.map_err(Into::into)
    })
    .await
}

async fn on_message(
    bot: Bot,
    msg: Message,
    from: teloxide::types::User,
    input: Input,
    upd: Update,
    app: Arc<App>,
) -> HandlerResult {
    handled(&app.clone(), upd.id.0, "message", async move {
        // Message text only at debug level: info logs carry no user content.
        tracing::debug!(chat = msg.chat.id.0, text = msg.text().unwrap_or(""), "message");
        // "typing…" counts against Telegram's 30 a second like a message: it takes a free slot
        // or is skipped, never making an answer wait.
        if app.limiter.try_acquire() {
            show_typing(&bot, Dest::of(&msg));
        }
        let user = User { id: from.id.0 as i64, language: from.language_code.clone() };
        let Some(outcome) = handle(&app, user, input, upd.id.0 as u64).await? else { return Ok(()) };
        respond(&bot, &app, Dest::of(&msg), None, from.id.0 as i64, upd.id.0 as u64, &outcome).await
    })
    .await
}

async fn flooded_tap(bot: Bot, q: CallbackQuery, verdict: FloodVerdict, upd: Update, app: Arc<App>) -> HandlerResult {
    handled(&app.clone(), upd.id.0, "callback", async move {
        if verdict == FloodVerdict::Notice {
            metrics::count_error("flood");
        }
        answer_callback(&bot, &q, (verdict == FloodVerdict::Notice).then_some(FLOOD_NOTICE)).await;
        Ok(())
    })
    .await
}

async fn refused_tap(bot: Bot, q: CallbackQuery, error: CallbackError, upd: Update, app: Arc<App>) -> HandlerResult {
    handled(&app.clone(), upd.id.0, "callback", async move {
        tracing::info!(user = q.from.id.0, error = %error, "refused button data");
        metrics::count_error("bad_callback");
        answer_callback(&bot, &q, Some(articlebot_engine::text::GONE)).await;
        Ok(())
    })
    .await
}

async fn on_callback(bot: Bot, q: CallbackQuery, action: Action, upd: Update, app: Arc<App>) -> HandlerResult {
    handled(&app.clone(), upd.id.0, "callback", async move {
        let user_id = q.from.id.0 as i64;
        let message: Option<MessageId> = q.regular_message().map(|m| m.id);
        // Replies go where the button was; an inline-mode message has no chat: the user's own.
        let to = q.regular_message().map_or(Dest::chat(ChatId(user_id)), Dest::of);
        let (input, edit) = match action {
            // Not a conversation step: an admin's decision, checked and carried out by `review`.
            Action::Review { id, op } => return super::review::tap(&bot, &app, &q, id, op).await,
            Action::Group { id, op } => return super::groups::tap(&bot, &app, &q, id, op).await,
            Action::Watch { question } => return watch_tap(&bot, &app, &q, question).await,
            Action::Open { key, section } => (Input::Open { key, section }, None),
            Action::Next { key, section } => (Input::Open { key, section: Some(section) }, message),
            Action::Topics { page } => (Input::Topics(page), message),
            Action::Feedback { key, section, up } => (Input::Feedback { key, section, up }, None),
            Action::NoneOfThese => (Input::NoneOfThese, None),
        };
        let user = User { id: user_id, language: q.from.language_code.clone() };
        let Some(outcome) = handle(&app, user, input, upd.id.0 as u64).await? else { return Ok(()) };
        if !super::replicas::owns(&app, upd.id.0).await {
            return Ok(());
        }
        match &outcome.reply {
            Reply::FeedbackThanks { up } => {
                answer_callback(&bot, &q, Some(articlebot_engine::text::feedback_thanks(*up))).await;
                mark_replied(&app, user_id, upd.id.0 as u64).await;
                Ok(())
            }
            Reply::Gone => {
                answer_callback(&bot, &q, Some(articlebot_engine::text::GONE)).await;
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

/// "Tell me when there's an answer": kept for the user (no message; the notice says so).
async fn watch_tap(bot: &Bot, app: &Arc<App>, q: &CallbackQuery, question: u64) -> HandlerResult {
    let user = q.from.id.0 as i64;
    let app2 = app.clone();
    let done = tokio::task::spawn_blocking(move || {
        let done = app2.engine.watch(user, question, now_unix());
        if done.is_ok() {
            if let Err(e) = app2.engine.store().flush() {
                tracing::warn!(error = %ErrorChain(&e), "could not flush the database");
            }
        }
        done
    })
    .await?;
    let notice = match done {
        Ok(articlebot_engine::Watching::Added) => articlebot_engine::text::WATCH_ADDED,
        Ok(articlebot_engine::Watching::Already) => articlebot_engine::text::WATCH_ALREADY,
        Ok(articlebot_engine::Watching::Full) => articlebot_engine::text::WATCH_FULL,
        Ok(articlebot_engine::Watching::Stale) => articlebot_engine::text::WATCH_STALE,
        Err(e) => {
            tracing::warn!(error = %ErrorChain(&e), "could not keep a watch");
            metrics::count_error("storage");
            articlebot_engine::text::WATCH_STALE
        }
    };
    tracing::info!(user, "watch tap");
    answer_callback(bot, q, Some(notice)).await;
    Ok(())
}

async fn on_inline(bot: Bot, q: InlineQuery, upd: Update, app: Arc<App>) -> HandlerResult {
    handled(&app.clone(), upd.id.0, "inline", async move {
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
        let answer = teloxide::payloads::AnswerInlineQuery::new(q.id.clone(), results).cache_time(30);
        api::call(&bot, &answer).await?;
        Ok(())
    })
    .await
}

/// Runs the conversation for one input and makes the new state durable before anything is sent.
/// On a database server that cannot be reached nothing is answered: the input is tried again
/// with backoff until the server is back (the chat's later updates wait behind it), since an
/// answer from a state that could not be read or kept would be the wrong one. `None`: the update
/// is left to the replica that holds its chat now (this one lost its claim meanwhile).
async fn handle(
    app: &Arc<App>,
    user: User,
    input: Input,
    update: u64,
) -> Result<Option<Outcome>, tokio::task::JoinError> {
    let mut wait = super::StoreBackoff::default();
    loop {
        let (app2, user, input) = (app.clone(), user.clone(), input.clone());
        let outcome = tokio::task::spawn_blocking(move || {
            let outcome = app2.engine.handle(&user, input, Some(update), now_unix());
            if !matches!(outcome.reply, Reply::Duplicate) && outcome.stored.is_ok() {
                if let Err(e) = app2.engine.store().flush() {
                    tracing::warn!(error = %ErrorChain(&e), "could not flush the database; answering anyway");
                    metrics::count_error("storage");
                }
            }
            outcome
        })
        .await?;
        match &outcome.stored {
            Err(e) if app.engine.store().is_shared() && e.is_transient() => {
                wait.failed("an update", e).await;
                if !super::replicas::owns(app, update as u32).await {
                    return Ok(None);
                }
            }
            _ => {
                wait.recovered("updates");
                return Ok(Some(outcome));
            }
        }
    }
}

async fn mark_replied(app: &Arc<App>, user: i64, update: u64) {
    let app = app.clone();
    let _ = tokio::task::spawn_blocking(move || {
        if let Err(e) = app.engine.replied(user, update) {
            tracing::warn!(error = %ErrorChain(&e), "could not record a sent reply");
        }
    })
    .await;
}

/// Logs the outcome (no message text at info level) and sends the reply.
async fn respond(
    bot: &Bot,
    app: &Arc<App>,
    to: Dest,
    edit: Option<MessageId>,
    user: i64,
    update: u64,
    outcome: &Outcome,
) -> HandlerResult {
    let chat = to.chat;
    if let Err(e) = &outcome.stored {
        tracing::warn!(chat = chat.0, error = %ErrorChain(e), "storage error; answering anyway");
        metrics::count_error("storage");
    }
    let intent = outcome.label();
    tracing::info!(
        chat = chat.0,
        intent,
        article = outcome.article.as_deref().unwrap_or("-"),
        us = outcome.elapsed.as_micros() as u64,
        "update"
    );
    metrics::count_reply(intent, outcome.elapsed);
    let sent: HandlerResult = match render::render(&outcome.reply, &app.bot_username) {
        // Another replica holds the chat now, and answers this update itself.
        Some(_) if !super::replicas::owns(app, update as u32).await => Ok(()),
        Some(r) => match deliver(bot, app, to, &r, edit).await {
            Ok(()) => {
                mark_replied(app, user, update).await;
                Ok(())
            }
            // Not marked: the replica holding the chat now sends it.
            Err(CallError::NotOurs) => Ok(()),
            Err(e) => Err(e.into()),
        },
        None => Ok(()),
    };
    // After the reply, and whether or not it could be sent: the signal is counted already.
    if outcome.learning_due {
        app.learn_in_background();
    }
    sent
}
