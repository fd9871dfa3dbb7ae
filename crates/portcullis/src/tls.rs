//! TLS for FTPS (RFC 4217) with rustls: the certificate (reloadable on SIGHUP),
//! the server configuration (TLS 1.2 and 1.3, AEAD suites only, ALPN "ftp"),
//! the per-session resumption store that ties data connections to their
//! control connection, and the handshakes themselves.
//!
//! Session reuse: every control connection gets its own copy of the server
//! configuration with its own session store, which is also its ticketer
//! (tickets carry the session, encrypted with the id of the control
//! connection that issued them, so an idle connection keeps none). A data connection is handshaken
//! with that same copy, so it can resume a TLS session that was made on this
//! control connection (or on one of its earlier data connections). Once the
//! control connection has logged in, its data connections may also resume a
//! session of a sibling: another control connection that logged in as the
//! same user from the same client IP, still open or closed for at most
//! [`reuse::SIBLING_WINDOW`] (see [`reuse`]). Clients that open several control
//! connections at once and share one TLS session cache among them (rclone,
//! with its parallel transfers and checkers) resume whichever session they
//! hold. A data connection that does a full handshake, or resumes a session
//! of a connection that never logged in, of another user or from another
//! address, was not made by the holder of such keys and is refused when
//! `tls.require_session_reuse` is on, as vsftpd's `require_ssl_reuse` does.

pub mod acme;
mod client;
mod control;
mod reuse;

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rustls::crypto::ring as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{HandshakeKind, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

pub use client::{certificate_refused, client_verifier, ClientIdentity};
pub use control::ControlTls;
pub use reuse::{Handshake, SessionStore};

use crate::options::TlsOptions;

/// The ALPN protocol id of FTP (IANA registry): a client that offers ALPN
/// without "ftp" meant to talk to another service (ALPACA) and is refused.
pub const ALPN_FTP: &[u8] = b"ftp";

/// The ALPN protocol id of ACME's TLS-ALPN-01 validation (RFC 8737),
/// negotiated only with `tls.acme.challenge = "tls-alpn-01"`: such a
/// handshake is answered with the challenge certificate and closed.
pub const ALPN_ACME: &[u8] = b"acme-tls/1";

/// TLS 1.3 tickets sent on a control connection (see
/// [`TlsContext::session_configs`]); rustls clients keep up to 8.
const CONTROL_TICKETS: usize = 8;

/// A control or data stream: plain TCP, or TLS over TCP.
pub type MaybeTls = tokio_util::either::Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The certificate or key file is unreadable or invalid (a config error).
    #[error("{0}")]
    Load(String),
    /// The handshake failed: bad client, plain text on a TLS port, no common
    /// protocol version or ALPN.
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
    /// The client did not finish the handshake in time.
    #[error("TLS handshake timed out after {0:?}")]
    Timeout(Duration),
    /// A data connection did not resume the control connection's session.
    #[error("TLS session reuse required: the data connection must resume the control connection's TLS session")]
    NoReuse,
    /// An ACME TLS-ALPN-01 validation: answered and closed, no FTP.
    #[error("ACME TLS-ALPN-01 validation handshake answered and closed")]
    AcmeValidation,
}

/// The server's certificate, swapped in place on reload and when ACME
/// renews it; sessions already running keep the one they shook hands with.
#[derive(Debug)]
pub struct CertResolver {
    cert: PathBuf,
    key: PathBuf,
    /// Empty only while an ACME certificate is being obtained at start.
    current: arc_swap::ArcSwapOption<CertifiedKey>,
    /// `[tls.acme]`'s last outcome, for `ctl status` (kept here, with the
    /// certificate, across reloads).
    acme: std::sync::Mutex<Option<AcmeReport>>,
    /// TLS-ALPN-01 challenge certificates in progress, by lower-case DNS
    /// name: served only to a ClientHello that offers ALPN `acme-tls/1`.
    alpn_challenges: std::sync::Mutex<std::collections::HashMap<String, Arc<CertifiedKey>>>,
}

/// What `[tls.acme]`'s renewal task did last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcmeReport {
    /// When a certificate was last installed.
    pub installed: Option<SystemTime>,
    /// The last failed attempt's error, cleared by a success.
    pub error: Option<String>,
    /// When the next attempt is due after that failure.
    pub retry_at: Option<SystemTime>,
}

