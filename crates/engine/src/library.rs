//! A knowledge dir loaded and indexed, with what the conversation derives from it (backlinks,
//! the topic list, the articles to offer first): what the engine serves and swaps on reload.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use articlebot_knowledge::{ArticleIdx, Diagnostic, KbStats, KnowledgeBase, LoadError};
use articlebot_matching::{Matcher, Model, ModelError, ModelOptions, SemanticReport};

use crate::reply::{EmbedProgress, Options};

/// Why a knowledge dir cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The dir is missing, or has errors (the message lists them).
    #[error(transparent)]
    Knowledge(#[from] LoadError),
    #[error("the sentence model {} cannot be used", dir.display())]
    Model {
        dir: PathBuf,
        #[source]
        source: Box<ModelError>,
    },
}

/// The sentence model last loaded, kept across reloads: loading it takes longer than matching a
/// thousand questions.
#[derive(Default)]
pub(crate) struct ModelSlot(Mutex<Option<(PathBuf, Arc<Model>)>>);

impl ModelSlot {
    fn get(&self, dir: &Path, threads: Option<usize>) -> Result<Arc<Model>, OpenError> {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((loaded, model)) = slot.as_ref().filter(|(d, _)| d == dir) {
            debug_assert_eq!(loaded, dir);
            return Ok(model.clone());
        }
        let mut options = ModelOptions::default();
        if let Some(n) = threads {
            options.threads = n.max(1);
        }
        let model = Model::load(dir, &options)
            .map(Arc::new)
            .map_err(|source| OpenError::Model { dir: dir.to_path_buf(), source: Box::new(source) })?;
        *slot = Some((dir.to_path_buf(), model.clone()));
        Ok(model)
    }
}

/// What loading a knowledge dir found.
#[derive(Debug, Clone)]
pub struct LoadReport {
    pub dir: PathBuf,
    pub stats: KbStats,
    /// Files read.
    pub files: usize,
    /// Distinct words and word forms indexed.
    pub words: usize,
    /// Problems that did not stop the load, for the owner to look at.
    pub warnings: Vec<Diagnostic>,
    pub elapsed: Duration,
    /// The knowledge version now served (1 at start, one more with every reload).
    pub generation: u64,
    /// How the semantic stage was made, when there is a model.
    pub semantic: Option<SemanticReport>,
}

/// A knowledge base ready to serve: the matcher and what the conversation derives from it.
#[derive(Debug)]
pub struct Library {
    matcher: Matcher,
    dir: PathBuf,
    /// Per article: the articles that link to it (for a stub's related topics).
    pub(crate) backlinks: Vec<Vec<ArticleIdx>>,
    /// Articles by title, for the topic list.
    pub(crate) by_title: Vec<ArticleIdx>,
    /// Articles to offer when nothing else says what is popular: the most linked first.
    pub(crate) hubs: Vec<ArticleIdx>,
    /// Increases with every reload.
    pub generation: u64,
}

impl Library {
    /// Loads, validates and indexes a knowledge dir (what `check` does, and every start), and
    /// embeds it when a sentence model is configured.
    pub fn load(dir: &Path, options: &Options) -> Result<(Library, LoadReport), OpenError> {
        Self::load_as(dir, 1, options, &ModelSlot::default())
    }

    pub(crate) fn load_as(
        dir: &Path,
        generation: u64,
        options: &Options,
        models: &ModelSlot,
    ) -> Result<(Library, LoadReport), OpenError> {
        let started = Instant::now();
        let loaded = articlebot_knowledge::load(dir)?;
        let stats = loaded.kb.stats();
        let configured = loaded.kb.site.semantic.model.as_ref().map(|m| dir.join(m));
        let model_dir = options.model.clone().or(configured).filter(|_| !options.lexical_only);
        let (matcher, semantic) = match model_dir {
            None => (Matcher::new(loaded.kb), None),
            Some(model_dir) => {
                let model = models.get(&model_dir, options.model_threads)?;
                let progress = options.progress.clone();
                let mut tell = |done, total| {
                    if let Some(p) = &progress {
                        p(EmbedProgress { done, total });
                    }
                };
                // One cache per knowledge dir: each keeps exactly the texts its dir has now.
                let cache = options.cache_dir.as_ref().map(|c| {
                    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
                    c.join(format!("{:016x}", articlebot_knowledge::stable_hash(&dir.to_string_lossy())))
                });
                let (matcher, report) = Matcher::with_semantic(loaded.kb, model, cache.as_deref(), &mut tell)
                    .map_err(|source| OpenError::Model { dir: model_dir, source: Box::new(source) })?;
                (matcher, Some(report))
            }
        };
        let report = LoadReport {
            dir: dir.to_path_buf(),
            stats,
            files: loaded.files,
            words: matcher.index_size().words,
            warnings: loaded.warnings,
            elapsed: started.elapsed(),
            generation,
            semantic,
        };
        Ok((Library::new(matcher, dir, generation), report))
    }

    fn new(matcher: Matcher, dir: &Path, generation: u64) -> Self {
        let kb = matcher.kb();
        let mut backlinks = vec![Vec::new(); kb.articles.len()];
        for (i, a) in kb.articles.iter().enumerate() {
            for &r in a.related.iter().chain(a.prev.iter()).chain(a.next.iter()) {
                let list: &mut Vec<ArticleIdx> = &mut backlinks[r as usize];
                if !list.contains(&(i as ArticleIdx)) {
                    list.push(i as ArticleIdx);
                }
            }
        }
        let mut by_title: Vec<ArticleIdx> = (0..kb.articles.len() as ArticleIdx).collect();
        by_title.sort_by_cached_key(|&i| kb.articles[i as usize].title.to_lowercase());
        let mut hubs: Vec<ArticleIdx> = (0..kb.articles.len() as ArticleIdx).collect();
        hubs.sort_by_key(|&i| {
            let a = &kb.articles[i as usize];
            (a.is_stub(), std::cmp::Reverse(a.related.len() + backlinks[i as usize].len()), i)
        });
        hubs.truncate(8);
        Library { matcher, dir: dir.to_path_buf(), backlinks, by_title, hubs, generation }
    }

    pub fn kb(&self) -> &KnowledgeBase {
        self.matcher.kb()
    }

    pub fn matcher(&self) -> &Matcher {
        &self.matcher
    }

    /// The knowledge dir it was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
