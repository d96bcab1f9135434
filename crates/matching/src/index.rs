//! The inverted index over a knowledge base. Two kinds of documents: articles (title, alternative
//! questions, keywords) and units (a section's heading and body, or a stub's teaser). Postings
//! hold precomputed BM25F contributions, so scoring a query is additions over the postings of its
//! terms and their fuzzy neighbours, never a scan of the knowledge base.
//!
//! Terms are stems (`run` and `running` are one term); synonym phrases ("warm up") are terms of
//! their own, indexed where they occur. Synonyms are expanded at query time, so each word keeps
//! its own weight. Every folded surface word maps to its term, so the index knows the term of any
//! word it has seen without stemming it again.
//!
//! Building takes two passes: the first reads every field into pooled term lists (handing out
//! term ids in the order words are first seen, which keeps ids, and so results, the same from
//! run to run); the second turns them into postings with sorted merges and a counting sort,
//! without a hash map per document.

use super::fuzzy::{typo_cost, FuzzyIndex};
use super::fxhash::FxHashMap;
use super::normalize::{Analysis, Normalizer};
use articlebot_knowledge::{ArticleIdx, KnowledgeBase};

pub type TermId = u32;
pub type UnitIdx = u32;

/// Marks a unit that is a stub's teaser rather than a section.
pub const NO_SECTION: u32 = u32::MAX;

/// BM25 saturation.
const K1: f32 = 1.2;
/// Length normalisation for section bodies (sections are short: less than the usual 0.75) and for
/// titles (which vary less still).
const B_BODY: f32 = 0.5;
const B_TITLE: f32 = 0.3;
/// Field weights: a word in the title says more about the article than one in the body.
pub const W_TITLE: f32 = 2.5;
const W_KEYWORD: f32 = 2.0;
const W_HEADING: f32 = 1.5;
const W_BODY: f32 = 1.0;
/// Extra weight of an article's first section over its last, falling linearly between: the
/// lead of an article usually answers its title, the end summarises.
const LEAD_PRIOR: f32 = 0.2;
/// A section's match on a word of its article's title counts this much: every section of the
/// article shares the title, so such words should not decide between sections.
const TITLE_WORD_IN_SECTION: f32 = 0.5;
/// Shortest stem matched by word family.
const FAMILY_MIN: usize = 5;
/// A word of the same family counts for less than the word, or a typo of it.
const FAMILY_WEIGHT: f32 = 0.6;
/// Longest synonym phrase, in words.
const MAX_PHRASE: usize = 3;

#[derive(Debug, Clone, Copy)]
pub struct Posting {
    pub doc: u32,
    pub score: f32,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct TermStats {
    pub idf: f32,
    pub df: u32,
    art: (u32, u32),
    unit: (u32, u32),
}

/// A unit: what an answer points at.
#[derive(Debug, Clone, Copy)]
pub struct Unit {
    pub article: ArticleIdx,
    /// Section index within the article, or `NO_SECTION` for a stub's teaser.
    pub section: u32,
}

#[derive(Debug)]
pub struct Index {
    pub normalizer: Normalizer,
    surfaces: FxHashMap<Box<str>, TermId>,
    /// Surface words by id, for fuzzy lookups (ids are positions in the `FuzzyIndex`).
    surface_list: Vec<(Box<str>, TermId)>,
    stems: FxHashMap<Box<str>, TermId>,
    /// Stems in order, for finding words of one family by prefix.
    stem_list: Vec<(Box<str>, TermId)>,
    /// Term → the other members of its synonym groups.
    synonyms: FxHashMap<TermId, Vec<TermId>>,
    phrases: FxHashMap<[TermId; MAX_PHRASE], TermId>,
    phrase_starts: Vec<bool>,
    terms: Vec<TermStats>,
    art_postings: Vec<Posting>,
    unit_postings: Vec<Posting>,
    fuzzy: FuzzyIndex,
    pub units: Vec<Unit>,
    /// Per article: its units as a range of `units`.
    article_units: Vec<(u32, u32)>,
    /// Per article: ranges of `title_pool` holding the distinct terms of its title and of each
    /// alternative question.
    title_variants: Vec<(u32, u32)>,
    title_variant_ranges: Vec<(u32, u32)>,
    title_pool: Vec<TermId>,
    /// Query words per unknown term (weight given to a word the index has never seen).
    pub unknown_idf: f32,
}

/// How a query word was found in the index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Expansion {
    pub term: TermId,
    /// 1 for the word itself, its stem or a synonym; less for typo readings.
    pub weight: f32,
    pub typos: u8,
    pub how: Reading,
}

