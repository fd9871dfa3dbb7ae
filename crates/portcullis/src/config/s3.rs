//! `[s3]` and its profiles: the section (one struct for both) and its
//! validation into [`S3Options`], every problem with its key. A profile's
//! absent keys come from `[s3]`.

use super::*;
use crate::storage::s3::{
    MAX_DOWNLOAD_STREAMS, MAX_PARTS, MAX_PART_SIZE, MAX_UPLOAD_STREAMS, MIN_DOWNLOAD_CHUNK,
    MIN_PART_SIZE,
};
use crate::storage::{S3Options, S3Settings};

/// `[s3]`: how `s3://` roots reach their store. Every key is optional.
/// `[s3.profiles.NAME]` is the same struct (one shape for the same keys;
/// serde's `flatten` does not mix with `deny_unknown_fields`): what a
/// profile leaves out comes from `[s3]`, and a profile's own `profiles`
/// is refused by validation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Section {
    /// The store's URL, e.g. "http://127.0.0.1:9000"; absent: AWS S3.
    pub endpoint: Option<String>,
    /// The region that requests are signed for; default "us-east-1".
    pub region: Option<String>,
    /// Access key; with secret_access_key, or neither (then the AWS_*
    /// variables and the credential chain).
    pub access_key_id: Option<String>,
    /// Secret key of access_key_id.
    pub secret_access_key: Option<String>,
    /// Allow an http:// endpoint (unencrypted); default false.
    pub allow_http: Option<bool>,
    /// BUCKET.endpoint URLs instead of endpoint/BUCKET; default false.
    pub virtual_hosted_style: Option<bool>,
    /// Sign request bodies; default: over http:// only (TLS protects the
    /// rest).
    pub sign_payload: Option<bool>,
    /// Bytes of the first multipart parts, "5M" to "5G"; default "8M".
    pub part_size: Option<Rate>,
    /// Parts between two doublings of the part size, 1 to 10000
    /// (10000: equal parts); default 900.
    pub part_doubling: Option<u64>,
    /// Parts of one upload being sent at once, 1 to 16; default 2.
    pub upload_streams: Option<usize>,
    /// Ranged GETs of one download at once, 1 to 16 (1: one GET); default 4.
    pub download_streams: Option<usize>,
    /// Bytes of each ranged GET of a download, at least "64K"; default "8M".
    pub download_chunk: Option<Rate>,
    /// Longest wait for a response's headers, e.g. "30s"; default 30s.
    #[serde(default, with = "humantime_serde")]
    pub request_timeout: Option<Duration>,
    /// Named profiles, selected per user with `storage_profile = "NAME"`
    /// (only in `[s3]`).
    #[serde(default)]
    pub profiles: std::collections::BTreeMap<String, S3Section>,
}

/// A size in bytes: a number, or a string with a K, M or G suffix.
pub(super) fn parse_size(key: &str, r: &Rate, errors: &mut Vec<String>) -> Option<u64> {
    let mut e = Vec::new();
    let n = values::parse_rate(key, r, &mut e);
    if e.is_empty() {
        Some(n)
    } else {
        errors.push(format!(
            "{key}: {r:?} is not a size (bytes, e.g. 8388608 or \"8M\")"
        ));
        None
    }
}

/// A count from 1 to `max` for `key`, into `to`; out of range, an error
/// that says what it counts.
pub(super) fn count<T>(
    key: &str,
    v: Option<T>,
    max: T,
    what: &str,
    to: &mut T,
    errors: &mut Vec<String>,
) where
    T: Copy + PartialOrd + std::fmt::Display + From<u8>,
{
    match v {
        Some(n) if (T::from(1)..=max).contains(&n) => *to = n,
        Some(n) => errors.push(format!("{key}: {n} is not 1 to {max} ({what})")),
        None => {}
    }
}

