//! The control API: see and steer the running server (sessions, kicks,
//! bans, reload, drain, status) over HTTP/1.1 with JSON, on a Unix socket
//! (`[control] socket`, mode 0660, group `[control] group`). The routes
//! and what each does are in [`api`]; the socket's making and its checks
//! in [`socket`]; the TCP listener's web page in [`page`]; `portcullis ctl` (`cli/ctl.rs`) is its client. The
//! connections are served by the metrics listener's code
//! (`metrics/http.rs` `serve_connection`: one request each, header and
//! connection time limits, the oldest connection without its head closed
//! for a new one) with places of their own, so a busy control socket never
//! makes `/health` or `/ready` unanswerable.
//!
//! Every action that changes something is one audit line at INFO
//! (`who`: "socket" here; what changed), quoted as every log line is
//! (`logging.rs`).

pub mod api;
pub mod page;
pub mod socket;
pub mod tokens;

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use tokio::net::UnixListener;
use tokio::sync::Semaphore;
use tracing::{debug, error};

use crate::lifecycle::Lifecycle;
use crate::limits::Guard;

/// Requests handled at once; more get 503.
pub const MAX_REQUESTS: usize = 8;
/// The largest request body read (a ban's few fields).
const MAX_BODY: usize = 16 * 1024;

/// A reload's outcome: the sections it changed and those a restart needs,
/// or every problem.
pub type ReloadOutcome = Result<(Vec<&'static str>, Vec<&'static str>), String>;

/// The reload, as the server does it for SIGHUP.
pub type Reload = Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = ReloadOutcome> + Send>>
        + Send
        + Sync,
>;

/// What the API acts on; given by the server, kept for the process's life.
pub struct Handle {
    /// The sessions: this node's, and with `[cluster]` every live node's.
    pub sessions: crate::registry::fleet::Sessions,
    /// Session counts (all, transferring).
    pub counts: Arc<dyn Fn() -> (usize, usize) + Send + Sync>,
    /// The bans (and `limits.ban_exempt`), through the guard that admits
    /// sessions.
    pub guard: Arc<Guard>,
    pub lifecycle: Arc<Lifecycle>,
    pub reload: Reload,
    /// When the server started.
    pub started: Instant,
    /// The FTP listeners, for the status.
    pub listeners: Vec<String>,
    /// `server.node_name`.
    pub node: Arc<str>,
    /// Where the audit events go (the log among the sinks).
    pub events: Arc<crate::events::Events>,
    /// Each quota account's usage (`ctl quota`), kept across reloads.
    pub quotas: Arc<crate::quota::Quotas>,
    /// `[cluster]`'s shared state, for the status; `None` without one.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// The TLS certificate served now, for the status: its expiry and,
    /// with `[tls.acme]`, the renewal's last outcome (`null` without TLS).
    pub certificate: Arc<dyn Fn() -> serde_json::Value + Send + Sync>,
}

/// Serve the API on `listener` until the runtime ends.
pub async fn serve(listener: UnixListener, handle: Arc<Handle>) {
    let slots = Arc::new(Semaphore::new(MAX_REQUESTS));
    let heads = Arc::new(crate::metrics::http::heads::Heads::default());
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                error!(error = %e, "control socket: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let (place, mut evicted) = heads.join();
        let (handle, slots) = (handle.clone(), slots.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                place.arrived();
                let (handle, slots) = (handle.clone(), slots.clone());
                async move {
                    let Ok(_slot) = slots.try_acquire_owned() else {
                        return Ok::<_, Infallible>(api::json(
                            StatusCode::SERVICE_UNAVAILABLE,
                            &api::error_body("busy: too many control requests at once"),
                        ));
                    };
                    Ok(handle_request(req, &handle, "socket").await)
                }
            });
            if let Err(e) =
                crate::metrics::http::serve_connection(stream, service, &mut evicted).await
            {
                debug!(error = %e, "control connection");
            }
        });
    }
}

