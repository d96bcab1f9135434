//! The bot's wording, shared by every front end so that the console and Telegram say the same
//! thing. Plain text: front ends add their own markup.

use articlebot_matching::Smalltalk;

use crate::vocabulary::{self, Audience};

pub fn smalltalk(kind: Smalltalk, bot_name: &str) -> String {
    match kind {
        Smalltalk::Greeting => format!(
            "Hi! I'm {bot_name}. Ask me a question in your own words and I'll find the article that answers it."
        ),
        Smalltalk::Thanks => "You're welcome! Ask me anything else.".into(),
        Smalltalk::Goodbye => "Bye! Come back any time you have a question.".into(),
        Smalltalk::Identity => format!(
            "I'm {bot_name}, a bot that answers questions from this site's articles. \
             Write a question; I'll reply with the part of an article that answers it."
        ),
    }
}

pub const DONT_KNOW: &str = "Sorry, I don't have an article about that.";
/// Said only when the question was stored where the authors will see it.
pub const NOTED: &str = "I've noted the question for the authors.";
pub const BROWSE_TOPICS: &str = "Browse the topics I know about:";

/// The don't-know, promising to pass the question on only when it was kept.
pub fn dont_know(noted: bool) -> String {
    if noted {
        format!("{DONT_KNOW} {NOTED}")
    } else {
        DONT_KNOW.to_string()
    }
}
pub const DID_YOU_MEAN: &str = "I'm not sure I understood. Did you mean:";
/// The button (and, typed, the words) under did-you-mean choices when none fits.
pub const NONE_OF_THESE: &str = "None of these";
pub const NOTHING_TO_CONTINUE: &str = "There is nothing to continue yet. Ask me a question first.";
pub const NOTHING_BEFORE: &str = "There is nothing to go back to. Ask me a question, or send /topics.";
pub const NO_MORE_CHOICES: &str = "That's all of them. Pick one by its number, or ask me in other words.";
pub const NOTHING_TO_RATE: &str = "There is no answer to rate yet. Ask me a question first.";
pub const UNAVAILABLE: &str = "Sorry, I can't reach my notes right now. Please try again in a minute.";
pub const GONE: &str = "Sorry, that topic is no longer available. Ask me again in your own words.";
pub const NO_SUCH_CHOICE: &str = "There is no such choice. Ask me a question, or send /topics.";
pub const RESET: &str = "Done: I've forgotten where we were. Ask me anything.";
pub const TEXT_ONLY: &str = "I can only read text. Please send me your question as a text message.";
pub const EMPTY: &str = "Please write your question in words.";
pub const TOPICS: &str = "Topics I can answer:";
pub const END_OF_ARTICLE: &str = "That's the end of the article.";
pub const RELATED: &str = "Related topics:";
pub const READ_MORE: &str = "Read the full article";
pub const NEXT_SECTION: &str = "Next section";
pub const NEXT_ARTICLE: &str = "Next article";
pub const PREV_ARTICLE: &str = "Previous article";
/// Under a stub's summary: why there is no more, and what is offered instead.
pub const STUB_ONLY: &str = "That is all I have on this topic: the full article is on the site.";
pub const STUB_ON_SITE: &str = "Read it on the site";
pub const CLOSEST_FULL: &str = "Articles I have in full that come closest:";
/// The button under a don't-know that waits for an answer, and what a tap on it says.
pub const WATCH: &str = "🔔 Tell me when there's an answer";
pub const WATCH_ADDED: &str = "OK: I'll send you the answer once I have one.";
pub const WATCH_ALREADY: &str = "You're on the list already: I'll send you the answer once I have one.";
pub const WATCH_FULL: &str = "You're waiting for several answers already; I'll send those first.";
pub const WATCH_STALE: &str = "That question is no longer the last one you asked. Ask it again to wait for its answer.";

/// Above an answer sent to a user who waited for it.
pub fn answer_arrived(question: &str) -> String {
    format!("🔔 You asked “{question}”, and I have an answer now:")
}

pub const STUB_END: &str = "There is nothing further on this topic here: the full article is on the site.";

pub fn welcome(bot_name: &str) -> String {
    format!("Hi! I'm {bot_name}. Ask me a question in your own words, or pick a popular topic:")
}

/// What the bot is and its commands, from the command table.
pub fn help(bot_name: &str) -> String {
    let mut out = format!("I'm {bot_name}. Write a question and I'll answer with the article section that fits best.");
    for c in vocabulary::listed(Audience::Everyone) {
        out.push_str(&format!("\n/{} – {}", c.name, c.summary));
    }
    out
}

/// The console's help: its commands and the words it takes for the bot's buttons, from the same
/// command table as the bot's menus, plus what only the console has (numbers, quit).
pub fn console_help(bot_name: &str) -> String {
    let mut out = format!("I'm {bot_name}. Write a question and I'll answer with the article section that fits best.");
    for c in vocabulary::COMMANDS.iter().filter(|c| c.audience == Audience::Everyone) {
        let typed: Vec<String> = c.words.iter().map(|w| format!("\"{w}\"")).collect();
        if typed.is_empty() && !c.listed {
            continue;
        }
        let mut names = vec![format!("/{}", c.name)];
        names.extend(typed);
        out.push_str(&format!("\n  {} – {}", names.join(", "), c.summary));
    }
    out.push_str("\n  1, 2, 3… – pick from the last list shown");
    out.push_str("\n  \"quit\" – leave");
    out
}

/// After /forget: `None` when the deletion failed.
pub fn forgotten(existed: Option<bool>) -> &'static str {
    match existed {
        Some(true) => {
            "Done: I've deleted everything I kept about you (your questions, position and feedback). \
             What remains has no link to you: totals such as votes per article and how often a question \
             was asked, and, for questions I could not answer, their text so that an article can be \
             written."
        }
        Some(false) => "I don't keep anything about you.",
        None => "Sorry, I could not delete your data just now. Please send /forget again in a minute.",
    }
}

pub fn feedback_thanks(up: bool) -> &'static str {
    if up {
        "Thanks! Glad it helped."
    } else {
        "Thanks for telling me. I'll pass it on so the article can be improved."
    }
}
