//! Editing the `[[users]]` of a config file for `portcullis ctl user`
//! (cli/user.rs): add an entry, change its password hash, set or clear
//! `disabled`, delete it. The file is edited with `toml_edit`, so its
//! comments and layout stay as they were; the edited text is validated by
//! the real loader ([`super::parse`]) before anything is written, and then
//! written atomically (a temporary file in the same directory, fsync,
//! rename, the directory fsynced), keeping the file's mode and owner. A
//! change that fails validation leaves the file as it was. Edits made at
//! once take turns (an `flock` on the file, held from the read to the
//! rename), so none is lost. This runs as
//! the calling user: the server never writes its config.

use std::io::Write;
use std::path::{Path, PathBuf};

use toml_edit::{value, Array, ArrayOfTables, DocumentMut, Item, Table};

use super::Checks;

/// One change to the `[[users]]` entries.
#[derive(Debug, Clone)]
pub enum Change {
    /// A new entry; its name must not exist yet.
    Add {
        name: String,
        /// A directory or an `s3://` root, as `users.root` takes it.
        root: String,
        permissions: Vec<String>,
        password_hash: String,
    },
    /// A new password hash for an existing entry.
    Passwd { name: String, password_hash: String },
    /// Set (`true`) or clear (`false`, the key removed) `disabled`.
    Disabled { name: String, disabled: bool },
    /// Remove the entry.
    Delete { name: String },
}

impl Change {
    fn name(&self) -> &str {
        match self {
            Change::Add { name, .. }
            | Change::Passwd { name, .. }
            | Change::Disabled { name, .. }
            | Change::Delete { name } => name,
        }
    }

    /// What was done, for the command's message.
    pub fn done(&self) -> String {
        match self {
            Change::Add { name, .. } => format!("added user {name}"),
            Change::Passwd { name, .. } => format!("changed the password of {name}"),
            Change::Disabled {
                name,
                disabled: true,
            } => format!("disabled {name}"),
            Change::Disabled {
                name,
                disabled: false,
            } => format!("enabled {name}"),
            Change::Delete { name } => format!("deleted user {name}"),
        }
    }
}

/// The `[[users]]` array of `doc`, created when `create` and missing.
fn users(doc: &mut DocumentMut, create: bool) -> Result<&mut ArrayOfTables, String> {
    if create && doc.get("users").is_none() {
        doc.insert("users", Item::ArrayOfTables(ArrayOfTables::new()));
    }
    match doc.get_mut("users") {
        Some(item) => item
            .as_array_of_tables_mut()
            .ok_or_else(|| "users: not written as [[users]] tables; edit it by hand".to_owned()),
        None => Err("the file has no [[users]]".to_owned()),
    }
}

/// The index of the entry named `name`.
fn find(users: &ArrayOfTables, name: &str) -> Option<usize> {
    users
        .iter()
        .position(|t| t.get("name").and_then(Item::as_str) == Some(name))
}

/// `text` with `change` made to it; comments and layout kept. Not
/// validated (see [`edit_file`]).
pub fn apply(text: &str, change: &Change) -> Result<String, String> {
    let mut doc: DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    let name = change.name();
    let missing = || format!("no [[users]] entry named {name:?}");
    match change {
        Change::Add {
            root,
            permissions,
            password_hash,
            ..
        } => {
            let users = users(&mut doc, true)?;
            if find(users, name).is_some() {
                return Err(format!("a [[users]] entry named {name:?} exists already"));
            }
            let mut t = Table::new();
            t.insert("name", value(name));
            t.insert("password_hash", value(password_hash.as_str()));
            t.insert("root", value(root.as_str()));
            t.insert(
                "permissions",
                value(permissions.iter().map(String::as_str).collect::<Array>()),
            );
            users.push(t);
        }
        Change::Passwd { password_hash, .. } => {
            let users = users(&mut doc, false)?;
            let i = find(users, name).ok_or_else(missing)?;
            let t = users.get_mut(i).expect("found");
            t.insert("password_hash", value(password_hash.as_str()));
        }
        Change::Disabled { disabled, .. } => {
            let users = users(&mut doc, false)?;
            let i = find(users, name).ok_or_else(missing)?;
            let t = users.get_mut(i).expect("found");
            if *disabled {
                t.insert("disabled", value(true));
            } else {
                t.remove("disabled");
            }
        }
        Change::Delete { .. } => {
            let users = users(&mut doc, false)?;
            let i = find(users, name).ok_or_else(missing)?;
            users.remove(i);
        }
    }
    Ok(doc.to_string())
}

