//! `knowledge::load` and `articlebot check` on broken knowledge dirs: every error kind is reported
//! with the right file, the right line and what to change, and the binary exits 1 (2 when the dir
//! itself is missing or not a dir).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use articlebot_engine::{load_knowledge, Diagnostic, LoadError};
use tempfile::TempDir;

/// A valid article so that a case's dir is not "empty" and has something to link to.
const BASE: &str = "+++\nid = \"knee-pain\"\ntitle = \"Knee pain\"\n+++\n\nKnees hurt when you run too much.\n";

/// Builds a knowledge dir: `articles/base.md` plus `files` (path relative to the dir, bytes).
fn dir_with(files: &[(&str, &[u8])]) -> TempDir {
    let tmp = TempDir::new().unwrap();
    write(tmp.path(), "articles/base.md", BASE.as_bytes());
    for (name, bytes) in files {
        write(tmp.path(), name, bytes);
    }
    tmp
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let p = dir.join(name);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, bytes).unwrap();
}

/// Loads `dir`, which must be invalid, and returns (errors, warnings).
fn invalid(dir: &Path) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
    match load_knowledge(dir) {
        Ok(l) => panic!(
            "{} loaded but should not: {} articles, warnings {:?}",
            dir.display(),
            l.kb.articles.len(),
            l.warnings
        ),
        Err(LoadError::Invalid { errors, warnings }) => {
            for d in errors.iter().chain(&warnings) {
                assert!(!d.message.contains('\n'), "a diagnostic is one line: {d:?}");
                assert!(!d.message.trim().is_empty(), "{d:?}");
            }
            (errors, warnings)
        }
        Err(e) => panic!("expected LoadError::Invalid, got {e}"),
    }
}

fn check(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_articlebot"))
        .arg("check")
        .arg(dir)
        .env_remove("ARTICLEBOT_KNOWLEDGE")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// One expected diagnostic: the file (relative to the dir), its line, and words the message
/// must contain (case-insensitive) — what is wrong and what to change.
struct Expect<'a> {
    file: &'a str,
    line: Option<usize>,
    words: &'a [&'a str],
}

fn exp<'a>(file: &'a str, line: usize, words: &'a [&'a str]) -> Expect<'a> {
    Expect { file, line: Some(line), words }
}

fn matches(d: &Diagnostic, dir: &Path, e: &Expect) -> bool {
    let msg = d.message.to_lowercase();
    d.path == dir.join(e.file) && d.line == e.line && e.words.iter().all(|w| msg.contains(&w.to_lowercase()))
}

/// Asserts the library reports exactly `expected` (as errors), and that `articlebot check` prints
/// each as `error: FILE:LINE: message` and exits 1.
fn assert_errors(dir: &Path, expected: &[Expect]) {
    let (errors, _) = invalid(dir);
    for e in expected {
        assert!(
            errors.iter().any(|d| matches(d, dir, e)),
            "no error at {}:{:?} containing {:?}; errors:\n{}",
            e.file,
            e.line,
            e.words,
            errors.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")
        );
    }
    assert_eq!(
        errors.len(),
        expected.len(),
        "unexpected extra errors:\n{}",
        errors.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n")
    );

    let out = check(dir);
    let stdout = text(&out.stdout);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "check must exit 1\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let error_lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(error_lines.len(), expected.len(), "{stdout}");
    for e in expected {
        let prefix = match e.line {
            Some(l) => format!("error: {}:{}: ", dir.join(e.file).display(), l),
            None => format!("error: {}: ", dir.join(e.file).display()),
        };
        assert!(
            error_lines.iter().any(|l| l.starts_with(&prefix)
                && e.words.iter().all(|w| l.to_lowercase().contains(&w.to_lowercase()))),
            "check output has no line starting {prefix:?} with {:?}:\n{stdout}",
            e.words
        );
    }
    let summary: Vec<&str> = stderr.lines().collect();
    assert_eq!(summary.len(), 1, "one error line on stderr: {stderr}");
    assert!(summary[0].starts_with("error: ") && summary[0].contains(&format!("{} error", expected.len())), "{stderr}");
}

#[test]
fn the_base_dir_is_valid() {
    let tmp = dir_with(&[]);
    let loaded = load_knowledge(tmp.path()).unwrap();
    assert_eq!(loaded.kb.articles.len(), 1);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let out = check(tmp.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("ok: 1 article, "), "{}", text(&out.stdout));
}

