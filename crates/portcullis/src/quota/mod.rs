//! Storage quotas (`quota_bytes`, `quota_files`): what an account's root
//! holds, counted once by a scan (`scan.rs`) the first time an account with
//! a quota uses it after a start, then kept exact by every operation of
//! every session, and what the uploads in flight have reserved (`lease.rs`).
//!
//! One [`Tally`] per root (accounts that share a root share its usage; each
//! checks its own limits against it), in the process-wide [`Quotas`]. An
//! upload reserves bytes in chunks (leases) before it writes them, on every
//! path that writes (the copy loop through [`QuotaUpload`], the splice pump
//! through [`crate::storage::Budget`]), so the bytes of all the account's
//! uploads in flight count against the quota: parallel uploads cannot
//! together pass it. The write that would pass it fails with
//! [`crate::storage::StorageError::QuotaExceeded`] (552), and the upload is
//! given up as any failed one is (the temporary file removed, the multipart
//! upload aborted).
//!
//! What counts: files (objects) and their bytes; directories and directory
//! markers count toward neither. An overwrite counts the old and the new
//! bytes while both exist (the new file is written under a temporary name
//! beside the old one); the old bytes are given back at the commit.
//!
//! With `[cluster]`, a root's usage and the reservations of every node's
//! uploads in flight live in Redis (`fleet.rs`): each chunk of a lease is
//! taken there, so that uploads through several nodes never pass the quota
//! together; the first scan is made by one node for the fleet. The tally
//! here then mirrors it, and is what the node falls back to while Redis is
//! down (counting only its own uploads: the fleet may then pass a quota by
//! what other nodes write meanwhile); when Redis answers again, the roots
//! whose changes could not be sent are counted again.
//!
//! Accounts without a quota are not counted at all (no scan, no lease).

mod fleet;
mod lease;
mod scan;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use futures_util::StreamExt;

pub use lease::{Lease, QuotaUpload};

use crate::cluster::Cluster;
use fleet::{Fleet, Grant};
use lease::CHUNK;

use crate::options::QuotaLimits;
use crate::storage::{RootSpec, Storage};

/// How long an upload waits for the first scan of its root before it is
/// answered 450 (the scan goes on; a later upload waits again).
const SCAN_WAIT: Duration = Duration::from_secs(20);

/// Why a quota refuses an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    /// 552: the bytes or the file would pass the account's quota.
    #[error("quota exceeded")]
    Exceeded,
    /// 450: the root's first scan has not finished within [`SCAN_WAIT`] (or
    /// failed; the next write starts another).
    #[error("quota usage still being counted")]
    Counting,
}

/// What a root holds and what its uploads in flight have reserved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Bytes of the files stored.
    pub bytes: u64,
    /// Files stored.
    pub files: u64,
    /// Bytes reserved by uploads in flight.
    pub reserved_bytes: u64,
    /// New files reserved by uploads in flight.
    pub reserved_files: u64,
}

impl Usage {
    /// Bytes left under `limits` (what AVBL answers), `None` if unlimited.
    pub fn bytes_left(&self, limits: &QuotaLimits) -> Option<u64> {
        limits
            .bytes
            .map(|l| l.saturating_sub(self.bytes + self.reserved_bytes))
    }
}

/// Where a root's count stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanState {
    /// The first scan runs; uploads wait for it.
    Counting,
    /// Counted (and kept since).
    Ready,
    /// The first scan failed; the next write starts another.
    Failed(String),
}

