//! The durable inbox: an update listener that keeps every update in the database (flushed)
//! before the dispatcher sees it and replays what is left there at start, and [`handled`], which
//! takes an update out once its handler is done, whatever the outcome. teloxide confirms updates
//! to Telegram as soon as they are queued, not when they are answered; without the inbox a crash
//! in between would lose them.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;

use futures::{FutureExt, Stream, StreamExt};
use teloxide::stop::StopToken;
use teloxide::types::{AllowedUpdate, Update};
use teloxide::update_listeners::{AsUpdateStream, UpdateListener};
use tracing::Instrument;

use super::app::App;
use super::{metrics, HandlerResult};

pub struct DurableListener<L> {
    inner: L,
    app: Arc<App>,
    replay: Vec<Update>,
    /// Ids of the replayed updates: Telegram delivers them again too (their receipt was not
    /// confirmed before the stop), and one copy is enough. Updates handled but not confirmed
    /// come again as well; the conversation recognises those by their ids.
    replayed: std::collections::HashSet<u32>,
}

impl<L> DurableListener<L> {
    /// Wraps `inner`; updates left in the inbox by the previous run come first.
    pub fn new(inner: L, app: Arc<App>) -> Self {
        let engine = &app.engine;
        let mut replay = Vec::new();
        match engine.store().inbox_pending() {
            Ok(pending) => {
                for (id, bytes) in pending {
                    match serde_json::from_slice::<Update>(&bytes) {
                        Ok(u) => replay.push(u),
                        Err(e) => {
                            tracing::warn!(update = id, error = %e, "dropping an unreadable update from the inbox");
                            let _ = engine.store().inbox_done(id);
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the inbox; nothing to replay"),
        }
        if !replay.is_empty() {
            tracing::info!(updates = replay.len(), "handling updates received before the last stop");
        }
        let replayed = replay.iter().map(|u| u.id.0).collect();
        DurableListener { inner, app, replay, replayed }
    }
}

impl<'a, L> AsUpdateStream<'a> for DurableListener<L>
where
    L: UpdateListener + Send + 'static,
    L::Err: Send + 'static,
{
    type StreamErr = L::Err;
    type Stream = Pin<Box<dyn Stream<Item = Result<Update, L::Err>> + Send + 'a>>;

    fn as_stream(&'a mut self) -> Self::Stream {
        let replay = std::mem::take(&mut self.replay);
        let app = self.app.clone();
        let replayed = std::mem::take(&mut self.replayed);
        let live = self.inner.as_stream().filter(move |r| {
            let fresh = !matches!(r, Ok(u) if replayed.contains(&u.id.0));
            futures::future::ready(fresh)
        });
        let live = live.then(move |r| {
            let app = app.clone();
            async move {
                if let Ok(u) = &r {
                    keep(&app, u).await;
                }
                r
            }
        });
        Box::pin(futures::stream::iter(replay.into_iter().map(Ok)).chain(live))
    }
}

impl<L> UpdateListener for DurableListener<L>
where
    L: UpdateListener + Send + 'static,
    L::Err: Send + 'static,
{
    type Err = L::Err;

    fn stop_token(&mut self) -> StopToken {
        self.inner.stop_token()
    }

    fn hint_allowed_updates(&mut self, hint: &mut dyn Iterator<Item = AllowedUpdate>) {
        self.inner.hint_allowed_updates(hint);
    }
}

/// Puts an update in the inbox and waits until that is on disk. A storage failure is logged
/// and the update handled anyway: answering matters more than surviving a crash.
async fn keep(app: &App, u: &Update) {
    let engine = &app.engine;
    let bytes = match serde_json::to_vec(u) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "cannot serialize an update for the inbox");
            return;
        }
    };
    let stored = match engine.store().inbox_put(u.id.0, &bytes) {
        Ok(()) => engine.store().flush_async().await,
        Err(e) => Err(e),
    };
    if let Err(e) = stored {
        metrics::count_error("storage");
        tracing::warn!(error = %e, "cannot keep an update in the inbox; handling it anyway");
    }
}

/// Runs a handler body in a span of its update (every log line of the update carries its id),
/// so that a panic is logged instead of taking a worker down (teloxide issue #1435), then takes
/// the update out of the inbox: handled, whatever the outcome.
pub async fn handled(
    app: &Arc<App>,
    update: u32,
    what: &'static str,
    fut: impl Future<Output = HandlerResult>,
) -> HandlerResult {
    let span = tracing::info_span!("update", id = update, kind = what);
    let result = AssertUnwindSafe(fut.instrument(span)).catch_unwind().await;
    done(app, update);
    match result {
        Ok(r) => r,
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(handler = what, panic = %msg, "handler panicked; the bot keeps running");
            metrics::count_error("panic");
            Ok(())
        }
    }
}

/// Takes a handled update out of the inbox.
pub fn done(app: &App, update_id: u32) {
    if let Err(e) = app.engine.store().inbox_done(update_id) {
        tracing::warn!(error = %e, "cannot remove a handled update from the inbox");
    }
}
