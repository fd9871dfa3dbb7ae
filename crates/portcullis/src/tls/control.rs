//! TLS on a control connection, on rustls's unbuffered API
//! ([`rustls::server::UnbufferedServerConnection`]), where the caller owns
//! the buffers. An idle session holds no buffer at all: bytes read land on
//! the stack, and only a record that arrived in part is kept (`incoming`)
//! until the rest of it comes; TLS to send is kept (`outgoing`) only while
//! it is written. rustls's buffered `ServerConnection` keeps a 4 KiB
//! receive buffer for the connection's life once one read was prepared.
//!
//! Data connections stay on tokio-rustls: they are short-lived.
//!
//! Cancel safety: [`ControlTls::read_frames`] runs in the driver's
//! `select!`. Every byte read is processed within the poll that read it,
//! and TLS owed to the peer (an alert, the tickets) stays in
//! `outgoing` until written, so a read dropped between polls loses nothing.

use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use portcullis_proto::framing::{Frame, LineDecoder};
use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use super::{TlsError, ALPN_ACME};

/// The most one read takes. Commands are short; a longer record takes
/// several reads, joined in `incoming`.
const READ_BUF: usize = 2048;

/// Bound on the states one pass over the buffered bytes goes through (a
/// buffer holds at most a few hundred records; each takes a few states).
const MAX_STATES: usize = 1 << 16;

/// The most bytes kept unprocessed: a handshake message of up to 64 KiB
/// (rustls's own bound for its buffered connection) in fragments, and one
/// whole record past it. rustls keeps every fragment of a message it has
/// not seen the end of, so without this bound a client (logged in or not)
/// could make the session hold a gigabyte by announcing a long message and
/// sending it a byte per padded record.
const MAX_INCOMING: usize = (64 << 10) + (16 << 10) + 2048 + 5;

/// Reads the CCC shutdown takes at most, within its deadline, while it
/// skips the client's records up to its close_notify.
const MAX_CCC_READS: usize = 4096;

/// The server side of TLS on a control connection, over `S`.
pub struct ControlTls<S> {
    io: S,
    conn: UnbufferedServerConnection,
    /// Bytes read and not yet processed: the start of a record. Empty (and
    /// not allocated) between whole records.
    incoming: Vec<u8>,
    /// TLS to send; not allocated once written.
    outgoing: Vec<u8>,
    /// Plain text decrypted outside a read (with the handshake's last
    /// records, or while writing), handed out by the next read.
    plain: Vec<u8>,
    /// The peer sent close_notify: nothing more is read.
    peer_closed: bool,
    /// A TLS error ended the connection: the bytes that caused it are
    /// dropped (never processed again), and no close_notify follows the
    /// alert already sent.
    failed: bool,
}

impl<S> std::fmt::Debug for ControlTls<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlTls")
            .field("incoming", &self.incoming.len())
            .field("outgoing", &self.outgoing.len())
            .field("peer_closed", &self.peer_closed)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// Where a pass over the buffered bytes stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// More bytes from the peer are needed (the handshake, or a record
    /// arrived in part); application data may be written once the
    /// handshake is over.
    Read,
    /// The peer's close_notify was just processed.
    PeerClosed,
    /// Both sides sent close_notify.
    Closed,
}

/// What to do once the connection may send application data.
enum Sending<'a> {
    Nothing,
    Data(&'a [u8]),
    CloseNotify,
}

fn tls_err(e: rustls::Error) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e)
}

