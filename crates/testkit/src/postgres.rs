//! A real PostgreSQL server for the tests of the PostgreSQL-backed store: [`TestPostgres`] is a
//! private cluster in a temp dir on `127.0.0.1:<free port>` that a test may stop, restart or
//! `kill -9` mid-run; [`shared_server`] is one server per test process (or the one `.ci/run`
//! started, named by `ARTICLEBOT_TEST_POSTGRES`) that hands each test a fresh empty database.
//!
//! ```no_run
//! use articlebot_testkit::postgres::{self, TestPostgres};
//! // Per-test isolation on the shared server:
//! let url = postgres::fresh_database().expect("PostgreSQL for the tests");
//! postgres::psql(&url, "create table t(x int)").unwrap();
//! // A server of its own, for crash tests:
//! let mut pg = TestPostgres::start().expect("PostgreSQL for the tests");
//! let db = pg.fresh_database().unwrap();
//! postgres::psql(&db, "create table t(x int); insert into t values (1)").unwrap();
//! pg.kill9();
//! pg.start_again().unwrap(); // crash recovery; committed rows are still there
//! assert_eq!(postgres::psql(&db, "select x from t").unwrap().trim(), "1");
//! ```
//!
//! Synchronous, std only (`std::process::Command`), no client library: databases are created and
//! SQL is run with `psql`. The server binaries are found with `pg_config --bindir`, else in the
//! highest `/usr/lib/postgresql/<version>/bin`, else as `initdb` on `PATH`; when they are missing
//! every function returns an error saying so (`apt-get install postgresql`), it never panics, and
//! the tests of this module fail rather than skip.
//!
//! The cluster: `initdb --auth=trust -U postgres --encoding=UTF8 --locale=C`, then
//! `postgres -D <dir>/data -p <port> -h 127.0.0.1 -k <dir>/sock` with `fsync` on (crash tests see
//! real durability), `max_connections=200`, `shared_buffers=32MB`, the server's log in
//! `<dir>/postgres.log` (quoted in errors). PostgreSQL refuses to run as root: when the test runs
//! as root, the data and socket dirs belong to user `postgres` and the server binaries run as that
//! user through `setpriv` (or `runuser -u postgres`).
//!
//! Cleanup: [`TestPostgres`]'s `Drop` shuts the server down (immediate shutdown, then `SIGKILL` if
//! needed) and removes the temp dir, also when a test panics. For what `Drop` cannot cover (a test
//! process killed, `std::process::exit`, and the shared server, which lives in a static and is
//! never dropped) every cluster has a **watchdog**: a small `sh` started with the cluster that
//! waits on a pipe whose write end only the test process holds (close-on-exec, so no other child
//! inherits it). When the test process ends, however it ends, the pipe closes and the watchdog
//! sends the postmaster `SIGQUIT`, `SIGKILL`s whatever process still has the data dir as its
//! working directory (every PostgreSQL process of the cluster does) and removes the temp dir.

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::os::unix::fs::{chown, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::thread::sleep;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The environment variable naming a running server for [`shared_server`]:
/// `postgres://USER@HOST:PORT/DB` (`.ci/run` sets it).
pub const POSTGRES_ENV: &str = "ARTICLEBOT_TEST_POSTGRES";

/// How long a start (or a crash recovery) may take before it is an error.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a fast shutdown may take before the server is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Attempts at a free port when another process takes the one picked.
const PORT_ATTEMPTS: usize = 5;

const INSTALL_HINT: &str = "PostgreSQL is not installed: the tests of the PostgreSQL store need its server binaries \
     (looked for `pg_config --bindir`, /usr/lib/postgresql/*/bin/initdb and `initdb` on PATH). Install it, e.g. \
     `apt-get install postgresql` on Debian/Ubuntu (.ci/run does), or set ARTICLEBOT_TEST_POSTGRES to the URL of \
     a running server (postgres://USER@HOST:PORT/DB) for the tests that share one";

/// Environment variables of libpq and the server that must not steer the commands run here.
const PG_ENV: &[&str] =
    &["PGDATA", "PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGDATABASE", "PGOPTIONS", "PGSERVICE", "PGSERVICEFILE"];

/// A private PostgreSQL cluster in a temp dir, listening on `127.0.0.1:<port>`, superuser
/// `postgres`, trust authentication. See the [module docs](self).
#[derive(Debug)]
pub struct TestPostgres {
    bins: &'static Bins,
    run_as: RunAs,
    /// The temp dir: `data/`, `sock/`, `postgres.log`.
    root: PathBuf,
    data: PathBuf,
    socket_dir: PathBuf,
    log_path: PathBuf,
    port: u16,
    /// The process started for the server: the postmaster itself, or `runuser` around it.
    server: Option<Child>,
    /// Cleans up if this process ends without dropping `self` (see the module docs).
    watchdog: Option<Child>,
}

impl TestPostgres {
    /// Creates a cluster in a new temp dir and starts it on a free port of 127.0.0.1; returns
    /// once it accepts connections.
    pub fn start() -> Result<TestPostgres, String> {
        let bins = server_bins()?;
        let run_as = RunAs::detect()?;
        let root = make_temp_root(&run_as)?;
        let mut pg = TestPostgres {
            bins,
            run_as,
            data: root.join("data"),
            socket_dir: root.join("sock"),
            log_path: root.join("postgres.log"),
            root,
            port: 0,
            server: None,
            watchdog: None,
        };
        // From here on an error return drops `pg`, which removes the temp dir.
        pg.watchdog = Some(spawn_watchdog(&pg.data, &pg.root)?);
        pg.init_cluster()?;
        let mut clashes = Vec::new();
        for _ in 0..PORT_ATTEMPTS {
            pg.port = free_port()?;
            match pg.launch() {
                Ok(()) => return Ok(pg),
                Err(Launch::PortTaken(why)) => clashes.push(why),
                Err(Launch::Failed(why)) => return Err(why),
            }
        }
        Err(format!("PostgreSQL: every port tried was taken by another process:\n{}", clashes.join("\n")))
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// The URL of database `name` on this server (which need not exist).
    pub fn database_url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// The port it listens on; the same after [`stop`](Self::stop) and
    /// [`start_again`](Self::start_again).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The cluster's data dir (`PGDATA`).
    pub fn data_dir(&self) -> &Path {
        &self.data
    }

    /// The server's log so far (all its runs), for a test's failure message.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Creates database `name` (letters, digits, `_`, `-`; at most 63 bytes) and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, String> {
        create_database_at(&self.url(), name)?;
        Ok(self.database_url(name))
    }

    /// Creates a new empty database with a name unique to this test process and returns its URL.
    pub fn fresh_database(&self) -> Result<String, String> {
        self.create_database(&unique_database_name())
    }

    /// Whether the server process is alive (it may be starting or in crash recovery).
    pub fn is_running(&self) -> bool {
        self.server.as_ref().is_some_and(|child| process_alive(child.id()))
    }

    /// Stops the server with a fast shutdown (`SIGINT`: open transactions are rolled back,
    /// a shutdown checkpoint is written), waiting for it to exit; it is killed if that takes more
    /// than 30 s. Nothing happens if it is not running.
    pub fn stop(&mut self) {
        self.shut_down("INT", STOP_TIMEOUT);
    }

    /// Starts the stopped (or killed) server again: same data dir, same port. Returns once it
    /// accepts connections, i.e. after crash recovery when it was killed. `Ok` at once when it
    /// is running.
    pub fn start_again(&mut self) -> Result<(), String> {
        if self.is_running() {
            return Ok(());
        }
        if let Some(mut dead) = self.server.take() {
            let _ = dead.wait();
        }
        self.kill_leftovers();
        match self.launch() {
            Ok(()) => Ok(()),
            Err(Launch::PortTaken(why) | Launch::Failed(why)) => Err(why),
        }
    }

    /// [`stop`](Self::stop), then [`start_again`](Self::start_again).
    pub fn restart(&mut self) -> Result<(), String> {
        self.stop();
        self.start_again()
    }

    /// A crash: `SIGKILL` to the postmaster, then to every process of the cluster still alive
    /// (its backends and background workers, as if the machine lost power, though the OS keeps
    /// what was written), and waits until they are all gone. Nothing is flushed or cleaned up;
    /// [`start_again`](Self::start_again) runs PostgreSQL's crash recovery. Nothing happens if it
    /// is not running.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.server.take() {
            let pid = self.postmaster_pid().unwrap_or(child.id());
            if pid == child.id() {
                let _ = child.kill();
            } else {
                signal(&[pid], "KILL");
            }
            let _ = child.wait();
        }
        self.kill_leftovers();
    }

    /// initdb into `self.data`, owned by the user the server runs as.
    fn init_cluster(&self) -> Result<(), String> {
        for dir in [&self.data, &self.socket_dir] {
            fs::create_dir(dir).map_err(|e| format!("PostgreSQL: cannot create {}: {e}", dir.display()))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| format!("PostgreSQL: cannot chmod {}: {e}", dir.display()))?;
            if let RunAs::User { uid, gid, .. } = self.run_as {
                chown(dir, Some(uid), Some(gid))
                    .map_err(|e| format!("PostgreSQL: cannot chown {} to user postgres: {e}", dir.display()))?;
            }
        }
        let mut initdb = self.run_as.command(&self.bins.initdb);
        initdb
            .arg("-D")
            .arg(&self.data)
            .args(["--auth=trust", "-U", "postgres", "--encoding=UTF8", "--locale=C"])
            // initdb's own fsync of the new cluster only matters for a power loss, which a test
            // does not survive anyway; the server itself runs with fsync on.
            .arg("--no-sync")
            .current_dir(&self.root);
        let out = run(&mut initdb, "initdb")?;
        if !out.status.success() {
            return Err(format!("PostgreSQL: initdb failed ({}):\n{}", out.status, output_text(&out)));
        }
        Ok(())
    }

    /// Starts the postmaster on `self.port` and waits until it accepts connections.
    fn launch(&mut self) -> Result<(), Launch> {
        let failed = |what: &str, e: std::io::Error| Launch::Failed(format!("PostgreSQL: {what}: {e}"));
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .map_err(|e| failed(&format!("cannot open {}", self.log_path.display()), e))?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let log_err = log.try_clone().map_err(|e| failed("cannot dup the log file", e))?;
        let mut cmd = self.run_as.command(&self.bins.postgres);
        cmd.arg("-D")
            .arg(&self.data)
            .args(["-p", &self.port.to_string()])
            // `-h` is `listen_addresses`: TCP on 127.0.0.1 only.
            .args(["-h", "127.0.0.1"])
            .arg("-k")
            .arg(&self.socket_dir)
            .args(["-c", "fsync=on", "-c", "max_connections=200", "-c", "shared_buffers=32MB"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .current_dir(&self.root)
            // Its own process group: a Ctrl-C meant for the test run does not reach it (the
            // watchdog or `Drop` stops it).
            .process_group(0);
        let child = cmd.spawn().map_err(|e| failed(&format!("cannot run {}", self.bins.postgres.display()), e))?;
        self.server = Some(child);
        self.wait_ready(log_start)
    }

    fn wait_ready(&mut self, log_start: u64) -> Result<(), Launch> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let exited = match self.server.as_mut() {
                Some(child) => child.try_wait().ok().flatten(),
                None => return Err(Launch::Failed("PostgreSQL: not started".into())),
            };
            if let Some(status) = exited {
                self.server = None;
                self.kill_leftovers();
                let log = read_from(&self.log_path, log_start);
                let why = format!(
                    "PostgreSQL exited ({status}) before accepting connections on 127.0.0.1:{}; its log {}:\n{log}",
                    self.port,
                    self.log_path.display()
                );
                return Err(if log.contains("Address already in use") {
                    Launch::PortTaken(why)
                } else {
                    Launch::Failed(why)
                });
            }
            if self.accepts_connections() {
                // Is it ours? Another process may have taken the port between `free_port` and
                // the postmaster's bind.
                return match psql(&self.url(), "show data_directory") {
                    Ok(dir) if Path::new(dir.trim()) == self.data => Ok(()),
                    other => {
                        self.kill9();
                        Err(Launch::PortTaken(format!(
                            "PostgreSQL: port {} answers but not from {} ({other:?})",
                            self.port,
                            self.data.display()
                        )))
                    }
                };
            }
            if Instant::now() >= deadline {
                self.kill9();
                return Err(Launch::Failed(format!(
                    "PostgreSQL did not accept connections on 127.0.0.1:{} within {} s; its log {}:\n{}",
                    self.port,
                    READY_TIMEOUT.as_secs(),
                    self.log_path.display(),
                    read_from(&self.log_path, log_start)
                )));
            }
            sleep(Duration::from_millis(50));
        }
    }

    fn accepts_connections(&self) -> bool {
        let mut cmd = Command::new(&self.bins.pg_isready);
        clean_env(&mut cmd);
        cmd.args([
            "-q",
            "-t",
            "2",
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
        cmd.status().is_ok_and(|s| s.success())
    }

    /// Sends `sig` to the postmaster and waits up to `timeout` for it to exit, then kills what is
    /// left of the cluster.
    fn shut_down(&mut self, sig: &str, timeout: Duration) {
        if let Some(mut child) = self.server.take() {
            if matches!(child.try_wait(), Ok(None)) {
                signal(&[self.postmaster_pid().unwrap_or(child.id())], sig);
                let deadline = Instant::now() + timeout;
                while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                    sleep(Duration::from_millis(20));
                }
                if matches!(child.try_wait(), Ok(None)) {
                    eprintln!(
                        "TestPostgres: the server in {} did not stop within {} s (SIG{sig}); killing it",
                        self.data.display(),
                        timeout.as_secs()
                    );
                    self.server = Some(child);
                    self.kill9();
                    return;
                }
            }
            let _ = child.wait();
        }
        self.kill_leftovers();
    }

    /// The postmaster's pid from `postmaster.pid`, if that process is alive and ours.
    fn postmaster_pid(&self) -> Option<u32> {
        let text = fs::read_to_string(self.data.join("postmaster.pid")).ok()?;
        let pid: u32 = text.lines().next()?.trim().parse().ok()?;
        (fs::read_link(format!("/proc/{pid}/cwd")).ok()? == self.data).then_some(pid)
    }

    /// `SIGKILL`s every process whose working directory is the data dir (all the cluster's
    /// processes are) until none is left, for at most 10 s.
    fn kill_leftovers(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pids = processes_in(&self.data);
            if pids.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                eprintln!("TestPostgres: processes {pids:?} of {} would not die", self.data.display());
                return;
            }
            signal(&pids, "KILL");
            sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        // Immediate shutdown (`SIGQUIT`): the data is thrown away, no checkpoint needed; the
        // postmaster still exits cleanly (no shared memory left behind).
        self.shut_down("QUIT", Duration::from_secs(10));
        let _ = fs::remove_dir_all(&self.root);
        if let Some(mut watchdog) = self.watchdog.take() {
            drop(watchdog.stdin.take()); // EOF: it finds nothing left to do and exits
            let _ = watchdog.wait();
        }
    }
}

