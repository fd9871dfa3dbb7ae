//! Accounts from other back ends (`[auth]`): the order of the back ends
//! ("who knows a user"), and the `[auth.http]` hook, served by the test
//! itself on 127.0.0.1 and logged in to over raw FTP.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::harness::{read_all, Raw, Server, Setup, PASSWORD};

/// One request the hook received: its header lines and its JSON body.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub headers: Vec<String>,
    pub body: serde_json::Value,
}

/// What the hook answers: status, body, and how long it waits first.
pub(crate) type Answer = (u16, String, Duration);

/// An HTTP/1.1 hook on 127.0.0.1, one thread per connection; stopped and
/// joined on drop.
pub(crate) struct Hook {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Hook {
    pub(crate) fn start(
        answer: impl Fn(&serde_json::Value) -> Answer + Send + Sync + 'static,
    ) -> Hook {
        Self::start_tls(None, answer)
    }

    /// With `tls`, HTTPS.
    pub(crate) fn start_tls(
        tls: Option<Arc<rustls::ServerConfig>>,
        answer: impl Fn(&serde_json::Value) -> Answer + Send + Sync + 'static,
    ) -> Hook {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let answer = Arc::new(answer);
        let thread = {
            let (received, stop) = (received.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut handlers = Vec::new();
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (received, answer) = (received.clone(), answer.clone());
                    let tls = tls.clone();
                    handlers.push(std::thread::spawn(move || {
                        serve_one(conn, tls.as_ref(), &received, &*answer);
                    }));
                }
                for h in handlers {
                    let _ = h.join();
                }
            })
        };
        Hook {
            addr,
            received,
            stop,
            thread: Some(thread),
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}/ftp-login", self.addr)
    }

    pub(crate) fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub(crate) fn asked_about(&self, user: &str) -> bool {
        self.received().iter().any(|r| r.body["user"] == user)
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(
    conn: TcpStream,
    tls: Option<&Arc<rustls::ServerConfig>>,
    received: &Mutex<Vec<Received>>,
    answer: &(dyn Fn(&serde_json::Value) -> Answer + Send + Sync),
) {
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    match tls {
        None => exchange(conn, received, answer),
        Some(config) => {
            let Ok(session) = rustls::ServerConnection::new(config.clone()) else {
                return;
            };
            exchange(rustls::StreamOwned::new(session, conn), received, answer)
        }
    }
}

/// Read one request from `stream`, record it, answer it.
fn exchange(
    mut stream: impl Read + Write,
    received: &Mutex<Vec<Received>>,
    answer: &(dyn Fn(&serde_json::Value) -> Answer + Send + Sync),
) {
    let mut reader = BufReader::new(&mut stream);
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return; // the wake-up connection, or a client gone
        }
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        headers.push(line);
        assert!(headers.len() < 100, "endless request head");
    }
    let length: usize = headers
        .iter()
        .find_map(|h| {
            let (name, value) = h.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("a Content-Length");
    let mut body = vec![0; length];
    reader.read_exact(&mut body).unwrap();
    drop(reader);
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let (status, text, wait) = answer(&body);
    received.lock().unwrap().push(Received { headers, body });
    std::thread::sleep(wait);
    let reply = format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
    let _ = stream.write_all(reply.as_bytes());
    let _ = stream.flush();
}

/// USER and PASS on a new connection; the reply to PASS and the connection.
pub(crate) fn try_login(server: &Server, user: &str, password: &str) -> (String, Raw) {
    let mut c = Raw::connect(server.addr);
    let r = c.cmd(&format!("USER {user}"));
    assert!(r.starts_with("331 "), "{r}");
    let r = c.cmd(&format!("PASS {password}"));
    (r, c)
}

const CAROL_PASSWORD: &str = "carol-hook-secret";

#[test]
fn accounts_http_hook_decides_for_the_users_it_knows() {
    let carol_root = tempfile::tempdir().unwrap();
    std::fs::write(carol_root.path().join("c.txt"), b"carol's file\n").unwrap();
    let root = carol_root.path().display().to_string();
    let hook = Hook::start(move |req| {
        let none = Duration::ZERO;
        match (req["user"].as_str(), req["password"].as_str()) {
            (Some("carol"), Some(CAROL_PASSWORD)) => (
                200,
                serde_json::json!({
                    "root": root,
                    "permissions": ["read", "write"],
                    "download_rate": "1M",
                    "allow_from": ["127.0.0.0/8"],
                })
                .to_string(),
                none,
            ),
            (Some("carol"), _) => (401, "{}".into(), none),
            (Some("dave"), _) => (403, "{}".into(), none),
            (Some("elsewhere"), _) => (
                200,
                serde_json::json!({ "root": "/tmp", "allow_from": ["10.0.0.0/8"] }).to_string(),
                none,
            ),
            (Some("broken"), _) => (500, "oops".into(), none),
            (Some("garbled"), _) => (200, r#"{"root": "/tmp", "colour": 1}"#.into(), none),
            (Some("slow"), _) => (200, "{}".into(), Duration::from_secs(3)),
            _ => (404, "{}".into(), none),
        }
    });
    let sections: &'static str = Box::leak(
        format!(
            "[auth]\norder = [\"http\", \"config\"]\n[auth.http]\nurl = \"{}\"\ntimeout = \"1s\"\nbearer_token = \"hook-token\"\n",
            hook.url()
        )
        .into_boxed_str(),
    );
    let server = Server::start_with(Setup {
        sections,
        // Many refusals below: no ban in the way.
        limits: "max_login_failures = 0",
        ..Setup::default()
    });

    // The hook's account: its root and permissions (write, not delete).
    let (r, mut carol) = try_login(&server, "carol", CAROL_PASSWORD);
    assert!(r.starts_with("230 "), "{r}");
    let mut data = carol.pasv();
    assert!(carol.cmd("STOR new.txt").starts_with("150 "));
    data.write_all(b"uploaded by carol\n").unwrap();
    drop(data);
    let r = carol.reply();
    assert!(r.starts_with("226 "), "{r}");
    assert_eq!(
        std::fs::read(carol_root.path().join("new.txt")).unwrap(),
        b"uploaded by carol\n"
    );
    assert!(carol.cmd("DELE c.txt").starts_with("550 "));
    let data = carol.pasv();
    assert!(carol.cmd("RETR c.txt").starts_with("150 "));
    assert_eq!(read_all(data), b"carol's file\n");
    assert!(carol.reply().starts_with("226 "));

    // What was posted: the credentials, the client, the token.
    let asked = hook.received();
    let first = &asked[0];
    assert_eq!(first.body["user"], "carol");
    assert_eq!(first.body["password"], CAROL_PASSWORD);
    assert_eq!(first.body["client_ip"], "127.0.0.1");
    assert_eq!(first.body["tls"], false);
    assert!(
        first.headers[0].starts_with("POST /ftp-login "),
        "{:?}",
        first.headers
    );
    assert!(
        first
            .headers
            .iter()
            .any(|h| h == "authorization: Bearer hook-token"
                || h == "Authorization: Bearer hook-token"),
        "{:?}",
        first.headers
    );

    // 401 and 403: refused; 404: the next back end (config) decides.
    assert!(try_login(&server, "carol", "wrong").0.starts_with("530 "));
    assert!(try_login(&server, "dave", "x").0.starts_with("530 "));
    let (r, _alice) = try_login(&server, "alice", PASSWORD);
    assert!(r.starts_with("230 "), "{r}");
    assert!(hook.asked_about("alice"), "http comes first in the order");
    assert!(try_login(&server, "alice", "wrong").0.starts_with("530 "));
    assert!(try_login(&server, "nobody", "x").0.starts_with("530 "));
    // The account's own networks.
    assert!(try_login(&server, "elsewhere", "x").0.starts_with("530 "));

    // The anonymous names go to [anonymous] first, whatever the order.
    let (r, _anon) = try_login(&server, "ftp", "me@example.org");
    assert!(r.starts_with("230 "), "{r}");
    assert!(!hook.asked_about("ftp"));

    // The hook failing, answering nonsense or too late: 421, closed.
    for user in ["broken", "garbled", "slow"] {
        let (r, mut c) = try_login(&server, user, "x");
        assert!(r.starts_with("421 "), "{user}: {r}");
        assert!(c.closed(), "{user}");
    }
    let log = server.log();
    assert!(log.contains("authentication back-end failed"), "{log}");
    assert!(log.contains("500"), "{log}");
    assert!(log.contains("no answer within 1s"), "{log}");
    // Each 530's log line names the back end that decided, and why.
    for (user, backend, reason) in [
        (
            "carol",
            "http",
            "unknown user or wrong password (the back end cannot tell)",
        ),
        (
            "dave",
            "http",
            "unknown user or wrong password (the back end cannot tell)",
        ),
        ("alice", "config", "wrong password"),
        ("nobody", "none", "unknown user"),
    ] {
        assert!(
            crate::audit::failed_login_says(&log, user, backend, reason),
            "{user}: no {backend} {reason:?}: {log}"
        );
    }
    assert!(
        !log.contains(CAROL_PASSWORD),
        "the password in the log: {log}"
    );
}

#[test]
fn accounts_a_back_end_down_answers_421_and_is_not_counted_toward_a_ban() {
    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let sections: &'static str = Box::leak(
        format!(
            "[auth]\norder = [\"config\", \"http\"]\n[auth.http]\nurl = \"http://{closed}/\"\n"
        )
        .into_boxed_str(),
    );
    let server = Server::start_with(Setup {
        sections,
        limits: "max_login_failures = 2",
        ..Setup::default()
    });
    for _ in 0..3 {
        let (r, mut c) = try_login(&server, "carol", "x");
        assert!(r.starts_with("421 "), "{r}");
        assert!(c.closed());
    }
    // config comes first and knows alice: the hook is not needed.
    let (r, _alice) = try_login(&server, "alice", PASSWORD);
    assert!(r.starts_with("230 "), "{r}");
    // Two wrong passwords ban; the three 421s above did not count.
    let (r, _c) = try_login(&server, "alice", "wrong");
    assert!(r.starts_with("530 "), "{r}");
    let (r, _c) = try_login(&server, "alice", "wrong");
    assert!(r.starts_with("421 ") && r.contains("banned"), "{r}");
    let log = server.log();
    assert!(log.contains("connect"), "{log}");
}

