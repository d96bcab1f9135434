//! The `articlebot` command line: ask, chat, check, import, serve, bench. Each subcommand takes the knowledge dir as
//! `--knowledge DIR` (else `ARTICLEBOT_KNOWLEDGE`, else `./knowledge`). Errors are one clear line
//! on stderr and a non-zero exit code.

mod ask;
mod bench;
mod chat;
mod check;
mod import;
mod serve;
mod text;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::knowledge::LoadError;
use crate::matching::Matcher;

#[derive(Parser, Debug)]
#[command(name = "articlebot", version, about = "Answers questions from a knowledge base of articles")]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Answer a question (or one question per stdin line with --json)
    Ask(ask::AskArgs),
    /// Talk to the bot in the console, with the same conversation logic as on Telegram
    Chat(chat::ChatArgs),
    /// Validate a knowledge dir; exits non-zero on errors
    Check(check::CheckArgs),
    /// Turn article pages (.txt, .md) into knowledge files
    Import(import::ImportArgs),
    /// Run the Telegram bot (token from TELOXIDE_TOKEN)
    Serve(serve::ServeArgs),
    /// Measure load, index and query speed on a generated knowledge base
    Bench(bench::BenchArgs),
}

#[derive(Args, Debug, Clone)]
pub struct KnowledgeArg {
    /// Knowledge dir
    #[arg(long = "knowledge", env = "ARTICLEBOT_KNOWLEDGE", default_value = "knowledge", value_name = "DIR")]
    pub dir: PathBuf,
}

/// Exit codes: 1 for a failed check or import, 2 for a usage or environment error.
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;

/// A command's failure: printed as one `error:` line (plus detail lines) with its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Failure { code: EXIT_USAGE, message: message.into() }
    }
}

impl From<LoadError> for Failure {
    fn from(e: LoadError) -> Self {
        Failure { code: EXIT_USAGE, message: e.to_string() }
    }
}

/// Loads and indexes the knowledge base, printing warnings to stderr.
pub fn load_matcher(dir: &std::path::Path) -> Result<Matcher, Failure> {
    let loaded = crate::matching::load(dir)?;
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    Ok(loaded.matcher)
}

/// Structured logs on stderr, level from `RUST_LOG` (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: log files and journald get plain `key=value` lines.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr).try_init();
}

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let result = match cli.command {
        Command::Ask(a) => ask::run(a),
        Command::Chat(a) => chat::run(a),
        Command::Check(a) => check::run(a),
        Command::Import(a) => import::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Serve(a) => serve::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
