//! The driver's ordering rules (see the top of `driver.rs`), over an
//! in-memory control connection (`tokio::io::duplex`) whose every write is
//! recorded, so a test can say which replies left in one write. PASV still
//! binds a loopback socket for the data connection; the timeouts run on
//! paused time.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::io::{DuplexStream, ReadBuf};
use tokio::net::TcpStream;

use super::Session;
use crate::options::ServerOptions;
use crate::session::during::MAX_DEFERRED;
use crate::session::tests::{options, server, tls_in};

type Writes = Arc<Mutex<Vec<Vec<u8>>>>;

/// The server's end of the control connection: each write it makes is
/// recorded whole (the duplex buffer is large enough never to split one).
struct Recorder {
    io: DuplexStream,
    writes: Writes,
}

impl AsyncRead for Recorder {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Recorder {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.writes.lock().unwrap().push(buf[..*n].to_vec());
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// The client's end, and what the server wrote.
struct Client {
    io: BufReader<DuplexStream>,
    writes: Writes,
    /// Longest wait for anything (long on paused time, where waiting
    /// jumps straight to the session's own deadline).
    limit: Duration,
}

/// A session of a server with options `o`, served on its own task; the
/// banner already read.
async fn connect(o: ServerOptions, limit: Duration) -> Client {
    connect_to(o, limit).await.0
}

/// The same, with the server's shared state (its session registry).
async fn connect_to(o: ServerOptions, limit: Duration) -> (Client, Arc<crate::session::Shared>) {
    let (shared, ends) = server(o);
    let kept = shared.clone();
    let (ours, theirs) = tokio::io::duplex(1 << 20);
    let writes = Writes::default();
    let stream = Recorder {
        io: theirs,
        writes: writes.clone(),
    };
    tokio::spawn(Session::plain(shared, ends, crate::events::SessionId::random(), stream).run());
    let mut c = Client {
        io: BufReader::new(ours),
        writes,
        limit,
    };
    assert_eq!(c.reply().await.0, 220);
    (c, kept)
}

impl Client {
    async fn send(&mut self, lines: &str) {
        self.io.write_all(lines.as_bytes()).await.unwrap();
    }

    /// The next reply: its code and its lines.
    async fn reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(self.limit, self.io.read_line(&mut line))
                .await
                .expect("no reply in time")
                .unwrap();
            assert!(n > 0, "closed; read so far: {text:?}");
            text.push_str(&line);
            let b = line.as_bytes();
            if b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b' ' {
                let code = line[..3].parse().unwrap();
                return (code, text);
            }
        }
    }

    async fn code(&mut self) -> u16 {
        self.reply().await.0
    }

    /// The server closed the connection, nothing more said.
    async fn closed(&mut self) {
        let mut rest = Vec::new();
        tokio::time::timeout(self.limit, self.io.read_to_end(&mut rest))
            .await
            .expect("not closed in time")
            .unwrap();
        assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    }

    async fn login(&mut self) {
        self.send("USER alice\r\nPASS pw\r\n").await;
        assert_eq!((self.code().await, self.code().await), (331, 230));
    }

    /// PASV, and the data connection to the port it names.
    async fn pasv(&mut self) -> TcpStream {
        self.send("PASV\r\n").await;
        let (code, text) = self.reply().await;
        assert_eq!(code, 227, "{text}");
        let inner = &text[text.find('(').unwrap() + 1..text.find(')').unwrap()];
        let n: Vec<u16> = inner.split(',').map(|p| p.parse().unwrap()).collect();
        TcpStream::connect(("127.0.0.1", n[4] * 256 + n[5]))
            .await
            .unwrap()
    }

    /// The write (by index) that holds `needle`, and that write.
    fn write_with(&self, needle: &str) -> (usize, String) {
        let writes = self.writes.lock().unwrap();
        writes
            .iter()
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .enumerate()
            .find(|(_, w)| w.contains(needle))
            .unwrap_or_else(|| panic!("no write holds {needle:?}"))
    }
}

