//! Where the server is in its life: serving, closing its listeners after
//! SIGTERM or SIGINT, draining, or stopping once `server.shutdown_grace`
//! is over. One value, watched by the accept loops (they stop at
//! [`Phase::Closing`]; once all have stopped, and so every listener is
//! closed, the accept module moves on to [`Phase::Draining`]), by `/ready`
//! (503 from closing on) and by every session's driver, which closes an
//! idle session with 421 as soon as the drain starts, lets a transfer in
//! flight run to its end and cuts it at [`Phase::Stopping`] (426, then
//! 421). A client that has seen a 421 of the drain finds the ports closed.
//! The phase only moves forward. Under systemd (`Type=notify`) the
//! lifecycle also tells the service manager: ready once serving, reloading
//! around a SIGHUP, stopping when the listeners start closing
//! ([`crate::systemd`]).

use tokio::sync::watch;

use crate::systemd::Notifier;

/// A phase of the server's life, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// Accepting sessions.
    Serving,
    /// SIGTERM or SIGINT: the accept loops stop and close their listeners;
    /// sessions go on as while serving.
    Closing,
    /// No new sessions; idle ones are closed, transfers run to their end.
    Draining,
    /// The grace is over: transfers still running are cut.
    Stopping,
}

/// The current [`Phase`], shared by the server and its sessions.
#[derive(Debug)]
pub struct Lifecycle {
    tx: watch::Sender<Phase>,
    /// systemd's notification socket, when started by systemd.
    notifier: Option<Notifier>,
    /// Serving, but not accepting yet: `[tls.acme]` waits for its first
    /// certificate (`/ready` answers 503 meanwhile).
    waiting: std::sync::atomic::AtomicBool,
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle::new(None)
    }
}

impl Lifecycle {
    /// Serving, reporting to `notifier` when there is one.
    pub fn new(notifier: Option<Notifier>) -> Self {
        Lifecycle {
            tx: watch::Sender::new(Phase::Serving),
            notifier,
            waiting: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The listeners are bound and accept: `READY=1` to systemd (also
    /// after a reload, see [`Lifecycle::reloading`]).
    pub fn ready(&self) {
        if let Some(n) = &self.notifier {
            n.ready();
        }
    }

    /// Whether the start waits for something before it accepts (see
    /// [`Lifecycle::set_waiting`]).
    pub fn waiting(&self) -> bool {
        self.waiting.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The start waits (true) for `[tls.acme]`'s first certificate, or no
    /// longer (false).
    pub fn set_waiting(&self, waiting: bool) {
        self.waiting
            .store(waiting, std::sync::atomic::Ordering::Relaxed);
    }

    /// A reload has started: `RELOADING=1` to systemd, until the next
    /// [`Lifecycle::ready`].
    pub fn reloading(&self) {
        if let Some(n) = &self.notifier {
            n.reloading();
        }
    }

    pub fn phase(&self) -> Phase {
        *self.tx.borrow()
    }

    /// A receiver that wakes on each change (see [`watch::Receiver::changed`]).
    pub fn subscribe(&self) -> watch::Receiver<Phase> {
        self.tx.subscribe()
    }

    /// Move on to `phase`; a phase already reached or passed changes nothing.
    /// Leaving [`Phase::Serving`] tells systemd `STOPPING=1`.
    pub fn advance(&self, phase: Phase) {
        let mut stops = false;
        self.tx.send_if_modified(|p| {
            let later = phase > *p;
            if later {
                stops = *p == Phase::Serving;
                *p = phase;
            }
            later
        });
        if stops {
            if let Some(n) = &self.notifier {
                n.stopping();
            }
        }
    }

    /// Wait until `phase` is reached (at once if it already is).
    pub async fn reached(&self, phase: Phase) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so this cannot fail while we wait.
        let _ = rx.wait_for(|p| *p >= phase).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn moves_forward_only_and_wakes_waiters() {
        let l = std::sync::Arc::new(Lifecycle::default());
        let mut rx = l.subscribe();
        let waiter = tokio::spawn({
            let l = l.clone();
            async move { l.reached(Phase::Draining).await }
        });
        l.advance(Phase::Draining);
        waiter.await.unwrap();
        rx.changed().await.unwrap();
        assert_eq!(*rx.borrow_and_update(), Phase::Draining);
        l.advance(Phase::Serving);
        assert_eq!(l.phase(), Phase::Draining);
        assert!(!rx.has_changed().unwrap(), "going back is no change");
        l.advance(Phase::Stopping);
        assert_eq!(l.phase(), Phase::Stopping);
        // Reached already: returns at once.
        l.reached(Phase::Draining).await;
    }
}
