//! `[tls.acme]`: the server's certificate obtained and renewed over ACME
//! (RFC 8555) with instant-acme. HTTP-01 challenges are answered by
//! [`http01`] on `tls.acme.http_listen`; TLS-ALPN-01 ones (RFC 8737,
//! `tls.acme.challenge = "tls-alpn-01"`) by the implicit-FTPS listeners:
//! [`CertResolver`] serves the challenge certificate made by
//! [`alpn_certificate`] to a ClientHello that offers `acme-tls/1`, and
//! [`super::accept`] closes such a connection after its handshake. DNS-01
//! (wildcards) is not supported.
//!
//! One task per process ([`Acme::run`]): it waits until the certificate
//! served is within `renew_before` (less a random jitter of up to a tenth
//! of it, so that a fleet started together does not renew together) of its
//! expiry, orders a new one, writes it to `state_dir` (files 0600, written
//! under a temporary name and renamed) and installs it in the
//! [`CertResolver`]: the next handshake has it, sessions already running
//! keep theirs. A failure is logged and retried with exponential backoff
//! from [`FIRST_RETRY`] to [`LAST_RETRY`] while the old certificate keeps
//! serving. At start without a certificate, the server waits for the first
//! one before it accepts connections (`server.rs`).

pub mod http01;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rand::Rng;
use rustls::sign::CertifiedKey;
use tracing::{info, warn};

pub use http01::Challenges;

use super::{expiry_seconds, not_after, CertResolver};
use crate::options::{AcmeChallenge, AcmeOptions};

/// The first retry after a failed order; doubled at each failure.
pub const FIRST_RETRY: Duration = Duration::from_secs(10);
/// The longest wait between two attempts.
pub const LAST_RETRY: Duration = Duration::from_secs(3600);
/// How long one attempt may take in all (the CA's validation included).
const ATTEMPT_LIMIT: Duration = Duration::from_secs(300);

/// The renewal task's state.
pub struct Acme {
    options: AcmeOptions,
    resolver: Arc<CertResolver>,
    challenges: Challenges,
}

/// Why an attempt failed (logged, then retried).
type AttemptError = String;

impl Acme {
    pub fn new(options: AcmeOptions, resolver: Arc<CertResolver>, challenges: Challenges) -> Self {
        Acme {
            options,
            resolver,
            challenges,
        }
    }

    /// Obtain and renew for as long as the process runs; `first` is sent
    /// once a certificate is served (at once if one was loaded at start).
    pub async fn run(self, first: tokio::sync::oneshot::Sender<()>) {
        let mut first = Some(first);
        let mut retry = FIRST_RETRY;
        loop {
            if let Some(ck) = self.resolver.current() {
                if let Some(f) = first.take() {
                    let _ = f.send(());
                }
                // One of an earlier run for other names is replaced at once.
                if covers(&ck, &self.options.domains) {
                    self.wait_for_renewal(&ck).await;
                } else {
                    info!(
                        domains = %self.options.domains.join(","),
                        "the certificate in tls.acme.state_dir is not for every name of tls.acme.domains: ordering one"
                    );
                }
            }
            let attempt = tokio::time::timeout(ATTEMPT_LIMIT, self.issue()).await;
            let result = attempt.unwrap_or_else(|_| {
                Err(format!(
                    "no certificate within {}s",
                    ATTEMPT_LIMIT.as_secs()
                ))
            });
            self.challenges.clear();
            self.resolver.clear_alpn_challenges();
            match result {
                Ok(ck) => {
                    let days = expiry_seconds(&ck).map(|s| s / 86400.0);
                    info!(
                        domains = %self.options.domains.join(","),
                        expires_in_days = days.map(|d| format!("{d:.2}")).unwrap_or_default(),
                        "ACME certificate installed"
                    );
                    self.resolver.install(ck);
                    self.resolver.acme_outcome(Ok(()));
                    retry = FIRST_RETRY;
                }
                Err(e) => {
                    let wait = retry + jitter(retry / 10);
                    warn!(
                        error = %e,
                        directory = %self.options.directory,
                        retry_in_s = wait.as_secs(),
                        "ACME certificate order failed; the current certificate (if any) keeps serving"
                    );
                    self.resolver
                        .acme_outcome(Err((e.clone(), SystemTime::now() + wait)));
                    tokio::time::sleep(wait).await;
                    retry = (retry * 2).min(LAST_RETRY);
                }
            }
        }
    }

