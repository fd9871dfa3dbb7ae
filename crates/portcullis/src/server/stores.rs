//! The start-up check of object-store roots: each bucket is asked once
//! (one listing request of one key, bounded by its `request_timeout`, all
//! at once), and the start-up summary says what came back. A bucket that
//! does not exist or refuses the credentials stops the start; one that
//! does not answer is a warning (the store may be on its way up), and
//! sessions on it get 451 until it answers.

use std::sync::Arc;

use crate::options::ServerOptions;
use crate::storage::{RootSpec, Storage, StorageError};

/// What the check found: the roots opened (kept for the sessions), one
/// summary line per root, and the problems that stop the start.
pub(super) struct Checked {
    pub opened: Vec<(RootSpec, Arc<dyn Storage>)>,
    pub lines: Vec<String>,
    pub fatal: Vec<String>,
}

/// Every `s3://` root of the configuration, once each.
fn s3_roots(o: &ServerOptions) -> Vec<crate::storage::S3Root> {
    let mut out = Vec::new();
    let roots = o
        .anonymous
        .iter()
        .map(|a| &a.root)
        .chain(o.users.iter().map(|u| &u.root));
    for r in roots {
        if let RootSpec::S3(r) = r {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
    }
    out
}

pub(super) async fn check(o: &ServerOptions) -> Checked {
    let mut c = Checked {
        opened: Vec::new(),
        lines: Vec::new(),
        fatal: Vec::new(),
    };
    let mut stores = Vec::new();
    for root in s3_roots(o) {
        match crate::storage::Factory::open_s3(&root, &o.s3) {
            Ok(s) => stores.push((root, Arc::new(s))),
            Err(e) => c.fatal.push(e.to_string()),
        }
    }
    let checks = stores.iter().map(|(_, s)| s.check());
    let results = futures_util::future::join_all(checks).await;
    for ((root, store), result) in stores.into_iter().zip(results) {
        let what = store.describe();
        match result {
            Ok(()) => c.lines.push(format!(
                "storage: {what}: bucket reachable; {}",
                store.bodies()
            )),
            Err(StorageError::Unavailable(full)) => {
                // The first line is enough here; the log has it all.
                let e = full.lines().next().unwrap_or_default();
                tracing::warn!(error = %full, "{what}: not reachable");
                c.lines.push(format!(
                    "storage: {what}: NOT reachable ({e}); serving anyway, its users get 451 until it answers"
                ));
            }
            Err(StorageError::NotFound) => c.fatal.push(format!(
                "{what}: no such bucket (create it first, e.g. `aws s3 mb s3://{}`)",
                root.bucket
            )),
            Err(StorageError::PermissionDenied) => c.fatal.push(format!(
                "{what}: the store refused the credentials or the listing of the root"
            )),
            Err(e) => c.fatal.push(format!("{what}: {e}")),
        }
        c.opened
            .push((RootSpec::S3(root), store as Arc<dyn Storage>));
    }
    c
}