enum Launch {
    /// Another process has the port: try another one.
    PortTaken(String),
    Failed(String),
}

/// The server for tests that only need a database of their own: see [`shared_server`].
#[derive(Debug)]
pub struct SharedServer {
    kind: SharedKind,
}

#[derive(Debug)]
enum SharedKind {
    /// `ARTICLEBOT_TEST_POSTGRES`: a server someone else runs (and cleans up).
    External { url: String },
    /// Started by this process on first use; its watchdog stops it when the process ends.
    Private(TestPostgres),
}

impl SharedServer {
    /// The URL of the server's maintenance database (where databases are created).
    pub fn url(&self) -> String {
        match &self.kind {
            SharedKind::External { url } => url.clone(),
            SharedKind::Private(pg) => pg.url(),
        }
    }

    /// Whether it is the server `ARTICLEBOT_TEST_POSTGRES` names (rather than one started here).
    pub fn is_external(&self) -> bool {
        matches!(self.kind, SharedKind::External { .. })
    }

    /// The URL of database `name` on this server (which need not exist).
    pub fn database_url(&self, name: &str) -> String {
        with_database(&self.url(), name)
    }

    /// Creates database `name` (letters, digits, `_`, `-`; at most 63 bytes) and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String, String> {
        create_database_at(&self.url(), name)?;
        Ok(self.database_url(name))
    }

    /// Creates a new empty database with a name unique to this test process and returns its URL.
    pub fn fresh_database(&self) -> Result<String, String> {
        self.create_database(&unique_database_name())
    }
}

