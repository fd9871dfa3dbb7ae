//! The work of one transfer, a future the driver polls beside the control
//! connection: open the data connection (`DataSetup::open`, the one place
//! where it is accepted or made), move the bytes (the one decision of how,
//! [`route`]: the platform fast paths in `fastpath.rs`, the copy loops in
//! `copy.rs`), report one [`TransferRecord`] and produce the final reply
//! (226, or 425/426/451/552 saying what failed).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use crate::events::{Direction, Event, Events, TransferRecord};
use portcullis_proto::reply::{Reply, ReplyCode};
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;

use super::error::{reply_for, AbortedAt, Phase, SessionError};
use super::listing::Listing;
use super::route::route;
use crate::data::{DataSetup, OpenParams};
use crate::limits::Throttle;
use crate::storage::{ReadStream, Upload};
use crate::tls::MaybeTls;

/// How a transfer's data connection is run, besides what it carries.
pub(super) struct DataOptions {
    /// TLS under PROT P.
    pub tls: Option<DataTls>,
    /// Bandwidth buckets the bytes are taken from.
    pub throttle: Throttle,
    /// Abort when no byte moves for this long (`limits.data_timeout`).
    pub stall_timeout: std::time::Duration,
}

/// TLS for a data connection under PROT P.
pub(super) struct DataTls {
    /// The control connection's own configuration (see [`crate::tls`]),
    /// and its session store, which decides on resumed sessions.
    pub config: crate::tls::DataConfig,
    pub require_reuse: bool,
    pub timeout: std::time::Duration,
}

/// What a transfer does once its data connection is open.
pub(super) enum Job {
    Retr {
        reader: ReadStream,
        ascii: bool,
        /// Where the reader starts (REST).
        offset: u64,
    },
    Stor {
        upload: Box<dyn Upload>,
        ascii: bool,
    },
    /// A directory listing (see [`super::listing`]).
    List(Listing),
    /// A listing already rendered (LIST of a single file).
    Bytes(Vec<u8>),
}

/// What the transfer's record says besides its outcome, and where it goes.
#[derive(Debug)]
pub(super) struct JobInfo {
    pub verb: &'static str,
    pub path: String,
    pub user: String,
    pub peer: std::net::IpAddr,
    pub direction: Direction,
    /// The account is anonymous.
    pub anonymous: bool,
    pub events: Arc<Events>,
    /// The session's origin, for the record's event.
    pub origin: crate::events::Origin,
    /// An upload's SHA-256 (`limits.hash_on_upload`), once committed.
    pub digest: Option<Arc<OnceLock<String>>>,
}

/// Everything a transfer needs to run, decided by the session core.
pub(super) struct Plan {
    pub job: Job,
    /// The data connection PASV, EPSV, PORT or EPRT armed.
    pub setup: DataSetup,
    pub params: OpenParams,
    pub data: DataOptions,
    pub info: JobInfo,
}

/// Who stopped a running transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Cut {
    /// ABOR, or the end of the control connection.
    Client,
    /// The drain, once `server.shutdown_grace` is over (or at a second
    /// signal).
    ShutdownGrace,
    /// The control plane kicked the session.
    Kicked,
}

/// How the driver stops a running transfer, and who did: the transfer's
/// record and its 426 say it.
#[derive(Debug, Clone, Default)]
pub(super) struct Stop {
    token: CancellationToken,
    by: Arc<OnceLock<Cut>>,
}

impl Stop {
    /// Stop the transfer (the first caller names who).
    pub(super) fn stop(&self, by: Cut) {
        let _ = self.by.set(by);
        self.token.cancel();
    }

    /// Resolves once stopped, with the error that says who stopped it.
    pub(super) async fn stopped(&self, at: AbortedAt) -> SessionError {
        self.token.cancelled().await;
        match self.by.get() {
            Some(Cut::ShutdownGrace) => SessionError::Drained,
            Some(Cut::Kicked) => SessionError::KickedTransfer,
            Some(Cut::Client) | None => SessionError::Aborted(at),
        }
    }
}

