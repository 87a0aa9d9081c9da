//! Connectors that speak the Airbyte protocol: a real one from PyPI (airbyte-source-faker) into
//! dest-postgres, and an Airbyte-dialect destination fed by a native source.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};
use test_support::{Bin, TestDb, bin_path};

const FAKER: &str = "airbyte-source-faker==7.2.1";

/// A virtualenv with airbyte-source-faker, made once under the target directory.
fn faker_bin_dir() -> PathBuf {
    let target = bin_path("sync-engine")
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    let venv = target.join("airbyte-faker-venv");
    let bin = venv.join("bin");
    if !bin.join("source-faker").exists() {
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "python3 -m venv failed: Python 3 with venv is needed for this test"
        );
        let status = Command::new(bin.join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", FAKER])
            .status()
            .unwrap();
        assert!(
            status.success(),
            "pip install {FAKER} failed (PyPI must be reachable)"
        );
    }
    bin
}

fn path_with(dir: &Path) -> String {
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[test]
fn airbyte_source_faker_from_pypi_loads_into_dest_postgres() {
    let bin = faker_bin_dir();
    let db = TestDb::new();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let run = || {
        Bin::new("sync-engine")
            .env("PATH", path_with(&bin))
            .args([
                "sync",
                "--source",
                "faker",
                "--source-config",
                // always_updated false: with its state handed back, faker emits no user again.
                r#"{"count":300,"seed":7,"always_updated":false}"#,
                "--streams",
                "users,products",
            ])
            .args([
                "--postgres-url",
                db.url(),
                "--schema",
                "faker",
                "--state-file",
                state.to_str().unwrap(),
                "--output",
                "ndjson",
            ])
            .run()
    };
    let out = run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(db.count("faker.users"), 300);
    assert_eq!(
        db.count("faker.users WHERE email LIKE '%@%' AND _updated_at IS NOT NULL"),
        300,
        "typed columns and the cursor come from the Airbyte catalog"
    );
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert!(
        saved["state"]["source"]["streams"]["users"].is_object(),
        "the Airbyte state was translated and saved: {saved}"
    );
    // The second run hands the state back in the Airbyte format; faker then reads nothing new.
    let again = run();
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    let eof = again.of_type("eof").pop().expect("an eof");
    assert_eq!(
        eof["run_progress"]["streams"]["users"]["record_count"], 0,
        "a rerun from the saved state reads no user again: {eof}"
    );
    assert_eq!(db.count("faker.users"), 300);
}

#[test]
fn an_airbyte_destination_is_fed_in_the_airbyte_dialect() {
    let dir = tempfile::tempdir().unwrap();
    let received = dir.path().join("received.ndjson");
    let dest = dir.path().join("destination-abfile");
    std::fs::write(
        &dest,
        format!(
            r#"#!/usr/bin/env python3
import json, sys
args = sys.argv[1:]
if args[0] == "spec":
    print(json.dumps({{"type": "SPEC", "spec": {{"connectionSpecification": {{"type": "object"}}}}}}))
elif args[0] == "write":
    config = json.load(open(args[args.index("--config") + 1]))
    catalog = json.load(open(args[args.index("--catalog") + 1]))
    assert catalog["streams"][0]["destination_sync_mode"] == "append"
    out = open({received:?}, "w")
    for line in sys.stdin:
        m = json.loads(line)
        out.write(line)
        if m["type"] == "STATE":
            print(json.dumps(m), flush=True)
"#
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755)).unwrap();
    let map =
        json!({"source-example": bin_path("example-connector").display().to_string()}).to_string();
    let out = Bin::new("sync-engine")
        .env("PATH", path_with(dir.path()))
        .args([
            "sync",
            "--source",
            "example",
            "--source-config",
            r#"{"records":12,"state_every":5}"#,
            "--destination",
            "abfile",
            "--destination-config",
            "{}",
        ])
        .args([
            "--connectors-from-command-map",
            &map,
            "--state-file",
            dir.path().join("s.json").to_str().unwrap(),
            "--output",
            "ndjson",
        ])
        .run();
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let lines: Vec<Value> = std::fs::read_to_string(&received)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let records: Vec<&Value> = lines.iter().filter(|m| m["type"] == "RECORD").collect();
    assert_eq!(records.len(), 12);
    assert!(
        records[0]["record"]["emitted_at"].is_i64(),
        "epoch milliseconds"
    );
    let states: Vec<&Value> = lines.iter().filter(|m| m["type"] == "STATE").collect();
    assert_eq!(states[0]["state"]["type"], "STREAM");
    assert_eq!(
        states[0]["state"]["stream"]["stream_descriptor"]["name"],
        "items"
    );
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("s.json")).unwrap()).unwrap();
    assert_eq!(
        saved["state"]["source"]["streams"]["items"]["next"], 12,
        "echoed Airbyte states are persisted"
    );
}
