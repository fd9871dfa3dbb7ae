//! An upload's reservation (its lease) and the [`Upload`] wrapper that
//! charges it before every write. Bytes are reserved from the root's tally
//! in chunks of [`CHUNK`] (at most a sixteenth of what is left), so the
//! tally's lock is taken about once per chunk, not per write; near the
//! limit only what the write needs is taken, so an upload can end exactly
//! at the limit. With `[cluster]` each chunk is one Redis call (the
//! fleet's check, `fleet.rs`): a write inside the chunk asks nothing.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_trait::async_trait;
use futures_util::future::BoxFuture;
use tokio::io::AsyncWrite;

use super::{lock, QuotaError, Tally, Target};
use crate::storage::{Budget, StorageError, Upload};

/// Bytes reserved at a time.
pub(super) const CHUNK: u64 = 4 * 1024 * 1024;

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
    pub(super) async fn begin(
        tally: Arc<Tally>,
        user: String,
        target: Target,
    ) -> Result<Lease, QuotaError> {
        let limits = tally.limits_of(&user);
        let file = matches!(target, Target::New | Target::Created);
        if file {
            tally.reserve(limits, 0, true).await?;
        }
        // REST + STOR truncates the file at the offset as it opens it.
        if let Target::InPlace { size, kept } = target {
            let cut = super::fleet::signed(size.saturating_sub(kept));
            if cut > 0 {
                tally.apply((0, 0), (-cut, 0));
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

    /// Charge `n` bytes from what is granted already: `Some(need)` when
    /// `need` more must be reserved first (nothing charged then).
    fn try_charge(&self, n: u64) -> Result<Option<u64>, QuotaError> {
        let mut s = lock(&self.inner.state);
        if s.ended {
            return Err(QuotaError::Exceeded);
        }
        let want = s.written + n;
        if want <= s.granted {
            s.written = want;
            return Ok(None);
        }
        Ok(Some(want - s.granted))
    }

    /// Add `grant` reserved bytes and charge `n`; a lease that ended
    /// meanwhile gives the grant back.
    fn add_grant(&self, grant: u64, n: u64) -> Result<(), QuotaError> {
        let mut s = lock(&self.inner.state);
        if s.ended {
            drop(s);
            self.inner.tally.apply((grant, 0), (0, 0));
            return Err(QuotaError::Exceeded);
        }
        s.granted += grant;
        let want = s.written + n;
        if want > s.granted {
            return Err(QuotaError::Exceeded);
        }
        s.written = want;
        Ok(())
    }

    /// Reserve `n` more bytes before they are written: 552 when they would
    /// pass the quota (nothing reserved then). From a thread outside the
    /// runtime's workers (the splice pump's) when the fleet's Redis is
    /// used: it waits for that call.
    pub fn charge(&self, n: u64) -> Result<(), QuotaError> {
        let Some(need) = self.try_charge(n)? else {
            return Ok(());
        };
        let tally = &self.inner.tally;
        let limits = tally.limits_of(&self.inner.user);
        let grant = match (&tally.runtime, tally.fleet_up()) {
            (Some(rt), Some(_)) => rt.block_on(tally.reserve(limits, need, false))?,
            _ => tally.reserve_local(limits, need, false)?,
        };
        self.add_grant(grant, n)
    }

    /// [`Lease::charge`] from this node's tally alone (never waits).
    fn charge_here(&self, n: u64) -> Result<(), QuotaError> {
        let Some(need) = self.try_charge(n)? else {
            return Ok(());
        };
        let tally = &self.inner.tally;
        let limits = tally.limits_of(&self.inner.user);
        let grant = tally.reserve_local(limits, need, false)?;
        self.add_grant(grant, n)
    }

    /// [`Lease::charge`] from a task: the chunk (with `[cluster]`) waited
    /// for without blocking.
    pub async fn charge_async(&self, n: u64) -> Result<(), QuotaError> {
        let Some(need) = self.try_charge(n)? else {
            return Ok(());
        };
        let limits = self.inner.tally.limits_of(&self.inner.user);
        let grant = self.inner.tally.reserve(limits, need, false).await?;
        self.add_grant(grant, n)
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
        let res = (s.granted, u64::from(s.file));
        let written = super::fleet::signed(s.written);
        drop(s);
        let delta = match (self.target, committed) {
            (Target::InPlace { .. }, _) => (written, 0),
            (Target::Created, _) => (written, 1),
            (_, false) => (0, 0),
            (Target::New, true) => (written, 1),
            (Target::Replaces(old), true) => (written - super::fleet::signed(old), 0),
        };
        self.tally.apply(res, delta);
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
    /// A chunk being reserved from the fleet for `poll_write`, and the
    /// bytes it charges.
    pending: Option<(BoxFuture<'static, Result<(), QuotaError>>, u64)>,
}

impl QuotaUpload {
    pub fn wrap(inner: Box<dyn Upload>, lease: Lease) -> Box<dyn Upload> {
        Box::new(QuotaUpload {
            inner,
            lease,
            ahead: 0,
            pending: None,
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
        // Bounded: each round charges, returns, or starts the one
        // reservation that the next round waits for.
        loop {
            if let Some((fut, n)) = this.pending.as_mut() {
                let n = *n;
                match fut.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(r) => {
                        this.pending = None;
                        match r {
                            Ok(()) => this.ahead += n,
                            Err(e) => return Poll::Ready(Err(quota_io(e))),
                        }
                    }
                }
            }
            if len <= this.ahead {
                break;
            }
            let need = len - this.ahead;
            if this.lease.inner.tally.fleet_up().is_none() {
                if let Err(e) = this.lease.charge_here(need) {
                    return Poll::Ready(Err(quota_io(e)));
                }
                this.ahead = len;
                break;
            }
            let lease = this.lease.clone();
            this.pending = Some((
                Box::pin(async move { lease.charge_async(need).await }),
                need,
            ));
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
        self.lease
            .charge_async(buf.len() as u64)
            .await
            .map_err(quota_io)?;
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
