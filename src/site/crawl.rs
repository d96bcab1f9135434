//! Fetching a site for `import`, politely and within bounds: robots.txt honoured, a per-host rate
//! (and robots.txt's `Crawl-delay` when slower), a concurrency limit, page and byte caps, a
//! timeout per request, redirects followed only within the site, conditional requests with the
//! ETag/Last-Modified of the last run. Sitemaps (and sitemap indexes) and RSS/Atom feeds list the
//! pages. Every page that cannot be had is reported with its URL and why; none stops the rest.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::header::{HeaderMap, CONTENT_TYPE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED, LOCATION};
use reqwest::StatusCode;
use url::Url;

use articlebot_engine::FetchedPage;

/// How hard `import` may work a site.
#[derive(Debug, Clone)]
pub struct Politeness {
    /// Requests per second to one host (robots.txt's Crawl-delay may make it slower).
    pub rate: f64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Pages fetched at most in one run.
    pub max_pages: usize,
    /// Largest page read; a bigger one is reported, not cut.
    pub max_page_bytes: u64,
    /// Bytes read at most in one run, over all requests.
    pub max_bytes: u64,
    /// Time for one request, from connecting to the last byte.
    pub timeout: Duration,
    pub user_agent: String,
}

/// The validators of a page's last fetch, sent back so that an unchanged page costs a 304.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Validators {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

/// What happened to one page.
#[derive(Debug)]
pub enum Fetched {
    Page(FetchedPage, Validators),
    NotModified,
    /// 404 or 410: the page is gone from the site.
    Gone(String),
    Failed(String),
}

/// One listed page and where it was listed (the input that led to it).
#[derive(Debug, Clone)]
pub struct Listed {
    pub url: String,
    pub source: String,
}

/// Why a listing (a sitemap, a feed) or a source could not be read in full.
#[derive(Debug, Default)]
pub struct Discovery {
    pub pages: Vec<Listed>,
    /// Sources every listing of which was read: only for those may a page missing from the list
    /// be taken as gone.
    pub complete: HashSet<String>,
    pub failures: Vec<(String, String)>,
    /// Input URLs that were pages themselves, fetched already while finding out what they were.
    pub prefetched: HashMap<String, Fetched>,
}

/// A client and its per-host state for one run.
pub struct Crawler {
    client: reqwest::Client,
    robots_client: reqwest::Client,
    opts: Politeness,
    /// Per host: when its last request went.
    last_sent: Mutex<HashMap<String, Instant>>,
    /// Per host: its robots.txt rules, fetched once.
    robots: tokio::sync::Mutex<HashMap<String, Arc<Robots>>>,
    bytes: AtomicU64,
}

const MAX_REDIRECTS: usize = 5;
/// Sitemap indexes nest; past this depth the site is looping.
const MAX_SITEMAP_DEPTH: usize = 3;
/// The largest sitemap or feed read (the sitemap protocol's own limit is 50 MB).
const MAX_LISTING_BYTES: u64 = 50 * 1024 * 1024;
const MAX_ROBOTS_BYTES: u64 = 512 * 1024;

