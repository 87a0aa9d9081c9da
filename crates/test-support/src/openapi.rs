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
