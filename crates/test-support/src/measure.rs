use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// What a measured child process took.
#[derive(Debug, Clone, Copy)]
pub struct Measured {
    /// How it exited.
    pub status: ExitStatus,
    /// Wall-clock time from the caller's `started` to the exit being seen (polled every 10 ms).
    pub elapsed: Duration,
    /// Peak resident set size in bytes (the kernel's VmHWM).
    pub peak_rss_bytes: u64,
    /// CPU seconds (user and system) of the process itself, its children not counted, as last
    /// sampled before its exit.
    pub own_cpu_seconds: f64,
}

/// A process's own CPU time (utime + stime from `/proc/PID/stat`, children not counted).
fn own_cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields after it are plain.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf only reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (per_second > 0).then(|| ticks as f64 / per_second as f64)
}

fn high_water_mark_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Waits for a child, sampling its memory high-water mark. VmHWM only grows, so the last sample
/// before the exit is the peak (to within the sampling interval's last moments).
pub fn wait_measuring(mut child: Child, started: Instant) -> Measured {
    let mut peak_kb = 0;
    let mut cpu = 0.0f64;
    loop {
        if let Some(kb) = high_water_mark_kb(child.id()) {
            peak_kb = peak_kb.max(kb);
        }
        if let Some(seconds) = own_cpu_seconds(child.id()) {
            cpu = cpu.max(seconds);
        }
        if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("wait: {e}")) {
            return Measured {
                status,
                elapsed: started.elapsed(),
                peak_rss_bytes: peak_kb * 1024,
                own_cpu_seconds: cpu,
            };
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The first argument that is not a flag, as a count (cargo bench passes `--bench`); `default`
/// when there is none.
pub fn count_from_args(default: usize) -> usize {
    std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

/// A process's resident set size now (VmRSS), in bytes; 0 when it is gone.
pub fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kb| kb * 1024)
}
