//! Updates as they come off the wire (a `getUpdates` batch, a webhook body): read one at a time,
//! so that one update teloxide cannot read costs that update, never its batch. What cannot be
//! read is logged by id and error class only: its text is the user's.

use std::borrow::Cow;

use serde::de::IgnoredAny;
use serde::Deserialize;
use teloxide::types::{Update, UpdateKind};

/// What one raw update turned out to be.
#[derive(Debug)]
pub enum Read {
    /// Boxed: an update is large, and most of what is skipped is small.
    Update(Box<Update>),
    /// Not for the dispatcher: unreadable or of a kind teloxide does not know. `id` is `None`
    /// when not even the update's id could be read.
    Skipped { id: Option<u32> },
}

/// Just the id: any other field, however broken its text, is skipped unread.
#[derive(Deserialize)]
struct IdOnly {
    update_id: u32,
}

/// The update's id, if it has one.
pub fn update_id(raw: &str) -> Option<u32> {
    serde_json::from_str::<IdOnly>(raw).ok().map(|i| i.update_id)
}

/// Reads one update. A text with an unpaired UTF-16 surrogate escape (`"\ud800"`, which
/// serde_json refuses) is read with U+FFFD in its place, so its sender is still answered.
pub fn read(raw: &str) -> Read {
    let Some(id) = update_id(raw) else {
        tracing::warn!(bytes = raw.len(), "skipping an update without an update_id");
        return Read::Skipped { id: None };
    };
    let parsed = match serde_json::from_str::<Update>(raw) {
        Ok(u) => Ok(u),
        Err(first) => match replace_lone_surrogates(raw) {
            Cow::Owned(repaired) => match serde_json::from_str::<Update>(&repaired) {
                Ok(u) => {
                    tracing::warn!(update = id, "an update had unpaired UTF-16 surrogates; read with U+FFFD instead");
                    Ok(u)
                }
                Err(e) => Err(e),
            },
            Cow::Borrowed(_) => Err(first),
        },
    };
    match parsed {
        Ok(u) if matches!(u.kind, UpdateKind::Error(_)) => {
            // teloxide turns a kind it does not know, or a known kind it cannot read, into
            // `UpdateKind::Error` (and its dispatcher logs the whole update at ERROR, then drops
            // it before any handler).
            tracing::warn!(
                update = id,
                kind = kind_of(raw).as_deref().unwrap_or("?"),
                "skipping an update teloxide cannot read"
            );
            Read::Skipped { id: Some(id) }
        }
        Ok(u) => Read::Update(Box::new(u)),
        Err(e) => {
            // Never `e.to_string()`: serde's messages quote the data (`invalid type: string "…"`).
            tracing::warn!(
                update = id,
                kind = kind_of(raw).as_deref().unwrap_or("?"),
                class = ?e.classify(),
                line = e.line(),
                column = e.column(),
                "skipping an update that cannot be read"
            );
            Read::Skipped { id: Some(id) }
        }
    }
}

