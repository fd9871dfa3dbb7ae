//! What happens on the server, reported once to one place. The accept loop
//! and the sessions emit [`Event`]s to [`Events`]; sinks subscribe to them.
//! The log ([`Log`], the server's `tracing` lines) is always a sink; the
//! transfer log ([`crate::xferlog`]) and the metrics ([`crate::metrics`])
//! are sinks when configured, so that none of them has to be threaded
//! through the session by hand.
//!
//! Values that a sink may use as labels come from fixed sets (verbs,
//! refusal reasons, storage error kinds, transfer outcomes, hook names
//! from the config); user names, paths and addresses are there for logs,
//! never for labels.
//!
//! A session's events come with their [`Origin`] (this node's name, the
//! session's id, unique across restarts and nodes, and the client), which
//! the hooks ([`hooks`], `[[events.hooks]]`) put into what they deliver.

mod command;
pub mod hooks;
mod http;
mod payload;
pub mod runnable;
mod spool;
pub use spool::prepare_spool;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use portcullis_proto::reply::ReplyCode;
use tracing::{debug, info, warn};

use crate::endpoints::Listener;
use crate::limits::Refusal;
use crate::storage::StorageError;

/// A session's id: 64 random bits, shown as 16 hex digits. Unique across
/// restarts and nodes (unlike a counter), so that a node's log, the
/// hooks' receivers and a fleet's other nodes can name a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(u64);

impl SessionId {
    pub fn random() -> Self {
        SessionId(rand::random())
    }

    /// The id as [`Display`](std::fmt::Display) writes it (16 hex digits).
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 16 && s.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u64::from_str_radix(s, 16).ok().map(SessionId))
            .flatten()
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Where a session's events come from.
#[derive(Debug, Clone)]
pub struct Origin {
    /// `server.node_name`.
    pub node: Arc<str>,
    pub session: SessionId,
    /// The client's address (from the PROXY header behind a balancer).
    pub client: IpAddr,
    /// The logged-in account's root when it is an object store (its
    /// URL): a hook's payload names the object (`object`) beside the
    /// virtual path.
    pub object_root: Option<Arc<str>>,
}

/// Why a login failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginFailure {
    /// Unknown user, wrong password, a disabled account, or anonymous
    /// login off: which back end refused it, and why as far as it can
    /// tell (the log's; the reply is the same 530).
    Credentials(crate::auth::Denied),
    /// The account may not log in from the client's address.
    Network,
    /// The account requires TLS and the control connection is plain.
    TlsRequired,
    /// The account's root could not be opened.
    Home,
    /// The authentication back end failed.
    Backend,
    /// The account's `max_sessions` are logged in already.
    TooManySessions,
    /// The account's `tls_client_cert` refused the control connection's
    /// certificate: required and missing, or another account's.
    ClientCert,
}

/// Which way a transfer's data went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// RETR.
    Download,
    /// STOR, STOU, APPE.
    Upload,
    /// LIST, NLST, MLSD.
    Listing,
}

/// One finished (or failed) transfer.
#[derive(Debug, Clone)]
pub struct TransferRecord {
    pub user: String,
    pub peer: IpAddr,
    /// RETR, STOR, STOU, APPE, LIST, NLST, MLSD.
    pub verb: &'static str,
    pub path: String,
    pub direction: Direction,
    /// Passive (the client connected) or active (the server did).
    pub passive: bool,
    /// The data connection was TLS (PROT P).
    pub tls: bool,
    /// TYPE A: line ends converted (a file transfer; false for listings).
    pub ascii: bool,
    /// The user logged in anonymously.
    pub anonymous: bool,
    pub bytes: u64,
    pub duration: Duration,
    /// `Err` with what failed, in words.
    pub outcome: Result<(), String>,
    /// An upload's SHA-256, computed as it arrived
    /// (`limits.hash_on_upload`).
    pub sha256: Option<String>,
}

