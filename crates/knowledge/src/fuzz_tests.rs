//! Property tests: no input makes the knowledge layer panic, and what loads is consistent.
//!
//! Inputs are arbitrary bytes and arbitrary text, and text built from the lines the parsers care
//! about (`+++`, front matter fields, `<<:`, `>>:`, `Recommend`, `# `, `## `, fences, YAML `---`,
//! list items, ellipses) mixed with arbitrary Unicode. Inputs that once crashed or misbehaved are
//! kept as regression tests at the end.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::format::{has_front_matter, parse_article_file, write_article_file};
use crate::import::import;
use crate::page::{parse_page, PageFormat};
use crate::slug::{is_valid_id, slugify};
use crate::{plain_text, KnowledgeBase, LoadError};
use proptest::prelude::*;
use tempfile::TempDir;

/// Text that is not only ASCII: the parsers slice strings, so multi-byte characters matter.
fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ]{0,12}",
        "\\PC{0,10}",
        Just("Don\u{2019}t".to_string()),
        Just("\u{a0}".to_string()),
        Just("…".to_string()),
        Just("...".to_string()),
        Just("😀🏃‍♂️".to_string()),
        Just("Что такое бег".to_string()),
        Just("膝盖疼".to_string()),
        Just("\"quoted\" 'single' \\ back".to_string()),
        Just("[link](https://x/y)".to_string()),
        Just("**bold** `code` _x_".to_string()),
        Just("\r".to_string()),
        Just("\u{feff}".to_string()),
        Just("\t".to_string()),
    ]
}

fn phrase() -> impl Strategy<Value = String> {
    prop::collection::vec(word(), 0..4).prop_map(|w| w.join(" "))
}

/// One line of a page or knowledge file.
fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => phrase(),
        2 => Just(String::new()),
        2 => Just("+++".to_string()),
        1 => Just("+++ ".to_string()),
        1 => Just("---".to_string()),
        1 => phrase().prop_map(|p| format!("title: {p}")),
        2 => phrase().prop_map(|p| format!("<<: {p}")),
        2 => phrase().prop_map(|p| format!(">>:\u{a0}{p}")),
        1 => Just("<<:".to_string()),
        2 => Just("Recommend".to_string()),
        1 => Just("## Related".to_string()),
        2 => phrase().prop_map(|p| format!("## {p}")),
        2 => phrase().prop_map(|p| format!("# {p}")),
        1 => Just("## #".to_string()),
        1 => Just("```".to_string()),
        1 => phrase().prop_map(|p| format!("- [{p}](https://e.x/{p}) — {p}")),
        1 => phrase().prop_map(|p| format!("* {p} - {p}...")),
        1 => phrase().prop_map(|p| format!("{p}...")),
        2 => "[a-z0-9-]{0,6}".prop_map(|id| format!("id = \"{id}\"")),
        2 => phrase().prop_map(|t| format!("title = {}", toml_str(&t))),
        1 => "[a-z0-9-]{0,6}".prop_map(|id| format!("related = [\"{id}\", \"a\"]")),
        1 => "[a-z0-9-]{0,6}".prop_map(|id| format!("prev = \"{id}\"")),
        1 => "[a-z0-9-]{0,6}".prop_map(|id| format!("next = \"{id}\"")),
        1 => Just("stub = true".to_string()),
        1 => phrase().prop_map(|t| format!("teaser = {}", toml_str(&t))),
        1 => Just("url = \"https://example.com/a\"".to_string()),
        1 => Just("questions = [\"why?\"]".to_string()),
        1 => Just("relatd = []".to_string()),
        1 => Just("title = unquoted".to_string()),
        1 => Just("[matching]".to_string()),
    ]
}

fn toml_str(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A document: lines joined by `\n` or `\r\n`, maybe opened by front matter that names an id.
fn document() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(line(), 0..40),
        any::<bool>(),
        prop_oneof![3 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8)],
        "[a-z0-9-]{1,6}",
        phrase(),
    )
        .prop_map(|(lines, crlf, prefix, id, title)| {
            let mut doc = match prefix {
                1 => format!("+++\nid = \"{id}\"\ntitle = {}\n+++\n", toml_str(&title)),
                2 => "+++\n".to_string(),
                _ => String::new(),
            };
            doc.push_str(&lines.join(if crlf { "\r\n" } else { "\n" }));
            doc
        })
}

