//! Sections of the file kept out of `config.rs` for length: `[limits]` and
//! `[tls]` (and `[tls]`'s validation).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::values::{parse_data_protection, parse_tls_mode};
use super::Rate;
use crate::options::{AcmeChallenge, AcmeOptions, ClientAuthMode, ClientAuthOptions, TlsOptions};

/// `[limits]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Sessions at once in total.
    pub max_sessions: usize,
    /// Sessions at once from one client IP.
    pub max_sessions_per_ip: usize,
    /// Failed logins within the window that ban the IP; 0 = never.
    pub max_login_failures: u32,
    #[serde(with = "humantime_serde")]
    pub login_failure_window: Duration,
    /// First ban length; doubles on each repeat.
    #[serde(with = "humantime_serde")]
    pub ban_time: Duration,
    /// Abort a transfer that moves nothing for this long.
    #[serde(with = "humantime_serde")]
    pub data_timeout: Duration,
    pub download_rate: Rate,
    pub upload_rate: Rate,
    pub session_download_rate: Rate,
    pub session_upload_rate: Rate,
    /// Client networks allowed to connect (empty: all).
    pub allow: Vec<String>,
    /// Client networks refused (wins over allow).
    pub deny: Vec<String>,
    /// Offer HASH and the X-hash verbs.
    pub hash: bool,
    /// Files hashed at once, server-wide.
    pub hash_concurrency: usize,
    /// Most bytes one hash reads (0 = no cap).
    pub hash_max_size: Rate,
    /// "sha256": each upload's digest, computed as it arrives, kept with
    /// the file for HASH; absent: off.
    pub hash_on_upload: Option<String>,
    /// Count every quota account's root again this often (absent: never).
    #[serde(with = "humantime_serde")]
    pub quota_rescan: Option<Duration>,
    /// Client networks never banned for failed logins.
    pub ban_exempt: Vec<String>,
}

impl Default for LimitsSection {
    fn default() -> Self {
        let d = crate::options::LimitsOptions::default();
        LimitsSection {
            max_sessions: d.max_sessions,
            max_sessions_per_ip: d.max_sessions_per_ip,
            max_login_failures: d.max_login_failures,
            login_failure_window: d.login_failure_window,
            ban_time: d.ban_time,
            data_timeout: d.data_timeout,
            download_rate: Rate::default(),
            upload_rate: Rate::default(),
            session_download_rate: Rate::default(),
            session_upload_rate: Rate::default(),
            allow: Vec::new(),
            deny: Vec::new(),
            hash: d.hash,
            hash_concurrency: d.hash_concurrency,
            hash_max_size: Rate::default(),
            hash_on_upload: None,
            quota_rescan: d.quota_rescan,
            ban_exempt: Vec::new(),
        }
    }
}

/// `[tls]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM certificate chain.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
    /// off | optional | required (control connection).
    #[serde(default = "default_tls_mode")]
    pub mode: String,
    /// optional | required (PROT P for data connections).
    #[serde(default = "default_optional")]
    pub data_protection: String,
    /// Data connections must resume a TLS session of their control connection
    /// or of a sibling logged in as the same user from the same IP.
    #[serde(default = "default_true")]
    pub require_session_reuse: bool,
    /// Implicit-TLS listeners, "ADDR:PORT".
    #[serde(default)]
    pub implicit_listen: Vec<String>,
    /// Anonymous logins are exempt from mode and data_protection.
    #[serde(default)]
    pub anonymous_exempt: bool,
    /// A TLS handshake must finish within this long.
    #[serde(default = "default_handshake_timeout", with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// Accept CCC (clear the control connection).
    #[serde(default)]
    pub allow_ccc: bool,
    /// `[tls.client_auth]`: ask clients for a certificate.
    pub client_auth: Option<ClientAuthSection>,
    /// `[tls.acme]`: obtain and renew the certificate over ACME (instead of
    /// cert and key).
    pub acme: Option<AcmeSection>,
}

