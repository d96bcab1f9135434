//! Load and crash drill for `articlebot serve`: starts the fake Telegram Bot API (in process, on
//! 127.0.0.1), the real bot process with a real sled database, and N simulated users who each
//! do M things from a realistic mix (questions, questions with typos, out-of-scope questions,
//! button taps, /more), waiting for each reply like a person would. Reports replies, lost (no
//! reply within the deadline), duplicates, replies/s, latency from update to reply, the bot's
//! CPU time per update and its memory.
//!
//! With `--replicas N` (N > 1, needs `--store`): N bot processes share the PostgreSQL store and
//! receive updates by webhook behind a round-robin TCP load balancer on 127.0.0.1 (each replica
//! listens on a free port; the fake posts to the balancer). CPU per update and memory are then
//! summed over the replicas. `--kill` stays single-replica.
//!
//! ```text
//! cargo build --release && cargo bench -p articlebot-bench --bench load -- --users 1000 --questions 5
//! cargo bench -p articlebot-bench --bench load -- --users 100 --questions 5 --rate-limit   # Telegram's limits on
//! cargo bench -p articlebot-bench --bench load -- --users 50 --questions 20 --kill 20      # kill -9 under load
//! cargo bench -p articlebot-bench --bench load -- --users 200 --offered-rate 500 --seconds 10   # below saturation
//! cargo bench -p articlebot-bench --bench load -- --users 1000 --questions 5 --store postgres://...   # on PostgreSQL
//! cargo bench -p articlebot-bench --bench load -- --users 1000 --questions 5 --store postgres://... --replicas 3   # 3 replicas, webhook + balancer
//! ```
//!
//! Every wait is bounded: a reply not seen within `--deadline` seconds counts as lost.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use articlebot_testkit::balancer::RoundRobin;
use articlebot_testkit::{FakeTelegram, RateLimits, Reply};

#[derive(Debug, Clone)]
struct Args {
    users: i64,
    questions: usize,
    rate_limit: bool,
    kill: usize,
    offered_rate: Option<f64>,
    seconds: f64,
    deadline: Duration,
    /// Pause between a reply and the user's next step.
    think: Duration,
    bin: PathBuf,
    knowledge: PathBuf,
    /// The bot's PostgreSQL store (`serve --store`), instead of sled in a temp dir.
    store: Option<String>,
    /// Bot processes behind a round-robin balancer in webhook mode (1: one polling process).
    replicas: usize,
    json: bool,
}

