//! Local filesystem storage.
//!
//! Every operation goes through a [`cap_std::fs::Dir`] opened on the user's
//! root. cap-std resolves paths beneath that directory (with
//! `openat2(RESOLVE_BENEATH)` on Linux, or a careful component-by-component
//! walk elsewhere), so neither `..` nor a symlink, not even one swapped in
//! between a check and an open, can reach a file outside the root. Blocking
//! calls run on tokio's blocking pool.

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::UNIX_EPOCH;

use async_trait::async_trait;
use cap_std::fs::{Dir, OpenOptions};
use futures_util::stream::{self, BoxStream};
use portcullis_proto::path::VirtualPath;
use tokio::io::{AsyncSeekExt, AsyncWrite, AsyncWriteExt};

use super::{
    DirEntry, FileKind, Metadata, ReadStream, Result, Storage, StorageError, Upload, WriteMode,
};

/// Prefix of the temporary files that uploads write before they are renamed
/// into place; hidden from listings and refused as client names.
const TEMP_PREFIX: &str = ".portcullis-upload.";
/// Directory entries sent per batch from the blocking reader.
const LIST_BATCH: usize = 256;

/// A directory of the local filesystem as a user's root.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: Arc<Dir>,
}

impl LocalStorage {
    /// Open `root` (which must be an existing directory).
    pub fn new(root: impl AsRef<Path>) -> std::io::Result<LocalStorage> {
        let dir = Dir::open_ambient_dir(root.as_ref(), cap_std::ambient_authority())?;
        Ok(LocalStorage {
            root: Arc::new(dir),
        })
    }
}

/// The path under the root for cap-std ("." for the root itself); refuses
/// reserved temporary names.
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

async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> std::io::Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(StorageError::from_io),
        Err(e) => Err(StorageError::Io(std::io::Error::other(e))),
    }
}

/// A unique temporary name next to the target.
fn temp_name(parent: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    parent.join(format!(
        "{TEMP_PREFIX}{:x}.{n:x}.{nanos:x}",
        std::process::id()
    ))
}

#[async_trait]
impl Storage for LocalStorage {
    async fn metadata(&self, path: &VirtualPath) -> Result<Metadata> {
        let p = rel(path)?;
        let dir = self.root.clone();
        blocking(move || dir.metadata(&p).map(|m| convert(&m))).await
    }

