//! The knowledge base: articles and topic stubs read from a knowledge dir and validated, with the
//! synonyms and the site configuration that come with them. The first stage of articlebot's
//! engine: nothing here knows about matching, conversations or Telegram.
//!
//! Layout (private modules, the face re-exported below):
//! - `load`: reading a knowledge dir (`site.toml`, `synonyms.txt`, article files and raw pages)
//!   into a validated [`KnowledgeBase`], every problem a [`Diagnostic`] with file and line;
//! - `import`: pages (`.txt` in the scraped page format, `.md`, `.html`) into knowledge files,
//!   idempotent;
//! - `format`: the article file format (TOML front matter, Markdown body), read and written;
//! - `edit`: adding a learnt question to an article file's front matter, the rest untouched;
//! - `page`: the scraped page format and Markdown pages;
//! - `html`: HTML pages (a site's own), read with a real parser into the same page shape;
//! - `site`, `synonyms`: the site configuration and the synonyms file;
//! - `slug`: stable article ids and the short keys buttons and deep links carry.

mod edit;
mod format;
mod html;
mod import;
mod load;
mod page;
mod site;
mod slug;
mod synonyms;

#[cfg(test)]
mod fuzz_tests;

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;

pub use edit::{add_question, clean_question, remove_question, EditError};
pub use html::decode_html;
pub use import::{import, import_site, FetchedPage, ImportReport, SiteImport, SiteInputs, MAX_FILE_BYTES};
pub use load::{load, LoadError, Loaded};
pub use site::{
    ImportRules, LearningConfig, SemanticConfig, SiteConfig, Thresholds, AUTO_ACCEPT_MIN_USERS, SUPPORTED_LANGUAGES,
};
pub use slug::{is_key, stable_hash, Fnv1a};
pub use synonyms::{parse_synonyms, SynonymGroup, Synonyms};

/// An error and its causes on one line: `cannot open: database error: No space left on device`.
/// The engine's errors keep their causes as `source()`; print and log them through this.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(e) = source {
            write!(f, ": {e}")?;
            source = e.source();
        }
        Ok(())
    }
}

/// Index of an article in `KnowledgeBase::articles`.
pub type ArticleIdx = u32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub heading: Option<String>,
    /// Plain text (Markdown markup removed), paragraphs separated by blank lines.
    pub text: String,
}

/// An article with sections, or a stub (no sections) known from a link and its teaser.
#[derive(Debug, Clone)]
pub struct Article {
    pub id: String,
    /// Short stable key of the id, for buttons and deep links.
    pub key: String,
    pub title: String,
    pub url: Option<String>,
    pub teaser: Option<String>,
    pub questions: Vec<String>,
    pub keywords: Vec<String>,
    pub sections: Vec<Section>,
    pub related: Vec<ArticleIdx>,
    pub prev: Option<ArticleIdx>,
    pub next: Option<ArticleIdx>,
    pub source: PathBuf,
}

impl Article {
    pub fn is_stub(&self) -> bool {
        self.sections.is_empty()
    }
}

/// A loaded, validated knowledge base. Ids and keys are unique and every link resolves.
#[derive(Debug, Clone, Default)]
pub struct KnowledgeBase {
    pub site: SiteConfig,
    pub synonyms: Synonyms,
    pub articles: Vec<Article>,
    by_id: HashMap<String, ArticleIdx>,
    by_key: HashMap<String, ArticleIdx>,
}

impl KnowledgeBase {
    /// Builds the lookup tables; the loader has checked ids and keys are unique.
    pub(crate) fn new(site: SiteConfig, synonyms: Synonyms, articles: Vec<Article>) -> Self {
        let by_id = articles.iter().enumerate().map(|(i, a)| (a.id.clone(), i as ArticleIdx)).collect();
        let by_key = articles.iter().enumerate().map(|(i, a)| (a.key.clone(), i as ArticleIdx)).collect();
        KnowledgeBase { site, synonyms, articles, by_id, by_key }
    }

    pub fn article(&self, idx: ArticleIdx) -> Option<&Article> {
        self.articles.get(idx as usize)
    }

    pub fn by_id(&self, id: &str) -> Option<ArticleIdx> {
        self.by_id.get(id).copied()
    }

    pub fn by_key(&self, key: &str) -> Option<ArticleIdx> {
        self.by_key.get(key).copied()
    }

    /// The article for an id or a short key, as found in deep links.
    pub fn by_id_or_key(&self, s: &str) -> Option<ArticleIdx> {
        self.by_id(s).or_else(|| self.by_key(s))
    }

    /// The link to read an article: its own url, else the site's base url + id.
    pub fn url_of(&self, idx: ArticleIdx) -> Option<String> {
        let a = self.article(idx)?;
        a.url.clone().or_else(|| {
            let base = self.site.base_url.as_ref()?;
            let sep = if base.ends_with('/') { "" } else { "/" };
            Some(format!("{base}{sep}{}", a.id))
        })
    }

