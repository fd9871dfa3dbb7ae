//! `portcullis serve`: prepare what needs the start-up privileges, drop
//! them, check the roots as the server user, and run the server.

use super::*;

pub(super) fn serve(options: ServerOptions, warnings: &[String], quick_start: bool) -> ExitCode {
    crate::logging::init(options.log.format);
    for w in warnings {
        tracing::warn!("{w}");
    }
    // Bind and load as whoever started us; then drop root, while this is
    // still the only thread.
    let prepared = match crate::server::prepare(&options) {
        Ok(p) => p,
        Err(e) => {
            crate::logging::fatal(&e);
            return ExitCode::FAILURE;
        }
    };
    // Written with the start-up privileges (/run is root's).
    let pid_file = match options.pid_file.clone().map(write_pid_file).transpose() {
        Ok(p) => p,
        Err(e) => {
            crate::logging::fatal(&e);
            return ExitCode::FAILURE;
        }
    };
    let socket = prepared.control_socket();
    let served = serve_prepared(options, prepared, quick_start);
    if let Some(path) = socket.filter(|_| served != ExitCode::SUCCESS) {
        // A start that failed after binding it (a root the server's user
        // cannot use, say) leaves no stale socket behind.
        let _ = std::fs::remove_file(path);
    }
    if let Some(path) = pid_file {
        // After the drop the server's user may not remove it; then the
        // next start writes it again.
        let _ = std::fs::remove_file(path);
    }
    served
}

/// `server.pid_file`: this process's id and a newline, replacing the file.
fn write_pid_file(path: PathBuf) -> Result<PathBuf, String> {
    match std::fs::write(&path, format!("{}\n", std::process::id())) {
        Ok(()) => Ok(path),
        Err(e) => Err(format!("server.pid_file: {}: {e}", path.display())),
    }
}

/// The rest of `serve`, once bound and the pid file written.
fn serve_prepared(
    options: ServerOptions,
    mut prepared: crate::server::Prepared,
    quick_start: bool,
) -> ExitCode {
    // The PAM helper stays root (pam_unix reads /etc/shadow), so it starts
    // before the drop.
    if let Some(pam) = options.auth.pam.as_ref().filter(|_| {
        options
            .auth
            .order
            .contains(&crate::options::BackendKind::Pam)
    }) {
        if let Err(e) = crate::auth::pam::client::start(pam.workers) {
            crate::logging::fatal(&e);
            return ExitCode::FAILURE;
        }
    }
    let how = match drop_privileges(&options, quick_start) {
        Ok(how) => how,
        Err(e) => {
            crate::logging::fatal(&e);
            return ExitCode::FAILURE;
        }
    };
    // A reload reads these again as the user the server now is.
    let now = match how {
        crate::rootcheck::RunAs::Configured => options.run_as.clone(),
        crate::rootcheck::RunAs::Nobody => crate::privdrop::resolve("nobody", None).ok(),
        crate::rootcheck::RunAs::Unprivileged | crate::rootcheck::RunAs::Root => None,
    };
    for w in now
        .iter()
        .flat_map(|id| super::check::unreadable_for_reload(&options, id))
    {
        tracing::warn!("{w}");
    }
    // The hooks' programs run as the user the server now is.
    let unrunnable = crate::events::runnable::unrunnable(
        &options.events,
        &crate::events::runnable::Who::current(),
    );
    if !unrunnable.is_empty() {
        for p in unrunnable {
            crate::logging::fatal(&p);
        }
        return ExitCode::FAILURE;
    }
    let report = prepared.check_roots(&options, how);
    if !report.problems.is_empty() {
        for p in report.problems {
            crate::logging::fatal(&p);
        }
        return ExitCode::FAILURE;
    }
    for w in report.warnings {
        tracing::warn!("{w}");
    }
    // Uploads and MKD create with 0666 and 0777, less this.
    set_umask(options.umask);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::logging::fatal(&format_args!("cannot start the runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let served = rt.block_on(crate::server::serve(options, prepared));
    // After a drain: what is left (a blocking upload pump, the metrics
    // listener) gets a moment, not a hang.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            crate::logging::fatal(&e);
            ExitCode::FAILURE
        }
    }
}

/// Set the process umask (`server.umask`). Only `serve` sets it: other
/// commands keep the one they were started with.
pub(super) fn set_umask(mask: u32) {
    #[cfg(target_os = "linux")]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(mask & 0o777));
    #[cfg(not(target_os = "linux"))]
    let _ = mask;
}

/// Started as root: become `server.user`, or stay root if
/// `server.allow_root` says so, or refuse. Without a config file, root
/// becomes `nobody` (the served directory stays readable through the handle
/// opened before). Says which of these happened.
pub(super) fn drop_privileges(
    options: &ServerOptions,
    quick_start: bool,
) -> Result<crate::rootcheck::RunAs, String> {
    use crate::privdrop;
    use crate::rootcheck::RunAs;
    if !privdrop::is_root() {
        return match &options.run_as {
            Some(id) => Err(format!(
                "server.user = {:?} needs the server to be started as root",
                id.user
            )),
            None => Ok(RunAs::Unprivileged),
        };
    }
    let (target, how) = match (&options.run_as, options.allow_root) {
        (Some(id), _) => (id.clone(), RunAs::Configured),
        (None, true) => {
            tracing::warn!("serving as root (server.allow_root = true)");
            return Ok(RunAs::Root);
        }
        (None, false) if quick_start => (privdrop::resolve("nobody", None)?, RunAs::Nobody),
        (None, false) => return Err(super::check::ROOT_WITHOUT_USER.into()),
    };
    if let Some(dir) = &options.events.spool_dir {
        // Written by the server's user after the drop.
        crate::events::prepare_spool(dir, target.uid, target.gid)?;
    }
    if let Some(a) = options.tls.as_ref().and_then(|t| t.acme.as_ref()) {
        // The account key and the certificates, written after the drop.
        crate::tls::acme::prepare_state_dir(&a.state_dir, target.uid, target.gid)?;
    }
    privdrop::drop_to(&target)?;
    tracing::info!(
        user = %target.user,
        uid = target.uid,
        gid = target.gid,
        "running as this user after binding"
    );
    Ok(how)
}

/// For `check-config` run as root with `server.user`: the start-up check
/// of the root directories ([`crate::rootcheck`]), as `serve` will make
/// it after the switch, on a thread that has become that user. Run
/// otherwise, the user who runs `check-config` tells nothing about the
/// one the server will run as, and the roots are not checked.
pub(super) fn check_roots_as_server_user(options: &ServerOptions) -> crate::rootcheck::Report {
    let Some(id) = options
        .run_as
        .as_ref()
        .filter(|_| crate::privdrop::is_root())
    else {
        return Default::default();
    };
    let mut roots = crate::server::open_roots(options);
    let check = || {
        let open = |d: &std::path::Path| crate::server::open_root(d, options);
        crate::rootcheck::check(
            options,
            &mut roots,
            open,
            crate::rootcheck::RunAs::Configured,
        )
    };
    crate::privdrop::on_thread_as(id, check).unwrap_or_else(|e| crate::rootcheck::Report {
        problems: vec![e],
        warnings: Vec::new(),
    })
}
