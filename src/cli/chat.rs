//! `articlebot chat`: a console conversation through the same `Engine` the Telegram bot uses —
//! the way to try a knowledge base without Telegram. "more" continues, a number picks a choice,
//! "back" returns, "up"/"down" rate the answer, /topics, /reset, /forget, /help, "quit".

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;

use articlebot_engine::vocabulary::{self, Command};
use articlebot_engine::{now_unix, ErrorChain, Input, Options, SledStore, Store, User};
use clap::Args;

use super::model::ModelArgs;
use super::text::{render, wrap, Style};
use super::{open_engine, Failure, KnowledgeArg};

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
    #[command(flatten)]
    model: ModelArgs,
}

/// Commands the console also takes without their slash.
const BARE_COMMANDS: &[&str] = &["help", "topics"];

/// Reads a console line as what the user did; `None` to leave. Commands come from the bot's
/// vocabulary (`/more`, and typed words like "more", "up" and numbers are read by the engine
/// itself, which knows what is on screen); the console adds "quit".
fn parse(line: &str) -> Option<Input> {
    let t = line.trim();
    let (head, arg) = t.split_once(char::is_whitespace).map_or((t, ""), |(h, a)| (h, a.trim()));
    let lower = head.to_lowercase();
    if matches!(lower.as_str(), "quit" | "exit" | "/quit" | "/exit") {
        return None;
    }
    let name = lower.strip_prefix('/').or_else(|| BARE_COMMANDS.contains(&lower.as_str()).then_some(lower.as_str()));
    if let Some(spec) = name.and_then(vocabulary::command) {
        return Some(match spec.with_argument(arg) {
            Command::Conversation(input) => input,
            // Admin commands act on a running bot; the console has none.
            Command::Admin(_) => Input::Help,
        });
    }
    Some(Input::Question(t.to_string()))
}

pub fn run(args: ChatArgs) -> Result<(), Failure> {
    let store = match &args.data {
        Some(dir) => SledStore::open(dir),
        None => SledStore::temporary(),
    }
    .map_err(|e| Failure::caused("cannot open the conversation database", &e))?;
    // Without --data the conversation is thrown away at exit: nothing is kept for the authors.
    let options = Options { keeps_questions: args.data.is_some(), ..args.model.options() };
    let engine = open_engine(&args.knowledge, store, options)?;
    let stdin = io::stdin();
    let interactive = stdin.is_terminal();
    let terminal = io::stdout().is_terminal();
    let style = Style::for_console(terminal);
    // Paragraphs wrap at word boundaries to the terminal's width; piped output stays as it is.
    let width = terminal.then(|| console::Term::stdout().size_checked().map(|(_, cols)| cols as usize)).flatten();
    let user = User { id: args.user, language: None };
    let mut out = io::stdout().lock();
    let io_err = |e: io::Error| Failure::caused("cannot write output", &e);
    let bot = engine.library().kb().site.bot_name.clone();
    if interactive {
        writeln!(out, "{bot} — ask a question (\"quit\" to leave, /help for commands)").map_err(io_err)?;
    }
    let mut lines = Lines::new(interactive, stdin.lock());
    loop {
        let line = match lines.next(&mut out) {
            Ok(Some(line)) => line,
            Ok(None) => break,
            Err(e) => return Err(Failure::caused("cannot read input", &e)),
        };
        let Some(input) = parse(&line) else { break };
        let outcome = engine.handle(&user, input, None, now_unix());
        if let Err(e) = &outcome.stored {
            eprintln!("warning: {}", ErrorChain(e));
        }
        let shown = render(&outcome.reply, style, true);
        let shown = match width {
            Some(w) => wrap(&shown, w),
            None => shown,
        };
        writeln!(out, "{shown}\n").map_err(io_err)?;
        // After the reply, as the bot does: a write into the knowledge dir and a reload.
        if outcome.learning_due {
            for done in engine.accept_due(now_unix()) {
                let p = &done.proposal;
                match &done.result {
                    Ok(_) => eprintln!(
                        "note: {:?} was added to {} by itself ({} users backed it; `articlebot review` can undo it)",
                        p.question, p.article, p.evidence.users
                    ),
                    Err(e) => eprintln!("warning: could not add {:?} to {}: {}", p.question, p.article, ErrorChain(e)),
                }
            }
        }
    }
    lines.save_history();
    engine.store().flush().map_err(|e| Failure::caused("cannot save the conversation", &e))?;
    Ok(())
}

