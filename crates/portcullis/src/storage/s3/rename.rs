//! RNFR/RNTO on an object store: a file is a server-side copy then a
//! delete (one CopyObject, so objects over 5 GiB are refused); a
//! directory only when empty, its marker moved.

use std::time::Duration;

use object_store::ObjectStoreExt;
use portcullis_proto::path::VirtualPath;

use super::{bounded, Found, S3Storage};
use crate::storage::{Result, StorageError};

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
            return match self.probe(from).await? {
                Found::Absent => Err(StorageError::NotFound),
                _ => Ok(()),
            };
        }
        let meta = match self.probe(from).await? {
            Found::File(m) => m,
            Found::Dir(_) => return self.rename_dir(from, to).await,
            Found::Absent => return Err(StorageError::NotFound),
        };
        if let Found::Dir(_) = self.probe(to).await? {
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
        if !self.peek(from, 2).await?.is_empty() {
            return Err(StorageError::DirectoryNotEmpty);
        }
        if !matches!(self.probe(to).await?, Found::Absent) {
            return Err(StorageError::AlreadyExists);
        }
        self.markers.put(&self.key(to)?).await?;
        self.markers.delete(&self.key(from)?).await
    }
}
