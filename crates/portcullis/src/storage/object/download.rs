//! RETR of a large object as a window of ranged GETs, so that a download
//! is not held to what one HTTP stream of the store gives.
//!
//! The first GET asks for the first chunk (`s3.download_chunk`, from the
//! REST offset); its answer gives the object's size and ETag. If more
//! remains, up to `s3.download_streams - 1` GETs of the next chunks run
//! at once, each a task, each with `If-Match` on that ETag so that an
//! object replaced during the download ends it (451) rather than mixing
//! two versions. The first chunk's body streams to the client as it
//! arrives; each later chunk is read whole by its task, checked to be
//! exactly its length, and handed on in order; as one is handed on, the
//! GET of the next chunk starts. A chunk is kept as the pieces the HTTP
//! client read, not copied into one buffer: that copy, and the page
//! faults of a fresh 8 MiB buffer per chunk, were a tenth of the
//! server's CPU in a RETR (perf, 2026-12-04). A download therefore holds
//! at most `download_streams x download_chunk` bytes (32 MiB by
//! default), and the client's read buffers around them.
//! Dropping the stream (the client went, the transfer was aborted)
//! aborts the GETs in flight.

use std::collections::VecDeque;
use std::io;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use object_store::path::Path as ObjPath;
use object_store::{GetOptions, GetRange, GetResult};
use tokio_util::task::AbortOnDropHandle;

use super::Store;
use crate::storage::StorageError;

/// How many chunks a download fetches at once, and how big they are.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub streams: usize,
    pub chunk: u64,
}

/// The first GET: the first chunk from `offset`. `None` when it could not
/// be a ranged GET (an empty object answers 416, a store may ignore the
/// range, a missing key or a directory needs the caller's own handling):
/// the caller then makes one plain GET, which gives the right reply.
/// `Some(Err)`: the store did not answer within `limit`.
pub async fn first(
    store: &Store,
    loc: &ObjPath,
    offset: u64,
    chunk: u64,
    limit: Duration,
) -> Option<crate::storage::Result<GetResult>> {
    let opts = GetOptions {
        range: Some(GetRange::Bounded(offset..offset + chunk)),
        ..Default::default()
    };
    match tokio::time::timeout(limit, store.get_opts(loc, opts)).await {
        Ok(Ok(got)) => Some(Ok(got)),
        Ok(Err(_)) => None,
        Err(_) => Some(Err(StorageError::Unavailable(store.no_answer(limit)))),
    }
}

/// The object's bytes from the first GET's range to its end: that GET's
/// body, then the later chunks in order.
pub fn stream(
    store: Arc<Store>,
    loc: ObjPath,
    got: GetResult,
    window: Window,
    limit: Duration,
) -> BoxStream<'static, io::Result<Bytes>> {
    let total = got.meta.size;
    let next = got.range.end;
    let etag = got.meta.e_tag.clone();
    let mapper = store.clone();
    let head = got
        .into_stream()
        .map_err(move |e| io::Error::other(mapper.map_err(e)));
    if next >= total {
        return head.boxed();
    }
    let mut rest = Rest {
        store,
        loc,
        etag,
        limit,
        chunk: window.chunk,
        next,
        end: total,
        in_flight: VecDeque::new(),
        ahead: window.streams.max(2) - 1,
        failed: false,
    };
    // The later chunks start now, while the first one streams.
    rest.refill();
    let rest = stream::unfold(rest, |mut rest| async move {
        if rest.failed {
            return None;
        }
        let task = rest.in_flight.pop_front()?;
        rest.refill();
        let got = task
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e.to_string())));
        rest.failed = got.is_err();
        Some((got, rest))
    })
    .map_ok(|pieces| stream::iter(pieces.into_iter().map(Ok)))
    .try_flatten();
    head.chain(rest).boxed()
}

/// The chunks after the first: those being fetched, and where the next
/// one starts.
struct Rest {
    store: Arc<Store>,
    loc: ObjPath,
    etag: Option<String>,
    limit: Duration,
    chunk: u64,
    next: u64,
    end: u64,
    in_flight: VecDeque<AbortOnDropHandle<io::Result<Vec<Bytes>>>>,
    /// Chunks fetched ahead of the one being sent.
    ahead: usize,
    failed: bool,
}

impl Rest {
    fn refill(&mut self) {
        while self.in_flight.len() < self.ahead && self.next < self.end {
            let range = self.next..self.end.min(self.next + self.chunk);
            self.next = range.end;
            let task = tokio::spawn(chunk(
                self.store.clone(),
                self.loc.clone(),
                range,
                self.etag.clone(),
                self.limit,
            ));
            self.in_flight.push_back(AbortOnDropHandle::new(task));
        }
    }
}

/// One later chunk, whole, exactly `range` long, in the pieces the
/// client read.
async fn chunk(
    store: Arc<Store>,
    loc: ObjPath,
    range: Range<u64>,
    etag: Option<String>,
    limit: Duration,
) -> io::Result<Vec<Bytes>> {
    let want = range.end - range.start;
    let opts = GetOptions {
        range: Some(GetRange::Bounded(range)),
        if_match: etag,
        ..Default::default()
    };
    let changed = || {
        io::Error::other(StorageError::Unavailable(
            "the object changed during the download (its ETag no longer matches)".into(),
        ))
    };
    let got = match store.bounded(limit, store.get_opts(&loc, opts)).await {
        Ok(got) => got,
        // 412 (If-Match failed) is mapped as "already exists" elsewhere.
        Err(StorageError::AlreadyExists) => return Err(changed()),
        Err(e) => return Err(io::Error::other(e)),
    };
    let short = |sent: u64| {
        io::Error::other(StorageError::Unavailable(format!(
            "the store sent {sent} bytes of a {want}-byte range"
        )))
    };
    let mut body = got.into_stream();
    let (mut pieces, mut sent) = (Vec::new(), 0u64);
    while let Some(piece) = body.next().await {
        let piece = piece.map_err(|e| match e {
            object_store::Error::Precondition { .. } => changed(),
            e => io::Error::other(store.map_err(e)),
        })?;
        sent += piece.len() as u64;
        if sent > want {
            return Err(short(sent));
        }
        pieces.push(piece);
    }
    if sent != want {
        return Err(short(sent));
    }
    Ok(pieces)
}
