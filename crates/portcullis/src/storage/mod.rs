//! Storage back-ends: the [`Storage`] trait that the session talks to, its
//! implementations, and the [`Factory`] that turns an account's
//! [`RootSpec`] into one: [`local`] (a directory on the local filesystem)
//! and [`object`] (a bucket and prefix of an object store: no real
//! directories, no append, multipart uploads, ranged reads), which says
//! what it cannot do in its [`Capabilities`], over a provider's client
//! ([`s3`], an S3-compatible store; [`azure`], Azure Blob Storage);
//! [`allowed`], where
//! a root that an account back end answered may be; and [`stores`], what
//! the layers above ask of object stores without naming a provider.

pub mod allowed;
pub mod azure;
pub mod local;
pub mod object;
pub mod s3;
pub mod stores;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use portcullis_proto::path::VirtualPath;
use tokio::io::{AsyncRead, AsyncWrite};

pub use allowed::AllowedRoots;
pub use azure::{AzureOptions, AzureRoot, AzureSettings};
pub use local::LocalStorage;
pub use object::wait_for_aborts;
pub use s3::{S3Options, S3Root, S3Settings};
pub use stores::StoreOptions;

pub use portcullis_proto::listing::{FileKind, Metadata};

/// Where an account's files are, as the configuration names them: a
/// local directory, or an object-store URL `s3://BUCKET/PREFIX` or
/// `az://CONTAINER/PREFIX`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RootSpec {
    Local(PathBuf),
    S3(S3Root),
    Azure(AzureRoot),
}

impl RootSpec {
    /// A root as the configuration or the command line writes it: a
    /// string starting with `s3://` or `az://` is an object-store URL
    /// (read with `profile`, `users[].storage_profile`), anything else a
    /// local path.
    pub fn parse(s: &Path, profile: Option<String>) -> Result<RootSpec, String> {
        let Some(t) = s.to_str() else {
            return Ok(RootSpec::Local(s.to_owned()));
        };
        if let Some(r) = S3Root::parse(t, profile.clone())? {
            return Ok(RootSpec::S3(r));
        }
        if let Some(r) = AzureRoot::parse(t, profile)? {
            return Ok(RootSpec::Azure(r));
        }
        Ok(RootSpec::Local(s.to_owned()))
    }

    /// The local directory, for the checks that only a filesystem needs.
    pub fn local(&self) -> Option<&Path> {
        match self {
            RootSpec::Local(p) => Some(p),
            RootSpec::S3(_) | RootSpec::Azure(_) => None,
        }
    }
}

impl fmt::Display for RootSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootSpec::Local(p) => p.display().fmt(f),
            RootSpec::S3(r) => r.fmt(f),
            RootSpec::Azure(r) => r.fmt(f),
        }
    }
}

/// What a back end can do besides reading, writing, listing, creating and
/// removing. FEAT, HELP and the handlers ask; what the account's storage
/// cannot do is answered 502, saying so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// APPE.
    pub append: bool,
    /// REST + STOR: write from an offset of an existing file.
    pub resume_upload: bool,
    /// MFMT.
    pub set_times: bool,
    /// SITE CHMOD.
    pub chmod: bool,
    /// RNFR/RNTO of a directory.
    pub rename_dirs: bool,
}

impl Capabilities {
    /// Can this storage do what a verb of the table needs? (FEAT and
    /// HELP offer only the verbs it can.)
    pub fn has(&self, need: portcullis_proto::verbs::Capability) -> bool {
        use portcullis_proto::verbs::Capability;
        match need {
            Capability::Append => self.append,
            Capability::SetTimes => self.set_times,
            // Every storage can be read; whether hashing is on is the
            // server's setting (`limits.hash`), asked by the session.
            Capability::Hash => true,
        }
    }

    /// A filesystem: everything.
    pub const ALL: Capabilities = Capabilities {
        append: true,
        resume_upload: true,
        set_times: true,
        chmod: true,
        rename_dirs: true,
    };
}

/// How uploads to local roots are made (`server.atomic_uploads`,
/// `server.fsync_uploads`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalPolicy {
    pub atomic: bool,
    pub fsync: bool,
}

