//! The TOML config file: serde structs (unknown keys are errors) and their
//! validation into [`ServerOptions`]. Every error names the key it is about;
//! all errors are reported at once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::options::{
    ActiveOptions, AnonymousOptions, DataProtection, LogOptions, PassiveAddress, PassiveOptions,
    ProxyOptions, ServerOptions, TlsMode, UserEntry,
};

/// Errors found in a config file, one message per problem.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct ConfigError(pub Vec<String>);

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub server: ServerSection,
    #[serde(default)]
    pub passive: PassiveSection,
    #[serde(default)]
    pub active: ActiveSection,
    #[serde(default)]
    pub anonymous: AnonymousSection,
    #[serde(default)]
    pub users: Vec<UserSection>,
    pub tls: Option<TlsSection>,
    #[serde(default)]
    pub limits: LimitsSection,
    #[serde(default)]
    pub log: LogSection,
    /// `[metrics]`; absent: no metrics listener.
    pub metrics: Option<MetricsSection>,
    #[serde(default)]
    pub proxy_protocol: ProxyProtocolSection,
    #[serde(default)]
    pub s3: S3Section,
    #[serde(default)]
    pub azure: AzureSection,
    #[serde(default)]
    pub auth: AuthSection,
    /// `[events]`: hooks.
    #[serde(default)]
    pub events: EventsSection,
    /// `[control]`: the control API's socket.
    #[serde(default)]
    pub control: ControlSection,
    /// `[cluster]`: state shared by a fleet's nodes through Redis.
    #[serde(default)]
    pub cluster: cluster::ClusterSection,
}

/// `[control]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlSection {
    /// Path of the control API's Unix socket; "" for none.
    pub socket: Option<PathBuf>,
    /// Group the socket is given (mode 0660): its members may use it.
    pub group: Option<String>,
    /// "ADDR:PORT" of the control API over TCP (TLS and tokens required).
    pub listen: Option<String>,
    /// PEM certificate chain of the TCP listener (default: `[tls] cert`).
    pub tls_cert: Option<PathBuf>,
    /// Its PEM private key (default: `[tls] key`).
    pub tls_key: Option<PathBuf>,
    /// The bearer tokens of the TCP listener: `NAME TOKEN [read-only]` per line.
    pub token_file: Option<PathBuf>,
}

/// `[metrics]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// "ADDR:PORT" of the HTTP listener serving /metrics, /health and /ready.
    pub listen: String,
}

/// `[proxy_protocol]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyProtocolSection {
    /// Networks of the load balancers whose connections must begin with a
    /// PROXY protocol header (v1 or v2); empty: the protocol is off.
    pub from: Vec<String>,
    /// Passive data connections from them begin with a header too, whose
    /// client address must be the control connection's client.
    pub data: bool,
    /// Passive data connections from the balancer that forwarded the
    /// control connection are taken without a header (weaker: see
    /// `config/proxy.rs`); default false.
    pub data_without_header: bool,
    /// How long a listed balancer has to send the whole header.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for ProxyProtocolSection {
    fn default() -> Self {
        ProxyProtocolSection {
            from: Vec::new(),
            data: false,
            data_without_header: false,
            timeout: Duration::from_secs(5),
        }
    }
}

/// `[log]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSection {
    /// Transfer log in the xferlog(5) format, appended to; absent: none.
    pub xferlog: Option<PathBuf>,
    /// The server's own log lines on stderr: "text" (default) or "json".
    pub format: Option<String>,
}

/// A rate in bytes per second: a number, or a string with a K, M or G
/// suffix (powers of 1024), e.g. "10M".
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Rate {
    Bytes(u64),
    Text(String),
}

impl Default for Rate {
    fn default() -> Self {
        Rate::Bytes(0)
    }
}

