//! `[auth]`: the order of the account back ends and their sections, and the
//! per-account policy keys that `[[users]]` and the back ends' answers
//! share ([`AccountSection`]).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use super::ldap::LdapSection;
use super::values::{parse_data_protection, parse_nets, parse_rate, parse_size, parse_tls_mode};
use super::Rate;
use crate::access::Permissions;
use crate::options::{
    AccountPolicy, AuthOptions, BackendKind, CertMatch, CertUse, ClientCertRule, HookAccount,
    HookUrl, HttpOptions, LdapLookup, UserTls,
};

/// `[auth]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// The back ends asked in turn: "config", "http", "ldap".
    pub order: Vec<String>,
    /// `[auth.http]`
    pub http: Option<HttpSection>,
    /// `[auth.ldap]`
    pub ldap: Option<LdapSection>,
    /// `[auth.pam]`
    pub pam: Option<super::pam::PamSection>,
    /// How long an account a back end other than config accepted is
    /// answered from the cache (0: no cache).
    #[serde(with = "humantime_serde")]
    pub cache_ttl: Duration,
    /// Directories and `s3://` prefixes under which the roots that http,
    /// ldap and pam answer must lie (absent: anywhere but `/` and `..`).
    pub allowed_roots: Option<Vec<String>>,
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            order: vec!["config".into()],
            http: None,
            ldap: None,
            pam: None,
            cache_ttl: Duration::ZERO,
            allowed_roots: None,
        }
    }
}

/// `[auth.http]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSection {
    /// `http://` or `https://` URL each login is POSTed to.
    pub url: String,
    /// The whole exchange must finish within this long.
    #[serde(default = "default_http_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Sent as `Authorization: Bearer <token>`.
    pub bearer_token: Option<String>,
    /// PEM certificates to trust for an `https://` URL (default: the
    /// system's bundle).
    pub ca_file: Option<PathBuf>,
}

fn default_http_timeout() -> Duration {
    Duration::from_secs(5)
}

/// The policy keys of one account: a `[[users]]` entry's keys besides
/// `name` and `password_hash`, and the JSON object an `[auth.http]` hook
/// answers with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSection {
    /// The account's root directory.
    pub root: PathBuf,
    /// Any of read, write, overwrite, delete, rename, mkdir.
    #[serde(default = "default_permissions")]
    pub permissions: Vec<String>,
    /// optional | required: overrides tls.mode.
    pub tls_mode: Option<String>,
    /// optional | required: overrides tls.data_protection.
    pub data_protection: Option<String>,
    /// Bytes per second for all of the account's sessions together.
    #[serde(default)]
    pub download_rate: Rate,
    #[serde(default)]
    pub upload_rate: Rate,
    /// Networks the account may log in from (empty: any).
    #[serde(default)]
    pub allow_from: Vec<String>,
    /// Networks the account may not log in from.
    #[serde(default)]
    pub deny_from: Vec<String>,
    /// Sessions of the account at once on this node (0: unlimited).
    #[serde(default)]
    pub max_sessions: usize,
    /// Bytes the account's root may hold, e.g. "10G" (absent: unlimited).
    pub quota_bytes: Option<Rate>,
    /// Files the account's root may hold (absent: unlimited).
    pub quota_files: Option<u64>,
    /// off | allowed | required: login with a client certificate.
    pub tls_client_cert: Option<String>,
    /// cn | san_email: the certificate's name that is the login name.
    pub tls_client_cert_match: Option<String>,
    /// SHA-256 fingerprints (hex, colons allowed) of certificates that
    /// belong to the account whatever their names.
    #[serde(default)]
    pub tls_client_cert_fingerprints: Vec<String>,
}

/// An account's client-certificate keys, each problem with its key.
fn parse_client_cert(a: &AccountSection, key: &str, errors: &mut Vec<String>) -> ClientCertRule {
    let use_cert = match a.tls_client_cert.as_deref() {
        None | Some("off") => CertUse::Off,
        Some("allowed") => CertUse::Allowed,
        Some("required") => CertUse::Required,
        Some(other) => {
            errors.push(format!(
                "{key}.tls_client_cert: {other:?} is not one of off, allowed, required"
            ));
            CertUse::Off
        }
    };
    let matching = match a.tls_client_cert_match.as_deref() {
        None | Some("cn") => CertMatch::Cn,
        Some("san_email") => CertMatch::SanEmail,
        Some(other) => {
            errors.push(format!(
                "{key}.tls_client_cert_match: {other:?} is not one of cn, san_email"
            ));
            CertMatch::Cn
        }
    };
    let mut fingerprints = Vec::new();
    for (i, f) in a.tls_client_cert_fingerprints.iter().enumerate() {
        match parse_fingerprint(f) {
            Some(fp) => fingerprints.push(fp),
            None => errors.push(format!(
                "{key}.tls_client_cert_fingerprints[{i}]: {f:?} is not a SHA-256 fingerprint (64 hex digits, colons allowed)"
            )),
        }
    }
    if use_cert == CertUse::Off && !fingerprints.is_empty() {
        errors.push(format!(
            "{key}.tls_client_cert_fingerprints: need tls_client_cert = \"allowed\" or \"required\""
        ));
    }
    ClientCertRule {
        use_cert,
        matching,
        fingerprints,
    }
}

