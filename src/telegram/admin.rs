//! Admin commands: /reload, /stats, /unanswered. Rights are checked by numeric user id only
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
use super::{metrics, review, HandlerResult};

pub const NOT_ALLOWED: &str = "Sorry, this command is for admins only.";
pub const PRIVATE_ONLY: &str = "Statistics list what people asked: send this command to me in a private chat.";
pub const REVIEW_PRIVATE_ONLY: &str = "Review cards show what people asked: send /review to me in a private chat.";

/// What people asked is for the admin's eyes, not for everyone in a group.
/// Review cards show what people asked too.
pub fn allowed_here(cmd: AdminCommand, msg: &Message) -> bool {
    msg.chat.is_private() || cmd == AdminCommand::Reload
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
pub async fn private_only(bot: Bot, app: Arc<App>, msg: Message, upd: Update, cmd: AdminCommand) -> HandlerResult {
    handled(&app.clone(), upd.id.0, "admin", async move {
        let text = if matches!(cmd, AdminCommand::Review { .. }) { REVIEW_PRIVATE_ONLY } else { PRIVATE_ONLY };
        let r = Rendered { html: escape(text), keyboard: None };
        deliver(&bot, &app, Dest::of(&msg), &r, None).await?;
        Ok(())
    })
    .await
}

pub async fn run(bot: Bot, app: Arc<App>, msg: Message, upd: Update, cmd: AdminCommand) -> HandlerResult {
    handled(&app.clone(), upd.id.0, "admin", async move {
        let r = match cmd {
            AdminCommand::Review { undo: false } => return review::start(&bot, &app, &msg).await,
            AdminCommand::Review { undo: true } => return review::undo(&bot, &app, &msg).await,
            AdminCommand::Reload => reload_report(&app.reload("/reload").await),
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
        };
        deliver(&bot, &app, Dest::of(&msg), &r, None).await?;
        Ok(())
    })
    .await
}

pub fn reload_report(outcome: &ReloadOutcome) -> Rendered {
    match outcome {
        ReloadOutcome::Loaded(r) => {
            let mut lines = vec![
                format!("{}.", r.stats),
                format!("Took {:.2} s; knowledge version {}.", r.elapsed.as_secs_f64(), r.generation),
            ];
            if !r.warnings.is_empty() {
                lines.push(format!("{} warning(s):", r.warnings.len()));
                lines.extend(r.warnings.iter().map(|w| format!("• {w}")));
            }
            report("Knowledge reloaded", &lines)
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
