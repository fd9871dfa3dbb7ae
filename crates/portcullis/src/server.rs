//! The accept loop: bind the control listeners, say what a firewall must let
//! through, and run one [`Session`] task per connection until shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{error, info_span, Instrument};

use crate::auth::ConfigAuthenticator;
use crate::data::PortPool;
use crate::options::ServerOptions;
use crate::session::{Channel, Session, Shared};
use crate::storage::{LocalStorage, Storage};
use crate::tls::TlsContext;
use crate::xferlog::Xferlog;

/// What is made before privileges are dropped: the listening sockets (ports
/// below 1024 need root), the TLS certificate (its key is often readable by
/// root only), the users' root directories (opened once; a dropped
/// process keeps access through the open handles) and the xferlog (in a
/// directory such as /var/log that only root may write to).
pub struct Prepared {
    control: Vec<std::net::TcpListener>,
    implicit: Vec<std::net::TcpListener>,
    tls: Option<Arc<TlsContext>>,
    roots: HashMap<PathBuf, LocalStorage>,
    xferlog: Option<Arc<Xferlog>>,
}

impl Prepared {
    /// After the privilege drop, before serving: can the running user use
    /// every root (see [`crate::rootcheck`])? One message per root that it
    /// cannot use; a root that could not be opened before is opened now.
    pub fn check_roots(
        &mut self,
        options: &ServerOptions,
        how: crate::rootcheck::RunAs,
    ) -> Vec<String> {
        crate::rootcheck::check(options, &mut self.roots, |d| open_root(d, options), how)
    }
}

/// The storage of a user's root directory, with the server's upload
/// policies (`server.atomic_uploads`, `server.fsync_uploads`).
pub(crate) fn open_root(
    dir: &std::path::Path,
    options: &ServerOptions,
) -> std::io::Result<LocalStorage> {
    crate::storage::Factory::open_local(dir, local_policy(options))
}

fn local_policy(options: &ServerOptions) -> crate::storage::LocalPolicy {
    crate::storage::LocalPolicy {
        atomic: options.atomic_uploads,
        fsync: options.fsync_uploads,
    }
}

/// Bind every listener and load what needs the start-up privileges.
pub fn prepare(options: &ServerOptions) -> std::io::Result<Prepared> {
    let bind = |addr: &SocketAddr, what: &str| {
        let l = std::net::TcpListener::bind(addr).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {addr}{what}: {e}"))
        })?;
        l.set_nonblocking(true)?;
        Ok::<_, std::io::Error>(l)
    };
    let control = options
        .listen
        .iter()
        .map(|a| bind(a, ""))
        .collect::<Result<Vec<_>, _>>()?;
    let implicit = options
        .tls
        .iter()
        .flat_map(|t| &t.implicit_listen)
        .map(|a| bind(a, " (implicit TLS)"))
        .collect::<Result<Vec<_>, _>>()?;
    let tls = match &options.tls {
        Some(t) => Some(Arc::new(TlsContext::new(t.clone()).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
        })?)),
        None => None,
    };
    let xferlog = match &options.log.xferlog {
        Some(p) => Some(Arc::new(Xferlog::open(p).map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!("log.xferlog: cannot open {}: {e}", p.display()),
            )
        })?)),
        None => None,
    };
    Ok(Prepared {
        control,
        implicit,
        tls,
        roots: open_roots(options),
        xferlog,
    })
}

/// Open every root directory that can be opened now. One that cannot is
/// tried again after the privilege drop (root may be refused where the
/// server's user is not, as on NFS with root squashing), by
/// [`Prepared::check_roots`], which then says why if it still fails.
pub fn open_roots(options: &ServerOptions) -> HashMap<PathBuf, LocalStorage> {
    let mut roots = HashMap::new();
    let dirs = options
        .anonymous
        .iter()
        .map(|a| &a.root)
        .chain(options.users.iter().map(|u| &u.root));
    for dir in dirs {
        if roots.contains_key(dir) {
            continue;
        }
        if let Ok(s) = open_root(dir, options) {
            roots.insert(dir.clone(), s);
        }
    }
    roots
}

