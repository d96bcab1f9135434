//! HTML pages: a site's own article pages read into a [`Page`], the same shape the scraped text
//! format gives, so that both go through one merge (`import::Catalog`).
//!
//! The document is parsed by html5ever (through `scraper`), which repairs broken HTML the way a
//! browser does. Then, unless `[import]` selectors in site.toml say where each part is:
//! - the title is the first `<h1>`, else `og:title`, else `<title>` without the site's name;
//! - the body is `<article>` (the one with the most text), else `<main>`, else the element
//!   holding the most paragraph text, with navigation, headers, footers, comments, ads, forms
//!   and scripts left out;
//! - headings cut sections; a page without headings has a section per paragraph, like a text page;
//! - previous/next are `rel=prev`/`rel=next` links, or links labelled so (`<<:`, "Previous", «, →);
//! - related topics are blocks headed or classed "Recommend", "Related", "See also"...: each
//!   item's link is a title, the rest of its text its teaser;
//! - `<link rel=canonical>` (else `og:url`, else where the page was fetched from) is the `url`.
//!
//! Text comes out as a reader sees it: entities decoded, runs of spaces and newlines collapsed,
//! `<br>` a line break, list items lines of their own (`- `), non-breaking spaces kept.

use std::collections::{HashMap, HashSet};

use scraper::node::Node;
use scraper::{ElementRef, Html, Selector};
use url::Url;

use super::page::{self, Page, PageError, PageSection, Topic};
use super::site::ImportRules;

type NodeId = ego_tree::NodeId;

/// The `[import]` selectors, compiled once per import.
#[derive(Debug, Default)]
pub struct HtmlRules {
    title: Option<Selector>,
    body: Option<Selector>,
    related: Option<Selector>,
    prev: Option<Selector>,
    next: Option<Selector>,
}

impl HtmlRules {
    /// Compiles the rules; a selector that does not parse is an error naming its field.
    pub fn new(rules: &ImportRules) -> Result<Self, String> {
        let mut out = HtmlRules::default();
        for (field, sel) in rules.fields() {
            let Some(sel) = sel else { continue };
            let compiled = compile(field, sel)?;
            let slot = match field {
                "title" => &mut out.title,
                "body" => &mut out.body,
                "related" => &mut out.related,
                "prev" => &mut out.prev,
                _ => &mut out.next,
            };
            *slot = Some(compiled);
        }
        Ok(out)
    }
}

fn compile(field: &str, sel: &str) -> Result<Selector, String> {
    Selector::parse(sel).map_err(|e| format!("import.{field} `{sel}` is not a valid CSS selector ({e})"))
}

/// What is wrong with site.toml's `[import]` selectors, for `check` and `import`.
pub(crate) fn selector_problems(rules: &ImportRules) -> Vec<String> {
    rules.fields().into_iter().filter_map(|(f, s)| compile(f, s?).err()).collect()
}

fn sel(s: &str) -> Selector {
    Selector::parse(s).expect("built-in selector")
}

/// Elements whose text is never article text.
const SKIPPED_TAGS: &[&str] = &[
    "script", "style", "noscript", "template", "iframe", "svg", "canvas", "form", "button", "select", "input",
    "textarea", "nav", "footer", "header", "aside", "head", "title", "meta", "link", "object", "embed", "audio",
    "video", "map", "dialog", "menu",
];

/// Words in a class or id that mark boilerplate: comments, ads, sharing buttons, menus.
const BOILERPLATE_WORDS: &[&str] = &[
    "comment",
    "comments",
    "ad",
    "ads",
    "advert",
    "advertisement",
    "banner",
    "sponsor",
    "sponsored",
    "promo",
    "share",
    "sharing",
    "social",
    "sidebar",
    "footer",
    "nav",
    "navbar",
    "navigation",
    "menu",
    "breadcrumb",
    "breadcrumbs",
    "cookie",
    "cookies",
    "newsletter",
    "subscribe",
    "popup",
    "modal",
    "skip",
];

/// Words in a class or id that mark a block of related or recommended articles.
const RELATED_WORDS: &[&str] = &["related", "recommend", "recommended", "recommendations", "see-also", "seealso"];

/// Block-level elements: their text is a paragraph of its own.
const BLOCK_TAGS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "blockquote",
    "pre",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "tr",
    "figure",
    "figcaption",
    "address",
    "hr",
    "details",
    "summary",
    "center",
    "body",
    "html",
];

fn heading_level(name: &str) -> Option<u8> {
    match name {
        "h1" => Some(1),
        "h2" => Some(2),
        "h3" => Some(3),
        "h4" => Some(4),
        "h5" => Some(5),
        "h6" => Some(6),
        _ => None,
    }
}

/// The words of an element's class and id, lower-cased and split at `-`, `_` and spaces, plus
/// the whole class names (so `see-also` matches as one).
fn marker_words(el: &ElementRef) -> Vec<String> {
    let v = el.value();
    let mut out = Vec::new();
    for name in v.classes().chain(v.id()) {
        let name = name.to_ascii_lowercase();
        out.extend(name.split(['-', '_', ' ']).filter(|w| !w.is_empty()).map(str::to_string));
        out.push(name);
    }
    out
}

fn has_marker(el: &ElementRef, words: &[&str]) -> bool {
    marker_words(el).iter().any(|w| words.contains(&w.as_str()))
}

fn is_hidden(el: &ElementRef) -> bool {
    let v = el.value();
    v.attr("hidden").is_some()
        || v.attr("aria-hidden").is_some_and(|a| a.eq_ignore_ascii_case("true"))
        || v.attr("style").is_some_and(|s| {
            let s: String = s.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_lowercase();
            s.contains("display:none") || s.contains("visibility:hidden")
        })
}

/// Whether an element is left out of the body text: not article text by its tag, its markers,
/// or because it is hidden.
fn is_boilerplate(el: &ElementRef) -> bool {
    let name = el.value().name();
    SKIPPED_TAGS.contains(&name)
        || is_hidden(el)
        || (!matches!(name, "body" | "html" | "main" | "article") && has_marker(el, BOILERPLATE_WORDS))
}

