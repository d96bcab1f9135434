//! The inverted index over a knowledge base. Two kinds of documents: articles (title, alternative
//! questions, keywords) and units (a section's heading and body, or a stub's teaser). Postings
//! hold precomputed BM25F contributions, so scoring a query is additions over the postings of its
//! terms and their fuzzy neighbours, never a scan of the knowledge base.
//!
//! Terms are stems (`run` and `running` are one term); synonym phrases ("warm up") are terms of
//! their own, indexed where they occur. Synonyms are expanded at query time, so each word keeps
//! its own weight. Every folded surface word maps to its term, so the index knows the term of any
//! word it has seen without stemming it again.

use std::collections::HashMap;

use super::fuzzy::{typo_cost, FuzzyIndex};
use super::normalize::{Analysis, Normalizer};
use crate::knowledge::{ArticleIdx, KnowledgeBase};

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
    surfaces: HashMap<Box<str>, TermId>,
    /// Surface words by id, for fuzzy lookups (ids are positions in the `FuzzyIndex`).
    surface_list: Vec<(Box<str>, TermId)>,
    stems: HashMap<Box<str>, TermId>,
    /// Stems in order, for finding words of one family by prefix.
    stem_list: Vec<(Box<str>, TermId)>,
    /// Term → the other members of its synonym groups.
    synonyms: HashMap<TermId, Vec<TermId>>,
    phrases: HashMap<[TermId; MAX_PHRASE], TermId>,
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
}

/// Per-unit term lists gathered in the first pass.
#[derive(Default)]
struct Pending {
    heading: Vec<Vec<TermId>>,
    body: Vec<Vec<TermId>>,
}

struct Builder<'a> {
    normalizer: &'a Normalizer,
    surfaces: HashMap<Box<str>, TermId>,
    stems: HashMap<Box<str>, TermId>,
    phrases: HashMap<[TermId; MAX_PHRASE], TermId>,
    n_terms: u32,
    analysis: Analysis,
    ids: Vec<(TermId, bool)>,
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
                let joined = format!("{}{}", analysis.surface(&analysis.words[i - 1]), analysis.surface(w));
                out.push(self.term_of_surface(&joined));
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

/// Term frequencies of a term list: sorted (term, count).
fn tf(terms: &[TermId], scratch: &mut Vec<TermId>) -> Vec<(TermId, u32)> {
    scratch.clear();
    scratch.extend_from_slice(terms);
    scratch.sort_unstable();
    let mut out: Vec<(TermId, u32)> = Vec::new();
    for &t in scratch.iter() {
        match out.last_mut() {
            Some((last, c)) if *last == t => *c += 1,
            _ => out.push((t, 1)),
        }
    }
    out
}

fn saturate(idf: f32, pseudo_tf: f32) -> f32 {
    idf * pseudo_tf * (K1 + 1.0) / (K1 + pseudo_tf)
}

