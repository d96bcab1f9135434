//! Reading a knowledge dir: `site.toml`, `synonyms.txt`, and every `.md`/`.txt` file below it —
//! knowledge files (with `+++` front matter) as they are, raw pages through the import merge.
//! All problems are collected, each with file, line and what to change; loading never panics.

use std::collections::HashSet;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use super::format::{self, FileSection};
use super::import::{self, Catalog, Entry, OnFullConflict};
use super::page;
use super::site::SiteConfig;
use super::slug::{is_valid_id, short_key};
use super::synonyms::{parse_synonyms, Synonyms};
use super::{plain_text, Article, ArticleIdx, Diagnostic, KnowledgeBase, Section};

/// Files at the top of a knowledge dir that are configuration or documentation, not articles.
const RESERVED: &[&str] = &["site.toml", "synonyms.txt", "readme.md", "readme.txt"];

/// A loaded knowledge base and what the owner should look at but need not fix.
#[derive(Debug)]
pub struct Loaded {
    pub kb: KnowledgeBase,
    pub warnings: Vec<Diagnostic>,
    pub files: usize,
}

#[derive(Debug)]
pub enum LoadError {
    /// The dir itself is missing or unreadable.
    Unreadable { dir: PathBuf, reason: String },
    /// The dir was read and has errors; nothing was loaded.
    Invalid { errors: Vec<Diagnostic>, warnings: Vec<Diagnostic> },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Unreadable { dir, reason } => write!(f, "knowledge dir {}: {reason}", dir.display()),
            LoadError::Invalid { errors, .. } => {
                write!(f, "knowledge has {} error{}", errors.len(), if errors.len() == 1 { "" } else { "s" })?;
                for e in errors {
                    write!(f, "\n{e}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for LoadError {}

pub fn load(dir: &Path) -> Result<Loaded, LoadError> {
    let unreadable = |reason: String| LoadError::Unreadable { dir: dir.to_path_buf(), reason };
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(unreadable("is not a directory".into())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(unreadable("does not exist (create it with `articlebot import PAGES --out DIR`)".into()))
        }
        Err(e) => return Err(unreadable(format!("cannot be read: {e}"))),
    }
    let mut errors = Vec::new();
    let mut warnings = Vec::new();

    let site = load_site(dir, &mut errors);
    let synonyms = load_synonyms(dir, &mut errors, &mut warnings);

    let walk = import::page_files(dir).map_err(|e| unreadable(format!("cannot be read: {e}")))?;
    let reserved = |f: &Path| {
        let top = f.parent() == Some(dir);
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("").to_ascii_lowercase();
        top && RESERVED.contains(&name.as_str())
    };
    // `site.toml` and `synonyms.txt` were checked above, the README is not read.
    errors.extend(walk.refused.into_iter().filter(|d| !reserved(&d.path)));
    let mut files = walk.files;
    files.retain(|f| !reserved(f));

    let mut catalog = Catalog::default();
    let mut pages = Vec::new();
    for f in &files {
        let text = match import::read_text(f) {
            Ok(t) => t,
            Err(d) => {
                errors.push(d);
                continue;
            }
        };
        if format::has_front_matter(&text) {
            match format::parse_article_file(&text) {
                Ok(af) => {
                    if !is_valid_id(&af.front.id) {
                        errors.push(Diagnostic::new(
                            f,
                            Some(af.line_of("id")),
                            format!(
                                "id `{}` is not valid: use lower-case letters, digits and `-` only (like `{}`)",
                                af.front.id,
                                super::slug::slugify(&af.front.title)
                            ),
                        ));
                        continue;
                    }
                    if let Err(d) = catalog.add_file(af, f) {
                        errors.push(d);
                    }
                }
                Err(e) => errors.push(Diagnostic::new(f, Some(e.line), e.message)),
            }
        } else if let Some(fmt) = import::page_format(f) {
            match page::parse_page(&text, fmt) {
                Ok(p) => pages.push((p, f.clone())),
                Err(e) => errors.push(Diagnostic::new(f, Some(e.line), e.message)),
            }
        }
    }
    // Pages after all files, so a page's full article replaces a stub file but not the reverse.
    for (p, f) in &pages {
        if let Err(d) = catalog.add_page(p, f, OnFullConflict::Error) {
            errors.push(d);
        }
    }

    let articles = build_articles(&catalog, &mut errors, &mut warnings);
    if articles.is_empty() && errors.is_empty() {
        errors.push(Diagnostic::new(
            dir,
            None,
            "no articles found: add .md knowledge files or pages (.txt/.md), or run `articlebot import`",
        ));
    }
    if !errors.is_empty() {
        return Err(LoadError::Invalid { errors, warnings });
    }
    Ok(Loaded { kb: KnowledgeBase::new(site, synonyms, articles), warnings, files: files.len() })
}

/// Whether the optional top-level file `name` is there to be read (it may be a symlink, into
/// the dir only); a problem with it is an error.
fn present(dir: &Path, name: &str, errors: &mut Vec<Diagnostic>) -> Option<PathBuf> {
    let path = dir.join(name);
    match import::inside(dir, &path) {
        Ok(true) => Some(path),
        Ok(false) => None,
        Err(d) => {
            errors.push(d);
            None
        }
    }
}

pub(crate) fn load_site(dir: &Path, errors: &mut Vec<Diagnostic>) -> SiteConfig {
    let Some(path) = present(dir, "site.toml", errors) else { return SiteConfig::default() };
    let path = path.as_path();
    let text = match import::read_text(path) {
        Ok(t) => t,
        Err(d) => {
            errors.push(d);
            return SiteConfig::default();
        }
    };
    match toml::from_str::<SiteConfig>(&text) {
        Ok(site) => {
            for p in site.problems() {
                let field = p.split(['`', ' ', '=']).find(|w| !w.is_empty()).unwrap_or("");
                errors.push(Diagnostic::new(path, toml_key_line(&text, field), p));
            }
            site
        }
        Err(e) => {
            let line = e
                .span()
                .map(|s| text.as_bytes()[..s.start.min(text.len())].iter().filter(|&&b| b == b'\n').count() + 1);
            errors.push(Diagnostic::new(path, line, format!("bad site config: {}", format::toml_message(e.message()))));
            SiteConfig::default()
        }
    }
}

/// The 1-based line where a TOML file sets `field` (`key` or `table.key`), skipping comments;
/// the table's header when the key is not written there.
fn toml_key_line(text: &str, field: &str) -> Option<usize> {
    let (table, key) = field.rsplit_once('.').unwrap_or(("", field));
    let sets = |line: &str, key: &str| line.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('='));
    let mut current = "";
    let mut header = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            current = name.trim();
            if current == table {
                header = Some(i + 1);
            }
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        if (current == table && sets(line, key)) || (current.is_empty() && !table.is_empty() && sets(line, field)) {
            return Some(i + 1);
        }
    }
    header
}

fn load_synonyms(dir: &Path, errors: &mut Vec<Diagnostic>, warnings: &mut Vec<Diagnostic>) -> Synonyms {
    let Some(path) = present(dir, "synonyms.txt", errors) else { return Synonyms::default() };
    let path = path.as_path();
    match import::read_text(path) {
        Ok(text) => {
            let (syn, issues) = parse_synonyms(&text);
            warnings.extend(issues.into_iter().map(|i| Diagnostic::new(path, Some(i.line), i.message)));
            syn
        }
        Err(d) => {
            errors.push(d);
            Synonyms::default()
        }
    }
}

/// Closest known id, for "did you mean" in a dangling-reference message.
/// Close means a few edits relative to the longer id, and fewer edits than either id has
/// characters (otherwise any short id would be "close" to any other).
fn closest_id<'a>(id: &str, known: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let chars = |s: &str| s.chars().count();
    known
        .map(|k| (strsim::levenshtein(id, k), k))
        .filter(|(d, k)| *d <= (chars(id).max(chars(k)) / 3).max(1) && *d < chars(id).min(chars(k)))
        .min()
        .map(|(_, k)| k)
}

