//! The running bot's admin socket: `DATA/admin.sock`, a Unix domain socket only its owner may
//! use (mode 0600, and the peer's uid checked), one JSON request line in and one JSON reply line
//! out per connection ([`super::protocol`]). sled lets one process open the database; this is
//! how the owner's console commands reach it while the bot holds it.
//!
//! A client cannot stall the bot: a request must arrive within [`READ_TIMEOUT`] and be at most
//! [`MAX_REQUEST`] bytes, a reply not taken within [`WRITE_TIMEOUT`] is dropped, and at most
//! [`MAX_CONNECTIONS`] requests run at a time (the others are told so).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use super::protocol::{Reply, Request};

/// The socket's file name in the data dir.
pub const SOCKET_NAME: &str = "admin.sock";
/// A request line's limit (they are a few hundred bytes).
pub const MAX_REQUEST: usize = 64 * 1024;
/// A reply line's limit for the client (10 000 unanswered questions are ~5 MB).
pub const MAX_REPLY: usize = 64 * 1024 * 1024;
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_CONNECTIONS: usize = 4;
/// How long the client waits for a reply: an accept reloads the knowledge base, which may
/// embed it again with a sentence model.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(300);

/// Runs one request (in a blocking thread: requests read the database).
pub type Handler = Arc<dyn Fn(&Request) -> Result<Value, String> + Send + Sync>;

/// The socket of `data`.
pub fn path_in(data: &Path) -> PathBuf {
    data.join(SOCKET_NAME)
}

