//! Bans and session counts shared by a fleet's nodes through Redis (when
//! `[cluster]` is set). Keys (under `cluster.key_prefix`):
//! - `ban:{ip}`: a ban in force (value: the failures that earned it),
//!   expiring with the ban; `fail:{ip}`: failed logins counted in a window
//!   of `limits.login_failure_window` from the first (the key's TTL);
//!   `strikes:{ip}`: bans so far, each doubling the next, forgotten a day
//!   after the last one. Bans and unbans are published on the bus channel
//!   `bans`; every node keeps a mirror of them that admission reads with
//!   no round trip, read again whole at start and whenever the bus is
//!   subscribed again ([`Cluster::generation`]).
//! - `sessions:user:{name}` and `sessions:ip:{ip}`: sorted sets of the
//!   sessions in the fleet, scored by when they expire; the owning node
//!   refreshes its own every [`HEARTBEAT`] for [`SESSION_TTL`], so those of
//!   a node killed with `kill -9` stop counting within that time. Checked
//!   and added in one script, so that two nodes racing for the last place
//!   cannot both have it. A session that starts while Redis is down
//!   counts on its node only, and in the fleet from the first refresh
//!   after Redis is back.
//!
//! Every call returns [`Unavailable`] while Redis is down: the caller then
//! uses this node's own counts and bans (the [`super::Guard`]'s).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use crate::cluster::{Cluster, Unavailable, HEARTBEAT, NODE_TTL};

use super::bans::{Ban, BanStore};

/// How long a session counts in the fleet after its node last refreshed
/// it: a node that dies without closing its sessions stops counting within
/// this time.
pub const SESSION_TTL: Duration = NODE_TTL;
/// How long the count of bans an address earned (what doubles the next
/// one) is kept after its last ban.
const STRIKES_TTL: Duration = Duration::from_secs(24 * 3600);
/// The longest a repeated ban grows to (as [`super::bans`]).
const MAX_BAN: Duration = Duration::from_secs(24 * 3600);
/// The longest ban the mirror keeps (the control plane's longest, 366
/// days): a longer one heard on the bus or read from Redis is cut to it,
/// so that no message can ban for ever, nor make `ctl bans` fail on a
/// date it cannot write.
const LONGEST_MIRRORED: Duration = Duration::from_secs(366 * 24 * 3600);
/// Bans read back from Redis at most (a mirror no larger than this).
const MAX_MIRROR: usize = 100_000;
const CHANNEL: &str = "bans";

/// KEYS: fail, ban, strikes. ARGV: window ms, failures that ban, ban ms,
/// longest ban ms, strikes ttl ms. Returns the ban's ms, or 0.
const FAIL: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n < tonumber(ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1])
local s = redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
local ms = tonumber(ARGV[3]) * (2 ^ math.min(s - 1, 16))
ms = math.floor(math.min(ms, tonumber(ARGV[4])))
redis.call('SET', KEYS[2], n, 'PX', ms)
return ms
";

/// KEYS: the sorted set. ARGV: most members (0: any), member, ttl ms.
/// Returns 1 when added, 0 when full.
const TAKE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local max = tonumber(ARGV[1])
if max > 0 and redis.call('ZCARD', KEYS[1]) >= max then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

/// KEYS: sorted sets; ARGV: ttl ms, then one member per key.
const REFRESH: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i, k in ipairs(KEYS) do
  redis.call('ZADD', k, now + tonumber(ARGV[1]), ARGV[i + 1])
  redis.call('PEXPIRE', k, ARGV[1])
end
return #KEYS
";

/// A ban or unban on the bus.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Message {
    ip: IpAddr,
    /// Milliseconds; absent: an unban.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ms: Option<u64>,
    #[serde(default)]
    failures: u64,
}

#[derive(Debug, Clone, Copy)]
struct Mirrored {
    until: Instant,
    failures: u64,
}

/// This node's view of the fleet's bans and its places in the fleet's
/// session counts.
#[derive(Debug)]
pub struct Fleet {
    cluster: Arc<Cluster>,
    /// This process among the nodes (session members are `{node}/{id}/{n}`).
    id: u64,
    mirror: Mutex<HashMap<IpAddr, Mirrored>>,
    /// Places this node holds: (sorted set, member), refreshed on the
    /// heartbeat's cadence.
    held: Mutex<HashMap<u64, (String, String)>>,
    next: AtomicU64,
    fail: redis::Script,
    take: redis::Script,
    refresh: redis::Script,
}

