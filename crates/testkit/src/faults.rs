//! Fault injection and Telegram's flood limits for the fake Bot API.
//!
//! - [`FaultRule`]: "the next K calls of method M (to chat C) fail like this" — a 429, a 5xx, any
//!   Bot API error, a delay, or a dropped connection. Rules are checked in the order they were
//!   added; a [`Fault::Delay`] adds to the response time and lets later rules and the normal
//!   handling continue, any other fault answers the call.
//! - [`RateLimits`]: the limits the real API enforces on messages (per chat, per group per
//!   minute, overall per second), off by default; over the limit the call gets
//!   `429 Too Many Requests: retry after N`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// What an injected fault does to a call.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// `429 {"ok":false,"error_code":429,"description":"Too Many Requests: retry after N","parameters":{"retry_after":N}}`.
    TooManyRequests { retry_after: u32 },
    /// An HTTP 5xx with a Bot-API-shaped body (`500 Internal Server Error`, `502 Bad Gateway`, ...).
    /// Note: teloxide sleeps 10 s after any 5xx response before returning the error.
    ServerError { status: u16 },
    /// Any Bot API error, answered with HTTP status `code`, e.g. `403` /
    /// `"Forbidden: bot was blocked by the user"`.
    ApiError { code: u16, description: String },
    /// Answer normally, but only after this long.
    Delay(Duration),
    /// Close the TCP connection without answering (the client sees a network error).
    DropConnection,
}

/// One fault-injection rule: which calls it matches, what it does, how many times.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRule {
    /// Bot API method (case-insensitive), `None` = every method.
    pub method: Option<String>,
    /// Only calls whose `chat_id` parameter is this chat.
    pub chat_id: Option<i64>,
    pub fault: Fault,
    /// Calls still to affect; `None` = forever.
    pub remaining: Option<u32>,
}

impl FaultRule {
    /// A rule for the next call of `method` (change the count with [`times`](Self::times) or
    /// [`forever`](Self::forever)).
    pub fn on(method: &str, fault: Fault) -> Self {
        FaultRule { method: Some(method.to_string()), chat_id: None, fault, remaining: Some(1) }
    }

    /// A rule for the next call of any method.
    pub fn any_method(fault: Fault) -> Self {
        FaultRule { method: None, chat_id: None, fault, remaining: Some(1) }
    }

    /// Affects the next `n` matching calls.
    pub fn times(mut self, n: u32) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Affects every matching call until [`FakeTelegram::clear_faults`](super::FakeTelegram::clear_faults).
    pub fn forever(mut self) -> Self {
        self.remaining = None;
        self
    }

    /// Only calls to this chat.
    pub fn for_chat(mut self, chat_id: i64) -> Self {
        self.chat_id = Some(chat_id);
        self
    }

    pub(crate) fn matches(&self, method: &str, chat_id: Option<i64>) -> bool {
        self.remaining != Some(0)
            && self.method.as_deref().is_none_or(|m| m.eq_ignore_ascii_case(method))
            && self.chat_id.is_none_or(|c| chat_id == Some(c))
    }
}

/// Telegram's flood limits on sent messages (`send*` except `sendChatAction`, `forward*`,
/// `copy*`). The defaults are the documented ones (also teloxide `Throttle`'s defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// Messages per second to one chat.
    pub per_chat_per_sec: u32,
    /// Messages per minute to one group or channel (negative chat id).
    pub per_group_per_min: u32,
    /// Messages per second overall.
    pub overall_per_sec: u32,
    /// Windows are this much shorter than 1 s / 1 min, so that a client that spaces its
    /// messages exactly (measuring before the request crosses the network, as teloxide's
    /// `Throttle` does)
    /// is not punished for network jitter.
    pub tolerance: Duration,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_chat_per_sec: 1,
            per_group_per_min: 20,
            overall_per_sec: 30,
            tolerance: Duration::from_millis(50),
        }
    }
}

