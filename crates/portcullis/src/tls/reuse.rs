//! Which TLS sessions a data connection may resume, with
//! `tls.require_session_reuse` (RFC 4217 section 10, as vsftpd's
//! `require_ssl_reuse`): one of its own control connection's, or one of a
//! sibling's, that is another control connection from the same client IP
//! that logged in as the same user (still open, or ended less than
//! [`SIBLING_WINDOW`] ago).
//!
//! Every control connection has its own [`SessionStore`], shared by the
//! configurations of its data connections, and joins the group of control
//! connections from its client IP when its TLS starts. A data connection
//! that presents a session the store does not hold is looked up among the
//! group; where it came from is remembered, and once the handshake is done
//! [`SessionStore::admit_resumed`] decides. A sibling still logging in (a
//! client that opens several control connections at once and shares one
//! TLS session cache among them, as rclone does, may resume a session of a
//! connection whose PASS is still on its way) is waited for, a bounded
//! time. Everything else is refused: a session of a connection that never
//! logs in, of another user, or from another address.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::server::StoresServerSessions;
use tokio::sync::Notify;

/// Resumable sessions remembered per control connection.
const SESSIONS_PER_CONTROL: usize = 32;

/// How long the sessions of a control connection that has ended may still
/// be resumed by its siblings' data connections.
pub const SIBLING_WINDOW: Duration = Duration::from_secs(300);

/// Control connections remembered per client IP; past it, one that has
/// ended (or else the oldest) is forgotten.
const PER_ADDRESS: usize = 64;

/// The resumable sessions of one control connection, least recently used
/// first.
type Entries = Mutex<VecDeque<Entry>>;

/// A session's id and value in one exact allocation: an idle control
/// connection holds eight (the TLS 1.3 tickets it was sent), and two
/// vectors each, with the encoder's spare capacity, cost it twice as much.
#[derive(Debug)]
struct Entry {
    key_len: usize,
    bytes: Box<[u8]>,
}

impl Entry {
    fn new(key: &[u8], value: &[u8]) -> Self {
        Entry {
            key_len: key.len(),
            bytes: [key, value].concat().into_boxed_slice(),
        }
    }

    fn key(&self) -> &[u8] {
        &self.bytes[..self.key_len]
    }

    fn value(&self) -> &[u8] {
        &self.bytes[self.key_len..]
    }
}

fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Find `key` in `entries` and make it the most recently used.
fn lookup(entries: &Entries, key: &[u8]) -> Option<Vec<u8>> {
    let mut e = locked(entries);
    let i = e.iter().position(|entry| entry.key() == key)?;
    let entry = e.remove(i)?;
    let value = entry.value().to_vec();
    e.push_back(entry);
    Some(value)
}

/// One control connection in its address's group.
#[derive(Debug)]
struct Member {
    entries: Arc<Entries>,
    /// Who it logged in as, once it has.
    user: Option<String>,
    /// When it ended.
    ended: Option<Instant>,
}

impl Member {
    fn expired(&self) -> bool {
        self.ended.is_some_and(|t| t.elapsed() >= SIBLING_WINDOW)
    }
}

/// The control connections from one client IP.
#[derive(Debug, Default)]
struct Group {
    members: Mutex<VecDeque<Member>>,
    /// Woken when a member logs in or ends.
    changed: Notify,
}

impl Group {
    fn with_member<T>(
        &self,
        entries: &Arc<Entries>,
        f: impl FnOnce(&mut Member) -> T,
    ) -> Option<T> {
        let mut m = locked(&self.members);
        m.iter_mut()
            .find(|s| Arc::ptr_eq(&s.entries, entries))
            .map(f)
    }

    fn is_stale(&self) -> bool {
        locked(&self.members).iter().all(Member::expired)
    }
}

/// Every address's group (see [`super::TlsContext::session_configs`]).
#[derive(Debug, Default)]
pub(super) struct Groups {
    by_ip: Mutex<(HashMap<IpAddr, Arc<Group>>, usize)>,
}

