//! The knowledge base learning from its users. What users do after a question says which
//! article it meant: a did-you-mean pick, a 👍 (for), a 👎 or a quick rephrase (against). These
//! [`Signal`]s add up per (normalised question, article) into [`Evidence`]; the best-supported
//! article of a question becomes a [`Proposal`] to add the question to that article's
//! `questions`. Nothing is written until someone reviews it: [`Engine::accept`] writes the
//! question into the article file and reloads, [`Engine::reject`] keeps the pair from being
//! proposed again, [`Engine::undo`] takes the last decision back.
//!
//! A site may let users decide alone (`[learning] auto_accept_users = N` in site.toml): a
//! signal that may bring a pair to N users queues it, [`Outcome::learning_due`] tells the front
//! end, and [`Engine::accept_due`], run off the request path, accepts what qualifies through the
//! same path as a review, recorded as automatic.
//!
//! [`Outcome::learning_due`]: crate::Outcome::learning_due

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use articlebot_knowledge::{add_question, clean_question, remove_question, stable_hash, EditError};
use articlebot_matching::Intent;

use crate::engine::Engine;
use crate::library::{Library, OpenError};
use crate::store::{Store, StoreError};

/// Fewest distinct users behind a proposal unless the reviewer asks for more (`review
/// --min-users`): one user's pick is worth a look, and a person decides anyway. The console and
/// Telegram's `/review` share it.
pub const MIN_USERS: u64 = 1;

/// A new question this soon after an answer (and no 👍 for it) is taken as a rephrase: the
/// answer was not what the user wanted.
pub const REPHRASE_SECS: u64 = 60;

/// What a user did that tells about a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalKind {
    /// Picked this article among the did-you-mean choices.
    Pick,
    /// 👍 on the answer to the question.
    Up,
    /// 👎 on the answer to the question.
    Down,
    /// Asked again, differently, right after this answer.
    Rephrase,
    /// "None of these" under the did-you-mean: the question has no answer (no article).
    NoneOfThese,
    /// Rephrased right after a wrong answer, and the rephrasing's article was then confirmed (a
    /// pick or 👍): the first question meant that article too. Without it, a rephrase only ever
    /// counts against the wrong answer, and the question that was answered wrong, the one the
    /// knowledge base most needs to learn, never gains an article.
    Resolved,
}

impl SignalKind {
    /// Its bit in a user's record of what they signalled for one pair.
    pub(crate) fn bit(self) -> u8 {
        match self {
            SignalKind::Pick => 1,
            SignalKind::Up => 2,
            SignalKind::Down => 4,
            SignalKind::Rephrase => 8,
            SignalKind::NoneOfThese => 16,
            SignalKind::Resolved => 32,
        }
    }
}

/// One signal as the store takes it. `example` is the question as the user typed it (kept, like
/// unanswered questions, so a reviewer reads a real question and not its normalised form).
#[derive(Debug, Clone, Copy)]
pub struct Signal<'a> {
    pub user: i64,
    pub normalized: &'a str,
    pub example: &'a str,
    /// `None` for [`SignalKind::NoneOfThese`].
    pub article: Option<&'a str>,
    pub kind: SignalKind,
    pub at: u64,
}

/// What users said about one (question, article) pair; each count is of distinct users.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub users: u64,
    pub picks: u64,
    pub ups: u64,
    pub downs: u64,
    pub rephrases: u64,
    pub last: u64,
    #[serde(default)]
    pub example: String,
    /// Users who confirmed the article after rephrasing this question ([`SignalKind::Resolved`]).
    #[serde(default)]
    pub resolved: u64,
}

impl Evidence {
    /// For minus against.
    pub fn net(&self) -> i64 {
        (self.picks + self.ups + self.resolved) as i64 - (self.downs + self.rephrases) as i64
    }

    pub(crate) fn add(&mut self, kind: SignalKind) {
        match kind {
            SignalKind::Pick => self.picks += 1,
            SignalKind::Up => self.ups += 1,
            SignalKind::Down => self.downs += 1,
            SignalKind::Rephrase => self.rephrases += 1,
            SignalKind::Resolved => self.resolved += 1,
            SignalKind::NoneOfThese => {}
        }
    }

    /// Takes back a vote the same user replaced.
    pub(crate) fn remove(&mut self, kind: SignalKind) {
        let count = match kind {
            SignalKind::Up => &mut self.ups,
            SignalKind::Down => &mut self.downs,
            _ => return,
        };
        *count = count.saturating_sub(1);
    }
}

