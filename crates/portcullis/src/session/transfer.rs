//! Transfer family: LIST, NLST, MLSD, RETR, STOR, STOU, APPE (RFC 959, RFC
//! 3659), on a data connection set up by the commands in `setup.rs`.
//! A transfer command checks everything it can first (permissions, the file
//! opens), then sends 150 and hands the work to a task ([`super::job`]).

use std::time::SystemTime;

use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use portcullis_proto::command::{ListArgs, TransferType};
use portcullis_proto::listing::{FileKind, NamePattern};
use portcullis_proto::path::VirtualPath;
use portcullis_proto::reply::{Reply, ReplyCode};

use super::error::SessionError;
use super::job::Job;
use super::listing::{ListFormat, Listing, PermFacts, SortBudget};
use super::start::Started;
use super::{Armed, Core};
use crate::access::Change;
use crate::storage::{DirEntry, StorageError, WriteMode};

/// What a transfer command returns: the transfer to run, or an error.
type Answer = Result<Started, SessionError>;

/// Which listing a LIST-family command produces.
#[derive(Debug, Clone, Copy)]
pub(super) enum ListKind {
    Long,
    Names,
}

fn list_format(kind: ListKind, prefix: String) -> ListFormat {
    match kind {
        ListKind::Long => ListFormat::Long {
            now: SystemTime::now(),
        },
        ListKind::Names => ListFormat::Names { prefix },
    }
}

/// The directory part (as the client wrote it, up to its last `/`) and the
/// pattern of an argument whose last component holds wildcards; `None` for
/// a plain name. `path` is the argument resolved: its last component must
/// be the argument's own (not one left by `..` or a trailing slash).
fn wildcard<'a>(arg: &'a str, path: &VirtualPath) -> Option<(&'a str, NamePattern)> {
    let (dir, last) = match arg.rfind('/') {
        Some(i) => (&arg[..=i], &arg[i + 1..]),
        None => ("", arg),
    };
    if path.file_name() != Some(last) {
        return None;
    }
    Some((dir, NamePattern::new(last)?))
}

/// The entries a LIST or NLST of `dir` shows: NLST needs only the names.
async fn list_entries(
    storage: &dyn crate::storage::Storage,
    dir: &VirtualPath,
    kind: ListKind,
) -> crate::storage::Result<BoxStream<'static, crate::storage::Result<DirEntry>>> {
    match kind {
        ListKind::Names => storage.list_names(dir).await,
        ListKind::Long => storage.list(dir).await,
    }
}

/// How many unique names STOU tries before giving up.
const STOU_TRIES: u32 = 100;

impl Core {
    /// LIST and NLST of a directory, a file, or (as vsftpd and ProFTPD)
    /// the names of one directory that match wildcards in the argument's
    /// last component (`*.txt`, `sub/?.log`). NLST names carry the
    /// argument's directory part, as those servers send them, so that a
    /// client can fetch each name as it is (`mget sub/*`).
    pub(super) async fn list(&mut self, args: ListArgs, kind: ListKind) -> Answer {
        let arg = args.path.as_deref().unwrap_or(".");
        let (ctx, path) = self.ctx_path(arg, |p| p.read, "list")?;
        let pattern = wildcard(arg, &path);
        let (job, shown) = match (ctx.storage.metadata(&path).await, pattern) {
            (Ok(meta), _) if meta.kind == FileKind::Dir => {
                // Only NLST names carry the directory, and only one the
                // client named.
                let prefix = match arg.trim_end_matches('/') {
                    _ if matches!(kind, ListKind::Long) || args.path.is_none() || arg == "." => {
                        String::new()
                    }
                    "" => "/".to_owned(),
                    dir => format!("{dir}/"),
                };
                let entries = list_entries(&*ctx.storage, &path, kind).await?;
                (
                    self.list_job(entries, list_format(kind, prefix), args.all),
                    path,
                )
            }
            (Err(StorageError::NotFound), Some((dir, pattern))) => {
                let parent = path.parent();
                let entries = match ctx.storage.metadata(&parent).await {
                    Ok(m) if m.kind == FileKind::Dir => {
                        list_entries(&*ctx.storage, &parent, kind).await
                    }
                    Ok(_) => Err(StorageError::NotADirectory),
                    Err(e) => Err(e),
                };
                let entries = match entries {
                    Ok(e) => e.filter(move |e| {
                        std::future::ready(e.as_ref().map_or(true, |e| pattern.matches(&e.name)))
                    }),
                    Err(e) => return Err(e.into()),
                };
                // The pattern decides about dot files, as in a shell.
                let format = list_format(kind, dir.to_owned());
                (self.list_job(entries.boxed(), format, true), parent)
            }
            // One path: a file, a link to one, or a broken link (which
            // `ls -l` lists too).
            (Ok(_) | Err(StorageError::NotFound), _) => {
                let e = match ctx.storage.entry(&path).await {
                    Ok(e) => e,
                    Err(e) => return Err(e.into()),
                };
                let mut line = String::new();
                match kind {
                    // NLST of a file names it as the client did.
                    ListKind::Names => line.push_str(arg),
                    // A link is shown as the link, with its target.
                    ListKind::Long => list_format(kind, String::new()).write_line(
                        &mut line,
                        &e.name,
                        e.target.as_deref(),
                        &e.meta,
                    ),
                }
                (Job::Bytes(line.into_bytes()), path)
            }
            (Err(e), _) => return Err(e.into()),
        };
        // The record names the verb the client sent.
        let verb = match kind {
            ListKind::Names => "NLST",
            ListKind::Long => "LIST",
        };
        Ok(self.start(
            job,
            verb,
            shown.to_string(),
            "Here comes the directory listing.",
        ))
    }

