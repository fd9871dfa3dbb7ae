//! Directory markers: the empty object `DIR/` that S3 consoles create for
//! a folder, so that an empty directory exists. `object_store` cannot name
//! a key that ends in `/`, so the marker's PUT and DELETE are made here,
//! signed by `object_store`'s own SigV4 signer with the store's
//! credentials and sent through its HTTP client. The same signed client
//! fetches a listing page that `object_store` refused (`rawlist`), and
//! gives an object new metadata (`limits.hash_on_upload`'s digest after a
//! multipart upload, whose completion cannot carry it: [`Markers::replace_metadata`]).

use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3, AwsAuthorizer, AwsCredentialProvider};
use object_store::client::{
    HttpClient, HttpConnector, HttpRequestBody, HttpResponse, ReqwestConnector,
};
use object_store::ClientOptions;

use super::SECTION;
use super::{map_err, S3Root, S3Settings};
use crate::storage::object::no_answer;
use crate::storage::object::wire::encode;
use crate::storage::{Result, StorageError};

/// Makes and removes `DIR/` markers in one bucket.
#[derive(Debug)]
pub(super) struct Markers {
    client: HttpClient,
    credentials: AwsCredentialProvider,
    /// `https://endpoint/bucket` or `https://bucket.endpoint`, no trailing `/`.
    bucket_url: String,
    region: String,
    timeout: Duration,
}

impl Markers {
    pub(super) fn new(
        store: &Arc<AmazonS3>,
        root: &S3Root,
        settings: &S3Settings,
        bucket_url: String,
        client: &ClientOptions,
    ) -> Result<Markers, String> {
        let client = ReqwestConnector::default()
            .connect(client)
            .map_err(|e| format!("{root}: {e}"))?;
        Ok(Markers {
            client,
            credentials: store.credentials().clone(),
            bucket_url,
            region: settings.region.clone(),
            timeout: settings.tuning.request_timeout,
        })
    }

    /// Create the marker of the directory whose key is `key`.
    pub(super) async fn put(&self, key: &str) -> Result<()> {
        self.send(http::Method::PUT, key).await
    }

    /// Remove it (no error if there is none: S3 answers 204 either way).
    pub(super) async fn delete(&self, key: &str) -> Result<()> {
        self.send(http::Method::DELETE, key).await
    }

    /// The status of a HEAD of the marker (see `probe` for why).
    pub(super) async fn head(&self, key: &str) -> Result<http::StatusCode> {
        self.request(http::Method::HEAD, key).await
    }

    async fn send(&self, method: http::Method, key: &str) -> Result<()> {
        let status = self.request(method.clone(), key).await?;
        match status.as_u16() {
            200..=299 => Ok(()),
            404 if method == http::Method::DELETE => Ok(()),
            404 => Err(StorageError::NotFound),
            401 | 403 => {
                tracing::warn!(%status, %method, key, "object store refused a directory marker");
                Err(StorageError::PermissionDenied)
            }
            _ => Err(StorageError::Unavailable(format!(
                "{method} marker of {key}: {status}"
            ))),
        }
    }

    /// One signed request for the marker of `key`, bounded; its status.
    async fn request(&self, method: http::Method, key: &str) -> Result<http::StatusCode> {
        let url = format!("{}/{}/", self.bucket_url, encode(key, true));
        let exchange = async { Ok(self.signed(method.clone(), &url).await?.status()) };
        self.bounded(&method, &url, exchange).await
    }

    /// A signed GET of the bucket itself with `query` (its values
    /// encoded with `wire::encode`), bounded, body included: its status and
    /// body. A listing page read here (see `rawlist`).
    pub(super) async fn get_bucket(&self, query: &str) -> Result<(http::StatusCode, bytes::Bytes)> {
        let url = format!("{}?{query}", self.bucket_url);
        let exchange = async {
            let response = self.signed(http::Method::GET, &url).await?;
            let status = response.status();
            let body = response
                .into_body()
                .bytes()
                .await
                .map_err(|e| StorageError::Unavailable(format!("GET {url}: {e}")))?;
            Ok((status, body))
        };
        self.bounded(&http::Method::GET, &url, exchange).await
    }

