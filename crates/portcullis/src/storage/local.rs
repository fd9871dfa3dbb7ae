//! Local filesystem storage: a directory on this machine as a user's root.
//!
//! Every operation goes through a [`cap_std::fs::Dir`] opened on that root.
//! cap-std resolves paths beneath the directory (with
//! `openat2(RESOLVE_BENEATH)` on Linux, or a careful component-by-component
//! walk elsewhere), so neither `..` nor a symlink, not even one swapped in
//! between a check and an open, can reach a file outside the root: a
//! [`VirtualPath`] already cannot name anything above the root, but the
//! filesystem under it is the user's to fill with links. Symlinks that stay
//! inside the root work as the user expects (CWD, RETR through them); listings
//! show them as links with their targets, and leave out the links that lead
//! out of the root (see `link_target`). An absolute target beneath the
//! root's host path is read as the virtual path it names (`abslink`).
//!
//! Uploads in `Replace` mode are written to a hidden temporary file next to
//! the target and renamed onto it on commit, so an interrupted STOR never
//! leaves a half-written file under the real name; an account that may not
//! overwrite has it published, and its renames made, with
//! `renameat2(RENAME_NOREPLACE)` (`local/rename.rs`). Blocking calls run on
//! tokio's blocking pool.

use std::io::{ErrorKind, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::UNIX_EPOCH;

use async_trait::async_trait;
use cap_std::fs::{Dir, OpenOptions};
use futures_util::stream::{self, BoxStream, StreamExt};
use portcullis_proto::path::VirtualPath;
use tokio::io::AsyncWrite;

use super::{
    DirEntry, FileKind, Metadata, ReadStream, RenameMode, Result, Storage, StorageError, Upload,
    WriteMode,
};

/// Prefix of the temporary files that uploads write before they are renamed
/// into place; hidden from listings and refused as client names.
const TEMP_PREFIX: &str = ".portcullis-upload.";
/// Directory entries sent per message from the blocking reader.
const LIST_BATCH: usize = 256;
/// Batches in flight between the reader and the listing: bounds memory when
/// the data connection is slower than the disk.
const LIST_QUEUE: usize = 4;

/// A directory of the local filesystem as a user's root.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: Arc<Dir>,
    /// Where the root is on the host, for absolute link targets.
    host: Arc<abslink::HostRoot>,
    /// STOR writes to a temporary name and renames on success
    /// (`server.atomic_uploads`); off, it truncates and writes in place.
    atomic: bool,
    /// Completed uploads are fsynced, file and directory, before they are
    /// reported complete (`server.fsync_uploads`).
    fsync: bool,
}

impl LocalStorage {
    /// Open `root`, which must be an existing directory. This is the only
    /// place that uses ambient authority; everything after is relative to it.
    pub fn new(root: impl AsRef<Path>) -> std::io::Result<LocalStorage> {
        let dir = Dir::open_ambient_dir(root.as_ref(), cap_std::ambient_authority())?;
        Ok(LocalStorage {
            root: Arc::new(dir),
            host: Arc::new(abslink::HostRoot::new(root.as_ref())),
            atomic: true,
            fsync: true,
        })
    }

    /// The handle of the root directory, for the start-up check of what
    /// the running user may do in it (`rootcheck`).
    pub fn dir(&self) -> &Dir {
        &self.root
    }

    /// `server.atomic_uploads = false`: STOR truncates the target and
    /// writes in place (as vsftpd does), so a failed upload leaves a partial
    /// file; REST/APPE are in place either way.
    pub fn with_atomic_uploads(mut self, atomic: bool) -> Self {
        self.atomic = atomic;
        self
    }

    /// `server.fsync_uploads = false`: uploads are not fsynced before 226
    /// (as vsftpd and Pure-FTPd do); the kernel writes them back later, and a
    /// crash can lose an upload that was reported complete. A small upload
    /// is then written and renamed inline, with no hop to the blocking pool.
    /// Files on tmpfs or ramfs are never fsynced, whatever this says.
    pub fn with_fsync(mut self, fsync: bool) -> Self {
        self.fsync = fsync;
        self
    }

    /// Run `f` on the root directory, inline: these are single metadata
    /// system calls (stat, open, mkdir, rename, unlink) on a local
    /// filesystem, microseconds each. A hop to the blocking pool cost more
    /// than the call itself (two thread wake-ups per file operation were
    /// most of the time of a 4 KiB transfer). Work that can take long
    /// (reading directories, writing uploads, fsync) stays off the runtime.
    async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Dir) -> std::io::Result<T> + Send + 'static,
    {
        f(&self.root).map_err(StorageError::from_io)
    }
}

