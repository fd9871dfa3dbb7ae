//! What a provider's own requests (directory markers, raw listing pages,
//! and the like: see [`super::provider`]) share whatever the store: the
//! HTTP client's options, URL encoding, the status of a listing's
//! answer, a page with the keys that cannot be paths set apart, and the
//! `<Code>` of an XML error body.

use std::time::{Duration, SystemTime};

use object_store::path::Path as ObjPath;
use object_store::{ClientOptions, ListResult, ObjectMeta, RetryConfig};

use super::RawPage;
use crate::storage::{Result, StorageError};

/// The client options and retries of a provider's client, both for
/// `object_store`'s requests and the provider's own: connecting bounded
/// by `timeout` and two retries within it; no whole-request limit, which
/// would cut long downloads (the wait for headers is bounded by
/// [`super::Store::bounded`] instead). Installs rustls's ring provider
/// for reqwest, which is built without one of its own (already
/// installed is fine).
pub fn client(allow_http: bool, timeout: Duration) -> (ClientOptions, RetryConfig) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = ClientOptions::new()
        .with_allow_http(allow_http)
        .with_connect_timeout(timeout)
        .with_timeout_disabled();
    let retry = RetryConfig {
        max_retries: 2,
        retry_timeout: timeout,
        ..Default::default()
    };
    (client, retry)
}

/// Percent-encode for a URL (as request signing canonicalises it):
/// everything but unreserved characters, and the `/` between
/// a key's segments when `slash` (a path; not in a query's values).
pub fn encode(text: &str, slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A query from `pairs` in their order, the absent ones left out, the
/// values encoded.
pub fn query(pairs: &[(&str, Option<&str>)]) -> String {
    pairs
        .iter()
        .filter_map(|(k, v)| Some(format!("{k}={}", encode((*v)?, false))))
        .collect::<Vec<_>>()
        .join("&")
}

/// A listing request's answer: `read` its body on success, else the
/// status as a storage error.
pub fn listing(
    status: http::StatusCode,
    body: &[u8],
    read: impl FnOnce(&[u8]) -> Result<RawPage>,
) -> Result<RawPage> {
    match status.as_u16() {
        200..=299 => read(body),
        404 => Err(StorageError::NotFound),
        401 | 403 => {
            tracing::warn!(%status, "object store refused a listing");
            Err(StorageError::PermissionDenied)
        }
        _ => Err(StorageError::Unavailable(format!("listing: {status}"))),
    }
}

/// An object of a listing's answer, as the store wrote it.
pub struct Listed {
    pub key: String,
    pub size: u64,
    pub modified: SystemTime,
    pub e_tag: Option<String>,
}

/// A listing page from an answer's prefixes and objects, those whose
/// names cannot be paths set apart (prefixes first), with the token of
/// the next page.
pub fn page(prefixes: Vec<String>, objects: Vec<Listed>, token: Option<String>) -> RawPage {
    let mut skipped = Vec::new();
    let mut path = |raw: String| match ObjPath::parse(&raw) {
        Ok(p) => Some(p),
        Err(_) => {
            skipped.push(raw);
            None
        }
    };
    let common_prefixes = prefixes.into_iter().filter_map(&mut path).collect();
    let objects = objects
        .into_iter()
        .filter_map(|o| {
            Some(ObjectMeta {
                location: path(o.key)?,
                last_modified: o.modified.into(),
                size: o.size,
                e_tag: o.e_tag,
                version: None,
            })
        })
        .collect();
    RawPage {
        result: ListResult {
            common_prefixes,
            objects,
            extensions: Default::default(),
        },
        token,
        skipped,
    }
}

/// The `<Code>` of an XML error body quoted in a message.
pub fn error_code(text: &str) -> Option<&str> {
    let start = text.find("<Code>")? + "<Code>".len();
    let len = text[start..].find("</Code>")?;
    Some(&text[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_and_queries() {
        assert_eq!(encode("a b/c+d/é", true), "a%20b/c%2Bd/%C3%A9");
        assert_eq!(encode("a b/c", false), "a%20b%2Fc");
        assert_eq!(
            query(&[("a", Some("x/y")), ("b", None), ("c", Some("1"))]),
            "a=x%2Fy&c=1"
        );
        assert_eq!(
            error_code("Error: <Error><Code>NoSuchKey</Code></Error>"),
            Some("NoSuchKey")
        );
        assert_eq!(error_code("connection refused"), None);
    }
}
