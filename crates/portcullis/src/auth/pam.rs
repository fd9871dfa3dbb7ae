//! `[auth.pam]`: the system's own accounts, checked by PAM in a helper
//! process that stays root ([`client`] starts it and talks to it,
//! [`helper`] is the helper, [`protocol`] what they say).
//!
//! PAM knows a user when the system has the account (getpwnam); a name it
//! does not know goes to the next back end of `auth.order`. Before PAM
//! sees a password, a known account is refused when its uid is below
//! `min_uid` (root and the system accounts), its name is in `ftpusers`,
//! its shell is not in /etc/shells (`check_shell`), or its groups are
//! refused (`allow_groups`, `deny_groups`); such a refusal waits as long
//! as a wrong password does with pam_unix, so that the reply does not
//! tell the two apart (so does a name the system does not know, when
//! "pam" is last in the order). Then pam_authenticate and pam_acct_mgmt (expired
//! and locked accounts refused) in the helper. The root comes from the
//! template (`{user}`, `{home}`) and is created at the first login when
//! missing (`create_root`), owned by the server's user, as every file the
//! server writes is; not when `auth.allowed_roots` refuses it, which the
//! chain then answers with 421.

pub mod client;
pub mod files;
#[cfg(feature = "pam")]
pub mod helper;
pub mod protocol;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::{
    Account, Attempt, AuthError, Authenticator, BeforePassword, Decider, Denied, Permissions,
    Policy, Why,
};
use crate::options::{PamOptions, ServerOptions};
use crate::storage::RootSpec;
use protocol::{Ask, Entry, Outcome};

/// What pam_unix waits after a wrong password (its default two seconds),
/// and so what a refusal before PAM waits.
const FAIL_DELAY: Duration = Duration::from_secs(2);

/// The system's accounts.
#[derive(Debug)]
pub struct PamBackend {
    options: PamOptions,
    /// The server's options, for the TLS defaults of the policy.
    server: Arc<ServerOptions>,
    /// Last in `auth.order`: a name the system does not know is refused
    /// after the same wait as a wrong password, as nobody else is asked.
    last: bool,
}

/// Whether a login name can stand in a root template and be a Unix name:
/// no path separator, not "." or "..", no control character.
fn usable_name(user: &str) -> bool {
    !user.is_empty()
        && user != "."
        && user != ".."
        && !user.contains('/')
        && !user.chars().any(char::is_control)
}

/// Why a known account may not log in, if it may not (`None`: PAM
/// decides). Reads the ftpusers file and /etc/shells now, so that edits
/// count at once; a file that exists but cannot be read is a back-end
/// failure, not a reason to let everyone in.
fn refusal(o: &PamOptions, user: &str, e: &Entry) -> Result<Option<String>, AuthError> {
    if e.uid < o.min_uid {
        return Ok(Some(format!(
            "uid {} is below auth.pam.min_uid {} (root or a system account)",
            e.uid, o.min_uid
        )));
    }
    if let Some(path) = &o.ftpusers {
        let listed = match std::fs::read_to_string(path) {
            Ok(text) => files::ftpusers_lists(&text, user),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => false,
            Err(err) => {
                return Err(AuthError::Backend(format!(
                    "auth.pam.ftpusers {}: {err}",
                    path.display()
                )))
            }
        };
        if listed {
            return Ok(Some(format!("listed in {}", path.display())));
        }
    }
    if o.check_shell {
        let shells = std::fs::read_to_string("/etc/shells").unwrap_or_default();
        if !files::shells_list(&shells, &e.shell) {
            return Ok(Some(format!(
                "shell {:?} is not in /etc/shells (auth.pam.check_shell)",
                e.shell
            )));
        }
    }
    if let Some(g) = e.groups.iter().find(|g| o.deny_groups.contains(g)) {
        return Ok(Some(format!("in group {g:?} (auth.pam.deny_groups)")));
    }
    if !o.allow_groups.is_empty() && !e.groups.iter().any(|g| o.allow_groups.contains(g)) {
        return Ok(Some("in none of auth.pam.allow_groups".into()));
    }
    Ok(None)
}