impl Index {
    pub fn build(kb: &KnowledgeBase) -> Index {
        let normalizer = Normalizer::new(&kb.site.language);
        let mut b = Builder {
            normalizer: &normalizer,
            surfaces: HashMap::new(),
            stems: HashMap::new(),
            phrases: HashMap::new(),
            n_terms: 0,
            analysis: Analysis::default(),
            ids: Vec::new(),
        };
        let synonyms = register_synonyms(&mut b, kb);

        // Pass 1: term lists per field.
        let n_articles = kb.articles.len();
        let mut titles: Vec<Vec<Vec<TermId>>> = Vec::with_capacity(n_articles);
        let mut keywords: Vec<Vec<TermId>> = Vec::with_capacity(n_articles);
        let mut units = Vec::new();
        let mut article_units = Vec::with_capacity(n_articles);
        let mut pending = Pending::default();
        for (ai, a) in kb.articles.iter().enumerate() {
            let mut variants = Vec::with_capacity(1 + a.questions.len());
            for text in std::iter::once(&a.title).chain(a.questions.iter()) {
                let mut v = Vec::new();
                b.terms(text, &mut v);
                variants.push(v);
            }
            titles.push(variants);
            let mut kw = Vec::new();
            for k in &a.keywords {
                b.terms(k, &mut kw);
            }
            keywords.push(kw);
            let first = units.len() as u32;
            if a.sections.is_empty() {
                let mut body = Vec::new();
                if let Some(t) = &a.teaser {
                    b.terms(t, &mut body);
                }
                pending.heading.push(Vec::new());
                pending.body.push(body);
                units.push(Unit { article: ai as ArticleIdx, section: NO_SECTION });
            } else {
                for (si, s) in a.sections.iter().enumerate() {
                    let mut head = Vec::new();
                    if let Some(h) = &s.heading {
                        b.terms(h, &mut head);
                    }
                    let mut body = Vec::new();
                    b.terms(&s.text, &mut body);
                    pending.heading.push(head);
                    pending.body.push(body);
                    units.push(Unit { article: ai as ArticleIdx, section: si as u32 });
                }
            }
            article_units.push((first, units.len() as u32 - first));
        }

        // Document frequency counts articles, so a long article does not make its own words common.
        let n_terms = b.n_terms as usize;
        let mut df = vec![0u32; n_terms];
        let mut seen = vec![u32::MAX; n_terms];
        for (ai, &(first, count)) in article_units.iter().enumerate() {
            let mut mark = |t: TermId| {
                if seen[t as usize] != ai as u32 {
                    seen[t as usize] = ai as u32;
                    df[t as usize] += 1;
                }
            };
            titles[ai].iter().flatten().for_each(|&t| mark(t));
            keywords[ai].iter().for_each(|&t| mark(t));
            for u in first..first + count {
                pending.heading[u as usize].iter().for_each(|&t| mark(t));
                pending.body[u as usize].iter().for_each(|&t| mark(t));
            }
        }
        let n = n_articles.max(1) as f32;
        let idfs: Vec<f32> = df.iter().map(|&d| idf(n, d as f32)).collect();

        let avg = |lens: &mut dyn Iterator<Item = usize>| -> f32 {
            let (sum, count) = lens.fold((0usize, 0usize), |(s, c), l| (s + l, c + 1));
            if count == 0 { 1.0 } else { (sum as f32 / count as f32).max(1.0) }
        };
        let avg_title = avg(&mut titles.iter().flatten().map(Vec::len));
        let avg_body = avg(&mut pending.body.iter().map(Vec::len).filter(|&l| l > 0));

        // Pass 2: postings with their BM25F contribution.
        let mut scratch = Vec::new();
        let mut art_triples: Vec<(TermId, u32, f32)> = Vec::new();
        for ai in 0..n_articles {
            let mut best: HashMap<TermId, f32> = HashMap::new();
            for v in &titles[ai] {
                let norm = 1.0 - B_TITLE + B_TITLE * v.len() as f32 / avg_title;
                for (t, c) in tf(v, &mut scratch) {
                    let ptf = W_TITLE * c as f32 / norm;
                    let e = best.entry(t).or_insert(0.0);
                    *e = e.max(ptf);
                }
            }
            for (t, _) in tf(&keywords[ai], &mut scratch) {
                *best.entry(t).or_insert(0.0) += W_KEYWORD;
            }
            for (t, ptf) in best {
                art_triples.push((t, ai as u32, saturate(idfs[t as usize], ptf)));
            }
        }
        let mut unit_triples: Vec<(TermId, u32, f32)> = Vec::new();
        for u in 0..units.len() {
            let unit = units[u];
            let (_, count) = article_units[unit.article as usize];
            let pos = if unit.section == NO_SECTION { 0 } else { unit.section };
            let prior = if count > 1 { 1.0 + LEAD_PRIOR * (1.0 - pos as f32 / (count - 1) as f32) } else { 1.0 };
            let body = &pending.body[u];
            let norm = 1.0 - B_BODY + B_BODY * body.len() as f32 / avg_body;
            let mut ptf: HashMap<TermId, f32> = HashMap::new();
            for (t, c) in tf(&pending.heading[u], &mut scratch) {
                *ptf.entry(t).or_insert(0.0) += W_HEADING * c as f32;
            }
            for (t, c) in tf(body, &mut scratch) {
                *ptf.entry(t).or_insert(0.0) += W_BODY * c as f32 / norm;
            }
            for (t, p) in ptf {
                unit_triples.push((t, u as u32, prior * saturate(idfs[t as usize], p)));
            }
        }
        let mut terms: Vec<TermStats> =
            idfs.iter().zip(&df).map(|(&idf, &df)| TermStats { idf, df, ..Default::default() }).collect();
        let art_postings = csr(art_triples, &mut terms, |t| &mut t.art);
        let unit_postings = csr(unit_triples, &mut terms, |t| &mut t.unit);

        let mut title_pool = Vec::new();
        let mut title_variants = Vec::new();
        let mut title_variant_ranges = Vec::with_capacity(n_articles);
        for variants in &titles {
            let first = title_variants.len() as u32;
            for v in variants {
                let start = title_pool.len() as u32;
                let mut v = v.clone();
                v.sort_unstable();
                v.dedup();
                title_pool.extend_from_slice(&v);
                title_variants.push((start, v.len() as u32));
            }
            title_variant_ranges.push((first, title_variants.len() as u32 - first));
        }

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
            title_variants,
            title_variant_ranges,
            title_pool,
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
        self.surfaces
            .get(surface)
            .or_else(|| self.stems.get(&*self.normalizer.stem_word(surface)))
            .copied()
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
        (2..=MAX_PHRASE.min(ids.len())).rev().find_map(|len| self.phrases.get(&phrase_key(ids[..len].iter().copied())).map(|&t| (t, len)))
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
                out.push(Expansion { term: *term, weight: typo_weight(cost), typos: cost as u8 });
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
                out.push(Expansion { term: t, weight: FAMILY_WEIGHT, typos: 0 });
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

/// Sorts (term, doc, score) triples into one postings array with a range per term.
fn csr(
    mut triples: Vec<(TermId, u32, f32)>,
    terms: &mut [TermStats],
    range: impl Fn(&mut TermStats) -> &mut (u32, u32),
) -> Vec<Posting> {
    triples.sort_unstable_by_key(|x| (x.0, x.1));
    let mut out = Vec::with_capacity(triples.len());
    let mut i = 0;
    while i < triples.len() {
        let t = triples[i].0;
        let start = out.len() as u32;
        while i < triples.len() && triples[i].0 == t {
            out.push(Posting { doc: triples[i].1, score: triples[i].2 });
            i += 1;
        }
        *range(&mut terms[t as usize]) = (start, out.len() as u32 - start);
    }
    out
}

/// The built-in synonyms of a language (English only for now).
fn builtin_synonyms(language: &str) -> Vec<crate::knowledge::synonyms::SynonymGroup> {
    match language {
        "english" => crate::knowledge::synonyms::parse_synonyms(include_str!("synonyms/english.txt")).0.groups,
        _ => Vec::new(),
    }
}

/// Synonym groups: every member (a word, or a phrase indexed where it occurs) keeps its own
/// term, so a rare word keeps its weight; a query term is expanded to the other members of its
/// groups at query time. Returns term → synonym terms.
fn register_synonyms(b: &mut Builder, kb: &KnowledgeBase) -> HashMap<TermId, Vec<TermId>> {
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
    let mut synonyms: HashMap<TermId, Vec<TermId>> = HashMap::new();
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
