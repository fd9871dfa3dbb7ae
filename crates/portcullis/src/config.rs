//! The TOML config file: serde structs (unknown keys are errors) and their
//! validation into [`ServerOptions`]. Every error names the key it is about;
//! all errors are reported at once.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::auth::Permissions;
use crate::options::{
    ActiveOptions, AnonymousOptions, DataProtection, PassiveAddress, PassiveOptions, ServerOptions,
    TlsMode, TlsOptions, UserEntry, UserTls, DEFAULT_PORT,
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

fn parse_rate(key: &str, r: &Rate, errors: &mut Vec<String>) -> u64 {
    let t = match r {
        Rate::Bytes(n) => return *n,
        Rate::Text(t) => t.trim(),
    };
    let (num, mult) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 1 << 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    match num.trim().parse::<u64>() {
        Ok(n) => n.saturating_mul(mult),
        Err(_) => {
            errors.push(format!(
                "{key}: {t:?} is not a rate (bytes per second, e.g. 1048576 or \"10M\")"
            ));
            0
        }
    }
}

fn parse_nets(key: &str, list: &[String], errors: &mut Vec<String>) -> Vec<ipnet::IpNet> {
    let mut out = Vec::new();
    for (i, n) in list.iter().enumerate() {
        // A bare address is a network of one.
        let parsed = n
            .parse::<ipnet::IpNet>()
            .or_else(|_| n.parse::<IpAddr>().map(ipnet::IpNet::from));
        match parsed {
            Ok(net) => out.push(net),
            Err(_) => errors.push(format!(
                "{key}[{i}]: {n:?} is not a network (e.g. \"10.0.0.0/8\", \"2001:db8::/32\", \"198.51.100.7\")"
            )),
        }
    }
    out
}

/// `[limits]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsSection {
    /// Sessions at once in total.
    pub max_sessions: usize,
    /// Sessions at once from one client IP.
    pub max_sessions_per_ip: usize,
    /// Failed logins within the window that ban the IP; 0 = never.
    pub max_login_failures: u32,
    #[serde(with = "humantime_serde")]
    pub login_failure_window: Duration,
    /// First ban length; doubles on each repeat.
    #[serde(with = "humantime_serde")]
    pub ban_time: Duration,
    /// Abort a transfer that moves nothing for this long.
    #[serde(with = "humantime_serde")]
    pub data_timeout: Duration,
    pub download_rate: Rate,
    pub upload_rate: Rate,
    pub session_download_rate: Rate,
    pub session_upload_rate: Rate,
    /// Client networks allowed to connect (empty: all).
    pub allow: Vec<String>,
    /// Client networks refused (wins over allow).
    pub deny: Vec<String>,
}

impl Default for LimitsSection {
    fn default() -> Self {
        let d = crate::options::LimitsOptions::default();
        LimitsSection {
            max_sessions: d.max_sessions,
            max_sessions_per_ip: d.max_sessions_per_ip,
            max_login_failures: d.max_login_failures,
            login_failure_window: d.login_failure_window,
            ban_time: d.ban_time,
            data_timeout: d.data_timeout,
            download_rate: Rate::default(),
            upload_rate: Rate::default(),
            session_download_rate: Rate::default(),
            session_upload_rate: Rate::default(),
            allow: Vec::new(),
            deny: Vec::new(),
        }
    }
}

fn validate_limits(l: &LimitsSection, errors: &mut Vec<String>) -> crate::options::LimitsOptions {
    if l.max_sessions == 0 {
        errors.push("limits.max_sessions: must be at least 1".into());
    }
    if l.max_sessions_per_ip == 0 {
        errors.push("limits.max_sessions_per_ip: must be at least 1".into());
    }
    if l.data_timeout.is_zero() {
        errors.push("limits.data_timeout: must be more than 0".into());
    }
    crate::options::LimitsOptions {
        max_sessions: l.max_sessions,
        max_sessions_per_ip: l.max_sessions_per_ip,
        max_login_failures: l.max_login_failures,
        login_failure_window: l.login_failure_window,
        ban_time: l.ban_time,
        data_timeout: l.data_timeout,
        download_rate: parse_rate("limits.download_rate", &l.download_rate, errors),
        upload_rate: parse_rate("limits.upload_rate", &l.upload_rate, errors),
        session_download_rate: parse_rate(
            "limits.session_download_rate",
            &l.session_download_rate,
            errors,
        ),
        session_upload_rate: parse_rate(
            "limits.session_upload_rate",
            &l.session_upload_rate,
            errors,
        ),
        networks: crate::limits::NetList {
            allow: parse_nets("limits.allow", &l.allow, errors),
            deny: parse_nets("limits.deny", &l.deny, errors),
        },
    }
}

