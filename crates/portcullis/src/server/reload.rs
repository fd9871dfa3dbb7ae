//! SIGHUP: the whole config file read again and validated as
//! `check-config` does; a file that does not validate is logged and the
//! running config stays. A good one becomes the [`Live`] config that new
//! sessions start with: users, passwords, permissions, anonymous access,
//! limits and bans, passive and active settings, timeouts, TLS (options
//! and certificate), `[proxy_protocol]` (also for the connections the
//! single passive port accepts from now on), `[events]` (the hooks: see
//! `events::hooks::Hooks::plan`; every session's next event, the running
//! ones' included, goes to the new hooks). Sessions already running
//! keep the config, and the account, they started with until they end.
//!
//! What was made before the privilege drop cannot be made again: the
//! listeners (`server.listen`, `tls.implicit_listen`, `metrics.listen`),
//! the xferlog, the log format, `server.user`, `umask` and the upload
//! policies, and the server-wide rates stay as they were started; a change
//! to any of them is logged as needing a restart.

use super::*;

/// The config new sessions start with, replaced by a reload.
#[derive(Debug)]
pub struct Live {
    current: arc_swap::ArcSwap<Shared>,
    /// Stops the passive-address refresher of the config replaced last.
    refresher: std::sync::Mutex<tokio_util::sync::CancellationToken>,
    /// One reload at a time (SIGHUP and the control API's may meet): each
    /// starts from the config the one before it made, so that the hooks it
    /// keeps are running ones, not ones the other just retired.
    reloading: tokio::sync::Mutex<()>,
}

impl Live {
    pub fn new(shared: Arc<Shared>) -> Self {
        Live {
            current: arc_swap::ArcSwap::new(shared),
            refresher: Default::default(),
            reloading: Default::default(),
        }
    }

    /// The config a session starting now gets.
    pub fn get(&self) -> Arc<Shared> {
        self.current.load_full()
    }

    fn set(&self, shared: Arc<Shared>) {
        self.current.store(shared);
    }

    /// Resolve a host-name passive address now, then keep it fresh until
    /// the config it belongs to is replaced.
    pub(super) async fn refresh_addresses(&self, shared: &Shared) {
        let a = shared.advertiser.clone();
        if a.host().is_none() {
            return;
        }
        a.refresh().await;
        let stop = tokio_util::sync::CancellationToken::new();
        let old = std::mem::replace(
            &mut *self.refresher.lock().unwrap_or_else(|p| p.into_inner()),
            stop.clone(),
        );
        old.cancel();
        let every = shared.options.passive.address_refresh;
        tokio::spawn(async move {
            tokio::select! {
                _ = async { tokio::time::sleep(every).await; a.refresh_every(every).await } => {}
                _ = stop.cancelled() => {}
            }
        });
    }
}

/// A reload (SIGHUP or the control API's) as a whole: refused during
/// the drain; systemd told RELOADING=1 then READY=1; the outcome logged
/// and reported as an event.
pub(crate) async fn reload_now(live: &Live) -> Result<Reloaded, String> {
    let _one_at_a_time = live.reloading.lock().await;
    let lifecycle = live.get().lifecycle.clone();
    if lifecycle.phase() != crate::lifecycle::Phase::Serving {
        // No new sessions will use it, and READY=1 would tell
        // systemd the opposite of the STOPPING=1 it was sent.
        warn!("reload during the drain: not reloaded");
        return Err("the server is draining: not reloaded".into());
    }
    lifecycle.reloading();
    let done = reload(live).await;
    if let Err(e) = &done {
        error!(error = %e, "config reload failed; keeping the running config");
    }
    live.get()
        .events
        .emit(crate::events::Event::ConfigReload { ok: done.is_ok() });
    // Done, taken or not: serving again (a failed reload keeps
    // the running config, which still serves).
    lifecycle.ready();
    done
}

