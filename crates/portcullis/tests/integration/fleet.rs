//! A fleet: Debian's HAProxy running `deploy/haproxy/haproxy.cfg` as
//! shipped, and two portcullis nodes running `deploy/haproxy/node.toml`
//! as shipped, both on one bucket of moto's S3 server. Only the
//! `${NAME}`s are filled in (HAProxy reads them from its environment; the
//! node file is rendered as `envsubst` would). On loopback: the balancer
//! on 127.0.0.30, the nodes on .31 and .32, the clients from .33 (and
//! .34 for the connection-rate guard).
//!
//! Through the balancer: a file uploaded through one node is downloaded
//! byte-identical through the other; PASV (naming the balancer), EPSV,
//! explicit and implicit FTPS with session reuse required; logs and
//! xferlogs name the client; HAProxy's stick table refuses a client that
//! opens connections too fast. Straight at a node: a header from outside
//! `proxy_protocol.from` is not believed, the balancer's address without
//! a header gets no session. Then a node drained with SIGTERM: HAProxy's
//! check sees its /ready answer 503, new sessions go to the other node,
//! and its running upload ends with 226 and is in the bucket.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{password_hash, Server, BIN, PASSWORD};
use crate::s3::store::{Moto, KEY_ID, SECRET};
use crate::tools::{have, run};

const BUCKET: &str = "fleet";
const PUBLIC: &str = "127.0.0.30";
const NODES: [&str; 2] = ["127.0.0.31", "127.0.0.32"];
const CLIENT: &str = "127.0.0.33";
/// Fixed ports: nothing else in the suite uses these loopback addresses.
const FTP_PORT: u16 = 10021;
const FTPS_PORT: u16 = 10990;
const METRICS_PORT: u16 = 19121;
/// Above Linux's ephemeral range, disjoint per node.
const PASSIVE: [&str; 2] = ["61000-61019", "61020-61039"];

fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/haproxy")
        .join(file)
}

