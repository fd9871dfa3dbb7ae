//! TLS for FTPS (RFC 4217) with rustls: the certificate (reloadable on SIGHUP),
//! the server configuration (TLS 1.2 and 1.3, AEAD suites only, ALPN "ftp"),
//! the per-session resumption store that ties data connections to their
//! control connection, and the handshakes themselves.
//!
//! Session reuse: every control connection gets its own copy of the server
//! configuration with its own session store. A data connection is handshaken
//! with that same copy, so it can resume a TLS session that was made on this
//! control connection (or on one of its earlier data connections). Once the
//! control connection has logged in, its data connections may also resume a
//! session of a sibling: another control connection that logged in as the
//! same user from the same client IP, still open or closed for at most
//! [`SIBLING_WINDOW`] (see [`Siblings`]). Clients that open several control
//! connections at once and share one TLS session cache among them (rclone,
//! with its parallel transfers and checkers) resume whichever session they
//! hold. A data connection that does a full handshake, or resumes a session
//! of a connection that never logged in, of another user or from another
//! address, was not made by the holder of such keys and is refused when
//! `tls.require_session_reuse` is on, as vsftpd's `require_ssl_reuse` does.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use rustls::crypto::ring as provider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert, StoresServerSessions};
use rustls::sign::CertifiedKey;
use rustls::{HandshakeKind, ServerConfig};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::options::TlsOptions;

/// The ALPN protocol id of FTP (IANA registry): a client that offers ALPN
/// without "ftp" meant to talk to another service (ALPACA) and is refused.
pub const ALPN_FTP: &[u8] = b"ftp";

/// TLS 1.3 tickets sent on a control connection (see
/// [`TlsContext::session_configs`]); rustls clients keep up to 8.
const CONTROL_TICKETS: usize = 8;

/// Resumable sessions remembered per control connection.
const SESSIONS_PER_CONTROL: usize = 32;

/// How long the sessions of a control connection that has ended may still
/// be resumed by its siblings' data connections.
pub const SIBLING_WINDOW: Duration = Duration::from_secs(300);

/// Control connections remembered per (user, client IP); past it, the one
/// that ended first (or else the oldest) is forgotten.
const SIBLINGS_PER_GROUP: usize = 64;

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
}

/// The server's certificate, swapped in place on reload.
#[derive(Debug)]
pub struct CertResolver {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertResolver {
    /// Load the PEM chain and key.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let ck = load_certified_key(cert, key)?;
        Ok(CertResolver {
            cert: cert.to_owned(),
            key: key.to_owned(),
            current: RwLock::new(Arc::new(ck)),
        })
    }