    /// Sleep until `ck` is due for renewal. In steps of at most an hour
    /// against the wall clock, which a suspended machine's timers miss.
    async fn wait_for_renewal(&self, ck: &CertifiedKey) {
        let Some(end) = not_after(ck) else {
            // Cannot happen with a certificate rustls accepted; never spin.
            tokio::time::sleep(LAST_RETRY).await;
            return;
        };
        let early = self.options.renew_before + jitter(self.options.renew_before / 10);
        let due = end.checked_sub(early).unwrap_or(SystemTime::UNIX_EPOCH);
        while let Ok(left) = due.duration_since(SystemTime::now()) {
            tokio::time::sleep(left.min(Duration::from_secs(3600))).await;
        }
    }

    /// One order: account, HTTP-01 for every name, finalize, download,
    /// store.
    async fn issue(&self) -> Result<CertifiedKey, AttemptError> {
        let o = &self.options;
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(&o.state_dir)
                .map_err(|e| format!("tls.acme.state_dir: {}: {e}", o.state_dir.display()))?;
        }
        let account = self.account().await?;
        let ids: Vec<Identifier> = o.domains.iter().cloned().map(Identifier::Dns).collect();
        let mut order = account
            .new_order(&NewOrder::new(&ids))
            .await
            .map_err(|e| format!("new order: {e}"))?;
        let mut authorizations = order.authorizations();
        while let Some(a) = authorizations.next().await {
            let mut a = a.map_err(|e| format!("authorization: {e}"))?;
            match a.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                s => return Err(format!("authorization is {s:?}")),
            }
            let kind = match o.challenge {
                AcmeChallenge::Http01 => ChallengeType::Http01,
                AcmeChallenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
            };
            let mut ch = a
                .challenge(kind.clone())
                .ok_or_else(|| format!("the CA offers no {kind:?} challenge"))?;
            match o.challenge {
                AcmeChallenge::Http01 => self
                    .challenges
                    .insert(ch.token.clone(), ch.key_authorization().as_str().to_owned()),
                AcmeChallenge::TlsAlpn01 => {
                    let Identifier::Dns(domain) = ch.identifier().identifier.clone() else {
                        return Err("TLS-ALPN-01 for a name that is not DNS".into());
                    };
                    let ck = alpn_certificate(&domain, ch.key_authorization().digest().as_ref())?;
                    self.resolver.set_alpn_challenge(&domain, ck);
                }
            }
            ch.set_ready()
                .await
                .map_err(|e| format!("challenge: {e}"))?;
        }
        let retries = RetryPolicy::new().timeout(Duration::from_secs(120));
        let status = order
            .poll_ready(&retries)
            .await
            .map_err(|e| format!("validation: {e}"))?;
        if status != OrderStatus::Ready {
            let why = order
                .state()
                .error
                .as_ref()
                .map(|p| p.to_string())
                .unwrap_or_default();
            return Err(format!(
                "order is {status:?} after validation (is {} reachable from the CA on {}?) {why}",
                o.domains.join(", "),
                match o.challenge {
                    AcmeChallenge::Http01 => "tls.acme.http_listen",
                    AcmeChallenge::TlsAlpn01 => "port 443 (tls.implicit_listen)",
                }
            ));
        }
        let key_pem = order
            .finalize()
            .await
            .map_err(|e| format!("finalize: {e}"))?;
        let chain_pem = order
            .poll_certificate(&retries)
            .await
            .map_err(|e| format!("certificate: {e}"))?;
        let ck = super::certified_key(
            chain_pem.as_bytes(),
            key_pem.as_bytes(),
            &o.cert_path(),
            &o.key_path(),
        )
        .map_err(|e| e.to_string())?;
        // The key first: a cert.pem found without its key.pem is refused at
        // start, the pair the other way round is replaced.
        write_private(&o.key_path(), key_pem.as_bytes())?;
        write_private(&o.cert_path(), chain_pem.as_bytes())?;
        Ok(ck)
    }

    /// The account of `state_dir`, or a new one saved there.
    async fn account(&self) -> Result<Account, AttemptError> {
        let o = &self.options;
        let builder = match &o.ca_file {
            Some(f) => Account::builder_with_root(f),
            None => Account::builder(),
        }
        .map_err(|e| format!("HTTP client: {e}"))?;
        let path = o.account_path();
        if let Ok(json) = std::fs::read(&path) {
            let creds: AccountCredentials =
                serde_json::from_slice(&json).map_err(|e| format!("{}: {e}", path.display()))?;
            return builder
                .from_credentials(creds)
                .await
                .map_err(|e| format!("account: {e}"));
        }
        let contact: Vec<&str> = o.contact.iter().map(String::as_str).collect();
        let (account, creds) = builder
            .create(
                &NewAccount {
                    contact: &contact,
                    terms_of_service_agreed: true,
                    only_return_existing: false,
                },
                o.directory.clone(),
                None,
            )
            .await
            .map_err(|e| format!("new account at {}: {e}", o.directory))?;
        let json = serde_json::to_vec(&creds).map_err(|e| e.to_string())?;
        write_private(&path, &json)?;
        info!(account = account.id(), "ACME account created");
        Ok(account)
    }
}

