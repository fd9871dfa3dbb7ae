//! `[events] spool_dir`: each event a hook accepted is journalled, one
//! file per event in the hook's own directory (`SPOOL/HOOK/ID.json`, the
//! JSON document itself), written and synced before the session goes on
//! (so before the reply that reports what happened), removed once the
//! event is delivered or dropped. At start, what is still there is queued
//! again: delivery is at least once across a crash or `kill -9`, and a
//! receiver deduplicates by `id`.
//!
//! An upload's event is journalled in two steps, so that a crash between
//! the storage's commit and the journal cannot lose it: its intent
//! (`ID.intent`, [`super::payload::intent`]) before the commit, then,
//! once the transfer's outcome is known, the event itself (`ID.json`, the
//! same `id`) written and the intent removed; a failed upload only
//! removes its intent. At start an intent whose `ID.json` is there is
//! removed; one alone becomes `ID.json` and is delivered as it is, with
//! `"recovered": true`: the server cannot tell at start whether the
//! commit happened (the account's root is known only after a login), the
//! receiver can look at the path.

use std::io::Write;
use std::path::PathBuf;

use super::payload::{self, Payload};

/// Before the privilege drop: make `dir` (mode 0700) and give it to the
/// user the server becomes, who writes the events into it.
///
/// Run as root, so it must not be a way to give away another directory:
/// the spool is opened without following a symbolic link, must be a
/// directory owned by root or by that user already, and is changed
/// through that open handle (`fchown`, `fchmod`), never by its name again.
pub fn prepare_spool(dir: &std::path::Path, uid: u32, gid: u32) -> Result<(), String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
    let fail = |e: std::io::Error| format!("events.spool_dir: {}: {e}", dir.display());
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(fail)?;
    let handle = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_DIRECTORY)
        .open(dir)
        .map_err(|e| match e.raw_os_error() {
            Some(nix::libc::ELOOP) | Some(nix::libc::ENOTDIR) => format!(
                "events.spool_dir: {}: not a directory (a symbolic link is not followed): name the directory itself",
                dir.display()
            ),
            _ => fail(e),
        })?;
    let owner = handle.metadata().map_err(fail)?.uid();
    if owner != 0 && owner != uid {
        return Err(format!(
            "events.spool_dir: {}: owned by uid {owner}, neither root nor the server's user; use a directory of root's (such as /var/lib/portcullis/spool) or of the server's user",
            dir.display()
        ));
    }
    std::os::unix::fs::fchown(&handle, Some(uid), Some(gid)).map_err(fail)?;
    handle
        .set_permissions(std::fs::Permissions::from_mode(0o700))
        .map_err(fail)
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

    /// The hook's directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Whether each event is synced.
    pub fn syncs(&self) -> bool {
        self.sync
    }

    fn file(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    fn intent_file(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.intent"))
    }

    /// Journal `p`: written to a temporary name, synced (with
    /// `server.fsync_uploads`), renamed into place, so that a crash leaves
    /// the whole event or none of it.
    pub fn write(&self, p: &Payload) -> std::io::Result<()> {
        self.put(p, &self.file(&p.id))
    }

    /// Journal an upload's intent, as [`Spool::write`] does an event.
    pub fn write_intent(&self, p: &Payload) -> std::io::Result<()> {
        self.put(p, &self.intent_file(&p.id))
    }

    fn put(&self, p: &Payload, to: &std::path::Path) -> std::io::Result<()> {
        let tmp = self.dir.join(format!(".{}.tmp", p.id));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&p.body)?;
        if self.sync {
            f.sync_data()?;
        }
        std::fs::rename(&tmp, to)
    }

    /// The upload's outcome is journalled (or it failed): its intent goes.
    pub fn remove_intent(&self, id: &str) {
        if let Err(e) = std::fs::remove_file(self.intent_file(id)) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.dir.display(), id, error = %e, "cannot remove an upload's intent from the spool");
            }
        }
    }

    /// At start: each intent a crash left becomes an event to deliver
    /// (`"recovered": true`), unless its event is journalled already.
    fn resolve_intents(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in entries.flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "intent") {
                continue;
            }
            let Some(id) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let event = self.file(id);
            let recovered = !event.exists();
            let done = match recovered {
                false => std::fs::remove_file(&path),
                true => std::fs::rename(&path, &event),
            };
            match done {
                Ok(()) if !recovered => {}
                Ok(()) => {
                    tracing::info!(file = %path.display(), "an upload's intent left by a crash (its commit may or may not have happened): delivered as recovered")
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "cannot resolve an upload's intent; left in the spool")
                }
            }
        }
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
        self.resolve_intents();
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

#[cfg(test)]
mod prepare_tests {
    use super::prepare_spool;

    #[test]
    fn a_symbolic_link_or_a_strangers_directory_is_not_given_away() {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let d = tempfile::tempdir().unwrap();
        let me = d.path().metadata().unwrap();
        let (uid, gid) = (me.uid(), me.gid());
        // A link to another directory: refused, the target untouched.
        let victim = d.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o755)).unwrap();
        let link = d.path().join("spool-link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = prepare_spool(&link, uid, gid).unwrap_err();
        assert!(e.contains("symbolic link"), "{e}");
        assert_eq!(victim.metadata().unwrap().mode() & 0o777, 0o755);
        // A directory of its own: made, 0700, its owner's.
        let spool = d.path().join("a/spool");
        prepare_spool(&spool, uid, gid).unwrap();
        assert_eq!(spool.metadata().unwrap().mode() & 0o777, 0o700);
        // One owned by someone else (only root can make it so).
        if uid == 0 {
            let other = d.path().join("other");
            std::fs::create_dir(&other).unwrap();
            std::os::unix::fs::chown(&other, Some(4242), Some(4242)).unwrap();
            let e = prepare_spool(&other, 65534, 65534).unwrap_err();
            assert!(e.contains("owned by uid 4242"), "{e}");
        }
    }
}
