//! Navigation and file-operation family: PWD, CWD, CDUP, MKD, RMD, DELE,
//! RNFR, RNTO, SIZE, MDTM (RFC 959 section 4.1, RFC 3659 sections 3 and 4),
//! and the two steps by which every command that changes a name asks the
//! one permission decision, [`access::decide`]: [`Core::ctx_change`] and
//! [`Core::may_replace`].

use portcullis_proto::command::Command;
use portcullis_proto::listing::{self, FileKind, Metadata};
use portcullis_proto::path::{quote_257, VirtualPath};
use portcullis_proto::reply::{Reply, ReplyCode};
use portcullis_proto::verbs::Capability;

use super::error::SessionError;
use super::{Armed, Core, UserCtx};
use crate::access::{self, Change, Target};
use crate::auth::Permissions;
use crate::storage::{Capabilities, RenameMode, StorageError};

/// What a handler of this family returns.
type Answer = Result<Reply, SessionError>;

impl Core {
    pub(super) fn pwd(&self) -> Reply {
        Reply::new(
            ReplyCode::PATH_CREATED,
            format!(
                "{} is the current directory.",
                quote_257(&self.cwd.to_string())
            ),
        )
    }

    pub(super) async fn cwd(&mut self, arg: &str) -> Answer {
        let (ctx, path) = self.ctx_path(arg, |p| p.read, "change directory")?;
        if ctx.storage.metadata(&path).await?.kind != FileKind::Dir {
            return Err(StorageError::NotADirectory.into());
        }
        self.cwd = path;
        Ok(Reply::new(
            ReplyCode::FILE_ACTION_OK,
            "Directory successfully changed.",
        ))
    }

    pub(super) async fn mkd(&self, arg: &str) -> Answer {
        let (ctx, path) = self.ctx_change(arg, Change::MakeDir)?;
        ctx.storage.mkdir(&path).await?;
        Ok(Reply::new(
            ReplyCode::PATH_CREATED,
            format!("{} created.", quote_257(&path.to_string())),
        ))
    }

    pub(super) async fn rmd(&self, arg: &str) -> Answer {
        let (ctx, path) = self.ctx_change(arg, Change::RemoveDir)?;
        if path.is_root() {
            return Ok(Reply::new(
                ReplyCode::FILE_UNAVAILABLE,
                "Cannot remove the root directory.",
            ));
        }
        ctx.storage.rmdir(&path).await?;
        Ok(Reply::new(ReplyCode::FILE_ACTION_OK, "Directory removed."))
    }

    pub(super) async fn dele(&self, arg: &str) -> Answer {
        let (ctx, path) = self.ctx_change(arg, Change::Delete)?;
        self.ask_hooks(crate::options::EventKind::PreDelete, &path)
            .await?;
        let size = match ctx.quota {
            Some(_) => super::quota::file_size(ctx, &path).await?,
            None => None,
        };
        ctx.storage.remove_file(&path).await?;
        super::quota::removed(ctx, size);
        Ok(Reply::new(ReplyCode::FILE_ACTION_OK, "File deleted."))
    }

    pub(super) async fn rnfr(&mut self, arg: &str) -> Answer {
        let (ctx, path) = self.ctx_change(arg, Change::Rename)?;
        if path.is_root() {
            return Ok(Reply::new(
                ReplyCode::FILE_UNAVAILABLE,
                "Cannot rename the root directory.",
            ));
        }
        ctx.storage.metadata(&path).await?;
        self.armed = Armed::RenameFrom(path);
        Ok(Reply::new(ReplyCode::PENDING, "Ready for RNTO."))
    }

