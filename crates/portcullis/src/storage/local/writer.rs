//! Uploads written by one blocking thread per upload. The async side fills
//! large buffers and hands them over a short queue; the thread writes them
//! with plain `write(2)` and hands them back for reuse. Compared with
//! `tokio::fs::File`, which sends every write to the blocking pool as a
//! separate job, this keeps the socket being read while the disk is being
//! written, without a task hand-off or an allocation per chunk. An upload
//! smaller than one buffer starts no thread at all: it is written and
//! fsynced in a single blocking job when it is finished.

use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::PollSender;

/// Bytes handed to the thread at a time.
const CHUNK: usize = 512 * 1024;
/// Chunks queued for the thread (memory per upload: about QUEUE + 2 chunks).
const QUEUE: usize = 2;
/// First buffer of an upload: most uploads are small; it grows to CHUNK.
const FIRST: usize = 64 * 1024;

type Done = JoinHandle<std::io::Result<std::fs::File>>;

/// The writing thread, once started.
struct Thread {
    tx: PollSender<Vec<u8>>,
    /// Buffers the thread has written, to fill again.
    free: mpsc::UnboundedReceiver<Vec<u8>>,
    done: Done,
}

pub(super) struct FileWriter {
    buf: Vec<u8>,
    /// The file until the thread takes it.
    file: Option<std::fs::File>,
    thread: Option<Thread>,
    /// Set when the upload is dropped unfinished: no fsync for it then.
    abandoned: Arc<AtomicBool>,
    /// fsync the file when it is finished (`server.fsync_uploads`).
    fsync: bool,
}

impl FileWriter {
    pub(super) fn new(file: std::fs::File, fsync: bool) -> Self {
        FileWriter {
            buf: Vec::with_capacity(FIRST),
            file: Some(file),
            thread: None,
            abandoned: Arc::new(AtomicBool::new(false)),
            fsync,
        }
    }

    /// Whether [`FileWriter::direct_file`] can give a handle: nothing
    /// buffered or handed to a thread yet.
    pub(super) fn has_direct_file(&self) -> bool {
        self.thread.is_none() && self.buf.is_empty() && self.file.is_some()
    }

    /// A second handle on the file, while nothing is buffered or handed
    /// to a thread (see `Upload::direct_file`).
    pub(super) fn direct_file(&mut self) -> Option<std::fs::File> {
        if !self.has_direct_file() {
            return None;
        }
        self.file.as_ref()?.try_clone().ok()
    }

