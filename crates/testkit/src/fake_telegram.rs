//! [`FakeTelegram`]: an in-process HTTP server on `127.0.0.1:<random port>` that speaks the
//! Telegram Bot API well enough for teloxide, for end-to-end tests, load runs and fault drills.
//!
//! ```no_run
//! # async fn demo() {
//! use articlebot_testkit::FakeTelegram;
//! use std::time::Duration;
//! let fake = FakeTelegram::start().await;
//! let bot = teloxide::Bot::new(fake.token()).set_api_url(fake.api_url());
//! // ... run the bot's dispatcher with `bot` (or start `articlebot serve` with
//! //     TELOXIDE_API_URL=fake.api_url() and the token fake.token()) ...
//! fake.send_text(42, 42, "what is a widget?");
//! let reply = fake.nth_reply(42, 0, Duration::from_secs(5)).await.expect("the bot answered");
//! assert!(reply.plain.contains("widget"));
//! # }
//! ```
//!
//! What it does:
//! - **Updates**: tests inject messages (text with `bot_command`/`mention` entities, replies,
//!   edits, stickers, photos, voice, locations, documents, contacts), button presses
//!   (`callback_query`), inline queries or raw updates. The bot receives them from `getUpdates`
//!   (long polling: `offset` confirms, negative offsets, `limit`, `timeout` honoured up to
//!   [`Options::max_poll_timeout`], `allowed_updates` filters, a second concurrent poll ends the
//!   first with `409 Conflict` like Telegram) or, after `setWebhook`, by POSTs to the webhook
//!   (with `X-Telegram-Bot-Api-Secret-Token`, one at a time, in order, retried until accepted).
//! - **Bot API methods**: `getMe`, `getUpdates`, `sendMessage`, `editMessageText`,
//!   `editMessageReplyMarkup`, `deleteMessage`, `answerCallbackQuery`, `answerInlineQuery`,
//!   `sendChatAction`, `setMyCommands`/`getMyCommands`/`deleteMyCommands`, `setWebhook`/
//!   `deleteWebhook`/`getWebhookInfo`, `close`, `logOut` and a few harmless setters (see
//!   [`IMPLEMENTED_METHODS`]). Method names are case-insensitive; parameters may come as JSON,
//!   form or multipart bodies or a query string. Other methods get
//!   `404 Not Found: method not found`; a wrong token gets `401 Unauthorized`.
//! - **Validation like Telegram's** where a bot can get it wrong: text 1..=4096 characters after
//!   entity parsing, well-formed HTML ([`super::html`]), inline keyboards (≤ 100 buttons,
//!   `callback_data` 1..=64 bytes, a button needs an action), edits of missing messages and
//!   edits that change nothing, unknown/already answered callback and inline query ids, bot
//!   command syntax, users who blocked the bot (`403`).
//! - **Recording**: every call ([`Call`]: method, parameters, times, outcome) and every message
//!   the bot sent or edited into a chat ([`Reply`]), with `wait_for*` helpers that always take
//!   a timeout.
//! - **Faults** ([`FaultRule`]): 429 with `retry_after`, 5xx, any API error, delays, dropped
//!   connections, per method/chat, for the next K calls or forever; and an optional rate
//!   limiter with Telegram's flood limits ([`RateLimits`]) that answers 429 and counts it.
//! - **Statistics** for load runs: replies per chat with timestamps, reply latencies, counters.
//!
//! How teloxide reacts (teloxide-core 0.13), useful when writing fault tests:
//! - a 429 becomes `RequestError::RetryAfter(n)`; a plain `Bot` does **not** retry, the caller
//!   gets the error at once and must wait `n` seconds itself. (teloxide's optional `Throttle`
//!   adaptor, feature `throttle`, waits and resends.) The polling listener pauses `getUpdates`
//!   for `n` seconds;
//! - any 5xx response makes teloxide sleep **10 s** before returning the error, so prefer 429s,
//!   API errors or dropped connections in tests that must be fast;
//! - a dropped connection is `RequestError::Network`; polling retries after its backoff.
//!
//! Limitations: no files (upload/download), no media sending, `MarkdownV2` is accepted without
//! validation, no business/payments/stickers API, webhooks are delivered over plain HTTP to any
//! port (Telegram requires HTTPS on 443/80/88/8443), one delivery at a time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming as HyperBody};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::body::parse_params;
use super::faults::{is_counted_send, Counters, Fault, FaultRule, RateLimiter, RateLimits};
use super::html::parse_html;
use super::updates::{content_json, ChatKind, Content, Incoming, TestChat, TestUser};

/// The token tests give teloxide; the bot's id is the part before `:`.
pub const TEST_TOKEN: &str = "123456:TEST";
/// The fake bot's username (without `@`).
pub const TEST_BOT_USERNAME: &str = "test_articlebot";

/// Bot API methods the fake implements (canonical spelling).
pub const IMPLEMENTED_METHODS: &[&str] = &[
    "getMe",
    "logOut",
    "close",
    "getUpdates",
    "setWebhook",
    "deleteWebhook",
    "getWebhookInfo",
    "sendMessage",
    "editMessageText",
    "editMessageReplyMarkup",
    "deleteMessage",
    "answerCallbackQuery",
    "answerInlineQuery",
    "sendChatAction",
    "setMyCommands",
    "getMyCommands",
    "deleteMyCommands",
    "setMyDescription",
    "setMyShortDescription",
    "setMyName",
    "setChatMenuButton",
    "setMessageReaction",
    "pinChatMessage",
    "unpinChatMessage",
    "leaveChat",
];

const MAX_TEXT: usize = 4096;
const MAX_BUTTONS: usize = 100;
const MAX_BODY: usize = 64 << 20;

/// Configuration of a [`FakeTelegram`].
#[derive(Clone, Debug)]
pub struct Options {
    /// The only token accepted (others get `401 Unauthorized`). Its numeric prefix is the bot's id.
    pub token: String,
    pub bot_username: String,
    pub bot_first_name: String,
    /// Upper bound of a long poll, whatever `timeout` the client asks for (teloxide's HTTP
    /// client gives up after 17 s).
    pub max_poll_timeout: Duration,
    /// Refuse an `&` that does not start an HTML entity (Telegram keeps it literally).
    pub strict_html_ampersand: bool,
    /// Check that every injected update deserializes as a teloxide `Update` (panics if not).
    pub validate_updates: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            token: TEST_TOKEN.into(),
            bot_username: TEST_BOT_USERNAME.into(),
            bot_first_name: "Test Article Bot".into(),
            max_poll_timeout: Duration::from_secs(10),
            strict_html_ampersand: false,
            validate_updates: true,
        }
    }
}

/// How the fake answered a call.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// `{"ok":true,"result":...}`.
    Ok(Value),
    /// `{"ok":false,"error_code":status,"description":...}` (with `retry_after` for 429s).
    Err { status: u16, description: String, retry_after: Option<u32> },
    /// The connection was closed without an answer.
    Dropped,
}

/// One Bot API call the bot made.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// Position in [`FakeTelegram::calls`].
    pub seq: usize,
    /// Canonical method name (`sendMessage`), or as sent if unknown.
    pub method: String,
    /// The parameters, always a JSON object.
    pub params: Value,
    pub received_at: Instant,
    pub answered_at: Instant,
    pub outcome: Outcome,
}

impl Call {
    pub fn is_ok(&self) -> bool {
        matches!(self.outcome, Outcome::Ok(_))
    }

    pub fn result(&self) -> Option<&Value> {
        match &self.outcome {
            Outcome::Ok(v) => Some(v),
            _ => None,
        }
    }

    /// `(HTTP status, description)` of a refused call.
    pub fn error(&self) -> Option<(u16, &str)> {
        match &self.outcome {
            Outcome::Err { status, description, .. } => Some((*status, description)),
            _ => None,
        }
    }

    pub fn param(&self, name: &str) -> Option<&Value> {
        self.params.get(name)
    }

    pub fn str_param(&self, name: &str) -> Option<&str> {
        self.params.get(name).and_then(Value::as_str)
    }

    pub fn chat_id(&self) -> Option<i64> {
        self.params.get("chat_id").and_then(Value::as_i64)
    }

    pub fn text(&self) -> Option<&str> {
        self.str_param("text")
    }
}

/// How a reply reached the chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyKind {
    /// `sendMessage`.
    Sent,
    /// `editMessageText` of an earlier message.
    Edited,
}

/// An inline keyboard button.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Button {
    pub text: String,
    pub callback_data: Option<String>,
    pub url: Option<String>,
}