/// The account's root from the template.
fn root_of(template: &str, user: &str, home: &str) -> std::path::PathBuf {
    template
        .replace("{user}", user)
        .replace("{home}", home.trim_end_matches('/'))
        .into()
}

impl PamBackend {
    /// Needs the helper started (by `serve`, before the privilege drop).
    pub fn new(options: PamOptions, server: &ServerOptions, last: bool) -> Result<Self, String> {
        if !client::started() {
            return Err(
                "auth.pam: the PAM helper is started with the server only; restart it to use \"pam\""
                    .into(),
            );
        }
        Ok(PamBackend {
            options,
            server: Arc::new(server.clone()),
            last,
        })
    }

    async fn refuse(&self, user: &str, why: &str) -> AuthError {
        tracing::info!(user, reason = why, "PAM account refused");
        tokio::time::sleep(FAIL_DELAY).await;
        AuthError::Invalid(Denied::new(Decider::Pam, Why::AccountRefused))
    }

    async fn account(
        &self,
        attempt: &Attempt<'_>,
        entry: &Entry,
    ) -> Result<Arc<Account>, AuthError> {
        let user = attempt.user;
        let o = &self.options;
        let mut permissions: Permissions = o.policy.permissions;
        for (group, extra) in &o.groups {
            if entry.groups.contains(group) {
                for name in extra {
                    // Checked by the config's validation.
                    let _ = permissions.grant(name);
                }
            }
        }
        let root = root_of(&o.root, user, &entry.home);
        if !root.is_absolute() {
            return Err(self.refuse(user, "its root is not an absolute path").await);
        }
        // Not for a login the session refuses for its network, nor for a
        // root the chain refuses (auth.allowed_roots decides there).
        let permitted = o.policy.networks.permits(attempt.client_ip)
            && self
                .server
                .auth
                .allowed_roots
                .admit(&RootSpec::Local(root.clone()))
                .is_ok();
        if o.create_root && permitted && tokio::fs::symlink_metadata(&root).await.is_err() {
            let mut b = tokio::fs::DirBuilder::new();
            b.mode(0o750);
            match b.create(&root).await {
                Ok(()) => {
                    tracing::info!(user, root = %root.display(), "created the PAM account's root")
                }
                // Said by the login's "home directory unavailable".
                Err(e) => {
                    tracing::warn!(user, root = %root.display(), error = %e, "cannot create the PAM account's root")
                }
            }
        }
        let p = &o.policy;
        Ok(Arc::new(Account {
            name: user.to_owned(),
            root: RootSpec::Local(root),
            permissions,
            anonymous: false,
            policy: Policy::resolve(&self.server, p),
        }))
    }
}

#[async_trait]
impl Authenticator for PamBackend {
    fn before_password(&self, _user: &str) -> BeforePassword {
        let (tls_required, _) = self
            .server
            .tls_required_with(self.options.policy.tls, false);
        BeforePassword {
            anonymous: false,
            tls_required,
        }
    }

