//! `stripe-sync start --foreground` in a temporary data directory, for real: the Temporal dev
//! server, `sync-service serve` and `worker` come up; a pipeline created through the API reaches
//! `ready` with the simulator's rows; `status` reports it; `stop` then `start` keeps it and its
//! workflow. A supervisor killed with -9 takes its processes (and theirs) with it, a later start
//! or stop ends whatever an earlier generation left, and a port in use fails the start, named.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use stripe_fake::{Config, FakeStripe, Scope};
use test_support::process::free_port;
use test_support::{TestDb, bin_path};

fn stripe_sync(args: &[&str]) -> Output {
    Command::new(bin_path("stripe-sync"))
        .args(args)
        .env_remove("SYNC_SERVICE_DATABASE_URL")
        .env_remove("STRIPE_SYNC_DATA_DIR")
        .output()
        .unwrap()
}

fn start(dir: &Path, db: &TestDb, port: u16, log: &Path) -> Child {
    start_command(dir, db, port, &test_support::temporal::cli_path(), log)
        .spawn()
        .unwrap()
}

fn start_command(dir: &Path, db: &TestDb, port: u16, temporal: &Path, log: &Path) -> Command {
    let log = std::fs::File::create(log).unwrap();
    let mut command = Command::new(bin_path("stripe-sync"));
    command
        .args(["start", "--foreground", "--data-dir"])
        .arg(dir)
        .args(["--database-url", db.url(), "--port", &port.to_string()])
        .arg("--temporal")
        .arg(temporal)
        .env_remove("STRIPE_SYNC_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    command
}

fn status(dir: &Path) -> (Option<i32>, Value) {
    let out = stripe_sync(&["status", "--data-dir", dir.to_str().unwrap()]);
    let value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.code(), value)
}

