//! The Telegram front end (`articlebot serve`): start-up (token, getMe with backoff, command
//! menus), long polling or webhook, signals (SIGTERM/Ctrl-C stop gracefully, SIGHUP reloads),
//! and the shared `App` the handlers use. The handlers only translate between updates and
//! `conversation::Engine`.

pub mod admin;
pub mod callback;
pub mod handlers;
pub mod inbox;
pub mod limits;

pub use limits::{FloodControl, FloodLimits, FloodVerdict};
pub mod metrics;
pub mod render;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use teloxide::prelude::*;
use teloxide::types::{BotCommand, BotCommandScope, Recipient};
use teloxide::update_listeners::{webhooks, Polling};
use teloxide::{ApiError, RequestError};

use crate::conversation::{Engine, SledStore, Store};
use crate::knowledge::{Diagnostic, KbStats, LoadError};

/// The bot as handlers use it. Telegram's sending limits are kept by `limits::RateLimiter`
/// (teloxide's `Throttle` releases requests on a 250 ms tick, which adds that much to every
/// reply); 429s are retried by `handlers::deliver`.
pub type TgBot = Bot;

pub const FLOOD_NOTICE: &str = "You're sending messages very fast. I'll answer again in a few seconds.";

/// How `serve` runs.
#[derive(Clone)]
pub struct ServeConfig {
    pub token: String,
    pub api_url: Option<String>,
    pub knowledge: PathBuf,
    pub data: PathBuf,
    pub admins: Vec<i64>,
    pub webhook_url: Option<String>,
    pub listen: Option<SocketAddr>,
    pub webhook_secret: Option<String>,
    /// Off only for local benchmarking against a fake API.
    pub rate_limit: bool,
    pub metrics: Option<SocketAddr>,
    pub flood: FloodLimits,
}

impl std::fmt::Debug for ServeConfig {
    // Written by hand so that the token can never end up in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("token", &"<hidden>")
            .field("api_url", &self.api_url)
            .field("knowledge", &self.knowledge)
            .field("data", &self.data)
            .field("admins", &self.admins)
            .field("webhook_url", &self.webhook_url)
            .field("listen", &self.listen)
            .field("rate_limit", &self.rate_limit)
            .field("metrics", &self.metrics)
            .finish_non_exhaustive()
    }
}

/// Why `serve` could not start. Each is one line for the operator.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("{0}")]
    Knowledge(String),
    #[error("cannot open the database: {0}")]
    Database(String),
    #[error("{0}")]
    Config(String),
    #[error("the Bot API rejected the token (check TELOXIDE_TOKEN)")]
    BadToken,
    #[error("{0}")]
    Io(String),
}

/// Result of a knowledge reload.
#[derive(Debug)]
pub enum ReloadOutcome {
    Loaded {
        stats: KbStats,
        warnings: Vec<Diagnostic>,
        elapsed: Duration,
        generation: u64,
    },
    /// Nothing changed: the previous knowledge base keeps serving.
    Failed {
        errors: Vec<String>,
        elapsed: Duration,
    },
}

/// What the handlers share.
pub struct App {
    pub engine: Engine<SledStore>,
    pub limiter: limits::RateLimiter,
    pub admins: HashSet<i64>,
    pub knowledge_dir: PathBuf,
    pub bot_username: String,
    pub flood: FloodControl,
    reloading: tokio::sync::Mutex<()>,
    /// Media group ids already answered, newest last (a few hundred are plenty: an album's
    /// messages arrive together).
    albums: std::sync::Mutex<std::collections::VecDeque<String>>,
}

