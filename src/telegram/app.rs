//! What the handlers share: the engine, Telegram's limits on both sides, who the admins are, and
//! the knowledge reload that `/reload` and SIGHUP trigger.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use articlebot_engine::{
    now_unix, Engine, ErrorChain, Guard, LoadError, LoadReport, OpenError, ReloadError, ReplayReport, ReviewSession,
    Store, MIN_USERS,
};

use super::inbox::Seen;
use super::limits::{FloodControl, FloodLimits, RateLimiter, SendLimits};
use super::metrics;
use super::replicas::Shared;
use super::send::Outbox;
use crate::store::DataStore;

/// Result of a knowledge reload.
#[derive(Debug)]
pub enum ReloadOutcome {
    /// Swapped in, with what the reviewed questions get from it.
    Loaded(Box<LoadReport>, ReplayReport),
    /// The new knowledge base breaks more reviewed questions than allowed: the previous one
    /// keeps serving.
    Refused { replay: ReplayReport, limit: f32, elapsed: Duration },
    /// Nothing changed: the previous knowledge base keeps serving.
    Failed { errors: Vec<String>, elapsed: Duration },
}

pub struct App {
    pub engine: Engine<DataStore>,
    /// Shared with the tasks that send a chat's edits (`send`).
    pub limiter: Arc<RateLimiter>,
    /// Edits waiting per chat, coalesced (`send`).
    pub outbox: Arc<Outbox>,
    /// Update ids taken in by this process (`inbox`).
    pub seen: Mutex<Seen>,
    pub admins: HashSet<i64>,
    pub bot_username: String,
    pub flood: FloodControl,
    /// The share of reviewed questions a reload may break (`--replay-limit`).
    pub replay_limit: f32,
    /// Media group ids already answered, newest last (a few hundred are plenty: an album's
    /// messages arrive together).
    albums: Mutex<VecDeque<String>>,
    /// A task to run the engine's due automatic acceptances is on its way: one is enough, it
    /// takes everything queued by the time it starts.
    learning_scheduled: AtomicBool,
    /// `/review` proposes a question once this many distinct users backed it.
    pub review_min_users: u64,
    /// Each admin's review session (what they skipped); admins are a fixed, short list.
    reviews: Mutex<HashMap<i64, ReviewSession>>,
    /// One review decision at a time: a double tap must not decide one proposal twice.
    deciding: Mutex<()>,
    /// The bot that tells waiting users their answer after a reload (set once it is built).
    notifier: std::sync::OnceLock<teloxide::Bot>,
    /// What this replica shares with the others, when the store is on PostgreSQL.
    shared: std::sync::OnceLock<Arc<Shared>>,
}

impl App {
    pub fn new(
        engine: Engine<DataStore>,
        admins: HashSet<i64>,
        bot_username: String,
        flood: FloodLimits,
        send_limits: Option<SendLimits>,
        replay_limit: f32,
    ) -> Self {
        App {
            engine,
            limiter: Arc::new(RateLimiter::new(send_limits)),
            outbox: Default::default(),
            seen: Default::default(),
            admins,
            bot_username,
            flood: FloodControl::new(flood),
            replay_limit,
            albums: Default::default(),
            learning_scheduled: AtomicBool::new(false),
            review_min_users: MIN_USERS,
            reviews: Default::default(),
            deciding: Mutex::new(()),
            notifier: std::sync::OnceLock::new(),
            shared: std::sync::OnceLock::new(),
        }
    }

    pub fn is_admin(&self, user: i64) -> bool {
        self.admins.contains(&user)
    }

    /// Works with other replicas through `shared` (set once, before updates are taken); the
    /// send limits become the bot's, kept on the server.
    pub fn set_shared(&self, shared: Arc<Shared>) {
        self.limiter.share(shared.clone());
        let _ = self.shared.set(shared);
    }

    /// What this replica shares with the others, if it has any.
    pub fn shared(&self) -> Option<&Arc<Shared>> {
        self.shared.get()
    }

