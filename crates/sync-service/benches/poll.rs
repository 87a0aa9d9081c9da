//! The fixed cost of a poll step: a `ready` pipeline with nothing new, stepped N times through
//! `POST /pipelines/{id}/sync_batch` (which answers once the step ended). Wall time per step,
//! and the worker's CPU per step including the connector processes it started and reaped
//! (`/proc/<pid>/stat`: utime + stime + cutime + cstime), and what `serve`, Postgres (every
//! `postgres` process), the Temporal dev server and this process (the simulator and the HTTP
//! client) spent meanwhile. Release binaries, a real dev server, the simulator and Postgres.
//! Prints one JSON line.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Service, call};
use serde_json::json;

/// A process's command name and its CPU time so far, its reaped children's included, in
/// seconds.
fn cpu_of(pid: u32) -> Option<(String, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, after) = stat.rsplit_once(')')?;
    let comm = head.split_once('(')?.1.to_owned();
    // Fields after the command name: utime, stime, cutime and cstime are the 12th to 15th.
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = (11..=14)
        .filter_map(|i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some((comm, ticks as f64 / per_second))
}

fn cpu_seconds(pid: u32) -> f64 {
    cpu_of(pid).map_or(0.0, |(_, s)| s)
}

/// The CPU time of every process named `comm` (a backend that exited is in its reaping
/// parent's children's time, so nothing is lost or counted twice between two readings).
fn cpu_of_named(comm: &str) -> f64 {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(cpu_of)
        .filter(|(name, _)| name == comm)
        .map(|(_, s)| s)
        .sum()
}

/// The bench process's own CPU: the simulator (in process) and the HTTP client.
fn own_cpu() -> f64 {
    cpu_seconds(std::process::id())
}

fn main() {
    let steps = test_support::measure::count_from_args(20);
    let service = Service::start("300", 1_000);
    let body = service.pipeline_body("poll", "poll");
    let (code, created) = call("POST", &service.url("/pipelines"), Some(&body));
    assert_eq!(code, 201, "{created}");
    service.wait_status("poll", "ready", Duration::from_secs(300));
    let worker = service.worker.child.id();
    let mut walls = Vec::with_capacity(steps);
    let cpu_before = cpu_seconds(worker);
    let serve = service.serve.child.id();
    let serve_before = cpu_seconds(serve);
    let postgres_before = cpu_of_named("postgres");
    let temporal_before = cpu_of_named("temporal");
    let own_before = own_cpu();
    let started = Instant::now();
    for _ in 0..steps {
        let step = Instant::now();
        let (code, run) = call("POST", &service.url("/pipelines/poll/sync_batch"), None);
        assert_eq!(code, 200, "{run}");
        walls.push(step.elapsed().as_secs_f64());
    }
    let total = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(worker) - cpu_before;
    let per_step = |delta: f64| delta / steps as f64;
    let serve_cpu = per_step(cpu_seconds(serve) - serve_before);
    let postgres_cpu = per_step(cpu_of_named("postgres") - postgres_before);
    let temporal_cpu = per_step(cpu_of_named("temporal") - temporal_before);
    let own = per_step(own_cpu() - own_before);
    walls.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({"bench": "poll", "steps": steps,
               "wall_median_s": walls[walls.len() / 2], "wall_max_s": walls[walls.len() - 1],
               "wall_total_s": total, "worker_cpu_s_per_step": cpu / steps as f64,
               "serve_cpu_s_per_step": serve_cpu, "postgres_cpu_s_per_step": postgres_cpu,
               "temporal_cpu_s_per_step": temporal_cpu, "simulator_and_client_cpu_s_per_step": own})
    );
}
