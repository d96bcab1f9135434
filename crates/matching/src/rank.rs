//! Ranking one query: resolve its words to terms (exact, stem, synonym phrase, joined compound,
//! typo readings), add up postings into per-article and per-unit accumulators, then score the
//! best candidates on how much of the question they cover and how close the question is to
//! their title. Buffers live in a per-thread scratch, so a query allocates almost nothing.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

use super::index::{Expansion, Index, Posting, Reading, TermId, UnitIdx, W_TITLE};
use super::normalize::Analysis;
use articlebot_knowledge::ArticleIdx;

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
    /// What matching it says about the question being in scope: `matched_weight`, less for
    /// one of the most used words of the language ("life", "daily").
    pub evidence: f32,
    exp: (u32, u32),
}

/// Features of one candidate article with its best unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Candidate {
    pub article: ArticleIdx,
    pub unit: UnitIdx,
    /// Additive BM25F score (article fields + best unit).
    pub raw: f32,
    /// Share of the query's weight the article fields and the best unit match, 0..1.
    pub coverage: f32,
    /// Share of the query's weight the article fields and any of its units match, 0..1.
    pub article_coverage: f32,
    /// Term-overlap F1 between the question and the closest of title and alternative questions.
    pub title_sim: f32,
    pub title_p: f32,
    pub title_r: f32,
    /// Share of the query's weight the best unit alone matches.
    pub unit_coverage: f32,
    /// Evidence of the query words the article matches (their idf, common words discounted),
    /// in units of the weight of a word found in no article, so comparable across knowledge
    /// bases of any size.
    pub evidence: f32,
    /// Share of the query's weight matched by typo readings only.
    pub fuzzy_share: f32,
    /// `raw` over the score of a unit matching every known query word, 0..1.
    pub strength: f32,
    /// The lexical relevance, 0..1 (all of `score` without a semantic stage).
    pub lexical: f32,
    /// The best cosine of the question with the article's units; `NO_SIMILARITY` without a
    /// semantic stage.
    pub semantic: f32,
    /// The best cosine with its title and alternative questions, and with its body.
    pub semantic_title: f32,
    pub semantic_body: f32,
    /// Final relevance used for ordering and confidence, 0..1.
    pub score: f32,
    pub matched: u64,
}

/// `Candidate::semantic` when there is no semantic stage.
pub const NO_SIMILARITY: f32 = -2.0;

impl Candidate {
    /// An article only the semantic stage found: no word of the question matched it.
    pub(crate) fn semantic_only(article: ArticleIdx, unit: UnitIdx, similarity: f32) -> Candidate {
        Candidate {
            article,
            unit,
            raw: 0.0,
            coverage: 0.0,
            article_coverage: 0.0,
            title_sim: 0.0,
            title_p: 0.0,
            title_r: 0.0,
            unit_coverage: 0.0,
            evidence: 0.0,
            fuzzy_share: 0.0,
            strength: 0.0,
            lexical: 0.0,
            semantic: similarity,
            semantic_title: NO_SIMILARITY,
            semantic_body: NO_SIMILARITY,
            score: 0.0,
            matched: 0,
        }
    }
}

/// A document's running score and the query terms (bits) it matched. Kept together: adding a
/// posting reads and writes both, so one cache line serves it.
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    score: f32,
    mask: u64,
}

/// Per-document accumulators of one query, reset through the list of touched documents.
#[derive(Debug, Default)]
struct Acc {
    slots: Vec<Slot>,
    /// Documents with a non-zero mask, in the order first touched.
    touched: Vec<u32>,
    tmp: Vec<f32>,
    tmp_touched: Vec<u32>,
}

impl Acc {
    fn prepare(&mut self, n: usize) {
        if self.slots.len() == n {
            for &d in &self.touched {
                self.slots[d as usize] = Slot::default();
            }
        } else {
            // Another index (a reload): fresh buffers; the touched list belongs to the old one.
            self.slots = vec![Slot::default(); n];
            self.tmp = vec![0.0; n];
        }
        self.touched.clear();
    }