/// Collapses runs of ASCII whitespace (what HTML collapses) into one space; a non-breaking space
/// is text, not layout, and stays.
fn push_collapsed(out: &mut String, text: &str) {
    for c in text.chars() {
        if c.is_ascii_whitespace() {
            if !out.is_empty() && !out.ends_with([' ', '\n']) {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
}

/// An element's visible text on one line, whitespace collapsed and trimmed, skipping `skip` and
/// the elements inside it that are never text (scripts, styles).
fn inline_text(el: ElementRef, skip: &HashSet<NodeId>) -> String {
    fn walk(el: ElementRef, skip: &HashSet<NodeId>, out: &mut String) {
        for c in el.children() {
            if skip.contains(&c.id()) {
                continue;
            }
            match c.value() {
                Node::Text(t) => push_collapsed(out, t),
                Node::Element(e) if e.name() == "br" => out.push(' '),
                Node::Element(e) if !SKIPPED_TAGS.contains(&e.name()) => {
                    if let Some(ce) = ElementRef::wrap(c) {
                        walk(ce, skip, out);
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = String::new();
    walk(el, skip, &mut out);
    tidy_line(&out)
}

fn tidy_line(s: &str) -> String {
    // ASCII whitespace only: a non-breaking space is a character of the text.
    s.split_ascii_whitespace().collect::<Vec<_>>().join(" ").trim_matches(trim_char).to_string()
}

/// Spaces, NBSP included, at the ends of a text.
fn trim_char(c: char) -> bool {
    c.is_whitespace()
}

/// One block of body text, in document order.
#[derive(Debug)]
enum Block {
    Heading(String),
    Para(String),
}

/// Turns a body's elements into headings and paragraphs.
struct Walker<'s> {
    skip: &'s HashSet<NodeId>,
    blocks: Vec<Block>,
    cur: String,
    /// Inside `<pre>`: whitespace is kept as written.
    pre: usize,
    /// Inside a list item: nested blocks continue the item's line instead of breaking it.
    list: usize,
}

impl Walker<'_> {
    fn flush(&mut self) {
        let lines: Vec<String> = if self.pre > 0 {
            self.cur.lines().map(|l| l.trim_end().to_string()).collect()
        } else {
            self.cur.lines().map(tidy_line).collect()
        };
        let text = lines.into_iter().filter(|l| !l.trim().is_empty()).collect::<Vec<_>>().join("\n");
        self.cur.clear();
        if !text.is_empty() {
            self.blocks.push(Block::Para(text));
        }
    }

    fn newline(&mut self) {
        if !self.cur.is_empty() && !self.cur.ends_with('\n') {
            self.cur.push('\n');
        }
    }

    fn walk(&mut self, el: ElementRef) {
        for child in el.children() {
            if self.skip.contains(&child.id()) {
                continue;
            }
            match child.value() {
                Node::Text(t) => {
                    if self.pre > 0 {
                        self.cur.push_str(t);
                    } else {
                        push_collapsed(&mut self.cur, t);
                    }
                }
                Node::Element(_) => {
                    let Some(e) = ElementRef::wrap(child) else { continue };
                    self.element(e);
                }
                _ => {}
            }
        }
    }

    fn element(&mut self, e: ElementRef) {
        if is_boilerplate(&e) {
            return;
        }
        let name = e.value().name();
        if name == "br" {
            self.cur.push('\n');
            return;
        }
        if name == "img" {
            return;
        }
        if heading_level(name).is_some() {
            self.flush();
            let text = inline_text(e, self.skip);
            if !text.is_empty() {
                self.blocks.push(Block::Heading(text));
            }
            return;
        }
        if matches!(name, "td" | "th") {
            if !self.cur.is_empty() && !self.cur.ends_with(['\n', ' ']) {
                self.cur.push_str(" | ");
            }
            self.walk(e);
            return;
        }
        if matches!(name, "ul" | "ol") {
            if self.list == 0 {
                self.flush();
            }
            let ordered = name == "ol";
            let mut n = 0;
            for item in e.child_elements() {
                if self.skip.contains(&item.id()) || is_boilerplate(&item) {
                    continue;
                }
                if item.value().name() != "li" {
                    self.walk(item);
                    continue;
                }
                n += 1;
                self.newline();
                for _ in 0..self.list {
                    self.cur.push_str("  ");
                }
                if ordered {
                    self.cur.push_str(&format!("{n}. "));
                } else {
                    self.cur.push_str("- ");
                }
                self.list += 1;
                self.walk(item);
                self.list -= 1;
            }
            if self.list == 0 {
                self.flush();
            }
            return;
        }
        if !BLOCK_TAGS.contains(&name) {
            self.walk(e);
            return;
        }
        if self.list > 0 {
            if !self.cur.ends_with([' ', '\n']) {
                self.cur.push(' ');
            }
            self.walk(e);
            return;
        }
        if name == "tr" {
            self.newline();
            self.walk(e);
            self.newline();
            return;
        }
        if matches!(name, "table" | "thead" | "tbody" | "tfoot") {
            // A table is one paragraph, a row a line.
            self.flush();
            self.walk(e);
            self.flush();
            return;
        }
        self.flush();
        if name == "pre" {
            self.pre += 1;
            self.walk(e);
            self.flush();
            self.pre -= 1;
        } else {
            self.walk(e);
            self.flush();
        }
    }
}

/// The text of a block: whether it is a `<<:` / `>>:` line, and the title it names.
fn nav_text(text: &str) -> Option<(bool, String)> {
    let (is_prev, rest) = page::nav_line(text)?;
    Some((is_prev, rest.to_string())).filter(|(_, t)| !t.is_empty())
}

/// Labels sites put before or after a previous/next link's title: the direction when the label
/// is unmistakable (`<<:`, an arrow, "Previous:" with its colon), and the title without it. A
/// bare word ("Next steps") is a title, not a label.
fn strip_nav_label(text: &str) -> (Option<bool>, String) {
    let t = text.trim_matches(trim_char);
    if let Some((is_prev, rest)) = page::nav_line(t) {
        return (Some(is_prev), rest.to_string());
    }
    let lower = t.to_lowercase();
    let mut dir = None;
    let mut rest = t;
    for (label, is_prev) in [
        ("previous article", true),
        ("previous post", true),
        ("previous page", true),
        ("previous", true),
        ("prev", true),
        ("next article", false),
        ("next post", false),
        ("next page", false),
        ("next", false),
    ] {
        if lower.starts_with(label) {
            // Lower-casing may change byte lengths before the label ends ("İ"): then it is no label.
            let Some(after) = t.get(label.len()..) else { continue };
            // "Previously" or "Nextcloud" are words, not labels.
            if after.is_empty() || after.starts_with(|c: char| !c.is_alphanumeric()) {
                let marked = after.trim_start().starts_with([':', '«', '»', '‹', '›', '←', '→', '|']);
                if marked {
                    dir = Some(is_prev);
                }
                rest = after;
                break;
            }
        }
    }
    let arrows_prev = ['«', '‹', '←', '<'];
    let arrows_next = ['»', '›', '→', '>'];
    let trimmed = rest.trim_matches(|c: char| c.is_whitespace() || c == ':');
    let (d2, trimmed) = if let Some(r) = trimmed.strip_prefix(arrows_prev) {
        (Some(true), r)
    } else if let Some(r) = trimmed.strip_suffix(arrows_next) {
        (Some(false), r)
    } else if let Some(r) = trimmed.strip_prefix(arrows_next) {
        (Some(false), r)
    } else {
        (None, trimmed)
    };
    let title = trimmed.trim_matches(|c: char| c.is_whitespace() || c == ':' || c == '-' || c == '|');
    (dir.or(d2), title.to_string())
}

/// Resolves a link against the page, keeping only http(s) links.
fn resolve(base: Option<&Url>, href: &str) -> Option<String> {
    let href = href.trim();
    if href.is_empty() || href.starts_with('#') {
        return None;
    }
    let u = match base {
        Some(b) => b.join(href).ok()?,
        None => Url::parse(href).ok()?,
    };
    matches!(u.scheme(), "http" | "https").then(|| {
        let mut u = u;
        u.set_fragment(None);
        u.to_string()
    })
}

/// The nearest ancestor (or the element itself) that is a block, to leave out with a link.
fn enclosing_block<'a>(el: ElementRef<'a>, stop: NodeId) -> ElementRef<'a> {
    let mut cur = el;
    loop {
        let name = cur.value().name();
        if BLOCK_TAGS.contains(&name) && !matches!(name, "body" | "html") || cur.id() == stop {
            return cur;
        }
        match cur.parent().and_then(ElementRef::wrap) {
            Some(p) if !matches!(p.value().name(), "body" | "html") => cur = p,
            _ => return cur,
        }
    }
}

struct Extracted {
    prev: Option<(String, Option<String>)>,
    next: Option<(String, Option<String>)>,
}

/// Previous/next links: `rel`, then the rules' selectors, then links labelled so. Their blocks are
/// added to `skip` when the link is most of their text.
fn find_nav(doc: &Html, rules: &HtmlRules, base: Option<&Url>, skip: &mut HashSet<NodeId>) -> Extracted {
    let mut out = Extracted { prev: None, next: None };
    let root = doc.root_element().id();
    let take = |el: ElementRef, is_prev: Option<bool>, skip: &mut HashSet<NodeId>, out: &mut Extracted| {
        let text = inline_text(el, &HashSet::new());
        let (dir, mut title) = strip_nav_label(&text);
        let Some(is_prev) = is_prev.or(dir) else { return };
        if title.is_empty() {
            // "Next »" alone names no page; a title attribute may.
            title = el.value().attr("title").map(tidy_line).unwrap_or_default();
        }
        let slot = if is_prev { &mut out.prev } else { &mut out.next };
        if title.is_empty() || slot.is_some() {
            return;
        }
        let url = el.value().attr("href").and_then(|h| resolve(base, h));
        *slot = Some((title, url));
        let block = enclosing_block(el, root);
        let block_len = inline_text(block, skip).chars().count();
        if block_len <= text.chars().count() * 2 + 16 {
            skip.insert(block.id());
        } else {
            skip.insert(el.id());
        }
    };
    for (selector, is_prev) in [(&rules.prev, true), (&rules.next, false)] {
        if let Some(s) = selector {
            if let Some(el) = doc.select(s).next() {
                take(el, Some(is_prev), skip, &mut out);
            }
        }
    }
    let links = sel("a[href], a[rel]");
    for a in doc.select(&links) {
        let rel = a.value().attr("rel").unwrap_or("").to_ascii_lowercase();
        let rel_dir = rel.split_ascii_whitespace().find_map(|r| match r {
            "prev" | "previous" => Some(true),
            "next" => Some(false),
            _ => None,
        });
        let class_dir = || {
            a.ancestors().take(3).filter_map(ElementRef::wrap).chain([a]).find_map(|e| {
                let words = marker_words(&e);
                if words.iter().any(|w| matches!(w.as_str(), "prev" | "previous")) {
                    Some(true)
                } else if words.iter().any(|w| w == "next") {
                    Some(false)
                } else {
                    None
                }
            })
        };
        let dir = rel_dir.or_else(class_dir);
        let text = inline_text(a, &HashSet::new());
        let labelled = strip_nav_label(&text).0;
        // A link counts as previous/next by its rel, its class, or its own label; the label of
        // the text around it is looked at below (`<<:` lines).
        if dir.is_some() || labelled.is_some() {
            take(a, dir, skip, &mut out);
        }
    }
    out
}

/// Whether a heading's text names a related-articles block.
fn is_related_heading(text: &str) -> bool {
    let t = text.trim().trim_end_matches(':').trim().to_lowercase();
    page::is_recommend_heading(&t)
        || matches!(
            t.as_str(),
            "related articles"
                | "related posts"
                | "related pages"
                | "related reading"
                | "you may also like"
                | "you might also like"
                | "recommended articles"
                | "recommended reading"
                | "recommended for you"
                | "more articles"
                | "further reading"
                | "read next"
        )
}

/// The topics of a related block: one per item (`li`, `article`, or the rules' matches), else one
/// per link with the text up to the next link as its teaser.
fn topics_of_items(items: &[ElementRef], base: Option<&Url>) -> Vec<Topic> {
    let a = sel("a[href]");
    let heading = sel("h1, h2, h3, h4, h5, h6");
    let none = HashSet::new();
    let mut out = Vec::new();
    for item in items {
        let link = item.select(&a).next().or_else(|| (item.value().name() == "a").then_some(*item));
        let title_el =
            link.filter(|l| !inline_text(*l, &none).is_empty()).or_else(|| item.select(&heading).next()).or(link);
        let (title, url) = match title_el {
            Some(t) => {
                (inline_text(t, &none), link.and_then(|l| l.value().attr("href")).and_then(|h| resolve(base, h)))
            }
            None => (inline_text(*item, &none), None),
        };
        if title.is_empty() {
            continue;
        }
        let mut skip = HashSet::new();
        if let Some(t) = title_el {
            skip.insert(t.id());
        }
        let teaser = inline_text(*item, &skip);
        let teaser = teaser.trim_start_matches(|c: char| c.is_whitespace() || matches!(c, '—' | '–' | '-' | ':'));
        out.push(Topic { title, teaser: (!teaser.is_empty()).then(|| teaser.to_string()), url });
    }
    out
}

/// Items of a container: its list items or articles when it has them, else its links.
fn items_of<'a>(container: ElementRef<'a>) -> Vec<ElementRef<'a>> {
    let li = sel("li");
    let items: Vec<_> = container.select(&li).collect();
    if !items.is_empty() {
        return items;
    }
    let art = sel("article");
    let items: Vec<_> = container.select(&art).collect();
    if !items.is_empty() {
        return items;
    }
    // Title and teaser as sibling blocks (`<a>Title</a><p>Teaser...</p>`): a link and the text
    // after it up to the next link make an item; represent that by the link's block.
    let a = sel("a[href]");
    container.select(&a).collect()
}

/// Link-only items lose their teaser in `items_of` when the teaser is a sibling: pair them here.
fn link_topics(container: ElementRef, base: Option<&Url>, skip: &HashSet<NodeId>) -> Vec<Topic> {
    let mut out: Vec<Topic> = Vec::new();
    let mut teaser = String::new();
    let flush_teaser = |out: &mut Vec<Topic>, teaser: &mut String| {
        let t = tidy_line(teaser);
        if let Some(last) = out.last_mut() {
            if last.teaser.is_none() && !t.is_empty() {
                last.teaser = Some(t);
            }
        }
        teaser.clear();
    };
    let mut in_link: Option<NodeId> = None;
    for node in container.descendants() {
        if skip.contains(&node.id()) && node.id() != container.id() {
            continue;
        }
        if let Some(l) = in_link {
            if !node.ancestors().any(|a| a.id() == l) {
                in_link = None;
            }
        }
        match node.value() {
            Node::Element(e) if e.name() == "a" && e.attr("href").is_some() => {
                let el = ElementRef::wrap(node).expect("element");
                let title = inline_text(el, &HashSet::new());
                flush_teaser(&mut out, &mut teaser);
                if !title.is_empty() {
                    let url = e.attr("href").and_then(|h| resolve(base, h));
                    out.push(Topic { title, teaser: None, url });
                }
                in_link = Some(node.id());
            }
            Node::Element(e) if heading_level(e.name()).is_some() => flush_teaser(&mut out, &mut teaser),
            Node::Text(t) if in_link.is_none() => {
                let hidden = node.ancestors().any(|a| {
                    a.id() != container.id()
                        && ElementRef::wrap(a).is_some_and(|e| heading_level(e.value().name()).is_some())
                });
                if !hidden {
                    push_collapsed(&mut teaser, t);
                    teaser.push(' ');
                }
            }
            _ => {}
        }
    }
    flush_teaser(&mut out, &mut teaser);
    out
}

/// Related blocks: the rules' items, else containers marked related/recommend, else headings
/// that say so with the elements after them. Everything used goes into `skip`.
fn find_related(doc: &Html, rules: &HtmlRules, base: Option<&Url>, skip: &mut HashSet<NodeId>) -> Vec<Topic> {
    if let Some(s) = &rules.related {
        let items: Vec<_> = doc.select(s).collect();
        for i in &items {
            skip.insert(i.id());
        }
        return topics_of_items(&items, base);
    }
    let mut out = Vec::new();
    let all = sel("*");
    let heading = sel("h1, h2, h3, h4, h5, h6");
    let h1 = sel("h1");
    let mut containers: Vec<ElementRef> = Vec::new();
    for el in doc.select(&all) {
        if matches!(el.value().name(), "html" | "body" | "a" | "li") || skip.contains(&el.id()) {
            continue;
        }
        let marked = has_marker(&el, RELATED_WORDS);
        if !marked || containers.iter().any(|c| el.ancestors().any(|a| a.id() == c.id())) {
            continue;
        }
        // A page marked as a whole ("post has-related-posts") holds the article: not a block.
        if el.select(&h1).next().is_some() {
            continue;
        }
        containers.push(el);
    }
    for c in &containers {
        skip.insert(c.id());
        let items = items_of(*c);
        if items.iter().all(|i| i.value().name() == "a") {
            out.extend(link_topics(*c, base, &HashSet::new()));
        } else {
            out.extend(topics_of_items(&items, base));
        }
    }
    // A heading naming the block, with its items as the siblings that follow it.
    for h in doc.select(&heading) {
        if skip.contains(&h.id()) || h.ancestors().any(|a| skip.contains(&a.id())) {
            continue;
        }
        if !is_related_heading(&inline_text(h, &HashSet::new())) {
            continue;
        }
        skip.insert(h.id());
        let level = heading_level(h.value().name()).unwrap_or(6);
        let mut siblings = Vec::new();
        for s in h.next_siblings() {
            if let Some(e) = ElementRef::wrap(s) {
                if heading_level(e.value().name()).is_some_and(|l| l <= level) {
                    break;
                }
                siblings.push(e);
            }
            skip.insert(s.id());
        }
        let lists: Vec<ElementRef> =
            siblings.iter().filter(|e| matches!(e.value().name(), "ul" | "ol")).copied().collect();
        if !lists.is_empty() {
            let li = sel("li");
            let items: Vec<_> = lists.iter().flat_map(|l| l.select(&li)).collect();
            out.extend(topics_of_items(&items, base));
        } else {
            // Title and teaser as alternating blocks, like the text format's Recommend block.
            let mut pending: Option<Topic> = None;
            for s in &siblings {
                let a = sel("a[href]");
                let text = inline_text(*s, &HashSet::new());
                if text.is_empty() {
                    continue;
                }
                let link = s.select(&a).next().or_else(|| (s.value().name() == "a").then_some(*s));
                let is_title = link.is_some_and(|l| inline_text(l, &HashSet::new()) == text)
                    || (pending.as_ref().is_some_and(|p| p.teaser.is_some()) || pending.is_none())
                        && !page::ends_with_ellipsis(&text);
                if is_title {
                    out.extend(pending.take());
                    let url = link.and_then(|l| l.value().attr("href")).and_then(|h| resolve(base, h));
                    pending = Some(Topic { title: text, teaser: None, url });
                } else if let Some(p) = pending.as_mut() {
                    p.teaser = Some(text);
                }
            }
            out.extend(pending);
        }
    }
    out
}

/// Total visible text under an element, not counting `skip` and boilerplate.
fn text_len(el: ElementRef, skip: &HashSet<NodeId>) -> usize {
    let mut n = 0;
    let mut stack = vec![el];
    while let Some(e) = stack.pop() {
        for c in e.children() {
            if skip.contains(&c.id()) {
                continue;
            }
            match c.value() {
                Node::Text(t) => n += t.trim().chars().count(),
                Node::Element(_) => {
                    if let Some(ce) = ElementRef::wrap(c) {
                        if !is_boilerplate(&ce) {
                            stack.push(ce);
                        }
                    }
                }
                _ => {}
            }
        }
    }
    n
}

/// The elements holding the article: the rules' body, else `<article>`, `<main>`, else the element
/// with the most paragraph text (readability's choice, roughly).
fn body_roots<'a>(doc: &'a Html, rules: &HtmlRules, skip: &HashSet<NodeId>) -> Vec<ElementRef<'a>> {
    if let Some(s) = &rules.body {
        return doc.select(s).collect();
    }
    let article = sel("article");
    let best = doc
        .select(&article)
        .filter(|a| !skip.contains(&a.id()) && !a.ancestors().any(|x| skip.contains(&x.id())))
        .map(|a| (text_len(a, skip), a))
        .max_by_key(|(n, _)| *n);
    if let Some((n, a)) = best {
        if n > 0 {
            return vec![a];
        }
    }
    let main = sel("main, [role=main]");
    if let Some(m) = doc.select(&main).next() {
        return vec![m];
    }
    // Score every paragraph's parent (and half for the grandparent); the best one is the body.
    let paras = sel("p, pre, blockquote");
    // In document order (ties go to the later element, as before), found through an index so that
    // a page of many small blocks costs its length, not its length squared.
    let mut scores: Vec<(NodeId, usize)> = Vec::new();
    let mut at: HashMap<NodeId, usize> = HashMap::new();
    let mut add = |id: NodeId, n: usize| match at.get(&id) {
        Some(&i) => scores[i].1 += n,
        None => {
            at.insert(id, scores.len());
            scores.push((id, n));
        }
    };
    for p in doc.select(&paras) {
        if p.ancestors().filter_map(ElementRef::wrap).any(|a| is_boilerplate(&a) || skip.contains(&a.id())) {
            continue;
        }
        let n = text_len(p, skip);
        if let Some(parent) = p.parent() {
            add(parent.id(), n);
            if let Some(gp) = parent.parent() {
                add(gp.id(), n / 2);
            }
        }
    }
    let best =
        scores.into_iter().max_by_key(|(_, n)| *n).and_then(|(id, _)| doc.tree.get(id)).and_then(ElementRef::wrap);
    match best {
        Some(b) => vec![b],
        None => {
            let body = sel("body");
            doc.select(&body).next().into_iter().collect()
        }
    }
}

