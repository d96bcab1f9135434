//! The owner's tools on the bot's database: statistics, unanswered questions, the review of what
//! users taught and its export. One [`protocol`] of requests runs them, on the database opened
//! directly when the bot is stopped, or over the running bot's admin [`socket`]; the text they
//! print is made here, once, for the console and for Telegram's /stats and /unanswered.

pub mod chart;
pub mod protocol;
pub mod socket;

use articlebot_engine::{date_of, Cluster, Unanswered};

use protocol::StatsView;

fn percent(part: u64, total: u64) -> String {
    if total == 0 {
        "–".into()
    } else {
        format!("{:.0}%", part as f64 * 100.0 / total as f64)
    }
}

/// The statistics as a title and lines (/stats, `articlebot stats`).
pub fn stats_lines(v: &StatsView) -> (&'static str, Vec<String>) {
    let s = &v.stats;
    let mut lines = vec![
        format!("Users: {}", s.users),
        format!("Questions today: {} (answered {})", s.questions_today, percent(s.answered_today, s.questions_today)),
        format!(
            "Questions in total: {} (answered {}, did-you-mean {}, unknown {}, small talk {})",
            s.questions_total,
            percent(s.answered_total, s.questions_total),
            s.suggested_total,
            s.unknown_total,
            s.smalltalk_total
        ),
    ];
    if !s.top_questions.is_empty() {
        lines.push(String::new());
        lines.push("Top questions:".into());
        lines.extend(s.top_questions.iter().enumerate().map(|(i, (q, n))| format!("{}. {q} — {n}", i + 1)));
    }
    if !s.top_articles.is_empty() {
        lines.push(String::new());
        lines.push("Top articles:".into());
        lines.extend(s.top_articles.iter().enumerate().map(|(i, (a, n))| format!("{}. {} — {n}", i + 1, v.title(a))));
    }
    if !s.feedback.is_empty() {
        lines.push(String::new());
        lines.push("Feedback (👍/👎):".into());
        lines.extend(s.feedback.iter().map(|(a, up, down)| format!("{} — {up}/{down}", v.title(a))));
    }
    ("Statistics", lines)
}

/// Unanswered questions grouped by what they ask, most asked group first, as a title and lines
/// (/unanswered, `articlebot unanswered`).
pub fn cluster_lines(groups: &[Cluster]) -> (&'static str, Vec<String>) {
    if groups.is_empty() {
        return ("Unanswered questions", vec!["None so far.".to_string()]);
    }
    let lines = groups.iter().enumerate().map(|(i, c)| format!("{}. {}", i + 1, c.describe(3))).collect();
    ("Most asked questions without an answer, alike ones together (what to write next)", lines)
}

/// Unanswered questions as CSV (RFC 4180: every field quoted, quotes doubled, CRLF line ends),
/// with a header line.
pub fn unanswered_csv(list: &[Unanswered]) -> String {
    fn field(out: &mut String, s: &str) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    }
    let mut out = String::from("\"question\",\"count\",\"last_asked\",\"normalized\"\r\n");
    for u in list {
        field(&mut out, &u.example);
        out.push(',');
        field(&mut out, &u.count.to_string());
        out.push(',');
        field(&mut out, &date_of(u.last_asked));
        out.push(',');
        field(&mut out, &u.normalized);
        out.push_str("\r\n");
    }
    out
}

/// A title and lines as plain text: the title, then the lines.
pub fn plain(title: &str, lines: &[String]) -> String {
    let mut out = format!("{title}\n");
    for l in lines {
        out.push_str(l);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_every_field_and_doubles_quotes() {
        let list = vec![Unanswered {
            normalized: "say \"hi\", then".into(),
            count: 3,
            last_asked: 0,
            example: "Say \"hi\",\nthen?".into(),
        }];
        let csv = unanswered_csv(&list);
        assert_eq!(
            csv,
            "\"question\",\"count\",\"last_asked\",\"normalized\"\r\n\"Say \"\"hi\"\",\nthen?\",\"3\",\"1970-01-01\",\"say \"\"hi\"\", then\"\r\n"
        );
    }
}
