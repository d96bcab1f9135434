//! `articlebot import URL...` against a site served on 127.0.0.1 from tests/data/site: a sitemap
//! index and a feed list pages in three layouts; robots.txt, a redirect within the site and one
//! off it, a 404, a 500, a slow page, a huge page and broken HTML are each handled and reported
//! without stopping the rest; a second run fetches only what changed (ETag / Last-Modified) and
//! reports the pages that disappeared, which `--prune` removes; the per-host rate is kept.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tempfile::TempDir;

use articlebot_engine::load_knowledge;

#[derive(Clone)]
enum Route {
    File { body: Vec<u8>, content_type: &'static str },
    Status(u16),
    Redirect(String),
    Slow(Duration),
}

#[derive(Debug, Clone)]
struct Hit {
    path: String,
    user_agent: String,
    at: Instant,
    status: u16,
}

#[derive(Default)]
struct Site {
    routes: Mutex<HashMap<String, Route>>,
    hits: Mutex<Vec<Hit>>,
}

/// A strong validator from the content, like a static file server's.
fn etag(body: &[u8]) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in body {
        h = (h ^ *b as u64).wrapping_mul(0x100000001b3);
    }
    format!("\"{h:016x}\"")
}

async fn serve(State(site): State<Arc<Site>>, uri: Uri, headers: HeaderMap) -> Response {
    // When the request arrived, not when its answer was ready: the rate is about requests.
    let arrived = Instant::now();
    let path = uri.path().to_string();
    let route = site.routes.lock().unwrap().get(&path).cloned();
    let ua = headers.get("user-agent").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let resp = match route {
        None => StatusCode::NOT_FOUND.into_response(),
        Some(Route::Status(s)) => StatusCode::from_u16(s).unwrap().into_response(),
        Some(Route::Redirect(to)) => {
            Response::builder().status(301).header("location", to).body(Body::empty()).unwrap()
        }
        Some(Route::Slow(d)) => {
            tokio::time::sleep(d).await;
            Response::builder()
                .header("content-type", "text/html")
                .body(Body::from("<h1>Slow</h1><p>Late.</p>"))
                .unwrap()
        }
        Some(Route::File { body, content_type }) => {
            let tag = etag(&body);
            if headers.get("if-none-match").and_then(|v| v.to_str().ok()) == Some(tag.as_str()) {
                Response::builder().status(304).header("etag", tag).body(Body::empty()).unwrap()
            } else {
                Response::builder()
                    .header("content-type", content_type)
                    .header("etag", tag)
                    .header("last-modified", "Mon, 02 Nov 2026 10:00:00 GMT")
                    .body(Body::from(body))
                    .unwrap()
            }
        }
    };
    site.hits.lock().unwrap().push(Hit { path, user_agent: ua, at: arrived, status: resp.status().as_u16() });
    resp
}

struct Running {
    base: String,
    site: Arc<Site>,
}

impl Running {
    fn put(&self, path: &str, body: impl Into<Vec<u8>>, content_type: &'static str) {
        let body: Vec<u8> = body.into();
        let body = match String::from_utf8(body) {
            Ok(t) => t.replace("{{base}}", &self.base).into_bytes(),
            Err(e) => e.into_bytes(),
        };
        self.site.routes.lock().unwrap().insert(path.to_string(), Route::File { body, content_type });
    }
    fn route(&self, path: &str, r: Route) {
        self.site.routes.lock().unwrap().insert(path.to_string(), r);
    }
    fn remove(&self, path: &str) {
        self.site.routes.lock().unwrap().remove(path);
    }
    fn hits(&self) -> Vec<Hit> {
        self.site.hits.lock().unwrap().clone()
    }
    fn clear_hits(&self) {
        self.site.hits.lock().unwrap().clear();
    }
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/site")
}

