//! `portcullis ctl user add|passwd|disable|enable|del`: the config file
//! edited with its comments kept, validated before it is written (a
//! refused change leaves it byte-identical), and the running server taking
//! the change at its reload, without a restart.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{Raw, Server, Setup, BIN, PASSWORD};

/// Run `portcullis ctl --config CONFIG user ARGS`, `stdin` on its
/// standard input: (success, stdout, stderr).
fn ctl_user(config: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(BIN)
        .arg("ctl")
        .arg("--config")
        .arg(config)
        .arg("user")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run portcullis ctl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The first reply to `user`'s PASS `password`.
fn login_reply(server: &Server, user: &str, password: &str) -> String {
    let mut c = Raw::connect(server.addr);
    assert!(c.cmd(&format!("USER {user}")).starts_with("331 "));
    c.cmd(&format!("PASS {password}"))
}

/// `ctl user` said how it made the server reload (through the control
/// API, or failing that SIGHUP to the pid in `server.pid_file`): wait for
/// the `n`th (0-based) successful reload.
fn reloaded(server: &Server, out: &str, n: usize, through_api: bool) {
    match through_api {
        true => assert!(out.contains("the server reloaded: "), "{out}"),
        false => assert!(
            out.contains(&format!("sent SIGHUP to the server (pid {}", server.pid())),
            "{out}"
        ),
    }
    // The server's own line: a reload through the API also writes an
    // audit line saying "config reloaded", which must not count.
    server.wait_for_log(
        "config reloaded: new sessions use it",
        n,
        Duration::from_secs(10),
    );
}

#[test]
fn ctl_user_edits_the_file_and_a_reload_applies_it() {
    let run = tempfile::tempdir().unwrap();
    let pid_file = run.path().join("portcullis.pid");
    let socket = run.path().join("control.sock");
    let server = Server::start_with(Setup {
        watch_log: true,
        extra_server: Box::leak(format!("pid_file = \"{}\"", pid_file.display()).into_boxed_str()),
        sections: Box::leak(
            format!("[control]\nsocket = \"{}\"\n", socket.display()).into_boxed_str(),
        ),
        ..Setup::default()
    });
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        format!("{}\n", server.pid())
    );
    let config = server.config();
    // An operator's comments, which every edit must keep.
    let original = std::fs::read_to_string(&config).unwrap();
    let commented = format!(
        "# Operator's notes: keep this line.\n{}\n# The end, also kept.\n",
        original.replace(
            "[[users]]\nname = \"bob\"",
            "# Bob reads only.\n[[users]]\nname = \"bob\""
        )
    );
    std::fs::write(&config, &commented).unwrap();
    let carol_root = server.dir.path().join("carol");
    std::fs::create_dir(&carol_root).unwrap();

    // Unknown before: 530.
    assert!(login_reply(&server, "carol", "carol's pass").starts_with("530 "));
    // add: the password from stdin, then a login after the reload that
    // ctl asked for (SIGHUP to the pid in server.pid_file).
    let (ok, out, err) = ctl_user(
        &config,
        &[
            "add",
            "carol",
            "--root",
            carol_root.to_str().unwrap(),
            "--permissions",
            "read,write,mkdir",
            "--password-stdin",
        ],
        "carol's pass\n",
    );
    assert!(ok, "{out}{err}");
    assert!(out.contains("added user carol"), "{out}");
    let text = std::fs::read_to_string(&config).unwrap();
    for kept in [
        "# Operator's notes: keep this line.",
        "# Bob reads only.",
        "# The end, also kept.",
    ] {
        assert!(text.contains(kept), "{kept:?} lost:\n{text}");
    }
    assert!(text.contains("$argon2id$"), "{text}");
    assert!(
        !text.contains("carol's pass"),
        "the password in clear:\n{text}"
    );
    reloaded(&server, &out, 0, true);
    assert!(login_reply(&server, "carol", "carol's pass").starts_with("230 "));
    let mut c = Raw::connect(server.addr);
    assert!(c.cmd("USER carol").starts_with("331 "));
    assert!(c.cmd("PASS carol's pass").starts_with("230 "));
    assert!(c.cmd("MKD made-by-carol").starts_with("257 "));
    assert!(carol_root.join("made-by-carol").is_dir());

    // passwd
    let (ok, out, err) = ctl_user(
        &config,
        &["passwd", "carol", "--password-stdin"],
        "new one\n",
    );
    assert!(ok, "{out}{err}");
    reloaded(&server, &out, 1, true);
    assert!(login_reply(&server, "carol", "carol's pass").starts_with("530 "));
    assert!(login_reply(&server, "carol", "new one").starts_with("230 "));

    // disable: 530 with the right password, and the log says why.
    let (ok, out, err) = ctl_user(&config, &["disable", "alice"], "");
    assert!(ok, "{out}{err}");
    assert!(std::fs::read_to_string(&config)
        .unwrap()
        .contains("disabled = true"));
    reloaded(&server, &out, 2, true);
    assert_eq!(
        login_reply(&server, "alice", PASSWORD),
        "530 Login incorrect."
    );
    let log = server.wait_for_log("account disabled", 0, Duration::from_secs(10));
    assert!(
        log.lines().any(|l| l.contains("failed login")
            && l.contains("user=\"alice\"")
            && l.contains("backend=\"config\"")),
        "{log}"
    );
    // enable
    let (ok, out, err) = ctl_user(&config, &["enable", "alice"], "");
    assert!(ok, "{out}{err}");
    reloaded(&server, &out, 3, true);
    assert!(login_reply(&server, "alice", PASSWORD).starts_with("230 "));

    // del, with the control socket out of reach: ctl falls back to
    // SIGHUP to the pid in server.pid_file.
    let away = run.path().join("control.sock.away");
    std::fs::rename(&socket, &away).unwrap();
    let (ok, out, err) = ctl_user(&config, &["del", "carol"], "");
    std::fs::rename(&away, &socket).unwrap();
    assert!(ok, "{out}{err}");
    assert!(out.contains("no reload through the control API"), "{out}");
    reloaded(&server, &out, 4, false);
    assert!(login_reply(&server, "carol", "new one").starts_with("530 "));
    // All edits undone but the first: the operator's file again, with
    // alice's entry as it was.
    assert_eq!(std::fs::read_to_string(&config).unwrap(), commented);
}