#[test]
fn duplicate_ids_across_two_files() {
    let a = "+++\nid = \"dup\"\ntitle = \"First\"\n+++\n\nOne.\n";
    let b = "+++\ntitle = \"Avoid injuries: a guide\"\nid = \"dup\"\n+++\n\nTwo.\n";
    let tmp = dir_with(&[("articles/a.md", a.as_bytes()), ("articles/z/b.md", b.as_bytes())]);
    // The later file (in path order) is the duplicate, at its `id` line; the message names the other.
    assert_errors(tmp.path(), &[exp("articles/z/b.md", 3, &["duplicate id `dup`", "a.md", "another id"])]);
}

#[test]
fn duplicate_id_with_the_base_article_in_a_txt_file() {
    let b = "+++\nid = \"knee-pain\"\ntitle = \"Knee pain again\"\n+++\n\nTwo.\n";
    let tmp = dir_with(&[("more/x.txt", b.as_bytes())]);
    assert_errors(tmp.path(), &[exp("more/x.txt", 2, &["duplicate id `knee-pain`", "base.md"])]);
}

#[test]
fn dangling_related_prev_next_with_did_you_mean_when_close() {
    let a = "+++\n\
             id = \"a\"\n\
             title = \"A\"\n\
             related = [\n\
             \x20 \"knee-pain\",\n\
             \x20 \"knee-pian\",\n\
             \x20 \"nothing-like-any-article\",\n\
             ]\n\
             prev = \"knee-pan\"\n\
             next = \"zzz\"\n\
             +++\n\nBody.\n";
    let tmp = dir_with(&[("articles/a.md", a.as_bytes())]);
    // A broken link is left out with a warning: the rest of the site still loads.
    let loaded = load_knowledge(tmp.path()).expect("dangling links do not stop the load");
    let expected = [
        exp(
            "articles/a.md",
            6,
            &["related `knee-pian`", "did you mean `knee-pain`", "left out", "fix the id or add the article"],
        ),
        exp("articles/a.md", 7, &["related `nothing-like-any-article`", "fix the id"]),
        exp("articles/a.md", 9, &["prev `knee-pan`", "did you mean `knee-pain`"]),
        exp("articles/a.md", 10, &["next `zzz`", "add the article"]),
    ];
    for e in &expected {
        assert!(
            loaded.warnings.iter().any(|d| matches(d, tmp.path(), e)),
            "{:?} not in {:?}",
            e.words,
            loaded.warnings
        );
    }
    let a = loaded.kb.by_id("a").map(|i| &loaded.kb.articles[i as usize]).unwrap();
    assert_eq!((a.prev, a.next), (None, None));
    assert_eq!(a.related.len(), loaded.kb.by_id("knee-pain").map_or(0, |_| 1));
    for far in ["nothing-like-any-article", "zzz"] {
        let d = loaded.warnings.iter().find(|d| d.message.contains(far)).unwrap();
        assert!(!d.message.contains("did you mean"), "no suggestion for a far id: {d}");
    }
    // `check` reports them; with --strict they fail it.
    let out = check(tmp.path());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!("warning: {}:10: next `zzz`", tmp.path().join("articles/a.md").display())),
        "{stdout}"
    );
    let strict = Command::new(env!("CARGO_BIN_EXE_articlebot"))
        .args(["check", "--strict"])
        .arg(tmp.path())
        .env_remove("ARTICLEBOT_KNOWLEDGE")
        .output()
        .unwrap();
    assert_eq!(strict.status.code(), Some(1), "{}", text(&strict.stderr));
    assert!(text(&strict.stdout).contains("next `zzz`"));
    assert!(text(&strict.stderr).contains("4 warnings"), "{}", text(&strict.stderr));
}

#[test]
fn short_unknown_ids_get_no_silly_suggestion() {
    let a = "+++\nid = \"a\"\ntitle = \"A\"\nrelated = [\"b\"]\n+++\n\nBody.\n";
    let tmp = dir_with(&[("articles/a.md", a.as_bytes())]);
    let warnings = load_knowledge(tmp.path()).unwrap().warnings;
    assert_eq!(warnings.len(), 1);
    assert!(!warnings[0].message.contains("did you mean"), "`b` is not close to `a`: {}", warnings[0]);
}

