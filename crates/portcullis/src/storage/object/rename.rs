//! RNFR/RNTO on an object store: a file is a server-side copy then a
//! delete (one copy request, so objects over the provider's `max_copy`,
//! 5 GiB on S3, are refused); a directory only when empty, its marker
//! moved.
//!
//! An account that may not overwrite ([`RenameMode::NoClobber`]) gets a
//! conditional copy: `object_store`'s copy-if-not-exists (as the
//! provider's client does it: on S3 a multipart upload of one part copied
//! from the source, completed with `If-None-Match: *`), so the store
//! itself refuses (412) when the key was created meanwhile; an empty
//! object is a PUT with the same condition. A probe of the target comes first, for the plain answer
//! and for stores that ignore the condition or cannot copy a part
//! (NotImplemented): with those the copy is unconditional and an object
//! created between the probe and the copy (one request's time) is
//! replaced. The conditional copy leaves the copy's content type and
//! metadata behind, as object_store's multipart copy does. The source is
//! deleted only once the provider has seen the copy succeed
//! ([`super::Provider::copied`]: Azure may still be copying when it
//! answers).

use std::time::Duration;

use object_store::{CopyMode, CopyOptions, ObjectStoreExt, PutMode, PutOptions};
use portcullis_proto::path::VirtualPath;

use super::{Found, ObjectStorage};
use crate::storage::{RenameMode, Result, StorageError};

impl ObjectStorage {
    /// RNTO: see the module.
    pub(super) async fn rename_path(
        &self,
        from: &VirtualPath,
        to: &VirtualPath,
        mode: RenameMode,
    ) -> Result<()> {
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
        match self.probe(to).await? {
            Found::Dir(_) => return Err(StorageError::IsADirectory),
            Found::File(_) if mode == RenameMode::NoClobber => {
                return Err(StorageError::AlreadyExists)
            }
            Found::File(_) | Found::Absent => {}
        }
        if meta.size > self.provider().limits().max_copy {
            return Err(StorageError::Refused(
                "Objects this large cannot be renamed on this storage (over the most one server-side copy copies).",
            ));
        }
        let (f, t) = (self.location(from)?, self.location(to)?);
        let copy_time = self.tuning.request_timeout + Duration::from_secs(meta.size >> 20);
        match mode {
            RenameMode::Replace => {
                self.store
                    .bounded(copy_time, self.store.copy(&f, &t))
                    .await?
            }
            RenameMode::NoClobber if meta.size == 0 => {
                let create = PutOptions::from(PutMode::Create);
                self.timed(self.store.put_opts(&t, Default::default(), create))
                    .await?;
            }
            RenameMode::NoClobber => {
                let create = CopyOptions::new().with_mode(CopyMode::Create);
                let copied = self.store.copy_opts(&f, &t, create);
                match self.store.bounded(copy_time, copied).await {
                    Err(StorageError::Unavailable(why))
                        if self.provider().copy_unsupported(&why) =>
                    {
                        // A store without UploadPartCopy or conditional
                        // completion: the probe above stands alone.
                        tracing::warn!(error = %why, "conditional copy not implemented by the object store: renamed after a check, which another client could race");
                        self.store
                            .bounded(copy_time, self.store.copy(&f, &t))
                            .await?
                    }
                    r => r?,
                }
            }
        }
        if !(mode == RenameMode::NoClobber && meta.size == 0) {
            // A store that copies in the background answers before the
            // copy is done: the source stays until it is.
            self.provider().copied(t.as_ref(), copy_time).await?;
        }
        self.delete_object(&f).await
    }

    /// RNTO of a directory: only an empty one (its marker is all there
    /// is), whose marker moves, and never onto anything that exists nor
    /// beneath itself; 550 otherwise, as a rename of many keys would be
    /// many copies that a failure could leave half done.
    async fn rename_dir(&self, from: &VirtualPath, to: &VirtualPath) -> Result<()> {
        if to.components().starts_with(from.components()) {
            return Err(StorageError::IntoItself);
        }
        if !self.peek(from, 2).await?.is_empty() {
            return Err(StorageError::DirectoryNotEmpty);
        }
        if !matches!(self.probe(to).await?, Found::Absent) {
            return Err(StorageError::AlreadyExists);
        }
        self.provider().put_marker(&self.key(to)?).await?;
        self.provider().delete_marker(&self.key(from)?).await
    }
}