/// `[server]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSection {
    /// Control listeners, "ADDR:PORT" (IPv6 as "[::]:2121").
    pub listen: Vec<String>,
    /// Close sessions idle this long.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Close connections that have not logged in within this long.
    #[serde(with = "humantime_serde")]
    pub login_timeout: Duration,
    /// Text of the 220 greeting.
    pub banner: String,
    /// Delay before a failed login's 530.
    #[serde(with = "humantime_serde")]
    pub failed_login_delay: Duration,
    /// Unprivileged user (name or uid) to become after binding, when started as root.
    pub user: Option<String>,
    /// Group (name or gid); default: the user's primary group.
    pub group: Option<String>,
    /// Serve as root without dropping privileges.
    pub allow_root: bool,
    /// STOR to a hidden temporary name, renamed into place on success.
    pub atomic_uploads: bool,
    /// fsync each completed upload (file and directory) before 226.
    pub fsync_uploads: bool,
    /// Octal permission bits cleared on uploaded files and MKD directories, e.g. "027".
    pub umask: String,
    /// On SIGTERM/SIGINT, how long transfers in flight may take to finish.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// This node's name in events (default: the host name).
    pub node_name: Option<String>,
    /// File the server writes its process id to at start (`ctl user`
    /// sends it SIGHUP after a change); absent: none.
    pub pid_file: Option<PathBuf>,
}

impl Default for ServerSection {
    fn default() -> Self {
        let d = ServerOptions::with_anonymous_root(PathBuf::new());
        ServerSection {
            listen: d.listen.iter().map(ToString::to_string).collect(),
            idle_timeout: d.idle_timeout,
            login_timeout: d.login_timeout,
            banner: d.banner,
            failed_login_delay: d.failed_login_delay,
            user: None,
            group: None,
            allow_root: d.allow_root,
            atomic_uploads: d.atomic_uploads,
            fsync_uploads: d.fsync_uploads,
            umask: format!("{:03o}", d.umask),
            shutdown_grace: d.shutdown_grace,
            node_name: None,
            pid_file: None,
        }
    }
}

/// `[passive]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PassiveSection {
    /// Allow PASV/EPSV.
    pub enabled: bool,
    /// Data port range "LO-HI" (default "40000-40999").
    pub ports: Option<String>,
    /// One data port for every session instead of a range.
    pub single_port: Option<u16>,
    /// How long a PASV waits while another session from the same client
    /// address holds the single port.
    #[serde(with = "humantime_serde")]
    pub single_port_wait: Duration,
    /// IPv4 address or host name advertised by PASV (NAT); default: the
    /// control connection's local address.
    pub address: Option<String>,
    /// Resolve a host-name address again this often.
    #[serde(with = "humantime_serde")]
    pub address_refresh: Duration,
    /// Per client network: what PASV advertises to it.
    pub address_by_network: Vec<NetworkAddress>,
    /// Wait this long for the client to connect to the passive port.
    #[serde(with = "humantime_serde")]
    pub accept_timeout: Duration,
}

/// One `[[passive.address_by_network]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkAddress {
    /// Client network, e.g. "10.0.0.0/8".
    pub network: String,
    /// IPv4 address to advertise, or "local" for the control connection's
    /// local address.
    pub address: String,
}

impl Default for PassiveSection {
    fn default() -> Self {
        let d = ServerOptions::with_anonymous_root(PathBuf::new()).passive;
        PassiveSection {
            enabled: d.enabled,
            ports: None,
            single_port: None,
            single_port_wait: d.single_port_wait,
            address: None,
            address_refresh: d.address_refresh,
            address_by_network: Vec::new(),
            accept_timeout: d.accept_timeout,
        }
    }
}

/// `[active]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ActiveSection {
    /// Allow PORT/EPRT.
    pub enabled: bool,
    /// Local source port of active connections; 0 = any.
    pub source_port: u16,
    /// Give up connecting to the client after this long.
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
}

impl Default for ActiveSection {
    fn default() -> Self {
        let d = ServerOptions::with_anonymous_root(PathBuf::new()).active;
        ActiveSection {
            enabled: d.enabled,
            source_port: d.source_port,
            connect_timeout: d.connect_timeout,
        }
    }
}

/// `[anonymous]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnonymousSection {
    /// Allow USER anonymous / ftp.
    pub enabled: bool,
    /// The anonymous root: a directory, or "s3://BUCKET/PREFIX".
    pub root: Option<PathBuf>,
    /// Anonymous may upload new files (never overwrite, delete, rename or mkdir).
    pub upload: bool,
    /// Bytes the anonymous root may hold, e.g. "1G" (absent: unlimited).
    pub quota_bytes: Option<Rate>,
    /// Files the anonymous root may hold (absent: unlimited).
    pub quota_files: Option<u64>,
}