#[test]
fn self_links_are_warnings() {
    let a = "+++\nid = \"a\"\ntitle = \"A\"\nrelated = [\"a\", \"knee-pain\"]\nnext = \"a\"\n+++\n\nBody.\n";
    let tmp = dir_with(&[("articles/a.md", a.as_bytes())]);
    let loaded = load_knowledge(tmp.path()).unwrap();
    assert_eq!(loaded.warnings.len(), 2, "{:?}", loaded.warnings);
    assert!(loaded.warnings.iter().all(|w| w.message.contains("itself") && w.path.ends_with("articles/a.md")));
    let a = &loaded.kb.articles[loaded.kb.by_id("a").unwrap() as usize];
    assert_eq!(a.related, vec![loaded.kb.by_id("knee-pain").unwrap()]);
    assert_eq!(a.next, None);
}

#[test]
fn empty_title() {
    let a = "+++\nid = \"a\"\ntitle = \"   \"\n+++\n\nBody.\n";
    let tmp = dir_with(&[("articles/a.md", a.as_bytes())]);
    assert_errors(tmp.path(), &[exp("articles/a.md", 3, &["empty title", "give the article a title"])]);
}

#[test]
fn empty_body_of_a_non_stub_but_not_of_a_stub() {
    let a = "+++\nid = \"a\"\ntitle = \"A\"\nteaser = \"About A...\"\n+++\n\n\n   \n";
    let stub = "+++\nid = \"s\"\ntitle = \"S\"\nstub = true\nteaser = \"About S...\"\n+++\n";
    let tmp = dir_with(&[("articles/a.md", a.as_bytes()), ("articles/s.md", stub.as_bytes())]);
    assert_errors(
        tmp.path(),
        &[exp("articles/a.md", 2, &["empty body", "write at least one paragraph", "stub = true"])],
    );
}

#[test]
fn a_stub_with_a_body_is_a_warning() {
    let s = "+++\nid = \"s\"\ntitle = \"S\"\nstub = true\n+++\n\nText.\n";
    let tmp = dir_with(&[("articles/s.md", s.as_bytes())]);
    let loaded = load_knowledge(tmp.path()).unwrap();
    assert_eq!(loaded.warnings.len(), 1);
    assert_eq!(loaded.warnings[0].line, Some(4));
    assert!(loaded.warnings[0].message.contains("remove `stub = true`"));
}

#[test]
fn bad_front_matter_toml_syntax() {
    let a = "+++\nid = \"a\"\ntitle = Unquoted title\n+++\n\nBody.\n";
    let tmp = dir_with(&[("articles/a.md", a.as_bytes())]);
    assert_errors(tmp.path(), &[exp("articles/a.md", 3, &["bad front matter", "expected"])]);
}

#[test]
fn bad_front_matter_unknown_field() {
    let a = "+++\nid = \"a\"\ntitle = \"A\"\nrelatd = [\"knee-pain\"]\n+++\n\nBody.\n";
    let tmp = dir_with(&[("articles/a.md", a.as_bytes())]);
    assert_errors(tmp.path(), &[exp("articles/a.md", 4, &["unknown field `relatd`", "related"])]);
}

#[test]
fn bad_front_matter_missing_id_and_missing_title() {
    let a = "+++\ntitle = \"A\"\n+++\n\nBody.\n";
    let b = "+++\nid = \"b\"\n+++\n\nBody.\n";
    let tmp = dir_with(&[("articles/a.md", a.as_bytes()), ("articles/b.md", b.as_bytes())]);
    assert_errors(
        tmp.path(),
        &[
            exp("articles/a.md", 2, &["missing field `id`", "add `id = "]),
            exp("articles/b.md", 2, &["missing field `title`", "add `title = "]),
        ],
    );
}

#[test]
fn bad_front_matter_not_closed_and_wrong_types() {
    let a = "+++\nid = \"a\"\ntitle = \"A\"\n\nBody without a closing line.\n";
    let b = "+++\nid = \"b\"\ntitle = \"B\"\n\nrelated = \"knee-pain\"\n+++\n\nBody.\n";
    let tmp = dir_with(&[("articles/a.md", a.as_bytes()), ("articles/b.md", b.as_bytes())]);
    assert_errors(
        tmp.path(),
        &[
            exp("articles/a.md", 1, &["not closed", "add a `+++` line"]),
            exp("articles/b.md", 5, &["bad front matter", "sequence"]),
        ],
    );
}

