//! The operator's first hour: `check-config` refuses what `serve` or a
//! reload would refuse, and each message names the key and the fix.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use crate::cli::{check_config, running_as_root};
use crate::harness::BIN;

/// A directory every user may enter, whatever the umask, so that only
/// the files' own modes decide.
fn open_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

fn write(dir: &Path, name: &str, text: &str, mode: u32) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn check_config_takes_the_file_as_an_argument_or_with_config() {
    let dir = open_dir();
    let cfg = write(
        dir.path(),
        "c.toml",
        "[server]\nlisten = [\"127.0.0.1:2121\"]\nallow_root = true\n",
        0o644,
    );
    let positional = check_config(&cfg);
    assert!(positional.status.success(), "{}", text(&positional));
    let flag = Command::new(BIN)
        .args(["check-config", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(flag.status.success(), "{}", text(&flag));
    assert!(text(&flag).contains(": OK"), "{}", text(&flag));
    // Neither, or both: clap's usage error.
    let neither = Command::new(BIN).arg("check-config").output().unwrap();
    assert_eq!(neither.status.code(), Some(2), "{}", text(&neither));
    let both = Command::new(BIN)
        .arg("check-config")
        .arg(&cfg)
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(both.status.code(), Some(2), "{}", text(&both));
}

#[test]
fn check_config_refuses_a_listener_inside_the_passive_ports() {
    let dir = open_dir();
    let cfg = write(
        dir.path(),
        "c.toml",
        "[server]\nlisten = [\"127.0.0.1:50010\"]\nallow_root = true\n\
         [passive]\nports = \"50000-50100\"\n",
        0o644,
    );
    let out = check_config(&cfg);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out)
            .contains("server.listen[0]: port 50010 lies inside passive.ports = \"50000-50100\""),
        "{}",
        text(&out)
    );
}

/// Started as root without `server.user`, serve refuses; check-config,
/// run as root, says so before (it used to say OK).
#[test]
fn check_config_as_root_refuses_what_serve_as_root_refuses() {
    if !running_as_root() {
        return;
    }
    let dir = open_dir();
    let cfg = write(
        dir.path(),
        "c.toml",
        "[server]\nlisten = [\"127.0.0.1:0\"]\n",
        0o644,
    );
    let out = check_config(&cfg);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("server.user: not set: refusing to serve as root: set server.user"),
        "{}",
        text(&out)
    );
}

/// The files a reload reads as the server's user: a key written 0600 by
/// root (as gen-cert run as root used to) and a config file the user
/// cannot read are refused, each with the command that fixes it.
#[test]
fn check_config_as_root_refuses_files_the_server_user_cannot_reload() {
    if !running_as_root() {
        return;
    }
    let dir = open_dir();
    let made = Command::new(BIN)
        .args(["gen-cert", "--host", "localhost", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    let key = dir.path().join("key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let body = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nuser = \"nobody\"\n\
         [tls]\ncert = \"{0}/cert.pem\"\nkey = \"{0}/key.pem\"\n",
        dir.path().display()
    );
    let cfg = write(dir.path(), "c.toml", &body, 0o644);
    let out = check_config(&cfg);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("tls.key: ") && t.contains("for user nobody"),
        "{t}"
    );
    assert!(t.contains(&format!("chmod g+r {}", key.display())), "{t}");
    assert!(!t.contains("tls.cert"), "{t}");
    // Readable by the group: OK.
    let group = t.split("chgrp ").nth(1).unwrap().split(' ').next().unwrap();
    assert!(Command::new("chgrp")
        .arg(group)
        .arg(&key)
        .status()
        .unwrap()
        .success());
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = check_config(&cfg);
    assert!(out.status.success(), "{}", text(&out));
    // [tls.client_auth]'s CA file, 0600 root's, is read again too.
    let ca = dir.path().join("ca.pem");
    std::fs::copy(dir.path().join("cert.pem"), &ca).unwrap();
    std::fs::set_permissions(&ca, std::fs::Permissions::from_mode(0o600)).unwrap();
    let with_ca = format!("{body}[tls.client_auth]\nca_file = \"{}\"\n", ca.display());
    let ca_cfg = write(dir.path(), "ca.toml", &with_ca, 0o644);
    let out = check_config(&ca_cfg);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("tls.client_auth.ca_file: ") && text(&out).contains("for user nobody"),
        "{}",
        text(&out)
    );
    // The config file itself, 0600 root's.
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = check_config(&cfg);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("the config file: ") && text(&out).contains("SIGHUP"),
        "{}",
        text(&out)
    );
}

