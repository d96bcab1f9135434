//! Long polling with our own `getUpdates`. teloxide's `Polling` parses a batch as a whole: one
//! update it cannot read (a lone surrogate escape such as `"\ud800"` in a text) fails the
//! batch, the same offset is asked for again for ever, nobody in that batch is answered, and
//! every retry logs the whole batch, user text included, at ERROR. Here the batch is split into
//! raw updates, each read on its own (`wire::read`), what cannot be read is skipped by id, and
//! the offset moves past everything the batch held.
//!
//! A batch is kept in the inbox (one flush) before any of it is handed on and before the next
//! `getUpdates` confirms it to Telegram. Failures back off from 250 ms, doubling to 4 s; a 429
//! waits its `retry_after`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use serde::Serialize;
use serde_json::value::RawValue;
use teloxide::stop::StopFlag;
use teloxide::types::{AllowedUpdate, Update};
use teloxide::Bot;

use super::api::{self, CallError};
use super::app::App;
use super::inbox::{self, AllowedHint};
use super::wire::{self, Read};

/// Seconds a long poll waits for updates: under the HTTP client's 17 s total timeout.
const POLL_TIMEOUT_S: u32 = 10;
/// How often a replica that does not poll asks whether it should (the one that did stopped).
const LEADER_CHECK: Duration = Duration::from_secs(2);
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(4);

/// The backoff after `failures` failures in a row: 250 ms, 500 ms, 1 s, 2 s, then 4 s.
pub fn backoff(failures: u32) -> Duration {
    (FIRST_BACKOFF * 2u32.saturating_pow(failures.saturating_sub(1).min(4))).min(MAX_BACKOFF)
}

#[derive(Serialize)]
struct GetUpdates<'a> {
    offset: i64,
    limit: u8,
    timeout: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    allowed_updates: Option<&'a [AllowedUpdate]>,
}

/// The offset every update handed on so far is confirmed by, shared with the stop, which
/// confirms it to Telegram (`confirm`).
pub type Offset = Arc<AtomicI64>;

struct Poller {
    bot: Bot,
    app: Arc<App>,
    /// The next offset; stored in `confirmed` only once what it confirms is kept.
    offset: i64,
    confirmed: Offset,
    hint: AllowedHint,
    /// `allowed_updates` is sent until a poll succeeds; Telegram remembers it.
    allowed_sent: bool,
    failures: u32,
    flag: StopFlag,
    host: String,
    /// With replicas: whether this one polled last time it asked (`getUpdates` takes one
    /// consumer; the others work the shared inbox).
    polling: Option<bool>,
}

/// The live updates by long polling, each kept in the inbox before it is yielded. Ends when
/// `flag` is stopped.
pub fn updates(
    bot: Bot,
    app: Arc<App>,
    hint: AllowedHint,
    confirmed: Offset,
    flag: StopFlag,
) -> impl Stream<Item = Update> + Send + 'static {
    let host = api::host(&bot);
    let offset = confirmed.load(Ordering::Relaxed);
    let poller =
        Poller { bot, app, offset, confirmed, hint, allowed_sent: false, failures: 0, flag, host, polling: None };
    futures::stream::unfold(poller, |mut p| async move { p.next_batch().await.map(|b| (b, p)) })
        .flat_map(futures::stream::iter)
}