#[test]
fn invalid_utf8_names_the_line_of_the_bad_byte() {
    let mut a = b"+++\nid = \"a\"\ntitle = \"A\"\n+++\n\nGood line.\nBad \xff\xfe byte here.\n".to_vec();
    a.extend_from_slice("More text — fine.\n".as_bytes());
    let tmp = dir_with(&[("articles/a.md", &a), ("synonyms.txt", b"jog = run\n\n\xc3(\n")]);
    assert_errors(
        tmp.path(),
        &[
            exp("articles/a.md", 7, &["invalid utf-8", "save the file as utf-8"]),
            exp("synonyms.txt", 3, &["invalid utf-8"]),
        ],
    );
}

#[test]
fn oversized_file_names_the_line_where_the_limit_is_passed() {
    // 100-byte lines: the 1 MiB limit falls inside line 1048576 / 100 + 1.
    let line = format!("{}\n", "x".repeat(99));
    let mut big = String::from("+++\nid = \"big\"\ntitle = \"Big\"\n+++\n");
    while big.len() <= 1024 * 1024 + 10 {
        big.push_str(&line);
    }
    let limit_line = big.as_bytes()[..1024 * 1024].iter().filter(|&&b| b == b'\n').count() + 1;
    let tmp = dir_with(&[("articles/big.md", big.as_bytes())]);
    assert_errors(tmp.path(), &[exp("articles/big.md", limit_line, &["too large", "limit", "split"])]);
    // Exactly at the limit is fine (as far as size goes).
    let mut at_limit = String::from("+++\nid = \"big\"\ntitle = \"Big\"\n+++\n\n");
    at_limit.push_str(&"y".repeat(1024 * 1024 - at_limit.len()));
    assert_eq!(at_limit.len(), 1024 * 1024);
    let tmp = dir_with(&[("articles/big.md", at_limit.as_bytes())]);
    assert!(load_knowledge(tmp.path()).is_ok());
}

#[test]
fn invalid_id_characters() {
    let a = "+++\nid = \"../x\"\ntitle = \"Escape attempt\"\n+++\n\nBody.\n";
    let b = "+++\ntitle = \"Upper\"\nid = \"Upper Case\"\n+++\n\nBody.\n";
    let c = "+++\nid = \"\"\ntitle = \"No id\"\n+++\n\nBody.\n";
    let tmp =
        dir_with(&[("articles/a.md", a.as_bytes()), ("articles/b.md", b.as_bytes()), ("articles/c.md", c.as_bytes())]);
    assert_errors(
        tmp.path(),
        &[
            exp("articles/a.md", 2, &["id `../x` is not valid", "lower-case letters", "like `escape-attempt`"]),
            exp("articles/b.md", 3, &["id `Upper Case` is not valid", "like `upper`"]),
            exp("articles/c.md", 2, &["id `` is not valid", "like `no-id`"]),
        ],
    );
}

#[test]
fn bad_url() {
    let a = "+++\nid = \"a\"\ntitle = \"A\"\nurl = \"ftp://example.com/a\"\n+++\n\nBody.\n";
    let tmp = dir_with(&[("articles/a.md", a.as_bytes())]);
    assert_errors(tmp.path(), &[exp("articles/a.md", 4, &["url `ftp://example.com/a`", "must start with https://"])]);
}

/// Telegram refuses a message with a malformed link, so these would cost every answer.
#[test]
fn malformed_urls() {
    let file = |u: &str| format!("+++\nid = \"a\"\ntitle = \"A\"\nurl = \"{u}\"\n+++\n\nBody.\n");
    for (url, says) in [
        ("https://", "empty host"),
        ("http://exa mple.com/a", "contains ' '"),
        ("https://example.com/a\\\"b", "contains '\"'"),
        ("https://[::1/x", "not a valid link"),
    ] {
        let tmp = dir_with(&[("articles/a.md", file(url).as_bytes())]);
        assert_errors(tmp.path(), &[exp("articles/a.md", 4, &[says])]);
    }
    let ok = dir_with(&[("articles/a.md", file("https://example.com/a%20b?x=1#y").as_bytes())]);
    assert!(load_knowledge(ok.path()).is_ok());
}

