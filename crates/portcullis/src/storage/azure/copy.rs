//! Waiting for a server-side copy before a rename deletes its source:
//! Azure's Copy Blob may answer while the copy still runs in the
//! background (`x-ms-copy-status: pending`: large or cross-account
//! blobs), so the destination's status is read again, the pause
//! doubling, until it says `success`, `failed` or `aborted`, within the
//! copy's own bound.
//!
//! The decisions are here, apart from the request that reads the status
//! (`requests.rs`), because no component this project can run produces
//! a pending copy: Azurite copies within one container synchronously and
//! answers `success` at once. So the unit tests below feed [`wait`] the
//! statuses a real account gives (pending, then success or failed; or
//! pending for ever) through its `read` closure, with tokio's clock
//! paused, rather than through a fake HTTP server; the integration tests
//! (tests/integration/azure.rs) cover the synchronous answer on Azurite.

use std::future::Future;
use std::time::Duration;

use super::SECTION;
use crate::storage::object::no_answer;
use crate::storage::{Result, StorageError};

/// The most reads of a destination's copy status: with the pause
/// doubling from 50 ms to 2 s, about 2 minutes, within the copy's own
/// bound (the caller's).
pub(super) const POLLS: u32 = 70;
/// The pause after the first read that found the copy pending.
const FIRST_PAUSE: Duration = Duration::from_millis(50);
/// The longest pause between two reads.
const MAX_PAUSE: Duration = Duration::from_secs(2);

/// What one read of the destination says of the copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Status {
    /// Copied: `success`, or no `x-ms-copy-status` at all (the copy was
    /// synchronous, or the blob was written since, which is as good).
    Done,
    /// Still copying in the background.
    Pending,
    /// `failed` or `aborted` (or a status this code does not know), with
    /// `x-ms-copy-status-description`.
    Failed(String),
}

impl Status {
    /// The status from the blob's `x-ms-copy-status` and
    /// `x-ms-copy-status-description` headers.
    pub(super) fn read(status: Option<&str>, description: Option<&str>) -> Status {
        match status {
            None | Some("success") => Status::Done,
            Some("pending") => Status::Pending,
            Some(other) => Status::Failed(format!("{other} {}", description.unwrap_or_default())),
        }
    }
}

/// How the wait ended, when it did not fail itself.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// The copy has succeeded: the source may go.
    Succeeded,
    /// The copy failed: the destination must be removed (the caller's
    /// request) and the rename fails.
    Failed(String),
}

/// Read the copy's status with `read` until it is no longer pending:
/// at most [`POLLS`] reads, the pause doubling from 50 ms to 2 s, all
/// within `limit`. A read that fails ends the wait with its error; still
/// pending after the last read, or at `limit`, is 451's
/// [`StorageError::Unavailable`] (the source is kept).
pub(super) async fn wait<F, Fut>(key: &str, limit: Duration, mut read: F) -> Result<Outcome>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Status>>,
{
    let polls = async {
        let mut pause = FIRST_PAUSE;
        for _ in 0..POLLS {
            match read().await? {
                Status::Done => return Ok(Outcome::Succeeded),
                Status::Failed(why) => return Ok(Outcome::Failed(why)),
                Status::Pending => {}
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_PAUSE);
        }
        Err(StorageError::Unavailable(format!(
            "copy onto {key}: still pending"
        )))
    };
    match tokio::time::timeout(limit, polls).await {
        Ok(r) => r,
        Err(_) => Err(StorageError::Unavailable(format!(
            "copy onto {key}: {}",
            no_answer(SECTION, limit)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// `wait` over the statuses `seq` (then its last one for ever),
    /// counting the reads, and the paused clock's time it took.
    async fn run(seq: &[Status], limit: Duration) -> (Result<Outcome>, u32, Duration) {
        let reads = Cell::new(0u32);
        let start = tokio::time::Instant::now();
        let r = wait("d/x", limit, || {
            let i = reads.get() as usize;
            reads.set(reads.get() + 1);
            let s = seq[i.min(seq.len() - 1)].clone();
            async move { Ok(s) }
        })
        .await;
        (r, reads.get(), start.elapsed())
    }

    #[test]
    fn headers_decide() {
        assert_eq!(Status::read(None, None), Status::Done);
        assert_eq!(Status::read(Some("success"), None), Status::Done);
        assert_eq!(Status::read(Some("pending"), Some("x")), Status::Pending);
        assert_eq!(
            Status::read(Some("failed"), Some("500 InternalError")),
            Status::Failed("failed 500 InternalError".into())
        );
        assert_eq!(
            Status::read(Some("aborted"), None),
            Status::Failed("aborted ".into())
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_synchronous_copy_is_one_read() {
        let (r, reads, took) = run(&[Status::Done], Duration::from_secs(60)).await;
        assert_eq!(r.unwrap(), Outcome::Succeeded);
        assert_eq!((reads, took), (1, Duration::ZERO));
    }

    #[tokio::test(start_paused = true)]
    async fn pending_then_success_waits_with_doubling_pauses() {
        let seq = [
            Status::Pending,
            Status::Pending,
            Status::Pending,
            Status::Done,
        ];
        let (r, reads, took) = run(&seq, Duration::from_secs(60)).await;
        assert_eq!(r.unwrap(), Outcome::Succeeded);
        assert_eq!(reads, 4);
        // 50 + 100 + 200 ms.
        assert_eq!(took, Duration::from_millis(350));
    }

    #[tokio::test(start_paused = true)]
    async fn pending_then_failed_asks_for_the_destination_to_go() {
        let seq = [Status::Pending, Status::Failed("failed 404".into())];
        let (r, reads, _) = run(&seq, Duration::from_secs(60)).await;
        assert_eq!(r.unwrap(), Outcome::Failed("failed 404".into()));
        assert_eq!(reads, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn pending_for_ever_stops_after_the_last_read() {
        let (r, reads, took) = run(&[Status::Pending], Duration::from_secs(3600)).await;
        assert!(
            matches!(&r, Err(StorageError::Unavailable(m)) if m.contains("still pending")),
            "{r:?}"
        );
        assert_eq!(reads, POLLS);
        // The pauses reach 2 s and stay there: about 2 minutes in all.
        assert!(
            took > Duration::from_secs(120) && took < Duration::from_secs(150),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_limit_bounds_the_wait() {
        let (r, reads, took) = run(&[Status::Pending], Duration::from_secs(5)).await;
        assert!(
            matches!(&r, Err(StorageError::Unavailable(m)) if m.contains("azure.request_timeout")),
            "{r:?}"
        );
        assert!(reads < POLLS, "{reads}");
        assert_eq!(took, Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_that_fails_ends_the_wait() {
        let reads = Cell::new(0u32);
        let r = wait("d/x", Duration::from_secs(60), || {
            reads.set(reads.get() + 1);
            async { Err::<Status, _>(StorageError::PermissionDenied) }
        })
        .await;
        assert!(matches!(r, Err(StorageError::PermissionDenied)), "{r:?}");
        assert_eq!(reads.get(), 1);
    }
}
