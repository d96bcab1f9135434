//! Rate limits on both sides. Outgoing: Telegram's sending limits, kept on our side so replies
//! are delayed instead of refused: at most one message a second to a private chat, 20 a minute
//! to a group, 30 a second in all. Incoming: per-user flood control.
//!
//! Every call Telegram counts (`sendMessage`, `editMessageText`, `sendChatAction`, …) goes
//! through [`RateLimiter::acquire`], which returns when the call may leave. Calls are spaced
//! evenly (about 1/30 s apart overall, never in bursts), each interval is measured from the
//! moment the previous call was actually let go (so a task that wakes late cannot bunch up
//! with the next one), and a safety margin covers the time a request takes to reach Telegram:
//! what matters is when requests *arrive* there, in any 1 s window. Waiting is first come,
//! first served, per chat and overall.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::replicas::Shared;

/// The limits (Telegram's documented ones by default).
#[derive(Debug, Clone, Copy)]
pub struct SendLimits {
    /// Least time between two calls to one private chat.
    pub per_private_chat: Duration,
    /// Least time between two calls to one group (20 a minute: 3 s).
    pub per_group_chat: Duration,
    /// Calls a second in all.
    pub overall_per_sec: usize,
    /// Added to every interval: a request reaches Telegram some milliseconds after it leaves,
    /// and not always equally fast, so intervals kept exactly at our end would be shorter at
    /// Telegram's now and then.
    pub margin: Duration,
}

impl Default for SendLimits {
    fn default() -> Self {
        SendLimits {
            per_private_chat: Duration::from_secs(1),
            per_group_chat: Duration::from_secs(3),
            overall_per_sec: 30,
            margin: Duration::from_millis(100),
        }
    }
}

impl SendLimits {
    /// Least time between two calls to `chat` (groups and channels have negative ids).
    fn chat_gap(&self, chat: i64) -> Duration {
        let base = if chat < 0 { self.per_group_chat } else { self.per_private_chat };
        base + self.margin
    }

    /// Least time between any two calls: `overall_per_sec` of them take at least 1 s and the
    /// margin, so no 1 s window at Telegram holds more even when some arrive up to a margin late.
    fn spacing(&self) -> Duration {
        // Rounded up: rounded down, 30 intervals would fall a few nanoseconds short of the second.
        let total = (Duration::from_secs(1) + self.margin).as_nanos();
        Duration::from_nanos(total.div_ceil(self.overall_per_sec.max(1) as u128) as u64)
    }
}

/// Per-chat and per-user maps are swept of idle entries at most this often, so a crowd of
/// active chats does not make every call scan the map.
const SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Below this many entries a map is not worth sweeping. Above it, what the maps hold is bounded
/// by the users active within their window, not by all users ever seen.
const SWEEP_ABOVE: usize = 10_000;

/// Whether a map of `len` entries last swept at `last` should be swept at `now` (and records it).
fn sweep_due(len: usize, last: &mut Option<Instant>, now: Instant) -> bool {
    if len <= SWEEP_ABOVE || last.is_some_and(|t| now.saturating_duration_since(t) < SWEEP_EVERY) {
        return false;
    }
    *last = Some(now);
    true
}

/// After a sweep: a map keeps the room it once needed (a crowd of 100,000 users leaves room
/// for 100,000 after they are gone), so give most of it back once it is mostly empty.
fn give_back<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>) {
    if map.capacity() > 4 * map.len().max(SWEEP_ABOVE / 4) {
        map.shrink_to(2 * map.len());
    }
}

/// When the last call of a lane was let go; waiting for the lock is first come, first served
/// (tokio's mutex is fair).
type Lane = Arc<tokio::sync::Mutex<Option<Instant>>>;

#[derive(Debug, Default)]
struct Chats {
    lanes: HashMap<i64, Lane>,
    last_sweep: Option<Instant>,
}

