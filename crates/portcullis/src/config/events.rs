//! `[events]` and its `[[events.hooks]]`, validated into
//! [`EventsOptions`]: every problem with its key.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::options::{
    CommandHook, EventKind, EventsOptions, HookAction, HookFilter, HookOptions, HookUrl, HttpHook,
};

/// `[events]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EventsSection {
    pub hooks: Vec<HookSection>,
    /// Journal each event here until it is delivered (at least once,
    /// across restarts); absent: in memory only.
    pub spool_dir: Option<PathBuf>,
}

/// One `[[events.hooks]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookSection {
    /// Names the hook in metrics and logs; unique.
    pub name: String,
    /// The events it hears (`upload`, `download`, `delete`, `rename`,
    /// `mkdir`, `rmdir`, `login`, `login_failed`, `logout`, `ban`,
    /// `upload_failed`).
    pub on: Vec<String>,
    /// Only these users.
    #[serde(default)]
    pub users: Vec<String>,
    /// Only virtual paths matching one of these globs.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Only transfers of at least this many bytes.
    pub min_size: Option<u64>,
    /// `"http"` or `"command"`.
    pub action: String,
    /// command: the program and its arguments (no shell).
    #[serde(default)]
    pub command: Vec<String>,
    /// http: where the JSON is POSTed.
    pub url: Option<String>,
    /// http: extra request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// http: the HMAC-SHA256 key of `X-Portcullis-Signature`.
    pub secret: Option<String>,
    /// http: trusted certificates for an https:// URL.
    pub ca_file: Option<PathBuf>,
    /// The most one attempt may take.
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Deliveries under way at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// Events waiting beyond this many are dropped.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// At most this many attempts per event.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// No attempt once an event is this old.
    #[serde(default = "default_max_age", with = "humantime_serde")]
    pub max_age: Duration,
    /// A pre_* hook that fails: "allow" or "deny".
    #[serde(default = "default_on_failure")]
    pub on_failure: String,
    /// The first retry's wait, doubled for each next one (at most a minute).
    #[serde(default = "default_retry_delay", with = "humantime_serde")]
    pub retry_delay: Duration,
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_concurrency() -> usize {
    4
}
fn default_queue() -> usize {
    10_000
}
fn default_max_attempts() -> u32 {
    10
}
fn default_max_age() -> Duration {
    Duration::from_secs(3600)
}
fn default_on_failure() -> String {
    "deny".to_owned()
}
fn default_retry_delay() -> Duration {
    Duration::from_secs(1)
}

