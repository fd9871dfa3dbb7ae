//! The client of one `s3://` root: `object_store`'s S3 client with the
//! settings of its profile (the `AWS_*` variables first, then what the
//! configuration says), every request bounded by `request_timeout`.

use std::sync::Arc;

use object_store::aws::{AmazonS3Builder, S3CopyIfNotExists};

use super::{marker, S3Provider, S3Root, S3Settings};
use crate::storage::object::{wire, ObjectStorage};

/// The store of `root`: the client, its provider and the profile's
/// tuning (no request is made).
pub fn new(root: &S3Root, settings: &S3Settings) -> Result<ObjectStorage, String> {
    let (client, retry) = wire::client(settings.allow_http, settings.tuning.request_timeout);
    // The AWS_* variables first (a session token, web identity, a
    // container's credentials), then what the configuration says.
    let mut b = AmazonS3Builder::from_env()
        .with_client_options(client.clone())
        .with_retry(retry)
        .with_bucket_name(&root.bucket)
        .with_region(&settings.region)
        .with_virtual_hosted_style_request(settings.virtual_hosted_style)
        // A rename that must not replace (storage/object/rename.rs): a
        // one-part multipart copy completed with If-None-Match, the
        // conditional copy S3 itself offers.
        .with_copy_if_not_exists(S3CopyIfNotExists::Multipart);
    use object_store::aws::AmazonS3ConfigKey as Key;
    let endpoint = settings.endpoint.clone().or_else(|| {
        b.get_config_value(&Key::S3Endpoint)
            .or_else(|| b.get_config_value(&Key::Endpoint))
    });
    // The bucket's own URL, for object_store (which takes an endpoint
    // for virtual-hosted style as the bucket's) and for the markers.
    let bucket_url = marker::bucket_url(
        endpoint.as_deref(),
        &root.bucket,
        &settings.region,
        settings.virtual_hosted_style,
    )
    .map_err(|e| format!("{root}: {e}"))?;
    if let Some(e) = &endpoint {
        let e = if settings.virtual_hosted_style {
            bucket_url.clone()
        } else {
            e.clone()
        };
        b = b
            .with_config(Key::S3Endpoint, e.clone())
            .with_config(Key::Endpoint, e);
    }
    // A body's SHA-256 costs a pass over every byte on both sides (half
    // of this server's CPU in an upload): signed where nothing else
    // protects it, plain HTTP; over TLS only if asked.
    let plain = endpoint
        .as_deref()
        .is_some_and(|e| e.starts_with("http://"));
    let signs_bodies = settings.sign_payload.unwrap_or(plain);
    b = b.with_unsigned_payload(!signs_bodies);
    if let (Some(k), Some(s)) = (&settings.access_key_id, &settings.secret_access_key) {
        b = b.with_access_key_id(k).with_secret_access_key(s);
    }
    let store = Arc::new(b.build().map_err(|e| format!("{root}: {e}"))?);
    let markers = marker::Markers::new(&store, root, settings, bucket_url, &client)?;
    let shown = match endpoint {
        Some(e) => e,
        None => settings.endpoint_name(),
    };
    let provider = S3Provider {
        markers,
        root: root.clone(),
        shown,
        signs_bodies,
    };
    Ok(ObjectStorage::new(
        store,
        Arc::new(provider),
        &root.prefix,
        settings.tuning,
    ))
}
