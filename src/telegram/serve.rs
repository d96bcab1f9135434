//! Running the bot: the start-up checks that fail fast (settings, knowledge, database), getMe
//! with backoff, the command menus, then long polling or the webhook until a stop is requested,
//! and the stop itself: the listener's own stop token, a deadline for the updates in flight, the
//! final flush. SIGHUP reloads the knowledge base; the metrics endpoint and the database size
//! gauge run beside.

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use articlebot_engine::vocabulary::{self, Audience};
use articlebot_engine::{EmbedProgress, Engine, ErrorChain, IfDamaged, Library, OpenError, Options, Store, StoreError};
use teloxide::payloads::{SetMyCommands, SetMyCommandsSetters};
use teloxide::prelude::*;
use teloxide::types::{BotCommand, BotCommandScope, Recipient};
use teloxide::ApiError;
use tokio::sync::watch;

use super::api::{self, CallError};
use super::app::App;
use super::inbox::{self, AllowedHint};
use super::limits::{FloodLimits, SendLimits};
use super::replicas::{self, Shared};
use super::{handlers, metrics, poll, webhook};
use crate::store::{blocking, DataStore, Location};
use futures::StreamExt;

/// How `serve` runs.
#[derive(Clone)]
pub struct ServeConfig {
    pub token: String,
    pub api_url: Option<String>,
    pub knowledge: PathBuf,
    /// Where conversations and statistics are kept.
    pub store: Location,
    /// The dir of the admin socket (and of the sled database, when that is the store).
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
    /// Re-import the knowledge dir's site this often, and reload (`--sync-every`).
    pub sync_every: Option<Duration>,
    /// The share of reviewed questions a reload may break before it is refused.
    pub replay_limit: f32,
    /// This replica's name, when several share a PostgreSQL store.
    pub replica_name: Option<String>,
}