impl CertResolver {
    /// Load the PEM chain and key.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let ck = load_certified_key(cert, key)?;
        Ok(CertResolver {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: arc_swap::ArcSwapOption::from_pointee(ck),
            acme: Default::default(),
            alpn_challenges: Default::default(),
        })
    }

    /// For `[tls.acme]`: the files of an earlier run if both are there,
    /// else empty until [`CertResolver::install`]. Files that are there
    /// but do not load are an error.
    pub fn load_if_present(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        if cert.exists() || key.exists() {
            return Self::load(cert, key);
        }
        Ok(CertResolver {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: arc_swap::ArcSwapOption::empty(),
            acme: Default::default(),
            alpn_challenges: Default::default(),
        })
    }

    /// `[tls.acme]`'s last outcome (`None` without ACME, or before its
    /// first attempt ended).
    pub fn acme_report(&self) -> Option<AcmeReport> {
        self.acme.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Record an ACME attempt's outcome: `Ok` a certificate installed,
    /// `Err` the error and when the next attempt is due.
    pub fn acme_outcome(&self, outcome: Result<(), (String, SystemTime)>) {
        let mut r = self.acme.lock().unwrap_or_else(|e| e.into_inner());
        let mut report = r.take().unwrap_or_default();
        match outcome {
            Ok(()) => {
                report.installed = Some(SystemTime::now());
                report.error = None;
                report.retry_at = None;
            }
            Err((error, retry_at)) => {
                report.error = Some(error);
                report.retry_at = Some(retry_at);
            }
        }
        *r = Some(report);
    }

    /// Read the files again; on error the old certificate stays in use.
    /// Sessions already running keep their TLS state.
    pub fn reload(&self) -> Result<(), TlsError> {
        let ck = load_certified_key(&self.cert, &self.key)?;
        self.current.store(Some(Arc::new(ck)));
        Ok(())
    }

    /// Serve `ck` from the next handshake on (ACME's new certificate).
    pub fn install(&self, ck: CertifiedKey) {
        self.current.store(Some(Arc::new(ck)));
    }

    /// The certificate served now (none before ACME's first).
    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current.load_full()
    }

    /// Answer TLS-ALPN-01 validations of `domain` with `ck` until
    /// [`CertResolver::clear_alpn_challenges`].
    pub fn set_alpn_challenge(&self, domain: &str, ck: CertifiedKey) {
        self.alpn_lock()
            .insert(domain.to_ascii_lowercase(), Arc::new(ck));
    }

    /// Forget every TLS-ALPN-01 challenge (the order is over).
    pub fn clear_alpn_challenges(&self) {
        self.alpn_lock().clear();
    }

    fn alpn_lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Arc<CertifiedKey>>> {
        self.alpn_challenges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// The certificate for a ClientHello: a TLS-ALPN-01 challenge's for
    /// one that offers `acme-tls/1` (none, so no handshake, when no
    /// challenge for its SNI name is in progress), else the server's.
    fn pick(&self, alpn_acme: bool, server_name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        if alpn_acme {
            let name = server_name?.to_ascii_lowercase();
            return self.alpn_lock().get(&name).cloned();
        }
        self.current.load_full()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let acme = hello
            .alpn()
            .is_some_and(|mut offered| offered.any(|p| p == ALPN_ACME));
        self.pick(acme, hello.server_name())
    }
}

/// A PEM chain and key, read from files or given by ACME.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain = std::fs::read(cert)
        .map_err(|e| TlsError::Load(format!("tls.cert: {}: {e}", cert.display())))?;
    let der = std::fs::read(key)
        .map_err(|e| TlsError::Load(format!("tls.key: {}: {e}", key.display())))?;
    certified_key(&chain, &der, cert, key)
}

/// [`load_certified_key`] over the files' contents (`cert`, `key` name them
/// in errors).
pub fn certified_key(
    chain_pem: &[u8],
    key_pem: &[u8],
    cert: &Path,
    key: &Path,
) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Load(format!("tls.cert: {}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(TlsError::Load(format!(
            "tls.cert: {}: no CERTIFICATE in the PEM file",
            cert.display()
        )));
    }
    let der = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| TlsError::Load(format!("tls.key: {}: {e}", key.display())))?;
    let signing = provider::sign::any_supported_type(&der)
        .map_err(|e| TlsError::Load(format!("tls.key: {}: {e}", key.display())))?;
    let ck = CertifiedKey::new(chain, signing);
    ck.keys_match().map_err(|e| {
        TlsError::Load(format!(
            "tls.key: {} does not belong to the certificate in {}: {e}",
            key.display(),
            cert.display()
        ))
    })?;
    Ok(ck)
}

/// When the leaf certificate of `ck` expires.
pub fn not_after(ck: &CertifiedKey) -> Option<SystemTime> {
    let der = ck.cert.first()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let secs = cert.validity().not_after.timestamp();
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Seconds until `ck` expires; negative once expired.
pub fn expiry_seconds(ck: &CertifiedKey) -> Option<f64> {
    let t = not_after(ck)?;
    let now = SystemTime::now();
    Some(match t.duration_since(now) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    })
}