    fn score(&self, d: u32) -> f32 {
        self.slots[d as usize].score
    }

    fn mask(&self, d: u32) -> u64 {
        self.slots[d as usize].mask
    }

    /// Adds one query term's postings; several expansions of a term count once, at their best.
    fn add_term<'p>(&mut self, bit: u64, lists: impl Iterator<Item = (f32, &'p [Posting])> + Clone) {
        if lists.clone().nth(1).is_none() {
            if let Some((w, postings)) = lists.clone().next() {
                self.add_single(bit, w, postings);
            }
            return;
        }
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
            let slot = &mut self.slots[i];
            // `bit` is never 0, so a zero mask means untouched.
            if slot.mask == 0 {
                self.touched.push(d);
            }
            slot.score += self.tmp[i];
            slot.mask |= bit;
            self.tmp[i] = 0.0;
        }
    }

    /// `add_term` for a term read one way only (the usual case): a postings list holds each
    /// document once, so its best is its only value and the `tmp` pass can be skipped. The
    /// operations on each document are the same, so the sums are bit for bit the same.
    fn add_single(&mut self, bit: u64, w: f32, postings: &[Posting]) {
        self.touched.reserve(postings.len());
        for p in postings {
            let v = w * p.score;
            let slot = &mut self.slots[p.doc as usize];
            if slot.mask == 0 {
                self.touched.push(p.doc);
            }
            slot.score += if v > 0.0 { v } else { 0.0 };
            slot.mask |= bit;
        }
    }
}

/// What the query is made of, for confidence.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueryStats {
    pub terms: usize,
    /// Terms found in the index (exactly, by typo or by family).
    pub known: usize,
    pub total_weight: f32,
    pub known_weight: f32,
}

/// Reused buffers for one thread's queries.
#[derive(Debug, Default)]
pub struct Scratch {
    pub analysis: Analysis,
    pub terms: Vec<QueryTerm>,
    pub expansions: Vec<Expansion>,
    arts: Acc,
    units: Acc,
    agg: Vec<Agg>,
    articles: Vec<ArticleIdx>,
    shortlist: BinaryHeap<Shortlisted>,
    pub candidates: Vec<Candidate>,
    /// The semantic stage's buffers: the nearest articles, the scan's own, the question's
    /// codes, one article's section similarities.
    pub(crate) similarities: Vec<crate::semantic::ArticleSimilarity>,
    pub(crate) scan: crate::semantic::ScanScratch,
    pub(crate) query_codes: Vec<i8>,
    pub(crate) section_similarities: Vec<f32>,
    pub content_words: usize,
    reading: ReadBuffers,
}

/// Buffers `resolve_query` reuses between queries.
#[derive(Debug, Default)]
struct ReadBuffers {
    /// Per query word: its term when the index knows the word (or its stem), and which.
    exact: Vec<Option<(TermId, Reading)>>,
    exps: Vec<Expansion>,
    found: Vec<Expansion>,
    joined: String,
}

