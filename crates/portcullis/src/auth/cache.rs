//! `auth.cache_ttl`: a short cache of the accounts that a back end other
//! than `config` accepted, so that a client logging in again and again
//! (a script, a client opening a session per transfer) does not ask the
//! hook or the directory each time.
//!
//! Only successes are kept, never a refusal. An entry is keyed by an
//! HMAC-SHA256, under a key drawn at random when the cache is made (each
//! start and reload), of the user name, the password, the client's address
//! and whether the control connection is with TLS: the password itself is
//! not kept, and the key cannot be tried offline against guessed passwords
//! by anyone who reads the process's memory later without the key. The
//! trade-off: a changed password, a disabled or removed account still logs
//! in, with the account as it was, until its entry is `ttl` old.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use super::{Account, Attempt};

/// Entries kept at most; past it a new success is not cached until old
/// entries expire (so a spray of logins cannot grow memory unbounded).
const MAX_ENTRIES: usize = 10_000;

type Key = [u8; 32];

/// The accounts accepted within the last `ttl`.
#[derive(Debug)]
pub struct Cache {
    ttl: Duration,
    secret: Key,
    entries: Mutex<HashMap<Key, (Instant, Arc<Account>)>>,
}

impl Cache {
    /// `None` for a ttl of zero (the default: no cache).
    pub fn new(ttl: Duration) -> Option<Cache> {
        if ttl.is_zero() {
            return None;
        }
        let mut secret = [0; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        Some(Cache {
            ttl,
            secret,
            entries: Mutex::default(),
        })
    }

    fn key(&self, attempt: &Attempt<'_>) -> Key {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("any key length");
        // Lengths first, so that no two attempts make the same input.
        for part in [attempt.user.as_bytes(), attempt.password.as_bytes()] {
            mac.update(&(part.len() as u64).to_be_bytes());
            mac.update(part);
        }
        mac.update(attempt.client_ip.to_canonical().to_string().as_bytes());
        mac.update(&[u8::from(attempt.tls)]);
        mac.finalize().into_bytes().into()
    }

    /// The account accepted for these very credentials within `ttl`.
    pub fn get(&self, attempt: &Attempt<'_>) -> Option<Arc<Account>> {
        let key = self.key(attempt);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(&key) {
            Some((at, account)) if at.elapsed() < self.ttl => Some(account.clone()),
            Some(_) => {
                entries.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Remember a success.
    pub fn put(&self, attempt: &Attempt<'_>, account: &Arc<Account>) {
        let key = self.key(attempt);
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_ENTRIES {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| at.elapsed() < ttl);
            if entries.len() >= MAX_ENTRIES {
                return;
            }
        }
        entries.insert(key, (Instant::now(), account.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::auth::loopback_attempt as attempt;

    fn account() -> Arc<Account> {
        Arc::new(Account {
            name: "carol".into(),
            root: crate::storage::RootSpec::Local("/tmp".into()),
            permissions: Default::default(),
            anonymous: false,
            policy: Default::default(),
        })
    }

    #[test]
    fn only_the_same_credentials_from_the_same_client_within_the_ttl() {
        assert!(Cache::new(Duration::ZERO).is_none());
        let c = Cache::new(Duration::from_secs(60)).unwrap();
        c.put(&attempt("carol", "pw"), &account());
        assert_eq!(c.get(&attempt("carol", "pw")).unwrap().name, "carol");
        assert!(c.get(&attempt("carol", "other")).is_none());
        assert!(c.get(&attempt("carolpw", "")).is_none());
        let tls = Attempt {
            tls: true,
            ..attempt("carol", "pw")
        };
        assert!(c.get(&tls).is_none());
        let elsewhere = Attempt {
            client_ip: std::net::Ipv4Addr::new(127, 0, 0, 2).into(),
            ..attempt("carol", "pw")
        };
        assert!(c.get(&elsewhere).is_none());
        let key = c.key(&attempt("carol", "pw"));
        // Another cache (a restart) has another key.
        let d = Cache::new(Duration::from_secs(60)).unwrap();
        assert_ne!(d.key(&attempt("carol", "pw")), key);
    }

    #[test]
    fn an_entry_expires() {
        let c = Cache::new(Duration::from_millis(1)).unwrap();
        c.put(&attempt("carol", "pw"), &account());
        let t = Instant::now();
        while t.elapsed() < Duration::from_millis(5) {
            std::thread::yield_now();
        }
        assert!(c.get(&attempt("carol", "pw")).is_none());
        assert!(c.entries.lock().unwrap().is_empty());
    }
}
