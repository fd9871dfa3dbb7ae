//! The audit log: every command that changes the file tree, done or
//! refused, is one INFO line (`audit`) with the session's id, user and
//! client, the verb, the virtual path(s) and the reply code, in the text
//! and the JSON format, with hostile names quoted; and a failed login's
//! line says which back end refused it and why (the reply does not).

use std::io::Write;

use crate::harness::{stor, Raw, Server, Setup};

/// The commands of one session, and the (verb, path, target, code) each
/// must leave in the audit log, in order.
fn changes(server: &Server) -> Vec<(&'static str, String, Option<String>, u16)> {
    let mut want = Vec::new();
    let mut c = Raw::login(server.addr, "alice");
    let mut expect = |r: String, verb: &'static str, path: &str, target: Option<&str>| {
        let code: u16 = r[..3].parse().unwrap();
        want.push((verb, path.to_owned(), target.map(str::to_owned), code));
        r
    };
    assert!(expect(c.cmd("MKD d"), "MKD", "/d", None).starts_with("257 "));
    assert!(expect(stor(&mut c, "d/f", b"one"), "STOR", "/d/f", None).starts_with("226 "));
    // APPE: its 150, then the final reply is the one logged.
    let mut data = c.pasv();
    assert!(c.cmd("APPE d/f").starts_with("150 "));
    data.write_all(b"two").unwrap();
    drop(data);
    assert!(expect(c.reply(), "APPE", "/d/f", None).starts_with("226 "));
    assert!(c.cmd("CWD d").starts_with("250 "));
    let mut data = c.pasv();
    let r = c.cmd("STOU");
    assert!(r.starts_with("150 "), "{r}");
    data.write_all(b"unique").unwrap();
    drop(data);
    let unique = std::fs::read_dir(server.alice.join("d"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .find(|n| n != "f");
    let r = c.reply();
    let unique = format!("/d/{}", unique.expect("the STOU file"));
    assert!(expect(r, "STOU", &unique, None).starts_with("226 "));
    assert!(c.cmd("CWD /").starts_with("250 "));
    assert!(c.cmd("RNFR d/f").starts_with("350 "));
    assert!(expect(c.cmd("RNTO d/g"), "RNTO", "/d/f", Some("/d/g")).starts_with("250 "));
    let r = expect(c.cmd("MFMT 20200102030405 d/g"), "MFMT", "/d/g", None);
    assert!(r.starts_with("213 "), "{r}");
    let r = expect(c.cmd("SITE CHMOD 600 d/g"), "SITE CHMOD", "/d/g", None);
    assert!(r.starts_with("200 "), "{r}");
    // Refused ones: a missing file, a missing rename source.
    assert!(expect(c.cmd("DELE d/missing"), "DELE", "/d/missing", None).starts_with("550 "));
    assert!(expect(c.cmd("RNFR nothing"), "RNFR", "/nothing", None).starts_with("550 "));
    // A hostile name, which must not forge fields.
    let hostile = "x verb=DELE code=250 user=root";
    assert!(expect(
        c.cmd(&format!("MKD {hostile}")),
        "MKD",
        &format!("/{hostile}"),
        None
    )
    .starts_with("257 "));
    assert!(expect(c.cmd("DELE d/g"), "DELE", "/d/g", None).starts_with("250 "));
    assert!(expect(c.cmd(&format!("DELE {unique}")), "DELE", &unique, None).starts_with("250 "));
    assert!(expect(c.cmd("RMD d"), "RMD", "/d", None).starts_with("250 "));
    assert!(c.cmd("QUIT").starts_with("221 "));
    // A read-only account: every change refused, each one logged.
    let mut b = Raw::login(server.addr, "bob");
    let mut expect = |r: String, verb: &'static str, path: &str| {
        assert!(r.starts_with("550 "), "{verb}: {r}");
        want.push((verb, path.to_owned(), None, 550));
    };
    let _data = b.pasv();
    expect(b.cmd("STOR new"), "STOR", "/new");
    expect(b.cmd("DELE b.txt"), "DELE", "/b.txt");
    expect(b.cmd("MKD dir"), "MKD", "/dir");
    expect(b.cmd("RNFR b.txt"), "RNFR", "/b.txt");
    assert!(b.cmd("QUIT").starts_with("221 "));
    want
}