    pub(super) async fn mlsd(&mut self, arg: Option<String>) -> Answer {
        let (ctx, path) = self.ctx_path(arg.as_deref().unwrap_or("."), |p| p.read, "list")?;
        let meta = match ctx.storage.metadata(&path).await {
            Ok(m) if m.kind == FileKind::Dir => m,
            // RFC 3659 section 7.2.1: MLSD of a non-directory is 501.
            Ok(_) => {
                return Ok(Started::Reply(Reply::new(
                    ReplyCode::BAD_ARGUMENT,
                    "Not a directory; use MLST for a file.",
                )))
            }
            Err(e) => return Err(e.into()),
        };
        let entries = match ctx.storage.list(&path).await {
            Ok(e) => e,
            Err(e) => return Err(e.into()),
        };
        let format = ListFormat::Mlsd {
            facts: self.mlst_facts.clone(),
            perm: PermFacts::new(&ctx.account.permissions, ctx.account.anonymous),
            cdir: Some(meta),
        };
        let job = self.list_job(entries, format, true);
        Ok(self.start(
            job,
            "MLSD",
            path.to_string(),
            "Here comes the directory listing.",
        ))
    }

    pub(super) async fn retr(&mut self, arg: &str, armed: Armed) -> Answer {
        let offset = match armed {
            Armed::Restart(n) => n,
            _ => 0,
        };
        let (ctx, path) = self.ctx_path(arg, |p| p.read, "download")?;
        self.ask_hooks(crate::options::EventKind::PreDownload, &path)
            .await?;
        // One open: a local file says its size (and refuses to be a
        // directory or a special file) as it is opened, and so does an
        // object's GET.
        let reader = match ctx.storage.open_read(&path, offset).await {
            Ok(r) => r,
            Err(StorageError::IsADirectory) => return Err(SessionError::NotPlainFile),
            Err(e) => return Err(e.into()),
        };
        let size = match reader.size() {
            Some(size) => size,
            None => match ctx.storage.metadata(&path).await {
                Ok(m) if m.kind == FileKind::File => m.size,
                Ok(_) => return Err(SessionError::NotPlainFile),
                Err(e) => return Err(e.into()),
            },
        };
        if offset > size {
            return Err(SessionError::RestPastEnd { offset, size });
        }
        let job = Job::Retr {
            reader,
            ascii: self.transfer_type == TransferType::Ascii,
            offset,
        };
        let text = format!(
            "Opening {} mode data connection for {path} ({} bytes).",
            self.mode_name(),
            size - offset
        );
        Ok(self.start(job, "RETR", path.to_string(), &text))
    }

    pub(super) async fn stor(&mut self, arg: &str, armed: Armed) -> Answer {
        let mode = match armed {
            Armed::Restart(n) => WriteMode::Resume(n),
            _ => WriteMode::Replace,
        };
        self.upload(arg, mode, "STOR").await
    }

    pub(super) async fn appe(&mut self, arg: &str) -> Answer {
        self.upload(arg, WriteMode::Append, "APPE").await
    }

