//! Start-up check of the root directories: can the user the server runs as
//! (after the privilege drop, or the one that started it) enter and read
//! every root, and write those where an account may upload or create
//! directories? Without the check such a root starts fine and then answers
//! every command with 550.
//!
//! The kernel is asked (`faccessat(2)` with `AT_EACCESS`) through the
//! handles opened before the drop, so the answer covers exactly what the
//! sessions will do (ACLs and read-only mounts included) and the
//! directories' parents need not be reachable. The owner, group and mode
//! bits only shape the message: which access is missing and what to run.

use std::path::{Path, PathBuf};

use crate::options::ServerOptions;

/// Read (list) a directory.
pub const READ: u32 = 0o4;
/// Write (create and remove entries in) a directory.
pub const WRITE: u32 = 0o2;
/// Search (enter, look up names in) a directory.
pub const SEARCH: u32 = 0o1;

/// What one root directory must allow, and for which accounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Need {
    /// `READ | WRITE | SEARCH` bits.
    pub access: u32,
    /// "anonymous", "user alice": who uses this root.
    pub accounts: Vec<String>,
}

/// Every configured root, in the config file's order, with what its
/// accounts need: always search; read for accounts with `read` (anonymous
/// always reads); write for accounts that may upload (`write`, anonymous
/// `upload`) or `mkdir`.
pub fn needs(options: &ServerOptions) -> Vec<(PathBuf, Need)> {
    let mut out: Vec<(PathBuf, Need)> = Vec::new();
    let mut add = |root: &Path, access: u32, account: String| {
        let i = match out.iter().position(|(p, _)| p == root) {
            Some(i) => i,
            None => {
                let n = Need {
                    access: 0,
                    accounts: Vec::new(),
                };
                out.push((root.to_owned(), n));
                out.len() - 1
            }
        };
        out[i].1.access |= access;
        out[i].1.accounts.push(account);
    };
    // Object-store roots have no directory to check here (the server
    // checks their buckets when it starts).
    if let Some((a, root)) = options
        .anonymous
        .as_ref()
        .and_then(|a| Some((a, a.root.local()?)))
    {
        let w = if a.upload { WRITE } else { 0 };
        add(root, READ | SEARCH | w, "anonymous".into());
    }
    for (u, root) in options
        .users
        .iter()
        .filter_map(|u| Some((u, u.root.local()?)))
    {
        let p = u.policy.permissions;
        let r = if p.read { READ } else { 0 };
        let w = if p.write || p.mkdir { WRITE } else { 0 };
        add(root, SEARCH | r | w, format!("user {}", u.name));
    }
    out
}

/// How the server came to run as its user; decides the last piece of advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunAs {
    /// Started as root, switched to `server.user`.
    Configured,
    /// Started as root without a config file, switched to `nobody`.
    Nobody,
    /// Started unprivileged: no switch.
    Unprivileged,
    /// Serving as root (`server.allow_root`).
    Root,
}

/// The user the check runs as.
#[derive(Debug, Clone)]
pub struct Runner {
    pub uid: u32,
    /// Effective group and supplementary groups.
    pub gids: Vec<u32>,
    pub name: String,
    pub how: RunAs,
}

