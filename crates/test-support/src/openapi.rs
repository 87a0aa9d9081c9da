//! An OpenAPI document validator for the HTTP servers' tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::bin_path;

/// The validator, pinned.
pub const OPENAPI_VALIDATOR: &str = "openapi-spec-validator==0.9.0";

/// The `openapi-spec-validator` executable, from a virtualenv made once under the target
/// directory.
pub fn validator() -> PathBuf {
    let target = bin_path("sync-engine")
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    let venv = target.join("openapi-venv");
    let bin = venv.join("bin");
    if !bin.join("openapi-spec-validator").exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "python3 -m venv failed: Python 3 with venv is needed");
        let ok = Command::new(bin.join("pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                OPENAPI_VALIDATOR,
            ])
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "pip install {OPENAPI_VALIDATOR} failed (PyPI must be reachable)"
        );
    }
    bin.join("openapi-spec-validator")
}

/// Panics, with the validator's report, unless `document` is a valid OpenAPI document.
pub fn assert_valid(document: &serde_json::Value) {
    let file = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("temp file: {e}"));
    std::fs::write(file.path(), document.to_string()).unwrap_or_else(|e| panic!("write: {e}"));
    let checked = Command::new(validator())
        .arg(file.path())
        .output()
        .unwrap_or_else(|e| panic!("openapi-spec-validator: {e}"));
    assert!(
        checked.status.success(),
        "the document is not valid OpenAPI: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

/// The routes a Markdown document's tables list: every `` `METHOD /path` `` in the first cell
/// of a table row, as (lower-case method, path).
pub fn documented_routes(markdown: &str) -> std::collections::BTreeSet<(String, String)> {
    const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
    let mut routes = std::collections::BTreeSet::new();
    for line in markdown.lines() {
        let Some(first_cell) = line.strip_prefix('|').and_then(|l| l.split('|').next()) else {
            continue;
        };
        for code in first_cell.split('`').skip(1).step_by(2) {
            if let Some((method, path)) = code.split_once(' ')
                && METHODS.contains(&method)
                && path.starts_with('/')
            {
                routes.insert((method.to_lowercase(), path.to_owned()));
            }
        }
    }
    routes
}

/// The routes an OpenAPI document lists, as (lower-case method, path).
pub fn document_routes(
    document: &serde_json::Value,
) -> std::collections::BTreeSet<(String, String)> {
    let mut routes = std::collections::BTreeSet::new();
    for (path, methods) in document["paths"].as_object().into_iter().flatten() {
        for method in methods.as_object().into_iter().flatten().map(|(m, _)| m) {
            routes.insert((method.to_lowercase(), path.clone()));
        }
    }
    routes
}

/// The routes `docs/NAME` lists are exactly the document's.
pub fn assert_documented(document: &serde_json::Value, doc: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text = std::fs::read_to_string(root.join("docs").join(doc))
        .unwrap_or_else(|e| panic!("docs/{doc}: {e}"));
    let documented = documented_routes(&text);
    let served = document_routes(document);
    assert_eq!(
        documented,
        served,
        "docs/{doc} lists {:?} that the server does not have, and misses {:?}",
        documented.difference(&served).collect::<Vec<_>>(),
        served.difference(&documented).collect::<Vec<_>>()
    );
}
