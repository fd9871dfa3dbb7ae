//! A root's quota usage shared by a fleet's nodes through Redis (when
//! `[cluster] redis` is set), so that uploads through several nodes into
//! one root never pass its quota together.
//!
//! Keys, under `cluster.key_prefix`, with `H` the first 32 hex digits of
//! the SHA-256 of the root (its tally key: a local root's canonical path,
//! an object store's `s3://bucket/prefix`):
//! - `quota:H` (hash, no expiry): `bytes` and `files` stored, `counted`
//!   once the first scan filled it, `root` for people reading Redis;
//! - `quota:H:scan` (string, expires with the longest scan): the node
//!   scanning the root for the fleet;
//! - `quota:H:nodes` (set): the nodes that hold reservations there;
//! - `quota:H:res:NODE` (hash, expires after [`NODE_TTL`], refreshed
//!   every [`HEARTBEAT`] by its node): the bytes and new files that
//!   node's uploads in flight have reserved. A node killed with `kill -9`
//!   frees its reservations when its key expires.
//!
//! Every call is one atomic Lua script: a chunk of a lease (checking
//! stored + every node's reservations + the chunk against the limit), an
//! adjustment (a commit, a deletion, a given-up upload) and a refresh.
//! The node's reservation is always written whole, from its own tally,
//! under [`Fleet::io`], so a lost or late call is repaired by the next one.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::Script;
use sha2::{Digest, Sha256};

use crate::cluster::{Cluster, Unavailable, HEARTBEAT, NODE_TTL};

/// How long a node may hold the scan lock (a scan's longest time, and a
/// margin).
pub(super) const SCAN_LOCK: Duration = Duration::from_secs(660);

/// Shared state of the root's usage and reservations (`KEYS`: usage,
/// nodes, this node's reservation). Refuses (first value 0) when the
/// bytes or the file asked for would pass the limits, answers -1 when the
/// root is not counted there; otherwise records this node's new
/// reservation whole.
static GRANT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
if redis.call('HEXISTS', KEYS[1], 'counted') == 0 then
  return {-1, 0, 0, 0}
end
local used_b = tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0')
local used_f = tonumber(redis.call('HGET', KEYS[1], 'files') or '0')
local res_b, res_f = 0, 0
for _, n in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if n ~= ARGV[2] then
    local v = redis.call('HMGET', ARGV[1] .. n, 'bytes', 'files')
    if not v[1] and not v[2] then
      redis.call('SREM', KEYS[2], n)
    else
      res_b = res_b + tonumber(v[1] or '0')
      res_f = res_f + tonumber(v[2] or '0')
    end
  end
end
local mine_b, mine_f = tonumber(ARGV[3]), tonumber(ARGV[4])
local need, chunk, lim_b = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local file, lim_f = tonumber(ARGV[8]), tonumber(ARGV[9])
if file > 0 and lim_f >= 0 and used_f + res_f + mine_f + file > lim_f then
  return {0, 0, used_b, used_f}
end
local grant = need
if need > 0 then
  if lim_b >= 0 then
    local left = lim_b - used_b - res_b - mine_b
    if left < need then
      return {0, 0, used_b, used_f}
    end
    grant = math.max(need, math.min(chunk, math.floor(left / 16)))
  else
    grant = math.max(need, chunk)
  end
end
redis.call('HSET', KEYS[3], 'bytes', mine_b + grant, 'files', mine_f + file)
redis.call('PEXPIRE', KEYS[3], ARGV[10])
redis.call('SADD', KEYS[2], ARGV[2])
return {1, grant, used_b, used_f}
"#,
    )
});

/// Apply a change to the stored usage (only once counted) and write this
/// node's reservation whole (`KEYS`: usage, nodes, this node's
/// reservation). Returns whether the root is counted there, and its
/// stored bytes and files.
static ADJUST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local db, df = tonumber(ARGV[1]), tonumber(ARGV[2])
local counted = redis.call('HEXISTS', KEYS[1], 'counted')
if counted == 1 then
  if db ~= 0 and redis.call('HINCRBY', KEYS[1], 'bytes', db) < 0 then
    redis.call('HSET', KEYS[1], 'bytes', 0)
  end
  if df ~= 0 and redis.call('HINCRBY', KEYS[1], 'files', df) < 0 then
    redis.call('HSET', KEYS[1], 'files', 0)
  end