/// One root's usage, shared by every session of every account on it.
#[derive(Debug)]
pub struct Tally {
    /// The root (`ctl quota` shows it); a local one as `key` makes it.
    root: String,
    /// The storage the scans list.
    storage: Arc<dyn Storage>,
    usage: Mutex<Usage>,
    /// The limits of each account on this root, as its latest login (or a
    /// reload) gave them: a session's next write reads them here.
    limits: Mutex<HashMap<String, QuotaLimits>>,
    state: tokio::sync::watch::Sender<ScanState>,
    /// A scan runs (at most one per root).
    scanning: AtomicBool,
    /// A scan finished once: the usage is known.
    known: AtomicBool,
    /// The root's shared state, with `[cluster]`.
    fleet: Option<Fleet>,
    /// A change could not be sent to Redis: count the root again when it
    /// answers.
    stale: AtomicBool,
    /// Where the calls to Redis that a lease's end makes are spawned (an
    /// end may run on the splice pump's thread).
    runtime: Option<tokio::runtime::Handle>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // The counters stay consistent at every unlock: a panic elsewhere
    // does not make them wrong.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Tally {
    /// Current usage.
    pub fn usage(&self) -> Usage {
        *lock(&self.usage)
    }

    /// Where the count stands.
    pub fn state(&self) -> ScanState {
        self.state.borrow().clone()
    }

