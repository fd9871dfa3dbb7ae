//! What every back end's accounts share: `max_sessions` per account, the
//! same delay for an unknown name as for a wrong password, the positive
//! cache (`auth.cache_ttl`), and a hook URL whose credentials stay out of
//! every log line and `check-config` message. The hook is served by the
//! test (`accounts::Hook`), logins are raw FTP.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::accounts::{try_login, Hook};
use crate::harness::{Server, Setup, BIN, PASSWORD};

/// `[auth]` with the hook first, and more lines for `[auth]` (`auth`) and
/// `[auth.http]` (`http`).
fn hook_sections(url: &str, auth: &str, http: &str) -> &'static str {
    Box::leak(
        format!("[auth]\norder = [\"http\", \"config\"]\n{auth}\n[auth.http]\nurl = \"{url}\"\n{http}\n")
            .into_boxed_str(),
    )
}

/// A hook that knows carol (password "carol-pw", root `root`, with the
/// account keys `extra`) and no one else (404).
fn carol_hook(root: &std::path::Path, extra: serde_json::Value) -> Hook {
    let root = root.display().to_string();
    Hook::start(move |req| {
        let mut account = serde_json::json!({ "root": root });
        for (k, v) in extra.as_object().unwrap() {
            account[k] = v.clone();
        }
        match (req["user"].as_str(), req["password"].as_str()) {
            (Some("carol"), Some("carol-pw")) => (200, account.to_string(), Duration::ZERO),
            (Some("carol"), _) => (401, "{}".into(), Duration::ZERO),
            _ => (404, "{}".into(), Duration::ZERO),
        }
    })
}

