//! The HTTP listener of `[metrics] listen`: `GET /metrics` (the Prometheus
//! text format), `/health` (200 while the process serves, draining
//! included) and `/ready` (200 while it accepts new sessions, 503 while
//! `[tls.acme]` waits for its first certificate and from the
//! start of a drain). Its socket is bound before the privilege drop, with
//! the control listeners (`server::prepare`).
//!
//! Bounded like the rest, and so that `/health` and `/ready` stay
//! answerable whatever else connects (a balancer that finds them refused
//! takes the node out): one request per connection (no keep-alive), a
//! short header timeout, a time limit per connection; connections still
//! waiting for their request head are at most [`heads::MAX_WAITING`], the
//! oldest closed to make room for a new one (why the oldest: [`heads`]);
//! a connection takes a place among the [`MAX_SCRAPES`] only once its
//! head asks for `/metrics`, the one answer that costs something to make.
//! `/health` and `/ready` take none: their answers are a few constant
//! bytes, written at once.

pub(crate) mod heads;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::{debug, error};

use super::Metrics;
use crate::lifecycle::{Lifecycle, Phase};

/// `/metrics` requests served at once; more get 503.
pub const MAX_SCRAPES: usize = 16;
/// How long a client may take to send its request's head: probes and
/// scrapers send it as they connect.
const HEADER_TIMEOUT: Duration = Duration::from_secs(3);
/// How long one connection may last in all.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// How many passive ports are in use now, read at each scrape (the pool
/// is the config's, which a reload may replace).
pub type PortsInUse = Arc<dyn Fn() -> usize + Send + Sync>;

/// Serve until the runtime ends (the endpoint outlives the drain, so that
/// `/ready` can say 503 while it runs). `lifecycle` is the process's one,
/// kept across reloads.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    ports_in_use: PortsInUse,
    lifecycle: Arc<Lifecycle>,
) {
    let scrapes = Arc::new(Semaphore::new(MAX_SCRAPES));
    let heads = Arc::new(heads::Heads::default());
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
        let (place, mut evicted) = heads.join();
        let (metrics, scrapes) = (metrics.clone(), scrapes.clone());
        let (ports_in_use, lifecycle) = (ports_in_use.clone(), lifecycle.clone());
        tokio::spawn(async move {
            // The scrape's place, held until the connection ends (its
            // answer written).
            let held: Arc<Mutex<Option<OwnedSemaphorePermit>>> = Arc::default();
            let holder = held.clone();
            let service = hyper::service::service_fn(move |req| {
                place.arrived();
                let reply = match req.uri().path() {
                    "/metrics" => match scrapes.clone().try_acquire_owned() {
                        Ok(permit) => {
                            *holder.lock().unwrap_or_else(|p| p.into_inner()) = Some(permit);
                            answer(&req, &metrics, &*ports_in_use, &lifecycle)
                        }
                        Err(_) => text(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "busy: too many /metrics requests at once\n",
                        ),
                    },
                    _ => answer(&req, &metrics, &*ports_in_use, &lifecycle),
                };
                async move { Ok::<_, Infallible>(reply) }
            });
            if let Err(e) = serve_connection(stream, service, &mut evicted).await {
                debug!(%peer, error = %e, "metrics connection");
            }
            drop(held);
        });
    }
}

/// One connection served as this listener serves them, and the control
/// API's too: HTTP/1.1, one request (no keep-alive), its head within
/// [`HEADER_TIMEOUT`], the whole within [`CONNECTION_TIMEOUT`]; closed at
/// once when `evicted` says that newer connections need its place
/// ([`heads`]).
pub(crate) async fn serve_connection<I, S>(
    io: I,
    service: S,
    evicted: &mut heads::Evicted,
) -> Result<(), String>
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    S: hyper::service::Service<
        Request<Incoming>,
        Response = Response<Full<Bytes>>,
        Error = Infallible,
    >,
{
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(false)
        .serve_connection(TokioIo::new(io), service);
    tokio::select! {
        done = tokio::time::timeout(CONNECTION_TIMEOUT, conn) => match done {
            Ok(Err(e)) => Err(e.to_string()),
            Ok(Ok(())) => Ok(()),
            Err(_) => Err("connection time limit reached".into()),
        },
        // `Err`: its head arrived, and it can no longer be evicted.
        Ok(()) = evicted => Err("closed before its request: newer connections need the room".into()),
    }
}

/// The response to one request.
fn answer(
    req: &Request<Incoming>,
    metrics: &Metrics,
    ports_in_use: &dyn Fn() -> usize,
    lifecycle: &Lifecycle,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "GET or HEAD only\n");
    }
    match req.uri().path() {
        "/metrics" => {
            let page = metrics.render(ports_in_use());
            let mut r = Response::new(Full::new(Bytes::from(page)));
            r.headers_mut().insert(
                hyper::header::CONTENT_TYPE,
                hyper::header::HeaderValue::from_static(prometheus::TEXT_FORMAT),
            );
            r
        }
        "/health" => text(StatusCode::OK, "serving\n"),
        "/ready" => match lifecycle.phase() {
            Phase::Serving if lifecycle.waiting() => {
                text(StatusCode::SERVICE_UNAVAILABLE, "starting\n")
            }
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
