//! `[auth.pam]`: system accounts through PAM, and its validation into
//! [`PamOptions`]. Parsed whether or not the binary was built with the
//! `pam` feature, so that a binary without it says so instead of calling
//! the section unknown.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::auth::AccountSection;
use crate::access::Permissions;
use crate::options::{PamOptions, MAX_WORKERS};

/// `[auth.pam]`'s own keys (the rest are the [`AccountSection`] keys).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PamKeys {
    /// The PAM service: `/etc/pam.d/<service>`.
    #[serde(default = "default_service")]
    pub service: String,
    /// Create a root that does not exist at the account's first login.
    #[serde(default = "yes")]
    pub create_root: bool,
    /// Unix group -> permissions added for its members.
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<String>>,
    /// Only members of these groups may log in (empty: any).
    #[serde(default)]
    pub allow_groups: Vec<String>,
    /// Members of these groups may not log in.
    #[serde(default)]
    pub deny_groups: Vec<String>,
    /// Accounts below this uid may not log in (default: UID_MIN of
    /// /etc/login.defs, else 1000).
    pub min_uid: Option<u32>,
    /// Names that may not log in, one a line (empty string: none).
    #[serde(default = "default_ftpusers")]
    pub ftpusers: PathBuf,
    /// The account's shell must be listed in /etc/shells.
    #[serde(default = "yes")]
    pub check_shell: bool,
    /// A login (lookup and PAM check) must be answered within this long.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Threads of the PAM helper: logins checked at once.
    #[serde(default = "default_workers")]
    pub workers: usize,
}

/// `[auth.pam]`: its own keys, and the account keys of `[[users]]` for
/// every PAM account (`root` a template: `{user}` the login name, `{home}`
/// its home; default "/srv/ftp/{user}").
#[derive(Debug)]
pub struct PamSection {
    pub keys: PamKeys,
    pub account: AccountSection,
}

/// The keys of [`PamKeys`].
const OWN_KEYS: &[&str] = &[
    "service",
    "create_root",
    "groups",
    "allow_groups",
    "deny_groups",
    "min_uid",
    "ftpusers",
    "check_shell",
    "timeout",
    "workers",
];

impl<'de> Deserialize<'de> for PamSection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut table = toml::Table::deserialize(d)?;
        table
            .entry("root")
            .or_insert_with(|| toml::Value::String(default_root()));
        let keys = super::split_table(&mut table, OWN_KEYS)?;
        let account = super::from_table(table)?;
        Ok(PamSection { keys, account })
    }
}

fn default_service() -> String {
    "portcullis".into()
}

fn default_root() -> String {
    "/srv/ftp/{user}".into()
}

fn default_ftpusers() -> PathBuf {
    "/etc/ftpusers".into()
}

fn default_timeout() -> Duration {
    Duration::from_secs(20)
}

fn default_workers() -> usize {
    4
}

fn yes() -> bool {
    true
}

