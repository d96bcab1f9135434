//! The Telegram front end (`articlebot serve`). It translates updates into engine calls and
//! replies into Bot API calls; what to answer is the engine's.
//!
//! - `serve`: start-up (settings, knowledge, database, token, command menus), then the updates,
//!   and the stop: [`run`] takes the stop signal as a future, with a deadline for what is in
//!   flight;
//! - `poll`: long polling with our own `getUpdates`; `webhook`: `setWebhook` and the server
//!   Telegram posts to (timeouts, a connection cap); `wire`: updates read one at a time, so one
//!   that cannot be read never costs its batch;
//! - `api`: Bot API calls with teloxide's payload types, without its 10 s sleep after a 5xx and
//!   without response bodies in errors;
//! - `app`: what the handlers share ([`app::App`]), and the knowledge reload;
//! - `handlers`: the dptree tree, gates as branches, one endpoint per kind of update;
//! - `command`: messages read as commands and questions;
//! - `admin`: /reload, /stats, /unanswered, /why, /review; `review`: review cards and their buttons;
//!   `groups`: the unanswered groups' cards (add all to an article, or to the to-do list);
//! - `send`: replies sent within Telegram's limits, retried;
//! - `render`: replies as HTML and inline keyboards; `callback`: button payloads;
//! - `inbox`: every update kept on disk before it is confirmed to Telegram, until handled, and
//!   the dispatcher's listener; `limits`: send limits and flood control;
//! - `replicas`: several replicas on one PostgreSQL server: the shared inbox, worked one chat at
//!   a time by whichever replica claims it, and reloads told to every replica;
//! - `metrics`: the Prometheus counters.

mod admin;
mod api;
mod app;
mod callback;
mod command;
mod groups;
mod handlers;
mod inbox;
mod limits;
mod metrics;
mod poll;
mod render;
mod replicas;
mod review;
mod send;
mod serve;
mod webhook;
mod wire;

/// Waits between attempts while the database server cannot be reached: 100 ms, doubling up to
/// 5 s. The first failure and the recovery are logged and shown in the metrics.
#[derive(Debug, Default)]
struct StoreBackoff {
    wait: Option<std::time::Duration>,
}

impl StoreBackoff {
    async fn failed(&mut self, what: &str, e: &articlebot_engine::StoreError) {
        let wait = match self.wait {
            None => {
                tracing::warn!(error = %articlebot_engine::ErrorChain(e), "{what} waits for the database server");
                metrics::set_store_down(true);
                std::time::Duration::from_millis(100)
            }
            Some(w) => (w * 2).min(std::time::Duration::from_secs(5)),
        };
        metrics::count_error("storage_unreachable");
        self.wait = Some(wait);
        tokio::time::sleep(wait).await;
    }

    fn recovered(&mut self, what: &str) {
        if self.wait.take().is_some() {
            metrics::set_store_down(false);
            tracing::info!("the database server is back: {what} go on");
        }
    }
}

pub use limits::FloodLimits;
pub use serve::{run, ServeConfig, ServeError};

/// What handlers return to teloxide: errors go to its error handler, which logs them.
type HandlerResult = Result<(), Box<dyn std::error::Error + Send + Sync>>;
