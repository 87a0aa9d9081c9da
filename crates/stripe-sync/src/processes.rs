//! The bundle's processes: each started marked with its data directory (an environment variable
//! its own children inherit too), in its own process group, and set to get SIGTERM when the
//! supervisor dies; found again by that mark when a supervisor died without stopping them
//! (kill -9), and stopped.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde::Serialize;

use crate::layout::{Layout, alive, signal};

/// The variable that marks a process as part of the bundle of one data directory.
pub const MARK: &str = "STRIPE_SYNC_BUNDLE_DIR";

/// How long what an earlier supervisor left gets to stop after SIGTERM before SIGKILL (the
/// worker's graceful stop takes up to 30 s).
pub const LEFTOVER_GRACE: Duration = Duration::from_secs(35);

/// One process of a bundle.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Process {
    pub pid: u32,
    pub name: String,
    /// When it started (in clock ticks since boot), which tells it from a later process that
    /// got its pid.
    #[serde(skip)]
    started: Option<u64>,
}

impl Process {
    /// Whether it still runs (a zombie has ended), and is not another process with its pid.
    fn runs(&self) -> bool {
        alive(self.pid) && start_time(self.pid) == self.started
    }
}

/// The 22nd field of /proc/PID/stat, after the parenthesised name (which may hold spaces).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()
}

impl std::fmt::Display for Process {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (pid {})", self.name, self.pid)
    }
}

/// Names processes for a message: `temporal (pid 1), sync-service (pid 2)`.
pub fn named(processes: &[Process]) -> String {
    processes
        .iter()
        .map(Process::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The mark's value for a data directory: its canonical path, so that two spellings of one
/// directory mark alike.
pub fn mark(layout: &Layout) -> String {
    std::fs::canonicalize(&layout.dir)
        .unwrap_or_else(|_| layout.dir.clone())
        .display()
        .to_string()
}

/// Prepares `command` to run as part of the bundle: marked, in a process group of its own (a
/// Ctrl-C at the terminal reaches only the supervisor, which stops everything in order; a stop
/// reaches what the process started), and, on Linux, sent SIGTERM when the supervisor dies.
pub fn supervised(command: &mut tokio::process::Command, mark: &str) -> Result<()> {
    command.env(MARK, mark).process_group(0);
    #[cfg(target_os = "linux")]
    {
        // PR_SET_PDEATHSIG fires when the *thread* that forked the child ends, not the process:
        // children are started from the main thread only, which lives as long as the process.
        // SAFETY: gettid and getpid have no preconditions.
        if unsafe { libc::gettid() != libc::getpid() } {
            bail!("the bundle's processes must be started from the main thread");
        }
        let supervisor = std::process::id();
        // SAFETY: prctl and getppid are async-signal-safe and touch only the child being started.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The supervisor may have died before the prctl: nothing would signal this one.
                if libc::getppid() as u32 != supervisor {
                    return Err(std::io::Error::other("the supervisor has ended"));
                }
                Ok(())
            });
        }
    }
    Ok(())
}

/// The processes that carry `mark`, other than this one. Only Linux says (through /proc); other
/// systems find none.
pub fn marked(mark: &str) -> Vec<Process> {
    let wanted = format!("{MARK}={mark}");
    let own = std::process::id();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found: Vec<Process> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| *pid != own)
        .filter(|pid| {
            // Unreadable (another user's) or empty (a zombie's) environments are not ours.
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|var| var == wanted.as_bytes()))
        })
        .map(|pid| Process {
            pid,
            name: std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .map(|name| name.trim().to_owned())
                .unwrap_or_else(|_| "?".to_owned()),
            started: start_time(pid),
        })
        .collect();
    found.sort_by_key(|p| p.pid);
    found
}

/// Stops every process that carries `mark`: SIGTERM, and SIGKILL for what still runs after
/// `grace`. Returns the processes it found (those that appear meanwhile, such as a dying
/// worker's connectors, are stopped too) once all have ended; fails naming those that outlive
/// SIGKILL.
pub async fn stop_marked(mark: &str, grace: Duration) -> Result<Vec<Process>> {
    let mut found: Vec<Process> = Vec::new();
    let started = Instant::now();
    loop {
        let kill = started.elapsed() >= grace;
        for process in marked(mark) {
            let new = !found.iter().any(|p| p.pid == process.pid);
            if kill {
                signal(process.pid, libc::SIGKILL);
            } else if new {
                signal(process.pid, libc::SIGTERM);
            }
            if new {
                found.push(process);
            }
        }
        // Not only the marked: an exiting process loses its environment before it closes its
        // descriptors (its ports among them).
        let running: Vec<Process> = found.iter().filter(|p| p.runs()).cloned().collect();
        if running.is_empty() {
            return Ok(found);
        }
        if started.elapsed() > grace + Duration::from_secs(10) {
            bail!(
                "still running 10 s after SIGKILL: {} (started for {mark})",
                named(&running)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `stripe-sync reap`: the supervisor starts it with a pipe on its stdin, which ends when the
/// supervisor does, however it ends (kill -9 included); then it stops whatever the bundle left
/// running, grandchildren included, which PR_SET_PDEATHSIG alone would not reach.
pub async fn reap(layout: &Layout) -> Result<()> {
    // Ctrl-C at the terminal is for the supervisor, and a closing terminal must not end the
    // reaper before the supervisor.
    // SAFETY: signal(2) with SIG_IGN installs no handler code.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
        libc::signal(libc::SIGHUP, libc::SIG_IGN);
    }
    tokio::task::spawn_blocking(|| std::io::copy(&mut std::io::stdin(), &mut std::io::sink()))
        .await??;
    let mark = mark(layout);
    let stopped = stop_marked(&mark, LEFTOVER_GRACE).await?;
    if !stopped.is_empty() {
        tracing::warn!(
            "the supervisor of {} ended without stopping {}: stopped",
            layout.dir.display(),
            named(&stopped)
        );
    }
    Ok(())
}
