//! Article pages as site owners have them: the scraped text format (title, title again, body
//! paragraphs, `<<:` / `>>:` previous and next, a `Recommend` block of title + teaser pairs) and
//! plain Markdown (`# Title`, `## Section`). Parsing never fails on content; it only reports a page
//! with no title.

/// One page, as written by its site: titles of other pages are not yet ids.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Page {
    pub title: String,
    /// Line of the title in the source, for messages.
    pub title_line: usize,
    pub url: Option<String>,
    pub sections: Vec<PageSection>,
    pub prev: Option<String>,
    pub next: Option<String>,
    /// Where the previous and next pages are, when the page links them (HTML pages do).
    pub prev_url: Option<String>,
    pub next_url: Option<String>,
    pub recommend: Vec<Topic>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageSection {
    pub heading: Option<String>,
    pub body: String,
    pub line: usize,
}

/// A page known only by a link to it: its title and the teaser shown next to the link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub title: String,
    pub teaser: Option<String>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageFormat {
    Text,
    Markdown,
    Html,
}

/// Why a page could not be read; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageError {
    pub line: usize,
    pub message: String,
}

/// Parses a page. Text and Markdown pages differ in how sections are cut: in a text page every
/// paragraph is a section, in Markdown every `##` heading starts one.
pub fn parse_page(text: &str, format: PageFormat) -> Result<Page, PageError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let page = match format {
        PageFormat::Text => parse_text_page(text),
        PageFormat::Markdown => parse_markdown_page(text),
        PageFormat::Html => return super::html::parse_html_page(text, None, &Default::default()),
    };
    if page.title.trim().is_empty() {
        return Err(PageError {
            line: 1,
            message: match format {
                PageFormat::Text => "page has no title: the first line of a page is its title".into(),
                PageFormat::Markdown | PageFormat::Html => "page has no title: start it with a `# Title` line".into(),
            },
        });
    }
    Ok(page)
}

/// A block of non-blank lines with the line number of its first line.
struct Block<'a> {
    line: usize,
    lines: Vec<&'a str>,
}

impl Block<'_> {
    fn text(&self) -> String {
        self.lines.iter().map(|l| l.trim()).collect::<Vec<_>>().join("\n")
    }
}

fn blocks(text: &str) -> Vec<Block<'_>> {
    let mut out: Vec<Block> = Vec::new();
    let mut current: Option<Block> = None;
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            if let Some(b) = current.take() {
                out.push(b);
            }
        } else {
            current.get_or_insert_with(|| Block { line: i + 1, lines: Vec::new() }).lines.push(raw);
        }
    }
    out.extend(current);
    out
}

/// Folding good enough to see that the second block repeats the title.
fn same_title(a: &str, b: &str) -> bool {
    let f = |s: &str| -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase().replace(['\u{2019}', '\u{2018}'], "'")
    };
    f(a) == f(b)
}

/// `<<:` / `>>:` lines: the marker, then any whitespace including the non-breaking space.
pub(crate) fn nav_line(line: &str) -> Option<(bool, &str)> {
    let t = line.trim_start();
    let (is_prev, rest) = if let Some(r) = t.strip_prefix("<<:") {
        (true, r)
    } else if let Some(r) = t.strip_prefix(">>:") {
        (false, r)
    } else {
        return None;
    };
    Some((is_prev, rest.trim_matches(|c: char| c.is_whitespace())))
}

pub(crate) fn is_recommend_heading(line: &str) -> bool {
    let t = line.trim().trim_start_matches('#').trim().trim_end_matches(':').to_lowercase();
    matches!(t.as_str(), "recommend" | "recommended" | "related" | "related topics" | "see also" | "read more")
}

pub(crate) fn ends_with_ellipsis(s: &str) -> bool {
    let t = s.trim_end();
    t.ends_with("...") || t.ends_with('…')
}

