//! `passive.single_port`: every passive data connection on one port, each
//! handed to the session that awaits one from its client address. Many
//! sessions from one address (plain and FTPS, ftplib threads and rclone's
//! parallel transfers) move distinct files both ways through the one port;
//! a connection from another address is refused; a client that never
//! connects frees the port after its timeout.

use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{read_all, Raw, Server, Setup, PASSWORD};
use crate::tools::{have, run};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn single_port_server(tls: Option<String>, accept_timeout: &'static str) -> (Server, u16) {
    let port = free_port();
    let passive: &'static str = Box::leak(format!("single_port = {port}").into_boxed_str());
    let server = Server::start_with(Setup {
        passive_ports: String::new(),
        extra_passive: passive,
        accept_timeout,
        tls,
        ..Setup::default()
    });
    (server, port)
}

/// Threads of sessions from 127.0.0.1, each storing and fetching its own
/// files; every PASV must name the one port.
const CLIENTS: &str = r#"
import ftplib, io, ssl, sys, threading
host, port, pw, single, cafile = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
class Reusing(ftplib.FTP_TLS):
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size
    def makepasv(self):
        h, p = ftplib.FTP.makepasv(self)
        assert p == single, (p, single)
        return h, p
class Plain(ftplib.FTP):
    def makepasv(self):
        h, p = ftplib.FTP.makepasv(self)
        assert p == single, (p, single)
        return h, p
errors = []
def client(n):
    try:
        if cafile:
            f = Reusing(context=ssl.create_default_context(cafile=cafile))
        else:
            f = Plain()
        f.connect(host, port, timeout=30)
        f.login("alice", pw)
        if cafile:
            f.prot_p()
        for i in range(4):
            data = bytes(((n * 7919 + i * 31 + k) * 13) % 251 for k in range(50_000 + n * 1000 + i))
            name = "c%d-%d.bin" % (n, i)
            f.storbinary("STOR " + name, io.BytesIO(data))
            out = io.BytesIO()
            f.retrbinary("RETR " + name, out.write)
            assert out.getvalue() == data, name
        assert len([x for x in f.nlst() if x.startswith("c%d-" % n)]) == 4
        f.quit()
    except Exception as e:
        errors.append("client %d: %r" % (n, e))
threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
for t in threads: t.start()
for t in threads: t.join(120)
assert not any(t.is_alive() for t in threads), "a client hung"
print("\n".join(errors) if errors else "ok")
"#;

fn clients(server: &Server, single: u16, host: &str) -> String {
    let cafile = server
        .cert
        .as_ref()
        .map_or(String::new(), |c| c.display().to_string());
    run(Command::new("python3").args([
        "-c",
        CLIENTS,
        host,
        &server.addr.port().to_string(),
        PASSWORD,
        &single.to_string(),
        &cafile,
    ]))
}

/// Every file the clients stored is there with its own bytes.
fn check_files(server: &Server) {
    for n in 0..8u64 {
        for i in 0..4u64 {
            let want: Vec<u8> = (0..50_000 + n * 1000 + i)
                .map(|k| (((n * 7919 + i * 31 + k) * 13) % 251) as u8)
                .collect();
            let got = std::fs::read(server.alice.join(format!("c{n}-{i}.bin"))).unwrap();
            assert!(got == want, "c{n}-{i}.bin differs");
        }
    }
}

#[test]
fn many_sessions_from_one_address_share_the_port() {
    if !have("python3") {
        return;
    }
    let (server, port) = single_port_server(None, "10s");
    assert_eq!(clients(&server, port, "127.0.0.1").trim(), "ok");
    check_files(&server);
}

#[test]
fn many_ftps_sessions_from_one_address_share_the_port() {
    if !have("python3") {
        return;
    }
    let (server, port) = single_port_server(
        Some("mode = \"required\"\ndata_protection = \"required\"\n".into()),
        "10s",
    );
    assert_eq!(clients(&server, port, "localhost").trim(), "ok");
    check_files(&server);
}

#[test]
fn rclone_parallel_transfers_through_one_port() {
    let (server, _) = single_port_server(None, "10s");
    let Some(rclone) = crate::tools::Rclone::new(&server) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir(&src).unwrap();
    for i in 0..12u64 {
        let data = crate::harness::random_bytes(20_000 + 5_000 * i as usize, i);
        std::fs::write(src.join(format!("f{i}.bin")), data).unwrap();
    }
    let remote = rclone.remote("tree");
    run(rclone
        .cmd()
        .args(["--transfers", "4", "--timeout", "15s", "--contimeout", "5s"])
        .args(["copy", src.to_str().unwrap(), &remote]));
    let back = work.path().join("back");
    run(rclone
        .cmd()
        .args(["--transfers", "4", "--timeout", "15s", "--contimeout", "5s"])
        .args(["copy", &remote, back.to_str().unwrap()]));
    for i in 0..12u64 {
        let name = format!("f{i}.bin");
        let want = std::fs::read(src.join(&name)).unwrap();
        assert!(
            std::fs::read(server.alice.join("tree").join(&name)).unwrap() == want,
            "{name} stored"
        );
        assert!(
            std::fs::read(back.join(&name)).unwrap() == want,
            "{name} back"
        );
    }
}