    /// The accounts counted on this root and their limits.
    pub fn accounts(&self) -> Vec<(String, QuotaLimits)> {
        let mut v: Vec<_> = lock(&self.limits)
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn limits_of(&self, user: &str) -> QuotaLimits {
        lock(&self.limits).get(user).copied().unwrap_or_default()
    }

    /// Start a scan unless one runs; it replaces the usage when it ends.
    /// Only the first count makes uploads wait (`ScanState::Counting`); a
    /// rescan runs beside them and its result replaces the usage. With
    /// `[cluster]`, a first count is taken from Redis when another node
    /// made it, or made by the one node that takes the root's scan lock
    /// (the others wait for its result), and stored there for the fleet.
    fn start_scan(self: &Arc<Self>) {
        if self.scanning.swap(true, Ordering::AcqRel) {
            return;
        }
        let first = !self.known.load(Ordering::Acquire);
        if first {
            self.state.send_replace(ScanState::Counting);
        }
        let tally = self.clone();
        tokio::spawn(async move {
            let mut locked = false;
            if let Some(f) = tally.fleet.as_ref().filter(|f| f.up()) {
                if first {
                    match tally.shared_count(f).await {
                        SharedCount::Counted => {
                            tally.scanning.store(false, Ordering::Release);
                            return;
                        }
                        SharedCount::Locked => locked = true,
                        SharedCount::Unavailable => {}
                    }
                }
            }
            match scan::count(tally.storage.as_ref()).await {
                Ok(counted) => {
                    {
                        let mut u = lock(&tally.usage);
                        u.bytes = counted.bytes;
                        u.files = counted.files;
                    }
                    if let Some(f) = &tally.fleet {
                        if f.store_count(&tally.root, counted.bytes, counted.files)
                            .await
                            .is_err()
                        {
                            tally.stale.store(true, Ordering::Release);
                        }
                    }
                    tracing::info!(
                        root = %tally.root,
                        bytes = counted.bytes,
                        files = counted.files,
                        "quota usage counted"
                    );
                    tally.known.store(true, Ordering::Release);
                    tally.state.send_replace(ScanState::Ready);
                }
                Err(e) => {
                    tracing::warn!(root = %tally.root, error = %e, "quota usage could not be counted");
                    if let (true, Some(f)) = (locked, &tally.fleet) {
                        f.unlock_scan().await;
                    }
                    // A failed rescan keeps the count it had.
                    if !tally.known.load(Ordering::Acquire) {
                        tally.state.send_replace(ScanState::Failed(e));
                    }
                }
            }
            tally.scanning.store(false, Ordering::Release);
        });
    }

    /// The first count with `[cluster]`: taken from Redis if a node made
    /// it, else this node takes the scan lock, else it waits (bounded by
    /// the lock's life) for the node that holds it.
    async fn shared_count(&self, f: &Fleet) -> SharedCount {
        const POLL: Duration = Duration::from_millis(200);
        let deadline = tokio::time::Instant::now() + fleet::SCAN_LOCK;
        while tokio::time::Instant::now() < deadline {
            match f.read().await {
                Ok(s) if s.counted => {
                    {
                        let mut u = lock(&self.usage);
                        u.bytes = s.bytes;
                        u.files = s.files;
                    }
                    tracing::info!(root = %self.root, bytes = s.bytes, files = s.files, "quota usage read from the fleet");
                    self.known.store(true, Ordering::Release);
                    self.state.send_replace(ScanState::Ready);
                    return SharedCount::Counted;
                }
                Ok(_) => {}
                Err(_) => return SharedCount::Unavailable,
            }
            match f.lock_scan().await {
                Ok(true) => return SharedCount::Locked,
                Ok(false) => tokio::time::sleep(POLL).await,
                Err(_) => return SharedCount::Unavailable,
            }
        }
        SharedCount::Unavailable
    }

    /// The fleet's state, when it can be used now.
    fn fleet_up(&self) -> Option<&Fleet> {
        self.fleet.as_ref().filter(|f| f.up())
    }

    /// Reserve at least `need` bytes (a chunk, at most a sixteenth of what
    /// is left) and, if `file`, a new file, under `limits`: from the
    /// fleet with `[cluster]` (one Redis call), else from this tally.
    /// Returns the bytes reserved.
    pub(super) async fn reserve(
        &self,
        limits: QuotaLimits,
        need: u64,
        file: bool,
    ) -> Result<u64, QuotaError> {
        // Nothing the fleet must check: no Redis call.
        let shared = need > 0 || (file && limits.files.is_some());
        if let Some(f) = self.fleet_up().filter(|_| shared) {
            let _io = f.io.lock().await;
            let mine = {
                let u = lock(&self.usage);
                (u.reserved_bytes, u.reserved_files)
            };
            match f
                .grant(mine, need, CHUNK, limits.bytes, file, limits.files)
                .await
            {
                Ok(Grant::Granted { bytes, used }) => {
                    let mut u = lock(&self.usage);
                    u.reserved_bytes += bytes;
                    u.reserved_files += u64::from(file);
                    (u.bytes, u.files) = used;
                    return Ok(bytes);
                }
                Ok(Grant::Refused { used }) => {
                    let mut u = lock(&self.usage);
                    (u.bytes, u.files) = used;
                    return Err(QuotaError::Exceeded);
                }
                // Redis lost the count (restarted empty): this node's own
                // until the count is stored there again.
                Ok(Grant::Uncounted) | Err(_) => self.stale.store(true, Ordering::Release),
            }
        }
        self.reserve_local(limits, need, file)
    }

    /// [`Tally::reserve`] from this node's tally alone.
    pub(super) fn reserve_local(
        &self,
        limits: QuotaLimits,
        need: u64,
        file: bool,
    ) -> Result<u64, QuotaError> {
        let mut u = lock(&self.usage);
        if file {
            if let Some(max) = limits.files {
                if u.files + u.reserved_files >= max {
                    return Err(QuotaError::Exceeded);
                }
            }
        }
        let grant = match (need, limits.bytes) {
            (0, _) => 0,
            (_, None) => need.max(CHUNK),
            (_, Some(max)) => {
                let left = max.saturating_sub(u.bytes + u.reserved_bytes);
                if left < need {
                    return Err(QuotaError::Exceeded);
                }
                // A sixteenth of what is left at most: near the limit the
                // leases shrink, so that one upload does not hold the space
                // that its siblings could have written.
                need.max(CHUNK.min(left / 16))
            }
        };
        u.reserved_bytes += grant;
        u.reserved_files += u64::from(file);
        Ok(grant)
    }

    /// Give back reservations `res` (bytes, files) and change the stored
    /// usage by `delta`: at once without `[cluster]`; with it, by a task
    /// that does both here and in Redis in one step (under [`Fleet::io`]),
    /// so that no chunk is ever granted from a reservation given back
    /// here before the bytes it became are counted there.
    pub(super) fn apply(self: &Arc<Self>, res: (u64, u64), delta: (i64, i64)) {
        match (&self.fleet, &self.runtime) {
            (Some(_), Some(rt)) => {
                rt.spawn(self.clone().push(res, delta));
            }
            _ => self.apply_here(res, delta),
        }
    }

    fn apply_here(&self, res: (u64, u64), delta: (i64, i64)) {
        let mut u = lock(&self.usage);
        u.reserved_bytes = u.reserved_bytes.saturating_sub(res.0);
        u.reserved_files = u.reserved_files.saturating_sub(res.1);
        u.bytes = u.bytes.saturating_add_signed(delta.0);
        u.files = u.files.saturating_add_signed(delta.1);
    }

    /// Apply a change here and send it to Redis, with this node's
    /// reservations whole.
    async fn push(self: Arc<Self>, res: (u64, u64), delta: (i64, i64)) {
        let Some(f) = &self.fleet else {
            self.apply_here(res, delta);
            return;
        };
        let _io = f.io.lock().await;
        self.apply_here(res, delta);
        if !f.up() {
            if delta != (0, 0) {
                self.stale.store(true, Ordering::Release);
            }
            return;
        }
        let mine = {
            let u = lock(&self.usage);
            (u.reserved_bytes, u.reserved_files)
        };
        match f.adjust(delta, mine).await {
            Ok(Some(used)) => {
                let mut u = lock(&self.usage);
                (u.bytes, u.files) = used;
            }
            // Not counted there (Redis restarted empty), or not reached.
            Ok(None) | Err(_) => self.stale.store(true, Ordering::Release),
        }
    }

    /// The usage to show: the fleet's (every node's reservations) when
    /// Redis answers, else this node's.
    pub async fn usage_now(&self) -> Usage {
        if let Some(f) = self.fleet_up() {
            if let Ok(s) = f.read().await {
                if s.counted {
                    return Usage {
                        bytes: s.bytes,
                        files: s.files,
                        reserved_bytes: s.reserved_bytes,
                        reserved_files: s.reserved_files,
                    };
                }
            }
        }
        self.usage()
    }

    /// Apply a change made by an operation that is not an upload (DELE,
    /// RNTO over a file): `bytes` and `files` given back.
    fn release(self: &Arc<Self>, bytes: u64, files: u64) {
        self.apply((0, 0), (-fleet::signed(bytes), -fleet::signed(files)));
    }
}

/// How a first count with `[cluster]` went.
enum SharedCount {
    /// Another node's count was read.
    Counted,
    /// This node holds the scan lock: it counts for the fleet.
    Locked,
    /// Redis did not answer: count for this node alone.
    Unavailable,
}

/// The tally's key of `root`: one directory written in several ways
/// (`/srv/ftp`, `/srv/ftp/`, `/srv/./ftp`, through a symbolic link) is
/// one root, whose usage its accounts share; otherwise each spelling
/// would count on its own, and the quota apply to none of them whole.
fn key(root: &RootSpec) -> String {
    match root {
        RootSpec::Local(p) => std::fs::canonicalize(p)
            .unwrap_or_else(|_| p.components().collect())
            .display()
            .to_string(),
        r => r.to_string(),
    }
}

/// Every counted root of this process.
#[derive(Debug, Default)]
pub struct Quotas {
    roots: Mutex<HashMap<String, Arc<Tally>>>,
    /// `[cluster]`: usage shared through Redis.
    cluster: Option<Arc<Cluster>>,
}

impl Quotas {
    /// The quotas of a node of a fleet (`cluster`), or of a node alone;
    /// in a fleet, a task writes this node's reservations again every
    /// [`fleet::REFRESH`] (so that they expire within
    /// [`crate::cluster::NODE_TTL`] of its death) and counts again the
    /// roots whose changes were lost while Redis was down.
    pub fn with_cluster(cluster: Option<Arc<Cluster>>) -> Arc<Self> {
        let quotas = Arc::new(Quotas {
            roots: Mutex::default(),
            cluster,
        });
        if quotas.cluster.is_some() {
            tokio::spawn(refresh(Arc::downgrade(&quotas)));
        }
        quotas
    }