/// How long a TCP client may take over its TLS handshake.
const HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The TLS configuration of the TCP listener: its certificate and key
/// (read at start, before the privilege drop), HTTP/1.1.
pub fn tls_config(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let resolver =
        crate::tls::CertResolver::load(cert, key).map_err(|e| format!("control: {e}"))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("control: {e}"))?
    .with_no_client_auth()
    .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serve the API over TCP (`control.listen`): TLS, then a bearer token of
/// `control.token_file` on every request. A request without a valid one
/// gets 401 and counts as a failed login of the client's address (the
/// same bans as FTP's; a banned address's connections are closed at
/// once); a read-only token may only GET (403 otherwise). The web page's
/// files ([`page`]) are served before the token check, and every answer
/// carries the page's security headers.
pub async fn serve_tcp(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    tokens: Arc<tokens::Tokens>,
    handle: Arc<Handle>,
) {
    let slots = Arc::new(Semaphore::new(MAX_REQUESTS));
    let heads = Arc::new(crate::metrics::http::heads::Heads::default());
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(v) => v,
            Err(e) => {
                error!(error = %e, "control listener: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        if handle.guard.banned(peer.ip()).is_some() {
            debug!(%peer, "control connection from a banned address closed");
            continue;
        }
        let (place, mut evicted) = heads.join();
        let (handle, slots, tokens, tls) =
            (handle.clone(), slots.clone(), tokens.clone(), tls.clone());
        tokio::spawn(async move {
            let stream = match crate::tls::accept(tls, stream, HANDSHAKE_TIMEOUT).await {
                Ok(s) => s,
                Err(e) => return debug!(%peer, error = %e, "control connection: TLS"),
            };
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                place.arrived();
                let (handle, slots, tokens) = (handle.clone(), slots.clone(), tokens.clone());
                async move {
                    // The page's own files hold no data: no token.
                    if let Some(mut r) = page::asset(req.method(), req.uri().path()) {
                        page::secure(&mut r);
                        return Ok::<_, Infallible>(r);
                    }
                    let header = req
                        .headers()
                        .get(hyper::header::AUTHORIZATION)
                        .map(|v| v.as_bytes());
                    let Some(caller) = tokens.check(header) else {
                        let ban = handle.guard.login_failed(peer.ip()).await;
                        tracing::info!(
                            client = %peer.ip(),
                            ban_secs = ban.map(|b| b.as_secs()),
                            "control: request without a valid token refused"
                        );
                        let mut r = api::json(
                            StatusCode::UNAUTHORIZED,
                            &api::error_body(
                                "a valid bearer token is required (Authorization: Bearer TOKEN)",
                            ),
                        );
                        r.headers_mut().insert(
                            hyper::header::WWW_AUTHENTICATE,
                            hyper::header::HeaderValue::from_static("Bearer"),
                        );
                        page::secure(&mut r);
                        return Ok(r);
                    };
                    let mut r = if caller.read_only && req.method() != hyper::Method::GET {
                        api::json(
                            StatusCode::FORBIDDEN,
                            &api::error_body(&format!("token {:?} is read-only", caller.name)),
                        )
                    } else if let Ok(_slot) = slots.try_acquire_owned() {
                        handle_request(req, &handle, &caller.name).await
                    } else {
                        api::json(
                            StatusCode::SERVICE_UNAVAILABLE,
                            &api::error_body("busy: too many control requests at once"),
                        )
                    };
                    page::secure(&mut r);
                    Ok(r)
                }
            });
            if let Err(e) =
                crate::metrics::http::serve_connection(*stream, service, &mut evicted).await
            {
                debug!(%peer, error = %e, "control connection");
            }
        });
    }
}

/// Read the body (bounded) and answer.
async fn handle_request(
    req: Request<Incoming>,
    handle: &Handle,
    who: &str,
) -> Response<Full<Bytes>> {
    let (parts, body) = req.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return api::json(
                StatusCode::PAYLOAD_TOO_LARGE,
                &api::error_body("request body too large or cut"),
            )
        }
    };
    api::answer(&parts.method, parts.uri.path(), &body, handle, who).await
}