    /// Tells the other replicas (if any) that the knowledge base changed here, so that they
    /// load it too; `force` passes a `/reload force` on.
    pub fn tell_replicas(&self, force: bool) {
        if let Some(shared) = self.shared() {
            shared.tell_reload(self, force);
        }
    }

    /// Runs `f` on `admin`'s review session (made on first use).
    pub fn review_session<T>(&self, admin: i64, f: impl FnOnce(&mut ReviewSession) -> T) -> T {
        let mut all = self.reviews.lock().unwrap_or_else(|p| p.into_inner());
        f(all.entry(admin).or_default())
    }

    /// The bot that sends answers to users who waited for them (see [`App::notify_answered`]).
    pub fn set_notifier(&self, bot: teloxide::Bot) {
        let _ = self.notifier.set(bot);
    }

    /// After the knowledge base changed: the questions users wait for that it answers with
    /// confidence now get their answer, once each, through the send path that keeps Telegram's
    /// limits. Runs as its own task so that whoever reloaded is not kept waiting.
    pub fn notify_answered(self: &Arc<Self>) {
        let Some(bot) = self.notifier.get().cloned() else { return };
        let app = self.clone();
        tokio::spawn(async move {
            let app2 = app.clone();
            let found = tokio::task::spawn_blocking(move || {
                let found = app2.engine.answered_watches(articlebot_engine::now_unix());
                // The watches are out of the store before anything is sent: at most once.
                if let Err(e) = app2.engine.store().flush() {
                    tracing::warn!(error = %ErrorChain(&e), "could not flush the database");
                }
                found
            })
            .await;
            let answered = match found {
                Ok(Ok(list)) => list,
                Ok(Err(e)) => {
                    tracing::warn!(error = %ErrorChain(&e), "could not read the questions users wait for");
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the task reading the questions users wait for failed");
                    return;
                }
            };
            let mut sent = 0usize;
            for a in &answered {
                let Some(mut r) = super::render::render(&a.outcome.reply, &app.bot_username) else { continue };
                let head = super::render::escape(&articlebot_engine::text::answer_arrived(&a.question));
                r.html = format!("{head}\n\n{}", r.html);
                let r = super::render::fit(r);
                let to = super::send::Dest::chat(teloxide::types::ChatId(a.user));
                match super::send::deliver(&bot, &app, to, &r, None).await {
                    Ok(()) => sent += 1,
                    Err(e) => tracing::warn!(chat = a.user, error = %e, "could not send an answer a user waited for"),
                }
            }
            if !answered.is_empty() {
                tracing::info!(answered = answered.len(), sent, "told users waiting for an answer");
            }
        });
    }

    /// Held while a review decision is carried out.
    pub fn review_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.deciding.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// After the engine reloaded the knowledge base itself (a review decision): the metrics
    /// follow the knowledge base in use, as after [`App::reload`].
    pub async fn knowledge_changed(self: &Arc<Self>, source: &str) {
        let lib = self.engine.library();
        let kb = lib.kb();
        metrics::set_knowledge(lib.generation, kb.articles.len(), kb.articles.iter().map(|a| a.sections.len()).sum());
        tracing::info!(source, generation = lib.generation, "knowledge reloaded");
        // Checked here already: the others take it as it is.
        self.tell_replicas(true);
        self.notify_answered();
    }

    /// Whether this is the first message of the album seen (recently).
    pub fn first_of_album(&self, album: &str) -> bool {
        const REMEMBERED: usize = 512;
        let mut seen = self.albums.lock().unwrap_or_else(|p| p.into_inner());
        if seen.iter().any(|a| a == album) {
            return false;
        }
        if seen.len() >= REMEMBERED {
            seen.pop_front();
        }
        seen.push_back(album.to_string());
        true
    }

