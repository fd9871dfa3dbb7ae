//! Directory listings over delimiter listings: one page of keys and
//! prefixes at a time (at most [`PAGE`] entries held), so a prefix with a
//! million objects is never loaded whole. A key that cannot be a path
//! (put by another tool: `d/a\x01`, or `d/./x` and `d//x`, which a
//! delimiter listing of `d/` shows as the prefixes `d/./` and `d//`) is
//! left out of its page and named in a warning, once for each page that
//! holds it ([`fetch`]); the rest of the directory lists as usual.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::stream::{self, BoxStream, StreamExt};
use object_store::list::PaginatedListOptions;
use object_store::path::Path as ObjPath;
use object_store::{ListResult, ObjectMeta};

use super::{dir_meta, file_meta, Store};
use crate::storage::{DirEntry, Result, StorageError};

/// Keys asked for per listing request (S3's most; Azure's is 5,000).
pub(super) const PAGE: usize = 1000;

/// One page of what is right below a directory, its marker set apart.
#[derive(Debug)]
pub(super) struct Page {
    marker: Option<ObjectMeta>,
    dirs: Vec<ObjPath>,
    files: Vec<ObjectMeta>,
    /// Keys and prefixes left out (they cannot be paths): the directory
    /// exists and is not empty all the same.
    skipped: usize,
}

impl Page {
    /// Sort a listing of `dir`'s prefix: the object whose key is `DIR/`
    /// (read back as `dir` itself) is the directory's marker.
    pub(super) fn new(dir: &ObjPath, r: ListResult, skipped: usize) -> Page {
        let mut marker = None;
        let mut files = Vec::with_capacity(r.objects.len());
        for o in r.objects {
            if &o.location == dir {
                marker = Some(o);
            } else {
                files.push(o);
            }
        }
        Page {
            marker,
            dirs: r.common_prefixes,
            files,
            skipped,
        }
    }

    /// No entries (a marker may be there).
    pub(super) fn is_empty(&self) -> bool {
        self.dirs.is_empty() && self.files.is_empty() && self.skipped == 0
    }

    /// Nothing at all, not even a marker: no such directory.
    pub(super) fn is_absent(&self) -> bool {
        self.is_empty() && self.marker.is_none()
    }

    pub(super) fn marker_time(&self) -> Option<SystemTime> {
        self.marker.as_ref().map(|m| m.last_modified.into())
    }

    fn into_entries(self) -> Vec<Result<DirEntry>> {
        let dirs = self.dirs.into_iter().filter_map(|p| {
            let name = p.filename()?.to_owned();
            Some(Ok(DirEntry {
                name,
                meta: dir_meta(UNIX_EPOCH),
                target: None,
            }))
        });
        let files = self.files.into_iter().filter_map(|o| {
            let name = o.location.filename()?.to_owned();
            Some(Ok(DirEntry {
                name,
                meta: file_meta(&o),
                target: None,
            }))
        });
        dirs.chain(files).collect()
    }
}

/// Keys named in a warning about one page, at most.
const NAMED: usize = 10;

/// One page of the delimiter listing of `prefix` (the directory `dir`),
/// and the token of the next. `object_store` refuses a whole page for one
/// key it cannot make a path of; that page is read again by the provider
/// ([`super::Provider::raw_page`]), those keys left out, counted in the
/// page and named (quoted, escaped) in one warning.
pub(super) async fn fetch(
    store: &Store,
    dir: &ObjPath,
    prefix: Option<&str>,
    opts: PaginatedListOptions,
    timeout: Duration,
) -> Result<(Page, Option<String>)> {
    let again = opts.clone();
    match store
        .bounded(timeout, store.list_paginated(prefix, opts))
        .await
    {
        Ok(r) => Ok((Page::new(dir, r.result, 0), r.page_token)),
        // A listing names no path of ours: a bad name is one in the answer.
        Err(StorageError::BadName) => {
            let raw = store.provider().raw_page(prefix, &again).await?;
            let named = &raw.skipped[..raw.skipped.len().min(NAMED)];
            // Values as they are: the log's format quotes and escapes them
            // (crate::logging), so a hostile key cannot forge a field.
            tracing::warn!(
                prefix = %prefix.unwrap_or(""),
                skipped = raw.skipped.len(),
                keys = %named.join(", "),
                "listing: left out keys and prefixes that cannot be paths (empty, . or .. segments, control characters; put by another tool)"
            );
            Ok((Page::new(dir, raw.result, raw.skipped.len()), raw.token))
        }
        Err(e) => Err(e),
    }
}

/// Where a listing is between pages.
struct Cursor {
    store: Arc<Store>,
    prefix: Option<String>,
    dir: ObjPath,
    token: Option<String>,
    done: bool,
    timeout: Duration,
}

/// The entries of the directory whose contents are under `prefix`, page
/// by page. A failed page ends the listing with its error.
pub(super) fn entries(
    store: Arc<Store>,
    prefix: Option<String>,
    dir: ObjPath,
    timeout: Duration,
) -> BoxStream<'static, Result<DirEntry>> {
    let start = Cursor {
        store,
        prefix,
        dir,
        token: None,
        done: false,
        timeout,
    };
    let pages = stream::unfold(start, |mut c| async move {
        if c.done {
            return None;
        }
        let opts = PaginatedListOptions {
            delimiter: Some("/".into()),
            max_keys: Some(PAGE),
            page_token: c.token.take(),
            ..Default::default()
        };
        let got = fetch(&c.store, &c.dir, c.prefix.as_deref(), opts, c.timeout).await;
        let batch = match got {
            Ok((page, token)) => {
                c.token = token;
                c.done = c.token.is_none();
                page.into_entries()
            }
            Err(e) => {
                c.done = true;
                vec![Err(e)]
            }
        };
        Some((stream::iter(batch), c))
    });
    pages.flatten().boxed()
}
