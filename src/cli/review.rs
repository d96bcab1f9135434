//! `articlebot review --data DIR --knowledge DIR`: the learning loop's proposals, one card at a
//! time, decided in the console; `articlebot export-learned --data DIR`: the questions added so
//! far, as JSON lines. With the bot stopped they open its database (and review loads the
//! knowledge dir); with it running they go through its admin socket, each step (list, accept,
//! reject, undo) one request, so the running bot reloads itself after an accept.
//! Admins can also review in Telegram (`/review`, `src/telegram/review.rs`): the same
//! proposals and decisions, from the engine.

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::Args;

use articlebot_engine::{VerdictRecord, MIN_USERS};

use super::model::ModelArgs;
use super::owner::{Backend, Needs};
use super::{Failure, KnowledgeArg};
use crate::owner::protocol::{AcceptedView, ProposalView, Request};
use crate::store::Location;

#[derive(Args, Debug)]
pub struct ReviewArgs {
    /// Sled database dir of the bot (running or not)
    #[arg(long, env = "ARTICLEBOT_DATA", default_value = "data", value_name = "DIR")]
    data: PathBuf,
    /// The bot's PostgreSQL server (`serve --store`), instead of the sled dir
    #[arg(long, env = "ARTICLEBOT_STORE", value_name = "URL", hide_env_values = true)]
    store: Option<String>,
    // With the bot running, the bot's own knowledge base is used.
    #[command(flatten)]
    knowledge: KnowledgeArg,
    #[command(flatten)]
    model: ModelArgs,
    /// Propose a question only once this many distinct users backed it
    #[arg(long, default_value_t = MIN_USERS, value_name = "N")]
    min_users: u64,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Sled database dir of the bot (running or not)
    #[arg(long, env = "ARTICLEBOT_DATA", default_value = "data", value_name = "DIR")]
    data: PathBuf,
    /// The bot's PostgreSQL server (`serve --store`), instead of the sled dir
    #[arg(long, env = "ARTICLEBOT_STORE", value_name = "URL", hide_env_values = true)]
    store: Option<String>,
}

fn card(p: &ProposalView, left: usize) -> String {
    let ev = &p.evidence;
    let mut out = format!(
        "\nQuestion: {:?}   ({left} to review)\nProposed article: {} ({})\nEvidence: {} user(s): {} pick(s), {} 👍, {} 👎, {} rephrase(s)\n",
        p.question,
        p.article.title,
        p.article.id,
        ev.users,
        ev.picks,
        ev.ups,
        ev.downs,
        ev.rephrases
    );
    if ev.resolved > 0 {
        out.push_str(&format!("          {} user(s) confirmed it after rephrasing the question\n", ev.resolved));
    }
    for (i, a) in p.alternatives.iter().enumerate() {
        out.push_str(&format!("  {}. another article: {} ({})\n", i + 1, a.title, a.id));
    }
    out.push_str("[a]dd  [r]eject  [1-9] another article  [s]kip  [u]ndo the last decision  [q]uit > ");
    out
}

