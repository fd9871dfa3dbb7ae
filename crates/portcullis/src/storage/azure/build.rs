//! The client of one `az://` root: `object_store`'s Azure client with
//! the settings of its profile (the `AZURE_STORAGE_*` variables first,
//! then what the configuration says), every request bounded by
//! `request_timeout`, the credential chain's included (its requests go
//! through the same client, with the same connect timeout and retry
//! bound, and every storage request that waits for a credential is
//! bounded as a whole).

use std::sync::Arc;

use object_store::azure::{AzureConfigKey as Key, MicrosoftAzureBuilder};

use super::{requests, AzureProvider, AzureRoot, AzureSettings};
use crate::storage::object::{wire, ObjectStorage};

/// The store of `root`: the client, its provider and the profile's
/// tuning (no request is made).
pub fn new(root: &AzureRoot, settings: &AzureSettings) -> Result<ObjectStorage, String> {
    let t = settings.tuning.request_timeout;
    let (client, retry) = wire::client(settings.allow_http, t);
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
    Ok(ObjectStorage::new(
        store,
        Arc::new(provider),
        &root.prefix,
        settings.tuning,
    ))
}
