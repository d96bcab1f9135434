//! The semantic stage: every unit of meaning of the knowledge base embedded with a sentence
//! model (each title, each alternative question, each section with its heading, in overlapping
//! windows when long, each stub's title with its teaser), and an exact scan of a
//! question's vector against all of them, so that a paraphrase that shares no word with its
//! article still finds it.
//!
//! Vectors are kept as i8 with a scale per vector: a quarter of the memory of f32, and the scan
//! of 60,000 units takes about a millisecond; cosines come out within 0.01 of the exact ones.

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

pub(crate) struct Semantic {
    model: Arc<Model>,
    dim: usize,
    codes: Vec<i8>,
    scales: Vec<f32>,
    units: Vec<Unit>,
    /// Per article: its units, a range of `units`.
    article_units: Vec<(u32, u32)>,
    recent: Mutex<HashMap<u64, Arc<[f32]>>>,
}

impl std::fmt::Debug for Semantic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Semantic").field("model", &self.model).field("units", &self.units.len()).finish_non_exhaustive()
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
        let semantic = Semantic { model, dim, codes, scales, units, article_units, recent: Mutex::new(HashMap::new()) };
        Ok((semantic, report))
    }

    pub fn model(&self) -> &Arc<Model> {
        &self.model
    }

    pub fn unit_count(&self) -> usize {
        self.units.len()
    }

    /// Memory held by the vectors.
    pub fn heap_bytes(&self) -> usize {
        self.codes.len() + self.scales.len() * 4 + self.units.len() * std::mem::size_of::<Unit>()
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

    /// The cosine of the question (quantised) with unit `u`.
    fn cosine(&self, q: &[i8], q_scale: f32, u: usize) -> f32 {
        let v = &self.codes[u * self.dim..(u + 1) * self.dim];
        dot(q, v) as f32 * q_scale * self.scales[u]
    }

    /// Every article's similarity to the question, into `out` (article order).
    pub fn similarities(&self, q: &[i8], q_scale: f32, out: &mut Vec<ArticleSimilarity>) {
        out.clear();
        if q.len() != self.dim {
            return;
        }
        for (a, &(start, len)) in self.article_units.iter().enumerate() {
            let mut best = ArticleSimilarity {
                article: a as ArticleIdx,
                best: -1.0,
                section: NO_SECTION,
                title: -1.0,
                body: -1.0,
            };
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
            out.push(best);
        }
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