/// Which way of reading a word found a term: what `/why` and `ask --explain` tell a site owner
/// wondering why a question matched (or did not).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// The word as the knowledge base writes it.
    Exact,
    /// Another word with the same stem ("knees" for "knee").
    Stem,
    /// A word a few letters away ("jogign" for "jogging").
    Typo,
    /// A word of the same family by stem prefix ("defend" for "defense").
    Family,
    /// A synonym from the synonyms file, of the word or of one of its readings.
    Synonym,
    /// A synonym phrase of several words standing for one term ("look for").
    Phrase,
    /// Two words the knowledge base writes as one ("git hub" for "github").
    Joined,
}

impl Reading {
    pub fn as_str(self) -> &'static str {
        match self {
            Reading::Exact => "exact",
            Reading::Stem => "stem",
            Reading::Typo => "typo",
            Reading::Family => "family",
            Reading::Synonym => "synonym",
            Reading::Phrase => "phrase",
            Reading::Joined => "joined",
        }
    }
}

/// Term lists, one per document of a field, in one pool (a `Vec` per section would be tens of
/// thousands of allocations).
#[derive(Default)]
struct Lists {
    pool: Vec<TermId>,
    ranges: Vec<(u32, u32)>,
}

impl Lists {
    /// Adds a list: what `fill` appends to the pool.
    fn push_with(&mut self, fill: impl FnOnce(&mut Vec<TermId>)) {
        let start = self.pool.len();
        fill(&mut self.pool);
        self.ranges.push((start as u32, (self.pool.len() - start) as u32));
    }

    fn get(&self, i: usize) -> &[TermId] {
        let (s, l) = self.ranges[i];
        &self.pool[s as usize..(s + l) as usize]
    }

    fn len(&self) -> usize {
        self.ranges.len()
    }

    fn iter(&self) -> impl Iterator<Item = &[TermId]> {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// The term lists of every field, gathered in the first pass.
#[derive(Default)]
struct Gathered {
    /// One list per title and alternative question.
    titles: Lists,
    /// Per article: its range of `titles`.
    title_ranges: Vec<(u32, u32)>,
    /// Per article.
    keywords: Lists,
    /// Per unit.
    headings: Lists,
    bodies: Lists,
    units: Vec<Unit>,
    article_units: Vec<(u32, u32)>,
}

impl Gathered {
    fn title_variants(&self, a: usize) -> impl Iterator<Item = &[TermId]> {
        let (first, count) = self.title_ranges[a];
        (first..first + count).map(|v| self.titles.get(v as usize))
    }
}

struct Builder<'a> {
    normalizer: &'a Normalizer,
    surfaces: FxHashMap<Box<str>, TermId>,
    stems: FxHashMap<Box<str>, TermId>,
    phrases: FxHashMap<[TermId; MAX_PHRASE], TermId>,
    n_terms: u32,
    analysis: Analysis,
    ids: Vec<(TermId, bool)>,
    joined: String,
}

impl Builder<'_> {
    fn new_term(&mut self) -> TermId {
        let t = self.n_terms;
        self.n_terms += 1;
        t
    }

    fn term_of_stem(&mut self, stem: &str) -> TermId {
        if let Some(&t) = self.stems.get(stem) {
            return t;
        }
        let t = self.new_term();
        self.stems.insert(stem.into(), t);
        t
    }

