//! Uploads to a local root: the file an upload writes (a hidden temporary
//! name for STOR, the file itself for APPE and REST), and what commit and
//! abort do with it (rename into place, with or without replacing; fsync
//! where it means something).

use super::rename::rename_noreplace;
use super::*;

/// Whether `file` lives in memory (tmpfs, ramfs), where fsync, of a file or
/// a directory, returns at once without doing anything: its contents are
/// lost at reboot whatever the server does. Asked per upload, since another
/// file system can be mounted anywhere below a root.
pub(super) fn fsync_is_noop(file: &std::fs::File) -> bool {
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

/// A fresh temporary name in the directory of `target`. Unique within the
/// process by the counter, across processes by the pid; the clock makes names
/// from a restarted process unlikely to meet leftovers.
pub(super) fn temp_name(target: &Path) -> PathBuf {
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
pub(super) fn open_upload(
    dir: &Dir,
    p: PathBuf,
    mode: WriteMode,
) -> std::io::Result<(std::fs::File, Finish)> {
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
            super::digest::remove(&f)?;
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
            super::digest::remove(&f)?;
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

/// What finishing an upload involves besides flushing its file.
#[derive(Debug)]
pub(super) enum Finish {
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
pub(super) struct LocalUpload {
    pub(super) file: writer::FileWriter,
    pub(super) dir: Arc<Dir>,
    pub(super) finish: Finish,
    /// Also fsync the directory after the rename (`server.fsync_uploads`).
    pub(super) fsync: bool,
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

    fn has_direct_file(&self) -> bool {
        self.file.has_direct_file()
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
