//! The learning replay: does what users do teach the knowledge base questions it did not know?
//!
//! ```text
//! cargo bench -p articlebot-bench --bench learning_replay -- EVAL_DIR [--model DIR] [--users 2] [--keep DIR] [--json]
//! ```
//!
//! The StackFAQ dev questions (`stackfaq/dev_queries.jsonl` of the eval dir) are split in two
//! halves by FAQ: each FAQ's rephrasings alternate between half A and half B, in file order.
//! Simulated users ask half A of the real [`Engine`] (a real `SledStore` in a temp dir, a temp
//! knowledge dir) through the inputs the bot gives it: a user taps the right did-you-mean choice
//! when it is offered and 👍 a right answer (or the article they picked); after a wrong answer,
//! choices without the right article ("None of these") or a don't-know they ask the FAQ's next
//! half-A rephrasing within a minute, until satisfied or out of rephrasings. Every proposal
//! backed by at least 2 users is then accepted (as a reviewer pressing ✅ would). Half B (other
//! rephrasings of the same FAQs) and the seed dev set (`dev_questions.jsonl`) are scored before
//! and after, as `outcomes.py` counts: answered right, right among the choices, wrong of
//! answered, don't know.
//!
//! The knowledge dir is the repo's `knowledge/` with the StackFAQ pages imported into it: one
//! site holding both, so that a question learned for a StackFAQ article could take a seed
//! question from the repo's articles, and the seed figures would show it.
//!
//! Question strings come from the eval files at run time; none is written here.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use articlebot_engine::{
    Engine, ErrorChain, Input, Intent, Options, Proposal, Reply, SledStore, Store, User, REPHRASE_SECS,
};
use clap::Parser;
use serde_json::{json, Value};
use unicode_normalization::UnicodeNormalization;

/// A failure of the run: printed as one `error:` line, exit code 2.
#[derive(Debug)]
struct Failure(String);

/// Replays simulated users over the StackFAQ dev questions and scores what learning changed
#[derive(Parser, Debug)]
#[command(name = "learning_replay")]
struct ReplayArgs {
    /// Added by `cargo bench`; nothing to do with it
    #[arg(long, hide = true)]
    bench: bool,
    /// The eval dir: stackfaq/pages, stackfaq/dev_queries.jsonl, dev_questions.jsonl
    eval: PathBuf,
    /// Semantic matching with this sentence-transformers model dir (default: lexical only)
    #[arg(long, value_name = "DIR", env = "ARTICLEBOT_MODEL")]
    model: Option<PathBuf>,
    /// Simulated users who start from each half-A rephrasing (2 is the fewest that can meet the
    /// 2-user acceptance rule)
    #[arg(long, default_value_t = 2, value_name = "N")]
    users: u64,
    /// Accept proposals backed by at least this many distinct users
    #[arg(long, default_value_t = 2, value_name = "N")]
    min_users: u64,
    /// Print one JSON object instead of the report
    #[arg(long)]
    json: bool,
    /// Build the knowledge dir and the database in DIR (new or empty) and keep them, to look
    /// at what was learned (`articlebot ask --explain --knowledge DIR/knowledge`)
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
}

/// One evaluation question: its text and the titles that are right (none: out of scope).
#[derive(Debug, Clone)]
struct Question {
    q: String,
    want: Vec<String>,
}

impl Question {
    fn in_scope(&self) -> bool {
        !self.want.is_empty()
    }

    fn is_right(&self, title: &str) -> bool {
        self.want.contains(&fold(title))
    }
}

/// Titles as the eval scripts compare them (kbseed.py's `fold`): NFKC, curly quotes straight,
/// whitespace collapsed, lower case.
fn fold(s: &str) -> String {
    let s: String = s
        .nfkc()
        .map(|c| match c {
            '\u{2019}' | '\u{2018}' => '\'',
            '\u{201c}' | '\u{201d}' => '"',
            c => c,
        })
        .collect();
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

fn read_questions(path: &Path) -> Result<Vec<Question>, Failure> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        // `cargo bench` runs this from crates/bench, which a relative path is taken from.
        let hint =
            if path.is_relative() { " (a relative path is from crates/bench: give an absolute one)" } else { "" };
        Failure(format!("cannot read {}: {e}{hint}", path.display()))
    })?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)
            .map_err(|e| Failure(format!("{}:{}: not a JSON object: {e}", path.display(), n + 1)))?;
        let q = v["q"]
            .as_str()
            .ok_or_else(|| Failure(format!("{}:{}: no \"q\" string", path.display(), n + 1)))?
            .replace('\n', " ");
        let want = match &v["title"] {
            Value::String(t) => vec![fold(t)],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).map(fold).collect(),
            Value::Null => Vec::new(),
            other => return Err(Failure(format!("{}:{}: bad \"title\": {other}", path.display(), n + 1))),
        };
        out.push(Question { q, want });
    }
    Ok(out)
}