#[test]
fn bad_site_toml_unknown_key() {
    let site = "bot_name = \"Bot\"\nlanguage = \"english\"\nbot_nmae = \"typo\"\n";
    let tmp = dir_with(&[("site.toml", site.as_bytes())]);
    assert_errors(tmp.path(), &[exp("site.toml", 3, &["bad site config", "unknown field `bot_nmae`", "bot_name"])]);
}

#[test]
fn bad_site_toml_unknown_key_in_matching() {
    let site = "[matching]\nanswer = 0.5\nsugest = 0.2\n";
    let tmp = dir_with(&[("site.toml", site.as_bytes())]);
    assert_errors(tmp.path(), &[exp("site.toml", 3, &["unknown field `sugest`", "suggest"])]);
}

#[test]
fn bad_site_toml_syntax_is_one_line() {
    let site = "bot_name = \"Bot\"\n\nlanguage = english\n";
    let tmp = dir_with(&[("site.toml", site.as_bytes())]);
    assert_errors(tmp.path(), &[exp("site.toml", 3, &["bad site config"])]);
}

#[test]
fn bad_site_toml_values_point_at_their_lines_not_at_comments() {
    let site = "# language: see the docs\n\
                language = \"klingon\"\n\
                # base_url = \"https://example.com/\"\n\
                base_url = \"example.com/\"\n\
                \n\
                [matching]\n\
                # suggest = 0.25\n\
                answer = 0.3\n\
                suggest = 0.5\n\
                margin = 1.5\n";
    let tmp = dir_with(&[("site.toml", site.as_bytes())]);
    assert_errors(
        tmp.path(),
        &[
            exp("site.toml", 2, &["language `klingon` is not supported", "use one of", "english"]),
            exp("site.toml", 4, &["base_url `example.com/`", "must start with https://"]),
            exp("site.toml", 9, &["matching.suggest (0.5) must not be above matching.answer (0.3)"]),
            exp("site.toml", 10, &["matching.margin = 1.5 is outside 0..1"]),
        ],
    );
}

#[test]
fn synonym_lines_with_one_term_are_warnings_not_errors() {
    let syn = "# comment\njog = run\nlonely\n\n  , = ,\nhurt = pain # trailing comment\n";
    let tmp = dir_with(&[("synonyms.txt", syn.as_bytes())]);
    let loaded = load_knowledge(tmp.path()).expect("warnings do not fail a load");
    assert_eq!(loaded.kb.synonyms.groups.len(), 2);
    let w: Vec<(Option<usize>, &Path)> = loaded.warnings.iter().map(|w| (w.line, w.path.as_path())).collect();
    let syn_path = tmp.path().join("synonyms.txt");
    assert_eq!(w, vec![(Some(3), syn_path.as_path()), (Some(5), syn_path.as_path())]);
    assert!(loaded.warnings[0].message.contains("a = b"), "{}", loaded.warnings[0]);

    let out = check(tmp.path());
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains(&format!("warning: {}:3: `lonely`", syn_path.display())), "{stdout}");
    assert!(stdout.contains("2 warnings"), "{stdout}");
}

#[test]
fn a_raw_page_without_title_or_text_in_the_knowledge_dir() {
    let tmp = dir_with(&[
        ("articles/no-title.md", b"Just text, no `# Title` line.\n"),
        ("articles/only-title.txt", b"\n\nA title and nothing else\n\n"),
    ]);
    assert_errors(
        tmp.path(),
        &[
            exp("articles/no-title.md", 1, &["no title", "# Title"]),
            exp("articles/only-title.txt", 3, &["no text", "add its paragraphs"]),
        ],
    );
}

#[test]
fn a_raw_page_duplicating_a_knowledge_file() {
    let page = "Knee pain\n\nKnee pain\n\nAnother text about it.\n";
    let tmp = dir_with(&[("pages/knee.txt", page.as_bytes())]);
    assert_errors(tmp.path(), &[exp("pages/knee.txt", 1, &["duplicate article `knee-pain`", "base.md", "remove one"])]);
}

#[test]
fn reserved_files_and_hidden_files_are_not_articles() {
    let tmp = dir_with(&[
        ("README.md", b"no title here\n"),
        (".hidden/x.md", b"garbage \xff"),
        ("articles/.swap.md", b"+++\nbroken"),
        ("articles/notes.json", b"{"),
    ]);
    let loaded = load_knowledge(tmp.path()).unwrap();
    assert_eq!(loaded.kb.articles.len(), 1);
}

