//! A knowledge dir loaded and indexed, with what the conversation derives from it (backlinks,
//! the topic list, the articles to offer first): what the engine serves and swaps on reload.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use articlebot_knowledge::{ArticleIdx, Diagnostic, KbStats, KnowledgeBase, LoadError};
use articlebot_matching::Matcher;

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
    /// Loads, validates and indexes a knowledge dir (what `check` does, and every start).
    pub fn load(dir: &Path) -> Result<(Library, LoadReport), LoadError> {
        Self::load_as(dir, 1)
    }

    pub(crate) fn load_as(dir: &Path, generation: u64) -> Result<(Library, LoadReport), LoadError> {
        let started = Instant::now();
        let loaded = articlebot_knowledge::load(dir)?;
        let stats = loaded.kb.stats();
        let matcher = Matcher::new(loaded.kb);
        let report = LoadReport {
            dir: dir.to_path_buf(),
            stats,
            files: loaded.files,
            words: matcher.index_size().words,
            warnings: loaded.warnings,
            elapsed: started.elapsed(),
            generation,
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
