//! Replies as Telegram messages: HTML text (everything escaped, within Telegram's 4096 limit as
//! Telegram measures it: see [`telegram_len`]) and an inline keyboard whose buttons carry
//! `callback::Action`s.

use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup};

use super::callback::Action;
use articlebot_engine::{text, AnswerView, Choice, Link, Reply, Snippet, TopicRef};

/// Telegram's limit on a message's text, in what [`telegram_len`] counts.
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Button labels longer than this are cut: long labels wrap badly on phones.
const MAX_LABEL_CHARS: usize = 60;
const MAX_TITLE_CHARS: usize = 300;

/// A message ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub html: String,
    pub keyboard: Option<InlineKeyboardMarkup>,
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

pub(super) fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

pub(super) fn button(label: &str, action: Action) -> InlineKeyboardButton {
    InlineKeyboardButton::callback(cut(label, MAX_LABEL_CHARS), action.encode())
}

fn topic_rows(topics: &[TopicRef]) -> Vec<Vec<InlineKeyboardButton>> {
    topics.iter().map(|t| vec![button(&t.title, Action::Open { key: t.key.clone(), section: None })]).collect()
}

/// Did-you-mean buttons open the section that matched; two sections of one article are told
/// apart by their headings.
fn choice_rows(choices: &[Choice]) -> Vec<Vec<InlineKeyboardButton>> {
    choices
        .iter()
        .map(|c| {
            let twice = choices.iter().filter(|o| o.topic.idx == c.topic.idx).count() > 1;
            let label = match (&c.heading, twice) {
                (Some(h), true) => format!("{} — {h}", c.topic.title),
                _ => c.topic.title.clone(),
            };
            vec![button(&label, Action::Open { key: c.topic.key.clone(), section: c.section })]
        })
        .collect()
}

/// The deep link that opens an article in a chat with the bot.
pub fn deep_link(bot_username: &str, param: &str) -> String {
    format!("https://t.me/{bot_username}?start={param}")
}

fn link_url(link: &Link, bot_username: &str) -> String {
    match link {
        Link::Url(u) => u.clone(),
        Link::Start { param, .. } => deep_link(bot_username, param),
    }
}

/// The message text of an answer.
pub fn answer_html(a: &AnswerView, bot_username: &str) -> String {
    let mut html = format!("<b>{}</b>", escape(&cut(&a.article.title, MAX_TITLE_CHARS)));
    if let Some(s) = a.section {
        if a.sections > 1 {
            html.push_str(&format!(" <i>({}/{})</i>", s + 1, a.sections));
        }
    }
    if let Some(h) = &a.heading {
        html.push_str(&format!("\n<i>{}</i>", escape(&cut(h, MAX_TITLE_CHARS))));
    }
    html.push_str("\n\n");
    html.push_str(&a.snippet.render("<b>", "</b>", escape));
    let href =
        |l: &Link, label: &str| format!("<a href=\"{}\">{}</a>", escape(&link_url(l, bot_username)), escape(label));
    if a.stub {
        html.push_str(&format!("\n\n{}", escape(text::STUB_ONLY)));
        if let Some(l) = &a.link {
            html.push_str(&format!(" {}", href(l, text::STUB_ON_SITE)));
        }
        if !a.related.is_empty() {
            html.push_str(&format!("\n{}", escape(text::CLOSEST_FULL)));
        }
    } else if let Some(l) = &a.link {
        html.push_str(&format!("\n\n{}", href(l, text::READ_MORE)));
    }
    html
}

/// The next and previous articles, each on its own row, then the related topics.
fn onward_rows(
    next: Option<&TopicRef>,
    prev: Option<&TopicRef>,
    related: &[TopicRef],
) -> Vec<Vec<InlineKeyboardButton>> {
    let mut rows = Vec::new();
    if let Some(t) = next {
        let label = format!("{}: {} ▶", text::NEXT_ARTICLE, t.title);
        rows.push(vec![button(&label, Action::Open { key: t.key.clone(), section: None })]);
    }
    if let Some(t) = prev {
        let label = format!("◀ {}: {}", text::PREV_ARTICLE, t.title);
        rows.push(vec![button(&label, Action::Open { key: t.key.clone(), section: None })]);
    }
    rows.extend(topic_rows(related));
    rows
}

