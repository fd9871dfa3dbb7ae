//! [`ControlTls`] against a rustls client over `tokio::io::duplex`: the
//! handshake in both protocol versions, lines both ways, the tickets and
//! their resumption, a key update, CCC with a plain command right behind
//! the client's close_notify, and hostile bytes (garbage records, a peer
//! vanishing within a record), which end in an error, never a panic.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use portcullis_proto::framing::{Frame, LineDecoder};
use rustls::client::{ClientSessionMemoryCache, ClientSessionStore};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, HandshakeKind, NamedGroup};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::ControlTls;
use crate::tls::{SessionConfigs, TlsContext, TlsError, ALPN_ACME, ALPN_FTP};

const LIMIT: Duration = Duration::from_secs(10);

/// Tickets a client stored; otherwise rustls's own memory cache.
#[derive(Debug)]
struct Counting {
    inner: ClientSessionMemoryCache,
    tls13_tickets: AtomicUsize,
}

impl ClientSessionStore for Counting {
    fn set_kx_hint(&self, name: ServerName<'static>, group: NamedGroup) {
        self.inner.set_kx_hint(name, group)
    }
    fn kx_hint(&self, name: &ServerName<'_>) -> Option<NamedGroup> {
        self.inner.kx_hint(name)
    }
    fn set_tls12_session(
        &self,
        name: ServerName<'static>,
        value: rustls::client::Tls12ClientSessionValue,
    ) {
        self.inner.set_tls12_session(name, value)
    }
    fn tls12_session(
        &self,
        name: &ServerName<'_>,
    ) -> Option<rustls::client::Tls12ClientSessionValue> {
        self.inner.tls12_session(name)
    }
    fn remove_tls12_session(&self, name: &ServerName<'static>) {
        self.inner.remove_tls12_session(name)
    }
    fn insert_tls13_ticket(
        &self,
        name: ServerName<'static>,
        value: rustls::client::Tls13ClientSessionValue,
    ) {
        self.tls13_tickets.fetch_add(1, Ordering::SeqCst);
        self.inner.insert_tls13_ticket(name, value)
    }
    fn take_tls13_ticket(
        &self,
        name: &ServerName<'static>,
    ) -> Option<rustls::client::Tls13ClientSessionValue> {
        self.inner.take_tls13_ticket(name)
    }
}

/// A server's session configurations and a client that trusts it.
struct Fixture {
    ctx: TlsContext,
    configs: SessionConfigs,
    client: Arc<ClientConfig>,
    store: Arc<Counting>,
    dir: tempfile::TempDir,
}

fn fixture(versions: &[&'static rustls::SupportedProtocolVersion]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = crate::tls::self_signed(&["localhost".into()]).unwrap();
    let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&c, &cert).unwrap();
    std::fs::write(&k, key).unwrap();
    let ctx = TlsContext::new(crate::options::TlsOptions::optional(c, k)).unwrap();
    let configs = ctx.session_configs("127.0.0.1".parse().unwrap());
    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::pem::PemObject;
    for der in rustls::pki_types::CertificateDer::pem_slice_iter(cert.as_bytes()) {
        roots.add(der.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut client = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    client.alpn_protocols = vec![ALPN_FTP.to_vec()];
    let store = Arc::new(Counting {
        inner: ClientSessionMemoryCache::new(32),
        tls13_tickets: AtomicUsize::new(0),
    });
    client.resumption = rustls::client::Resumption::store(store.clone());
    Fixture {
        ctx,
        configs,
        client: Arc::new(client),
        store,
        dir,
    }
}

type Client = tokio_rustls::client::TlsStream<DuplexStream>;

fn localhost() -> ServerName<'static> {
    ServerName::try_from("localhost").unwrap()
}

/// Both ends of a finished handshake.
async fn pair(f: &Fixture) -> (Box<ControlTls<DuplexStream>>, Client) {
    let (a, b) = tokio::io::duplex(1 << 16);
    let connector = tokio_rustls::TlsConnector::from(f.client.clone());
    let (server, client) = tokio::join!(
        ControlTls::accept(f.configs.control(), a, LIMIT),
        connector.connect(localhost(), b)
    );
    (server.unwrap(), client.unwrap())
}

/// The next line the server reads.
async fn line(tls: &mut ControlTls<DuplexStream>) -> String {
    let (mut decoder, mut frames) = (LineDecoder::default(), Vec::new());
    while frames.is_empty() {
        let n = tokio::time::timeout(LIMIT, tls.read_frames(&mut decoder, &mut frames))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "closed");
    }
    match &frames[0] {
        Frame::Line(l) => String::from_utf8(l.clone()).unwrap(),
        Frame::TooLong => panic!("too long"),
    }
}

