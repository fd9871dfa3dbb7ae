//! The control connection's stream, plain or TLS ([`Channel`]), and the
//! two stage changes the driver makes on it: the handshake after AUTH and
//! the shutdown of TLS after CCC. Generic over the stream underneath
//! ([`ControlStream`]): a TCP connection when serving, an in-memory
//! `tokio::io::duplex` in the driver's unit tests. TLS itself is
//! [`crate::tls::ControlTls`], which holds no buffer while idle.

use std::pin::Pin;
use std::task::Poll;

use portcullis_proto::framing::{Frame, LineDecoder};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::tls::ControlTls;

/// The most one read of the control connection takes. Commands are short;
/// a longer line just takes several reads, which the decoder joins.
const READ_BUF: usize = 2048;

/// What a control connection can run on.
pub trait ControlStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> ControlStream for S {}

/// The control connection's stream. The core's [`super::security::Security`]
/// says what the protocol is at; this is what carries it.
#[derive(Debug)]
pub enum Channel<S> {
    /// Plain text, with what was read past the client's last TLS record
    /// after CCC and is yet to be handed out (empty otherwise).
    Plain(S, Vec<u8>),
    Tls(Box<ControlTls<S>>),
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
    /// is polled: an idle session holds no read buffer at all. Cancel-safe.
    pub(super) async fn read_frames(
        &mut self,
        decoder: &mut LineDecoder,
        frames: &mut Vec<Frame>,
    ) -> std::io::Result<usize> {
        let stream = match self {
            Channel::Plain(_, rewind) if !rewind.is_empty() => {
                let rest = std::mem::take(rewind);
                decoder.feed(&rest, frames);
                return Ok(rest.len());
            }
            Channel::Plain(s, _) => s,
            Channel::Tls(tls) => return tls.read_frames(decoder, frames).await,
            Channel::Closed => return Ok(0),
        };
        std::future::poll_fn(|cx| {
            let mut buf = [0u8; READ_BUF];
            let mut rb = ReadBuf::new(&mut buf);
            match Pin::new(&mut *stream).poll_read(cx, &mut rb) {
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
        // Boxed: the handshake's future is held only while it runs, not
        // in every idle session.
        let tls = Box::pin(ControlTls::accept(config, stream, limit)).await?;
        *self = Channel::Tls(tls);
        Ok(())
    }

    /// The verified client certificate of the TLS session, if any.
    pub(super) fn client_cert(&self) -> Option<std::sync::Arc<crate::tls::ClientIdentity>> {
        match self {
            Channel::Tls(tls) => crate::tls::ClientIdentity::of(tls.common()),
            _ => None,
        }
    }

    /// End TLS after CCC's 200, bounded by `limit`
    /// ([`ControlTls::into_plain`]): what followed the client's
    /// close_notify is read first, as plain text.
    pub(super) async fn clear(&mut self, limit: std::time::Duration) -> std::io::Result<()> {
        let Channel::Tls(tls) = std::mem::replace(self, Channel::Closed) else {
            return Err(std::io::ErrorKind::InvalidInput.into());
        };
        let (stream, rest) = Box::pin(tls.into_plain(limit)).await?;
        *self = Channel::Plain(stream, rest);
        Ok(())
    }
}
