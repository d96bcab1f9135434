//! Bot API calls out: a rendered reply sent (or edited in place) within Telegram's limits, with
//! transient failures retried; callback answers; the typing indicator.
//!
//! Every message and edit takes its slot from the send limiter first. Edits are
//! coalesced per message ([`Outbox`]): a chat has one edit waiting for a slot at a time, a newer
//! edit of a message replaces the one still waiting (the latest wins), and one that would show
//! what the message already shows is not sent. So quick taps on a group's buttons cost at most
//! every other slot of the chat, never a backlog its questions wait behind.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::IgnoredAny;
use teloxide::payloads::{
    AnswerCallbackQuerySetters, EditMessageTextSetters, SendChatActionSetters, SendMessageSetters,
};
use teloxide::prelude::*;
use teloxide::types::{ChatAction, LinkPreviewOptions, MessageId, ParseMode, ThreadId};
use teloxide::ApiError;
use tokio::sync::oneshot;

use super::api::{self, CallError};
use super::app::App;
use super::limits::RateLimiter;
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

/// How long a reply keeps being retried while the API is down.
const DELIVERY_WINDOW: Duration = Duration::from_secs(600);
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(20);
/// Messages whose shown content is remembered, to drop edits that would change nothing.
const SHOWN_REMEMBERED: usize = 4096;

fn no_preview() -> LinkPreviewOptions {
    LinkPreviewOptions {
        is_disabled: true,
        url: None,
        prefer_small_media: false,
        prefer_large_media: false,
        show_above_text: false,
    }
}

/// The wait before retry number `n` (1-based) after a transient failure: 200 ms doubling to
/// 20 s, or the API's `retry_after` when it asked for longer.
fn retry_wait(n: u32, e: &CallError) -> Duration {
    let backoff = (FIRST_BACKOFF * 2u32.saturating_pow(n.saturating_sub(1).min(8))).min(MAX_BACKOFF);
    match e {
        CallError::RetryAfter(d) => (*d).max(backoff),
        _ => backoff,
    }
}

/// Sends (or edits in place) a rendered reply within Telegram's limits, retrying transient
/// failures (429 after its `retry_after`, 5xx, network) with capped backoff. An edit that
/// cannot be applied becomes a new message. Edits are coalesced (see the module doc): an edit
/// that a newer one of the same message replaced counts as done.
pub async fn deliver(bot: &Bot, app: &App, to: Dest, r: &Rendered, edit: Option<MessageId>) -> Result<(), CallError> {
    match edit {
        Some(message) => app.outbox.edit(bot, &app.limiter, to, message, r).await,
        None => send_new(bot, &app.limiter, to, r).await,
    }
}

/// Sends a new message, retrying transient failures.
async fn send_new(bot: &Bot, limiter: &RateLimiter, to: Dest, r: &Rendered) -> Result<(), CallError> {
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        if !limiter.acquire(to.chat.0).await {
            return Err(CallError::NotOurs);
        }
        let mut payload = teloxide::payloads::SendMessage::new(to.chat, r.html.clone())
            .parse_mode(ParseMode::Html)
            .link_preview_options(no_preview());
        if let Some(thread) = to.thread {
            payload = payload.message_thread_id(thread);
        }
        if let Some(k) = &r.keyboard {
            payload = payload.reply_markup(k.clone());
        }
        match api::call_as::<_, IgnoredAny>(bot, &payload).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_transient() && started.elapsed() < DELIVERY_WINDOW => {
                attempt += 1;
                let wait = retry_wait(attempt, &e);
                metrics::count_error("send_retry");
                tracing::warn!(chat = to.chat.0, api = %api::host(bot), error = %e, retry_in_ms = wait.as_millis() as u64, "send failed; retrying");
                tokio::time::sleep(wait).await;
            }
            Err(e) => {
                metrics::count_error("send_failed");
                tracing::error!(chat = to.chat.0, error = %e, "could not send a reply");
                return Err(e);
            }
        }
    }
}

