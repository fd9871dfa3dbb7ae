//! The one place where the store's answers become storage errors (and
//! so, in `session::error`, replies), and the bound on every request.

use std::time::Duration;

use crate::storage::{Result, StorageError};

/// A request bounded by `limit`, its error mapped.
pub(super) async fn bounded<T>(
    limit: Duration,
    f: impl std::future::Future<Output = object_store::Result<T>>,
) -> Result<T> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r.map_err(map_err),
        Err(_) => Err(StorageError::Unavailable(no_answer(limit))),
    }
}

/// What a request that timed out says (the log line of its 451).
pub(super) fn no_answer(limit: Duration) -> String {
    format!(
        "no answer within {} s (s3.request_timeout)",
        limit.as_secs_f32()
    )
}

/// The one place where the store's errors become storage errors (and so,
/// in `session::error`, replies): not found 550, denied 550, anything else
/// (throttling, 5xx, network) 451 with the store's message in the log.
pub(super) fn map_err(e: object_store::Error) -> StorageError {
    use object_store::Error as E;
    match e {
        E::NotFound { .. } => StorageError::NotFound,
        E::AlreadyExists { .. } | E::Precondition { .. } => StorageError::AlreadyExists,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => {
            tracing::warn!(error = %e, "object store refused the credentials or the request");
            StorageError::PermissionDenied
        }
        E::InvalidPath { .. } => StorageError::BadName,
        e => {
            let text = e.to_string();
            // Some answers reach us only as text (listings, and errors
            // `object_store` does not classify): S3's own error codes.
            match s3_code(&text) {
                Some("NoSuchBucket" | "NoSuchKey") => StorageError::NotFound,
                // A key over 1,024 bytes: the client's name, not the store.
                Some("KeyTooLongError") => StorageError::NameTooLong,
                Some("AccessDenied" | "InvalidAccessKeyId" | "SignatureDoesNotMatch") => {
                    tracing::warn!(error = %text, "object store refused the credentials or the request");
                    StorageError::PermissionDenied
                }
                _ => StorageError::Unavailable(text),
            }
        }
    }
}

/// The `<Code>` of an S3 error body quoted in a message.
fn s3_code(text: &str) -> Option<&str> {
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    Some(&text[start..start + len])
}
