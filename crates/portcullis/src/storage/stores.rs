//! Object stores as a whole, for the layers above storage/: how their
//! roots reach a store ([`StoreOptions`], one part per provider), the check
//! of a root that an account back end answered, the start-up check of
//! every store and its summary line, and what a reload cannot change.
//! Nothing outside storage/ and the config names a provider; what is
//! provider-specific is in the provider's module ([`super::s3`],
//! [`super::azure`]), behind
//! the generic back end's [`super::object::Provider`]. A new provider is
//! its module, its part of [`StoreOptions`] and its arm in `open`.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use super::{
    AzureOptions, AzureSettings, Result, RootSpec, S3Options, S3Settings, Storage, StorageError,
};

/// An account back end named a profile for a local root.
pub const PROFILE_NOT_LOCAL: &str = "account.storage_profile: only for an s3:// or az:// root";

/// How object-store roots reach their store, validated (the config's
/// provider sections).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreOptions {
    pub s3: S3Options,
    pub azure: AzureOptions,
}

impl StoreOptions {
    /// From the environment alone (a root given on the command line).
    pub fn from_env() -> StoreOptions {
        StoreOptions {
            s3: S3Options {
                default: S3Settings::from_env(),
                ..Default::default()
            },
            azure: AzureOptions {
                default: AzureSettings::from_env(),
                ..Default::default()
            },
        }
    }

    /// The configuration sections that differ in `new`: a reload keeps
    /// the stores made at start, and says which it kept.
    pub fn changed(&self, new: &StoreOptions) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.s3 != new.s3 {
            out.push("s3");
        }
        if self.azure != new.azure {
            out.push("azure");
        }
        out
    }

    /// A root an account back end answered (`root` and the profile it
    /// named), every problem as one message: an absolute path, or an
    /// object-store URL whose profile is configured.
    pub fn account_root(
        &self,
        root: &Path,
        profile: Option<String>,
    ) -> std::result::Result<RootSpec, String> {
        let had_profile = profile.is_some();
        match RootSpec::parse(root, profile).map_err(|e| format!("account.root: {e}"))? {
            RootSpec::Local(_) if had_profile => Err(PROFILE_NOT_LOCAL.into()),
            RootSpec::Local(p) if !p.is_absolute() => {
                Err(format!("account.root: {} is not absolute", p.display()))
            }
            RootSpec::S3(r) => super::s3::check_profile(&r, &self.s3).map(|()| RootSpec::S3(r)),
            RootSpec::Azure(r) => {
                super::azure::check_profile(&r, &self.azure).map(|()| RootSpec::Azure(r))
            }
            spec => Ok(spec),
        }
    }

    /// An object-store root's store (the client only: nothing is sent
    /// until the first request).
    pub(super) fn open(&self, spec: &RootSpec) -> std::io::Result<Arc<dyn OpenedStore>> {
        match spec {
            RootSpec::Local(p) => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{}: not an object-store root", p.display()),
            )),
            RootSpec::S3(r) => Ok(Arc::new(super::s3::open(r, &self.s3)?)),
            RootSpec::Azure(r) => Ok(Arc::new(super::azure::open(r, &self.azure)?)),
        }
    }
}

impl RootSpec {
    /// Does `s` name an object-store root (well-formed or not)?
    pub fn is_object_store(s: &Path) -> bool {
        !matches!(RootSpec::parse(s, None), Ok(RootSpec::Local(_)))
    }
}

/// What the start-up check asks of an object store.
#[async_trait]
pub(super) trait OpenedStore: Send + Sync {
    /// One request that shows the store is there and the root may be
    /// listed, bounded by the store's request timeout.
    async fn check(&self) -> Result<()>;
    /// The root and the store it is on, for messages.
    fn describe(&self) -> String;
    /// The rest of the summary line of a reachable store.
    fn summary(&self) -> &'static str;
    /// Why a store that does not exist stops the start, and what to do.
    fn missing(&self) -> String;
    /// The store as the sessions use it.
    fn storage(self: Arc<Self>) -> Arc<dyn Storage>;
}

/// What the start-up check found: the roots opened (kept for the
/// sessions), one summary line per root, and the problems that stop the
/// start.
#[derive(Default)]
pub struct Checked {
    pub opened: Vec<(RootSpec, Arc<dyn Storage>)>,
    pub lines: Vec<String>,
    pub fatal: Vec<String>,
}

/// The start-up check of the object-store roots among `roots`: each store
/// is asked once (all at once), and the summary says what came back. A
/// store that does not exist or refuses the credentials stops the start;
/// one that does not answer is a warning (the store may be on its way
/// up), and sessions on it get 451 until it answers.
pub async fn check<'a>(
    roots: impl IntoIterator<Item = &'a RootSpec>,
    options: &StoreOptions,
) -> Checked {
    let mut c = Checked::default();
    let mut specs: Vec<&RootSpec> = Vec::new();
    for r in roots.into_iter().filter(|r| r.local().is_none()) {
        if !specs.contains(&r) {
            specs.push(r);
        }
    }
    let mut stores = Vec::new();
    for spec in specs {
        match options.open(spec) {
            Ok(s) => stores.push((spec.clone(), s)),
            Err(e) => c.fatal.push(e.to_string()),
        }
    }
    let checks = stores.iter().map(|(_, s)| s.check());
    let results = futures_util::future::join_all(checks).await;
    for ((spec, store), result) in stores.into_iter().zip(results) {
        let what = store.describe();
        match result {
            Ok(()) => c
                .lines
                .push(format!("storage: {what}: {}", store.summary())),
            Err(StorageError::Unavailable(full)) => {
                // The first line is enough here; the log has it all.
                let e = full.lines().next().unwrap_or_default();
                tracing::warn!(error = %full, "{what}: not reachable");
                c.lines.push(format!(
                    "storage: {what}: NOT reachable ({e}); serving anyway, its users get 451 until it answers"
                ));
            }
            Err(StorageError::NotFound) => c.fatal.push(format!("{what}: {}", store.missing())),
            Err(StorageError::PermissionDenied) => c.fatal.push(format!(
                "{what}: the store refused the credentials or the listing of the root"
            )),
            Err(e) => c.fatal.push(format!("{what}: {e}")),
        }
        c.opened.push((spec, store.storage()));
    }
    c
}

#[cfg(test)]
mod tests;
