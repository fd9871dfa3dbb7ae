//! Which way each kind of transfer goes ([`route`]).

use std::pin::Pin;
use std::task::{Context, Poll};

use super::*;
use crate::options::LimitsOptions;

/// An upload that keeps nothing, and has no plain file to offer.
struct Null;

impl tokio::io::AsyncWrite for Null {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[async_trait::async_trait]
impl Upload for Null {
    async fn commit(self: Box<Self>) -> crate::storage::Result<()> {
        Ok(())
    }
}

/// A plain data connection (the server's end of a loopback pair; the
/// client's end is kept open beside it).
async fn plain() -> (MaybeTls, tokio::net::TcpStream) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = tokio::net::TcpStream::connect(l.local_addr().unwrap());
    let (client, server) = tokio::join!(client, l.accept());
    (Either::Left(server.unwrap().0), client.unwrap())
}

/// A local root with one file `f` of ten bytes.
fn local(dir: &std::path::Path) -> crate::storage::LocalStorage {
    std::fs::write(dir.join("f"), b"0123456789").unwrap();
    crate::storage::LocalStorage::new(dir).unwrap()
}

fn vp(p: &str) -> portcullis_proto::path::VirtualPath {
    portcullis_proto::path::VirtualPath::root()
        .resolve(p)
        .unwrap()
}

/// `f` as the local back end opens it for a RETR from `offset`.
async fn file(dir: &std::path::Path, offset: u64) -> ReadStream {
    use crate::storage::Storage;
    local(dir).open_read(&vp("/f"), offset).await.unwrap()
}

/// An upload into the local back end, which offers its plain file.
async fn local_upload(dir: &std::path::Path) -> Box<dyn Upload> {
    use crate::storage::{Storage, WriteMode};
    let st = local(dir);
    st.open_write(&vp("/g"), WriteMode::Replace).await.unwrap()
}

fn retr(reader: ReadStream, ascii: bool, offset: u64) -> Job {
    Job::Retr {
        reader,
        ascii,
        offset,
    }
}

fn stor(upload: Box<dyn Upload>, ascii: bool) -> Job {
    Job::Stor { upload, ascii }
}

fn throttled() -> Throttle {
    let o = LimitsOptions {
        download_rate: 1 << 20,
        upload_rate: 1 << 20,
        ..Default::default()
    };
    let guard = crate::limits::Guard::new(o.clone());
    let buckets = crate::limits::Buckets::new(&o);
    let t = guard.throttle("u", (0, 0), &buckets, true);
    assert!(!t.is_unlimited());
    t
}

fn name(r: &Route) -> &'static str {
    match r {
        #[cfg(target_os = "linux")]
        Route::Sendfile { .. } => "sendfile",
        #[cfg(unix)]
        Route::Pump { .. } => "pump",
        Route::Send { ascii: true, .. } => "send, TYPE A",
        Route::Send { .. } => "send",
        Route::Receive { ascii: true, .. } => "receive, TYPE A",
        Route::Receive { .. } => "receive",
        Route::Listing { .. } => "listing",
        Route::Bytes { .. } => "bytes",
    }
}

#[tokio::test]
async fn each_transfer_takes_its_way() {
    let dir = tempfile::tempdir().unwrap();
    let free = Throttle::default();
    let slow = throttled();
    let (conn, _c) = plain().await;
    let r = route(retr(file(dir.path(), 4).await, false, 4), conn, &free);
    #[cfg(target_os = "linux")]
    assert!(
        matches!(
            r,
            Route::Sendfile {
                offset: 4,
                len: 6,
                ..
            }
        ),
        "{}",
        name(&r)
    );
    // sendfile paces itself: a bandwidth limit keeps it.
    let (conn, _c) = plain().await;
    let r = route(retr(file(dir.path(), 0).await, false, 0), conn, &slow);
    #[cfg(target_os = "linux")]
    assert_eq!(name(&r), "sendfile");
    let (conn, _c) = plain().await;
    let r = route(retr(file(dir.path(), 0).await, true, 0), conn, &free);
    assert_eq!(name(&r), "send, TYPE A");
    // Not a local file (an object store's body): the copy loop.
    let body = ReadStream::stream(Box::new(std::io::Cursor::new(b"x".to_vec())), Some(1));
    let (conn, _c) = plain().await;
    assert_eq!(name(&route(retr(body, false, 0), conn, &free)), "send");
    // An upload into a local file offers it: the pump.
    let (conn, _c) = plain().await;
    let r = route(stor(local_upload(dir.path()).await, false), conn, &free);
    #[cfg(unix)]
    assert_eq!(name(&r), "pump");
    // One without a plain file (an object store's): the copy loop.
    let (conn, _c) = plain().await;
    let r = route(stor(Box::new(Null), false), conn, &free);
    assert_eq!(name(&r), "receive");
    // The pump does not pace: a bandwidth limit takes the copy loop.
    let (conn, _c) = plain().await;
    let r = route(stor(local_upload(dir.path()).await, false), conn, &slow);
    assert_eq!(name(&r), "receive");
    let (conn, _c) = plain().await;
    let r = route(stor(local_upload(dir.path()).await, true), conn, &free);
    assert_eq!(name(&r), "receive, TYPE A");
    let (conn, _c) = plain().await;
    assert_eq!(
        name(&route(Job::Bytes(b"f".to_vec()), conn, &free)),
        "bytes"
    );
}

/// sendfile sends from the REST offset, and as many bytes as the file
/// had past it when opened.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn sendfile_sends_from_the_offset() {
    use tokio::io::AsyncReadExt;
    let dir = tempfile::tempdir().unwrap();
    let progress = std::sync::Arc::new(AtomicU64::new(0));
    let (conn, mut client) = plain().await;
    let free = Throttle::default();
    let r = route(retr(file(dir.path(), 4).await, false, 4), conn, &free);
    let reader = async {
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        got
    };
    let (sent, got) = tokio::join!(r.run(&progress, &free), reader);
    sent.unwrap();
    assert_eq!(got, b"456789");
    assert_eq!(progress.load(Ordering::Relaxed), 6);
}
