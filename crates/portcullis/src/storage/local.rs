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
//! out of the root (see `link_target`).
//!
//! Uploads in `Replace` mode are written to a hidden temporary file next to
//! the target and renamed onto it on commit, so an interrupted STOR never
//! leaves a half-written file under the real name. Blocking calls run on
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
    DirEntry, FileKind, Metadata, ReadStream, Result, Storage, StorageError, Upload, WriteMode,
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

/// Rename `temp` onto `target` (both in the same directory) unless
/// `target` exists: one `renameat2(RENAME_NOREPLACE)` in their directory,
/// opened beneath the root, so no file created since any earlier check is
/// ever replaced. Filesystems without the flag (EINVAL) get a check and a
/// plain rename, which leaves that window open.
fn rename_noreplace(dir: &Dir, temp: &Path, target: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => dir.open_dir(p)?,
            _ => dir.try_clone()?,
        };
        let (Some(from), Some(to)) = (temp.file_name(), target.file_name()) else {
            return Err(ErrorKind::InvalidInput.into());
        };
        match rustix::fs::renameat_with(
            &parent,
            from,
            &parent,
            to,
            rustix::fs::RenameFlags::NOREPLACE,
        ) {
            Err(rustix::io::Errno::INVAL) => {}
            r => return r.map_err(Into::into),
        }
    }
    if dir.symlink_metadata(target).is_ok() {
        return Err(ErrorKind::AlreadyExists.into());
    }
    dir.rename(temp, dir, target)
}

/// Whether `file` lives in memory (tmpfs, ramfs), where fsync, of a file or
/// a directory, returns at once without doing anything: its contents are
/// lost at reboot whatever the server does. Asked per upload, since another
/// file system can be mounted anywhere below a root.
fn fsync_is_noop(file: &std::fs::File) -> bool {
    #[cfg(target_os = "linux")]
    {
        const TMPFS_MAGIC: u32 = 0x0102_1994;
        const RAMFS_MAGIC: u32 = 0x8584_58f6;
        if let Ok(s) = rustix::fs::fstatfs(file) {
            // f_type's width differs between targets; the magics fit in 32 bits.
            return matches!(s.f_type as u32, TMPFS_MAGIC | RAMFS_MAGIC);
        }
    }
    let _ = file;
    false
}

/// Threads that read one directory listing (see `list`): two, or one on a
/// single-core machine.
fn list_readers() -> usize {
    static READERS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *READERS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(2)))
}

/// Where the symbolic link `name` in the directory `dir` leads, as a
/// listing shows it:
/// - a link whose target is found beneath the root: its contents, shown as
///   `name -> contents`; CWD and RETR follow it;
/// - a broken link (missing target, a loop) whose contents stay beneath the
///   root as words: its contents too; following it answers why it fails;
/// - a link that leads out of the root (absolute contents, or climbing
///   above the root), found so by the resolver or by its words: the error
///   `OutsideRoot`, and the listing leaves the entry out. Following it
///   answers 550 saying so; DELE and RNFR act on the link itself.
///
/// `Ok(None)` when the link cannot be read (removed meanwhile, a name no
/// client can send): listed without a target.
fn link_target(root: &Dir, dir: &VirtualPath, name: &str) -> Result<Option<String>> {
    let Ok(path) = dir.join_name(name) else {
        return Ok(None);
    };
    let p = rel(&path)?;
    let Ok(contents) = root.read_link_contents(&p) else {
        return Ok(None);
    };
    let contents = contents.to_string_lossy().into_owned();
    match root.metadata(&p).map_err(StorageError::from_io) {
        Ok(_) => Ok(Some(contents)),
        Err(StorageError::OutsideRoot) => Err(StorageError::OutsideRoot),
        Err(_) if dir.follow_link(&contents).is_some() => Ok(Some(contents)),
        Err(_) => Err(StorageError::OutsideRoot),
    }
}