/// Turns root specs into storage. Roots opened at start-up (before the
/// privilege drop, so that a root only root can open still serves) are
/// kept and handed out again; any other is opened when an account that
/// names it logs in (an account from a back end, known only at run time).
#[derive(Debug, Clone)]
pub struct Factory {
    opened: HashMap<RootSpec, Arc<dyn Storage>>,
    local: LocalPolicy,
    stores: StoreOptions,
}

impl Factory {
    pub fn new(
        local: LocalPolicy,
        stores: StoreOptions,
        opened: impl IntoIterator<Item = (RootSpec, Arc<dyn Storage>)>,
    ) -> Self {
        Factory {
            opened: opened.into_iter().collect(),
            local,
            stores,
        }
    }

    /// The storage of `spec`.
    pub fn open(&self, spec: &RootSpec) -> std::io::Result<Arc<dyn Storage>> {
        if let Some(s) = self.opened.get(spec) {
            return Ok(s.clone());
        }
        match spec.local() {
            Some(dir) => Ok(Arc::new(Self::open_local(dir, self.local)?)),
            None => Ok(self.stores.open(spec)?.storage()),
        }
    }

    /// A local directory with the server's upload policy.
    pub fn open_local(dir: &Path, policy: LocalPolicy) -> std::io::Result<LocalStorage> {
        Ok(LocalStorage::new(dir)?
            .with_atomic_uploads(policy.atomic)
            .with_fsync(policy.fsync))
    }
}

/// One entry of a directory listing. `meta` describes the entry itself
/// (a symbolic link is not followed).
#[derive(Debug, Clone)]
pub struct DirEntry {
    pub name: String,
    pub meta: Metadata,
    /// A symbolic link's contents, for `name -> target`. Listings carry
    /// only links that lead somewhere beneath the root (or would, were
    /// their target there); links that lead out of it are left out.
    pub target: Option<String>,
}

/// How an upload opens its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// STOR: create or replace. Written to a temporary name and renamed into
    /// place by [`Upload::commit`], so a failed upload never replaces a good file.
    Replace,
    /// STOR by an account that may not overwrite files: written like
    /// `Replace`, and published only if no file of that name exists by then
    /// (a rename that refuses to replace, so a file another session created
    /// meanwhile is kept and the upload fails with `AlreadyExists`).
    NoClobber,
    /// STOU: create a file that must not exist yet.
    CreateNew,
    /// APPE: append to the file (created if missing).
    Append,
    /// REST n + STOR: keep the first n bytes, write from offset n.
    Resume(u64),
}

/// Whether a rename may replace what has the target's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RenameMode {
    /// RNTO by an account that may overwrite: as rename(2), a file of the
    /// target's name is replaced.
    Replace,
    /// RNTO by an account that may not: the rename refuses (`AlreadyExists`)
    /// when the target's name exists when it is carried out, not only when
    /// the session checked (a file another session created meanwhile is
    /// kept). Back ends say in their docs how close they come.
    NoClobber,
}