impl Groups {
    /// A store for a new control connection from `ip`, in `ip`'s group.
    pub(super) fn store(&self, ip: IpAddr) -> SessionStore {
        let group = {
            let mut g = locked(&self.by_ip);
            let (map, sweep_at) = &mut *g;
            // Groups whose members have all expired go, now and then.
            if map.len() >= *sweep_at {
                map.retain(|_, grp| !grp.is_stale());
                *sweep_at = (map.len() * 2).max(1024);
            }
            map.entry(ip.to_canonical()).or_default().clone()
        };
        let entries = Arc::new(Entries::default());
        {
            let mut m = locked(&group.members);
            m.retain(|s| !s.expired());
            if m.len() >= PER_ADDRESS {
                let i = m.iter().position(|s| s.ended.is_some()).unwrap_or(0);
                m.remove(i);
            }
            m.push_back(Member {
                entries: entries.clone(),
                user: None,
                ended: None,
            });
        }
        SessionStore {
            entries,
            group,
            resumed_from: Mutex::new(None),
        }
    }
}

/// Remembers the TLS sessions of one control connection (least recently
/// used evicted first). Unlike rustls's default cache, a TLS 1.3 ticket may
/// be used more than once: FTP clients (OpenSSL-based ones in particular)
/// resume every data connection from the control connection's session.
/// Early data is off, so a reused ticket cannot replay anything. Dropped
/// with the last of its session's configurations, when the session ends.
#[derive(Debug)]
pub struct SessionStore {
    entries: Arc<Entries>,
    group: Arc<Group>,
    /// The sibling whose session the latest handshake resumed (a session
    /// runs one data connection at a time).
    resumed_from: Mutex<Option<Arc<Entries>>>,
}

impl SessionStore {
    /// This control connection logged in as `user`.
    pub fn logged_in(&self, user: &str) {
        self.group.with_member(&self.entries, |m| {
            m.user.get_or_insert_with(|| user.to_owned());
        });
        self.group.changed.notify_waiters();
    }

    /// After a handshake that resumed a session: was it this connection's
    /// own, or a sibling's of the same user? A sibling still logging in is
    /// waited for until `deadline`.
    pub async fn admit_resumed(&self, deadline: tokio::time::Instant) -> bool {
        let Some(from) = locked(&self.resumed_from).take() else {
            return true;
        };
        let Some(Some(me)) = self.group.with_member(&self.entries, |m| m.user.clone()) else {
            return false;
        };
        loop {
            let changed = self.group.changed.notified();
            tokio::pin!(changed);
            // Registered before the look, so no change between the two is missed.
            changed.as_mut().enable();
            let state = self
                .group
                .with_member(&from, |m| (m.user.clone(), m.ended, m.expired()));
            match state {
                Some((Some(user), _, false)) => return user == me,
                // Still logging in.
                Some((None, None, _)) => {}
                _ => return false,
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return false;
            }
        }
    }
}

impl StoresServerSessions for SessionStore {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        let mut e = locked(&self.entries);
        if e.len() >= SESSIONS_PER_CONTROL {
            e.pop_front();
        }
        e.push_back(Entry::new(&key, &value));
        true
    }

    /// Least recently used goes first: a client that resumes every data
    /// connection from the same session (OpenSSL's, Python's) keeps it
    /// alive however many new tickets the server hands out. Not found
    /// here, it is looked for among the connections from the same address,
    /// and [`SessionStore::admit_resumed`] decides after the handshake.
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        *locked(&self.resumed_from) = None;
        if let Some(v) = lookup(&self.entries, key) {
            return Some(v);
        }
        let m = locked(&self.group.members);
        m.iter()
            .filter(|s| !Arc::ptr_eq(&s.entries, &self.entries) && !s.expired())
            .find_map(|s| {
                let v = lookup(&s.entries, key)?;
                *locked(&self.resumed_from) = Some(s.entries.clone());
                Some(v)
            })
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.get(key)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