/// The TLS-ALPN-01 challenge certificate of RFC 8737 section 3: self-signed
/// for `domain` alone, with the critical acmeIdentifier extension holding
/// `digest`, the SHA-256 of the key authorization; a new key each time.
pub fn alpn_certificate(domain: &str, digest: &[u8]) -> Result<CertifiedKey, AttemptError> {
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    let fail = |e: rcgen::Error| format!("TLS-ALPN-01 certificate for {domain}: {e}");
    if digest.len() != 32 {
        return Err(format!(
            "TLS-ALPN-01 certificate for {domain}: a digest of {} bytes",
            digest.len()
        ));
    }
    let key = rcgen::KeyPair::generate().map_err(fail)?;
    let mut params = rcgen::CertificateParams::new(vec![domain.to_owned()]).map_err(fail)?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key).map_err(fail)?;
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing = rustls::crypto::ring::sign::any_supported_type(&der)
        .map_err(|e| format!("TLS-ALPN-01 certificate for {domain}: {e}"))?;
    Ok(CertifiedKey::new(vec![cert.der().clone()], signing))
}

/// Whether the leaf of `ck` names every one of `domains` (DNS SANs, ASCII
/// case-insensitive).
fn covers(ck: &CertifiedKey, domains: &[String]) -> bool {
    let Some((_, cert)) = ck
        .cert
        .first()
        .and_then(|der| x509_parser::parse_x509_certificate(der).ok())
    else {
        return false;
    };
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return false;
    };
    let names: Vec<&str> = san
        .value
        .general_names
        .iter()
        .filter_map(|n| match n {
            x509_parser::extensions::GeneralName::DNSName(d) => Some(*d),
            _ => None,
        })
        .collect();
    domains
        .iter()
        .all(|d| names.iter().any(|n| n.eq_ignore_ascii_case(d)))
}

/// Write `bytes` to `path` with mode 0600, through a temporary file renamed
/// over it, so that a reader never sees half a file.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AttemptError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let fail = |e: std::io::Error| format!("{}: {e}", path.display());
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(fail)?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(fail)
}

