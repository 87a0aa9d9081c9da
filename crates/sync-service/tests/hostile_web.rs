//! The real `sync-service serve` against hostile input: timers beyond their maximum are
//! refused at start, naming the flag.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use test_support::bin_path;

/// Runs `sync-service serve` with `extra`; it must exit on its own within a minute.
fn serve_exits(extra: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(bin_path("sync-service"))
        .args([
            "serve",
            "--database-url",
            "postgres://nobody@127.0.0.1:1/none",
        ])
        .args([
            "--temporal-address",
            "127.0.0.1:1",
            "--listen",
            "127.0.0.1:0",
        ])
        .args(extra)
        .env_remove("SYNC_SERVICE_DATABASE_URL")
        .env_remove("TEMPORAL_ADDRESS")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            return (status.code(), stderr);
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve {extra:?} did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn timers_beyond_their_maximum_exit_2_naming_the_flag() {
    for (flag, value) in [
        ("--poll-secs", "18446744073709551615"),
        ("--poll-secs", "86401"),
        ("--retry-secs", "18446744073709551615"),
        ("--retry-secs", "86401"),
        ("--reconcile-secs", "18446744073709551615"),
        ("--reconcile-secs", "31536001"),
    ] {
        let (code, stderr) = serve_exits(&[flag, value]);
        assert_eq!(code, Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(flag), "{flag} {value}: {stderr}");
    }
}
