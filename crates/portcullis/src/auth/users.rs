//! The built-in authenticator: `[[users]]` from the config file, checked
//! against argon2id hashes, plus the anonymous account when enabled.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::Argon2;
use async_trait::async_trait;

use super::{
    Account, Attempt, AuthError, Authenticator, BeforePassword, Decider, Denied, Permissions,
    Policy, Why,
};
use crate::options::{ServerOptions, UserEntry};

/// Names that mean "anonymous" (compared case-insensitively).
const ANONYMOUS_NAMES: &[&str] = &["anonymous", "ftp"];

/// A `[[users]]` entry with its policy resolved against the server's
/// defaults.
#[derive(Debug)]
struct Known {
    entry: UserEntry,
    policy: Policy,
    /// What a login gets: made once, shared by the account's sessions.
    account: Arc<Account>,
}

impl Known {
    fn new(entry: UserEntry, policy: Policy) -> Self {
        let account = Arc::new(Account {
            name: entry.name.clone(),
            root: entry.root.clone(),
            permissions: entry.policy.permissions,
            anonymous: false,
            policy: policy.clone(),
        });
        Known {
            entry,
            policy,
            account,
        }
    }

    fn account(&self) -> Arc<Account> {
        self.account.clone()
    }
}

/// Users from the config file, and anonymous.
#[derive(Debug)]
pub struct ConfigAuthenticator {
    users: HashMap<String, Arc<Known>>,
    /// The account every anonymous login shares.
    anonymous: Option<Arc<Account>>,
    /// What USER says of a name that is not in the file.
    unknown: BeforePassword,
    hasher: super::hasher::Hasher,
}

