//! The semantic stage's scan on a knowledge dir and questions of your own: how long a question
//! takes (its encoding, the scan, the fusion) with the default scan and with the exact one, and
//! whether the bit first pass changes any decision.
//!
//! ```text
//! cargo bench -p articlebot-bench --bench semantic_scan -- --knowledge DIR --model DIR \
//!     --questions FILE.jsonl [--cache DIR] [--first-pass SHARE] [--repeat N] [--json]
//! ```
//!
//! Questions are JSON lines with a `"q"` field (the eval sets' format) or plain lines. Every
//! timed question is one the matcher has not seen, so each is encoded, as a new question is.
//!
//! `--first-pass SHARE` forces the first pass whatever the size, keeping 1/SHARE of the units:
//! on a knowledge base small enough for real vectors (the StackFAQ pages) this shows what the
//! first pass does to decisions at a ratio harsher than the default's. With the default (auto)
//! the first pass runs only above `FIRST_PASS_ABOVE` units, e.g. on the engine benchmark's
//! 10,000 pages (`engine -- --keep DIR --model M --stand-in-vectors`, then `--knowledge DIR
//! --cache DIR/.vectors` here; stand-in vectors make the times right and the answers
//! meaningless, so compare decisions only with real vectors).

use std::path::PathBuf;
use std::time::Instant;

use articlebot_bench::measure::{ms, Latency};
use articlebot_engine::{Decision, ErrorChain, Matcher, Model, ModelOptions, Scan, FIRST_PASS_ABOVE};
use clap::Parser;
use serde_json::json;

#[derive(Debug)]
struct Failure(String);

/// Times the semantic scan and compares the first pass with the exact scan
#[derive(Parser, Debug)]
#[command(name = "semantic_scan")]
struct ScanArgs {
    /// Added by `cargo bench`; nothing to do with it
    #[arg(long, hide = true)]
    bench: bool,
    /// The knowledge dir
    #[arg(long, value_name = "DIR")]
    knowledge: PathBuf,
    /// The sentence-transformers model dir
    #[arg(long, value_name = "DIR")]
    model: PathBuf,
    /// Questions: JSON lines with "q", or plain lines
    #[arg(long, value_name = "FILE", required = true)]
    questions: Vec<PathBuf>,
    /// Vector cache dir (default: a temp dir, so the knowledge base is embedded first)
    #[arg(long, value_name = "DIR")]
    cache: Option<PathBuf>,
    /// Force the first pass, keeping 1/SHARE of the units, instead of the default scan
    #[arg(long, value_name = "SHARE")]
    first_pass: Option<usize>,
    /// Ask every question this many times with each scan
    #[arg(long, default_value_t = 1, value_name = "N")]
    repeat: usize,
    /// Print one JSON object instead of the report
    #[arg(long)]
    json: bool,
}

fn main() -> std::process::ExitCode {
    match run(ScanArgs::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("error: {message}");
            std::process::ExitCode::from(2)
        }
    }
}

fn read_questions(files: &[PathBuf]) -> Result<Vec<String>, Failure> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| Failure(format!("cannot read {}: {e}", f.display())))?;
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match serde_json::from_str::<serde_json::Value>(line) {
                Ok(v) => match v.get("q").and_then(|q| q.as_str()) {
                    Some(q) => out.push(q.to_string()),
                    None => return Err(Failure(format!("{}: a JSON line without \"q\"", f.display()))),
                },
                Err(_) => out.push(line.to_string()),
            }
        }
    }
    if out.is_empty() {
        return Err(Failure("no questions in the --questions files".into()));
    }
    Ok(out)
}

/// What a user would see differ: the intent, and the articles and sections offered.
fn same(a: &Decision, b: &Decision) -> bool {
    a.intent == b.intent
        && a.hits.len() == b.hits.len()
        && a.hits.iter().zip(&b.hits).all(|(x, y)| x.article == y.article && x.section == y.section)
}