/// One `[[users]]` entry: the login, the password hash and the s3 profile,
/// and the policy keys that every back end's accounts share
/// ([`AccountSection`], with its unknown-key check).
#[derive(Debug)]
pub struct UserSection {
    /// Login name.
    pub name: String,
    /// A PHC or crypt(3) string; `portcullis hash-password` makes argon2id.
    pub password_hash: String,
    /// The profile an object-store root is reached with, chosen by the
    /// root's scheme (`[s3.profiles.NAME]` or `[azure.profiles.NAME]`);
    /// absent: `[s3]` or `[azure]`. `s3_profile` is its older name.
    pub storage_profile: Option<String>,
    /// optional | required: whether a certificate that belongs to the
    /// account stands in for the password.
    pub password_with_cert: Option<String>,
    /// Every login refused until cleared (`portcullis ctl user disable`).
    pub disabled: bool,
    /// root, permissions, TLS overrides, rates, networks.
    pub account: AccountSection,
}

/// `T` from a table the config takes apart by hand (a `[[users]]` entry,
/// `[auth.ldap]`), a bad value's key in the message (`max_sessions:
/// invalid value ...`), as the whole file's parser names it.
fn from_table<T: serde::de::DeserializeOwned, E: serde::de::Error>(
    table: toml::Table,
) -> Result<T, E> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let path = e.path().to_string();
        let message = e.inner().message().to_owned();
        match path.as_str() {
            "" | "." => E::custom(message),
            _ => E::custom(format!("{path}: {message}")),
        }
    })
}

/// Take `own`'s keys out of `table` into a `T` (a section's own keys, the
/// rest being an [`AccountSection`]'s).
fn split_table<T: serde::de::DeserializeOwned, E: serde::de::Error>(
    table: &mut toml::Table,
    own: &[&str],
) -> Result<T, E> {
    let mut mine = toml::Table::new();
    for key in own {
        if let Some(v) = table.remove(*key) {
            mine.insert((*key).to_owned(), v);
        }
    }
    from_table(mine)
}

impl<'de> Deserialize<'de> for UserSection {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let mut table = toml::Table::deserialize(d)?;
        let mut string = |key: &'static str| match table.remove(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(D::Error::custom(format!(
                "{key}: expected a string, found {}",
                other.type_str()
            ))),
        };
        let name = string("name")?.ok_or_else(|| D::Error::missing_field("name"))?;
        let password_hash =
            string("password_hash")?.ok_or_else(|| D::Error::missing_field("password_hash"))?;
        let storage_profile = match (string("storage_profile")?, string("s3_profile")?) {
            (Some(_), Some(_)) => {
                return Err(D::Error::custom(
                    "storage_profile and s3_profile (its older name) are one key: give one",
                ))
            }
            (a, b) => a.or(b),
        };
        let password_with_cert = string("password_with_cert")?;
        let disabled = match table.remove("disabled") {
            None => false,
            Some(toml::Value::Boolean(b)) => b,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "disabled: expected a boolean, found {}",
                    other.type_str()
                )))
            }
        };
        let account = from_table(table)?;
        Ok(UserSection {
            name,
            password_hash,
            storage_profile,
            password_with_cert,
            disabled,
            account,
        })
    }
}

/// Read and validate a config file. Returns the options and warnings.
pub fn load(path: &Path, checks: &dyn Checks) -> Result<(ServerOptions, Vec<String>), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(vec![format!("{}: {e}", path.display())]))?;
    let (mut options, warnings) = parse(&text, checks)?;
    options.config_file = Some(path.to_owned());
    Ok((options, warnings))
}

/// Parse and validate config text.
pub fn parse(text: &str, checks: &dyn Checks) -> Result<(ServerOptions, Vec<String>), ConfigError> {
    let file: FileConfig =
        toml::from_str(text).map_err(|_| ConfigError(explain::problems::<FileConfig>(text)))?;
    validate(file, checks)
}

pub mod auth;
pub mod cluster;
pub mod edit;
mod events;
pub use events::EventsSection;
mod checks;
mod explain;
pub use checks::{Checks, RulesOnly};
mod ldap;
pub mod pam;
mod proxy;
mod sections;
pub use sections::{LimitsSection, TlsSection};
mod azure;
mod object;
mod s3;
mod validate;
mod values;

pub use auth::{AccountSection, AuthSection};
pub use azure::AzureSection;
pub use s3::S3Section;

use validate::validate;
pub use values::parse_port_range;

#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;
