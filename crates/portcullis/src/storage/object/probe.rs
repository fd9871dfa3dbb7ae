//! What is at a path: an object, a directory (a marker `DIR/` or keys
//! below `DIR/`), or nothing. A HEAD of the key says whether an object is
//! there; a delimiter listing of `KEY/` (one key) whether a directory is,
//! its marker included, since a listing of `DIR/` shows the object
//! `DIR/` itself.
//!
//! A store may keep an empty directory in a way no listing shows: s3s-fs
//! keeps a marker as a directory on disk, its HEAD failing with a server
//! error; Azure's client leaves a prefix's own marker out of the listing
//! of that prefix. When nothing is listed below a key that is no object,
//! the provider is asked ([`super::Provider::hidden_dir`]).

use object_store::list::PaginatedListOptions;
use object_store::{ObjectMeta, ObjectStoreExt};
use portcullis_proto::path::VirtualPath;

use super::{list, ObjectStorage};
use crate::storage::{Result, StorageError};

/// What a path names.
#[derive(Debug)]
pub(super) enum Found {
    File(ObjectMeta),
    /// A directory, with its marker's time if a listing showed one.
    Dir(Option<std::time::SystemTime>),
    Absent,
}

impl ObjectStorage {
    /// What is at `path` (see the module): one HEAD, and one listing
    /// when that finds no object.
    pub(super) async fn probe(&self, path: &VirtualPath) -> Result<Found> {
        if path.is_root() {
            return Ok(Found::Dir(None));
        }
        let loc = self.location(path)?;
        let failed = match self.timed(self.store.head(&loc)).await {
            Ok(m) => return Ok(Found::File(m)),
            Err(StorageError::NotFound) => None,
            Err(e @ StorageError::Unavailable(_)) => Some(e),
            Err(e) => return Err(e),
        };
        let page = self.peek(path, 1).await?;
        if !page.is_absent() {
            return Ok(Found::Dir(page.marker_time()));
        }
        let hidden = self
            .provider()
            .hidden_dir(&self.key(path)?, failed.is_some())
            .await;
        match (hidden, failed) {
            (true, _) => {
                tracing::debug!(key = %loc, "nothing is listed below the key: an empty directory the store keeps unlisted");
                Ok(Found::Dir(None))
            }
            (false, None) => Ok(Found::Absent),
            (false, Some(e)) => Err(e),
        }
    }

    /// Does the directory `path` exist?
    pub(super) async fn is_dir(&self, path: &VirtualPath) -> Result<bool> {
        Ok(matches!(self.probe(path).await?, Found::Dir(_)))
    }

    /// Up to `n` keys and prefixes right below the directory `path`: a
    /// marker `DIR/` counts as one, and so does a key that cannot be a
    /// path (see [`list::Page`]).
    pub(super) async fn peek(&self, path: &VirtualPath, n: usize) -> Result<list::Page> {
        let prefix = self.dir_prefix(path)?;
        let opts = PaginatedListOptions {
            delimiter: Some("/".into()),
            max_keys: Some(n),
            ..Default::default()
        };
        let dir = self.location_or_root(path)?;
        let (page, _) = list::fetch(
            &self.store,
            &dir,
            prefix.as_deref(),
            opts,
            self.tuning.request_timeout,
        )
        .await?;
        Ok(page)
    }
}
