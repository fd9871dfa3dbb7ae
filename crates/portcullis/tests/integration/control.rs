//! The control API through `portcullis ctl` on the server's control
//! socket: sessions listed, kicked (one, during an upload: 426 then 421,
//! no partial file; all of a user's), bans added, listed and lifted (a
//! banned client let back in), `limits.ban_exempt`, a reload's answer,
//! status and drain, and the audit line of each change.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use crate::harness::{Raw, Server, Setup, BIN};

/// A server whose control socket is `DIR/control.sock`, with its log watched.
fn server(limits: &'static str) -> (Server, tempfile::TempDir, PathBuf) {
    let sockdir = tempfile::tempdir().unwrap();
    let socket = sockdir.path().join("control.sock");
    let sections: &'static str =
        Box::leak(format!("[control]\nsocket = \"{}\"\n", socket.display()).into_boxed_str());
    let s = Server::start_with(Setup {
        sections,
        limits,
        watch_log: true,
        ..Setup::default()
    });
    (s, sockdir, socket)
}

/// `portcullis ctl --socket SOCKET ARGS...`
fn ctl(socket: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("ctl")
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .unwrap()
}

/// The same, which must succeed; its JSON (with `--json` among `args`) or text.
fn ok(socket: &Path, args: &[&str]) -> String {
    let out = ctl(socket, args);
    assert!(
        out.status.success(),
        "ctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(socket: &Path, args: &[&str]) -> serde_json::Value {
    let mut a = args.to_vec();
    a.push("--json");
    serde_json::from_str(&ok(socket, &a)).unwrap()
}

/// A refusal: exit status 1 and the server's message on stderr.
fn refused(socket: &Path, args: &[&str]) -> String {
    let out = ctl(socket, args);
    assert!(!out.status.success(), "ctl {args:?} succeeded");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn kick_during_an_upload_cuts_it_and_keeps_no_partial_file() {
    let (server, _d, socket) = server("");
    let mut c = Raw::login(server.addr, "alice");
    assert_eq!(
        json(&socket, &["sessions"])["sessions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let mut data = c.pasv();
    let r = c.cmd("STOR big.bin");
    assert!(r.starts_with("150 "), "{r}");
    data.write_all(&[7u8; 64 * 1024]).unwrap();
    let list = json(&socket, &["sessions"]);
    assert_eq!(list["partial"], false, "{list}");
    let s = &list["sessions"].as_array().unwrap()[0];
    assert_eq!(s["user"], "alice");
    assert_eq!(
        s["client"].as_str().unwrap().split(':').next(),
        Some("127.0.0.1")
    );
    assert!(s["since"].as_str().unwrap().ends_with('Z'), "{s}");
    assert_eq!(s["command"], "STOR");
    assert_eq!(s["transfer"]["path"], "/big.bin");
    assert_eq!(s["transfer"]["direction"], "upload");
    // The table for people names the same session.
    let table = ok(&socket, &["sessions"]);
    let id = s["id"].as_str().unwrap();
    assert!(table.contains(id) && table.contains("alice"), "{table}");
    // The upload's file (under a temporary name) is there until the cut.
    assert_eq!(std::fs::read_dir(&server.alice).unwrap().count(), 1);
    assert!(ok(&socket, &["kick", id]).contains("kicked 1"));
    let cut = c.reply();
    assert!(cut.starts_with("426 "), "{cut}");
    let bye = c.reply();
    assert!(bye.starts_with("421 "), "{bye}");
    assert!(c.closed());
    // No file under its name or a temporary one.
    let left: Vec<_> = std::fs::read_dir(&server.alice).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    let log = server.wait_for_log("control: kicked a session", 0, Duration::from_secs(10));
    assert!(log.contains(&format!("session={id}")), "{log}");
    // Gone from the list; kicking it again is refused with the server's word.
    assert!(json(&socket, &["sessions"])["sessions"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(refused(&socket, &["kick", id]).contains("no session"));
    assert!(refused(&socket, &["kick", "not-an-id"]).contains("not a session id"));
}

#[test]
fn kick_user_closes_every_session_of_that_user() {
    let (server, _d, socket) = server("");
    let mut b1 = Raw::login(server.addr, "bob");
    let mut b2 = Raw::login(server.addr, "bob");
    let mut a = Raw::login(server.addr, "alice");
    assert_eq!(json(&socket, &["kick", "--user", "bob"])["kicked"], 2);
    for b in [&mut b1, &mut b2] {
        let r = b.reply();
        assert!(r.starts_with("421 "), "{r}");
    }
    assert!(a.cmd("NOOP").starts_with("200 "));
    let left = json(&socket, &["sessions"])["sessions"].take();
    assert_eq!(left.as_array().unwrap().len(), 1, "{left}");
    assert_eq!(left[0]["user"], "alice");
    assert_eq!(left[0]["transfer"], serde_json::Value::Null);
}

#[test]
fn ban_then_unban_lets_the_client_back_in() {
    let (server, _d, socket) = server("");
    assert!(json(&socket, &["bans"]).as_array().unwrap().is_empty());
    assert!(ok(&socket, &["ban", "127.0.0.1", "--for", "1h"]).contains("banned 127.0.0.1"));
    let bans = json(&socket, &["bans"]);
    assert_eq!(bans[0]["address"], "127.0.0.1", "{bans}");
    assert!(bans[0]["until"].as_str().unwrap().ends_with('Z'), "{bans}");
    let mut c = Raw::from_stream(std::net::TcpStream::connect(server.addr).unwrap());
    let r = c.reply();
    assert!(r.starts_with("421 "), "{r}");
    assert!(ok(&socket, &["unban", "127.0.0.1"]).contains("unbanned"));
    Raw::login(server.addr, "alice");
    assert!(refused(&socket, &["unban", "127.0.0.1"]).contains("not banned"));
    assert!(refused(&socket, &["ban", "127.0.0.1", "--for", "soon"]).contains("not a duration"));
    let log = server.wait_for_log("control: lifted a ban", 0, Duration::from_secs(10));
    assert!(log.contains("control: banned an address"), "{log}");
    assert!(log.contains("address=127.0.0.1"), "{log}");
}

#[test]
fn ban_exempt_networks_are_never_banned() {
    let (server, _d, socket) = server("max_login_failures = 1\nban_exempt = [\"127.0.0.0/8\"]");
    // A failed login would ban at once without the exemption.
    let mut c = Raw::connect(server.addr);
    assert!(c.cmd("USER alice").starts_with("331 "));
    assert!(c.cmd("PASS wrong").starts_with("530 "));
    Raw::login(server.addr, "alice");
    let msg = refused(&socket, &["ban", "127.0.0.1"]);
    assert!(msg.contains("ban_exempt"), "{msg}");
    let table = ok(&socket, &["bans"]);
    assert!(table.contains("127.0.0.0/8"), "{table}");
}

#[test]
fn reload_says_what_changed_and_what_needs_a_restart() {
    let (server, _d, socket) = server("");
    let config = server.config();
    let text = std::fs::read_to_string(&config).unwrap();
    let changed = text
        .replace("idle_timeout = \"300s\"", "idle_timeout = \"200s\"")
        .replace(
            "listen = [\"127.0.0.1:0\"]",
            "listen = [\"127.0.0.1:0\", \"127.0.0.2:0\"]",
        );
    assert_ne!(changed, text);
    std::fs::write(&config, &changed).unwrap();
    let r = json(&socket, &["reload"]);
    assert_eq!(r["changed"], serde_json::json!(["server"]), "{r}");
    assert_eq!(r["restart"], serde_json::json!(["server.listen"]), "{r}");
    // Nothing more changed: nothing to say.
    let again = ok(&socket, &["reload"]);
    assert!(again.contains("changed: nothing"), "{again}");
    // A file that does not validate: refused with every problem, exit 1.
    std::fs::write(&config, changed.replace("idle_timeout", "idle_timeoot")).unwrap();
    let msg = refused(&socket, &["reload"]);
    assert!(msg.contains("idle_timeoot"), "{msg}");
    server.wait_for_log("control: config reloaded", 1, Duration::from_secs(10));
    let log = server.wait_for_log("control: reload refused", 0, Duration::from_secs(10));
    assert!(
        log.contains(r#"changed="server" restart="server.listen""#),
        "{log}"
    );
}

#[test]
fn status_then_drain_through_the_config_file() {
    let (mut server, _d, _socket) = server("");
    let config = server.config();
    let config = config.to_str().unwrap();
    let status: serde_json::Value =
        serde_json::from_str(&ok_config(config, &["status", "--json"])).unwrap();
    assert_eq!(status["phase"], "serving");
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(status["listeners"][0], format!("ftp://{}", server.addr));
    assert_eq!(status["sessions"], 0);
    assert!(ok_config(config, &["drain"]).contains("draining"));
    server.wait_for_log("control: drain asked for", 0, Duration::from_secs(10));
    assert!(server.exit_within(Duration::from_secs(20)).success());
}

/// `portcullis ctl --config FILE ARGS...`, which must succeed.
fn ok_config(config: &str, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(["ctl", "--config", config])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn without_a_server_ctl_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let msg = refused(&dir.path().join("none.sock"), &["status"]);
    assert!(msg.contains("cannot connect"), "{msg}");
}

pub(crate) const ADMIN: &str = "0123456789abcdef0123456789abcdef";
const VIEWER: &str = "fedcba9876543210fedcba9876543210";

/// A server with FTPS, a control socket and the TCP control listener
/// (the server's certificate, two tokens); at most 2 failed logins.
pub(crate) fn tcp_server() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let tokens = dir.path().join("tokens");
    std::fs::write(
        &tokens,
        format!("# name token\nadmin {ADMIN}\nviewer {VIEWER} read-only\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("admin.token"), format!("{ADMIN}\n")).unwrap();
    std::fs::write(
        dir.path().join("viewer.token"),
        format!("viewer {VIEWER}\n"),
    )
    .unwrap();
    let sections: &'static str = Box::leak(
        format!(
            "[control]\nsocket = \"\"\nlisten = \"127.0.0.1:0\"\ntoken_file = \"{}\"\n",
            tokens.display()
        )
        .into_boxed_str(),
    );
    let s = Server::start_with(Setup {
        sections,
        tls: Some(String::new()),
        limits: "max_login_failures = 2",
        watch_log: true,
        ..Setup::default()
    });
    (s, dir)
}

/// curl to the TCP listener: (HTTP status, body).
pub(crate) fn curl(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, String) {
    let url = format!(
        "https://localhost:{}{path}",
        server.control.expect("control.listen").port()
    );
    let mut c = Command::new("curl");
    c.args([
        "-sS",
        "-X",
        method,
        "--max-time",
        "10",
        "-w",
        "\n%{http_code}",
    ])
    .arg("--cacert")
    .arg(server.cert.as_ref().unwrap())
    .arg(&url);
    if let Some(t) = token {
        c.args(["-H", &format!("Authorization: Bearer {t}")]);
    }
    let out = c.output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.parse().unwrap_or(0), body.to_owned())
}

pub(crate) fn have_curl() -> bool {
    let ok = Command::new("curl").arg("--version").output().is_ok();
    if !ok {
        crate::harness::skip("curl");
    }
    ok
}

#[test]
fn tcp_listener_needs_a_token_and_read_only_ones_only_read() {
    if !have_curl() {
        return;
    }
    let (server, dir) = tcp_server();
    let (code, body) = curl(&server, "GET", "/v1/status", Some(ADMIN));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("\"phase\":\"serving\""), "{body}");
    let (code, _) = curl(&server, "GET", "/v1/sessions", Some(VIEWER));
    assert_eq!(code, 200);
    let (code, body) = curl(&server, "POST", "/v1/drain", Some(VIEWER));
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("read-only"), "{body}");
    // The CLI over TCP: the admin's token alone, the viewer's as a line.
    let ctl_url = |token: &str, args: &[&str]| {
        Command::new(BIN)
            .arg("ctl")
            .arg("--url")
            .arg(format!(
                "https://localhost:{}",
                server.control.unwrap().port()
            ))
            .arg("--token-file")
            .arg(dir.path().join(token))
            .arg("--ca-file")
            .arg(server.cert.as_ref().unwrap())
            .args(args)
            .output()
            .unwrap()
    };
    let out = ctl_url("admin.token", &["ban", "192.0.2.7", "--for", "10m"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ctl_url("viewer.token", &["bans", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bans: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(bans[0]["address"], "192.0.2.7");
    let out = ctl_url("viewer.token", &["unban", "192.0.2.7"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("read-only"));
    // The audit line names the token.
    let log = server.wait_for_log("control: banned an address", 0, Duration::from_secs(10));
    assert!(
        log.contains("who=\"admin\"") || log.contains("who=admin"),
        "{log}"
    );
}

#[test]
fn tcp_listener_bad_tokens_count_toward_the_ban() {
    if !have_curl() {
        return;
    }
    let (server, _dir) = tcp_server();
    let (code, _) = curl(&server, "GET", "/v1/status", None);
    assert_eq!(code, 401);
    let (code, _) = curl(&server, "GET", "/v1/status", Some("not-the-token-at-all"));
    assert_eq!(code, 401);
    // Two failures ban the address: the listener closes its connections,
    // and FTP refuses it too.
    let (code, _) = curl(&server, "GET", "/v1/status", Some(ADMIN));
    assert_eq!(code, 0, "a banned address was answered");
    let mut c = Raw::from_stream(std::net::TcpStream::connect(server.addr).unwrap());
    let r = c.reply();
    assert!(r.starts_with("421 "), "{r}");
    server.wait_for_log(
        "control: request without a valid token refused",
        1,
        Duration::from_secs(10),
    );
}

#[test]
fn tcp_listener_without_tls_or_tokens_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(
        &config,
        "[server]\nallow_root = true\n[control]\nsocket = \"\"\nlisten = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["check-config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("needs TLS"), "{text}");
    assert!(text.contains("control.token_file"), "{text}");
}

#[test]
fn quota_usage_and_a_rescan_through_ctl() {
    let sockdir = tempfile::tempdir().unwrap();
    let socket = sockdir.path().join("control.sock");
    let sections: &'static str =
        Box::leak(format!("[control]\nsocket = \"{}\"\n", socket.display()).into_boxed_str());
    let server = Server::start_with(Setup {
        sections,
        alice_extra: "quota_bytes = \"1M\"\nquota_files = 10",
        watch_log: true,
        ..Setup::default()
    });
    // Not counted before its first login: nothing listed, nothing to rescan.
    assert_eq!(json(&socket, &["quota"]), serde_json::json!([]));
    let e = refused(&socket, &["quota", "rescan", "alice"]);
    assert!(e.contains("is not counted on this node"), "{e}");

    let mut c = Raw::login(server.addr, "alice");
    let r = crate::harness::stor(&mut c, "one.bin", &[1u8; 1000]);
    assert!(r.starts_with("226 "), "{r}");
    let row = |socket: &Path| {
        let v = json(socket, &["quota", "alice"]);
        let rows = v.as_array().unwrap().clone();
        assert_eq!(rows.len(), 1, "{v}");
        rows[0].clone()
    };
    let q = row(&socket);
    assert_eq!(q["user"], "alice");
    assert_eq!(q["quota_bytes"], 1 << 20);
    assert_eq!(q["quota_files"], 10);
    assert_eq!(q["bytes"], 1000, "{q}");
    assert_eq!(q["files"], 1, "{q}");
    assert_eq!(q["state"], "ready", "{q}");
    // Another user's rows only when asked for all; bob has no quota.
    assert_eq!(json(&socket, &["quota", "bob"]), serde_json::json!([]));
    let table = ok(&socket, &["quota"]);
    assert!(table.starts_with("USER"), "{table}");
    assert!(
        table.contains("alice") && table.contains("1048576"),
        "{table}"
    );

    // A file put there by hand is found by a rescan.
    std::fs::write(server.alice.join("by-hand.bin"), [2u8; 500]).unwrap();
    assert_eq!(row(&socket)["bytes"], 1000);
    let said = ok(&socket, &["quota", "rescan", "alice"]);
    assert!(said.contains("counting alice again (1 root(s))"), "{said}");
    let mut seen = serde_json::Value::Null;
    for _ in 0..100 {
        seen = row(&socket);
        if seen["bytes"] == 1500 && seen["state"] == "ready" {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(seen["bytes"], 1500, "{seen}");
    assert_eq!(seen["files"], 2, "{seen}");
    let log = server.wait_for_log(
        "control: quota rescan asked for",
        0,
        Duration::from_secs(10),
    );
    assert!(
        log.contains("user=\"alice\"") || log.contains("user=alice"),
        "{log}"
    );
    drop(c);
}

#[test]
fn a_start_that_fails_after_binding_leaves_no_socket_behind() {
    // The spool directory cannot be made (a file is in the way): the
    // start fails after the control socket was bound.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(dir.path().join("file"), b"").unwrap();
    let socket = dir.path().join("control.sock");
    let config = dir.path().join("portcullis.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nallow_root = true\n\
             [anonymous]\nenabled = true\nroot = \"{}\"\n\
             [control]\nsocket = \"{}\"\n\
             [events]\nspool_dir = \"{}/file/spool\"\n\
             [[events.hooks]]\nname = \"x\"\non = [\"upload\"]\naction = \"command\"\n\
             command = [\"/bin/true\"]\n",
            root.display(),
            socket.display(),
            dir.path().display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("events.spool_dir"), "{err}");
    assert!(!socket.exists(), "a stale control socket was left");
}