/// The PostgreSQL server this test process shares between its tests: the one
/// `ARTICLEBOT_TEST_POSTGRES` names (`postgres://USER@HOST:PORT/DB`, a superuser or a user who may
/// create databases), else a private [`TestPostgres`] started on first use and kept until the
/// process ends (never dropped: its watchdog stops it and removes its dir when the process exits,
/// see the module docs). A failure to start is remembered: later calls return the same error.
/// Tests that stop or kill the server must start a [`TestPostgres`] of their own.
pub fn shared_server() -> Result<&'static SharedServer, String> {
    static SHARED: OnceLock<Result<SharedServer, String>> = OnceLock::new();
    SHARED.get_or_init(start_shared).as_ref().map_err(Clone::clone)
}

/// A new empty database on the [`shared_server`]: its URL.
pub fn fresh_database() -> Result<String, String> {
    shared_server()?.fresh_database()
}

fn start_shared() -> Result<SharedServer, String> {
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.trim().is_empty() => {
            let url = url.trim().to_string();
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return Err(format!("{POSTGRES_ENV}={url}: expected postgres://USER@HOST:PORT/DB"));
            }
            psql(&url, "select 1").map_err(|e| format!("{POSTGRES_ENV}={url}: cannot connect: {e}"))?;
            Ok(SharedServer { kind: SharedKind::External { url } })
        }
        _ => Ok(SharedServer { kind: SharedKind::Private(TestPostgres::start()?) }),
    }
}

