//! Release: what every binary says it is (`--version`: the version and the commit).

use std::process::Command;

use test_support::bin_path;

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
    let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    Command::new("git")
        .args(args)
        .current_dir(workspace)
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
