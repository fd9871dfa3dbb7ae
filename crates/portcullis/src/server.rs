//! The accept loop: bind the control listeners, say what a firewall must let
//! through, and run one [`Session`] task per connection until shutdown.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{error, info_span, Instrument};

use crate::auth::ConfigAuthenticator;
use crate::data::PortPool;
use crate::options::ServerOptions;
use crate::session::{Session, Shared};

/// Bind the configured listeners, print the start banner, and serve until
/// SIGINT or SIGTERM.
pub async fn serve(options: ServerOptions) -> std::io::Result<()> {
    let mut listeners = Vec::new();
    for addr in &options.listen {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
        listeners.push(l);
    }
    let bound: Vec<SocketAddr> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    print!("{}", banner(&options, &bound));
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        trigger.cancel();
    });
    let shared = Arc::new(Shared {
        auth: Arc::new(ConfigAuthenticator::new(&options)),
        ports: PortPool::new(options.passive.ports.clone()),
        options,
    });
    run(listeners, shared, shutdown).await;
    Ok(())
}

/// Accept on every listener until `shutdown` is cancelled.
pub async fn run(listeners: Vec<TcpListener>, shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        tasks.spawn(accept_loop(listener, shared.clone(), shutdown.clone()));
    }
    while tasks.join_next().await.is_some() {}
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, shutdown: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.cancelled() => return,
        };
        let (stream, peer) = match accepted {
            Ok(v) => v,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                error!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let local = match stream.local_addr() {
            Ok(a) => a,
            Err(_) => continue,
        };
        // Replies are small and a client waits for each: send them at once.
        let _ = stream.set_nodelay(true);
        let span = info_span!("session", peer = %peer, user = tracing::field::Empty);
        let session = Session::new(shared.clone(), peer, local);
        let stop = shutdown.clone();
        tokio::spawn(
            async move {
                tokio::select! {
                    _ = session.run(stream) => {}
                    _ = stop.cancelled() => {}
                }
            }
            .instrument(span),
        );
    }
}

async fn wait_for_signal() {
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

/// The start banner: where we listen, the data ports, and what a firewall
/// must open for each mode. Tests read the "listening on" lines.
pub fn banner(o: &ServerOptions, bound: &[SocketAddr]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for addr in bound {
        let _ = writeln!(
            s,
            "portcullis {} listening on {addr}",
            env!("CARGO_PKG_VERSION")
        );
    }
    let ports: Vec<String> = bound.iter().map(|a| a.port().to_string()).collect();
    let control = ports.join(", ");
    let (lo, hi) = (o.passive.ports.start(), o.passive.ports.end());
    if o.passive.enabled {
        let adv = match o.passive.address {
            Some(a) => a.to_string(),
            None => "the control connection's local address".to_owned(),
        };
        let _ = writeln!(
            s,
            "passive mode: on, data ports {lo}-{hi}, PASV advertises {adv}"
        );
    } else {
        let _ = writeln!(s, "passive mode: off (PASV/EPSV refused)");
    }
    if o.active.enabled {
        let from = match o.active.source_port {
            0 => "any local port".to_owned(),
            p => format!("local port {p}"),
        };
        let _ = writeln!(
            s,
            "active mode: on, connecting back to clients' ports >= 1024 from {from}"
        );
    } else {
        let _ = writeln!(s, "active mode: off (PORT/EPRT refused)");
    }
    match &o.anonymous {
        Some(a) => {
            let access = if a.upload {
                "read and upload"
            } else {
                "read-only"
            };
            let _ = writeln!(
                s,
                "anonymous login: on, {access}, root {}",
                a.root.display()
            );
        }
        None => {
            let _ = writeln!(s, "anonymous login: off");
        }
    }
    let _ = writeln!(s, "users: {}", o.users.len());
    let _ = writeln!(s, "firewall on this host must allow (`portcullis firewall --format nftables|iptables|ufw|firewalld|windows` prints the rules):");
    let _ = writeln!(s, "  inbound  TCP {control}  (control connections)");
    if o.passive.enabled {
        let _ = writeln!(s, "  inbound  TCP {lo}-{hi}  (passive data connections)");
    }
    if o.active.enabled {
        let src = match o.active.source_port {
            0 => String::new(),
            p => format!(" from local port {p}"),
        };
        let _ = writeln!(
            s,
            "  outbound TCP to clients' ports 1024-65535{src}  (active data connections)"
        );
    }
    s
}