    /// The quota of a logged-in account: `None` when it has none (nothing
    /// is counted for it). The root's tally is made, and its first scan
    /// started, at the first login of an account with a quota on it.
    pub fn attach(
        &self,
        root: &RootSpec,
        storage: &Arc<dyn Storage>,
        user: &str,
        limits: QuotaLimits,
    ) -> Option<AccountQuota> {
        if limits.is_unlimited() {
            return None;
        }
        let key = key(root);
        let tally = {
            let mut roots = lock(&self.roots);
            roots
                .entry(key.clone())
                .or_insert_with(|| {
                    let (state, _) = tokio::sync::watch::channel(ScanState::Failed(String::new()));
                    let fleet = self.cluster.clone().map(|c| Fleet::new(c, &key));
                    Arc::new(Tally {
                        fleet,
                        stale: AtomicBool::new(false),
                        runtime: tokio::runtime::Handle::try_current().ok(),
                        root: key,
                        storage: storage.clone(),
                        usage: Mutex::new(Usage::default()),
                        limits: Mutex::new(HashMap::new()),
                        state,
                        scanning: AtomicBool::new(false),
                        known: AtomicBool::new(false),
                    })
                })
                .clone()
        };
        lock(&tally.limits).insert(user.to_owned(), limits);
        if matches!(tally.state(), ScanState::Failed(_)) {
            tally.start_scan();
        }
        Some(AccountQuota {
            tally,
            user: user.to_owned(),
        })
    }

