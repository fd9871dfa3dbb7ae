//! State shared by a fleet's nodes through Redis (or Valkey), when
//! `[cluster] redis` is set: the one client every shared store uses.
//!
//! [`Cluster`] owns the connection (the `redis` crate's connection
//! manager, reconnecting by itself), bounds every call by
//! `cluster.timeout`, and keeps one health flag: a call that fails because
//! Redis is unreachable or slow marks it down (logged once), after which
//! calls fail at once, without waiting, until the heartbeat reaches Redis
//! again (logged once). Callers fall back to their node's own state while
//! [`Unavailable`] comes back: nothing is ever refused because Redis is
//! down.
//!
//! Besides calls, it gives:
//! - a heartbeat: `{prefix}node:{name}` set every [`HEARTBEAT`] with a
//!   time to live of [`NODE_TTL`], so that a node killed with `kill -9`
//!   leaves the list of live nodes ([`Cluster::nodes`]) within that time
//!   (a node that stops removes it: [`Cluster::leave`]);
//! - a message bus over Redis pub/sub: [`Cluster::publish`] on a channel
//!   `{prefix}bus:{name}`, [`Cluster::subscribe`] to hear one. Messages
//!   sent while this node was not subscribed are lost: a store that
//!   mirrors shared state watches [`Cluster::generation`], which changes
//!   each time the bus is (re)subscribed, and reads the state again then.
//!   A bus quiet for [`BUS_CHECK`] is pinged, and subscribed again when
//!   the ping is not heard; a call connection that went silent is
//!   replaced by the heartbeat.
//!
//! Keys and channels all start with `cluster.key_prefix`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use redis::{AsyncCommands, IntoConnectionInfo, RedisResult};
use tokio::sync::{broadcast, watch};
use tracing::{error, info, warn};

use crate::options::ClusterOptions;

/// How often this node says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// How long a node counts as alive after its last heartbeat: a node that
/// dies without stopping leaves the fleet's counts within this time.
pub const NODE_TTL: Duration = Duration::from_secs(6);
/// How often an unreachable Redis is tried again.
const RETRY: Duration = Duration::from_secs(1);
/// Messages a slow subscriber may fall behind by before it must read the
/// shared state again (it sees `RecvError::Lagged`).
const BUS_CAPACITY: usize = 1024;
/// How long the bus may stay quiet before this node publishes a ping on
/// it to hear it back; a ping not heard by the next check means the
/// subscription is dead without having been closed (a NAT or firewall
/// that forgot the idle connection), and the bus is subscribed again.
const BUS_CHECK: Duration = Duration::from_secs(5);
/// The bus channel of those pings (no one subscribes to it).
const PING: &str = "ping";

/// Redis could not answer now (down, slow, or an error): use this node's
/// own state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cluster's Redis is unavailable")]
pub struct Unavailable;

/// The shared-state client; one per process, kept across reloads
/// (`[cluster]` changes need a restart).
pub struct Cluster {
    client: redis::Client,
    /// Replaced by a new one when a call got no answer: the manager
    /// reconnects by itself only when the connection fails, not when it
    /// goes silent (a NAT or firewall that forgot it).
    conn: Mutex<ConnectionManager>,
    config: redis::aio::ConnectionManagerConfig,
    prefix: String,
    node: Arc<str>,
    /// Tells this process from another one started with the same
    /// `server.node_name`.
    instance: u64,
    timeout: Duration,
    up: AtomicBool,
    /// When `up` last changed (or the start).
    since: Mutex<SystemTime>,
    /// Calls that failed, for the metrics.
    errors: AtomicU64,
    /// The node stopped ([`Cluster::leave`]): no more heartbeats.
    left: AtomicBool,
    /// Held by a heartbeat while it is sent, and by the leave's removal:
    /// a beat under way when the node leaves cannot set its key again
    /// after the removal.
    beating: tokio::sync::Mutex<()>,
    generation: watch::Sender<u64>,
    bus: Mutex<HashMap<String, broadcast::Sender<Vec<u8>>>>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("prefix", &self.prefix)
            .field("node", &self.node)
            .field("up", &self.is_up())
            .finish_non_exhaustive()
    }
}

pub use crate::options::redact_url as redact;

/// Keys a SCAN call looks at: Redis's default is 10, and the database
/// may hold many other keys (the fleet's quota and session keys, or
/// another application's), which a SCAN walks through all the same: at
/// ten a call, 300,000 keys took longer than `cluster.timeout`.
pub const SCAN_COUNT: usize = 1_000;