/// A knowledge file that parses more often than not: front matter with ids from a small set (so
/// links resolve, dangle and collide), then a body of arbitrary structured lines.
fn knowledge_file() -> impl Strategy<Value = String> {
    let id = || prop_oneof![Just("a"), Just("b"), Just("c"), Just("knee-pain"), Just("x_1"), Just("../x")];
    (
        (id(), phrase(), prop::collection::vec(id(), 0..3), prop::option::of(id()), prop::option::of(id())),
        (
            any::<bool>(),
            prop::option::of(phrase()),
            prop::option::of(Just("https://example.com/a")),
            prop::collection::vec(line(), 0..20),
        ),
    )
        .prop_map(|((id, title, related, prev, next), (stub, teaser, url, body))| {
            let mut f = format!("+++\nid = \"{id}\"\ntitle = {}\n", toml_str(&title));
            if let Some(u) = url {
                f.push_str(&format!("url = \"{u}\"\n"));
            }
            if stub {
                f.push_str("stub = true\n");
            }
            if let Some(t) = teaser {
                f.push_str(&format!("teaser = {}\n", toml_str(&t)));
            }
            if !related.is_empty() {
                let list: Vec<String> = related.iter().map(|r| format!("\"{r}\"")).collect();
                f.push_str(&format!("related = [{}]\n", list.join(", ")));
            }
            for (k, v) in [("prev", prev), ("next", next)] {
                if let Some(v) = v {
                    f.push_str(&format!("{k} = \"{v}\"\n"));
                }
            }
            f.push_str("+++\n");
            f.push_str(&body.join("\n"));
            f
        })
}

/// The rest of a knowledge file after its `id` line, likely to load: a title, links among the
/// first few ids, a body that starts with text. Paired with whether the file gets an id of its
/// own (else it collides).
fn plausible_file() -> impl Strategy<Value = (bool, String)> {
    let link = || prop_oneof![Just("a"), Just("b"), Just("c"), Just("zz")];
    (
        prop::bool::weighted(0.95),
        ("[A-Z][a-z]{0,6}", phrase()),
        prop::collection::vec(link(), 0..3),
        prop::option::of(link()),
        prop::option::weighted(0.2, phrase()),
        prop::collection::vec(line(), 0..12),
    )
        .prop_map(|(own, (t1, t2), related, next, teaser, body)| {
            let mut f = format!("title = {}\n", toml_str(&format!("{t1} {t2}")));
            if !related.is_empty() {
                let list: Vec<String> = related.iter().map(|r| format!("\"{r}\"")).collect();
                f.push_str(&format!("related = [{}]\n", list.join(", ")));
            }
            if let Some(n) = next {
                f.push_str(&format!("next = \"{n}\"\n"));
            }
            if let Some(t) = teaser {
                f.push_str(&format!("teaser = {}\n", toml_str(&t)));
            }
            f.push_str("+++\n\nSome text.\n");
            f.push_str(&body.iter().filter(|l| l.trim_end() != "+++").cloned().collect::<Vec<_>>().join("\n"));
            (own, f)
        })
}

/// File contents: structured text, arbitrary text or arbitrary bytes.
fn contents() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        6 => document().prop_map(String::into_bytes),
        4 => knowledge_file().prop_map(String::into_bytes),
        1 => "\\PC{0,300}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..400),
        1 => document().prop_flat_map(|d| {
            // Valid text with one byte replaced: invalid UTF-8 somewhere in a real document.
            let len = d.len().max(1);
            (Just(d), 0..len, any::<u8>()).prop_map(|(d, at, b)| {
                let mut v = d.into_bytes();
                if at < v.len() {
                    v[at] = b;
                } else {
                    v.push(b);
                }
                v
            })
        }),
    ]
}

