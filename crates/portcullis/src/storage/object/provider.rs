//! The seam between the generic object-store back end ([`super`]) and a
//! provider: what differs from one store to another. The generic code
//! speaks `object_store`'s [`ObjectStore`](object_store::ObjectStore),
//! `MultipartStore` and `PaginatedListStore` through the client a
//! provider builds; everything else it asks of the provider here.
//!
//! A provider is a module of its own (`storage/s3/`: the client built
//! from a profile's settings, the credentials, the hand-signed requests
//! of directory markers, the raw listing, the error codes its answers
//! carry as text) plus its config variant; nothing else changes. How the
//! next one maps onto this trait (Azure Blob, issue 36):
//! - [`Limits`]: 50,000 blocks of at most 4,000 MiB per blob, against
//!   S3's 10,000 parts of 5 GiB; the part schedule and the refusal at the
//!   last part read them, so uploads stay within them.
//! - the conditional writes: a single PUT without overwrite goes
//!   through `PutMode::Create` (Azure's Put Blob with `If-None-Match: *`);
//!   a multipart completion without overwrite through
//!   [`Provider::commit_new`] where the provider can send the condition
//!   (Azure: Put Block List with `If-None-Match: *`, its own request),
//!   else a check then the completion; the copy without overwrite through
//!   `CopyMode::Create` (S3: a one-part multipart copy, configured by the
//!   provider's client builder; Azure: a conditional Copy Blob), and every
//!   copy is confirmed by [`Provider::copied`] before the source goes
//!   (Azure reads `x-ms-copy-status`). A store that does not implement
//!   the conditional copy says so through [`Provider::copy_unsupported`].
//! - aborting: S3 aborts a multipart upload; Azure has no abort (its
//!   uncommitted blocks expire, and are never part of the blob), for
//!   which `object_store`'s abort is a no-op, so the generic abort path
//!   costs nothing there.
//! - directory markers, the raw listing and the empty-directory quirk
//!   are the provider's own requests ([`Provider::put_marker`],
//!   [`Provider::raw_page`], [`Provider::hidden_dir`]).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use object_store::list::PaginatedListOptions;
use object_store::multipart::PartId;
use object_store::ListResult;

use crate::storage::{Result, StorageError};

/// What a provider's store allows of multipart uploads and copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The most parts (blocks) of one multipart upload.
    pub max_parts: u64,
    /// The largest part.
    pub max_part_size: u64,
    /// The largest object one server-side copy can copy (RNTO of a file;
    /// larger ones are refused with 550).
    pub max_copy: u64,
}

/// One listing page read by the provider itself, with what could not be
/// a path set apart.
#[derive(Debug)]
pub struct RawPage {
    pub result: ListResult,
    /// The token of the next page.
    pub token: Option<String>,
    /// Keys and prefixes left out, as the store sent them.
    pub skipped: Vec<String>,
}

/// What differs between object-store providers (see the module).
#[async_trait]
pub trait Provider: Send + Sync + fmt::Debug {
    /// The provider's configuration section, for messages that name a key
    /// (`s3.request_timeout`).
    fn section(&self) -> &'static str;

    /// Its limits.
    fn limits(&self) -> Limits;

    /// A storage error for a store's answer that `object_store` passes on
    /// only as text (listings, errors it does not classify), read from the
    /// provider's own error codes; `None`: 451 with the text.
    fn classify(&self, text: &str) -> Option<StorageError>;

    /// Whether a conditional copy failed because the store does not
    /// implement it (the rename then copies after a check).
    fn copy_unsupported(&self, why: &str) -> bool;

    /// Complete the multipart upload of `key` from `parts` only if no
    /// object has that key, in one request, giving the object `metadata`
    /// (user metadata, name and value; `limits.hash_on_upload`'s digest).
    /// `None`: the provider cannot, and the upload checks that the key is
    /// free just before it completes (a window of one request), then
    /// sets the metadata through [`Provider::set_metadata`].
    async fn commit_new(
        &self,
        _key: &str,
        _parts: &[PartId],
        _metadata: &[(&str, &str)],
    ) -> Option<Result<()>> {
        None
    }

    /// Complete the multipart upload of `key` from `parts` with
    /// `metadata` in the completion itself (Azure's Put Block List
    /// carries it). `None`: the provider's completion cannot carry it;
    /// the generic completion runs, then [`Provider::set_metadata`].
    async fn commit_with_metadata(
        &self,
        _key: &str,
        _parts: &[PartId],
        _metadata: &[(&str, &str)],
    ) -> Option<Result<()>> {
        None
    }

    /// Give the object `key` of `size` bytes the user metadata
    /// `metadata` (replacing its own) only while it is still the object
    /// whose ETag is `etag` (just completed by this upload), within
    /// `limit`: `Ok(true)` done, `Ok(false)` the object changed
    /// meanwhile. `None`: the provider cannot (no metadata is kept).
    /// S3: a copy of the object onto itself with the new metadata and
    /// `x-amz-copy-source-if-match`, which the store may take time
    /// over for a large object (it rewrites it).
    async fn set_metadata(
        &self,
        _key: &str,
        _etag: &str,
        _size: u64,
        _metadata: &[(&str, &str)],
        _limit: Duration,
    ) -> Option<Result<bool>> {
        None
    }

    /// A server-side copy onto `key` was answered: wait, within `limit`,
    /// until the copy has succeeded (a store that copies in the
    /// background), before the rename deletes the source.
    async fn copied(&self, _key: &str, _limit: Duration) -> Result<()> {
        Ok(())
    }

    /// Create the marker of the directory whose key is `key` (`KEY/`).
    async fn put_marker(&self, key: &str) -> Result<()>;

    /// Remove it (no error if there is none).
    async fn delete_marker(&self, key: &str) -> Result<()>;

    /// Delete the object `key` (no error if there is none) where the
    /// provider does it otherwise than `object_store`'s delete; `None`:
    /// that delete.
    async fn delete(&self, _key: &str) -> Option<Result<()>> {
        None
    }

    /// A key that is no object (its HEAD found none, or failed with a
    /// server error: `server_error`) and below which nothing is listed:
    /// is it an empty directory that the store keeps in a way no listing
    /// shows? `false` for stores without such a quirk.
    async fn hidden_dir(&self, key: &str, server_error: bool) -> bool;

    /// The page `opts` names of the delimiter listing of `prefix`, read
    /// by the provider's own request, for when `object_store` refused it
    /// (a key it cannot make a path of): those keys left out and named.
    async fn raw_page(&self, prefix: Option<&str>, opts: &PaginatedListOptions) -> Result<RawPage>;

    /// The root as configured and the store it is on, for messages.
    fn describe(&self) -> String;

    /// The rest of the start-up summary line of a reachable store
    /// (`bucket reachable; ...`).
    fn summary(&self) -> &'static str;

    /// Why a store whose bucket (container) does not exist stops the
    /// start, and what to do.
    fn missing(&self) -> String;
}