    fn term_of_surface(&mut self, surface: &str) -> TermId {
        if let Some(&t) = self.surfaces.get(surface) {
            return t;
        }
        let stem = self.normalizer.stem_word(surface).into_owned();
        let t = self.term_of_stem(&stem);
        self.surfaces.insert(surface.into(), t);
        t
    }

    /// The terms of a text, stop words left out, with hyphenated compounds and synonym phrases
    /// added as terms of their own.
    fn terms(&mut self, text: &str, out: &mut Vec<TermId>) {
        let normalizer = self.normalizer;
        let mut analysis = std::mem::take(&mut self.analysis);
        normalizer.analyze(text, &mut analysis);
        self.ids.clear();
        for (i, w) in analysis.words.iter().enumerate() {
            let t = self.term_of_surface(analysis.surface(w));
            self.ids.push((t, w.stop));
            if !w.stop {
                out.push(t);
            }
            if w.hyphen_before && i > 0 {
                let mut joined = std::mem::take(&mut self.joined);
                joined.clear();
                joined.push_str(analysis.surface(&analysis.words[i - 1]));
                joined.push_str(analysis.surface(w));
                out.push(self.term_of_surface(&joined));
                self.joined = joined;
            }
        }
        if !self.phrases.is_empty() {
            for i in 0..self.ids.len() {
                for len in (2..=MAX_PHRASE.min(self.ids.len() - i)).rev() {
                    if let Some(&t) = self.phrases.get(&phrase_key(self.ids[i..i + len].iter().map(|x| x.0))) {
                        out.push(t);
                        break;
                    }
                }
            }
        }
        self.analysis = analysis;
    }

    /// Pass 1: the term lists of every field of every article. Term ids are handed out in the
    /// order words are first seen here.
    fn gather(&mut self, kb: &KnowledgeBase) -> Gathered {
        let mut g = Gathered::default();
        for (ai, a) in kb.articles.iter().enumerate() {
            let first_variant = g.titles.len() as u32;
            for text in std::iter::once(&a.title).chain(a.questions.iter()) {
                g.titles.push_with(|out| self.terms(text, out));
            }
            g.title_ranges.push((first_variant, g.titles.len() as u32 - first_variant));
            g.keywords.push_with(|out| a.keywords.iter().for_each(|k| self.terms(k, out)));
            let first = g.units.len() as u32;
            if a.sections.is_empty() {
                g.headings.push_with(|_| {});
                g.bodies.push_with(|out| a.teaser.iter().for_each(|t| self.terms(t, out)));
                g.units.push(Unit { article: ai as ArticleIdx, section: NO_SECTION });
            } else {
                for (si, sec) in a.sections.iter().enumerate() {
                    g.headings.push_with(|out| sec.heading.iter().for_each(|h| self.terms(h, out)));
                    g.bodies.push_with(|out| self.terms(&sec.text, out));
                    g.units.push(Unit { article: ai as ArticleIdx, section: si as u32 });
                }
            }
            g.article_units.push((first, g.units.len() as u32 - first));
        }
        g
    }
}

fn phrase_key(ids: impl Iterator<Item = TermId>) -> [TermId; MAX_PHRASE] {
    let mut k = [TermId::MAX; MAX_PHRASE];
    for (slot, id) in k.iter_mut().zip(ids) {
        *slot = id;
    }
    k
}

