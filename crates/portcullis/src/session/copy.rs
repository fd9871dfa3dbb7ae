//! The copy loops of transfers that take no fast path (TLS, TYPE A,
//! throttled, or not Linux): downloads from a [`ReadStream`], uploads into
//! an [`Upload`], and how an upload ends (committed only when every byte
//! arrived, given up explicitly otherwise).

use std::sync::atomic::{AtomicU64, Ordering};

use portcullis_proto::ascii::{FromWire, ToWire};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::error::SessionError;
use crate::limits::Throttle;
use crate::storage::{ReadStream, StorageError, Upload};

/// Size of the copy buffer of one transfer.
const BUF_SIZE: usize = 256 * 1024;

/// Returns the number of bytes read from the source.
pub(super) async fn send_file<S>(
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

pub(super) async fn receive_file<S>(
    mut upload: Box<dyn Upload>,
    conn: &mut S,
    ascii: bool,
    progress: &AtomicU64,
    throttle: &Throttle,
) -> Result<(), SessionError>
where
    S: AsyncRead + Unpin,
{
    if !ascii {
        let moved = receive_binary(&mut upload, conn, progress, throttle).await;
        return finish(upload, moved).await;
    }
    // TYPE A: line ends are converted on the way in.
    let mut buf = vec![0u8; BUF_SIZE];
    let (mut conv, mut out) = (FromWire::default(), Vec::with_capacity(BUF_SIZE));
    let storage = |e| SessionError::Storage(StorageError::from_io(e));
    let moved = async {
        loop {
            // Under TLS, an end without close_notify is an error (rustls
            // reports UnexpectedEof), not an end of file: a forged FIN must
            // not commit a truncated upload.
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
    .await;
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

/// Binary uploads: fill a large buffer from the socket (several reads, no
/// zeroing) and hand the buffer itself to the upload, which writes it
/// without copying and returns an empty one.
pub(super) async fn receive_binary<S: AsyncRead + Unpin>(
    upload: &mut Box<dyn Upload>,
    conn: &mut S,
    progress: &AtomicU64,
    throttle: &Throttle,
) -> Result<(), SessionError> {
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
