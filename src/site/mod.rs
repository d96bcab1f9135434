//! Importing a site: the crawler (`crawl`: robots.txt, the per-host rate, caps, sitemaps and
//! feeds) and the state that keeps an import in sync. What each fetch learnt (its ETag and
//! Last-Modified, the article it became, the input that listed it) is kept in
//! `DIR/.import-state.json`, so that the next run fetches only what changed and can tell which
//! pages disappeared. Both front ends use it: `articlebot import` runs an import, `serve
//! --sync-every` runs the last one again on a timer; neither reaches into the other.

mod crawl;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};

use articlebot_engine::{count, import_site, Diagnostic, ImportReport, SiteInputs};

use crawl::{Crawler, Fetched, Politeness, Validators};

/// How `import` treats a site it fetches from; kept in the state file so that
/// `serve --sync-every` fetches as the import did.
#[derive(Args, Debug, Clone, Serialize, Deserialize)]
pub struct CrawlArgs {
    /// Requests per second to one site (robots.txt's Crawl-delay may make it slower)
    #[arg(long, default_value_t = 1.0, value_name = "PER_SECOND")]
    pub rate: f64,
    /// Requests in flight at once
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub concurrency: u32,
    /// Pages fetched at most in one run
    #[arg(long, default_value_t = 5000, value_name = "N")]
    pub max_pages: usize,
    /// Largest page read, in bytes
    #[arg(long, default_value_t = 5 * 1024 * 1024, value_name = "BYTES")]
    pub max_page_bytes: u64,
    /// Bytes read at most in one run
    #[arg(long, default_value_t = 1024 * 1024 * 1024, value_name = "BYTES")]
    pub max_bytes: u64,
    /// Seconds one request may take, from connecting to the last byte
    #[arg(long, default_value_t = 30.0, value_name = "SECONDS")]
    pub timeout: f64,
    /// Remove the articles of pages that are gone from the site (404, 410, or no longer listed)
    #[arg(long)]
    pub prune: bool,
}

impl Default for CrawlArgs {
    fn default() -> Self {
        CrawlArgs {
            rate: 1.0,
            concurrency: 4,
            max_pages: 5000,
            max_page_bytes: 5 * 1024 * 1024,
            max_bytes: 1024 * 1024 * 1024,
            timeout: 30.0,
            prune: false,
        }
    }
}

const STATE_FILE: &str = ".import-state.json";

/// What the last runs learnt about a site, in the knowledge dir.
#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    /// The inputs and settings of the last run, for `serve --sync-every`.
    #[serde(default)]
    inputs: Vec<String>,
    #[serde(default)]
    settings: Option<CrawlArgs>,
    /// Page URL (as listed) → what it became.
    #[serde(default)]
    pages: BTreeMap<String, PageState>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PageState {
    id: String,
    /// The input that listed it: a page missing from that input's listing is gone.
    source: String,
    #[serde(flatten)]
    validators: Validators,
}