const LIMIT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn pipelined_lines_are_answered_in_one_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = connect(options(dir.path(), None), LIMIT).await;
    c.send("USER alice\r\nPASS pw\r\nPWD\r\nNOOP\r\n").await;
    for want in [331, 230, 257, 200] {
        assert_eq!(c.code().await, want);
    }
    let (i, write) = c.write_with("331 ");
    assert_eq!(i, 1, "the banner, then one write");
    for code in ["230 ", "257 ", "200 "] {
        assert!(write.contains(code), "{write}");
    }
}

/// Nothing runs, nor is answered, after a reply that closes: the DELE
/// read with QUIT is dropped unseen.
#[tokio::test]
async fn nothing_runs_after_quit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f"), b"keep").unwrap();
    let mut c = connect(options(dir.path(), None), LIMIT).await;
    c.send("USER alice\r\nPASS pw\r\nQUIT\r\nDELE f\r\nNOOP\r\n")
        .await;
    for want in [331, 230, 221] {
        assert_eq!(c.code().await, want);
    }
    c.closed().await;
    assert!(dir.path().join("f").exists(), "DELE after QUIT ran");
}

/// During a transfer NOOP and STAT are answered at once, other lines wait
/// in order (at most MAX_DEFERRED; one more is refused with 450) and are
/// answered with the transfer's final reply, in one write.
#[tokio::test]
async fn commands_during_a_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = connect(options(dir.path(), None), LIMIT).await;
    c.login().await;
    let mut data = c.pasv().await;
    c.send("STOR up\r\n").await;
    assert_eq!(c.code().await, 150);
    c.send("NOOP\r\nPWD\r\nSTAT\r\nTYPE A\r\n").await;
    assert_eq!(c.code().await, 200);
    let (code, stat) = c.reply().await;
    assert_eq!(code, 211);
    assert!(stat.contains("STOR in progress"), "{stat}");
    let (_, write) = c.write_with("NOOP ok");
    assert!(write.contains("211 ") && !write.contains("257"), "{write}");
    // Two wait already; fill the queue, then one too many.
    c.send(&"PWD\r\n".repeat(MAX_DEFERRED - 2)).await;
    c.send("SYST\r\n").await;
    assert_eq!(c.code().await, 450);
    data.write_all(b"hello").await.unwrap();
    drop(data);
    assert_eq!(c.code().await, 226);
    assert_eq!(c.code().await, 257);
    assert_eq!(c.code().await, 200, "TYPE A, in its turn");
    for _ in 0..MAX_DEFERRED - 2 {
        assert_eq!(c.code().await, 257);
    }
    let (_, write) = c.write_with("226 ");
    assert_eq!(write.matches("257 ").count(), MAX_DEFERRED - 1, "{write}");
    assert!(!write.contains("215"), "the refused SYST never ran");
    assert_eq!(std::fs::read(dir.path().join("up")).unwrap(), b"hello");
}

/// QUIT during an upload: 221 at once; the upload runs to its end, its
/// 226 follows, then the connection closes.
#[tokio::test]
async fn quit_during_an_upload() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = connect(options(dir.path(), None), LIMIT).await;
    c.login().await;
    let mut data = c.pasv().await;
    c.send("STOR up\r\n").await;
    assert_eq!(c.code().await, 150);
    c.send("QUIT\r\nDELE up\r\n").await;
    assert_eq!(c.code().await, 221);
    data.write_all(b"all of it").await.unwrap();
    drop(data);
    assert_eq!(c.code().await, 226);
    c.closed().await;
    assert_eq!(std::fs::read(dir.path().join("up")).unwrap(), b"all of it");
}