/// Half A and half B: per FAQ (expected title), its rephrasings in file order alternate
/// between the halves, the first to A. FAQs keep their order of first appearance.
fn split(questions: &[Question]) -> (Vec<Vec<Question>>, Vec<Question>) {
    let mut order: Vec<String> = Vec::new();
    let mut by_faq: HashMap<String, Vec<Question>> = HashMap::new();
    for q in questions.iter().filter(|q| q.in_scope()) {
        let key = q.want.join("\n");
        if !by_faq.contains_key(&key) {
            order.push(key.clone());
        }
        by_faq.entry(key).or_default().push(q.clone());
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for key in order {
        let (mut faq_a, mut faq_b) = (Vec::new(), Vec::new());
        for (i, q) in by_faq.remove(&key).unwrap_or_default().into_iter().enumerate() {
            if i % 2 == 0 {
                faq_a.push(q);
            } else {
                faq_b.push(q);
            }
        }
        a.push(faq_a);
        b.extend(faq_b);
    }
    (a, b)
}

/// What each question ends in, as `outcomes.py` counts it.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Outcomes {
    in_scope: u64,
    out_of_scope: u64,
    right: u64,
    wrong: u64,
    choices_with: u64,
    choices_without: u64,
    unknown: u64,
    oos_refused: u64,
    oos_answered: u64,
    oos_choices: u64,
}

impl Outcomes {
    fn share(n: u64, of: u64) -> f64 {
        if of == 0 {
            0.0
        } else {
            n as f64 / of as f64
        }
    }

    fn answered_right(&self) -> f64 {
        Self::share(self.right, self.in_scope)
    }

    fn useful(&self) -> f64 {
        Self::share(self.right + self.choices_with, self.in_scope)
    }

    fn choices_with(&self) -> f64 {
        Self::share(self.choices_with, self.in_scope)
    }

    fn wrong_of_answered(&self) -> f64 {
        Self::share(self.wrong, self.right + self.wrong)
    }

    fn dont_know(&self) -> f64 {
        Self::share(self.unknown, self.in_scope)
    }

    fn json(&self) -> Value {
        let r = |x: f64| (x * 10_000.0).round() / 10_000.0;
        json!({
            "in_scope": self.in_scope, "out_of_scope": self.out_of_scope,
            "answered_right": r(self.answered_right()), "useful": r(self.useful()),
            "choices_with_right": r(self.choices_with()),
            "wrong_of_answered": r(self.wrong_of_answered()), "dont_know": r(self.dont_know()),
            "right": self.right, "wrong": self.wrong, "choices_with": self.choices_with,
            "choices_without": self.choices_without, "unknown": self.unknown,
            "oos_refused": self.oos_refused, "oos_answered": self.oos_answered, "oos_choices": self.oos_choices,
        })
    }
}

/// What one question ended in, as `outcomes.py` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    Right,
    Wrong,
    ChoicesWith,
    ChoicesWithout,
    Unknown,
    OosRefused,
    OosAnswered,
    OosChoices,
}

impl End {
    fn name(self) -> &'static str {
        match self {
            End::Right => "right",
            End::Wrong => "wrong",
            End::ChoicesWith => "choices_with",
            End::ChoicesWithout => "choices_without",
            End::Unknown => "unknown",
            End::OosRefused => "oos_refused",
            End::OosAnswered => "oos_answered",
            End::OosChoices => "oos_choices",
        }
    }

    /// Better for the user, the worst first: a wrong answer is worse than a don't-know.
    fn rank(self) -> u8 {
        match self {
            End::Wrong | End::OosAnswered => 0,
            End::ChoicesWithout | End::OosChoices => 1,
            End::Unknown => 2,
            End::ChoicesWith => 3,
            End::Right | End::OosRefused => 4,
        }
    }
}