fn meta(doc: &Html, property: &str) -> Option<String> {
    let s = sel(&format!("meta[property=\"{property}\"], meta[name=\"{property}\"]"));
    doc.select(&s).find_map(|m| m.value().attr("content")).map(tidy_line).filter(|t| !t.is_empty())
}

/// `<title>` without the site's name: "How to brew tea | Tea Blog" → "How to brew tea".
fn title_without_site(title: &str, site: Option<&str>) -> String {
    const SEPARATORS: [&str; 7] = [" | ", " – ", " — ", " - ", " · ", " :: ", " » "];
    let Some(sep) = SEPARATORS.iter().find(|s| title.contains(**s)) else { return title.to_string() };
    let parts: Vec<&str> = title.split(sep).map(str::trim).collect();
    if let Some(site) = site {
        let kept: Vec<&str> = parts.iter().copied().filter(|p| !p.eq_ignore_ascii_case(site)).collect();
        if !kept.is_empty() && kept.len() < parts.len() {
            return kept.join(sep);
        }
    }
    // Without the site's name known, the last part is taken to be it: the common convention.
    parts[..parts.len() - 1].join(sep)
}

/// Reads an HTML document into a page. `page_url` is where it was fetched from (relative links
/// are resolved against it, or against `<base href>`); a file has none, and keeps only its
/// absolute links.
pub fn parse_html_page(html: &str, page_url: Option<&Url>, rules: &HtmlRules) -> Result<Page, PageError> {
    let doc = Html::parse_document(html);
    let base_sel = sel("base[href]");
    let base: Option<Url> = doc
        .select(&base_sel)
        .next()
        .and_then(|b| b.value().attr("href"))
        .and_then(|h| match page_url {
            Some(p) => p.join(h.trim()).ok(),
            None => Url::parse(h.trim()).ok(),
        })
        .or_else(|| page_url.cloned());
    let base = base.as_ref();

    let mut skip: HashSet<NodeId> = HashSet::new();
    let nav = find_nav(&doc, rules, base, &mut skip);
    let recommend = find_related(&doc, rules, base, &mut skip);
    let roots = body_roots(&doc, rules, &skip);
    if rules.body.is_some() && roots.is_empty() {
        return Err(PageError { line: 1, message: "`[import] body` in site.toml matches nothing on this page".into() });
    }

    let none = HashSet::new();
    let h1 = sel("h1");
    let title_el = match &rules.title {
        Some(s) => doc.select(s).next(),
        None => roots.iter().find_map(|r| r.select(&h1).next()).or_else(|| doc.select(&h1).next()),
    };
    let title = title_el
        .map(|t| inline_text(t, &none))
        .filter(|t| !t.is_empty())
        .or_else(|| meta(&doc, "og:title"))
        .or_else(|| {
            let t = sel("title");
            let text = doc.select(&t).next().map(|t| inline_text(t, &none)).filter(|t| !t.is_empty())?;
            Some(title_without_site(&text, meta(&doc, "og:site_name").as_deref()))
        })
        .unwrap_or_default();
    if title.is_empty() {
        return Err(PageError {
            line: 1,
            message: "page has no title: it has no <h1>, og:title or <title> (or set `[import] title` in site.toml)"
                .into(),
        });
    }
    if let Some(t) = title_el {
        skip.insert(t.id());
    }

    let mut walker = Walker { skip: &skip, blocks: Vec::new(), cur: String::new(), pre: 0, list: 0 };
    for r in &roots {
        if r.value().name() == "body" || !is_boilerplate(r) {
            walker.walk(*r);
            walker.flush();
        }
    }
    let mut blocks = walker.blocks;

    let mut page = Page { title: title.clone(), title_line: 1, recommend, ..Default::default() };
    if let Some((t, u)) = nav.prev {
        page.prev = Some(t);
        page.prev_url = u;
    }
    if let Some((t, u)) = nav.next {
        page.next = Some(t);
        page.next_url = u;
    }
    // `<<: Title` lines in the text, as the seed's pages have them.
    blocks.retain(|b| match b {
        Block::Para(p) if !p.contains('\n') => match nav_text(p) {
            Some((true, t)) => {
                page.prev.get_or_insert(t);
                false
            }
            Some((false, t)) => {
                page.next.get_or_insert(t);
                false
            }
            None => true,
        },
        _ => true,
    });
    // The title repeated as a heading is not a section.
    blocks.retain(|b| !matches!(b, Block::Heading(h) if same_text(h, &title)));

    let has_headings = blocks.iter().any(|b| matches!(b, Block::Heading(_)));
    let mut heading: Option<String> = None;
    let mut paras: Vec<String> = Vec::new();
    let push = |page: &mut Page, heading: &Option<String>, paras: &mut Vec<String>| {
        if !paras.is_empty() {
            page.sections.push(PageSection { heading: heading.clone(), body: paras.join("\n\n"), line: 1 });
            paras.clear();
        }
    };
    for b in blocks {
        match b {
            Block::Heading(h) => {
                push(&mut page, &heading, &mut paras);
                heading = Some(h);
            }
            Block::Para(p) if !has_headings => {
                page.sections.push(PageSection { heading: None, body: p, line: 1 });
            }
            Block::Para(p) => paras.push(p),
        }
    }
    push(&mut page, &heading, &mut paras);

    let canonical = sel("link[rel~=canonical][href]");
    page.url = doc
        .select(&canonical)
        .find_map(|l| resolve(base, l.value().attr("href")?))
        .or_else(|| meta(&doc, "og:url").and_then(|u| resolve(base, &u)))
        .or_else(|| page_url.map(|u| u.to_string()));
    Ok(page)
}