/// The path under the root for cap-std ("." for the root itself). Refuses the
/// reserved temporary names: a client must not be able to read, overwrite or
/// rename someone's upload in progress.
fn rel(path: &VirtualPath) -> Result<PathBuf> {
    if path.components().iter().any(|c| c.starts_with(TEMP_PREFIX)) {
        return Err(StorageError::BadName);
    }
    if path.is_root() {
        Ok(PathBuf::from("."))
    } else {
        Ok(PathBuf::from(path.relative()))
    }
}

fn kind_of(ft: &cap_std::fs::FileType) -> FileKind {
    if ft.is_dir() {
        FileKind::Dir
    } else if ft.is_file() {
        FileKind::File
    } else if ft.is_symlink() {
        FileKind::Symlink
    } else {
        FileKind::Other
    }
}

fn convert(m: &cap_std::fs::Metadata) -> Metadata {
    use cap_std::fs::{MetadataExt, PermissionsExt};
    Metadata {
        kind: kind_of(&m.file_type()),
        size: m.len(),
        modified: m.modified().map(|t| t.into_std()).unwrap_or(UNIX_EPOCH),
        mode: m.permissions().mode() & 0o7777,
        nlink: m.nlink(),
    }
}

/// Only regular files are read or written in place: devices, FIFOs and
/// sockets are listed but never opened.
fn require_regular(m: &cap_std::fs::Metadata) -> std::io::Result<()> {
    if m.is_dir() {
        Err(ErrorKind::IsADirectory.into())
    } else if m.is_file() {
        Ok(())
    } else {
        Err(ErrorKind::PermissionDenied.into())
    }
}

/// Options for opening files. On Linux they add `O_NONBLOCK`, so that a FIFO
/// swapped in after a type check makes the open return at once (and the
/// `fstat` that follows refuse it) instead of parking a blocking thread until
/// someone opens the other end. The flag does nothing to regular files.
fn file_options() -> OpenOptions {
    #[allow(unused_mut)]
    let mut o = OpenOptions::new();
    #[cfg(target_os = "linux")]
    {
        use cap_std::fs::OpenOptionsExt;
        o.custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32);
    }
    o
}

/// The operations as cap-std makes them; [`Storage`] asks each once more
/// with absolute links beneath the root rewritten when cap-std refused the
/// path as leading outside (`abslink`).
impl LocalStorage {
    async fn metadata_at(&self, path: &VirtualPath) -> Result<Metadata> {
        let p = rel(path)?;
        // Follows symlinks, beneath the root only: the session decides CWD
        // and RETR on what a link leads to, and one leading out is an error.
        self.run(move |dir| dir.metadata(&p).map(|m| convert(&m)))
            .await
    }

    async fn entry_at(&self, path: &VirtualPath) -> Result<DirEntry> {
        let p = rel(path)?;
        let meta = self
            .run(move |dir| dir.symlink_metadata(&p).map(|m| convert(&m)))
            .await?;
        let name = path.file_name().unwrap_or("/").to_owned();
        let target = match meta.kind {
            FileKind::Symlink => link_target(&self.root, &self.host, &path.parent(), &name)?,
            _ => None,
        };
        Ok(DirEntry { name, meta, target })
    }

