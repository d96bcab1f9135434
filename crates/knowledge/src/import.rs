//! Turning article pages into knowledge files. Every title becomes an entry with a stable id; a
//! title known only from a link (Recommend, `<<:`, `>>:`) becomes a stub; importing a stub's full
//! page later replaces it, and importing the same pages again changes nothing.
//!
//! `Catalog` is the merge both `import` (which writes the result) and the loader (which reads
//! raw pages dropped into a knowledge dir) use, so the two cannot disagree.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::format::{self, ArticleFile, FileSection, FrontMatter};
use super::html::{self, HtmlRules};
use super::page::{self, Page, PageFormat};
use super::site::SiteConfig;
use super::slug::{key_slug, slugify};
use super::Diagnostic;

/// Largest file read as a page or knowledge file; an article is never this long, so a bigger
/// file is a mistake (a dump, a binary) and reading it would only waste memory.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Where an entry came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A knowledge file, with its parsed form for line numbers.
    File(Box<ArticleFile>),
    /// A page (its full article) or a link on a page (a stub).
    Page,
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub front: FrontMatter,
    pub sections: Vec<FileSection>,
    pub source: PathBuf,
    pub line: Option<usize>,
    pub origin: Origin,
}

impl Entry {
    pub fn is_stub(&self) -> bool {
        self.front.stub
    }

    /// The line of a front matter field or value, when the entry has a file.
    pub fn line_of(&self, needle: &str) -> Option<usize> {
        match &self.origin {
            Origin::File(f) => Some(f.line_of(needle)),
            Origin::Page => self.line,
        }
    }
}

/// What to do when a page's full article meets another full article with its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnFullConflict {
    /// Import: the page is newer; its content replaces the article's, hand-added fields stay.
    Replace,
    /// Load: two sources for one article is an error the owner must resolve.
    Error,
}

#[derive(Debug, Default)]
pub(crate) struct Catalog {
    pub entries: Vec<Entry>,
    by_id: HashMap<String, usize>,
    /// Folded title → id, so a title always maps to the id it got first.
    id_by_title: HashMap<String, String>,
    /// Id → folded title, for every id handed out (with or without an entry yet).
    title_by_id: HashMap<String, String>,
}

fn fold_title(t: &str) -> String {
    t.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
        .replace(['\u{2019}', '\u{2018}'], "'")
        .replace(['\u{201c}', '\u{201d}'], "\"")
}

impl Catalog {
    #[cfg(test)]
    pub fn get(&self, id: &str) -> Option<&Entry> {
        self.by_id.get(id).map(|&i| &self.entries[i])
    }

    /// Adds a knowledge file. Two files with one id is always an error: each file is one article.
    pub fn add_file(&mut self, file: ArticleFile, path: &Path) -> Result<(), Diagnostic> {
        let id = file.front.id.clone();
        if let Some(&i) = self.by_id.get(&id) {
            let other = &self.entries[i];
            return Err(Diagnostic::new(
                path,
                Some(file.line_of("id")),
                format!(
                    "duplicate id `{id}`: {} already defines it; give one of them another id",
                    other.source.display()
                ),
            ));
        }
        let folded = fold_title(&file.front.title);
        self.title_by_id.entry(id.clone()).or_insert_with(|| folded.clone());
        self.id_by_title.entry(folded).or_insert_with(|| id.clone());
        self.by_id.insert(id, self.entries.len());
        self.entries.push(Entry {
            front: file.front.clone(),
            sections: file.sections.clone(),
            source: path.to_path_buf(),
            line: None,
            origin: Origin::File(Box::new(file)),
        });
        Ok(())
    }

    /// The id for a title: the one it already has, else its slug, else (when the slug belongs to a
    /// different title) the slug with the title's key, which is stable across runs.
    pub fn id_for_title(&mut self, title: &str) -> String {
        let folded = fold_title(title);
        if let Some(id) = self.id_by_title.get(&folded) {
            return id.clone();
        }
        let slug = slugify(title);
        let id = match self.title_by_id.get(&slug) {
            Some(other) if *other != folded => format!("{slug}-{}", key_slug(title)),
            _ => slug,
        };
        self.id_by_title.insert(folded.clone(), id.clone());
        self.title_by_id.entry(id.clone()).or_insert(folded);
        id
    }

