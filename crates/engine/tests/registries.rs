//! Connectors fetched from package registries by the real launchers, fully offline: a loopback
//! npm registry stand-in (a packument and a tarball) for `npx --yes`, and a PEP 503 index for
//! `uvx` (uv installed from PyPI into the target directory by the test). The packages are made
//! by `fixtures/registry_packages.py`: a Node.js source speaking the native protocol, and a
//! Python source speaking the Airbyte protocol.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use test_support::{Bin, Finished, TestDb, bin_path};

const UV: &str = "uv==0.13.9";

/// The target directory of this build (where the test keeps its uv).
fn target_dir() -> PathBuf {
    bin_path("sync-engine")
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap()
}

/// A virtualenv with uv, made once under the target directory.
fn uv_bin_dir() -> PathBuf {
    static MAKING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = MAKING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let venv = target_dir().join("uv-venv");
    let bin = venv.join("bin");
    if !bin.join("uvx").exists() {
        // What an interrupted run left half made.
        let _ = std::fs::remove_dir_all(&venv);
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "python3 -m venv failed: Python 3 with venv is needed");
        let status = Command::new(bin.join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", UV])
            .status()
            .unwrap();
        assert!(
            status.success(),
            "pip install {UV} failed (PyPI must be reachable)"
        );
    }
    bin
}

/// What the stand-in serves, by request path.
type Routes = Arc<Mutex<Vec<(String, &'static str, Vec<u8>)>>>;

/// An npm registry and a PyPI simple index on one loopback port.
struct Registry {
    url: String,
    routes: Routes,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Registry {
    fn start() -> Registry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
        let routes: Routes = Arc::default();
        let requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let (served, seen) = (routes.clone(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (served, seen) = (served.clone(), seen.clone());
                std::thread::spawn(move || serve(stream, &served, &seen));
            }
        });
        Registry {
            url,
            routes,
            requests,
        }
    }

    fn add(&self, path: &str, content_type: &'static str, body: Vec<u8>) {
        self.routes
            .lock()
            .unwrap()
            .push((path.to_owned(), content_type, body));
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(stream: std::net::TcpStream, routes: &Routes, seen: &Arc<Mutex<Vec<String>>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, raw_path) = (parts.next().unwrap_or(""), parts.next().unwrap_or("/"));
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                break;
            }
            if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        // npm asks for scoped packages as /@scope%2fname.
        let path = raw_path.replace("%2f", "/").replace("%2F", "/");
        seen.lock().unwrap().push(format!("{method} {path}"));
        let found = routes
            .lock()
            .unwrap()
            .iter()
            .find(|(p, _, _)| *p == path)
            .map(|(_, t, b)| (*t, b.clone()));
        let (status, content_type, body) = match found {
            Some((t, b)) => ("200 OK", t, b),
            None => (
                "404 Not Found",
                "application/json",
                b"{\"error\":\"not found\"}".to_vec(),
            ),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        if writer.write_all(head.as_bytes()).is_err() {
            return;
        }
        if method != "HEAD" && writer.write_all(&body).is_err() {
            return;
        }
    }
}

/// Builds the packages and serves them.
fn registry_with_packages(dir: &Path) -> Registry {
    let out = test_support::succeed(
        Command::new("python3")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/registry_packages.py"))
            .arg(dir),
    );
    let made: Value = serde_json::from_slice(&out.stdout).unwrap();
    let registry = Registry::start();
    let npm = &made["npm"];
    let tarball_path = "/@acme/source-tiny/-/source-tiny-1.0.0.tgz";
    let packument = json!({
        "name": "@acme/source-tiny",
        "dist-tags": {"latest": "1.0.0"},
        "versions": {"1.0.0": {
            "name": "@acme/source-tiny",
            "version": "1.0.0",
            "bin": npm["bin"],
            "dist": {
                "tarball": format!("{}{tarball_path}", registry.url),
                "integrity": npm["integrity"],
                "shasum": npm["shasum"],
            }
        }}
    });
    registry.add(
        "/@acme/source-tiny",
        "application/json",
        packument.to_string().into_bytes(),
    );
    registry.add(
        tarball_path,
        "application/octet-stream",
        std::fs::read(npm["tarball"].as_str().unwrap()).unwrap(),
    );
    let wheel = &made["pypi"];
    let filename = wheel["filename"].as_str().unwrap();
    let index = format!(
        "<!DOCTYPE html><html><body><a href=\"/files/{filename}#sha256={}\">{filename}</a></body></html>",
        wheel["sha256"].as_str().unwrap()
    );
    registry.add(
        "/simple/airbyte-source-tiny/",
        "text/html",
        index.into_bytes(),
    );
    registry.add(
        &format!("/files/{filename}"),
        "application/octet-stream",
        std::fs::read(wheel["path"].as_str().unwrap()).unwrap(),
    );
    registry
}