impl Crawler {
    pub fn new(opts: Politeness) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .user_agent(opts.user_agent.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout)
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        let robots_client = reqwest::Client::builder()
            .user_agent(opts.user_agent.clone())
            .redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))
            .timeout(opts.timeout)
            .build()
            .map_err(|e| format!("cannot make an HTTP client: {e}"))?;
        Ok(Crawler {
            client,
            robots_client,
            opts,
            last_sent: Mutex::new(HashMap::new()),
            robots: tokio::sync::Mutex::new(HashMap::new()),
            bytes: AtomicU64::new(0),
        })
    }

    /// Waits for the host's turn: a request to one host goes `1/rate` after the previous one
    /// went (or robots.txt's Crawl-delay, when longer). Counted from when a request really went,
    /// not from a slot reserved in advance, so a request a busy machine woke late does not bring
    /// the next one closer to it. A wake within the timer's own lateness counts as on time, so
    /// that a high `--rate` is not slowed by the timer's millisecond on every request.
    async fn wait_turn(&self, host: &str, delay: Duration) {
        let interval = Duration::from_secs_f64(1.0 / self.opts.rate.max(1e-3)).max(delay);
        let mut turn = None;
        loop {
            let next = {
                let mut last = self.last_sent.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                match last.get(host).map(|&went| went + interval) {
                    Some(next) if next > now => next,
                    Some(next) => {
                        // Waited for this turn and woke just after it: the turn is when it went.
                        let went = if turn == Some(next) && now - next <= TIMER_LATENESS { next } else { now };
                        last.insert(host.to_string(), went);
                        return;
                    }
                    None => {
                        last.insert(host.to_string(), now);
                        return;
                    }
                }
            };
            turn = Some(next);
            tokio::time::sleep_until(next.into()).await;
        }
    }

    async fn robots_for(&self, url: &Url) -> Arc<Robots> {
        let host = host_key(url);
        let mut cache = self.robots.lock().await;
        if let Some(r) = cache.get(&host) {
            return r.clone();
        }
        let mut robots_url = url.clone();
        robots_url.set_path("/robots.txt");
        robots_url.set_query(None);
        robots_url.set_fragment(None);
        self.wait_turn(&rate_key(url), Duration::ZERO).await;
        // robots.txt's own redirects are followed (RFC 9309 §2.3.1.2), unlike pages'.
        let robots = match self.robots_client.get(robots_url.clone()).send().await {
            Ok(resp) if resp.status().is_success() => match read_capped(resp, MAX_ROBOTS_BYTES, &self.bytes).await {
                Ok(body) => Robots::parse(&String::from_utf8_lossy(&body), "articlebot"),
                Err(why) => Robots::unreachable(format!("robots.txt could not be read ({why})")),
            },
            // No robots.txt (4xx) means no rules (RFC 9309 §2.3.1.3).
            Ok(resp) if resp.status().is_client_error() => Robots::default(),
            // A server error means the site may be overloaded: crawl nothing (RFC 9309 §2.3.1.4).
            Ok(resp) => Robots::unreachable(format!("robots.txt answered HTTP {}", resp.status())),
            Err(e) => Robots::unreachable(format!("robots.txt could not be fetched ({})", describe(&e, &self.opts))),
        };
        let robots = Arc::new(robots);
        cache.insert(host, robots.clone());
        robots
    }

    /// One GET, politely: robots.txt, the host's rate, redirects within the site, the caps.
    /// `Ok((final url, response))` for a non-redirect answer.
    async fn get(&self, url: &str, validators: Option<&Validators>) -> Result<(Url, reqwest::Response), String> {
        let mut current = Url::parse(url).map_err(|e| format!("not a valid URL ({e})"))?;
        let start = current.clone();
        for _ in 0..=MAX_REDIRECTS {
            if !matches!(current.scheme(), "http" | "https") {
                return Err(format!("not an http(s) URL: {current}"));
            }
            if !same_site(&start, &current) {
                return Err(format!("redirects to another site ({current}), which is not followed"));
            }
            let robots = self.robots_for(&current).await;
            if let Some(why) = &robots.unreachable {
                return Err(format!("{why}: the site is not crawled"));
            }
            if !robots.allows(&path_and_query(&current)) {
                return Err("disallowed by the site's robots.txt".to_string());
            }
            if self.bytes.load(Ordering::Relaxed) >= self.opts.max_bytes {
                return Err(format!(
                    "not fetched: the run's byte cap ({} bytes, --max-bytes) was reached",
                    self.opts.max_bytes
                ));
            }
            self.wait_turn(&rate_key(&current), robots.crawl_delay).await;
            let mut req = self.client.get(current.clone());
            if let Some(v) = validators {
                if let Some(e) = &v.etag {
                    req = req.header(IF_NONE_MATCH, e);
                }
                if let Some(m) = &v.last_modified {
                    req = req.header(IF_MODIFIED_SINCE, m);
                }
            }
            let resp = req.send().await.map_err(|e| describe(&e, &self.opts))?;
            if resp.status().is_redirection() && resp.status() != StatusCode::NOT_MODIFIED {
                let Some(loc) = resp.headers().get(LOCATION).and_then(|l| l.to_str().ok()) else {
                    return Err(format!("HTTP {} without a Location to go to", resp.status()));
                };
                current = current.join(loc).map_err(|e| format!("redirects to a bad URL `{loc}` ({e})"))?;
                continue;
            }
            return Ok((current, resp));
        }
        Err(format!("more than {MAX_REDIRECTS} redirects"))
    }

    /// Fetches a page (HTML).
    pub async fn fetch_page(&self, url: &str, validators: Option<&Validators>) -> Fetched {
        match self.get(url, validators).await {
            Ok((final_url, resp)) => self.page_from(final_url, resp).await,
            Err(why) => Fetched::Failed(why),
        }
    }

    async fn page_from(&self, final_url: Url, resp: reqwest::Response) -> Fetched {
        let status = resp.status();
        if status == StatusCode::NOT_MODIFIED {
            return Fetched::NotModified;
        }
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            return Fetched::Gone(format!("HTTP {status}"));
        }
        if !status.is_success() {
            return Fetched::Failed(format!("HTTP {status}"));
        }
        let content_type = header(resp.headers(), CONTENT_TYPE);
        if let Some(ct) = &content_type {
            let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
            if !(mime.is_empty() || mime == "text/html" || mime == "application/xhtml+xml") {
                return Fetched::Failed(format!("not an HTML page (Content-Type {mime})"));
            }
        }
        let validators =
            Validators { etag: header(resp.headers(), ETAG), last_modified: header(resp.headers(), LAST_MODIFIED) };
        match read_capped(resp, self.opts.max_page_bytes, &self.bytes).await {
            Ok(body) => Fetched::Page(FetchedPage { url: final_url.to_string(), body, content_type }, validators),
            Err(why) => Fetched::Failed(why),
        }
    }

    /// Finds the pages behind the inputs: a sitemap (or index) or feed lists pages, anything else
    /// is a page itself (and is kept, fetched). Local sitemap/feed files come as text.
    pub async fn discover(
        &self,
        urls: &[String],
        local_listings: &[(String, String)],
        state: &HashMap<String, Validators>,
    ) -> Discovery {
        let mut d = Discovery::default();
        for (name, text) in local_listings {
            match parse_listing(text, None) {
                Ok(Listing::Pages(pages)) => {
                    d.pages.extend(pages.into_iter().map(|url| Listed { url, source: name.clone() }));
                    d.complete.insert(name.clone());
                }
                Ok(Listing::Sitemaps(maps)) => {
                    let complete = self.walk_sitemaps(name, maps, 1, &mut d).await;
                    if complete {
                        d.complete.insert(name.clone());
                    }
                }
                Err(why) => d.failures.push((name.clone(), why)),
            }
        }
        for url in urls {
            match self.get(url, state.get(url)).await {
                Err(why) => d.failures.push((url.clone(), why)),
                Ok((final_url, resp)) => {
                    let ct = header(resp.headers(), CONTENT_TYPE).unwrap_or_default().to_ascii_lowercase();
                    let looks_xml = (ct.contains("xml") && !ct.contains("xhtml")) || ct.contains("gzip");
                    let mime = ct.split(';').next().unwrap_or("").trim().to_string();
                    let html = mime.is_empty() || mime == "text/html" || mime == "application/xhtml+xml";
                    let body = if !looks_xml && !html && resp.status().is_success() {
                        // Not HTML by its type (sitemaps are often served as text/plain): a listing
                        // if its content is one.
                        match read_capped(resp, MAX_LISTING_BYTES, &self.bytes).await {
                            Ok(b) if is_listing(&b) => Ok(b),
                            Ok(_) => Err(format!("not an HTML page, sitemap or feed (Content-Type {mime})")),
                            Err(why) => Err(why),
                        }
                    } else if !looks_xml || !resp.status().is_success() {
                        let f = self.page_from(final_url.clone(), resp).await;
                        match f {
                            // A sitemap served as text/html: the content says what it is.
                            Fetched::Page(p, _) if is_listing(&p.body) => Ok(p.body),
                            f => {
                                d.pages.push(Listed { url: url.clone(), source: url.clone() });
                                d.prefetched.insert(url.clone(), f);
                                continue;
                            }
                        }
                    } else {
                        read_capped(resp, MAX_LISTING_BYTES, &self.bytes).await
                    };
                    match body {
                        Err(why) => d.failures.push((url.clone(), why)),
                        Ok(body) => match parse_listing_bytes(&body, Some(&final_url)) {
                            Ok(Listing::Pages(pages)) => {
                                d.pages.extend(pages.into_iter().map(|p| Listed { url: p, source: url.clone() }));
                                d.complete.insert(url.clone());
                            }
                            Ok(Listing::Sitemaps(maps)) => {
                                if self.walk_sitemaps(url, maps, 1, &mut d).await {
                                    d.complete.insert(url.clone());
                                }
                            }
                            Err(why) => d.failures.push((url.clone(), why)),
                        },
                    }
                }
            }
        }
        // A page listed twice (by a sitemap and a feed) is fetched once.
        let mut seen = HashSet::new();
        d.pages.retain(|p| seen.insert(p.url.clone()));
        d
    }

    /// The sitemaps of an index, depth first; whether all of them were read.
    async fn walk_sitemaps(&self, source: &str, maps: Vec<String>, depth: usize, d: &mut Discovery) -> bool {
        let mut complete = true;
        for map in maps {
            if depth > MAX_SITEMAP_DEPTH {
                d.failures.push((map, format!("sitemap indexes nested more than {MAX_SITEMAP_DEPTH} deep")));
                complete = false;
                continue;
            }
            let listing = match self.get(&map, None).await {
                Err(why) => Err(why),
                Ok((final_url, resp)) if resp.status().is_success() => {
                    match read_capped(resp, MAX_LISTING_BYTES, &self.bytes).await {
                        Ok(body) => parse_listing_bytes(&body, Some(&final_url)),
                        Err(why) => Err(why),
                    }
                }
                Ok((_, resp)) => Err(format!("HTTP {}", resp.status())),
            };
            match listing {
                Ok(Listing::Pages(pages)) => {
                    d.pages.extend(pages.into_iter().map(|url| Listed { url, source: source.to_string() }))
                }
                Ok(Listing::Sitemaps(more)) => {
                    complete &= Box::pin(self.walk_sitemaps(source, more, depth + 1, d)).await;
                }
                Err(why) => {
                    d.failures.push((map, why));
                    complete = false;
                }
            }
        }
        complete
    }

    /// Fetches the pages, `concurrency` at a time, up to `max_pages`; the rest are reported.
    pub async fn fetch_all(
        &self,
        pages: Vec<Listed>,
        state: &HashMap<String, Validators>,
        mut prefetched: HashMap<String, Fetched>,
        progress: &indicatif::ProgressBar,
    ) -> Vec<(Listed, Fetched)> {
        let mut out = Vec::new();
        let mut todo = Vec::new();
        for (i, p) in pages.into_iter().enumerate() {
            if i >= self.opts.max_pages {
                let why = format!("not fetched: the run's page cap ({}, --max-pages) was reached", self.opts.max_pages);
                out.push((p, Fetched::Failed(why)));
            } else if let Some(f) = prefetched.remove(&p.url) {
                progress.inc(1);
                out.push((p, f));
            } else {
                todo.push(p);
            }
        }
        let fetched: Vec<(Listed, Fetched)> = futures::stream::iter(todo)
            .map(|p| async move {
                let f = self.fetch_page(&p.url, state.get(&p.url)).await;
                progress.inc(1);
                (p, f)
            })
            .buffered(self.opts.concurrency.max(1))
            .collect()
            .await;
        out.splice(0..0, fetched);
        out
    }
}

