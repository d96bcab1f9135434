//! The engine benchmark: generates a large knowledge base in the page format and measures load
//! and index time, query latency and memory.
//!
//! ```text
//! cargo bench -p articlebot-bench --bench engine -- [--pages 10000] [--queries 5000] [--json]
//! ```
//!
//! The site and its queries come from `articlebot_bench::corpus`: reproducible from the seed.

use std::fmt::Write as _;
use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use articlebot_bench::corpus::{Corpus, Kind, Query, KINDS, QUERY_STREAM, WARM_UP_STREAM};
use articlebot_bench::measure::{ms, Latency, Memory};
use articlebot_engine::{Decision, Hit, Intent, KbStats, Matcher, Scan, Snippet};
use articlebot_knowledge::Fnv1a;
use clap::Parser;
use serde_json::json;

/// A failure of the run: printed as one `error:` line, exit code 2.
#[derive(Debug)]
struct Failure(String);

impl Failure {
    fn usage(message: impl Into<String>) -> Self {
        Failure(message.into())
    }
}

/// Measures load, index and query speed on a generated knowledge base
#[derive(Parser, Debug)]
#[command(name = "engine")]
struct BenchArgs {
    /// Added by `cargo bench`; nothing to do with it
    #[arg(long, hide = true)]
    bench: bool,
    /// Pages to generate (each about five sections)
    #[arg(long, default_value_t = 10_000, value_name = "N")]
    pages: usize,
    /// Queries to time (after as many as 1000 warm-up queries)
    #[arg(long, default_value_t = 5_000, value_name = "Q")]
    queries: usize,
    /// Seed of the generator: the same seed gives the same pages and queries
    #[arg(long, default_value_t = 1, value_name = "S")]
    seed: u64,
    /// Write the knowledge base to DIR (new or empty) and keep it, instead of a temp dir
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// Print one JSON object instead of the report
    #[arg(long)]
    json: bool,
    /// Also write the timed queries to FILE, one a line (to replay them with `ask`)
    #[arg(long, value_name = "FILE")]
    queries_out: Option<PathBuf>,
    /// Semantic matching with this sentence-transformers model dir: the knowledge base is
    /// embedded (cold, or from --cache), then loaded again from the cache (warm)
    #[arg(long, value_name = "DIR")]
    model: Option<PathBuf>,
    /// Threads that embed the knowledge base (default: all)
    #[arg(long, value_name = "N")]
    model_threads: Option<usize>,
    /// Vector cache dir (default: one inside the knowledge dir, so each run starts cold)
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// With --model: fill the cache with vectors made from each text's hash instead of the
    /// model's, so that the warm start, the dense scan and the query encoding are measured at
    /// sizes whose real embedding takes an hour (answers found then mean nothing)
    #[arg(long, requires = "model")]
    stand_in_vectors: bool,
    /// With --model: score every unit exactly, without the first pass (for before/after figures)
    #[arg(long, requires = "model")]
    exact_scan: bool,
}

/// The semantic stage's figures.
#[derive(Debug, Default, Clone)]
struct SemanticFigures {
    units: usize,
    embedded: usize,
    threads: usize,
    embed: Duration,
    /// Knowledge load, index and vectors from the cache, after the first load.
    warm_start: Duration,
    vector_bytes: usize,
    /// The vectors were stand-ins (`--stand-in-vectors`): times hold, answers mean nothing.
    stand_ins: bool,
}

/// Warm-up queries run before timing, so caches and the per-thread scratch are in steady state.
const WARM_UP: usize = 1000;
/// Results per query, as the bot asks for them.
const TOP: usize = 3;
/// Snippet length, as the bot shows it.
const SNIPPET_CHARS: usize = 600;

