//! The server's shared state. [`Inner`] is what the accept loop, the webhook loop and
//! [`FakeTelegram`](crate::FakeTelegram) share: the options, the [`State`] behind one mutex, and
//! the watch channels that wake long polls, the webhook loop and waiting tests. [`State`] holds
//! users, chats, stored messages, the update queue (with `getUpdates` offsets confirming it),
//! recorded calls and replies with per-chat reply signals, commands, the webhook, faults and
//! limits.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::sync::watch;

use crate::faults::{Counters, FaultRule, RateLimiter};
use crate::records::{Call, Outcome, Reply};
use crate::updates::{ChatKind, TestChat, TestUser};
use crate::Options;

/// An injected update and when it was handed to the bot.
pub(crate) struct UpdateRecord {
    pub(crate) id: i64,
    pub(crate) kind: String,
    pub(crate) json: Value,
    /// The update's JSON text as injected (without `update_id`), for updates a `Value` cannot
    /// hold: a lone surrogate escape, invalid JSON (`FakeTelegram::push_raw_update_text`).
    pub(crate) raw: Option<String>,
    pub(crate) injected_at: Instant,
    pub(crate) delivered_at: Option<Instant>,
}

impl UpdateRecord {
    /// The update as the Bot API sends it, `update_id` first.
    pub(crate) fn text(&self) -> String {
        match &self.raw {
            Some(raw) => {
                let rest = raw.trim_start();
                match rest.strip_prefix('{') {
                    Some(fields) if fields.trim_start().starts_with('}') => format!("{{\"update_id\":{}}}", self.id),
                    Some(fields) => format!("{{\"update_id\":{},{fields}", self.id),
                    // Not even an object: sent as it is, which makes the whole batch invalid.
                    None => raw.clone(),
                }
            }
            None => {
                let mut j = self.json.clone();
                j["update_id"] = json!(self.id);
                j.to_string()
            }
        }
    }

    /// The update as a test reads it back from the recorded call: its JSON, or its text as a
    /// string where that is not valid JSON.
    pub(crate) fn recorded(&self) -> Value {
        let text = self.text();
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }
}

/// A message as the fake keeps it: the `Message` JSON it returns and embeds in updates, and what
/// an edit is compared with to refuse one that changes nothing.
pub(crate) struct StoredMessage {
    pub(crate) json: Value,
    pub(crate) from_bot: bool,
    pub(crate) raw_text: Option<String>,
    pub(crate) parse_mode: Option<String>,
    pub(crate) reply_markup: Option<Value>,
    pub(crate) deleted: bool,
}

/// What `setWebhook` set.
pub(crate) struct Webhook {
    pub(crate) url: String,
    pub(crate) secret_token: Option<String>,
    pub(crate) max_connections: Option<i64>,
}

/// Everything the fake knows, behind [`Inner`]'s mutex.
#[derive(Default)]
pub(crate) struct State {
    /// All updates ever injected; `updates[i].id == i + 1`.
    pub(crate) updates: Vec<UpdateRecord>,
    /// Index of the first update not yet confirmed.
    pub(crate) queue_start: usize,
    pub(crate) allowed_updates: Option<Vec<String>>,
    pub(crate) poll_generation: u64,
    pub(crate) users: HashMap<i64, TestUser>,
    pub(crate) chats: HashMap<i64, TestChat>,
    pub(crate) blocked: HashSet<i64>,
    pub(crate) messages: HashMap<(i64, i32), StoredMessage>,
    last_message_id: HashMap<i64, i32>,
    /// Query id → answered.
    pub(crate) queries: HashMap<String, bool>,
    next_query: u64,
    pub(crate) next_file: u64,
    pub(crate) calls: Vec<Call>,
    pub(crate) replies: Vec<Reply>,
    pub(crate) replies_by_chat: HashMap<i64, Vec<usize>>,
    /// Wakes waiters for replies to one chat.
    reply_signals: HashMap<i64, watch::Sender<u64>>,
    pub(crate) injected_by_chat: HashMap<i64, Vec<usize>>,
    pub(crate) commands: BTreeMap<String, Value>,
    pub(crate) webhook: Option<Webhook>,
    pub(crate) webhook_error: Option<(u64, String)>,
    pub(crate) faults: Vec<FaultRule>,
    pub(crate) limiter: RateLimiter,
    pub(crate) counters: Counters,
}

/// What the server's tasks and [`FakeTelegram`](crate::FakeTelegram) share.
pub(crate) struct Inner {
    pub(crate) opts: Options,
    pub(crate) bot_id: i64,
    state: Mutex<State>,
    /// Bumped when updates are injected, a poll starts or the webhook changes.
    pub(crate) updates_tx: watch::Sender<u64>,
    /// Bumped when anything tests can observe changes (calls, replies, deliveries).
    pub(crate) changes_tx: watch::Sender<u64>,
    pub(crate) shutdown_tx: watch::Sender<bool>,
}