    /// `names`: entries for a names-only listing (see
    /// [`Storage::list_names`]).
    async fn list_at(
        &self,
        path: &VirtualPath,
        names: bool,
    ) -> Result<BoxStream<'static, Result<DirEntry>>> {
        let p = rel(path)?;
        let sub = self.run(move |dir| dir.open_dir(&p)).await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Result<DirEntry>>>(LIST_QUEUE);
        match sub.entries() {
            Ok(entries) => {
                // Reading names is cheap next to the stat of each one (a
                // path lookup apiece): several readers share the directory
                // stream, each taking a batch of names under the lock and
                // stating it outside. Listings are unsorted, as with ls -U.
                // A names-only listing stats only symbolic links.
                let shared = Arc::new(std::sync::Mutex::new(Some(entries)));
                let listed = Arc::new(Listed {
                    root: self.root.clone(),
                    host: self.host.clone(),
                    dir: path.clone(),
                    names,
                });
                // Without a stat per entry, reading is cheap: one reader.
                let readers = if names { 1 } else { list_readers() };
                for _ in 0..readers {
                    let (shared, listed, tx) = (shared.clone(), listed.clone(), tx.clone());
                    tokio::task::spawn_blocking(move || read_batches(&shared, &listed, &tx));
                }
            }
            Err(e) => {
                let _ = tx.try_send(vec![Err(StorageError::from_io(e))]);
            }
        }
        let batches = stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|batch| (stream::iter(batch), rx))
        });
        Ok(batches.flatten().boxed())
    }

    async fn open_read_at(&self, path: &VirtualPath, offset: u64) -> Result<ReadStream> {
        let p = rel(path)?;
        let (file, size) = self
            .run(move |dir| {
                let mut o = file_options();
                o.read(true);
                // Sockets refuse the open itself (ENXIO); name the real
                // reason when the path is not a regular file.
                let f = dir.open_with(&p, &o).map_err(|e| match dir.metadata(&p) {
                    Ok(m) => require_regular(&m).err().unwrap_or(e),
                    Err(_) => e,
                })?;
                let m = f.metadata()?;
                require_regular(&m)?;
                // Past the end is fine: the read then returns nothing.
                let mut f = f.into_std();
                if offset > 0 {
                    f.seek(SeekFrom::Start(offset))?;
                }
                Ok((f, m.len()))
            })
            .await?;
        Ok(ReadStream::file(tokio::fs::File::from_std(file), size))
    }

    async fn open_write_at(&self, path: &VirtualPath, mode: WriteMode) -> Result<Box<dyn Upload>> {
        let p = rel(path)?;
        if path.is_root() {
            return Err(StorageError::IsADirectory);
        }
        let mode = match mode {
            WriteMode::Replace if !self.atomic => WriteMode::Resume(0),
            WriteMode::NoClobber if !self.atomic => WriteMode::CreateNew,
            m => m,
        };
        let (file, finish) = self.run(move |dir| open_upload(dir, p, mode)).await?;
        // Where fsync does nothing, skipping it loses nothing and spares the
        // small upload its hop to the blocking pool.
        let fsync = self.fsync && !fsync_is_noop(&file);
        Ok(Box::new(LocalUpload {
            file: writer::FileWriter::new(file, fsync),
            dir: self.root.clone(),
            finish,
            fsync,
        }))
    }

    async fn mkdir_at(&self, path: &VirtualPath) -> Result<()> {
        let p = rel(path)?;
        self.run(move |dir| dir.create_dir(&p)).await
    }

    async fn rmdir_at(&self, path: &VirtualPath) -> Result<()> {
        let p = rel(path)?;
        if path.is_root() {
            return Err(StorageError::PermissionDenied);
        }
        self.run(move |dir| dir.remove_dir(&p)).await
    }

    async fn remove_file_at(&self, path: &VirtualPath) -> Result<()> {
        let p = rel(path)?;
        if path.is_root() {
            return Err(StorageError::IsADirectory);
        }
        self.run(move |dir| {
            // Not followed: deleting a link removes the link, not its target.
            if dir.symlink_metadata(&p)?.is_dir() {
                return Err(ErrorKind::IsADirectory.into());
            }
            dir.remove_file(&p)
        })
        .await
    }

    async fn rename_at(
        &self,
        from: &VirtualPath,
        to: &VirtualPath,
        mode: RenameMode,
    ) -> Result<()> {
        let (f, t) = (rel(from)?, rel(to)?);
        if from.is_root() || to.is_root() {
            return Err(StorageError::PermissionDenied);
        }
        self.run(move |dir| rename::rename(dir, &f, &t, mode)).await
    }

    async fn set_modified_at(&self, path: &VirtualPath, time: std::time::SystemTime) -> Result<()> {
        let p = rel(path)?;
        self.run(move |dir| open_to_change(dir, &p)?.set_modified(time))
            .await
    }

    async fn set_mode_at(&self, path: &VirtualPath, mode: u32) -> Result<()> {
        let p = rel(path)?;
        if path.is_root() {
            // A user could lock themselves (and the server) out of it.
            return Err(StorageError::PermissionDenied);
        }
        self.run(move |dir| {
            let f = open_to_change(dir, &p)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(mode & 0o777))
            }
            #[cfg(not(unix))]
            {
                let _ = (f, mode);
                Err(ErrorKind::Unsupported.into())
            }
        })
        .await
    }
}

#[async_trait]
impl Storage for LocalStorage {
    async fn metadata(&self, path: &VirtualPath) -> Result<Metadata> {
        self.beneath(path, true, |p| async move { self.metadata_at(&p).await })
            .await
    }

    async fn entry(&self, path: &VirtualPath) -> Result<DirEntry> {
        self.beneath(path, false, |p| async move { self.entry_at(&p).await })
            .await
    }

