//! Bot API calls out: a rendered reply sent (or edited in place) within Telegram's limits, with
//! transient failures retried; callback answers; the typing indicator.

use std::time::{Duration, Instant};

use teloxide::prelude::*;
use teloxide::types::{ChatAction, LinkPreviewOptions, MessageId, ParseMode, ThreadId};
use teloxide::{ApiError, RequestError};

use super::app::App;
use super::metrics;
use super::render::Rendered;

/// Where a reply goes: the chat, and in a forum supergroup the topic the user wrote in (else it
/// would land in the General topic).
#[derive(Debug, Clone, Copy)]
pub struct Dest {
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

/// Errors worth retrying: the API or the network is having a bad moment.
pub fn is_transient(e: &RequestError) -> bool {
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
pub async fn deliver(
    bot: &Bot,
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
                metrics::count_error("send_retry");
                let wait = match &e {
                    RequestError::RetryAfter(s) => s.duration().max(delay),
                    _ => delay,
                };
                tracing::warn!(chat = chat.0, error = %e, retry_in_ms = wait.as_millis() as u64, "send failed; retrying");
                tokio::time::sleep(wait).await;
                delay = (delay * 2).min(MAX_BACKOFF);
            }
            Err(e) => {
                metrics::count_error("send_failed");
                tracing::error!(chat = chat.0, error = %e, "could not send a reply");
                return Err(e);
            }
        }
    }
}

/// Stops the button's spinner, with a notice when there is something to say.
pub async fn answer_callback(bot: &Bot, q: &CallbackQuery, text: Option<&str>) {
    let mut req = bot.answer_callback_query(q.id.clone());
    if let Some(t) = text {
        req = req.text(t);
    }
    if let Err(e) = req.await {
        tracing::warn!(error = %e, "could not answer a callback query");
    }
}

/// Shows "typing…" while the answer is prepared; it never delays or fails the answer.
pub fn show_typing(bot: &Bot, to: Dest) {
    let bot = bot.clone();
    tokio::spawn(async move {
        let mut req = bot.send_chat_action(to.chat, ChatAction::Typing);
        if let Some(thread) = to.thread {
            req = req.message_thread_id(thread);
        }
        let _ = req.await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_errors() {
        assert!(is_transient(&RequestError::Api(ApiError::Unknown("Internal Server Error".into()))));
        assert!(is_transient(&RequestError::RetryAfter(teloxide::types::Seconds::from_seconds(1))));
        assert!(!is_transient(&RequestError::Api(ApiError::MessageTextIsEmpty)));
    }
}
