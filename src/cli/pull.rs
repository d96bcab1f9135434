//! `articlebot model pull [NAME] --out DIR`: the files of a sentence-transformers model from a
//! Hugging Face model repo, as `huggingface_hub` would fetch them (`HF_ENDPOINT`, `HF_TOKEN`),
//! each checked against the size and SHA-256 the hub lists, resumed where a download broke off.
//! Only what inference needs is fetched: no ONNX, TensorFlow or PyTorch copies of the weights.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Subcommand};
use futures::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::Failure;

#[derive(Args, Debug)]
pub struct ModelArgs {
    #[command(subcommand)]
    command: ModelCommand,
}

#[derive(Subcommand, Debug)]
enum ModelCommand {
    /// Download a sentence-transformers model from a Hugging Face model repo
    Pull(PullArgs),
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// The model repo
    #[arg(default_value = "sentence-transformers/all-MiniLM-L6-v2", value_name = "NAME")]
    name: String,
    /// Where to put the model's files (created if missing)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Branch, tag or commit
    #[arg(long, default_value = "main")]
    revision: String,
}

/// The files a model dir needs; the first three must be in the repo.
const WANTED: &[&str] = &[
    "config.json",
    "tokenizer.json",
    "model.safetensors",
    "1_Pooling/config.json",
    "modules.json",
    "sentence_bert_config.json",
    "config_sentence_transformers.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "sentencepiece.bpe.model",
];
const REQUIRED: usize = 3;
/// Attempts per file: a broken connection resumes where it stopped.
const ATTEMPTS: u32 = 5;

/// One entry of the hub's file listing (`/api/models/{repo}/tree/{revision}`).
#[derive(Debug, Deserialize)]
struct Entry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: Option<u64>,
    #[serde(default)]
    lfs: Option<Lfs>,
}

#[derive(Debug, Deserialize)]
struct Lfs {
    /// The SHA-256 of the content.
    oid: String,
    size: u64,
}

/// Why a pull failed; printed as one line with its causes.
#[derive(Debug, thiserror::Error)]
enum PullError {
    #[error("{0}")]
    Hub(String),
    #[error("cannot reach {url}")]
    Network {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is damaged: {what} (run the command again to fetch it anew)")]
    Check { path: String, what: String },
}

pub fn run(args: ModelArgs) -> Result<(), Failure> {
    let ModelCommand::Pull(args) = args.command;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::caused("cannot start the async runtime", &e))?;
    let endpoint = std::env::var("HF_ENDPOINT").ok().filter(|e| !e.is_empty());
    let endpoint = endpoint.as_deref().unwrap_or("https://huggingface.co").trim_end_matches('/').to_string();
    let token = std::env::var("HF_TOKEN").ok().filter(|t| !t.trim().is_empty());
    match runtime.block_on(pull(&endpoint, token.as_deref(), &args)) {
        Ok(n) => {
            println!(
                "{} files of {} in {}; use it with --model {}",
                n,
                args.name,
                args.out.display(),
                args.out.display()
            );
            Ok(())
        }
        Err(e) => Err(Failure::caused(format!("cannot pull {}", args.name), &e)),
    }
}

fn client(token: Option<&str>) -> Result<reqwest::Client, PullError> {
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(t) = token {
        let value = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", t.trim()))
            .map_err(|_| PullError::Hub("HF_TOKEN holds characters a header cannot carry".into()))?;
        headers.insert(reqwest::header::AUTHORIZATION, value);
    }
    reqwest::Client::builder()
        .user_agent(concat!("articlebot/", env!("CARGO_PKG_VERSION")))
        .default_headers(headers)
        .connect_timeout(Duration::from_secs(20))
        .read_timeout(Duration::from_secs(60))
        .build()
        .map_err(|source| PullError::Network { url: "the hub".into(), source })
}

async fn pull(endpoint: &str, token: Option<&str>, args: &PullArgs) -> Result<usize, PullError> {
    let http = client(token)?;
    let listing = format!("{endpoint}/api/models/{}/tree/{}?recursive=true", args.name, args.revision);
    let network = |url: &str| {
        let url = url.to_string();
        move |source| PullError::Network { url, source }
    };
    let response = http.get(&listing).send().await.map_err(network(&listing))?;
    match response.status().as_u16() {
        200 => {}
        401 | 403 => return Err(PullError::Hub(format!("{} is private or gated: set HF_TOKEN", args.name))),
        404 => return Err(PullError::Hub(format!("{endpoint} has no model {} at {}", args.name, args.revision))),
        s => return Err(PullError::Hub(format!("the hub answered {s} for the file list"))),
    }
    let entries: Vec<Entry> = response.json().await.map_err(network(&listing))?;
    let files: Vec<&Entry> =
        WANTED.iter().filter_map(|w| entries.iter().find(|e| e.kind == "file" && e.path == *w)).collect();
    for required in &WANTED[..REQUIRED] {
        if !files.iter().any(|e| e.path == *required) {
            return Err(PullError::Hub(format!(
                "{} has no {required}: articlebot needs a sentence-transformers model with safetensors weights",
                args.name
            )));
        }
    }
    std::fs::create_dir_all(&args.out).map_err(|source| PullError::Write { path: args.out.clone(), source })?;
    let total: u64 = files.iter().map(|e| expected_size(e).unwrap_or(0)).sum();
    let progress = Progress::new(total);
    for e in &files {
        let url = format!("{endpoint}/{}/resolve/{}/{}", args.name, args.revision, e.path);
        fetch(&http, &url, e, &args.out, &progress).await?;
    }
    progress.finish();
    Ok(files.len())
}