/// What the server shares for TLS: the configuration template, the
/// certificate and the groups of sibling control connections.
#[derive(Debug)]
pub struct TlsContext {
    template: Arc<ServerConfig>,
    resolver: Arc<CertResolver>,
    /// The control connections by client IP, for session reuse.
    groups: reuse::Groups,
    pub options: TlsOptions,
}

impl TlsContext {
    /// Load the certificate and build the configuration.
    pub fn new(options: TlsOptions) -> Result<Self, TlsError> {
        let resolver = Arc::new(match options.acme {
            Some(_) => CertResolver::load_if_present(&options.cert, &options.key)?,
            None => CertResolver::load(&options.cert, &options.key)?,
        });
        Self::with_resolver(options, resolver)
    }

    /// The configuration around a resolver that is already there: a reload
    /// with `[tls.acme]` keeps the one ACME's task installs into.
    pub fn with_resolver(
        options: TlsOptions,
        resolver: Arc<CertResolver>,
    ) -> Result<Self, TlsError> {
        // Client certificates are asked for on every handshake, data
        // connections' too (a resumed session keeps the one presented).
        let verifier = match &options.client_auth {
            Some(c) => {
                client_verifier(c).map_err(|e| TlsError::Load(format!("tls.client_auth.{e}")))?
            }
            None => rustls::server::WebPkiClientVerifier::no_client_auth(),
        };
        let mut template =
            ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .map_err(|e| TlsError::Load(format!("tls: {e}")))?
                .with_client_cert_verifier(verifier)
                .with_cert_resolver(resolver.clone());
        template.alpn_protocols = vec![ALPN_FTP.to_vec()];
        // "ftp" first: a client that offers both gets FTP.
        if options
            .acme
            .as_ref()
            .is_some_and(|a| a.challenge == crate::options::AcmeChallenge::TlsAlpn01)
        {
            template.alpn_protocols.push(ALPN_ACME.to_vec());
        }
        Ok(TlsContext {
            template: Arc::new(template),
            resolver,
            groups: reuse::Groups::new(
                provider::Ticketer::new().map_err(|e| TlsError::Load(format!("tls: {e}")))?,
            ),
            options,
        })
    }

    /// Reload the certificate files (SIGHUP).
    pub fn reload(&self) -> Result<(), TlsError> {
        self.resolver.reload()
    }

    /// The certificate's holder, which ACME installs renewals into.
    pub fn resolver(&self) -> &Arc<CertResolver> {
        &self.resolver
    }

    /// The configurations for one control connection and for its data
    /// connections, all with one session store so that data connections can
    /// resume the control connection's session.
    ///
    /// TLS 1.3 tickets: a client spends one per resumed data connection
    /// (rustls clients use each once), so the control connection hands out
    /// [`CONTROL_TICKETS`] and every download connection two more. Tickets
    /// are good for 6 to 12 hours ([`rustls::crypto::ring::Ticketer`]'s keys
    /// rotate every 6) and cost the server nothing while the client holds
    /// them. Upload
    /// connections send none: the client does not read while it uploads, and
    /// a ticket left unread in its socket makes its close a reset (RST), which
    /// throws away the end of the upload (seen with Go's crypto/tls in rclone
    /// and with lftp's GnuTLS).
    pub fn session_configs(&self, peer_ip: IpAddr) -> SessionConfigs {
        SessionConfigs {
            template: self.template.clone(),
            store: Arc::new(self.groups.store(peer_ip)),
        }
    }
}

/// The TLS configurations of one session (see [`TlsContext::session_configs`]).
/// Each is made when a handshake needs it, not held for the session's
/// life: a configuration is about 750 bytes, and an idle session would
/// otherwise keep three.
#[derive(Debug, Clone)]
pub struct SessionConfigs {
    template: Arc<ServerConfig>,
    /// The session store all three share.
    pub store: Arc<SessionStore>,
}

/// A data connection's configuration, and its handshake's view of the
/// session store (which decides on a resumed session, and makes the
/// tickets the handshake issued good once the connection is admitted).
#[derive(Debug)]
pub struct DataConfig {
    pub config: Arc<ServerConfig>,
    pub handshake: Arc<Handshake>,
}

impl SessionConfigs {
    fn with(&self, tickets: usize, data: bool) -> DataConfig {
        let handshake = self.store.handshake(data);
        let mut c = ServerConfig::clone(&self.template);
        c.session_storage = handshake.clone();
        c.ticketer = handshake.clone();
        c.send_tls13_tickets = tickets;
        DataConfig {
            config: Arc::new(c),
            handshake,
        }
    }