    /// Set the limits of `user` wherever it is counted (a reload): its
    /// sessions' next writes use them. Limits that become unlimited stop
    /// counting nothing already counted; the account's next login without
    /// a quota is simply not counted.
    pub fn set_limits(&self, user: &str, limits: QuotaLimits) {
        for tally in lock(&self.roots).values() {
            if let Some(l) = lock(&tally.limits).get_mut(user) {
                *l = limits;
            }
        }
    }

    /// Usage per counted account (`ctl quota [USER]`, through the control
    /// API's `GET /v1/quotas`): each account's root, limits and that
    /// root's usage, sorted by user; only `user`'s if given.
    pub fn usage(&self, user: Option<&str>) -> Vec<AccountUsage> {
        let mut out = Vec::new();
        for tally in lock(&self.roots).values() {
            for (name, limits) in tally.accounts() {
                if user.is_some_and(|u| u != name) {
                    continue;
                }
                out.push(AccountUsage {
                    user: name,
                    root: tally.root.clone(),
                    limits,
                    usage: tally.usage(),
                    state: tally.state(),
                });
            }
        }
        out.sort_by(|a, b| a.user.cmp(&b.user).then(a.root.cmp(&b.root)));
        out
    }

    /// [`Quotas::usage`] with the fleet's numbers (from Redis, when it
    /// answers).
    pub async fn usage_now(&self, user: Option<&str>) -> Vec<AccountUsage> {
        let mut list = self.usage(user);
        let tallies: HashMap<String, Arc<Tally>> = lock(&self.roots).clone();
        let mut seen: HashMap<String, Usage> = HashMap::new();
        for a in &mut list {
            if let Some(u) = seen.get(&a.root) {
                a.usage = *u;
                continue;
            }
            if let Some(t) = tallies.get(&a.root) {
                a.usage = t.usage_now().await;
                seen.insert(a.root.clone(), a.usage);
            }
        }
        list
    }

    /// Count again the roots `user` is counted on (`ctl quota rescan USER`,
    /// for changes made outside the server). Returns how many scans were
    /// started (0: the user is not counted on this node).
    pub fn rescan(&self, user: &str) -> usize {
        let tallies: Vec<_> = lock(&self.roots)
            .values()
            .filter(|t| lock(&t.limits).contains_key(user))
            .cloned()
            .collect();
        for t in &tallies {
            t.start_scan();
        }
        tallies.len()
    }

    /// Count every root again (`limits.quota_rescan`).
    pub fn rescan_all(&self) {
        let tallies: Vec<_> = lock(&self.roots).values().cloned().collect();
        for t in &tallies {
            t.start_scan();
        }
    }
}

/// One account's quota usage, as `ctl quota` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountUsage {
    pub user: String,
    pub root: String,
    pub limits: QuotaLimits,
    pub usage: Usage,
    pub state: ScanState,
}

