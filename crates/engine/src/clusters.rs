//! Unanswered questions grouped by what they ask: "bake bread", "how do I bake bread?" and
//! "bread baking" are one thing to write, and an admin reading the list wants the most asked
//! *thing* first, not the same question three times.

use std::collections::HashSet;

use articlebot_knowledge::{add_question, clean_question};

use crate::engine::Engine;
use crate::learning::{LearnError, Verdict, VerdictRecord};
use crate::library::Library;
use crate::store::{Store, StoreError, Unanswered};

/// Two questions sharing this share of their word stems (Jaccard) ask the same.
const SAME_WORDS: f32 = 0.5;
/// With a sentence model: two questions this similar (cosine) ask the same, in other words.
/// Measured with all-MiniLM-L6-v2 on StackFAQ's 630 rephrasings of 125 questions: 70 % of the
/// pairs of rephrasings of one question reach it, 0.06 % of the pairs of different questions
/// (0.70: 57 % and 0.03 %; 0.60: 82 % and 0.15 %).
const SAME_MEANING: f32 = 0.65;
/// Questions embedded for grouping, most asked first (the rest are grouped by words only), so
/// that `/unanswered` stays well under a second.
const EMBEDDED: usize = 200;

/// Questions that ask the same; the most asked first.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Cluster {
    pub questions: Vec<Unanswered>,
    /// Times any of them was asked.
    pub asked: u64,
}

impl Cluster {
    /// The most asked of its questions, which names the cluster.
    pub fn lead(&self) -> &Unanswered {
        &self.questions[0]
    }

    pub fn last_asked(&self) -> u64 {
        self.questions.iter().map(|q| q.last_asked).max().unwrap_or(0)
    }

    /// One line for a list: the lead, how often the cluster was asked, and up to `others` of
    /// its other questions.
    pub fn describe(&self, others: usize) -> String {
        let mut line =
            format!("{} — asked {}×, last {}", self.lead().example, self.asked, crate::date_of(self.last_asked()));
        let rest = &self.questions[1..];
        if !rest.is_empty() {
            let shown: Vec<String> =
                rest.iter().take(others).map(|q| format!("“{}” ({})", q.example, q.count)).collect();
            line.push_str("; also ");
            line.push_str(&shown.join(", "));
            if rest.len() > others {
                line.push_str(&format!(" and {} more", rest.len() - others));
            }
        }
        line
    }
}

fn jaccard(a: &[String], b: &[String]) -> f32 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut shared) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Equal => {
                shared += 1;
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
        }
    }
    shared as f32 / (a.len() + b.len() - shared) as f32
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na.sqrt() * nb.sqrt())
    }
}

/// Groups `list` (any order) by the matcher's word stems and, with a model, by meaning. Each
/// question joins the cluster of the first more asked question it asks the same as, so a
/// cluster is named by its most asked question and clusters never chain unrelated questions
/// through a middle one. Most asked clusters first.
pub fn cluster_unanswered(mut list: Vec<Unanswered>, lib: &Library) -> Vec<Cluster> {
    list.sort_by(|a, b| b.count.cmp(&a.count).then(b.last_asked.cmp(&a.last_asked)));
    let m = lib.matcher();
    let stems: Vec<Vec<String>> = list.iter().map(|u| m.word_stems(&u.example)).collect();
    let vectors: Vec<Option<std::sync::Arc<[f32]>>> = list
        .iter()
        .enumerate()
        .map(|(i, u)| if i < EMBEDDED { m.text_vector(&u.example).and_then(Result::ok) } else { None })
        .collect();
    // Per cluster: the index of its lead in `list`.
    let mut leads: Vec<usize> = Vec::new();
    let mut clusters: Vec<Cluster> = Vec::new();
    for (i, u) in list.iter().enumerate() {
        let same = |&lead: &usize| {
            let normalized_equal = list[lead].normalized == u.normalized;
            let words = jaccard(&stems[lead], &stems[i]) >= SAME_WORDS;
            let meaning = match (&vectors[lead], &vectors[i]) {
                (Some(a), Some(b)) => cosine(a, b) >= SAME_MEANING,
                _ => false,
            };
            normalized_equal || words || meaning
        };
        match leads.iter().position(same) {
            Some(c) => {
                clusters[c].asked += u.count;
                clusters[c].questions.push(u.clone());
            }
            None => {
                leads.push(i);
                clusters.push(Cluster { questions: vec![u.clone()], asked: u.count });
            }
        }
    }
    clusters.sort_by(|a, b| b.asked.cmp(&a.asked).then(b.last_asked().cmp(&a.last_asked())));
    clusters
}

/// Unanswered questions read for grouping, most asked first.
pub const GROUPED_FROM: usize = 500;

/// A group's id in buttons: a hash of its lead's normalised text (FNV-1a), so that a tap names
/// the group without carrying user text, and is found again among the groups of the moment.
pub fn group_id(c: &Cluster) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in c.lead().normalized.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x100000001b3);
    }
    h
}

/// What [`Engine::attach_group`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedGroup {
    /// Questions written into the article file (others were there already).
    pub written: usize,
    pub questions: usize,
    /// Of them, those the reloaded knowledge base answers with the article.
    pub answered_now: usize,
}

