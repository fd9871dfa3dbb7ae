//! Data connections: the passive port pool ([`passive`]), active connects
//! ([`active`]), and the per-session [`DataSetup`] that PASV/EPSV/PORT/EPRT arm
//! and the next transfer command consumes.

pub mod active;
pub mod advertise;
pub mod passive;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tracing::warn;

pub use advertise::Advertiser;
pub use passive::PortPool;

/// What the last PASV/EPSV/PORT/EPRT set up. One transfer consumes it
/// (as in vsftpd and ProFTPD, every transfer needs a new PASV or PORT).
#[derive(Debug, Default)]
pub enum DataSetup {
    /// Nothing armed: a transfer command answers 425.
    #[default]
    None,
    /// A listener on a port from the pool, waiting for the client.
    Passive(std::net::TcpListener),
    /// Connect to this address (already checked against bounce rules).
    Active(SocketAddr),
}

/// Why no data connection could be made (each answers 425).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("use PORT, EPRT, PASV or EPSV first")]
    NotArmed,
    #[error("the client did not connect to the passive port within {0:?}")]
    AcceptTimeout(Duration),
    #[error("could not connect to {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    #[error("connecting to {0} timed out")]
    ConnectTimeout(SocketAddr),
    #[error("data connection failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Parameters for opening the armed connection.
#[derive(Debug, Clone, Copy)]
pub struct OpenParams {
    /// The control connection's peer: only it may connect to a passive port.
    pub peer_ip: IpAddr,
    /// The control connection's local address (source of active connects).
    pub local_ip: IpAddr,
    pub accept_timeout: Duration,
    pub connect_timeout: Duration,
    pub source_port: u16,
}

impl DataSetup {
    /// Take what is armed and make the connection.
    pub async fn open(self, p: OpenParams) -> Result<TcpStream, DataError> {
        let stream = match self {
            DataSetup::None => return Err(DataError::NotArmed),
            DataSetup::Passive(listener) => {
                accept_from(listener, p.peer_ip, p.accept_timeout).await?
            }
            DataSetup::Active(addr) => {
                active::connect(addr, p.local_ip, p.source_port, p.connect_timeout).await?
            }
        };
        // Data connections carry bulk data; Nagle only delays the last segment.
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }
}

/// Accept the first connection that comes from `peer_ip`; connections from
/// anywhere else are closed and logged (passive-port hijacking, RFC 2577 section 5).
async fn accept_from(
    listener: std::net::TcpListener,
    peer_ip: IpAddr,
    limit: Duration,
) -> Result<TcpStream, DataError> {
    // The client has usually connected already (it connects before it
    // sends the transfer command): take the connection without a trip
    // through the runtime's poller. Bounded, so that a stream of foreign
    // connections cannot keep this task from yielding.
    for _ in 0..16 {
        match listener.accept() {
            Ok((stream, from)) if from.ip().to_canonical() == peer_ip => {
                stream.set_nonblocking(true)?;
                return Ok(TcpStream::from_std(stream)?);
            }
            Ok((stream, from)) => {
                warn!(%from, expected = %peer_ip, "refused a passive data connection from a foreign address");
                drop(stream);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let listener = TcpListener::from_std(listener)?;
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let accepted = tokio::time::timeout_at(deadline, listener.accept())
            .await
            .map_err(|_| DataError::AcceptTimeout(limit))?;
        let (stream, from) = accepted?;
        if from.ip().to_canonical() == peer_ip {
            return Ok(stream);
        }
        warn!(%from, expected = %peer_ip, "refused a passive data connection from a foreign address");
        drop(stream);
    }
}