/// The quota of one logged-in account: its root's tally and its name (its
/// limits are read from the tally at each write, so that a reload or a
/// later login changing them applies to the next write).
#[derive(Debug, Clone)]
pub struct AccountQuota {
    tally: Arc<Tally>,
    user: String,
}

/// What an upload's target was before it started, for the accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// No file by that name: the upload adds one, published at its commit.
    New,
    /// No file by that name, and the upload creates it in place (APPE or
    /// REST + STOR of a new name): the file and what is written stay
    /// whatever the outcome.
    Created,
    /// Replaced at the commit (STOR): its bytes are given back then.
    Replaces(u64),
    /// Written in place (APPE, REST + STOR): its first `kept` bytes stay,
    /// of `size`; what the upload writes stays whatever its outcome.
    InPlace { size: u64, kept: u64 },
}

impl AccountQuota {
    /// The account's limits now.
    pub fn limits(&self) -> QuotaLimits {
        self.tally.limits_of(&self.user)
    }

    /// Its root's usage now, as this node knows it.
    pub fn usage(&self) -> Usage {
        self.tally.usage()
    }

    /// Its root's usage now, the fleet's when Redis answers (SITE QUOTA,
    /// AVBL, ALLO).
    pub async fn usage_now(&self) -> Usage {
        self.tally.usage_now().await
    }

    /// Wait (at most [`SCAN_WAIT`]) for the root's first count.
    pub async fn ready(&self) -> Result<(), QuotaError> {
        let mut rx = self.tally.state.subscribe();
        if matches!(*rx.borrow(), ScanState::Failed(_)) {
            self.tally.start_scan();
        }
        let waited = tokio::time::timeout(
            SCAN_WAIT,
            rx.wait_for(|s| !matches!(s, ScanState::Counting)),
        )
        .await;
        match waited {
            Ok(Ok(s)) if *s == ScanState::Ready => Ok(()),
            _ => Err(QuotaError::Counting),
        }
    }

    /// Whether `bytes` more fit now (ALLO).
    pub async fn fits(&self, bytes: u64) -> bool {
        match self.usage_now().await.bytes_left(&self.limits()) {
            Some(left) => bytes <= left,
            None => true,
        }
    }

    /// Start an upload's accounting: a new file reserved at once (552 now
    /// if it would pass `quota_files`), the bytes as they are written.
    pub async fn begin(&self, target: Target) -> Result<Lease, QuotaError> {
        Lease::begin(self.tally.clone(), self.user.clone(), target).await
    }

    /// A file of `size` bytes removed (DELE) or replaced by a rename.
    pub fn removed(&self, size: u64) {
        self.tally.release(size, 1);
    }
}

/// Write this node's reservations of every shared root again, every
/// [`fleet::REFRESH`], and count again the roots whose changes could not
/// be sent while Redis was down. Ends with the quotas.
async fn refresh(quotas: Weak<Quotas>) {
    loop {
        tokio::time::sleep(fleet::REFRESH).await;
        let Some(q) = quotas.upgrade() else {
            return;
        };
        let tallies: Vec<_> = lock(&q.roots).values().cloned().collect();
        drop(q);
        // Roots side by side (each waits for its own lock only), so that a
        // slow Redis or a root busy with uploads does not hold the others'
        // refresh past the reservations' expiry.
        futures_util::stream::iter(tallies)
            .for_each_concurrent(REFRESH_AT_ONCE, |t| async move {
                if t.fleet_up().is_none() {
                    return;
                }
                // (A scan that runs already may have listed the root before
                // the lost change: the flag waits for it to end.)
                if t.known.load(Ordering::Acquire)
                    && !t.scanning.load(Ordering::Acquire)
                    && t.stale.swap(false, Ordering::AcqRel)
                {
                    tracing::info!(root = %t.root, "quota: Redis answers again; counting the root again for the fleet");
                    t.start_scan();
                }
                t.clone().push((0, 0), (0, 0)).await;
            })
            .await;
    }
}

/// Roots whose reservations [`refresh`] writes at once.
const REFRESH_AT_ONCE: usize = 32;
