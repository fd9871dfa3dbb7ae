//! Command hooks' bounds: a program still running at `timeout` is killed
//! with what it started, and retried, then dropped; at most `concurrency` run at once; and
//! they run as the server's user.

use std::time::{Duration, Instant};

use super::{is_root, metric, start};
use crate::harness::{stor, Raw, Server, Setup};

/// A command hook's section: `script` run by /bin/sh (only to write what
/// the test reads; the server runs the argv without a shell of its own).
fn command_hook(name: &str, on: &str, script: &str, extra: &str) -> String {
    format!(
        "[[events.hooks]]\nname = \"{name}\"\non = [{on}]\naction = \"command\"\n\
         command = [\"/bin/sh\", \"-c\", {script:?}]\nretry_delay = \"50ms\"\n{extra}\n"
    )
}

/// Is process `pid` gone (reaped, or a zombie no longer running)?
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // "pid (comm) S ...": the state follows the command's ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

/// One server, three hooks: `slow` starts a background sleep and sleeps
/// past its timeout (killed with its background child, retried once,
/// dropped), `two` (concurrency = 2) marks its start and
/// end in a file, and `who` writes `id -u`: as root with
/// `server.user = "nobody"`, nobody's uid (else SKIP for that part).
#[test]
fn command_hooks_are_timed_out_bounded_and_run_as_the_server_user() {
    use std::os::unix::fs::PermissionsExt;
    let out = tempfile::tempdir().unwrap();
    // The server's user writes here.
    std::fs::set_permissions(out.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let dir = out.path().display();
    let root = is_root();
    let mut hooks = command_hook(
        "slow",
        "\"mkdir\"",
        &format!(
            "sleep 30 & echo $! >> {dir}/slow.kids; echo $$ >> {dir}/slow.pids; exec sleep 30"
        ),
        "timeout = \"300ms\"\nmax_attempts = 2",
    );
    hooks += &command_hook(
        "two",
        "\"upload\"",
        &format!("echo start >> {dir}/marks; sleep 0.3; echo end >> {dir}/marks"),
        "concurrency = 2\ntimeout = \"10s\"",
    );
    hooks += &command_hook("who", "\"rmdir\"", &format!("id -u > {dir}/uid"), "");
    let server = match root {
        true => Server::start_with(Setup {
            sections: Box::leak(hooks.into_boxed_str()),
            run_as: Some("nobody"),
            watch_log: true,
            metrics: true,
            ..Setup::default()
        }),
        false => start(hooks),
    };
    let mut c = Raw::login(server.addr, "alice");
    let t = Instant::now();
    assert!(c.cmd("MKD m").starts_with("257"));
    for i in 0..6 {
        assert!(stor(&mut c, &format!("u{i}"), b"x").starts_with("226"));
    }
    assert!(c.cmd("RMD m").starts_with("250"));
    // slow: two attempts, each killed at 300 ms, then dropped.
    let log = server.wait_for_log("hook event dropped", 0, Duration::from_secs(10));
    let line = log
        .lines()
        .find(|l| l.contains("hook event dropped"))
        .unwrap();
    assert!(line.contains("hook=\"slow\""), "{line}");
    assert!(line.contains("still running after 300ms, killed"), "{line}");
    assert!(line.contains("2 attempts made"), "{line}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let pids: Vec<u32> = std::fs::read_to_string(out.path().join("slow.pids"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 2, "{pids:?}");
    let kids: Vec<u32> = std::fs::read_to_string(out.path().join("slow.kids"))
        .unwrap()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(kids.len(), 2, "{kids:?}");
    // Killed, and what they started too (SIGKILL takes effect when the
    // process is next scheduled).
    let deadline = Instant::now() + Duration::from_secs(5);
    for p in pids.iter().chain(&kids) {
        while !gone(*p) {
            assert!(Instant::now() < deadline, "pid {p} still runs its sleep");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let retried = metric(
        &server,
        "portcullis_hook_events_total{hook=\"slow\",step=\"retried\"}",
    );
    assert!(retried.ends_with(" 1"), "{retried}");
    // two: all six ran, never more than two at once, and two did.
    let delivered = |hook: &str| {
        metric(
            &server,
            &format!("portcullis_hook_events_total{{hook=\"{hook}\",step=\"delivered\"}}"),
        )
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !delivered("two").ends_with(" 6") {
        assert!(Instant::now() < deadline, "{}", delivered("two"));
        std::thread::sleep(Duration::from_millis(50));
    }
    let marks = std::fs::read_to_string(out.path().join("marks")).unwrap();
    let (mut now, mut most) = (0i32, 0i32);
    for m in marks.lines() {
        now += if m == "start" { 1 } else { -1 };
        most = most.max(now);
    }
    assert_eq!(marks.lines().count(), 12, "{marks}");
    assert_eq!(most, 2, "{marks}");
    // who: the uid the program ran as.
    while !delivered("who").ends_with(" 1") {
        assert!(Instant::now() < deadline, "{}", delivered("who"));
        std::thread::sleep(Duration::from_millis(50));
    }
    let uid = std::fs::read_to_string(out.path().join("uid")).unwrap();
    if root {
        assert_eq!(uid.trim(), "65534", "nobody's uid");
    } else {
        crate::harness::skip("root (a command hook run as server.user)");
    }
}
