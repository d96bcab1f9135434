//! The semantic stage: every unit of meaning of the knowledge base embedded with a sentence
//! model (each title, each alternative question, each section with its heading, in overlapping
//! windows when long, each stub's title with its teaser), and an exact scan of a
//! question's vector against all of them, so that a paraphrase that shares no word with its
//! article still finds it.
//!
//! Vectors are kept as i8 with a scale per vector: a quarter of the memory of f32; cosines come
//! out within 0.01 of the exact ones. In a large knowledge base, reading every unit's i8 vector
//! for every question costs more than the rest of the question's matching (81,000 units are
//! 31 MB), so above [`FIRST_PASS_ABOVE`] units a first pass compares one bit per dimension
//! (the sign of the vector less the mean of all units': 48 bytes a unit at 384 dimensions) and
//! only the units nearest by that pass are scored exactly. Articles the lexical stage proposes
//! are always scored exactly, over all their units.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use articlebot_embed::{Model, ModelError};
use articlebot_knowledge::{ArticleIdx, KnowledgeBase};

use crate::index::NO_SECTION;
use crate::vectors::{model_identity, text_key, VectorCache, WindowCache};

/// What a unit of the semantic index stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Title,
    Question,
    /// A section (or one window of a long one).
    Section,
    /// A stub's title and teaser.
    Teaser,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Unit {
    /// The section, or `NO_SECTION` for titles, questions and teasers.
    pub section: u32,
    pub kind: Kind,
}

/// How the semantic index was made.
#[derive(Debug, Clone, Default)]
pub struct SemanticReport {
    pub model: PathBuf,
    pub units: usize,
    /// Texts embedded now; the others came from the cache.
    pub embedded: usize,
    pub cached: usize,
    pub seconds: f64,
    pub cache_file: Option<PathBuf>,
    /// The cache file could not be read and was replaced.
    pub cache_ignored: bool,
    /// Saving the cache failed (the vectors are used anyway; they are made again next time).
    pub cache_error: Option<String>,
}

/// The similarity of a question to one article.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ArticleSimilarity {
    pub article: ArticleIdx,
    /// The best cosine over all its units.
    pub best: f32,
    /// Its best section (`NO_SECTION` when a title, question or teaser was best, or none).
    pub section: u32,
    /// The best cosine over its title and alternative questions...
    pub title: f32,
    /// ...and over its sections (or a stub's teaser).
    pub body: f32,
}

/// Questions remembered with their vectors: people ask the same things again and again.
const RECENT_QUERIES: usize = 4096;

/// Up to this many units every unit is scored exactly (it takes well under a millisecond); above
/// it the bit first pass picks the units to score.
pub const FIRST_PASS_ABOVE: usize = 16_384;
/// Units the first pass keeps for exact scoring: a sixteenth of all, and at least this many.
/// On the StackFAQ knowledge base (952 units) with the first pass forced, keeping an eighth
/// changes no decision of its 630 questions and a sixteenth one; at 81,000 units this keeps
/// 5,000, for the 20 nearest articles. Reading them is random access: at 81,000 units the
/// first pass takes 1.5–2 ms where the exact scan takes 2.5–3 (README, Speed).
const RESCORE_MIN: usize = 4096;
const RESCORE_SHARE: usize = 16;

/// How the units nearest to a question are found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scan {
    /// Exact up to [`FIRST_PASS_ABOVE`] units, the first pass above.
    #[default]
    Auto,
    /// Every unit scored exactly.
    Exact,
    /// The first pass whatever the size, keeping `1/share` of the units (at least `min`): for
    /// measuring the first pass on knowledge bases small enough to compare with the exact scan.
    FirstPass { share: usize, min: usize },
}

/// The semantic stage's buffers for one thread's questions.
#[derive(Debug, Default)]
pub(crate) struct ScanScratch {
    /// The question's sign bits.
    signs: Vec<u64>,
    /// Per unit: its bit distance to the question.
    distances: Vec<u16>,
    /// How many units are at each bit distance.
    histogram: Vec<u32>,
    /// Per article: its best exact cosine among the units kept (`UNSEEN` when none was).
    best: Vec<f32>,
    /// The articles with a unit kept.
    seen: Vec<ArticleIdx>,
    /// Every article's similarity, for the exact scan.
    all: Vec<ArticleSimilarity>,
}

