//! Rate limits on both sides. Outgoing: Telegram's sending limits, kept on our side so replies
//! are delayed instead of refused: at most one message a second to a private chat, 20 a minute
//! to a group, 30 a second in all; a reply waits only as long as it must (no fixed polling
//! tick), in the order it asked. Incoming: per-user flood control.

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

/// Per-chat and per-user maps are swept of idle entries at most this often, so a crowd of
/// active chats does not make every call scan the map.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Below this many entries a map is not worth sweeping.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug)]
struct State {
    /// Per chat: when it may get its next message.
    next: HashMap<i64, Instant>,
    /// Release times of recent and reserved messages, in time order.
    recent: VecDeque<Instant>,
    last_sweep: Option<Instant>,
}

/// Whether a map of `len` entries last swept at `last` should be swept at `now` (and records it).
fn sweep_due(len: usize, last: &mut Option<Instant>, now: Instant) -> bool {
    if len <= SWEEP_ABOVE || last.is_some_and(|t| now.saturating_duration_since(t) < SWEEP_EVERY) {
        return false;
    }
    *last = Some(now);
    true
}

#[derive(Debug)]
pub struct RateLimiter {
    limits: Option<SendLimits>,
    state: Mutex<State>,
}

impl RateLimiter {
    /// `None`: no limits (local benchmarks against a fake API).
    pub fn new(limits: Option<SendLimits>) -> Self {
        let state = State { next: HashMap::new(), recent: VecDeque::new(), last_sweep: None };
        RateLimiter { limits, state: Mutex::new(state) }
    }

    /// When a message to `chat` may go, reserving that slot; `now` if at once.
    fn reserve(&self, chat: i64, now: Instant) -> Instant {
        let Some(l) = self.limits else { return now };
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let st = &mut *st;
        if sweep_due(st.next.len(), &mut st.last_sweep, now) {
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
        // Slots are handed out in time order per chat but not globally: keep the window sorted.
        let pos = st.recent.partition_point(|t| *t <= at);
        st.recent.insert(pos, at);
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

/// Per-user flood control: more than `max_messages` in `window` gets one notice, then silence
/// until the window passes. Other users are not affected.
#[derive(Debug, Clone, Copy)]
pub struct FloodLimits {
    pub max_messages: u32,
    pub window: Duration,
}

impl Default for FloodLimits {
    fn default() -> Self {
        FloodLimits { max_messages: 20, window: Duration::from_secs(10) }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloodVerdict {
    Allow,
    /// Over the limit for the first time in this window: tell the user once.
    Notice,
    Drop,
}

#[derive(Debug)]
struct FloodState {
    /// Per user: when the current window started and how many updates it has seen.
    users: HashMap<i64, (Instant, u32)>,
    last_sweep: Option<Instant>,
}

/// Counts messages and button taps per user in fixed windows.
#[derive(Debug)]
pub struct FloodControl {
    limits: FloodLimits,
    state: Mutex<FloodState>,
}

impl FloodControl {
    pub fn new(limits: FloodLimits) -> Self {
        FloodControl { limits, state: Mutex::new(FloodState { users: HashMap::new(), last_sweep: None }) }
    }

    pub fn check(&self, user: i64, now: Instant) -> FloodVerdict {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let st = &mut *st;
        let window = self.limits.window;
        if sweep_due(st.users.len(), &mut st.last_sweep, now) {
            st.users.retain(|_, (start, _)| now.saturating_duration_since(*start) < window);
        }
        let entry = st.users.entry(user).or_insert((now, 0));
        if now.saturating_duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        match entry.1.cmp(&self.limits.max_messages.saturating_add(1)) {
            std::cmp::Ordering::Less => FloodVerdict::Allow,
            std::cmp::Ordering::Equal => FloodVerdict::Notice,
            std::cmp::Ordering::Greater => FloodVerdict::Drop,
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
    fn flood_control_notices_once_then_drops_then_recovers() {
        let f = FloodControl::new(FloodLimits { max_messages: 3, window: Duration::from_secs(10) });
        let t0 = Instant::now();
        let verdicts: Vec<FloodVerdict> = (0..6).map(|_| f.check(1, t0)).collect();
        use FloodVerdict::*;
        assert_eq!(verdicts, vec![Allow, Allow, Allow, Notice, Drop, Drop]);
        assert_eq!(f.check(2, t0), Allow, "other users are not affected");
        assert_eq!(f.check(1, t0 + Duration::from_secs(11)), Allow);
        let unlimited = FloodControl::new(FloodLimits { max_messages: u32::MAX, window: Duration::from_secs(10) });
        assert!((0..100).all(|_| unlimited.check(1, t0) == Allow), "no overflow at the largest limit");
    }

    #[test]
    fn idle_users_are_forgotten_without_a_scan_per_call() {
        let f = FloodControl::new(FloodLimits { max_messages: 3, window: Duration::from_secs(10) });
        let t0 = Instant::now();
        for u in 0..(SWEEP_ABOVE as i64 + 5) {
            f.check(u, t0);
        }
        let later = t0 + Duration::from_secs(11);
        f.check(-1, later);
        assert_eq!(f.state.lock().unwrap().users.len(), 1, "everyone idle for a window is swept");
        // A busy crowd is swept at most once a second.
        for u in 0..(SWEEP_ABOVE as i64 + 5) {
            f.check(u, later);
        }
        let swept_at = f.state.lock().unwrap().last_sweep;
        f.check(7, later + Duration::from_millis(10));
        assert_eq!(f.state.lock().unwrap().last_sweep, swept_at);
    }

    #[test]
    fn slots_stay_in_time_order() {
        let r = RateLimiter::new(Some(SendLimits::default()));
        let t0 = Instant::now();
        for c in 0..100 {
            r.reserve(c % 7, t0);
        }
        let st = r.state.lock().unwrap();
        assert!(st.recent.iter().zip(st.recent.iter().skip(1)).all(|(a, b)| a <= b));
    }

    #[test]
    fn no_limits_means_no_waiting() {
        let r = RateLimiter::new(None);
        let t0 = Instant::now();
        assert!((0..100).all(|_| r.reserve(1, t0) == t0));
    }
}
