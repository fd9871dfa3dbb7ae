//! How a transfer's bytes move once its data connection is open, decided
//! in one function ([`route`]) and carried out by [`Route::run`]:
//! `sendfile(2)` for plain binary downloads of a stream that offers a
//! plain file (`ReadStream::into_plain_file`), the blocking pump
//! (`splice(2)`) for plain unthrottled binary uploads that offer one
//! (`Upload::has_direct_file`), both in `fastpath.rs`; otherwise the copy
//! loops (`copy.rs`: TLS, TYPE A converted on the way, throttled
//! uploads, object stores) and listings (`listing.rs`).

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::AsyncWriteExt;
#[cfg(unix)]
use tokio::net::TcpStream;
use tokio_util::either::Either;

use super::copy;
use super::error::SessionError;
#[cfg(unix)]
use super::fastpath;
use super::job::Job;
use super::listing::Listing;
use crate::limits::Throttle;
#[cfg(target_os = "linux")]
use crate::storage::PlainFile;
use crate::storage::{ReadStream, Upload};
use crate::tls::MaybeTls;

/// How one transfer moves, with what it moves.
pub(super) enum Route {
    /// A plain binary download of a local file: `sendfile(2)` of `len`
    /// bytes from `offset`.
    #[cfg(target_os = "linux")]
    Sendfile {
        file: tokio::fs::File,
        offset: u64,
        len: u64,
        tcp: TcpStream,
    },
    /// A plain, unthrottled binary upload into a plain local file (an
    /// upload that offers `direct_file`): the blocking pump, which itself
    /// copies a small upload.
    #[cfg(unix)]
    Pump {
        upload: Box<dyn Upload>,
        tcp: TcpStream,
    },
    /// Any other download: the copy loop, TYPE A converted on the way.
    Send {
        reader: ReadStream,
        ascii: bool,
        offset: u64,
        conn: MaybeTls,
    },
    /// Any other upload: the copy loop, TYPE A converted on the way.
    Receive {
        upload: Box<dyn Upload>,
        ascii: bool,
        conn: MaybeTls,
    },
    /// A directory listing, streamed as read.
    Listing { listing: Listing, conn: MaybeTls },
    /// A listing already rendered.
    Bytes { bytes: Vec<u8>, conn: MaybeTls },
}

/// The one decision of how `job` moves over `conn`. A fast path is the
/// opened stream's or upload's own offer (a plain local file under it),
/// asked here; the session never names a back end's types.
#[cfg_attr(not(unix), allow(unused_variables))]
pub(super) fn route(job: Job, conn: MaybeTls, throttle: &Throttle) -> Route {
    match (job, conn) {
        #[cfg(target_os = "linux")]
        (
            Job::Retr {
                reader,
                ascii: false,
                offset,
            },
            Either::Left(tcp),
        ) => match reader.into_plain_file() {
            Ok(PlainFile { file, size }) => Route::Sendfile {
                file,
                offset,
                len: size.saturating_sub(offset),
                tcp,
            },
            Err(reader) => Route::Send {
                reader,
                ascii: false,
                offset,
                conn: Either::Left(tcp),
            },
        },
        #[cfg(unix)]
        (
            Job::Stor {
                upload,
                ascii: false,
            },
            Either::Left(tcp),
        ) if throttle.is_unlimited() && upload.has_direct_file() => Route::Pump { upload, tcp },
        (
            Job::Retr {
                reader,
                ascii,
                offset,
            },
            conn,
        ) => Route::Send {
            reader,
            ascii,
            offset,
            conn,
        },
        (Job::Stor { upload, ascii }, conn) => Route::Receive {
            upload,
            ascii,
            conn,
        },
        (Job::List(listing), conn) => Route::Listing { listing, conn },
        (Job::Bytes(bytes), conn) => Route::Bytes { bytes, conn },
    }
}

impl Route {
    /// Move the bytes, and end the data connection as the transfer needs.
    pub(super) async fn run(
        self,
        progress: &std::sync::Arc<AtomicU64>,
        throttle: &Throttle,
    ) -> Result<(), SessionError> {
        let mut conn = match self {
            #[cfg(target_os = "linux")]
            Route::Sendfile {
                file,
                offset,
                len,
                mut tcp,
            } => {
                fastpath::sendfile::send(file, offset, len, &tcp, progress, throttle).await?;
                return tcp.shutdown().await.map_err(SessionError::DataLost);
            }
            #[cfg(unix)]
            Route::Pump { upload, tcp } => {
                return fastpath::pump::receive(upload, tcp, progress).await;
            }
            Route::Send {
                reader,
                ascii,
                offset,
                mut conn,
            } => {
                let expected = reader.size().map_or(0, |s| s.saturating_sub(offset));
                let read = copy::send_file(reader, &mut conn, ascii, progress, throttle).await?;
                if read < expected {
                    return Err(SessionError::Shrank(expected - read));
                }
                conn
            }
            Route::Receive {
                upload,
                ascii,
                mut conn,
            } => {
                // Once the upload is committed the transfer has succeeded; a
                // client that already closed its end cannot make it fail.
                copy::receive_file(upload, &mut conn, ascii, progress, throttle).await?;
                let _ = conn.shutdown().await;
                return Ok(());
            }
            Route::Listing { listing, mut conn } => {
                listing
                    .send(&mut conn, progress, throttle)
                    .await
                    .map_err(SessionError::DataLost)?;
                conn
            }
            Route::Bytes {
                mut bytes,
                mut conn,
            } => {
                bytes.extend_from_slice(b"\r\n");
                conn.write_all(&bytes)
                    .await
                    .map_err(SessionError::DataLost)?;
                progress.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                conn
            }
        };
        conn.shutdown().await.map_err(SessionError::DataLost)
    }
}

#[cfg(test)]
mod tests;