/// Errors of the storage layer. The reply code each one produces is decided in
/// one place, `session::error::reply_for`; it is noted here per variant (in a
/// transfer, after its 150, 550 becomes 451).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// 550: no such file or directory.
    #[error("no such file or directory")]
    NotFound,
    /// 550: the object exists (MKD, STOU, RNTO onto a directory).
    #[error("file exists")]
    AlreadyExists,
    /// 550: the path names a file where a directory is required.
    #[error("not a directory")]
    NotADirectory,
    /// 550: the path names a directory where a file is required.
    #[error("is a directory")]
    IsADirectory,
    /// 550: RMD of a directory that still has entries.
    #[error("directory not empty")]
    DirectoryNotEmpty,
    /// 550: the filesystem refused (permissions, a symbolic link loop).
    #[error("permission denied")]
    PermissionDenied,
    /// 550: a symbolic link on the way leads out of the user's root (an
    /// absolute link, or one that climbs above the root); never followed.
    #[error("symbolic link leads outside the root")]
    OutsideRoot,
    /// 552: disk full (or the file system's own quota).
    #[error("insufficient storage space")]
    NoSpace,
    /// 552 "Requested file action aborted. Exceeded storage allocation."
    /// (RFC 959): the write would pass the account's quota (`quota_bytes`,
    /// `quota_files`).
    #[error("account quota exceeded")]
    QuotaExceeded,
    /// 553: the name is not allowed here (e.g. a reserved temporary name).
    #[error("file name not allowed")]
    BadName,
    /// 553: a name, or the whole path, longer than the filesystem takes
    /// (ENAMETOOLONG): the client's mistake, not a failure of the server.
    #[error("file name too long")]
    NameTooLong,
    /// 550: a rename that would move a directory beneath itself (EINVAL
    /// from rename(2)).
    #[error("cannot move a directory into itself")]
    IntoItself,
    /// 451: the object store failed the request, timed out, throttled
    /// or could not be reached; the message goes to the log.
    #[error("object store unavailable: {0}")]
    Unavailable(String),
    /// 550 with its own text: something this storage cannot do with this
    /// object (e.g. a server-side copy of an object over 5 GiB).
    #[error("{0}")]
    Refused(&'static str),
    /// 451: anything else, a real failure of the storage (EIO, a
    /// filesystem gone read-only, ...); the message goes to the log, not
    /// the client. Only these count as `kind="io"` in the metrics: client
    /// mistakes have variants of their own.
    #[error("local error: {0}")]
    Io(#[from] std::io::Error),
}

impl StorageError {
    /// Classify an `io::Error` into the variant a client should be told about.
    pub fn from_io(e: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        // A storage error that travelled through an `AsyncRead` or
        // `AsyncWrite` (an object store's stream or upload) is itself.
        let kind = e.kind();
        let e = if e.get_ref().is_some_and(|i| i.is::<StorageError>()) {
            match e.into_inner().map(|i| i.downcast::<StorageError>()) {
                Some(Ok(s)) => return *s,
                Some(Err(other)) => std::io::Error::new(kind, other),
                None => std::io::Error::from(kind),
            }
        } else {
            e
        };
        match e.kind() {
            K::NotFound => StorageError::NotFound,
            K::AlreadyExists => StorageError::AlreadyExists,
            // cap-std's own refusal of a path that would leave the root
            // (where it resolves paths itself rather than with openat2).
            K::PermissionDenied
                if e.raw_os_error().is_none()
                    && e.to_string() == "a path led outside of the filesystem" =>
            {
                StorageError::OutsideRoot
            }
            K::PermissionDenied => StorageError::PermissionDenied,
            K::NotADirectory => StorageError::NotADirectory,
            K::IsADirectory => StorageError::IsADirectory,
            K::DirectoryNotEmpty => StorageError::DirectoryNotEmpty,
            K::StorageFull | K::QuotaExceeded => StorageError::NoSpace,
            _ => match e.raw_os_error() {
                // ELOOP (40): a symlink loop.
                Some(40) => StorageError::PermissionDenied,
                // EXDEV (18): openat2's RESOLVE_BENEATH refusing a path
                // that would lead out of the root.
                Some(18) => StorageError::OutsideRoot,
                // ENAMETOOLONG (36): a component over NAME_MAX or a path
                // over PATH_MAX, as the client sent it.
                Some(36) => StorageError::NameTooLong,
                _ => StorageError::Io(e),
            },
        }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// A readable object, positioned at the requested offset. What it reads
/// from is the back end's business: the session reads it as an
/// `AsyncRead`, and asks [`ReadStream::into_plain_file`] whether it can
/// take a download's fast path instead.
pub struct ReadStream(Source);

enum Source {
    /// A local file. `size` is its length when it was opened.
    File { file: tokio::fs::File, size: u64 },
    /// Any other source of bytes. `size` is the whole object's length
    /// when opening it told (an object store's GET does), so that the
    /// session needs no second request to say it.
    Stream {
        body: Box<dyn AsyncRead + Send + Unpin>,
        size: Option<u64>,
    },
}

/// What a stream over a plain local file offers a download's fast path
/// (`sendfile(2)` from the REST offset): the file and its length when it
/// was opened.
pub struct PlainFile {
    pub file: tokio::fs::File,
    pub size: u64,
}

impl ReadStream {
    /// A local file of `size` bytes when opened, positioned at the offset
    /// asked for: a plain binary download may send it with `sendfile(2)`.
    pub fn file(file: tokio::fs::File, size: u64) -> Self {
        ReadStream(Source::File { file, size })
    }

    /// Any other source of bytes (an object store's body), of `size`
    /// bytes in all when opening it told: always read through the copy
    /// loop.
    pub fn stream(body: Box<dyn AsyncRead + Send + Unpin>, size: Option<u64>) -> Self {
        ReadStream(Source::Stream { body, size })
    }

    /// The whole file's or object's length, when opening it told.
    pub fn size(&self) -> Option<u64> {
        match &self.0 {
            Source::File { size, .. } => Some(*size),
            Source::Stream { size, .. } => *size,
        }
    }

    /// The stream's fast path, if it has one: the plain local file under
    /// it, for `sendfile(2)`; otherwise the stream back, to be copied.
    /// A move, with no I/O.
    pub fn into_plain_file(self) -> std::result::Result<PlainFile, ReadStream> {
        match self.0 {
            Source::File { file, size } => Ok(PlainFile { file, size }),
            other => Err(ReadStream(other)),
        }
    }
}

impl AsyncRead for ReadStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match &mut self.get_mut().0 {
            Source::File { file, .. } => std::pin::Pin::new(file).poll_read(cx, buf),
            Source::Stream { body, .. } => std::pin::Pin::new(body).poll_read(cx, buf),
        }
    }
}

/// An upload in progress. Dropping it without [`Upload::commit`] aborts it: the
/// temporary data is removed and an existing file is left as it was (for
/// `Append`/`Resume` the bytes written so far stay, as the client asked to
/// write in place).
#[async_trait]
pub trait Upload: AsyncWrite + Send + Unpin {
    /// Flush, make durable and publish the upload under its final name.
    async fn commit(self: Box<Self>) -> Result<()>;

    /// Give the upload up: nothing is published, and what it had written
    /// is removed (or, in place, left as written). Transfers that fail
    /// call it and wait for it; one cancelled outright (ABOR, the session
    /// ending) drops the upload instead, and `Drop` must then clean up on
    /// its own (a back end that needs I/O for it spawns that work).
    async fn abort(self: Box<Self>) -> Result<()> {
        drop(self);
        Ok(())
    }

    /// Write a whole buffer, taking it over, and give back an empty buffer
    /// to fill next. Back-ends that write from their own buffers can keep
    /// this one and skip a copy; the default copies through `AsyncWrite`.
    async fn write_owned(&mut self, mut buf: Vec<u8>) -> std::io::Result<Vec<u8>> {
        use tokio::io::AsyncWriteExt;
        self.write_all(&buf).await?;
        buf.clear();
        Ok(buf)
    }

    /// Whether [`Upload::direct_file`] can give a file now: the upload's
    /// fast path, asked when a transfer's way is chosen (a plain,
    /// unthrottled binary upload then goes to the blocking pump with
    /// `splice(2)`). No I/O; `false` for back-ends without a local file.
    fn has_direct_file(&self) -> bool {
        false
    }

    /// The file the upload goes to, for a thread that writes it directly
    /// with blocking calls (a second handle on it: writes through it count
    /// as the upload's own, and `commit` still fsyncs and publishes). Only
    /// before anything was written; `None` for back-ends without a local
    /// file, which then get the bytes through `write_owned`.
    fn direct_file(&mut self) -> Option<std::fs::File> {
        None
    }

    /// Take the SHA-256 (lower-case hex) of the `size` bytes written
    /// (`limits.hash_on_upload`), just before [`Upload::commit`], so
    /// that the commit keeps it with what it publishes (an object's
    /// metadata). `false`: this back end keeps none this way, and the
    /// caller asks [`Storage::keep_digest`] after the commit (a local
    /// file's attribute).
    fn carry_digest(&mut self, _sha256: &str, _size: u64) -> bool {
        false
    }

    /// Where the SHA-256 this upload computes (`limits.hash_on_upload`)
    /// appears once it is committed, for the transfer's record; `None`
    /// for an upload that computes none.
    fn digest(&self) -> Option<std::sync::Arc<std::sync::OnceLock<String>>> {
        None
    }

    /// What a writer through [`Upload::direct_file`] must ask before each
    /// write (the account's quota); `None`: nothing to ask.
    fn budget(&self) -> Option<Arc<dyn Budget>> {
        None
    }
}

/// A SHA-256 kept with a file by `limits.hash_on_upload`, and what it
/// covers: it answers HASH only while the file's size and modification
/// time are still these (on an object store, the object's as the read
/// of the digest found them: see `storage/object/digest.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptDigest {
    /// Lower-case hex.
    pub sha256: String,
    pub size: u64,
    pub modified: std::time::SystemTime,
}