/// A message the bot sent (or edited) into a chat, accepted by the fake.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub chat_id: i64,
    pub message_id: i32,
    pub kind: ReplyKind,
    /// The `text` parameter as the bot sent it (HTML source with `parse_mode=HTML`).
    pub text: String,
    /// The text Telegram shows: markup removed, entities decoded.
    pub plain: String,
    pub parse_mode: Option<String>,
    /// The inline keyboard, if any.
    pub reply_markup: Option<Value>,
    /// When the request reached the fake.
    pub at: Instant,
    /// The [`Call::seq`] of the request.
    pub call_seq: usize,
}

impl Reply {
    /// The inline keyboard's buttons, row by row.
    pub fn buttons(&self) -> Vec<Button> {
        buttons_of(self.reply_markup.as_ref())
    }

    /// The `callback_data` of the first button whose label contains `label`.
    pub fn button_data(&self, label: &str) -> Option<String> {
        self.buttons().into_iter().find(|b| b.text.contains(label)).and_then(|b| b.callback_data)
    }
}

fn buttons_of(markup: Option<&Value>) -> Vec<Button> {
    let rows = markup.and_then(|m| m.get("inline_keyboard")).and_then(Value::as_array);
    rows.into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .map(|b| Button {
            text: b.get("text").and_then(Value::as_str).unwrap_or_default().to_string(),
            callback_data: b.get("callback_data").and_then(Value::as_str).map(str::to_string),
            url: b.get("url").and_then(Value::as_str).map(str::to_string),
        })
        .collect()
}

/// An injected message: its update and where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageRef {
    pub update_id: i64,
    pub chat_id: i64,
    pub message_id: i32,
}

/// An injected callback or inline query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryRef {
    pub update_id: i64,
    /// `callback_query.id` / `inline_query.id`.
    pub id: String,
}

/// Everything injected into and sent to one chat, for load statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatStats {
    pub chat_id: i64,
    /// `(update_id, injected at)` of updates from this chat (messages, edits, button presses).
    pub injected: Vec<(i64, Instant)>,
    pub replies: Vec<Reply>,
}

/// Totals for a load run.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    pub calls: usize,
    pub calls_by_method: BTreeMap<String, usize>,
    pub updates_injected: usize,
    /// Updates handed to the bot at least once.
    pub updates_delivered: usize,
    pub replies: usize,
    pub counters: Counters,
    pub first_injected_at: Option<Instant>,
    pub last_reply_at: Option<Instant>,
}

/// A Bot API refusal.
#[derive(Clone, Debug)]
struct ApiErr {
    status: u16,
    description: String,
    retry_after: Option<u32>,
}

fn bad(description: impl Into<String>) -> ApiErr {
    let d = description.into();
    ApiErr { status: 400, description: format!("Bad Request: {d}"), retry_after: None }
}

fn too_many(retry_after: u32) -> ApiErr {
    ApiErr {
        status: 429,
        description: format!("Too Many Requests: retry after {retry_after}"),
        retry_after: Some(retry_after),
    }
}

struct UpdateRecord {
    id: i64,
    kind: String,
    json: Value,
    injected_at: Instant,
    delivered_at: Option<Instant>,
}

struct StoredMessage {
    json: Value,
    from_bot: bool,
    raw_text: Option<String>,
    parse_mode: Option<String>,
    reply_markup: Option<Value>,
    deleted: bool,
}

struct Webhook {
    url: String,
    secret_token: Option<String>,
    max_connections: Option<i64>,
}

#[derive(Default)]
struct State {
    /// All updates ever injected; `updates[i].id == i + 1`.
    updates: Vec<UpdateRecord>,
    /// Index of the first update not yet confirmed.
    queue_start: usize,
    allowed_updates: Option<Vec<String>>,
    poll_generation: u64,
    users: HashMap<i64, TestUser>,
    chats: HashMap<i64, TestChat>,
    blocked: HashSet<i64>,
    messages: HashMap<(i64, i32), StoredMessage>,
    last_message_id: HashMap<i64, i32>,
    /// Query id → answered.
    queries: HashMap<String, bool>,
    next_query: u64,
    next_file: u64,
    calls: Vec<Call>,
    replies: Vec<Reply>,
    replies_by_chat: HashMap<i64, Vec<usize>>,
    /// Wakes waiters for replies to one chat.
    reply_signals: HashMap<i64, watch::Sender<u64>>,
    injected_by_chat: HashMap<i64, Vec<usize>>,
    commands: BTreeMap<String, Value>,
    webhook: Option<Webhook>,
    webhook_error: Option<(u64, String)>,
    faults: Vec<FaultRule>,
    limiter: RateLimiter,
    counters: Counters,
}

struct Inner {
    opts: Options,
    bot_id: i64,
    state: Mutex<State>,
    /// Bumped when updates are injected, a poll starts or the webhook changes.
    updates_tx: watch::Sender<u64>,
    /// Bumped when anything tests can observe changes (calls, replies, deliveries).
    changes_tx: watch::Sender<u64>,
    shutdown_tx: watch::Sender<bool>,
}

/// The fake Bot API server. Stops when dropped (or on [`shutdown`](Self::shutdown)).
/// Methods take `&self`; share it between tasks with an `Arc`.
pub struct FakeTelegram {
    inner: Arc<Inner>,
    addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.shutdown();
        for t in &self.tasks {
            t.abort();
        }
    }
}

fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

impl FakeTelegram {
    /// Starts a server with [`Options::default`] (token [`TEST_TOKEN`]). Needs a tokio runtime.
    pub async fn start() -> FakeTelegram {
        Self::start_with(Options::default()).await
    }

    /// Starts a server on `127.0.0.1:0`. Panics if it cannot listen (test infrastructure).
    pub async fn start_with(opts: Options) -> FakeTelegram {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("fake Telegram: cannot listen on 127.0.0.1");
        let addr = listener.local_addr().expect("fake Telegram: local address");
        let bot_id = opts.token.split(':').next().and_then(|s| s.parse().ok()).unwrap_or(123_456);
        let inner = Arc::new(Inner {
            opts,
            bot_id,
            state: Mutex::new(State::default()),
            updates_tx: watch::channel(0).0,
            changes_tx: watch::channel(0).0,
            shutdown_tx: watch::channel(false).0,
        });
        let accept = tokio::spawn(accept_loop(inner.clone(), listener));
        let webhook = tokio::spawn(webhook_loop(inner.clone()));
        FakeTelegram { inner, addr, tasks: vec![accept, webhook] }
    }

    /// The base URL to give teloxide (`Bot::set_api_url`, `TELOXIDE_API_URL`).
    pub fn api_url(&self) -> reqwest::Url {
        reqwest::Url::parse(&self.api_url_string()).expect("valid URL")
    }

