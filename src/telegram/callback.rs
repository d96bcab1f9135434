//! Button payloads (`callback_data`): compact, versioned, at most 64 bytes, and parsed strictly.
//! They name articles by short key only, so a button can never point at anything outside the
//! loaded knowledge base: a key that no longer resolves is answered as "gone".
//!
//! Format: `1:<action>:<fields>` — `o:<key>:<section|->` open, `n:<key>:<section>` next
//! section (edits the message), `t:<page>` topic list page, `f:<key>:<section|->:<u|d>` feedback,
//! `z` "None of these" under did-you-mean choices (about the choices on screen, so it names nothing),
//! `w:<id>` wait for an answer to the question `<id>` (its hash), `r:<a|x|s>:<id>` add, reject or skip on a review card and `r:o:<id>:<key>` add to another
//! article, `g:<o|w>:<id>` open or mark to write a group of unanswered questions and `g:a:<id>:<key>`
//! add its questions to an article, where `<id>` is the proposal's [`articlebot_engine::Proposal::id`] in 16 hex digits:
//! the question itself never travels in a button, and a tap is checked against the proposals
//! still undecided (and the sender against the admins) before anything is done.

use articlebot_engine::is_key;

/// Telegram's limit on callback data.
pub const MAX_CALLBACK_BYTES: usize = 64;
const VERSION: &str = "1";
/// Sections and pages beyond this are not real.
const MAX_NUMBER: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Open {
        key: String,
        section: Option<usize>,
    },
    Next {
        key: String,
        section: usize,
    },
    Topics {
        page: usize,
    },
    Feedback {
        key: String,
        section: Option<usize>,
        up: bool,
    },
    NoneOfThese,
    Review {
        id: u64,
        op: ReviewOp,
    },
    /// A button of /unanswered: a group of alike questions, by [`articlebot_engine::group_id`].
    Group {
        id: u64,
        op: GroupOp,
    },
    /// "Tell me when there's an answer" under a don't-know, naming the question by its
    /// [`articlebot_engine::question_id`].
    Watch {
        question: u64,
    },
}

/// A reviewer's button on a review card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReviewOp {
    Add,
    /// Add to another article (one of the proposal's alternatives, by short key).
    AddTo(String),
    Reject,
    Skip,
}

/// An admin's button on the unanswered list or a group's card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupOp {
    /// Show the group's card.
    Open,
    /// Add all its questions to this article (by short key; one the card offered).
    AddTo(String),
    /// Put it on the to-do list: an article to write.
    ToWrite,
}

/// Why callback data was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    #[error("callback data is too long")]
    TooLong,
    #[error("callback data has an unknown version")]
    Version,
    #[error("callback data is malformed")]
    Malformed,
}

fn section_field(s: Option<usize>) -> String {
    s.map_or_else(|| "-".to_string(), |n| n.to_string())
}

impl Action {
    pub fn encode(&self) -> String {
        match self {
            Action::Open { key, section } => format!("{VERSION}:o:{key}:{}", section_field(*section)),
            Action::Next { key, section } => format!("{VERSION}:n:{key}:{section}"),
            Action::Topics { page } => format!("{VERSION}:t:{page}"),
            Action::Feedback { key, section, up } => {
                format!("{VERSION}:f:{key}:{}:{}", section_field(*section), if *up { "u" } else { "d" })
            }
            Action::NoneOfThese => format!("{VERSION}:z"),
            Action::Watch { question } => format!("{VERSION}:w:{question:016x}"),
            Action::Group { id, op } => match op {
                GroupOp::Open => format!("{VERSION}:g:o:{id:016x}"),
                GroupOp::AddTo(key) => format!("{VERSION}:g:a:{id:016x}:{key}"),
                GroupOp::ToWrite => format!("{VERSION}:g:w:{id:016x}"),
            },
            Action::Review { id, op } => match op {
                ReviewOp::Add => format!("{VERSION}:r:a:{id:016x}"),
                ReviewOp::AddTo(key) => format!("{VERSION}:r:o:{id:016x}:{key}"),
                ReviewOp::Reject => format!("{VERSION}:r:x:{id:016x}"),
                ReviewOp::Skip => format!("{VERSION}:r:s:{id:016x}"),
            },
        }
    }