/// One session's place in a fleet count; dropping it frees the place.
#[derive(Debug)]
pub struct FleetSlot {
    fleet: Arc<Fleet>,
    n: u64,
}

impl Drop for FleetSlot {
    fn drop(&mut self) {
        let held = self
            .fleet
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.n);
        let (Some((key, member)), Ok(rt)) = (held, tokio::runtime::Handle::try_current()) else {
            // Outside the runtime (its end): the place expires by itself.
            return;
        };
        let fleet = self.fleet.clone();
        rt.spawn(async move {
            let _ = fleet
                .cluster
                .run("session close", |mut c| async move {
                    redis::cmd("ZREM")
                        .arg(&key)
                        .arg(&member)
                        .query_async::<i64>(&mut c)
                        .await
                })
                .await;
        });
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

impl Fleet {
    /// Start sharing through `cluster`: the mirror of bans is read now,
    /// before the node serves (one call, bounded by `cluster.timeout`; a
    /// node just started would otherwise admit a banned address until the
    /// read ends), and kept by a task of its own (which also pushes
    /// `local`'s bans made while Redis was down, and reads again what
    /// could not be read now); held places are refreshed.
    pub async fn start(cluster: Arc<Cluster>, local: Arc<dyn BanStore>) -> Arc<Fleet> {
        let fleet = Arc::new(Fleet {
            cluster,
            id: rand::random(),
            mirror: Mutex::default(),
            held: Mutex::default(),
            next: AtomicU64::new(0),
            fail: redis::Script::new(FAIL),
            take: redis::Script::new(TAKE),
            refresh: redis::Script::new(REFRESH),
        });
        // Both taken before the read: nothing published meanwhile, nor a
        // new subscription of the bus, is missed.
        let bus = fleet.cluster.subscribe(CHANNEL);
        let generation = fleet.cluster.generation();
        let read = fleet.try_resync(&*local).await.is_ok();
        tokio::spawn(fleet.clone().follow(local, bus, generation, read));
        tokio::spawn(fleet.clone().refresher());
        fleet
    }

