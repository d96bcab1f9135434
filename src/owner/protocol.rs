//! The owner commands' requests and what they answer, whoever carries them: [`handle`] runs a
//! request on an open engine or store, in the console (`articlebot stats --data DIR` with the
//! bot stopped) or in the running bot (its admin socket, `super::socket`). Both ways the answer
//! is the same JSON value, read back into the same types, so the console prints the same thing.
//!
//! Adding a command: a [`Request`] variant and its arm in [`handle`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use articlebot_engine::{now_unix, Engine, ErrorChain, Evidence, KnowledgeBase, Proposal, Stats, Store, VerdictRecord};

/// Most unanswered questions one request lists (the store tracks at most 10 000).
pub const MAX_UNANSWERED: usize = 10_000;
/// Top questions and articles in the statistics (as /stats shows them).
pub const STATS_TOP: usize = 10;

/// One request, as one JSON line on the admin socket: `{"cmd":"stats"}`,
/// `{"cmd":"unanswered","top":20}`, `{"cmd":"accept","normalized":"…","article":"…","min_users":1}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// The statistics, as /stats shows them ([`StatsView`]).
    // Unit variants would take any extra field in silence: `{}` makes them refused.
    Stats {},
    /// Questions without an answer, most asked first (`Vec<articlebot_engine::Unanswered>`).
    Unanswered { top: usize },
    /// The same, alike questions grouped, most asked group first (`Vec<articlebot_engine::Cluster>`);
    /// needs the knowledge base loaded (its matcher, and its model when there is one).
    UnansweredGroups { top: usize },
    /// Questions added by review, oldest first (`Vec<VerdictRecord>`).
    ExportLearned {},
    /// What to review now (`Vec<ProposalView>`).
    Proposals { min_users: u64 },
    /// Adds the proposal's question to `article` (its proposed one or an alternative) and
    /// reloads ([`AcceptedView`]).
    Accept { normalized: String, article: String, min_users: u64 },
    /// Keeps the proposal from coming back (`null`).
    Reject { normalized: String, article: String, min_users: u64 },
    /// Takes the last decision back (`Option<VerdictRecord>`).
    Undo {},
}

impl Request {
    /// The command's name, for log lines (never its arguments: they hold user text).
    pub fn name(&self) -> &'static str {
        match self {
            Request::Stats {} => "stats",
            Request::Unanswered { .. } => "unanswered",
            Request::UnansweredGroups { .. } => "unanswered-groups",
            Request::ExportLearned {} => "export-learned",
            Request::Proposals { .. } => "proposals",
            Request::Accept { .. } => "accept",
            Request::Reject { .. } => "reject",
            Request::Undo {} => "undo",
        }
    }
}

/// One reply line: `{"ok": …}` or `{"error": "one line"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum Reply {
    Ok(Value),
    Error(String),
}

/// The statistics with the titles of the articles they name (ids when no knowledge base is at
/// hand), so that a console without the knowledge dir prints what the bot would.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatsView {
    #[serde(flatten)]
    pub stats: Stats,
    pub titles: BTreeMap<String, String>,
}

impl StatsView {
    pub fn title<'a>(&'a self, id: &'a str) -> &'a str {
        self.titles.get(id).map_or(id, String::as_str)
    }
}

/// An article by id and title.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Titled {
    pub id: String,
    pub title: String,
}

/// A [`Proposal`] with its articles' titles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProposalView {
    pub normalized: String,
    pub question: String,
    pub article: Titled,
    pub evidence: Evidence,
    pub alternatives: Vec<Titled>,
}

/// What an accept did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AcceptedView {
    pub question: String,
    pub article: String,
    pub file: String,
    pub written: bool,
    pub answers_now: bool,
}

/// What a request runs on: the store, and the engine when the knowledge base is loaded (the
/// running bot, the console's review); a knowledge dir read without an index gives titles.
pub struct Ctx<'a, S: Store> {
    store: &'a S,
    engine: Option<&'a Engine<S>>,
    kb: Option<&'a KnowledgeBase>,
}

impl<'a, S: Store> Ctx<'a, S> {
    pub fn engine(engine: &'a Engine<S>) -> Self {
        Ctx { store: engine.store(), engine: Some(engine), kb: None }
    }

