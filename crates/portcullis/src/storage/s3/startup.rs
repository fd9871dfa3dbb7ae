//! What the layers above storage/ ask of an S3 root, in S3's terms: the
//! store of a root (its start-up check and summary line are the
//! provider's, [`super::S3Provider`]), and whether an account's
//! `storage_profile` is configured.

use super::{S3Options, S3Root, SECTION};
use crate::storage::object::ObjectStorage;

/// An account back end's `s3://` root: its profile (`storage_profile`, or
/// `[s3]` itself) must be configured.
pub fn check_profile(root: &S3Root, s3: &S3Options) -> std::result::Result<(), String> {
    s3.for_account(SECTION, root.profile.as_deref()).map(|_| ())
}

/// A root with its profile's settings (the client only: nothing is sent
/// until the first request).
pub(crate) fn open(root: &S3Root, s3: &S3Options) -> std::io::Result<ObjectStorage> {
    let settings = s3.opened(SECTION, root.profile.as_deref(), root)?;
    super::build::new(root, settings)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}