fn parse_args() -> Args {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/release/deps/load-<hash> -> target/release/articlebot
    let default_bin = exe.parent().and_then(Path::parent).map(|d| d.join("articlebot")).unwrap_or_default();
    let mut a = Args {
        users: 1000,
        questions: 5,
        rate_limit: false,
        kill: 0,
        offered_rate: None,
        seconds: 10.0,
        deadline: Duration::from_secs(60),
        think: Duration::ZERO,
        bin: default_bin,
        knowledge: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../knowledge"),
        store: None,
        replicas: 1,
        json: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| die(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--users" => a.users = value().parse().unwrap_or_else(|_| die("--users N")),
            "--questions" => a.questions = value().parse().unwrap_or_else(|_| die("--questions M")),
            "--rate-limit" => a.rate_limit = true,
            "--kill" => a.kill = value().parse().unwrap_or_else(|_| die("--kill N")),
            "--offered-rate" => a.offered_rate = Some(value().parse().unwrap_or_else(|_| die("--offered-rate R"))),
            "--seconds" => a.seconds = value().parse().unwrap_or_else(|_| die("--seconds S")),
            "--deadline" => a.deadline = Duration::from_secs(value().parse().unwrap_or_else(|_| die("--deadline S"))),
            "--think" => a.think = Duration::from_millis(value().parse().unwrap_or_else(|_| die("--think MS"))),
            "--bin" => a.bin = PathBuf::from(value()),
            "--knowledge" => a.knowledge = PathBuf::from(value()),
            "--store" => a.store = Some(value()),
            "--replicas" => a.replicas = value().parse().unwrap_or_else(|_| die("--replicas N")),
            "--json" => a.json = true,
            // Added by `cargo bench`.
            "--bench" => {}
            "-h" | "--help" => {
                println!(
                    "{}",
                    include_str!("load.rs")
                        .lines()
                        .take_while(|l| l.starts_with("//!"))
                        .map(|l| l.trim_start_matches("//! ").trim_start_matches("//!"))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
                std::process::exit(0);
            }
            other => die(&format!("unknown flag {other}")),
        }
    }
    if a.replicas == 0 {
        die("--replicas needs at least 1");
    }
    if a.replicas > 1 && a.store.is_none() {
        die("--replicas N > 1 needs --store URL: the replicas share a PostgreSQL store (sled is one process's)");
    }
    if a.replicas > 1 && a.kill > 0 {
        die("--kill works with one replica only; drop --replicas or --kill");
    }
    if a.kill > 0 && a.think.is_zero() {
        // Users must still be talking while the bot is killed (about 0.85 s between kills), or
        // the drill proves nothing.
        a.think = Duration::from_millis((a.kill as u64 * 850 / a.questions.max(1) as u64).max(200));
    }
    if !a.bin.exists() {
        die(&format!("{} not found: run `cargo build --release` first (or pass --bin)", a.bin.display()));
    }
    a
}

fn die(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2);
}

use articlebot_bench::measure::{ms, percentile, Memory};
use articlebot_bench::rng::SplitMix as Rng;

const QUESTIONS: &[&str] = &[
    "why do my knees hurt when I run",
    "is swimming easier on the knees than running",
    "how should I land my foot when running",
    "what to wear for a run in winter",
    "how do I do a proper sit up",
    "does walking help with weight loss",
    "best shoes for basketball defenders",
    "exercises for a beginner at the gym",
    "how to train my abs every day",
    "my calves get big from running",
    "does ab training stop you growing taller",
    "how to build explosive leg power",
    "quad exercises that are safe for knees",
    "which aerobics burns the most fat",
    "Hey, I started jogging last month and now my knee aches, what am I doing wrong?",
];

const OUT_OF_SCOPE: &[&str] = &[
    "how do I bake bread",
    "what is the weather tomorrow",
    "cheapest flights to rome",
    "how to fix a flat bike tyre",
    "who won the match yesterday",
];

/// A question with one typo: two neighbouring letters swapped in a longer word.
fn with_typo(q: &str, rng: &mut Rng) -> String {
    let mut words: Vec<String> = q.split(' ').map(str::to_string).collect();
    let long: Vec<usize> = (0..words.len()).filter(|&i| words[i].len() >= 6).collect();
    if let Some(&i) = long.get(rng.below(long.len())) {
        let mut chars: Vec<char> = words[i].chars().collect();
        let j = 1 + rng.below(chars.len() - 2);
        chars.swap(j, j + 1);
        words[i] = chars.into_iter().collect();
    }
    words.join(" ")
}

enum Step {
    Text(String),
    Tap { message_id: i32, data: String },
}

/// The next thing a user does, given the bot's last reply.
fn next_step(rng: &mut Rng, last: Option<&Reply>) -> Step {
    let roll = rng.below(100);
    let taps: Vec<String> = last
        .map(|r| {
            r.buttons()
                .into_iter()
                .filter_map(|b| b.callback_data)
                .filter(|d| d.starts_with("1:o:") || d.starts_with("1:n:"))
                .collect()
        })
        .unwrap_or_default();
    match roll {
        0..=39 => Step::Text(QUESTIONS[rng.below(QUESTIONS.len())].to_string()),
        40..=54 => Step::Text(with_typo(QUESTIONS[rng.below(QUESTIONS.len())], rng)),
        55..=69 => Step::Text(OUT_OF_SCOPE[rng.below(OUT_OF_SCOPE.len())].to_string()),
        70..=84 if !taps.is_empty() => {
            let r = last.expect("taps come from a reply");
            Step::Tap { message_id: r.message_id, data: taps[rng.below(taps.len())].clone() }
        }
        _ => Step::Text("/more".into()),
    }
}

