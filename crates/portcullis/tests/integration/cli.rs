//! The command-line tools: check-config and serve without a config file.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::harness::{Raw, BIN};

/// `portcullis check-config PATH`, run to its end.
pub(crate) fn check_config(path: &std::path::Path) -> std::process::Output {
    Command::new(BIN)
        .arg("check-config")
        .arg(path)
        .output()
        .unwrap()
}

#[test]
fn check_config_names_the_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[passive]\nports = \"9-1\"\n[[users]]\nname = \"a\"\npassword_hash = \"x\"\nroot = \"/nonexistent\"\n").unwrap();
    let out = check_config(&bad);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("passive.ports"), "{err}");
    assert!(err.contains("users[0].password_hash"), "{err}");
    assert!(err.contains("users[0].root"), "{err}");
    // Valid keys, but a hook whose certificates cannot be read: the
    // server would not start (and a reload would be refused), so neither
    // does check-config pass it.
    let hook = dir.path().join("hook.toml");
    std::fs::write(
        &hook,
        "[auth]\norder = [\"config\", \"http\"]\n[auth.http]\n\
         url = \"https://127.0.0.1:9/login\"\nca_file = \"/nonexistent/ca.pem\"\n",
    )
    .unwrap();
    let out = check_config(&hook);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("auth.http.ca_file"), "{err}");
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[server]\nlisten = [\"127.0.0.1:2121\"]\nallow_root = true\n",
    )
    .unwrap();
    let out = check_config(&good);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("OK"));
}

#[test]
fn serve_without_config_is_anonymous_read_only_and_prints_firewall_ports() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("share");
    // Reaped even when an assertion below fails.
    let mut child = Reaper(
        Command::new(BIN)
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
            .unwrap(),
    );
    let mut banner = String::new();
    let mut reader = BufReader::new(child.0.stdout.take().unwrap());
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
        "550 Permission denied: you may not create directories as an anonymous user."
    );
    // Started as root without a config file, the server runs as nobody and
    // still serves --root (opened before the switch).
    if euid_of(std::process::id()) == Some(0) {
        assert_eq!(euid_of(child.0.id()), Some(65534));
    }
    let data = c.pasv();
    assert!(c.cmd("RETR pub.txt").starts_with("150 "));
    assert_eq!(crate::harness::read_all(data), b"public");
}

/// Effective uid of a process, from /proc.
fn euid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

pub fn running_as_root() -> bool {
    let root = euid_of(std::process::id()) == Some(0);
    if !root {
        assert!(std::env::var("CI").is_err(), "CI runs the tests as root");
        crate::harness::skip("root (the privilege drop)");
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
    // The harness gave alice's root to nobody: she may write.
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

/// `server.user` resolves through NSS, not by reading /etc/passwd: with
/// nobody gone from the file (in a mount namespace of check-config's own),
/// the system's other NSS source still answers for it (systemd's, which
/// Debian lists after `files`, as it would list sss or ldap). Skipped
/// where `unshare` cannot make the namespace.
#[test]
fn server_user_resolves_through_nss_not_the_passwd_file() {
    if !running_as_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let passwd: String = std::fs::read_to_string("/etc/passwd")
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("nobody:"))
        .map(|l| format!("{l}\n"))
        .collect();
    let fake = dir.path().join("passwd");
    std::fs::write(&fake, passwd).unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        "[server]\nlisten = [\"127.0.0.1:0\"]\nuser = \"nobody\"\n",
    )
    .unwrap();
    let run = |script: &str| {
        Command::new("unshare")
            .args(["--mount", "sh", "-c", script, "sh"])
            .arg(&fake)
            .arg(BIN)
            .arg(&cfg)
            .output()
    };
    // The namespace works and hides nobody from the file.
    match run("mount --bind \"$1\" /etc/passwd && ! grep -q ^nobody: /etc/passwd") {
        Ok(o) if o.status.success() => {}
        other => {
            eprintln!("SKIP unshare: {other:?}");
            return;
        }
    }
    let out = run("mount --bind \"$1\" /etc/passwd && exec \"$2\" check-config \"$3\"").unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("server.user"), "{err}");
    assert!(out.status.success(), "{err}");
}

