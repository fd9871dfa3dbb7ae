//! Uploads written by one blocking thread per upload. The async side fills
//! large buffers and hands them over a short queue; the thread writes them
//! with plain `write(2)` and hands them back for reuse. Compared with
//! `tokio::fs::File`, which sends every write to the blocking pool as a
//! separate job, this keeps the socket being read while the disk is being
//! written, without a task hand-off or an allocation per chunk.

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

pub(super) struct FileWriter {
    buf: Vec<u8>,
    tx: Option<PollSender<Vec<u8>>>,
    /// Buffers the thread has written, to fill again.
    free: mpsc::UnboundedReceiver<Vec<u8>>,
    thread: Option<JoinHandle<std::io::Result<std::fs::File>>>,
    /// Set when the upload is dropped unfinished: no fsync for it then.
    abandoned: Arc<AtomicBool>,
}

impl FileWriter {
    pub(super) fn new(mut file: std::fs::File) -> Self {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(QUEUE);
        let (back, free) = mpsc::unbounded_channel();
        let abandoned = Arc::new(AtomicBool::new(false));
        let dropped = abandoned.clone();
        let thread = tokio::task::spawn_blocking(move || {
            while let Some(mut buf) = rx.blocking_recv() {
                file.write_all(&buf)?;
                buf.clear();
                let _ = back.send(buf);
            }
            // Durable before the upload can be reported complete.
            if !dropped.load(Ordering::Relaxed) {
                file.sync_all()?;
            }
            Ok(file)
        });
        FileWriter {
            buf: Vec::with_capacity(CHUNK),
            tx: Some(PollSender::new(tx)),
            free,
            thread: Some(thread),
            abandoned,
        }
    }

    /// Hand the current buffer to the thread (waiting for queue space).
    fn poll_hand_over(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        if self.buf.is_empty() {
            return Poll::Ready(Ok(()));
        }
        let Some(tx) = self.tx.as_mut() else {
            return Poll::Ready(Err(closed()));
        };
        match tx.poll_reserve(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(_)) => return self.poll_thread_error(cx),
            Poll::Ready(Ok(())) => {}
        }
        let next = self
            .free
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.buf, next);
        if tx.send_item(full).is_err() {
            return self.poll_thread_error(cx);
        }
        Poll::Ready(Ok(()))
    }

    /// The thread stopped taking buffers because a write failed: its error
    /// (ENOSPC, EDQUOT, EIO...) is what the client's reply must say.
    fn poll_thread_error(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let Some(thread) = self.thread.as_mut() else {
            return Poll::Ready(Err(closed()));
        };
        match std::future::Future::poll(Pin::new(thread), cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(r) => {
                self.thread = None;
                self.tx = None;
                Poll::Ready(Err(match r {
                    Ok(Err(e)) => e,
                    Ok(Ok(_)) => closed(),
                    Err(join) => std::io::Error::other(join),
                }))
            }
        }
    }

    /// Write what is left, wait for the thread, fsync: the file is then
    /// complete and durable.
    pub(super) async fn finish(&mut self) -> std::io::Result<std::fs::File> {
        std::future::poll_fn(|cx| self.poll_hand_over(cx)).await?;
        self.tx = None;
        match self.thread.take() {
            Some(t) => t.await.map_err(std::io::Error::other)?,
            None => Err(closed()),
        }
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
                Poll::Ready(Err(e)) => {
                    // Surface the thread's own error when it has one.
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = data.len().min(CHUNK - this.buf.len());
        this.buf.extend_from_slice(&data[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        self.get_mut().poll_hand_over(cx)
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
        if self.thread.is_some() {
            self.abandoned.store(true, Ordering::Relaxed);
        }
        let rest = std::mem::take(&mut self.buf);
        let Some(sender) = self.tx.take().and_then(|t| t.get_ref().cloned()) else {
            return;
        };
        if rest.is_empty() {
            return;
        }
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
