//! `[tls.acme]` against pebble (Let's Encrypt's test CA, Debian's `pebble`
//! package) and its `pebble-challtestsrv` as the DNS server that sends the
//! domain to 127.0.0.1: the certificate obtained at start and seen by curl
//! (`--ssl-reqd`, trusting pebble's root from its management endpoint)
//! after a first attempt that found pebble down (`/ready` 503 meanwhile),
//! renewed ahead of a short validity and seen by a new client without a
//! restart (a SIGHUP reload in between), and kept serving while pebble is
//! down at the next renewal.
//!
//! pebble needs its ports in its config file: they are taken free from the
//! kernel (bound on port 0, then closed) just before it starts.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::{Server, PASSWORD};
use crate::tools::have;

const DOMAIN: &str = "ftp.portcullis.test";

/// A child process killed when the test ends, however it ends.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Wait (bounded) until `port` accepts a connection.
fn wait_listening(port: u16, what: &str) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} is not listening on {port}");
}

/// pebble's ports (the directory's and the management endpoint's) and
/// its own TLS certificate, signed by a CA made here and written to
/// `dir/pebble-ca.pem` (the server's `ca_file`), ready before it starts.
struct Pebble {
    port: u16,
    mgmt: u16,
}

/// Make pebble's TLS certificate and choose its ports.
fn prepare_pebble(dir: &Path) -> Pebble {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // Not rcgen's default name, which the leaf has: curl would take the
    // leaf for self-signed.
    ca.distinguished_name
        .push(DnType::CommonName, "portcullis test: pebble's CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("pebble-ca.pem"), ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    std::fs::write(dir.join("pebble-cert.pem"), leaf.pem()).unwrap();
    std::fs::write(dir.join("pebble-key.pem"), key.serialize_pem()).unwrap();
    Pebble {
        port: free_port(),
        mgmt: free_port(),
    }
}

/// pebble with HTTP-01 validation against `http_port` (TLS-ALPN-01
/// against `tls_port`), names resolved by challtestsrv on `dns`,
/// certificates valid `validity_s`.
fn start_pebble(
    dir: &Path,
    p: &Pebble,
    (http_port, tls_port): (u16, u16),
    dns: u16,
    validity_s: u64,
) -> Killed {
    let (port, mgmt) = (p.port, p.mgmt);
    let config = serde_json::json!({"pebble": {
        "listenAddress": format!("127.0.0.1:{port}"),
        "managementListenAddress": format!("127.0.0.1:{mgmt}"),
        "certificate": dir.join("pebble-cert.pem"),
        "privateKey": dir.join("pebble-key.pem"),
        "httpPort": http_port,
        "tlsPort": tls_port,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
        "certificateValidityPeriod": validity_s,
    }});
    std::fs::write(dir.join("pebble.json"), config.to_string()).unwrap();
    let child = Command::new("pebble")
        .arg("-config")
        .arg(dir.join("pebble.json"))
        .args(["-dnsserver", &format!("127.0.0.1:{dns}")])
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .env("PEBBLE_AUTHZREUSE", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pebble");
    let child = Killed(child);
    wait_listening(port, "pebble");
    wait_listening(mgmt, "pebble's management");
    child
}

/// challtestsrv as a DNS server only, answering every A query 127.0.0.1.
fn start_dns() -> (Killed, u16) {
    let dns = free_udp_port();
    let mgmt = free_port();
    let mut child = Command::new("pebble-challtestsrv")
        .args(["-dns01", &format!("127.0.0.1:{dns}")])
        .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
        .args(["-management", &format!("127.0.0.1:{mgmt}")])
        .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start pebble-challtestsrv");
    let stderr = child.stderr.take().unwrap();
    let child = Killed(child);
    // Its management port opens after its DNS server.
    wait_listening(mgmt, "pebble-challtestsrv");
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut std::io::BufReader::new(stderr), &mut sink);
    });
    (child, dns)
}

/// What curl sees of the server's certificate over AUTH TLS: its "start
/// date" line, with the root pebble issues under trusted.
fn served_start_date(server: &Server, roots: &Path) -> String {
    curl_start_date("ftp", server.addr.port(), roots)
}

