//! The one place where the store's answers become storage errors (and
//! so, in `session::error`, replies), and the bound on every request:
//! [`Store`], the provider's client with what reads its answers.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use object_store::list::PaginatedListStore;
use object_store::multipart::MultipartStore;
use object_store::ObjectStore;

use super::provider::Provider;
use crate::storage::{Result, StorageError};

/// What a provider's client must be: `object_store`'s store with
/// multipart uploads and paginated listings.
pub trait Client: ObjectStore + MultipartStore + PaginatedListStore {}

impl<T: ObjectStore + MultipartStore + PaginatedListStore> Client for T {}

/// A provider's client, and the provider that reads its answers. It
/// derefs to the client, so requests are `store.get_opts(..)`; every one
/// goes through [`Store::bounded`].
#[derive(Debug)]
pub struct Store {
    client: Arc<dyn Client>,
    provider: Arc<dyn Provider>,
}

impl Deref for Store {
    type Target = dyn Client;

    fn deref(&self) -> &dyn Client {
        &*self.client
    }
}

impl Store {
    pub fn new(client: Arc<dyn Client>, provider: Arc<dyn Provider>) -> Store {
        Store { client, provider }
    }

    pub(super) fn provider(&self) -> &dyn Provider {
        &*self.provider
    }

    /// A request bounded by `limit`, its error mapped.
    pub(super) async fn bounded<T>(
        &self,
        limit: Duration,
        f: impl std::future::Future<Output = object_store::Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(limit, f).await {
            Ok(r) => r.map_err(|e| self.map_err(e)),
            Err(_) => Err(StorageError::Unavailable(self.no_answer(limit))),
        }
    }

    /// What a request that timed out says (the log line of its 451).
    pub(super) fn no_answer(&self, limit: Duration) -> String {
        no_answer(self.provider.section(), limit)
    }

    /// The one place where the store's errors become storage errors (and
    /// so, in `session::error`, replies): not found 550, denied 550,
    /// anything else (throttling, 5xx, network) 451 with the store's
    /// message in the log.
    pub(super) fn map_err(&self, e: object_store::Error) -> StorageError {
        map_err(e, &|text| self.provider.classify(text))
    }
}

/// What a request that timed out after `limit` says, naming the
/// provider's `section.request_timeout`.
pub fn no_answer(section: &str, limit: Duration) -> String {
    format!(
        "no answer within {} s ({section}.request_timeout)",
        limit.as_secs_f32()
    )
}

/// [`Store::map_err`], with `classify` reading the errors known only by
/// their text (the provider's [`Provider::classify`]).
pub fn map_err(
    e: object_store::Error,
    classify: &dyn Fn(&str) -> Option<StorageError>,
) -> StorageError {
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
            // `object_store` does not classify): the provider's own codes.
            classify(&text).unwrap_or(StorageError::Unavailable(text))
        }
    }
}
