use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The path of a workspace binary in the target directory of the running test.
pub fn bin_path(name: &str) -> PathBuf {
    // Test executables live in <target>/<profile>/deps/; binaries in <target>/<profile>/.
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current_exe: {e}"));
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap_or_else(|| panic!("unexpected test path {}", exe.display()));
    let path = profile_dir.join(name);
    assert!(
        path.exists(),
        "{} is not built; run `cargo build --bins` (scripts/test does)",
        path.display()
    );
    path
}

/// A workspace binary to run with arguments, environment and stdin.
pub struct Bin {
    command: Command,
    stdin: Option<Vec<u8>>,
    files: Option<tempfile::TempDir>,
}

/// What a finished run printed.
#[derive(Debug)]
pub struct Finished {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
}

impl Bin {
    /// The workspace binary `name` (see [`bin_path`]), with `RUST_LOG` unset so it logs at its
    /// default level.
    pub fn new(name: &str) -> Bin {
        let mut command = Command::new(bin_path(name));
        command.env_remove("RUST_LOG");
        Bin {
            command,
            stdin: None,
            files: None,
        }
    }

    /// Adds one argument.
    pub fn arg(mut self, arg: impl AsRef<std::ffi::OsStr>) -> Bin {
        self.command.arg(arg);
        self
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<std::ffi::OsStr>>(mut self, args: I) -> Bin {
        self.command.args(args);
        self
    }

    /// Adds `--flag <json>` with the value serialised inline.
    pub fn json(self, flag: &str, value: &Value) -> Bin {
        self.arg(format!("--{flag}")).arg(value.to_string())
    }

    /// Adds `--flag <path>` with the value written to a temporary file (for values too large
    /// for a command line).
    pub fn json_file(mut self, flag: &str, value: &Value) -> Bin {
        let dir = self
            .files
            .get_or_insert_with(|| tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}")));
        let path = dir.path().join(format!("{flag}.json"));
        std::fs::write(&path, value.to_string())
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        self.arg(format!("--{flag}")).arg(path)
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Bin {
        self.command.env(key, value);
        self
    }

    /// Bytes written to its stdin, which is then closed (else stdin is empty).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Bin {
        self.stdin = Some(bytes.into());
        self
    }

    /// The underlying command, for settings the builder does not cover.
    pub fn command(&mut self) -> &mut Command {
        &mut self.command
    }

    /// Runs to completion and captures stdout and stderr.
    pub fn run(mut self) -> Finished {
        self.command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            });
        let mut child = self
            .command
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {:?}: {e}", self.command.get_program()));
        if let Some(bytes) = self.stdin.take() {
            let mut stdin = child.stdin.take().expect("stdin is piped");
            // Writing on a thread avoids a deadlock when the child fills its stdout first.
            std::thread::spawn(move || {
                let _ = stdin.write_all(&bytes);
            });
        }
        child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("wait: {e}"))
            .into()
    }
}

impl From<Output> for Finished {
    fn from(output: Output) -> Finished {
        Finished {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Finished {
    /// stdout parsed as JSON lines (panics on a line that is not JSON: stdout is protocol only).
    pub fn messages(&self) -> Vec<Value> {
        lines_of(&self.stdout)
    }

    /// The messages of one type.
    pub fn of_type(&self, kind: &str) -> Vec<Value> {
        self.messages()
            .into_iter()
            .filter(|m| m["type"] == kind)
            .map(|m| m[kind].clone())
            .collect()
    }
}

/// Parses NDJSON text, panicking with the offending line.
pub fn lines_of(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l}"))
        })
        .collect()
}

/// Runs a command to its end and fails the test, showing its stderr, unless it succeeded.
pub fn succeed(command: &mut Command) -> std::process::Output {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
