//! Several replicas of one bot on one PostgreSQL server (`--store postgres://...`).
//!
//! Updates do not go from the source that received them (any replica's webhook, the one
//! replica that polls) to its own dispatcher: they go into the inbox the replicas share
//! ([`keep`]), and every replica takes work from there one chat at a time ([`work`]): it claims
//! chats no replica works, hands their updates to its dispatcher one after the other, in the
//! order they arrived, and lets a chat go once it has nothing waiting. A replica that dies
//! leaves its chats to the others as its connection closes.
//!
//! A reply goes out only while the claim it was taken under holds ([`owns`], asked before each
//! send and before a retry): a replica cut off from the server sends nothing the one that took
//! its chats over will send. The state change and the reply's mark are the engine's (by update
//! id), so an update begun by a replica that died is not applied twice; only a death between a
//! send and its mark (about a millisecond) makes the reply go out twice, and the update taken
//! over is counted (`articlebot_updates_taken_over_total`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use articlebot_engine::ErrorChain;
use articlebot_postgres::{Claim, Next, Notice, Notifications, Replica, SendClock, RELOAD_CHANNEL};
use teloxide::stop::StopFlag;
use teloxide::types::{Update, UpdateKind};
use tokio::sync::{mpsc, oneshot, Notify};

use super::app::App;
use super::metrics;
use crate::store::{blocking, DataStore};

/// Chats a replica works at once; more wait in the inbox for it or another replica.
const MAX_CHATS: usize = 128;
/// How often the inbox is looked at without being told of an update.
const SCAN_EVERY: Duration = Duration::from_millis(250);

/// What this replica shares with the others.
pub struct Shared {
    /// This replica, as others see it (in logs, `pg_stat_activity` and reload notices).
    pub name: String,
    pub replica: Replica,
    pub clock: Arc<SendClock>,
    /// Updates handed to the dispatcher: the epoch of their claim, and who waits for them.
    taken: Mutex<HashMap<u32, Handed>>,
    /// Updates whose claim was lost while they were handled: they stay in the inbox.
    abandoned: Mutex<std::collections::HashSet<u32>>,
    wake: Notify,
    working: AtomicUsize,
    notifications: Mutex<Option<Notifications>>,
}

/// An update handed to the dispatcher: the epoch of its claim, and who waits for its handler.
struct Handed {
    epoch: u64,
    waiter: oneshot::Sender<()>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("name", &self.name).finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// This replica's name: the host's and the process id, unless given.
pub fn replica_name(given: Option<&str>) -> String {
    if let Some(n) = given {
        return n.to_string();
    }
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "replica".into());
    format!("{host}-{}", std::process::id())
}

impl Shared {
    /// Opens this replica's sessions on the server at `url` (migrated already).
    pub fn open(url: &str, name: String) -> Result<Shared, articlebot_engine::StoreError> {
        let replica = Replica::connect(url, &format!("articlebot {name}"))?;
        let clock = Arc::new(SendClock::connect(url, &format!("articlebot {name} limits"))?);
        Ok(Shared {
            name,
            replica,
            clock,
            taken: Mutex::default(),
            abandoned: Mutex::default(),
            wake: Notify::new(),
            working: AtomicUsize::new(0),
            notifications: Mutex::new(None),
        })
    }

    /// Listens for new updates and reloads of the other replicas.
    pub fn listen(self: &Arc<Self>, url: &str, app: &Arc<App>) -> Result<(), articlebot_engine::StoreError> {
        let (shared, app) = (Arc::downgrade(self), Arc::downgrade(app));
        let runtime = tokio::runtime::Handle::current();
        let name = self.name.clone();
        let listening = articlebot_postgres::listen(url, &format!("articlebot {name} notices"), move |notice| {
            let Some(shared) = shared.upgrade() else { return };
            match notice {
                Notice::Inbox => shared.wake.notify_one(),
                Notice::Resumed => {
                    tracing::info!("listening to the other replicas again");
                    shared.wake.notify_one();
                }
                Notice::Reload { from } => {
                    let (from, force) = match from.strip_suffix(" force") {
                        Some(f) => (f.to_string(), true),
                        None => (from, false),
                    };
                    if from == shared.name {
                        return;
                    }
                    let Some(app) = app.upgrade() else { return };
                    runtime.spawn(async move {
                        tracing::info!(replica = %from, "another replica reloaded the knowledge base: reloading");
                        let _ = app.reload_here("another replica", force).await;
                    });
                }
            }
        })?;
        *lock(&self.notifications) = Some(listening);
        Ok(())
    }

