//! The Telegram front end (`articlebot serve`). It translates updates into engine calls and
//! replies into Bot API calls; what to answer is the engine's.
//!
//! - `serve`: start-up (knowledge, database, token, command menus), long polling or webhook,
//!   and the stop: [`run`] takes the shutdown signal as a future;
//! - `app`: what the handlers share ([`app::App`]), and the knowledge reload;
//! - `handlers`: the dptree tree, gates as branches, one endpoint per kind of update;
//! - `command`: messages read as commands and questions;
//! - `admin`: /reload, /stats, /unanswered;
//! - `send`: replies sent within Telegram's limits, retried;
//! - `render`: replies as HTML and inline keyboards; `callback`: button payloads;
//! - `inbox`: every update kept on disk until handled; `limits`: send limits and flood control;
//! - `metrics`: the Prometheus counters.

mod admin;
mod app;
mod callback;
mod command;
mod handlers;
mod inbox;
mod limits;
mod metrics;
mod render;
mod send;
mod serve;

pub use limits::FloodLimits;
pub use serve::{run, ServeConfig, ServeError};

/// What handlers return to teloxide: errors go to its error handler, which logs them.
type HandlerResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
