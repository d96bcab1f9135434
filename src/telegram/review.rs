//! `/review` in Telegram: the learning loop's proposals, one card at a time, decided with
//! buttons; `/review undo` takes the last decision back. What a proposal is, what deciding does
//! to the files and the store, and what a card says are the engine's (shared with the console's
//! `articlebot review`); this module only renders cards and checks taps.
//!
//! The card is edited in place: each decision replaces it with the next card (and a line saying
//! what was done), until nothing is left. Buttons carry the proposal's id, never its question
//! ([`super::callback`]); a tap is acted on only when the sender is an admin, the card is in a
//! private chat and the id is of a proposal still undecided. Anything else changes nothing and
//! gets a notice on the button. Deciding runs on a blocking thread, reload included, so other
//! users' replies never wait for it.

use std::sync::Arc;

use articlebot_engine::{now_unix, Card, CardArticle, ErrorChain, LearnError, Verdict};
use teloxide::prelude::*;
use teloxide::types::InlineKeyboardMarkup;

use super::app::App;
use super::callback::{Action, ReviewOp};
use super::metrics;
use super::render::{button, cut, escape, fit, report, Rendered};
use super::send::{answer_callback, deliver, Dest};
use super::HandlerResult;

pub const NOTHING_LEFT: &str = "Nothing left to review.";
/// On a tap of a card whose proposal was decided (or never was one).
pub const STALE: &str = "This card is out of date: it was decided already. Send /review for the current one.";
/// On a tap of a review button by someone who is not an admin (a forwarded card, forged data).
pub const ADMINS_ONLY: &str = "Sorry, only admins can review.";
/// Questions and titles on a card are cut to this many characters (a card must fit a message).
const MAX_SHOWN_CHARS: usize = 300;

/// `/review`: the first card, as a new message.
pub async fn start(bot: &Bot, app: &Arc<App>, msg: &Message) -> HandlerResult {
    let admin = msg.from.as_ref().map_or(0, |u| u.id.0 as i64);
    // A new /review is a new session: what was skipped is shown again.
    app.review_session(admin, |s| *s = Default::default());
    let app2 = app.clone();
    let r = tokio::task::spawn_blocking(move || next_card(&app2, admin, None)).await?;
    deliver(bot, app, Dest::of(msg), &r, None).await?;
    Ok(())
}

/// `/review undo`: the last decision taken back (an added question out of its file again, a
/// rejected pair proposable again).
pub async fn undo(bot: &Bot, app: &Arc<App>, msg: &Message) -> HandlerResult {
    let app2 = app.clone();
    let (r, changed) = tokio::task::spawn_blocking(move || {
        let _one = app2.review_lock();
        match app2.engine.undo() {
            Ok(Some(v)) => {
                let title = title_of(&app2, &v.article);
                let line = match v.verdict {
                    Verdict::Added => format!("↩ Undone: {:?} is no longer a question of “{title}”.", v.question),
                    Verdict::Rejected => format!("↩ Undone: {:?} may be proposed for “{title}” again.", v.question),
                    Verdict::ToWrite => format!("↩ Undone: {:?} is off the to-do list again.", v.question),
                };
                (report("Review", &[line, "Send /review to go on.".into()]), v.verdict == Verdict::Added)
            }
            Ok(None) => (report("Review", &["Nothing to undo.".into()]), false),
            Err(e) => {
                // A failed reload after the file was changed back still changed what is on disk.
                let changed = matches!(e, LearnError::Reload { .. });
                (report("Could not undo", &[ErrorChain(&e).to_string()]), changed)
            }
        }
    })
    .await?;
    if changed {
        app.knowledge_changed("review undo").await;
    }
    deliver(bot, app, Dest::of(msg), &r, None).await?;
    Ok(())
}