/// Print the start banner and serve until SIGINT or SIGTERM. Runs inside
/// the tokio runtime.
pub async fn serve(options: ServerOptions, prepared: Prepared) -> std::io::Result<()> {
    let Prepared {
        control,
        implicit,
        tls,
        roots,
        xferlog,
    } = prepared;
    let listeners = control
        .into_iter()
        .map(TcpListener::from_std)
        .collect::<Result<Vec<_>, _>>()?;
    let implicit = implicit
        .into_iter()
        .map(TcpListener::from_std)
        .collect::<Result<Vec<_>, _>>()?;
    let bound: Vec<SocketAddr> = listeners
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    let bound_implicit: Vec<SocketAddr> = implicit
        .iter()
        .filter_map(|l| l.local_addr().ok())
        .collect();
    let mut sinks: Vec<Arc<dyn crate::events::EventSink>> = vec![Arc::new(crate::events::Log)];
    if let Some(x) = xferlog {
        reopen_on_sigusr1(x.clone());
        sinks.push(x);
    }
    print!("{}", banner(&options, &bound, &bound_implicit));
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        trigger.cancel();
    });
    if let Some(t) = &tls {
        tokio::spawn(reload_on_sighup(t.clone()));
    }
    let advertiser = Arc::new(crate::data::Advertiser::new(&options.passive));
    if advertiser.host().is_some() {
        // Resolved once before serving, then kept fresh (dynamic DNS).
        advertiser.refresh().await;
        let a = advertiser.clone();
        let every = options.passive.address_refresh;
        tokio::spawn(async move {
            tokio::time::sleep(every).await;
            a.refresh_every(every).await
        });
    }
    let local = local_policy(&options);
    let shared = Arc::new(Shared {
        advertiser,
        auth: Arc::new(ConfigAuthenticator::new(&options)),
        ports: PortPool::new(options.passive.ports.clone()),
        guard: crate::limits::Guard::new(options.limits.clone()),
        events: Arc::new(crate::events::Events::new(sinks)),
        options,
        tls,
        storage: crate::storage::Factory::new(
            local,
            roots.into_iter().map(|(p, s)| {
                (
                    crate::storage::RootSpec::Local(p),
                    Arc::new(s) as Arc<dyn Storage>,
                )
            }),
        ),
    });
    run(listeners, implicit, shared, shutdown).await;
    Ok(())
}

/// Accept on every listener until `shutdown` is cancelled. Connections on
/// `implicit` listeners start with a TLS handshake (implicit FTPS).
pub async fn run(
    listeners: Vec<TcpListener>,
    implicit: Vec<TcpListener>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
    let mut tasks = tokio::task::JoinSet::new();
    for listener in listeners {
        tasks.spawn(accept_loop(
            listener,
            false,
            shared.clone(),
            shutdown.clone(),
        ));
    }
    for listener in implicit {
        tasks.spawn(accept_loop(
            listener,
            true,
            shared.clone(),
            shutdown.clone(),
        ));
    }
    while tasks.join_next().await.is_some() {}
}

/// SIGHUP: read the certificate and key again. New handshakes use the new
/// pair; running sessions keep theirs. A bad pair is logged and ignored.
async fn reload_on_sighup(tls: Arc<TlsContext>) {
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
fn reopen_on_sigusr1(xferlog: Arc<Xferlog>) {
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

async fn accept_loop(
    listener: TcpListener,
    implicit: bool,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
) {
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
        let ends = match stream.local_addr() {
            Ok(local) => crate::endpoints::Endpoints::direct(peer, local),
            Err(_) => continue,
        };
        let permit = match shared.guard.admit(ends.peer_ip) {
            Ok(p) => p,
            Err(refusal) => {
                shared.events.emit(crate::events::Event::Refused {
                    peer,
                    reason: &refusal,
                });
                tokio::spawn(refuse(stream, refusal, implicit));
                continue;
            }
        };
        // Replies are small and a client waits for each: send them at once.
        let _ = stream.set_nodelay(true);
        let span = info_span!("session", peer = %peer, user = tracing::field::Empty);
        let shared = shared.clone();
        let stop = shutdown.clone();
        tokio::spawn(
            async move {
                tokio::select! {
                    _ = start_session(shared, stream, ends, implicit) => {}
                    _ = stop.cancelled() => {}
                }
                drop(permit);
            }
            .instrument(span),
        );
    }
}

/// Tell a refused client why (421, RFC 959 section 4.2) and close. On an
/// implicit-TLS port a plain-text reply would only confuse the client's TLS
/// stack, so the connection is just closed.
async fn refuse(
    mut stream: tokio::net::TcpStream,
    refusal: crate::limits::Refusal,
    implicit: bool,
) {
    use tokio::io::AsyncWriteExt;
    if !implicit {
        let mut out = Vec::new();
        portcullis_proto::reply::Reply::new(
            portcullis_proto::reply::ReplyCode::NOT_AVAILABLE,
            refusal.to_string(),
        )
        .encode(&mut out);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            let _ = stream.write_all(&out).await;
            let _ = stream.shutdown().await;
        })
        .await;
    }
}

