//! `[auth.http]`: each login POSTed as JSON to a hook, which answers with
//! the account or refuses it.
//!
//! The request is `{"user", "password", "client_ip", "tls"}`; the answer's
//! status decides: 200 with the account as a JSON object whose fields are
//! the `[[users]]` policy keys (`root` required; checked against
//! `auth.allowed_roots` by the chain), 401 or 403 refused (530,
//! counted toward a ban), 404 unknown (the next back end of `auth.order`
//! is asked), anything else, a malformed account, a refused connection or
//! the timeout a failure of the back end (421, not counted). One HTTP/1.1
//! connection per login (hyper's client), HTTPS with rustls and the
//! certificates of `ca_file`. The password is in no log line and no error,
//! nor are the credentials of a `USER:PASSWORD@` URL (sent as Basic
//! authentication; see `options/hook_url.rs`).

use std::path::Path;
use std::sync::Arc;

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpStream;

use super::{Account, Attempt, AuthError, Decider, Denied, Policy, Why};
use crate::options::{HttpOptions, ServerOptions};
use crate::storage::RootSpec;

/// The most bytes of an answer read: an account is a few hundred.
const MAX_ANSWER: usize = 64 * 1024;

/// Where the certificates for an `https://` hook come from without
/// `ca_file`: Debian's bundle of the system's trusted authorities.
const SYSTEM_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The hook.
pub struct HttpBackend {
    options: HttpOptions,
    client: Pooled,
    /// The server's options, for the TLS defaults of the policy.
    server: Arc<ServerOptions>,
}

impl std::fmt::Debug for HttpBackend {
    // Not the bearer token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBackend")
            .field("url", &self.options.url)
            .finish_non_exhaustive()
    }
}

/// The trusted certificates: `ca_file`, or the system's bundle.
pub fn load_roots(ca_file: Option<&Path>) -> Result<rustls::RootCertStore, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let path = ca_file.unwrap_or(Path::new(SYSTEM_BUNDLE));
    let mut roots = rustls::RootCertStore::empty();
    let certs =
        CertificateDer::pem_file_iter(path).map_err(|e| format!("{}: {e}", path.display()))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
        roots
            .add(cert)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "{}: no CERTIFICATE in the PEM file",
            path.display()
        ));
    }
    Ok(roots)
}

/// A TLS client configuration trusting `ca_file` (or the system's bundle);
/// `key` names the section in errors ("auth.http").
pub fn client_config(
    ca_file: Option<&Path>,
    key: &str,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let roots = load_roots(ca_file).map_err(|e| format!("{key}.ca_file: {e}"))?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("{key}: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(Arc::new(config))
}

impl HttpBackend {
    pub fn new(options: HttpOptions, server: &ServerOptions) -> Result<Self, String> {
        let tls = if options.url.uri().scheme_str() == Some("https") {
            Some(client_config(options.ca_file.as_deref(), "auth.http")?)
        } else {
            None
        };
        Ok(HttpBackend {
            options,
            client: Pooled::new(tls),
            server: Arc::new(server.clone()),
        })
    }

    /// POST the attempt; the answer's status and body.
    async fn exchange(&self, attempt: &Attempt<'_>) -> Result<(StatusCode, Bytes), String> {
        let url = self.options.url.uri();
        let body = serde_json::json!({
            "user": attempt.user,
            "password": attempt.password,
            "client_ip": attempt.client_ip.to_string(),
            "tls": attempt.tls,
        });
        let mut request = json_post(url);
        if let Some(token) = &self.options.bearer_token {
            request = request.header(AUTHORIZATION, format!("Bearer {token}"));
        } else if let Some(basic) = self.options.url.basic() {
            request = request.header(AUTHORIZATION, basic);
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| e.to_string())?;
        self.client.exchange(request).await
    }
}

impl HttpBackend {
    /// The account's root, as the storage layer checks an answered one.
    fn root(&self, root: std::path::PathBuf, profile: Option<String>) -> Result<RootSpec, String> {
        self.server.stores.account_root(&root, profile)
    }
}

/// A JSON POST to `url` for [`Pooled::exchange`]; the caller adds its own
/// headers and the body.
pub(crate) fn json_post(url: &hyper::Uri) -> hyper::http::request::Builder {
    Request::post(url.clone()).header(CONTENT_TYPE, "application/json")
}

/// How long a connection to a hook is kept once idle: under the 5 seconds
/// that many HTTP servers keep one (Node's default), so that a request
/// rarely goes out on a connection the receiver is closing.
const POOL_IDLE: Duration = Duration::from_secs(4);

/// The HTTP/1.1 client of a hook (the account hook's, an event hook's):
/// its connections are kept alive and reused from one request to the
/// next, as many as there are requests at once, each closed after
/// [`POOL_IDLE`] unused or when the receiver answers `Connection: close`.
#[derive(Clone)]
pub(crate) struct Pooled(Transport);

#[derive(Clone)]
enum Transport {
    Plain(Client<HttpConnector, Full<Bytes>>),
    Tls(Client<HttpsConnector<HttpConnector>, Full<Bytes>>),
}

impl Pooled {
    /// Over TLS with `tls` (for an `https://` URL), else plain.
    pub(crate) fn new(tls: Option<Arc<rustls::ClientConfig>>) -> Self {
        let mut http = HttpConnector::new();
        http.set_nodelay(true);
        let mut builder = Client::builder(TokioExecutor::new());
        builder
            .pool_idle_timeout(POOL_IDLE)
            .pool_timer(TokioTimer::new());
        match tls {
            None => Pooled(Transport::Plain(builder.build(http))),
            Some(config) => {
                http.enforce_http(false);
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(rustls::ClientConfig::clone(&config))
                    .https_only()
                    .enable_http1()
                    .wrap_connector(http);
                Pooled(Transport::Tls(builder.build(https)))
            }
        }
    }

    /// Send `request` (its URI absolute, as [`json_post`] makes it): the
    /// answer's status and whole body (at most [`MAX_ANSWER`]).
    pub(crate) async fn exchange(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<(StatusCode, Bytes), String> {
        let answer = match &self.0 {
            Transport::Plain(c) => c.request(request).await,
            Transport::Tls(c) => c.request(request).await,
        }
        .map_err(|e| causes(&e))?;
        read_answer(answer).await
    }
}

/// An answer's status and whole body (at most [`MAX_ANSWER`]).
async fn read_answer(
    answer: hyper::Response<hyper::body::Incoming>,
) -> Result<(StatusCode, Bytes), String> {
    let status = answer.status();
    let body = Limited::new(answer.into_body(), MAX_ANSWER)
        .collect()
        .await
        .map_err(|e| format!("reading the answer: {e}"))?
        .to_bytes();
    Ok((status, body))
}

impl std::fmt::Debug for Pooled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.0 {
            Transport::Plain(_) => "Pooled(http)",
            Transport::Tls(_) => "Pooled(https)",
        })
    }
}