    fn start_thread(&mut self) -> std::io::Result<()> {
        if self.thread.is_none() {
            let mut file = self.file.take().ok_or_else(closed)?;
            let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUE);
            let (back, free) = mpsc::unbounded_channel();
            let dropped = self.abandoned.clone();
            let fsync = self.fsync;
            let done = tokio::task::spawn_blocking(move || {
                while let Some(mut buf) = rx.blocking_recv() {
                    file.write_all(&buf)?;
                    buf.clear();
                    let _ = back.send(buf);
                }
                // Durable before the upload can be reported complete.
                if fsync && !dropped.load(Ordering::Relaxed) {
                    file.sync_all()?;
                }
                Ok(file)
            });
            self.thread = Some(Thread {
                tx: PollSender::new(tx),
                free,
                done,
            });
        }
        Ok(())
    }

    /// Hand the current buffer to the thread (waiting for queue space).
    fn poll_hand_over(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.buf.is_empty() {
            return Poll::Ready(Ok(()));
        }
        if let Err(e) = self.start_thread() {
            return Poll::Ready(Err(e));
        }
        let Some(t) = self.thread.as_mut() else {
            return Poll::Ready(Err(closed()));
        };
        match t.tx.poll_reserve(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => return self.poll_thread_error(cx),
            Poll::Ready(Ok(())) => {}
        }
        let next = t
            .free
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.buf, next);
        if t.tx.send_item(full).is_err() {
            return self.poll_thread_error(cx);
        }
        Poll::Ready(Ok(()))
    }

    /// The thread stopped taking buffers because a write failed: its error
    /// (ENOSPC, EDQUOT, EIO...) is what the client's reply must say.
    fn poll_thread_error(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let Some(t) = self.thread.as_mut() else {
            return Poll::Ready(Err(closed()));
        };
        match std::future::Future::poll(Pin::new(&mut t.done), cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                self.thread = None;
                Poll::Ready(Err(match r {
                    Ok(Err(e)) => e,
                    Ok(Ok(_)) => closed(),
                    Err(join) => std::io::Error::other(join),
                }))
            }
        }
    }

    /// Take `data` over without copying it (unless the upload is still
    /// small enough to need no thread), and give back an empty buffer.
    pub(super) async fn write_owned(&mut self, mut data: Vec<u8>) -> std::io::Result<Vec<u8>> {
        if self.thread.is_none() && self.buf.len() + data.len() < CHUNK {
            self.buf.extend_from_slice(&data);
            data.clear();
            return Ok(data);
        }
        // What poll_write gathered goes first, then `data` itself.
        std::future::poll_fn(|cx| self.poll_hand_over(cx)).await?;
        let spare = std::mem::replace(&mut self.buf, data);
        std::future::poll_fn(|cx| self.poll_hand_over(cx)).await?;
        // `self.buf` is now an empty (recycled) buffer: give the caller the
        // larger of the two, keep the other for poll_write.
        if spare.capacity() > self.buf.capacity() {
            Ok(spare)
        } else {
            Ok(std::mem::replace(&mut self.buf, spare))
        }
    }

    /// Write what is left and fsync, then run `publish` (the rename into
    /// place): the file is then complete and durable. For an upload that
    /// never needed a thread this is one blocking job in all.
    pub(super) async fn finish<F>(&mut self, publish: F) -> std::io::Result<()>
    where
        F: FnOnce() -> std::io::Result<()> + Send + 'static,
    {
        if let Some(mut file) = self.file.take() {
            let buf = std::mem::take(&mut self.buf);
            let fsync = self.fsync;
            let job = move || {
                file.write_all(&buf)?;
                if fsync {
                    file.sync_all()?;
                }
                drop(file);
                publish()
            };
            // Without fsync this is a write to the page cache and a rename:
            // metadata-sized calls, made inline like the others.
            if !fsync {
                return job();
            }
            return tokio::task::spawn_blocking(job)
                .await
                .map_err(std::io::Error::other)?;
        }
        std::future::poll_fn(|cx| self.poll_hand_over(cx)).await?;
        let Some(t) = self.thread.take() else {
            return Err(closed());
        };
        drop(t.tx);
        let file = t.done.await.map_err(std::io::Error::other)??;
        drop(file);
        if !self.fsync {
            return publish();
        }
        tokio::task::spawn_blocking(publish)
            .await
            .map_err(std::io::Error::other)?
    }
}

fn closed() -> std::io::Error {
    std::io::Error::other("upload writer stopped")
}

impl AsyncWrite for FileWriter {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if this.buf.len() >= CHUNK {
            match this.poll_hand_over(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = data.len().min(CHUNK - this.buf.len());
        this.buf.extend_from_slice(&data[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        // Buffered bytes go to the file in `finish` (or on drop).
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.poll_flush(cx)
    }
}

impl Drop for FileWriter {
    /// An upload dropped before `finish` (the client went away, ABOR, a
    /// stall): the bytes already received still go to the file, as they do
    /// with a plain `write`. What happens to the file then is the upload's
    /// business (a temporary file is removed; an append keeps them).
    fn drop(&mut self) {
        self.abandoned.store(true, Ordering::Relaxed);
        let rest = std::mem::take(&mut self.buf);
        if rest.is_empty() {
            return;
        }
        if let Some(file) = self.file.as_mut() {
            // Less than a buffer, never handed to a thread: one write.
            let _ = file.write_all(&rest);
            return;
        }
        let Some(sender) = self.thread.take().and_then(|t| t.tx.get_ref().cloned()) else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(rest)) = sender.try_send(rest) {
            match tokio::runtime::Handle::try_current() {
                Ok(h) => {
                    h.spawn(async move {
                        let _ = sender.send(rest).await;
                    });
                }
                Err(_) => {
                    let _ = sender.blocking_send(rest);
                }
            }
        }
    }
}