/// The evidence for one pair.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairEvidence {
    pub normalized: String,
    pub article: String,
    pub evidence: Evidence,
}

/// A reviewer's decision on a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// The question was written into the article's `questions`.
    Added,
    /// Never proposed again.
    Rejected,
    /// An unanswered question an admin marked "write an article" (`article` is empty): kept as
    /// the to-do list, and out of the unanswered list.
    ToWrite,
}

/// A decision as stored; `seq` orders them (undo takes the highest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerdictRecord {
    pub seq: u64,
    pub normalized: String,
    /// The question as written into the file (or as it would have been).
    pub question: String,
    pub article: String,
    pub verdict: Verdict,
    pub at: u64,
    /// Made by automatic acceptance (`auto_accept_users`), not by a reviewer. Older records,
    /// written before there was automatic acceptance, read as reviewed.
    #[serde(default)]
    pub automatic: bool,
}

impl VerdictRecord {
    /// "`question` was added to `article`" (its `seq` is given when it is kept).
    pub(crate) fn added(normalized: &str, question: &str, article: &str, at: u64, automatic: bool) -> Self {
        VerdictRecord {
            seq: 0,
            normalized: normalized.to_string(),
            question: clean_question(question),
            article: article.to_string(),
            verdict: Verdict::Added,
            at,
            automatic,
        }
    }
}

/// "Add `question` as an alternate question of `article`", with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub normalized: String,
    pub question: String,
    pub article: String,
    pub evidence: Evidence,
    /// Other articles the question might mean (other evidence, then the matcher's top hits),
    /// best first: the reviewer's "another article".
    pub alternatives: Vec<String>,
}

impl Proposal {
    /// A short, stable name of the (question, article) pair, for places that must not carry the
    /// question itself (Telegram's 64-byte button data): the same pair always has the same id,
    /// and a tap naming an id no current proposal has is stale or forged.
    pub fn id(&self) -> u64 {
        stable_hash(&format!("{}\u{0}{}", self.normalized, self.article))
    }
}

/// An article as a review card names it: its title, and the section the question matches best
/// (`None` when no section of it matches, or the article has one untitled section).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardArticle {
    pub id: String,
    /// The article's short key (for buttons).
    pub key: String,
    pub title: String,
    pub section: Option<String>,
}

/// A proposal as a reviewer reads it, in any front end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub question: String,
    pub article: CardArticle,
    pub evidence: Evidence,
    /// The reviewer's "another article" choices, best first.
    pub alternatives: Vec<CardArticle>,
}

impl Evidence {
    /// One line for a review card: "2 user(s): 2 pick(s), 1 👍, 0 👎, 0 rephrase(s)".
    pub fn summary(&self) -> String {
        format!(
            "{} user(s): {} pick(s), {} 👍, {} 👎, {} rephrase(s)",
            self.users, self.picks, self.ups, self.downs, self.rephrases
        )
    }
}

/// Skipped proposals are remembered up to this many per session (oldest forgotten first): a
/// forgotten skip only shows its card again.
const MAX_SKIPPED: usize = 4096;

/// One reviewer's session: the proposals they skipped, shown again in a new session.
#[derive(Debug, Clone, Default)]
pub struct ReviewSession {
    skipped: Vec<u64>,
}

impl ReviewSession {
    pub fn skip(&mut self, p: &Proposal) {
        let id = p.id();
        if self.skipped.contains(&id) {
            return;
        }
        if self.skipped.len() >= MAX_SKIPPED {
            self.skipped.remove(0);
        }
        self.skipped.push(id);
    }

    pub fn is_skipped(&self, p: &Proposal) -> bool {
        self.skipped.contains(&p.id())
    }
}

/// What [`Engine::accept`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub file: PathBuf,
    /// False when the file already had the question (nothing written, the decision is kept).
    pub written: bool,
    /// Whether the reloaded knowledge base answers the question with the article now.
    pub answers_now: bool,
}

/// Why a review step did not happen. In every case the knowledge dir and the store are as they
/// were, except [`LearnError::Reload`], which says what was written.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Edit(#[from] EditError),
    #[error("no article `{0}` in the knowledge base (removed since?); nothing was changed")]
    NoArticle(String),
    #[error("{file} was changed, but the knowledge base did not reload (the one loaded before serves on); fix the knowledge dir and /reload", file = .file.display())]
    Reload {
        file: PathBuf,
        #[source]
        source: OpenError,
    },
}

