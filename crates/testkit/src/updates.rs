//! The people, chats and incoming messages of the fake, and their Bot API JSON (the shapes
//! teloxide-core 0.13 deserializes: `User`, `Chat`, `Message`, `CallbackQuery`, `InlineQuery`).

use serde_json::{json, Value};

/// A Telegram user talking to the bot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestUser {
    pub id: i64,
    pub first_name: String,
    pub last_name: Option<String>,
    pub username: Option<String>,
    pub language_code: Option<String>,
    pub is_bot: bool,
}

impl TestUser {
    /// A human user speaking English.
    pub fn new(id: i64, first_name: &str) -> Self {
        TestUser {
            id,
            first_name: first_name.to_string(),
            last_name: None,
            username: None,
            language_code: Some("en".into()),
            is_bot: false,
        }
    }

    /// The user the fake invents for an id nobody registered: "`User<id>`", English.
    pub fn default_for(id: i64) -> Self {
        TestUser::new(id, &format!("User{id}"))
    }

    pub fn username(mut self, username: &str) -> Self {
        self.username = Some(username.to_string());
        self
    }

    pub fn last_name(mut self, last_name: &str) -> Self {
        self.last_name = Some(last_name.to_string());
        self
    }

    /// `None` = the client did not share a language.
    pub fn language(mut self, code: Option<&str>) -> Self {
        self.language_code = code.map(str::to_string);
        self
    }

    pub fn bot(mut self) -> Self {
        self.is_bot = true;
        self
    }

    /// Telegram's `User` object.
    pub fn to_json(&self) -> Value {
        let mut v = json!({ "id": self.id, "is_bot": self.is_bot, "first_name": self.first_name });
        if let Some(x) = &self.last_name {
            v["last_name"] = json!(x);
        }
        if let Some(x) = &self.username {
            v["username"] = json!(x);
        }
        if let Some(x) = &self.language_code {
            v["language_code"] = json!(x);
        }
        v
    }
}

/// The kind of a chat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatKind {
    /// One-to-one chat with a user (chat id = user id).
    Private,
    Group {
        title: String,
    },
    Supergroup {
        title: String,
        username: Option<String>,
    },
}

/// A chat the bot is in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestChat {
    pub id: i64,
    pub kind: ChatKind,
}

impl TestChat {
    pub fn group(id: i64, title: &str) -> Self {
        TestChat { id, kind: ChatKind::Group { title: title.to_string() } }
    }

    pub fn supergroup(id: i64, title: &str) -> Self {
        TestChat { id, kind: ChatKind::Supergroup { title: title.to_string(), username: None } }
    }

    /// The chat the fake invents for an id nobody registered: private for positive ids,
    /// a supergroup for `-100…` ids, a group for other negative ids.
    pub fn default_for(id: i64) -> Self {
        if id > 0 {
            TestChat { id, kind: ChatKind::Private }
        } else if id <= -1_000_000_000_000 {
            TestChat::supergroup(id, &format!("Supergroup {}", -id))
        } else {
            TestChat::group(id, &format!("Group {}", -id))
        }
    }

    pub fn is_private(&self) -> bool {
        self.kind == ChatKind::Private
    }

    /// Telegram's `Chat` object; a private chat takes the names of `user` (its owner).
    pub fn to_json(&self, user: Option<&TestUser>) -> Value {
        match &self.kind {
            ChatKind::Private => {
                let mut v = json!({ "id": self.id, "type": "private" });
                let fallback;
                let u = match user {
                    Some(u) => u,
                    None => {
                        fallback = TestUser::default_for(self.id);
                        &fallback
                    }
                };
                v["first_name"] = json!(u.first_name);
                if let Some(x) = &u.last_name {
                    v["last_name"] = json!(x);
                }
                if let Some(x) = &u.username {
                    v["username"] = json!(x);
                }
                v
            }
            ChatKind::Group { title } => json!({ "id": self.id, "type": "group", "title": title }),
            ChatKind::Supergroup { title, username } => {
                let mut v = json!({ "id": self.id, "type": "supergroup", "title": title });
                if let Some(u) = username {
                    v["username"] = json!(u);
                }
                v
            }
        }
    }
}

/// What a user sends.
#[derive(Clone, Debug, PartialEq)]
pub enum Content {
    /// Text; `bot_command` and `mention` entities are computed like Telegram does.
    Text(String),
    Sticker {
        emoji: String,
    },
    Photo {
        caption: Option<String>,
    },
    Voice {
        seconds: u32,
    },
    Location {
        latitude: f64,
        longitude: f64,
    },
    Document {
        file_name: String,
        caption: Option<String>,
    },
    Contact {
        phone_number: String,
        first_name: String,
    },
}

/// A message a user sends to the bot: `FakeTelegram::send(Incoming::text(chat, user, "hi"))`.
#[derive(Clone, Debug, PartialEq)]
pub struct Incoming {
    pub chat_id: i64,
    pub user_id: i64,
    pub content: Content,
    /// The message (user's or bot's, in the same chat) this one replies to.
    pub reply_to: Option<i32>,
}

