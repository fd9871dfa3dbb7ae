//! Access-control values with no dependencies of their own, shared by the
//! configuration, the accounts and the limits: what an account may do
//! ([`Permissions`]) and which networks may connect or log in
//! ([`NetList`]), and the one decision of which permissions an operation
//! on a name needs ([`decide`], in `access/change.rs`). Keeping them here keeps `options` a leaf below `auth` and
//! `limits`, with no cycle between them.

use std::net::IpAddr;

use ipnet::IpNet;

mod change;
pub use change::{decide, Change, Target};

/// What a logged-in user may do. Reading (RETR, LIST, SIZE, ...) and moving
/// around are always checked against `read`; what an operation that
/// creates, replaces, appends to or removes a name needs is [`decide`]'s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Permissions {
    /// RETR, LIST, NLST, MLSD, MLST, SIZE, MDTM, CWD.
    pub read: bool,
    /// STOR, STOU, APPE creating new files.
    pub write: bool,
    /// STOR, APPE and REST+STOR changing a file that exists, MFMT and
    /// SITE CHMOD (with `write`); RNTO onto a name that exists (with
    /// `rename`).
    pub overwrite: bool,
    /// DELE, RMD.
    pub delete: bool,
    /// RNFR/RNTO (onto a name that exists only with `overwrite`).
    pub rename: bool,
    /// MKD.
    pub mkdir: bool,
}

impl Permissions {
    /// Everything (the tests' accounts; the options build permissions
    /// field by field).
    #[cfg(test)]
    pub const ALL: Permissions = Permissions {
        read: true,
        write: true,
        overwrite: true,
        delete: true,
        rename: true,
        mkdir: true,
    };
    /// Read only.
    pub const READ_ONLY: Permissions = Permissions {
        read: true,
        write: false,
        overwrite: false,
        delete: false,
        rename: false,
        mkdir: false,
    };

    /// Parse one permission name as written in the config file.
    pub fn grant(&mut self, name: &str) -> Result<(), String> {
        match name {
            "read" => self.read = true,
            "write" => self.write = true,
            "overwrite" => self.overwrite = true,
            "delete" => self.delete = true,
            "rename" => self.rename = true,
            "mkdir" => self.mkdir = true,
            other => {
                return Err(format!(
                    "unknown permission {other:?} (expected read, write, overwrite, delete, rename or mkdir)"
                ))
            }
        }
        Ok(())
    }
}

/// Allow/deny lists of networks: deny wins; a non-empty allow list admits
/// only its networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetList {
    pub allow: Vec<IpNet>,
    pub deny: Vec<IpNet>,
}

impl NetList {
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        if self.deny.iter().any(|n| n.contains(&ip)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|n| n.contains(&ip))
    }
}
