//! What is stored about one user, and its versioned on-disk encoding. Positions name articles by
//! id (not index), so they stay valid across knowledge reloads; everything that grows is capped.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// The encoding version written now. Older encodings must keep loading: add fields with
/// `#[serde(default)]`, never rename or repurpose one.
pub const STATE_VERSION: u32 = 1;
/// Questions kept per user.
pub const MAX_QUESTIONS: usize = 20;
/// Articles remembered as seen (for "unseen first" in related topics).
pub const MAX_SEEN: usize = 200;
/// Positions kept for "back".
pub const MAX_HISTORY: usize = 10;
/// Feedback entries kept per user.
pub const MAX_FEEDBACK: usize = 50;
/// Replied update ids kept per user.
pub const MAX_REPLIED: usize = 16;
/// Longest question text kept in the history.
pub const MAX_QUESTION_CHARS: usize = 300;

/// Where a user is: an article and the section last shown (`None` for a stub's teaser).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub article: String,
    #[serde(default)]
    pub section: Option<usize>,
}

/// What a reply showed that `back` can return to and `more` can continue. Untagged so that the
/// history written before lists were kept (bare positions) still reads as articles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Screen {
    Article(Position),
    /// Did-you-mean choices.
    Choices {
        choices: Vec<Offer>,
    },
    Topics {
        topics_page: usize,
    },
    /// The welcome's popular topics.
    Welcome {
        welcome: bool,
    },
}

impl Screen {
    /// Two sections of one article are one place to go back to.
    fn same_place(&self, other: &Screen) -> bool {
        match (self, other) {
            (Screen::Article(a), Screen::Article(b)) => a.article == b.article,
            (a, b) => a == b,
        }
    }
}

/// A choice offered in the last reply, which a number typed back picks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Offer {
    pub article: String,
    #[serde(default)]
    pub section: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AskedQuestion {
    pub text: String,
    pub intent: String,
    pub at: u64,
}

/// The user's last question, for the learning loop: what a pick, a vote or a rephrase that
/// follows says something about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastAsk {
    /// The matcher's normalised form (capped at `MAX_NORMALIZED_BYTES`).
    pub normalized: String,
    /// As typed (capped at `MAX_QUESTION_CHARS`).
    pub example: String,
    /// Whether did-you-mean choices for it are on screen (a pick or "None of these" is about it).
    #[serde(default)]
    pub choices: bool,
    /// The article it was answered with, directly or by a pick, and when.
    #[serde(default)]
    pub answer: Option<String>,
    #[serde(default)]
    pub answered_at: u64,
    /// A 👍 or 👎 was given for the answer (a question after it is not a rephrase then).
    #[serde(default)]
    pub rated: bool,
    /// The question this one rephrased right after its wrong answer: an article confirmed for
    /// this one is credited to that one too (once).
    #[serde(default)]
    pub rephrase_of: Option<Earlier>,
}

/// A question asked before the last one, as learning signals name it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Earlier {
    pub normalized: String,
    pub example: String,
}

/// Longest normalised question kept in [`LastAsk`].
pub const MAX_NORMALIZED_BYTES: usize = 200;

