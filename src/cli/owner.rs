//! `articlebot stats --data DIR` and `articlebot unanswered --data DIR`, and the way every owner
//! command reaches the database ([`Backend`]): opened here when the bot is stopped, else through
//! the running bot's admin socket (`DATA/admin.sock`), since sled lets one process open it; a
//! PostgreSQL store (`--store URL`) is always opened here, as the replicas share it. The requests
//! and the printing are the same every way (`crate::owner`), so is the output.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::de::DeserializeOwned;

use articlebot_engine::{Cluster, Engine, IfDamaged, KnowledgeBase, SledStore, StoreError, Unanswered};

use super::backup::open_failure;
use super::model::ModelArgs;
use super::{open_engine, Failure, KnowledgeArg};
use crate::owner::protocol::{self, Ctx, Request, StatsView};
use crate::owner::{self as tools, socket};
use crate::store::{DataStore, Location};

/// Where an owner command's requests go.
pub enum Backend {
    /// The database opened here, with a knowledge dir read for article titles if one was given.
    Store { store: DataStore, kb: Option<Box<KnowledgeBase>> },
    /// The database and the knowledge base loaded here (review).
    Engine(Box<Engine<DataStore>>),
    /// The running bot's admin socket.
    Socket(PathBuf),
}

/// What a command needs when it opens the database itself.
pub enum Needs<'a> {
    /// The store; titles from this knowledge dir, if any.
    Store { titles: Option<&'a Path> },
    /// The engine on this knowledge dir (the running bot has its own).
    Engine { knowledge: &'a KnowledgeArg, model: &'a ModelArgs },
}

impl Backend {
    /// The database at `at`: a PostgreSQL server is opened (replicas share it); a sled dir is
    /// opened if it is free, else asked through the running bot's socket.
    pub fn connect(at: &Location, needs: Needs) -> Result<Backend, Failure> {
        let data = match at {
            Location::Postgres(_) => {
                let store = DataStore::open(at, IfDamaged::Refuse)
                    .map_err(|e| Failure::caused(format!("cannot open the database {}", at.shown()), &e))?;
                return Backend::over(store, needs);
            }
            Location::Sled(dir) => dir.as_path(),
        };
        // A missing dir would be made into a new, empty database: say so instead.
        if !data.join("db").exists() {
            return Err(Failure::usage(format!("{} holds no articlebot database", data.display())));
        }
        match SledStore::open(data) {
            Ok(store) => Backend::over(DataStore::Sled(store), needs),
            Err(StoreError::Locked(_)) => {
                let path = socket::path_in(data);
                if std::fs::symlink_metadata(&path).is_err() {
                    return Err(Failure::usage(format!(
                        "the database {} is in use (is the bot running?), and it has no admin socket {} to ask \
                         through (a bot still starting, or one older than this articlebot): try again, or stop it first",
                        data.display(),
                        path.display()
                    )));
                }
                Ok(Backend::Socket(path))
            }
            Err(e) => Err(open_failure(data, &e)),
        }
    }

    /// The tools over a store opened here.
    fn over(store: DataStore, needs: Needs) -> Result<Backend, Failure> {
        match needs {
            Needs::Store { titles } => Ok(Backend::Store { store, kb: titles.and_then(read_titles).map(Box::new) }),
            Needs::Engine { knowledge, model } => {
                Ok(Backend::Engine(Box::new(open_engine(knowledge, store, model.options())?)))
            }
        }
    }

    /// Runs a request and reads its answer as `T`.
    pub fn call<T: DeserializeOwned>(&self, req: &Request) -> Result<T, String> {
        let value = match self {
            Backend::Store { store, kb } => protocol::handle(&Ctx::store(store, kb.as_deref()), req),
            Backend::Engine(e) => protocol::handle(&Ctx::engine(e), req),
            Backend::Socket(path) => socket::call(path, req),
        }?;
        protocol::read(value)
    }
}