#[test]
fn an_empty_dir() {
    let tmp = TempDir::new().unwrap();
    let (errors, _) = invalid(tmp.path());
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].path, tmp.path());
    assert!(
        errors[0].message.contains("no articles") && errors[0].message.contains("articlebot import"),
        "{}",
        errors[0]
    );
    let out = check(tmp.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains(&format!("error: {}: no articles found", tmp.path().display())),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn a_file_that_is_not_a_dir() {
    let tmp = TempDir::new().unwrap();
    let f = tmp.path().join("knowledge.md");
    fs::write(&f, BASE).unwrap();
    match load_knowledge(&f) {
        Err(LoadError::Unreadable { dir, reason }) => {
            assert_eq!(dir, f);
            assert!(reason.contains("not a directory"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_one_line_failure(&check(&f), 2, &[&f.display().to_string(), "not a directory"]);
}

#[test]
fn a_missing_dir() {
    let tmp = TempDir::new().unwrap();
    let missing: PathBuf = tmp.path().join("nope");
    match load_knowledge(&missing) {
        Err(LoadError::Unreadable { dir, reason }) => {
            assert_eq!(dir, missing);
            assert!(reason.contains("does not exist") && reason.contains("articlebot import"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert_one_line_failure(&check(&missing), 2, &[&missing.display().to_string(), "does not exist"]);
}

fn assert_one_line_failure(out: &Output, code: i32, words: &[&str]) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr:?}");
    assert!(lines[0].starts_with("error: "), "{stderr}");
    for w in words {
        assert!(lines[0].contains(w), "{w:?} not in {stderr}");
    }
    assert!(text(&out.stdout).is_empty(), "{}", text(&out.stdout));
}

#[test]
fn every_kind_at_once_is_reported_in_one_run() {
    // All errors are collected, not just the first one.
    let tmp = dir_with(&[
        ("articles/a.md", b"+++\nid = \"a\"\ntitle = \"\"\nnext = \"knee-pan\"\n+++\n\nBody.\n"),
        ("articles/b.md", b"+++\nid = \"a\"\ntitle = \"B\"\n+++\n\nBody.\n"),
        ("articles/c.md", b"+++\nid = \"c\"\ntitle = \"C\"\nurl = \"www.x\"\n+++\n"),
        ("articles/d.txt", b"caf\xe9\n"),
        ("site.toml", b"language = \"elvish\"\n"),
    ]);
    assert_errors(
        tmp.path(),
        &[
            exp("articles/a.md", 3, &["empty title"]),
            exp("articles/b.md", 2, &["duplicate id `a`"]),
            exp("articles/c.md", 2, &["empty body"]),
            exp("articles/c.md", 4, &["url `www.x`"]),
            exp("articles/d.txt", 1, &["invalid utf-8"]),
            exp("site.toml", 1, &["language `elvish`"]),
        ],
    );
}

#[test]
fn check_takes_the_dir_from_knowledge_flag_or_env() {
    let bad = dir_with(&[("articles/a.md", b"+++\nid = \"a\"\ntitle = \"\"\n+++\n\nBody.\n")]);
    let good = dir_with(&[]);
    let bin = env!("CARGO_BIN_EXE_articlebot");
    let run = |args: &[&std::ffi::OsStr], env: Option<&Path>| {
        let mut c = Command::new(bin);
        c.arg("check").args(args).env_remove("ARTICLEBOT_KNOWLEDGE");
        if let Some(e) = env {
            c.env("ARTICLEBOT_KNOWLEDGE", e);
        }
        c.output().unwrap().status.code()
    };
    assert_eq!(run(&["--knowledge".as_ref(), bad.path().as_os_str()], None), Some(1));
    assert_eq!(
        run(&["--knowledge".as_ref(), good.path().as_os_str()], Some(bad.path())),
        Some(0),
        "the flag beats the env"
    );
    assert_eq!(run(&[], Some(bad.path())), Some(1));
    assert_eq!(run(&[], Some(good.path())), Some(0));
    assert_eq!(run(&[good.path().as_os_str()], Some(bad.path())), Some(0), "the positional dir beats the env");
}
