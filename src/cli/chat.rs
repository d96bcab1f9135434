//! `articlebot chat`: a console conversation through the same `Engine` the Telegram bot uses —
//! the way to try a knowledge base without Telegram. "more" continues, a number picks a choice,
//! "back" returns, "up"/"down" rate the answer, /topics, /reset, /forget, /help, "quit".

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;

use clap::Args;

use super::text::{render, Style};
use super::{load_matcher, Failure, KnowledgeArg};
use crate::conversation::{Engine, Input, Reply, SledStore, Store, User};

#[derive(Args, Debug)]
pub struct ChatArgs {
    #[command(flatten)]
    knowledge: KnowledgeArg,
    /// Keep the conversation in this sled database dir (default: a temporary one)
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
    /// User id to chat as (with --data, to continue a conversation)
    #[arg(long, default_value_t = 1)]
    user: i64,
}

/// Reads a console line as what the user did.
fn parse(line: &str, current: Option<&(String, Option<usize>)>) -> Option<Input> {
    let t = line.trim();
    let lower = t.to_lowercase();
    let (cmd, arg) = lower.split_once(' ').map_or((lower.as_str(), ""), |(c, a)| (c, a.trim()));
    Some(match cmd {
        "quit" | "exit" | "/quit" => return None,
        "more" | "next" | "/more" => Input::More,
        "back" | "/back" => Input::Back,
        "/start" => Input::Start((!arg.is_empty()).then(|| t.split_once(' ').map_or("", |x| x.1).trim().to_string())),
        "/help" | "help" => Input::Help,
        "/topics" | "topics" => Input::Topics(arg.parse::<usize>().map_or(0, |p| p.saturating_sub(1))),
        "/reset" => Input::Reset,
        "/forget" => Input::Forget,
        "up" | "down" | "👍" | "👎" => match current {
            Some((key, section)) => {
                Input::Feedback { key: key.clone(), section: *section, up: matches!(cmd, "up" | "👍") }
            }
            None => Input::Question(t.to_string()),
        },
        _ => match t.parse::<usize>() {
            Ok(n) => Input::Pick(n),
            Err(_) => Input::Question(t.to_string()),
        },
    })
}

pub fn run(args: ChatArgs) -> Result<(), Failure> {
    let matcher = load_matcher(&args.knowledge.dir)?;
    let store = match &args.data {
        Some(dir) => SledStore::open(dir),
        None => SledStore::temporary(),
    }
    .map_err(|e| Failure::usage(format!("cannot open the conversation database: {e}")))?;
    let engine = Engine::new(matcher, store);
    let stdin = io::stdin();
    let interactive = stdin.is_terminal();
    let style = if io::stdout().is_terminal() { Style::TERMINAL } else { Style::PLAIN };
    let user = User { id: args.user, language: None };
    let mut out = io::stdout().lock();
    let io_err = |e: io::Error| Failure::usage(format!("cannot write output: {e}"));
    let bot = engine.library().kb().site.bot_name.clone();
    if interactive {
        writeln!(out, "{bot} — ask a question (\"quit\" to leave, /help for commands)").map_err(io_err)?;
    }
    let mut current: Option<(String, Option<usize>)> = None;
    let mut lines = stdin.lock().lines();
    loop {
        if interactive {
            write!(out, "> ").map_err(io_err)?;
            out.flush().map_err(io_err)?;
        }
        let Some(line) = lines.next() else { break };
        let line = line.map_err(|e| Failure::usage(format!("cannot read input: {e}")))?;
        let Some(input) = parse(&line, current.as_ref()) else { break };
        let now = crate::conversation::now_unix();
        let outcome = engine.handle(&user, input, None, now);
        if let Err(e) = &outcome.stored {
            eprintln!("warning: {e}");
        }
        if let Reply::Answer(a) = &outcome.reply {
            current = Some((a.article.key.clone(), a.section));
        }
        writeln!(out, "{}\n", render(&outcome.reply, style, true)).map_err(io_err)?;
    }
    engine.store().flush().map_err(|e| Failure::usage(format!("cannot save the conversation: {e}")))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_commands() {
        let cur = ("k".to_string(), Some(1));
        assert_eq!(parse("more", None), Some(Input::More));
        assert_eq!(parse(" 2 ", None), Some(Input::Pick(2)));
        assert_eq!(parse("/topics 3", None), Some(Input::Topics(2)));
        assert_eq!(parse("/start Some-Id", None), Some(Input::Start(Some("Some-Id".into()))));
        assert_eq!(parse("up", Some(&cur)), Some(Input::Feedback { key: "k".into(), section: Some(1), up: true }));
        assert_eq!(parse("up", None), Some(Input::Question("up".into())));
        assert_eq!(parse("quit", None), None);
        assert_eq!(parse("knee pain", None), Some(Input::Question("knee pain".into())));
    }
}
