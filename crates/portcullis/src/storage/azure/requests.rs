//! The requests this provider makes itself, where `object_store`'s Azure
//! client has none or falls short, each signed by `object_store`'s own
//! [`AzureAuthorizer`] with the store's credentials (shared key, SAS or
//! bearer token) and sent through its HTTP client, bounded by
//! `request_timeout`:
//! - directory markers: `object_store` cannot name a blob whose name ends
//!   in `/`, so the marker `DIR/`'s Put Blob, Delete Blob and HEAD are
//!   sent here;
//! - deletes: its delete of one blob is a blob batch (a multipart POST
//!   of subrequests), which Azurite fails with 500 when the credential is
//!   a SAS token, so DELE and a rename's delete of the source are one
//!   Delete Blob each, sent here;
//! - the conditional commit: its `complete_multipart` sends Put Block
//!   List without a condition or metadata, so an upload that must not
//!   replace a blob (the drop box, STOU) commits here with
//!   `If-None-Match: *`, and one whose SHA-256 is kept
//!   (`limits.hash_on_upload`) with its `x-ms-meta-` header;
//! - the copy's status: its Copy Blob does not read `x-ms-copy-status`,
//!   which may be `pending` when the answer comes (Azure copies large or
//!   cross-account blobs in the background), so a rename reads the
//!   destination's status here until the copy has succeeded (the
//!   waiting itself is `copy`'s);
//! - a listing page that `object_store` refused (see `rawlist`).

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use object_store::azure::{AzureAuthorizer, AzureCredentialProvider, MicrosoftAzure};
use object_store::client::{
    HttpClient, HttpConnector, HttpRequestBody, HttpResponse, ReqwestConnector,
};
use object_store::multipart::PartId;
use object_store::ClientOptions;

use super::{copy, map_err, AzureRoot, SECTION};
use crate::storage::object::no_answer;
use crate::storage::object::wire::encode;
use crate::storage::{Result, StorageError};

/// Signed requests to one container.
#[derive(Debug)]
pub(super) struct Requests {
    client: HttpClient,
    credentials: AzureCredentialProvider,
    account: String,
    /// `https://ACCOUNT.blob.core.windows.net/CONTAINER` (or the
    /// endpoint's), no trailing `/`.
    container_url: String,
    timeout: Duration,
}

impl Requests {
    pub(super) fn new(
        store: &Arc<MicrosoftAzure>,
        root: &AzureRoot,
        account: String,
        container_url: String,
        client: &ClientOptions,
        timeout: Duration,
    ) -> Result<Requests, String> {
        let client = ReqwestConnector::default()
            .connect(client)
            .map_err(|e| format!("{root}: {e}"))?;
        Ok(Requests {
            client,
            credentials: store.credentials().clone(),
            account,
            container_url,
            timeout,
        })
    }

    /// The URL of a blob.
    fn blob_url(&self, name: &str) -> String {
        format!("{}/{}", self.container_url, encode(name, true))
    }

    /// Create the marker of the directory whose key is `key`.
    pub(super) async fn put_marker(&self, key: &str) -> Result<()> {
        let url = self.blob_url(&format!("{key}/"));
        let headers = [("x-ms-blob-type", "BlockBlob")];
        let status = self
            .bounded(
                "PUT",
                &url,
                self.send(http::Method::PUT, &url, &headers, ""),
            )
            .await?
            .status();
        check(status, "PUT marker", key, false)
    }

    /// Remove it (no error if there is none).
    pub(super) async fn delete_marker(&self, key: &str) -> Result<()> {
        self.delete_blob(&format!("{key}/")).await
    }

    /// Delete Blob of `name` (no error if there is none), with its
    /// snapshots: without `x-ms-delete-snapshots` Azure refuses to delete a
    /// blob that has any (409), and a file the client deleted would stay.
    pub(super) async fn delete_blob(&self, name: &str) -> Result<()> {
        let url = self.blob_url(name);
        let headers = [("x-ms-delete-snapshots", "include")];
        let status = self
            .bounded(
                "DELETE",
                &url,
                self.send(http::Method::DELETE, &url, &headers, ""),
            )
            .await?
            .status();
        check(status, "DELETE", name, true)
    }

    /// The status of a HEAD of the marker of `key`.
    pub(super) async fn head_marker(&self, key: &str) -> Result<http::StatusCode> {
        let url = self.blob_url(&format!("{key}/"));
        let r = self.send(http::Method::HEAD, &url, &[], "");
        Ok(self.bounded("HEAD", &url, r).await?.status())
    }

    /// Commit `parts` (the blocks `object_store` put) as the blob `key`
    /// with the user metadata `metadata`, in one Put Block List (which
    /// replaces a blob's metadata with the request's); when `new`, only
    /// if no blob has that name (`If-None-Match: *`), so a blob created
    /// meanwhile is never replaced (409/412: [`StorageError::AlreadyExists`]).
    pub(super) async fn commit(
        &self,
        key: &str,
        parts: &[PartId],
        new: bool,
        metadata: &[(&str, &str)],
    ) -> Result<()> {
        let url = format!("{}?comp=blocklist", self.blob_url(key));
        let body = block_list(parts);
        let names: Vec<String> = metadata
            .iter()
            .map(|(k, _)| format!("x-ms-meta-{k}"))
            .collect();
        let mut headers = vec![("Content-Type", "application/xml")];
        if new {
            headers.push(("If-None-Match", "*"));
        }
        headers.extend(
            names
                .iter()
                .map(String::as_str)
                .zip(metadata.iter().map(|(_, v)| *v)),
        );
        // Generous: Azure assembles the blob before it answers.
        let limit = self.timeout + Duration::from_secs(parts.len() as u64 / 100);
        let response =
            tokio::time::timeout(limit, self.send(http::Method::PUT, &url, &headers, &body))
                .await
                .map_err(|_| {
                    StorageError::Unavailable(format!("PUT {url}: {}", no_answer(SECTION, limit)))
                })??;
        match response.status().as_u16() {
            200..=299 => Ok(()),
            409 | 412 => Err(StorageError::AlreadyExists),
            404 => Err(StorageError::NotFound),
            401 | 403 => {
                tracing::warn!(status = %response.status(), key, "object store refused a block list");
                Err(StorageError::PermissionDenied)
            }
            _ => {
                let status = response.status();
                let body = response.into_body().bytes().await.unwrap_or_default();
                let body = String::from_utf8_lossy(&body);
                Err(super::classify(&body).unwrap_or_else(|| {
                    StorageError::Unavailable(format!("Put Block List of {key}: {status}: {body}"))
                }))
            }
        }
    }