fn build_articles(catalog: &Catalog, errors: &mut Vec<Diagnostic>, warnings: &mut Vec<Diagnostic>) -> Vec<Article> {
    let mut entries: Vec<&Entry> = catalog.entries.iter().collect();
    entries.sort_by(|a, b| a.front.id.cmp(&b.front.id));
    let index_of = |id: &str| entries.binary_search_by(|e| e.front.id.as_str().cmp(id)).ok();
    let ids = || entries.iter().map(|e| e.front.id.as_str());

    let mut keys = std::collections::HashMap::new();
    let mut articles = Vec::with_capacity(entries.len());
    for e in &entries {
        let f = &e.front;
        let at = |needle: &str| e.line_of(needle);
        if f.title.trim().is_empty() {
            errors.push(Diagnostic::new(&e.source, at("title"), "empty title: give the article a title"));
        }
        let sections: Vec<Section> = e.sections.iter().filter_map(section).collect();
        if !e.is_stub() && sections.is_empty() {
            errors.push(Diagnostic::new(
                &e.source,
                at("id"),
                "empty body: write at least one paragraph after the front matter, or mark it `stub = true` with a teaser",
            ));
        }
        if e.is_stub() && !sections.is_empty() {
            warnings.push(Diagnostic::new(
                &e.source,
                at("stub"),
                "`stub = true` but the file has a body: the body is used; remove `stub = true`",
            ));
        }
        if let Some(problem) = f.url.as_deref().and_then(|u| super::url_problem("url", u)) {
            errors.push(Diagnostic::new(&e.source, at("url"), problem));
        }
        let mut resolve = |field: &str, id: &str| -> Option<ArticleIdx> {
            match index_of(id) {
                Some(i) if entries[i].front.id == f.id => {
                    warnings.push(Diagnostic::new(
                        &e.source,
                        at(field),
                        format!("{field} `{id}` is the article itself: ignored"),
                    ));
                    None
                }
                Some(i) => Some(i as ArticleIdx),
                // A broken link must not take the whole site down: the link is left out, and
                // `check --strict` fails on it.
                None => {
                    let hint = closest_id(id, ids()).map(|k| format!(" (did you mean `{k}`?)")).unwrap_or_default();
                    warnings.push(Diagnostic::new(
                        &e.source,
                        value_line(e, field, id),
                        format!(
                            "{field} `{id}` is not an article in this knowledge dir{hint}: the link is left out; \
                             fix the id or add the article"
                        ),
                    ));
                    None
                }
            }
        };
        let mut related = Vec::new();
        let mut seen = HashSet::new();
        for r in &f.related {
            if let Some(i) = resolve("related", r) {
                if seen.insert(i) {
                    related.push(i);
                }
            }
        }
        let prev = f.prev.as_deref().and_then(|p| resolve("prev", p));
        let next = f.next.as_deref().and_then(|n| resolve("next", n));
        let key = short_key(&f.id);
        if let Some(other) = keys.insert(key.clone(), f.id.clone()) {
            errors.push(Diagnostic::new(
                &e.source,
                at("id"),
                format!("id `{}` has the same short key as `{other}`: change one of the ids", f.id),
            ));
        }
        articles.push(Article {
            id: f.id.clone(),
            key,
            title: f.title.trim().to_string(),
            url: f.url.clone(),
            teaser: f.teaser.as_ref().map(|t| t.trim().to_string()).filter(|t| !t.is_empty()),
            questions: f.questions.iter().map(|q| q.trim().to_string()).filter(|q| !q.is_empty()).collect(),
            keywords: f.keywords.iter().map(|q| q.trim().to_string()).filter(|q| !q.is_empty()).collect(),
            sections,
            related,
            prev,
            next,
            source: e.source.clone(),
        });
    }
    articles
}

