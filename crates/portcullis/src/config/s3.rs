//! `[s3]` and its profiles: the section (one struct for both) and its
//! validation into [`S3Options`], every problem with its key. A profile's
//! absent keys come from `[s3]`; what every provider's section shares is
//! in `config/object.rs`.

use std::collections::BTreeMap;

use super::object::{check_endpoint, count, profile, size_in, ProviderSection, TransferKeys};
use super::*;
use crate::storage::s3::{MAX_PARTS, MAX_PART_SIZE, MIN_PART_SIZE};
use crate::storage::{RootSpec, S3Options, S3Root, S3Settings};

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
    pub profiles: BTreeMap<String, S3Section>,
}

impl ProviderSection for S3Section {
    const NAME: &'static str = "s3";
    type Settings = S3Settings;

    fn take_profiles(&mut self) -> BTreeMap<String, S3Section> {
        std::mem::take(&mut self.profiles)
    }

    fn settings(self, section: &str, base: &S3Settings, errors: &mut Vec<String>) -> S3Settings {
        let keys = self;
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
        size_in(
            &format!("{section}.part_size"),
            keys.part_size,
            MIN_PART_SIZE..=MAX_PART_SIZE,
            "outside S3's part sizes, \"5M\" to \"5G\"",
            &mut s.tuning.part_size,
            errors,
        );
        count(
            &format!("{section}.part_doubling"),
            keys.part_doubling,
            MAX_PARTS,
            "parts between doublings of the part size",
            &mut s.tuning.part_doubling,
            errors,
        );
        let transfer = TransferKeys {
            upload_streams: keys.upload_streams,
            download_streams: keys.download_streams,
            download_chunk: keys.download_chunk,
            request_timeout: keys.request_timeout,
        };
        transfer.apply(
            section,
            "parts",
            (MAX_PART_SIZE, "5G"),
            &mut s.tuning,
            errors,
        );
        check_endpoint(section, s.endpoint.as_deref(), s.allow_http, errors);
        s
    }
}

/// An `s3://` root as configured (`key` names it): its profile must be
/// known; without keys or an endpoint the credential chain is used,
/// which is said.
pub(super) fn check_root(
    key: &str,
    r: S3Root,
    s3: &S3Options,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Option<RootSpec> {
    let (settings, section) = profile(key, "s3", s3, r.profile.as_deref(), errors)?;
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
