//! `[events]` and `[[events.hooks]]`, validated: which events each hook
//! hears, its filters and its action (see `crate::events::hooks`).

use std::time::Duration;

use super::HookUrl;

/// The events a hook may name in `on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A file committed under its final name (STOR, STOU, APPE).
    Upload,
    /// A download that completed (RETR).
    Download,
    /// DELE.
    Delete,
    /// RNFR + RNTO.
    Rename,
    /// MKD.
    Mkdir,
    /// RMD.
    Rmdir,
    Login,
    LoginFailed,
    /// The end of a logged-in session.
    Logout,
    /// An address banned after repeated failed logins.
    Ban,
    /// An upload that failed or was aborted (nothing was committed).
    UploadFailed,
    /// Asked before an upload starts; may refuse it.
    PreUpload,
    /// Asked before a download starts; may refuse it.
    PreDownload,
    /// Asked before DELE; may refuse it.
    PreDelete,
}

impl EventKind {
    /// Every kind with its name in `on` and in the payload's `event`.
    pub const ALL: [(EventKind, &'static str); 14] = [
        (EventKind::Upload, "upload"),
        (EventKind::Download, "download"),
        (EventKind::Delete, "delete"),
        (EventKind::Rename, "rename"),
        (EventKind::Mkdir, "mkdir"),
        (EventKind::Rmdir, "rmdir"),
        (EventKind::Login, "login"),
        (EventKind::LoginFailed, "login_failed"),
        (EventKind::Logout, "logout"),
        (EventKind::Ban, "ban"),
        (EventKind::UploadFailed, "upload_failed"),
        (EventKind::PreUpload, "pre_upload"),
        (EventKind::PreDownload, "pre_download"),
        (EventKind::PreDelete, "pre_delete"),
    ];

    /// A question asked before the operation, not an event told after it.
    pub fn is_pre(self) -> bool {
        matches!(
            self,
            EventKind::PreUpload | EventKind::PreDownload | EventKind::PreDelete
        )
    }

    pub fn name(self) -> &'static str {
        EventKind::ALL
            .iter()
            .find(|(k, _)| *k == self)
            .map_or("unknown", |(_, n)| n)
    }

    pub fn from_name(name: &str) -> Option<EventKind> {
        EventKind::ALL
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(k, _)| *k)
    }
}

/// `[events]`. Compared whole by a reload, which keeps the hooks whose
/// entry did not change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventsOptions {
    pub hooks: Vec<HookOptions>,
    /// Where events are journalled until delivered (`events.spool_dir`);
    /// `None`: in memory only.
    pub spool_dir: Option<std::path::PathBuf>,
    /// Sync each journalled event to disk (as `server.fsync_uploads`
    /// syncs uploads): without it, a journal survives the process's
    /// death (`kill -9`, a crash) but not the machine's.
    pub spool_sync: bool,
}

/// One `[[events.hooks]]` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct HookOptions {
    /// Its `name`, unique: the metrics' `hook` label and the log's.
    pub name: String,
    pub on: Vec<EventKind>,
    pub filter: HookFilter,
    pub action: HookAction,
    /// How many deliveries may be under way at once (`concurrency`).
    pub concurrency: usize,
    /// Events waiting for delivery beyond this are dropped (`queue`).
    pub queue: usize,
    /// At most this many attempts per event (`max_attempts`).
    pub max_attempts: u32,
    /// No new attempt once an event is this old (`max_age`).
    pub max_age: Duration,
    /// The wait before the first retry, doubled for each next one, at
    /// most a minute (`retry_delay`).
    pub retry_delay: Duration,
    /// A pre-action hook that fails (no answer, an error) allows the
    /// operation (`on_failure = "allow"`) or refuses it (`"deny"`, the
    /// default).
    pub allow_on_failure: bool,
}

/// Which events of the named kinds a hook hears: all filters must match.
#[derive(Debug, Clone, Default)]
pub struct HookFilter {
    /// Only these users (`users`); empty: anyone.
    pub users: Vec<String>,
    /// Only virtual paths matching one of these globs (`paths`): `*` and
    /// `?` within a path segment, `**` across segments; empty: any path.
    pub paths: Option<globset::GlobSet>,
    /// `paths` as written (a compiled set cannot be compared).
    pub path_globs: Vec<String>,
    /// Transfers of at least this many bytes (`min_size`).
    pub min_size: Option<u64>,
}

impl PartialEq for HookFilter {
    fn eq(&self, other: &Self) -> bool {
        // `paths` is made from `path_globs`.
        self.users == other.users
            && self.path_globs == other.path_globs
            && self.min_size == other.min_size
    }
}

/// What a hook does with an event.
#[derive(Debug, Clone, PartialEq)]
pub enum HookAction {
    /// A JSON POST to `url`.
    Http(HttpHook),
    /// A program run with the event (`command`).
    Command(CommandHook),
}

/// `action = "command"`: `argv[0]` run (no shell) with `argv[1..]`, the
/// event's fields in `PORTCULLIS_*` variables and its JSON on stdin, as
/// the server's user; exit status 0 is delivered.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandHook {
    pub argv: Vec<String>,
    /// Killed after this long (`timeout`): a failed attempt.
    pub timeout: Duration,
}

/// `action = "http"`. Compared with its secret and headers (a reload
/// that changes them replaces the hook), though its debug form hides them.
#[derive(Clone, PartialEq)]
pub struct HttpHook {
    pub url: HookUrl,
    /// Extra request headers (`headers`).
    pub headers: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
    /// The most one attempt may take (`timeout`).
    pub timeout: Duration,
    /// The HMAC-SHA256 key of `X-Portcullis-Signature` (`secret`).
    pub secret: Option<String>,
    /// Trusted certificates for an `https://` URL (`ca_file`); default:
    /// the system's.
    pub ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for HttpHook {
    // Neither the secret nor the headers' values (tokens).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpHook")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}