const UNSEEN: f32 = -2.0;

pub(crate) struct Semantic {
    model: Arc<Model>,
    vectors: Vectors,
    recent: Mutex<HashMap<u64, Arc<[f32]>>>,
}

/// The units' vectors and what scans them: i8 codes with a scale each, and the sign bits of the
/// first pass.
#[derive(Debug)]
pub(crate) struct Vectors {
    dim: usize,
    codes: Vec<i8>,
    scales: Vec<f32>,
    units: Vec<Unit>,
    /// Per article: its units, a range of `units`.
    article_units: Vec<(u32, u32)>,
    /// Per unit: its article.
    unit_articles: Vec<ArticleIdx>,
    /// The mean of all units' vectors, which the sign bits are taken against: sentence vectors
    /// share a common direction, and signs around it say more about each one.
    mean: Vec<f32>,
    /// Per unit: `sign_words` words of sign bits.
    signs: Vec<u64>,
    sign_words: usize,
    scan: Scan,
}

impl std::fmt::Debug for Semantic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semantic")
            .field("model", &self.model)
            .field("units", &self.vectors.units.len())
            .finish_non_exhaustive()
    }
}

/// The texts to embed for a knowledge base, unit by unit.
/// Every unit of `kb` with its text, and each article's range of units. Sections are cut into
/// the model's windows, with the cuts known from `windows` where it has them; every section's
/// cuts go into `cuts` (hash of the section's text -> byte ranges) for the next start.
fn unit_texts(
    kb: &KnowledgeBase,
    model: &Model,
    windows: Option<&WindowCache>,
    cuts: &mut Vec<(u64, Vec<(usize, usize)>)>,
) -> (Vec<Unit>, Vec<String>, Vec<(u32, u32)>) {
    let mut units = Vec::new();
    let mut texts = Vec::new();
    let mut ranges = Vec::with_capacity(kb.articles.len());
    for a in &kb.articles {
        let first = units.len() as u32;
        let mut push = |kind, section, text: String| {
            units.push(Unit { section, kind });
            texts.push(text);
        };
        push(Kind::Title, NO_SECTION, a.title.clone());
        for q in &a.questions {
            push(Kind::Question, NO_SECTION, q.clone());
        }
        if let Some(teaser) = a.teaser.as_deref().filter(|_| a.is_stub()) {
            push(Kind::Teaser, NO_SECTION, format!("{}. {teaser}", a.title));
        }
        // Sections are cut into windows below, all at once on the model's threads.
        ranges.push((first, units.len() as u32 - first));
    }
    // A section stands on its own (with its heading): the title is a unit of its own, and a
    // title repeated in every section makes them all alike and worse at telling which section a
    // question is about.
    let bodies: Vec<String> = kb
        .articles
        .iter()
        .flat_map(|a| a.sections.iter())
        .map(|s| match &s.heading {
            Some(h) => format!("{h}. {}", s.text),
            None => s.text.clone(),
        })
        .collect();
    let mut spans: Vec<Option<Vec<(usize, usize)>>> =
        bodies.iter().map(|b| windows.and_then(|w| w.get(text_key(b), b))).collect();
    let unknown: Vec<usize> = (0..bodies.len()).filter(|&i| spans[i].is_none()).collect();
    let found = model.window_spans_of_all(&unknown.iter().map(|&i| bodies[i].as_str()).collect::<Vec<_>>(), 0);
    for (i, s) in unknown.into_iter().zip(found) {
        spans[i] = Some(s);
    }
    // Those that fit are kept too: knowing that took tokenizing most of them.
    for (b, s) in bodies.iter().zip(&spans) {
        if let Some(s) = s {
            cuts.push((text_key(b), s.clone()));
        }
    }
    let mut pieces = bodies
        .iter()
        .zip(spans)
        .map(|(b, s)| s.unwrap_or_default().into_iter().map(|(from, to)| b[from..to].to_string()).collect::<Vec<_>>());
    // Each article's units: its own (title, questions, teaser), then its sections' windows.
    let mut all_units = Vec::with_capacity(units.len() + bodies.len());
    let mut all_texts = Vec::with_capacity(units.len() + bodies.len());
    let mut all_ranges = Vec::with_capacity(ranges.len());
    let mut own_texts = texts.into_iter();
    for (a, &(first, len)) in kb.articles.iter().zip(&ranges) {
        let start = all_units.len() as u32;
        all_units.extend_from_slice(&units[first as usize..(first + len) as usize]);
        all_texts.extend(own_texts.by_ref().take(len as usize));
        for si in 0..a.sections.len() {
            for piece in pieces.next().unwrap_or_default() {
                all_units.push(Unit { section: si as u32, kind: Kind::Section });
                all_texts.push(piece);
            }
        }
        all_ranges.push((start, all_units.len() as u32 - start));
    }
    (all_units, all_texts, all_ranges)
}

