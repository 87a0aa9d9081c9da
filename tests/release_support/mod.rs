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
    let mut found: Vec<PathBuf> = ["node", "npm", "tar", "sh"]
        .iter()
        .filter_map(|tool| which(tool))
        .collect();
    // The interpreter itself, not a version manager's shim (which reads HOME).
    if let Some(python) = Command::new("python3")
        .args([
            "-c",
            "import os, sys; print(os.path.realpath(sys.executable))",
        ])
        .output()
        .ok()
        .filter(|out| out.status.success())
    {
        found.push(PathBuf::from(
            String::from_utf8_lossy(&python.stdout).trim(),
        ));
    }
    for tool in found {
        let dir = tool.parent().expect("a directory").to_path_buf();
        if !dirs.contains(&dir) {
            dirs.push(dir);
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

/// A tool `scripts/test` installs under `.tools/` (scripts/lib/registries.sh).
pub fn tool(path: &str, installs: &str) -> PathBuf {
    let found = workspace().join(".tools").join(path);
    assert!(
        found.exists(),
        "{} is missing: run scripts/test (it installs {installs} there)",
        found.display()
    );
    found
}

/// An npm registry on loopback (verdaccio: its own storage, no uplink, anyone may publish);
/// stopped when dropped.
pub struct NpmRegistry {
    child: Child,
    pub url: String,
    dir: tempfile::TempDir,
}

impl NpmRegistry {
    pub fn start() -> NpmRegistry {
        let verdaccio = tool("verdaccio/node_modules/.bin/verdaccio", "verdaccio");
        let dir = tempfile::tempdir().expect("a temp dir");
        std::fs::write(
            dir.path().join("config.yaml"),
            "storage: ./storage\nuplinks: {}\npackages:\n  '**':\n    access: $all\n    publish: $all\n\
             max_body_size: 500mb\nweb: { enable: false }\nlog: { type: stdout, format: pretty, level: warn }\n\
             auth:\n  htpasswd:\n    file: ./htpasswd\n",
        )
        .expect("verdaccio's config");
        let port = test_support::process::free_port();
        let child = Command::new(verdaccio)
            .arg("--config")
            .arg(dir.path().join("config.yaml"))
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .env("PATH", no_rust_path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("verdaccio");
        let registry = NpmRegistry {
            child,
            url: format!("http://127.0.0.1:{port}/"),
            dir,
        };
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "verdaccio did not listen on {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        // npm publishes only with a token; verdaccio lets anyone publish here.
        std::fs::write(
            registry.npmrc(),
            format!("//127.0.0.1:{port}/:_authToken=release-test\n"),
        )
        .expect("an npmrc");
        registry
    }

    fn npmrc(&self) -> PathBuf {
        self.dir.path().join("npmrc")
    }

    pub fn publish(&self, tarball: &Path) {
        run_ok(
            self.npm(&mut Command::new("npm"), self.dir.path())
                .args(["publish", "--tag", "latest"])
                .arg(tarball),
        );
    }

    /// `command` (npm or npx) set up as on a machine that knows only this registry: an empty
    /// environment, its own HOME and cache, every other address behind a proxy that does not
    /// answer, and no Rust on PATH.
    pub fn npm<'a>(&self, command: &'a mut Command, home: &Path) -> &'a mut Command {
        command
            .env_clear()
            .env("PATH", no_rust_path())
            .env("HOME", home)
            .env("npm_config_registry", &self.url)
            .env("npm_config_userconfig", self.npmrc())
            .env("npm_config_cache", home.join(".npm"))
            .env("npm_config_proxy", "http://127.0.0.1:9")
            .env("npm_config_https_proxy", "http://127.0.0.1:9")
            .env("npm_config_noproxy", "127.0.0.1")
            .env("npm_config_update_notifier", "false")
            .env("npm_config_audit", "false")
            .env("npm_config_fund", "false")
            .current_dir(home)
    }
}

impl Drop for NpmRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `done` every quarter second for up to `limit`; panics naming `what` and `context()`.
pub fn wait_for(
    what: &str,
    limit: std::time::Duration,
    context: impl Fn() -> String,
    mut done: impl FnMut() -> bool,
) {
    let started = std::time::Instant::now();
    while !done() {
        assert!(
            started.elapsed() < limit,
            "waited {limit:?} for {what}:\n{}",
            context()
        );
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// One HTTP call; (status, JSON body), (0, null) when nothing answers.
pub fn call(method: &str, url: &str, body: Option<&serde_json::Value>) -> (u16, serde_json::Value) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let mut request = reqwest::Client::new().request(method.parse().expect("a method"), url);
        if let Some(body) = body {
            request = request.json(body);
        }
        match request.send().await {
            Ok(response) => {
                let code = response.status().as_u16();
                (
                    code,
                    response.json().await.unwrap_or(serde_json::Value::Null),
                )
            }
            Err(_) => (0, serde_json::Value::Null),
        }
    })
}