/// Something that happened.
#[derive(Debug)]
pub enum Event<'a> {
    /// A session starts on an accepted connection.
    /// (The peer is in the session's span, as on every event.)
    Connected {
        listener: Listener,
    },
    /// A connection was turned away before its session (421).
    Refused {
        peer: SocketAddr,
        reason: &'a Refusal,
    },
    /// A session ended; `reason` in words.
    Ended {
        reason: &'a str,
        /// The logged-in user, if any (a logout).
        user: Option<&'a str>,
        secs: f64,
        listener: Listener,
        /// The control connection was TLS at the end (or cleared by CCC).
        tls: bool,
        /// The control connection is TLS now, at its end (false after CCC).
        encrypted: bool,
    },
    /// The control connection became TLS (AUTH, after the handshake) or
    /// plain text again (CCC), within a session.
    ControlTls {
        listener: Listener,
        on: bool,
    },
    LoggedIn {
        user: &'a str,
        anonymous: bool,
        /// The SHA-256 fingerprint of the client certificate that belongs
        /// to the account (`tls_client_cert`), when one was presented.
        client_cert: Option<&'a str>,
    },
    LoginFailed {
        user: &'a str,
        peer: SocketAddr,
        reason: LoginFailure,
        /// The back end's or the storage's message, for the log.
        detail: Option<&'a str>,
    },
    /// An address was banned after repeated failed logins.
    Banned {
        ip: IpAddr,
        secs: u64,
    },
    /// A command was answered: `verb` from the fixed set of implemented
    /// verbs, or `other` for lines that did not parse.
    Command {
        verb: &'static str,
        code: ReplyCode,
    },
    /// A command that changes the file tree was answered (MKD, RMD, DELE,
    /// RNTO, MFMT, SITE CHMOD; STOR, APPE, STOU with the upload's final
    /// reply, or refused before it; RNFR when refused), done or refused:
    /// `code` says which. The audit log's line.
    FileOp {
        user: &'a str,
        verb: &'static str,
        /// The virtual path (RNTO: the name renamed).
        path: &'a str,
        /// RNTO: the new name.
        target: Option<&'a str>,
        code: ReplyCode,
    },
    /// A hook's event went one step further (see [`hooks`]).
    Hook {
        hook: &'a str,
        step: HookStep,
        /// The event's id.
        id: &'a str,
        /// Why it was retried or dropped.
        detail: Option<&'a str>,
    },
    /// PASV/EPSV found no free port (425).
    PassivePortsExhausted,
    /// A storage operation failed.
    Storage {
        error: &'a StorageError,
    },
    Transfer(&'a TransferRecord),
    /// SIGHUP read the config file again: `ok` when it became the live
    /// config, false when it did not validate (the old one stays).
    ConfigReload {
        ok: bool,
    },
    /// A change made through the control API (`control.rs`): the audit
    /// trail. `who` is "socket" or the TCP listener's token name.
    Control {
        who: &'a str,
        action: ControlAction<'a>,
    },
}

/// What a control action changed.
#[derive(Debug, Clone, Copy)]
pub enum ControlAction<'a> {
    /// One session kicked.
    Kick {
        session: SessionId,
    },
    /// Every session of `user` kicked: `sessions` of them.
    KickUser {
        user: &'a str,
        sessions: usize,
    },
    Ban {
        address: IpAddr,
        secs: u64,
    },
    Unban {
        address: IpAddr,
    },
    /// A reload asked for: the sections it changed, the keys that need a
    /// restart (comma-separated), or why it was refused.
    Reload {
        outcome: Result<(&'a str, &'a str), &'a str>,
    },
    /// A drain asked for.
    Drain,
    /// The roots `user` is counted on (`roots` of them) counted again.
    QuotaRescan {
        user: &'a str,
        roots: usize,
    },
}

/// The steps of a hook's event (the `step` label of
/// `portcullis_hook_events_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookStep {
    /// Matched the hook and waits for delivery.
    Queued,
    /// Delivered (a 2xx answer).
    Delivered,
    /// An attempt failed; another follows.
    Retried,
    /// Given up on: attempts or age exhausted, the queue full, or the
    /// shutdown grace over.
    Dropped,
}

impl HookStep {
    pub fn label(self) -> &'static str {
        match self {
            HookStep::Queued => "queued",
            HookStep::Delivered => "delivered",
            HookStep::Retried => "retried",
            HookStep::Dropped => "dropped",
        }
    }
}