/// The next line the client reads.
async fn client_line(c: &mut Client) -> String {
    let mut got = Vec::new();
    while got.last() != Some(&b'\n') {
        let mut b = [0u8; 1];
        tokio::time::timeout(LIMIT, c.read_exact(&mut b))
            .await
            .unwrap()
            .unwrap();
        got.push(b[0]);
    }
    String::from_utf8(got).unwrap()
}

/// An idle connection keeps no buffer.
fn holds_nothing(tls: &ControlTls<DuplexStream>) {
    assert_eq!(tls.incoming.capacity(), 0);
    assert_eq!(tls.outgoing.capacity(), 0);
    assert_eq!(tls.plain.capacity(), 0);
}

async fn lines_both_ways(server: &mut ControlTls<DuplexStream>, client: &mut Client) {
    client
        .write_all(b"USER alice\r\nPASS pw\r\n")
        .await
        .unwrap();
    assert_eq!(line(server).await, "USER alice");
    holds_nothing(server);
    server.write_all(b"230 ok\r\n").await.unwrap();
    holds_nothing(server);
    assert_eq!(client_line(client).await, "230 ok\r\n");
    // A line longer than one read and than one record.
    let long = format!("SITE {}\r\n", "x".repeat(40_000));
    client.write_all(long.as_bytes()).await.unwrap();
    let (mut decoder, mut frames) = (LineDecoder::new(64_000), Vec::new());
    while frames.is_empty() {
        server.read_frames(&mut decoder, &mut frames).await.unwrap();
    }
    assert_eq!(
        frames,
        vec![Frame::Line(long.trim_end().as_bytes().to_vec())]
    );
    holds_nothing(server);
    let reply = "211-".to_string() + &"y".repeat(30_000) + "\r\n211 end\r\n";
    server.write_all(reply.as_bytes()).await.unwrap();
    let mut got = vec![0u8; reply.len()];
    client.read_exact(&mut got).await.unwrap();
    assert_eq!(got, reply.as_bytes());
    holds_nothing(server);
}

#[tokio::test]
async fn tls13_lines_tickets_and_resumption() {
    let f = fixture(&[&rustls::version::TLS13]);
    let (mut server, mut client) = pair(&f).await;
    assert_eq!(server.common().handshake_kind(), Some(HandshakeKind::Full));
    server.write_all(b"220 hi\r\n").await.unwrap();
    // The tickets were sent with the handshake: read before the 220.
    assert_eq!(client_line(&mut client).await, "220 hi\r\n");
    assert_eq!(f.store.tls13_tickets.load(Ordering::SeqCst), 8);
    lines_both_ways(&mut server, &mut client).await;
    // A data connection would resume one of them.
    let (resumed, _c) = pair(&f).await;
    assert_eq!(
        resumed.common().handshake_kind(),
        Some(HandshakeKind::Resumed)
    );
}

#[tokio::test]
async fn tls12_lines_and_resumption() {
    let f = fixture(&[&rustls::version::TLS12]);
    let (mut server, mut client) = pair(&f).await;
    assert_eq!(
        server.common().protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    lines_both_ways(&mut server, &mut client).await;
    let (resumed, _c) = pair(&f).await;
    assert_eq!(
        resumed.common().handshake_kind(),
        Some(HandshakeKind::Resumed)
    );
}

/// A line the client pipelines right behind its Finished reaches the
/// first read.
#[tokio::test]
async fn a_line_sent_with_the_finished_is_kept() {
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let f = fixture(&[version]);
        let (a, b) = tokio::io::duplex(1 << 16);
        let mut conn = rustls::ClientConnection::new(f.client.clone(), localhost()).unwrap();
        conn.writer().write_all_early(b"PWD\r\n");
        let server = tokio::spawn(ControlTls::accept(f.configs.control(), a, LIMIT));
        let mut b = b;
        drive_client(&mut conn, &mut b).await;
        let mut server = server.await.unwrap().unwrap();
        assert_eq!(line(&mut server).await, "PWD", "{version:?}");
    }
}