/// What a tap did.
enum Decided {
    /// Nothing: the card is not of an undecided proposal (any more).
    Stale,
    /// Done or refused; `status` heads the next card, `notice` goes on the button.
    Done { notice: &'static str, status: String, changed: bool },
}

/// A tap on a review card's button.
pub async fn tap(bot: &Bot, app: &Arc<App>, q: &CallbackQuery, id: u64, op: ReviewOp) -> HandlerResult {
    let user = q.from.id.0 as i64;
    let card = q.regular_message().filter(|m| m.chat.is_private());
    let Some(card) = card.filter(|_| app.is_admin(user)) else {
        tracing::info!(user, "refused a review tap from a non-admin or outside a private chat");
        metrics::count_error("not_admin");
        answer_callback(bot, q, Some(ADMINS_ONLY)).await;
        return Ok(());
    };
    let (message, to) = (card.id, Dest::of(card));
    let app2 = app.clone();
    let decided = tokio::task::spawn_blocking(move || decide(&app2, user, id, op)).await?;
    let Decided::Done { notice, status, changed } = decided else {
        answer_callback(bot, q, Some(STALE)).await;
        return Ok(());
    };
    answer_callback(bot, q, Some(notice)).await;
    if changed {
        app.knowledge_changed("review").await;
    }
    let app2 = app.clone();
    let r = tokio::task::spawn_blocking(move || next_card(&app2, user, Some(status))).await?;
    deliver(bot, app, to, &r, Some(message)).await?;
    Ok(())
}

/// Carries out one decision (blocking: it may write a file and reload).
fn decide(app: &App, admin: i64, id: u64, op: ReviewOp) -> Decided {
    // Two quick taps on ✅ must not both find the proposal undecided.
    let _one = app.review_lock();
    let p = match app.engine.proposal(id, app.review_min_users) {
        Ok(Some(p)) => p,
        Ok(None) => return Decided::Stale,
        Err(e) => {
            return Decided::Done {
                notice: "Not done: see the card.",
                status: format!("⚠ {}", ErrorChain(&e)),
                changed: false,
            }
        }
    };
    let article = match &op {
        ReviewOp::AddTo(key) => {
            let lib = app.engine.library();
            let Some(id) = lib.kb().by_key(key).and_then(|i| lib.kb().article(i)).map(|a| a.id.clone()) else {
                return Decided::Stale;
            };
            // Only the choices the card offered: a forged key must not pick any article.
            if !p.alternatives.contains(&id) {
                return Decided::Stale;
            }
            id
        }
        _ => p.article.clone(),
    };
    let title = title_of(app, &article);
    match op {
        ReviewOp::Skip => {
            app.review_session(admin, |s| s.skip(&p));
            Decided::Done {
                notice: "Skipped.",
                status: format!("⏭ Skipped {:?} (shown again in a new /review).", p.question),
                changed: false,
            }
        }
        ReviewOp::Reject => match app.engine.reject(&p, now_unix()) {
            Ok(()) => Decided::Done {
                notice: "Rejected.",
                status: format!("❌ Rejected: {:?} is not proposed for “{title}” again.", p.question),
                changed: false,
            },
            Err(e) => Decided::Done {
                notice: "Not rejected: see the card.",
                status: format!("⚠ Not rejected: {}", ErrorChain(&e)),
                changed: false,
            },
        },
        ReviewOp::Add | ReviewOp::AddTo(_) => match app.engine.accept(&p, &article, now_unix()) {
            Ok(done) => Decided::Done {
                notice: "Added.",
                status: format!(
                    "✅ Added {:?} to “{title}”{}. {}",
                    p.question,
                    if done.written { "" } else { " (it was there already)" },
                    if done.answers_now {
                        "The next user asking it gets this article."
                    } else {
                        "Other articles still match it better."
                    }
                ),
                changed: true,
            },
            Err(e) => Decided::Done {
                notice: "Not added: see the card.",
                status: format!("⚠ Not added: {}", ErrorChain(&e)),
                // The file was written but the reload failed: the old knowledge base serves on.
                changed: false,
            },
        },
    }
}

fn title_of(app: &App, id: &str) -> String {
    let lib = app.engine.library();
    lib.kb().by_id(id).and_then(|i| lib.kb().article(i)).map_or_else(|| id.to_string(), |a| a.title.clone())
}

/// The admin's next card, headed by `status` (blocking: it reads the store and matches).
fn next_card(app: &App, admin: i64, status: Option<String>) -> Rendered {
    let session = app.review_session(admin, |s| s.clone());
    let mut head = status.map(|s| escape(&s) + "\n\n").unwrap_or_default();
    match app.engine.to_review(&session, app.review_min_users) {
        Ok(list) => match list.first() {
            Some(p) => card_rendered(&head, &app.engine.card(p), p.id(), list.len()),
            None => {
                head.push_str(&escape(NOTHING_LEFT));
                Rendered { html: head, keyboard: None }
            }
        },
        Err(e) => {
            head.push_str(&escape(&format!("Review is not available: {}", ErrorChain(&e))));
            Rendered { html: head, keyboard: None }
        }
    }
}

fn article_line(a: &CardArticle) -> String {
    let mut s = format!("<b>{}</b>", escape(&cut(&a.title, MAX_SHOWN_CHARS)));
    if let Some(h) = &a.section {
        s.push_str(&format!(" — <i>{}</i>", escape(&cut(h, MAX_SHOWN_CHARS))));
    }
    s
}

/// A card: the question, the proposed article (title, section), the evidence; ✅ ❌ on one row,
/// one ↪ per other article, ⏭ last.
pub fn card_rendered(head: &str, c: &Card, id: u64, left: usize) -> Rendered {
    let html = format!(
        "{head}<b>Review</b> <i>({left} to review)</i>\nQuestion: “{}”\nProposed article: {}\nEvidence: {}",
        escape(&cut(&c.question, MAX_SHOWN_CHARS)),
        article_line(&c.article),
        escape(&c.evidence.summary()),
    );
    let mut rows = vec![vec![
        button("✅ Add", Action::Review { id, op: ReviewOp::Add }),
        button("❌ Reject", Action::Review { id, op: ReviewOp::Reject }),
    ]];
    for a in c.alternatives.iter().filter(|a| articlebot_engine::is_key(&a.key)) {
        rows.push(vec![button(&format!("↪ {}", a.title), Action::Review { id, op: ReviewOp::AddTo(a.key.clone()) })]);
    }
    rows.push(vec![button("⏭ Skip", Action::Review { id, op: ReviewOp::Skip })]);
    fit(Rendered { html, keyboard: Some(InlineKeyboardMarkup::new(rows)) })
}