    async fn list(&self, path: &VirtualPath) -> Result<BoxStream<'static, Result<DirEntry>>> {
        let p = rel(path)?;
        let dir = self.root.clone();
        let sub = blocking(move || dir.open_dir(&p)).await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Result<DirEntry>>>(4);
        tokio::task::spawn_blocking(move || {
            let entries = match sub.entries() {
                Ok(e) => e,
                Err(e) => {
                    let _ = tx.blocking_send(vec![Err(StorageError::from_io(e))]);
                    return;
                }
            };
            let mut batch = Vec::with_capacity(LIST_BATCH);
            for entry in entries {
                let Ok(entry) = entry else { continue };
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(TEMP_PREFIX) {
                    continue;
                }
                // Symlinks are shown as links; their targets are resolved
                // (beneath the root) only when used.
                let Ok(meta) = entry.metadata() else { continue };
                batch.push(Ok(DirEntry {
                    name,
                    meta: convert(&meta),
                }));
                if batch.len() == LIST_BATCH
                    && tx.blocking_send(std::mem::take(&mut batch)).is_err()
                {
                    return;
                }
            }
            if !batch.is_empty() {
                let _ = tx.blocking_send(batch);
            }
        });
        let s = stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (stream::iter(b), rx))
        });
        Ok(Box::pin(futures_util::StreamExt::flatten(s)))
    }

    async fn open_read(&self, path: &VirtualPath, offset: u64) -> Result<ReadStream> {
        let p = rel(path)?;
        let dir = self.root.clone();
        let file = blocking(move || {
            let f = dir.open(&p)?;
            let m = f.metadata()?;
            if m.is_dir() {
                return Err(std::io::Error::from(std::io::ErrorKind::IsADirectory));
            }
            if !m.is_file() {
                return Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
            }
            Ok(f.into_std())
        })
        .await?;
        let mut file = tokio::fs::File::from_std(file);
        if offset > 0 {
            file.seek(SeekFrom::Start(offset))
                .await
                .map_err(StorageError::from_io)?;
        }
        Ok(ReadStream::File(file))
    }

    async fn open_write(&self, path: &VirtualPath, mode: WriteMode) -> Result<Box<dyn Upload>> {
        let p = rel(path)?;
        if path.is_root() {
            return Err(StorageError::IsADirectory);
        }
        let dir = self.root.clone();
        let (file, temp, remove_on_abort) = blocking(move || -> std::io::Result<_> {
            if let Ok(m) = dir.metadata(&p) {
                if m.is_dir() {
                    return Err(std::io::Error::from(std::io::ErrorKind::IsADirectory));
                }
            }
            let mut o = OpenOptions::new();
            o.write(true);
            Ok(match mode {
                WriteMode::Replace => {
                    let parent = p.parent().map(Path::to_path_buf).unwrap_or_default();
                    let t = temp_name(&parent);
                    o.create_new(true);
                    (dir.open_with(&t, &o)?, Some((t, p)), true)
                }
                WriteMode::CreateNew => {
                    o.create_new(true);
                    (dir.open_with(&p, &o)?, None, true)
                }
                WriteMode::Append => {
                    o.append(true).create(true);
                    (dir.open_with(&p, &o)?, None, false)
                }
                WriteMode::Resume(offset) => {
                    o.create(offset == 0);
                    let f = dir.open_with(&p, &o)?;
                    let len = f.metadata()?.len();
                    if len < offset {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::InvalidInput,
                            format!(
                                "restart offset {offset} is past the end of the file ({len} bytes)"
                            ),
                        ));
                    }
                    f.set_len(offset)?;
                    (f, None, false)
                }
            })
        })
        .await?;
        let mut file = tokio::fs::File::from_std(file.into_std());
        if let WriteMode::Resume(offset) = mode {
            file.seek(SeekFrom::Start(offset))
                .await
                .map_err(StorageError::from_io)?;
        }
        let abort_path = match (&temp, remove_on_abort) {
            (Some((t, _)), _) => Some(t.clone()),
            (None, true) => Some(rel(path)?),
            (None, false) => None,
        };
        Ok(Box::new(LocalUpload {
            file,
            dir: self.root.clone(),
            rename: temp,
            abort_path,
        }))
    }

    async fn mkdir(&self, path: &VirtualPath) -> Result<()> {
        let p = rel(path)?;
        let dir = self.root.clone();
        blocking(move || dir.create_dir(&p)).await
    }

    async fn rmdir(&self, path: &VirtualPath) -> Result<()> {
        let p = rel(path)?;
        let dir = self.root.clone();
        blocking(move || dir.remove_dir(&p)).await
    }

    async fn remove_file(&self, path: &VirtualPath) -> Result<()> {
        let p = rel(path)?;
        let dir = self.root.clone();
        blocking(move || {
            if dir.symlink_metadata(&p)?.is_dir() {
                return Err(std::io::Error::from(std::io::ErrorKind::IsADirectory));
            }
            dir.remove_file(&p)
        })
        .await
    }

    async fn rename(&self, from: &VirtualPath, to: &VirtualPath) -> Result<()> {
        let (f, t) = (rel(from)?, rel(to)?);
        let dir = self.root.clone();
        blocking(move || dir.rename(&f, &dir, &t)).await
    }
}

/// An upload to a local file. Dropped without `commit`, it removes its
/// temporary file (Replace) or the file it created (CreateNew).
struct LocalUpload {
    file: tokio::fs::File,
    dir: Arc<Dir>,
    /// (temporary name, final name) for Replace.
    rename: Option<(PathBuf, PathBuf)>,
    /// What to remove if the upload is abandoned.
    abort_path: Option<PathBuf>,
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
    async fn commit(mut self: Box<Self>) -> Result<()> {
        self.file.flush().await.map_err(StorageError::from_io)?;
        self.file.sync_all().await.map_err(StorageError::from_io)?;
        if let Some((temp, target)) = self.rename.clone() {
            let dir = self.dir.clone();
            blocking(move || dir.rename(&temp, &dir, &target)).await?;
        }
        self.abort_path = None;
        Ok(())
    }
}

