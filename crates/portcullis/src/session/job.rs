//! The work of one transfer, run in its own task so that the control
//! connection stays readable: open the data connection, move the bytes,
//! and produce the final reply (226, or 425/426/451/552 saying what failed).
//! One log line per transfer.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::events::{Direction, Event, Events, TransferRecord};
use portcullis_proto::ascii::{FromWire, ToWire};
use portcullis_proto::reply::{Reply, ReplyCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;

use super::error::{reply_for, AbortedAt, Phase, SessionError};
use super::fastpath;
use super::listing::Listing;
use crate::data::{DataSetup, OpenParams};
use crate::limits::Throttle;
use crate::storage::{ReadStream, StorageError, Upload};
use crate::tls::MaybeTls;

/// How a transfer's data connection is run, besides what it carries.
pub(super) struct DataOptions {
    /// TLS under PROT P.
    pub tls: Option<DataTls>,
    /// Bandwidth buckets the bytes are taken from.
    pub throttle: Throttle,
    /// Abort when no byte moves for this long (`limits.data_timeout`).
    pub stall_timeout: std::time::Duration,
}

/// TLS for a data connection under PROT P.
pub(super) struct DataTls {
    /// The control connection's own configuration (see [`crate::tls`]).
    pub config: Arc<rustls::ServerConfig>,
    /// Its session store, which decides on resumed sessions.
    pub store: Arc<crate::tls::SessionStore>,
    pub require_reuse: bool,
    pub timeout: std::time::Duration,
}

/// Size of the copy buffer of one transfer.
const BUF_SIZE: usize = 256 * 1024;

/// What a transfer does once its data connection is open.
pub(super) enum Job {
    Retr {
        reader: ReadStream,
        ascii: bool,
        /// Where the reader starts (REST).
        offset: u64,
    },
    Stor {
        upload: Box<dyn Upload>,
        ascii: bool,
    },
    /// A directory listing (see [`super::listing`]).
    List(Listing),
    /// A listing already rendered (LIST of a single file).
    Bytes(Vec<u8>),
}

/// What the transfer's record says besides its outcome, and where it goes.
#[derive(Debug)]
pub(super) struct JobInfo {
    pub verb: &'static str,
    pub path: String,
    pub user: String,
    pub peer: std::net::IpAddr,
    pub direction: Direction,
    /// The account is anonymous.
    pub anonymous: bool,
    pub events: Arc<Events>,
}

/// Run one transfer to its final reply.
pub(super) async fn run(
    job: Job,
    setup: DataSetup,
    params: OpenParams,
    data: DataOptions,
    cancel: CancellationToken,
    progress: Arc<AtomicU64>,
    info: JobInfo,
) -> Reply {
    let started = Instant::now();
    let passive = !matches!(setup, DataSetup::Active(_));
    let tls = data.tls.is_some();
    let ascii = matches!(
        job,
        Job::Retr { ascii: true, .. } | Job::Stor { ascii: true, .. }
    );
    let result = open_and_move(job, setup, params, data, &cancel, &progress).await;
    let JobInfo {
        verb,
        path,
        user,
        peer,
        direction,
        anonymous,
        events,
    } = info;
    let record = TransferRecord {
        user,
        peer,
        verb,
        path,
        direction,
        passive,
        tls,
        ascii,
        anonymous,
        bytes: progress.load(Ordering::Relaxed),
        duration: started.elapsed(),
        outcome: result.as_ref().map(|_| ()).map_err(|e| e.to_string()),
    };
    events.emit(Event::Transfer(&record));
    match result {
        Ok(()) => Reply::new(ReplyCode::TRANSFER_COMPLETE, "Transfer complete."),
        Err(e) => {
            if let SessionError::Storage(error) = &e {
                events.emit(Event::Storage { error });
            }
            reply_for(&e, Phase::Transfer)
        }
    }
}

/// Open the data connection (and its TLS), then move the bytes.
async fn open_and_move(
    job: Job,
    setup: DataSetup,
    params: OpenParams,
    data: DataOptions,
    cancel: &CancellationToken,
    progress: &Arc<AtomicU64>,
) -> Result<(), SessionError> {
    let tcp = tokio::select! {
        c = setup.open(params) => c?,
        _ = cancel.cancelled() => return Err(SessionError::Aborted(AbortedAt::Connecting)),
    };
    let DataOptions {
        tls,
        throttle,
        stall_timeout,
    } = data;
    let conn: MaybeTls = match tls {
        None => Either::Left(tcp),
        Some(t) => {
            let shake =
                crate::tls::accept_data(t.config, &t.store, tcp, t.timeout, t.require_reuse);
            tokio::select! {
                s = shake => Either::Right(s?),
                _ = cancel.cancelled() => return Err(SessionError::Aborted(AbortedAt::Handshake)),
            }
        }
    };
    // In this order: a transfer that finishes at its first poll (a small
    // file) never arms the stall timer, whose registration wakes the
    // runtime's I/O driver (an eventfd write and an extra epoll_wait).
    tokio::select! {
        biased;
        r = transfer(job, conn, progress, &throttle) => r,
        _ = cancel.cancelled() => Err(SessionError::Aborted(AbortedAt::Transfer)),
        _ = stalled(progress, stall_timeout) => Err(SessionError::Stalled(stall_timeout)),
    }
}

/// Resolves once `progress` has not moved for `limit` (checked a few times
/// per period, so the abort comes between `limit` and 1.25 x `limit`).
async fn stalled(progress: &AtomicU64, limit: std::time::Duration) {
    let tick = (limit / 4).max(std::time::Duration::from_millis(50));
    let mut last = progress.load(Ordering::Relaxed);
    let mut since = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        let now = progress.load(Ordering::Relaxed);
        if now != last {
            last = now;
            since = tokio::time::Instant::now();
        } else if since.elapsed() >= limit {
            return;
        }
    }
}

