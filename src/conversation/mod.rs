//! The conversation: a state machine over per-user state. Front ends (`articlebot chat`, the
//! Telegram bot) turn what the user did into an `Input`, call `Engine::handle`, and render the
//! `Reply`; they never touch the matcher or the store themselves. The user's new position is
//! stored and flushed before `handle` returns. If storing fails (disk full), the reply is still
//! given and `Outcome::stored` carries the error for the front end to log: an answer matters
//! more than a remembered position.

pub mod sled_store;
pub mod state;
pub mod store;
pub mod text;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;

use crate::knowledge::{Article, ArticleIdx, KnowledgeBase};
use crate::matching::{Hit, Intent, Matcher, Smalltalk, Snippet};
pub use sled_store::SledStore;
use state::{GivenFeedback, Offer, Position, UserState};
pub use store::{now_unix, QuestionRecord, Stats, Store, StoreError, Unanswered};

/// A knowledge base ready to serve: the matcher and what the conversation derives from it.
#[derive(Debug)]
pub struct Library {
    pub matcher: Matcher,
    /// Per article: the articles that link to it (for a stub's related topics).
    backlinks: Vec<Vec<ArticleIdx>>,
    /// Articles by title, for the topic list.
    by_title: Vec<ArticleIdx>,
    /// Articles to offer when nothing else says what is popular: the most linked first.
    hubs: Vec<ArticleIdx>,
    /// Increases with every reload.
    pub generation: u64,
}

impl Library {
    pub fn new(matcher: Matcher, generation: u64) -> Self {
        let kb = matcher.kb();
        let mut backlinks = vec![Vec::new(); kb.articles.len()];
        for (i, a) in kb.articles.iter().enumerate() {
            for &r in a.related.iter().chain(a.prev.iter()).chain(a.next.iter()) {
                let list: &mut Vec<ArticleIdx> = &mut backlinks[r as usize];
                if !list.contains(&(i as ArticleIdx)) {
                    list.push(i as ArticleIdx);
                }
            }
        }
        let mut by_title: Vec<ArticleIdx> = (0..kb.articles.len() as ArticleIdx).collect();
        by_title.sort_by_cached_key(|&i| kb.articles[i as usize].title.to_lowercase());
        let mut hubs: Vec<ArticleIdx> = (0..kb.articles.len() as ArticleIdx).collect();
        hubs.sort_by_key(|&i| {
            let a = &kb.articles[i as usize];
            (a.is_stub(), std::cmp::Reverse(a.related.len() + backlinks[i as usize].len()), i)
        });
        hubs.truncate(8);
        Library { matcher, backlinks, by_title, hubs, generation }
    }

    pub fn kb(&self) -> &KnowledgeBase {
        self.matcher.kb()
    }
}

/// The user as front ends know them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub language: Option<String>,
}

/// What the user did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Question(String),
    /// `/start`, with the deep-link parameter if any.
    Start(Option<String>),
    Help,
    Topics(usize),
    /// The next section of the article the user is reading.
    More,
    /// The previous article.
    Back,
    /// The n-th (1-based) choice of the last reply.
    Pick(usize),
    /// Open an article (by short key) at a section (`None`: the start).
    Open {
        key: String,
        section: Option<usize>,
    },
    Feedback {
        key: String,
        section: Option<usize>,
        up: bool,
    },
    Reset,
    Forget,
    /// A sticker, photo, voice message...
    NotText,
    /// Show the current position again (a redelivered step).
    Current,
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
    fn of(idx: ArticleIdx, a: &Article) -> Self {
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

/// The result of handling an input: the reply, and whether the state was stored.
#[derive(Debug)]
pub struct Outcome {
    pub reply: Reply,
    /// Storage failures do not stop the reply; front ends log them.
    pub stored: Result<(), StoreError>,
    pub intent: Option<Intent>,
    pub article: Option<String>,
    pub elapsed: std::time::Duration,
}

/// Sizes of replies.
#[derive(Debug, Clone)]
pub struct Settings {
    pub snippet_chars: usize,
    pub related_max: usize,
    pub suggest_max: usize,
    pub topics_per_page: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { snippet_chars: 600, related_max: 4, suggest_max: 3, topics_per_page: 8 }
    }
}