#[test]
fn accounts_https_hook_with_its_ca_file() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(crate::harness::BIN)
        .args(["gen-cert", "--host", "127.0.0.1", "--out"])
        .arg(certs.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let cert = certs.path().join("cert.pem");
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(certs.path().join("key.pem")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().display().to_string();
    let hook = Hook::start_tls(Some(Arc::new(config)), move |req| {
        if req["password"] == "over-tls" {
            (
                200,
                serde_json::json!({ "root": dir }).to_string(),
                Duration::ZERO,
            )
        } else {
            (401, "{}".into(), Duration::ZERO)
        }
    });
    let https = format!("https://{}/", hook.addr);
    // Trusting the hook's certificate: logins go through.
    let trusted: &'static str = Box::leak(
        format!(
            "[auth]\norder = [\"http\"]\n[auth.http]\nurl = \"{https}\"\nca_file = \"{}\"\n",
            cert.display()
        )
        .into_boxed_str(),
    );
    let server = Server::start_with(Setup {
        sections: trusted,
        ..Setup::default()
    });
    let (r, _c) = try_login(&server, "tina", "over-tls");
    assert!(r.starts_with("230 "), "{r} {}", server.log());
    assert!(try_login(&server, "tina", "wrong").0.starts_with("530 "));
    drop(server);
    // Trusting another authority (the system's): the handshake fails, 421.
    let untrusted: &'static str = Box::leak(
        format!("[auth]\norder = [\"http\"]\n[auth.http]\nurl = \"{https}\"\n").into_boxed_str(),
    );
    let server = Server::start_with(Setup {
        sections: untrusted,
        ..Setup::default()
    });
    let (r, _c) = try_login(&server, "tina", "over-tls");
    assert!(r.starts_with("421 "), "{r}");
    assert!(server.log().contains("TLS"), "{}", server.log());
    assert_eq!(
        hook.received().len(),
        2,
        "no request without a trusted certificate"
    );
}
