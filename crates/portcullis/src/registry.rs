//! The live sessions, for the control plane: each session's driver
//! registers itself when it starts (its id, client, listener) and keeps a
//! small record up to date (the user at login, the command and its time,
//! the running transfer); the control API lists them and kicks them
//! through [`SessionRegistry`]. With `[cluster]`, [`fleet`] puts the
//! control API's questions to every live node's registry over the
//! cluster's bus.
//!
//! Cost on the hot path: one short lock per command and per transfer's
//! start and end, none per write: a transfer's byte count is the atomic
//! counter the transfer already keeps (`session/job.rs`), read only when
//! someone lists the sessions.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::endpoints::Listener;
use crate::events::SessionId;

pub mod fleet;

/// Where sessions are listed and kicked. This process's own is
/// [`LocalRegistry`]; a fleet's may ask other nodes too.
pub trait SessionRegistry: Send + Sync + std::fmt::Debug {
    /// Every live session, oldest first.
    fn list(&self) -> Vec<SessionView>;
    /// Close the session `id` (421; its transfer cut). `false`: no such
    /// session.
    fn kick(&self, id: SessionId) -> bool;
    /// Close every session logged in as `user`; how many there were.
    fn kick_user(&self, user: &str) -> usize;
}

/// One session as the control plane shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SessionView {
    pub id: String,
    /// `null` before login.
    pub user: Option<String>,
    pub client: String,
    pub listener: &'static str,
    pub tls: bool,
    /// RFC 3339, UTC.
    pub since: String,
    /// Seconds since the last whole command (or since connect).
    pub idle_secs: f64,
    /// The verb of the command last received (never its argument).
    pub command: Option<String>,
    /// `null` when idle.
    pub transfer: Option<TransferView>,
}

/// A transfer in progress.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TransferView {
    pub path: String,
    /// `upload` or `download`.
    pub direction: &'static str,
    pub bytes: u64,
    /// Bytes per second since it started.
    pub rate: u64,
}

/// What one session keeps up to date for the registry.
#[derive(Debug)]
pub struct Entry {
    id: SessionId,
    client: SocketAddr,
    listener: Listener,
    since: SystemTime,
    kick: CancellationToken,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    user: Option<String>,
    tls: bool,
    last_command: Instant,
    command: Option<String>,
    transfer: Option<Moving>,
}

#[derive(Debug)]
struct Moving {
    path: String,
    upload: bool,
    started: Instant,
    bytes: Arc<AtomicU64>,
}

impl Entry {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Resolves once the session has been kicked.
    pub fn kicked(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.kick.cancelled()
    }

    pub fn is_kicked(&self) -> bool {
        self.kick.is_cancelled()
    }

    /// A whole command arrived: its verb (the first word, at most 8
    /// characters, upper-cased; never the argument, which may be a password).
    pub fn command(&self, line: &[u8]) {
        let verb: String = line
            .split(|b| *b == b' ')
            .next()
            .unwrap_or_default()
            .iter()
            .take(8)
            .filter(|b| b.is_ascii_alphanumeric())
            .map(|b| b.to_ascii_uppercase() as char)
            .collect();
        let mut s = self.state();
        s.last_command = Instant::now();
        s.command = Some(verb);
    }

    /// Logged in as `user` (or no longer: `None`, after REIN).
    pub fn user(&self, user: Option<&str>) {
        let mut s = self.state();
        if s.user.as_deref() != user {
            s.user = user.map(str::to_owned);
        }
    }

    pub fn tls(&self, on: bool) {
        self.state().tls = on;
    }

    /// A transfer started; `bytes` is its own counter.
    pub fn transfer(&self, path: String, upload: bool, bytes: Arc<AtomicU64>) {
        self.state().transfer = Some(Moving {
            path,
            upload,
            started: Instant::now(),
            bytes,
        });
    }

    pub fn transfer_done(&self) {
        self.state().transfer = None;
    }

