//! The durable inbox: every update is written to the database (flushed) before it is confirmed
//! to Telegram and before the dispatcher sees it ([`keep`]: by the poller before its next
//! `getUpdates` offset confirms the batch, by the webhook before it answers 200), and taken out
//! once its handler is done, whatever the outcome ([`handled`], [`done`]). What is left there
//! after a crash or a stop is handled first at the next start ([`replay`]). Updates that cannot
//! be handled (unreadable, of a kind teloxide does not know) never go in, and are dropped from an
//! inbox an older version left them in.
//!
//! With replicas on PostgreSQL the inbox is the one they share (`replicas`): `keep` puts
//! updates there, and the dispatcher gets them from the chats this replica claims.
//!
//! [`Listener`] is what the dispatcher reads: the replayed updates, then the live ones, until
//! its stop token is stopped.

use std::collections::HashSet;
use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use futures::stream::BoxStream;
use futures::{FutureExt, Stream, StreamExt};
use teloxide::stop::{StopFlag, StopToken};
use teloxide::types::{AllowedUpdate, Update, UpdateKind};
use teloxide::update_listeners::{AsUpdateStream, UpdateListener};
use tracing::Instrument;

use super::app::App;
use super::{metrics, HandlerResult};

/// Which update ids this process has already taken in.
#[derive(Debug, Default)]
pub struct Seen {
    /// Replayed from the inbox at start. Telegram delivers them again too (their receipt was not
    /// confirmed before the stop), and one copy is enough. Updates handled but not confirmed
    /// come again as well; the conversation recognises those by their ids.
    replayed: HashSet<u32>,
    /// Kept and not yet handled: a webhook delivery retried by Telegram while the first one is
    /// still queued is not queued twice.
    queued: HashSet<u32>,
}

fn seen(app: &App) -> std::sync::MutexGuard<'_, Seen> {
    app.seen.lock().unwrap_or_else(|p| p.into_inner())
}

