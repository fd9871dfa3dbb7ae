//! Object storage: a bucket (and key prefix) of an object store as a
//! user's root, over the `object_store` crate's traits, the same for
//! every provider. What differs between providers (the client, its
//! credentials and limits, conditional writes, directory markers and
//! other hand-signed requests, listing quirks, error codes) is behind
//! [`Provider`] ([`provider`]); the S3 provider is `storage/s3/`.
//! Nothing is staged on local disk: downloads stream a window of ranged
//! GETs ([`download`]), uploads stream into a single PUT or a multipart
//! upload ([`upload`]).
//!
//! Directories are key prefixes, as every console shows them: a path is
//! a directory when it is the root, when a marker object `DIR/` exists
//! (MKD makes one, as consoles do; the provider's request) or when any
//! key starts with `DIR/`. A key that is both an object and a prefix
//! (`a` and `a/b`) is listed twice, once as each. Listings are delimiter
//! listings, fetched and sent one page (1,000 keys) at a time ([`list`]);
//! a key put by another tool that cannot be a path (`d//x`) is left out,
//! with a warning (the provider reads that page itself). Deleting the
//! last object of a directory without a marker makes that directory
//! vanish, as it does in a console.
//!
//! What an object store cannot do is refused through [`Capabilities`]
//! (502, and not offered in FEAT or HELP): APPE, REST before STOR, MFMT,
//! SITE CHMOD. RNFR/RNTO of a file is a server-side copy then a delete
//! (objects over the provider's copy limit are refused with 550), a
//! conditional one for accounts that may not overwrite ([`rename`]); of
//! a directory, only an empty one (its marker moves), 550 otherwise.
//!
//! Every request is bounded: connecting and the wait for a response's
//! headers by `request_timeout` (requests that carry a body get one more
//! second per MiB), retries included; a download that stalls after its
//! headers falls under `limits.data_timeout` like any transfer.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures_util::stream::{BoxStream, TryStreamExt};
use object_store::path::Path as ObjPath;
use object_store::{Attribute, GetOptions, GetRange, ObjectMeta, ObjectStoreExt};
use portcullis_proto::path::VirtualPath;

use super::stores::OpenedStore;
use super::{
    Capabilities, DirEntry, FileKind, KeptDigest, Metadata, ReadStream, RenameMode, Result,
    Storage, StorageError, Upload, WriteMode,
};

mod aborts;
mod digest;
mod download;
mod errors;
mod list;
mod parts;
mod probe;
pub mod profile;
pub mod provider;
mod rename;
mod upload;
pub mod wire;

use probe::Found;

pub use aborts::wait_for_aborts;
pub use errors::{map_err, no_answer, Client, Store};
pub use parts::PartSchedule;
pub use profile::Profiles;
pub use provider::{Limits, Provider, RawPage};

/// What an object store can do besides reading, writing, listing and
/// removing: no appending, no writing at an offset, no times or modes.
/// Renaming a directory is offered, for empty ones (see the module).
pub(super) const CAPABILITIES: Capabilities = Capabilities {
    append: false,
    resume_upload: false,
    set_times: false,
    chmod: false,
    rename_dirs: true,
};

/// How one root's transfers and requests go (a provider's profile says).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// The bound on each request (see the module).
    pub request_timeout: Duration,
    /// GETs of one download at once; 1: one GET.
    pub download_streams: usize,
    /// The size of each ranged GET.
    pub download_chunk: u64,
    /// The first part's size.
    pub part_size: u64,
    /// Parts between two doublings of the part size.
    pub part_doubling: u64,
    /// Parts of one upload being sent at once.
    pub upload_streams: usize,
}

/// A bucket and prefix of an object store as a user's root.
#[derive(Debug)]
pub struct ObjectStorage {
    store: Arc<Store>,
    /// Key prefix without leading or trailing `/`; empty for the whole bucket.
    prefix: String,
    tuning: Tuning,
}

impl ObjectStorage {
    /// A root over `client`, the provider's client, under `prefix`.
    pub fn new(
        client: Arc<dyn Client>,
        provider: Arc<dyn Provider>,
        prefix: &str,
        tuning: Tuning,
    ) -> ObjectStorage {
        ObjectStorage {
            store: Arc::new(Store::new(client, provider)),
            prefix: prefix.trim_matches('/').to_owned(),
            tuning,
        }
    }

    fn provider(&self) -> &dyn Provider {
        self.store.provider()
    }

    /// The key of a path, without a trailing `/` (the prefix for the root).
    pub(in crate::storage) fn key(&self, path: &VirtualPath) -> Result<String> {
        let rel = path.relative();
        if rel.split('/').any(|c| c.chars().any(|ch| ch.is_control())) {
            return Err(StorageError::BadName);
        }
        Ok(match (self.prefix.as_str(), rel.as_str()) {
            (p, "") => p.to_owned(),
            ("", r) => r.to_owned(),
            (p, r) => format!("{p}/{r}"),
        })
    }

