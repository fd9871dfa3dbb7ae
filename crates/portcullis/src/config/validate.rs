//! Validation: the raw sections of the file ([`super::FileConfig`]) checked
//! and turned into the typed [`ServerOptions`], every problem collected
//! with the key it concerns.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use super::*;

pub(super) fn parse_rate(key: &str, r: &Rate, errors: &mut Vec<String>) -> u64 {
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

pub(super) fn parse_nets(
    key: &str,
    list: &[String],
    errors: &mut Vec<String>,
) -> Vec<ipnet::IpNet> {
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

pub(super) fn validate_limits(
    l: &LimitsSection,
    errors: &mut Vec<String>,
) -> crate::options::LimitsOptions {
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

pub(super) fn parse_tls_mode(key: &str, s: &str, errors: &mut Vec<String>) -> Option<TlsMode> {
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

pub(super) fn parse_data_protection(
    key: &str,
    s: &str,
    errors: &mut Vec<String>,
) -> Option<DataProtection> {
    match s {
        "optional" => Some(DataProtection::Optional),
        "required" => Some(DataProtection::Required),
        _ => {
            errors.push(format!("{key}: {s:?} is not one of optional, required"));
            None
        }
    }
}

pub(super) fn validate_tls(t: Option<TlsSection>, errors: &mut Vec<String>) -> Option<TlsOptions> {
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

/// Parse `server.umask`: octal digits (a leading "0o" allowed), at most 777.
pub(super) fn parse_umask(s: &str, errors: &mut Vec<String>) -> u32 {
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
pub(super) fn is_host_name(s: &str) -> bool {
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

pub(super) fn check_dir(key: &str, p: &Path, errors: &mut Vec<String>) {
    if !p.is_dir() {
        errors.push(format!(
            "{key}: {} is not an existing directory",
            p.display()
        ));
    }
}

/// `[log]`: the xferlog's directory must exist (the file is created).
fn validate_log(l: LogSection, errors: &mut Vec<String>) -> LogOptions {
    if let Some(p) = &l.xferlog {
        let parent = p.parent().filter(|d| !d.as_os_str().is_empty());
        if p.file_name().is_none() || p.is_dir() {
            errors.push(format!("log.xferlog: {} is not a file name", p.display()));
        } else if !parent.unwrap_or(Path::new(".")).is_dir() {
            errors.push(format!(
                "log.xferlog: the directory of {} does not exist",
                p.display()
            ));
        }
    }
    LogOptions { xferlog: l.xferlog }
}

pub(super) fn validate(f: FileConfig) -> Result<(ServerOptions, Vec<String>), ConfigError> {
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
    let s3 = super::s3::validate_s3(f.s3, &mut errors);
    let anonymous = if f.anonymous.enabled {
        match &f.anonymous.root {
            Some(root) => super::s3::parse_root(
                "anonymous.root",
                root,
                None,
                &s3,
                &mut errors,
                &mut warnings,
            )
            .map(|root| AnonymousOptions {
                root,
                upload: f.anonymous.upload,
            }),
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
        let root = super::s3::parse_root(
            &format!("{key}.root"),
            &u.root,
            u.s3_profile.as_deref(),
            &s3,
            &mut errors,
            &mut warnings,
        );
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
        let Some(root) = root else { continue };
        users.push(UserEntry {
            name: u.name.clone(),
            password_hash: u.password_hash.clone(),
            root,
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
    let log = validate_log(f.log, &mut errors);
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
            log,
            s3,
        },
        warnings,
    ))
}
