//! The server's validated, typed options. The config file and the command line
//! (`config`, `cli`) both end up here; the server never sees raw config.

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

mod account;
pub mod events;
pub use account::{
    AccountPolicy, CertMatch, CertUse, ClientCertRule, HookAccount, ParseAccount, QuotaLimits,
};
pub use events::{
    CommandHook, EventKind, EventsOptions, HookAction, HookFilter, HookOptions, HttpHook,
};
pub mod hook_url;
pub use hook_url::HookUrl;
mod limits;
pub use limits::LimitsOptions;
mod pam;
pub use pam::{PamOptions, MAX_WORKERS};
mod tls;
pub use tls::{
    AcmeChallenge, AcmeOptions, ClientAuthMode, ClientAuthOptions, DataProtection, TlsMode,
    TlsOptions, UserTls, LETS_ENCRYPT,
};

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
    /// Where accounts come from besides `[[users]]` (`[auth]`).
    pub auth: AuthOptions,
    /// `None` when FTPS is off (no `[tls]` section, or `tls.mode = "off"`).
    pub tls: Option<TlsOptions>,
    pub limits: LimitsOptions,
    /// Who to become after binding when started as root (`server.user`,
    /// `server.group`).
    pub run_as: Option<crate::privdrop::Identity>,
    /// Serve as root without dropping privileges (`server.allow_root`).
    pub allow_root: bool,
    /// STOR to a temporary name, renamed on success (`server.atomic_uploads`).
    pub atomic_uploads: bool,
    /// fsync every completed upload before 226 (`server.fsync_uploads`).
    pub fsync_uploads: bool,
    /// The process umask (`server.umask`, at most 0o777): clears these
    /// permission bits of the files uploads create and the directories
    /// MKD creates.
    pub umask: u32,
    pub log: LogOptions,
    /// On SIGTERM or SIGINT, how long transfers in flight may run on
    /// before they are cut (`server.shutdown_grace`).
    pub shutdown_grace: Duration,
    /// The HTTP listener for /metrics, /health and /ready
    /// (`metrics.listen`); `None`: none.
    pub metrics: Option<SocketAddr>,
    /// The file these options were read from (what SIGHUP reads again);
    /// `None` without a config file.
    pub config_file: Option<PathBuf>,
    /// `None` when no `[proxy_protocol]` networks are listed.
    pub proxy: Option<ProxyOptions>,
    /// How object-store roots reach their store (the config's provider
    /// sections).
    pub stores: crate::storage::StoreOptions,
    /// This node's name in events and hooks (`server.node_name`; default:
    /// the host name).
    pub node_name: String,
    /// `server.pid_file`: written at start, removed at exit.
    pub pid_file: Option<PathBuf>,
    /// `[events]`: the hooks.
    pub events: EventsOptions,
    /// `[control]`: the control API's socket.
    pub control: ControlOptions,
    /// `[cluster]`: the Redis that the fleet shares state through; `None`:
    /// every node keeps its own.
    pub cluster: Option<ClusterOptions>,
}

/// `[cluster]`, validated. Its Debug form hides the URL's password.
#[derive(Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    /// `cluster.redis`, as written (a password in it is never logged).
    pub url: String,
    pub password_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub key_prefix: String,
    /// The most one Redis call may take (`cluster.timeout`).
    pub timeout: Duration,
}

impl std::fmt::Debug for ClusterOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterOptions")
            .field("url", &redact_url(&self.url))
            .field("password_file", &self.password_file)
            .field("ca_file", &self.ca_file)
            .field("key_prefix", &self.key_prefix)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Where the package's unit gives the control socket a directory.
pub const DEFAULT_CONTROL_SOCKET: &str = "/run/portcullis/control.sock";

/// `[control]`, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlOptions {
    /// The socket's path (`control.socket`); `None`: no socket.
    pub socket: Option<PathBuf>,
    /// The path is the default one, not asked for: where it cannot be
    /// made (no such directory, not writable, in use), the server starts
    /// without it and says so; an asked-for path that cannot be made is
    /// an error.
    pub default_path: bool,
    /// The group the socket is given (`control.group`): name and id.
    pub group: Option<(String, u32)>,
    /// The TCP listener (`control.listen`), with its certificate and key
    /// (`control.tls_cert`/`tls_key`, else the server's) and its tokens
    /// (`control.token_file`).
    pub tcp: Option<ControlTcp>,
}

