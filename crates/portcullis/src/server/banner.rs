//! The start-up summary: where the server listens, what passive and active
//! mode need, who may log in, and the firewall rules to open.

use super::*;

/// The start banner: where we listen, the data ports, and what a firewall
/// must open for each mode, and what the object-store check found
/// (`stores`, one line per object-store root). Tests read the "listening on"
/// lines.
pub fn banner(
    o: &ServerOptions,
    bound: &[SocketAddr],
    implicit: &[SocketAddr],
    stores: &[String],
) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for addr in bound {
        let _ = writeln!(
            s,
            "portcullis {} listening on {addr}",
            env!("CARGO_PKG_VERSION")
        );
    }
    for addr in implicit {
        let _ = writeln!(
            s,
            "portcullis {} listening on {addr} (implicit TLS)",
            env!("CARGO_PKG_VERSION")
        );
    }
    let ports: Vec<String> = bound
        .iter()
        .chain(implicit)
        .map(|a| a.port().to_string())
        .collect();
    let control = ports.join(", ");
    let (lo, hi) = (o.passive.ports.start(), o.passive.ports.end());
    if o.passive.enabled {
        let mut adv = match &o.passive.address {
            Some(crate::options::PassiveAddress::Ip(a)) => a.to_string(),
            Some(crate::options::PassiveAddress::Host(h)) => format!(
                "{h} (resolved every {}s)",
                o.passive.address_refresh.as_secs()
            ),
            None => "the control connection's local address".to_owned(),
        };
        for (net, a) in &o.passive.by_network {
            let a = a.map_or("its local address".to_owned(), |a| a.to_string());
            adv.push_str(&format!(", to {net}: {a}"));
        }
        let ports = match o.passive.single_port {
            Some(p) => format!("one data port {p} for every session (passive.single_port)"),
            None => format!("data ports {lo}-{hi}"),
        };
        let _ = writeln!(s, "passive mode: on, {ports}, PASV advertises {adv}");
    } else {
        let _ = writeln!(s, "passive mode: off (PASV/EPSV refused)");
    }
    if o.active.enabled {
        let from = match o.active.source_port {
            0 => "any local port".to_owned(),
            p => format!("local port {p}"),
        };
        let _ = writeln!(
            s,
            "active mode: on, connecting back to clients' ports >= 1024 from {from}"
        );
    } else {
        let _ = writeln!(s, "active mode: off (PORT/EPRT refused)");
    }
    match &o.anonymous {
        Some(a) => {
            let access = if a.upload {
                "read and upload"
            } else {
                "read-only"
            };
            let _ = writeln!(s, "anonymous login: on, {access}, root {}", a.root);
        }
        None => {
            let _ = writeln!(s, "anonymous login: off");
        }
    }
    let _ = writeln!(s, "users: {}", o.users.len());
    if let Some(line) = accounts(&o.auth) {
        let _ = writeln!(s, "{line}");
    }
    for line in stores {
        let _ = writeln!(s, "{line}");
    }
    let _ = writeln!(
        s,
        "umask: {:03o} (new files {:04o}, new directories {:04o})",
        o.umask,
        0o666 & !o.umask,
        0o777 & !o.umask
    );
    match &o.tls {
        Some(t) => {
            let _ = writeln!(
                s,
                "FTPS: AUTH TLS {}, data protection {}, session reuse {}{}",
                t.mode.config_word(),
                t.data_protection.config_word(),
                if t.require_session_reuse {
                    "required"
                } else {
                    "not required"
                },
                if implicit.is_empty() {
                    String::new()
                } else {
                    ", implicit TLS on".to_owned()
                }
            );
            if let Some(c) = &t.client_auth {
                let _ = writeln!(
                    s,
                    "FTPS client certificates: {} (mode {}), CAs from {}, {} revocation list file(s)",
                    match c.mode {
                        crate::options::ClientAuthMode::Optional => {
                            "asked for, the account decides at login"
                        }
                        crate::options::ClientAuthMode::Required => "required at every handshake",
                    },
                    match c.mode {
                        crate::options::ClientAuthMode::Optional => "optional",
                        crate::options::ClientAuthMode::Required => "required",
                    },
                    c.ca_file.display(),
                    c.crl_files.len()
                );
            }
        }
        None => {
            let _ = writeln!(s, "FTPS: off (no [tls] section)");
        }
    }
    let _ = writeln!(s, "firewall on this host must allow (`portcullis firewall --format nftables|nftables-file|iptables|ufw|firewalld|windows` prints the rules):");
    let _ = writeln!(s, "  inbound  TCP {control}  (control connections)");
    if o.passive.enabled {
        let _ = writeln!(
            s,
            "  inbound  TCP {}  (passive data connections)",
            crate::firewall::ports(*lo, *hi, "-")
        );
    }
    if o.active.enabled {
        let src = match o.active.source_port {
            0 => String::new(),
            p => format!(" from local port {p}"),
        };
        let _ = writeln!(
            s,
            "  outbound TCP to clients' ports 1024-65535{src}  (active data connections)"
        );
    }
    s
}

