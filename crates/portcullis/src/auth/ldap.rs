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
//! is refused; the groups of `memberOf` add permissions. One connection
//! per login, TLS (ldaps:// or StartTLS) by rustls with the certificates
//! checked; the whole login must finish within `timeout`.

use std::sync::Arc;

use async_trait::async_trait;
use ldap3::{LdapConnAsync, LdapConnSettings, Scope, SearchEntry};

use super::{Account, Attempt, AuthError, Authenticator, BeforePassword, Permissions, Policy};
use crate::options::{LdapLookup, LdapOptions, ServerOptions};
use crate::storage::RootSpec;

/// LDAP's invalidCredentials result code (RFC 4511 appendix A).
const INVALID_CREDENTIALS: u32 = 49;

/// The directory.
pub struct LdapBackend {
    options: LdapOptions,
    /// For TLS (ldaps:// or StartTLS).
    tls: Option<Arc<rustls::ClientConfig>>,
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

/// What a lookup found: the entry's DN and groups.
struct Found {
    dn: String,
    groups: Vec<String>,
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
            let roots = super::http::load_roots(options.ca_file.as_deref())
                .map_err(|e| format!("auth.ldap.ca_file: {e}"))?;
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("auth.ldap: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
            Some(Arc::new(config))
        } else {
            None
        };
        Ok(LdapBackend {
            options,
            tls,
            server: Arc::new(server.clone()),
        })
    }

    /// The whole exchange: `Ok(None)` when a search finds no entry.
    async fn login(&self, attempt: &Attempt<'_>) -> Result<Option<Found>, AuthError> {
        let backend = |what: &str, e: ldap3::LdapError| {
            AuthError::Backend(format!("{}: {what}: {e}", self.options.url))
        };
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.options.timeout)
            .set_starttls(self.options.starttls);
        if let Some(config) = &self.tls {
            settings = settings.set_config(config.clone());
        }
        let (conn, mut ldap) = LdapConnAsync::with_settings(settings, &self.options.url)
            .await
            .map_err(|e| backend("connect", e))?;
        // The connection's own task; it ends when `ldap` is dropped or
        // unbinds.
        let driver = tokio::spawn(async move {
            let _ = conn.drive().await;
        });
        let _abort = AbortOnDrop(driver.abort_handle());
        let found = match &self.options.lookup {
            LdapLookup::Direct { bind_dn } => {
                let dn = fill(bind_dn, attempt.user, dn_escape);
                let r = ldap
                    .simple_bind(&dn, attempt.password)
                    .await
                    .map_err(|e| backend("bind", e))?;
                if r.rc == INVALID_CREDENTIALS {
                    return Err(AuthError::Invalid);
                }
                r.success().map_err(|e| backend("bind", e))?;
                // Read as the user itself.
                let (entries, _) = ldap
                    .search(&dn, Scope::Base, "(objectClass=*)", vec!["memberOf"])
                    .await
                    .and_then(|s| s.success())
                    .map_err(|e| backend("reading the entry", e))?;
                let groups = entries
                    .into_iter()
                    .next()
                    .map(|e| member_of(SearchEntry::construct(e)))
                    .unwrap_or_default();
                Found { dn, groups }
            }
            LdapLookup::Search {
                base,
                filter,
                service,
            } => {
                if let Some((dn, password)) = service {
                    ldap.simple_bind(dn, password)
                        .await
                        .and_then(|r| r.success())
                        .map_err(|e| backend("bind as service_dn", e))?;
                }
                let filter = fill(filter, attempt.user, filter_escape);
                let (entries, _) = ldap
                    .search(base, Scope::Subtree, &filter, vec!["memberOf"])
                    .await
                    .and_then(|s| s.success())
                    .map_err(|e| backend("search", e))?;
                let mut entries = entries.into_iter().map(SearchEntry::construct);
                let Some(entry) = entries.next() else {
                    let _ = ldap.unbind().await;
                    return Ok(None);
                };
                if entries.next().is_some() {
                    return Err(AuthError::Backend(format!(
                        "{}: the search {filter} in {base} finds more than one entry",
                        self.options.url
                    )));
                }
                let dn = entry.dn.clone();
                let groups = member_of(entry);
                let r = ldap
                    .simple_bind(&dn, attempt.password)
                    .await
                    .map_err(|e| backend("bind", e))?;
                if r.rc == INVALID_CREDENTIALS {
                    return Err(AuthError::Invalid);
                }
                r.success().map_err(|e| backend("bind", e))?;
                Found { dn, groups }
            }
        };
        if let Some(disabled) = &self.options.disabled_filter {
            let (entries, _) = ldap
                .search(&found.dn, Scope::Base, disabled, vec!["1.1"])
                .await
                .and_then(|s| s.success())
                .map_err(|e| backend("disabled_filter", e))?;
            if !entries.is_empty() {
                tracing::info!(user = attempt.user, dn = %found.dn, "LDAP account disabled");
                return Err(AuthError::Invalid);
            }
        }
        let _ = ldap.unbind().await;
        Ok(Some(found))
    }
}

/// The entry's `memberOf` values, lower-cased.
fn member_of(entry: SearchEntry) -> Vec<String> {
    entry
        .attrs
        .into_iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("memberOf"))
        .flat_map(|(_, v)| v)
        .map(|g| g.to_ascii_lowercase())
        .collect()
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[async_trait]
impl Authenticator for LdapBackend {
    fn before_password(&self, _user: &str) -> BeforePassword {
        let (tls_required, _) = self.server.tls_required_with(Default::default(), false);
        BeforePassword {
            anonymous: false,
            tls_required,
        }
    }

    async fn authenticate(&self, attempt: &Attempt<'_>) -> Result<Account, AuthError> {
        // An empty password would be an unauthenticated bind, which
        // succeeds; a name that is not a directory name cannot have a root.
        if attempt.password.is_empty() || !usable_in_a_path(attempt.user) {
            return Err(AuthError::Invalid);
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
        let mut permissions: Permissions = self.options.permissions;
        for (group, names) in &self.options.groups {
            if found.groups.iter().any(|g| g == group) {
                for n in names {
                    // Checked by the config's validation.
                    let _ = permissions.grant(n);
                }
            }
        }
        let root = self.options.root.replace("{user}", attempt.user);
        Ok(Account {
            name: attempt.user.to_owned(),
            root: RootSpec::Local(root.into()),
            permissions,
            anonymous: false,
            policy: Policy::resolve(&self.server, &Default::default()),
        })
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