/// Where the console's lines come from: a line editor with history on a terminal (arrow keys,
/// Ctrl-A/E, Ctrl-L, Ctrl-D to leave), else plain lines from a pipe.
enum Lines<R> {
    Editor { editor: Box<rustyline::DefaultEditor>, history: Option<PathBuf> },
    Plain(io::Lines<R>),
}

impl<R: BufRead> Lines<R> {
    fn new(interactive: bool, input: R) -> Self {
        if interactive {
            if let Ok(mut editor) = rustyline::DefaultEditor::new() {
                let history = history_file();
                if let Some(h) = &history {
                    // No history yet is the usual first run.
                    let _ = editor.load_history(h);
                }
                return Lines::Editor { editor: Box::new(editor), history };
            }
        }
        Lines::Plain(input.lines())
    }

    /// The next line; `None` at the end of input (Ctrl-D on a terminal).
    fn next(&mut self, out: &mut impl Write) -> io::Result<Option<String>> {
        match self {
            Lines::Plain(lines) => lines.next().transpose(),
            Lines::Editor { editor, .. } => loop {
                match editor.readline("> ") {
                    Ok(line) => {
                        if !line.trim().is_empty() {
                            let _ = editor.add_history_entry(line.as_str());
                        }
                        return Ok(Some(line));
                    }
                    // Ctrl-C drops the line being typed, as a shell does.
                    Err(rustyline::error::ReadlineError::Interrupted) => continue,
                    Err(rustyline::error::ReadlineError::Eof) => {
                        // Leave the terminal's prompt on a line of its own.
                        writeln!(out)?;
                        return Ok(None);
                    }
                    Err(rustyline::error::ReadlineError::Io(e)) => return Err(e),
                    Err(e) => return Err(io::Error::other(e.to_string())),
                }
            },
        }
    }

    fn save_history(&mut self) {
        if let Lines::Editor { editor, history: Some(h) } = self {
            let saved = h
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| editor.save_history(h).map_err(|e| io::Error::other(e.to_string())));
            if let Err(e) = saved {
                eprintln!("warning: cannot save the console history to {}: {e}", h.display());
            }
        }
    }
}

/// `$XDG_STATE_HOME/articlebot/chat_history`, else `~/.local/state/articlebot/chat_history`.
fn history_file() -> Option<PathBuf> {
    let state = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()).map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").filter(|d| !d.is_empty()).map(|h| PathBuf::from(h).join(".local/state"))
    })?;
    Some(state.join("articlebot/chat_history"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_commands() {
        assert_eq!(parse("/more"), Some(Input::More));
        assert_eq!(parse("more"), Some(Input::Question("more".into())), "typed words are the engine's");
        assert_eq!(parse("/topics 3"), Some(Input::Topics(2)));
        assert_eq!(parse("/start Some-Id"), Some(Input::Start(Some("Some-Id".into()))));
        assert_eq!(parse("up"), Some(Input::Question("up".into())), "the engine knows what is on screen");
        assert_eq!(parse("quit"), None);
        assert_eq!(parse("knee pain"), Some(Input::Question("knee pain".into())));
        assert_eq!(parse("help"), Some(Input::Help));
        assert_eq!(parse("/stats"), Some(Input::Help), "no admin commands in the console");
        assert_eq!(parse("helpful tips"), Some(Input::Question("helpful tips".into())));
    }
}