const LOCK_SHARDS: usize = 64;

/// The conversation engine: one per process, shared by all users.
pub struct Engine<S: Store> {
    library: ArcSwap<Library>,
    store: S,
    /// A user's updates are applied one at a time (load, change, save).
    locks: Vec<Mutex<()>>,
    pub settings: Settings,
}

impl<S: Store> std::fmt::Debug for Engine<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("generation", &self.library.load().generation).finish_non_exhaustive()
    }
}

impl<S: Store> Engine<S> {
    pub fn new(matcher: Matcher, store: S) -> Self {
        Engine {
            library: ArcSwap::from_pointee(Library::new(matcher, 1)),
            store,
            locks: (0..LOCK_SHARDS).map(|_| Mutex::new(())).collect(),
            settings: Settings::default(),
        }
    }

    /// The knowledge base in use. Hold the `Arc` for the whole of a reply so that a reload
    /// in between cannot mix two knowledge bases.
    pub fn library(&self) -> Arc<Library> {
        self.library.load_full()
    }

    /// Swaps in a new knowledge base atomically; replies in progress finish on the old one.
    pub fn reload(&self, matcher: Matcher) -> u64 {
        let generation = self.library.load().generation + 1;
        self.library.store(Arc::new(Library::new(matcher, generation)));
        generation
    }

    pub fn store(&self) -> &S {
        &self.store
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
            Err(e) => {
                stored = Err(e);
                (UserState::new(now), false)
            }
        };
        if let Some(u) = update {
            if u != 0 && state.has_replied(u) {
                return Outcome {
                    reply: Reply::Duplicate,
                    stored,
                    intent: None,
                    article: None,
                    elapsed: started.elapsed(),
                };
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
            return Outcome { reply, stored, intent: None, article: None, elapsed: started.elapsed() };
        }
        // The same update again, applied but never answered (the process died in between): a
        // step forward must not be taken twice, so show where the user already is.
        let redelivered = update.is_some_and(|u| u != 0 && u == state.last_update && !state.has_replied(u));
        let input = typed_command(input);
        let input = match input {
            Input::More | Input::Back | Input::Pick(_) if redelivered => Input::Current,
            other => other,
        };
        let mut turn = Turn {
            lib: &lib,
            settings: &self.settings,
            state: &mut state,
            store: &self.store,
            now,
            intent: None,
            replay: redelivered,
        };
        let reply = turn.apply(input);
        let intent = turn.intent;
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
        Outcome { reply, stored, intent, article, elapsed: started.elapsed() }
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
        let m = &lib.matcher;
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
                    m.snippet(h, &d.terms, self.settings.snippet_chars),
                    m.kb().url_of(h.article),
                )
            })
            .collect()
    }
}

/// One input being applied to one user's state.
struct Turn<'a, S: Store> {
    lib: &'a Library,
    settings: &'a Settings,
    state: &'a mut UserState,
    store: &'a S,
    now: u64,
    intent: Option<Intent>,
    /// The update was applied before and is only being answered now (a crash in between): the
    /// reply is rebuilt, nothing is counted twice.
    replay: bool,
}

