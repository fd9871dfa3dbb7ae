//! An account's policy keys, validated: what `[[users]]`, a hook's answer,
//! `[auth.ldap]` and `[auth.pam]` share, and the parsed answer of a hook.

use std::path::PathBuf;

use super::UserTls;
use crate::access::{NetList, Permissions};

/// An account's policy keys, validated.
#[derive(Debug, Clone, Default)]
pub struct AccountPolicy {
    pub permissions: Permissions,
    pub tls: UserTls,
    pub download_rate: u64,
    pub upload_rate: u64,
    pub networks: NetList,
    /// Logged-in sessions at once (0: unlimited).
    pub max_sessions: usize,
    /// `quota_bytes`, `quota_files` (absent: unlimited).
    pub quota: QuotaLimits,
    /// Whether and how a client certificate identifies the account.
    pub client_cert: ClientCertRule,
}

/// An account's storage quota (`quota_bytes`, `quota_files`): what its
/// root may hold. `None` is unlimited; an account with neither is not
/// counted at all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaLimits {
    /// Bytes of all its files together.
    pub bytes: Option<u64>,
    /// Files (not directories nor directory markers).
    pub files: Option<u64>,
}

impl QuotaLimits {
    /// Neither limit set: the account is not counted.
    pub fn is_unlimited(&self) -> bool {
        self.bytes.is_none() && self.files.is_none()
    }
}

/// Whether the account logs in with a client certificate
/// (`tls_client_cert`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CertUse {
    /// Certificates are not looked at.
    #[default]
    Off,
    /// A certificate may be presented; one that belongs to another account
    /// is refused.
    Allowed,
    /// The login needs a certificate that belongs to the account.
    Required,
}

/// Which name of a certificate must be the login name
/// (`tls_client_cert_match`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CertMatch {
    /// The subject's common name.
    #[default]
    Cn,
    /// One of the subject alternative name's e-mail addresses.
    SanEmail,
}

/// An account's client-certificate keys, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCertRule {
    pub use_cert: CertUse,
    pub matching: CertMatch,
    /// SHA-256 fingerprints of certificates that belong to the account
    /// whatever their names (`tls_client_cert_fingerprints`).
    pub fingerprints: Vec<[u8; 32]>,
}

/// The account object a hook answered with, parsed.
#[derive(Debug)]
pub struct HookAccount {
    /// As given: a path, or an object-store URL.
    pub root: PathBuf,
    /// The profile an object-store root is reached with (the storage
    /// layer checks that it is configured).
    pub profile: Option<String>,
    pub policy: AccountPolicy,
}

/// The parser of a hook's answer (the JSON account object; whether FTPS is
/// on), every problem in one message. The config layer gives its own
/// (`config::auth::parse_account`, the `[[users]]` keys' parser), so that
/// the back end that asks the hook needs no config code.
pub type ParseAccount = fn(&[u8], bool) -> Result<HookAccount, String>;