    fn view(&self) -> SessionView {
        let s = self.state();
        SessionView {
            id: self.id.to_string(),
            user: s.user.clone(),
            client: self.client.to_string(),
            listener: self.listener.label(),
            tls: s.tls,
            since: humantime::format_rfc3339_seconds(self.since).to_string(),
            idle_secs: (s.last_command.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            command: s.command.clone(),
            transfer: s.transfer.as_ref().map(|t| {
                let bytes = t.bytes.load(Ordering::Relaxed);
                let secs = t.started.elapsed().as_secs_f64();
                TransferView {
                    path: t.path.clone(),
                    direction: if t.upload { "upload" } else { "download" },
                    bytes,
                    rate: if secs > 0.0 {
                        (bytes as f64 / secs) as u64
                    } else {
                        0
                    },
                }
            }),
        }
    }
}

/// This process's sessions.
#[derive(Debug, Default)]
pub struct LocalRegistry {
    sessions: Mutex<HashMap<SessionId, Arc<Entry>>>,
}

/// A session's place in the registry; dropping it (the session's end)
/// takes the session out.
#[derive(Debug)]
pub struct Registration {
    registry: Arc<LocalRegistry>,
    pub entry: Arc<Entry>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.registry.map().remove(&self.entry.id);
    }
}

impl LocalRegistry {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Arc<Entry>>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A session starts.
    pub fn register(
        self: &Arc<Self>,
        id: SessionId,
        client: SocketAddr,
        listener: Listener,
        tls: bool,
    ) -> Registration {
        let entry = Arc::new(Entry {
            id,
            client,
            listener,
            since: SystemTime::now(),
            kick: CancellationToken::new(),
            state: Mutex::new(State {
                user: None,
                tls,
                last_command: Instant::now(),
                command: None,
                transfer: None,
            }),
        });
        self.map().insert(id, entry.clone());
        Registration {
            registry: self.clone(),
            entry,
        }
    }

    /// Sessions now, and of those, how many are transferring.
    pub fn counts(&self) -> (usize, usize) {
        let m = self.map();
        let moving = m.values().filter(|e| e.state().transfer.is_some()).count();
        (m.len(), moving)
    }
}

impl SessionRegistry for LocalRegistry {
    fn list(&self) -> Vec<SessionView> {
        let entries: Vec<Arc<Entry>> = self.map().values().cloned().collect();
        let mut v: Vec<(SystemTime, SessionView)> =
            entries.iter().map(|e| (e.since, e.view())).collect();
        v.sort_by_key(|(since, _)| *since);
        v.into_iter().map(|(_, s)| s).collect()
    }

    fn kick(&self, id: SessionId) -> bool {
        match self.map().get(&id) {
            Some(e) => {
                e.kick.cancel();
                true
            }
            None => false,
        }
    }

    fn kick_user(&self, user: &str) -> usize {
        let m = self.map();
        let mine: Vec<&Arc<Entry>> = m
            .values()
            .filter(|e| e.state().user.as_deref() == Some(user))
            .collect();
        for e in &mine {
            e.kick.cancel();
        }
        mine.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_list_kick_and_leave() {
        let r = Arc::new(LocalRegistry::default());
        let id = SessionId::random();
        let reg = r.register(
            id,
            "127.0.0.1:5000".parse().unwrap(),
            Listener::Explicit,
            false,
        );
        reg.entry.command(b"PASS secret");
        reg.entry.user(Some("alice"));
        let bytes = Arc::new(AtomicU64::new(0));
        reg.entry.transfer("/f".into(), true, bytes.clone());
        bytes.store(42, Ordering::Relaxed);
        let l = r.list();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].id, id.to_string());
        assert_eq!(l[0].user.as_deref(), Some("alice"));
        assert_eq!(l[0].command.as_deref(), Some("PASS"));
        let t = l[0].transfer.as_ref().unwrap();
        assert_eq!(
            (t.path.as_str(), t.direction, t.bytes),
            ("/f", "upload", 42)
        );
        assert_eq!(r.counts(), (1, 1));
        assert!(!r.kick(SessionId::random()));
        assert_eq!(r.kick_user("bob"), 0);
        assert_eq!(r.kick_user("alice"), 1);
        assert!(reg.entry.is_kicked());
        drop(reg);
        assert!(r.list().is_empty());
    }
}
