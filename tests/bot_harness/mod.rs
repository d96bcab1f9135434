//! Runs the real `articlebot serve` process against the fake Telegram Bot API on 127.0.0.1.
//! Every wait is bounded; the process is killed when the harness is dropped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use articlebot_testkit::{copy_dir, FakeTelegram};

pub const WAIT: Duration = Duration::from_secs(10);
pub const ADMIN: i64 = 777;
/// The webhook secret of [`World::webhook`].
pub const WEBHOOK_SECRET: &str = "s3cret_token-1";

/// The `articlebot` binary under test: this build's, or `ARTICLEBOT_TEST_BIN` (to check that a
/// test fails against another build, e.g. the one before a fix).
pub fn bot_bin() -> PathBuf {
    std::env::var_os("ARTICLEBOT_TEST_BIN")
        .filter(|p| !p.is_empty())
        .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_articlebot")), PathBuf::from)
}

/// A port nothing listens on yet (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

/// The flags of webhook mode on `port` (the fake posts to plain http, which the bot accepts
/// because the API URL is a local one).
pub fn webhook_args(port: u16) -> Vec<String> {
    vec![
        "--webhook-url".into(),
        format!("http://127.0.0.1:{port}/telegram"),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--webhook-secret".into(),
        WEBHOOK_SECRET.into(),
    ]
}

/// A knowledge dir the test may change (a copy of the shipped one).
pub fn knowledge_copy(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge");
    let dst = dir.join("knowledge");
    copy_dir(&src, &dst);
    dst
}

pub struct BotOptions {
    pub knowledge: PathBuf,
    pub data: PathBuf,
    pub admins: Vec<i64>,
    pub extra_args: Vec<String>,
    pub rust_log: String,
    /// The process's limit on open files (`ulimit -n`), if lower than the test's.
    pub fd_limit: Option<u32>,
}

impl BotOptions {
    /// A knowledge copy and a data dir in `dir`, no admins, `info` logs.
    pub fn in_dir(dir: &Path, args: &[&str]) -> BotOptions {
        BotOptions {
            knowledge: knowledge_copy(dir),
            data: dir.join("data"),
            admins: vec![],
            extra_args: args.iter().map(ToString::to_string).collect(),
            rust_log: "info".into(),
            fd_limit: None,
        }
    }
}

/// The bot process and where its logs go.
pub struct BotProcess {
    child: Option<Child>,
    pub log: PathBuf,
}

impl BotProcess {
    /// Starts `articlebot serve` and waits until it is about to receive updates (the fake
    /// records a long poll only when it ends, so a call made just before polling is the signal:
    /// `deleteWebhook`, `getWebhookInfo` for teloxide's own polling, `setWebhook` in webhook mode).
    pub async fn start(fake: &FakeTelegram, opts: &BotOptions) -> BotProcess {
        let mark = fake.mark();
        let bot = Self::spawn(fake, opts);
        let ready = |c: &articlebot_testkit::Call| {
            matches!(c.method.as_str(), "getWebhookInfo" | "deleteWebhook" | "setWebhook" | "getUpdates")
        };
        if fake.wait_for_after(mark, ready, WAIT).await.is_none() {
            panic!("the bot did not start polling; its log:\n{}", bot.logs());
        }
        bot
    }