async fn transfer(
    job: Job,
    conn: MaybeTls,
    progress: &Arc<AtomicU64>,
    throttle: &Throttle,
) -> Result<(), SessionError> {
    #[cfg(unix)]
    let (job, conn) = match (job, conn) {
        (
            Job::Stor {
                upload,
                ascii: false,
            },
            Either::Left(tcp),
        ) if throttle.is_unlimited() => {
            return fastpath::pump::receive(upload, tcp, progress).await;
        }
        other => other,
    };
    let mut conn = conn;
    let conn = &mut conn;
    #[cfg(target_os = "linux")]
    let job = match (job, &*conn) {
        (
            Job::Retr {
                reader: ReadStream::File { file, size },
                ascii: false,
                offset,
            },
            Either::Left(tcp),
        ) => {
            let len = size.saturating_sub(offset);
            fastpath::sendfile::send(file, offset, len, tcp, progress, throttle).await?;
            return conn.shutdown().await.map_err(SessionError::DataLost);
        }
        (job, _) => job,
    };
    match job {
        Job::Retr {
            reader,
            ascii,
            offset,
        } => {
            let expected = match &reader {
                ReadStream::File { size, .. } => size.saturating_sub(offset),
                ReadStream::Stream(_) => 0,
            };
            let read = send_file(reader, conn, ascii, progress, throttle).await?;
            if read < expected {
                return Err(SessionError::Shrank(expected - read));
            }
        }
        Job::Stor { upload, ascii } => {
            // Once the upload is committed the transfer has succeeded; a
            // client that already closed its end cannot make it fail.
            receive_file(upload, conn, ascii, progress, throttle).await?;
            let _ = conn.shutdown().await;
            return Ok(());
        }
        Job::List(listing) => listing
            .send(conn, progress, throttle)
            .await
            .map_err(SessionError::DataLost)?,
        Job::Bytes(mut b) => {
            b.extend_from_slice(b"\r\n");
            conn.write_all(&b).await.map_err(SessionError::DataLost)?;
            progress.fetch_add(b.len() as u64, Ordering::Relaxed);
        }
    }
    conn.shutdown().await.map_err(SessionError::DataLost)
}

/// Returns the number of bytes read from the source.
async fn send_file<S>(
    mut reader: ReadStream,
    conn: &mut S,
    ascii: bool,
    progress: &AtomicU64,
    throttle: &Throttle,
) -> Result<u64, SessionError>
where
    S: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUF_SIZE];
    let mut conv = ascii.then(|| (ToWire::default(), Vec::with_capacity(BUF_SIZE * 2)));
    let mut read = 0u64;
    loop {
        let n = reader
            .read(&mut buf)
            .await
            .map_err(|e| SessionError::Storage(StorageError::from_io(e)))?;
        if n == 0 {
            return Ok(read);
        }
        read += n as u64;
        match &mut conv {
            Some((c, out)) => {
                out.clear();
                c.convert(&buf[..n], out);
                conn.write_all(out).await.map_err(SessionError::DataLost)?;
            }
            None => conn
                .write_all(&buf[..n])
                .await
                .map_err(SessionError::DataLost)?,
        }
        progress.fetch_add(n as u64, Ordering::Relaxed);
        throttle.consume(n).await;
    }
}