/// What a reload did: the settings it changed, and those changed in the
/// file that only a restart applies.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Reloaded {
    pub changed: Vec<&'static str>,
    pub restart: Vec<&'static str>,
}

/// Read the config file again and make it the live one. `Err` with every
/// problem when it does not validate (the running config stays).
pub(super) async fn reload(live: &Live) -> Result<Reloaded, String> {
    let old = live.get();
    let Some(path) = old.options.config_file.clone() else {
        // Started without a file (`serve --root`): only the certificate.
        return match &old.tls {
            Some(t) => t
                .reload()
                .map(|()| {
                    info!("TLS certificate reloaded");
                    Reloaded {
                        changed: vec!["tls.cert"],
                        restart: Vec::new(),
                    }
                })
                .map_err(|e| format!("TLS certificate: {e}")),
            None => Err("started without a config file: nothing to reload".into()),
        };
    };
    if let Err(e) = std::fs::File::open(&path) {
        if e.kind() == std::io::ErrorKind::PermissionDenied {
            let who = old
                .options
                .run_as
                .as_ref()
                .map_or("the server's user".to_owned(), |id| {
                    format!("user {}", id.user)
                });
            return Err(format!(
                "{}: {e}: after the privilege drop the file is read as {who}, \
                 who must be able to read it",
                path.display()
            ));
        }
    }
    let (mut new, warnings) = crate::config::load(&path, &super::SystemChecks)
        .map_err(|e| format!("{}: {}", path.display(), e.0.join("; ")))?;
    for w in warnings {
        warn!("{w}");
    }
    // A port below 1024 asked for now could not be bound after the drop.
    let low = new
        .listen
        .iter()
        .any(|a| a.port() < 1024 && !old.options.listen.contains(a));
    let restart = keep_start_settings(&old.options, &mut new);
    for &key in &restart {
        let hint = (key == "server.listen" && low)
            .then_some("ports below 1024 are bound only at start, with its privileges");
        warn!(
            key,
            hint, "changed in the config file: takes effect at the next restart"
        );
    }
    if new.tls.is_none() && implicit_listeners(&old.options) {
        return Err(
            "tls: cannot be turned off while implicit-TLS listeners are open; \
                    restart to remove them"
                .into(),
        );
    }
    let tls = match (&new.tls, &old.tls) {
        // ACME's task installs its renewals into the resolver made at start.
        (Some(t), Some(o)) if t.acme.is_some() => Some(Arc::new(
            TlsContext::with_resolver(t.clone(), o.resolver().clone())
                .map_err(|e| format!("tls: {e}"))?,
        )),
        (Some(t), _) => Some(Arc::new(
            TlsContext::new(t.clone()).map_err(|e| format!("tls: {e}"))?,
        )),
        (None, _) => None,
    };
    // Everything that can fail comes before anything shared changes: a
    // reload refused here leaves the running limits and bans as they are.
    let auth = crate::auth::build(&new)?;
    // The hooks' programs run as the user the server now is.
    let unrunnable =
        crate::events::runnable::unrunnable(&new.events, &crate::events::runnable::Who::current());
    if !unrunnable.is_empty() {
        return Err(unrunnable.join("; "));
    }
    let hooks = match &old.hooks {
        Some(h) => Some((h.clone(), h.plan(&new.events)?)),
        None => None,
    };
    let rates_differ = old.guard.reconfigure(new.limits.clone());
    if rates_differ {
        warn!(
            key = "limits.download_rate, limits.upload_rate",
            "changed in the config file: takes effect at the next restart"
        );
    }
    // A root the server's user cannot open now is refused at login; say
    // so at once (after the privilege drop, every directory above a root
    // must be searchable by that user).
    let roots = new
        .anonymous
        .iter()
        .map(|a| ("anonymous.root".to_owned(), &a.root))
        .chain(
            new.users
                .iter()
                .enumerate()
                .map(|(i, u)| (format!("users[{i}].root"), &u.root)),
        );
    for (key, root) in roots {
        if let Err(e) = old.storage.open(root) {
            warn!(
                key = %key,
                root = %root,
                error = %e,
                "cannot be opened by the server's user; that user's logins will fail"
            );
        }
    }
    let mut restart = restart;
    if rates_differ {
        restart.extend(["limits.download_rate", "limits.upload_rate"]);
    }
    let changed = changed_sections(&old.options, &new);
    let proxy_data = new.proxy.clone().filter(|p| p.data).map(Arc::new);
    // A quota changed in the file applies to the next write of the
    // sessions already logged in (LDAP and PAM accounts: at their next
    // login, which reads it again).
    for u in &new.users {
        old.quotas.set_limits(&u.name, u.policy.quota);
    }
    if let Some(a) = &new.anonymous {
        old.quotas.set_limits("anonymous", a.quota);
    }
    let shared = Arc::new(Shared {
        advertiser: Arc::new(crate::data::Advertiser::new(&new.passive)),
        auth,
        ports: old.ports.resized(new.passive.ports.clone()),
        guard: old.guard.clone(),
        events: old.events.clone(),
        tls,
        storage: old.storage.clone(),
        lifecycle: old.lifecycle.clone(),
        proxy_data,
        // Its listener was bound at start: passive.single_port needs a restart.
        single_port: old.single_port.clone(),
        // One for the process; its hooks follow the new file (installed
        // below). The node's name names the process.
        node: old.node.clone(),
        hooks: old.hooks.clone(),
        quotas: old.quotas.clone(),
        registry: old.registry.clone(),
        cluster: old.cluster.clone(),
        options: new,
    });
    if let Some(sp) = &shared.single_port {
        // Its listener stays; whom it believes follows the new file.
        sp.set_proxy(shared.proxy_data.clone());
    }
    live.refresh_addresses(&shared).await;
    if let Some((h, plan)) = hooks {
        // New and changed hooks hear the events from now on, those of
        // sessions already running included; the replaced ones deliver
        // what they hold.
        h.install(plan);
    }
    live.set(shared);
    info!(path = %path.display(), "config reloaded: new sessions use it");
    Ok(Reloaded { changed, restart })
}

