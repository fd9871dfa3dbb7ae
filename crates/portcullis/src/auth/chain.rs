//! The back ends of `auth.order`, asked in turn: the first that knows a
//! user decides, right or wrong password ("who knows a user": `config`
//! when a `[[users]]` entry exists, `http` when the hook does not answer
//! 404, `ldap` when its search finds the entry, or for every name with a
//! direct-bind template, `pam` when the system has the account). The anonymous names go to `[anonymous]` first, whatever the
//! order, while anonymous login is on.
//!
//! A name no back end knows is checked against the config users' dummy
//! hash before it is refused, so that it costs about what a wrong password
//! of a config user costs (and the session answers every refusal
//! `failed_login_delay` after PASS, however long the back ends took). With
//! `auth.cache_ttl`, an account that a back end other than `config`
//! accepted is answered from the cache for the same credentials within
//! the ttl (see `cache`).
//!
//! Every root a back end other than `config` answers (the hook's, LDAP's
//! attribute or template, PAM's template) is checked here, once for all
//! of them, against `auth.allowed_roots` (see
//! [`crate::storage::AllowedRoots`]: never `/` nor a path with `..`); a
//! refused one is the back end's failure (421 and a warning naming the
//! user and the root), and is not cached.

use std::sync::Arc;

use async_trait::async_trait;

use super::users::ConfigAuthenticator;
use super::{Account, Attempt, AuthError, Authenticator, BeforePassword, Decider, Denied, Why};
use crate::options::{BackendKind, ServerOptions};

/// One back end of the order.
#[derive(Debug)]
enum Source {
    /// `[[users]]` (the chain's own [`ConfigAuthenticator`]).
    Config,
    Http(super::http::HttpBackend),
    /// Boxed: its options and pool are large beside the others.
    Ldap(Box<super::ldap::LdapBackend>),
    Pam(super::pam::PamBackend),
}

impl Source {
    /// The back end's section, for messages.
    fn section(&self) -> &'static str {
        match self {
            Source::Config => "users",
            Source::Http(_) => "auth.http",
            Source::Ldap(_) => "auth.ldap",
            Source::Pam(_) => "auth.pam",
        }
    }
}

/// The server's authenticator.
#[derive(Debug)]
pub struct Chain {
    /// `[[users]]` and `[anonymous]`; asked for anonymous names first and
    /// for the unknown's dummy check last, whether or not `config` is in
    /// the order.
    config: ConfigAuthenticator,
    order: Vec<Source>,
    /// `auth.cache_ttl` above zero.
    cache: Option<super::cache::Cache>,
    /// `auth.allowed_roots`, for every back end's root but `config`'s.
    allowed_roots: crate::storage::AllowedRoots,
}

impl Chain {
    pub fn new(options: &ServerOptions) -> Result<Self, String> {
        let mut order = Vec::new();
        for (i, kind) in options.auth.order.iter().enumerate() {
            let last = i + 1 == options.auth.order.len();
            order.push(match kind {
                BackendKind::Config => Source::Config,
                BackendKind::Http => {
                    let http = options
                        .auth
                        .http
                        .as_ref()
                        .ok_or("auth.order: \"http\" needs an [auth.http] section")?;
                    Source::Http(super::http::HttpBackend::new(http.clone(), options)?)
                }
                BackendKind::Ldap => {
                    let ldap = options
                        .auth
                        .ldap
                        .as_ref()
                        .ok_or("auth.order: \"ldap\" needs an [auth.ldap] section")?;
                    Source::Ldap(Box::new(super::ldap::LdapBackend::new(
                        ldap.clone(),
                        options,
                    )?))
                }
                BackendKind::Pam => {
                    let pam = options
                        .auth
                        .pam
                        .as_ref()
                        .ok_or("auth.order: \"pam\" needs an [auth.pam] section")?;
                    Source::Pam(super::pam::PamBackend::new(pam.clone(), options, last)?)
                }
            });
        }
        Ok(Chain {
            config: ConfigAuthenticator::new(options),
            order,
            cache: super::cache::Cache::new(options.auth.cache_ttl),
            allowed_roots: options.auth.allowed_roots.clone(),
        })
    }
}

