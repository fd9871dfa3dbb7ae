//! Validation: the raw sections of the file ([`super::FileConfig`]) checked
//! and turned into the typed [`ServerOptions`], every problem collected
//! with the key it concerns.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use super::values::*;
use super::*;

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
    let hash_on_upload = match l.hash_on_upload.as_deref() {
        None => false,
        Some(a) if a.eq_ignore_ascii_case("sha256") => true,
        Some(other) => {
            errors.push(format!(
                "limits.hash_on_upload: \"{other}\" is not supported; \"sha256\", or leave it out"
            ));
            false
        }
    };
    if l.hash_concurrency == 0 {
        errors.push(
            "limits.hash_concurrency: must be at least 1 (limits.hash = false turns hashing off)"
                .into(),
        );
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
        networks: crate::access::NetList {
            allow: parse_nets("limits.allow", &l.allow, errors),
            deny: parse_nets("limits.deny", &l.deny, errors),
        },
        hash: l.hash,
        hash_concurrency: l.hash_concurrency,
        hash_max_size: parse_rate("limits.hash_max_size", &l.hash_max_size, errors),
        hash_on_upload,
        quota_rescan: l.quota_rescan,
        ban_exempt: parse_nets("limits.ban_exempt", &l.ban_exempt, errors),
    }
}