    /// Wait until the copy onto `key` has succeeded, reading the blob's
    /// `x-ms-copy-status` (`pending` until Azure has copied it in the
    /// background); within `limit`. A copy that failed or was aborted is
    /// an error, and its destination is removed. The decisions are
    /// [`copy::wait`]'s; this only reads the status.
    pub(super) async fn copy_done(&self, key: &str, limit: Duration) -> Result<()> {
        let url = self.blob_url(key);
        let read = || async {
            let response = self.send(http::Method::HEAD, &url, &[], "").await?;
            check(response.status(), "HEAD of a copy", key, false)?;
            let header = |n: &str| response.headers().get(n).and_then(|v| v.to_str().ok());
            Ok(copy::Status::read(
                header("x-ms-copy-status"),
                header("x-ms-copy-status-description"),
            ))
        };
        match copy::wait(key, limit, read).await? {
            copy::Outcome::Succeeded => Ok(()),
            copy::Outcome::Failed(why) => {
                let delete = self.send(http::Method::DELETE, &url, &[], "");
                let _ = self.bounded("DELETE", &url, delete).await;
                Err(StorageError::Unavailable(format!("copy onto {key}: {why}")))
            }
        }
    }

    /// A signed GET of the container with `query` (its values encoded
    /// with `wire::encode`), bounded, body included.
    pub(super) async fn get_container(
        &self,
        query: &str,
    ) -> Result<(http::StatusCode, bytes::Bytes)> {
        let url = format!("{}?{query}", self.container_url);
        let exchange = async {
            let response = self.send(http::Method::GET, &url, &[], "").await?;
            let status = response.status();
            let body = response
                .into_body()
                .bytes()
                .await
                .map_err(|e| StorageError::Unavailable(format!("GET {url}: {e}")))?;
            Ok((status, body))
        };
        self.bounded("GET", &url, exchange).await
    }

    /// `exchange` within `request_timeout`.
    async fn bounded<T>(
        &self,
        method: &str,
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

    /// Send one request, signed with the store's credentials.
    async fn send(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<HttpResponse> {
        let cred = self.credentials.get_credential().await.map_err(map_err)?;
        let mut b = http::Request::builder()
            .method(method.clone())
            .uri(url)
            .header(http::header::CONTENT_LENGTH, body.len().to_string());
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let mut req = b
            .body(HttpRequestBody::from(bytes::Bytes::from(body.to_owned())))
            .map_err(|e| StorageError::Unavailable(format!("{url}: {e}")))?;
        AzureAuthorizer::new(&cred, &self.account)
            .try_authorize(&mut req)
            .map_err(map_err)?;
        self.client
            .execute(req)
            .await
            .map_err(|e| StorageError::Unavailable(format!("{method} {url}: {e}")))
    }
}

/// A marker request's status as a result.
fn check(status: http::StatusCode, what: &str, key: &str, missing_ok: bool) -> Result<()> {
    match status.as_u16() {
        200..=299 => Ok(()),
        404 if missing_ok => Ok(()),
        404 => Err(StorageError::NotFound),
        401 | 403 => {
            tracing::warn!(%status, key, "object store refused a {what}");
            Err(StorageError::PermissionDenied)
        }
        _ => Err(StorageError::Unavailable(format!(
            "{what} of {key}: {status}"
        ))),
    }
}

/// The body of Put Block List naming `parts` in order, their block IDs
/// base64-encoded as `object_store` sends them.
fn block_list(parts: &[PartId]) -> String {
    let mut s = String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<BlockList>\n");
    for p in parts {
        let id = base64::engine::general_purpose::STANDARD.encode(p.content_id.as_bytes());
        s.push_str(&format!("\t<Latest>{id}</Latest>\n"));
    }
    s.push_str("</BlockList>");
    s
}

/// The container's URL: the endpoint (an account URL, Azurite's
/// `http://HOST:PORT/ACCOUNT`) or `https://ACCOUNT.blob.core.windows.net`,
/// then the container.
pub(super) fn container_url(endpoint: Option<&str>, account: &str, container: &str) -> String {
    let base = endpoint
        .map(|e| e.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
    format!("{base}/{container}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_bodies() {
        assert_eq!(
            container_url(Some("http://127.0.0.1:10000/devstoreaccount1/"), "x", "c"),
            "http://127.0.0.1:10000/devstoreaccount1/c"
        );
        assert_eq!(
            container_url(None, "acct", "c"),
            "https://acct.blob.core.windows.net/c"
        );
        let parts = [
            PartId {
                content_id: "AAAA".into(),
            },
            PartId {
                content_id: "BBBB".into(),
            },
        ];
        let body = block_list(&parts);
        assert!(
            body.contains("<Latest>QUFBQQ==</Latest>\n\t<Latest>QkJCQg==</Latest>"),
            "{body}"
        );
    }
}