impl LastAsk {
    pub fn new(normalized: &str, example: &str) -> Self {
        LastAsk {
            normalized: normalized[..normalized.floor_char_boundary(MAX_NORMALIZED_BYTES)].to_string(),
            example: example.chars().take(MAX_QUESTION_CHARS).collect(),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GivenFeedback {
    pub article: String,
    #[serde(default)]
    pub section: Option<usize>,
    pub up: bool,
    pub at: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    #[serde(default)]
    pub messages: u64,
    #[serde(default)]
    pub questions: u64,
    #[serde(default)]
    pub answered: u64,
    #[serde(default)]
    pub unknown: u64,
    #[serde(default)]
    pub buttons: u64,
}

/// Everything stored about one user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserState {
    #[serde(default)]
    pub v: u32,
    #[serde(default)]
    pub position: Option<Position>,
    /// What was shown before, most recent last, for "back".
    #[serde(default)]
    pub history: VecDeque<Screen>,
    /// What the last reply that showed an article or a list showed: what "more" continues and
    /// "up"/"down" rate. Absent in states written before it existed: then the position.
    #[serde(default)]
    pub screen: Option<Screen>,
    #[serde(default)]
    pub offers: Vec<Offer>,
    #[serde(default)]
    pub seen: VecDeque<String>,
    #[serde(default)]
    pub questions: VecDeque<AskedQuestion>,
    #[serde(default)]
    pub counts: Counts,
    #[serde(default)]
    pub feedback: VecDeque<GivenFeedback>,
    #[serde(default)]
    pub language: Option<String>,
    #[serde(default)]
    pub first_seen: u64,
    #[serde(default)]
    pub last_seen: u64,
    /// Last Telegram update applied to this state.
    #[serde(default)]
    pub last_update: u64,
    /// Written by version 1 before `replied` existed; read into `replied`.
    #[serde(default, skip_serializing)]
    pub last_replied: u64,
    /// The updates whose replies were sent, most recent last: an update delivered again after a
    /// restart is not answered twice. Exact ids, not "up to": Telegram may start its ids anew,
    /// and one user's updates can finish out of order.
    #[serde(default)]
    pub replied: VecDeque<u64>,
    /// The last question, for learning signals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asked: Option<LastAsk>,
}

/// A stored state that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable user state: {0}")]
pub struct DecodeError(String);

impl UserState {
    pub fn new(now: u64) -> Self {
        UserState { v: STATE_VERSION, first_seen: now, last_seen: now, ..Default::default() }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut s = self.clone();
        s.v = STATE_VERSION;
        // Serializing plain data to JSON cannot fail; an empty object is a safe fallback anyway.
        serde_json::to_vec(&s).unwrap_or_else(|_| b"{}".to_vec())
    }

    /// Reads any version written so far. Unknown fields (from a newer version) are ignored.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut s: UserState = serde_json::from_slice(bytes).map_err(|e| DecodeError(e.to_string()))?;
        s.cap();
        Ok(s)
    }

    /// Moves to a position, remembering what was shown before for "back".
    pub fn go_to(&mut self, p: Position) {
        self.mark_seen(&p.article);
        self.position = Some(p.clone());
        self.show(Screen::Article(p));
    }

    /// What is on screen now; a state written before screens were kept is at its position.
    pub fn current(&self) -> Option<Screen> {
        self.screen.clone().or_else(|| self.position.clone().map(Screen::Article))
    }

    /// Shows a screen, remembering the previous one for "back" unless it is the same place.
    pub fn show(&mut self, screen: Screen) {
        if let Some(old) = self.current() {
            if !old.same_place(&screen) {
                self.history.push_back(old);
                while self.history.len() > MAX_HISTORY {
                    self.history.pop_front();
                }
            }
        }
        self.screen = Some(screen);
    }

    /// Going back: the screen shown before, which replaces the current one without being
    /// remembered itself.
    pub fn pop_back(&mut self) -> Option<Screen> {
        let screen = self.history.pop_back()?;
        self.screen = None;
        self.position = None;
        Some(screen)
    }

    pub fn mark_seen(&mut self, id: &str) {
        if let Some(i) = self.seen.iter().position(|s| s == id) {
            self.seen.remove(i);
        }
        self.seen.push_back(id.to_string());
        while self.seen.len() > MAX_SEEN {
            self.seen.pop_front();
        }
    }

    pub fn has_seen(&self, id: &str) -> bool {
        self.seen.iter().any(|s| s == id)
    }

    pub fn log_question(&mut self, text: &str, intent: &str, at: u64) {
        let text: String = text.chars().take(MAX_QUESTION_CHARS).collect();
        self.questions.push_back(AskedQuestion { text, intent: intent.to_string(), at });
        while self.questions.len() > MAX_QUESTIONS {
            self.questions.pop_front();
        }
    }

    pub fn log_feedback(&mut self, f: GivenFeedback) {
        self.feedback.retain(|g| !(g.article == f.article && g.section == f.section));
        self.feedback.push_back(f);
        while self.feedback.len() > MAX_FEEDBACK {
            self.feedback.pop_front();
        }
    }

    pub fn has_replied(&self, update: u64) -> bool {
        self.replied.contains(&update)
    }

    pub fn mark_replied(&mut self, update: u64) {
        if !self.has_replied(update) {
            self.replied.push_back(update);
        }
        while self.replied.len() > MAX_REPLIED {
            self.replied.pop_front();
        }
    }

    /// Enforces the caps on state written by a version with larger ones.
    fn cap(&mut self) {
        if self.last_replied != 0 {
            let old = std::mem::take(&mut self.last_replied);
            self.mark_replied(old);
        }
        while self.replied.len() > MAX_REPLIED {
            self.replied.pop_front();
        }
        while self.history.len() > MAX_HISTORY {
            self.history.pop_front();
        }
        while self.seen.len() > MAX_SEEN {
            self.seen.pop_front();
        }
        while self.questions.len() > MAX_QUESTIONS {
            self.questions.pop_front();
        }
        while self.feedback.len() > MAX_FEEDBACK {
            self.feedback.pop_front();
        }
        self.offers.truncate(16);
        if let Some(a) = self.asked.as_mut() {
            *a = LastAsk {
                choices: a.choices,
                answer: a.answer.take(),
                answered_at: a.answered_at,
                rated: a.rated,
                rephrase_of: a.rephrase_of.take().map(|e| {
                    let capped = LastAsk::new(&e.normalized, &e.example);
                    Earlier { normalized: capped.normalized, example: capped.example }
                }),
                ..LastAsk::new(&a.normalized, &a.example)
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut s = UserState::new(100);
        s.go_to(Position { article: "a".into(), section: Some(2) });
        s.log_question("why?", "answer", 101);
        let back = UserState::decode(&s.encode()).unwrap();
        assert_eq!(back, s);
        assert_eq!(back.v, STATE_VERSION);
    }

    /// The question a rephrase came from survives decoding (and its caps), and a state written
    /// before it existed reads as "not a rephrase".
    #[test]
    fn the_question_rephrased_is_kept_and_capped() {
        let mut s = UserState::new(100);
        let mut ask = LastAsk::new("knee pain", "knee pain?");
        ask.rephrase_of = Some(Earlier {
            normalized: "x".repeat(MAX_NORMALIZED_BYTES + 50),
            example: "y".repeat(MAX_QUESTION_CHARS + 5),
        });
        s.asked = Some(ask);
        let back = UserState::decode(&s.encode()).unwrap();
        let earlier = back.asked.unwrap().rephrase_of.expect("kept");
        assert_eq!(
            (earlier.normalized.len(), earlier.example.chars().count()),
            (MAX_NORMALIZED_BYTES, MAX_QUESTION_CHARS)
        );
        let old = br#"{"v":1,"first_seen":1,"last_seen":2,"asked":{"normalized":"q","example":"q?","answer":"a","answered_at":2}}"#;
        assert_eq!(UserState::decode(old).unwrap().asked.unwrap().rephrase_of, None);
    }

    #[test]
    fn older_and_newer_encodings_load() {
        // Version 0 had no version field and fewer fields.
        let old = br#"{"position":{"article":"knee"},"seen":["knee"]}"#;
        let s = UserState::decode(old).unwrap();
        assert_eq!(s.position, Some(Position { article: "knee".into(), section: None }));
        assert_eq!(s.counts, Counts::default());
        // A newer version's extra fields are ignored.
        let newer = br#"{"v":9,"position":{"article":"x","section":1},"mood":"happy"}"#;
        assert_eq!(UserState::decode(newer).unwrap().position.unwrap().section, Some(1));
        assert!(UserState::decode(b"\xff\x00garbage").is_err());
        // History entries were bare positions before lists were kept.
        let h = UserState::decode(br#"{"v":1,"history":[{"article":"a","section":2}]}"#).unwrap();
        assert_eq!(h.history[0], Screen::Article(Position { article: "a".into(), section: Some(2) }));
        let lists = UserState::new(0);
        let mut lists = lists;
        lists.show(Screen::Topics { topics_page: 1 });
        lists.show(Screen::Choices { choices: vec![Offer { article: "b".into(), section: None }] });
        lists.show(Screen::Welcome { welcome: true });
        assert_eq!(UserState::decode(&lists.encode()).unwrap(), lists);
        // Version 1 kept only the last replied update.
        let v1 = UserState::decode(br#"{"v":1,"last_replied":41}"#).unwrap();
        assert!(v1.has_replied(41) && !v1.has_replied(40));
        assert!(UserState::decode(br#"{"position":5}"#).is_err());
    }

    #[test]
    fn everything_that_grows_is_capped() {
        let mut s = UserState::new(0);
        for i in 0..500 {
            s.go_to(Position { article: format!("a{i}"), section: None });
            s.log_question(&"x".repeat(1000), "unknown", i);
            s.log_feedback(GivenFeedback { article: format!("a{i}"), section: None, up: true, at: i });
        }
        assert_eq!(s.history.len(), MAX_HISTORY);
        assert_eq!(s.seen.len(), MAX_SEEN);
        assert_eq!(s.questions.len(), MAX_QUESTIONS);
        assert_eq!(s.feedback.len(), MAX_FEEDBACK);
        assert!(s.questions.iter().all(|q| q.text.chars().count() == MAX_QUESTION_CHARS));
        assert_eq!(s.position.as_ref().unwrap().article, "a499");
        assert_eq!(s.history.back(), Some(&Screen::Article(Position { article: "a498".into(), section: None })));
    }

    #[test]
    fn same_article_does_not_fill_history() {
        let mut s = UserState::new(0);
        s.go_to(Position { article: "a".into(), section: Some(0) });
        s.go_to(Position { article: "a".into(), section: Some(1) });
        assert!(s.history.is_empty());
    }
}