fn main() -> std::process::ExitCode {
    match run(BenchArgs::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("error: {message}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(args: BenchArgs) -> Result<(), Failure> {
    if args.pages == 0 || args.queries == 0 {
        return Err(Failure::usage("--pages and --queries must be at least 1"));
    }
    let dir = BenchDir::create(args.keep.as_deref())?;
    let started = Instant::now();
    let corpus = Corpus::new(args.seed, args.pages);
    let expected = corpus.write(dir.path()).map_err(Failure)?;
    let generate = started.elapsed();
    let queries = corpus.queries(args.queries, QUERY_STREAM);
    let warm_up = corpus.queries(args.queries.min(WARM_UP), WARM_UP_STREAM);
    if let Some(path) = &args.queries_out {
        let lines: String = queries.iter().map(|q| format!("{}\n", q.text)).collect();
        fs::write(path, lines).map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())))?;
    }

    let semantic = match &args.model {
        None => None,
        Some(m) => {
            let mut options = articlebot_engine::ModelOptions::default();
            if let Some(n) = args.model_threads {
                options.threads = n.max(1);
            }
            let model = articlebot_engine::Model::load(m, &options)
                .map_err(|e| Failure(format!("{}", articlebot_engine::ErrorChain(&e))))?;
            let cache = args.cache.clone().unwrap_or_else(|| dir.path().join(".vectors"));
            if args.stand_in_vectors {
                let loaded =
                    articlebot_engine::load_knowledge(dir.path()).map_err(|e| Failure::usage(e.to_string()))?;
                let n = articlebot_engine::fill_cache_with_stand_ins(&loaded.kb, &model, &cache)
                    .map_err(|e| Failure(format!("cannot write stand-in vectors to {}: {e}", cache.display())))?;
                eprintln!("stand-in vectors for {n} texts written to {}", cache.display());
            }
            Some((std::sync::Arc::new(model), cache))
        }
    };
    let scan = if args.exact_scan { Scan::Exact } else { Scan::Auto };
    let mut report = measure(dir.path(), &corpus, &queries, &warm_up, semantic, scan)?;
    if let Some(s) = report.semantic.as_mut() {
        s.stand_ins = args.stand_in_vectors;
    }
    if report
        .stats
        .is_some_and(|s| (s.articles, s.stubs, s.sections) != (expected.articles, expected.stubs, expected.sections))
    {
        eprintln!("warning: the loader did not find the {expected:?} written");
    }
    let report = Report { generate, dir: dir.path().to_path_buf(), kept: dir.keep, seed: args.seed, ..report };
    if args.json {
        println!("{}", report.json());
    } else {
        print!("{}", report.human());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The knowledge dir.

/// The dir the pages are written to: a fresh temp dir removed on drop, or the user's `--keep` dir.
struct BenchDir {
    path: PathBuf,
    keep: bool,
}

impl BenchDir {
    fn create(keep: Option<&Path>) -> Result<Self, Failure> {
        let fail = |p: &Path, e: std::io::Error| Failure::usage(format!("cannot create {}: {e}", p.display()));
        match keep {
            Some(p) => {
                fs::create_dir_all(p).map_err(|e| fail(p, e))?;
                let mut entries = fs::read_dir(p).map_err(|e| fail(p, e))?;
                if entries.next().is_some() {
                    return Err(Failure::usage(format!(
                        "{} is not empty: --keep needs a new or empty dir",
                        p.display()
                    )));
                }
                Ok(BenchDir { path: p.to_path_buf(), keep: true })
            }
            None => {
                let nanos =
                    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
                let path = std::env::temp_dir().join(format!("articlebot-bench-{}-{nanos}", std::process::id()));
                // `create_dir`, not `create_dir_all`: the dir must be ours, since drop removes it.
                fs::create_dir(&path).map_err(|e| fail(&path, e))?;
                Ok(BenchDir { path, keep: false })
            }
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for BenchDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Measuring.

fn latency_json(l: &Latency) -> serde_json::Value {
    json!({
        "count": l.count,
        "p50_ms": ms(l.p50),
        "p90_ms": ms(l.p90),
        "p99_ms": ms(l.p99),
        "max_ms": ms(l.max),
        "mean_ms": ms(l.mean),
    })
}

/// Per query kind: latency, and how often the page it was made from came first (or, for unknown
/// words, how often the bot answered anyway: it should not).
#[derive(Debug, Clone, Copy, Default)]
struct KindFigures {
    latency: Latency,
    top1: usize,
    top3: usize,
    answered: usize,
}

#[derive(Debug, Default)]
struct Report {
    seed: u64,
    dir: PathBuf,
    kept: bool,
    stats: Option<KbStats>,
    vocabulary: usize,
    postings: usize,
    index_heap: usize,
    generate: Duration,
    load: Duration,
    index: Duration,
    warm_up: usize,
    latency: Latency,
    wall: Duration,
    kinds: Vec<(Kind, KindFigures)>,
    digest: u64,
    /// The slowest queries: (time, kind, text).
    slowest: Vec<(Duration, Kind, String)>,
    before_load: Memory,
    after_load: Memory,
    after_index: Memory,
    semantic: Option<SemanticFigures>,
}

type SemanticSetup = Option<(std::sync::Arc<articlebot_engine::Model>, PathBuf)>;

/// The matcher of a knowledge base: lexical, or hybrid with the model and its vector cache.
fn matcher_of(kb: articlebot_engine::KnowledgeBase, semantic: &SemanticSetup) -> Result<(Matcher, usize), Failure> {
    match semantic {
        None => Ok((Matcher::new(kb), 0)),
        Some((model, cache)) => {
            let progress = std::sync::Mutex::new(Instant::now());
            let mut tell = |done: usize, total: usize| {
                let mut last = progress.lock().unwrap_or_else(|e| e.into_inner());
                if total > 0 && (done == total || last.elapsed() >= Duration::from_secs(30)) {
                    *last = Instant::now();
                    eprintln!("embedding: {done}/{total}");
                }
            };
            let (m, report) = Matcher::with_semantic(kb, model.clone(), Some(cache), &mut tell)
                .map_err(|e| Failure(format!("{}", articlebot_engine::ErrorChain(&e))))?;
            if let Some(e) = &report.cache_error {
                eprintln!("warning: {e}");
            }
            Ok((m, report.embedded))
        }
    }
}

fn measure(
    dir: &Path,
    corpus: &Corpus,
    queries: &[Query],
    warm_up: &[Query],
    semantic: SemanticSetup,
    scan: Scan,
) -> Result<Report, Failure> {
    Memory::reset_peak();
    let before_load = Memory::now();
    let started = Instant::now();
    let loaded = articlebot_engine::load_knowledge(dir).map_err(|e| Failure::usage(e.to_string()))?;
    let load = started.elapsed();
    let after_load = Memory::now();
    let stats = loaded.kb.stats();
    let started = Instant::now();
    let (mut matcher, embedded) = matcher_of(loaded.kb, &semantic)?;
    let index = started.elapsed();
    let mut semantic_figures = None;
    if let Some((model, _)) = &semantic {
        // The cold build above embedded what the cache lacked; a restart reads the cache.
        drop(matcher);
        let started = Instant::now();
        let loaded = articlebot_engine::load_knowledge(dir).map_err(|e| Failure::usage(e.to_string()))?;
        let (warm, again) = matcher_of(loaded.kb, &semantic)?;
        let warm_start = started.elapsed();
        if again > 0 {
            eprintln!("warning: the warm start embedded {again} texts");
        }
        let size = warm.index_size();
        semantic_figures = Some(SemanticFigures {
            units: size.vectors,
            embedded,
            threads: model.document_threads(),
            embed: index,
            warm_start,
            vector_bytes: size.vector_bytes,
            stand_ins: false,
        });
        matcher = warm;
    }
    let after_index = Memory::now();
    let size = matcher.index_size();
    matcher.set_scan(scan);

    for q in warm_up {
        black_box(ask(&matcher, &q.text));
    }
    let mut times = Vec::with_capacity(queries.len());
    let mut outcomes = Vec::with_capacity(queries.len());
    let started = Instant::now();
    for q in queries {
        let t = Instant::now();
        let outcome = ask(&matcher, &q.text);
        times.push(t.elapsed());
        outcomes.push(black_box(outcome));
    }
    let wall = started.elapsed();
    let slowest = slowest(queries, &times, SLOWEST);

    let mut digest = Fnv::default();
    for o in &outcomes {
        digest.outcome(o);
    }
    let kinds = KINDS.iter().map(|&k| (k, kind_figures(&matcher, corpus, k, queries, &outcomes, &times))).collect();
    Ok(Report {
        stats: Some(stats),
        vocabulary: size.words,
        postings: size.postings,
        index_heap: size.heap_bytes,
        load,
        index,
        warm_up: warm_up.len(),
        latency: Latency::of(times),
        wall,
        kinds,
        digest: digest.0.finish(),
        slowest,
        before_load,
        after_load,
        after_index,
        semantic: semantic_figures,
        ..Report::default()
    })
}

/// Slowest queries listed in the report.
const SLOWEST: usize = 5;

/// The `n` slowest queries, slowest first: where to look when the tail grows.
fn slowest(queries: &[Query], times: &[Duration], n: usize) -> Vec<(Duration, Kind, String)> {
    let mut order: Vec<usize> = (0..times.len().min(queries.len())).collect();
    order.sort_unstable_by(|&a, &b| times[b].cmp(&times[a]));
    order.into_iter().take(n).map(|i| (times[i], queries[i].kind, queries[i].text.clone())).collect()
}

/// What the bot does with a message: decide, and snippet the best hit.
fn ask(m: &Matcher, q: &str) -> (Decision, Option<Snippet>) {
    let d = m.decide(q, TOP);
    let snippet = d.hits.first().map(|h| m.snippet(h, &d.terms, SNIPPET_CHARS));
    (d, snippet)
}

fn kind_figures(
    m: &Matcher,
    corpus: &Corpus,
    kind: Kind,
    queries: &[Query],
    outcomes: &[(Decision, Option<Snippet>)],
    times: &[Duration],
) -> KindFigures {
    let mut f = KindFigures::default();
    let mut kind_times = Vec::new();
    for ((q, (d, _)), &t) in queries.iter().zip(outcomes).zip(times).filter(|((q, _), _)| q.kind == kind) {
        kind_times.push(t);
        f.answered += usize::from(d.intent == Intent::Answer);
        let Some(target) = q.target.and_then(|i| corpus.metas.get(i)) else { continue };
        let is_target = |h: &Hit| m.article(h).title == target.title;
        f.top1 += usize::from(d.hits.first().is_some_and(is_target));
        f.top3 += usize::from(d.hits.iter().any(is_target));
    }
    f.latency = Latency::of(kind_times);
    f
}

/// FNV-1a over the results, so two builds can be checked to answer exactly alike.
#[derive(Debug, Default)]
struct Fnv(Fnv1a);

impl Fnv {
    fn add(&mut self, x: u64) {
        for b in x.to_le_bytes() {
            self.0.push(u64::from(b));
        }
    }

    fn outcome(&mut self, (d, snippet): &(Decision, Option<Snippet>)) {
        self.add(d.intent as u64);
        self.add(u64::from(d.confidence.to_bits()));
        for h in &d.hits {
            self.add(u64::from(h.article));
            self.add(h.section.map_or(u64::MAX, |s| s as u64));
            self.add(u64::from(h.score.to_bits()));
        }
        for &t in &d.terms {
            self.add(u64::from(t));
        }
        if let Some(s) = snippet {
            s.text.bytes().for_each(|b| self.add(u64::from(b)));
            for &(a, b) in &s.highlights {
                self.add(a as u64);
                self.add(b as u64);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Reporting.

fn secs(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e3).round() / 1e3
}

fn mib(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

fn percent(n: usize, of: usize) -> f64 {
    if of == 0 {
        0.0
    } else {
        (n as f64 * 1000.0 / of as f64).round() / 10.0
    }
}

impl Report {
    fn qps(&self) -> f64 {
        let s = self.wall.as_secs_f64();
        if s > 0.0 {
            (self.latency.count as f64 / s).round()
        } else {
            0.0
        }
    }

    fn human(&self) -> String {
        let mut o = String::new();
        let stats = self.stats.unwrap_or(KbStats { articles: 0, stubs: 0, sections: 0, synonym_groups: 0 });
        let _ = writeln!(o, "articlebot bench (seed {})", self.seed);
        let _ = writeln!(
            o,
            "knowledge   {} articles, {} stubs, {} sections; {} words indexed, {} postings",
            stats.articles, stats.stubs, stats.sections, self.vocabulary, self.postings
        );
        let _ = writeln!(o, "            {} ({})", self.dir.display(), if self.kept { "kept" } else { "removed" });
        let _ = writeln!(o, "generate    {:>8.3} s", secs(self.generate));
        let _ = writeln!(o, "load        {:>8.3} s", secs(self.load));
        let _ = writeln!(o, "index       {:>8.3} s", secs(self.index));
        let _ = writeln!(o, "load+index  {:>8.3} s", secs(self.load + self.index));
        if let Some(s) = &self.semantic {
            let rate = s.embedded as f64 / s.embed.as_secs_f64().max(1e-9);
            let _ = writeln!(
                o,
                "semantic    {} units; embedded {} in {:.1} s with {} threads ({rate:.1} texts/s); warm start {:.3} s",
                s.units,
                s.embedded,
                s.embed.as_secs_f64(),
                s.threads,
                secs(s.warm_start)
            );
            let _ = writeln!(o, "            vectors {:.1} MiB", s.vector_bytes as f64 / (1024.0 * 1024.0));
            if s.stand_ins {
                let _ =
                    writeln!(o, "            stand-in vectors: the times hold, the top1 figures below mean nothing");
            }
        }
        let l = &self.latency;
        let _ = writeln!(
            o,
            "queries     {} timed after {} warm-up, one thread, decide(top {TOP}) + snippet of the best hit",
            l.count, self.warm_up
        );
        let _ = writeln!(
            o,
            "latency     p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms  mean {:.3} ms  ({} queries/s)",
            ms(l.p50),
            ms(l.p90),
            ms(l.p99),
            ms(l.max),
            ms(l.mean),
            self.qps()
        );
        for (k, f) in &self.kinds {
            let n = f.latency.count;
            let found = if *k == Kind::Unknown {
                format!("answered {:>5.1}%", percent(f.answered, n))
            } else {
                format!("top1 {:>5.1}%  top3 {:>5.1}%", percent(f.top1, n), percent(f.top3, n))
            };
            let _ = writeln!(
                o,
                "  {:<8} {:>5}  p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  {found}",
                k.name(),
                n,
                ms(f.latency.p50),
                ms(f.latency.p99),
                ms(f.latency.max)
            );
        }
        let _ = writeln!(o, "slowest");
        for (t, k, q) in &self.slowest {
            let _ = writeln!(o, "  {:.3} ms  {:<8} {q}", ms(*t), k.name());
        }
        let _ = writeln!(o, "memory      VmRSS / VmHWM");
        for (name, m) in
            [("before load", self.before_load), ("after load", self.after_load), ("after index", self.after_index)]
        {
            let _ = writeln!(o, "  {name:<12} {:>7.1} MiB / {:>7.1} MiB", mib(m.rss_kib), mib(m.hwm_kib));
        }
        let _ = writeln!(o, "  index heap   {:>7.1} MiB (estimate)", self.index_heap as f64 / (1024.0 * 1024.0));
        let _ = writeln!(o, "results     digest {:016x}", self.digest);
        o
    }

    fn json(&self) -> serde_json::Value {
        let mem = |m: Memory| json!({ "rss_mib": mib(m.rss_kib), "hwm_mib": mib(m.hwm_kib) });
        let kinds: serde_json::Map<String, serde_json::Value> = self
            .kinds
            .iter()
            .map(|(k, f)| {
                let n = f.latency.count;
                (
                    k.name().to_string(),
                    json!({
                        "latency": latency_json(&f.latency),
                        "top1": percent(f.top1, n) / 100.0,
                        "top3": percent(f.top3, n) / 100.0,
                        "answered": percent(f.answered, n) / 100.0,
                    }),
                )
            })
            .collect();
        json!({
            "seed": self.seed,
            "dir": self.dir.display().to_string(),
            "kept": self.kept,
            "knowledge": self.stats,
            "vocabulary": self.vocabulary,
            "postings": self.postings,
            "generate_s": secs(self.generate),
            "load_s": secs(self.load),
            "index_s": secs(self.index),
            "load_index_s": secs(self.load + self.index),
            "warm_up": self.warm_up,
            "latency": latency_json(&self.latency),
            "qps": self.qps(),
            "kinds": kinds,
            "slowest": self.slowest.iter().map(|(t, k, q)| json!({ "ms": ms(*t), "kind": k.name(), "query": q })).collect::<Vec<_>>(),
            "memory": {
                "before_load": mem(self.before_load),
                "after_load": mem(self.after_load),
                "after_index": mem(self.after_index),
                "index_heap_mib": (self.index_heap as f64 / (1024.0 * 1024.0) * 10.0).round() / 10.0,
            },
            "digest": format!("{:016x}", self.digest),
            "semantic": self.semantic.as_ref().map(|s| json!({
                "units": s.units,
                "embedded": s.embedded,
                "threads": s.threads,
                "embed_s": secs(s.embed),
                "texts_per_s": s.embedded as f64 / s.embed.as_secs_f64().max(1e-9),
                "warm_start_s": secs(s.warm_start),
                "vector_mib": s.vector_bytes as f64 / (1024.0 * 1024.0),
                "stand_in_vectors": s.stand_ins,
            })),
        })
    }
}
