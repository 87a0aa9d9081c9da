//! CPU seconds spent by groups of processes during a run: a process, each of its children by
//! name, and every Postgres server process, sampled from `/proc` until the run ends.
//!
//! A process is charged what it spent between the start and its last sample, so one that exits
//! loses at most the sampling interval; one that existed before the start (a Postgres
//! background process) is charged only what it spent after it.

use std::collections::{BTreeMap, HashMap};
use std::process::Child;
use std::time::{Duration, Instant};

/// How often `/proc` is read.
const INTERVAL: Duration = Duration::from_millis(20);

/// One process as `/proc/PID/stat` gives it.
struct Sample {
    name: String,
    parent: u32,
    cpu_seconds: f64,
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a constant of the system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

fn sample(pid: u32, ticks: f64) -> Option<Sample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, tail) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = tail.split_whitespace().collect();
    let parent = fields.get(1)?.parse().ok()?;
    let used: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Sample {
        name,
        parent,
        cpu_seconds: used as f64 / ticks,
    })
}

fn every_process(ticks: f64) -> HashMap<u32, Sample> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, sample(pid, ticks)?)))
        .collect()
}

/// What a run cost, in CPU seconds, by group.
#[derive(Debug, Clone, Default)]
pub struct CpuByGroup {
    /// Wall-clock seconds of the run.
    pub elapsed: f64,
    /// Whether the measured process exited with success.
    pub success: bool,
    /// `"self"` for the measured process, each child's command name, and `"postgres"` for every
    /// Postgres server process.
    pub seconds: BTreeMap<String, f64>,
}

/// Waits for `child`, charging the CPU of it, its children and Postgres' processes.
pub fn wait_charging_cpu(mut child: Child, started: Instant) -> CpuByGroup {
    let ticks = ticks_per_second();
    let root = child.id();
    let baseline: HashMap<u32, f64> = every_process(ticks)
        .into_iter()
        .filter(|(pid, _)| *pid != root)
        .map(|(pid, s)| (pid, s.cpu_seconds))
        .collect();
    // pid → (group, CPU seconds at its last sample)
    let mut charged: HashMap<u32, (String, f64)> = HashMap::new();
    loop {
        for (pid, s) in every_process(ticks) {
            let group = if pid == root {
                "self".to_owned()
            } else if s.parent == root {
                s.name.clone()
            } else if s.name == "postgres" || s.name.starts_with("postgres:") {
                "postgres".to_owned()
            } else {
                continue;
            };
            let spent = s.cpu_seconds - baseline.get(&pid).copied().unwrap_or(0.0);
            charged.insert(pid, (group, spent.max(0.0)));
        }
        if let Some(status) = child.try_wait().unwrap_or_else(|e| panic!("wait: {e}")) {
            let mut seconds = BTreeMap::new();
            for (group, spent) in charged.into_values() {
                *seconds.entry(group).or_insert(0.0) += spent;
            }
            return CpuByGroup {
                elapsed: started.elapsed().as_secs_f64(),
                success: status.success(),
                seconds,
            };
        }
        std::thread::sleep(INTERVAL);
    }
}

fn rusage_seconds(who: libc::c_int) -> f64 {
    // SAFETY: getrusage writes only into the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut usage) };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// CPU seconds this process spent so far on every thread but the calling one: for a bench that
/// runs a server in-process and waits (sampling `/proc`) on its main thread, what the server
/// cost, without the sampling.
pub fn cpu_seconds_besides_this_thread() -> f64 {
    rusage_seconds(libc::RUSAGE_SELF) - rusage_seconds(libc::RUSAGE_THREAD)
}
