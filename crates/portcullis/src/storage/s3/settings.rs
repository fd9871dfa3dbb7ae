//! What an `s3://` root names (bucket and prefix) and how its store is
//! reached (`[s3]` and `[s3.profiles.NAME]`, validated by `config`).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

/// S3's smallest part (every part but the last).
pub const MIN_PART_SIZE: u64 = 5 << 20;
/// S3's largest part.
pub const MAX_PART_SIZE: u64 = 5 << 30;
/// S3's most parts in one multipart upload.
pub const MAX_PARTS: u64 = 10_000;
/// The default `part_size`: with [`DEFAULT_UPLOAD_STREAMS`] parts being
/// sent and one filling, an upload holds at most 24 MiB until the
/// part size first grows (see [`super::parts`]).
pub const DEFAULT_PART_SIZE: u64 = 8 << 20;
/// The default `part_doubling`: the part size doubles every 900 parts,
/// which reaches S3's 5 TiB within 10,000 parts from any `part_size`.
pub const DEFAULT_PART_DOUBLING: u64 = 900;
/// The default `upload_streams`: parts of one upload being sent at once.
pub const DEFAULT_UPLOAD_STREAMS: usize = 2;
/// The most `upload_streams`.
pub const MAX_UPLOAD_STREAMS: usize = 16;
/// The default `download_streams`: GETs of one download at once.
pub const DEFAULT_DOWNLOAD_STREAMS: usize = 4;
/// The most `download_streams`.
pub const MAX_DOWNLOAD_STREAMS: usize = 16;
/// The default `download_chunk`: with 4 streams, a download holds at most
/// 32 MiB (see [`super::download`]). AWS advises ranges of 8 to 16 MB.
pub const DEFAULT_DOWNLOAD_CHUNK: u64 = 8 << 20;
/// The smallest `download_chunk`.
pub const MIN_DOWNLOAD_CHUNK: u64 = 64 << 10;
/// The default `request_timeout`.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
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
        let Some(rest) = s.strip_prefix("s3://") else {
            return Ok(None);
        };
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        check_bucket(bucket)?;
        let prefix = prefix.trim_end_matches('/');
        for seg in prefix.split('/').filter(|_| !prefix.is_empty()) {
            if seg.is_empty() || seg == "." || seg == ".." {
                return Err(format!(
                    "{s:?}: the prefix must not have empty, \".\" or \"..\" segments"
                ));
            }
            if seg.chars().any(|c| c.is_control()) {
                return Err(format!("{s:?}: control characters in the prefix"));
            }
        }
        Ok(Some(S3Root {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
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
        write!(f, "s3://{}", self.bucket)?;
        if !self.prefix.is_empty() {
            write!(f, "/{}", self.prefix)?;
        }
        if let Some(p) = &self.profile {
            write!(f, " (s3 profile {p})")?;
        }
        Ok(())
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
    /// Bytes of the first parts of a multipart upload, and the size below
    /// which an upload is one PUT.
    pub part_size: u64,
    /// Parts between two doublings of the part size (1 to 10,000; 10,000:
    /// equal parts).
    pub part_doubling: u64,
    /// Parts of one upload being sent at once, besides the one filling.
    pub upload_streams: usize,
    /// GETs of one download at once (1: one GET, streamed).
    pub download_streams: usize,
    /// Bytes of each of a download's ranged GETs.
    pub download_chunk: u64,
    /// The longest wait for a response's headers (and for connecting);
    /// a request that carries a body gets one more second per MiB.
    pub request_timeout: Duration,
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
            part_size: DEFAULT_PART_SIZE,
            part_doubling: DEFAULT_PART_DOUBLING,
            upload_streams: DEFAULT_UPLOAD_STREAMS,
            download_streams: DEFAULT_DOWNLOAD_STREAMS,
            download_chunk: DEFAULT_DOWNLOAD_CHUNK,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
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
            .field("part_size", &self.part_size)
            .field("part_doubling", &self.part_doubling)
            .field("upload_streams", &self.upload_streams)
            .field("download_streams", &self.download_streams)
            .field("download_chunk", &self.download_chunk)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

/// `[s3]` and its profiles, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct S3Options {
    /// `[s3]`: for roots of accounts without `storage_profile`.
    pub default: S3Settings,
    /// `[s3.profiles.NAME]`, each already completed with `[s3]`'s keys.
    pub profiles: BTreeMap<String, S3Settings>,
}

impl S3Options {
    /// The settings of a root's profile; `None` for an unknown profile.
    pub fn for_root(&self, root: &S3Root) -> Option<&S3Settings> {
        match &root.profile {
            None => Some(&self.default),
            Some(p) => self.profiles.get(p),
        }
    }
}

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