end
if tonumber(ARGV[3]) == 0 and tonumber(ARGV[4]) == 0 then
  redis.call('DEL', KEYS[3])
  redis.call('SREM', KEYS[2], ARGV[6])
else
  redis.call('HSET', KEYS[3], 'bytes', ARGV[3], 'files', ARGV[4])
  redis.call('PEXPIRE', KEYS[3], ARGV[5])
  redis.call('SADD', KEYS[2], ARGV[6])
end
return {counted, tonumber(redis.call('HGET', KEYS[1], 'bytes') or '0'),
        tonumber(redis.call('HGET', KEYS[1], 'files') or '0')}
"#,
    )
});

/// The root's stored usage and every live node's reservations (`KEYS`:
/// usage, nodes): `{counted, bytes, files, reserved bytes, reserved files}`.
static READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local v = redis.call('HMGET', KEYS[1], 'counted', 'bytes', 'files')
local res_b, res_f = 0, 0
for _, n in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  local r = redis.call('HMGET', ARGV[1] .. n, 'bytes', 'files')
  res_b = res_b + tonumber(r[1] or '0')
  res_f = res_f + tonumber(r[2] or '0')
end
return {v[1] and 1 or 0, tonumber(v[2] or '0'), tonumber(v[3] or '0'), res_b, res_f}
"#,
    )
});

/// What Redis holds for a root.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shared {
    /// The first scan filled it.
    pub counted: bool,
    pub bytes: u64,
    pub files: u64,
    /// Every node's reservations.
    pub reserved_bytes: u64,
    pub reserved_files: u64,
}

/// A chunk asked of the fleet: granted (the bytes reserved, and the
/// stored usage as Redis had it), refused, or not asked because Redis
/// holds no count of the root (it lost its data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    Granted { bytes: u64, used: (u64, u64) },
    Refused { used: (u64, u64) },
    Uncounted,
}

/// One root's keys and the cluster's client.
pub struct Fleet {
    cluster: Arc<Cluster>,
    usage: String,
    nodes: String,
    res_base: String,
    mine: String,
    lock: String,
    /// Held around every call that writes this node's reservation, and
    /// the local update that goes with it.
    pub io: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet").field("usage", &self.usage).finish()
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A limit for the scripts: -1 for none.
fn lim(l: Option<u64>) -> i64 {
    l.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX))
}

