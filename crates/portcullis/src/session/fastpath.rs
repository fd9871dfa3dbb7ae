//! The platform fast paths of a transfer, in one place: `sendfile(2)` for
//! plain binary downloads of local files, and for plain binary uploads a
//! blocking thread that moves the bytes with `splice(2)` (or read/write).
//! [`super::route`] picks them when the transfer allows (no TLS, no TYPE A
//! conversion, no bandwidth limit for uploads) and the opened stream or
//! upload offers a plain local file (`ReadStream::into_plain_file`,
//! `Upload::has_direct_file`), and the portable copy loops (`copy.rs`)
//! otherwise. The `unsafe`-free syscalls come through
//! rustix.

/// Plain binary downloads of local files: `sendfile(2)` moves the bytes from
/// the page cache to the socket without copying them through user space.
#[cfg(target_os = "linux")]
pub(super) mod sendfile {
    use std::sync::atomic::{AtomicU64, Ordering};

    use tokio::io::Interest;
    use tokio::net::TcpStream;

    use crate::limits::Throttle;
    use crate::session::error::SessionError;

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
    pub(in crate::session) async fn send(
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
pub(super) mod pump {
    use std::io::{Read, Write};
    use std::net::Shutdown;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpStream;

    use crate::session::copy;
    use crate::session::error::{AbortedAt, SessionError};
    use crate::storage::{Budget, StorageError, Upload};

    /// Read on the runtime first: an upload that ends within this many bytes
    /// is written, fsynced and published in one blocking job, with no thread.
    const HEAD: usize = 64 * 1024;
    /// Bytes per read on the thread.
    const BUF: usize = 512 * 1024;
    /// A blocked read wakes this often to see whether the transfer was
    /// dropped (ABOR, stall); the drop also shuts the socket's read side,
    /// which wakes it at once.
    const WAKE: Duration = Duration::from_millis(250);

    pub(in crate::session) async fn receive(
        mut upload: Box<dyn Upload>,
        mut tcp: TcpStream,
        progress: &Arc<AtomicU64>,
    ) -> Result<(), SessionError> {
        let storage = |e| SessionError::Storage(StorageError::from_io(e));
        let unlimited = crate::limits::Throttle::default();
        let mut head = Vec::with_capacity(HEAD);
        let more = match copy::fill(&mut tcp, &mut head, HEAD, progress, &unlimited).await {
            Ok(more) => more,
            Err(e) => return copy::finish(upload, Err(e)).await,
        };
        let file = if more { upload.direct_file() } else { None };
        let Some(file) = file else {
            // A small upload (or a second handle refused): the general
            // path.
            let moved = async {
                upload.write_owned(head).await.map_err(storage)?;
                if !more {
                    return Ok(());
                }
                copy::receive_binary(&mut upload, &mut tcp, progress, &unlimited).await
            }
            .await;
            copy::finish(upload, moved).await?;
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
            Err(e) => return copy::finish(upload, Err(SessionError::DataLost(e))).await,
        };
        let stop = Arc::new(AtomicBool::new(false));
        let mut guard = StopOnDrop {
            sock: sock.clone(),
            stop: stop.clone(),
            armed: true,
        };
        let progress = progress.clone();
        let thread_sock = sock.clone();
        // The account's quota, asked before every write (the pump writes
        // the file itself, past the upload's own accounting).
        let budget = upload.budget();
        let pumped = tokio::task::spawn_blocking(move || {
            pump(
                &thread_sock,
                file,
                head,
                &progress,
                &stop,
                budget.as_deref(),
            )
        })
        .await;
        guard.armed = false;
        let moved =
            pumped.unwrap_or_else(|e| Err(SessionError::DataLost(std::io::Error::other(e))));
        copy::finish(upload, moved).await?;
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
        budget: Option<&dyn Budget>,
    ) -> Result<(), SessionError> {
        let storage = |e| SessionError::Storage(StorageError::from_io(e));
        take(budget, head.len())?;
        file.write_all(&head).map_err(storage)?;
        drop(head);
        #[cfg(target_os = "linux")]
        if let Some(done) = splice::pump(sock, &mut file, progress, stop, budget) {
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
            take(budget, n)?;
            file.write_all(&buf[..n]).map_err(storage)?;
        }
        ended(stop)
    }

    /// Ask the quota for `n` bytes about to be written (552 if they would
    /// pass it: the caller gives the upload up).
    fn take(budget: Option<&dyn Budget>, n: usize) -> Result<(), SessionError> {
        match budget {
            Some(b) => b
                .take(n as u64)
                .map_err(|e| SessionError::Storage(StorageError::from_io(e))),
            None => Ok(()),
        }
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

        use super::{ended, retry, take, AbortedAt, Budget, SessionError};
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
            budget: Option<&dyn Budget>,
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
                // What is in the pipe is not written if it would pass the quota.
                if let Err(e) = take(budget, n) {
                    return Some(Err(e));
                }
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