/// `[events]` into options; problems into `errors`.
pub(super) fn validate_events(mut e: EventsSection, errors: &mut Vec<String>) -> EventsOptions {
    let mut hooks = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (i, h) in std::mem::take(&mut e.hooks).into_iter().enumerate() {
        let key = format!("events.hooks[{i}]");
        let before = errors.len();
        if h.name.is_empty()
            || !h
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            errors.push(format!(
                "{key}.name: {:?} must be letters, digits, '_' or '-' (it is a metric label)",
                h.name
            ));
        } else if !names.insert(h.name.clone()) {
            errors.push(format!("{key}.name: {:?} names another hook too", h.name));
        }
        let mut on = Vec::new();
        for name in &h.on {
            match EventKind::from_name(name) {
                Some(k) => on.push(k),
                None => errors.push(format!(
                    "{key}.on: unknown event {name:?} (known: {})",
                    EventKind::ALL.map(|(_, n)| n).join(", ")
                )),
            }
        }
        if h.on.is_empty() {
            errors.push(format!("{key}.on: names no event"));
        }
        if on.iter().any(|k| k.is_pre()) && !on.iter().all(|k| k.is_pre()) {
            errors.push(format!(
                "{key}.on: pre_upload, pre_download and pre_delete are asked before the operation and cannot share a hook with events told after it; use two hooks"
            ));
        }
        let allow_on_failure = match h.on_failure.as_str() {
            "allow" => true,
            "deny" => false,
            other => {
                errors.push(format!(
                    "{key}.on_failure: {other:?} is not \"allow\" or \"deny\""
                ));
                false
            }
        };
        let paths = match h.paths.is_empty() {
            true => None,
            false => {
                let mut set = globset::GlobSetBuilder::new();
                for p in &h.paths {
                    match globset::GlobBuilder::new(p).literal_separator(true).build() {
                        Ok(g) => {
                            set.add(g);
                        }
                        Err(err) => errors.push(format!("{key}.paths: {p:?}: {}", err.kind())),
                    }
                }
                set.build().ok()
            }
        };
        for (what, zero) in [
            ("concurrency", h.concurrency == 0),
            ("queue", h.queue == 0),
            ("max_attempts", h.max_attempts == 0),
            ("timeout", h.timeout.is_zero()),
        ] {
            if zero {
                errors.push(format!("{key}.{what}: must be more than 0"));
            }
        }
        let action = match h.action.as_str() {
            "http" => http_action(&key, &h, errors).map(HookAction::Http),
            "command" => command_action(&key, &h, errors).map(HookAction::Command),
            other => {
                errors.push(format!(
                    "{key}.action: unknown action {other:?} (known: http, command)"
                ));
                None
            }
        };
        if errors.len() > before {
            continue;
        }
        let Some(action) = action else { continue };
        hooks.push(HookOptions {
            name: h.name,
            on,
            filter: HookFilter {
                users: h.users,
                paths,
                path_globs: h.paths,
                min_size: h.min_size,
            },
            action,
            concurrency: h.concurrency,
            queue: h.queue,
            max_attempts: h.max_attempts,
            max_age: h.max_age,
            retry_delay: h.retry_delay,
            allow_on_failure,
        });
    }
    if let Some(d) = &e.spool_dir {
        if !d.is_absolute() {
            errors.push(format!(
                "events.spool_dir: {} is not an absolute path",
                d.display()
            ));
        }
    }
    EventsOptions {
        hooks,
        spool_dir: e.spool_dir,
        spool_sync: true,
    }
}

fn command_action(key: &str, h: &HookSection, errors: &mut Vec<String>) -> Option<CommandHook> {
    let Some(program) = h.command.first() else {
        errors.push(format!(
            "{key}.command: action \"command\" needs a command, e.g. [\"/usr/local/bin/on-upload\", \"--flag\"]"
        ));
        return None;
    };
    let path = std::path::Path::new(program);
    if !path.is_absolute() {
        errors.push(format!(
            "{key}.command: {program:?} is not an absolute path (the program is run without a shell or PATH search)"
        ));
        return None;
    }
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Err(e) => errors.push(format!("{key}.command: {program}: {e}")),
        Ok(m) if !m.is_file() || m.permissions().mode() & 0o111 == 0 => errors.push(format!(
            "{key}.command: {program} is not an executable file"
        )),
        Ok(_) => {}
    }
    Some(CommandHook {
        argv: h.command.clone(),
        timeout: h.timeout,
    })
}

fn http_action(key: &str, h: &HookSection, errors: &mut Vec<String>) -> Option<HttpHook> {
    let url = match &h.url {
        None => {
            errors.push(format!("{key}.url: action \"http\" needs a url"));
            return None;
        }
        Some(u) => match HookUrl::parse(u) {
            Ok(u) => u,
            Err(e) => {
                errors.push(format!("{key}.url: {e}"));
                return None;
            }
        },
    };
    let mut headers = Vec::new();
    for (name, value) in &h.headers {
        let n = hyper::header::HeaderName::from_bytes(name.as_bytes());
        let v = hyper::header::HeaderValue::from_str(value);
        match (n, v) {
            (Ok(n), Ok(v)) => headers.push((n, v)),
            (Err(_), _) => errors.push(format!("{key}.headers: {name:?} is not a header name")),
            (_, Err(_)) => errors.push(format!("{key}.headers.{name}: not a valid header value")),
        }
    }
    if matches!(&h.secret, Some(s) if s.is_empty()) {
        errors.push(format!("{key}.secret: empty"));
    }
    Some(HttpHook {
        url,
        headers,
        timeout: h.timeout,
        secret: h.secret.clone(),
        ca_file: h.ca_file.clone(),
    })
}
