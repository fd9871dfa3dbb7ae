//! One login's exchanges with the directory: find the entry (a direct
//! bind, or a search on a pooled service connection and a bind as the
//! entry on a connection of its own), then read what the account needs:
//! `disabled_filter`, the groups (`memberOf`, and a group search) and the
//! root attribute.

use ldap3::{Ldap, LdapError, Scope, SearchEntry};

use super::pool::Pooled;
use super::{dn_escape, fill, filter_escape, LdapBackend};
use crate::auth::{Attempt, AuthError, Decider, Denied, Why};
use crate::options::LdapLookup;

/// LDAP's invalidCredentials result code (RFC 4511 appendix A).
const INVALID_CREDENTIALS: u32 = 49;

/// What a lookup found.
pub(super) struct Found {
    pub dn: String,
    /// Group DNs, lower-cased: `memberOf` and the group search's.
    pub groups: Vec<String>,
    /// The first value of `root_attribute`, if the entry has one.
    pub root: Option<String>,
}

impl LdapBackend {
    fn backend(&self, what: &str, e: impl std::fmt::Display) -> AuthError {
        AuthError::Backend(format!("{}: {what}: {e}", self.options.url))
    }

    /// The attributes read from the user's entry.
    fn attributes(&self) -> Vec<&str> {
        let mut a = vec!["memberOf"];
        a.extend(self.options.root_attribute.as_deref());
        a
    }

    /// The whole exchange: `Ok(None)` when a search finds no entry.
    pub(super) async fn login(&self, attempt: &Attempt<'_>) -> Result<Option<Found>, AuthError> {
        match &self.options.lookup {
            LdapLookup::Direct { bind_dn } => {
                let dn = fill(bind_dn, attempt.user, dn_escape);
                let mut conn = self
                    .connector
                    .open()
                    .await
                    .map_err(|e| self.backend("connect", e))?;
                let ldap = &mut conn.ldap;
                self.bind_as_user(ldap, &dn, attempt.password).await?;
                // Everything else is read as the user itself.
                let (entries, _) = ldap
                    .search(&dn, Scope::Base, "(objectClass=*)", self.attributes())
                    .await
                    .and_then(|s| s.success())
                    .map_err(|e| self.backend("reading the entry", e))?;
                let entry = entries.into_iter().next().map(SearchEntry::construct);
                let found = self.complete(ldap, attempt, dn, entry).await?;
                let _ = ldap.unbind().await;
                Ok(Some(found))
            }
            LdapLookup::Search { base, filter, .. } => {
                let filter = fill(filter, attempt.user, filter_escape);
                let (mut service, entries) = self.search_pooled(base, &filter).await?;
                let mut entries = entries.into_iter().map(SearchEntry::construct);
                let Some(entry) = entries.next() else {
                    service.release();
                    return Ok(None);
                };
                if entries.next().is_some() {
                    service.release();
                    return Err(AuthError::Backend(format!(
                        "{}: the search {filter} in {base} finds more than one entry",
                        self.options.url
                    )));
                }
                let dn = entry.dn.clone();
                {
                    let mut own = self
                        .connector
                        .open()
                        .await
                        .map_err(|e| self.backend("connect", e))?;
                    self.bind_as_user(&mut own.ldap, &dn, attempt.password)
                        .await?;
                    let _ = own.ldap.unbind().await;
                }
                // The rest as the service account, which may read groups
                // that a user cannot.
                let found = self
                    .complete(service.ldap(), attempt, dn, Some(entry))
                    .await?;
                service.release();
                Ok(Some(found))
            }
        }
    }

    /// The search for the user's entry on a pooled connection. A reused
    /// connection that fails (the directory restarted, or closed it for
    /// idling) is dropped and the search made once more on a new one.
    async fn search_pooled(
        &self,
        base: &str,
        filter: &str,
    ) -> Result<(Pooled<'_>, Vec<ldap3::ResultEntry>), AuthError> {
        let pool = self.pool.as_ref().expect("search-then-bind has a pool");
        let mut retried = false;
        loop {
            let mut conn = pool
                .get(&self.connector)
                .await
                .map_err(|e| AuthError::Backend(format!("{}: {e}", self.options.url)))?;
            let reused = conn.reused;
            match conn
                .ldap()
                .search(base, Scope::Subtree, filter, self.attributes())
                .await
            {
                Ok(result) => {
                    let (entries, _) = result.success().map_err(|e| self.backend("search", e))?;
                    return Ok((conn, entries));
                }
                // Dropped, not released: closed.
                Err(e) if reused && !retried => {
                    tracing::debug!(error = %e, "LDAP: a pooled connection failed; a new one");
                    retried = true;
                }
                Err(e) => return Err(self.backend("search", e)),
            }
        }
    }

