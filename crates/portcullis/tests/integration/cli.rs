//! The command-line tools: check-config and serve without a config file.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::harness::{Raw, BIN};

#[test]
fn check_config_names_the_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[passive]\nports = \"9-1\"\n[[users]]\nname = \"a\"\npassword_hash = \"x\"\nroot = \"/nonexistent\"\n").unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("passive.ports"), "{err}");
    assert!(err.contains("users[0].password_hash"), "{err}");
    assert!(err.contains("users[0].root"), "{err}");
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "[server]\nlisten = [\"127.0.0.1:2121\"]\n").unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));
}

#[test]
fn serve_without_config_is_anonymous_read_only_and_prints_firewall_ports() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("share");
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--passive-ports",
            "46000-46099",
            "--root",
        ])
        .arg(&root)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    for _ in 0..12 {
        let mut l = String::new();
        if reader.read_line(&mut l).unwrap() == 0 {
            break;
        }
        banner.push_str(&l);
        if l.contains("active data connections") {
            break;
        }
    }
    let addr = banner
        .lines()
        .find_map(|l| l.split("listening on ").nth(1))
        .expect("listening line")
        .parse()
        .unwrap();
    assert!(
        banner.contains("inbound  TCP 46000-46099  (passive data connections)"),
        "{banner}"
    );
    assert!(root.is_dir(), "--root was not created");
    let mut c = Raw::login(addr, "anonymous");
    assert_eq!(
        c.cmd("MKD x"),
        "550 Permission denied: you may not create directories."
    );
    let _ = child.kill();
    let _ = child.wait();
}
