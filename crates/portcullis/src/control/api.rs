//! The control API's routes: one request in (method, path, body), one
//! JSON answer out. Errors are `{"error": "..."}` with a 4xx or 5xx
//! status. [`ROUTES`] lists them; the OpenAPI file
//! (`docs/src/reference/control-api.yaml`) documents each, and a test
//! keeps the two in step.

use std::net::IpAddr;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Response, StatusCode};
use serde::Deserialize;

use super::Handle;
use crate::events::{ControlAction, Event, SessionId};
use crate::lifecycle::Phase;

/// Every route: method and path, `{name}` for a path parameter.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/status"),
    ("GET", "/v1/sessions"),
    ("POST", "/v1/sessions/{id}/kick"),
    ("POST", "/v1/sessions/kick"),
    ("GET", "/v1/bans"),
    ("POST", "/v1/bans"),
    ("DELETE", "/v1/bans/{address}"),
    ("POST", "/v1/reload"),
    ("POST", "/v1/drain"),
    ("GET", "/v1/quotas"),
    ("POST", "/v1/quotas/rescan"),
];

/// The longest ban the API sets (a year): longer is a typo.
const MAX_BAN: Duration = Duration::from_secs(366 * 24 * 3600);

/// `POST /v1/bans`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BanRequest {
    address: IpAddr,
    /// A duration ("1h", "30m").
    #[serde(rename = "for")]
    time: String,
}

/// `POST /v1/sessions/kick`, `POST /v1/quotas/rescan`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct KickUser {
    user: String,
}

/// One account's quota usage as `GET /v1/quotas` answers it.
fn quota_json(u: crate::quota::AccountUsage) -> serde_json::Value {
    use crate::quota::ScanState;
    let (state, error) = match u.state {
        ScanState::Counting => ("counting", None),
        ScanState::Ready => ("ready", None),
        ScanState::Failed(e) => ("failed", Some(e)),
    };
    serde_json::json!({
        "user": u.user,
        "root": u.root,
        "quota_bytes": u.limits.bytes,
        "quota_files": u.limits.files,
        "bytes": u.usage.bytes,
        "files": u.usage.files,
        "reserved_bytes": u.usage.reserved_bytes,
        "reserved_files": u.usage.reserved_files,
        "state": state,
        "error": error,
    })
}

/// The answer to one request; `who` names the caller in audit lines.
pub async fn answer(
    method: &Method,
    path: &str,
    body: &[u8],
    h: &Handle,
    who: &str,
) -> Response<Full<Bytes>> {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    match (method.as_str(), parts.as_slice()) {
        ("GET", ["v1", "status"]) => json(StatusCode::OK, &status(h).await),
        ("GET", ["v1", "sessions"]) => json(StatusCode::OK, &h.sessions.list().await),
        ("POST", ["v1", "sessions", "kick"]) => {
            let req: KickUser = match parse(body) {
                Ok(r) => r,
                Err(e) => return *e,
            };
            let k = h.sessions.kick_user(&req.user).await;
            audit(
                h,
                who,
                ControlAction::KickUser {
                    user: &req.user,
                    sessions: k.kicked,
                },
            );
            json(StatusCode::OK, &k)
        }
        ("POST", ["v1", "sessions", id, "kick"]) => {
            let Some(sid) = SessionId::parse(id) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("{id:?} is not a session id (16 hex digits)"),
                );
            };
            let k = h.sessions.kick(sid).await;
            if k.kicked == 0 {
                let why = k
                    .coverage
                    .note
                    .map(|n| format!(" ({n})"))
                    .unwrap_or_default();
                return error(StatusCode::NOT_FOUND, format!("no session {id}{why}"));
            }
            audit(h, who, ControlAction::Kick { session: sid });
            json(StatusCode::OK, &k)
        }
        ("GET", ["v1", "bans"]) => {
            let exempt: Vec<String> = h
                .guard
                .options()
                .ban_exempt
                .iter()
                .map(ToString::to_string)
                .collect();
            json(
                StatusCode::OK,
                &serde_json::json!({ "bans": h.guard.bans(), "exempt": exempt }),
            )
        }
        ("POST", ["v1", "bans"]) => {
            let req: BanRequest = match parse(body) {
                Ok(r) => r,
                Err(e) => return *e,
            };
            let time = match humantime::parse_duration(&req.time) {
                Ok(t) if !t.is_zero() && t <= MAX_BAN => t,
                _ => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        format!(
                            "for: {:?} is not a duration between 1s and 366d (e.g. \"1h\")",
                            req.time
                        ),
                    )
                }
            };
            if let Err(e) = h.guard.ban(req.address, time).await {
                return error(StatusCode::CONFLICT, e);
            }
            audit(
                h,
                who,
                ControlAction::Ban {
                    address: req.address,
                    secs: time.as_secs(),
                },
            );
            json(
                StatusCode::OK,
                &serde_json::json!({ "banned": req.address, "secs": time.as_secs() }),
            )
        }
        ("DELETE", ["v1", "bans", address]) => {
            let Ok(ip) = address.parse::<IpAddr>() else {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("{address:?} is not an IP address"),
                );
            };
            if !h.guard.unban(ip).await {
                return error(StatusCode::NOT_FOUND, format!("{ip} is not banned"));
            }
            audit(h, who, ControlAction::Unban { address: ip });
            json(StatusCode::OK, &serde_json::json!({ "unbanned": ip }))
        }
        ("POST", ["v1", "reload"]) => match (h.reload)().await {
            Ok((changed, restart)) => {
                let (c, r) = (changed.join(","), restart.join(","));
                audit(
                    h,
                    who,
                    ControlAction::Reload {
                        outcome: Ok((&c, &r)),
                    },
                );
                json(
                    StatusCode::OK,
                    &serde_json::json!({ "reloaded": true, "changed": changed, "restart": restart }),
                )
            }
            Err(e) => {
                audit(h, who, ControlAction::Reload { outcome: Err(&e) });
                error(StatusCode::CONFLICT, e)
            }
        },
        ("POST", ["v1", "drain"]) => {
            audit(h, who, ControlAction::Drain);
            h.lifecycle.advance(Phase::Closing);
            json(
                StatusCode::OK,
                &serde_json::json!({ "phase": phase_name(h.lifecycle.phase()) }),
            )
        }
        ("GET", ["v1", "quotas"]) => {
            let list: Vec<_> = h
                .quotas
                .usage_now(None)
                .await
                .into_iter()
                .map(quota_json)
                .collect();
            json(StatusCode::OK, &serde_json::json!({ "quotas": list }))
        }
        ("POST", ["v1", "quotas", "rescan"]) => {
            let req: KickUser = match parse(body) {
                Ok(r) => r,
                Err(e) => return *e,
            };
            let roots = h.quotas.rescan(&req.user);
            if roots == 0 {
                return error(
                    StatusCode::NOT_FOUND,
                    format!(
                        "{:?} is not counted on this node (no quota, or no login since the start)",
                        req.user
                    ),
                );
            }
            audit(
                h,
                who,
                ControlAction::QuotaRescan {
                    user: &req.user,
                    roots,
                },
            );
            json(
                StatusCode::OK,
                &serde_json::json!({ "user": req.user, "rescans": roots }),
            )
        }
        _ if ROUTES.iter().any(|(_, p)| matches(p, &parts)) => error(
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not allowed on {path}"),
        ),
        _ => error(
            StatusCode::NOT_FOUND,
            format!("no such route: {path} (see /v1/status)"),
        ),
    }
}