#[test]
fn lftp_and_curl_in_parallel_through_one_port() {
    if !(have("lftp") && have("curl")) {
        return;
    }
    let (server, _) = single_port_server(None, "10s");
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir(&src).unwrap();
    let files: Vec<(String, Vec<u8>)> = (0..8u64)
        .map(|i| {
            let data = crate::harness::random_bytes(30_000 + 7_000 * i as usize, 40 + i);
            (format!("f{i}.bin"), data)
        })
        .collect();
    for (name, data) in &files {
        std::fs::write(src.join(name), data).unwrap();
    }
    // lftp: four transfers at once each way, passive only.
    let lftp = |cmd: String| {
        let script = format!(
            "set ftp:ssl-allow no; set ftp:passive-mode on; set net:max-retries 1; \
             set net:timeout 20; open -u alice,'{PASSWORD}' ftp://{}; {cmd}",
            server.addr
        );
        run(Command::new("lftp").args(["-c", &script]));
    };
    lftp(format!("mirror -R -P 4 {} /tree", src.display()));
    let back = work.path().join("back");
    lftp(format!("mirror -P 4 /tree {}", back.display()));
    // curl: four at once, each uploading then fetching its file.
    let base = format!("ftp://{}/curl/", server.addr);
    std::fs::create_dir(server.alice.join("curl")).unwrap();
    let curl = |args: &[&std::ffi::OsStr]| {
        run(Command::new("curl")
            .args(["-sS", "--max-time", "30", "--ftp-pasv", "--user"])
            .arg(format!("alice:{PASSWORD}"))
            .args(args));
    };
    std::thread::scope(|s| {
        for (name, _) in &files[..4] {
            let (up, down) = (src.join(name), work.path().join(format!("curl-{name}")));
            let url = format!("{base}{name}");
            let curl = &curl;
            s.spawn(move || {
                curl(&["-T".as_ref(), up.as_ref(), url.as_ref()]);
                curl(&["-o".as_ref(), down.as_ref(), url.as_ref()]);
            });
        }
    });
    for (name, want) in &files {
        let got = |p: std::path::PathBuf| std::fs::read(&p).unwrap_or_default() == *want;
        assert!(
            got(server.alice.join("tree").join(name)),
            "lftp stored {name}"
        );
        assert!(got(back.join(name)), "lftp fetched {name}");
    }
    for (name, want) in &files[..4] {
        let got = |p: std::path::PathBuf| std::fs::read(&p).unwrap_or_default() == *want;
        assert!(
            got(server.alice.join("curl").join(name)),
            "curl stored {name}"
        );
        assert!(
            got(work.path().join(format!("curl-{name}"))),
            "curl fetched {name}"
        );
    }
}

#[test]
fn foreign_addresses_are_refused_and_unused_reservations_expire() {
    let (server, port) = single_port_server(None, "2s");
    std::fs::write(server.alice.join("f.txt"), b"one port\n").unwrap();
    let data_addr = SocketAddr::from(([127, 0, 0, 1], port));
    // A connection from another address, while alice's session awaits
    // one: closed, and her own connection is still hers.
    let mut c = Raw::login(server.addr, "alice");
    let r = c.cmd("EPSV");
    assert!(r.contains(&format!("(|||{port}|)")), "{r}");
    let foreign = {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        s.bind(&SocketAddr::from(([127, 0, 0, 2], 0)).into())
            .unwrap();
        s.connect(&data_addr.into()).unwrap();
        TcpStream::from(s)
    };
    let data = TcpStream::connect(data_addr).unwrap();
    assert!(c.cmd("RETR f.txt").starts_with("150 "));
    assert_eq!(read_all(data), b"one port\n");
    assert!(c.reply().starts_with("226 "));
    let mut foreign = foreign;
    foreign
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = foreign.write_all(b"x");
    assert!(
        read_all(foreign).is_empty(),
        "the foreign connection got nothing"
    );
    assert!(server
        .log()
        .contains("no session from this address awaits one"));
    // A session that reserves the port and never connects holds up the
    // next session from its address only until its reservation expires.
    let mut idle = Raw::login(server.addr, "alice");
    assert!(idle.cmd("PASV").starts_with("227 "));
    let mut next = Raw::login(server.addr, "alice");
    let started = Instant::now();
    assert!(next.cmd("PASV").starts_with("227 "));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(8),
        "{waited:?}"
    );
    let data = TcpStream::connect(data_addr).unwrap();
    assert!(next.cmd("RETR f.txt").starts_with("150 "));
    assert_eq!(read_all(data), b"one port\n");
    assert!(next.reply().starts_with("226 "));
    // The idle session's transfer finds its reservation gone: 425.
    assert!(idle.cmd("RETR f.txt").starts_with("150 "));
    let r = idle.reply();
    assert!(r.starts_with("425 ") && r.contains("reservation"), "{r}");
    assert!(!server.log().contains("panicked"));
}

