//! systemd's `Type=notify` protocol, as a service manager sees it: a Unix
//! datagram socket named by `NOTIFY_SOCKET` receives READY=1 once the
//! server accepts, RELOADING=1 (with MONOTONIC_USEC) and READY=1 around
//! each SIGHUP reload, taken or refused, and STOPPING=1 when SIGTERM
//! starts the drain.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use crate::harness::{Raw, Server, Setup};

/// The next notification, within 10 s. A receive with a timeout is not
/// restarted after a signal handler runs (signal(7)), and other tests in
/// this process have handlers: EINTR is retried until the deadline.
fn next(socket: &UnixDatagram) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        assert!(!left.is_zero(), "no notification within 10 s");
        socket.set_read_timeout(Some(left)).unwrap();
        match socket.recv(&mut buf) {
            Ok(n) => return String::from_utf8(buf[..n].to_vec()).unwrap(),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => panic!("no notification within 10 s: {e}"),
        }
    }
}

/// The message's `KEY=value` lines as (key, value).
fn fields(message: &str) -> Vec<(&str, &str)> {
    message
        .lines()
        .map(|l| l.split_once('=').unwrap_or_else(|| panic!("{message:?}")))
        .collect()
}

fn assert_ready(message: &str) {
    let f = fields(message);
    assert_eq!(f.first(), Some(&("READY", "1")), "{message:?}");
}

fn assert_stopping(message: &str) {
    let f = fields(message);
    assert_eq!(f.first(), Some(&("STOPPING", "1")), "{message:?}");
}

fn assert_reloading(message: &str) {
    let f = fields(message);
    assert_eq!(f.first(), Some(&("RELOADING", "1")), "{message:?}");
    let usec: u64 = f
        .iter()
        .find(|(k, _)| *k == "MONOTONIC_USEC")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("MONOTONIC_USEC in {message:?}"));
    assert!(usec > 0);
}

#[test]
fn ready_reloading_and_stopping_reach_the_notify_socket() {
    let sockets = tempfile::tempdir().unwrap();
    let path = sockets.path().join("notify");
    let socket = UnixDatagram::bind(&path).unwrap();
    let mut server = Server::start_with(Setup {
        watch_log: true,
        env: vec![("NOTIFY_SOCKET", path.display().to_string())],
        ..Setup::default()
    });

    let ready = next(&socket);
    assert_ready(&ready);
    assert!(ready.contains("STATUS=serving"), "{ready:?}");
    // READY=1 means accepting.
    let mut c = Raw::login(server.addr, "alice");

    server.signal("HUP");
    assert_reloading(&next(&socket));
    assert_ready(&next(&socket));
    server.wait_for_log("config reloaded", 0, Duration::from_secs(10));

    // A file that does not validate: still RELOADING=1 then READY=1 (the
    // running config goes on serving).
    let good = std::fs::read_to_string(server.config()).unwrap();
    std::fs::write(server.config(), format!("{good}\nno_such_section = 1\n")).unwrap();
    server.signal("HUP");
    assert_reloading(&next(&socket));
    assert_ready(&next(&socket));
    server.wait_for_log("config reload failed", 0, Duration::from_secs(10));
    assert!(c.cmd("NOOP").starts_with("200 "));

    server.signal("TERM");
    assert_stopping(&next(&socket));
    // The idle session is closed by the drain, and the server exits 0.
    let r = c.reply();
    assert!(r.starts_with("421 "), "{r}");
    assert!(c.closed());
    assert!(server.exit_within(Duration::from_secs(20)).success());
    // Nothing else was sent: one STOPPING=1, no READY=1 after it.
    socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1024];
    let rest = socket.recv(&mut buf);
    assert!(
        rest.as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::WouldBlock),
        "unexpected notification {:?}",
        rest.map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
    );
}

/// With `server.user`, the notification socket is connected before the
/// privilege drop: READY=1 and STOPPING=1 still arrive when the server's
/// user cannot reach the socket's path (here a directory only root may
/// enter).
#[test]
fn notifications_survive_the_privilege_drop() {
    if !crate::cli::running_as_root() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let sockets = tempfile::tempdir().unwrap();
    std::fs::set_permissions(sockets.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let path = sockets.path().join("notify");
    let socket = UnixDatagram::bind(&path).unwrap();
    let mut server = Server::start_with(Setup {
        run_as: Some("nobody"),
        env: vec![("NOTIFY_SOCKET", path.display().to_string())],
        ..Setup::default()
    });
    assert_ready(&next(&socket));
    server.signal("TERM");
    assert_stopping(&next(&socket));
    assert!(server.exit_within(Duration::from_secs(20)).success());
    assert!(
        !server.log().contains("notification not sent"),
        "{}",
        server.log()
    );
}
