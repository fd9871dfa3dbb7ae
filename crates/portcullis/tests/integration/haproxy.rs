//! Behind a real HAProxy (Debian's, TCP mode, `send-proxy-v2` on the
//! control port and on the passive range, as the book shows): clients
//! that connect to the balancer's address upload and download through it
//! in PASV and EPSV, and the server sees the client's own address. On
//! loopback: HAProxy on 127.0.0.4, portcullis on 127.0.0.3, the clients
//! from 127.0.0.5.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{random_bytes, Server, Setup, PASSWORD};
use crate::tools::{have, run};

/// The passive range, the same on the balancer and on the node.
const PASSIVE: (u16, u16) = (64900, 64919);

/// HAProxy, killed when dropped.
pub(crate) struct Haproxy(Child);

impl Haproxy {
    /// Check and start HAProxy with `cfg` (written into `dir`), once it
    /// accepts connections on `addr` (it says nothing when it is ready).
    pub(crate) fn start(dir: &std::path::Path, cfg: &str, addr: SocketAddr) -> Haproxy {
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, cfg).unwrap();
        let check = Command::new("haproxy")
            .args(["-c", "-f"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(check.status.success(), "{check:?}");
        let child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let h = Haproxy(child);
        for _ in 0..100 {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return h;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("haproxy did not listen on {addr}");
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn free_port(ip: [u8; 4]) -> u16 {
    TcpListener::bind(SocketAddr::from((ip, 0)))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_haproxy(dir: &std::path::Path, front: u16, node: SocketAddr) -> Haproxy {
    let (lo, hi) = PASSIVE;
    let cfg = format!(
        r#"
global
    maxconn 200
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend ftp_control
    bind 127.0.0.4:{front}
    default_backend ftp_nodes
backend ftp_nodes
    server node1 {node} send-proxy-v2
frontend ftp_passive
    bind 127.0.0.4:{lo}-{hi}
    default_backend ftp_passive_node1
backend ftp_passive_node1
    # no port: the same port the client connected to
    server node1 {ip} send-proxy-v2
"#,
        ip = node.ip()
    );
    Haproxy::start(dir, &cfg, SocketAddr::from(([127, 0, 0, 4], front)))
}

const CLIENT: &str = r#"
import ftplib, io, sys
host, port, password, size = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
data = bytes((i * 7 + 3) % 251 for i in range(size))
f = ftplib.FTP()
f.connect(host, port, timeout=20, source_address=("127.0.0.5", 0))
f.login("alice", password)
stat = f.sendcmd("STAT")
assert "Connected from 127.0.0.5" in stat, stat
assert f.sendcmd("PASV").startswith("227 Entering Passive Mode (127,0,0,4,"), "PASV names the balancer"
f.storbinary("STOR up.bin", io.BytesIO(data))
got = bytearray()
f.retrbinary("RETR up.bin", got.extend)
assert bytes(got) == data, "round trip through the balancer"
f.quit()
print("ok")
"#;

#[test]
fn clients_through_haproxy_send_proxy_v2() {
    if !have("haproxy") || !have("python3") || !have("curl") {
        return;
    }
    let server = Server::start_with(Setup {
        listen: "127.0.0.3:0",
        passive_ports: format!("{}-{}", PASSIVE.0, PASSIVE.1),
        sections:
            "[proxy_protocol]\nfrom = [\"127.0.0.1\", \"127.0.0.3\", \"127.0.0.4\"]\ndata = true\n",
        xferlog: true,
        ..Setup::default()
    });
    let front = free_port([127, 0, 0, 4]);
    let _haproxy = start_haproxy(server.dir.path(), front, server.addr);
    let out = run(Command::new("python3").args([
        "-c",
        CLIENT,
        "127.0.0.4",
        &front.to_string(),
        PASSWORD,
        "300000",
    ]));
    assert_eq!(out.trim(), "ok");
    // curl uses EPSV, also through the balancer's passive range.
    let data = random_bytes(200_000, 9);
    std::fs::write(server.alice.join("e.bin"), &data).unwrap();
    let got = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--interface", "127.0.0.5"])
        .arg(format!(
            "ftp://alice:{}@127.0.0.4:{front}/e.bin",
            PASSWORD.replace(' ', "%20")
        ))
        .output()
        .unwrap();
    assert!(got.status.success(), "{got:?}");
    assert!(got.stdout == data, "EPSV download through the balancer");
    let log = std::fs::read_to_string(server.xferlog()).unwrap();
    assert_eq!(log.lines().count(), 3, "{log}");
    assert!(log.lines().all(|l| l.contains(" 127.0.0.5 ")), "{log}");
}