    /// Adds a page: its full article plus a stub for every page it links to that is not known yet.
    pub fn add_page(&mut self, page: &Page, path: &Path, on_conflict: OnFullConflict) -> Result<(), Diagnostic> {
        // A full article without text would be neither a stub nor an article: refuse the page
        // rather than write a knowledge file that `check` rejects.
        let sections: Vec<FileSection> = page
            .sections
            .iter()
            .map(|s| FileSection { heading: s.heading.clone(), body: s.body.clone(), line: s.line })
            .collect();
        let sections = format::normalize_sections(&sections, &page.title);
        if !sections.iter().any(|s| super::has_text(&s.body)) {
            return Err(Diagnostic::new(
                path,
                Some(page.title_line),
                format!("page `{}` has a title but no text: add its paragraphs after the title", page.title.trim()),
            ));
        }
        let id = self.id_for_title(&page.title);
        let mut related = Vec::new();
        for t in &page.recommend {
            let rid = self.add_stub(&t.title, t.teaser.as_deref(), t.url.as_deref(), path);
            if rid != id && !related.contains(&rid) {
                related.push(rid);
            }
        }
        let prev =
            page.prev.as_ref().map(|t| self.add_stub(t, None, page.prev_url.as_deref(), path)).filter(|p| *p != id);
        let next =
            page.next.as_ref().map(|t| self.add_stub(t, None, page.next_url.as_deref(), path)).filter(|n| *n != id);
        let mut front = FrontMatter {
            id: id.clone(),
            title: page.title.clone(),
            url: absolute_url(page.url.as_deref()),
            related,
            prev,
            next,
            ..Default::default()
        };
        match self.by_id.get(&id).copied() {
            None => {
                self.by_id.insert(id, self.entries.len());
                self.entries.push(Entry {
                    front,
                    sections,
                    source: path.to_path_buf(),
                    line: Some(page.title_line),
                    origin: Origin::Page,
                });
            }
            Some(i) => {
                let existing = &mut self.entries[i];
                if !existing.is_stub() && on_conflict == OnFullConflict::Error {
                    return Err(Diagnostic::new(
                        path,
                        Some(page.title_line),
                        format!(
                            "duplicate article `{id}`: {} already has this title; remove one of them",
                            existing.source.display()
                        ),
                    ));
                }
                // Fields the page cannot carry were added by hand: keep them.
                front.questions = std::mem::take(&mut existing.front.questions);
                front.keywords = std::mem::take(&mut existing.front.keywords);
                if front.url.is_none() {
                    front.url = existing.front.url.take();
                }
                existing.front = front;
                existing.sections = sections;
                existing.line = Some(page.title_line);
                if matches!(existing.origin, Origin::Page) {
                    existing.source = path.to_path_buf();
                }
            }
        }
        Ok(())
    }

    fn add_stub(&mut self, title: &str, teaser: Option<&str>, url: Option<&str>, path: &Path) -> String {
        let id = self.id_for_title(title);
        match self.by_id.get(&id).copied() {
            Some(i) => {
                let e = &mut self.entries[i];
                if e.is_stub() {
                    if e.front.teaser.is_none() {
                        e.front.teaser = teaser.map(str::to_string);
                    }
                    if e.front.url.is_none() {
                        e.front.url = absolute_url(url);
                    }
                }
            }
            None => {
                self.by_id.insert(id.clone(), self.entries.len());
                self.entries.push(Entry {
                    front: FrontMatter {
                        id: id.clone(),
                        title: title.to_string(),
                        url: absolute_url(url),
                        stub: true,
                        teaser: teaser.map(str::to_string),
                        ..Default::default()
                    },
                    sections: Vec::new(),
                    source: path.to_path_buf(),
                    line: None,
                    origin: Origin::Page,
                });
            }
        }
        id
    }
}

