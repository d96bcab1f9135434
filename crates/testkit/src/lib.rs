//! Test infrastructure shipped inside the crate, so that integration tests, tests that start the
//! real `articlebot serve` process and the load tool can share it.
//!
//! This module owns the **fake Telegram Bot API** ([`FakeTelegram`]): a real HTTP server on
//! `127.0.0.1` that teloxide talks to when `Bot::set_api_url` / `TELOXIDE_API_URL` points at it.
//! Tests inject what users do (messages, button presses, inline queries), the bot receives them
//! by long polling or webhook, and the fake records and validates every call the bot makes, can
//! inject faults (429, 5xx, delays, dropped connections), can enforce Telegram's flood limits,
//! and keeps per-chat timings for load measurements. See [`fake_telegram`] for the details,
//! the behaviour of teloxide under faults and the known limitations.
//!
//! It is not used by the bot itself.

mod body;
pub mod fake_telegram;
pub mod faults;
pub mod html;
pub mod updates;

pub use fake_telegram::{
    Button, Call, ChatStats, FakeTelegram, MessageRef, Options, Outcome, QueryRef, Reply, ReplyKind, Stats,
    IMPLEMENTED_METHODS, TEST_BOT_USERNAME, TEST_TOKEN,
};
pub use faults::{Counters, Fault, FaultRule, RateLimits};
pub use updates::{ChatKind, Content, Incoming, TestChat, TestUser};
