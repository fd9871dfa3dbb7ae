//! Renames beneath a local root: RNTO, with or without replacing what has
//! the target's name, and the publication of a no-clobber upload (a
//! temporary name renamed onto its target only if that is still free).

use super::*;

/// Rename `from` to `to` (paths under the root, "." never) as `mode` says.
/// A directory moved beneath itself (rename(2)'s EINVAL) is
/// `IntoItself`, the client's mistake, not a local error.
pub(super) fn rename(dir: &Dir, from: &Path, to: &Path, mode: RenameMode) -> std::io::Result<()> {
    let r = match mode {
        RenameMode::Replace => dir.rename(from, dir, to),
        RenameMode::NoClobber => rename_noreplace(dir, from, to),
    };
    r.map_err(|e| match e.raw_os_error() {
        // EINVAL (22): the only reason rename(2) gives it here (the last
        // components are never "." or "..", and a filesystem without
        // RENAME_NOREPLACE is handled below) is a move into itself.
        Some(22) => std::io::Error::other(StorageError::IntoItself),
        _ => e,
    })
}

/// Rename `from` onto `to` unless `to` exists: one
/// `renameat2(RENAME_NOREPLACE)` between their directories, each opened
/// beneath the root, so no file created since any earlier check is ever
/// replaced. Filesystems without the flag (EINVAL) get a check and a
/// plain rename, which leaves that window open.
pub(super) fn rename_noreplace(dir: &Dir, from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let parent_of = |p: &Path| match p.parent() {
            Some(p) if !p.as_os_str().is_empty() => dir.open_dir(p),
            _ => dir.try_clone(),
        };
        let (Some(from_name), Some(to_name)) = (from.file_name(), to.file_name()) else {
            return Err(ErrorKind::InvalidInput.into());
        };
        let from_dir = parent_of(from)?;
        // An upload's temporary name sits next to its target: one open.
        let to_dir = match from.parent() == to.parent() {
            true => None,
            false => Some(parent_of(to)?),
        };
        match rustix::fs::renameat_with(
            &from_dir,
            from_name,
            to_dir.as_ref().unwrap_or(&from_dir),
            to_name,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            // No RENAME_NOREPLACE on this filesystem, or a move into
            // itself, which the plain rename below reports again.
            Err(rustix::io::Errno::INVAL) => {}
            r => return r.map_err(Into::into),
        }
    }
    if dir.symlink_metadata(to).is_ok() {
        return Err(ErrorKind::AlreadyExists.into());
    }
    dir.rename(from, dir, to)
}