#[test]
fn every_change_and_every_refused_one_is_a_text_audit_line() {
    let server = Server::start();
    let want = changes(&server);
    let log = server.log();
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(" audit ")).collect();
    assert_eq!(lines.len(), want.len(), "{log}");
    for (line, (verb, path, target, code)) in lines.iter().zip(&want) {
        assert!(line.starts_with("20"), "no time: {line}");
        assert!(line.contains(" INFO "), "{line}");
        assert!(line.contains("session{id="), "{line}");
        assert!(line.contains("peer=127.0.0.1:"), "{line}");
        let quoted = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
        assert!(
            line.contains(&format!(" verb={} ", quoted(verb))),
            "{verb} not in {line}"
        );
        assert!(
            line.contains(&format!(" path={}", quoted(path))),
            "{path} not in {line}"
        );
        if let Some(t) = target {
            assert!(line.contains(&format!(" to={}", quoted(t))), "{line}");
        }
        assert!(line.ends_with(&format!(" code={code}")), "{line}");
        let user = if line.contains("user=\"bob\"") {
            "bob"
        } else {
            "alice"
        };
        assert!(line.contains(&format!("user=\"{user}\"")), "{line}");
        // The hostile name's fake fields stay inside its quotes.
        let rest = line.replace(&quoted(path), "");
        assert_eq!(rest.matches(" code=").count(), 1, "{line}");
        assert_eq!(rest.matches(" verb=").count(), 1, "{line}");
    }
}

#[test]
fn every_change_is_a_json_audit_line() {
    let server = Server::start_with(Setup {
        log_format: Some("json"),
        ..Setup::default()
    });
    let want = changes(&server);
    let log = server.log();
    let audits: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect(l))
        .filter(|v| v["fields"]["message"] == "audit")
        .collect();
    assert_eq!(audits.len(), want.len(), "{log}");
    for (v, (verb, path, target, code)) in audits.iter().zip(&want) {
        assert_eq!(v["level"], "INFO", "{v}");
        assert!(v["timestamp"].as_str().is_some(), "{v}");
        assert_eq!(v["span"]["id"].as_str().map(str::len), Some(16), "{v}");
        assert!(
            v["span"]["peer"]
                .as_str()
                .is_some_and(|p| p.starts_with("127.0.0.1:")),
            "{v}"
        );
        assert!(v["fields"]["user"] == v["span"]["user"], "{v}");
        assert_eq!(v["fields"]["verb"], *verb, "{v}");
        assert_eq!(v["fields"]["path"], path.as_str(), "{v}");
        assert_eq!(v["fields"]["to"].as_str(), target.as_deref(), "{v}");
        assert_eq!(v["fields"]["code"], *code, "{v}");
    }
}

/// The failed-login line of `user` with `password`, after a 530.
fn failed_login_line(server: &Server, user: &str, password: &str) -> String {
    let before = server.log().matches("failed login").count();
    let mut c = Raw::connect(server.addr);
    assert!(c.cmd(&format!("USER {user}")).starts_with("331 "));
    let r = c.cmd(&format!("PASS {password}"));
    // The same reply whatever the reason.
    assert_eq!(r, "530 Login incorrect.", "{user}");
    let log = server.log();
    log.lines()
        .filter(|l| l.contains("failed login"))
        .nth(before)
        .unwrap_or_else(|| panic!("no failed-login line for {user}:\n{log}"))
        .to_owned()
}

#[test]
fn a_failed_login_says_which_back_end_refused_it_and_why() {
    let server = Server::start();
    let wrong = failed_login_line(&server, "alice", "not the password");
    assert!(
        wrong.contains("backend=\"config\"") && wrong.contains("reason=\"wrong password\""),
        "{wrong}"
    );
    let unknown = failed_login_line(&server, "mallory", "whatever");
    assert!(
        unknown.contains("backend=\"none\"") && unknown.contains("reason=\"unknown user\""),
        "{unknown}"
    );
}

/// Whether `log` has a failed-login line for `user` that names `backend`
/// and a reason starting with `reason`.
pub(crate) fn failed_login_says(log: &str, user: &str, backend: &str, reason: &str) -> bool {
    log.lines().any(|l| {
        l.contains("failed login")
            && l.contains(&format!("user=\"{user}\""))
            && l.contains(&format!("backend=\"{backend}\""))
            && l.contains(&format!("reason=\"{reason}"))
    })
}