fn idf(n: f32, df: f32) -> f32 {
    (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
}

/// Term frequencies of a term list into `out`: sorted (term, count).
fn tf(terms: &[TermId], scratch: &mut Vec<TermId>, out: &mut Vec<(TermId, u32)>) {
    scratch.clear();
    scratch.extend_from_slice(terms);
    scratch.sort_unstable();
    out.clear();
    for &t in scratch.iter() {
        match out.last_mut() {
            Some((last, c)) if *last == t => *c += 1,
            _ => out.push((t, 1)),
        }
    }
}

fn saturate(idf: f32, pseudo_tf: f32) -> f32 {
    idf * pseudo_tf * (K1 + 1.0) / (K1 + pseudo_tf)
}

/// Document frequency counts articles, so a long article does not make its own words common.
fn document_frequencies(g: &Gathered, n_terms: usize) -> Vec<u32> {
    let mut df = vec![0u32; n_terms];
    let mut seen = vec![u32::MAX; n_terms];
    for (ai, &(first, count)) in g.article_units.iter().enumerate() {
        let mut mark = |t: TermId| {
            if seen[t as usize] != ai as u32 {
                seen[t as usize] = ai as u32;
                df[t as usize] += 1;
            }
        };
        g.title_variants(ai).flatten().for_each(|&t| mark(t));
        g.keywords.get(ai).iter().for_each(|&t| mark(t));
        for u in first..first + count {
            g.headings.get(u as usize).iter().for_each(|&t| mark(t));
            g.bodies.get(u as usize).iter().for_each(|&t| mark(t));
        }
    }
    df
}

/// Mean length of the lists, at least 1.
fn average(lens: impl Iterator<Item = usize>) -> f32 {
    let (sum, count) = lens.fold((0usize, 0usize), |(s, c), l| (s + l, c + 1));
    if count == 0 {
        1.0
    } else {
        (sum as f32 / count as f32).max(1.0)
    }
}

/// Pass 2 for articles: (term, article, BM25F contribution) of titles and keywords. A term
/// counts at its best title variant, plus a fixed amount when it is a keyword.
fn article_triples(g: &Gathered, idfs: &[f32]) -> Vec<(TermId, u32, f32)> {
    let avg_title = average(g.titles.iter().map(<[TermId]>::len));
    let (mut scratch, mut counts, mut keywords) = (Vec::new(), Vec::new(), Vec::new());
    let mut best: Vec<(TermId, f32)> = Vec::new();
    let mut out = Vec::new();
    for ai in 0..g.title_ranges.len() {
        best.clear();
        for v in g.title_variants(ai) {
            let norm = 1.0 - B_TITLE + B_TITLE * v.len() as f32 / avg_title;
            tf(v, &mut scratch, &mut counts);
            best.extend(counts.iter().map(|&(t, c)| (t, W_TITLE * c as f32 / norm)));
        }
        // Best variant per term: sort by term, keep the maximum (exact in any order).
        best.sort_unstable_by_key(|x| x.0);
        best.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 = kept.1.max(later.1);
            }
            same
        });
        tf(g.keywords.get(ai), &mut scratch, &mut keywords);
        merge_sorted(&best, &keywords, |t, title, keyword| {
            let mut ptf = title.unwrap_or(0.0);
            if keyword.is_some() {
                ptf += W_KEYWORD;
            }
            out.push((t, ai as u32, saturate(idfs[t as usize], ptf)));
        });
    }
    out
}

/// Pass 2 for units: (term, unit, BM25F contribution) of headings and bodies, with the lead
/// prior of the unit's position in its article.
fn unit_triples(g: &Gathered, idfs: &[f32]) -> Vec<(TermId, u32, f32)> {
    let avg_body = average(g.bodies.iter().map(<[TermId]>::len).filter(|&l| l > 0));
    let (mut scratch, mut heading, mut body) = (Vec::new(), Vec::new(), Vec::new());
    let mut out = Vec::new();
    for (u, unit) in g.units.iter().enumerate() {
        let (_, count) = g.article_units[unit.article as usize];
        let pos = if unit.section == NO_SECTION { 0 } else { unit.section };
        let prior = if count > 1 { 1.0 + LEAD_PRIOR * (1.0 - pos as f32 / (count - 1) as f32) } else { 1.0 };
        let title = g.title_variants(unit.article as usize).next().unwrap_or(&[]);
        let body_terms = g.bodies.get(u);
        let norm = 1.0 - B_BODY + B_BODY * body_terms.len() as f32 / avg_body;
        tf(g.headings.get(u), &mut scratch, &mut heading);
        tf(body_terms, &mut scratch, &mut body);
        merge_sorted(&heading, &body, |t, h, b| {
            let mut ptf = 0.0f32;
            if let Some(c) = h {
                ptf += W_HEADING * c as f32;
            }
            if let Some(c) = b {
                ptf += W_BODY * c as f32 / norm;
            }
            // Words of the article's own title say which article, not which of its sections.
            let own_title = if count > 1 && title.contains(&t) { TITLE_WORD_IN_SECTION } else { 1.0 };
            out.push((t, u as u32, own_title * prior * saturate(idfs[t as usize], ptf)));
        });
    }
    out
}

