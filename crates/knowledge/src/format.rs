//! The knowledge file: one article per Markdown file with TOML front matter between `+++` lines.
//!
//! ```text
//! +++
//! id = "what-causes-knee-pain-when-running"
//! title = "What causes knee pain when running?"
//! related = ["what-is-the-correct-way-to-do-sit-ups"]
//! +++
//!
//! A paragraph is a section.
//!
//! ## A heading starts a section
//!
//! that runs to the next heading.
//! ```
//!
//! A stub (a topic known only by a link to it) has `stub = true`, a `teaser` and no body.

use serde::{Deserialize, Serialize};

/// Front matter fields, in the order they are written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontMatter {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stub: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub teaser: Option<String>,
    /// Other ways people ask for this article; matched like the title.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub questions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSection {
    pub heading: Option<String>,
    pub body: String,
    pub line: usize,
}

/// A parsed knowledge file, with the line numbers messages need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArticleFile {
    pub front: FrontMatter,
    pub sections: Vec<FileSection>,
    /// 1-based line where the front matter text starts (after the opening `+++`).
    pub front_line: usize,
    front_text: String,
}

impl ArticleFile {
    /// The line of the first front matter line mentioning `needle` (a field name or a value),
    /// so that an error about a field points at it.
    pub fn line_of(&self, needle: &str) -> usize {
        self.find_line(needle).unwrap_or(self.front_line)
    }

    /// The line of the first front matter line mentioning `needle`, if any.
    pub fn find_line(&self, needle: &str) -> Option<usize> {
        // A field name matches where the field is set (`id = ...`), not inside another value
        // (a title like "Avoid injuries" mentions `id` too).
        let is_key = !needle.is_empty() && needle.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        let found = |l: &str| {
            if is_key {
                l.trim_start().strip_prefix(needle).is_some_and(|rest| rest.trim_start().starts_with('='))
            } else {
                l.contains(needle)
            }
        };
        self.front_text.lines().position(found).map(|i| self.front_line + i)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    pub line: usize,
    pub message: String,
}

/// Whether a file's text is in the knowledge format (as opposed to a raw page).
pub fn has_front_matter(text: &str) -> bool {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines().next().is_some_and(|l| l.trim_end() == "+++")
}

pub fn parse_article_file(text: &str) -> Result<ArticleFile, FormatError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, l)) if l.trim_end() == "+++" => {}
        _ => return Err(FormatError { line: 1, message: "expected `+++` to open the front matter".into() }),
    }
    let mut front_lines = Vec::new();
    let mut body_start = None;
    for (i, l) in lines.by_ref() {
        if l.trim_end() == "+++" {
            body_start = Some(i + 1);
            break;
        }
        front_lines.push(l);
    }
    let Some(body_start) = body_start else {
        return Err(FormatError {
            line: 1,
            message: "front matter is not closed: add a `+++` line after the last field".into(),
        });
    };
    let front_text = front_lines.join("\n");
    let front: FrontMatter = toml::from_str(&front_text).map_err(|e| {
        // 0-based line of the error within the front matter: the newlines before its start.
        let line = e.span().map_or(0, |s| {
            let end = s.start.min(front_text.len());
            front_text.as_bytes()[..end].iter().filter(|&&b| b == b'\n').count()
        });
        FormatError { line: 2 + line, message: format!("bad front matter: {}", toml_message(e.message())) }
    })?;
    let body: Vec<&str> = text.lines().skip(body_start).collect();
    let sections = parse_body(&body, body_start + 1, &front.title);
    Ok(ArticleFile { front, sections, front_line: 2, front_text })
}

