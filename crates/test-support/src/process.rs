//! Processes the tests spawned: their children, signals, a port to listen on, and a replayable
//! random choice of when to hit them.

/// The children of a process, from /proc (no procps needed), lowest pid first.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut kids: Vec<u32> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|text| {
            text.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect();
    kids.sort();
    kids
}

/// The child of `pid` whose command line holds `name`.
pub fn child_named(pid: u32, name: &str) -> Option<u32> {
    children_of(pid).into_iter().find(|kid| {
        std::fs::read(format!("/proc/{kid}/cmdline"))
            .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(name))
    })
}

/// The child of `pid` that runs connector `name`'s `subcommand` (a connector also runs short
/// subcommands, such as `spec` and `check`, before its long one).
pub fn child_running(pid: u32, name: &str, subcommand: &str) -> Option<u32> {
    children_of(pid).into_iter().find(|kid| {
        std::fs::read(format!("/proc/{kid}/cmdline")).is_ok_and(|cmdline| {
            let args: Vec<_> = cmdline.split(|b| *b == 0).collect();
            args.first()
                .is_some_and(|program| String::from_utf8_lossy(program).ends_with(name))
                && args.contains(&subcommand.as_bytes())
        })
    })
}

/// Sends `signal`; true when it was delivered.
pub fn signal(pid: u32, signal: i32) -> bool {
    // SAFETY: kill(2) on a pid the test spawned (or its child); at worst it is already gone.
    unsafe { libc::kill(pid as i32, signal) == 0 }
}

/// SIGKILL; true when the signal was delivered.
pub fn kill9(pid: u32) -> bool {
    signal(pid, libc::SIGKILL)
}

/// SIGTERM; true when the signal was delivered.
pub fn terminate(pid: u32) -> bool {
    signal(pid, libc::SIGTERM)
}

/// A loopback port free now, for a process to listen on (another may take it meanwhile; the
/// tests that use it bind soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_or(0, |a| a.port())
}

/// A tiny deterministic random generator, so a failure replays.
pub struct Lcg(pub u64);

impl Lcg {
    /// A number below `below`.
    pub fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// Waits for `child` (stdout and stderr piped) at most `limit`. Past it the test fails with
/// what each process of the child's tree was doing (state, kernel wait channel, threads), and
/// the tree is killed: a hang costs one test, not the whole suite's time.
pub fn finish_within(
    mut child: std::process::Child,
    limit: std::time::Duration,
) -> crate::Finished {
    use std::io::Read;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let stdout = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let started = std::time::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() < limit => {
                std::thread::sleep(std::time::Duration::from_millis(50))
            }
            _ => {
                let tree = describe_tree(child.id());
                for pid in descendants(child.id()) {
                    kill9(pid);
                }
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "still running after {limit:?}; its processes were:\n{tree}\nstderr so far:\n{}",
                    stderr.join().unwrap_or_default()
                );
            }
        }
    };
    crate::Finished {
        code: status.code(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// `pid` and every process below it.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut all = vec![pid];
    let mut at = 0;
    while at < all.len() {
        let kids = children_of(all[at]);
        all.extend(kids);
        at += 1;
    }
    all
}

/// One line per process of the tree and per thread: pid, command, state and wait channel.
fn describe_tree(root: u32) -> String {
    let read = |path: String| std::fs::read_to_string(path).unwrap_or_default();
    let mut lines = Vec::new();
    for pid in descendants(root) {
        let cmdline = read(format!("/proc/{pid}/cmdline")).replace('\0', " ");
        lines.push(format!("{pid} {}", cmdline.trim()));
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let stat = read(task.path().join("stat").display().to_string());
            let state = stat
                .rfind(')')
                .and_then(|end| stat[end + 1..].split_whitespace().next().map(str::to_owned))
                .unwrap_or_default();
            let name = read(task.path().join("comm").display().to_string());
            let wchan = read(task.path().join("wchan").display().to_string());
            lines.push(format!(
                "  thread {} {} state {state} waiting in {wchan}",
                task.file_name().to_string_lossy(),
                name.trim()
            ));
        }
    }
    lines.join("\n")
}