impl ConfigAuthenticator {
    pub fn new(options: &ServerOptions) -> Self {
        let policy = |u: &UserEntry| Policy::resolve(options, &u.policy);
        let anonymous_policy = Policy {
            control_tls_required: options.control_tls_required("anonymous", true),
            data_tls_required: options.data_tls_required("anonymous", true),
            quota: options
                .anonymous
                .as_ref()
                .map(|a| a.quota)
                .unwrap_or_default(),
            ..Policy::default()
        };
        ConfigAuthenticator {
            users: options
                .users
                .iter()
                .map(|u| (u.name.clone(), Arc::new(Known::new(u.clone(), policy(u)))))
                .collect(),
            anonymous: options.anonymous.as_ref().map(|a| {
                Arc::new(Account {
                    name: "anonymous".to_owned(),
                    root: a.root.clone(),
                    permissions: Permissions {
                        write: a.upload,
                        ..Permissions::READ_ONLY
                    },
                    anonymous: true,
                    policy: anonymous_policy.clone(),
                })
            }),
            // The same answer as for a user without an override, so that
            // USER does not tell which names exist.
            unknown: BeforePassword {
                anonymous: false,
                tls_required: options.control_tls_required("", false),
            },
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
    fn before_password(&self, user: &str) -> BeforePassword {
        if let Some(account) = self.anonymous_for(user) {
            let policy = &account.policy;
            return BeforePassword {
                anonymous: true,
                tls_required: policy.control_tls_required,
            };
        }
        match self.users.get(user) {
            Some(k) => BeforePassword {
                anonymous: false,
                tls_required: k.policy.control_tls_required,
            },
            None => self.unknown,
        }
    }

    async fn authenticate(&self, attempt: &Attempt<'_>) -> Result<Arc<Account>, AuthError> {
        let (user, password) = (attempt.user, attempt.password);
        if let Some(account) = self.anonymous_for(user) {
            return Ok(account.clone());
        }
        let known = self.users.get(user).cloned();
        if let Some(k) = known
            .as_ref()
            .filter(|k| k.entry.password_optional_with_cert)
        {
            // password_with_cert = "optional": a certificate of the account
            // stands in for the password, whatever PASS said.
            let v = super::cert::verdict(&k.policy.client_cert, user, attempt.client_cert);
            if v == super::cert::CertVerdict::Belongs {
                if k.entry.disabled {
                    return Err(AuthError::Invalid(Denied::new(
                        Decider::Config,
                        Why::Disabled,
                    )));
                }
                return Ok(k.account());
            }
        }
        let hash = known
            .as_ref()
            .map(|k| k.entry.password_hash.clone())
            .unwrap_or_else(|| dummy_hash().to_owned());
        // argon2 costs tens of milliseconds of CPU by design: it runs on the
        // hasher's own threads, never on the runtime's.
        let ok = self
            .hasher
            .verify(hash, password.to_owned())
            .await
            .map_err(AuthError::Backend)?;
        // A disabled account's password is still checked, so that the
        // answer takes as long as for any other account.
        let denied = |why| Err(AuthError::Invalid(Denied::new(Decider::Config, why)));
        match known {
            Some(k) if ok && k.entry.disabled => denied(Why::Disabled),
            Some(k) if ok => Ok(k.account()),
            Some(_) => denied(Why::WrongPassword),
            None => denied(Why::UnknownUser),
        }
    }
}

impl ConfigAuthenticator {
    /// Whether this back end decides for `user`: a `[[users]]` entry, or
    /// an anonymous name while anonymous login is on.
    pub fn knows(&self, user: &str) -> bool {
        self.users.contains_key(user) || self.anonymous_for(user).is_some()
    }

    /// Whether `user` is an anonymous name and anonymous login is on.
    pub fn is_anonymous(&self, user: &str) -> bool {
        self.anonymous_for(user).is_some()
    }

    /// The anonymous account, if `user` is one of its names and it is on.
    fn anonymous_for(&self, user: &str) -> Option<&Arc<Account>> {
        let named = ANONYMOUS_NAMES.iter().any(|n| n.eq_ignore_ascii_case(user));
        self.anonymous.as_ref().filter(|_| named)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::auth::loopback_attempt as attempt;

    #[tokio::test]
    async fn passwords_and_anonymous() {
        let mut o = ServerOptions::with_anonymous_root("/tmp".into());
        o.users.push(UserEntry {
            name: "alice".into(),
            password_hash: hash_password("pw"),
            root: crate::storage::RootSpec::Local("/tmp".into()),
            policy: crate::options::AccountPolicy {
                permissions: Permissions::ALL,
                ..Default::default()
            },
            password_optional_with_cert: false,
            disabled: false,
        });
        let a = ConfigAuthenticator::new(&o);
        assert!(a.authenticate(&attempt("alice", "pw")).await.is_ok());
        let why = |r: Result<Arc<Account>, AuthError>| match r {
            Err(AuthError::Invalid(d)) => Some(d.why),
            _ => None,
        };
        assert_eq!(
            why(a.authenticate(&attempt("alice", "nope")).await),
            Some(Why::WrongPassword)
        );
        assert_eq!(
            why(a.authenticate(&attempt("mallory", "pw")).await),
            Some(Why::UnknownUser)
        );
        // Disabled: refused with the right password too, and said so.
        o.users[0].disabled = true;
        let d = ConfigAuthenticator::new(&o);
        assert_eq!(
            why(d.authenticate(&attempt("alice", "pw")).await),
            Some(Why::Disabled)
        );
        assert_eq!(
            why(d.authenticate(&attempt("alice", "nope")).await),
            Some(Why::WrongPassword)
        );
        o.users[0].disabled = false;
        let anon = a.authenticate(&attempt("FTP", "x@y")).await.unwrap();
        assert!(anon.anonymous && !anon.permissions.write);
        o.anonymous = None;
        let a = ConfigAuthenticator::new(&o);
        assert!(!a.before_password("anonymous").anonymous);
        assert!(a.authenticate(&attempt("anonymous", "x")).await.is_err());
    }

    #[tokio::test]
    async fn the_account_carries_its_whole_policy() {
        let mut o = ServerOptions::with_anonymous_root("/tmp".into());
        let mut tls = crate::options::TlsOptions::optional("c".into(), "k".into());
        tls.mode = crate::options::TlsMode::Required;
        tls.anonymous_exempt = true;
        o.tls = Some(tls);
        let networks = crate::access::NetList {
            allow: vec!["10.0.0.0/8".parse().unwrap()],
            deny: Vec::new(),
        };
        o.users.push(UserEntry {
            name: "alice".into(),
            password_hash: hash_password_with("pw", 8, 1).unwrap(),
            root: crate::storage::RootSpec::Local("/tmp".into()),
            policy: crate::options::AccountPolicy {
                permissions: Permissions::ALL,
                tls: crate::options::UserTls {
                    mode: Some(crate::options::TlsMode::Optional),
                    data_protection: Some(crate::options::DataProtection::Required),
                },
                download_rate: 1000,
                upload_rate: 2000,
                networks: networks.clone(),
                max_sessions: 3,
                quota: crate::options::QuotaLimits {
                    bytes: Some(5),
                    files: None,
                },
                ..Default::default()
            },
            password_optional_with_cert: false,
            disabled: false,
        });
        let a = ConfigAuthenticator::new(&o);
        let acct = a.authenticate(&attempt("alice", "pw")).await.unwrap();
        assert_eq!(
            acct.policy,
            Policy {
                control_tls_required: false,
                data_tls_required: true,
                download_rate: 1000,
                upload_rate: 2000,
                networks,
                max_sessions: 3,
                client_cert: Default::default(),
                quota: crate::options::QuotaLimits {
                    bytes: Some(5),
                    files: None,
                },
            }
        );
        assert!(!a.before_password("alice").tls_required, "own override");
        assert!(a.before_password("nobody").tls_required, "the default");
        let anon = a.before_password("anonymous");
        assert!(anon.anonymous && !anon.tls_required, "exempt");
    }

    #[tokio::test]
    async fn a_certificate_stands_in_for_the_password_only_when_optional() {
        let mut o = ServerOptions::with_anonymous_root("/tmp".into());
        for (name, optional, disabled) in [
            ("alice", true, false),
            ("bob", false, false),
            ("carol", true, true),
        ] {
            o.users.push(UserEntry {
                name: name.into(),
                password_hash: hash_password_with("pw", 8, 1).unwrap(),
                root: crate::storage::RootSpec::Local("/tmp".into()),
                policy: crate::options::AccountPolicy {
                    client_cert: crate::options::ClientCertRule {
                        use_cert: crate::options::CertUse::Required,
                        ..Default::default()
                    },
                    ..Default::default()
                },
                password_optional_with_cert: optional,
                disabled,
            });
        }
        let a = ConfigAuthenticator::new(&o);
        let cert = |cn: &str| crate::tls::ClientIdentity {
            cn: Some(cn.into()),
            emails: Vec::new(),
            sha256: [0; 32],
        };
        let with = |user, password, c| Attempt {
            client_cert: c,
            ..attempt(user, password)
        };
        let (ca, cb) = (cert("alice"), cert("bob"));
        assert!(a.authenticate(&with("alice", "", Some(&ca))).await.is_ok());
        assert!(a
            .authenticate(&with("alice", "x", Some(&cb)))
            .await
            .is_err());
        assert!(a.authenticate(&with("alice", "x", None)).await.is_err());
        assert!(a.authenticate(&with("alice", "pw", None)).await.is_ok());
        assert!(a.authenticate(&with("bob", "", Some(&cb))).await.is_err());
        assert!(a.authenticate(&with("bob", "pw", Some(&cb))).await.is_ok());
        // A disabled account's certificate does not let it in either.
        let cc = cert("carol");
        match a.authenticate(&with("carol", "", Some(&cc))).await {
            Err(AuthError::Invalid(d)) => assert_eq!(d.why, Why::Disabled),
            other => panic!("{other:?}"),
        }
    }
}