thread_local! {
    pub static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl Scratch {
    pub fn stats(&self) -> QueryStats {
        let mut q = QueryStats { terms: self.terms.len(), ..Default::default() };
        for t in &self.terms {
            q.total_weight += t.weight;
            if t.exp.1 > t.exp.0 {
                q.known += 1;
                q.known_weight += t.weight;
            }
        }
        q
    }

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
    let query = &query[..query.floor_char_boundary(MAX_QUERY_BYTES)];
    index.normalizer.analyze(query, &mut s.analysis);
    s.terms.clear();
    s.expansions.clear();
    s.content_words = 0;
    // The buffers are taken out of the scratch for the call, so they can be filled while the
    // scratch's analysis is read.
    let mut b = std::mem::take(&mut s.reading);
    let (exact, exps, found, joined) = (&mut b.exact, &mut b.exps, &mut b.found, &mut b.joined);
    let words = &s.analysis.words;
    exact.clear();
    exact.extend(words.iter().map(|w| index.exact_reading(s.analysis.surface(w))));
    let mut i = 0;
    while i < words.len() && s.terms.len() < MAX_QUERY_TERMS {
        let w = words[i];
        exps.clear();
        // Synonym phrases ("look for") first: they stand for their words.
        let mut window = [0; 3];
        let mut known = 0;
        for (slot, t) in window.iter_mut().zip(exact[i..].iter().map_while(|t| t.map(|(t, _)| t))) {
            *slot = t;
            known += 1;
        }
        if let Some((t, len)) = (known >= 2).then(|| index.phrase(&window[..known])).flatten() {
            add_with_synonyms(index, t, 1.0, 0, Reading::Phrase, exps);
            if !exps.is_empty() {
                push_term(index, &mut s.terms, &mut s.expansions, (w.start, words[i + len - 1].end), exps, 1.0, false);
                i += len;
                continue;
            }
        }
        // Two words written apart that the knowledge base writes as one ("git hub", "sit up"):
        // when the second is a stop word or unknown, the pair is one term; otherwise the joined
        // word is one more reading of the first.
        let mut also_joined = None;
        if i + 1 < words.len() && !w.bigram && !w.stop {
            joined.clear();
            joined.push_str(s.analysis.surface(&w));
            joined.push_str(s.analysis.surface(&words[i + 1]));
            if let Some(t) = index.exact_term(joined).filter(|&t| index.has_postings(t)) {
                let second_known = exact[i + 1].is_some_and(|(t, _)| index.has_postings(t));
                if words[i + 1].stop || !second_known {
                    add_with_synonyms(index, t, 1.0, 0, Reading::Joined, exps);
                    push_term(index, &mut s.terms, &mut s.expansions, (w.start, words[i + 1].end), exps, 1.0, false);
                    i += 2;
                    continue;
                }
                also_joined = Some(t);
            }
        }
        i += 1;
        if w.stop {
            continue;
        }
        let surface = s.analysis.surface(&w);
        if surface.chars().all(|c| c.is_numeric()) && exact[i - 1].is_none_or(|(t, _)| !index.has_postings(t)) {
            // An unknown number ("3 weeks") says nothing about the topic.
            continue;
        }
        s.content_words += 1;
        if let Some((t, how)) = exact[i - 1] {
            add_with_synonyms(index, t, 1.0, 0, how, exps);
        }
        if exps.is_empty() {
            found.clear();
            index.fuzzy_terms(surface, MAX_FUZZY, found);
            index.family_terms(surface, MAX_FUZZY, found);
            found.sort_by(|a, b| b.weight.total_cmp(&a.weight));
            found.truncate(MAX_FUZZY);
            for e in found.iter() {
                add_with_synonyms(index, e.term, e.weight, e.typos, e.how, exps);
            }
        }
        if let Some(t) = also_joined {
            add_with_synonyms(index, t, 1.0, 0, Reading::Joined, exps);
        }
        let factor = if index.normalizer.is_framing_word(surface) {
            weight::FRAMING
        } else if exps.is_empty() && index.normalizer.is_common_word(surface) {
            weight::UNKNOWN_COMMON
        } else {
            1.0
        };
        let common = index.normalizer.is_common_word(surface);
        push_term(index, &mut s.terms, &mut s.expansions, (w.start, w.end), exps, factor, common);
    }
    s.reading = b;
}

/// How much a synonym counts against the word the user wrote.
const SYNONYM_WEIGHT: f32 = 0.9;

/// Adds a reading of a word and its synonyms, those that occur in the knowledge base.
fn add_with_synonyms(index: &Index, t: TermId, weight: f32, typos: u8, how: Reading, out: &mut Vec<Expansion>) {
    let mut add = |term: TermId, weight: f32, how: Reading| {
        if !index.has_postings(term) {
            return;
        }
        match out.iter_mut().find(|e| e.term == term) {
            Some(e) if weight > e.weight => (e.weight, e.how) = (weight, how),
            Some(_) => {}
            None => out.push(Expansion { term, weight, typos, how }),
        }
    };
    add(t, weight, how);
    for &syn in index.synonyms(t) {
        add(syn, weight * SYNONYM_WEIGHT, Reading::Synonym);
    }
}

fn push_term(
    index: &Index,
    terms: &mut Vec<QueryTerm>,
    expansions: &mut Vec<Expansion>,
    (start, end): (u32, u32),
    exps: &[Expansion],
    factor: f32,
    common: bool,
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
    // A word weighs what its own term weighs; a word known only through synonyms or typo
    // readings weighs what its best reading does, discounted by how sure that reading is.
    let best =
        exps.iter().max_by(|x, y| (index.term(x.term).idf * x.weight).total_cmp(&(index.term(y.term).idf * y.weight)));
    let (weight, matched_weight) = match (exps.first(), best) {
        (Some(first), _) if first.weight >= 1.0 => (index.term(first.term).idf, index.term(first.term).idf),
        (_, Some(e)) => (index.term(e.term).idf, index.term(e.term).idf * e.weight),
        _ => (index.unknown_idf * weight::UNKNOWN, 0.0),
    };
    let a = expansions.len() as u32;
    expansions.extend_from_slice(exps);
    terms.push(QueryTerm {
        start,
        end,
        weight: weight * factor,
        matched_weight: matched_weight * factor,
        evidence: matched_weight * factor * if common { weight::COMMON_EVIDENCE } else { 1.0 },
        exp: (a, expansions.len() as u32),
    });
}

/// Scores the resolved query; fills `s.candidates` best first.
pub fn rank(index: &Index, s: &mut Scratch) {
    s.arts.prepare(index.article_count());
    s.units.prepare(index.units.len());
    s.candidates.clear();
    if s.terms.is_empty() {
        return;
    }
    accumulate(index, s);
    aggregate_units(index, s);
    let total_weight: f32 = s.terms.iter().map(|t| t.weight).sum::<f32>().max(1e-6);
    shortlist(s, total_weight);
    let mut cands = std::mem::take(&mut s.candidates);
    for p in &s.shortlist {
        cands.push(candidate(index, s, p, total_weight));
    }
    let max_raw = max_raw_score(index, s);
    for c in &mut cands {
        score(index, s, c, total_weight, max_raw);
    }
    cands.sort_unstable_by(by_score);
    s.candidates = cands;
}

/// Adds up the postings of every query term into the article and unit accumulators.
fn accumulate(index: &Index, s: &mut Scratch) {
    for (i, t) in s.terms.iter().enumerate() {
        let bit = 1u64 << i;
        let exps = &s.expansions[t.exp.0 as usize..t.exp.1 as usize];
        if exps.is_empty() {
            continue;
        }
        s.arts.add_term(bit, exps.iter().map(|e| (e.weight, index.article_postings(e.term))));
        s.units.add_term(bit, exps.iter().map(|e| (e.weight, index.unit_postings(e.term))));
    }
}

/// Per article: its best unit, and what all its units matched together (in `s.agg`); every
/// article touched at all goes to `s.articles`.
fn aggregate_units(index: &Index, s: &mut Scratch) {
    if s.agg.len() != index.article_count() {
        s.agg = vec![Agg::EMPTY; index.article_count()];
    }
    s.articles.clear();
    s.articles.extend_from_slice(&s.arts.touched);
    for &u in &s.units.touched {
        let a = index.units[u as usize].article;
        let sc = s.units.score(u);
        let slot = &mut s.agg[a as usize];
        if slot.unit == UnitIdx::MAX {
            if s.arts.mask(a) == 0 {
                s.articles.push(a);
            }
            *slot = Agg { unit: u, unit_score: sc, mask: s.units.mask(u) };
        } else {
            slot.mask |= s.units.mask(u);
            if sc > slot.unit_score {
                slot.unit = u;
                slot.unit_score = sc;
            }
        }
    }
}

/// An article that may make the shortlist, with what is needed to score it in full.
#[derive(Debug, Clone, Copy)]
struct Shortlisted {
    /// Coverage first, then raw score: a candidate matching more of the question beats one
    /// matching a single word many times.
    key: f32,
    article: ArticleIdx,
    agg: Agg,
}

/// Ordered worst last: higher key first, then (so that ties do not depend on the order articles
/// were touched in) lower article index. A max-heap of these has the worst on top.
impl Ord for Shortlisted {
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.total_cmp(&self.key).then(self.article.cmp(&other.article))
    }
}

