//! FTPS (RFC 4217): real TLS handshakes against the running server with
//! rustls, through suppaftp for the happy paths and by hand for the edge
//! cases (session reuse, also across sibling control connections, ALPN,
//! policies, bytes smuggled after AUTH TLS).

use std::io::{BufRead, BufReader, Cursor, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::client::{
    ClientSessionMemoryCache, ClientSessionStore, Resumption, Tls12ClientSessionValue,
    Tls13ClientSessionValue,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{
    ClientConfig, ClientConnection, HandshakeKind, NamedGroup, RootCertStore, StreamOwned,
    SupportedProtocolVersion,
};
use suppaftp::types::{FileType, Mode};
use suppaftp::{RustlsConnector, RustlsFtpStream};

use crate::harness::{random_bytes, Raw, Server, Setup, PASSWORD};

fn tls_setup(lines: &str) -> Setup {
    Setup {
        tls: Some(lines.to_owned()),
        ..Setup::default()
    }
}

/// A client configuration that trusts the server's generated certificate.
fn client_config(server: &Server, alpn: &[&[u8]], resumption: bool) -> Arc<ClientConfig> {
    client_config_versions(server, alpn, resumption, rustls::DEFAULT_VERSIONS)
}

fn client_config_versions(
    server: &Server,
    alpn: &[&[u8]],
    resumption: bool,
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    let pem = server.cert.as_ref().expect("FTPS server");
    for c in CertificateDer::pem_file_iter(pem).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut c = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    if !resumption {
        c.resumption = rustls::client::Resumption::disabled();
    }
    Arc::new(c)
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

fn handshake(config: Arc<ClientConfig>, tcp: TcpStream) -> std::io::Result<Tls> {
    tcp.set_read_timeout(Some(Duration::from_secs(20)))?;
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(config, name).unwrap();
    let mut s = StreamOwned::new(conn, tcp);
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

/// A control connection over TLS, for exact replies.
struct Ctl {
    r: BufReader<Tls>,
}

impl Ctl {
    fn new(s: Tls) -> Ctl {
        Ctl {
            r: BufReader::new(s),
        }
    }

    fn cmd(&mut self, line: &str) -> String {
        let s = self.r.get_mut();
        s.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        s.flush().unwrap();
        self.reply()
    }

    fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut l = String::new();
            assert!(self.r.read_line(&mut l).unwrap() > 0, "closed after {all}");
            all.push_str(&l);
            if l.len() >= 4 && l.as_bytes()[3] == b' ' {
                return all.trim_end().to_owned();
            }
        }
    }
}

/// Plain connect, AUTH TLS, handshake: a TLS control connection after 220.
fn explicit_ctl(server: &Server, config: Arc<ClientConfig>) -> Ctl {
    let mut raw = Raw::connect(server.addr);
    assert!(raw.cmd("AUTH TLS").starts_with("234 "));
    Ctl::new(handshake(config, raw.stream.try_clone().unwrap()).unwrap())
}

fn pasv_addr(reply: &str) -> SocketAddr {
    assert!(reply.starts_with("227 "), "{reply}");
    let inner = &reply[reply.find('(').unwrap() + 1..reply.find(')').unwrap()];
    let n: Vec<u16> = inner.split(',').map(|x| x.parse().unwrap()).collect();
    format!("{}.{}.{}.{}:{}", n[0], n[1], n[2], n[3], n[4] * 256 + n[5])
        .parse()
        .unwrap()
}

fn suppaftp_session(server: &Server, mode: Mode) {
    let config = client_config(server, &[b"ftp"], true);
    let mut ftp = RustlsFtpStream::connect(server.addr)
        .unwrap()
        .into_secure(RustlsConnector::from(config), "localhost")
        .unwrap();
    if mode == Mode::Active {
        ftp = ftp.active_mode(Duration::from_secs(10));
    } else {
        ftp.set_mode(mode);
    }
    ftp.login("alice", PASSWORD).unwrap();
    ftp.transfer_type(FileType::Binary).unwrap();
    let data = random_bytes(2 * 1024 * 1024 + 5, 11);
    ftp.put_file("secret.bin", &mut Cursor::new(&data)).unwrap();
    assert!(std::fs::read(server.alice.join("secret.bin")).unwrap() == data);
    let back = ftp.retr_as_buffer("secret.bin").unwrap().into_inner();
    assert!(back == data, "download over TLS differs");
    let list = ftp.list(None).unwrap();
    assert!(list.iter().any(|l| l.ends_with(" secret.bin")), "{list:?}");
    // Uploads in a row, each data connection resuming the session. A rustls
    // client spends a TLS 1.3 ticket per connection; upload connections hand
    // out none (see portcullis::tls), so 8 in a row is its budget.
    for i in 0..7 {
        ftp.put_file(format!("u{i}"), &mut Cursor::new(vec![i as u8; 1000]))
            .unwrap();
    }
    for i in 0..7 {
        ftp.rm(format!("u{i}")).unwrap();
    }
    let facts = ftp.mlsd(None).unwrap();
    assert!(
        facts.iter().any(|l| l.ends_with("; secret.bin")),
        "{facts:?}"
    );
    ftp.quit().unwrap();
}

#[test]
fn explicit_tls_in_every_mode() {
    let server = Server::start_with(tls_setup(""));
    for mode in [Mode::Passive, Mode::ExtendedPassive, Mode::Active] {
        suppaftp_session(&server, mode);
    }
    let log = server.log();
    assert!(!log.contains("transfer failed"), "{log}");
}

#[test]
fn implicit_tls_listener() {
    let server = Server::start_with(tls_setup(
        "implicit_listen = [\"127.0.0.1:0\"]\nhandshake_timeout = \"2s\"",
    ));
    let implicit = server.implicit.expect("implicit listener announced");
    let config = client_config(&server, &[b"ftp"], true);
    let mut ftp = RustlsFtpStream::connect_secure_implicit(
        implicit,
        RustlsConnector::from(config.clone()),
        "localhost",
    )
    .unwrap();
    ftp.login("alice", PASSWORD).unwrap();
    ftp.transfer_type(FileType::Binary).unwrap();
    // Implicit sessions start with PROT P: suppaftp wraps data in TLS unasked.
    ftp.put_file("i.bin", &mut Cursor::new(b"implicit".to_vec()))
        .unwrap();
    let back = ftp.retr_as_buffer("i.bin").unwrap().into_inner();
    assert_eq!(back, b"implicit");
    ftp.quit().unwrap();

    // Plain text on the TLS port: closed at once, no FTP reply, no hang.
    let mut plain = TcpStream::connect(implicit).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    plain.write_all(b"USER alice\r\n").unwrap();
    let mut buf = [0u8; 512];
    let n = plain.read(&mut buf).unwrap_or(0);
    assert!(
        !String::from_utf8_lossy(&buf[..n]).contains("331"),
        "plain text was accepted on the implicit port"
    );
    // A client that never speaks is dropped after handshake_timeout.
    let mut silent = TcpStream::connect(implicit).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let t = Instant::now();
    assert_eq!(silent.read(&mut buf).unwrap_or(0), 0);
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    // A client that drops mid-handshake does not hurt the next one.
    let mut half = TcpStream::connect(implicit).unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .unwrap();
    drop(half);
    let mut ctl = Ctl::new(handshake(config, TcpStream::connect(implicit).unwrap()).unwrap());
    assert!(ctl.reply().starts_with("220 "));
    assert!(ctl.cmd("NOOP").starts_with("200 "));
}

#[test]
fn data_connection_must_resume_the_control_session() {
    let server = Server::start_with(tls_setup(""));
    std::fs::write(server.alice.join("f.txt"), b"payload").unwrap();
    // TLS 1.3 (tickets), TLS 1.2 with tickets (as Go's clients resume
    // TLS 1.2) and TLS 1.2 with session IDs only.
    for (version, ids_only) in [
        (&rustls::version::TLS13, false),
        (&rustls::version::TLS12, false),
        (&rustls::version::TLS12, true),
    ] {
        let mut resuming = client_config_versions(&server, &[b"ftp"], true, &[version]);
        if ids_only {
            let mut c = ClientConfig::clone(&resuming);
            c.resumption = c
                .resumption
                .tls12_resumption(rustls::client::Tls12Resumption::SessionIdOnly);
            resuming = Arc::new(c);
        }
        must_resume(&server, version, resuming);
    }
}

fn must_resume(
    server: &Server,
    version: &'static rustls::SupportedProtocolVersion,
    resuming: Arc<ClientConfig>,
) {
    let mut ctl = logged_in(server, resuming.clone(), "alice");

    // Same client configuration: the data connection resumes and works.
    let data = TcpStream::connect(pasv_addr(&ctl.cmd("PASV"))).unwrap();
    assert!(ctl.cmd("RETR f.txt").starts_with("150 "));
    let mut d = handshake(resuming.clone(), data).unwrap();
    let mut got = Vec::new();
    let _ = d.read_to_end(&mut got);
    assert_eq!(got, b"payload");
    assert!(ctl.reply().starts_with("226 "));
    assert_eq!(d.conn.protocol_version(), Some(version.version));
    // Again: a session can be resumed more than once.
    let data = TcpStream::connect(pasv_addr(&ctl.cmd("PASV"))).unwrap();
    assert!(ctl.cmd("LIST").starts_with("150 "));
    let mut d = handshake(resuming.clone(), data).unwrap();
    let mut got = Vec::new();
    let _ = d.read_to_end(&mut got);
    assert!(String::from_utf8_lossy(&got).contains("f.txt"));
    assert!(ctl.reply().starts_with("226 "));

    // A stranger's TLS session (a full handshake) is refused with 522.
    let fresh = client_config_versions(server, &[b"ftp"], false, &[version]);
    let r = assert_refused(&mut ctl, fresh);
    assert!(r.contains("session reuse"), "{r}");
}

/// AUTH TLS, then USER, PASS, PBSZ 0 and PROT P.
fn logged_in(server: &Server, config: Arc<ClientConfig>, user: &str) -> Ctl {
    let mut ctl = explicit_ctl(server, config);
    assert!(ctl.cmd(&format!("USER {user}")).starts_with("331 "));
    let r = ctl.cmd(&format!("PASS {PASSWORD}"));
    assert!(r.starts_with("230 "), "{r}");
    assert_eq!(ctl.cmd("PBSZ 0"), "200 PBSZ=0");
    assert!(ctl.cmd("PROT P").starts_with("200 "));
    ctl
}

/// What a download over a data connection came to.
struct Retr {
    /// The reply after 150.
    reply: String,
    data: Vec<u8>,
    /// `None` when the client's handshake failed.
    kind: Option<HandshakeKind>,
}

/// PASV and RETR `name` on `ctl`, the data connection shaking hands with
/// `config`.
fn retr(ctl: &mut Ctl, name: &str, config: Arc<ClientConfig>) -> Retr {
    let data = TcpStream::connect(pasv_addr(&ctl.cmd("PASV"))).unwrap();
    let r = ctl.cmd(&format!("RETR {name}"));
    assert!(r.starts_with("150 "), "{r}");
    let mut got = Vec::new();
    let kind = match handshake(config, data) {
        Ok(mut d) => {
            // A refused connection ends without close_notify: no error here.
            let _ = d.read_to_end(&mut got);
            d.conn.handshake_kind()
        }
        Err(_) => None,
    };
    Retr {
        reply: ctl.reply(),
        data: got,
        kind,
    }
}

/// RETR f.txt with `config` on the data connection: 522, no data, and the
/// control connection goes on; returns the reply.
fn assert_refused(ctl: &mut Ctl, config: Arc<ClientConfig>) -> String {
    let r = retr(ctl, "f.txt", config);
    assert!(r.data.is_empty(), "data sent: {}", r.reply);
    assert!(r.reply.starts_with("522 "), "{}", r.reply);
    assert!(ctl.cmd("NOOP").starts_with("200 "));
    r.reply
}

/// The TLS sessions a control connection's client keeps, and a store that
/// offers them to data connections of another control connection. That
/// store counts what it hands out (so a test knows a refused data
/// connection did offer the session) and keeps nothing the data connection
/// is given (so the next one still offers this control connection's
/// session, not a ticket of the data connection's own control session).
#[derive(Debug)]
struct Sessions {
    /// Both configurations derive from this one: rustls resumes a session
    /// only under the certificate verifier (the same `Arc`) it was made with.
    base: ClientConfig,
    cache: Arc<ClientSessionMemoryCache>,
    offered: AtomicUsize,
}

impl Sessions {
    fn new(server: &Server, version: &'static SupportedProtocolVersion) -> Arc<Sessions> {
        let base = client_config_versions(server, &[b"ftp"], true, &[version]);
        Arc::new(Sessions {
            base: Arc::unwrap_or_clone(base),
            cache: Arc::new(ClientSessionMemoryCache::new(32)),
            offered: AtomicUsize::new(0),
        })
    }

    fn with_store(&self, store: Arc<dyn ClientSessionStore>) -> Arc<ClientConfig> {
        let mut c = self.base.clone();
        c.resumption = Resumption::store(store);
        Arc::new(c)
    }

    /// For the control connection: keeps the sessions it is given. TLS 1.3
    /// tickets arrive after the handshake, so read a reply before
    /// [`Sessions::data`] is used.
    fn control(&self) -> Arc<ClientConfig> {
        self.with_store(self.cache.clone())
    }

    /// For a data connection: offers one of the kept sessions.
    fn data(self: &Arc<Self>) -> Arc<ClientConfig> {
        self.with_store(Arc::new(Offer(self.clone())))
    }

    /// The last data connection made with [`Sessions::data`] offered one
    /// of these sessions.
    fn assert_offered(&self) {
        assert_eq!(
            self.offered.swap(0, Ordering::SeqCst),
            1,
            "the data connection offered no session of the other control connection"
        );
    }
}

#[derive(Debug)]
struct Offer(Arc<Sessions>);

impl Offer {
    fn count<T>(&self, found: Option<T>) -> Option<T> {
        if found.is_some() {
            self.0.offered.fetch_add(1, Ordering::SeqCst);
        }
        found
    }
}

impl ClientSessionStore for Offer {
    fn set_kx_hint(&self, _: ServerName<'static>, _: NamedGroup) {}

    fn kx_hint(&self, name: &ServerName<'_>) -> Option<NamedGroup> {
        self.0.cache.kx_hint(name)
    }

    fn set_tls12_session(&self, _: ServerName<'static>, _: Tls12ClientSessionValue) {}

    fn tls12_session(&self, name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.count(self.0.cache.tls12_session(name))
    }

    fn remove_tls12_session(&self, _: &ServerName<'static>) {}

    fn insert_tls13_ticket(&self, _: ServerName<'static>, _: Tls13ClientSessionValue) {}

    fn take_tls13_ticket(&self, name: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        self.count(self.0.cache.take_tls13_ticket(name))
    }
}

const VERSIONS: [&SupportedProtocolVersion; 2] = [&rustls::version::TLS13, &rustls::version::TLS12];

fn reuse_required() -> Server {
    let server = Server::start_with(tls_setup("require_session_reuse = true"));
    std::fs::write(server.alice.join("f.txt"), b"payload").unwrap();
    server
}

/// A data connection that resumes the session of a control connection that
/// never logged in (AUTH TLS alone; USER alice with a wrong password) is
/// refused. (Resuming from another client IP cannot be set up on loopback
/// alone; the network-namespace tests would be the place.)
#[test]
fn data_connection_may_not_resume_a_session_that_never_logged_in() {
    let server = reuse_required();
    for version in VERSIONS {
        let mut ctl = logged_in(&server, Sessions::new(&server, version).control(), "alice");
        let idle = Sessions::new(&server, version);
        let mut anonymous = explicit_ctl(&server, idle.control());
        assert!(anonymous.cmd("NOOP").starts_with("200 "));
        assert_refused(&mut ctl, idle.data());
        idle.assert_offered();
        let failed = Sessions::new(&server, version);
        let mut impostor = explicit_ctl(&server, failed.control());
        assert!(impostor.cmd("USER alice").starts_with("331 "));
        assert!(impostor.cmd("PASS wrong").starts_with("530 "));
        assert_refused(&mut ctl, failed.data());
        failed.assert_offered();
    }
}

/// A data connection of alice's that resumes bob's session is refused,
/// though bob's own data connections resume it.
#[test]
fn data_connection_may_not_resume_another_users_session() {
    let server = reuse_required();
    for version in VERSIONS {
        let mut ctl = logged_in(&server, Sessions::new(&server, version).control(), "alice");
        let bobs = Sessions::new(&server, version);
        let mut bob = logged_in(&server, bobs.control(), "bob");
        assert_refused(&mut ctl, bobs.data());
        bobs.assert_offered();
        let own = retr(&mut bob, "b.txt", bobs.data());
        bobs.assert_offered();
        assert!(own.reply.starts_with("226 "), "{}", own.reply);
        assert_eq!(own.data, b"bob's file\n");
    }
}

/// Reads sessions from `from` and keeps what it is given in `into`: a
/// data connection that offers another's session and keeps what the
/// server's handshake hands it.
#[derive(Debug)]
struct OfferAndKeep {
    from: Arc<ClientSessionMemoryCache>,
    into: Arc<ClientSessionMemoryCache>,
}

impl ClientSessionStore for OfferAndKeep {
    fn set_kx_hint(&self, name: ServerName<'static>, group: NamedGroup) {
        self.into.set_kx_hint(name, group);
    }

    fn kx_hint(&self, name: &ServerName<'_>) -> Option<NamedGroup> {
        self.from.kx_hint(name)
    }

    fn set_tls12_session(&self, name: ServerName<'static>, value: Tls12ClientSessionValue) {
        self.into.set_tls12_session(name, value);
    }

    fn tls12_session(&self, name: &ServerName<'_>) -> Option<Tls12ClientSessionValue> {
        self.from.tls12_session(name)
    }

    fn remove_tls12_session(&self, _: &ServerName<'static>) {}

    fn insert_tls13_ticket(&self, name: ServerName<'static>, value: Tls13ClientSessionValue) {
        self.into.insert_tls13_ticket(name, value);
    }

    fn take_tls13_ticket(&self, name: &ServerName<'static>) -> Option<Tls13ClientSessionValue> {
        self.from.take_tls13_ticket(name)
    }
}

/// A stranger who races to alice's passive port is refused, and what the
/// refused handshake handed it (TLS 1.3 tickets, a TLS 1.2 ticket or
/// session ID) is refused too: a full handshake, then its result; and a
/// resumption of bob's session, then what that handshake gave. Each for
/// TLS 1.3, TLS 1.2 with tickets and TLS 1.2 with session IDs only.
#[test]
fn a_refused_data_connection_gets_nothing_to_resume_later() {
    let server = reuse_required();
    for (version, ids_only) in [
        (&rustls::version::TLS13, false),
        (&rustls::version::TLS12, false),
        (&rustls::version::TLS12, true),
    ] {
        let config = |store: Arc<dyn ClientSessionStore>| {
            let mut c =
                Arc::unwrap_or_clone(client_config_versions(&server, &[b"ftp"], true, &[version]));
            c.resumption = Resumption::store(store);
            if ids_only {
                c.resumption = c
                    .resumption
                    .tls12_resumption(rustls::client::Tls12Resumption::SessionIdOnly);
            }
            Arc::new(c)
        };
        let mut ctl = logged_in(&server, Sessions::new(&server, version).control(), "alice");
        // A full handshake, then its result, twice.
        let stranger = config(Arc::new(ClientSessionMemoryCache::new(32)));
        for attempt in 0..3 {
            let r = retr(&mut ctl, "f.txt", stranger.clone());
            assert!(
                r.data.is_empty(),
                "{version:?} ids_only={ids_only} attempt {attempt}: data sent"
            );
            assert!(
                r.reply.starts_with("522 "),
                "{version:?} attempt {attempt}: {}",
                r.reply
            );
        }
        // bob's session, then what that refused handshake handed it.
        let bobs = Sessions::new(&server, version);
        let mut bob = logged_in(&server, bobs.control(), "bob");
        assert!(bob.cmd("NOOP").starts_with("200 "));
        let kept = Arc::new(ClientSessionMemoryCache::new(32));
        let r = retr(
            &mut ctl,
            "f.txt",
            config(Arc::new(OfferAndKeep {
                from: bobs.cache.clone(),
                into: kept.clone(),
            })),
        );
        assert!(
            r.reply.starts_with("522 ") && r.data.is_empty(),
            "{}",
            r.reply
        );
        for attempt in 0..2 {
            let r = retr(&mut ctl, "f.txt", config(kept.clone()));
            assert!(
                r.reply.starts_with("522 ") && r.data.is_empty(),
                "{version:?} ids_only={ids_only} after bob's, attempt {attempt}: {}",
                r.reply
            );
        }
        // alice's own client is not disturbed.
        let own = Sessions::new(&server, version);
        let mut ctl2 = logged_in(&server, own.control(), "alice");
        assert!(ctl2.cmd("NOOP").starts_with("200 "));
        let r = retr(&mut ctl2, "f.txt", own.control());
        assert!(r.reply.starts_with("226 "), "{}", r.reply);
        assert_eq!(r.data, b"payload");
    }
}

/// rclone's case: one client, several control connections as alice from
/// one IP, one TLS session cache. A data connection that resumes the
/// session of a sibling, open or closed, gets its data.
#[test]
fn data_connection_may_resume_a_sibling_session_of_the_same_user() {
    let server = reuse_required();
    for version in VERSIONS {
        let mut ctl = logged_in(&server, Sessions::new(&server, version).control(), "alice");
        let siblings = Sessions::new(&server, version);
        let mut sibling = logged_in(&server, siblings.control(), "alice");
        for state in ["open", "closed"] {
            if state == "closed" {
                assert!(sibling.cmd("QUIT").starts_with("221 "));
            }
            let r = retr(&mut ctl, "f.txt", siblings.data());
            siblings.assert_offered();
            assert!(
                r.reply.starts_with("226 "),
                "{version:?}, sibling {state}: {}",
                r.reply
            );
            assert_eq!(r.data, b"payload");
            assert_eq!(r.kind, Some(HandshakeKind::Resumed));
        }
    }
}

#[test]
fn session_reuse_can_be_switched_off() {
    let server = Server::start_with(tls_setup("require_session_reuse = false"));
    std::fs::write(server.alice.join("f.txt"), b"payload").unwrap();
    let mut ctl = explicit_ctl(&server, client_config(&server, &[b"ftp"], true));
    ctl.cmd("USER alice");
    assert!(ctl.cmd(&format!("PASS {PASSWORD}")).starts_with("230 "));
    ctl.cmd("PBSZ 0");
    ctl.cmd("PROT P");
    let data = TcpStream::connect(pasv_addr(&ctl.cmd("PASV"))).unwrap();
    assert!(ctl.cmd("RETR f.txt").starts_with("150 "));
    let mut d = handshake(client_config(&server, &[], false), data).unwrap();
    let mut got = Vec::new();
    let _ = d.read_to_end(&mut got);
    assert_eq!(got, b"payload");
    assert!(ctl.reply().starts_with("226 "));
}

#[test]
fn policies_required_with_exemptions() {
    let server = Server::start_with(Setup {
        tls: Some(
            "mode = \"required\"\ndata_protection = \"required\"\nanonymous_exempt = true".into(),
        ),
        alice_extra: "tls_mode = \"optional\"",
        ..Setup::default()
    });
    std::fs::write(server.alice.join("f.txt"), b"x").unwrap();
    // bob must use TLS; the refusal comes before any password is sent.
    let mut raw = Raw::connect(server.addr);
    let r = raw.cmd("USER bob");
    assert!(r.starts_with("530 ") && r.contains("AUTH TLS"), "{r}");
    // alice's own policy lets her log in without TLS, but her data must
    // still be protected, which a plain session cannot do.
    assert!(raw.cmd("USER alice").starts_with("331 "));
    assert!(raw.cmd(&format!("PASS {PASSWORD}")).starts_with("230 "));
    let _data = raw.pasv();
    let r = raw.cmd("RETR f.txt");
    assert!(r.starts_with("521 "), "{r}");
    // Anonymous is exempt from both.
    let mut anon = Raw::login(server.addr, "anonymous");
    let data = anon.pasv();
    assert!(anon.cmd("RETR readme.txt").starts_with("150 "));
    assert_eq!(crate::harness::read_all(data), b"hello anonymous\n");
    assert!(anon.reply().starts_with("226 "));
    // bob over TLS: PROT C is refused by policy, PROT P works.
    let config = client_config(&server, &[b"ftp"], true);
    let mut ctl = explicit_ctl(&server, config.clone());
    assert!(ctl.cmd("USER bob").starts_with("331 "));
    assert!(ctl.cmd(&format!("PASS {PASSWORD}")).starts_with("230 "));
    assert!(ctl.cmd("PBSZ 0").starts_with("200 "));
    assert!(ctl.cmd("PROT C").starts_with("534 "));
    let data = TcpStream::connect(pasv_addr(&ctl.cmd("PASV"))).unwrap();
    assert!(ctl.cmd("RETR b.txt").starts_with("521 "), "PROT is still C");
    drop(data);
    assert!(ctl.cmd("PROT P").starts_with("200 "));
    let data = TcpStream::connect(pasv_addr(&ctl.cmd("PASV"))).unwrap();
    assert!(ctl.cmd("RETR b.txt").starts_with("150 "));
    let mut d = handshake(config, data).unwrap();
    let mut got = Vec::new();
    let _ = d.read_to_end(&mut got);
    assert_eq!(got, b"bob's file\n");
    assert!(ctl.reply().starts_with("226 "));
}

/// Pure-FTPd CVE-2011-1575: commands sent in plain text right behind AUTH TLS
/// must not run inside the TLS session.
#[test]
fn commands_smuggled_after_auth_are_discarded() {
    let server = Server::start_with(tls_setup(""));
    let mut raw = Raw::connect(server.addr);
    raw.send(b"AUTH TLS\r\nUSER alice\r\n");
    assert!(raw.reply().starts_with("234 "));
    let tls = handshake(
        client_config(&server, &[b"ftp"], true),
        raw.stream.try_clone().unwrap(),
    )
    .unwrap();
    let mut ctl = Ctl::new(tls);
    let r = ctl.cmd(&format!("PASS {PASSWORD}"));
    assert!(r.starts_with("503 "), "smuggled USER ran: {r}");
}

/// Read until the server closes (an alert first, maybe): within the
/// socket's read timeout, or the test fails.
fn closed_by_server(tcp: &mut TcpStream) {
    let mut buf = [0u8; 4096];
    let started = Instant::now();
    loop {
        match tcp.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return,
            Err(e) => panic!("not closed after {:?}: {e}", started.elapsed()),
        }
    }
}

/// Garbage where TLS records belong, instead of a ClientHello and after
/// the handshake: the server ends that connection and goes on serving.
#[test]
fn garbage_on_a_tls_control_connection_ends_it() {
    let server = Server::start_with(Setup {
        watch_log: true,
        ..tls_setup("")
    });
    let garbage: Vec<Vec<u8>> = vec![
        b"USER alice\r\n".to_vec(),
        b"\x16\x03\x01\x00\x05hello".to_vec(),
        b"\x17\x03\x03\x00\x30"
            .iter()
            .copied()
            .chain(random_bytes(48, 7))
            .collect(),
        b"\x15\x03\x03\x00\x02\x02\x28".to_vec(),
        b"\x16\x03\x03\xff\xff"
            .iter()
            .copied()
            .chain(random_bytes(3000, 8))
            .collect(),
        random_bytes(5000, 9),
    ];
    for g in &garbage {
        let mut raw = Raw::connect(server.addr);
        assert!(raw.cmd("AUTH TLS").starts_with("234 "));
        raw.stream.write_all(g).unwrap();
        closed_by_server(&mut raw.stream);

        let mut raw = Raw::connect(server.addr);
        assert!(raw.cmd("AUTH TLS").starts_with("234 "));
        let config = client_config(&server, &[b"ftp"], true);
        let mut ctl = Ctl::new(handshake(config, raw.stream.try_clone().unwrap()).unwrap());
        assert!(ctl.cmd("NOOP").starts_with("200 "));
        raw.stream.write_all(g).unwrap();
        closed_by_server(&mut raw.stream);
    }
    // The sessions whose garbage came after the handshake end as a TLS
    // error in the log, not as a client that went away.
    let log = server.wait_for_log(
        "reason=\"TLS protocol error\"",
        garbage.len() - 2,
        Duration::from_secs(10),
    );
    assert!(
        !log.contains("internal error"),
        "a session panicked:\n{log}"
    );
    let mut ctl = explicit_ctl(&server, client_config(&server, &[b"ftp"], true));
    assert!(ctl.cmd("NOOP").starts_with("200 "));
}

/// ALPACA (vsftpd CVE-2021-3618): a client that offers ALPN without "ftp"
/// meant another protocol and is refused; without ALPN, or with "ftp", fine.
#[test]
fn alpn_must_be_ftp_when_offered() {
    let server = Server::start_with(tls_setup(""));
    let mut raw = Raw::connect(server.addr);
    assert!(raw.cmd("AUTH TLS").starts_with("234 "));
    let http = client_config(&server, &[b"http/1.1"], true);
    assert!(handshake(http, raw.stream.try_clone().unwrap()).is_err());
    for alpn in [&[][..], &[&b"ftp"[..]][..]] {
        let mut ctl = explicit_ctl(&server, client_config(&server, alpn, true));
        assert!(ctl.cmd("NOOP").starts_with("200 "));
    }
}

#[test]
fn security_command_sequencing() {
    let plain = Server::start();
    let mut raw = Raw::connect(plain.addr);
    assert!(raw.cmd("AUTH TLS").starts_with("502 "), "no [tls] section");
    let feat = raw.cmd("FEAT");
    assert!(!feat.contains("AUTH TLS"), "{feat}");

    let server = Server::start_with(tls_setup(""));
    let mut raw = Raw::connect(server.addr);
    let feat = raw.cmd("FEAT");
    for f in [" AUTH TLS", " PBSZ", " PROT"] {
        assert!(feat.contains(f), "{feat}");
    }
    assert!(raw.cmd("PBSZ 0").starts_with("503 "));
    assert!(raw.cmd("PROT P").starts_with("503 "));
    assert!(raw.cmd("CCC").starts_with("533 "));
    assert!(raw.cmd("AUTH KERBEROS_V4").starts_with("504 "));
    let mut logged_in = Raw::login(server.addr, "alice");
    assert!(logged_in.cmd("AUTH TLS").starts_with("503 "));
    assert!(logged_in.cmd("NOOP").starts_with("200 "));

    let mut ctl = explicit_ctl(&server, client_config(&server, &[b"ftp"], true));
    assert!(ctl.cmd("AUTH TLS").starts_with("503 "));
    assert!(ctl.cmd("PROT P").starts_with("503 "), "PBSZ first");
    assert!(ctl.cmd("PBSZ 1024").starts_with("200 PBSZ=0"));
    assert!(ctl.cmd("PROT S").starts_with("504 "));
    assert!(ctl.cmd("CCC").starts_with("534 "));
    assert!(ctl.cmd("STAT").contains("Control connection: TLS"));

    // A handshake that is garbage: the connection closes, the server lives.
    let mut bad = Raw::connect(server.addr);
    assert!(bad.cmd("AUTH SSL").starts_with("234 "));
    bad.send(b"this is not a ClientHello\r\n");
    let mut rest = Vec::new();
    // The server may send a TLS alert, then it closes (read_to_end ends).
    bad.stream.read_to_end(&mut rest).unwrap();
    assert!(!String::from_utf8_lossy(&rest).contains("200"), "{rest:?}");
    assert!(Raw::connect(server.addr).cmd("NOOP").starts_with("200 "));
}

#[test]
fn certificate_reloads_on_sighup() {
    let server = Server::start_with(tls_setup(""));
    let peer_cert = |server: &Server| {
        let mut raw = Raw::connect(server.addr);
        assert!(raw.cmd("AUTH TLS").starts_with("234 "));
        let tls = handshake(
            client_config(server, &[b"ftp"], false),
            raw.stream.try_clone().unwrap(),
        )
        .unwrap();
        let c = tls.conn.peer_certificates().unwrap()[0].to_vec();
        (c, Ctl::new(tls))
    };
    let (before, mut old_session) = peer_cert(&server);
    let dir = server.cert.as_ref().unwrap().parent().unwrap().to_owned();
    let out = std::process::Command::new(crate::harness::BIN)
        .args(["gen-cert", "--host", "localhost", "--out"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains("config reloaded") {
        assert!(Instant::now() < deadline, "no reload: {}", server.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let (after, _) = peer_cert(&server);
    assert_ne!(before, after, "new handshakes use the new certificate");
    assert!(
        old_session.cmd("NOOP").starts_with("200 "),
        "old session kept"
    );
}

/// Under TLS an upload ends with close_notify; a bare FIN (which anyone on
/// the path can forge) must not commit a truncated file.
#[test]
fn upload_without_close_notify_is_not_committed() {
    let server = Server::start_with(tls_setup(""));
    let config = client_config(&server, &[b"ftp"], true);
    let mut ctl = explicit_ctl(&server, config.clone());
    ctl.cmd("USER alice");
    assert!(ctl.cmd(&format!("PASS {PASSWORD}")).starts_with("230 "));
    ctl.cmd("PBSZ 0");
    ctl.cmd("PROT P");
    for (name, clean) in [("cut.bin", false), ("whole.bin", true)] {
        let data = TcpStream::connect(pasv_addr(&ctl.cmd("PASV"))).unwrap();
        assert!(ctl.cmd(&format!("STOR {name}")).starts_with("150 "));
        let mut d = handshake(config.clone(), data).unwrap();
        d.write_all(&random_bytes(100_000, 3)).unwrap();
        if clean {
            d.conn.send_close_notify();
        }
        d.flush().unwrap();
        d.sock.shutdown(std::net::Shutdown::Write).unwrap();
        let r = ctl.reply();
        if clean {
            assert!(r.starts_with("226 "), "{r}");
            assert_eq!(
                std::fs::read(server.alice.join(name)).unwrap().len(),
                100_000
            );
        } else {
            assert!(r.starts_with("426 "), "{r}");
            assert!(
                !server.alice.join(name).exists(),
                "truncated upload committed"
            );
        }
    }
}

/// CCC (RFC 4217 section 6) when `tls.allow_ccc`: both sides end TLS on the
/// control connection and go on in plain text; data stays under PROT P.
#[test]
fn ccc_clears_the_control_connection_when_allowed() {
    let server = Server::start_with(tls_setup("allow_ccc = true"));
    std::fs::write(server.alice.join("f.txt"), b"after ccc").unwrap();
    let config = client_config(&server, &[b"ftp"], true);
    let mut ctl = explicit_ctl(&server, config.clone());
    ctl.cmd("USER alice");
    assert!(ctl.cmd(&format!("PASS {PASSWORD}")).starts_with("230 "));
    ctl.cmd("PBSZ 0");
    assert!(ctl.cmd("PROT P").starts_with("200 "));
    assert!(ctl.cmd("CCC").starts_with("200 "));
    // Our close_notify and, in the same write, the next command in plain
    // text: the server must skip the record and still see the command.
    let mut tls = ctl.r.into_inner();
    tls.conn.send_close_notify();
    let mut wire = Vec::new();
    while tls.conn.wants_write() {
        tls.conn.write_tls(&mut wire).unwrap();
    }
    wire.extend_from_slice(b"NOOP\r\n");
    let mut tcp = tls.sock;
    tcp.write_all(&wire).unwrap();
    // The server's close_notify: one TLS record, then plain text (unless
    // our TLS layer already read the record along with the CCC reply).
    let mut first = [0u8; 1];
    tcp.peek(&mut first).unwrap();
    if (0x14..=0x17).contains(&first[0]) {
        let mut header = [0u8; 5];
        tcp.read_exact(&mut header).unwrap();
        let mut body = vec![0u8; usize::from(u16::from_be_bytes([header[3], header[4]]))];
        tcp.read_exact(&mut body).unwrap();
    }
    let mut plain = crate::harness::Raw::from_stream(tcp);
    assert!(
        plain.reply().starts_with("200 "),
        "NOOP sent with the close_notify"
    );
    assert!(plain.cmd("NOOP").starts_with("200 "));
    assert!(plain.cmd("STAT").contains("plain text after CCC"));
    assert!(plain.cmd("AUTH TLS").starts_with("503 "));
    // PASV is readable on the wire now; the data connection is still TLS.
    let data = TcpStream::connect(pasv_addr(&plain.cmd("PASV"))).unwrap();
    assert!(plain.cmd("RETR f.txt").starts_with("150 "));
    let mut d = handshake(config, data).unwrap();
    let mut got = Vec::new();
    let _ = d.read_to_end(&mut got);
    assert_eq!(got, b"after ccc");
    assert!(plain.reply().starts_with("226 "));
}

/// TLS in the metrics: the implicit listener's sessions, TLS data
/// connections and their bytes, and the TLS flag of an explicit session
/// that ended.
#[test]
fn tls_sessions_and_transfers_in_metrics() {
    use crate::ops::{get, value};
    let server = Server::start_with(Setup {
        metrics: true,
        ..tls_setup("implicit_listen = [\"127.0.0.1:0\"]")
    });
    let config = client_config(&server, &[b"ftp"], true);
    let mut ftp = RustlsFtpStream::connect_secure_implicit(
        server.implicit.unwrap(),
        RustlsConnector::from(config.clone()),
        "localhost",
    )
    .unwrap();
    ftp.login("alice", PASSWORD).unwrap();
    ftp.transfer_type(FileType::Binary).unwrap();
    let data = random_bytes(70_001, 8);
    ftp.put_file("t.bin", &mut Cursor::new(data.clone()))
        .unwrap();
    assert_eq!(ftp.retr_as_buffer("t.bin").unwrap().into_inner(), data);

    let mut ctl = explicit_ctl(&server, config);
    // Answered under TLS: the server's side of the handshake is done.
    assert!(ctl.cmd("NOOP").starts_with("200 "));
    let (_, page) = get(server.metrics.unwrap(), "/metrics");
    let open = |listener: &str, tls: &str| {
        value(
            &page,
            &format!("portcullis_sessions{{listener=\"{listener}\",tls=\"{tls}\"}}"),
        )
    };
    assert_eq!(open("explicit", "yes"), 1.0, "after AUTH TLS");
    assert_eq!(open("explicit", "no"), 0.0);
    assert!(ctl.cmd("QUIT").starts_with("221 "));
    let mut rest = String::new();
    while matches!(ctl.r.read_line(&mut rest), Ok(n) if n > 0) {}

    let (_, page) = get(server.metrics.unwrap(), "/metrics");
    let v = |s: &str| value(&page, s);
    assert_eq!(
        v("portcullis_sessions{listener=\"implicit_tls\",tls=\"yes\"}"),
        1.0
    );
    assert_eq!(
        v("portcullis_sessions{listener=\"explicit\",tls=\"yes\"}"),
        0.0
    );
    assert_eq!(
        v("portcullis_sessions_total{listener=\"implicit_tls\"}"),
        1.0
    );
    assert_eq!(v("portcullis_sessions_total{listener=\"explicit\"}"), 1.0);
    assert_eq!(
        v("portcullis_sessions_ended_total{listener=\"explicit\",tls=\"yes\"}"),
        1.0
    );
    assert_eq!(
        v("portcullis_received_bytes_total{mode=\"passive\",tls=\"yes\"}"),
        data.len() as f64
    );
    assert_eq!(
        v("portcullis_sent_bytes_total{mode=\"passive\",tls=\"yes\"}"),
        data.len() as f64
    );
    assert_eq!(
        v(
            "portcullis_transfers_total{direction=\"upload\",mode=\"passive\",\
           outcome=\"ok\",tls=\"yes\",verb=\"STOR\"}"
        ),
        1.0
    );
    assert!(
        page.lines()
            .filter(|l| l.contains("tls=\"no\""))
            .all(|l| l.ends_with(" 0")),
        "nothing went in plain text:\n{page}"
    );
    ftp.quit().unwrap();
}
