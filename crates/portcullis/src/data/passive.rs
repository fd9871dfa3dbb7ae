//! The passive port pool: hands out listeners on ports from the configured
//! range, skipping ports that are in use, and never blocking. A port returns
//! to the pool when its listener is dropped (transfer done, new PASV, session
//! gone), so nothing has to be released by hand; the pool counts the
//! listeners alive for the metrics.

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

use socket2::{Domain, Protocol, Socket, Type};

/// Shared by all sessions of a server.
#[derive(Debug)]
pub struct PortPool {
    range: RangeInclusive<u16>,
    /// Where the next search starts; spreads ports over the range so that a
    /// port just closed (maybe in TIME_WAIT on the client) is not reused at once.
    next: AtomicU32,
    /// Listeners handed out and not dropped yet.
    in_use: Arc<AtomicUsize>,
}

/// A listener on a port of the pool, counted in [`PortPool::in_use`] until
/// it is dropped.
#[derive(Debug)]
pub struct PassiveListener {
    pub listener: TcpListener,
    pub held: Held,
}

/// One port counted as in use, until dropped.
#[derive(Debug)]
pub struct Held(Arc<AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl PortPool {
    pub fn new(range: RangeInclusive<u16>) -> Self {
        PortPool {
            range,
            next: AtomicU32::new(0),
            in_use: Arc::default(),
        }
    }

    /// The same pool over `range` (a reload), counting in the same
    /// [`PortPool::in_use`]: listeners handed out by either pool count.
    pub fn resized(&self, range: RangeInclusive<u16>) -> Self {
        PortPool {
            range,
            next: AtomicU32::new(0),
            in_use: self.in_use.clone(),
        }
    }

    /// Passive listeners alive now (a PASV or EPSV waiting for its client
    /// or its transfer).
    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Relaxed)
    }

    /// Bind a listener on `ip` at a free port of the range, and say which.
    /// `None` when every port is taken (the caller answers 425).
    pub fn bind(&self, ip: IpAddr) -> Option<(PassiveListener, u16)> {
        let lo = u32::from(*self.range.start());
        let size = u32::from(*self.range.end()) - lo + 1;
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..size {
            let port = (lo + (start.wrapping_add(i)) % size) as u16;
            if let Ok(l) = listen(SocketAddr::new(ip, port)) {
                self.next
                    .store(start.wrapping_add(i + 1), Ordering::Relaxed);
                self.in_use.fetch_add(1, Ordering::Relaxed);
                let held = Held(self.in_use.clone());
                return Some((PassiveListener { listener: l, held }, port));
            }
        }
        None
    }
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    // Non-blocking from the start where the flag exists (one call, not three).
    #[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )?;
    #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
    let socket = {
        let s = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        s.set_nonblocking(true)?;
        s
    };
    // Lets a port whose last connection is in TIME_WAIT be bound again; two
    // live listeners on one port are still impossible on Linux.
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(8)?;
    // Not registered with the runtime yet: the client has usually connected
    // by the time the transfer command comes, and the accept is tried first.
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_ports_in_use_and_reports_exhaustion() {
        // Find two adjacent free ports by binding ephemeral ones is racy; use a
        // one-port range held by another listener instead.
        let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = held.local_addr().unwrap().port();
        let pool = PortPool::new(port..=port);
        assert!(pool.bind("127.0.0.1".parse().unwrap()).is_none());
        assert_eq!(pool.in_use(), 0);
        drop(held);
        let (l, p) = pool
            .bind("127.0.0.1".parse().unwrap())
            .expect("port free again");
        assert_eq!(l.listener.local_addr().unwrap().port(), port);
        assert_eq!(p, port);
        assert_eq!(pool.in_use(), 1);
        assert!(pool.bind("127.0.0.1".parse().unwrap()).is_none());
        assert_eq!(pool.in_use(), 1, "a failed bind holds nothing");
        drop(l);
        assert_eq!(pool.in_use(), 0);
    }
}
