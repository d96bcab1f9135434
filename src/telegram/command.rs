//! Reading a Telegram message: commands as Telegram writes them (`/help`, `/help@this_bot`, with
//! an argument), mentions of the bot, and whether a group message is addressed to the bot at all.
//! What each command means comes from the engine's vocabulary.

use articlebot_engine::vocabulary::{self, AdminCommand, Command};
use articlebot_engine::Input;
use teloxide::types::Message;

/// What a message asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Conversation(Input),
    Admin(AdminCommand),
    /// A command this bot does not have: help in a private chat, ignored in a group (it is
    /// probably another bot's).
    Unknown,
    /// A command for another bot in a group.
    NotForUs,
}

/// Reads a message text: a command (`/help`, `/help@this_bot`), or a question with every mention
/// of the bot removed.
pub fn parse_text(text: &str, bot_username: &str) -> Request {
    let t = text.trim();
    if let Some(rest) = t.strip_prefix('/') {
        let (head, arg) = rest.split_once(char::is_whitespace).map_or((rest, ""), |(h, a)| (h, a.trim()));
        let (name, target) = head.split_once('@').map_or((head, None), |(n, b)| (n, Some(b)));
        if target.is_some_and(|b| !b.eq_ignore_ascii_case(bot_username)) {
            return Request::NotForUs;
        }
        return match vocabulary::command(name).map(|c| c.with_argument(arg)) {
            Some(Command::Conversation(input)) => Request::Conversation(input),
            Some(Command::Admin(cmd)) => Request::Admin(cmd),
            None => Request::Unknown,
        };
    }
    let cleaned = strip_mentions(t, bot_username);
    Request::Conversation(Input::Question(cleaned.split_whitespace().collect::<Vec<_>>().join(" ")))
}

/// Byte offsets of `@bot_username` mentions, ignoring ASCII case. A mention ends where the
/// username does: `@botanist` is not a mention of `@bot` (usernames are `[A-Za-z0-9_]`).
fn mentions<'a>(text: &'a str, bot_username: &'a str) -> impl Iterator<Item = usize> + 'a {
    let (h, n) = (text.as_bytes(), bot_username.as_bytes());
    let is_name_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    (0..h.len()).filter(move |&i| {
        !n.is_empty()
            && h[i] == b'@'
            && h.len() >= i + 1 + n.len()
            && h[i + 1..i + 1 + n.len()].eq_ignore_ascii_case(n)
            && h.get(i + 1 + n.len()).is_none_or(|&b| !is_name_byte(b))
    })
}

/// The text with every mention of the bot replaced by a space; any Unicode around it is kept.
fn strip_mentions(text: &str, bot_username: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for i in mentions(text, bot_username) {
        out.push_str(&text[at..i]);
        out.push(' ');
        at = i + 1 + bot_username.len();
    }
    out.push_str(&text[at..]);
    out
}

/// In a group the bot answers only commands, mentions of itself and replies to its messages.
pub fn addressed_to_us(msg: &Message, bot_username: &str) -> bool {
    if msg.chat.is_private() {
        return true;
    }
    let text = msg.text().or(msg.caption()).unwrap_or("");
    if text.trim_start().starts_with('/') {
        return true;
    }
    if mentions(text, bot_username).next().is_some() {
        return true;
    }
    msg.reply_to_message()
        .and_then(|m| m.from.as_ref())
        .is_some_and(|u| u.is_bot && u.username.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(bot_username)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_mentions() {
        let q = |s: &str| Request::Conversation(Input::Question(s.into()));
        assert_eq!(parse_text("/start", "bot"), Request::Conversation(Input::Start(None)));
        assert_eq!(
            parse_text("/start knee-pain", "bot"),
            Request::Conversation(Input::Start(Some("knee-pain".into())))
        );
        assert_eq!(parse_text("/help@Bot", "bot"), Request::Conversation(Input::Help));
        assert_eq!(parse_text("/help@other_bot", "bot"), Request::NotForUs);
        assert_eq!(parse_text("/reload", "bot"), Request::Admin(AdminCommand::Reload { force: false }));
        assert_eq!(parse_text("/reload FORCE", "bot"), Request::Admin(AdminCommand::Reload { force: true }));
        assert!(matches!(parse_text("/reload now", "bot"), Request::Admin(AdminCommand::Usage(_))));
        assert_eq!(parse_text("/whatever", "bot"), Request::Unknown);
        assert_eq!(parse_text("@Bot why do knees hurt", "bot"), q("why do knees hurt"));
        assert_eq!(parse_text("ask @botanist, not @bot_2", "bot"), q("ask @botanist, not @bot_2"));
        assert_eq!(parse_text("@bot, knees?@bot", "bot"), q(", knees?"));
        assert_eq!(parse_text("  knee   pain  ", "bot"), q("knee pain"));
        assert_eq!(parse_text("İstanbul @BOT knees", "bot"), q("İstanbul knees"));
    }
}
