//! Three replicas of the bot on one PostgreSQL server, behind a round-robin load balancer that
//! the fake Bot API posts its webhook to: 1,000 users read an article five steps each while a
//! replica is killed with -9 and restarted ten times, and PostgreSQL itself is restarted once.
//! Every step is answered, in order, no reply goes out twice except where a takeover says it
//! may have (a replica killed between a send and its mark), and Telegram's limits hold for the
//! bot as a whole: 30 calls in any second, one message a second per chat.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use articlebot_testkit::balancer::RoundRobin;
use articlebot_testkit::postgres::{psql, TestPostgres};
use articlebot_testkit::FakeTelegram;

use crate::bot_harness::{free_port, BotOptions, BotProcess, WAIT, WEBHOOK_SECRET};
use crate::crash_restart::section_of;
use crate::limits::{busiest_second, by_chat, closest, COUNTED};

const REPLICAS: usize = 3;
const USERS: i64 = 1000;
const STEPS: u32 = 5;
const KILLS: usize = 10;
/// A step waits behind everyone's in Telegram's 30 a second: up to USERS / 30 s and the kills.
const STEP_DEADLINE: Duration = Duration::from_secs(180);
/// Our class of advisory locks for chats (`articlebot_postgres`'s "artc").
const CHAT_LOCKS: u32 = 0x6172_7463;

/// One user reads the article: /start then /more, one step per reply. A reply shown twice (a
/// takeover's) is waited past. The sections of all replies, in the order they came.
async fn reader(fake: Arc<FakeTelegram>, user: i64) -> Result<Vec<u32>, String> {
    let mut seen = 0;
    for step in 1..=STEPS {
        let text = if step == 1 { "/start what-causes-knee-pain-when-running" } else { "/more" };
        fake.send_text(user, user, text);
        loop {
            let Some(r) = fake.nth_reply(user, seen, STEP_DEADLINE).await else {
                return Err(format!("user {user}: no reply to step {step}"));
            };
            seen += 1;
            let s = section_of(&r.text).ok_or_else(|| format!("user {user}: unexpected reply {:?}", r.text))?;
            if s == step {
                break;
            }
            if s + 1 != step {
                return Err(format!("user {user}: step {step} showed section {s}"));
            }
        }
    }
    Ok(fake.replies(user).iter().filter_map(|r| section_of(&r.text)).collect())
}

struct Replica {
    opts: BotOptions,
    name: String,
    bot: Option<BotProcess>,
}

