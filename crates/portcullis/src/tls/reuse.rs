//! Which TLS sessions a data connection may resume, with
//! `tls.require_session_reuse` (RFC 4217 section 10, as vsftpd's
//! `require_ssl_reuse`): one of its own control connection's, or one of a
//! sibling's, that is another control connection from the same client IP
//! that logged in as the same user (still open, or ended less than
//! [`SIBLING_WINDOW`] ago).
//!
//! Every control connection has its own [`SessionStore`], and joins the
//! group of control connections from its client IP when its TLS starts.
//! Each handshake, the control connection's and each data connection's,
//! has a [`Handshake`] of the store as its session storage and ticketer: a
//! ticket (TLS 1.3, and TLS 1.2 clients that take them) holds the session
//! itself, encrypted by rustls's ticketer together with the id of the
//! control connection and the number of the handshake it was issued in,
//! so an idle connection keeps nothing per ticket. TLS 1.2 sessions
//! without a ticket are kept by id in the store.
//!
//! A data connection's handshake is over before it can be refused, and a
//! refused one (a stranger who raced to the passive port) has been sent
//! tickets all the same: they are good only once that data connection has
//! been admitted ([`Handshake::admitted`]), and a data connection's
//! session without a ticket is never kept. So a stranger is refused again
//! with what it was given. A ticket of a data connection still being
//! decided on (a client with several connections, as rclone, may present
//! it at once on another) waits for that decision.
//!
//! A data connection that presents a session of another control
//! connection is looked up among the group; where it came from is
//! remembered, and once the handshake is done
//! [`Handshake::admit_resumed`] decides. A sibling still logging in (a
//! client that opens several control connections at once and shares one
//! TLS session cache among them, as rclone does, may resume a session of a
//! connection whose PASS is still on its way) is waited for, a bounded
//! time. Everything else is refused: a session of a connection that never
//! logs in, of another user, or from another address.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
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

/// What a control connection's store and its member in the group share:
/// its TLS 1.2 sessions without a ticket, and its data connections'
/// generations. Its own handshakes reach them through the store, whether
/// or not the group still has the member.
#[derive(Debug, Default)]
struct Own {
    entries: Entries,
    generations: Mutex<Generations>,
}

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

/// Data connections whose tickets a member remembers (the latest this
/// many issued).
const GENERATIONS: u64 = 64;

/// The data connections of a member, numbered from 1 as they are set up,
/// and what became of the latest [`GENERATIONS`]: their tickets are good
/// once they have been admitted, no good once refused, and waited for
/// while undecided. The control connection's own (0) are always good.
#[derive(Debug, Default, Clone, Copy)]
struct Generations {
    /// The number of the latest data connection.
    latest: u64,
    /// Bit `n`: data connection `latest - n` was decided on.
    decided: u64,
    /// Bit `n`: and it was admitted.
    admitted: u64,
}

/// A ticket's standing, from the handshake that issued it.
#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Standing {
    Good,
    Undecided,
    Bad,
}

impl Generations {
    /// Number a new data connection.
    fn issue(&mut self) -> u64 {
        self.latest += 1;
        self.decided <<= 1;
        self.admitted <<= 1;
        self.latest
    }

    fn decide(&mut self, generation: u64, admitted: bool) {
        let Some(age) = self
            .latest
            .checked_sub(generation)
            .filter(|a| *a < GENERATIONS)
        else {
            return;
        };
        self.decided |= 1 << age;
        if admitted {
            self.admitted |= 1 << age;
        }
    }

    fn standing(&self, generation: u64) -> Standing {
        if generation == 0 {
            return Standing::Good;
        }
        let Some(age) = self
            .latest
            .checked_sub(generation)
            .filter(|a| *a < GENERATIONS)
        else {
            return Standing::Bad;
        };
        match (self.decided >> age & 1, self.admitted >> age & 1) {
            (0, _) => Standing::Undecided,
            (_, 1) => Standing::Good,
            _ => Standing::Bad,
        }
    }
}