    fn location(&self, path: &VirtualPath) -> Result<ObjPath> {
        ObjPath::parse(self.key(path)?).map_err(|_| StorageError::BadName)
    }

    /// The prefix that lists a directory's contents: `KEY/`, or nothing
    /// for the root of a whole bucket.
    pub(in crate::storage) fn dir_prefix(&self, path: &VirtualPath) -> Result<Option<String>> {
        let k = self.key(path)?;
        Ok((!k.is_empty()).then(|| format!("{k}/")))
    }

    /// One request, bounded by `request_timeout`, its error mapped.
    async fn timed<T>(
        &self,
        f: impl std::future::Future<Output = object_store::Result<T>>,
    ) -> Result<T> {
        self.store.bounded(self.tuning.request_timeout, f).await
    }

    /// Delete the object at `loc` (DELE, and a rename's source): the
    /// provider's own request where it has one, else `object_store`'s.
    async fn delete_object(&self, loc: &ObjPath) -> Result<()> {
        match self.provider().delete(loc.as_ref()).await {
            Some(r) => r,
            None => self.timed(self.store.delete(loc)).await,
        }
    }

    fn location_or_root(&self, path: &VirtualPath) -> Result<ObjPath> {
        if self.key(path)?.is_empty() {
            Ok(ObjPath::default())
        } else {
            self.location(path)
        }
    }
}

/// A directory's metadata (prefixes have no time of their own; a marker's
/// is used where there is one).
fn dir_meta(modified: SystemTime) -> Metadata {
    Metadata {
        kind: FileKind::Dir,
        size: 0,
        modified,
        mode: 0o755,
        nlink: 2,
    }
}

fn file_meta(m: &ObjectMeta) -> Metadata {
    Metadata {
        kind: FileKind::File,
        size: m.size,
        modified: m.last_modified.into(),
        mode: 0o644,
        nlink: 1,
    }
}

#[async_trait]
impl Storage for ObjectStorage {
    fn capabilities(&self) -> Capabilities {
        CAPABILITIES
    }

    async fn metadata(&self, path: &VirtualPath) -> Result<Metadata> {
        match self.probe(path).await? {
            Found::File(m) => Ok(file_meta(&m)),
            Found::Dir(t) => Ok(dir_meta(t.unwrap_or(UNIX_EPOCH))),
            Found::Absent => Err(StorageError::NotFound),
        }
    }

    async fn entry(&self, path: &VirtualPath) -> Result<DirEntry> {
        let meta = self.metadata(path).await?;
        Ok(DirEntry {
            name: path.file_name().unwrap_or("/").to_owned(),
            meta,
            target: None,
        })
    }