/// The parts of the config that a reload changes, by section (compared
/// as their debug form: every option type has one).
fn changed_sections(old: &ServerOptions, new: &ServerOptions) -> Vec<&'static str> {
    let mut changed = Vec::new();
    macro_rules! cmp {
        ($key:literal, $($field:ident),+) => {
            if $(format!("{:?}", old.$field) != format!("{:?}", new.$field))||+ {
                changed.push($key);
            }
        };
    }
    cmp!(
        "server",
        idle_timeout,
        login_timeout,
        banner,
        failed_login_delay,
        shutdown_grace,
        node_name
    );
    cmp!("passive", passive);
    cmp!("active", active);
    cmp!("anonymous", anonymous);
    cmp!("users", users);
    cmp!("auth", auth);
    cmp!("tls", tls);
    cmp!("limits", limits);
    cmp!("proxy_protocol", proxy);
    // Compared with the hooks' secrets and headers, which their debug
    // form hides.
    if old.events != new.events {
        changed.push("events");
    }
    changed
}

fn implicit_listeners(o: &ServerOptions) -> bool {
    o.tls
        .as_ref()
        .is_some_and(|t| !t.implicit_listen.is_empty())
}

/// Put back into `new` what only a restart can change, and say which of
/// those the file changed.
fn keep_start_settings(old: &ServerOptions, new: &mut ServerOptions) -> Vec<&'static str> {
    let mut changed = Vec::new();
    macro_rules! keep {
        ($key:literal, $($field:ident).+) => {
            if new.$($field).+ != old.$($field).+ {
                changed.push($key);
                new.$($field).+ = old.$($field).+.clone();
            }
        };
    }
    keep!("server.listen", listen);
    keep!("metrics.listen", metrics);
    keep!("log", log);
    keep!("server.user", run_as);
    keep!("server.allow_root", allow_root);
    keep!("server.umask", umask);
    keep!("server.atomic_uploads", atomic_uploads);
    keep!("server.fsync_uploads", fsync_uploads);
    keep!("control", control);
    keep!("cluster", cluster);
    keep!("server.pid_file", pid_file);
    // Object stores are reached through the storage factory made at start.
    let stores = old.stores.changed(&new.stores);
    if !stores.is_empty() {
        changed.extend(stores);
        new.stores = old.stores.clone();
    }
    // The single port's listener is bound at start, and a range cannot
    // replace it (or it a range) without one.
    let single = |o: &ServerOptions| {
        (
            o.passive.single_port,
            o.passive.single_port.map(|_| o.passive.ports.clone()),
        )
    };
    if single(new) != single(old) {
        changed.push("passive.single_port");
        new.passive.single_port = old.passive.single_port;
        new.passive.ports = old.passive.ports.clone();
    }
    let implicit = |o: &ServerOptions| {
        o.tls
            .as_ref()
            .map(|t| t.implicit_listen.clone())
            .unwrap_or_default()
    };
    // `[tls.acme]` is one task started with the server, which owns the
    // certificate files and the challenge listener.
    let acme = |o: &ServerOptions| o.tls.as_ref().map(|t| t.acme.clone());
    if acme(new) != acme(old) && new.tls.is_some() && old.tls.is_some() {
        changed.push("tls.acme");
        if let (Some(t), Some(o)) = (&mut new.tls, &old.tls) {
            t.acme = o.acme.clone();
            t.cert = o.cert.clone();
            t.key = o.key.clone();
        }
    }
    if implicit(new) != implicit(old) {
        changed.push("tls.implicit_listen");
        let kept = implicit(old);
        if let Some(t) = &mut new.tls {
            t.implicit_listen = kept;
        }
    }
    changed
}

