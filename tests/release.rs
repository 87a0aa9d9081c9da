//! Release: what every binary says it is (`--version`), and what `scripts/release` makes of the
//! binaries `scripts/test` has just built (the archive, the npm packages, the wheel), installed
//! the way a user would and run with no Rust toolchain on PATH.

mod release_support;

use std::process::Command;

use release_support::{Simulator, no_rust_path, release, run_ok, workspace};
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
