//! Dropping root: bind the privileged ports as root, then become the
//! configured unprivileged user and group before any session runs (and
//! before the runtime starts its threads, since on Linux the system calls
//! change only the calling thread).
//!
//! The alternative, documented in the README, is to start unprivileged with
//! `CAP_NET_BIND_SERVICE` (e.g. systemd's `AmbientCapabilities=`).

use std::path::Path;

/// Who to become (`server.user`, `server.group`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
}

/// Resolve a user (name or number) and an optional group (name or number;
/// default: the user's primary group) from /etc/passwd and /etc/group.
pub fn resolve(user: &str, group: Option<&str>) -> Result<Identity, String> {
    resolve_in(
        Path::new("/etc/passwd"),
        Path::new("/etc/group"),
        user,
        group,
    )
}

fn resolve_in(
    passwd: &Path,
    groups: &Path,
    user: &str,
    group: Option<&str>,
) -> Result<Identity, String> {
    let passwd = std::fs::read_to_string(passwd).unwrap_or_default();
    // name:x:uid:gid:...
    let entry = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 4 && (f[0] == user || f[2] == user)).then(|| {
            (
                f[0].to_owned(),
                f[2].parse::<u32>().ok(),
                f[3].parse::<u32>().ok(),
            )
        })
    });
    let (name, uid, primary) = match entry {
        Some((name, Some(uid), Some(gid))) => (name, uid, Some(gid)),
        Some(_) => {
            return Err(format!(
                "server.user: {user:?} has a malformed passwd entry"
            ))
        }
        None => match user.parse::<u32>() {
            Ok(uid) => (user.to_owned(), uid, None),
            Err(_) => return Err(format!("server.user: no user {user:?} in /etc/passwd")),
        },
    };
    let gid = match group {
        None => primary
            .ok_or_else(|| format!("server.group: needed, as user {user:?} has no passwd entry"))?,
        Some(g) => {
            let groups = std::fs::read_to_string(groups).unwrap_or_default();
            let found = groups.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() >= 3 && (f[0] == g || f[2] == g)).then(|| f[2].parse::<u32>().ok())
            });
            match found {
                Some(Some(gid)) => gid,
                Some(None) => {
                    return Err(format!("server.group: {g:?} has a malformed group entry"))
                }
                None => g
                    .parse::<u32>()
                    .map_err(|_| format!("server.group: no group {g:?} in /etc/group"))?,
            }
        }
    };
    if uid == 0 {
        return Err(format!(
            "server.user: {user:?} is root; name an unprivileged user"
        ));
    }
    Ok(Identity {
        user: name,
        uid,
        gid,
    })
}

/// The name of user `uid` in /etc/passwd, for messages.
pub fn user_name(uid: u32) -> Option<String> {
    name_in(Path::new("/etc/passwd"), uid)
}

/// The name of group `gid` in /etc/group, for messages.
pub fn group_name(gid: u32) -> Option<String> {
    name_in(Path::new("/etc/group"), gid)
}

/// The first field of the line whose third field (the id) is `id`.
fn name_in(file: &Path, id: u32) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() >= 3 && f[2].parse() == Ok(id)).then(|| f[0].to_owned())
    })
}

/// Is this process running as root?
pub fn is_root() -> bool {
    #[cfg(target_os = "linux")]
    {
        rustix::process::geteuid().is_root()
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// Become `id` for good (real, effective and saved IDs; supplementary
/// groups reduced to `id.gid`). Must run while the process has one thread.
#[cfg(target_os = "linux")]
pub fn drop_to(id: &Identity) -> Result<(), String> {
    use rustix::process::{Gid, Uid};
    use rustix::thread::{set_thread_groups, set_thread_res_gid, set_thread_res_uid};
    let threads = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:").map(|n| n.trim().to_owned()))
        });
    if threads.as_deref() != Some("1") {
        return Err("cannot drop privileges: other threads are already running".into());
    }
    let gid = Gid::from_raw(id.gid);
    let uid = Uid::from_raw(id.uid);
    let fail = |what: &str, e: rustix::io::Errno| format!("cannot drop privileges ({what}): {e}");
    set_thread_groups(&[gid]).map_err(|e| fail("setgroups", e))?;
    set_thread_res_gid(gid, gid, gid).map_err(|e| fail("setresgid", e))?;
    set_thread_res_uid(uid, uid, uid).map_err(|e| fail("setresuid", e))?;
    // Root must be gone for good.
    if set_thread_res_uid(Uid::ROOT, Uid::ROOT, Uid::ROOT).is_ok() {
        return Err("privileges were not dropped: could become root again".into());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
pub fn drop_to(_id: &Identity) -> Result<(), String> {
    Err("server.user is only supported on Linux".into())
}

/// Run `f` on a thread of its own that has become `id` (as [`drop_to`]
/// would make the whole process), while the rest of the process stays
/// root: `check-config` asks what the server's user will be allowed to do.
/// Linux's credential calls change only the calling thread, and this
/// thread ends with `f`.
#[cfg(target_os = "linux")]
pub fn on_thread_as<T: Send>(id: &Identity, f: impl FnOnce() -> T + Send) -> Result<T, String> {
    use rustix::process::{Gid, Uid};
    use rustix::thread::{set_thread_groups, set_thread_res_gid, set_thread_res_uid};
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let (gid, uid) = (Gid::from_raw(id.gid), Uid::from_raw(id.uid));
                let fail = |what: &str, e: rustix::io::Errno| {
                    format!("cannot become user {} ({what}): {e}", id.user)
                };
                set_thread_groups(&[gid]).map_err(|e| fail("setgroups", e))?;
                set_thread_res_gid(gid, gid, gid).map_err(|e| fail("setresgid", e))?;
                set_thread_res_uid(uid, uid, uid).map_err(|e| fail("setresuid", e))?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|_| Err("the check panicked".into()))
    })
}

#[cfg(not(target_os = "linux"))]
pub fn on_thread_as<T: Send>(_id: &Identity, _f: impl FnOnce() -> T + Send) -> Result<T, String> {
    Err("server.user is only supported on Linux".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_names_and_numbers() {
        let d = tempfile::tempdir().unwrap();
        let (p, g) = (d.path().join("passwd"), d.path().join("group"));
        std::fs::write(
            &p,
            "root:x:0:0:root:/root:/bin/sh\nftp:x:107:65534::/srv/ftp:/usr/sbin/nologin\n",
        )
        .unwrap();
        std::fs::write(&g, "root:x:0:\nftpusers:x:1001:\n").unwrap();
        let id = resolve_in(&p, &g, "ftp", None).unwrap();
        assert_eq!((id.uid, id.gid, id.user.as_str()), (107, 65534, "ftp"));
        assert_eq!(
            resolve_in(&p, &g, "107", Some("ftpusers")).unwrap().gid,
            1001
        );
        assert_eq!(resolve_in(&p, &g, "5000", Some("5000")).unwrap().uid, 5000);
        assert!(resolve_in(&p, &g, "5000", None).is_err());
        assert!(resolve_in(&p, &g, "nosuch", None).is_err());
        assert!(resolve_in(&p, &g, "ftp", Some("nogroup")).is_err());
        assert!(resolve_in(&p, &g, "root", None)
            .unwrap_err()
            .contains("is root"));
        assert_eq!(name_in(&p, 107).as_deref(), Some("ftp"));
        assert_eq!(name_in(&g, 1001).as_deref(), Some("ftpusers"));
        assert_eq!(name_in(&g, 5), None);
    }
}