fn expected_size(e: &Entry) -> Option<u64> {
    e.lfs.as_ref().map(|l| l.size).or(e.size)
}

/// Downloads one file to `<out>/<path>` through a `.part` file that a later run resumes.
async fn fetch(http: &reqwest::Client, url: &str, e: &Entry, out: &Path, progress: &Progress) -> Result<(), PullError> {
    let target = out.join(&e.path);
    let part = target.with_file_name(format!(
        ".{}.part",
        target.file_name().map_or_else(|| "file".into(), |n| n.to_string_lossy().into_owned())
    ));
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).map_err(|source| PullError::Write { path: dir.to_path_buf(), source })?;
    }
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PullError::Write { path, source }
    };
    let size = expected_size(e);
    if target.is_file() && verify(&target, e).is_ok() {
        progress.add(size.unwrap_or(0));
        return Ok(());
    }
    let mut last_error = None;
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 << attempt.min(4))).await;
        }
        let have = std::fs::metadata(&part).map_or(0, |m| m.len());
        if size.is_some_and(|s| have > s) {
            std::fs::remove_file(&part).map_err(write_err(&part))?;
            continue;
        }
        let mut request = http.get(url);
        if have > 0 {
            request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
        }
        let response = match request.send().await {
            Ok(r) => r,
            Err(source) => {
                last_error = Some(PullError::Network { url: url.to_string(), source });
                continue;
            }
        };
        let status = response.status().as_u16();
        let resumed = status == 206;
        if !(status == 200 || resumed) {
            last_error = Some(PullError::Hub(format!("the hub answered {status} for {}", e.path)));
            if (400..500).contains(&status) && status != 408 && status != 429 {
                break;
            }
            continue;
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(resumed)
            .write(true)
            .truncate(!resumed)
            .open(&part)
            .map_err(write_err(&part))?;
        if attempt == 0 && resumed {
            progress.add(have);
        }
        let mut stream = response.bytes_stream();
        let mut broke = None;
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => {
                    file.write_all(&bytes).map_err(write_err(&part))?;
                    progress.add(bytes.len() as u64);
                }
                Err(source) => {
                    broke = Some(PullError::Network { url: url.to_string(), source });
                    break;
                }
            }
        }
        file.sync_all().map_err(write_err(&part))?;
        if let Some(err) = broke {
            last_error = Some(err);
            continue;
        }
        match verify(&part, e) {
            Ok(()) => {
                std::fs::rename(&part, &target).map_err(write_err(&target))?;
                return Ok(());
            }
            Err(err) => {
                // A short file is resumed; a wrong one is fetched anew.
                if !matches!(&err, PullError::Check { what, .. } if what.starts_with("short")) {
                    let _ = std::fs::remove_file(&part);
                }
                last_error = Some(err);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| PullError::Hub(format!("cannot fetch {}", e.path))))
}

/// The file against the listing: its size, and for a large (LFS) file its SHA-256.
fn verify(path: &Path, e: &Entry) -> Result<(), PullError> {
    let check = |what: String| PullError::Check { path: e.path.clone(), what };
    let len = std::fs::metadata(path).map_err(|source| PullError::Write { path: path.to_path_buf(), source })?.len();
    if let Some(size) = expected_size(e) {
        if len < size {
            return Err(check(format!("short: {len} of {size} bytes")));
        }
        if len > size {
            return Err(check(format!("{len} bytes where the hub lists {size}")));
        }
    }
    if let Some(lfs) = &e.lfs {
        let mut hasher = Sha256::new();
        let mut file =
            std::fs::File::open(path).map_err(|source| PullError::Write { path: path.to_path_buf(), source })?;
        std::io::copy(&mut file, &mut hasher)
            .map_err(|source| PullError::Write { path: path.to_path_buf(), source })?;
        let got: String = hasher.finalize().iter().map(|b| format!("{b:02x}")).collect();
        if !got.eq_ignore_ascii_case(&lfs.oid) {
            return Err(check(format!("its SHA-256 is {got}, the hub lists {}", lfs.oid)));
        }
    }
    Ok(())
}

/// A bar on a terminal, a line per file otherwise.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    fn new(total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:30} {bytes}/{total_bytes} {bytes_per_sec}, {eta} left")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        if bar.is_none() {
            eprintln!("downloading {:.1} MB", total as f64 / 1e6);
        }
        Progress { bar }
    }

    fn add(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
