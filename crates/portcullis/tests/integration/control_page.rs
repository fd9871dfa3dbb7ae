//! The control listener's web page: its files served without a token and
//! with a strict policy on every answer (curl), then the page itself in
//! headless Chromium (selenium over chromedriver, `control_page.py`):
//! the token entered, a session with its upload shown (the file's name is
//! markup, shown as text), its Kick button clicked, and the FTP client cut
//! (426, then 421 and EOF); a ban lifted with its Unban button.

use std::io::Write;
use std::process::Command;

use crate::control::{curl, have_curl, tcp_server, ADMIN};
use crate::harness::{skip, Raw, Server, BIN};

const SCRIPT: &str = include_str!("control_page.py");
/// The upload's name: markup that would show (and retitle the page) if
/// the page ever parsed data as HTML.
const HOSTILE: &str = "<img src=x onerror=document.title=1><b>x.bin";

/// curl -i to the TCP listener without a token: (status, headers, body).
fn get(server: &Server, path: &str) -> (u16, String, String) {
    let url = format!(
        "https://localhost:{}{path}",
        server.control.expect("control.listen").port()
    );
    let out = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10", "--cacert"])
        .arg(server.cert.as_ref().unwrap())
        .arg(&url)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (code, head.to_ascii_lowercase(), body.to_owned())
}

#[test]
fn the_page_is_served_without_a_token_under_a_strict_policy() {
    if !have_curl() {
        return;
    }
    let (server, _dir) = tcp_server();
    for (path, kind) in [
        ("/", "text/html"),
        ("/page.js", "text/javascript"),
        ("/page.css", "text/css"),
        ("/favicon.ico", "image/svg+xml"),
    ] {
        let (code, head, body) = get(&server, path);
        assert_eq!(code, 200, "{path}: {head}");
        assert!(head.contains(&format!("content-type: {kind}")), "{head}");
        assert!(
            head.contains("content-security-policy: default-src 'self'; script-src 'self';"),
            "{head}"
        );
        assert!(head.contains("frame-ancestors 'none'"), "{head}");
        assert!(head.contains("x-content-type-options: nosniff"), "{head}");
        assert!(!body.is_empty());
    }
    // HEAD: the headers and length alone.
    let port = server.control.unwrap().port();
    let head = Command::new("curl")
        .args(["-sS", "-I", "--max-time", "10", "--cacert"])
        .arg(server.cert.as_ref().unwrap())
        .arg(format!("https://localhost:{port}/page.js"))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&head.stdout).to_ascii_lowercase();
    let js = get(&server, "/page.js").2;
    assert!(
        head.starts_with("http/1.1 200") && head.contains(&format!("content-length: {}", js.len())),
        "{head}"
    );
    // The API still wants its token, and its answers carry the policy too.
    let (code, head, _) = get(&server, "/v1/sessions");
    assert_eq!(code, 401);
    assert!(head.contains("content-security-policy:"), "{head}");
    let (code, _, _) = get(&server, "/nothing.js");
    assert_eq!(code, 401, "only the page's files are open");
}

#[test]
fn the_page_shows_a_transfer_and_its_kick_button_cuts_the_client() {
    if !have_curl() {
        return;
    }
    let have_chromium = ["/usr/bin/chromium", "/usr/bin/chromedriver"]
        .iter()
        .all(|p| std::path::Path::new(p).exists());
    if !have_chromium {
        return skip("chromium");
    }
    let selenium = Command::new("python3")
        .args(["-c", "import selenium"])
        .status()
        .is_ok_and(|s| s.success());
    if !selenium {
        return skip("python3 selenium");
    }
    let (server, dir) = tcp_server();
    let ban = Command::new(BIN)
        .args(["ctl", "--url"])
        .arg(format!(
            "https://localhost:{}",
            server.control.unwrap().port()
        ))
        .arg("--token-file")
        .arg(dir.path().join("admin.token"))
        .arg("--ca-file")
        .arg(server.cert.as_ref().unwrap())
        .args(["ban", "192.0.2.7", "--for", "10m"])
        .output()
        .unwrap();
    assert!(ban.status.success(), "{ban:?}");
    let mut c = Raw::login(server.addr, "alice");
    let mut data = c.pasv();
    let r = c.cmd(&format!("STOR {HOSTILE}"));
    assert!(r.starts_with("150 "), "{r}");
    data.write_all(&[7u8; 64 * 1024]).unwrap();
    let (code, body) = curl(&server, "GET", "/v1/sessions", Some(ADMIN));
    assert_eq!(code, 200, "{body}");
    let sessions: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = sessions["sessions"][0]["id"].as_str().unwrap().to_owned();
    let url = format!(
        "https://localhost:{}/",
        server.control.expect("control.listen").port()
    );
    let out = Command::new("timeout")
        .args(["120", "python3", "-c", SCRIPT, &url, ADMIN])
        .arg(server.cert.as_ref().unwrap())
        .args([&id, "alice", &format!("/{HOSTILE}"), "192.0.2.7"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        said.lines().collect::<Vec<_>>(),
        [
            "loaded",
            "session shown",
            "kicked",
            "unbanned",
            "clean console"
        ]
    );
    let cut = c.reply();
    assert!(cut.starts_with("426 "), "{cut}");
    let bye = c.reply();
    assert!(bye.starts_with("421 "), "{bye}");
    assert!(c.closed());
    let (_, bans) = curl(&server, "GET", "/v1/bans", Some(ADMIN));
    assert!(bans.contains("\"bans\":[]"), "{bans}");
    let log = server.wait_for_log(
        "control: kicked a session",
        0,
        std::time::Duration::from_secs(10),
    );
    assert!(log.contains(&format!("session={id}")), "{log}");
    assert!(
        log.contains("who=\"admin\"") || log.contains("who=admin"),
        "{log}"
    );
}