/// QUIT during a download: the 221 follows the 226, in the same write;
/// the download runs to its end.
#[tokio::test]
async fn quit_during_a_download() {
    let dir = tempfile::tempdir().unwrap();
    // Larger than the socket buffers: the download cannot end before the
    // client reads.
    let big = vec![7u8; 16 << 20];
    std::fs::write(dir.path().join("big"), &big).unwrap();
    let mut c = connect(options(dir.path(), None), LIMIT).await;
    c.login().await;
    let mut data = c.pasv().await;
    c.send("RETR big\r\n").await;
    assert_eq!(c.code().await, 150);
    let (_, opening) = c.write_with("150 ");
    assert!(
        !opening.contains("226"),
        "the download ended at its first poll"
    );
    c.send("QUIT\r\n").await;
    let mut got = Vec::new();
    tokio::time::timeout(LIMIT, data.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.len(), big.len());
    assert_eq!(c.code().await, 226);
    assert_eq!(c.code().await, 221);
    c.closed().await;
    let (_, write) = c.write_with("226 ");
    assert!(
        write.contains("221 "),
        "221 after 226, in one write: {write}"
    );
}

/// The login timeout counts from connect; bytes do not hold it off.
#[tokio::test(start_paused = true)]
async fn login_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path(), None);
    o.login_timeout = Duration::from_secs(60);
    let start = tokio::time::Instant::now();
    let mut c = connect(o, Duration::from_secs(3600)).await;
    c.send("USER alice\r\n").await;
    assert_eq!(c.code().await, 331);
    let (code, text) = c.reply().await;
    assert_eq!(code, 421);
    assert!(text.contains("login took too long"), "{text}");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(60) && waited < Duration::from_secs(61),
        "{waited:?}"
    );
    c.closed().await;
}

/// The idle timeout counts from the last whole command: part of a line
/// (a slow client) does not hold the session open.
#[tokio::test(start_paused = true)]
async fn idle_timeout_counts_from_the_last_whole_command() {
    let dir = tempfile::tempdir().unwrap();
    let mut o = options(dir.path(), None);
    o.idle_timeout = Duration::from_secs(300);
    let mut c = connect(o, Duration::from_secs(3600)).await;
    c.login().await;
    tokio::time::sleep(Duration::from_secs(200)).await;
    c.send("NOOP\r\n").await;
    assert_eq!(c.code().await, 200);
    let last = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(200)).await;
    c.send("NO").await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 421);
    assert!(text.contains("no command for too long"), "{text}");
    let waited = last.elapsed();
    assert!(
        waited >= Duration::from_secs(300) && waited < Duration::from_secs(301),
        "{waited:?}"
    );
    c.closed().await;
}

/// CCC over a stream that cannot be peeked into: the client's
/// close_notify and the next command in plain text arrive in one write;
/// the record is skipped and the command, read with it, is kept and run.
#[tokio::test]
async fn ccc_keeps_the_command_read_with_the_close_notify() {
    let dir = tempfile::tempdir().unwrap();
    let mut tls = tls_in(dir.path());
    tls.allow_ccc = true;
    let mut c = connect(options(dir.path(), Some(tls)), LIMIT).await;
    c.send("AUTH TLS\r\n").await;
    assert_eq!(c.code().await, 234);
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(dir.path().join("cert.pem")).unwrap();
    use rustls::pki_types::pem::PemObject;
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"ftp".to_vec()];
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let io = c.io.into_inner();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, io)
        .await
        .unwrap();
    tls.write_all(b"USER alice\r\nPASS pw\r\nCCC\r\n")
        .await
        .unwrap();
    let mut secure = BufReader::new(tls);
    for want in ["331 ", "230 ", "200 "] {
        let mut line = String::new();
        secure.read_line(&mut line).await.unwrap();
        assert!(line.starts_with(want), "{want}: {line}");
    }
    let (mut io, mut conn) = secure.into_inner().into_inner();
    conn.send_close_notify();
    let mut wire = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut wire).unwrap();
    }
    wire.extend_from_slice(b"NOOP\r\n");
    io.write_all(&wire).await.unwrap();
    // The server's close_notify (unless our TLS layer read it with the
    // 200), then plain text.
    let mut first = [0u8; 1];
    io.read_exact(&mut first).await.unwrap();
    let mut plain = Vec::new();
    if (0x14..=0x17).contains(&first[0]) {
        let mut header = [0u8; 4];
        io.read_exact(&mut header).await.unwrap();
        let mut body = vec![0u8; usize::from(u16::from_be_bytes([header[2], header[3]]))];
        io.read_exact(&mut body).await.unwrap();
    } else {
        plain.push(first[0]);
    }
    // The rest of the NOOP's reply, byte by byte (no read past it).
    while plain.last() != Some(&b'\n') && plain.len() < 100 {
        let mut b = [0u8; 1];
        tokio::time::timeout(LIMIT, io.read_exact(&mut b))
            .await
            .unwrap()
            .unwrap();
        plain.push(b[0]);
    }
    let text = String::from_utf8_lossy(&plain);
    assert!(
        text.starts_with("200 NOOP"),
        "NOOP sent with the close_notify: {text}"
    );
    let mut c = Client {
        io: BufReader::new(io),
        writes: c.writes,
        limit: LIMIT,
    };
    c.send("PWD\r\n").await;
    assert_eq!(c.code().await, 257);
}