/// The engine with the launchers isolated from this machine's own config and caches, and
/// pointed at the stand-in.
fn engine(registry: &Registry, home: &Path, args: &[&str]) -> Finished {
    let path = format!(
        "{}:{}",
        uv_bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let (user_rc, global_rc) = (home.join("user-npmrc"), home.join("global-npmrc"));
    std::fs::write(&user_rc, "").unwrap();
    std::fs::write(&global_rc, "").unwrap();
    Bin::new("sync-engine")
        .args(args)
        .env("PATH", path)
        .env("HOME", home)
        .env("XDG_CACHE_HOME", home.join("cache"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("npm_config_userconfig", &user_rc)
        .env("npm_config_globalconfig", &global_rc)
        .env("npm_config_cache", home.join("npm-cache"))
        .env("npm_config_registry", format!("{}/", registry.url))
        .env("npm_config_update_notifier", "false")
        .env("npm_config_audit", "false")
        .env("npm_config_fund", "false")
        .env("npm_config_fetch_retries", "0")
        .env("UV_NO_CONFIG", "1")
        .env("UV_CACHE_DIR", home.join("uv-cache"))
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env("UV_DEFAULT_INDEX", format!("{}/simple/", registry.url))
        .env("UV_HTTP_RETRIES", "0")
        .env("UV_NO_PROGRESS", "1")
        .run()
}

fn sync_args<'a>(source: &'a str, db: &'a TestDb, schema: &'a str) -> Vec<&'a str> {
    vec![
        "sync",
        "--source",
        source,
        "--source-config",
        r#"{"count": 7}"#,
        "--postgres-url",
        db.url(),
        "--schema",
        schema,
        "--output",
        "ndjson",
    ]
}

#[test]
fn an_npm_package_runs_through_npx_and_a_pypi_package_through_uvx() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry_with_packages(&dir.path().join("packages"));
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let db = TestDb::new();

    // Named explicitly, version pinned: npm through npx.
    let mut args = sync_args("npm:@acme/source-tiny@1.0.0", &db, "from_npm");
    args.push("--connectors-from-registry");
    let out = engine(&registry, &home, &args);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(db.count("from_npm.greetings"), 7);

    // A bare name: npm's @stripe/sync-source-tiny is tried first and is not there; PyPI's
    // airbyte-source-tiny (an Airbyte connector) answers through uvx.
    let mut args = sync_args("tiny", &db, "from_pypi");
    args.extend(["--connectors-from-registry", "--no-connectors-from-path"]);
    let out = engine(&registry, &home, &args);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(db.count("from_pypi.pings"), 7);
    let requests = registry.requests();
    let npm_first = requests
        .iter()
        .position(|r| r.contains("/@stripe/sync-source-tiny"));
    let pypi = requests
        .iter()
        .position(|r| r.contains("/simple/airbyte-source-tiny/"));
    assert!(
        matches!((npm_first, pypi), (Some(a), Some(b)) if a < b),
        "npm is tried before PyPI: {requests:?}"
    );

    // Pinned in the command map.
    let map = json!({"source-pinned": "pypi:airbyte-source-tiny==0.1.0"}).to_string();
    let mut args = sync_args("pinned", &db, "pinned");
    args.extend(["--connectors-from-command-map", &map]);
    let out = engine(&registry, &home, &args);
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    assert_eq!(db.count("pinned.pings"), 7);
}

#[test]
fn a_package_no_launcher_can_fetch_is_an_error_naming_each_one_tried() {
    let dir = tempfile::tempdir().unwrap();
    let registry = registry_with_packages(&dir.path().join("packages"));
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let db = TestDb::new();
    let mut args = sync_args("nowhere", &db, "none");
    args.extend(["--connectors-from-registry", "--no-connectors-from-path"]);
    let out = engine(&registry, &home, &args);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    for expected in [
        "npm:@stripe/sync-source-nowhere via npx",
        "E404",
        "pypi:airbyte-source-nowhere via uvx",
        "not found in the package registry",
    ] {
        assert!(out.stderr.contains(expected), "{expected}: {}", out.stderr);
    }
    let out = engine(
        &registry,
        &home,
        &sync_args("npm:@acme/source-tiny@9.9.9", &db, "none"),
    );
    assert_ne!(out.code, Some(0));
    assert!(
        out.stderr.contains("ETARGET") || out.stderr.contains("No matching version"),
        "{}",
        out.stderr
    );
}
