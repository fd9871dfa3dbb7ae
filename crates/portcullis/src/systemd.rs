//! The systemd notification protocol (sd_notify(3)) for `Type=notify`
//! units: `READY=1` once the listeners are bound and the accept loops run,
//! `RELOADING=1` (with `MONOTONIC_USEC`, which systemd 253 and later want)
//! then `READY=1` around a SIGHUP reload, `STOPPING=1` when the drain
//! starts. Each message is one datagram to the Unix socket named by
//! `$NOTIFY_SOCKET` (a path, or `@name` for an abstract socket); without
//! that variable (not started by systemd) nothing is sent.
//!
//! The socket is connected at start, before the privilege drop: the
//! server's user may not be allowed to reach the socket's path (the
//! connection, once made, is kept).
//!
//! Written with std's `UnixDatagram` rather than a crate: the protocol is
//! a line-based datagram, and this keeps it free of `unsafe` and of a
//! dependency for twenty lines.

use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Where the notifications go: `$NOTIFY_SOCKET`, read once at start.
#[derive(Debug)]
pub struct Notifier {
    /// Connected to the notification socket.
    socket: UnixDatagram,
}

impl Notifier {
    /// From `$NOTIFY_SOCKET`; `None` when it is unset or empty, or names
    /// a socket that cannot be reached (then a warning says why).
    pub fn from_env() -> Option<Notifier> {
        let name = std::env::var_os("NOTIFY_SOCKET")?;
        if name.is_empty() {
            return None;
        }
        Notifier::to(&name.to_string_lossy())
            .map_err(
                |e| tracing::warn!(error = %e, "NOTIFY_SOCKET unusable: no systemd notifications"),
            )
            .ok()
    }

    /// Connected to the socket `name`: a path, or `@name` for an abstract
    /// socket.
    pub fn to(name: &str) -> std::io::Result<Notifier> {
        let to = match name.strip_prefix('@') {
            Some(abs) => abstract_addr(abs)?,
            None => SocketAddr::from_pathname(name)?,
        };
        let socket = UnixDatagram::unbound()?;
        socket.connect_addr(&to)?;
        Ok(Notifier { socket })
    }

    /// Send one message (`KEY=value` lines). A failure is logged, not
    /// returned: the server serves whether or not systemd listens.
    pub fn send(&self, message: &str) {
        if let Err(e) = self.socket.send(message.as_bytes()) {
            tracing::warn!(error = %e, message, "systemd notification not sent");
        }
    }

    /// `READY=1`: serving.
    pub fn ready(&self) {
        self.send("READY=1\nSTATUS=serving");
    }

    /// `RELOADING=1` with the monotonic clock's now in microseconds, as
    /// systemd 253+ wants; older ones (Debian 12 has 252) ignore the key.
    /// [`Notifier::ready`] follows once the reload is done.
    pub fn reloading(&self) {
        let mut message = String::from("RELOADING=1\nSTATUS=reloading the config file");
        if let Some(usec) = monotonic_usec() {
            message.push_str(&format!("\nMONOTONIC_USEC={usec}"));
        }
        self.send(&message);
    }

    /// `STOPPING=1`: the drain has started.
    pub fn stopping(&self) {
        self.send("STOPPING=1\nSTATUS=draining: no new sessions, transfers finishing");
    }
}

#[cfg(target_os = "linux")]
fn abstract_addr(name: &str) -> std::io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name.as_bytes())
}

#[cfg(not(target_os = "linux"))]
fn abstract_addr(_name: &str) -> std::io::Result<SocketAddr> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        "abstract sockets are Linux only",
    ))
}

/// CLOCK_MONOTONIC in microseconds (what systemd compares MONOTONIC_USEC
/// with).
fn monotonic_usec() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
        let secs = u64::try_from(t.tv_sec).ok()?;
        let micros = u64::try_from(t.tv_nsec).ok()? / 1000;
        Some(secs * 1_000_000 + micros)
    }
    #[cfg(not(target_os = "linux"))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A receive with a timeout is not restarted after a signal handler
    /// (signal(7)): EINTR is retried, a bounded number of times.
    fn recv(socket: &UnixDatagram) -> String {
        let mut buf = [0u8; 512];
        for _ in 0..100 {
            match socket.recv(&mut buf) {
                Ok(n) => return String::from_utf8(buf[..n].to_vec()).unwrap(),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => panic!("no notification: {e}"),
            }
        }
        panic!("recv interrupted 100 times");
    }

    #[test]
    fn sends_each_state_as_one_datagram() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let n = Notifier::to(path.to_str().unwrap()).unwrap();
        n.ready();
        assert_eq!(recv(&socket), "READY=1\nSTATUS=serving");
        n.reloading();
        let r = recv(&socket);
        let usec: u64 = r
            .lines()
            .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
            .expect("MONOTONIC_USEC")
            .parse()
            .unwrap();
        assert!(r.starts_with("RELOADING=1\n"), "{r}");
        assert!(usec > 0);
        n.reloading();
        let later: u64 = recv(&socket)
            .lines()
            .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
            .unwrap()
            .parse()
            .unwrap();
        assert!(later >= usec, "the clock is monotonic");
        n.stopping();
        assert!(recv(&socket).starts_with("STOPPING=1\n"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn abstract_names_start_with_an_at_sign() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("portcullis-test-{}", std::process::id());
        let socket =
            UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        Notifier::to(&format!("@{name}")).unwrap().stopping();
        assert!(recv(&socket).starts_with("STOPPING=1\n"));
        // No one listens there: refused when connecting, at start.
        assert!(Notifier::to(&format!("@{name}-none")).is_err());
    }
}