    pub fn store(store: &'a S, kb: Option<&'a KnowledgeBase>) -> Self {
        Ctx { store, engine: None, kb }
    }

    fn title(&self, id: &str) -> String {
        let from = |kb: &KnowledgeBase| kb.by_id(id).map(|i| kb.articles[i as usize].title.clone());
        let found = match (self.engine, self.kb) {
            (Some(e), _) => from(e.library().kb()),
            (None, Some(kb)) => from(kb),
            (None, None) => None,
        };
        found.unwrap_or_else(|| id.to_string())
    }

    fn titled(&self, id: &str) -> Titled {
        Titled { id: id.to_string(), title: self.title(id) }
    }

    fn review_engine(&self) -> Result<&'a Engine<S>, String> {
        self.engine.ok_or_else(|| "review needs the knowledge base loaded (give --knowledge DIR)".to_string())
    }
}

/// Runs one request; the answer as JSON, or a one-line error.
pub fn handle<S: Store>(ctx: &Ctx<S>, req: &Request) -> Result<Value, String> {
    let store_error = |e: articlebot_engine::StoreError| ErrorChain(&e).to_string();
    match req {
        Request::Stats {} => json(&stats(ctx)?),
        Request::Unanswered { top } => json(&ctx.store.unanswered((*top).min(MAX_UNANSWERED)).map_err(store_error)?),
        Request::UnansweredGroups { top } => {
            let engine = ctx.engine.ok_or_else(|| "grouping needs the knowledge base loaded".to_string())?;
            json(&engine.unanswered_groups(*top).map_err(store_error)?)
        }
        Request::ExportLearned {} => json(&learned(ctx.store)?),
        Request::Proposals { min_users } => {
            let all = ctx.review_engine()?.proposals(*min_users).map_err(store_error)?;
            json(&all.iter().map(|p| view(ctx, p)).collect::<Vec<_>>())
        }
        Request::Accept { normalized, article, min_users } => {
            let engine = ctx.review_engine()?;
            let p = find(engine, normalized, *min_users)?;
            if *article != p.article && !p.alternatives.contains(article) {
                return Err(format!("`{article}` is neither the proposed article nor one of its alternatives"));
            }
            let done = engine.accept(&p, article, now_unix()).map_err(|e| ErrorChain(&e).to_string())?;
            json(&AcceptedView {
                question: p.question.clone(),
                article: article.clone(),
                file: done.file.display().to_string(),
                written: done.written,
                answers_now: done.answers_now,
            })
        }
        Request::Reject { normalized, article, min_users } => {
            let engine = ctx.review_engine()?;
            let p = find(engine, normalized, *min_users)?;
            if p.article != *article {
                return Err("that proposal changed meanwhile (another article is proposed now): list again".into());
            }
            engine.reject(&p, now_unix()).map_err(|e| ErrorChain(&e).to_string())?;
            Ok(Value::Null)
        }
        Request::Undo {} => json(&ctx.review_engine()?.undo().map_err(|e| ErrorChain(&e).to_string())?),
    }
}

fn json<T: Serialize>(v: &T) -> Result<Value, String> {
    serde_json::to_value(v).map_err(|e| format!("cannot encode the answer: {e}"))
}

/// The statistics as /stats shows them.
fn stats<S: Store>(ctx: &Ctx<S>) -> Result<StatsView, String> {
    let stats = ctx.store.stats(now_unix(), STATS_TOP).map_err(|e| ErrorChain(&e).to_string())?;
    let ids = stats.top_articles.iter().map(|(a, _)| a).chain(stats.feedback.iter().map(|(a, _, _)| a));
    let titles = ids.map(|id| (id.clone(), ctx.title(id))).collect();
    Ok(StatsView { stats, titles })
}

/// Every question added by review, oldest first.
fn learned<S: Store>(store: &S) -> Result<Vec<VerdictRecord>, String> {
    let mut v = store.verdicts().map_err(|e| ErrorChain(&e).to_string())?;
    v.retain(|v| v.verdict == articlebot_engine::Verdict::Added);
    v.sort_by_key(|v| v.seq);
    Ok(v)
}