/// Only absolute, valid links become an article's `url`: a relative one ("/green-tea") has no
/// site to resolve against, and `check` rightly refuses it and malformed ones.
fn absolute_url(url: Option<&str>) -> Option<String> {
    url.map(str::trim).filter(|u| super::url_problem("url", u).is_none()).map(str::to_string)
}

/// A file read as text, or why it could not be. Only a regular file is read (after following
/// symlinks): a FIFO would block the reader for ever (a reload, and with it shutdown), a device
/// might never end. It is opened without blocking and read up to the size limit, whatever its
/// size said a moment before.
pub(crate) fn read_text(path: &Path) -> Result<String, Diagnostic> {
    let bytes = read_bytes(path)?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        Diagnostic::new(path, Some(line), format!("invalid UTF-8 at byte {at}: save the file as UTF-8"))
    })
}

/// A file's bytes, with the checks of [`read_text`].
pub(crate) fn read_bytes(path: &Path) -> Result<Vec<u8>, Diagnostic> {
    let cannot = |e: io::Error| Diagnostic::new(path, None, format!("cannot read: {e}"));
    let meta = fs::metadata(path).map_err(|e| match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => broken_link(path),
        _ => cannot(e),
    })?;
    if !meta.is_file() {
        return Err(not_regular(path, &meta));
    }
    let too_large = |len: u64, line: Option<usize>| {
        Diagnostic::new(
            path,
            line.or(Some(1)),
            format!(
                "file is too large ({len} bytes, the limit is {MAX_FILE_BYTES}): split the article into several files"
            ),
        )
    };
    let file = open_nonblocking(path).map_err(cannot)?;
    // The file may have been swapped for something else since the check above.
    let opened = file.metadata().map_err(cannot)?;
    if !opened.is_file() {
        return Err(not_regular(path, &opened));
    }
    let mut bytes = Vec::new();
    io::Read::read_to_end(&mut io::Read::take(file, MAX_FILE_BYTES + 1), &mut bytes).map_err(cannot)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        // The line where the limit is passed: where to split.
        let line = bytes[..MAX_FILE_BYTES as usize].iter().filter(|&&b| b == b'\n').count() + 1;
        return Err(too_large(opened.len().max(bytes.len() as u64), Some(line)));
    }
    Ok(bytes)
}

/// Opens for reading without waiting for a writer (a FIFO's open blocks until one comes).
fn open_nonblocking(path: &Path) -> io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path)
}

/// What kind of file this is, for a message: "a FIFO", "a socket", "a device".
fn kind_of(meta: &fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_block_device() || t.is_char_device() {
        "a device"
    } else {
        "not a regular file"
    }
}

fn not_regular(path: &Path, meta: &fs::Metadata) -> Diagnostic {
    Diagnostic::new(
        path,
        None,
        format!("is {}, not a regular file: only plain files are read; replace it with one", kind_of(meta)),
    )
}

fn broken_link(path: &Path) -> Diagnostic {
    let target = fs::read_link(path).map(|t| t.display().to_string()).unwrap_or_default();
    Diagnostic::new(path, None, format!("is a symlink to `{target}`, which does not exist: fix or remove the link"))
}

/// Whether there is an entry `path` (directly in the dir `root`), and if it is a symlink, that
/// it leads inside `root`: a knowledge dir must not be a way to read any file on the machine.
/// `Ok(false)` when there is no such entry (a dangling symlink is an entry, and an error).
pub(crate) fn inside(root: &Path, path: &Path) -> Result<bool, Diagnostic> {
    let Ok(link) = fs::symlink_metadata(path) else { return Ok(false) };
    if !link.file_type().is_symlink() {
        return Ok(true);
    }
    let target = fs::canonicalize(path).map_err(|_| broken_link(path))?;
    let root = fs::canonicalize(root).map_err(|e| Diagnostic::new(root, None, format!("cannot read: {e}")))?;
    if target.starts_with(&root) {
        Ok(true)
    } else {
        Err(outside(path, &target))
    }
}