/// The updates left in the inbox by the previous run, oldest first. Entries that cannot be
/// handled (unreadable, or a kind teloxide cannot read: its dispatcher would drop them before
/// any handler, so they would stay forever) are removed.
pub fn replay(app: &App) -> Vec<Update> {
    if app.shared().is_some() {
        // Replicas take updates from the shared inbox, left ones included.
        super::replicas::adopt_old_inbox(app);
        return Vec::new();
    }
    let store = app.engine.store();
    let mut replay = Vec::new();
    match store.inbox_pending() {
        Ok(pending) => {
            for (id, bytes) in pending {
                match serde_json::from_slice::<Update>(&bytes) {
                    Ok(u) if !matches!(u.kind, UpdateKind::Error(_)) => replay.push(u),
                    Ok(_) => {
                        tracing::warn!(update = id, "dropping an update of a kind teloxide cannot read from the inbox");
                        let _ = store.inbox_done(id);
                    }
                    Err(e) => {
                        // The class only: serde's message can quote the user's text.
                        tracing::warn!(update = id, class = ?e.classify(), "dropping an unreadable update from the inbox");
                        let _ = store.inbox_done(id);
                    }
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the inbox; nothing to replay"),
    }
    if !replay.is_empty() {
        tracing::info!(updates = replay.len(), "handling updates received before the last stop");
    }
    let mut seen = seen(app);
    seen.replayed.extend(replay.iter().map(|u| u.id.0));
    seen.queued.clear();
    replay
}

/// Puts updates in the inbox and waits until they are on disk (one flush for all of them);
/// returns those to handle: not replayed at start, not already queued. On sled a storage failure
/// is logged and the updates handled anyway: answering matters more than surviving a crash. On a
/// database server that cannot be reached this waits (with backoff) until they are kept: the
/// bot cannot answer either, and Telegram holds what comes meanwhile.
pub async fn keep(app: &App, updates: Vec<Update>) -> Vec<Update> {
    if app.shared().is_some() {
        // Into the inbox the replicas share; whichever claims the chat handles them.
        super::replicas::keep(app, updates).await;
        return Vec::new();
    }
    let fresh: Vec<Update> = {
        let mut seen = seen(app);
        let seen = &mut *seen;
        updates.into_iter().filter(|u| !seen.replayed.contains(&u.id.0) && seen.queued.insert(u.id.0)).collect()
    };
    if fresh.is_empty() {
        return fresh;
    }
    // Should this future be dropped before they are kept (a webhook request Telegram gave up on
    // while the server was away), the ids must not stay queued: Telegram's next delivery of the
    // same updates would be taken for a copy and confirmed without ever being kept.
    let mut queued = Queued { app, ids: fresh.iter().map(|u| u.id.0).collect() };
    let store = app.engine.store();
    let mut wait = super::StoreBackoff::default();
    loop {
        let mut stored: Result<(), StoreFailure> = Ok(());
        for u in &fresh {
            let put = match serde_json::to_vec(u) {
                Ok(bytes) => store.inbox_put(u.id.0, &bytes).map_err(StoreFailure::Store),
                Err(e) => Err(StoreFailure::Encode(e.classify_name())),
            };
            if let Err(e) = put {
                stored = Err(e);
            }
        }
        if let Err(e) = store.flush_async().await {
            stored = Err(StoreFailure::Store(e));
        }
        match stored {
            Ok(()) => {
                wait.recovered("the inbox");
                queued.ids.clear();
                return fresh;
            }
            Err(StoreFailure::Store(e)) if store.is_shared() && e.is_transient() => {
                wait.failed("the inbox", &e).await;
            }
            Err(e) => {
                metrics::count_error("storage");
                tracing::warn!(error = %e, updates = fresh.len(), "cannot keep updates in the inbox; handling them anyway");
                queued.ids.clear();
                return fresh;
            }
        }
    }
}

/// Ids marked queued by [`keep`], unmarked on drop unless `keep` handed them on.
struct Queued<'a> {
    app: &'a App,
    ids: Vec<u32>,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        if !self.ids.is_empty() {
            let mut seen = seen(self.app);
            for id in &self.ids {
                seen.queued.remove(id);
            }
        }
    }
}

/// Why updates could not be kept.
#[derive(Debug, thiserror::Error)]
enum StoreFailure {
    #[error("cannot serialize an update: {0}")]
    Encode(&'static str),
    #[error("{}", articlebot_engine::ErrorChain(.0))]
    Store(articlebot_engine::StoreError),
}

/// serde_json's error class as a word (its message may quote the data).
trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "syntax",
            serde_json::error::Category::Data => "data",
            serde_json::error::Category::Eof => "eof",
        }
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
    let result = AssertUnwindSafe(super::replicas::HANDLING.scope(update, fut.instrument(span))).catch_unwind().await;
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
    if let Some(shared) = app.shared() {
        return super::replicas::done(app, shared, update_id);
    }
    seen(app).queued.remove(&update_id);
    if let Err(e) = app.engine.store().inbox_done(update_id) {
        tracing::warn!(error = %e, "cannot remove a handled update from the inbox");
    }
}

/// What the update listener was told the handlers take (teloxide's hint), shared with the
/// source that asks Telegram for updates.
pub type AllowedHint = Arc<Mutex<Option<Vec<AllowedUpdate>>>>;

/// The dispatcher's update listener: replayed updates first, then live ones (already kept),
/// until the stop token is stopped. The stop is sticky and ends the stream at once, even in the
/// middle of a batch or of the replay: what is not handled stays in the inbox.
pub struct Listener {
    stream: Option<BoxStream<'static, Update>>,
    token: StopToken,
    hint: Option<AllowedHint>,
}

impl Listener {
    pub fn new(
        replay: Vec<Update>,
        live: impl Stream<Item = Update> + Send + 'static,
        token: StopToken,
        flag: StopFlag,
    ) -> Self {
        let stream = futures::stream::iter(replay).chain(live).take_until(flag).boxed();
        Listener { stream: Some(stream), token, hint: None }
    }

    /// Where teloxide's hint of the kinds of updates the handlers take goes.
    pub fn with_hint(mut self, hint: AllowedHint) -> Self {
        self.hint = Some(hint);
        self
    }
}

impl<'a> AsUpdateStream<'a> for Listener {
    type StreamErr = Infallible;
    type Stream = Pin<Box<dyn Stream<Item = Result<Update, Infallible>> + Send + 'a>>;