/// Puts a vector for every text of `kb` into the cache in `cache_dir`, keyed as `model`'s own
/// would be but made from each text's hash, without running the model; returns how many. Only
/// the benchmark uses this, to measure a warm start and the scan of tens of thousands of units
/// whose real embedding takes an hour on a small machine; answers found with these vectors mean
/// nothing.
pub fn fill_cache_with_stand_ins(kb: &KnowledgeBase, model: &Model, cache_dir: &Path) -> std::io::Result<usize> {
    let id = model_identity(model)?;
    let mut cuts = Vec::new();
    let (_, texts, _) = unit_texts(kb, model, None, &mut cuts);
    let dim = model.dim();
    let (cache, _) = VectorCache::open(cache_dir, id, dim);
    WindowCache::open(cache_dir, id).save(cuts.iter().map(|(k, s)| (*k, s.as_slice())))?;
    let mut seen: HashMap<u64, ()> = HashMap::new();
    let mut keys = Vec::new();
    let mut vectors: Vec<f32> = Vec::new();
    for t in &texts {
        let key = text_key(t);
        if seen.insert(key, ()).is_some() {
            continue;
        }
        let mut state = key;
        let start = vectors.len();
        vectors.extend((0..dim).map(|_| {
            // splitmix64: well spread values from the key alone.
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        }));
        let norm = vectors[start..].iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        vectors[start..].iter_mut().for_each(|x| *x /= norm);
        keys.push(key);
    }
    cache.save(keys.iter().copied().zip(vectors.chunks_exact(dim)))?;
    Ok(keys.len())
}

/// The mean of the units' vectors and each unit's signs around it, `words` u64 a unit.
fn sign_bits(codes: &[i8], scales: &[f32], dim: usize) -> (Vec<f32>, Vec<u64>, usize) {
    let words = dim.div_ceil(64);
    let n = scales.len();
    let mut sum = vec![0f64; dim];
    for (v, &scale) in codes.chunks_exact(dim.max(1)).zip(scales) {
        for (s, &c) in sum.iter_mut().zip(v) {
            *s += f64::from(c) * f64::from(scale);
        }
    }
    let mean: Vec<f32> = sum.iter().map(|s| (s / n.max(1) as f64) as f32).collect();
    let mut signs = vec![0u64; n * words];
    for (u, (v, &scale)) in codes.chunks_exact(dim.max(1)).zip(scales).enumerate() {
        for (d, (&c, &m)) in v.iter().zip(&mean).enumerate() {
            if f32::from(c) * scale > m {
                signs[u * words + d / 64] |= 1 << (d % 64);
            }
        }
    }
    (mean, signs, words)
}

/// The bit distance of the question's signs `q` to every unit's, into `out`.
fn bit_distances(q: &[u64], signs: &[u64], out: &mut Vec<u16>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("popcnt") {
        // SAFETY: the CPU counts bits in one instruction, checked just above.
        return unsafe { bit_distances_popcnt(q, signs, out) };
    }
    bit_distances_portable(q, signs, out)
}

#[inline(always)]
fn bit_distances_portable(q: &[u64], signs: &[u64], out: &mut Vec<u16>) {
    out.clear();
    if q.is_empty() {
        return;
    }
    out.extend(
        signs.chunks_exact(q.len()).map(|u| u.iter().zip(q).map(|(a, b)| (a ^ b).count_ones()).sum::<u32>() as u16),
    );
}

