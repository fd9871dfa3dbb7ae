//! What an `az://` root names (container and prefix) and how its store is
//! reached (`[azure]` and `[azure.profiles.NAME]`, validated by `config`).

use std::fmt;

use crate::storage::object::profile::{show_root, Profiles, RootName};
use crate::storage::object::Tuning;

/// Azure's largest block (service version 2019-12-12 and later).
pub const MAX_BLOCK_SIZE: u64 = 4000 << 20;
/// Azure's most committed blocks in one blob.
pub const MAX_BLOCKS: u64 = 50_000;
/// The smallest `block_size` this server takes (as S3's smallest part, so
/// that the part schedule's doubling reaches Azure's largest blob).
pub const MIN_BLOCK_SIZE: u64 = 1 << 20;
/// The default `block_size`: with the default `upload_streams`, 2,
/// blocks being sent and one filling, an upload holds at most 24 MiB
/// until the block size first grows.
pub const DEFAULT_BLOCK_SIZE: u64 = 8 << 20;
/// The default `block_doubling`, blocks between two doublings of the
/// block size: from 8 MiB, the first
/// 7.8 GiB go in 8 MiB blocks and 50,000 blocks reach 160 TiB (Azure's
/// own limit is 190.7 TiB, every block at 4,000 MiB).
pub const BLOCK_DOUBLING: u64 = 1_000;

/// An Azure Blob root: `az://CONTAINER/PREFIX`, with the profile that
/// says how to reach its account (`users[].storage_profile`; `None`:
/// `[azure]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AzureRoot {
    pub container: String,
    /// Blob-name prefix without leading or trailing `/`; empty for the
    /// whole container.
    pub prefix: String,
    pub profile: Option<String>,
}

impl AzureRoot {
    /// Parse `az://CONTAINER[/PREFIX]`. `Ok(None)`: not an `az://` URL.
    pub fn parse(s: &str, profile: Option<String>) -> Result<Option<AzureRoot>, String> {
        Ok(
            RootName::parse(s, "az", check_container)?.map(|r| AzureRoot {
                container: r.name,
                prefix: r.prefix,
                profile,
            }),
        )
    }
}

/// Azure container names: 3 to 63 lowercase letters, digits and single
/// hyphens, starting and ending with a letter or digit.
fn check_container(c: &str) -> Result<(), String> {
    let ok_chars = c
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ends = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if (3..=63).contains(&c.len())
        && ok_chars
        && !c.contains("--")
        && ends(c.bytes().next())
        && ends(c.bytes().last())
    {
        Ok(())
    } else {
        Err(format!(
            "{c:?} is not a container name (3 to 63 lowercase letters, digits and single '-')"
        ))
    }
}

impl fmt::Display for AzureRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let profile = self.profile.as_deref();
        show_root(f, "az", &self.container, &self.prefix, "azure", profile)
    }
}

/// How to reach one storage account.
#[derive(Clone, PartialEq, Eq)]
pub struct AzureSettings {
    /// The storage account; `None`: `AZURE_STORAGE_ACCOUNT_NAME`.
    pub account: Option<String>,
    /// The account's shared key (base64), or else `sas_token`; neither:
    /// the `AZURE_STORAGE_*` variables and the credential chain.
    pub access_key: Option<String>,
    /// A SAS token (`sv=...&sig=...`).
    pub sas_token: Option<String>,
    /// The account's blob URL, e.g. `http://127.0.0.1:10000/devstoreaccount1`
    /// for Azurite; `None`: `https://ACCOUNT.blob.core.windows.net`.
    pub endpoint: Option<String>,
    /// Plain `http://` endpoints are allowed.
    pub allow_http: bool,
    /// `block_size` as `part_size` (the first blocks of an upload, and
    /// the size below which an upload is one Put Blob), `block_doubling`
    /// as `part_doubling` (default [`BLOCK_DOUBLING`]), `upload_streams`, `download_streams`,
    /// `download_chunk` and `request_timeout` (the longest wait for a
    /// response's headers, and for connecting; a request that carries a
    /// body gets one more second per MiB).
    pub tuning: Tuning,
}