impl<'a, S: Store> Turn<'a, S> {
    fn kb(&self) -> &'a KnowledgeBase {
        self.lib.kb()
    }

    fn apply(&mut self, input: Input) -> Reply {
        match input {
            Input::Question(q) => self.question(&q),
            Input::Start(param) => self.start(param.as_deref()),
            Input::Help => Reply::Help { bot_name: self.kb().site.bot_name.clone() },
            Input::Topics(page) => self.topics(page),
            Input::More => self.more(),
            Input::Back => self.back(),
            Input::Pick(n) => self.pick(n),
            Input::Open { key, section } => {
                self.state.counts.buttons += u64::from(!self.replay);
                match self.kb().by_key(&key) {
                    Some(idx) => self.open(idx, section, &[], None),
                    None => Reply::Gone,
                }
            }
            Input::Feedback { key, section, up } => {
                self.state.counts.buttons += u64::from(!self.replay);
                self.feedback(&key, section, up)
            }
            Input::Reset => {
                self.state.position = None;
                self.state.history.clear();
                self.state.offers.clear();
                Reply::Reset
            }
            // Taken before any state is loaded (see `handle`); here only to keep the match total.
            Input::Forget => Reply::Forgotten { existed: Some(false) },
            Input::NotText => Reply::TextOnly,
            Input::Current => match self.state.position.clone() {
                Some(pos) => match self.kb().by_id(&pos.article) {
                    Some(idx) => self.open(idx, pos.section, &[], None),
                    None => Reply::NothingToContinue,
                },
                None => Reply::NothingToContinue,
            },
        }
    }

    fn question(&mut self, text: &str) -> Reply {
        let q = text.trim();
        if q.is_empty() {
            return Reply::Empty;
        }
        let m = &self.lib.matcher;
        let d = m.decide(q, self.settings.suggest_max.max(1));
        self.intent = Some(d.intent);
        let intent_name = match d.intent {
            Intent::Answer => "answer",
            Intent::Suggest => "suggest",
            Intent::Smalltalk => "smalltalk",
            Intent::Unknown => "unknown",
        };
        let reply = match (d.intent, d.hits.first()) {
            (Intent::Answer, Some(hit)) => {
                let hit = hit.clone();
                self.open(hit.article, hit.section, &d.terms, Some((d.confidence, &hit)))
            }
            (Intent::Suggest, _) => {
                let options: Vec<Choice> = d
                    .hits
                    .iter()
                    .map(|h| Choice {
                        topic: TopicRef::of(h.article, m.article(h)),
                        section: h.section,
                        heading: h.section.and_then(|s| m.article(h).sections.get(s)).and_then(|s| s.heading.clone()),
                    })
                    .collect();
                self.state.offers =
                    d.hits.iter().map(|h| Offer { article: m.article(h).id.clone(), section: h.section }).collect();
                Reply::Suggest(options)
            }
            (Intent::Smalltalk, _) => Reply::Smalltalk {
                kind: d.smalltalk.unwrap_or(Smalltalk::Greeting),
                bot_name: self.kb().site.bot_name.clone(),
            },
            _ => Reply::Unknown,
        };
        if self.replay {
            return reply;
        }
        self.state.counts.questions += 1;
        match &reply {
            Reply::Answer(_) => self.state.counts.answered += 1,
            Reply::Unknown => self.state.counts.unknown += 1,
            _ => {}
        }
        self.state.log_question(q, intent_name, self.now);
        let normalized = normalized_question(m, q);
        let article = match &reply {
            Reply::Answer(a) => Some(a.article.id.clone()),
            _ => None,
        };
        let record = QuestionRecord {
            normalized: &normalized,
            example: q,
            intent: intent_name,
            article: article.as_deref(),
            at: self.now,
        };
        if let Err(e) = self.store.record_question(&record) {
            tracing::warn!(error = %e, "could not record question statistics");
        }
        reply
    }

    fn start(&mut self, param: Option<&str>) -> Reply {
        if let Some(idx) = param.and_then(|p| self.kb().by_id_or_key(p.trim())) {
            return self.open(idx, None, &[], None);
        }
        let kb = self.kb();
        let mut popular: Vec<TopicRef> = Vec::new();
        if let Ok(top) = self.store.top_articles(self.settings.related_max) {
            for (id, _) in top {
                if let Some(i) = kb.by_id(&id) {
                    popular.push(TopicRef::of(i, &kb.articles[i as usize]));
                }
            }
        }
        for &i in &self.lib.hubs {
            if popular.len() >= self.settings.related_max {
                break;
            }
            if !popular.iter().any(|p| p.idx == i) {
                popular.push(TopicRef::of(i, &kb.articles[i as usize]));
            }
        }
        popular.truncate(self.settings.related_max);
        self.state.offers = popular.iter().map(|t| Offer { article: t.id.clone(), section: None }).collect();
        Reply::Welcome { bot_name: kb.site.bot_name.clone(), popular }
    }

    fn topics(&mut self, page: usize) -> Reply {
        let per = self.settings.topics_per_page.max(1);
        let total = self.lib.by_title.len();
        let pages = total.div_ceil(per).max(1);
        let page = page.min(pages - 1);
        let kb = self.kb();
        let items: Vec<TopicRef> = self.lib.by_title[page * per..((page + 1) * per).min(total)]
            .iter()
            .map(|&i| TopicRef::of(i, &kb.articles[i as usize]))
            .collect();
        self.state.offers = items.iter().map(|t| Offer { article: t.id.clone(), section: None }).collect();
        Reply::Topics { page, pages, items }
    }

    fn more(&mut self) -> Reply {
        let Some(pos) = self.state.position.clone() else { return Reply::NothingToContinue };
        let Some(idx) = self.kb().by_id(&pos.article) else { return Reply::NothingToContinue };
        let next = pos.section.map_or(0, |s| s + 1);
        self.open(idx, Some(next), &[], None)
    }

    fn back(&mut self) -> Reply {
        while let Some(pos) = self.state.history.pop_back() {
            if let Some(idx) = self.kb().by_id(&pos.article) {
                // Going back must not push the current article onto the history again.
                self.state.position = None;
                // A reader who finished an article left it "past the end": back shows its last
                // section, not the end notice again.
                let last = self.kb().articles[idx as usize].sections.len().checked_sub(1);
                let section = match (pos.section, last) {
                    (Some(s), Some(last)) => Some(s.min(last)),
                    (s, _) => s,
                };
                return self.open(idx, section, &[], None);
            }
        }
        Reply::NothingToContinue
    }

    fn pick(&mut self, n: usize) -> Reply {
        let Some(offer) = n.checked_sub(1).and_then(|i| self.state.offers.get(i)).cloned() else {
            return Reply::NoSuchChoice;
        };
        match self.kb().by_id(&offer.article) {
            Some(idx) => self.open(idx, offer.section, &[], None),
            None => Reply::Gone,
        }
    }

    fn feedback(&mut self, key: &str, section: Option<usize>, up: bool) -> Reply {
        let Some(idx) = self.kb().by_key(key) else { return Reply::Gone };
        let article = &self.kb().articles[idx as usize];
        if section.is_some_and(|s| s >= article.sections.len()) {
            return Reply::Gone;
        }
        let id = article.id.clone();
        // A second tap on the same button is not a second vote; the other button changes it.
        let previous = self.state.feedback.iter().find(|g| g.article == id && g.section == section).map(|g| g.up);
        if let Err(e) = self.store.record_feedback(&id, section, up, previous) {
            tracing::warn!(error = %e, "could not record feedback");
        }
        self.state.log_feedback(GivenFeedback { article: id, section, up, at: self.now });
        Reply::FeedbackThanks { up }
    }

    /// Shows an article at a section (clamped), or its end when past the last one.
    fn open(
        &mut self,
        idx: ArticleIdx,
        section: Option<usize>,
        terms: &[crate::matching::TermId],
        matched: Option<(f32, &Hit)>,
    ) -> Reply {
        let lib = self.lib;
        let kb = lib.kb();
        let Some(a) = kb.article(idx) else { return Reply::Gone };
        let topic = TopicRef::of(idx, a);
        let related = self.related(idx);
        if !a.is_stub() && section.is_some_and(|s| s >= a.sections.len()) {
            // The position moves past the end too, so that a redelivered step shows the end
            // again rather than the last section.
            self.state.go_to(Position { article: a.id.clone(), section: Some(a.sections.len()) });
            self.state.offers = related.iter().map(|t| Offer { article: t.id.clone(), section: None }).collect();
            return Reply::EndOfArticle { article: topic, related };
        }
        let section = if a.is_stub() { None } else { Some(section.unwrap_or(0)) };
        let hit = Hit { article: idx, section, score: matched.map_or(1.0, |m| m.1.score) };
        let snippet = lib.matcher.snippet(&hit, terms, self.settings.snippet_chars);
        let next = section.map(|s| s + 1).filter(|&n| n < a.sections.len());
        self.state.go_to(Position { article: a.id.clone(), section });
        self.state.offers = related.iter().map(|t| Offer { article: t.id.clone(), section: None }).collect();
        Reply::Answer(AnswerView {
            article: topic,
            section,
            sections: a.sections.len(),
            heading: section.and_then(|s| a.sections.get(s)).and_then(|s| s.heading.clone()),
            snippet,
            link: link_of(kb, idx),
            next,
            related,
            confidence: matched.map(|m| m.0),
        })
    }

    /// Up to `related_max` topics to offer next to an article: its related, previous and next
    /// articles (or, for a stub, the articles linking to it), those this user has not seen first.
    fn related(&self, idx: ArticleIdx) -> Vec<TopicRef> {
        let kb = self.kb();
        let a = &kb.articles[idx as usize];
        let mut ids: Vec<ArticleIdx> = a.related.iter().chain(a.prev.iter()).chain(a.next.iter()).copied().collect();
        ids.extend(self.lib.backlinks[idx as usize].iter().copied());
        let mut unique: Vec<ArticleIdx> = Vec::with_capacity(ids.len());
        for i in ids {
            if i != idx && !unique.contains(&i) {
                unique.push(i);
            }
        }
        let mut ids = unique;
        // Stable: keeps the site's order within unseen and within seen.
        ids.sort_by_key(|&i| self.state.has_seen(&kb.articles[i as usize].id));
        ids.truncate(self.settings.related_max);
        ids.into_iter().map(|i| TopicRef::of(i, &kb.articles[i as usize])).collect()
    }
}