    pub fn stats(&self) -> KbStats {
        let stubs = self.articles.iter().filter(|a| a.is_stub()).count();
        KbStats {
            articles: self.articles.len() - stubs,
            stubs,
            sections: self.articles.iter().map(|a| a.sections.len()).sum(),
            synonym_groups: self.synonyms.groups.len(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct KbStats {
    pub articles: usize,
    pub stubs: usize,
    pub sections: usize,
    pub synonym_groups: usize,
}

/// `1 article`, `2 articles`: a count with its noun, for messages people read.
pub fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

impl fmt::Display for KbStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {}, {}, {}",
            count(self.articles, "article"),
            count(self.sections, "section"),
            count(self.stubs, "stub"),
            count(self.synonym_groups, "synonym group")
        )
    }
}

/// A problem in a knowledge dir, pointing at the file and line to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic is one line: control characters quoted from the file (an id with a newline
    /// in it) are shown escaped.
    pub fn new(path: impl Into<PathBuf>, line: Option<usize>, message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.contains(char::is_control) {
            message = message
                .chars()
                .map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() })
                .collect();
        }
        Diagnostic { path: path.into(), line, message }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{}: {}", self.path.display(), l, self.message),
            None => write!(f, "{}: {}", self.path.display(), self.message),
        }
    }
}

/// What is wrong with a link a reply will carry, if anything, worded for the `field` it is in.
/// Telegram refuses a message whose link is malformed, so a bad url would silently cost every
/// answer from its article.
pub fn url_problem(field: &str, u: &str) -> Option<String> {
    if !(u.starts_with("https://") || u.starts_with("http://")) {
        return Some(format!("{field} `{u}` must start with https:// or http://"));
    }
    if let Some(c) = u.chars().find(|c| c.is_whitespace() || c.is_control() || matches!(c, '"' | '<' | '>')) {
        return Some(format!("{field} `{u}` contains {c:?}: write spaces as %20 and leave out quotes and <>"));
    }
    match url::Url::parse(u) {
        Ok(parsed) if parsed.host_str().is_some_and(|h| !h.is_empty()) => None,
        Ok(_) => Some(format!("{field} `{u}` has no host: write it like https://example.com/page")),
        Err(e) => Some(format!("{field} `{u}` is not a valid link ({e})")),
    }
}

/// Markdown markup a reader should not see in a chat message: links become their text, emphasis
/// and code markers go, list bullets become `•`. Structure (paragraphs, lines) stays.
pub fn plain_text(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    for (i, line) in markdown.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let trimmed = line.trim_start();
        // A backslash before markup keeps the line as written (see `format::write_article_file`).
        let line = if let Some(rest) = trimmed.strip_prefix('\\').filter(|r| r.starts_with(['#', '`'])) {
            rest
        } else if trimmed.starts_with("```") {
            continue;
        } else if let Some(rest) = trimmed.strip_prefix("- ").or_else(|| trimmed.strip_prefix("* ")) {
            out.push_str("• ");
            rest
        } else {
            strip_block_marker(strip_block_marker(trimmed, '#'), '>')
        };
        // A link is the nearest `[` before a `](` up to the next `)`. Every search starts where
        // the last one ended, so a line costs its length, whatever brackets it holds.
        let mut rest = line;
        while let Some(mid) = rest.find("](") {
            let Some(open) = rest[..mid].rfind('[') else {
                push_unmarked(&mut out, &rest[..mid + 2]);
                rest = &rest[mid + 2..];
                continue;
            };
            let Some(close) = rest[mid + 2..].find(')') else { break };
            let text_start = if rest[..open].ends_with('!') { open - 1 } else { open };
            push_unmarked(&mut out, &rest[..text_start]);
            if text_start == open {
                push_unmarked(&mut out, &rest[open + 1..mid]);
            }
            rest = &rest[mid + 2 + close + 1..];
        }
        push_unmarked(&mut out, rest);
    }
    out
}

/// Whether Markdown text has anything a reader would see once markup is removed.
pub(crate) fn has_text(markdown: &str) -> bool {
    !plain_text(markdown).trim().is_empty()
}

/// A heading (`## `) or quote (`> `) marker at the start of a line, with the space after it. A
/// marker needs that space or the end of the line: "#1 tip" and ">5 km" are text.
fn strip_block_marker(line: &str, marker: char) -> &str {
    let rest = line.trim_start_matches(marker);
    if rest.len() == line.len() || !(rest.is_empty() || rest.starts_with(char::is_whitespace)) {
        return line;
    }
    rest.trim_start()
}

fn push_unmarked(out: &mut String, s: &str) {
    // Most text has no markup at all: copy it in one go (a third of load time otherwise).
    if !s.contains(['`', '*', '_']) {
        out.push_str(s);
        return;
    }
    let mut chars = s.chars().peekable();
    let mut in_code = false;
    while let Some(c) = chars.next() {
        match c {
            '`' => in_code = !in_code,
            // Inside `code` everything is literal: `__init__` keeps its underscores.
            '*' | '_' if !in_code && chars.peek() == Some(&c) => {
                chars.next();
            }
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_drops_markup_only() {
        assert_eq!(
            plain_text("Use **bold** and `code`, see [the docs](https://x/y)."),
            "Use bold and code, see the docs."
        );
        assert_eq!(plain_text("- one\n- two"), "• one\n• two");
        assert_eq!(plain_text("a ![img](p.png) b"), "a  b");
        assert_eq!(plain_text("snake_case [unclosed"), "snake_case [unclosed");
        assert_eq!(plain_text("Use ~~tildes around the words~~."), "Use ~~tildes around the words~~.");
        assert_eq!(plain_text("\\## not a heading\n\\```"), "## not a heading\n");
        assert_eq!(plain_text("\\n stays"), "\\n stays");
        assert_eq!(plain_text("#1 tip\n>5 km\n> quoted\n### Heading"), "#1 tip\n>5 km\nquoted\nHeading");
        assert_eq!(plain_text("call `__init__` or __bold__"), "call __init__ or bold");
        assert!(!has_text("```\n```\n**"));
    }
}