/// A limit on the bytes an upload may still write, asked by a writer
/// that bypasses the upload (the splice pump) before each write.
pub trait Budget: Send + Sync {
    /// Take `n` bytes about to be written; an error (carrying a
    /// [`StorageError`]) means they may not be.
    fn take(&self, n: u64) -> std::io::Result<()>;
}

/// A storage back-end, rooted at a user's virtual root. Every path is a
/// [`VirtualPath`], already normalised so that it cannot name anything above
/// the root; implementations must still make sure that symlinks inside the
/// root cannot lead out of it.
#[async_trait]
pub trait Storage: Send + Sync + fmt::Debug {
    /// What this back end can do (see [`Capabilities`]).
    fn capabilities(&self) -> Capabilities {
        Capabilities::ALL
    }
    /// Metadata of a path. Symlinks are followed as long as they stay inside
    /// the root; one that leads out of it is an error (OutsideRoot).
    async fn metadata(&self, path: &VirtualPath) -> Result<Metadata>;
    /// The path itself, not followed if it is a symbolic link, as a
    /// listing shows it (MLST, LIST and STAT of one path): its metadata and,
    /// for a link, its target. A link that leads out of the root is an
    /// error (OutsideRoot), as it is left out of listings.
    async fn entry(&self, path: &VirtualPath) -> Result<DirEntry>;
    /// The entries of a directory, streamed (never collected whole).
    async fn list(&self, path: &VirtualPath) -> Result<BoxStream<'static, Result<DirEntry>>>;
    /// The entries of a directory as [`list`](Storage::list) gives them,
    /// for a listing that shows only names (NLST): the same entries (a
    /// symbolic link that leads out of the root is left out), but `meta`
    /// need hold only the kind. Defaults to `list`; the local back end
    /// takes the kind from the directory read and stats only links.
    async fn list_names(&self, path: &VirtualPath) -> Result<BoxStream<'static, Result<DirEntry>>> {
        self.list(path).await
    }
    /// Open a file for reading from `offset`.
    async fn open_read(&self, path: &VirtualPath, offset: u64) -> Result<ReadStream>;
    /// Open a file for writing.
    async fn open_write(&self, path: &VirtualPath, mode: WriteMode) -> Result<Box<dyn Upload>>;
    async fn mkdir(&self, path: &VirtualPath) -> Result<()>;
    async fn rmdir(&self, path: &VirtualPath) -> Result<()>;
    async fn remove_file(&self, path: &VirtualPath) -> Result<()>;
    /// RNFR/RNTO: give `from` the name `to`, replacing what has that name
    /// only in [`RenameMode::Replace`].
    async fn rename(&self, from: &VirtualPath, to: &VirtualPath, mode: RenameMode) -> Result<()>;
    /// Set the modification time of a file or directory (MFMT).
    async fn set_modified(&self, path: &VirtualPath, time: std::time::SystemTime) -> Result<()>;
    /// Set the permission bits (at most 0o777) of a file or directory
    /// (SITE CHMOD).
    async fn set_mode(&self, path: &VirtualPath, mode: u32) -> Result<()>;
    /// Keep `digest` with the file at `path` (`limits.hash_on_upload`),
    /// after its upload's commit; `Ok(false)` where this back end keeps
    /// none this way (the default; object stores keep it through
    /// [`Upload::carry_digest`] instead).
    async fn keep_digest(&self, _path: &VirtualPath, _digest: &KeptDigest) -> Result<bool> {
        Ok(false)
    }
    /// The digest kept with the file at `path`, if any; whether it still
    /// covers the file is the caller's to check.
    async fn kept_digest(&self, _path: &VirtualPath) -> Option<KeptDigest> {
        None
    }
}
