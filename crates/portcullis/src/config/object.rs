//! What every object-store provider's section shares (`[s3]`,
//! `[azure]`): the section with its named profiles, each completed from
//! the section ([`validate`]); the keys that mean the same on every store
//! (`endpoint` with `allow_http`, `upload_streams`, `download_streams`,
//! `download_chunk`, `request_timeout`: [`TransferKeys`]); a size and a
//! count with their messages; and a root as configured, whatever its
//! scheme ([`parse_root`]), with the profile it names ([`profile`]).
//! A provider's module keeps only its own keys.

use std::collections::BTreeMap;

use super::*;
use crate::storage::object::profile::{
    MAX_DOWNLOAD_STREAMS, MAX_UPLOAD_STREAMS, MIN_DOWNLOAD_CHUNK,
};
use crate::storage::object::{Profiles, Tuning};
use crate::storage::RootSpec;

/// A provider's section: one struct for the section and each of its
/// profiles (serde's `flatten` does not mix with `deny_unknown_fields`).
pub(super) trait ProviderSection: Sized {
    /// The section's name (`s3`).
    const NAME: &'static str;
    /// What the section validates into.
    type Settings: Clone + Default;
    /// Its `profiles`, taken out.
    fn take_profiles(&mut self) -> BTreeMap<String, Self>;
    /// These keys over `base`, checked; `section` is `NAME` or
    /// `NAME.profiles.P`.
    fn settings(
        self,
        section: &str,
        base: &Self::Settings,
        errors: &mut Vec<String>,
    ) -> Self::Settings;
}

/// A provider's section and its profiles, validated: what a profile
/// leaves out comes from the section, and a profile's own `profiles` is
/// refused.
pub(super) fn validate<S: ProviderSection>(
    mut f: S,
    errors: &mut Vec<String>,
) -> Profiles<S::Settings> {
    let name = S::NAME;
    let profiles = f.take_profiles();
    let default = f.settings(name, &S::Settings::default(), errors);
    let mut out = Profiles {
        default,
        profiles: Default::default(),
    };
    for (p, mut keys) in profiles {
        let section = format!("{name}.profiles.{p}");
        if p.is_empty() || p.contains(char::is_whitespace) {
            errors.push(format!(
                "{section}: a profile name must be non-empty without spaces"
            ));
        }
        if !keys.take_profiles().is_empty() {
            errors.push(format!(
                "{section}.profiles: profiles are named in [{name}] only, not inside a profile"
            ));
        }
        let s = keys.settings(&section, &out.default, errors);
        out.profiles.insert(p, s);
    }
    out
}

/// The settings of a root's `profile` in `set` (of section `name`) and
/// the section as messages name it (`[s3]`, `[s3.profiles.P]`); an
/// unknown profile is `KEY.storage_profile`'s error.
pub(super) fn profile<'a, T>(
    key: &str,
    name: &str,
    set: &'a Profiles<T>,
    profile: Option<&str>,
    errors: &mut Vec<String>,
) -> Option<(&'a T, String)> {
    let Some(settings) = set.get(profile) else {
        let k = key.trim_end_matches(".root");
        errors.push(format!(
            "{k}.storage_profile: no [{name}.profiles.{}] section",
            profile.unwrap_or("")
        ));
        return None;
    };
    let section = match profile {
        Some(p) => format!("[{name}.profiles.{p}]"),
        None => format!("[{name}]"),
    };
    Some((settings, section))
}

/// A size in bytes: a number, or a string with a K, M or G suffix.
pub(super) fn size(key: &str, r: &Rate, errors: &mut Vec<String>) -> Option<u64> {
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

/// A size for `key` within `range`, into `to`; outside it, `outside`'s
/// message.
pub(super) fn size_in(
    key: &str,
    v: Option<Rate>,
    range: std::ops::RangeInclusive<u64>,
    outside: &str,
    to: &mut u64,
    errors: &mut Vec<String>,
) {
    let Some(v) = v else { return };
    if let Some(n) = size(key, &v, errors) {
        if range.contains(&n) {
            *to = n;
        } else {
            errors.push(format!("{key}: {n} bytes is {outside}"));
        }
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

/// The keys of a provider's section that mean the same on every store.
pub(super) struct TransferKeys {
    pub upload_streams: Option<usize>,
    pub download_streams: Option<usize>,
    pub download_chunk: Option<Rate>,
    pub request_timeout: Option<Duration>,
}

impl TransferKeys {
    /// Checked into `to`, in `section`: `parts` names what an upload
    /// sends ("parts", "blocks"), `max_part` is the store's largest part
    /// (the largest `download_chunk`) as a number and as written ("5G").
    pub(super) fn apply(
        self,
        section: &str,
        parts: &str,
        max_part: (u64, &str),
        to: &mut Tuning,
        errors: &mut Vec<String>,
    ) {
        count(
            &format!("{section}.upload_streams"),
            self.upload_streams,
            MAX_UPLOAD_STREAMS,
            &format!("{parts} of one upload being sent at once"),
            &mut to.upload_streams,
            errors,
        );
        count(
            &format!("{section}.download_streams"),
            self.download_streams,
            MAX_DOWNLOAD_STREAMS,
            "ranged GETs of one download at once",
            &mut to.download_streams,
            errors,
        );
        size_in(
            &format!("{section}.download_chunk"),
            self.download_chunk,
            MIN_DOWNLOAD_CHUNK..=max_part.0,
            &format!("not \"64K\" to \"{}\"", max_part.1),
            &mut to.download_chunk,
            errors,
        );
        if let Some(t) = self.request_timeout {
            if t.is_zero() || t > Duration::from_secs(3600) {
                errors.push(format!(
                    "{section}.request_timeout: must be more than 0 and at most 1h"
                ));
            }
            to.request_timeout = t;
        }
    }
}

/// The endpoint a section ends with: an http:// or https:// URL with a
/// host, plain HTTP only with `allow_http`.
pub(super) fn check_endpoint(
    section: &str,
    endpoint: Option<&str>,
    allow_http: bool,
    errors: &mut Vec<String>,
) {
    let Some(e) = endpoint else { return };
    if e.starts_with("http://") {
        if !allow_http {
            errors.push(format!(
                "{section}.endpoint: {e:?} is plain HTTP (requests are signed but data and listings travel unencrypted): set {section}.allow_http = true to use it"
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

/// A root as configured (`key` names it), with the account's profile:
/// object-store roots need a known profile of their scheme's section
/// (the provider's `check_root`), local roots an existing directory and
/// no profile.
pub(super) fn parse_root(
    key: &str,
    root: &Path,
    profile: Option<&str>,
    stores: &crate::storage::StoreOptions,
    checks: &dyn super::Checks,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Option<RootSpec> {
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
        Ok(RootSpec::S3(r)) => super::s3::check_root(key, r, &stores.s3, errors, warnings),
        Ok(RootSpec::Azure(r)) => super::azure::check_root(key, r, &stores.azure, errors, warnings),
        Err(e) => {
            errors.push(format!("{key}: {e}"));
            None
        }
    }
}