trait WriteAllEarly {
    fn write_all_early(&mut self, bytes: &[u8]);
}

impl WriteAllEarly for rustls::Writer<'_> {
    /// Buffered by rustls until the handshake is done, then sent in the
    /// same flight as the client's Finished.
    fn write_all_early(&mut self, bytes: &[u8]) {
        std::io::Write::write_all(self, bytes).unwrap();
    }
}

/// Run a sync rustls client's handshake over `io` to its end, its last
/// flight (and any application data queued) written.
async fn drive_client(conn: &mut rustls::ClientConnection, io: &mut DuplexStream) {
    loop {
        let mut wire = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut wire).unwrap();
        }
        io.write_all(&wire).await.unwrap();
        if !conn.is_handshaking() {
            return;
        }
        let mut buf = vec![0u8; 1 << 16];
        let n = tokio::time::timeout(LIMIT, io.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        conn.read_tls(&mut &buf[..n]).unwrap();
        conn.process_new_packets().unwrap();
    }
}

#[tokio::test]
async fn key_updates_from_the_client_are_followed() {
    let f = fixture(&[&rustls::version::TLS13]);
    let (mut server, mut client) = pair(&f).await;
    for i in 0..3 {
        client.get_mut().1.refresh_traffic_keys().unwrap();
        client
            .write_all(format!("NOOP {i}\r\n").as_bytes())
            .await
            .unwrap();
        assert_eq!(line(&mut server).await, format!("NOOP {i}"));
        server.write_all(b"200 ok\r\n").await.unwrap();
        assert_eq!(client_line(&mut client).await, "200 ok\r\n");
    }
    holds_nothing(&server);
}

#[tokio::test]
async fn close_notify_from_the_client_ends_reading() {
    let f = fixture(&[&rustls::version::TLS13]);
    let (mut server, mut client) = pair(&f).await;
    client.write_all(b"QUIT\r\n").await.unwrap();
    client.shutdown().await.unwrap();
    assert_eq!(line(&mut server).await, "QUIT");
    let (mut decoder, mut frames) = (LineDecoder::default(), Vec::new());
    assert_eq!(
        server.read_frames(&mut decoder, &mut frames).await.unwrap(),
        0
    );
    // Still allowed to answer, then close.
    server.write_all(b"221 bye\r\n").await.unwrap();
    server.shutdown().await.unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    assert_eq!(rest, b"221 bye\r\n");
}

/// CCC: the client's close_notify and a plain command in one write; the
/// command comes back as the plain text to read first.
#[tokio::test]
async fn ccc_keeps_what_follows_the_close_notify() {
    for version in [&rustls::version::TLS12, &rustls::version::TLS13] {
        let f = fixture(&[version]);
        let (server, client) = pair(&f).await;
        let (mut io, mut conn) = client.into_inner();
        let cleared = tokio::spawn(server.into_plain(LIMIT));
        conn.send_close_notify();
        let mut wire = Vec::new();
        while conn.wants_write() {
            conn.write_tls(&mut wire).unwrap();
        }
        wire.extend_from_slice(b"NOOP\r\n");
        io.write_all(&wire).await.unwrap();
        let (mut plain, rest) = cleared.await.unwrap().unwrap();
        assert_eq!(rest, b"NOOP\r\n", "{version:?}");
        // The server's close_notify came first; then plain text.
        let mut buf = vec![0u8; 1 << 16];
        let n = io.read(&mut buf).await.unwrap();
        conn.read_tls(&mut &buf[..n]).unwrap();
        conn.process_new_packets().unwrap();
        plain.write_all(b"200 NOOP ok\r\n").await.unwrap();
        let mut got = [0u8; 13];
        io.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"200 NOOP ok\r\n");
    }
}

