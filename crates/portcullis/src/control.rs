//! The control API: see and steer the running server (sessions, kicks,
//! bans, reload, drain, status) over HTTP/1.1 with JSON, on a Unix socket
//! (`[control] socket`, mode 0660, group `[control] group`). The routes
//! and what each does are in [`api`]; the socket's making and its checks
//! in [`socket`]; `portcullis ctl` (`cli/ctl.rs`) is its client. The
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
pub mod socket;

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
use crate::registry::SessionRegistry;

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
    pub registry: Arc<dyn SessionRegistry>,
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
