//! The README and docs/ stay true to the binaries: every flag they mention exists, every
//! sync-engine subcommand they list runs, and the generated configuration reference matches the
//! connectors' specs.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use test_support::bin_path;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn documents() -> Vec<(PathBuf, String)> {
    let mut docs = vec![root().join("README.md")];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            docs.push(path);
        }
    }
    docs.into_iter()
        .map(|p| (p.clone(), std::fs::read_to_string(&p).unwrap()))
        .collect()
}

fn help(binary: &str, args: &[&str]) -> String {
    let out = Command::new(bin_path(binary))
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{binary} {args:?} --help failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Flags of other tools the docs show in passing (cargo, pip, bash, uvx, npx, scripts).
const OTHER_TOOLS: &[&str] = &[
    "--release",
    "--bins",
    "--check",
    "--yes",
    "--from",
    "--spec",
    "--quiet",
    "--bench",
    "--workspace",
    "--all-targets",
    "--all",
    "--lib",
    "--help",
];

#[test]
fn every_flag_the_docs_mention_exists() {
    let mut helps = String::new();
    for sub in [
        "sync",
        "check",
        "discover",
        "setup",
        "teardown",
        "connectors",
    ] {
        helps.push_str(&help("sync-engine", &[sub]));
    }
    for (binary, subs) in [
        ("source-stripe", vec!["read", "check"]),
        ("dest-postgres", vec!["write", "setup", "teardown"]),
        ("example-connector", vec!["read"]),
    ] {
        for sub in subs {
            helps.push_str(&help(binary, &[sub]));
        }
    }
    helps.push_str(&help("stripe-fake", &[]));
    let known: BTreeSet<String> = helps
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--"))
        .map(str::to_owned)
        .collect();
    let mut unknown = Vec::new();
    for (path, text) in documents() {
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')) {
            let flag = word.trim_end_matches('-');
            if flag.starts_with("--")
                && flag.len() > 3
                && !known.contains(flag)
                && !OTHER_TOOLS.contains(&flag)
            {
                unknown.push(format!(
                    "{}: {flag}",
                    path.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    unknown.sort();
    unknown.dedup();
    assert!(
        unknown.is_empty(),
        "flags the docs mention but no binary has: {unknown:?}"
    );
}

#[test]
fn the_configuration_reference_matches_the_specs() {
    let bin_dir = bin_path("source-stripe").parent().unwrap().to_path_buf();
    let out = Command::new("python3")
        .arg(root().join("scripts/gen-config-docs"))
        .arg("--check")
        .arg(&bin_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_readme_quick_start_command_is_accepted() {
    // `sync-engine sync --schema stripe` with the key and URL from the environment: with an
    // unreachable database it must get as far as connecting, proving the flags and env work.
    let out = Command::new(bin_path("sync-engine"))
        .args([
            "sync",
            "--schema",
            "stripe",
            "--stripe-base-url",
            "http://127.0.0.1:1",
            "--source-config",
            r#"{"max_retries":0}"#,
        ])
        .env("STRIPE_API_KEY", "sk_test_readme")
        .env("DATABASE_URL", "postgres://nobody@127.0.0.1:1/db")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        !stderr.contains("STRIPE_API_KEY") && !stderr.contains("sk_test_readme"),
        "the key was read from the environment and not printed: {stderr}"
    );
    assert!(
        stderr.contains("source-stripe discover"),
        "it got as far as discovering: {stderr}"
    );
}