    /// [`api_url`](Self::api_url) as a string, e.g. `http://127.0.0.1:41234`.
    pub fn api_url_string(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The token the fake accepts.
    pub fn token(&self) -> &str {
        &self.inner.opts.token
    }

    pub fn bot_id(&self) -> i64 {
        self.inner.bot_id
    }

    pub fn bot_username(&self) -> &str {
        &self.inner.opts.bot_username
    }

    /// Stops accepting connections and ends pending long polls (they return no updates).
    pub fn shutdown(&self) {
        self.inner.shutdown_tx.send_replace(true);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.inner.lock()
    }

    // ----- people and chats -----

    /// Registers (or replaces) a user; unregistered ids get [`TestUser::default_for`].
    pub fn add_user(&self, user: TestUser) {
        self.state().users.insert(user.id, user);
    }

    /// Registers (or replaces) a group or supergroup; unregistered ids get
    /// [`TestChat::default_for`].
    pub fn add_chat(&self, chat: TestChat) {
        self.state().chats.insert(chat.id, chat);
    }

    /// The user blocked the bot: sending to their chat gets `403 Forbidden: bot was blocked by the user`.
    pub fn block_bot(&self, user_id: i64) {
        self.state().blocked.insert(user_id);
    }

    pub fn unblock_bot(&self, user_id: i64) {
        self.state().blocked.remove(&user_id);
    }

    // ----- injecting updates -----

    /// A user sends a message (see [`Incoming`]).
    pub fn send(&self, msg: Incoming) -> MessageRef {
        let (r, update) = {
            let mut st = self.state();
            let user = st.user(msg.user_id);
            let chat = st.chat(msg.chat_id);
            let message_id = st.next_message_id(msg.chat_id);
            let mut m = json!({
                "message_id": message_id,
                "from": user.to_json(),
                "chat": st.chat_json(&chat),
                "date": unix_now(),
            });
            st.next_file += 1;
            content_json(&mut m, &msg.content, st.next_file);
            if let Some(to) = msg.reply_to {
                m["reply_to_message"] = st.reply_target(msg.chat_id, to, self.inner.bot_json());
            }
            let raw_text = match &msg.content {
                Content::Text(t) => Some(t.clone()),
                _ => None,
            };
            st.messages.insert(
                (msg.chat_id, message_id),
                StoredMessage {
                    json: m.clone(),
                    from_bot: false,
                    raw_text,
                    parse_mode: None,
                    reply_markup: None,
                    deleted: false,
                },
            );
            let update = json!({ "message": m });
            let update_id = st.push_update("message", Some(msg.chat_id), update.clone());
            (MessageRef { update_id, chat_id: msg.chat_id, message_id }, (update_id, update))
        };
        self.after_inject(update);
        r
    }

    /// A user sends `text` (`/start param` is just text). In a private chat `chat_id == user_id`.
    pub fn send_text(&self, chat_id: i64, user_id: i64, text: &str) -> MessageRef {
        self.send(Incoming::text(chat_id, user_id, text))
    }

    /// A user sends `text` as a reply to message `reply_to` of the same chat.
    pub fn send_reply(&self, chat_id: i64, user_id: i64, text: &str, reply_to: i32) -> MessageRef {
        self.send(Incoming::text(chat_id, user_id, text).reply_to(reply_to))
    }

    pub fn send_sticker(&self, chat_id: i64, user_id: i64, emoji: &str) -> MessageRef {
        self.send(Incoming::new(chat_id, user_id, Content::Sticker { emoji: emoji.into() }))
    }

    pub fn send_photo(&self, chat_id: i64, user_id: i64, caption: Option<&str>) -> MessageRef {
        self.send(Incoming::new(chat_id, user_id, Content::Photo { caption: caption.map(str::to_string) }))
    }

    pub fn send_voice(&self, chat_id: i64, user_id: i64, seconds: u32) -> MessageRef {
        self.send(Incoming::new(chat_id, user_id, Content::Voice { seconds }))
    }

    pub fn send_location(&self, chat_id: i64, user_id: i64, latitude: f64, longitude: f64) -> MessageRef {
        self.send(Incoming::new(chat_id, user_id, Content::Location { latitude, longitude }))
    }

    /// The user edits their earlier message `message_id`: an `edited_message` update.
    pub fn edit_text(&self, chat_id: i64, user_id: i64, message_id: i32, new_text: &str) -> i64 {
        let update = {
            let mut st = self.state();
            let user = st.user(user_id);
            let chat = st.chat(chat_id);
            let mut m = match st.messages.get(&(chat_id, message_id)) {
                Some(s) => s.json.clone(),
                None => {
                    json!({ "message_id": message_id, "from": user.to_json(), "chat": st.chat_json(&chat), "date": unix_now() })
                }
            };
            if let Some(o) = m.as_object_mut() {
                o.remove("entities");
            }
            content_json(&mut m, &Content::Text(new_text.into()), 0);
            m["edit_date"] = json!(unix_now());
            if let Some(s) = st.messages.get_mut(&(chat_id, message_id)) {
                s.json = m.clone();
                s.raw_text = Some(new_text.into());
            }
            let update = json!({ "edited_message": m });
            (st.push_update("edited_message", Some(chat_id), update.clone()), update)
        };
        self.after_inject(update.clone());
        update.0
    }

    /// The user presses an inline button with `callback_data` on the bot's message `message_id`
    /// (which, as Telegram does, is attached to the query as it currently is).
    pub fn press_button(&self, chat_id: i64, user_id: i64, message_id: i32, callback_data: &str) -> QueryRef {
        let (r, update) = {
            let mut st = self.state();
            let user = st.user(user_id);
            let chat = st.chat(chat_id);
            let message = match st.messages.get(&(chat_id, message_id)) {
                Some(s) => s.json.clone(),
                None => json!({
                    "message_id": message_id, "from": self.inner.bot_json(), "chat": st.chat_json(&chat),
                    "date": unix_now(), "text": ""
                }),
            };
            let id = st.new_query_id();
            let update = json!({ "callback_query": {
                "id": id, "from": user.to_json(), "message": message,
                "chat_instance": format!("ci{chat_id}"), "data": callback_data,
            }});
            let update_id = st.push_update("callback_query", Some(chat_id), update.clone());
            (QueryRef { update_id, id }, (update_id, update))
        };
        self.after_inject(update);
        r
    }

    /// Presses the button labelled `label` (substring) on the bot's message; `None` if the fake
    /// knows no such message or button.
    pub fn press_button_labeled(&self, chat_id: i64, user_id: i64, message_id: i32, label: &str) -> Option<QueryRef> {
        let data = {
            let st = self.state();
            let m = st.messages.get(&(chat_id, message_id))?;
            buttons_of(m.reply_markup.as_ref()).into_iter().find(|b| b.text.contains(label))?.callback_data?
        };
        Some(self.press_button(chat_id, user_id, message_id, &data))
    }

    /// The user presses a button on a message sent via inline mode (no chat, only `inline_message_id`).
    pub fn press_inline_message_button(&self, user_id: i64, inline_message_id: &str, callback_data: &str) -> QueryRef {
        let (r, update) = {
            let mut st = self.state();
            let user = st.user(user_id);
            let id = st.new_query_id();
            let update = json!({ "callback_query": {
                "id": id, "from": user.to_json(), "inline_message_id": inline_message_id,
                "chat_instance": format!("ci-inline-{user_id}"), "data": callback_data,
            }});
            let update_id = st.push_update("callback_query", None, update.clone());
            (QueryRef { update_id, id }, (update_id, update))
        };
        self.after_inject(update);
        r
    }

    /// The user types `@bot query` (`chat_type` "sender": from their chat with the bot).
    pub fn inline_query(&self, user_id: i64, query: &str) -> QueryRef {
        let (r, update) = {
            let mut st = self.state();
            let user = st.user(user_id);
            let id = st.new_query_id();
            let update = json!({ "inline_query": {
                "id": id, "from": user.to_json(), "query": query, "offset": "", "chat_type": "sender",
            }});
            let update_id = st.push_update("inline_query", None, update.clone());
            (QueryRef { update_id, id }, (update_id, update))
        };
        self.after_inject(update);
        r
    }

    /// Any update: `body` is the update without `update_id`, e.g.
    /// `{"my_chat_member": {...}}`. Returns the `update_id`.
    pub fn push_raw_update(&self, body: Value) -> i64 {
        let kind = body.as_object().and_then(|o| o.keys().next().cloned()).unwrap_or_default();
        let update = {
            let mut st = self.state();
            (st.push_update(&kind, None, body.clone()), body)
        };
        self.after_inject(update.clone());
        update.0
    }

    fn after_inject(&self, (update_id, mut update): (i64, Value)) {
        if self.inner.opts.validate_updates {
            update["update_id"] = json!(update_id);
            // From text, as teloxide reads it: `from_value` does not work for `Update`.
            match serde_json::from_str::<teloxide::types::Update>(&update.to_string()) {
                Ok(u) if !matches!(u.kind, teloxide::types::UpdateKind::Error(_)) => {}
                other => panic!("fake Telegram built an update teloxide cannot read: {update}\n{other:?}"),
            }
        }
        self.inner.updates_tx.send_modify(|v| *v += 1);
        self.inner.changed();
    }

    // ----- faults and limits -----

    /// Adds a fault rule (checked after the ones added before).
    pub fn add_fault(&self, rule: FaultRule) {
        self.state().faults.push(rule);
    }

    pub fn clear_faults(&self) {
        self.state().faults.clear();
    }

    /// The next `times` calls of `method` get `429 Too Many Requests: retry after N`.
    pub fn fail_with_429(&self, method: &str, times: u32, retry_after: u32) {
        self.add_fault(FaultRule::on(method, Fault::TooManyRequests { retry_after }).times(times));
    }

    /// The next `times` calls of `method` get HTTP `status` (500, 502, ...).
    pub fn fail_with_status(&self, method: &str, times: u32, status: u16) {
        self.add_fault(FaultRule::on(method, Fault::ServerError { status }).times(times));
    }

    /// The next `times` calls of `method` are answered `delay` late.
    pub fn delay(&self, method: &str, times: u32, delay: Duration) {
        self.add_fault(FaultRule::on(method, Fault::Delay(delay)).times(times));
    }

    /// The next `times` calls of `method` lose their connection.
    pub fn drop_connections(&self, method: &str, times: u32) {
        self.add_fault(FaultRule::on(method, Fault::DropConnection).times(times));
    }

    /// Turns on Telegram's flood limits (429 with `retry_after` over the limit).
    pub fn enable_rate_limits(&self, limits: RateLimits) {
        let mut st = self.state();
        st.limiter.limits = Some(limits);
        st.limiter.reset();
    }

    pub fn disable_rate_limits(&self) {
        self.state().limiter.limits = None;
    }

    pub fn counters(&self) -> Counters {
        self.state().counters
    }

    // ----- inspection -----

    /// Every call so far, in the order they were answered.
    pub fn calls(&self) -> Vec<Call> {
        self.state().calls.clone()
    }

    /// Calls of one method (case-insensitive).
    pub fn calls_of(&self, method: &str) -> Vec<Call> {
        self.state().calls.iter().filter(|c| c.method.eq_ignore_ascii_case(method)).cloned().collect()
    }

    /// The number of calls so far: pass it to [`wait_for_after`](Self::wait_for_after).
    pub fn mark(&self) -> usize {
        self.state().calls.len()
    }

    /// Messages the bot sent to the chat (`sendMessage` accepted), in order.
    pub fn sent_messages(&self, chat_id: i64) -> Vec<Reply> {
        self.replies(chat_id).into_iter().filter(|r| r.kind == ReplyKind::Sent).collect()
    }

    /// Messages sent to or edited in the chat, in order.
    pub fn replies(&self, chat_id: i64) -> Vec<Reply> {
        let st = self.state();
        st.replies_by_chat
            .get(&chat_id)
            .map(|ix| ix.iter().map(|&i| st.replies[i].clone()).collect())
            .unwrap_or_default()
    }

    /// Every reply to every chat, in order.
    pub fn all_replies(&self) -> Vec<Reply> {
        self.state().replies.clone()
    }

    pub fn last_reply(&self, chat_id: i64) -> Option<Reply> {
        let st = self.state();
        st.replies_by_chat.get(&chat_id).and_then(|ix| ix.last()).map(|&i| st.replies[i].clone())
    }

    /// The message as Telegram currently has it (`Message` JSON), user's or bot's.
    pub fn message(&self, chat_id: i64, message_id: i32) -> Option<Value> {
        self.state().messages.get(&(chat_id, message_id)).filter(|m| !m.deleted).map(|m| m.json.clone())
    }

    /// Injected updates not yet confirmed by the bot.
    pub fn pending_updates(&self) -> usize {
        let st = self.state();
        st.updates.len() - st.queue_start
    }

    /// Whether the query was answered (`answerCallbackQuery` / `answerInlineQuery`).
    pub fn query_answered(&self, id: &str) -> bool {
        self.state().queries.get(id).copied().unwrap_or(false)
    }

    /// The commands set for `scope` (default `{"type":"default"}`) and language (`None` = all).
    pub fn commands(&self, scope: Option<Value>, language_code: Option<&str>) -> Option<Value> {
        self.state().commands.get(&commands_key(scope.as_ref(), language_code)).cloned()
    }

    /// The webhook URL set by `setWebhook`.
    pub fn webhook_url(&self) -> Option<String> {
        self.state().webhook.as_ref().map(|w| w.url.clone())
    }

    /// Totals (calls per method, updates, replies, counters).
    pub fn stats(&self) -> Stats {
        let st = self.state();
        let mut calls_by_method = BTreeMap::new();
        for c in &st.calls {
            *calls_by_method.entry(c.method.clone()).or_insert(0) += 1;
        }
        Stats {
            calls: st.calls.len(),
            calls_by_method,
            updates_injected: st.updates.len(),
            updates_delivered: st.updates.iter().filter(|u| u.delivered_at.is_some()).count(),
            replies: st.replies.len(),
            counters: st.counters,
            first_injected_at: st.updates.first().map(|u| u.injected_at),
            last_reply_at: st.replies.last().map(|r| r.at),
        }
    }

    /// Updates injected from and replies sent to one chat, with their times.
    pub fn chat_stats(&self, chat_id: i64) -> ChatStats {
        let st = self.state();
        ChatStats {
            chat_id,
            injected: st
                .injected_by_chat
                .get(&chat_id)
                .map(|ix| ix.iter().map(|&i| (st.updates[i].id, st.updates[i].injected_at)).collect())
                .unwrap_or_default(),
            replies: st
                .replies_by_chat
                .get(&chat_id)
                .map(|ix| ix.iter().map(|&i| st.replies[i].clone()).collect())
                .unwrap_or_default(),
        }
    }

    /// For every update injected into a chat: the time until the first reply to that chat that
    /// arrived after it and before the chat's next update. Updates without such a reply are skipped.
    pub fn reply_latencies(&self) -> Vec<Duration> {
        let st = self.state();
        let mut out = Vec::new();
        for (chat, injected) in &st.injected_by_chat {
            let Some(replies) = st.replies_by_chat.get(chat) else { continue };
            let mut r = 0;
            for (k, &ui) in injected.iter().enumerate() {
                let at = st.updates[ui].injected_at;
                let next = injected.get(k + 1).map(|&n| st.updates[n].injected_at);
                while r < replies.len() && st.replies[replies[r]].at < at {
                    r += 1;
                }
                if let Some(&ri) = replies.get(r) {
                    let reply_at = st.replies[ri].at;
                    if next.is_none_or(|n| reply_at < n) {
                        out.push(reply_at - at);
                    }
                }
            }
        }
        out
    }

    // ----- waiting (always bounded) -----

    /// Waits until `f` returns `Some` on the state, or the timeout.
    async fn wait_state<T>(&self, timeout: Duration, f: impl FnMut(&State) -> Option<T>) -> Option<T> {
        self.wait_on(self.inner.changes_tx.subscribe(), timeout, f).await
    }

    /// Like `wait_state`, woken only by replies to one chat (cheap with thousands of waiters).
    async fn wait_chat<T>(&self, chat_id: i64, timeout: Duration, f: impl FnMut(&State) -> Option<T>) -> Option<T> {
        let rx = self.state().reply_signal(chat_id).subscribe();
        self.wait_on(rx, timeout, f).await
    }

    async fn wait_on<T>(
        &self,
        mut rx: watch::Receiver<u64>,
        timeout: Duration,
        mut f: impl FnMut(&State) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            rx.borrow_and_update();
            if let Some(t) = f(&self.state()) {
                return Some(t);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return f(&self.state()),
            }
        }
    }

