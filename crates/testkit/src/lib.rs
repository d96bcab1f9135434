//! articlebot's test infrastructure: a **fake Telegram Bot API** ([`FakeTelegram`]), an in-process
//! HTTP server on `127.0.0.1:<random port>` that speaks the Bot API well enough for teloxide when
//! `Bot::set_api_url` / `TELOXIDE_API_URL` points at it, for end-to-end tests, load runs and
//! fault drills. It is a crate of its own so that integration tests, tests that start the real
//! `articlebot serve` process and the load tool share it; the bot itself does not use it.
//!
//! ```no_run
//! # async fn demo() {
//! use articlebot_testkit::FakeTelegram;
//! use std::time::Duration;
//! let fake = FakeTelegram::start().await;
//! let bot = teloxide::Bot::new(fake.token()).set_api_url(fake.api_url());
//! // ... run the bot's dispatcher with `bot` (or start `articlebot serve` with
//! //     TELOXIDE_API_URL=fake.api_url() and the token fake.token()) ...
//! fake.send_text(42, 42, "what is a widget?");
//! let reply = fake.nth_reply(42, 0, Duration::from_secs(5)).await.expect("the bot answered");
//! assert!(reply.plain.contains("widget"));
//! # }
//! ```
//!
//! What it does:
//! - **Updates**: tests inject messages (text with `bot_command`/`mention` entities, replies,
//!   edits, stickers, photos, voice, locations, documents, contacts), button presses
//!   (`callback_query`), inline queries or raw updates, as JSON values or as text sent exactly as
//!   written (lone surrogate escapes, fields teloxide cannot read, invalid JSON:
//!   `push_raw_update_text`). The bot receives them from `getUpdates`
//!   (long polling: `offset` confirms, negative offsets, `limit`, `timeout` honoured up to
//!   [`Options::max_poll_timeout`], `allowed_updates` filters, a second concurrent poll ends the
//!   first with `409 Conflict` like Telegram) or, after `setWebhook`, by POSTs to the webhook
//!   (with `X-Telegram-Bot-Api-Secret-Token`, one at a time, in order, retried until accepted).
//! - **Bot API methods**: `getMe`, `getUpdates`, `sendMessage`, `editMessageText`,
//!   `editMessageReplyMarkup`, `deleteMessage`, `answerCallbackQuery`, `answerInlineQuery`,
//!   `sendChatAction`, `setMyCommands`/`getMyCommands`/`deleteMyCommands`, `setWebhook`/
//!   `deleteWebhook`/`getWebhookInfo`, `close`, `logOut` and a few harmless setters (see
//!   [`IMPLEMENTED_METHODS`]). Method names are case-insensitive; parameters may come as JSON,
//!   form or multipart bodies or a query string. Other methods get
//!   `404 Not Found: method not found`; a wrong token gets `401 Unauthorized`.
//! - **Validation like Telegram's** where a bot can get it wrong: text 1..=4096 UTF-16 code units
//!   after entity parsing, well-formed HTML (TDLib's rules, module `html`), inline keyboards
//!   (≤ 100 buttons, `callback_data` 1..=64 bytes, a button needs an action), edits of missing
//!   messages and edits that change nothing, unknown/already answered callback and inline query
//!   ids, bot command syntax, users who blocked the bot (`403`).
//! - **Recording**: every call ([`Call`]: method, parameters, times, outcome) and every message
//!   the bot sent or edited into a chat ([`Reply`]), with `wait_for*` helpers that always take
//!   a timeout.
//! - **Faults** ([`FaultRule`]): 429 with `retry_after`, 5xx, any API error, delays, dropped
//!   connections, per method/chat, for the next K calls or forever; and an optional rate
//!   limiter with Telegram's flood limits ([`RateLimits`]) that answers 429 and counts it.
//! - **Statistics** for load runs: replies per chat with timestamps, reply latencies, counters.
//!
//! How teloxide reacts (teloxide-core 0.13), useful when writing fault tests:
//! - a 429 becomes `RequestError::RetryAfter(n)`; a plain `Bot` does **not** retry, the caller
//!   gets the error at once and must wait `n` seconds itself. (teloxide's optional `Throttle`
//!   adaptor, feature `throttle`, waits and resends.) The polling listener pauses `getUpdates`
//!   for `n` seconds;
//! - any 5xx response makes teloxide sleep **10 s** before returning the error, so prefer 429s,
//!   API errors or dropped connections in tests that must be fast;
//! - a dropped connection is `RequestError::Network`; polling retries after its backoff.
//!
//! Limitations: no files (upload/download), no media sending, `MarkdownV2` is accepted without
//! validation, no business/payments/stickers API, webhooks are delivered over plain HTTP to any
//! port (Telegram requires HTTPS on 443/80/88/8443), one delivery at a time.
//!
//! Layout (private modules, the face re-exported below):
//! - `fake_telegram`: [`FakeTelegram`] (start, inject, faults and limits, inspect, wait,
//!   statistics) and its [`Options`];
//! - `records`: what is recorded and handed to tests ([`Call`], [`Outcome`], [`Reply`],
//!   [`Button`], [`MessageRef`], [`QueryRef`], [`Stats`], [`ChatStats`]);
//! - `state`: the state the server's tasks share, behind one mutex, and the signals that wake
//!   long polls, the webhook loop and waiting tests;
//! - `http`: the accept loop, requests, token check, fault rules, answers, `getUpdates` long
//!   polling;
//! - `methods`: the other Bot API methods and Telegram's checks of their parameters;
//! - `webhook`: delivery of updates to the webhook;
//! - `body`: request parameters, however they were encoded;
//! - `html`: Telegram's `parse_mode = HTML`;
//! - `updates`: users, chats and incoming messages ([`TestUser`], [`TestChat`], [`Incoming`],
//!   [`Content`]) and their Bot API JSON;
//! - `faults`: fault rules ([`FaultRule`], [`Fault`]), Telegram's flood limits ([`RateLimits`])
//!   and [`Counters`];
//! - `model`: where the semantic tests find their sentence-embedding model
//!   ([`require_test_model`]).
//!
//! And one public module: [`postgres`], a real PostgreSQL server on 127.0.0.1 for the tests of
//! the PostgreSQL-backed store ([`postgres::TestPostgres`], a private cluster a test may stop,
//! restart or `kill -9`; [`postgres::shared_server`] / [`postgres::fresh_database`], a fresh
//! database per test on one server per test process or the one `ARTICLEBOT_TEST_POSTGRES` names).

pub mod balancer;
mod body;
mod fake_telegram;
mod faults;
mod files;
mod html;
mod http;
mod methods;
mod model;
pub mod postgres;
mod records;
mod state;
mod updates;
mod webhook;

pub use fake_telegram::{FakeTelegram, Options, IMPLEMENTED_METHODS, TEST_BOT_USERNAME, TEST_TOKEN};
pub use faults::{Counters, Fault, FaultRule, RateLimits};
pub use files::copy_dir;
pub use model::{require_test_model, test_model};
pub use records::{Button, Call, ChatStats, MessageRef, Outcome, QueryRef, Reply, ReplyKind, Stats};
pub use updates::{ChatKind, Content, Incoming, TestChat, TestUser};
