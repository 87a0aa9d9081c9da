//! A running `sync-engine serve` for a test, killed when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A `sync-engine serve` that printed `listening on URL`, its stderr kept in a file.
pub struct EngineServe {
    /// The server process.
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Where its stderr goes.
    pub log: tempfile::NamedTempFile,
}

impl EngineServe {
    /// `sync-engine serve --port 0` with `extra` arguments, no token and no `PORT` from the
    /// environment, logging at info.
    pub fn start(extra: &[&str]) -> EngineServe {
        let mut cmd = Command::new(crate::bin_path("sync-engine"));
        cmd.args(["serve", "--port", "0"])
            .args(extra)
            .env_remove("SYNC_ENGINE_API_TOKEN")
            .env_remove("PORT")
            .env("RUST_LOG", "info");
        EngineServe::spawn(cmd)
    }

    /// Runs `cmd` (a serve command) and waits for its `listening on` line.
    pub fn spawn(mut cmd: Command) -> EngineServe {
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(log.reopen().expect("the log file"))
            .spawn()
            .expect("sync-engine serve starts");
        let mut first = String::new();
        if let Some(stdout) = child.stdout.take() {
            let _ = BufReader::new(stdout).read_line(&mut first);
        }
        let Some(url) = first.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            let stderr = std::fs::read_to_string(log.path()).unwrap_or_default();
            panic!("serve printed {first:?}; stderr: {stderr}");
        };
        EngineServe {
            url: url.to_owned(),
            child,
            log,
        }
    }

    /// The URL of `path` on this server.
    pub fn at(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// `127.0.0.1:PORT`, for a raw TCP connection.
    pub fn address(&self) -> &str {
        self.url.trim_start_matches("http://")
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }
}

impl Drop for EngineServe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