fn header(h: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    h.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// Whether a redirect from `a` to `b` stays on the site: the same host (give or take `www.`),
/// on the same port or moving between http and https.
fn same_site(a: &Url, b: &Url) -> bool {
    let host = |u: &Url| u.host_str().map(|h| h.trim_start_matches("www.").to_ascii_lowercase());
    host(a) == host(b) && (a.port_or_known_default() == b.port_or_known_default() || a.scheme() != b.scheme())
}

/// How late a timer may wake with nothing wrong: tokio's timer counts whole milliseconds.
const TIMER_LATENESS: Duration = Duration::from_millis(2);

/// The host a rate applies to (with its port: two servers on one machine are two hosts).
fn rate_key(u: &Url) -> String {
    format!("{}:{}", u.host_str().unwrap_or(""), u.port_or_known_default().unwrap_or(0))
}

/// Scheme, host and port: the origin a robots.txt speaks for (RFC 9309 §2.3).
fn host_key(u: &Url) -> String {
    format!("{}://{}:{}", u.scheme(), u.host_str().unwrap_or(""), u.port_or_known_default().unwrap_or(0))
}

fn path_and_query(u: &Url) -> String {
    match u.query() {
        Some(q) => format!("{}?{q}", u.path()),
        None => u.path().to_string(),
    }
}

/// A request's failure in words: a timeout says how long was waited.
fn describe(e: &reqwest::Error, opts: &Politeness) -> String {
    if e.is_timeout() {
        format!("no complete answer within {:?} (--timeout)", opts.timeout)
    } else if e.is_connect() {
        format!("cannot connect: {}", articlebot_engine::ErrorChain(e))
    } else {
        articlebot_engine::ErrorChain(e).to_string()
    }
}

/// Reads a body up to `cap` bytes; more is an error rather than a page cut in half.
async fn read_capped(mut resp: reqwest::Response, cap: u64, total: &AtomicU64) -> Result<Vec<u8>, String> {
    if let Some(len) = resp.content_length().filter(|l| *l > cap) {
        return Err(format!("too large: {len} bytes, over the cap of {cap} (--max-page-bytes)"));
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                total.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                body.extend_from_slice(&chunk);
                if body.len() as u64 > cap {
                    return Err(format!("too large: over the cap of {cap} bytes (--max-page-bytes)"));
                }
            }
            Ok(None) => return Ok(body),
            Err(e) if e.is_timeout() => return Err("the answer did not finish within the timeout (--timeout)".into()),
            Err(e) => return Err(format!("the answer broke off: {}", articlebot_engine::ErrorChain(&e))),
        }
    }
}