/// A file name in a knowledge dir, with the reserved names and non-page extensions in the mix.
fn file_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("articles/a.md".to_string()),
        Just("articles/b.md".to_string()),
        Just("articles/c.txt".to_string()),
        Just("d.markdown".to_string()),
        Just("sub/deeper/e.md".to_string()),
        Just("pages/f.txt".to_string()),
        Just("site.toml".to_string()),
        Just("synonyms.txt".to_string()),
        Just("README.md".to_string()),
        Just("notes.json".to_string()),
        "[a-z]{1,3}\\.(md|txt)",
    ]
}

fn files() -> impl Strategy<Value = Vec<(String, Vec<u8>)>> {
    prop::collection::vec((file_name(), contents()), 0..6)
}

fn write_files(dir: &Path, files: &[(String, Vec<u8>)]) {
    for (name, bytes) in files {
        let p = dir.join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }
}

/// What a loaded knowledge base promises: valid unique ids and keys, links in range and never to
/// the article itself, lookups that agree with the article list, non-empty titles, stubs without
/// sections and articles with them.
fn assert_consistent(kb: &KnowledgeBase) {
    let n = kb.articles.len();
    assert!(n > 0, "a load that succeeds has articles");
    let mut ids = HashSet::new();
    let mut keys = HashSet::new();
    for (i, a) in kb.articles.iter().enumerate() {
        assert!(is_valid_id(&a.id), "invalid id {:?}", a.id);
        assert!(ids.insert(a.id.as_str()), "duplicate id {}", a.id);
        assert!(keys.insert(a.key.as_str()), "duplicate key {}", a.key);
        assert_eq!(kb.by_id(&a.id), Some(i as u32));
        assert_eq!(kb.by_key(&a.key), Some(i as u32));
        assert!(!a.title.trim().is_empty(), "empty title for {}", a.id);
        for &r in &a.related {
            assert!((r as usize) < n, "related index {r} out of range");
            assert_ne!(r as usize, i, "{} related to itself", a.id);
        }
        assert_eq!(a.related.iter().collect::<HashSet<_>>().len(), a.related.len(), "duplicate related in {}", a.id);
        for l in [a.prev, a.next].into_iter().flatten() {
            assert!((l as usize) < n, "prev/next index {l} out of range");
            assert_ne!(l as usize, i, "{} links to itself", a.id);
        }
        if !a.is_stub() {
            assert!(a.sections.iter().all(|s| !s.text.trim().is_empty() || s.heading.is_some()));
        }
        if let Some(u) = &a.url {
            assert!(u.starts_with("https://") || u.starts_with("http://"), "{u}");
        }
    }
}

fn load_checked(dir: &Path) -> Result<KnowledgeBase, LoadError> {
    match crate::load(dir) {
        Ok(l) => {
            assert_consistent(&l.kb);
            for w in &l.warnings {
                assert!(!w.message.contains('\n'), "{w}");
            }
            Ok(l.kb)
        }
        Err(LoadError::Invalid { errors, warnings }) => {
            assert!(!errors.is_empty(), "Invalid without errors");
            for d in errors.iter().chain(&warnings) {
                assert!(!d.message.trim().is_empty() && !d.message.contains('\n'), "one-line message: {d:?}");
                assert!(d.path.starts_with(dir), "{} is not in {}", d.path.display(), dir.display());
                assert!(d.line.is_none_or(|l| l >= 1), "lines count from 1: {d}");
            }
            Err(LoadError::Invalid { errors, warnings })
        }
        Err(e) => Err(e),
    }
}

fn every_file(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = fs::read(&p).unwrap();
                out.push((p, bytes));
            }
        }
    }
    out.sort();
    out
}

