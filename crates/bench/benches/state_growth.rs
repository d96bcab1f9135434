//! How the conversation database grows: the bytes on disk and the process memory for 100,000
//! users' state, and the growth over 1,000,000 questions. Drives the engine with the real sled
//! store on disk (no Telegram).
//!
//! ```text
//! cargo bench -p articlebot-bench --bench state_growth -- [--users 100000] [--questions 1000000] [--askers 10000]
//! ```

use std::path::Path;
use std::time::Instant;

use articlebot_bench::measure::Memory;
use articlebot_engine::{Engine, Input, Options, SledStore, Store, User};

const QUESTIONS: &[&str] = &[
    "why do my knees hurt when I run",
    "is swimming easier on the knees than running",
    "how do I do a proper sit up",
    "does walking help with weight loss",
    "what should I wear for running",
    "calves",
    "/more",
];

fn dir_size(p: &Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| if e.path().is_dir() { dir_size(&e.path()) } else { e.metadata().map_or(0, |m| m.len()) })
                .sum()
        })
        .unwrap_or(0)
}

fn rss_mib() -> f64 {
    Memory::now().rss_mib()
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    let users = arg("--users", 100_000);
    let questions = arg("--questions", 1_000_000);
    let askers = arg("--askers", 10_000).max(1);
    let knowledge = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge");
    let dir = std::env::temp_dir().join(format!("articlebot-growth-{}", std::process::id()));
    let store = SledStore::open(&dir.join("data")).expect("open sled");
    let (engine, _) = Engine::open(&knowledge, store, Options::default()).expect("shipped knowledge");
    let rss0 = rss_mib();

    // Phase 1: many users, one question each (plus an out-of-scope one for every tenth).
    let t = Instant::now();
    for u in 0..users as i64 {
        let user = User { id: 1_000_000 + u, language: Some("en".into()) };
        let q = QUESTIONS[u as usize % (QUESTIONS.len() - 1)];
        engine.handle(&user, Input::Question(q.into()), None, 1_700_000_000 + u as u64);
        if u % 10 == 0 {
            engine.handle(&user, Input::Question(format!("how do I fix my bike number {u}")), None, 1_700_000_000);
        }
    }
    engine.store().flush().expect("flush");
    let after_users = dir_size(&dir);
    let rss_users = rss_mib();
    println!(
        "{users} users: database {:.1} MiB on disk ({:.0} bytes per user), process RSS {:.1} MiB (+{:.1} MiB), {:.1} s",
        after_users as f64 / 1048576.0,
        after_users as f64 / users as f64,
        rss_users,
        rss_users - rss0,
        t.elapsed().as_secs_f64()
    );

    // Phase 2: a million questions from `askers` users, a tenth of them never seen before.
    let t = Instant::now();
    for i in 0..questions {
        let u = (i % askers) as i64;
        let user = User { id: 5_000_000 + u, language: None };
        let text = if i % 10 == 0 {
            format!("unanswerable question {i}")
        } else {
            QUESTIONS[(i as usize / 7) % QUESTIONS.len()].to_string()
        };
        engine.handle(&user, Input::Question(text), None, 1_700_000_000 + i / 100);
    }
    engine.store().flush().expect("flush");
    let after_questions = dir_size(&dir);
    println!(
        "{questions} more questions from {askers} users: database {:.1} MiB (+{:.1} MiB), process RSS {:.1} MiB, {:.1} s ({:.0} questions/s)",
        after_questions as f64 / 1048576.0,
        (after_questions as f64 - after_users as f64) / 1048576.0,
        rss_mib(),
        t.elapsed().as_secs_f64(),
        questions as f64 / t.elapsed().as_secs_f64()
    );
    let stats = engine.store().stats(1_700_000_000 + questions / 100, 3).expect("stats");
    println!(
        "stats: {} users, {} questions recorded, unanswered tracked: {}",
        stats.users,
        stats.questions_total,
        engine.store().unanswered(100_000).map_or(0, |u| u.len())
    );
    drop(engine);
    let _ = std::fs::remove_dir_all(&dir);
}