impl App {
    pub fn new(
        engine: Engine<SledStore>,
        admins: HashSet<i64>,
        knowledge_dir: PathBuf,
        bot_username: String,
        flood: FloodLimits,
        send_limits: Option<limits::SendLimits>,
    ) -> Self {
        App {
            engine,
            limiter: limits::RateLimiter::new(send_limits),
            admins,
            knowledge_dir,
            bot_username,
            flood: FloodControl::new(flood),
            albums: Default::default(),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// Re-reads and validates the knowledge dir, then swaps it in; on any error the old one
    /// keeps serving. One reload at a time.
    /// Whether this is the first message of the album seen (recently).
    pub fn first_of_album(&self, album: &str) -> bool {
        const REMEMBERED: usize = 512;
        let mut seen = self.albums.lock().unwrap_or_else(|p| p.into_inner());
        if seen.iter().any(|a| a == album) {
            return false;
        }
        if seen.len() >= REMEMBERED {
            seen.pop_front();
        }
        seen.push_back(album.to_string());
        true
    }

    pub async fn reload(self: &Arc<Self>, source: &str) -> ReloadOutcome {
        let _one = self.reloading.lock().await;
        let started = Instant::now();
        let dir = self.knowledge_dir.clone();
        let built = tokio::task::spawn_blocking(move || crate::matching::load(&dir)).await;
        let elapsed = started.elapsed();
        let outcome = match built {
            Ok(Ok(crate::matching::Loaded { matcher, stats, warnings })) => {
                let generation = self.engine.reload(matcher);
                metrics::set_knowledge(generation, stats.articles + stats.stubs, stats.sections);
                ReloadOutcome::Loaded { stats, warnings, elapsed, generation }
            }
            Ok(Err(LoadError::Invalid { errors, .. })) => {
                ReloadOutcome::Failed { errors: errors.iter().map(ToString::to_string).collect(), elapsed }
            }
            Ok(Err(e)) => ReloadOutcome::Failed { errors: vec![e.to_string()], elapsed },
            Err(e) => ReloadOutcome::Failed { errors: vec![format!("reload task failed: {e}")], elapsed },
        };
        match &outcome {
            ReloadOutcome::Loaded { stats, generation, .. } => {
                tracing::info!(source, generation, ms = elapsed.as_millis() as u64, %stats, "knowledge reloaded")
            }
            ReloadOutcome::Failed { errors, .. } => {
                metrics::count_error("reload");
                tracing::warn!(
                    source,
                    errors = errors.len(),
                    first = errors.first().map(String::as_str).unwrap_or(""),
                    "knowledge reload failed; keeping the previous one"
                )
            }
        }
        outcome
    }
}

/// `YYYY-MM-DD` of a unix time (UTC).
pub(crate) fn date_of(unix: u64) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let z = (unix / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn user_commands() -> Vec<BotCommand> {
    [
        ("start", "Welcome and popular topics"),
        ("help", "How to use the bot"),
        ("topics", "All topics"),
        ("more", "Next section of the article"),
        ("reset", "Start over"),
        ("forget", "Delete everything stored about you"),
    ]
    .into_iter()
    .map(|(c, d)| BotCommand::new(c, d))
    .collect()
}

fn admin_commands() -> Vec<BotCommand> {
    let mut all = user_commands();
    all.extend(
        [
            ("reload", "Reload the knowledge base"),
            ("stats", "Usage statistics"),
            ("unanswered", "Questions without an answer"),
        ]
        .into_iter()
        .map(|(c, d)| BotCommand::new(c, d)),
    );
    all
}

/// Builds the bot for `config`.
pub fn build_bot(config: &ServeConfig) -> Result<TgBot, ServeError> {
    let mut bot = Bot::new(config.token.clone());
    if let Some(url) = &config.api_url {
        let parsed = url::Url::parse(url)
            .map_err(|e| ServeError::Config(format!("TELOXIDE_API_URL `{url}` is not a URL: {e}")))?;
        bot = bot.set_api_url(parsed);
    }
    Ok(bot)
}

/// getMe until it works: the network or the API may be down at start. A rejected token is final.
/// SIGTERM (`docker stop`) and Ctrl-C stop it too: as PID 1 in a container the process gets no
/// default signal handling, so an unhandled SIGTERM would wait for the kill.
async fn get_me_with_backoff(bot: &TgBot) -> Result<teloxide::types::Me, ServeError> {
    use tokio::signal::unix::{signal, SignalKind};
    let stopped = || ServeError::Io("stopped before the bot could start".into());
    // One stream for the whole wait: a SIGTERM during a request must not be missed.
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| ServeError::Io(format!("cannot listen for SIGTERM: {e}")))?;
    let mut delay = Duration::from_millis(500);
    loop {
        let result = tokio::select! {
            r = bot.get_me() => r,
            _ = term.recv() => return Err(stopped()),
            _ = tokio::signal::ctrl_c() => return Err(stopped()),
        };
        match result {
            Ok(me) => return Ok(me),
            Err(RequestError::Api(ApiError::InvalidToken)) => return Err(ServeError::BadToken),
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "getMe failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = term.recv() => return Err(stopped()),
                    _ = tokio::signal::ctrl_c() => return Err(stopped()),
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

async fn register_commands(bot: &TgBot, admins: &HashSet<i64>) {
    if let Err(e) = bot.set_my_commands(user_commands()).await {
        tracing::warn!(error = %e, "could not register the command menu");
    }
    for &admin in admins {
        let scope = BotCommandScope::Chat { chat_id: Recipient::Id(ChatId(admin)) };
        if let Err(e) = bot.set_my_commands(admin_commands()).scope(scope).await {
            // Telegram refuses a chat that has never talked to the bot; the commands still work.
            tracing::warn!(admin, error = %e, "could not register the admin command menu");
        }
    }
}

/// Loads the knowledge base and opens the database: the start-up checks that fail fast.
pub fn prepare(config: &ServeConfig) -> Result<Engine<SledStore>, ServeError> {
    let crate::matching::Loaded { matcher, stats, warnings } = crate::matching::load(&config.knowledge)
        .map_err(|e| ServeError::Knowledge(e.to_string().replace('\n', "; ")))?;
    for w in &warnings {
        tracing::warn!("{w}");
    }
    let store =
        SledStore::open(&config.data).map_err(|e| ServeError::Database(format!("{}: {e}", config.data.display())))?;
    metrics::set_knowledge(1, stats.articles + stats.stubs, stats.sections);
    tracing::info!(%stats, "knowledge loaded");
    Ok(Engine::new(matcher, store))
}

fn webhook_url(url: &str) -> Result<url::Url, ServeError> {
    url::Url::parse(url).map_err(|e| ServeError::Config(format!("--webhook-url `{url}`: {e}")))
}

/// The webhook settings, checked before anything touches the network: a mistake there is one
/// clear error at start, not a bot that retries getMe and then fails.
fn check_webhook_config(config: &ServeConfig) -> Result<(), ServeError> {
    match (&config.webhook_url, config.listen) {
        (Some(url), Some(_)) => {
            webhook_url(url)?;
        }
        (None, None) => {}
        _ => return Err(ServeError::Config("webhook mode needs both --webhook-url and --listen".into())),
    }
    if let Some(secret) = &config.webhook_secret {
        let valid = !secret.is_empty()
            && secret.len() <= 256
            && secret.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(ServeError::Config(
                "the webhook secret must be 1-256 characters of A-Z, a-z, 0-9, _ and -".into(),
            ));
        }
    }
    Ok(())
}

/// Runs the bot until SIGTERM or Ctrl-C.
pub async fn serve(config: ServeConfig) -> Result<(), ServeError> {
    check_webhook_config(&config)?;
    let engine = prepare(&config)?;
    let bot = build_bot(&config)?;
    if let Some(addr) = config.metrics {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| ServeError::Io(format!("cannot listen on {addr} for metrics: {e}")))?;
        tokio::spawn(serve_metrics(listener));
    }
    let me = get_me_with_backoff(&bot).await?;
    let username = me.username.clone().unwrap_or_default();
    tracing::info!(bot = %username, "connected to the Bot API");
    let admins: HashSet<i64> = config.admins.iter().copied().collect();
    register_commands(&bot, &admins).await;
    let send_limits = config.rate_limit.then(limits::SendLimits::default);
    let app = Arc::new(App::new(engine, admins, config.knowledge.clone(), username, config.flood, send_limits));
    spawn_db_size_gauge(app.clone());

    let mut dispatcher = Dispatcher::builder(bot.clone(), handlers::schema())
        .dependencies(dptree::deps![app.clone()])
        .default_handler({
            // Kinds of updates the bot does not handle are still taken out of the inbox.
            let app = app.clone();
            move |upd| {
                let app = app.clone();
                async move { inbox::done(&app, upd.id.0) }
            }
        })
        .error_handler(LoggingErrorHandler::with_custom_text("an update handler failed"))
        // A chat's messages are handled in order. Button taps are not queued behind them: a
        // tap must be answered within a second, while the chat's earlier replies may be
        // waiting for Telegram's one-message-a-second slot. The engine's per-user lock keeps
        // the state consistent either way.
        .distribution_function(|upd| match upd.kind {
            teloxide::types::UpdateKind::CallbackQuery(_) => None,
            _ => upd.chat().map(|c| c.id),
        })
        .build();
    let shutdown = dispatcher.shutdown_token();
    spawn_signal_handlers(app.clone(), shutdown);

    match (&config.webhook_url, config.listen) {
        (Some(url), Some(listen)) => {
            let url = webhook_url(url)?;
            let mut options = webhooks::Options::new(listen, url);
            if let Some(secret) = &config.webhook_secret {
                options = options.secret_token(secret.clone());
            }
            let tcp = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| ServeError::Io(format!("cannot listen on {listen}: {e}")))?;
            let (listener, stop, router) = webhooks::axum_to_router(bot.clone(), options)
                .await
                .map_err(|e| ServeError::Config(format!("setWebhook failed: {e}")))?;
            tokio::spawn(async move {
                if let Err(e) = axum::serve(tcp, router).with_graceful_shutdown(stop).await {
                    tracing::error!(error = %e, "webhook server failed");
                }
            });
            tracing::info!(%listen, "receiving updates by webhook");
            let listener = inbox::DurableListener::new(listener, app.clone());
            dispatcher
                .dispatch_with_listener(listener, LoggingErrorHandler::with_custom_text("webhook listener"))
                .await;
        }
        // Half a webhook configuration was refused by `check_webhook_config`.
        _ => {
            let listener = Polling::builder(bot.clone())
                .timeout(Duration::from_secs(10))
                .backoff_strategy(|errors| Duration::from_millis(250u64 << errors.min(4)))
                .delete_webhook()
                .await
                .build();
            tracing::info!("receiving updates by long polling");
            let listener = inbox::DurableListener::new(listener, app.clone());
            dispatcher.dispatch_with_listener(listener, LoggingErrorHandler::with_custom_text("polling")).await;
        }
    }
    tracing::info!("stopped receiving updates; flushing the database");
    app.engine.store().flush().map_err(|e| ServeError::Database(e.to_string()))?;
    tracing::info!("stopped");
    Ok(())
}

fn spawn_signal_handlers(app: Arc<App>, shutdown: teloxide::dispatching::ShutdownToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: finishing updates in flight"),
            _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C: finishing updates in flight"),
        }
        // Before dispatching has started the token refuses; try until it takes, however long
        // the start (a slow first getUpdates, a large inbox to replay) is.
        loop {
            match stop.shutdown() {
                Ok(done) => {
                    done.await;
                    return;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });
    tokio::spawn(async move {
        let mut hup = match signal(SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP");
                return;
            }
        };
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the knowledge base");
            let _ = app.reload("SIGHUP").await;
        }
    });
}

async fn serve_metrics(listener: tokio::net::TcpListener) {
    async fn scrape(axum::extract::State(()): axum::extract::State<()>) -> String {
        metrics::render()
    }
    let router = axum::Router::new().route("/metrics", axum::routing::get(scrape)).with_state(());
    if let Err(e) = axum::serve(listener, router).await {
        tracing::error!(error = %e, "metrics server failed");
    }
}

/// Keeps the database size gauge current for the metrics endpoint.
pub fn spawn_db_size_gauge(app: Arc<App>) {
    tokio::spawn(async move {
        loop {
            if let Some(bytes) = app.engine.store().size_on_disk() {
                metrics::set_db_bytes(bytes);
            }
            tokio::time::sleep(Duration::from_secs(15)).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(date_of(0), "1970-01-01");
        assert_eq!(date_of(1_700_000_000), "2023-11-14");
        assert_eq!(date_of(951_782_400), "2000-02-29");
    }
}