/// A root directory's owner, group and mode, as `fstat` gives them.
#[derive(Debug, Clone, Copy)]
pub struct DirStat {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// The `rwx` bits of `mode` that apply to `runner` (owner, else group,
/// else other, as the kernel picks them; ACLs aside).
fn class_bits(st: &DirStat, runner: &Runner) -> u32 {
    if st.uid == runner.uid {
        (st.mode >> 6) & 7
    } else if runner.gids.contains(&st.gid) {
        (st.mode >> 3) & 7
    } else {
        st.mode & 7
    }
}

/// "rx" for `READ | SEARCH`, as chmod writes it.
fn letters(bits: u32) -> String {
    [(READ, 'r'), (WRITE, 'w'), (SEARCH, 'x')]
        .iter()
        .filter(|(b, _)| bits & b != 0)
        .map(|&(_, c)| c)
        .collect()
}

/// "read (r) or enter (x)".
fn verbs(bits: u32) -> String {
    let v: Vec<&str> = [
        (READ, "list (r)"),
        (WRITE, "write (w)"),
        (SEARCH, "enter (x)"),
    ]
    .iter()
    .filter(|(b, _)| bits & b != 0)
    .map(|&(_, v)| v)
    .collect();
    v.join(" or ")
}

/// `dir` as a shell word: as it is when it is plain, else in single quotes.
fn quoted(dir: &Path) -> String {
    let s = dir.display().to_string();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c);
    if !s.is_empty() && s.chars().all(plain) {
        s
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The message for a root that `runner` cannot use as `need` says, given
/// the kernel's refusal `denied`. `owner` and `group` are the names of the
/// directory's owner and group, where known. Pure, for the tests.
pub fn problem(
    dir: &Path,
    need: &Need,
    st: &DirStat,
    runner: &Runner,
    denied: &std::io::Error,
    owner: Option<&str>,
    group: Option<&str>,
) -> String {
    let d = dir.display();
    let who = &runner.name;
    let owner = owner.map_or(format!("uid {}", st.uid), |o| {
        format!("{o} (uid {})", st.uid)
    });
    let group = group.map_or(format!("gid {}", st.gid), |g| {
        format!("{g} (gid {})", st.gid)
    });
    let head = format!(
        "root directory {d} (of {}) is not usable by the server's user, {who} (uid {}): \
         it is owned by {owner}, group {group}, mode {:04o}",
        need.accounts.join(", "),
        runner.uid,
        st.mode & 0o7777,
    );
    let missing = need.access & !class_bits(st, runner);
    if missing == 0 {
        // The mode bits allow it: a read-only mount, an ACL or an LSM says no.
        return if denied.raw_os_error() == Some(30) {
            format!(
                "{head}, but its file system is mounted read-only. Remount it read-write, \
                 or take the write and mkdir permissions (anonymous: upload) from {}",
                need.accounts.join(", ")
            )
        } else {
            format!(
                "{head}, yet access is denied ({denied}): an ACL or a security module \
                 (SELinux, AppArmor) refuses it. See `getfacl {}` and the audit log",
                quoted(dir)
            )
        };
    }
    // The commands are for copying into a shell.
    let d = quoted(dir);
    let mut fixes = Vec::new();
    if st.uid == runner.uid {
        fixes.push(format!("chmod u+{} {d}", letters(missing)));
    } else {
        let owner_lacks = need.access & !((st.mode >> 6) & 7);
        fixes.push(match owner_lacks {
            0 => format!("chown {who} {d}"),
            b => format!("chown {who} {d} && chmod u+{} {d}", letters(b)),
        });
        if runner.gids.contains(&st.gid) {
            fixes.push(format!("chmod g+{} {d}", letters(missing)));
        } else if need.access & WRITE == 0 {
            // Never advised for writing: that would let every user write.
            fixes.push(format!("chmod o+{} {d}", letters(missing)));
        }
    }
    let fixes = fixes
        .iter()
        .map(|f| format!("`{f}`"))
        .collect::<Vec<_>>()
        .join(" or ");
    let tail = match runner.how {
        RunAs::Configured => ", or set server.user to a user who can",
        RunAs::Nobody => ", or start portcullis as a user who can (root serves as nobody)",
        RunAs::Unprivileged => ", or start the server as a user who can",
        RunAs::Root => "",
    };
    format!(
        "{head}, so user {who} cannot {} it. Run {fixes}{tail}",
        verbs(missing)
    )
}

/// What the check found: roots that cannot be served (the server does not
/// start) and roots that can, with less than their accounts may do.
#[derive(Debug, Default)]
pub struct Report {
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

/// Subdirectories of a root that the running user may write, looked for
/// among at most this many entries.
const SUBDIRS_LOOKED_AT: usize = 4096;

/// Up to three subdirectories of `root` that the calling thread's user can
/// enter and write (as a vsftpd-style layout has: a read-only root with an
/// `incoming/` for uploads).
#[cfg(target_os = "linux")]
fn writable_subdirs(root: &cap_std::fs::Dir) -> Vec<String> {
    use rustix::fs::{Access, AtFlags};
    let Ok(entries) = root.entries() else {
        return Vec::new();
    };
    entries
        .take(SUBDIRS_LOOKED_AT)
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|name| {
            let access = Access::WRITE_OK | Access::EXEC_OK;
            rustix::fs::accessat(root, name.as_str(), access, AtFlags::EACCESS).is_ok()
        })
        .take(3)
        .collect()
}

/// Check every root in `dirs` (opened before the privilege drop; a root
/// missing there is opened now, as the running user, through `open`) as
/// the calling thread's user: one problem per unusable root; a warning
/// for a root its accounts may write to that is read-only to the server's
/// user but has writable subdirectories (uploads into the root itself get
/// 550, those into the subdirectories work).
#[cfg(target_os = "linux")]
pub fn check(
    options: &ServerOptions,
    dirs: &mut std::collections::HashMap<PathBuf, crate::storage::LocalStorage>,
    open: impl Fn(&Path) -> std::io::Result<crate::storage::LocalStorage>,
    how: RunAs,
) -> Report {
    use rustix::fs::{Access, AtFlags};
    let uid = rustix::process::geteuid().as_raw();
    let mut gids = vec![rustix::process::getegid().as_raw()];
    gids.extend(
        rustix::process::getgroups()
            .unwrap_or_default()
            .iter()
            .map(|g| g.as_raw()),
    );
    let runner = Runner {
        uid,
        gids,
        name: crate::privdrop::user_name(uid).unwrap_or_else(|| uid.to_string()),
        how,
    };
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    for (dir, need) in needs(options) {
        if !dirs.contains_key(&dir) {
            match open(&dir) {
                Ok(s) => {
                    dirs.insert(dir.clone(), s);
                }
                Err(e) => {
                    problems.push(format!(
                        "root directory {} (of {}) cannot be opened by the server's user, \
                         {} (uid {uid}): {e}",
                        dir.display(),
                        need.accounts.join(", "),
                        runner.name
                    ));
                    continue;
                }
            }
        }
        let handle = dirs[&dir].dir();
        let mut access = Access::empty();
        for (bit, a) in [
            (READ, Access::READ_OK),
            (WRITE, Access::WRITE_OK),
            (SEARCH, Access::EXEC_OK),
        ] {
            if need.access & bit != 0 {
                access |= a;
            }
        }
        // "." is looked up in the directory, which needs search
        // permission: just what every session does first.
        let Err(denied) = rustix::fs::accessat(handle, ".", access, AtFlags::EACCESS) else {
            continue;
        };
        let without_write = access - Access::WRITE_OK;
        if need.access & WRITE != 0
            && rustix::fs::accessat(handle, ".", without_write, AtFlags::EACCESS).is_ok()
        {
            let subdirs = writable_subdirs(handle);
            if !subdirs.is_empty() {
                warnings.push(format!(
                    "root directory {} (of {}) is read-only to the server's user, {}: \
                     uploads and MKD in it get 550; its subdirectories {} take them",
                    dir.display(),
                    need.accounts.join(", "),
                    runner.name,
                    subdirs.join(", ")
                ));
                continue;
            }
        }
        let st = match rustix::fs::fstat(handle) {
            Ok(s) => DirStat {
                uid: s.st_uid,
                gid: s.st_gid,
                mode: s.st_mode,
            },
            Err(e) => {
                problems.push(format!("root directory {}: {e}", dir.display()));
                continue;
            }
        };
        problems.push(problem(
            &dir,
            &need,
            &st,
            &runner,
            &denied.into(),
            crate::privdrop::user_name(st.uid).as_deref(),
            crate::privdrop::group_name(st.gid).as_deref(),
        ));
    }
    Report { problems, warnings }
}

/// Without Linux's `faccessat2` the roots are not checked.
#[cfg(not(target_os = "linux"))]
pub fn check(
    _options: &ServerOptions,
    _dirs: &mut std::collections::HashMap<PathBuf, crate::storage::LocalStorage>,
    _open: impl Fn(&Path) -> std::io::Result<crate::storage::LocalStorage>,
    _how: RunAs,
) -> Report {
    Report::default()
}

#[cfg(test)]
mod tests;
