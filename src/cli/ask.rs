//! `articlebot ask`: one question answered as a person reads it, or (with `--json`) one JSON
//! object per question for scripts and the evaluation scorer. Both go through the conversation a
//! user of the bot gets: each question is asked by a new user, so answers do not depend on the
//! line before.

use std::borrow::Cow;
use std::io::{self, BufRead, Write};

use articlebot_engine::{Input, Intent, Library, Options, Outcome, Reply, SledStore, User};
use clap::Args;
use serde::Serialize;

use super::model::ModelArgs;
use super::text::{render, Style};
use super::{open_engine, Failure, KnowledgeArg};

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
    /// Show how the question was read and each hit's score with its lexical and semantic parts
    /// (with --json: the matcher's features)
    #[arg(long)]
    explain: bool,
    #[command(flatten)]
    knowledge: KnowledgeArg,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Serialize)]
struct JsonResult<'a> {
    id: &'a str,
    title: &'a str,
    /// 1-based, as people count sections.
    section: Option<usize>,
    heading: Option<&'a str>,
    /// The section with its heading first, as a reader sees it.
    text: Cow<'a, str>,
    /// The fused relevance, 0..1: what orders the results.
    score: f32,
    /// Its parts: how well the words match (0..1), and the best cosine with the article's
    /// units (only with a sentence model).
    lexical: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    semantic: Option<f32>,
    url: Option<String>,
}

#[derive(Serialize)]
struct JsonAnswer<'a> {
    query: &'a str,
    answered: bool,
    /// The matcher's decision: answer, suggest, smalltalk, or unknown (also for input the
    /// matcher did not read: an empty line, a number, "more").
    intent: &'static str,
    /// What the user was shown: `open` (an answer), `suggest`, `unknown`, `smalltalk`,
    /// `no_choice` (a number with nothing to choose from), `nothing` ("more" with nothing to
    /// continue), `empty`...
    reply: &'static str,
    confidence: f32,
    results: Vec<JsonResult<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    explain: Option<Explain>,
}

/// The matcher's features, for tuning and bug reports.
#[derive(Serialize)]
struct Explain {
    /// Per content word `word(weight)=term:how|...` (how: stem, typo1, synonym...; none: exact).
    terms: Vec<String>,
    /// The threshold rule that decided, with its numbers.
    rule: String,
    /// Query terms, known terms, total weight, known weight.
    query: [f32; 4],
    /// Per hit: raw, coverage, article coverage, title similarity, strength, fuzzy share,
    /// title precision, title recall, unit coverage, evidence, and with a sentence model the
    /// cosine with the title (and questions) and with the body.
    hits: Vec<Vec<f32>>,
}

fn round(x: f32) -> f32 {
    (x * 10000.0).round() / 10000.0
}

fn json_line(lib: &Library, query: &str, out: &Outcome, top: usize, explain: bool) -> String {
    let m = lib.matcher();
    let d = out.decision.as_ref();
    let results = d
        .map(|d| d.hits.as_slice())
        .unwrap_or_default()
        .iter()
        .take(top)
        .map(|h| {
            let a = m.article(h);
            let heading = h.section.and_then(|s| a.sections.get(s)).and_then(|s| s.heading.as_deref());
            JsonResult {
                id: &a.id,
                title: &a.title,
                section: h.section.map(|s| s + 1),
                heading,
                text: match heading {
                    Some(heading) => format!("{heading}. {}", m.hit_text(h)).into(),
                    None => m.hit_text(h).into(),
                },
                score: round(h.score),
                lexical: round(h.lexical),
                semantic: h.semantic.map(round),
                url: m.kb().url_of(h.article),
            }
        })
        .collect();
    let explain = d.filter(|_| explain).map(|d| Explain {
        terms: m.describe_query(query),
        rule: d.why(),
        query: [d.query.terms as f32, d.query.known as f32, round(d.query.total_weight), round(d.query.known_weight)],
        hits: d
            .features
            .iter()
            .take(top)
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
                    f.semantic_title,
                    f.semantic_body,
                ]
                .map(round)
                .into_iter()
                .take(if f.semantic_title > -2.0 { 12 } else { 10 })
                .collect()
            })
            .collect(),
    });
    let answer = JsonAnswer {
        query,
        answered: matches!(out.reply, Reply::Answer(_)),
        intent: out.intent().unwrap_or(Intent::Unknown).as_str(),
        reply: out.reply.kind(),
        confidence: round(d.map_or(0.0, |d| d.confidence)),
        results,
        explain,
    };
    serde_json::to_string(&answer).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// How the matcher read the question and scored its best hits, for people: what `/why` says.
fn explain(lib: &Library, query: &str, out: &Outcome, top: usize) -> String {
    match &out.decision {
        Some(d) => lib.matcher().explain(query, d, top),
        None => format!("(not a question: {})", out.reply.kind()),
    }
}

pub fn run(args: AskArgs) -> Result<(), Failure> {
    let store = SledStore::temporary().map_err(|e| Failure::caused("cannot open a temporary database", &e))?;
    let top = args.top.clamp(1, 50);
    // Each question is asked by a new user of a store thrown away at exit: nothing is kept.
    let options = Options { results: top, keeps_questions: false, ..args.model.options() };
    let engine = open_engine(&args.knowledge, store, options)?;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let io_err = |e: io::Error| Failure::caused("cannot write output", &e);
    let answer = |user: i64, question: &str| -> String {
        let outcome = engine.handle(&User { id: user, language: None }, Input::Question(question.to_string()), None, 0);
        if args.json {
            json_line(&engine.library(), question, &outcome, top, args.explain)
        } else if args.explain {
            format!(
                "{}\n\n{}",
                render(&outcome.reply, Style::PLAIN, false),
                explain(&engine.library(), question, &outcome, top)
            )
        } else {
            render(&outcome.reply, Style::PLAIN, false)
        }
    };
    if !args.question.is_empty() {
        let q = args.question.join(" ");
        return writeln!(out, "{}", answer(0, &q)).map_err(io_err);
    }
    let stdin = io::stdin();
    // Lines are read as bytes: one line of invalid UTF-8 must not stop the others.
    for (n, line) in stdin.lock().split(b'\n').enumerate() {
        let bytes = line.map_err(|e| Failure::caused("cannot read stdin", &e))?;
        let line = String::from_utf8_lossy(&bytes);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        let text = answer(n as i64, line);
        if args.json {
            writeln!(out, "{text}").map_err(io_err)?;
        } else {
            writeln!(out, "{text}\n").map_err(io_err)?;
        }
        out.flush().map_err(io_err)?;
    }
    Ok(())
}