/// Runs `sql` (one or more statements) with `psql` on the database at `url`, stopping at the first
/// error; returns the rows it printed, unaligned, `|` between columns, one line per row.
pub fn psql(url: &str, sql: &str) -> Result<String, String> {
    let mut cmd = Command::new(psql_binary()?);
    clean_env(&mut cmd);
    cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql]).stdin(Stdio::null());
    let out = run(&mut cmd, "psql")?;
    if !out.status.success() {
        return Err(format!("psql {url} -c {sql:?} failed ({}): {}", out.status, output_text(&out).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn create_database_at(admin_url: &str, name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !valid {
        return Err(format!("database name {name:?}: use 1 to 63 letters, digits, `_` or `-`"));
    }
    psql(admin_url, &format!("CREATE DATABASE \"{name}\"")).map(drop)
}

/// `url` with its database (path) replaced by `name`, keeping user, host, port and parameters.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let params = rest[end..].find('?').map_or("", |i| &rest[end + i..]);
    format!("{scheme}://{}/{name}{params}", &rest[..end])
}

/// `t<pid>_<process start, ms>_<n>`: unique among the databases of concurrent and successive
/// test processes on one server.
fn unique_database_name() -> String {
    static STAMP: OnceLock<u128> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let stamp = STAMP.get_or_init(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0));
    format!("t{}_{stamp}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Where the programs are.
#[derive(Debug)]
struct Bins {
    initdb: PathBuf,
    postgres: PathBuf,
    pg_isready: PathBuf,
    psql: PathBuf,
}

fn server_bins() -> Result<&'static Bins, String> {
    static BINS: OnceLock<Result<Bins, String>> = OnceLock::new();
    BINS.get_or_init(find_bins).as_ref().map_err(Clone::clone)
}

fn find_bins() -> Result<Bins, String> {
    let dir = find_bindir().ok_or_else(|| INSTALL_HINT.to_string())?;
    let tool = |name: &str| {
        let in_dir = dir.join(name);
        if is_executable(&in_dir) {
            return Ok(in_dir);
        }
        find_in_path(name).ok_or_else(|| format!("{name} not found in {} nor on PATH. {INSTALL_HINT}", dir.display()))
    };
    Ok(Bins {
        initdb: tool("initdb")?,
        postgres: tool("postgres")?,
        pg_isready: tool("pg_isready")?,
        psql: tool("psql")?,
    })
}

/// `pg_config --bindir` if it has `initdb`, else the highest `/usr/lib/postgresql/<v>/bin` with
/// `initdb`, else the dir of `initdb` on PATH (that of its target if it is a symlink, as
/// `/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb` may be).
fn find_bindir() -> Option<PathBuf> {
    if let Ok(out) = Command::new("pg_config").arg("--bindir").stderr(Stdio::null()).output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && is_executable(&dir.join("initdb")) {
            return Some(dir);
        }
    }
    let mut best: Option<(Vec<u64>, PathBuf)> = None;
    for entry in fs::read_dir("/usr/lib/postgresql").into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(version) =
            name.to_str().and_then(|v| v.split('.').map(|n| n.parse().ok()).collect::<Option<Vec<u64>>>())
        else {
            continue;
        };
        let bin = entry.path().join("bin");
        if is_executable(&bin.join("initdb")) && best.as_ref().is_none_or(|(v, _)| version > *v) {
            best = Some((version, bin));
        }
    }
    if let Some((_, bin)) = best {
        return Some(bin);
    }
    let initdb = find_in_path("initdb")?;
    let real =
        fs::canonicalize(&initdb).ok().filter(|r| r.parent().is_some_and(|d| is_executable(&d.join("postgres"))));
    real.unwrap_or(initdb).parent().map(Path::to_path_buf)
}