    fn mirror(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Mirrored>> {
        self.mirror.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Time left on `ip`'s ban in the fleet, as last heard (no round trip).
    pub fn banned(&self, ip: IpAddr) -> Option<Duration> {
        let m = self.mirror();
        m.get(&ip)?.until.checked_duration_since(Instant::now())
    }

    /// The fleet's bans in force, as last heard.
    pub fn list(&self) -> Vec<Ban> {
        let now = Instant::now();
        let wall = SystemTime::now();
        self.mirror()
            .iter()
            .filter_map(|(ip, b)| {
                let left = b.until.checked_duration_since(now)?;
                Some(Ban {
                    address: *ip,
                    failures: usize::try_from(b.failures).unwrap_or(usize::MAX),
                    until: humantime::format_rfc3339_seconds(wall + left).to_string(),
                    left_secs: left.as_secs().max(1),
                })
            })
            .collect()
    }

    fn key(&self, what: &str, ip: IpAddr) -> String {
        self.cluster.key(&format!("{what}:{ip}"))
    }

    /// Count a failed login from `ip` fleet-wide; the ban's length when it
    /// starts one.
    pub async fn failed(
        &self,
        ip: IpAddr,
        o: &crate::options::LimitsOptions,
    ) -> Result<Option<Duration>, Unavailable> {
        let keys = [
            self.key("fail", ip),
            self.key("ban", ip),
            self.key("strikes", ip),
        ];
        let script = self.fail.clone();
        let args = [
            ms(o.login_failure_window),
            u64::from(o.max_login_failures),
            ms(o.ban_time),
            ms(MAX_BAN),
            ms(STRIKES_TTL),
        ];
        let banned: u64 = self
            .cluster
            .run("login failure", |mut c| async move {
                let mut inv = script.prepare_invoke();
                for k in &keys {
                    inv.key(k);
                }
                for a in args {
                    inv.arg(a);
                }
                inv.invoke_async(&mut c).await
            })
            .await?;
        if banned == 0 {
            return Ok(None);
        }
        let failures = u64::from(o.max_login_failures);
        self.mirrored(ip, banned, failures);
        self.announce(Message {
            ip,
            ms: Some(banned),
            failures,
        })
        .await;
        Ok(Some(Duration::from_millis(banned)))
    }

    /// Ban `ip` for `time` in the whole fleet.
    pub async fn ban(&self, ip: IpAddr, time: Duration) -> Result<(), Unavailable> {
        let key = self.key("ban", ip);
        let t = ms(time);
        self.cluster
            .run("ban", |mut c| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(0)
                    .arg("PX")
                    .arg(t)
                    .query_async::<()>(&mut c)
                    .await
            })
            .await?;
        self.mirrored(ip, t, 0);
        self.announce(Message {
            ip,
            ms: Some(t),
            failures: 0,
        })
        .await;
        Ok(())
    }

    /// Lift `ip`'s ban in the whole fleet and forget its failures;
    /// `Ok(false)`: it was not banned.
    pub async fn unban(&self, ip: IpAddr) -> Result<bool, Unavailable> {
        let ban = self.key("ban", ip);
        let others = [self.key("fail", ip), self.key("strikes", ip)];
        let removed: i64 = self
            .cluster
            .run("unban", |mut c| async move {
                let (n, _): (i64, i64) = redis::pipe()
                    .cmd("DEL")
                    .arg(&ban)
                    .cmd("DEL")
                    .arg(&others[..])
                    .query_async(&mut c)
                    .await?;
                Ok(n)
            })
            .await?;
        let was = self
            .mirror()
            .remove(&ip)
            .is_some_and(|b| b.until > Instant::now());
        self.announce(Message {
            ip,
            ms: None,
            failures: 0,
        })
        .await;
        Ok(removed > 0 || was)
    }

    fn mirrored(&self, ip: IpAddr, ms: u64, failures: u64) {
        let mut m = self.mirror();
        if m.len() >= MAX_MIRROR && !m.contains_key(&ip) {
            let now = Instant::now();
            m.retain(|_, b| b.until > now);
            if m.len() >= MAX_MIRROR {
                return;
            }
        }
        let left = Duration::from_millis(ms).min(LONGEST_MIRRORED);
        m.insert(
            ip,
            Mirrored {
                until: Instant::now() + left,
                failures,
            },
        );
    }

    async fn announce(&self, m: Message) {
        if let Ok(bytes) = serde_json::to_vec(&m) {
            let _ = self.cluster.publish(CHANNEL, bytes).await;
        }
    }

    /// Keep the mirror: apply what the bus says, and read every ban again
    /// when the start could not (`read` false) and whenever the bus was
    /// subscribed again (messages may have been missed while it was not).
    ///
    /// Messages that arrive while the bans are read wait in `bus` and are
    /// applied after the read replaced the mirror, so none is lost to it
    /// (the bus is subscribed before each read: `generation` changes after).
    async fn follow(
        self: Arc<Self>,
        local: Arc<dyn BanStore>,
        mut bus: tokio::sync::broadcast::Receiver<Vec<u8>>,
        mut generation: tokio::sync::watch::Receiver<u64>,
        read: bool,
    ) {
        if !read {
            self.resync(&*local).await;
        }
        loop {
            tokio::select! {
                changed = generation.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    self.resync(&*local).await;
                }
                msg = bus.recv() => match msg {
                    Ok(bytes) => {
                        let Ok(m) = serde_json::from_slice::<Message>(&bytes) else {
                            continue;
                        };
                        match m.ms {
                            Some(ms) => self.mirrored(m.ip, ms, m.failures),
                            None => {
                                self.mirror().remove(&m.ip);
                                // A ban this node made alone while Redis
                                // was down is lifted too.
                                local.unban(m.ip);
                            }
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        self.resync(&*local).await;
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    }

    /// Push `local`'s bans (made while Redis was down) and read the
    /// fleet's bans whole; tried a few times while the health flag catches
    /// up with a Redis just back.
    async fn resync(&self, local: &dyn BanStore) {
        for _ in 0..20 {
            if self.try_resync(local).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn try_resync(&self, local: &dyn BanStore) -> Result<(), Unavailable> {
        let pushed: Vec<(String, u64, u64)> = local
            .list()
            .into_iter()
            .map(|b| {
                (
                    self.key("ban", b.address),
                    b.left_secs.saturating_mul(1000),
                    b.failures as u64,
                )
            })
            .collect();
        let announced: Vec<Message> = local
            .list()
            .into_iter()
            .map(|b| Message {
                ip: b.address,
                ms: Some(b.left_secs.saturating_mul(1000)),
                failures: b.failures as u64,
            })
            .collect();
        let pattern = self.cluster.pattern("ban:*");
        let strip = self.cluster.key("ban:");
        let found: Vec<(String, i64, Option<u64>)> = self
            .cluster
            .run("read bans", |mut c| async move {
                if !pushed.is_empty() {
                    let mut p = redis::pipe();
                    for (k, ms, f) in &pushed {
                        p.cmd("SET")
                            .arg(k)
                            .arg(f)
                            .arg("PX")
                            .arg(ms)
                            .arg("NX")
                            .ignore();
                    }
                    p.query_async::<()>(&mut c).await?;
                }
                let mut keys = Vec::new();
                {
                    use redis::AsyncCommands;
                    let mut iter = c
                        .scan_options::<String>(crate::cluster::scan(pattern))
                        .await?;
                    while let Some(k) = iter.next_item().await {
                        keys.push(k?);
                        if keys.len() >= MAX_MIRROR {
                            break;
                        }
                    }
                }
                let mut out = Vec::with_capacity(keys.len());
                for chunk in keys.chunks(500) {
                    let mut p = redis::pipe();
                    for k in chunk {
                        p.cmd("PTTL").arg(k).cmd("GET").arg(k);
                    }
                    let answers: Vec<(i64, Option<u64>)> = p.query_async(&mut c).await?;
                    out.extend(
                        chunk
                            .iter()
                            .zip(answers)
                            .map(|(k, (ttl, f))| (k.clone(), ttl, f)),
                    );
                }
                Ok(out)
            })
            .await?;
        let now = Instant::now();
        let fresh: HashMap<IpAddr, Mirrored> = found
            .into_iter()
            .filter_map(|(k, ttl, f)| {
                let ip = k.strip_prefix(&strip)?.parse().ok()?;
                let ttl = u64::try_from(ttl).ok().filter(|t| *t > 0)?;
                Some((
                    ip,
                    Mirrored {
                        until: now + Duration::from_millis(ttl).min(LONGEST_MIRRORED),
                        failures: f.unwrap_or(0),
                    },
                ))
            })
            .collect();
        *self.mirror() = fresh;
        // Nodes that read the bans before these were pushed hear of them.
        for m in announced {
            self.announce(m).await;
        }
        Ok(())
    }

    /// A place among `max` (0: any number) in the fleet's count `what`
    /// (`user:{name}` or `ip:{ip}`); `None`: full. While Redis is down
    /// the place is given (the node's own count decides) and put in Redis
    /// by the next refresh after it is back.
    pub async fn take(self: &Arc<Self>, what: &str, max: usize) -> Option<FleetSlot> {
        let key = self.cluster.key(&format!("sessions:{what}"));
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let member = format!("{}/{:016x}/{n}", self.cluster.node(), self.id);
        let script = self.take.clone();
        let (k, m) = (key.clone(), member.clone());
        let added: Result<i64, Unavailable> = self
            .cluster
            .run("session count", |mut c| async move {
                script
                    .key(&k)
                    .arg(max)
                    .arg(&m)
                    .arg(ms(SESSION_TTL))
                    .invoke_async(&mut c)
                    .await
            })
            .await;
        if added == Ok(0) {
            return None;
        }
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(n, (key, member));
        Some(FleetSlot {
            fleet: self.clone(),
            n,
        })
    }

    /// Refresh the places this node holds, every heartbeat (also putting
    /// them back after Redis lost them).
    async fn refresher(self: Arc<Self>) {
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let held: Vec<(u64, String, String)> = self
                .held
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(n, (k, m))| (*n, k.clone(), m.clone()))
                .collect();
            for chunk in held.chunks(500) {
                let script = self.refresh.clone();
                let places = chunk.to_vec();
                let r = self
                    .cluster
                    .run("session refresh", |mut c| async move {
                        let mut inv = script.prepare_invoke();
                        inv.arg(ms(SESSION_TTL));
                        for (_, k, m) in &places {
                            inv.key(k).arg(m);
                        }
                        inv.invoke_async::<i64>(&mut c).await
                    })
                    .await;
                // A session that ended while its place was being refreshed
                // has it put back: take it out again.
                let ended: Vec<(String, String)> = {
                    let now = self.held.lock().unwrap_or_else(|p| p.into_inner());
                    chunk
                        .iter()
                        .filter(|(n, _, _)| !now.contains_key(n))
                        .map(|(_, k, m)| (k.clone(), m.clone()))
                        .collect()
                };
                if r.is_ok() && !ended.is_empty() {
                    let _ = self
                        .cluster
                        .run("session close", |mut c| async move {
                            let mut p = redis::pipe();
                            for (k, m) in &ended {
                                p.cmd("ZREM").arg(k).arg(m).ignore();
                            }
                            p.query_async::<()>(&mut c).await
                        })
                        .await;
                }
                if r.is_err() {
                    break;
                }
            }
        }
    }
}
