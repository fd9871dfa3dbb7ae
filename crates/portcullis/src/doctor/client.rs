//! The small FTP client `doctor` drives: a control connection (plain or
//! TLS), replies read whole, and data connections in either direction.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_util::either::Either;

pub type Stream = Either<TcpStream, Box<tokio_rustls::client::TlsStream<TcpStream>>>;

/// One reply: its code and its text (lines joined with '\n').
#[derive(Debug, Clone)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}",
            self.code,
            self.text.lines().last().unwrap_or("")
        )
    }
}

/// A control connection.
pub struct Control {
    io: BufReader<Stream>,
    pub timeout: Duration,
    /// The server's address as connected (the "host" the user named).
    pub peer: SocketAddr,
    /// Our side of the control connection (where active mode listens).
    pub local: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

fn io_err(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::other(msg.into())
}

impl Control {
    pub async fn connect(addr: SocketAddr, timeout: Duration) -> std::io::Result<Control> {
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| io_err(format!("connecting to {addr} timed out")))??;
        let local = tcp.local_addr()?;
        Ok(Control {
            io: BufReader::new(Either::Left(tcp)),
            timeout,
            peer: addr,
            local,
            tls: None,
        })
    }

    /// Read one complete reply.
    pub async fn reply(&mut self) -> std::io::Result<Reply> {
        let t = self.timeout;
        tokio::time::timeout(t, self.read_reply())
            .await
            .map_err(|_| io_err(format!("no reply within {}s", t.as_secs())))?
    }

    async fn read_reply(&mut self) -> std::io::Result<Reply> {
        let mut first = String::new();
        if self.io.read_line(&mut first).await? == 0 {
            return Err(io_err("the server closed the control connection"));
        }
        let code: u16 = first
            .get(..3)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| io_err(format!("not an FTP reply: {first:?}")))?;
        let mut text = first.get(4..).unwrap_or("").trim_end().to_owned();
        if first.as_bytes().get(3) == Some(&b'-') {
            let end = format!("{code} ");
            for _ in 0..10_000 {
                let mut l = String::new();
                if self.io.read_line(&mut l).await? == 0 {
                    return Err(io_err("the server closed the control connection"));
                }
                text.push('\n');
                text.push_str(l.trim_end());
                if l.starts_with(&end) {
                    break;
                }
            }
        }
        Ok(Reply { code, text })
    }

    pub async fn cmd(&mut self, line: &str) -> std::io::Result<Reply> {
        self.send(line).await?;
        self.reply().await
    }

    pub async fn send(&mut self, line: &str) -> std::io::Result<()> {
        let s = self.io.get_mut();
        s.write_all(format!("{line}\r\n").as_bytes()).await?;
        s.flush().await
    }

    /// AUTH TLS and the handshake; then PBSZ 0 and PROT P.
    pub async fn start_tls(mut self, host: &str) -> std::io::Result<Control> {
        let r = self.cmd("AUTH TLS").await?;
        if r.code != 234 {
            return Err(io_err(format!("AUTH TLS refused: {r}")));
        }
        let name = ServerName::try_from(host.to_owned())
            .map_err(|e| io_err(format!("bad host name {host:?}: {e}")))?;
        let connector = TlsConnector::from(client_config());
        let Either::Left(tcp) = self.io.into_inner() else {
            return Err(io_err("already using TLS"));
        };
        let tls = tokio::time::timeout(self.timeout, connector.connect(name.clone(), tcp))
            .await
            .map_err(|_| io_err("the TLS handshake timed out"))?
            .map_err(|e| io_err(format!("TLS handshake failed: {e}")))?;
        let mut c = Control {
            io: BufReader::new(Either::Right(Box::new(tls))),
            timeout: self.timeout,
            peer: self.peer,
            local: self.local,
            tls: Some((connector, name)),
        };
        for line in ["PBSZ 0", "PROT P"] {
            let r = c.cmd(line).await?;
            if r.code != 200 {
                return Err(io_err(format!("{line} refused: {r}")));
            }
        }
        Ok(c)
    }

    /// Wrap a data connection in TLS when the control connection is (the
    /// same client configuration, so the session is resumed).
    pub async fn data(&self, tcp: TcpStream) -> std::io::Result<Stream> {
        match &self.tls {
            None => Ok(Either::Left(tcp)),
            Some((connector, name)) => {
                let tls = tokio::time::timeout(self.timeout, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|_| io_err("the data connection's TLS handshake timed out"))?
                    .map_err(|e| io_err(format!("data connection TLS handshake failed: {e}")))?;
                Ok(Either::Right(Box::new(tls)))
            }
        }
    }
}

/// Accepts any certificate: `doctor` diagnoses connectivity, not trust,
/// and says so in its report.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn client_config() -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut c = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    c.alpn_protocols = vec![b"ftp".to_vec()];
    Arc::new(c)
}

/// Read a data connection to its end (bounded by the timeout between reads
/// and by `max` bytes).
pub async fn drain<S: AsyncRead + Unpin>(
    s: &mut S,
    timeout: Duration,
    max: usize,
) -> std::io::Result<usize> {
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0;
    loop {
        let n = tokio::time::timeout(timeout, s.read(&mut buf))
            .await
            .map_err(|_| io_err("the data connection stalled"))??;
        if n == 0 || total >= max {
            return Ok(total);
        }
        total += n;
    }
}

/// Shut a data stream down quietly.
pub async fn close<S: AsyncWrite + Unpin>(s: &mut S) {
    let _ = s.shutdown().await;
}