impl Poller {
    /// The next non-empty batch, kept; `None` once stopped.
    async fn next_batch(&mut self) -> Option<Vec<Update>> {
        loop {
            if self.flag.is_stopped() {
                return None;
            }
            if !self.may_poll() {
                tokio::select! {
                    _ = tokio::time::sleep(LEADER_CHECK) => continue,
                    _ = self.flag.clone() => return None,
                }
            }
            let allowed =
                if self.allowed_sent { None } else { self.hint.lock().unwrap_or_else(|p| p.into_inner()).clone() };
            let body = GetUpdates {
                offset: self.offset,
                limit: 100,
                timeout: POLL_TIMEOUT_S,
                allowed_updates: allowed.as_deref(),
            };
            let answer = tokio::select! {
                a = api::call_raw(&self.bot, "getUpdates", &body, None) => a,
                _ = self.flag.clone() => return None,
            };
            let wait = match answer {
                Ok(result) => {
                    self.failures = 0;
                    self.allowed_sent |= allowed.is_some();
                    match self.take(&result).await {
                        Some(batch) => return Some(batch),
                        None => continue,
                    }
                }
                Err(CallError::RetryAfter(d)) => {
                    tracing::warn!(api = %self.host, retry_in_ms = d.as_millis() as u64, "getUpdates: too many requests; waiting");
                    d
                }
                Err(e) => {
                    self.failures += 1;
                    let wait = backoff(self.failures);
                    if matches!(&e, CallError::Api { status: 409, error } if error.to_string().contains("webhook")) {
                        // A webhook is set (by another deployment, or the delete at start failed).
                        tracing::warn!(api = %self.host, "getUpdates refused while a webhook is set; deleting the webhook");
                        if let Err(e) = api::call(&self.bot, &teloxide::payloads::DeleteWebhook::new()).await {
                            tracing::warn!(api = %self.host, error = %e, "deleteWebhook failed");
                        }
                    }
                    tracing::warn!(api = %self.host, error = %e, retry_in_ms = wait.as_millis() as u64, "getUpdates failed; retrying");
                    wait
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = self.flag.clone() => return None,
            }
        }
    }

    /// Whether this replica is the one that polls (always, without replicas); says so when that
    /// changes.
    fn may_poll(&mut self) -> bool {
        let Some(shared) = self.app.shared() else { return true };
        let polls = crate::store::blocking(|| shared.replica.polls()).unwrap_or(false);
        if self.polling != Some(polls) {
            if polls {
                tracing::info!("this replica polls Telegram for the others");
            } else {
                tracing::info!("another replica polls Telegram; this one works the shared inbox");
            }
            self.polling = Some(polls);
        }
        polls
    }

    /// Reads a batch, keeps what can be handled, moves the offset past all of it.
    async fn take(&mut self, result: &RawValue) -> Option<Vec<Update>> {
        let Ok(raw) = serde_json::from_str::<Vec<&RawValue>>(result.get()) else {
            tracing::warn!(api = %self.host, bytes = result.get().len(), "getUpdates answered something that is not a list");
            return None;
        };
        let mut batch = Vec::with_capacity(raw.len());
        let mut next = self.offset;
        for item in raw {
            let id = match wire::read(item.get()) {
                Read::Update(u) => {
                    let id = u.id.0;
                    batch.push(*u);
                    Some(id)
                }
                Read::Skipped { id } => id,
            };
            if let Some(id) = id {
                next = next.max(i64::from(id) + 1);
            }
        }
        let kept = if batch.is_empty() { batch } else { inbox::keep(&self.app, batch).await };
        self.offset = next;
        self.confirmed.store(next, Ordering::Relaxed);
        (!kept.is_empty()).then_some(kept)
    }
}

/// Confirms the updates handed on to Telegram (one short `getUpdates` with the next offset),
/// so that it does not deliver them again at the next start. Best effort: they are in the inbox,
/// and a second copy would be recognised by its id.
pub async fn confirm(bot: &Bot, offset: &Offset) {
    let offset = offset.load(Ordering::Relaxed);
    if offset == 0 {
        return;
    }
    let body = GetUpdates { offset, limit: 1, timeout: 0, allowed_updates: None };
    if let Err(e) = api::call_raw(bot, "getUpdates", &body, Some(Duration::from_secs(2))).await {
        tracing::warn!(api = %api::host(bot), error = %e, "could not confirm the last updates; Telegram sends them again");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_250_ms_to_4_s() {
        let waits: Vec<u64> = (1..=7).map(|n| backoff(n).as_millis() as u64).collect();
        assert_eq!(waits, vec![250, 500, 1000, 2000, 4000, 4000, 4000]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
