//! Ranking one query: resolve its words to terms (exact, stem, synonym phrase, joined compound,
//! typo readings), add up postings into per-article and per-unit accumulators, then score the
//! best candidates on how much of the question they cover and how close the question is to
//! their title. Buffers live in a per-thread scratch, so a query allocates almost nothing.

use std::cell::RefCell;

use super::index::{Expansion, Index, Posting, TermId, UnitIdx, NO_SECTION, W_TITLE};
use super::normalize::Analysis;
use crate::knowledge::ArticleIdx;

/// Query words beyond this are ignored (a mask bit per word; nobody asks in more words).
pub const MAX_QUERY_TERMS: usize = 64;
/// Query text beyond this many bytes is ignored.
pub const MAX_QUERY_BYTES: usize = 2000;
/// Candidates scored in full after the additive pass.
const SHORTLIST: usize = 40;
/// Typo readings kept per word.
const MAX_FUZZY: usize = 3;

/// A content word of the query and the terms it was read as.
#[derive(Debug, Clone, Copy)]
pub struct QueryTerm {
    pub start: u32,
    pub end: u32,
    /// How much the word matters: the idf of what it matched, or the unknown-word weight.
    pub weight: f32,
    /// What matching it earns: `weight`, less for a typo reading.
    pub matched_weight: f32,
    exp: (u32, u32),
}

/// Features of one candidate article with its best unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub article: ArticleIdx,
    pub unit: UnitIdx,
    /// Additive BM25F score (article fields + best unit).
    pub raw: f32,
    /// Share of the query's weight this candidate matches, 0..1.
    pub coverage: f32,
    /// Term-overlap F1 between the question and the closest of title and alternative questions.
    pub title_sim: f32,
    /// Share of the query's weight matched by typo readings only.
    pub fuzzy_share: f32,
    /// Final relevance used for ordering and confidence, 0..1.
    pub score: f32,
    pub matched: u64,
}

#[derive(Debug, Default)]
struct Acc {
    score: Vec<f32>,
    mask: Vec<u64>,
    touched: Vec<u32>,
    tmp: Vec<f32>,
    tmp_touched: Vec<u32>,
}

impl Acc {
    fn prepare(&mut self, n: usize) {
        if self.score.len() != n {
            self.score = vec![0.0; n];
            self.mask = vec![0; n];
            self.tmp = vec![0.0; n];
        }
        for &d in &self.touched {
            self.score[d as usize] = 0.0;
            self.mask[d as usize] = 0;
        }
        self.touched.clear();
    }

    /// Adds one query term's postings; several expansions of a term count once, at their best.
    fn add_term<'p>(&mut self, bit: u64, lists: impl Iterator<Item = (f32, &'p [Posting])>) {
        self.tmp_touched.clear();
        for (w, postings) in lists {
            for p in postings {
                let v = w * p.score;
                let slot = &mut self.tmp[p.doc as usize];
                if *slot == 0.0 {
                    self.tmp_touched.push(p.doc);
                }
                if v > *slot {
                    *slot = v;
                }
            }
        }
        for &d in &self.tmp_touched {
            let i = d as usize;
            if self.mask[i] == 0 && self.score[i] == 0.0 {
                self.touched.push(d);
            }
            self.score[i] += self.tmp[i];
            self.mask[i] |= bit;
            self.tmp[i] = 0.0;
        }
    }
}

/// Reused buffers for one thread's queries.
#[derive(Debug, Default)]
pub struct Scratch {
    pub analysis: Analysis,
    pub terms: Vec<QueryTerm>,
    pub expansions: Vec<Expansion>,
    arts: Acc,
    units: Acc,
    best_unit: Vec<(UnitIdx, f32)>,
    pub candidates: Vec<Candidate>,
    pub smalltalk_words: usize,
    pub content_words: usize,
}