impl Inner {
    pub(crate) fn new(opts: Options) -> Inner {
        let bot_id = opts.token.split(':').next().and_then(|s| s.parse().ok()).unwrap_or(123_456);
        Inner {
            opts,
            bot_id,
            state: Mutex::new(State::default()),
            updates_tx: watch::channel(0).0,
            changes_tx: watch::channel(0).0,
            shutdown_tx: watch::channel(false).0,
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not wedge every other test using the fake.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn changed(&self) {
        self.changes_tx.send_modify(|v| *v += 1);
    }

    pub(crate) fn bot_json(&self) -> Value {
        json!({ "id": self.bot_id, "is_bot": true, "first_name": self.opts.bot_first_name, "username": self.opts.bot_username })
    }

    pub(crate) fn me_json(&self) -> Value {
        let mut me = self.bot_json();
        me["can_join_groups"] = json!(true);
        me["can_read_all_group_messages"] = json!(false);
        me["supports_inline_queries"] = json!(true);
        me["can_connect_to_business"] = json!(false);
        me["has_main_web_app"] = json!(false);
        me
    }

    pub(crate) fn record(
        &self,
        st: &mut State,
        method: &str,
        params: Value,
        received_at: Instant,
        outcome: Outcome,
    ) -> usize {
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
    pub(crate) fn user(&self, id: i64) -> TestUser {
        self.users.get(&id).cloned().unwrap_or_else(|| TestUser::default_for(id))
    }

    pub(crate) fn chat(&self, id: i64) -> TestChat {
        self.chats.get(&id).cloned().unwrap_or_else(|| TestChat::default_for(id))
    }

    pub(crate) fn chat_json(&self, chat: &TestChat) -> Value {
        let owner = (chat.kind == ChatKind::Private).then(|| self.user(chat.id));
        chat.to_json(owner.as_ref())
    }

    pub(crate) fn next_message_id(&mut self, chat_id: i64) -> i32 {
        let id = self.last_message_id.entry(chat_id).or_insert(0);
        *id += 1;
        *id
    }

    pub(crate) fn new_query_id(&mut self) -> String {
        self.next_query += 1;
        let id = format!("{}", 4_000_000_000_000_000_000u64 + self.next_query);
        self.queries.insert(id.clone(), false);
        id
    }

    /// The message a reply points at, as Telegram embeds it (without its own reply).
    pub(crate) fn reply_target(&self, chat_id: i64, message_id: i32, bot: Value) -> Value {
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

    pub(crate) fn push_update(&mut self, kind: &str, chat_id: Option<i64>, json: Value) -> i64 {
        let id = self.updates.len() as i64 + 1;
        let index = self.updates.len();
        self.updates.push(UpdateRecord {
            id,
            kind: kind.to_string(),
            json,
            raw: None,
            injected_at: Instant::now(),
            delivered_at: None,
        });
        if let Some(c) = chat_id {
            self.injected_by_chat.entry(c).or_default().push(index);
        }
        id
    }

    pub(crate) fn allowed(&self, kind: &str) -> bool {
        match &self.allowed_updates {
            Some(list) if !list.is_empty() => list.iter().any(|k| k == kind),
            // Telegram's default: everything but these.
            _ => !matches!(kind, "chat_member" | "message_reaction" | "message_reaction_count"),
        }
    }

    /// Up to `limit` unconfirmed, allowed updates (their indexes).
    pub(crate) fn take_updates(&mut self, limit: usize, now: Instant) -> Vec<usize> {
        let mut out = Vec::new();
        for i in self.queue_start..self.updates.len() {
            if out.len() >= limit {
                break;
            }
            if !self.allowed(&self.updates[i].kind) {
                continue;
            }
            self.updates[i].delivered_at.get_or_insert(now);
            out.push(i);
        }
        out
    }

    pub(crate) fn confirm(&mut self, offset: i64) {
        if offset > 0 {
            let upto = usize::try_from(offset - 1).unwrap_or(0).min(self.updates.len());
            self.queue_start = self.queue_start.max(upto);
        } else if offset < 0 {
            let keep = usize::try_from(-offset).unwrap_or(usize::MAX);
            self.queue_start = self.queue_start.max(self.updates.len().saturating_sub(keep));
        }
    }

    pub(crate) fn add_reply(&mut self, reply: Reply) {
        let i = self.replies.len();
        self.replies_by_chat.entry(reply.chat_id).or_default().push(i);
        if let Some(signal) = self.reply_signals.get(&reply.chat_id) {
            signal.send_modify(|v| *v += 1);
        }
        self.replies.push(reply);
    }

    pub(crate) fn reply_signal(&mut self, chat_id: i64) -> &watch::Sender<u64> {
        self.reply_signals.entry(chat_id).or_insert_with(|| watch::channel(0).0)
    }
}

/// Telegram's `date`: Unix seconds.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}