/// Paragraphs outside headings are sections of their own; a `## heading` starts a section that
/// runs to the next heading. A leading `# Title` repeating the title is skipped.
fn parse_body(lines: &[&str], first_line: usize, title: &str) -> Vec<FileSection> {
    let mut out = Vec::new();
    let mut heading: Option<(String, usize)> = None;
    let mut buf: Vec<&str> = Vec::new();
    let mut buf_line = 0;
    let mut in_code = false;
    let mut seen_content = false;

    fn push(out: &mut Vec<FileSection>, heading: &Option<(String, usize)>, buf: &mut Vec<&str>, buf_line: usize) {
        let body = buf.join("\n").trim().to_string();
        buf.clear();
        if !body.is_empty() {
            out.push(FileSection {
                heading: heading.as_ref().map(|h| h.0.clone()),
                body,
                line: heading.as_ref().map_or(buf_line, |h| h.1),
            });
        }
    }

    for (i, raw) in lines.iter().enumerate() {
        let n = first_line + i;
        let t = raw.trim_end();
        if t.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        if !in_code {
            if let Some(h) = t.strip_prefix("# ") {
                if !seen_content && h.trim() == title.trim() {
                    continue;
                }
            }
            if let Some(h) = t.strip_prefix("## ").or((t == "##").then_some("")) {
                push(&mut out, &heading, &mut buf, buf_line);
                heading = Some((h.trim().trim_end_matches('#').trim().to_string(), n));
                seen_content = true;
                continue;
            }
            if t.trim().is_empty() && heading.is_none() {
                push(&mut out, &heading, &mut buf, buf_line);
                continue;
            }
        }
        if buf.is_empty() && t.trim().is_empty() {
            continue;
        }
        if buf.is_empty() {
            buf_line = n;
        }
        seen_content = true;
        buf.push(t);
    }
    push(&mut out, &heading, &mut buf, buf_line);
    out
}

