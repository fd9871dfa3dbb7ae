//! Directory listings of a local root: two threads share the directory
//! stream and stat its entries in batches; symbolic links are classified
//! by where they lead (see [`link_target`]).

use super::*;

/// Threads that read one directory listing (see `list`): two, or one on a
/// single-core machine.
pub(super) fn list_readers() -> usize {
    static READERS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *READERS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(2)))
}

/// Where the symbolic link `name` in the directory `dir` leads, as a
/// listing shows it:
/// - a link whose target is found beneath the root: its contents, shown as
///   `name -> contents`; CWD and RETR follow it;
/// - a broken link (missing target, a loop) whose contents stay beneath the
///   root as words: its contents too; following it answers why it fails;
/// - an absolute link whose target lies beneath the root's host path: the
///   virtual path it names (`latest -> /pub/v1.2`), followed as above;
/// - a link that leads out of the root (other absolute contents, or climbing
///   above the root), found so by the resolver or by its words: the error
///   `OutsideRoot`, and the listing leaves the entry out. Following it
///   answers 550 saying so; DELE and RNFR act on the link itself.
///
/// `Ok(None)` when the link cannot be read (removed meanwhile, a name no
/// client can send): listed without a target.
pub(super) fn link_target(
    root: &Dir,
    host: &abslink::HostRoot,
    dir: &VirtualPath,
    name: &str,
) -> Result<Option<String>> {
    let Ok(path) = dir.join_name(name) else {
        return Ok(None);
    };
    let p = rel(&path)?;
    let Ok(contents) = root.read_link_contents(&p) else {
        return Ok(None);
    };
    // An absolute target beneath the root's host path: shown as the
    // virtual path it names (followed by the operations, `abslink`).
    if let Some(v) = host.virtual_of(&contents) {
        return Ok(Some(v.to_string()));
    }
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
pub(super) struct Listed {
    pub(super) root: Arc<Dir>,
    pub(super) host: Arc<abslink::HostRoot>,
    pub(super) dir: VirtualPath,
    /// A names-only listing: the kind from the directory read (`d_type`),
    /// no stat but for links.
    pub(super) names: bool,
}

/// One reader of a listing: takes up to `LIST_BATCH` names from the shared
/// directory stream, stats them and sends the batch, until the stream ends,
/// fails (the error is sent and the stream closed for every reader) or the
/// listing is dropped.
pub(super) fn read_batches(
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
            // Valid UTF-8 (nearly every name) keeps the buffer it came in.
            let name = entry
                .file_name()
                .into_string()
                .unwrap_or_else(|raw| raw.to_string_lossy().into_owned());
            if name.starts_with(TEMP_PREFIX) {
                continue;
            }
            // Not followed: a link is listed as a link, wherever it leads.
            // An entry removed since readdir (or otherwise unreadable) is
            // skipped.
            let meta = if listed.names {
                // The kind alone, as readdir gave it (a stat only where
                // the file system gives none).
                let Ok(ft) = entry.file_type() else { continue };
                Metadata {
                    kind: kind_of(&ft),
                    size: 0,
                    modified: UNIX_EPOCH,
                    mode: 0,
                    nlink: 0,
                }
            } else {
                let Ok(meta) = entry.metadata() else { continue };
                convert(&meta)
            };
            let target = match meta.kind {
                FileKind::Symlink => {
                    match link_target(&listed.root, &listed.host, &listed.dir, &name) {
                        Ok(t) => t,
                        Err(_) => continue,
                    }
                }
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
