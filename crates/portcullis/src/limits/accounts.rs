//! Sessions at once of one account on this node (and, with `[cluster]`,
//! in the fleet: [`super::fleet`]) (the account's
//! `max_sessions`, as ProFTPD's MaxClientsPerUser): a login takes a
//! [`Slot`] after its back end accepted it, and the session holds it while
//! it is logged in. The count is by account name, whatever back end
//! decided, and outlives reloads (it lives in the [`super::Guard`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Logged-in sessions per account name.
#[derive(Debug, Default)]
pub struct AccountSessions {
    counts: Mutex<HashMap<String, usize>>,
}

/// One logged-in session of an account; dropping it frees the place.
#[derive(Debug)]
pub struct Slot {
    owner: Arc<AccountSessions>,
    name: String,
    /// Its place in the fleet's count (with `[cluster]`, Redis up).
    pub(super) fleet: Option<super::fleet::FleetSlot>,
}

impl AccountSessions {
    /// A place for one more session of `name`, or `None` when `max` (0:
    /// unlimited) are logged in already. Checked and counted at once, so
    /// that two logins racing for the last place cannot both have it.
    pub fn take(self: &Arc<Self>, name: &str, max: usize) -> Option<Slot> {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(name.to_owned()).or_insert(0);
        // n > 0 here when refused: no empty entry is left behind.
        if max > 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot {
            owner: self.clone(),
            name: name.to_owned(),
            fleet: None,
        })
    }

    /// Sessions of `name` logged in now (what the tests check).
    #[cfg(test)]
    fn count(&self, name: &str) -> usize {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        counts.get(name).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.owner.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.name) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_and_a_dropped_slot_frees_its_place() {
        let s = Arc::new(AccountSessions::default());
        let a = s.take("carol", 2).unwrap();
        let _b = s.take("carol", 2).unwrap();
        assert!(s.take("carol", 2).is_none());
        // Another account has its own count; 0 is unlimited.
        let _d = s.take("dave", 1).unwrap();
        let many: Vec<_> = (0..10).map(|_| s.take("erin", 0).unwrap()).collect();
        assert_eq!(s.count("erin"), 10);
        drop(many);
        assert_eq!(s.count("erin"), 0);
        drop(a);
        assert_eq!(s.count("carol"), 1);
        assert!(s.take("carol", 2).is_some());
        assert!(s.counts.lock().unwrap().get("nobody").is_none());
    }
}
