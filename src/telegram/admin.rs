//! Admin commands: /reload, /stats, /unanswered, /why. Rights are checked by numeric user id only
//! (usernames can be changed by anyone to anything); the check itself is a branch of the handler
//! tree (see `handlers`), so these endpoints run only for admins.

use std::sync::Arc;

use articlebot_engine::vocabulary::AdminCommand;
use articlebot_engine::{date_of, now_unix, ErrorChain, Stats, Store, Unanswered};
use teloxide::prelude::*;

use super::app::{App, ReloadOutcome};
use super::inbox::handled;
use super::render::{escape, report, Rendered};
use super::send::{deliver, Dest};
use super::{metrics, HandlerResult};

pub const NOT_ALLOWED: &str = "Sorry, this command is for admins only.";
pub const PRIVATE_ONLY: &str = "Statistics list what people asked: send this command to me in a private chat.";

/// What people asked is for the admin's eyes, not for everyone in a group.
pub fn allowed_here(cmd: &AdminCommand, msg: &Message) -> bool {
    msg.chat.is_private() || matches!(cmd, AdminCommand::Reload { .. } | AdminCommand::Usage(_))
}

/// An admin command from someone who is not an admin.
pub async fn refuse(bot: Bot, app: Arc<App>, msg: Message, upd: Update) -> HandlerResult {
    handled(&app.clone(), upd.id.0, "admin", async move {
        tracing::info!(user = msg.from.as_ref().map_or(0, |u| u.id.0), "refused an admin command from a non-admin");
        metrics::count_error("not_admin");
        let r = Rendered { html: escape(NOT_ALLOWED), keyboard: None };
        deliver(&bot, &app, Dest::of(&msg), &r, None).await?;
        Ok(())
    })
    .await
}

/// A statistics command from an admin in a group.
pub async fn private_only(bot: Bot, app: Arc<App>, msg: Message, upd: Update) -> HandlerResult {
    handled(&app.clone(), upd.id.0, "admin", async move {
        let r = Rendered { html: escape(PRIVATE_ONLY), keyboard: None };
        deliver(&bot, &app, Dest::of(&msg), &r, None).await?;
        Ok(())
    })
    .await
}

/// Hits `/why` explains: three fit one message with room to spare.
const WHY_HITS: usize = 3;

pub async fn run(bot: Bot, app: Arc<App>, msg: Message, upd: Update, cmd: AdminCommand) -> HandlerResult {
    handled(&app.clone(), upd.id.0, "admin", async move {
        let r = match cmd {
            AdminCommand::Reload { force } => reload_report(&app.reload("/reload", force).await),
            AdminCommand::Usage(usage) => report("Not understood", &[usage.to_string()]),
            AdminCommand::Stats => {
                let app2 = app.clone();
                let now = now_unix();
                match tokio::task::spawn_blocking(move || app2.engine.store().stats(now, 10)).await? {
                    Ok(s) => stats_report(&app, &s),
                    Err(e) => report("Statistics are not available", &[ErrorChain(&e).to_string()]),
                }
            }
            AdminCommand::Unanswered => {
                let app2 = app.clone();
                match tokio::task::spawn_blocking(move || app2.engine.store().unanswered(20)).await? {
                    Ok(list) => unanswered_report(&list),
                    Err(e) => report("Unanswered questions are not available", &[ErrorChain(&e).to_string()]),
                }
            }
            AdminCommand::Why(question) if question.trim().is_empty() => {
                report("Why", &["Write the question after the command: /why my knees hurt after running".into()])
            }
            AdminCommand::Why(question) => {
                let library = app.engine.library();
                let top = app.engine.options().results.clamp(1, WHY_HITS);
                // Encoding the question and ranking take milliseconds: not on the async workers.
                let text = tokio::task::spawn_blocking(move || {
                    let m = library.matcher();
                    m.explain(&question, &m.decide(&question, top), top)
                })
                .await?;
                report("Why", &text.lines().map(str::to_string).collect::<Vec<_>>())
            }
        };
        deliver(&bot, &app, Dest::of(&msg), &r, None).await?;
        Ok(())
    })
    .await
}

pub fn reload_report(outcome: &ReloadOutcome) -> Rendered {
    match outcome {
        ReloadOutcome::Loaded(r, replay) => {
            let mut lines = vec![
                format!("{}.", r.stats),
                format!("Took {:.2} s; knowledge version {}.", r.elapsed.as_secs_f64(), r.generation),
            ];
            if replay.cases > 0 {
                lines.push(format!("{}.", capitalised(&replay.summary())));
                lines.extend(replay.differ.iter().take(REGRESSIONS_SHOWN).map(|d| format!("• {d}")));
            }
            if !r.warnings.is_empty() {
                lines.push(format!("{} warning(s):", r.warnings.len()));
                lines.extend(r.warnings.iter().map(|w| format!("• {w}")));
            }
            report("Knowledge reloaded", &lines)
        }
        ReloadOutcome::Refused { replay, limit, elapsed } => {
            let mut lines = vec![
                format!(
                    "Still serving the previous knowledge base: the new one breaks more than {:.0} % of the questions added by review (checked in {:.2} s).",
                    limit * 100.0,
                    elapsed.as_secs_f64()
                ),
                format!("{}.", capitalised(&replay.summary())),
            ];
            lines.extend(replay.broken().take(REGRESSIONS_SHOWN).map(|d| format!("• {d}")));
            lines.push("Fix the articles and /reload, or /reload force to swap it in anyway.".into());
            report("Reload refused", &lines)
        }
        ReloadOutcome::Failed { errors, elapsed } => {
            let mut lines = vec![format!(
                "Still serving the previous knowledge base. {} error(s) (checked in {:.2} s):",
                errors.len(),
                elapsed.as_secs_f64()
            )];
            lines.extend(errors.iter().map(|e| format!("• {e}")));
            report("Reload failed", &lines)
        }
    }
}

/// Reviewed questions listed in a reload report; the count says how many more there are.
const REGRESSIONS_SHOWN: usize = 10;

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |first| first.to_uppercase().chain(c).collect())
}

fn percent(part: u64, total: u64) -> String {
    if total == 0 {
        "–".into()
    } else {
        format!("{:.0}%", part as f64 * 100.0 / total as f64)
    }
}

fn stats_report(app: &App, s: &Stats) -> Rendered {
    let lib = app.engine.library();
    let title =
        |id: &str| lib.kb().by_id(id).map_or_else(|| id.to_string(), |i| lib.kb().articles[i as usize].title.clone());
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
        lines.extend(s.top_articles.iter().enumerate().map(|(i, (a, n))| format!("{}. {} — {n}", i + 1, title(a))));
    }
    if !s.feedback.is_empty() {
        lines.push(String::new());
        lines.push("Feedback (👍/👎):".into());
        lines.extend(s.feedback.iter().map(|(a, up, down)| format!("{} — {up}/{down}", title(a))));
    }
    report("Statistics", &lines)
}

fn unanswered_report(list: &[Unanswered]) -> Rendered {
    if list.is_empty() {
        return report("Unanswered questions", &["None so far.".to_string()]);
    }
    let lines: Vec<String> = list
        .iter()
        .enumerate()
        .map(|(i, u)| format!("{}. {} — asked {}×, last {}", i + 1, u.example, u.count, date_of(u.last_asked)))
        .collect();
    report("Most asked questions without an answer (what to write next)", &lines)
}