impl Drop for LocalUpload {
    fn drop(&mut self) {
        if let Some(p) = self.abort_path.take() {
            // A quick unlink; fine to do inline even on a runtime thread.
            let _ = self.dir.remove_file(&p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use tokio::io::AsyncReadExt;

    fn vp(s: &str) -> VirtualPath {
        VirtualPath::root().resolve(s).unwrap()
    }

    async fn write(st: &LocalStorage, p: &str, mode: WriteMode, data: &[u8], commit: bool) {
        let mut u = st.open_write(&vp(p), mode).await.unwrap();
        u.write_all(data).await.unwrap();
        if commit {
            u.commit().await.unwrap();
        }
    }

    async fn read(st: &LocalStorage, p: &str, off: u64) -> Vec<u8> {
        let mut r = st.open_read(&vp(p), off).await.unwrap();
        let mut v = Vec::new();
        r.read_to_end(&mut v).await.unwrap();
        v
    }

    #[tokio::test]
    async fn write_modes_and_abort() {
        let d = tempfile::tempdir().unwrap();
        let st = LocalStorage::new(d.path()).unwrap();
        write(&st, "a", WriteMode::Replace, b"hello", true).await;
        assert_eq!(read(&st, "a", 1).await, b"ello");
        // An abandoned replace keeps the old content and leaves no temp file.
        write(&st, "a", WriteMode::Replace, b"XXXXXXXX", false).await;
        assert_eq!(read(&st, "a", 0).await, b"hello");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        assert!(matches!(
            st.open_write(&vp("a"), WriteMode::CreateNew).await,
            Err(StorageError::AlreadyExists)
        ));
        write(&st, "a", WriteMode::Append, b" world", true).await;
        assert_eq!(read(&st, "a", 0).await, b"hello world");
        write(&st, "a", WriteMode::Resume(5), b"!", true).await;
        assert_eq!(read(&st, "a", 0).await, b"hello!");
        assert!(st
            .open_write(&vp("a"), WriteMode::Resume(100))
            .await
            .is_err());
        write(&st, "n", WriteMode::CreateNew, b"x", false).await;
        assert!(!d.path().join("n").exists());
    }

    #[tokio::test]
    async fn dirs_rename_remove_and_list() {
        let d = tempfile::tempdir().unwrap();
        let st = LocalStorage::new(d.path()).unwrap();
        st.mkdir(&vp("d")).await.unwrap();
        for i in 0..1000 {
            std::fs::write(d.path().join(format!("d/f{i}")), b"x").unwrap();
        }
        std::fs::write(d.path().join("d/.portcullis-upload.zz"), b"x").unwrap();
        let n = st.list(&vp("d")).await.unwrap().count().await;
        assert_eq!(n, 1000);
        assert!(matches!(
            st.rmdir(&vp("d")).await,
            Err(StorageError::DirectoryNotEmpty)
        ));
        assert!(matches!(
            st.remove_file(&vp("d")).await,
            Err(StorageError::IsADirectory)
        ));
        st.rename(&vp("d/f1"), &vp("g")).await.unwrap();
        st.remove_file(&vp("g")).await.unwrap();
        assert!(matches!(
            st.metadata(&vp("g")).await,
            Err(StorageError::NotFound)
        ));
        assert!(matches!(
            st.metadata(&vp("d/.portcullis-upload.zz")).await,
            Err(StorageError::BadName)
        ));
    }

    #[tokio::test]
    async fn symlinks_cannot_escape() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), b"s").unwrap();
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), d.path().join("out")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), d.path().join("s")).unwrap();
        std::fs::write(d.path().join("in"), b"i").unwrap();
        std::os::unix::fs::symlink("in", d.path().join("ok")).unwrap();
        let st = LocalStorage::new(d.path()).unwrap();
        assert!(st.open_read(&vp("s"), 0).await.is_err());
        assert!(st.open_read(&vp("out/secret"), 0).await.is_err());
        assert!(st.list(&vp("out")).await.is_err());
        assert!(st
            .open_write(&vp("out/new"), WriteMode::Replace)
            .await
            .is_err());
        assert!(!outside.path().join("new").exists());
        // A link that stays inside the root works.
        assert_eq!(read(&st, "ok", 0).await, b"i");
    }
}
