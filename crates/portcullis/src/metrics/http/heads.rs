//! The metrics listener's connections that have not sent their request
//! head yet, oldest first, at most [`MAX_WAITING`]: one more closes the
//! oldest of them.
//!
//! Why the oldest goes rather than the newcomer: a limit that turns new
//! connections away is held by whoever keeps that many idle connections
//! open (renewing them as the header timeout closes them), and then the
//! balancer's `/ready` probe is turned away too and the node is taken
//! out. Closing the oldest instead, a probe that sends its request as it
//! connects (within milliseconds) is closed only if [`MAX_WAITING`] newer
//! connections arrive in that time: a flood, not a handful of idle
//! sockets. Past the head, a connection holds no place here.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// Connections waiting for their request head at once.
pub const MAX_WAITING: usize = 64;

/// The connections waiting for their request head.
#[derive(Debug, Default)]
pub struct Heads {
    /// Oldest first; a send on the sender closes that connection.
    waiting: Mutex<VecDeque<(u64, oneshot::Sender<()>)>>,
    next_id: std::sync::atomic::AtomicU64,
}

/// One connection's place among those waiting for their head; dropped
/// with the connection, it leaves.
#[derive(Debug)]
pub struct Place {
    heads: Arc<Heads>,
    id: u64,
}

/// Resolves with `Ok` when its connection is to be closed for a newer
/// one, with `Err` once the connection has left the queue.
pub type Evicted = oneshot::Receiver<()>;

impl Heads {
    /// A new connection joins, the oldest leaving if there are too many.
    pub fn join(self: &Arc<Self>) -> (Place, Evicted) {
        let id = self
            .next_id
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, evicted) = oneshot::channel();
        let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        w.push_back((id, tx));
        while w.len() > MAX_WAITING {
            if let Some((_, oldest)) = w.pop_front() {
                let _ = oldest.send(());
            }
        }
        let place = Place {
            heads: self.clone(),
            id,
        };
        (place, evicted)
    }

    fn remove(&self, id: u64) {
        let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = w.iter().position(|(q, _)| *q == id) {
            w.remove(i);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.waiting.lock().unwrap().len()
    }
}

impl Place {
    /// The request head has arrived: the connection leaves the queue.
    pub fn arrived(&self) {
        self.heads.remove(self.id);
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.heads.remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_waiting_connection_makes_room() {
        let heads = Arc::new(Heads::default());
        let mut joined: Vec<(Place, Evicted)> = (0..MAX_WAITING).map(|_| heads.join()).collect();
        assert_eq!(heads.len(), MAX_WAITING);
        // The second one has its head: it leaves, and is never evicted.
        joined[1].0.arrived();
        let _a = heads.join();
        assert!(joined[0].1.try_recv().is_err(), "room was made");
        // Full again: the oldest goes; a connection that ends leaves.
        let _b = heads.join();
        assert_eq!(joined[0].1.try_recv(), Ok(()));
        assert!(matches!(
            joined[1].1.try_recv(),
            Err(oneshot::error::TryRecvError::Closed)
        ));
        assert!(joined[2].1.try_recv().is_err());
        assert_eq!(heads.len(), MAX_WAITING);
        drop(joined);
        assert_eq!(heads.len(), 2);
    }
}