/// Walks two lists sorted by term, calling `f(term, value in a, value in b)` once per term.
fn merge_sorted<A: Copy, B: Copy>(
    a: &[(TermId, A)],
    b: &[(TermId, B)],
    mut f: impl FnMut(TermId, Option<A>, Option<B>),
) {
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(&(ta, va)), Some(&(tb, vb))) if ta == tb => {
                f(ta, Some(va), Some(vb));
                i += 1;
                j += 1;
            }
            (Some(&(ta, va)), Some(&(tb, _))) if ta < tb => {
                f(ta, Some(va), None);
                i += 1;
            }
            (Some(&(ta, va)), None) => {
                f(ta, Some(va), None);
                i += 1;
            }
            (_, Some(&(tb, vb))) => {
                f(tb, None, Some(vb));
                j += 1;
            }
            (None, None) => break,
        }
    }
}

/// Per article, the distinct sorted terms of its title and of each alternative question.
struct TitleTable {
    pool: Vec<TermId>,
    /// Per variant: its range of `pool`.
    variants: Vec<(u32, u32)>,
    /// Per article: its range of `variants`.
    per_article: Vec<(u32, u32)>,
}

fn title_table(g: &Gathered) -> TitleTable {
    let mut t = TitleTable {
        pool: Vec::new(),
        variants: Vec::with_capacity(g.titles.len()),
        per_article: Vec::with_capacity(g.title_ranges.len()),
    };
    let mut v: Vec<TermId> = Vec::new();
    for ai in 0..g.title_ranges.len() {
        let first = t.variants.len() as u32;
        for terms in g.title_variants(ai) {
            v.clear();
            v.extend_from_slice(terms);
            v.sort_unstable();
            v.dedup();
            t.variants.push((t.pool.len() as u32, v.len() as u32));
            t.pool.extend_from_slice(&v);
        }
        t.per_article.push((first, t.variants.len() as u32 - first));
    }
    t
}

impl Index {
    pub fn build(kb: &KnowledgeBase) -> Index {
        let normalizer = Normalizer::new(&kb.site.language);
        let mut b = Builder {
            normalizer: &normalizer,
            surfaces: FxHashMap::default(),
            stems: FxHashMap::default(),
            phrases: FxHashMap::default(),
            n_terms: 0,
            analysis: Analysis::default(),
            ids: Vec::new(),
            joined: String::new(),
        };
        let synonyms = register_synonyms(&mut b, kb);
        let g = b.gather(kb);

        let n_terms = b.n_terms as usize;
        let df = document_frequencies(&g, n_terms);
        let n = g.article_units.len().max(1) as f32;
        let idfs: Vec<f32> = df.iter().map(|&d| idf(n, d as f32)).collect();
        let mut terms: Vec<TermStats> =
            idfs.iter().zip(&df).map(|(&idf, &df)| TermStats { idf, df, ..Default::default() }).collect();
        let (art_triples, unit_triples, titles) =
            (article_triples(&g, &idfs), unit_triples(&g, &idfs), title_table(&g));
        // The term lists are done with: free them before the postings arrays are allocated, which
        // lowers the peak memory of a build by their size.
        let Gathered { units, article_units, .. } = g;
        let art_postings = csr(art_triples, &mut terms, |t| &mut t.art);
        let unit_postings = csr(unit_triples, &mut terms, |t| &mut t.unit);

        let mut phrase_starts = vec![false; n_terms];
        for k in b.phrases.keys() {
            phrase_starts[k[0] as usize] = true;
        }
        let mut surface_list: Vec<(Box<str>, TermId)> = b.surfaces.iter().map(|(s, &t)| (s.clone(), t)).collect();
        surface_list.sort_unstable();
        let fuzzy = FuzzyIndex::build(surface_list.iter().map(|(s, _)| &**s));
        let unknown_idf = idf(n, 0.0);
        let Builder { surfaces, stems, phrases, .. } = b;
        let mut stem_list: Vec<(Box<str>, TermId)> = stems.iter().map(|(s, &t)| (s.clone(), t)).collect();
        stem_list.sort_unstable();
        Index {
            normalizer,
            surfaces,
            surface_list,
            stems,
            stem_list,
            synonyms,
            phrases,
            phrase_starts,
            terms,
            art_postings,
            unit_postings,
            fuzzy,
            units,
            article_units,
            title_variants: titles.variants,
            title_variant_ranges: titles.per_article,
            title_pool: titles.pool,
            unknown_idf,
        }
    }

