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

mod banner;
pub use banner::banner;

mod signals;
mod stores;
use signals::{reload_on_sighup, reopen_on_sigusr1, wait_for_signal};

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
        .chain(options.users.iter().map(|u| &u.root))
        .filter_map(|r| r.local());
    for dir in dirs {
        if roots.contains_key(dir) {
            continue;
        }
        if let Ok(s) = open_root(dir, options) {
            roots.insert(dir.to_owned(), s);
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
    let checked = stores::check(&options).await;
    if !checked.fatal.is_empty() {
        return Err(std::io::Error::other(checked.fatal.join("\nerror: ")));
    }
    print!(
        "{}",
        banner(&options, &bound, &bound_implicit, &checked.lines)
    );
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
    let s3 = options.s3.clone();
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
            s3,
            roots
                .into_iter()
                .map(|(p, s)| {
                    (
                        crate::storage::RootSpec::Local(p),
                        Arc::new(s) as Arc<dyn Storage>,
                    )
                })
                .chain(checked.opened),
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