pub(super) fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Fleet {
    pub fn new(cluster: Arc<Cluster>, root: &str) -> Fleet {
        let digest = Sha256::digest(root.as_bytes());
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        let base = cluster.key(&format!("quota:{hex}"));
        let res_base = format!("{base}:res:");
        Fleet {
            mine: format!("{res_base}{}", cluster.node()),
            usage: base.clone(),
            nodes: format!("{base}:nodes"),
            lock: format!("{base}:scan"),
            res_base,
            cluster,
            io: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether the fleet's state can be used now (else: the node's own).
    pub fn up(&self) -> bool {
        self.cluster.is_up()
    }

    /// Ask for `need` bytes (at least; up to `chunk`) and `file` new
    /// files, this node holding `mine` already. Call with [`Fleet::io`].
    #[allow(clippy::too_many_arguments)]
    pub async fn grant(
        &self,
        mine: (u64, u64),
        need: u64,
        chunk: u64,
        bytes_limit: Option<u64>,
        file: bool,
        files_limit: Option<u64>,
    ) -> Result<Grant, Unavailable> {
        let mut inv = GRANT.prepare_invoke();
        inv.key(&self.usage).key(&self.nodes).key(&self.mine);
        inv.arg(&self.res_base)
            .arg(self.cluster.node())
            .arg(signed(mine.0))
            .arg(signed(mine.1))
            .arg(signed(need))
            .arg(signed(chunk))
            .arg(lim(bytes_limit))
            .arg(i64::from(file))
            .arg(lim(files_limit))
            .arg(ms(NODE_TTL));
        let (ok, bytes, ub, uf): (i64, u64, u64, u64) = self
            .cluster
            .run("quota grant", |mut c| async move {
                inv.invoke_async(&mut c).await
            })
            .await?;
        Ok(if ok < 0 {
            Grant::Uncounted
        } else if ok == 1 {
            Grant::Granted {
                bytes,
                used: (ub, uf),
            }
        } else {
            Grant::Refused { used: (ub, uf) }
        })
    }

    /// Change the stored usage by `delta` (bytes, files) and write this
    /// node's reservation `mine` whole. Call with [`Fleet::io`]. Returns
    /// the stored usage, `None` if Redis holds no count of the root.
    pub async fn adjust(
        &self,
        delta: (i64, i64),
        mine: (u64, u64),
    ) -> Result<Option<(u64, u64)>, Unavailable> {
        let mut inv = ADJUST.prepare_invoke();
        inv.key(&self.usage).key(&self.nodes).key(&self.mine);
        inv.arg(delta.0)
            .arg(delta.1)
            .arg(signed(mine.0))
            .arg(signed(mine.1))
            .arg(ms(NODE_TTL))
            .arg(self.cluster.node());
        let (counted, bytes, files): (i64, u64, u64) = self
            .cluster
            .run("quota adjust", |mut c| async move {
                inv.invoke_async(&mut c).await
            })
            .await?;
        Ok((counted == 1).then_some((bytes, files)))
    }

    /// The root's shared usage.
    pub async fn read(&self) -> Result<Shared, Unavailable> {
        let mut inv = READ.prepare_invoke();
        inv.key(&self.usage).key(&self.nodes).arg(&self.res_base);
        let (counted, bytes, files, rb, rf): (i64, u64, u64, u64, u64) = self
            .cluster
            .run("quota read", |mut c| async move {
                inv.invoke_async(&mut c).await
            })
            .await?;
        Ok(Shared {
            counted: counted == 1,
            bytes,
            files,
            reserved_bytes: rb,
            reserved_files: rf,
        })
    }

    /// Take the scan lock for this node: `false` if another node holds it.
    pub async fn lock_scan(&self) -> Result<bool, Unavailable> {
        let key = self.lock.clone();
        let node = self.cluster.node().to_owned();
        let got: Option<String> = self
            .cluster
            .run("quota scan lock", |mut c| async move {
                redis::cmd("SET")
                    .arg(key)
                    .arg(node)
                    .arg("NX")
                    .arg("PX")
                    .arg(ms(SCAN_LOCK))
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(got.is_some())
    }

    /// Store a scan's count for the fleet, and free the scan lock.
    pub async fn store_count(&self, root: &str, bytes: u64, files: u64) -> Result<(), Unavailable> {
        let (usage, lock, root) = (self.usage.clone(), self.lock.clone(), root.to_owned());
        self.cluster
            .run("quota count", |mut c| async move {
                redis::pipe()
                    .atomic()
                    .hset_multiple(
                        &usage,
                        &[
                            ("bytes", bytes.to_string()),
                            ("files", files.to_string()),
                            ("counted", "1".to_owned()),
                            ("root", root),
                        ],
                    )
                    .ignore()
                    .del(&lock)
                    .ignore()
                    .query_async::<()>(&mut c)
                    .await
            })
            .await
    }

    /// Free the scan lock after a failed scan.
    pub async fn unlock_scan(&self) {
        let lock = self.lock.clone();
        let _ = self
            .cluster
            .run("quota scan unlock", |mut c| async move {
                redis::cmd("DEL").arg(lock).query_async::<()>(&mut c).await
            })
            .await;
    }
}

/// How often a node writes its reservations again (their time to live
/// is [`NODE_TTL`]).
pub const REFRESH: Duration = HEARTBEAT;