impl Drop for SessionStore {
    fn drop(&mut self) {
        self.group.with_member(&self.entries, |m| {
            m.ended = Some(Instant::now());
        });
        self.group.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn store_keeps_tickets_reusable_and_bounded() {
        let s = Groups::default().store(ip("127.0.0.1"));
        assert!(s.put(b"a".to_vec(), b"1".to_vec()));
        assert_eq!(s.take(b"a"), Some(b"1".to_vec()));
        assert_eq!(s.take(b"a"), Some(b"1".to_vec()));
        for i in 0..SESSIONS_PER_CONTROL {
            s.put(vec![i as u8, 0xff], vec![]);
            // Used all along: never the least recently used.
            assert!(s.get(b"a").is_some(), "a session in use was evicted");
        }
        assert_eq!(s.get(&[0, 0xff]), None, "the least recently used goes");
    }

    /// Resume session `key` on `store`'s data connection: admitted?
    async fn resumes(store: &SessionStore, key: u8) -> bool {
        store.get(&[key]).is_some()
            && store
                .admit_resumed(tokio::time::Instant::now() + Duration::from_millis(200))
                .await
    }

    #[tokio::test]
    async fn sessions_are_shared_only_by_siblings_of_the_same_user() {
        let groups = Groups::default();
        // 0, 1: alice; 2: bob; 3: alice from another address; 4: never logs in.
        let ips = [
            "127.0.0.1",
            "127.0.0.1",
            "127.0.0.1",
            "127.0.0.2",
            "127.0.0.1",
        ];
        let stores: Vec<SessionStore> = ips.iter().map(|a| groups.store(ip(a))).collect();
        for (i, s) in stores.iter().enumerate() {
            s.put(vec![i as u8], vec![i as u8]);
        }
        for (i, user) in [(0, "alice"), (1, "alice"), (2, "bob"), (3, "alice")] {
            stores[i].logged_in(user);
        }
        assert!(resumes(&stores[0], 1).await && resumes(&stores[1], 0).await);
        assert!(resumes(&stores[0], 0).await, "its own");
        for (c, key) in [(0, 2), (2, 0), (0, 3), (3, 0), (2, 4)] {
            assert!(
                !resumes(&stores[c], key).await,
                "{c} resumed {key}'s session"
            );
        }
        // 4 never logs in: refused once the wait is over.
        let started = std::time::Instant::now();
        assert!(!resumes(&stores[0], 4).await);
        assert!(started.elapsed() >= Duration::from_millis(200));
        // An ended sibling's sessions stay resumable for a while.
        let mut stores = stores;
        drop(stores.remove(1));
        assert!(resumes(&stores[0], 1).await);
    }

    #[tokio::test]
    async fn a_sibling_still_logging_in_is_waited_for() {
        let groups = Arc::new(Groups::default());
        let a = Arc::new(groups.store(ip("127.0.0.1")));
        let b = Arc::new(groups.store(ip("127.0.0.1")));
        a.logged_in("alice");
        b.put(vec![7], vec![7]);
        assert!(a.get(&[7]).is_some());
        let waiter = {
            let a = a.clone();
            tokio::spawn(async move {
                a.admit_resumed(tokio::time::Instant::now() + Duration::from_secs(5))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        b.logged_in("alice");
        assert!(waiter.await.unwrap(), "admitted once the sibling logged in");
        // A sibling that ends without logging in is refused at once.
        let c = groups.store(ip("127.0.0.1"));
        c.put(vec![8], vec![8]);
        assert!(a.get(&[8]).is_some());
        drop(c);
        let started = std::time::Instant::now();
        assert!(
            !a.admit_resumed(tokio::time::Instant::now() + Duration::from_secs(5))
                .await
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