    /// Runs the engine's due automatic acceptances (`[learning] auto_accept_users`) on a blocking
    /// thread, after the reply that queued them: each writes an article file and reloads the
    /// knowledge base, which no user's answer should wait for. The engine logs each one.
    pub fn learn_in_background(self: &Arc<Self>) {
        if self.learning_scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let app = self.clone();
        tokio::task::spawn_blocking(move || {
            // Cleared before the queue is taken: a pair queued from now on schedules another run.
            app.learning_scheduled.store(false, Ordering::Release);
            let done = app.engine.accept_due(now_unix());
            if done.iter().any(|d| d.result.is_err()) {
                metrics::count_error("learning");
            }
            if done.iter().any(|d| d.result.is_ok()) {
                let lib = app.engine.library();
                let stats = lib.kb().stats();
                metrics::set_knowledge(lib.generation, stats.articles + stats.stubs, stats.sections);
                app.tell_replicas(true);
                // Those waiting for one of these questions get their answer now.
                app.notify_answered();
            }
        });
    }

    /// Re-reads and validates the knowledge dir, asks it the questions added by review, then
    /// swaps it in; on any error, or when it breaks more of those than `replay_limit` allows
    /// (unless `force`), the old one keeps serving. The engine takes one reload at a time.
    /// Every other replica reloads too once this one has.
    pub async fn reload(self: &Arc<Self>, source: &str, force: bool) -> ReloadOutcome {
        let outcome = self.reload_here(source, force).await;
        if matches!(outcome, ReloadOutcome::Loaded(..)) {
            self.tell_replicas(force);
        }
        outcome
    }

    /// [`App::reload`] of this replica only (told by another).
    pub async fn reload_here(self: &Arc<Self>, source: &str, force: bool) -> ReloadOutcome {
        let started = Instant::now();
        let app = self.clone();
        let guard = Guard { max_broken: self.replay_limit, force };
        let result = tokio::task::spawn_blocking(move || app.engine.reload_guarded(guard)).await;
        let elapsed = started.elapsed();
        let outcome = match result {
            Ok(Ok((report, replay))) => {
                metrics::set_knowledge(
                    report.generation,
                    report.stats.articles + report.stats.stubs,
                    report.stats.sections,
                );
                ReloadOutcome::Loaded(Box::new(report), replay)
            }
            Ok(Err(ReloadError::Open(OpenError::Knowledge(LoadError::Invalid { errors, .. })))) => {
                ReloadOutcome::Failed { errors: errors.iter().map(ToString::to_string).collect(), elapsed }
            }
            Ok(Err(ReloadError::Breaks { replay, max_broken })) => {
                ReloadOutcome::Refused { replay, limit: max_broken, elapsed }
            }
            Ok(Err(e)) => ReloadOutcome::Failed { errors: vec![ErrorChain(&e).to_string()], elapsed },
            Err(e) => ReloadOutcome::Failed { errors: vec![format!("reload task failed: {e}")], elapsed },
        };
        match &outcome {
            ReloadOutcome::Loaded(r, replay) => {
                tracing::info!(
                    source,
                    generation = r.generation,
                    ms = elapsed.as_millis() as u64,
                    stats = %r.stats,
                    reviewed = replay.cases,
                    reviewed_broken = replay.broken().count(),
                    forced = force,
                    "knowledge reloaded"
                );
                self.notify_answered();
            }
            ReloadOutcome::Refused { replay, .. } => {
                metrics::count_error("reload");
                tracing::warn!(
                    source,
                    reviewed = replay.cases,
                    reviewed_broken = replay.broken().count(),
                    "knowledge reload refused: it breaks questions added by review; keeping the previous one (/reload force swaps it in)"
                )
            }
            ReloadOutcome::Failed { errors, .. } => {
                metrics::count_error("reload");
                tracing::warn!(
                    source,
                    errors = errors.len(),
                    first = errors.first().map(String::as_str).unwrap_or(""),
                    "knowledge reload failed; keeping the previous one"
                )
            }
        }
        outcome
    }
}