/// Serves tests/data/site, plus the routes that are not files.
async fn start() -> Running {
    let site = Arc::new(Site::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(serve).with_state(site.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let running = Running { base, site };
    fn walk(root: &Path, dir: &Path, r: &Running) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, r);
                continue;
            }
            let rel = format!("/{}", p.strip_prefix(root).unwrap().display());
            let ct = match p.extension().and_then(|e| e.to_str()) {
                Some("html") => "text/html; charset=utf-8",
                Some("xml") => "application/xml",
                _ => "text/plain",
            };
            r.put(&rel, std::fs::read(&p).unwrap(), ct);
        }
    }
    walk(&data_dir(), &data_dir(), &running);
    running.route("/old/black-tea", Route::Redirect("/blog/black-tea.html".into()));
    running.route("/blog/error.html", Route::Status(500));
    running.route("/blog/slow.html", Route::Slow(Duration::from_secs(5)));
    // Over the 1 MiB page cap the tests set.
    let huge = format!("<h1>Huge</h1>{}", "<p>Padding text for a page far too large.</p>".repeat(40_000));
    running.put("/blog/huge.html", huge, "text/html");
    running.route("/blog/moved-away", Route::Redirect("http://192.0.2.1/elsewhere".into()));
    running
}

async fn import(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_articlebot"))
            .arg("import")
            .args(&args)
            .env_remove("ARTICLEBOT_KNOWLEDGE")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn fast(out: &Path, mut inputs: Vec<String>) -> Vec<String> {
    inputs.extend(["--out".into(), out.display().to_string()]);
    // High rate, short timeout and a 1 MiB page cap: a fast test over the same rules.
    inputs.extend(["--rate", "500", "--timeout", "1", "--max-page-bytes", "1048576"].map(String::from));
    inputs
}

fn s(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_site_is_imported_from_its_sitemap_index_and_feed() {
    let site = start().await;
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("kb");
    let o = import(fast(&out, vec![site.url("/sitemap_index.xml"), site.url("/feed.xml")])).await;
    let stdout = s(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}{}", s(&o.stderr));

    // Each page that could not be had, with its URL and why; the others imported.
    let error = |path: &str, why: &str| {
        let line = format!("error: {}: ", site.url(path));
        assert!(stdout.lines().any(|l| l.starts_with(&line) && l.contains(why)), "{path}: {why}\n{stdout}");
    };
    error("/blog/missing.html", "404");
    error("/blog/error.html", "HTTP 500");
    error("/blog/slow.html", "no complete answer within 1s");
    error("/blog/huge.html", "too large");
    error("/blog/moved-away", "redirects to another site (http://192.0.2.1/elsewhere)");
    error("/drafts/secret.html", "disallowed by the site's robots.txt");
    assert!(stdout.contains("imported 8 pages into"), "{stdout}");
    assert!(stdout.contains("check: ok: 8 articles"), "{stdout}");
    assert!(s(&o.stderr).contains("error: 6 pages could not be imported"), "{}", s(&o.stderr));

    let kb = load_knowledge(&out).expect("the import loads").kb;
    let get = |id: &str| kb.article(kb.by_id(id).unwrap_or_else(|| panic!("no `{id}` in {stdout}"))).unwrap();
    let sections = |id: &str| -> Vec<(Option<String>, String)> {
        get(id).sections.iter().map(|s| (s.heading.clone(), s.text.clone())).collect()
    };

    // The blog theme: chrome, share buttons, comments and sidebar left out.
    let green = get("how-to-brew-green-tea");
    assert_eq!(green.url.as_deref(), Some(site.url("/blog/green-tea.html").as_str()));
    assert_eq!(
        sections("how-to-brew-green-tea"),
        vec![
            (None, "Green tea turns bitter when the water is too hot — keep it below boiling.".into()),
            (Some("Water".into()), "Use water at 80\u{a0}°C.\nSoft water is best.".into()),
            (Some("Steeping time".into()), "• Sencha: 1 minute\n• Gyokuro: 2 minutes".into()),
        ]
    );
    let ids = |v: &[u32]| v.iter().map(|&i| kb.article(i).unwrap().id.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&green.related), vec!["what-is-oolong-tea", "how-to-whisk-matcha"]);
    assert_eq!(green.next.map(|n| kb.article(n).unwrap().id.as_str()), Some("what-is-oolong-tea"));
    let oolong = get("what-is-oolong-tea");
    assert!(!oolong.is_stub(), "the full page replaced the stub its link made");
    assert_eq!(oolong.prev.map(|n| kb.article(n).unwrap().id.as_str()), Some("how-to-brew-green-tea"));
    assert_eq!(oolong.sections.len(), 2, "no headings: a section per paragraph");
    // From the feed only.
    assert!(!get("how-to-whisk-matcha").is_stub());
    // The redirect within the site: the page it leads to, under its own url.
    assert_eq!(get("black-tea-basics").url.as_deref(), Some(site.url("/blog/black-tea.html").as_str()));
    // Broken HTML is repaired, not refused.
    assert_eq!(
        sections("storing-pu-erh"),
        vec![
            (None, "Keep pu-erh away from light & strong smells".into()),
            (None, "It likes air, not damp.".into()),
            (None, "Humidity | 60–70%".into()),
            (None, "Ageing takes years".into()),
        ]
    );

    // The docs theme: main, not the table of contents; headings; code kept as written.
    let install = sections("installing-the-kettle");
    assert_eq!(install[0], (None, "Unpack the kettle and remove all stickers.".into()));
    assert_eq!(install[1], (Some("Power".into()), "Plug it into a grounded socket. Use 230\u{a0}V only.".into()));
    assert_eq!(
        install[2],
        (
            Some("Cables".into()),
            "Do not use an extension cable longer than 2\u{a0}m.\n\nkettle --self-test\nkettle --descale".into()
        )
    );
    let install = get("installing-the-kettle");
    assert_eq!(install.next.map(|n| kb.article(n).unwrap().id.as_str()), Some("configuring-the-kettle"));
    assert_eq!(sections("configuring-the-kettle")[1].1, "1. Press Set.\n2. Choose 70, 80 or 100 °C.");

    // The seed-shaped page: `<<:`/`>>:` lines and the Recommend block with teasers.
    let knee = get("why-do-my-knees-hurt-after-running");
    assert_eq!(knee.sections.len(), 2);
    assert_eq!(kb.article(knee.prev.unwrap()).unwrap().title, "What should I do if I can\u{2019}t play basketball?");
    let sit = get("what-is-the-correct-way-to-do-sit-ups");
    assert!(sit.is_stub());
    assert_eq!(sit.teaser.as_deref(), Some("Exercise is a lifestyle for many people nowadays,..."));
    assert_eq!(sit.url.as_deref(), Some(site.url("/sit-ups.html").as_str()));

    // Politeness: robots.txt read once, nothing it forbids asked for, articlebot named.
    let hits = site.hits();
    assert_eq!(hits.iter().filter(|h| h.path == "/robots.txt").count(), 1);
    assert!(!hits.iter().any(|h| h.path.starts_with("/drafts/")));
    assert!(
        hits.iter().all(|h| h.user_agent.starts_with("articlebot/") && h.user_agent.contains("Articlebot")),
        "{hits:?}"
    );

    // The state file keeps what the next run needs.
    let state = std::fs::read_to_string(out.join(".import-state.json")).unwrap();
    assert!(state.contains("\"etag\"") && state.contains("how-to-brew-green-tea"), "{state}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_run_fetches_only_what_changed_and_prune_removes_what_is_gone() {
    let site = start().await;
    // Only the pages that work, so that the runs' outcomes are about the changes.
    site.put(
        "/sitemap-blog.xml",
        "<urlset><url><loc>{{base}}/blog/green-tea.html</loc></url><url><loc>{{base}}/blog/oolong.html</loc></url>\
         <url><loc>{{base}}/blog/black-tea.html</loc></url></urlset>",
        "application/xml",
    );
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("kb");
    let input = vec![site.url("/sitemap_index.xml")];
    let o = import(fast(&out, input.clone())).await;
    assert_eq!(o.status.code(), Some(0), "{}{}", s(&o.stdout), s(&o.stderr));

    // Nothing changed: every page answers 304 and no file is touched.
    site.clear_hits();
    let o = import(fast(&out, input.clone())).await;
    let stdout = s(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}{}", s(&o.stderr));
    assert!(stdout.contains("fetched 0 pages") && stdout.contains("6 not modified"), "{stdout}");
    let pages: Vec<Hit> = site.hits().into_iter().filter(|h| h.path.ends_with(".html")).collect();
    assert_eq!(pages.len(), 6);
    assert!(pages.iter().all(|h| h.status == 304), "{pages:?}");

    // One page changes, one is dropped from the sitemap, one answers 404.
    let green = std::fs::read_to_string(data_dir().join("blog/green-tea.html")).unwrap();
    site.put("/blog/green-tea.html", green.replace("keep it below boiling", "keep it at 80 degrees"), "text/html");
    site.put(
        "/sitemap-blog.xml",
        "<urlset><url><loc>{{base}}/blog/green-tea.html</loc></url><url><loc>{{base}}/blog/oolong.html</loc></url></urlset>",
        "application/xml",
    );
    site.remove("/docs/configure.html");
    let o = import(fast(&out, input.clone())).await;
    let stdout = s(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}{}", s(&o.stderr));
    assert!(stdout.contains("imported 1 page") && stdout.contains("3 not modified"), "{stdout}");
    let gone = |stdout: &str, path: &str, what: &str| {
        assert!(
            stdout.lines().any(|l| l.starts_with(&format!("gone: {}", site.url(path))) && l.contains(what)),
            "{path}: {what}\n{stdout}"
        );
    };
    gone(&stdout, "/blog/black-tea.html", "no longer lists it; kept: run with --prune");
    gone(&stdout, "/docs/configure.html", "404/410");
    let kb = load_knowledge(&out).unwrap().kb;
    let g = kb.article(kb.by_id("how-to-brew-green-tea").unwrap()).unwrap();
    assert!(g.sections[0].text.contains("keep it at 80 degrees"));
    assert!(out.join("articles/black-tea-basics.md").exists());

    // --prune: an article nothing links to goes; one still linked becomes a stub.
    let mut args = fast(&out, input);
    args.push("--prune".into());
    let o = import(args).await;
    let stdout = s(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{stdout}{}", s(&o.stderr));
    assert!(!out.join("articles/black-tea-basics.md").exists(), "{stdout}");
    gone(&stdout, "/blog/black-tea.html", "removed");
    gone(&stdout, "/docs/configure.html", "kept as a stub");
    let kb = load_knowledge(&out).unwrap().kb;
    assert!(kb.by_id("black-tea-basics").is_none());
    assert!(kb.article(kb.by_id("configuring-the-kettle").unwrap()).unwrap().is_stub());
    // And once pruned they are not reported again.
    let o = import(fast(&out, vec![site.url("/sitemap_index.xml")])).await;
    assert!(!s(&o.stdout).contains("gone:"), "{}", s(&o.stdout));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_per_host_rate_is_kept() {
    let site = start().await;
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("kb");
    let mut args = vec![site.url("/sitemap-docs.xml"), "--out".into(), out.display().to_string()];
    args.extend(["--rate", "2", "--concurrency", "4"].map(String::from));
    let o = import(args).await;
    assert_eq!(o.status.code(), Some(0), "{}{}", s(&o.stdout), s(&o.stderr));
    let hits = site.hits();
    // robots.txt, the sitemap, three pages: five requests 500 ms apart. The crawler spaces the
    // moments it sends; arrivals carry the scheduling and connection jitter of a busy machine
    // (CI saw one request arrive 110 ms late), which can shorten one gap by what delayed the
    // request before it, never the whole run. Without the limit the four concurrent page
    // requests would arrive within milliseconds of each other.
    assert_eq!(hits.len(), 5, "{hits:?}");
    for w in hits.windows(2) {
        let gap = w[1].at - w[0].at;
        assert!(gap >= Duration::from_millis(250), "{} then {} after {gap:?}", w[0].path, w[1].path);
    }
    let span = hits[4].at - hits[0].at;
    assert!(span >= Duration::from_millis(4 * 500 - 60), "five requests within {span:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_sync_every_reimports_the_site_and_reloads() {
    use crate::bot_harness::{World, WAIT};
    let site = start().await;
    let tmp = TempDir::new().unwrap();
    let out = tmp.path().join("kb");
    let o = import(fast(&out, vec![site.url("/sitemap-docs.xml")])).await;
    assert_eq!(o.status.code(), Some(0), "{}{}", s(&o.stdout), s(&o.stderr));

    let mut w = World::unstarted(&["--no-rate-limit", "--sync-every", "1s"]).await;
    w.opts.knowledge = out.clone();
    w.start().await;
    let before = w.fake.send_text_and_wait(5, 5, "descaling with citric acid", WAIT).await.unwrap();
    assert!(!before.plain.starts_with("Descaling the kettle"), "{}", before.plain);

    // The site gets a new page; within a sync or two the bot answers from it.
    site.put(
        "/docs/descale.html",
        "<main><h1>Descaling the kettle</h1><p>Fill it with water and two spoons of citric acid, boil, rinse.</p></main>",
        "text/html",
    );
    site.put(
        "/sitemap-docs.xml",
        "<urlset><url><loc>{{base}}/docs/install.html</loc></url><url><loc>{{base}}/docs/configure.html</loc></url>\
         <url><loc>{{base}}/knee-pain.html</loc></url><url><loc>{{base}}/docs/descale.html</loc></url></urlset>",
        "application/xml",
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let logs = w.bot().logs();
        if logs.contains("knowledge reloaded") && logs.contains("sync") {
            break;
        }
        assert!(Instant::now() < deadline, "no sync reload:\n{logs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let after = w.fake.send_text_and_wait(5, 5, "descaling with citric acid", WAIT).await.unwrap();
    assert!(after.plain.starts_with("Descaling the kettle"), "{}", after.plain);
    assert!(out.join("articles/descaling-the-kettle.md").exists());

    // Without a site behind it, --sync-every is refused at start, saying what to do.
    let plain = tmp.path().join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_articlebot"))
        .args(["serve", "--sync-every", "6h", "--knowledge"])
        .arg(&plain)
        .env("TELOXIDE_TOKEN", "1:x")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(s(&o.stderr).contains("was not imported from a site; run `articlebot import URL"), "{}", s(&o.stderr));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_articlebot"))
        .args(["serve", "--sync-every", "6 weeks"])
        .env("TELOXIDE_TOKEN", "1:x")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(s(&o.stderr).contains("is not a unit"), "{}", s(&o.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn local_listings_and_sitemaps_served_as_text_are_read() {
    let site = start().await;
    // A sitemap served as text/plain, and a local RSS file naming pages of the site.
    let docs = std::fs::read_to_string(data_dir().join("sitemap-docs.xml")).unwrap();
    site.put("/plain-sitemap.txt", docs, "text/plain");
    site.put("/sitemap.xml.gz", vec![0x1f, 0x8b, 8, 0, 0, 0], "application/x-gzip");
    let tmp = TempDir::new().unwrap();
    let rss = tmp.path().join("feed.xml");
    std::fs::write(
        &rss,
        format!(
            "<rss version='2.0'><channel><item><link>{}</link></item></channel></rss>",
            site.url("/blog/matcha.html")
        ),
    )
    .unwrap();
    let out = tmp.path().join("kb");
    let o = import(fast(
        &out,
        vec![site.url("/plain-sitemap.txt"), rss.display().to_string(), site.url("/sitemap.xml.gz")],
    ))
    .await;
    let stdout = s(&o.stdout);
    assert!(stdout.contains("imported 4 pages"), "{stdout}{}", s(&o.stderr));
    assert!(stdout.contains(&format!("error: {}: a gzip-compressed sitemap", site.url("/sitemap.xml.gz"))), "{stdout}");
    let kb = load_knowledge(&out).unwrap().kb;
    assert!(kb.by_id("how-to-whisk-matcha").is_some() && kb.by_id("installing-the-kettle").is_some());
}
