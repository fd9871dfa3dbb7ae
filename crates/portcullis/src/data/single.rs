//! `passive.single_port`: every passive data connection of every session
//! arrives on one port, and is handed to the session that awaits one from
//! the connection's client address (from the PROXY protocol header where
//! the balancer sends one). At most one session per client address awaits
//! at a time: a second PASV from the same address waits, bounded, until
//! the first has its connection, gives it up, or lets its reservation
//! expire (`passive.accept_timeout` after its PASV). So a connection is
//! never handed to a guess, and never to another client's session. The
//! PASVs that wait take their turns first come, first served, a repeated
//! PASV of the session that held the port included.
//!
//! Weaker than a port range only in what a range does not have either:
//! over plain FTP anyone connecting from the client's own address (the
//! same NAT) can take the pending data connection, with no port to guess.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;
use tracing::warn;

use super::DataError;

/// The one data port and who awaits a connection on it.
#[derive(Debug)]
pub struct SinglePort {
    port: u16,
    waiting: Mutex<HashMap<IpAddr, Slot>>,
    /// A reservation ended, or a waiter took its turn or left: the waiters
    /// look again at whose turn it is.
    freed: Notify,
    next_id: std::sync::atomic::AtomicU64,
    /// `[proxy_protocol]` with `data = true`: connections from the listed
    /// balancers name their client in a header. Replaced by a reload
    /// ([`SinglePort::set_proxy`]), read at each accept.
    proxy: arc_swap::ArcSwapOption<crate::options::ProxyOptions>,
}

/// One client address: the reservation that holds the port for it and the
/// PASVs waiting their turn.
#[derive(Debug, Default)]
struct Slot {
    holder: Option<Entry>,
    /// Waiting reservations' ids, first come first served. A session that
    /// gives the port up and asks again (a repeated PASV) joins the back:
    /// were the port simply free for whoever looks first, that session,
    /// still running when it frees the port, would always look before the
    /// waiters it woke and starve them (425 after `single_port_wait`).
    queue: VecDeque<u64>,
}

impl Slot {
    fn is_empty(&self) -> bool {
        self.holder.is_none() && self.queue.is_empty()
    }
}

#[derive(Debug)]
struct Entry {
    id: u64,
    /// After this the reservation may be taken over.
    expires: Instant,
    tx: oneshot::Sender<TcpStream>,
}

impl Entry {
    /// Still holding the port at `now`: not expired, and its session still
    /// awaits the connection.
    fn holds(&self, now: Instant) -> bool {
        self.expires > now && !self.tx.is_closed()
    }
}

/// A session's reservation of the port for its client's next connection.
/// Dropping it (a new PASV, ABOR, the session's end) frees the port for
/// the next session from the same address.
#[derive(Debug)]
pub struct Ticket {
    port: Arc<SinglePort>,
    ip: IpAddr,
    id: u64,
    /// `None` once the reservation is known to be lost.
    rx: Option<oneshot::Receiver<TcpStream>>,
}

/// A place in an address's queue, given up when dropped: a PASV that
/// waited in vain, or whose session ended while it waited.
struct Place<'a> {
    port: &'a SinglePort,
    ip: IpAddr,
    id: u64,
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.port
            .update(self.ip, |slot| slot.queue.retain(|&q| q != self.id));
    }
}

impl SinglePort {
    pub fn new(port: u16, proxy: Option<Arc<crate::options::ProxyOptions>>) -> Arc<Self> {
        Arc::new(SinglePort {
            port,
            waiting: Mutex::default(),
            freed: Notify::new(),
            next_id: Default::default(),
            proxy: arc_swap::ArcSwapOption::new(proxy),
        })
    }

    /// The PROXY protocol options of a reloaded config: connections
    /// accepted from now on follow them.
    pub fn set_proxy(&self, proxy: Option<Arc<crate::options::ProxyOptions>>) {
        self.proxy.store(proxy);
    }