    /// Read the files again; on error the old certificate stays in use.
    /// Sessions already running keep their TLS state.
    pub fn reload(&self) -> Result<(), TlsError> {
        let ck = load_certified_key(&self.cert, &self.key)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ck);
        Ok(())
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

fn load_certified_key(cert: &Path, key: &Path) -> Result<CertifiedKey, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsError::Load(format!("tls.cert: {}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Load(format!("tls.cert: {}: {e}", cert.display())))?;
    if chain.is_empty() {
        return Err(TlsError::Load(format!(
            "tls.cert: {}: no CERTIFICATE in the PEM file",
            cert.display()
        )));
    }
    let der = PrivateKeyDer::from_pem_file(key)
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

/// The resumable sessions of one control connection, least recently used
/// first.
type Entries = Mutex<VecDeque<(Vec<u8>, Vec<u8>)>>;

/// Find `key` in `entries` and make it the most recently used.
fn lookup(entries: &Entries, key: &[u8]) -> Option<Vec<u8>> {
    let mut e = entries.lock().unwrap_or_else(|p| p.into_inner());
    let i = e.iter().position(|(k, _)| k == key)?;
    let entry = e.remove(i)?;
    let value = entry.1.clone();
    e.push_back(entry);
    Some(value)
}

/// Remembers the TLS sessions of one control connection (least recently
/// used evicted first), and after login where its siblings' are. Unlike
/// rustls's default cache, a TLS 1.3 ticket may be used more than once:
/// FTP clients (OpenSSL-based ones in particular) resume every data
/// connection from the control connection's session. Early data is off, so
/// a reused ticket cannot replay anything.
#[derive(Debug, Default)]
pub struct SessionStore {
    entries: Arc<Entries>,
    /// Set once, at login.
    siblings: OnceLock<Arc<Siblings>>,
}

impl StoresServerSessions for SessionStore {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if e.len() >= SESSIONS_PER_CONTROL {
            e.pop_front();
        }
        e.push_back((key, value));
        true
    }

    /// Least recently used goes first: a client that resumes every data
    /// connection from the same session (OpenSSL's, Python's) keeps it
    /// alive however many new tickets the server hands out. Not found
    /// here, a logged-in connection looks among its siblings'.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        lookup(&self.entries, key).or_else(|| self.siblings.get()?.lookup(key, &self.entries))
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.get(key)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

/// One control connection among its siblings.
#[derive(Debug)]
struct Sibling {
    entries: Arc<Entries>,
    /// When the control connection ended.
    ended: Option<Instant>,
}

/// The control connections that logged in as one user from one client IP:
/// each one's data connections may resume any of their TLS sessions.
/// Resuming one proves that the data connection's client holds keys that
/// only a client which logged in as this user from this address was given,
/// which is what reuse of its own control connection's session proves
/// against a third party racing to the passive port: such a party has no
/// session of a logged-in control connection of this user, unless it is
/// that user, at that address, which the passive port's address check and
/// the password already admit.
#[derive(Debug, Default)]
pub struct Siblings {
    members: Mutex<VecDeque<Sibling>>,
}

impl Siblings {
    /// `key` in a sibling's sessions (not `own`), among those still open or
    /// ended within [`SIBLING_WINDOW`]; the others are forgotten.
    fn lookup(&self, key: &[u8], own: &Arc<Entries>) -> Option<Vec<u8>> {
        let mut m = self.members.lock().unwrap_or_else(|p| p.into_inner());
        m.retain(|s| s.ended.is_none_or(|t| t.elapsed() < SIBLING_WINDOW));
        m.iter()
            .filter(|s| !Arc::ptr_eq(&s.entries, own))
            .find_map(|s| lookup(&s.entries, key))
    }

    fn is_stale(&self) -> bool {
        let m = self.members.lock().unwrap_or_else(|p| p.into_inner());
        m.iter()
            .all(|s| s.ended.is_some_and(|t| t.elapsed() >= SIBLING_WINDOW))
    }
}

/// A logged-in control connection's place among its siblings; dropped when
/// the session ends, which starts its [`SIBLING_WINDOW`].
#[derive(Debug)]
pub struct Membership {
    siblings: Arc<Siblings>,
    entries: Arc<Entries>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        let mut m = self
            .siblings
            .members
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(s) = m
            .iter_mut()
            .find(|s| Arc::ptr_eq(&s.entries, &self.entries))
        {
            s.ended = Some(Instant::now());
        }
    }
}

/// The groups of siblings, by user and client IP.
#[derive(Debug, Default)]
struct SiblingGroups {
    groups: HashMap<(String, IpAddr), Arc<Siblings>>,
    /// Sweep out groups whose members have all expired when there are
    /// this many (doubled after each sweep, so sweeps stay rare).
    sweep_at: usize,
}

/// What the server shares for TLS: the configuration template, the
/// certificate and the groups of sibling control connections.
#[derive(Debug)]
pub struct TlsContext {
    template: ServerConfig,
    resolver: Arc<CertResolver>,
    siblings: Mutex<SiblingGroups>,
    pub options: TlsOptions,
}

impl TlsContext {
    /// Load the certificate and build the configuration.
    pub fn new(options: TlsOptions) -> Result<Self, TlsError> {
        let resolver = Arc::new(CertResolver::load(&options.cert, &options.key)?);
        let mut template =
            ServerConfig::builder_with_provider(Arc::new(provider::default_provider()))
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .map_err(|e| TlsError::Load(format!("tls: {e}")))?
                .with_no_client_auth()
                .with_cert_resolver(resolver.clone());
        template.alpn_protocols = vec![ALPN_FTP.to_vec()];
        Ok(TlsContext {
            template,
            resolver,
            siblings: Mutex::default(),
            options,
        })
    }

    /// A control connection with `configs` logged in as `user` from `ip`:
    /// from now on its data connections may resume the sessions of its
    /// siblings, and theirs its own. Its place is kept until the returned
    /// membership is dropped, and [`SIBLING_WINDOW`] after.
    pub fn logged_in(&self, configs: &SessionConfigs, user: &str, ip: IpAddr) -> Membership {
        let siblings = {
            let mut g = self.siblings.lock().unwrap_or_else(|p| p.into_inner());
            if g.groups.len() >= g.sweep_at {
                g.groups.retain(|_, s| !s.is_stale());
                g.sweep_at = (g.groups.len() * 2).max(1024);
            }
            g.groups
                .entry((user.to_owned(), ip.to_canonical()))
                .or_default()
                .clone()
        };
        let entries = configs.store.entries.clone();
        {
            let mut m = siblings.members.lock().unwrap_or_else(|p| p.into_inner());
            if m.len() >= SIBLINGS_PER_GROUP {
                let i = m.iter().position(|s| s.ended.is_some()).unwrap_or(0);
                m.remove(i);
            }
            m.push_back(Sibling {
                entries: entries.clone(),
                ended: None,
            });
        }
        // A second login on the same connection (not possible today) keeps
        // the first group.
        let _ = configs.store.siblings.set(siblings.clone());
        Membership { siblings, entries }
    }

    /// Reload the certificate files (SIGHUP).
    pub fn reload(&self) -> Result<(), TlsError> {
        self.resolver.reload()
    }

    /// The configurations for one control connection and for its data
    /// connections, all with one session store so that data connections can
    /// resume the control connection's session.
    ///
    /// TLS 1.3 tickets: a client spends one per resumed data connection
    /// (rustls clients use each once), so the control connection hands out
    /// [`CONTROL_TICKETS`] and every download connection two more. Upload
    /// connections send none: the client does not read while it uploads, and
    /// a ticket left unread in its socket makes its close a reset (RST), which
    /// throws away the end of the upload (seen with Go's crypto/tls in rclone
    /// and with lftp's GnuTLS).
    pub fn session_configs(&self) -> SessionConfigs {
        let store = Arc::new(SessionStore::default());
        let with = |tickets: usize| {
            let mut c = self.template.clone();
            c.session_storage = store.clone();
            c.send_tls13_tickets = tickets;
            Arc::new(c)
        };
        SessionConfigs {
            control: with(CONTROL_TICKETS),
            download: with(2),
            upload: with(0),
            store,
        }
    }
}

/// The TLS configurations of one session (see [`TlsContext::session_configs`]).
#[derive(Debug, Clone)]
pub struct SessionConfigs {
    pub control: Arc<ServerConfig>,
    /// Data connections that the server writes to (RETR, listings).
    pub download: Arc<ServerConfig>,
    /// Data connections that the client writes to (STOR, APPE, STOU).
    pub upload: Arc<ServerConfig>,
    /// The session store all three share.
    store: Arc<SessionStore>,
}

/// Run the server side of a handshake on `tcp`, bounded by `limit`.
pub async fn accept(
    config: Arc<ServerConfig>,
    tcp: TcpStream,
    limit: Duration,
) -> Result<Box<TlsStream<TcpStream>>, TlsError> {
    match tokio::time::timeout(limit, TlsAcceptor::from(config).accept(tcp)).await {
        Ok(Ok(s)) => Ok(Box::new(s)),
        Ok(Err(e)) => Err(TlsError::Handshake(e)),
        Err(_) => Err(TlsError::Timeout(limit)),
    }
}

/// Handshake a data connection with its control connection's configuration
/// and, when required, insist that it resumed a session.
pub async fn accept_data(
    config: Arc<ServerConfig>,
    tcp: TcpStream,
    limit: Duration,
    require_reuse: bool,
) -> Result<Box<TlsStream<TcpStream>>, TlsError> {
    let s = accept(config, tcp, limit).await?;
    if require_reuse && s.get_ref().1.handshake_kind() != Some(HandshakeKind::Resumed) {
        return Err(TlsError::NoReuse);
    }
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
    fn store_keeps_tickets_reusable_and_bounded() {
        let s = SessionStore::default();
        assert!(s.put(b"a".to_vec(), b"1".to_vec()));
        assert_eq!(s.take(b"a"), Some(b"1".to_vec()));
        assert_eq!(s.take(b"a"), Some(b"1".to_vec()));
        for i in 0..SESSIONS_PER_CONTROL {
            s.put(vec![i as u8, 0xff], vec![]);
            // Used all along: never the least recently used.
            assert!(s.get(b"a").is_some(), "a session in use was evicted");
        }
        assert_eq!(s.get(&[0, 0xff]), None, "the least recently used goes");
    }

    fn context(dir: &Path) -> TlsContext {
        let (cert, key) = self_signed(&["localhost".into()]).unwrap();
        let (c, k) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&c, cert).unwrap();
        std::fs::write(&k, key).unwrap();
        TlsContext::new(TlsOptions::optional(c, k)).unwrap()
    }

    #[test]
    fn sessions_are_shared_only_by_siblings_that_logged_in() {
        let dir = tempfile::tempdir().unwrap();
        let tls = context(dir.path());
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other_ip: IpAddr = "127.0.0.2".parse().unwrap();
        let conns: Vec<SessionConfigs> = (0..5).map(|_| tls.session_configs()).collect();
        for (i, c) in conns.iter().enumerate() {
            c.store.put(vec![i as u8], vec![i as u8]);
        }
        let get = |c: usize, key: usize| conns[c].store.get(&[key as u8]).is_some();
        // 0 and 1: alice from ip; 2: bob from ip; 3: alice from another ip;
        // 4: never logged in.
        let m0 = tls.logged_in(&conns[0], "alice", ip);
        let _m1 = tls.logged_in(&conns[1], "alice", ip);
        let _m2 = tls.logged_in(&conns[2], "bob", ip);
        let _m3 = tls.logged_in(&conns[3], "alice", other_ip);
        assert!(
            get(0, 1) && get(1, 0),
            "siblings resume each other's sessions"
        );
        assert!(get(0, 0) && get(4, 4), "each its own");
        for (c, key) in [(0, 2), (2, 0), (0, 3), (3, 0), (0, 4), (4, 0), (2, 3)] {
            assert!(!get(c, key), "connection {c} resumed session {key}");
        }
        // An ended sibling's sessions stay resumable for a while.
        drop(m0);
        assert!(get(1, 0));
    }

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
}
