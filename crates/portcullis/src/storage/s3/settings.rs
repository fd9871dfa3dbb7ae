//! What an `s3://` root names (bucket and prefix) and how its store is
//! reached (`[s3]` and `[s3.profiles.NAME]`, validated by `config`).

use std::fmt;

use crate::storage::object::profile::{show_root, Profiles, RootName};
use crate::storage::object::Tuning;

/// S3's smallest part (every part but the last).
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// S3's largest part.
pub const MAX_PART_SIZE: u64 = 5 << 30;
/// S3's most parts in one multipart upload.
pub const MAX_PARTS: u64 = 10_000;
/// The default `part_size`: with the default `upload_streams`, 2, parts
/// being sent and one filling, an upload holds at most 24 MiB until the
/// part size first grows (see [`PartSchedule`](crate::storage::object::PartSchedule)).
pub const DEFAULT_PART_SIZE: u64 = 8 << 20;
/// The default `part_doubling`: the part size doubles every 900 parts,
/// which reaches S3's 5 TiB within 10,000 parts from any `part_size`.
pub const DEFAULT_PART_DOUBLING: u64 = 900;
/// The region when none is configured (and none is in `AWS_REGION`).
pub const DEFAULT_REGION: &str = "us-east-1";

/// An object-store root: `s3://BUCKET/PREFIX`, with the profile that
/// says how to reach its store (`users[].storage_profile`; `None`: `[s3]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct S3Root {
    pub bucket: String,
    /// Key prefix without leading or trailing `/`; empty for the whole bucket.
    pub prefix: String,
    pub profile: Option<String>,
}

impl S3Root {
    /// Parse `s3://BUCKET[/PREFIX]`. `Ok(None)`: not an `s3://` URL (a
    /// local path).
    pub fn parse(s: &str, profile: Option<String>) -> Result<Option<S3Root>, String> {
        Ok(RootName::parse(s, "s3", check_bucket)?.map(|r| S3Root {
            bucket: r.name,
            prefix: r.prefix,
            profile,
        }))
    }
}

/// S3 bucket names: 3 to 63 lowercase letters, digits, dots and hyphens,
/// starting and ending with a letter or digit.
fn check_bucket(b: &str) -> Result<(), String> {
    let ok_chars = b
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-');
    let ends = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if (3..=63).contains(&b.len()) && ok_chars && ends(b.bytes().next()) && ends(b.bytes().last()) {
        Ok(())
    } else {
        Err(format!(
            "{b:?} is not a bucket name (3 to 63 lowercase letters, digits, '.' and '-')"
        ))
    }
}

impl fmt::Display for S3Root {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let profile = self.profile.as_deref();
        show_root(f, "s3", &self.bucket, &self.prefix, "s3", profile)
    }
}

/// How to reach one S3-compatible store.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Settings {
    /// `None`: AWS (`https://s3.REGION.amazonaws.com`), or `AWS_ENDPOINT_URL`.
    pub endpoint: Option<String>,
    pub region: String,
    /// Both or neither (validated); neither: the `AWS_*` variables and
    /// the credential chain (web identity, container, instance metadata).
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Plain `http://` endpoints are allowed.
    pub allow_http: bool,
    /// `https://BUCKET.endpoint/KEY` rather than `https://endpoint/BUCKET/KEY`.
    pub virtual_hosted_style: bool,
    /// Sign each request's body (its SHA-256 in the signature); `None`:
    /// only over plain `http://`, where nothing else protects it (over
    /// TLS the body is sent as `UNSIGNED-PAYLOAD`, as AWS's SDKs do).
    pub sign_payload: Option<bool>,
    /// `part_size` (the first parts of a multipart upload, and the size
    /// below which an upload is one PUT), `part_doubling` (1 to 10,000;
    /// 10,000: equal parts), `upload_streams`, `download_streams`,
    /// `download_chunk` and `request_timeout` (the longest wait for a
    /// response's headers, and for connecting; a request that carries a
    /// body gets one more second per MiB).
    pub tuning: Tuning,
}

impl Default for S3Settings {
    fn default() -> Self {
        S3Settings {
            endpoint: None,
            region: DEFAULT_REGION.to_owned(),
            access_key_id: None,
            secret_access_key: None,
            allow_http: false,
            virtual_hosted_style: false,
            sign_payload: None,
            tuning: Tuning::with_parts(DEFAULT_PART_SIZE, DEFAULT_PART_DOUBLING),
        }
    }
}

impl S3Settings {
    /// For `serve --root s3://...` without a config file: the endpoint,
    /// region and `allow_http` from `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT`),
    /// `AWS_REGION` (or `AWS_DEFAULT_REGION`) and `AWS_ALLOW_HTTP`; the
    /// credentials from the usual chain.
    pub fn from_env() -> S3Settings {
        let var = |names: &[&str]| names.iter().find_map(|n| std::env::var(n).ok());
        S3Settings {
            endpoint: var(&["AWS_ENDPOINT_URL", "AWS_ENDPOINT"]),
            region: var(&["AWS_REGION", "AWS_DEFAULT_REGION"])
                .unwrap_or_else(|| DEFAULT_REGION.to_owned()),
            allow_http: var(&["AWS_ALLOW_HTTP"]).is_some_and(|v| v == "true" || v == "1"),
            ..S3Settings::default()
        }
    }

    /// Where the store is, for messages.
    pub fn endpoint_name(&self) -> String {
        match &self.endpoint {
            Some(e) => e.clone(),
            None => format!("AWS S3 in {}", self.region),
        }
    }
}

impl fmt::Debug for S3Settings {
    /// The secret key is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "(set)"),
            )
            .field("allow_http", &self.allow_http)
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .field("sign_payload", &self.sign_payload)
            .field("tuning", &self.tuning)
            .finish()
    }
}

/// `[s3]` and its profiles, validated.
pub type S3Options = Profiles<S3Settings>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots() {
        assert_eq!(S3Root::parse("/srv/ftp", None), Ok(None));
        let r = S3Root::parse("s3://my-bucket/a/b/", None).unwrap().unwrap();
        assert_eq!((r.bucket.as_str(), r.prefix.as_str()), ("my-bucket", "a/b"));
        assert_eq!(r.to_string(), "s3://my-bucket/a/b");
        let r = S3Root::parse("s3://bkt", Some("p".into()))
            .unwrap()
            .unwrap();
        assert_eq!(r.prefix, "");
        assert_eq!(r.to_string(), "s3://bkt (s3 profile p)");
        for bad in [
            "s3://",
            "s3://ab",
            "s3://Upper",
            "s3://b_c",
            "s3://-abc",
            "s3://abc/x//y",
            "s3://abc/../y",
            "s3://abc/a\nb",
        ] {
            assert!(S3Root::parse(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn secret_not_in_debug() {
        let s = S3Settings {
            secret_access_key: Some("hunter2".into()),
            ..S3Settings::default()
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