    pub(super) async fn rnto(&self, arg: &str, armed: Armed) -> Answer {
        let Armed::RenameFrom(from) = armed else {
            return Ok(Reply::new(ReplyCode::BAD_SEQUENCE, "RNFR required first."));
        };
        let (ctx, to) = self.ctx_change(arg, Change::Rename)?;
        if to.is_root() {
            return Ok(Reply::new(
                ReplyCode::FILE_UNAVAILABLE,
                "Cannot rename onto the root directory.",
            ));
        }
        if !ctx.storage.capabilities().rename_dirs
            && ctx.storage.metadata(&from).await?.kind == FileKind::Dir
        {
            return Err(SessionError::Unsupported("Renaming a directory"));
        }
        // Onto a name that exists only with `overwrite`; without it the
        // storage refuses to replace even a name created since this check.
        let mode = match Self::may_replace(ctx, &to, Change::Rename).await? {
            true => RenameMode::Replace,
            false => RenameMode::NoClobber,
        };
        // A rename takes the source's name away and puts content under
        // the target's: the pre-actions guarding those are asked, and
        // pre_delete about a target it would replace, so that RNFR/RNTO
        // is no way around pre_delete or pre_upload.
        if self.shared.hooks.is_some() {
            use crate::options::EventKind;
            self.ask_hooks(EventKind::PreDelete, &from).await?;
            self.ask_hooks(EventKind::PreUpload, &to).await?;
            if matches!(mode, RenameMode::Replace) && ctx.storage.metadata(&to).await.is_ok() {
                self.ask_hooks(EventKind::PreDelete, &to).await?;
            }
        }
        // A file it replaces gives its bytes back (a rename within the
        // root changes nothing else). A rename onto itself replaces
        // nothing: the file stays, and so do its bytes.
        let replaced = match (&ctx.quota, mode) {
            (Some(_), RenameMode::Replace) if from != to => {
                super::quota::file_size(ctx, &to).await?
            }
            _ => None,
        };
        ctx.storage.rename(&from, &to, mode).await?;
        super::quota::removed(ctx, replaced);
        Ok(Reply::new(ReplyCode::FILE_ACTION_OK, "Rename successful."))
    }

    pub(super) async fn size(&self, arg: &str) -> Answer {
        let m = self.file_meta(arg).await?;
        Ok(Reply::new(ReplyCode::FILE_STATUS, m.size.to_string()))
    }

    pub(super) async fn mdtm(&self, arg: &str) -> Answer {
        let m = self.file_meta(arg).await?;
        Ok(Reply::new(
            ReplyCode::FILE_STATUS,
            listing::time_val(m.modified),
        ))
    }

    /// MFMT (draft-somers-ftp-mfxx): set a file's modification time, as
    /// clients do after an upload to keep the source's (rclone, WinSCP,
    /// FileZilla).
    pub(super) async fn mfmt(&self, time: std::time::SystemTime, arg: &str) -> Answer {
        // The storage's capability was checked in dispatch (`Core::capable`).
        let (ctx, path) = self.ctx_change(arg, Change::SetTime)?;
        ctx.storage.set_modified(&path, time).await?;
        Ok(Reply::new(
            ReplyCode::FILE_STATUS,
            format!("Modify={}; {arg}", listing::time_val(time)),
        ))
    }

    /// SITE CHMOD (as vsftpd and ProFTPD): set the permission bits of a
    /// file or directory; setuid, setgid and sticky bits are never set.
    pub(super) async fn chmod(&self, mode: u32, arg: &str) -> Answer {
        let (ctx, path) = self.ctx_change(arg, Change::Chmod)?;
        if !ctx.storage.capabilities().chmod {
            return Err(SessionError::Unsupported("SITE CHMOD"));
        }
        ctx.storage.set_mode(&path, mode).await?;
        Ok(Reply::new(
            ReplyCode::OK,
            format!("SITE CHMOD command ok ({mode:o})."),
        ))
    }

    /// The user and resolved path for `change`, if the account may make
    /// it to a name that does not exist: the first step of the one
    /// decision ([`access::decide`]), which needs no storage. Whether it
    /// may make it to a name that exists is [`Core::may_replace`]'s; for
    /// MKD, RMD, DELE, MFMT and SITE CHMOD the table answers the same
    /// either way (its unit tests say so), so this step is all they ask.
    pub(super) fn ctx_change(
        &self,
        arg: &str,
        change: Change,
    ) -> Result<(&UserCtx, VirtualPath), SessionError> {
        let ctx = self.permitted(change)?;
        Ok((ctx, self.resolve(arg)?))
    }

    /// The permission half of [`Core::ctx_change`]: may the account make
    /// `change` to a name that does not exist (550 if not)?
    pub(super) fn permitted(&self, change: Change) -> Result<&UserCtx, SessionError> {
        let ctx = self.user_ctx()?;
        let a = &ctx.account;
        access::decide(&a.permissions, a.anonymous, change, Target::Absent)
            .map_err(|what| SessionError::Denied(what.to_owned()))?;
        Ok(ctx)
    }

    /// A command whose verb needs a storage capability ([`Command::needs`]:
    /// APPE, MFMT), asked in dispatch before its handler runs: 502 when the
    /// account's storage lacks it, but the permission answer first, so that
    /// an account that may not make the change hears 550 whatever its
    /// storage can do.
    pub(super) fn capable(&self, cmd: &Command) -> Result<(), SessionError> {
        if !self.hashing_on() && cmd.needs() == Some(Capability::Hash) {
            return Err(SessionError::HashingOff(cmd.verb()));
        }
        let caps = self.capabilities();
        // A storage that can do everything (a local root) needs no look
        // at the verb table.
        if caps == Capabilities::ALL {
            return Ok(());
        }
        let Some(need) = cmd.needs() else {
            return Ok(());
        };
        if caps.has(need) {
            return Ok(());
        }
        self.permitted(match need {
            Capability::Append => Change::Append,
            Capability::SetTimes => Change::SetTime,
            Capability::Hash => return Ok(()),
        })?;
        Err(SessionError::Unsupported(cmd.verb()))
    }

