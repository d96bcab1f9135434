//! The conversation engine: a [`Library`] served and swapped atomically on reload, and per-user
//! state machines over a [`Store`]. Front ends turn what the user did
//! into an [`Input`], call [`Engine::handle`] and render the [`Reply`]; they never touch the
//! matcher or the store's layout themselves.
//!
//! The user's new position is stored before `handle` returns (front ends flush before they send).
//! If storing fails (disk full), the reply is still given and [`Outcome::stored`] carries the
//! error for the front end to log: an answer matters more than a remembered position.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use articlebot_matching::{Decision, Intent, Snippet};

use crate::learning::AutoQueue;
use crate::library::{Library, LoadReport, ModelSlot, OpenError};
use crate::reply::{Options, Reply, TopicRef};
use crate::state::UserState;
use crate::store::{Store, StoreError};
use crate::turn::Turn;
use crate::vocabulary::{self, Input};

/// The user as front ends know them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub language: Option<String>,
}

/// The result of handling an input: the reply, and whether the state was stored.
#[derive(Debug)]
pub struct Outcome {
    pub reply: Reply,
    /// Storage failures do not stop the reply; front ends log them.
    pub stored: Result<(), StoreError>,
    /// How the matcher read the question, when the input was one.
    pub decision: Option<Decision>,
    /// The article shown, if any.
    pub article: Option<String>,
    pub elapsed: Duration,
    /// A signal of this input may have brought a question to the site's `auto_accept_users`:
    /// run [`Engine::accept_due`] after the reply is sent, off the request path (it writes an
    /// article file and reloads the knowledge base).
    pub learning_due: bool,
}

impl Outcome {
    pub fn intent(&self) -> Option<Intent> {
        self.decision.as_ref().map(|d| d.intent)
    }

    /// The outcome's name in logs and metrics: the matcher's intent for a question, else what
    /// the reply was.
    pub fn label(&self) -> &'static str {
        self.intent().map_or_else(|| self.reply.kind(), Intent::as_str)
    }
}

const LOCK_SHARDS: usize = 64;

/// The conversation engine: one per process, shared by all users.
pub struct Engine<S: Store> {
    library: ArcSwap<Library>,
    /// One reload at a time, so generations are handed out in order.
    reloading: Mutex<()>,
    models: ModelSlot,
    store: S,
    /// A user's updates are applied one at a time (load, change, save).
    locks: Vec<Mutex<()>>,
    options: Options,
    /// Pairs waiting for automatic acceptance.
    pub(crate) auto: AutoQueue,
}

impl<S: Store> std::fmt::Debug for Engine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("generation", &self.library.load().generation).finish_non_exhaustive()
    }
}

impl<S: Store> Engine<S> {
    /// Loads and indexes `knowledge_dir` and serves it over `store`.
    pub fn open(knowledge_dir: &Path, store: S, options: Options) -> Result<(Self, LoadReport), OpenError> {
        let models = ModelSlot::default();
        let (library, report) = Library::load_as(knowledge_dir, 1, &options, &models)?;
        let mut engine = Self::with_library(library, store, options);
        engine.models = models;
        Ok((engine, report))
    }

    /// Serves a knowledge base loaded already (to check it before the store is opened); reloads
    /// read its dir again.
    pub fn with_library(library: Library, store: S, options: Options) -> Self {
        Engine {
            library: ArcSwap::from_pointee(library),
            reloading: Mutex::new(()),
            models: ModelSlot::default(),
            store,
            locks: (0..LOCK_SHARDS).map(|_| Mutex::new(())).collect(),
            options,
            auto: AutoQueue::default(),
        }
    }

    /// Re-reads the knowledge dir and swaps it in atomically: replies in progress finish on the
    /// old one, and on any error the old one keeps serving. Blocks while loading.
    pub fn reload(&self) -> Result<LoadReport, OpenError> {
        self.reload_if(|_, _| Ok::<(), OpenError>(()))
    }

    /// [`Engine::reload`] that swaps the new knowledge base in only when `accept(old, new)` says
    /// so. Reloads are one at a time, so no other reload slips in between the check and the swap.
    pub(crate) fn reload_if<E: From<OpenError>>(
        &self,
        accept: impl FnOnce(&Library, &Library) -> Result<(), E>,
    ) -> Result<LoadReport, E> {
        let _one = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let current = self.library.load_full();
        let (library, report) = Library::load_as(current.dir(), current.generation + 1, &self.options, &self.models)?;
        accept(&current, &library)?;
        self.library.store(Arc::new(library));
        Ok(report)
    }

    /// The knowledge base in use. Hold the `Arc` for the whole of a reply so that a reload
    /// in between cannot mix two knowledge bases.
    pub fn library(&self) -> Arc<Library> {
        self.library.load_full()
    }

