//! What the conversation answers: a [`Reply`] per input, naming articles by [`TopicRef`], and
//! the [`Options`] that size replies. Front ends render these; the wording they share is in
//! `text`.

use articlebot_knowledge::{Article, ArticleIdx};
use articlebot_matching::{Smalltalk, Snippet};

/// How replies are made.
#[derive(Debug, Clone)]
pub struct Options {
    /// Longest snippet shown, in characters.
    pub snippet_chars: usize,
    /// Related topics offered under an answer.
    pub related_max: usize,
    /// Did-you-mean choices offered.
    pub suggest_max: usize,
    pub topics_per_page: usize,
    /// Ranked hits kept in an [`Outcome`]'s decision, for `ask --json` (at least `suggest_max`).
    pub results: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { snippet_chars: 600, related_max: 4, suggest_max: 3, topics_per_page: 8, results: 3 }
    }
}

/// An article as a reply names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRef {
    pub idx: ArticleIdx,
    pub id: String,
    pub key: String,
    pub title: String,
}

impl TopicRef {
    pub(crate) fn of(idx: ArticleIdx, a: &Article) -> Self {
        TopicRef { idx, id: a.id.clone(), key: a.key.clone(), title: a.title.clone() }
    }
}

/// A did-you-mean option: the article and the section that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub topic: TopicRef,
    pub section: Option<usize>,
    pub heading: Option<String>,
}

/// Where "Read the full article" goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Link {
    Url(String),
    /// A deep link parameter (`/start <param>`), for articles without a url.
    Start(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct AnswerView {
    pub article: TopicRef,
    /// Section shown (0-based), `None` for a stub's teaser.
    pub section: Option<usize>,
    pub sections: usize,
    pub heading: Option<String>,
    pub snippet: Snippet,
    pub link: Link,
    /// The section "Next section" shows.
    pub next: Option<usize>,
    pub related: Vec<TopicRef>,
    /// The matcher's confidence when this answers a question.
    pub confidence: Option<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Answer(AnswerView),
    /// Did you mean one of these?
    Suggest(Vec<Choice>),
    /// Out of scope: a polite don't-know.
    Unknown,
    Smalltalk {
        kind: Smalltalk,
        bot_name: String,
    },
    Welcome {
        bot_name: String,
        popular: Vec<TopicRef>,
    },
    Help {
        bot_name: String,
    },
    Topics {
        page: usize,
        pages: usize,
        items: Vec<TopicRef>,
    },
    /// "Next section" after the last one.
    EndOfArticle {
        article: TopicRef,
        related: Vec<TopicRef>,
    },
    /// "More" or "back" with nothing to continue.
    NothingToContinue,
    /// A button whose article is no longer in the knowledge base.
    Gone,
    /// A number typed with no choices pending, or out of range.
    NoSuchChoice,
    Reset,
    /// After /forget: whether anything was kept; `None` when deleting failed.
    Forgotten {
        existed: Option<bool>,
    },
    FeedbackThanks {
        up: bool,
    },
    /// Not a text message.
    TextOnly,
    /// An empty message.
    Empty,
    /// An update already answered (delivered again after a restart): send nothing.
    Duplicate,
}

impl Reply {
    /// The reply's name in logs and metrics (`articlebot_replies_total{intent}`): a stable word
    /// per kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Reply::Answer(_) => "open",
            Reply::Suggest(_) => "suggest",
            Reply::Unknown => "unknown",
            Reply::Smalltalk { .. } => "smalltalk",
            Reply::Welcome { .. } => "start",
            Reply::Help { .. } => "help",
            Reply::Topics { .. } => "topics",
            Reply::EndOfArticle { .. } => "end",
            Reply::NothingToContinue => "nothing",
            Reply::Gone => "gone",
            Reply::NoSuchChoice => "no_choice",
            Reply::Reset => "reset",
            Reply::Forgotten { .. } => "forget",
            Reply::FeedbackThanks { .. } => "feedback",
            Reply::TextOnly => "not_text",
            Reply::Empty => "empty",
            Reply::Duplicate => "duplicate",
        }
    }
}
