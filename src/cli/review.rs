//! `articlebot review --data DIR --knowledge DIR`: the learning loop's proposals, one card at a
//! time, decided in the console; `articlebot export-learned --data DIR`: the questions added so
//! far, as JSON lines. Both open the bot's database, and sled lets one process at a time do
//! that: with the bot running they stop at once, saying so (stop the bot, review, start it
//! again; it loads the knowledge dir with the new questions). While the bot runs, admins review
//! in Telegram instead (`/review`, `src/telegram/review.rs`): the same proposals, sessions and
//! decisions, from the engine.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::Args;

use articlebot_engine::{now_unix, Engine, ErrorChain, Proposal, ReviewSession, SledStore, Store, MIN_USERS};

use super::backup::open_failure;
use super::model::ModelArgs;
use super::{open_engine, Failure, KnowledgeArg};

#[derive(Args, Debug)]
pub struct ReviewArgs {
    /// Sled database dir of the bot (stopped)
    #[arg(long, env = "ARTICLEBOT_DATA", default_value = "data", value_name = "DIR")]
    data: PathBuf,
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
    /// Sled database dir of the bot (stopped)
    #[arg(long, env = "ARTICLEBOT_DATA", default_value = "data", value_name = "DIR")]
    data: PathBuf,
}

fn open_store(data: &std::path::Path) -> Result<SledStore, Failure> {
    // A missing dir would be made into a new, empty database: say so instead.
    if !data.join("db").exists() {
        return Err(Failure::usage(format!("{} holds no articlebot database", data.display())));
    }
    SledStore::open(data).map_err(|e| open_failure(data, &e))
}

fn card<S: Store>(e: &Engine<S>, p: &Proposal, left: usize) -> String {
    let c = e.card(p);
    let mut out = format!(
        "\nQuestion: {:?}   ({left} to review)\nProposed article: {} ({}){}\nEvidence: {}\n",
        c.question,
        c.article.title,
        c.article.id,
        c.article.section.as_deref().map_or_else(String::new, |s| format!(", section {s:?}")),
        c.evidence.summary()
    );
    for (i, a) in c.alternatives.iter().enumerate() {
        out.push_str(&format!("  {}. another article: {} ({})\n", i + 1, a.title, a.id));
    }
    out.push_str("[a]dd  [r]eject  [1-9] another article  [s]kip  [u]ndo the last decision  [q]uit > ");
    out
}

pub fn run_review(args: ReviewArgs) -> Result<(), Failure> {
    let store = open_store(&args.data)?;
    let engine = open_engine(&args.knowledge, store, args.model.options())?;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut out = std::io::stdout();
    let mut session = ReviewSession::default();
    loop {
        let left = engine.to_review(&session, args.min_users).map_err(|e| Failure::caused("review", &e))?;
        let p = left.first();
        match p {
            Some(p) => print!("{}", card(&engine, p, left.len())),
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
                "u" | "undo" => undo(&engine),
                "q" | "quit" => return Ok(()),
                _ => println!("Type u or q."),
            }
            continue;
        };
        let accept = |article: &str| match engine.accept(p, article, now_unix()) {
            Ok(done) => println!(
                "Added {:?} to {}{}; the knowledge base answers it with {} now: {}.",
                p.question,
                done.file.display(),
                if done.written { "" } else { " (it was there already)" },
                article,
                if done.answers_now { "yes" } else { "no (other articles still match it better)" }
            ),
            Err(e) => eprintln!("error: {}", ErrorChain(&e)),
        };
        match choice.as_str() {
            "a" | "add" => accept(&p.article),
            "r" | "reject" => match engine.reject(p, now_unix()) {
                Ok(()) => println!("Rejected: {:?} is not proposed for {} again.", p.question, p.article),
                Err(e) => eprintln!("error: {}", ErrorChain(&e)),
            },
            "s" | "skip" => session.skip(p),
            "u" | "undo" => undo(&engine),
            "q" | "quit" => return Ok(()),
            n => match n.parse::<usize>().ok().and_then(|n| n.checked_sub(1)).and_then(|i| p.alternatives.get(i)) {
                Some(other) => accept(other),
                None => println!("Type a, r, s, u, q or the number of another article."),
            },
        }
    }
}

fn undo<S: Store>(engine: &Engine<S>) {
    match engine.undo() {
        Ok(Some(v)) => println!("Undone: {:?} for {} ({:?}).", v.question, v.article, v.verdict),
        Ok(None) => println!("Nothing to undo."),
        Err(e) => eprintln!("error: {}", ErrorChain(&e)),
    }
}

/// One line per question added by review, oldest first.
pub fn run_export(args: ExportArgs) -> Result<(), Failure> {
    let store = open_store(&args.data)?;
    let mut verdicts = store.verdicts().map_err(|e| Failure::caused("export-learned", &e))?;
    verdicts.retain(|v| v.verdict == articlebot_engine::Verdict::Added);
    verdicts.sort_by_key(|v| v.seq);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for v in verdicts {
        let line = serde_json::json!({
            "question": v.question,
            "article": v.article,
            "normalized": v.normalized,
            "at": v.at,
        });
        writeln!(out, "{line}").map_err(|e| Failure::caused("export-learned", &e))?;
    }
    out.flush().map_err(|e| Failure::caused("export-learned", &e))
}