/// `[auth.pam]` as `auth.order` needs it: validated when present, an
/// error when the order names "pam" without it, a warning when present
/// but unused.
pub(super) fn validate_in_order(
    p: Option<PamSection>,
    order: &[crate::options::BackendKind],
    tls_on: bool,
    checks: &dyn super::Checks,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Option<PamOptions> {
    let named = order.contains(&crate::options::BackendKind::Pam);
    let pam = p.and_then(|p| validate(p, tls_on, checks, errors));
    if named && pam.is_none() && !errors.iter().any(|e| e.starts_with("auth.pam")) {
        errors.push("auth.order: \"pam\" needs an [auth.pam] section".into());
    }
    if !named && pam.is_some() {
        warnings.push("auth.pam: not used, as auth.order does not name \"pam\"".into());
    }
    pam
}

/// Check `[auth.pam]`; `None` when it has errors (each pushed with its key).
pub fn validate(
    p: PamSection,
    tls_on: bool,
    checks: &dyn super::Checks,
    errors: &mut Vec<String>,
) -> Option<PamOptions> {
    let before = errors.len();
    let PamSection { keys: p, account } = p;
    let root = account.root.to_string_lossy().into_owned();
    if !cfg!(feature = "pam") {
        errors.push(
            "auth.pam: this portcullis was built without PAM support (build it with \
             `--features portcullis/pam`, which needs libpam0g-dev)"
                .into(),
        );
        return None;
    }
    if p.service.is_empty()
        || p.service.contains(['/', '\0'])
        || p.service.chars().any(char::is_whitespace)
    {
        errors.push(format!(
            "auth.pam.service: {:?} is not a file name in /etc/pam.d",
            p.service
        ));
    }
    let root_ok = (root.starts_with('/') || root.starts_with("{home}"))
        && (root.contains("{user}") || root.contains("{home}"));
    if !root_ok {
        errors.push(format!(
            "auth.pam.root: {root:?} must be an absolute path with {{user}} or {{home}} in it"
        ));
    }
    if p.timeout.is_zero() {
        errors.push("auth.pam.timeout: must be above zero".into());
    }
    if !(1..=MAX_WORKERS).contains(&p.workers) {
        errors.push(format!(
            "auth.pam.workers: {} is not between 1 and {MAX_WORKERS}",
            p.workers
        ));
    }
    let mut groups = Vec::new();
    for (group, perms) in &p.groups {
        let mut granted = Permissions::default();
        for name in perms {
            if let Err(e) = granted.grant(name) {
                errors.push(format!("auth.pam.groups.{group:?}: {e}"));
            }
        }
        groups.push((group.clone(), perms.clone()));
    }
    let policy = account.validate("auth.pam", tls_on, errors);
    let min_uid = p
        .min_uid
        .unwrap_or_else(|| checks.uid_min().unwrap_or(1000));
    if errors.len() > before {
        return None;
    }
    Some(PamOptions {
        service: p.service,
        root,
        create_root: p.create_root,
        groups,
        allow_groups: p.allow_groups,
        deny_groups: p.deny_groups,
        min_uid,
        ftpusers: (!p.ftpusers.as_os_str().is_empty()).then_some(p.ftpusers),
        check_shell: p.check_shell,
        timeout: p.timeout,
        workers: p.workers,
        policy,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::tests::parse;

    fn errors(text: &str) -> Vec<String> {
        parse(text).err().map(|e| e.0).unwrap_or_default()
    }

    #[cfg(feature = "pam")]
    #[test]
    fn pam_sections_are_validated() {
        let (o, w) = parse("[auth]\norder = [\"config\", \"pam\"]\n[auth.pam]\n").unwrap();
        assert!(w.is_empty(), "{w:?}");
        use crate::options::BackendKind;
        assert_eq!(o.auth.order, [BackendKind::Config, BackendKind::Pam]);
        let p = o.auth.pam.unwrap();
        assert_eq!(
            (p.service.as_str(), p.root.as_str()),
            ("portcullis", "/srv/ftp/{user}")
        );
        assert_eq!(
            p.ftpusers.as_deref(),
            Some(std::path::Path::new("/etc/ftpusers"))
        );
        assert!(p.create_root && p.check_shell && p.min_uid > 0);
        let o = parse("[auth]\norder = [\"pam\"]\n[auth.pam]\nftpusers = \"\"\nmin_uid = 0\n")
            .unwrap()
            .0;
        let p = o.auth.pam.unwrap();
        assert!(p.ftpusers.is_none() && p.min_uid == 0);

        let e = errors(
            "[auth]\norder = [\"pam\"]\n[auth.pam]\nservice = \"../x\"\nroot = \"srv\"\n\
             workers = 0\npermissions = [\"fly\"]\ntls_mode = \"required\"\n\
             [auth.pam.groups]\nstaff = [\"swim\"]\n",
        );
        for key in [
            "auth.pam.service",
            "auth.pam.root",
            "auth.pam.workers",
            "auth.pam.permissions",
            "auth.pam.groups.\"staff\"",
            "auth.pam: tls_mode",
        ] {
            assert!(e.iter().any(|l| l.starts_with(key)), "{key}: {e:?}");
        }
        // Its own keys and the account keys, each checked as such.
        let e = errors("[auth]\norder = [\"pam\"]\n[auth.pam]\ncolour = 1\n");
        assert!(
            e.iter().any(|l| l.contains("auth.pam.colour: unknown key")),
            "{e:?}"
        );
        let e = errors("[auth]\norder = [\"pam\"]\n[auth.pam]\nworkers = \"x\"\n");
        assert!(
            e.iter()
                .any(|l| l.contains("auth.pam.workers: a number is needed")),
            "{e:?}"
        );
        let e = errors("[auth]\norder = [\"pam\"]\n[auth.pam]\nmax_sessions = -1\n");
        assert!(
            e.iter().any(|l| l.contains("max_sessions: invalid value")),
            "{e:?}"
        );
        let e = errors("[auth]\norder = [\"pam\"]\n");
        assert!(
            e.iter().any(|l| l.contains("needs an [auth.pam] section")),
            "{e:?}"
        );
        let (_, w) = parse("[auth.pam]\n").unwrap();
        assert!(
            w.iter().any(|l| l.starts_with("auth.pam: not used")),
            "{w:?}"
        );
    }

    #[cfg(not(feature = "pam"))]
    #[test]
    fn without_the_feature_pam_is_a_clear_error() {
        for text in ["[auth]\norder = [\"pam\"]\n", "[auth.pam]\n"] {
            let e = errors(text);
            assert!(
                e.iter().any(|l| l.contains("built without PAM support")),
                "{e:?}"
            );
        }
    }
}
