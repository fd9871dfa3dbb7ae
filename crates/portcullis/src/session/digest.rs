//! `limits.hash_on_upload = "sha256"`: an upload's SHA-256 computed as
//! its bytes are written (no second read), given to the transfer's record
//! (the upload event, the log) and kept with the file by its storage
//! (`Storage::keep_digest`: a user extended attribute on local roots;
//! `Upload::carry_digest`: the object's metadata on object stores),
//! with the size and modification time it covers, so that HASH answers
//! from it while the file is unchanged. The bytes hashed are those
//! written, so TYPE A uploads hash the stored bytes, as HASH does. Such
//! an upload does not take the `splice(2)` fast path, whose bytes never
//! pass through the server (`has_direct_file` is false).

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use async_trait::async_trait;
use portcullis_proto::path::VirtualPath;
use sha2::Digest;
use tokio::io::AsyncWrite;

use crate::storage::{KeptDigest, Storage, Upload};

/// An upload whose bytes are hashed on their way to `inner`.
pub(super) struct DigestUpload {
    inner: Box<dyn Upload>,
    hasher: sha2::Sha256,
    written: u64,
    storage: Arc<dyn Storage>,
    path: VirtualPath,
    slot: Arc<OnceLock<String>>,
}

impl DigestUpload {
    pub(super) fn wrap(
        inner: Box<dyn Upload>,
        storage: Arc<dyn Storage>,
        path: VirtualPath,
    ) -> Box<dyn Upload> {
        Box::new(DigestUpload {
            inner,
            hasher: sha2::Sha256::new(),
            written: 0,
            storage,
            path,
            slot: Arc::default(),
        })
    }
}

impl AsyncWrite for DigestUpload {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            this.hasher.update(&buf[..*n]);
            this.written += *n as u64;
        }
        r
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Upload for DigestUpload {
    async fn commit(self: Box<Self>) -> crate::storage::Result<()> {
        let DigestUpload {
            inner,
            hasher,
            written,
            storage,
            path,
            slot,
        } = *self;
        let sha256 = hex(&hasher.finalize());
        let mut inner = inner;
        if inner.carry_digest(&sha256, written) {
            // Kept by the commit itself (an object's metadata).
            inner.commit().await?;
            let _ = slot.set(sha256);
            return Ok(());
        }
        inner.commit().await?;
        let _ = slot.set(sha256.clone());
        // What the digest covers, as the file now is: a later change
        // (another upload, MFMT, a write outside the server) makes it
        // stale, and HASH reads the file again.
        match storage.metadata(&path).await {
            Ok(m) if m.size == written => {
                let kept = KeptDigest {
                    sha256,
                    size: m.size,
                    modified: m.modified,
                };
                if let Err(e) = storage.keep_digest(&path, &kept).await {
                    tracing::warn!(path = %path, error = %e, "could not keep the upload's SHA-256 with the file");
                }
            }
            // Changed already (or gone): nothing worth keeping.
            _ => {}
        }
        Ok(())
    }

    async fn abort(self: Box<Self>) -> crate::storage::Result<()> {
        self.inner.abort().await
    }

    async fn write_owned(&mut self, buf: Vec<u8>) -> std::io::Result<Vec<u8>> {
        self.hasher.update(&buf);
        let n = buf.len() as u64;
        let back = self.inner.write_owned(buf).await?;
        self.written += n;
        Ok(back)
    }

    fn digest(&self) -> Option<Arc<OnceLock<String>>> {
        Some(self.slot.clone())
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}