/// A SHA-256 fingerprint written as 64 hex digits, in pairs separated by
/// colons or not (as `openssl x509 -fingerprint -sha256` prints it, with
/// or without a `sha256:` prefix).
pub fn parse_fingerprint(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    let s = s
        .strip_prefix("sha256:")
        .or_else(|| s.strip_prefix("SHA256:"))
        .or_else(|| s.strip_prefix("sha256 Fingerprint="))
        .unwrap_or(s);
    let hex: Vec<u8> = s.bytes().filter(|b| *b != b':').collect();
    if hex.len() != 64 || !hex.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks(2).enumerate() {
        let pair = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(out)
}

pub(super) fn default_permissions() -> Vec<String> {
    vec!["read".into()]
}

impl AccountSection {
    /// Check the keys (`key` names the entry in every problem); `tls_on`:
    /// whether FTPS is on, without which the TLS overrides mean nothing.
    pub fn validate(&self, key: &str, tls_on: bool, errors: &mut Vec<String>) -> AccountPolicy {
        let mut permissions = Permissions::default();
        for p in &self.permissions {
            if let Err(e) = permissions.grant(p) {
                errors.push(format!("{key}.permissions: {e}"));
            }
        }
        let tls = UserTls {
            mode: self
                .tls_mode
                .as_deref()
                .and_then(|m| parse_tls_mode(&format!("{key}.tls_mode"), m, errors)),
            data_protection: self
                .data_protection
                .as_deref()
                .and_then(|m| parse_data_protection(&format!("{key}.data_protection"), m, errors)),
        };
        if (self.tls_mode.is_some() || self.data_protection.is_some()) && !tls_on {
            errors.push(format!(
                "{key}: tls_mode/data_protection need a [tls] section with mode optional or required"
            ));
        }
        AccountPolicy {
            permissions,
            tls,
            download_rate: parse_rate(&format!("{key}.download_rate"), &self.download_rate, errors),
            upload_rate: parse_rate(&format!("{key}.upload_rate"), &self.upload_rate, errors),
            networks: crate::access::NetList {
                allow: parse_nets(&format!("{key}.allow_from"), &self.allow_from, errors),
                deny: parse_nets(&format!("{key}.deny_from"), &self.deny_from, errors),
            },
            max_sessions: self.max_sessions,
            client_cert: parse_client_cert(self, key, errors),
            quota: crate::options::QuotaLimits {
                bytes: self
                    .quota_bytes
                    .as_ref()
                    .map(|q| parse_size(&format!("{key}.quota_bytes"), q, errors)),
                files: self.quota_files,
            },
        }
    }
}

/// Parse the account object a hook answered with: the `[[users]]` keys
/// besides `name` and `password_hash`; every problem in one message.
pub fn parse_account(json: &[u8], tls_on: bool) -> Result<HookAccount, String> {
    let mut object: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(json).map_err(|e| e.to_string())?;
    let mut profile = |key: &str| match object.remove(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(p)) => Ok(Some(p)),
        Some(other) => Err(format!("account.{key}: not a string: {other}")),
    };
    // `s3_profile` is the older name of `storage_profile`.
    let s3_profile = match (profile("storage_profile")?, profile("s3_profile")?) {
        (Some(_), Some(_)) => {
            return Err(
                "account.storage_profile: and s3_profile (its older name) too: give one".into(),
            )
        }
        (a, b) => a.or(b),
    };
    let a: AccountSection =
        serde_json::from_value(serde_json::Value::Object(object)).map_err(|e| e.to_string())?;
    let mut errors = Vec::new();
    let policy = a.validate("account", tls_on, &mut errors);
    if errors.is_empty() {
        Ok(HookAccount {
            root: a.root,
            profile: s3_profile,
            policy,
        })
    } else {
        Err(errors.join("; "))
    }
}