fn same_text(a: &str, b: &str) -> bool {
    tidy_line(a).to_lowercase() == tidy_line(b).to_lowercase()
}

/// Decodes an HTML document's bytes. The charset comes from a byte order mark, else the HTTP
/// `Content-Type`, else a `<meta charset>` near the start; undeclared text that is not UTF-8 is
/// read as windows-1252, as browsers do. Charsets other than UTF-8, UTF-16 and the Latin-1
/// family are refused by name rather than turned into mojibake.
pub fn decode_html(bytes: &[u8], content_type: Option<&str>) -> Result<String, String> {
    if let Some(rest) = bytes.strip_prefix(b"\xef\xbb\xbf") {
        return utf8(rest);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xff\xfe") {
        return utf16(rest, u16::from_le_bytes);
    }
    if let Some(rest) = bytes.strip_prefix(b"\xfe\xff") {
        return utf16(rest, u16::from_be_bytes);
    }
    let declared = content_type.and_then(charset_param).or_else(|| meta_charset(bytes));
    match declared.as_deref() {
        None => std::str::from_utf8(bytes).map(str::to_string).or_else(|_| Ok(windows_1252(bytes))),
        Some("utf-8" | "utf8" | "unicode-1-1-utf-8") => utf8(bytes),
        Some("utf-16" | "utf-16le") => utf16(bytes, u16::from_le_bytes),
        Some("utf-16be") => utf16(bytes, u16::from_be_bytes),
        Some(
            "iso-8859-1" | "latin1" | "latin-1" | "l1" | "windows-1252" | "cp1252" | "us-ascii" | "ascii"
            | "iso8859-1" | "iso_8859-1" | "x-cp1252",
        ) => Ok(windows_1252(bytes)),
        Some(other) => Err(format!(
            "charset `{other}` is not supported (only UTF-8, UTF-16 and ISO-8859-1/windows-1252 are): serve or save the page as UTF-8"
        )),
    }
}

