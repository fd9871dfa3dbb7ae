//! The checks of a config that need the file system or TLS. Config reads
//! and checks text; whether a CA bundle or a certificate loads, which
//! scheme a password hash has and the system's first user id are known
//! to the layers that own them (auth, tls), which config does not import.
//! The caller of [`super::load`] passes them in as one [`Checks`]; the
//! server's is `server::SystemChecks`. Validation asks them at the point
//! where it asked before, so the problems keep their order.

use std::path::Path;

/// What validation asks of the layers above it.
pub trait Checks {
    /// Whether the PEM bundle `ca_file` (`None`: the system's) loads as
    /// trust roots; the problem as shown after the key.
    fn ca_roots(&self, ca_file: Option<&Path>) -> Result<(), String>;
    /// Whether the certificate chain and its key load; the problem as shown.
    fn certificate(&self, cert: &Path, key: &Path) -> Result<(), String>;
    /// Whether a password hash has a scheme that logins can check:
    /// `Ok(true)` for MD5 crypt, which is fast to guess.
    fn md5_crypt(&self, hash: &str) -> Result<bool, String>;
    /// Whether `[tls.client_auth]`'s CA bundle and revocation lists load;
    /// the problem as shown.
    fn client_auth(&self, _options: &crate::options::ClientAuthOptions) -> Result<(), String> {
        Ok(())
    }
    /// `UID_MIN` of /etc/login.defs, if it is set.
    fn uid_min(&self) -> Option<u32>;
    /// Whether the config is for this machine, so that its directories
    /// (roots, the xferlog's) and `server.user` are looked up here: true
    /// but for [`RulesOnly`].
    fn this_host(&self) -> bool {
        true
    }
}

/// For a config read only for its addresses and ports (`portcullis
/// firewall`, whose rules may be for another host): nothing on this
/// machine is asked, neither files, certificates nor users; the text's
/// own checks still apply.
pub struct RulesOnly;

impl Checks for RulesOnly {
    fn ca_roots(&self, _: Option<&Path>) -> Result<(), String> {
        Ok(())
    }
    fn certificate(&self, _: &Path, _: &Path) -> Result<(), String> {
        Ok(())
    }
    fn md5_crypt(&self, _: &str) -> Result<bool, String> {
        Ok(false)
    }
    fn uid_min(&self) -> Option<u32> {
        None
    }
    fn this_host(&self) -> bool {
        false
    }
}
