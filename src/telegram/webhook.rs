//! Webhook mode: `setWebhook`, and the HTTP server Telegram posts updates to.
//!
//! Our own accept loop over hyper's HTTP/1 connection (`axum::serve` sets no timer, so it has no
//! header timeout, no idle timeout and no connection cap: an idle connection or half-sent headers
//! stay open for ever, and a few hundred of them exhaust the file descriptors):
//! - headers must arrive within [`HEADER_TIMEOUT`], which hyper also applies to a kept-alive
//!   connection waiting for its next request (the idle timeout); a body within [`BODY_TIMEOUT`];
//! - at most [`MAX_CONNECTIONS`] connections are open; one more evicts the oldest connection
//!   that has no request in progress (idle, or still sending headers), so idle connections
//!   cannot keep Telegram's requests out; when every connection has a request in progress the
//!   newcomer is closed (Telegram retries);
//! - a body is at most [`MAX_BODY`] (413 beyond).
//!
//! Each update is kept in the inbox (written and flushed) before Telegram gets its 200: a kill
//! right after the 200 loses nothing. Requests without the secret token get 401, requests after
//! the stop 503 (Telegram delivers them again later).

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::Stream;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use teloxide::payloads::SetWebhookSetters;
use teloxide::stop::StopFlag;
use teloxide::types::Update;
use teloxide::Bot;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Notify};

use super::api::{self, CallError};
use super::app::App;
use super::inbox;
use super::wire::{self, Read};

/// Headers of a request (and, on a kept-alive connection, the wait for the next request) must
/// arrive within this.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A request's body must arrive within this.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Open connections at most. Telegram opens up to `max_connections` (set to 40 below).
pub const MAX_CONNECTIONS: usize = 64;
/// Telegram's own limit on parallel webhook connections, sent with `setWebhook`.
const TELEGRAM_CONNECTIONS: u8 = 40;
/// Largest body accepted: an update is a few KiB.
pub const MAX_BODY: usize = 2 << 20;
/// Largest head (request line and headers).
const MAX_HEAD: usize = 64 << 10;
/// Updates accepted but not yet taken by the dispatcher; beyond this Telegram's requests wait
/// (they are on disk already).
const QUEUE: usize = 64;

/// The secret Telegram must send: the configured one, else a random one per start.
pub fn secret(configured: Option<&str>) -> String {
    if let Some(s) = configured {
        return s.to_string();
    }
    const CHARSET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
    let mut bytes = [0u8; 32];
    let random =
        std::fs::File::open("/dev/urandom").and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes)).is_ok();
    if !random {
        // No /dev/urandom (a stripped container): std's per-process random hash keys.
        use std::hash::{BuildHasher, Hasher};
        for chunk in bytes.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos(),
            );
            chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
        }
    }
    bytes.iter().map(|b| CHARSET[usize::from(*b) % CHARSET.len()] as char).collect()
}

/// Tells Telegram where to post updates, with the secret it must send.
pub async fn set(bot: &Bot, url: &url::Url, secret: &str) -> Result<(), CallError> {
    let payload = teloxide::payloads::SetWebhook::new(url.clone())
        .secret_token(secret)
        .max_connections(TELEGRAM_CONNECTIONS)
        .drop_pending_updates(false);
    api::call(bot, &payload).await.map(|_| ())
}

/// Tells Telegram to stop posting (it keeps the updates for the next `setWebhook` or poll).
pub async fn delete(bot: &Bot) -> Result<(), CallError> {
    api::call(bot, &teloxide::payloads::DeleteWebhook::new()).await.map(|_| ())
}

/// What the request handler needs.
struct Hook {
    app: Arc<App>,
    path: String,
    secret: Vec<u8>,
    flag: StopFlag,
    tx: mpsc::Sender<Update>,
}

/// The updates received, in order, once they are kept; shared so that a listener built again
/// (after a failed start of the dispatcher) goes on reading them.
pub type Received = Arc<tokio::sync::Mutex<mpsc::Receiver<Update>>>;

