//! articlebot answers questions from a knowledge base of articles.
//!
//! Data flows one way: [`knowledge`] (load, validate, import) → [`matching`] (normalise, index,
//! rank, snippet) → [`conversation`] (per-user state machine over a store) → front ends:
//! [`telegram`] (the bot) and [`cli`] (ask, chat, check, import, serve, bench). Everything up
//! to `conversation` works without Telegram.

pub mod cli;
pub mod conversation;
pub mod knowledge;
pub mod matching;
pub mod telegram;
pub mod testkit;
