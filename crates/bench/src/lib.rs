//! articlebot's measurement tools, kept out of the shipped binary:
//!
//! - `bench`: the engine on a generated 10,000-page site: load, index, query latency, memory;
//! - `load`: the real `articlebot serve` process under load, kill -9 and Telegram's limits,
//!   against the fake Bot API (`articlebot-testkit`);
//! - `state_growth`: how the conversation database grows with users and questions;
//! - `learning_replay`: simulated users over the StackFAQ dev questions, what learning changes.
//!
//! Run them with `cargo run --release -p articlebot-bench --bin NAME -- --help`. This library
//! holds what they share: deterministic randomness and the measurements.

pub mod corpus;
pub mod measure;
pub mod rng;
