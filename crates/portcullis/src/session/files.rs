//! Navigation and file-operation family: PWD, CWD, CDUP, MKD, RMD, DELE,
//! RNFR, RNTO, SIZE, MDTM (RFC 959 section 4.1, RFC 3659 sections 3 and 4).

use portcullis_proto::listing::{self, FileKind, Metadata};
use portcullis_proto::path::{quote_257, VirtualPath};
use portcullis_proto::reply::{Reply, ReplyCode};

use super::{denied, storage_reply, Armed, Session, UserCtx};
use crate::auth::Permissions;

impl Session {
    pub(super) fn pwd(&self) -> Reply {
        Reply::new(
            ReplyCode::PATH_CREATED,
            format!(
                "{} is the current directory.",
                quote_257(&self.cwd.to_string())
            ),
        )
    }

    pub(super) async fn cwd(&mut self, arg: &str) -> Reply {
        let (ctx, path) = match (self.user_ctx(), self.resolve(arg)) {
            (Ok(c), Ok(p)) => (c, p),
            (Err(r), _) | (_, Err(r)) => return r,
        };
        if !ctx.account.permissions.read {
            return denied("change directory");
        }
        match ctx.storage.metadata(&path).await {
            Ok(m) if m.kind == FileKind::Dir => {}
            Ok(_) => return Reply::new(ReplyCode::FILE_UNAVAILABLE, "Not a directory."),
            Err(e) => return storage_reply(&e),
        }
        self.cwd = path;
        Reply::new(ReplyCode::FILE_ACTION_OK, "Directory successfully changed.")
    }

    pub(super) async fn mkd(&self, arg: &str) -> Reply {
        let (ctx, path) = match self.ctx_path(arg, |p| p.mkdir, "create directories") {
            Ok(v) => v,
            Err(r) => return r,
        };
        match ctx.storage.mkdir(&path).await {
            Ok(()) => Reply::new(
                ReplyCode::PATH_CREATED,
                format!("{} created.", quote_257(&path.to_string())),
            ),
            Err(e) => storage_reply(&e),
        }
    }

    pub(super) async fn rmd(&self, arg: &str) -> Reply {
        let (ctx, path) = match self.ctx_path(arg, |p| p.delete, "remove directories") {
            Ok(v) => v,
            Err(r) => return r,
        };
        if path.is_root() {
            return Reply::new(
                ReplyCode::FILE_UNAVAILABLE,
                "Cannot remove the root directory.",
            );
        }
        match ctx.storage.rmdir(&path).await {
            Ok(()) => Reply::new(ReplyCode::FILE_ACTION_OK, "Directory removed."),
            Err(e) => storage_reply(&e),
        }
    }

    pub(super) async fn dele(&self, arg: &str) -> Reply {
        let (ctx, path) = match self.ctx_path(arg, |p| p.delete, "delete files") {
            Ok(v) => v,
            Err(r) => return r,
        };
        match ctx.storage.remove_file(&path).await {
            Ok(()) => Reply::new(ReplyCode::FILE_ACTION_OK, "File deleted."),
            Err(e) => storage_reply(&e),
        }
    }

    pub(super) async fn rnfr(&mut self, arg: &str) -> Reply {
        let (ctx, path) = match self.ctx_path(arg, |p| p.rename, "rename") {
            Ok(v) => v,
            Err(r) => return r,
        };
        if path.is_root() {
            return Reply::new(
                ReplyCode::FILE_UNAVAILABLE,
                "Cannot rename the root directory.",
            );
        }
        match ctx.storage.metadata(&path).await {
            Ok(_) => {
                self.armed = Armed::RenameFrom(path);
                Reply::new(ReplyCode::PENDING, "Ready for RNTO.")
            }
            Err(e) => storage_reply(&e),
        }
    }

    pub(super) async fn rnto(&self, arg: &str, armed: Armed) -> Reply {
        let Armed::RenameFrom(from) = armed else {
            return Reply::new(ReplyCode::BAD_SEQUENCE, "RNFR required first.");
        };
        let (ctx, to) = match self.ctx_path(arg, |p| p.rename, "rename") {
            Ok(v) => v,
            Err(r) => return r,
        };
        if to.is_root() {
            return Reply::new(
                ReplyCode::FILE_UNAVAILABLE,
                "Cannot rename onto the root directory.",
            );
        }
        match ctx.storage.rename(&from, &to).await {
            Ok(()) => Reply::new(ReplyCode::FILE_ACTION_OK, "Rename successful."),
            Err(e) => storage_reply(&e),
        }
    }

    pub(super) async fn size(&self, arg: &str) -> Reply {
        match self.file_meta(arg).await {
            Ok(m) => Reply::new(ReplyCode::FILE_STATUS, m.size.to_string()),
            Err(r) => r,
        }
    }

    pub(super) async fn mdtm(&self, arg: &str) -> Reply {
        match self.file_meta(arg).await {
            Ok(m) => Reply::new(ReplyCode::FILE_STATUS, listing::time_val(m.modified)),
            Err(r) => r,
        }
    }