fn outside(path: &Path, target: &Path) -> Diagnostic {
    Diagnostic::new(
        path,
        None,
        format!(
            "is a symlink to `{}`, outside the knowledge dir: only files inside it are read; copy the file in instead",
            target.display()
        ),
    )
}

/// The format of a page file a knowledge dir may hold: text or Markdown. HTML is only imported:
/// a knowledge dir is the owner's to edit, and an HTML page is not written by hand.
pub(crate) fn page_format(path: &Path) -> Option<PageFormat> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "txt" => Some(PageFormat::Text),
        "md" | "markdown" => Some(PageFormat::Markdown),
        _ => None,
    }
}

/// The format of a page file `import` reads: a knowledge dir's formats and HTML.
fn import_format(path: &Path) -> Option<PageFormat> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "html" | "htm" | "xhtml" => Some(PageFormat::Html),
        _ => page_format(path),
    }
}

/// The files under a dir (or the file itself) that can hold pages, sorted, hidden entries
/// skipped, and the entries that were refused, each with why.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    pub files: Vec<PathBuf>,
    pub refused: Vec<Diagnostic>,
    /// Resolved paths of the dirs entered and the files kept: a file reached twice (through a
    /// symlinked dir) is read once, and a symlink loop ends.
    seen: HashSet<PathBuf>,
    /// Whether HTML files are pages too (for `import`, not the loader).
    html: bool,
}

/// Walks `path` for page files. Symlinks are followed when they lead inside `path` (a
/// Kubernetes ConfigMap mount is all symlinks into a hidden dir beside them) and refused
/// otherwise; page files that are not regular files (a FIFO named `x.md`) are refused too. Only
/// the dir itself being unreadable is an error.
pub(crate) fn page_files(path: &Path) -> io::Result<Walk> {
    walk_pages(path, false)
}

fn walk_pages(path: &Path, html: bool) -> io::Result<Walk> {
    let mut walk = Walk { html, ..Walk::default() };
    let meta = fs::metadata(path)?;
    if !meta.is_dir() {
        walk.files.push(path.to_path_buf());
        return Ok(walk);
    }
    let root = fs::canonicalize(path)?;
    walk.seen.insert(root.clone());
    walk_dir(path, &root, &root, &mut walk, 0)?;
    Ok(walk)
}

/// Walks `dir`, whose resolved path is `resolved`, inside the resolved `root`.
fn walk_dir(dir: &Path, resolved: &Path, root: &Path, walk: &mut Walk, depth: usize) -> io::Result<()> {
    if depth > 16 {
        return Ok(());
    }
    let mut children: Vec<PathBuf> = fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    children.sort();
    for c in children {
        let hidden = c.file_name().and_then(|n| n.to_str()).is_none_or(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        let Ok(link) = fs::symlink_metadata(&c) else { continue };
        let wanted = if walk.html { import_format(&c).is_some() } else { page_format(&c).is_some() };
        let (meta, target) = if link.file_type().is_symlink() {
            let Ok(target) = fs::canonicalize(&c) else {
                if wanted {
                    walk.refused.push(broken_link(&c));
                }
                continue;
            };
            let Ok(meta) = fs::metadata(&target) else { continue };
            if !target.starts_with(root) {
                // A link to a dir outside is refused whatever it holds; to a file, if it would be read.
                if wanted || meta.is_dir() {
                    walk.refused.push(outside(&c, &target));
                }
                continue;
            }
            (meta, target)
        } else {
            let name = c.file_name().map(PathBuf::from).unwrap_or_default();
            (link, resolved.join(name))
        };
        if meta.is_dir() {
            if walk.seen.insert(target.clone()) {
                walk_dir(&c, &target, root, walk, depth + 1)?;
            }
        } else if wanted {
            if !meta.is_file() {
                walk.refused.push(not_regular(&c, &meta));
            } else if walk.seen.insert(target) {
                walk.files.push(c);
            }
        }
    }
    Ok(())
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub pages: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub stubs: usize,
    /// Pages that could not be imported; the rest were.
    pub errors: Vec<Diagnostic>,
}

/// Imports pages (files or dirs) into the knowledge dir `out`, creating it if needed.
/// Fails without writing anything when `out` holds knowledge files that do not parse.
pub fn import(inputs: &[PathBuf], out: &Path) -> Result<ImportReport, Vec<Diagnostic>> {
    import_site(&SiteInputs { files: inputs, ..Default::default() }, out).map(|s| s.report)
}

/// A page fetched from a site: where it was found (after redirects) and its bytes as served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedPage {
    pub url: String,
    pub body: Vec<u8>,
    /// The `Content-Type` header, for its charset.
    pub content_type: Option<String>,
}