fn line_count(text: &str) -> usize {
    text.lines().count()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn parse_page_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = parse_page(&text, PageFormat::Text);
        let _ = parse_page(&text, PageFormat::Markdown);
        let _ = parse_article_file(&text);
    }

    #[test]
    fn parsed_pages_have_titles_and_lines_inside_the_text(doc in document(), md in any::<bool>()) {
        let format = if md { PageFormat::Markdown } else { PageFormat::Text };
        match parse_page(&doc, format) {
            Ok(p) => {
                let lines = line_count(&doc);
                prop_assert!(!p.title.trim().is_empty());
                prop_assert!(!p.title.contains('\n'));
                prop_assert!(p.title_line >= 1 && p.title_line <= lines, "title line {} of {}", p.title_line, lines);
                for s in &p.sections {
                    prop_assert!(!s.body.trim().is_empty(), "empty section {:?}", s);
                    prop_assert!(s.line >= 1 && s.line <= lines, "section line {} of {}", s.line, lines);
                }
                for t in &p.recommend {
                    prop_assert!(!t.title.trim().is_empty());
                }
                for nav in [&p.prev, &p.next].into_iter().flatten() {
                    prop_assert!(!nav.trim().is_empty());
                }
                prop_assert!(is_valid_id(&slugify(&p.title)), "slug {:?} of {:?}", slugify(&p.title), p.title);
            }
            Err(e) => prop_assert!(e.line >= 1 && e.message.contains("title")),
        }
    }

    #[test]
    fn knowledge_files_parse_or_fail_with_a_line_and_rewrite_stably(doc in prop_oneof![document(), knowledge_file()]) {
        match parse_article_file(&doc) {
            Ok(f) => {
                let lines = line_count(&doc);
                for s in &f.sections {
                    prop_assert!(s.line >= 1 && s.line <= lines, "section line {} of {}", s.line, lines);
                    prop_assert!(!s.body.trim().is_empty());
                }
                // Writing what was parsed and parsing it again gives the same file: the basis of
                // idempotent re-imports.
                let once = write_article_file(&f.front, &f.sections);
                let again = parse_article_file(&once).expect("written files parse");
                prop_assert_eq!(&again.front, &f.front);
                let twice = write_article_file(&again.front, &again.sections);
                prop_assert_eq!(once, twice);
            }
            Err(e) => {
                prop_assert!(e.line >= 1 && e.line <= line_count(&doc).max(1), "error line {} of {}", e.line, line_count(&doc));
                prop_assert!(!e.message.contains('\n'), "{}", e.message);
            }
        }
    }

    #[test]
    fn load_never_panics_and_what_loads_is_consistent(files in files()) {
        let tmp = TempDir::new().unwrap();
        write_files(tmp.path(), &files);
        let _ = load_checked(tmp.path());
    }

    #[test]
    fn loads_of_knowledge_files_are_consistent(docs in prop::collection::vec(plausible_file(), 1..6)) {
        let tmp = TempDir::new().unwrap();
        let files: Vec<(String, Vec<u8>)> = docs
            .into_iter()
            .enumerate()
            .map(|(i, (own_id, d))| {
                let id = if own_id { ["a", "b", "c", "d", "e", "f"][i] } else { "a" };
                (format!("articles/{i}.md"), format!("+++\nid = \"{id}\"\n{d}").into_bytes())
            })
            .collect();
        write_files(tmp.path(), &files);
        if let Ok(kb) = load_checked(tmp.path()) {
            // Every file is one article, under its own id.
            prop_assert_eq!(kb.articles.len(), files.len());
            for a in &kb.articles {
                let text = fs::read_to_string(&a.source).unwrap();
                prop_assert_eq!(&parse_article_file(&text).unwrap().front.id, &a.id);
            }
        }
    }

    #[test]
    fn import_never_panics_and_its_output_passes_check_and_reimports_unchanged(
        pages in prop::collection::vec((prop_oneof![Just("md"), Just("txt")], contents()), 1..5)
    ) {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("pages");
        fs::create_dir_all(&dir).unwrap();
        let mut inputs = Vec::new();
        for (i, (ext, bytes)) in pages.iter().enumerate() {
            let p = dir.join(format!("p{i}.{ext}"));
            fs::write(&p, bytes).unwrap();
            inputs.push(p);
        }
        let out = tmp.path().join("kb");
        let report = import(&inputs, &out).expect("a fresh out dir has nothing that fails to parse");
        prop_assert_eq!(report.pages + report.errors.len(), pages.len(), "{:?}", report);
        for e in &report.errors {
            prop_assert!(e.line.is_some(), "{}", e);
            prop_assert!(!e.message.contains('\n'), "{}", e);
        }
        if report.pages > 0 {
            // Whatever import writes, check accepts.
            let kb = match load_checked(&out) {
                Ok(kb) => kb,
                Err(e) => return Err(TestCaseError::fail(format!("imported knowledge does not load: {e}"))),
            };
            prop_assert_eq!(kb.stats().stubs, report.stubs);
            let before = every_file(&out);
            let again = import(&inputs, &out).expect("re-import");
            prop_assert_eq!(again.created + again.updated, 0, "{:?}", again);
            prop_assert_eq!(again.unchanged, kb.articles.len());
            prop_assert_eq!(every_file(&out), before);
        }
    }

    #[test]
    fn import_keeps_every_word_of_a_page(doc in document(), md in any::<bool>()) {
        // Whatever a page's text looks like (`## ` lines in a text page, an unclosed code fence,
        // a paragraph repeating the title), its words survive the knowledge file format.
        let format = if md { PageFormat::Markdown } else { PageFormat::Text };
        let Ok(page) = parse_page(&doc, format) else { return Ok(()) };
        if has_front_matter(&doc) {
            return Ok(());
        }
        let tmp = TempDir::new().unwrap();
        let path = tmp.path().join(if md { "p.md" } else { "p.txt" });
        fs::write(&path, &doc).unwrap();
        let out = tmp.path().join("kb");
        let report = import(std::slice::from_ref(&path), &out).unwrap();
        let words = |texts: Vec<String>| -> Vec<String> {
            texts
                .iter()
                .flat_map(|t| t.split(|c: char| c.is_whitespace() || matches!(c, '#' | '\\' | '`')).map(str::to_string).collect::<Vec<_>>())
                .filter(|w| !w.is_empty())
                .collect()
        };
        let want = words(page.sections.iter().map(|s| plain_text(&s.body)).collect());
        if report.pages == 0 {
            prop_assert!(want.is_empty(), "a page with text was refused: {:?}", report.errors);
            return Ok(());
        }
        let kb = load_checked(&out).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let id = kb.articles.iter().find(|a| !a.is_stub()).map(|a| a.id.clone());
        let a = &kb.articles[kb.by_id(&id.unwrap()).unwrap() as usize];
        prop_assert_eq!(words(a.sections.iter().map(|s| s.text.clone()).collect()), want);
    }

    #[test]
    fn pages_dropped_into_a_knowledge_dir_load_like_their_import(
        pages in prop::collection::vec(document(), 1..4)
    ) {
        // Raw pages in the knowledge dir and their import give the same articles, as long as no
        // two pages are the same article (the loader rejects that, import replaces).
        let tmp = TempDir::new().unwrap();
        let raw = tmp.path().join("raw");
        fs::create_dir_all(&raw).unwrap();
        let mut inputs = Vec::new();
        for (i, p) in pages.iter().enumerate() {
            if has_front_matter(p) {
                continue;
            }
            let path = raw.join(format!("p{i}.txt"));
            fs::write(&path, p).unwrap();
            inputs.push(path);
        }
        let Ok(raw_kb) = load_checked(&raw) else { return Ok(()) };
        let out = tmp.path().join("kb");
        let report = import(&inputs, &out).unwrap();
        prop_assert!(report.errors.is_empty(), "{:?}", report.errors);
        let kb = load_checked(&out).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let summary = |kb: &KnowledgeBase| {
            let mut v: Vec<_> = kb
                .articles
                .iter()
                .map(|a| {
                    let id = |i: Option<u32>| i.map(|i| kb.articles[i as usize].id.clone());
                    (
                        a.id.clone(),
                        a.title.clone(),
                        a.teaser.clone(),
                        a.sections.clone(),
                        a.related.iter().map(|&r| kb.articles[r as usize].id.clone()).collect::<Vec<_>>(),
                        id(a.prev),
                        id(a.next),
                    )
                })
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        prop_assert_eq!(summary(&raw_kb), summary(&kb));
    }
}

