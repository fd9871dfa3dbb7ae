//! The PROXY protocol (`[proxy_protocol]`), over raw TCP: headers from a
//! listed address name the session's client (v1 and v2, on control and
//! passive data connections), LOCAL is a health check, UNKNOWN (and v2
//! from a non-IP socket) a client served with the connection's own
//! addresses, a listed address
//! that sends no valid header gets no session, and a header from anywhere
//! else is never believed. Test clients are made up from 198.51.100.0/24;
//! nothing is sent there, the addresses only travel inside headers.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use crate::harness::{read_all, Raw, Server, Setup, PASSWORD};

const LISTED: &str = r#"
[proxy_protocol]
from = ["127.0.0.1"]
data = true
timeout = "2s"
"#;

pub fn v1(client: &str, dest: &str, port: u16) -> Vec<u8> {
    format!("PROXY TCP4 {client} {dest} 51000 {port}\r\n").into_bytes()
}

pub fn v2(cmd: u8, client: Ipv4Addr, dest: SocketAddr) -> Vec<u8> {
    let mut b = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    b.extend([0x20 | cmd, 0x11, 0, 12]);
    b.extend(client.octets());
    let SocketAddr::V4(d) = dest else { panic!() };
    b.extend(d.ip().octets());
    b.extend(40000u16.to_be_bytes());
    b.extend(d.port().to_be_bytes());
    b
}

/// A control connection that sent `header` first.
pub fn connect_with(server: &Server, header: &[u8]) -> Raw {
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(header).unwrap();
    let mut c = Raw::from_stream(s);
    let greeting = c.reply();
    assert!(greeting.starts_with("220 "), "{greeting}");
    c
}

pub fn login(c: &mut Raw) {
    assert!(c.cmd("USER alice").starts_with("331 "));
    let r = c.cmd(&format!("PASS {PASSWORD}"));
    assert!(r.starts_with("230 "), "{r}");
}

/// The connection ends without a greeting.
fn closed_unseen(mut s: TcpStream) {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 64];
    // A signal meant for another thread of the test process (a child's
    // exit) can interrupt the read: read again, a bounded number of times.
    for _ in 0..10 {
        match s.read(&mut buf) {
            Ok(0) => return,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            other => panic!("expected the connection closed unseen, got {other:?}"),
        }
    }
    panic!("the read was interrupted 10 times");
}

#[test]
fn headers_name_the_client_on_control_and_data_connections() {
    let server = Server::start_with(Setup {
        sections: LISTED,
        xferlog: true,
        ..Setup::default()
    });
    std::fs::write(server.alice.join("f.txt"), b"through the balancer\n").unwrap();
    // v1 on the control connection, naming another destination: PASV
    // advertises the balancer's address, not this host's.
    let mut c = connect_with(&server, &v1("198.51.100.7", "127.0.0.2", 21));
    login(&mut c);
    let stat = c.cmd("STAT");
    assert!(stat.contains("Connected from 198.51.100.7"), "{stat}");
    let r = c.cmd("PASV");
    assert!(
        r.starts_with("227 Entering Passive Mode (127,0,0,2,"),
        "{r}"
    );
    let port = {
        let inner = &r[r.find('(').unwrap() + 1..r.find(')').unwrap()];
        let n: Vec<u16> = inner.split(',').map(|x| x.parse().unwrap()).collect();
        n[4] * 256 + n[5]
    };
    // A data connection forwarded for another client is refused; the one
    // for this client (v2) is taken.
    let data_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut foreign = TcpStream::connect(data_addr).unwrap();
    foreign
        .write_all(&v2(1, Ipv4Addr::new(198, 51, 100, 8), data_addr))
        .unwrap();
    let mut data = TcpStream::connect(data_addr).unwrap();
    data.write_all(&v2(1, Ipv4Addr::new(198, 51, 100, 7), data_addr))
        .unwrap();
    assert!(c.cmd("RETR f.txt").starts_with("150 "));
    assert_eq!(read_all(data), b"through the balancer\n");
    assert!(c.reply().starts_with("226 "));
    closed_unseen(foreign);
    assert!(c.cmd("QUIT").starts_with("221 "));
    let log = std::fs::read_to_string(server.xferlog()).unwrap();
    assert!(log.contains(" 198.51.100.7 "), "{log}");
    assert!(server.log().contains("forwarded for another client"));
}

#[test]
fn local_is_a_health_check_and_a_missing_header_gets_no_session() {
    let server = Server::start_with(Setup {
        sections: LISTED,
        ..Setup::default()
    });
    // v2 LOCAL (HAProxy's check-send-proxy): greeted, then closed.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(&v2(0, Ipv4Addr::UNSPECIFIED, server.addr))
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut all = Vec::new();
    s.read_to_end(&mut all).unwrap();
    assert!(
        all.starts_with(b"220 "),
        "{}",
        String::from_utf8_lossy(&all)
    );
    // A listed address that speaks FTP straight away, sends a malformed
    // header, or nothing at all: closed without a session.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"USER alice\r\n").unwrap();
    closed_unseen(s);
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(b"PROXY TCP4 198.51.100.7 127.0.0.1 1 99999\r\n")
        .unwrap();
    closed_unseen(s);
    let started = std::time::Instant::now();
    closed_unseen(TcpStream::connect(server.addr).unwrap());
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "the timeout"
    );
    assert!(server.log().contains("no valid PROXY protocol header"));
}

/// A v2 header with the command PROXY and the address family `family`
/// (0x00 AF_UNSPEC, 0x31 AF_UNIX), followed by `addrs`.
fn v2_family(family: u8, addrs: &[u8]) -> Vec<u8> {
    let mut b = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    b.extend([0x21, family]);
    b.extend(u16::try_from(addrs.len()).unwrap().to_be_bytes());
    b.extend(addrs);
    b
}

