//! The HTTP listener of `[metrics] listen`: `GET /metrics` (the Prometheus
//! text format), `/health` (200 while the process serves, draining
//! included) and `/ready` (200 while it accepts new sessions, 503 from the
//! start of a drain). Its socket is bound before the privilege drop, with
//! the control listeners ([`crate::server::prepare`]).
//!
//! Bounded like the rest: one request per connection (no keep-alive), a
//! header read timeout, a time limit per connection and at most
//! [`MAX_CONNECTIONS`] at once; connections past that are closed unserved.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tracing::{debug, error};

use super::Metrics;
use crate::lifecycle::Phase;
use crate::server::Live;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;
/// How long a client may take to send its request's head.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one connection may last in all.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// Serve until the runtime ends (the endpoint outlives the drain, so that
/// `/ready` can say 503 while it runs).
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, live: Arc<Live>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(v) => v,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                error!(error = %e, "metrics listener: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            debug!(%peer, "metrics listener: too many connections; closed");
            continue;
        };
        let (metrics, live) = (metrics.clone(), live.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let reply = answer(&req, &metrics, &live.get());
                async move { Ok::<_, Infallible>(reply) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            if let Ok(Err(e)) = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await {
                debug!(%peer, error = %e, "metrics connection");
            }
            drop(slot);
        });
    }
}

/// The response to one request.
fn answer(
    req: &Request<Incoming>,
    metrics: &Metrics,
    shared: &crate::session::Shared,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only\n");
    }
    match req.uri().path() {
        "/metrics" => {
            let page = metrics.render(shared.ports.in_use());
            let mut r = Response::new(Full::new(Bytes::from(page)));
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(prometheus::TEXT_FORMAT),
            );
            r
        }
        "/health" => text(StatusCode::OK, "serving\n"),
        "/ready" => match shared.lifecycle.phase() {
            Phase::Serving => text(StatusCode::OK, "ready\n"),
            Phase::Closing | Phase::Draining | Phase::Stopping => {
                text(StatusCode::SERVICE_UNAVAILABLE, "draining\n")
            }
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: try /metrics, /health or /ready\n",
        ),
    }
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