fn psql_binary() -> Result<PathBuf, String> {
    match server_bins() {
        Ok(bins) => Ok(bins.psql.clone()),
        Err(missing) => find_in_path("psql").ok_or(missing),
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(name)).find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Who runs the server's programs.
#[derive(Debug, Clone)]
enum RunAs {
    /// This process's user (not root).
    Current,
    /// We are root: user `postgres`, through `setpriv` or `runuser`.
    User { uid: u32, gid: u32, wrapper: Wrapper },
}

#[derive(Debug, Clone)]
enum Wrapper {
    Setpriv(PathBuf),
    Runuser(PathBuf),
}

impl RunAs {
    fn detect() -> Result<RunAs, String> {
        if effective_uid()? != 0 {
            return Ok(RunAs::Current);
        }
        let (uid, gid) = postgres_user().ok_or(
            "PostgreSQL refuses to run as root and there is no user `postgres` to run it as (apt-get install \
             postgresql creates it; or run the tests as another user)",
        )?;
        let wrapper = if let Some(setpriv) = find_in_path("setpriv") {
            Wrapper::Setpriv(setpriv)
        } else if let Some(runuser) = find_in_path("runuser") {
            Wrapper::Runuser(runuser)
        } else {
            return Err("PostgreSQL refuses to run as root and neither setpriv nor runuser is here to run it as \
                        user postgres (apt-get install util-linux)"
                .into());
        };
        Ok(RunAs::User { uid, gid, wrapper })
    }

    /// A command running `program` as this user, with libpq's environment variables removed.
    fn command(&self, program: &Path) -> Command {
        let mut cmd = match self {
            RunAs::Current => Command::new(program),
            RunAs::User { uid, gid, wrapper: Wrapper::Setpriv(setpriv) } => {
                let mut cmd = Command::new(setpriv);
                cmd.args([format!("--reuid={uid}"), format!("--regid={gid}"), "--init-groups".into(), "--".into()])
                    .arg(program);
                cmd
            }
            RunAs::User { wrapper: Wrapper::Runuser(runuser), .. } => {
                let mut cmd = Command::new(runuser);
                cmd.args(["-u", "postgres", "--"]).arg(program);
                cmd
            }
        };
        clean_env(&mut cmd);
        if matches!(self, RunAs::User { .. }) {
            cmd.env("HOME", "/var/lib/postgresql");
        }
        cmd
    }
}

fn clean_env(cmd: &mut Command) {
    for var in PG_ENV {
        cmd.env_remove(var);
    }
}

/// The effective uid, from `/proc/self/status` (`Uid: real effective saved fs`), else `id -u`.
fn effective_uid() -> Result<u32, String> {
    if let Ok(status) = fs::read_to_string("/proc/self/status") {
        let euid = status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1));
        if let Some(euid) = euid.and_then(|u| u.parse().ok()) {
            return Ok(euid);
        }
    }
    let out = Command::new("id").arg("-u").output().map_err(|e| format!("cannot run `id -u`: {e}"))?;
    String::from_utf8_lossy(&out.stdout).trim().parse().map_err(|_| "cannot tell the user id (`id -u`)".into())
}