/// Receives every event. Must be quick: it runs on the session's task.
pub trait EventSink: Send + Sync + std::fmt::Debug {
    fn event(&self, event: &Event<'_>);

    /// An event of a session; sinks that need its origin override this.
    fn event_in(&self, origin: &Origin, event: &Event<'_>) {
        let _ = origin;
        self.event(event);
    }
}

/// Every sink the server reports to.
#[derive(Debug, Clone)]
pub struct Events {
    sinks: Vec<Arc<dyn EventSink>>,
}

impl Default for Events {
    /// The log alone.
    fn default() -> Self {
        Events {
            sinks: vec![Arc::new(Log)],
        }
    }
}

impl Events {
    pub fn new(sinks: Vec<Arc<dyn EventSink>>) -> Self {
        Events { sinks }
    }

    pub fn emit(&self, event: Event<'_>) {
        for s in &self.sinks {
            s.event(&event);
        }
    }

    /// A session's event.
    pub fn emit_in(&self, origin: &Origin, event: Event<'_>) {
        for s in &self.sinks {
            s.event_in(origin, &event);
        }
    }
}

/// The kind of a storage error, from a fixed set (for labels).
pub fn storage_kind(e: &StorageError) -> &'static str {
    match e {
        StorageError::NotFound => "not_found",
        StorageError::AlreadyExists => "already_exists",
        StorageError::NotADirectory => "not_a_directory",
        StorageError::IsADirectory => "is_a_directory",
        StorageError::DirectoryNotEmpty => "directory_not_empty",
        StorageError::PermissionDenied => "permission_denied",
        StorageError::OutsideRoot => "outside_root",
        StorageError::NoSpace => "no_space",
        StorageError::QuotaExceeded => "quota_exceeded",
        StorageError::BadName => "bad_name",
        StorageError::NameTooLong => "name_too_long",
        StorageError::IntoItself => "into_itself",
        StorageError::Unavailable(_) => "unavailable",
        StorageError::Refused(_) => "refused",
        StorageError::Io(_) => "io",
    }
}

/// The server's log lines (`tracing`), inside the session's span.
#[derive(Debug, Default)]
pub struct Log;