    async fn authenticate(&self, attempt: &Attempt<'_>) -> Result<Arc<Account>, AuthError> {
        let user = attempt.user;
        if !usable_name(user) {
            return Err(AuthError::Unknown);
        }
        let limit = self.options.timeout;
        let entry = match client::ask(Ask::Lookup { user: user.into() }, limit).await? {
            Outcome::Found(e) => e,
            Outcome::Unknown => {
                if self.last {
                    tokio::time::sleep(FAIL_DELAY).await;
                }
                return Err(AuthError::Unknown);
            }
            Outcome::Error { message } => return Err(AuthError::Backend(message)),
            other => {
                return Err(AuthError::Backend(format!(
                    "the PAM helper answered a lookup with {other:?}"
                )))
            }
        };
        if let Some(why) = refusal(&self.options, user, &entry)? {
            return Err(self.refuse(user, &why).await);
        }
        if attempt.password.is_empty() || attempt.password.contains('\0') {
            // pam_unix's nullok would let an account without a password in.
            return Err(self.refuse(user, "an empty password").await);
        }
        let check = Ask::Check {
            service: self.options.service.clone(),
            user: user.into(),
            password: attempt.password.into(),
            rhost: attempt.client_ip.to_canonical().to_string(),
        };
        match client::ask(check, limit).await? {
            Outcome::Valid => self.account(attempt, &entry).await,
            // The system has the account (the lookup found it).
            Outcome::Invalid => Err(AuthError::Invalid(Denied::new(
                Decider::Pam,
                Why::WrongPassword,
            ))),
            Outcome::Refused { reason } => {
                tracing::info!(user, reason = %reason, "PAM account refused");
                Err(AuthError::Invalid(Denied::new(
                    Decider::Pam,
                    Why::AccountRefused,
                )))
            }
            Outcome::Error { message } => Err(AuthError::Backend(message)),
            other => Err(AuthError::Backend(format!(
                "the PAM helper answered a check with {other:?}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(dir: &std::path::Path) -> PamOptions {
        PamOptions {
            service: "portcullis".into(),
            root: "/srv/ftp/{user}".into(),
            create_root: true,
            groups: Vec::new(),
            allow_groups: Vec::new(),
            deny_groups: vec!["nogo".into()],
            min_uid: 1000,
            ftpusers: Some(dir.join("ftpusers")),
            check_shell: false,
            timeout: Duration::from_secs(1),
            workers: 1,
            policy: Default::default(),
        }
    }

    fn entry(uid: u32, groups: &[&str]) -> Entry {
        Entry {
            uid,
            gid: uid,
            home: "/home/x/".into(),
            shell: "/bin/sh".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn who_is_refused_before_pam() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = options(dir.path());
        let ok = |o: &PamOptions, user: &str, e: &Entry| refusal(o, user, e).unwrap().is_none();
        // No ftpusers file: nobody listed.
        assert!(ok(&o, "carol", &entry(1000, &["carol"])));
        assert!(!ok(&o, "root", &entry(0, &["root"])));
        assert!(!ok(&o, "daemon", &entry(999, &[])));
        std::fs::write(dir.path().join("ftpusers"), "# comment\ncarol\n").unwrap();
        assert!(!ok(&o, "carol", &entry(1000, &[])));
        assert!(ok(&o, "dave", &entry(1001, &["dave"])));
        assert!(!ok(&o, "dave", &entry(1001, &["dave", "nogo"])));
        o.allow_groups = vec!["ftp".into()];
        assert!(!ok(&o, "dave", &entry(1001, &["dave"])));
        assert!(ok(&o, "dave", &entry(1001, &["dave", "ftp"])));
        o.check_shell = true;
        let mut e = entry(1001, &["ftp"]);
        e.shell = "/usr/sbin/nologin".into();
        assert!(!ok(&o, "dave", &e));
        // An unreadable list is a failure, not an open door.
        o.ftpusers = Some(dir.path().into());
        assert!(matches!(
            refusal(&o, "dave", &entry(1001, &["ftp"])),
            Err(AuthError::Backend(_))
        ));
    }

    #[test]
    fn roots_from_the_template() {
        assert_eq!(
            root_of("/srv/ftp/{user}", "carol", "/home/carol"),
            std::path::Path::new("/srv/ftp/carol")
        );
        assert_eq!(
            root_of("{home}/ftp", "carol", "/home/carol/"),
            std::path::Path::new("/home/carol/ftp")
        );
        for bad in ["", ".", "..", "a/b", "a\nb"] {
            assert!(!usable_name(bad), "{bad:?}");
        }
    }
}