/// `control.listen` and what it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlTcp {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub token_file: PathBuf,
}

impl Default for ControlOptions {
    fn default() -> Self {
        ControlOptions {
            socket: Some(PathBuf::from(DEFAULT_CONTROL_SOCKET)),
            default_path: true,
            group: None,
            tcp: None,
        }
    }
}

/// `[proxy_protocol]`: load balancers whose connections begin with a PROXY
/// protocol header naming the client they forward.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyOptions {
    /// The balancers' networks (`proxy_protocol.from`).
    pub from: Vec<ipnet::IpNet>,
    /// Passive data connections from them begin with a header too
    /// (`proxy_protocol.data`).
    pub data: bool,
    /// Passive data connections from the balancer that forwarded the
    /// control connection are taken without a header, as the client's
    /// (`proxy_protocol.data_without_header`; weaker, [`crate::data::guard`]).
    pub data_without_header: bool,
    /// How long a listed balancer has to send the whole header
    /// (`proxy_protocol.timeout`).
    pub timeout: Duration,
}

impl ProxyOptions {
    /// Connections from `ip` must begin with a header.
    pub fn trusts(&self, ip: std::net::IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.from.iter().any(|n| n.contains(&ip))
    }
}

/// `[log]`: the server's own log and the files it writes besides it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// The transfer log, xferlog(5) format (`log.xferlog`); `None`: none.
    pub xferlog: Option<PathBuf>,
    /// How the server's own lines on stderr are written (`log.format`).
    pub format: LogFormat,
}

/// `log.format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (tracing's default format).
    #[default]
    Text,
    /// One JSON object per line, with the session's span fields.
    Json,
}

/// `[passive]`
#[derive(Debug, Clone)]
pub struct PassiveOptions {
    pub enabled: bool,
    /// Data ports to listen on (`passive.ports`, "LO-HI").
    pub ports: RangeInclusive<u16>,
    /// Address advertised in PASV replies (`passive.address`); `None` means the
    /// control connection's local address.
    pub address: Option<PassiveAddress>,
    /// How often a host-name `address` is resolved again (`passive.address_refresh`).
    pub address_refresh: Duration,
    /// Per client network, what PASV advertises instead (`[[passive.address_by_network]]`);
    /// `None` = the control connection's local address. First match wins.
    pub by_network: Vec<(ipnet::IpNet, Option<std::net::Ipv4Addr>)>,
    /// How long to wait for the client to connect (`passive.accept_timeout`), then 425.
    pub accept_timeout: Duration,
    /// One data port for every session (`passive.single_port`); `ports` is
    /// then that port alone.
    pub single_port: Option<u16>,
    /// How long a PASV waits while another session from the same client
    /// address holds the single port (`passive.single_port_wait`), then 425.
    pub single_port_wait: Duration,
}

/// What `passive.address` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassiveAddress {
    Ip(std::net::Ipv4Addr),
    /// A host name (dynamic DNS), resolved at start and every `address_refresh`.
    Host(String),
}

impl std::fmt::Display for PassiveAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PassiveAddress::Ip(a) => a.fmt(f),
            PassiveAddress::Host(h) => h.fmt(f),
        }
    }
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
    /// A directory or an object-store root.
    pub root: crate::storage::RootSpec,
    /// Anonymous may STOR new files (never overwrite, delete, rename or mkdir).
    pub upload: bool,
    /// `anonymous.quota_bytes`, `anonymous.quota_files`.
    pub quota: QuotaLimits,
}

/// One `[[users]]` entry.
#[derive(Debug, Clone)]
pub struct UserEntry {
    pub name: String,
    /// A PHC string (`$argon2id$...`).
    pub password_hash: String,
    /// A directory or an object-store root (with the user's profile).
    pub root: crate::storage::RootSpec,
    /// Permissions, TLS overrides, rates, networks: what every back end's
    /// accounts carry.
    pub policy: AccountPolicy,
    /// A certificate that belongs to the account stands in for the password
    /// (`password_with_cert = "optional"`; only `[[users]]` accounts).
    pub password_optional_with_cert: bool,
    /// `users[].disabled`: every login refused (530, counted as a failed
    /// login) until it is cleared.
    pub disabled: bool,
}

