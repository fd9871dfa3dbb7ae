//! What the layers above storage/ ask of an S3 root, in S3's terms: the
//! client of a root, the start-up check and summary line of a bucket, and
//! whether an account's `s3_profile` is configured.

use std::sync::Arc;

use async_trait::async_trait;
use portcullis_proto::path::VirtualPath;

use super::{S3Options, S3Root, S3Storage};
use crate::storage::stores::OpenedStore;
use crate::storage::{Result, Storage};

/// An account back end named a profile for a local root.
pub const PROFILE_NOT_LOCAL: &str = "account.s3_profile: only for an s3:// root";

/// An account back end's `s3://` root: its profile (`s3_profile`, or
/// `[s3]` itself) must be configured.
pub fn check_profile(root: &S3Root, s3: &S3Options) -> std::result::Result<(), String> {
    match s3.for_root(root) {
        Some(_) => Ok(()),
        None => Err(format!(
            "account.s3_profile: no [s3.profiles.{}] section",
            root.profile.as_deref().unwrap_or("")
        )),
    }
}

impl S3Storage {
    /// A root with its profile's settings (the client only: nothing is
    /// sent until the first request).
    pub(crate) fn open(root: &S3Root, s3: &S3Options) -> std::io::Result<S3Storage> {
        let settings = s3.for_root(root).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("{root}: no such s3 profile"),
            )
        })?;
        S3Storage::new(root, settings)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    }
}

#[async_trait]
impl OpenedStore for S3Storage {
    /// Is the bucket there, and may these credentials list the root? One
    /// listing request of one key, bounded by `request_timeout`.
    async fn check(&self) -> Result<()> {
        self.peek(&VirtualPath::root(), 1).await.map(drop)
    }

    /// The root as configured, and the store it is on.
    fn describe(&self) -> String {
        format!("{} at {}", self.root, self.shown)
    }

    /// How request bodies go.
    fn summary(&self) -> &'static str {
        if self.signs_bodies {
            "request bodies signed"
        } else {
            "request bodies unsigned (sign_payload = true signs them)"
        }
    }

    fn missing(&self) -> String {
        format!(
            "no such bucket (create it first, e.g. `aws s3 mb s3://{}`)",
            self.root.bucket
        )
    }

    fn storage(self: Arc<Self>) -> Arc<dyn Storage> {
        self
    }
}
