//! One input applied to one user's state: the conversation's state machine. `Engine::handle`
//! loads the state, runs a [`Turn`] and stores the result.

use articlebot_knowledge::{ArticleIdx, KnowledgeBase};
use articlebot_matching::{Decision, Hit, Intent, Smalltalk, TermId};

use crate::library::Library;
use crate::reply::{AnswerView, Choice, Link, Options, Reply, TopicRef};
use crate::state::{GivenFeedback, Offer, Position, UserState};
use crate::store::{QuestionRecord, Store};
use crate::vocabulary::Input;

/// One input being applied to one user's state.
pub(crate) struct Turn<'a, S: Store> {
    pub lib: &'a Library,
    pub options: &'a Options,
    pub state: &'a mut UserState,
    pub store: &'a S,
    pub now: u64,
    /// How the question was read, when the input was one.
    pub decision: Option<Decision>,
    /// The update was applied before and is only being answered now (a crash in between): the
    /// reply is rebuilt, nothing is counted twice.
    pub replay: bool,
}

impl<'a, S: Store> Turn<'a, S> {
    fn kb(&self) -> &'a KnowledgeBase {
        self.lib.kb()
    }

    pub fn apply(&mut self, input: Input) -> Reply {
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
        let m = self.lib.matcher();
        let d = m.decide(q, self.options.suggest_max.max(self.options.results).max(1));
        let reply = match (d.intent, d.hits.first()) {
            (Intent::Answer, Some(hit)) => {
                let hit = hit.clone();
                self.open(hit.article, hit.section, &d.terms, Some((d.confidence, &hit)))
            }
            (Intent::Suggest, _) => {
                let shown = &d.hits[..d.hits.len().min(self.options.suggest_max)];
                let options: Vec<Choice> = shown
                    .iter()
                    .map(|h| Choice {
                        topic: TopicRef::of(h.article, m.article(h)),
                        section: h.section,
                        heading: h.section.and_then(|s| m.article(h).sections.get(s)).and_then(|s| s.heading.clone()),
                    })
                    .collect();
                self.state.offers =
                    shown.iter().map(|h| Offer { article: m.article(h).id.clone(), section: h.section }).collect();
                Reply::Suggest(options)
            }
            (Intent::Smalltalk, _) => Reply::Smalltalk {
                kind: d.smalltalk.unwrap_or(Smalltalk::Greeting),
                bot_name: self.kb().site.bot_name.clone(),
            },
            _ => Reply::Unknown,
        };
        if !self.replay {
            self.count_question(q, &d, &reply);
        }
        self.decision = Some(d);
        reply
    }

    /// The question in the user's history and in the statistics.
    fn count_question(&mut self, q: &str, d: &Decision, reply: &Reply) {
        self.state.counts.questions += 1;
        match reply {
            Reply::Answer(_) => self.state.counts.answered += 1,
            Reply::Unknown => self.state.counts.unknown += 1,
            _ => {}
        }
        self.state.log_question(q, d.intent.as_str(), self.now);
        let article = match reply {
            Reply::Answer(a) => Some(a.article.id.as_str()),
            _ => None,
        };
        let record = QuestionRecord { normalized: &d.normalized, example: q, intent: d.intent, article, at: self.now };
        if let Err(e) = self.store.record_question(&record) {
            tracing::warn!(error = %e, "could not record question statistics");
        }
    }

    fn start(&mut self, param: Option<&str>) -> Reply {
        if let Some(idx) = param.and_then(|p| self.kb().by_id_or_key(p.trim())) {
            return self.open(idx, None, &[], None);
        }
        let kb = self.kb();
        let mut popular: Vec<TopicRef> = Vec::new();
        if let Ok(top) = self.store.top_articles(self.options.related_max) {
            for (id, _) in top {
                if let Some(i) = kb.by_id(&id) {
                    popular.push(TopicRef::of(i, &kb.articles[i as usize]));
                }
            }
        }
        for &i in &self.lib.hubs {
            if popular.len() >= self.options.related_max {
                break;
            }
            if !popular.iter().any(|p| p.idx == i) {
                popular.push(TopicRef::of(i, &kb.articles[i as usize]));
            }
        }
        popular.truncate(self.options.related_max);
        self.state.offers = popular.iter().map(|t| Offer { article: t.id.clone(), section: None }).collect();
        Reply::Welcome { bot_name: kb.site.bot_name.clone(), popular }
    }

    fn topics(&mut self, page: usize) -> Reply {
        let per = self.options.topics_per_page.max(1);
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
        terms: &[TermId],
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
        let score = matched.map_or(1.0, |m| m.1.score);
        let hit = Hit { article: idx, section, score, lexical: score, semantic: None };
        let snippet = lib.matcher().snippet(&hit, terms, self.options.snippet_chars);
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
        ids.truncate(self.options.related_max);
        ids.into_iter().map(|i| TopicRef::of(i, &kb.articles[i as usize])).collect()
    }
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
