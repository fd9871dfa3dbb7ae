//! Counting what a root holds: a walk through the [`Storage`] listings (a
//! local root's directories, an object store's delimiter listings page by
//! page), run as its own task, off every session's path. Bounded: at most
//! [`MAX_TIME`] in all, and at most [`MAX_PENDING`] directories known but
//! not yet listed (depth first, so that is the tree's width along one
//! path, not its size). Symbolic links are not followed (a link's target is
//! counted where it lies, if beneath the root); directories and markers
//! count toward nothing.

use std::time::Duration;

use futures_util::StreamExt;
use portcullis_proto::listing::FileKind;
use portcullis_proto::path::VirtualPath;

use crate::storage::Storage;

/// The longest a scan may take.
const MAX_TIME: Duration = Duration::from_secs(600);
/// Directories waiting to be listed at once.
const MAX_PENDING: usize = 100_000;

/// What a scan found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    pub bytes: u64,
    pub files: u64,
}

/// Count the files and bytes beneath the root of `storage`.
pub async fn count(storage: &dyn Storage) -> Result<Counted, String> {
    match tokio::time::timeout(MAX_TIME, walk(storage)).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "the scan took longer than {} s",
            MAX_TIME.as_secs()
        )),
    }
}

async fn walk(storage: &dyn Storage) -> Result<Counted, String> {
    let mut counted = Counted::default();
    let mut pending = vec![VirtualPath::root()];
    while let Some(dir) = pending.pop() {
        let mut entries = storage
            .list(&dir)
            .await
            .map_err(|e| format!("listing {dir}: {e}"))?;
        while let Some(entry) = entries.next().await {
            let entry = entry.map_err(|e| format!("listing {dir}: {e}"))?;
            if entry.target.is_some() {
                continue;
            }
            match entry.meta.kind {
                FileKind::File => {
                    counted.bytes += entry.meta.size;
                    counted.files += 1;
                }
                FileKind::Dir => {
                    if pending.len() >= MAX_PENDING {
                        return Err(format!(
                            "more than {MAX_PENDING} directories waiting to be listed"
                        ));
                    }
                    match dir.join_name(&entry.name) {
                        Ok(p) => pending.push(p),
                        Err(_) => continue,
                    }
                }
                FileKind::Symlink | FileKind::Other => {}
            }
        }
    }
    Ok(counted)
}
