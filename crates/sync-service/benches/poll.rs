//! The fixed cost of a poll step: a `ready` pipeline with nothing new, stepped N times through
//! `POST /pipelines/{id}/sync_batch` (which answers once the step ended). Wall time per step,
//! and the worker's CPU per step including the connector processes it started and reaped
//! (`/proc/<pid>/stat`: utime + stime + cutime + cstime). Postgres' and Temporal's own CPU are
//! not in it. Release binaries, a real dev server, the simulator and Postgres. Prints one JSON
//! line.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Service, call};
use serde_json::json;

/// The process's CPU time so far, its reaped children's included, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime is the 14th field of the line.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = (11..=14)
        .filter_map(|i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
        .sum();
    // SAFETY: sysconf only reads a system constant.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    ticks as f64 / per_second
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
    let started = Instant::now();
    for _ in 0..steps {
        let step = Instant::now();
        let (code, run) = call("POST", &service.url("/pipelines/poll/sync_batch"), None);
        assert_eq!(code, 200, "{run}");
        walls.push(step.elapsed().as_secs_f64());
    }
    let total = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(worker) - cpu_before;
    walls.sort_by(f64::total_cmp);
    println!(
        "{}",
        json!({"bench": "poll", "steps": steps,
               "wall_median_s": walls[walls.len() / 2], "wall_max_s": walls[walls.len() - 1],
               "wall_total_s": total, "worker_cpu_s_per_step": cpu / steps as f64})
    );
}
