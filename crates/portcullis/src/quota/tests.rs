use std::sync::Arc;

use super::*;
use crate::storage::{Factory, LocalPolicy};

fn root(dir: &std::path::Path) -> (RootSpec, Arc<dyn Storage>) {
    let spec = RootSpec::Local(dir.to_owned());
    let factory = Factory::new(
        LocalPolicy {
            atomic: true,
            fsync: false,
        },
        Default::default(),
        std::iter::empty(),
    );
    let storage = factory.open(&spec).unwrap();
    (spec, storage)
}

fn limits(bytes: u64, files: Option<u64>) -> QuotaLimits {
    QuotaLimits {
        bytes: Some(bytes),
        files,
    }
}

#[tokio::test]
async fn an_account_without_a_quota_is_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, storage) = root(dir.path());
    let q = Quotas::default();
    assert!(q
        .attach(&spec, &storage, "u", QuotaLimits::default())
        .is_none());
    assert!(q.usage(None).is_empty());
}

/// Leases taken from many tasks at once never reserve past the limit, and
/// each one's end leaves only what was committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leases_in_parallel_never_pass_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, storage) = root(dir.path());
    let quotas = Quotas::default();
    let q = quotas
        .attach(&spec, &storage, "u", limits(1_000_000, None))
        .unwrap();
    q.ready().await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let q = q.clone();
            tokio::spawn(async move {
                let lease = q.begin(Target::New).await.unwrap();
                let mut written = 0u64;
                while written < 150_000 {
                    if lease.charge(10_000).is_err() {
                        lease.end(false);
                        return 0;
                    }
                    written += 10_000;
                    tokio::task::yield_now().await;
                }
                lease.end(true);
                written
            })
        })
        .collect();
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    let u = q.usage();
    assert!(total <= 1_000_000 && total > 0, "{total}");
    assert_eq!(u.bytes, total);
    assert_eq!((u.reserved_bytes, u.reserved_files), (0, 0));
    assert_eq!(u.files, total / 150_000);
}

#[tokio::test]
async fn the_exact_remainder_is_granted_and_one_byte_more_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, storage) = root(dir.path());
    let quotas = Quotas::default();
    let q = quotas
        .attach(&spec, &storage, "u", limits(100, Some(1)))
        .unwrap();
    q.ready().await.unwrap();
    let lease = q.begin(Target::New).await.unwrap();
    assert_eq!(
        q.begin(Target::New).await.unwrap_err(),
        QuotaError::Exceeded
    );
    lease.charge(60).unwrap();
    lease.charge(40).unwrap();
    assert_eq!(lease.charge(1), Err(QuotaError::Exceeded));
    assert!(q.fits(0).await && !q.fits(1).await);
    lease.end(true);
    lease.end(true);
    assert_eq!(q.usage().bytes, 100);
    assert_eq!(q.usage().files, 1);
    q.removed(100);
    assert!(q.fits(100).await);
}

#[tokio::test]
async fn usage_per_account_and_a_rescan_find_changes_made_outside() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    std::fs::write(dir.path().join("d/a"), b"12345").unwrap();
    let (spec, storage) = root(dir.path());
    let quotas = Quotas::default();
    let q = quotas
        .attach(&spec, &storage, "u", limits(1000, None))
        .unwrap();
    // A second account on the same root shares its usage.
    let other = quotas
        .attach(&spec, &storage, "v", limits(10, Some(5)))
        .unwrap();
    q.ready().await.unwrap();
    assert_eq!((q.usage().bytes, q.usage().files), (5, 1));
    assert!(!other.fits(6).await && other.fits(5).await);
    let all = quotas.usage(None);
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].user, "u");
    assert_eq!(all[0].state, ScanState::Ready);
    assert_eq!(quotas.usage(Some("v"))[0].limits, limits(10, Some(5)));
    std::fs::write(dir.path().join("b"), b"123").unwrap();
    assert_eq!(quotas.rescan("nobody"), 0);
    // Wait for the rescan's result, bounded by the test's own timeout.
    let mut rx = q.tally.state.subscribe();
    assert_eq!(quotas.rescan("u"), 1);
    tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while q.usage().bytes != 8 {
            rx.changed().await.unwrap();
        }
    })
    .await
    .unwrap();
    assert_eq!(q.usage().files, 2);
    quotas.set_limits("u", limits(7, None));
    assert_eq!(q.limits(), limits(7, None));
    assert!(!q.fits(0).await || q.usage().bytes_left(&q.limits()) == Some(0));
}

/// An upload dropped unfinished (ABOR, the session ending) gives back its
/// reservation and its new file; an in-place one keeps what it wrote.
#[tokio::test]
async fn a_dropped_lease_gives_its_reservation_back() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, storage) = root(dir.path());
    let quotas = Quotas::default();
    let q = quotas
        .attach(&spec, &storage, "u", limits(10_000_000, Some(2)))
        .unwrap();
    q.ready().await.unwrap();
    let lease = q.begin(Target::New).await.unwrap();
    let pump = lease.clone();
    pump.charge(5_000).unwrap();
    assert_eq!(q.usage().reserved_files, 1);
    assert!(q.usage().reserved_bytes >= 5_000);
    drop(lease);
    assert!(
        q.usage().reserved_bytes >= 5_000,
        "the pump's clone holds it"
    );
    drop(pump);
    assert_eq!(q.usage(), Usage::default());
    let appe = q.begin(Target::InPlace { size: 0, kept: 0 }).await.unwrap();
    appe.charge(7).unwrap();
    drop(appe);
    assert_eq!((q.usage().bytes, q.usage().reserved_bytes), (7, 0));
}

/// APPE to a new name creates the file in place: it stays, and is
/// counted, even when the upload fails.
#[tokio::test]
async fn a_file_created_in_place_is_counted_whatever_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, storage) = root(dir.path());
    let quotas = Quotas::default();
    let q = quotas
        .attach(&spec, &storage, "u", limits(100, Some(1)))
        .unwrap();
    q.ready().await.unwrap();
    let lease = q.begin(Target::Created).await.unwrap();
    lease.charge(10).unwrap();
    lease.end(false);
    assert_eq!((q.usage().bytes, q.usage().files), (10, 1));
    assert_eq!(
        q.begin(Target::Created).await.unwrap_err(),
        QuotaError::Exceeded
    );
}

/// One directory written in two ways is one root: its accounts share one
/// usage (each spelling once counted on its own, so that two accounts on
/// it could together store twice their quota).
#[tokio::test]
async fn one_directory_written_two_ways_is_one_root() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, storage) = root(dir.path());
    let quotas = Quotas::default();
    let q = quotas
        .attach(&spec, &storage, "u", limits(100, None))
        .unwrap();
    let slash = RootSpec::Local(dir.path().join("./"));
    assert_ne!(slash.to_string(), spec.to_string());
    let other = quotas
        .attach(&slash, &storage, "v", limits(100, None))
        .unwrap();
    q.ready().await.unwrap();
    other.ready().await.unwrap();
    let lease = q.begin(Target::New).await.unwrap();
    lease.charge(100).unwrap();
    lease.end(true);
    assert!(
        !other.fits(1).await,
        "the other account sees the bytes stored"
    );
    let roots: Vec<String> = quotas.usage(None).into_iter().map(|a| a.root).collect();
    assert_eq!(roots[0], roots[1]);
}