    /// Starts the process without waiting for it.
    pub fn spawn(fake: &FakeTelegram, opts: &BotOptions) -> BotProcess {
        static STARTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = STARTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = opts.data.with_file_name(format!("bot-{n}.log"));
        let log_file = fs::File::create(&log).expect("log file");
        let mut cmd = match opts.fd_limit {
            Some(n) => {
                let mut c = Command::new("prlimit");
                c.arg(format!("--nofile={n}")).arg("--").arg(bot_bin());
                c
            }
            None => Command::new(bot_bin()),
        };
        cmd.arg("serve")
            .args(&opts.extra_args)
            .env("TELOXIDE_TOKEN", fake.token())
            .env("TELOXIDE_API_URL", fake.api_url_string())
            .env("ARTICLEBOT_KNOWLEDGE", &opts.knowledge)
            .env("ARTICLEBOT_DATA", &opts.data)
            .env("ARTICLEBOT_ADMINS", opts.admins.iter().map(ToString::to_string).collect::<Vec<_>>().join(","))
            .env("RUST_LOG", &opts.rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        let child = cmd.spawn().expect("spawn articlebot serve");
        BotProcess { child: Some(child), log }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill").arg(format!("-{sig}")).arg(self.pid().to_string()).status().expect("kill");
        assert!(status.success(), "kill -{sig} failed");
    }

    /// Sends SIGTERM and waits (bounded) for a clean exit.
    pub fn terminate(mut self) -> ExitStatus {
        self.signal("TERM");
        match self.wait_exit(WAIT) {
            Some(status) => status,
            None => panic!("the bot did not stop within {WAIT:?} of SIGTERM; its log:\n{}", self.logs()),
        }
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// kill -9.
    pub fn kill9(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn logs(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for BotProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A fake API, a temp dir with a knowledge copy and a data dir, and a running bot.
pub struct World {
    pub fake: FakeTelegram,
    /// Holds the knowledge copy and the data dir; removed when the world is dropped.
    _dir: tempfile::TempDir,
    pub opts: BotOptions,
    pub bot: Option<BotProcess>,
}

impl World {
    /// Runs `articlebot ARGS` on this world's knowledge dir (no model, warnings only), `stdin`
    /// written to it, as an owner at a console would.
    pub fn command(&self, args: &[&str], stdin: &str) -> std::process::Output {
        use std::io::Write;
        let mut child = Command::new(bot_bin())
            .args(args)
            .env("ARTICLEBOT_KNOWLEDGE", &self.opts.knowledge)
            .env_remove("ARTICLEBOT_MODEL")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("articlebot runs");
        // A command that stops early (the database in use) reads none of it.
        let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
        child.wait_with_output().unwrap()
    }

    /// [`World::command`] with this world's `--data` dir after the arguments: the owner tools.
    pub fn owner_command(&self, args: &[&str], stdin: &str) -> std::process::Output {
        let data = self.opts.data.display().to_string();
        let mut all = args.to_vec();
        all.extend(["--data", data.as_str()]);
        self.command(&all, stdin)
    }

    pub async fn new() -> World {
        Self::with_args(&[]).await
    }

    pub async fn with_args(args: &[&str]) -> World {
        let mut w = Self::unstarted(args).await;
        w.start().await;
        w
    }

    /// A world whose bot is not started yet ([`start`](Self::start)): for updates that must be
    /// waiting, all in one batch, when it first polls.
    pub async fn unstarted(args: &[&str]) -> World {
        let fake = FakeTelegram::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut opts = BotOptions::in_dir(dir.path(), args);
        opts.admins = vec![ADMIN];
        World { fake, _dir: dir, opts, bot: None }
    }

    /// A started bot in webhook mode on a free port (with `args` too); the port.
    pub async fn webhook(args: &[&str]) -> (World, u16) {
        let port = free_port();
        let mut w = Self::unstarted(args).await;
        w.opts.extra_args.extend(webhook_args(port));
        w.start().await;
        (w, port)
    }

    /// Starts the bot (waiting until it receives updates).
    pub async fn start(&mut self) {
        assert!(self.bot.is_none(), "the bot is already running");
        self.bot = Some(BotProcess::start(&self.fake, &self.opts).await);
    }

    /// Stops the bot with SIGTERM (asserting a clean exit) and starts it again; returns the
    /// stopped process's log.
    pub async fn restart(&mut self) -> String {
        let mut logs = String::new();
        if let Some(b) = self.bot.take() {
            let log = b.log.clone();
            let status = b.terminate();
            logs = std::fs::read_to_string(log).unwrap_or_default();
            assert!(status.success(), "clean exit after SIGTERM: {status:?}\n{logs}");
        }
        self.bot = Some(BotProcess::start(&self.fake, &self.opts).await);
        logs
    }

    pub fn bot(&self) -> &BotProcess {
        self.bot.as_ref().expect("bot running")
    }

    pub fn bot_mut(&mut self) -> &mut BotProcess {
        self.bot.as_mut().expect("bot running")
    }
}
