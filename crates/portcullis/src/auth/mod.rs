//! Authentication: the [`Authenticator`] trait that the login handlers call,
//! and the built-in implementation over the config file's users and the
//! anonymous account ([`users::ConfigAuthenticator`]). A remote user database
//! can implement the same trait later.

mod hasher;
pub mod users;

use async_trait::async_trait;

pub use users::ConfigAuthenticator;

/// What a logged-in user may do. Reading (RETR, LIST, SIZE, ...) and moving
/// around are always checked against `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions {
    /// RETR, LIST, NLST, MLSD, MLST, SIZE, MDTM, CWD.
    pub read: bool,
    /// STOR, STOU, APPE creating new files.
    pub write: bool,
    /// STOR, APPE and REST+STOR changing a file that exists, MFMT and
    /// SITE CHMOD (with `write`).
    pub overwrite: bool,
    /// DELE, RMD.
    pub delete: bool,
    /// RNFR/RNTO.
    pub rename: bool,
    /// MKD.
    pub mkdir: bool,
}

impl Permissions {
    /// Everything.
    pub const ALL: Permissions = Permissions {
        read: true,
        write: true,
        overwrite: true,
        delete: true,
        rename: true,
        mkdir: true,
    };
    /// Read only.
    pub const READ_ONLY: Permissions = Permissions {
        read: true,
        write: false,
        overwrite: false,
        delete: false,
        rename: false,
        mkdir: false,
    };

    /// Parse one permission name as written in the config file.
    pub fn grant(&mut self, name: &str) -> Result<(), String> {
        match name {
            "read" => self.read = true,
            "write" => self.write = true,
            "overwrite" => self.overwrite = true,
            "delete" => self.delete = true,
            "rename" => self.rename = true,
            "mkdir" => self.mkdir = true,
            other => {
                return Err(format!(
                    "unknown permission {other:?} (expected read, write, overwrite, delete, rename or mkdir)"
                ))
            }
        }
        Ok(())
    }
}

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
    pub networks: crate::limits::NetList,
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
