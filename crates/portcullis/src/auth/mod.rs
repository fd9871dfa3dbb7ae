//! Authentication: the [`Authenticator`] trait that the login handlers call;
//! the config file's users and the anonymous account
//! ([`users::ConfigAuthenticator`]); the other back ends (`http`, `ldap`,
//! `pam`); and the
//! chain that asks them in `auth.order` ([`chain::Chain`], what [`build`]
//! makes for the server).

mod cache;
pub mod cert;
pub mod chain;
mod hasher;
pub mod http;
pub mod ldap;
pub mod pam;
pub mod users;

use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;

pub use crate::access::Permissions;
pub use hasher::Scheme;

/// What the server enforces for one account besides its permissions,
/// decided by the back end that authenticated it (with the server-wide
/// defaults already applied), so that no handler looks a user up by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// USER must follow AUTH TLS (`tls.mode`, `users[].tls_mode`).
    pub control_tls_required: bool,
    /// Transfers need PROT P (`tls.data_protection`, `users[].data_protection`).
    pub data_tls_required: bool,
    /// Bytes per second for all of this account's sessions together
    /// (`users[].download_rate`, `upload_rate`; 0 = unlimited).
    pub download_rate: u64,
    pub upload_rate: u64,
    /// Networks this account may log in from (`users[].allow_from`, `deny_from`).
    pub networks: crate::access::NetList,
    /// Sessions of this account at once on this node (`max_sessions`; 0 =
    /// unlimited); past it a login gets 421, not counted toward a ban.
    pub max_sessions: usize,
    /// Whether and how a client certificate identifies the account
    /// (`tls_client_cert`, decided at login by [`cert::verdict`]).
    pub client_cert: crate::options::ClientCertRule,
    /// What the account's root may hold (`quota_bytes`, `quota_files`).
    pub quota: crate::options::QuotaLimits,
}

impl Policy {
    /// The policy of a (non-anonymous) account with these keys, the
    /// server-wide TLS defaults applied.
    pub fn resolve(
        options: &crate::options::ServerOptions,
        keys: &crate::options::AccountPolicy,
    ) -> Policy {
        let (control_tls_required, data_tls_required) = options.tls_required_with(keys.tls, false);
        Policy {
            control_tls_required,
            data_tls_required,
            download_rate: keys.download_rate,
            upload_rate: keys.upload_rate,
            networks: keys.networks.clone(),
            max_sessions: keys.max_sessions,
            client_cert: keys.client_cert.clone(),
            quota: keys.quota,
        }
    }
}

/// One login attempt: the credentials and what the session knows of the
/// client (which a back end such as the HTTP hook passes on).
#[derive(Clone, Copy)]
pub struct Attempt<'a> {
    pub user: &'a str,
    pub password: &'a str,
    /// The client's address (from the PROXY header behind a balancer).
    pub client_ip: IpAddr,
    /// Whether the control connection is with TLS now.
    pub tls: bool,
    /// The client certificate of the control connection's TLS session,
    /// verified at the handshake (`[tls.client_auth]`).
    pub client_cert: Option<&'a crate::tls::ClientIdentity>,
}

impl std::fmt::Debug for Attempt<'_> {
    // Never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt")
            .field("user", &self.user)
            .field("client_ip", &self.client_ip)
            .field("tls", &self.tls)
            .field("client_cert", &self.client_cert)
            .finish_non_exhaustive()
    }
}

/// A successfully authenticated account: who it is, where its files are,
/// and the whole of its policy.
#[derive(Debug, Clone)]
pub struct Account {
    /// The user name as logged in ("anonymous" for anonymous logins).
    pub name: String,
    /// Where this user's `/` is.
    pub root: crate::storage::RootSpec,
    pub permissions: Permissions,
    pub anonymous: bool,
    pub policy: Policy,
}

/// An attempt from a plain connection on loopback, for unit tests.
#[cfg(test)]
pub(crate) fn loopback_attempt<'a>(user: &'a str, password: &'a str) -> Attempt<'a> {
    Attempt {
        user,
        password,
        client_ip: std::net::Ipv4Addr::LOCALHOST.into(),
        tls: false,
        client_cert: None,
    }
}