    fn proxy(&self) -> Option<Arc<crate::options::ProxyOptions>> {
        self.proxy.load_full()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Change `ip`'s slot (forgotten once empty), then wake the waiters.
    fn update<T>(&self, ip: IpAddr, change: impl FnOnce(&mut Slot) -> T) -> T {
        let out = {
            let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            let slot = w.entry(ip).or_default();
            let out = change(slot);
            if slot.is_empty() {
                w.remove(&ip);
            }
            out
        };
        self.freed.notify_waiters();
        out
    }

    /// Reserve the port for the next connection from `ip`, held for `hold`;
    /// waits up to `wait`, behind the reservations from `ip` that came
    /// first, for its turn.
    pub async fn reserve(
        self: &Arc<Self>,
        ip: IpAddr,
        hold: Duration,
        wait: Duration,
    ) -> Option<Ticket> {
        let give_up = Instant::now() + wait;
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut place = None;
        // Each round ends by a notification, an expiry or `give_up`: a
        // bounded number of rounds in practice; the bound only says so.
        for _ in 0..10_000 {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let busy_until = {
                let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                let slot = w.entry(ip).or_default();
                let held = slot.holder.as_ref().filter(|e| e.holds(now));
                let my_turn = slot.queue.front().is_none_or(|&first| first == id);
                if held.is_none() && my_turn {
                    slot.queue.pop_front();
                    let (tx, rx) = oneshot::channel();
                    slot.holder = Some(Entry {
                        id,
                        expires: now + hold,
                        tx,
                    });
                    drop(w);
                    // Out of the queue: dropping the place (there is one
                    // if this waited) wakes the next in line, to wait on
                    // this reservation now.
                    drop(place);
                    return Some(Ticket {
                        port: self.clone(),
                        ip,
                        id,
                        rx: Some(rx),
                    });
                }
                if place.is_none() {
                    slot.queue.push_back(id);
                    place = Some(Place { port: self, ip, id });
                }
                // Behind others with the port free, the wake-up comes from
                // the one whose turn it is.
                held.map(|e| e.expires)
            };
            let until = busy_until.map_or(give_up, |b| b.min(give_up));
            let _ = tokio::time::timeout_at(until, freed).await;
            if Instant::now() >= give_up {
                return None;
            }
        }
        None
    }

    /// Hand `stream`, from client `ip`, to the session awaiting it.
    fn deliver(&self, ip: IpAddr, stream: TcpStream) -> Result<(), TcpStream> {
        // Connected (or gone): the next session from `ip` may reserve.
        let entry = self.update(ip, |slot| slot.holder.take());
        match entry {
            Some(e) if e.expires > Instant::now() => e.tx.send(stream),
            _ => Err(stream),
        }
    }

    /// Accept on `listener` until the task is dropped. Connections from a
    /// listed balancer (the current [`SinglePort::set_proxy`] options,
    /// with `data = true`) name their client in a PROXY protocol header.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let (stream, from) = match listener.accept().await {
                Ok(a) => a,
                Err(e) => {
                    warn!(error = %e, "accept on the single passive port failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            match self.proxy().filter(|p| p.trusts(from.ip())) {
                Some(p) => {
                    let (me, limit) = (self.clone(), p.timeout);
                    tokio::spawn(async move {
                        let mut stream = stream;
                        match crate::proxy::read_header(&mut stream, limit).await {
                            Ok(portcullis_proto::proxy::Header::Proxied { source, .. }) => {
                                me.hand_over(source.ip().to_canonical(), stream)
                            }
                            // UNKNOWN (no client named: it could be any of
                            // the balancer's) or LOCAL: no session's.
                            Ok(_) => {
                                warn!(balancer = %from, "a data connection without a client in its PROXY header; closed")
                            }
                            Err(e) => {
                                warn!(balancer = %from, error = %e, "a data connection without a valid PROXY header; closed")
                            }
                        }
                    });
                }
                None => self.hand_over(from.ip().to_canonical(), stream),
            }
        }
    }

