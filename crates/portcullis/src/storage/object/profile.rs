//! What every provider's roots and profiles share, so that a provider's
//! `settings` holds only its own keys: a root URL's container name and
//! prefix (`SCHEME://NAME/PREFIX`), the default section with its named
//! profiles ([`Profiles`]), and the transfer keys that mean the same on
//! every store ([`Tuning`]'s defaults and bounds: `upload_streams`,
//! `download_streams`, `download_chunk`, `request_timeout`).

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use super::Tuning;

/// The default `upload_streams`: parts of one upload being sent at once.
pub const DEFAULT_UPLOAD_STREAMS: usize = 2;
/// The most `upload_streams`.
pub const MAX_UPLOAD_STREAMS: usize = 16;
/// The default `download_streams`: ranged GETs of one download at once.
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

impl Tuning {
    /// The shared defaults, with a provider's default first part size and
    /// doubling (with [`DEFAULT_UPLOAD_STREAMS`] parts being sent and one
    /// filling, an upload of 8 MiB parts holds at most 24 MiB until the
    /// part size first grows).
    pub const fn with_parts(part_size: u64, part_doubling: u64) -> Tuning {
        Tuning {
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            download_streams: DEFAULT_DOWNLOAD_STREAMS,
            download_chunk: DEFAULT_DOWNLOAD_CHUNK,
            part_size,
            part_doubling,
            upload_streams: DEFAULT_UPLOAD_STREAMS,
        }
    }
}

/// A provider's section and its named profiles, validated: `T` is the
/// provider's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profiles<T> {
    /// The section itself: for roots of accounts without `storage_profile`.
    pub default: T,
    /// `[SECTION.profiles.NAME]`, each already completed with the
    /// section's keys.
    pub profiles: BTreeMap<String, T>,
}

impl<T> Profiles<T> {
    /// The settings a root with `profile` (`None`: the section's) uses;
    /// `None` for an unknown profile.
    pub fn get(&self, profile: Option<&str>) -> Option<&T> {
        match profile {
            None => Some(&self.default),
            Some(p) => self.profiles.get(p),
        }
    }

    /// [`Profiles::get`] for an account back end's root, in `section`:
    /// an unknown profile is `account.storage_profile`'s error.
    pub fn for_account(&self, section: &str, profile: Option<&str>) -> Result<&T, String> {
        self.get(profile).ok_or_else(|| {
            format!(
                "account.storage_profile: no [{section}.profiles.{}] section",
                profile.unwrap_or("")
            )
        })
    }
}

impl<T> Profiles<T> {
    /// [`Profiles::get`] for opening `root` (of `section`): an unknown
    /// profile, which validation refuses first, is an error.
    pub fn opened(
        &self,
        section: &str,
        profile: Option<&str>,
        root: &dyn fmt::Display,
    ) -> std::io::Result<&T> {
        self.get(profile).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{root}: no such {section} profile"),
            )
        })
    }
}

/// A root URL split: the container (bucket) name and the prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RootName {
    pub name: String,
    /// Without leading or trailing `/`; empty for the whole container.
    pub prefix: String,
}

impl RootName {
    /// `SCHEME://NAME[/PREFIX]` with `check` saying whether NAME is one
    /// the provider takes. `Ok(None)`: `s` is not such a URL.
    pub fn parse(
        s: &str,
        scheme: &str,
        check: impl Fn(&str) -> Result<(), String>,
    ) -> Result<Option<RootName>, String> {
        let Some(rest) = s.strip_prefix(scheme).and_then(|r| r.strip_prefix("://")) else {
            return Ok(None);
        };
        let (name, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        check(name)?;
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
        Ok(Some(RootName {
            name: name.to_owned(),
            prefix: prefix.to_owned(),
        }))
    }
}

/// A root as `SCHEME://NAME/PREFIX`, then ` (SECTION profile P)` with a
/// profile.
pub fn show_root(
    f: &mut fmt::Formatter<'_>,
    scheme: &str,
    name: &str,
    prefix: &str,
    section: &str,
    profile: Option<&str>,
) -> fmt::Result {
    write!(f, "{scheme}://{name}")?;
    if !prefix.is_empty() {
        write!(f, "/{prefix}")?;
    }
    if let Some(p) = profile {
        write!(f, " ({section} profile {p})")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_prefixes() {
        let any = |_: &str| Ok(());
        assert_eq!(RootName::parse("/srv/x", "zz", any), Ok(None));
        assert_eq!(RootName::parse("zzz://a/b", "zz", any), Ok(None));
        let r = RootName::parse("zz://ab/c/d/", "zz", any).unwrap().unwrap();
        assert_eq!((r.name.as_str(), r.prefix.as_str()), ("ab", "c/d"));
        let no = |_: &str| Err("no".to_owned());
        assert_eq!(RootName::parse("zz://ab", "zz", no), Err("no".into()));
        for bad in ["zz://ab/x//y", "zz://ab/./y", "zz://ab/a\tb"] {
            assert!(RootName::parse(bad, "zz", any).is_err(), "{bad}");
        }
    }

    #[test]
    fn profiles() {
        let mut p = Profiles::<u8>::default();
        p.profiles.insert("fast".into(), 7);
        assert_eq!(p.get(None), Some(&0));
        assert_eq!(p.get(Some("fast")), Some(&7));
        assert_eq!(
            p.for_account("zz", Some("slow")),
            Err("account.storage_profile: no [zz.profiles.slow] section".into())
        );
    }
}