fn utf8(bytes: &[u8]) -> Result<String, String> {
    std::str::from_utf8(bytes).map(str::to_string).map_err(|e| {
        let at = e.valid_up_to();
        format!("invalid UTF-8 at byte {at} although the page says it is UTF-8: save it as UTF-8")
    })
}

fn utf16(bytes: &[u8], f: fn([u8; 2]) -> u16) -> Result<String, String> {
    let units: Vec<u16> = bytes.chunks(2).filter(|c| c.len() == 2).map(|c| f([c[0], c[1]])).collect();
    String::from_utf16(&units).map_err(|_| "invalid UTF-16: save the page as UTF-8".to_string())
}

/// windows-1252, which browsers use for ISO-8859-1 too: Latin-1 with printable 0x80..0x9f.
fn windows_1252(bytes: &[u8]) -> String {
    const HIGH: [char; 32] = [
        '€', '\u{81}', '‚', 'ƒ', '„', '…', '†', '‡', 'ˆ', '‰', 'Š', '‹', 'Œ', '\u{8d}', 'Ž', '\u{8f}', '\u{90}', '‘',
        '’', '“', '”', '•', '–', '—', '˜', '™', 'š', '›', 'œ', '\u{9d}', 'ž', 'Ÿ',
    ];
    bytes
        .iter()
        .map(|&b| match b {
            0x80..=0x9f => HIGH[(b - 0x80) as usize],
            _ => b as char,
        })
        .collect()
}

