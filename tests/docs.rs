//! The README and docs/ stay true to the binaries: every flag they mention exists, every
//! sync-engine subcommand their code blocks use exists, the README's quick-start command is
//! accepted, and the generated configuration reference matches the connectors' specs.

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

/// A script's `--help`.
fn script_help(script: &str) -> String {
    let out = Command::new(root().join(script))
        .arg("--help")
        .output()
        .unwrap_or_else(|e| panic!("{script} --help: {e}"));
    assert!(out.status.success(), "{script} --help failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Flags of other tools the docs show in passing (cargo, npx/uvx, scripts/bench).
const OTHER_TOOLS: &[&str] = &[
    "--release",
    "--bins",
    "--yes",
    "--bench",
    "--test",
    "--nocapture",
    "--forward-to",
    // the temporal CLI's dev server
    "--headless",
    // installing: cargo install, uvx and pipx run, npm
    "--path",
    "--git",
    "--locked",
    "--root",
    "--from",
    "--spec",
    "--global",
    "--workspace",
    "--all-targets",
];

/// The lines of the documents' fenced code blocks.
fn code_lines(text: &str) -> Vec<&str> {
    let mut inside = false;
    let mut lines = Vec::new();
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            inside = !inside;
        } else if inside {
            lines.push(line);
        }
    }
    lines
}

/// The sync-engine subcommands the documents' code blocks use (`sync-engine WORD`).
fn documented_subcommands() -> BTreeSet<String> {
    let mut subs = BTreeSet::new();
    for (_, text) in documents() {
        for line in code_lines(&text) {
            for (at, _) in line.match_indices("sync-engine ") {
                let word = line[at + "sync-engine ".len()..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("");
                if !word.is_empty() && word.chars().all(|c| c.is_ascii_lowercase()) {
                    subs.insert(word.to_owned());
                }
            }
        }
    }
    subs
}

#[test]
fn every_sync_engine_subcommand_the_docs_use_exists() {
    let subs = documented_subcommands();
    for expected in [
        "sync",
        "check",
        "discover",
        "setup",
        "teardown",
        "connectors",
    ] {
        assert!(
            subs.contains(expected),
            "the docs never show `sync-engine {expected}`: {subs:?}"
        );
    }
    for sub in &subs {
        help("sync-engine", &[sub.as_str()]);
    }
}

#[test]
fn every_flag_the_docs_mention_exists() {
    let mut helps = String::new();
    for sub in documented_subcommands() {
        helps.push_str(&help("sync-engine", &[sub.as_str()]));
    }
    for (binary, subs) in [
        ("source-stripe", vec!["read", "check"]),
        ("dest-postgres", vec!["write", "setup", "teardown"]),
        ("example-connector", vec!["read"]),
        (
            "sync-service",
            vec!["serve", "worker", "migrate", "webhook", "pipelines"],
        ),
        (
            "stripe-sync",
            vec!["start", "stop", "status", "logs", "uninstall"],
        ),
    ] {
        for sub in subs {
            helps.push_str(&help(binary, &[sub]));
        }
    }
    for sub in ["create", "sync-batch", "check", "setup", "teardown"] {
        helps.push_str(&help("sync-service", &["pipelines", sub]));
    }
    helps.push_str(&help("stripe-fake", &[]));
    helps.push_str(&script_help("scripts/release"));
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
    test_support::succeed(
        Command::new("python3")
            .arg(root().join("scripts/gen-config-docs"))
            .arg("--check")
            .arg(&bin_dir),
    );
}

#[test]
fn the_readme_quick_start_command_is_accepted() {
    // The README's `sync-engine sync` line, with the key and URL from the environment: with an
    // unreachable API and database it must get as far as discovering, proving the flags and the
    // environment variables work.
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let quick_start = code_lines(&readme)
        .into_iter()
        .find(|l| l.starts_with("target/release/sync-engine sync"))
        .expect("the README's quick start runs target/release/sync-engine sync");
    let args: Vec<&str> = quick_start.split_whitespace().skip(1).collect();
    let db = test_support::TestDb::new();
    let out = Command::new(bin_path("sync-engine"))
        .args(&args)
        .args([
            "--stripe-base-url",
            "http://127.0.0.1:1",
            "--source-config",
            r#"{"max_retries":0}"#,
        ])
        .env("STRIPE_API_KEY", "sk_test_readme")
        // A reachable database (the checkpoint lives there), an unreachable Stripe.
        .env("DATABASE_URL", db.url())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(
        !stderr.contains("STRIPE_API_KEY") && !stderr.contains("sk_test_readme"),
        "the key was read from the environment and not printed: {stderr}"
    );
    assert!(
        stderr.contains("source-stripe discover"),
        "it got as far as discovering: {stderr}"
    );
}