/// The live updates of the webhook, for the dispatcher's listener.
pub fn updates(received: Received) -> impl Stream<Item = Update> + Send + 'static {
    futures::stream::unfold(received, |rx| async move {
        let next = rx.lock().await.recv().await;
        next.map(|u| (u, rx))
    })
}

/// The running server.
pub struct Server {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Serves `url`'s path on `tcp`. Requests are refused (503) once `flag` is stopped.
    pub fn start(tcp: TcpListener, url: &url::Url, secret: &str, app: Arc<App>, flag: StopFlag) -> (Server, Received) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let path = if url.path().is_empty() { "/".to_string() } else { url.path().to_string() };
        let hook = Arc::new(Hook { app, path, secret: secret.as_bytes().to_vec(), flag, tx });
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(accept_loop(tcp, hook, stopped));
        (Server { stop, task }, Arc::new(tokio::sync::Mutex::new(rx)))
    }

    /// Stops accepting; requests in flight finish, until `deadline`; then every connection is
    /// closed.
    pub async fn shutdown(self, deadline: Duration) {
        self.stop.send_replace(true);
        let abort = self.task.abort_handle();
        if tokio::time::timeout(deadline, self.task).await.is_err() {
            tracing::warn!("webhook requests still in flight at the deadline; closing their connections");
            abort.abort();
        }
    }
}

/// An open connection, as the accept loop sees it.
#[derive(Default)]
struct Conn {
    /// Requests in progress (hyper calls the service once a request's headers are in).
    busy: AtomicUsize,
    evicted: AtomicBool,
    evict: Notify,
}

#[derive(Default)]
struct Registry {
    next: u64,
    open: BTreeMap<u64, Arc<Conn>>,
}

impl Registry {
    /// Room for one more connection, evicting the oldest one without a request in progress if
    /// the server is full; `None` when every connection is busy.
    fn admit(&mut self) -> Option<(u64, Arc<Conn>)> {
        let live = self.open.values().filter(|c| !c.evicted.load(Ordering::Relaxed)).count();
        if live >= MAX_CONNECTIONS {
            let idle = self
                .open
                .values()
                .find(|c| !c.evicted.load(Ordering::Relaxed) && c.busy.load(Ordering::Relaxed) == 0)?;
            idle.evicted.store(true, Ordering::Relaxed);
            idle.evict.notify_one();
        }
        self.next += 1;
        let conn = Arc::new(Conn::default());
        self.open.insert(self.next, conn.clone());
        Some((self.next, conn))
    }
}

fn lock(r: &Mutex<Registry>) -> std::sync::MutexGuard<'_, Registry> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

async fn accept_loop(tcp: TcpListener, hook: Arc<Hook>, mut stop: watch::Receiver<bool>) {
    let registry = Arc::new(Mutex::new(Registry::default()));
    let mut conns = tokio::task::JoinSet::new();
    let mut warned: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            a = tcp.accept() => a,
            _ = stop.wait_for(|s| *s) => break,
        };
        while conns.try_join_next().is_some() {}
        let (io, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, mostly: wait for some to close rather than spin.
                if warned.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    tracing::warn!(error = %e, "webhook: cannot accept a connection");
                    warned = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Some((id, conn)) = lock(&registry).admit() else {
            tracing::debug!(%peer, "webhook: every connection has a request in progress; closing a new one");
            continue;
        };
        let _ = io.set_nodelay(true);
        conns.spawn(serve_connection(io, hook.clone(), conn, registry.clone(), id, stop.clone()));
    }
    // Stopped: each connection finishes its request in flight and closes (`Server::shutdown`
    // bounds the wait).
    while conns.join_next().await.is_some() {}
}