/// Counters of what the fake refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// 429s issued by the rate limiter.
    pub rate_limited: u64,
    /// 429s issued by fault rules.
    pub injected_429: u64,
    /// Every call answered by a fault rule (any kind but delays).
    pub injected_faults: u64,
    /// Calls refused by validation (4xx other than 429), e.g. bad HTML.
    pub bad_requests: u64,
}

/// True for the methods Telegram's flood limits count.
pub(crate) fn is_counted_send(method: &str) -> bool {
    (method.starts_with("send") && method != "sendChatAction")
        || method.starts_with("forward")
        || method.starts_with("copy")
}

#[derive(Default)]
pub(crate) struct RateLimiter {
    pub limits: Option<RateLimits>,
    overall: VecDeque<Instant>,
    per_chat: HashMap<i64, VecDeque<Instant>>,
}

impl RateLimiter {
    /// `Err(retry_after seconds)` when this message would exceed a limit; otherwise counts it.
    pub fn check(&mut self, chat_id: i64, now: Instant) -> Result<(), u32> {
        let Some(l) = self.limits else { return Ok(()) };
        let sec = Duration::from_secs(1).saturating_sub(l.tolerance);
        let min = Duration::from_secs(60).saturating_sub(l.tolerance);
        // Overall, last second.
        while self.overall.front().is_some_and(|t| now.duration_since(*t) >= sec) {
            self.overall.pop_front();
        }
        if self.overall.len() as u32 >= l.overall_per_sec {
            return Err(retry_after(self.overall.front().copied(), sec, now));
        }
        let history = self.per_chat.entry(chat_id).or_default();
        while history.front().is_some_and(|t| now.duration_since(*t) >= min) {
            history.pop_front();
        }
        let last_sec: Vec<Instant> = history.iter().copied().filter(|t| now.duration_since(*t) < sec).collect();
        if last_sec.len() as u32 >= l.per_chat_per_sec {
            return Err(retry_after(last_sec.first().copied(), sec, now));
        }
        if chat_id < 0 && history.len() as u32 >= l.per_group_per_min {
            return Err(retry_after(history.front().copied(), min, now));
        }
        history.push_back(now);
        self.overall.push_back(now);
        Ok(())
    }

    pub fn reset(&mut self) {
        self.overall.clear();
        self.per_chat.clear();
    }
}

/// Whole seconds until `oldest` leaves a window of `window`, at least 1 (as Telegram reports).
fn retry_after(oldest: Option<Instant>, window: Duration, now: Instant) -> u32 {
    let left = oldest.map_or(Duration::ZERO, |t| (t + window).saturating_duration_since(now));
    (left.as_millis().div_ceil(1000) as u32).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_chat_and_overall() {
        let mut r = RateLimiter { limits: Some(RateLimits::default()), ..Default::default() };
        let t0 = Instant::now();
        assert!(r.check(1, t0).is_ok());
        assert_eq!(r.check(1, t0 + Duration::from_millis(100)), Err(1));
        assert!(r.check(1, t0 + Duration::from_millis(1000)).is_ok());
        for c in 2..31 {
            assert!(r.check(c, t0 + Duration::from_millis(1000)).is_ok(), "{c}");
        }
        assert_eq!(r.check(99, t0 + Duration::from_millis(1001)), Err(1));
        let mut g = RateLimiter { limits: Some(RateLimits::default()), ..Default::default() };
        for k in 0..20 {
            assert!(g.check(-5, t0 + Duration::from_secs(k)).is_ok());
        }
        assert!(g.check(-5, t0 + Duration::from_secs(20)).unwrap_err() > 30);
        let mut off = RateLimiter::default();
        assert!(off.check(1, t0).is_ok() && off.check(1, t0).is_ok());
    }

    #[test]
    fn rules_match() {
        let r = FaultRule::on("SendMessage", Fault::DropConnection).for_chat(5);
        assert!(r.matches("sendMessage", Some(5)));
        assert!(!r.matches("sendMessage", Some(6)));
        assert!(!r.matches("getMe", None));
        assert!(FaultRule::any_method(Fault::Delay(Duration::ZERO)).matches("getMe", None));
        assert!(!FaultRule::any_method(Fault::DropConnection).times(0).matches("getMe", None));
    }
}