#[test]
fn a_client_the_balancer_cannot_name_is_served_with_the_connections_addresses() {
    let server = Server::start_with(Setup {
        sections: LISTED,
        ..Setup::default()
    });
    std::fs::write(server.alice.join("f.txt"), b"an unknown client\n").unwrap();
    // v1 UNKNOWN: a session like any other, whose client is the
    // connection's own peer (the balancer, here 127.0.0.1).
    let mut c = connect_with(&server, b"PROXY UNKNOWN\r\n");
    login(&mut c);
    assert!(c.cmd("PWD").starts_with("257 \"/\""));
    let stat = c.cmd("STAT");
    assert!(stat.contains("Connected from 127.0.0.1"), "{stat}");
    // Its data connections could not be told from those of the
    // balancer's other clients: passive mode is refused at once.
    for verb in ["PASV", "EPSV"] {
        let r = c.cmd(verb);
        assert!(r.starts_with("425 Passive mode is unavailable"), "{r}");
    }
    assert!(c.cmd("QUIT").starts_with("221 "));
    // v2 PROXY from an unspecified family, and from a Unix socket (two
    // 108-byte paths): served the same way.
    for header in [v2_family(0x00, &[]), v2_family(0x31, &[0; 216])] {
        let mut c = connect_with(&server, &header);
        login(&mut c);
        assert!(c.cmd("PWD").starts_with("257 \"/\""));
        assert!(c.cmd("QUIT").starts_with("221 "));
    }
    assert_eq!(
        server
            .log()
            .matches("the client address is unknown")
            .count(),
        3,
        "{}",
        server.log()
    );
}

#[test]
fn a_header_from_an_unlisted_address_is_not_believed() {
    let server = Server::start_with(Setup {
        sections: "[proxy_protocol]\nfrom = [\"127.0.0.2\"]\n",
        ..Setup::default()
    });
    let mut c = Raw::connect(server.addr);
    let r = c.cmd("PROXY TCP4 198.51.100.7 127.0.0.1 51000 21");
    assert!(r.starts_with("421 "), "{r}");
    assert!(c.closed());
    assert!(server.log().contains("not in proxy_protocol.from"));
}

#[test]
fn bans_and_limits_count_the_client_from_the_header() {
    let server = Server::start_with(Setup {
        sections: LISTED,
        limits: "max_login_failures = 2",
        ..Setup::default()
    });
    for _ in 0..2 {
        let mut c = connect_with(&server, &v1("198.51.100.7", "127.0.0.1", 21));
        assert!(c.cmd("USER alice").starts_with("331 "));
        c.cmd("PASS wrong");
    }
    // 198.51.100.7 is banned now; another client of the balancer is not.
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.write_all(&v1("198.51.100.7", "127.0.0.1", 21)).unwrap();
    let mut refused = Raw::from_stream(s);
    assert!(refused.reply().starts_with("421 "));
    let mut c = connect_with(&server, &v1("198.51.100.9", "127.0.0.1", 21));
    login(&mut c);
}

/// A client the balancer could not name, with `data_without_header`: the
/// operator has accepted that data connections from the balancer are
/// taken as the client's, so passive mode works; without the key, a
/// connection from the balancer is not taken even if PASV were answered
/// (the guard, unit-tested in data/guard.rs).
#[test]
fn a_client_the_balancer_cannot_name_has_passive_mode_only_with_data_without_header() {
    for with_key in [false, true] {
        let server = Server::start_with(Setup {
            sections: if with_key {
                "[proxy_protocol]\nfrom = [\"127.0.0.1\"]\ndata_without_header = true\n"
            } else {
                "[proxy_protocol]\nfrom = [\"127.0.0.1\"]\n"
            },
            ..Setup::default()
        });
        std::fs::write(server.alice.join("f.txt"), b"an unknown client\n").unwrap();
        let mut c = connect_with(&server, b"PROXY UNKNOWN\r\n");
        login(&mut c);
        if with_key {
            let port = c.epsv_port();
            let data = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
            assert!(c.cmd("RETR f.txt").starts_with("150 "));
            assert_eq!(read_all(data), b"an unknown client\n");
            assert!(c.reply().starts_with("226 "));
        } else {
            let r = c.cmd("EPSV");
            assert!(r.starts_with("425 Passive mode is unavailable"), "{r}");
        }
    }
}

/// A connection whose header is still on its way when the drain begins
/// is waited for (its header task is one of the sessions the drain waits
/// for): its session starts, is told the server is shutting down, and
/// only then does the server exit. Before, the drain saw no session, the
/// server exited at once and the connection was cut unanswered.
#[test]
fn a_header_still_on_its_way_at_the_drain_is_waited_for() {
    let mut server = Server::start_with(Setup {
        sections: r#"
[proxy_protocol]
from = ["127.0.0.1"]
timeout = "10s"
"#,
        watch_log: true,
        ..Setup::default()
    });
    let mut s = TcpStream::connect(server.addr).unwrap();
    // The connection is accepted (its header task started) before the
    // signal: one accept loop takes connections in turn, so a later
    // connection's greeting proves it.
    drop(connect_with(
        &server,
        &v1("198.51.100.8", "127.0.0.1", server.addr.port()),
    ));
    server.signal("TERM");
    server.wait_for_log("draining: listeners closed", 0, Duration::from_secs(10));
    s.write_all(&v1("198.51.100.7", "127.0.0.1", server.addr.port()))
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all);
    assert!(text.contains("421 "), "{text:?}");
    assert!(server.exit_within(Duration::from_secs(15)).success());
}
