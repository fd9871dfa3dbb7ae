//! `[cluster]`: nodes sharing state through Debian's real `redis-server`,
//! started by the test on 127.0.0.1. The [`Redis`] here and [`node`] are
//! what the fleet-state tests build on.
//!
//! Proven here: two nodes list each other as live; Redis killed, both
//! keep serving logins and transfers, `ctl status` and the metric say it is
//! down, the log says so once; Redis back, both share again; a node
//! killed with `kill -9` leaves the live list within the heartbeat's
//! time to live, and its sessions leave `ctl sessions` with it; a node
//! stopped leaves it at once, and its restart is not taken for a second
//! process with its name (which is logged as an error); a password from `password_file` (and a wrong one: the
//! node serves from its own state); `rediss://` with `ca_file` (and
//! without it: not trusted, the node serves from its own state); two
//! fleets with their own `key_prefix` on one Redis do not see each other.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Raw, Server, Setup, BIN};
use crate::tools::installed;

const REDIS: &str = "/usr/bin/redis-server";

/// A running redis-server on 127.0.0.1, killed on drop.
pub(crate) struct Redis {
    child: Option<Child>,
    pub port: u16,
    password: Option<String>,
    /// Serve TLS only (`--tls-port`), with a certificate for 127.0.0.1
    /// from a CA whose certificate is `dir/ca.pem`.
    tls: bool,
    dir: tempfile::TempDir,
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Redis {
    /// `None` (and `SKIP redis-server`) when it is not installed.
    pub(crate) fn start() -> Option<Redis> {
        Self::start_with(None)
    }

    /// With `requirepass`.
    pub(crate) fn start_with(password: Option<&str>) -> Option<Redis> {
        Self::start_as(password, false)
    }

    /// Serving TLS only, with a certificate from a CA made here
    /// ([`Redis::ca_file`]).
    pub(crate) fn start_tls() -> Option<Redis> {
        Self::start_as(None, true)
    }

    fn start_as(password: Option<&str>, tls: bool) -> Option<Redis> {
        if !installed(Path::new(REDIS).exists(), "redis-server") {
            return None;
        }
        // A free port: bound, learned and released just before Redis takes it.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut r = Redis {
            child: None,
            port,
            password: password.map(str::to_owned),
            tls,
            dir: tempfile::tempdir().unwrap(),
        };
        if tls {
            write_pki(r.dir.path());
        }
        r.restart();
        Some(r)
    }

    /// `redis://127.0.0.1:PORT/0` (`rediss://` for TLS).
    pub(crate) fn url(&self) -> String {
        let s = if self.tls { "s" } else { "" };
        format!("redis{s}://127.0.0.1:{}/0", self.port)
    }

    /// The CA of a TLS server's certificate.
    pub(crate) fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// Kill it (its data is gone: it keeps nothing on disk).
    pub(crate) fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it (again) on the same port, empty.
    pub(crate) fn restart(&mut self) {
        self.stop();
        let mut cmd = Command::new(REDIS);
        cmd.args(["--bind", "127.0.0.1"]);
        if self.tls {
            let d = self.dir.path();
            cmd.args(["--port", "0", "--tls-port"])
                .arg(self.port.to_string())
                .arg("--tls-cert-file")
                .arg(d.join("cert.pem"))
                .arg("--tls-key-file")
                .arg(d.join("key.pem"))
                .arg("--tls-ca-cert-file")
                .arg(d.join("ca.pem"))
                .args(["--tls-auth-clients", "no"]);
        } else {
            cmd.arg("--port").arg(self.port.to_string());
        }
        cmd.args(["--save", "", "--appendonly", "no", "--dir"])
            .arg(self.dir.path());
        if let Some(p) = &self.password {
            cmd.args(["--requirepass", p]);
        }
        let log = std::fs::File::create(self.dir.path().join("redis.log")).unwrap();
        self.child = Some(
            cmd.stdout(log)
                .stderr(Stdio::null())
                .spawn()
                .expect("start redis-server"),
        );
        let up = (0..200).any(|_| {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(25));
            false
        });
        assert!(up, "redis-server did not listen on {}", self.port);
    }

    /// `redis-cli ARGS...` against it; its output.
    pub(crate) fn cli(&self, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string());
        if let Some(p) = &self.password {
            cmd.env("REDISCLI_AUTH", p);
        }
        if self.tls {
            cmd.arg("--tls").arg("--cacert").arg(self.ca_file());
        }
        let out = cmd.args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A CA and a certificate it signed for 127.0.0.1: `dir/ca.pem`,