thread_local! {
    pub static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl Scratch {
    pub fn expansions_of(&self, t: &QueryTerm) -> &[Expansion] {
        &self.expansions[t.exp.0 as usize..t.exp.1 as usize]
    }

    /// Terms the query matched (any reading), for highlighting.
    pub fn matched_terms(&self, mask: u64) -> Vec<TermId> {
        let mut out = Vec::new();
        for (i, t) in self.terms.iter().enumerate() {
            if mask & (1 << i) != 0 {
                out.extend(self.expansions_of(t).iter().map(|e| e.term));
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// Reads the query's words as terms into `s.terms` / `s.expansions`.
pub fn resolve_query(index: &Index, query: &str, s: &mut Scratch) {
    let query = truncate(query, MAX_QUERY_BYTES);
    index.normalizer.analyze(query, &mut s.analysis);
    s.terms.clear();
    s.expansions.clear();
    s.content_words = 0;
    let words = &s.analysis.words;
    let mut exact: Vec<Option<TermId>> = Vec::with_capacity(words.len());
    for w in words {
        exact.push(index.exact_term(s.analysis.surface(w)));
    }
    let mut i = 0;
    let mut joined = String::new();
    while i < words.len() && s.terms.len() < MAX_QUERY_TERMS {
        let w = words[i];
        // Synonym phrases ("every day" = daily) first: they replace their words.
        if exact[i].is_some() && exact[i..].iter().take(3).all(Option::is_some) {
            let ids: Vec<TermId> = exact[i..].iter().take(3).map(|t| t.unwrap_or(0)).collect();
            if let Some((t, len)) = index.phrase(&ids) {
                if index.has_postings(t) {
                    push_term(index, &mut s.terms, &mut s.expansions, w.start, words[i + len - 1].end, &[Expansion { term: t, weight: 1.0, typos: 0 }]);
                    i += len;
                    continue;
                }
            }
        }
        // Two words written apart that the knowledge base writes as one ("git hub", "sit up").
        if i + 1 < words.len() && !(w.stop && words[i + 1].stop) && !w.bigram {
            joined.clear();
            joined.push_str(s.analysis.surface(&w));
            joined.push_str(s.analysis.surface(&words[i + 1]));
            if let Some(t) = index.exact_term(&joined).filter(|&t| index.has_postings(t)) {
                push_term(index, &mut s.terms, &mut s.expansions, w.start, words[i + 1].end, &[Expansion { term: t, weight: 1.0, typos: 0 }]);
                i += 2;
                continue;
            }
        }
        i += 1;
        if w.stop {
            continue;
        }
        let surface = s.analysis.surface(&w);
        if surface.chars().all(|c| c.is_numeric()) && exact[i - 1].is_none_or(|t| !index.has_postings(t)) {
            // An unknown number ("3 weeks") says nothing about the topic.
            continue;
        }
        s.content_words += 1;
        match exact[i - 1] {
            Some(t) if index.has_postings(t) => {
                push_term(index, &mut s.terms, &mut s.expansions, w.start, w.end, &[Expansion { term: t, weight: 1.0, typos: 0 }]);
            }
            _ => {
                let mut found = Vec::new();
                index.fuzzy_terms(surface, MAX_FUZZY, &mut found);
                push_term(index, &mut s.terms, &mut s.expansions, w.start, w.end, &found);
            }
        }
    }
}

fn push_term(
    index: &Index,
    terms: &mut Vec<QueryTerm>,
    expansions: &mut Vec<Expansion>,
    start: u32,
    end: u32,
    exps: &[Expansion],
) {
    // The same term twice ("knee knee", or "run" and "jog") counts once.
    if let [e] = exps {
        if terms.iter().any(|t| {
            let x = &expansions[t.exp.0 as usize..t.exp.1 as usize];
            x.len() == 1 && x[0].term == e.term
        }) {
            return;
        }
    }
    let best = exps.iter().max_by(|x, y| (index.term(x.term).idf * x.weight).total_cmp(&(index.term(y.term).idf * y.weight)));
    let (weight, matched_weight) = match best {
        Some(e) => (index.term(e.term).idf, index.term(e.term).idf * e.weight),
        None => (index.unknown_idf * UNKNOWN_WEIGHT, 0.0),
    };
    let a = expansions.len() as u32;
    expansions.extend_from_slice(exps);
    terms.push(QueryTerm { start, end, weight, matched_weight, exp: (a, expansions.len() as u32) });
}

/// An unknown word counts for this share of a never-seen word's idf: questions carry chatty words
/// the knowledge base cannot know ("started", "weeks") without being off topic.
const UNKNOWN_WEIGHT: f32 = 0.5;

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Scores the resolved query; fills `s.candidates` best first.
pub fn rank(index: &Index, s: &mut Scratch) {
    let n_articles = index.article_count();
    s.arts.prepare(n_articles);
    s.units.prepare(index.units.len());
    s.candidates.clear();
    if s.terms.is_empty() {
        return;
    }
    for (i, t) in s.terms.iter().enumerate() {
        let bit = 1u64 << i;
        let exps = &s.expansions[t.exp.0 as usize..t.exp.1 as usize];
        if exps.is_empty() {
            continue;
        }
        s.arts.add_term(bit, exps.iter().map(|e| (e.weight, index.article_postings(e.term))));
        s.units.add_term(bit, exps.iter().map(|e| (e.weight, index.unit_postings(e.term))));
    }

    // Best unit per article.
    if s.best_unit.len() != n_articles {
        s.best_unit = vec![(UnitIdx::MAX, 0.0); n_articles];
    }
    let mut articles: Vec<ArticleIdx> = s.arts.touched.clone();
    for &u in &s.units.touched {
        let a = index.units[u as usize].article;
        let sc = s.units.score[u as usize];
        let slot = &mut s.best_unit[a as usize];
        if slot.0 == UnitIdx::MAX {
            if s.arts.score[a as usize] == 0.0 && s.arts.mask[a as usize] == 0 {
                articles.push(a);
            }
            *slot = (u, sc);
        } else if sc > slot.1 {
            *slot = (u, sc);
        }
    }
    let total_weight: f32 = s.terms.iter().map(|t| t.weight).sum::<f32>().max(1e-6);
    let mut cands: Vec<Candidate> = Vec::with_capacity(articles.len());
    for &a in &articles {
        let (u, us) = match s.best_unit[a as usize] {
            (UnitIdx::MAX, _) => (index.units_of(a).start, 0.0),
            b => b,
        };
        s.best_unit[a as usize] = (UnitIdx::MAX, 0.0);
        let mask = s.arts.mask[a as usize] | if us > 0.0 { s.units.mask[u as usize] } else { 0 };
        cands.push(Candidate {
            article: a,
            unit: u,
            raw: s.arts.score[a as usize] + us,
            coverage: 0.0,
            title_sim: 0.0,
            fuzzy_share: 0.0,
            score: 0.0,
            matched: mask,
        });
    }
    // Shortlist on coverage first, then raw score: a candidate matching more of the question beats
    // one matching a single word many times.
    for c in &mut cands {
        c.coverage = masked_weight(&s.terms, c.matched) / total_weight;
    }
    cands.sort_unstable_by(|x, y| (y.coverage + y.raw * 0.01).total_cmp(&(x.coverage + x.raw * 0.01)));
    cands.truncate(SHORTLIST);
    let max_raw = max_raw_score(index, s);
    for c in &mut cands {
        c.title_sim = title_similarity(index, s, c.article, total_weight);
        let fuzzy: f32 = s
            .terms
            .iter()
            .enumerate()
            .filter(|(i, t)| c.matched & (1 << i) != 0 && s.expansions_of(t).iter().all(|e| e.typos > 0))
            .map(|(_, t)| t.weight)
            .sum();
        c.fuzzy_share = fuzzy / total_weight;
        let strength = (c.raw / max_raw).min(1.0);
        c.score = relevance(c.coverage, c.title_sim, strength);
    }
    cands.sort_unstable_by(|x, y| y.score.total_cmp(&x.score).then(y.raw.total_cmp(&x.raw)));
    s.candidates = cands;
}

/// Relevance in 0..1 from coverage, title similarity and BM25 strength.
fn relevance(coverage: f32, title_sim: f32, strength: f32) -> f32 {
    (0.55 * coverage + 0.3 * title_sim + 0.15 * strength).clamp(0.0, 1.0)
}

/// The score a unit would get matching every known query term in its title and body, for
/// scaling raw scores to 0..1.
fn max_raw_score(index: &Index, s: &Scratch) -> f32 {
    let sat = |ptf: f32| ptf * 2.2 / (1.2 + ptf);
    s.terms
        .iter()
        .filter(|t| t.exp.1 > t.exp.0)
        .map(|t| {
            let idf = s.expansions_of(t).iter().map(|e| index.term(e.term).idf).fold(0.0, f32::max);
            idf * (sat(W_TITLE) + sat(1.5))
        })
        .sum::<f32>()
        .max(1e-6)
}

fn masked_weight(terms: &[QueryTerm], mask: u64) -> f32 {
    terms.iter().enumerate().filter(|(i, _)| mask & (1 << i) != 0).map(|(_, t)| t.matched_weight).sum()
}

/// F1 of query and title terms, idf-weighted, best over the title and alternative questions.
fn title_similarity(index: &Index, s: &Scratch, a: ArticleIdx, total_weight: f32) -> f32 {
    let mut best = 0.0f32;
    for variant in index.title_variants(a) {
        let title_weight: f32 = variant.iter().map(|&t| index.term(t).idf).sum();
        if title_weight <= 0.0 {
            continue;
        }
        let mut q_matched = 0.0;
        let mut t_matched = 0.0;
        for qt in &s.terms {
            let mut hit: Option<(f32, TermId)> = None;
            for e in s.expansions_of(qt) {
                if variant.binary_search(&e.term).is_ok() && hit.is_none_or(|h| e.weight > h.0) {
                    hit = Some((e.weight, e.term));
                }
            }
            if let Some((w, t)) = hit {
                q_matched += qt.weight * w;
                t_matched += index.term(t).idf * w;
            }
        }
        let p = q_matched / total_weight;
        let r = (t_matched / title_weight).min(1.0);
        if p + r > 0.0 {
            best = best.max(2.0 * p * r / (p + r));
        }
    }
    best
}

/// Whether the unit is a stub teaser.
pub fn is_teaser(index: &Index, u: UnitIdx) -> bool {
    index.units[u as usize].section == NO_SECTION
}