    pub fn decode(data: &str) -> Result<Action, CallbackError> {
        if data.len() > MAX_CALLBACK_BYTES {
            return Err(CallbackError::TooLong);
        }
        let mut parts = data.split(':');
        match parts.next() {
            Some(VERSION) => {}
            Some(_) | None => return Err(CallbackError::Version),
        }
        let action = parts.next().ok_or(CallbackError::Malformed)?;
        let fields: Vec<&str> = parts.collect();
        let parsed = match (action, fields.as_slice()) {
            ("o", [key, section]) => Action::Open { key: key_of(key)?, section: optional_number(section)? },
            ("n", [key, section]) => Action::Next { key: key_of(key)?, section: number(section)? },
            ("t", [page]) => Action::Topics { page: number(page)? },
            ("z", []) => Action::NoneOfThese,
            ("w", [id]) => Action::Watch { question: proposal_id(id)? },
            ("g", ["o", id]) => Action::Group { id: proposal_id(id)?, op: GroupOp::Open },
            ("g", ["w", id]) => Action::Group { id: proposal_id(id)?, op: GroupOp::ToWrite },
            ("g", ["a", id, key]) => Action::Group { id: proposal_id(id)?, op: GroupOp::AddTo(key_of(key)?) },
            ("r", ["a", id]) => Action::Review { id: proposal_id(id)?, op: ReviewOp::Add },
            ("r", ["x", id]) => Action::Review { id: proposal_id(id)?, op: ReviewOp::Reject },
            ("r", ["s", id]) => Action::Review { id: proposal_id(id)?, op: ReviewOp::Skip },
            ("r", ["o", id, key]) => Action::Review { id: proposal_id(id)?, op: ReviewOp::AddTo(key_of(key)?) },
            ("f", [key, section, vote]) => Action::Feedback {
                key: key_of(key)?,
                section: optional_number(section)?,
                up: match *vote {
                    "u" => true,
                    "d" => false,
                    _ => return Err(CallbackError::Malformed),
                },
            },
            _ => return Err(CallbackError::Malformed),
        };
        Ok(parsed)
    }
}

fn key_of(s: &str) -> Result<String, CallbackError> {
    if is_key(s) {
        Ok(s.to_string())
    } else {
        Err(CallbackError::Malformed)
    }
}

/// Exactly 16 lower-case hex digits, as [`Action::encode`] writes them.
fn proposal_id(s: &str) -> Result<u64, CallbackError> {
    if s.len() != 16 || !s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(CallbackError::Malformed);
    }
    u64::from_str_radix(s, 16).map_err(|_| CallbackError::Malformed)
}

fn number(s: &str) -> Result<usize, CallbackError> {
    if s.is_empty() || s.len() > 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CallbackError::Malformed);
    }
    s.parse::<usize>().ok().filter(|&n| n <= MAX_NUMBER).ok_or(CallbackError::Malformed)
}

fn optional_number(s: &str) -> Result<Option<usize>, CallbackError> {
    if s == "-" {
        Ok(None)
    } else {
        number(s).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips_fit_in_64_bytes() {
        let key = "AbCd-_09".to_string();
        for a in [
            Action::Open { key: key.clone(), section: None },
            Action::Open { key: key.clone(), section: Some(99_999) },
            Action::Next { key: key.clone(), section: 3 },
            Action::Topics { page: 12 },
            Action::Feedback { key: key.clone(), section: Some(100_000), up: false },
            Action::NoneOfThese,
            Action::Review { id: u64::MAX, op: ReviewOp::Add },
            Action::Review { id: 0, op: ReviewOp::AddTo(key.clone()) },
            Action::Review { id: 0x0123_4567_89ab_cdef, op: ReviewOp::Reject },
            Action::Review { id: 7, op: ReviewOp::Skip },
            Action::Group { id: u64::MAX, op: GroupOp::Open },
            Action::Group { id: 1, op: GroupOp::AddTo(key.clone()) },
            Action::Group { id: 2, op: GroupOp::ToWrite },
            Action::Watch { question: 0xfedc_ba98_7654_3210 },
        ] {
            let data = a.encode();
            assert!(data.len() <= MAX_CALLBACK_BYTES, "{data}");
            assert_eq!(Action::decode(&data), Ok(a));
        }
    }

    #[test]
    fn forged_data_is_refused() {
        for bad in [
            "",
            "1",
            "2:o:AbCd-_09:1",
            "1:o:AbCd-_09",
            "1:o:../etc/pa:1",
            "1:o:AbCd-_0:1",
            "1:x:AbCd-_09:1",
            "1:t:-1",
            "1:t:99999999",
            "1:n:AbCd-_09:-",
            "1:f:AbCd-_09:1:x",
            "1:o:AbCd-_09:1:extra",
            "1:t:+5",
            "1:o:AbCd/_09:1",
            "1:t:",
            "1:z:",
            "1:z:AbCd-_09",
            "2:z",
            "1:Z",
            "1:r:a:0123456789abcde",
            "1:r:a:0123456789abcdef0",
            "1:r:a:0123456789ABCDEF",
            "1:r:a:+123456789abcdef",
            "1:r:q:0123456789abcdef",
            "1:r:o:0123456789abcdef",
            "1:r:o:0123456789abcdef:../etc/p",
            "1:r:a:0123456789abcdef:AbCd-_09",
            "1:r:a:calves",
            "1:r",
            "1:w",
            "1:w:calves",
            "1:w:0123456789abcdef:x",
        ] {
            assert!(Action::decode(bad).is_err(), "{bad:?} must be refused");
        }
        assert_eq!(Action::decode(&"1:t:0".repeat(20)), Err(CallbackError::TooLong));
    }

    proptest! {
        #[test]
        fn decoding_never_panics(data in ".{0,80}") {
            let _ = Action::decode(&data);
        }

        #[test]
        fn decoded_keys_are_always_safe(data in "1:[ontf]:[A-Za-z0-9_./-]{0,10}:[0-9-]{0,7}(:[ud])?") {
            if let Ok(Action::Open { key, .. } | Action::Next { key, .. } | Action::Feedback { key, .. }) = Action::decode(&data) {
                prop_assert!(is_key(&key));
                prop_assert!(!key.contains('/') && !key.contains('.'));
            }
        }
    }
}
