//! Dropping root: bind the privileged ports as root, then become the
//! configured unprivileged user and group before any session runs (and
//! before the runtime starts its threads, since on Linux the system calls
//! change only the calling thread).
//!
//! The alternative, documented in the book (Privileges), is to start unprivileged with
//! `CAP_NET_BIND_SERVICE` (e.g. systemd's `AmbientCapabilities=`).

use nix::unistd::{Gid, Group, Uid, User};

/// Who to become (`server.user`, `server.group`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
}

/// Resolve a user (name or number) and an optional group (name or number;
/// default: the user's primary group) through NSS (getpwnam_r, getgrnam_r),
/// so that an account from LDAP or sssd resolves as one in /etc/passwd.
/// A number that names no account is taken as it is; the messages still
/// name the files, where most systems keep such accounts.
pub fn resolve(user: &str, group: Option<&str>) -> Result<Identity, String> {
    let lookup = |e: nix::Error| format!("server.user: cannot look up {user:?}: {e}");
    // A name first, then a number (the order getent follows).
    let entry = match User::from_name(user).map_err(lookup)? {
        Some(u) => Some(u),
        None => match user.parse::<u32>() {
            Ok(uid) => User::from_uid(Uid::from_raw(uid)).map_err(lookup)?,
            Err(_) => None,
        },
    };
    let (name, uid, primary) = match entry {
        Some(u) => (u.name, u.uid.as_raw(), Some(u.gid.as_raw())),
        None => match user.parse::<u32>() {
            Ok(uid) => (user.to_owned(), uid, None),
            Err(_) => return Err(format!("server.user: no user {user:?} in /etc/passwd")),
        },
    };
    let gid = match group {
        None => primary
            .ok_or_else(|| format!("server.group: needed, as user {user:?} has no passwd entry"))?,
        Some(g) => match Group::from_name(g)
            .map_err(|e| format!("server.group: cannot look up {g:?}: {e}"))?
        {
            Some(found) => found.gid.as_raw(),
            None => g
                .parse::<u32>()
                .map_err(|_| format!("server.group: no group {g:?} in /etc/group"))?,
        },
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

/// The name of user `uid` (through NSS), for messages.
pub fn user_name(uid: u32) -> Option<String> {
    User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// The name of group `gid` (through NSS), for messages.
pub fn group_name(gid: u32) -> Option<String> {
    Group::from_gid(Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name)
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

    /// Names and numbers, against the accounts every Debian system has
    /// (root, and nobody/nogroup as 65534).
    #[test]
    fn resolves_names_and_numbers() {
        let id = resolve("nobody", None).unwrap();
        assert_eq!((id.uid, id.gid, id.user.as_str()), (65534, 65534, "nobody"));
        // A number that is an account is that account, with its name.
        assert_eq!(resolve("65534", None).unwrap(), id);
        assert_eq!(resolve("nobody", Some("0")).unwrap().gid, 0);
        let unknown = resolve("4000000000", Some("4000000001")).unwrap();
        assert_eq!((unknown.uid, unknown.gid), (4_000_000_000, 4_000_000_001));
        assert_eq!(unknown.user, "4000000000");
        assert_eq!(
            resolve("4000000000", None).unwrap_err(),
            "server.group: needed, as user \"4000000000\" has no passwd entry"
        );
        assert_eq!(
            resolve("no-such-user-here", None).unwrap_err(),
            "server.user: no user \"no-such-user-here\" in /etc/passwd"
        );
        assert_eq!(
            resolve("nobody", Some("no-such-group-here")).unwrap_err(),
            "server.group: no group \"no-such-group-here\" in /etc/group"
        );
        assert!(resolve("root", None).unwrap_err().contains("is root"));
        assert!(resolve("0", Some("0")).unwrap_err().contains("is root"));
        assert_eq!(user_name(65534).as_deref(), Some("nobody"));
        assert_eq!(group_name(0).as_deref(), Some("root"));
        assert_eq!(user_name(4_000_000_000), None);
    }
}
