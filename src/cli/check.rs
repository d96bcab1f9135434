//! `articlebot check [DIR]`: validates a knowledge dir and lists every problem with file and line;
//! with `--replay`, also asks it the questions added by review (from a data dir, through the
//! running bot's admin socket when it holds the database, or an export), as `/reload` does
//! before it swaps a knowledge base in.

use std::path::{Path, PathBuf};

use clap::Args;

use articlebot_engine::{count, replay, Library, LoadError, OpenError, Options, Verdict, VerdictRecord};

use super::model::ModelArgs;
use super::{Failure, KnowledgeArg, EXIT_FAILED};

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Knowledge dir to check (overrides --knowledge)
    #[arg(value_name = "DIR")]
    path: Option<PathBuf>,
    #[command(flatten)]
    knowledge: KnowledgeArg,
    /// Fail (exit 1) on warnings too, such as links to articles that do not exist
    #[arg(long)]
    strict: bool,
    /// Ask the knowledge dir the questions added by review: a bot's data dir (running or not), its
    /// PostgreSQL server's URL, or the JSON lines `articlebot export-learned` writes
    #[arg(long, value_name = "DATA_DIR|URL|FILE")]
    replay: Option<PathBuf>,
    /// With --replay: fail (exit 1) when more than this share of them are not answered as reviewed
    #[arg(long, value_name = "PERCENT", default_value = "5%", value_parser = super::serve::parse_percent)]
    replay_limit: f32,
    /// The sentence model the bot answers with, for --replay
    #[command(flatten)]
    model: ModelArgs,
}

/// The reviewed questions in a data dir or an export of them.
fn reviewed(from: &Path) -> Result<Vec<VerdictRecord>, Failure> {
    let url = from.to_str().filter(|s| articlebot_postgres::is_url(s));
    if from.is_dir() || url.is_some() {
        // The running bot's own answer through its admin socket, else the database itself.
        let at = crate::store::Location::from_args(url, from);
        let backend = super::owner::Backend::connect(&at, super::owner::Needs::Store { titles: None })?;
        let v: Vec<VerdictRecord> = backend
            .call(&crate::owner::protocol::Request::ExportLearned {})
            .map_err(|e| Failure::usage(format!("--replay: {e}")))?;
        return Ok(v);
    }
    let text = std::fs::read_to_string(from)
        .map_err(|e| Failure::caused(format!("--replay: cannot read {}", from.display()), &e))?;
    #[derive(serde::Deserialize)]
    struct Line {
        question: String,
        article: String,
        #[serde(default)]
        normalized: String,
        #[serde(default)]
        at: u64,
        #[serde(default)]
        automatic: bool,
    }
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, l)| {
            let line: Line = serde_json::from_str(l).map_err(|e| {
                Failure::usage(format!("--replay: {}:{}: not a line of export-learned ({e})", from.display(), n + 1))
            })?;
            Ok(VerdictRecord {
                seq: n as u64,
                normalized: line.normalized,
                question: line.question,
                article: line.article,
                verdict: Verdict::Added,
                at: line.at,
                automatic: line.automatic,
            })
        })
        .collect()
}

pub fn run(args: CheckArgs) -> Result<(), Failure> {
    let origin = if args.path.is_some() { "the DIR argument" } else { args.knowledge.origin() };
    let dir = args.path.unwrap_or(args.knowledge.dir);
    let cases = args.replay.as_deref().map(reviewed).transpose()?;
    // The knowledge itself; embedding it is for the commands that answer, and for a replay,
    // which must decide as the bot does.
    let options =
        if cases.is_some() { args.model.options() } else { Options { lexical_only: true, ..Options::default() } };
    match Library::load(&dir, &options) {
        Ok((library, report)) => {
            for w in &report.warnings {
                println!("warning: {w}");
            }
            let n = report.warnings.len();
            if args.strict && n > 0 {
                let message = format!("{} has {} (--strict)", dir.display(), count(n, "warning"));
                return Err(Failure { code: EXIT_FAILED, message });
            }
            let (files, warnings) = (count(report.files, "file"), count(n, "warning"));
            println!("ok: {} ({files}, {} words indexed, {warnings})", report.stats, report.words);
            if let Some(cases) = cases {
                let replayed = replay(&cases, &library, None);
                for d in &replayed.differ {
                    println!("differs: {d}");
                }
                println!("replay: {}", replayed.summary());
                if replayed.broken_share() > args.replay_limit {
                    let message = format!(
                        "{} does not answer {} of the reviewed questions as reviewed (more than {:.0} %)",
                        dir.display(),
                        replayed.differ.len(),
                        args.replay_limit * 100.0
                    );
                    return Err(Failure { code: EXIT_FAILED, message });
                }
            }
            Ok(())
        }
        Err(OpenError::Knowledge(LoadError::Invalid { errors, warnings })) => {
            for w in &warnings {
                println!("warning: {w}");
            }
            for e in &errors {
                println!("error: {e}");
            }
            Err(Failure {
                code: EXIT_FAILED,
                message: format!(
                    "{} has {} error{}",
                    dir.display(),
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" }
                ),
            })
        }
        Err(OpenError::Knowledge(e)) => Err(super::knowledge_failure(&dir, origin, &e)),
        Err(e) => Err(e.into()),
    }
}
