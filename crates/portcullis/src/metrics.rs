//! Metrics: a sink of [`crate::events`] that counts what happens into a
//! Prometheus registry, rendered in the Prometheus text format by the HTTP
//! listener of `[metrics] listen` ([`http`], which also answers `/health`
//! and `/ready`).
//!
//! Every label value comes from a fixed set: verbs from the verb table (a
//! line that did not parse, or a verb not in the table, counts as `other`),
//! reply classes, refusal reasons, login outcomes, storage error kinds,
//! listener kinds, directions, modes and yes/no flags. User names, paths
//! and addresses never become labels, so a client cannot grow the series.

pub mod http;

use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::endpoints::Listener;
use crate::events::{storage_kind, Direction, Event, EventSink, LoginFailure};
use crate::limits::Refusal;

/// Every series the server exports, and the registry that renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    sessions: IntGaugeVec,
    sessions_total: IntCounterVec,
    sessions_ended: IntCounterVec,
    logins: IntCounterVec,
    bans: IntCounterVec,
    refusals: IntCounterVec,
    commands: IntCounterVec,
    transfers: IntCounterVec,
    sent: IntCounterVec,
    received: IntCounterVec,
    duration: HistogramVec,
    passive_in_use: IntGauge,
    passive_exhausted: IntCounter,
    storage_errors: IntCounterVec,
    reloads: IntCounterVec,
    hook_events: IntCounterVec,
    reload_ok: IntGauge,
    /// `tls_certificate_expiry_seconds`, read at each scrape from the source
    /// that `server.rs` gives when TLS is on.
    cert_expiry: std::sync::OnceLock<CertExpiry>,
    /// `cluster_redis_up` and `cluster_redis_failed_calls_total`, read at
    /// each scrape when `[cluster]` is set.
    cluster: std::sync::OnceLock<ClusterHealth>,
}

/// Whether the cluster's Redis answers, and its failed calls so far.
pub type ClusterSource = Box<dyn Fn() -> (bool, u64) + Send + Sync>;

struct ClusterHealth {
    up: IntGauge,
    failed: IntCounter,
    source: ClusterSource,
}

impl std::fmt::Debug for ClusterHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterHealth")
            .field("up", &self.up)
            .finish_non_exhaustive()
    }
}

/// Seconds until the served certificate expires, if one is served.
pub type ExpirySource = Box<dyn Fn() -> Option<f64> + Send + Sync>;

struct CertExpiry(prometheus::Gauge, ExpirySource);

impl std::fmt::Debug for CertExpiry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CertExpiry").field(&self.0).finish()
    }
}

/// Every login outcome, for the `outcome` label.
const LOGIN_OUTCOMES: [&str; 8] = [
    "ok",
    "credentials",
    "network",
    "tls_required",
    "client_cert",
    "home",
    "backend",
    "max_sessions",
];
const REFUSALS: [&str; 4] = ["denied", "banned", "server_full", "ip_full"];
const LISTENERS: [Listener; 2] = [Listener::Explicit, Listener::ImplicitTls];

