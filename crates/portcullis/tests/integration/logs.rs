//! The log cannot be forged and stays parseable: hostile file names in
//! the text format are quoted, every event is one line, and a panic or a
//! fatal error under `log.format = "json"` is one JSON object; a panic
//! ends its session alone.

use std::io::Write;
use std::process::{Command, Stdio};

use crate::harness::{read_all, Raw, Server, Setup, BIN};

#[test]
fn hostile_file_names_cannot_forge_text_log_fields() {
    let server = Server::start();
    let mut c = Raw::login(server.addr, "alice");
    let names = [
        "x user=root result=ok peer=10.1.1.1",
        "quote\"d name",
        "bell\u{7}and\u{1b}[31mescape",
    ];
    for name in names {
        let mut data = c.pasv();
        let r = c.cmd(&format!("STOR {name}"));
        assert!(r.starts_with("150 "), "{name:?}: {r}");
        data.write_all(b"x").unwrap();
        drop(data);
        assert!(c.reply().starts_with("226 "));
    }
    // A name with a newline cannot be sent on one command line, and one
    // with a backslash is refused (553): neither reaches the log.
    assert!(c.cmd("QUIT").starts_with("221 "));
    assert!(c.closed());
    let log = server.log();
    let transfers: Vec<&str> = log.lines().filter(|l| l.contains(" transfer ")).collect();
    assert_eq!(transfers.len(), names.len(), "{log}");
    for (line, want) in transfers.iter().zip([
        r#"path="/x user=root result=ok peer=10.1.1.1""#,
        r#"path="/quote\"d name""#,
        r#"path="/bell\u{7}and\u{1b}[31mescape""#,
    ]) {
        assert!(line.contains(want), "{want} not in {line}");
        // The real fields, once each: the forged ones are inside quotes.
        let rest = line.replace(want, "");
        assert_eq!(rest.matches(" user=").count(), 2, "{line}"); // span + event
        assert_eq!(rest.matches(" result=").count(), 1, "{line}");
        assert_eq!(rest.matches(" peer=").count(), 1, "{line}"); // span
        assert!(line.ends_with(" result=ok"), "{line}");
        assert!(
            !line.contains('\u{1b}') && !line.contains('\u{7}'),
            "{line}"
        );
    }
    // Every line starts with a timestamp: none was split.
    for l in log.lines() {
        assert!(l.starts_with("20"), "a line that is not an event: {l:?}");
    }
}

#[test]
fn a_panic_ends_its_session_alone_and_is_one_json_line() {
    let server = Server::start_with(Setup {
        log_format: Some("json"),
        env: vec![("PORTCULLIS_TEST_PANIC_ON", "SITE BOOM".into())],
        ..Setup::default()
    });
    let mut other = Raw::login(server.addr, "alice");
    let mut c = Raw::login(server.addr, "alice");
    let r = c.cmd("SITE BOOM");
    assert!(r.starts_with("421 Internal server error"), "{r}");
    assert!(c.closed());
    // The server and its other session serve on.
    assert!(other.cmd("NOOP").starts_with("200 "));
    let list = other.pasv();
    assert!(other.cmd("LIST").starts_with("150 "));
    read_all(list);
    assert!(other.reply().starts_with("226 "));
    let mut again = Raw::login(server.addr, "alice");
    assert!(again.cmd("PWD").starts_with("257 "));

    let log = server.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let panic = lines
        .iter()
        .find(|v| v["fields"]["panic"].is_string())
        .unwrap_or_else(|| panic!("no panic line in\n{log}"));
    assert_eq!(panic["level"], "ERROR");
    assert!(panic["fields"]["panic"]
        .as_str()
        .unwrap()
        .contains("SITE BOOM"));
    let id = panic["span"]["id"].as_str().expect("the session's span");
    assert_eq!(id.len(), 16, "64 random bits in hex: {id}");
    assert!(
        lines.iter().any(|v| v["fields"]["message"] == "session end"
            && v["fields"]["reason"] == "internal error"
            && v["span"]["id"].as_str() == Some(id)),
        "{log}"
    );
}

#[test]
fn a_fatal_error_under_json_is_a_json_line() {
    let dir = tempfile::tempdir().unwrap();
    // A port in use: serve cannot bind it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let config = dir.path().join("p.toml");
    std::fs::write(
        &config,
        format!(
            // A passive range of our own: the default 40000-40999 may hold
            // the port taken, and serve would refuse the file instead.
            "[server]\nlisten = [\"{}\"]\nallow_root = true\n[passive]\nports = \"{}\"\n\
             [log]\nformat = \"json\"\n",
            taken.local_addr().unwrap(),
            crate::harness::passive_ports(1)
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&config)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.trim().is_empty());
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert!(
        lines.iter().any(|v| v["level"] == "ERROR"
            && v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(&taken.local_addr().unwrap().to_string()))),
        "{err}"
    );
}