    async fn list(&self, path: &VirtualPath) -> Result<BoxStream<'static, Result<DirEntry>>> {
        let dir = self.location_or_root(path)?;
        let prefix = self.dir_prefix(path)?;
        Ok(list::entries(
            self.store.clone(),
            prefix,
            dir,
            self.tuning.request_timeout,
        ))
    }

    async fn open_read(&self, path: &VirtualPath, offset: u64) -> Result<ReadStream> {
        if path.is_root() {
            return Err(StorageError::IsADirectory);
        }
        let loc = self.location(path)?;
        if offset > 0 {
            // A range from the end of the object is refused (416): a REST
            // to the end, or past it (answered 554 by the session), reads
            // nothing.
            match self.probe(path).await? {
                Found::File(m) if offset >= m.size => {
                    return Ok(ReadStream::stream(
                        Box::new(tokio::io::empty()),
                        Some(m.size),
                    ))
                }
                Found::File(_) => {}
                Found::Dir(_) => return Err(StorageError::IsADirectory),
                Found::Absent => return Err(StorageError::NotFound),
            }
        }
        if self.tuning.download_streams > 1 {
            let chunk = self.tuning.download_chunk;
            let limit = self.tuning.request_timeout;
            if let Some(got) = download::first(&self.store, &loc, offset, chunk, limit).await {
                let window = download::Window {
                    streams: self.tuning.download_streams,
                    chunk,
                };
                let got = got?;
                let size = Some(got.meta.size);
                let body = download::stream(self.store.clone(), loc, got, window, limit);
                return Ok(ReadStream::stream(
                    Box::new(tokio_util::io::StreamReader::new(body)),
                    size,
                ));
            }
        }
        // One GET of the rest of the object (or the error that says why
        // not, where the ranged GET could not tell).
        let opts = GetOptions {
            range: (offset > 0).then_some(GetRange::Offset(offset)),
            ..Default::default()
        };
        let got = match self.timed(self.store.get_opts(&loc, opts)).await {
            // No such object, or (s3s-fs, which keeps directories on disk)
            // a server error for a GET of a directory: a directory is 550.
            Err(e @ (StorageError::NotFound | StorageError::Unavailable(_))) => {
                return Err(match self.is_dir(path).await {
                    Ok(true) => StorageError::IsADirectory,
                    _ => e,
                });
            }
            r => r?,
        };
        let size = Some(got.meta.size);
        let body = got.into_stream().map_err({
            let store = self.store.clone();
            move |e| std::io::Error::other(store.map_err(e))
        });
        Ok(ReadStream::stream(
            Box::new(tokio_util::io::StreamReader::new(body)),
            size,
        ))
    }

    async fn open_write(&self, path: &VirtualPath, mode: WriteMode) -> Result<Box<dyn Upload>> {
        if path.is_root() {
            return Err(StorageError::IsADirectory);
        }
        let create = match mode {
            WriteMode::Replace | WriteMode::Resume(0) => false,
            WriteMode::NoClobber | WriteMode::CreateNew => true,
            // Refused before this by the capabilities.
            WriteMode::Append | WriteMode::Resume(_) => {
                return Err(StorageError::Refused(
                    "An object store cannot append to or write into an object.",
                ))
            }
        };
        let loc = self.location(path)?;
        match self.probe(path).await? {
            Found::Dir(_) => return Err(StorageError::IsADirectory),
            Found::File(_) if create => return Err(StorageError::AlreadyExists),
            Found::File(_) | Found::Absent => {}
        }
        let limits = self.provider().limits();
        Ok(Box::new(upload::ObjectUpload::new(
            self.store.clone(),
            loc,
            create,
            PartSchedule {
                first: self.tuning.part_size,
                every: self.tuning.part_doubling,
                max_part_size: limits.max_part_size,
                max_parts: limits.max_parts,
            },
            self.tuning.upload_streams,
            self.tuning.request_timeout,
        )))
    }

    async fn mkdir(&self, path: &VirtualPath) -> Result<()> {
        if !matches!(self.probe(path).await?, Found::Absent) {
            return Err(StorageError::AlreadyExists);
        }
        let parent = path.parent();
        if !parent.is_root() {
            match self.metadata(&parent).await?.kind {
                FileKind::Dir => {}
                _ => return Err(StorageError::NotADirectory),
            }
        }
        self.provider().put_marker(&self.key(path)?).await
    }

    async fn rmdir(&self, path: &VirtualPath) -> Result<()> {
        if path.is_root() {
            return Err(StorageError::PermissionDenied);
        }
        match self.probe(path).await? {
            Found::File(_) => return Err(StorageError::NotADirectory),
            Found::Absent => return Err(StorageError::NotFound),
            Found::Dir(_) => {}
        }
        if !self.peek(path, 2).await?.is_empty() {
            return Err(StorageError::DirectoryNotEmpty);
        }
        self.provider().delete_marker(&self.key(path)?).await
    }

    async fn remove_file(&self, path: &VirtualPath) -> Result<()> {
        if path.is_root() {
            return Err(StorageError::IsADirectory);
        }
        // Object stores answer a DELETE of a missing key with success.
        match self.probe(path).await? {
            Found::File(_) => {}
            Found::Dir(_) => return Err(StorageError::IsADirectory),
            Found::Absent => return Err(StorageError::NotFound),
        }
        let loc = self.location(path)?;
        self.delete_object(&loc).await
    }

    async fn rename(&self, from: &VirtualPath, to: &VirtualPath, mode: RenameMode) -> Result<()> {
        self.rename_path(from, to, mode).await
    }

    async fn set_modified(&self, _path: &VirtualPath, _time: SystemTime) -> Result<()> {
        Err(StorageError::Refused(
            "An object store cannot change modification times.",
        ))
    }

    async fn set_mode(&self, _path: &VirtualPath, _mode: u32) -> Result<()> {
        Err(StorageError::Refused(
            "An object store has no permission bits.",
        ))
    }

    /// The digest in the object's metadata ([`digest`]), read by one
    /// HEAD, if it covers the object's size; the time it covers is the
    /// object's own, as that HEAD reports it, so the caller's comparison
    /// with its own HEAD also sees an object replaced in between.
    async fn kept_digest(&self, path: &VirtualPath) -> Option<KeptDigest> {
        let loc = self.location(path).ok()?;
        let opts = GetOptions {
            head: true,
            ..Default::default()
        };
        let got = self.timed(self.store.get_opts(&loc, opts)).await.ok()?;
        let value = got
            .attributes
            .get(&Attribute::Metadata(digest::NAME.into()))?;
        let (sha256, size) = digest::decode(value)?;
        (size == got.meta.size).then(|| KeptDigest {
            sha256,
            size,
            modified: got.meta.last_modified.into(),
        })
    }
}

#[async_trait]
impl OpenedStore for ObjectStorage {
    /// Is the bucket there, and may these credentials list the root? One
    /// listing request of one key, bounded by `request_timeout`.
    async fn check(&self) -> Result<()> {
        self.peek(&VirtualPath::root(), 1).await.map(drop)
    }

    fn describe(&self) -> String {
        self.provider().describe()
    }

    fn summary(&self) -> &'static str {
        self.provider().summary()
    }

    fn missing(&self) -> String {
        self.provider().missing()
    }

    fn storage(self: Arc<Self>) -> Arc<dyn Storage> {
        self
    }
}

#[cfg(test)]
mod tests;