    pub fn term(&self, t: TermId) -> &TermStats {
        &self.terms[t as usize]
    }

    pub fn has_postings(&self, t: TermId) -> bool {
        let s = &self.terms[t as usize];
        s.art.1 > 0 || s.unit.1 > 0
    }

    pub fn article_postings(&self, t: TermId) -> &[Posting] {
        let (s, l) = self.terms[t as usize].art;
        &self.art_postings[s as usize..(s + l) as usize]
    }

    pub fn unit_postings(&self, t: TermId) -> &[Posting] {
        let (s, l) = self.terms[t as usize].unit;
        &self.unit_postings[s as usize..(s + l) as usize]
    }

    pub fn article_count(&self) -> usize {
        self.article_units.len()
    }

    pub fn units_of(&self, a: ArticleIdx) -> std::ops::Range<UnitIdx> {
        let (s, l) = self.article_units[a as usize];
        s..s + l
    }

    /// The distinct terms of an article's title and of each alternative question.
    pub fn title_variants(&self, a: ArticleIdx) -> impl Iterator<Item = &[TermId]> {
        let (first, count) = self.title_variant_ranges[a as usize];
        self.title_variants[first as usize..(first + count) as usize]
            .iter()
            .map(|&(s, l)| &self.title_pool[s as usize..(s + l) as usize])
    }

    pub fn term_of_surface(&self, surface: &str) -> Option<TermId> {
        self.surfaces.get(surface).copied()
    }

    /// The term of a word exactly as written, or through its stem.
    pub fn exact_term(&self, surface: &str) -> Option<TermId> {
        self.exact_reading(surface).map(|(t, _)| t)
    }

    /// The term of a word the index knows, and whether it knows the word itself or its stem.
    pub fn exact_reading(&self, surface: &str) -> Option<(TermId, Reading)> {
        match self.surfaces.get(surface) {
            Some(&t) => Some((t, Reading::Exact)),
            None => self.stems.get(&*self.normalizer.stem_word(surface)).map(|&t| (t, Reading::Stem)),
        }
    }

    /// The synonyms of a term (other members of its groups).
    pub fn synonyms(&self, t: TermId) -> &[TermId] {
        self.synonyms.get(&t).map_or(&[], Vec::as_slice)
    }

    /// The term a synonym phrase starting with these terms stands for.
    pub fn phrase(&self, ids: &[TermId]) -> Option<(TermId, usize)> {
        if ids.first().is_none_or(|&t| !self.phrase_starts.get(t as usize).copied().unwrap_or(false)) {
            return None;
        }
        (2..=MAX_PHRASE.min(ids.len()))
            .rev()
            .find_map(|len| self.phrases.get(&phrase_key(ids[..len].iter().copied())).map(|&t| (t, len)))
    }