#[test]
fn a_change_that_fails_validation_leaves_the_file_byte_identical() {
    let server = Server::start();
    let config = server.config();
    let before = std::fs::read(&config).unwrap();
    let root = server.dir.path().to_str().unwrap().to_owned();
    let refused: [(&[&str], &str, &str); 5] = [
        // An unknown permission.
        (
            &[
                "add",
                "eve",
                "--root",
                &root,
                "--permissions",
                "read,fly",
                "--password-stdin",
            ],
            "pw\n",
            "fly",
        ),
        // A name taken, a reserved one, one with a space.
        (
            &["add", "alice", "--root", &root, "--password-stdin"],
            "pw\n",
            "exists already",
        ),
        (
            &["add", "ftp", "--root", &root, "--password-stdin"],
            "pw\n",
            "reserved",
        ),
        (
            &["add", "two words", "--root", &root, "--password-stdin"],
            "pw\n",
            "without spaces",
        ),
        // Nobody of that name.
        (
            &["disable", "nobody"],
            "",
            "no [[users]] entry named \"nobody\"",
        ),
    ];
    for (args, stdin, why) in refused {
        let (ok, out, err) = ctl_user(&config, args, stdin);
        assert!(!ok, "{args:?} succeeded: {out}");
        assert!(err.contains(why), "{args:?}: {err}");
        assert_eq!(
            std::fs::read(&config).unwrap(),
            before,
            "{args:?} changed the file"
        );
    }
    // No password on stdin and no terminal: refused before any edit.
    let (ok, _, err) = ctl_user(&config, &["passwd", "alice"], "");
    assert!(!ok && err.contains("--password-stdin"), "{err}");
    assert_eq!(std::fs::read(&config).unwrap(), before);
    // Nothing left beside the file.
    let stray: Vec<_> = std::fs::read_dir(server.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}
