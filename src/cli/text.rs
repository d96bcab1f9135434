//! Replies rendered as console text: numbered choices instead of buttons, `*word*` (or bold on
//! a terminal) for matched words.

use articlebot_engine::{text, AnswerView, Link, Reply, TopicRef};

/// How matched words and titles are marked, and whether the console's own words are listed.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub bold: (&'static str, &'static str),
    pub title: (&'static str, &'static str),
    /// Help lists the console's words (`more`, numbers, `quit`), not only the bot's commands.
    pub console: bool,
}

impl Style {
    pub const PLAIN: Style = Style { bold: ("*", "*"), title: ("", ""), console: false };
    pub const TERMINAL: Style = Style { bold: ("\x1b[1m", "\x1b[0m"), title: ("\x1b[1;36m", "\x1b[0m"), console: true };

    /// Bold and colour on a terminal unless `NO_COLOR` is set (no-color.org); plain when piped.
    pub fn for_console(terminal: bool) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        if terminal && !no_color {
            Style::TERMINAL
        } else {
            Style { console: true, ..Style::PLAIN }
        }
    }
}

/// Lines longer than `width` characters broken at spaces; escape sequences take no room. A
/// word longer than the line stays whole.
pub fn wrap(text: &str, width: usize) -> String {
    fn visible(s: &str) -> usize {
        let mut n = 0;
        let mut escape = false;
        for c in s.chars() {
            match c {
                '\x1b' => escape = true,
                'm' if escape => escape = false,
                _ if escape => {}
                _ => n += 1,
            }
        }
        n
    }
    let width = width.max(20);
    let mut out = String::with_capacity(text.len() + 16);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut len = 0;
        for (j, word) in line.split(' ').enumerate() {
            let w = visible(word);
            if j > 0 {
                if len + 1 + w > width && len > 0 {
                    out.push('\n');
                    len = 0;
                } else {
                    out.push(' ');
                    len += 1;
                }
            }
            out.push_str(word);
            len += w;
        }
    }
    out
}

/// Numbered lines from `from` on: the number a user types to pick each.
fn numbered(out: &mut String, from: usize, items: &[TopicRef]) {
    for (i, t) in items.iter().enumerate() {
        out.push_str(&format!("\n  {}. {}", from + i + 1, t.title));
    }
}

/// People read the id (what `/start` takes); short keys stay inside Telegram's buttons.
fn link(l: &Link) -> String {
    match l {
        Link::Url(u) => u.clone(),
        Link::Start { id, .. } => format!("/start {id}"),
    }
}

/// The next and previous articles, then the related topics (under `heading`), numbered in the
/// order the engine takes typed numbers.
fn onward(out: &mut String, next: Option<&TopicRef>, prev: Option<&TopicRef>, heading: &str, related: &[TopicRef]) {
    let mut n = 0;
    for (label, t) in [(text::NEXT_ARTICLE, next), (text::PREV_ARTICLE, prev)] {
        if let Some(t) = t {
            n += 1;
            out.push_str(&format!("\n  {n}. {label}: {}", t.title));
        }
    }
    if !related.is_empty() {
        out.push_str(&format!("\n{heading}"));
        numbered(out, n, related);
    }
}

fn answer(a: &AnswerView, style: Style, hints: bool) -> String {
    let mut out = format!("{}{}{}", style.title.0, a.article.title, style.title.1);
    if let Some(s) = a.section {
        if a.sections > 1 {
            out.push_str(&format!("  [{} of {}]", s + 1, a.sections));
        }
    }
    if let Some(h) = &a.heading {
        out.push_str(&format!("\n{h}"));
    }
    out.push_str("\n\n");
    out.push_str(&a.snippet.render(style.bold.0, style.bold.1, |t| t.to_string()));
    out.push('\n');
    if a.stub {
        out.push_str(&format!("\n{}", text::STUB_ONLY));
        if let Some(l) = &a.link {
            out.push_str(&format!("\n{}: {}", text::STUB_ON_SITE, link(l)));
        }
    } else if let Some(l) = &a.link {
        out.push_str(&format!("\n{}: {}", text::READ_MORE, link(l)));
    }
    if hints && a.next.is_some() {
        out.push_str(&format!("\n{}: type \"more\"", text::NEXT_SECTION));
    }
    let heading = if a.stub { text::CLOSEST_FULL } else { "Related:" };
    onward(&mut out, a.next_article.as_ref(), a.prev_article.as_ref(), heading, &a.related);
    if hints {
        out.push_str("\nWas this helpful? Type \"up\" or \"down\".");
    }
    out
}