// ---- Regression inputs: found by the properties above (or by reading the code), kept here. ----

fn load_one(name: &str, text: &[u8]) -> Result<KnowledgeBase, LoadError> {
    let tmp = TempDir::new().unwrap();
    write_files(tmp.path(), &[(name.to_string(), text.to_vec())]);
    load_checked(tmp.path())
}

#[test]
fn regression_page_with_title_only_is_an_error_not_an_unloadable_import() {
    // Import used to write a non-stub article without body, which `check` then rejected.
    let tmp = TempDir::new().unwrap();
    let p = tmp.path().join("t.txt");
    fs::write(&p, "Just a title\n\n<<: Previous one\n").unwrap();
    let r = import(&[p], &tmp.path().join("kb")).unwrap();
    assert_eq!(r.pages, 0);
    assert_eq!(r.errors.len(), 1);
    assert_eq!(r.errors[0].line, Some(1));
    assert!(r.errors[0].message.contains("no text"), "{}", r.errors[0]);
}

#[test]
fn regression_toml_errors_are_one_line() {
    let e = parse_article_file("+++\nid = \"a\"\ntitle = A\n+++\n").unwrap_err();
    assert!(!e.message.contains('\n'), "{}", e.message);
    assert_eq!(e.line, 3);
}

#[test]
fn regression_multibyte_text_before_a_toml_error() {
    let e = parse_article_file("+++\ntitle = \"Ünïcödé 😀\"\nid = 😀\n+++\nx\n").unwrap_err();
    assert_eq!(e.line, 3);
    let e = load_one("site.toml", "bot_name = \"Бот 😀\"\nlanguage = 😀\n".as_bytes());
    assert!(
        matches!(e, Err(LoadError::Invalid { ref errors, .. }) if errors.iter().any(|d| d.line == Some(2))),
        "{e:?}"
    );
}