/// `text` with every `${NAME}` replaced from `vars` (what `envsubst` and
/// HAProxy do); a name missing from `vars` fails the test.
fn render(text: &str, vars: &BTreeMap<&str, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("an unclosed ${") + start;
        let name = &rest[start + 2..end];
        let value = vars
            .get(name)
            .unwrap_or_else(|| panic!("${{{name}}} is not set by the test"));
        out.push_str(value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// HAProxy, killed when dropped.
struct Haproxy {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Haproxy {
    fn start(dir: &Path, vars: &BTreeMap<&str, String>) -> Haproxy {
        let cfg = deploy("haproxy.cfg");
        // Every name the file uses is set (HAProxy would take a missing
        // one as empty).
        render(&std::fs::read_to_string(&cfg).unwrap(), vars);
        let env = || vars.iter().map(|(k, v)| (*k, v.as_str()));
        let check = Command::new("haproxy")
            .args(["-c", "-f"])
            .arg(&cfg)
            .envs(env())
            .output()
            .unwrap();
        assert!(check.status.success(), "{check:?}");
        let log = dir.join("haproxy.log");
        let child = Command::new("haproxy")
            .args(["-db", "-f"])
            .arg(&cfg)
            .envs(env())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut h = Haproxy {
            child,
            socket: PathBuf::from(&vars["HAPROXY_STATS_SOCKET"]),
            log,
        };
        h.wait_for("node1", "UP");
        h.wait_for("node2", "UP");
        h
    }

    /// The runtime API's answer to `command`; empty while it is not up.
    fn api(&self, command: &str) -> String {
        let Ok(mut s) = std::os::unix::net::UnixStream::connect(&self.socket) else {
            return String::new();
        };
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut out = String::new();
        if s.write_all(format!("{command}\n").as_bytes()).is_ok() {
            let _ = s.read_to_string(&mut out);
        }
        out
    }

    /// Wait (bounded) until the control backend's `server` has `status`
    /// ("UP", "DOWN") by HAProxy's own checks.
    fn wait_for(&mut self, server: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(Some(exit)) = self.child.try_wait() {
                panic!(
                    "HAProxy ended ({exit}):\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            last = self.api("show stat");
            // CSV: proxy, server, ...; the status is the 18th field.
            let now = last.lines().find_map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f.len() > 17 && f[0] == "ftp_nodes" && f[1] == server).then(|| f[17].to_owned())
            });
            if now.as_deref() == Some(status) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "HAProxy never saw {server} {status}:\n{last}\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

/// One FTP session through the balancer from `CLIENT`, in Python's ftplib
/// (or its TLS class, resuming the control connection's TLS session on
/// data connections, as FileZilla and lftp do). `put`/`get` NAME SIZE
/// SEED move deterministic bytes and compare them; `slow` starts an
/// upload, says "started", and finishes it once the file TRIGGER exists.
const FTP_CLIENT: &str = r#"
import ftplib, io, os, random, ssl, sys, time
mode, host, port, pw, name, size, seed, cafile = sys.argv[1:9]
data = random.Random(int(seed)).randbytes(int(size))
if mode == "tls":
    f = Reusing(context=ssl.create_default_context(cafile=cafile))
else:
    f = ftplib.FTP()
f.connect(host, int(port), timeout=30, source_address=(sys.argv[9], 0))
if mode == "tls":
    f.auth()
f.login("alice", pw)
if mode == "tls":
    f.prot_p()
stat = f.sendcmd("STAT")
assert "Connected from " + sys.argv[9] in stat, stat
if mode == "slow":
    f.voidcmd("TYPE I")
    conn = f.transfercmd("STOR " + name)
    half = len(data) // 2
    conn.sendall(data[:half])
    print("started", f.sock.getsockname()[1], flush=True)
    deadline = time.time() + 90
    while not os.path.exists(sys.argv[10]):
        assert time.time() < deadline, "never triggered"
        time.sleep(0.05)
    conn.sendall(data[half:])
    conn.close()
    r = f.voidresp()
    assert r.startswith("226"), r
    print("ok", flush=True)
    sys.exit(0)
pasv = f.sendcmd("PASV")
assert pasv.startswith("227 Entering Passive Mode (127,0,0,30,"), "PASV names the balancer: " + pasv
if mode in ("put", "tls"):
    f.storbinary("STOR " + name, io.BytesIO(data))
if mode in ("get", "tls"):
    got = bytearray()
    f.retrbinary("RETR " + name, got.extend)
    assert bytes(got) == data, "%s differs (%d bytes)" % (name, len(got))
port = f.sock.getsockname()[1]
f.quit()
print("ok", port)
"#;

/// The bytes `FTP_CLIENT` moves for `size` and `seed`, written to `path`
/// (for curl), by the same generator.
fn python_bytes(path: &Path, size: usize, seed: u64) {
    run(Command::new("python3").args([
        "-c",
        "import random, sys; open(sys.argv[1], 'wb').write(random.Random(int(sys.argv[3])).randbytes(int(sys.argv[2])))",
        path.to_str().unwrap(),
        &size.to_string(),
        &seed.to_string(),
    ]));
}

struct Fleet {
    nodes: Vec<Server>,
    cert: PathBuf,
    work: tempfile::TempDir,
}

impl Fleet {
    fn client(&self, mode: &str, name: &str, size: usize, seed: u64) -> Command {
        let mut c = Command::new("python3");
        c.args([
            "-c",
            &format!("{}{}", crate::harness::PY_REUSING_FTP_TLS, FTP_CLIENT),
            mode,
            PUBLIC,
            &FTP_PORT.to_string(),
            PASSWORD,
            name,
            &size.to_string(),
            &seed.to_string(),
            self.cert.to_str().unwrap(),
            CLIENT,
            self.work.path().join("trigger").to_str().unwrap(),
        ]);
        c
    }

    /// Run one session; which node served it.
    fn session(&self, mode: &str, name: &str, size: usize, seed: u64) -> usize {
        let out = run(&mut self.client(mode, name, size, seed));
        let port = out
            .trim()
            .strip_prefix("ok ")
            .unwrap_or_else(|| panic!("{mode} {name}: {out}"));
        self.served(port.parse().unwrap())
    }

    /// The node whose log has the session the client had from its
    /// control connection's `port` (waiting, bounded, for the line).
    fn served(&self, port: u16) -> usize {
        let needle = format!("peer={CLIENT}:{port}}}: portcullis::events: session start");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let on: Vec<usize> = (0..self.nodes.len())
                .filter(|&i| self.nodes[i].log().contains(&needle))
                .collect();
            match on[..] {
                [i] => return i,
                [] if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                _ => panic!("{needle:?} on nodes {on:?}, expected exactly one"),
            }
        }
    }

    /// curl from `CLIENT` for `path` at `scheme://PUBLIC:port/` as alice
    /// (EPSV first, as curl does).
    fn curl(&self, scheme: &str, port: u16, path: &str) -> Command {
        let mut c = Command::new("curl");
        c.args([
            "-sS",
            "--fail",
            "--max-time",
            "30",
            "--interface",
            CLIENT,
            "--cacert",
        ])
        .arg(&self.cert)
        .arg(format!(
            "{scheme}://alice:{}@{PUBLIC}:{port}/{path}",
            PASSWORD.replace(' ', "%20")
        ));
        c
    }
}

fn start_node(i: usize, vars: &BTreeMap<&str, String>, env: &[(&'static str, String)]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    // STATE_DIR: the node's user (nobody) opens its xferlog there.
    let owned = Command::new("chown").arg("nobody").arg(dir.path()).status();
    assert!(
        owned.unwrap().success(),
        "chown nobody {}",
        dir.path().display()
    );
    let mut vars = vars.clone();
    vars.insert("NODE_ADDR", NODES[i].into());
    vars.insert("NODE_PASSIVE", PASSIVE[i].into());
    vars.insert("STATE_DIR", dir.path().display().to_string());
    let text = render(
        &std::fs::read_to_string(deploy("node.toml")).unwrap(),
        &vars,
    );
    let config = dir.path().join("portcullis.toml");
    std::fs::write(&config, text).unwrap();
    let checked = Command::new(BIN)
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(checked.status.success(), "{checked:?}");
    Server::start_from_config_env(dir, &config, env)
}

fn xferlog(node: &Server) -> String {
    std::fs::read_to_string(node.dir.path().join("xferlog")).unwrap_or_default()
}

/// Connect to `to` from `from` and send `bytes`; what comes back before
/// the connection ends (bounded).
fn exchange(from: &str, to: SocketAddr, bytes: &[u8]) -> String {
    let script = r#"
import socket, sys
s = socket.create_connection((sys.argv[2], int(sys.argv[3])), 10, source_address=(sys.argv[1], 0))
s.sendall(bytes.fromhex(sys.argv[4]))
s.settimeout(15)
out = b""
try:
    while True:
        b = s.recv(4096)
        if not b: break
        out += b
except (ConnectionResetError, socket.timeout):
    pass
sys.stdout.write(out.decode("latin-1"))
"#;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    run(Command::new("python3").args([
        "-c",
        script,
        from,
        &to.ip().to_string(),
        &to.port().to_string(),
        &hex,
    ]))
}

/// A child process killed when dropped.
struct Kill(Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn two_nodes_behind_haproxy_on_one_bucket() {
    if !have("haproxy") || !have("python3") || !have("curl") {
        return;
    }
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket(BUCKET);
    let work = tempfile::tempdir().unwrap();
    let tls = work.path().join("tls");
    let out = Command::new(BIN)
        .args(["gen-cert", "--host", PUBLIC, "--out"])
        .arg(&tls)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let vars: BTreeMap<&str, String> = [
        ("FTP_PUBLIC_ADDR", PUBLIC.to_owned()),
        ("BALANCER_ADDR", PUBLIC.to_owned()),
        ("FTP_PORT", FTP_PORT.to_string()),
        ("FTPS_PORT", FTPS_PORT.to_string()),
        ("NODE1_ADDR", NODES[0].to_owned()),
        ("NODE2_ADDR", NODES[1].to_owned()),
        ("NODE1_PASSIVE", PASSIVE[0].to_owned()),
        ("NODE2_PASSIVE", PASSIVE[1].to_owned()),
        ("NODE_METRICS_PORT", METRICS_PORT.to_string()),
        (
            "HAPROXY_STATS_SOCKET",
            work.path().join("haproxy.sock").display().to_string(),
        ),
        ("NODE_USER", "nobody".to_owned()),
        ("TLS_DIR", tls.display().to_string()),
        ("S3_BUCKET", BUCKET.to_owned()),
        ("S3_ALLOW_HTTP", "true".to_owned()),
        ("FTP_USER", "alice".to_owned()),
        ("FTP_USER_HASH", password_hash().to_owned()),
    ]
    .into_iter()
    .collect();
    let env = [
        ("AWS_ENDPOINT_URL", moto.endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", KEY_ID.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", SECRET.to_owned()),
    ];
    let nodes = vec![start_node(0, &vars, &env), start_node(1, &vars, &env)];
    let mut haproxy = Haproxy::start(work.path(), &vars);
    let mut fleet = Fleet {
        nodes,
        cert: tls.join("cert.pem"),
        work,
    };

    // Uploaded through one node, downloaded through the other: the
    // balancer alternates between idle nodes; a few sessions suffice.
    let up = fleet.session("put", "a.bin", 700_000, 1);
    let mut other = None;
    for _ in 0..6 {
        let n = fleet.session("get", "a.bin", 700_000, 1);
        if n != up {
            other = Some(n);
            break;
        }
    }
    assert!(other.is_some(), "every download landed on node {up}");

    // EPSV (curl's first choice), up and down, through the balancer.
    let local = fleet.work.path().join("e.bin");
    python_bytes(&local, 300_000, 5);
    run(fleet.curl("ftp", FTP_PORT, "e.bin").arg("-T").arg(&local));
    let got = fleet.curl("ftp", FTP_PORT, "e.bin").output().unwrap();
    assert!(got.status.success(), "{got:?}");
    assert!(
        got.stdout == std::fs::read(&local).unwrap(),
        "EPSV round trip"
    );
    let logs: String = fleet.nodes.iter().map(|n| n.log()).collect();
    assert!(logs.contains("verb=\"EPSV\" code=229"), "curl used EPSV");

    // FTPS, explicit (AUTH TLS, PROT P) and implicit, session reuse
    // required by node.toml.
    fleet.session("tls", "t.bin", 400_000, 2);
    let local = fleet.work.path().join("i.bin");
    python_bytes(&local, 250_000, 3);
    run(fleet.curl("ftps", FTPS_PORT, "i.bin").arg("-T").arg(&local));
    let got = fleet.curl("ftps", FTPS_PORT, "i.bin").output().unwrap();
    assert!(got.status.success(), "{got:?}");
    assert!(
        got.stdout == std::fs::read(&local).unwrap(),
        "implicit FTPS"
    );
    assert!(moto.keys(BUCKET).contains(&"alice/i.bin".to_owned()));

    // The nodes saw the client, never the balancer, as the peer.
    for node in &fleet.nodes {
        let log = node.log();
        assert!(log.contains(&format!("peer={CLIENT}:")), "{log}");
        assert!(!log.contains(&format!("peer={PUBLIC}:")), "{log}");
        let x = xferlog(node);
        assert!(!x.is_empty(), "each node served transfers");
        assert!(x.lines().all(|l| l.contains(&format!(" {CLIENT} "))), "{x}");
    }

    // Straight at a node: a header from an address not in
    // proxy_protocol.from is not believed; the balancer's own address
    // without a header gets no session (not even a greeting).
    let node1: SocketAddr = (NODES[0].parse::<std::net::IpAddr>().unwrap(), FTP_PORT).into();
    let r = exchange(
        CLIENT,
        node1,
        b"PROXY TCP4 198.51.100.7 127.0.0.30 5000 21\r\n",
    );
    assert!(r.starts_with("220 ") && r.contains("\r\n421 "), "{r:?}");
    let r = exchange(PUBLIC, node1, b"USER alice\r\n");
    assert_eq!(r, "", "no session for the balancer without a header");

    // The fleet-wide connection-rate guard (haproxy.cfg: more than 30 new
    // connections in 10 s from one address are refused).
    let burst = r#"
import socket, sys
greeted = 0
for i in range(45):
    try:
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), 10, source_address=("127.0.0.34", 0))
        s.settimeout(15)
        if s.recv(4).startswith(b"220"): greeted += 1
        s.close()
    except (ConnectionResetError, socket.timeout):
        pass
print(greeted)
"#;
    let greeted: usize =
        run(Command::new("python3").args(["-c", burst, PUBLIC, &FTP_PORT.to_string()]))
            .trim()
            .parse()
            .unwrap();
    eprintln!("connection-rate guard: {greeted} of 45 connections greeted");
    assert!((25..45).contains(&greeted), "{greeted} of 45 greeted");

    // The drain: an upload runs on some node; SIGTERM it.
    let mut slow = Kill(
        fleet
            .client("slow", "slow.bin", 2_000_000, 4)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut said = BufReader::new(slow.0.stdout.take().unwrap());
    let mut line = String::new();
    said.read_line(&mut line).unwrap();
    let port = line.trim().strip_prefix("started ").expect(&line);
    let busy = fleet.served(port.parse().unwrap());
    let (idle, name) = (1 - busy, ["node1", "node2"][busy]);
    let busy_metrics = SocketAddr::from((
        NODES[busy].parse::<std::net::IpAddr>().unwrap(),
        METRICS_PORT,
    ));
    fleet.nodes[busy].signal("TERM");
    fleet.nodes[busy].wait_for_log("SIGTERM or SIGINT: draining", 0, Duration::from_secs(20));
    assert_eq!(crate::ops::get(busy_metrics, "/ready").0, 503);
    haproxy.wait_for(name, "DOWN");
    // New sessions all go to the other node while the upload runs on.
    for k in 0..3 {
        let n = fleet.session("put", &format!("during{k}.bin"), 50_000, 10 + k);
        assert_eq!(n, idle, "a new session reached the draining node");
    }
    std::fs::write(fleet.work.path().join("trigger"), b"").unwrap();
    line.clear();
    said.read_line(&mut line).unwrap();
    let status = slow.0.wait().unwrap();
    let mut err = String::new();
    let _ = slow.0.stderr.take().unwrap().read_to_string(&mut err);
    assert!(status.success() && line.trim() == "ok", "{line} {err}");
    let exit = fleet.nodes[busy].exit_within(Duration::from_secs(30));
    assert_eq!(exit.code(), Some(0), "{}", fleet.nodes[busy].log());
    assert!(fleet.nodes[busy]
        .log()
        .contains("drained: every session has ended"));
    // The upload the drained node finished is whole, through the other.
    assert_eq!(fleet.session("get", "slow.bin", 2_000_000, 4), idle);
}

/// `node.toml`'s commented `server.node_name` and `[cluster]` lines,
/// uncommented as the fleet page says, give a file `check-config` passes.
#[test]
fn node_toml_with_its_cluster_lines_uncommented_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    // STATE_DIR: the node's user (nobody) opens its xferlog there.
    let owned = Command::new("chown").arg("nobody").arg(dir.path()).status();
    assert!(owned.unwrap().success());
    let tls = dir.path().join("tls");
    let out = Command::new(BIN)
        .args(["gen-cert", "--host", PUBLIC, "--out"])
        .arg(&tls)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let vars: BTreeMap<&str, String> = [
        ("NODE_ADDR", NODES[0]),
        ("FTP_PORT", "21"),
        ("FTPS_PORT", "990"),
        ("NODE_USER", "nobody"),
        ("NODE_PASSIVE", PASSIVE[0]),
        ("BALANCER_ADDR", PUBLIC),
        ("NODE_METRICS_PORT", "9121"),
        ("S3_BUCKET", BUCKET),
        ("S3_ALLOW_HTTP", "false"),
        ("FTP_USER", "alice"),
        ("FTP_USER_HASH", password_hash()),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.to_owned()))
    .chain([
        ("TLS_DIR", tls.display().to_string()),
        ("STATE_DIR", dir.path().display().to_string()),
    ])
    .collect();
    let mut text = render(
        &std::fs::read_to_string(deploy("node.toml")).unwrap(),
        &vars,
    );
    for line in [
        "#node_name = ",
        "#[cluster]\n",
        "#redis = ",
        "#password_file = ",
    ] {
        let at = text
            .find(&format!("\n{line}"))
            .unwrap_or_else(|| panic!("no {line:?} line in node.toml"));
        text.remove(at + 1);
    }
    let password = dir.path().join("redis.password");
    std::fs::write(&password, "fleet secret\n").unwrap();
    let text = text.replace(
        "\"/etc/portcullis/redis.password\"",
        &format!("\"{}\"", password.display()),
    );
    let config = dir.path().join("portcullis.toml");
    std::fs::write(&config, &text).unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.contains(": OK"),
        "{said}\n{text}"
    );
    assert!(text.contains("\n[cluster]\nredis = \"redis://"), "{text}");
}
