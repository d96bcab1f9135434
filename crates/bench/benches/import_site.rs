//! `articlebot import` of a generated site served on 127.0.0.1: N article pages in a blog theme
//! (header, menu, sidebar, comments, footer, prev/next links and a related block around the
//! text), listed by a sitemap, served with ETag and Last-Modified. Runs the real binary twice
//! (a first import, then a re-run where every page answers 304) and reports pages/s for each.
//!
//! ```text
//! cargo build --release && cargo bench -p articlebot-bench --bench import_site -- --pages 300 --rate 1000
//! cargo bench -p articlebot-bench --bench import_site -- --pages 60      # the default politeness, 1 request/s
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response};

struct Args {
    pages: usize,
    rate: Option<f64>,
    concurrency: Option<u32>,
    bin: PathBuf,
}

fn args() -> Args {
    let mut a = Args {
        pages: 300,
        rate: None,
        concurrency: None,
        bin: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/articlebot"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--pages" => a.pages = it.next().and_then(|v| v.parse().ok()).expect("--pages N"),
            "--rate" => a.rate = it.next().and_then(|v| v.parse().ok()),
            "--concurrency" => a.concurrency = it.next().and_then(|v| v.parse().ok()),
            "--bin" => a.bin = it.next().map(PathBuf::from).expect("--bin PATH"),
            // `cargo bench` adds `--bench`.
            _ => {}
        }
    }
    a
}

const WORDS: &[&str] = &[
    "kettle",
    "water",
    "leaf",
    "steep",
    "brew",
    "aroma",
    "cup",
    "pot",
    "filter",
    "grind",
    "roast",
    "bean",
    "milk",
    "sugar",
    "honey",
    "lemon",
    "spice",
    "ginger",
    "mint",
    "herbal",
    "temperature",
    "minute",
    "flavour",
    "bitter",
    "sweet",
    "fresh",
    "storage",
    "jar",
    "light",
    "humidity",
];

fn word(i: usize, k: usize) -> &'static str {
    WORDS[(i.wrapping_mul(31).wrapping_add(k.wrapping_mul(17))) % WORDS.len()]
}

fn title(i: usize) -> String {
    format!("Article {i}: the {} and the {}", word(i, 1), word(i, 2))
}

fn page(i: usize, n: usize) -> String {
    let mut body = String::new();
    for s in 0..3 {
        body.push_str(&format!("<h2>Part {s} on {}</h2>\n", word(i, s + 3)));
        for p in 0..2 {
            let text: Vec<&str> = (0..40).map(|k| word(i + s * 7 + p, k)).collect();
            body.push_str(&format!("<p>{}.</p>\n", text.join(" ")));
        }
    }
    let link = |j: usize| format!("<a href=\"/p/{j}.html\">{}</a>", title(j));
    let related: String =
        (1..=4).map(|d| format!("<li>{}<p>About {}...</p></li>", link((i + d * 7) % n), word(i, d))).collect();
    format!(
        "<!DOCTYPE html><html><head><meta charset=utf-8><title>{t} | Tea Notes</title>\
         <link rel=canonical href=\"/p/{i}.html\"><script>var x = 1;</script></head><body>\
         <header><nav><a href=/>Home</a> <a href=/about>About</a></nav></header>\
         <article><h1>{t}</h1>{body}</article>\
         <nav class=post-navigation><a rel=prev href=\"/p/{prev}.html\">{pt}</a> <a rel=next href=\"/p/{next}.html\">{nt}</a></nav>\
         <section class=related-posts><h2>Related</h2><ul>{related}</ul></section>\
         <div id=comments><p>Nice post.</p></div><aside class=sidebar><p>Subscribe.</p></aside>\
         <footer><p>© Tea Notes</p></footer></body></html>",
        t = title(i),
        prev = (i + n - 1) % n,
        next = (i + 1) % n,
        pt = title((i + n - 1) % n),
        nt = title((i + 1) % n),
    )
}

fn etag(b: &[u8]) -> String {
    format!("\"{:016x}\"", articlebot_knowledge::stable_hash(&String::from_utf8_lossy(b)))
}

async fn serve(
    files: Arc<HashMap<String, Vec<u8>>>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let Some(body) = files.get(req.uri().path()) else {
        return Ok(Response::builder().status(404).body(Full::new(Bytes::new())).expect("response"));
    };
    let tag = etag(body);
    if req.headers().get("if-none-match").and_then(|v| v.to_str().ok()) == Some(tag.as_str()) {
        return Ok(Response::builder()
            .status(304)
            .header("etag", tag)
            .body(Full::new(Bytes::new()))
            .expect("response"));
    }
    let ct = if req.uri().path().ends_with(".xml") { "application/xml" } else { "text/html; charset=utf-8" };
    Ok(Response::builder()
        .header("content-type", ct)
        .header("etag", tag)
        .header("last-modified", "Mon, 02 Nov 2026 10:00:00 GMT")
        .body(Full::new(Bytes::from(body.clone())))
        .expect("response"))
}

#[tokio::main]
async fn main() {
    let a = args();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let mut files = HashMap::new();
    let mut sitemap = String::from("<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">");
    for i in 0..a.pages {
        files.insert(format!("/p/{i}.html"), page(i, a.pages).into_bytes());
        sitemap.push_str(&format!("<url><loc>{base}/p/{i}.html</loc></url>"));
    }
    sitemap.push_str("</urlset>");
    files.insert("/sitemap.xml".into(), sitemap.into_bytes());
    files.insert("/robots.txt".into(), b"User-agent: *\nDisallow: /private/\n".to_vec());
    let bytes: usize = files.values().map(Vec::len).sum();
    let files = Arc::new(files);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let files = files.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| serve(files.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    let out = tempfile::tempdir().expect("tempdir");
    let kb = out.path().join("kb");
    println!("site: {} pages, {:.1} MiB of HTML, at {base}", a.pages, bytes as f64 / 1048576.0);
    for run in ["first import", "re-run (all 304)"] {
        let mut cmd = Command::new(&a.bin);
        cmd.arg("import").arg(format!("{base}/sitemap.xml")).arg("--out").arg(&kb);
        if let Some(r) = a.rate {
            cmd.arg("--rate").arg(r.to_string());
        }
        if let Some(c) = a.concurrency {
            cmd.arg("--concurrency").arg(c.to_string());
        }
        let started = Instant::now();
        let o = tokio::task::spawn_blocking(move || cmd.output()).await.expect("join").expect("run articlebot");
        let secs = started.elapsed().as_secs_f64();
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{stdout}{}", String::from_utf8_lossy(&o.stderr));
        println!(
            "{run}: {:.2} s wall, {:.1} pages/s (rate {}), articlebot said: {}",
            secs,
            a.pages as f64 / secs,
            a.rate.map_or("default 1/s".to_string(), |r| format!("{r}/s")),
            stdout
                .lines()
                .filter(|l| l.starts_with("imported") || l.starts_with("fetched"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
    }
}
