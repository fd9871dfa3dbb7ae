//! Closing replies are final: once a session has said it closes (221 to
//! QUIT, every kind of 421), nothing the client sent with or after that
//! command runs or is answered, whether it came in the same write or the
//! next one. And QUIT during a transfer: answered at once during an
//! upload, after the final reply during a download, the transfer running
//! to its end either way.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::{random_bytes, Raw, Server, Setup, PASSWORD};

/// What the server sends until it closes the connection (bounded by the
/// stream's read timeout).
fn until_closed(stream: &TcpStream) -> String {
    let mut all = String::new();
    let _ = BufReader::new(stream).read_to_string(&mut all);
    all
}

/// The destructive commands sent behind every closing reply.
fn destructive() -> String {
    format!("USER alice\r\nPASS {PASSWORD}\r\nDELE victim.txt\r\nMKD x\r\n")
}

/// Nothing of `destructive()` happened in alice's root.
fn untouched(server: &Server) {
    assert!(server.alice.join("victim.txt").exists(), "victim deleted");
    assert!(!server.alice.join("x").exists(), "directory made");
}

fn with_victim(setup: Setup) -> Server {
    let server = Server::start_with(setup);
    std::fs::write(server.alice.join("victim.txt"), b"keep me\n").unwrap();
    server
}

/// Connect and read the greeting, with a short read timeout.
fn connect(server: &Server) -> TcpStream {
    let s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut line = String::new();
    BufReader::new(&s).read_line(&mut line).unwrap();
    assert!(line.starts_with("220 "), "{line}");
    s
}

#[test]
fn nothing_runs_after_quit() {
    let server = with_victim(Setup::default());
    // In the same write as QUIT.
    let mut s = connect(&server);
    let all = format!("USER alice\r\nPASS {PASSWORD}\r\nQUIT\r\n{}", destructive());
    s.write_all(all.as_bytes()).unwrap();
    let got = until_closed(&s);
    assert!(got.ends_with("221 Goodbye.\r\n"), "{got}");
    assert_eq!(got.matches("\r\n").count(), 3, "{got}");
    untouched(&server);
    // In the next write: the connection is not read again.
    let mut c = Raw::login(server.addr, "alice");
    assert!(c.cmd("QUIT").starts_with("221 "));
    let _ = c.stream.write_all(destructive().as_bytes());
    assert!(c.closed());
    untouched(&server);
    // The server goes on serving others.
    let mut c = Raw::login(server.addr, "alice");
    assert!(c.cmd("NOOP").starts_with("200 "));
}

#[test]
fn nothing_runs_after_a_refused_proxy_header() {
    let server = with_victim(Setup::default());
    let mut s = connect(&server);
    let all = format!(
        "PROXY TCP4 198.51.100.7 127.0.0.1 51000 21\r\n{}",
        destructive()
    );
    s.write_all(all.as_bytes()).unwrap();
    let got = until_closed(&s);
    assert!(got.starts_with("421 PROXY protocol header"), "{got}");
    assert_eq!(got.matches("\r\n").count(), 1, "{got}");
    untouched(&server);
    // The next write after the 421.
    let mut c = Raw::connect(server.addr);
    assert!(c.cmd("PROXY UNKNOWN").starts_with("421 "));
    let _ = c.stream.write_all(destructive().as_bytes());
    assert!(c.closed());
    untouched(&server);
}

#[test]
fn nothing_runs_after_a_ban() {
    let server = with_victim(Setup {
        limits: "max_login_failures = 1\nban_time = \"60s\"",
        ..Setup::default()
    });
    let mut s = connect(&server);
    let all = format!("USER alice\r\nPASS wrong\r\n{}", destructive());
    s.write_all(all.as_bytes()).unwrap();
    let got = until_closed(&s);
    assert!(got.ends_with("banned for 60 s.\r\n"), "{got}");
    assert_eq!(got.matches("\r\n").count(), 2, "{got}");
    untouched(&server);
}

#[test]
fn nothing_runs_after_too_many_sessions_of_a_user() {
    let server = with_victim(Setup {
        alice_extra: "max_sessions = 1",
        ..Setup::default()
    });
    let _first = Raw::login(server.addr, "alice");
    let mut s = connect(&server);
    s.write_all(destructive().as_bytes()).unwrap();
    let got = until_closed(&s);
    assert!(got.ends_with("try again later.\r\n"), "{got}");
    assert!(got.contains("421 Too many sessions"), "{got}");
    assert_eq!(got.matches("\r\n").count(), 2, "{got}");
    untouched(&server);
}

