//! One input applied to one user's state: the conversation's state machine. `Engine::handle`
//! loads the state, runs a [`Turn`] and stores the result.

use articlebot_knowledge::{ArticleIdx, KnowledgeBase};
use articlebot_matching::{Decision, Hit, Intent, Smalltalk, TermId};

use crate::learning::{Signal, SignalKind, REPHRASE_SECS};
use crate::library::Library;
use crate::reply::{AnswerView, Choice, Link, Options, Reply, TopicRef};
use crate::sled_store::MAX_NORMALIZED_BYTES;
use crate::state::{Earlier, GivenFeedback, LastAsk, Offer, Position, Screen, UserState};
use crate::store::{QuestionRecord, Store};
use crate::vocabulary::Input;

/// One input being applied to one user's state.
pub(crate) struct Turn<'a, S: Store> {
    pub lib: &'a Library,
    pub options: &'a Options,
    pub state: &'a mut UserState,
    pub store: &'a S,
    /// Whose turn it is (learning signals count once per user).
    pub user: i64,
    pub now: u64,
    /// How the question was read, when the input was one.
    pub decision: Option<Decision>,
    /// The update was applied before and is only being answered now (a crash in between): the
    /// reply is rebuilt, nothing is counted twice.
    pub replay: bool,
    /// (stored question, article) pairs a positive signal of this turn counted for, when the
    /// site accepts questions automatically: the engine queues them for `accept_due`.
    pub due: Vec<(String, String)>,
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
                    Some(idx) => {
                        let id = self.kb().articles[idx as usize].id.clone();
                        self.picked(&id);
                        self.open(idx, section, &[], None)
                    }
                    None => Reply::Gone,
                }
            }
            Input::NoneOfThese => {
                self.state.counts.buttons += u64::from(!self.replay);
                self.none_of_these()
            }
            Input::Feedback { key, section, up } => {
                self.state.counts.buttons += u64::from(!self.replay);
                self.feedback(&key, section, up)
            }
            Input::Rate { up } => self.rate(up),
            Input::Reset => {
                self.state.position = None;
                self.state.screen = None;
                self.state.history.clear();
                self.state.offers.clear();
                Reply::Reset
            }
            // Taken before any state is loaded (see `handle`); here only to keep the match total.
            Input::Forget => Reply::Forgotten { existed: Some(false) },
            Input::NotText => Reply::TextOnly,
            Input::Current => match self.state.current() {
                Some(screen) => self.show(screen).unwrap_or(Reply::NothingToContinue),
                None => Reply::NothingToContinue,
            },
        }
    }

    /// Shows a screen again (going back, or a redelivered step); `None` when none of it is in
    /// the knowledge base any more.
    fn show(&mut self, screen: Screen) -> Option<Reply> {
        match screen {
            Screen::Article(pos) => {
                let idx = self.kb().by_id(&pos.article)?;
                // A reader who finished an article left it "past the end": coming back shows
                // its last section, not the end notice again.
                let last = self.kb().articles[idx as usize].sections.len().checked_sub(1);
                let section = match (pos.section, last) {
                    (s, _) if self.replay => s,
                    (Some(s), Some(last)) => Some(s.min(last)),
                    (_, None) => None,
                    (s, _) => s,
                };
                Some(self.open(idx, section, &[], None))
            }
            Screen::Choices { choices } => {
                let kb = self.kb();
                let offers: Vec<Offer> = choices.into_iter().filter(|o| kb.by_id(&o.article).is_some()).collect();
                if offers.is_empty() {
                    return None;
                }
                let shown: Vec<Choice> = offers
                    .iter()
                    .filter_map(|o| {
                        let idx = kb.by_id(&o.article)?;
                        let a = &kb.articles[idx as usize];
                        let heading = o.section.and_then(|s| a.sections.get(s)).and_then(|s| s.heading.clone());
                        Some(Choice { topic: TopicRef::of(idx, a), section: o.section, heading })
                    })
                    .collect();
                self.state.offers = offers.clone();
                self.state.show(Screen::Choices { choices: offers });
                Some(Reply::Suggest(shown))
            }
            Screen::Topics { topics_page } => Some(self.topics(topics_page)),
            Screen::Welcome { .. } => Some(self.start(None)),
        }
    }

    /// "up"/"down" typed: a vote on the answer on screen, as its buttons would give.
    fn rate(&mut self, up: bool) -> Reply {
        let Some(Screen::Article(pos)) = self.state.current() else { return Reply::NothingToRate };
        let Some(idx) = self.kb().by_id(&pos.article) else { return Reply::NothingToRate };
        let a = &self.kb().articles[idx as usize];
        // Past the end of an article, the vote is for the section last read.
        let section = pos.section.filter(|_| !a.is_stub()).map(|s| s.min(a.sections.len().saturating_sub(1)));
        let key = a.key.clone();
        self.feedback(&key, section, up)
    }

    fn question(&mut self, text: &str) -> Reply {
        let q = text.trim();
        // Only words are questions: "???" or an emoji is neither answered nor kept for the
        // authors as one.
        if !q.chars().any(char::is_alphanumeric) {
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
                let offers: Vec<Offer> =
                    shown.iter().map(|h| Offer { article: m.article(h).id.clone(), section: h.section }).collect();
                self.state.offers.clone_from(&offers);
                self.state.show(Screen::Choices { choices: offers });
                Reply::Suggest(options)
            }
            (Intent::Smalltalk, _) => Reply::Smalltalk {
                kind: d.smalltalk.unwrap_or(Smalltalk::Greeting),
                bot_name: self.kb().site.bot_name.clone(),
            },
            _ => Reply::Unknown { noted: false, watch: None },
        };
        if !self.replay && d.intent != Intent::Smalltalk {
            self.asked(q, &d, &reply);
        }
        // A question answered again after a crash was recorded the first time.
        let recorded = self.replay || self.count_question(q, &d, &reply);
        let reply = match reply {
            Reply::Unknown { .. } => {
                let noted = recorded && self.options.keeps_questions;
                Reply::Unknown { noted, watch: self.watchable(noted) }
            }
            other => other,
        };
        self.decision = Some(d);
        reply
    }

    /// A new question: a rephrase of the last one if it came right after its answer, and what
    /// picks and votes from now on are about.
    fn asked(&mut self, q: &str, d: &Decision, reply: &Reply) {
        let mut ask = LastAsk::new(&d.normalized, q);
        if let Some(last) = self.state.asked.take() {
            let quick = self.now.saturating_sub(last.answered_at) <= REPHRASE_SECS;
            if let (Some(article), true, false) = (&last.answer, quick, last.rated) {
                if last.normalized != d.normalized {
                    self.signal(&last, SignalKind::Rephrase, Some(article));
                    ask.rephrase_of =
                        Some(Earlier { normalized: last.normalized.clone(), example: last.example.clone() });
                }
            }
        }
        match reply {
            Reply::Answer(a) => {
                ask.answer = Some(a.article.id.clone());
                ask.answered_at = self.now;
            }
            Reply::Suggest(_) => ask.choices = true,
            _ => {}
        }
        self.state.asked = Some(ask);
    }

    /// Counts a learning signal about the last question; a store failure costs only the signal.
    fn signal(&mut self, ask: &LastAsk, kind: SignalKind, article: Option<&str>) -> bool {
        let s =
            Signal { user: self.user, normalized: &ask.normalized, example: &ask.example, article, kind, at: self.now };
        match self.store.record_signal(&s) {
            Ok(counted) => {
                // Only support can bring a pair to a proposal; doubt never makes one.
                let support = matches!(kind, SignalKind::Pick | SignalKind::Up | SignalKind::Resolved);
                if let (true, true, Some(article)) = (counted, support, article) {
                    if self.kb().site.learning.auto_accept_users.is_some() {
                        // As the store keeps the question, so that the queued pair names its evidence.
                        let q = &ask.normalized[..ask.normalized.floor_char_boundary(MAX_NORMALIZED_BYTES)];
                        self.due.push((q.to_string(), article.to_string()));
                    }
                }
                counted
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not record a learning signal");
                false
            }
        }
    }

    /// An article opened: a did-you-mean pick when it is one of the choices on screen.
    fn picked(&mut self, article: &str) {
        if self.replay {
            return;
        }
        let on_screen = matches!(self.state.current(), Some(Screen::Choices { choices }) if choices.iter().any(|o| o.article == article));
        let Some(mut ask) = self.state.asked.take().filter(|a| a.choices && on_screen) else { return };
        self.signal(&ask, SignalKind::Pick, Some(article));
        self.resolve(&mut ask, article);
        ask.answer = Some(article.to_string());
        ask.answered_at = self.now;
        ask.rated = false;
        self.state.asked = Some(ask);
    }

    /// `article` confirmed for `ask`, a rephrase of an earlier question answered wrong: the
    /// earlier question meant it too. Credited once: a later pick or 👍 says nothing new.
    fn resolve(&mut self, ask: &mut LastAsk, article: &str) {
        if let Some(earlier) = ask.rephrase_of.take() {
            let first = LastAsk::new(&earlier.normalized, &earlier.example);
            self.signal(&first, SignalKind::Resolved, Some(article));
        }
    }

    /// "None of these" under the choices on screen: the question is unanswered.
    fn none_of_these(&mut self) -> Reply {
        let on_screen = matches!(self.state.current(), Some(Screen::Choices { .. }));
        let Some(mut ask) = self.state.asked.take().filter(|a| a.choices && on_screen) else {
            return Reply::NoSuchChoice;
        };
        let noted = self.replay || self.signal(&ask, SignalKind::NoneOfThese, None);
        ask.choices = false;
        self.state.asked = Some(ask);
        let noted = noted && self.options.keeps_questions;
        Reply::Unknown { noted, watch: self.watchable(noted) }
    }

    /// The id of the last question, when its don't-know may offer to wait for an answer.
    fn watchable(&self, noted: bool) -> Option<u64> {
        let last = self.state.asked.as_ref().filter(|a| noted && !self.replay && a.answer.is_none())?;
        Some(crate::watch::question_id(&last.normalized))
    }

    /// The question in the user's history and in the statistics; whether the store took it.
    fn count_question(&mut self, q: &str, d: &Decision, reply: &Reply) -> bool {
        self.state.counts.questions += 1;
        match reply {
            Reply::Answer(_) => self.state.counts.answered += 1,
            Reply::Unknown { .. } => self.state.counts.unknown += 1,
            _ => {}
        }
        self.state.log_question(q, d.intent.as_str(), self.now);
        let article = match reply {
            Reply::Answer(a) => Some(a.article.id.as_str()),
            _ => None,
        };
        let record = QuestionRecord { normalized: &d.normalized, example: q, intent: d.intent, article, at: self.now };
        match self.store.record_question(&record) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "could not record question statistics");
                false
            }
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
        self.state.show(Screen::Welcome { welcome: true });
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
        self.state.show(Screen::Topics { topics_page: page });
        Reply::Topics { page, pages, items }
    }

    /// Continues what is on screen: the article's next section, the next page of topics.
    fn more(&mut self) -> Reply {
        match self.state.current() {
            None => Reply::NothingToContinue,
            Some(Screen::Article(pos)) => {
                let Some(idx) = self.kb().by_id(&pos.article) else { return Reply::NothingToContinue };
                let next = pos.section.map_or(0, |s| s + 1);
                self.open(idx, Some(next), &[], None)
            }
            Some(Screen::Topics { topics_page }) => {
                let pages = self.lib.by_title.len().div_ceil(self.options.topics_per_page.max(1));
                if topics_page + 1 < pages {
                    self.topics(topics_page + 1)
                } else {
                    Reply::NoMoreChoices
                }
            }
            Some(Screen::Choices { .. } | Screen::Welcome { .. }) => Reply::NoMoreChoices,
        }
    }

    /// Walks back through what was shown: articles, choices, topic pages.
    fn back(&mut self) -> Reply {
        while let Some(screen) = self.state.pop_back() {
            if let Some(reply) = self.show(screen) {
                return reply;
            }
        }
        Reply::NothingBefore
    }

    fn pick(&mut self, n: usize) -> Reply {
        let Some(offer) = n.checked_sub(1).and_then(|i| self.state.offers.get(i)).cloned() else {
            return Reply::NoSuchChoice;
        };
        match self.kb().by_id(&offer.article) {
            Some(idx) => {
                self.picked(&offer.article);
                self.open(idx, offer.section, &[], None)
            }
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
        // A vote on the answer to the last question says whether it meant this article.
        if let Some(mut ask) = self.state.asked.take() {
            if !self.replay && ask.answer.as_deref() == Some(id.as_str()) {
                self.signal(&ask, if up { SignalKind::Up } else { SignalKind::Down }, Some(&id));
                if up {
                    self.resolve(&mut ask, &id);
                }
                ask.rated = true;
            }
            self.state.asked = Some(ask);
        }
        self.state.log_feedback(GivenFeedback { article: id, section, up, at: self.now });
        Reply::FeedbackThanks { up }
    }

    /// Shows an article at a section (clamped), or its end when past the last one (for a stub,
    /// anything after its summary).
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
        let stub = a.is_stub();
        let refer = |i: Option<ArticleIdx>| i.filter(|&i| i != idx).map(|i| TopicRef::of(i, &kb.articles[i as usize]));
        let (prev_article, next_article) = (refer(a.prev), refer(a.next));
        let related = if stub { self.closest_full(idx) } else { self.related(idx) };
        let offers: Vec<Offer> = onward(&next_article, &prev_article, &related)
            .map(|t| Offer { article: t.id.clone(), section: None })
            .collect();
        // A stub has only its summary (section `None`): anything after it is the end.
        let past_end = section.is_some_and(|s| stub || s >= a.sections.len());
        if past_end {
            // The position moves past the end too, so that a redelivered step shows the end
            // again rather than the last section.
            self.state.go_to(Position { article: a.id.clone(), section: Some(a.sections.len()) });
            self.state.offers = offers;
            return Reply::EndOfArticle { article: topic, stub, prev_article, next_article, related };
        }
        let section = if stub { None } else { Some(section.unwrap_or(0)) };
        let score = matched.map_or(1.0, |m| m.1.score);
        let hit = Hit { article: idx, section, score, lexical: score, semantic: None };
        let snippet = lib.matcher().snippet(&hit, terms, self.options.snippet_chars);
        let next = section.map(|s| s + 1).filter(|&n| n < a.sections.len());
        self.state.go_to(Position { article: a.id.clone(), section });
        self.state.offers = offers;
        Reply::Answer(AnswerView {
            article: topic,
            section,
            sections: a.sections.len(),
            heading: section.and_then(|s| a.sections.get(s)).and_then(|s| s.heading.clone()),
            snippet,
            link: link_of(kb, idx),
            next,
            stub,
            prev_article,
            next_article,
            related,
            confidence: matched.map(|m| m.0),
        })
    }

    /// Up to `related_max` topics to offer next to an article: its related articles and those
    /// linking to it, those this user has not seen first. Its previous and next articles are
    /// offered apart.
    fn related(&self, idx: ArticleIdx) -> Vec<TopicRef> {
        let kb = self.kb();
        let a = &kb.articles[idx as usize];
        let mut ids: Vec<ArticleIdx> = a.related.clone();
        ids.extend(self.lib.backlinks[idx as usize].iter().copied());
        let mut unique: Vec<ArticleIdx> = Vec::with_capacity(ids.len());
        for i in ids {
            if i != idx && Some(i) != a.prev && Some(i) != a.next && !unique.contains(&i) {
                unique.push(i);
            }
        }
        let mut ids = unique;
        // Stable: keeps the site's order within unseen and within seen.
        ids.sort_by_key(|&i| self.state.has_seen(&kb.articles[i as usize].id));
        ids.truncate(self.options.related_max);
        ids.into_iter().map(|i| TopicRef::of(i, &kb.articles[i as usize])).collect()
    }

    /// For a stub, which the bot knows only by its summary: the articles it has in full that
    /// match the stub's title and summary best, then those linking to it.
    fn closest_full(&self, idx: ArticleIdx) -> Vec<TopicRef> {
        let kb = self.kb();
        let a = &kb.articles[idx as usize];
        let about = format!("{} {}", a.title, a.teaser.as_deref().unwrap_or(""));
        let max = self.options.related_max;
        let ranked = self.lib.matcher().decide(&about, max * 4 + 4);
        let mut ids: Vec<ArticleIdx> = Vec::new();
        let candidates = ranked.hits.iter().map(|h| h.article).chain(self.lib.backlinks[idx as usize].iter().copied());
        for i in candidates {
            if i != idx && !kb.articles[i as usize].is_stub() && !ids.contains(&i) {
                ids.push(i);
            }
        }
        ids.truncate(max);
        ids.into_iter().map(|i| TopicRef::of(i, &kb.articles[i as usize])).collect()
    }
}

/// The topics a reply offers after an article, in the order numbers pick them: the next
/// article, the previous one, then the related topics.
pub(crate) fn onward<'t>(
    next: &'t Option<TopicRef>,
    prev: &'t Option<TopicRef>,
    related: &'t [TopicRef],
) -> impl Iterator<Item = &'t TopicRef> {
    next.iter().chain(prev.iter()).chain(related.iter())
}

/// Where to read the whole article. A stub without a url has none: opening it again would only
/// show the same summary. A deep-link parameter must be 1–64 characters of `[A-Za-z0-9_-]`: the
/// id when it fits, else the short key.
fn link_of(kb: &KnowledgeBase, idx: ArticleIdx) -> Option<Link> {
    if let Some(url) = kb.url_of(idx) {
        return Some(Link::Url(url));
    }
    let a = &kb.articles[idx as usize];
    if a.is_stub() {
        return None;
    }
    let fits = a.id.len() <= 64 && a.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let param = if fits { a.id.clone() } else { a.key.clone() };
    Some(Link::Start { id: a.id.clone(), param })
}