/// Every idle session holds its whole future (tokio allocates the largest
/// state up front): the session's state once (not twice, as an `async fn
/// run(self)` held it) and no command's state (boxed while it runs). The
/// bound is for this build (debug); a release build's future is smaller.
#[tokio::test]
async fn an_idle_session_future_holds_the_session_once() {
    let dir = tempfile::tempdir().unwrap();
    let (shared, ends) = server(options(dir.path(), None));
    let (_ours, theirs) = tokio::io::duplex(1 << 10);
    let session = Session::plain(shared, ends, crate::events::SessionId::random(), theirs);
    let state = std::mem::size_of_val(&session);
    let run = session.run();
    let size = std::mem::size_of_val(&run);
    assert!(
        size < 2 * state + 256,
        "the session future is {size} bytes for a session of {state}"
    );
}

/// A kick (the control plane) closes an idle session with 421; the
/// registry shows the session until it has ended, then no more.
#[tokio::test]
async fn a_kick_closes_an_idle_session() {
    use crate::registry::SessionRegistry;
    let dir = tempfile::tempdir().unwrap();
    let (mut c, shared) = connect_to(options(dir.path(), None), LIMIT).await;
    c.login().await;
    let list = shared.registry.list();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].user.as_deref(), Some("alice"));
    assert_eq!(list[0].command.as_deref(), Some("PASS"));
    assert!(list[0].transfer.is_none());
    let id = crate::events::SessionId::parse(&list[0].id).unwrap();
    assert!(shared.registry.kick(id));
    assert_eq!(c.code().await, 421);
    c.closed().await;
    assert!(shared.registry.list().is_empty());
}

/// A kick during an upload cuts it (426, nothing committed), then 421.
#[tokio::test]
async fn a_kick_cuts_an_upload() {
    use crate::registry::SessionRegistry;
    let dir = tempfile::tempdir().unwrap();
    let (mut c, shared) = connect_to(options(dir.path(), None), LIMIT).await;
    c.login().await;
    let mut data = c.pasv().await;
    c.send("STOR up\r\n").await;
    assert_eq!(c.code().await, 150);
    data.write_all(&[1u8; 4096]).await.unwrap();
    let list = shared.registry.list();
    let t = list[0].transfer.as_ref().expect("the upload is listed");
    assert_eq!((t.path.as_str(), t.direction), ("/up", "upload"));
    // The upload's file (under a temporary name) is there until the cut.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    assert_eq!(shared.registry.kick_user("alice"), 1);
    let (code, text) = c.reply().await;
    assert_eq!(code, 426, "{text}");
    assert!(text.contains("administrator"), "{text}");
    assert_eq!(c.code().await, 421);
    c.closed().await;
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