/// Sends a PNG as a photo with an HTML caption (at most [`MAX_CAPTION`] characters), retrying
/// transient failures for a little while: a chart is worth less than the text, which the caller
/// sends instead when this fails.
pub async fn send_photo(bot: &Bot, app: &App, to: Dest, png: &[u8], caption_html: &str) -> Result<(), CallError> {
    const PHOTO_WINDOW: Duration = Duration::from_secs(30);
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        if !app.limiter.acquire(to.chat.0).await {
            return Err(CallError::NotOurs);
        }
        let file = reqwest::multipart::Part::bytes(png.to_vec())
            .file_name("stats.png")
            .mime_str("image/png")
            .map_err(|_| CallError::BadAnswer { status: 0 })?;
        let mut form = reqwest::multipart::Form::new()
            .text("chat_id", to.chat.0.to_string())
            .text("caption", caption_html.to_string())
            .text("parse_mode", "HTML")
            .part("photo", file);
        if let Some(thread) = to.thread {
            form = form.text("message_thread_id", thread.0 .0.to_string());
        }
        match api::call_multipart(bot, "sendPhoto", form).await {
            Ok(_) => return Ok(()),
            Err(e) if e.is_transient() && started.elapsed() < PHOTO_WINDOW => {
                attempt += 1;
                let wait = retry_wait(attempt, &e);
                metrics::count_error("send_retry");
                tracing::warn!(chat = to.chat.0, api = %api::host(bot), error = %e, retry_in_ms = wait.as_millis() as u64, "sendPhoto failed; retrying");
                tokio::time::sleep(wait).await;
            }
            Err(e) => {
                metrics::count_error("send_failed");
                tracing::warn!(chat = to.chat.0, error = %e, "could not send a photo");
                return Err(e);
            }
        }
    }
}

/// Telegram's limit on a photo's caption, in characters after entity parsing.
pub const MAX_CAPTION: usize = 1024;

