//! `portcullis ctl`: the control API's client (`control.rs` is the
//! server side). The socket comes from `--socket`, or from the
//! `[control] socket` of `--config` (read as TOML, not validated: whoever
//! may use the socket need not be able to read the certificate's key), or
//! is the default path; or, with `--url https://HOST:PORT` and
//! `--token-file`, the TCP listener (`control.listen`) over TLS, trusting
//! `--ca-file` or the system's bundle. Tables for people, `--json` for scripts; a refusal
//! exits 1 with the server's message.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::Value;

/// How long one request may take (a reload reads and checks the config).
const TIMEOUT: Duration = Duration::from_secs(60);

/// `portcullis ctl ...`
#[derive(Debug, Args)]
pub struct CtlArgs {
    /// Config file whose `[control] socket` to use.
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// The control socket's path (default: the config's, else
    /// /run/portcullis/control.sock).
    #[arg(long, global = true, conflicts_with = "config")]
    pub socket: Option<PathBuf>,
    /// The TCP control listener instead of a socket: https://HOST:PORT.
    #[arg(long, global = true, conflicts_with_all = ["config", "socket"], requires = "token_file")]
    pub url: Option<String>,
    /// With --url: the file holding the bearer token (the token alone, or
    /// a `NAME TOKEN` line as in control.token_file).
    #[arg(long, global = true, requires = "url")]
    pub token_file: Option<PathBuf>,
    /// With --url: the CA certificates (PEM) to trust (default: the system's).
    #[arg(long, global = true, requires = "url")]
    pub ca_file: Option<PathBuf>,
    /// Print the server's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: CtlCmd,
}

/// What to ask the server.
#[derive(Debug, Subcommand)]
pub enum CtlCmd {
    /// List the sessions: id, node, user, client, since, idle time, command,
    /// transfer (with [cluster], every live node's).
    Sessions,
    /// Close a session (the client gets 421; a transfer in flight is cut,
    /// an upload not kept), or with --user every session of a user.
    Kick {
        /// The session's id (from `ctl sessions`).
        #[arg(required_unless_present = "user", conflicts_with = "user")]
        id: Option<String>,
        /// Kick every session logged in as this user.
        #[arg(long)]
        user: Option<String>,
    },
    /// List the bans in force (and limits.ban_exempt).
    Bans,
    /// Ban an address (its sessions to come are refused with 421).
    Ban {
        address: IpAddr,
        /// How long ("30m", "1h", "2d").
        #[arg(long = "for", default_value = "1h")]
        time: String,
    },
    /// Lift an address's ban.
    Unban { address: IpAddr },
    /// Reload the config file, as SIGHUP: says what changed and what needs a restart.
    Reload,
    /// Drain the server, as SIGTERM: stop accepting, let transfers finish.
    Drain,
    /// Version, features, uptime, phase, listeners, counts.
    Status,
    /// Add, change, disable, enable or delete a [[users]] entry of the
    /// config file (comments kept, validated before it is written), then
    /// ask the server to reload.
    #[command(subcommand)]
    User(super::user::UserCommand),
    /// Quota usage per account (bytes and files stored and reserved,
    /// limits), all or one user's; `ctl quota rescan USER` counts that
    /// user's root again (for files changed outside the server).
    #[command(args_conflicts_with_subcommands = true)]
    Quota {
        /// Only this user's.
        user: Option<String>,
        #[command(subcommand)]
        action: Option<QuotaCmd>,
    },
}

/// `ctl quota rescan USER`.
#[derive(Debug, Subcommand)]
pub enum QuotaCmd {
    /// Count the user's root again.
    Rescan { user: String },
}