/// A client that drops TLS after CCC without a close_notify is read in
/// plain text.
#[tokio::test]
async fn ccc_without_a_close_notify_goes_on_in_plain_text() {
    let f = fixture(&[&rustls::version::TLS13]);
    let (server, client) = pair(&f).await;
    let (mut io, _conn) = client.into_inner();
    let cleared = tokio::spawn(server.into_plain(LIMIT));
    io.write_all(b"PWD\r\n").await.unwrap();
    let (_plain, rest) = cleared.await.unwrap().unwrap();
    assert_eq!(rest, b"PWD\r\n");
}

/// The client vanishes halfway through a record: an error, and a read
/// cancelled in between (the driver's `select!`) loses nothing.
#[tokio::test]
async fn a_record_cut_short() {
    let f = fixture(&[&rustls::version::TLS13]);
    let (mut server, client) = pair(&f).await;
    let (mut io, mut conn) = client.into_inner();
    std::io::Write::write_all(&mut conn.writer(), b"NOOP\r\n").unwrap();
    let mut wire = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut wire).unwrap();
    }
    let half = wire.len() / 2;
    io.write_all(&wire[..half]).await.unwrap();
    let (mut decoder, mut frames) = (LineDecoder::default(), Vec::new());
    let cut = tokio::time::timeout(
        Duration::from_millis(50),
        server.read_frames(&mut decoder, &mut frames),
    )
    .await;
    assert!(cut.is_err(), "half a record is not a line");
    assert_eq!(server.incoming.len(), half);
    io.write_all(&wire[half..]).await.unwrap();
    assert_eq!(line(&mut server).await, "NOOP");
    holds_nothing(&server);
    // Now half of the next one, and gone.
    std::io::Write::write_all(&mut conn.writer(), b"PWD\r\n").unwrap();
    let mut wire = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut wire).unwrap();
    }
    io.write_all(&wire[..3]).await.unwrap();
    drop(io);
    let err = server
        .read_frames(&mut decoder, &mut frames)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
}

/// Pseudo-random bytes (xorshift), the same on every run.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Garbage, as records with a plausible header and as raw bytes, after
/// the handshake: an error, never a panic nor a hang (rustls's debug
/// assertions are on here: a second fatal alert would trip one).
#[tokio::test]
async fn garbage_after_the_handshake_is_an_error() {
    let f = fixture(&[&rustls::version::TLS13, &rustls::version::TLS12]);
    for seed in 1..40u64 {
        let (mut server, client) = pair(&f).await;
        let (mut io, _conn) = client.into_inner();
        let mut bytes = noise(seed, 1 + (seed as usize * 97) % 3000);
        if seed % 2 == 0 {
            // An application-data (or other) record header of the right
            // version and a length that fits what follows.
            let body = u16::try_from(bytes.len() - 5.min(bytes.len())).unwrap();
            let head = [0x14 + (seed % 4) as u8, 3, 3, (body >> 8) as u8, body as u8];
            bytes.splice(..5.min(bytes.len()), head);
        }
        io.write_all(&bytes).await.unwrap();
        drop(io);
        let (mut decoder, mut frames) = (LineDecoder::default(), Vec::new());
        let r = tokio::time::timeout(LIMIT, async {
            loop {
                match server.read_frames(&mut decoder, &mut frames).await {
                    Ok(0) => return Ok(0),
                    Ok(_) => continue,
                    Err(e) => return Err(e),
                }
            }
        })
        .await
        .expect("ends");
        assert!(r.is_err(), "seed {seed}: {r:?}");
        assert!(frames.is_empty(), "seed {seed}");
    }
}