/// SCAN for the keys matching `pattern`, [`SCAN_COUNT`] keys a call.
pub fn scan(pattern: String) -> redis::ScanOptions {
    redis::ScanOptions::default()
        .with_pattern(pattern)
        .with_count(SCAN_COUNT)
}

impl Cluster {
    /// The client for `o`: reads `password_file` and `ca_file` (with the
    /// start-up privileges); connects to nothing yet.
    pub fn client(o: &ClusterOptions) -> Result<redis::Client, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let shown = redact(&o.url);
        let mut info = o
            .url
            .as_str()
            .into_connection_info()
            .map_err(|e| format!("cluster.redis: {shown:?}: {e}"))?;
        if let Some(p) = &o.password_file {
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("cluster.password_file: {}: {e}", p.display()))?;
            let password = text.lines().next().unwrap_or("").trim_end_matches('\r');
            if password.is_empty() {
                return Err(format!(
                    "cluster.password_file: {}: the first line is empty",
                    p.display()
                ));
            }
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        match &o.ca_file {
            Some(ca) => {
                let pem = std::fs::read(ca)
                    .map_err(|e| format!("cluster.ca_file: {}: {e}", ca.display()))?;
                redis::Client::build_with_tls(
                    info,
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem),
                    },
                )
            }
            None => redis::Client::open(info),
        }
        .map_err(|e| format!("cluster.redis: {shown:?}: {e}"))
    }

    /// The shared-state client of the node `node` (inside the runtime;
    /// does not wait for Redis: [`Cluster::start`] connects).
    pub fn new(
        client: redis::Client,
        o: &ClusterOptions,
        node: Arc<str>,
    ) -> Result<Arc<Cluster>, String> {
        let shown = redact(&o.url);
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(o.timeout))
            .set_response_timeout(Some(o.timeout))
            .set_number_of_retries(1)
            .set_max_delay(RETRY);
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
            .map_err(|e| format!("cluster.redis: {shown:?}: {e}"))?;
        Ok(Arc::new(Cluster {
            client,
            conn: Mutex::new(conn),
            config,
            prefix: o.key_prefix.clone(),
            node,
            instance: rand::random(),
            timeout: o.timeout,
            up: AtomicBool::new(false),
            since: Mutex::new(SystemTime::now()),
            errors: AtomicU64::new(0),
            left: AtomicBool::new(false),
            beating: tokio::sync::Mutex::new(()),
            generation: watch::channel(0).0,
            bus: Mutex::default(),
        }))
    }

    /// Try Redis once (bounded by the timeout), then keep the heartbeat
    /// and the bus going in tasks of their own. The server starts either
    /// way: down, it serves from its own state until Redis answers.
    pub async fn start(self: &Arc<Self>) {
        match self.beat().await {
            Ok(()) => {
                // Not "reachable again", which says that a loss is over.
                self.up.store(true, Ordering::Release);
                info!(node = %self.node, "cluster: sharing state through Redis");
            }
            Err(why) => {
                self.set_up(false, None);
                warn!(
                    error = %why,
                    "cluster: Redis unreachable at start; serving from this node's own state until it answers"
                );
            }
        }
        tokio::spawn(self.clone().heartbeat());
        tokio::spawn(self.clone().bus_loop());
    }

    /// `server.node_name`.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// `name` under the fleet's prefix.
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// A Redis glob (for `SCAN MATCH`, `PSUBSCRIBE`) matching the keys or
    /// channels `{prefix}{glob}`: the prefix is matched literally, even
    /// when it holds characters that Redis globs give a meaning to.
    pub fn pattern(&self, glob: &str) -> String {
        format!("{}{glob}", glob_escape(&self.prefix))
    }

    /// `cluster.timeout`: the bound on one call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Whether the last call reached Redis.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// When [`Cluster::is_up`] last changed.
    pub fn since(&self) -> SystemTime {
        *self.since.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Calls that failed since the start.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Changes each time the bus is subscribed again (at start, and after
    /// Redis came back): messages may have been missed before it.
    pub fn generation(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// One call (a command, a pipeline, a script) on the shared
    /// connection, bounded by `cluster.timeout`. While Redis is down,
    /// fails at once.
    pub async fn run<T, F, Fut>(&self, what: &'static str, f: F) -> Result<T, Unavailable>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        if !self.is_up() {
            return Err(Unavailable);
        }
        match tokio::time::timeout(self.timeout, f(self.conn())).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                if is_unreachable(&e) {
                    self.set_up(false, Some(&format!("{what}: {e}")));
                } else {
                    error!(call = what, error = %e, "cluster: Redis refused a call");
                }
                Err(Unavailable)
            }
            Err(_) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                self.set_up(
                    false,
                    Some(&format!(
                        "{what}: no answer within {}",
                        humantime::format_duration(self.timeout)
                    )),
                );
                Err(Unavailable)
            }
        }
    }

    /// Send `payload` to every node subscribed to `channel` (this one too).
    pub async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), Unavailable> {
        let channel = self.key(&format!("bus:{channel}"));
        self.run("publish", |mut c| async move {
            c.publish::<_, _, i64>(channel, payload).await.map(|_| ())
        })
        .await
    }

    /// Hear what is published on `channel` from now on (while Redis is
    /// reachable; see [`Cluster::generation`]).
    pub fn subscribe(&self, channel: &str) -> broadcast::Receiver<Vec<u8>> {
        let mut bus = self.bus.lock().unwrap_or_else(|p| p.into_inner());
        bus.entry(channel.to_owned())
            .or_insert_with(|| broadcast::channel(BUS_CAPACITY).0)
            .subscribe()
    }

    /// The live nodes' names (those whose heartbeat has not expired).
    pub async fn nodes(&self) -> Result<Vec<String>, Unavailable> {
        let pattern = self.pattern("node:*");
        let strip = self.key("node:");
        let mut keys: Vec<String> = self
            .run("nodes", |mut c| async move {
                let mut found = Vec::new();
                let mut iter = c.scan_options::<String>(scan(pattern)).await?;
                while let Some(k) = iter.next_item().await {
                    found.push(k?);
                    // Bounded: a fleet is not this large.
                    if found.len() >= 10_000 {
                        break;
                    }
                }
                Ok(found)
            })
            .await?;
        for k in &mut keys {
            *k = k.strip_prefix(&strip).unwrap_or(k).to_owned();
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Drop the connection for a new one (made at the next call).
    fn reconnect(&self) {
        if let Ok(fresh) =
            ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())
        {
            *self.conn.lock().unwrap_or_else(|p| p.into_inner()) = fresh;
        }
    }

    fn set_up(&self, up: bool, why: Option<&str>) {
        let was = self.up.swap(up, Ordering::AcqRel);
        if was == up {
            return;
        }
        *self.since.lock().unwrap_or_else(|p| p.into_inner()) = SystemTime::now();
        if up {
            info!("cluster: Redis reachable again; sharing state again");
        } else if let Some(why) = why {
            warn!(
                error = %why,
                "cluster: Redis unreachable; serving from this node's own state until it answers"
            );
        }
    }

    /// Say this node is alive; warn (once a minute at most) when another
    /// process holds the same name.
    async fn beat(&self) -> Result<(), String> {
        let key = self.key(&format!("node:{}", self.node));
        let value = format!(
            "{{\"instance\":\"{:016x}\",\"pid\":{}}}",
            self.instance,
            std::process::id()
        );
        let ttl = u64::try_from(NODE_TTL.as_millis()).unwrap_or(u64::MAX);
        let mut conn = self.conn();
        let call = async move {
            redis::cmd("SET")
                .arg(&key)
                .arg(&value)
                .arg("PX")
                .arg(ttl)
                .arg("GET")
                .query_async::<Option<String>>(&mut conn)
                .await
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(old)) => {
                let mine = format!("{:016x}", self.instance);
                if let Some(old) = old.filter(|o| !o.contains(&mine)) {
                    warn_duplicate(&self.node, &old);
                }
                Ok(())
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "no answer within {}",
                humantime::format_duration(self.timeout)
            )),
        }
    }

    /// The node stops (its sessions have ended): it leaves the live list
    /// at once, and its heartbeat key is not there to make the process
    /// that replaces it (a restart) think its name is taken by another.
    /// The key is removed only while it still holds this process's
    /// heartbeat (one script, bounded by the timeout).
    pub async fn leave(&self) {
        self.left.store(true, Ordering::Release);
        // A beat under way ends first (bounded by the timeout); none
        // starts after it.
        let _beats_over = self.beating.lock().await;
        let key = self.key(&format!("node:{}", self.node));
        let mine = format!("\"instance\":\"{:016x}\"", self.instance);
        let _ = self
            .run("leave", |mut c| async move {
                redis::Script::new(
                    "if string.find(redis.call('GET', KEYS[1]) or '', ARGV[1], 1, true) then \
                     return redis.call('DEL', KEYS[1]) end return 0",
                )
                .key(key)
                .arg(mine)
                .invoke_async::<i64>(&mut c)
                .await
            })
            .await;
    }

    async fn heartbeat(self: Arc<Self>) {
        loop {
            tokio::time::sleep(if self.is_up() { HEARTBEAT } else { RETRY }).await;
            let _beating = self.beating.lock().await;
            if self.left.load(Ordering::Acquire) {
                return;
            }
            match self.beat().await {
                Ok(()) => self.set_up(true, None),
                Err(why) => {
                    if self.is_up() {
                        self.errors.fetch_add(1, Ordering::Relaxed);
                    }
                    // A connection that went silent is never given up by
                    // the manager: a new one, which fails fast if Redis
                    // is really down.
                    self.reconnect();
                    self.set_up(false, Some(&format!("heartbeat: {why}")));
                }
            }
        }
    }

    /// Hear `{prefix}bus:*` and hand each message to its channel's
    /// subscribers; subscribe again whenever the connection is lost.
    async fn bus_loop(self: Arc<Self>) {
        let pattern = self.pattern("bus:*");
        let strip = self.key("bus:");
        loop {
            let connect = async {
                let mut ps = self.client.get_async_pubsub().await?;
                ps.psubscribe(&pattern).await?;
                RedisResult::Ok(ps)
            };
            let ps = match tokio::time::timeout(self.timeout, connect).await {
                Ok(Ok(ps)) => ps,
                _ => {
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            self.generation.send_modify(|g| *g += 1);
            let mut messages = ps.into_on_message();
            // Anything heard (any node's message) shows the bus alive.
            let mut heard = tokio::time::Instant::now();
            let mut pinged = false;
            let mut check = tokio::time::interval(BUS_CHECK);
            check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            check.tick().await;
            loop {
                tokio::select! {
                    msg = messages.next() => {
                        let Some(msg) = msg else { break };
                        heard = tokio::time::Instant::now();
                        pinged = false;
                        let name = msg.get_channel_name();
                        let Some(channel) = name.strip_prefix(&strip) else {
                            continue;
                        };
                        let sender = self
                            .bus
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .get(channel)
                            .cloned();
                        if let Some(s) = sender {
                            let _ = s.send(msg.get_payload_bytes().to_vec());
                        }
                    }
                    _ = check.tick() => {
                        if heard.elapsed() < BUS_CHECK {
                            continue;
                        }
                        if pinged {
                            warn!(
                                "cluster: the bus did not hear this node's own ping; subscribing again"
                            );
                            break;
                        }
                        // While Redis is down the ping fails: tried again
                        // at the next check.
                        pinged = self.publish(PING, Vec::new()).await.is_ok();
                    }
                }
            }
            tokio::time::sleep(RETRY).await;
        }
    }
}

/// `text` as a Redis glob matching only itself (`*`, `?`, `[`, `]` and
/// `\\` escaped with a backslash).
fn glob_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        if matches!(ch, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

/// The errors that mean Redis cannot be reached (as against an error
/// answer to one call).
fn is_unreachable(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
}

fn warn_duplicate(node: &str, other: &str) {
    static LAST: Mutex<Option<std::time::Instant>> = Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|p| p.into_inner());
    if last.is_some_and(|t| t.elapsed() < Duration::from_secs(60)) {
        return;
    }
    *last = Some(std::time::Instant::now());
    error!(
        node,
        other, "cluster: another process uses this server.node_name; give each node its own"
    );
}

#[cfg(test)]
mod tests {
    use super::{glob_escape, redact};

    #[test]
    fn a_prefix_is_matched_literally_in_globs() {
        assert_eq!(glob_escape("portcullis:"), "portcullis:");
        assert_eq!(glob_escape("f[1]?:"), r"f\[1\]\?:");
        assert_eq!(glob_escape(r"a\b*"), r"a\\b\*");
    }

    #[test]
    fn a_password_in_the_url_is_never_shown() {
        assert_eq!(
            redact("redis://:s3cret@10.0.0.5:6379/2"),
            "redis://:***@10.0.0.5:6379/2"
        );
        assert_eq!(
            redact("rediss://app:pw@redis.example:6380"),
            "rediss://app:***@redis.example:6380"
        );
        assert_eq!(
            redact("redis://127.0.0.1:6379/0"),
            "redis://127.0.0.1:6379/0"
        );
        assert_eq!(redact("not a url"), "not a url");
    }
}
