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
            "61000-61099",
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
        banner.contains("inbound  TCP 61000-61099  (passive data connections)"),
        "{banner}"
    );
    assert!(root.is_dir(), "--root was not created");
    std::fs::write(root.join("pub.txt"), b"public").unwrap();
    let mut c = Raw::login(addr, "anonymous");
    assert_eq!(
        c.cmd("MKD x"),
        "550 Permission denied: you may not create directories."
    );
    // Started as root without a config file, the server runs as nobody and
    // still serves --root (opened before the switch).
    if euid_of(std::process::id()) == Some(0) {
        assert_eq!(euid_of(child.id()), Some(65534));
    }
    let data = c.pasv();
    assert!(c.cmd("RETR pub.txt").starts_with("150 "));
    assert_eq!(crate::harness::read_all(data), b"public");
    let _ = child.kill();
    let _ = child.wait();
}

/// Effective uid of a process, from /proc.
fn euid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

fn running_as_root() -> bool {
    let root = euid_of(std::process::id()) == Some(0);
    if !root {
        eprintln!("skipping: privilege drop needs the tests to run as root");
    }
    root
}

/// Started as root with `server.user`: the ports are bound, then the server
/// runs as that user, and files it writes belong to it.
#[test]
fn root_drops_to_the_configured_user() {
    if !running_as_root() {
        return;
    }
    use crate::harness::{Server, Setup};
    use std::os::unix::fs::MetadataExt;
    let server = Server::start_with(Setup {
        run_as: Some("nobody"),
        ..Setup::default()
    });
    let nobody = 65534u32;
    assert_eq!(euid_of(server.pid()), Some(nobody), "{}", server.log());
    std::os::unix::fs::chown(&server.alice, Some(nobody), None).unwrap();
    let mut c = Raw::login(server.addr, "alice");
    let mut data = c.pasv();
    assert!(c.cmd("STOR mine.txt").starts_with("150 "));
    std::io::Write::write_all(&mut data, b"owned").unwrap();
    drop(data);
    assert!(c.reply().starts_with("226 "));
    let meta = std::fs::metadata(server.alice.join("mine.txt")).unwrap();
    assert_eq!(meta.uid(), nobody);
    // bob's root belongs to root and is 0755: nobody may read, not write.
    let mut b = Raw::login(server.addr, "bob");
    let _data = b.pasv();
    assert!(b.cmd("RETR b.txt").starts_with("150 "));
}

#[test]
fn root_without_user_or_allow_root_refuses_to_serve() {
    if !running_as_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, "[server]\nlisten = [\"127.0.0.1:0\"]\n").unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refusing to serve as root"), "{err}");
}