/// The socket being served: dropping it stops the accept loop and removes the file (if it is
/// still this one: a newer bot's is left alone).
pub struct AdminSocket {
    path: PathBuf,
    inode: (u64, u64),
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AdminSocket {
    fn drop(&mut self) {
        self.task.abort();
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.inode) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl AdminSocket {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Binds `data/admin.sock` and serves it with `handler`. Call it with the database open:
    /// holding sled's lock, this process is the only bot on `data`, so a socket file already
    /// there is a killed bot's and is replaced. Anything else at that path is left alone.
    pub fn start(data: &Path, handler: Handler) -> std::io::Result<AdminSocket> {
        let path = path_in(data);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_socket() => std::fs::remove_file(&path)?,
            Ok(_) => {
                return Err(std::io::Error::other(format!("{} exists and is not a socket", path.display())));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        // Bound under a private name, made owner-only, then renamed into place: nobody can
        // connect to `admin.sock` before its mode is 0600.
        let tmp = data.join(format!(".{SOCKET_NAME}.{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        let listener = std::os::unix::net::UnixListener::bind(&tmp)?;
        let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = placed {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let meta = std::fs::symlink_metadata(&path)?;
        listener.set_nonblocking(true)?;
        let listener = tokio::net::UnixListener::from_std(listener)?;
        let task = tokio::spawn(accept_loop(listener, handler, meta.uid()));
        Ok(AdminSocket { path, inode: (meta.dev(), meta.ino()), task })
    }
}

async fn accept_loop(listener: tokio::net::UnixListener, handler: Handler, owner: u32) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of file descriptors, most likely: wait instead of spinning.
                tracing::warn!(error = %e, "admin socket: accept failed");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let handler = handler.clone();
        let slot = slots.clone().try_acquire_owned();
        tokio::spawn(async move {
            let Ok(_slot) = slot else {
                let busy = format!("the bot is busy with {MAX_CONNECTIONS} owner requests; try again");
                let _ = reply(stream, &Reply::Error(busy)).await;
                return;
            };
            serve_one(stream, handler, owner).await;
        });
    }
}

async fn serve_one(mut stream: tokio::net::UnixStream, handler: Handler, owner: u32) {
    // The file's mode keeps others out; the peer's uid is checked too, in case the data dir's
    // permissions were loosened (root may, as it may open the database anyway).
    match stream.peer_cred() {
        Ok(c) if c.uid() == owner || c.uid() == 0 => {}
        Ok(c) => {
            tracing::warn!(uid = c.uid(), "admin socket: refused a connection from another user");
            let _ = reply(stream, &Reply::Error("this socket is for the bot's own user".into())).await;
            return;
        }
        Err(e) => {
            tracing::warn!(error = %e, "admin socket: cannot tell who connected");
            return;
        }
    }
    let mut line = Vec::new();
    let read = {
        let mut limited = tokio::io::BufReader::new((&mut stream).take(MAX_REQUEST as u64 + 1));
        tokio::time::timeout(READ_TIMEOUT, limited.read_until(b'\n', &mut line)).await
    };
    let request = match read {
        Err(_) => Err(format!("no request line within {} s", READ_TIMEOUT.as_secs())),
        Ok(Err(e)) => Err(format!("reading the request failed: {e}")),
        Ok(Ok(_)) if line.len() > MAX_REQUEST => Err(format!("a request is at most {MAX_REQUEST} bytes")),
        Ok(Ok(_)) if line.last() != Some(&b'\n') => Err("a request is one line ending in a newline".into()),
        Ok(Ok(_)) => serde_json::from_slice::<Request>(&line).map_err(|e| format!("not a request: {e}")),
    };
    let answer = match request {
        Ok(req) => {
            tracing::info!(cmd = req.name(), "admin socket: request");
            let run = tokio::task::spawn_blocking(move || handler(&req)).await;
            match run {
                Ok(Ok(v)) => Reply::Ok(v),
                Ok(Err(e)) => Reply::Error(e),
                Err(e) => Reply::Error(format!("the request failed inside the bot: {e}")),
            }
        }
        Err(e) => Reply::Error(e),
    };
    if let Reply::Error(e) = &answer {
        // The message may quote a question: user text, so debug only.
        tracing::debug!(error = %e, "admin socket: request refused or failed");
    }
    if reply(stream, &answer).await.is_err() {
        tracing::debug!("admin socket: the client did not take its reply");
    }
}

async fn reply(mut stream: tokio::net::UnixStream, r: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(r).unwrap_or_else(|_| br#"{"error":"cannot encode the reply"}"#.to_vec());
    line.push(b'\n');
    let write = async {
        stream.write_all(&line).await?;
        stream.shutdown().await
    };
    tokio::time::timeout(WRITE_TIMEOUT, write).await.map_err(|_| std::io::ErrorKind::TimedOut)?
}

/// Sends one request to the socket at `path` and reads its reply; every failure is one line
/// that names the socket.
pub fn call(path: &Path, req: &Request) -> Result<Value, String> {
    let at = path.display();
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::ConnectionRefused => format!(
            "nothing answers on the admin socket {at} (a stale file: the bot that made it is gone, but something else holds the database)"
        ),
        std::io::ErrorKind::NotFound => format!("no admin socket at {at}"),
        _ => format!("cannot connect to the admin socket {at}: {e}"),
    })?;
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            format!("no reply from the admin socket {at} within {} s", REPLY_TIMEOUT.as_secs())
        }
        _ => format!("the admin socket {at} failed: {e}"),
    };
    stream.set_write_timeout(Some(WRITE_TIMEOUT)).map_err(io)?;
    stream.set_read_timeout(Some(REPLY_TIMEOUT)).map_err(io)?;
    let mut line = serde_json::to_vec(req).map_err(|e| format!("cannot encode the request: {e}"))?;
    line.push(b'\n');
    // A bot that refuses at once (busy) answers and closes before reading: the write may fail
    // then, and its reply is still there to read.
    let written = stream.write_all(&line);
    let mut buf = Vec::new();
    let read = BufReader::new((&mut stream).take(MAX_REPLY as u64 + 1)).read_until(b'\n', &mut buf);
    match (written, read) {
        (_, Ok(_)) if !buf.is_empty() => {}
        (Err(e), _) | (Ok(()), Err(e)) => return Err(io(e)),
        (Ok(()), Ok(_)) => {}
    }
    if buf.len() > MAX_REPLY {
        return Err(format!("the admin socket {at} sent a reply larger than {MAX_REPLY} bytes"));
    }
    if buf.is_empty() {
        return Err(format!("the admin socket {at} closed without a reply"));
    }
    match serde_json::from_slice::<Reply>(&buf) {
        Ok(Reply::Ok(v)) => Ok(v),
        Ok(Reply::Error(e)) => Err(e),
        Err(_) => {
            let shown: String = String::from_utf8_lossy(&buf).chars().take(60).collect();
            Err(format!("the admin socket {at} answered something that is not articlebot's: {:?}", shown.trim_end()))
        }
    }
}
