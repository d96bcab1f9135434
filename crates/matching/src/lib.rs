//! Matching questions to the knowledge base: the second stage of articlebot's engine. It reads a
//! [`KnowledgeBase`] and knows nothing about conversations or front ends.
//!
//! Layout (private modules, the face re-exported below):
//! - `normalize`, `segment`: text folded (NFKC, case, accents) and cut into words, stop words
//!   marked, words stemmed;
//! - `index`: the inverted index (BM25F contributions of articles and units), synonyms, phrases;
//! - `fuzzy`: typo readings from a symmetric-delete index;
//! - `rank`: one query resolved to terms and scored into ranked candidates, in per-thread scratch;
//! - `smalltalk`: greetings, thanks and "who are you";
//! - `semantic`: every unit embedded with a sentence model (`articlebot-embed`), and the exact
//!   scan of a question's vector; `vectors`: the embedded texts cached on disk;
//! - `fusion`: lexical and semantic evidence fused into one relevance, and the decision on it;
//! - `snippet`: the shown text cropped around the matched words;
//! - `fxhash`: the hasher of the matcher's own tables.
//!
//! [`Matcher`] is the one entry point: it owns the knowledge base it indexes, so the two are
//! always swapped together, and [`Matcher::decide`] is the decision (answer, did-you-mean, small
//! talk, don't know) with a calibrated confidence.

mod decision;
mod fusion;
mod fuzzy;
mod fxhash;
mod index;
mod normalize;
mod rank;
mod segment;
mod semantic;
mod smalltalk;
mod snippet;
mod vectors;

#[cfg(test)]
mod explain_tests;
#[cfg(test)]
mod fuzz_tests;
#[cfg(test)]
mod quality_tests;

use serde::Serialize;

use std::path::Path;
use std::sync::Arc;

pub use articlebot_embed::{Model, ModelError, ModelOptions};
use articlebot_knowledge::{Article, ArticleIdx, KnowledgeBase};
pub use decision::{Limits, Rule};
use index::Index;
pub use index::{Reading, TermId};
pub use normalize::fold;
pub use rank::{Candidate, QueryStats};
use semantic::Semantic;
pub use semantic::{fill_cache_with_stand_ins, Scan, SemanticReport, FIRST_PASS_ABOVE};
pub use smalltalk::Smalltalk;
pub use snippet::Snippet;

/// A question of this many words or fewer whose two best articles tie is ambiguous ("calves"),
/// however well both match: the user is asked which one they mean.
pub(crate) const SHORT_QUERY_TERMS: usize = 2;

/// How one word of a question was read: the terms of the knowledge base it was found as.
#[derive(Debug, Clone, PartialEq)]
pub struct WordReading {
    pub word: String,
    /// Its weight in the question (rare words weigh more, framing words less).
    pub weight: f32,
    /// Term, how it was found, and the letters changed for a typo reading.
    pub readings: Vec<(String, Reading, u8)>,
}

impl std::fmt::Display for WordReading {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({:.2})=", self.word, self.weight)?;
        if self.readings.is_empty() {
            return f.write_str("?");
        }
        for (i, (term, how, typos)) in self.readings.iter().enumerate() {
            if i > 0 {
                f.write_str("|")?;
            }
            match how {
                Reading::Exact => write!(f, "{}", self.word)?,
                Reading::Typo => write!(f, "{term}:typo{typos}")?,
                how => write!(f, "{term}:{}", how.as_str())?,
            }
        }
        Ok(())
    }
}

/// What to do with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Intent {
    /// Answer with the best hit.
    Answer,
    /// Offer the best hits as "did you mean".
    Suggest,
    /// Greet, thank, explain the bot.
    Smalltalk,
    /// Out of scope: say so, never guess.
    Unknown,
}

impl Intent {
    pub const ALL: [Intent; 4] = [Intent::Answer, Intent::Suggest, Intent::Smalltalk, Intent::Unknown];

