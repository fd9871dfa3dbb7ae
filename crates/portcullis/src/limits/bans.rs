//! Bans after repeated failed logins, behind [`BanStore`]: this process's
//! own store is [`LocalBans`] (a map in memory). With `[cluster]`, the
//! fleet's bans ([`super::fleet`]) are asked besides it, and it decides
//! alone while Redis is down. [`super::Guard`] asks the stores, after
//! `limits.ban_exempt` (networks never banned), which stays with the guard.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::options::LimitsOptions;

/// The longest a repeated ban grows to.
const MAX_BAN: Duration = Duration::from_secs(24 * 3600);
/// Addresses remembered for bans; past this, records that no longer matter
/// are dropped first (so a spray of addresses cannot grow memory unbounded).
const MAX_TRACKED: usize = 100_000;

/// Where bans live. Addresses come canonical (IPv4-mapped IPv6 as IPv4).
pub trait BanStore: Send + Sync + std::fmt::Debug {
    /// Time left on `ip`'s ban, if it is banned.
    fn banned(&self, ip: IpAddr) -> Option<Duration>;
    /// Count a failed login from `ip` under `o`'s rules; the ban's length
    /// when this failure starts one.
    fn failed(&self, ip: IpAddr, o: &LimitsOptions) -> Option<Duration>;
    /// The bans in force.
    fn list(&self) -> Vec<Ban>;
    /// Ban `ip` for `time` from now (replacing a ban in force).
    fn ban(&self, ip: IpAddr, time: Duration);
    /// Lift `ip`'s ban and forget its failures; `false`: it was not banned.
    fn unban(&self, ip: IpAddr) -> bool;
}

/// A ban in force.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Ban {
    pub address: IpAddr,
    /// Failed logins counted since the ban began (the window's).
    pub failures: usize,
    /// RFC 3339, UTC.
    pub until: String,
    /// Seconds left.
    pub left_secs: u64,
}

#[derive(Debug, Default)]
struct BanRecord {
    failures: VecDeque<Instant>,
    banned_until: Option<Instant>,
    /// Bans so far: each doubles the next one.
    bans: u32,
}

/// This process's bans.
#[derive(Debug, Default)]
pub struct LocalBans {
    bans: Mutex<HashMap<IpAddr, BanRecord>>,
}

impl LocalBans {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, BanRecord>> {
        self.bans.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl BanStore for LocalBans {
    fn banned(&self, ip: IpAddr) -> Option<Duration> {
        let until = self.map().get(&ip)?.banned_until?;
        until.checked_duration_since(Instant::now())
    }

    fn failed(&self, ip: IpAddr, o: &LimitsOptions) -> Option<Duration> {
        let now = Instant::now();
        let mut bans = self.map();
        if bans.len() >= MAX_TRACKED && !bans.contains_key(&ip) {
            bans.retain(|_, r| {
                r.banned_until.is_some_and(|u| u > now)
                    || r.failures
                        .back()
                        .is_some_and(|t| now - *t < o.login_failure_window)
            });
            if bans.len() >= MAX_TRACKED {
                return None;
            }
        }
        let r = bans.entry(ip).or_default();
        while r
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) > o.login_failure_window)
        {
            r.failures.pop_front();
        }
        r.failures.push_back(now);
        if r.failures.len() < o.max_login_failures as usize {
            return None;
        }
        r.failures.clear();
        let factor = 1u32.checked_shl(r.bans.min(16)).unwrap_or(u32::MAX);
        let ban = o.ban_time.saturating_mul(factor).min(MAX_BAN);
        r.bans += 1;
        r.banned_until = Some(now + ban);
        Some(ban)
    }

    fn list(&self) -> Vec<Ban> {
        let now = Instant::now();
        let wall = SystemTime::now();
        let mut v: Vec<Ban> = self
            .map()
            .iter()
            .filter_map(|(ip, r)| {
                let left = r.banned_until?.checked_duration_since(now)?;
                Some(Ban {
                    address: *ip,
                    failures: r.failures.len(),
                    until: humantime::format_rfc3339_seconds(wall + left).to_string(),
                    left_secs: left.as_secs().max(1),
                })
            })
            .collect();
        v.sort_by_key(|b| b.address);
        v
    }

    fn ban(&self, ip: IpAddr, time: Duration) {
        let mut bans = self.map();
        let r = bans.entry(ip).or_default();
        r.banned_until = Some(Instant::now() + time);
    }

    fn unban(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        self.map()
            .remove(&ip)
            .and_then(|r| r.banned_until)
            .is_some_and(|u| u > now)
    }
}