impl std::fmt::Debug for ServeConfig {
    // Written by hand so that the token can never end up in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServeConfig")
            .field("token", &"<hidden>")
            .field("api_url", &self.api_url)
            .field("knowledge", &self.knowledge)
            .field("store", &self.store.shown())
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

/// What to do about a database dir the process may not write, the usual first-run problem with a
/// bind mount owned by root.
fn permission_hint(e: &StoreError) -> &'static str {
    match e {
        StoreError::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied => {
            " (the bot's user may not write there: give it the dir, e.g. `chown -R 10001 DIR` for the Docker \
             image's user, or use a named volume)"
        }
        _ => "",
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
    #[error("cannot open the database {at}{}", permission_hint(source))]
    Database {
        at: String,
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
    Webhook(#[source] CallError),
}

/// How long updates in flight get to finish after a stop request. What is not done by then
/// stays in the inbox and is handled at the next start; with the flush and `deleteWebhook` the
/// stop stays well within `docker stop`'s 10 s.
pub const STOP_DEADLINE: Duration = Duration::from_secs(5);
/// A call made while stopping (`deleteWebhook`, the last offset) gets this long.
const STOP_CALL: Duration = Duration::from_secs(2);

/// How updates arrive.
enum Source {
    Polling { offset: poll::Offset, hint: AllowedHint },
    Webhook { server: Option<webhook::Server>, received: webhook::Received },
}

/// Runs the bot until `stop` resolves (SIGTERM, Ctrl-C), then lets the updates in flight finish
/// (within [`STOP_DEADLINE`]) and flushes the database; a stop during start-up is a clean stop
/// too. `hangups` (SIGHUP, listened for before anything else) reload the knowledge base.
pub async fn run(
    config: ServeConfig,
    stop: impl Future<Output = ()> + Send + 'static,
    hangups: Option<tokio::signal::unix::Signal>,
) -> Result<(), ServeError> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        stop.await;
        let _ = stop_tx.send(true);
    });
    let webhook_url = check_config(&config)?;
    let bot = build_bot(&config)?;
    let host = api::host(&bot);
    // Loading may take long (a large knowledge base to embed); a stop does not wait for it.
    let engine = {
        let config = config.clone();
        let load = tokio::task::spawn_blocking(move || prepare(&config));
        tokio::select! {
            r = load => r.map_err(|e| ServeError::Config(format!("start-up failed: {e}")))??,
            _ = stopped(stop_rx.clone()) => return stopped_early(),
        }
    };
    if let Some(addr) = config.metrics {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|source| ServeError::Listen {
            addr,
            what: "metrics",
            source,
        })?;
        tokio::spawn(serve_metrics(listener));
    }
    let Some(me) = get_me_with_backoff(&bot, &host, stop_rx.clone()).await? else { return stopped_early() };
    let username = me.username.clone().unwrap_or_default();
    tracing::info!(bot = %username, api = %host, "connected to the Bot API");
    metrics::set_serving(true);
    let admins: HashSet<i64> = config.admins.iter().copied().collect();
    tokio::select! {
        _ = register_commands(&bot, &admins) => {}
        _ = stopped(stop_rx.clone()) => return stopped_early(),
    }
    let send_limits = config.rate_limit.then(SendLimits::default);
    let app = Arc::new(App::new(engine, admins, username, config.flood, send_limits, config.replay_limit));
    app.set_notifier(bot.clone());
    let shared = match &config.store {
        Location::Postgres(url) => Some(share(&config, url, &app)?),
        Location::Sled(_) => None,
    };
    spawn_db_size_gauge(app.clone());
    let admin_socket = start_admin_socket(&config.data, &app);
    if let Some(hangups) = hangups {
        spawn_reloads(app.clone(), hangups);
    }
    if let Some(every) = config.sync_every {
        spawn_syncs(app.clone(), config.knowledge.clone(), every);
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

    // Read once, before any source can put new updates in.
    let replay = inbox::replay(&app);
    // The listeners' own stop: sticky, unlike teloxide's shutdown token, which misses a stop
    // requested while the dispatcher is busy.
    let (token, flag) = teloxide::stop::mk_stop_token();
    // With replicas, the dispatcher takes what this one claims from the shared inbox; the
    // sources only put updates there.
    let claimed: Option<webhook::Received> = shared.map(|shared| {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(replicas::work(app.clone(), shared, tx, flag.clone()));
        Arc::new(tokio::sync::Mutex::new(rx))
    });
    let mut source = match (webhook_url, config.listen) {
        (Some(url), Some(listen)) => {
            let tcp = tokio::net::TcpListener::bind(listen).await.map_err(|source| ServeError::Listen {
                addr: listen,
                what: "the webhook",
                source,
            })?;
            let secret = webhook::secret(config.webhook_secret.as_deref());
            let (server, received) = webhook::Server::start(tcp, &url, &secret, app.clone(), flag.clone());
            let set = async {
                let mut failures = 0;
                loop {
                    match webhook::set(&bot, &url, &secret).await {
                        Ok(()) => return Ok(()),
                        Err(e) if e.is_transient() => {
                            failures += 1;
                            let wait = poll::backoff(failures);
                            tracing::warn!(api = %host, error = %e, retry_in_ms = wait.as_millis() as u64, "setWebhook failed; retrying");
                            tokio::time::sleep(wait).await;
                        }
                        Err(e) => return Err(ServeError::Webhook(e)),
                    }
                }
            };
            tokio::select! {
                r = set => r?,
                _ = stopped(stop_rx.clone()) => {
                    server.shutdown(STOP_CALL).await;
                    return stopped_early();
                }
            }
            tracing::info!(%listen, path = url.path(), "receiving updates by webhook");
            Source::Webhook { server: Some(server), received }
        }
        // Half a webhook configuration was refused by `check_config`.
        _ => {
            // A webhook left by an earlier deployment would refuse getUpdates; the poller deletes
            // it again if this fails.
            if let Err(e) = webhook::delete(&bot).await {
                tracing::warn!(api = %host, error = %e, "deleteWebhook failed");
            }
            tracing::info!("receiving updates by long polling");
            Source::Polling { offset: Default::default(), hint: Default::default() }
        }
    };

    let mut failures = 0;
    let stopped_by_request = loop {
        let (live, hint) = match &source {
            Source::Polling { offset, hint } => (
                poll::updates(bot.clone(), app.clone(), hint.clone(), offset.clone(), flag.clone()).boxed(),
                Some(hint.clone()),
            ),
            Source::Webhook { received, .. } => (webhook::updates(received.clone()).boxed(), None),
        };
        let live = match &claimed {
            Some(claimed) => futures::stream::select(live, webhook::updates(claimed.clone())).boxed(),
            None => live,
        };
        let mut listener = inbox::Listener::new(replay.clone(), live, token.clone(), flag.clone());
        if let Some(hint) = hint {
            listener = listener.with_hint(hint);
        }
        // Not `dispatch_with_listener`: it calls getMe again and panics if that fails.
        let dispatch =
            dispatcher.try_dispatch_with_listener(listener, LoggingErrorHandler::with_custom_text("update listener"));
        tokio::pin!(dispatch);
        let mut stop = stop_rx.clone();
        tokio::select! {
            r = &mut dispatch => match r {
                Ok(()) => break false,
                Err(e) => {
                    failures += 1;
                    let wait = poll::backoff(failures);
                    tracing::warn!(api = %host, error = %e, retry_in_ms = wait.as_millis() as u64, "getMe failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => continue,
                        _ = stopped(stop_rx.clone()) => break true,
                    }
                }
            },
            _ = stop.wait_for(|s| *s) => {
                metrics::set_serving(false);
                tracing::info!(deadline_s = STOP_DEADLINE.as_secs(), "stopping: finishing updates in flight");
                token.stop();
                let server = match &mut source {
                    Source::Webhook { server, .. } => server.take(),
                    Source::Polling { .. } => None,
                };
                // Other replicas may go on receiving at the same URL.
                let replicas = app.shared().is_some();
                let webhook_side = async {
                    match server {
                        Some(server) if replicas => server.shutdown(STOP_DEADLINE).await,
                        Some(server) => {
                        // Telegram stops posting (and keeps what comes meanwhile); requests in
                        // flight finish.
                        match tokio::time::timeout(STOP_CALL, webhook::delete(&bot)).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => tracing::warn!(api = %host, error = %e, "deleteWebhook failed"),
                            Err(_) => tracing::warn!(api = %host, "deleteWebhook timed out"),
                        }
                        server.shutdown(STOP_DEADLINE).await;
                        }
                        None => {}
                    }
                };
                let (drained, ()) = tokio::join!(tokio::time::timeout(STOP_DEADLINE, &mut dispatch), webhook_side);
                if drained.is_err() {
                    let left = app.engine.store().inbox_pending().map_or(0, |p| p.len());
                    tracing::warn!(updates = left, "updates still in flight at the deadline stay in the inbox for the next start");
                }
                break true;
            }
        }
    };
    if let (true, Source::Polling { offset, .. }) = (stopped_by_request, &source) {
        poll::confirm(&bot, offset).await;
    }
    // No owner request starts once stopping is under way; the file goes with it.
    drop(admin_socket);
    if let Some(shared) = app.shared() {
        shared.stop_listening();
    }
    tracing::info!("stopped receiving updates; flushing the database");
    app.engine.store().flush().map_err(ServeError::Flush)?;
    tracing::info!("stopped");
    Ok(())
}

