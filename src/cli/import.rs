//! `articlebot import PAGE_OR_DIR... --out DIR`: pages into knowledge files (see `knowledge::import`).

use std::path::PathBuf;

use clap::Args;

use articlebot_engine::import;

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
            println!(
                "imported {} pages into {}: {} created, {} updated, {} unchanged ({} stubs)",
                r.pages,
                args.out.display(),
                r.created,
                r.updated,
                r.unchanged,
                r.stubs
            );
            if r.errors.is_empty() {
                Ok(())
            } else {
                Err(Failure { code: EXIT_FAILED, message: format!("{} pages could not be imported", r.errors.len()) })
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