/// Run one transfer to its final reply.
pub(super) async fn run(plan: Plan, stop: Stop, progress: Arc<AtomicU64>) -> Reply {
    let Plan {
        job,
        setup,
        params,
        data,
        info,
    } = plan;
    let started = Instant::now();
    let passive = !matches!(setup, DataSetup::Active(_));
    let tls = data.tls.is_some();
    let ascii = matches!(
        job,
        Job::Retr { ascii: true, .. } | Job::Stor { ascii: true, .. }
    );
    let result = open_and_move(job, setup, params, data, &stop, &progress).await;
    let JobInfo {
        verb,
        path,
        user,
        peer,
        direction,
        anonymous,
        events,
        origin,
        digest,
    } = info;
    let record = TransferRecord {
        user,
        peer,
        verb,
        path,
        direction,
        passive,
        tls,
        ascii,
        anonymous,
        bytes: progress.load(Ordering::Relaxed),
        duration: started.elapsed(),
        outcome: result.as_ref().map(|_| ()).map_err(|e| e.to_string()),
        sha256: digest.and_then(|d| d.get().cloned()),
    };
    events.emit_in(&origin, Event::Transfer(&record));
    let reply = match result {
        Ok(()) => Reply::new(ReplyCode::TRANSFER_COMPLETE, "Transfer complete."),
        Err(e) => {
            if let SessionError::Storage(error) = &e {
                events.emit_in(&origin, Event::Storage { error });
            }
            reply_for(&e, Phase::Transfer)
        }
    };
    if direction == Direction::Upload {
        // The upload's audit line, with its final reply (the core's
        // `audit` reports the uploads refused before a transfer).
        events.emit_in(
            &origin,
            Event::FileOp {
                user: &record.user,
                verb,
                path: &record.path,
                target: None,
                code: reply.code,
            },
        );
    }
    reply
}

/// Open the data connection (and its TLS), then move the bytes.
async fn open_and_move(
    job: Job,
    setup: DataSetup,
    params: OpenParams,
    data: DataOptions,
    stop: &Stop,
    progress: &Arc<AtomicU64>,
) -> Result<(), SessionError> {
    let tcp = tokio::select! {
        c = setup.open(params) => c?,
        e = stop.stopped(AbortedAt::Connecting) => return Err(e),
    };
    let DataOptions {
        tls,
        throttle,
        stall_timeout,
    } = data;
    let conn: MaybeTls = match tls {
        None => Either::Left(tcp),
        Some(t) => {
            let shake = crate::tls::accept_data(t.config, tcp, t.timeout, t.require_reuse);
            tokio::select! {
                s = shake => Either::Right(s?),
                e = stop.stopped(AbortedAt::Handshake) => return Err(e),
            }
        }
    };
    // In this order: a transfer that finishes at its first poll (a small
    // file) never arms the stall timer, whose registration wakes the
    // runtime's I/O driver (an eventfd write and an extra epoll_wait).
    tokio::select! {
        biased;
        r = route(job, conn, &throttle).run(progress, &throttle) => r,
        e = stop.stopped(AbortedAt::Transfer) => Err(e),
        _ = stalled(progress, stall_timeout) => Err(SessionError::Stalled(stall_timeout)),
    }
}

/// Resolves once `progress` has not moved for `limit` (checked a few times
/// per period, so the abort comes between `limit` and 1.25 x `limit`).
pub(super) async fn stalled(progress: &AtomicU64, limit: std::time::Duration) {
    let tick = (limit / 4).max(std::time::Duration::from_millis(50));
    let mut last = progress.load(Ordering::Relaxed);
    let mut since = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(tick).await;
        let now = progress.load(Ordering::Relaxed);
        if now != last {
            last = now;
            since = tokio::time::Instant::now();
        } else if since.elapsed() >= limit {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The 426 and the record say who stopped the transfer: the first to
    /// stop it.
    #[tokio::test]
    async fn a_stop_says_who_stopped() {
        let stop = Stop::default();
        stop.stop(Cut::ShutdownGrace);
        stop.stop(Cut::Client);
        let e = stop.stopped(AbortedAt::Transfer).await;
        assert!(matches!(e, SessionError::Drained), "{e:?}");
        assert_eq!(e.to_string(), "cut by the shutdown grace");
        let stop = Stop::default();
        stop.clone().stop(Cut::Client);
        let e = stop.stopped(AbortedAt::Connecting).await;
        assert!(
            matches!(e, SessionError::Aborted(AbortedAt::Connecting)),
            "{e:?}"
        );
    }
}
