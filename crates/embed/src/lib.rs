//! Sentence embeddings for articlebot's semantic matching: a sentence-transformers model dir
//! (`config.json`, `tokenizer.json`, `model.safetensors`, `1_Pooling/config.json`) run on the
//! CPU, with no Python, ONNX runtime or network. BERT-family encoders: all-MiniLM-L6-v2,
//! paraphrase-multilingual-MiniLM-L12-v2, bge-small-en-v1.5, e5-small-v2.
//!
//! `model` reads the dir (config, tokenizer, pooling, prompts, windows) and schedules the work;
//! `bert` is the encoder itself, on the matrix kernels of `kernels`, whose weights are packed
//! once at load for the CPU's vector width.
//!
//! [`Model::embed_query`] runs on the caller's thread, so a question never waits behind a batch
//! of documents that [`Model::embed_documents`] is working through on the document threads.
//!
//! This crate knows nothing of articles; `articlebot-matching` decides what to embed and keeps
//! the vectors.

mod bert;
mod kernels;
mod model;

pub use bert::Pooling;
pub use model::{Model, ModelError, ModelOptions};
