//! The control connection's stream, plain or TLS ([`Channel`]), and the
//! two stage changes the driver makes on it: the handshake after AUTH and
//! the shutdown of TLS after CCC. Generic over the stream underneath
//! ([`ControlStream`]): a TCP connection when serving, an in-memory
//! `tokio::io::duplex` in the driver's unit tests.

use std::pin::Pin;
use std::task::Poll;

use portcullis_proto::framing::{Frame, LineDecoder};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The most one read of the control connection takes. Commands are short;
/// a longer line just takes several reads, which the decoder joins.
const READ_BUF: usize = 2048;

/// What a control connection can run on.
pub trait ControlStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> ControlStream for S {}

type Tls<S> = Box<tokio_rustls::server::TlsStream<S>>;

/// The control connection's stream. The core's [`super::security::Security`]
/// says what the protocol is at; this is what carries it.
#[derive(Debug)]
pub enum Channel<S> {
    /// Plain text, with what was read past the client's last TLS record
    /// after CCC and is yet to be handed out (empty otherwise).
    Plain(S, Vec<u8>),
    Tls(Tls<S>),
    /// Gone: a handshake or CCC's shutdown failed. The session ends.
    Closed,
}

impl<S: ControlStream> Channel<S> {
    pub(super) fn plain(stream: S) -> Self {
        Channel::Plain(stream, Vec::new())
    }

    /// Read what the client sent into `decoder`, its whole lines into
    /// `frames`; how many bytes were read (0 at the end of the stream).
    /// The bytes land in a buffer on the stack, alive only while the read
    /// is polled: an idle session holds no read buffer at all.
    pub(super) async fn read_frames(
        &mut self,
        decoder: &mut LineDecoder,
        frames: &mut Vec<Frame>,
    ) -> std::io::Result<usize> {
        if let Channel::Plain(_, rewind) = self {
            if !rewind.is_empty() {
                let rest = std::mem::take(rewind);
                decoder.feed(&rest, frames);
                return Ok(rest.len());
            }
        }
        std::future::poll_fn(|cx| {
            let mut buf = [0u8; READ_BUF];
            let mut rb = ReadBuf::new(&mut buf);
            let polled = match self {
                Channel::Plain(s, _) => Pin::new(s).poll_read(cx, &mut rb),
                Channel::Tls(s) => Pin::new(s).poll_read(cx, &mut rb),
                Channel::Closed => return Poll::Ready(Ok(0)),
            };
            match polled {
                Poll::Ready(Ok(())) => {
                    decoder.feed(rb.filled(), frames);
                    Poll::Ready(Ok(rb.filled().len()))
                }
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
        .await
    }

    pub(super) async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Channel::Plain(s, _) => s.write_all(bytes).await,
            Channel::Tls(s) => s.write_all(bytes).await,
            Channel::Closed => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    pub(super) async fn shutdown(&mut self) {
        let _ = match self {
            Channel::Plain(s, _) => s.shutdown().await,
            Channel::Tls(s) => s.shutdown().await,
            Channel::Closed => Ok(()),
        };
    }

    /// The TLS handshake after AUTH's 234, bounded by `limit`. Anything
    /// read ahead of it is dropped (sent in plain text after AUTH).
    pub(super) async fn upgrade(
        &mut self,
        config: std::sync::Arc<rustls::ServerConfig>,
        limit: std::time::Duration,
    ) -> Result<(), crate::tls::TlsError> {
        let Channel::Plain(stream, _) = std::mem::replace(self, Channel::Closed) else {
            let e = std::io::Error::other("AUTH on a connection that is not plain text");
            return Err(crate::tls::TlsError::Handshake(e));
        };
        // Boxed: the handshake's state (about 1.4 KB) is held only while it
        // runs, not in every idle session.
        let stream = Box::pin(crate::tls::accept(config, stream, limit)).await?;
        *self = Channel::Tls(stream);
        Ok(())
    }

    /// The verified client certificate of the TLS session, if any.
    pub(super) fn client_cert(&self) -> Option<std::sync::Arc<crate::tls::ClientIdentity>> {
        match self {
            Channel::Tls(tls) => crate::tls::ClientIdentity::of(tls.get_ref().1),
            _ => None,
        }
    }

    /// End TLS after CCC's 200, bounded by `limit` (see [`clear_tls`]).
    pub(super) async fn clear(&mut self, limit: std::time::Duration) -> std::io::Result<()> {
        let Channel::Tls(tls) = std::mem::replace(self, Channel::Closed) else {
            return Err(std::io::ErrorKind::InvalidInput.into());
        };
        let (stream, rest) = Box::pin(clear_tls(tls, limit)).await?;
        *self = Channel::Plain(stream, rest);
        Ok(())
    }
}

/// End the TLS layer of a control connection after CCC: send close_notify,
/// then go on with the stream underneath, skipping the client's own TLS
/// records (its close_notify) record by record; what follows them (a
/// plain-text command) is returned, to be read first. Bounded by `limit`.
async fn clear_tls<S: ControlStream>(
    mut tls: Tls<S>,
    limit: std::time::Duration,
) -> std::io::Result<(S, Vec<u8>)> {
    let deadline = tokio::time::Instant::now() + limit;
    tls.get_mut().1.send_close_notify();
    tokio::time::timeout_at(deadline, tls.flush())
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "CCC shutdown timed out")
        })??;
    let (mut io, _) = tls.into_inner();
    let mut got = Vec::new();
    // At most a few records (close_notify, maybe a ticket ack); a command
    // starts with a letter, a TLS record with a content type 20..=23.
    for _ in 0..8 {
        if got.is_empty() {
            match tokio::time::timeout_at(deadline, io.read_buf(&mut got)).await {
                Ok(Ok(0)) | Err(_) => break,
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
            }
        }
        if !(0x14..=0x17).contains(&got[0]) {
            break;
        }
        let skip = async {
            loop {
                if got.len() >= 5 {
                    let len = usize::from(u16::from_be_bytes([got[3], got[4]]));
                    let need = 5 + len.min(1 << 15);
                    if got.len() >= need {
                        got.drain(..need);
                        return Ok(());
                    }
                }
                if io.read_buf(&mut got).await? == 0 {
                    return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
                }
            }
        };
        tokio::time::timeout_at(deadline, skip)
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "partial TLS record after CCC")
            })??;
    }
    Ok((io, got))
}
