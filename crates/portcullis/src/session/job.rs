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
    let result = open_and_move(job, setup, params, data, &cancel, &progress).await;
    let JobInfo {
        verb,
        path,
        user,
        peer,
        direction,
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
            return pump::receive(upload, tcp, progress).await;
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
            sendfile::send(file, offset, len, tcp, progress, throttle).await?;
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
async fn finish(
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
async fn receive_binary<S>(
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
async fn fill<S>(
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

/// Plain binary downloads of local files: `sendfile(2)` moves the bytes from
/// the page cache to the socket without copying them through user space.
#[cfg(target_os = "linux")]
mod sendfile {
    use std::sync::atomic::{AtomicU64, Ordering};

    use tokio::io::Interest;
    use tokio::net::TcpStream;

    use super::SessionError;
    use crate::limits::Throttle;

    /// Bytes per sendfile call. Smaller calls release the socket between
    /// bursts, so acknowledgements and the receiver's wake-ups interleave
    /// with the sending: against 4 MiB calls, 256 KiB gave 23% more on
    /// loopback (14 fresh-server RETRs each, medians 3430 vs 2780 MB/s;
    /// 128 KiB was no better), and one transfer cannot hog a worker.
    const CHUNK: usize = 256 << 10;
    const THROTTLED_CHUNK: usize = 64 << 10;

    /// Send `len` bytes of `file` from `offset` (what it had when it was
    /// opened). A file truncated meanwhile is an error, never a short file
    /// reported complete; one that grew is sent as it was.
    pub(super) async fn send(
        file: tokio::fs::File,
        mut offset: u64,
        len: u64,
        conn: &TcpStream,
        progress: &AtomicU64,
        throttle: &Throttle,
    ) -> Result<(), SessionError> {
        // Throttled transfers go in smaller steps so that the pacing is even.
        let chunk = if throttle.is_unlimited() {
            CHUNK
        } else {
            THROTTLED_CHUNK
        };
        let file = file.into_std().await;
        let mut left = len;
        // A new connection's send buffer is empty: the first call is made
        // at once, not after a trip through the runtime's poller to learn
        // that the socket is writable (a small file then needs no other).
        let mut first = true;
        while left > 0 {
            let step = usize::try_from(left).map_or(chunk, |l| l.min(chunk));
            let direct = if std::mem::take(&mut first) {
                rustix::fs::sendfile(conn, &file, Some(&mut offset), step)
            } else {
                Err(rustix::io::Errno::AGAIN)
            };
            let sent = match direct {
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {
                    conn.async_io(Interest::WRITABLE, || {
                        rustix::fs::sendfile(conn, &file, Some(&mut offset), step)
                            .map_err(std::io::Error::from)
                    })
                    .await
                }
                r => r.map_err(std::io::Error::from),
            };
            match sent {
                Ok(0) => return Err(SessionError::Shrank(left)),
                Ok(n) => {
                    left -= n as u64;
                    progress.fetch_add(n as u64, Ordering::Relaxed);
                    throttle.consume(n).await;
                }
                // sendfile does not say which side failed; a socket error is
                // by far the likelier (the client went away).
                Err(e) => return Err(SessionError::DataLost(e)),
            }
        }
        Ok(())
    }
}

/// Plain, unthrottled binary uploads to a local file: past the first
/// `HEAD` bytes, one blocking thread reads the data connection and writes the
/// file in turn (as a process-per-session server does), instead of a runtime
/// worker reading and a writer thread writing: no hand-off per buffer, and
/// the bytes are written from the cache of the core that received them.
#[cfg(unix)]
mod pump {
    use std::io::{Read, Write};
    use std::net::Shutdown;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;

    use super::{AbortedAt, SessionError};
    use crate::storage::{StorageError, Upload};

    /// Read on the runtime first: an upload that ends within this many bytes
    /// is written, fsynced and published in one blocking job, with no thread.
    const HEAD: usize = 64 * 1024;
    /// Bytes per read on the thread.
    const BUF: usize = 512 * 1024;
    /// A blocked read wakes this often to see whether the transfer was
    /// dropped (ABOR, stall); the drop also shuts the socket's read side,
    /// which wakes it at once.
    const WAKE: Duration = Duration::from_millis(250);

    pub(super) async fn receive(
        mut upload: Box<dyn Upload>,
        mut tcp: TcpStream,
        progress: &Arc<AtomicU64>,
    ) -> Result<(), SessionError> {
        let storage = |e| SessionError::Storage(StorageError::from_io(e));
        let unlimited = crate::limits::Throttle::default();
        let mut head = Vec::with_capacity(HEAD);
        let more = match super::fill(&mut tcp, &mut head, HEAD, progress, &unlimited).await {
            Ok(more) => more,
            Err(e) => return super::finish(upload, Err(e)).await,
        };
        let file = if more { upload.direct_file() } else { None };
        let Some(file) = file else {
            // A small upload, or a back-end without a plain file: the
            // general path.
            let moved = async {
                upload.write_owned(head).await.map_err(storage)?;
                if !more {
                    return Ok(());
                }
                super::receive_binary(&mut upload, &mut tcp, progress, &unlimited).await
            }
            .await;
            super::finish(upload, moved).await?;
            // Once the upload is committed the transfer has succeeded.
            let _ = tcp.shutdown().await;
            return Ok(());
        };
        // Off the runtime's poller (which would otherwise wake for every
        // segment that arrives) and blocking, with a timeout to look at
        // `stop` now and then.
        let blocking = tcp.into_std().and_then(|sock| {
            sock.set_nonblocking(false)?;
            sock.set_read_timeout(Some(WAKE))?;
            Ok(sock)
        });
        let sock = match blocking {
            Ok(sock) => Arc::new(sock),
            Err(e) => return super::finish(upload, Err(SessionError::DataLost(e))).await,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let mut guard = StopOnDrop {
            sock: sock.clone(),
            stop: stop.clone(),
            armed: true,
        };
        let progress = progress.clone();
        let thread_sock = sock.clone();
        let pumped =
            tokio::task::spawn_blocking(move || pump(&thread_sock, file, head, &progress, &stop))
                .await;
        guard.armed = false;
        let moved =
            pumped.unwrap_or_else(|e| Err(SessionError::DataLost(std::io::Error::other(e))));
        super::finish(upload, moved).await?;
        let _ = sock.shutdown(Shutdown::Write);
        Ok(())
    }

    /// Stops the thread when the transfer future is dropped before it ends.
    struct StopOnDrop {
        sock: Arc<std::net::TcpStream>,
        stop: Arc<AtomicBool>,
        armed: bool,
    }

    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            if self.armed {
                self.stop.store(true, Ordering::Relaxed);
                let _ = self.sock.shutdown(Shutdown::Read);
            }
        }
    }

    fn pump(
        mut sock: &std::net::TcpStream,
        mut file: std::fs::File,
        head: Vec<u8>,
        progress: &AtomicU64,
        stop: &AtomicBool,
    ) -> Result<(), SessionError> {
        let storage = |e| SessionError::Storage(StorageError::from_io(e));
        file.write_all(&head).map_err(storage)?;
        drop(head);
        #[cfg(target_os = "linux")]
        if let Some(done) = splice::pump(sock, &mut file, progress, stop) {
            return done;
        }
        let mut buf = vec![0u8; BUF];
        loop {
            if stop.load(Ordering::Relaxed) {
                return Err(SessionError::Aborted(AbortedAt::Transfer));
            }
            let n = match sock.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if retry(&e) => continue,
                Err(e) => return Err(SessionError::DataLost(e)),
            };
            progress.fetch_add(n as u64, Ordering::Relaxed);
            file.write_all(&buf[..n]).map_err(storage)?;
        }
        ended(stop)
    }

    /// A read side shut by the drop guard ends like a FIN: not a success.
    fn ended(stop: &AtomicBool) -> Result<(), SessionError> {
        if stop.load(Ordering::Relaxed) {
            return Err(SessionError::Aborted(AbortedAt::Transfer));
        }
        Ok(())
    }

    /// Whether a failed read only means "nothing yet": look at `stop`, retry.
    fn retry(e: &std::io::Error) -> bool {
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock
                | std::io::ErrorKind::TimedOut
                | std::io::ErrorKind::Interrupted
        )
    }

    /// Socket to file through a pipe with splice(2): the data goes from the
    /// socket's buffers to the page cache without a copy into user space.
    #[cfg(target_os = "linux")]
    mod splice {
        use std::io::{Read, Write};
        use std::os::fd::OwnedFd;
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

        use rustix::io::Errno;
        use rustix::pipe::{fcntl_setpipe_size, pipe_with, splice, PipeFlags, SpliceFlags};

        use super::{ended, retry, AbortedAt, SessionError};
        use crate::storage::StorageError;

        /// The pipe's capacity, and so the most one splice call moves.
        const PIPE: usize = 1024 * 1024;

        /// `None` when splicing is not possible here (no pipe, or a file
        /// system that cannot take spliced pages) before any data moved:
        /// the caller then copies.
        pub(super) fn pump(
            sock: &std::net::TcpStream,
            file: &mut std::fs::File,
            progress: &AtomicU64,
            stop: &AtomicBool,
        ) -> Option<Result<(), SessionError>> {
            let (pipe_r, pipe_w) = pipe_with(PipeFlags::CLOEXEC).ok()?;
            // Larger than the default 64 KiB if allowed; a smaller pipe works.
            let chunk = fcntl_setpipe_size(&pipe_w, PIPE).unwrap_or(64 * 1024);
            let mut first = true;
            loop {
                if stop.load(Ordering::Relaxed) {
                    return Some(Err(SessionError::Aborted(AbortedAt::Transfer)));
                }
                let n = match splice(sock, None, &pipe_w, None, chunk, SpliceFlags::MOVE) {
                    Ok(0) => return Some(ended(stop)),
                    Ok(n) => n,
                    Err(e) => {
                        let e = std::io::Error::from(e);
                        if retry(&e) {
                            continue;
                        }
                        return Some(Err(SessionError::DataLost(e)));
                    }
                };
                progress.fetch_add(n as u64, Ordering::Relaxed);
                match drain(&pipe_r, file, n) {
                    Ok(()) => {}
                    Err(Errno::INVAL) if first => {
                        // The file system has no splice write: copy what
                        // is in the pipe, then let the caller copy the rest.
                        return copy_out(&pipe_r, file, n).err().map(Err);
                    }
                    Err(e) => {
                        let e = std::io::Error::from(e);
                        return Some(Err(SessionError::Storage(StorageError::from_io(e))));
                    }
                }
                first = false;
            }
        }

        /// Moves exactly `n` bytes from the pipe into the file.
        fn drain(pipe: &OwnedFd, file: &std::fs::File, mut n: usize) -> Result<(), Errno> {
            while n > 0 {
                match splice(pipe, None, file, None, n, SpliceFlags::MOVE) {
                    Ok(0) => return Err(Errno::IO),
                    Ok(m) => n -= m,
                    Err(Errno::INTR) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }

        fn copy_out(
            pipe: &OwnedFd,
            file: &mut std::fs::File,
            n: usize,
        ) -> Result<(), SessionError> {
            let mut buf = vec![0u8; n];
            let mut pipe = std::fs::File::from(pipe.try_clone().map_err(SessionError::DataLost)?);
            pipe.read_exact(&mut buf).map_err(SessionError::DataLost)?;
            file.write_all(&buf)
                .map_err(|e| SessionError::Storage(StorageError::from_io(e)))
        }
    }
}