/// Asks each question as a new user, as `articlebot ask --json --top 3` does, and counts the
/// outcomes. Users `first..` are used (one each), so they never meet the simulated ones.
fn score(e: &Engine<SledStore>, questions: &[Question], first: i64) -> (Outcomes, Vec<End>) {
    let mut c = Outcomes::default();
    let mut ends = Vec::with_capacity(questions.len());
    for (i, q) in questions.iter().enumerate() {
        let out = e.handle(&User { id: first + i as i64, language: None }, Input::Question(q.q.clone()), None, 0);
        let lib = e.library();
        let m = lib.matcher();
        let titles: Vec<&str> = out
            .decision
            .as_ref()
            .map(|d| d.hits.iter().take(3).map(|h| m.article(h).title.as_str()).collect())
            .unwrap_or_default();
        let intent = out.intent().unwrap_or(Intent::Unknown);
        let end = if !q.in_scope() {
            c.out_of_scope += 1;
            match intent {
                Intent::Answer => End::OosAnswered,
                Intent::Suggest => End::OosChoices,
                _ => End::OosRefused,
            }
        } else {
            c.in_scope += 1;
            let first_right = titles.first().is_some_and(|t| q.is_right(t));
            let any_right = titles.iter().any(|t| q.is_right(t));
            match intent {
                Intent::Answer if first_right => End::Right,
                Intent::Answer => End::Wrong,
                Intent::Suggest if any_right => End::ChoicesWith,
                Intent::Suggest => End::ChoicesWithout,
                _ => End::Unknown,
            }
        };
        match end {
            End::Right => c.right += 1,
            End::Wrong => c.wrong += 1,
            End::ChoicesWith => c.choices_with += 1,
            End::ChoicesWithout => c.choices_without += 1,
            End::Unknown => c.unknown += 1,
            End::OosRefused => c.oos_refused += 1,
            End::OosAnswered => c.oos_answered += 1,
            End::OosChoices => c.oos_choices += 1,
        }
        ends.push(end);
    }
    (c, ends)
}

