//! The HTTP-01 responder of `[tls.acme]` (RFC 8555 section 8.3): on
//! `tls.acme.http_listen`, bound before the privilege drop with the control
//! listeners, `GET /.well-known/acme-challenge/TOKEN` answers the key
//! authorization of a challenge in progress; everything else is 404.
//!
//! Bounded: one request per connection, a short header timeout, a time limit
//! per connection and at most [`MAX_CONNECTIONS`] at once (more are closed
//! at accept). The CA's validators send one small GET each.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::debug;

/// The path prefix of RFC 8555 section 8.3.
const PREFIX: &str = "/.well-known/acme-challenge/";
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 64;
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(15);

/// The challenges in progress: token -> key authorization.
#[derive(Debug, Clone, Default)]
pub struct Challenges(Arc<Mutex<HashMap<String, String>>>);

impl Challenges {
    /// Answer `token` with `key_authorization` until [`Challenges::clear`].
    pub fn insert(&self, token: String, key_authorization: String) {
        self.lock().insert(token, key_authorization);
    }

    /// Forget every challenge (the order is over, issued or not).
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// The response body for a request path, if it names a live token.
    pub fn answer(&self, path: &str) -> Option<String> {
        let token = path.strip_prefix(PREFIX)?;
        self.lock().get(token).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Serve until the runtime ends.
pub async fn serve(listener: TcpListener, challenges: Challenges) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(v) => v,
            Err(e) => {
                // EMFILE and the like: wait a moment rather than spin.
                debug!(error = %e, "tls.acme.http_listen: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            continue;
        };
        let challenges = challenges.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let r = respond(&challenges, &req);
                debug!(%peer, path = req.uri().path(), status = r.status().as_u16(), "ACME HTTP-01 request");
                async move { Ok::<_, Infallible>(r) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            let _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn).await;
            drop(permit);
        });
    }
}

fn respond(challenges: &Challenges, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let found = (req.method() == Method::GET || req.method() == Method::HEAD)
        .then(|| challenges.answer(req.uri().path()))
        .flatten();
    let (status, body) = match found {
        Some(k) => (StatusCode::OK, k),
        None => (StatusCode::NOT_FOUND, "not found\n".to_owned()),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/octet-stream"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_live_tokens_under_the_prefix_answer() {
        let c = Challenges::default();
        c.insert("tok".into(), "tok.thumb".into());
        assert_eq!(
            c.answer("/.well-known/acme-challenge/tok").as_deref(),
            Some("tok.thumb")
        );
        assert_eq!(c.answer("/.well-known/acme-challenge/other"), None);
        assert_eq!(c.answer("/tok"), None);
        assert_eq!(c.answer("/.well-known/acme-challenge/"), None);
        c.clear();
        assert_eq!(c.answer("/.well-known/acme-challenge/tok"), None);
    }
}