impl PartialOrd for Shortlisted {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Shortlisted {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Shortlisted {}

/// Keeps the `SHORTLIST` best articles by `Shortlisted::key` in `s.shortlist`. A query can touch
/// most of the knowledge base, so this keeps a small heap of the best so far instead of sorting,
/// and computes only the key for the rest.
fn shortlist(s: &mut Scratch, total_weight: f32) {
    s.shortlist.clear();
    for &a in &s.articles {
        let agg = std::mem::replace(&mut s.agg[a as usize], Agg::EMPTY);
        let us = if agg.unit == UnitIdx::MAX { 0.0 } else { agg.unit_score };
        let raw = s.arts.score(a) + us;
        let article_coverage = masked_weight(&s.terms, s.arts.mask(a) | agg.mask) / total_weight;
        let entry = Shortlisted { key: article_coverage + raw * 0.01, article: a, agg };
        if s.shortlist.len() < SHORTLIST {
            s.shortlist.push(entry);
        } else if let Some(mut worst) = s.shortlist.peek_mut() {
            if entry < *worst {
                *worst = entry;
            }
        }
    }
}

/// The additive features of a shortlisted article.
fn candidate(index: &Index, s: &Scratch, p: &Shortlisted, total_weight: f32) -> Candidate {
    let (a, agg) = (p.article, p.agg);
    let (u, us, unit_mask) = if agg.unit == UnitIdx::MAX {
        (index.units_of(a).start, 0.0, 0)
    } else {
        (agg.unit, agg.unit_score, s.units.mask(agg.unit))
    };
    let art_mask = s.arts.mask(a);
    // A section that matched only words the title matched too has nothing to say about which
    // section was asked for: then the article's lead section answers.
    let shown = if unit_mask & !art_mask == 0 { index.units_of(a).start } else { u };
    Candidate {
        article: a,
        unit: shown,
        raw: s.arts.score(a) + us,
        coverage: masked_weight(&s.terms, art_mask | unit_mask) / total_weight,
        article_coverage: masked_weight(&s.terms, art_mask | agg.mask) / total_weight,
        title_sim: 0.0,
        title_p: 0.0,
        title_r: 0.0,
        unit_coverage: masked_weight(&s.terms, unit_mask) / total_weight,
        evidence: masked_sum(&s.terms, art_mask | agg.mask, |t| t.evidence) / index.unknown_idf,
        fuzzy_share: 0.0,
        strength: 0.0,
        lexical: 0.0,
        semantic: NO_SIMILARITY,
        semantic_title: NO_SIMILARITY,
        semantic_body: NO_SIMILARITY,
        score: 0.0,
        matched: art_mask | unit_mask,
    }
}

/// The final relevance of a shortlisted candidate.
fn score(index: &Index, s: &Scratch, c: &mut Candidate, total_weight: f32, max_raw: f32) {
    (c.title_sim, c.title_p, c.title_r) = title_similarity(index, s, c.article, total_weight);
    let fuzzy: f32 = s
        .terms
        .iter()
        .enumerate()
        .filter(|(i, t)| c.matched & (1 << i) != 0 && s.expansions_of(t).iter().all(|e| e.typos > 0))
        .map(|(_, t)| t.weight)
        .sum();
    c.fuzzy_share = fuzzy / total_weight;
    c.strength = (c.raw / max_raw).min(1.0);
    c.score = (weight::COVERAGE * c.coverage
        + weight::ARTICLE_COVERAGE * c.article_coverage
        + weight::TITLE_F1 * c.title_sim
        + weight::STRENGTH * c.strength
        + weight::TITLE_PRECISION * c.title_p
        + weight::TITLE_RECALL * c.title_r
        + weight::UNIT_COVERAGE * c.unit_coverage
        + weight::EVIDENCE * c.evidence.min(1.0))
    .clamp(0.0, 1.0);
    c.lexical = c.score;
}

/// Best first; exact ties go to the lower article index, so the order is total.
pub(crate) fn by_score(x: &Candidate, y: &Candidate) -> Ordering {
    y.score.total_cmp(&x.score).then(y.raw.total_cmp(&x.raw)).then(x.article.cmp(&y.article))
}

#[derive(Debug, Clone, Copy)]
struct Agg {
    unit: UnitIdx,
    unit_score: f32,
    mask: u64,
}

impl Agg {
    const EMPTY: Agg = Agg { unit: UnitIdx::MAX, unit_score: 0.0, mask: 0 };
}

/// Weights of the relevance score (0..1) of a candidate, fitted on question sets of two kinds
/// (a one-article page with its linked topics; a 125-page FAQ site) together with out-of-scope
/// questions, and kept few so they carry over to other sites.
mod weight {
    pub const COVERAGE: f32 = 0.22;
    pub const ARTICLE_COVERAGE: f32 = 0.05;
    pub const TITLE_F1: f32 = 0.31;
    pub const TITLE_PRECISION: f32 = 0.15;
    pub const TITLE_RECALL: f32 = 0.03;
    pub const UNIT_COVERAGE: f32 = 0.0;
    pub const STRENGTH: f32 = 0.05;
    pub const EVIDENCE: f32 = 0.18;
    /// An unknown word counts as a word found in no article: a question about something the
    /// knowledge base never mentions is out of scope...
    pub const UNKNOWN: f32 = 1.0;
    /// ...unless it is one of the most used words of the language: questions carry words like
    /// "started", "weeks", "wrong" that no article needs to contain.
    pub const UNKNOWN_COMMON: f32 = 0.5;
    /// A matched word among the most used of the language says this much about the question
    /// being in scope.
    pub const COMMON_EVIDENCE: f32 = 0.5;
    /// Share of its weight a question-framing word keeps.
    pub const FRAMING: f32 = 0.3;
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

/// The matched weight of the terms in `mask`, summed in term order (as `Iterator::sum` would,
/// from -0.0) but visiting only the set bits: this runs for every article a query touches.
fn masked_weight(terms: &[QueryTerm], mask: u64) -> f32 {
    masked_sum(terms, mask, |t| t.matched_weight)
}

fn masked_sum(terms: &[QueryTerm], mask: u64, f: impl Fn(&QueryTerm) -> f32) -> f32 {
    let mut sum = -0.0f32;
    let mut rest = mask;
    while rest != 0 {
        if let Some(t) = terms.get(rest.trailing_zeros() as usize) {
            sum += f(t);
        }
        rest &= rest - 1;
    }
    sum
}

/// F1 of query and title terms, idf-weighted, best over the title and alternative questions.
/// Returns (F1, precision, recall) of the best variant.
fn title_similarity(index: &Index, s: &Scratch, a: ArticleIdx, total_weight: f32) -> (f32, f32, f32) {
    let mut best = (0.0f32, 0.0f32, 0.0f32);
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
            let f1 = 2.0 * p * r / (p + r);
            if f1 > best.0 {
                best = (f1, p, r);
            }
        }
    }
    best
}
