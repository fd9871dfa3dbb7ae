//! `[auth.ldap]`: the directory's own keys ([`LdapKeys`]) and, beside them
//! in the same table, the account keys every LDAP account gets
//! ([`AccountSection`]: `root` as a template, `permissions`, rates,
//! networks, TLS overrides, `max_sessions`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::auth::AccountSection;
use crate::options::{LdapLookup, LdapOptions};

/// The keys of `[auth.ldap]` that are LDAP's own; the rest of the table is
/// an [`AccountSection`].
const OWN_KEYS: &[&str] = &[
    "url",
    "starttls",
    "ca_file",
    "timeout",
    "pool_size",
    "bind_dn",
    "search_base",
    "search_filter",
    "service_dn",
    "service_password",
    "disabled_filter",
    "group_search_base",
    "group_filter",
    "root_attribute",
    "groups",
];

/// `[auth.ldap]`
#[derive(Debug)]
pub struct LdapSection {
    pub keys: LdapKeys,
    /// root (a template, `{user}` in it), permissions, and the policy keys.
    pub account: AccountSection,
}

/// The directory's keys of `[auth.ldap]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapKeys {
    /// `ldap://HOST:PORT` or `ldaps://HOST:PORT`.
    pub url: String,
    /// StartTLS on an `ldap://` URL.
    #[serde(default)]
    pub starttls: bool,
    /// PEM certificates to trust (default: the system's bundle).
    pub ca_file: Option<PathBuf>,
    /// The whole login's exchanges must finish within this long.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Service connections kept for the searches of search-then-bind.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// Direct bind: the user's DN, `{user}` in it.
    pub bind_dn: Option<String>,
    /// Search-then-bind: where to search for the user's entry.
    pub search_base: Option<String>,
    /// The search filter, `{user}` in it.
    #[serde(default = "default_filter")]
    pub search_filter: String,
    /// The service account the search binds as (none: anonymous).
    pub service_dn: Option<String>,
    pub service_password: Option<String>,
    /// Entries matching this filter may not log in.
    pub disabled_filter: Option<String>,
    /// Where to search for the groups the user is in.
    pub group_search_base: Option<String>,
    /// The group search's filter, `{dn}` (the user's entry) and `{user}`.
    pub group_filter: Option<String>,
    /// The entry's attribute that holds the account's root.
    pub root_attribute: Option<String>,
    /// Group DN -> permissions added for its members.
    #[serde(default)]
    pub groups: std::collections::BTreeMap<String, Vec<String>>,
}

fn default_filter() -> String {
    "(uid={user})".into()
}

fn default_timeout() -> Duration {
    Duration::from_secs(5)
}

fn default_pool_size() -> usize {
    4
}

impl<'de> Deserialize<'de> for LdapSection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut account = toml::Table::deserialize(d)?;
        let keys: LdapKeys = super::split_table(&mut account, OWN_KEYS)?;
        let account: AccountSection = super::from_table(account)?;
        Ok(LdapSection { keys, account })
    }
}