/// Make `state_dir` (mode 0700) and give it to the server's user; before the
/// privilege drop. Directories above it that are missing are made 0755
/// (root's): made 0700 they would keep that user out of its own state.
///
/// Everything is changed through a descriptor opened without following a
/// symbolic link, never by name after a look: the server's user may own
/// the directory (and a parent), and could otherwise swap a name for a
/// link between the look and the change, to have root give it (or open
/// to all) a file of root's. Of the directory's files only those with a
/// single name are given: a hard link to a file elsewhere (possible
/// without `fs.protected_hardlinks`) stays as it is.
pub fn prepare_state_dir(dir: &Path, uid: u32, gid: u32) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let fail = |e: std::io::Error| format!("tls.acme.state_dir: {}: {e}", dir.display());
    let open_dir = |p: &Path| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_DIRECTORY)
            .open(p)
    };
    // The missing ones, outermost first, each set 0755 whatever the umask.
    let missing: Vec<&Path> = dir
        .ancestors()
        .skip(1)
        .take_while(|p| !p.as_os_str().is_empty() && std::fs::symlink_metadata(p).is_err())
        .collect();
    // Not "x/.." (no name of its own: it is made by making x).
    for p in missing
        .into_iter()
        .rev()
        .filter(|p| p.file_name().is_some())
    {
        std::fs::DirBuilder::new()
            .mode(0o755)
            .create(p)
            .and_then(|()| open_dir(p))
            .and_then(|h| h.set_permissions(std::fs::Permissions::from_mode(0o755)))
            .map_err(fail)?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(fail(e)),
        _ => {}
    }
    let handle = open_dir(dir).map_err(|e| match e.raw_os_error() {
        Some(nix::libc::ELOOP) | Some(nix::libc::ENOTDIR) => format!(
            "tls.acme.state_dir: {}: not a directory (a symbolic link is not followed)",
            dir.display()
        ),
        _ => fail(e),
    })?;
    std::os::unix::fs::fchown(&handle, Some(uid), Some(gid)).map_err(fail)?;
    handle
        .set_permissions(std::fs::Permissions::from_mode(0o700))
        .map_err(fail)?;
    // Files of a run as another user (root) become the server's.
    let io = |e: rustix::io::Errno| fail(e.into());
    for entry in rustix::fs::Dir::read_from(&handle).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let regular = |mode| rustix::fs::FileType::from_raw_mode(mode).is_file();
        // Only a regular file is opened (not a device, whose opening may
        // do something), looked at without following a link.
        let looked = rustix::fs::statat(&handle, name, rustix::fs::AtFlags::SYMLINK_NOFOLLOW);
        if !looked.is_ok_and(|st| regular(st.st_mode)) {
            continue;
        }
        // Opened without following a link nor blocking (a FIFO put in its
        // place); then what was opened is checked, and changed.
        let flags = rustix::fs::OFlags::RDONLY
            | rustix::fs::OFlags::NOFOLLOW
            | rustix::fs::OFlags::NONBLOCK
            | rustix::fs::OFlags::NOCTTY
            | rustix::fs::OFlags::CLOEXEC;
        let Ok(file) = rustix::fs::openat(&handle, name, flags, rustix::fs::Mode::empty()) else {
            continue;
        };
        let st = rustix::fs::fstat(&file).map_err(io)?;
        if regular(st.st_mode) && st.st_nlink == 1 {
            std::os::unix::fs::fchown(&file, Some(uid), Some(gid)).map_err(fail)?;
        }
    }
    Ok(())
}