/// `dir/cert.pem`, `dir/key.pem`.
fn write_pki(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "cluster test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().unwrap())];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

/// A node named `name` sharing state through `redis` (more `[cluster]`
/// lines in `cluster`, `[limits]` lines in `limits`), with its control
/// socket (returned) and metrics, its log watched.
pub(crate) fn node(
    name: &str,
    url: &str,
    cluster: &str,
    limits: &'static str,
) -> (Server, tempfile::TempDir, PathBuf) {
    node_with(
        name,
        url,
        cluster,
        Setup {
            limits,
            metrics: true,
            ..Setup::default()
        },
    )
}

/// The same from `base` (its `sections`, `extra_server` and `watch_log`
/// are the node's).
pub(crate) fn node_with(
    name: &str,
    url: &str,
    cluster: &str,
    base: Setup,
) -> (Server, tempfile::TempDir, PathBuf) {
    let sockdir = tempfile::tempdir().unwrap();
    let socket = sockdir.path().join("control.sock");
    let sections: &'static str = Box::leak(
        format!(
            "[control]\nsocket = \"{}\"\n[cluster]\nredis = \"{url}\"\n{cluster}",
            socket.display()
        )
        .into_boxed_str(),
    );
    let extra_server: &'static str =
        Box::leak(format!("node_name = \"{name}\"\n").into_boxed_str());
    let s = Server::start_with(Setup {
        sections,
        extra_server,
        watch_log: true,
        ..base
    });
    (s, sockdir, socket)
}