    fn hand_over(&self, ip: IpAddr, stream: TcpStream) {
        if self.deliver(ip, stream).is_err() {
            warn!(from = %ip, "a connection to the single passive port, but no session from this address awaits one; closed");
        }
    }
}

impl Ticket {
    /// The connection, if it has arrived already.
    pub fn try_take(&mut self) -> Option<TcpStream> {
        match self.rx.as_mut()?.try_recv() {
            Ok(stream) => {
                self.rx = None;
                Some(stream)
            }
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => {
                self.rx = None;
                None
            }
        }
    }

    /// The connection, within `limit`.
    pub async fn accept(mut self, limit: Duration) -> Result<TcpStream, DataError> {
        let Some(rx) = self.rx.take() else {
            return Err(DataError::ReservationLost);
        };
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(stream)) => Ok(stream),
            // Expired and taken over by another session from the address.
            Ok(Err(_)) => Err(DataError::ReservationLost),
            Err(_) => Err(DataError::AcceptTimeout(limit)),
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.port.update(self.ip, |slot| {
            if slot.holder.as_ref().is_some_and(|e| e.id == self.id) {
                slot.holder = None;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_reservation_per_address_at_a_time() {
        let p = SinglePort::new(40000, None);
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        let other: IpAddr = "198.51.100.8".parse().unwrap();
        let hold = Duration::from_secs(30);
        let first = p.reserve(ip, hold, Duration::ZERO).await.unwrap();
        // Another address is not held up; the same address waits.
        let _o = p.reserve(other, hold, Duration::ZERO).await.unwrap();
        assert!(p.reserve(ip, hold, Duration::from_secs(1)).await.is_none());
        let p2 = p.clone();
        let second =
            tokio::spawn(async move { p2.reserve(ip, hold, Duration::from_secs(5)).await });
        tokio::task::yield_now().await;
        drop(first);
        assert!(second.await.unwrap().is_some(), "freed by the drop");
        // A reservation never used expires after `hold`.
        let p = SinglePort::new(40000, None);
        let _stale = p.reserve(ip, hold, Duration::ZERO).await.unwrap();
        let t = p.reserve(ip, hold, Duration::from_secs(60)).await;
        assert!(t.is_some(), "taken over after the first expired");
    }

    /// A session that gives the port up and asks again at once (a repeated
    /// PASV, in the same task) queues behind the PASV that was waiting.
    #[tokio::test(start_paused = true)]
    async fn a_repeated_reservation_queues_behind_the_waiters() {
        let p = SinglePort::new(40000, None);
        let ip: IpAddr = "198.51.100.7".parse().unwrap();
        let hold = Duration::from_secs(30);
        let a = p.reserve(ip, hold, Duration::ZERO).await.unwrap();
        let p2 = p.clone();
        let b = tokio::spawn(async move { p2.reserve(ip, hold, Duration::from_secs(5)).await });
        tokio::task::yield_now().await;
        drop(a);
        // Without a wait, the repeated reservation is refused: B's turn.
        assert!(p.reserve(ip, hold, Duration::ZERO).await.is_none());
        let p3 = p.clone();
        let a_again =
            tokio::spawn(async move { p3.reserve(ip, hold, Duration::from_secs(20)).await });
        let b = b.await.unwrap().expect("B, who waited first, has the port");
        tokio::task::yield_now().await;
        assert!(!a_again.is_finished(), "A waits behind B");
        drop(b);
        assert!(a_again.await.unwrap().is_some(), "then A's turn");
        // A waiter that gives up leaves no trace behind it.
        assert!(p.waiting.lock().unwrap().is_empty());
        let c = p.reserve(ip, hold, Duration::ZERO).await.unwrap();
        assert!(p.reserve(ip, hold, Duration::from_secs(1)).await.is_none());
        drop(c);
        assert!(p.waiting.lock().unwrap().is_empty());
    }
}