fn parse_text_page(text: &str) -> Page {
    let blocks = blocks(text);
    let mut page = Page::default();
    let Some(first) = blocks.first() else { return page };
    page.title = first.lines[0].trim().to_string();
    page.title_line = first.line;
    let mut i = 1;
    // The title block may carry more lines (a subtitle): they belong to the body.
    if first.lines.len() > 1 {
        let rest = Block { line: first.line + 1, lines: first.lines[1..].to_vec() };
        page.sections.push(PageSection { heading: None, body: rest.text(), line: rest.line });
    }
    if blocks.get(1).is_some_and(|b| same_title(&b.text(), &page.title)) {
        i = 2;
    }
    let mut in_recommend = false;
    let mut recommend_blocks: Vec<&Block> = Vec::new();
    for b in &blocks[i..] {
        if in_recommend {
            recommend_blocks.push(b);
            continue;
        }
        if b.lines.len() == 1 && is_recommend_heading(b.lines[0]) {
            in_recommend = true;
            continue;
        }
        let mut body_lines = Vec::new();
        for l in &b.lines {
            match nav_line(l) {
                Some((true, t)) if !t.is_empty() => page.prev = Some(t.to_string()),
                Some((false, t)) if !t.is_empty() => page.next = Some(t.to_string()),
                Some(_) => {}
                None => body_lines.push(*l),
            }
        }
        if !body_lines.is_empty() {
            let line = b.line + b.lines.iter().position(|l| nav_line(l).is_none()).unwrap_or(0);
            let body = Block { line, lines: body_lines };
            page.sections.push(PageSection { heading: None, body: body.text(), line });
        }
    }
    page.recommend = pair_topics(&recommend_blocks.iter().map(|b| b.text()).collect::<Vec<_>>());
    page
}

/// Recommend blocks alternate title and teaser. Sites cut teasers with an ellipsis, so when any
/// block ends with one, a block is a teaser exactly when it does; a title without a teaser then
/// stays a title instead of shifting every later pair.
fn pair_topics(blocks: &[String]) -> Vec<Topic> {
    let mut out = Vec::new();
    let ellipsis_marks_teasers = blocks.iter().any(|b| ends_with_ellipsis(b));
    let mut i = 0;
    while i < blocks.len() {
        let title = blocks[i].lines().next().unwrap_or("").trim().to_string();
        // A title block with a second line carries its teaser on that line.
        let inline_teaser: String = blocks[i].lines().skip(1).collect::<Vec<_>>().join(" ");
        i += 1;
        let teaser = if !inline_teaser.trim().is_empty() {
            Some(inline_teaser.trim().to_string())
        } else if i < blocks.len() && (!ellipsis_marks_teasers || ends_with_ellipsis(&blocks[i])) {
            i += 1;
            Some(blocks[i - 1].replace('\n', " "))
        } else {
            None
        };
        if !title.is_empty() && !ends_with_ellipsis(&title) {
            out.push(Topic { title, teaser, url: None });
        }
    }
    out
}

/// `[text](url)` → (text, url) when the whole item is one link.
fn split_link(s: &str) -> Option<(String, String, &str)> {
    let s = s.trim_start();
    let rest = s.strip_prefix('[')?;
    let close = rest.find("](")?;
    let text = &rest[..close];
    let after = &rest[close + 2..];
    let end = after.find(')')?;
    Some((text.trim().to_string(), after[..end].trim().to_string(), &after[end + 1..]))
}