/// `[tls]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    /// PEM certificate chain.
    pub cert: Option<PathBuf>,
    /// PEM private key.
    pub key: Option<PathBuf>,
    /// off | optional | required (control connection).
    #[serde(default = "default_tls_mode")]
    pub mode: String,
    /// optional | required (PROT P for data connections).
    #[serde(default = "default_optional")]
    pub data_protection: String,
    /// Data connections must resume a TLS session of their control connection
    /// or of a sibling logged in as the same user from the same IP.
    #[serde(default = "default_true")]
    pub require_session_reuse: bool,
    /// Implicit-TLS listeners, "ADDR:PORT".
    #[serde(default)]
    pub implicit_listen: Vec<String>,
    /// Anonymous logins are exempt from mode and data_protection.
    #[serde(default)]
    pub anonymous_exempt: bool,
    /// A TLS handshake must finish within this long.
    #[serde(default = "default_handshake_timeout", with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// Accept CCC (clear the control connection).
    #[serde(default)]
    pub allow_ccc: bool,
}

fn default_tls_mode() -> String {
    "optional".into()
}
fn default_optional() -> String {
    "optional".into()
}
fn default_true() -> bool {
    true
}
fn default_handshake_timeout() -> Duration {
    Duration::from_secs(10)
}

fn parse_tls_mode(key: &str, s: &str, errors: &mut Vec<String>) -> Option<TlsMode> {
    match s {
        "optional" => Some(TlsMode::Optional),
        "required" => Some(TlsMode::Required),
        _ => {
            errors.push(format!(
                "{key}: {s:?} is not one of off, optional, required"
            ));
            None
        }
    }
}

fn parse_data_protection(key: &str, s: &str, errors: &mut Vec<String>) -> Option<DataProtection> {
    match s {
        "optional" => Some(DataProtection::Optional),
        "required" => Some(DataProtection::Required),
        _ => {
            errors.push(format!("{key}: {s:?} is not one of optional, required"));
            None
        }
    }
}

fn validate_tls(t: Option<TlsSection>, errors: &mut Vec<String>) -> Option<TlsOptions> {
    let t = t?;
    let mut implicit_listen = Vec::new();
    for (i, l) in t.implicit_listen.iter().enumerate() {
        match l.parse::<SocketAddr>() {
            Ok(a) => implicit_listen.push(a),
            Err(_) => errors.push(format!(
                "tls.implicit_listen[{i}]: {l:?} is not ADDR:PORT (IPv6 as \"[::]:990\")"
            )),
        }
    }
    if t.mode == "off" {
        if !implicit_listen.is_empty() {
            errors.push("tls.implicit_listen: needs tls.mode optional or required, not off".into());
        }
        return None;
    }
    let mode = parse_tls_mode("tls.mode", &t.mode, errors);
    let data = parse_data_protection("tls.data_protection", &t.data_protection, errors);
    if t.cert.is_none() {
        errors.push(
            "tls.cert: required unless tls.mode = \"off\" (`portcullis gen-cert` makes one)".into(),
        );
    }
    if t.key.is_none() {
        errors.push("tls.key: required unless tls.mode = \"off\"".into());
    }
    let opts = TlsOptions {
        cert: t.cert?,
        key: t.key?,
        mode: mode?,
        data_protection: data?,
        require_session_reuse: t.require_session_reuse,
        implicit_listen,
        anonymous_exempt: t.anonymous_exempt,
        handshake_timeout: t.handshake_timeout,
        allow_ccc: t.allow_ccc,
    };
    if let Err(e) = crate::tls::CertResolver::load(&opts.cert, &opts.key) {
        errors.push(e.to_string());
    }
    Some(opts)
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
}

