//! `articlebot serve`: the Telegram bot. Settings come from flags or the environment; the token
//! only from `TELOXIDE_TOKEN`, so it never shows in a process list.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use articlebot_engine::ErrorChain;

use super::model::ModelArgs;
use super::{Failure, KnowledgeArg};
use crate::store::Location;
use crate::telegram::{self, FloodLimits, ServeConfig, ServeError};

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    knowledge: KnowledgeArg,
    /// Dir of the sled database for conversations and statistics (the default store), and of
    /// the admin socket
    #[arg(long, env = "ARTICLEBOT_DATA", default_value = "data", value_name = "DIR")]
    data: PathBuf,
    /// Keep conversations, statistics and the inbox on this PostgreSQL server instead of sled,
    /// e.g. postgres://articlebot:PASSWORD@db/articlebot; any number of replicas may share it
    #[arg(long, env = "ARTICLEBOT_STORE", value_name = "URL", hide_env_values = true)]
    store: Option<String>,
    /// This replica's name in logs, in the server's sessions and in reload notices (default:
    /// host name and process id)
    #[arg(long, env = "ARTICLEBOT_REPLICA_NAME", value_name = "NAME")]
    replica_name: Option<String>,
    /// Numeric Telegram user ids of admins, comma-separated
    #[arg(long, env = "ARTICLEBOT_ADMINS", value_delimiter = ',', value_name = "IDS")]
    admins: Vec<String>,
    /// Bot API base URL (default: Telegram's)
    #[arg(long, env = "TELOXIDE_API_URL", value_name = "URL")]
    api_url: Option<String>,
    /// Public HTTPS URL Telegram posts updates to (webhook mode; needs --listen)
    #[arg(long, env = "ARTICLEBOT_WEBHOOK_URL", value_name = "URL")]
    webhook_url: Option<String>,
    /// Address the webhook server listens on, e.g. 0.0.0.0:8443
    #[arg(long, env = "ARTICLEBOT_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Secret Telegram must send with every webhook request (default: a random one)
    #[arg(long, env = "ARTICLEBOT_WEBHOOK_SECRET", value_name = "SECRET", hide_env_values = true)]
    webhook_secret: Option<String>,
    /// Serve Prometheus metrics on this address, e.g. 127.0.0.1:9100
    #[arg(long, env = "ARTICLEBOT_METRICS", value_name = "ADDR")]
    metrics: Option<SocketAddr>,
    /// Do not keep Telegram's rate limits (for local benchmarks against a fake API only)
    #[arg(long)]
    no_rate_limit: bool,
    /// Messages a user may send per flood window before being slowed down (at least 1)
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    flood_max: u32,
    /// Flood window in seconds (at least 1)
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    flood_window: u64,
    /// Start even if the database is damaged: its files are moved aside and a new database
    /// keeps what can still be read (without this, a damaged database stops the start)
    #[arg(long)]
    accept_data_loss: bool,
    /// Re-import the site the knowledge dir was imported from (`articlebot import URL --out DIR`)
    /// this often, e.g. 6h, and reload when anything changed
    #[arg(long, env = "ARTICLEBOT_SYNC_EVERY", value_name = "DURATION", value_parser = crate::site::parse_every)]
    sync_every: Option<Duration>,
    /// Refuse a reload (/reload, SIGHUP, --sync-every) whose knowledge base no longer answers
    /// more than this share of the questions added by review; `/reload force` swaps it in anyway
    #[arg(long, env = "ARTICLEBOT_REPLAY_LIMIT", value_name = "PERCENT", default_value = "5%", value_parser = parse_percent)]
    replay_limit: f32,
    #[command(flatten)]
    model: ModelArgs,
}