/// A TOML error message on one line (the parser splits some over several), with what to add
/// when a field is missing.
pub(crate) fn toml_message(message: &str) -> String {
    let one_line = message.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("; ");
    match one_line.strip_prefix("missing field `").and_then(|r| r.split_once('`')) {
        Some((field, _)) => format!("{one_line}: add `{field} = \"...\"` between the `+++` lines"),
        None => one_line,
    }
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// Writes a knowledge file. The output is deterministic so that re-importing is idempotent.
pub fn write_article_file(front: &FrontMatter, sections: &[FileSection]) -> String {
    let mut out = String::from("+++\n");
    let mut field = |k: &str, v: &str| out.push_str(&format!("{k} = {}\n", quote(v)));
    field("id", &front.id);
    field("title", &front.title);
    if let Some(u) = &front.url {
        field("url", u);
    }
    if front.stub {
        out.push_str("stub = true\n");
    }
    if let Some(t) = &front.teaser {
        out.push_str(&format!("teaser = {}\n", quote(t)));
    }
    for (k, list) in [("questions", &front.questions), ("keywords", &front.keywords), ("related", &front.related)] {
        if !list.is_empty() {
            out.push_str(&format!("{k} = [\n"));
            for v in list {
                out.push_str(&format!("  {},\n", quote(v)));
            }
            out.push_str("]\n");
        }
    }
    if let Some(p) = &front.prev {
        out.push_str(&format!("prev = {}\n", quote(p)));
    }
    if let Some(n) = &front.next {
        out.push_str(&format!("next = {}\n", quote(n)));
    }
    out.push_str("+++\n");
    write_body(&mut out, sections, &front.title);
    out
}

/// Writes sections as a knowledge file body; returns, per section, the line of `out` (counted
/// from 1 where `out` starts) at which it begins. Body lines the parser would take for
/// structure — `## ` headings and a leading `# Title` — are escaped with a backslash
/// (`\## ...`), which `plain_text` removes, and a code block left open is closed, so that what
/// is written reads back as it was.
fn write_body(out: &mut String, sections: &[FileSection], title: &str) -> Vec<usize> {
    let fence = |l: &str| l.trim_start().starts_with("```");
    let mut starts = Vec::with_capacity(sections.len());
    let mut line = out.matches('\n').count() + 1;
    for s in sections {
        out.push('\n');
        line += 1;
        starts.push(line);
        line += s.heading.is_some() as usize * 2;
        match s.heading.as_deref().map(str::trim) {
            Some("") => out.push_str("##\n\n"),
            Some(h) => out.push_str(&format!("## {h}\n\n")),
            None => {}
        }
        let lines: Vec<&str> = s.body.trim().lines().map(str::trim_end).collect();
        let mut in_code = false;
        let mut first = true;
        for t in lines {
            let escape = if fence(t) {
                in_code = !in_code;
                false
            } else {
                !in_code
                    && (t.starts_with("## ")
                        || t == "##"
                        || (first && t.strip_prefix("# ").is_some_and(|h| h.trim() == title.trim())))
            };
            if escape {
                out.push('\\');
            }
            out.push_str(t);
            out.push('\n');
            line += 1;
            first &= t.trim().is_empty();
        }
        if in_code {
            // A code block left open would swallow the sections after it.
            out.push_str("```\n");
            line += 1;
        }
    }
    starts
}

/// Sections as they read back from a knowledge file: what a page's sections become once
/// imported (paragraphs outside headings are sections of their own). The loader applies this to
/// raw pages too, so that a page in the knowledge dir and its import give the same articles.
pub fn normalize_sections(sections: &[FileSection], title: &str) -> Vec<FileSection> {
    let mut text = String::new();
    let starts = write_body(&mut text, sections, title);
    let lines: Vec<&str> = text.lines().collect();
    parse_body(&lines, 1, title)
        .into_iter()
        .map(|mut piece| {
            // Back to the line of the section it came from.
            if let Some(k) = starts.iter().rposition(|&st| st <= piece.line) {
                piece.line = sections[k].line + (piece.line - starts[k]);
            }
            piece
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let front = FrontMatter {
            id: "a".into(),
            title: "A \"quoted\" title".into(),
            url: Some("https://x/a".into()),
            questions: vec!["why a?".into()],
            related: vec!["b".into(), "c".into()],
            next: Some("b".into()),
            ..Default::default()
        };
        let sections = vec![
            FileSection { heading: None, body: "First paragraph.".into(), line: 0 },
            FileSection { heading: None, body: "Second.".into(), line: 0 },
            FileSection { heading: Some("More".into()), body: "Under a heading.\n\nStill under it.".into(), line: 0 },
        ];
        let text = write_article_file(&front, &sections);
        let parsed = parse_article_file(&text).unwrap();
        assert_eq!(parsed.front, front);
        let bodies: Vec<_> = parsed.sections.iter().map(|s| (s.heading.clone(), s.body.clone())).collect();
        let want: Vec<_> = sections.iter().map(|s| (s.heading.clone(), s.body.clone())).collect();
        assert_eq!(bodies, want);
        assert_eq!(write_article_file(&parsed.front, &parsed.sections), text);
    }

    #[test]
    fn section_lines_point_into_the_file() {
        let text = "+++\nid = \"a\"\ntitle = \"A\"\n+++\n\n# A\n\nOne.\n\n## H\n\nTwo.\n";
        let f = parse_article_file(text).unwrap();
        assert_eq!(f.sections.len(), 2);
        assert_eq!(f.sections[0].line, 8);
        assert_eq!(f.sections[1].line, 10);
    }

    #[test]
    fn front_matter_errors_name_the_line() {
        let e = parse_article_file("+++\nid = \"a\"\ntitle = \"A\"\nrelatd = []\n+++\nx\n").unwrap_err();
        assert_eq!(e.line, 4, "{e:?}");
        assert!(e.message.contains("relatd"), "{}", e.message);
        let e = parse_article_file("+++\nid = \"a\"\ntitle = A\n+++\n").unwrap_err();
        assert_eq!(e.line, 3, "{e:?}");
        let e = parse_article_file("+++\nid = \"a\"\n").unwrap_err();
        assert!(e.message.contains("not closed"));
        let e = parse_article_file("+++\ntitle = \"A\"\n+++\n").unwrap_err();
        assert!(e.message.contains("id"), "{}", e.message);
    }
}