/// [`served_start_date`] over `scheme` ("ftp" with AUTH TLS, "ftps"
/// implicit) on `port`.
fn curl_start_date(scheme: &str, port: u16, roots: &Path) -> String {
    let out = Command::new("curl")
        .args(["-sS", "-v", "--ssl-reqd", "--max-time", "20"])
        .arg("--cacert")
        .arg(roots)
        .args(["--resolve", &format!("{DOMAIN}:{port}:127.0.0.1")])
        .args(["-u", &format!("alice:{PASSWORD}")])
        .arg(format!("{scheme}://{DOMAIN}:{port}/"))
        .output()
        .expect("run curl");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "curl failed: {err}");
    err.lines()
        .find_map(|l| l.split("start date: ").nth(1))
        .unwrap_or_else(|| panic!("no certificate in curl's output: {err}"))
        .to_owned()
}

/// `portcullis ctl --socket SOCKET status --json`'s `certificate`.
fn ctl_status_certificate(socket: &std::path::Path) -> serde_json::Value {
    let out = Command::new(crate::harness::BIN)
        .args(["ctl", "--socket"])
        .arg(socket)
        .args(["status", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["certificate"].clone()
}

#[test]
fn issued_at_start_renewed_and_kept_while_the_ca_is_down() {
    if !have("pebble") || !have("pebble-challtestsrv") || !have("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_dns, dns_port) = start_dns();
    let http_port = free_port();
    let pebble = prepare_pebble(d);
    let (port, mgmt) = (pebble.port, pebble.mgmt);
    let root = d.join("root");
    std::fs::create_dir(&root).unwrap();
    let state = d.join("acme-state");
    let config = format!(
        r#"[server]
listen = ["127.0.0.1:0"]
allow_root = true

[passive]
ports = "{ports}"

[metrics]
listen = "127.0.0.1:0"

[control]
socket = "{socket}"

[tls]
mode = "required"

[tls.acme]
domains = ["{DOMAIN}"]
contact = ["ops@portcullis.test"]
directory = "https://127.0.0.1:{port}/dir"
ca_file = "{ca}"
state_dir = "{state}"
http_listen = "127.0.0.1:{http_port}"
renew_before = "30s"

[[users]]
name = "alice"
password_hash = "{hash}"
root = "{root}"
"#,
        ports = crate::harness::passive_ports(4),
        ca = d.join("pebble-ca.pem").display(),
        state = state.display(),
        hash = crate::harness::password_hash(),
        root = root.display(),
        socket = d.join("control.sock").display(),
    );
    let path = d.join("portcullis.toml");
    std::fs::write(&path, config).unwrap();
    let server = Server::start_from_config_env(
        tempfile::tempdir().unwrap(),
        &path,
        &[("PORTCULLIS_LOG", "info".to_owned())],
    );
    // pebble is not there yet: the first order fails, the server waits
    // (not ready) and tries again.
    server.wait_for_log("ACME certificate order failed", 0, Duration::from_secs(30));
    let metrics = server.metrics.expect("metrics listener");
    assert_eq!(
        crate::ops::get(metrics, "/ready"),
        (503, "starting\n".into())
    );
    // 40 s certificates renewed 30 s (plus up to 3 s of jitter) ahead.
    let pebble = start_pebble(d, &pebble, (http_port, free_port()), dns_port, 40);
    server.wait_for_log("ACME certificate installed", 0, Duration::from_secs(60));
    // Ready once the waiting start sees the certificate (just after the
    // log line): asked again for up to 10 s.
    let mut ready = crate::ops::get(metrics, "/ready");
    for _ in 0..100 {
        if ready.0 == 200 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        ready = crate::ops::get(metrics, "/ready");
    }
    assert_eq!(ready, (200, "ready\n".into()));
    let (_, page) = crate::ops::get(metrics, "/metrics");
    let left: f64 = page
        .lines()
        .find_map(|l| l.strip_prefix("portcullis_tls_certificate_expiry_seconds "))
        .expect("the expiry gauge")
        .parse()
        .unwrap();
    assert!((0.0..=40.0).contains(&left), "{left}");
    // `ctl status` shows the certificate: from ACME, when it expires,
    // installed, the failure before pebble was there cleared.
    let cert = ctl_status_certificate(&d.join("control.sock"));
    assert_eq!(cert["source"], "acme", "{cert}");
    assert!(
        cert["expires"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{cert}"
    );
    assert!(cert["acme"]["last_installed"].is_string(), "{cert}");
    assert!(cert["acme"]["last_error"].is_null(), "{cert}");
    // The state is private: account key and certificate, 0600.
    for f in ["account.json", "cert.pem", "key.pem"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    // pebble's issuing root, from its management endpoint.
    let roots = d.join("issuer.pem");
    let fetched = Command::new("curl")
        .args(["-sS", "--fail", "--cacert"])
        .arg(d.join("pebble-ca.pem"))
        .arg(format!("https://127.0.0.1:{mgmt}/roots/0"))
        .arg("-o")
        .arg(&roots)
        .status()
        .unwrap();
    assert!(fetched.success(), "pebble's root");
    let first = served_start_date(&server, &roots);
    // A reload before the renewal: the renewal still reaches the
    // handshakes (the reloaded configuration keeps the task's resolver).
    server.signal("HUP");
    server.wait_for_log("config reloaded", 0, Duration::from_secs(10));

    // Renewed ahead of the short validity: a new client sees the new one.
    let log = server.wait_for_log("ACME certificate installed", 1, Duration::from_secs(60));
    assert_eq!(log.matches("order failed").count(), 1, "{log}");
    let second = served_start_date(&server, &roots);
    assert_ne!(first, second, "the renewed certificate is served");

    // pebble down at the next renewal: the failure is logged, retried, and
    // the certificate served stays the one there was.
    drop(pebble);
    server.wait_for_log("ACME certificate order failed", 1, Duration::from_secs(60));
    assert_eq!(served_start_date(&server, &roots), second);
    let cert = ctl_status_certificate(&d.join("control.sock"));
    assert!(cert["acme"]["last_error"].is_string(), "{cert}");
    assert!(cert["acme"]["retry_at"].is_string(), "{cert}");
    assert!(cert["acme"]["last_installed"].is_string(), "{cert}");

    // A restart with the CA still down serves what state_dir keeps at once
    // (no wait for a first certificate), and goes on trying.
    drop(server);
    let server = Server::start_from_config_env(
        tempfile::tempdir().unwrap(),
        &path,
        &[("PORTCULLIS_LOG", "info".to_owned())],
    );
    assert_eq!(served_start_date(&server, &roots), second);
    let metrics = server.metrics.expect("metrics listener");
    assert_eq!(crate::ops::get(metrics, "/ready"), (200, "ready\n".into()));
    server.wait_for_log("ACME certificate order failed", 0, Duration::from_secs(60));
}

/// pebble's issuing root, from its management endpoint, written to
/// `dir/issuer.pem`.
fn fetch_root(dir: &Path, mgmt: u16) -> std::path::PathBuf {
    let roots = dir.join("issuer.pem");
    let fetched = Command::new("curl")
        .args(["-sS", "--fail", "--cacert"])
        .arg(dir.join("pebble-ca.pem"))
        .arg(format!("https://127.0.0.1:{mgmt}/roots/0"))
        .arg("-o")
        .arg(&roots)
        .status()
        .unwrap();
    assert!(fetched.success(), "pebble's root");
    roots
}

/// TLS-ALPN-01 (RFC 8737): pebble validates on the implicit-FTPS
/// listener's port (its `tlsPort`), which answers the `acme-tls/1`
/// handshake with the challenge certificate and closes it; the
/// certificate is issued at start and an FTPS client on that same port
/// gets it and an FTP session; it is renewed the same way while serving.
/// Afterwards an `acme-tls/1` handshake gets no certificate (no challenge
/// in progress), and no HTTP-01 listener was bound.
#[test]
fn tls_alpn_01_on_the_implicit_listener() {
    if !have("pebble") || !have("pebble-challtestsrv") || !have("curl") || !have("openssl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_dns, dns_port) = start_dns();
    let http_port = free_port();
    let implicit = free_port();
    let pebble = prepare_pebble(d);
    let (port, mgmt) = (pebble.port, pebble.mgmt);
    // 40 s certificates renewed 30 s (plus up to 3 s) ahead: the first
    // validation is answered while the server waits for its first
    // certificate, the renewal's by the running accept loop.
    let pebble_ca = start_pebble(d, &pebble, (http_port, implicit), dns_port, 40);
    let root = d.join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("hello.txt"), "hi\n").unwrap();
    let config = format!(
        r#"[server]
listen = ["127.0.0.1:0"]
allow_root = true

[passive]
ports = "{ports}"

[tls]
mode = "required"
implicit_listen = ["127.0.0.1:{implicit}"]

[tls.acme]
domains = ["{DOMAIN}"]
directory = "https://127.0.0.1:{port}/dir"
ca_file = "{ca}"
state_dir = "{state}"
challenge = "tls-alpn-01"
http_listen = "127.0.0.1:{http_port}"
renew_before = "30s"

[[users]]
name = "alice"
password_hash = "{hash}"
root = "{root}"
"#,
        ports = crate::harness::passive_ports(4),
        ca = d.join("pebble-ca.pem").display(),
        state = d.join("acme-state").display(),
        hash = crate::harness::password_hash(),
        root = root.display(),
    );
    let path = d.join("portcullis.toml");
    std::fs::write(&path, config).unwrap();
    let server = Server::start_from_config_env(
        tempfile::tempdir().unwrap(),
        &path,
        &[("PORTCULLIS_LOG", "debug".to_owned())],
    );
    let log = server.wait_for_log("ACME certificate installed", 0, Duration::from_secs(60));
    assert!(
        log.contains("ACME TLS-ALPN-01 validation handshake answered and closed"),
        "{log}"
    );
    assert!(!log.contains("HTTP-01 challenges answered"), "{log}");
    // tls.acme.http_listen is not bound with TLS-ALPN-01.
    assert!(std::net::TcpStream::connect(("127.0.0.1", http_port)).is_err());
    let roots = fetch_root(d, mgmt);
    // A normal FTPS client on the port the CA validated on: the issued
    // certificate and an FTP session (curl lists the root).
    assert_eq!(server.implicit.map(|a| a.port()), Some(implicit));
    let start = curl_start_date("ftps", implicit, &roots);
    assert!(!start.is_empty());
    let listing = Command::new("curl")
        .args(["-sS", "--ssl-reqd", "--max-time", "20", "--cacert"])
        .arg(&roots)
        .args(["--resolve", &format!("{DOMAIN}:{implicit}:127.0.0.1")])
        .args(["-u", &format!("alice:{PASSWORD}")])
        .arg(format!("ftps://{DOMAIN}:{implicit}/"))
        .output()
        .unwrap();
    assert!(listing.status.success());
    assert!(String::from_utf8_lossy(&listing.stdout).contains("hello.txt"));
    // And over AUTH TLS on the explicit port.
    assert_eq!(served_start_date(&server, &roots), start);
    // The renewal validates through the serving accept loop.
    let log = server.wait_for_log("ACME certificate installed", 1, Duration::from_secs(60));
    assert!(
        log.matches("ACME TLS-ALPN-01 validation handshake answered and closed")
            .count()
            >= 2,
        "{log}"
    );
    assert_ne!(curl_start_date("ftps", implicit, &roots), start);
    // pebble gone: no order, so no challenge in progress from here on.
    drop(pebble_ca);
    // acme-tls/1 with no challenge in progress: no certificate, no handshake.
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{implicit}")])
        .args(["-servername", DOMAIN, "-alpn", "acme-tls/1"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    assert!(!text.contains("BEGIN CERTIFICATE"), "{text}");
}

#[test]
fn tls_alpn_01_needs_an_implicit_listener() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        "[tls]\n[tls.acme]\ndomains = [\"a.example\"]\nchallenge = \"tls-alpn-01\"\n\n\
         [[users]]\nname = \"a\"\npassword_hash = \"x\"\nroot = \"/tmp\"\n",
    )
    .unwrap();
    let out = Command::new(crate::harness::BIN)
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        text.contains("tls.acme.challenge: \"tls-alpn-01\" needs an implicit-FTPS listener"),
        "{text}"
    );
}

#[test]
fn both_files_and_acme_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        "[tls]\ncert = \"/c.pem\"\nkey = \"/k.pem\"\n[tls.acme]\ndomains = [\"a.example\"]\n\n\
         [[users]]\nname = \"a\"\npassword_hash = \"x\"\nroot = \"/tmp\"\n",
    )
    .unwrap();
    let out = Command::new(crate::harness::BIN)
        .args(["check-config", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        text.contains("tls.acme: set either [tls.acme] or tls.cert"),
        "{text}"
    );
}

/// `tls.acme.state_dir` belongs to `server.user`: started as root with
/// `server.user = "nobody"` (and the CA down), the server makes the
/// directory 0700 and nobody's before the drop, so that the order tried
/// after it fails on the CA, not on the directory (the directories above
/// a missing state_dir are made 0755, not 0700, which would keep nobody
/// out); files a run as root left there (0600, root's) become nobody's,
/// still 0600, and the certificate they hold is served.
#[test]
fn state_dir_belongs_to_the_server_user() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, "nobody"]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    let me = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&me.stdout).trim() != "0" {
        crate::harness::skip("root (tls.acme.state_dir given to server.user)");
        return;
    }
    let (uid, gid) = (id("-u"), id("-g"));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // nobody must reach the state directory and alice's root.
    std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
    let pebble = prepare_pebble(d);
    let root = d.join("root");
    std::fs::create_dir(&root).unwrap();
    let config = |state: &Path| {
        format!(
            r#"[server]
listen = ["127.0.0.1:0"]
user = "nobody"

[tls]
mode = "required"

[tls.acme]
domains = ["{DOMAIN}"]
directory = "https://127.0.0.1:{port}/dir"
ca_file = "{ca}"
state_dir = "{state}"
http_listen = "127.0.0.1:{http}"

[[users]]
name = "alice"
password_hash = "{hash}"
root = "{root}"
"#,
            port = pebble.port,
            http = free_port(),
            ca = d.join("pebble-ca.pem").display(),
            state = state.display(),
            hash = crate::harness::password_hash(),
            root = root.display(),
        )
    };
    let owner_mode = |p: &Path| {
        let m = std::fs::symlink_metadata(p).unwrap();
        (m.uid(), m.gid(), m.permissions().mode() & 0o7777)
    };
    let start = |state: &Path| {
        let path = d.join("portcullis.toml");
        std::fs::write(&path, config(state)).unwrap();
        Server::start_from_config_env(
            tempfile::tempdir().unwrap(),
            &path,
            &[("PORTCULLIS_LOG", "info".to_owned())],
        )
    };

    // No directory yet: made by the server, nobody's, 0700; the order
    // (as nobody) fails on the CA, which is down.
    let fresh = d.join("fresh/acme");
    let server = start(&fresh);
    let log = server.wait_for_log("ACME certificate order failed", 0, Duration::from_secs(30));
    assert!(log.contains("running as this user after binding"), "{log}");
    assert!(log.contains("new account at"), "{log}");
    assert!(!log.contains("tls.acme.state_dir"), "{log}");
    assert_eq!(owner_mode(&fresh), (uid, gid, 0o700));
    drop(server);

    // A directory a run as root left, open to all, with root's files
    // (a certificate for the domain, so the server serves at once).
    let kept = d.join("kept");
    std::fs::create_dir(&kept).unwrap();
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o755)).unwrap();
    let made = Command::new(crate::harness::BIN)
        .args(["gen-cert", "--host", DOMAIN, "--out"])
        .arg(&kept)
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    for f in ["cert.pem", "key.pem"] {
        std::os::unix::fs::chown(kept.join(f), Some(0), Some(0)).unwrap();
        std::fs::set_permissions(kept.join(f), std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(owner_mode(&kept.join(f)), (0, 0, 0o600), "{f}");
    }
    let trusted = d.join("kept-cert.pem");
    std::fs::copy(kept.join("cert.pem"), &trusted).unwrap();
    let server = start(&kept);
    // Served at once, as kept (no order: it is far from its expiry).
    assert!(!served_start_date(&server, &trusted).is_empty());
    assert_eq!(owner_mode(&kept), (uid, gid, 0o700));
    for f in ["cert.pem", "key.pem"] {
        assert_eq!(owner_mode(&kept.join(f)), (uid, gid, 0o600), "{f}");
    }
}