impl EventSink for Log {
    fn event(&self, event: &Event<'_>) {
        match event {
            Event::Connected { .. } => info!("session start"),
            Event::Refused { peer, reason } => {
                info!(%peer, reason = %reason, "connection refused")
            }
            Event::Ended { reason, secs, .. } => info!(reason, secs, "session end"),
            Event::LoggedIn {
                user,
                anonymous,
                client_cert: None,
            } => info!(user, anonymous, "login"),
            Event::LoggedIn {
                user,
                anonymous,
                client_cert: Some(fingerprint),
            } => info!(user, anonymous, client_cert = fingerprint, "login"),
            Event::LoginFailed {
                user,
                peer,
                reason,
                detail,
            } => match reason {
                LoginFailure::Credentials(d) => info!(
                    user,
                    %peer,
                    backend = d.by.label(),
                    reason = d.why.text(),
                    "failed login"
                ),
                LoginFailure::Network => {
                    info!(user, %peer, "login refused: user may not log in from this address")
                }
                LoginFailure::TlsRequired => {
                    info!(user, %peer, "login refused: the account requires TLS")
                }
                LoginFailure::ClientCert => {
                    info!(
                        user,
                        %peer,
                        reason = detail.unwrap_or(""),
                        "login refused: client certificate"
                    )
                }
                LoginFailure::TooManySessions => {
                    info!(user, %peer, "login refused: the account's max_sessions are logged in already (421, not counted as a failed login)")
                }
                LoginFailure::Home => {
                    warn!(
                        user,
                        error = detail.unwrap_or(""),
                        "cannot open the user's root directory"
                    )
                }
                LoginFailure::Backend => {
                    warn!(
                        user,
                        %peer,
                        error = detail.unwrap_or(""),
                        "authentication back-end failed: answered 421, not counted as a failed login"
                    )
                }
            },
            Event::Banned { ip, secs } => {
                warn!(peer = %ip, secs, "address banned after repeated failed logins")
            }
            Event::Command { verb, code } => debug!(verb, code = code.0, "command"),
            Event::FileOp {
                user,
                verb,
                path,
                target,
                code,
            } => match target {
                None => info!(user, verb, path, code = code.0, "audit"),
                Some(to) => info!(user, verb, path, to, code = code.0, "audit"),
            },
            Event::Hook {
                hook,
                step,
                id,
                detail,
            } => match step {
                HookStep::Dropped => {
                    warn!(hook, id, error = detail.unwrap_or(""), "hook event dropped")
                }
                HookStep::Retried => info!(
                    hook,
                    id,
                    error = detail.unwrap_or(""),
                    "hook delivery failed, will retry"
                ),
                _ => debug!(hook, id, step = step.label(), "hook event"),
            },
            Event::PassivePortsExhausted => warn!("passive port range exhausted"),
            Event::Storage { error } => match error {
                StorageError::Io(e) => warn!(error = %e, "storage error"),
                StorageError::Unavailable(e) => warn!(error = %e, "object store error"),
                _ => {}
            },
            Event::Transfer(t) => {
                let result: &dyn std::fmt::Display = match &t.outcome {
                    Ok(()) => &"ok",
                    Err(e) => e,
                };
                info!(
                    user = %t.user,
                    verb = t.verb,
                    path = %t.path,
                    bytes = t.bytes,
                    secs = t.duration.as_secs_f64(),
                    passive = t.passive,
                    tls = t.tls,
                    sha256 = t.sha256.as_deref(),
                    result = %result,
                    "transfer"
                )
            }
            // server/reload.rs logs what was reloaded, or why not; the
            // session's own debug lines say when TLS starts or stops.
            Event::ConfigReload { .. } | Event::ControlTls { .. } => {}
            Event::Control { who, action } => match *action {
                ControlAction::Kick { session } => {
                    info!(who, action = "kick", %session, "control: kicked a session")
                }
                ControlAction::KickUser { user, sessions } => info!(
                    who,
                    action = "kick",
                    user,
                    sessions,
                    "control: kicked a user's sessions"
                ),
                ControlAction::Ban { address, secs } => {
                    info!(who, action = "ban", %address, secs, "control: banned an address")
                }
                ControlAction::Unban { address } => {
                    info!(who, action = "unban", %address, "control: lifted a ban")
                }
                ControlAction::Reload {
                    outcome: Ok((changed, restart)),
                } => info!(
                    who,
                    action = "reload",
                    changed,
                    restart,
                    "control: config reloaded"
                ),
                ControlAction::Reload {
                    outcome: Err(error),
                } => {
                    info!(who, action = "reload", error, "control: reload refused")
                }
                ControlAction::Drain => info!(who, action = "drain", "control: drain asked for"),
                ControlAction::QuotaRescan { user, roots } => info!(
                    who,
                    action = "quota-rescan",
                    user,
                    roots,
                    "control: quota rescan asked for"
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A sink that keeps what it is told.
    #[derive(Debug, Default)]
    struct Keep(Mutex<Vec<String>>);

    impl EventSink for Keep {
        fn event(&self, event: &Event<'_>) {
            let line = match event {
                Event::Command { verb, code } => format!("{verb} {}", code.0),
                Event::Storage { error } => storage_kind(error).to_owned(),
                other => format!("{other:?}"),
            };
            self.0.lock().unwrap().push(line);
        }
    }

    #[test]
    fn every_sink_hears_every_event() {
        let a = Arc::new(Keep::default());
        let b = Arc::new(Keep::default());
        let events = Events::new(vec![a.clone(), b.clone(), Arc::new(Log)]);
        events.emit(Event::Command {
            verb: "RETR",
            code: ReplyCode::FILE_UNAVAILABLE,
        });
        events.emit(Event::Storage {
            error: &StorageError::NoSpace,
        });
        for s in [a, b] {
            assert_eq!(*s.0.lock().unwrap(), ["RETR 550", "no_space"]);
        }
    }
}
