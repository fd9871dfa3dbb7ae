//! An upload's reservation (its lease) and the [`Upload`] wrapper that
//! charges it before every write. Bytes are reserved from the root's tally
//! in chunks of [`CHUNK`] (at most a sixteenth of what is left), so the
//! tally's lock is taken about once per chunk, not per write; near the
//! limit only what the write needs is taken, so an upload can end exactly
//! at the limit.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_trait::async_trait;
use tokio::io::AsyncWrite;

use super::{lock, QuotaError, Tally, Target};
use crate::storage::{Budget, StorageError, Upload};

/// Bytes reserved at a time.
const CHUNK: u64 = 4 * 1024 * 1024;

/// One upload's reservation. Cloned for the splice pump's thread; the
/// accounting ends once, at [`Lease::end`] (or when the last clone drops).
#[derive(Debug, Clone)]
pub struct Lease {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    tally: Arc<Tally>,
    user: String,
    target: Target,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Bytes reserved in the tally for this upload.
    granted: u64,
    /// Bytes charged (written or about to be).
    written: u64,
    /// A new file reserved in the tally.
    file: bool,
    /// The accounting has ended (commit or give-up).
    ended: bool,
}

impl Lease {
    pub(super) fn begin(
        tally: Arc<Tally>,
        user: String,
        target: Target,
    ) -> Result<Lease, QuotaError> {
        let limits = tally.limits_of(&user);
        let mut file = false;
        {
            let mut u = lock(&tally.usage);
            if matches!(target, Target::New | Target::Created) {
                if let Some(max) = limits.files {
                    if u.files + u.reserved_files >= max {
                        return Err(QuotaError::Exceeded);
                    }
                }
                u.reserved_files += 1;
                file = true;
            }
            // REST + STOR truncates the file at the offset as it opens it.
            if let Target::InPlace { size, kept } = target {
                u.bytes = u.bytes.saturating_sub(size.saturating_sub(kept));
            }
        }
        Ok(Lease {
            inner: Arc::new(Inner {
                tally,
                user,
                target,
                state: Mutex::new(State {
                    file,
                    ..State::default()
                }),
            }),
        })
    }

    /// Reserve `n` more bytes before they are written: 552 when they would
    /// pass the quota (nothing reserved then).
    pub fn charge(&self, n: u64) -> Result<(), QuotaError> {
        let mut s = lock(&self.inner.state);
        if s.ended {
            return Err(QuotaError::Exceeded);
        }
        let want = s.written + n;
        if want <= s.granted {
            s.written = want;
            return Ok(());
        }
        let need = want - s.granted;
        let limits = self.inner.tally.limits_of(&self.inner.user);
        let mut u = lock(&self.inner.tally.usage);
        let grant = match limits.bytes {
            None => need.max(CHUNK),
            Some(max) => {
                let left = max.saturating_sub(u.bytes + u.reserved_bytes);
                if left < need {
                    return Err(QuotaError::Exceeded);
                }
                // A sixteenth of what is left at most: near the limit the
                // leases shrink, so that one upload does not hold the space
                // that its siblings could have written.
                need.max(CHUNK.min(left / 16))
            }
        };
        u.reserved_bytes += grant;
        s.granted += grant;
        s.written = want;
        Ok(())
    }

    /// Give back `n` bytes charged but not written (a write that took less).
    fn uncharge(&self, n: u64) {
        let mut s = lock(&self.inner.state);
        s.written = s.written.saturating_sub(n);
    }

    /// End the accounting: `committed` (published under its name) or not
    /// (given up: only what an in-place upload wrote stays).
    pub fn end(&self, committed: bool) {
        self.inner.end(committed);
    }
}

impl Inner {
    fn end(&self, committed: bool) {
        let mut s = lock(&self.state);
        if s.ended {
            return;
        }
        s.ended = true;
        let mut u = lock(&self.tally.usage);
        u.reserved_bytes = u.reserved_bytes.saturating_sub(s.granted);
        if s.file {
            u.reserved_files = u.reserved_files.saturating_sub(1);
        }
        match (self.target, committed) {
            (Target::InPlace { .. }, _) => u.bytes += s.written,
            (Target::Created, _) => {
                u.bytes += s.written;
                u.files += 1;
            }
            (_, false) => {}
            (Target::New, true) => {
                u.bytes += s.written;
                u.files += 1;
            }
            (Target::Replaces(old), true) => {
                u.bytes = (u.bytes + s.written).saturating_sub(old);
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.end(false);
    }
}

impl Budget for Lease {
    fn take(&self, n: u64) -> std::io::Result<()> {
        self.charge(n).map_err(quota_io)
    }
}

fn quota_io(e: QuotaError) -> std::io::Error {
    std::io::Error::other(match e {
        QuotaError::Exceeded => StorageError::QuotaExceeded,
        QuotaError::Counting => StorageError::Unavailable("quota usage being counted".into()),
    })
}

/// An upload whose writes are charged to a lease first (dropped
/// unfinished, as on ABOR, its lease ends as given up when the pump's
/// clone is gone too). Any back end's
/// upload is wrapped (the local writer, the object store's multipart
/// writer); the splice pump, which writes the file itself, charges the
/// same lease through [`Upload::budget`].
pub struct QuotaUpload {
    inner: Box<dyn Upload>,
    lease: Lease,
    /// Bytes charged by a `poll_write` that the upload has not taken yet.
    ahead: u64,
}

impl QuotaUpload {
    pub fn wrap(inner: Box<dyn Upload>, lease: Lease) -> Box<dyn Upload> {
        Box::new(QuotaUpload {
            inner,
            lease,
            ahead: 0,
        })
    }

    fn settle(&mut self) {
        self.lease.uncharge(std::mem::take(&mut self.ahead));
    }
}

impl AsyncWrite for QuotaUpload {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let len = buf.len() as u64;
        if len > this.ahead {
            if let Err(e) = this.lease.charge(len - this.ahead) {
                return Poll::Ready(Err(quota_io(e)));
            }
            this.ahead = len;
        }
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                // What was charged past `n` is given back.
                this.lease.uncharge(this.ahead - n as u64);
                this.ahead = 0;
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(e)) => {
                this.settle();
                Poll::Ready(Err(e))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Upload for QuotaUpload {
    async fn commit(mut self: Box<Self>) -> crate::storage::Result<()> {
        self.settle();
        let QuotaUpload { inner, lease, .. } = *self;
        let done = inner.commit().await;
        lease.end(done.is_ok());
        done
    }

    async fn abort(mut self: Box<Self>) -> crate::storage::Result<()> {
        self.settle();
        let QuotaUpload { inner, lease, .. } = *self;
        let done = inner.abort().await;
        lease.end(false);
        done
    }

    async fn write_owned(&mut self, buf: Vec<u8>) -> std::io::Result<Vec<u8>> {
        self.settle();
        self.lease.charge(buf.len() as u64).map_err(quota_io)?;
        self.inner.write_owned(buf).await
    }

    fn has_direct_file(&self) -> bool {
        self.inner.has_direct_file()
    }

    fn direct_file(&mut self) -> Option<std::fs::File> {
        self.inner.direct_file()
    }

    fn budget(&self) -> Option<Arc<dyn Budget>> {
        Some(Arc::new(self.lease.clone()))
    }

    fn digest(&self) -> Option<Arc<std::sync::OnceLock<String>>> {
        self.inner.digest()
    }
}
