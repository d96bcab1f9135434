//! "Tell me when there's an answer": a user whose question had none may wait for one. The
//! watch is kept in the store per user (capped per user and in total, deleted by /forget); after
//! the knowledge base changes (a reload, a reviewed question added) the front end asks
//! [`Engine::answered_watches`] which watched questions the new knowledge base answers with
//! confidence, and sends each answer once.

use serde::{Deserialize, Serialize};

use articlebot_knowledge::stable_hash;
use articlebot_matching::Intent;

use crate::engine::{Engine, Outcome, User};
use crate::reply::Reply;
use crate::store::{Store, StoreError};
use crate::vocabulary::Input;

/// Questions one user may wait for at once: enough for real use, too few to turn the bot into a
/// store of someone's notes.
pub const MAX_PER_USER: usize = 5;
/// Watches kept in all; each costs a match after every reload.
pub const MAX_TOTAL: usize = 10_000;

/// A user waiting for an answer to a question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watch {
    pub user: i64,
    /// [`question_id`] of the question.
    pub question: u64,
    /// The question as typed (capped as the user state caps it): asked again after a reload.
    pub example: String,
    pub at: u64,
}

/// What the store did with a new watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchAdded {
    Added,
    /// The user waits for this question already.
    Already,
    /// The user's cap or the total cap is reached; nothing was kept.
    Full,
}

/// What "tell me when there's an answer" did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watching {
    Added,
    Already,
    Full,
    /// The button is not under the user's last question, or that question has an answer: nothing
    /// was kept.
    Stale,
}

/// The short name of a normalised question that a button carries instead of its text.
pub fn question_id(normalized: &str) -> u64 {
    stable_hash(normalized)
}

/// A watched question that the knowledge base answers now.
#[derive(Debug)]
pub struct Answered {
    pub user: i64,
    /// The question as the user typed it.
    pub question: String,
    /// The conversation's reply to it (an answer), with the user's state moved to it so that
    /// "more" and the votes follow on.
    pub outcome: Outcome,
}

impl<S: Store> Engine<S> {
    /// Keeps `user` waiting for an answer to their last question, if it is `question` and had no
    /// answer.
    pub fn watch(&self, user: i64, question: u64, now: u64) -> Result<Watching, StoreError> {
        let Some(state) = self.store().load_user(user)? else { return Ok(Watching::Stale) };
        let Some(last) =
            state.asked.filter(|a| a.answer.is_none() && !a.choices && question_id(&a.normalized) == question)
        else {
            return Ok(Watching::Stale);
        };
        let w = Watch { user, question, example: last.example, at: now };
        Ok(match self.store().add_watch(&w)? {
            WatchAdded::Added => Watching::Added,
            WatchAdded::Already => Watching::Already,
            WatchAdded::Full => Watching::Full,
        })
    }

    /// The watched questions the knowledge base in use answers with confidence, each taken out
    /// of the store before it is returned, so it is answered at most once (a watch the store
    /// could not remove is left for the next time rather than risk sending twice).
    pub fn answered_watches(&self, now: u64) -> Result<Vec<Answered>, StoreError> {
        let mut out = Vec::new();
        for w in self.store().watches()? {
            let confident = {
                let lib = self.library();
                lib.matcher().decide(&w.example, 1).intent == Intent::Answer
            };
            if !confident {
                continue;
            }
            match self.store().remove_watch(w.user, w.question) {
                Ok(true) => {}
                // Gone in between (/forget): nobody to tell.
                Ok(false) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "could not take an answered watch out; trying after the next reload");
                    continue;
                }
            }
            let outcome =
                self.handle(&User { id: w.user, language: None }, Input::Question(w.example.clone()), None, now);
            if matches!(outcome.reply, Reply::Answer(_)) {
                out.push(Answered { user: w.user, question: w.example, outcome });
            }
        }
        Ok(out)
    }
}
