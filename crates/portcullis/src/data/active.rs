//! Active mode: connecting to the address a client gave with PORT/EPRT.
//! The bounce checks (RFC 2577 section 3) happen when PORT/EPRT is received;
//! this module makes the connection, from `active.source_port` when set
//! (port 20 by tradition) and from any port when that port cannot be bound.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::{TcpSocket, TcpStream};
use tracing::warn;

use super::DataError;

/// Warn once per process that the configured source port could not be used.
static WARNED: AtomicBool = AtomicBool::new(false);

/// Whether a PORT/EPRT target is acceptable: the client's own address and an
/// unprivileged port. Anything else would let a client use the server to
/// reach third hosts or services (the FTP bounce attack).
pub fn target_allowed(target: SocketAddr, peer_ip: IpAddr) -> bool {
    target.ip().to_canonical() == peer_ip && target.port() >= 1024
}

/// Connect to `target` from `local_ip`, from `source_port` if not 0.
pub async fn connect(
    target: SocketAddr,
    local_ip: IpAddr,
    source_port: u16,
    limit: Duration,
) -> Result<TcpStream, DataError> {
    let fut = async {
        let socket = new_socket(target)?;
        if source_port != 0 {
            socket.set_reuseaddr(true)?;
            let bind = (local_ip, source_port).into();
            if let Err(e) = socket.bind(bind) {
                if !WARNED.swap(true, Ordering::Relaxed) {
                    warn!(port = source_port, error = %e, "cannot bind the active-mode source port; connecting from any port (needs root or CAP_NET_BIND_SERVICE)");
                }
                let socket = new_socket(target)?;
                socket.bind((local_ip, 0).into())?;
                return socket.connect(target).await;
            }
        } else {
            socket.bind((local_ip, 0).into())?;
        }
        socket.connect(target).await
    };
    match tokio::time::timeout(limit, fut).await {
        Ok(Ok(s)) => {
            // Which port a firewall saw this connection come from.
            let from = s.local_addr().map(|a| a.port()).unwrap_or(0);
            tracing::info!(to = %target, source_port = from, "active data connection");
            Ok(s)
        }
        Ok(Err(e)) => Err(DataError::Connect(target, e)),
        Err(_) => Err(DataError::ConnectTimeout(target)),
    }
}

fn new_socket(target: SocketAddr) -> std::io::Result<TcpSocket> {
    if target.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounce_rules() {
        let peer: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(target_allowed("127.0.0.1:40000".parse().unwrap(), peer));
        assert!(!target_allowed("127.0.0.2:40000".parse().unwrap(), peer));
        assert!(!target_allowed("127.0.0.1:25".parse().unwrap(), peer));
        assert!(target_allowed(
            "[::ffff:127.0.0.1]:2000".parse().unwrap(),
            peer
        ));
    }
}