    /// MFMT (draft-somers-ftp-mfxx): set a file's modification time, as
    /// clients do after an upload to keep the source's (rclone, WinSCP,
    /// FileZilla).
    pub(super) async fn mfmt(&self, time: std::time::SystemTime, arg: &str) -> Reply {
        let (ctx, path) = match self.ctx_change(arg, "change modification times") {
            Ok(v) => v,
            Err(r) => return r,
        };
        match ctx.storage.set_modified(&path, time).await {
            Ok(()) => Reply::new(
                ReplyCode::FILE_STATUS,
                format!("Modify={}; {arg}", listing::time_val(time)),
            ),
            Err(e) => storage_reply(&e),
        }
    }

    /// SITE CHMOD (as vsftpd and ProFTPD): set the permission bits of a
    /// file or directory; setuid, setgid and sticky bits are never set.
    pub(super) async fn chmod(&self, mode: u32, arg: &str) -> Reply {
        let (ctx, path) = match self.ctx_change(arg, "change permissions") {
            Ok(v) => v,
            Err(r) => return r,
        };
        match ctx.storage.set_mode(&path, mode).await {
            Ok(()) => Reply::new(ReplyCode::OK, format!("SITE CHMOD command ok ({mode:o}).")),
            Err(e) => storage_reply(&e),
        }
    }

    /// The user and path for a command that changes an existing object's
    /// metadata: it takes the rights to write and to overwrite, and is
    /// never open to anonymous users.
    fn ctx_change(&self, arg: &str, what: &str) -> Result<(&UserCtx, VirtualPath), Reply> {
        let (ctx, path) = self.ctx_path(arg, |p| p.write && p.overwrite, what)?;
        if ctx.account.anonymous {
            return Err(denied(&format!("{what} as an anonymous user")));
        }
        Ok((ctx, path))
    }

    /// MLST (RFC 3659 section 7.2): the facts of one path on the control connection.
    pub(super) async fn mlst(&self, arg: Option<String>) -> Reply {
        let (ctx, path) = match self.ctx_path(arg.as_deref().unwrap_or("."), |p| p.read, "read") {
            Ok(v) => v,
            Err(r) => return r,
        };
        // The path itself: a symbolic link is described as the link, with
        // its target, as MLSD lists it.
        let (meta, target) = match ctx.storage.entry(&path).await {
            Ok(e) => (e.meta, e.target),
            Err(e) => return storage_reply(&e),
        };
        let line = listing::mlsx_line(
            &path.to_string(),
            target.as_deref(),
            &meta,
            listing::MlsxRole::Entry,
            &perm_fact(&ctx.account.permissions, ctx.account.anonymous, &meta),
            &self.mlst_facts,
        );
        Reply::multi(
            ReplyCode::FILE_ACTION_OK,
            vec![
                format!("Listing {path}"),
                format!(" {line}"),
                "End".to_owned(),
            ],
        )
    }

    /// SIZE and MDTM work on plain files only (RFC 3659 sections 3 and 4).
    async fn file_meta(&self, arg: &str) -> Result<Metadata, Reply> {
        let (ctx, path) = self.ctx_path(arg, |p| p.read, "read")?;
        let meta = ctx
            .storage
            .metadata(&path)
            .await
            .map_err(|e| storage_reply(&e))?;
        match meta.kind {
            FileKind::File => Ok(meta),
            _ => Err(Reply::new(ReplyCode::FILE_UNAVAILABLE, "Not a plain file.")),
        }
    }

    /// The logged-in user and a resolved path, if the user has the permission.
    pub(super) fn ctx_path(
        &self,
        arg: &str,
        allowed: impl Fn(&Permissions) -> bool,
        what: &str,
    ) -> Result<(&UserCtx, VirtualPath), Reply> {
        let ctx = self.user_ctx()?;
        if !allowed(&ctx.account.permissions) {
            return Err(denied(what));
        }
        Ok((ctx, self.resolve(arg)?))
    }
}

/// The MLSx `perm` fact (RFC 3659 section 7.5.5) from the user's permissions.
pub(super) fn perm_fact(p: &Permissions, anon: bool, meta: &Metadata) -> String {
    let mut s = String::new();
    if meta.kind == FileKind::Dir {
        if p.write {
            s.push('c');
        }
        if p.delete && !anon {
            s.push('d');
        }
        if p.read {
            s.push_str("el");
        }
        if p.rename && !anon {
            s.push('f');
        }
        if p.mkdir && !anon {
            s.push('m');
        }
        if p.delete && !anon {
            s.push('p');
        }
    } else {
        if p.write && p.overwrite {
            s.push('a');
        }
        if p.delete && !anon {
            s.push('d');
        }
        if p.rename && !anon {
            s.push('f');
        }
        if p.read {
            s.push('r');
        }
        if p.write && p.overwrite {
            s.push('w');
        }
    }
    s
}