/// What a sitemap or feed lists.
#[derive(Debug, PartialEq, Eq)]
pub enum Listing {
    Pages(Vec<String>),
    /// A sitemap index: more sitemaps.
    Sitemaps(Vec<String>),
}

/// Whether a body is a sitemap or feed rather than a page, by its first element.
fn is_listing(body: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&body[..body.len().min(512)]).to_ascii_lowercase();
    let head = head.trim_start_matches('\u{feff}').trim_start();
    head.starts_with("<?xml")
        || ["<urlset", "<sitemapindex", "<rss", "<feed", "<rdf:rdf"].iter().any(|t| head.starts_with(t))
}

/// [`parse_listing`] of a body as fetched: a gzip-compressed sitemap is named as such.
fn parse_listing_bytes(body: &[u8], base: Option<&Url>) -> Result<Listing, String> {
    if body.starts_with(&[0x1f, 0x8b]) {
        return Err("a gzip-compressed sitemap, which is not read: list the uncompressed sitemap instead".into());
    }
    parse_listing(&String::from_utf8_lossy(body), base)
}

/// Reads a sitemap (`urlset`), a sitemap index, an RSS (0.9x, 1.0 or 2.0) or an Atom feed.
pub fn parse_listing(text: &str, base: Option<&Url>) -> Result<Listing, String> {
    let doc =
        roxmltree::Document::parse(text.trim_start_matches('\u{feff}')).map_err(|e| format!("not valid XML: {e}"))?;
    let root = doc.root_element();
    let name = |n: roxmltree::Node| n.tag_name().name().to_ascii_lowercase();
    let text_of = |n: roxmltree::Node| n.text().map(str::trim).filter(|t| !t.is_empty()).map(str::to_string);
    let resolve = |s: String| -> Option<String> {
        let u = match base {
            Some(b) => b.join(&s).ok()?,
            None => Url::parse(&s).ok()?,
        };
        matches!(u.scheme(), "http" | "https").then(|| u.to_string())
    };
    let children_named = |n: roxmltree::Node<'_, '_>, tag: &str| -> Vec<String> {
        n.children()
            .filter(|c| c.is_element() && name(*c) == tag)
            .filter_map(|c| c.children().find(|l| l.is_element() && name(*l) == "loc").and_then(text_of))
            .filter_map(resolve)
            .collect()
    };
    match name(root).as_str() {
        "urlset" => Ok(Listing::Pages(children_named(root, "url"))),
        "sitemapindex" => Ok(Listing::Sitemaps(children_named(root, "sitemap"))),
        "rss" | "rdf" => {
            let items = root.descendants().filter(|n| n.is_element() && name(*n) == "item");
            Ok(Listing::Pages(
                items
                    .filter_map(|i| i.children().find(|c| c.is_element() && name(*c) == "link").and_then(text_of))
                    .filter_map(resolve)
                    .collect(),
            ))
        }
        "feed" => {
            let entries = root.children().filter(|n| n.is_element() && name(*n) == "entry");
            Ok(Listing::Pages(
                entries
                    .filter_map(|e| {
                        e.children()
                            .filter(|c| c.is_element() && name(*c) == "link")
                            .find(|l| l.attribute("rel").is_none_or(|r| r == "alternate"))
                            .and_then(|l| l.attribute("href"))
                            .map(str::to_string)
                    })
                    .filter_map(resolve)
                    .collect(),
            ))
        }
        other => Err(format!("not a sitemap or feed (its root element is <{other}>)")),
    }
}

