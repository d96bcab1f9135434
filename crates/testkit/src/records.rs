//! What the fake records and hands back to tests: the calls the bot made ([`Call`], [`Outcome`]),
//! the messages it put into chats ([`Reply`], [`Button`]), references to injected updates
//! ([`MessageRef`], [`QueryRef`]) and load statistics ([`Stats`], [`ChatStats`]).

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::Value;

use crate::faults::Counters;

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
    /// Position in [`FakeTelegram::calls`](crate::FakeTelegram::calls).
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
    /// `sendPhoto`: `text` and `plain` are its caption (empty without one).
    Photo,
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

/// The buttons of a `reply_markup`, row by row; the fake also reads them from stored messages
/// (`FakeTelegram::press_button_labeled`).
pub(crate) fn buttons_of(markup: Option<&Value>) -> Vec<Button> {
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