/// "5%" or "5" as the share 0.05; 0 to 100.
pub fn parse_percent(raw: &str) -> Result<f32, String> {
    let t = raw.trim();
    let n: f32 =
        t.strip_suffix('%').unwrap_or(t).trim().parse().map_err(|_| format!("`{raw}` is not a percentage like 5%"))?;
    if !(0.0..=100.0).contains(&n) {
        return Err(format!("`{raw}` is not between 0% and 100%"));
    }
    Ok(n / 100.0)
}

fn admins(raw: &[String]) -> Result<Vec<i64>, Failure> {
    raw.iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i64>().map_err(|_| {
                Failure::usage(format!("admin `{s}` is not a numeric Telegram user id (usernames are not accepted)"))
            })
        })
        .collect()
}

pub fn run(args: ServeArgs) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::caused("cannot start the async runtime", &e))?;
    let result = runtime.block_on(async {
        // Before anything else: from here on SIGHUP cannot kill the process and SIGTERM or
        // Ctrl-C is a clean stop, however early it comes.
        let signals = Signals::listen().map_err(|e| Failure::caused("cannot listen for signals", &e))?;
        let config = config(args)?;
        telegram::run(config, signals.stop, signals.hangups)
            .await
            .map_err(|e: ServeError| Failure::usage(ErrorChain(&e).to_string()))
    });
    // Blocking work still running (a knowledge load a stop did not wait for) is not waited for.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

fn config(args: ServeArgs) -> Result<ServeConfig, Failure> {
    let token = std::env::var("TELOXIDE_TOKEN").unwrap_or_default();
    if token.trim().is_empty() {
        return Err(Failure::usage("TELOXIDE_TOKEN is not set: create a bot with @BotFather and export its token"));
    }
    if args.sync_every.is_some() {
        match crate::site::syncable(&args.knowledge.dir) {
            Ok(true) => {}
            Ok(false) => {
                return Err(Failure::usage(format!(
                    "--sync-every: {} was not imported from a site; run `articlebot import URL --out {}` first",
                    args.knowledge.dir.display(),
                    args.knowledge.dir.display()
                )))
            }
            Err(e) => return Err(Failure::usage(format!("--sync-every: {e}"))),
        }
    }
    Ok(ServeConfig {
        sync_every: args.sync_every,
        replay_limit: args.replay_limit,
        token: token.trim().to_string(),
        api_url: args.api_url,
        knowledge: args.knowledge.dir,
        store: Location::from_args(args.store.as_deref(), &args.data),
        data: args.data,
        admins: admins(&args.admins)?,
        webhook_url: args.webhook_url,
        listen: args.listen,
        webhook_secret: args.webhook_secret,
        rate_limit: !args.no_rate_limit,
        metrics: args.metrics,
        flood: FloodLimits { max_messages: args.flood_max, window: Duration::from_secs(args.flood_window) },
        model: args.model.model.clone(),
        model_threads: args.model.threads,
        cache_dir: args.model.options().cache_dir,
        accept_data_loss: args.accept_data_loss,
        replica_name: args.replica_name,
    })
}

/// The signals `serve` handles. As PID 1 in a container the process gets no default signal
/// handling, so an unhandled SIGTERM would wait for the kill; an unhandled SIGHUP (the README's
/// `docker kill --signal HUP`) would end the process.
struct Signals {
    /// Resolves at the first SIGTERM (`docker stop`, systemd) or SIGINT (Ctrl-C).
    stop: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
    hangups: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Installs the handlers now (a signal that comes before the future is polled is not lost).
    fn listen() -> std::io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        let hangups =
            signal(SignalKind::hangup()).map_err(|e| tracing::warn!(error = %e, "cannot listen for SIGHUP")).ok();
        let stop = Box::pin(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM"),
                _ = interrupt.recv() => tracing::info!("Ctrl-C"),
            }
        });
        Ok(Signals { stop, hangups })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_are_numeric_ids() {
        assert_eq!(admins(&["1".into(), " 42 ".into(), "".into()]).unwrap(), vec![1, 42]);
        assert!(admins(&["@alice".into()]).is_err());
    }
}