/// Opens this replica's sessions on the database server, for the work it shares with the
/// others: claims on chats, the send clock, the notices of new updates and reloads.
fn share(config: &ServeConfig, url: &str, app: &Arc<App>) -> Result<Arc<Shared>, ServeError> {
    let name = replicas::replica_name(config.replica_name.as_deref());
    let database = |source| ServeError::Database { at: config.store.shown(), source };
    let shared = Arc::new(blocking(|| Shared::open(url, name)).map_err(database)?);
    app.set_shared(shared.clone());
    blocking(|| shared.listen(url, app)).map_err(database)?;
    replicas::spawn_waiting_gauge(app.clone());
    tracing::info!(replica = %shared.name, "taking updates from the inbox shared with any other replicas");
    Ok(shared)
}

/// Resolves once a stop is requested.
async fn stopped(mut stop: watch::Receiver<bool>) {
    // An error means the sender is gone: nothing can request a stop any more.
    if stop.wait_for(|s| *s).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// The log line of a stop requested before the bot was running; such a stop is a clean one.
fn stopped_early() -> Result<(), ServeError> {
    tracing::info!("stopped during start-up");
    Ok(())
}

/// Builds the bot for `config` (whose API URL `check_config` has checked).
fn build_bot(config: &ServeConfig) -> Result<Bot, ServeError> {
    let bot = Bot::new(config.token.clone());
    match &config.api_url {
        Some(url) => Ok(bot.set_api_url(api_url(url, &config.token)?)),
        None => Ok(bot),
    }
}

/// getMe until it works: the network or the API may be down at start. A rejected token is final;
/// `None` when a stop was requested meanwhile.
async fn get_me_with_backoff(
    bot: &Bot,
    host: &str,
    stop: watch::Receiver<bool>,
) -> Result<Option<teloxide::types::Me>, ServeError> {
    let mut delay = Duration::from_millis(500);
    let get_me = teloxide::payloads::GetMe::new();
    loop {
        let result = tokio::select! {
            r = api::call(bot, &get_me) => r,
            _ = stopped(stop.clone()) => return Ok(None),
        };
        match result {
            Ok(me) => return Ok(Some(me)),
            Err(CallError::Api { status: 401 | 404, .. } | CallError::Api { error: ApiError::InvalidToken, .. }) => {
                return Err(ServeError::BadToken)
            }
            Err(e) => {
                tracing::warn!(api = %host, error = %e, retry_in_ms = delay.as_millis() as u64, "getMe failed; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stopped(stop.clone()) => return Ok(None),
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
    if let Err(e) = api::call(bot, &SetMyCommands::new(menu(Audience::Everyone))).await {
        tracing::warn!(error = %e, "could not register the command menu");
    }
    for &admin in admins {
        let scope = BotCommandScope::Chat { chat_id: Recipient::Id(ChatId(admin)) };
        if let Err(e) = api::call(bot, &SetMyCommands::new(menu(Audience::Admins)).scope(scope)).await {
            // Telegram refuses a chat that has never talked to the bot; the commands still work.
            tracing::warn!(admin, error = %e, "could not register the admin command menu");
        }
    }
}

/// Loads the knowledge base and opens the database: the start-up checks that fail fast.
fn prepare(config: &ServeConfig) -> Result<Engine<DataStore>, ServeError> {
    let options = Options {
        model: config.model.clone(),
        model_threads: config.model_threads,
        cache_dir: config.cache_dir.clone(),
        progress: Some(Arc::new(log_progress())),
        ..Options::default()
    };
    let (library, report) = Library::load(&config.knowledge, &options).map_err(ServeError::Knowledge)?;
    let if_damaged = if config.accept_data_loss { IfDamaged::KeepWhatCanBeRead } else { IfDamaged::Refuse };
    let store = DataStore::open(&config.store, if_damaged)
        .map_err(|source| ServeError::Database { at: config.store.shown(), source })?;
    if let DataStore::Postgres(_) = &store {
        tracing::info!(server = %config.store.shown(), "conversations and statistics on PostgreSQL");
    }
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

/// The Bot API base URL: http(s) with a host, able to take the method path. The token is never
/// shown, in case it was pasted into the URL.
fn api_url(url: &str, token: &str) -> Result<url::Url, ServeError> {
    let shown = url.replace(token, "<token>");
    let parsed = url::Url::parse(url)
        .map_err(|e| ServeError::Config(format!("--api-url (TELOXIDE_API_URL) `{shown}` is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https")
        || parsed.host_str().is_none_or(str::is_empty)
        || parsed.cannot_be_a_base()
    {
        return Err(ServeError::Config(format!(
            "--api-url (TELOXIDE_API_URL) `{shown}` must be an http:// or https:// URL with a host"
        )));
    }
    Ok(parsed)
}

/// Every setting that can be wrong, checked before anything touches the network: a mistake is
/// one clear error at start, not a bot that retries getMe for ever. The webhook URL, if any.
fn check_config(config: &ServeConfig) -> Result<Option<url::Url>, ServeError> {
    if let Some(url) = &config.api_url {
        api_url(url, &config.token)?;
    }
    let flood = config.flood;
    if flood.max_messages == 0 || flood.window.is_zero() {
        return Err(ServeError::Config("flood control needs --flood-max and --flood-window of at least 1".into()));
    }
    let url = match (&config.webhook_url, config.listen) {
        (Some(url), Some(_)) => {
            let parsed = url::Url::parse(url).map_err(|e| ServeError::Config(format!("--webhook-url `{url}`: {e}")))?;
            let https = parsed.scheme() == "https";
            // A local Bot API server (`--api-url`) posts to plain http too; Telegram's only to https.
            let local_http = parsed.scheme() == "http" && config.api_url.is_some();
            if !(https || local_http) || parsed.host_str().is_none_or(str::is_empty) {
                return Err(ServeError::Config(format!(
                    "--webhook-url `{url}` must be an https:// URL (Telegram posts only to HTTPS; http:// works only \
                     with a local Bot API server given as --api-url)"
                )));
            }
            Some(parsed)
        }
        (None, None) => None,
        _ => return Err(ServeError::Config("webhook mode needs both --webhook-url and --listen".into())),
    };
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
    Ok(url)
}

fn spawn_reloads(app: Arc<App>, mut hangups: tokio::signal::unix::Signal) {
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the knowledge base");
            let _ = app.reload("SIGHUP", false).await;
        }
    });
}

/// Re-imports the site every `every` and reloads when the import changed anything, with the
/// rules of /reload: a knowledge dir that no longer loads leaves the previous one serving.
fn spawn_syncs(app: Arc<App>, dir: PathBuf, every: Duration) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            match crate::site::sync(&dir).await {
                Ok(Some(o)) => {
                    let r = &o.report;
                    for (url, why) in &o.failures {
                        tracing::warn!(url, why, "sync: page not imported");
                    }
                    for e in &r.errors {
                        tracing::warn!(error = %e, "sync: page not imported");
                    }
                    let changed = r.created + r.updated + o.removed.len() + o.stubbed.len();
                    tracing::info!(
                        fetched = o.fetched,
                        not_modified = o.not_modified,
                        created = r.created,
                        updated = r.updated,
                        removed = o.removed.len(),
                        gone = o.gone.len(),
                        "sync: site re-imported"
                    );
                    if changed > 0 {
                        let _ = app.reload("sync", false).await;
                    }
                }
                Ok(None) => tracing::warn!("sync: the knowledge dir has no site to sync from"),
                Err(errors) => {
                    metrics::count_error("sync");
                    tracing::warn!(
                        first = errors.first().map(String::as_str).unwrap_or(""),
                        "sync failed; keeping the knowledge as it is"
                    );
                }
            }
        }
    });
}

async fn serve_metrics(listener: tokio::net::TcpListener) {
    async fn scrape(axum::extract::State(()): axum::extract::State<()>) -> String {
        metrics::render()
    }
    // For a container's health check: 200 once the bot takes updates, 503 while it starts or stops.
    async fn health() -> (axum::http::StatusCode, &'static str) {
        if metrics::serving() {
            (axum::http::StatusCode::OK, "ok\n")
        } else {
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, "not serving\n")
        }
    }
    let router = axum::Router::new()
        .route("/metrics", axum::routing::get(scrape))
        .route("/healthz", axum::routing::get(health))
        .with_state(());
    if let Err(e) = axum::serve(listener, router).await {
        tracing::error!(error = %e, "metrics server failed");
    }
}