    pub fn store(&self) -> &S {
        &self.store
    }

    pub fn options(&self) -> &Options {
        &self.options
    }

    fn lock(&self, user: i64) -> std::sync::MutexGuard<'_, ()> {
        let shard = (user.unsigned_abs() % LOCK_SHARDS as u64) as usize;
        // A panic while holding the lock poisons only the guard: the state is on disk.
        self.locks[shard].lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Handles one input of one user. `update` is the Telegram update id, when there is one.
    pub fn handle(&self, user: &User, input: Input, update: Option<u64>, now: u64) -> Outcome {
        let started = Instant::now();
        let _guard = self.lock(user.id);
        let lib = self.library();
        let mut stored = Ok(());
        let (mut state, is_new) = match self.store.load_user(user.id) {
            Ok(Some(s)) => (s, false),
            Ok(None) => (UserState::new(now), true),
            // A database server away or busy: nothing is done (no statistics, no learning), so
            // that trying the input again later applies it once.
            Err(e @ (StoreError::Unreachable(_) | StoreError::Busy(_))) => {
                return Outcome {
                    reply: Reply::Unavailable,
                    stored: Err(e),
                    decision: None,
                    article: None,
                    elapsed: started.elapsed(),
                    learning_due: false,
                };
            }
            Err(e) => {
                stored = Err(e);
                (UserState::new(now), false)
            }
        };
        let done = |reply, stored| Outcome {
            reply,
            stored,
            decision: None,
            article: None,
            elapsed: started.elapsed(),
            learning_due: false,
        };
        if let Some(u) = update {
            if u != 0 && state.has_replied(u) {
                return done(Reply::Duplicate, stored);
            }
        }
        if let Input::Forget = input {
            let reply = match self.store.delete_user(user.id) {
                Ok(existed) => Reply::Forgotten { existed: Some(existed) },
                Err(e) => {
                    stored = Err(e);
                    Reply::Forgotten { existed: None }
                }
            };
            return done(reply, stored);
        }
        // The same update again, applied but never answered (the process died in between): a
        // step forward must not be taken twice, so show where the user already is.
        let redelivered = update.is_some_and(|u| u != 0 && u == state.last_update && !state.has_replied(u));
        let input = match input {
            Input::Question(text) => vocabulary::typed(&text).unwrap_or(Input::Question(text)),
            other => other,
        };
        let input = match input {
            Input::More | Input::Back | Input::Pick(_) if redelivered => Input::Current,
            other => other,
        };
        let mut turn = Turn {
            lib: &lib,
            options: &self.options,
            state: &mut state,
            store: &self.store,
            user: user.id,
            now,
            decision: None,
            replay: redelivered,
            due: Vec::new(),
        };
        let reply = turn.apply(input);
        let decision = turn.decision.take();
        let due = std::mem::take(&mut turn.due);
        // Queued only: the write and reload happen in `accept_due`, not in this user's reply.
        let mut learning_due = false;
        for (q, a) in &due {
            learning_due |= self.auto.push(q, a);
        }
        if !redelivered {
            state.counts.messages += 1;
        }
        state.last_seen = now;
        if state.first_seen == 0 {
            state.first_seen = now;
        }
        if user.language.is_some() {
            state.language.clone_from(&user.language);
        }
        if let Some(u) = update {
            state.last_update = u;
        }
        let article = match &reply {
            Reply::Answer(a) => Some(a.article.id.clone()),
            _ => None,
        };
        if stored.is_ok() {
            stored = self.store.save_user(user.id, &state, is_new);
        }
        Outcome { reply, stored, decision, article, elapsed: started.elapsed(), learning_due }
    }

    /// Notes that the reply to `update` was sent, so a redelivery is not answered twice.
    pub fn replied(&self, user: i64, update: u64) -> Result<(), StoreError> {
        let _guard = self.lock(user);
        let Some(mut state) = self.store.load_user(user)? else { return Ok(()) };
        if !state.has_replied(update) {
            state.mark_replied(update);
            self.store.save_user(user, &state, false)?;
        }
        Ok(())
    }

    /// Articles matching a query, for inline mode: no state, no statistics.
    pub fn search(&self, query: &str, max: usize) -> Vec<(TopicRef, Snippet, Option<String>)> {
        let lib = self.library();
        let m = lib.matcher();
        let d = m.decide(query, max);
        if matches!(d.intent, Intent::Unknown | Intent::Smalltalk) {
            return Vec::new();
        }
        d.hits
            .iter()
            .map(|h| {
                let a = m.article(h);
                (
                    TopicRef::of(h.article, a),
                    m.snippet(h, &d.terms, self.options.snippet_chars),
                    m.kb().url_of(h.article),
                )
            })
            .collect()
    }
}