/// SIGHUP, for as long as the server runs. The handler is installed
/// before the banner ([`hangups`]), so that a SIGHUP sent once the server
/// listens never meets the default action (which ends the process).
pub(super) fn reload_on_sighup(live: Arc<Live>, hangups: Hangups) {
    #[cfg(unix)]
    if let Some(mut hup) = hangups.0 {
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                info!("SIGHUP: reloading the config");
                let _ = reload_now(&live).await;
            }
        });
    }
    #[cfg(not(unix))]
    let _ = (live, hangups);
}

/// The SIGHUP stream, made before the banner.
pub(super) struct Hangups(#[cfg(unix)] Option<tokio::signal::unix::Signal>);

pub(super) fn hangups() -> Hangups {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        Hangups(
            signal(SignalKind::hangup())
                .map_err(|e| error!(error = %e, "cannot handle SIGHUP (reload)"))
                .ok(),
        )
    }
    #[cfg(not(unix))]
    Hangups()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_settings_are_kept_and_named() {
        let old = ServerOptions::with_anonymous_root(PathBuf::from("/srv"));
        let mut new = old.clone();
        new.listen = vec!["127.0.0.1:21".parse().unwrap()];
        new.umask = 0o077;
        new.metrics = Some("127.0.0.1:9121".parse().unwrap());
        new.idle_timeout = std::time::Duration::from_secs(5);
        new.banner = "new".into();
        let changed = keep_start_settings(&old, &mut new);
        assert_eq!(changed, ["server.listen", "metrics.listen", "server.umask"]);
        assert_eq!(new.listen, old.listen);
        assert_eq!(new.umask, old.umask);
        assert_eq!(new.metrics, None);
        // The rest is taken.
        assert_eq!(new.idle_timeout, std::time::Duration::from_secs(5));
        assert_eq!(new.banner, "new");
        let mut same = old.clone();
        assert!(keep_start_settings(&old, &mut same).is_empty());
    }
}
