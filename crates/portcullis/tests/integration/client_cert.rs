//! Client-certificate login (`[tls.client_auth]`, the accounts'
//! `tls_client_cert`): certificates made here with rcgen (a CA, another CA,
//! a revocation list), presented by curl (`--cert/--key`), lftp
//! (`ssl:cert-file`/`ssl:key-file`) and Python's ftplib
//! (`load_cert_chain`). A certificate that fails verification (another CA,
//! expired, revoked) ends the handshake with a TLS alert; one that is valid
//! but missing where required, or another account's, is 530 after PASS.

use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, RevokedCertParams, SanType,
    SerialNumber,
};

use crate::harness::{Server, Setup, PASSWORD};
use crate::tools::{have, run};

/// A CA, a second CA the server does not trust, and the revocation list
/// of the first (serial 666 revoked).
struct Pki {
    dir: PathBuf,
    ca: Issuer<'static, KeyPair>,
    other: Issuer<'static, KeyPair>,
}

const REVOKED: u64 = 666;

fn ca(dir: &Path, name: &str) -> Issuer<'static, KeyPair> {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.distinguished_name.push(DnType::CommonName, name);
    let cert = p.self_signed(&key).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
    Issuer::new(p, key)
}

/// What a client certificate says.
#[derive(Default)]
struct Leaf<'a> {
    cn: &'a str,
    email: Option<&'a str>,
    serial: u64,
    expired: bool,
    other_ca: bool,
}

impl Pki {
    fn new(dir: &Path) -> Pki {
        let pki = Pki {
            dir: dir.to_owned(),
            ca: ca(dir, "ca"),
            other: ca(dir, "other-ca"),
        };
        pki.revoke(&[REVOKED]);
        pki
    }