/// What a back end can say of a user name before its password is sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BeforePassword {
    /// An anonymous name: any password is accepted, and a wrong one is not
    /// delayed.
    pub anonymous: bool,
    /// The account must use TLS on the control connection, so USER on a
    /// plain one is refused before the password is sent in the clear. A
    /// back end that cannot tell before the password says so with the
    /// server-wide default; the account's own policy is checked again at
    /// login.
    pub tls_required: bool,
}

/// The back end that refused a login, for the log line (never the reply).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decider {
    /// `[[users]]` in the config file.
    Config,
    /// The `[auth.http]` hook.
    Http,
    /// `[auth.ldap]`.
    Ldap,
    /// `[auth.pam]`.
    Pam,
    /// No back end of `auth.order` knows the name.
    None,
}

impl Decider {
    /// As the log writes it: the names of `auth.order`.
    pub fn label(self) -> &'static str {
        match self {
            Decider::Config => "config",
            Decider::Http => "http",
            Decider::Ldap => "ldap",
            Decider::Pam => "pam",
            Decider::None => "none",
        }
    }
}

/// Why a back end refused credentials, as far as it can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// No back end knows the name.
    UnknownUser,
    /// The account exists; the password is not its own.
    WrongPassword,
    /// The back end cannot tell an unknown name from a wrong password (an
    /// LDAP direct bind, an HTTP hook's 401/403).
    CannotTell,
    /// The account is disabled (`users[].disabled`, LDAP's
    /// `disabled_filter`).
    Disabled,
    /// The back end refused the account itself (PAM's account checks,
    /// `min_uid`, its groups).
    AccountRefused,
    /// An empty password, which no back end accepts.
    EmptyPassword,
}

impl Why {
    pub fn text(self) -> &'static str {
        match self {
            Why::UnknownUser => "unknown user",
            Why::WrongPassword => "wrong password",
            Why::CannotTell => "unknown user or wrong password (the back end cannot tell)",
            Why::Disabled => "account disabled",
            Why::AccountRefused => "account refused by the back end",
            Why::EmptyPassword => "empty password",
        }
    }
}

/// Who refused a login and why: what the log line says of a 530.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied {
    pub by: Decider,
    pub why: Why,
}

impl Denied {
    pub fn new(by: Decider, why: Why) -> Self {
        Denied { by, why }
    }
}

/// Why a login failed. The client sees the same 530 for `Invalid` and
/// `Unknown`, so that a reply never tells whether a user exists.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown user, wrong password, a disabled account, or anonymous
    /// login off: 530, counted toward a ban. [`Denied`] is for the log.
    #[error("invalid credentials ({}: {})", .0.by.label(), .0.why.text())]
    Invalid(Denied),
    /// This back end does not know the user: the chain asks the next one
    /// in `auth.order` (530 and counted, as `Invalid`, if it reaches the
    /// session).
    #[error("unknown user")]
    Unknown,
    /// The back end itself failed (down, timed out, a malformed answer):
    /// 421 "try later" and a log line, not counted toward a ban.
    #[error("authentication back-end error: {0}")]
    Backend(String),
}

/// Checks credentials. Implementations must not block the runtime: expensive
/// hash checks go to `spawn_blocking`.
#[async_trait]
pub trait Authenticator: Send + Sync + std::fmt::Debug {
    /// What is known of `user` before its password (see [`BeforePassword`]).
    fn before_password(&self, user: &str) -> BeforePassword;
    /// Check a user name and password.
    async fn authenticate(&self, attempt: &Attempt<'_>) -> Result<Arc<Account>, AuthError>;
}

/// The server's authenticator: the back ends of `auth.order`, asked in
/// turn. Fails only if a back end cannot be set up (an unreadable
/// `ca_file`).
pub fn build(options: &crate::options::ServerOptions) -> Result<Arc<dyn Authenticator>, String> {
    Ok(Arc::new(chain::Chain::new(options)?))
}

/// What `check-config` can tell of [`build`] without serving: that the
/// hook and LDAP back ends can be set up (their `ca_file`s read). PAM's
/// helper is started by `serve` only, and not checked here.
pub fn check(options: &crate::options::ServerOptions) -> Result<(), String> {
    chain::check(options)
}