fn wait(what: &str, timeout: Duration, log: &Path, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < timeout,
            "waited {timeout:?} for {what}; supervisor:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Waits until `status` says the bundle serves; fails at once, with its log, if the supervisor
/// exits meanwhile.
fn wait_serving(what: &str, supervisor: &mut Child, data: &Path, log: &Path) {
    wait(what, Duration::from_secs(120), log, || {
        if let Some(exit) = supervisor.try_wait().unwrap() {
            panic!(
                "the supervisor exited ({exit}) before serving; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        status(data).0 == Some(0)
    });
}

fn call(method: &str, url: &str, body: Option<&Value>) -> (u16, Value) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _ = rustls::crypto::ring::default_provider().install_default();
    runtime.block_on(async {
        let mut request = reqwest::Client::new().request(method.parse().unwrap(), url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap();
        let code = response.status().as_u16();
        (code, response.json().await.unwrap_or(Value::Null))
    })
}

fn row_count(db: &TestDb) -> i64 {
    db.client()
        .query_one("SELECT count(*) FROM bundle.customers", &[])
        .map(|r| r.get(0))
        .unwrap_or(-1)
}

#[test]
fn start_foreground_runs_a_pipeline_to_ready_and_stop_then_start_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("supervisor.log");
    let db = TestDb::new();
    let fake = FakeStripe::start(Config {
        seed: 3,
        scale: 0.0,
        objects: vec![("customers".into(), 200)],
        keys: vec!["sk_test_bundle".to_owned()],
        ..Default::default()
    })
    .unwrap();
    let port = lasting_port();
    let api = format!("http://127.0.0.1:{port}");

    // Nothing yet.
    assert_eq!(status(&data).0, Some(3));
    let mut supervisor = start(&data, &db, port, &log);
    wait(
        "the bundle to serve",
        Duration::from_secs(120),
        &log,
        || status(&data).0 == Some(0),
    );
    // A second start for the same data directory is refused.
    let again = stripe_sync(&[
        "start",
        "--foreground",
        "--data-dir",
        data.to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already runs"));

    let body = json!({
        "id": "bundle-1",
        "source": {"config": {"api_key": "sk_test_bundle", "base_url": fake.base_url()}},
        "destination": {"config": {"url": db.url(), "schema": "bundle"}},
        "streams": ["customers"],
    });
    let (code, created) = call("POST", &format!("{api}/pipelines"), Some(&body));
    assert_eq!(code, 201, "{created}");
    let customers = fake.objects(Scope::test(None), "customers").unwrap().len() as i64;
    wait(
        "the pipeline to be ready",
        Duration::from_secs(120),
        &log,
        || call("GET", &format!("{api}/pipelines/bundle-1"), None).1["status"] == "ready",
    );
    assert_eq!(row_count(&db), customers);
    let (code, state) = status(&data);
    assert_eq!(code, Some(0), "{state}");
    assert_eq!(state["pipelines"], 1, "{state}");
    assert_eq!(state["api"], api.as_str(), "{state}");

    // Stop: the supervisor ends cleanly, and status says so.
    let stopped = stripe_sync(&["stop", "--data-dir", data.to_str().unwrap()]);
    assert!(
        stopped.status.success(),
        "{}",
        String::from_utf8_lossy(&stopped.stderr)
    );
    let exit = supervisor.wait().unwrap();
    assert!(exit.success(), "the supervisor exited {exit}");
    let (code, state) = status(&data);
    assert_eq!(
        (code, &state["running"]),
        (Some(3), &json!(false)),
        "{state}"
    );

    // Start again (the settings are kept: no flags but the data directory and the CLI): the
    // pipeline is there and its workflow still works.
    let log2 = dir.path().join("supervisor-2.log");
    let mut supervisor = Command::new(bin_path("stripe-sync"))
        .args([
            "start",
            "--foreground",
            "--data-dir",
            data.to_str().unwrap(),
        ])
        .env_remove("SYNC_SERVICE_DATABASE_URL")
        .env_remove("STRIPE_SYNC_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log2).unwrap())
        .spawn()
        .unwrap();
    wait(
        "the bundle to serve again",
        Duration::from_secs(120),
        &log2,
        || status(&data).0 == Some(0),
    );
    assert_eq!(
        call("GET", &format!("{api}/pipelines/bundle-1"), None).1["status"],
        "ready"
    );
    fake.create(
        Scope::test(None),
        "customers",
        json!({"email": "after-restart@example.com"}),
    )
    .unwrap();
    // The step's messages stream back; the step has run when the answer ends.
    assert_eq!(
        call("POST", &format!("{api}/pipelines/bundle-1/sync"), None).0,
        200
    );
    wait("the new customer", Duration::from_secs(60), &log2, || {
        row_count(&db) == customers + 1
    });
    let logs = stripe_sync(&["logs", "--data-dir", data.to_str().unwrap(), "--lines", "5"]);
    assert!(String::from_utf8_lossy(&logs.stdout).contains("worker.log"));
    assert!(
        stripe_sync(&["stop", "--data-dir", data.to_str().unwrap()])
            .status
            .success()
    );
    assert!(supervisor.wait().unwrap().success());
}

/// A free port below the kernel's ephemeral range (32768 and up here), for an API port a test
/// starts a bundle on twice: no outgoing connection takes it as its local port in between.
fn lasting_port() -> u16 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    (0..20_000)
        .map(|step| 10_000 + ((seed + step) % 20_000) as u16)
        .find(|port| std::net::TcpListener::bind(("127.0.0.1", *port)).is_ok())
        .unwrap()
}

/// A Temporal CLI that forks: the dev server runs as the supervisor's grandchild, under a shell
/// that waits for it (as a wrapper script, or a CLI that starts its server as a subprocess).
fn forking_temporal(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("temporal-forking");
    let script = format!(
        "#!/bin/sh\n\"{}\" \"$@\" &\nwait $!\n",
        test_support::temporal::cli_path().display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A process's state and name from /proc: None once it is gone (a zombie counts as gone).
fn process_name(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, tail) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_owned();
    (tail.split_whitespace().next()? != "Z").then_some(name)
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Every process below `pid`, with its name.
fn descendants(pid: u32) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    let mut next = vec![pid];
    while let Some(parent) = next.pop() {
        for child in test_support::process::children_of(parent) {
            if let Some(name) = process_name(child) {
                found.push((child, name));
            }
            next.push(child);
        }
    }
    found
}

/// The processes a test saw in a bundle, killed when the test ends (so a failing test leaves
/// nothing behind); a pid is killed only while it still runs the program it ran.
struct Seen(Vec<(u32, String)>);

impl Drop for Seen {
    fn drop(&mut self) {
        for (pid, name) in &self.0 {
            if process_name(*pid).as_deref() == Some(name) {
                test_support::process::kill9(*pid);
            }
        }
    }
}

/// The dev server when it runs under the forking wrapper: a `temporal` that is not a child of
/// the supervisor.
fn dev_server(supervisor: u32, family: &[(u32, String)]) -> u32 {
    family
        .iter()
        .find(|(pid, name)| name == "temporal" && parent_of(*pid) != Some(supervisor))
        .unwrap_or_else(|| panic!("no grandchild temporal among {family:?}"))
        .0
}

fn leftover_pids(state: &Value) -> Vec<u64> {
    state["leftover"]
        .as_array()
        .unwrap_or_else(|| panic!("no leftover list in {state}"))
        .iter()
        .filter_map(|p| p["pid"].as_u64())
        .collect()
}

#[test]
fn kill_9_of_the_supervisor_ends_its_processes_and_theirs_and_status_stop_start_tell_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("supervisor.log");
    let db = TestDb::new();
    let port = lasting_port();
    let temporal = forking_temporal(dir.path());
    let mut supervisor = start_command(&data, &db, port, &temporal, &log)
        .spawn()
        .unwrap();
    let mut seen = Seen(Vec::new());
    wait_serving("the bundle to serve", &mut supervisor, &data, &log);
    seen.0 = descendants(supervisor.id());
    let server = dev_server(supervisor.id(), &seen.0);
    for name in ["temporal", "sync-service"] {
        assert!(
            seen.0.iter().any(|(_, n)| n == name),
            "no {name} among {:?}",
            seen.0
        );
    }

    test_support::process::kill9(supervisor.id());
    supervisor.wait().unwrap();
    let started = Instant::now();
    loop {
        let left: Vec<_> = seen
            .0
            .iter()
            .filter(|(pid, _)| process_name(*pid).is_some())
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "60 s after kill -9 of the supervisor, still running: {left:?} (the dev server was {server})"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    let (code, state) = status(&data);
    assert_eq!(code, Some(3), "{state}");
    assert_eq!(state["running"], false, "{state}");
    assert_eq!(leftover_pids(&state), Vec::<u64>::new(), "{state}");
    let stopped = stripe_sync(&["stop", "--data-dir", data.to_str().unwrap()]);
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(
        String::from_utf8_lossy(&stopped.stdout).contains("not running"),
        "{stopped:?}"
    );

    // A new generation starts on the same ports.
    let log2 = dir.path().join("supervisor-2.log");
    let mut supervisor = start_command(&data, &db, port, &temporal, &log2)
        .spawn()
        .unwrap();
    wait_serving("the bundle to serve again", &mut supervisor, &data, &log2);
    seen.0.extend(descendants(supervisor.id()));
    let stopped = stripe_sync(&["stop", "--data-dir", data.to_str().unwrap()]);
    assert!(stopped.status.success(), "{stopped:?}");
    let exit = supervisor.wait().unwrap();
    assert!(
        exit.success(),
        "the supervisor exited {exit}: {}",
        std::fs::read_to_string(&log2).unwrap_or_default()
    );
}

/// kill -9 of the supervisor's whole process group (as a CI runner ends a job) leaves the dev
/// server under the forking wrapper running: nothing of the supervisor's is left to end it.
/// `status` names it, and `start` and `stop` end it.
#[test]
fn start_and_stop_end_what_an_earlier_generation_left_running() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = TestDb::new();
    let port = lasting_port();
    let temporal = forking_temporal(dir.path());
    let mut seen = Seen(Vec::new());
    let kill_group = |supervisor: &mut Child| {
        // SAFETY: kill(2) on the process group this test started.
        unsafe { libc::kill(-(supervisor.id() as i32), libc::SIGKILL) };
        supervisor.wait().unwrap();
    };

    let log = dir.path().join("supervisor.log");
    let mut supervisor = start_command(&data, &db, port, &temporal, &log)
        .process_group(0)
        .spawn()
        .unwrap();
    wait_serving("the bundle to serve", &mut supervisor, &data, &log);
    seen.0 = descendants(supervisor.id());
    let first = dev_server(supervisor.id(), &seen.0);
    kill_group(&mut supervisor);
    let (code, state) = status(&data);
    assert_eq!(
        (code, &state["running"]),
        (Some(3), &json!(false)),
        "{state}"
    );
    assert!(
        leftover_pids(&state).contains(&u64::from(first)),
        "status does not name the dev server left running ({first}): {state}"
    );

    let log2 = dir.path().join("supervisor-2.log");
    let mut supervisor = start_command(&data, &db, port, &temporal, &log2)
        .process_group(0)
        .spawn()
        .unwrap();
    wait_serving("the bundle to serve again", &mut supervisor, &data, &log2);
    assert_eq!(process_name(first), None, "start left the old dev server");
    let said = std::fs::read_to_string(&log2).unwrap();
    assert!(said.contains(&format!("pid {first}")), "{said}");
    let family = descendants(supervisor.id());
    let second = dev_server(supervisor.id(), &family);
    seen.0.extend(family);
    kill_group(&mut supervisor);

    let stopped = stripe_sync(&["stop", "--data-dir", data.to_str().unwrap()]);
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(
        String::from_utf8_lossy(&stopped.stdout).contains(&format!("pid {second}")),
        "{stopped:?}"
    );
    assert_eq!(process_name(second), None, "stop left the dev server");
    let (code, state) = status(&data);
    assert_eq!(code, Some(3), "{state}");
    assert_eq!(leftover_pids(&state), Vec::<u64>::new(), "{state}");
}

/// Runs a command to its end, or fails the test (killing it and its processes) after `limit`.
fn finish_within(mut command: Command, limit: Duration) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let (out, err) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = command
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _seen = Seen(descendants(child.id()));
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "still running after {limit:?}; stdout: {}\nstderr: {}",
                std::fs::read_to_string(&out).unwrap_or_default(),
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    Output {
        status,
        stdout: std::fs::read(&out).unwrap(),
        stderr: std::fs::read(&err).unwrap(),
    }
}

fn assert_refused_naming(out: &Output, port: u16, what: &str) {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    for needle in [
        format!("port {port}"),
        "in use".to_owned(),
        what.to_owned(),
        format!("pid {}", std::process::id()),
    ] {
        assert!(stderr.contains(&needle), "no {needle:?} in: {stderr}");
    }
    assert!(!stdout.contains("API"), "reported as started: {stdout}");
}

#[test]
fn start_on_an_api_port_in_use_fails_naming_it_before_reporting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let db = TestDb::new();
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = holder.local_addr().unwrap().port();
    let log = dir.path().join("supervisor.log");
    let command = start_command(&data, &db, busy, &test_support::temporal::cli_path(), &log);
    let out = finish_within(command, Duration::from_secs(60));
    assert_refused_naming(&out, busy, "--port");
    let (code, state) = status(&data);
    assert_eq!(
        (code, &state["running"]),
        (Some(3), &json!(false)),
        "{state}"
    );

    // Without --foreground too, before a user service is installed (HOME and the session bus
    // point nowhere, so no real service manager is reached).
    let home = dir.path().join("home");
    let out = finish_within(
        {
            let mut command = Command::new(bin_path("stripe-sync"));
            command
                .args(["start", "--data-dir"])
                .arg(&data)
                .args(["--database-url", db.url(), "--port", &busy.to_string()])
                .arg("--temporal")
                .arg(test_support::temporal::cli_path())
                .env("HOME", &home)
                .env_remove("XDG_RUNTIME_DIR")
                .env_remove("DBUS_SESSION_BUS_ADDRESS")
                .env_remove("STRIPE_SYNC_DATA_DIR");
            command
        },
        Duration::from_secs(60),
    );
    assert_refused_naming(&out, busy, "--port");
    assert!(!home.join(".config/systemd").exists());
}

/// Temporal's ports are kept in ports.json across starts; one in use fails the start, named,
/// and nothing is left listening on the others.
#[test]
fn start_on_a_temporal_port_in_use_fails_naming_it_before_reporting_anything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = TestDb::new();
    for (i, key) in ["temporal", "temporal_http", "temporal_metrics"]
        .into_iter()
        .enumerate()
    {
        let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let busy = holder.local_addr().unwrap().port();
        let mut ports = json!({
            "api": free_port(),
            "temporal": free_port(),
            "temporal_http": free_port(),
            "temporal_metrics": free_port(),
        });
        ports[key] = json!(busy);
        std::fs::write(data.join("ports.json"), ports.to_string()).unwrap();
        let log = dir.path().join(format!("supervisor-{i}.log"));
        let api = ports["api"].as_u64().unwrap() as u16;
        let command = start_command(&data, &db, api, &test_support::temporal::cli_path(), &log);
        let out = finish_within(command, Duration::from_secs(90));
        assert_refused_naming(&out, busy, "Temporal");
        for other in ["api", "temporal", "temporal_http", "temporal_metrics"] {
            let port = ports[other].as_u64().unwrap() as u16;
            if port != busy {
                assert!(
                    std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
                    "{other} port {port} is listened on after a refused start"
                );
            }
        }
    }
}