/// The same loop with the CPU's bit count: the baseline x86-64 build counts bits in a dozen
/// instructions.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "popcnt")]
unsafe fn bit_distances_popcnt(q: &[u64], signs: &[u64], out: &mut Vec<u16>) {
    bit_distances_portable(q, signs, out)
}

/// A vector as i8 codes and the scale that gives them back.
fn quantize(v: &[f32], codes: &mut Vec<i8>) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    codes.extend(v.iter().map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8));
    scale
}

fn dot(a: &[i8], b: &[i8]) -> i32 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { dot_avx2(a, b) };
    }
    dot_portable(a, b)
}

#[inline(always)]
fn dot_portable(a: &[i8], b: &[i8]) -> i32 {
    // i16 products of i8 never overflow; the compiler turns this into widening multiply-adds.
    a.iter().zip(b).map(|(&x, &y)| i32::from(i16::from(x) * i16::from(y))).sum()
}

/// The same loop compiled for AVX2: the scan over every unit is most of a question's time in a
/// large knowledge base, and the baseline x86-64 build has only 128-bit vectors.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2(a: &[i8], b: &[i8]) -> i32 {
    dot_portable(a, b)
}

impl Semantic {
    /// Embeds the knowledge base (what the cache in `cache_dir` does not have yet) and indexes
    /// the vectors. `progress(done, total)` follows the texts that are embedded now.
    pub fn build(
        kb: &KnowledgeBase,
        model: Arc<Model>,
        cache_dir: Option<&Path>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(Semantic, SemanticReport), ModelError> {
        let started = Instant::now();
        let dim = model.dim();
        let identity = cache_dir.map(|_| model_identity(&model));
        let mut report = SemanticReport { model: model.dir().to_path_buf(), ..Default::default() };
        let windows = match (cache_dir, &identity) {
            (Some(dir), Some(Ok(id))) => Some(WindowCache::open(dir, *id)),
            _ => None,
        };
        let mut cuts = Vec::new();
        let (units, texts, article_units) = unit_texts(kb, &model, windows.as_ref(), &mut cuts);
        report.units = units.len();
        if let Some(w) = &windows {
            let known = cuts.iter().filter(|(k, s)| w.spans_equal(*k, s)).count();
            if known != cuts.len() || w.len() != cuts.len() {
                if let Err(e) = w.save(cuts.iter().map(|(k, s)| (*k, s.as_slice()))) {
                    report.cache_error = Some(format!("cannot save the window cuts to {}: {e}", w.path().display()));
                }
            }
        }
        let keys: Vec<u64> = texts.iter().map(|t| text_key(t)).collect();
        let cache = match (cache_dir, identity) {
            (Some(dir), Some(Ok(id))) => {
                let (cache, ignored) = VectorCache::open(dir, id, dim);
                report.cache_ignored = ignored;
                report.cache_file = Some(cache.path().to_path_buf());
                Some(cache)
            }
            (_, Some(Err(e))) => {
                report.cache_error = Some(format!("cannot read the model's files to key its vectors: {e}"));
                None
            }
            _ => None,
        };
        // Texts the cache lacks, each once.
        let mut missing: Vec<usize> = Vec::new();
        let mut seen: HashMap<u64, ()> = HashMap::new();
        for (i, &k) in keys.iter().enumerate() {
            if cache.as_ref().and_then(|c| c.get(k)).is_none() && seen.insert(k, ()).is_none() {
                missing.push(i);
            }
        }
        let to_embed: Vec<String> = missing.iter().map(|&i| texts[i].clone()).collect();
        let total = to_embed.len();
        progress(0, total);
        let fresh = model.embed_documents(&to_embed, &mut |done| progress(done, total))?;
        let fresh: HashMap<u64, &[f32]> =
            missing.iter().map(|&i| keys[i]).zip(fresh.iter().map(Vec::as_slice)).collect();
        report.embedded = fresh.len();
        let vector_of = |k: u64| -> &[f32] {
            fresh.get(&k).copied().or_else(|| cache.as_ref().and_then(|c| c.get(k))).unwrap_or(&[])
        };
        let mut codes = Vec::with_capacity(units.len() * dim);
        let mut scales = Vec::with_capacity(units.len());
        for &k in &keys {
            let v = vector_of(k);
            if v.len() == dim {
                scales.push(quantize(v, &mut codes));
            } else {
                // Cannot happen (every key is fresh or cached); a zero vector matches nothing.
                codes.extend(std::iter::repeat_n(0, dim));
                scales.push(0.0);
            }
        }
        report.cached = units.len() - keys.iter().filter(|k| fresh.contains_key(k)).count();
        if let Some(cache) = &cache {
            if report.embedded > 0 || cache.len() != fresh.len() + report.cached {
                let mut entries: Vec<(u64, &[f32])> = Vec::with_capacity(keys.len());
                let mut saved: HashMap<u64, ()> = HashMap::new();
                for &k in &keys {
                    if saved.insert(k, ()).is_none() {
                        entries.push((k, vector_of(k)));
                    }
                }
                if let Err(e) = cache.save(entries.into_iter()) {
                    report.cache_error = Some(format!("cannot save the vectors to {}: {e}", cache.path().display()));
                }
            }
        }
        report.seconds = started.elapsed().as_secs_f64();
        let vectors = Vectors::new(dim, codes, scales, units, article_units);
        let semantic = Semantic { model, vectors, recent: Mutex::new(HashMap::new()) };
        Ok((semantic, report))
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    pub fn vectors(&self) -> &Vectors {
        &self.vectors
    }

    /// How the nearest units are found from now on.
    pub fn set_scan(&mut self, scan: Scan) {
        self.vectors.scan = scan;
    }

    pub fn unit_count(&self) -> usize {
        self.vectors.units.len()
    }

    /// Memory held by the vectors.
    pub fn heap_bytes(&self) -> usize {
        let v = &self.vectors;
        v.codes.len()
            + v.scales.len() * 4
            + v.units.len() * std::mem::size_of::<Unit>()
            + v.unit_articles.len() * std::mem::size_of::<ArticleIdx>()
            + v.signs.len() * 8
            + v.mean.len() * 4
    }

    /// The question's vector, from the recent ones when it was asked before.
    pub fn query_vector(&self, text: &str) -> Result<Arc<[f32]>, ModelError> {
        let key = text_key(text);
        if let Some(v) = self.recent.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(v.clone());
        }
        let v: Arc<[f32]> = self.model.embed_query(text)?.into();
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        if recent.len() >= RECENT_QUERIES {
            // Forgetting all at once is as good as an LRU here and costs nothing per question.
            recent.clear();
        }
        recent.insert(key, v.clone());
        Ok(v)
    }

    /// The question's vector as i8 codes (into `codes`) and its scale.
    pub fn quantize_query(q: &[f32], codes: &mut Vec<i8>) -> f32 {
        codes.clear();
        quantize(q, codes)
    }
}

impl Vectors {
    /// Indexes unit vectors given as i8 codes (`dim` a unit) and their scales; `article_units`
    /// gives each article's range of `units`.
    pub fn new(dim: usize, codes: Vec<i8>, scales: Vec<f32>, units: Vec<Unit>, article_units: Vec<(u32, u32)>) -> Self {
        let mut unit_articles = vec![0; units.len()];
        for (a, &(start, len)) in article_units.iter().enumerate() {
            unit_articles[start as usize..(start + len) as usize].fill(a as ArticleIdx);
        }
        let (mean, signs, sign_words) = sign_bits(&codes, &scales, dim);
        Vectors { dim, codes, scales, units, article_units, unit_articles, mean, signs, sign_words, scan: Scan::Auto }
    }