/// One control connection in its address's group.
#[derive(Debug)]
struct Member {
    id: MemberId,
    /// Its TLS 1.2 sessions without a ticket, and which of its handshakes'
    /// tickets are good.
    own: Arc<Own>,
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
        let own = Arc::new(Own::default());
        let id = NEXT_MEMBER.fetch_add(1, Ordering::Relaxed);
        {
            let mut m = locked(&group.members);
            m.retain(|s| !s.expired());
            if m.len() >= PER_ADDRESS {
                // One that has ended, else one that has not logged in
                // (connections that never log in cannot push out one
                // whose sessions its siblings resume), else the oldest.
                let i = m
                    .iter()
                    .position(|s| s.ended.is_some())
                    .or_else(|| m.iter().position(|s| s.user.is_none()))
                    .unwrap_or(0);
                m.remove(i);
            }
            m.push_back(Member {
                id,
                own: own.clone(),
                user: None,
                ended: None,
            });
        }
        SessionStore {
            id,
            own,
            group,
            tickets: self.tickets.clone(),
        }
    }
}

/// The TLS sessions of one control connection: its TLS 1.2 sessions
/// without a ticket (least recently used evicted first) and what its
/// handshakes' tickets are sealed with. A session may be resumed more than
/// once: FTP clients (OpenSSL-based ones in particular) resume every data
/// connection from the control connection's session. Early data is off,
/// so a reused ticket cannot replay anything. Dropped with the last of its
/// session's configurations, when the session ends.
#[derive(Debug)]
pub struct SessionStore {
    id: MemberId,
    own: Arc<Own>,
    group: Arc<Group>,
    tickets: Arc<dyn ProducesTickets>,
}

impl SessionStore {
    /// This control connection logged in as `user`.
    pub fn logged_in(&self, user: &str) {
        self.group.with_member(self.id, |m| {
            m.user.get_or_insert_with(|| user.to_owned());
        });
        self.group.changed.notify_waiters();
    }

    /// The session storage and ticketer of one handshake: the control
    /// connection's own (`data` false), or a data connection's.
    pub fn handshake(self: &Arc<Self>, data: bool) -> Arc<Handshake> {
        Arc::new(Handshake {
            store: self.clone(),
            data,
            generation: match data {
                true => OnceLock::new(),
                false => OnceLock::from(0),
            },
            resumed: Mutex::new(None),
        })
    }

    /// Where the tickets of `from`'s handshake `generation` stand: its own
    /// from the store, a sibling's (not expired) from the group.
    fn standing(&self, from: MemberId, generation: u64) -> Standing {
        if from == self.id {
            return locked(&self.own.generations).standing(generation);
        }
        self.group
            .with_member(from, |m| match m.expired() {
                true => Standing::Bad,
                false => locked(&m.own.generations).standing(generation),
            })
            .unwrap_or(Standing::Bad)
    }
}

/// One handshake's view of its control connection's [`SessionStore`]: its
/// rustls session storage and ticketer.
#[derive(Debug)]
pub struct Handshake {
    store: Arc<SessionStore>,
    /// A data connection's.
    data: bool,
    /// 0 for the control connection's handshake; a data connection's is
    /// numbered when it issues its first ticket (under TLS 1.3 an upload
    /// issues none), and its tickets are good once it has been admitted.
    generation: OnceLock<u64>,
    /// Whose session it resumed and from which of its handshakes (0 for
    /// a session without a ticket), unless its own control connection's
    /// session without a ticket.
    resumed: Mutex<Option<(MemberId, u64)>>,
}

impl Handshake {
    /// After a handshake that resumed a session: was it this connection's
    /// own, or a sibling's of the same user, from a handshake whose tickets
    /// are good? A sibling still logging in, and a data connection whose
    /// tickets are still undecided, are waited for until `deadline`.
    pub async fn admit_resumed(&self, deadline: tokio::time::Instant) -> bool {
        let Some((from, generation)) = locked(&self.resumed).take() else {
            return true;
        };
        let store = &self.store;
        loop {
            let changed = store.group.changed.notified();
            tokio::pin!(changed);
            // Registered before the look, so no change between the two is missed.
            changed.as_mut().enable();
            match store.standing(from, generation) {
                Standing::Bad => return false,
                Standing::Undecided => {}
                Standing::Good if from == store.id => return true,
                Standing::Good => {
                    let me = store.group.with_member(store.id, |m| m.user.clone());
                    let state = store
                        .group
                        .with_member(from, |m| (m.user.clone(), m.ended, m.expired()));
                    match (state, me) {
                        (Some((Some(user), _, false)), Some(Some(me))) => return user == me,
                        // Still logging in.
                        (Some((None, None, _)), Some(Some(_))) => {}
                        _ => return false,
                    }
                }
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return false;
            }
        }
    }
}