    /// The intent's name: in JSON output, logs, metrics, and in the database's counter keys
    /// (`total:answer`), so these words are a storage format and never change.
    pub fn as_str(self) -> &'static str {
        match self {
            Intent::Answer => "answer",
            Intent::Suggest => "suggest",
            Intent::Smalltalk => "smalltalk",
            Intent::Unknown => "unknown",
        }
    }
}

/// One ranked article with the section that matched best.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub article: ArticleIdx,
    /// `None` for a stub (its teaser matched).
    pub section: Option<usize>,
    /// Relevance in 0..1; the first hit's is the decision's confidence.
    pub score: f32,
    /// The lexical part: how well the question's words match, 0..1.
    pub lexical: f32,
    /// The semantic part: the best cosine of the question with the article's units (`None`
    /// without a model).
    pub semantic: Option<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub intent: Intent,
    pub smalltalk: Option<Smalltalk>,
    /// Calibrated confidence in the best hit, 0..1.
    pub confidence: f32,
    pub hits: Vec<Hit>,
    /// Terms the best hit matched, sorted; snippets bold the words that carry them.
    pub terms: Vec<TermId>,
    /// The ranking features of the hits, for `--explain` and tuning.
    pub features: Vec<rank::Candidate>,
    pub query: rank::QueryStats,
    /// The question as statistics merge it: its folded content words, or the folded text when
    /// it has none.
    pub normalized: String,
    /// Why the semantic stage could not take part (the decision is then the lexical one).
    pub semantic_error: Option<String>,
    /// The threshold rule that decided `intent`, and the thresholds it was taken with.
    pub rule: Rule,
    pub limits: Limits,
}

impl Decision {
    pub fn answered(&self) -> bool {
        self.intent == Intent::Answer
    }

    /// The rule that decided, in a sentence with its numbers.
    pub fn why(&self) -> String {
        let second = self.hits.get(1).map_or(0.0, |h| h.score);
        decision::describe(self.rule, self.features.first(), second, &self.limits)
    }
}

/// The content words of an analysed question, folded and joined by spaces; the folded text when
/// every word is a stop word.
fn normalized(analysis: &normalize::Analysis, text: &str) -> String {
    let mut out = String::new();
    for w in analysis.words.iter().filter(|w| !w.stop) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(analysis.surface(w));
    }
    if out.is_empty() {
        out = fold(text.trim());
    }
    out
}

/// The size of a matcher's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexSize {
    /// Distinct words and word forms.
    pub words: usize,
    pub postings: usize,
    /// Memory the index holds (approximately).
    pub heap_bytes: usize,
    /// Units embedded by the semantic stage, and the memory their vectors hold.
    pub vectors: usize,
    pub vector_bytes: usize,
}

/// Hands the memory freed while indexing back to the system. Building an index frees far more
/// than it keeps (tokenising, embedding, reading the vector cache), and glibc keeps freed heap
/// for reuse, so a process would otherwise stay at the build's peak for the rest of its life
/// (at 10,000 pages with a model: 367 MiB after indexing where 300 were in use).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns the allocator's free pages; no live allocation moves.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A knowledge base and its index, lexical and (with a model) semantic.
#[derive(Debug)]
pub struct Matcher {
    kb: KnowledgeBase,
    index: Index,
    semantic: Option<Semantic>,
}

impl Matcher {
    /// The lexical matcher.
    pub fn new(kb: KnowledgeBase) -> Self {
        let index = Index::build(&kb);
        release_freed_memory();
        Matcher { kb, index, semantic: None }
    }

