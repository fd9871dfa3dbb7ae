//! The server's validated, typed options. The config file and the command line
//! (`config`, `cli`) both end up here; the server never sees raw config.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::Permissions;

/// Everything the server needs to run.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Control-connection listeners (`server.listen`).
    pub listen: Vec<SocketAddr>,
    /// Close a session idle for this long (`server.idle_timeout`), with 421.
    pub idle_timeout: Duration,
    /// Close a connection that has not logged in within this long (`server.login_timeout`).
    pub login_timeout: Duration,
    /// Text of the 220 greeting (`server.banner`).
    pub banner: String,
    /// Delay before answering a failed login with 530 (`server.failed_login_delay`).
    pub failed_login_delay: Duration,
    pub passive: PassiveOptions,
    pub active: ActiveOptions,
    /// `None` when anonymous login is disabled.
    pub anonymous: Option<AnonymousOptions>,
    pub users: Vec<UserEntry>,
}

/// `[passive]`
#[derive(Debug, Clone)]
pub struct PassiveOptions {
    pub enabled: bool,
    /// Data ports to listen on (`passive.ports`, "LO-HI").
    pub ports: RangeInclusive<u16>,
    /// Address advertised in PASV replies (`passive.address`); `None` means the
    /// control connection's local address.
    pub address: Option<IpAddr>,
    /// How long to wait for the client to connect (`passive.accept_timeout`), then 425.
    pub accept_timeout: Duration,
}

/// `[active]`
#[derive(Debug, Clone)]
pub struct ActiveOptions {
    pub enabled: bool,
    /// Local port to connect from (`active.source_port`); 0 = any.
    pub source_port: u16,
    /// How long to wait for the client's data port (`active.connect_timeout`), then 425.
    pub connect_timeout: Duration,
}

/// `[anonymous]`
#[derive(Debug, Clone)]
pub struct AnonymousOptions {
    pub root: PathBuf,
    /// Anonymous may STOR new files (never overwrite, delete, rename or mkdir).
    pub upload: bool,
}

/// One `[[users]]` entry.
#[derive(Debug, Clone)]
pub struct UserEntry {
    pub name: String,
    /// A PHC string (`$argon2id$...`).
    pub password_hash: String,
    pub root: PathBuf,
    pub permissions: Permissions,
}

/// The default passive range when none is configured.
pub const DEFAULT_PASSIVE_PORTS: RangeInclusive<u16> = 40000..=40999;
/// The default control port (unprivileged).
pub const DEFAULT_PORT: u16 = 2121;

impl ServerOptions {
    /// The built-in defaults used by `portcullis serve --root DIR` without a
    /// config file: 0.0.0.0:2121 (and [::]:2121 is not added, to stay simple
    /// on hosts without IPv6), anonymous read-only over `root`.
    pub fn with_anonymous_root(root: PathBuf) -> Self {
        ServerOptions {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], DEFAULT_PORT))],
            idle_timeout: Duration::from_secs(300),
            login_timeout: Duration::from_secs(60),
            banner: "portcullis FTP server ready".to_owned(),
            failed_login_delay: Duration::from_millis(500),
            passive: PassiveOptions {
                enabled: true,
                ports: DEFAULT_PASSIVE_PORTS,
                address: None,
                accept_timeout: Duration::from_secs(30),
            },
            active: ActiveOptions {
                enabled: true,
                source_port: 0,
                connect_timeout: Duration::from_secs(10),
            },
            anonymous: Some(AnonymousOptions {
                root,
                upload: false,
            }),
            users: Vec::new(),
        }
    }
}