/// Proposals from the evidence, best first: for each question not decided yet, the article most
/// users support, if support outweighs doubt, at least `min_users` users back it and the
/// knowledge base does not already answer the question with it.
pub fn proposals(
    evidence: &[PairEvidence],
    verdicts: &[VerdictRecord],
    lib: &Library,
    min_users: u64,
) -> Vec<Proposal> {
    let kb = lib.kb();
    let decided = |q: &str, a: &str| {
        verdicts.iter().any(|v| v.normalized == q && (v.verdict == Verdict::Added || v.article == a))
    };
    let mut best: Vec<&PairEvidence> = Vec::new();
    for e in evidence {
        if e.article.is_empty() || kb.by_id(&e.article).is_none() || decided(&e.normalized, &e.article) {
            continue;
        }
        if e.evidence.net() <= 0 || e.evidence.users < min_users.max(1) {
            continue;
        }
        match best.iter_mut().find(|b| b.normalized == e.normalized) {
            Some(b) if rank(&e.evidence) > rank(&b.evidence) => *b = e,
            Some(_) => {}
            None => best.push(e),
        }
    }
    best.sort_by(|a, b| rank(&b.evidence).cmp(&rank(&a.evidence)).then(a.normalized.cmp(&b.normalized)));
    let m = lib.matcher();
    best.into_iter()
        .filter_map(|e| {
            let d = m.decide(&e.evidence.example, 6);
            let answered = d.intent == Intent::Answer && d.hits.first().is_some_and(|h| m.article(h).id == e.article);
            if answered {
                return None;
            }
            let mut alternatives: Vec<String> = Vec::new();
            let others = evidence
                .iter()
                .filter(|o| o.normalized == e.normalized && !o.article.is_empty() && o.evidence.net() > 0)
                .map(|o| o.article.clone());
            for id in others.chain(d.hits.iter().map(|h| m.article(h).id.clone())) {
                if id != e.article && !alternatives.contains(&id) && kb.by_id(&id).is_some() {
                    alternatives.push(id);
                }
            }
            alternatives.truncate(4);
            Some(Proposal {
                normalized: e.normalized.clone(),
                question: clean_question(&e.evidence.example),
                article: e.article.clone(),
                evidence: e.evidence.clone(),
                alternatives,
            })
        })
        .collect()
}

fn rank(e: &Evidence) -> (u64, i64, u64) {
    (e.users, e.net(), e.last)
}

impl<S: Store> Engine<S> {
    /// What to review now ([`proposals`] over the store's evidence).
    pub fn proposals(&self, min_users: u64) -> Result<Vec<Proposal>, StoreError> {
        let evidence = self.store().evidence()?;
        let verdicts = self.store().verdicts()?;
        Ok(proposals(&evidence, &verdicts, &self.library(), min_users))
    }

    /// The proposals `session` has not skipped, best first.
    pub fn to_review(&self, session: &ReviewSession, min_users: u64) -> Result<Vec<Proposal>, StoreError> {
        let mut all = self.proposals(min_users)?;
        all.retain(|p| !session.is_skipped(p));
        Ok(all)
    }

    /// The proposal named `id` ([`Proposal::id`]) if it is still undecided, skipped or not (its
    /// card may still be on screen); `None` for a decided, vanished or made-up one.
    pub fn proposal(&self, id: u64, min_users: u64) -> Result<Option<Proposal>, StoreError> {
        Ok(self.proposals(min_users)?.into_iter().find(|p| p.id() == id))
    }

    /// The proposal with titles and sections resolved in the knowledge base in use.
    pub fn card(&self, p: &Proposal) -> Card {
        let lib = self.library();
        let m = lib.matcher();
        let d = m.decide(&p.question, 12);
        let named = |id: &str| {
            let idx = lib.kb().by_id(id);
            let a = idx.and_then(|i| lib.kb().article(i));
            let section = idx.and_then(|i| {
                let hit = d.hits.iter().find(|h| h.article == i)?;
                a?.sections.get(hit.section?)?.heading.clone()
            });
            CardArticle {
                id: id.to_string(),
                key: a.map_or_else(String::new, |a| a.key.clone()),
                title: a.map_or_else(|| id.to_string(), |a| a.title.clone()),
                section,
            }
        };
        Card {
            question: p.question.clone(),
            article: named(&p.article),
            evidence: p.evidence.clone(),
            alternatives: p.alternatives.iter().map(|a| named(a)).collect(),
        }
    }