/// Make `change` to the config file at `path`: edited, validated as the
/// server would load it (`checks`), written atomically. Nothing is written
/// when any step fails. Returns the validated options of the new text.
pub fn edit_file(
    path: &Path,
    change: &Change,
    checks: &dyn Checks,
) -> Result<crate::options::ServerOptions, String> {
    // A symbolic link is followed: the file it names is replaced, not the
    // link.
    let path = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    // Held until the new file is in place: two edits at once would each
    // write their own change over the other's.
    let _lock = lock(&path)?;
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let edited = apply(&text, change).map_err(|e| format!("{}: {e}", path.display()))?;
    let (mut options, _warnings) = super::parse(&edited, checks).map_err(|e| {
        format!(
            "{}: the edited file does not validate, so nothing was written:\n{e}",
            path.display()
        )
    })?;
    options.config_file = Some(path.clone());
    replace(&path, edited.as_bytes())?;
    Ok(options)
}

/// An exclusive `flock` on the file at `path`, taken by every edit for its
/// whole read, change and write. The file is replaced by a rename, so the
/// lock taken on a file that is no longer the one at `path` (another edit
/// replaced it meanwhile) is let go and taken again on the new one.
fn lock(path: &Path) -> Result<std::fs::File, String> {
    use std::os::unix::fs::MetadataExt;
    let err = |e: std::io::Error| format!("{}: cannot lock it: {e}", path.display());
    for _ in 0..1000 {
        let f = std::fs::File::open(path).map_err(err)?;
        rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| err(e.into()))?;
        let (held, now) = (
            f.metadata().map_err(err)?,
            std::fs::metadata(path).map_err(err)?,
        );
        if (held.dev(), held.ino()) == (now.dev(), now.ino()) {
            return Ok(f);
        }
    }
    Err(format!(
        "{}: cannot lock it: it keeps being replaced",
        path.display()
    ))
}

