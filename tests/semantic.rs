//! The binary with a sentence model: `ask` answers a paraphrase words alone miss, shows both
//! parts of each score, caches vectors between runs; a model that cannot load stops `ask` and
//! `serve` with one `error:` line and exit code 2.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_articlebot"));
    c.env_remove("ARTICLEBOT_KNOWLEDGE").env_remove("ARTICLEBOT_MODEL").env_remove("ARTICLEBOT_CACHE");
    c
}

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn error_lines(out: &Output) -> Vec<String> {
    text(&out.stderr).lines().filter(|l| l.starts_with("error:")).map(str::to_string).collect()
}

#[test]
fn ask_with_a_model_answers_a_paraphrase_and_caches_its_vectors() {
    let Some(model) = articlebot_testkit::require_test_model("ask --model") else { return };
    let cache = tempfile::tempdir().unwrap();
    let ask = |args: &[&str]| {
        bin()
            .arg("ask")
            .args(args)
            .arg("--model")
            .arg(&model)
            .arg("--cache")
            .arg(cache.path())
            .arg("--knowledge")
            .arg(shipped())
            .arg("garments for jogging")
            .output()
            .unwrap()
    };
    let first = ask(&["--json"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(v["intent"], "answer", "{v}");
    assert_eq!(v["results"][0]["title"], "What sportswear should I wear for running?");
    let hit = &v["results"][0];
    assert!(hit["lexical"].as_f64().is_some() && hit["semantic"].as_f64().is_some_and(|s| s > 0.5), "{hit}");
    assert!(text(&first.stderr).contains("embedded"), "the first run embeds: {}", text(&first.stderr));

    let again = ask(&["--explain"]);
    let stderr = text(&again.stderr);
    assert!(again.status.success() && !stderr.contains("embedding"), "the second run reads the cache: {stderr}");
    let out = text(&again.stdout);
    assert!(out.contains("decision: answer") && out.contains("lexical") && out.contains("semantic"), "{out}");
}

#[test]
fn a_model_that_cannot_load_stops_ask_and_serve_with_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let not_a_model = tmp.path().join("empty-model");
    std::fs::create_dir(&not_a_model).unwrap();
    let ask = bin()
        .args(["ask", "--json", "knee pain", "--knowledge"])
        .arg(shipped())
        .env("ARTICLEBOT_MODEL", &not_a_model)
        .output()
        .unwrap();
    assert_eq!(ask.status.code(), Some(2), "{}", text(&ask.stderr));
    assert!(ask.stdout.is_empty(), "nothing answered without the configured model");
    let lines = error_lines(&ask);
    assert_eq!(lines.len(), 1, "{}", text(&ask.stderr));
    assert!(lines[0].contains("empty-model") && lines[0].contains("config.json"), "{}", lines[0]);

    let serve = bin()
        .arg("serve")
        .env("TELOXIDE_TOKEN", "123456:SECRET-TOKEN-VALUE")
        .env("ARTICLEBOT_KNOWLEDGE", shipped())
        .env("ARTICLEBOT_DATA", tmp.path().join("data"))
        .env("ARTICLEBOT_MODEL", &not_a_model)
        .env("TELOXIDE_API_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    assert_eq!(serve.status.code(), Some(2), "{}", text(&serve.stderr));
    let lines = error_lines(&serve);
    assert_eq!(lines.len(), 1, "{}", text(&serve.stderr));
    assert!(lines[0].contains("sentence model") && lines[0].contains("empty-model"), "{}", lines[0]);
    assert!(!text(&serve.stderr).contains("SECRET-TOKEN-VALUE"));
}
