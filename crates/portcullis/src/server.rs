//! The accept loop: bind the control listeners, say what a firewall must let
//! through, and run one [`Session`] task per connection until SIGTERM or
//! SIGINT; then drain (see [`crate::lifecycle`]): stop accepting, let
//! transfers in flight finish within `server.shutdown_grace`, cut the rest,
//! and wait for the object stores to abort the uploads that were cut.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tracing::{error, info, warn};

use crate::data::PortPool;
use crate::lifecycle::Phase;
use crate::options::ServerOptions;
use crate::session::Shared;
use crate::storage::{LocalStorage, Storage};
use crate::tls::TlsContext;
use crate::xferlog::Xferlog;

mod banner;
pub use banner::banner;
mod checks;
pub use checks::SystemChecks;

mod accept;
pub use accept::run;
mod reload;
pub use reload::Live;
mod signals;
use signals::{reopen_on_sigusr1, Termination};

/// What is made before privileges are dropped: the listening sockets (ports
/// below 1024 need root), the TLS certificate (its key is often readable by
/// root only), the users' root directories (opened once; a dropped
/// process keeps access through the open handles) and the xferlog (in a
/// directory such as /var/log that only root may write to), and the
/// metrics listener, and systemd's notification socket.
pub struct Prepared {
    control: Vec<std::net::TcpListener>,
    implicit: Vec<std::net::TcpListener>,
    /// `passive.single_port`, on each address the control listeners use.
    single: Vec<std::net::TcpListener>,
    tls: Option<Arc<TlsContext>>,
    roots: HashMap<PathBuf, LocalStorage>,
    xferlog: Option<Arc<Xferlog>>,
    metrics: Option<std::net::TcpListener>,
    /// `tls.acme.http_listen`, for HTTP-01 challenges.
    acme_http: Option<std::net::TcpListener>,
    /// systemd's `$NOTIFY_SOCKET`, connected while its path can be reached.
    notifier: Option<crate::systemd::Notifier>,
    /// The control API's socket (`[control] socket`), and why there is
    /// none when the default path could not be used.
    api_socket: (Option<crate::control::socket::Bound>, Option<String>),
    /// The control API over TCP (`control.listen`): its listener, TLS
    /// configuration and tokens, read with the start-up privileges.
    api_tcp: Option<ApiTcp>,
    /// `[cluster]`'s Redis client (its password and CA files read with
    /// the start-up privileges).
    cluster: Option<redis::Client>,
}

/// `control.listen`, made in [`prepare`].
struct ApiTcp {
    listener: std::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    tokens: Arc<crate::control::tokens::Tokens>,
}

impl Prepared {
    /// The control socket's path, when one was bound (the caller removes
    /// it when the start fails after this point).
    pub fn control_socket(&self) -> Option<PathBuf> {
        self.api_socket.0.as_ref().map(|b| b.path.clone())
    }

