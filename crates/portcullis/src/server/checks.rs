//! The config's checks that need the file system or TLS
//! ([`crate::config::Checks`]), each made by the layer that owns it: a CA
//! bundle and a password hash's scheme by auth, a certificate by tls,
//! `UID_MIN` by the PAM back end's parser of /etc/login.defs. The command
//! line and the reload pass this one to `config::load`.

use std::path::Path;

use crate::auth::Scheme;

/// The checks against this machine's files.
pub struct SystemChecks;

impl crate::config::Checks for SystemChecks {
    fn ca_roots(&self, ca_file: Option<&Path>) -> Result<(), String> {
        crate::auth::http::load_roots(ca_file).map(drop)
    }

    fn certificate(&self, cert: &Path, key: &Path) -> Result<(), String> {
        crate::tls::CertResolver::load(cert, key)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn client_auth(&self, options: &crate::options::ClientAuthOptions) -> Result<(), String> {
        crate::tls::client_verifier(options)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn md5_crypt(&self, hash: &str) -> Result<bool, String> {
        Scheme::of(hash).map(|s| s == Scheme::Md5Crypt)
    }

    fn uid_min(&self) -> Option<u32> {
        // A missing file is no UID_MIN: the default applies.
        let defs = std::fs::read_to_string("/etc/login.defs").unwrap_or_default();
        crate::auth::pam::files::uid_min(&defs)
    }
}