/// The back ends of `auth.order` that can be set up without serving, set
/// up once and dropped (see [`super::check`]).
pub(super) fn check(options: &ServerOptions) -> Result<(), String> {
    if let Some(http) = &options.auth.http {
        super::http::HttpBackend::new(http.clone(), options)?;
    }
    if let Some(ldap) = &options.auth.ldap {
        super::ldap::LdapBackend::new(ldap.clone(), options)?;
    }
    Ok(())
}

#[async_trait]
impl Authenticator for Chain {
    fn before_password(&self, user: &str) -> BeforePassword {
        // Only the config file can tell before the password; for any other
        // name this is the server-wide default, the same as for a name
        // nobody knows, and the account's own policy is checked at login.
        self.config.before_password(user)
    }

    async fn authenticate(&self, attempt: &Attempt<'_>) -> Result<Arc<Account>, AuthError> {
        if self.config.is_anonymous(attempt.user) {
            return self.config.authenticate(attempt).await;
        }
        if let Some(account) = self.cache.as_ref().and_then(|c| c.get(attempt)) {
            return Ok(account);
        }
        for source in &self.order {
            let answer = match source {
                Source::Config if self.config.knows(attempt.user) => {
                    self.config.authenticate(attempt).await
                }
                Source::Config => Err(AuthError::Unknown),
                Source::Http(h) => h.authenticate(attempt).await,
                Source::Ldap(l) => l.authenticate(attempt).await,
                Source::Pam(p) => p.authenticate(attempt).await,
            };
            match answer {
                Err(AuthError::Unknown) => continue,
                Ok(account) if !matches!(source, Source::Config) => {
                    // The config file's roots are the administrator's own;
                    // the others come from outside it.
                    self.allowed_roots.admit(&account.root).map_err(|why| {
                        AuthError::Backend(format!(
                            "{}: the account's root {:?} is refused: {why}",
                            source.section(),
                            account.root.to_string()
                        ))
                    })?;
                    if let Some(cache) = &self.cache {
                        cache.put(attempt, &account);
                    }
                    return Ok(account);
                }
                decided => return decided,
            }
        }
        // Nobody knows the name: the config authenticator checks it
        // against its dummy hash and refuses it.
        match self.config.authenticate(attempt).await {
            Err(AuthError::Backend(e)) => Err(AuthError::Backend(e)),
            _ => Err(AuthError::Invalid(Denied::new(
                Decider::None,
                Why::UnknownUser,
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::users::hash_password_with;
    use crate::options::UserEntry;

    use crate::auth::loopback_attempt as attempt;

    fn options(order: Vec<BackendKind>) -> ServerOptions {
        let mut o = ServerOptions::with_anonymous_root("/tmp".into());
        o.users.push(UserEntry {
            name: "alice".into(),
            password_hash: hash_password_with("pw", 8, 1).unwrap(),
            root: crate::storage::RootSpec::Local("/tmp".into()),
            policy: crate::options::AccountPolicy {
                permissions: crate::access::Permissions::ALL,
                ..Default::default()
            },
            password_optional_with_cert: false,
            disabled: false,
        });
        o.auth.order = order;
        o
    }

    #[tokio::test]
    async fn config_decides_for_its_users_and_anonymous_comes_first() {
        let c = Chain::new(&options(vec![BackendKind::Config])).unwrap();
        assert_eq!(
            c.authenticate(&attempt("alice", "pw")).await.unwrap().name,
            "alice"
        );
        assert!(matches!(
            c.authenticate(&attempt("alice", "no")).await,
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            c.authenticate(&attempt("bob", "pw")).await,
            Err(AuthError::Invalid(_))
        ));
        // Without "config" in the order its users are nobody, but the
        // anonymous names still reach [anonymous].
        let c = Chain::new(&options(Vec::new())).unwrap();
        assert!(matches!(
            c.authenticate(&attempt("alice", "pw")).await,
            Err(AuthError::Invalid(_))
        ));
        assert!(
            c.authenticate(&attempt("ftp", "x@y"))
                .await
                .unwrap()
                .anonymous
        );
    }
}
