//! The one decision of which permissions an operation on a name needs:
//! [`decide`], a function of the account's permissions, the operation
//! ([`Change`]) and whether the name it targets exists ([`Target`]). Every
//! handler that creates, replaces, appends to or removes a name asks it,
//! and so does the MLSx `perm` fact; the book's permission table (Accounts) is this
//! function written out.
//!
//! The storage makes the same promise again where a check and the act
//! could be raced: a change the account may make only to a name that does
//! not exist is carried out with a mode that refuses to replace (an
//! upload's `NoClobber`, a rename's `NoClobber`), so a name created by
//! another session in between is kept.

use super::Permissions;

/// An operation that creates, replaces, appends to or removes a name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// STOR (and REST 0 + STOR): create the file, or replace it.
    Store,
    /// REST n + STOR with n > 0: write into the file from an offset.
    Resume,
    /// STOU: a name that does not exist yet (another name is chosen when
    /// it does), so never a replacement.
    StoreUnique,
    /// APPE: append to the file, created if missing.
    Append,
    /// RNFR and RNTO: the target is RNTO's name (RNFR's must exist).
    Rename,
    /// DELE.
    Delete,
    /// RMD.
    RemoveDir,
    /// MKD.
    MakeDir,
    /// MFMT: set an existing file's or directory's modification time.
    SetTime,
    /// SITE CHMOD: set an existing file's or directory's permission bits.
    Chmod,
}

/// Whether the name an operation targets exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Absent,
    Exists,
}