    /// The first call (already made or still to come) that satisfies `pred`.
    pub async fn wait_for(&self, pred: impl Fn(&Call) -> bool, timeout: Duration) -> Option<Call> {
        self.wait_for_after(0, pred, timeout).await
    }

    /// The first call with `seq >= mark` (see [`mark`](Self::mark)) that satisfies `pred`.
    pub async fn wait_for_after(&self, mark: usize, pred: impl Fn(&Call) -> bool, timeout: Duration) -> Option<Call> {
        let mut checked = mark;
        self.wait_state(timeout, |st| {
            let found = st.calls.iter().skip(checked).find(|c| pred(c)).cloned();
            checked = checked.max(st.calls.len());
            found
        })
        .await
    }

    /// Waits until the callback query `id` has been answered.
    pub async fn wait_query_answered(&self, id: &str, timeout: Duration) -> bool {
        self.wait_state(timeout, |st| st.queries.get(id).copied().filter(|&answered| answered)).await.is_some()
    }

    /// The first call of `method` with `seq >= mark`.
    pub async fn wait_for_method(&self, mark: usize, method: &str, timeout: Duration) -> Option<Call> {
        self.wait_for_after(mark, |c| c.method.eq_ignore_ascii_case(method), timeout).await
    }

    /// Waits until the chat has at least `n` replies; returns all of them.
    pub async fn wait_for_replies(&self, chat_id: i64, n: usize, timeout: Duration) -> Option<Vec<Reply>> {
        self.wait_chat(chat_id, timeout, |st| {
            let ix = st.replies_by_chat.get(&chat_id)?;
            (ix.len() >= n).then(|| ix.iter().map(|&i| st.replies[i].clone()).collect())
        })
        .await
    }

    /// The `n`-th (0-based) reply to the chat.
    pub async fn nth_reply(&self, chat_id: i64, n: usize, timeout: Duration) -> Option<Reply> {
        self.wait_chat(chat_id, timeout, |st| st.replies_by_chat.get(&chat_id)?.get(n).map(|&i| st.replies[i].clone()))
            .await
    }