    fn as_stream(&'a mut self) -> Self::Stream {
        // The dispatcher asks once; a second stream would be empty rather than a second copy.
        let stream = self.stream.take().unwrap_or_else(|| futures::stream::empty().boxed());
        Box::pin(stream.map(Ok))
    }
}

impl UpdateListener for Listener {
    // Sources log their own errors (without user text); the dispatcher gets none to log.
    type Err = Infallible;

    fn stop_token(&mut self) -> StopToken {
        self.token.clone()
    }

    fn hint_allowed_updates(&mut self, hint: &mut dyn Iterator<Item = AllowedUpdate>) {
        if let Some(h) = &self.hint {
            *h.lock().unwrap_or_else(|p| p.into_inner()) = Some(hint.collect());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app_with(store: articlebot_engine::SledStore) -> Arc<App> {
        let store = crate::store::DataStore::Sled(store);
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge");
        let (engine, _) = articlebot_engine::Engine::open(&dir, store, Default::default()).unwrap();
        Arc::new(App::new(
            engine,
            Default::default(),
            "bot".into(),
            Default::default(),
            None,
            articlebot_engine::DEFAULT_MAX_BROKEN,
        ))
    }

    const MESSAGE: &str = r#"{"update_id":7,"message":{"message_id":1,"date":1700000000,"chat":{"id":7,"type":"private","first_name":"A"},"from":{"id":7,"is_bot":false,"first_name":"A"},"text":"knee pain"}}"#;

    #[tokio::test]
    async fn what_cannot_be_handled_is_dropped_from_the_inbox() {
        let store = articlebot_engine::SledStore::temporary().unwrap();
        store.inbox_put(5, br#"{"update_id":5,"message":{"bogus":"secret"}}"#).unwrap();
        store.inbox_put(6, b"not json").unwrap();
        store.inbox_put(7, MESSAGE.as_bytes()).unwrap();
        let app = app_with(store);
        let replayed = replay(&app);
        assert_eq!(replayed.iter().map(|u| u.id.0).collect::<Vec<_>>(), vec![7]);
        let left: Vec<u32> = app.engine.store().inbox_pending().unwrap().into_iter().map(|(id, _)| id).collect();
        assert_eq!(left, vec![7], "only the update that can be handled stays until it is");
    }

    #[tokio::test]
    async fn kept_updates_are_on_disk_once_and_replayed_ones_not_again() {
        let store = articlebot_engine::SledStore::temporary().unwrap();
        store.inbox_put(7, MESSAGE.as_bytes()).unwrap();
        let app = app_with(store);
        assert_eq!(replay(&app).len(), 1);
        let again: Update = serde_json::from_str(MESSAGE).unwrap();
        let mut fresh: Update = serde_json::from_str(MESSAGE).unwrap();
        fresh.id = teloxide::types::UpdateId(8);
        let kept = keep(&app, vec![again, fresh.clone()]).await;
        assert_eq!(kept.iter().map(|u| u.id.0).collect::<Vec<_>>(), vec![8], "Telegram's copy of a replayed one");
        assert!(keep(&app, vec![fresh.clone()]).await.is_empty(), "a second delivery while it is queued");
        let ids: Vec<u32> = app.engine.store().inbox_pending().unwrap().into_iter().map(|(id, _)| id).collect();
        assert_eq!(ids, vec![7, 8]);
        done(&app, 8);
        assert_eq!(keep(&app, vec![fresh]).await.len(), 1, "delivered again after it was handled: the engine knows");
    }

    #[tokio::test]
    async fn a_panicking_handler_is_contained_and_its_update_leaves_the_inbox() {
        let store = articlebot_engine::SledStore::temporary().unwrap();
        store.inbox_put(5, b"{}").unwrap();
        let app = app_with(store);
        let r = handled(&app, 5, "test", async { panic!("boom") }).await;
        assert!(r.is_ok(), "the panic does not escape");
        assert!(app.engine.store().inbox_pending().unwrap().is_empty());
        let r = handled(&app, 6, "test", async { Err("an error".into()) }).await;
        assert!(r.is_err(), "errors still reach teloxide's error handler");
    }
}