/// Append what `f` writes into a slice to `out`, growing it to the size
/// rustls asks for.
fn append<E>(
    out: &mut Vec<u8>,
    first_guess: usize,
    mut f: impl FnMut(&mut [u8]) -> Result<usize, E>,
    required: impl Fn(&E) -> Option<usize>,
) -> Result<(), E> {
    let start = out.len();
    out.resize(start + first_guess, 0);
    let r = match f(&mut out[start..]) {
        Err(e) => match required(&e) {
            Some(n) => {
                out.resize(start + n, 0);
                f(&mut out[start..])
            }
            None => Err(e),
        },
        ok => ok,
    };
    match r {
        Ok(n) => {
            out.truncate(start + n);
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

/// Run `conn` over `buf` until it needs more bytes or reports a close:
/// plain text to `sink`, TLS to send appended to `out`, and `send` done
/// when writing is allowed. Returns where it stopped and how many bytes
/// at the front of `buf` were used up (to be dropped by the caller).
fn pump(
    conn: &mut UnbufferedServerConnection,
    buf: &mut [u8],
    out: &mut Vec<u8>,
    sink: &mut dyn FnMut(&[u8]),
    mut send: Sending<'_>,
) -> (Result<Next, rustls::Error>, usize) {
    let mut used = 0;
    let mut peer_closed = false;
    for _ in 0..MAX_STATES {
        let UnbufferedStatus { discard, state } = conn.process_tls_records(&mut buf[used..]);
        let next = match state {
            Err(e) => {
                // The alert rustls queued for the peer, if any: it hands
                // out what it queued before it reads anything, so one call
                // encodes the alert without reading the bad bytes again
                // (which would fail, and alert, again). Over the same
                // bytes, not none: its reassembly of a handshake message
                // may still point into them, and an empty slice made it
                // panic (a fragment of an oversized ClientHello). Once
                // only: a second call would read them.
                if let Ok(ConnectionState::EncodeTlsData(mut alert)) =
                    conn.process_tls_records(&mut buf[used..]).state
                {
                    let _ = encode(&mut alert, out);
                }
                return (Err(e), used + discard);
            }
            Ok(ConnectionState::ReadTraffic(mut r)) => {
                while let Some(record) = r.next_record() {
                    match record {
                        Ok(record) => sink(record.payload),
                        Err(e) => return (Err(e), used + discard),
                    }
                }
                None
            }
            Ok(ConnectionState::EncodeTlsData(mut e)) => {
                if let Err(err) = encode(&mut e, out) {
                    return (Err(err), used + discard);
                }
                None
            }
            Ok(ConnectionState::TransmitTlsData(t)) => {
                // Sent by the caller, in order, before it reads again.
                t.done();
                None
            }
            Ok(ConnectionState::BlockedHandshake) if matches!(send, Sending::Nothing) => {
                Some(Next::Read)
            }
            Ok(ConnectionState::BlockedHandshake) => {
                let e = rustls::Error::General("writing before the handshake is done".into());
                return (Err(e), used + discard);
            }
            // Edge-triggered: with something to send, go on to the state
            // that allows it (rustls lets us write after the peer closed).
            Ok(ConnectionState::PeerClosed) if matches!(send, Sending::Nothing) => {
                Some(Next::PeerClosed)
            }
            Ok(ConnectionState::PeerClosed) => {
                peer_closed = true;
                None
            }
            Ok(ConnectionState::Closed) => Some(Next::Closed),
            Ok(ConnectionState::WriteTraffic(mut w)) => {
                let r = match std::mem::replace(&mut send, Sending::Nothing) {
                    Sending::Nothing => Ok(()),
                    Sending::Data(data) => {
                        append(out, data.len() + 256, |b| w.encrypt(data, b), too_small)
                    }
                    Sending::CloseNotify => append(out, 64, |b| w.queue_close_notify(b), too_small),
                };
                if let Err(e) = r {
                    let e = rustls::Error::General(format!("encrypting: {e}"));
                    return (Err(e), used + discard);
                }
                Some(if peer_closed {
                    Next::PeerClosed
                } else {
                    Next::Read
                })
            }
            Ok(_) => {
                // Early data is never accepted (max_early_data_size is 0).
                let e = rustls::Error::General("unexpected TLS state".into());
                return (Err(e), used + discard);
            }
        };
        used += discard;
        if let Some(next) = next {
            return (Ok(next), used);
        }
    }
    let e = rustls::Error::General("TLS records without end".into());
    (Err(e), used)
}

fn too_small(e: &EncryptError) -> Option<usize> {
    match e {
        EncryptError::InsufficientSize(s) => Some(s.required_size),
        _ => None,
    }
}

fn encode(
    e: &mut rustls::unbuffered::EncodeTlsData<'_, rustls::server::ServerConnectionData>,
    out: &mut Vec<u8>,
) -> Result<(), rustls::Error> {
    append(
        out,
        0,
        |b| e.encode(b),
        |err| match err {
            EncodeError::InsufficientSize(s) => Some(s.required_size),
            EncodeError::AlreadyEncoded => None,
        },
    )
    .map_err(|err| rustls::Error::General(format!("encoding: {err}")))
}

impl<S: AsyncRead + AsyncWrite + Unpin> ControlTls<S> {
    /// The server side of a handshake on `io`, bounded by `limit`. A
    /// handshake that negotiated ACME's `acme-tls/1` (a TLS-ALPN-01
    /// validation) is closed at once and is [`TlsError::AcmeValidation`].
    /// The TLS 1.3 tickets sent after the handshake are written before
    /// this returns.
    pub async fn accept(
        config: Arc<ServerConfig>,
        io: S,
        limit: Duration,
    ) -> Result<Box<Self>, TlsError> {
        let conn =
            UnbufferedServerConnection::new(config).map_err(|e| TlsError::Handshake(tls_err(e)))?;
        let mut tls = Box::new(ControlTls {
            io,
            conn,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            plain: Vec::new(),
            peer_closed: false,
            failed: false,
        });
        match tokio::time::timeout(limit, tls.handshake()).await {
            Ok(Ok(())) if tls.conn.alpn_protocol() == Some(ALPN_ACME) => {
                let _ = tokio::time::timeout(limit, tls.shutdown()).await;
                Err(TlsError::AcmeValidation)
            }
            Ok(Ok(())) => Ok(tls),
            Ok(Err(e)) => Err(TlsError::Handshake(e)),
            Err(_) => Err(TlsError::Timeout(limit)),
        }
    }

    async fn handshake(&mut self) -> std::io::Result<()> {
        loop {
            let next = self.pump_buffered(Sending::Nothing);
            // The server's flight (and, once done, the tickets), or an
            // alert before the error.
            self.flush().await?;
            match next? {
                Next::Read if !self.conn.is_handshaking() => return Ok(()),
                Next::Read => {
                    let (n, next) = std::future::poll_fn(|cx| self.poll_read_some(cx)).await?;
                    if n == 0 {
                        return Err(std::io::ErrorKind::UnexpectedEof.into());
                    }
                    if let Some(Err(e)) = next {
                        let _ = self.flush().await;
                        return Err(e);
                    }
                }
                Next::PeerClosed | Next::Closed => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "close_notify during the handshake",
                    ))
                }
            }
        }
    }

    /// The rustls connection's state shared by client and server (the
    /// negotiated protocol, the client's certificates).
    pub fn common(&self) -> &rustls::CommonState {
        &self.conn
    }

    /// Process what is in `incoming` (plain text to `plain`).
    fn pump_buffered(&mut self, send: Sending<'_>) -> std::io::Result<Next> {
        if self.failed {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the TLS connection failed",
            ));
        }
        let plain = &mut self.plain;
        let mut sink = |p: &[u8]| plain.extend_from_slice(p);
        let (next, used) = pump(
            &mut self.conn,
            &mut self.incoming,
            &mut self.outgoing,
            &mut sink,
            send,
        );
        self.consume(used);
        self.settle(next.map_err(tls_err))
    }

    /// Note the peer's close_notify, which rustls reports once, or the
    /// error that ends the connection; refuse to keep more than
    /// [`MAX_INCOMING`] bytes unprocessed.
    fn settle(&mut self, next: std::io::Result<Next>) -> std::io::Result<Next> {
        let next = match next {
            Ok(_) if self.incoming.len() > MAX_INCOMING => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "a TLS message longer than 64 KiB",
            )),
            next => next,
        };
        match next {
            Ok(Next::PeerClosed | Next::Closed) => self.peer_closed = true,
            Ok(Next::Read) => {}
            Err(_) => {
                self.failed = true;
                self.incoming = Vec::new();
            }
        }
        next
    }

    fn consume(&mut self, used: usize) {
        if used >= self.incoming.len() {
            self.incoming = Vec::new();
        } else {
            self.incoming.drain(..used);
        }
    }

    /// One read from the socket, processed at once: plain text to
    /// `self.plain`. The byte count read (0 at the end of the stream),
    /// and where processing stopped (none when nothing was read).
    fn poll_read_some(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<std::io::Result<(usize, Option<std::io::Result<Next>>)>> {
        let mut buf = [0u8; READ_BUF];
        let mut rb = ReadBuf::new(&mut buf);
        match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Ready(Ok(())) => {}
        }
        let n = rb.filled().len();
        if n == 0 {
            return Poll::Ready(Ok((0, None)));
        }
        let next = if self.incoming.is_empty() {
            // The usual case, a whole record or more: processed where it
            // was read, only a record's start kept.
            let plain = &mut self.plain;
            let mut sink = |p: &[u8]| plain.extend_from_slice(p);
            let (next, used) = pump(
                &mut self.conn,
                &mut buf[..n],
                &mut self.outgoing,
                &mut sink,
                Sending::Nothing,
            );
            if used < n {
                self.incoming.extend_from_slice(&buf[used..n]);
            }
            self.settle(next.map_err(tls_err))
        } else {
            self.incoming.extend_from_slice(&buf[..n]);
            self.pump_buffered(Sending::Nothing)
        };
        Poll::Ready(Ok((n, Some(next))))
    }

    /// Write `outgoing` out and free it. Cancel-safe: what was written is
    /// dropped from it at once.
    async fn flush(&mut self) -> std::io::Result<()> {
        while !self.outgoing.is_empty() {
            let n =
                std::future::poll_fn(|cx| Pin::new(&mut self.io).poll_write(cx, &self.outgoing))
                    .await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.outgoing.drain(..n);
        }
        self.outgoing = Vec::new();
        self.io.flush().await
    }

    /// Read what the client sent into `decoder`, its whole lines into
    /// `frames`; how many plain-text bytes were handed over (0 once the
    /// client closed). Cancel-safe.
    pub async fn read_frames(
        &mut self,
        decoder: &mut LineDecoder,
        frames: &mut Vec<Frame>,
    ) -> std::io::Result<usize> {
        // Bounded: each turn awaits the socket.
        loop {
            if !self.plain.is_empty() {
                let plain = std::mem::take(&mut self.plain);
                decoder.feed(&plain, frames);
                return Ok(plain.len());
            }
            // Owed to the peer from the last read (an alert). rustls sends its
            // answer to a key update with the next record it encrypts.
            self.flush().await?;
            if self.peer_closed {
                return Ok(0);
            }
            let (n, next) = std::future::poll_fn(|cx| self.poll_read_some(cx)).await?;
            match next {
                None if n == 0 && self.incoming.is_empty() => {
                    // No close_notify: a truncation that a client which
                    // sent a whole last record cannot tell from a close.
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                None => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "connection closed within a TLS record",
                    ))
                }
                Some(Err(e)) => {
                    self.flush_now().await;
                    return Err(e);
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// Try once, without waiting, to send what is owed (an alert before
    /// the session ends on an error).
    async fn flush_now(&mut self) {
        std::future::poll_fn(|cx| {
            if let Poll::Ready(Ok(n)) = Pin::new(&mut self.io).poll_write(cx, &self.outgoing) {
                self.outgoing.drain(..n);
            }
            Poll::Ready(())
        })
        .await;
        self.outgoing = Vec::new();
    }

    /// Encrypt and send `bytes`.
    pub async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.flush().await?;
        let next = self.pump_buffered(Sending::Data(bytes));
        let flushed = self.flush().await;
        match next? {
            Next::Read | Next::PeerClosed => flushed,
            Next::Closed => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    /// Send close_notify and shut the stream's writing side down (only
    /// the latter after a TLS error: its alert was the last record).
    pub async fn shutdown(&mut self) -> std::io::Result<()> {
        if self.failed {
            return self.io.shutdown().await;
        }
        let sent = self.send_close_notify().await;
        let shut = self.io.shutdown().await;
        sent.and(shut)
    }

    async fn send_close_notify(&mut self) -> std::io::Result<()> {
        self.flush().await?;
        let next = self.pump_buffered(Sending::CloseNotify);
        self.flush().await?;
        next.map(|_| ())
    }

    /// End TLS after CCC (RFC 4217 section 12.3), bounded by `limit`: send
    /// close_notify, then read the client's records up to its own
    /// close_notify (application data on the way is dropped). The stream
    /// and what followed that close_notify (a command in plain text) are
    /// returned. A client that goes on in plain text without a
    /// close_notify is taken at its word; one that sends nothing within
    /// `limit` is too.
    pub async fn into_plain(mut self: Box<Self>, limit: Duration) -> std::io::Result<(S, Vec<u8>)> {
        let deadline = tokio::time::Instant::now() + limit;
        let timed_out = |what: &str| std::io::Error::new(std::io::ErrorKind::TimedOut, what);
        tokio::time::timeout_at(deadline, self.send_close_notify())
            .await
            .map_err(|_| timed_out("CCC shutdown timed out"))??;
        // Bounded by the deadline, and by a count of reads.
        for _ in 0..MAX_CCC_READS {
            // Only whole records go to rustls: what follows them may be
            // plain text.
            let whole = whole_records(&self.incoming);
            if whole > 0 {
                let mut drop_plain = |_: &[u8]| {};
                let (next, used) = pump(
                    &mut self.conn,
                    &mut self.incoming[..whole],
                    &mut self.outgoing,
                    &mut drop_plain,
                    Sending::Nothing,
                );
                self.incoming.drain(..used);
                self.settle(next.map_err(tls_err))?;
                let _ = tokio::time::timeout_at(deadline, self.flush()).await;
            }
            if self.peer_closed {
                break;
            }
            // At a record boundary: a command starts with a letter, a TLS
            // record with a content type 20..=23.
            if self.incoming.first().is_some_and(|b| !is_record_type(*b)) {
                break;
            }
            let read = std::future::poll_fn(|cx| {
                let mut buf = [0u8; READ_BUF];
                let mut rb = ReadBuf::new(&mut buf);
                match Pin::new(&mut self.io).poll_read(cx, &mut rb) {
                    Poll::Ready(Ok(())) => {
                        self.incoming.extend_from_slice(rb.filled());
                        Poll::Ready(Ok(rb.filled().len()))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            });
            match tokio::time::timeout_at(deadline, read).await {
                Ok(Ok(0)) if self.incoming.is_empty() => break,
                Ok(Ok(0)) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(Ok(_)) if self.incoming.len() > MAX_INCOMING => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "a TLS message longer than 64 KiB after CCC",
                    ))
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(e),
                Err(_) if self.incoming.is_empty() => break,
                Err(_) => return Err(timed_out("partial TLS record after CCC")),
            }
        }
        let ControlTls { io, incoming, .. } = *self;
        Ok((io, incoming))
    }
}

/// A TLS record's content type (change_cipher_spec, alert, handshake,
/// application_data) as its first byte; FTP commands start with a letter.
fn is_record_type(b: u8) -> bool {
    (0x14..=0x17).contains(&b)
}

/// How many bytes at the front of `buf` are whole TLS records.
fn whole_records(buf: &[u8]) -> usize {
    let mut at = 0;
    while let Some(head) = buf.get(at..at + 5) {
        if !is_record_type(head[0]) {
            break;
        }
        let end = at + 5 + usize::from(u16::from_be_bytes([head[3], head[4]]));
        if end > buf.len() {
            break;
        }
        at = end;
    }
    at
}

#[cfg(test)]
mod tests;