/// What [`import_site`] imports: page files and dirs, fetched HTML pages, and the articles of
/// pages that are gone from the site.
#[derive(Debug, Default)]
pub struct SiteInputs<'a> {
    pub files: &'a [PathBuf],
    pub fetched: &'a [FetchedPage],
    /// Ids of articles whose pages disappeared: each is removed, or turned back into a stub when
    /// another article still links to it (a link must lead somewhere).
    pub prune: &'a [String],
}

/// The outcome of [`import_site`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SiteImport {
    pub report: ImportReport,
    /// For each fetched page, in order, the id of its article; `None` when it was not imported
    /// (its error is in `report.errors`, with the page's URL as the path).
    pub fetched_ids: Vec<Option<String>>,
    /// Pruned articles whose files were removed.
    pub removed: Vec<String>,
    /// Pruned articles kept as stubs because other articles link to them.
    pub stubbed: Vec<String>,
}

/// [`import`], and fetched pages, and pruning. HTML pages follow the `[import]` selectors of
/// `out`'s site.toml, when it has them.
pub fn import_site(inputs: &SiteInputs, out: &Path) -> Result<SiteImport, Vec<Diagnostic>> {
    let articles_dir = out.join("articles");
    let mut catalog = Catalog::default();
    let mut existing_text: HashMap<String, (PathBuf, String)> = HashMap::new();
    let mut errors = Vec::new();
    if out.exists() {
        let walk = page_files(out).map_err(|e| vec![Diagnostic::new(out, None, format!("cannot read: {e}"))])?;
        errors.extend(walk.refused);
        for f in walk.files {
            let text = match read_text(&f) {
                Ok(t) => t,
                Err(d) => {
                    errors.push(d);
                    continue;
                }
            };
            if !format::has_front_matter(&text) {
                continue;
            }
            match format::parse_article_file(&text) {
                Ok(af) => {
                    let id = af.front.id.clone();
                    if let Err(d) = catalog.add_file(af, &f) {
                        errors.push(d);
                    }
                    existing_text.insert(id, (f, text));
                }
                Err(e) => errors.push(Diagnostic::new(&f, Some(e.line), e.message)),
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let mut result = SiteImport::default();
    let report = &mut result.report;
    let mut files = Vec::new();
    for input in inputs.files {
        match walk_pages(input, true) {
            Ok(walk) => {
                files.extend(walk.files);
                report.errors.extend(walk.refused);
            }
            Err(e) => report.errors.push(Diagnostic::new(input, None, format!("cannot read: {e}"))),
        }
    }
    let wants_html = !inputs.fetched.is_empty() || files.iter().any(|f| import_format(f) == Some(PageFormat::Html));
    let rules = if wants_html { html_rules(out)? } else { HtmlRules::default() };
    for f in files {
        // Importing a knowledge dir into itself must not re-read its own output as pages.
        if f.starts_with(out) && out.exists() {
            continue;
        }
        let Some(fmt) = import_format(&f) else {
            report.errors.push(Diagnostic::new(&f, None, "not a page: pages are .txt, .md or .html files"));
            continue;
        };
        let parsed = if fmt == PageFormat::Html {
            read_bytes(&f).and_then(|bytes| {
                let text = html::decode_html(&bytes, None).map_err(|m| Diagnostic::new(&f, None, m))?;
                html::parse_html_page(&text, None, &rules).map_err(|e| Diagnostic::new(&f, Some(e.line), e.message))
            })
        } else {
            read_text(&f).and_then(|text| {
                if format::has_front_matter(&text) {
                    return Err(Diagnostic::new(
                        &f,
                        Some(1),
                        "already a knowledge file: copy it into the knowledge dir instead",
                    ));
                }
                page::parse_page(&text, fmt).map_err(|e| Diagnostic::new(&f, Some(e.line), e.message))
            })
        };
        match parsed.and_then(|p| catalog.add_page(&p, &f, OnFullConflict::Replace).map(|_| ())) {
            Ok(()) => report.pages += 1,
            Err(d) => report.errors.push(d),
        }
    }
    for page in inputs.fetched {
        let source = PathBuf::from(&page.url);
        let id = fetched_page(page, &rules).and_then(|p| {
            // The page's own title decides its id, whatever canonical url it names.
            let id = catalog.id_for_title(&p.title);
            catalog.add_page(&p, &source, OnFullConflict::Replace).map(|_| id)
        });
        match id {
            Ok(id) => {
                report.pages += 1;
                result.fetched_ids.push(Some(id));
            }
            Err(mut d) => {
                d.path = source;
                report.errors.push(d);
                result.fetched_ids.push(None);
            }
        }
    }
    let gone = prune(&mut catalog, inputs.prune, &mut result);

    // Nothing to import (a missing path, an empty dir): nothing is created, not even the dir.
    let report = &mut result.report;
    if report.pages == 0 && gone.is_empty() && result.stubbed.is_empty() {
        return Ok(result);
    }
    let io_err = |p: &Path, e: io::Error| vec![Diagnostic::new(p, None, format!("cannot write: {e}"))];
    fs::create_dir_all(&articles_dir).map_err(|e| io_err(&articles_dir, e))?;
    for entry in &catalog.entries {
        if gone.contains(&entry.front.id) {
            if let Some((p, _)) = existing_text.get(&entry.front.id) {
                fs::remove_file(p).map_err(|e| vec![Diagnostic::new(p, None, format!("cannot remove: {e}"))])?;
            }
            continue;
        }
        let text = format::write_article_file(&entry.front, &entry.sections);
        let (path, old) = match existing_text.get(&entry.front.id) {
            Some((p, old)) => (p.clone(), Some(old)),
            None => (articles_dir.join(format!("{}.md", entry.front.id)), None),
        };
        if entry.is_stub() {
            report.stubs += 1;
        }
        match old {
            Some(old) if *old == text => report.unchanged += 1,
            _ => {
                write_atomically(&path, &text).map_err(|e| io_err(&path, e))?;
                if old.is_some() {
                    report.updated += 1;
                } else {
                    report.created += 1;
                }
            }
        }
    }
    for (name, template) in [("site.toml", SiteConfig::template()), ("synonyms.txt", SYNONYMS_TEMPLATE.to_string())] {
        let p = out.join(name);
        if !p.exists() {
            write_atomically(&p, &template).map_err(|e| io_err(&p, e))?;
        }
    }
    result.removed = gone.into_iter().collect();
    result.removed.sort();
    Ok(result)
}

/// A fetched page read as HTML, against the URL it came from.
fn fetched_page(page: &FetchedPage, rules: &HtmlRules) -> Result<Page, Diagnostic> {
    let source = PathBuf::from(&page.url);
    let url = url::Url::parse(&page.url).map_err(|e| Diagnostic::new(&source, None, format!("not a URL: {e}")))?;
    let text =
        html::decode_html(&page.body, page.content_type.as_deref()).map_err(|m| Diagnostic::new(&source, None, m))?;
    html::parse_html_page(&text, Some(&url), rules).map_err(|e| Diagnostic::new(&source, None, e.message))
}

/// The `[import]` selectors of `out`'s site.toml; a site.toml that cannot be read stops the
/// import, as a broken knowledge file does, rather than importing with rules silently ignored.
fn html_rules(out: &Path) -> Result<HtmlRules, Vec<Diagnostic>> {
    let path = out.join("site.toml");
    if !path.exists() {
        return Ok(HtmlRules::default());
    }
    let mut errors = Vec::new();
    let site = super::load::load_site(out, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    HtmlRules::new(&site.import).map_err(|m| vec![Diagnostic::new(&path, None, m)])
}

/// Applies `ids` to prune: the ids whose files go. One still linked from another article stays
/// as a stub (and is listed in `result.stubbed`).
fn prune(catalog: &mut Catalog, ids: &[String], result: &mut SiteImport) -> HashSet<String> {
    let mut gone = HashSet::new();
    for id in ids {
        let Some(&i) = catalog.by_id.get(id) else { continue };
        let linked = catalog.entries.iter().any(|e| {
            e.front.id != *id
                && !gone.contains(&e.front.id)
                && (e.front.related.contains(id)
                    || e.front.prev.as_ref() == Some(id)
                    || e.front.next.as_ref() == Some(id))
        });
        if linked {
            let e = &mut catalog.entries[i];
            if !e.is_stub() {
                e.front = FrontMatter {
                    id: id.clone(),
                    title: e.front.title.clone(),
                    url: e.front.url.take(),
                    stub: true,
                    teaser: e.front.teaser.take(),
                    ..Default::default()
                };
                e.sections.clear();
                result.stubbed.push(id.clone());
            }
        } else {
            gone.insert(id.clone());
        }
    }
    gone
}

const SYNONYMS_TEMPLATE: &str = "\
# Synonyms: one group per line, words or phrases that mean the same to your readers.
# Separate them with `=` (or commas). Matching folds case, accents and word endings.
# jog = run
# hurt = pain = ache
";

/// Writes through a temporary file and a rename, so a crash never leaves half a file.
pub(crate) fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp"));
    fs::write(&tmp, text)?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(title: &str, recommend: &[&str], next: Option<&str>) -> Page {
        Page {
            title: title.into(),
            title_line: 1,
            sections: vec![page::PageSection { heading: None, body: format!("About {title}."), line: 3 }],
            next: next.map(str::to_string),
            recommend: recommend
                .iter()
                .map(|t| page::Topic { title: t.to_string(), teaser: Some(format!("{t} teaser...")), url: None })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn links_become_stubs_and_full_pages_replace_them() {
        let mut c = Catalog::default();
        c.add_page(&page("Alpha", &["Beta", "Gamma"], Some("Delta")), Path::new("a.txt"), OnFullConflict::Error)
            .unwrap();
        assert_eq!(c.entries.len(), 4);
        assert!(c.get("beta").unwrap().is_stub());
        assert_eq!(c.get("alpha").unwrap().front.related, vec!["beta", "gamma"]);
        assert_eq!(c.get("alpha").unwrap().front.next.as_deref(), Some("delta"));
        c.add_page(&page("Beta", &["Alpha"], None), Path::new("b.txt"), OnFullConflict::Error).unwrap();
        assert_eq!(c.entries.len(), 4);
        assert!(!c.get("beta").unwrap().is_stub());
        assert!(!c.get("alpha").unwrap().is_stub(), "a link to a full article must not make it a stub");
        let err = c.add_page(&page("Alpha", &[], None), Path::new("c.txt"), OnFullConflict::Error).unwrap_err();
        assert!(err.message.contains("duplicate"), "{err}");
    }

    #[test]
    fn colliding_slugs_get_distinct_stable_ids() {
        let mut c = Catalog::default();
        let a = c.id_for_title("C++");
        let b = c.id_for_title("C#");
        assert_ne!(a, b);
        assert_eq!(c.id_for_title("c++"), a);
        assert!(super::super::slug::is_valid_id(&b), "{b}");
    }

    #[test]
    fn self_links_are_dropped() {
        let mut c = Catalog::default();
        c.add_page(
            &page("Alpha", &["Alpha", "Beta", "Beta"], Some("Alpha")),
            Path::new("a.txt"),
            OnFullConflict::Error,
        )
        .unwrap();
        let a = c.get("alpha").unwrap();
        assert_eq!(a.front.related, vec!["beta"]);
        assert_eq!(a.front.next, None);
    }
}
