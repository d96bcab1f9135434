//! Every question a reviewer added to an article is a regression case: a new knowledge base is
//! asked them all before it is swapped in, and one that no longer answers more than a share of
//! them with their article is refused (unless forced), since an edit elsewhere can take a
//! question users taught away from its article without anyone noticing.

use std::fmt;

use articlebot_matching::Intent;

use crate::engine::Engine;
use crate::learning::VerdictRecord;
use crate::library::{Library, LoadReport, OpenError};
use crate::store::{Store, StoreError};

/// The share of regression cases a reload may break before it is refused.
pub const DEFAULT_MAX_BROKEN: f32 = 0.05;

/// What a knowledge base does with a question now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Now {
    /// Answers with this article (another than the reviewed one).
    Answers(String),
    /// Offers did-you-mean choices.
    Suggests,
    /// Says it does not know (or takes it for small talk).
    Unknown,
    /// The reviewed article is not in the knowledge base any more.
    Gone,
}

impl fmt::Display for Now {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Now::Answers(a) => write!(f, "now answered with {a}"),
            Now::Suggests => f.write_str("now gets did-you-mean choices"),
            Now::Unknown => f.write_str("now not answered"),
            Now::Gone => f.write_str("its article is gone"),
        }
    }
}

/// A reviewed question that no longer gets its article.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regression {
    pub question: String,
    pub article: String,
    pub now: Now,
    /// Whether the knowledge base before answered it with its article (so this change broke it).
    pub was_answered: bool,
}

impl fmt::Display for Regression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\" → {}: {}", self.question, self.article, self.now)?;
        if !self.was_answered {
            f.write_str(" (already before)")?;
        }
        Ok(())
    }
}

/// The reviewed questions asked of a knowledge base.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplayReport {
    pub cases: usize,
    /// Whether the differences were compared with the knowledge base before (a reload) or not
    /// (`check --replay`, where every difference counts as broken).
    pub against_previous: bool,
    /// Those not answered with their article, in the order they were added.
    pub differ: Vec<Regression>,
}

impl ReplayReport {
    /// Cases the new knowledge base broke (answered before, not now).
    pub fn broken(&self) -> impl Iterator<Item = &Regression> {
        self.differ.iter().filter(|r| r.was_answered)
    }

    pub fn broken_share(&self) -> f32 {
        if self.cases == 0 {
            0.0
        } else {
            self.broken().count() as f32 / self.cases as f32
        }
    }

    /// "12 reviewed questions: all answered as reviewed" or how many differ.
    pub fn summary(&self) -> String {
        let broken = self.broken().count();
        match (self.cases, self.differ.len()) {
            (0, _) => "no reviewed questions to replay".into(),
            (n, 0) => format!("{n} reviewed question{}: all answered as reviewed", if n == 1 { "" } else { "s" }),
            (n, d) if self.against_previous => format!(
                "{n} reviewed question{}: {d} not answered as reviewed, {broken} of them broken by this change ({:.1} %)",
                if n == 1 { "" } else { "s" },
                100.0 * self.broken_share()
            ),
            (n, d) => format!(
                "{n} reviewed question{}: {d} not answered as reviewed ({:.1} %)",
                if n == 1 { "" } else { "s" },
                100.0 * self.broken_share()
            ),
        }
    }
}

/// What `lib` does with `question`, when it is not answering it with `article`.
fn difference(lib: &Library, question: &str, article: &str) -> Option<Now> {
    if lib.kb().by_id(article).is_none() {
        return Some(Now::Gone);
    }
    let m = lib.matcher();
    let d = m.decide(question, 1);
    let top = d.hits.first().map(|h| m.article(h).id.as_str());
    match d.intent {
        Intent::Answer if top == Some(article) => None,
        Intent::Answer => Some(Now::Answers(top.unwrap_or("?").to_string())),
        Intent::Suggest => Some(Now::Suggests),
        Intent::Smalltalk | Intent::Unknown => Some(Now::Unknown),
    }
}

/// Asks `new` every reviewed question; `old`, when given, tells which of the differences are new.
pub fn replay(cases: &[VerdictRecord], new: &Library, old: Option<&Library>) -> ReplayReport {
    let differ = cases
        .iter()
        .filter_map(|c| {
            let now = difference(new, &c.question, &c.article)?;
            Some(Regression {
                question: c.question.clone(),
                article: c.article.clone(),
                now,
                was_answered: old.is_none_or(|old| difference(old, &c.question, &c.article).is_none()),
            })
        })
        .collect();
    ReplayReport { cases: cases.len(), against_previous: old.is_some(), differ }
}

/// How a reload treats the reviewed questions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Guard {
    /// Refuse when more than this share of them break.
    pub max_broken: f32,
    /// Swap in whatever breaks (`/reload force`).
    pub force: bool,
}

impl Default for Guard {
    fn default() -> Self {
        Guard { max_broken: DEFAULT_MAX_BROKEN, force: false }
    }
}

/// Why a guarded reload did not swap the knowledge base in.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("the reviewed questions could not be read")]
    Store(#[from] StoreError),
    /// The new knowledge base breaks too many reviewed questions; the old one keeps serving.
    #[error("{}; more than {:.0} % broken, so the previous knowledge base stays (a forced reload swaps it in anyway)", .replay.summary(), .max_broken * 100.0)]
    Breaks { replay: ReplayReport, max_broken: f32 },
}

impl<S: Store> Engine<S> {
    /// [`Engine::reload`], but the new knowledge base is first asked every reviewed question and
    /// refused when it breaks more than `guard.max_broken` of them.
    pub fn reload_guarded(&self, guard: Guard) -> Result<(LoadReport, ReplayReport), ReloadError> {
        let cases = self.learned()?;
        let mut replayed = ReplayReport::default();
        let report = self.reload_if(|old, new| {
            replayed = replay(&cases, new, Some(old));
            if !guard.force && replayed.broken_share() > guard.max_broken {
                return Err(ReloadError::Breaks { replay: replayed.clone(), max_broken: guard.max_broken });
            }
            Ok(())
        })?;
        Ok((report, replayed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(cases: usize, broken: usize, already: usize) -> ReplayReport {
        let case =
            |was_answered| Regression { question: "q".into(), article: "a".into(), now: Now::Suggests, was_answered };
        let differ = (0..broken).map(|_| case(true)).chain((0..already).map(|_| case(false))).collect();
        ReplayReport { cases, against_previous: true, differ }
    }

    #[test]
    fn only_what_this_change_broke_counts_against_the_limit() {
        // One in twenty is 5 %: allowed by the default limit; two are not.
        assert!(report(20, 1, 0).broken_share() <= DEFAULT_MAX_BROKEN);
        assert!(report(20, 2, 0).broken_share() > DEFAULT_MAX_BROKEN);
        // Questions that already missed their article before do not block a reload.
        assert_eq!(report(20, 0, 5).broken_share(), 0.0);
        assert_eq!(report(0, 0, 0).broken_share(), 0.0);
        let s = report(20, 2, 1).summary();
        assert_eq!(s, "20 reviewed questions: 3 not answered as reviewed, 2 of them broken by this change (10.0 %)");
        assert_eq!(report(1, 0, 0).summary(), "1 reviewed question: all answered as reviewed");
        assert!(report(20, 2, 1).differ[2].to_string().ends_with("now gets did-you-mean choices (already before)"));
    }
}
