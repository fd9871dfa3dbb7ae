//! Authentication: the [`Authenticator`] trait that the login handlers call,
//! and the built-in implementation over the config file's users and the
//! anonymous account ([`users::ConfigAuthenticator`]). A remote user database
//! can implement the same trait later.

mod hasher;
pub mod users;

use async_trait::async_trait;

pub use crate::access::Permissions;
pub use users::ConfigAuthenticator;

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

/// Why a login failed. The client always sees the same 530, whatever the
/// variant, so that a reply never tells whether a user exists.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown user, wrong password, or anonymous login disabled.
    #[error("invalid credentials")]
    Invalid,
    /// The back-end failed (log it; the client still sees 530).
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
    async fn authenticate(&self, user: &str, password: &str) -> Result<Account, AuthError>;
}
