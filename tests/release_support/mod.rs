//! What the release tests share: one run of `scripts/release` on the debug binaries, a PATH
//! without Rust, and the Stripe simulator from a package.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// The version the tests package under (valid for npm and PyPI alike).
pub const VERSION: &str = "0.0.0-rc.1";

pub fn workspace() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The binaries' directory (`target/debug` under `cargo test`).
pub fn profile_dir() -> PathBuf {
    test_support::bin_path("sync-engine")
        .parent()
        .expect("a binary's directory")
        .to_path_buf()
}

/// The output of `scripts/release --bin-dir <profile dir> --version VERSION`, made once per
/// test run (it takes tens of seconds).
pub fn release() -> &'static Path {
    static OUT: OnceLock<PathBuf> = OnceLock::new();
    OUT.get_or_init(|| {
        let out = profile_dir().join("release-test");
        let _ = std::fs::remove_dir_all(&out);
        run_ok(
            Command::new(workspace().join("scripts/release"))
                .arg("--bin-dir")
                .arg(profile_dir())
                .args(["--version", VERSION, "--out"])
                .arg(&out),
        );
        out
    })
}

/// Runs a command to its end; panics with what it printed unless it succeeded. Its stdout.
pub fn run_ok(command: &mut Command) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{command:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A PATH with node, npm and python3 and the system's directories, and no Rust toolchain.
pub fn no_rust_path() -> String {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for tool in ["node", "npm", "python3", "tar", "sh"] {
        if let Some(found) = which(tool) {
            let dir = found.parent().expect("a directory").to_path_buf();
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
    }
    for system in ["/usr/local/bin", "/usr/bin", "/bin"] {
        let dir = PathBuf::from(system);
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    for dir in &dirs {
        for rust in ["cargo", "rustc"] {
            assert!(
                !dir.join(rust).exists(),
                "{} holds {rust}: these tests need node, npm and python3 where no Rust toolchain is",
                dir.display()
            );
        }
    }
    std::env::join_paths(&dirs)
        .expect("a PATH")
        .into_string()
        .expect("a UTF-8 PATH")
}

pub fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

/// The Stripe simulator of a package, with a small data set; killed when dropped.
pub struct Simulator {
    child: Child,
    pub url: String,
}

impl Simulator {
    pub fn start(binary: &Path) -> Simulator {
        let mut child = Command::new(binary)
            .args(["--port", "0", "--seed", "7", "--scale", "0", "--objects"])
            .arg("customers=120,products=15,prices=30")
            .env_clear()
            .env("PATH", no_rust_path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the simulator's first line");
        let url = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_owned();
        Simulator { child, url }
    }

    /// How many objects the simulator lists at `/v1/{resource}` (some of the generated ones
    /// are deleted), paging as Stripe does.
    pub fn count(&self, resource: &str) -> i64 {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let client = reqwest::Client::new();
            let (mut count, mut after) = (0, None::<String>);
            loop {
                let mut url = format!("{}/v1/{resource}?limit=100", self.url);
                if let Some(after) = &after {
                    url.push_str(&format!("&starting_after={after}"));
                }
                let page: serde_json::Value = client
                    .get(&url)
                    .basic_auth("sk_test_fake", Some(""))
                    .send()
                    .await
                    .and_then(reqwest::Response::error_for_status)
                    .unwrap_or_else(|e| panic!("GET {url}: {e}"))
                    .json()
                    .await
                    .unwrap_or_else(|e| panic!("GET {url}: {e}"));
                let data = page["data"].as_array().expect("a list");
                count += data.len() as i64;
                if page["has_more"] != true {
                    return count;
                }
                after = data
                    .last()
                    .and_then(|last| last["id"].as_str())
                    .map(str::to_owned);
            }
        })
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