#[test]
fn regression_odd_inputs_do_not_panic() {
    let texts: &[&str] = &[
        "",
        "\u{feff}",
        "+++",
        "+++\n+++",
        "+++\r\n+++\r\n",
        "---\n",
        "---\r\ntitle: é\r\n---é",
        "---\ntitle: x\n---",
        "# \n## \n",
        "## #\n",
        "<<:\n>>:\n",
        "Recommend\n\n...\n\n…",
        "T\n\nRecommend",
        "[](",
        "![",
        "# T\n\n## Related\n\n- [](https://x)\n- [x](\n",
        "\r\r\r",
        "\u{a0}\n\u{a0}\n",
        "T\u{2028}x\n\nbody",
    ];
    for t in texts {
        for f in [PageFormat::Text, PageFormat::Markdown] {
            let _ = parse_page(t, f);
        }
        let _ = parse_article_file(t);
        for name in ["a.md", "a.txt", "site.toml", "synonyms.txt"] {
            let _ = load_one(name, t.as_bytes());
        }
    }
}

#[test]
fn regression_empty_heading_round_trips() {
    // `## #` is a heading whose text is empty; writing it back must not turn it into body text.
    let f = parse_article_file("+++\nid = \"a\"\ntitle = \"A\"\n+++\n\n## #\n\ntext\n").unwrap();
    let once = write_article_file(&f.front, &f.sections);
    let again = parse_article_file(&once).unwrap();
    assert_eq!(write_article_file(&again.front, &again.sections), once);
}

#[test]
fn regression_unclosed_code_fence_rewrites_stably() {
    // Minimal input found by `knowledge_files_parse_or_fail_with_a_line_and_rewrite_stably`.
    let doc = "+++\nid = \"a\"\ntitle = \"\"\n+++\n```\n\n\n- [](https://e.x/) — ";
    let f = parse_article_file(doc).unwrap();
    assert_eq!(f.sections.len(), 1, "the open code block runs to the end");
    let once = write_article_file(&f.front, &f.sections);
    let again = parse_article_file(&once).unwrap();
    assert_eq!(again.sections.len(), 1);
    assert_eq!(write_article_file(&again.front, &again.sections), once);
}