/// Log in again until it works (the server frees a session's place when
/// it has seen the client go), at most 20 s.
fn login_when_free(server: &Server, user: &str, password: &str) -> crate::harness::Raw {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (r, c) = try_login(server, user, password);
        if r.starts_with("230 ") {
            return c;
        }
        assert!(r.starts_with("421 "), "{r}");
        assert!(Instant::now() < deadline, "the place was not freed: {r}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn accounts_max_sessions_per_account_from_users_and_the_hook() {
    let carol_root = tempfile::tempdir().unwrap();
    let hook = carol_hook(carol_root.path(), serde_json::json!({ "max_sessions": 1 }));
    let server = Server::start_with(Setup {
        sections: hook_sections(&hook.url(), "", ""),
        alice_extra: "max_sessions = 2",
        // Were the refusals below counted, the third would ban.
        limits: "max_login_failures = 3",
        ..Setup::default()
    });
    let (r, a1) = try_login(&server, "alice", PASSWORD);
    assert!(r.starts_with("230 "), "{r}");
    let (r, _a2) = try_login(&server, "alice", PASSWORD);
    assert!(r.starts_with("230 "), "{r}");
    for _ in 0..3 {
        let (r, mut c) = try_login(&server, "alice", PASSWORD);
        assert_eq!(
            r,
            "421 Too many sessions of this user (2); try again later.",
            "{}",
            server.log()
        );
        assert!(c.closed());
    }
    // Another account is not limited by alice's count; bob has no limit.
    let _bobs: Vec<_> = (0..3)
        .map(|_| {
            let (r, c) = try_login(&server, "bob", PASSWORD);
            assert!(r.starts_with("230 "), "{r}");
            c
        })
        .collect();
    // A session that ends frees its place.
    let mut a1 = a1;
    assert!(a1.cmd("QUIT").starts_with("221 "));
    drop(a1);
    let _a3 = login_when_free(&server, "alice", PASSWORD);

    // The hook's account: one at a time.
    let (r, c1) = try_login(&server, "carol", "carol-pw");
    assert!(r.starts_with("230 "), "{r}");
    let (r, mut c) = try_login(&server, "carol", "carol-pw");
    assert!(
        r.starts_with("421 Too many sessions of this user (1)"),
        "{r}"
    );
    assert!(c.closed());
    drop(c1);
    let _c2 = login_when_free(&server, "carol", "carol-pw");

    // None of the four 421s counted: two wrong passwords are not a ban yet.
    for _ in 0..2 {
        let (r, _c) = try_login(&server, "alice", "wrong");
        assert!(r.starts_with("530 "), "{r}");
    }
    assert!(server.log().contains("max_sessions"), "{}", server.log());
}

#[test]
fn accounts_unknown_users_and_wrong_passwords_cost_the_same_delay() {
    let carol_root = tempfile::tempdir().unwrap();
    let root = carol_root.path().display().to_string();
    // The hook takes 1 s to say it does not know a name, and answers a
    // wrong password at once: the replies must not tell them apart.
    let hook = Hook::start(
        move |req| match (req["user"].as_str(), req["password"].as_str()) {
            (Some("carol"), Some("carol-pw")) => (
                200,
                serde_json::json!({ "root": root }).to_string(),
                Duration::ZERO,
            ),
            (Some("carol"), _) => (401, "{}".into(), Duration::ZERO),
            _ => (404, "{}".into(), Duration::from_secs(1)),
        },
    );
    let delay = Duration::from_secs(2);
    let server = Server::start_with(Setup {
        sections: hook_sections(&hook.url(), "", ""),
        failed_login_delay: "2s",
        limits: "max_login_failures = 0",
        ..Setup::default()
    });
    let timed = |user: &str, password: &str| {
        let mut c = crate::harness::Raw::connect(server.addr);
        assert!(c.cmd(&format!("USER {user}")).starts_with("331 "));
        let t = Instant::now();
        let r = c.cmd(&format!("PASS {password}"));
        (r, t.elapsed())
    };
    let (wrong, wrong_took) = timed("carol", "wrong");
    let (unknown, unknown_took) = timed("ghost", "whatever");
    let (config_wrong, config_took) = timed("alice", "wrong");
    for (r, took) in [
        (&wrong, wrong_took),
        (&unknown, unknown_took),
        (&config_wrong, config_took),
    ] {
        assert_eq!(r, "530 Login incorrect.");
        assert!(took >= delay, "answered after {took:?}");
    }
    // Measured from PASS, the delay hides the second the hook took for the
    // unknown name (were it added after the answer, they would differ by
    // a second and more).
    let apart = unknown_took.abs_diff(wrong_took);
    assert!(
        apart < Duration::from_millis(900),
        "unknown {unknown_took:?}, wrong {wrong_took:?}"
    );
    let (r, _c) = try_login(&server, "carol", "carol-pw");
    assert!(r.starts_with("230 "), "{r}");
}

#[test]
fn accounts_the_positive_cache_spares_the_hook_until_its_ttl() {
    let carol_root = tempfile::tempdir().unwrap();
    let hook = carol_hook(carol_root.path(), serde_json::json!({}));
    let ttl = Duration::from_secs(5);
    let server = Server::start_with(Setup {
        sections: hook_sections(&hook.url(), "cache_ttl = \"5s\"", ""),
        limits: "max_login_failures = 0",
        ..Setup::default()
    });
    let asked = || {
        hook.received()
            .iter()
            .filter(|r| r.body["user"] == "carol")
            .count()
    };
    let (r, _c1) = try_login(&server, "carol", "carol-pw");
    // The entry is made before this reply is sent.
    let first = Instant::now();
    assert!(r.starts_with("230 "), "{r}");
    assert_eq!(asked(), 1);
    let (r, _c2) = try_login(&server, "carol", "carol-pw");
    assert!(r.starts_with("230 "), "{r}");
    assert_eq!(
        asked(),
        1,
        "the second login within the ttl reached the hook"
    );
    // A wrong password is never answered from the cache.
    let (r, _c) = try_login(&server, "carol", "wrong");
    assert!(r.starts_with("530 "), "{r}");
    assert_eq!(asked(), 2, "only the wrong password reached the hook");
    // Past the ttl the hook is asked again.
    while first.elapsed() < ttl + Duration::from_millis(200) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (r, _c3) = try_login(&server, "carol", "carol-pw");
    assert!(r.starts_with("230 "), "{r}");
    assert_eq!(asked(), 3);
}

#[test]
fn accounts_hook_credentials_in_the_url_are_sent_and_never_shown() {
    let carol_root = tempfile::tempdir().unwrap();
    let root = carol_root.path().display().to_string();
    let hook = Hook::start(move |req| match req["user"].as_str() {
        Some("carol") => (
            200,
            serde_json::json!({ "root": root }).to_string(),
            Duration::ZERO,
        ),
        _ => (500, "{}".into(), Duration::ZERO),
    });
    let url = format!("http://ftp-node:hook%3Asecret@{}/ftp-login", hook.addr);
    let server = Server::start_with(Setup {
        sections: hook_sections(&url, "", ""),
        ..Setup::default()
    });
    let (r, _c) = try_login(&server, "carol", "carol-pw");
    assert!(r.starts_with("230 "), "{r} {}", server.log());
    let asked = hook.received();
    // base64("ftp-node:hook:secret")
    assert!(
        asked[0]
            .headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("authorization: Basic ZnRwLW5vZGU6aG9vazpzZWNyZXQ=")),
        "{:?}",
        asked[0].headers
    );
    assert!(
        asked[0]
            .headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&format!("host: {}", hook.addr))),
        "no credentials in Host: {:?}",
        asked[0].headers
    );
    // A failure names the URL, without its credentials.
    let (r, _c) = try_login(&server, "broken", "x");
    assert!(r.starts_with("421 "), "{r}");
    let log = server.log();
    assert!(log.contains("http://***@127.0.0.1"), "{log}");
    assert!(!log.contains("secret"), "credentials in the log: {log}");

    // check-config: neither a bad URL nor a warning shows them.
    let dir = tempfile::tempdir().unwrap();
    let check = |auth: &str| {
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            format!(
                "[server]\nallow_root = true\n[anonymous]\nenabled = true\nroot = \"{}\"\n{auth}",
                dir.path().display()
            ),
        )
        .unwrap();
        let out = Command::new(BIN)
            .arg("check-config")
            .arg(&file)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!text.contains("secret"), "credentials shown: {text}");
        (out.status.success(), text)
    };
    let (ok, text) =
        check("[auth]\norder = [\"http\"]\n[auth.http]\nurl = \"ftp://u:secret@host/\"\n");
    assert!(
        !ok && text.contains("auth.http.url") && text.contains("***@"),
        "{text}"
    );
    let (ok, text) = check(&format!(
        "[auth]\norder = [\"http\"]\n[auth.http]\nurl = \"{url}\"\nbearer_token = \"t\"\n"
    ));
    assert!(!ok && text.contains("bearer_token"), "{text}");
    let (ok, text) = check(&format!(
        "[auth]\norder = [\"config\"]\n[auth.http]\nurl = \"{url}\"\n"
    ));
    assert!(ok && text.contains("auth.http: not used"), "{text}");
}