/// uid and gid of user `postgres`, from /etc/passwd, else `id`.
fn postgres_user() -> Option<(u32, u32)> {
    if let Ok(passwd) = fs::read_to_string("/etc/passwd") {
        for line in passwd.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() >= 4 && fields[0] == "postgres" {
                if let (Ok(uid), Ok(gid)) = (fields[2].parse(), fields[3].parse()) {
                    return Some((uid, gid));
                }
            }
        }
    }
    let id = |flag: &str| -> Option<u32> {
        let out = Command::new("id").args([flag, "postgres"]).stderr(Stdio::null()).output().ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok().filter(|_| out.status.success())
    };
    Some((id("-u")?, id("-g")?))
}

/// A new dir for one cluster, `articlebot-pg-<pid>-<n>-<ns>` in the temp dir, mode 0755,
/// canonical (the cluster's processes are found by their working directory). As root, in /tmp
/// if user `postgres` could not reach the usual temp dir.
fn make_temp_root(run_as: &RunAs) -> Result<PathBuf, String> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut base = std::env::temp_dir();
    if matches!(run_as, RunAs::User { .. }) && !reachable_by_others(&base) {
        base = PathBuf::from("/tmp");
        if !reachable_by_others(&base) {
            // Let user postgres through (o+x) the dirs above its data dir.
            for dir in base.ancestors() {
                let mode = fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?.permissions().mode();
                if mode & 0o001 == 0 {
                    fs::set_permissions(dir, fs::Permissions::from_mode(mode | 0o001))
                        .map_err(|e| format!("cannot chmod o+x {}: {e}", dir.display()))?;
                }
            }
        }
    }
    loop {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("articlebot-pg-{}-{n}-{nanos}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => {
                fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
                    .map_err(|e| format!("cannot chmod {}: {e}", dir.display()))?;
                return fs::canonicalize(&dir).map_err(|e| format!("{}: {e}", dir.display()));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create a temp dir in {}: {e}", base.display())),
        }
    }
}

