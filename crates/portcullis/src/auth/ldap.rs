//! `[auth.ldap]`: accounts in a directory (OpenLDAP, Active Directory),
//! through the ldap3 crate.
//!
//! Two ways to find a user: a direct bind with a DN template, which cannot
//! tell an unknown user from a wrong password (so LDAP decides for every
//! name), or a search bound as a service account (or anonymously) and then
//! a bind as the entry found (no entry: the user is unknown, and the next
//! back end is asked). `{user}` is escaped for DNs (RFC 4514 section 2.4)
//! and filters (RFC 4515 section 3). An empty password is refused before
//! any bind: a simple bind with one is an unauthenticated bind, which
//! succeeds (RFC 4513 section 5.1.2). An entry matching `disabled_filter`
//! is refused; the groups of `memberOf` and of a group search
//! (`group_search_base`, `group_filter`) add permissions; the root is the
//! entry's `root_attribute`, or else the template (either checked against
//! `auth.allowed_roots` by the chain). The searches go over a
//! pool of service connections (`pool`), the user's bind over a connection
//! of its own (`lookup`); TLS (ldaps:// or StartTLS) by rustls with the
//! certificates checked; the whole login must finish within `timeout`.

mod lookup;
mod pool;

use std::sync::Arc;

use super::{Account, Attempt, AuthError, Decider, Denied, Permissions, Policy, Why};
use crate::options::{LdapLookup, LdapOptions, ServerOptions};
use crate::storage::RootSpec;

/// The directory.
pub struct LdapBackend {
    options: LdapOptions,
    connector: pool::Connector,
    /// Service connections for search-then-bind (`None` for a direct
    /// bind, which has no service account).
    pool: Option<pool::Pool>,
    /// The server's options, for the TLS defaults of the policy.
    server: Arc<ServerOptions>,
}

impl std::fmt::Debug for LdapBackend {
    // Not the service password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LdapBackend")
            .field("url", &self.options.url)
            .finish_non_exhaustive()
    }
}

/// `template` with `{user}` replaced by `user` escaped by `escape`.
fn fill(template: &str, user: &str, escape: fn(&str) -> String) -> String {
    template.replace("{user}", &escape(user))
}

fn dn_escape(s: &str) -> String {
    ldap3::dn_escape(s).into_owned()
}

fn filter_escape(s: &str) -> String {
    ldap3::ldap_escape(s).into_owned()
}

/// Whether a login name can stand in a root template: no path separator,
/// not "." or "..", no NUL or other control character.
fn usable_in_a_path(user: &str) -> bool {
    !user.is_empty()
        && user != "."
        && user != ".."
        && !user.contains('/')
        && !user.chars().any(char::is_control)
}

impl LdapBackend {
    pub fn new(options: LdapOptions, server: &ServerOptions) -> Result<Self, String> {
        let tls = if options.url.starts_with("ldaps://") || options.starttls {
            Some(super::http::client_config(
                options.ca_file.as_deref(),
                "auth.ldap",
            )?)
        } else {
            None
        };
        let pool = match &options.lookup {
            LdapLookup::Direct { .. } => None,
            LdapLookup::Search { service, .. } => {
                Some(pool::Pool::new(options.pool_size, service.clone()))
            }
        };
        Ok(LdapBackend {
            connector: pool::Connector {
                url: options.url.clone(),
                timeout: options.timeout,
                starttls: options.starttls,
                tls,
            },
            pool,
            options,
            server: Arc::new(server.clone()),
        })
    }

    /// Check a user name and password: `Unknown` when a search finds no
    /// entry.
    pub async fn authenticate(&self, attempt: &Attempt<'_>) -> Result<Arc<Account>, AuthError> {
        // An empty password would be an unauthenticated bind, which
        // succeeds; a name that is not a directory name cannot have a root.
        if attempt.password.is_empty() {
            return Err(AuthError::Invalid(Denied::new(
                Decider::Ldap,
                Why::EmptyPassword,
            )));
        }
        if !usable_in_a_path(attempt.user) {
            return Err(AuthError::Invalid(Denied::new(
                Decider::Ldap,
                Why::AccountRefused,
            )));
        }
        let found = tokio::time::timeout(self.options.timeout, self.login(attempt))
            .await
            .map_err(|_| {
                AuthError::Backend(format!(
                    "{}: no answer within {}",
                    self.options.url,
                    humantime::format_duration(self.options.timeout)
                ))
            })??;
        let Some(found) = found else {
            return Err(AuthError::Unknown);
        };
        let mut permissions: Permissions = self.options.policy.permissions;
        for (group, names) in &self.options.groups {
            if found.groups.iter().any(|g| g == group) {
                for n in names {
                    // Checked by the config's validation.
                    let _ = permissions.grant(n);
                }
            }
        }
        let root = match (found.root, &self.options.root_attribute) {
            (Some(r), _) if r.starts_with('/') => r,
            (Some(r), Some(attribute)) => {
                return Err(AuthError::Backend(format!(
                    "{}: {}: the {attribute} {r:?} is not an absolute path",
                    self.options.url, found.dn
                )))
            }
            _ => self.options.root.replace("{user}", attempt.user),
        };
        Ok(Arc::new(Account {
            name: attempt.user.to_owned(),
            root: RootSpec::Local(root.into()),
            permissions,
            anonymous: false,
            policy: Policy::resolve(&self.server, &self.options.policy),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_is_escaped_for_dns_and_filters() {
        assert_eq!(
            fill(
                "uid={user},ou=people,dc=example,dc=org",
                "a,b=c+d",
                dn_escape
            ),
            // RFC 4514 section 2.4's hex pairs.
            "uid=a\\2cb\\3dc\\2bd,ou=people,dc=example,dc=org"
        );
        assert_eq!(
            fill(
                "(&(uid={user})(objectClass=person))",
                "*)(uid=*",
                filter_escape
            ),
            "(&(uid=\\2a\\29\\28uid=\\2a)(objectClass=person))"
        );
        assert_eq!(fill("uid={user}", " lead#", dn_escape), "uid=\\20lead#");
        assert_eq!(fill("uid={user}", "#x ", dn_escape), "uid=\\23x\\20");
    }

    #[test]
    fn names_that_cannot_be_in_a_root_are_refused() {
        for bad in ["", ".", "..", "a/b", "../etc", "a\0b", "a\nb"] {
            assert!(!usable_in_a_path(bad), "{bad:?}");
        }
        assert!(usable_in_a_path("carol.smith"));
    }
}