#[test]
fn regression_text_page_lines_that_look_like_markup_survive_import() {
    // A scraped text page has no markup: `## `, a repeated `# Title`, a lone fence are its text.
    // They used to become headings (losing the paragraph, or the whole body) once imported.
    let tmp = TempDir::new().unwrap();
    let page = tmp.path().join("p.txt");
    fs::write(&page, "Title\n\n# Title\n\n## Not a heading but a line\n\n```\n\nLast words.\n").unwrap();
    let raw = tmp.path().join("raw");
    fs::create_dir_all(&raw).unwrap();
    fs::copy(&page, raw.join("p.txt")).unwrap();
    let out = tmp.path().join("kb");
    let r = import(&[page], &out).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let kb = load_checked(&out).unwrap();
    let a = &kb.articles[kb.by_id("title").unwrap() as usize];
    let texts: Vec<&str> = a.sections.iter().map(|s| s.text.as_str()).collect();
    assert_eq!(texts, vec!["# Title", "## Not a heading but a line", "Last words."]);
    assert!(a.sections.iter().all(|s| s.heading.is_none()));
    // The page dropped into a knowledge dir reads the same.
    let raw_kb = load_checked(&raw).unwrap();
    let b = &raw_kb.articles[raw_kb.by_id("title").unwrap() as usize];
    assert_eq!(b.sections, a.sections);
}

#[test]
fn regression_markdown_intro_paragraphs_are_sections_in_both_paths() {
    // Import splits the intro of a Markdown page into paragraphs (the knowledge format's rule);
    // loading the page from the knowledge dir used to keep it as one section.
    let tmp = TempDir::new().unwrap();
    let raw = tmp.path().join("raw");
    fs::create_dir_all(&raw).unwrap();
    let page = raw.join("p.md");
    fs::write(&page, "# Tea\n\nFirst paragraph.\n\nSecond paragraph.\n\n## Water\n\nHot.\n\nNot boiling.\n").unwrap();
    let raw_kb = load_checked(&raw).unwrap();
    let out = tmp.path().join("kb");
    import(&[page], &out).unwrap();
    let kb = load_checked(&out).unwrap();
    let a = &kb.articles[0];
    assert_eq!(a.sections.len(), 3);
    assert_eq!(a.sections[2].text, "Hot.\n\nNot boiling.");
    assert_eq!(raw_kb.articles[0].sections, a.sections);
}

#[test]
fn regression_sections_of_markup_only_are_not_text() {
    // An empty code block is a section with nothing to read: it is not an answer, and an
    // article of nothing else has an empty body.
    let err = load_one("a.md", b"+++\nid = \"a\"\ntitle = \"A\"\n+++\n\n```\n```\n").unwrap_err();
    assert!(err.to_string().contains("empty body"), "{err}");
    let kb = load_one(
        "a.md",
        b"+++\nid = \"a\"\ntitle = \"A\"\n+++\n\n**\n\nReal text.\n\n## #\n\nUnder an empty heading.\n",
    )
    .unwrap();
    let texts: Vec<(Option<&str>, &str)> =
        kb.articles[0].sections.iter().map(|s| (s.heading.as_deref(), s.text.as_str())).collect();
    assert_eq!(texts, vec![(None, "Real text."), (None, "Under an empty heading.")]);
    // A page of markup only is refused by import rather than written as an empty article.
    let tmp = TempDir::new().unwrap();
    let p = tmp.path().join("p.md");
    fs::write(&p, "# Title\n\n```\n```\n").unwrap();
    let r = import(&[p], &tmp.path().join("kb")).unwrap();
    assert_eq!(r.pages, 0);
    assert!(r.errors[0].message.contains("no text"));
}

/// The import property for one page: import never panics; what it writes loads; re-import
/// changes nothing.
fn import_then_load(name: &str, bytes: &[u8]) {
    let tmp = TempDir::new().unwrap();
    let p = tmp.path().join(name);
    fs::write(&p, bytes).unwrap();
    let out = tmp.path().join("kb");
    let r = import(std::slice::from_ref(&p), &out).unwrap();
    if r.pages > 0 {
        load_checked(&out).unwrap_or_else(|e| panic!("{e}"));
        let before = every_file(&out);
        let again = import(&[p], &out).unwrap();
        assert_eq!(again.created + again.updated, 0);
        assert_eq!(every_file(&out), before);
    }
}

