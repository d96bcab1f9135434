//! The buttons of /unanswered: each group of alike questions opens a card, from which an admin
//! adds all its questions to one of the articles the matcher finds for it (as review's ✅ does
//! for one question), or puts the group on the to-do list of articles to write. Buttons carry
//! the group's id (a hash of its lead question), never the questions; a tap is acted on only
//! from an admin in a private chat, for a group still listed, and an article the card offered.

use std::sync::Arc;

use articlebot_engine::{group_id, now_unix, Cluster, ErrorChain};
use teloxide::prelude::*;
use teloxide::types::InlineKeyboardMarkup;

use super::app::App;
use super::callback::{Action, GroupOp};
use super::metrics;
use super::render::{button, cut, escape, fit, Rendered};
use super::review::ADMINS_ONLY;
use super::send::{answer_callback, deliver, Dest};
use super::HandlerResult;

/// On a tap of a group no longer listed (decided, or asked so often since that it regrouped).
pub const STALE: &str = "This group is not on the list any more. Send /unanswered for the current one.";
/// Groups of /unanswered that get a button.
pub const WITH_BUTTONS: usize = 5;
/// Articles a card offers.
const CHOICES: usize = 3;
/// Questions listed on a card.
const SHOWN: usize = 10;
const MAX_SHOWN_CHARS: usize = 200;

/// The /unanswered list's buttons: one per group among the first few.
pub fn list_keyboard(groups: &[Cluster]) -> Option<InlineKeyboardMarkup> {
    let row: Vec<_> = groups
        .iter()
        .take(WITH_BUTTONS)
        .enumerate()
        .map(|(i, c)| button(&format!("📝 {}", i + 1), Action::Group { id: group_id(c), op: GroupOp::Open }))
        .collect();
    (!row.is_empty()).then(|| InlineKeyboardMarkup::new(vec![row]))
}

/// A tap on the list or a group's card.
pub async fn tap(bot: &Bot, app: &Arc<App>, q: &CallbackQuery, id: u64, op: GroupOp) -> HandlerResult {
    let user = q.from.id.0 as i64;
    let Some(msg) = q.regular_message().filter(|m| m.chat.is_private()).filter(|_| app.is_admin(user)) else {
        tracing::info!(user, "refused an unanswered-group tap from a non-admin or outside a private chat");
        metrics::count_error("not_admin");
        answer_callback(bot, q, Some(ADMINS_ONLY)).await;
        return Ok(());
    };
    let to = Dest::of(msg);
    let open = op == GroupOp::Open;
    let app2 = app.clone();
    let done = tokio::task::spawn_blocking(move || decide(&app2, id, op)).await?;
    let Some((notice, rendered, changed)) = done else {
        answer_callback(bot, q, Some(STALE)).await;
        return Ok(());
    };
    answer_callback(bot, q, Some(notice)).await;
    if changed {
        app.knowledge_changed("unanswered group").await;
    }
    // A card opens as a message of its own, so the list stays to open the next group from.
    deliver(bot, app, to, &rendered, (!open).then_some(msg.id)).await?;
    Ok(())
}

fn title_of(app: &App, id: &str) -> String {
    let lib = app.engine.library();
    lib.kb().by_id(id).and_then(|i| lib.kb().article(i)).map_or_else(|| id.to_string(), |a| a.title.clone())
}

/// What a tap does (blocking: it reads the store, matches, may write files and reload). `None`
/// for a group or article not offered (any more).
fn decide(app: &App, id: u64, op: GroupOp) -> Option<(&'static str, Rendered, bool)> {
    let _one = app.review_lock();
    let group = match app.engine.unanswered_group(id) {
        Ok(Some(g)) => g,
        Ok(None) => return None,
        Err(e) => return Some(("Not available: see the message.", status(&format!("⚠ {}", ErrorChain(&e))), false)),
    };
    let choices = app.engine.group_choices(&group, CHOICES);
    match op {
        GroupOp::Open => Some(("Opened.", card(app, &group, &choices), false)),
        GroupOp::ToWrite => match app.engine.mark_to_write(&group, now_unix()) {
            Ok(()) => Some((
                "On the to-do list.",
                status(&format!(
                    "✍ On the to-do list: {:?} and {} alike question(s) ({} asks). /review undo takes them off again, one at a time.",
                    group.lead().example,
                    group.questions.len() - 1,
                    group.asked
                )),
                false,
            )),
            Err(e) => Some(("Not done: see the message.", status(&format!("⚠ {}", ErrorChain(&e))), false)),
        },
        GroupOp::AddTo(key) => {
            let lib = app.engine.library();
            let article = lib.kb().by_key(&key).and_then(|i| lib.kb().article(i)).map(|a| a.id.clone())?;
            // Only an article the card offered: forged data must not pick any article.
            if !choices.contains(&article) {
                return None;
            }
            let title = title_of(app, &article);
            match app.engine.attach_group(&group, &article, now_unix()) {
                Ok(done) => Some((
                    "Added.",
                    status(&format!(
                        "✅ Added {} question(s) to “{title}” ({} written, the others were there); {} of them answered with it now. /review undo takes them back one at a time.",
                        done.questions, done.written, done.answered_now
                    )),
                    true,
                )),
                Err(e) => Some(("Not added: see the message.", status(&format!("⚠ Not added: {}", ErrorChain(&e))), false)),
            }
        }
    }
}

fn status(line: &str) -> Rendered {
    Rendered { html: escape(line), keyboard: None }
}

/// A group's card: its questions, and a button per article to add them all to, and ✍.
fn card(app: &App, c: &Cluster, choices: &[String]) -> Rendered {
    let mut html =
        format!("<b>Unanswered</b>: “{}” — asked {}×", escape(&cut(&c.lead().example, MAX_SHOWN_CHARS)), c.asked);
    for q in c.questions.iter().take(SHOWN) {
        html.push_str(&format!("\n• {} ({})", escape(&cut(&q.example, MAX_SHOWN_CHARS)), q.count));
    }
    if c.questions.len() > SHOWN {
        html.push_str(&format!("\n… and {} more", c.questions.len() - SHOWN));
    }
    html.push_str("\n\nAdd them all to an article, or put them on the to-do list:");
    let lib = app.engine.library();
    let id = group_id(c);
    let mut rows = Vec::new();
    for article in choices {
        if let Some(a) = lib.kb().by_id(article).and_then(|i| lib.kb().article(i)) {
            rows.push(vec![button(&format!("↪ {}", a.title), Action::Group { id, op: GroupOp::AddTo(a.key.clone()) })]);
        }
    }
    rows.push(vec![button("✍ Write an article", Action::Group { id, op: GroupOp::ToWrite })]);
    fit(Rendered { html, keyboard: Some(InlineKeyboardMarkup::new(rows)) })
}