impl Incoming {
    pub fn new(chat_id: i64, user_id: i64, content: Content) -> Self {
        Incoming { chat_id, user_id, content, reply_to: None }
    }

    pub fn text(chat_id: i64, user_id: i64, text: &str) -> Self {
        Incoming::new(chat_id, user_id, Content::Text(text.to_string()))
    }

    pub fn reply_to(mut self, message_id: i32) -> Self {
        self.reply_to = Some(message_id);
        self
    }
}

/// Fills the content fields of a `Message` object.
pub(crate) fn content_json(msg: &mut Value, content: &Content, file_seq: u64) {
    let file = |kind: &str| (format!("FAKE-{kind}-{file_seq}"), format!("U{kind}{file_seq}"));
    match content {
        Content::Text(t) => {
            msg["text"] = json!(t);
            let e = entities(t);
            if !e.is_empty() {
                msg["entities"] = Value::Array(e);
            }
        }
        Content::Sticker { emoji } => {
            let (id, uid) = file("sticker");
            msg["sticker"] = json!({
                "file_id": id, "file_unique_id": uid, "file_size": 12_345,
                "width": 512, "height": 512, "type": "regular",
                "is_animated": false, "is_video": false, "emoji": emoji, "set_name": "FakeStickers"
            });
        }
        Content::Photo { caption } => {
            let (id, uid) = file("photo");
            msg["photo"] = json!([
                { "file_id": format!("{id}-s"), "file_unique_id": format!("{uid}s"), "file_size": 1_234, "width": 90, "height": 60 },
                { "file_id": id, "file_unique_id": uid, "file_size": 45_678, "width": 1280, "height": 853 }
            ]);
            caption_json(msg, caption.as_deref());
        }
        Content::Voice { seconds } => {
            let (id, uid) = file("voice");
            msg["voice"] = json!({ "file_id": id, "file_unique_id": uid, "file_size": 8_000, "duration": seconds, "mime_type": "audio/ogg" });
        }
        Content::Location { latitude, longitude } => {
            msg["location"] = json!({ "latitude": latitude, "longitude": longitude });
        }
        Content::Document { file_name, caption } => {
            let (id, uid) = file("document");
            msg["document"] = json!({ "file_id": id, "file_unique_id": uid, "file_size": 2_048, "file_name": file_name, "mime_type": "application/octet-stream" });
            caption_json(msg, caption.as_deref());
        }
        Content::Contact { phone_number, first_name } => {
            msg["contact"] = json!({ "phone_number": phone_number, "first_name": first_name });
        }
    }
}

fn caption_json(msg: &mut Value, caption: Option<&str>) {
    if let Some(c) = caption {
        msg["caption"] = json!(c);
        let e = entities(c);
        if !e.is_empty() {
            msg["caption_entities"] = Value::Array(e);
        }
    }
}

/// `bot_command` (`/cmd`, `/cmd@bot`, at the start or after whitespace) and `mention`
/// (`@username`, 5-32 characters) entities, with offsets and lengths in UTF-16 code units as
/// Telegram counts them.
fn entities(text: &str) -> Vec<Value> {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let utf16_at = |byte: usize| text[..byte].encode_utf16().count();
    let mut out = Vec::new();
    let mut k = 0;
    while k < chars.len() {
        let (b, c) = chars[k];
        let prev = if k == 0 { None } else { Some(chars[k - 1].1) };
        if c == '/' && prev.is_none_or(char::is_whitespace) {
            let mut e = k + 1;
            while e < chars.len() && word(chars[e].1) && e - k <= 64 {
                e += 1;
            }
            if e > k + 1 {
                if e < chars.len() && chars[e].1 == '@' {
                    let mut f = e + 1;
                    while f < chars.len() && word(chars[f].1) {
                        f += 1;
                    }
                    if f - e > 3 {
                        e = f;
                    }
                }
                let end = chars.get(e).map_or(text.len(), |x| x.0);
                out.push(json!({ "type": "bot_command", "offset": utf16_at(b), "length": text[b..end].encode_utf16().count() }));
                k = e;
                continue;
            }
        }
        if c == '@' && !prev.is_some_and(word) {
            let mut e = k + 1;
            while e < chars.len() && word(chars[e].1) {
                e += 1;
            }
            if (5..=32).contains(&(e - k - 1)) {
                let end = chars.get(e).map_or(text.len(), |x| x.0);
                out.push(
                    json!({ "type": "mention", "offset": utf16_at(b), "length": text[b..end].encode_utf16().count() }),
                );
                k = e;
                continue;
            }
        }
        k += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_mentions() {
        assert_eq!(entities("/start@test_articlebot hi"), vec![json!({"type":"bot_command","offset":0,"length":22})]);
        assert_eq!(
            entities("é @test_articlebot what is /help?"),
            vec![
                json!({"type":"mention","offset":2,"length":16}),
                json!({"type":"bot_command","offset":27,"length":5})
            ]
        );
        assert!(entities("a/b mail@host.com @abc").is_empty());
        assert_eq!(entities("👍 /x"), vec![json!({"type":"bot_command","offset":3,"length":2})]);
    }
}