/// `portcullis ctl --socket SOCKET ARGS... --json`, which must succeed.
pub(crate) fn ctl_json(socket: &Path, args: &[&str]) -> serde_json::Value {
    let out: Output = Command::new(BIN)
        .arg("ctl")
        .arg("--socket")
        .arg(socket)
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Ask `f` every 100 ms until it is true, for at most `limit`.
pub(crate) fn within(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Ask `changed` (every 100 ms) until it is true, and fail when a check
/// begun later than `bound` after `since` still finds the old state. What
/// is held to `bound` is when each check began, not when it ended: a
/// loaded machine may take long to run a check (a `ctl` process, a
/// login), but a check begun past the bound must see the change. Returns
/// when the check that saw it began.
pub(crate) fn changed_within(
    since: Instant,
    bound: Duration,
    mut changed: impl FnMut() -> bool,
) -> Duration {
    loop {
        let began = since.elapsed();
        if changed() {
            return began;
        }
        assert!(
            began <= bound,
            "not yet changed in a check begun {began:?} after (bound {bound:?})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The bound after a `kill -9` for what a node's heartbeat and refreshes
/// keep alive: the documented 6 s after the last one (made before the
/// kill), and half a second for one sent just before the kill that Redis
/// runs just after it.
pub(crate) const AFTER_KILL: Duration = Duration::from_millis(6500);

fn cluster_status(socket: &Path) -> serde_json::Value {
    ctl_json(socket, &["status"])["cluster"].clone()
}

fn metric(server: &Server, name: &str) -> Option<f64> {
    let (code, page) = crate::ops::get(server.metrics.unwrap(), "/metrics");
    assert_eq!(code, 200);
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

/// A login and a listing work (the node serves).
fn serves(server: &Server) {
    let mut c = Raw::login(server.addr, "alice");
    let _data = c.pasv();
    let r = c.cmd("NLST");
    assert!(r.starts_with("150 ") || r.starts_with("125 "), "{r}");
    let done = c.reply();
    assert!(done.starts_with("226 "), "{done}");
}

#[test]
fn two_nodes_see_each_other_and_serve_on_while_redis_is_down() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let url = redis.url();
    let (n1, _d1, s1) = node("node-a", &url, "", "");
    let (n2, _d2, s2) = node("node-b", &url, "", "");
    // Both beat once before serving.
    let st = cluster_status(&s1);
    assert_eq!(st["redis"], "up", "{st}");
    assert_eq!(st["node"], "node-a");
    assert_eq!(st["nodes"], serde_json::json!(["node-a", "node-b"]), "{st}");
    assert_eq!(metric(&n1, "portcullis_cluster_redis_up"), Some(1.0));
    assert!(redis
        .cli(&["GET", "portcullis:node:node-b"])
        .contains("\"pid\""));
    serves(&n1);

    redis.stop();
    // The next heartbeat (every 2 s) finds it gone.
    for (n, s) in [(&n1, &s1), (&n2, &s2)] {
        assert!(
            within(Duration::from_secs(10), || cluster_status(s)["redis"]
                == "down"),
            "{}",
            n.log()
        );
        assert_eq!(cluster_status(s)["nodes"], serde_json::Value::Null);
        assert_eq!(metric(n, "portcullis_cluster_redis_up"), Some(0.0));
        assert!(metric(n, "portcullis_cluster_redis_failed_calls_total").unwrap() >= 1.0);
        serves(n);
    }
    let log = n1.wait_for_log("cluster: Redis unreachable", 0, Duration::from_secs(5));
    assert_eq!(
        log.matches("cluster: Redis unreachable").count(),
        1,
        "{log}"
    );

    redis.restart();
    for s in [&s1, &s2] {
        assert!(within(Duration::from_secs(10), || {
            let st = cluster_status(s);
            st["redis"] == "up" && st["nodes"] == serde_json::json!(["node-a", "node-b"])
        }));
    }
    n2.wait_for_log("cluster: Redis reachable again", 0, Duration::from_secs(5));
    assert_eq!(metric(&n2, "portcullis_cluster_redis_up"), Some(1.0));
    serves(&n2);
}

#[test]
fn a_node_killed_leaves_the_live_list_and_the_sessions_list_within_its_ttl() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let url = redis.url();
    let (n1, _d1, s1) = node("keeper", &url, "", "");
    let (n2, _d2, _s2) = node("victim", &url, "", "");
    assert_eq!(
        cluster_status(&s1)["nodes"],
        serde_json::json!(["keeper", "victim"])
    );
    let _mine = Raw::login(n1.addr, "bob");
    let _theirs = Raw::login(n2.addr, "alice");
    // USER@NODE of each session `ctl sessions` on the keeper lists, and
    // whether the list is whole.
    let listed = || {
        let l = ctl_json(&s1, &["sessions"]);
        let mut v: Vec<String> = l["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                format!(
                    "{}@{}",
                    s["user"].as_str().unwrap(),
                    s["node"].as_str().unwrap()
                )
            })
            .collect();
        v.sort();
        (v, l["partial"] == false)
    };
    let both = vec!["alice@victim".to_owned(), "bob@keeper".to_owned()];
    // The victim's bus may still be subscribing just after its start.
    assert!(within(Duration::from_secs(10), || listed() == (both.clone(), true)));

    n2.signal("KILL");
    let killed = Instant::now();
    // Gone from the live list no later than the documented 6 s after the
    // last heartbeat, and from the list of sessions with it: its sessions
    // are no longer listed, nor is the list partial for want of its answer.
    changed_within(killed, AFTER_KILL, || {
        cluster_status(&s1)["nodes"] == serde_json::json!(["keeper"])
    });
    let alone = vec![both[1].clone()];
    changed_within(killed, AFTER_KILL, || listed() == (alone.clone(), true));
}

#[test]
fn a_node_stopped_leaves_at_once_and_its_restart_is_not_taken_for_another() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let url = redis.url();
    const TAKEN: &str = "another process uses this server.node_name";
    let (_n1, _d1, s1) = node("stayer", &url, "", "");
    let (mut n2, _d2, _s2) = node("restarted", &url, "", "");
    // A second live process with a node's name is a mistake, and said so.
    let (twin, _dt, _st) = node("stayer", &url, "", "");
    twin.wait_for_log(TAKEN, 0, Duration::from_secs(5));
    drop(twin);
    n2.signal("TERM");
    assert!(n2.exit_within(Duration::from_secs(10)).success());
    // Gone from the live list at once, not when its key expires.
    assert_eq!(cluster_status(&s1)["nodes"], serde_json::json!(["stayer"]));
    // Its restart is not taken for another process with its name.
    let (n3, _d3, _s3) = node("restarted", &url, "", "");
    let log = n3.wait_for_log(
        "cluster: sharing state through Redis",
        0,
        Duration::from_secs(5),
    );
    assert!(!log.contains(TAKEN), "{log}");
    assert_eq!(
        cluster_status(&s1)["nodes"],
        serde_json::json!(["restarted", "stayer"])
    );
}

#[test]
fn a_password_from_its_file_and_a_wrong_one() {
    let Some(redis) = Redis::start_with(Some("fleet-secret-1")) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good");
    let bad = dir.path().join("bad");
    std::fs::write(&good, "fleet-secret-1\n").unwrap();
    std::fs::write(&bad, "not-it\n").unwrap();
    let url = redis.url();
    let with = |f: &Path| format!("password_file = \"{}\"\n", f.display());
    let (_n1, _d1, s1) = node("with-password", &url, &with(&good), "");
    assert_eq!(cluster_status(&s1)["redis"], "up");
    // A wrong password: the node starts and serves from its own state.
    let (n2, _d2, s2) = node("wrong-password", &url, &with(&bad), "");
    assert_eq!(cluster_status(&s2)["redis"], "down");
    serves(&n2);
    assert!(!n2.log().contains("not-it"), "the password was logged");
}

#[test]
fn rediss_with_the_ca_of_its_ca_file_and_without_it() {
    let Some(redis) = Redis::start_tls() else {
        return;
    };
    let url = redis.url();
    assert!(url.starts_with("rediss://"), "{url}");
    let ca = format!("ca_file = \"{}\"\n", redis.ca_file().display());
    let (_n1, _d1, s1) = node("over-tls", &url, &ca, "");
    let st = cluster_status(&s1);
    assert_eq!(st["redis"], "up", "{st}");
    assert!(redis
        .cli(&["GET", "portcullis:node:over-tls"])
        .contains("\"pid\""));
    // Without the CA, the server's certificate is not trusted: the node
    // serves from its own state.
    let (n2, _d2, s2) = node("no-ca", &url, "", "");
    assert_eq!(cluster_status(&s2)["redis"], "down");
    serves(&n2);
}

#[test]
fn fleets_with_their_own_key_prefix_share_one_redis_without_meeting() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let url = redis.url();
    let (_a1, _da1, sa1) = node("a1", &url, "key_prefix = \"fleet-a:\"\n", "");
    let (_a2, _da2, _sa2) = node("a2", &url, "key_prefix = \"fleet-a:\"\n", "");
    let (_b1, _db1, sb1) = node("b1", &url, "key_prefix = \"fleet-b:\"\n", "");
    assert_eq!(
        cluster_status(&sa1)["nodes"],
        serde_json::json!(["a1", "a2"])
    );
    assert_eq!(cluster_status(&sb1)["nodes"], serde_json::json!(["b1"]));
    let keys = redis.cli(&["KEYS", "*"]);
    assert!(
        keys.contains("fleet-a:node:a1") && keys.contains("fleet-b:node:b1"),
        "{keys}"
    );
    assert!(!keys.contains("portcullis:"), "{keys}");
}