impl Default for ServerSection {
    fn default() -> Self {
        let d = ServerOptions::with_anonymous_root(PathBuf::new());
        ServerSection {
            listen: vec![format!("0.0.0.0:{DEFAULT_PORT}")],
            idle_timeout: d.idle_timeout,
            login_timeout: d.login_timeout,
            banner: d.banner,
            failed_login_delay: d.failed_login_delay,
            user: None,
            group: None,
            allow_root: false,
            atomic_uploads: true,
            fsync_uploads: true,
            umask: format!("{:03o}", d.umask),
        }
    }
}

/// Parse `server.umask`: octal digits (a leading "0o" allowed), at most 777.
fn parse_umask(s: &str, errors: &mut Vec<String>) -> u32 {
    let digits = s.trim().strip_prefix("0o").unwrap_or(s.trim());
    let octal = !digits.is_empty() && digits.bytes().all(|b| (b'0'..=b'7').contains(&b));
    match u32::from_str_radix(digits, 8) {
        Ok(m) if octal && m <= 0o777 => m,
        _ => {
            errors.push(format!(
                "server.umask: {s:?} is not an octal mask of at most 777 (e.g. \"022\" or \"027\")"
            ));
            crate::options::DEFAULT_UMASK
        }
    }
}

/// `[passive]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PassiveSection {
    /// Allow PASV/EPSV.
    pub enabled: bool,
    /// Data port range "LO-HI".
    pub ports: String,
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
        PassiveSection {
            enabled: true,
            ports: "40000-40999".into(),
            address: None,
            address_refresh: Duration::from_secs(60),
            address_by_network: Vec::new(),
            accept_timeout: Duration::from_secs(30),
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
        ActiveSection {
            enabled: true,
            source_port: 0,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// `[anonymous]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnonymousSection {
    /// Allow USER anonymous / ftp.
    pub enabled: bool,
    /// The anonymous root directory.
    pub root: Option<PathBuf>,
    /// Anonymous may upload new files (never overwrite, delete, rename or mkdir).
    pub upload: bool,
}

/// One `[[users]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSection {
    /// Login name.
    pub name: String,
    /// argon2id PHC string from `portcullis hash-password`.
    pub password_hash: String,
    /// The user's root directory.
    pub root: PathBuf,
    /// Any of read, write, delete, rename, mkdir.
    #[serde(default = "default_permissions")]
    pub permissions: Vec<String>,
    /// optional | required: overrides tls.mode for this user.
    pub tls_mode: Option<String>,
    /// optional | required: overrides tls.data_protection for this user.
    pub data_protection: Option<String>,
    /// Bytes per second for all of this user's sessions together.
    #[serde(default)]
    pub download_rate: Rate,
    #[serde(default)]
    pub upload_rate: Rate,
    /// Networks this user may log in from (empty: any).
    #[serde(default)]
    pub allow_from: Vec<String>,
    /// Networks this user may not log in from.
    #[serde(default)]
    pub deny_from: Vec<String>,
}

fn default_permissions() -> Vec<String> {
    vec!["read".into()]
}

/// Read and validate a config file. Returns the options and warnings.
pub fn load(path: &Path) -> Result<(ServerOptions, Vec<String>), ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError(vec![format!("{}: {e}", path.display())]))?;
    parse(&text)
}

/// Parse and validate config text.
pub fn parse(text: &str) -> Result<(ServerOptions, Vec<String>), ConfigError> {
    let file: FileConfig = toml::from_str(text).map_err(|e| ConfigError(vec![e.to_string()]))?;
    validate(file)
}

/// Parse "LO-HI".
pub fn parse_port_range(s: &str) -> Result<std::ops::RangeInclusive<u16>, String> {
    let (lo, hi) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?}: expected \"LO-HI\""))?;
    let lo: u16 = lo
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: bad low port"))?;
    let hi: u16 = hi
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: bad high port"))?;
    if lo == 0 {
        return Err(format!("{s:?}: port 0 is not a port"));
    }
    if lo > hi {
        return Err(format!("{s:?}: low port above high port"));
    }
    Ok(lo..=hi)
}

