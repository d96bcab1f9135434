//! A sentence-transformers model dir loaded for inference: the BERT encoder, its tokenizer, its
//! pooling and prompts, and the threads it runs on.

use std::path::{Path, PathBuf};

use super::bert::{Bert, Config, Pooling};

use rayon::prelude::*;
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

/// Documents embedded in one forward pass: enough rows for the matrix products to run at full
/// speed, few enough that a progress bar moves.
const BATCH: usize = 32;
/// Tokens in one forward pass: a pass holds a few activations per token (~20 KiB each for a
/// 384-wide model), so long texts go in smaller batches.
const BATCH_TOKENS: usize = 2048;
/// Documents tokenized at once.
const TOKENIZE_CHUNK: usize = 1024;
/// The window when the model dir does not say (sentence-transformers' own default).
const DEFAULT_WINDOW: usize = 256;

/// Why a model dir cannot be used. Each names the file and what is wrong with it.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{} is not a model dir: {what}", dir.display())]
    NotAModel { dir: PathBuf, what: String },
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not valid", path.display())]
    Config {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("{}: {what}", path.display())]
    Unsupported { path: PathBuf, what: String },
    #[error("cannot load the tokenizer {}", path.display())]
    Tokenizer {
        path: PathBuf,
        #[source]
        source: tokenizers::Error,
    },
    #[error("cannot load the weights {}: {what}", path.display())]
    Weights { path: PathBuf, what: String },
    #[error("cannot tokenize a text")]
    Tokenize(#[source] tokenizers::Error),
    #[error("inference failed: {0}")]
    Inference(String),
    #[error("cannot start the model's threads")]
    Threads(#[source] rayon::ThreadPoolBuildError),
}

#[derive(Debug, Clone)]
pub struct ModelOptions {
    /// Threads for embedding documents; a question runs on the thread that asks it.
    pub threads: usize,
}

impl Default for ModelOptions {
    fn default() -> Self {
        ModelOptions { threads: std::thread::available_parallelism().map_or(1, |n| n.get()) }
    }
}

/// A loaded model. Embeddings are L2-normalised, so their dot product is the cosine.
pub struct Model {
    dir: PathBuf,
    bert: Bert,
    /// Truncates at the window; sequences are padded here, to the longest of each batch.
    tokenizer: Tokenizer,
    /// Without truncation: to cut long texts into windows.
    splitter: Tokenizer,
    pooling: Pooling,
    query_prefix: String,
    document_prefix: String,
    /// Tokens of `document_prefix`.
    prefix_tokens: usize,
    window: usize,
    dim: usize,
    document_threads: rayon::ThreadPool,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("dir", &self.dir)
            .field("dim", &self.dim)
            .field("window", &self.window)
            .field("pooling", &self.pooling)
            .finish_non_exhaustive()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ModelError> {
    std::fs::read(path).map_err(|source| ModelError::Read { path: path.to_path_buf(), source })
}

fn json(path: &Path) -> Result<serde_json::Value, ModelError> {
    serde_json::from_slice(&read(path)?).map_err(|source| ModelError::Config { path: path.to_path_buf(), source })
}

/// A JSON file that may be missing.
fn optional_json(path: &Path) -> Result<Option<serde_json::Value>, ModelError> {
    if path.exists() {
        json(path).map(Some)
    } else {
        Ok(None)
    }
}

impl Model {
    /// The files whose content defines the model's output, for caches keyed by the model.
    pub const DEFINING_FILES: &'static [&'static str] = &[
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "1_Pooling/config.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
    ];

    pub fn load(dir: &Path, options: &ModelOptions) -> Result<Model, ModelError> {
        let not_a_model = |what: &str| ModelError::NotAModel { dir: dir.to_path_buf(), what: what.to_string() };
        if !dir.is_dir() {
            return Err(not_a_model("no such directory"));
        }
        for required in ["config.json", "tokenizer.json", "model.safetensors"] {
            if !dir.join(required).is_file() {
                return Err(not_a_model(&format!(
                    "it has no {required} (a sentence-transformers model dir has config.json, tokenizer.json, \
                     model.safetensors and 1_Pooling/config.json)"
                )));
            }
        }
        let config_path = dir.join("config.json");
        let config_json = json(&config_path)?;
        let config: Config = serde_json::from_value(config_json.clone())
            .map_err(|source| ModelError::Config { path: config_path.clone(), source })?;
        let model_type = config_json.get("model_type").and_then(|v| v.as_str()).unwrap_or("bert");
        if !matches!(model_type, "bert") {
            return Err(ModelError::Unsupported {
                path: config_path,
                what: format!("model_type `{model_type}` is not supported: use a BERT-family encoder"),
            });
        }
        let pooling = Self::configured_pooling(dir)?;
        let window = Self::configured_window(dir, &config)?;
        let (query_prefix, document_prefix) = Self::prompts(dir, &config_json)?;

        let tokenizer_path = dir.join("tokenizer.json");
        let mut splitter = Tokenizer::from_file(&tokenizer_path)
            .map_err(|source| ModelError::Tokenizer { path: tokenizer_path.clone(), source })?;
        // tokenizer.json may fix truncation and padding (all-MiniLM-L6-v2's say 128 and pad to
        // 128); sentence-transformers truncates at the model's window and pads per batch.
        splitter.with_padding(None);
        splitter
            .with_truncation(None)
            .map_err(|source| ModelError::Tokenizer { path: tokenizer_path.clone(), source })?;
        let mut tokenizer = splitter.clone();
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: window,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
                direction: TruncationDirection::Right,
            }))
            .map_err(|source| ModelError::Tokenizer { path: tokenizer_path.clone(), source })?;
        let weights = dir.join("model.safetensors");
        let bert = Bert::load(&weights, &config).map_err(|what| ModelError::Weights { path: weights, what })?;
        let pool = |n: usize, name: &'static str| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(n.max(1))
                .thread_name(move |i| format!("{name}-{i}"))
                .build()
                .map_err(ModelError::Threads)
        };
        let prefix_tokens = splitter.encode(document_prefix.as_str(), false).map_or(0, |e| e.len());
        Ok(Model {
            dir: dir.to_path_buf(),
            bert,
            tokenizer,
            splitter,
            pooling,
            query_prefix,
            document_prefix,
            prefix_tokens,
            window,
            dim: config.hidden_size,
            document_threads: pool(options.threads, "embed-docs")?,
        })
    }

    fn configured_pooling(dir: &Path) -> Result<Pooling, ModelError> {
        let path = dir.join("1_Pooling/config.json");
        let Some(p) = optional_json(&path)? else { return Ok(Pooling::Mean) };
        let on = |key: &str| p.get(key).and_then(|v| v.as_bool()).unwrap_or(false);
        match (on("pooling_mode_mean_tokens"), on("pooling_mode_cls_token")) {
            (true, false) => Ok(Pooling::Mean),
            (false, true) => Ok(Pooling::Cls),
            _ => Err(ModelError::Unsupported {
                path,
                what: "only mean or CLS pooling (one of them) is supported".into(),
            }),
        }
    }

    /// Tokens the model reads at once: `max_seq_length` of `sentence_bert_config.json`, within
    /// the position embeddings.
    fn configured_window(dir: &Path, config: &Config) -> Result<usize, ModelError> {
        let path = dir.join("sentence_bert_config.json");
        let configured = optional_json(&path)?
            .and_then(|v| v.get("max_seq_length").and_then(|n| n.as_u64()))
            .map_or(DEFAULT_WINDOW, |n| n as usize);
        Ok(configured.clamp(8, config.max_position_embeddings.max(8)))
    }

    /// The query and document prefixes: the model's own prompts
    /// (`config_sentence_transformers.json`), else e5's documented "query: " / "passage: ".
    fn prompts(dir: &Path, config: &serde_json::Value) -> Result<(String, String), ModelError> {
        let st = optional_json(&dir.join("config_sentence_transformers.json"))?;
        let prompt = |names: &[&str]| -> Option<String> {
            let prompts = st.as_ref()?.get("prompts")?;
            names.iter().find_map(|n| prompts.get(*n)?.as_str().map(str::to_string))
        };
        let query = prompt(&["query"]);
        let document = prompt(&["document", "passage", "corpus"]);
        if query.is_some() || document.is_some() {
            return Ok((query.unwrap_or_default(), document.unwrap_or_default()));
        }
        let name = config.get("_name_or_path").and_then(|v| v.as_str()).unwrap_or("");
        let dir_name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let e5 = [name, dir_name].iter().any(|n| n.to_ascii_lowercase().contains("e5-"));
        Ok(if e5 { ("query: ".into(), "passage: ".into()) } else { (String::new(), String::new()) })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Length of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Tokens read at once (longer texts are cut; see [`Model::windows`]).
    pub fn window(&self) -> usize {
        self.window
    }

    pub fn query_prefix(&self) -> &str {
        &self.query_prefix
    }

    pub fn document_prefix(&self) -> &str {
        &self.document_prefix
    }

    /// Threads that embed documents.
    pub fn document_threads(&self) -> usize {
        self.document_threads.current_num_threads()
    }

    /// The vector of a question, computed on the calling thread: questions asked at once run
    /// side by side, and none waits behind the documents the document threads are embedding.
    pub fn embed_query(&self, text: &str) -> Result<Vec<f32>, ModelError> {
        let text = format!("{}{text}", self.query_prefix);
        let encoding = self.tokenizer.encode(text.as_str(), true).map_err(ModelError::Tokenize)?;
        let mut out = self.forward(&[encoding.get_ids()])?;
        Ok(out.pop().unwrap_or_default())
    }

    /// The vectors of documents (in the order given), in batches of similar lengths on the
    /// document threads. `progress` is told how many are done after each batch.
    pub fn embed_documents(
        &self,
        texts: &[String],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<Vec<f32>>, ModelError> {
        // Only the ids are kept: a tokenizer's encoding also holds every token's string, offsets
        // and masks, which for a knowledge base of thousands of pages would be gigabytes.
        let mut encoded: Vec<Vec<u32>> = Vec::with_capacity(texts.len());
        for part in texts.chunks(TOKENIZE_CHUNK) {
            let with_prefix: Vec<String> = part.iter().map(|t| format!("{}{t}", self.document_prefix)).collect();
            let encodings = self.document_threads.install(|| {
                self.tokenizer.encode_batch(with_prefix.iter().map(String::as_str).collect::<Vec<_>>(), true)
            });
            encoded.extend(encodings.map_err(ModelError::Tokenize)?.into_iter().map(|e| e.get_ids().to_vec()));
        }
        let mut order: Vec<usize> = (0..encoded.len()).collect();
        order.sort_by_key(|&i| encoded[i].len());
        let mut batches: Vec<&[usize]> = Vec::new();
        let mut rest = order.as_slice();
        while !rest.is_empty() {
            // Sorted by length, so the batch's last is its longest.
            let mut n = rest.len().min(BATCH);
            while n > 1 && n * encoded[rest[n - 1]].len() > BATCH_TOKENS {
                n -= 1;
            }
            let (batch, later) = rest.split_at(n);
            batches.push(batch);
            rest = later;
        }
        let mut out = vec![Vec::new(); encoded.len()];
        let mut done = 0;
        // Each thread runs whole batches: a forward pass is single-threaded and shares nothing.
        for round in batches.chunks(self.document_threads().max(1)) {
            let vectors: Vec<Result<Vec<Vec<f32>>, ModelError>> = self.document_threads.install(|| {
                round
                    .par_iter()
                    .map(|batch| {
                        let ids: Vec<&[u32]> = batch.iter().map(|&i| encoded[i].as_slice()).collect();
                        self.forward(&ids)
                    })
                    .collect()
            });
            for (batch, vectors) in round.iter().zip(vectors) {
                for (&i, v) in batch.iter().zip(vectors?) {
                    out[i] = v;
                }
                done += batch.len();
                progress(done);
            }
        }
        Ok(out)
    }

    /// [`Model::window_spans`] of each text, on the document threads: tokenizing thousands of
    /// sections is most of what it takes to index a knowledge base whose vectors are cached.
    pub fn window_spans_of_all(&self, texts: &[&str], reserve: usize) -> Vec<Vec<(usize, usize)>> {
        self.document_threads.install(|| texts.par_iter().map(|t| self.window_spans(t, reserve)).collect())
    }

    /// Tokens of `text` (no special tokens).
    pub fn token_count(&self, text: &str) -> usize {
        self.splitter.encode(text, false).map_or(0, |e| e.len())
    }

    /// `text` cut into pieces the model reads whole, overlapping by half a window, so that a
    /// long section is embedded throughout and no sentence falls at a cut only. A text that
    /// fits is one piece. `reserve` tokens are left for what the caller puts before each piece.
    pub fn windows(&self, text: &str, reserve: usize) -> Vec<String> {
        self.window_spans(text, reserve).into_iter().map(|(from, to)| text[from..to].to_string()).collect()
    }

    /// The byte ranges of [`Model::windows`], each on character boundaries.
    pub fn window_spans(&self, text: &str, reserve: usize) -> Vec<(usize, usize)> {
        let whole = vec![(0, text.len())];
        // Room for [CLS], [SEP], the document prefix and the caller's.
        let room = 2 + reserve + self.prefix_tokens;
        let width = self.window.saturating_sub(room).max(8);
        // Every word piece covers at least one character, so a text of no more characters than
        // the window fits without being tokenized.
        if text.chars().filter(|c| !c.is_whitespace()).count() <= width {
            return whole;
        }
        let Ok(encoding) = self.splitter.encode(text, false) else { return whole };
        let offsets = encoding.get_offsets();
        if offsets.len() <= width {
            return whole;
        }
        let stride = (width / 2).max(1);
        let mut spans = Vec::new();
        let mut start = 0;
        loop {
            let end = (start + width).min(offsets.len());
            let (from, to) = (offsets[start].0, offsets[end - 1].1);
            if from < to && to <= text.len() && text.is_char_boundary(from) && text.is_char_boundary(to) {
                spans.push((from, to));
            }
            if end == offsets.len() {
                break;
            }
            start += stride;
        }
        if spans.is_empty() {
            return whole;
        }
        spans
    }

    /// One forward pass over sequences of token ids (each within the window): the normalised
    /// sentence vectors.
    fn forward(&self, sequences: &[&[u32]]) -> Result<Vec<Vec<f32>>, ModelError> {
        self.bert.encode(sequences, self.pooling).map_err(ModelError::Inference)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dir_without_a_model_is_refused_with_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let e = Model::load(dir.path(), &ModelOptions::default()).unwrap_err();
        assert!(e.to_string().contains("has no config.json"), "{e}");
        let e = Model::load(&dir.path().join("nope"), &ModelOptions::default()).unwrap_err();
        assert!(e.to_string().contains("no such directory"), "{e}");
        std::fs::write(dir.path().join("config.json"), "{").unwrap();
        std::fs::write(dir.path().join("tokenizer.json"), "{}").unwrap();
        std::fs::write(dir.path().join("model.safetensors"), "").unwrap();
        let e = Model::load(dir.path(), &ModelOptions::default()).unwrap_err();
        assert!(matches!(e, ModelError::Config { .. }), "{e}");
    }
}
