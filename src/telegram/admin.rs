//! Admin commands: /reload, /stats (a chart with the numbers as its caption), /unanswered, /why.
//! Rights are checked by numeric user id only
//! (usernames can be changed by anyone to anything); the check itself is a branch of the handler
//! tree (see `handlers`), so these endpoints run only for admins.

use std::sync::Arc;

use articlebot_engine::vocabulary::AdminCommand;
use articlebot_engine::{Cluster, ErrorChain, VerdictRecord};
use teloxide::prelude::*;

use super::api::CallError;
use super::app::{App, ReloadOutcome};
use super::inbox::handled;
use super::render::{escape, report, Rendered};
use super::send::{deliver, send_photo, Dest, MAX_CAPTION};
use super::{groups, metrics, review, HandlerResult};
use crate::owner::{self, protocol};

pub const NOT_ALLOWED: &str = "Sorry, this command is for admins only.";
pub const PRIVATE_ONLY: &str = "Statistics list what people asked: send this command to me in a private chat.";
pub const REVIEW_PRIVATE_ONLY: &str = "Review cards show what people asked: send /review to me in a private chat.";

/// What people asked is for the admin's eyes, not for everyone in a group.
/// Review cards show what people asked too.
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
pub async fn private_only(bot: Bot, app: Arc<App>, msg: Message, upd: Update, cmd: AdminCommand) -> HandlerResult {
    handled(&app.clone(), upd.id.0, "admin", async move {
        let text = if matches!(cmd, AdminCommand::Review { .. }) { REVIEW_PRIVATE_ONLY } else { PRIVATE_ONLY };
        let r = Rendered { html: escape(text), keyboard: None };
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
            AdminCommand::Review { undo: false } => return review::start(&bot, &app, &msg).await,
            AdminCommand::Review { undo: true } => return review::undo(&bot, &app, &msg).await,
            AdminCommand::Stats => {
                let app2 = app.clone();
                match tokio::task::spawn_blocking(move || stats_with_chart(&app2)).await? {
                    Ok((r, png, plain_len)) => {
                        send_stats(&bot, &app, Dest::of(&msg), &r, &png, plain_len).await?;
                        return Ok(());
                    }
                    Err(e) => report("Statistics are not available", &[e]),
                }
            }
            AdminCommand::Unanswered => {
                let app2 = app.clone();
                // Through the owner protocol, as `articlebot unanswered`: one listing for both.
                let req = protocol::Request::UnansweredGroups { top: 20 };
                let list = tokio::task::spawn_blocking(move || {
                    let groups = protocol::handle(&protocol::Ctx::engine(&app2.engine), &req)
                        .and_then(protocol::read::<Vec<Cluster>>)?;
                    let to_write = app2.engine.to_write().map_err(|e| ErrorChain(&e).to_string())?;
                    Ok::<_, String>((groups, to_write))
                });
                match list.await? {
                    Ok((groups, to_write)) => unanswered_report(&groups, &to_write),
                    Err(e) => report("Unanswered questions are not available", &[e]),
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

/// The statistics as /stats sends them: the text, the chart, and the text's length as
/// Telegram counts a caption (plain text, UTF-16 units).
fn stats_with_chart(app: &App) -> Result<(Rendered, Vec<u8>, usize), String> {
    let req = protocol::Request::Stats {};
    let v: protocol::StatsView =
        protocol::handle(&protocol::Ctx::engine(&app.engine), &req).and_then(protocol::read)?;
    let (title, lines) = owner::stats_lines(&v);
    let plain_len = owner::plain(title, &lines).trim_end().encode_utf16().count();
    Ok((report(title, &lines), owner::chart::png(&v), plain_len))
}

/// The chart with the text as its caption; a text too long for a caption follows the chart as
/// its own message, and a chart that cannot be sent leaves the text alone.
async fn send_stats(
    bot: &Bot,
    app: &App,
    to: Dest,
    r: &Rendered,
    png: &[u8],
    plain_len: usize,
) -> Result<(), CallError> {
    let fits = plain_len <= MAX_CAPTION;
    let caption = if fits { r.html.clone() } else { "<b>Statistics</b>".to_string() };
    match send_photo(bot, app, to, png, &caption).await {
        Ok(()) if fits => Ok(()),
        // The text still has to go: on its own, after the chart or instead of it.
        Ok(()) | Err(_) => deliver(bot, app, to, r, None).await,
    }
}

/// To-do questions listed under /unanswered; the count says how many more there are.
const TO_WRITE_SHOWN: usize = 10;

/// The groups, with a 📝 button for each of the first few (their cards: add all to an article,
/// or to the to-do list), and the to-do list under them.
fn unanswered_report(groups: &[Cluster], to_write: &[VerdictRecord]) -> Rendered {
    let (title, mut lines) = owner::cluster_lines(groups);
    if !to_write.is_empty() {
        lines.push(String::new());
        lines.push(format!("To write ({}), newest last:", to_write.len()));
        let from = to_write.len().saturating_sub(TO_WRITE_SHOWN);
        lines.extend(to_write[from..].iter().map(|v| format!("✍ {}", v.question)));
    }
    let mut r = report(title, &lines);
    r.keyboard = groups::list_keyboard(groups);
    r
}