/// `[log]`: the xferlog's directory must exist (the file is created).
fn validate_log(l: LogSection, here: bool, errors: &mut Vec<String>) -> LogOptions {
    if let Some(p) = l.xferlog.as_ref().filter(|_| here) {
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
    let format = match l.format.as_deref() {
        None | Some("text") => crate::options::LogFormat::Text,
        Some("json") => crate::options::LogFormat::Json,
        Some(other) => {
            errors.push(format!(
                "log.format: {other:?} is not a log format (\"text\" or \"json\")"
            ));
            crate::options::LogFormat::Text
        }
    };
    LogOptions {
        xferlog: l.xferlog,
        format,
    }
}

/// `[metrics]`: the listen address. The page has no authentication, so
/// an address past loopback is worth a warning.
fn validate_metrics(
    m: Option<MetricsSection>,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Option<SocketAddr> {
    let m = m?;
    match m.listen.parse::<SocketAddr>() {
        Ok(a) => {
            if !a.ip().to_canonical().is_loopback() {
                warnings.push(format!(
                    "metrics.listen: {a} is not a loopback address; /metrics, /health and /ready have no authentication, so anyone who reaches it reads the counters: keep it on loopback or a management network that only the scraper and the balancer reach"
                ));
            }
            Some(a)
        }
        Err(_) => {
            errors.push(format!(
                "metrics.listen: {:?} is not an address with a port (e.g. \"127.0.0.1:9121\")",
                m.listen
            ));
            None
        }
    }
}

/// `[proxy_protocol]`: whoever can connect from a listed network can claim
/// any client address, so wide networks are worth a warning.
fn validate_proxy(
    p: ProxyProtocolSection,
    single_port: bool,
    errors: &mut Vec<String>,
    warnings: &mut Vec<String>,
) -> Option<ProxyOptions> {
    let from = parse_nets("proxy_protocol.from", &p.from, errors);
    for net in &from {
        let wide = match net {
            ipnet::IpNet::V4(n) => n.prefix_len() < 24,
            ipnet::IpNet::V6(n) => n.prefix_len() < 64,
        };
        if wide {
            warnings.push(format!(
                "proxy_protocol.from: {net} is a wide network; anyone who can connect from it can claim any client address (and so slip past bans and allow lists): list the balancers' own addresses"
            ));
        }
    }
    if p.timeout.is_zero() {
        errors.push("proxy_protocol.timeout: must be above zero".into());
    }
    crate::config::proxy::check_data_without_header(&p, single_port, errors, warnings);
    if from.is_empty() {
        if p.data {
            errors.push("proxy_protocol.data: needs proxy_protocol.from".into());
        }
        return None;
    }
    Some(ProxyOptions {
        from,
        data: p.data,
        data_without_header: p.data_without_header,
        timeout: p.timeout,
    })
}

/// A control listener on a port that the passive pool hands out (or on
/// the single data port) would either fail to bind at start or have data
/// connections opened against it: refused, naming both keys.
fn check_listeners_outside_passive(
    listen: &[SocketAddr],
    implicit: &[SocketAddr],
    ports: &std::ops::RangeInclusive<u16>,
    single: bool,
    errors: &mut Vec<String>,
) {
    let range = if single {
        format!("passive.single_port = {}", ports.start())
    } else {
        format!("passive.ports = \"{}-{}\"", ports.start(), ports.end())
    };
    let keyed = listen
        .iter()
        .enumerate()
        .map(|(i, a)| (format!("server.listen[{i}]"), a))
        .chain(
            implicit
                .iter()
                .enumerate()
                .map(|(i, a)| (format!("tls.implicit_listen[{i}]"), a)),
        );
    for (key, a) in keyed {
        if a.port() != 0 && ports.contains(&a.port()) {
            errors.push(format!(
                "{key}: port {} lies inside {range}, which data connections use: \
                 move the listener (21 or 2121 are usual) or the passive range",
                a.port()
            ));
        }
    }
}

pub(super) fn validate(
    f: FileConfig,
    checks: &dyn Checks,
) -> Result<(ServerOptions, Vec<String>), ConfigError> {
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
    let ports = match (&f.passive.ports, f.passive.single_port) {
        (Some(_), Some(_)) => {
            errors.push(
                "passive.single_port: replaces passive.ports; set one of them, not both".into(),
            );
            crate::options::DEFAULT_PASSIVE_PORTS
        }
        (None, Some(0)) => {
            errors.push("passive.single_port: 0 is not a port".into());
            crate::options::DEFAULT_PASSIVE_PORTS
        }
        (None, Some(p)) => p..=p,
        (None, None) => crate::options::DEFAULT_PASSIVE_PORTS,
        (Some(text), None) => match parse_port_range(text) {
            Ok(r) => {
                if *r.start() < 1024 {
                    warnings.push(format!(
                        "passive.ports: {text:?} includes privileged ports below 1024"
                    ));
                }
                r
            }
            Err(e) => {
                errors.push(format!("passive.ports: {e}"));
                crate::options::DEFAULT_PASSIVE_PORTS
            }
        },
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
    let s3 = super::object::validate(f.s3, &mut errors);
    let azure = super::object::validate(f.azure, &mut errors);
    let stores = crate::storage::StoreOptions { s3, azure };
    let anonymous = if f.anonymous.enabled {
        match &f.anonymous.root {
            Some(root) => super::object::parse_root(
                "anonymous.root",
                root,
                None,
                &stores,
                checks,
                &mut errors,
                &mut warnings,
            )
            .map(|root| AnonymousOptions {
                root,
                upload: f.anonymous.upload,
                quota: crate::options::QuotaLimits {
                    bytes: f.anonymous.quota_bytes.as_ref().map(|q| {
                        super::values::parse_size("anonymous.quota_bytes", q, &mut errors)
                    }),
                    files: f.anonymous.quota_files,
                },
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
        if u.name.is_empty()
            || u.name.contains(char::is_whitespace)
            || u.name.contains(char::is_control)
        {
            errors.push(format!(
                "{key}.name: {:?} must be non-empty, without spaces or control characters",
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
        match checks.md5_crypt(&u.password_hash) {
            Ok(true) => warnings.push(format!(
                "{key}.password_hash: MD5 crypt ($1$) is fast to guess; give the user a new password hashed by `portcullis hash-password`"
            )),
            Ok(false) => {}
            Err(e) => errors.push(format!("{key}.password_hash: {e}")),
        }
        let root = super::object::parse_root(
            &format!("{key}.root"),
            &u.account.root,
            u.storage_profile.as_deref(),
            &stores,
            checks,
            &mut errors,
            &mut warnings,
        );
        let tls_on = matches!(&f.tls, Some(t) if t.mode != "off");
        let policy = u.account.validate(&key, tls_on, &mut errors);
        let client_auth_on =
            matches!(&f.tls, Some(t) if t.mode != "off" && t.client_auth.is_some());
        if policy.client_cert.use_cert != crate::options::CertUse::Off && !client_auth_on {
            errors.push(format!(
                "{key}.tls_client_cert: needs a [tls.client_auth] section (the CAs whose certificates are accepted)"
            ));
        }
        let password_optional_with_cert = match u.password_with_cert.as_deref() {
            None | Some("required") => false,
            Some("optional") => {
                if policy.client_cert.use_cert == crate::options::CertUse::Off {
                    errors.push(format!(
                        "{key}.password_with_cert: \"optional\" needs tls_client_cert = \"allowed\" or \"required\""
                    ));
                }
                true
            }
            Some(other) => {
                errors.push(format!(
                    "{key}.password_with_cert: {other:?} is not one of optional, required"
                ));
                false
            }
        };
        let Some(root) = root else { continue };
        users.push(UserEntry {
            name: u.name.clone(),
            password_hash: u.password_hash.clone(),
            root,
            policy,
            password_optional_with_cert,
            disabled: u.disabled,
        });
    }
    let tls_on = matches!(&f.tls, Some(t) if t.mode != "off");
    let auth = auth::validate_auth(f.auth, tls_on, checks, &mut errors, &mut warnings);
    let umask = parse_umask(&f.server.umask, &mut errors);
    let tls = super::sections::validate_tls(f.tls, checks, &mut errors);
    let limits = validate_limits(&f.limits, &mut errors);
    let log = validate_log(f.log, checks.this_host(), &mut errors);
    let metrics = validate_metrics(f.metrics, &mut errors, &mut warnings);
    let run_as = match (&f.server.user, &f.server.group) {
        // Rules for another host: its users are not this machine's.
        (Some(_), _) if !checks.this_host() => None,
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
    let implicit = tls.as_ref().map_or(&[][..], |t| &t.implicit_listen[..]);
    let alpn = tls
        .as_ref()
        .and_then(|t| t.acme.as_ref())
        .is_some_and(|a| a.challenge == crate::options::AcmeChallenge::TlsAlpn01);
    if alpn && !implicit.is_empty() && implicit.iter().all(|a| a.port() != 443) {
        warnings.push(
            "tls.acme.challenge: \"tls-alpn-01\" is validated on port 443, and no \
             tls.implicit_listen address is on it (fine if 443 is forwarded to one)"
                .into(),
        );
    }
    check_listeners_outside_passive(
        &listen,
        implicit,
        &ports,
        f.passive.single_port.is_some(),
        &mut errors,
    );
    let proxy = validate_proxy(
        f.proxy_protocol,
        f.passive.single_port.is_some(),
        &mut errors,
        &mut warnings,
    );
    let server_cert = tls.as_ref().map(|t| (t.cert.clone(), t.key.clone()));
    let control = validate_control(f.control, server_cert, checks.this_host(), &mut errors);
    let mut events = super::events::validate_events(f.events, &mut errors);
    events.spool_sync = f.server.fsync_uploads;
    let cluster = super::cluster::validate_cluster(f.cluster, &mut errors);
    let node_name = match f.server.node_name {
        None => crate::options::host_name(),
        Some(n) if n.is_empty() || n.chars().any(char::is_control) => {
            errors.push(format!(
                "server.node_name: {n:?} must be non-empty, without control characters"
            ));
            n
        }
        Some(n) => n,
    };
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
                single_port: f.passive.single_port,
                single_port_wait: f.passive.single_port_wait,
            },
            active: ActiveOptions {
                enabled: f.active.enabled,
                source_port: f.active.source_port,
                connect_timeout: f.active.connect_timeout,
            },
            anonymous,
            users,
            auth,
            tls,
            limits,
            run_as,
            allow_root: f.server.allow_root,
            atomic_uploads: f.server.atomic_uploads,
            fsync_uploads: f.server.fsync_uploads,
            umask,
            log,
            shutdown_grace: f.server.shutdown_grace,
            metrics,
            config_file: None,
            proxy,
            stores,
            node_name,
            pid_file: f.server.pid_file,
            events,
            control,
            cluster,
        },
        warnings,
    ))
}

/// `[control]`: the socket's path (absolute; "" for none) and its group.
fn validate_control(
    c: super::ControlSection,
    server_cert: Option<(PathBuf, PathBuf)>,
    this_host: bool,
    errors: &mut Vec<String>,
) -> crate::options::ControlOptions {
    let mut o = crate::options::ControlOptions::default();
    let own = match (c.tls_cert, c.tls_key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => {
            errors.push("control.tls_cert, control.tls_key: set both or neither".into());
            None
        }
    };
    if let Some(l) = &c.listen {
        let listen = l.parse::<SocketAddr>().map_err(|_| {
            errors.push(format!(
                "control.listen: {l:?} is not an address with a port (e.g. \"127.0.0.1:9122\")"
            ))
        });
        let tls = own.or(server_cert);
        if tls.is_none() {
            errors.push(
                "control.listen: the TCP control API needs TLS: a [tls] section with cert and key, or control.tls_cert and control.tls_key".into(),
            );
        }
        if c.token_file.is_none() {
            errors.push(
                "control.listen: the TCP control API needs control.token_file (NAME TOKEN [read-only] per line)".into(),
            );
        }
        if let (Ok(listen), Some((cert, key)), Some(token_file)) = (listen, tls, c.token_file) {
            o.tcp = Some(crate::options::ControlTcp {
                listen,
                cert,
                key,
                token_file,
            });
        }
    } else if own.is_some() || c.token_file.is_some() {
        errors.push(
            "control.tls_cert, control.tls_key, control.token_file: only for control.listen, which is not set".into(),
        );
    }
    if let Some(p) = c.socket {
        o.default_path = false;
        o.socket = if p.as_os_str().is_empty() {
            None
        } else if p.is_relative() {
            errors.push(format!(
                "control.socket: {} must be an absolute path (or \"\" for no socket)",
                p.display()
            ));
            None
        } else {
            Some(p)
        };
    }
    if let Some(g) = c.group {
        if !this_host {
            // Rules for another host: its groups are not this machine's.
        } else {
            match nix::unistd::Group::from_name(&g) {
                Ok(Some(grp)) => o.group = Some((g, grp.gid.as_raw())),
                Ok(None) => errors.push(format!("control.group: no group named {g:?}")),
                Err(e) => errors.push(format!("control.group: cannot look up {g:?}: {e}")),
            }
        }
    }
    o
}
