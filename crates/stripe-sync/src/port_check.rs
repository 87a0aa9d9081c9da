//! Before anything starts: every port the bundle will listen on is free, or the start fails
//! naming the port, what it is for, and (on Linux) the process that holds it.

use std::net::{Ipv4Addr, TcpListener};

use anyhow::{Result, bail};

/// A port the bundle listens on, what for (`the API and console's, --port`), and what to do
/// when it is taken.
pub struct Wanted {
    pub port: u16,
    pub what: String,
    pub remedy: String,
}

/// Fails naming each port that is taken (or taken twice by the bundle itself).
pub fn ensure_free(wanted: &[Wanted]) -> Result<()> {
    let mut problems = Vec::new();
    for (i, want) in wanted.iter().enumerate() {
        if let Some(earlier) = wanted[..i].iter().find(|w| w.port == want.port) {
            problems.push(format!(
                "port {} is both {} and {}",
                want.port, earlier.what, want.what
            ));
            continue;
        }
        // Bound and closed at once: what the process that needs it does next.
        match TcpListener::bind((Ipv4Addr::LOCALHOST, want.port)) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => problems.push(format!(
                "port {} ({}) is in use{}: {}",
                want.port,
                want.what,
                holder(want.port)
                    .map(|h| format!(" by {h}"))
                    .unwrap_or_default(),
                want.remedy
            )),
            Err(e) => problems.push(format!(
                "port {} ({}) cannot be listened on: {e}: {}",
                want.port, want.what, want.remedy
            )),
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    bail!(
        "cannot start on 127.0.0.1: {}; nothing was started",
        problems.join("; ")
    )
}

/// Who holds `port`, as `pid 12 (python3)`, or `a connection of pid 12 (python3)` when only a
/// connection has it as its local port: the socket's inode from /proc/net/tcp{,6}, then the
/// process with a descriptor on it. None where /proc does not say (another user's process, a
/// closing connection, or not Linux).
fn holder(port: u16) -> Option<String> {
    let sockets: Vec<Socket> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|path| std::fs::read_to_string(path).ok())
        .flat_map(|table| sockets_on(&table, port))
        .collect();
    let owner = |listening: bool| {
        let targets: Vec<String> = sockets
            .iter()
            .filter(|s| s.listening == listening)
            .map(|s| format!("socket:[{}]", s.inode))
            .collect();
        owner_of(&targets)
    };
    match owner(true) {
        Some(process) => Some(process),
        None => owner(false).map(|process| format!("a connection of {process}")),
    }
}

/// A socket in a /proc/net/tcp table.
#[derive(Debug, PartialEq)]
struct Socket {
    listening: bool,
    inode: String,
}

/// The sockets whose local port is `port` in a /proc/net/tcp table: after a header line,
/// `sl local_address rem_address st … inode`, the address as `HEX_IP:HEX_PORT`, LISTEN as `0A`;
/// inode 0 is a connection no process holds any more (closing).
fn sockets_on(table: &str, port: u16) -> Vec<Socket> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit_once(':')?.1;
            let listening = *fields.get(3)? == "0A";
            let inode = *fields.get(9)?;
            (u16::from_str_radix(local_port, 16).ok()? == port && inode != "0").then(|| Socket {
                listening,
                inode: inode.to_owned(),
            })
        })
        .collect()
}

/// The process with a descriptor on one of `targets` (`socket:[inode]`), as `pid 12 (name)`.
fn owner_of(targets: &[String]) -> Option<String> {
    if targets.is_empty() {
        return None;
    }
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let holds = std::fs::read_dir(entry.path().join("fd"))
                .ok()?
                .flatten()
                .filter_map(|fd| std::fs::read_link(fd.path()).ok())
                .any(|link| targets.iter().any(|t| link.as_os_str() == t.as_str()));
            holds.then(|| {
                let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
                format!("pid {pid} ({})", name.trim())
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockets_are_found_by_local_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
             0: 0100007F:0FB4 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0\n\
             1: 0100007F:0FB4 0100007F:D1C2 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1\n\
             2: 0100007F:0FB4 0100007F:D1C3 06 00000000:00000000 03:00000F9F 00000000     0        0 0 3 0000000000000000\n\
             3: 0100007F:D1C2 0100007F:0FB4 01 00000000:00000000 00:00000000 00000000     0        0 4444 1 0000000000000000 20 4 30 10 -1\n";
        let socket = |listening, inode: &str| Socket {
            listening,
            inode: inode.to_owned(),
        };
        assert_eq!(
            sockets_on(table, 4020),
            vec![socket(true, "4242"), socket(false, "4343")]
        );
        assert_eq!(sockets_on(table, 0xD1C2), vec![socket(false, "4444")]);
        assert!(sockets_on(table, 4021).is_empty());
    }

    #[test]
    fn a_port_in_use_is_named_with_its_holder() {
        let held = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = held.local_addr().unwrap().port();
        let error = ensure_free(&[Wanted {
            port,
            what: "the API's, --port".into(),
            remedy: "choose another".into(),
        }])
        .unwrap_err()
        .to_string();
        let named = format!(
            "port {port} (the API's, --port) is in use by pid {} (",
            std::process::id()
        );
        assert!(error.contains(&named), "{error}");
        assert!(error.contains("): choose another"), "{error}");
    }
}
