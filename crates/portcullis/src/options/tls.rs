//! The TLS options: `[tls]` and a user's own overrides.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// TLS on the control connection (`tls.mode`; `off` is `tls: None`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// AUTH TLS is offered; plain logins are allowed.
    Optional,
    /// USER is refused with 530 until AUTH TLS has been done.
    Required,
}

/// TLS on data connections (`tls.data_protection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataProtection {
    /// PROT C and PROT P are both allowed.
    Optional,
    /// Transfers need PROT P; PROT C is refused with 534, transfers with 521.
    Required,
}

/// `[tls]`
#[derive(Debug, Clone)]
pub struct TlsOptions {
    /// PEM certificate chain (`tls.cert`).
    pub cert: PathBuf,
    /// PEM private key (`tls.key`).
    pub key: PathBuf,
    pub mode: TlsMode,
    pub data_protection: DataProtection,
    /// Data connections must resume a TLS session of their control connection
    /// or of a sibling logged in as the same user from the same IP.
    pub require_session_reuse: bool,
    /// Implicit-TLS listeners (TLS from the first byte, port 990 by convention).
    pub implicit_listen: Vec<SocketAddr>,
    /// Anonymous logins are exempt from `mode` and `data_protection`.
    pub anonymous_exempt: bool,
    /// A TLS handshake must finish within this long.
    pub handshake_timeout: Duration,
    /// Accept CCC (clear the control connection after login) (`tls.allow_ccc`).
    pub allow_ccc: bool,
    /// `[tls.client_auth]`: ask clients for a certificate.
    pub client_auth: Option<ClientAuthOptions>,
    /// `[tls.acme]`: the certificate comes from an ACME CA; `cert` and
    /// `key` are then the files it keeps in its `state_dir`.
    pub acme: Option<AcmeOptions>,
}

/// Let's Encrypt's production directory, `tls.acme.directory`'s default.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// `[tls.acme]`: a certificate obtained and renewed over ACME (RFC 8555)
/// with HTTP-01 or TLS-ALPN-01 challenges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeOptions {
    /// The names the certificate is for (`tls.acme.domains`).
    pub domains: Vec<String>,
    /// `mailto:` URLs given to the CA (`tls.acme.contact`).
    pub contact: Vec<String>,
    /// The CA's directory URL (`tls.acme.directory`).
    pub directory: String,
    /// A PEM CA certificate that the CA's HTTPS server is checked against
    /// instead of the system's roots (`tls.acme.ca_file`).
    pub ca_file: Option<PathBuf>,
    /// The account key and the certificates (`tls.acme.state_dir`).
    pub state_dir: PathBuf,
    /// How the CA checks control of the names (`tls.acme.challenge`).
    pub challenge: AcmeChallenge,
    /// Where the HTTP-01 challenges are answered (`tls.acme.http_listen`;
    /// not bound with TLS-ALPN-01).
    pub http_listen: SocketAddr,
    /// Renew when the certificate expires within this long
    /// (`tls.acme.renew_before`).
    pub renew_before: Duration,
}

/// `tls.acme.challenge`: the ACME challenge type answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcmeChallenge {
    /// `http-01`: a plain HTTP responder on `tls.acme.http_listen`.
    Http01,
    /// `tls-alpn-01` (RFC 8737): the implicit-FTPS listeners answer a
    /// handshake that offers ALPN `acme-tls/1` with the challenge
    /// certificate (the CA connects to port 443).
    TlsAlpn01,
}

impl AcmeOptions {
    /// The certificate chain the server serves, in `state_dir`.
    pub fn cert_path(&self) -> PathBuf {
        self.state_dir.join("cert.pem")
    }
    /// Its private key, in `state_dir`.
    pub fn key_path(&self) -> PathBuf {
        self.state_dir.join("key.pem")
    }
    /// The ACME account's credentials, in `state_dir`.
    pub fn account_path(&self) -> PathBuf {
        self.state_dir.join("account.json")
    }
}

/// Whether the handshake insists on a client certificate
/// (`tls.client_auth.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthMode {
    /// A certificate is asked for; a client without one goes on, and the
    /// account's `tls_client_cert` decides at login.
    Optional,
    /// A handshake without a certificate fails, for every account.
    Required,
}

/// `[tls.client_auth]`: the CAs whose client certificates are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuthOptions {
    /// PEM certificates of the accepted CAs (`tls.client_auth.ca_file`).
    pub ca_file: PathBuf,
    pub mode: ClientAuthMode,
    /// PEM or DER certificate revocation lists (`tls.client_auth.crl_files`).
    pub crl_files: Vec<PathBuf>,
}

impl TlsMode {
    /// The value as the config file writes it (`tls.mode`).
    pub fn config_word(self) -> &'static str {
        match self {
            TlsMode::Optional => "optional",
            TlsMode::Required => "required",
        }
    }
}

impl DataProtection {
    /// The value as the config file writes it (`tls.data_protection`).
    pub fn config_word(self) -> &'static str {
        match self {
            DataProtection::Optional => "optional",
            DataProtection::Required => "required",
        }
    }
}

impl TlsOptions {
    /// FTPS offered but not required, with the defaults of a `[tls]` section
    /// that names only `cert` and `key`.
    pub fn optional(cert: PathBuf, key: PathBuf) -> Self {
        TlsOptions {
            cert,
            key,
            mode: TlsMode::Optional,
            data_protection: DataProtection::Optional,
            require_session_reuse: true,
            implicit_listen: Vec::new(),
            anonymous_exempt: false,
            handshake_timeout: Duration::from_secs(10),
            allow_ccc: false,
            client_auth: None,
            acme: None,
        }
    }
}

/// A user's own TLS policy (`users[].tls_mode`, `users[].data_protection`),
/// overriding the `[tls]` defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UserTls {
    pub mode: Option<TlsMode>,
    pub data_protection: Option<DataProtection>,
}