/// Questions whose outcome changed: (better, worse), and each worse one for the report.
fn changes<'q>(questions: &'q [Question], before: &[End], after: &[End]) -> (u64, Vec<(&'q str, End, End)>) {
    let mut better = 0;
    let mut worse = Vec::new();
    for ((q, &b), &a) in questions.iter().zip(before).zip(after) {
        match a.rank().cmp(&b.rank()) {
            std::cmp::Ordering::Greater => better += 1,
            std::cmp::Ordering::Less => worse.push((q.q.as_str(), b, a)),
            std::cmp::Ordering::Equal => {}
        }
    }
    (better, worse)
}

/// What the simulated users did.
#[derive(Debug, Default)]
struct Simulation {
    users: u64,
    questions_asked: u64,
    picks: u64,
    ups: u64,
    rephrases: u64,
    none_of_these: u64,
    /// Users who got the right article in the end.
    satisfied: u64,
}

/// Simulated users over half A. `expected` learns each question's normalised form → its FAQ's
/// titles, to tell a wrong proposal.
fn simulate(
    e: &Engine<SledStore>,
    half_a: &[Vec<Question>],
    users_each: u64,
    expected: &mut HashMap<String, Vec<String>>,
) -> Result<Simulation, Failure> {
    let mut sim = Simulation::default();
    let mut next_user: i64 = 1;
    // Far apart, so that no user's rephrase window reaches the next user's (it could not count:
    // state is per user; only the log is easier to read).
    let mut clock: u64 = 1_700_000_000;
    for faq in half_a {
        for start in 0..faq.len() {
            for _ in 0..users_each {
                let user = User { id: next_user, language: None };
                next_user += 1;
                sim.users += 1;
                clock += 10 * REPHRASE_SECS;
                let mut at = clock;
                let act = |input: Input, at: &mut u64| {
                    // Well within the rephrase window: the user reads, then acts.
                    *at += 5;
                    let out = e.handle(&user, input, None, *at);
                    out.stored.map(|()| (out.reply, out.decision))
                };
                let store_err = |err| Failure(format!("the store failed: {}", ErrorChain(&err)));
                // The FAQ's half-A rephrasings from this one on, each at most once.
                for k in 0..faq.len() {
                    let q = &faq[(start + k) % faq.len()];
                    sim.questions_asked += 1;
                    if k > 0 {
                        sim.rephrases += 1;
                    }
                    let (reply, decision) = act(Input::Question(q.q.clone()), &mut at).map_err(store_err)?;
                    if let Some(d) = &decision {
                        expected.entry(d.normalized.clone()).or_insert_with(|| q.want.clone());
                    }
                    match reply {
                        Reply::Answer(a) if q.is_right(&a.article.title) => {
                            act(Input::Rate { up: true }, &mut at).map_err(store_err)?;
                            sim.ups += 1;
                            sim.satisfied += 1;
                            break;
                        }
                        Reply::Suggest(choices) => match choices.iter().position(|c| q.is_right(&c.topic.title)) {
                            Some(i) => {
                                let (shown, _) = act(Input::Pick(i + 1), &mut at).map_err(store_err)?;
                                sim.picks += 1;
                                if matches!(&shown, Reply::Answer(a) if q.is_right(&a.article.title)) {
                                    act(Input::Rate { up: true }, &mut at).map_err(store_err)?;
                                    sim.ups += 1;
                                }
                                sim.satisfied += 1;
                                break;
                            }
                            None => {
                                act(Input::NoneOfThese, &mut at).map_err(store_err)?;
                                sim.none_of_these += 1;
                            }
                        },
                        // A wrong answer, a don't-know: the next rephrasing, within the minute.
                        _ => {}
                    }
                }
            }
        }
    }
    e.store().flush().map_err(|err| Failure(format!("the store failed: {}", ErrorChain(&err))))?;
    Ok(sim)
}

/// What became of the proposals.
#[derive(Debug, Default)]
struct Review {
    made: u64,
    accepted: u64,
    /// Accepted for an article that is not the question's FAQ.
    wrong: u64,
    /// Whose question the knowledge base answered with the article right after.
    answers_now: u64,
    failed: Vec<String>,
}

fn review(e: &Engine<SledStore>, min_users: u64, expected: &HashMap<String, Vec<String>>) -> Result<Review, Failure> {
    let proposals: Vec<Proposal> =
        e.proposals(min_users).map_err(|err| Failure(format!("proposals: {}", ErrorChain(&err))))?;
    let mut r = Review { made: proposals.len() as u64, ..Review::default() };
    for (n, p) in proposals.iter().enumerate() {
        let lib = e.library();
        let title = lib.kb().by_id(&p.article).map(|i| fold(&lib.kb().articles[i as usize].title));
        drop(lib);
        let right = match (expected.get(&p.normalized), title) {
            (Some(want), Some(t)) => want.contains(&t),
            _ => false,
        };
        match e.accept(p, &p.article, 1_800_000_000 + n as u64) {
            Ok(done) => {
                r.accepted += 1;
                r.wrong += u64::from(!right);
                r.answers_now += u64::from(done.answers_now);
            }
            Err(err) => r.failed.push(format!("{}: {}", p.article, ErrorChain(&err))),
        }
    }
    Ok(r)
}

fn main() -> std::process::ExitCode {
    match run(ReplayArgs::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(Failure(message)) => {
            eprintln!("error: {message}");
            std::process::ExitCode::from(2)
        }
    }
}

fn run(args: ReplayArgs) -> Result<(), Failure> {
    if args.users == 0 || args.min_users == 0 {
        return Err(Failure("--users and --min-users must be at least 1".into()));
    }
    let started = Instant::now();
    let stackfaq = read_questions(&args.eval.join("stackfaq/dev_queries.jsonl"))?;
    let seed = read_questions(&args.eval.join("dev_questions.jsonl"))?;
    let (half_a, half_b) = split(&stackfaq);

    let tmp = tempfile::tempdir().map_err(|e| Failure(format!("cannot make a temp dir: {e}")))?;
    let work = match &args.keep {
        Some(dir) => {
            let empty = std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none());
            if !empty {
                return Err(Failure(format!("--keep {}: not empty (it would be mixed with this run)", dir.display())));
            }
            std::fs::create_dir_all(dir).map_err(|e| Failure(format!("cannot make {}: {e}", dir.display())))?;
            dir.clone()
        }
        None => tmp.path().to_path_buf(),
    };
    let kb = work.join("knowledge");
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../knowledge");
    articlebot_testkit::copy_dir(&shipped, &kb);
    let pages = args.eval.join("stackfaq/pages");
    let imported = articlebot_engine::import(std::slice::from_ref(&pages), &kb).map_err(|errors| {
        Failure(format!(
            "cannot import {}: {}",
            pages.display(),
            errors.first().map(ToString::to_string).unwrap_or_default()
        ))
    })?;
    if !imported.errors.is_empty() {
        return Err(Failure(format!("{} page(s) did not import: {}", imported.errors.len(), imported.errors[0])));
    }
    let options = Options { model: args.model.clone(), cache_dir: Some(work.join("vectors")), ..Options::default() };
    let store = SledStore::open(&work.join("data")).map_err(|e| Failure(format!("store: {}", ErrorChain(&e))))?;
    let (engine, report) =
        Engine::open(&kb, store, options).map_err(|e| Failure(format!("{}: {}", kb.display(), ErrorChain(&e))))?;
    let articles = report.stats.articles + report.stats.stubs;

    let (half_b_before, half_b_ends) = score(&engine, &half_b, 1_000_000_000);
    let (seed_before, seed_ends) = score(&engine, &seed, 1_100_000_000);
    let mut expected = HashMap::new();
    let sim = simulate(&engine, &half_a, args.users, &mut expected)?;
    let evidence = engine.store().evidence().map_err(|e| Failure(format!("evidence: {}", ErrorChain(&e))))?;
    let pairs_with_support = evidence.iter().filter(|p| p.evidence.net() > 0).count();
    let rev = review(&engine, args.min_users, &expected)?;
    let (half_b_after, half_b_ends_after) = score(&engine, &half_b, 1_200_000_000);
    let (seed_after, seed_ends_after) = score(&engine, &seed, 1_300_000_000);
    let (half_b_better, half_b_worse) = changes(&half_b, &half_b_ends, &half_b_ends_after);
    let (seed_better, seed_worse) = changes(&seed, &seed_ends, &seed_ends_after);
    let worse_json = |w: &[(&str, End, End)]| -> Vec<Value> {
        w.iter().map(|(q, b, a)| json!({"q": q, "before": b.name(), "after": a.name()})).collect()
    };
    let half_a_n: usize = half_a.iter().map(Vec::len).sum();
    let faqs: HashSet<String> = stackfaq.iter().map(|q| q.want.join("\n")).collect();

    let figures = json!({
        "mode": if args.model.is_some() { "model" } else { "lexical" },
        "articles": articles,
        "faqs": faqs.len(),
        "half_a": half_a_n,
        "half_b": half_b.len(),
        "users_per_question": args.users,
        "min_users": args.min_users,
        "simulation": {
            "users": sim.users, "questions": sim.questions_asked, "picks": sim.picks, "ups": sim.ups,
            "rephrases": sim.rephrases, "none_of_these": sim.none_of_these, "satisfied": sim.satisfied,
            "pairs_with_support": pairs_with_support,
        },
        "proposals": { "made": rev.made, "accepted": rev.accepted, "wrong": rev.wrong, "answered_now": rev.answers_now,
                       "failed": rev.failed },
        "half_b_before": half_b_before.json(), "half_b_after": half_b_after.json(),
        "seed_before": seed_before.json(), "seed_after": seed_after.json(),
        "half_b_changed": { "better": half_b_better, "worse": worse_json(&half_b_worse) },
        "seed_changed": { "better": seed_better, "worse": worse_json(&seed_worse) },
        "seconds": started.elapsed().as_secs_f64(),
    });
    if args.json {
        println!("{figures}");
        return Ok(());
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "learning replay ({}): {articles} articles (the repo's knowledge/ + {} StackFAQ pages), half A {half_a_n} questions, half B {}",
        figures["mode"].as_str().unwrap_or(""),
        imported.pages,
        half_b.len()
    );
    let _ = writeln!(
        out,
        "simulated: {} users ({} per half-A rephrasing) asked {} questions: {} picks, {} 👍, {} rephrases, {} \"None of these\"; {} found their FAQ",
        sim.users, args.users, sim.questions_asked, sim.picks, sim.ups, sim.rephrases, sim.none_of_these, sim.satisfied
    );
    let _ = writeln!(
        out,
        "proposals (≥{} users): {} made, {} accepted, {} wrong (not the question's FAQ), {} answered outright after",
        args.min_users, rev.made, rev.accepted, rev.wrong, rev.answers_now
    );
    for f in &rev.failed {
        let _ = writeln!(out, "  not accepted: {f}");
    }
    let _ = writeln!(
        out,
        "\n{:<16} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "", "right", "choices", "useful", "wrong/ans", "dont-know"
    );
    for (name, c) in [
        ("half B before", half_b_before),
        ("half B after", half_b_after),
        ("seed before", seed_before),
        ("seed after", seed_after),
    ] {
        let _ = writeln!(
            out,
            "{name:<16} {:>8.3} {:>8.3} {:>8.3} {:>9.3} {:>8.3}{}",
            c.answered_right(),
            c.choices_with(),
            c.useful(),
            c.wrong_of_answered(),
            c.dont_know(),
            if c.out_of_scope > 0 {
                format!(
                    "   out of scope: {} refused, {} answered, {} choices",
                    c.oos_refused, c.oos_answered, c.oos_choices
                )
            } else {
                String::new()
            }
        );
    }
    for (name, better, worse) in [("half B", half_b_better, &half_b_worse), ("seed", seed_better, &seed_worse)] {
        let _ = writeln!(out, "\n{name}: {better} question(s) ended better after learning, {} worse", worse.len());
        for (q, b, a) in worse.iter() {
            let _ = writeln!(out, "  worse: {q:?}: {} → {}", b.name(), a.name());
        }
    }
    let _ = writeln!(out, "\n({:.1} s)", started.elapsed().as_secs_f64());
    print!("{out}");
    Ok(())
}
