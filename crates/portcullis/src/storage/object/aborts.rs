//! Aborting the multipart upload of an upload given up (failed, aborted,
//! or dropped: ABOR, a reset, a stall, the session's end, the drain's
//! cut). The abort is a task of its own, tracked in one process-wide
//! [`TaskTracker`]: a caller that is itself cancelled while it waits
//! (a transfer cut during its abort) does not cancel the abort, and
//! `Drop`, which cannot wait, leaves it to the tracker. The server waits
//! for the tracker after its drain ([`wait_for_aborts`]), so a process
//! that stops on SIGTERM leaves no incomplete upload behind; each abort is
//! one request bounded by `request_timeout` (after the parts still being
//! sent are stopped, and a creation still in flight has answered, itself
//! bounded the same way).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use object_store::path::Path as ObjPath;
use tokio_util::task::TaskTracker;

use super::upload::Multipart;
use super::Store;
use crate::storage::{Result, StorageError};

/// The aborts still running, in the whole process.
static PENDING: LazyLock<TaskTracker> = LazyLock::new(TaskTracker::new);

/// Wait until every abort of a multipart upload given up has been
/// answered (or has failed, each within its bound). Called once, when
/// the server has drained: aborts started later are still tracked and
/// waited for.
pub async fn wait_for_aborts() {
    PENDING.close();
    let n = PENDING.len();
    if n > 0 {
        tracing::info!(
            uploads = n,
            "waiting for the store to abort the multipart uploads given up"
        );
    }
    PENDING.wait().await;
}

/// An upload given up, with what is left to clean in the store.
pub(super) struct Abandoned {
    pub(super) store: Arc<Store>,
    pub(super) location: ObjPath,
    pub(super) multipart: Multipart,
    pub(super) timeout: Duration,
}

impl Abandoned {
    /// Nothing was sent to the store, or its creation failed.
    fn is_empty(&self) -> bool {
        matches!(self.multipart, Multipart::None | Multipart::Failed)
    }

    /// Abort, and wait for it (see the module: cancelling the wait does
    /// not cancel the abort).
    pub(super) async fn abort(self) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        PENDING
            .spawn(self.run())
            .await
            .map_err(|e| StorageError::Unavailable(e.to_string()))?
    }

    /// Abort without waiting (from `Drop`): the process waits at its end.
    pub(super) fn detach(self) {
        if self.is_empty() {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                PENDING.spawn_on(self.run(), &rt);
            }
            Err(_) => tracing::warn!(
                key = %self.location.as_ref(),
                "left an incomplete multipart upload (no runtime to abort it); the bucket's lifecycle rule for incomplete uploads (S3: AbortIncompleteMultipartUpload) will remove it"
            ),
        }
    }

    /// Stop the parts still being sent, then abort the multipart upload
    /// (a part that arrived after the abort would otherwise keep it).
    async fn run(self) -> Result<()> {
        let id = match self.multipart {
            Multipart::None | Multipart::Failed => return Ok(()),
            Multipart::Creating(h) => match h.await {
                Ok(Ok(id)) => id,
                _ => return Ok(()),
            },
            Multipart::Open { id, in_flight, .. } => {
                for h in &in_flight {
                    h.abort();
                }
                for h in in_flight {
                    let _ = h.await;
                }
                id
            }
        };
        let r = self
            .store
            .bounded(
                self.timeout,
                self.store.abort_multipart(&self.location, &id),
            )
            .await;
        match &r {
            Ok(()) => tracing::debug!(key = %self.location.as_ref(), "multipart upload aborted"),
            Err(e) => tracing::warn!(
                key = %self.location.as_ref(), error = %e,
                "could not abort a multipart upload; the bucket's lifecycle rule for incomplete uploads (S3: AbortIncompleteMultipartUpload) will remove it"
            ),
        }
        r
    }
}