    /// Bind as the user: invalidCredentials is a wrong password (or, for a
    /// direct bind, maybe an unknown name), anything else a failure.
    async fn bind_as_user(
        &self,
        ldap: &mut Ldap,
        dn: &str,
        password: &str,
    ) -> Result<(), AuthError> {
        let r = ldap
            .simple_bind(dn, password)
            .await
            .map_err(|e| self.backend("bind", e))?;
        if r.rc == INVALID_CREDENTIALS {
            // Found by a search: the entry exists. A direct bind's DN is
            // made from the name, which may not exist.
            let why = match self.options.lookup {
                LdapLookup::Direct { .. } => Why::CannotTell,
                LdapLookup::Search { .. } => Why::WrongPassword,
            };
            return Err(AuthError::Invalid(Denied::new(Decider::Ldap, why)));
        }
        r.success().map(drop).map_err(|e| self.backend("bind", e))
    }

    /// After the bind: `disabled_filter`, the groups, the root attribute.
    async fn complete(
        &self,
        ldap: &mut Ldap,
        attempt: &Attempt<'_>,
        dn: String,
        entry: Option<SearchEntry>,
    ) -> Result<Found, AuthError> {
        if let Some(disabled) = &self.options.disabled_filter {
            let (entries, _) = ldap
                .search(&dn, Scope::Base, disabled, vec!["1.1"])
                .await
                .and_then(|s| s.success())
                .map_err(|e| self.backend("disabled_filter", e))?;
            if !entries.is_empty() {
                tracing::info!(user = attempt.user, %dn, "LDAP account disabled");
                return Err(AuthError::Invalid(Denied::new(
                    Decider::Ldap,
                    Why::Disabled,
                )));
            }
        }
        let mut groups = Vec::new();
        let mut root = None;
        if let Some(entry) = entry {
            for (name, values) in entry.attrs {
                if name.eq_ignore_ascii_case("memberOf") {
                    groups.extend(values.iter().map(|g| g.to_ascii_lowercase()));
                } else if self
                    .options
                    .root_attribute
                    .as_deref()
                    .is_some_and(|a| a.eq_ignore_ascii_case(&name))
                {
                    root = values.into_iter().next();
                }
            }
        }
        if let Some((base, filter)) = &self.options.group_search {
            let filter = fill_group_filter(filter, attempt.user, &dn);
            let (entries, _) = group_search(ldap, base, &filter)
                .await
                .map_err(|e| self.backend("group search", e))?;
            groups.extend(
                entries
                    .into_iter()
                    .map(|e| SearchEntry::construct(e).dn.to_ascii_lowercase()),
            );
        }
        Ok(Found { dn, groups, root })
    }
}

/// `group_filter` with `{user}` and `{dn}` escaped for a filter, in one
/// pass (a name with `{dn}` in it stays a name).
fn fill_group_filter(template: &str, user: &str, dn: &str) -> String {
    let mut out = String::with_capacity(template.len() + dn.len());
    let mut rest = template;
    while let Some(i) = rest.find('{') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(r) = rest.strip_prefix("{user}") {
            out.push_str(&filter_escape(user));
            rest = r;
        } else if let Some(r) = rest.strip_prefix("{dn}") {
            out.push_str(&filter_escape(dn));
            rest = r;
        } else {
            out.push('{');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    out
}

async fn group_search(
    ldap: &mut Ldap,
    base: &str,
    filter: &str,
) -> Result<(Vec<ldap3::ResultEntry>, ldap3::LdapResult), LdapError> {
    ldap.search(base, Scope::Subtree, filter, vec!["1.1"])
        .await
        .and_then(|s| s.success())
}

#[cfg(test)]
mod tests {
    use super::fill_group_filter;

    #[test]
    fn the_group_filter_gets_the_user_and_the_dn_escaped() {
        assert_eq!(
            fill_group_filter(
                "(|(member={dn})(memberUid={user}))",
                "{dn}*",
                "uid=a(b),dc=x"
            ),
            "(|(member=uid=a\\28b\\29,dc=x)(memberUid={dn}\\2a))"
        );
        assert_eq!(fill_group_filter("{x}{user", "u", "d"), "{x}{user");
    }
}
