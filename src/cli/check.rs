//! `articlebot check [DIR]`: validates a knowledge dir and lists every problem with file and line.

use std::path::PathBuf;

use clap::Args;

use super::{Failure, KnowledgeArg, EXIT_FAILED};
use crate::knowledge::{self, LoadError};
use crate::matching::Matcher;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Knowledge dir to check (overrides --knowledge)
    #[arg(value_name = "DIR")]
    path: Option<PathBuf>,
    #[command(flatten)]
    knowledge: KnowledgeArg,
}

pub fn run(args: CheckArgs) -> Result<(), Failure> {
    let dir = args.path.unwrap_or(args.knowledge.dir);
    match knowledge::load(&dir) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                println!("warning: {w}");
            }
            let stats = loaded.kb.stats();
            let matcher = Matcher::new(loaded.kb);
            println!(
                "ok: {} ({} files, {} words indexed, {} warnings)",
                stats,
                loaded.files,
                matcher.index().vocabulary_size(),
                loaded.warnings.len()
            );
            Ok(())
        }
        Err(LoadError::Invalid { errors, warnings }) => {
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
        Err(e) => Err(e.into()),
    }
}