/// `charset=` in a Content-Type value, lower-cased and unquoted.
fn charset_param(content_type: &str) -> Option<String> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("charset").then(|| v.trim().trim_matches(['"', '\'']).to_ascii_lowercase())
    })
}

/// The charset a `<meta charset=..>` or `<meta http-equiv=Content-Type content=..>` in the first
/// 1024 bytes declares (the HTML spec's prescan looks that far).
fn meta_charset(bytes: &[u8]) -> Option<String> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(1024)]).to_ascii_lowercase();
    let mut rest = head.as_str();
    while let Some(i) = rest.find("<meta") {
        rest = &rest[i + 5..];
        let tag = &rest[..rest.find('>').unwrap_or(rest.len())];
        if let Some(j) = tag.find("charset") {
            let v = tag[j + 7..].trim_start();
            if let Some(v) = v.strip_prefix('=') {
                let v = v.trim_start().trim_start_matches(['"', '\'']);
                let end = v.find(|c: char| c == '"' || c == '\'' || c == ';' || c == '/' || c.is_whitespace());
                let cs = &v[..end.unwrap_or(v.len())];
                if !cs.is_empty() {
                    return Some(cs.to_string());
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(html: &str) -> Page {
        parse_html_page(html, None, &HtmlRules::default()).unwrap()
    }

    fn bodies(p: &Page) -> Vec<(Option<&str>, &str)> {
        p.sections.iter().map(|s| (s.heading.as_deref(), s.body.as_str())).collect()
    }

    #[test]
    fn blog_layout_keeps_the_article_and_drops_the_chrome() {
        let p = parse(
            "<!doctype html><html><head><title>Brewing tea | Tea Blog</title>\
             <link rel=canonical href='https://tea.example/brewing'></head><body>\
             <header><nav><a href=/>Home</a><a href=/about>About</a></nav></header>\
             <div class=sidebar><p>Subscribe to our newsletter for more tea news every week.</p></div>\
             <article><h1>Brewing&nbsp;tea</h1><p class=byline>By Ann</p>\
             <p>Tea&amp;water: use fresh water, <b>not</b> reboiled.<br>Heat it to 80&#176;C.</p>\
             <h2>Steeping</h2><p>Steep for two minutes.</p><ul><li>Green: 2 min</li><li>Black: 4 min</li></ul>\
             <script>var x = '<p>not text</p>';</script>\
             <div id=comments><h3>3 comments</h3><p>Great post!</p></div></article>\
             <footer><p>© Tea Blog</p></footer></body></html>",
        );
        assert_eq!(p.title, "Brewing\u{a0}tea");
        assert_eq!(p.url.as_deref(), Some("https://tea.example/brewing"));
        assert_eq!(
            bodies(&p),
            vec![
                (None, "By Ann\n\nTea&water: use fresh water, not reboiled.\nHeat it to 80°C."),
                (Some("Steeping"), "Steep for two minutes.\n\n- Green: 2 min\n- Black: 4 min"),
            ]
        );
    }

    #[test]
    fn title_falls_back_to_og_title_then_title_without_the_site_name() {
        let p = parse("<head><meta property=og:title content='From OG'><title>T | S</title></head><p>x</p>");
        assert_eq!(p.title, "From OG");
        let p = parse(
            "<head><meta property=og:site_name content='Docs'><title>Docs — Install guide</title></head><p>x</p>",
        );
        assert_eq!(p.title, "Install guide");
        let p = parse("<head><title>Install guide - Docs</title></head><p>x</p>");
        assert_eq!(p.title, "Install guide");
        let e = parse_html_page("<p>text only</p>", None, &HtmlRules::default()).unwrap_err();
        assert!(e.message.contains("no title"), "{}", e.message);
    }

    #[test]
    fn densest_block_is_the_body_without_article_or_main() {
        let p = parse(
            "<title>Page</title><div class=top><p>Short.</p></div>\
             <div class=content><h1>Real title</h1><p>First long paragraph of the real article text here.</p>\
             <p>Second long paragraph of the real article text here.</p></div>\
             <div class=links><p>Other.</p></div>",
        );
        assert_eq!(p.title, "Real title");
        assert_eq!(p.sections.len(), 2, "{:?}", p.sections);
        assert!(p.sections[0].body.starts_with("First long"));
    }

    #[test]
    fn prev_next_by_rel_by_class_and_by_label() {
        let p = parse(
            "<article><h1>T</h1><p>Body.</p></article>\
             <div class=post-nav><a rel=prev href='https://x.example/a'>« Older one</a>\
             <span class=nav-next><a href='https://x.example/b'>Newer one</a></span></div>",
        );
        assert_eq!(p.prev.as_deref(), Some("Older one"));
        assert_eq!(p.prev_url.as_deref(), Some("https://x.example/a"));
        assert_eq!(p.next.as_deref(), Some("Newer one"));
        let p = parse("<article><h1>T</h1><p>Body.</p><p><a href=/p>Previous: Alpha</a></p><p><a href=/n>Next: Beta →</a></p></article>");
        assert_eq!((p.prev.as_deref(), p.next.as_deref()), (Some("Alpha"), Some("Beta")));
        assert_eq!(bodies(&p), vec![(None, "Body.")]);
    }

    #[test]
    fn related_blocks_by_class_and_by_heading() {
        let p = parse(
            "<article><h1>T</h1><p>Body.</p></article>\
             <section class=related-posts><h2>Related</h2><ul>\
             <li><a href='https://x.example/one'>One</a><p>Teaser one...</p></li>\
             <li><a href='https://x.example/two'>Two</a></li></ul></section>",
        );
        let got: Vec<_> =
            p.recommend.iter().map(|t| (t.title.as_str(), t.teaser.as_deref(), t.url.as_deref())).collect();
        assert_eq!(
            got,
            vec![
                ("One", Some("Teaser one..."), Some("https://x.example/one")),
                ("Two", None, Some("https://x.example/two"))
            ]
        );
        let p = parse(
            "<main><h1>T</h1><p>Body.</p><h2>See also</h2><p><a href=/a>A</a></p><p>About a...</p><p>B</p></main>",
        );
        let got: Vec<_> = p.recommend.iter().map(|t| (t.title.as_str(), t.teaser.as_deref())).collect();
        assert_eq!(got, vec![("A", Some("About a...")), ("B", None)]);
        assert_eq!(bodies(&p), vec![(None, "Body.")]);
    }

    #[test]
    fn selectors_override_the_heuristics() {
        let rules = ImportRules {
            title: Some(".t".into()),
            body: Some(".c".into()),
            related: Some(".r > div".into()),
            ..Default::default()
        };
        let rules = HtmlRules::new(&rules).unwrap();
        let p = parse_html_page(
            "<h1>Wrong</h1><div class=t>Right</div><div class=c><p>Kept.</p></div><article><p>Not this.</p></article>\
             <div class=r><div><a href='https://x.example/z'>Zed</a> zed teaser</div></div>",
            None,
            &rules,
        )
        .unwrap();
        assert_eq!(p.title, "Right");
        assert_eq!(bodies(&p), vec![(None, "Kept.")]);
        assert_eq!(p.recommend[0].teaser.as_deref(), Some("zed teaser"));
        let e = HtmlRules::new(&ImportRules { body: Some("div[".into()), ..Default::default() }).unwrap_err();
        assert!(e.contains("import.body `div[`"), "{e}");
    }

    #[test]
    fn broken_html_still_reads() {
        let p = parse("<h1>Broken <i>title</h1><p>One <b>bold<p>Two &amp &unknown; <div>Three");
        assert_eq!(p.title, "Broken title");
        let texts: Vec<_> = p.sections.iter().map(|s| s.body.as_str()).collect();
        assert_eq!(texts, vec!["One bold", "Two & &unknown;", "Three"]);
    }

    #[test]
    fn relative_links_resolve_against_the_page_url() {
        let u = Url::parse("https://site.example/blog/post").unwrap();
        let p = parse_html_page(
            "<article><h1>T</h1><p>B.</p></article><aside class=recommend><a href='other'>Other</a></aside>",
            Some(&u),
            &HtmlRules::default(),
        )
        .unwrap();
        assert_eq!(p.url.as_deref(), Some("https://site.example/blog/post"));
        assert_eq!(p.recommend[0].url.as_deref(), Some("https://site.example/blog/other"));
    }

    proptest::proptest! {
        /// Any mix of tags, entities, labels and text reads without a panic, and what it reads
        /// has no markup left in its title.
        #[test]
        fn arbitrary_markup_never_panics(parts in proptest::collection::vec(proptest::sample::select(vec![
            "<h1>", "</h1>", "<h2>", "<p>", "</p>", "<br>", "<ul><li>", "</li>", "<ol>", "<table><tr><td>",
            "<article>", "</article>", "<main>", "<nav>", "<div class=related>", "<div class=comments>", "</div>",
            "<a href='/x'>", "<a rel=next href=y>", "</a>", "&amp;", "&nbsp;", "&#x1F600;", "&bogus;", "<<:", ">>:",
            "Previous:", "Next »", "« ", "Recommend", "İ", "Ǆ", "\u{a0}", "text ", "more text. ", "<pre>", "</pre>",
            "<script>", "</script>", "<title>", "</title>", "<", ">", "\"", "'", "<base href=http://h/>",
        ]), 0..60)) {
            let html: String = parts.concat();
            if let Ok(p) = parse_html_page(&html, None, &HtmlRules::default()) {
                proptest::prop_assert!(!p.title.trim().is_empty());
            }
            let _ = decode_html(html.as_bytes(), None);
        }
    }

    #[test]
    fn charsets() {
        assert_eq!(decode_html(b"caf\xe9", None).unwrap(), "café");
        assert_eq!(
            decode_html(b"<meta charset=\"windows-1252\">\x93q\x94", None).unwrap(),
            "<meta charset=\"windows-1252\">“q”"
        );
        assert_eq!(decode_html("é".as_bytes(), Some("text/html; charset=UTF-8")).unwrap(), "é");
        assert!(decode_html(b"\xe9", Some("text/html; charset=utf-8")).unwrap_err().contains("invalid UTF-8"));
        assert!(decode_html(b"x", Some("text/html; charset=Shift_JIS")).unwrap_err().contains("`shift_jis`"));
        assert_eq!(decode_html(b"\xff\xfeh\x00i\x00", None).unwrap(), "hi");
    }
}
