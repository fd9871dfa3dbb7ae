//! Validation of `[s3]` and its profiles into [`S3Options`], every
//! problem with its key. A profile's absent keys come from `[s3]`.

use super::*;
use crate::storage::s3::{MAX_PART_SIZE, MIN_PART_SIZE};
use crate::storage::{S3Options, S3Settings};

/// The keys of `[s3]` or of one profile, as one shape.
struct Keys {
    endpoint: Option<String>,
    region: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    allow_http: Option<bool>,
    virtual_hosted_style: Option<bool>,
    part_size: Option<Rate>,
    request_timeout: Option<Duration>,
}

impl From<S3Profile> for Keys {
    fn from(p: S3Profile) -> Keys {
        Keys {
            endpoint: p.endpoint,
            region: p.region,
            access_key_id: p.access_key_id,
            secret_access_key: p.secret_access_key,
            allow_http: p.allow_http,
            virtual_hosted_style: p.virtual_hosted_style,
            part_size: p.part_size,
            request_timeout: p.request_timeout,
        }
    }
}

/// A size in bytes: a number, or a string with a K, M or G suffix.
fn parse_size(key: &str, r: &Rate, errors: &mut Vec<String>) -> Option<u64> {
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

/// `keys` over `base`, checked; `section` is "s3" or "s3.profiles.NAME".
fn settings(section: &str, keys: Keys, base: &S3Settings, errors: &mut Vec<String>) -> S3Settings {
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

pub(super) fn validate_s3(f: S3Section, errors: &mut Vec<String>) -> S3Options {
    let S3Section {
        endpoint,
        region,
        access_key_id,
        secret_access_key,
        allow_http,
        virtual_hosted_style,
        part_size,
        request_timeout,
        profiles,
    } = f;
    let keys = Keys {
        endpoint,
        region,
        access_key_id,
        secret_access_key,
        allow_http,
        virtual_hosted_style,
        part_size,
        request_timeout,
    };
    let default = settings("s3", keys, &S3Settings::default(), errors);
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
        let s = settings(&section, p.into(), &out.default, errors);
        out.profiles.insert(name, s);
    }
    out
}

/// A root as configured (`key` names it), with the account's profile:
/// `s3://` roots need a known profile, local roots an existing directory
/// and no profile.
pub(super) fn parse_root(
    key: &str,
    root: &Path,
    profile: Option<&str>,
    s3: &S3Options,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Option<crate::storage::RootSpec> {
    use crate::storage::RootSpec;
    match RootSpec::parse(root, profile.map(str::to_owned)) {
        Ok(RootSpec::Local(p)) => {
            if profile.is_some() {
                let k = key.trim_end_matches(".root");
                errors.push(format!(
                    "{k}.s3_profile: only for an s3:// root, not {}",
                    p.display()
                ));
            }
            values::check_dir(key, &p, errors);
            Some(RootSpec::Local(p))
        }
        Ok(RootSpec::S3(r)) => {
            let Some(settings) = s3.for_root(&r) else {
                let k = key.trim_end_matches(".root");
                errors.push(format!(
                    "{k}.s3_profile: no [s3.profiles.{}] section",
                    r.profile.as_deref().unwrap_or("")
                ));
                return None;
            };
            if settings.access_key_id.is_none() {
                warnings.push(format!(
                    "{key}: {r}: no access_key_id configured; the AWS_* variables and the credential chain are used"
                ));
            }
            Some(RootSpec::S3(r))
        }
        Err(e) => {
            errors.push(format!("{key}: {e}"));
            None
        }
    }
}