/// Renders a reply; `hints` adds the console commands that stand in for buttons.
pub fn render(reply: &Reply, style: Style, hints: bool) -> String {
    match reply {
        Reply::Answer(a) => answer(a, style, hints),
        Reply::Suggest(options) => {
            let mut out = text::DID_YOU_MEAN.to_string();
            for (i, c) in options.iter().enumerate() {
                let heading = c.heading.as_deref().map(|h| format!(" — {h}")).unwrap_or_default();
                out.push_str(&format!("\n  {}. {}{heading}", i + 1, c.topic.title));
            }
            if hints {
                out.push_str(&format!("\n{}? Type \"none\".", text::NONE_OF_THESE));
            }
            out
        }
        Reply::Unknown { noted, .. } => format!("{} Type /topics to see what I know about.", text::dont_know(*noted)),
        Reply::Smalltalk { kind, bot_name } => text::smalltalk(*kind, bot_name),
        Reply::Welcome { bot_name, popular } => {
            let mut out = text::welcome(bot_name);
            numbered(&mut out, 0, popular);
            out
        }
        Reply::Help { bot_name } if style.console => text::console_help(bot_name),
        Reply::Help { bot_name } => text::help(bot_name),
        Reply::Topics { page, pages, items } => {
            let mut out = format!("{} (page {} of {})", text::TOPICS, page + 1, pages);
            numbered(&mut out, 0, items);
            if page + 1 < *pages {
                out.push_str(&format!("\nNext page: type \"more\" (or /topics {})", page + 2));
            }
            out
        }
        Reply::EndOfArticle { stub, prev_article, next_article, related, .. } => {
            let (mut out, heading) = if *stub {
                (text::STUB_END.to_string(), text::CLOSEST_FULL)
            } else {
                (text::END_OF_ARTICLE.to_string(), text::RELATED)
            };
            onward(&mut out, next_article.as_ref(), prev_article.as_ref(), heading, related);
            out
        }
        Reply::NothingToContinue => text::NOTHING_TO_CONTINUE.into(),
        Reply::NothingBefore => text::NOTHING_BEFORE.into(),
        Reply::NoMoreChoices => text::NO_MORE_CHOICES.into(),
        Reply::NothingToRate => text::NOTHING_TO_RATE.into(),
        Reply::Gone => text::GONE.into(),
        Reply::Unavailable => text::UNAVAILABLE.into(),
        Reply::NoSuchChoice => text::NO_SUCH_CHOICE.into(),
        Reply::Reset => text::RESET.into(),
        Reply::Forgotten { existed } => text::forgotten(*existed).into(),
        Reply::FeedbackThanks { up } => text::feedback_thanks(*up).into(),
        Reply::TextOnly => text::TEXT_ONLY.into(),
        Reply::Empty => text::EMPTY.into(),
        Reply::Duplicate => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_wrap_at_spaces_and_escapes_take_no_room() {
        let text = "one two three four five six seven eight nine ten eleven twelve\n  1. short";
        let wrapped = wrap(text, 20);
        assert!(wrapped.lines().all(|l| l.chars().count() <= 20), "{wrapped}");
        assert_eq!(wrapped.replace('\n', " "), text.replace('\n', " "));
        let bold = "\x1b[1mknee\x1b[0m pain after running is common among beginners who run";
        assert!(wrap(bold, 30).lines().next().unwrap().contains("running"), "{}", wrap(bold, 30));
        assert_eq!(wrap("averyveryverylongwordthatdoesnotfit x", 20), "averyveryverylongwordthatdoesnotfit\nx");
    }
}
