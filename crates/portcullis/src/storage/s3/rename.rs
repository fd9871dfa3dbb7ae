//! RNFR/RNTO on an object store: a file is a server-side copy then a
//! delete (one CopyObject, so objects over 5 GiB are refused); a
//! directory only when empty, its marker moved.

use std::time::Duration;

use object_store::ObjectStoreExt;
use portcullis_proto::path::VirtualPath;

use super::{bounded, S3Storage};
use crate::storage::{Result, Storage, StorageError};

/// The largest object one CopyObject request can copy (RNTO of a file).
const MAX_COPY: u64 = 5 << 30;

impl S3Storage {
    /// RNTO: see the module.
    pub(super) async fn rename_path(&self, from: &VirtualPath, to: &VirtualPath) -> Result<()> {
        if from.is_root() || to.is_root() {
            return Err(StorageError::PermissionDenied);
        }
        if self.key(from)? == self.key(to)? {
            // As rename(2): nothing to do (a copy onto itself then a
            // delete would lose the object).
            return self.metadata(from).await.map(drop);
        }
        let Some(meta) = self.head(from).await? else {
            return self.rename_dir(from, to).await;
        };
        if self.is_dir(to).await? {
            return Err(StorageError::IsADirectory);
        }
        if meta.size > MAX_COPY {
            return Err(StorageError::Refused(
                "Objects over 5 GiB cannot be renamed on this storage (one server-side copy is at most 5 GiB).",
            ));
        }
        let (f, t) = (self.location(from)?, self.location(to)?);
        let copy_time = self.settings.request_timeout + Duration::from_secs(meta.size >> 20);
        bounded(copy_time, self.store.copy(&f, &t)).await?;
        self.timed(self.store.delete(&f)).await
    }

    /// RNTO of a directory: only an empty one (its marker is all there
    /// is), whose marker moves; 550 otherwise, as a rename of many keys
    /// would be many copies that a failure could leave half done.
    async fn rename_dir(&self, from: &VirtualPath, to: &VirtualPath) -> Result<()> {
        let page = self.peek(from, 2).await?;
        if page.is_absent() {
            return Err(StorageError::NotFound);
        }
        if !page.is_empty() {
            return Err(StorageError::DirectoryNotEmpty);
        }
        if self.head(to).await?.is_some() || self.is_dir(to).await? {
            return Err(StorageError::AlreadyExists);
        }
        self.markers.put(&self.key(to)?).await?;
        self.markers.delete(&self.key(from)?).await
    }
}
