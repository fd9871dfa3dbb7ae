//! Signals: SIGUSR1 reopens the xferlog, SIGINT and SIGTERM drain the
//! server (a second one stops it); SIGHUP (the reload) is in `reload.rs`.

use super::*;

/// SIGUSR1: open the xferlog's path again, so that lines go to a new file
/// once logrotate has moved the old one away. On an error the old file is
/// kept (logged). Without an xferlog the signal is logged and ignored. The
/// handler is installed before this returns, so that a SIGUSR1 sent once
/// the server listens never meets the default action (which ends the
/// process).
pub(super) fn reopen_on_sigusr1(xferlog: Option<Arc<Xferlog>>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut usr1 = match signal(SignalKind::user_defined1()) {
            Ok(s) => s,
            Err(e) => return error!(error = %e, "cannot handle SIGUSR1 (xferlog reopen)"),
        };
        tokio::spawn(async move {
            while usr1.recv().await.is_some() {
                let Some(xferlog) = &xferlog else {
                    tracing::info!("SIGUSR1: no xferlog to reopen (log.xferlog is not set)");
                    continue;
                };
                let path = xferlog.path().display();
                match xferlog.reopen() {
                    Ok(()) => tracing::info!(path = %path, "xferlog reopened"),
                    Err(e) => error!(
                        path = %path,
                        error = %e,
                        "xferlog reopen failed; writing to the old file"
                    ),
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = xferlog;
}

/// SIGTERM and SIGINT, listened for from the moment this is made (made
/// before the banner, so that a signal sent once the server listens never
/// meets the default action, which ends the process at once).
pub(super) struct Termination {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Termination {
    pub(super) fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let term = signal(SignalKind::terminate())
                .map_err(|e| error!(error = %e, "cannot handle SIGTERM"))
                .ok();
            let int = signal(SignalKind::interrupt())
                .map_err(|e| error!(error = %e, "cannot handle SIGINT"))
                .ok();
            Termination { term, int }
        }
        #[cfg(not(unix))]
        Termination {}
    }

    /// The first SIGTERM or SIGINT starts the drain; a second one ends its
    /// grace at once.
    pub(super) fn drain(self, lifecycle: Arc<crate::lifecycle::Lifecycle>) {
        tokio::spawn(async move {
            let mut me = self;
            me.next().await;
            tracing::info!("SIGTERM or SIGINT: draining (a second one stops at once)");
            // The accept loops close the listeners, then the drain starts.
            lifecycle.advance(Phase::Closing);
            me.next().await;
            tracing::warn!("second SIGTERM or SIGINT: stopping now");
            lifecycle.advance(Phase::Stopping);
        });
    }

    async fn next(&mut self) {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                let got = match s {
                    Some(s) => s.recv().await.is_some(),
                    None => false,
                };
                if !got {
                    std::future::pending::<()>().await;
                }
            }
            tokio::select! {
                _ = recv(&mut self.term) => {}
                _ = recv(&mut self.int) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