    /// Sends `text` and waits for the next reply to the chat (the first one after those already
    /// there — with several messages in flight in one chat it may answer an earlier one).
    pub async fn send_text_and_wait(&self, chat_id: i64, user_id: i64, text: &str, timeout: Duration) -> Option<Reply> {
        let before = self.state().replies_by_chat.get(&chat_id).map_or(0, Vec::len);
        self.send_text(chat_id, user_id, text);
        self.nth_reply(chat_id, before, timeout).await
    }

    /// Waits until the update was handed to the bot (by `getUpdates` or the webhook).
    pub async fn wait_delivered(&self, update_id: i64, timeout: Duration) -> bool {
        self.wait_state(timeout, |st| {
            let u = st.updates.get(usize::try_from(update_id - 1).ok()?)?;
            u.delivered_at.map(|_| ())
        })
        .await
        .is_some()
    }

    /// Waits until the bot has confirmed every injected update (its next `getUpdates` offset is
    /// past them, or the webhook accepted them).
    pub async fn wait_all_confirmed(&self, timeout: Duration) -> bool {
        self.wait_state(timeout, |st| (st.queue_start == st.updates.len()).then_some(())).await.is_some()
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not wedge every other test using the fake.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn changed(&self) {
        self.changes_tx.send_modify(|v| *v += 1);
    }

    fn bot_json(&self) -> Value {
        json!({ "id": self.bot_id, "is_bot": true, "first_name": self.opts.bot_first_name, "username": self.opts.bot_username })
    }

    fn me_json(&self) -> Value {
        let mut me = self.bot_json();
        me["can_join_groups"] = json!(true);
        me["can_read_all_group_messages"] = json!(false);
        me["supports_inline_queries"] = json!(true);
        me["can_connect_to_business"] = json!(false);
        me["has_main_web_app"] = json!(false);
        me
    }

    fn record(&self, st: &mut State, method: &str, params: Value, received_at: Instant, outcome: Outcome) -> usize {
        let seq = st.calls.len();
        st.calls.push(Call {
            seq,
            method: method.to_string(),
            params,
            received_at,
            answered_at: Instant::now(),
            outcome,
        });
        seq
    }
}

impl State {
    fn user(&self, id: i64) -> TestUser {
        self.users.get(&id).cloned().unwrap_or_else(|| TestUser::default_for(id))
    }

    fn chat(&self, id: i64) -> TestChat {
        self.chats.get(&id).cloned().unwrap_or_else(|| TestChat::default_for(id))
    }

    fn chat_json(&self, chat: &TestChat) -> Value {
        let owner = (chat.kind == ChatKind::Private).then(|| self.user(chat.id));
        chat.to_json(owner.as_ref())
    }

    fn next_message_id(&mut self, chat_id: i64) -> i32 {
        let id = self.last_message_id.entry(chat_id).or_insert(0);
        *id += 1;
        *id
    }

    fn new_query_id(&mut self) -> String {
        self.next_query += 1;
        let id = format!("{}", 4_000_000_000_000_000_000u64 + self.next_query);
        self.queries.insert(id.clone(), false);
        id
    }

    /// The message a reply points at, as Telegram embeds it (without its own reply).
    fn reply_target(&self, chat_id: i64, message_id: i32, bot: Value) -> Value {
        match self.messages.get(&(chat_id, message_id)) {
            Some(s) => {
                let mut j = s.json.clone();
                if let Some(o) = j.as_object_mut() {
                    o.remove("reply_to_message");
                }
                j
            }
            None => {
                json!({ "message_id": message_id, "from": bot, "chat": self.chat_json(&self.chat(chat_id)), "date": unix_now(), "text": "" })
            }
        }
    }

    fn push_update(&mut self, kind: &str, chat_id: Option<i64>, json: Value) -> i64 {
        let id = self.updates.len() as i64 + 1;
        let index = self.updates.len();
        self.updates.push(UpdateRecord {
            id,
            kind: kind.to_string(),
            json,
            injected_at: Instant::now(),
            delivered_at: None,
        });
        if let Some(c) = chat_id {
            self.injected_by_chat.entry(c).or_default().push(index);
        }
        id
    }

    fn allowed(&self, kind: &str) -> bool {
        match &self.allowed_updates {
            Some(list) if !list.is_empty() => list.iter().any(|k| k == kind),
            // Telegram's default: everything but these.
            _ => !matches!(kind, "chat_member" | "message_reaction" | "message_reaction_count"),
        }
    }

    /// Up to `limit` unconfirmed, allowed updates.
    fn take_updates(&mut self, limit: usize, now: Instant) -> Vec<Value> {
        let mut out = Vec::new();
        for i in self.queue_start..self.updates.len() {
            if out.len() >= limit {
                break;
            }
            if !self.allowed(&self.updates[i].kind) {
                continue;
            }
            let u = &mut self.updates[i];
            u.delivered_at.get_or_insert(now);
            let mut j = u.json.clone();
            j["update_id"] = json!(u.id);
            out.push(j);
        }
        out
    }

    fn confirm(&mut self, offset: i64) {
        if offset > 0 {
            let upto = usize::try_from(offset - 1).unwrap_or(0).min(self.updates.len());
            self.queue_start = self.queue_start.max(upto);
        } else if offset < 0 {
            let keep = usize::try_from(-offset).unwrap_or(usize::MAX);
            self.queue_start = self.queue_start.max(self.updates.len().saturating_sub(keep));
        }
    }

    fn add_reply(&mut self, reply: Reply) {
        let i = self.replies.len();
        self.replies_by_chat.entry(reply.chat_id).or_default().push(i);
        if let Some(signal) = self.reply_signals.get(&reply.chat_id) {
            signal.send_modify(|v| *v += 1);
        }
        self.replies.push(reply);
    }

    fn reply_signal(&mut self, chat_id: i64) -> &watch::Sender<u64> {
        self.reply_signals.entry(chat_id).or_insert_with(|| watch::channel(0).0)
    }
}

fn commands_key(scope: Option<&Value>, language: Option<&str>) -> String {
    let scope = scope.cloned().unwrap_or_else(|| json!({"type": "default"}));
    format!("{}|{}", scope, language.unwrap_or(""))
}

// ----- HTTP -----

async fn accept_loop(inner: Arc<Inner>, listener: TcpListener) {
    let mut shutdown = inner.shutdown_tx.subscribe();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.wait_for(|s| *s) => return,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let inner = inner.clone();
        tokio::spawn(async move {
            let drop_now = Arc::new(Notify::new());
            let svc = {
                let inner = inner.clone();
                let drop_now = drop_now.clone();
                service_fn(move |req| handle(inner.clone(), drop_now.clone(), req))
            };
            let conn = http1::Builder::new().keep_alive(true).serve_connection(TokioIo::new(stream), svc);
            let mut shutdown = inner.shutdown_tx.subscribe();
            // Dropping the connection future closes the socket without an answer.
            tokio::select! {
                _ = conn => {}
                _ = drop_now.notified() => {}
                _ = shutdown.wait_for(|s| *s) => {}
            }
        });
    }
}

fn response(status: u16, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("valid response")
}

fn error_body(e: &ApiErr) -> Value {
    let mut body = json!({ "ok": false, "error_code": e.status, "description": e.description });
    if let Some(r) = e.retry_after {
        body["parameters"] = json!({ "retry_after": r });
    }
    body
}

fn answer(result: Result<Value, ApiErr>) -> (Response<Full<Bytes>>, Outcome) {
    match result {
        Ok(v) => (response(200, &json!({ "ok": true, "result": v })), Outcome::Ok(v)),
        Err(e) => (
            response(e.status, &error_body(&e)),
            Outcome::Err { status: e.status, description: e.description, retry_after: e.retry_after },
        ),
    }
}

fn canonical(method: &str) -> String {
    IMPLEMENTED_METHODS
        .iter()
        .find(|m| m.eq_ignore_ascii_case(method))
        .map_or_else(|| method.to_string(), |m| m.to_string())
}