fn reachable_by_others(dir: &Path) -> bool {
    dir.ancestors().all(|d| fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

/// A port of 127.0.0.1 that was free a moment ago.
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot bind 127.0.0.1:0: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| format!("local_addr: {e}"))
}

/// The watchdog (see the module docs): `sh` waiting for EOF on its stdin, then stopping whatever
/// runs in `data` and removing `root`. Its stdin's write end stays in the returned `Child`.
fn spawn_watchdog(data: &Path, root: &Path) -> Result<Child, String> {
    const SCRIPT: &str = r#"
cat >/dev/null
data=$1 root=$2
ours() { [ "$(readlink "/proc/$1/cwd" 2>/dev/null)" = "$data" ]; }
pm=$(head -n 1 "$data/postmaster.pid" 2>/dev/null)
case $pm in
  ''|*[!0-9]*) ;;
  *) if ours "$pm"; then
       kill -s QUIT "$pm" 2>/dev/null
       i=0
       while [ $i -lt 100 ] && ours "$pm"; do sleep 0.1; i=$((i + 1)); done
     fi ;;
esac
for p in /proc/[0-9]*; do
  p=${p#/proc/}
  ours "$p" && kill -s KILL "$p" 2>/dev/null
done
rm -rf -- "$root"
"#;
    Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("articlebot-pg-watchdog")
        .arg(data)
        .arg(root)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir("/")
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot start the PostgreSQL watchdog (sh): {e}"))
}

/// Sends `SIG<sig>` to `pids` (with the shell's `kill`: std has no `kill(2)`).
fn signal(pids: &[u32], sig: &str) {
    if pids.is_empty() {
        return;
    }
    let _ = Command::new("sh")
        .arg("-c")
        .arg(r#"sig=$1; shift; kill -s "$sig" "$@" 2>/dev/null"#)
        .arg("sh")
        .arg(sig)
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Live processes (not zombies) whose working directory is `dir`.
fn processes_in(dir: &Path) -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd == dir))
        .collect()
}

/// Whether `pid` is a live process (not a zombie).
fn process_alive(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // `pid (comm) state ...`; comm may contain spaces and parentheses.
    stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()).is_some_and(|s| s != "Z" && s != "X")
}

fn run(cmd: &mut Command, what: &str) -> Result<Output, String> {
    cmd.output().map_err(|e| format!("cannot run {what} ({:?}): {e}", cmd.get_program()))
}

fn output_text(out: &Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    text
}

