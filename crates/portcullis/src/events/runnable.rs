//! Can the server's user run each command hook's program? The config's
//! own validation only sees that the file exists and has an execute bit
//! for someone; the hooks run as the server's user (`server.user`, with
//! `server.group` as its only group after the drop, [`crate::privdrop`]),
//! so the kernel is asked as that user: `access(2)` with `X_OK` on a
//! thread that has become it (`check-config` as root), or in the server
//! itself after the drop (`serve`, a reload, which refuses a config whose
//! program that user cannot run). The answer covers every
//! directory above the program, ACLs and `noexec` mounts; the owner,
//! group and mode only shape the advice.

use std::path::Path;

use crate::options::{EventsOptions, HookAction};

/// Who runs the hooks, for the message.
#[derive(Debug, Clone)]
pub struct Who {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

impl Who {
    /// The calling thread's user (the server's user after the drop).
    pub fn current() -> Who {
        #[cfg(target_os = "linux")]
        let (uid, gid) = (
            rustix::process::geteuid().as_raw(),
            rustix::process::getegid().as_raw(),
        );
        #[cfg(not(target_os = "linux"))]
        let (uid, gid) = (0, 0);
        Who {
            name: crate::privdrop::user_name(uid).unwrap_or_else(|| uid.to_string()),
            uid,
            gid,
        }
    }
}

/// Every command hook whose program the calling thread cannot execute,
/// each as a message naming its key. Run as the server's user.
pub fn unrunnable(options: &EventsOptions, who: &Who) -> Vec<String> {
    options
        .hooks
        .iter()
        .enumerate()
        .filter_map(|(i, h)| match &h.action {
            HookAction::Command(c) => Some((i, c.argv.first()?)),
            HookAction::Http(_) => None,
        })
        .filter_map(|(i, program)| {
            let path = Path::new(program);
            let denied = may_execute(path).err()?;
            let st = stat(path);
            Some(problem(
                &format!("events.hooks[{i}].command"),
                path,
                who,
                st.as_ref(),
                &denied,
            ))
        })
        .collect()
}

/// `access(path, X_OK)` as the calling thread (real IDs, which the
/// server's user has as its effective ones).
fn may_execute(path: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        rustix::fs::access(path, rustix::fs::Access::EXEC_OK).map_err(std::io::Error::from)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        Ok(())
    }
}

/// A file's owner, group and mode.
#[derive(Debug, Clone, Copy)]
pub struct FileStat {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

fn stat(path: &Path) -> Option<FileStat> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(FileStat {
        uid: m.uid(),
        gid: m.gid(),
        mode: m.mode(),
    })
}

/// The message for `program`, which `who` may not execute (`denied`, the
/// kernel's answer); `st` is the file's, when it could be read. Pure, for
/// the tests.
pub fn problem(
    key: &str,
    program: &Path,
    who: &Who,
    st: Option<&FileStat>,
    denied: &std::io::Error,
) -> String {
    let p = program.display();
    let head = format!(
        "{key}: {p}: cannot be run by the server's user, {} (uid {}, gid {}): {denied}. \
         Command hooks run as that user, with server.group as its only group",
        who.name, who.uid, who.gid
    );
    let Some(st) = st else {
        // Not even its metadata: a directory above it cannot be entered.
        return format!(
            "{head}; a directory above the program cannot be entered by that user \
             (each needs x for it)"
        );
    };
    let bits = if st.uid == who.uid {
        (st.mode >> 6) & 7
    } else if st.gid == who.gid {
        (st.mode >> 3) & 7
    } else {
        st.mode & 7
    };
    let file = format!(
        "it is owned by uid {}, group gid {}, mode {:04o}",
        st.uid,
        st.gid,
        st.mode & 0o7777
    );
    if bits & 1 != 0 {
        // The bits that apply allow it: the refusal is elsewhere.
        return format!(
            "{head}; {file}, which lets that user run it, so a directory above it \
             cannot be entered (each needs x for the user), the file system is \
             mounted noexec, or an ACL or a security module refuses it"
        );
    }
    let fix = if st.uid == who.uid {
        format!("chmod u+x {p}")
    } else if st.gid == who.gid {
        format!("chmod g+x {p}")
    } else {
        format!(
            "chgrp {} {p} && chmod g+x {p}, or chmod o+x {p}",
            crate::privdrop::group_name(who.gid).unwrap_or_else(|| who.gid.to_string())
        )
    };
    format!("{head}; {file}, with no execute bit for that user: {fix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who() -> Who {
        Who {
            name: "ftp".into(),
            uid: 1000,
            gid: 1000,
        }
    }

    fn denied() -> std::io::Error {
        std::io::Error::from_raw_os_error(13)
    }

    #[test]
    fn the_advice_names_the_mode_class_that_applies() {
        let p = Path::new("/opt/hook");
        let other = problem(
            "events.hooks[0].command",
            p,
            &who(),
            Some(&FileStat {
                uid: 0,
                gid: 0,
                mode: 0o100744,
            }),
            &denied(),
        );
        assert!(
            other.starts_with(
                "events.hooks[0].command: /opt/hook: cannot be run by the server's user, ftp (uid 1000, gid 1000): "
            ),
            "{other}"
        );
        assert!(other.contains("mode 0744, with no execute bit"), "{other}");
        assert!(other.contains("chmod o+x /opt/hook"), "{other}");
        // The owner's bits count for the owner, even when others may run it.
        let own = problem(
            "k",
            p,
            &who(),
            Some(&FileStat {
                uid: 1000,
                gid: 0,
                mode: 0o100655,
            }),
            &denied(),
        );
        assert!(own.ends_with("chmod u+x /opt/hook"), "{own}");
        let group = problem(
            "k",
            p,
            &who(),
            Some(&FileStat {
                uid: 0,
                gid: 1000,
                mode: 0o100705,
            }),
            &denied(),
        );
        assert!(group.ends_with("chmod g+x /opt/hook"), "{group}");
        // Bits that allow it: the refusal comes from elsewhere.
        let elsewhere = problem(
            "k",
            p,
            &who(),
            Some(&FileStat {
                uid: 0,
                gid: 0,
                mode: 0o100755,
            }),
            &denied(),
        );
        assert!(elsewhere.contains("noexec"), "{elsewhere}");
        let hidden = problem("k", p, &who(), None, &denied());
        assert!(hidden.contains("a directory above the program"), "{hidden}");
    }
}