/// `keys` over `base`, checked; `section` is "s3" or "s3.profiles.NAME".
fn settings(
    section: &str,
    keys: S3Section,
    base: &S3Settings,
    errors: &mut Vec<String>,
) -> S3Settings {
    let mut s = base.clone();
    if let Some(e) = keys.endpoint {
        s.endpoint = Some(e);
    }
    if let Some(r) = keys.region {
        if r.trim().is_empty() {
            errors.push(format!("{section}.region: must not be empty"));
        }
        s.region = r;
    }
    // A profile with keys of its own replaces both.
    match (keys.access_key_id, keys.secret_access_key) {
        (Some(k), Some(v)) => {
            s.access_key_id = Some(k);
            s.secret_access_key = Some(v);
        }
        (None, None) => {}
        (Some(_), None) => errors.push(format!(
            "{section}.secret_access_key: required with access_key_id"
        )),
        (None, Some(_)) => errors.push(format!(
            "{section}.access_key_id: required with secret_access_key"
        )),
    }
    if let Some(a) = keys.allow_http {
        s.allow_http = a;
    }
    if let Some(v) = keys.virtual_hosted_style {
        s.virtual_hosted_style = v;
    }
    if let Some(v) = keys.sign_payload {
        s.sign_payload = Some(v);
    }
    if let Some(p) = keys.part_size {
        let key = format!("{section}.part_size");
        if let Some(n) = parse_size(&key, &p, errors) {
            if (MIN_PART_SIZE..=MAX_PART_SIZE).contains(&n) {
                s.part_size = n;
            } else {
                errors.push(format!(
                    "{key}: {n} bytes is outside S3's part sizes, \"5M\" to \"5G\""
                ));
            }
        }
    }
    count(
        &format!("{section}.part_doubling"),
        keys.part_doubling,
        MAX_PARTS,
        "parts between doublings of the part size",
        &mut s.part_doubling,
        errors,
    );
    count(
        &format!("{section}.upload_streams"),
        keys.upload_streams,
        MAX_UPLOAD_STREAMS,
        "parts of one upload being sent at once",
        &mut s.upload_streams,
        errors,
    );
    count(
        &format!("{section}.download_streams"),
        keys.download_streams,
        MAX_DOWNLOAD_STREAMS,
        "ranged GETs of one download at once",
        &mut s.download_streams,
        errors,
    );
    if let Some(c) = keys.download_chunk {
        let key = format!("{section}.download_chunk");
        if let Some(n) = parse_size(&key, &c, errors) {
            if (MIN_DOWNLOAD_CHUNK..=MAX_PART_SIZE).contains(&n) {
                s.download_chunk = n;
            } else {
                errors.push(format!("{key}: {n} bytes is not \"64K\" to \"5G\""));
            }
        }
    }
    if let Some(t) = keys.request_timeout {
        if t.is_zero() || t > Duration::from_secs(3600) {
            errors.push(format!(
                "{section}.request_timeout: must be more than 0 and at most 1h"
            ));
        }
        s.request_timeout = t;
    }
    if let Some(e) = &s.endpoint {
        if e.starts_with("http://") {
            if !s.allow_http {
                errors.push(format!(
                    "{section}.endpoint: {e:?} is plain HTTP (keys are signed but data and listings travel unencrypted): set {section}.allow_http = true to use it"
                ));
            }
        } else if !e.starts_with("https://") {
            errors.push(format!(
                "{section}.endpoint: {e:?} is not an http:// or https:// URL"
            ));
        } else if e["https://".len()..].trim_matches('/').is_empty() {
            errors.push(format!("{section}.endpoint: {e:?} has no host"));
        }
    }
    s
}

pub(super) fn validate_s3(mut f: S3Section, errors: &mut Vec<String>) -> S3Options {
    let profiles = std::mem::take(&mut f.profiles);
    let default = settings("s3", f, &S3Settings::default(), errors);
    let mut out = S3Options {
        default,
        profiles: Default::default(),
    };
    for (name, p) in profiles {
        let section = format!("s3.profiles.{name}");
        if name.is_empty() || name.contains(char::is_whitespace) {
            errors.push(format!(
                "{section}: a profile name must be non-empty without spaces"
            ));
        }
        if !p.profiles.is_empty() {
            errors.push(format!(
                "{section}.profiles: profiles are named in [s3] only, not inside a profile"
            ));
        }
        let s = settings(&section, p, &out.default, errors);
        out.profiles.insert(name, s);
    }
    out
}

/// A root as configured (`key` names it), with the account's profile:
/// object-store roots need a known profile of their scheme's section,
/// local roots an existing directory and no profile.
pub(super) fn parse_root(
    key: &str,
    root: &Path,
    profile: Option<&str>,
    stores: &crate::storage::StoreOptions,
    checks: &dyn super::Checks,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Option<crate::storage::RootSpec> {
    use crate::storage::RootSpec;
    let s3 = &stores.s3;
    match RootSpec::parse(root, profile.map(str::to_owned)) {
        Ok(RootSpec::Local(p)) => {
            if profile.is_some() {
                let k = key.trim_end_matches(".root");
                errors.push(format!(
                    "{k}.storage_profile: only for an s3:// or az:// root, not {}",
                    p.display()
                ));
            }
            if checks.this_host() {
                values::check_dir(key, &p, errors);
            }
            Some(RootSpec::Local(p))
        }
        Ok(RootSpec::S3(r)) => {
            let Some(settings) = s3.for_root(&r) else {
                let k = key.trim_end_matches(".root");
                errors.push(format!(
                    "{k}.storage_profile: no [s3.profiles.{}] section",
                    r.profile.as_deref().unwrap_or("")
                ));
                return None;
            };
            let section = match &r.profile {
                Some(p) => format!("[s3.profiles.{p}]"),
                None => "[s3]".to_owned(),
            };
            if settings.access_key_id.is_none() && settings.endpoint.is_none() {
                // Not refused: on EC2 the instance's role is a valid way.
                warnings.push(format!(
                    "{key}: {r}: {section} has neither endpoint nor access_key_id, so the \
                     credentials come from the AWS_* variables or else the EC2 instance \
                     metadata (off EC2 the start fails with an instance-metadata error); \
                     for another store set endpoint, access_key_id and secret_access_key \
                     in {section}"
                ));
            } else if settings.access_key_id.is_none() {
                warnings.push(format!(
                    "{key}: {r}: no access_key_id configured; the AWS_* variables and the credential chain are used"
                ));
            }
            Some(RootSpec::S3(r))
        }
        Ok(RootSpec::Azure(r)) => super::azure::check_root(key, r, &stores.azure, errors, warnings),
        Err(e) => {
            errors.push(format!("{key}: {e}"));
            None
        }
    }
}