    /// Writes the proposal's question into `article`'s file (the proposed one, or another the
    /// reviewer chose), records the decision and reloads the knowledge base.
    pub fn accept(&self, p: &Proposal, article: &str, now: u64) -> Result<Accepted, LearnError> {
        self.accept_as(p, article, now, false)
    }

    /// The file `article` was loaded from.
    pub(crate) fn source_of(&self, article: &str) -> Result<std::path::PathBuf, LearnError> {
        let lib = self.library();
        let idx = lib.kb().by_id(article).ok_or_else(|| LearnError::NoArticle(article.to_string()))?;
        Ok(lib.kb().articles[idx as usize].source.clone())
    }

    fn accept_as(&self, p: &Proposal, article: &str, now: u64, automatic: bool) -> Result<Accepted, LearnError> {
        let file = self.source_of(article)?;
        let written = add_question(&file, &p.question)?;
        let record = VerdictRecord::added(&p.normalized, &p.question, article, now, automatic);
        if let Err(e) = self.store().add_verdict(&record).and_then(|_| self.store().flush()) {
            // Without the record the question could not be undone: take it back out.
            if written {
                if let Err(undo) = remove_question(&file, &record.question) {
                    tracing::error!(file = %file.display(), error = %undo, "could not take a question back out after the store failed");
                }
            }
            return Err(e.into());
        }
        if !automatic {
            tracing::info!(article, file = %file.display(), written, "review: question added");
        }
        self.reload().map_err(|source| LearnError::Reload { file: file.clone(), source })?;
        Ok(Accepted { file, written, answers_now: self.answers(&p.question, article) })
    }

    /// Keeps the pair from being proposed again.
    pub fn reject(&self, p: &Proposal, now: u64) -> Result<(), LearnError> {
        let record = VerdictRecord {
            seq: 0,
            normalized: p.normalized.clone(),
            question: clean_question(&p.question),
            article: p.article.clone(),
            verdict: Verdict::Rejected,
            at: now,
            automatic: false,
        };
        self.store().add_verdict(&record)?;
        self.store().flush()?;
        tracing::info!(article = %p.article, "review: proposal rejected");
        Ok(())
    }

    /// Takes back the last decision: an added question comes out of its file again (and the
    /// knowledge base reloads), a rejected pair can be proposed again. `None` when there is
    /// nothing to undo.
    ///
    /// An automatic acceptance undone leaves the pair rejected: the owner took it back, and the
    /// next user's 👍 must not add it again (undo once more to have it proposed for review).
    pub fn undo(&self) -> Result<Option<VerdictRecord>, LearnError> {
        let Some(last) = self.store().verdicts()?.into_iter().max_by_key(|v| v.seq) else { return Ok(None) };
        let mut file = None;
        if last.verdict == Verdict::Added {
            let lib = self.library();
            let idx = lib.kb().by_id(&last.article).ok_or_else(|| LearnError::NoArticle(last.article.clone()))?;
            let path = lib.kb().articles[idx as usize].source.clone();
            remove_question(&path, &last.question)?;
            file = Some(path);
        }
        if last.automatic && last.verdict == Verdict::Added {
            let rejected = VerdictRecord { seq: 0, verdict: Verdict::Rejected, automatic: false, ..last.clone() };
            self.store().add_verdict(&rejected)?;
        }
        self.store().remove_verdict(last.seq)?;
        self.store().flush()?;
        tracing::info!(article = %last.article, verdict = ?last.verdict, automatic = last.automatic, "review: decision undone");
        if let Some(file) = file {
            self.reload().map_err(|source| LearnError::Reload { file, source })?;
        }
        Ok(Some(last))
    }

    /// Every question added so far, oldest first.
    pub fn learned(&self) -> Result<Vec<VerdictRecord>, StoreError> {
        let mut v: Vec<VerdictRecord> =
            self.store().verdicts()?.into_iter().filter(|v| v.verdict == Verdict::Added).collect();
        v.sort_by_key(|v| v.seq);
        Ok(v)
    }

    /// Whether the knowledge base in use answers `question` with `article` outright.
    pub fn answers(&self, question: &str, article: &str) -> bool {
        let lib = self.library();
        let m = lib.matcher();
        let d = m.decide(question, 1);
        d.intent == Intent::Answer && d.hits.first().is_some_and(|h| m.article(h).id == article)
    }
}

/// Pairs waiting for automatic acceptance, at most this many (more wait for the next positive
/// signal, or for review): the queue is drained off the request path, and a burst of 👍 must
/// not grow it without end.
const MAX_DUE: usize = 256;