    /// Typo readings of a word: the in-budget vocabulary words at the lowest cost, most common
    /// first, at most `max` of them, each as a term with postings.
    pub fn fuzzy_terms(&self, surface: &str, max: usize, out: &mut Vec<Expansion>) {
        let qlen = surface.chars().count();
        let mut best: Option<usize> = None;
        let start = out.len();
        self.fuzzy.candidates(surface, |id| {
            let (word, term) = &self.surface_list[id as usize];
            let Some(cost) = typo_cost(surface, word, qlen) else { return };
            if cost == 0 || !self.has_postings(*term) || best.is_some_and(|b| cost > b) {
                return;
            }
            if best.is_some_and(|b| cost < b) {
                out.truncate(start);
            }
            best = Some(cost);
            if !out[start..].iter().any(|e| e.term == *term) {
                out.push(Expansion { term: *term, weight: typo_weight(cost), typos: cost as u8, how: Reading::Typo });
            }
        });
        out[start..].sort_by(|a, b| self.terms[b.term as usize].df.cmp(&self.terms[a.term as usize].df));
        out.truncate(start + max.min(out.len() - start));
    }

    /// A readable name for a term: its shortest surface word (for explanations, not the hot path).
    pub fn term_name(&self, t: TermId) -> String {
        self.surface_list
            .iter()
            .filter(|(_, id)| *id == t)
            .map(|(s, _)| s)
            .min_by_key(|s| s.len())
            .map_or_else(|| format!("#{t}"), |s| s.to_string())
    }

    /// Words of the same family as an unknown word, found by stem prefix: one stem extends the
    /// other ("strike" / "strikethrough", "explos" / "explosiveness") or they differ only in
    /// the last letter ("defens" / "defend"). Stems of at least `FAMILY_MIN` letters only, since
    /// short prefixes are shared by unrelated words.
    pub fn family_terms(&self, surface: &str, max: usize, out: &mut Vec<Expansion>) {
        let stem = self.normalizer.stem_word(surface);
        let chars: Vec<(usize, char)> = stem.char_indices().collect();
        let n = chars.len();
        if n < FAMILY_MIN || stem.chars().any(|c| c.is_numeric()) {
            return;
        }
        let start = out.len();
        let push = |t: TermId, out: &mut Vec<Expansion>| {
            if self.has_postings(t) && !out[start..].iter().any(|e| e.term == t) {
                out.push(Expansion { term: t, weight: FAMILY_WEIGHT, typos: 0, how: Reading::Family });
            }
        };
        // Vocabulary stems that extend this one, or share all but its last letter.
        let base = &stem[..chars[n - 1].0];
        let from = self.stem_list.partition_point(|(s, _)| &**s < base);
        for (s, t) in self.stem_list[from..].iter().take(64) {
            if !s.starts_with(base) {
                break;
            }
            let extends = s.starts_with(&*stem) && s.len() > stem.len();
            let sibling = s.chars().count() == n && **s != *stem;
            if extends || sibling {
                push(*t, out);
            }
        }
        // Vocabulary stems this one extends.
        for &(i, _) in chars.iter().skip(FAMILY_MIN).rev() {
            if let Some(&t) = self.stems.get(&stem[..i]) {
                push(t, out);
                break;
            }
        }
        out[start..].sort_by(|a, b| self.terms[b.term as usize].df.cmp(&self.terms[a.term as usize].df));
        out.truncate(start + max.min(out.len() - start));
    }

    pub fn vocabulary_size(&self) -> usize {
        self.surfaces.len()
    }

    pub fn posting_count(&self) -> usize {
        self.art_postings.len() + self.unit_postings.len()
    }

    /// Approximate heap bytes held by the index, for the benchmark report.
    pub fn heap_bytes(&self) -> usize {
        let words: usize = self.surface_list.iter().map(|(s, _)| s.len()).sum();
        words * 3
            + self.surfaces.len() * 32
            + self.stems.len() * 40
            + self.surface_list.len() * 24
            + self.terms.len() * std::mem::size_of::<TermStats>()
            + self.posting_count() * std::mem::size_of::<Posting>()
            + self.fuzzy.len() * 16
            + self.units.len() * std::mem::size_of::<Unit>()
            + self.title_pool.len() * 4
    }
}

/// A typo reading counts for less than the word itself, so exact matches always rank first.
fn typo_weight(cost: usize) -> f32 {
    match cost {
        0 => 1.0,
        1 => 0.7,
        _ => 0.45,
    }
}