/// A site's robots.txt rules for one user agent (RFC 9309): the longest matching rule decides,
/// `allow` winning a tie; `*` matches anything, `$` ends a pattern.
#[derive(Debug, Default)]
pub struct Robots {
    rules: Vec<(bool, String)>,
    crawl_delay: Duration,
    /// Set when robots.txt could not be had for a reason that means "crawl nothing".
    unreachable: Option<String>,
}

impl Robots {
    fn unreachable(why: String) -> Self {
        Robots { unreachable: Some(why), ..Default::default() }
    }

    /// The rules of the group naming `agent`, else of the `*` group.
    pub fn parse(text: &str, agent: &str) -> Self {
        #[derive(Default)]
        struct Group {
            agents: Vec<String>,
            rules: Vec<(bool, String)>,
            delay: Option<f64>,
        }
        let mut groups: Vec<Group> = Vec::new();
        let mut in_agents = false;
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let Some((k, v)) = line.split_once(':') else { continue };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "user-agent" => {
                    if !in_agents {
                        groups.push(Group::default());
                        in_agents = true;
                    }
                    if let Some(g) = groups.last_mut() {
                        g.agents.push(v.to_ascii_lowercase());
                    }
                }
                "allow" | "disallow" => {
                    in_agents = false;
                    if let Some(g) = groups.last_mut() {
                        if !v.is_empty() {
                            g.rules.push((k == "allow", v.to_string()));
                        }
                    }
                }
                "crawl-delay" => {
                    in_agents = false;
                    if let Some(g) = groups.last_mut() {
                        g.delay = v.parse::<f64>().ok().filter(|d| d.is_finite() && *d >= 0.0);
                    }
                }
                _ => {}
            }
        }
        let agent = agent.to_ascii_lowercase();
        let mine: Vec<&Group> = groups.iter().filter(|g| g.agents.iter().any(|a| a == &agent)).collect();
        let chosen =
            if mine.is_empty() { groups.iter().filter(|g| g.agents.iter().any(|a| a == "*")).collect() } else { mine };
        Robots {
            rules: chosen.iter().flat_map(|g| g.rules.iter().cloned()).collect(),
            crawl_delay: Duration::from_secs_f64(chosen.iter().filter_map(|g| g.delay).fold(0.0, f64::max).min(60.0)),
            unreachable: None,
        }
    }

    pub fn allows(&self, path: &str) -> bool {
        let mut best: Option<(usize, bool)> = None;
        for (allow, pattern) in &self.rules {
            if pattern_matches(pattern, path) {
                let len = pattern.len();
                if best.is_none_or(|(l, a)| len > l || (len == l && *allow && !a)) {
                    best = Some((len, *allow));
                }
            }
        }
        best.is_none_or(|(_, allow)| allow)
    }
}

