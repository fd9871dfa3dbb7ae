//! `portcullis check-config`: every check that `serve` and a SIGHUP reload
//! make, so that a file it approves starts and reloads. The config's own
//! validation (`config::load`) comes first; then what depends on who runs
//! the server: a start as root needs `server.user`, the files a reload
//! reads again (the config file, the TLS certificate and key, the client CAs and
//! revocation lists) and the roots
//! must be usable by the server's user, as must the command hooks'
//! programs ([`crate::events::runnable`]), and ports below 1024 need a root
//! start (or the capability).

use std::path::Path;

use super::*;
use crate::privdrop::Identity;

/// The refusal of a start as root with neither `server.user` nor
/// `server.allow_root` (serve's words, and check-config's).
pub(super) const ROOT_WITHOUT_USER: &str =
    "refusing to serve as root: set server.user (root binds the ports, \
     then the server runs as that user) or server.allow_root = true";

pub(super) fn check_config(file: &Path) -> ExitCode {
    let (options, mut warnings) = match config::load(file, &crate::server::SystemChecks) {
        Ok(v) => v,
        Err(e) => {
            for line in e.0 {
                eprintln!("{}: {line}", file.display());
            }
            return ExitCode::FAILURE;
        }
    };
    let mut problems = Vec::new();
    if let Err(e) = crate::auth::check(&options) {
        problems.push(e);
    }
    let root = crate::privdrop::is_root();
    if root && options.run_as.is_none() && !options.allow_root {
        problems.push(format!("server.user: not set: {ROOT_WITHOUT_USER}"));
    }
    if let (false, Some(id)) = (root, &options.run_as) {
        warnings.push(format!(
            "server.user = {:?}: the server must be started as root to become it \
             (run check-config as root to check the files and roots as that user)",
            id.user
        ));
    }
    if !root {
        warnings.extend(low_ports(&options, unprivileged_port_start()));
    }
    if let (true, Some(id)) = (root, &options.run_as) {
        let check = || {
            let mut p = unreadable_for_reload(&options, id);
            p.extend(xferlog_unusable(&options, id));
            let who = crate::events::runnable::Who {
                name: id.user.clone(),
                uid: id.uid,
                gid: id.gid,
            };
            p.extend(crate::events::runnable::unrunnable(&options.events, &who));
            p
        };
        match crate::privdrop::on_thread_as(id, check) {
            Ok(p) => problems.extend(p),
            Err(e) => problems.push(e),
        }
    }
    if options.run_as.is_none() {
        // The server runs as whoever starts it: this user, if it is the one.
        let who = crate::events::runnable::Who::current();
        problems.extend(crate::events::runnable::unrunnable(&options.events, &who));
    }
    let roots = check_roots_as_server_user(&options);
    problems.extend(roots.problems);
    if !problems.is_empty() {
        for p in problems {
            eprintln!("{}: {p}", file.display());
        }
        return ExitCode::FAILURE;
    }
    println!("{}: OK", file.display());
    for w in warnings.iter().chain(&roots.warnings) {
        println!("warning: {w}");
    }
    ExitCode::SUCCESS
}

/// The lowest port an unprivileged process may bind
/// (`net.ipv4.ip_unprivileged_port_start`, 1024 unless lowered).
fn unprivileged_port_start() -> u16 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(1024)
}

/// The listeners whose port only a root start (or `CAP_NET_BIND_SERVICE`)
/// can bind, each with its key and the ways to get there.
pub(super) fn low_ports(options: &ServerOptions, unprivileged_start: u16) -> Vec<String> {
    let implicit = options.tls.iter().flat_map(|t| &t.implicit_listen);
    let keyed = options
        .listen
        .iter()
        .enumerate()
        .map(|(i, a)| (format!("server.listen[{i}]"), a))
        .chain(
            implicit
                .enumerate()
                .map(|(i, a)| (format!("tls.implicit_listen[{i}]"), a)),
        )
        .chain(
            options
                .metrics
                .iter()
                .map(|a| ("metrics.listen".to_owned(), a)),
        )
        .chain(
            options
                .tls
                .iter()
                .filter_map(|t| t.acme.as_ref())
                .map(|a| ("tls.acme.http_listen".to_owned(), &a.http_listen)),
        );
    keyed
        .filter(|(_, a)| a.port() != 0 && a.port() < unprivileged_start)
        .map(|(key, a)| {
            format!(
                "{key}: port {} is below {unprivileged_start}: start the server as root \
                 (with server.user to run as after binding) or give it \
                 CAP_NET_BIND_SERVICE (the packaged unit does)",
                a.port()
            )
        })
        .collect()
}

/// `log.xferlog` as `serve` opens it, as the server's user (and as that
/// user reopens it after a rotation): the file, if it exists, must open
/// for appending, and its directory must let that user create it. Asked
/// without writing anything: `access(2)` on a thread that is that user.
fn xferlog_unusable(options: &ServerOptions, id: &Identity) -> Option<String> {
    let p = options.log.xferlog.as_ref()?;
    let dir = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let u = &id.user;
    let problem = if p.exists() {
        let e = std::fs::OpenOptions::new().append(true).open(p).err()?;
        format!("{e} (chown {u} {})", p.display())
    } else {
        #[cfg(target_os = "linux")]
        {
            use rustix::fs::{access, Access};
            let e = access(dir, Access::WRITE_OK | Access::EXEC_OK).err()?;
            format!(
                "cannot be created in {}: {e} (chown {u} {})",
                dir.display(),
                dir.display()
            )
        }
        #[cfg(not(target_os = "linux"))]
        return None;
    };
    Some(format!(
        "log.xferlog: {}: {problem}: the server opens it as user {u}, who also \
         makes it again after a rotation, so {u} must be able to create files in {}",
        p.display(),
        dir.display()
    ))
}

/// The files a SIGHUP reload reads again after the privilege drop (the
/// config file, `tls.cert`, `tls.key`, `[tls.client_auth]`'s CA file and
/// revocation lists) that the calling thread cannot open,
/// each named with its key and the commands that let `id` read it. Run as
/// the server's user: by `serve` after the drop, by `check-config` on a
/// thread that has become that user.
pub(super) fn unreadable_for_reload(options: &ServerOptions, id: &Identity) -> Vec<String> {
    let group = crate::privdrop::group_name(id.gid).unwrap_or_else(|| id.gid.to_string());
    let files = options
        .config_file
        .iter()
        .map(|p| ("the config file", p))
        .chain(
            options
                .tls
                .iter()
                // ACME's files are the server user's own, made after the drop.
                .filter(|t| t.acme.is_none())
                .flat_map(|t| [("tls.cert", &t.cert), ("tls.key", &t.key)]),
        )
        .chain(
            options
                .tls
                .iter()
                .filter_map(|t| t.client_auth.as_ref())
                .flat_map(|c| {
                    std::iter::once(("tls.client_auth.ca_file", &c.ca_file))
                        .chain(c.crl_files.iter().map(|f| ("tls.client_auth.crl_files", f)))
                }),
        );
    files
        .filter_map(|(key, path)| {
            let e = std::fs::File::open(path).err()?;
            let p = path.display();
            Some(format!(
                "{key}: {p}: {e} for user {}, who reads it again at every SIGHUP \
                 reload (certificate renewals included), so each reload would fail: \
                 chgrp {group} {p} && chmod g+r {p}",
                id.user
            ))
        })
        .collect()
}
