//! Checksums: HASH with OPTS HASH and RANG (draft-bryan-ftpext-hash-02,
//! draft-bryan-ftp-range) and the algorithm-named verbs XCRC, XMD5,
//! XSHA1, XSHA256 and XSHA512 (ProFTPD's mod_digest).
//!
//! Hashing reads the whole file, so it runs as a step of its own
//! ([`Step::Hash`]): the driver polls it as it polls a transfer, so ABOR
//! stops it, other commands wait behind it (one hash per session at a
//! time), the drain cuts it and `limits.data_timeout` ends one that reads
//! nothing. It takes one of `limits.hash_concurrency` places (450 when
//! none is free), reads at most `limits.hash_max_size` bytes (556 past
//! it) and takes its bytes from the account's download rate. What it
//! reads are the bytes as stored (TYPE A or not, as section 3 says: the
//! hash of what a TYPE I download would receive); an object store's
//! object is read too (its ETag is no SHA of the content).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use portcullis_proto::hash::{HashAlgorithm, HashOpt, RangArg, XHashArgs};
use portcullis_proto::listing::{FileKind, Metadata};
use portcullis_proto::path::VirtualPath;
use portcullis_proto::reply::{Reply, ReplyCode};
use portcullis_proto::session::Login;
use portcullis_proto::verbs::Capability;
use tokio::io::AsyncReadExt;

use super::error::{reply_for, AbortedAt, Phase, SessionError};
use super::job::{stalled, Stop};
use super::{Core, Step};
use crate::events::{Event, Events, Origin};
use crate::limits::{HashPermit, Throttle};
use crate::storage::{ReadStream, Storage, StorageError};

/// How much is read (and hashed) at a time: small enough that one
/// chunk's hashing (well under a millisecond) does not hold up the
/// runtime's other sessions, large enough to read efficiently.
const CHUNK: usize = 256 * 1024;

/// Which command asked, and so how the result is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    /// HASH: `213 ALGO start-end hash path`.
    Hash,
    /// XCRC, XMD5, ...: `250 hash`.
    Named,
}

/// What the checks before reading came to.
enum Prepared {
    /// A hash to run.
    Job(Box<HashJob>),
    /// The answer, from the digest kept with the file.
    Kept(Reply),
}

/// A hash ready to run: everything decided and checked by the core.
pub(crate) struct HashJob {
    verb: &'static str,
    algorithm: HashAlgorithm,
    style: Style,
    reader: ReadStream,
    start: u64,
    len: u64,
    /// The path as the client wrote it, for the 213 reply.
    shown: String,
    /// The file as it was before reading: a change means the bytes read
    /// may be of no single version of it.
    before: Metadata,
    path: VirtualPath,
    storage: Arc<dyn Storage>,
    throttle: Throttle,
    stall_timeout: std::time::Duration,
    events: Arc<Events>,
    origin: Origin,
    _permit: HashPermit,
}

impl HashJob {
    pub(super) fn verb(&self) -> &'static str {
        self.verb
    }
}

impl Core {
    /// Hashing is on (`limits.hash`).
    pub(super) fn hashing_on(&self) -> bool {
        self.shared.options.limits.hash
    }

    /// Whether FEAT and HELP offer what `c` needs: the account's storage
    /// can do it, and, for hashing, the server has it on.
    pub(super) fn offers(&self, c: Capability) -> bool {
        match c {
            Capability::Hash => self.hashing_on(),
            c => self.capabilities().has(c),
        }
    }

    /// OPTS HASH [name] (draft section 3.2).
    pub(super) fn opts_hash(&mut self, opt: HashOpt) -> Reply {
        if !self.hashing_on() {
            return reply_for(&SessionError::HashingOff("HASH"), Phase::Command);
        }
        match opt {
            HashOpt::Query => Reply::new(ReplyCode::OK, self.hash_algorithm.name()),
            HashOpt::Select(a) => {
                self.hash_algorithm = a;
                Reply::new(ReplyCode::OK, a.name())
            }
            HashOpt::Unknown(_) => Reply::new(
                ReplyCode::BAD_ARGUMENT,
                "Unknown algorithm, current selection not changed.",
            ),
        }
    }