/// Edits a message once.
async fn edit_once(bot: &Bot, to: Dest, message: MessageId, r: &Rendered) -> Result<(), CallError> {
    let mut payload = teloxide::payloads::EditMessageText::new(to.chat, message, r.html.clone())
        .parse_mode(ParseMode::Html)
        .link_preview_options(no_preview());
    if let Some(k) = &r.keyboard {
        payload = payload.reply_markup(k.clone());
    }
    match api::call_as::<_, IgnoredAny>(bot, &payload).await {
        Err(CallError::Api { error: ApiError::MessageNotModified, .. }) => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Stops the button's spinner, with a notice when there is something to say. Not a message:
/// it takes no slot.
pub async fn answer_callback(bot: &Bot, q: &CallbackQuery, text: Option<&str>) {
    let mut payload = teloxide::payloads::AnswerCallbackQuery::new(q.id.clone());
    if let Some(t) = text {
        payload = payload.text(t);
    }
    if let Err(e) = api::call(bot, &payload).await {
        tracing::warn!(error = %e, "could not answer a callback query");
    }
}

/// Shows "typing…" while the answer is prepared; it never delays or fails the answer. Not a
/// message: Telegram's limits do not count it, so it takes no slot.
pub fn show_typing(bot: &Bot, to: Dest) {
    let bot = bot.clone();
    tokio::spawn(async move {
        let mut payload = teloxide::payloads::SendChatAction::new(to.chat, ChatAction::Typing);
        if let Some(thread) = to.thread {
            payload = payload.message_thread_id(thread);
        }
        if let Err(e) = api::call(&bot, &payload).await {
            tracing::debug!(error = %e, "could not show typing");
        }
    });
}

/// What happened to an edit handed to the [`Outbox`].
#[derive(Debug, Clone, PartialEq)]
enum Queued {
    /// Waits for its slot; `true`: start the chat's editor.
    Waiting(bool),
    /// The message shows this already.
    Identical,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shown {
    version: u64,
    content: u64,
}

struct PendingEdit {
    version: u64,
    content: u64,
    to: Dest,
    rendered: Rendered,
    since: Instant,
    attempts: u32,
    waiters: Vec<oneshot::Sender<Result<(), CallError>>>,
}

impl PendingEdit {
    fn resolve(self, result: Result<(), CallError>) {
        for w in self.waiters {
            let _ = w.send(result.clone());
        }
    }
}

/// A chat's edits waiting for a slot, one per message, oldest first. While it exists the chat's
/// editor runs.
#[derive(Default)]
struct ChatEdits {
    pending: BTreeMap<i32, PendingEdit>,
    order: VecDeque<i32>,
}

#[derive(Default)]
struct State {
    edits: HashMap<i64, ChatEdits>,
    /// What messages show, as far as we know, and in which order they were recorded.
    shown: HashMap<(i64, i32), Shown>,
    shown_order: VecDeque<(i64, i32)>,
}

/// The edits waiting, per chat, and what messages show. Bounded: a chat's entry goes when its
/// editor ends, and only the last few thousand messages' contents are remembered.
#[derive(Default)]
pub struct Outbox {
    state: Mutex<State>,
    version: AtomicU64,
}

fn content_of(r: &Rendered) -> u64 {
    let mut h = DefaultHasher::new();
    r.html.hash(&mut h);
    serde_json::to_string(&r.keyboard).unwrap_or_default().hash(&mut h);
    h.finish()
}

impl Outbox {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Hands an edit over. Submissions are numbered: the order the conversation produced the
    /// contents in, which is the order they must be shown in.
    fn submit(&self, to: Dest, message: i32, r: &Rendered, tx: oneshot::Sender<Result<(), CallError>>) -> Queued {
        let version = self.version.fetch_add(1, Ordering::Relaxed) + 1;
        let content = content_of(r);
        let chat = to.chat.0;
        let mut st = self.lock();
        let shown = st.shown.get(&(chat, message)).copied();
        let start = !st.edits.contains_key(&chat);
        let edits = st.edits.entry(chat).or_default();
        let replaced = edits.pending.remove(&message);
        if shown.is_some_and(|s| s.content == content) {
            // Back to what the message shows: whatever was waiting is moot.
            if let Some(old) = replaced {
                edits.order.retain(|m| *m != message);
                old.resolve(Ok(()));
            }
            if edits.pending.is_empty() && start {
                st.edits.remove(&chat);
            }
            return Queued::Identical;
        }
        let (since, attempts) = replaced.as_ref().map_or((Instant::now(), 0), |o| (o.since, o.attempts));
        match replaced {
            // The latest wins: the older one's callers are answered now, as if it was shown.
            Some(old) => old.resolve(Ok(())),
            None => edits.order.push_back(message),
        }
        let waiters = vec![tx];
        edits
            .pending
            .insert(message, PendingEdit { version, content, to, rendered: r.clone(), since, attempts, waiters });
        Queued::Waiting(start)
    }

    /// The message the chat's editor serves next; `None` (and the editor ends) when there is none.
    fn next_message(&self, chat: i64) -> Option<i32> {
        let mut st = self.lock();
        match st.edits.get(&chat).and_then(|e| e.order.front().copied()) {
            Some(m) => Some(m),
            None => {
                st.edits.remove(&chat);
                None
            }
        }
    }

    /// Takes the latest edit of `message` to send it now.
    fn take(&self, chat: i64, message: i32) -> Option<PendingEdit> {
        let mut st = self.lock();
        let edits = st.edits.get_mut(&chat)?;
        edits.order.retain(|m| *m != message);
        edits.pending.remove(&message)
    }

    /// Puts back an edit that failed transiently, unless a newer one is waiting.
    fn put_back(&self, chat: i64, message: i32, edit: PendingEdit) {
        let mut st = self.lock();
        let edits = st.edits.entry(chat).or_default();
        if edits.pending.contains_key(&message) {
            edit.resolve(Ok(()));
            return;
        }
        edits.order.push_front(message);
        edits.pending.insert(message, edit);
    }

    fn record_shown(&self, chat: i64, message: i32, shown: Shown) {
        let mut st = self.lock();
        if st.shown.insert((chat, message), shown).is_none() {
            st.shown_order.push_back((chat, message));
            if st.shown_order.len() > SHOWN_REMEMBERED {
                if let Some(old) = st.shown_order.pop_front() {
                    st.shown.remove(&old);
                }
            }
        }
    }

    /// Edits a message: waits until this edit, or a newer one of the same message, is shown.
    async fn edit(
        self: &Arc<Self>,
        bot: &Bot,
        limiter: &Arc<RateLimiter>,
        to: Dest,
        message: MessageId,
        r: &Rendered,
    ) -> Result<(), CallError> {
        let (tx, rx) = oneshot::channel();
        match self.submit(to, message.0, r, tx) {
            Queued::Identical => return Ok(()),
            Queued::Waiting(false) => {}
            Queued::Waiting(true) => {
                tokio::spawn(editor(bot.clone(), self.clone(), limiter.clone(), to.chat.0));
            }
        }
        // The editor always answers; a dropped sender means it was cancelled (shutdown).
        rx.await.unwrap_or(Ok(()))
    }
}

/// Sends a chat's waiting edits one at a time, each in its own slot, taking the latest content of
/// the message once the slot has come.
async fn editor(bot: Bot, outbox: Arc<Outbox>, limiter: Arc<RateLimiter>, chat: i64) {
    while let Some(message) = outbox.next_message(chat) {
        // An edit is a button tap's, answered already; it goes out whoever holds the chat.
        let _ = limiter.acquire(chat).await;
        let Some(mut edit) = outbox.take(chat, message) else { continue };
        let result = match edit_once(&bot, edit.to, MessageId(message), &edit.rendered).await {
            Err(CallError::Api { error: ApiError::MessageToEditNotFound | ApiError::MessageCantBeEdited, .. }) => {
                // Deleted, or too old to edit: the reply comes as a new message.
                send_new(&bot, &limiter, edit.to, &edit.rendered).await
            }
            Err(e) if e.is_transient() && edit.since.elapsed() < DELIVERY_WINDOW => {
                edit.attempts += 1;
                let wait = retry_wait(edit.attempts, &e);
                metrics::count_error("send_retry");
                tracing::warn!(chat, api = %api::host(&bot), error = %e, retry_in_ms = wait.as_millis() as u64, "edit failed; retrying");
                outbox.put_back(chat, message, edit);
                tokio::time::sleep(wait).await;
                continue;
            }
            other => other,
        };
        match &result {
            Ok(()) => outbox.record_shown(chat, message, Shown { version: edit.version, content: edit.content }),
            Err(e) => {
                metrics::count_error("send_failed");
                tracing::error!(chat, error = %e, "could not edit a message");
            }
        }
        edit.resolve(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(html: &str) -> Rendered {
        Rendered { html: html.into(), keyboard: None }
    }

    fn submit(o: &Outbox, message: i32, html: &str) -> (Queued, oneshot::Receiver<Result<(), CallError>>) {
        let (tx, rx) = oneshot::channel();
        (o.submit(Dest::chat(ChatId(-5)), message, &rendered(html), tx), rx)
    }

    #[test]
    fn edits_of_a_message_coalesce_and_the_latest_wins() {
        let o = Outbox::default();
        let (q1, mut rx1) = submit(&o, 10, "section 2");
        assert_eq!(q1, Queued::Waiting(true), "the first edit starts the chat's editor");
        let (q2, _rx2) = submit(&o, 10, "section 3");
        assert_eq!(q2, Queued::Waiting(false));
        assert!(matches!(rx1.try_recv(), Ok(Ok(()))), "the replaced edit's caller is done at once");
        let (q3, _rx3) = submit(&o, 11, "topics page 2");
        assert_eq!(q3, Queued::Waiting(false));
        assert_eq!(o.next_message(-5), Some(10), "one queue per chat, oldest message first");
        let e = o.take(-5, 10).unwrap();
        assert_eq!(e.rendered.html, "section 3", "the latest content is what is sent");
        o.record_shown(-5, 10, Shown { version: e.version, content: e.content });
        assert_eq!(o.next_message(-5), Some(11));
        assert!(o.take(-5, 11).is_some());
        assert_eq!(o.next_message(-5), None, "the editor ends when nothing waits");
        assert!(!o.lock().edits.contains_key(&-5));
    }

    #[test]
    fn edits_that_change_nothing_are_not_sent() {
        let o = Outbox::default();
        let (_, _rx) = submit(&o, 10, "section 2");
        let e = o.take(-5, 10).unwrap();
        o.record_shown(-5, 10, Shown { version: e.version, content: e.content });
        assert_eq!(o.next_message(-5), None);
        assert_eq!(submit(&o, 10, "section 2").0, Queued::Identical);
        assert!(!o.lock().edits.contains_key(&-5), "nothing waits, no editor runs");
        let (q, mut rx) = submit(&o, 10, "section 3");
        assert_eq!(q, Queued::Waiting(true));
        assert_eq!(submit(&o, 10, "section 2").0, Queued::Identical, "back to what is shown");
        assert!(matches!(rx.try_recv(), Ok(Ok(()))));
        assert!(o.take(-5, 10).is_none(), "the moot edit is gone");
    }

    #[test]
    fn a_failed_edit_put_back_never_overwrites_a_newer_one() {
        let o = Outbox::default();
        let (_, mut old_rx) = submit(&o, 10, "old");
        let old = o.take(-5, 10).unwrap();
        // While the old one was on the wire, a newer one came.
        let (_, _rx) = submit(&o, 10, "new");
        o.put_back(-5, 10, old);
        assert!(matches!(old_rx.try_recv(), Ok(Ok(()))), "the old one is done: the newer one shows more");
        assert_eq!(o.take(-5, 10).unwrap().rendered.html, "new");
        let (_, _rx) = submit(&o, 11, "alone");
        let alone = o.take(-5, 11).unwrap();
        o.put_back(-5, 11, alone);
        assert_eq!(o.next_message(-5), Some(11), "retried first");
    }

    #[test]
    fn retry_waits_back_off_and_honour_retry_after() {
        let e = CallError::Server(502);
        let waits: Vec<u64> = (1..=9).map(|n| retry_wait(n, &e).as_millis() as u64).collect();
        assert_eq!(waits, vec![200, 400, 800, 1600, 3200, 6400, 12800, 20000, 20000]);
        assert_eq!(retry_wait(1, &CallError::RetryAfter(Duration::from_secs(3))), Duration::from_secs(3));
    }
}