impl State {
    fn read(out: &Path) -> Result<State, String> {
        let path = out.join(STATE_FILE);
        match std::fs::read_to_string(&path) {
            Ok(t) => serde_json::from_str(&t)
                .map_err(|e| format!("{}: unreadable ({e}); delete it to start over", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(State::default()),
            Err(e) => Err(format!("{}: cannot read: {e}", path.display())),
        }
    }

    fn write(&self, out: &Path) -> Result<(), String> {
        let path = out.join(STATE_FILE);
        let tmp = out.join(format!("{STATE_FILE}.tmp"));
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, text + "\n")
            .and_then(|_| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("{}: cannot write: {e}", path.display()))
    }
}

/// One run's outcome, for people.
#[derive(Debug, Default)]
pub struct Outcome {
    pub report: ImportReport,
    /// Pages that could not be fetched, with why (page files' problems are in `report.errors`).
    pub failures: Vec<(String, String)>,
    pub not_modified: usize,
    /// Pages gone from the site, and their articles.
    pub gone: Vec<(String, String, String)>,
    pub removed: Vec<String>,
    pub stubbed: Vec<String>,
    pub fetched: usize,
    pub elapsed: Duration,
}

impl Outcome {
    pub fn problems(&self) -> usize {
        self.report.errors.len() + self.failures.len()
    }
}

fn is_url(s: &str) -> bool {
    let l = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://")
}

/// The User-Agent: articlebot, its version, and the bot it gathers for (site.toml's bot_name).
fn user_agent(out: &Path) -> String {
    let bot =
        articlebot_engine::load_knowledge(out).map(|l| l.kb.site.bot_name).unwrap_or_else(|_| "Articlebot".into());
    let bot: String = bot.chars().filter(|c| !c.is_control() && !matches!(c, '(' | ')')).collect();
    format!("articlebot/{} (+{bot}; imports this site's articles for its FAQ bot)", env!("CARGO_PKG_VERSION"))
}

/// Imports `inputs` into `out`: files and dirs directly, URLs through the crawler.
pub async fn import_inputs(inputs: &[String], out: &Path, args: &CrawlArgs) -> Result<Outcome, Vec<String>> {
    let started = std::time::Instant::now();
    if !(args.rate > 0.0 && args.rate.is_finite()) {
        return Err(vec![format!("--rate {} must be a number of requests per second above 0", args.rate)]);
    }
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        return Err(vec![format!("--timeout {} must be a number of seconds above 0", args.timeout)]);
    }
    let mut files = Vec::new();
    let mut urls = Vec::new();
    let mut listings = Vec::new();
    let mut outcome = Outcome::default();
    for i in inputs {
        if is_url(i) {
            urls.push(i.clone());
        } else if Path::new(i).extension().is_some_and(|e| e.eq_ignore_ascii_case("xml")) {
            match std::fs::read_to_string(i) {
                Ok(t) => listings.push((i.clone(), t)),
                Err(e) => outcome.failures.push((i.clone(), format!("cannot read: {e}"))),
            }
        } else {
            files.push(PathBuf::from(i));
        }
    }
    let web = !urls.is_empty() || !listings.is_empty();
    let mut state = if web { State::read(out).map_err(|e| vec![e])? } else { State::default() };
    let mut fetched_pages = Vec::new();
    let mut fetched_meta = Vec::new();
    let mut prune_ids = Vec::new();
    if web {
        let crawler = Crawler::new(Politeness {
            rate: args.rate,
            concurrency: args.concurrency as usize,
            max_pages: args.max_pages,
            max_page_bytes: args.max_page_bytes,
            max_bytes: args.max_bytes,
            timeout: Duration::from_secs_f64(args.timeout),
            user_agent: user_agent(out),
        })
        .map_err(|e| vec![e])?;
        let validators: HashMap<String, Validators> =
            state.pages.iter().map(|(u, p)| (u.clone(), p.validators.clone())).collect();
        let discovery = crawler.discover(&urls, &listings, &validators).await;
        outcome.failures.extend(discovery.failures);
        let progress = indicatif::ProgressBar::new(discovery.pages.len().min(args.max_pages) as u64);
        progress.set_style(
            indicatif::ProgressStyle::with_template("fetching {pos}/{len} pages {wide_bar} {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        let listed: HashSet<String> = discovery.pages.iter().map(|p| p.url.clone()).collect();
        let results = crawler.fetch_all(discovery.pages, &validators, discovery.prefetched, &progress).await;
        progress.finish_and_clear();
        let mut gone_urls = HashSet::new();
        for (page, f) in results {
            match f {
                Fetched::Page(p, v) => {
                    outcome.fetched += 1;
                    fetched_pages.push(p);
                    fetched_meta.push((page, v));
                }
                Fetched::NotModified => outcome.not_modified += 1,
                Fetched::Gone(why) => {
                    gone_urls.insert(page.url.clone());
                    if !state.pages.contains_key(&page.url) {
                        outcome.failures.push((page.url, format!("{why}: no such page")));
                    }
                }
                Fetched::Failed(why) => outcome.failures.push((page.url, why)),
            }
        }
        for (url, p) in &state.pages {
            let why = if gone_urls.contains(url) {
                "the site answers 404/410 for it".to_string()
            } else if discovery.complete.contains(&p.source) && !listed.contains(url) {
                format!("{} no longer lists it", p.source)
            } else {
                continue;
            };
            outcome.gone.push((url.clone(), p.id.clone(), why));
        }
        if args.prune {
            for (url, id, _) in &outcome.gone {
                // Another page of the site may still be the same article (a moved page).
                let still = state.pages.iter().any(|(u, p)| p.id == *id && !outcome.gone.iter().any(|g| g.0 == *u));
                if !still {
                    prune_ids.push(id.clone());
                }
                state.pages.remove(url);
            }
        }
    }
    let site = SiteInputs { files: &files, fetched: &fetched_pages, prune: &prune_ids };
    let out_dir = out.to_path_buf();
    let result = tokio::task::block_in_place(|| import_site(&site, &out_dir))
        .map_err(|errors| errors.iter().map(Diagnostic::to_string).collect::<Vec<_>>())?;
    outcome.report = result.report;
    outcome.removed = result.removed;
    outcome.stubbed = result.stubbed;
    if web {
        for ((listed, validators), id) in fetched_meta.into_iter().zip(result.fetched_ids) {
            if let Some(id) = id {
                state.pages.insert(listed.url, PageState { id, source: listed.source, validators });
            }
        }
        state.inputs = inputs
            .iter()
            .map(|i| {
                if is_url(i) {
                    i.clone()
                } else {
                    std::path::absolute(i).map_or_else(|_| i.clone(), |p| p.display().to_string())
                }
            })
            .collect();
        state.settings = Some(args.clone());
        if out.exists() {
            state.write(out).map_err(|e| vec![e])?;
        }
    }
    outcome.elapsed = started.elapsed();
    Ok(outcome)
}

/// Runs the last import of `out` again (its inputs are in the state file), for
/// `serve --sync-every`. `Ok(None)` when `out` was never imported from the web.
pub async fn sync(out: &Path) -> Result<Option<Outcome>, Vec<String>> {
    let state = State::read(out).map_err(|e| vec![e])?;
    if state.inputs.is_empty() {
        return Ok(None);
    }
    let settings = state.settings.clone().unwrap_or_default();
    import_inputs(&state.inputs, out, &settings).await.map(Some)
}

/// Whether `out` was imported from the web, so that `serve --sync-every` has something to do.
pub fn syncable(out: &Path) -> Result<bool, String> {
    State::read(out).map(|s| !s.inputs.is_empty())
}

/// `6h`, `30m`, `90s`, `1d` (or plain seconds) as a duration of at least a second.
pub fn parse_every(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.find(|c: char| !c.is_ascii_digit() && c != '.').map_or((s, ""), |i| s.split_at(i));
    let n: f64 = num.parse().map_err(|_| format!("`{s}` is not a duration like 6h, 30m or 90s"))?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        u => return Err(format!("`{u}` in `{s}` is not a unit: use s, m, h or d")),
    };
    if !(1.0..=365.0 * 86400.0).contains(&secs) {
        return Err(format!("`{s}` must be between 1s and 365d"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// The lines that tell what a run did.
pub fn summary(o: &Outcome, out: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    for e in &o.report.errors {
        lines.push(format!("error: {e}"));
    }
    for (url, why) in &o.failures {
        lines.push(format!("error: {url}: {why}"));
    }
    for (url, id, why) in &o.gone {
        let what = if o.removed.contains(id) {
            "removed"
        } else if o.stubbed.contains(id) {
            "kept as a stub: other articles link to it"
        } else {
            "kept: run with --prune to remove it"
        };
        lines.push(format!("gone: {url} (article `{id}`): {why}; {what}"));
    }
    let r = &o.report;
    if r.pages > 0 {
        lines.push(format!(
            "imported {} into {}: {} created, {} updated, {} unchanged ({})",
            count(r.pages, "page"),
            out.display(),
            r.created,
            r.updated,
            r.unchanged,
            count(r.stubs, "stub")
        ));
    }
    if o.fetched + o.not_modified > 0 {
        let secs = o.elapsed.as_secs_f64();
        lines.push(format!(
            "fetched {} in {:.1} s ({:.1} pages/s), {} not modified since the last run",
            count(o.fetched, "page"),
            secs,
            (o.fetched + o.not_modified) as f64 / secs.max(1e-3),
            o.not_modified
        ));
    }
    lines
}
