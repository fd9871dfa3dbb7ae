//! The control connection's stream, plain or TLS ([`Channel`]), and the
//! two stage changes the driver makes on it: the handshake after AUTH and
//! the shutdown of TLS after CCC.

use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Tcp = tokio::net::TcpStream;
type TlsTcp = Box<tokio_rustls::server::TlsStream<Tcp>>;

/// The control connection's stream. The core's [`super::security::Security`]
/// says what the protocol is at; this is what carries it.
#[derive(Debug)]
pub enum Channel {
    Plain(Tcp),
    Tls(TlsTcp),
    /// Gone: a handshake or CCC's shutdown failed. The session ends.
    Closed,
}

impl Channel {
    pub(super) async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Channel::Plain(s) => s.read(buf).await,
            Channel::Tls(s) => s.read(buf).await,
            Channel::Closed => Ok(0),
        }
    }

    pub(super) async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Channel::Plain(s) => s.write_all(bytes).await,
            Channel::Tls(s) => s.write_all(bytes).await,
            Channel::Closed => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    pub(super) async fn shutdown(&mut self) {
        let _ = match self {
            Channel::Plain(s) => s.shutdown().await,
            Channel::Tls(s) => s.shutdown().await,
            Channel::Closed => Ok(()),
        };
    }

    /// The TLS handshake after AUTH's 234, bounded by `limit`.
    pub(super) async fn upgrade(
        &mut self,
        config: std::sync::Arc<rustls::ServerConfig>,
        limit: std::time::Duration,
    ) -> Result<(), crate::tls::TlsError> {
        let Channel::Plain(tcp) = std::mem::replace(self, Channel::Closed) else {
            let e = std::io::Error::other("AUTH on a connection that is not plain text");
            return Err(crate::tls::TlsError::Handshake(e));
        };
        // Boxed: the handshake's state (about 1.4 KB) is held only while it
        // runs, not in every idle session.
        let stream = Box::pin(crate::tls::accept(config, tcp, limit)).await?;
        *self = Channel::Tls(stream);
        Ok(())
    }

    /// End TLS after CCC's 200, bounded by `limit` (see [`clear_tls`]).
    pub(super) async fn clear(&mut self, limit: std::time::Duration) -> std::io::Result<()> {
        let Channel::Tls(tls) = std::mem::replace(self, Channel::Closed) else {
            return Err(std::io::ErrorKind::InvalidInput.into());
        };
        *self = Channel::Plain(Box::pin(clear_tls(tls, limit)).await?);
        Ok(())
    }
}

/// End the TLS layer of a control connection after CCC: send close_notify,
/// then go on with the TCP stream underneath, skipping the client's own TLS
/// records (its close_notify) record by record, so that no plain-text
/// command that follows them is swallowed. Bounded by `limit`.
async fn clear_tls(mut tls: TlsTcp, limit: std::time::Duration) -> std::io::Result<Tcp> {
    let deadline = tokio::time::Instant::now() + limit;
    tls.get_mut().1.send_close_notify();
    tokio::time::timeout_at(deadline, tls.flush())
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "CCC shutdown timed out")
        })??;
    let (mut tcp, _) = tls.into_inner();
    // At most a few records (close_notify, maybe a ticket ack); a command
    // starts with a letter, a TLS record with a content type 20..=23.
    for _ in 0..8 {
        let mut first = [0u8; 1];
        match tokio::time::timeout_at(deadline, tcp.peek(&mut first)).await {
            Ok(Ok(1)) if (0x14..=0x17).contains(&first[0]) => {}
            Ok(Ok(_)) | Err(_) => break,
            Ok(Err(e)) => return Err(e),
        }
        let mut header = [0u8; 5];
        let skip = async {
            tcp.read_exact(&mut header).await?;
            let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
            let mut body = vec![0u8; len.min(1 << 15)];
            tcp.read_exact(&mut body).await?;
            Ok::<_, std::io::Error>(())
        };
        tokio::time::timeout_at(deadline, skip)
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "partial TLS record after CCC")
            })??;
    }
    Ok(tcp)
}