async fn serve_connection(
    io: TcpStream,
    hook: Arc<Hook>,
    conn: Arc<Conn>,
    registry: Arc<Mutex<Registry>>,
    id: u64,
    mut stop: watch::Receiver<bool>,
) {
    let service = {
        let conn = conn.clone();
        hyper::service::service_fn(move |req| {
            let hook = hook.clone();
            let conn = conn.clone();
            async move {
                conn.busy.fetch_add(1, Ordering::Relaxed);
                let response = respond(&hook, req).await;
                conn.busy.fetch_sub(1, Ordering::Relaxed);
                Ok::<_, Infallible>(response)
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).keep_alive(true).max_buf_size(MAX_HEAD);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        // Dropping the connection closes it.
        _ = conn.evict.notified() => tracing::debug!("webhook: closed an idle connection to make room"),
        // The guard `wait_for` returns is not `Send`; only the event matters.
        _ = async { let _ = stop.wait_for(|s| *s).await; } => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
    lock(&registry).open.remove(&id);
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::new()));
    *r.status_mut() = code;
    r
}

/// Compares without stopping at the first difference, so the time taken tells nothing about
/// how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn respond(hook: &Hook, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() != hook.path {
        return status(StatusCode::NOT_FOUND);
    }
    if req.method() != Method::POST {
        return status(StatusCode::METHOD_NOT_ALLOWED);
    }
    let given = req.headers().get("x-telegram-bot-api-secret-token").map(|v| v.as_bytes()).unwrap_or_default();
    if !same(given, &hook.secret) {
        return status(StatusCode::UNAUTHORIZED);
    }
    if hook.flag.is_stopped() {
        return status(StatusCode::SERVICE_UNAVAILABLE);
    }
    let body = match tokio::time::timeout(BODY_TIMEOUT, Limited::new(req.into_body(), MAX_BODY).collect()).await {
        Err(_) => return status(StatusCode::REQUEST_TIMEOUT),
        Ok(Err(_)) => return status(StatusCode::PAYLOAD_TOO_LARGE),
        Ok(Ok(b)) => b.to_bytes(),
    };
    let update = match std::str::from_utf8(&body) {
        Ok(text) => wire::read(text),
        Err(_) => {
            tracing::warn!(bytes = body.len(), "skipping a webhook body that is not UTF-8");
            Read::Skipped { id: None }
        }
    };
    // What cannot be read gets 200 too: Telegram would otherwise post it again for ever.
    let Read::Update(update) = update else { return status(StatusCode::OK) };
    for u in inbox::keep(&hook.app, vec![*update]).await {
        tokio::select! {
            // A closed queue means the dispatcher is gone (stopping): the update stays in the
            // inbox and is handled at the next start.
            _ = hook.tx.send(u) => {}
            _ = hook.flag.clone() => {}
        }
    }
    status(StatusCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_in_full_and_generated_ones_are_valid() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd") && !same(b"abc", b"ab") && !same(b"", b"a"));
        let s = secret(None);
        assert_eq!(s.len(), 32);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
        assert_ne!(s, secret(None));
        assert_eq!(secret(Some("mine")), "mine");
    }

    #[test]
    fn a_full_server_evicts_the_oldest_idle_connection() {
        let mut r = Registry::default();
        let conns: Vec<_> = (0..MAX_CONNECTIONS).map(|_| r.admit().unwrap().1).collect();
        conns[0].busy.store(1, Ordering::Relaxed);
        let (_, newcomer) = r.admit().expect("room made");
        assert!(!conns[0].evicted.load(Ordering::Relaxed), "a connection with a request in progress stays");
        assert!(conns[1].evicted.load(Ordering::Relaxed), "the oldest idle one goes");
        assert!(!newcomer.evicted.load(Ordering::Relaxed));
        for c in &conns {
            c.busy.store(1, Ordering::Relaxed);
        }
        newcomer.busy.store(1, Ordering::Relaxed);
        assert!(r.admit().is_none(), "all busy: the newcomer is refused");
    }
}