    /// The second step, after [`Core::ctx_change`]: `Ok(true)` when the
    /// account may make `change` to `path` whether or not it exists (no
    /// storage asked); otherwise the storage says whether the name exists
    /// now (the name itself: a symbolic link counts, not followed), 550
    /// when it does, `Ok(false)` when it does not, and the caller has the
    /// storage refuse to replace a name created meanwhile.
    pub(super) async fn may_replace(
        ctx: &UserCtx,
        path: &VirtualPath,
        change: Change,
    ) -> Result<bool, SessionError> {
        let a = &ctx.account;
        let Err(what) = access::decide(&a.permissions, a.anonymous, change, Target::Exists) else {
            return Ok(true);
        };
        match ctx.storage.entry(path).await {
            Err(StorageError::NotFound) => Ok(false),
            Ok(_) => Err(SessionError::Denied(what.to_owned())),
            Err(e) => Err(e.into()),
        }
    }

    /// MLST (RFC 3659 section 7.2): the facts of one path on the control connection.
    pub(super) async fn mlst(&self, arg: Option<String>) -> Answer {
        let (ctx, path) = self.ctx_path(arg.as_deref().unwrap_or("."), |p| p.read, "read")?;
        // The path itself: a symbolic link is described as the link, with
        // its target, as MLSD lists it.
        let e = ctx.storage.entry(&path).await?;
        let line = listing::mlsx_line(
            &path.to_string(),
            e.target.as_deref(),
            &e.meta,
            listing::MlsxRole::Entry,
            &perm_fact(&ctx.account.permissions, ctx.account.anonymous, e.meta.kind),
            &self.mlst_facts,
        );
        Ok(Reply::multi(
            ReplyCode::FILE_ACTION_OK,
            vec![
                format!("Listing {path}"),
                format!(" {line}"),
                "End".to_owned(),
            ],
        ))
    }

    /// SIZE and MDTM work on plain files only (RFC 3659 sections 3 and 4).
    async fn file_meta(&self, arg: &str) -> Result<Metadata, SessionError> {
        let (ctx, path) = self.ctx_path(arg, |p| p.read, "read")?;
        let meta = ctx.storage.metadata(&path).await?;
        match meta.kind {
            FileKind::File => Ok(meta),
            _ => Err(SessionError::NotPlainFile),
        }
    }

    /// The logged-in user and a resolved path, if the user has the
    /// permission: for commands that read (those that change a name ask
    /// [`Core::ctx_change`]).
    pub(super) fn ctx_path(
        &self,
        arg: &str,
        allowed: impl Fn(&Permissions) -> bool,
        what: &str,
    ) -> Result<(&UserCtx, VirtualPath), SessionError> {
        let ctx = self.user_ctx()?;
        if !allowed(&ctx.account.permissions) {
            return Err(SessionError::Denied(what.to_owned()));
        }
        Ok((ctx, self.resolve(arg)?))
    }
}

/// The MLSx `perm` fact (RFC 3659 section 7.5.5) from the user's
/// permissions, by the one decision ([`access::decide`]): what the account
/// may do to this entry as it exists, or create in it.
pub(super) fn perm_fact(p: &Permissions, anon: bool, kind: FileKind) -> String {
    let may = |change, target| access::decide(p, anon, change, target).is_ok();
    let (absent, exists) = (Target::Absent, Target::Exists);
    let facts: &[(char, bool)] = if kind == FileKind::Dir {
        &[
            ('c', may(Change::Store, absent)),
            ('d', may(Change::RemoveDir, exists)),
            ('e', p.read),
            ('l', p.read),
            ('f', may(Change::Rename, absent)),
            ('m', may(Change::MakeDir, absent)),
            ('p', may(Change::Delete, exists)),
        ]
    } else {
        &[
            ('a', may(Change::Append, exists)),
            ('d', may(Change::Delete, exists)),
            ('f', may(Change::Rename, absent)),
            ('r', p.read),
            ('w', may(Change::Store, exists)),
        ]
    };
    facts
        .iter()
        .filter(|(_, on)| *on)
        .map(|(c, _)| *c)
        .collect()
}