/// The message an inline-mode result sends: title, snippet, link.
pub fn inline_html(topic: &TopicRef, snippet: &Snippet, url: Option<&str>, bot_username: &str) -> String {
    let link = match url {
        Some(u) => u.to_string(),
        None => deep_link(bot_username, &topic.key),
    };
    format!(
        "<b>{}</b>\n\n{}\n\n<a href=\"{}\">{}</a>",
        escape(&cut(&topic.title, MAX_TITLE_CHARS)),
        snippet.render("<b>", "</b>", escape),
        escape(&link),
        escape(text::READ_MORE)
    )
}

fn answer(a: &AnswerView, bot_username: &str) -> Rendered {
    let mut rows = Vec::new();
    if let Some(next) = a.next {
        rows.push(vec![button(
            &format!("{} ▶", text::NEXT_SECTION),
            Action::Next { key: a.article.key.clone(), section: next },
        )]);
    }
    rows.extend(onward_rows(a.next_article.as_ref(), a.prev_article.as_ref(), &a.related));
    rows.push(vec![
        button("👍", Action::Feedback { key: a.article.key.clone(), section: a.section, up: true }),
        button("👎", Action::Feedback { key: a.article.key.clone(), section: a.section, up: false }),
    ]);
    Rendered { html: answer_html(a, bot_username), keyboard: Some(InlineKeyboardMarkup::new(rows)) }
}

fn plain(text: &str) -> Rendered {
    Rendered { html: escape(text), keyboard: None }
}

fn topics_button() -> Vec<InlineKeyboardButton> {
    vec![button("📚 Topics", Action::Topics { page: 0 })]
}

/// Renders a reply; `None` for replies that send nothing.
pub fn render(reply: &Reply, bot_username: &str) -> Option<Rendered> {
    let r = match reply {
        Reply::Answer(a) => answer(a, bot_username),
        Reply::Suggest(options) => {
            let mut rows = choice_rows(options);
            rows.push(vec![button(text::NONE_OF_THESE, Action::NoneOfThese)]);
            Rendered { html: escape(text::DID_YOU_MEAN), keyboard: Some(InlineKeyboardMarkup::new(rows)) }
        }
        Reply::Unknown { noted, watch } => {
            let mut rows: Vec<Vec<InlineKeyboardButton>> =
                watch.iter().map(|&question| vec![button(text::WATCH, Action::Watch { question })]).collect();
            rows.push(topics_button());
            Rendered {
                html: escape(&format!("{} {}", text::dont_know(*noted), text::BROWSE_TOPICS)),
                keyboard: Some(InlineKeyboardMarkup::new(rows)),
            }
        }
        Reply::Smalltalk { kind, bot_name } => Rendered {
            html: escape(&text::smalltalk(*kind, bot_name)),
            keyboard: Some(InlineKeyboardMarkup::new(vec![topics_button()])),
        },
        Reply::Welcome { bot_name, popular } => {
            let mut rows = topic_rows(popular);
            rows.push(topics_button());
            Rendered { html: escape(&text::welcome(bot_name)), keyboard: Some(InlineKeyboardMarkup::new(rows)) }
        }
        Reply::Help { bot_name } => plain(&text::help(bot_name)),
        Reply::Topics { page, pages, items } => {
            let mut rows = topic_rows(items);
            let mut nav = Vec::new();
            if *page > 0 {
                nav.push(button("◀ Previous", Action::Topics { page: page - 1 }));
            }
            if page + 1 < *pages {
                nav.push(button("Next ▶", Action::Topics { page: page + 1 }));
            }
            if !nav.is_empty() {
                rows.push(nav);
            }
            Rendered {
                html: format!("{} <i>({}/{})</i>", escape(text::TOPICS), page + 1, pages),
                keyboard: Some(InlineKeyboardMarkup::new(rows)),
            }
        }
        Reply::EndOfArticle { article, stub, prev_article, next_article, related } => {
            let (end, heading) =
                if *stub { (text::STUB_END, text::CLOSEST_FULL) } else { (text::END_OF_ARTICLE, text::RELATED) };
            let mut html = format!("<b>{}</b>\n\n{}", escape(&cut(&article.title, MAX_TITLE_CHARS)), escape(end));
            if !related.is_empty() {
                html.push_str(&format!("\n{}", escape(heading)));
            }
            let rows = onward_rows(next_article.as_ref(), prev_article.as_ref(), related);
            Rendered { html, keyboard: Some(InlineKeyboardMarkup::new(rows)) }
        }
        Reply::NothingToContinue => plain(text::NOTHING_TO_CONTINUE),
        Reply::NothingBefore => plain(text::NOTHING_BEFORE),
        Reply::NoMoreChoices => plain(text::NO_MORE_CHOICES),
        Reply::NothingToRate => plain(text::NOTHING_TO_RATE),
        Reply::Gone => plain(text::GONE),
        Reply::Unavailable => plain(text::UNAVAILABLE),
        Reply::NoSuchChoice => plain(text::NO_SUCH_CHOICE),
        Reply::Reset => plain(text::RESET),
        Reply::Forgotten { existed } => plain(text::forgotten(*existed)),
        Reply::FeedbackThanks { up } => plain(text::feedback_thanks(*up)),
        Reply::TextOnly => plain(text::TEXT_ONLY),
        Reply::Empty => plain(text::EMPTY),
        Reply::Duplicate => return None,
    };
    Some(fit(r))
}