/// `[auth]`: the account back ends, asked in `order`.
#[derive(Debug, Clone)]
pub struct AuthOptions {
    /// The back ends in the order they are asked (`auth.order`); the first
    /// that knows a user decides.
    pub order: Vec<BackendKind>,
    /// `[auth.http]`, present when `order` names it.
    pub http: Option<HttpOptions>,
    /// `[auth.ldap]`, present when `order` names it.
    pub ldap: Option<LdapOptions>,
    /// `[auth.pam]`, present when `order` names it.
    pub pam: Option<PamOptions>,
    /// `auth.cache_ttl`: zero for no cache.
    pub cache_ttl: Duration,
    /// `auth.allowed_roots`: where the roots of `http`, `ldap` and `pam`
    /// may be (never `/` or a path with `..`).
    pub allowed_roots: crate::storage::AllowedRoots,
}

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            order: vec![BackendKind::Config],
            http: None,
            ldap: None,
            pam: None,
            cache_ttl: Duration::ZERO,
            allowed_roots: crate::storage::AllowedRoots::default(),
        }
    }
}

/// One name of `auth.order`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// `[[users]]` in the config file.
    Config,
    /// `[auth.http]`: a hook that answers for each login.
    Http,
    /// `[auth.ldap]`: a directory (OpenLDAP, Active Directory).
    Ldap,
    /// `[auth.pam]`: the system's accounts (built with the `pam` feature).
    Pam,
}

/// How `[auth.ldap]` finds a user's entry.
#[derive(Clone)]
pub enum LdapLookup {
    /// Bind with the DN made from a template (`auth.ldap.bind_dn`,
    /// `{user}` escaped as RFC 4514 says): it cannot tell an unknown user
    /// from a wrong password, so it decides for every name.
    Direct { bind_dn: String },
    /// Search for the entry (`auth.ldap.search_base`, `search_filter` with
    /// `{user}` escaped as RFC 4515 says), bound as the service account
    /// (`service_dn`, `service_password`; none: anonymously), then bind
    /// as the entry found.
    Search {
        base: String,
        filter: String,
        service: Option<(String, String)>,
    },
}

/// `[auth.ldap]`
#[derive(Debug, Clone)]
pub struct LdapOptions {
    /// `ldap://` or `ldaps://` (`auth.ldap.url`).
    pub url: String,
    /// StartTLS on an `ldap://` URL (`auth.ldap.starttls`).
    pub starttls: bool,
    /// PEM certificates trusted for TLS (`auth.ldap.ca_file`); `None`:
    /// the system's bundle.
    pub ca_file: Option<PathBuf>,
    /// The whole login's exchanges with the directory (`auth.ldap.timeout`).
    pub timeout: Duration,
    /// Service connections kept for searches (`auth.ldap.pool_size`).
    pub pool_size: usize,
    pub lookup: LdapLookup,
    /// Entries matching this filter are refused (`auth.ldap.disabled_filter`).
    pub disabled_filter: Option<String>,
    /// Groups found by a search (`group_search_base`, `group_filter`).
    pub group_search: Option<(String, String)>,
    /// The entry's attribute holding the root (`auth.ldap.root_attribute`).
    pub root_attribute: Option<String>,
    /// The account's root; `{user}` is the login name (`auth.ldap.root`).
    pub root: String,
    /// Every LDAP account's permissions and policy keys (`auth.ldap.permissions`,
    /// rates, networks, TLS overrides, `max_sessions`).
    pub policy: AccountPolicy,
    /// Group DN (compared case-insensitively) -> permissions added for its
    /// members, from the entry's `memberOf` and the group search
    /// (`[auth.ldap.groups]`).
    pub groups: Vec<(String, Vec<String>)>,
}

/// `[auth.http]`: POST each login to a URL.
#[derive(Clone)]
pub struct HttpOptions {
    /// `http://` or `https://` URL (`auth.http.url`), its credentials
    /// apart and never shown.
    pub url: HookUrl,
    /// The whole exchange (connect, TLS, request, answer) must finish in
    /// this long (`auth.http.timeout`).
    pub timeout: Duration,
    /// Sent as `Authorization: Bearer ...` (`auth.http.bearer_token`).
    pub bearer_token: Option<String>,
    /// PEM certificates trusted for an `https://` URL (`auth.http.ca_file`);
    /// `None`: the system's bundle.
    pub ca_file: Option<PathBuf>,
    /// Reads the hook's answer: the same keys as a `[[users]]` entry.
    pub parse_account: ParseAccount,
}