    /// Write the CA's revocation list with these serials revoked.
    fn revoke(&self, serials: &[u64]) {
        let now = time::OffsetDateTime::now_utc();
        let crl = CertificateRevocationListParams {
            this_update: now - time::Duration::hours(1),
            next_update: now + time::Duration::days(1),
            crl_number: SerialNumber::from(serials.len() as u64),
            issuing_distribution_point: None,
            revoked_certs: serials
                .iter()
                .map(|n| RevokedCertParams {
                    serial_number: SerialNumber::from(*n),
                    revocation_time: now - time::Duration::minutes(5),
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        }
        .signed_by(&self.ca)
        .unwrap();
        std::fs::write(self.crl_file(), crl.pem().unwrap()).unwrap();
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    fn crl_file(&self) -> PathBuf {
        self.dir.join("ca.crl.pem")
    }

    /// Write `NAME.pem` and `NAME.key`; the certificate's SHA-256
    /// fingerprint.
    fn leaf(&self, name: &str, l: Leaf) -> (PathBuf, PathBuf, String) {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, l.cn);
        if let Some(e) = l.email {
            p.subject_alt_names = vec![SanType::Rfc822Name(e.try_into().unwrap())];
        }
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.serial_number = Some(SerialNumber::from(l.serial.max(2)));
        let now = time::OffsetDateTime::now_utc();
        (p.not_before, p.not_after) = if l.expired {
            (
                now - time::Duration::days(30),
                now - time::Duration::days(1),
            )
        } else {
            (
                now - time::Duration::hours(1),
                now + time::Duration::days(30),
            )
        };
        let issuer = if l.other_ca { &self.other } else { &self.ca };
        let cert = p.signed_by(&key, issuer).unwrap();
        let (c, k) = (
            self.dir.join(format!("{name}.pem")),
            self.dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        let fp = ring_sha256(cert.der());
        (c, k, fp)
    }
}

fn ring_sha256(der: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(der);
    d.iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// A server with `[tls.client_auth]` (the CA, its revocation list; `mode`)
/// and these accounts besides bob (password only):
/// alice: certificate required (CN), and her password;
/// carol: certificate required, any password (`password_with_cert`);
/// dave@partner.example: certificate required, matched by SAN e-mail;
/// erin: certificate allowed, or the certificate with fingerprint `fp`.
fn server(pki: &Pki, mode: &str, fp: &str, limits: &'static str) -> Server {
    let users = |name: &str, keys: &str, dir: &Path| {
        format!(
            "[[users]]\nname = \"{name}\"\npassword_hash = \"{hash}\"\nroot = \"{root}\"\n{keys}\n",
            hash = crate::harness::password_hash(),
            root = dir.display(),
        )
    };
    let shared = pki.dir.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("hello.txt"), b"hello partner\n").unwrap();
    let sections = [
        users(
            "carol",
            "tls_client_cert = \"required\"\npassword_with_cert = \"optional\"",
            &shared,
        ),
        users(
            "dave@partner.example",
            "tls_client_cert = \"required\"\ntls_client_cert_match = \"san_email\"",
            &shared,
        ),
        users(
            "erin",
            &format!("tls_client_cert = \"allowed\"\ntls_client_cert_fingerprints = [\"{fp}\"]"),
            &shared,
        ),
    ]
    .concat();
    Server::start_with(Setup {
        tls: Some(format!(
            "mode = \"required\"\ndata_protection = \"required\"\n\
             implicit_listen = [\"127.0.0.1:0\"]\n\
             [tls.client_auth]\nca_file = \"{}\"\nmode = \"{mode}\"\ncrl_files = [\"{}\"]\n",
            pki.ca_file().display(),
            pki.crl_file().display()
        )),
        alice_extra: "tls_client_cert = \"required\"",
        sections: leak(sections),
        limits,
        watch_log: true,
        ..Setup::default()
    })
}

/// curl listing `url` with `cert` (and its key) and `password`: whether it
/// succeeded, and what it printed.
/// How curl reaches the server.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Via {
    /// AUTH TLS on the control port.
    Explicit,
    /// The implicit-TLS port (`ftps://`).
    Implicit,
    /// AUTH TLS, TLS 1.2 at most (a certificate refused in the handshake
    /// itself; data connections resumed by session ID).
    Tls12,
}

fn curl(
    server: &Server,
    user: &str,
    password: &str,
    cert: Option<&(PathBuf, PathBuf, String)>,
    via: Via,
) -> (bool, String) {
    let mut c = Command::new("curl");
    c.args(["-sS", "--max-time", "30", "--ssl-reqd", "--cacert"])
        .arg(server.cert.as_ref().unwrap());
    if let Some((crt, key, _)) = cert {
        c.arg("--cert").arg(crt).arg("--key").arg(key);
    }
    if via == Via::Tls12 {
        c.args(["--tls-max", "1.2"]);
    }
    let user = user.replace('@', "%40");
    let url = match via != Via::Implicit {
        true => format!(
            "ftp://{user}:{}@localhost:{}/",
            password.replace(' ', "%20"),
            server.addr.port()
        ),
        false => format!(
            "ftps://{user}:{}@localhost:{}/",
            password.replace(' ', "%20"),
            server.implicit.unwrap().port()
        ),
    };
    let out = c.arg(url).output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[test]
fn curl_client_certificates() {
    if !have("curl") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let pki = Pki::new(work.path());
    let alice = pki.leaf(
        "alice",
        Leaf {
            cn: "alice",
            serial: 10,
            ..Leaf::default()
        },
    );
    let bob = pki.leaf(
        "bob",
        Leaf {
            cn: "bob",
            serial: 11,
            ..Leaf::default()
        },
    );
    let carol = pki.leaf(
        "carol",
        Leaf {
            cn: "carol",
            serial: 12,
            ..Leaf::default()
        },
    );
    let dave = pki.leaf(
        "dave",
        Leaf {
            cn: "Dave",
            email: Some("dave@partner.example"),
            serial: 13,
            ..Leaf::default()
        },
    );
    let robot = pki.leaf(
        "robot",
        Leaf {
            cn: "robot-7",
            serial: 14,
            ..Leaf::default()
        },
    );
    let wrong_ca = pki.leaf(
        "stranger",
        Leaf {
            cn: "alice",
            serial: 15,
            other_ca: true,
            ..Leaf::default()
        },
    );
    let expired = pki.leaf(
        "expired",
        Leaf {
            cn: "alice",
            serial: 16,
            expired: true,
            ..Leaf::default()
        },
    );
    let revoked = pki.leaf(
        "revoked",
        Leaf {
            cn: "alice",
            serial: REVOKED,
            ..Leaf::default()
        },
    );
    // The refusals below would ban the test's address otherwise.
    let server = server(&pki, "optional", &robot.2, "max_login_failures = 0");

    // Accepted: alice's own certificate and her password, explicit and
    // implicit FTPS.
    for via in [Via::Explicit, Via::Implicit, Via::Tls12] {
        let (ok, out) = curl(&server, "alice", PASSWORD, Some(&alice), via);
        assert!(ok, "{via:?}: {out}");
    }
    // Missing when required: 530 after PASS, with a clear log line.
    let (ok, out) = curl(&server, "alice", PASSWORD, None, Via::Explicit);
    assert!(!ok && out.contains("530"), "{out}");
    server.wait_for_log("none was presented", 0, std::time::Duration::from_secs(10));
    // Mapped to someone else: bob's certificate for alice.
    let (ok, out) = curl(&server, "alice", PASSWORD, Some(&bob), Via::Explicit);
    assert!(!ok && out.contains("530"), "{out}");
    server.wait_for_log(
        "does not belong to the account",
        0,
        std::time::Duration::from_secs(10),
    );
    // A certificate is not a password: a wrong one is refused still.
    let (ok, out) = curl(&server, "alice", "wrong", Some(&alice), Via::Explicit);
    assert!(!ok && out.contains("530"), "{out}");
    // Wrong CA, expired, revoked: the handshake ends with an alert, there
    // is no login at all.
    for (what, cert) in [
        ("wrong CA", &wrong_ca),
        ("expired", &expired),
        ("revoked", &revoked),
    ] {
        let (ok, out) = curl(&server, "alice", PASSWORD, Some(cert), Via::Explicit);
        assert!(!ok && !out.contains("530"), "{what}: {out}");
    }
    // The server logs each after the client has seen the alert.
    for reason in ["UnknownIssuer", "Expired", "Revoked"] {
        let log = server.wait_for_log(reason, 0, std::time::Duration::from_secs(10));
        assert!(
            log.lines()
                .any(|l| l.contains("client certificate refused") && l.contains(reason)),
            "{reason}: {log}"
        );
    }
    // The same on the implicit-TLS port, and under TLS 1.2 (where the
    // client sees the alert in the handshake itself).
    for via in [Via::Implicit, Via::Tls12] {
        let (ok, out) = curl(&server, "alice", PASSWORD, Some(&expired), via);
        assert!(!ok && !out.contains("530"), "{via:?}: {out}");
    }
    server.wait_for_log("Expired", 2, std::time::Duration::from_secs(10));
    // password_with_cert = "optional": any password with the certificate,
    // and no login without it.
    assert!(curl(&server, "carol", "anything", Some(&carol), Via::Explicit).0);
    // The login line names the certificate by its fingerprint.
    let log = server.wait_for_log(&carol.2, 0, std::time::Duration::from_secs(10));
    assert!(
        log.lines()
            .any(|l| l.contains(&format!("client_cert=\"{}\"", carol.2)) && l.contains(" login ")),
        "{log}"
    );
    assert!(!curl(&server, "carol", PASSWORD, None, Via::Explicit).0);
    assert!(!curl(&server, "carol", "anything", Some(&alice), Via::Explicit).0);
    // Matched by SAN e-mail (the CN says something else).
    let (ok, out) = curl(
        &server,
        "dave@partner.example",
        PASSWORD,
        Some(&dave),
        Via::Explicit,
    );
    assert!(ok, "{out}");
    assert!(
        !curl(
            &server,
            "dave@partner.example",
            PASSWORD,
            Some(&alice),
            Via::Explicit
        )
        .0
    );
    // Matched by fingerprint; `allowed`: no certificate is fine, another
    // account's is not.
    assert!(curl(&server, "erin", PASSWORD, Some(&robot), Via::Explicit).0);
    assert!(curl(&server, "erin", PASSWORD, None, Via::Explicit).0);
    assert!(!curl(&server, "erin", PASSWORD, Some(&alice), Via::Explicit).0);
    // An account with tls_client_cert off ignores a certificate.
    assert!(curl(&server, "bob", PASSWORD, Some(&alice), Via::Explicit).0);
}

#[test]
fn required_mode_refuses_a_handshake_without_a_certificate() {
    if !have("curl") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let pki = Pki::new(work.path());
    let bob = pki.leaf(
        "bob",
        Leaf {
            cn: "bob",
            serial: 11,
            ..Leaf::default()
        },
    );
    let robot = pki.leaf(
        "robot",
        Leaf {
            cn: "robot",
            serial: 12,
            ..Leaf::default()
        },
    );
    let server = server(&pki, "required", &robot.2, "");
    // bob's account does not use certificates, but the handshake needs one.
    let (ok, out) = curl(&server, "bob", PASSWORD, None, Via::Explicit);
    assert!(!ok && !out.contains("530"), "{out}");
    server.wait_for_log(
        "no certificate presented",
        0,
        std::time::Duration::from_secs(10),
    );
    assert!(curl(&server, "bob", PASSWORD, Some(&bob), Via::Explicit).0);
}

/// SIGHUP reads `ca_file` and `crl_files` again: a certificate revoked
/// meanwhile is refused by the next handshake.
#[test]
fn a_reload_applies_a_new_revocation_list() {
    if !have("curl") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let pki = Pki::new(work.path());
    let alice = pki.leaf(
        "alice",
        Leaf {
            cn: "alice",
            serial: 10,
            ..Leaf::default()
        },
    );
    let server = server(&pki, "optional", &alice.2, "max_login_failures = 0");
    let (ok, out) = curl(&server, "alice", PASSWORD, Some(&alice), Via::Explicit);
    assert!(ok, "{out}");
    pki.revoke(&[REVOKED, 10]);
    server.signal("HUP");
    server.wait_for_log("config reloaded", 0, std::time::Duration::from_secs(10));
    let (ok, out) = curl(&server, "alice", PASSWORD, Some(&alice), Via::Explicit);
    assert!(!ok && !out.contains("530"), "{out}");
    server.wait_for_log("Revoked", 0, std::time::Duration::from_secs(10));
}

#[test]
fn lftp_client_certificate() {
    if !have("lftp") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let pki = Pki::new(work.path());
    let alice = pki.leaf(
        "alice",
        Leaf {
            cn: "alice",
            serial: 10,
            ..Leaf::default()
        },
    );
    let wrong_ca = pki.leaf(
        "stranger",
        Leaf {
            cn: "alice",
            serial: 15,
            other_ca: true,
            ..Leaf::default()
        },
    );
    let robot = pki.leaf(
        "robot",
        Leaf {
            cn: "robot",
            serial: 12,
            ..Leaf::default()
        },
    );
    let server = server(&pki, "optional", &robot.2, "");
    let data = crate::tools::write_fixture(work.path(), "local.bin", 300_000);
    let lftp = |cert: Option<&(PathBuf, PathBuf, String)>, commands: &str| {
        let certs = match cert {
            Some((c, k, _)) => format!(
                "set ssl:cert-file {}; set ssl:key-file {}; ",
                c.display(),
                k.display()
            ),
            None => String::new(),
        };
        let script = format!(
            "set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:ca-file {ca}; {certs}\
             set net:max-retries 1; set net:timeout 10; \
             open -u alice,'{PASSWORD}' ftp://localhost:{port}; {commands}",
            ca = server.cert.as_ref().unwrap().display(),
            port = server.addr.port(),
        );
        Command::new("lftp").args(["-c", &script]).output().unwrap()
    };
    // Accepted, with protected data connections that resume the control
    // connection's session (require_session_reuse is on).
    let w = work.path().display();
    let out = lftp(
        Some(&alice),
        &format!("put {w}/local.bin -o remote.bin; ls; get remote.bin -o {w}/back.bin"),
    );
    assert!(out.status.success(), "{out:?}");
    assert!(std::fs::read(work.path().join("back.bin")).unwrap() == data);
    // Missing when required, and from another CA.
    for cert in [None, Some(&wrong_ca)] {
        let out = lftp(cert, "ls");
        assert!(!out.status.success(), "{out:?}");
    }
    // GnuTLS sends only a certificate whose issuer the server's request
    // names (the CAs of ca_file), so the stranger's is not sent at all: both
    // logins are refused as without a certificate.
    server.wait_for_log("none was presented", 1, std::time::Duration::from_secs(10));
}

/// Python's ftplib with `load_cert_chain`: prints the reply to the login
/// (or the TLS error), then, logged in, stores and reads a file over PROT P.
const FTPLIB_CERT: &str = r#"
import ftplib, io, ssl, sys
port, user, pw, cafile, cert, key = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6]
ctx = ssl.create_default_context(cafile=cafile)
if cert:
    ctx.load_cert_chain(cert, key)
f = Reusing(context=ctx)
f.connect("localhost", port, timeout=30)
try:
    f.auth()
    print(f.login(user, pw))
except (ftplib.error_perm, ftplib.error_temp) as e:
    print(e)
    sys.exit(0)
except (ssl.SSLError, OSError, EOFError) as e:
    print("tls", type(e).__name__, e)
    sys.exit(0)
f.prot_p()
data = b"x" * 200_000
f.storbinary("STOR py.bin", io.BytesIO(data))
out = io.BytesIO()
f.retrbinary("RETR py.bin", out.write)
assert out.getvalue() == data
f.delete("py.bin")
f.quit()
"#;

#[test]
fn ftplib_client_certificate_and_bans() {
    if !have("python3") {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let pki = Pki::new(work.path());
    let alice = pki.leaf(
        "alice",
        Leaf {
            cn: "alice",
            serial: 10,
            ..Leaf::default()
        },
    );
    let bob = pki.leaf(
        "bob",
        Leaf {
            cn: "bob",
            serial: 11,
            ..Leaf::default()
        },
    );
    let revoked = pki.leaf(
        "revoked",
        Leaf {
            cn: "alice",
            serial: REVOKED,
            ..Leaf::default()
        },
    );
    let robot = pki.leaf(
        "robot",
        Leaf {
            cn: "robot",
            serial: 12,
            ..Leaf::default()
        },
    );
    let server = server(
        &pki,
        "optional",
        &robot.2,
        "max_login_failures = 3\nban_time = \"60s\"",
    );
    let py = |user: &str, cert: Option<&(PathBuf, PathBuf, String)>| {
        let (c, k) = cert.map_or((String::new(), String::new()), |(c, k, _)| {
            (c.display().to_string(), k.display().to_string())
        });
        run(Command::new("python3").args([
            "-c",
            &format!("{}{}", crate::harness::PY_REUSING_FTP_TLS, FTPLIB_CERT),
            &server.addr.port().to_string(),
            user,
            PASSWORD,
            &server.cert.as_ref().unwrap().display().to_string(),
            &c,
            &k,
        ]))
    };
    // Accepted, with a transfer each way.
    let out = py("alice", Some(&alice));
    assert!(out.starts_with("230"), "{out}");
    // Revoked: the TLS layer refuses it (no 530, no ban count).
    let out = py("alice", Some(&revoked));
    assert!(out.starts_with("tls"), "{out}");
    // Another's certificate, a missing one: 530, counted toward a ban;
    // the third failure bans the address.
    assert!(py("alice", Some(&bob)).starts_with("530"));
    assert!(py("alice", None).starts_with("530"));
    let out = py("alice", Some(&bob));
    assert!(out.starts_with("421"), "{out}");
    server.wait_for_log("banned", 0, std::time::Duration::from_secs(10));
}
