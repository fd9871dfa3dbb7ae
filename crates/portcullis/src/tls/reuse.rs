//! Which TLS sessions a data connection may resume, with
//! `tls.require_session_reuse` (RFC 4217 section 10, as vsftpd's
//! `require_ssl_reuse`): one of its own control connection's, or one of a
//! sibling's, that is another control connection from the same client IP
//! that logged in as the same user (still open, or ended less than
//! [`SIBLING_WINDOW`] ago).
//!
//! Every control connection has its own [`SessionStore`], shared by the
//! configurations of its data connections, and joins the group of control
//! connections from its client IP when its TLS starts. The store is also
//! the connection's ticketer: a ticket (TLS 1.3, and TLS 1.2 clients that
//! take them) holds the session itself, encrypted by rustls's ticketer
//! together with the id of the control connection it was issued on, so an
//! idle connection keeps nothing per ticket. TLS 1.2 sessions without a
//! ticket are kept by id in the store. A data connection that presents a
//! session of another control connection is looked up among the group;
//! where it came from is remembered, and once the handshake is done
//! [`SessionStore::admit_resumed`] decides. A sibling still logging in (a
//! client that opens several control connections at once and shares one
//! TLS session cache among them, as rclone does, may resume a session of a
//! connection whose PASS is still on its way) is waited for, a bounded
//! time. Everything else is refused: a session of a connection that never
//! logs in, of another user, or from another address.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::server::{ProducesTickets, StoresServerSessions};
use tokio::sync::Notify;

/// TLS 1.2 sessions without a ticket remembered per control connection.
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

/// A session's id and value in one exact allocation (two vectors, with the
/// encoder's spare capacity, cost twice as much).
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

/// Which control connection a ticket was issued on: unique in the process.
type MemberId = u64;

static NEXT_MEMBER: AtomicU64 = AtomicU64::new(0);

/// One control connection in its address's group.
#[derive(Debug)]
struct Member {
    id: MemberId,
    /// Its TLS 1.2 sessions without a ticket.
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
    fn with_member<T>(&self, id: MemberId, f: impl FnOnce(&mut Member) -> T) -> Option<T> {
        let mut m = locked(&self.members);
        m.iter_mut().find(|s| s.id == id).map(f)
    }

    fn is_stale(&self) -> bool {
        locked(&self.members).iter().all(Member::expired)
    }
}

/// Every address's group (see [`super::TlsContext::session_configs`]),
/// and the ticketer that encrypts every ticket.
#[derive(Debug)]
pub(super) struct Groups {
    by_ip: Mutex<(HashMap<IpAddr, Arc<Group>>, usize)>,
    tickets: Arc<dyn ProducesTickets>,
}

impl Groups {
    /// `tickets` encrypts and authenticates the tickets (rustls's, with
    /// keys that it rotates).
    pub(super) fn new(tickets: Arc<dyn ProducesTickets>) -> Self {
        Groups {
            by_ip: Mutex::default(),
            tickets,
        }
    }

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
        let id = NEXT_MEMBER.fetch_add(1, Ordering::Relaxed);
        {
            let mut m = locked(&group.members);
            m.retain(|s| !s.expired());
            if m.len() >= PER_ADDRESS {
                let i = m.iter().position(|s| s.ended.is_some()).unwrap_or(0);
                m.remove(i);
            }
            m.push_back(Member {
                id,
                entries: entries.clone(),
                user: None,
                ended: None,
            });
        }
        SessionStore {
            id,
            entries,
            group,
            tickets: self.tickets.clone(),
            resumed_from: Mutex::new(None),
        }
    }
}

/// The TLS sessions of one control connection: its ticketer, and its
/// TLS 1.2 sessions without a ticket (least recently used evicted first).
/// A ticket may be used more than once: FTP clients (OpenSSL-based ones in
/// particular) resume every data connection from the control connection's
/// session. Early data is off, so a reused ticket cannot replay anything.
/// Dropped with the last of its session's configurations, when the session
/// ends.
#[derive(Debug)]
pub struct SessionStore {
    id: MemberId,
    entries: Arc<Entries>,
    group: Arc<Group>,
    tickets: Arc<dyn ProducesTickets>,
    /// The sibling whose session the latest handshake resumed (a session
    /// runs one data connection at a time).
    resumed_from: Mutex<Option<MemberId>>,
}

