//! `import` of HTML files and dirs (no network): the seed page rendered as HTML imports to the
//! same knowledge as the seed text, byte for byte; `[import]` selectors in site.toml; pages that
//! cannot be read are reported with why and the rest still import.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use articlebot_engine::{import, load_knowledge};
use tempfile::TempDir;

fn seed_text() -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/seed-page.txt")).unwrap()
}

/// Text as HTML writes it: markup characters and some others as entities, so that decoding them
/// is part of what is tested.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\u{2019}', "&rsquo;")
        .replace('\u{a0}', "&nbsp;")
}

fn slug(s: &str) -> String {
    s.to_lowercase().split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join("-")
}

/// The seed page as its site would serve it: a theme's header, menu and footer around the
/// article, `<<:`/`>>:` lines with links, and the Recommend block as a list of linked titles with
/// teasers. Built from the seed text, block by block.
pub fn seed_as_html(text: &str) -> String {
    let blocks: Vec<&str> = text.split("\n\n").map(str::trim).filter(|b| !b.is_empty()).collect();
    let title = blocks[0];
    let mut body = String::new();
    let mut recommend = String::new();
    let mut rest = blocks[2..].iter();
    while let Some(b) = rest.next() {
        if *b == "Recommend" {
            let items: Vec<&&str> = rest.by_ref().collect();
            for pair in items.chunks(2) {
                recommend.push_str(&format!(
                    "<li>\n  <a href=\"/{}.html\">{}</a>\n  <p class=\"teaser\">{}</p>\n</li>\n",
                    slug(pair[0]),
                    escape(pair[0]),
                    escape(pair.get(1).copied().unwrap_or(&""))
                ));
            }
            break;
        }
        if let Some(t) = b.strip_prefix("<<:") {
            let t = t.trim_start_matches(|c: char| c.is_whitespace());
            body.push_str(&format!(
                "<p class=prev>&lt;&lt;:&nbsp;<a href=\"/{}.html\">{}</a></p>\n",
                slug(t),
                escape(t)
            ));
        } else if let Some(t) = b.strip_prefix(">>:") {
            let t = t.trim_start_matches(|c: char| c.is_whitespace());
            body.push_str(&format!("<p>&gt;&gt;:&nbsp;<a href=\"/{}.html\">{}</a></p>\n", slug(t), escape(t)));
        } else {
            // Long paragraphs wrap in the source, as editors write them.
            body.push_str(&format!("<p>\n  {}\n</p>\n", escape(b).replacen(". ", ".\n  ", 2)));
        }
    }
    format!(
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>{t} - Sports &amp; Health</title>\
         <script>window.dataLayer = [];</script><style>p {{ margin: 0 }}</style></head>\n<body>\n\
         <header class=site-header><a href=/>Sports &amp; Health</a><nav><ul><li><a href=/running>Running</a></li>\
         <li><a href=/basketball>Basketball</a></li></ul></nav></header>\n\
         <div class=\"container\"><div class=\"main-col\">\n<h1>{t}</h1>\n{body}</div>\n\
         <div class=\"recommend\"><h3>Recommend</h3>\n<ul>\n{recommend}</ul></div>\n\
         <div class=ad-slot>Advertisement: buy our shoes today and run faster than ever before.</div></div>\n\
         <footer><p>Copyright Sports &amp; Health. All rights reserved.</p></footer>\n</body></html>\n",
        t = escape(title)
    )
}

fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in fs::read_dir(dir.join("articles")).unwrap() {
        let p = e.unwrap().path();
        out.insert(p.strip_prefix(dir).unwrap().to_path_buf(), fs::read(&p).unwrap());
    }
    out
}

#[test]
fn seed_page_as_html_imports_to_the_same_knowledge_as_the_seed_text() {
    let tmp = TempDir::new().unwrap();
    let html = tmp.path().join("what-causes-knee-pain-when-running.html");
    fs::write(&html, seed_as_html(&seed_text())).unwrap();
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/seed-page.txt");

    let from_text = tmp.path().join("from-text");
    let from_html = tmp.path().join("from-html");
    import(&[seed], &from_text).unwrap();
    let r = import(std::slice::from_ref(&html), &from_html).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert_eq!((r.pages, r.created, r.stubs), (1, 18, 17));
    let (want, got) = (snapshot(&from_text), snapshot(&from_html));
    assert_eq!(want.keys().collect::<Vec<_>>(), got.keys().collect::<Vec<_>>());
    for (p, bytes) in &want {
        assert_eq!(String::from_utf8_lossy(&got[p]), String::from_utf8_lossy(bytes), "{}", p.display());
    }

    // Idempotent, like every import.
    let r = import(&[html], &from_html).unwrap();
    assert_eq!((r.created, r.updated, r.unchanged), (0, 0, 18));
    assert_eq!(snapshot(&from_html), got);
}