#[derive(Default)]
struct UserResult {
    sent: usize,
    lost: usize,
    latencies: Vec<Duration>,
}

async fn user_flow(
    fake: Arc<FakeTelegram>,
    user: i64,
    steps: usize,
    deadline: Duration,
    think: Duration,
) -> UserResult {
    let mut rng = Rng::stream(user as u64, 0, 0);
    let mut res = UserResult::default();
    let mut seen = 0;
    let mut last: Option<Reply> = None;
    for _ in 0..steps {
        if !think.is_zero() && last.is_some() {
            tokio::time::sleep(think).await;
        }
        let step = if last.is_none() {
            Step::Text(QUESTIONS[rng.below(QUESTIONS.len())].into())
        } else {
            next_step(&mut rng, last.as_ref())
        };
        let t0 = Instant::now();
        match step {
            Step::Text(t) => {
                fake.send_text(user, user, &t);
            }
            Step::Tap { message_id, data } => {
                fake.press_button(user, user, message_id, &data);
            }
        }
        res.sent += 1;
        match fake.nth_reply(user, seen, deadline).await {
            Some(r) => {
                res.latencies.push(r.at.saturating_duration_since(t0));
                seen += 1;
                last = Some(r);
            }
            None => res.lost += 1,
        }
    }
    res
}

struct Bot {
    child: Child,
}

/// What sets a replica apart when several run behind the balancer.
struct Replica {
    name: String,
    /// The balancer's URL, the same for every replica.
    webhook_url: String,
    listen: SocketAddr,
}

/// The webhook secret every replica shares, so that any of them accepts any POST.
const WEBHOOK_SECRET: &str = "s3cret_token-1";

impl Bot {
    fn start(a: &Args, fake: &FakeTelegram, data: &Path, log: &Path, replica: Option<&Replica>) -> Bot {
        let mut cmd = Command::new(&a.bin);
        cmd.arg("serve")
            .env("TELOXIDE_TOKEN", fake.token())
            .env("TELOXIDE_API_URL", fake.api_url_string())
            .env("ARTICLEBOT_KNOWLEDGE", &a.knowledge)
            .env("ARTICLEBOT_DATA", data)
            .env("RUST_LOG", "warn")
            // The simulated users are fast typists: flood control must not slow them down here.
            .args(["--flood-max", "1000000"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::OpenOptions::new().create(true).append(true).open(log).unwrap_or_else(|e| die(&e.to_string())),
            );
        if !a.rate_limit {
            cmd.arg("--no-rate-limit");
        }
        if let Some(url) = &a.store {
            cmd.args(["--store", url]);
        }
        if let Some(r) = replica {
            cmd.args(["--replica-name", &r.name])
                .args(["--webhook-url", &r.webhook_url])
                .args(["--listen", &r.listen.to_string()])
                .args(["--webhook-secret", WEBHOOK_SECRET]);
        }
        Bot { child: cmd.spawn().unwrap_or_else(|e| die(&format!("cannot start {}: {e}", a.bin.display()))) }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn terminate(&mut self) -> bool {
        self.send_term();
        self.wait_exit(Instant::now() + Duration::from_secs(15))
    }

    fn send_term(&self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid().to_string()).status();
    }

    /// Whether the process exited successfully by `deadline`; kills it if not.
    fn wait_exit(&mut self, deadline: Instant) -> bool {
        while Instant::now() < deadline {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill9();
        false
    }
}

/// CPU seconds (user + system) the process has used, from /proc.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after_comm = stat.rsplit_once(')').map_or("", |x| x.1);
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the stat line (11 and 12 after the command name).
    (ticks(11) + ticks(12)) / 100.0
}

async fn wait_ready(fake: &FakeTelegram, mark: usize) -> bool {
    let ready = |c: &articlebot_testkit::Call| matches!(c.method.as_str(), "getWebhookInfo" | "getUpdates");
    fake.wait_for_after(mark, ready, Duration::from_secs(20)).await.is_some()
}

/// Waits for `n` successful `setWebhook` calls after `mark`: a replica in webhook mode calls it
/// once its server listens and its store is open.
async fn wait_webhooks(fake: &FakeTelegram, mark: usize, n: usize) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20 + 5 * n as u64);
    let mut from = mark;
    for _ in 0..n {
        let left = deadline.saturating_duration_since(Instant::now());
        let set = |c: &articlebot_testkit::Call| c.method == "setWebhook" && c.is_ok();
        match fake.wait_for_after(from, set, left).await {
            Some(c) => from = c.seq + 1,
            None => return false,
        }
    }
    true
}

