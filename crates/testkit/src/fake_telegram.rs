//! [`FakeTelegram`], the face of the crate: starting the server, injecting what users do,
//! faults and limits, inspecting and waiting for what the bot did, statistics; and its
//! [`Options`]. The server itself is in the other modules.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, MutexGuard};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::faults::{Counters, Fault, FaultRule, RateLimits};
use crate::http::accept_loop;
use crate::methods::commands_key;
use crate::records::{buttons_of, Call, ChatStats, MessageRef, QueryRef, Reply, ReplyKind, Stats};
use crate::state::{unix_now, Inner, State, StoredMessage};
use crate::updates::{content_json, Content, Incoming, TestChat, TestUser};
use crate::webhook::webhook_loop;

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

impl FakeTelegram {
    /// Starts a server with [`Options::default`] (token [`TEST_TOKEN`]). Needs a tokio runtime.
    pub async fn start() -> FakeTelegram {
        Self::start_with(Options::default()).await
    }

    /// Starts a server on `127.0.0.1:0`. Panics if it cannot listen (test infrastructure).
    pub async fn start_with(opts: Options) -> FakeTelegram {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("fake Telegram: cannot listen on 127.0.0.1");
        let addr = listener.local_addr().expect("fake Telegram: local address");
        let inner = Arc::new(Inner::new(opts));
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

    /// An update given as JSON text (without `update_id`, which the fake puts first), sent to
    /// the bot exactly as written: for what a `Value` cannot hold and teloxide cannot read, e.g.
    /// a text with a lone surrogate escape (`r#"{"message": {… "text": "knee \ud800 pain"}}"#`),
    /// or fields of the wrong type. Not checked against teloxide (that is the point). Its kind,
    /// for `allowed_updates`, is its first key. Returns the `update_id`.
    pub fn push_raw_update_text(&self, text: &str) -> i64 {
        let kind = first_key(text).unwrap_or_default();
        let update_id = {
            let mut st = self.state();
            let id = st.push_update(&kind, None, Value::Null);
            if let Some(u) = st.updates.last_mut() {
                u.raw = Some(text.to_string());
            }
            id
        };
        self.inner.updates_tx.send_modify(|v| *v += 1);
        self.inner.changed();
        update_id
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

    /// Ids of the updates handed to the bot so far (by `getUpdates`, or accepted with a 2xx by
    /// the webhook), in order.
    pub fn delivered_updates(&self) -> Vec<i64> {
        self.state().updates.iter().filter(|u| u.delivered_at.is_some()).map(|u| u.id).collect()
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

/// The first key of a JSON object's text (`{"message": …` → `message`), without parsing the rest.
fn first_key(text: &str) -> Option<String> {
    let rest = text.trim_start().strip_prefix('{')?.trim_start().strip_prefix('"')?;
    Some(rest[..rest.find('"')?].to_string())
}
