//! `articlebot check [DIR]`: validates a knowledge dir and lists every problem with file and line.

use std::path::PathBuf;

use clap::Args;

use articlebot_engine::{count, Library, LoadError, OpenError, Options};

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
}

pub fn run(args: CheckArgs) -> Result<(), Failure> {
    let origin = if args.path.is_some() { "the DIR argument" } else { args.knowledge.origin() };
    let dir = args.path.unwrap_or(args.knowledge.dir);
    // The knowledge itself; embedding it is for the commands that answer.
    match Library::load(&dir, &Options { lexical_only: true, ..Options::default() }) {
        Ok((_, report)) => {
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