impl Handshake {
    /// The data connection was admitted: the tickets its handshake issued
    /// are good from now on. One that never is (refused, or its handshake
    /// failed) has them made no good when it is dropped.
    pub fn admitted(&self) {
        self.decide(true);
    }

    /// Decide on a data connection that issued tickets: once, so the
    /// drop of an admitted one changes nothing.
    fn decide(&self, admitted: bool) {
        let Some(&generation) = self.generation.get().filter(|_| self.data) else {
            return;
        };
        let store = &self.store;
        {
            let mut g = locked(&store.own.generations);
            if g.standing(generation) != Standing::Undecided {
                return;
            }
            g.decide(generation, admitted);
        }
        store.group.changed.notify_waiters();
    }

    /// This handshake's number, given it when it issues its first ticket.
    fn generation(&self) -> u64 {
        *self
            .generation
            .get_or_init(|| locked(&self.store.own.generations).issue())
    }
}

impl Drop for Handshake {
    fn drop(&mut self) {
        self.decide(false);
    }
}

impl StoresServerSessions for Handshake {
    /// A data connection's session is not kept: it was made by a full
    /// handshake, which a data connection is refused for, so its holder
    /// may be a stranger.
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        if self.data {
            return false;
        }
        let mut e = locked(&self.store.own.entries);
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
        *locked(&self.resumed) = None;
        if let Some(v) = lookup(&self.store.own.entries, key) {
            return Some(v);
        }
        let m = locked(&self.store.group.members);
        m.iter()
            .filter(|s| s.id != self.store.id && !s.expired())
            .find_map(|s| {
                let v = lookup(&s.own.entries, key)?;
                *locked(&self.resumed) = Some((s.id, 0));
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
/// connection's id, the issuing handshake's number and the session. It is
/// good if that handshake's tickets are (see [`Generations`]), and resumed
/// by another control connection's data connection only from a sibling in
/// the same group (then [`Handshake::admit_resumed`] decides after the
/// handshake), as a session found by id.
impl ProducesTickets for Handshake {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.store.tickets.lifetime()
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let id = self.store.id.to_be_bytes();
        let generation = self.generation().to_be_bytes();
        self.store
            .tickets
            .encrypt(&[&id[..], &generation[..], plain].concat())
    }

    fn decrypt(&self, cipher: &[u8]) -> Option<Vec<u8>> {
        let mut plain = self.store.tickets.decrypt(cipher)?;
        let (id, rest) = plain.split_first_chunk::<8>()?;
        let (generation, _) = rest.split_first_chunk::<8>()?;
        let from = MemberId::from_be_bytes(*id);
        let generation = u64::from_be_bytes(*generation);
        // Undecided: admit_resumed waits for the decision.
        if self.store.standing(from, generation) == Standing::Bad {
            return None;
        }
        *locked(&self.resumed) = Some((from, generation));
        plain.drain(..16);
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

    fn store(groups: &Groups, addr: &str) -> Arc<SessionStore> {
        Arc::new(groups.store(ip(addr)))
    }

    /// A data connection's handshake on `store` presents `key` (a TLS 1.2
    /// session ID): admitted?
    async fn resumes(store: &Arc<SessionStore>, key: u8) -> bool {
        let h = store.handshake(true);
        h.get(&[key]).is_some() && h.admit_resumed(soon()).await
    }

    fn soon() -> tokio::time::Instant {
        tokio::time::Instant::now() + Duration::from_millis(200)
    }

    #[test]
    fn store_keeps_sessions_reusable_and_bounded() {
        let s = store(&test_groups(), "127.0.0.1");
        let control = s.handshake(false);
        assert!(control.put(b"a".to_vec(), b"1".to_vec()));
        let data = s.handshake(true);
        assert_eq!(data.take(b"a"), Some(b"1".to_vec()));
        assert_eq!(data.take(b"a"), Some(b"1".to_vec()));
        for i in 0..SESSIONS_PER_CONTROL {
            control.put(vec![i as u8, 0xff], vec![]);
            // Used all along: never the least recently used.
            assert!(data.get(b"a").is_some(), "a session in use was evicted");
        }
        assert_eq!(data.get(&[0, 0xff]), None, "the least recently used goes");
        // A data connection's own session (a full handshake) is not kept.
        assert!(!data.put(b"d".to_vec(), b"2".to_vec()));
        assert_eq!(data.get(b"d"), None);
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
        let stores: Vec<Arc<SessionStore>> = ips.iter().map(|a| store(&groups, a)).collect();
        for (i, s) in stores.iter().enumerate() {
            s.handshake(false).put(vec![i as u8], vec![i as u8]);
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
        let groups = test_groups();
        let a = store(&groups, "127.0.0.1");
        let b = store(&groups, "127.0.0.1");
        a.logged_in("alice");
        b.handshake(false).put(vec![7], vec![7]);
        let h = a.handshake(true);
        assert!(h.get(&[7]).is_some());
        let waiter = tokio::spawn(async move {
            h.admit_resumed(tokio::time::Instant::now() + Duration::from_secs(5))
                .await
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        b.logged_in("alice");
        assert!(waiter.await.unwrap(), "admitted once the sibling logged in");
        // A sibling that ends without logging in is refused at once.
        let c = store(&groups, "127.0.0.1");
        c.handshake(false).put(vec![8], vec![8]);
        let h = a.handshake(true);
        assert!(h.get(&[8]).is_some());
        drop(c);
        let started = std::time::Instant::now();
        assert!(
            !h.admit_resumed(tokio::time::Instant::now() + Duration::from_secs(5))
                .await
        );
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    /// A data connection's handshake on `store` presents `ticket`: the
    /// session, if admitted.
    async fn resumes_ticket(store: &Arc<SessionStore>, ticket: &[u8]) -> Option<Vec<u8>> {
        let h = store.handshake(true);
        let plain = h.decrypt(ticket)?;
        h.admit_resumed(soon()).await.then_some(plain)
    }

    #[tokio::test]
    async fn tickets_carry_the_session_and_are_resumed_only_by_siblings() {
        let groups = test_groups();
        // 0, 1: alice; 2: bob; 3: alice from another address.
        let ips = ["127.0.0.1", "127.0.0.1", "127.0.0.1", "127.0.0.2"];
        let stores: Vec<Arc<SessionStore>> = ips.iter().map(|a| store(&groups, a)).collect();
        for (i, user) in [(0, "alice"), (1, "alice"), (2, "bob"), (3, "alice")] {
            stores[i].logged_in(user);
        }
        let tickets: Vec<Vec<u8>> = stores
            .iter()
            .map(|s| s.handshake(false).encrypt(b"session").unwrap())
            .collect();
        assert!(!tickets[0].windows(7).any(|w| w == b"session"));
        // Its own, many times (an OpenSSL client resumes every data
        // connection from one ticket), and a sibling's of the same user.
        for _ in 0..3 {
            let got = resumes_ticket(&stores[0], &tickets[0]).await;
            assert_eq!(got.unwrap(), b"session");
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
        assert!(stores[0].handshake(true).decrypt(&bad).is_none());
        let other = store(&test_groups(), "127.0.0.1");
        assert!(other.handshake(true).decrypt(&tickets[0]).is_none());
        // An ended sibling's tickets stay good for the window.
        let mut stores = stores;
        let t1 = tickets[1].clone();
        drop(stores.remove(1));
        assert!(resumes_ticket(&stores[0], &t1).await.is_some());
    }

    /// The tickets of a data connection's handshake (a stranger who raced
    /// to the passive port is sent them too) are good only once it has
    /// been admitted, no good once it is refused (dropped undecided), and
    /// waited for while undecided; the latest GENERATIONS are remembered.
    #[tokio::test]
    async fn a_data_connections_tickets_are_good_once_it_is_admitted() {
        let groups = test_groups();
        let s = store(&groups, "127.0.0.1");
        s.logged_in("alice");
        let sibling = store(&groups, "127.0.0.1");
        sibling.logged_in("alice");
        // Refused: its tickets are no good, here and on a sibling.
        let refused = s.handshake(true);
        let stolen = refused.encrypt(b"stranger's").unwrap();
        drop(refused);
        assert!(s.handshake(true).decrypt(&stolen).is_none());
        assert!(sibling.handshake(true).decrypt(&stolen).is_none());
        // Admitted: good, here and on a sibling.
        let data = s.handshake(true);
        let ticket = data.encrypt(b"client's").unwrap();
        data.admitted();
        drop(data);
        assert_eq!(resumes_ticket(&s, &ticket).await.unwrap(), b"client's");
        assert!(resumes_ticket(&sibling, &ticket).await.is_some());
        // Undecided: waited for, then admitted or refused.
        for admit in [true, false] {
            let pending = s.handshake(true);
            let early = pending.encrypt(b"early").unwrap();
            let h = sibling.handshake(true);
            assert!(h.decrypt(&early).is_some());
            let waiter = tokio::spawn(async move {
                h.admit_resumed(tokio::time::Instant::now() + Duration::from_secs(5))
                    .await
            });
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(!waiter.is_finished());
            match admit {
                true => pending.admitted(),
                false => drop(pending),
            }
            assert_eq!(waiter.await.unwrap(), admit);
        }
        // Data connections that issue no ticket (TLS 1.3 uploads) are not
        // numbered; GENERATIONS later ones that do push it out.
        for _ in 0..2 * GENERATIONS {
            s.handshake(true).admitted();
        }
        assert!(s.handshake(true).decrypt(&ticket).is_some());
        let issuing = || {
            let h = s.handshake(true);
            h.encrypt(b"x").unwrap();
            h
        };
        for _ in 0..10 {
            issuing().admitted();
        }
        assert!(s.handshake(true).decrypt(&ticket).is_some());
        for _ in 0..GENERATIONS {
            issuing().admitted();
        }
        assert!(s.handshake(true).decrypt(&ticket).is_none());
    }

    /// A control connection pushed out of its address's group (64 others
    /// logged in from that address) still resumes its own tickets; its
    /// siblings no longer can.
    #[tokio::test]
    async fn own_tickets_do_not_need_the_group() {
        let groups = test_groups();
        let s = store(&groups, "127.0.0.1");
        s.logged_in("alice");
        let data = s.handshake(true);
        let from_data = data.encrypt(b"data").unwrap();
        data.admitted();
        let from_control = s.handshake(false).encrypt(b"control").unwrap();
        let others: Vec<Arc<SessionStore>> = (0..PER_ADDRESS)
            .map(|_| {
                let o = store(&groups, "127.0.0.1");
                o.logged_in("alice");
                o
            })
            .collect();
        assert!(groups
            .store(ip("127.0.0.1"))
            .group
            .with_member(s.id, |_| ())
            .is_none());
        for t in [&from_data, &from_control] {
            assert!(resumes_ticket(&s, t).await.is_some());
            assert!(resumes_ticket(&others[1], t).await.is_none());
        }
    }

    #[test]
    fn generations_window() {
        let mut g = Generations::default();
        assert_eq!(g.standing(0), Standing::Good);
        assert_eq!(g.standing(1), Standing::Bad, "not issued");
        let (a, b) = (g.issue(), g.issue());
        assert_eq!((a, b), (1, 2));
        assert_eq!(g.standing(a), Standing::Undecided);
        g.decide(a, true);
        g.decide(b, false);
        assert_eq!(
            (g.standing(a), g.standing(b)),
            (Standing::Good, Standing::Bad)
        );
        for _ in 0..GENERATIONS - 2 {
            g.issue();
        }
        assert_eq!(g.standing(a), Standing::Good, "the oldest remembered");
        g.issue();
        assert_eq!(g.standing(a), Standing::Bad, "forgotten");
        assert_eq!(g.standing(0), Standing::Good);
    }
}
