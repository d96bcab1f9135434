//! What the conversation answers: a [`Reply`] per input, naming articles by [`TopicRef`], and
//! the [`Options`] that size replies. Front ends render these; the wording they share is in
//! `text`.

use std::path::PathBuf;
use std::sync::Arc;

use articlebot_knowledge::{Article, ArticleIdx};
use articlebot_matching::{Smalltalk, Snippet};

/// How the engine loads knowledge and makes replies.
#[derive(Clone)]
pub struct Options {
    /// Longest snippet shown, in characters.
    pub snippet_chars: usize,
    /// Related topics offered under an answer.
    pub related_max: usize,
    /// Did-you-mean choices offered.
    pub suggest_max: usize,
    pub topics_per_page: usize,
    /// Ranked hits kept in an [`Outcome`](crate::Outcome)'s decision, for `ask --json` (at
    /// least `suggest_max`).
    pub results: usize,
    /// The sentence model for semantic matching; overrides `[semantic] model` of site.toml
    /// (front ends fill it from `--model` or `ARTICLEBOT_MODEL`).
    pub model: Option<PathBuf>,
    /// Lexical matching only, whatever site.toml says (for checking a knowledge dir).
    pub lexical_only: bool,
    /// Threads that embed the knowledge base (default: the machine's).
    pub model_threads: Option<usize>,
    /// Whether unanswered questions outlive the process (false for a store thrown away at exit,
    /// as `ask` and `chat` without `--data` use): the bot says it noted a question only then.
    pub keeps_questions: bool,
    /// Where embedded texts are kept between runs; none: embedded at every load.
    pub cache_dir: Option<PathBuf>,
    /// Told how far embedding the knowledge base is.
    pub progress: Option<Arc<dyn Fn(EmbedProgress) + Send + Sync>>,
}

/// How far embedding a knowledge base is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbedProgress {
    /// Texts embedded so far, of `total` (what the cache did not have).
    pub done: usize,
    pub total: usize,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("snippet_chars", &self.snippet_chars)
            .field("related_max", &self.related_max)
            .field("suggest_max", &self.suggest_max)
            .field("topics_per_page", &self.topics_per_page)
            .field("results", &self.results)
            .field("model", &self.model)
            .field("lexical_only", &self.lexical_only)
            .field("model_threads", &self.model_threads)
            .field("cache_dir", &self.cache_dir)
            .field("keeps_questions", &self.keeps_questions)
            .finish_non_exhaustive()
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            snippet_chars: 600,
            related_max: 4,
            suggest_max: 3,
            topics_per_page: 8,
            results: 3,
            model: None,
            lexical_only: false,
            model_threads: None,
            cache_dir: None,
            keeps_questions: true,
            progress: None,
        }
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
    /// The article from its start, for articles without a url: `/start <id>` where people read
    /// the link, a deep link with `param` (the id when Telegram allows it, else the short key)
    /// where they only tap it.
    Start {
        id: String,
        param: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct AnswerView {
    pub article: TopicRef,
    /// Section shown (0-based), `None` for a stub's teaser.
    pub section: Option<usize>,
    pub sections: usize,
    pub heading: Option<String>,
    pub snippet: Snippet,
    /// `None` for a stub without a url: there is nothing more to read here.
    pub link: Option<Link>,
    /// The section "Next section" shows.
    pub next: Option<usize>,
    /// A topic known only by its title and summary: the full article is on the site.
    pub stub: bool,
    /// The site's previous and next articles, offered apart from the related topics.
    pub prev_article: Option<TopicRef>,
    pub next_article: Option<TopicRef>,
    /// Related topics; for a stub, the closest articles the bot has in full.
    pub related: Vec<TopicRef>,
    /// The matcher's confidence when this answers a question.
    pub confidence: Option<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Answer(AnswerView),
    /// Did you mean one of these?
    Suggest(Vec<Choice>),
    /// Out of scope: a polite don't-know; `noted` when the question was kept for the authors.
    Unknown {
        noted: bool,
        /// The question's [`crate::question_id`] when the user may wait for an answer to it
        /// ("Tell me when there's an answer"): only for a question kept, as the user typed it.
        watch: Option<u64>,
    },
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
    /// "Next section" after the last one, or "more" on a stub (`stub`: there was only its
    /// summary); `related` as in [`AnswerView`].
    EndOfArticle {
        article: TopicRef,
        stub: bool,
        prev_article: Option<TopicRef>,
        next_article: Option<TopicRef>,
        related: Vec<TopicRef>,
    },
    /// "Back" with nothing shown before.
    NothingBefore,
    /// "More" after did-you-mean choices or popular topics: there are no others.
    NoMoreChoices,
    /// "up"/"down" with no answer on screen.
    NothingToRate,
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
    /// The user's state could not be read (the database server is away or busy): nothing was
    /// done. A front end on a shared store tries the input again later instead of sending this.
    Unavailable,
}

impl AnswerView {
    /// The topics offered under the answer, in the order typed numbers pick them.
    pub fn offered(&self) -> impl Iterator<Item = &TopicRef> {
        crate::turn::onward(&self.next_article, &self.prev_article, &self.related)
    }
}

impl Reply {
    /// The reply's name in logs and metrics (`articlebot_replies_total{intent}`): a stable word
    /// per kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Reply::Answer(_) => "open",
            Reply::Suggest(_) => "suggest",
            Reply::Unknown { .. } => "unknown",
            Reply::Smalltalk { .. } => "smalltalk",
            Reply::Welcome { .. } => "start",
            Reply::Help { .. } => "help",
            Reply::Topics { .. } => "topics",
            Reply::EndOfArticle { .. } => "end",
            Reply::NothingToContinue => "nothing",
            Reply::NoMoreChoices => "no_more",
            Reply::NothingBefore => "nothing_before",
            Reply::NothingToRate => "nothing_to_rate",
            Reply::Gone => "gone",
            Reply::NoSuchChoice => "no_choice",
            Reply::Reset => "reset",
            Reply::Forgotten { .. } => "forget",
            Reply::FeedbackThanks { .. } => "feedback",
            Reply::TextOnly => "not_text",
            Reply::Empty => "empty",
            Reply::Duplicate => "duplicate",
            Reply::Unavailable => "unavailable",
        }
    }
}