#[test]
fn nothing_runs_after_a_timeout() {
    let server = with_victim(Setup {
        idle_timeout: "1s",
        extra_server: "login_timeout = \"1s\"",
        ..Setup::default()
    });
    // The login timeout, then a login and destructive commands.
    let mut c = Raw::connect(server.addr);
    assert!(c.reply().starts_with("421 Timeout: login"));
    let _ = c.stream.write_all(destructive().as_bytes());
    assert!(c.closed());
    untouched(&server);
    // The idle timeout of a logged-in session.
    let mut c = Raw::login(server.addr, "alice");
    assert!(c.reply().starts_with("421 Timeout: no command"));
    let _ = c.stream.write_all(b"DELE victim.txt\r\nMKD x\r\n");
    assert!(c.closed());
    untouched(&server);
}

#[test]
fn nothing_runs_after_the_drain() {
    let server = with_victim(Setup::default());
    let mut c = Raw::login(server.addr, "alice");
    server.signal("TERM");
    assert!(c.reply().starts_with("421 Server shutting down"));
    let _ = c.stream.write_all(b"DELE victim.txt\r\nMKD x\r\n");
    assert!(c.closed());
    untouched(&server);
}

/// QUIT while the upload's data connection is still open: 221 at once,
/// then the upload ends as the client closes its data connection: 226,
/// and the file is whole. A client that closes the control connection
/// right after the 221 still gets its upload committed.
#[test]
fn quit_during_an_upload() {
    let server = Server::start_with(Setup {
        xferlog: true,
        ..Setup::default()
    });
    let body = random_bytes(1 << 20, 7);
    for close_control in [false, true] {
        let name = format!("up-{close_control}.bin");
        let mut c = Raw::login(server.addr, "alice");
        c.stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut data = c.pasv();
        assert!(c.cmd(&format!("STOR {name}")).starts_with("150 "));
        data.write_all(&body[..1000]).unwrap();
        let r = c.cmd("QUIT");
        assert!(r.starts_with("221 "), "{r}");
        if close_control {
            c.stream.shutdown(std::net::Shutdown::Both).unwrap();
        }
        data.write_all(&body[1000..]).unwrap();
        drop(data);
        if !close_control {
            let r = c.reply();
            assert!(r.starts_with("226 "), "{r}");
            assert!(c.closed());
        }
        // The upload is committed either way (bounded wait: with the
        // control connection gone, nothing else says when).
        let path = server.alice.join(&name);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read(&path).ok().as_deref() != Some(&body[..]) {
            assert!(Instant::now() < deadline, "{name} not committed whole");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// QUIT during a download: the transfer runs on, its 226 comes first,
/// then the 221; a client that closes the control connection after QUIT
/// still gets every byte.
#[test]
fn quit_during_a_download() {
    let server = Server::start();
    let body = random_bytes(8 << 20, 9);
    std::fs::write(server.alice.join("big.bin"), &body).unwrap();
    for close_control in [false, true] {
        let mut c = Raw::login(server.addr, "alice");
        let mut data = c.pasv();
        assert!(c.cmd("RETR big.bin").starts_with("150 "));
        c.send(b"QUIT\r\n");
        if close_control {
            c.stream.shutdown(std::net::Shutdown::Both).unwrap();
        }
        let mut got = Vec::new();
        data.read_to_end(&mut got).unwrap();
        assert!(got == body, "download cut after QUIT: {} bytes", got.len());
        if !close_control {
            let r = c.reply();
            assert!(r.starts_with("226 "), "{r}");
            let r = c.reply();
            assert!(r.starts_with("221 "), "{r}");
            assert!(c.closed());
        }
    }
}

/// Commands queued behind a transfer before QUIT still run, in order,
/// and QUIT after them; what follows QUIT does not.
#[test]
fn quit_behind_queued_commands_waits_its_turn() {
    let server = with_victim(Setup::default());
    let body = random_bytes(4 << 20, 3);
    std::fs::write(server.alice.join("big.bin"), &body).unwrap();
    let mut c = Raw::login(server.addr, "alice");
    let mut data = c.pasv();
    assert!(c.cmd("RETR big.bin").starts_with("150 "));
    c.send(b"MKD made\r\nQUIT\r\nDELE victim.txt\r\n");
    let mut got = Vec::new();
    data.read_to_end(&mut got).unwrap();
    assert_eq!(got.len(), body.len());
    assert!(c.reply().starts_with("226 "));
    assert!(c.reply().starts_with("257 "));
    assert!(c.reply().starts_with("221 "));
    assert!(c.closed());
    assert!(server.alice.join("made").is_dir());
    assert!(server.alice.join("victim.txt").exists());
}
