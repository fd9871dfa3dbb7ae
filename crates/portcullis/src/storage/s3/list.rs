//! Directory listings over delimiter listings: one page of keys and
//! prefixes at a time (at most [`PAGE`] entries held), so a prefix with a
//! million objects is never loaded whole.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::stream::{self, BoxStream, StreamExt};
use object_store::aws::AmazonS3;
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::path::Path as ObjPath;
use object_store::{ListResult, ObjectMeta};

use super::{bounded, dir_meta, file_meta};
use crate::storage::{DirEntry, Result};

/// Keys asked for per listing request (S3's most).
pub(super) const PAGE: usize = 1000;

/// One page of what is right below a directory, its marker set apart.
#[derive(Debug)]
pub(super) struct Page {
    marker: Option<ObjectMeta>,
    dirs: Vec<ObjPath>,
    files: Vec<ObjectMeta>,
}

impl Page {
    /// Sort a listing of `dir`'s prefix: the object whose key is `DIR/`
    /// (read back as `dir` itself) is the directory's marker.
    pub(super) fn new(dir: &ObjPath, r: ListResult) -> Page {
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
        }
    }

    /// No entries (a marker may be there).
    pub(super) fn is_empty(&self) -> bool {
        self.dirs.is_empty() && self.files.is_empty()
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

/// Where a listing is between pages.
struct Cursor {
    store: Arc<AmazonS3>,
    prefix: Option<String>,
    dir: ObjPath,
    token: Option<String>,
    done: bool,
    timeout: Duration,
}

/// The entries of the directory whose contents are under `prefix`, page
/// by page. A failed page ends the listing with its error.
pub(super) fn entries(
    store: Arc<AmazonS3>,
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
        let got = bounded(c.timeout, c.store.list_paginated(c.prefix.as_deref(), opts)).await;
        let batch = match got {
            Ok(r) => {
                c.token = r.page_token;
                c.done = c.token.is_none();
                Page::new(&c.dir, r.result).into_entries()
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