fn parse_markdown_page(text: &str) -> Page {
    let mut page = Page::default();
    let mut body = text;
    let mut line_offset = 0;
    // YAML front matter from static site generators: take `title:` and `url:`/`permalink:`.
    if let Some(rest) = text.strip_prefix("---\n").or_else(|| text.strip_prefix("---\r\n")) {
        if let Some(end) = rest.find("\n---") {
            for l in rest[..end].lines() {
                if let Some((k, v)) = l.split_once(':') {
                    let v = v.trim().trim_matches('"').trim_matches('\'').to_string();
                    match k.trim() {
                        "title" if !v.is_empty() => page.title = v,
                        "url" | "permalink" | "canonical_url" if !v.is_empty() => page.url = Some(v),
                        _ => {}
                    }
                }
            }
            let consumed = 4 + end + 4;
            line_offset = text[..consumed.min(text.len())].lines().count();
            body = rest.get(end + 4..).unwrap_or("");
            body = body.split_once('\n').map(|(_, b)| b).unwrap_or("");
        }
    }
    if !page.title.is_empty() {
        page.title_line = 1;
    }
    let mut heading: Option<String> = None;
    let mut heading_line = 0;
    let mut buf: Vec<String> = Vec::new();
    let mut buf_line = 0;
    let mut in_recommend = false;
    let mut recommend_items: Vec<String> = Vec::new();
    let mut in_code = false;

    let flush = |page: &mut Page, heading: &Option<String>, buf: &mut Vec<String>, line: usize| {
        let text = buf.join("\n").trim().to_string();
        buf.clear();
        if !text.is_empty() || heading.is_some() {
            if text.is_empty() {
                return;
            }
            page.sections.push(PageSection { heading: heading.clone(), body: text, line });
        }
    };

    for (i, raw) in body.lines().enumerate() {
        let n = i + 1 + line_offset;
        let t = raw.trim_end();
        if t.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        if !in_code {
            if let Some(h) = t.strip_prefix("# ") {
                if page.title.is_empty() {
                    page.title = h.trim().to_string();
                    page.title_line = n;
                    continue;
                }
            }
            if let Some(h) = t.strip_prefix("## ") {
                if in_recommend {
                    // A heading after the recommend list ends it.
                    in_recommend = false;
                }
                if is_recommend_heading(h) {
                    flush(&mut page, &heading, &mut buf, if heading.is_some() { heading_line } else { buf_line });
                    in_recommend = true;
                    continue;
                }
                flush(&mut page, &heading, &mut buf, if heading.is_some() { heading_line } else { buf_line });
                heading = Some(h.trim().trim_end_matches('#').trim().to_string());
                heading_line = n;
                continue;
            }
            if let Some((is_prev, title)) = nav_line(t) {
                let title = split_link(title).map(|(x, _, _)| x).unwrap_or_else(|| title.to_string());
                if !title.is_empty() {
                    if is_prev {
                        page.prev = Some(title);
                    } else {
                        page.next = Some(title);
                    }
                }
                continue;
            }
        }
        if in_recommend {
            recommend_items.push(t.to_string());
            continue;
        }
        if buf.is_empty() && t.trim().is_empty() {
            continue;
        }
        if buf.is_empty() {
            buf_line = n;
        }
        buf.push(t.to_string());
    }
    flush(&mut page, &heading, &mut buf, if heading.is_some() { heading_line } else { buf_line });
    page.recommend = markdown_topics(&recommend_items);
    page
}