fn percent_decode_path(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn handle(
    inner: Arc<Inner>,
    drop_now: Arc<Notify>,
    req: Request<HyperBody>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let received_at = Instant::now();
    let path = percent_decode_path(req.uri().path());
    let mut segments = path.trim_start_matches('/').splitn(2, '/');
    let (Some(bot_token), Some(method)) = (segments.next(), segments.next()) else {
        return Ok(response(404, &json!({"ok": false, "error_code": 404, "description": "Not Found"})));
    };
    let Some(token) = bot_token.strip_prefix("bot") else {
        return Ok(response(404, &json!({"ok": false, "error_code": 404, "description": "Not Found"})));
    };
    let method = canonical(method.trim_end_matches('/'));
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).map(str::to_string);
    let query = req.uri().query().map(str::to_string);
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(response(
                413,
                &json!({"ok": false, "error_code": 413, "description": "Request Entity Too Large"}),
            ))
        }
    };
    let params = parse_params(content_type.as_deref(), query.as_deref(), &body);

    if token != inner.opts.token {
        let (resp, outcome) =
            answer(Err(ApiErr { status: 401, description: "Unauthorized".into(), retry_after: None }));
        let p = params.map(Value::Object).unwrap_or(Value::Null);
        inner.record(&mut inner.lock(), &method, p, received_at, outcome);
        inner.changed();
        return Ok(resp);
    }
    let params = match params {
        Ok(p) => p,
        Err(e) => {
            let (resp, outcome) = answer(Err(bad(format!("can't parse request: {e}"))));
            inner.record(&mut inner.lock(), &method, Value::Null, received_at, outcome);
            inner.changed();
            return Ok(resp);
        }
    };

    // Fault rules.
    let chat_id = params.get("chat_id").and_then(Value::as_i64);
    let (delay, fault) = {
        let mut st = inner.lock();
        let mut delay = Duration::ZERO;
        let mut fault = None;
        for rule in st.faults.iter_mut() {
            if !rule.matches(&method, chat_id) {
                continue;
            }
            if let Some(n) = rule.remaining.as_mut() {
                *n -= 1;
            }
            match &rule.fault {
                Fault::Delay(d) => delay += *d,
                f => {
                    fault = Some(f.clone());
                    break;
                }
            }
        }
        st.faults.retain(|r| r.remaining != Some(0));
        if fault.is_some() {
            st.counters.injected_faults += 1;
            if matches!(fault, Some(Fault::TooManyRequests { .. })) {
                st.counters.injected_429 += 1;
            }
        }
        (delay, fault)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let params_value = Value::Object(params.clone());
    if let Some(f) = fault {
        let result = match f {
            Fault::TooManyRequests { retry_after } => Err(too_many(retry_after)),
            Fault::ServerError { status } => {
                let reason =
                    StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("Server Error");
                Err(ApiErr { status, description: reason.to_string(), retry_after: None })
            }
            Fault::ApiError { code, description } => Err(ApiErr { status: code, description, retry_after: None }),
            Fault::DropConnection => {
                inner.record(&mut inner.lock(), &method, params_value, received_at, Outcome::Dropped);
                inner.changed();
                drop_now.notify_one();
                // The connection task drops this future together with the connection.
                std::future::pending::<()>().await;
                unreachable!("the connection was dropped");
            }
            Fault::Delay(_) => unreachable!("delays are not answers"),
        };
        let (resp, outcome) = answer(result);
        inner.record(&mut inner.lock(), &method, params_value, received_at, outcome);
        inner.changed();
        return Ok(resp);
    }

    if method == "getUpdates" {
        return Ok(get_updates(&inner, params, received_at).await);
    }

    let (resp, webhook_changed) = {
        let mut st = inner.lock();
        let result = dispatch(&inner, &mut st, &method, &params, received_at);
        let hook = matches!(method.as_str(), "setWebhook" | "deleteWebhook") && result.is_ok();
        if let Err(e) = &result {
            if e.status == 429 {
                st.counters.rate_limited += 1;
            } else if (400..500).contains(&e.status) {
                st.counters.bad_requests += 1;
            }
        }
        let (resp, outcome) = answer(result);
        let seq = inner.record(&mut st, &method, params_value, received_at, outcome);
        // Link replies created by this call to it.
        for r in st.replies.iter_mut().rev().take_while(|r| r.call_seq == usize::MAX) {
            r.call_seq = seq;
        }
        (resp, hook)
    };
    if webhook_changed {
        inner.updates_tx.send_modify(|v| *v += 1);
    }
    inner.changed();
    Ok(resp)
}

async fn get_updates(inner: &Arc<Inner>, params: Map<String, Value>, received_at: Instant) -> Response<Full<Bytes>> {
    let offset = params.get("offset").and_then(Value::as_i64).unwrap_or(0);
    let limit = params.get("limit").and_then(Value::as_i64).unwrap_or(100).clamp(1, 100) as usize;
    let timeout_s = params.get("timeout").and_then(Value::as_u64).unwrap_or(0);
    let wait = Duration::from_secs(timeout_s).min(inner.opts.max_poll_timeout);
    let deadline = tokio::time::Instant::from_std(received_at) + wait;
    let params_value = Value::Object(params.clone());
    let generation = {
        let mut st = inner.lock();
        if let Some(list) = params.get("allowed_updates").and_then(Value::as_array) {
            st.allowed_updates = Some(list.iter().filter_map(Value::as_str).map(str::to_string).collect());
        }
        st.poll_generation += 1;
        st.poll_generation
    };
    // Wake an older poll so that it ends with 409.
    inner.updates_tx.send_modify(|v| *v += 1);
    let mut shutdown = inner.shutdown_tx.subscribe();
    let mut first = true;
    loop {
        let mut rx = inner.updates_tx.subscribe();
        let done = {
            let mut st = inner.lock();
            let result = if st.webhook.is_some() {
                Some(Err(ApiErr {
                    status: 409,
                    description: "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first".into(),
                    retry_after: None,
                }))
            } else if st.poll_generation != generation {
                Some(Err(ApiErr {
                    status: 409,
                    description:
                        "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running".into(),
                    retry_after: None,
                }))
            } else {
                if first {
                    st.confirm(offset);
                    first = false;
                }
                let updates = st.take_updates(limit, Instant::now());
                let over = *shutdown.borrow_and_update() || tokio::time::Instant::now() >= deadline;
                (!updates.is_empty() || over).then_some(Ok(Value::Array(updates)))
            };
            result.map(|r| {
                let (resp, outcome) = answer(r);
                inner.record(&mut st, "getUpdates", params_value.clone(), received_at, outcome);
                resp
            })
        };
        if let Some(resp) = done {
            inner.changed();
            return resp;
        }
        tokio::select! {
            _ = rx.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.changed() => {}
        }
    }
}

// ----- Bot API methods -----

fn param_str<'a>(p: &'a Map<String, Value>, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    match p.get(name)? {
        Value::String(s) => Some(std::borrow::Cow::Borrowed(s)),
        Value::Number(n) => Some(std::borrow::Cow::Owned(n.to_string())),
        _ => None,
    }
}

/// The target chat of a call: numeric id, or `@username` of a known supergroup.
fn target_chat(st: &State, p: &Map<String, Value>) -> Result<TestChat, ApiErr> {
    match p.get("chat_id") {
        Some(Value::Number(n)) => n.as_i64().map(|id| st.chat(id)).ok_or_else(|| bad("chat not found")),
        Some(Value::String(s)) => {
            if let Ok(id) = s.parse::<i64>() {
                return Ok(st.chat(id));
            }
            let name = s.trim_start_matches('@');
            st.chats
                .values()
                .find(|c| matches!(&c.kind, ChatKind::Supergroup { username: Some(u), .. } if u.eq_ignore_ascii_case(name)))
                .cloned()
                .ok_or_else(|| bad("chat not found"))
        }
        _ => Err(bad("chat_id is empty")),
    }
}

fn check_not_blocked(st: &State, chat: &TestChat) -> Result<(), ApiErr> {
    if chat.is_private() && st.blocked.contains(&chat.id) {
        return Err(ApiErr {
            status: 403,
            description: "Forbidden: bot was blocked by the user".into(),
            retry_after: None,
        });
    }
    Ok(())
}

/// Validates `text` with its `parse_mode`; returns the plain text.
fn render_text(inner: &Inner, text: &str, parse_mode: Option<&str>, too_long: &str) -> Result<String, ApiErr> {
    let plain = match parse_mode.map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => text.to_string(),
        Some("html") => {
            parse_html(text, inner.opts.strict_html_ampersand).map_err(|e| bad(format!("can't parse entities: {e}")))?
        }
        Some("markdownv2") | Some("markdown") => text.to_string(),
        Some(other) => return Err(bad(format!("unsupported parse_mode \"{other}\""))),
    };
    if plain.trim().is_empty() {
        return Err(bad("message text is empty"));
    }
    if plain.chars().count() > MAX_TEXT {
        return Err(bad(too_long));
    }
    Ok(plain)
}