/// Upper bounds of the transfer-duration buckets, in seconds: from a
/// small file on a LAN to a large one over a slow link.
const DURATION_BUCKETS: [f64; 12] = [
    0.005, 0.025, 0.1, 0.25, 1.0, 2.5, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("portcullis".into()), None)
            .expect("a constant, valid prefix");
        // The names and label names below are constants: registering them
        // cannot fail except by a programming error, caught by the tests.
        fn reg<T: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: T) -> T {
            r.register(Box::new(c.clone()))
                .expect("unique, valid metric names");
            c
        }
        let counters = |name: &str, help: &str, labels: &[&str]| {
            reg(
                &registry,
                IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric"),
            )
        };
        let build = reg(
            &registry,
            IntGaugeVec::new(
                Opts::new("build_info", "The running server's version (always 1)."),
                &["version"],
            )
            .expect("valid metric"),
        );
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let m = Metrics {
            sessions: reg(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "sessions",
                        "Control connections open now, by listener kind and \
                         whether the connection is TLS now.",
                    ),
                    &["listener", "tls"],
                )
                .expect("valid metric"),
            ),
            sessions_total: counters(
                "sessions_total",
                "Sessions started, by listener kind.",
                &["listener"],
            ),
            sessions_ended: counters(
                "sessions_ended_total",
                "Sessions ended, by listener kind and whether the control \
                 connection was TLS at the end.",
                &["listener", "tls"],
            ),
            logins: counters(
                "logins_total",
                "Login attempts, by outcome (ok or why it failed).",
                &["outcome"],
            ),
            bans: counters(
                "bans_total",
                "Client addresses banned, by reason.",
                &["reason"],
            ),
            refusals: counters(
                "refusals_total",
                "Connections turned away before their session (421), by reason.",
                &["reason"],
            ),
            commands: counters(
                "commands_total",
                "Commands answered, by verb (other: unknown or unparsable) and reply class.",
                &["verb", "class"],
            ),
            transfers: counters(
                "transfers_total",
                "Transfers (files and listings) finished or failed.",
                &["verb", "direction", "mode", "tls", "outcome"],
            ),
            sent: counters(
                "sent_bytes_total",
                "Bytes sent on data connections (downloads and listings).",
                &["mode", "tls"],
            ),
            received: counters(
                "received_bytes_total",
                "Bytes received on data connections (uploads).",
                &["mode", "tls"],
            ),
            duration: reg(
                &registry,
                HistogramVec::new(
                    HistogramOpts::new(
                        "transfer_duration_seconds",
                        "How long transfers took, from the transfer command to the end.",
                    )
                    .buckets(DURATION_BUCKETS.to_vec()),
                    &["direction"],
                )
                .expect("valid metric"),
            ),
            passive_in_use: reg(
                &registry,
                IntGauge::new(
                    "passive_ports_in_use",
                    "Passive ports held now (PASV or EPSV waiting for its transfer).",
                )
                .expect("valid metric"),
            ),
            passive_exhausted: reg(
                &registry,
                IntCounter::new(
                    "passive_ports_exhausted_total",
                    "PASV or EPSV answered 425 because no port of the range was free.",
                )
                .expect("valid metric"),
            ),
            storage_errors: counters(
                "storage_errors_total",
                "Storage operations that failed, by kind.",
                &["kind"],
            ),
            reloads: counters(
                "config_reloads_total",
                "SIGHUP reloads of the config file, by outcome (ok, failed).",
                &["outcome"],
            ),
            hook_events: counters(
                "hook_events_total",
                "Events of [[events.hooks]], by hook name and step (queued, \
                 delivered, retried, dropped).",
                &["hook", "step"],
            ),
            reload_ok: reg(
                &registry,
                IntGauge::new(
                    "config_last_reload_successful",
                    "1 unless the last reload failed (the running config is then older than the file).",
                )
                .expect("valid metric"),
            ),
            registry,
            cert_expiry: std::sync::OnceLock::new(),
            cluster: std::sync::OnceLock::new(),
        };
        m.reload_ok.set(1);
        for o in ["ok", "failed"] {
            m.reloads.with_label_values(&[o]).reset();
        }
        // The small fixed sets start at zero, so that rate() and alerts see
        // a series before its first event.
        for l in LISTENERS {
            for tls in ["yes", "no"] {
                m.sessions.with_label_values(&[l.label(), tls]).set(0);
            }
            m.sessions_total.with_label_values(&[l.label()]).reset();
        }
        for o in LOGIN_OUTCOMES {
            m.logins.with_label_values(&[o]).reset();
        }
        for r in REFUSALS {
            m.refusals.with_label_values(&[r]).reset();
        }
        m.bans.with_label_values(&["login_failures"]).reset();
        m
    }

    /// The text page of `/metrics`; `passive_in_use` is read at the scrape.
    pub fn render(&self, passive_in_use: usize) -> String {
        self.passive_in_use
            .set(i64::try_from(passive_in_use).unwrap_or(i64::MAX));
        if let Some(CertExpiry(g, source)) = self.cert_expiry.get() {
            // Before ACME's first certificate there is none: NaN, no value.
            g.set(source().unwrap_or(f64::NAN));
        }
        if let Some(c) = self.cluster.get() {
            let (up, failed) = (c.source)();
            c.up.set(i64::from(up));
            // A counter only goes up: add what the source counted since.
            c.failed.inc_by(failed.saturating_sub(c.failed.get()));
        }
        prometheus::TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# encoding failed: {e}\n"))
    }
}

/// Add one to the series of `vec` with `labels` (their number is fixed by
/// the code; a mismatch is skipped, never a panic).
fn inc(vec: &IntCounterVec, labels: &[&str]) {
    add(vec, labels, 1);
}

fn add(vec: &IntCounterVec, labels: &[&str], n: u64) {
    if let Ok(c) = vec.get_metric_with_label_values(labels) {
        c.inc_by(n);
    }
}

impl Metrics {
    /// Export `portcullis_tls_certificate_expiry_seconds`, asked of `source`
    /// at each scrape (the certificate that the next handshake gets, which
    /// a reload or an ACME renewal replaces). Once; later calls are ignored.
    pub fn certificate_expiry_from(&self, source: ExpirySource) {
        let Ok(g) = prometheus::Gauge::new(
            "tls_certificate_expiry_seconds",
            "Seconds until the certificate served to new TLS handshakes expires \
             (negative once expired; NaN before [tls.acme]'s first).",
        ) else {
            return;
        };
        if self.registry.register(Box::new(g.clone())).is_ok() {
            let _ = self.cert_expiry.set(CertExpiry(g, source));
        }
    }

    /// Export `portcullis_cluster_redis_up` (1 while the cluster's Redis
    /// answers) and `portcullis_cluster_redis_failed_calls_total`, asked of
    /// `source` at each scrape. Once; later calls are ignored.
    pub fn cluster_from(&self, source: ClusterSource) {
        let (Ok(up), Ok(failed)) = (
            IntGauge::new(
                "cluster_redis_up",
                "1 while the [cluster] Redis answers; 0 while this node serves from its own state.",
            ),
            IntCounter::new(
                "cluster_redis_failed_calls_total",
                "Calls to the [cluster] Redis that failed or timed out.",
            ),
        ) else {
            return;
        };
        if self.registry.register(Box::new(up.clone())).is_ok()
            && self.registry.register(Box::new(failed.clone())).is_ok()
        {
            let _ = self.cluster.set(ClusterHealth { up, failed, source });
        }
    }

