//! Unit tests of what needs no store: keys, error mapping. The requests
//! themselves are tested against a real S3 server by the integration
//! tests (tests/integration/s3.rs).

use super::*;
use crate::storage::object::{ObjectStorage, CAPABILITIES};
use crate::storage::stores::OpenedStore;
use crate::storage::Storage;
use portcullis_proto::path::VirtualPath;
use std::time::Duration;

fn storage(prefix: &str) -> ObjectStorage {
    let root = S3Root::parse(&format!("s3://bucket/{prefix}"), None)
        .unwrap()
        .unwrap();
    let settings = S3Settings {
        endpoint: Some("http://127.0.0.1:9".into()),
        access_key_id: Some("k".into()),
        secret_access_key: Some("s".into()),
        allow_http: true,
        ..S3Settings::default()
    };
    build::new(&root, &settings).unwrap()
}

fn vp(s: &str) -> VirtualPath {
    VirtualPath::root().resolve(s).unwrap()
}

#[test]
fn keys_under_the_prefix() {
    let s = storage("");
    assert_eq!(s.key(&VirtualPath::root()).unwrap(), "");
    assert_eq!(s.key(&vp("a/b.txt")).unwrap(), "a/b.txt");
    assert_eq!(s.dir_prefix(&VirtualPath::root()).unwrap(), None);
    assert_eq!(s.dir_prefix(&vp("a")).unwrap().as_deref(), Some("a/"));
    let s = storage("users/alice/");
    assert_eq!(s.key(&VirtualPath::root()).unwrap(), "users/alice");
    assert_eq!(s.key(&vp("x y#%")).unwrap(), "users/alice/x y#%");
    assert_eq!(
        s.dir_prefix(&VirtualPath::root()).unwrap().as_deref(),
        Some("users/alice/")
    );
    assert!(matches!(s.key(&vp("a\u{7}b")), Err(StorageError::BadName)));
    assert_eq!(s.capabilities(), CAPABILITIES);
}

#[test]
fn store_errors_map_to_storage_errors() {
    let src = || -> Box<dyn std::error::Error + Send + Sync> { "x".into() };
    let nf = object_store::Error::NotFound {
        path: "k".into(),
        source: src(),
    };
    assert!(matches!(map_err(nf), StorageError::NotFound));
    let denied = object_store::Error::PermissionDenied {
        path: "k".into(),
        source: src(),
    };
    assert!(matches!(map_err(denied), StorageError::PermissionDenied));
    let other = object_store::Error::Generic {
        store: "S3",
        source: src(),
    };
    assert!(matches!(map_err(other), StorageError::Unavailable(_)));
    let no_bucket = object_store::Error::Generic {
        store: "S3",
        source: "404 Not Found: <Error><Code>NoSuchBucket</Code></Error>".into(),
    };
    assert!(matches!(map_err(no_bucket), StorageError::NotFound));
    let bad_key = object_store::Error::Generic {
        store: "S3",
        source: "403: <Error><Code>InvalidAccessKeyId</Code></Error>".into(),
    };
    assert!(matches!(map_err(bad_key), StorageError::PermissionDenied));
    let slow = object_store::Error::Generic {
        store: "S3",
        source: "503: <Error><Code>SlowDown</Code></Error>".into(),
    };
    assert!(matches!(map_err(slow), StorageError::Unavailable(_)));
    let long = object_store::Error::Generic {
        store: "S3",
        source: "400: <Error><Code>KeyTooLongError</Code></Error>".into(),
    };
    assert!(matches!(map_err(long), StorageError::NameTooLong));
    // Through an AsyncWrite and back, a storage error stays itself.
    let io = std::io::Error::other(StorageError::NoSpace);
    assert!(matches!(StorageError::from_io(io), StorageError::NoSpace));
}

#[tokio::test]
async fn an_unreachable_store_answers_in_bounded_time() {
    // Port 9 (discard) on loopback: nothing listens; connecting fails at
    // once, and the retries stay within request_timeout.
    let s = storage("");
    let started = std::time::Instant::now();
    assert!(matches!(s.check().await, Err(StorageError::Unavailable(_))));
    assert!(started.elapsed() < DEFAULT_REQUEST_TIMEOUT_BOUND);
}

const DEFAULT_REQUEST_TIMEOUT_BOUND: Duration = Duration::from_secs(31);
