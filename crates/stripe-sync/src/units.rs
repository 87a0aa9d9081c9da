//! Without `--foreground`, `start` installs the bundle as a user service that runs
//! `stripe-sync start --foreground`: a systemd user unit on Linux, a launchd agent on macOS.
//! The unit carries only the data directory; the settings stay in its private settings.json.
//! Stopping sends SIGTERM to the supervisor alone (`KillMode=mixed`), which stops the rest in
//! order.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The unit's name (one bundle per user).
pub const NAME: &str = "stripe-sync";

/// The systemd user unit for `exe` and `data_dir`.
pub fn systemd_unit(exe: &Path, data_dir: &Path) -> String {
    format!(
        "[Unit]\n\
         Description=stripe-sync: Temporal dev server, sync-service serve and worker\n\
         After=network-online.target\n\
         \n\
         [Service]\n\
         ExecStart={} start --foreground --data-dir {}\n\
         KillMode=mixed\n\
         Restart=on-failure\n\
         RestartSec=5\n\
         TimeoutStopSec=90\n\
         \n\
         [Install]\n\
         WantedBy=default.target\n",
        quoted(exe),
        quoted(data_dir)
    )
}

/// The launchd agent for `exe` and `data_dir`.
pub fn launchd_plist(exe: &Path, data_dir: &Path) -> String {
    let escape = |p: &Path| {
        p.display()
            .to_string()
            .replace('&', "&amp;")
            .replace('<', "&lt;")
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">
<plist version="1.0">
<dict>
  <key>Label</key><string>com.stripe-sync</string>
  <key>ProgramArguments</key>
  <array>
    <string>{}</string><string>start</string><string>--foreground</string>
    <string>--data-dir</string><string>{}</string>
  </array>
  <key>RunAtLoad</key><true/>
  <key>KeepAlive</key><dict><key>SuccessfulExit</key><false/></dict>
  <key>StandardErrorPath</key><string>{}/logs/supervisor.log</string>
</dict>
</plist>
"#,
        escape(exe),
        escape(data_dir),
        escape(data_dir)
    )
}

/// systemd's quoting for a path with spaces.
fn quoted(path: &Path) -> String {
    let text = path.display().to_string();
    if text.contains(char::is_whitespace) {
        format!("\"{}\"", text.replace('"', "\\\""))
    } else {
        text
    }
}

fn unit_path() -> Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set")?;
    Ok(if cfg!(target_os = "macos") {
        Path::new(&home).join("Library/LaunchAgents/com.stripe-sync.plist")
    } else {
        Path::new(&home).join(".config/systemd/user/stripe-sync.service")
    })
}

/// Whether the user service is installed.
pub fn installed() -> bool {
    unit_path().is_ok_and(|p| p.exists())
}

fn run(program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("running {program}"))?;
    if !out.status.success() {
        bail!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Writes the unit and starts it through the user's service manager.
pub fn install_and_start(exe: &Path, data_dir: &Path) -> Result<PathBuf> {
    let path = unit_path()?;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let text = if cfg!(target_os = "macos") {
        launchd_plist(exe, data_dir)
    } else {
        systemd_unit(exe, data_dir)
    };
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    let started = if cfg!(target_os = "macos") {
        run("launchctl", &["load", "-w", &path.display().to_string()])
    } else {
        run("systemctl", &["--user", "daemon-reload"])
            .and_then(|()| run("systemctl", &["--user", "enable", "--now", NAME]))
    };
    started.with_context(|| {
        format!(
            "wrote {}, but the user service manager did not start it; run `stripe-sync start --foreground` instead (containers, CI)",
            path.display()
        )
    })?;
    Ok(path)
}

/// Stops the user service (when installed).
pub fn stop() -> Result<()> {
    if cfg!(target_os = "macos") {
        run(
            "launchctl",
            &["unload", &unit_path()?.display().to_string()],
        )
    } else {
        run("systemctl", &["--user", "stop", NAME])
    }
}

/// Disables and removes the unit.
pub fn remove() -> Result<()> {
    let path = unit_path()?;
    if !path.exists() {
        return Ok(());
    }
    if !cfg!(target_os = "macos") {
        let _ = run("systemctl", &["--user", "disable", NAME]);
    }
    std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    if !cfg!(target_os = "macos") {
        let _ = run("systemctl", &["--user", "daemon-reload"]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_systemd_unit_runs_the_foreground_supervisor_on_the_data_dir() {
        let unit = systemd_unit(
            Path::new("/opt/bin/stripe-sync"),
            Path::new("/home/a b/.ss"),
        );
        assert!(
            unit.contains(
                "ExecStart=/opt/bin/stripe-sync start --foreground --data-dir \"/home/a b/.ss\"\n"
            ),
            "{unit}"
        );
        // SIGTERM to the supervisor alone: it stops its processes in order.
        assert!(unit.contains("KillMode=mixed"), "{unit}");
        assert!(unit.contains("WantedBy=default.target"), "{unit}");
        assert!(
            !unit.contains("postgres"),
            "no settings in the unit: {unit}"
        );
    }

    #[test]
    fn the_launchd_agent_escapes_paths() {
        let plist = launchd_plist(Path::new("/bin/stripe-sync"), Path::new("/tmp/a&b"));
        assert!(plist.contains("<string>/tmp/a&amp;b</string>"), "{plist}");
        assert!(plist.contains("<string>--foreground</string>"), "{plist}");
    }

    /// systemd itself parses the unit: no warning, no error. Skipped (and said so) where
    /// systemd-analyze is not installed; starting the unit needs a user session this machine
    /// does not have.
    #[test]
    fn systemd_accepts_the_unit() {
        let Ok(probe) = std::process::Command::new("systemd-analyze")
            .arg("--version")
            .output()
        else {
            eprintln!("systemd-analyze is not installed: the unit is checked as text only");
            return;
        };
        assert!(probe.status.success());
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data dir");
        let exe = std::env::current_exe().unwrap();
        let path = dir.path().join("stripe-sync.service");
        std::fs::write(&path, systemd_unit(&exe, &data)).unwrap();
        let out = std::process::Command::new("systemd-analyze")
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "systemd-analyze verify: {stderr}"
        );
    }
}
