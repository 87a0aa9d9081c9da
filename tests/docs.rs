//! The README and docs/ stay true to the binaries: every flag they mention exists, every
//! default and environment variable they give a flag is the one its `--help` gives, every
//! config default they give is the connector's spec's (and dest-postgres.md's config table lists
//! every key the destination takes), every
//! sync-engine subcommand their code blocks use exists, the README's quick-start command is
//! accepted, the generated configuration reference matches the connectors' specs, every
//! measured figure links the section of docs/benchmarks.md that holds it (and says what it
//! says), and the Rust version named is the workspace's.

use std::collections::{BTreeMap, BTreeSet};
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

/// The `--help` of every binary, subcommand and script whose flags the docs may name.
fn all_helps() -> String {
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
    helps
}

#[test]
fn every_flag_the_docs_mention_exists() {
    let helps = all_helps();
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

/// Each option of the helps: the long flags it is known by and its whole description, with
/// clap's `[default: …]` and `[env: …]`.
fn option_entries(helps: &str) -> Vec<(Vec<String>, String)> {
    let mut entries: Vec<(Vec<String>, String)> = Vec::new();
    let mut open = false;
    for line in helps.lines() {
        let trimmed = line.trim_start();
        let indented = line.len() > trimmed.len();
        // `-x, --flag` or `--flag`; `- value: …` lists a flag's possible values.
        let flag_line = trimmed.starts_with("--")
            || trimmed.starts_with('-')
                && trimmed[1..].starts_with(|c: char| c.is_ascii_alphanumeric());
        if indented && flag_line {
            // The flags come before the description, two spaces or a line away.
            let head = trimmed.split("  ").next().unwrap_or_default();
            let flags = head
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
                .filter(|w| w.starts_with("--") && w.len() > 3)
                .map(str::to_owned)
                .collect();
            entries.push((flags, trimmed.to_owned()));
            open = true;
        } else if !trimmed.is_empty() && !indented {
            open = false;
        } else if open && let Some((_, text)) = entries.last_mut() {
            text.push(' ');
            text.push_str(trimmed);
        }
    }
    entries
}

/// What a document says of a flag's default or environment variable.
#[derive(Debug)]
struct FlagClaim {
    place: String,
    flags: Vec<String>,
    /// The default's values (`100 live, 25 test`: 100 and 25).
    defaults: Vec<String>,
    envs: Vec<String>,
}

fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The values a default names: its backticked texts, else the first word of each
/// comma-separated part; words that describe rather than name a value are skipped.
fn default_values(text: &str) -> Vec<String> {
    // "off": a switch is off unless given, which --help does not say.
    const DESCRIPTIONS: &[&str] = &["", "the", "derived", "all", "none", "this", "off"];
    let quoted = backticked(text);
    if !quoted.is_empty() {
        return quoted;
    }
    text.split([',', ';'])
        .map(|part| {
            part.trim()
                .split([' ', ')'])
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .filter(|value| !DESCRIPTIONS.contains(&value.as_str()))
        .collect()
}

/// The value a default in prose names: its first word, or its first backticked text.
fn first_value(text: &str) -> Option<String> {
    let value = if text.starts_with('`') {
        backticked(text).into_iter().next()?
    } else {
        text.split([' ', ',', ';', ')']).next()?.to_owned()
    };
    default_values(&value).into_iter().next()
}

fn flags_in(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter(|w| w.starts_with("--") && w.len() > 3)
        .map(str::to_owned)
        .collect()
}

/// Flag tables (`| flag | env | default | meaning |`): one claim a row.
/// The rows of the documents' tables: (line number, the table's column titles, the row's cells).
fn table_rows(text: &str) -> Vec<(usize, Vec<String>, Vec<String>)> {
    let mut rows = Vec::new();
    let mut titles: Option<Vec<String>> = None;
    for (n, line) in text.lines().enumerate() {
        if !line.starts_with('|') {
            titles = None;
            continue;
        }
        // `a\|b` in a cell is one `|`, not a column break.
        let line = line.replace("\\|", "\u{1}");
        let cells: Vec<String> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(|c| c.trim().to_owned())
            .collect();
        match &titles {
            None => titles = Some(cells),
            Some(_) if line.starts_with("| ---") => {}
            Some(t) => rows.push((n + 1, t.clone(), cells)),
        }
    }
    rows
}

/// The cell of `row` under the column titled `title`.
fn cell<'a>(titles: &[String], row: &'a [String], title: &str) -> Option<&'a str> {
    let at = titles.iter().position(|t| t == title)?;
    row.get(at).map(String::as_str)
}

/// Flag tables (`| flag | env | default | meaning |`): one claim a row.
fn table_claims(name: &str, text: &str) -> Vec<FlagClaim> {
    table_rows(text)
        .into_iter()
        .filter_map(|(n, titles, row)| {
            let flags = flags_in(cell(&titles, &row, "flag")?);
            Some(FlagClaim {
                place: format!("{name}:{n}"),
                flags,
                defaults: default_values(cell(&titles, &row, "default").unwrap_or("")),
                envs: backticked(cell(&titles, &row, "env").unwrap_or("")),
            })
        })
        .collect()
}

/// Prose: "`--flag` (`ENV`, default VALUE)", "`--flag`, default VALUE".
fn prose_claims(name: &str, text: &str) -> Vec<FlagClaim> {
    let mut claims = Vec::new();
    let mut in_code = false;
    for (n, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        if in_code || line.starts_with('|') {
            continue;
        }
        // A claim may run onto the next line.
        let next = text.lines().nth(n + 1).unwrap_or_default();
        let joined = format!("{line} {next}");
        for (at, _) in line.match_indices("`--") {
            let rest = &joined[at + 1..];
            let Some(close) = rest.find('`') else {
                continue;
            };
            let flag = rest[..close]
                .split(' ')
                .next()
                .unwrap_or_default()
                .to_owned();
            let after = &rest[close + 1..];
            let end = [") ", ");", ").", ")", "; ", ". ", "`--"]
                .iter()
                .filter_map(|stop| after.find(stop))
                .min()
                .unwrap_or(after.len());
            let clause: String = after[..end].chars().take(90).collect();
            let opens_here = clause.starts_with(" (") || clause.starts_with(", default");
            let Some((before, default)) = clause.split_once("default") else {
                continue;
            };
            if !opens_here {
                continue;
            }
            let default = default.trim_start_matches([' ', ':']);
            claims.push(FlagClaim {
                place: format!("{name}:{}", n + 1),
                flags: vec![flag],
                defaults: first_value(default).into_iter().collect(),
                envs: backticked(before)
                    .into_iter()
                    .filter(|e| e.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
                    .collect(),
            });
        }
    }
    claims
}

#[test]
fn every_default_and_variable_the_docs_give_a_flag_is_the_binary_s() {
    let entries = option_entries(&all_helps());
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (path, text) in documents() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "benchmarks.md" {
            continue;
        }
        for claim in table_claims(&name, &text)
            .into_iter()
            .chain(prose_claims(&name, &text))
        {
            let described: String = entries
                .iter()
                .filter(|(flags, _)| flags.iter().any(|f| claim.flags.contains(f)))
                .map(|(_, text)| text.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            for value in claim.defaults.iter().chain(&claim.envs) {
                checked += 1;
                if !described.contains(value.as_str()) {
                    wrong.push(format!(
                        "{}: {} {value:?}, which no --help of {:?} says",
                        claim.place,
                        if claim.envs.contains(value) {
                            "env"
                        } else {
                            "default"
                        },
                        claim.flags
                    ));
                }
            }
        }
    }
    assert!(
        checked > 30,
        "too few claims found ({checked}): the parser is broken"
    );
    assert!(
        wrong.is_empty(),
        "defaults and environment variables the docs give that the binaries do not:\n{}",
        wrong.join("\n")
    );
}

/// The properties of each native connector's config schema, from its `spec`.
fn config_properties() -> BTreeMap<String, serde_json::Map<String, serde_json::Value>> {
    let mut properties = BTreeMap::new();
    for connector in ["source-stripe", "dest-postgres"] {
        let out = Command::new(bin_path(connector))
            .arg("spec")
            .output()
            .unwrap();
        let spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let props = spec["spec"]["config"]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{connector} spec has no config properties"));
        properties.insert(connector.to_owned(), props.clone());
    }
    properties
}

/// Whether a default as the docs write it is the schema's value.
fn same_value(documented: &str, schema: &serde_json::Value) -> bool {
    let documented = documented.trim_matches('"');
    match schema {
        serde_json::Value::String(s) => s == documented,
        serde_json::Value::Number(n) => documented
            .parse::<f64>()
            .is_ok_and(|d| n.as_f64() == Some(d)),
        other => *other.to_string() == *documented,
    }
}

/// `key` (default X) in prose, and `| field | default |` tables: (place, key, default).
fn config_claims(name: &str, text: &str) -> Vec<(String, String, String)> {
    let mut claims: Vec<(String, String, String)> = table_rows(text)
        .into_iter()
        .filter_map(|(n, titles, row)| {
            let key = backticked(cell(&titles, &row, "field")?)
                .into_iter()
                .next()?;
            let default = first_value(cell(&titles, &row, "default")?)?;
            Some((format!("{name}:{n}"), key, default))
        })
        .collect();
    for (n, line) in text.lines().enumerate() {
        for (at, _) in line.match_indices('`') {
            let rest = &line[at + 1..];
            let Some(close) = rest.find('`') else {
                continue;
            };
            let key = &rest[..close];
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                continue;
            }
            let after = &rest[close + 1..];
            let default = after
                .strip_prefix(" (default ")
                .or_else(|| after.strip_prefix(", default "));
            if let Some(value) = default.and_then(first_value) {
                claims.push((format!("{name}:{}", n + 1), key.to_owned(), value));
            }
        }
    }
    claims
}

#[test]
fn every_config_default_the_docs_give_is_the_connector_s() {
    let properties = config_properties();
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (path, text) in documents() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // Generated from the specs, and checked against them, by gen-config-docs.
        if name == "configuration.md" {
            continue;
        }
        for (place, key, documented) in config_claims(&name, &text) {
            let owners: Vec<&serde_json::Map<String, serde_json::Value>> = properties
                .values()
                .filter_map(|props| props.get(&key)?.as_object())
                .collect();
            if owners.is_empty() {
                continue;
            }
            checked += 1;
            let agrees = owners.iter().any(|p| match p.get("default") {
                Some(default) => same_value(&documented, default),
                // A default the schema cannot state (computed): its description says it.
                None => p
                    .get("description")
                    .and_then(|d| d.as_str())
                    .is_some_and(|d| d.contains(&documented)),
            });
            if !agrees {
                wrong.push(format!(
                    "{place}: `{key}` default {documented:?}; the spec says {:?}",
                    owners.iter().map(|p| p.get("default")).collect::<Vec<_>>()
                ));
            }
        }
    }
    assert!(
        checked > 10,
        "too few claims found ({checked}): the parser is broken"
    );
    assert!(
        wrong.is_empty(),
        "config defaults the docs give that the connectors' specs do not:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_destination_config_table_lists_every_key_of_its_spec() {
    let text = std::fs::read_to_string(root().join("docs/dest-postgres.md")).unwrap();
    let listed: BTreeSet<String> = table_rows(&text)
        .into_iter()
        .flat_map(|(_, titles, row)| backticked(cell(&titles, &row, "field").unwrap_or("")))
        .collect();
    let spec: BTreeSet<String> = config_properties()["dest-postgres"]
        .keys()
        .cloned()
        .collect();
    let missing: Vec<&String> = spec.difference(&listed).collect();
    let unknown: Vec<&String> = listed.difference(&spec).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/dest-postgres.md's config table lacks {missing:?} and lists {unknown:?}, which the spec does not take"
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

/// GitHub's anchor of a heading: lower case, punctuation but hyphens dropped, spaces to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// benchmarks.md by section: each `##` heading's anchor and the text up to the next one.
fn benchmark_sections() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(root().join("docs/benchmarks.md")).unwrap();
    let mut sections = BTreeMap::new();
    let mut current: Option<(String, String)> = None;
    for line in text.lines() {
        if let Some(heading) = line.strip_prefix("## ") {
            sections.extend(current.take());
            current = Some((anchor(heading), String::new()));
        } else if let Some((_, body)) = &mut current {
            body.push_str(line);
            body.push('\n');
        }
    }
    sections.extend(current);
    sections
}

/// The links of a line to benchmarks.md: (the link's text, the anchor, where the link starts
/// and ends in the line).
fn benchmark_links(line: &str) -> Vec<(String, String, std::ops::Range<usize>)> {
    let mut links = Vec::new();
    let mut from = 0;
    while let Some(open) = line[from..].find('[').map(|i| i + from) {
        let Some(close) = line[open..].find("](").map(|i| i + open) else {
            break;
        };
        let Some(end) = line[close..].find(')').map(|i| i + close) else {
            break;
        };
        let target = &line[close + 2..end];
        if let Some((_, anchor)) = target.split_once("benchmarks.md#") {
            links.push((
                line[open + 1..close].to_owned(),
                anchor.to_owned(),
                open..end + 1,
            ));
        }
        from = close + 1;
    }
    links
}

/// Figures that read as measurements: ratios (`0.86`, `1.42`) and rates (`29,374 records/s`).
fn measured_figures(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let words: Vec<&str> = text.split_whitespace().collect();
    for (i, raw) in words.iter().enumerate() {
        let word = raw.trim_matches(|c: char| !c.is_ascii_digit() && c != '.' && c != ',');
        let word = word.trim_end_matches(['.', ',']);
        let b = word.as_bytes();
        let ratio = b.len() == 4
            && (b[0] == b'0' || b[0] == b'1')
            && b[1] == b'.'
            && b[2].is_ascii_digit()
            && b[3].is_ascii_digit();
        let rate = !word.is_empty()
            && word.chars().all(|c| c.is_ascii_digit() || c == ',')
            && words
                .get(i + 1)
                .is_some_and(|next| next.starts_with("records/s"));
        // A Rust version ("Rust 1.92", "1.92 or newer") is checked against the workspace's.
        let version = i > 0 && words[i - 1].trim_start_matches('(') == "Rust"
            || words.get(i + 1) == Some(&"or") && words.get(i + 2) == Some(&"newer)");
        if (ratio || rate) && !version {
            found.push(word.to_owned());
        }
    }
    found
}

/// Figures in README and docs that are not measurements of ours: limits, thresholds, others'
/// claims. Each with why it may stand without a link to benchmarks.md.
const NOT_MEASURED: &[(&str, &str, &str)] = &[
    (
        "README.md",
        "20",
        "airbytehq/airbyte#18638's reported rate, not ours",
    ),
    (
        "console.md",
        "0.01",
        "the layout-shift threshold the browser test requires",
    ),
    (
        "dest-postgres.md",
        "0.25",
        "the first wait of a retried flush, a constant",
    ),
    (
        "scaling.md",
        "10,000",
        "Stripe's live limit times 100 objects a page",
    ),
];

#[test]
fn every_measured_figure_comes_from_the_benchmarks() {
    let sections = benchmark_sections();
    let mut wrong = Vec::new();
    for (path, text) in documents() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "benchmarks.md" {
            continue;
        }
        let mut in_code = false;
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                in_code = !in_code;
            }
            if in_code {
                continue;
            }
            let mut rest = line.to_owned();
            for (figure, anchor, span) in benchmark_links(line).into_iter().rev() {
                match sections.get(&anchor) {
                    None => wrong.push(format!(
                        "{name}:{}: links benchmarks.md#{anchor}, which is no section of it",
                        n + 1
                    )),
                    Some(section) if !section.contains(&figure) => wrong.push(format!(
                        "{name}:{}: says {figure:?}, which benchmarks.md#{anchor} does not",
                        n + 1
                    )),
                    Some(_) => {}
                }
                rest.replace_range(span, "");
            }
            for figure in measured_figures(&rest) {
                if !NOT_MEASURED
                    .iter()
                    .any(|(file, f, _)| *file == name && *f == figure)
                {
                    wrong.push(format!(
                        "{name}:{}: {figure} reads as a measurement but links no section of benchmarks.md",
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "figures that can drift:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_rust_version_the_docs_name_is_the_workspace_s() {
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .expect("the workspace names a rust-version")
        .trim_matches('"');
    let mut wrong = Vec::new();
    for (path, text) in documents() {
        for (n, line) in text.lines().enumerate() {
            for (at, _) in line.match_indices("Rust ") {
                let rest = &line[at + 5..];
                let named: String = rest
                    .trim_start_matches('(')
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.')
                    .collect();
                if named.contains('.') && named.trim_end_matches('.') != version {
                    wrong.push(format!("{}:{}: Rust {named}", path.display(), n + 1));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the workspace's rust-version is {version}: {wrong:?}"
    );
}
