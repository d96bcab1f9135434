//! The Bot API methods (all but `getUpdates`, which is long polling on the HTTP side) and
//! Telegram's checks of their parameters: text length after entity parsing, HTML, inline
//! keyboards, the target chat, users who blocked the bot, edits of missing or unchanged messages,
//! unknown or already answered queries, command syntax, webhook URLs and secrets.

use std::collections::HashSet;
use std::time::Instant;

use serde_json::{json, Map, Value};

use crate::faults::is_counted_send;
use crate::html::parse_html;
use crate::records::{Reply, ReplyKind};
use crate::state::{unix_now, Inner, State, StoredMessage, Webhook};
use crate::updates::{ChatKind, TestChat};

const MAX_TEXT: usize = 4096;
const MAX_BUTTONS: usize = 100;

/// A Bot API refusal.
#[derive(Clone, Debug)]
pub(crate) struct ApiErr {
    pub(crate) status: u16,
    pub(crate) description: String,
    pub(crate) retry_after: Option<u32>,
}

/// `400 Bad Request: ...`, the usual refusal.
pub(crate) fn bad(description: impl Into<String>) -> ApiErr {
    let d = description.into();
    ApiErr { status: 400, description: format!("Bad Request: {d}"), retry_after: None }
}

pub(crate) fn too_many(retry_after: u32) -> ApiErr {
    ApiErr {
        status: 429,
        description: format!("Too Many Requests: retry after {retry_after}"),
        retry_after: Some(retry_after),
    }
}

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
    // Telegram measures the text after entity parsing in UTF-16 code units (an emoji is 2).
    if plain.encode_utf16().count() > MAX_TEXT {
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

/// Runs one method on the state. Token, parameters, faults and `getUpdates` were handled by the
/// HTTP side; the caller records the call.
pub(crate) fn dispatch(
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
        "sendPhoto" => send_photo(inner, st, p, received_at),
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
            if param_str(p, "text").is_some_and(|t| t.encode_utf16().count() > 200) {
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

/// Telegram's limit on a caption, after entity parsing, in UTF-16 units.
const MAX_CAPTION: usize = 1024;

/// `sendPhoto` with an uploaded file (multipart) or a file id / URL, and an optional caption.
fn send_photo(inner: &Inner, st: &mut State, p: &Map<String, Value>, received_at: Instant) -> Result<Value, ApiErr> {
    let chat = target_chat(st, p)?;
    check_not_blocked(st, &chat)?;
    let size = match p.get("photo") {
        Some(Value::Object(file)) => file.get("size").and_then(Value::as_u64).unwrap_or(0),
        Some(Value::String(id)) if !id.is_empty() => 0,
        _ => return Err(bad("there is no photo in the request")),
    };
    if p.get("photo").and_then(|f| f.get("size")).is_some() && size == 0 {
        return Err(bad("file must be non-empty"));
    }
    let caption = param_str(p, "caption").map(|c| c.into_owned()).unwrap_or_default();
    let parse_mode = p.get("parse_mode").and_then(Value::as_str).map(str::to_string);
    let plain = if caption.is_empty() {
        String::new()
    } else {
        render_text(inner, &caption, parse_mode.as_deref(), "message caption is too long")?
    };
    if plain.encode_utf16().count() > MAX_CAPTION {
        return Err(bad("message caption is too long"));
    }
    if is_counted_send("sendPhoto") {
        st.limiter.check(chat.id, Instant::now()).map_err(too_many)?;
    }
    let message_id = st.next_message_id(chat.id);
    let mut m = json!({
        "message_id": message_id,
        "from": inner.bot_json(),
        "chat": st.chat_json(&chat),
        "date": unix_now(),
        "photo": [{ "file_id": format!("photo{message_id}"), "file_unique_id": format!("u{message_id}"), "width": 1, "height": 1, "file_size": size }],
    });
    if !plain.is_empty() {
        m["caption"] = json!(plain);
    }
    st.messages.insert(
        (chat.id, message_id),
        StoredMessage {
            json: m.clone(),
            from_bot: true,
            raw_text: Some(caption.clone()),
            parse_mode: parse_mode.clone(),
            reply_markup: None,
            deleted: false,
        },
    );
    st.add_reply(Reply {
        chat_id: chat.id,
        message_id,
        kind: ReplyKind::Photo,
        text: caption,
        plain,
        parse_mode,
        reply_markup: None,
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

/// Telegram keeps one command list per scope and language.
pub(crate) fn commands_key(scope: Option<&Value>, language: Option<&str>) -> String {
    let scope = scope.cloned().unwrap_or_else(|| json!({"type": "default"}));
    format!("{}|{}", scope, language.unwrap_or(""))
}
