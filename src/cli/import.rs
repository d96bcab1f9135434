//! `articlebot import PAGE|DIR|URL|SITEMAP|FEED... --out DIR`: pages into knowledge files (see
//! `knowledge::import`); pages on the web through [`crate::site`].

use std::path::PathBuf;

use clap::Args;

use articlebot_engine::{count, Library, Options};

use super::{Failure, EXIT_FAILED};
use crate::site::{import_inputs, summary, CrawlArgs};

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Page files (.txt, .md, .html) or dirs of them; page URLs; sitemaps, sitemap indexes or
    /// RSS/Atom feeds (URLs, or local .xml files listing URLs)
    #[arg(required = true, value_name = "PAGE_DIR_OR_URL")]
    inputs: Vec<String>,
    /// Knowledge dir to write (created if missing); `--knowledge` works too, like everywhere else
    #[arg(long, visible_alias = "knowledge", value_name = "DIR", env = "ARTICLEBOT_KNOWLEDGE")]
    out: PathBuf,
    #[command(flatten)]
    crawl: CrawlArgs,
}

pub fn run(args: ImportArgs) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::caused("cannot start the async runtime", &e))?;
    let result = runtime.block_on(import_inputs(&args.inputs, &args.out, &args.crawl));
    let o = match result {
        Ok(o) => o,
        Err(errors) => {
            for e in &errors {
                println!("error: {e}");
            }
            return Err(Failure {
                code: EXIT_FAILED,
                message: format!("{} cannot be imported into; fix it first (nothing was written)", args.out.display()),
            });
        }
    };
    for l in summary(&o, &args.out) {
        println!("{l}");
    }
    let changed = o.report.pages + o.not_modified + o.removed.len() + o.stubbed.len();
    if changed == 0 {
        let why = if o.problems() == 0 {
            "no pages (.txt, .md or .html files, or URLs) found"
        } else {
            "no page could be read"
        };
        let message = format!("nothing imported: {why}; {} was not created or changed", args.out.display());
        return Err(Failure { code: EXIT_FAILED, message });
    }
    // What `check` would say of the result, so that the owner sees at once whether it serves.
    match Library::load(&args.out, &Options { lexical_only: true, ..Options::default() }) {
        Ok((_, report)) => {
            for w in &report.warnings {
                println!("warning: {w}");
            }
            println!("check: ok: {} ({})", report.stats, count(report.warnings.len(), "warning"));
        }
        Err(e) => println!("check: {}", articlebot_engine::ErrorChain(&e)),
    }
    if o.problems() == 0 {
        Ok(())
    } else {
        let message = format!("{} could not be imported", count(o.problems(), "page"));
        Err(Failure { code: EXIT_FAILED, message })
    }
}
