//! The Azure Blob Storage provider of the object-store back end
//! ([`crate::storage::object`]): an `az://CONTAINER/PREFIX` root
//! ([`settings`]), the client built from its profile ([`build`]), and
//! what the generic back end asks of a provider ([`Provider`]): Azure's
//! limits (50,000 blocks of up to 4,000 MiB), the error codes its answers
//! carry as text, and the requests where `object_store`'s Azure client
//! falls short, signed here with its own authorizer ([`requests`]):
//! directory markers `DIR/`, deletes (one Delete Blob, not a blob
//! batch), the raw listing page, the conditional
//! commit of a drop box's upload (Put Block List with `If-None-Match: *`),
//! the commit of an upload whose SHA-256 is kept in its metadata
//! and the wait for a copy's `x-ms-copy-status` before a rename deletes
//! its source.
//!
//! Aborting: Azure has no request that discards the blocks of an upload
//! given up, and `object_store`'s abort does nothing. Nothing more is
//! needed for what an abort must guarantee: blocks that no Put Block
//! List names are never part of a blob, so an aborted upload leaves no
//! committed blob and an existing blob as it was (the tests check both
//! with the store's listing); Azure discards the uncommitted blocks
//! after about 7 days, or at the next commit of that name.
//! What the layers above ask of an `az://` root at start-up is in
//! [`startup`].

use std::time::Duration;

use async_trait::async_trait;
use object_store::list::PaginatedListOptions;
use object_store::multipart::PartId;

use crate::storage::object::{Limits, Provider, RawPage};
use crate::storage::{Result, StorageError};

mod build;
mod copy;
mod rawlist;
mod requests;
mod settings;
mod startup;

pub use settings::{
    AzureOptions, AzureRoot, AzureSettings, MAX_BLOCKS, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE,
};
pub(super) use startup::{check_profile, open};

/// The configuration section, for messages that name a key.
const SECTION: &str = "azure";

/// One `az://` root's provider: the signed client of its own requests,
/// and what its messages say.
#[derive(Debug)]
pub struct AzureProvider {
    requests: requests::Requests,
    root: AzureRoot,
    /// Where the store is, for messages.
    shown: String,
}

#[async_trait]
impl Provider for AzureProvider {
    fn section(&self) -> &'static str {
        SECTION
    }

    fn limits(&self) -> Limits {
        Limits {
            max_parts: settings::MAX_BLOCKS,
            max_part_size: MAX_BLOCK_SIZE,
            // Copy Blob copies a whole block blob, of any size.
            max_copy: settings::MAX_BLOCKS * MAX_BLOCK_SIZE,
        }
    }

    fn classify(&self, text: &str) -> Option<StorageError> {
        classify(text)
    }

    /// Azure implements the conditional Copy Blob; an emulator that
    /// does not says so.
    fn copy_unsupported(&self, why: &str) -> bool {
        why.contains("NotImplemented") || why.contains("FeatureNotSupported")
    }

    async fn commit_new(
        &self,
        key: &str,
        parts: &[PartId],
        metadata: &[(&str, &str)],
    ) -> Option<Result<()>> {
        Some(self.requests.commit(key, parts, true, metadata).await)
    }

    /// Put Block List carries the blob's metadata: no second request.
    async fn commit_with_metadata(
        &self,
        key: &str,
        parts: &[PartId],
        metadata: &[(&str, &str)],
    ) -> Option<Result<()>> {
        Some(self.requests.commit(key, parts, false, metadata).await)
    }

    async fn copied(&self, key: &str, limit: Duration) -> Result<()> {
        self.requests.copy_done(key, limit).await
    }

    async fn put_marker(&self, key: &str) -> Result<()> {
        self.requests.put_marker(key).await
    }

    async fn delete_marker(&self, key: &str) -> Result<()> {
        self.requests.delete_marker(key).await
    }

    /// One Delete Blob, not `object_store`'s blob batch ([`requests`]).
    async fn delete(&self, key: &str) -> Option<Result<()>> {
        Some(self.requests.delete_blob(key).await)
    }

    /// `object_store`'s listing of `DIR/` leaves out the blob `DIR/`
    /// itself (its name is no longer than the prefix), so an empty
    /// directory shows nothing: its marker's HEAD says whether it is there.
    async fn hidden_dir(&self, key: &str, _server_error: bool) -> bool {
        matches!(self.requests.head_marker(key).await, Ok(s) if s.is_success())
    }

    async fn raw_page(&self, prefix: Option<&str>, opts: &PaginatedListOptions) -> Result<RawPage> {
        rawlist::page(&self.requests, prefix, opts).await
    }

    fn describe(&self) -> String {
        format!("{} at {}", self.root, self.shown)
    }

    fn summary(&self) -> &'static str {
        "container reachable; uploads committed as block lists"
    }

    fn missing(&self) -> String {
        format!(
            "no such container (create it first, e.g. `az storage container create --name {}`)",
            self.root.container
        )
    }
}

/// The object store's errors as storage errors, Azure's codes read from
/// their text ([`classify`]).
fn map_err(e: object_store::Error) -> StorageError {
    crate::storage::object::map_err(e, &classify)
}

/// Azure's own error codes, in answers that reach us only as text.
fn classify(text: &str) -> Option<StorageError> {
    match crate::storage::object::wire::error_code(text)? {
        "ContainerNotFound" | "BlobNotFound" => Some(StorageError::NotFound),
        "BlobAlreadyExists" | "ConditionNotMet" => Some(StorageError::AlreadyExists),
        "AuthenticationFailed"
        | "AuthorizationFailure"
        | "AuthorizationPermissionMismatch"
        | "InsufficientAccountPermissions" => {
            tracing::warn!(error = %text, "object store refused the credentials or the request");
            Some(StorageError::PermissionDenied)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_become_storage_errors() {
        let t = |c: &str| {
            classify(&format!(
                "Error: <?xml?><Error><Code>{c}</Code><Message>m</Message></Error>"
            ))
        };
        assert!(matches!(t("BlobNotFound"), Some(StorageError::NotFound)));
        assert!(matches!(
            t("ContainerNotFound"),
            Some(StorageError::NotFound)
        ));
        assert!(matches!(
            t("AuthenticationFailed"),
            Some(StorageError::PermissionDenied)
        ));
        assert!(matches!(
            t("BlobAlreadyExists"),
            Some(StorageError::AlreadyExists)
        ));
        assert!(t("ServerBusy").is_none());
        assert!(classify("connection refused").is_none());
    }
}