/// May an account with `p` (anonymous or not) make `change` to a name
/// that is `target`? `Err` holds what it may not do, as the 550 reply
/// words it after "Permission denied: you may not".
///
/// What a name that does not exist allows is never more than what one
/// that exists does, so a caller can decide for [`Target::Absent`]
/// first and ask the storage about the name only when the answer for
/// [`Target::Exists`] differs.
pub fn decide(
    p: &Permissions,
    anonymous: bool,
    change: Change,
    target: Target,
) -> Result<(), &'static str> {
    use Change as C;
    let exists = target == Target::Exists;
    // Anonymous users at most create new files: never overwrite, append,
    // delete, rename or make directories, whatever their permissions say.
    if anonymous {
        let refused = match change {
            C::Store if exists => Some("overwrite existing files"),
            C::Store | C::StoreUnique => None,
            C::Resume | C::Append => Some("append to or resume files as an anonymous user"),
            C::Rename => Some("rename as an anonymous user"),
            C::Delete | C::RemoveDir => Some("delete as an anonymous user"),
            C::MakeDir => Some("create directories as an anonymous user"),
            C::SetTime => Some("change modification times as an anonymous user"),
            C::Chmod => Some("change permissions as an anonymous user"),
        };
        if let Some(what) = refused {
            return Err(what);
        }
    }
    let (allowed, what) = match change {
        C::Store | C::Resume | C::Append if exists => {
            (p.write && p.overwrite, "overwrite existing files")
        }
        C::Store | C::Resume | C::Append | C::StoreUnique => (p.write, "upload"),
        C::Rename if exists => (
            p.rename && p.overwrite,
            "overwrite existing files (by renaming onto them)",
        ),
        C::Rename => (p.rename, "rename"),
        C::Delete => (p.delete, "delete files"),
        C::RemoveDir => (p.delete, "remove directories"),
        C::MakeDir => (p.mkdir, "create directories"),
        C::SetTime => (p.write && p.overwrite, "change modification times"),
        C::Chmod => (p.write && p.overwrite, "change permissions"),
    };
    if allowed {
        Ok(())
    } else {
        Err(what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL_CHANGES: [Change; 10] = [
        Change::Store,
        Change::Resume,
        Change::StoreUnique,
        Change::Append,
        Change::Rename,
        Change::Delete,
        Change::RemoveDir,
        Change::MakeDir,
        Change::SetTime,
        Change::Chmod,
    ];

    fn perms(names: &[&str]) -> Permissions {
        let mut p = Permissions::default();
        for n in names {
            p.grant(n).unwrap();
        }
        p
    }

    /// The book's table (Accounts), row by row: the permissions each change needs
    /// on a name that is absent and on one that exists.
    #[test]
    fn the_table() {
        use Change as C;
        let table: [(Change, &[&str], &[&str]); 10] = [
            (C::Store, &["write"], &["write", "overwrite"]),
            (C::Resume, &["write"], &["write", "overwrite"]),
            (C::StoreUnique, &["write"], &["write"]),
            (C::Append, &["write"], &["write", "overwrite"]),
            (C::Rename, &["rename"], &["rename", "overwrite"]),
            (C::Delete, &["delete"], &["delete"]),
            (C::RemoveDir, &["delete"], &["delete"]),
            (C::MakeDir, &["mkdir"], &["mkdir"]),
            (C::SetTime, &["write", "overwrite"], &["write", "overwrite"]),
            (C::Chmod, &["write", "overwrite"], &["write", "overwrite"]),
        ];
        let names = ["read", "write", "overwrite", "delete", "rename", "mkdir"];
        for (change, absent, exists) in table {
            for (target, needed) in [(Target::Absent, absent), (Target::Exists, exists)] {
                // Exactly what the row names is enough...
                assert_eq!(
                    decide(&perms(needed), false, change, target),
                    Ok(()),
                    "{change:?} {target:?} with {needed:?}"
                );
                // ... and every permission it names is needed.
                for missing in needed.iter() {
                    let rest: Vec<&str> = names.iter().copied().filter(|n| n != missing).collect();
                    assert!(
                        decide(&perms(&rest), false, change, target).is_err(),
                        "{change:?} {target:?} without {missing}"
                    );
                }
            }
        }
    }

    /// The drop box of issue 28: read, write and rename, no overwrite.
    #[test]
    fn a_drop_box_replaces_nothing() {
        let p = perms(&["read", "write", "rename"]);
        for change in [Change::Store, Change::Append, Change::Resume] {
            assert_eq!(
                decide(&p, false, change, Target::Exists),
                Err("overwrite existing files")
            );
        }
        assert!(decide(&p, false, Change::Rename, Target::Absent).is_ok());
        let e = decide(&p, false, Change::Rename, Target::Exists).unwrap_err();
        assert!(e.contains("overwrite") && e.contains("renaming"), "{e}");
        assert_eq!(
            decide(&p, false, Change::Delete, Target::Exists),
            Err("delete files")
        );
        assert!(decide(&p, false, Change::Store, Target::Absent).is_ok());
        assert!(decide(&p, false, Change::StoreUnique, Target::Exists).is_ok());
    }

    /// Anonymous users create new files at most, even with every
    /// permission.
    #[test]
    fn anonymous_only_creates_files() {
        for change in ALL_CHANGES {
            for target in [Target::Absent, Target::Exists] {
                let r = decide(&Permissions::ALL, true, change, target);
                let creates = matches!(change, Change::Store | Change::StoreUnique)
                    && (target == Target::Absent || change == Change::StoreUnique);
                assert_eq!(r.is_ok(), creates, "{change:?} {target:?}: {r:?}");
            }
        }
    }

    /// What is allowed on an existing name is allowed on an absent one:
    /// the order in which callers ask relies on it.
    #[test]
    fn absent_never_needs_more_than_exists() {
        let names = ["write", "overwrite", "delete", "rename", "mkdir"];
        for bits in 0..(1u32 << names.len()) {
            let granted: Vec<&str> = (0..names.len())
                .filter(|i| bits & (1 << i) != 0)
                .map(|i| names[i])
                .collect();
            let p = perms(&granted);
            for anon in [false, true] {
                for change in ALL_CHANGES {
                    if decide(&p, anon, change, Target::Exists).is_ok() {
                        assert!(decide(&p, anon, change, Target::Absent).is_ok());
                    }
                }
            }
        }
    }
}