    /// STOU (RFC 959, RFC 1123 section 4.1.2.9): store under a name that does
    /// not exist yet, derived from the argument, and say which.
    pub(super) async fn stou(&mut self, arg: Option<String>) -> Answer {
        let base = arg.unwrap_or_else(|| "stou".to_owned());
        for i in 0..STOU_TRIES {
            let name = if i == 0 {
                base.clone()
            } else {
                format!("{base}.{i}")
            };
            match self.prepare_upload(&name, WriteMode::CreateNew).await {
                Ok((path, upload)) => {
                    let job = Job::Stor {
                        upload,
                        ascii: self.transfer_type == TransferType::Ascii,
                    };
                    let shown = path.file_name().unwrap_or("").to_owned();
                    return Ok(self.start(
                        job,
                        "STOU",
                        path.to_string(),
                        &format!("FILE: {shown}"),
                    ));
                }
                Err(SessionError::Storage(StorageError::AlreadyExists)) => continue,
                Err(e) => return Err(e),
            }
        }
        Err(SessionError::NoUniqueName)
    }

    async fn upload(&mut self, arg: &str, mode: WriteMode, verb: &'static str) -> Answer {
        let (path, upload) = self.prepare_upload(arg, mode).await?;
        let job = Job::Stor {
            upload,
            ascii: self.transfer_type == TransferType::Ascii,
        };
        let text = format!("Ok to send data ({} mode).", self.mode_name());
        Ok(self.start(job, verb, path.to_string(), &text))
    }

    /// Check permissions and open the upload. What the account may do is
    /// the one decision (`ctx_change`, then `may_replace` once the
    /// storage's capabilities allowed the mode); an account that may not
    /// replace the file gets a mode in which the storage refuses to, even
    /// for a file another session creates during the upload.
    async fn prepare_upload(
        &self,
        arg: &str,
        mode: WriteMode,
    ) -> Result<(VirtualPath, Box<dyn crate::storage::Upload>), SessionError> {
        let change = match mode {
            WriteMode::Replace | WriteMode::NoClobber | WriteMode::Resume(0) => Change::Store,
            WriteMode::Resume(_) => Change::Resume,
            WriteMode::CreateNew => Change::StoreUnique,
            WriteMode::Append => Change::Append,
        };
        let (ctx, path) = self.ctx_change(arg, change)?;
        let caps = ctx.storage.capabilities();
        match mode {
            // APPE was refused in dispatch where the storage cannot append
            // (`Core::capable`).
            // REST 0 + STOR is a plain STOR, which every storage can do.
            WriteMode::Resume(n) if n > 0 && !caps.resume_upload => {
                return Err(SessionError::Unsupported("REST before STOR"))
            }
            _ => {}
        }
        let may_replace = Self::may_replace(ctx, &path, change).await?;
        if let WriteMode::Resume(offset) = mode {
            let size = match ctx.storage.metadata(&path).await {
                Ok(m) => m.size,
                Err(StorageError::NotFound) => 0,
                Err(e) => return Err(e.into()),
            };
            if offset > size {
                return Err(SessionError::RestPastEnd { offset, size });
            }
        }
        let mode = match mode {
            WriteMode::Replace if !may_replace => WriteMode::NoClobber,
            // Nothing to append to or resume (checked above): a new file.
            WriteMode::Append | WriteMode::Resume(_) if !may_replace => WriteMode::CreateNew,
            m => m,
        };
        self.ask_hooks(crate::options::EventKind::PreUpload, &path)
            .await?;
        let lease =
            super::quota::begin_upload(ctx, &path, mode, self.shared.options.atomic_uploads)
                .await?;
        let upload = ctx.storage.open_write(&path, mode).await?;
        // A digest covers a whole file: not an append or a resumed upload.
        let whole = matches!(
            mode,
            WriteMode::Replace | WriteMode::NoClobber | WriteMode::CreateNew | WriteMode::Resume(0)
        );
        let upload = match self.shared.options.limits.hash_on_upload && whole {
            true => super::digest::DigestUpload::wrap(upload, ctx.storage.clone(), path.clone()),
            false => upload,
        };
        let upload = match lease {
            Some(lease) => crate::quota::QuotaUpload::wrap(upload, lease),
            None => upload,
        };
        let upload = match (&self.shared.hooks, self.user_name()) {
            (Some(hooks), Some(user)) if hooks.journals_uploads() => {
                super::intent::IntentUpload::wrap(
                    upload,
                    hooks.clone(),
                    self.origin().clone(),
                    user.to_owned(),
                    path.to_string(),
                )
            }
            _ => upload,
        };
        Ok((path, upload))
    }

    /// A listing transfer of `entries`.
    fn list_job(
        &self,
        entries: futures_util::stream::BoxStream<'static, crate::storage::Result<DirEntry>>,
        format: ListFormat,
        all: bool,
    ) -> Job {
        Job::List(Listing {
            entries,
            format,
            all,
            budget: SortBudget::global(),
        })
    }

    fn mode_name(&self) -> &'static str {
        match self.transfer_type {
            TransferType::Ascii => "ASCII",
            TransferType::Image => "BINARY",
        }
    }
}