/// The end of `path` from byte `start` on (at most its last 16 KiB).
fn read_from(path: &Path, start: u64) -> String {
    let Ok(mut file) = fs::File::open(path) else { return String::new() };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let from = start.max(len.saturating_sub(16 * 1024));
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(from)).is_ok() {
        let _ = file.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpStream;

    fn started() -> TestPostgres {
        TestPostgres::start().unwrap_or_else(|e| panic!("these tests need PostgreSQL: {e}"))
    }

    fn query(url: &str, sql: &str) -> String {
        psql(url, sql).unwrap_or_else(|e| panic!("{e}")).trim().to_string()
    }

    /// Processes with the data dir as cwd or on their command line.
    fn cluster_processes(root: &Path) -> Vec<String> {
        let root = root.to_string_lossy().into_owned();
        let mut found = Vec::new();
        for entry in fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse::<u32>().ok()) else { continue };
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let cwd = fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
            if process_alive(pid) && (cwd.starts_with(&root) || cmdline.contains(&root)) {
                found.push(format!("{pid}: {cmdline}"));
            }
        }
        found
    }

    #[test]
    fn postgres_survives_restart_and_kill9_and_drop_leaves_nothing() {
        let mut pg = started();
        let port = pg.port();
        assert_eq!(pg.url(), format!("postgres://postgres@127.0.0.1:{port}/postgres"));
        assert!(pg.is_running());
        let root = pg.root.clone();
        assert!(pg.data_dir().join("PG_VERSION").is_file());

        let db = pg.create_database("crash_test").unwrap();
        assert_eq!(db, format!("postgres://postgres@127.0.0.1:{port}/crash_test"));
        query(&db, "create table t(x int); insert into t values (1)");
        assert_eq!(query(&db, "show fsync"), "on");

        pg.restart().unwrap();
        assert_eq!(pg.port(), port);
        assert_eq!(query(&db, "select x from t"), "1");

        // Committed just before the crash: still there after recovery.
        query(&db, "insert into t values (2)");
        pg.kill9();
        assert!(!pg.is_running());
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "nothing listens after kill9");
        assert!(processes_in(pg.data_dir()).is_empty());
        pg.start_again().unwrap();
        assert_eq!(query(&db, "select string_agg(x::text, ',' order by x) from t"), "1,2");
        assert!(pg.log().contains("automatic recovery in progress"), "crash recovery ran:\n{}", pg.log());

        let running = cluster_processes(&root);
        assert!(!running.is_empty(), "the cluster's processes are visible to the check");
        drop(pg);
        assert!(!root.exists(), "{} removed", root.display());
        let left = cluster_processes(&root);
        assert!(left.is_empty(), "left running: {left:?}");
        assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "nothing listens after drop");
    }

    #[test]
    fn postgres_stop_start_again_and_fresh_databases() {
        let mut pg = started();
        let a = pg.fresh_database().unwrap();
        let b = pg.fresh_database().unwrap();
        assert_ne!(a, b);
        query(&a, "create table only_in_a(x int)");
        assert_eq!(query(&b, "select count(*) from pg_tables where tablename = 'only_in_a'"), "0");
        assert!(pg.create_database("bad name; drop").is_err());
        assert!(pg.create_database(&"x".repeat(64)).is_err());
        assert!(pg.create_database("crash_test").is_ok());
        assert!(pg.create_database("crash_test").unwrap_err().contains("already exists"));

        pg.stop();
        assert!(!pg.is_running());
        assert!(psql(&a, "select 1").is_err());
        pg.stop(); // twice is fine
        pg.start_again().unwrap();
        pg.start_again().unwrap(); // running: nothing to do
        assert_eq!(query(&a, "select count(*) from only_in_a"), "0");
        assert!(pg.log().contains("database system is shut down"));
    }

    #[test]
    fn postgres_shared_server_hands_out_fresh_databases() {
        let server = shared_server().unwrap_or_else(|e| panic!("these tests need PostgreSQL: {e}"));
        assert!(std::ptr::eq(server, shared_server().unwrap()));
        let a = fresh_database().unwrap();
        let b = server.fresh_database().unwrap();
        assert_ne!(a, b);
        query(&a, "create table t(x int); insert into t values (7)");
        assert_eq!(query(&a, "select x from t"), "7");
        assert!(psql(&b, "select x from t").is_err());
        assert_eq!(query(&server.url(), "select 1"), "1");
    }

    #[test]
    fn postgres_database_urls() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "t1"),
            "postgres://postgres@127.0.0.1:5432/t1"
        );
        assert_eq!(with_database("postgresql://u:pw@h:1", "t1"), "postgresql://u:pw@h:1/t1");
        assert_eq!(with_database("postgres://u@h:1/db?sslmode=disable", "t1"), "postgres://u@h:1/t1?sslmode=disable");
        assert_eq!(with_database("postgres://u@h:1?sslmode=disable", "t1"), "postgres://u@h:1/t1?sslmode=disable");
        let (a, b) = (unique_database_name(), unique_database_name());
        assert_ne!(a, b);
        assert!(a.len() <= 63 && a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_'));
        assert!(INSTALL_HINT.contains("apt-get install postgresql"));
    }
}
