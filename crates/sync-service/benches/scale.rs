//! Scale-out: 30 pipelines (each of its own connected account, so its own rate budget and step
//! lock) of N
//! customers on 1, 2 and 3 workers: records per second in all, and the workers' own memory per
//! pipeline (the connectors are processes of their own). Release binaries, a real dev server,
//! the simulator and Postgres. Prints one JSON line per worker count.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Process, Service, call};
use serde_json::json;

const PIPELINES: usize = 30;

fn main() {
    let customers = test_support::measure::count_from_args(5_000);
    for workers in 1..=3 {
        let service = Service::start_full("300", customers, &[], &[], &[], PIPELINES);
        let accounts = service.fake.connected_accounts();
        let extra: Vec<Process> = (1..workers)
            .map(|_| {
                Service::worker_with(
                    &service.temporal,
                    &service.db,
                    &service.task_queue,
                    "300",
                    &[],
                )
            })
            .collect();
        let mut pids = vec![service.worker.child.id()];
        pids.extend(extra.iter().map(|p| p.child.id()));
        let started = Instant::now();
        for (i, account) in accounts.iter().enumerate() {
            let mut body = service.pipeline_body(&format!("p-{i:02}"), &format!("s{i:02}"));
            body["source"]["config"]["account_id"] = json!(account);
            let (code, answer) = call(
                "POST",
                &service.url("/pipelines?skip_check=true"),
                Some(&body),
            );
            assert_eq!(code, 201, "{answer}");
        }
        let mut peak_rss = 0u64;
        let all_ready = || {
            let (_, list) = call("GET", &service.url("/pipelines"), None);
            list["data"]
                .as_array()
                .is_some_and(|l| l.iter().filter(|p| p["status"] == "ready").count() == PIPELINES)
        };
        while !all_ready() {
            assert!(
                started.elapsed() < Duration::from_secs(1800),
                "not all ready"
            );
            let rss: u64 = pids
                .iter()
                .map(|pid| test_support::measure::rss_bytes(*pid))
                .max()
                .unwrap_or(0);
            peak_rss = peak_rss.max(rss);
            std::thread::sleep(Duration::from_millis(250));
        }
        let seconds = started.elapsed().as_secs_f64();
        let per_pipeline = customers + service.object_ids("products").len();
        let records = PIPELINES * per_pipeline;
        for (i, account) in accounts.iter().enumerate() {
            service.assert_exact_in(&format!("s{i:02}"), Some(account));
        }
        println!(
            "{}",
            json!({"bench": "scale", "workers": workers, "pipelines": PIPELINES,
                   "customers": customers, "records": records, "seconds": seconds,
                   "records_per_second": records as f64 / seconds,
                   "worker_peak_rss_bytes": peak_rss,
                   "pipelines_per_worker": PIPELINES as f64 / workers as f64})
        );
    }
}
