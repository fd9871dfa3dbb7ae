//! What is at a path: an object, a directory (a marker `DIR/` or keys
//! below `DIR/`), or nothing. A HEAD of the key says whether an object is
//! there; a delimiter listing of `KEY/` (one key) whether a directory is,
//! its marker included, since a listing of `DIR/` shows the object
//! `DIR/` itself.
//!
//! A store may keep an empty directory in a way no listing shows, its
//! HEAD failing with a server error (s3s-fs keeps a marker as a
//! directory on disk): when the HEAD of the key failed with a server
//! error and nothing is listed below it, the provider is asked
//! ([`super::Provider::hidden_dir`]).

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
        match failed {
            None => Ok(Found::Absent),
            Some(e) => match self.provider().hidden_dir(&self.key(path)?).await {
                true => {
                    tracing::debug!(key = %loc, "the HEAD failed and nothing is listed: an empty directory the store keeps unlisted");
                    Ok(Found::Dir(None))
                }
                false => Err(e),
            },
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
