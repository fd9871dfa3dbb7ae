//! `passive.single_port`: every passive data connection of every session
//! arrives on one port, and is handed to the session that awaits one from
//! the connection's client address (from the PROXY protocol header where
//! the balancer sends one). At most one session per client address awaits
//! at a time: a second PASV from the same address waits, bounded, until
//! the first has its connection, gives it up, or lets its reservation
//! expire (`passive.accept_timeout` after its PASV). So a connection is
//! never handed to a guess, and never to another client's session.
//!
//! Weaker than a port range only in what a range does not have either:
//! over plain FTP anyone connecting from the client's own address (the
//! same NAT) can take the pending data connection, with no port to guess.

use std::collections::HashMap;
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
    waiting: Mutex<HashMap<IpAddr, Entry>>,
    /// A reservation ended: the next session from that address may go.
    freed: Notify,
    next_id: std::sync::atomic::AtomicU64,
    /// `[proxy_protocol]` with `data = true`: connections from the listed
    /// balancers name their client in a header. Replaced by a reload
    /// ([`SinglePort::set_proxy`]), read at each accept.
    proxy: Mutex<Option<Arc<crate::options::ProxyOptions>>>,
}

#[derive(Debug)]
struct Entry {
    id: u64,
    /// After this the reservation may be taken over.
    expires: Instant,
    tx: oneshot::Sender<TcpStream>,
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

impl SinglePort {
    pub fn new(port: u16, proxy: Option<Arc<crate::options::ProxyOptions>>) -> Arc<Self> {
        Arc::new(SinglePort {
            port,
            waiting: Mutex::default(),
            freed: Notify::new(),
            next_id: Default::default(),
            proxy: Mutex::new(proxy),
        })
    }

    /// The PROXY protocol options of a reloaded config: connections
    /// accepted from now on follow them.
    pub fn set_proxy(&self, proxy: Option<Arc<crate::options::ProxyOptions>>) {
        *self.proxy.lock().unwrap_or_else(|p| p.into_inner()) = proxy;
    }

    fn proxy(&self) -> Option<Arc<crate::options::ProxyOptions>> {
        self.proxy.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Reserve the port for the next connection from `ip`, held for `hold`;
    /// waits up to `wait` for another session from `ip` to be done with it.
    pub async fn reserve(
        self: &Arc<Self>,
        ip: IpAddr,
        hold: Duration,
        wait: Duration,
    ) -> Option<Ticket> {
        let give_up = Instant::now() + wait;
        // Each round ends by a notification, an expiry or `give_up`: a
        // bounded number of rounds in practice; the bound only says so.
        for _ in 0..10_000 {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let busy_until = {
                let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
                let now = Instant::now();
                match w.get(&ip) {
                    Some(e) if e.expires > now && !e.tx.is_closed() => Some(e.expires),
                    _ => {
                        let id = self
                            .next_id
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let (tx, rx) = oneshot::channel();
                        w.insert(
                            ip,
                            Entry {
                                id,
                                expires: now + hold,
                                tx,
                            },
                        );
                        return Some(Ticket {
                            port: self.clone(),
                            ip,
                            id,
                            rx: Some(rx),
                        });
                    }
                }
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
        let entry = {
            let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            w.remove(&ip)
        };
        let result = match entry {
            Some(e) if e.expires > Instant::now() => e.tx.send(stream),
            _ => Err(stream),
        };
        // Connected (or gone): the next session from `ip` may reserve.
        self.freed.notify_waiters();
        result
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
                            // No client named: the connection's own address stands.
                            Ok(portcullis_proto::proxy::Header::Unknown) => {
                                me.hand_over(from.ip().to_canonical(), stream)
                            }
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
        let mut w = self.port.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if w.get(&self.ip).is_some_and(|e| e.id == self.id) {
            w.remove(&self.ip);
            drop(w);
            self.port.freed.notify_waiters();
        }
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
}