    /// The control connection's.
    pub fn control(&self) -> Arc<ServerConfig> {
        self.with(CONTROL_TICKETS, false).config
    }

    /// Data connections that the server writes to (RETR, listings).
    pub fn download(&self) -> DataConfig {
        self.with(2, true)
    }

    /// Data connections that the client writes to (STOR, APPE, STOU).
    pub fn upload(&self) -> DataConfig {
        self.with(0, true)
    }
}

/// Run the server side of a handshake on `io` (a data connection, the
/// control API's, an implicit-TLS connection while the first ACME
/// certificate is awaited; FTP sessions' control connections use
/// [`ControlTls::accept`]), bounded by `limit`. A handshake that negotiated ACME's
/// `acme-tls/1` (a TLS-ALPN-01 validation) is closed at once and is
/// [`TlsError::AcmeValidation`]: it never carries FTP.
pub async fn accept<S>(
    config: Arc<ServerConfig>,
    io: S,
    limit: Duration,
) -> Result<Box<TlsStream<S>>, TlsError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    match tokio::time::timeout(limit, TlsAcceptor::from(config).accept(io)).await {
        Ok(Ok(mut s)) if s.get_ref().1.alpn_protocol() == Some(ALPN_ACME) => {
            use tokio::io::AsyncWriteExt;
            let _ = tokio::time::timeout(limit, s.shutdown()).await;
            Err(TlsError::AcmeValidation)
        }
        Ok(Ok(s)) => Ok(Box::new(s)),
        Ok(Err(e)) => Err(TlsError::Handshake(e)),
        Err(_) => Err(TlsError::Timeout(limit)),
    }
}

/// Handshake a data connection with its control connection's configuration
/// and, when required, insist that it resumed a session that
/// [`Handshake::admit_resumed`] admits (within the same `limit`); once it
/// is admitted, the tickets its handshake issued are good.
pub async fn accept_data(
    data: DataConfig,
    tcp: TcpStream,
    limit: Duration,
    require_reuse: bool,
) -> Result<Box<TlsStream<TcpStream>>, TlsError> {
    let deadline = tokio::time::Instant::now() + limit;
    let s = accept(data.config, tcp, limit).await?;
    if require_reuse
        && (s.get_ref().1.handshake_kind() != Some(HandshakeKind::Resumed)
            || !data.handshake.admit_resumed(deadline).await)
    {
        // The tickets it was sent stay no good.
        return Err(TlsError::NoReuse);
    }
    data.handshake.admitted();
    Ok(s)
}

/// `portcullis gen-cert`: a self-signed certificate for `hosts`, as PEM
/// (certificate, private key).
pub fn self_signed(hosts: &[String]) -> Result<(String, String), String> {
    let ck = rcgen::generate_simple_self_signed(hosts.to_vec()).map_err(|e| e.to_string())?;
    Ok((ck.cert.pem(), ck.signing_key.serialize_pem()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_pair_loads() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(&["localhost".into()]).unwrap();
        let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&c, cert).unwrap();
        std::fs::write(&k, key).unwrap();
        let r = CertResolver::load(&c, &k).unwrap();
        r.reload().unwrap();
        // A key that does not match the certificate is refused.
        let (_, other_key) = self_signed(&["localhost".into()]).unwrap();
        std::fs::write(&k, other_key).unwrap();
        let err = r.reload().unwrap_err().to_string();
        assert!(err.contains("does not belong"), "{err}");
        std::fs::write(&c, "not pem").unwrap();
        assert!(CertResolver::load(&c, &k).is_err());
    }

    #[test]
    fn acme_tls_alpn_gets_only_a_live_challenge_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        let r = CertResolver::load_if_present(&c, &k).unwrap();
        assert!(r.pick(false, Some("ftp.example.com")).is_none());
        assert!(r.pick(true, Some("ftp.example.com")).is_none());
        let (cert, key) = self_signed(&["ftp.example.com".into()]).unwrap();
        let ck = certified_key(cert.as_bytes(), key.as_bytes(), &c, &k).unwrap();
        r.set_alpn_challenge("FTP.example.com", ck);
        // Not to an FTP client, nor for another name or without SNI.
        assert!(r.pick(false, Some("ftp.example.com")).is_none());
        assert!(r.pick(true, Some("ftp.Example.com")).is_some());
        assert!(r.pick(true, Some("other.example.com")).is_none());
        assert!(r.pick(true, None).is_none());
        r.clear_alpn_challenges();
        assert!(r.pick(true, Some("ftp.example.com")).is_none());
    }
}