#[test]
fn import_selectors_in_site_toml_pick_the_parts() {
    let tmp = TempDir::new().unwrap();
    let page = tmp.path().join("odd.html");
    // A theme the heuristics get wrong: the title is not a heading, the text is in a table cell
    // beside a bigger block of legal text, and the related links have no telling markers.
    fs::write(
        &page,
        "<html><body><div class=banner-title>Choosing trail shoes</div>\
         <table><tr><td class=legal><p>Terms of use apply to all pages of this site, which is a long text \
         that nobody reads but that is longer than the article itself, by quite a margin indeed.</p>\
         <p>More legal words follow here, in a second paragraph of the same long legal notice.</p></td>\
         <td class=txt><p>Grip matters more than cushioning on trails.</p></td></tr></table>\
         <div class=more><span><a href='https://shoes.example/road'>Road shoes</a> for tarmac</span></div>\
         </body></html>",
    )
    .unwrap();
    let out = tmp.path().join("kb");
    fs::create_dir_all(&out).unwrap();
    fs::write(
        out.join("site.toml"),
        "[import]\ntitle = \".banner-title\"\nbody = \".txt\"\nrelated = \".more span\"\n",
    )
    .unwrap();
    let r = import(std::slice::from_ref(&page), &out).unwrap();
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    let kb = load_knowledge(&out).unwrap().kb;
    let a = kb.article(kb.by_id("choosing-trail-shoes").expect("title from the selector")).unwrap();
    assert_eq!(a.sections.len(), 1);
    assert_eq!(a.sections[0].text, "Grip matters more than cushioning on trails.");
    let road = kb.article(a.related[0]).unwrap();
    assert_eq!((road.title.as_str(), road.teaser.as_deref()), ("Road shoes", Some("for tarmac")));
    assert_eq!(road.url.as_deref(), Some("https://shoes.example/road"));

    // A selector that does not parse stops the import before anything is written, naming it.
    fs::write(out.join("site.toml"), "[import]\nbody = \"div[\"\n").unwrap();
    let errs = import(std::slice::from_ref(&page), &out).unwrap_err();
    assert!(errs[0].to_string().contains("import.body `div[` is not a valid CSS selector"), "{errs:?}");
    // And `check` says the same about the knowledge dir.
    let o = Command::new(env!("CARGO_BIN_EXE_articlebot")).args(["check".as_ref(), out.as_os_str()]).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stdout).contains("import.body"), "{}", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn html_pages_that_cannot_be_read_are_reported_and_the_rest_import() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("site");
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("a-good.html"), "<h1>Good</h1><p>Text.</p>").unwrap();
    fs::write(dir.join("b-no-title.html"), "<div><p>No heading anywhere.</p></div>").unwrap();
    fs::write(dir.join("c-no-text.htm"), "<title>Only a title</title>").unwrap();
    fs::write(dir.join("d-sjis.html"), b"<meta charset=shift_jis><h1>\x82\xa0</h1>".as_slice()).unwrap();
    fs::write(dir.join("e-latin1.html"), b"<h1>Caf\xe9 cr\xe8me</h1><p>Na\xefve.</p>".as_slice()).unwrap();
    let out = tmp.path().join("kb");
    let r = import(std::slice::from_ref(&dir), &out).unwrap();
    assert_eq!(r.pages, 2, "{:?}", r.errors);
    let errs: Vec<String> = r.errors.iter().map(ToString::to_string).collect();
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs[0].contains("b-no-title.html") && errs[0].contains("no title"), "{errs:?}");
    assert!(errs[1].contains("c-no-text.htm") && errs[1].contains("no text"), "{errs:?}");
    assert!(errs[2].contains("d-sjis.html") && errs[2].contains("charset `shift_jis` is not supported"), "{errs:?}");
    let kb = load_knowledge(&out).unwrap().kb;
    let cafe = kb.article(kb.by_id("cafe-creme").unwrap()).unwrap();
    assert_eq!(cafe.title, "Café crème");
}
