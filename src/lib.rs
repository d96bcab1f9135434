//! articlebot answers questions from a knowledge base of articles.
//!
//! Data flows one way: [`knowledge`] (load, validate, import) → [`matching`] (normalise, index,
//! rank, snippet) → [`conversation`] (per-user state machine over a store) → front ends:
//! [`telegram`] (the bot) and [`cli`] (ask, chat, check, import, serve, bench). Everything up
//! to `conversation` works without Telegram. [`testkit`] (a fake Telegram Bot API) exists only
//! with the `testkit` feature, which the tests, the load tool and examples turn on.

pub mod cli;
pub mod conversation;
pub mod knowledge;
pub mod matching;
pub mod rng;
pub mod telegram;
#[cfg(feature = "testkit")]
pub mod testkit;