/// A DNS name: dot-separated labels of letters, digits and hyphens.
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && s.parse::<IpAddr>().is_err()
}

fn check_dir(key: &str, p: &Path, errors: &mut Vec<String>) {
    if !p.is_dir() {
        errors.push(format!(
            "{key}: {} is not an existing directory",
            p.display()
        ));
    }
}

fn validate(f: FileConfig) -> Result<(ServerOptions, Vec<String>), ConfigError> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut listen = Vec::new();
    for (i, l) in f.server.listen.iter().enumerate() {
        match l.parse::<SocketAddr>() {
            Ok(a) => listen.push(a),
            Err(_) => errors.push(format!(
                "server.listen[{i}]: {l:?} is not ADDR:PORT (IPv6 as \"[::]:2121\")"
            )),
        }
    }
    if f.server.listen.is_empty() {
        errors.push("server.listen: at least one listener is needed".into());
    }
    let ports = match parse_port_range(&f.passive.ports) {
        Ok(r) => {
            if *r.start() < 1024 {
                warnings.push(format!(
                    "passive.ports: {:?} includes privileged ports below 1024",
                    f.passive.ports
                ));
            }
            r
        }
        Err(e) => {
            errors.push(format!("passive.ports: {e}"));
            40000..=40999
        }
    };
    let address = match &f.passive.address {
        None => None,
        Some(s) => match s.parse::<IpAddr>() {
            Ok(IpAddr::V4(a)) => Some(PassiveAddress::Ip(a)),
            Ok(IpAddr::V6(_)) => {
                errors.push(format!("passive.address: {s:?}: PASV can only advertise an IPv4 address (EPSV needs none)"));
                None
            }
            Err(_) if is_host_name(s) => Some(PassiveAddress::Host(s.clone())),
            Err(_) => {
                errors.push(format!(
                    "passive.address: {s:?} is neither an IPv4 address nor a host name"
                ));
                None
            }
        },
    };
    if f.passive.address_refresh < Duration::from_secs(1) {
        errors.push("passive.address_refresh: must be at least 1s".into());
    }
    let mut by_network = Vec::new();
    for (i, n) in f.passive.address_by_network.iter().enumerate() {
        let key = format!("passive.address_by_network[{i}]");
        let net = parse_nets(
            &format!("{key}.network"),
            std::slice::from_ref(&n.network),
            &mut errors,
        );
        let adv = match n.address.as_str() {
            "local" => Some(None),
            a => match a.parse::<std::net::Ipv4Addr>() {
                Ok(v4) => Some(Some(v4)),
                Err(_) => {
                    errors.push(format!(
                        "{key}.address: {a:?} is not an IPv4 address or \"local\""
                    ));
                    None
                }
            },
        };
        if let (Some(net), Some(adv)) = (net.first(), adv) {
            by_network.push((*net, adv));
        }
    }
    let anonymous = if f.anonymous.enabled {
        match &f.anonymous.root {
            Some(root) => {
                check_dir("anonymous.root", root, &mut errors);
                Some(AnonymousOptions {
                    root: root.clone(),
                    upload: f.anonymous.upload,
                })
            }
            None => {
                errors.push("anonymous.root: required when anonymous.enabled = true".into());
                None
            }
        }
    } else {
        None
    };
    let mut users: Vec<UserEntry> = Vec::new();
    for (i, u) in f.users.iter().enumerate() {
        let key = format!("users[{i}]");
        if u.name.is_empty() || u.name.contains(char::is_whitespace) {
            errors.push(format!(
                "{key}.name: {:?} must be non-empty without spaces",
                u.name
            ));
        }
        if ["anonymous", "ftp"]
            .iter()
            .any(|n| n.eq_ignore_ascii_case(&u.name))
        {
            errors.push(format!(
                "{key}.name: {:?} is reserved for anonymous login",
                u.name
            ));
        }
        if users.iter().any(|o| o.name == u.name) {
            errors.push(format!("{key}.name: duplicate user {:?}", u.name));
        }
        if argon2::PasswordHash::new(&u.password_hash).is_err() {
            errors.push(format!(
                "{key}.password_hash: not a valid PHC string (run `portcullis hash-password`)"
            ));
        }
        check_dir(&format!("{key}.root"), &u.root, &mut errors);
        let mut permissions = Permissions::default();
        for p in &u.permissions {
            if let Err(e) = permissions.grant(p) {
                errors.push(format!("{key}.permissions: {e}"));
            }
        }
        let tls = UserTls {
            mode: u
                .tls_mode
                .as_deref()
                .and_then(|m| parse_tls_mode(&format!("{key}.tls_mode"), m, &mut errors)),
            data_protection: u.data_protection.as_deref().and_then(|m| {
                parse_data_protection(&format!("{key}.data_protection"), m, &mut errors)
            }),
        };
        if (u.tls_mode.is_some() || u.data_protection.is_some())
            && !matches!(&f.tls, Some(t) if t.mode != "off")
        {
            errors.push(format!(
                "{key}: tls_mode/data_protection need a [tls] section with mode optional or required"
            ));
        }
        users.push(UserEntry {
            name: u.name.clone(),
            password_hash: u.password_hash.clone(),
            root: u.root.clone(),
            permissions,
            tls,
            download_rate: parse_rate(
                &format!("{key}.download_rate"),
                &u.download_rate,
                &mut errors,
            ),
            upload_rate: parse_rate(&format!("{key}.upload_rate"), &u.upload_rate, &mut errors),
            networks: crate::limits::NetList {
                allow: parse_nets(&format!("{key}.allow_from"), &u.allow_from, &mut errors),
                deny: parse_nets(&format!("{key}.deny_from"), &u.deny_from, &mut errors),
            },
        });
    }
    let umask = parse_umask(&f.server.umask, &mut errors);
    let tls = validate_tls(f.tls, &mut errors);
    let limits = validate_limits(&f.limits, &mut errors);
    let run_as = match (&f.server.user, &f.server.group) {
        (Some(u), g) => match crate::privdrop::resolve(u, g.as_deref()) {
            Ok(id) => Some(id),
            Err(e) => {
                errors.push(e);
                None
            }
        },
        (None, Some(_)) => {
            errors.push("server.group: needs server.user".into());
            None
        }
        (None, None) => None,
    };
    if run_as.is_some() && f.server.allow_root {
        errors.push("server.allow_root: contradicts server.user; choose one".into());
    }
    if !errors.is_empty() {
        return Err(ConfigError(errors));
    }
    Ok((
        ServerOptions {
            listen,
            idle_timeout: f.server.idle_timeout,
            login_timeout: f.server.login_timeout,
            banner: f.server.banner,
            failed_login_delay: f.server.failed_login_delay,
            passive: PassiveOptions {
                enabled: f.passive.enabled,
                ports,
                address,
                address_refresh: f.passive.address_refresh,
                by_network,
                accept_timeout: f.passive.accept_timeout,
            },
            active: ActiveOptions {
                enabled: f.active.enabled,
                source_port: f.active.source_port,
                connect_timeout: f.active.connect_timeout,
            },
            anonymous,
            users,
            tls,
            limits,
            run_as,
            allow_root: f.server.allow_root,
            atomic_uploads: f.server.atomic_uploads,
            fsync_uploads: f.server.fsync_uploads,
            umask,
        },
        warnings,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_file() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().display();
        let hash = crate::auth::users::hash_password("x");
        let text = format!(
            r#"
[server]
listen = ["127.0.0.1:2121", "[::1]:2121"]
idle_timeout = "300s"
fsync_uploads = false
[passive]
enabled = true
ports = "40000-40999"
address = "203.0.113.7"
[active]
enabled = true
source_port = 20
[anonymous]
enabled = true
root = "{root}"
upload = true
[[users]]
name = "alice"
password_hash = "{hash}"
root = "{root}"
permissions = ["read", "write", "overwrite", "delete", "rename", "mkdir"]
"#
        );
        let (o, w) = parse(&text).unwrap();
        assert!(w.is_empty());
        assert_eq!(o.listen.len(), 2);
        assert!(!o.fsync_uploads && o.atomic_uploads);
        assert!(parse("").unwrap().0.fsync_uploads);
        assert_eq!(parse("").unwrap().0.umask, 0o022);
        for (text, mask) in [("027", 0o027), ("0077", 0o077), ("0o007", 0o007), ("0", 0)] {
            let o = parse(&format!("[server]\numask = \"{text}\"\n")).unwrap().0;
            assert_eq!(o.umask, mask, "{text}");
        }
        for bad in ["1000", "8", "", "+22", "u=rwx", "0o"] {
            let e = parse(&format!("[server]\numask = \"{bad}\"\n"))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("server.umask: "), "{bad}: {e}");
        }
        assert_eq!(
            o.passive.address,
            Some(PassiveAddress::Ip("203.0.113.7".parse().unwrap()))
        );
        assert_eq!(o.active.source_port, 20);
        assert!(o.anonymous.unwrap().upload);
        assert_eq!(o.users[0].permissions, Permissions::ALL);
    }

    #[test]
    fn errors_name_their_keys() {
        let text = r#"
[passive]
ports = "40999-40000"
address = "nat example"
[anonymous]
enabled = true
[[users]]
name = "alice"
password_hash = "plain"
root = "/nonexistent/x"
permissions = ["exec"]
[[users]]
name = "alice"
password_hash = "plain"
root = "/"
"#;
        let e = parse(text).unwrap_err().to_string();
        for key in [
            "passive.ports: \"40999-40000\": low port above high port",
            "passive.address",
            "anonymous.root: required",
            "users[0].password_hash: not a valid PHC string",
            "users[0].root",
            "users[0].permissions: unknown permission \"exec\"",
            "users[1].name: duplicate user",
        ] {
            assert!(e.contains(key), "missing {key:?} in:\n{e}");
        }
        let e = parse("[server]\nlisten = []\nbogus = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("bogus"), "{e}");
    }

    #[test]
    fn tls_section() {
        let d = tempfile::tempdir().unwrap();
        let (cert, key) = crate::tls::self_signed(&["localhost".into()]).unwrap();
        std::fs::write(d.path().join("c.pem"), cert).unwrap();
        std::fs::write(d.path().join("k.pem"), key).unwrap();
        let root = d.path().display();
        let hash = crate::auth::users::hash_password("x");
        let text = format!(
            r#"
[tls]
cert = "{root}/c.pem"
key = "{root}/k.pem"
mode = "required"
data_protection = "required"
require_session_reuse = false
implicit_listen = ["0.0.0.0:990"]
anonymous_exempt = true
handshake_timeout = "5s"
[[users]]
name = "alice"
password_hash = "{hash}"
root = "{root}"
tls_mode = "optional"
"#
        );
        let (o, _) = parse(&text).unwrap();
        let t = o.tls.as_ref().unwrap();
        assert_eq!(t.mode, TlsMode::Required);
        assert_eq!(t.data_protection, DataProtection::Required);
        assert!(!t.require_session_reuse && t.anonymous_exempt);
        assert_eq!(t.implicit_listen[0].port(), 990);
        assert!(!o.control_tls_required("alice", false), "user override");
        assert!(o.control_tls_required("bob", false));
        assert!(!o.control_tls_required("anonymous", true), "exempt");
        assert!(o.data_tls_required("alice", false));

        let bad = format!(
            r#"
[tls]
cert = "{root}/nope.pem"
mode = "sometimes"
data_protection = "maybe"
[[users]]
name = "alice"
password_hash = "{hash}"
root = "{root}"
tls_mode = "always"
"#
        );
        let e = parse(&bad).unwrap_err().to_string();
        for key in [
            "tls.mode: \"sometimes\"",
            "tls.data_protection: \"maybe\"",
            "tls.key: required",
            "users[0].tls_mode: \"always\"",
        ] {
            assert!(e.contains(key), "missing {key:?} in:\n{e}");
        }
        let e = parse("[tls]\nmode = \"off\"\nimplicit_listen = [\"0.0.0.0:990\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tls.implicit_listen"), "{e}");
        let (o, _) = parse("[tls]\nmode = \"off\"\n").unwrap();
        assert!(o.tls.is_none());
    }
}