/// Validates a `reply_markup`; returns the inline keyboard to keep (Telegram echoes only those).
fn check_markup(p: &Map<String, Value>) -> Result<Option<Value>, ApiErr> {
    let Some(markup) = p.get("reply_markup") else { return Ok(None) };
    let markup = match markup {
        Value::String(s) => {
            serde_json::from_str::<Value>(s).map_err(|_| bad("can't parse reply keyboard markup JSON object"))?
        }
        v => v.clone(),
    };
    let Some(keyboard) = markup.get("inline_keyboard") else { return Ok(None) };
    let rows = keyboard.as_array().ok_or_else(|| bad("can't parse inline keyboard markup JSON object"))?;
    let mut count = 0;
    for row in rows {
        let row = row.as_array().ok_or_else(|| bad("can't parse inline keyboard markup JSON object"))?;
        for b in row {
            count += 1;
            let text = b.get("text").and_then(Value::as_str).unwrap_or("");
            if text.is_empty() {
                return Err(bad("can't parse inline keyboard button: Text must be non-empty"));
            }
            let actions = [
                "url",
                "callback_data",
                "web_app",
                "login_url",
                "switch_inline_query",
                "switch_inline_query_current_chat",
                "switch_inline_query_chosen_chat",
                "copy_text",
                "callback_game",
                "pay",
            ];
            if !actions.iter().any(|a| b.get(*a).is_some()) {
                return Err(bad(
                    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard",
                ));
            }
            if let Some(data) = b.get("callback_data") {
                let len = data.as_str().map_or(0, str::len);
                if len == 0 || len > 64 {
                    return Err(bad("BUTTON_DATA_INVALID"));
                }
            }
            if let Some(url) = b.get("url") {
                let ok = url.as_str().is_some_and(|u| {
                    ["http://", "https://", "tg://"]
                        .iter()
                        .any(|s| u.len() > s.len() && u[..s.len()].eq_ignore_ascii_case(s))
                });
                if !ok {
                    return Err(bad("BUTTON_URL_INVALID"));
                }
            }
        }
    }
    if count > MAX_BUTTONS {
        return Err(bad("reply markup is too long"));
    }
    Ok(Some(markup))
}

fn dispatch(
    inner: &Inner,
    st: &mut State,
    method: &str,
    p: &Map<String, Value>,
    received_at: Instant,
) -> Result<Value, ApiErr> {
    match method {
        "getMe" => Ok(inner.me_json()),
        "logOut"
        | "close"
        | "setMyDescription"
        | "setMyShortDescription"
        | "setMyName"
        | "setChatMenuButton"
        | "setMessageReaction"
        | "pinChatMessage"
        | "unpinChatMessage"
        | "leaveChat" => Ok(json!(true)),
        "sendMessage" => send_message(inner, st, p, received_at),
        "editMessageText" => edit_message_text(inner, st, p, received_at),
        "editMessageReplyMarkup" => edit_reply_markup(st, p),
        "deleteMessage" => {
            let chat = target_chat(st, p)?;
            let id = p.get("message_id").and_then(Value::as_i64).unwrap_or(0) as i32;
            match st.messages.get_mut(&(chat.id, id)) {
                Some(m) if !m.deleted => {
                    m.deleted = true;
                    Ok(json!(true))
                }
                _ => Err(bad("message to delete not found")),
            }
        }
        "sendChatAction" => {
            let chat = target_chat(st, p)?;
            check_not_blocked(st, &chat)?;
            const ACTIONS: &[&str] = &[
                "typing",
                "upload_photo",
                "record_video",
                "upload_video",
                "record_voice",
                "upload_voice",
                "upload_document",
                "choose_sticker",
                "find_location",
                "record_video_note",
                "upload_video_note",
            ];
            match p.get("action").and_then(Value::as_str) {
                Some(a) if ACTIONS.contains(&a) => Ok(json!(true)),
                _ => Err(bad("wrong parameter action in request")),
            }
        }
        "answerCallbackQuery" => {
            let id = param_str(p, "callback_query_id").unwrap_or_default();
            answer_query(st, &id)?;
            if param_str(p, "text").is_some_and(|t| t.chars().count() > 200) {
                return Err(bad("MESSAGE_TOO_LONG"));
            }
            Ok(json!(true))
        }
        "answerInlineQuery" => {
            let results = p.get("results").and_then(Value::as_array).cloned().unwrap_or_default();
            if results.len() > 50 {
                return Err(bad("RESULTS_TOO_MUCH"));
            }
            let mut ids = HashSet::new();
            for r in &results {
                let id = r.get("id").and_then(Value::as_str).unwrap_or("");
                if id.is_empty() || id.len() > 64 {
                    return Err(bad("RESULT_ID_INVALID"));
                }
                if !ids.insert(id.to_string()) {
                    return Err(bad("RESULT_ID_DUPLICATE"));
                }
                if let Some(content) = r.get("input_message_content") {
                    if let Some(text) = content.get("message_text").and_then(Value::as_str) {
                        render_text(
                            inner,
                            text,
                            content.get("parse_mode").and_then(Value::as_str),
                            "MESSAGE_TOO_LONG",
                        )?;
                    }
                }
                if let Some(m) = r.get("reply_markup") {
                    let mut wrapper = Map::new();
                    wrapper.insert("reply_markup".into(), m.clone());
                    check_markup(&wrapper)?;
                }
            }
            let id = param_str(p, "inline_query_id").unwrap_or_default();
            answer_query(st, &id)?;
            Ok(json!(true))
        }
        "setMyCommands" => {
            let commands =
                p.get("commands").and_then(Value::as_array).ok_or_else(|| bad("parameter \"commands\" is required"))?;
            if commands.len() > 100 {
                return Err(bad("BOT_COMMANDS_TOO_MUCH"));
            }
            for c in commands {
                let name = c.get("command").and_then(Value::as_str).unwrap_or("");
                let valid = (1..=32).contains(&name.len())
                    && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                if !valid {
                    return Err(bad("BOT_COMMAND_INVALID"));
                }
                let description = c.get("description").and_then(Value::as_str).unwrap_or("");
                if !(1..=256).contains(&description.chars().count()) {
                    return Err(bad("BOT_COMMAND_DESCRIPTION_INVALID"));
                }
            }
            if let Some(Value::Object(scope)) = p.get("scope") {
                if scope.get("chat_id").is_some() {
                    target_chat(st, scope)?;
                }
            }
            let key = commands_key(p.get("scope"), p.get("language_code").and_then(Value::as_str));
            st.commands.insert(key, Value::Array(commands.clone()));
            Ok(json!(true))
        }
        "getMyCommands" => {
            let key = commands_key(p.get("scope"), p.get("language_code").and_then(Value::as_str));
            Ok(st.commands.get(&key).cloned().unwrap_or_else(|| json!([])))
        }
        "deleteMyCommands" => {
            let key = commands_key(p.get("scope"), p.get("language_code").and_then(Value::as_str));
            st.commands.remove(&key);
            Ok(json!(true))
        }
        "setWebhook" => {
            let url = param_str(p, "url").unwrap_or_default().to_string();
            if p.get("drop_pending_updates").and_then(Value::as_bool) == Some(true) {
                st.queue_start = st.updates.len();
            }
            if let Some(list) = p.get("allowed_updates").and_then(Value::as_array) {
                st.allowed_updates = Some(list.iter().filter_map(Value::as_str).map(str::to_string).collect());
            }
            if url.is_empty() {
                st.webhook = None;
                return Ok(json!(true));
            }
            if reqwest::Url::parse(&url).map(|u| u.scheme() != "https" && u.scheme() != "http").unwrap_or(true) {
                return Err(bad("bad webhook: An HTTPS URL must be provided for webhook"));
            }
            let secret_token = param_str(p, "secret_token").map(|s| s.to_string());
            if let Some(s) = &secret_token {
                let ok = (1..=256).contains(&s.len())
                    && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !ok {
                    return Err(bad("secret token contains unallowed characters"));
                }
            }
            st.webhook =
                Some(Webhook { url, secret_token, max_connections: p.get("max_connections").and_then(Value::as_i64) });
            st.webhook_error = None;
            Ok(json!(true))
        }
        "deleteWebhook" => {
            if p.get("drop_pending_updates").and_then(Value::as_bool) == Some(true) {
                st.queue_start = st.updates.len();
            }
            st.webhook = None;
            Ok(json!(true))
        }
        "getWebhookInfo" => {
            let mut info = json!({
                "url": st.webhook.as_ref().map_or("", |w| w.url.as_str()),
                "has_custom_certificate": false,
                "pending_update_count": st.updates.len() - st.queue_start,
            });
            if let Some(w) = &st.webhook {
                info["max_connections"] = json!(w.max_connections.unwrap_or(40));
                if let Some((date, msg)) = &st.webhook_error {
                    info["last_error_date"] = json!(date);
                    info["last_error_message"] = json!(msg);
                }
            }
            if let Some(a) = &st.allowed_updates {
                info["allowed_updates"] = json!(a);
            }
            Ok(info)
        }
        _ => Err(ApiErr { status: 404, description: "Not Found: method not found".into(), retry_after: None }),
    }
}

