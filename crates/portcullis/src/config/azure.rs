//! `[azure]` and its profiles: the section (one struct for both) and its
//! validation into [`AzureOptions`], every problem with its key. A
//! profile's absent keys come from `[azure]`. Key names follow `[s3]`'s
//! where they mean the same (`endpoint`, `allow_http`, `request_timeout`,
//! `upload_streams`, `download_streams`, `download_chunk`; `block_size`
//! and `block_doubling` are `part_size` and `part_doubling`), and those
//! are checked by what every provider's section shares
//! (`config/object.rs`).

use std::collections::BTreeMap;

use super::object::{check_endpoint, count, profile, size_in, ProviderSection, TransferKeys};
use super::*;
use crate::storage::azure::{MAX_BLOCKS, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE};
use crate::storage::{AzureOptions, AzureRoot, AzureSettings, RootSpec};

/// `[azure]`: how `az://` roots reach their storage account. Every key is
/// optional. `[azure.profiles.NAME]` is the same struct; what a profile
/// leaves out comes from `[azure]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureSection {
    /// The storage account; absent: AZURE_STORAGE_ACCOUNT_NAME.
    pub account: Option<String>,
    /// The account's shared key (base64); or sas_token; neither: the
    /// AZURE_STORAGE_* variables and the credential chain.
    pub access_key: Option<String>,
    /// A SAS token ("sv=...&sig=...").
    pub sas_token: Option<String>,
    /// The account's blob URL, e.g. "http://127.0.0.1:10000/devstoreaccount1"
    /// for Azurite; absent: https://ACCOUNT.blob.core.windows.net.
    pub endpoint: Option<String>,
    /// Allow an http:// endpoint (unencrypted); default false.
    pub allow_http: Option<bool>,
    /// Longest wait for a response's headers, e.g. "30s"; default 30s.
    #[serde(default, with = "humantime_serde")]
    pub request_timeout: Option<Duration>,
    /// Bytes of the first blocks of an upload, "1M" to "4000M"; default "8M".
    pub block_size: Option<Rate>,
    /// Blocks between two doublings of the block size, 1 to 50000
    /// (50000: equal blocks); default 1000.
    pub block_doubling: Option<u64>,
    /// Blocks of one upload being sent at once, 1 to 16; default 2.
    pub upload_streams: Option<usize>,
    /// Ranged GETs of one download at once, 1 to 16 (1: one GET); default 4.
    pub download_streams: Option<usize>,
    /// Bytes of each ranged GET of a download, at least "64K"; default "8M".
    pub download_chunk: Option<Rate>,
    /// Named profiles, selected per user with `storage_profile = "NAME"`
    /// (only in `[azure]`).
    #[serde(default)]
    pub profiles: BTreeMap<String, AzureSection>,
}

impl ProviderSection for AzureSection {
    const NAME: &'static str = "azure";
    type Settings = AzureSettings;

    fn take_profiles(&mut self) -> BTreeMap<String, AzureSection> {
        std::mem::take(&mut self.profiles)
    }

    fn settings(
        self,
        section: &str,
        base: &AzureSettings,
        errors: &mut Vec<String>,
    ) -> AzureSettings {
        let keys = self;
        let mut s = base.clone();
        if let Some(a) = keys.account {
            let ok = (3..=24).contains(&a.len())
                && a.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
            if !ok {
                errors.push(format!(
                    "{section}.account: {a:?} is not a storage account name (3 to 24 lowercase letters and digits)"
                ));
            }
            s.account = Some(a);
        }
        // A profile with a credential of its own replaces the other kind.
        match (keys.access_key, keys.sas_token) {
            (Some(_), Some(_)) => errors.push(format!(
                "{section}.access_key: and {section}.sas_token: give one of the two"
            )),
            (Some(k), None) => {
                use base64::Engine;
                if base64::engine::general_purpose::STANDARD
                    .decode(k.trim())
                    .is_err()
                {
                    errors.push(format!(
                        "{section}.access_key: not base64 (the account key as the portal shows it)"
                    ));
                }
                s.access_key = Some(k.trim().to_owned());
                s.sas_token = None;
            }
            (None, Some(t)) => {
                let t = t.trim().trim_start_matches('?').to_owned();
                if !t.split('&').any(|p| p.starts_with("sig=")) {
                    errors.push(format!(
                        "{section}.sas_token: no sig= parameter (a SAS token is \"sv=...&sig=...\")"
                    ));
                }
                s.sas_token = Some(t);
                s.access_key = None;
            }
            (None, None) => {}
        }
        if let Some(e) = keys.endpoint {
            s.endpoint = Some(e.trim_end_matches('/').to_owned());
        }
        if let Some(a) = keys.allow_http {
            s.allow_http = a;
        }
        size_in(
            &format!("{section}.block_size"),
            keys.block_size,
            MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE,
            "outside \"1M\" to \"4000M\" (Azure's largest block)",
            &mut s.tuning.part_size,
            errors,
        );
        count(
            &format!("{section}.block_doubling"),
            keys.block_doubling,
            MAX_BLOCKS,
            "blocks between doublings of the block size",
            &mut s.tuning.part_doubling,
            errors,
        );
        let transfer = TransferKeys {
            upload_streams: keys.upload_streams,
            download_streams: keys.download_streams,
            download_chunk: keys.download_chunk,
            request_timeout: keys.request_timeout,
        };
        let max = (MAX_BLOCK_SIZE, "4000M");
        transfer.apply(section, "blocks", max, &mut s.tuning, errors);
        check_endpoint(section, s.endpoint.as_deref(), s.allow_http, errors);
        s
    }
}

/// An `az://` root as configured (`key` names it): its profile must be
/// known; without an account or a credential the environment must give
/// them, which is said.
pub(super) fn check_root(
    key: &str,
    r: AzureRoot,
    azure: &AzureOptions,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Option<RootSpec> {
    let (settings, section) = profile(key, "azure", azure, r.profile.as_deref(), errors)?;
    if settings.account.is_none() && std::env::var_os("AZURE_STORAGE_ACCOUNT_NAME").is_none() {
        errors.push(format!(
            "{key}: {r}: {section} has no account (and AZURE_STORAGE_ACCOUNT_NAME is not set)"
        ));
        return None;
    }
    if settings.access_key.is_none() && settings.sas_token.is_none() {
        warnings.push(format!(
            "{key}: {r}: neither access_key nor sas_token in {section}; the AZURE_STORAGE_* variables and the credential chain (managed identity, workload identity) are used"
        ));
    }
    Some(RootSpec::Azure(r))
}
