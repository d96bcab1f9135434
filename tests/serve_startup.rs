//! `articlebot serve` start-up, configuration errors and webhook mode, as an operator meets them.

use std::process::Command;
use std::time::Duration;

use crate::bot_harness::{
    bot_bin, free_port, knowledge_copy, webhook_args, BotOptions, BotProcess, World, ADMIN, WAIT,
};

fn serve(envs: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(bot_bin());
    cmd.arg("serve").env_remove("TELOXIDE_TOKEN").env_remove("ARTICLEBOT_KNOWLEDGE");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run articlebot serve")
}

fn one_error_line(out: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "exactly one error line: {err}");
    lines[0].to_string()
}

#[test]
fn a_missing_token_is_one_line_and_exit_code_2() {
    let out = serve(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(one_error_line(&out).contains("TELOXIDE_TOKEN is not set"));
}

#[test]
fn an_unreadable_knowledge_dir_is_one_line_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    let out = serve(&[
        ("TELOXIDE_TOKEN", "123456:SECRET-TOKEN-VALUE"),
        ("ARTICLEBOT_KNOWLEDGE", missing.to_str().unwrap()),
        ("ARTICLEBOT_DATA", dir.path().join("data").to_str().unwrap()),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let line = one_error_line(&out);
    assert!(line.contains("does not exist"), "{line}");
    let all = String::from_utf8_lossy(&out.stderr);
    assert!(!all.contains("SECRET-TOKEN-VALUE"), "the token is never printed: {all}");
}

#[test]
fn admins_must_be_numeric_ids() {
    let dir = tempfile::tempdir().unwrap();
    let out = serve(&[
        ("TELOXIDE_TOKEN", "1:x"),
        ("ARTICLEBOT_ADMINS", "@boss"),
        ("ARTICLEBOT_DATA", dir.path().to_str().unwrap()),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(one_error_line(&out).contains("not a numeric Telegram user id"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_dir_in_use_by_another_instance_is_refused_clearly() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    let second = Command::new(bot_bin())
        .arg("serve")
        .env("TELOXIDE_TOKEN", w.fake.token())
        .env("TELOXIDE_API_URL", w.fake.api_url_string())
        .env("ARTICLEBOT_KNOWLEDGE", &w.opts.knowledge)
        .env("ARTICLEBOT_DATA", &w.opts.data)
        .output()
        .expect("second instance");
    assert_eq!(second.status.code(), Some(2));
    let line = one_error_line(&second);
    assert!(line.contains("cannot open the database") && line.contains("another"), "{line}");
    // The first instance is unaffected.
    assert!(w.fake.send_text_and_wait(1, 1, "knee pain", WAIT).await.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_data_dir_is_refused_clearly() {
    let fake = articlebot_testkit::FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut perms = std::fs::metadata(&data).unwrap().permissions();
    use std::os::unix::fs::PermissionsExt;
    perms.set_mode(0o500);
    std::fs::set_permissions(&data, perms).unwrap();
    // root ignores permissions: then use a read-only file system instead.
    let data = if std::fs::write(data.join("probe"), b"x").is_ok() {
        std::path::PathBuf::from("/proc/articlebot-data")
    } else {
        data
    };
    let out = Command::new(bot_bin())
        .arg("serve")
        .env("TELOXIDE_TOKEN", fake.token())
        .env("TELOXIDE_API_URL", fake.api_url_string())
        .env("ARTICLEBOT_KNOWLEDGE", knowledge_copy(dir.path()))
        .env("ARTICLEBOT_DATA", &data)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(one_error_line(&out).contains("cannot open the database"));
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_commands_are_registered_only_in_admin_chats() {
    let w = World::with_args(&["--no-rate-limit"]).await;
    let scope = serde_json::json!({"type": "chat", "chat_id": ADMIN});
    let admin_menu = w.fake.commands(Some(scope), None).expect("admin menu");
    let names: Vec<&str> = admin_menu.as_array().unwrap().iter().filter_map(|c| c["command"].as_str()).collect();
    assert!(names.contains(&"reload") && names.contains(&"stats") && names.contains(&"unanswered"), "{names:?}");
    let default = w.fake.commands(None, None).unwrap();
    assert!(!default.to_string().contains("reload"));
}

#[tokio::test(flavor = "multi_thread")]
async fn start_up_survives_a_failing_get_me() {
    let fake = articlebot_testkit::FakeTelegram::start().await;
    fake.drop_connections("getMe", 3);
    let dir = tempfile::tempdir().unwrap();
    let opts = BotOptions::in_dir(dir.path(), &["--no-rate-limit"]);
    let bot = BotProcess::start(&fake, &opts).await;
    assert!(fake.send_text_and_wait(5, 5, "knee pain", WAIT).await.is_some());
    assert!(bot.logs().contains("getMe failed; retrying"), "{}", bot.logs());
}

#[tokio::test(flavor = "multi_thread")]
async fn webhook_mode_checks_the_secret_token() {
    let fake = articlebot_testkit::FakeTelegram::start().await;
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/telegram");
    let mut opts = BotOptions::in_dir(dir.path(), &["--no-rate-limit"]);
    opts.extra_args.extend(webhook_args(port));
    let _bot = BotProcess::start(&fake, &opts).await;
    assert_eq!(fake.webhook_url().as_deref(), Some(url.as_str()));
    let r = fake.send_text_and_wait(9, 9, "knee pain when running", WAIT).await.expect("answered through the webhook");
    assert!(r.plain.starts_with("What causes knee pain"));

    let update = serde_json::json!({"update_id": 999_999, "message": {"message_id": 1, "date": 0,
        "chat": {"id": 9, "type": "private", "first_name": "X"}, "from": {"id": 9, "is_bot": false, "first_name": "X"},
        "text": "sportswear for running"}});
    let client = reqwest::Client::new();
    for secret in [None, Some("wrong")] {
        let mut req = client.post(&url).json(&update);
        if let Some(s) = secret {
            req = req.header("X-Telegram-Bot-Api-Secret-Token", s);
        }
        let status = req.send().await.expect("webhook answers").status();
        assert!(status.is_client_error(), "a request without the right secret is refused: {status}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.replies(9).len(), 1, "the forged updates were not answered");
}

/// `articlebot serve` with `args`, its output captured; killed (and the test failed) if it is
/// still running after `limit`.
fn serve_until(envs: &[(&str, &str)], args: &[&str], limit: Duration) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("stderr.log");
    let mut cmd = Command::new(bot_bin());
    cmd.arg("serve").args(args).env_remove("ARTICLEBOT_KNOWLEDGE").env_remove("TELOXIDE_API_URL");
    cmd.env("ARTICLEBOT_DATA", dir.path().join("data")).env("RUST_LOG", "info");
    cmd.env("ARTICLEBOT_KNOWLEDGE", concat!(env!("CARGO_MANIFEST_DIR"), "/knowledge"));
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child =
        cmd.stdout(std::process::Stdio::null()).stderr(std::fs::File::create(&log).unwrap()).spawn().unwrap();
    let started = std::time::Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.try_wait().unwrap() {
            return (status.code(), std::fs::read_to_string(&log).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("still running after {limit:?}: {}", std::fs::read_to_string(&log).unwrap_or_default());
}

/// A port nothing listens on: the Bot API is down.
fn dead_api() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("http://127.0.0.1:{port}")
}

#[test]
fn webhook_mistakes_are_refused_before_the_network_is_tried() {
    let api = dead_api();
    let envs = [("TELOXIDE_TOKEN", "1:x"), ("TELOXIDE_API_URL", api.as_str())];
    for (args, says) in [
        (vec!["--webhook-url", "https://bot.example.com/hook"], "needs both --webhook-url and --listen"),
        (vec!["--listen", "127.0.0.1:0"], "needs both --webhook-url and --listen"),
        (
            vec![
                "--webhook-url",
                "https://bot.example.com/hook",
                "--listen",
                "127.0.0.1:0",
                "--webhook-secret",
                "bad secret!",
            ],
            "webhook secret",
        ),
        (vec!["--webhook-url", "not a url", "--listen", "127.0.0.1:0"], "--webhook-url `not a url`"),
    ] {
        let (code, err) = serve_until(&envs, &args, Duration::from_secs(20));
        assert_eq!(code, Some(2), "{args:?}: {err}");
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert!(lines.len() == 1 && lines[0].contains(says), "{args:?}: {err}");
        assert!(!err.contains("getMe failed"), "{args:?}: the network was not tried: {err}");
    }
}

/// `articlebot serve` against a dead API (it retries getMe), with its log; killed when dropped.
struct Waiting {
    child: std::process::Child,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Waiting {
    fn spawn(api: &str, token: &str) -> Waiting {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("stderr.log");
        let child = Command::new(bot_bin())
            .args(["serve", "--knowledge", concat!(env!("CARGO_MANIFEST_DIR"), "/knowledge")])
            .env("TELOXIDE_TOKEN", token)
            .env("TELOXIDE_API_URL", api)
            .env("ARTICLEBOT_DATA", dir.path().join("data"))
            .env("RUST_LOG", "info")
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Waiting { child, log, _dir: dir }
    }

    fn read(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_log(&self, what: &str, limit: Duration) -> bool {
        let started = std::time::Instant::now();
        while !self.read().contains(what) && started.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(50));
        }
        self.read().contains(what)
    }

    fn signal(&self, sig: &str) {
        assert!(Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success());
    }

    fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if started.elapsed() > limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn sigterm_or_ctrl_c_during_start_up_is_a_clean_stop() {
    for sig in ["TERM", "INT"] {
        let api = dead_api();
        let mut bot = Waiting::spawn(&api, "123456:SECRET-TOKEN-VALUE");
        assert!(bot.wait_log("getMe failed; retrying", Duration::from_secs(20)), "{}", bot.read());
        bot.signal(sig);
        let status = bot.wait_exit(Duration::from_secs(10));
        let log = bot.read();
        assert!(status.is_some(), "SIG{sig} stopped it while it waited for getMe: {log}");
        assert_eq!(status.and_then(|s| s.code()), Some(0), "SIG{sig} is a clean stop: {log}");
        assert!(!log.lines().any(|l| l.starts_with("error:")), "no error line: {log}");
        assert!(log.contains("stopped during start-up"), "{log}");
        // The retry lines say where the bot tries to reach, never with the token.
        let host = api.trim_start_matches("http://");
        let retry = log.lines().find(|l| l.contains("getMe failed; retrying")).unwrap();
        assert!(retry.contains(&format!("api={host}")), "{retry}");
        assert!(!log.contains("SECRET-TOKEN-VALUE"), "{log}");
    }
}

#[test]
fn sighup_during_start_up_does_not_kill_the_bot() {
    let api = dead_api();
    let mut bot = Waiting::spawn(&api, "1:x");
    // From the very first moments of the process on, and while it waits for the API.
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(10));
        bot.signal("HUP");
    }
    assert!(bot.wait_log("getMe failed; retrying", Duration::from_secs(20)), "{}", bot.read());
    bot.signal("HUP");
    std::thread::sleep(Duration::from_millis(300));
    assert!(bot.child.try_wait().unwrap().is_none(), "still running after SIGHUPs during start-up: {}", bot.read());
    bot.signal("TERM");
    assert_eq!(bot.wait_exit(Duration::from_secs(10)).and_then(|s| s.code()), Some(0), "{}", bot.read());
}

#[test]
fn bad_settings_are_one_line_and_exit_code_2_without_trying_the_network() {
    let api = dead_api();
    let local = [("TELOXIDE_TOKEN", "123:TOPSECRET"), ("TELOXIDE_API_URL", api.as_str())];
    let telegram = [("TELOXIDE_TOKEN", "123:TOPSECRET")];
    let ftp = [("TELOXIDE_TOKEN", "123:TOPSECRET"), ("TELOXIDE_API_URL", "ftp://127.0.0.1:1/")];
    let not_url = [("TELOXIDE_TOKEN", "123:TOPSECRET"), ("TELOXIDE_API_URL", "not a url")];
    let with_token = [("TELOXIDE_TOKEN", "123:TOPSECRET"), ("TELOXIDE_API_URL", "ftp://h/bot123:TOPSECRET/")];
    // The environment, the flags, what the error line says.
    type Case<'a> = (&'a [(&'a str, &'a str)], Vec<&'a str>, &'a str);
    let cases: Vec<Case> = vec![
        (&ftp, vec![], "must be an http:// or https:// URL"),
        (&not_url, vec![], "is not a URL"),
        (&with_token, vec![], "must be an http:// or https:// URL"),
        // Telegram posts only to https; plain http is for a local Bot API server.
        (
            &telegram,
            vec!["--webhook-url", "http://bot.example.com/hook", "--listen", "127.0.0.1:0"],
            "must be an https:// URL",
        ),
        (&local, vec!["--flood-max", "0"], "--flood-max"),
        (&local, vec!["--flood-window", "0"], "--flood-window"),
    ];
    for (envs, args, says) in cases {
        let (code, err) = serve_until(envs, &args, Duration::from_secs(20));
        assert_eq!(code, Some(2), "{envs:?} {args:?}: {err}");
        let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
        assert!(lines.len() == 1 && lines[0].contains(says), "{envs:?} {args:?}: {err}");
        assert!(!err.contains("getMe failed"), "{args:?}: the network was not tried: {err}");
        assert!(!err.contains("TOPSECRET"), "the token is never shown: {err}");
    }
}