/// A session that repeats PASV while another session from its address
/// waits for the port does not starve it: the waiter came first, so it
/// gets the port at the next repeat, well within `single_port_wait`, and
/// the repeat waits its turn behind it.
#[test]
fn a_repeated_pasv_queues_behind_the_session_waiting_for_the_port() {
    let port = free_port();
    let passive: &'static str =
        Box::leak(format!("single_port = {port}\nsingle_port_wait = \"4s\"").into_boxed_str());
    let server = Server::start_with(Setup {
        passive_ports: String::new(),
        extra_passive: passive,
        accept_timeout: "30s",
        ..Setup::default()
    });
    std::fs::write(server.alice.join("f.txt"), b"first come\n").unwrap();
    let mut a = Raw::login(server.addr, "alice");
    let mut b = Raw::login(server.addr, "alice");
    assert!(a.cmd("PASV").starts_with("227 "));
    let (answered, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let started = Instant::now();
        let r = b.cmd("PASV");
        answered.send(()).unwrap();
        (r, started.elapsed(), b)
    });
    // A repeats its PASV every 300 ms until B has its answer.
    for _ in 0..40 {
        if rx.recv_timeout(Duration::from_millis(300)).is_ok() {
            break;
        }
        let r = a.cmd("PASV");
        assert!(r.starts_with("227 ") || r.starts_with("425 "), "{r}");
    }
    let (r, waited, mut b) = waiter.join().unwrap();
    assert!(r.starts_with("227 "), "B starved by A's repeats: {r}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    // The port is B's: its transfer goes through.
    let data = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))).unwrap();
    assert!(b.cmd("RETR f.txt").starts_with("150 "));
    assert_eq!(read_all(data), b"first come\n");
    assert!(b.reply().starts_with("226 "));
}

/// The Kubernetes manifests in `deploy/kubernetes` validate against the
/// API's schemas (offline, `kubernetes-validate` from PyPI, which
/// `.ci/run` installs), and the config file in the ConfigMap passes
/// `check-config` once its placeholders are filled in.
#[test]
fn kubernetes_manifests_validate() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/kubernetes");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".yaml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 4, "{files:?}");
    if have("kubernetes-validate") {
        run(Command::new("kubernetes-validate")
            .arg("--strict")
            .args(&files));
    }
    let map = std::fs::read_to_string(format!("{dir}/configmap.yaml")).unwrap();
    let toml: String = map
        .lines()
        .skip_while(|l| !l.contains("portcullis.toml: |"))
        .skip(1)
        .map(|l| l.strip_prefix("    ").unwrap_or(l.trim()))
        .collect::<Vec<_>>()
        .join("\n");
    assert!(toml.contains("single_port = 40000"), "{toml}");
    // The pod runs as user 10000; check-config runs here as root, which
    // without server.user it refuses as serve would.
    let toml = toml.replacen("[server]\n", "[server]\nallow_root = true\n", 1);
    assert!(
        toml.contains("implicit_listen = [\"0.0.0.0:9990\"]"),
        "{toml}"
    );
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("alice")).unwrap();
    // The Secret's files, as the pod sees them.
    let tls = work.path().join("tls");
    run(Command::new(crate::harness::BIN)
        .args(["gen-cert", "--host", "localhost", "--out"])
        .arg(&tls));
    std::fs::rename(tls.join("cert.pem"), tls.join("tls.crt")).unwrap();
    std::fs::rename(tls.join("key.pem"), tls.join("tls.key")).unwrap();
    let toml = toml
        .replace("/etc/portcullis/tls", &tls.display().to_string())
        .replace(
            "$argon2id$v=19$m=19456,t=2,p=1$REPLACE$REPLACE",
            crate::harness::password_hash(),
        )
        .replace(
            "/srv/ftp/alice",
            &work.path().join("alice").display().to_string(),
        );
    let file = work.path().join("portcullis.toml");
    std::fs::write(&file, toml).unwrap();
    let out = run(Command::new(crate::harness::BIN)
        .arg("check-config")
        .arg(&file));
    assert!(out.contains("OK"), "{out}");
}
