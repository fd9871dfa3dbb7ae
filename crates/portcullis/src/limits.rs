//! What keeps one client from taking the server: session counts (in total,
//! per client IP, and per account in `accounts`), bans after repeated failed logins, network allow/deny
//! lists, and token-bucket bandwidth limits. The accept loop asks [`Guard`]
//! before a session starts; the login handler reports failures to it; a
//! transfer takes its bytes from a [`Throttle`].

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::options::LimitsOptions;

/// Why a connection is turned away before its session starts (each answered
/// 421 and closed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("Access denied from your address.")]
    Denied,
    #[error("Too many failed logins from your address; try again in {0} s.")]
    Banned(u64),
    #[error("Too many connections ({0}); try again later.")]
    ServerFull(usize),
    #[error("Too many connections from your address ({0}); try again later.")]
    IpFull(usize),
}

/// Server-wide admission state.
#[derive(Debug)]
pub struct Guard {
    /// Replaced whole by a reload ([`Guard::reconfigure`]).
    options: arc_swap::ArcSwap<LimitsOptions>,
    total: AtomicUsize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Bans after failed logins (`limits.ban_exempt` is checked here, before it).
    bans: Arc<dyn bans::BanStore>,
    pub download: Option<Arc<Bucket>>,
    pub upload: Option<Arc<Bucket>>,
    /// Per-user buckets, made on first use.
    users: Mutex<HashMap<String, Buckets>>,
    /// Logged-in sessions per account (`max_sessions`).
    pub accounts: Arc<accounts::AccountSessions>,
    /// Files being hashed now, server-wide (`hash_concurrency`).
    hashing: AtomicUsize,
    /// Bans and session counts shared with the fleet (`[cluster]`); while
    /// Redis is down, the node's own (above) decide alone.
    fleet: Option<Arc<fleet::Fleet>>,
}

/// Holds one of `limits.hash_concurrency` places; dropping it frees it.
#[derive(Debug)]
pub struct HashPermit {
    guard: Arc<Guard>,
}

