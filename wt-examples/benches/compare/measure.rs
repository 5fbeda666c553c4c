//! Clocks and gauges: process CPU time (client and server together, every thread), resident
//! memory, and latency percentiles.

use std::time::{Duration, Instant};

/// CPU time (user + system) of the whole process so far, from `getrusage(RUSAGE_SELF)`.
pub fn process_cpu() -> Duration {
    // SAFETY: `rusage` is plain data for which all-zero bytes are valid, and `getrusage` only
    // writes into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_SELF is always a valid `who`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    assert_eq!(rc, 0, "getrusage failed");
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Wall-clock and CPU time since it started.
pub struct Stopwatch {
    wall: Instant,
    cpu: Duration,
}

impl Stopwatch {
    pub fn start() -> Self {
        Stopwatch {
            wall: Instant::now(),
            cpu: process_cpu(),
        }
    }

    /// (wall seconds, CPU seconds) since the start.
    pub fn stop(&self) -> (f64, f64) {
        let wall = self.wall.elapsed().as_secs_f64();
        let cpu = (process_cpu().saturating_sub(self.cpu)).as_secs_f64();
        (wall, cpu)
    }
}

/// Resident memory of the process in bytes: (now, peak since the last [`reset_peak_rss`]).
pub fn rss() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kib| kib * 1024)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Resets the peak-RSS mark to the current RSS (Linux: `5` into `/proc/self/clear_refs`), so a
/// later peak reflects only what happened since; false where the kernel does not allow it.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The `p`-th percentile (0–100, nearest rank) of `samples`, in microseconds; sorts them.
pub fn percentile_us(samples: &mut [Duration], p: f64) -> f64 {
    assert!(!samples.is_empty(), "no samples");
    samples.sort_unstable();
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1].as_secs_f64() * 1e6
}
