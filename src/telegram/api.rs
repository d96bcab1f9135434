//! Bot API calls the bot makes itself: teloxide's payload types (`SendMessage::new(..)` and its
//! setters), posted with the bot's own HTTP client, proxy and base URL, but not through
//! teloxide-core's request machinery, for two reasons:
//! - it sleeps a fixed 10 s after any 5xx before it even returns the error
//!   (`DELAY_ON_SERVER_ERROR`), under every retry of ours;
//! - its errors carry whole response bodies (`InvalidJson { raw }`: every user's text of a
//!   `getUpdates` batch), which end up in log lines.
//!
//! Here the answer is read as a plain envelope, the result is parsed only as far as the caller
//! needs it, and an error holds neither the URL (the token is in it) nor the body.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use teloxide::requests::Payload;
use teloxide::{ApiError, Bot};

/// Why a call failed. Display is one line with no token, URL or user text in it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CallError {
    /// No answer: the connection was refused or dropped, or it timed out.
    #[error("network error: {0}")]
    Network(String),
    /// 429: Telegram asks to wait this long.
    #[error("too many requests, retry after {} s", .0.as_secs())]
    RetryAfter(Duration),
    /// The group became a supergroup with this id.
    #[error("the group was migrated to the supergroup {0}")]
    Migrated(i64),
    /// HTTP 5xx without a usable refusal: the API is having a bad moment.
    #[error("the Bot API answered HTTP {0}")]
    Server(u16),
    /// A refusal, with the HTTP status and Telegram's description as teloxide reads it.
    #[error("the Bot API refused the call (HTTP {status}): {error}")]
    Api { status: u16, error: ApiError },
    /// An answer that is not the Bot API's JSON (a proxy's error page, a cut body), or a result of
    /// an unexpected shape.
    #[error("an answer that is not the Bot API's (HTTP {status})")]
    BadAnswer { status: u16 },
    /// Not sent: this replica lost the claim of the chat while the call waited for its slot,
    /// and the replica that holds it now answers instead.
    #[error("not sent: another replica holds the chat now")]
    NotOurs,
}

impl CallError {
    /// Worth retrying: the API or the network is having a bad moment, or asked us to wait.
    pub fn is_transient(&self) -> bool {
        match self {
            CallError::Network(_) | CallError::RetryAfter(_) | CallError::Server(_) | CallError::BadAnswer { .. } => {
                true
            }
            CallError::Api { status, error } => {
                *status == 429 || *status >= 500 || matches!(error, ApiError::Unknown(d) if is_transient_description(d))
            }
            CallError::Migrated(_) | CallError::NotOurs => false,
        }
    }
}

/// Descriptions of refusals that are the API's trouble rather than ours.
fn is_transient_description(description: &str) -> bool {
    let d = description.to_ascii_lowercase();
    ["internal server error", "bad gateway", "service unavailable", "gateway timeout", "too many requests", "timeout"]
        .iter()
        .any(|s| d.contains(s))
}

/// The API's host and port as log lines show it (the token is in the path, never shown).
pub fn host(bot: &Bot) -> String {
    let url = bot.api_url();
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => "?".to_string(),
    }
}

/// The Bot API's answer envelope. Not `#[serde(untagged)]` as teloxide's is: that buffers the
/// whole body into serde's private tree first, which refuses a lone surrogate escape anywhere
/// in it. A `RawValue` result is kept as text, unchecked.
#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    result: Option<Box<RawValue>>,
    description: Option<String>,
    parameters: Option<Parameters>,
}

#[derive(Deserialize)]
struct Parameters {
    retry_after: Option<u64>,
    migrate_to_chat_id: Option<i64>,
}

/// Calls the payload's method; the result parsed as its teloxide type.
pub async fn call<P>(bot: &Bot, payload: &P) -> Result<P::Output, CallError>
where
    P: Payload + Serialize,
    P::Output: DeserializeOwned,
{
    call_as(bot, payload).await
}

/// Calls the payload's method, reading the result as `T` (`serde::de::IgnoredAny` when it is
/// not needed: a sent message must not turn into an error, and be sent again, because its
/// echo has a field teloxide cannot read).
pub async fn call_as<P, T>(bot: &Bot, payload: &P) -> Result<T, CallError>
where
    P: Payload + Serialize,
    T: DeserializeOwned,
{
    let raw = call_raw(bot, P::NAME, payload, None).await?;
    serde_json::from_str(raw.get()).map_err(|_| CallError::BadAnswer { status: 200 })
}

/// Calls `method` with `body` as JSON; the result as unparsed JSON text. `timeout` replaces the
/// client's own (17 s) for this request.
pub async fn call_raw(
    bot: &Bot,
    method: &str,
    body: &impl Serialize,
    timeout: Option<Duration>,
) -> Result<Box<RawValue>, CallError> {
    let mut request = bot.client().post(method_url(bot, method)?).json(body);
    if let Some(t) = timeout {
        request = request.timeout(t);
    }
    send(bot, request).await
}