    /// RANG (draft-bryan-ftp-range): the range the following HASH
    /// commands cover, until `RANG 1 0`. It applies to HASH only: RETR
    /// and STOR ignore it (REST is their restart).
    pub(super) fn rang(&mut self, arg: RangArg) -> Reply {
        match arg {
            RangArg::Reset => {
                self.hash_range = None;
                Reply::new(ReplyCode::PENDING, "Range reset: HASH covers whole files.")
            }
            RangArg::Range { start, end } => {
                self.hash_range = Some((start, end));
                Reply::new(
                    ReplyCode::PENDING,
                    format!("Restarting at {start}. End byte range at {end}. HASH only."),
                )
            }
        }
    }

    /// HASH path: the selected algorithm over the file, or the RANG range.
    pub(super) async fn hash(&mut self, arg: String) -> Step {
        let range = self.hash_range.map(|(s, e)| (s, Some(e.saturating_add(1))));
        let algorithm = self.hash_algorithm;
        let r = self
            .prepare(arg, algorithm, range, Style::Hash, "HASH")
            .await;
        self.hash_step(r)
    }

    /// XCRC, XMD5, XSHA1, XSHA256, XSHA512 path [start [end]].
    pub(super) async fn x_hash(
        &mut self,
        verb: &'static str,
        algorithm: HashAlgorithm,
        args: XHashArgs,
    ) -> Step {
        let range = args.start.map(|s| (s, args.end));
        let r = self
            .prepare(args.path, algorithm, range, Style::Named, verb)
            .await;
        self.hash_step(r)
    }

    fn hash_step(&self, r: Result<Prepared, SessionError>) -> Step {
        match r {
            Ok(Prepared::Job(job)) => Step::Hash(job),
            // Answered from the digest kept with the file: nothing to run.
            Ok(Prepared::Kept(reply)) => Step::Reply(reply),
            Err(e) => self.fail(e),
        }
    }

    /// Everything checked before reading: the permission (read, as RETR),
    /// a plain file, the range, the size cap, a free place, the open.
    /// `range` is a start and an end past the last byte (`None`: the end).
    async fn prepare(
        &mut self,
        arg: String,
        algorithm: HashAlgorithm,
        range: Option<(u64, Option<u64>)>,
        style: Style,
        verb: &'static str,
    ) -> Result<Prepared, SessionError> {
        let (ctx, path) = self.ctx_path(&arg, |p| p.read, "download")?;
        let storage = ctx.storage.clone();
        let (name, rates) = (
            ctx.account.name.clone(),
            (
                ctx.account.policy.download_rate,
                ctx.account.policy.upload_rate,
            ),
        );
        let before = storage.metadata(&path).await?;
        match before.kind {
            FileKind::File => {}
            FileKind::Dir if style == Style::Hash => return Err(SessionError::HashDirectory),
            _ => return Err(SessionError::NotPlainFile),
        }
        let size = before.size;
        let (start, end) = range.unwrap_or((0, None));
        let end = end.unwrap_or(size).min(size);
        if start > size || (start == size && size > 0 && range.is_some()) {
            return Err(SessionError::HashRange { start, size });
        }
        let len = end.saturating_sub(start);
        // The whole file's SHA-256, kept by `hash_on_upload` and still
        // covering it: no read, no place, no cap.
        if algorithm == HashAlgorithm::Sha256 && start == 0 && len == size {
            if let Some(k) = storage.kept_digest(&path).await {
                if k.size == before.size && k.modified == before.modified {
                    return Ok(Prepared::Kept(answer(
                        style, algorithm, start, len, k.sha256, &arg,
                    )));
                }
            }
        }
        let max = self.shared.options.limits.hash_max_size;
        if max > 0 && len > max {
            return Err(SessionError::HashTooLarge { len, max });
        }
        let permit = self
            .shared
            .guard
            .hash_permit()
            .ok_or(SessionError::HashBusy)?;
        let reader = match storage.open_read(&path, start).await {
            Ok(r) => r,
            Err(StorageError::IsADirectory) => return Err(SessionError::NotPlainFile),
            Err(e) => return Err(e.into()),
        };
        let throttle = match &self.login {
            Login::LoggedIn(_) => self
                .shared
                .guard
                .throttle(&name, rates, &self.buckets, false),
            _ => Throttle::default(),
        };
        Ok(Prepared::Job(Box::new(HashJob {
            verb,
            algorithm,
            style,
            reader,
            start,
            len,
            shown: arg,
            before,
            path,
            storage,
            throttle,
            stall_timeout: self.shared.options.limits.data_timeout,
            events: self.shared.events.clone(),
            origin: self.origin().clone(),
            _permit: permit,
        })))
    }
}

