//! articlebot answers questions from a knowledge base of articles.
//!
//! Data flows one way: [`knowledge`] (load, validate, import) → [`matching`] (normalise, index,
//! rank, snippet) → front ends ([`cli`]). The engine needs no Telegram.

pub mod cli;
pub mod knowledge;
pub mod matching;