/// Calls `method` with a multipart form (a file upload); the result as unparsed JSON text.
pub async fn call_multipart(
    bot: &Bot,
    method: &str,
    form: reqwest::multipart::Form,
) -> Result<Box<RawValue>, CallError> {
    send(bot, bot.client().post(method_url(bot, method)?).multipart(form)).await
}

/// The URL of a method (the token is in it: never shown).
fn method_url(bot: &Bot, method: &str) -> Result<url::Url, CallError> {
    let mut url = bot.api_url();
    // A base URL that cannot take a path is refused by the start-up checks; this is a
    // second guard, not a way to reach here.
    url.path_segments_mut()
        .map_err(|_| CallError::BadAnswer { status: 0 })?
        .pop_if_empty()
        .push(&format!("bot{}", bot.token()))
        .push(method);
    Ok(url)
}

async fn send(bot: &Bot, request: reqwest::RequestBuilder) -> Result<Box<RawValue>, CallError> {
    let network = |e: reqwest::Error| CallError::Network(describe(bot, e));
    let response = request.send().await.map_err(network)?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(network)?;
    read_answer(status, &text)
}

/// The answer of a call: the result, or why not.
fn read_answer(status: u16, text: &str) -> Result<Box<RawValue>, CallError> {
    let Ok(envelope) = serde_json::from_str::<Envelope>(text) else {
        return Err(if status >= 500 { CallError::Server(status) } else { CallError::BadAnswer { status } });
    };
    if envelope.ok {
        return envelope.result.ok_or(CallError::BadAnswer { status });
    }
    if let Some(p) = &envelope.parameters {
        if let Some(s) = p.retry_after {
            return Err(CallError::RetryAfter(Duration::from_secs(s)));
        }
        if let Some(chat) = p.migrate_to_chat_id {
            return Err(CallError::Migrated(chat));
        }
    }
    match envelope.description {
        Some(d) => {
            let error = serde_json::from_value(serde_json::Value::String(d.clone())).unwrap_or(ApiError::Unknown(d));
            Err(CallError::Api { status, error })
        }
        None if status >= 500 => Err(CallError::Server(status)),
        None => Err(CallError::BadAnswer { status }),
    }
}

/// A reqwest error as one line: without its URL (the token is in it), with its causes ("error
/// sending request: client error (Connect): tcp connect error: Connection refused").
fn describe(bot: &Bot, e: reqwest::Error) -> String {
    let timeout = e.is_timeout();
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    if timeout && !out.contains("timed out") {
        out.push_str(" (timed out)");
    }
    // No cause is known to carry the token; this keeps it so if one ever does.
    out.replace(bot.token(), "<token>")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_without_trusting_them() {
        let ok = read_answer(200, r#"{"ok":true,"result":{"text":"a \ud800 b"}}"#).unwrap();
        assert!(ok.get().contains("\\ud800"), "a lone surrogate in the result does not fail the call");
        assert!(matches!(
            read_answer(429, r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 3","parameters":{"retry_after":3}}"#),
            Err(CallError::RetryAfter(d)) if d == Duration::from_secs(3)
        ));
        assert!(matches!(read_answer(502, "<html>Bad Gateway</html>"), Err(CallError::Server(502))));
        assert!(matches!(
            read_answer(502, r#"{"ok":false,"error_code":502,"description":"Bad Gateway"}"#),
            Err(e @ CallError::Api { status: 502, .. }) if e.is_transient()
        ));
        assert!(matches!(read_answer(200, "<html>"), Err(CallError::BadAnswer { status: 200 })));
        let not_modified = read_answer(
            400,
            r#"{"ok":false,"error_code":400,"description":"Bad Request: message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"}"#,
        );
        assert!(matches!(not_modified, Err(CallError::Api { status: 400, error: ApiError::MessageNotModified })));
        let blocked =
            read_answer(403, r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#);
        assert!(matches!(&blocked, Err(e) if !e.is_transient()), "{blocked:?}");
        assert!(matches!(
            read_answer(400, r#"{"ok":false,"description":"x","parameters":{"migrate_to_chat_id":-100}}"#),
            Err(CallError::Migrated(-100))
        ));
    }

    #[test]
    fn hosts_never_show_the_token() {
        let bot = Bot::new("123:SECRET").set_api_url("http://127.0.0.1:8081/".parse().unwrap());
        assert_eq!(host(&bot), "127.0.0.1:8081");
        assert_eq!(host(&Bot::new("123:SECRET")), "api.telegram.org");
    }
}
