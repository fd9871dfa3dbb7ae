//! `[cluster]`: the Redis (or Valkey) server that a fleet's nodes share
//! their state through, validated into [`ClusterOptions`].

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::options::ClusterOptions;

/// `[cluster]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// `redis://HOST:PORT/DB` or `rediss://` (TLS); absent: no sharing.
    pub redis: Option<String>,
    /// A file holding the password (its first line), so that it is not in
    /// the config file or the URL.
    pub password_file: Option<PathBuf>,
    /// Trusted certificates for a `rediss://` server (else the system's).
    pub ca_file: Option<PathBuf>,
    /// Put before every key and channel, so that fleets can share a Redis.
    pub key_prefix: Option<String>,
    /// The most one Redis call may take before the node falls back to its
    /// own state.
    #[serde(default, with = "humantime_serde::option")]
    pub timeout: Option<Duration>,
}

/// The prefix when `cluster.key_prefix` is not set.
pub const DEFAULT_PREFIX: &str = "portcullis:";
/// `cluster.timeout` when not set.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);

/// `[cluster]` into options (`None` without `redis`); problems into `errors`.
pub(super) fn validate_cluster(
    c: ClusterSection,
    errors: &mut Vec<String>,
) -> Option<ClusterOptions> {
    let Some(url) = c.redis else {
        for (set, key) in [
            (c.password_file.is_some(), "password_file"),
            (c.ca_file.is_some(), "ca_file"),
            (c.key_prefix.is_some(), "key_prefix"),
            (c.timeout.is_some(), "timeout"),
        ] {
            if set {
                errors.push(format!(
                    "cluster.{key}: set without cluster.redis (the Redis server to share state through)"
                ));
            }
        }
        return None;
    };
    let before = errors.len();
    let tls = if url.starts_with("rediss://") {
        true
    } else if url.starts_with("redis://") {
        false
    } else {
        errors.push(format!(
            "cluster.redis: {:?} is not a redis:// or rediss:// URL",
            crate::options::redact_url(&url)
        ));
        false
    };
    if errors.len() == before {
        if let Err(e) = redis::Client::open(url.as_str()) {
            errors.push(format!(
                "cluster.redis: {:?}: {e}",
                crate::options::redact_url(&url)
            ));
        }
    }
    if c.ca_file.is_some() && !tls {
        errors.push("cluster.ca_file: only for a rediss:// (TLS) URL".into());
    }
    let prefix = c.key_prefix.unwrap_or_else(|| DEFAULT_PREFIX.to_owned());
    if prefix
        .chars()
        .any(|ch| ch.is_control() || ch == ' ' || ch == '*')
    {
        errors.push(format!(
            "cluster.key_prefix: {prefix:?} must not hold spaces, '*' or control characters"
        ));
    }
    let timeout = c.timeout.unwrap_or(DEFAULT_TIMEOUT);
    if timeout.is_zero() || timeout > Duration::from_secs(30) {
        errors.push(format!(
            "cluster.timeout: {} must be above 0 and at most 30s",
            humantime::format_duration(timeout)
        ));
    }
    Some(ClusterOptions {
        url,
        password_file: c.password_file,
        ca_file: c.ca_file,
        key_prefix: prefix,
        timeout,
    })
}