/// Run by a user who is not root, a listener below 1024 is named with
/// the two ways to bind it.
#[test]
fn check_config_says_when_a_low_port_needs_a_root_start() {
    if !running_as_root() {
        return;
    }
    let dir = open_dir();
    let cfg = write(
        dir.path(),
        "c.toml",
        "[server]\nlisten = [\"127.0.0.1:21\", \"127.0.0.1:2121\"]\n",
        0o644,
    );
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "check-config",
        ])
        .arg(&cfg)
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            crate::harness::skip(&format!("setpriv ({e})"));
            return;
        }
    };
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("warning: server.listen[0]: port 21 is below 1024: start the server as root"),
        "{t}"
    );
    assert!(t.contains("CAP_NET_BIND_SERVICE"), "{t}");
    assert!(!t.contains("server.listen[1]"), "{t}");
}

/// An s3:// root with neither endpoint nor keys: OK (the instance's role
/// is valid on EC2), with a warning naming the section and the fix.
#[test]
fn check_config_warns_about_an_object_store_without_endpoint_or_keys() {
    let dir = open_dir();
    let cfg = write(
        dir.path(),
        "c.toml",
        "[server]\nlisten = [\"127.0.0.1:0\"]\nallow_root = true\n\
         [anonymous]\nenabled = true\nroot = \"s3://pub-bucket/files\"\n",
        0o644,
    );
    let out = check_config(&cfg);
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("warning: anonymous.root: s3://pub-bucket/files: [s3] has neither endpoint nor access_key_id"),
        "{t}"
    );
}

/// `--version` says whether this build has the PAM back end.
#[test]
fn version_names_the_build_features() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    let want = if cfg!(feature = "pam") {
        "+pam"
    } else {
        "-pam"
    };
    assert_eq!(
        said.trim(),
        format!(
            "portcullis {} (features: {want})",
            env!("CARGO_PKG_VERSION")
        )
    );
}