/// The line of an id in a front matter field: where it is quoted, else the field's line.
fn value_line(e: &Entry, field: &str, id: &str) -> Option<usize> {
    match &e.origin {
        import::Origin::File(f) => {
            f.find_line(&format!("\"{id}\"")).or_else(|| f.find_line(&format!("'{id}'"))).or(Some(f.line_of(field)))
        }
        import::Origin::Page => e.line,
    }
}

/// A section as readers see it; none when only markup is left (an empty code block, say).
fn section(s: &FileSection) -> Option<Section> {
    let text = plain_text(&s.body).trim().to_string();
    let heading = s.heading.as_ref().map(|h| plain_text(h).trim().to_string()).filter(|h| !h.is_empty());
    (!text.is_empty()).then_some(Section { heading, text })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closest_id_suggests_near_misses_only() {
        let known = ["knee-pain", "sit-ups", "swimming"];
        assert_eq!(closest_id("knee-pian", known.iter().copied()), Some("knee-pain"));
        assert_eq!(closest_id("basketball", known.iter().copied()), None);
        assert_eq!(closest_id("b", ["a"].iter().copied()), None, "one letter is not close to another");
        assert_eq!(closest_id("zz", ["a"].iter().copied()), None);
    }

    #[test]
    fn site_keys_are_found_in_their_table_not_in_comments() {
        let text = "# base_url here\nbase_url = \"x\"\n[matching]\n# suggest = 0.1\nanswer = 0.2\nsuggest = 0.4\n";
        assert_eq!(toml_key_line(text, "base_url"), Some(2));
        assert_eq!(toml_key_line(text, "matching.suggest"), Some(6));
        assert_eq!(toml_key_line(text, "matching.margin"), Some(3), "the table header when the key is not set");
        assert_eq!(toml_key_line("matching.suggest = 0.4\n", "matching.suggest"), Some(1));
        assert_eq!(toml_key_line("", "language"), None);
    }

    /// A knowledge dir whose site.toml lets one user add questions alone does not load: the
    /// error names the file, the line and the key, as `check` shows it.
    #[test]
    fn auto_acceptance_by_one_user_is_an_error_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.md"), article("a", "A")).unwrap();
        let site = "bot_name = \"B\"\n\n[learning]\n# auto_accept_users = 5\nauto_accept_users = 1\n";
        std::fs::write(dir.path().join("site.toml"), site).unwrap();
        let Err(LoadError::Invalid { errors, .. }) = load(dir.path()) else {
            panic!("loaded with auto_accept_users = 1")
        };
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!((errors[0].path.file_name().unwrap().to_str(), errors[0].line), (Some("site.toml"), Some(5)));
        assert!(errors[0].message.contains("auto_accept_users = 1") && errors[0].message.contains("at least 2"));
        std::fs::write(dir.path().join("site.toml"), "[learning]\nauto_accept_users = 2\n").unwrap();
        assert_eq!(load(dir.path()).unwrap().kb.site.learning.auto_accept_users, Some(2));
    }

    fn article(id: &str, title: &str) -> String {
        format!("+++\nid = \"{id}\"\ntitle = \"{title}\"\n+++\n\nSome words about {title}.\n")
    }

    fn symlink(target: impl AsRef<Path>, link: impl AsRef<Path>) {
        std::os::unix::fs::symlink(target, link).expect("symlink");
    }

    fn mkfifo(path: &Path) {
        let ok = std::process::Command::new("mkfifo").arg(path).status().expect("mkfifo").success();
        assert!(ok, "mkfifo {}", path.display());
    }

    /// `load` on another thread, so that a read that blocks fails the test instead of hanging it.
    fn load_within(dir: &Path) -> Result<Loaded, LoadError> {
        let (tx, rx) = std::sync::mpsc::channel();
        let dir = dir.to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(load(&dir));
        });
        rx.recv_timeout(std::time::Duration::from_secs(10)).expect("load returns instead of blocking")
    }

    fn errors_of(r: Result<Loaded, LoadError>) -> Vec<Diagnostic> {
        match r {
            Err(LoadError::Invalid { errors, .. }) => errors,
            Err(e) => panic!("{e}"),
            Ok(l) => panic!("loaded {} articles", l.kb.articles.len()),
        }
    }

    #[test]
    fn a_configmap_mount_of_symlinks_loads() {
        // What Kubernetes mounts: the files in a hidden timestamped dir, `..data` pointing at it,
        // and one symlink per file through `..data`.
        let tmp = tempfile::tempdir().unwrap();
        let kb = tmp.path().join("kb");
        let real = kb.join("..2024_05_01_10_00_00.123");
        fs::create_dir_all(&real).unwrap();
        fs::write(real.join("site.toml"), "bot_name = \"Mounted\"\n").unwrap();
        fs::write(real.join("synonyms.txt"), "hurt = pain\n").unwrap();
        fs::write(real.join("a.md"), article("alpha", "Alpha")).unwrap();
        fs::write(real.join("b.md"), article("beta", "Beta")).unwrap();
        symlink("..2024_05_01_10_00_00.123", kb.join("..data"));
        for f in ["site.toml", "synonyms.txt", "a.md", "b.md"] {
            symlink(format!("..data/{f}"), kb.join(f));
        }
        let l = load_within(&kb).unwrap_or_else(|e| panic!("{e}"));
        let ids: Vec<&str> = l.kb.articles.iter().map(|a| a.id.as_str()).collect();
        assert_eq!(ids, ["alpha", "beta"], "each article once, through its link");
        assert_eq!(l.kb.site.bot_name, "Mounted");
        assert_eq!(l.kb.synonyms.groups.len(), 1);
        // The knowledge dir itself may be reached through a symlink too.
        symlink(&kb, tmp.path().join("kb-link"));
        assert_eq!(load_within(&tmp.path().join("kb-link")).unwrap().kb.articles.len(), 2);
    }

    #[test]
    fn symlinks_out_of_the_dir_are_refused_by_name() {
        let tmp = tempfile::tempdir().unwrap();
        let kb = tmp.path().join("kb");
        let elsewhere = tmp.path().join("elsewhere");
        fs::create_dir_all(&kb).unwrap();
        fs::create_dir_all(elsewhere.join("more")).unwrap();
        fs::write(kb.join("a.md"), article("alpha", "Alpha")).unwrap();
        fs::write(elsewhere.join("secret.md"), article("secret", "Secret")).unwrap();
        fs::write(elsewhere.join("more/c.md"), article("gamma", "Gamma")).unwrap();
        fs::write(elsewhere.join("site.toml"), "bot_name = \"Leaked\"\n").unwrap();
        symlink(elsewhere.join("secret.md"), kb.join("leak.md"));
        symlink("../elsewhere/more", kb.join("more"));
        symlink(elsewhere.join("site.toml"), kb.join("site.toml"));
        symlink(kb.join("nothing-here.md"), kb.join("gone.md"));
        // Links that lead nowhere a knowledge file would be are not read and not reported.
        symlink("/etc/hostname", kb.join("notes.bin"));
        let errors = errors_of(load_within(&kb));
        let about = |name: &str| errors.iter().find(|e| e.path.file_name() == Some(name.as_ref()));
        for name in ["leak.md", "more", "site.toml"] {
            let e = about(name).unwrap_or_else(|| panic!("no error for {name}: {errors:?}"));
            assert!(e.to_string().contains("outside the knowledge dir"), "{e}");
        }
        assert!(about("gone.md").is_some_and(|e| e.message.contains("does not exist")), "{errors:?}");
        assert_eq!(errors.len(), 4, "{errors:?}");
    }

    #[test]
    fn a_symlinked_dir_inside_is_read_once_and_a_loop_ends() {
        let tmp = tempfile::tempdir().unwrap();
        let kb = tmp.path().join("kb");
        fs::create_dir_all(kb.join("articles")).unwrap();
        fs::write(kb.join("articles/a.md"), article("alpha", "Alpha")).unwrap();
        symlink("articles", kb.join("all"));
        symlink("..", kb.join("articles/up"));
        let l = load_within(&kb).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(l.kb.articles.len(), 1, "no duplicate id from the second way in");
        assert_eq!(l.files, 1);
    }

    #[test]
    fn fifos_are_refused_without_blocking() {
        let tmp = tempfile::tempdir().unwrap();
        let kb = tmp.path().join("kb");
        fs::create_dir_all(&kb).unwrap();
        fs::write(kb.join("a.md"), article("alpha", "Alpha")).unwrap();
        mkfifo(&kb.join("site.toml"));
        mkfifo(&kb.join("synonyms.txt"));
        mkfifo(&kb.join("pipe.md"));
        // Through a symlink too.
        symlink("pipe.md", kb.join("pipe-link.md"));
        let errors = errors_of(load_within(&kb));
        assert_eq!(errors.len(), 4, "one error per FIFO, none twice: {errors:?}");
        assert!(errors.iter().all(|e| e.message.contains("is a FIFO, not a regular file")), "{errors:?}");
        // `read_text` itself checks too (it also reads files named on the command line).
        let e = import::read_text(&kb.join("pipe.md")).unwrap_err();
        assert!(e.message.contains("FIFO"), "{e}");
    }
}