/// `n` distinct free ports on 127.0.0.1: bound together, then released for the replicas.
fn free_ports(n: usize) -> Vec<SocketAddr> {
    let held: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| die(&format!("no free port: {e}"))))
        .collect();
    held.iter().map(|l| l.local_addr().unwrap_or_else(|e| die(&e.to_string()))).collect()
}

#[tokio::main]
async fn main() {
    let a = parse_args();
    let fake = Arc::new(FakeTelegram::start().await);
    if a.rate_limit {
        fake.enable_rate_limits(RateLimits::default());
    }
    let dir = std::env::temp_dir().join(format!("articlebot-load-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let data = dir.join("data");
    let log = dir.join("bot.log");
    let mark = fake.mark();
    // One process polls as it always has; several sit behind the balancer in webhook mode, each
    // with a data dir (its admin socket) and a log of its own.
    let (mut bots, datas, logs, _balancer) = if a.replicas == 1 {
        let bot = Bot::start(&a, &fake, &data, &log, None);
        if !wait_ready(&fake, mark).await {
            die(&format!("the bot did not start; see {}", log.display()));
        }
        (vec![bot], vec![data.clone()], vec![log.clone()], None)
    } else {
        let listens = free_ports(a.replicas);
        let balancer = RoundRobin::start(listens.clone()).await;
        let webhook_url = format!("http://{}/telegram", balancer.addr());
        let (mut bots, mut datas, mut logs) = (Vec::new(), Vec::new(), Vec::new());
        for (i, listen) in listens.into_iter().enumerate() {
            let name = format!("r{}", i + 1);
            let (d, l) = (dir.join(format!("data-{name}")), dir.join(format!("bot-{name}.log")));
            let replica = Replica { name, webhook_url: webhook_url.clone(), listen };
            bots.push(Bot::start(&a, &fake, &d, &l, Some(&replica)));
            datas.push(d);
            logs.push(l);
        }
        if !wait_webhooks(&fake, mark, a.replicas).await {
            for b in &mut bots {
                b.kill9();
            }
            die(&format!("not every replica started (no setWebhook from each); see {}/bot-r*.log", dir.display()));
        }
        (bots, datas, logs, Some(balancer))
    };
    let cpu_of = |bots: &[Bot]| bots.iter().map(|b| cpu_seconds(b.pid())).collect::<Vec<f64>>();
    let cpu0 = cpu_of(&bots);

    let started = Instant::now();
    let results = if let Some(rate) = a.offered_rate {
        open_loop(&fake, &a, rate).await
    } else {
        let killer = if a.kill > 0 { bots.pop().map(|b| spawn_killer(&a, fake.clone(), b, &data, &log)) } else { None };
        let mut tasks = Vec::new();
        for u in 0..a.users {
            tasks.push(tokio::spawn(user_flow(fake.clone(), 10_000 + u, a.questions, a.deadline, a.think)));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.push(t.await.unwrap_or_default());
        }
        if let Some(handle) = killer {
            bots.push(handle.await.unwrap_or_else(|e| die(&format!("the kill loop failed: {e}"))));
        }
        all
    };
    let elapsed = started.elapsed();
    // Late or repeated replies show up here.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // After kills the last process has only seen part of the run: CPU is per update it handled.
    let cpus: Vec<f64> = cpu_of(&bots)
        .into_iter()
        .zip(cpu0.iter().chain(std::iter::repeat(&0.0)))
        .map(|(end, start)| end - if a.kill == 0 { *start } else { 0.0 })
        .collect();
    let cpu: f64 = cpus.iter().sum();
    let rss: f64 = bots.iter().map(|b| Memory::of(b.pid()).rss_mib()).sum();

    let sent: usize = results.iter().map(|r| r.sent).sum();
    let lost: usize = results.iter().map(|r| r.lost).sum();
    let mut lat: Vec<Duration> = results.iter().flat_map(|r| r.latencies.iter().copied()).collect();
    lat.sort_unstable();
    let replies = fake.stats().replies;
    let duplicates = replies.saturating_sub(sent - lost);
    let stats = fake.stats();
    let counters = fake.counters();
    let clean_stop = if bots.len() == 1 {
        bots[0].terminate()
    } else {
        // All at once: each replica's stop then overlaps the others'.
        for b in &bots {
            b.send_term();
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        let stopped: Vec<bool> = bots.iter_mut().map(|b| b.wait_exit(deadline)).collect();
        !bots.is_empty() && stopped.into_iter().all(|s| s)
    };
    let db_bytes: u64 = datas.iter().map(|d| dir_size(d)).sum();

    let rps = lat.len() as f64 / elapsed.as_secs_f64();
    let report = serde_json::json!({
        "users": a.users, "steps_per_user": a.questions, "replicas": a.replicas, "rate_limit": a.rate_limit, "kills": a.kill,
        "offered_rate": a.offered_rate,
        "sent": sent, "replies": replies, "lost": lost, "duplicates": duplicates,
        "seconds": (elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
        "replies_per_sec": rps.round(),
        "latency_ms": {"p50": ms(percentile(&lat, 0.5)), "p95": ms(percentile(&lat, 0.95)), "p99": ms(percentile(&lat, 0.99)), "max": ms(percentile(&lat, 1.0))},
        "bot_cpu_ms_per_update": if sent > 0 { (cpu * 1000.0 / sent as f64 * 1000.0).round() / 1000.0 } else { 0.0 },
        "bot_cpu_ms_per_update_by_replica": cpus.iter().map(|c| if sent > 0 { (c * 1000.0 / sent as f64 * 1000.0).round() / 1000.0 } else { 0.0 }).collect::<Vec<f64>>(),
        "bot_rss_mib": (rss * 10.0).round() / 10.0,
        "db_bytes": db_bytes,
        "api_calls": stats.calls, "rate_limited_429": counters.rate_limited, "bad_requests": counters.bad_requests,
        "clean_stop": clean_stop,
    });
    if a.json {
        println!("{report}");
    } else {
        println!(
            "articlebot load: {} users x {} steps, {}{}{}",
            a.users,
            a.questions,
            if a.replicas == 1 {
                "1 replica (polling)".to_string()
            } else {
                format!("{} replicas (webhook, round-robin balancer)", a.replicas)
            },
            if a.rate_limit { ", Telegram rate limits on" } else { ", rate limits off" },
            if a.kill > 0 { format!(", kill -9 x{}", a.kill) } else { String::new() }
        );
        println!("  sent {sent}, replies {replies}, lost {lost}, duplicates {duplicates}");
        println!("  {:.2} s, {:.0} replies/s", elapsed.as_secs_f64(), rps);
        println!(
            "  latency update->reply: p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            ms(percentile(&lat, 0.5)),
            ms(percentile(&lat, 0.95)),
            ms(percentile(&lat, 0.99)),
            ms(percentile(&lat, 1.0))
        );
        println!(
            "  bot CPU {:.3} ms per update, RSS {:.1} MiB, database {} KiB",
            cpu * 1000.0 / sent.max(1) as f64,
            rss,
            db_bytes / 1024
        );
        println!(
            "  API calls {}, 429s from the rate limiter {}, refused requests {}, clean stop {}",
            stats.calls, counters.rate_limited, counters.bad_requests, clean_stop
        );
        if bots.len() > 1 {
            let each: Vec<String> = cpus.iter().map(|c| format!("{:.3}", c * 1000.0 / sent.max(1) as f64)).collect();
            println!("  CPU ms per update by replica (sum above): {}", each.join(", "));
        }
        let logs: Vec<String> = logs.iter().map(|l| l.display().to_string()).collect();
        println!("  log: {}", logs.join(" "));
    }
    for d in &datas {
        let _ = std::fs::remove_dir_all(d);
    }
    let failed = lost > 0
        || counters.bad_requests > 0
        || (a.rate_limit && counters.rate_limited > 0)
        || (a.kill == 0 && duplicates > 0);
    std::process::exit(if failed { 1 } else { 0 });
}

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| {
                    let m = e.metadata().ok();
                    if m.as_ref().is_some_and(|m| m.is_dir()) {
                        dir_size(&e.path())
                    } else {
                        m.map_or(0, |m| m.len())
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

/// Open loop: messages arrive at a fixed rate whatever the bot does, spread over the users;
/// measures latency below saturation.
async fn open_loop(fake: &Arc<FakeTelegram>, a: &Args, rate: f64) -> Vec<UserResult> {
    let total = (rate * a.seconds) as usize;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let start = Instant::now();
    let mut waits = Vec::with_capacity(total);
    let counters: Vec<AtomicUsize> = (0..a.users).map(|_| AtomicUsize::new(0)).collect();
    let counters = Arc::new(counters);
    let mut rng = Rng::stream(42, 0, 0);
    for i in 0..total {
        let due = start + interval * i as u32;
        tokio::time::sleep_until(due.into()).await;
        let u = (i as i64) % a.users;
        let chat = 20_000 + u;
        let n = counters[u as usize].fetch_add(1, Ordering::Relaxed);
        let q = QUESTIONS[rng.below(QUESTIONS.len())];
        let t0 = Instant::now();
        fake.send_text(chat, chat, q);
        let fake = fake.clone();
        let deadline = a.deadline;
        waits.push(tokio::spawn(async move {
            match fake.nth_reply(chat, n, deadline).await {
                Some(r) => UserResult { sent: 1, lost: 0, latencies: vec![r.at.saturating_duration_since(t0)] },
                None => UserResult { sent: 1, lost: 1, latencies: vec![] },
            }
        }));
    }
    let mut out = Vec::new();
    for w in waits {
        out.push(w.await.unwrap_or_default());
    }
    out
}

/// With `--kill N`: kill -9 the bot at random moments while users are active, N times, and
/// restart it each time; hands the running bot back when done.
fn spawn_killer(
    a: &Args,
    fake: Arc<FakeTelegram>,
    mut current: Bot,
    data: &Path,
    log: &Path,
) -> tokio::task::JoinHandle<Bot> {
    let (a, data, log) = (a.clone(), data.to_path_buf(), log.to_path_buf());
    tokio::spawn(async move {
        let mut rng = Rng::stream(7, 0, 0);
        for k in 0..a.kill {
            tokio::time::sleep(Duration::from_millis(300 + rng.below(700) as u64)).await;
            current.kill9();
            // Questions keep arriving while the bot is down; they must be answered after restart.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mark = fake.mark();
            current = Bot::start(&a, &fake, &data, &log, None);
            if !wait_ready(&fake, mark).await {
                eprintln!("restart {} failed (did the database open?): see {}", k + 1, log.display());
            }
        }
        current
    })
}