/// Replace `path` with `bytes` atomically, keeping its mode and owner.
fn replace(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
    let err = |p: &Path, e: std::io::Error| format!("{}: {e}", p.display());
    let meta = std::fs::metadata(path).map_err(|e| err(path, e))?;
    let dir = path.parent().unwrap_or(Path::new("/"));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (tmp, mut f) = (0..16)
        .find_map(|_| {
            let tmp: PathBuf = dir.join(format!(".{file_name}.{:08x}.tmp", rand::random::<u32>()));
            // Owner-only until its owner and mode are the original's.
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)
                .ok()
                .map(|f| (tmp, f))
        })
        .ok_or_else(|| {
            format!(
                "{}: cannot create a temporary file beside it (is the directory writable?)",
                dir.display()
            )
        })?;
    let result = (|| {
        std::os::unix::fs::fchown(&f, Some(meta.uid()), Some(meta.gid())).map_err(|e| {
            format!(
                "{}: cannot keep its owner ({}:{}): {e}; run as that user or root",
                path.display(),
                meta.uid(),
                meta.gid()
            )
        })?;
        f.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(|e| err(&tmp, e))?;
        f.write_all(bytes).map_err(|e| err(&tmp, e))?;
        f.sync_all().map_err(|e| err(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| err(path, e))
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename itself made durable.
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| err(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

    fn base(dir: &Path) -> String {
        format!(
            "# The test server.\n[server]\nlisten = [\"127.0.0.1:0\"] # loopback\n\n\
             # Alice, who may write.\n[[users]]\nname = \"alice\"\npassword_hash = \"{HASH}\"\n\
             root = \"{0}\"   # her files\npermissions = [\"read\", \"write\"]\n\n\
             # Bob.\n[[users]]\nname = \"bob\"\npassword_hash = \"{HASH}\"\nroot = \"{0}\"\n\n\
             [limits]\n# comment in limits\nmax_sessions = 10\n",
            dir.display()
        )
    }

    fn users_of(text: &str) -> Vec<crate::options::UserEntry> {
        super::super::parse(text, &super::super::RulesOnly)
            .expect("valid")
            .0
            .users
    }

    #[test]
    fn each_change_keeps_the_comments_and_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let text = base(dir.path());
        let add = Change::Add {
            name: "carol".into(),
            root: dir.path().display().to_string(),
            permissions: vec!["read".into(), "mkdir".into()],
            password_hash: HASH.into(),
        };
        let added = apply(&text, &add).unwrap();
        for kept in [
            "# The test server.",
            "# loopback",
            "# Alice, who may write.",
            "   # her files",
            "# Bob.",
            "# comment in limits",
        ] {
            assert!(added.contains(kept), "{kept:?} lost:\n{added}");
        }
        // The new entry comes after the last one; deleting it gives back
        // the old text byte for byte.
        assert!(added.contains("root = \"/") && added.find("carol") < added.find("[limits]"));
        assert_eq!(
            apply(
                &added,
                &Change::Delete {
                    name: "carol".into()
                }
            )
            .unwrap(),
            text
        );
        let users = users_of(&added);
        assert_eq!(users.len(), 3);
        assert_eq!(users[2].name, "carol");
        assert!(users[2].policy.permissions.mkdir && !users[2].policy.permissions.write);
        assert!(apply(&added, &add).unwrap_err().contains("exists already"));

        let disabled = apply(
            &added,
            &Change::Disabled {
                name: "bob".into(),
                disabled: true,
            },
        )
        .unwrap();
        assert!(users_of(&disabled)[1].disabled);
        assert!(disabled.contains("# Bob.") && disabled.contains("# comment in limits"));
        let enabled = apply(
            &disabled,
            &Change::Disabled {
                name: "bob".into(),
                disabled: false,
            },
        )
        .unwrap();
        assert_eq!(enabled, added, "enable removes the key again");

        let passwd = apply(
            &enabled,
            &Change::Passwd {
                name: "alice".into(),
                password_hash: "$argon2id$other".into(),
            },
        )
        .unwrap();
        assert!(passwd.contains("password_hash = \"$argon2id$other\""));
        assert!(passwd.contains("   # her files"));

        let deleted = apply(&passwd, &Change::Delete { name: "bob".into() }).unwrap();
        let names: Vec<String> = users_of(&deleted).into_iter().map(|u| u.name).collect();
        assert_eq!(names, ["alice", "carol"]);
        assert!(deleted.contains("# comment in limits"));
        assert!(apply(&deleted, &Change::Delete { name: "bob".into() })
            .unwrap_err()
            .contains("no [[users]] entry named \"bob\""));
    }

    #[test]
    fn a_first_user_gets_a_users_array() {
        let text = "# nothing but this\n[server]\nlisten = [\"127.0.0.1:0\"]\n";
        let added = apply(
            text,
            &Change::Add {
                name: "u".into(),
                root: "/srv/u".into(),
                permissions: vec!["read".into()],
                password_hash: HASH.into(),
            },
        )
        .unwrap();
        assert!(added.starts_with(text));
        assert_eq!(users_of(&added)[0].name, "u");
    }

    /// Edits made at once (several `ctl user add` run together) all land:
    /// none reads the file while another is between its read and its write.
    #[test]
    fn concurrent_edits_are_all_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portcullis.toml");
        std::fs::write(&path, base(dir.path())).unwrap();
        let threads: Vec<_> = (0..12)
            .map(|i| {
                let (path, root) = (path.clone(), dir.path().display().to_string());
                std::thread::spawn(move || {
                    let add = Change::Add {
                        name: format!("user{i}"),
                        root,
                        permissions: vec!["read".into()],
                        password_hash: HASH.into(),
                    };
                    edit_file(&path, &add, &super::super::RulesOnly).map(|_| ())
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap().unwrap();
        }
        let users = users_of(&std::fs::read_to_string(&path).unwrap());
        assert_eq!(users.len(), 14, "edits lost: {:?}", {
            users.iter().map(|u| u.name.clone()).collect::<Vec<_>>()
        });
    }

    #[test]
    fn a_change_that_does_not_validate_writes_nothing() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("portcullis.toml");
        let text = base(dir.path());
        std::fs::write(&path, &text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let bad = Change::Add {
            name: "eve".into(),
            root: dir.path().display().to_string(),
            permissions: vec!["fly".into()],
            password_hash: HASH.into(),
        };
        let e = edit_file(&path, &bad, &super::super::RulesOnly).unwrap_err();
        assert!(e.contains("does not validate") && e.contains("fly"), "{e}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        // Nothing left beside it either.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

        let good = Change::Disabled {
            name: "alice".into(),
            disabled: true,
        };
        let o = edit_file(&path, &good, &super::super::RulesOnly).unwrap();
        assert!(o.users[0].disabled);
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o640, "the mode is kept");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        assert!(std::fs::read_to_string(&path)
            .unwrap()
            .contains("# Alice, who may write.\n[[users]]\nname = \"alice\""));
    }
}