/// A random duration up to `max`.
fn jitter(max: Duration) -> Duration {
    let ms = u64::try_from(max.as_millis()).unwrap_or(u64::MAX);
    Duration::from_millis(rand::thread_rng().gen_range(0..=ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_files_are_private_and_whole() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key.pem");
        write_private(&p, b"one").unwrap();
        write_private(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let mode = std::fs::metadata(&p).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(!p.with_extension("tmp").exists());
    }

    /// Directories above a missing `state_dir` are made 0755, so that the
    /// server's user can reach it; `state_dir` itself 0700.
    #[test]
    fn the_way_to_state_dir_stays_open() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let tmp = tempfile::tempdir().unwrap();
        let me = std::fs::metadata(tmp.path()).unwrap();
        let dir = tmp.path().join("var/lib/acme");
        prepare_state_dir(&dir, me.uid(), me.gid()).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&tmp.path().join("var")), 0o755);
        assert_eq!(mode(&tmp.path().join("var/lib")), 0o755);
        assert_eq!(mode(&dir), 0o700);
        // Again, with the directory there: nothing changes.
        prepare_state_dir(&dir, me.uid(), me.gid()).unwrap();
        assert_eq!(mode(&dir), 0o700);
        // A path through a directory that is not there yet, and back.
        let odd = tmp.path().join("new/../other/acme");
        prepare_state_dir(&odd, me.uid(), me.gid()).unwrap();
        assert_eq!(mode(&tmp.path().join("other/acme")), 0o700);
    }

    /// Run as root, the state directory's files are given to the server's
    /// user, and nothing else: not a file outside it that a name inside
    /// it is a hard link to (that user may have made it on a system
    /// without fs.protected_hardlinks, to be given /etc/shadow), nor what
    /// a symbolic link inside it points to; its own files still are.
    #[test]
    fn state_dir_gives_away_only_its_own_files() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: needs root (files given to another user)");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let secret = tmp.path().join("shadow");
        std::fs::write(&secret, b"root's").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
        let dir = tmp.path().join("acme");
        std::fs::create_dir(&dir).unwrap();
        std::fs::hard_link(&secret, dir.join("key.pem")).unwrap();
        std::os::unix::fs::symlink(&secret, dir.join("cert.pem")).unwrap();
        std::fs::write(dir.join("account.json"), b"{}").unwrap();
        // Neither opened (it would wait for a writer) nor given away.
        let fifo = dir.join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let (uid, gid) = (65534, 65534);
        prepare_state_dir(&dir, uid, gid).unwrap();
        let owner = |p: &Path| {
            let m = std::fs::symlink_metadata(p).unwrap();
            (m.uid(), m.gid())
        };
        assert_eq!(
            owner(&secret),
            (0, 0),
            "a hard link's target was given away"
        );
        assert_eq!(owner(&dir.join("account.json")), (uid, gid));
        assert_eq!(owner(&dir), (uid, gid));
        assert_eq!(owner(&fifo), (0, 0));
        // A state_dir that is a symbolic link is refused, its target untouched.
        let link = tmp.path().join("link");
        let target = tmp.path().join("target");
        std::fs::create_dir(&target).unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = prepare_state_dir(&link, uid, gid).unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(owner(&target), (0, 0));
    }

    #[test]
    fn expiry_of_a_self_signed_certificate() {
        let (cert, key) = super::super::self_signed(&["localhost".into()]).unwrap();
        let ck = super::super::certified_key(
            cert.as_bytes(),
            key.as_bytes(),
            Path::new("c"),
            Path::new("k"),
        )
        .unwrap();
        // rcgen's default validity ends in 4096.
        assert!(expiry_seconds(&ck).unwrap() > 365.0 * 86400.0);
        assert!(covers(&ck, &["localhost".into()]));
        assert!(covers(&ck, &["LocalHost".into()]));
        assert!(!covers(
            &ck,
            &["localhost".into(), "ftp.example.com".into()]
        ));
        assert!(jitter(Duration::from_secs(1)) <= Duration::from_secs(1));
    }

    #[test]
    fn alpn_challenge_certificate_carries_the_digest() {
        let digest = [7u8; 32];
        let ck = alpn_certificate("ftp.example.com", &digest).unwrap();
        assert!(covers(&ck, &["ftp.example.com".into()]));
        let (_, cert) = x509_parser::parse_x509_certificate(&ck.cert[0]).unwrap();
        // id-pe-acmeIdentifier, critical, an OCTET STRING of the digest.
        let ext = cert
            .extensions()
            .iter()
            .find(|e| e.oid.to_id_string() == "1.3.6.1.5.5.7.1.31")
            .expect("acmeIdentifier");
        assert!(ext.critical);
        assert_eq!(ext.value[..2], [0x04, 32]);
        assert_eq!(ext.value[2..], digest);
        assert!(alpn_certificate("ftp.example.com", &[1, 2]).is_err());
    }
}
