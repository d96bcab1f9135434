//! Running the bot: the start-up checks that fail fast (webhook settings, knowledge, database),
//! getMe with backoff, the command menus, then long polling or the webhook until `shutdown`
//! resolves. SIGHUP reloads the knowledge base; the metrics endpoint and the database size gauge
//! run beside.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use articlebot_engine::vocabulary::{self, Audience};
use articlebot_engine::{
    EmbedProgress, Engine, ErrorChain, IfDamaged, Library, OpenError, Options, SledStore, Store, StoreError,
};
use teloxide::prelude::*;
use teloxide::types::{BotCommand, BotCommandScope, Recipient};
use teloxide::update_listeners::{webhooks, Polling};
use teloxide::{ApiError, RequestError};
use tokio::sync::watch;

use super::app::App;
use super::limits::{FloodLimits, SendLimits};
use super::{handlers, inbox, metrics};

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
    /// The sentence model (overriding site.toml's), its threads, the vector cache.
    pub model: Option<PathBuf>,
    pub model_threads: Option<usize>,
    pub cache_dir: Option<PathBuf>,
    /// A damaged database is set aside instead of stopping the start (`--accept-data-loss`).
    pub accept_data_loss: bool,
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
            .field("model", &self.model)
            .field("cache_dir", &self.cache_dir)
            .field("accept_data_loss", &self.accept_data_loss)
            .finish_non_exhaustive()
    }
}

