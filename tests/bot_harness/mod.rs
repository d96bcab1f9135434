//! Runs the real `articlebot serve` process against the fake Telegram Bot API on 127.0.0.1.
//! Every wait is bounded; the process is killed when the harness is dropped.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use articlebot_testkit::FakeTelegram;

pub const WAIT: Duration = Duration::from_secs(10);
pub const ADMIN: i64 = 777;

/// A knowledge dir the test may change (a copy of the shipped one).
pub fn knowledge_copy(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("knowledge");
    let dst = dir.join("knowledge");
    copy_dir(&src, &dst);
    dst
}

fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).expect("create dir");
    for entry in fs::read_dir(src).expect("read dir") {
        let entry = entry.expect("entry");
        let to = dst.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &to);
        } else {
            fs::copy(entry.path(), &to).expect("copy");
        }
    }
}

pub struct BotOptions {
    pub knowledge: PathBuf,
    pub data: PathBuf,
    pub admins: Vec<i64>,
    pub extra_args: Vec<String>,
    pub rust_log: String,
}

/// The bot process and where its logs go.
pub struct BotProcess {
    child: Option<Child>,
    pub log: PathBuf,
}

impl BotProcess {
    /// Starts `articlebot serve` and waits until it is about to receive updates (the fake
    /// records a long poll only when it ends, so the last call before polling is the signal).
    pub async fn start(fake: &FakeTelegram, opts: &BotOptions) -> BotProcess {
        let mark = fake.mark();
        let bot = Self::spawn(fake, opts);
        let ready =
            |c: &articlebot_testkit::Call| matches!(c.method.as_str(), "getWebhookInfo" | "setWebhook" | "getUpdates");
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
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_articlebot"));
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
        self.wait_exit(WAIT).expect("the bot stops after SIGTERM")
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
    pub async fn new() -> World {
        Self::with_args(&[]).await
    }

    pub async fn with_args(args: &[&str]) -> World {
        let fake = FakeTelegram::start().await;
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = BotOptions {
            knowledge: knowledge_copy(dir.path()),
            data: dir.path().join("data"),
            admins: vec![ADMIN],
            extra_args: args.iter().map(ToString::to_string).collect(),
            rust_log: "info".into(),
        };
        let bot = BotProcess::start(&fake, &opts).await;
        World { fake, _dir: dir, opts, bot: Some(bot) }
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
}