impl<S: Store> Engine<S> {
    /// The unanswered questions grouped, without those decided since: added to an article (by
    /// review or a group) or marked to write.
    pub fn unanswered_groups(&self, top: usize) -> Result<Vec<Cluster>, StoreError> {
        let decided: HashSet<String> = self
            .store()
            .verdicts()?
            .into_iter()
            .filter(|v| matches!(v.verdict, Verdict::Added | Verdict::ToWrite))
            .map(|v| v.normalized)
            .collect();
        let mut list = self.store().unanswered(GROUPED_FROM)?;
        list.retain(|u| !decided.contains(&u.normalized));
        let mut groups = cluster_unanswered(list, &self.library());
        groups.truncate(top);
        Ok(groups)
    }

    /// The group `id` among the current ones, `None` when it is gone (decided, or regrouped).
    pub fn unanswered_group(&self, id: u64) -> Result<Option<Cluster>, StoreError> {
        Ok(self.unanswered_groups(usize::MAX)?.into_iter().find(|c| group_id(c) == id))
    }

    /// The articles a group's questions most likely belong to: the matcher's best for its lead.
    pub fn group_choices(&self, c: &Cluster, max: usize) -> Vec<String> {
        let lib = self.library();
        let m = lib.matcher();
        let mut ids: Vec<String> = Vec::new();
        for h in m.decide(&c.lead().example, max * 2).hits {
            let id = &m.article(&h).id;
            if !ids.contains(id) {
                ids.push(id.clone());
            }
        }
        ids.truncate(max);
        ids
    }

    /// Adds every question of the group to `article`'s `questions`, as review's ✅ does for one
    /// (each recorded, a regression case, undoable one at a time), then reloads once.
    pub fn attach_group(&self, c: &Cluster, article: &str, now: u64) -> Result<AttachedGroup, LearnError> {
        let file = self.source_of(article)?;
        let mut written = 0;
        for q in &c.questions {
            if add_question(&file, &q.example)? {
                written += 1;
            }
            self.store().add_verdict(&VerdictRecord::added(&q.normalized, &q.example, article, now, false))?;
        }
        self.store().flush()?;
        tracing::info!(article, questions = c.questions.len(), written, "unanswered: group added to an article");
        self.reload().map_err(|source| LearnError::Reload { file: file.clone(), source })?;
        let answered_now = c.questions.iter().filter(|q| self.answers(&q.example, article)).count();
        Ok(AttachedGroup { written, questions: c.questions.len(), answered_now })
    }

    /// Puts the group on the to-do list ("write an article"): out of the unanswered list, each
    /// of its questions undoable with review's undo.
    pub fn mark_to_write(&self, c: &Cluster, now: u64) -> Result<(), LearnError> {
        for q in &c.questions {
            let record = VerdictRecord {
                seq: 0,
                normalized: q.normalized.clone(),
                question: clean_question(&q.example),
                article: String::new(),
                verdict: Verdict::ToWrite,
                at: now,
                automatic: false,
            };
            self.store().add_verdict(&record)?;
        }
        self.store().flush()?;
        tracing::info!(questions = c.questions.len(), "unanswered: group marked to write");
        Ok(())
    }

    /// The to-do list: questions marked "write an article", oldest first.
    pub fn to_write(&self) -> Result<Vec<VerdictRecord>, StoreError> {
        let mut v: Vec<VerdictRecord> =
            self.store().verdicts()?.into_iter().filter(|v| v.verdict == Verdict::ToWrite).collect();
        v.sort_by_key(|v| v.seq);
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Options;
    use std::path::Path;

    fn asked(example: &str, count: u64) -> Unanswered {
        Unanswered { normalized: example.to_lowercase(), count, last_asked: count, example: example.into() }
    }

    fn shipped() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge")
    }

    fn questions() -> Vec<Unanswered> {
        vec![
            asked("low cost plane tickets for Paris", 1),
            asked("bake bread", 3),
            asked("cheap flights to Paris", 2),
            asked("baking bread at home", 1),
            asked("How do I bake bread?", 2),
            asked("what is the capital of France", 1),
        ]
    }

    fn shown(clusters: &[Cluster]) -> Vec<(Vec<&str>, u64)> {
        clusters.iter().map(|c| (c.questions.iter().map(|q| q.example.as_str()).collect(), c.asked)).collect()
    }

    #[test]
    fn the_same_words_in_other_forms_are_one_cluster_named_by_the_most_asked() {
        let lib = Library::load(&shipped(), &Options { lexical_only: true, ..Options::default() }).unwrap().0;
        let c = cluster_unanswered(questions(), &lib);
        assert_eq!(
            shown(&c),
            [
                (vec!["bake bread", "How do I bake bread?", "baking bread at home"], 6),
                (vec!["cheap flights to Paris"], 2),
                (vec!["low cost plane tickets for Paris"], 1),
                (vec!["what is the capital of France"], 1),
            ]
        );
        assert!(cluster_unanswered(Vec::new(), &lib).is_empty());
    }

    #[test]
    fn with_a_model_the_same_question_in_other_words_joins_too() {
        let Some(model) = articlebot_testkit::require_test_model("clusters by meaning") else { return };
        let options = Options { model: Some(model), ..Options::default() };
        let lib = Library::load(&shipped(), &options).unwrap().0;
        let c = cluster_unanswered(questions(), &lib);
        assert_eq!(
            shown(&c),
            [
                (vec!["bake bread", "How do I bake bread?", "baking bread at home"], 6),
                (vec!["cheap flights to Paris", "low cost plane tickets for Paris"], 3),
                (vec!["what is the capital of France"], 1),
            ]
        );
    }
}
