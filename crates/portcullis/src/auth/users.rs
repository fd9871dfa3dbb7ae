//! The built-in authenticator: `[[users]]` from the config file, checked
//! against argon2id hashes, plus the anonymous account when enabled.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use async_trait::async_trait;

use super::{Account, AuthError, Authenticator, Permissions};
use crate::options::{AnonymousOptions, ServerOptions, UserEntry};

/// Names that mean "anonymous" (compared case-insensitively).
const ANONYMOUS_NAMES: &[&str] = &["anonymous", "ftp"];

/// Users from the config file, and anonymous.
#[derive(Debug)]
pub struct ConfigAuthenticator {
    users: HashMap<String, Arc<UserEntry>>,
    anonymous: Option<AnonymousOptions>,
    hasher: super::hasher::Hasher,
}

impl ConfigAuthenticator {
    pub fn new(options: &ServerOptions) -> Self {
        ConfigAuthenticator {
            users: options
                .users
                .iter()
                .map(|u| (u.name.clone(), Arc::new(u.clone())))
                .collect(),
            anonymous: options.anonymous.clone(),
            // As many concurrent checks as cores, at most 4: more would only
            // queue for the CPU and multiply the memory. Memory for the
            // costliest configured hash is reserved now.
            hasher: super::hasher::Hasher::new(
                std::thread::available_parallelism().map_or(1, |n| n.get().min(4)),
                options
                    .users
                    .iter()
                    .map(|u| super::hasher::blocks_needed(&u.password_hash))
                    .max()
                    .unwrap_or(0),
            ),
        }
    }
}

/// Hash a password as argon2id with the argon2 crate's defaults
/// (m = 19456 KiB, t = 2, p = 1: the OWASP minimum) and a random salt.
pub fn hash_password(password: &str) -> String {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters cannot fail")
        .to_string()
}

/// Hash with explicit argon2id costs (`portcullis hash-password --m-cost
/// --t-cost`): memory in KiB and iterations, one lane.
pub fn hash_password_with(password: &str, m_cost: u32, t_cost: u32) -> Result<String, String> {
    let params = argon2::Params::new(m_cost, t_cost, 1, None).map_err(|e| e.to_string())?;
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// A hash to check unknown users against, so that they cost as much time as
/// known ones and timing does not tell which names exist.
fn dummy_hash() -> &'static str {
    static H: OnceLock<String> = OnceLock::new();
    H.get_or_init(|| hash_password("portcullis-dummy-password"))
}

#[async_trait]
impl Authenticator for ConfigAuthenticator {
    fn is_anonymous(&self, user: &str) -> bool {
        self.anonymous.is_some() && ANONYMOUS_NAMES.iter().any(|n| n.eq_ignore_ascii_case(user))
    }

    async fn authenticate(&self, user: &str, password: &str) -> Result<Account, AuthError> {
        if self.is_anonymous(user) {
            let a = self.anonymous.as_ref().expect("checked by is_anonymous");
            return Ok(Account {
                name: "anonymous".to_owned(),
                root: a.root.clone(),
                permissions: Permissions {
                    write: a.upload,
                    ..Permissions::READ_ONLY
                },
                anonymous: true,
            });
        }
        let entry = self.users.get(user).cloned();
        let hash = entry
            .as_ref()
            .map(|e| e.password_hash.clone())
            .unwrap_or_else(|| dummy_hash().to_owned());
        // argon2 costs tens of milliseconds of CPU by design: it runs on the
        // hasher's own threads, never on the runtime's.
        let ok = self
            .hasher
            .verify(hash, password.to_owned())
            .await
            .map_err(AuthError::Backend)?;
        match entry {
            Some(e) if ok => Ok(Account {
                name: e.name.clone(),
                root: e.root.clone(),
                permissions: e.permissions,
                anonymous: false,
            }),
            _ => Err(AuthError::Invalid),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_and_anonymous() {
        let mut o = ServerOptions::with_anonymous_root("/tmp".into());
        o.users.push(UserEntry {
            name: "alice".into(),
            password_hash: hash_password("pw"),
            root: "/tmp".into(),
            permissions: Permissions::ALL,
            tls: Default::default(),
            download_rate: 0,
            upload_rate: 0,
            networks: Default::default(),
        });
        let a = ConfigAuthenticator::new(&o);
        assert!(a.authenticate("alice", "pw").await.is_ok());
        assert!(matches!(
            a.authenticate("alice", "nope").await,
            Err(AuthError::Invalid)
        ));
        assert!(matches!(
            a.authenticate("mallory", "pw").await,
            Err(AuthError::Invalid)
        ));
        let anon = a.authenticate("FTP", "x@y").await.unwrap();
        assert!(anon.anonymous && !anon.permissions.write);
        o.anonymous = None;
        let a = ConfigAuthenticator::new(&o);
        assert!(!a.is_anonymous("anonymous"));
        assert!(a.authenticate("anonymous", "x").await.is_err());
    }
}
