//! Which way each kind of transfer goes ([`route`]).

use std::pin::Pin;
use std::task::{Context, Poll};

use super::*;
use crate::options::LimitsOptions;

/// An upload that keeps nothing.
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

async fn file(dir: &std::path::Path) -> ReadStream {
    let path = dir.join("f");
    std::fs::write(&path, b"0123456789").unwrap();
    let file = tokio::fs::File::open(&path).await.unwrap();
    ReadStream::File { file, size: 10 }
}

fn retr(reader: ReadStream, ascii: bool, offset: u64) -> Job {
    Job::Retr {
        reader,
        ascii,
        offset,
    }
}

fn stor(ascii: bool) -> Job {
    Job::Stor {
        upload: Box::new(Null),
        ascii,
    }
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
    let r = route(retr(file(dir.path()).await, false, 4), conn, &free);
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
    let r = route(retr(file(dir.path()).await, false, 0), conn, &slow);
    #[cfg(target_os = "linux")]
    assert_eq!(name(&r), "sendfile");
    let (conn, _c) = plain().await;
    let r = route(retr(file(dir.path()).await, true, 0), conn, &free);
    assert_eq!(name(&r), "send, TYPE A");
    // Not a local file (an object store's body): the copy loop.
    let body = ReadStream::Stream {
        body: Box::new(std::io::Cursor::new(b"x".to_vec())),
        size: Some(1),
    };
    let (conn, _c) = plain().await;
    assert_eq!(name(&route(retr(body, false, 0), conn, &free)), "send");
    let (conn, _c) = plain().await;
    let r = route(stor(false), conn, &free);
    #[cfg(unix)]
    assert_eq!(name(&r), "pump");
    // The pump does not pace: a bandwidth limit takes the copy loop.
    let (conn, _c) = plain().await;
    assert_eq!(name(&route(stor(false), conn, &slow)), "receive");
    let (conn, _c) = plain().await;
    assert_eq!(name(&route(stor(true), conn, &free)), "receive, TYPE A");
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
    let r = route(retr(file(dir.path()).await, false, 4), conn, &free);
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