    /// The hybrid matcher: lexical and semantic. What `cache_dir` holds for the model is not
    /// embedded again; `progress(done, total)` follows the texts that are.
    pub fn with_semantic(
        kb: KnowledgeBase,
        model: Arc<Model>,
        cache_dir: Option<&Path>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(Self, SemanticReport), ModelError> {
        let (semantic, report) = Semantic::build(&kb, model, cache_dir, progress)?;
        let index = Index::build(&kb);
        release_freed_memory();
        Ok((Matcher { kb, index, semantic: Some(semantic) }, report))
    }

    /// How the semantic stage finds the units nearest to a question (the default suits every
    /// size; the others are for measuring).
    pub fn set_scan(&mut self, scan: Scan) {
        if let Some(semantic) = &mut self.semantic {
            semantic.set_scan(scan);
        }
    }

    /// The sentence model, when matching is hybrid.
    pub fn model(&self) -> Option<&Arc<Model>> {
        self.semantic.as_ref().map(Semantic::model)
    }

    pub fn kb(&self) -> &KnowledgeBase {
        &self.kb
    }

    /// How big the index is: for `check` and the benchmark.
    pub fn index_size(&self) -> IndexSize {
        IndexSize {
            words: self.index.vocabulary_size(),
            postings: self.index.posting_count(),
            heap_bytes: self.index.heap_bytes(),
            vectors: self.semantic.as_ref().map_or(0, Semantic::unit_count),
            vector_bytes: self.semantic.as_ref().map_or(0, Semantic::heap_bytes),
        }
    }

    /// Decides what a message is and ranks up to `top` articles for it.
    pub fn decide(&self, query: &str, top: usize) -> Decision {
        let query_text = query;
        rank::SCRATCH.with(|cell| {
            let mut guard = cell.borrow_mut();
            let s = &mut *guard;
            rank::resolve_query(&self.index, query, s);
            let smalltalk = smalltalk::detect(&self.index.normalizer, query, &s.analysis);
            rank::rank(&self.index, s);
            let mut semantic_error = None;
            let mut fused = false;
            if let Some(semantic) = &self.semantic {
                match semantic.query_vector(query) {
                    Ok(q) => {
                        fusion::fuse(&self.index, semantic, &q, s);
                        fused = true;
                    }
                    Err(e) => semantic_error = Some(articlebot_knowledge::ErrorChain(&e).to_string()),
                }
            }
            let t = &self.kb.site.matching;
            let limits = if fused {
                fusion::limits()
            } else {
                Limits {
                    answer: t.answer,
                    suggest: t.suggest,
                    margin: t.margin,
                    certain: t.certain,
                    evidence: t.evidence,
                    paraphrase: None,
                }
            };
            let best = s.candidates.first().copied();
            let confidence = best.map_or(0.0, |c| c.score);
            let second = s.candidates.get(1).map_or(0.0, |c| c.score);
            let query = s.stats();
            let rule = decision::rule(best.as_ref(), second, smalltalk.is_some(), &query, s.terms.len(), &limits);
            let intent = rule.intent();
            let hits = s
                .candidates
                .iter()
                .take(top)
                .map(|c| {
                    let unit = self.index.units[c.unit as usize];
                    Hit {
                        article: c.article,
                        section: (unit.section != index::NO_SECTION).then_some(unit.section as usize),
                        score: c.score,
                        lexical: c.lexical,
                        semantic: fused.then_some(c.semantic),
                    }
                })
                .collect();
            Decision {
                intent,
                smalltalk: if intent == Intent::Smalltalk { smalltalk } else { None },
                confidence,
                hits,
                terms: best.map(|c| s.matched_terms(c.matched)).unwrap_or_default(),
                features: s.candidates.iter().take(top).copied().collect(),
                query,
                normalized: normalized(&s.analysis, query_text),
                semantic_error,
                rule,
                limits,
            }
        })
    }

    /// How the query's words were read, for `/why` and `--explain` (not the hot path): per
    /// content word, the terms it was found as and how.
    pub fn read_query(&self, query: &str) -> Vec<WordReading> {
        rank::SCRATCH.with(|cell| {
            let mut guard = cell.borrow_mut();
            let s = &mut *guard;
            rank::resolve_query(&self.index, query, s);
            s.terms
                .iter()
                .map(|t| WordReading {
                    word: query.get(t.start as usize..t.end as usize).unwrap_or("?").to_string(),
                    weight: t.weight,
                    readings: s
                        .expansions_of(t)
                        .iter()
                        .map(|e| (self.index.term_name(e.term), e.how, e.typos))
                        .collect(),
                })
                .collect()
        })
    }

    /// [`Matcher::read_query`] as `word(weight)=term:how|term:how` per word, `?` for a word the
    /// knowledge base does not have.
    pub fn describe_query(&self, query: &str) -> Vec<String> {
        self.read_query(query).iter().map(WordReading::to_string).collect()
    }

    /// What `/why` and `ask --explain` show: the rule that decided, how each word was read, and
    /// the parts of the best hits' relevance. A few lines per hit, so that `top` 3 fits one
    /// Telegram message.
    pub fn explain(&self, query: &str, d: &Decision, top: usize) -> String {
        use std::fmt::Write;
        let mut s = format!("decision: {}\n", d.why());
        let words: Vec<String> = self.describe_query(query);
        let _ = writeln!(
            s,
            "words: {}",
            if words.is_empty() { "(none the matcher reads)".into() } else { words.join(" ") }
        );
        for (i, c) in d.features.iter().take(top).enumerate() {
            let a = &self.kb.articles[c.article as usize];
            let unit = self.index.units[c.unit as usize];
            let place = if unit.section == index::NO_SECTION {
                "stub".to_string()
            } else {
                format!("section {}", unit.section + 1)
            };
            let _ = write!(s, "{}. {} ({place}): {:.2}", i + 1, a.title, c.score);
            if c.semantic > rank::NO_SIMILARITY {
                let (lexical, semantic) = fusion::parts(&self.index, c);
                let _ = write!(
                    s,
                    " = lexical {lexical:.2} + semantic {semantic:.2} (cosine {:.2}: title {:.2}, body {:.2})",
                    c.semantic, c.semantic_title, c.semantic_body
                );
            }
            let _ = writeln!(
                s,
                "\n   lexical {:.2}: coverage {:.2} (section {:.2}), title match {:.2}, evidence {:.2}, strength {:.2}, by typos {:.2}",
                c.lexical,
                c.coverage.max(0.0),
                c.unit_coverage.max(0.0),
                c.title_sim.max(0.0),
                c.evidence.max(0.0),
                c.strength.max(0.0),
                c.fuzzy_share.max(0.0)
            );
        }
        if let Some(e) = &d.semantic_error {
            let _ = writeln!(s, "the semantic stage failed: {e}");
        }
        s.truncate(s.trim_end().len());
        s
    }

    /// The stems of a text's content words, sorted and distinct: what two questions share when
    /// they ask the same in other word forms (grouping unanswered questions; not the hot path).
    pub fn word_stems(&self, text: &str) -> Vec<String> {
        let mut a = normalize::Analysis::default();
        self.index.normalizer.analyze(&text[..text.floor_char_boundary(rank::MAX_QUERY_BYTES)], &mut a);
        let mut stems: Vec<String> = a
            .words
            .iter()
            .filter(|w| !w.stop)
            .map(|w| self.index.normalizer.stem_word(a.surface(w)).into_owned())
            .collect();
        stems.sort_unstable();
        stems.dedup();
        stems
    }

    /// The sentence model's vector of a text, `None` without a model.
    pub fn text_vector(&self, text: &str) -> Option<Result<Arc<[f32]>, ModelError>> {
        self.semantic.as_ref().map(|s| s.query_vector(text))
    }

    /// The article of a hit.
    pub fn article(&self, hit: &Hit) -> &Article {
        &self.kb.articles[hit.article as usize]
    }

    /// The text a hit shows: its section, or a stub's teaser (or title when it has none).
    pub fn hit_text(&self, hit: &Hit) -> &str {
        let a = self.article(hit);
        match hit.section.and_then(|s| a.sections.get(s)) {
            Some(s) => &s.text,
            None => a.teaser.as_deref().unwrap_or(&a.title),
        }
    }

    /// The hit's text cropped to about `max_chars`, with `terms` marked.
    pub fn snippet(&self, hit: &Hit, terms: &[TermId], max_chars: usize) -> Snippet {
        rank::SCRATCH.with(|cell| {
            let mut s = cell.borrow_mut();
            snippet::snippet(&self.index, self.hit_text(hit), terms, max_chars, &mut s.analysis)
        })
    }
}