/// Rules for another host: the xferlog's directory, the roots, the
/// certificate and `server.user` are that host's, not looked up here; the
/// text's own mistakes are still refused.
#[test]
fn firewall_needs_only_what_the_rules_need() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write(
        dir.path(),
        "other-host.toml",
        "[server]\nlisten = [\"0.0.0.0:21\"]\nuser = \"no-such-user-here\"\n\
         [passive]\nports = \"50000-50100\"\n\
         [tls]\ncert = \"/nonexistent/cert.pem\"\nkey = \"/nonexistent/key.pem\"\n\
         [log]\nxferlog = \"/nonexistent/dir/xferlog\"\n\
         [anonymous]\nenabled = true\nroot = \"/nonexistent/pub\"\n",
        0o644,
    );
    let out = Command::new(BIN)
        .args(["firewall", "--format", "nftables", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let rules = String::from_utf8_lossy(&out.stdout);
    assert!(rules.contains("50000-50100"), "{rules}");
    assert!(rules.contains("21"), "{rules}");
    // check-config, for this host, still refuses all of them.
    let out = check_config(&cfg);
    assert_eq!(out.status.code(), Some(1));
    let t = text(&out);
    for key in ["server.user", "tls", "log.xferlog", "anonymous.root"] {
        assert!(t.contains(key), "{key} missing: {t}");
    }
    // A mistake in the text is a mistake for any host.
    let bad = write(
        dir.path(),
        "bad.toml",
        "[passive]\nports = \"9-1\"\n",
        0o644,
    );
    let out = Command::new(BIN)
        .args(["firewall", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("passive.ports"), "{}", text(&out));
}

/// A name listing is logged as the NLST it was, not as a LIST.
#[test]
fn nlst_is_logged_as_nlst() {
    use crate::harness::{read_all, Raw, Server, Setup};
    use std::time::Duration;
    let server = Server::start_with(Setup {
        watch_log: true,
        ..Setup::default()
    });
    let mut c = Raw::login(server.addr, "alice");
    for verb in ["NLST", "LIST"] {
        let data = c.pasv();
        assert!(c.cmd(verb).starts_with("150 "));
        read_all(data);
        assert!(c.reply().starts_with("226 "));
    }
    // The transfer lines (a command's line has its code after the verb).
    let log = server.wait_for_log("verb=\"LIST\" path=", 0, Duration::from_secs(10));
    let transfers: Vec<&str> = log.lines().filter(|l| l.contains("\" path=")).collect();
    assert_eq!(transfers.len(), 2, "{log}");
    assert!(
        transfers[0].contains("verb=\"NLST\" path="),
        "{transfers:?}"
    );
    assert!(
        transfers[1].contains("verb=\"LIST\" path="),
        "{transfers:?}"
    );
}

/// Type mistakes are said as what was meant, every one in one run.
#[test]
fn check_config_says_what_was_meant_for_every_mistake_at_once() {
    let dir = open_dir();
    let cfg = write(
        dir.path(),
        "c.toml",
        "[server]\nlisten = \"0.0.0.0:2121\"\nidle_timout = \"5m\"\n\
         [limits]\nmax_sessions = \"1000\"\n\
         [users]\nname = \"alice\"\n",
        0o644,
    );
    let out = check_config(&cfg);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    for said in [
        "server.listen: a list is needed, in brackets: listen = [\"0.0.0.0:2121\"] (line 2)",
        "server.idle_timout: unknown key; did you mean `idle_timeout`? (line 3)",
        "limits.max_sessions: a number is needed, without quotes: max_sessions = 1000 (line 5)",
        "users: written as a table [users]; each entry is an array of tables, \
         written with double brackets: [[users]] (line 6)",
    ] {
        assert!(t.contains(said), "{said}\nmissing from:\n{t}");
    }
}

/// Started as root with `server.user`: the xferlog is that user's from
/// the start, and after a rotation without logrotate's `create` (the file
/// moved away) SIGUSR1's reopen makes a new one as that user.
#[test]
fn the_xferlog_reopens_after_a_rotation_without_create() {
    if !running_as_root() {
        return;
    }
    use crate::harness::{Raw, Server, Setup};
    use std::os::unix::fs::MetadataExt;
    use std::time::Duration;
    let server = Server::start_with(Setup {
        run_as: Some("nobody"),
        xferlog: true,
        watch_log: true,
        ..Setup::default()
    });
    let log = server.xferlog();
    assert_eq!(std::fs::metadata(&log).unwrap().uid(), 65534);
    let upload = |name: &str| {
        let mut c = Raw::login(server.addr, "alice");
        assert!(crate::harness::stor(&mut c, name, b"data").starts_with("226 "));
    };
    upload("one.txt");
    std::fs::rename(&log, log.with_extension("1")).unwrap();
    server.signal("USR1");
    server.wait_for_log("xferlog reopened", 0, Duration::from_secs(10));
    upload("two.txt");
    let meta = std::fs::metadata(&log).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (65534, 0o640));
    let fresh = std::fs::read_to_string(&log).unwrap();
    assert!(
        fresh.contains("/two.txt") && !fresh.contains("/one.txt"),
        "{fresh}"
    );
    let old = std::fs::read_to_string(log.with_extension("1")).unwrap();
    assert!(old.contains("/one.txt"), "{old}");
}

/// The README's FTPS quick start run as root: gen-cert, then serve without
/// a config (which runs as nobody); a SIGHUP reloads the certificate, which
/// nobody can read because gen-cert gave the key to nobody's group.
#[test]
fn the_ftps_one_liner_as_root_survives_a_sighup() {
    if !running_as_root() {
        return;
    }
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let dir = open_dir();
    let tls = dir.path().join("tls");
    let made = Command::new(BIN)
        .args(["gen-cert", "--host", "localhost", "--out"])
        .arg(&tls)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", text(&made));
    let ports = crate::harness::passive_ports(4);
    let child = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--passive-ports",
            &ports,
        ])
        .arg("--root")
        .arg(dir.path().join("share"))
        .arg("--tls-cert")
        .arg(tls.join("cert.pem"))
        .arg("--tls-key")
        .arg(tls.join("key.pem"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed and reaped even when an assertion below fails.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Reap(child);
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let err = BufReader::new(child.0.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in err.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut banner = String::new();
    for _ in 0..30 {
        let mut l = String::new();
        if out.read_line(&mut l).unwrap() == 0 {
            break;
        }
        banner.push_str(&l);
        if l.contains("active data connections") {
            break;
        }
    }
    assert!(banner.contains("FTPS: AUTH TLS optional"), "{banner}");
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let hup = Command::new("kill")
        .args(["-HUP", &child.0.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut log = String::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(line) = rx.recv_timeout(left) else {
            panic!("no reload in the log within 10 s:\n{log}");
        };
        log.push_str(&line);
        log.push('\n');
        if line.contains("TLS certificate reloaded") {
            break;
        }
        assert!(!line.contains("reload failed"), "{log}");
    }
    assert!(!log.contains("SIGHUP reload"), "a start-up warning:\n{log}");
}

/// The xferlog is opened as the server's user: check-config, run as root,
/// refuses a directory that user cannot create it in, as serve would.
#[test]
fn check_config_as_root_refuses_an_xferlog_the_server_user_cannot_open() {
    if !running_as_root() {
        return;
    }
    let dir = open_dir();
    let logs = dir.path().join("log");
    std::fs::create_dir(&logs).unwrap();
    let body = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nuser = \"nobody\"\n\
         [log]\nxferlog = \"{}/xferlog\"\n",
        logs.display()
    );
    let cfg = write(dir.path(), "c.toml", &body, 0o644);
    let out = check_config(&cfg);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("log.xferlog: ") && t.contains("cannot be created in"),
        "{t}"
    );
    assert!(
        t.contains(&format!("chown nobody {}", logs.display())),
        "{t}"
    );
    // Given to nobody: OK, and nothing was written.
    let owned = Command::new("chown").arg("nobody").arg(&logs).status();
    assert!(owned.unwrap().success());
    let out = check_config(&cfg);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!logs.join("xferlog").exists());
}
