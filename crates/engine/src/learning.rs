//! The knowledge base learning from its users. What users do after a question says which
//! article it meant: a did-you-mean pick, a 👍 (for), a 👎 or a quick rephrase (against). These
//! [`Signal`]s add up per (normalised question, article) into [`Evidence`]; the best-supported
//! article of a question becomes a [`Proposal`] to add the question to that article's
//! `questions`. Nothing is written until someone reviews it: [`Engine::accept`] writes the
//! question into the article file and reloads, [`Engine::reject`] keeps the pair from being
//! proposed again, [`Engine::undo`] takes the last decision back.

use std::path::PathBuf;

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
}

impl Evidence {
    /// For minus against.
    pub fn net(&self) -> i64 {
        (self.picks + self.ups) as i64 - (self.downs + self.rephrases) as i64
    }

    pub(crate) fn add(&mut self, kind: SignalKind) {
        match kind {
            SignalKind::Pick => self.picks += 1,
            SignalKind::Up => self.ups += 1,
            SignalKind::Down => self.downs += 1,
            SignalKind::Rephrase => self.rephrases += 1,
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
        let lib = self.library();
        let idx = lib.kb().by_id(article).ok_or_else(|| LearnError::NoArticle(article.to_string()))?;
        let file = lib.kb().articles[idx as usize].source.clone();
        let written = add_question(&file, &p.question)?;
        let record = VerdictRecord {
            seq: 0,
            normalized: p.normalized.clone(),
            question: clean_question(&p.question),
            article: article.to_string(),
            verdict: Verdict::Added,
            at: now,
        };
        if let Err(e) = self.store().add_verdict(&record).and_then(|_| self.store().flush()) {
            // Without the record the question could not be undone: take it back out.
            if written {
                if let Err(undo) = remove_question(&file, &record.question) {
                    tracing::error!(file = %file.display(), error = %undo, "could not take a question back out after the store failed");
                }
            }
            return Err(e.into());
        }
        tracing::info!(article, file = %file.display(), written, "review: question added");
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
        };
        self.store().add_verdict(&record)?;
        self.store().flush()?;
        tracing::info!(article = %p.article, "review: proposal rejected");
        Ok(())
    }

    /// Takes back the last decision: an added question comes out of its file again (and the
    /// knowledge base reloads), a rejected pair can be proposed again. `None` when there is
    /// nothing to undo.
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
        self.store().remove_verdict(last.seq)?;
        self.store().flush()?;
        tracing::info!(article = %last.article, verdict = ?last.verdict, "review: decision undone");
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