    /// Tells the other replicas to reload.
    pub fn tell_reload(&self, app: &App, force: bool) {
        let DataStore::Postgres(store) = app.engine.store() else { return };
        let payload = if force { format!("{} force", self.name) } else { self.name.clone() };
        if let Err(e) = blocking(|| store.tables().notify(RELOAD_CHANNEL, &payload)) {
            tracing::warn!(error = %ErrorChain(&e), "could not tell the other replicas to reload");
        }
    }

    /// Stops listening (as the bot stops).
    pub fn stop_listening(&self) {
        let listening = lock(&self.notifications).take();
        blocking(|| drop(listening));
    }
}

/// The chat an update belongs to, as the inbox orders them: its chat, else its sender (an
/// inline query), else 0.
pub fn chat_of(u: &Update) -> i64 {
    u.chat().map(|c| c.id.0).or_else(|| u.from().map(|f| f.id.0 as i64)).unwrap_or(0)
}

/// Puts updates in the shared inbox, waiting (with backoff) while the server cannot be reached:
/// Telegram is not told they arrived before they are kept. An update that cannot be encoded is
/// dropped with a warning.
pub async fn keep(app: &App, updates: Vec<Update>) {
    let DataStore::Postgres(store) = app.engine.store() else { return };
    let mut wait = super::StoreBackoff::default();
    for u in updates {
        let Ok(body) = serde_json::to_vec(&u) else {
            tracing::warn!(update = u.id.0, "cannot encode an update for the inbox; dropping it");
            continue;
        };
        loop {
            match blocking(|| store.tables().put_update(i64::from(u.id.0), chat_of(&u), &body)) {
                Ok(_) => {
                    wait.recovered("the inbox");
                    break;
                }
                Err(e) if e.is_transient() => wait.failed("the inbox", &e).await,
                Err(e) => {
                    // Kept nowhere: said loudly, and not confirmed to Telegram as kept is all we
                    // can do; a refused statement will not work on a second try either.
                    metrics::count_error("storage");
                    tracing::error!(update = u.id.0, error = %ErrorChain(&e), "cannot put an update in the inbox; dropping it");
                    break;
                }
            }
        }
    }
}

/// Moves what an earlier version left in the engine's own inbox table into the shared one.
pub fn adopt_old_inbox(app: &App) {
    let store = app.engine.store();
    let DataStore::Postgres(pg) = store else { return };
    let Ok(pending) = store.inbox_pending() else { return };
    for (id, bytes) in pending {
        let chat = serde_json::from_slice::<Update>(&bytes).map(|u| chat_of(&u)).unwrap_or(0);
        if pg.tables().put_update(i64::from(id), chat, &bytes).is_ok() {
            let _ = store.inbox_done(id);
        }
    }
}

tokio::task_local! {
    /// The update whose handler runs in this task.
    pub static HANDLING: u32;
}

/// Whether this replica still holds the claim `update` was taken under (always true for an
/// update it did not take from the shared inbox).
pub async fn owns(app: &App, update: u32) -> bool {
    app.shared().is_none_or(|shared| shared.holds(update))
}

impl Shared {
    /// Whether this replica still holds the claim `update` was taken under (always true for
    /// an update it did not take from the shared inbox). A claim found lost marks the update
    /// abandoned: it stays in the inbox for whoever holds its chat now.
    pub fn holds(&self, update: u32) -> bool {
        let Some(epoch) = lock(&self.taken).get(&update).map(|h| h.epoch) else { return true };
        if blocking(|| self.replica.holds(epoch)) {
            return true;
        }
        tracing::warn!(
            update,
            "lost the claim of this update's chat (the database went away); leaving it to whoever holds the chat now"
        );
        lock(&self.abandoned).insert(update);
        false
    }

    /// [`Shared::holds`] for the update whose handler runs in this task, if any.
    pub fn holds_current(&self) -> bool {
        HANDLING.try_with(|u| *u).map_or(true, |u| self.holds(u))
    }
}