/// Groups (term, doc, score) triples into one postings array with a range per term, docs in
/// ascending order. The triples come with docs ascending per term (they are made document by
/// document), so a stable counting sort by term does it in linear time.
fn csr(
    triples: Vec<(TermId, u32, f32)>,
    terms: &mut [TermStats],
    range: impl Fn(&mut TermStats) -> &mut (u32, u32),
) -> Vec<Posting> {
    let mut next = vec![0u32; terms.len()];
    for &(t, _, _) in &triples {
        next[t as usize] += 1;
    }
    let mut start = 0u32;
    for (t, slot) in next.iter_mut().enumerate() {
        let count = *slot;
        if count > 0 {
            *range(&mut terms[t]) = (start, count);
        }
        *slot = start;
        start += count;
    }
    #[cfg(debug_assertions)]
    let starts = next.clone();
    let mut out = vec![Posting { doc: 0, score: 0.0 }; triples.len()];
    for (t, doc, score) in triples {
        let at = &mut next[t as usize];
        out[*at as usize] = Posting { doc, score };
        *at += 1;
    }
    #[cfg(debug_assertions)]
    debug_assert!(
        starts.iter().zip(&next).all(|(&a, &b)| {
            let list = &out[a as usize..b as usize];
            list.windows(2).all(|w| w[0].doc != w[1].doc)
        }),
        "one posting per term and doc"
    );
    out
}

/// The built-in synonyms of a language (English only for now).
fn builtin_synonyms(language: &str) -> Vec<articlebot_knowledge::SynonymGroup> {
    match language {
        "english" => articlebot_knowledge::parse_synonyms(include_str!("synonyms/english.txt")).0.groups,
        _ => Vec::new(),
    }
}

/// Synonym groups: every member (a word, or a phrase indexed where it occurs) keeps its own
/// term, so a rare word keeps its weight; a query term is expanded to the other members of its
/// groups at query time. Returns term → synonym terms.
fn register_synonyms(b: &mut Builder, kb: &KnowledgeBase) -> FxHashMap<TermId, Vec<TermId>> {
    let mut analysis = Analysis::default();
    let builtin = if kb.site.builtin_synonyms { builtin_synonyms(&kb.site.language) } else { Vec::new() };
    let mut groups: Vec<Vec<TermId>> = Vec::new();
    for g in builtin.iter().chain(kb.synonyms.groups.iter()) {
        let mut members = Vec::new();
        for term in &g.terms {
            b.normalizer.analyze(term, &mut analysis);
            let words: Vec<String> = analysis.words.iter().map(|w| analysis.surface(w).to_string()).collect();
            match words.len() {
                0 => {}
                1 => {
                    let word = &words[0];
                    let stem = b.normalizer.stem_word(word).into_owned();
                    // An over-stemmed word ("personalize" → "person") gets a term of its own,
                    // or its synonyms would attach to an unrelated everyday word.
                    let t = if word.chars().count() > stem.chars().count() + 4 {
                        let t = b.new_term();
                        b.surfaces.insert(word.as_str().into(), t);
                        t
                    } else {
                        b.term_of_surface(word)
                    };
                    members.push(t);
                }
                n if n <= MAX_PHRASE => {
                    let ids: Vec<TermId> = words.iter().map(|w| b.term_of_surface(w)).collect();
                    let key = phrase_key(ids.into_iter());
                    let t = match b.phrases.get(&key) {
                        Some(&t) => t,
                        None => {
                            let t = b.new_term();
                            b.phrases.insert(key, t);
                            t
                        }
                    };
                    members.push(t);
                }
                _ => {}
            }
        }
        members.sort_unstable();
        members.dedup();
        groups.push(members);
    }
    let mut synonyms: FxHashMap<TermId, Vec<TermId>> = FxHashMap::default();
    for g in &groups {
        for &t in g {
            let list = synonyms.entry(t).or_default();
            list.extend(g.iter().copied().filter(|&o| o != t));
        }
    }
    for list in synonyms.values_mut() {
        list.sort_unstable();
        list.dedup();
    }
    synonyms
}
