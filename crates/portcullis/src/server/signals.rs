//! Signals: SIGHUP reloads the certificate, SIGUSR1 reopens the xferlog,
//! SIGINT and SIGTERM stop the server.

use super::*;

/// SIGHUP: read the certificate and key again. New handshakes use the new
/// pair; running sessions keep theirs. A bad pair is logged and ignored.
pub(super) async fn reload_on_sighup(tls: Arc<TlsContext>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            match tls.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(e) => error!(error = %e, "TLS certificate reload failed; keeping the old one"),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = tls;
}

/// SIGUSR1: open the xferlog's path again, so that lines go to a new file
/// once logrotate has moved the old one away. On an error the old file is
/// kept (logged). The handler is installed before this returns, so that a
/// SIGUSR1 sent once the server listens never meets the default action
/// (which ends the process).
pub(super) fn reopen_on_sigusr1(xferlog: Arc<Xferlog>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut usr1 = match signal(SignalKind::user_defined1()) {
            Ok(s) => s,
            Err(e) => return error!(error = %e, "cannot handle SIGUSR1 (xferlog reopen)"),
        };
        tokio::spawn(async move {
            while usr1.recv().await.is_some() {
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

pub(super) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