/// The chats' lock keys a replica holds now.
fn held_by(url: &str, name: &str) -> Vec<u32> {
    let sql = format!(
        "SELECT l.objid FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
         WHERE l.locktype = 'advisory' AND l.classid = {CHAT_LOCKS} AND l.objsubid = 2 AND a.application_name = 'articlebot {name}'"
    );
    psql(url, &sql).unwrap_or_default().lines().filter_map(|l| l.trim().parse().ok()).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_replicas_behind_a_balancer_survive_kills_and_a_database_restart() {
    let mut pg = TestPostgres::start().expect("PostgreSQL for the tests");
    let url = pg.fresh_database().unwrap();
    let fake = Arc::new(FakeTelegram::start().await);
    let dir = tempfile::tempdir().unwrap();
    let ports: Vec<u16> = (0..REPLICAS).map(|_| free_port()).collect();
    let balancer = RoundRobin::start(ports.iter().map(|p| format!("127.0.0.1:{p}").parse().unwrap()).collect()).await;
    let hook = format!("http://{}/telegram", balancer.addr());
    let mut replicas: Vec<Replica> = ports
        .iter()
        .enumerate()
        .map(|(i, port)| {
            let home = dir.path().join(format!("r{i}"));
            std::fs::create_dir_all(&home).unwrap();
            let name = format!("r{i}");
            let listen = format!("127.0.0.1:{port}");
            let args = [
                "--store",
                &url,
                "--replica-name",
                &name,
                "--flood-max",
                "100000",
                "--webhook-url",
                &hook,
                "--listen",
                &listen,
                "--webhook-secret",
                WEBHOOK_SECRET,
            ];
            let mut opts = BotOptions::in_dir(&home, &args);
            opts.rust_log = "info".into();
            Replica { opts, name, bot: None }
        })
        .collect();
    for r in &mut replicas {
        r.bot = Some(BotProcess::start(&fake, &r.opts).await);
    }

    let started = Instant::now();
    let readers: Vec<_> = (0..USERS).map(|u| tokio::spawn(reader(fake.clone(), 100_000 + u))).collect();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut takeovers = Vec::new();
    for kill in 0..KILLS {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(6_000 + seed % 6_000)).await;
        let victim = &mut replicas[(seed >> 20) as usize % REPLICAS];
        let held = held_by(&url, &victim.name);
        victim.bot.take().unwrap().kill9();
        let killed = Instant::now();
        // Its chats are free for the others once the server has let its locks go; they are
        // claimed then like any chat waiting (at once, unless every replica works all it may).
        let (u, n) = (url.clone(), victim.name.clone());
        let took = tokio::task::spawn_blocking(move || {
            while !held_by(&u, &n).is_empty() && killed.elapsed() < Duration::from_secs(30) {
                std::thread::sleep(Duration::from_millis(20));
            }
            killed.elapsed()
        })
        .await
        .unwrap();
        takeovers.push((held.len(), took));
        if kill == KILLS / 2 {
            // The database server goes away under the running replicas, and comes back.
            pg.stop();
            tokio::time::sleep(Duration::from_millis(1500)).await;
            pg.start_again().unwrap();
        }
        victim.bot = Some(BotProcess::start(&fake, &victim.opts).await);
    }

    let mut sections: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    for (u, r) in readers.into_iter().enumerate() {
        let logs: String = replicas.iter().filter_map(|r| r.bot.as_ref()).map(|b| b.logs()).collect();
        let read = r.await.expect("reader task").unwrap_or_else(|e| panic!("{e}\nlogs:\n{logs}"));
        sections.insert(100_000 + u as i64, read);
    }
    let elapsed = started.elapsed();
    let replies: usize = sections.values().map(Vec::len).sum();
    let duplicated = replies - (USERS as usize) * STEPS as usize;
    for (user, s) in &sections {
        let distinct: Vec<u32> = s.iter().copied().collect::<HashSet<_>>().into_iter().collect();
        assert_eq!(distinct.len(), STEPS as usize, "user {user}: {s:?}");
        assert!(s.windows(2).all(|w| w[1] == w[0] || w[1] == w[0] + 1), "user {user}: in order: {s:?}");
    }
    for r in &mut replicas {
        let bot = r.bot.take().unwrap();
        let status = bot.terminate();
        assert!(status.success(), "{} stops cleanly: {status:?}", r.name);
    }
    let all_logs: String = std::fs::read_dir(dir.path())
        .unwrap()
        .flat_map(|e| std::fs::read_dir(e.unwrap().path()).into_iter().flatten())
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("bot-"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect();
    let taken_over = all_logs.matches("taking over an update another replica began").count();
    let calls = fake.calls();
    let counted: Vec<Instant> =
        calls.iter().filter(|c| COUNTED.contains(&c.method.as_str())).map(|c| c.received_at).collect();
    let busiest = busiest_second(&counted);
    let nearest = by_chat(&calls).values().map(|t| closest(t)).min().unwrap();
    let mut took: Vec<Duration> = takeovers.iter().map(|t| t.1).collect();
    took.sort();
    eprintln!(
        "{replies} replies in {:.1} s ({:.1}/s); {duplicated} duplicated, {taken_over} updates taken over; \
         busiest second {busiest} calls; closest two messages to one chat {nearest:?}; \
         a killed replica's chats free for the others after: median {:?}, max {:?} ((chats, time) per kill: {:?})",
        elapsed.as_secs_f64(),
        replies as f64 / elapsed.as_secs_f64(),
        took[took.len() / 2],
        took[took.len() - 1],
        takeovers
    );
    assert!(duplicated <= taken_over, "{duplicated} replies went out twice, only {taken_over} updates were taken over");
    assert!(busiest <= 30, "{busiest} calls arrived within one second");
    assert!(nearest >= Duration::from_secs(1), "two messages to one chat {nearest:?} apart");
    assert!(took[took.len() - 1] < Duration::from_secs(5), "a killed replica's chats are free within seconds");
    assert!(all_logs.contains("waits for the database server"), "the restart of PostgreSQL was felt");
    assert_eq!(psql(&url, "SELECT count(*) FROM inbox").unwrap().trim(), "0", "every update handled");
    assert_eq!(psql(&url, "SELECT count(*) FROM kv WHERE tree = 'users'").unwrap().trim(), USERS.to_string());
}

/// `SIGHUP` (or /reload) on one replica reloads every replica, from the knowledge dir they
/// share; of two replicas in polling mode one polls, and the other takes over when it dies.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_on_one_replica_reloads_all_and_one_polls_at_a_time() {
    let pg = articlebot_testkit::postgres::shared_server().expect("PostgreSQL for the tests");
    let url = pg.fresh_database().unwrap();
    let fake = FakeTelegram::start().await;
    let dir = tempfile::tempdir().unwrap();
    let knowledge = crate::bot_harness::knowledge_copy(dir.path());
    let start = |name: &str| {
        let home = dir.path().join(name);
        std::fs::create_dir_all(&home).unwrap();
        let mut opts = BotOptions::in_dir(&home, &["--store", &url, "--replica-name", name]);
        opts.knowledge = knowledge.clone();
        opts
    };
    let (a_opts, b_opts) = (start("a"), start("b"));
    let a = BotProcess::start(&fake, &a_opts).await;
    let b = BotProcess::start(&fake, &b_opts).await;
    let logs_say = |bot: &BotProcess, what: &str| bot.logs().contains(what);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(logs_say(&a, "this replica polls Telegram") && logs_say(&b, "another replica polls Telegram")) {
        assert!(Instant::now() < deadline, "a polls, b does not:\n{}\n{}", a.logs(), b.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::fs::write(
        knowledge.join("articles/how-to-bake-sourdough-bread.md"),
        "+++\nid = \"how-to-bake-sourdough-bread\"\ntitle = \"How to bake sourdough bread\"\n\
         questions = [\"how do I bake sourdough bread\"]\n+++\n\n\
         Feed the starter the day before, knead, let the dough rise overnight and bake it hot.\n",
    )
    .unwrap();
    a.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !(logs_say(&b, "another replica reloaded the knowledge base") && b.logs().contains("generation=2")) {
        assert!(Instant::now() < deadline, "b reloads too:\n{}", b.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!a.logs().contains("another replica reloaded"), "a is not told of its own reload");
    // Whoever handles it, the new article answers.
    for user in [42, 44, 46] {
        let reply = fake.send_text_and_wait(user, user, "how do I bake sourdough bread", WAIT).await.expect("a reply");
        assert!(reply.plain.contains("sourdough"), "{}", reply.plain);
    }

    a.kill9();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !logs_say(&b, "this replica polls Telegram for the others") {
        assert!(Instant::now() < deadline, "b takes over polling:\n{}", b.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reply = fake.send_text_and_wait(43, 43, "/start what-causes-knee-pain-when-running", WAIT).await;
    assert!(reply.is_some_and(|r| section_of(&r.text) == Some(1)), "b answers alone");
    assert!(b.terminate().success());
}