/// Run one `ctl` command: one request, or for `ctl user` an edit of the
/// config file and then a reload (`cli/user.rs`, through [`send`]).
pub fn run(args: CtlArgs) -> ExitCode {
    let Some((method, path, body)) = request_for(&args.command) else {
        return match &args.command {
            CtlCmd::User(u) => super::user::run(u.clone(), &args),
            _ => ExitCode::FAILURE,
        };
    };
    match send(&args, method, &path, body) {
        Ok(v) => {
            print!("{}", render(&args.command, &v, args.json));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The one request a command is: method, path, JSON body (`None` for
/// `ctl user`, which edits the file first).
fn request_for(cmd: &CtlCmd) -> Option<(&'static str, String, Option<Value>)> {
    Some(match cmd {
        CtlCmd::Sessions => ("GET", "/v1/sessions".to_owned(), None),
        CtlCmd::Kick { id: Some(id), .. } => ("POST", format!("/v1/sessions/{id}/kick"), None),
        CtlCmd::Kick { user, .. } => (
            "POST",
            "/v1/sessions/kick".to_owned(),
            Some(serde_json::json!({ "user": user })),
        ),
        CtlCmd::Bans => ("GET", "/v1/bans".to_owned(), None),
        CtlCmd::Ban { address, time } => (
            "POST",
            "/v1/bans".to_owned(),
            Some(serde_json::json!({ "address": address, "for": time })),
        ),
        CtlCmd::Unban { address } => ("DELETE", format!("/v1/bans/{address}"), None),
        CtlCmd::Reload => ("POST", "/v1/reload".to_owned(), None),
        CtlCmd::Drain => ("POST", "/v1/drain".to_owned(), None),
        CtlCmd::Status => ("GET", "/v1/status".to_owned(), None),
        CtlCmd::Quota {
            action: Some(QuotaCmd::Rescan { user }),
            ..
        } => (
            "POST",
            "/v1/quotas/rescan".to_owned(),
            Some(serde_json::json!({ "user": user })),
        ),
        CtlCmd::Quota { .. } => ("GET", "/v1/quotas".to_owned(), None),
        CtlCmd::User(_) => return None,
    })
}

/// Send one request to the API that `args` names (socket or URL): the
/// answer's JSON, or the message to print (the server's, on a refusal).
pub(super) fn send(
    args: &CtlArgs,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<Value, String> {
    let target = match &args.url {
        Some(url) => tcp_target(url, args.token_file.as_deref(), args.ca_file.as_deref())
            .map(|t| Target::Tcp(Box::new(t)))?,
        None => Target::Socket(socket_path(args.socket.as_deref(), args.config.as_deref())?),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let (status, v) = rt
        .block_on(async {
            tokio::time::timeout(TIMEOUT, request(&target, method, path, body))
                .await
                .unwrap_or_else(|_| Err(format!("no answer within {} s", TIMEOUT.as_secs())))
        })
        .map_err(|e| format!("{}: {e}", target.name()))?;
    if !status.is_success() {
        let msg = v["error"].as_str().unwrap_or("(no message)");
        return Err(format!("{status}: {msg}"));
    }
    Ok(v)
}

/// `--socket`, else the config's `[control] socket`, else the default.
fn socket_path(socket: Option<&Path>, config: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(s) = socket {
        return Ok(s.to_owned());
    }
    let default = PathBuf::from(crate::options::DEFAULT_CONTROL_SOCKET);
    let Some(config) = config else {
        return Ok(default);
    };
    let text = std::fs::read_to_string(config)
        .map_err(|e| format!("--config {}: {e}", config.display()))?;
    let table: toml::Table =
        toml::from_str(&text).map_err(|e| format!("--config {}: {e}", config.display()))?;
    match table.get("control").and_then(|c| c.get("socket")) {
        None => Ok(default),
        Some(toml::Value::String(s)) if s.is_empty() => Err(format!(
            "--config {}: control.socket is \"\": the server has no control socket",
            config.display()
        )),
        Some(toml::Value::String(s)) => Ok(PathBuf::from(s)),
        Some(_) => Err(format!(
            "--config {}: control.socket is not a string",
            config.display()
        )),
    }
}

/// Where the API is.
enum Target {
    Socket(PathBuf),
    Tcp(Box<TcpTarget>),
}

/// The TCP listener: its URL, the token, the TLS client.
struct TcpTarget {
    url: hyper::Uri,
    token: String,
    tls: tokio_rustls::TlsConnector,
}

impl Target {
    fn name(&self) -> String {
        match self {
            Target::Socket(p) => p.display().to_string(),
            Target::Tcp(t) => t.url.to_string(),
        }
    }
}

/// `--url`, `--token-file`, `--ca-file`.
fn tcp_target(
    url: &str,
    token_file: Option<&Path>,
    ca_file: Option<&Path>,
) -> Result<TcpTarget, String> {
    let url: hyper::Uri = url.parse().map_err(|e| format!("--url {url}: {e}"))?;
    if url.scheme_str() != Some("https") || url.host().is_none() {
        return Err(format!(
            "--url {url}: must be https://HOST:PORT (the TCP control API is TLS only)"
        ));
    }
    let token_file = token_file.ok_or("--url needs --token-file")?;
    let text = std::fs::read_to_string(token_file)
        .map_err(|e| format!("--token-file {}: {e}", token_file.display()))?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .ok_or_else(|| format!("--token-file {}: no token in it", token_file.display()))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let token = if words.len() >= 2 { words[1] } else { words[0] };
    let config = crate::auth::http::client_config(ca_file, "--ca-file")?;
    Ok(TcpTarget {
        url,
        token: token.to_owned(),
        tls: tokio_rustls::TlsConnector::from(config),
    })
}

/// One request: the status and the JSON answer.
async fn request(
    target: &Target,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Result<(hyper::StatusCode, Value), String> {
    let socket = match target {
        Target::Socket(p) => p,
        Target::Tcp(t) => {
            let host = t.url.authority().map_or("localhost", |a| a.as_str());
            let req = hyper::Request::builder()
                .method(method)
                .uri(path)
                .header(hyper::header::HOST, host)
                .header(hyper::header::CONTENT_TYPE, "application/json")
                .header(hyper::header::AUTHORIZATION, format!("Bearer {}", t.token))
                .body(Full::new(Bytes::from(
                    body.map(|b| b.to_string()).unwrap_or_default(),
                )))
                .map_err(|e| e.to_string())?;
            let (status, bytes) =
                crate::auth::http::exchange_with(&t.url, Some(&t.tls), req).await?;
            let v = serde_json::from_slice(&bytes).map_err(|e| {
                format!(
                    "answer is not JSON ({e}): {}",
                    String::from_utf8_lossy(&bytes)
                )
            })?;
            return Ok((status, v));
        }
    };
    let stream = tokio::net::UnixStream::connect(socket).await.map_err(|e| {
        format!("cannot connect (is the server running, with [control] socket?): {e}")
    })?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, "localhost")
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let resp = sender.send_request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let v = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "answer is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    })?;
    Ok((status, v))
}

/// The answer for people (a table) or for scripts (JSON).
pub(super) fn render(cmd: &CtlCmd, v: &Value, json: bool) -> String {
    // `ctl quota USER`: only that user's rows.
    let quotas: Vec<Value> = match cmd {
        CtlCmd::Quota {
            user, action: None, ..
        } => v["quotas"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|q| user.as_ref().is_none_or(|u| q["user"].as_str() == Some(u)))
            .cloned()
            .collect(),
        _ => Vec::new(),
    };
    if json {
        let list = Value::Array(quotas.clone());
        let shown = match cmd {
            CtlCmd::Bans => &v["bans"],
            CtlCmd::Quota { action: None, .. } => &list,
            _ => v,
        };
        return format!(
            "{}\n",
            serde_json::to_string_pretty(shown).unwrap_or_default()
        );
    }
    let s = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_owned(),
        v => v.to_string(),
    };
    match cmd {
        CtlCmd::Sessions => {
            let rows = v["sessions"].as_array().cloned().unwrap_or_default();
            let mut t = vec![[
                "ID", "NODE", "USER", "CLIENT", "SINCE", "IDLE", "COMMAND", "TRANSFER",
            ]
            .map(str::to_owned)];
            for r in &rows {
                let transfer = match &r["transfer"] {
                    Value::Null => "-".to_owned(),
                    x => format!(
                        "{} {} {} B {} B/s",
                        s(&x["direction"]),
                        s(&x["path"]),
                        s(&x["bytes"]),
                        s(&x["rate"])
                    ),
                };
                t.push([
                    s(&r["id"]),
                    s(&r["node"]),
                    s(&r["user"]),
                    s(&r["client"]),
                    s(&r["since"]),
                    format!("{}s", s(&r["idle_secs"])),
                    s(&r["command"]),
                    transfer,
                ]);
            }
            let mut out = table(&t);
            out.push_str(&partial(v));
            out
        }
        CtlCmd::Bans => {
            let mut t = vec![["ADDRESS", "FAILURES", "UNTIL"].map(str::to_owned)];
            for b in v["bans"].as_array().into_iter().flatten() {
                t.push([s(&b["address"]), s(&b["failures"]), s(&b["until"])]);
            }
            let mut out = table(&t);
            if let Some(ex) = v["exempt"].as_array().filter(|e| !e.is_empty()) {
                let ex: Vec<String> = ex.iter().map(s).collect();
                out.push_str(&format!(
                    "never banned (limits.ban_exempt): {}\n",
                    ex.join(", ")
                ));
            }
            out
        }
        CtlCmd::Kick { .. } => {
            let on = match &v["node"] {
                Value::String(n) => format!(" on {n}"),
                _ => String::new(),
            };
            format!("kicked {} session(s){on}\n{}", s(&v["kicked"]), partial(v))
        }
        CtlCmd::Ban { .. } => format!("banned {} for {} s\n", s(&v["banned"]), s(&v["secs"])),
        CtlCmd::Unban { .. } => format!("unbanned {}\n", s(&v["unbanned"])),
        CtlCmd::Reload => {
            let list = |k: &str| {
                let l: Vec<String> = v[k].as_array().into_iter().flatten().map(s).collect();
                if l.is_empty() {
                    "nothing".to_owned()
                } else {
                    l.join(", ")
                }
            };
            format!(
                "reloaded; changed: {}; needs a restart: {}\n",
                list("changed"),
                list("restart")
            )
        }
        CtlCmd::Drain => format!("draining (phase: {})\n", s(&v["phase"])),
        CtlCmd::Status => {
            let mut out = String::new();
            if let Some(o) = v.as_object() {
                for (k, x) in o {
                    let shown = match x {
                        Value::Array(a) => a.iter().map(s).collect::<Vec<_>>().join(", "),
                        x => s(x),
                    };
                    out.push_str(&format!("{k:<12} {shown}\n"));
                }
            }
            out
        }
        CtlCmd::Quota { action: None, .. } => {
            let mut t = vec![[
                "USER",
                "ROOT",
                "BYTES",
                "QUOTA_BYTES",
                "FILES",
                "QUOTA_FILES",
                "RESERVED",
                "STATE",
            ]
            .map(str::to_owned)];
            for q in &quotas {
                let state = match &q["error"] {
                    Value::Null => s(&q["state"]),
                    e => format!("{}: {}", s(&q["state"]), s(e)),
                };
                t.push([
                    s(&q["user"]),
                    s(&q["root"]),
                    s(&q["bytes"]),
                    s(&q["quota_bytes"]),
                    s(&q["files"]),
                    s(&q["quota_files"]),
                    s(&q["reserved_bytes"]),
                    state,
                ]);
            }
            table(&t)
        }
        CtlCmd::Quota { .. } => format!(
            "counting {} again ({} root(s))\n",
            s(&v["user"]),
            s(&v["rescans"])
        ),
        CtlCmd::User(_) => String::new(),
    }
}

/// A fleet-wide answer's note when some node's sessions are left out
/// (Redis down, a node not answering): a line, or nothing.
fn partial(v: &Value) -> String {
    if v["partial"] != Value::Bool(true) {
        return String::new();
    }
    match v["note"].as_str() {
        Some(n) => format!("partial: {n}\n"),
        None => "partial: some nodes did not answer\n".to_owned(),
    }
}

/// Columns padded to their widest cell.
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_socket_comes_from_the_flag_the_config_or_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("c.toml");
        std::fs::write(&c, "[control]\nsocket = \"/tmp/x.sock\"\n").unwrap();
        assert_eq!(
            socket_path(None, Some(&c)).unwrap(),
            PathBuf::from("/tmp/x.sock")
        );
        assert_eq!(
            socket_path(Some(Path::new("/a")), None).unwrap(),
            PathBuf::from("/a")
        );
        std::fs::write(&c, "[server]\n").unwrap();
        assert_eq!(
            socket_path(None, Some(&c)).unwrap(),
            PathBuf::from(crate::options::DEFAULT_CONTROL_SOCKET)
        );
        std::fs::write(&c, "[control]\nsocket = \"\"\n").unwrap();
        assert!(socket_path(None, Some(&c)).is_err());
    }

    #[test]
    fn tables_pad_columns() {
        let t = table(&[
            ["A".to_owned(), "BB".to_owned()],
            ["ccc".to_owned(), "d".to_owned()],
        ]);
        assert_eq!(t, "A    BB\nccc  d\n");
    }

    #[test]
    fn a_partial_fleet_answer_says_so_under_the_table() {
        let v = serde_json::json!({
            "sessions": [{"id": "00000000000000aa", "node": "n2", "user": "alice",
                "client": "127.0.0.1:1", "since": "2026-01-01T00:00:00Z",
                "idle_secs": 1.0, "command": "NOOP", "transfer": null}],
            "partial": true, "missing": ["n3"], "note": "no answer within 1s from: n3"
        });
        let out = render(&CtlCmd::Sessions, &v, false);
        let mut lines = out.lines();
        assert!(lines
            .next()
            .unwrap()
            .starts_with("ID                NODE  USER"));
        assert!(lines
            .next()
            .unwrap()
            .starts_with("00000000000000aa  n2    alice"));
        assert_eq!(lines.next(), Some("partial: no answer within 1s from: n3"));
        let whole =
            serde_json::json!({"sessions": [], "partial": false, "missing": [], "note": null});
        assert!(!render(&CtlCmd::Sessions, &whole, false).contains("partial"));
        let k = serde_json::json!({"kicked": 1, "node": "n2", "partial": false});
        let kick = CtlCmd::Kick {
            id: Some("00000000000000aa".into()),
            user: None,
        };
        assert_eq!(render(&kick, &k, false), "kicked 1 session(s) on n2\n");
    }
}
