//! `[auth.pam]`, validated: system accounts through PAM (used by
//! `auth/pam.rs` with the `pam` feature).

use std::path::PathBuf;
use std::time::Duration;

use super::AccountPolicy;

/// The most helper threads `auth.pam.workers` may ask for.
pub const MAX_WORKERS: usize = 64;

/// `[auth.pam]`, validated.
#[derive(Debug, Clone)]
pub struct PamOptions {
    /// `auth.pam.service`
    pub service: String,
    /// `auth.pam.root`: `{user}`, `{home}`.
    pub root: String,
    /// `auth.pam.create_root`
    pub create_root: bool,
    /// `auth.pam.groups`: group name -> permissions added (checked).
    pub groups: Vec<(String, Vec<String>)>,
    /// `auth.pam.allow_groups`, `auth.pam.deny_groups`.
    pub allow_groups: Vec<String>,
    pub deny_groups: Vec<String>,
    /// `auth.pam.min_uid`, or UID_MIN from /etc/login.defs.
    pub min_uid: u32,
    /// `auth.pam.ftpusers`; `None`: no list.
    pub ftpusers: Option<PathBuf>,
    /// `auth.pam.check_shell`
    pub check_shell: bool,
    /// `auth.pam.timeout`
    pub timeout: Duration,
    /// `auth.pam.workers`
    pub workers: usize,
    /// The policy keys (permissions: every account's, before `groups`).
    pub policy: AccountPolicy,
}
