//! `articlebot ask`: one question answered as a person reads it, or (with `--json`) one JSON
//! object per question for scripts and the evaluation scorer.

use std::io::{self, BufRead, Write};

use clap::Args;
use serde::Serialize;

use super::text::{render, Style};
use super::{load_matcher, Failure, KnowledgeArg};
use crate::conversation::{Engine, Input, SledStore, User};
use crate::matching::{Decision, Intent, Matcher};

#[derive(Args, Debug)]
pub struct AskArgs {
    /// The question; without it, questions are read from stdin, one per line
    question: Vec<String>,
    /// Print one JSON object per question
    #[arg(long)]
    json: bool,
    /// Results per question
    #[arg(long, default_value_t = 3)]
    top: usize,
    /// Add the matcher's features to JSON output
    #[arg(long)]
    explain: bool,
    #[command(flatten)]
    knowledge: KnowledgeArg,
}

#[derive(Serialize)]
struct JsonResult<'a> {
    id: &'a str,
    title: &'a str,
    section: Option<usize>,
    heading: Option<&'a str>,
    /// The section with its heading first, as a reader sees it.
    text: std::borrow::Cow<'a, str>,
    score: f32,
    url: Option<String>,
}

#[derive(Serialize)]
struct JsonAnswer<'a> {
    query: &'a str,
    answered: bool,
    intent: Intent,
    confidence: f32,
    results: Vec<JsonResult<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    explain: Option<Explain>,
}

/// The matcher's features, for tuning and bug reports.
#[derive(Serialize)]
struct Explain {
    terms: Vec<String>,
    /// Query terms, known terms, total weight, known weight.
    query: [f32; 4],
    /// Per hit: raw, coverage, article coverage, title similarity, strength, fuzzy share,
    /// title precision, title recall, unit coverage, evidence.
    hits: Vec<[f32; 10]>,
}

fn round(x: f32) -> f32 {
    (x * 10000.0).round() / 10000.0
}

fn json_line(m: &Matcher, query: &str, d: &Decision, explain: bool) -> String {
    let results = d
        .hits
        .iter()
        .map(|h| {
            let a = m.article(h);
            JsonResult {
                id: &a.id,
                title: &a.title,
                section: h.section.map(|s| s + 1),
                heading: h.section.and_then(|s| a.sections.get(s)).and_then(|s| s.heading.as_deref()),
                text: match h.section.and_then(|s| a.sections.get(s)).and_then(|s| s.heading.as_deref()) {
                    Some(heading) => format!("{heading}. {}", m.hit_text(h)).into(),
                    None => m.hit_text(h).into(),
                },
                score: round(h.score),
                url: m.kb().url_of(h.article),
            }
        })
        .collect();
    let out = JsonAnswer {
        query,
        answered: d.answered(),
        intent: d.intent,
        confidence: round(d.confidence),
        results,
        explain: if explain {
            Some(Explain {
                terms: m.describe_query(query),
                query: [
                    d.query.terms as f32,
                    d.query.known as f32,
                    round(d.query.total_weight),
                    round(d.query.known_weight),
                ],
                hits: d
                    .features
                    .iter()
                    .map(|f| {
                        [
                            f.raw,
                            f.coverage,
                            f.article_coverage,
                            f.title_sim,
                            f.strength,
                            f.fuzzy_share,
                            f.title_p,
                            f.title_r,
                            f.unit_coverage,
                            f.evidence,
                        ]
                        .map(round)
                    })
                    .collect(),
            })
        } else {
            None
        },
    };
    serde_json::to_string(&out).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

pub fn run(args: AskArgs) -> Result<(), Failure> {
    let store = SledStore::temporary().map_err(|e| Failure::usage(format!("cannot open a temporary database: {e}")))?;
    let engine = Engine::new(load_matcher(&args.knowledge.dir)?, store);
    let library = engine.library();
    let matcher = &library.matcher;
    let top = args.top.clamp(1, 50);
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let io_err = |e: io::Error| Failure::usage(format!("cannot write output: {e}"));
    if args.question.is_empty() {
        let stdin = io::stdin();
        // Lines are read as bytes: one line of invalid UTF-8 must not stop the others.
        for (n, line) in stdin.lock().split(b'\n').enumerate() {
            let bytes = line.map_err(|e| Failure::usage(format!("cannot read stdin: {e}")))?;
            let line = String::from_utf8_lossy(&bytes);
            let line = line.strip_suffix('\r').unwrap_or(&line);
            if args.json {
                let d = matcher.decide(line, top);
                writeln!(out, "{}", json_line(matcher, line, &d, args.explain)).map_err(io_err)?;
            } else {
                writeln!(out, "{}\n", human(&engine, n as i64, line)).map_err(io_err)?;
            }
            out.flush().map_err(io_err)?;
        }
        return Ok(());
    }
    let q = args.question.join(" ");
    if args.json {
        let d = matcher.decide(&q, top);
        writeln!(out, "{}", json_line(matcher, &q, &d, args.explain)).map_err(io_err)?;
    } else {
        writeln!(out, "{}", human(&engine, 0, &q)).map_err(io_err)?;
    }
    Ok(())
}

/// The answer as a person reads it: the reply the bot gives a first-time user (each question
/// is asked by a new user, so answers do not depend on the previous line).
fn human(engine: &Engine<SledStore>, user: i64, question: &str) -> String {
    let out = engine.handle(&User { id: user, language: None }, Input::Question(question.to_string()), None, 0);
    render(&out.reply, Style::PLAIN, false)
}