/// The proposal of this question now: a step names it by its question, and the list may have
/// changed since it was shown (another reviewer, a user's new signal).
fn find<S: Store>(engine: &Engine<S>, normalized: &str, min_users: u64) -> Result<Proposal, String> {
    let all = engine.proposals(min_users).map_err(|e| ErrorChain(&e).to_string())?;
    all.into_iter()
        .find(|p| p.normalized == normalized)
        .ok_or_else(|| "that question is not proposed any more (decided meanwhile?): list again".to_string())
}

fn view<S: Store>(ctx: &Ctx<S>, p: &Proposal) -> ProposalView {
    ProposalView {
        normalized: p.normalized.clone(),
        question: p.question.clone(),
        article: ctx.titled(&p.article),
        evidence: p.evidence.clone(),
        alternatives: p.alternatives.iter().map(|a| ctx.titled(a)).collect(),
    }
}

/// What the console does with a value: reads it back into its type. The direct way goes
/// through JSON too, so both ways print from the same bytes.
pub fn read<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, String> {
    serde_json::from_value(v).map_err(|e| format!("an answer of an unexpected shape: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use articlebot_engine::{Intent, QuestionRecord, SledStore, Verdict};

    #[test]
    fn requests_are_tagged_lines_and_anything_else_is_refused() {
        let r: Request = serde_json::from_str(r#"{"cmd":"unanswered","top":5}"#).unwrap();
        assert_eq!(r, Request::Unanswered { top: 5 });
        assert_eq!(serde_json::from_str::<Request>(r#"{"cmd":"stats"}"#).unwrap(), Request::Stats {});
        assert_eq!(serde_json::to_string(&Request::ExportLearned {}).unwrap(), r#"{"cmd":"export-learned"}"#);
        for bad in [r#"{"cmd":"drop"}"#, r#"{"cmd":"stats","x":1}"#, r#"{"top":5}"#, "[]", "stats"] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
        let reply: Reply = serde_json::from_str(r#"{"error":"no"}"#).unwrap();
        assert_eq!(reply, Reply::Error("no".into()));
        assert!(serde_json::from_str::<Reply>(r#"{"ok":1,"error":"x"}"#).is_err());
    }

    #[test]
    fn a_store_alone_answers_the_readers_and_refuses_review_steps() {
        let store = SledStore::temporary().unwrap();
        let now = now_unix();
        let q = |n: &'static str, intent| QuestionRecord { normalized: n, example: n, intent, article: None, at: now };
        store.record_question(&q("bake bread", Intent::Unknown)).unwrap();
        store.record_question(&q("bake bread", Intent::Unknown)).unwrap();
        store.record_question(&q("knit", Intent::Unknown)).unwrap();
        let record = |seq, verdict| VerdictRecord {
            seq,
            normalized: "calves".into(),
            question: "calves".into(),
            article: "a".into(),
            verdict,
            at: 1,
            automatic: false,
        };
        store.add_verdict(&record(0, Verdict::Rejected)).unwrap();
        store.add_verdict(&record(0, Verdict::Added)).unwrap();
        let ctx = Ctx::store(&store, None);

        let stats: StatsView = read(handle(&ctx, &Request::Stats {}).unwrap()).unwrap();
        assert_eq!((stats.stats.questions_total, stats.stats.unknown_total), (3, 3));
        assert_eq!(stats.stats.days.last().map(|d| d.unknown), Some(3));
        let list: Vec<articlebot_engine::Unanswered> =
            read(handle(&ctx, &Request::Unanswered { top: 1 }).unwrap()).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!((list[0].example.as_str(), list[0].count), ("bake bread", 2), "most asked first");
        let learned: Vec<VerdictRecord> = read(handle(&ctx, &Request::ExportLearned {}).unwrap()).unwrap();
        assert_eq!(learned.len(), 1, "added ones only");
        assert_eq!(learned[0].verdict, Verdict::Added);
        let refused = handle(&ctx, &Request::Undo {}).unwrap_err();
        assert!(refused.contains("needs the knowledge base"), "{refused}");
    }
}
