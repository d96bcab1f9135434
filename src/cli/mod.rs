//! The `articlebot` command line: ask, chat, check, import, serve, backup, restore, and the
//! owner's review, export-learned, stats and unanswered. Each subcommand takes the
//! knowledge dir as `--knowledge DIR` (else `ARTICLEBOT_KNOWLEDGE`, else `./knowledge`). Errors
//! are one clear line on stderr and a non-zero exit code.

mod ask;
mod backup;
mod chat;
mod check;
mod import;
mod model;
mod owner;
mod pull;
mod review;
mod serve;
mod text;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use articlebot_engine::{Engine, ErrorChain, LoadError, OpenError, Options, Store};

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
    /// Turn article pages (.txt, .md, .html files; URLs, sitemaps, feeds) into knowledge files
    Import(import::ImportArgs),
    /// Run the Telegram bot (token from TELOXIDE_TOKEN)
    Serve(Box<serve::ServeArgs>),
    /// Get a sentence model for semantic matching (`model pull [NAME] --out DIR`)
    Model(pull::ModelArgs),
    /// Write a backup of the database (sled: with the bot stopped; PostgreSQL: while it runs)
    Backup(backup::BackupArgs),
    /// Restore a backup into a database dir or PostgreSQL server (with the bot stopped)
    Restore(backup::RestoreArgs),
    /// Bring the database's schema to this articlebot's version (serve does it too at start)
    Migrate(backup::MigrateArgs),
    /// Review what users taught: add questions to articles, one card at a time (bot running or not)
    Review(review::ReviewArgs),
    /// Print the questions added by review as JSON lines (bot running or not)
    ExportLearned(review::ExportArgs),
    /// Print the statistics /stats shows (bot running or not)
    Stats(owner::StatsArgs),
    /// List the questions the bot could not answer, most asked first (bot running or not)
    Unanswered(owner::UnansweredArgs),
}

#[derive(Args, Debug, Clone)]
pub struct KnowledgeArg {
    /// Knowledge dir
    #[arg(long = "knowledge", env = "ARTICLEBOT_KNOWLEDGE", default_value = "knowledge", value_name = "DIR")]
    pub dir: PathBuf,
}

impl KnowledgeArg {
    /// How the dir was chosen, for messages about it: a relative path means nothing without it.
    pub fn origin(&self) -> &'static str {
        let flag = std::env::args_os().any(|a| a == "--knowledge" || a.to_string_lossy().starts_with("--knowledge="));
        if flag {
            "--knowledge"
        } else if std::env::var_os("ARTICLEBOT_KNOWLEDGE").is_some_and(|v| !v.is_empty()) {
            "ARTICLEBOT_KNOWLEDGE"
        } else {
            "the default"
        }
    }
}

/// A knowledge dir that cannot be served, as one line: the absolute dir (and how it was chosen
/// when it is not there), the first problem with its file and line, and where the others are.
pub fn knowledge_failure(dir: &std::path::Path, origin: &str, e: &LoadError) -> Failure {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    match e {
        LoadError::Unreadable { reason, .. } => {
            Failure::usage(format!("knowledge dir {} (from {origin}) {reason}", abs.display()))
        }
        LoadError::Invalid { errors, .. } => {
            let first = errors.first().map_or_else(|| "it has errors".to_string(), ToString::to_string);
            let more = match errors.len() {
                0 | 1 => String::new(),
                n => format!("; and {} more: run `articlebot check {}`", n - 1, abs.display()),
            };
            Failure::usage(format!("knowledge dir {} cannot be loaded: {first}{more}", abs.display()))
        }
    }
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

    /// `context: the error and its causes`, as a usage or environment failure.
    pub fn caused(context: impl std::fmt::Display, error: &(dyn std::error::Error + 'static)) -> Self {
        Failure::usage(format!("{context}: {}", ErrorChain(error)))
    }
}

impl From<LoadError> for Failure {
    fn from(e: LoadError) -> Self {
        Failure { code: EXIT_USAGE, message: e.to_string() }
    }
}

impl From<OpenError> for Failure {
    fn from(e: OpenError) -> Self {
        match e {
            OpenError::Knowledge(e) => e.into(),
            other => Failure::usage(ErrorChain(&other).to_string()),
        }
    }
}

/// Opens the engine on a knowledge dir, printing the load's warnings to stderr.
pub fn open_engine<S: Store>(knowledge: &KnowledgeArg, store: S, options: Options) -> Result<Engine<S>, Failure> {
    let (engine, report) = Engine::open(&knowledge.dir, store, options).map_err(|e| match e {
        OpenError::Knowledge(e) => knowledge_failure(&knowledge.dir, knowledge.origin(), &e),
        other => other.into(),
    })?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(e) = report.semantic.as_ref().and_then(|s| s.cache_error.as_deref()) {
        eprintln!("warning: {e}");
    }
    Ok(engine)
}

/// Structured logs on stderr, level from `RUST_LOG`, else `default` (`info` for the bot, `warn`
/// for the console commands, whose output is for people).
pub fn init_logging(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
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
    init_logging(if matches!(cli.command, Command::Serve(_)) { "info" } else { "warn" });
    let result = match cli.command {
        Command::Ask(a) => ask::run(a),
        Command::Chat(a) => chat::run(a),
        Command::Check(a) => check::run(a),
        Command::Import(a) => import::run(a),
        Command::Serve(a) => serve::run(*a),
        Command::Model(a) => pull::run(a),
        Command::Backup(a) => backup::run_backup(a),
        Command::Restore(a) => backup::run_restore(a),
        Command::Migrate(a) => backup::run_migrate(a),
        Command::Review(a) => review::run_review(a),
        Command::ExportLearned(a) => review::run_export(a),
        Command::Stats(a) => owner::run_stats(a),
        Command::Unanswered(a) => owner::run_unanswered(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