/// Why `serve` could not start or stopped. Each is one line for the operator, with its causes
/// as `source()`.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The knowledge dir is missing or has errors (the message lists them), or its sentence
    /// model cannot be used.
    #[error("{}", ErrorChain(.0).to_string().replace('\n', "; "))]
    Knowledge(OpenError),
    #[error("cannot open the database {}", dir.display())]
    Database {
        dir: PathBuf,
        #[source]
        source: StoreError,
    },
    /// The final flush: what was not written by then is lost with the process.
    #[error("the database could not be written before stopping; changes not on disk are lost")]
    Flush(#[source] StoreError),
    #[error("{0}")]
    Config(String),
    #[error("the Bot API rejected the token (check TELOXIDE_TOKEN)")]
    BadToken,
    #[error("cannot listen on {addr} for {what}")]
    Listen {
        addr: SocketAddr,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("setWebhook failed")]
    Webhook(#[source] RequestError),
    #[error("stopped before the bot could start")]
    Stopped,
}

/// Runs the bot until `shutdown` resolves (SIGTERM, Ctrl-C), then finishes the updates in
/// flight and flushes the database.
pub async fn run(config: ServeConfig, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<(), ServeError> {
    let (stop_tx, stop) = watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    // Before anything slow: a SIGHUP during start-up must not kill the process.
    let hangups = hangups();
    check_webhook_config(&config)?;
    let engine = prepare(&config)?;
    let bot = build_bot(&config)?;
    if let Some(addr) = config.metrics {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| ServeError::Listen {
            addr,
            what: "metrics",
            source,
        })?;
        tokio::spawn(serve_metrics(listener));
    }
    let me = get_me_with_backoff(&bot, stop.clone()).await?;
    let username = me.username.clone().unwrap_or_default();
    tracing::info!(bot = %username, "connected to the Bot API");
    let admins: HashSet<i64> = config.admins.iter().copied().collect();
    register_commands(&bot, &admins).await;
    let send_limits = config.rate_limit.then(SendLimits::default);
    let app = Arc::new(App::new(engine, admins, username, config.flood, send_limits));
    spawn_db_size_gauge(app.clone());
    if let Some(hangups) = hangups {
        spawn_reloads(app.clone(), hangups);
    }

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
    spawn_stopper(dispatcher.shutdown_token(), stop);

    match (&config.webhook_url, config.listen) {
        (Some(url), Some(listen)) => {
            let url = webhook_url(url)?;
            let mut options = webhooks::Options::new(listen, url);
            if let Some(secret) = &config.webhook_secret {
                options = options.secret_token(secret.clone());
            }
            let tcp = tokio::net::TcpListener::bind(listen).await.map_err(|source| ServeError::Listen {
                addr: listen,
                what: "the webhook",
                source,
            })?;
            let (listener, stop, router) =
                webhooks::axum_to_router(bot.clone(), options).await.map_err(ServeError::Webhook)?;
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
    app.engine.store().flush().map_err(ServeError::Flush)?;
    tracing::info!("stopped");
    Ok(())
}

/// Builds the bot for `config`.
fn build_bot(config: &ServeConfig) -> Result<Bot, ServeError> {
    let mut bot = Bot::new(config.token.clone());
    if let Some(url) = &config.api_url {
        let parsed = url::Url::parse(url)
            .map_err(|e| ServeError::Config(format!("TELOXIDE_API_URL `{url}` is not a URL: {e}")))?;
        bot = bot.set_api_url(parsed);
    }
    Ok(bot)
}

/// getMe until it works: the network or the API may be down at start. A rejected token is final;
/// a stop request ends the wait.
async fn get_me_with_backoff(bot: &Bot, mut stop: watch::Receiver<bool>) -> Result<teloxide::types::Me, ServeError> {
    let mut delay = Duration::from_millis(500);
    loop {
        let result = tokio::select! {
            r = bot.get_me() => r,
            _ = stop.wait_for(|s| *s) => return Err(ServeError::Stopped),
        };
        match result {
            Ok(me) => return Ok(me),
            Err(RequestError::Api(ApiError::InvalidToken)) => return Err(ServeError::BadToken),
            Err(e) => {
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "getMe failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.wait_for(|s| *s) => return Err(ServeError::Stopped),
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// The command menu of an audience, from the engine's vocabulary.
fn menu(audience: Audience) -> Vec<BotCommand> {
    vocabulary::listed(audience).map(|c| BotCommand::new(c.name, c.summary)).collect()
}

async fn register_commands(bot: &Bot, admins: &HashSet<i64>) {
    if let Err(e) = bot.set_my_commands(menu(Audience::Everyone)).await {
        tracing::warn!(error = %e, "could not register the command menu");
    }
    for &admin in admins {
        let scope = BotCommandScope::Chat { chat_id: Recipient::Id(ChatId(admin)) };
        if let Err(e) = bot.set_my_commands(menu(Audience::Admins)).scope(scope).await {
            // Telegram refuses a chat that has never talked to the bot; the commands still work.
            tracing::warn!(admin, error = %e, "could not register the admin command menu");
        }
    }
}

/// Loads the knowledge base and opens the database: the start-up checks that fail fast.
fn prepare(config: &ServeConfig) -> Result<Engine<SledStore>, ServeError> {
    let options = Options {
        model: config.model.clone(),
        model_threads: config.model_threads,
        cache_dir: config.cache_dir.clone(),
        progress: Some(Arc::new(log_progress())),
        ..Options::default()
    };
    let (library, report) = Library::load(&config.knowledge, &options).map_err(ServeError::Knowledge)?;
    let if_damaged = if config.accept_data_loss { IfDamaged::KeepWhatCanBeRead } else { IfDamaged::Refuse };
    let store = SledStore::open_with(&config.data, if_damaged)
        .map_err(|source| ServeError::Database { dir: config.data.clone(), source })?;
    let engine = Engine::with_library(library, store, options);
    for w in &report.warnings {
        tracing::warn!("{w}");
    }
    if let Some(s) = &report.semantic {
        if let Some(e) = &s.cache_error {
            tracing::warn!("{e}");
        }
        tracing::info!(
            model = %s.model.display(),
            units = s.units,
            embedded = s.embedded,
            cached = s.cached,
            seconds = s.seconds,
            "semantic matching on"
        );
    }
    metrics::set_knowledge(report.generation, report.stats.articles + report.stats.stubs, report.stats.sections);
    tracing::info!(stats = %report.stats, "knowledge loaded");
    Ok(engine)
}

/// Embedding progress as log lines: one every ten seconds, and one at the end.
fn log_progress() -> impl Fn(EmbedProgress) + Send + Sync {
    let last = std::sync::Mutex::new(None::<(std::time::Instant, std::time::Instant)>);
    move |p: EmbedProgress| {
        if p.total == 0 {
            return;
        }
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        let (started, shown) = last.get_or_insert((now, now));
        let rate = p.done as f64 / started.elapsed().as_secs_f64().max(1e-3);
        if p.done == 0 || p.done == p.total || now.duration_since(*shown) >= Duration::from_secs(10) {
            *shown = now;
            tracing::info!(
                done = p.done,
                total = p.total,
                per_sec = format!("{rate:.1}"),
                "embedding the knowledge base"
            );
        }
        if p.done == p.total {
            *last = None;
        }
    }
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

/// SIGHUP from now on, or `None` (logged) where it cannot be had.
fn hangups() -> Option<tokio::signal::unix::Signal> {
    use tokio::signal::unix::{signal, SignalKind};
    signal(SignalKind::hangup()).map_err(|e| tracing::warn!(error = %e, "cannot listen for SIGHUP")).ok()
}

fn spawn_reloads(app: Arc<App>, mut hangups: tokio::signal::unix::Signal) {
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the knowledge base");
            let _ = app.reload("SIGHUP").await;
        }
    });
}

/// Stops the dispatcher once a stop is requested. Before dispatching has started the token
/// refuses; it is tried until it takes, however long the start (a slow first getUpdates, a large
/// inbox to replay) is.
fn spawn_stopper(token: teloxide::dispatching::ShutdownToken, mut stop: watch::Receiver<bool>) {
    tokio::spawn(async move {
        if stop.wait_for(|s| *s).await.is_err() {
            return;
        }
        tracing::info!("stopping: finishing updates in flight");
        loop {
            match token.shutdown() {
                Ok(done) => {
                    done.await;
                    return;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
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
fn spawn_db_size_gauge(app: Arc<App>) {
    tokio::spawn(async move {
        loop {
            if let Some(bytes) = app.engine.store().size_on_disk() {
                metrics::set_db_bytes(bytes);
            }
            tokio::time::sleep(Duration::from_secs(15)).await;
        }
    });
}
