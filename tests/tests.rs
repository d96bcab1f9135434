//! articlebot's integration tests, one binary: the real `articlebot` process on the command line
//! and as a Telegram bot against the fake Bot API (`articlebot-testkit`) on 127.0.0.1, with its
//! sled database on disk, killed and restarted.

mod bad_updates;
mod bot_harness;
mod cli;
mod crash_restart;
mod faults;
mod group_taps;
mod html_import;
mod import;
mod knowledge_errors;
mod learning;
mod limits;
mod model_pull;
mod owner;
mod postgres_store;
mod replay_guard;
mod replicas;
mod review_telegram;
mod semantic;
mod serve_startup;
mod shutdown;
mod site_import;
mod storage;
mod telegram_e2e;
mod unanswered_groups;
mod watch_telegram;
mod webhook_server;