// The secrets in the options (the hook's token, the LDAP service
// account's password) never show in a Debug print; the URL hides its own
// credentials.
const HIDDEN: &str = "***";

impl std::fmt::Debug for HttpOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpOptions")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .field("bearer_token", &self.bearer_token.as_ref().map(|_| HIDDEN))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl std::fmt::Debug for LdapLookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LdapLookup::Direct { bind_dn } => {
                f.debug_struct("Direct").field("bind_dn", bind_dn).finish()
            }
            LdapLookup::Search {
                base,
                filter,
                service,
            } => f
                .debug_struct("Search")
                .field("base", base)
                .field("filter", filter)
                .field("service", &service.as_ref().map(|(dn, _)| (dn, HIDDEN)))
                .finish(),
        }
    }
}

/// The default passive range when none is configured.
pub const DEFAULT_PASSIVE_PORTS: RangeInclusive<u16> = 40000..=40999;
/// The default `server.umask`, as vsftpd's `local_umask` on Debian: new
/// files 0644, new directories 0755.
pub const DEFAULT_UMASK: u32 = 0o022;
/// The default control port (unprivileged).
pub const DEFAULT_PORT: u16 = 2121;

impl ServerOptions {
    /// Must this login name use TLS on the control connection? (Resolved
    /// once per account by the authenticator, into its [`crate::auth::Policy`].)
    pub fn control_tls_required(&self, name: &str, anonymous: bool) -> bool {
        let own = self
            .users
            .iter()
            .find(|u| u.name == name)
            .map(|u| u.policy.tls)
            .unwrap_or_default();
        self.tls_required_with(own, anonymous).0
    }

    /// Whether the control connection and the data connections of an
    /// account with these overrides must be with TLS.
    pub fn tls_required_with(&self, own: UserTls, anonymous: bool) -> (bool, bool) {
        let Some(t) = &self.tls else {
            return (false, false);
        };
        if anonymous {
            return (
                t.mode == TlsMode::Required && !t.anonymous_exempt,
                t.data_protection == DataProtection::Required && !t.anonymous_exempt,
            );
        }
        (
            own.mode.unwrap_or(t.mode) == TlsMode::Required,
            own.data_protection.unwrap_or(t.data_protection) == DataProtection::Required,
        )
    }

    /// Must this user's data connections be protected (PROT P)?
    pub fn data_tls_required(&self, name: &str, anonymous: bool) -> bool {
        let Some(t) = &self.tls else { return false };
        if anonymous {
            return t.data_protection == DataProtection::Required && !t.anonymous_exempt;
        }
        let own = self
            .users
            .iter()
            .find(|u| u.name == name)
            .and_then(|u| u.policy.tls.data_protection);
        own.unwrap_or(t.data_protection) == DataProtection::Required
    }

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
                address_refresh: Duration::from_secs(60),
                by_network: Vec::new(),
                accept_timeout: Duration::from_secs(30),
                single_port: None,
                single_port_wait: Duration::from_secs(10),
            },
            active: ActiveOptions {
                enabled: true,
                source_port: 0,
                connect_timeout: Duration::from_secs(10),
            },
            anonymous: Some(AnonymousOptions {
                root: crate::storage::RootSpec::Local(root),
                upload: false,
                quota: QuotaLimits::default(),
            }),
            users: Vec::new(),
            auth: AuthOptions::default(),
            tls: None,
            limits: LimitsOptions::default(),
            run_as: None,
            allow_root: false,
            atomic_uploads: true,
            fsync_uploads: true,
            umask: DEFAULT_UMASK,
            log: LogOptions::default(),
            proxy: None,
            shutdown_grace: Duration::from_secs(30),
            metrics: None,
            config_file: None,
            stores: Default::default(),
            node_name: host_name(),
            pid_file: None,
            events: EventsOptions::default(),
            control: ControlOptions::default(),
            cluster: None,
        }
    }
}

/// The host name, the default `server.node_name`.
pub fn host_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// `url` with any password in it replaced by `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split_once(':').map_or("", |(u, _)| u);
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_owned(),
    }
}