    /// The cosine of the question (quantised) with unit `u`.
    fn cosine(&self, q: &[i8], q_scale: f32, u: usize) -> f32 {
        let v = &self.codes[u * self.dim..(u + 1) * self.dim];
        dot(q, v) as f32 * q_scale * self.scales[u]
    }

    /// One article's similarity to the question, over all its units.
    pub fn similarity(&self, q: &[i8], q_scale: f32, article: ArticleIdx) -> ArticleSimilarity {
        let mut best = ArticleSimilarity { article, best: -1.0, section: NO_SECTION, title: -1.0, body: -1.0 };
        let Some(&(start, len)) = self.article_units.get(article as usize) else { return best };
        if q.len() != self.dim {
            return best;
        }
        for u in start as usize..(start + len) as usize {
            let c = self.cosine(q, q_scale, u);
            if c > best.best {
                best.best = c;
                best.section = self.units[u].section;
            }
            match self.units[u].kind {
                Kind::Title | Kind::Question => best.title = best.title.max(c),
                Kind::Section | Kind::Teaser => best.body = best.body.max(c),
            }
        }
        best
    }

    /// The `k` articles nearest to the question (`q` as f32 and as its i8 codes), nearest
    /// first, into `out`, each with its exact similarity.
    pub fn nearest(
        &self,
        q: &[f32],
        codes: &[i8],
        q_scale: f32,
        k: usize,
        s: &mut ScanScratch,
        out: &mut Vec<ArticleSimilarity>,
    ) {
        out.clear();
        if q.len() != self.dim || codes.len() != self.dim || k == 0 {
            return;
        }
        let n = self.units.len();
        let keep = match self.scan {
            Scan::Exact => None,
            Scan::Auto if n <= FIRST_PASS_ABOVE => None,
            Scan::Auto => Some((n / RESCORE_SHARE).max(RESCORE_MIN)),
            Scan::FirstPass { share, min } => Some((n / share.max(1)).max(min)),
        };
        match keep {
            Some(keep) if keep < n => self.nearest_by_first_pass(q, codes, q_scale, k, keep, s, out),
            _ => {
                s.all.clear();
                s.all.extend((0..self.article_units.len()).map(|a| self.similarity(codes, q_scale, a as ArticleIdx)));
                top_k(&mut s.all, k);
                out.extend_from_slice(&s.all[..k.min(s.all.len())]);
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn nearest_by_first_pass(
        &self,
        q: &[f32],
        codes: &[i8],
        q_scale: f32,
        k: usize,
        keep: usize,
        s: &mut ScanScratch,
        out: &mut Vec<ArticleSimilarity>,
    ) {
        s.signs.clear();
        s.signs.resize(self.sign_words, 0);
        for (d, (&x, &m)) in q.iter().zip(&self.mean).enumerate() {
            if x > m {
                s.signs[d / 64] |= 1 << (d % 64);
            }
        }
        bit_distances(&s.signs, &self.signs, &mut s.distances);
        // The distance below which `keep` units lie, by counting: no sort of all units.
        s.histogram.clear();
        s.histogram.resize(self.sign_words * 64 + 1, 0);
        for &d in &s.distances {
            s.histogram[d as usize] += 1;
        }
        let mut within = 0usize;
        let mut limit = 0u16;
        for (d, &count) in s.histogram.iter().enumerate() {
            within += count as usize;
            limit = d as u16;
            if within >= keep {
                break;
            }
        }
        s.best.clear();
        s.best.resize(self.article_units.len(), UNSEEN);
        s.seen.clear();
        for (u, &d) in s.distances.iter().enumerate() {
            if d > limit {
                continue;
            }
            let a = self.unit_articles[u];
            let best = &mut s.best[a as usize];
            if *best == UNSEEN {
                s.seen.push(a);
            }
            *best = best.max(self.cosine(codes, q_scale, u));
        }
        // The nearest articles by their kept units, then each scored over all its units.
        let best = &s.best;
        let by_best = |x: &ArticleIdx, y: &ArticleIdx| best[*y as usize].total_cmp(&best[*x as usize]).then(x.cmp(y));
        let k = k.min(s.seen.len());
        if k > 0 {
            s.seen.select_nth_unstable_by(k - 1, by_best);
        }
        out.extend(s.seen[..k].iter().map(|&a| self.similarity(codes, q_scale, a)));
        out.sort_unstable_by(by_similarity);
    }

    /// The best cosine of each section of an article (`sections` long), for choosing the
    /// section to show.
    pub fn section_similarities(&self, q: &[i8], q_scale: f32, article: ArticleIdx, out: &mut Vec<f32>) {
        let Some(&(start, len)) = self.article_units.get(article as usize) else { return };
        for u in start as usize..(start + len) as usize {
            let unit = self.units[u];
            if unit.kind == Kind::Section {
                let s = unit.section as usize;
                if out.len() <= s {
                    out.resize(s + 1, -1.0);
                }
                out[s] = out[s].max(self.cosine(q, q_scale, u));
            }
        }
    }
}

/// Nearest first; the lower article first among equals.
pub(crate) fn by_similarity(x: &ArticleSimilarity, y: &ArticleSimilarity) -> std::cmp::Ordering {
    y.best.total_cmp(&x.best).then(x.article.cmp(&y.article))
}

/// The `k` nearest of `sims` first, in order.
fn top_k(sims: &mut [ArticleSimilarity], k: usize) {
    let k = k.min(sims.len());
    if k > 0 {
        sims.select_nth_unstable_by(k - 1, by_similarity);
        sims[..k].sort_unstable_by(by_similarity);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantised_cosines_are_close_to_exact_ones() {
        let a: Vec<f32> = (0..384).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
        let b: Vec<f32> = (0..384).map(|i| ((i * 53 % 89) as f32 - 44.0) / 44.0).collect();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        let (a, b): (Vec<f32>, Vec<f32>) =
            (a.iter().map(|x| x / norm(&a)).collect(), b.iter().map(|x| x / norm(&b)).collect());
        let exact: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        let (mut qa, mut qb) = (Vec::new(), Vec::new());
        let (sa, sb) = (quantize(&a, &mut qa), quantize(&b, &mut qb));
        let approx = dot(&qa, &qb) as f32 * sa * sb;
        assert!((approx - exact).abs() < 0.01, "{approx} vs {exact}");
        let mut zero = Vec::new();
        assert_eq!(quantize(&[0.0; 4], &mut zero), 1.0);
        assert_eq!(zero, vec![0; 4]);
    }

    #[test]
    fn bit_distances_count_the_signs_that_differ() {
        // Three units of 70 dimensions (two words of bits, the second partly used), the
        // second unit the first with 5 dimensions flipped.
        let dim = 70;
        let first: Vec<f32> = (0..dim).map(|i| if i % 3 == 0 { 0.5 } else { -0.25 }).collect();
        let mut second = first.clone();
        for i in [0, 1, 63, 64, 69] {
            second[i] = -second[i];
        }
        let third: Vec<f32> = first.iter().map(|x| -x).collect();
        let (mut codes, mut scales) = (Vec::new(), Vec::new());
        for v in [&first, &second, &third] {
            scales.push(quantize(v, &mut codes));
        }
        let (mean, signs, words) = sign_bits(&codes, &scales, dim);
        assert_eq!((words, signs.len(), mean.len()), (2, 6, dim));
        let q = &signs[..words];
        let mut d = Vec::new();
        bit_distances(q, &signs, &mut d);
        let mut portable = Vec::new();
        bit_distances_portable(q, &signs, &mut portable);
        assert_eq!(d, portable);
        assert_eq!(d[0], 0);
        assert!(d[1] > 0 && d[1] <= 5, "{d:?}");
        assert!(d[2] > d[1], "the opposite vector is farthest: {d:?}");
    }

    /// Deterministic values in -0.5..0.5.
    fn noise(state: &mut u64) -> f32 {
        *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }

    fn normalised(v: Vec<f32>) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        v.into_iter().map(|x| x / n).collect()
    }

    #[test]
    fn the_first_pass_finds_the_nearest_articles_of_a_large_knowledge_base() {
        // 2,600 articles of 8 units (20,800 units: above FIRST_PASS_ABOVE, so the default scan
        // takes the first pass), shaped like sentence vectors: a direction all share, subjects
        // of 26 articles each, each article a topic of its subject, its units the topic with
        // their own wording. The nearest articles after the asked one are then its subject's.
        let (dim, articles, per) = (384, 2600, 8);
        let mut state = 7;
        let shared: Vec<f32> = (0..dim).map(|_| noise(&mut state)).collect();
        let subjects: Vec<Vec<f32>> = (0..100).map(|_| (0..dim).map(|_| noise(&mut state)).collect()).collect();
        let mut topics = Vec::new();
        let (mut codes, mut scales, mut units, mut ranges) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for a in 0..articles {
            let subject = &subjects[a % subjects.len()];
            let topic: Vec<f32> = (0..dim).map(|d| noise(&mut state) + 0.8 * subject[d] + 0.6 * shared[d]).collect();
            for i in 0..per {
                let v = normalised(topic.iter().map(|t| t + 0.8 * noise(&mut state)).collect());
                scales.push(quantize(&v, &mut codes));
                units.push(Unit { section: i as u32, kind: Kind::Section });
            }
            ranges.push(((a * per) as u32, per as u32));
            topics.push(topic);
        }
        let mut exact = Vectors::new(dim, codes, scales, units, ranges);
        assert!(exact.units.len() > FIRST_PASS_ABOVE);
        let (mut s, mut auto_top, mut exact_top, mut q_codes) = (ScanScratch::default(), vec![], vec![], vec![]);
        let (mut same_first, mut same_five, mut overlap, asked) = (0, 0, 0, 200);
        for k in 0..asked {
            // A question about one topic, worded more loosely than its units.
            let topic = &topics[(k * 13) % articles];
            let q = normalised(topic.iter().map(|t| t + 1.2 * noise(&mut state)).collect());
            let q_scale = Semantic::quantize_query(&q, &mut q_codes);
            exact.scan = Scan::Auto;
            exact.nearest(&q, &q_codes, q_scale, 20, &mut s, &mut auto_top);
            exact.scan = Scan::Exact;
            exact.nearest(&q, &q_codes, q_scale, 20, &mut s, &mut exact_top);
            assert_eq!(exact_top.len(), 20);
            same_first += usize::from(auto_top[0] == exact_top[0]);
            same_five += usize::from(auto_top[..5] == exact_top[..5]);
            overlap += auto_top.iter().filter(|a| exact_top.iter().any(|e| e.article == a.article)).count();
        }
        assert_eq!(same_first, asked, "the nearest article, with its exact similarity");
        assert!(same_five >= asked * 98 / 100, "the five nearest in order: {same_five} of {asked}");
        assert!(overlap >= asked * 20 * 95 / 100, "of the 20 nearest: {overlap} of {}", asked * 20);
    }

    #[test]
    fn with_the_test_model_the_first_pass_finds_the_nearest_article() {
        let Some(dir) = articlebot_testkit::require_test_model("the semantic first pass") else { return };
        let model = Arc::new(Model::load(&dir, &articlebot_embed::ModelOptions::default()).unwrap());
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let kb = articlebot_knowledge::load(&root.join("knowledge")).unwrap().kb;
        let (mut semantic, _) = Semantic::build(&kb, model, None, &mut |_, _| {}).unwrap();
        let text = std::fs::read_to_string(root.join("tests/data/seed_questions.jsonl")).unwrap();
        let (mut s, mut exact, mut first, mut codes) = (ScanScratch::default(), vec![], vec![], vec![]);
        let (mut same, mut asked) = (0, 0);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let q: serde_json::Value = serde_json::from_str(line).unwrap();
            let v = semantic.query_vector(q["q"].as_str().unwrap()).unwrap();
            let scale = Semantic::quantize_query(&v, &mut codes);
            semantic.set_scan(Scan::Exact);
            semantic.vectors().nearest(&v, &codes, scale, 5, &mut s, &mut exact);
            // Half the units kept (19 of the shipped knowledge base's 38, all about running:
            // units this alike are the first pass's hardest case).
            semantic.set_scan(Scan::FirstPass { share: 2, min: 0 });
            semantic.vectors().nearest(&v, &codes, scale, 5, &mut s, &mut first);
            asked += 1;
            same += usize::from(exact.first() == first.first());
        }
        assert!(asked > 50 && semantic.unit_count() > 30);
        assert_eq!(same, asked, "the nearest article, with its exact similarity");
    }

    #[test]
    fn the_vector_dot_product_is_the_exact_one_at_the_extremes() {
        for len in [0, 1, 31, 384, 1000] {
            let a: Vec<i8> = (0..len).map(|i| if i % 3 == 0 { -127 } else { ((i * 71) % 255) as i8 }).collect();
            let b: Vec<i8> = (0..len).map(|i| if i % 2 == 0 { -127 } else { 127 }).collect();
            let exact: i64 = a.iter().zip(&b).map(|(&x, &y)| i64::from(x) * i64::from(y)).sum();
            assert_eq!(i64::from(dot(&a, &b)), exact, "length {len}");
            assert_eq!(i64::from(dot(&b, &b)), 127 * 127 * len as i64);
        }
    }
}