/// A robots.txt path pattern against a path: a prefix match, with `*` for any run of characters
/// and a final `$` anchoring the end.
fn pattern_matches(pattern: &str, path: &str) -> bool {
    let (pattern, anchored) = match pattern.strip_suffix('$') {
        Some(p) => (p, true),
        None => (pattern, false),
    };
    let parts: Vec<&str> = pattern.split('*').collect();
    let mut pos = 0;
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            if !path.starts_with(part) {
                return false;
            }
            pos = part.len();
            continue;
        }
        if i == parts.len() - 1 && anchored {
            return path.len() >= pos + part.len() && path.ends_with(part);
        }
        match path[pos..].find(part) {
            Some(at) => pos += at + part.len(),
            None => return false,
        }
    }
    !anchored || pos == path.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robots_rules() {
        let r = Robots::parse(
            "User-agent: *\nDisallow: /\n\nUser-agent: articlebot\nUser-agent: other\nDisallow: /private\nAllow: /private/ok\nDisallow: /*.pdf$\nCrawl-delay: 2\n",
            "articlebot",
        );
        assert!(r.allows("/blog/post"));
        assert!(!r.allows("/private/x"));
        assert!(r.allows("/private/ok/y"));
        assert!(!r.allows("/files/a.pdf"));
        assert!(r.allows("/files/a.pdf?x=1"));
        assert_eq!(r.crawl_delay, Duration::from_secs(2));
        let star = Robots::parse("User-agent: *\nDisallow: /admin\nDisallow:\n", "articlebot");
        assert!(!star.allows("/admin/x") && star.allows("/x"));
        assert!(Robots::parse("", "articlebot").allows("/anything"));
    }

    #[test]
    fn redirects_stay_on_the_site() {
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(same_site(&u("http://a.example/x"), &u("https://www.a.example/y")));
        assert!(same_site(&u("http://127.0.0.1:8080/x"), &u("http://127.0.0.1:8080/y")));
        assert!(!same_site(&u("http://127.0.0.1:8080/x"), &u("http://127.0.0.1:9090/y")));
        assert!(!same_site(&u("https://a.example/x"), &u("https://b.example/x")));
    }

    #[test]
    fn listings() {
        let base = Url::parse("https://s.example/sitemap.xml").unwrap();
        let sm = "<?xml version='1.0'?><urlset xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'>\
                  <url><loc> https://s.example/a </loc></url><url><loc>/b</loc></url><url><loc>ftp://x/y</loc></url></urlset>";
        assert_eq!(
            parse_listing(sm, Some(&base)).unwrap(),
            Listing::Pages(vec!["https://s.example/a".into(), "https://s.example/b".into()])
        );
        let idx = "<sitemapindex xmlns='http://www.sitemaps.org/schemas/sitemap/0.9'><sitemap><loc>https://s.example/s1.xml</loc></sitemap></sitemapindex>";
        assert_eq!(parse_listing(idx, None).unwrap(), Listing::Sitemaps(vec!["https://s.example/s1.xml".into()]));
        let rss =
            "<rss version='2.0'><channel><title>x</title><item><link>https://s.example/r</link></item></channel></rss>";
        assert_eq!(parse_listing(rss, None).unwrap(), Listing::Pages(vec!["https://s.example/r".into()]));
        let atom = "<feed xmlns='http://www.w3.org/2005/Atom'><entry><link rel='edit' href='https://s.example/e'/>\
                    <link href='https://s.example/at'/></entry></feed>";
        assert_eq!(parse_listing(atom, None).unwrap(), Listing::Pages(vec!["https://s.example/at".into()]));
        assert!(parse_listing("<html><body/></html>", None).unwrap_err().contains("<html>"));
        assert!(parse_listing("<urlset><url>", None).unwrap_err().contains("not valid XML"));
    }
}