/// Text that is a command in every front end: "more"/"next", "back", and a number answering the
/// choices of the last reply. Decided before anything else, so that a redelivered step is
/// recognised whether it came as a button, a command or typed text.
fn typed_command(input: Input) -> Input {
    let Input::Question(text) = &input else { return input };
    let t = text.trim();
    if t.eq_ignore_ascii_case("more") || t.eq_ignore_ascii_case("next") {
        return Input::More;
    }
    if t.eq_ignore_ascii_case("back") {
        return Input::Back;
    }
    // A number with no words is a choice, never a question: it would match whatever text
    // happens to hold that digit. With nothing to choose from it gets "no such choice".
    if t.chars().any(|c| c.is_numeric()) && !t.chars().any(char::is_alphabetic) {
        let n = t.trim_end_matches(['.', ')']).parse::<usize>().unwrap_or(0);
        return Input::Pick(n);
    }
    input
}

/// A deep-link parameter must be 1–64 characters of `[A-Za-z0-9_-]`: the id when it fits,
/// else the short key.
fn link_of(kb: &KnowledgeBase, idx: ArticleIdx) -> Link {
    if let Some(url) = kb.url_of(idx) {
        return Link::Url(url);
    }
    let a = &kb.articles[idx as usize];
    if a.id.len() <= 64 && a.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        Link::Start(a.id.clone())
    } else {
        Link::Start(a.key.clone())
    }
}

/// Questions are merged for statistics by their folded content words.
fn normalized_question(m: &Matcher, q: &str) -> String {
    let n = &m.index().normalizer;
    let mut a = crate::matching::normalize::Analysis::default();
    n.analyze(q, &mut a);
    let words: Vec<&str> = a.words.iter().filter(|w| !w.stop).map(|w| a.surface(w)).collect();
    let mut s = words.join(" ");
    if s.is_empty() {
        s = crate::matching::normalize::fold(q.trim());
    }
    s
}

#[cfg(test)]
mod tests;