/// An error and its causes, as one line ("client error (Connect):
/// tcp connect error: Connection refused (os error 111)").
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Connect to `url`'s host and port (443 over TLS, 80 otherwise, when the
/// URL names none), over TLS when `tls` is given, and send `request` (its
/// URI a path, its Host header set): the answer's status and body, on a
/// connection of its own (`portcullis ctl`'s one request).
pub(crate) async fn exchange_with(
    url: &hyper::Uri,
    tls: Option<&tokio_rustls::TlsConnector>,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes), String> {
    let host = url.host().unwrap_or_default();
    let bare_host = host.trim_start_matches('[').trim_end_matches(']');
    let port = url
        .port_u16()
        .unwrap_or(if tls.is_some() { 443 } else { 80 });
    let tcp = TcpStream::connect((bare_host, port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let _ = tcp.set_nodelay(true);
    match tls {
        None => send(TokioIo::new(tcp), request).await,
        Some(connector) => {
            let name = rustls::pki_types::ServerName::try_from(bare_host.to_owned())
                .map_err(|e| format!("{bare_host}: {e}"))?;
            let tls = connector
                .connect(name, tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?;
            send(TokioIo::new(tls), request).await
        }
    }
}

async fn send<I>(io: I, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), String>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    // The connection is driven beside the request; it ends with them (a
    // timeout drops this future, and with it the connection).
    let exchange = async {
        let answer = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        read_answer(answer).await
    };
    tokio::pin!(conn, exchange);
    tokio::select! {
        r = &mut exchange => r,
        r = &mut conn => match r {
            Err(e) => Err(e.to_string()),
            // Done with the connection (Connection: close): the answer is
            // in, or the request failed, which the exchange says.
            Ok(()) => exchange.await,
        },
    }
}

impl HttpBackend {
    /// Ask the hook: `Unknown` for its 404.
    pub async fn authenticate(&self, attempt: &Attempt<'_>) -> Result<Arc<Account>, AuthError> {
        if attempt.password.is_empty() {
            // Nothing a hook could accept; and no round trip for it.
            return Err(AuthError::Invalid(Denied::new(
                Decider::Http,
                Why::EmptyPassword,
            )));
        }
        let url = &self.options.url;
        let (status, body) = tokio::time::timeout(self.options.timeout, self.exchange(attempt))
            .await
            .map_err(|_| {
                AuthError::Backend(format!(
                    "{url}: no answer within {}",
                    humantime::format_duration(self.options.timeout)
                ))
            })?
            .map_err(|e| AuthError::Backend(format!("{url}: {e}")))?;
        match status {
            StatusCode::OK => {
                let tls_on = self.server.tls.is_some();
                let (root, policy) = (self.options.parse_account)(&body, tls_on)
                    .and_then(|a| Ok((self.root(a.root, a.profile)?, a.policy)))
                    .map_err(|e| AuthError::Backend(format!("{url}: the account: {e}")))?;
                Ok(Arc::new(Account {
                    name: attempt.user.to_owned(),
                    root,
                    permissions: policy.permissions,
                    anonymous: false,
                    policy: Policy::resolve(&self.server, &policy),
                }))
            }
            // The hook's answer does not say which of the two it was.
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => Err(AuthError::Invalid(
                Denied::new(Decider::Http, Why::CannotTell),
            )),
            StatusCode::NOT_FOUND => Err(AuthError::Unknown),
            other => Err(AuthError::Backend(format!("{url}: answered {other}"))),
        }
    }
}