    /// `exchange` within `request_timeout`.
    async fn bounded<T>(
        &self,
        method: &http::Method,
        url: &str,
        exchange: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(r) => r,
            Err(_) => Err(StorageError::Unavailable(format!(
                "{method} {url}: {}",
                no_answer(SECTION, self.timeout)
            ))),
        }
    }

    /// Give the object `key` of `bucket` the user metadata `metadata` in
    /// place of its own, only while its ETag is `etag`: CopyObject onto
    /// itself with `x-amz-metadata-directive: REPLACE` and
    /// `x-amz-copy-source-if-match`, within `limit` (the store rewrites
    /// the object). `Ok(false)`: the object changed (412).
    pub(super) async fn replace_metadata(
        &self,
        bucket: &str,
        key: &str,
        etag: &str,
        metadata: &[(&str, &str)],
        limit: Duration,
    ) -> Result<bool> {
        let url = format!("{}/{}", self.bucket_url, encode(key, true));
        let source = format!("/{bucket}/{}", encode(key, true));
        // The condition takes the quoted form S3 sends.
        let etag = if etag.starts_with('"') || etag.starts_with("W/") {
            etag.to_owned()
        } else {
            format!("\"{etag}\"")
        };
        let names: Vec<String> = metadata
            .iter()
            .map(|(k, _)| format!("x-amz-meta-{k}"))
            .collect();
        let mut headers = vec![
            ("x-amz-copy-source", source.as_str()),
            ("x-amz-metadata-directive", "REPLACE"),
            ("x-amz-copy-source-if-match", etag.as_str()),
        ];
        headers.extend(
            names
                .iter()
                .map(String::as_str)
                .zip(metadata.iter().map(|(_, v)| *v)),
        );
        let exchange = async {
            let response = self.signed_with(http::Method::PUT, &url, &headers).await?;
            let status = response.status();
            let body = response
                .into_body()
                .bytes()
                .await
                .map_err(|e| StorageError::Unavailable(format!("PUT {url}: {e}")))?;
            Ok::<_, StorageError>((status, body))
        };
        let (status, body) = match tokio::time::timeout(limit, exchange).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(StorageError::Unavailable(format!(
                    "PUT {url}: {}",
                    no_answer(SECTION, limit)
                )))
            }
        };
        let text = String::from_utf8_lossy(&body);
        // A copy may fail after its 200 (the error is then in the body).
        match status.as_u16() {
            200 if !text.contains("<Error>") => Ok(true),
            412 => Ok(false),
            _ if super::s3_code(&text) == Some("PreconditionFailed") => Ok(false),
            _ => Err(super::classify(&text).unwrap_or_else(|| {
                StorageError::Unavailable(format!("copy of {key} onto itself: {status}: {text}"))
            })),
        }
    }

    /// Send one request with no body, signed with the store's credentials.
    async fn signed(&self, method: http::Method, url: &str) -> Result<HttpResponse> {
        self.signed_with(method, url, &[]).await
    }

    /// The same, with `headers` (signed with the rest).
    async fn signed_with(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<HttpResponse> {
        let cred = self.credentials.get_credential().await.map_err(map_err)?;
        let mut b = http::Request::builder()
            .method(method.clone())
            .uri(url)
            .header(http::header::CONTENT_LENGTH, "0");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut req = b
            .body(HttpRequestBody::empty())
            .map_err(|e| StorageError::Unavailable(format!("{url}: {e}")))?;
        AwsAuthorizer::new(&cred, "s3", &self.region)
            .try_authorize(&mut req, None)
            .map_err(map_err)?;
        self.client
            .execute(req)
            .await
            .map_err(|e| StorageError::Unavailable(format!("{method} {url}: {e}")))
    }
}

/// The URL of a bucket, as `object_store` builds it: path style
/// (`ENDPOINT/BUCKET`) unless `virtual_hosted_style` (`BUCKET.ENDPOINT`);
/// AWS's regional endpoint when none is configured.
pub(super) fn bucket_url(
    endpoint: Option<&str>,
    bucket: &str,
    region: &str,
    virtual_hosted: bool,
) -> Result<String, String> {
    let endpoint = endpoint
        .map(|e| e.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
    if !virtual_hosted {
        return Ok(format!("{endpoint}/{bucket}"));
    }
    let (scheme, host) = endpoint
        .split_once("://")
        .ok_or_else(|| format!("endpoint {endpoint:?} has no scheme (http:// or https://)"))?;
    Ok(format!("{scheme}://{bucket}.{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            bucket_url(Some("http://127.0.0.1:9000/"), "b", "r", false).unwrap(),
            "http://127.0.0.1:9000/b"
        );
        assert_eq!(
            bucket_url(Some("https://example.net"), "b", "r", true).unwrap(),
            "https://b.example.net"
        );
        assert_eq!(
            bucket_url(None, "b", "eu-west-1", false).unwrap(),
            "https://s3.eu-west-1.amazonaws.com/b"
        );
    }
}