pub(super) fn validate_ldap(
    l: LdapSection,
    tls_on: bool,
    checks: &dyn super::Checks,
    errors: &mut Vec<String>,
) -> Option<LdapOptions> {
    let before = errors.len();
    let LdapSection { keys: l, account } = l;
    let ldaps = l.url.starts_with("ldaps://");
    if !(ldaps || l.url.starts_with("ldap://")) {
        errors.push(format!(
            "auth.ldap.url: {:?} is not an ldap:// or ldaps:// URL",
            l.url
        ));
    }
    if ldaps && l.starttls {
        errors.push("auth.ldap.starttls: an ldaps:// URL is TLS already".into());
    }
    if (ldaps || l.starttls) || l.ca_file.is_some() {
        if let Err(e) = checks.ca_roots(l.ca_file.as_deref()) {
            errors.push(format!("auth.ldap.ca_file: {e}"));
        }
    }
    if l.timeout.is_zero() {
        errors.push("auth.ldap.timeout: must be above zero".into());
    }
    if !(1..=64).contains(&l.pool_size) {
        errors.push("auth.ldap.pool_size: must be 1 to 64".into());
    }
    let lookup = match (&l.bind_dn, &l.search_base) {
        (Some(dn), None) => {
            if !dn.contains("{user}") {
                errors.push("auth.ldap.bind_dn: must contain {user}".into());
            }
            if l.service_dn.is_some() || l.service_password.is_some() {
                errors
                    .push("auth.ldap.service_dn: only with search_base (search-then-bind)".into());
            }
            Some(LdapLookup::Direct {
                bind_dn: dn.clone(),
            })
        }
        (None, Some(base)) => {
            if !l.search_filter.contains("{user}") {
                errors.push("auth.ldap.search_filter: must contain {user}".into());
            }
            let service = match (&l.service_dn, &l.service_password) {
                (Some(d), Some(p)) if !p.is_empty() => Some((d.clone(), p.clone())),
                (None, None) => None,
                _ => {
                    errors.push(
                        "auth.ldap.service_dn: needs service_password (not empty), and the other way round".into(),
                    );
                    None
                }
            };
            Some(LdapLookup::Search {
                base: base.clone(),
                filter: l.search_filter.clone(),
                service,
            })
        }
        _ => {
            errors.push(
                "auth.ldap: set one of bind_dn (direct bind) or search_base (search-then-bind)"
                    .into(),
            );
            None
        }
    };
    let group_search = match (l.group_search_base, l.group_filter) {
        (Some(base), Some(filter)) => {
            if !filter.contains("{dn}") && !filter.contains("{user}") {
                errors.push("auth.ldap.group_filter: must contain {dn} or {user}".into());
            }
            Some((base, filter))
        }
        (None, None) => None,
        _ => {
            errors.push(
                "auth.ldap.group_search_base: goes with group_filter, and the other way round"
                    .into(),
            );
            None
        }
    };
    if l.root_attribute
        .as_deref()
        .is_some_and(|a| a.is_empty() || !a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    {
        errors.push(
            "auth.ldap.root_attribute: must be an attribute name (letters, digits, -)".into(),
        );
    }
    let root = account.root.to_string_lossy().into_owned();
    if !root.starts_with('/') {
        errors.push(format!("auth.ldap.root: {root:?} is not an absolute path"));
    }
    let policy = account.validate("auth.ldap", tls_on, errors);
    for (dn, perms) in &l.groups {
        let mut check = crate::access::Permissions::default();
        for p in perms {
            if let Err(e) = check.grant(p) {
                errors.push(format!("auth.ldap.groups.{dn:?}: {e}"));
            }
        }
    }
    if errors.len() > before {
        return None;
    }
    Some(LdapOptions {
        url: l.url,
        starttls: l.starttls,
        ca_file: l.ca_file,
        timeout: l.timeout,
        pool_size: l.pool_size,
        lookup: lookup?,
        disabled_filter: l.disabled_filter,
        group_search,
        root_attribute: l.root_attribute,
        root,
        policy,
        groups: l
            .groups
            .into_iter()
            .map(|(dn, p)| (dn.to_ascii_lowercase(), p))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use crate::config::tests::parse;

    const BASE: &str = "[auth]\norder = [\"ldap\"]\n[auth.ldap]\nurl = \"ldap://127.0.0.1\"\n\
        search_base = \"ou=people,dc=x\"\nroot = \"/srv/ftp/{user}\"\n";

    #[test]
    fn the_pool_groups_root_attribute_and_account_keys() {
        let (o, w) = parse(&format!(
            "{BASE}pool_size = 2\ngroup_search_base = \"ou=groups,dc=x\"\n\
             group_filter = \"(member={{dn}})\"\nroot_attribute = \"homeDirectory\"\n\
             permissions = [\"read\", \"write\"]\nmax_sessions = 3\ndownload_rate = \"1M\"\n\
             allow_from = [\"10.0.0.0/8\"]\n"
        ))
        .unwrap();
        assert!(w.is_empty(), "{w:?}");
        let l = o.auth.ldap.unwrap();
        assert_eq!(l.pool_size, 2);
        assert_eq!(
            l.group_search,
            Some(("ou=groups,dc=x".into(), "(member={dn})".into()))
        );
        assert_eq!(l.root_attribute.as_deref(), Some("homeDirectory"));
        assert_eq!(l.root, "/srv/ftp/{user}");
        assert!(l.policy.permissions.write && !l.policy.permissions.delete);
        assert_eq!(l.policy.max_sessions, 3);
        assert_eq!(l.policy.download_rate, 1024 * 1024);
        assert_eq!(l.policy.networks.allow.len(), 1);
        // The defaults.
        let (o, _) = parse(BASE).unwrap();
        let l = o.auth.ldap.unwrap();
        assert_eq!((l.pool_size, l.policy.max_sessions), (4, 0));
        assert!(l.group_search.is_none() && l.root_attribute.is_none());
    }

    #[test]
    fn bad_keys_are_named() {
        let e = parse(&format!(
            "{BASE}pool_size = 0\ngroup_search_base = \"ou=g\"\nroot_attribute = \"a b\"\n\
             max_sessions = -1\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("`-1`, expected usize"), "{e}");
        let e = parse(&format!(
            "{BASE}pool_size = 0\ngroup_search_base = \"ou=g\"\nroot_attribute = \"a b\"\n\
             allow_from = [\"nonsense\"]\n"
        ))
        .unwrap_err()
        .to_string();
        for needle in [
            "auth.ldap.pool_size",
            "auth.ldap.group_search_base",
            "auth.ldap.root_attribute",
            "auth.ldap.allow_from",
        ] {
            assert!(e.contains(needle), "{needle}: {e}");
        }
        let e = parse(&format!("{BASE}colour = 1\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("colour"), "{e}");
        let e = parse(&format!(
            "{BASE}group_search_base = \"ou=g\"\ngroup_filter = \"(cn=x)\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("must contain {dn} or {user}"), "{e}");
    }
}