impl Default for AzureSettings {
    fn default() -> Self {
        AzureSettings {
            account: None,
            access_key: None,
            sas_token: None,
            endpoint: None,
            allow_http: false,
            tuning: Tuning::with_parts(DEFAULT_BLOCK_SIZE, BLOCK_DOUBLING),
        }
    }
}

impl AzureSettings {
    /// For `serve --root az://...` without a config file: the account,
    /// endpoint and `allow_http` from `AZURE_STORAGE_ACCOUNT_NAME`,
    /// `AZURE_STORAGE_ENDPOINT` and `AZURE_STORAGE_ALLOW_HTTP` (the
    /// credentials from the other `AZURE_STORAGE_*` variables).
    pub fn from_env() -> AzureSettings {
        let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
        AzureSettings {
            account: var("AZURE_STORAGE_ACCOUNT_NAME"),
            endpoint: var("AZURE_STORAGE_ENDPOINT"),
            allow_http: var("AZURE_STORAGE_ALLOW_HTTP").is_some_and(|v| v == "true" || v == "1"),
            ..AzureSettings::default()
        }
    }

    /// Where the store is, for messages.
    pub fn endpoint_name(&self) -> String {
        match (&self.endpoint, &self.account) {
            (Some(e), _) => e.clone(),
            (None, Some(a)) => format!("https://{a}.blob.core.windows.net"),
            (None, None) => "Azure Blob Storage".to_owned(),
        }
    }
}

impl fmt::Debug for AzureSettings {
    /// The key and the token are never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |o: &Option<String>| o.as_ref().map(|_| "(set)");
        f.debug_struct("AzureSettings")
            .field("account", &self.account)
            .field("access_key", &set(&self.access_key))
            .field("sas_token", &set(&self.sas_token))
            .field("endpoint", &self.endpoint)
            .field("allow_http", &self.allow_http)
            .field("tuning", &self.tuning)
            .finish()
    }
}

/// `[azure]` and its profiles, validated.
pub type AzureOptions = Profiles<AzureSettings>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots() {
        assert_eq!(AzureRoot::parse("/srv/ftp", None), Ok(None));
        assert_eq!(AzureRoot::parse("s3://bucket", None), Ok(None));
        let r = AzureRoot::parse("az://my-container/a/b/", None)
            .unwrap()
            .unwrap();
        assert_eq!(
            (r.container.as_str(), r.prefix.as_str()),
            ("my-container", "a/b")
        );
        assert_eq!(r.to_string(), "az://my-container/a/b");
        let r = AzureRoot::parse("az://ctr", Some("p".into()))
            .unwrap()
            .unwrap();
        assert_eq!(r.prefix, "");
        assert_eq!(r.to_string(), "az://ctr (azure profile p)");
        for bad in [
            "az://",
            "az://ab",
            "az://Upper",
            "az://a.b.c",
            "az://a--b",
            "az://-abc",
            "az://abc/x//y",
            "az://abc/../y",
            "az://abc/a\nb",
        ] {
            assert!(AzureRoot::parse(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_not_in_debug() {
        let s = AzureSettings {
            access_key: Some("hunter2".into()),
            sas_token: Some("sig=hunter3".into()),
            ..AzureSettings::default()
        };
        let d = format!("{s:?}");
        assert!(!d.contains("hunter2") && !d.contains("hunter3"), "{d}");
    }
}

#[cfg(test)]
mod schedule_tests {
    use super::*;
    use crate::storage::object::PartSchedule;

    #[test]
    fn the_default_blocks_reach_160_tib() {
        let s = PartSchedule {
            first: DEFAULT_BLOCK_SIZE,
            every: BLOCK_DOUBLING,
            max_part_size: MAX_BLOCK_SIZE,
            max_parts: MAX_BLOCKS,
        };
        assert_eq!(s.size(999), 8 << 20);
        assert_eq!(s.size(1000), 16 << 20);
        assert_eq!(s.size(49_999), MAX_BLOCK_SIZE);
        assert!(s.largest_object() > 160 << 40, "{}", s.largest_object());
    }
}
