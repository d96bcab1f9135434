//! `articlebot review --data DIR --knowledge DIR`: the learning loop's proposals, one card at a
//! time, decided in the console; `articlebot export-learned --data DIR`: the questions added so
//! far, as JSON lines. Both open the bot's database, and sled lets one process at a time do
//! that: with the bot running they stop at once, saying so (stop the bot, review, start it
//! again; it loads the knowledge dir with the new questions).

use std::collections::HashSet;
use std::io::{BufRead, Write};
use std::path::PathBuf;

use clap::Args;

use articlebot_engine::{now_unix, Engine, ErrorChain, Proposal, SledStore, Store};

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
    #[arg(long, default_value_t = 1, value_name = "N")]
    min_users: u64,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Sled database dir of the bot (stopped)
    #[arg(long, env = "ARTICLEBOT_DATA", default_value = "data", value_name = "DIR")]
    data: PathBuf,
}

pub(super) fn open_store(data: &std::path::Path) -> Result<SledStore, Failure> {
    // A missing dir would be made into a new, empty database: say so instead.
    if !data.join("db").exists() {
        return Err(Failure::usage(format!("{} holds no articlebot database", data.display())));
    }
    SledStore::open(data).map_err(|e| open_failure(data, &e))
}

fn title_of<S: Store>(e: &Engine<S>, id: &str) -> String {
    let lib = e.library();
    lib.kb().by_id(id).map_or_else(|| id.to_string(), |i| lib.kb().articles[i as usize].title.clone())
}

fn card<S: Store>(e: &Engine<S>, p: &Proposal, left: usize) -> String {
    let ev = &p.evidence;
    let mut out = format!(
        "\nQuestion: {:?}   ({left} to review)\nProposed article: {} ({})\nEvidence: {} user(s): {} pick(s), {} 👍, {} 👎, {} rephrase(s)\n",
        p.question,
        title_of(e, &p.article),
        p.article,
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
        out.push_str(&format!("  {}. another article: {} ({a})\n", i + 1, title_of(e, a)));
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
    let mut skipped: HashSet<(String, String)> = HashSet::new();
    // What users added by themselves (`[learning] auto_accept_users`), so the reviewer sees it
    // and can undo the last of it here.
    let automatic: Vec<_> =
        engine.learned().map_err(|e| Failure::caused("review", &e))?.into_iter().filter(|v| v.automatic).collect();
    if !automatic.is_empty() {
        println!("Added automatically ({}), newest last:", automatic.len());
        for v in automatic.iter().rev().take(10).rev() {
            println!("  {:?} → {} ({})", v.question, title_of(&engine, &v.article), v.article);
        }
    }
    loop {
        let all = engine.proposals(args.min_users).map_err(|e| Failure::caused("review", &e))?;
        let left: Vec<&Proposal> =
            all.iter().filter(|p| !skipped.contains(&(p.normalized.clone(), p.article.clone()))).collect();
        let p = left.first().copied();
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
            "s" | "skip" => {
                skipped.insert((p.normalized.clone(), p.article.clone()));
            }
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
        Ok(Some(v)) if v.automatic => println!(
            "Undone: {:?} for {} (added automatically); users alone will not add it to {} again (undo once more to review it).",
            v.question, v.article, v.article
        ),
        Ok(Some(v)) => println!("Undone: {:?} for {} ({:?}).", v.question, v.article, v.verdict),
        Ok(None) => println!("Nothing to undo."),
        Err(e) => eprintln!("error: {}", ErrorChain(&e)),
    }
}

/// One line per question added, by review or automatically (`"automatic": true`), oldest first.
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
            "automatic": v.automatic,
        });
        writeln!(out, "{line}").map_err(|e| Failure::caused("export-learned", &e))?;
    }
    out.flush().map_err(|e| Failure::caused("export-learned", &e))
}
