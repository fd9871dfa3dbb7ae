//! `[events] spool_dir`: each event a hook accepted is journalled, one
//! file per event in the hook's own directory (`SPOOL/HOOK/ID.json`, the
//! JSON document itself), written and synced before the session goes on
//! (so before the reply that reports what happened), removed once the
//! event is delivered or dropped. At start, what is still there is queued
//! again: delivery is at least once across a crash or `kill -9`, and a
//! receiver deduplicates by `id`.

use std::io::Write;
use std::path::PathBuf;

use super::payload::{self, Payload};

/// Before the privilege drop: make `dir` (mode 0700) and give it to the
/// user the server becomes, who writes the events into it.
pub fn prepare_spool(dir: &std::path::Path, uid: u32, gid: u32) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    let fail = |e: std::io::Error| format!("events.spool_dir: {}: {e}", dir.display());
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(fail)?;
    std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(fail)
}

/// One hook's directory in the spool.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    /// fsync each event (`server.fsync_uploads`).
    sync: bool,
}

impl Spool {
    /// The directory of hook `name` under `root`, created (mode 0700) if
    /// missing.
    pub fn open(root: &std::path::Path, name: &str, sync: bool) -> std::io::Result<Spool> {
        use std::os::unix::fs::DirBuilderExt;
        let dir = root.join(name);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        Ok(Spool { dir, sync })
    }

    fn file(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Journal `p`: written to a temporary name, synced (with
    /// `server.fsync_uploads`), renamed into place, so that a crash leaves
    /// the whole event or none of it.
    pub fn write(&self, p: &Payload) -> std::io::Result<()> {
        let tmp = self.dir.join(format!(".{}.tmp", p.id));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&p.body)?;
        if self.sync {
            f.sync_data()?;
        }
        std::fs::rename(&tmp, self.file(&p.id))
    }

    /// The event is delivered or dropped.
    pub fn remove(&self, id: &str) {
        if let Err(e) = std::fs::remove_file(self.file(id)) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.dir.display(), id, error = %e, "cannot remove a delivered event from the spool");
            }
        }
    }

    /// What a previous run left undelivered (oldest first); unreadable
    /// files are named in a warning and left alone.
    pub fn load(&self) -> Vec<Payload> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let when = e.metadata().and_then(|m| m.modified()).ok();
            match std::fs::read(&path)
                .ok()
                .and_then(|b| payload::from_body(&b))
            {
                Some(p) => found.push((when, p)),
                None => tracing::warn!(file = %path.display(), "not an event; left in the spool"),
            }
        }
        found.sort_by_key(|(when, _)| *when);
        found.into_iter().map(|(_, p)| p).collect()
    }
}
