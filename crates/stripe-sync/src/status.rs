//! `status` and `logs`.

use std::time::Duration;

use anyhow::Result;
use serde_json::{Value, json};

use crate::layout::{Layout, alive};
use crate::processes;

/// Prints the bundle's state as JSON; the exit code: 0 running and healthy, 3 otherwise.
/// `leftover` lists what a supervisor that died without stopping its processes left running
/// (`start` and `stop` stop them).
pub async fn print(layout: &Layout) -> Result<u8> {
    let ports = layout.ports()?;
    let running = layout.dir.exists() && layout.supervised()?;
    let pid = ports
        .as_ref()
        .and_then(|p| p.pid)
        .filter(|pid| running && alive(*pid));
    let leftover = if running {
        Vec::new()
    } else {
        processes::marked(&processes::mark(layout))
    };
    let api = ports
        .as_ref()
        .map(|p| format!("http://127.0.0.1:{}", p.api));
    let (healthy, pipelines) = match (&api, pid) {
        (Some(api), Some(_)) => probe(api).await,
        _ => (false, None),
    };
    let state = json!({
        "data_dir": layout.dir,
        "running": running,
        "pid": pid,
        "leftover": leftover,
        "api": api,
        "temporal": ports.as_ref().map(|p| format!("127.0.0.1:{}", p.temporal)),
        "healthy": healthy,
        "pipelines": pipelines,
        "logs": layout.dir.join("logs"),
    });
    println!("{}", serde_json::to_string_pretty(&state)?);
    Ok(if running && healthy { 0 } else { 3 })
}

/// Whether the API answers /health, and how many pipelines it has.
async fn probe(api: &str) -> (bool, Option<usize>) {
    // reqwest is built without a TLS provider of its own; this process picks ring.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let Ok(client) = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
    else {
        return (false, None);
    };
    let healthy = match client.get(format!("{api}/health")).send().await {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    };
    let pipelines = match client.get(format!("{api}/pipelines")).send().await {
        Ok(r) if r.status().is_success() => r
            .json::<Value>()
            .await
            .ok()
            .and_then(|v| v["data"].as_array().map(Vec::len)),
        _ => None,
    };
    (healthy, pipelines)
}

/// Prints the last `lines` lines of each log (or of `only`).
pub fn logs(layout: &Layout, lines: usize, only: Option<&str>) -> Result<()> {
    for name in ["temporal", "worker", "serve"] {
        if only.is_some_and(|o| o != name) {
            continue;
        }
        let path = layout.log_path(name);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        println!("==> {} <==", path.display());
        for line in &all[all.len().saturating_sub(lines)..] {
            println!("{line}");
        }
    }
    Ok(())
}