impl SessionStore {
    /// This control connection logged in as `user`.
    pub fn logged_in(&self, user: &str) {
        self.group.with_member(self.id, |m| {
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
        let Some(Some(me)) = self.group.with_member(self.id, |m| m.user.clone()) else {
            return false;
        };
        loop {
            let changed = self.group.changed.notified();
            tokio::pin!(changed);
            // Registered before the look, so no change between the two is missed.
            changed.as_mut().enable();
            let state = self
                .group
                .with_member(from, |m| (m.user.clone(), m.ended, m.expired()));
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
            .filter(|s| s.id != self.id && !s.expired())
            .find_map(|s| {
                let v = lookup(&s.entries, key)?;
                *locked(&self.resumed_from) = Some(s.id);
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

/// A ticket is rustls's ticketer's encryption of the issuing control
/// connection's id and the session. Decrypted by another control
/// connection's data connection, it is resumed only from a sibling in the
/// same group (and [`SessionStore::admit_resumed`] decides after the
/// handshake), as a session found by id.
impl ProducesTickets for SessionStore {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.tickets.lifetime()
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        self.tickets
            .encrypt(&[&self.id.to_be_bytes()[..], plain].concat())
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        let mut plain = self.tickets.decrypt(cipher)?;
        let (id, _) = plain.split_first_chunk::<8>()?;
        let from = MemberId::from_be_bytes(*id);
        let sibling = from != self.id;
        if sibling
            && !locked(&self.group.members)
                .iter()
                .any(|s| s.id == from && !s.expired())
        {
            return None;
        }
        *locked(&self.resumed_from) = sibling.then_some(from);
        plain.drain(..8);
        Some(plain)
    }
}

impl Drop for SessionStore {
    fn drop(&mut self) {
        self.group.with_member(self.id, |m| {
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

    fn test_groups() -> Groups {
        Groups::new(rustls::crypto::ring::Ticketer::new().unwrap())
    }

    #[test]
    fn store_keeps_tickets_reusable_and_bounded() {
        let s = test_groups().store(ip("127.0.0.1"));
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
        let groups = test_groups();
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
        let groups = Arc::new(test_groups());
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

    /// Resume ticket `ticket` on `store`'s data connection: admitted?
    async fn resumes_ticket(store: &SessionStore, ticket: &[u8]) -> Option<Vec<u8>> {
        let plain = store.decrypt(ticket)?;
        store
            .admit_resumed(tokio::time::Instant::now() + Duration::from_millis(200))
            .await
            .then_some(plain)
    }

    #[tokio::test]
    async fn tickets_carry_the_session_and_are_resumed_only_by_siblings() {
        let groups = test_groups();
        // 0, 1: alice; 2: bob; 3: alice from another address.
        let ips = ["127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.2"];
        let stores: Vec<SessionStore> = ips.iter().map(|a| groups.store(ip(a))).collect();
        for (i, user) in [(0, "alice"), (1, "alice"), (2, "bob"), (3, "alice")] {
            stores[i].logged_in(user);
        }
        let tickets: Vec<Vec<u8>> = stores
            .iter()
            .map(|s| s.encrypt(b"session").unwrap())
            .collect();
        assert!(!tickets[0].windows(7).any(|w| w == b"session"));
        // Its own, many times (an OpenSSL client resumes every data
        // connection from one ticket), and a sibling's of the same user.
        for _ in 0..3 {
            assert_eq!(
                resumes_ticket(&stores[0], &tickets[0]).await.unwrap(),
                b"session"
            );
        }
        assert!(resumes_ticket(&stores[0], &tickets[1]).await.is_some());
        assert!(resumes_ticket(&stores[1], &tickets[0]).await.is_some());
        // Another user's, another address's: refused.
        for (c, t) in [(0, 2), (2, 0), (0, 3), (3, 0)] {
            assert!(
                resumes_ticket(&stores[c], &tickets[t]).await.is_none(),
                "{c} resumed {t}'s ticket"
            );
        }
        // A ticket altered in flight, or of another server, does not decrypt.
        let mut bad = tickets[0].clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(stores[0].decrypt(&bad).is_none());
        let other = test_groups().store(ip("127.0.0.1"));
        assert!(other.decrypt(&tickets[0]).is_none());
        // An ended sibling's tickets stay good for the window.
        let mut stores = stores;
        let t1 = tickets[1].clone();
        drop(stores.remove(1));
        assert!(resumes_ticket(&stores[0], &t1).await.is_some());
    }
}