async fn receive_file<S>(
    mut upload: Box<dyn Upload>,
    conn: &mut S,
    ascii: bool,
    progress: &AtomicU64,
    throttle: &Throttle,
) -> Result<(), SessionError>
where
    S: AsyncRead + Unpin,
{
    let moved = if ascii {
        receive_ascii(&mut upload, conn, progress, throttle).await
    } else {
        receive_binary(&mut upload, conn, progress, throttle).await
    };
    finish(upload, moved).await
}

/// Commit an upload whose bytes all arrived, or give it up explicitly
/// (and wait for that) when they did not: no file claims success.
pub(super) async fn finish(
    upload: Box<dyn Upload>,
    moved: Result<(), SessionError>,
) -> Result<(), SessionError> {
    match moved {
        Ok(()) => upload.commit().await.map_err(SessionError::Storage),
        Err(e) => {
            if let Err(a) = upload.abort().await {
                tracing::warn!(error = %a, "could not give up a failed upload");
            }
            Err(e)
        }
    }
}

/// TYPE A uploads: line ends are converted on the way in.
async fn receive_ascii<S>(
    upload: &mut Box<dyn Upload>,
    conn: &mut S,
    progress: &AtomicU64,
    throttle: &Throttle,
) -> Result<(), SessionError>
where
    S: AsyncRead + Unpin,
{
    let mut buf = vec![0u8; BUF_SIZE];
    let (mut conv, mut out) = (FromWire::default(), Vec::with_capacity(BUF_SIZE));
    let storage = |e| SessionError::Storage(StorageError::from_io(e));
    loop {
        // Under TLS, an end without close_notify is an error (rustls reports
        // UnexpectedEof), not an end of file: a forged FIN must not commit a
        // truncated upload.
        let n = conn.read(&mut buf).await.map_err(SessionError::DataLost)?;
        if n == 0 {
            break;
        }
        progress.fetch_add(n as u64, Ordering::Relaxed);
        throttle.consume(n).await;
        out.clear();
        conv.convert(&buf[..n], &mut out);
        upload.write_all(&out).await.map_err(storage)?;
    }
    out.clear();
    conv.finish(&mut out);
    upload.write_all(&out).await.map_err(storage)
}

/// Binary uploads: fill a large buffer from the socket (several reads, no
/// zeroing) and hand the buffer itself to the upload, which writes it
/// without copying and returns an empty one.
pub(super) async fn receive_binary<S>(
    upload: &mut Box<dyn Upload>,
    conn: &mut S,
    progress: &AtomicU64,
    throttle: &Throttle,
) -> Result<(), SessionError>
where
    S: AsyncRead + Unpin,
{
    const FILL: usize = 512 * 1024;
    let storage = |e| SessionError::Storage(StorageError::from_io(e));
    let mut buf: Vec<u8> = Vec::with_capacity(FILL);
    loop {
        let more = fill(conn, &mut buf, FILL, progress, throttle).await?;
        if !buf.is_empty() {
            buf = upload.write_owned(buf).await.map_err(storage)?;
            buf.clear();
        }
        if !more {
            return Ok(());
        }
        buf.reserve(FILL);
    }
}

/// Read into `buf` until it holds `limit` bytes (true) or the peer's end
/// of file (false). Under TLS an end without close_notify is an error, not
/// an end of file (see receive_file).
pub(super) async fn fill<S>(
    conn: &mut S,
    buf: &mut Vec<u8>,
    limit: usize,
    progress: &AtomicU64,
    throttle: &Throttle,
) -> Result<bool, SessionError>
where
    S: AsyncRead + Unpin,
{
    while buf.len() < limit {
        let n = conn.read_buf(buf).await.map_err(SessionError::DataLost)?;
        if n == 0 {
            return Ok(false);
        }
        progress.fetch_add(n as u64, Ordering::Relaxed);
        throttle.consume(n).await;
    }
    Ok(true)
}