/// `[tls.acme]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeSection {
    /// The DNS names the certificate is for.
    pub domains: Vec<String>,
    /// E-mail addresses the CA may write to (mailto: is added).
    #[serde(default)]
    pub contact: Vec<String>,
    /// The CA's ACME directory URL (Let's Encrypt production by default).
    #[serde(default = "default_directory")]
    pub directory: String,
    /// PEM CA certificate for the CA's own HTTPS (a private CA).
    pub ca_file: Option<PathBuf>,
    /// Account key and certificates.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// http-01 (default) | tls-alpn-01 (on an implicit-FTPS listener, port
    /// 443 for public CAs).
    #[serde(default = "default_challenge")]
    pub challenge: String,
    /// HTTP-01 challenge listener, "ADDR:PORT" (port 80 for public CAs).
    #[serde(default = "default_http_listen")]
    pub http_listen: String,
    /// Renew when the certificate expires within this long.
    #[serde(default = "default_renew_before", with = "humantime_serde")]
    pub renew_before: Duration,
}

fn default_directory() -> String {
    crate::options::LETS_ENCRYPT.into()
}
fn default_state_dir() -> PathBuf {
    "/var/lib/portcullis/acme".into()
}
fn default_challenge() -> String {
    "http-01".into()
}
fn default_http_listen() -> String {
    "[::]:80".into()
}
fn default_renew_before() -> Duration {
    Duration::from_secs(30 * 86400)
}

fn validate_acme(a: AcmeSection, errors: &mut Vec<String>) -> Option<AcmeOptions> {
    let before = errors.len();
    if a.domains.is_empty() {
        errors.push("tls.acme.domains: at least one name is needed".into());
    }
    for (i, d) in a.domains.iter().enumerate() {
        let ok = !d.is_empty()
            && d.len() <= 253
            && d.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !ok {
            errors.push(format!(
                "tls.acme.domains[{i}]: {d:?} is not a DNS name (wildcards need DNS-01, which is not supported)"
            ));
        }
    }
    let contact = a
        .contact
        .iter()
        .map(|c| {
            if c.starts_with("mailto:") {
                c.clone()
            } else {
                format!("mailto:{c}")
            }
        })
        .collect::<Vec<_>>();
    for (i, c) in contact.iter().enumerate() {
        if !c[7..].contains('@') {
            errors.push(format!(
                "tls.acme.contact[{i}]: {:?} is not an e-mail address",
                a.contact[i]
            ));
        }
    }
    if !(a.directory.starts_with("https://") || a.directory.starts_with("http://")) {
        errors.push(format!(
            "tls.acme.directory: {:?} is not an http(s) URL",
            a.directory
        ));
    }
    if !a.state_dir.is_absolute() {
        errors.push(format!(
            "tls.acme.state_dir: {} must be an absolute path",
            a.state_dir.display()
        ));
    }
    let http_listen = a.http_listen.parse::<SocketAddr>();
    if http_listen.is_err() {
        errors.push(format!(
            "tls.acme.http_listen: {:?} is not ADDR:PORT (IPv6 as \"[::]:80\")",
            a.http_listen
        ));
    }
    if a.renew_before.is_zero() {
        errors.push("tls.acme.renew_before: must be more than 0s".into());
    }
    let challenge = match a.challenge.as_str() {
        "http-01" => Some(AcmeChallenge::Http01),
        "tls-alpn-01" => Some(AcmeChallenge::TlsAlpn01),
        other => {
            errors.push(format!(
                "tls.acme.challenge: {other:?} is not one of http-01, tls-alpn-01 (dns-01 is not supported)"
            ));
            None
        }
    };
    if errors.len() != before {
        return None;
    }
    Some(AcmeOptions {
        domains: a.domains,
        contact,
        directory: a.directory,
        ca_file: a.ca_file,
        state_dir: a.state_dir,
        challenge: challenge?,
        http_listen: http_listen.ok()?,
        renew_before: a.renew_before,
    })
}

/// `[tls.client_auth]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientAuthSection {
    /// PEM certificates of the CAs whose client certificates are accepted.
    pub ca_file: PathBuf,
    /// optional (the login decides) | required (no handshake without one).
    #[serde(default = "default_optional")]
    pub mode: String,
    /// Certificate revocation lists (PEM or DER) of those CAs.
    #[serde(default)]
    pub crl_files: Vec<PathBuf>,
}

fn default_tls_mode() -> String {
    "optional".into()
}
fn default_optional() -> String {
    "optional".into()
}
fn default_true() -> bool {
    true
}
fn default_handshake_timeout() -> Duration {
    TlsOptions::optional(PathBuf::new(), PathBuf::new()).handshake_timeout
}