impl Drop for HashPermit {
    fn drop(&mut self) {
        self.guard.hashing.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Holds one session slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Permit {
    guard: Arc<Guard>,
    ip: IpAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.guard.total.fetch_sub(1, Ordering::Relaxed);
        let mut m = self.guard.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

impl Guard {
    #[cfg(test)]
    pub fn new(options: LimitsOptions) -> Arc<Self> {
        Self::with(options, Arc::new(bans::LocalBans::default()), None)
    }

    /// With `cluster`: bans and the per-account and per-address session
    /// counts are the fleet's (inside the runtime: reads the fleet's bans
    /// before it returns, within `cluster.timeout`, so that a node just
    /// started admits no banned address; starts the tasks that keep them).
    pub async fn shared(
        options: LimitsOptions,
        cluster: Option<Arc<crate::cluster::Cluster>>,
    ) -> Arc<Self> {
        let bans: Arc<dyn bans::BanStore> = Arc::new(bans::LocalBans::default());
        let fleet = match cluster {
            Some(c) => Some(fleet::Fleet::start(c, bans.clone()).await),
            None => None,
        };
        Self::with(options, bans, fleet)
    }

    fn with(
        options: LimitsOptions,
        bans: Arc<dyn bans::BanStore>,
        fleet: Option<Arc<fleet::Fleet>>,
    ) -> Arc<Self> {
        Arc::new(Guard {
            download: Bucket::new(options.download_rate),
            upload: Bucket::new(options.upload_rate),
            options: arc_swap::ArcSwap::from_pointee(options),
            total: AtomicUsize::new(0),
            per_ip: Mutex::default(),
            fleet,
            bans,
            users: Mutex::default(),
            accounts: Arc::default(),
            hashing: AtomicUsize::new(0),
        })
    }

    /// The fleet's half of [`Guard::admit`], run in the session's own task
    /// (a round trip to Redis): `ip`'s place among
    /// `limits.max_sessions_per_ip` in the whole fleet, held as long as
    /// the session. `Ok(None)`: no fleet. While Redis is down the node's
    /// own count, taken by `admit`, decides alone.
    pub async fn admit_fleet(&self, ip: IpAddr) -> Result<Option<fleet::FleetSlot>, Refusal> {
        let Some(f) = &self.fleet else {
            return Ok(None);
        };
        let max = self.options().max_sessions_per_ip;
        match f.take(&format!("ip:{}", ip.to_canonical()), max).await {
            Some(slot) => Ok(Some(slot)),
            None => Err(Refusal::IpFull(max)),
        }
    }

    /// A place for one more logged-in session of `name` among `max` (0:
    /// unlimited), on this node and, with a fleet, in the whole fleet;
    /// `None` when full.
    pub async fn take_account(&self, name: &str, max: usize) -> Option<accounts::Slot> {
        let mut slot = self.accounts.take(name, max)?;
        if let (Some(f), true) = (&self.fleet, max > 0) {
            slot.fleet = Some(f.take(&format!("user:{name}"), max).await?);
        }
        Some(slot)
    }

    /// A place among the `hash_concurrency` hashes that may run at once
    /// (the limit as the last reload set it), or `None` when all are
    /// taken: the caller answers 450 rather than wait.
    pub fn hash_permit(self: &Arc<Self>) -> Option<HashPermit> {
        let max = self.options.load().hash_concurrency;
        self.hashing
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()?;
        Some(HashPermit {
            guard: self.clone(),
        })
    }

    pub fn options(&self) -> Arc<LimitsOptions> {
        self.options.load_full()
    }

    /// A reload: new sessions, logins and bans follow `options` from now
    /// on. Counts and bans in force are
    /// kept. The server-wide rates (`download_rate`, `upload_rate`) stay
    /// as they were: the returned flag says whether they differ.
    pub fn reconfigure(&self, options: LimitsOptions) -> bool {
        let rates_differ = {
            let old = self.options.load();
            old.download_rate != options.download_rate || old.upload_rate != options.upload_rate
        };
        self.options.store(Arc::new(options));
        rates_differ
    }

    /// May a connection from `ip` start a session? The permit must live as
    /// long as the session.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Permit, Refusal> {
        let ip = ip.to_canonical();
        let o = self.options();
        if !o.networks.permits(ip) {
            return Err(Refusal::Denied);
        }
        if let Some(left) = self.banned(ip) {
            return Err(Refusal::Banned(left.as_secs().max(1)));
        }
        let mut m = self.per_ip.lock().unwrap_or_else(|p| p.into_inner());
        if self.total.load(Ordering::Relaxed) >= o.max_sessions {
            return Err(Refusal::ServerFull(o.max_sessions));
        }
        let n = m.entry(ip).or_insert(0);
        if *n >= o.max_sessions_per_ip {
            return Err(Refusal::IpFull(o.max_sessions_per_ip));
        }
        *n += 1;
        self.total.fetch_add(1, Ordering::Relaxed);
        Ok(Permit {
            guard: self.clone(),
            ip,
        })
    }

    /// Time left on `ip`'s ban, if it is banned.
    pub fn banned(&self, ip: IpAddr) -> Option<Duration> {
        let ip = ip.to_canonical();
        if self.exempt(ip) {
            return None;
        }
        let fleet = self.fleet.as_ref().and_then(|f| f.banned(ip));
        self.bans.banned(ip).max(fleet)
    }

    /// `ip` is in `limits.ban_exempt`: never banned.
    pub fn exempt(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.options().ban_exempt.iter().any(|n| n.contains(&ip))
    }

    /// Count a failed login from `ip`. Returns the ban's length when this
    /// failure starts one.
    /// With a fleet, failures are counted fleet-wide (the node's own
    /// count while Redis is down).
    pub async fn login_failed(&self, ip: IpAddr) -> Option<Duration> {
        let o = self.options();
        let ip = ip.to_canonical();
        if o.max_login_failures == 0 || self.exempt(ip) {
            return None;
        }
        if let Some(f) = &self.fleet {
            if let Ok(ban) = f.failed(ip, &o).await {
                return ban;
            }
        }
        self.bans.failed(ip, &o)
    }

    /// The bans in force (the fleet's, as last heard, and this node's own).
    pub fn bans(&self) -> Vec<bans::Ban> {
        let mut all: HashMap<IpAddr, bans::Ban> = HashMap::new();
        let fleet = self.fleet.iter().flat_map(|f| f.list());
        for b in self.bans.list().into_iter().chain(fleet) {
            match all.get(&b.address) {
                Some(had) if had.left_secs >= b.left_secs => {}
                _ => {
                    all.insert(b.address, b);
                }
            }
        }
        let mut v: Vec<bans::Ban> = all.into_values().collect();
        v.sort_by_key(|b| b.address);
        v
    }

    /// Ban `ip` for `time` (the control plane); refused for an address
    /// of `limits.ban_exempt`.
    /// With a fleet, every node enforces it (this node alone while Redis
    /// is down).
    pub async fn ban(&self, ip: IpAddr, time: Duration) -> Result<(), String> {
        let ip = ip.to_canonical();
        if self.exempt(ip) {
            return Err(format!("{ip} is in limits.ban_exempt: never banned"));
        }
        if let Some(f) = &self.fleet {
            if f.ban(ip, time).await.is_ok() {
                return Ok(());
            }
        }
        self.bans.ban(ip, time);
        Ok(())
    }

    /// Lift `ip`'s ban (in the whole fleet, with one); `false`: it was
    /// not banned.
    pub async fn unban(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let local = self.bans.unban(ip);
        let fleet = match &self.fleet {
            Some(f) => f.unban(ip).await.unwrap_or(false),
            None => false,
        };
        local || fleet
    }

    /// The buckets a transfer of `user` takes its bytes from: server-wide,
    /// per user, and a fresh per-session one.
    pub fn throttle(
        &self,
        user: &str,
        user_rates: (u64, u64),
        session: &Buckets,
        upload: bool,
    ) -> Throttle {
        let mut t = Vec::new();
        let (global, own) = if upload {
            (&self.upload, &session.upload)
        } else {
            (&self.download, &session.download)
        };
        t.extend(global.iter().cloned());
        t.extend(own.iter().cloned());
        // One bucket per user and direction, shared by all of the user's
        // transfers, across reloads too. An account whose rate has changed
        // (a reload, a back end that answers differently) gets a new bucket
        // for the transfers that start from now on; those running keep
        // the old one until they end.
        let mut users = self.users.lock().unwrap_or_else(|p| p.into_inner());
        let mine = users.entry(user.to_owned()).or_default();
        for (bucket, rate) in [
            (&mut mine.download, user_rates.0),
            (&mut mine.upload, user_rates.1),
        ] {
            if bucket.as_ref().map_or(0, |b| b.rate) != rate {
                *bucket = Bucket::new(rate);
            }
        }
        t.extend(
            if upload { &mine.upload } else { &mine.download }
                .iter()
                .cloned(),
        );
        Throttle(t)
    }
}

/// A pair of buckets: a session's own (`limits.session_download_rate` and
/// upload) or a user's.
#[derive(Debug, Default, Clone)]
pub struct Buckets {
    pub download: Option<Arc<Bucket>>,
    pub upload: Option<Arc<Bucket>>,
}

impl Buckets {
    pub fn new(o: &LimitsOptions) -> Self {
        Buckets {
            download: Bucket::new(o.session_download_rate),
            upload: Bucket::new(o.session_upload_rate),
        }
    }
}

/// A token bucket: `rate` bytes per second, bursts of up to a tenth of a
/// second's worth (at least 64 KiB).
#[derive(Debug)]
pub struct Bucket {
    rate: u64,
    burst: f64,
    /// (tokens, when last filled). Tokens go negative when a caller takes
    /// more than there is; it then sleeps off the debt.
    state: Mutex<(f64, tokio::time::Instant)>,
}

impl Bucket {
    /// `None` for rate 0 (unlimited).
    pub fn new(rate: u64) -> Option<Arc<Bucket>> {
        (rate > 0).then(|| {
            let burst = (rate as f64 / 10.0).max(65536.0);
            Arc::new(Bucket {
                rate,
                burst,
                state: Mutex::new((burst, tokio::time::Instant::now())),
            })
        })
    }

    /// Take `n` bytes; returns how long the caller must wait before sending
    /// more.
    fn take(&self, n: usize) -> Duration {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = tokio::time::Instant::now();
        let filled = s.0 + now.duration_since(s.1).as_secs_f64() * self.rate as f64;
        s.0 = filled.min(self.burst) - n as f64;
        s.1 = now;
        if s.0 >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-s.0 / self.rate as f64)
        }
    }
}

/// The buckets one transfer draws from (empty: unlimited).
#[derive(Debug, Default, Clone)]
pub struct Throttle(Vec<Arc<Bucket>>);

impl Throttle {
    pub fn is_unlimited(&self) -> bool {
        self.0.is_empty()
    }

    /// Account for `n` bytes moved, sleeping as long as the slowest bucket
    /// requires.
    pub async fn consume(&self, n: usize) {
        let wait = self.0.iter().map(|b| b.take(n)).max().unwrap_or_default();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

pub mod accounts;
pub mod bans;
pub mod fleet;
#[cfg(test)]
mod tests;
