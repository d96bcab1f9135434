//! The threshold rules that turn the best hits into what the bot does (answer, did-you-mean,
//! small talk, don't know), and which of them decided: `/why` and `ask --explain` say it, since
//! "why did it not answer?" is the first thing a site owner asks.

use std::fmt::Write;

use crate::rank::{Candidate, QueryStats};
use crate::{Intent, SHORT_QUERY_TERMS};

/// The thresholds one decision was taken with: the site's lexical ones, or the fused ones with
/// a sentence model (which also let a paraphrase in with few shared words).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub answer: f32,
    pub suggest: f32,
    pub margin: f32,
    pub certain: f32,
    pub evidence: f32,
    /// The similarity at which a question is in scope whatever its words; `None` without a model.
    pub paraphrase: Option<f32>,
}

/// The rule that decided, in the order they are tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// No article shares a word (or, with a model, a meaning) with the question.
    NoCandidate,
    /// It reads as conversation and the best hit is below the answer threshold.
    Smalltalk,
    /// The best hit is below the suggest threshold.
    BelowSuggest,
    /// Too little of the question is found in the best article (and it is no paraphrase).
    OutOfScope,
    /// Too little evidence to answer, but a question of one or two words, all in the knowledge
    /// base, names a topic the site has: choices.
    NamesATopic,
    /// Between the suggest and answer thresholds: choices.
    BelowAnswer,
    /// The runner-up is too close: choices.
    CloseRunnerUp,
    /// Answered.
    Confident,
}

impl Rule {
    pub fn intent(self) -> Intent {
        match self {
            Rule::NoCandidate | Rule::BelowSuggest | Rule::OutOfScope => Intent::Unknown,
            Rule::Smalltalk => Intent::Smalltalk,
            Rule::NamesATopic | Rule::BelowAnswer | Rule::CloseRunnerUp => Intent::Suggest,
            Rule::Confident => Intent::Answer,
        }
    }
}

/// Which rule decides for the best candidate and the runner-up's relevance.
pub(crate) fn rule(
    best: Option<&Candidate>,
    second: f32,
    smalltalk: bool,
    query: &QueryStats,
    content_terms: usize,
    l: &Limits,
) -> Rule {
    let Some(b) = best else { return if smalltalk { Rule::Smalltalk } else { Rule::NoCandidate } };
    if smalltalk && b.score < l.answer {
        return Rule::Smalltalk;
    }
    if b.score < l.suggest {
        return Rule::BelowSuggest;
    }
    let paraphrase = l.paraphrase.is_some_and(|p| b.semantic >= p);
    if b.evidence < l.evidence && !paraphrase {
        let names_a_topic = query.terms > 0 && query.terms <= SHORT_QUERY_TERMS && query.known == query.terms;
        return if names_a_topic { Rule::NamesATopic } else { Rule::OutOfScope };
    }
    let tie = b.score - second < l.margin;
    if b.score < l.answer {
        return Rule::BelowAnswer;
    }
    if tie && (b.score < l.certain || content_terms <= SHORT_QUERY_TERMS) {
        return Rule::CloseRunnerUp;
    }
    Rule::Confident
}

/// The rule in a sentence with its numbers: "answer: relevance 0.62 ≥ 0.40 ...".
pub(crate) fn describe(rule: Rule, best: Option<&Candidate>, second: f32, l: &Limits) -> String {
    let (score, evidence, semantic) = best.map_or((0.0, 0.0, None), |b| {
        (b.score, b.evidence, (l.paraphrase.is_some() && b.semantic > -1.5).then_some(b.semantic))
    });
    let mut s = String::from(rule.intent().as_str());
    s.push_str(": ");
    let _ = match rule {
        Rule::NoCandidate => write!(s, "no article shares a word or a meaning with the question"),
        Rule::Smalltalk => write!(s, "it reads as conversation and the best hit ({score:.2}) is below answer {:.2}", l.answer),
        Rule::BelowSuggest => write!(s, "the best relevance {score:.2} is below suggest {:.2}", l.suggest),
        Rule::OutOfScope => {
            let _ = write!(s, "too little of the question is in the article (evidence {evidence:.2} < {:.2}", l.evidence);
            match (semantic, l.paraphrase) {
                (Some(sim), Some(p)) => write!(s, ", similarity {sim:.2} < paraphrase {p:.2})"),
                _ => write!(s, ")"),
            }
        }
        Rule::NamesATopic => write!(
            s,
            "evidence {evidence:.2} < {:.2} is too little to answer, but the question's one or two words are all in the knowledge base",
            l.evidence
        ),
        Rule::BelowAnswer => {
            write!(s, "relevance {score:.2} is at least suggest {:.2} but below answer {:.2}", l.suggest, l.answer)
        }
        Rule::CloseRunnerUp => write!(
            s,
            "the runner-up ({second:.2}) is within margin {:.2} of the best ({score:.2}), which is below certain {:.2} or a question of at most {SHORT_QUERY_TERMS} words",
            l.margin, l.certain
        ),
        Rule::Confident => write!(s, "relevance {score:.2} ≥ answer {:.2}, {:.2} ahead of the runner-up", l.answer, score - second),
    };
    s
}