/// The knowledge base for titles only (no index, no model); without it the ids are shown.
fn read_titles(dir: &Path) -> Option<KnowledgeBase> {
    match articlebot_engine::load_knowledge(dir) {
        Ok(loaded) => Some(loaded.kb),
        Err(e) => {
            eprintln!("warning: article ids instead of titles: {}", e.to_string().lines().next().unwrap_or(""));
            None
        }
    }
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Sled database dir of the bot (running or not)
    #[arg(long, env = "ARTICLEBOT_DATA", default_value = "data", value_name = "DIR")]
    data: PathBuf,
    /// The bot's PostgreSQL server (`serve --store`), instead of the sled dir
    #[arg(long, env = "ARTICLEBOT_STORE", value_name = "URL", hide_env_values = true)]
    store: Option<String>,
    /// Knowledge dir, for article titles when the bot is stopped (a running bot uses its own)
    #[arg(long, env = "ARTICLEBOT_KNOWLEDGE", value_name = "DIR")]
    knowledge: Option<PathBuf>,
    /// Print the statistics as JSON
    #[arg(long)]
    json: bool,
    /// Also draw them as a PNG chart into FILE (questions per day, answered share, 👍/👎)
    #[arg(long, value_name = "FILE")]
    png: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct UnansweredArgs {
    /// Sled database dir of the bot (running or not)
    #[arg(long, env = "ARTICLEBOT_DATA", default_value = "data", value_name = "DIR")]
    data: PathBuf,
    /// The bot's PostgreSQL server (`serve --store`), instead of the sled dir
    #[arg(long, env = "ARTICLEBOT_STORE", value_name = "URL", hide_env_values = true)]
    store: Option<String>,
    /// Print a JSON array
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV (quoted fields, a header line)
    #[arg(long)]
    csv: bool,
    /// List at most this many, most asked first
    #[arg(long, default_value_t = 100, value_name = "N")]
    top: usize,
    /// The bot's knowledge dir (and model): the text listing groups alike questions with its
    /// matcher (with the bot running, the bot's own is used)
    #[command(flatten)]
    knowledge: KnowledgeArg,
    #[command(flatten)]
    model: ModelArgs,
}

/// Writes `bytes` to `file` through a temporary file beside it: never half a file.
fn write_whole(file: &Path, bytes: &[u8]) -> Result<(), Failure> {
    let failed = |e: std::io::Error| Failure::caused(format!("cannot write {}", file.display()), &e);
    let name = file.file_name().ok_or_else(|| Failure::usage(format!("{} is not a file name", file.display())))?;
    let tmp = file.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, file)).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        failed(e)
    })
}

fn print(text: &str) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(|e| Failure::caused("writing the output", &e))
}

pub fn run_stats(args: StatsArgs) -> Result<(), Failure> {
    let backend = Backend::connect(
        &Location::from_args(args.store.as_deref(), &args.data),
        Needs::Store { titles: args.knowledge.as_deref() },
    )?;
    let view: StatsView = backend.call(&Request::Stats {}).map_err(Failure::usage)?;
    if let Some(file) = &args.png {
        write_whole(file, &tools::chart::png(&view))?;
    }
    if args.json {
        let text = serde_json::to_string_pretty(&view).map_err(|e| Failure::caused("stats", &e))?;
        return print(&(text + "\n"));
    }
    let (title, lines) = tools::stats_lines(&view);
    print(&tools::plain(title, &lines))
}

pub fn run_unanswered(args: UnansweredArgs) -> Result<(), Failure> {
    if !args.json && !args.csv {
        // For people: alike questions together, which takes the matcher.
        let needs = Needs::Engine { knowledge: &args.knowledge, model: &args.model };
        let backend = Backend::connect(&Location::from_args(args.store.as_deref(), &args.data), needs)?;
        let groups: Vec<Cluster> =
            backend.call(&Request::UnansweredGroups { top: args.top }).map_err(Failure::usage)?;
        let (title, lines) = tools::cluster_lines(&groups);
        return print(&tools::plain(title, &lines));
    }
    let backend =
        Backend::connect(&Location::from_args(args.store.as_deref(), &args.data), Needs::Store { titles: None })?;
    let list: Vec<Unanswered> = backend.call(&Request::Unanswered { top: args.top }).map_err(Failure::usage)?;
    if args.json {
        let text = serde_json::to_string_pretty(&list).map_err(|e| Failure::caused("unanswered", &e))?;
        print(&(text + "\n"))
    } else {
        print(&tools::unanswered_csv(&list))
    }
}