#[test]
fn regression_seeds_found_by_proptest() {
    // `knowledge_files_parse_or_fail_with_a_line_and_rewrite_stably`: an empty `## #` heading
    // was written as `## ` and read back as text.
    let doc = "+++\nid = \"-\"\ntitle = \"\"\n+++\n## #\n\n# \n";
    let f = parse_article_file(doc).unwrap();
    let once = write_article_file(&f.front, &f.sections);
    let again = parse_article_file(&once).unwrap();
    assert_eq!(write_article_file(&again.front, &again.sections), once);
    // `import_never_panics_...`: a Markdown page opening with an empty heading before its title
    // imported into an article `check` rejected (a section of no text).
    import_then_load("p.md", "## #\n# …\nRecommend".as_bytes());
    import_then_load("p.txt", "## #\n# …\nRecommend".as_bytes());
    // `load_never_panics_...`: a YAML-looking opening and an empty heading.
    let _ = load_one("articles/c.txt", b"---\n## \n");
    let _ = load_one("articles/c.md", b"---\n## \n");
}

/// The shipped seed page and knowledge files, damaged: bytes flipped, cut short, lines
/// repeated. Realistic inputs find more than random ones.
fn damaged(original: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    let len = original.len();
    (prop::collection::vec((0..len, any::<u8>()), 0..8), 0..=len, prop::collection::vec((0..len, 0..len), 0..3))
        .prop_map(move |(flips, cut, copies)| {
            let mut b = original.clone();
            for (at, byte) in flips {
                b[at] = byte;
            }
            for (from, to) in copies {
                // A piece of up to 200 bytes appended again.
                let start = from.min(to);
                let end = from.max(to).min(start + 200).min(b.len());
                let piece = b[start..end].to_vec();
                b.extend_from_slice(&piece);
            }
            b.truncate(cut.max(1).min(b.len()));
            b
        })
}

fn seed_page() -> Vec<u8> {
    fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/seed-page.txt")).unwrap()
}

fn shipped_article() -> Vec<u8> {
    fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge/articles/what-causes-knee-pain-when-running.md"),
    )
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn damaged_shipped_inputs_never_panic(page in damaged(seed_page()), article in damaged(shipped_article())) {
        let _ = parse_page(&String::from_utf8_lossy(&page), PageFormat::Text);
        let _ = parse_page(&String::from_utf8_lossy(&page), PageFormat::Markdown);
        let _ = parse_article_file(&String::from_utf8_lossy(&article));
        let dir = TempDir::new().unwrap();
        fs::write(dir.path().join("page.txt"), &page).unwrap();
        fs::write(dir.path().join("article.md"), &article).unwrap();
        if let Ok(kb) = load_checked(dir.path()) {
            assert_consistent(&kb);
        }
    }
}

/// Found in review: a line of a million `[` with no link to close them took two minutes to
/// load (each `[` searched the rest of the line). The deadline is a hang guard, far above the
/// milliseconds it takes now.
#[test]
fn a_line_of_open_brackets_loads_in_linear_time() {
    let tmp = TempDir::new().unwrap();
    fs::create_dir_all(tmp.path().join("articles")).unwrap();
    let line = format!("{}](x", "[".repeat(1_000_000));
    fs::write(tmp.path().join("articles/a.md"), format!("+++\nid = \"a\"\ntitle = \"A\"\n+++\n\n{line}\n")).unwrap();
    let started = std::time::Instant::now();
    let kb = crate::load(tmp.path()).expect("loads").kb;
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "took {:?}", started.elapsed());
    assert_eq!(kb.articles[0].sections[0].text, line, "no link: the text stays as written");
    assert_eq!(plain_text("[a [b](u) [c"), "[a b [c");
}

/// Found by the property test in CI: an id with an escaped newline made a two-line error.
#[test]
fn an_id_with_a_newline_is_reported_on_one_line() {
    let tmp = TempDir::new().unwrap();
    fs::create_dir_all(tmp.path().join("articles")).unwrap();
    let a = "+++\nid = \"a\"\ntitle = \"A\"\nnext = \"what-r\\nning\"\n+++\n\nBody.\n";
    fs::write(tmp.path().join("articles/a.md"), a).unwrap();
    let warnings = match crate::load(tmp.path()) {
        Ok(loaded) => loaded.warnings,
        other => panic!("a dangling link is only a warning: {other:?}"),
    };
    assert!(warnings.iter().any(|e| e.message.contains("what-r\\nning")), "{warnings:?}");
}
