//! Lexical and semantic evidence fused into the one relevance that orders the hits and is the
//! decision's confidence. The lexical ranking proposes articles that share words with the
//! question, the semantic stage those whose units mean the same; each candidate gets both
//! scores, and the fused one decides. Semantic nearness alone does not answer: "how do I bake
//! bread" is near some section of a fitness site; an answer needs words of the question found in
//! the article or a similarity that only a paraphrase reaches.

use articlebot_knowledge::ArticleIdx;

use crate::index::{Index, NO_SECTION};
use crate::rank::{by_score, Candidate, Scratch};
use crate::semantic::Semantic;

/// Articles the semantic stage adds to the lexical candidates.
const SEMANTIC_SHORTLIST: usize = 20;
/// Candidates whose shown section is chosen with the semantic stage too.
const SECTION_CHOICES: usize = 5;

/// The fusion's parameters for all-MiniLM-L6-v2, fitted on question sets of three kinds (a
/// one-article page with its 17 linked topics; a 125-page FAQ site, in five folds; each set's
/// questions asked of the other's knowledge base as out of scope), each value from the middle of
/// a plateau where the neighbouring values do as well.
pub(crate) mod weight {
    /// Cosine below which a unit says nothing (unrelated text is rarely below it)...
    pub const FLOOR: f32 = 0.20;
    /// ...and above which it is as sure as it gets.
    pub const CEILING: f32 = 0.85;
    /// Share of the fused relevance that is semantic.
    pub const SEMANTIC: f32 = 0.65;
    /// Share of the semantic part a stub keeps: it is known only by its title (and a teaser),
    /// and a title alike in words ("What sportswear should I wear for running?" for "what sports
    /// instead of running") is weaker evidence than a section that says what was asked.
    pub const STUB: f32 = 0.65;
    /// A similarity at which the question is taken as a paraphrase of the article even with
    /// little of its wording in the article.
    pub const PARAPHRASE: f32 = 0.55;
    /// A section whose similarity is this much above the lexically chosen one's is shown instead.
    pub const SECTION_SWITCH: f32 = 0.08;
}

/// Thresholds of the fused decision (the lexical ones are in `SiteConfig::matching`).
pub(crate) mod threshold {
    pub const ANSWER: f32 = 0.40;
    pub const SUGGEST: f32 = 0.25;
    /// A runner-up this close makes a did-you-mean when the best is below `CERTAIN` or the
    /// question is one or two words.
    pub const MARGIN: f32 = 0.02;
    pub const CERTAIN: f32 = 0.50;
    /// Least lexical evidence (see `Candidate::evidence`) for an answer that is no paraphrase.
    pub const EVIDENCE: f32 = 0.3;
}

/// The fused decision's thresholds.
pub(crate) fn limits() -> crate::Limits {
    crate::Limits {
        answer: threshold::ANSWER,
        suggest: threshold::SUGGEST,
        margin: threshold::MARGIN,
        certain: threshold::CERTAIN,
        evidence: threshold::EVIDENCE,
        paraphrase: Some(weight::PARAPHRASE),
    }
}

/// The semantic part of the relevance, 0..1.
pub(crate) fn semantic_part(cosine: f32) -> f32 {
    ((cosine - weight::FLOOR) / (weight::CEILING - weight::FLOOR)).clamp(0.0, 1.0)
}

/// The fused relevance of a candidate.
pub(crate) fn fused(index: &Index, c: &Candidate) -> f32 {
    let (lexical, semantic) = parts(index, c);
    (lexical + semantic).clamp(0.0, 1.0)
}

/// The lexical and the semantic share of a candidate's fused relevance, as weighted.
pub(crate) fn parts(index: &Index, c: &Candidate) -> (f32, f32) {
    let stub = index.units.get(c.unit as usize).is_some_and(|u| u.section == NO_SECTION);
    let semantic = semantic_part(c.semantic) * if stub { weight::STUB } else { 1.0 };
    ((1.0 - weight::SEMANTIC) * c.lexical, weight::SEMANTIC * semantic)
}

/// Adds the semantic evidence for the question (its vector `q`) to the lexical candidates in
/// `s.candidates`, adds the articles only the semantic stage found, scores all by the fused
/// relevance (best first) and lets the semantic stage help choose the shown section.
pub(crate) fn fuse(index: &Index, semantic: &Semantic, q: &[f32], s: &mut Scratch) {
    let q_scale = Semantic::quantize_query(q, &mut s.query_codes);
    for c in &mut s.candidates {
        let a = semantic.vectors().similarity(&s.query_codes, q_scale, c.article);
        (c.semantic, c.semantic_title, c.semantic_body) = (a.best, a.title, a.body);
    }
    // The nearest articles that the lexical ranking did not propose.
    semantic.vectors().nearest(q, &s.query_codes, q_scale, SEMANTIC_SHORTLIST, &mut s.scan, &mut s.similarities);
    for a in &s.similarities {
        if !s.candidates.iter().any(|c| c.article == a.article) {
            let mut c = Candidate::semantic_only(a.article, unit_of(index, a.article, a.section), a.best);
            (c.semantic_title, c.semantic_body) = (a.title, a.body);
            s.candidates.push(c);
        }
    }
    for c in &mut s.candidates {
        c.score = fused(index, c);
    }
    s.candidates.sort_unstable_by(by_score);
    for c in s.candidates.iter_mut().take(SECTION_CHOICES) {
        choose_section(index, semantic, &s.query_codes, q_scale, c, &mut s.section_similarities);
    }
}

/// The lexical unit of an article's section (its first unit for a stub or no section).
fn unit_of(index: &Index, article: ArticleIdx, section: u32) -> u32 {
    let units = index.units_of(article);
    if section == NO_SECTION || units.start + section >= units.end {
        units.start
    } else {
        units.start + section
    }
}

/// Shows the section the question is nearest to when the lexical ranking had no section of its
/// own to go by (it matched only title words, or no word), or when another section is clearly
/// nearer than the lexical choice. A question nearer to the article's title than to any section
/// is about the article as a whole: it keeps the lexical choice (the lead, for title words).
fn choose_section(index: &Index, semantic: &Semantic, q: &[i8], q_scale: f32, c: &mut Candidate, buf: &mut Vec<f32>) {
    buf.clear();
    semantic.vectors().section_similarities(q, q_scale, c.article, buf);
    let Some((best, &best_sim)) = buf.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0))) else {
        return;
    };
    if c.semantic_title >= best_sim {
        return;
    }
    let units = index.units_of(c.article);
    let current = (c.unit - units.start) as usize;
    let current_sim = buf.get(current).copied().unwrap_or(-1.0);
    let lexical_had_no_section = c.unit_coverage <= 0.0;
    if best != current && (lexical_had_no_section || best_sim - current_sim > weight::SECTION_SWITCH) {
        c.unit = units.start + best as u32;
    }
}