/// The length Telegram measures of an HTML message's text: the text after entity parsing (tags
/// removed, `&lt;` and the like decoded) in UTF-16 code units, so an emoji counts 2. Counting
/// the HTML source, or characters, lets a message of emoji through here that Telegram refuses
/// as "message is too long".
pub fn telegram_len(html: &str) -> usize {
    let mut len = 0;
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        match c {
            // Our tags are ours: attribute values are escaped, so the first '>' ends the tag.
            '<' => match rest.find('>') {
                Some(end) => rest = &rest[end + 1..],
                None => {
                    len += 1;
                    rest = &rest[1..];
                }
            },
            '&' => {
                let (decoded, taken) = entity(rest);
                len += decoded.map_or(1, char::len_utf16);
                rest = &rest[taken..];
            }
            c => {
                len += c.len_utf16();
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    len
}

/// The character an HTML entity at the start of `s` (which starts with `&`) stands for, and
/// its length in bytes; `None` and 1 when it is not an entity (a lone `&` is kept as it is).
fn entity(s: &str) -> (Option<char>, usize) {
    let Some(end) = s.char_indices().take(12).find(|(_, c)| *c == ';').map(|(i, _)| i) else {
        return (None, 1);
    };
    let name = &s[1..end];
    let c = match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        _ => {
            let code = if let Some(hex) = name.strip_prefix("#x").or_else(|| name.strip_prefix("#X")) {
                u32::from_str_radix(hex, 16).ok()
            } else {
                name.strip_prefix('#').and_then(|d| d.parse::<u32>().ok())
            };
            code.and_then(char::from_u32)
        }
    };
    match c {
        Some(c) => (Some(c), end + 1),
        None => (None, 1),
    }
}

/// The longest start of an escaped line (no tags) whose [`telegram_len`] is at most `room`,
/// never cutting an entity in two.
fn prefix_within(line: &str, room: usize) -> &str {
    let mut used = 0;
    let mut at = 0;
    while at < line.len() {
        let rest = &line[at..];
        let (units, bytes) = match rest.chars().next() {
            Some('&') => {
                let (decoded, taken) = entity(rest);
                (decoded.map_or(1, char::len_utf16), taken)
            }
            Some(c) => (c.len_utf16(), c.len_utf8()),
            None => break,
        };
        if used + units > room {
            break;
        }
        used += units;
        at += bytes;
    }
    &line[..at]
}

/// Keeps a message within Telegram's limit as Telegram measures it ([`telegram_len`]). Only
/// admin reports can get this long (an answer's title, heading and snippet are capped well
/// below it); their text is built from lines each of which is complete HTML, so cutting at a
/// line break keeps the HTML valid. A first line of plain text too long by itself is cut
/// within.
pub fn fit(mut r: Rendered) -> Rendered {
    if telegram_len(&r.html) <= MAX_MESSAGE_LEN {
        return r;
    }
    // Room for the lines and their line breaks, and the final "…".
    let room = MAX_MESSAGE_LEN - 1;
    let mut out = String::new();
    let mut used = 0;
    for line in r.html.lines() {
        let len = telegram_len(line) + 1;
        if used + len > room {
            if !line.contains('<') {
                out.push_str(prefix_within(line, room - used));
            }
            break;
        }
        out.push_str(line);
        out.push('\n');
        used += len;
    }
    out.push('…');
    r.html = out;
    r
}

/// A report of lines (already escaped or plain) as one message within the limit.
pub fn report(title: &str, lines: &[String]) -> Rendered {
    let mut html = format!("<b>{}</b>", escape(title));
    for l in lines {
        html.push('\n');
        html.push_str(&escape(l));
    }
    fit(Rendered { html, keyboard: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(title: &str) -> TopicRef {
        TopicRef { idx: 0, id: "x".into(), key: "AAAAAAAA".into(), title: title.into() }
    }

    #[test]
    fn answers_are_escaped_bold_and_linked() {
        let a = AnswerView {
            article: topic("Knees & <joints>"),
            section: Some(0),
            sections: 3,
            heading: None,
            snippet: Snippet { text: "Knee <pain> & more".into(), highlights: vec![(0, 4)] },
            link: Some(Link::Start { id: "knees".into(), param: "knees".into() }),
            next: Some(1),
            stub: false,
            prev_article: None,
            next_article: None,
            related: vec![topic("Other")],
            confidence: Some(0.9),
        };
        let r = render(&Reply::Answer(a), "my_bot").unwrap();
        assert!(r.html.starts_with("<b>Knees &amp; &lt;joints&gt;</b> <i>(1/3)</i>"), "{}", r.html);
        assert!(r.html.contains("<b>Knee</b> &lt;pain&gt; &amp; more"));
        assert!(r.html.contains("<a href=\"https://t.me/my_bot?start=knees\">Read the full article</a>"));
        let kb = r.keyboard.unwrap().inline_keyboard;
        assert_eq!(kb.len(), 3, "next, one related, feedback");
        assert_eq!(kb[2].len(), 2);
    }

    #[test]
    fn did_you_mean_buttons_open_the_matched_section() {
        let choice = |idx, title: &str, section, heading: Option<&str>| Choice {
            topic: TopicRef { idx, key: format!("K{idx}AAAAAA"), ..topic(title) },
            section,
            heading: heading.map(str::to_string),
        };
        let options = vec![
            choice(1, "Knees", Some(2), Some("Shoes")),
            choice(1, "Knees", Some(4), Some("Stretching")),
            choice(2, "Calves", Some(0), Some("Intro")),
            choice(3, "Stub", None, None),
        ];
        let kb = render(&Reply::Suggest(options), "b").unwrap().keyboard.unwrap().inline_keyboard;
        let buttons: Vec<(String, Action)> = kb
            .iter()
            .map(|row| match &row[0].kind {
                teloxide::types::InlineKeyboardButtonKind::CallbackData(d) => {
                    (row[0].text.clone(), Action::decode(d).unwrap())
                }
                other => panic!("{other:?}"),
            })
            .collect();
        let open = |k: &str, section| Action::Open { key: k.into(), section };
        assert_eq!(
            buttons,
            vec![
                ("Knees — Shoes".to_string(), open("K1AAAAAA", Some(2))),
                ("Knees — Stretching".to_string(), open("K1AAAAAA", Some(4))),
                ("Calves".to_string(), open("K2AAAAAA", Some(0))),
                ("Stub".to_string(), open("K3AAAAAA", None)),
                (articlebot_engine::text::NONE_OF_THESE.to_string(), Action::NoneOfThese),
            ]
        );
    }

    #[test]
    fn long_reports_fit() {
        let lines: Vec<String> = (0..2000).map(|i| format!("line {i} <x>")).collect();
        let r = report("Errors", &lines);
        assert!(telegram_len(&r.html) <= MAX_MESSAGE_LEN);
        assert!(r.html.ends_with('…'));
        assert!(telegram_len(&r.html) > MAX_MESSAGE_LEN - 30, "cut at the limit, not well before it");
    }

    #[test]
    fn telegram_counts_utf16_units_of_the_parsed_text() {
        assert_eq!(telegram_len("abc"), 3);
        assert_eq!(telegram_len("<b>ab</b> &lt;c&gt; &amp; &quot;"), 10, "tags count nothing, an entity one");
        assert_eq!(telegram_len("🍕é"), 3, "an emoji is two UTF-16 units");
        assert_eq!(telegram_len("&#127829;&#x1F355;"), 4, "numeric entities count what they decode to");
        assert_eq!(telegram_len("a & b &nosuch; c"), 16, "a lone & is kept literally");
        assert_eq!(telegram_len("<a href=\"https://x/?a=1&amp;b=2\">link</a>"), 4);
    }

    #[test]
    fn reports_of_emoji_fit_as_telegram_measures_them() {
        // 20 questions of 300 emoji: about 4,000 characters would have passed a count of
        // characters, and are about 8,000 UTF-16 units: Telegram refuses that.
        let lines: Vec<String> = (0..20).map(|i| format!("{i}. {} — asked 3×", "🍕".repeat(300))).collect();
        let r = report("Unanswered", &lines);
        assert!(telegram_len(&r.html) <= MAX_MESSAGE_LEN, "{}", telegram_len(&r.html));
        assert!(r.html.lines().count() >= 6, "as many whole lines as fit");
        // A single line longer than the limit is cut within, at a whole character.
        let r = report("Error", &["&<🍕>".repeat(2000)]);
        assert!(telegram_len(&r.html) <= MAX_MESSAGE_LEN);
        assert!(telegram_len(&r.html) > MAX_MESSAGE_LEN - 10);
        assert!(r.html.ends_with('…'));
        let body = r.html.lines().nth(1).unwrap().trim_end_matches('…');
        assert!(body.ends_with("&amp;") || body.ends_with("&lt;") || body.ends_with("&gt;") || body.ends_with('🍕'));
    }

    #[test]
    fn the_longest_answer_fits_without_being_cut() {
        let a = AnswerView {
            article: topic(&"🍕".repeat(1000)),
            section: Some(8),
            sections: 10,
            heading: Some("🍕".repeat(1000)),
            snippet: Snippet { text: "🍕".repeat(700), highlights: vec![(0, 4)] },
            link: Some(Link::Url(format!("https://example.com/{}", "x".repeat(300)))),
            next: Some(9),
            related: vec![],
            confidence: Some(0.9),
            stub: false,
            prev_article: Some(topic(&"🍕".repeat(1000))),
            next_article: Some(topic(&"🍕".repeat(1000))),
        };
        let html = answer_html(&a, "b");
        assert!(telegram_len(&html) <= MAX_MESSAGE_LEN, "{}", telegram_len(&html));
        assert_eq!(fit(Rendered { html: html.clone(), keyboard: None }).html, html);
    }

    #[test]
    fn labels_are_cut() {
        let b = button(&"x".repeat(200), Action::Topics { page: 0 });
        assert!(b.text.chars().count() <= MAX_LABEL_CHARS);
    }

    #[test]
    fn duplicates_send_nothing() {
        assert!(render(&Reply::Duplicate, "b").is_none());
    }
}