/// Garbage instead of a ClientHello: a handshake error.
#[tokio::test]
async fn garbage_instead_of_a_handshake_is_an_error() {
    let f = fixture(&[&rustls::version::TLS13]);
    for seed in 1..20u64 {
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let mut bytes = noise(seed, 1 + (seed as usize * 131) % 2000);
        if seed % 2 == 0 {
            bytes.splice(..1, [0x16]);
        }
        b.write_all(&bytes).await.unwrap();
        drop(b);
        let r = ControlTls::accept(f.configs.control(), a, LIMIT).await;
        assert!(
            matches!(r, Err(TlsError::Handshake(_))),
            "seed {seed}: {r:?}"
        );
    }
    // Plain FTP on a TLS connection, with the client waiting.
    let (a, mut b) = tokio::io::duplex(1 << 16);
    b.write_all(b"USER anonymous\r\n").await.unwrap();
    let r = ControlTls::accept(f.configs.control(), a, LIMIT).await;
    assert!(matches!(r, Err(TlsError::Handshake(_))), "{r:?}");
    // A handshake record whose message announces more than a handshake
    // message may be: rustls refuses it (with no alert) while its
    // reassembly still points into the bytes; looking for an alert over an
    // empty slice then panicked inside rustls. An error and the end of the
    // connection, no panic.
    for record in [
        &b"\x16\x03\x01\x00\x05hello"[..],
        b"\x16\x03\x01\x00\x04\x01\xff\xff\xff",
    ] {
        let (a, mut b) = tokio::io::duplex(1 << 16);
        b.write_all(record).await.unwrap();
        let r = ControlTls::accept(f.configs.control(), a, LIMIT).await;
        assert!(matches!(r, Err(TlsError::Handshake(_))), "{r:?}");
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).await.unwrap();
    }
}

/// A handshake message announced long and sent a byte per record: rustls
/// keeps every fragment until the message ends, so the connection must
/// refuse to hold more than its bound instead of growing with the client.
#[tokio::test]
async fn a_long_message_in_tiny_fragments_is_refused() {
    let f = fixture(&[&rustls::version::TLS13]);
    let (a, mut b) = tokio::io::duplex(1 << 16);
    let server = tokio::spawn(ControlTls::accept(f.configs.control(), a, LIMIT));
    // A ClientHello of 0xffff bytes, then one byte of it per record: 6
    // bytes on the wire each, 393 KB for the whole message.
    let mut first = vec![0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x00, 0xff, 0xff];
    let fragment = [0x16, 0x03, 0x01, 0x00, 0x01, 0x00];
    for _ in 0..1000 {
        first.extend_from_slice(&fragment);
    }
    let mut sent = 0;
    let _ = b.write_all(&first).await;
    let chunk: Vec<u8> = fragment.iter().copied().cycle().take(6 * 1000).collect();
    // Bounded: 65 chunks of 1000 fragments are the whole message.
    for _ in 0..65 {
        if server.is_finished() || b.write_all(&chunk).await.is_err() {
            break;
        }
        sent += chunk.len();
    }
    let r = tokio::time::timeout(LIMIT, server).await.unwrap().unwrap();
    assert!(matches!(r, Err(TlsError::Handshake(_))), "{r:?}");
    assert!(sent < 200_000, "the server took {sent} bytes of fragments");
}

#[tokio::test(start_paused = true)]
async fn a_silent_client_times_the_handshake_out() {
    let f = fixture(&[&rustls::version::TLS13]);
    let (a, _b) = tokio::io::duplex(1 << 16);
    let r = ControlTls::accept(f.configs.control(), a, Duration::from_secs(3)).await;
    assert!(matches!(r, Err(TlsError::Timeout(_))), "{r:?}");
}

/// A TLS-ALPN-01 validation (RFC 8737) is answered and closed.
#[tokio::test]
async fn acme_alpn_is_answered_and_closed() {
    let f = fixture(&[&rustls::version::TLS13]);
    let mut config = (*f.configs.control()).clone();
    config.alpn_protocols.push(ALPN_ACME.to_vec());
    // The challenge certificate: the one the client trusts, here.
    let (c, k) = (f.dir.path().join("cert.pem"), f.dir.path().join("key.pem"));
    let ck = crate::tls::load_certified_key(&c, &k).unwrap();
    f.ctx.resolver().set_alpn_challenge("localhost", ck);
    let mut client = (*f.client).clone();
    client.alpn_protocols = vec![ALPN_ACME.to_vec()];
    let (a, b) = tokio::io::duplex(1 << 16);
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let (server, client) = tokio::join!(
        ControlTls::accept(Arc::new(config), a, LIMIT),
        connector.connect(localhost(), b)
    );
    assert!(
        matches!(server, Err(TlsError::AcmeValidation)),
        "{server:?}"
    );
    let mut rest = Vec::new();
    client.unwrap().read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
}