#[derive(Debug)]
pub struct RateLimiter {
    limits: Option<SendLimits>,
    /// One lane per chat called recently or waiting now.
    chats: Mutex<Chats>,
    /// All counted calls: a call waits here only once its chat's interval has passed, so a
    /// chat that must wait does not hold up the others.
    overall: tokio::sync::Mutex<Option<Instant>>,
    /// With replicas: the clocks on the database server, which every replica's calls go by
    /// (the lanes then only keep this replica's calls to a chat in order).
    shared: std::sync::OnceLock<Arc<Shared>>,
}

impl RateLimiter {
    /// `None`: no limits (local benchmarks against a fake API).
    pub fn new(limits: Option<SendLimits>) -> Self {
        RateLimiter {
            limits,
            chats: Mutex::new(Chats::default()),
            overall: tokio::sync::Mutex::new(None),
            shared: std::sync::OnceLock::new(),
        }
    }

    /// Keeps the limits with every replica on the server from now on.
    pub fn share(&self, shared: Arc<Shared>) {
        let _ = self.shared.set(shared);
    }

    /// The lane of `chat`, created if needed; idle lanes are swept now and then.
    fn lane(&self, chat: i64, now: Instant, l: &SendLimits) -> Lane {
        let mut chats = self.chats.lock().unwrap_or_else(|p| p.into_inner());
        let chats = &mut *chats;
        if sweep_due(chats.lanes.len(), &mut chats.last_sweep, now) {
            chats.lanes.retain(|&c, lane| {
                // Kept while someone holds or waits for it, or its interval has not passed.
                Arc::strong_count(lane) > 1
                    || lane.try_lock().map_or(true, |last| last.is_some_and(|t| now < t + l.chat_gap(c)))
            });
            give_back(&mut chats.lanes);
        }
        chats.lanes.entry(chat).or_default().clone()
    }

    /// Waits until a counted call to `chat` may be made, and counts it as made now. Every
    /// Bot API call Telegram counts goes through here, right before it is sent. False: it must
    /// not be made after all, since this replica lost the claim of the update being answered
    /// while it waited (another replica answers it).
    pub async fn acquire(&self, chat: i64) -> bool {
        let Some(l) = self.limits else { return self.shared.get().is_none_or(|s| s.holds_current()) };
        let lane = self.lane(chat, Instant::now(), &l);
        let mut last = lane.lock().await;
        if let Some(shared) = self.shared.get() {
            if shared_slot(&shared.clock, chat, &l).await {
                *last = Some(Instant::now());
                return shared.holds_current();
            }
        }
        if let Some(t) = *last {
            tokio::time::sleep_until((t + l.chat_gap(chat)).into()).await;
        }
        let released = self.overall_slot(&l).await;
        *last = Some(released);
        self.shared.get().is_none_or(|s| s.holds_current())
    }

    /// The next overall slot: waits until `spacing` after the previous call was let go.
    async fn overall_slot(&self, l: &SendLimits) -> Instant {
        let mut last = self.overall.lock().await;
        if let Some(t) = *last {
            tokio::time::sleep_until((t + l.spacing()).into()).await;
        }
        let now = Instant::now();
        *last = Some(now);
        now
    }

    /// For a call that may as well be skipped (the "typing…" indicator): takes an overall slot
    /// only if one is free right now and nobody is waiting, so it never delays a message. The
    /// chat's own interval is not used: Telegram limits messages per chat, not chat actions,
    /// and a typing indicator taking the chat's slot would hold its answer back a second.
    pub fn try_acquire(&self) -> bool {
        let Some(l) = self.limits else { return true };
        if let Some(shared) = self.shared.get() {
            return crate::store::blocking(|| shared.clock.try_now(l.spacing())).unwrap_or(false);
        }
        let Ok(mut last) = self.overall.try_lock() else { return false };
        let now = Instant::now();
        if last.is_some_and(|t| now < t + l.spacing()) {
            return false;
        }
        *last = Some(now);
        true
    }
}