pub fn run_review(args: ReviewArgs) -> Result<(), Failure> {
    let backend = Backend::connect(
        &Location::from_args(args.store.as_deref(), &args.data),
        Needs::Engine { knowledge: &args.knowledge, model: &args.model },
    )?;
    if let Backend::Socket(path) = &backend {
        // Said because --knowledge is not what is reviewed then: the bot's own knowledge dir is.
        eprintln!("The bot is running: reviewing through it ({}), on its knowledge dir.", path.display());
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut out = std::io::stdout();
    let mut skipped: HashSet<(String, String)> = HashSet::new();
    let min_users = args.min_users;
    // What users added by themselves (`[learning] auto_accept_users`), so the reviewer sees it
    // and can undo the last of it here.
    let learned: Vec<VerdictRecord> = backend.call(&Request::ExportLearned {}).map_err(Failure::usage)?;
    let automatic: Vec<&VerdictRecord> = learned.iter().filter(|v| v.automatic).collect();
    if !automatic.is_empty() {
        println!("Added automatically ({}), newest last:", automatic.len());
        for v in automatic.iter().rev().take(10).rev() {
            println!("  {:?} → {}", v.question, v.article);
        }
    }
    loop {
        let all: Vec<ProposalView> = backend.call(&Request::Proposals { min_users }).map_err(Failure::usage)?;
        let left: Vec<&ProposalView> =
            all.iter().filter(|p| !skipped.contains(&(p.normalized.clone(), p.article.id.clone()))).collect();
        let p = left.first().copied();
        match p {
            Some(p) => print!("{}", card(p, left.len())),
            None => print!("\nNothing (more) to review.\n[u]ndo the last decision  [q]uit > "),
        }
        let _ = out.flush();
        let Some(Ok(line)) = lines.next() else {
            println!();
            return Ok(());
        };
        let choice = line.trim().to_lowercase();
        let Some(p) = p else {
            match choice.as_str() {
                "u" | "undo" => undo(&backend),
                "q" | "quit" => return Ok(()),
                _ => println!("Type u or q."),
            }
            continue;
        };
        let accept = |article: &str| {
            let req = Request::Accept { normalized: p.normalized.clone(), article: article.to_string(), min_users };
            match backend.call::<AcceptedView>(&req) {
                Ok(done) => println!(
                    "Added {:?} to {}{}; the knowledge base answers it with {} now: {}.",
                    done.question,
                    done.file,
                    if done.written { "" } else { " (it was there already)" },
                    done.article,
                    if done.answers_now { "yes" } else { "no (other articles still match it better)" }
                ),
                Err(e) => eprintln!("error: {e}"),
            }
        };
        match choice.as_str() {
            "a" | "add" => accept(&p.article.id),
            "r" | "reject" => {
                let req =
                    Request::Reject { normalized: p.normalized.clone(), article: p.article.id.clone(), min_users };
                match backend.call::<()>(&req) {
                    Ok(()) => println!("Rejected: {:?} is not proposed for {} again.", p.question, p.article.id),
                    Err(e) => eprintln!("error: {e}"),
                }
            }
            "s" | "skip" => {
                skipped.insert((p.normalized.clone(), p.article.id.clone()));
            }
            "u" | "undo" => undo(&backend),
            "q" | "quit" => return Ok(()),
            n => match n.parse::<usize>().ok().and_then(|n| n.checked_sub(1)).and_then(|i| p.alternatives.get(i)) {
                Some(other) => accept(&other.id),
                None => println!("Type a, r, s, u, q or the number of another article."),
            },
        }
    }
}

fn undo(backend: &Backend) {
    match backend.call::<Option<VerdictRecord>>(&Request::Undo {}) {
        Ok(Some(v)) if v.automatic => println!(
            "Undone: {:?} for {} (added automatically); users alone will not add it to {} again (undo once more to review it).",
            v.question, v.article, v.article
        ),
        Ok(Some(v)) => println!("Undone: {:?} for {} ({:?}).", v.question, v.article, v.verdict),
        Ok(None) => println!("Nothing to undo."),
        Err(e) => eprintln!("error: {e}"),
    }
}

/// One line per question added, by review or automatically (`"automatic": true`), oldest first.
pub fn run_export(args: ExportArgs) -> Result<(), Failure> {
    let backend =
        Backend::connect(&Location::from_args(args.store.as_deref(), &args.data), Needs::Store { titles: None })?;
    let verdicts: Vec<VerdictRecord> = backend.call(&Request::ExportLearned {}).map_err(Failure::usage)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for v in verdicts {
        let line = serde_json::json!({
            "question": v.question,
            "article": v.article,
            "normalized": v.normalized,
            "at": v.at,
            "automatic": v.automatic,
        });
        writeln!(out, "{line}").map_err(|e| Failure::caused("export-learned", &e))?;
    }
    out.flush().map_err(|e| Failure::caused("export-learned", &e))
}