/// An update's handler is done: it leaves the shared inbox (unless abandoned), and its chat's
/// next update may go.
pub fn done(app: &App, shared: &Shared, update: u32) {
    let abandoned = lock(&shared.abandoned).remove(&update);
    if !abandoned {
        if let DataStore::Postgres(store) = app.engine.store() {
            if let Err(e) = blocking(|| store.tables().update_done(i64::from(update))) {
                // It is handled again by whoever takes the chat next: the engine knows it by
                // its id and does not answer twice.
                tracing::warn!(update, error = %ErrorChain(&e), "cannot take a handled update out of the inbox");
            }
        }
    }
    if let Some(handed) = lock(&shared.taken).remove(&update) {
        let _ = handed.waiter.send(());
    }
}

/// Claims chats and hands their updates to the dispatcher (`to`) until `flag` is stopped.
pub async fn work(app: Arc<App>, shared: Arc<Shared>, to: mpsc::Sender<Update>, flag: StopFlag) {
    let mut wait = super::StoreBackoff::default();
    let mut chats = tokio::task::JoinSet::new();
    while !flag.is_stopped() {
        while chats.try_join_next().is_some() {}
        let room = MAX_CHATS.saturating_sub(shared.working.load(Ordering::Acquire));
        match blocking(|| shared.replica.claim(room)) {
            Ok(claims) => {
                wait.recovered("the replica's work");
                for claim in claims {
                    shared.working.fetch_add(1, Ordering::AcqRel);
                    chats.spawn(work_chat(app.clone(), shared.clone(), claim, to.clone(), flag.clone()));
                }
            }
            Err(e) if e.is_transient() => wait.failed("the replica's work", &e).await,
            Err(e) => {
                tracing::warn!(error = %ErrorChain(&e), "cannot claim chats from the inbox");
                metrics::count_error("storage");
            }
        }
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(SCAN_EVERY) => {}
            _ = flag.clone() => {}
        }
    }
    // Each chat finishes the update it is at (the dispatcher drains within the stop deadline).
    while chats.join_next().await.is_some() {}
}

/// One chat's updates, one at a time, until it has none left or the claim is lost.
async fn work_chat(app: Arc<App>, shared: Arc<Shared>, claim: Claim, to: mpsc::Sender<Update>, flag: StopFlag) {
    struct Working<'a>(&'a AtomicUsize);
    impl Drop for Working<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::AcqRel);
        }
    }
    let _working = Working(&shared.working);
    loop {
        if flag.is_stopped() {
            blocking(|| shared.replica.release(claim));
            return;
        }
        let taken = match blocking(|| shared.replica.take(claim)) {
            Ok(Next::Update(t)) => t,
            Ok(Next::Empty | Next::Lost) => return,
            Err(e) => {
                tracing::debug!(chat = claim.chat, error = %ErrorChain(&e), "the claim of a chat ended with its session");
                return;
            }
        };
        let id = taken.update_id as u32;
        let update = match serde_json::from_slice::<Update>(&taken.body) {
            Ok(u) if !matches!(u.kind, UpdateKind::Error(_)) => u,
            other => {
                // The class only: serde's message can quote the user's text.
                let class = other.err().map(|e| format!("{:?}", e.classify()));
                tracing::warn!(update = id, class, "dropping an update that cannot be handled from the inbox");
                done(&app, &shared, id);
                continue;
            }
        };
        if taken.attempts > 1 {
            metrics::count_taken_over();
            tracing::info!(
                update = id,
                attempts = taken.attempts,
                "taking over an update another replica began (it stopped or lost the database)"
            );
        }
        let (tx, rx) = oneshot::channel();
        lock(&shared.taken).insert(id, Handed { epoch: claim.epoch, waiter: tx });
        tokio::select! {
            sent = to.send(update) => if sent.is_err() { return },
            _ = flag.clone() => {
                lock(&shared.taken).remove(&id);
                blocking(|| shared.replica.release(claim));
                return;
            }
        }
        // Its handler is done (or, stopping, the dispatcher dropped it: it stays in the inbox).
        tokio::select! {
            _ = rx => {}
            _ = async {
                flag.clone().await;
                tokio::time::sleep(super::serve::STOP_DEADLINE).await;
            } => return,
        }
    }
}

/// Keeps the gauge of waiting updates current.
pub fn spawn_waiting_gauge(app: Arc<App>) {
    tokio::spawn(async move {
        loop {
            if let DataStore::Postgres(store) = app.engine.store() {
                if let Ok(n) = blocking(|| store.tables().updates_waiting()) {
                    metrics::set_shared_waiting(n);
                }
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        }
    });
}