/// Kills a server that should not have started, pass or fail.
struct Reaper(std::process::Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Started as root and switching to nobody: a root directory that nobody
/// cannot enter (0700 and root's, as `mktemp -d` makes it) and one that
/// nobody cannot write though alice may upload stop the start, with one
/// message each naming the directory and what to run (check-config says
/// the same). Fixed that way, it starts.
#[test]
fn roots_the_server_user_cannot_use_stop_the_start() {
    use std::os::unix::fs::PermissionsExt;
    if !running_as_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("private");
    let alice = dir.path().join("alice");
    for (d, mode) in [(&private, 0o700), (&alice, 0o755)] {
        std::fs::create_dir(d).unwrap();
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::fs::write(private.join("pub.txt"), b"public").unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nuser = \"nobody\"\n\
             [anonymous]\nenabled = true\nroot = \"{}\"\n\
             [[users]]\nname = \"alice\"\npassword_hash = \"{}\"\nroot = \"{}\"\n\
             permissions = [\"read\", \"write\"]\n",
            private.display(),
            crate::harness::password_hash(),
            alice.display()
        ),
    )
    .unwrap();
    let mut child = Reaper(
        Command::new(BIN)
            .args(["serve", "--config"])
            .arg(&cfg)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // Refused, the server prints nothing and exits: stdout ends. Serving,
    // it prints where it listens first (and the Reaper stops it).
    let stdout = BufReader::new(child.0.stdout.take().unwrap());
    let started = stdout
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("listening on"));
    assert_eq!(started, None, "the server started");
    let status = child.0.wait().unwrap();
    let err = crate::harness::stderr_of(&mut child.0);
    assert!(!status.success(), "{err}");
    let (p, a) = (private.display(), alice.display());
    // Fatal errors go through the log: one ERROR event each.
    let lines: Vec<&str> = err
        .lines()
        .filter_map(|l| l.split_once(" ERROR portcullis::logging: ").map(|(_, m)| m))
        .collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert_eq!(
        lines[0],
        format!(
            "root directory {p} (of anonymous) is not usable by the server's user, \
             nobody (uid 65534): it is owned by root (uid 0), group root (gid 0), mode 0700, \
             so user nobody cannot list (r) or enter (x) it. Run `chown nobody {p}` or \
             `chmod o+rx {p}`, or set server.user to a user who can"
        ),
        "{err}"
    );
    assert!(
        lines[1].contains(&format!("root directory {a} (of user alice)"))
            && lines[1].contains("mode 0755, so user nobody cannot write (w) it")
            && lines[1].contains(&format!("Run `chown nobody {a}`, or set server.user")),
        "{err}"
    );
    drop(child);
    // check-config, run as root, says the same before any start.
    let out = check_config(&cfg);
    assert!(!out.status.success());
    let checked = String::from_utf8_lossy(&out.stderr);
    let prefix = format!("{}: ", cfg.display());
    assert_eq!(
        checked.lines().collect::<Vec<_>>(),
        lines
            .iter()
            .map(|l| format!("{prefix}{l}"))
            .collect::<Vec<_>>()
    );

    // As the messages say: readable by all, and alice's root nobody's.
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::os::unix::fs::chown(&alice, Some(65534), None).unwrap();
    let server = crate::harness::Server::start_from_config(dir, &cfg);
    assert_eq!(euid_of(server.pid()), Some(65534));
    let mut c = Raw::login(server.addr, "anonymous");
    let data = c.pasv();
    assert!(c.cmd("RETR pub.txt").starts_with("150 "));
    assert_eq!(crate::harness::read_all(data), b"public");
    let mut c = Raw::login(server.addr, "alice");
    let mut data = c.pasv();
    assert!(c.cmd("STOR new.txt").starts_with("150 "));
    std::io::Write::write_all(&mut data, b"x").unwrap();
    drop(data);
    assert!(c.reply().starts_with("226 "));
}

/// A vsftpd-style layout: a root the server's user may not write (vsftpd
/// even insists on it) with a writable `incoming/`. It starts, with a
/// warning that names the subdirectory (check-config says the same);
/// uploads into the root get 550, into `incoming/` they work.
#[test]
fn a_read_only_root_with_a_writable_subdirectory_starts_with_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    if !running_as_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let alice = dir.path().join("alice");
    std::fs::create_dir(&alice).unwrap();
    std::fs::set_permissions(&alice, std::fs::Permissions::from_mode(0o755)).unwrap();
    let incoming = alice.join("incoming");
    std::fs::create_dir(&incoming).unwrap();
    std::os::unix::fs::chown(&incoming, Some(65534), None).unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nuser = \"nobody\"\n\
             [[users]]\nname = \"alice\"\npassword_hash = \"{}\"\nroot = \"{}\"\n\
             permissions = [\"read\", \"write\"]\n",
            crate::harness::password_hash(),
            alice.display()
        ),
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&cfg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!(
            "warning: root directory {} (of user alice) is read-only to the server's user, \
             nobody: uploads and MKD in it get 550; its subdirectories incoming take them",
            alice.display()
        )),
        "{stdout}"
    );
    let server = crate::harness::Server::start_from_config(dir, &cfg);
    let mut c = Raw::login(server.addr, "alice");
    let _data = c.pasv();
    assert!(c.cmd("STOR top.txt").starts_with("550 "));
    let mut data = c.pasv();
    assert!(c.cmd("STOR incoming/new.txt").starts_with("150 "));
    std::io::Write::write_all(&mut data, b"x").unwrap();
    drop(data);
    assert!(c.reply().starts_with("226 "));
    assert_eq!(std::fs::read(incoming.join("new.txt")).unwrap(), b"x");
}

/// gen-cert's key is owner-only, whatever the umask and even when it
/// replaces a key file that was readable by others; run as root, it is
/// also readable by the group of the user the server will run as (nobody
/// by default, whom `serve` without a config becomes), so that a reload
/// as that user can read it.
#[test]
fn gen_cert_key_is_owner_only_even_over_an_old_file() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, "old").unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new(BIN)
        .args(["gen-cert", "--host", "localhost", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let meta = std::fs::metadata(&key).unwrap();
    let mode = meta.permissions().mode() & 0o777;
    if euid_of(std::process::id()) == Some(0) {
        assert_eq!((mode, meta.uid(), meta.gid()), (0o640, 0, 65534));
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(said.contains("so that user nobody can reload it"), "{said}");
    } else {
        assert_eq!(mode, 0o600);
    }
    assert!(std::fs::read_to_string(&key)
        .unwrap()
        .contains("PRIVATE KEY"));
}
