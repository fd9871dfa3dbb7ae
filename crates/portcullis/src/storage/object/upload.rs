//! Uploads to an object store, streamed with bounded memory and nothing on
//! local disk. The bytes fill a buffer of one part; an upload that ends
//! before the first part is full (`s3.part_size`) is one PUT at commit. A
//! larger one becomes a multipart upload: each full buffer is sent as a
//! part while the next fills, with at most `s3.upload_streams` parts
//! being sent. Parts grow with the upload ([`super::parts`]: doubling every
//! `s3.part_doubling` parts, up to 5 GiB), so an object reaches S3's 5 TiB
//! within its 10,000 parts while an upload holds at most
//! `(upload_streams + 1)` times the current part (24 MiB at the defaults,
//! 2 streams of 8 MiB parts, for the first 7 GiB). Past 10,000 parts the
//! upload fails with 552.
//!
//! The object appears only when commit completes the multipart upload,
//! after the last byte arrived: the 226 follows the store's answer. An
//! upload that fails, is aborted or dropped aborts its multipart upload
//! (parts still being sent are stopped first; [`super::aborts`], which
//! the process waits for before it exits), so it leaves no object and no
//! incomplete upload, and an existing object is untouched. A process
//! killed outright leaves its incomplete uploads to the bucket's lifecycle
//! rule `AbortIncompleteMultipartUpload` (the book's Object storage page shows one). One
//! cancelled while its last request (the completion, or the single PUT)
//! is in flight may still appear, if the store carried that request out:
//! a window of one request.
//!
//! Without overwrite (a drop box, STOU): a single PUT is conditional
//! (`If-None-Match: *`, `PutMode::Create`), so an object created meanwhile
//! is never replaced; stores that ignore the header replace it. A
//! multipart upload completes with the condition where the provider
//! sends it ([`super::Provider::commit_new`]: Azure's Put Block List);
//! elsewhere it checks that the key is still free just before it
//! completes (`object_store` cannot send the condition with S3's
//! completion), which leaves a window of one request.
//!
//! With `limits.hash_on_upload`, the upload's SHA-256 goes into the
//! object's user metadata ([`super::digest`]): in the single PUT's
//! request, in the provider's own completion where it has one (Azure),
//! or else right after the completion by the provider's conditional
//! [`super::Provider::set_metadata`] (S3: a copy onto itself, for
//! objects within `Limits::max_copy`). A failure there loses only the
//! kept digest (HASH then reads the object), never the upload.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use object_store::multipart::PartId;
use object_store::path::Path as ObjPath;
use object_store::{Attribute, MultipartId, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use tokio::io::AsyncWrite;
use tokio::task::JoinHandle;

use super::aborts::Abandoned;
use super::digest;
use super::parts::PartSchedule;
use super::Store;
use crate::storage::{Result, StorageError, Upload};

/// Where an upload is with its multipart upload.
pub(super) enum Multipart {
    /// Not started: everything so far fits in one part.
    None,
    /// CreateMultipartUpload sent.
    Creating(JoinHandle<Result<MultipartId>>),
    Open {
        id: MultipartId,
        /// Sent, in order.
        parts: Vec<PartId>,
        /// Being sent, in order.
        in_flight: VecDeque<JoinHandle<Result<PartId>>>,
        /// Index of the next part.
        next: usize,
    },
    /// The multipart upload could not be created.
    Failed,
}

/// An upload to one key.
pub(super) struct ObjectUpload {
    store: Arc<Store>,
    location: ObjPath,
    /// Only if no object has the key (NoClobber, CreateNew).
    create: bool,
    parts: PartSchedule,
    /// Parts being sent at once, besides the one filling (`upload_streams`).
    streams: usize,
    /// Parts handed to the store so far: the one filling is this index.
    shipped: u64,
    timeout: Duration,
    buf: Vec<u8>,
    multipart: Multipart,
    /// Committed or given up: nothing is left for `Drop`.
    done: bool,
    /// The metadata value of the digest to keep with the object, and the
    /// size it covers ([`Upload::carry_digest`]).
    digest: Option<(String, u64)>,
}

impl ObjectUpload {
    pub(super) fn new(
        store: Arc<Store>,
        location: ObjPath,
        create: bool,
        parts: PartSchedule,
        streams: usize,
        timeout: Duration,
    ) -> ObjectUpload {
        ObjectUpload {
            store,
            location,
            create,
            parts,
            streams: streams.max(1),
            shipped: 0,
            timeout,
            buf: Vec::new(),
            multipart: Multipart::None,
            done: false,
            digest: None,
        }
    }

    /// Time for a request that carries `bytes`: `request_timeout` and one
    /// second per MiB (a store slower than 1 MiB/s fails).
    fn body_timeout(timeout: Duration, bytes: usize) -> Duration {
        timeout + Duration::from_secs((bytes >> 20) as u64)
    }

    /// The size of the part being filled.
    fn part_size(&self) -> usize {
        self.parts.size(self.shipped) as usize
    }

    /// Send the full buffer as the next part, once there is room for it.
    fn poll_ship(&mut self, cx: &mut Context<'_>) -> Poll<Result<()>> {
        loop {
            match &mut self.multipart {
                Multipart::None => {
                    let (store, loc, t) = (self.store.clone(), self.location.clone(), self.timeout);
                    self.multipart = Multipart::Creating(tokio::spawn(async move {
                        store.bounded(t, store.create_multipart(&loc)).await
                    }));
                }
                Multipart::Creating(h) => {
                    let r = ready!(Pin::new(h).poll(cx));
                    match r.map_err(|e| StorageError::Unavailable(e.to_string())) {
                        Ok(Ok(id)) => {
                            self.multipart = Multipart::Open {
                                id,
                                parts: Vec::new(),
                                in_flight: VecDeque::new(),
                                next: 0,
                            }
                        }
                        Ok(Err(e)) | Err(e) => {
                            self.multipart = Multipart::Failed;
                            return Poll::Ready(Err(e));
                        }
                    }
                }
                Multipart::Open {
                    id,
                    parts,
                    in_flight,
                    next,
                } => {
                    if in_flight.len() >= self.streams {
                        let Some(front) = in_flight.front_mut() else {
                            continue;
                        };
                        let r = ready!(Pin::new(front).poll(cx));
                        in_flight.pop_front();
                        parts.push(joined(r)?);
                        continue;
                    }
                    if *next as u64 >= self.parts.max_parts {
                        let section = self.store.provider().section();
                        tracing::warn!(
                            key = %self.location,
                            parts = self.parts.max_parts,
                            largest = self.parts.largest_object(),
                            "upload refused at the most parts a multipart upload has ({section}.part_size and {section}.part_doubling set the largest object)"
                        );
                        return Poll::Ready(Err(StorageError::NoSpace));
                    }
                    self.shipped += 1;
                    let next_part = self.parts.size(self.shipped) as usize;
                    let data = std::mem::replace(&mut self.buf, Vec::with_capacity(next_part));
                    let (store, loc, id, idx) =
                        (self.store.clone(), self.location.clone(), id.clone(), *next);
                    let t = Self::body_timeout(self.timeout, data.len());
                    in_flight.push_back(tokio::spawn(async move {
                        let part = store.put_part(&loc, &id, idx, PutPayload::from(data));
                        store.bounded(t, part).await
                    }));
                    *next += 1;
                    return Poll::Ready(Ok(()));
                }
                Multipart::Failed => {
                    return Poll::Ready(Err(StorageError::Unavailable(
                        "the multipart upload could not be created".into(),
                    )))
                }
            }
        }
    }

    /// Publish: one PUT, or the last part and the completion.
    async fn finish(&mut self) -> Result<()> {
        let mode = if self.create {
            PutMode::Create
        } else {
            PutMode::Overwrite
        };
        if matches!(self.multipart, Multipart::None) {
            let data = std::mem::take(&mut self.buf);
            let t = Self::body_timeout(self.timeout, data.len());
            let mut opts = PutOptions::from(mode);
            if let Some((value, _)) = &self.digest {
                opts.attributes.insert(
                    Attribute::Metadata(digest::NAME.into()),
                    value.clone().into(),
                );
            }
            let put = self
                .store
                .put_opts(&self.location, PutPayload::from(data), opts);
            return self.store.bounded(t, put).await.map(drop);
        }
        if !self.buf.is_empty() {
            futures_util::future::poll_fn(|cx| self.poll_ship(cx)).await?;
        }
        let Multipart::Open {
            id,
            parts,
            in_flight,
            ..
        } = &mut self.multipart
        else {
            return Err(StorageError::Unavailable(
                "the multipart upload could not be created".into(),
            ));
        };
        while let Some(h) = in_flight.front_mut() {
            let r = h.await;
            in_flight.pop_front();
            parts.push(joined(r)?);
        }
        let parts = std::mem::take(parts);
        let value = self
            .digest
            .as_ref()
            .map(|(v, _)| [(digest::NAME, v.as_str())]);
        let metadata: &[(&str, &str)] = value.as_ref().map_or(&[], |m| m);
        let key = self.location.as_ref();
        if self.create {
            if let Some(r) = self
                .store
                .provider()
                .commit_new(key, &parts, metadata)
                .await
            {
                return r;
            }
            if self
                .store
                .bounded(self.timeout, self.store.head(&self.location))
                .await
                .is_ok()
            {
                return Err(StorageError::AlreadyExists);
            }
        } else if !metadata.is_empty() {
            let provider = self.store.provider();
            if let Some(r) = provider.commit_with_metadata(key, &parts, metadata).await {
                return r;
            }
        }
        let t = Self::body_timeout(self.timeout, 0);
        let done = self.store.complete_multipart(&self.location, id, parts);
        let put = self.store.bounded(t, done).await?;
        if let (Some((_, size)), Some(etag)) = (&self.digest, put.e_tag) {
            self.set_metadata(&etag, *size, metadata).await;
        }
        Ok(())
    }

    /// After the generic completion: the digest's metadata set by the
    /// provider, conditional on the object the completion made (see the
    /// module). Logged, never failing the upload.
    async fn set_metadata(&self, etag: &str, size: u64, metadata: &[(&str, &str)]) {
        let provider = self.store.provider();
        let key = self.location.as_ref();
        if size > provider.limits().max_copy {
            tracing::debug!(
                key,
                size,
                "object over the copy limit: its SHA-256 is not kept with it"
            );
            return;
        }
        // The store may rewrite the object for this: the time of a body
        // of that size.
        let limit = Self::body_timeout(self.timeout, usize::try_from(size).unwrap_or(usize::MAX));
        match provider
            .set_metadata(key, etag, size, metadata, limit)
            .await
        {
            Some(Ok(true)) | None => {}
            Some(Ok(false)) => {
                tracing::debug!(
                    key,
                    "object replaced right after its upload: its SHA-256 is not kept with it"
                )
            }
            Some(Err(e)) => {
                tracing::warn!(key, error = %e, "could not keep the upload's SHA-256 with the object")
            }
        }
    }

    /// What giving up needs: the multipart upload, if any, to abort.
    fn abandon(&mut self) -> Abandoned {
        self.done = true;
        self.buf = Vec::new();
        Abandoned {
            store: self.store.clone(),
            location: self.location.clone(),
            multipart: std::mem::replace(&mut self.multipart, Multipart::None),
            timeout: self.timeout,
        }
    }
}

/// A part task's outcome.
fn joined(r: std::result::Result<Result<PartId>, tokio::task::JoinError>) -> Result<PartId> {
    r.map_err(|e| StorageError::Unavailable(e.to_string()))?
}

impl AsyncWrite for ObjectUpload {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        loop {
            let part = this.part_size();
            let room = part - this.buf.len().min(part);
            if room > 0 || data.is_empty() {
                let n = room.min(data.len());
                // Doubling, but never past one part (a 5 MiB part would
                // otherwise sit in an 8 MiB buffer).
                let need = this.buf.len() + n;
                if need > this.buf.capacity() {
                    let want = need.max(this.buf.capacity() * 2).min(part);
                    this.buf.reserve_exact(want - this.buf.len());
                }
                this.buf.extend_from_slice(&data[..n]);
                return Poll::Ready(Ok(n));
            }
            if let Err(e) = ready!(this.poll_ship(cx)) {
                return Poll::Ready(Err(std::io::Error::other(e)));
            }
        }
    }

    /// Parts are sent as they fill; the rest goes at commit.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[async_trait]
impl Upload for ObjectUpload {
    async fn commit(mut self: Box<Self>) -> Result<()> {
        match self.finish().await {
            Ok(()) => {
                self.done = true;
                Ok(())
            }
            Err(e) => {
                let _ = self.abandon().abort().await;
                Err(e)
            }
        }
    }

    async fn abort(mut self: Box<Self>) -> Result<()> {
        self.abandon().abort().await
    }

    /// Kept in the object's metadata by the commit (see the module).
    fn carry_digest(&mut self, sha256: &str, size: u64) -> bool {
        self.digest = Some((digest::encode(sha256, size), size));
        true
    }
}

impl Drop for ObjectUpload {
    /// Cancelled outright (ABOR, the session's end, a stall, the drain's
    /// cut): the abort needs requests, so it runs as a task of its own,
    /// which the process waits for before it exits ([`super::aborts`]).
    fn drop(&mut self) {
        if !self.done {
            self.abandon().detach();
        }
    }
}