    /// After the privilege drop, before serving: can the running user use
    /// every root (see [`crate::rootcheck`])? One message per root that it
    /// cannot use; a root that could not be opened before is opened now.
    pub fn check_roots(
        &mut self,
        options: &ServerOptions,
        how: crate::rootcheck::RunAs,
    ) -> crate::rootcheck::Report {
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

/// The xferlog, opened as the user who will reopen it on SIGUSR1: started
/// as root with `server.user`, on a thread that has become that user, so
/// that the file is that user's from the start and a rotation without
/// logrotate's `create` (the file moved away, then made again by the
/// reopen) needs only the directory to be writable by that user.
fn open_xferlog(p: &std::path::Path, options: &ServerOptions) -> std::io::Result<Xferlog> {
    let fail = |e: std::io::Error, hint: String| {
        std::io::Error::new(
            e.kind(),
            format!("log.xferlog: cannot open {}: {e}{hint}", p.display()),
        )
    };
    let Some(id) = options
        .run_as
        .as_ref()
        .filter(|_| crate::privdrop::is_root())
    else {
        return Xferlog::open(p).map_err(|e| fail(e, String::new()));
    };
    let opened = crate::privdrop::on_thread_as(id, || Xferlog::open(p))
        .map_err(|e| std::io::Error::other(format!("log.xferlog: {e}")))?;
    opened.map_err(|e| {
        let dir = p
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        let hint = format!(
            " as user {0}, who reopens it after a rotation: let {0} create files \
             in {1} (chown {0} {1}) and own the file if it exists (chown {0} {2})",
            id.user,
            dir.display(),
            p.display()
        );
        fail(e, hint)
    })
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
    let metrics = options
        .metrics
        .as_ref()
        .map(|a| bind(a, " (metrics.listen)"))
        .transpose()?;
    // Port 80 for a public CA's HTTP-01 challenges: bound while privileged.
    let acme_http = options
        .tls
        .as_ref()
        .and_then(|t| t.acme.as_ref())
        .filter(|a| a.challenge == crate::options::AcmeChallenge::Http01)
        .map(|a| bind(&a.http_listen, " (tls.acme.http_listen)"))
        .transpose()?;
    let mut single = Vec::new();
    if let Some(port) = options
        .passive
        .single_port
        .filter(|_| options.passive.enabled)
    {
        let mut ips: Vec<std::net::IpAddr> = options.listen.iter().map(|a| a.ip()).collect();
        ips.extend(
            options
                .tls
                .iter()
                .flat_map(|t| &t.implicit_listen)
                .map(|a| a.ip()),
        );
        ips.sort();
        ips.dedup();
        for ip in ips {
            single.push(bind(&SocketAddr::new(ip, port), " (passive.single_port)")?);
        }
    }
    let tls = match &options.tls {
        Some(t) => Some(Arc::new(TlsContext::new(t.clone()).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
        })?)),
        None => None,
    };
    let xferlog = match &options.log.xferlog {
        Some(p) => Some(Arc::new(open_xferlog(p, options)?)),
        None => None,
    };
    let api_socket =
        crate::control::socket::bind(&options.control).map_err(std::io::Error::other)?;
    let api_tcp = match &options.control.tcp {
        Some(t) => Some(ApiTcp {
            listener: bind(&t.listen, " (control.listen)")?,
            tls: crate::control::tls_config(&t.cert, &t.key).map_err(std::io::Error::other)?,
            tokens: Arc::new(
                crate::control::tokens::Tokens::load(&t.token_file)
                    .map_err(std::io::Error::other)?,
            ),
        }),
        None => None,
    };
    let cluster = match &options.cluster {
        Some(c) => Some(
            crate::cluster::Cluster::client(c)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
        ),
        None => None,
    };
    Ok(Prepared {
        cluster,
        api_tcp,
        api_socket,
        control,
        implicit,
        single,
        tls,
        roots: open_roots(options),
        xferlog,
        metrics,
        acme_http,
        notifier: crate::systemd::Notifier::from_env(),
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

/// Print the start banner and serve until SIGINT or SIGTERM, then drain.
/// Runs inside the tokio runtime.
pub async fn serve(options: ServerOptions, prepared: Prepared) -> std::io::Result<()> {
    let Prepared {
        control,
        implicit,
        single,
        tls,
        roots,
        xferlog,
        metrics,
        acme_http,
        notifier,
        api_socket,
        api_tcp,
        cluster,
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
    let node: Arc<str> = options.node_name.as_str().into();
    reopen_on_sigusr1(xferlog.clone());
    if let Some(x) = xferlog {
        sinks.push(x);
    }
    let metrics = match metrics {
        Some(l) => {
            let l = TcpListener::from_std(l)?;
            let m = Arc::new(crate::metrics::Metrics::new());
            sinks.push(m.clone());
            Some((l, m))
        }
        None => None,
    };
    // The hooks report their steps to the other sinks (the log and the
    // metrics), and hear every event with them.
    // A sink even without hooks: a reload may add some.
    let declare: Box<dyn Fn(&str) + Send + Sync> = match &metrics {
        Some((_, m)) => {
            let m = m.clone();
            Box::new(move |name| m.declare_hooks(std::iter::once(name)))
        }
        None => Box::new(|_| {}),
    };
    let hooks = crate::events::hooks::Hooks::start(
        &options.events,
        &node,
        Arc::new(crate::events::Events::new(sinks.clone())),
        declare,
    )
    .map_err(std::io::Error::other)?;
    sinks.push(hooks.clone());
    let cluster = match (cluster, &options.cluster) {
        (Some(client), Some(o)) => {
            let c = crate::cluster::Cluster::new(client, o, node.clone())
                .map_err(std::io::Error::other)?;
            c.start().await;
            if let Some((_, m)) = &metrics {
                let from = c.clone();
                m.cluster_from(Box::new(move || (from.is_up(), from.errors())));
            }
            Some(c)
        }
        _ => None,
    };
    let termination = Termination::listen();
    let hangups = reload::hangups();
    let configured = options
        .anonymous
        .iter()
        .map(|a| &a.root)
        .chain(options.users.iter().map(|u| &u.root));
    let checked = crate::storage::stores::check(configured, &options.stores).await;
    if !checked.fatal.is_empty() {
        return Err(std::io::Error::other(checked.fatal.join("\nerror: ")));
    }
    if let Some(a) = metrics.as_ref().and_then(|(l, _)| l.local_addr().ok()) {
        println!("metrics at http://{a}/metrics (and /health, /ready)");
    }
    if let Some(a) = api_tcp.as_ref().and_then(|t| t.listener.local_addr().ok()) {
        println!("control API at https://{a}/v1/ (bearer tokens)");
    }
    print!(
        "{}",
        banner(&options, &bound, &bound_implicit, &checked.lines)
    );
    let advertiser = Arc::new(crate::data::Advertiser::new(&options.passive));
    let local = local_policy(&options);
    let proxy_data = options.proxy.clone().filter(|p| p.data).map(Arc::new);
    let single_port = match options.passive.single_port {
        Some(port) if !single.is_empty() => {
            let sp = crate::data::single::SinglePort::new(port, proxy_data.clone());
            for l in single {
                let l = TcpListener::from_std(l)?;
                // Until the process ends: transfers still draining may use it.
                tokio::spawn(sp.clone().serve(l));
            }
            Some(sp)
        }
        _ => None,
    };
    let stores = options.stores.clone();
    let guard = crate::limits::Guard::shared(options.limits.clone(), cluster.clone()).await;
    let shared = Arc::new(Shared {
        proxy_data,
        single_port,
        advertiser,
        auth: crate::auth::build(&options).map_err(std::io::Error::other)?,
        ports: PortPool::new(options.passive.ports.clone()),
        guard,
        events: Arc::new(crate::events::Events::new(sinks)),
        options,
        tls,
        storage: crate::storage::Factory::new(
            local,
            stores,
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
        lifecycle: Arc::new(crate::lifecycle::Lifecycle::new(notifier)),
        node,
        hooks: Some(hooks.clone()),
        quotas: crate::quota::Quotas::with_cluster(cluster.clone()),
        registry: Default::default(),
        cluster,
    });
    termination.drain(shared.lifecycle.clone());
    // Other nodes' control APIs ask this node for its sessions.
    crate::registry::fleet::Sessions::serve(shared.registry.clone(), shared.cluster.clone());
    // Not ready (for `/ready`, served from just below) until [tls.acme]
    // has its first certificate: `start_acme` waits for it.
    if shared
        .tls
        .as_ref()
        .is_some_and(|t| t.options.acme.is_some() && t.resolver().current().is_none())
    {
        shared.lifecycle.set_waiting(true);
    }
    let live = Arc::new(Live::new(shared.clone()));
    // A host-name passive address: resolved once before serving, then kept
    // fresh (dynamic DNS).
    live.refresh_addresses(&shared).await;
    reload::reload_on_sighup(live.clone(), hangups);
    tokio::spawn(rescan_quotas(live.clone()));
    if let Some((l, m)) = metrics {
        if shared.tls.is_some() {
            let from = live.clone();
            m.certificate_expiry_from(Box::new(move || {
                let ck = from.get().tls.as_ref()?.resolver().current()?;
                crate::tls::expiry_seconds(&ck)
            }));
        }
        let from = live.clone();
        let ports_in_use = Arc::new(move || from.get().ports.in_use());
        let lifecycle = shared.lifecycle.clone();
        tokio::spawn(crate::metrics::http::serve(l, m, ports_in_use, lifecycle));
    }
    let api_path = start_control(api_socket, api_tcp, &live, &shared, &bound, &bound_implicit)?;
    let grace = shared.options.shutdown_grace;
    if !start_acme(&shared, acme_http, &implicit).await? {
        if let Some(p) = api_path {
            let _ = std::fs::remove_file(p);
        }
        return Ok(());
    }
    run(listeners, implicit, live).await;
    if let Some(c) = &shared.cluster {
        c.leave().await;
    }
    if let Some(p) = api_path {
        // As the server's user, this may fail after the privilege drop:
        // the next start replaces a stale socket anyway.
        let _ = std::fs::remove_file(p);
    }
    // The sessions are over: what they reported goes out within the grace.
    hooks.drain(grace).await;
    // Uploads given up on an object store (the drain's cut among them)
    // abort their multipart uploads in tasks of their own: not left
    // behind when the runtime ends.
    crate::storage::wait_for_aborts().await;
    Ok(())
}

/// `limits.quota_rescan`: count every quota root again that often (the
/// interval read again after each round, so that a reload changes it;
/// while it is off, looked at once a minute).
async fn rescan_quotas(live: Arc<Live>) {
    const OFF_CHECK: std::time::Duration = std::time::Duration::from_secs(60);
    loop {
        let every = live.get().options.limits.quota_rescan;
        tokio::time::sleep(every.unwrap_or(OFF_CHECK)).await;
        let shared = live.get();
        if every.is_some() && shared.options.limits.quota_rescan.is_some() {
            shared.quotas.rescan_all();
        }
    }
}

/// Serve the control API on its socket, if there is one; its path.
fn start_control(
    (bound, why_not): (Option<crate::control::socket::Bound>, Option<String>),
    tcp: Option<ApiTcp>,
    live: &Arc<Live>,
    shared: &Arc<Shared>,
    bound_ftp: &[SocketAddr],
    bound_implicit: &[SocketAddr],
) -> std::io::Result<Option<PathBuf>> {
    if let Some(why) = why_not {
        info!("{why}");
    }
    if bound.is_none() && tcp.is_none() {
        return Ok(None);
    }
    let reload_live = live.clone();
    let reload: crate::control::Reload = Arc::new(move || {
        let live = reload_live.clone();
        Box::pin(async move {
            reload::reload_now(&live)
                .await
                .map(|r| (r.changed, r.restart))
        })
    });
    let registry = shared.registry.clone();
    let handle = crate::control::Handle {
        sessions: crate::registry::fleet::Sessions::new(
            shared.registry.clone(),
            shared.node.clone(),
            shared.cluster.clone(),
        ),
        counts: Arc::new(move || registry.counts()),
        guard: shared.guard.clone(),
        lifecycle: shared.lifecycle.clone(),
        reload,
        started: std::time::Instant::now(),
        listeners: bound_ftp
            .iter()
            .map(|a| format!("ftp://{a}"))
            .chain(bound_implicit.iter().map(|a| format!("ftps://{a}")))
            .collect(),
        node: shared.node.clone(),
        events: shared.events.clone(),
        quotas: shared.quotas.clone(),
        cluster: shared.cluster.clone(),
        certificate: {
            let live = live.clone();
            Arc::new(move || certificate_status(&live))
        },
    };
    let handle = Arc::new(handle);
    if let Some(t) = tcp {
        let l = TcpListener::from_std(t.listener)?;
        tokio::spawn(crate::control::serve_tcp(
            l,
            t.tls,
            t.tokens,
            handle.clone(),
        ));
    }
    let Some(b) = bound else {
        return Ok(None);
    };
    let listener = tokio::net::UnixListener::from_std(b.listener)?;
    info!(path = %b.path.display(), "control API on its socket");
    tokio::spawn(crate::control::serve(listener, handle));
    Ok(Some(b.path))
}

/// The certificate served now, for `ctl status`: when it expires and,
/// with `[tls.acme]`, the renewal's last outcome; `null` without TLS.
fn certificate_status(live: &Live) -> serde_json::Value {
    let shared = live.get();
    let Some(tls) = &shared.tls else {
        return serde_json::Value::Null;
    };
    let at = |t: std::time::SystemTime| humantime::format_rfc3339_seconds(t).to_string();
    let resolver = tls.resolver();
    let expires = resolver
        .current()
        .and_then(|ck| crate::tls::expiry_seconds(&ck))
        .map(|left| {
            let now = std::time::SystemTime::now();
            let secs = std::time::Duration::from_secs_f64(left.abs());
            match left >= 0.0 {
                true => at(now + secs),
                false => at(now - secs),
            }
        });
    let acme = tls.options.acme.as_ref().map(|_| {
        let r = resolver.acme_report().unwrap_or_default();
        serde_json::json!({
            "last_installed": r.installed.map(at),
            "last_error": r.error,
            "retry_at": r.retry_at.map(at),
        })
    });
    serde_json::json!({
        "source": if acme.is_some() { "acme" } else { "files" },
        "expires": expires,
        "acme": acme,
    })
}

/// `[tls.acme]`: answer HTTP-01 challenges on `listener` (TLS-ALPN-01
/// ones are answered by the implicit-FTPS listeners) and start the
/// renewal task. Without a certificate from an earlier run, wait for the
/// first one before serving (no FTP is accepted meanwhile: a client that
/// asks for TLS would be refused; `/ready` answers 503; with TLS-ALPN-01
/// `implicit` answers the CA's validation handshakes only); false if
/// SIGTERM or SIGINT came first.
async fn start_acme(
    shared: &Arc<Shared>,
    listener: Option<std::net::TcpListener>,
    implicit: &[TcpListener],
) -> std::io::Result<bool> {
    let Some(tls) = &shared.tls else {
        return Ok(true);
    };
    let Some(options) = tls.options.acme.clone() else {
        return Ok(true);
    };
    let challenges = crate::tls::acme::Challenges::default();
    if let Some(listener) = listener {
        let listener = TcpListener::from_std(listener)?;
        println!(
            "ACME HTTP-01 challenges answered on {}",
            listener.local_addr()?
        );
        tokio::spawn(crate::tls::acme::http01::serve(
            listener,
            challenges.clone(),
        ));
    }
    let (first, issued) = tokio::sync::oneshot::channel();
    let waiting = tls.resolver().current().is_none();
    if waiting {
        println!(
            "waiting for the ACME certificate of {} from {}",
            options.domains.join(", "),
            options.directory
        );
    }
    let alpn = options.challenge == crate::options::AcmeChallenge::TlsAlpn01;
    let acme = crate::tls::acme::Acme::new(options, tls.resolver().clone(), challenges);
    tokio::spawn(acme.run(first));
    if !waiting {
        return Ok(true);
    }
    let lifecycle = shared.lifecycle.clone();
    let validations = async {
        if alpn {
            answer_alpn_validations(tls, implicit).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let got = tokio::select! {
        r = issued => r.is_ok(),
        () = lifecycle.reached(crate::lifecycle::Phase::Closing) => false,
        () = validations => false,
    };
    lifecycle.set_waiting(false);
    Ok(got)
}

/// While the first TLS-ALPN-01 certificate is awaited: handshake every
/// connection to an implicit-FTPS listener, which answers the CA's
/// validations (`acme-tls/1`) and fails for everyone else (there is no
/// certificate to serve yet); no FTP session starts. Runs until dropped.
async fn answer_alpn_validations(tls: &Arc<crate::tls::TlsContext>, implicit: &[TcpListener]) {
    loop {
        let accepted = std::future::poll_fn(|cx| {
            for l in implicit {
                if let std::task::Poll::Ready(r) = l.poll_accept(cx) {
                    return std::task::Poll::Ready(r);
                }
            }
            std::task::Poll::Pending
        })
        .await;
        let (stream, peer) = match accepted {
            Ok(v) => v,
            Err(e) => {
                // EMFILE and the like: wait a moment rather than spin.
                tracing::debug!(error = %e, "implicit TLS: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let config = tls.session_configs(peer.ip()).control();
        let limit = tls.options.handshake_timeout;
        tokio::spawn(async move {
            let r = crate::tls::accept(config, stream, limit).await;
            tracing::debug!(%peer, outcome = %r.err().map(|e| e.to_string()).unwrap_or_default(), "implicit TLS connection while waiting for the ACME certificate");
        });
    }
}