/// Pairs that a signal may have brought to `auto_accept_users` users, waiting for
/// [`Engine::accept_due`]; and those whose acceptance failed, which are not tried again by this
/// process (a read-only knowledge dir would otherwise fail on every 👍): they wait for review.
#[derive(Debug, Default)]
pub(crate) struct AutoQueue {
    state: Mutex<DueState>,
    /// One drain at a time: two at once could both accept the same pair before either recorded it.
    draining: Mutex<()>,
}

#[derive(Debug, Default)]
struct DueState {
    due: Vec<(String, String)>,
    failed: HashSet<(String, String)>,
}

impl AutoQueue {
    /// Queues a pair; whether it is waiting now.
    pub(crate) fn push(&self, normalized: &str, article: &str) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let pair = (normalized.to_string(), article.to_string());
        if s.failed.contains(&pair) {
            return false;
        }
        if s.due.contains(&pair) {
            return true;
        }
        if s.due.len() >= MAX_DUE {
            return false;
        }
        s.due.push(pair);
        true
    }

    fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut self.state.lock().unwrap_or_else(|p| p.into_inner()).due)
    }

    fn failed(&self, pair: (String, String)) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).failed.insert(pair);
    }
}

/// One automatic acceptance tried by [`Engine::accept_due`].
#[derive(Debug)]
pub struct AutoAccepted {
    pub proposal: Proposal,
    pub result: Result<Accepted, LearnError>,
}

impl<S: Store> Engine<S> {
    /// Accepts the queued pairs that qualify now: `auto_accept_users` (of the knowledge base in
    /// use) distinct users back the pair, support outweighs doubt, no verdict was given on it and
    /// the knowledge base does not answer the question with the article already. Each goes the
    /// way of a reviewed ✅ (file write, reload) and is recorded as automatic. Blocks for the
    /// writes and reloads: front ends run it off the request path when an [`Outcome`] says
    /// [`learning_due`](crate::Outcome::learning_due). A failure is logged and returned, and the
    /// pair is not tried again by this process; a store failure leaves the pairs to review.
    ///
    /// [`Outcome`]: crate::Outcome
    pub fn accept_due(&self, now: u64) -> Vec<AutoAccepted> {
        let _one = self.auto.draining.lock().unwrap_or_else(|p| p.into_inner());
        let due = self.auto.take();
        let Some(min_users) = self.library().kb().site.learning.auto_accept_users else { return Vec::new() };
        if due.is_empty() {
            return Vec::new();
        }
        let questions: HashSet<&str> = due.iter().map(|(q, _)| q.as_str()).collect();
        let found = self.store().evidence().and_then(|mut ev| {
            // Only the questions signalled: a proposal is a matcher run, and the store may hold
            // thousands of pairs nobody touched since.
            ev.retain(|e| questions.contains(e.normalized.as_str()));
            Ok((ev, self.store().verdicts()?))
        });
        let (evidence, verdicts) = match found {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %crate::ErrorChain(&e), pairs = due.len(), "learning: could not read the evidence for automatic acceptance; the pairs wait for review");
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for p in proposals(&evidence, &verdicts, &self.library(), min_users.max(crate::AUTO_ACCEPT_MIN_USERS)) {
            let pair = (p.normalized.clone(), p.article.clone());
            if !due.contains(&pair) {
                continue;
            }
            let ev = &p.evidence;
            let result = self.accept_as(&p, &p.article, now, true);
            match &result {
                Ok(done) => {
                    tracing::info!(
                        article = p.article.as_str(),
                        users = ev.users,
                        picks = ev.picks,
                        ups = ev.ups,
                        downs = ev.downs,
                        rephrases = ev.rephrases,
                        resolved = ev.resolved,
                        written = done.written,
                        answers_now = done.answers_now,
                        "learning: question added automatically (undo with `articlebot review`)"
                    );
                    tracing::debug!(
                        article = p.article.as_str(),
                        question = p.question.as_str(),
                        "learning: the question added"
                    );
                }
                Err(e) => {
                    tracing::error!(
                        article = p.article.as_str(),
                        users = ev.users,
                        error = %crate::ErrorChain(e),
                        "learning: automatic acceptance failed; not tried again until restart, the proposal waits for `articlebot review`"
                    );
                    self.auto.failed(pair);
                }
            }
            out.push(AutoAccepted { proposal: p, result });
        }
        out
    }
}
