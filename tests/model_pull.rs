//! `articlebot model pull` against a local stand-in for the Hugging Face hub on 127.0.0.1: the
//! files a model dir needs (and only those) are fetched, checked against the listed sizes and
//! SHA-256, a download that breaks off is resumed, the token is sent, a damaged file is refused.
//! With the test model the pulled dir is then used by `ask --model`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

#[derive(Default)]
struct Hub {
    /// Repo file path -> content.
    files: HashMap<String, Vec<u8>>,
    /// A file whose listed SHA-256 is not its content's.
    lie_about: Option<String>,
    /// A file whose first download breaks off after this many bytes.
    break_off: Option<(String, usize)>,
    breaks: AtomicUsize,
    ranges: Mutex<Vec<String>>,
    tokens: Mutex<Vec<String>>,
}

fn sha256(b: &[u8]) -> String {
    Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

async fn tree(State(hub): State<Arc<Hub>>, headers: HeaderMap) -> Response {
    if let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
        hub.tokens.lock().unwrap().push(auth.to_string());
    }
    let mut list: Vec<serde_json::Value> = hub
        .files
        .iter()
        .map(|(path, content)| {
            let oid = if hub.lie_about.as_deref() == Some(path.as_str()) { sha256(b"other") } else { sha256(content) };
            let mut e = serde_json::json!({"type": "file", "path": path, "size": content.len()});
            if path.ends_with(".safetensors") || path.ends_with(".onnx") {
                e["lfs"] = serde_json::json!({"oid": oid, "size": content.len()});
            }
            e
        })
        .collect();
    list.push(serde_json::json!({"type": "directory", "path": "1_Pooling"}));
    axum::Json(list).into_response()
}

async fn resolve(State(hub): State<Arc<Hub>>, UrlPath(path): UrlPath<String>, headers: HeaderMap) -> Response {
    let Some(content) = hub.files.get(&path) else { return StatusCode::NOT_FOUND.into_response() };
    let from = headers
        .get("range")
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
    if let Some(r) = headers.get("range").and_then(|v| v.to_str().ok()) {
        hub.ranges.lock().unwrap().push(format!("{path} {r}"));
    }
    let body = content[from.unwrap_or(0).min(content.len())..].to_vec();
    if let Some((file, after)) = &hub.break_off {
        if file == &path && from.is_none() && hub.breaks.fetch_add(1, Ordering::SeqCst) == 0 {
            // Send part of the file, let it reach the client, then drop the connection.
            let head: Result<Vec<u8>, std::io::Error> = Ok(body[..*after].to_vec());
            let drop = async {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                Err::<Vec<u8>, _>(std::io::Error::other("connection dropped by the test hub"))
            };
            let stream = futures::StreamExt::chain(futures::stream::iter([head]), futures::stream::once(drop));
            return Response::builder()
                .header("content-length", content.len())
                .body(Body::from_stream(stream))
                .unwrap();
        }
    }
    let status = if from.is_some() { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
    (status, body).into_response()
}

async fn start(hub: Hub) -> (String, Arc<Hub>) {
    let hub = Arc::new(hub);
    let app = axum::Router::new()
        .route("/api/models/acme/tiny/tree/main", axum::routing::get(tree))
        .route("/acme/tiny/resolve/main/{*path}", axum::routing::get(resolve))
        .with_state(hub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), hub)
}

fn pull(endpoint: &str, out: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_articlebot"))
        .args(["model", "pull", "acme/tiny", "--out"])
        .arg(out)
        .env("HF_ENDPOINT", endpoint)
        .env("HF_TOKEN", "hf_test_token")
        .output()
        .unwrap()
}

/// The test model's files, or small stand-ins without it.
fn model_files() -> (HashMap<String, Vec<u8>>, Option<PathBuf>) {
    let mut files = HashMap::new();
    let model = articlebot_testkit::test_model();
    for name in
        ["config.json", "tokenizer.json", "model.safetensors", "1_Pooling/config.json", "sentence_bert_config.json"]
    {
        let content = match &model {
            Some(dir) => std::fs::read(dir.join(name)).unwrap(),
            None => format!("stand-in for {name} ").repeat(5000).into_bytes(),
        };
        files.insert(name.to_string(), content);
    }
    // What the command must leave alone: other weight formats.
    files.insert("onnx/model.onnx".into(), b"not needed".to_vec());
    files.insert("pytorch_model.bin".into(), b"not needed".to_vec());
    (files, model)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_model_is_pulled_checked_and_resumed() {
    let (files, model) = model_files();
    let weights = files["model.safetensors"].clone();
    let (endpoint, hub) =
        start(Hub { files, break_off: Some(("model.safetensors".into(), 4096)), ..Hub::default() }).await;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("minilm");
    let o = {
        let (e, out) = (endpoint.clone(), out.clone());
        tokio::task::spawn_blocking(move || pull(&e, &out)).await.unwrap()
    };
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert_eq!(std::fs::read(out.join("model.safetensors")).unwrap(), weights, "the weights arrive whole");
    assert!(out.join("1_Pooling/config.json").is_file());
    assert!(!out.join("onnx").exists() && !out.join("pytorch_model.bin").exists(), "only what inference needs");
    assert!(std::fs::read_dir(&out).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".part")));
    assert_eq!(hub.ranges.lock().unwrap().as_slice(), ["model.safetensors bytes=4096-"], "resumed where it broke off");
    assert!(hub.tokens.lock().unwrap().iter().all(|t| t == "Bearer hf_test_token"));
    assert!(!stderr.contains("hf_test_token") && !String::from_utf8_lossy(&o.stdout).contains("hf_test_token"));

    // Pulled again: everything is in place and checked, nothing is fetched.
    let o = {
        let (e, out) = (endpoint.clone(), out.clone());
        tokio::task::spawn_blocking(move || pull(&e, &out)).await.unwrap()
    };
    assert!(o.status.success());
    assert_eq!(hub.ranges.lock().unwrap().len(), 1);

    if model.is_some() {
        let knowledge = Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge");
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_articlebot"))
            .args(["ask", "--json", "garments for jogging", "--model"])
            .arg(&out)
            .arg("--cache")
            .arg(tmp.path().join("cache"))
            .arg("--knowledge")
            .arg(&knowledge)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("an answer");
        assert_eq!(v["results"][0]["title"], "What sportswear should I wear for running?", "{v}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_file_and_a_missing_model_are_refused() {
    let (files, _) = model_files();
    let (endpoint, _hub) = start(Hub { files, lie_about: Some("model.safetensors".into()), ..Hub::default() }).await;
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("m");
    let o = {
        let (e, out) = (endpoint.clone(), out.clone());
        tokio::task::spawn_blocking(move || pull(&e, &out)).await.unwrap()
    };
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    let line = stderr.lines().find(|l| l.starts_with("error:")).unwrap_or_default();
    assert!(line.contains("model.safetensors is damaged") && line.contains("SHA-256"), "{stderr}");
    assert!(!out.join("model.safetensors").exists(), "a damaged file is not kept as the model's");

    let (endpoint, _hub) = start(Hub::default()).await;
    let o = tokio::task::spawn_blocking(move || pull(&endpoint, &out)).await.unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr.contains("has no config.json"), "{stderr}");
}