/// The account back ends beyond the config file's users, in the order
/// they are asked; `None` when the users are all there is.
fn accounts(a: &crate::options::AuthOptions) -> Option<String> {
    use crate::options::BackendKind;
    if a.order == [BackendKind::Config] {
        return None;
    }
    let each: Vec<String> = a
        .order
        .iter()
        .map(|k| match k {
            BackendKind::Config => "config".to_owned(),
            BackendKind::Http => match &a.http {
                Some(h) => format!("http hook {}", h.url),
                None => "http".to_owned(),
            },
            BackendKind::Ldap => match &a.ldap {
                Some(l) => format!("ldap {}", l.url),
                None => "ldap".to_owned(),
            },
            BackendKind::Pam => match &a.pam {
                Some(p) => format!("pam service {:?}, roots {}", p.service, p.root),
                None => "pam".to_owned(),
            },
        })
        .collect();
    let cache = if a.cache_ttl.is_zero() {
        String::new()
    } else {
        format!(
            " (successful logins cached {})",
            humantime::format_duration(a.cache_ttl)
        )
    };
    let allowed = match a.allowed_roots.within() {
        Some(within) => {
            let each: Vec<String> = within.iter().map(ToString::to_string).collect();
            format!(", their roots under {}", each.join(", "))
        }
        None => String::new(),
    };
    Some(format!(
        "accounts, asked in turn: {}{cache}{allowed}",
        each.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use crate::options::{DataProtection, ServerOptions, TlsMode, TlsOptions};

    /// The summary says the config's words: what to write to change it.
    #[test]
    fn the_ftps_line_uses_the_config_words() {
        let mut o = ServerOptions::with_anonymous_root(".".into());
        o.tls = Some(TlsOptions::optional("c.pem".into(), "k.pem".into()));
        let addr = ["127.0.0.1:2121".parse().unwrap()];
        let b = super::banner(&o, &addr, &[], &[]);
        assert!(
            b.contains("FTPS: AUTH TLS optional, data protection optional, session reuse "),
            "{b}"
        );
        if let Some(t) = &mut o.tls {
            t.mode = TlsMode::Required;
            t.data_protection = DataProtection::Required;
        }
        let b = super::banner(&o, &addr, &[], &[]);
        assert!(
            b.contains("FTPS: AUTH TLS required, data protection required,"),
            "{b}"
        );
        assert!(!b.contains("client certificates"), "{b}");
        if let Some(t) = &mut o.tls {
            t.client_auth = Some(crate::options::ClientAuthOptions {
                ca_file: "partners.pem".into(),
                mode: crate::options::ClientAuthMode::Optional,
                crl_files: Vec::new(),
            });
        }
        let b = super::banner(&o, &addr, &[], &[]);
        assert!(
            b.contains("FTPS client certificates: asked for, the account decides at login (mode optional), CAs from partners.pem"),
            "{b}"
        );
    }
}
