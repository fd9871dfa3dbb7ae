//! The control socket, made at start before the privilege drop: a stale
//! socket file left by a server that is gone is replaced, a live one is
//! not; the socket gets mode 0660 and `[control] group`, and the mode is
//! read back (a file system that ignores it must not leave the API open
//! to every local user). The default path (`/run/portcullis`, which the
//! package's unit makes) that cannot be made, as for a quick start by an
//! ordinary user, means no socket, said in the log; a path asked for in
//! the config that cannot be made stops the start.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::options::ControlOptions;

/// The socket's mode: owner and group read and write.
pub const MODE: u32 = 0o660;

/// A bound control socket, and the path to remove at exit.
#[derive(Debug)]
pub struct Bound {
    pub listener: std::os::unix::net::UnixListener,
    pub path: PathBuf,
}

/// Bind the socket `o` asks for. `Ok(None)`: none configured, or the
/// default path cannot be used (the reason is in the second value, to
/// be logged).
pub fn bind(o: &ControlOptions) -> Result<(Option<Bound>, Option<String>), String> {
    let Some(path) = &o.socket else {
        return Ok((None, None));
    };
    match bind_at(path, o.group.as_ref().map(|g| g.1)) {
        Ok(b) => Ok((Some(b), None)),
        Err(e) if o.default_path => Ok((
            None,
            Some(format!(
                "control socket not started: {e} (set [control] socket to a path this user may create, or to an empty string for none)"
            )),
        )),
        Err(e) => Err(format!("control.socket: {e}")),
    }
}

fn bind_at(path: &Path, gid: Option<u32>) -> Result<Bound, String> {
    let shown = path.display();
    if std::fs::symlink_metadata(path).is_ok() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(format!(
                "{shown} is in use by a running server (another instance?)"
            ));
        }
        use std::os::unix::fs::FileTypeExt;
        let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{shown}: {e}"))?;
        if !meta.file_type().is_socket() {
            return Err(format!("{shown} exists and is not a socket"));
        }
        std::fs::remove_file(path).map_err(|e| format!("{shown}: stale socket: {e}"))?;
    }
    let listener = make(path, gid).map_err(|e| format!("cannot make {shown}: {e}"))?;
    let bound = Bound {
        listener,
        path: path.to_owned(),
    };
    let fail = |e: String| {
        let _ = std::fs::remove_file(path);
        e
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(MODE))
        .map_err(|e| fail(format!("{shown}: chmod: {e}")))?;
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("{shown}: {e}")))?;
    if let Some(gid) = gid.filter(|g| *g != meta.gid()) {
        // Not root: a group the user is a member of.
        std::os::unix::fs::chown(path, None, Some(gid))
            .map_err(|e| fail(format!("{shown}: cannot give it group {gid}: {e}")))?;
    }
    let meta = std::fs::metadata(path).map_err(|e| fail(format!("{shown}: {e}")))?;
    if meta.mode() & 0o777 != MODE {
        return Err(fail(format!(
            "{shown}: mode is {:o}, not {MODE:o}: the file system does not keep it",
            meta.mode() & 0o777
        )));
    }
    bound
        .listener
        .set_nonblocking(true)
        .map_err(|e| fail(format!("{shown}: {e}")))?;
    Ok(bound)
}

/// Bind the socket. As root with a group on Linux, on a thread whose
/// group is that group, so that the file is made with it: the package's
/// unit keeps CAP_SETGID (for the privilege drop) but not CAP_CHOWN.
fn make(path: &Path, gid: Option<u32>) -> std::io::Result<std::os::unix::net::UnixListener> {
    #[cfg(target_os = "linux")]
    if let Some(gid) = gid.filter(|_| rustix::process::geteuid().is_root()) {
        return std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let g = rustix::process::Gid::from_raw(gid);
                    rustix::thread::set_thread_res_gid(g, g, g)?;
                    std::os::unix::net::UnixListener::bind(path)
                })
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the bind panicked")))
        });
    }
    let _ = gid;
    std::os::unix::net::UnixListener::bind(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binds_replaces_stale_refuses_live() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let o = ControlOptions {
            socket: Some(path.clone()),
            default_path: false,
            group: None,
            tcp: None,
        };
        let (b, _) = bind(&o).unwrap();
        let b = b.unwrap();
        let mode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!(mode, MODE);
        // Live: refused.
        assert!(
            bind(&o).unwrap_err().contains("in use"),
            "live socket taken"
        );
        drop(b);
        // Stale (the listener gone, the file left): replaced.
        assert!(bind(&o).unwrap().0.is_some());
        // The default path in a missing directory: no socket, a reason.
        let d = ControlOptions {
            socket: Some(dir.path().join("missing/c.sock")),
            default_path: true,
            group: None,
            tcp: None,
        };
        let (none, why) = bind(&d).unwrap();
        assert!(none.is_none() && why.unwrap().contains("not started"));
        let asked = ControlOptions {
            default_path: false,
            ..d
        };
        assert!(bind(&asked).is_err());
    }

    /// As root (the tests run as root in CI), the socket is made with
    /// the group; as anyone else, a group of theirs is given by chown.
    #[test]
    fn the_socket_gets_its_group() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g.sock");
        let gid = if rustix::process::geteuid().is_root() {
            65534
        } else {
            rustix::process::getegid().as_raw()
        };
        let o = ControlOptions {
            socket: Some(path.clone()),
            default_path: false,
            group: Some(("g".into(), gid)),
            tcp: None,
        };
        let _b = bind(&o).unwrap().0.unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!((meta.gid(), meta.mode() & 0o777), (gid, MODE));
        assert_eq!(meta.uid(), rustix::process::geteuid().as_raw());
    }
}