    async fn list(&self, path: &VirtualPath) -> Result<BoxStream<'static, Result<DirEntry>>> {
        self.beneath(path, true, |p| async move { self.list_at(&p, false).await })
            .await
    }

    async fn list_names(&self, path: &VirtualPath) -> Result<BoxStream<'static, Result<DirEntry>>> {
        self.beneath(path, true, |p| async move { self.list_at(&p, true).await })
            .await
    }

    async fn open_read(&self, path: &VirtualPath, offset: u64) -> Result<ReadStream> {
        self.beneath(path, true, |p| async move {
            self.open_read_at(&p, offset).await
        })
        .await
    }

    async fn open_write(&self, path: &VirtualPath, mode: WriteMode) -> Result<Box<dyn Upload>> {
        self.beneath(path, false, |p| async move {
            self.open_write_at(&p, mode).await
        })
        .await
    }

    async fn mkdir(&self, path: &VirtualPath) -> Result<()> {
        self.beneath(path, false, |p| async move { self.mkdir_at(&p).await })
            .await
    }

    async fn rmdir(&self, path: &VirtualPath) -> Result<()> {
        self.beneath(path, false, |p| async move { self.rmdir_at(&p).await })
            .await
    }

    async fn remove_file(&self, path: &VirtualPath) -> Result<()> {
        self.beneath(
            path,
            false,
            |p| async move { self.remove_file_at(&p).await },
        )
        .await
    }

    async fn rename(&self, from: &VirtualPath, to: &VirtualPath, mode: RenameMode) -> Result<()> {
        match self.rename_at(from, to, mode).await {
            Err(StorageError::OutsideRoot) => {
                let f = abslink::resolve(&self.root, &self.host, from, false)?;
                let t = abslink::resolve(&self.root, &self.host, to, false)?;
                if f.is_none() && t.is_none() {
                    return Err(StorageError::OutsideRoot);
                }
                let (f, t) = (
                    f.unwrap_or_else(|| from.clone()),
                    t.unwrap_or_else(|| to.clone()),
                );
                self.rename_at(&f, &t, mode).await
            }
            r => r,
        }
    }

    async fn keep_digest(&self, path: &VirtualPath, digest: &super::KeptDigest) -> Result<bool> {
        let value = digest::encode(digest);
        self.beneath(path, true, |p| {
            let value = value.clone();
            async move {
                let p = rel(&p)?;
                self.run(move |dir| digest::set(&open_to_change(dir, &p)?, &value))
                    .await
                    .map(|()| true)
            }
        })
        .await
    }

    async fn kept_digest(&self, path: &VirtualPath) -> Option<super::KeptDigest> {
        let value = self
            .beneath(path, true, |p| async move {
                let p = rel(&p)?;
                self.run(move |dir| digest::get(&open_to_change(dir, &p)?))
                    .await
            })
            .await
            .ok()??;
        digest::decode(&value)
    }

    async fn set_modified(&self, path: &VirtualPath, time: std::time::SystemTime) -> Result<()> {
        self.beneath(path, true, |p| async move {
            self.set_modified_at(&p, time).await
        })
        .await
    }

    async fn set_mode(&self, path: &VirtualPath, mode: u32) -> Result<()> {
        self.beneath(
            path,
            true,
            |p| async move { self.set_mode_at(&p, mode).await },
        )
        .await
    }
}

impl LocalStorage {
    /// `op` on `path`; when cap-std refused it as leading outside the
    /// root, once more on the path with absolute links beneath the root
    /// rewritten (`follow_last`: the last component too), if there are.
    async fn beneath<T, F, Fut>(&self, path: &VirtualPath, follow_last: bool, op: F) -> Result<T>
    where
        F: Fn(VirtualPath) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        match op(path.clone()).await {
            Err(StorageError::OutsideRoot) => {
                match abslink::resolve(&self.root, &self.host, path, follow_last)? {
                    Some(p) => op(p).await,
                    None => Err(StorageError::OutsideRoot),
                }
            }
            r => r,
        }
    }
}

/// A file or directory opened to change its metadata (MFMT, SITE CHMOD):
/// followed beneath the root, opened without blocking (a FIFO) and for
/// reading only, as futimens and fchmod need ownership, not write access.
fn open_to_change(dir: &Dir, p: &Path) -> std::io::Result<std::fs::File> {
    let mut o = file_options();
    o.read(true);
    let f = dir.open_with(p, &o)?.into_std();
    let m = f.metadata()?;
    if !(m.is_file() || m.is_dir()) {
        return Err(ErrorKind::PermissionDenied.into());
    }
    Ok(f)
}

mod abslink;
mod digest;
mod list;
mod rename;
mod upload;
mod writer;

use list::{link_target, list_readers, read_batches, Listed};
use upload::{fsync_is_noop, open_upload, LocalUpload};

#[cfg(test)]
mod tests;
