//! What the layers above storage/ ask of an `az://` root at start-up:
//! the store of a root (its start-up check and summary line are the
//! provider's, [`super::AzureProvider`]), and whether an account's
//! `storage_profile` is configured.

use super::{AzureOptions, AzureRoot, SECTION};
use crate::storage::object::ObjectStorage;

/// An account back end's `az://` root: its profile (`storage_profile`,
/// or `[azure]` itself) must be configured.
pub fn check_profile(root: &AzureRoot, azure: &AzureOptions) -> std::result::Result<(), String> {
    azure
        .for_account(SECTION, root.profile.as_deref())
        .map(|_| ())
}

/// A root with its profile's settings (the client only: nothing is sent
/// until the first request).
pub(crate) fn open(root: &AzureRoot, azure: &AzureOptions) -> std::io::Result<ObjectStorage> {
    let settings = azure.opened(SECTION, root.profile.as_deref(), root)?;
    super::build::new(root, settings)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
}
