//! The `articlebot` binary: `ask --json` over stdin (one JSON object per line, whatever the
//! line), human `ask`, where the knowledge dir comes from (flag, env, default), and usage errors.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use articlebot_engine::import;
use serde_json::Value;
use tempfile::TempDir;

const SEED_ID: &str = "what-causes-knee-pain-when-running";
const SEED_TITLE: &str = "What causes knee pain when running?";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_articlebot"));
    c.env_remove("ARTICLEBOT_KNOWLEDGE");
    c
}

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge")
}

fn seed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/seed-page.txt")
}

fn with_stdin(mut c: Command, input: &str) -> Output {
    let mut child = c.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_string();
    // Write from another thread so a full stdout pipe cannot deadlock us.
    let writer = std::thread::spawn(move || {
        stdin.write_all(input.as_bytes()).unwrap();
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Checks one `ask --json` object against the documented shape and returns it.
fn check_answer(line: &str, query: &str, top: usize) -> Value {
    let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
    let o = v.as_object().unwrap_or_else(|| panic!("not an object: {line}"));
    for k in ["query", "answered", "intent", "confidence", "results"] {
        assert!(o.contains_key(k), "missing `{k}`: {line}");
    }
    assert_eq!(o["query"].as_str(), Some(query), "query echoed as given");
    let answered = o["answered"].as_bool().expect("answered is a bool");
    let intent = o["intent"].as_str().expect("intent is a string");
    assert!(["answer", "suggest", "smalltalk", "unknown"].contains(&intent), "{intent}");
    assert_eq!(answered, intent == "answer", "{line}");
    let confidence = o["confidence"].as_f64().expect("confidence is a number");
    assert!((0.0..=1.0).contains(&confidence), "{confidence}");
    let results = o["results"].as_array().expect("results is an array");
    assert!(results.len() <= top, "at most --top results: {line}");
    if answered {
        assert!(!results.is_empty(), "an answer has results: {line}");
    }
    let mut last = f64::INFINITY;
    for r in results {
        let r = r.as_object().expect("result is an object");
        for k in ["id", "title", "section", "heading", "text", "score", "url"] {
            assert!(r.contains_key(k), "result missing `{k}`: {line}");
        }
        assert!(r["id"].as_str().is_some_and(|id| !id.is_empty()));
        assert!(r["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(
            r["section"].is_null() || r["section"].as_u64().is_some_and(|n| n >= 1),
            "sections count from 1: {line}"
        );
        assert!(r["heading"].is_null() || r["heading"].is_string());
        assert!(r["text"].is_string());
        assert!(r["url"].is_null() || r["url"].is_string());
        let score = r["score"].as_f64().expect("score is a number");
        assert!(score <= last + 1e-9, "results best first: {line}");
        last = score;
    }
    v
}

#[test]
fn ask_json_answers_every_stdin_line_with_one_object() {
    let long: String = "knee pain when running ".repeat(500).chars().take(10_000).collect();
    assert_eq!(long.chars().count(), 10_000);
    let questions = vec![
        "knee pain when running".to_string(),
        String::new(),
        "   ".to_string(),
        long,
        "😀🏃‍♂️🔥".to_string(),
        "Почему болит колено после бега?".to_string(),
        "跑步后膝盖疼怎么办？".to_string(),
        "hello".to_string(),
        "What shoes are suitable for defenders?".to_string(),
        "\u{a0}can\u{2019}t play basketball\u{a0}".to_string(),
        "{\"json\": \"in the question\"} \\ \t tab".to_string(),
        "x".repeat(3000),
    ];
    let mut input = questions.join("\n");
    input.push('\n');
    let mut c = bin();
    c.args(["ask", "--json", "--top", "3", "--knowledge"]).arg(shipped());
    let out = with_stdin(c, &input);
    let stderr = s(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let stdout = s(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), questions.len(), "one line per question:\n{stdout}");
    let answers: Vec<Value> = lines.iter().zip(&questions).map(|(l, q)| check_answer(l, q, 3)).collect();

    assert_eq!(answers[0]["intent"], "answer");
    assert_eq!(answers[0]["results"][0]["id"], SEED_ID);
    assert_eq!(answers[0]["results"][0]["title"], SEED_TITLE);
    assert!(answers[0]["results"][0]["text"].as_str().unwrap().to_lowercase().contains("knee"));
    for (i, a) in answers.iter().enumerate().skip(1).take(2) {
        assert_eq!(a["intent"], "unknown", "blank question {i}");
        assert_eq!(a["results"].as_array().unwrap().len(), 0);
    }
    assert_eq!(answers[7]["intent"], "smalltalk");
    // An article known only as a stub can still be found by its title.
    assert!(
        answers[8]["results"].as_array().unwrap().iter().any(|r| r["id"] == "what-shoes-are-suitable-for-defenders"),
        "{}",
        lines[8]
    );
}

#[test]
fn ask_json_without_trailing_newline_and_with_crlf() {
    let mut c = bin();
    c.args(["ask", "--json", "--top", "1", "--knowledge"]).arg(shipped());
    let out = with_stdin(c, "knee pain when running\r\nhello");
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let stdout = s(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let first: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(first["results"].as_array().unwrap().len(), 1, "--top 1");
    assert_eq!(first["results"][0]["id"], SEED_ID);
    check_answer(lines[1], "hello", 1);
}

#[test]
fn ask_json_with_a_question_argument_prints_one_object() {
    let out = bin()
        .args(["ask", "--json", "--knowledge"])
        .arg(shipped())
        .args(["knee", "pain", "when", "running"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let stdout = s(&out.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let v = check_answer(stdout.trim_end(), "knee pain when running", 3);
    assert_eq!(v["answered"], true);
    assert_eq!(v["results"][0]["id"], SEED_ID);
}

#[test]
fn ask_human_output_names_the_article() {
    let out = bin().args(["ask", "--knowledge"]).arg(shipped()).arg("knee pain when running").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let stdout = s(&out.stdout);
    assert!(stdout.contains(SEED_TITLE), "{stdout}");
    assert!(stdout.to_lowercase().contains("knee"), "{stdout}");
}

#[test]
fn ask_human_output_for_nonsense_says_it_does_not_know() {
    let out = bin().args(["ask", "--knowledge"]).arg(shipped()).arg("quantum chromodynamics lattice").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    assert!(!s(&out.stdout).contains(SEED_TITLE), "{}", s(&out.stdout));
}

/// A temp dir holding `knowledge/` (the seed import) and `other/` (one tea article).
fn two_knowledge_dirs() -> TempDir {
    let tmp = TempDir::new().unwrap();
    let r = import(&[seed()], &tmp.path().join("knowledge")).unwrap();
    assert!(r.errors.is_empty());
    let page = tmp.path().join("tea.md");
    std::fs::write(&page, "# How to brew green tea\n\nGreen tea turns bitter when the water is boiling hot.\n")
        .unwrap();
    let r = import(&[page], &tmp.path().join("other")).unwrap();
    assert!(r.errors.is_empty());
    tmp
}

/// The id of the best result for `q`, asked with `args` in `cwd` with `env`.
fn best(cwd: &Path, env: Option<&str>, args: &[&str], q: &str) -> Option<String> {
    let mut c = bin();
    c.current_dir(cwd).arg("ask").arg("--json").args(args).arg(q);
    if let Some(e) = env {
        c.env("ARTICLEBOT_KNOWLEDGE", e);
    }
    let out = c.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    let v: Value = serde_json::from_str(s(&out.stdout).trim()).unwrap();
    v["results"][0]["id"].as_str().map(str::to_string)
}

#[test]
fn knowledge_dir_comes_from_flag_then_env_then_default() {
    let tmp = two_knowledge_dirs();
    let cwd = tmp.path();
    let knee = Some(SEED_ID.to_string());
    let tea = Some("how-to-brew-green-tea".to_string());
    // Default: ./knowledge.
    assert_eq!(best(cwd, None, &[], "knee pain when running"), knee);
    assert_eq!(best(cwd, None, &[], "brew green tea"), None, "tea is not in ./knowledge");
    // Env.
    assert_eq!(best(cwd, Some("other"), &[], "brew green tea"), tea);
    assert_eq!(best(cwd, Some("other"), &[], "knee pain when running"), None);
    // Flag (after the subcommand) beats the env.
    assert_eq!(best(cwd, Some("knowledge"), &["--knowledge", "other"], "brew green tea"), tea);
    assert_eq!(best(cwd, None, &["--knowledge=other"], "brew green tea"), tea);

    // check: same order.
    let check = |env: Option<&str>, args: &[&str]| {
        let mut c = bin();
        c.current_dir(cwd).arg("check").args(args);
        if let Some(e) = env {
            c.env("ARTICLEBOT_KNOWLEDGE", e);
        }
        let out = c.output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
        s(&out.stdout)
    };
    assert!(check(None, &[]).contains("ok: 1 article, 5 sections, 17 stubs"));
    assert!(check(Some("other"), &[]).contains("ok: 1 article, 1 section, 0 stubs"));
    assert!(check(Some("other"), &["--knowledge", "knowledge"]).contains("17 stubs"));

    // import: --out falls back to the env.
    let page = cwd.join("more.txt");
    std::fs::write(&page, "More tea\n\nOolong is partly oxidised.\n").unwrap();
    let out =
        bin().current_dir(cwd).env("ARTICLEBOT_KNOWLEDGE", "other").args(["import", "more.txt"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    assert!(cwd.join("other/articles/more-tea.md").exists());
    assert!(!cwd.join("knowledge/articles/more-tea.md").exists());
}

#[test]
fn missing_knowledge_dir_is_one_error_line_and_exit_2() {
    let tmp = TempDir::new().unwrap();
    for args in
        [&["ask", "knee"][..], &["ask", "--json", "knee"], &["check"], &["ask", "--knowledge", "nowhere", "knee"]]
    {
        let out = bin().current_dir(tmp.path()).args(args).output().unwrap();
        let stderr = s(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: knowledge dir "), "{stderr}");
        assert!(stderr.contains("does not exist"), "{stderr}");
        assert!(s(&out.stdout).is_empty());
    }
}

#[test]
fn invalid_knowledge_makes_ask_fail_cleanly() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("kb");
    std::fs::create_dir_all(dir.join("articles")).unwrap();
    std::fs::write(dir.join("articles/a.md"), "+++\nid = \"a\"\ntitle = \"A\"\nurl = \"www.x\"\n+++\n\nText.\n")
        .unwrap();
    let out = bin().args(["ask", "--knowledge"]).arg(&dir).arg("text").output().unwrap();
    let stderr = s(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(&format!("{}:4:", dir.join("articles/a.md").display())), "{stderr}");
}

#[test]
fn usage_errors_exit_2_without_panicking() {
    let cases: &[&[&str]] = &[
        &["ask", "--bogus"],
        &["check", "--bogus"],
        &["import", "--bogus", "x.txt", "--out", "y"],
        &["frobnicate"],
        &[],
        &["ask", "--top", "many", "q"],
        &["import", "page.txt"],
        &["import", "--out", "somewhere"],
    ];
    let tmp = TempDir::new().unwrap();
    for args in cases {
        let out = bin().current_dir(tmp.path()).args(*args).output().unwrap();
        let stderr = s(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    // Nothing was created by the failed imports.
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
}

#[test]
fn help_and_version_exit_0() {
    for args in [&["--help"][..], &["--version"], &["ask", "--help"], &["check", "--help"], &["import", "--help"]] {
        let out = bin().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", s(&out.stderr));
        assert!(!out.stdout.is_empty());
    }
    let out = bin().arg("ask").arg("--help").output().unwrap();
    let help = s(&out.stdout);
    assert!(help.contains("--knowledge") && help.contains("ARTICLEBOT_KNOWLEDGE"), "{help}");
}

/// A console conversation: `lines` typed to `chat` over the shipped knowledge, its output.
fn chat(extra: &[&str], lines: &str) -> String {
    let mut c = bin();
    c.args(["chat", "--knowledge"]).arg(shipped()).args(extra);
    let out = with_stdin(c, lines);
    assert_eq!(out.status.code(), Some(0), "{}", s(&out.stderr));
    s(&out.stdout)
}

/// Asserts `out` holds each of `parts` in this order, and returns what follows the last.
fn in_order<'a>(out: &'a str, parts: &[&str]) -> &'a str {
    let mut rest = out;
    for p in parts {
        let at = rest.find(p).unwrap_or_else(|| panic!("{p:?} not found after the previous parts in:\n{out}"));
        rest = &rest[at + p.len()..];
    }
    rest
}

#[test]
fn a_stub_in_the_console_says_what_it_is_and_more_does_not_repeat_it() {
    let out = chat(&[], "/start metabolism-and-weight-loss\nmore\n1\n");
    assert!(out.starts_with("Metabolism and Weight Loss\n"), "{out}");
    assert!(out.contains("That is all I have on this topic: the full article is on the site."), "{out}");
    assert!(
        out.contains("Articles I have in full that come closest:\n  1. What causes knee pain when running?"),
        "{out}"
    );
    assert!(!out.contains("/start metabolism-and-weight-loss"), "no link back to the same summary: {out}");
    assert_eq!(out.matches("Metabolism is related").count(), 1, "more does not repeat the summary: {out}");
    assert!(out.contains("There is nothing further on this topic here"), "{out}");
    assert!(out.contains("What causes knee pain when running?  [1 of 5]"), "1 opens the full article: {out}");
}

#[test]
fn the_console_shows_ids_and_titles_never_short_keys() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("kb");
    std::fs::create_dir_all(dir.join("articles")).unwrap();
    // An id too long for a Telegram deep link: there, its short key stands in for it.
    let id = "why-do-my-knees-hurt-after-running-downhill-on-long-weekend-trail-runs";
    assert!(id.len() > 64);
    let body = format!("+++\nid = \"{id}\"\ntitle = \"Knees downhill\"\n+++\n\nKnees hurt downhill.\n");
    std::fs::write(dir.join("articles/knees.md"), body).unwrap();
    let kb = articlebot_engine::load_knowledge(&dir).unwrap().kb;
    let key = kb.articles[0].key.clone();
    let mut c = bin();
    c.args(["chat", "--knowledge"]).arg(&dir);
    let out = s(&with_stdin(c, "knees hurt downhill\n").stdout);
    assert!(out.contains(&format!("Read the full article: /start {id}")), "{out}");
    assert!(!out.contains(&key), "{key} in {out}");
    let out = chat(&[], "knee pain when running\n");
    let shipped = articlebot_engine::load_knowledge(&shipped()).unwrap().kb;
    for a in &shipped.articles {
        assert!(!out.contains(&a.key), "{} in {out}", a.key);
    }
}

#[test]
fn the_console_offers_the_next_and_previous_articles_by_number() {
    let out = chat(&[], "/start what-causes-knee-pain-when-running\n1\n");
    in_order(
        &out,
        &[
            "\n  1. Next article: What sportswear should I wear for running?",
            "\n  2. Previous article: What should I do if I can",
            "\nRelated:\n  3. ",
            "\n\nWhat sportswear should I wear for running?\n",
        ],
    );
}

#[test]
fn console_numbers_more_and_back_follow_what_was_shown() {
    let out = chat(&[], "/topics\nmore\n1\n");
    let page2 = in_order(&out, &["Topics I can answer: (page 1 of 3)", "Topics I can answer: (page 2 of 3)\n  1. "]);
    let first_of_page_2 = page2.lines().next().unwrap();
    in_order(page2, &[&format!("\n\n{first_of_page_2}\n")]);
    let out = chat(&[], "/topics\nmore\n1\nback\nback\nrunning\nmore\n2\nback\n");
    in_order(
        &out,
        &[
            "(page 1 of 3)",
            "(page 2 of 3)",
            "That is all I have on this topic",
            "(page 2 of 3)",
            "(page 1 of 3)",
            "I'm not sure I understood. Did you mean:",
            "That's all of them.",
            "Was this helpful?",
            "I'm not sure I understood. Did you mean:",
        ],
    );
}

#[test]
fn console_votes_rate_what_is_on_screen_and_nothing_after_reset_or_forget() {
    let out = chat(&[], "up\nknee pain when running\nup\n/reset\ndown\nknee pain when running\n/forget\ndown\n");
    assert!(out.starts_with("There is no answer to rate yet"), "{out}");
    in_order(
        &out,
        &[
            "[1 of 5]",
            "\n\nThanks! Glad it helped.\n",
            "Done: I've forgotten where we were.",
            "\n\nThere is no answer to rate yet",
            "[1 of 5]",
            "I've deleted everything",
            "\n\nThere is no answer to rate yet",
        ],
    );
    assert!(!out.contains("I'll pass it on"), "no down vote reached an article: {out}");
}

#[test]
fn noted_is_said_only_where_questions_are_kept_and_only_of_questions() {
    let q = "how do I bake sourdough bread";
    let asked = bin().args(["ask", "--knowledge"]).arg(shipped()).arg(q).output().unwrap();
    let asked = s(&asked.stdout);
    assert!(asked.starts_with("Sorry, I don't have an article about that.") && !asked.contains("noted"), "{asked}");
    assert!(!chat(&[], &format!("{q}\n")).contains("noted"), "chat without --data keeps nothing");
    let tmp = TempDir::new().unwrap();
    let data = tmp.path().join("db");
    let kept = chat(&["--data", data.to_str().unwrap()], &format!("{q}\n???\n🙂\n/foo\n/stats\nup\n"));
    let rest = in_order(
        &kept,
        &[
            "Sorry, I don't have an article about that. I've noted the question for the authors.",
            "\n\nPlease write your question in words.\n",
            "\nPlease write your question in words.\n",
            "\nI'm Articlebot.",
            "\n\nI'm Articlebot.",
            "\n\nThere is no answer to rate yet",
        ],
    );
    assert!(rest.trim().is_empty() || !rest.contains("Sorry"), "{kept}");
    assert_eq!(kept.matches("noted").count(), 1, "{kept}");
}

#[test]
fn a_broken_knowledge_dir_is_one_line_naming_the_dir_and_the_first_problem() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("kb");
    std::fs::create_dir_all(dir.join("articles")).unwrap();
    for name in ["a", "b", "c"] {
        let file = format!("+++\nid = \"{name}\"\ntitle = \"{name}\"\n+++\n");
        std::fs::write(dir.join(format!("articles/{name}.md")), file).unwrap();
    }
    for sub in [&["ask", "text"][..], &["chat"]] {
        let mut c = bin();
        c.args(sub).arg("--knowledge").arg(&dir);
        let out = with_stdin(c, "");
        let stderr = s(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{sub:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{sub:?}: {stderr}");
        let abs = dir.display().to_string();
        assert!(
            stderr.starts_with(&format!("error: knowledge dir {abs} cannot be loaded: {abs}/articles/")),
            "{stderr}"
        );
        assert!(stderr.contains(".md:"), "file:line: {stderr}");
        assert!(stderr.trim_end().ends_with(&format!("and 2 more: run `articlebot check {abs}`")), "{stderr}");
    }
}

#[test]
fn a_missing_relative_knowledge_dir_is_named_absolute_with_where_it_came_from() {
    let tmp = TempDir::new().unwrap();
    let cwd = std::fs::canonicalize(tmp.path()).unwrap();
    let run = |env: Option<&str>, args: &[&str]| {
        let mut c = bin();
        c.current_dir(&cwd).args(["ask"]).args(args).arg("knee");
        if let Some(e) = env {
            c.env("ARTICLEBOT_KNOWLEDGE", e);
        }
        s(&c.output().unwrap().stderr)
    };
    let abs = |p: &str| cwd.join(p).display().to_string();
    let flag = run(None, &["--knowledge", "kb"]);
    assert!(
        flag.starts_with(&format!("error: knowledge dir {} (from --knowledge) does not exist", abs("kb"))),
        "{flag}"
    );
    let env = run(Some("elsewhere"), &[]);
    assert!(
        env.starts_with(&format!("error: knowledge dir {} (from ARTICLEBOT_KNOWLEDGE)", abs("elsewhere"))),
        "{env}"
    );
    let default = run(None, &[]);
    assert!(default.starts_with(&format!("error: knowledge dir {} (from the default)", abs("knowledge"))), "{default}");
}

#[test]
fn importing_nothing_creates_nothing_and_fails() {
    let tmp = TempDir::new().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for input in [tmp.path().join("nonexistent"), empty] {
        let out_dir = tmp.path().join("out");
        let out = bin().arg("import").arg(&input).arg("--out").arg(&out_dir).output().unwrap();
        let stderr = s(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{}: {stderr}", input.display());
        assert!(stderr.contains("nothing imported"), "{stderr}");
        assert!(!out_dir.exists(), "{} created for {}", out_dir.display(), input.display());
    }
    let one = tmp.path().join("one.txt");
    std::fs::write(&one, "Tea\n\nGreen tea turns bitter in boiling water.\n").unwrap();
    let kb = tmp.path().join("kb");
    let out = bin().arg("import").arg(&one).arg("--out").arg(&kb).output().unwrap();
    assert!(s(&out.stdout).starts_with("imported 1 page into"), "{}", s(&out.stdout));
    let out = bin().arg("check").arg(&kb).output().unwrap();
    assert!(s(&out.stdout).starts_with("ok: 1 article, 1 section, 0 stubs, "), "{}", s(&out.stdout));
    let bad = tmp.path().join("bad.txt");
    std::fs::write(&bad, b"caf\xe9\n").unwrap();
    let out = bin().arg("import").arg(&bad).arg(&one).arg("--out").arg(&kb).output().unwrap();
    assert!(s(&out.stderr).starts_with("error: 1 page could not be imported"), "{}", s(&out.stderr));
}

#[test]
fn console_help_lists_the_console_words_from_the_command_table() {
    let out = chat(&[], "/help\n");
    for listed in ["/topics", "\"more\", \"next\"", "/back, \"back\"", "\"up\"", "\"down\"", "1, 2, 3", "\"quit\""] {
        assert!(out.contains(listed), "{listed} not in {out}");
    }
    assert!(!out.contains("/reload") && !out.contains("/stats"), "no admin commands: {out}");
    assert!(!out.contains('\x1b'), "piped output is plain: {out:?}");
}

/// `articlebot chat` on a real terminal: a pty made by util-linux's `script`, keys typed with
/// pauses as a person types them. The up arrow recalls the last question (before, its escape
/// sequence became a question), and the history is kept for the next session.
#[test]
fn the_console_on_a_terminal_recalls_earlier_questions_with_the_up_arrow() {
    let home = TempDir::new().unwrap();
    let command = format!("{} chat --knowledge {}", env!("CARGO_BIN_EXE_articlebot"), shipped().display());
    let mut child = Command::new("script")
        .args(["-qfec", &command, "/dev/null"])
        .env("HOME", home.path())
        .env_remove("XDG_STATE_HOME")
        .env_remove("ARTICLEBOT_KNOWLEDGE")
        .env("TERM", "xterm")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("`script` (util-linux, Debian's bsdutils) makes the terminal for this test");
    let mut keys = child.stdin.take().unwrap();
    let pause = |ms| std::thread::sleep(std::time::Duration::from_millis(ms));
    pause(1500);
    for (typed, wait) in [("knee pain\r", 1500), ("\x1b[A", 500), ("\r", 1500), ("quit\r", 1000)] {
        keys.write_all(typed.as_bytes()).unwrap();
        keys.flush().unwrap();
        pause(wait);
    }
    drop(keys);
    let out = child.wait_with_output().unwrap();
    let screen = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        screen.matches(SEED_TITLE).count(),
        2,
        "asked, then recalled with the up arrow and asked again: {screen}"
    );
    assert!(!screen.contains("in words") && !screen.contains("don't have"), "the arrow was not taken for a question");
    let history = std::fs::read_to_string(home.path().join(".local/state/articlebot/chat_history")).unwrap_or_default();
    assert!(history.contains("knee pain"), "history kept: {history:?}");
}

#[test]
fn console_none_of_these_answers_the_choices_on_screen_only() {
    let out = chat(&[], "none\ncalves\nnone\nnone\n");
    in_order(
        &out,
        &[
            "There is no such choice",
            "Did you mean:",
            "None of these? Type \"none\".",
            "Sorry, I don't have an article about that",
            "There is no such choice",
        ],
    );
}