fn run(args: ScanArgs) -> Result<(), Failure> {
    let questions = read_questions(&args.questions)?;
    let loaded = articlebot_engine::load_knowledge(&args.knowledge)
        .map_err(|e| Failure(format!("{}: {}", args.knowledge.display(), ErrorChain(&e))))?;
    let model = Model::load(&args.model, &ModelOptions::default()).map_err(|e| Failure(ErrorChain(&e).to_string()))?;
    let tmp = tempfile::tempdir().map_err(|e| Failure(format!("cannot make a temp dir: {e}")))?;
    let cache = args.cache.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    let started = Instant::now();
    let mut tell = |done: usize, total: usize| {
        if total > 0 && (done == total || done.is_multiple_of(1000)) {
            eprintln!("embedding: {done}/{total}");
        }
    };
    let (mut matcher, report) = Matcher::with_semantic(loaded.kb, model.into(), Some(&cache), &mut tell)
        .map_err(|e| Failure(ErrorChain(&e).to_string()))?;
    let build = started.elapsed();
    let units = report.units;
    let scan = match args.first_pass {
        Some(share) => Scan::FirstPass { share: share.max(1), min: 0 },
        None => Scan::Auto,
    };
    let first_pass_runs = matches!(scan, Scan::FirstPass { .. }) || units > FIRST_PASS_ABOVE;

    // Decisions are compared on the questions as written (the second scan reuses the vector the
    // first one made). For timing, the matcher's recent-question cache must not help: each
    // timed ask is a text it has not seen (the question and a few question marks, one token
    // more or less for either scan, in turn), so every timed question is encoded.
    let mut differ = Vec::new();
    for q in &questions {
        matcher.set_scan(scan);
        let a = matcher.decide(q, 3);
        matcher.set_scan(Scan::Exact);
        let b = matcher.decide(q, 3);
        if !same(&a, &b) {
            differ.push(q.clone());
        }
    }
    let rounds = args.repeat.max(1);
    let mut times = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        for (i, q) in questions.iter().enumerate() {
            for (j, s) in [scan, Scan::Exact].into_iter().enumerate() {
                let marks = 1 + 2 * round + ((i + j) % 2);
                let asked = format!("{q} {}", "?".repeat(marks));
                matcher.set_scan(s);
                let t = Instant::now();
                std::hint::black_box(matcher.decide(&asked, 3));
                times[j].push(t.elapsed());
            }
        }
    }
    // The question's encoding alone: the floor under both scans.
    let mut encoding = Vec::new();
    if let Some(model) = matcher.model().cloned() {
        for (i, q) in questions.iter().enumerate() {
            let asked = format!("{q} {}", "?".repeat(1 + 2 * rounds + i % 2));
            let t = Instant::now();
            std::hint::black_box(model.embed_query(&asked).map_err(|e| Failure(ErrorChain(&e).to_string()))?);
            encoding.push(t.elapsed());
        }
    }
    let encoding = Latency::of(encoding);
    let [with_scan, exact] = times.map(Latency::of);
    let lat = |l: &Latency| json!({"p50_ms": ms(l.p50), "p90_ms": ms(l.p90), "p99_ms": ms(l.p99), "max_ms": ms(l.max), "mean_ms": ms(l.mean)});
    let scan_name = match scan {
        Scan::FirstPass { share, .. } => format!("first pass forced, 1/{share} of the units kept"),
        _ if first_pass_runs => format!("auto: first pass (over {FIRST_PASS_ABOVE} units)"),
        _ => format!("auto: exact (up to {FIRST_PASS_ABOVE} units)"),
    };
    if args.json {
        let out = json!({
            "units": units,
            "embedded": report.embedded,
            "build_s": build.as_secs_f64(),
            "questions": questions.len(),
            "scan": scan_name,
            "latency": lat(&with_scan),
            "exact_latency": lat(&exact),
            "encoding_latency": lat(&encoding),
            "decisions_differing": differ.len(),
            "differing": differ,
        });
        println!("{out}");
    } else {
        let row = |name: &str, l: &Latency| {
            println!(
                "  {name:<36} p50 {:.2} ms  p90 {:.2}  p99 {:.2}  max {:.2}  mean {:.2}",
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.max),
                ms(l.mean)
            )
        };
        println!(
            "semantic scan: {} units ({} embedded now, {:.1} s), {} questions × {rounds}",
            units,
            report.embedded,
            build.as_secs_f64(),
            questions.len()
        );
        row(&scan_name, &with_scan);
        row("exact scan", &exact);
        row("the question's encoding alone", &encoding);
        println!("  decisions that differ from the exact scan's: {} of {}", differ.len(), questions.len());
        for q in differ.iter().take(10) {
            println!("    {q}");
        }
    }
    Ok(())
}
