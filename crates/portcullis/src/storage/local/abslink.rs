//! Symbolic links with absolute targets. cap-std refuses every absolute
//! target as leading out of the root, as a chroot would read it against
//! the chroot rather than the host. Here an absolute target is read as a
//! host path: when it lies beneath the root's own host path (`latest ->
//! /srv/ftp/pub/v1.2` in a root at /srv/ftp), it names the virtual path
//! `/pub/v1.2`, which listings show as the target and which following the
//! link leads to; any other absolute target stays out of reach.
//!
//! The rewriting only produces a virtual path: the operation then resolves
//! that path beneath the root as every path is (cap-std), so a link
//! changed in between can still lead nowhere outside.

use std::collections::VecDeque;
use std::path::{Component, Path, PathBuf};

use cap_std::fs::Dir;
use portcullis_proto::path::VirtualPath;

use super::{rel, Result};

/// Links followed while rewriting one path (Linux's own limit).
const MAX_HOPS: usize = 40;

/// Where the root directory is on the host, as configured and as the
/// kernel names it (the two differ when the configured path has links). A
/// target is matched against these words only: one that reaches the root
/// through some other link is not recognised, as finding out would mean
/// resolving host paths outside the root.
#[derive(Debug)]
pub(in crate::storage) struct HostRoot {
    given: PathBuf,
    canonical: Option<PathBuf>,
}

impl HostRoot {
    pub(in crate::storage) fn new(root: &Path) -> HostRoot {
        let given = std::path::absolute(root).unwrap_or_else(|_| root.to_owned());
        let canonical = std::fs::canonicalize(root).ok().filter(|c| *c != given);
        HostRoot { given, canonical }
    }

    /// The virtual path an absolute link target names, if it lies beneath
    /// the root (the root itself included); `None` for any other target,
    /// and for one with `..` in it, which the words alone cannot place.
    pub(in crate::storage) fn virtual_of(&self, target: &Path) -> Option<VirtualPath> {
        if !target.is_absolute() || target.components().any(|c| c == Component::ParentDir) {
            return None;
        }
        let rest = std::iter::once(&self.given)
            .chain(&self.canonical)
            .find_map(|r| target.strip_prefix(r).ok())?;
        let rest = rest.to_str()?;
        VirtualPath::root().resolve(&format!("/{rest}")).ok()
    }
}

/// `path` with the symbolic links along it replaced by where they lead,
/// absolute targets beneath the root read as virtual paths (the last
/// component too when `follow_last`). `None` when no link with an
/// absolute target beneath the root is on the way, or one leads outside:
/// the operation's own refusal then stands.
pub(in crate::storage) fn resolve(
    root: &Dir,
    host: &HostRoot,
    path: &VirtualPath,
    follow_last: bool,
) -> Result<Option<VirtualPath>> {
    let mut todo: VecDeque<String> = path.components().iter().cloned().collect();
    let mut done = VirtualPath::root();
    let mut hops = 0;
    let mut rewrote = false;
    while let Some(name) = todo.pop_front() {
        let Ok(here) = done.join_name(&name) else {
            return Ok(None);
        };
        if todo.is_empty() && !follow_last {
            done = here;
            break;
        }
        let contents = rel(&here)
            .ok()
            .and_then(|p| root.read_link_contents(&p).ok());
        let Some(contents) = contents else {
            // Not a link (or gone): a plain step.
            done = here;
            continue;
        };
        hops += 1;
        if hops > MAX_HOPS {
            return Ok(None);
        }
        let target = if contents.is_absolute() {
            rewrote = true;
            host.virtual_of(&contents)
        } else {
            contents.to_str().and_then(|c| done.follow_link(c))
        };
        let Some(target) = target else {
            return Ok(None);
        };
        let mut next: VecDeque<String> = target.components().iter().cloned().collect();
        next.extend(todo.drain(..));
        todo = next;
        done = VirtualPath::root();
    }
    Ok(rewrote.then_some(done))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::super::{LocalStorage, StorageError};
    use crate::storage::Storage;
    use portcullis_proto::path::VirtualPath;

    fn vp(s: &str) -> VirtualPath {
        VirtualPath::root().resolve(s).unwrap()
    }

    /// A root with `pub/v1.2/f`, `latest -> ROOT/pub/v1.2`; the root is
    /// opened through `via`, a link to it, so that the configured and the
    /// kernel's host paths differ.
    fn tree() -> (tempfile::TempDir, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("root");
        std::fs::create_dir_all(root.join("pub/v1.2")).unwrap();
        std::fs::write(root.join("pub/v1.2/f"), b"one").unwrap();
        symlink(d.path().join("via/pub/v1.2"), root.join("latest")).unwrap();
        symlink(&root, d.path().join("via")).unwrap();
        (d, root)
    }

    #[tokio::test]
    async fn absolute_links_beneath_the_root_are_followed_as_virtual_paths() {
        let (d, root) = tree();
        // Configured as the real path, the link names the root through
        // `via`: only the kernel's path matches it after canonicalising.
        symlink(root.join("pub/v1.2/f"), root.join("real")).unwrap();
        let st = LocalStorage::new(d.path().join("via")).unwrap();
        let e = st.entry(&vp("/latest")).await.unwrap();
        assert_eq!(e.target.as_deref(), Some("/pub/v1.2"));
        assert_eq!(st.metadata(&vp("/latest/f")).await.unwrap().size, 3);
        // The kernel's name of the root matches too.
        assert_eq!(
            st.entry(&vp("/real")).await.unwrap().target.as_deref(),
            Some("/pub/v1.2/f")
        );
        assert_eq!(st.metadata(&vp("/real")).await.unwrap().size, 3);
        // Opened at its real path, a target through another link to the
        // root is not recognised (no host path is resolved to find out).
        let st = LocalStorage::new(&root).unwrap();
        assert!(matches!(
            st.metadata(&vp("/latest/f")).await,
            Err(StorageError::OutsideRoot)
        ));
        assert_eq!(st.metadata(&vp("/real")).await.unwrap().size, 3);
        // A link to a link: followed hop by hop.
        symlink(root.join("real"), root.join("newest")).unwrap();
        assert_eq!(st.metadata(&vp("/newest")).await.unwrap().size, 3);
        // The link itself is what DELE removes; the target stays.
        st.remove_file(&vp("/newest")).await.unwrap();
        assert!(root.join("real").exists());
    }

    #[tokio::test]
    async fn other_absolute_links_and_rewritten_escapes_stay_refused() {
        let (_d, root) = tree();
        let st = LocalStorage::new(&root).unwrap();
        symlink("/etc", root.join("abs")).unwrap();
        symlink(root.join("../.."), root.join("climb")).unwrap();
        // Beneath the root in its words, but its target leads out: the
        // rewritten path is resolved beneath the root again and refused.
        symlink(root.join("pub/out"), root.join("via_out")).unwrap();
        symlink("/etc", root.join("pub/out")).unwrap();
        for p in ["/abs/passwd", "/climb", "/via_out/passwd"] {
            assert!(
                matches!(st.metadata(&vp(p)).await, Err(StorageError::OutsideRoot)),
                "{p}"
            );
        }
        // Changed in between: now leading out, refused on the next use.
        std::fs::remove_file(root.join("latest")).unwrap();
        symlink("/etc", root.join("latest")).unwrap();
        assert!(matches!(
            st.metadata(&vp("/latest/passwd")).await,
            Err(StorageError::OutsideRoot)
        ));
    }
}
