//! Telegram's sending limits, kept on our side so replies are delayed instead of refused: at
//! most one message a second to a private chat, 20 a minute to a group, 30 a second in all.
//! A reply waits only as long as it must (no fixed polling tick), in the order it asked.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The limits (Telegram's documented ones by default).
#[derive(Debug, Clone, Copy)]
pub struct SendLimits {
    pub per_private_chat: Duration,
    pub per_group_chat: Duration,
    pub overall_per_sec: usize,
}

impl Default for SendLimits {
    fn default() -> Self {
        SendLimits {
            per_private_chat: Duration::from_secs(1),
            per_group_chat: Duration::from_secs(3),
            overall_per_sec: 30,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    /// Per chat: when it may get its next message.
    next: HashMap<i64, Instant>,
    /// When the last `overall_per_sec` messages were released.
    recent: VecDeque<Instant>,
}

#[derive(Debug)]
pub struct RateLimiter {
    limits: Option<SendLimits>,
    state: Mutex<State>,
}

impl RateLimiter {
    /// `None`: no limits (local benchmarks against a fake API).
    pub fn new(limits: Option<SendLimits>) -> Self {
        RateLimiter { limits, state: Mutex::new(State::default()) }
    }

    /// When a message to `chat` may go, reserving that slot; `now` if at once.
    fn reserve(&self, chat: i64, now: Instant) -> Instant {
        let Some(l) = self.limits else { return now };
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if st.next.len() > 10_000 {
            st.next.retain(|_, t| *t > now);
        }
        let mut at = st.next.get(&chat).copied().unwrap_or(now).max(now);
        // The overall window: the slot must be at least a second after the message
        // `overall_per_sec` places back.
        while st.recent.front().is_some_and(|t| *t + Duration::from_secs(1) <= now) {
            st.recent.pop_front();
        }
        if st.recent.len() >= l.overall_per_sec {
            let idx = st.recent.len() - l.overall_per_sec;
            at = at.max(st.recent[idx] + Duration::from_secs(1));
        }
        let gap = if chat < 0 { l.per_group_chat } else { l.per_private_chat };
        st.next.insert(chat, at + gap);
        st.recent.push_back(at);
        // Slots are handed out in time order per chat but not globally: keep the window sorted.
        st.recent.make_contiguous().sort_unstable();
        at
    }

    /// Waits until a message to `chat` may be sent.
    pub async fn acquire(&self, chat: i64) {
        let at = self.reserve(chat, Instant::now());
        if at > Instant::now() {
            tokio::time::sleep_until(at.into()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_a_second_per_chat() {
        let r = RateLimiter::new(Some(SendLimits::default()));
        let t0 = Instant::now();
        assert_eq!(r.reserve(1, t0), t0);
        assert_eq!(r.reserve(1, t0), t0 + Duration::from_secs(1));
        assert_eq!(r.reserve(2, t0), t0, "other chats are not delayed");
        assert_eq!(r.reserve(-5, t0), t0);
        assert_eq!(r.reserve(-5, t0), t0 + Duration::from_secs(3), "groups get 20 a minute");
    }

    #[test]
    fn thirty_a_second_in_all() {
        let r = RateLimiter::new(Some(SendLimits::default()));
        let t0 = Instant::now();
        let slots: Vec<Instant> = (0..61).map(|c| r.reserve(c, t0)).collect();
        assert!(slots[..30].iter().all(|s| *s == t0));
        assert!(slots[30..60].iter().all(|s| *s == t0 + Duration::from_secs(1)));
        assert_eq!(slots[60], t0 + Duration::from_secs(2));
        // In any one-second window there are at most 30.
        for w in slots.windows(31) {
            assert!(w[30] >= w[0] + Duration::from_secs(1));
        }
    }

    #[test]
    fn no_limits_means_no_waiting() {
        let r = RateLimiter::new(None);
        let t0 = Instant::now();
        assert!((0..100).all(|_| r.reserve(1, t0) == t0));
    }
}
