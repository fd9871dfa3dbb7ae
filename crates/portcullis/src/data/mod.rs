//! Data connections: the passive port pool ([`passive`]), active connects
//! ([`active`]), and the per-session [`DataSetup`] that PASV/EPSV/PORT/EPRT arm
//! and the next transfer command consumes.

pub mod active;
pub mod advertise;
pub mod guard;
pub mod passive;
pub mod single;

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
    Passive(passive::PassiveListener),
    /// Connect to this address (already checked against bounce rules).
    Active(SocketAddr),
    /// `passive.single_port`: the port reserved for this client's next
    /// connection ([`single`]).
    Single(single::Ticket),
}

/// Why no data connection could be made (each answers 425).
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("use PORT, EPRT, PASV or EPSV first")]
    NotArmed,
    #[error("the client did not connect to the passive port within {0:?}")]
    AcceptTimeout(Duration),
    #[error("the reservation of the data port expired before the client connected")]
    ReservationLost,
    #[error("could not connect to {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    #[error("connecting to {0} timed out")]
    ConnectTimeout(SocketAddr),
    #[error("data connection failed: {0}")]
    Io(#[from] std::io::Error),
}

/// Parameters for opening the armed connection.
#[derive(Debug, Clone)]
pub struct OpenParams {
    /// Who may connect to a passive port without a PROXY header: the
    /// control connection's client (and, with
    /// `proxy_protocol.data_without_header`, its balancer).
    pub guard: guard::Guard,
    /// Where active connections start from ([`crate::endpoints::Endpoints::bind_ip`]).
    pub bind_ip: IpAddr,
    pub accept_timeout: Duration,
    pub connect_timeout: Duration,
    pub source_port: u16,
    /// `[proxy_protocol] data = true`: passive connections from the listed
    /// balancers begin with a header naming the client.
    pub proxy: Option<std::sync::Arc<crate::options::ProxyOptions>>,
}

impl DataSetup {
    /// Take what is armed and make the connection: the one place where a
    /// data connection is accepted or made. A connection the client has
    /// made already (clients connect before they send the transfer
    /// command) is taken at the first poll, without a trip through the
    /// runtime's poller: a download's first poll comes before its 150 is
    /// flushed (session/driver.rs), so the 150 is followed at once by the
    /// data instead of by the accept and set-up calls.
    pub async fn open(self, p: OpenParams) -> Result<TcpStream, DataError> {
        match self {
            DataSetup::None => Err(DataError::NotArmed),
            DataSetup::Passive(listener) => {
                accept_from(listener, &p.guard, p.proxy.as_deref(), p.accept_timeout).await
            }
            DataSetup::Single(mut ticket) => match ticket.try_take() {
                Some(stream) => Ok(data_stream(stream)),
                None => Ok(data_stream(ticket.accept(p.accept_timeout).await?)),
            },
            DataSetup::Active(addr) => Ok(data_stream(
                active::connect(addr, p.bind_ip, p.source_port, p.connect_timeout).await?,
            )),
        }
    }
}

/// Data connections carry bulk data; Nagle would only delay the last segment.
fn data_stream(stream: TcpStream) -> TcpStream {
    let _ = stream.set_nodelay(true);
    stream
}

/// A connection that `guard` admits already waiting on the passive
/// listener, taken without a trip through the runtime's poller;
/// connections from anywhere else are closed and logged (passive-port
/// hijacking, RFC 2577 section 5). Bounded, so that a stream of foreign
/// connections cannot keep the session's task from yielding.
fn accept_pending(
    listener: &std::net::TcpListener,
    guard: &guard::Guard,
) -> std::io::Result<Option<TcpStream>> {
    for _ in 0..16 {
        match accept_nonblocking(listener) {
            Ok((stream, from)) if guard.admits(from) => {
                return Ok(Some(data_stream(TcpStream::from_std(stream)?)));
            }
            Ok((stream, _)) => drop(stream),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// `accept`, the new socket already non-blocking (one `accept4` call on
/// Linux instead of an accept and an ioctl).
fn accept_nonblocking(
    listener: &std::net::TcpListener,
) -> std::io::Result<(std::net::TcpStream, SocketAddr)> {
    #[cfg(target_os = "linux")]
    {
        use rustix::net::{acceptfrom_with, SocketFlags};
        let (fd, from) = acceptfrom_with(listener, SocketFlags::CLOEXEC | SocketFlags::NONBLOCK)?;
        let from = from
            .and_then(|a| SocketAddr::try_from(a).ok())
            .ok_or_else(|| std::io::Error::other("accepted a connection without an IP address"))?;
        Ok((std::net::TcpStream::from(fd), from))
    }
    #[cfg(not(target_os = "linux"))]
    {
        let (stream, from) = listener.accept()?;
        stream.set_nonblocking(true)?;
        Ok((stream, from))
    }
}

/// Accept, within `limit`, the first connection for the session's client:
/// one that `guard` admits, or (with `proxy`, the PROXY
/// protocol on data connections) one from a listed balancer whose header
/// names that client. Others are closed and logged (passive-port hijacking,
/// RFC 2577 section 5).
async fn accept_from(
    passive: passive::PassiveListener,
    guard: &guard::Guard,
    proxy: Option<&crate::options::ProxyOptions>,
    limit: Duration,
) -> Result<TcpStream, DataError> {
    // The port counts as in use until the accept is over.
    let passive::PassiveListener {
        listener,
        held: _held,
    } = passive;
    if proxy.is_none() {
        if let Some(stream) = accept_pending(&listener, guard)? {
            return Ok(stream);
        }
    }
    let listener = TcpListener::from_std(listener)?;
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let accepted = tokio::time::timeout_at(deadline, listener.accept())
            .await
            .map_err(|_| DataError::AcceptTimeout(limit))?;
        let (mut stream, from) = accepted?;
        let Some(proxy) = proxy.filter(|p| p.trusts(from.ip())) else {
            if guard.admits(from) {
                return Ok(data_stream(stream));
            }
            continue;
        };
        let peer_ip = guard.peer_ip;
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match crate::proxy::read_header(&mut stream, left.min(proxy.timeout)).await {
            Ok(portcullis_proto::proxy::Header::Proxied { source, .. })
                if source.ip().to_canonical() == peer_ip =>
            {
                return Ok(data_stream(stream));
            }
            // A header that names no client (UNKNOWN) falls here too: it
            // could be any client of the balancer's, so it is never taken.
            Ok(header) => {
                warn!(balancer = %from, ?header, expected = %peer_ip, "refused a passive data connection forwarded for another client")
            }
            Err(e) => {
                warn!(balancer = %from, error = %e, "refused a passive data connection: no valid PROXY protocol header")
            }
        }
    }
}