/// The owner's admin socket in the data dir (`articlebot stats`, `review`, ... while the bot
/// runs). The bot serves without it if it cannot be made (a path too long for a socket, a file in
/// the way): the owner's commands then say that the database is in use.
fn start_admin_socket(data: &std::path::Path, app: &Arc<App>) -> Option<crate::owner::socket::AdminSocket> {
    use crate::owner::{protocol, socket};
    // With the store on a server the dir holds only the socket, and may not exist yet.
    if let Err(e) = std::fs::create_dir_all(data) {
        tracing::warn!(dir = %data.display(), error = %e, "cannot create the data dir for the admin socket");
    }
    let app = app.clone();
    let handler: socket::Handler = Arc::new(move |req| {
        let answer = protocol::handle(&protocol::Ctx::engine(&app.engine), req);
        if matches!(req, protocol::Request::Accept { .. } | protocol::Request::Undo {}) {
            // The engine reloaded itself (not through `App::reload`): the gauges follow, and
            // those waiting for a question the knowledge base answers now are told (this runs
            // on the runtime's blocking pool, where tasks can be spawned).
            let lib = app.engine.library();
            let stats = lib.kb().stats();
            metrics::set_knowledge(lib.generation, stats.articles + stats.stubs, stats.sections);
            if answer.is_ok() {
                app.tell_replicas(true);
                app.notify_answered();
            }
        }
        answer
    });
    match socket::AdminSocket::start(data, handler) {
        Ok(s) => {
            tracing::info!(path = %s.path().display(), "admin socket ready");
            Some(s)
        }
        Err(e) => {
            tracing::warn!(dir = %data.display(), error = %e, "no admin socket: the owner's commands cannot reach the running bot");
            None
        }
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

#[cfg(test)]
mod permission_tests {
    use super::*;

    #[test]
    fn a_database_dir_the_bot_may_not_write_says_what_to_do() {
        let denied = StoreError::Io(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        let e = ServeError::Database { at: "/data".into(), source: denied };
        let line = ErrorChain(&e).to_string();
        assert!(line.starts_with("cannot open the database /data (the bot's user may not write there"), "{line}");
        assert!(line.contains("chown -R 10001") && line.contains("named volume"), "{line}");
        let locked = StoreError::Locked(std::io::Error::from(std::io::ErrorKind::WouldBlock));
        let line = ErrorChain(&ServeError::Database { at: "/data".into(), source: locked }).to_string();
        assert!(!line.contains("chown") && !line.contains("Os {"), "{line}");
    }
}
