//! The session's side of quotas (`crate::quota`): what an upload's target
//! was before it (so its lease can account for it), what DELE and RNTO
//! give back, and the commands that ask: ALLO, AVBL, SITE QUOTA and the
//! lines STAT shows.

use portcullis_proto::listing::FileKind;
use portcullis_proto::path::VirtualPath;
use portcullis_proto::reply::{Reply, ReplyCode};

use super::error::SessionError;
use super::{Core, UserCtx};
use crate::options::QuotaLimits;
use crate::quota::{AccountQuota, Lease, QuotaError, Target, Usage};
use crate::storage::{StorageError, WriteMode};

impl From<QuotaError> for SessionError {
    fn from(e: QuotaError) -> Self {
        match e {
            QuotaError::Exceeded => SessionError::Storage(StorageError::QuotaExceeded),
            QuotaError::Counting => SessionError::QuotaCounting,
        }
    }
}

/// The size of the file at `path`, `None` if there is none (or it is not
/// a plain file).
pub(super) async fn file_size(
    ctx: &UserCtx,
    path: &VirtualPath,
) -> Result<Option<u64>, SessionError> {
    match ctx.storage.metadata(path).await {
        Ok(m) if m.kind == FileKind::File => Ok(Some(m.size)),
        Ok(_) | Err(StorageError::NotFound) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Start the accounting of an upload to `path` in `mode` (the mode the
/// storage will be asked for): `None` for an account without a quota.
/// Waits for the root's first count (450 if it takes too long); a new
/// file past `quota_files` is 552 here, before the 150.
///
/// The accounting follows what the storage really does with `mode`: a
/// local root without `server.atomic_uploads` truncates and writes a STOR
/// in place (what it wrote stays if the upload is given up), and a storage
/// that cannot write into a file (an object store) writes REST 0 + STOR
/// whole and publishes it at the commit (the old file stays if it is
/// given up).
pub(super) async fn begin_upload(
    ctx: &UserCtx,
    path: &VirtualPath,
    mode: WriteMode,
    atomic_uploads: bool,
) -> Result<Option<Lease>, SessionError> {
    let Some(q) = &ctx.quota else {
        return Ok(None);
    };
    q.ready().await?;
    let in_place = ctx.storage.capabilities().resume_upload;
    let mode = match mode {
        WriteMode::Replace if in_place && !atomic_uploads => WriteMode::Resume(0),
        WriteMode::Resume(0) if !in_place => WriteMode::Replace,
        m => m,
    };
    let target = match (mode, file_size(ctx, path).await?) {
        (WriteMode::CreateNew, _) => Target::New,
        (WriteMode::Append | WriteMode::Resume(_), None) => Target::Created,
        (WriteMode::Replace | WriteMode::NoClobber, None) => Target::New,
        (WriteMode::Replace | WriteMode::NoClobber, Some(old)) => Target::Replaces(old),
        (WriteMode::Append, Some(size)) => Target::InPlace { size, kept: size },
        (WriteMode::Resume(offset), Some(size)) => Target::InPlace {
            size,
            kept: offset.min(size),
        },
    };
    Ok(Some(q.begin(target).await?))
}

/// A file of `size` bytes is gone (DELE, or replaced by RNTO).
pub(super) fn removed(ctx: &UserCtx, size: Option<u64>) {
    if let (Some(q), Some(size)) = (&ctx.quota, size) {
        q.removed(size);
    }
}

fn limit(l: Option<u64>) -> String {
    l.map_or_else(|| "unlimited".to_owned(), |n| n.to_string())
}

/// The lines that describe `q` with usage `u` (SITE QUOTA: the fleet's;
/// STAT: this node's, which asks Redis nothing).
fn describe(q: &AccountQuota, u: Usage) -> Vec<String> {
    let l: QuotaLimits = q.limits();
    vec![
        format!(
            " Bytes: {} used, {} in transfer, limit {}",
            u.bytes,
            u.reserved_bytes,
            limit(l.bytes)
        ),
        format!(
            " Files: {} used, {} in transfer, limit {}",
            u.files,
            u.reserved_files,
            limit(l.files)
        ),
        format!(" Bytes left: {}", limit(u.bytes_left(&l))),
    ]
}

impl Core {
    /// ALLO n [R m] (RFC 959 section 4.1.3): 552 at once when n bytes
    /// would not fit the quota now, 202 otherwise (storage needs no
    /// allocation here).
    pub(super) async fn allo(&self, bytes: Option<u64>) -> Result<Reply, SessionError> {
        let ctx = self.user_ctx()?;
        if let (Some(q), Some(n)) = (&ctx.quota, bytes) {
            q.ready().await?;
            if !q.fits(n).await {
                return Err(StorageError::QuotaExceeded.into());
            }
        }
        Ok(Reply::new(
            ReplyCode::SUPERFLUOUS,
            "ALLO not needed on this server.",
        ))
    }

    /// AVBL [path] (draft-peterson-streamlined-ftp-command-extensions,
    /// section 4): 213 and the bytes that may still be stored; the path,
    /// if given, must be a directory (the quota is the account's, so the
    /// answer is the same for every one). 550 without a byte quota: the
    /// space is not known.
    pub(super) async fn avbl(&self, arg: Option<String>) -> Result<Reply, SessionError> {
        let ctx = self.user_ctx()?;
        if let Some(arg) = arg {
            let path = self.resolve(&arg)?;
            if ctx.storage.metadata(&path).await?.kind != FileKind::Dir {
                return Err(StorageError::NotADirectory.into());
            }
        }
        let left = match &ctx.quota {
            Some(q) => {
                q.ready().await?;
                q.usage_now().await.bytes_left(&q.limits())
            }
            None => None,
        };
        match left {
            Some(n) => Ok(Reply::new(ReplyCode::FILE_STATUS, n.to_string())),
            None => Ok(Reply::new(
                ReplyCode::FILE_UNAVAILABLE,
                "No quota: the space available is not known.",
            )),
        }
    }

    /// SITE QUOTA: the account's limits and usage.
    pub(super) async fn site_quota(&self) -> Result<Reply, SessionError> {
        let ctx = self.user_ctx()?;
        let Some(q) = &ctx.quota else {
            return Ok(Reply::new(ReplyCode::OK, "No quota for this account."));
        };
        q.ready().await?;
        let mut lines = vec![format!("Quota for {}:", ctx.account.name)];
        lines.extend(describe(q, q.usage_now().await));
        lines.push("End of quota".to_owned());
        Ok(Reply::multi(ReplyCode::OK, lines))
    }

    /// STAT's quota lines (none before login or without a quota).
    pub(super) fn quota_status(&self) -> Vec<String> {
        match self.user_ctx().ok().and_then(|c| c.quota.as_ref()) {
            Some(q) => describe(q, q.usage())
                .into_iter()
                .map(|l| format!(" Quota {}", l.trim_start()))
                .collect(),
            None => Vec::new(),
        }
    }
}
