//! A throwaway Postgres cluster of its own, for tests that need server settings the shared
//! server does not have (TLS with certificates the test made, client-certificate auth). Built
//! with the machine's server binaries (`/usr/lib/postgresql/*/bin`, which `scripts/test`
//! installs when missing) and stopped when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running cluster.
pub struct Cluster {
    dir: tempfile::TempDir,
    bindir: PathBuf,
    port: u16,
    /// When the tests run as root, the server runs as `postgres`.
    as_postgres: bool,
}

/// The newest server binaries on the machine.
fn server_bindir() -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|p| p.join("initdb").exists())
        .collect();
    dirs.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop().unwrap_or_else(|| {
        panic!("no Postgres server binaries under /usr/lib/postgresql/*/bin; scripts/test installs them (apt-get install postgresql)")
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

fn is_root() -> bool {
    // SAFETY: getuid has no preconditions and cannot fail.
    unsafe { libc::getuid() == 0 }
}

impl Cluster {
    /// Initialises a cluster, writes `files` (name, contents) into its data directory (owned
    /// by the server, mode 0600), appends `conf` lines to postgresql.conf, replaces pg_hba.conf
    /// with `hba`, and starts it on a free port of 127.0.0.1.
    pub fn start(files: &[(&str, &[u8])], conf: &[&str], hba: &str) -> Cluster {
        let bindir = server_bindir();
        let dir = tempfile::Builder::new()
            .prefix("stripe-sync-cluster-")
            .tempdir()
            .unwrap_or_else(|e| panic!("tempdir: {e}"));
        let as_postgres = is_root();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap_or_else(|e| panic!("{e}"));
        let cluster = Cluster {
            dir,
            bindir,
            port: free_port(),
            as_postgres,
        };
        cluster.chown(cluster.dir.path());
        cluster.chown(&data);
        cluster.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap_or_default(),
                "--auth=trust",
                "--username=postgres",
                "-E",
                "UTF8",
            ],
        );
        for (name, contents) in files {
            let path = data.join(name);
            std::fs::write(&path, contents).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            set_private(&path);
            cluster.chown(&path);
        }
        let mut settings =
            std::fs::read_to_string(data.join("postgresql.conf")).unwrap_or_default();
        settings.push_str("\nfsync = off\nlisten_addresses = '127.0.0.1'\n");
        for line in conf {
            settings.push_str(line);
            settings.push('\n');
        }
        std::fs::write(data.join("postgresql.conf"), settings).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap_or_else(|e| panic!("{e}"));
        let options = format!("-p {} -k {}", cluster.port, cluster.dir.path().display());
        cluster.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap_or_default(),
                "-l",
                cluster
                    .dir
                    .path()
                    .join("server.log")
                    .to_str()
                    .unwrap_or_default(),
                "-w",
                "-o",
                &options,
                "start",
            ],
        );
        cluster
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A file in the test's own scratch space (readable by the tests, not in the data dir).
    pub fn scratch(&self, name: &str, contents: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        set_private(&path);
        path
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn chown(&self, path: &Path) {
        if self.as_postgres {
            let status = Command::new("chown")
                .args(["postgres", path.to_str().unwrap_or_default()])
                .status();
            assert!(
                status.is_ok_and(|s| s.success()),
                "chown postgres {}",
                path.display()
            );
        }
    }

    fn run(&self, program: &str, args: &[&str]) {
        let exe = self.bindir.join(program);
        let output = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        }
        .unwrap_or_else(|e| panic!("{}: {e}", exe.display()));
        assert!(
            output.status.success(),
            "{program} failed: {}{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log()
        );
    }
}

fn set_private(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let exe = self.bindir.join("pg_ctl");
        let args = [
            "-D",
            data.to_str().unwrap_or_default(),
            "-m",
            "immediate",
            "stop",
        ];
        let _ = if self.as_postgres {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&exe)
                .args(args)
                .output()
        } else {
            Command::new(&exe).args(args).output()
        };
    }
}