    /// Every configured hook's four `portcullis_hook_events_total` series
    /// exported at 0 from the start, so that a rate or an alert on
    /// `dropped` has a series before the first drop.
    pub fn declare_hooks<'a>(&self, names: impl Iterator<Item = &'a str>) {
        use crate::events::HookStep as S;
        for name in names {
            for step in [S::Queued, S::Delivered, S::Retried, S::Dropped] {
                inc_by_zero(&self.hook_events, &[name, step.label()]);
            }
        }
    }

    /// `portcullis_sessions{listener, tls}` moved by `by`.
    fn open_sessions(&self, listener: &str, tls: bool, by: i64) {
        if let Ok(g) = self
            .sessions
            .get_metric_with_label_values(&[listener, yes_no(tls)])
        {
            g.add(by);
        }
    }
}

/// Makes the series exist without counting anything.
fn inc_by_zero(v: &IntCounterVec, labels: &[&str]) {
    if let Ok(c) = v.get_metric_with_label_values(labels) {
        c.inc_by(0);
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

/// The `verb` label: a verb of the table, or `other`.
fn verb_label(verb: &'static str) -> &'static str {
    portcullis_proto::verbs::lookup(verb).map_or("other", |v| v.name)
}

/// The `class` label of a reply code: "1xx" to "5xx", or "other".
fn class_label(code: u16) -> &'static str {
    match code / 100 {
        1 => "1xx",
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        5 => "5xx",
        _ => "other",
    }
}

fn refusal_label(r: &Refusal) -> &'static str {
    match r {
        Refusal::Denied => "denied",
        Refusal::Banned(_) => "banned",
        Refusal::ServerFull(_) => "server_full",
        Refusal::IpFull(_) => "ip_full",
    }
}

fn login_label(f: LoginFailure) -> &'static str {
    match f {
        LoginFailure::Credentials(_) => "credentials",
        LoginFailure::Network => "network",
        LoginFailure::TlsRequired => "tls_required",
        LoginFailure::ClientCert => "client_cert",
        LoginFailure::Home => "home",
        LoginFailure::Backend => "backend",
        LoginFailure::TooManySessions => "max_sessions",
    }
}

fn direction_label(d: Direction) -> &'static str {
    match d {
        Direction::Download => "download",
        Direction::Upload => "upload",
        Direction::Listing => "listing",
    }
}

impl EventSink for Metrics {
    fn event(&self, event: &Event<'_>) {
        match event {
            Event::Connected { listener, .. } => {
                let l = listener.label();
                // An implicit-TLS session starts after its handshake.
                let tls = *listener == Listener::ImplicitTls;
                self.open_sessions(l, tls, 1);
                inc(&self.sessions_total, &[l]);
            }
            Event::ControlTls { listener, on } => {
                self.open_sessions(listener.label(), !*on, -1);
                self.open_sessions(listener.label(), *on, 1);
            }
            Event::Ended {
                listener,
                tls,
                encrypted,
                ..
            } => {
                let l = listener.label();
                self.open_sessions(l, *encrypted, -1);
                inc(&self.sessions_ended, &[l, yes_no(*tls)]);
            }
            Event::Refused { reason, .. } => inc(&self.refusals, &[refusal_label(reason)]),
            Event::LoggedIn { .. } => inc(&self.logins, &["ok"]),
            Event::LoginFailed { reason, .. } => inc(&self.logins, &[login_label(*reason)]),
            Event::Banned { .. } => inc(&self.bans, &["login_failures"]),
            Event::Command { verb, code } => {
                inc(&self.commands, &[verb_label(verb), class_label(code.0)])
            }
            Event::PassivePortsExhausted => self.passive_exhausted.inc(),
            Event::Hook { hook, step, .. } => inc(&self.hook_events, &[hook, step.label()]),
            // Counted as commands.
            Event::FileOp { .. } | Event::Control { .. } => {}
            Event::ConfigReload { ok } => {
                inc(&self.reloads, &[if *ok { "ok" } else { "failed" }]);
                self.reload_ok.set(i64::from(*ok));
            }
            Event::Storage { error } => inc(&self.storage_errors, &[storage_kind(error)]),
            Event::Transfer(t) => {
                let mode = if t.passive { "passive" } else { "active" };
                let tls = yes_no(t.tls);
                let direction = direction_label(t.direction);
                let outcome = if t.outcome.is_ok() { "ok" } else { "failed" };
                inc(
                    &self.transfers,
                    &[verb_label(t.verb), direction, mode, tls, outcome],
                );
                let bytes = match t.direction {
                    Direction::Upload => &self.received,
                    Direction::Download | Direction::Listing => &self.sent,
                };
                add(bytes, &[mode, tls], t.bytes);
                if let Ok(h) = self.duration.get_metric_with_label_values(&[direction]) {
                    h.observe(t.duration.as_secs_f64());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