/// Run one session; on an implicit-TLS listener, handshake first (bounded by
/// `tls.handshake_timeout`, so a silent or plain-text client cannot hold
/// the task).
async fn start_session(
    shared: Arc<Shared>,
    stream: tokio::net::TcpStream,
    ends: crate::endpoints::Endpoints,
    implicit: bool,
) {
    let tls = match (&shared.tls, implicit) {
        (Some(tls), true) => Some(tls.clone()),
        _ => None,
    };
    match tls {
        None => {
            Session::new(shared, ends, Channel::Plain(stream))
                .run()
                .await
        }
        Some(tls) => {
            let config = tls.session_configs(ends.peer_ip);
            let limit = tls.options.handshake_timeout;
            match crate::tls::accept(config.control.clone(), stream, limit).await {
                Ok(s) => {
                    Session::new(shared, ends, Channel::implicit(s, config))
                        .run()
                        .await
                }
                Err(e) => tracing::info!(error = %e, "implicit TLS connection refused"),
            }
        }
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
pub fn banner(o: &ServerOptions, bound: &[SocketAddr], implicit: &[SocketAddr]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for addr in bound {
        let _ = writeln!(
            s,
            "portcullis {} listening on {addr}",
            env!("CARGO_PKG_VERSION")
        );
    }
    for addr in implicit {
        let _ = writeln!(
            s,
            "portcullis {} listening on {addr} (implicit TLS)",
            env!("CARGO_PKG_VERSION")
        );
    }
    let ports: Vec<String> = bound
        .iter()
        .chain(implicit)
        .map(|a| a.port().to_string())
        .collect();
    let control = ports.join(", ");
    let (lo, hi) = (o.passive.ports.start(), o.passive.ports.end());
    if o.passive.enabled {
        let mut adv = match &o.passive.address {
            Some(crate::options::PassiveAddress::Ip(a)) => a.to_string(),
            Some(crate::options::PassiveAddress::Host(h)) => format!(
                "{h} (resolved every {}s)",
                o.passive.address_refresh.as_secs()
            ),
            None => "the control connection's local address".to_owned(),
        };
        for (net, a) in &o.passive.by_network {
            let a = a.map_or("its local address".to_owned(), |a| a.to_string());
            adv.push_str(&format!(", to {net}: {a}"));
        }
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
    let _ = writeln!(
        s,
        "umask: {:03o} (new files {:04o}, new directories {:04o})",
        o.umask,
        0o666 & !o.umask,
        0o777 & !o.umask
    );
    match &o.tls {
        Some(t) => {
            let _ = writeln!(
                s,
                "FTPS: AUTH TLS {:?}, data protection {:?}, session reuse {}{}",
                t.mode,
                t.data_protection,
                if t.require_session_reuse {
                    "required"
                } else {
                    "not required"
                },
                if implicit.is_empty() {
                    String::new()
                } else {
                    ", implicit TLS on".to_owned()
                }
            );
        }
        None => {
            let _ = writeln!(s, "FTPS: off (no [tls] section)");
        }
    }
    let _ = writeln!(s, "firewall on this host must allow (`portcullis firewall --format nftables|nftables-file|iptables|ufw|firewalld|windows` prints the rules):");
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
