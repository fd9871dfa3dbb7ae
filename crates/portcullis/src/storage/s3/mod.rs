//! The S3 provider of the object-store back end ([`crate::storage::object`]):
//! an `s3://BUCKET/PREFIX` root ([`settings`]), the client built from its
//! profile ([`build`]), and what the generic back end asks of a provider
//! ([`Provider`]): S3's limits (10,000 parts of 5 MiB to 5 GiB, one copy
//! of at most 5 GiB), the error codes its answers carry as text,
//! directory markers `DIR/` and the raw listing page, both sent as
//! requests signed here ([`marker`], [`rawlist`]), and the quirk of
//! s3s-fs, which keeps an empty directory on disk where no listing shows
//! it. What the layers above ask of an S3 root at start-up is in
//! [`startup`].

use std::time::Duration;

use async_trait::async_trait;
use object_store::list::PaginatedListOptions;

use crate::storage::object::{Limits, Provider, RawPage};
use crate::storage::{Result, StorageError};

mod build;
mod marker;
mod rawlist;
mod settings;
mod startup;

pub use settings::{S3Options, S3Root, S3Settings};
#[cfg(test)]
pub(crate) use settings::{DEFAULT_PART_DOUBLING, DEFAULT_PART_SIZE};
pub use settings::{MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE};
pub(super) use startup::{check_profile, open};

/// The configuration section, for messages that name a key.
const SECTION: &str = "s3";

/// The largest object one CopyObject request can copy (RNTO of a file).
const MAX_COPY: u64 = 5 << 30;

/// One `s3://` root's provider: the signed client of its markers and raw
/// listings, and what its messages say.
#[derive(Debug)]
pub struct S3Provider {
    markers: marker::Markers,
    root: S3Root,
    /// Where the store is, for messages.
    shown: String,
    /// Request bodies carry their SHA-256 in the signature (`sign_payload`).
    signs_bodies: bool,
}

#[async_trait]
impl Provider for S3Provider {
    fn section(&self) -> &'static str {
        SECTION
    }

    fn limits(&self) -> Limits {
        Limits {
            max_parts: MAX_PARTS,
            max_part_size: MAX_PART_SIZE,
            max_copy: MAX_COPY,
        }
    }

    fn classify(&self, text: &str) -> Option<StorageError> {
        classify(text)
    }

    /// A store without UploadPartCopy or conditional completion.
    fn copy_unsupported(&self, why: &str) -> bool {
        why.contains("NotImplemented")
    }

    /// CompleteMultipartUpload carries no metadata: the object is copied
    /// onto itself with it, if it is still the one completed.
    async fn set_metadata(
        &self,
        key: &str,
        etag: &str,
        _size: u64,
        metadata: &[(&str, &str)],
        limit: Duration,
    ) -> Option<Result<bool>> {
        let bucket = &self.root.bucket;
        Some(
            self.markers
                .replace_metadata(bucket, key, etag, metadata, limit)
                .await,
        )
    }

    async fn put_marker(&self, key: &str) -> Result<()> {
        self.markers.put(key).await
    }

    async fn delete_marker(&self, key: &str) -> Result<()> {
        self.markers.delete(key).await
    }

    /// s3s-fs keeps an object store in a directory tree and keeps a marker
    /// `DIR/` as a directory on disk: no listing shows an empty one, and a
    /// HEAD of `DIR` or `DIR/` fails with 500 (it reads the directory as a
    /// file). So the marker's own HEAD is asked: failing with a server
    /// error as well, that is the empty directory. AWS, MinIO and moto
    /// answer these HEADs with 200 or 404, so for them nothing changes; a
    /// store failing all of them at once would have failed the listing too.
    async fn hidden_dir(&self, key: &str, server_error: bool) -> bool {
        server_error && matches!(self.markers.head(key).await, Ok(s) if s.is_server_error())
    }

    async fn raw_page(&self, prefix: Option<&str>, opts: &PaginatedListOptions) -> Result<RawPage> {
        rawlist::page(&self.markers, prefix, opts).await
    }

    fn describe(&self) -> String {
        format!("{} at {}", self.root, self.shown)
    }

    /// How request bodies go.
    fn summary(&self) -> &'static str {
        if self.signs_bodies {
            "bucket reachable; request bodies signed"
        } else {
            "bucket reachable; request bodies unsigned (sign_payload = true signs them)"
        }
    }

    fn missing(&self) -> String {
        format!(
            "no such bucket (create it first, e.g. `aws s3 mb s3://{}`)",
            self.root.bucket
        )
    }
}

/// The object store's errors as storage errors, S3's codes read from
/// their text ([`classify`]).
fn map_err(e: object_store::Error) -> StorageError {
    crate::storage::object::map_err(e, &classify)
}

/// S3's own error codes, in answers that reach us only as text.
fn classify(text: &str) -> Option<StorageError> {
    match s3_code(text)? {
        "NoSuchBucket" | "NoSuchKey" => Some(StorageError::NotFound),
        // A key over 1,024 bytes: the client's name, not the store.
        "KeyTooLongError" => Some(StorageError::NameTooLong),
        "AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch" => {
            tracing::warn!(error = %text, "object store refused the credentials or the request");
            Some(StorageError::PermissionDenied)
        }
        _ => None,
    }
}

/// The `<Code>` of an S3 error body quoted in a message.
fn s3_code(text: &str) -> Option<&str> {
    crate::storage::object::wire::error_code(text)
}

#[cfg(test)]
mod tests;