/// The audit event of a change.
fn audit(h: &Handle, who: &str, action: ControlAction<'_>) {
    h.events.emit(Event::Control { who, action });
}

/// Does a route's pattern match the path's parts?
fn matches(pattern: &str, parts: &[&str]) -> bool {
    let p: Vec<&str> = pattern.split('/').skip(1).collect();
    p.len() == parts.len()
        && p.iter()
            .zip(parts)
            .all(|(a, b)| a.starts_with('{') || a == b)
}

async fn status(h: &Handle) -> serde_json::Value {
    let (sessions, transfers) = (h.counts)();
    serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "features": features(),
        "node": &*h.node,
        "uptime_secs": h.started.elapsed().as_secs(),
        "phase": phase_name(h.lifecycle.phase()),
        "listeners": h.listeners,
        "sessions": sessions,
        "transfers": transfers,
        "bans": h.guard.bans().len(),
        "certificate": (h.certificate)(),
        "cluster": cluster_status(h).await,
    })
}

/// `[cluster]`'s state: `null` without one. `nodes`: the live nodes'
/// names, `null` while Redis is down.
async fn cluster_status(h: &Handle) -> serde_json::Value {
    let Some(c) = &h.cluster else {
        return serde_json::Value::Null;
    };
    let nodes = c.nodes().await.ok();
    serde_json::json!({
        "node": c.node(),
        "nodes": nodes,
        "redis": if c.is_up() { "up" } else { "down" },
        "since": humantime::format_rfc3339_seconds(c.since()).to_string(),
        "failed_calls": c.errors(),
    })
}

fn features() -> Vec<&'static str> {
    let mut f = Vec::new();
    if cfg!(feature = "pam") {
        f.push("pam");
    }
    f
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Serving => "serving",
        Phase::Closing => "closing",
        Phase::Draining => "draining",
        Phase::Stopping => "stopping",
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Box<Response<Full<Bytes>>>> {
    serde_json::from_slice(body).map_err(|e| {
        Box::new(error(
            StatusCode::BAD_REQUEST,
            format!("bad JSON body: {e}"),
        ))
    })
}

pub(super) fn error_body(msg: &str) -> serde_json::Value {
    serde_json::json!({ "error": msg })
}

fn error(status: StatusCode, msg: String) -> Response<Full<Bytes>> {
    json(status, &error_body(&msg))
}

pub(super) fn json<T: serde::Serialize + ?Sized>(
    status: StatusCode,
    v: &T,
) -> Response<Full<Bytes>> {
    let mut body = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    body.push(b'\n');
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_their_paths_only() {
        assert!(matches(
            "/v1/sessions/{id}/kick",
            &["v1", "sessions", "ab", "kick"]
        ));
        assert!(!matches(
            "/v1/sessions/{id}/kick",
            &["v1", "sessions", "ab"]
        ));
        assert!(matches("/v1/bans", &["v1", "bans"]));
        assert!(!matches("/v1/bans", &["v2", "bans"]));
    }

    /// The OpenAPI file documents exactly the routes served.
    #[test]
    fn the_openapi_file_lists_every_route() {
        const SPEC: &str = include_str!("../../../../docs/src/reference/control-api.yaml");
        let mut documented = std::collections::BTreeSet::new();
        let mut path = None;
        for line in SPEC.lines() {
            if let Some(p) = line.strip_prefix("  /").and_then(|l| l.strip_suffix(':')) {
                path = Some(format!("/{p}"));
            } else if let (Some(p), Some(m)) = (
                &path,
                line.strip_prefix("    ").and_then(|l| l.strip_suffix(':')),
            ) {
                if ["get", "post", "delete", "put"].contains(&m) {
                    documented.insert((m.to_uppercase(), p.clone()));
                }
            } else if !line.starts_with(' ') && !line.is_empty() {
                path = None;
            }
        }
        let served: std::collections::BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
            .collect();
        assert_eq!(documented, served);
    }
}