fn answer_query(st: &mut State, id: &str) -> Result<(), ApiErr> {
    match st.queries.get_mut(id) {
        Some(answered) if !*answered => {
            *answered = true;
            Ok(())
        }
        _ => Err(bad("query is too old and response timeout expired or query ID is invalid")),
    }
}

fn send_message(inner: &Inner, st: &mut State, p: &Map<String, Value>, received_at: Instant) -> Result<Value, ApiErr> {
    let chat = target_chat(st, p)?;
    check_not_blocked(st, &chat)?;
    let text = param_str(p, "text").ok_or_else(|| bad("message text is empty"))?.to_string();
    let parse_mode = p.get("parse_mode").and_then(Value::as_str).map(str::to_string);
    let plain = render_text(inner, &text, parse_mode.as_deref(), "message is too long")?;
    let markup = check_markup(p)?;
    let reply_to = p
        .get("reply_parameters")
        .and_then(|r| r.get("message_id"))
        .or_else(|| p.get("reply_to_message_id"))
        .and_then(Value::as_i64)
        .map(|id| id as i32);
    let allow_without = p
        .get("reply_parameters")
        .and_then(|r| r.get("allow_sending_without_reply"))
        .or_else(|| p.get("allow_sending_without_reply"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let reply_known = reply_to.is_some_and(|id| st.messages.get(&(chat.id, id)).is_some_and(|m| !m.deleted));
    if reply_to.is_some() && !reply_known && !allow_without {
        return Err(bad("message to be replied not found"));
    }
    if is_counted_send("sendMessage") {
        // Only messages Telegram would accept count against the limits.
        st.limiter.check(chat.id, Instant::now()).map_err(too_many)?;
    }
    let message_id = st.next_message_id(chat.id);
    let mut m = json!({
        "message_id": message_id,
        "from": inner.bot_json(),
        "chat": st.chat_json(&chat),
        "date": unix_now(),
        "text": plain,
    });
    if let Some(k) = &markup {
        m["reply_markup"] = k.clone();
    }
    if let (Some(id), true) = (reply_to, reply_known) {
        m["reply_to_message"] = st.reply_target(chat.id, id, inner.bot_json());
    }
    st.messages.insert(
        (chat.id, message_id),
        StoredMessage {
            json: m.clone(),
            from_bot: true,
            raw_text: Some(text.clone()),
            parse_mode: parse_mode.clone(),
            reply_markup: markup.clone(),
            deleted: false,
        },
    );
    st.add_reply(Reply {
        chat_id: chat.id,
        message_id,
        kind: ReplyKind::Sent,
        text,
        plain,
        parse_mode,
        reply_markup: markup,
        at: received_at,
        call_seq: usize::MAX,
    });
    Ok(m)
}

/// The bot's message an edit targets; `Ok(None)` for inline-mode messages.
fn edit_target(st: &State, p: &Map<String, Value>) -> Result<Option<(i64, i32)>, ApiErr> {
    if p.get("inline_message_id").is_some() {
        return Ok(None);
    }
    let chat = target_chat(st, p)?;
    let id =
        p.get("message_id").and_then(Value::as_i64).ok_or_else(|| bad("message identifier is not specified"))? as i32;
    match st.messages.get(&(chat.id, id)) {
        Some(m) if !m.deleted && m.from_bot => Ok(Some((chat.id, id))),
        Some(m) if !m.deleted => Err(bad("message can't be edited")),
        _ => Err(bad("message to edit not found")),
    }
}

const NOT_MODIFIED: &str = "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message";

fn edit_message_text(
    inner: &Inner,
    st: &mut State,
    p: &Map<String, Value>,
    received_at: Instant,
) -> Result<Value, ApiErr> {
    let text = param_str(p, "text").ok_or_else(|| bad("message text is empty"))?.to_string();
    let parse_mode = p.get("parse_mode").and_then(Value::as_str).map(str::to_string);
    let plain = render_text(inner, &text, parse_mode.as_deref(), "MESSAGE_TOO_LONG")?;
    let markup = check_markup(p)?;
    let Some((chat_id, id)) = edit_target(st, p)? else { return Ok(json!(true)) };
    let m = st.messages.get_mut(&(chat_id, id)).expect("checked by edit_target");
    if m.raw_text.as_deref() == Some(text.as_str()) && m.parse_mode == parse_mode && m.reply_markup == markup {
        return Err(bad(NOT_MODIFIED));
    }
    m.raw_text = Some(text.clone());
    m.parse_mode = parse_mode.clone();
    m.reply_markup = markup.clone();
    m.json["text"] = json!(plain);
    m.json["edit_date"] = json!(unix_now());
    match &markup {
        Some(k) => m.json["reply_markup"] = k.clone(),
        None => {
            if let Some(o) = m.json.as_object_mut() {
                o.remove("reply_markup");
            }
        }
    }
    let result = m.json.clone();
    st.add_reply(Reply {
        chat_id,
        message_id: id,
        kind: ReplyKind::Edited,
        text,
        plain,
        parse_mode,
        reply_markup: markup,
        at: received_at,
        call_seq: usize::MAX,
    });
    Ok(result)
}

fn edit_reply_markup(st: &mut State, p: &Map<String, Value>) -> Result<Value, ApiErr> {
    let markup = check_markup(p)?;
    let Some((chat_id, id)) = edit_target(st, p)? else { return Ok(json!(true)) };
    let m = st.messages.get_mut(&(chat_id, id)).expect("checked by edit_target");
    if m.reply_markup == markup {
        return Err(bad(NOT_MODIFIED));
    }
    m.reply_markup = markup.clone();
    m.json["edit_date"] = json!(unix_now());
    match markup {
        Some(k) => m.json["reply_markup"] = k,
        None => {
            if let Some(o) = m.json.as_object_mut() {
                o.remove("reply_markup");
            }
        }
    }
    Ok(m.json.clone())
}

// ----- webhook delivery -----

async fn webhook_loop(inner: Arc<Inner>) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().expect("HTTP client");
    let mut shutdown = inner.shutdown_tx.subscribe();
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        let mut rx = inner.updates_tx.subscribe();
        let job = {
            let mut st = inner.lock();
            match &st.webhook {
                None => None,
                Some(w) => {
                    let (url, secret) = (w.url.clone(), w.secret_token.clone());
                    while st.queue_start < st.updates.len() && !st.allowed(&st.updates[st.queue_start].kind) {
                        st.queue_start += 1;
                    }
                    st.updates.get(st.queue_start).map(|u| {
                        let mut j = u.json.clone();
                        j["update_id"] = json!(u.id);
                        (u.id, j, url, secret)
                    })
                }
            }
        };
        let Some((id, body, url, secret)) = job else {
            tokio::select! {
                _ = rx.changed() => {}
                _ = shutdown.changed() => {}
            }
            continue;
        };
        let mut req = client.post(&url).header("content-type", "application/json").body(body.to_string());
        if let Some(s) = secret {
            req = req.header("X-Telegram-Bot-Api-Secret-Token", s);
        }
        let now = Instant::now();
        let result = req.send().await;
        let ok = matches!(&result, Ok(r) if r.status().is_success());
        {
            let mut st = inner.lock();
            let index = (id - 1) as usize;
            if ok {
                st.updates[index].delivered_at.get_or_insert(now);
                // The webhook may have changed meanwhile; only advance past this very update.
                if st.queue_start == index {
                    st.queue_start += 1;
                }
            } else {
                let msg = match &result {
                    Ok(r) => format!("Wrong response from the webhook: {}", r.status()),
                    Err(e) => format!("Connection failed: {e}"),
                };
                st.webhook_error = Some((unix_now() as u64, msg));
            }
        }
        inner.changed();
        if !ok {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
}