/// One of the algorithms, running.
enum Hasher {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
    Sha512(sha2::Sha512),
    Md5(md5::Md5),
    Crc32(crc32fast::Hasher),
}

impl Hasher {
    fn new(a: HashAlgorithm) -> Self {
        use sha2::Digest;
        match a {
            HashAlgorithm::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            HashAlgorithm::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
            HashAlgorithm::Sha512 => Hasher::Sha512(sha2::Sha512::new()),
            HashAlgorithm::Md5 => Hasher::Md5(md5::Md5::new()),
            HashAlgorithm::Crc32 => Hasher::Crc32(crc32fast::Hasher::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        use sha2::Digest;
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
            Hasher::Md5(h) => h.update(data),
            Hasher::Crc32(h) => h.update(data),
        }
    }

    /// Lower-case hex (draft section 3); CRC-32 as eight digits.
    fn finish(self) -> String {
        use sha2::Digest;
        match self {
            Hasher::Sha1(h) => hex(&h.finalize()),
            Hasher::Sha256(h) => hex(&h.finalize()),
            Hasher::Sha512(h) => hex(&h.finalize()),
            Hasher::Md5(h) => hex(&h.finalize()),
            Hasher::Crc32(h) => format!("{:08x}", h.finalize()),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Run one hash to its reply: 213 (HASH) or 250 (the X-verbs), or the
/// error's (426 when stopped, 451 when the file changed).
pub(super) async fn run(job: HashJob, stop: Stop, progress: Arc<AtomicU64>) -> Reply {
    let (verb, events, origin) = (job.verb, job.events.clone(), job.origin.clone());
    let stall = job.stall_timeout;
    // ABOR first: a hash stopped is answered 426 even if its last read
    // is ready.
    let result = tokio::select! {
        biased;
        e = stop.stopped(AbortedAt::Hashing) => Err(e),
        r = compute(job, &progress) => r,
        _ = stalled(&progress, stall) => Err(SessionError::Stalled(stall)),
    };
    let reply = match result {
        Ok(reply) => reply,
        Err(e) => {
            if let SessionError::Storage(error) = &e {
                events.emit_in(&origin, Event::Storage { error });
            }
            reply_for(&e, Phase::Transfer)
        }
    };
    events.emit_in(
        &origin,
        Event::Command {
            verb,
            code: reply.code,
        },
    );
    reply
}

/// Read the range, hash it, and check that the file did not change.
async fn compute(mut job: HashJob, progress: &AtomicU64) -> Result<Reply, SessionError> {
    let mut hasher = Hasher::new(job.algorithm);
    let mut buf = vec![0u8; CHUNK.min(usize::try_from(job.len).unwrap_or(CHUNK)).max(1)];
    let mut left = job.len;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = job
            .reader
            .read(&mut buf[..want])
            .await
            .map_err(StorageError::from_io)?;
        if n == 0 {
            // Shorter than it was when the hash began.
            return Err(SessionError::HashChanged);
        }
        job.throttle.consume(n).await;
        hasher.update(&buf[..n]);
        left -= n as u64;
        progress.fetch_add(n as u64, Ordering::Relaxed);
    }
    let after = job.storage.metadata(&job.path).await?;
    if after.size != job.before.size || after.modified != job.before.modified {
        return Err(SessionError::HashChanged);
    }
    let hash = hasher.finish();
    Ok(answer(
        job.style,
        job.algorithm,
        job.start,
        job.len,
        hash,
        &job.shown,
    ))
}

/// What a hash is answered: HASH's 213 with the algorithm, the range and
/// the path as sent; the X-verbs' 250 with the hash alone.
fn answer(
    style: Style,
    algorithm: HashAlgorithm,
    start: u64,
    len: u64,
    hash: String,
    shown: &str,
) -> Reply {
    match style {
        Style::Hash => {
            // The range's end is its last byte (draft section 3.3's
            // `RANG 0 49` is answered `0-49`); an empty one is `start-start`.
            let last = (start + len).saturating_sub(1).max(start);
            Reply::new(
                ReplyCode::FILE_STATUS,
                format!("{} {start}-{last} {hash} {shown}", algorithm.name()),
            )
        }
        Style::Named => Reply::new(ReplyCode::FILE_ACTION_OK, hash),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::job::Cut;
    use crate::session::tests::{login, options, server};
    use crate::session::Security;
    use portcullis_proto::framing::Frame;

    fn core_with(
        dir: &std::path::Path,
        limits: impl FnOnce(&mut crate::options::LimitsOptions),
    ) -> Core {
        let mut o = options(dir, None);
        limits(&mut o.limits);
        let (shared, ends) = server(o);
        Core::new(
            shared,
            ends,
            crate::events::SessionId::random(),
            Security::Plain,
        )
    }

    async fn step(c: &mut Core, line: &str) -> Step {
        c.handle(Frame::Line(line.as_bytes().to_vec())).await
    }

    async fn reply(c: &mut Core, line: &str) -> String {
        match step(c, line).await {
            Step::Reply(r) => {
                let mut out = Vec::new();
                r.encode(&mut out);
                String::from_utf8(out).unwrap()
            }
            _ => panic!("{line}: not a plain reply"),
        }
    }

    async fn job(c: &mut Core, line: &str) -> HashJob {
        match step(c, line).await {
            Step::Hash(j) => *j,
            Step::Reply(r) => panic!("{line}: {:?}", r.lines),
            _ => panic!("{line}: neither a hash nor a reply"),
        }
    }

    const SHA256_ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    /// HASH is a step the driver runs; while it holds the one place of
    /// `hash_concurrency`, another is refused with 450.
    #[tokio::test]
    async fn a_hash_is_a_step_that_holds_a_place() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), b"abc").unwrap();
        let mut c = core_with(dir.path(), |l| l.hash_concurrency = 1);
        login(&mut c).await;
        let j = job(&mut c, "HASH f").await;
        assert_eq!(
            reply(&mut c, "HASH f").await,
            "450 Too many files are being hashed; try again later.\r\n"
        );
        let r = run(j, Stop::default(), Arc::default()).await;
        assert_eq!(r.code, ReplyCode::FILE_STATUS);
        assert_eq!(r.lines, [format!("SHA-256 0-2 {SHA256_ABC} f")]);
        // The place is free again once the job is done.
        let j = job(&mut c, "XSHA256 f 1").await;
        let r = run(j, Stop::default(), Arc::default()).await;
        assert_eq!(r.code, ReplyCode::FILE_ACTION_OK);
        let stop = Stop::default();
        stop.stop(Cut::Client);
        let r = run(job(&mut c, "HASH f").await, stop, Arc::default()).await;
        assert_eq!(
            (r.code, r.lines[0].as_str()),
            (ReplyCode::TRANSFER_ABORTED, "Hash aborted.")
        );
    }

    #[tokio::test]
    async fn opts_rang_and_what_is_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        let mut c = core_with(dir.path(), |_| {});
        login(&mut c).await;
        assert_eq!(reply(&mut c, "OPTS HASH").await, "200 SHA-256\r\n");
        assert_eq!(reply(&mut c, "OPTS HASH crc32").await, "200 CRC32\r\n");
        assert!(reply(&mut c, "OPTS HASH SHA-3").await.starts_with("501 "));
        assert_eq!(reply(&mut c, "OPTS HASH").await, "200 CRC32\r\n");
        assert!(reply(&mut c, "RANG 3 9").await.starts_with("350 "));
        assert_eq!(c.hash_range, Some((3, 9)));
        assert!(reply(&mut c, "RANG 1 0").await.starts_with("350 "));
        assert_eq!(c.hash_range, None);
        assert!(reply(&mut c, "HASH d").await.starts_with("553 "));
        assert!(reply(&mut c, "XCRC d").await.starts_with("550 "));
        assert!(reply(&mut c, "HASH none").await.starts_with("550 "));

        let mut off = core_with(dir.path(), |l| l.hash = false);
        login(&mut off).await;
        for line in ["HASH f", "XMD5 f", "RANG 0 1", "OPTS HASH"] {
            assert!(reply(&mut off, line).await.starts_with("502 "), "{line}");
        }
        assert!(!reply(&mut off, "FEAT").await.contains("HASH"));
    }
}
