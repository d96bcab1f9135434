//! Process-wide counters for the Prometheus endpoint (`--metrics ADDR`): updates, replies by
//! intent, errors by kind, reply latency, knowledge base and database size. Counting is a few
//! atomic operations; rendering happens only when scraped.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the reply-time histogram buckets.
const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0];

struct Registry {
    replies: Mutex<BTreeMap<String, u64>>,
    errors: Mutex<BTreeMap<String, u64>>,
    latency_buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_us: AtomicU64,
    kb_generation: AtomicU64,
    kb_articles: AtomicU64,
    kb_sections: AtomicU64,
    db_bytes: AtomicU64,
    /// 1 while calls to the database fail because it cannot be reached.
    store_down: AtomicU64,
    /// Updates in the inbox replicas share.
    shared_waiting: AtomicU64,
    /// Updates this replica took that another one (or this one, cut off) had begun.
    taken_over: AtomicU64,
}

static REGISTRY: Registry = Registry {
    replies: Mutex::new(BTreeMap::new()),
    errors: Mutex::new(BTreeMap::new()),
    latency_buckets: [const { AtomicU64::new(0) }; BUCKETS.len()],
    latency_count: AtomicU64::new(0),
    latency_sum_us: AtomicU64::new(0),
    kb_generation: AtomicU64::new(0),
    kb_articles: AtomicU64::new(0),
    kb_sections: AtomicU64::new(0),
    db_bytes: AtomicU64::new(0),
    store_down: AtomicU64::new(0),
    shared_waiting: AtomicU64::new(0),
    taken_over: AtomicU64::new(0),
};

fn bump(map: &Mutex<BTreeMap<String, u64>>, key: &str) {
    let mut m = map.lock().unwrap_or_else(|p| p.into_inner());
    *m.entry(key.to_string()).or_insert(0) += 1;
}

/// A reply of this intent, taking `elapsed` in the engine.
pub fn count_reply(intent: &str, elapsed: Duration) {
    bump(&REGISTRY.replies, intent);
    let secs = elapsed.as_secs_f64();
    for (i, b) in BUCKETS.iter().enumerate() {
        if secs <= *b {
            REGISTRY.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }
    REGISTRY.latency_count.fetch_add(1, Ordering::Relaxed);
    REGISTRY.latency_sum_us.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
}

/// Set once the bot is connected to the Bot API and taking updates: what `/healthz` reports.
static SERVING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub fn set_serving(serving: bool) {
    SERVING.store(serving, Ordering::Relaxed);
}

pub fn serving() -> bool {
    SERVING.load(Ordering::Relaxed)
}

pub fn count_error(kind: &str) {
    bump(&REGISTRY.errors, kind);
}

pub fn set_knowledge(generation: u64, articles: usize, sections: usize) {
    REGISTRY.kb_generation.store(generation, Ordering::Relaxed);
    REGISTRY.kb_articles.store(articles as u64, Ordering::Relaxed);
    REGISTRY.kb_sections.store(sections as u64, Ordering::Relaxed);
}

pub fn set_store_down(down: bool) {
    REGISTRY.store_down.store(u64::from(down), Ordering::Relaxed);
}

pub fn set_shared_waiting(updates: u64) {
    REGISTRY.shared_waiting.store(updates, Ordering::Relaxed);
}

pub fn count_taken_over() {
    REGISTRY.taken_over.fetch_add(1, Ordering::Relaxed);
}

pub fn set_db_bytes(bytes: u64) {
    REGISTRY.db_bytes.store(bytes, Ordering::Relaxed);
}

/// The Prometheus text exposition of everything counted.
pub fn render() -> String {
    let mut out = String::new();
    let replies = REGISTRY.replies.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let total: u64 = replies.values().sum();
    out.push_str("# HELP articlebot_updates_total Updates answered or ignored by the conversation.\n");
    out.push_str("# TYPE articlebot_updates_total counter\n");
    out.push_str(&format!("articlebot_updates_total {total}\n"));
    out.push_str("# HELP articlebot_replies_total Replies by intent.\n# TYPE articlebot_replies_total counter\n");
    for (k, v) in &replies {
        out.push_str(&format!("articlebot_replies_total{{intent=\"{k}\"}} {v}\n"));
    }
    out.push_str("# HELP articlebot_errors_total Errors by kind.\n# TYPE articlebot_errors_total counter\n");
    for (k, v) in REGISTRY.errors.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        out.push_str(&format!("articlebot_errors_total{{kind=\"{k}\"}} {v}\n"));
    }
    out.push_str("# HELP articlebot_reply_seconds Time to build a reply (engine and storage).\n");
    out.push_str("# TYPE articlebot_reply_seconds histogram\n");
    for (i, b) in BUCKETS.iter().enumerate() {
        out.push_str(&format!(
            "articlebot_reply_seconds_bucket{{le=\"{b}\"}} {}\n",
            REGISTRY.latency_buckets[i].load(Ordering::Relaxed)
        ));
    }
    let count = REGISTRY.latency_count.load(Ordering::Relaxed);
    out.push_str(&format!("articlebot_reply_seconds_bucket{{le=\"+Inf\"}} {count}\n"));
    out.push_str(&format!(
        "articlebot_reply_seconds_sum {}\n",
        REGISTRY.latency_sum_us.load(Ordering::Relaxed) as f64 / 1e6
    ));
    out.push_str(&format!("articlebot_reply_seconds_count {count}\n"));
    for (name, help, v) in [
        ("articlebot_knowledge_version", "Knowledge base generation (increases on reload).", &REGISTRY.kb_generation),
        ("articlebot_knowledge_articles", "Articles and stubs loaded.", &REGISTRY.kb_articles),
        ("articlebot_knowledge_sections", "Sections loaded.", &REGISTRY.kb_sections),
        ("articlebot_database_bytes", "Size of the database on disk.", &REGISTRY.db_bytes),
        ("articlebot_database_unreachable", "1 while the database server cannot be reached.", &REGISTRY.store_down),
    ] {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} gauge\n{name} {}\n", v.load(Ordering::Relaxed)));
    }
    out.push_str(&format!(
        "# HELP articlebot_inbox_waiting Updates waiting in the inbox the replicas share.\n\
         # TYPE articlebot_inbox_waiting gauge\narticlebot_inbox_waiting {}\n",
        REGISTRY.shared_waiting.load(Ordering::Relaxed)
    ));
    out.push_str(&format!(
        "# HELP articlebot_updates_taken_over_total Updates taken over after a replica that began them stopped \
         or lost the database (their reply may have gone out twice).\n\
         # TYPE articlebot_updates_taken_over_total counter\narticlebot_updates_taken_over_total {}\n",
        REGISTRY.taken_over.load(Ordering::Relaxed)
    ));
    out
}
