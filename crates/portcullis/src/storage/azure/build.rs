//! The client of one `az://` root: `object_store`'s Azure client with
//! the settings of its profile (the `AZURE_STORAGE_*` variables first,
//! then what the configuration says), every request bounded by
//! `request_timeout`, the credential chain's included (its requests go
//! through the same client, with the same connect timeout and retry
//! bound, and every storage request that waits for a credential is
//! bounded as a whole).

use std::sync::Arc;

use object_store::azure::{AzureConfigKey as Key, MicrosoftAzureBuilder};

use super::settings::BLOCK_DOUBLING;
use super::{requests, AzureProvider, AzureRoot, AzureSettings};
use crate::storage::object::{ObjectStorage, Tuning};

/// The store of `root`: the client, its provider and the profile's
/// tuning (no request is made).
pub fn new(root: &AzureRoot, settings: &AzureSettings) -> Result<ObjectStorage, String> {
    // reqwest is built without a crypto provider of its own: rustls
    // with ring, as everywhere in this server. Already installed is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let t = settings.request_timeout;
    let client = object_store::ClientOptions::new()
        .with_allow_http(settings.allow_http)
        .with_connect_timeout(t)
        // A whole-request limit would cut long downloads; the wait for
        // headers is bounded by `timed` instead.
        .with_timeout_disabled();
    let retry = object_store::RetryConfig {
        max_retries: 2,
        retry_timeout: t,
        ..Default::default()
    };
    let mut b = MicrosoftAzureBuilder::from_env()
        .with_client_options(client.clone())
        .with_retry(retry)
        .with_container_name(&root.container)
        .with_allow_http(settings.allow_http);
    if let Some(a) = &settings.account {
        b = b.with_account(a);
    }
    if let Some(e) = &settings.endpoint {
        b = b.with_endpoint(e.clone());
    }
    if let Some(k) = &settings.access_key {
        b = b.with_access_key(k);
    } else if let Some(s) = &settings.sas_token {
        b = b.with_config(Key::SasKey, s.trim_start_matches('?'));
    }
    let account = b.get_config_value(&Key::AccountName).ok_or_else(|| {
        format!("{root}: no storage account (set azure.account or AZURE_STORAGE_ACCOUNT_NAME)")
    })?;
    let endpoint = b.get_config_value(&Key::Endpoint);
    let store = Arc::new(b.build().map_err(|e| format!("{root}: {e}"))?);
    let container_url = requests::container_url(endpoint.as_deref(), &account, &root.container);
    let requests = requests::Requests::new(&store, root, account, container_url, &client, t)?;
    let shown = endpoint.unwrap_or_else(|| settings.endpoint_name());
    let provider = AzureProvider {
        requests,
        root: root.clone(),
        shown,
    };
    let tuning = Tuning {
        request_timeout: settings.request_timeout,
        download_streams: settings.download_streams,
        download_chunk: settings.download_chunk,
        part_size: settings.block_size,
        part_doubling: BLOCK_DOUBLING,
        upload_streams: settings.upload_streams,
    };
    Ok(ObjectStorage::new(
        store,
        Arc::new(provider),
        &root.prefix,
        tuning,
    ))
}
