//! `articlebot import PAGE_OR_DIR... --out DIR`: pages into knowledge files (see `knowledge::import`).

use std::path::PathBuf;

use clap::Args;

use articlebot_engine::{count, import};

use super::{Failure, EXIT_FAILED};

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Page files (.txt, .md) or dirs of them
    #[arg(required = true, value_name = "PAGE_OR_DIR")]
    inputs: Vec<PathBuf>,
    /// Knowledge dir to write (created if missing); `--knowledge` works too, like everywhere else
    #[arg(long, visible_alias = "knowledge", value_name = "DIR", env = "ARTICLEBOT_KNOWLEDGE")]
    out: PathBuf,
}

pub fn run(args: ImportArgs) -> Result<(), Failure> {
    match import(&args.inputs, &args.out) {
        Ok(r) => {
            for e in &r.errors {
                println!("error: {e}");
            }
            if r.pages == 0 {
                let why =
                    if r.errors.is_empty() { "no pages (.txt or .md files) found" } else { "no page could be read" };
                let message = format!("nothing imported: {why}; {} was not created or changed", args.out.display());
                return Err(Failure { code: EXIT_FAILED, message });
            }
            println!(
                "imported {} into {}: {} created, {} updated, {} unchanged ({})",
                count(r.pages, "page"),
                args.out.display(),
                r.created,
                r.updated,
                r.unchanged,
                count(r.stubs, "stub")
            );
            if r.errors.is_empty() {
                Ok(())
            } else {
                let message = format!("{} could not be imported", count(r.errors.len(), "page"));
                Err(Failure { code: EXIT_FAILED, message })
            }
        }
        Err(errors) => {
            for e in &errors {
                println!("error: {e}");
            }
            Err(Failure {
                code: EXIT_FAILED,
                message: format!(
                    "{} has files that do not parse; fix them first (nothing was written)",
                    args.out.display()
                ),
            })
        }
    }
}
