//! What the handlers share: the engine, Telegram's limits on both sides, who the admins are, and
//! the knowledge reload that `/reload` and SIGHUP trigger.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use articlebot_engine::{Engine, ErrorChain, LoadError, LoadReport, OpenError, ReviewSession, SledStore, MIN_USERS};

use super::inbox::Seen;
use super::limits::{FloodControl, FloodLimits, RateLimiter, SendLimits};
use super::metrics;
use super::send::Outbox;

/// Result of a knowledge reload.
#[derive(Debug)]
pub enum ReloadOutcome {
    Loaded(LoadReport),
    /// Nothing changed: the previous knowledge base keeps serving.
    Failed {
        errors: Vec<String>,
        elapsed: Duration,
    },
}

pub struct App {
    pub engine: Engine<SledStore>,
    /// Shared with the tasks that send a chat's edits (`send`).
    pub limiter: Arc<RateLimiter>,
    /// Edits waiting per chat, coalesced (`send`).
    pub outbox: Arc<Outbox>,
    /// Update ids taken in by this process (`inbox`).
    pub seen: Mutex<Seen>,
    pub admins: HashSet<i64>,
    pub bot_username: String,
    pub flood: FloodControl,
    /// Media group ids already answered, newest last (a few hundred are plenty: an album's
    /// messages arrive together).
    albums: Mutex<VecDeque<String>>,
    /// `/review` proposes a question once this many distinct users backed it.
    pub review_min_users: u64,
    /// Each admin's review session (what they skipped); admins are a fixed, short list.
    reviews: Mutex<HashMap<i64, ReviewSession>>,
    /// One review decision at a time: a double tap must not decide one proposal twice.
    deciding: Mutex<()>,
}

impl App {
    pub fn new(
        engine: Engine<SledStore>,
        admins: HashSet<i64>,
        bot_username: String,
        flood: FloodLimits,
        send_limits: Option<SendLimits>,
    ) -> Self {
        App {
            engine,
            limiter: Arc::new(RateLimiter::new(send_limits)),
            outbox: Default::default(),
            seen: Default::default(),
            admins,
            bot_username,
            flood: FloodControl::new(flood),
            albums: Default::default(),
            review_min_users: MIN_USERS,
            reviews: Default::default(),
            deciding: Mutex::new(()),
        }
    }

    pub fn is_admin(&self, user: i64) -> bool {
        self.admins.contains(&user)
    }

    /// Runs `f` on `admin`'s review session (made on first use).
    pub fn review_session<T>(&self, admin: i64, f: impl FnOnce(&mut ReviewSession) -> T) -> T {
        let mut all = self.reviews.lock().unwrap_or_else(|p| p.into_inner());
        f(all.entry(admin).or_default())
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

    /// Re-reads and validates the knowledge dir, then swaps it in; on any error the old one
    /// keeps serving. The engine takes one reload at a time.
    pub async fn reload(self: &Arc<Self>, source: &str) -> ReloadOutcome {
        let started = Instant::now();
        let app = self.clone();
        let result = tokio::task::spawn_blocking(move || app.engine.reload()).await;
        let elapsed = started.elapsed();
        let outcome = match result {
            Ok(Ok(report)) => {
                metrics::set_knowledge(
                    report.generation,
                    report.stats.articles + report.stats.stubs,
                    report.stats.sections,
                );
                ReloadOutcome::Loaded(report)
            }
            Ok(Err(OpenError::Knowledge(LoadError::Invalid { errors, .. }))) => {
                ReloadOutcome::Failed { errors: errors.iter().map(ToString::to_string).collect(), elapsed }
            }
            Ok(Err(e)) => ReloadOutcome::Failed { errors: vec![ErrorChain(&e).to_string()], elapsed },
            Err(e) => ReloadOutcome::Failed { errors: vec![format!("reload task failed: {e}")], elapsed },
        };
        match &outcome {
            ReloadOutcome::Loaded(r) => tracing::info!(
                source,
                generation = r.generation,
                ms = elapsed.as_millis() as u64,
                stats = %r.stats,
                "knowledge reloaded"
            ),
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