/// Waits for `chat`'s interval and then for the next overall slot, both by the clocks every
/// replica shares; while the server cannot be reached the call waits too (with backoff: nothing
/// else can be done without it). False when the server refuses the clocks: the caller keeps
/// this replica's own limits instead.
async fn shared_slot(clock: &articlebot_postgres::SendClock, chat: i64, l: &SendLimits) -> bool {
    let mut wait = super::StoreBackoff::default();
    loop {
        match crate::store::blocking(|| clock.chat_wait(chat)) {
            Ok(d) => {
                tokio::time::sleep(d).await;
                break;
            }
            Err(e) if e.is_transient() => wait.failed("sending", &e).await,
            Err(e) => {
                tracing::warn!(error = %articlebot_engine::ErrorChain(&e), "the shared send clock failed; keeping this replica's own limits");
                return false;
            }
        }
    }
    loop {
        match crate::store::blocking(|| clock.reserve(chat, l.spacing(), l.chat_gap(chat))) {
            Ok(d) => {
                wait.recovered("replies");
                tokio::time::sleep(d).await;
                return true;
            }
            Err(e) if e.is_transient() => wait.failed("sending", &e).await,
            Err(e) => {
                tracing::warn!(error = %articlebot_engine::ErrorChain(&e), "the shared send clock failed; keeping this replica's own limits");
                return false;
            }
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
            give_back(&mut st.users);
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

    /// Limits that make the tests quick: 100 ms per chat, 500 ms per group, 50 calls/s.
    fn quick() -> SendLimits {
        SendLimits {
            per_private_chat: Duration::from_millis(100),
            per_group_chat: Duration::from_millis(500),
            overall_per_sec: 50,
            margin: Duration::from_millis(10),
        }
    }

    /// Runs `calls` acquires at once (chat ids from `chat_of`) and returns when each was let go,
    /// in the order they asked, with its chat.
    async fn release_times(r: Arc<RateLimiter>, calls: usize, chat_of: fn(usize) -> i64) -> Vec<(i64, Instant)> {
        let mut tasks = Vec::new();
        for i in 0..calls {
            let r = r.clone();
            let chat = chat_of(i);
            tasks.push(tokio::spawn(async move {
                r.acquire(chat).await;
                (chat, Instant::now())
            }));
            // On the test's single thread each task runs until it waits before the next one is
            // made: the order they asked in is the order they were made in.
            tokio::task::yield_now().await;
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(tokio::time::timeout(Duration::from_secs(30), t).await.expect("bounded").unwrap());
        }
        out
    }

    #[test]
    fn the_default_spacing_keeps_30_a_second_with_the_margin() {
        let l = SendLimits::default();
        assert!(l.spacing() * 30 >= Duration::from_secs(1) + l.margin);
        assert!(l.spacing() < Duration::from_millis(40), "about 1/30 s, not in bursts: {:?}", l.spacing());
        assert_eq!(l.chat_gap(5), Duration::from_millis(1100));
        assert_eq!(l.chat_gap(-5), Duration::from_millis(3100), "20 a minute in a group, with the margin");
    }

    #[tokio::test]
    async fn calls_are_spread_evenly_never_in_bursts() {
        let l = quick();
        let r = Arc::new(RateLimiter::new(Some(l)));
        let t0 = Instant::now();
        let mut times: Vec<Instant> = release_times(r, 60, |i| i as i64 + 1).await.into_iter().map(|x| x.1).collect();
        times.sort();
        // The times are taken just after each call is let go: allow for that.
        let slack = Duration::from_millis(1);
        for pair in times.windows(2) {
            assert!(pair[1] - pair[0] + slack >= l.spacing(), "{:?} apart", pair[1] - pair[0]);
        }
        // So no second holds more than `overall_per_sec`, even with a margin's delay on the way.
        for w in times.windows(l.overall_per_sec + 1) {
            assert!(w[l.overall_per_sec] - w[0] + slack >= Duration::from_secs(1) + l.margin);
        }
        assert!(times[0] - t0 < Duration::from_millis(50), "the first call waits for nothing");
    }

    #[tokio::test]
    async fn one_chat_waits_its_interval_and_others_are_not_held_up() {
        let l = quick();
        let r = Arc::new(RateLimiter::new(Some(l)));
        let t0 = Instant::now();
        // Chat 1 asks 4 times, chats 2..=9 once each, interleaved.
        let out = release_times(r, 12, |i| if i % 3 == 0 { 1 } else { 2 + i as i64 }).await;
        let chat1: Vec<Instant> = out.iter().filter(|(c, _)| *c == 1).map(|x| x.1).collect();
        assert_eq!(chat1.len(), 4);
        let slack = Duration::from_millis(1);
        for pair in chat1.windows(2) {
            assert!(pair[1] - pair[0] + slack >= l.chat_gap(1), "{:?}", pair[1] - pair[0]);
        }
        // The other 8 go at the overall pace while chat 1 waits (~180 ms), not after it (330 ms).
        let others_done = out.iter().filter(|(c, _)| *c != 1).map(|x| x.1).max().unwrap();
        assert!(others_done < chat1[3], "the other chats went while chat 1 waited: {:?}", others_done - t0);
    }

    #[tokio::test]
    async fn groups_wait_their_longer_interval_in_the_order_asked() {
        let l = quick();
        let r = Arc::new(RateLimiter::new(Some(l)));
        let out = release_times(r, 3, |_| -100).await;
        let slack = Duration::from_millis(1);
        for pair in out.windows(2) {
            assert!(pair[1].1 + slack >= pair[0].1 + l.chat_gap(-100), "first come, first served, 510 ms apart");
        }
    }

    #[tokio::test]
    async fn optional_calls_never_delay_messages() {
        let l = quick();
        let r = RateLimiter::new(Some(l));
        assert!(r.try_acquire(), "a free slot is taken");
        assert!(!r.try_acquire(), "the next one is a spacing away: skipped, not waited for");
        tokio::time::sleep(l.spacing()).await;
        assert!(r.try_acquire());
        let unlimited = RateLimiter::new(None);
        assert!((0..100).all(|_| unlimited.try_acquire()));
    }

    #[tokio::test]
    async fn no_limits_means_no_waiting() {
        let r = RateLimiter::new(None);
        let t0 = Instant::now();
        for _ in 0..100 {
            r.acquire(1).await;
        }
        assert!(t0.elapsed() < Duration::from_millis(50));
        assert!(r.chats.lock().unwrap().lanes.is_empty(), "nothing is kept without limits");
    }

    #[tokio::test]
    async fn idle_chats_are_forgotten() {
        let l = quick();
        let r = RateLimiter::new(Some(l));
        for c in 0..(SWEEP_ABOVE as i64 + 5) {
            r.acquire_lane_for_test(c).await;
        }
        assert_eq!(r.chats.lock().unwrap().lanes.len(), SWEEP_ABOVE + 5);
        // Once their intervals have passed, the next call sweeps them.
        let later = Instant::now() + SWEEP_EVERY + l.chat_gap(1);
        r.lane(-1, later, &l);
        assert_eq!(r.chats.lock().unwrap().lanes.len(), 1, "only the new one is left");
    }

    impl RateLimiter {
        /// Marks `chat` as just called without waiting for the overall slot (so that a test can
        /// fill the map quickly).
        async fn acquire_lane_for_test(&self, chat: i64) {
            let l = self.limits.unwrap();
            let lane = self.lane(chat, Instant::now(), &l);
            *lane.lock().await = Some(Instant::now());
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
    fn a_crowd_gone_gives_its_memory_back() {
        let f = FloodControl::new(FloodLimits { max_messages: 3, window: Duration::from_secs(10) });
        let t0 = Instant::now();
        for u in 0..100_000 {
            f.check(u, t0);
        }
        assert!(f.state.lock().unwrap().users.capacity() >= 100_000);
        f.check(-1, t0 + Duration::from_secs(11));
        let cap = f.state.lock().unwrap().users.capacity();
        assert!(cap <= SWEEP_ABOVE * 2, "room for {cap} users kept after the crowd left");
    }
}