pub(in crate::config) fn validate_tls(
    t: Option<TlsSection>,
    checks: &dyn super::Checks,
    errors: &mut Vec<String>,
) -> Option<TlsOptions> {
    let t = t?;
    let mut implicit_listen = Vec::new();
    for (i, l) in t.implicit_listen.iter().enumerate() {
        match l.parse::<SocketAddr>() {
            Ok(a) => implicit_listen.push(a),
            Err(_) => errors.push(format!(
                "tls.implicit_listen[{i}]: {l:?} is not ADDR:PORT (IPv6 as \"[::]:990\")"
            )),
        }
    }
    if t.mode == "off" {
        if !implicit_listen.is_empty() {
            errors.push("tls.implicit_listen: needs tls.mode optional or required, not off".into());
        }
        return None;
    }
    let mode = parse_tls_mode("tls.mode", &t.mode, errors);
    let data = parse_data_protection("tls.data_protection", &t.data_protection, errors);
    let acme = match (t.acme, &t.cert, &t.key) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            errors.push("tls.acme: set either [tls.acme] or tls.cert and tls.key, not both".into());
            None
        }
        (Some(a), None, None) => validate_acme(a, errors),
        (None, cert, key) => {
            if cert.is_none() {
                errors.push(
                    "tls.cert: required unless tls.mode = \"off\" or [tls.acme] is set \
                     (`portcullis gen-cert` makes one)"
                        .into(),
                );
            }
            if key.is_none() {
                errors.push(
                    "tls.key: required unless tls.mode = \"off\" or [tls.acme] is set".into(),
                );
            }
            None
        }
    };
    let (cert, key) = match &acme {
        Some(a) => (Some(a.cert_path()), Some(a.key_path())),
        None => (t.cert, t.key),
    };
    let client_auth = t.client_auth.and_then(|c| {
        let mode = match c.mode.as_str() {
            "optional" => ClientAuthMode::Optional,
            "required" => ClientAuthMode::Required,
            other => {
                errors.push(format!(
                    "tls.client_auth.mode: {other:?} is not one of optional, required"
                ));
                return None;
            }
        };
        let o = ClientAuthOptions {
            ca_file: c.ca_file,
            mode,
            crl_files: c.crl_files,
        };
        if let Err(e) = checks.client_auth(&o) {
            errors.push(format!("tls.client_auth.{e}"));
        }
        Some(o)
    });
    let opts = TlsOptions {
        cert: cert?,
        key: key?,
        mode: mode?,
        data_protection: data?,
        require_session_reuse: t.require_session_reuse,
        implicit_listen,
        anonymous_exempt: t.anonymous_exempt,
        handshake_timeout: t.handshake_timeout,
        allow_ccc: t.allow_ccc,
        client_auth,
        acme,
    };
    if let Some(f) = opts.acme.as_ref().and_then(|a| a.ca_file.as_deref()) {
        if let Err(e) = checks.ca_roots(Some(f)) {
            errors.push(format!("tls.acme.ca_file: {e}"));
        }
    }
    // TLS-ALPN-01 is answered by the implicit-FTPS listeners only (the CA
    // connects to port 443 and speaks TLS at once), and the CA's validator
    // presents no client certificate.
    if opts
        .acme
        .as_ref()
        .is_some_and(|a| a.challenge == AcmeChallenge::TlsAlpn01)
    {
        if opts.implicit_listen.is_empty() {
            errors.push(
                "tls.acme.challenge: \"tls-alpn-01\" needs an implicit-FTPS listener \
                 (tls.implicit_listen, on port 443 for a public CA)"
                    .into(),
            );
        }
        if opts
            .client_auth
            .as_ref()
            .is_some_and(|c| c.mode == ClientAuthMode::Required)
        {
            errors.push(
                "tls.acme.challenge: \"tls-alpn-01\" cannot be answered with \
                 tls.client_auth.mode = \"required\" (the CA presents no certificate)"
                    .into(),
            );
        }
    }
    // An ACME certificate may not exist yet: it is obtained at start.
    if opts.acme.is_none() {
        if let Err(e) = checks.certificate(&opts.cert, &opts.key) {
            errors.push(e);
        }
    }
    Some(opts)
}
