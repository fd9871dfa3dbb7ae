//! `[limits]`, validated.

use std::time::Duration;

use crate::access::NetList;

/// `[limits]`: what one client, user or the whole server may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitsOptions {
    /// Sessions at once, in total (`limits.max_sessions`); past it, 421.
    pub max_sessions: usize,
    /// Sessions at once from one client IP (`limits.max_sessions_per_ip`).
    pub max_sessions_per_ip: usize,
    /// Failed logins from one IP within `login_failure_window` that start a
    /// ban (`limits.max_login_failures`); 0 = never ban.
    pub max_login_failures: u32,
    pub login_failure_window: Duration,
    /// The first ban's length; each further ban of the address doubles it (up to 24 h).
    pub ban_time: Duration,
    /// A transfer that moves no byte for this long is aborted with 426.
    pub data_timeout: Duration,
    /// Bytes per second for the whole server (0 = unlimited).
    pub download_rate: u64,
    pub upload_rate: u64,
    /// Bytes per second for each session (0 = unlimited).
    pub session_download_rate: u64,
    pub session_upload_rate: u64,
    /// Client networks allowed to connect at all.
    pub networks: NetList,
    /// HASH, RANG and the X-hash verbs are offered (`limits.hash`).
    pub hash: bool,
    /// Files hashed at once, server-wide (`limits.hash_concurrency`);
    /// past it, 450.
    pub hash_concurrency: usize,
    /// Most bytes one hash reads (`limits.hash_max_size`; 0 = no cap);
    /// past it, 556.
    pub hash_max_size: u64,
    /// Compute each whole upload's SHA-256 as it arrives and keep it with
    /// the file (`limits.hash_on_upload = "sha256"`).
    pub hash_on_upload: bool,
    /// How often every counted root is scanned again
    /// (`limits.quota_rescan`; `None`: never).
    pub quota_rescan: Option<Duration>,
    /// Networks never banned (`limits.ban_exempt`).
    pub ban_exempt: Vec<ipnet::IpNet>,
}

impl Default for LimitsOptions {
    fn default() -> Self {
        LimitsOptions {
            max_sessions: 1000,
            max_sessions_per_ip: 50,
            max_login_failures: 5,
            login_failure_window: Duration::from_secs(300),
            ban_time: Duration::from_secs(900),
            data_timeout: Duration::from_secs(120),
            download_rate: 0,
            upload_rate: 0,
            session_download_rate: 0,
            session_upload_rate: 0,
            networks: Default::default(),
            hash: true,
            hash_concurrency: 4,
            hash_max_size: 0,
            hash_on_upload: false,
            quota_rescan: None,
            ban_exempt: Vec::new(),
        }
    }
}
