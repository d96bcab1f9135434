//! When to try the server again after it could not be reached: right away the first time, then
//! after 100 ms, doubling up to 5 s; reset by a connection that works.

use std::sync::Mutex;
use std::time::{Duration, Instant};

const FIRST: Duration = Duration::from_millis(100);
const MOST: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct Backoff {
    state: Mutex<Option<(Instant, Duration)>>,
}

impl Backoff {
    /// Whether an attempt may be made now (false: the last one failed too recently).
    pub fn may_try(&self) -> bool {
        match *self.state.lock().unwrap_or_else(|p| p.into_inner()) {
            None => true,
            Some((failed, wait)) => failed.elapsed() >= wait,
        }
    }

    /// An attempt failed; the next waits longer. Whether this is the first failure in a row.
    pub fn failed(&self) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let first = state.is_none();
        let wait = state.map_or(FIRST, |(_, w)| (w * 2).min(MOST));
        *state = Some((Instant::now(), wait));
        first
    }

    /// An attempt worked; whether the server had been unreachable.
    pub fn worked(&self) -> bool {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).take().is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_and_reset() {
        let b = Backoff::default();
        assert!(b.may_try());
        assert!(b.failed());
        assert!(!b.may_try(), "not again at once");
        assert!(!b.failed());
        std::thread::sleep(Duration::from_millis(210));
        assert!(b.may_try(), "after the second wait (200 ms)");
        assert!(b.worked());
        assert!(!b.worked());
        assert!(b.may_try());
    }
}