pub(super) fn validate_auth(
    a: AuthSection,
    tls_on: bool,
    checks: &dyn super::Checks,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> AuthOptions {
    let mut order = Vec::new();
    for (i, name) in a.order.iter().enumerate() {
        let kind = match name.as_str() {
            "config" => BackendKind::Config,
            "http" => BackendKind::Http,
            "ldap" => BackendKind::Ldap,
            "pam" if !cfg!(feature = "pam") => {
                errors.push(format!(
                    "auth.order[{i}]: \"pam\": this portcullis was built without PAM support (build it with `--features portcullis/pam`, which needs libpam0g-dev)"
                ));
                continue;
            }
            "pam" => BackendKind::Pam,
            other => {
                errors.push(format!(
                    "auth.order[{i}]: {other:?} is not a back end (\"config\", \"http\", \"ldap\" or \"pam\")"
                ));
                continue;
            }
        };
        if order.contains(&kind) {
            errors.push(format!("auth.order[{i}]: {name:?} is listed twice"));
        }
        order.push(kind);
    }
    if a.order.is_empty() {
        errors.push("auth.order: at least one back end is needed (e.g. [\"config\"])".into());
    }
    let http = a.http.and_then(|h| validate_http(h, checks, errors));
    if order.contains(&BackendKind::Http)
        && http.is_none()
        && !errors.iter().any(|e| e.starts_with("auth.http"))
    {
        errors.push("auth.order: \"http\" needs an [auth.http] section".into());
    }
    if !order.contains(&BackendKind::Http) && http.is_some() {
        warnings.push("auth.http: not used, as auth.order does not name \"http\"".into());
    }
    let ldap = a
        .ldap
        .and_then(|l| super::ldap::validate_ldap(l, tls_on, checks, errors));
    if order.contains(&BackendKind::Ldap)
        && ldap.is_none()
        && !errors.iter().any(|e| e.starts_with("auth.ldap"))
    {
        errors.push("auth.order: \"ldap\" needs an [auth.ldap] section".into());
    }
    if !order.contains(&BackendKind::Ldap) && ldap.is_some() {
        warnings.push("auth.ldap: not used, as auth.order does not name \"ldap\"".into());
    }
    if let (Some(l), Some(pos)) = (&ldap, order.iter().position(|k| *k == BackendKind::Ldap)) {
        if matches!(l.lookup, LdapLookup::Direct { .. }) && pos + 1 < order.len() {
            warnings.push(
                "auth.order: \"ldap\" with bind_dn decides for every name (a direct bind cannot tell an unknown user from a wrong password), so the back ends after it are never asked; put it last or use search_base".into(),
            );
        }
    }
    if a.cache_ttl > Duration::from_secs(3600) {
        errors.push("auth.cache_ttl: at most 1h (a changed password or a disabled account takes this long to count)".into());
    }
    let pam = super::pam::validate_in_order(a.pam, &order, tls_on, checks, errors, warnings);
    let allowed_roots = crate::storage::AllowedRoots::parse(
        "auth.allowed_roots",
        a.allowed_roots.as_deref(),
        errors,
    );
    if a.allowed_roots.is_some() && order.iter().all(|k| *k == BackendKind::Config) {
        warnings.push(
            "auth.allowed_roots: not used, as auth.order names only \"config\" (whose roots are not checked)".into(),
        );
    }
    AuthOptions {
        order,
        http,
        ldap,
        pam,
        cache_ttl: a.cache_ttl,
        allowed_roots,
    }
}

fn validate_http(
    h: HttpSection,
    checks: &dyn super::Checks,
    errors: &mut Vec<String>,
) -> Option<HttpOptions> {
    let url = match HookUrl::parse(&h.url) {
        Ok(u) => u,
        Err(e) => {
            errors.push(format!("auth.http.url: {e}"));
            return None;
        }
    };
    if url.basic().is_some() && h.bearer_token.is_some() {
        errors.push(
            "auth.http.bearer_token: the url has credentials (Basic authentication) already; use one of the two".into(),
        );
    }
    if h.timeout.is_zero() {
        errors.push("auth.http.timeout: must be above zero".into());
    }
    if let Some(ca) = &h.ca_file {
        if let Err(e) = checks.ca_roots(Some(ca)) {
            errors.push(format!("auth.http.ca_file: {e}"));
        }
    }
    if h.bearer_token
        .as_deref()
        .is_some_and(|t| t.is_empty() || t.bytes().any(|b| b.is_ascii_control() || b == b' '))
    {
        errors.push("auth.http.bearer_token: must be non-empty, without spaces".into());
    }
    Some(HttpOptions {
        url,
        timeout: h.timeout,
        bearer_token: h.bearer_token,
        ca_file: h.ca_file,
        parse_account,
    })
}