/// Recommend items in Markdown: list items (`- [Title](url) — teaser`, `- Title: teaser`) or,
/// without bullets, text-page style title/teaser paragraphs.
fn markdown_topics(lines: &[String]) -> Vec<Topic> {
    let bullets: Vec<&str> = lines
        .iter()
        .filter_map(|l| {
            let t = l.trim_start();
            t.strip_prefix("- ").or_else(|| t.strip_prefix("* ")).or_else(|| t.strip_prefix("+ "))
        })
        .collect();
    if bullets.is_empty() {
        let paragraphs: Vec<String> =
            lines.join("\n").split("\n\n").map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect();
        return pair_topics(&paragraphs);
    }
    bullets
        .into_iter()
        .filter_map(|item| {
            let (title, url, rest) = match split_link(item) {
                Some((t, u, rest)) => (t, Some(u), rest.to_string()),
                None => {
                    let (t, rest) = item
                        .split_once(" — ")
                        .or_else(|| item.split_once(" – "))
                        .or_else(|| item.split_once(" - "))
                        .unwrap_or((item, ""));
                    (t.trim().to_string(), None, rest.to_string())
                }
            };
            let teaser = rest.trim().trim_start_matches(['—', '–', '-', ':']).trim().to_string();
            (!title.is_empty()).then(|| Topic {
                title,
                teaser: (!teaser.is_empty()).then_some(teaser),
                url: url.filter(|u| !u.is_empty()),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED: &str = include_str!("../../../tests/data/seed-page.txt");

    #[test]
    fn seed_page_has_five_sections_and_seventeen_links() {
        let p = parse_page(SEED, PageFormat::Text).unwrap();
        assert_eq!(p.title, "What causes knee pain when running?");
        assert_eq!(p.sections.len(), 5);
        assert!(p.sections[0].body.starts_with("Some friends may not do warm-up"));
        assert!(p.sections[3].body.starts_with("Running posture."));
        assert_eq!(p.prev.as_deref(), Some("What should I do if I can’t play basketball?"));
        assert_eq!(p.next.as_deref(), Some("What sportswear should I wear for running?"));
        assert_eq!(p.recommend.len(), 15);
        assert_eq!(p.recommend[0].title, "What is the correct way to do sit-ups?");
        assert_eq!(p.recommend[0].teaser.as_deref(), Some("Exercise is a lifestyle for many people nowadays,..."));
        assert_eq!(p.recommend[14].title, "Can you use skipping rope to lose weight and slim your calves?");
    }

    #[test]
    fn blocks_after_the_body_are_optional() {
        let p = parse_page("Title\n\nTitle\n\nOne.\n\nTwo.\n", PageFormat::Text).unwrap();
        assert_eq!(p.sections.len(), 2);
        assert_eq!(p.sections[1].line, 7);
        assert!(p.prev.is_none() && p.next.is_none() && p.recommend.is_empty());
    }

    #[test]
    fn a_missing_teaser_does_not_shift_the_pairs() {
        let p = parse_page(
            "T\n\nBody.\n\nRecommend\n\nFirst topic\n\nTeaser one...\n\nSecond topic\n\nThird topic\n\nTeaser three…\n",
            PageFormat::Text,
        )
        .unwrap();
        let titles: Vec<_> = p.recommend.iter().map(|t| (t.title.as_str(), t.teaser.is_some())).collect();
        assert_eq!(titles, vec![("First topic", true), ("Second topic", false), ("Third topic", true)]);
    }

    #[test]
    fn markdown_pages_cut_sections_at_headings() {
        let md = "# How to brew tea\n\nIntro paragraph.\n\n## Water\n\nUse fresh water.\n\nNot too hot.\n\n## Time\n\nThree minutes.\n\n<<: [Coffee basics](/coffee)\n\n## Related\n\n- [Green tea](https://x/green) — why it is bitter\n- Oolong: a partly oxidised tea\n";
        let p = parse_page(md, PageFormat::Markdown).unwrap();
        assert_eq!(p.title, "How to brew tea");
        assert_eq!(p.sections.len(), 3);
        assert_eq!(p.sections[0].heading, None);
        assert_eq!(p.sections[1].heading.as_deref(), Some("Water"));
        assert_eq!(p.sections[1].body, "Use fresh water.\n\nNot too hot.");
        assert_eq!(p.sections[2].line, 11);
        assert_eq!(p.prev.as_deref(), Some("Coffee basics"));
        assert_eq!(p.recommend.len(), 2);
        assert_eq!(p.recommend[0].url.as_deref(), Some("https://x/green"));
        assert_eq!(p.recommend[0].teaser.as_deref(), Some("why it is bitter"));
        assert_eq!(p.recommend[1].title, "Oolong: a partly oxidised tea");
    }

    #[test]
    fn markdown_yaml_front_matter_gives_title_and_url() {
        let md = "---\ntitle: \"Tea\"\npermalink: https://example.org/tea\n---\nBody text.\n";
        let p = parse_page(md, PageFormat::Markdown).unwrap();
        assert_eq!(p.title, "Tea");
        assert_eq!(p.url.as_deref(), Some("https://example.org/tea"));
        assert_eq!(p.sections.len(), 1);
        assert_eq!(p.sections[0].line, 5);
    }

    #[test]
    fn pages_without_title_are_errors() {
        assert!(parse_page("", PageFormat::Text).is_err());
        assert!(parse_page("\n\n  \n", PageFormat::Text).is_err());
        assert!(parse_page("no heading here\n", PageFormat::Markdown).is_err());
    }
}
