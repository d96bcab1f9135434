//! Measurements the tools share, so that their figures mean the same: process memory from
//! `/proc`, and latency percentiles by one definition (nearest rank).

use std::time::Duration;

/// Resident memory of a process (`VmRSS`) and its peak (`VmHWM`), in KiB; zero where `/proc`
/// has no such file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Memory {
    pub rss_kib: u64,
    pub hwm_kib: u64,
}

impl Memory {
    /// This process.
    pub fn now() -> Self {
        Self::from_status(&std::fs::read_to_string("/proc/self/status").unwrap_or_default())
    }

    /// Another process.
    pub fn of(pid: u32) -> Self {
        Self::from_status(&std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default())
    }

    fn from_status(status: &str) -> Self {
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Memory { rss_kib: field("VmRSS:"), hwm_kib: field("VmHWM:") }
    }

    pub fn rss_mib(&self) -> f64 {
        self.rss_kib as f64 / 1024.0
    }

    /// Resets this process's `VmHWM` to its current RSS (Linux), so a later peak is that of
    /// what runs after.
    pub fn reset_peak() {
        let _ = std::fs::write("/proc/self/clear_refs", "5");
    }
}

/// The `p`-quantile (0..=1) of sorted values by nearest rank: the smallest value with at least
/// a share `p` of all values at or below it. `Default` for no values.
pub fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Latency figures of a set of timings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Latency {
    pub count: usize,
    pub p50: Duration,
    pub p90: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
    pub mean: Duration,
}

impl Latency {
    pub fn of(mut times: Vec<Duration>) -> Self {
        times.sort_unstable();
        let total: Duration = times.iter().sum();
        Latency {
            count: times.len(),
            p50: percentile(&times, 0.50),
            p90: percentile(&times, 0.90),
            p95: percentile(&times, 0.95),
            p99: percentile(&times, 0.99),
            max: times.last().copied().unwrap_or_default(),
            mean: total.checked_div(times.len().max(1) as u32).unwrap_or_default(),
        }
    }
}

/// Milliseconds with microsecond precision, for reports.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<u32> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(percentile(&v, 0.0), 1);
        assert_eq!(percentile(&[7u32], 0.99), 7);
        assert_eq!(percentile::<u32>(&[], 0.5), 0);
        let ms = |n| Duration::from_millis(n);
        let l = Latency::of(vec![ms(3), ms(1), ms(2), ms(10)]);
        assert_eq!((l.count, l.p50, l.p99, l.max), (4, ms(2), ms(10), ms(10)));
        assert_eq!(l.mean, ms(4));
    }

    #[test]
    fn memory_is_read_from_proc_status() {
        let m = Memory::from_status("Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n");
        assert_eq!(m, Memory { rss_kib: 1024, hwm_kib: 2048 });
        assert_eq!(m.rss_mib(), 1.0);
        assert_eq!(Memory::from_status(""), Memory::default());
    }
}