/// What the readers of one listing share besides the directory stream:
/// enough to tell where the directory's symbolic links lead.
struct Listed {
    root: Arc<Dir>,
    dir: VirtualPath,
}

/// One reader of a listing: takes up to `LIST_BATCH` names from the shared
/// directory stream, stats them and sends the batch, until the stream ends,
/// fails (the error is sent and the stream closed for every reader) or the
/// listing is dropped.
fn read_batches(
    shared: &std::sync::Mutex<Option<cap_std::fs::ReadDir>>,
    listed: &Listed,
    tx: &tokio::sync::mpsc::Sender<Vec<Result<DirEntry>>>,
) {
    let mut names = Vec::with_capacity(LIST_BATCH);
    loop {
        let mut failed = None;
        {
            let mut guard = shared.lock().unwrap_or_else(|e| e.into_inner());
            let Some(entries) = guard.as_mut() else {
                return;
            };
            while names.len() < LIST_BATCH {
                match entries.next() {
                    Some(Ok(entry)) => names.push(entry),
                    Some(Err(e)) => {
                        // The directory itself failed to read: say so, stop.
                        failed = Some(StorageError::from_io(e));
                        *guard = None;
                        break;
                    }
                    None => {
                        *guard = None;
                        break;
                    }
                }
            }
        }
        let mut batch = Vec::with_capacity(names.len() + 1);
        for entry in names.drain(..) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(TEMP_PREFIX) {
                continue;
            }
            // Not followed: a link is listed as a link, wherever it leads.
            // An entry removed since readdir (or otherwise unreadable) is
            // skipped.
            let Ok(meta) = entry.metadata() else { continue };
            let meta = convert(&meta);
            let target = match meta.kind {
                FileKind::Symlink => match link_target(&listed.root, &listed.dir, &name) {
                    Ok(t) => t,
                    Err(_) => continue,
                },
                _ => None,
            };
            batch.push(Ok(DirEntry { name, meta, target }));
        }
        let last = failed.is_some();
        batch.extend(failed.map(Err));
        // A failed send means the listing was dropped: stop reading.
        if !batch.is_empty() && tx.blocking_send(batch).is_err() {
            *shared.lock().unwrap_or_else(|e| e.into_inner()) = None;
            return;
        }
        if last {
            return;
        }
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

fn convert(m: &cap_std::fs::Metadata) -> Metadata {
    use cap_std::fs::{MetadataExt, PermissionsExt};
    let ft = m.file_type();
    let kind = if ft.is_dir() {
        FileKind::Dir
    } else if ft.is_file() {
        FileKind::File
    } else if ft.is_symlink() {
        FileKind::Symlink
    } else {
        FileKind::Other
    };
    Metadata {
        kind,
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

/// A fresh temporary name in the directory of `target`. Unique within the
/// process by the counter, across processes by the pid; the clock makes names
/// from a restarted process unlikely to meet leftovers.
fn temp_name(target: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    // The process id, asked once (a getpid call per upload otherwise).
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    let pid = *PID.get_or_init(std::process::id);
    let name = format!("{TEMP_PREFIX}{pid:x}.{n:x}.{nanos:x}");
    match target.parent() {
        Some(parent) => parent.join(name),
        None => PathBuf::from(name),
    }
}

/// Open the file an upload writes to (blocking). Returns it with what commit
/// or abort has to do.
fn open_upload(dir: &Dir, p: PathBuf, mode: WriteMode) -> std::io::Result<(std::fs::File, Finish)> {
    // Checked before creating anything; the opens below re-check what they
    // can, and the rename of a Replace fails on a directory anyway.
    match dir.metadata(&p) {
        Ok(m) if m.is_dir() => return Err(ErrorKind::IsADirectory.into()),
        Ok(_) if mode == WriteMode::NoClobber => return Err(ErrorKind::AlreadyExists.into()),
        Ok(m) if mode != WriteMode::Replace => require_regular(&m)?,
        _ => {}
    }
    let mut o = file_options();
    o.write(true);
    match mode {
        WriteMode::Replace | WriteMode::NoClobber => {
            let temp = temp_name(&p);
            o.create_new(true);
            let f = dir.open_with(&temp, &o)?;
            let clobber = mode == WriteMode::Replace;
            Ok((
                f.into_std(),
                Finish::Rename {
                    temp,
                    target: p,
                    clobber,
                },
            ))
        }
        WriteMode::CreateNew => {
            o.create_new(true);
            let f = dir.open_with(&p, &o)?;
            Ok((f.into_std(), Finish::RemoveOnAbort(p)))
        }
        WriteMode::Append => {
            o.append(true).create(true);
            let f = dir.open_with(&p, &o)?;
            require_regular(&f.metadata()?)?;
            Ok((f.into_std(), Finish::InPlace))
        }
        WriteMode::Resume(offset) => {
            o.create(offset == 0);
            let f = dir.open_with(&p, &o)?;
            let m = f.metadata()?;
            require_regular(&m)?;
            if m.len() < offset {
                return Err(std::io::Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "restart offset {offset} is past the end of the file ({} bytes)",
                        m.len()
                    ),
                ));
            }
            // The resumed transfer replaces whatever followed the offset.
            if m.len() > offset {
                f.set_len(offset)?;
            }
            let mut f = f.into_std();
            f.seek(SeekFrom::Start(offset))?;
            Ok((f, Finish::InPlace))
        }
    }
}

#[async_trait]
impl Storage for LocalStorage {
    async fn metadata(&self, path: &VirtualPath) -> Result<Metadata> {
        let p = rel(path)?;
        // Follows symlinks, beneath the root only: the session decides CWD
        // and RETR on what a link leads to, and one leading out is an error.
        self.run(move |dir| dir.metadata(&p).map(|m| convert(&m)))
            .await
    }

    async fn entry(&self, path: &VirtualPath) -> Result<DirEntry> {
        let p = rel(path)?;
        let meta = self
            .run(move |dir| dir.symlink_metadata(&p).map(|m| convert(&m)))
            .await?;
        let name = path.file_name().unwrap_or("/").to_owned();
        let target = match meta.kind {
            FileKind::Symlink => link_target(&self.root, &path.parent(), &name)?,
            _ => None,
        };
        Ok(DirEntry { name, meta, target })
    }

    async fn list(&self, path: &VirtualPath) -> Result<BoxStream<'static, Result<DirEntry>>> {
        let p = rel(path)?;
        let sub = self.run(move |dir| dir.open_dir(&p)).await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Result<DirEntry>>>(LIST_QUEUE);
        match sub.entries() {
            Ok(entries) => {
                // Reading names is cheap next to the stat of each one (a
                // path lookup apiece): several readers share the directory
                // stream, each taking a batch of names under the lock and
                // stating it outside. Listings are unsorted, as with ls -U.
                let shared = Arc::new(std::sync::Mutex::new(Some(entries)));
                let listed = Arc::new(Listed {
                    root: self.root.clone(),
                    dir: path.clone(),
                });
                for _ in 0..list_readers() {
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

    async fn open_read(&self, path: &VirtualPath, offset: u64) -> Result<ReadStream> {
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
        Ok(ReadStream::File {
            file: tokio::fs::File::from_std(file),
            size,
        })
    }

    async fn open_write(&self, path: &VirtualPath, mode: WriteMode) -> Result<Box<dyn Upload>> {
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

    async fn mkdir(&self, path: &VirtualPath) -> Result<()> {
        let p = rel(path)?;
        self.run(move |dir| dir.create_dir(&p)).await
    }

    async fn rmdir(&self, path: &VirtualPath) -> Result<()> {
        let p = rel(path)?;
        if path.is_root() {
            return Err(StorageError::PermissionDenied);
        }
        self.run(move |dir| dir.remove_dir(&p)).await
    }

    async fn remove_file(&self, path: &VirtualPath) -> Result<()> {
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

    async fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> Result<()> {
        let (f, t) = (rel(from)?, rel(to)?);
        if from.is_root() || to.is_root() {
            return Err(StorageError::PermissionDenied);
        }
        self.run(move |dir| dir.rename(&f, dir, &t)).await
    }

    async fn set_modified(&self, path: &VirtualPath, time: std::time::SystemTime) -> Result<()> {
        let p = rel(path)?;
        self.run(move |dir| open_to_change(dir, &p)?.set_modified(time))
            .await
    }

    async fn set_mode(&self, path: &VirtualPath, mode: u32) -> Result<()> {
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

/// What finishing an upload involves besides flushing its file.
#[derive(Debug)]
enum Finish {
    /// Replace: commit renames the temporary file onto the target; an abort
    /// removes it, leaving the target as it was. Without `clobber`
    /// (NoClobber) the rename fails if the target exists.
    Rename {
        temp: PathBuf,
        target: PathBuf,
        clobber: bool,
    },
    /// CreateNew: the file did not exist before, so an abort removes it.
    RemoveOnAbort(PathBuf),
    /// Append, Resume, or an upload already committed: the bytes written stay.
    InPlace,
}

/// An upload to a local file.
struct LocalUpload {
    file: writer::FileWriter,
    dir: Arc<Dir>,
    finish: Finish,
    /// Also fsync the directory after the rename (`server.fsync_uploads`).
    fsync: bool,
}

impl AsyncWrite for LocalUpload {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.file).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.file).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.file).poll_shutdown(cx)
    }
}

#[async_trait]
impl Upload for LocalUpload {
    async fn abort(mut self: Box<Self>) -> Result<()> {
        let abandoned = match std::mem::replace(&mut self.finish, Finish::InPlace) {
            Finish::Rename { temp, .. } => temp,
            Finish::RemoveOnAbort(p) => p,
            Finish::InPlace => return Ok(()),
        };
        self.dir
            .remove_file(&abandoned)
            .map_err(StorageError::from_io)
    }

    async fn write_owned(&mut self, buf: Vec<u8>) -> std::io::Result<Vec<u8>> {
        self.file.write_owned(buf).await
    }

    fn direct_file(&mut self) -> Option<std::fs::File> {
        self.file.direct_file()
    }

    async fn commit(mut self: Box<Self>) -> Result<()> {
        // On any error below `self` is dropped unfinished, which aborts.
        // The rest is written and fsynced before anything is published.
        let publish = match &self.finish {
            Finish::Rename {
                temp,
                target,
                clobber,
            } => Some((temp.clone(), target.clone(), *clobber, self.dir.clone())),
            _ => None,
        };
        let fsync = self.fsync;
        self.file
            .finish(move || {
                let Some((temp, target, clobber, dir)) = publish else {
                    return Ok(());
                };
                if clobber {
                    dir.rename(&temp, &dir, &target)?;
                } else {
                    rename_noreplace(&dir, &temp, &target)?;
                }
                if !fsync {
                    return Ok(());
                }
                // The rename is durable once its directory is: best effort,
                // as some filesystems refuse fsync on a directory.
                let parent = match target.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                if let Ok(d) = dir.open(parent) {
                    let _ = d.sync_all();
                }
                Ok(())
            })
            .await
            .map_err(StorageError::from_io)?;
        self.finish = Finish::InPlace;
        Ok(())
    }
}

impl Drop for LocalUpload {
    fn drop(&mut self) {
        let abandoned = match &self.finish {
            Finish::Rename { temp, .. } => temp,
            Finish::RemoveOnAbort(p) => p,
            Finish::InPlace => return,
        };
        // A single unlink: quick enough to do inline, even on a runtime thread.
        if let Err(e) = self.dir.remove_file(abandoned) {
            tracing::warn!(path = %abandoned.display(), error = %e, "could not remove an abandoned upload");
        }
    }
}

mod writer;

#[cfg(test)]
mod tests;