/// The update's kind as Telegram names it (its key other than `update_id`), when that is a
/// plain name: key names come from the Bot API's schema, but a forged body could put anything
/// there, so anything else is not shown.
fn kind_of(raw: &str) -> Option<String> {
    let fields = serde_json::from_str::<std::collections::BTreeMap<String, IgnoredAny>>(raw).ok()?;
    fields
        .into_keys()
        .find(|k| k != "update_id")
        .filter(|k| k.len() <= 40 && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
}

/// Replaces `\uD800`-`\uDFFF` escapes that are not part of a valid surrogate pair with
/// `\uFFFD`. JSON allows them (escapes are code units); serde_json, and Rust strings, do not.
/// `s` is JSON text: a backslash outside a string is not valid JSON anyway.
pub fn replace_lone_surrogates(s: &str) -> Cow<'_, str> {
    fn hex4(b: &[u8]) -> Option<u16> {
        let digits = b.get(..4)?;
        if !digits.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        u16::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
    }
    let b = s.as_bytes();
    let mut out: Option<String> = None;
    let (mut i, mut copied) = (0, 0);
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        // `\\`, `\"`, `\n`…: two bytes, never the start of a `\u` escape.
        if b.get(i + 1) != Some(&b'u') {
            i += 2;
            continue;
        }
        let Some(unit) = hex4(&b[i + 2..]) else {
            i += 2;
            continue;
        };
        let high = (0xD800..0xDC00).contains(&unit);
        let paired = high
            && b.get(i + 6) == Some(&b'\\')
            && b.get(i + 7) == Some(&b'u')
            && hex4(&b[i + 8..]).is_some_and(|low| (0xDC00..0xE000).contains(&low));
        if paired {
            i += 12;
            continue;
        }
        if (0xD800..0xE000).contains(&unit) {
            let o = out.get_or_insert_with(|| String::with_capacity(s.len()));
            o.push_str(&s[copied..i]);
            o.push_str("\\uFFFD");
            copied = i + 6;
        }
        i += 6;
    }
    match out {
        None => Cow::Borrowed(s),
        Some(mut o) => {
            o.push_str(&s[copied..]);
            Cow::Owned(o)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(s: &str) -> String {
        serde_json::from_str::<String>(&replace_lone_surrogates(s)).expect("valid after the repair")
    }

    #[test]
    fn lone_surrogates_become_replacement_characters() {
        assert_eq!(decoded(r#""a\ud800b""#), "a\u{fffd}b");
        assert_eq!(decoded(r#""\udc00""#), "\u{fffd}");
        assert_eq!(decoded(r#""\ud83d\ude00""#), "😀", "a pair is kept");
        assert_eq!(decoded(r#""\ud800\ud83d\ude00""#), "\u{fffd}😀");
        assert_eq!(decoded(r#""\ud83d""#), "\u{fffd}", "a high surrogate at the end");
        assert_eq!(decoded(r#""\ude00\ud83d""#), "\u{fffd}\u{fffd}", "a pair in the wrong order");
        assert_eq!(decoded(r#""\\ud800""#), "\\ud800", "an escaped backslash, not an escape");
        assert_eq!(decoded(r#""x\ud800\n""#), "x\u{fffd}\n");
        assert_eq!(decoded(r#""é\u00e9\ud800""#), "éé\u{fffd}", "non-ASCII text around it is kept");
        assert!(matches!(replace_lone_surrogates(r#""plain \u00e9""#), Cow::Borrowed(_)));
        assert!(matches!(replace_lone_surrogates(r#""cut \ud8"#), Cow::Borrowed(_)), "a cut escape is left alone");
    }

    fn message(id: u32, text: &str) -> String {
        format!(
            r#"{{"update_id":{id},"message":{{"message_id":1,"date":1700000000,"chat":{{"id":7,"type":"private","first_name":"A"}},"from":{{"id":7,"is_bot":false,"first_name":"A"}},"text":"{text}"}}}}"#
        )
    }

    #[test]
    fn updates_are_read_one_at_a_time() {
        match read(&message(1, "knee pain")) {
            Read::Update(u) => assert_eq!(u.id.0, 1),
            other => panic!("{other:?}"),
        }
        match read(&message(2, r"knee \ud800 pain")) {
            Read::Update(u) => {
                let UpdateKind::Message(m) = u.kind else { panic!("a message") };
                assert_eq!(m.text(), Some("knee \u{fffd} pain"));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(read(r#"{"update_id":3,"message":{"bogus":"x"}}"#), Read::Skipped { id: Some(3) }));
        assert!(matches!(read(r#"{"update_id":4,"brand_new_kind":{"x":1}}"#), Read::Skipped { id: Some(4) }));
        assert!(matches!(read(r#"{"update_id":5,"message":"\ud800"}"#), Read::Skipped { id: Some(5) }));
        assert!(matches!(read(r#"{"message":{}}"#), Read::Skipped { id: None }));
        assert!(matches!(read("[1,2"), Read::Skipped { id: None }));
        assert_eq!(kind_of(r#"{"update_id":4,"brand_new_kind":{"x":"\ud800"}}"#).as_deref(), Some("brand_new_kind"));
        assert_eq!(kind_of(r#"{"update_id":4,"Secret Text":1}"#), None, "only plain names are shown");
    }
}
