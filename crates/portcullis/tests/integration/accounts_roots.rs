//! Where a back end's roots may be (`auth.allowed_roots`), through the
//! `[auth.http]` hook of `accounts`: a hook answering `/` or a root that
//! climbs with `..` gets 421 and a warning, with or without the list; with
//! the list, a root outside it (a string-prefix look-alike included) gets
//! 421 and one inside logs in.

use std::path::Path;
use std::time::Duration;

use crate::accounts::{try_login, Hook};
use crate::harness::{Server, Setup};

/// A hook that answers every user with `{"root": <the user's root>}`
/// from `roots`, and 404 for a name not in it.
fn hook_with_roots(roots: Vec<(&'static str, String)>) -> Hook {
    Hook::start(move |req| {
        let user = req["user"].as_str().unwrap_or_default();
        match roots.iter().find(|(name, _)| *name == user) {
            Some((_, root)) => (
                200,
                serde_json::json!({ "root": root, "permissions": ["read", "mkdir"] }).to_string(),
                Duration::ZERO,
            ),
            None => (404, "{}".into(), Duration::ZERO),
        }
    })
}

/// A server asking `hook` first, with `extra` in `[auth]`.
fn server_with(hook: &Hook, extra: &str) -> Server {
    let sections: &'static str = Box::leak(
        format!(
            "[auth]\norder = [\"http\", \"config\"]\n{extra}\n[auth.http]\nurl = \"{}\"\n",
            hook.url()
        )
        .into_boxed_str(),
    );
    Server::start_with(Setup {
        sections,
        limits: "max_login_failures = 0",
        ..Setup::default()
    })
}

/// The log line that refuses `user`'s root: it names the user and the
/// root, quoted.
fn refusal_line(server: &Server, user: &str, root: &str) -> String {
    let log = server.log();
    let line = log
        .lines()
        .find(|l| {
            // The user field, quoted or bare (logfmt quotes what needs it).
            let named =
                l.contains(&format!("user=\"{user}\"")) || l.contains(&format!("user={user} "));
            l.contains("is refused") && named
        })
        .unwrap_or_else(|| panic!("no refusal of {user}'s root in: {log}"))
        .to_owned();
    assert!(line.contains("WARN"), "{line}");
    // Quoted, inside the quoted error field.
    assert!(line.contains(&format!("\\\"{root}\\\"")), "{root}: {line}");
    line
}

fn refused(server: &Server, user: &str) {
    let (r, mut c) = try_login(server, user, "hook-pw");
    assert!(r.starts_with("421 "), "{user}: {r}");
    assert!(c.closed(), "{user}");
}

#[test]
fn accounts_roots_the_whole_tree_and_climbing_are_refused_without_a_list() {
    let home = tempfile::tempdir().unwrap();
    let fine = home.path().join("carol");
    std::fs::create_dir(&fine).unwrap();
    let climbing = format!("{}/../../etc", fine.display());
    let hook = hook_with_roots(vec![
        ("root", "/".into()),
        ("slashes", "//.".into()),
        ("climber", climbing.clone()),
        ("carol", fine.display().to_string()),
    ]);
    let server = server_with(&hook, "");
    refused(&server, "root");
    refusal_line(&server, "root", "/");
    refused(&server, "slashes");
    refused(&server, "climber");
    let line = refusal_line(&server, "climber", &climbing);
    assert!(line.contains("auth.http"), "{line}");
    // A root below the tree still logs in, and the 421s were no ban.
    let (r, mut carol) = try_login(&server, "carol", "hook-pw");
    assert!(r.starts_with("230 "), "{r}");
    assert!(carol.cmd("MKD made").starts_with("257 "));
    assert!(fine.join("made").is_dir());
}

#[test]
fn accounts_roots_with_allowed_roots_a_root_must_lie_under_an_entry() {
    let d = tempfile::tempdir().unwrap();
    let allowed = d.path().join("ftp");
    // Beside the allowed directory, and a string prefix of it.
    let lookalike = d.path().join("ftpx");
    let beside = d.path().join("other");
    for dir in [allowed.join("dana"), lookalike.clone(), beside.clone()] {
        std::fs::create_dir_all(&dir).unwrap();
    }
    let shown = |p: &Path| p.display().to_string();
    let hook = hook_with_roots(vec![
        ("dana", shown(&allowed.join("dana"))),
        ("whole", shown(&allowed)),
        ("lookalike", shown(&lookalike)),
        ("beside", shown(&beside)),
    ]);
    let server = server_with(
        &hook,
        &format!(
            "allowed_roots = [\"{}\", \"s3://ftp-files/home\"]",
            allowed.display()
        ),
    );
    for user in ["lookalike", "beside"] {
        refused(&server, user);
    }
    let line = refusal_line(&server, "lookalike", &shown(&lookalike));
    assert!(
        line.contains("not under any of auth.allowed_roots"),
        "{line}"
    );
    refusal_line(&server, "beside", &shown(&beside));
    // Inside: the login works, in that root.
    let (r, mut dana) = try_login(&server, "dana", "hook-pw");
    assert!(r.starts_with("230 "), "{r}");
    assert!(dana.cmd("MKD mine").starts_with("257 "));
    assert!(allowed.join("dana/mine").is_dir());
    // The entry itself is allowed.
    let (r, _whole) = try_login(&server, "whole", "hook-pw");
    assert!(r.starts_with("230 "), "{r}");
    // The config file's own users are not checked: alice's root is
    // outside the list.
    let (r, _alice) = try_login(&server, "alice", crate::harness::PASSWORD);
    assert!(r.starts_with("230 "), "{r}");
}

/// PAM's template with `{home}`: an account whose home climbs to `/`
/// (`/tmp/..`) would get the whole tree; one outside `allowed_roots` is
/// refused and its root not created; one inside logs in, its root made.
/// (A home of `/` itself makes an empty root, refused by PAM already.)
#[cfg(feature = "pam")]
#[test]
fn accounts_roots_pam_roots_from_the_template_are_checked() {
    use crate::pam::{admin, is_root, leak, roots, Account, Service};
    if !is_root() {
        return;
    }
    let (_allowed_dir, allowed) = roots();
    let (_outside_dir, outside) = roots();
    let climber = Account::new("/bin/bash", &[]);
    let beside = Account::new("/bin/bash", &[]);
    let inside = Account::new("/bin/bash", &[]);
    let homes = [
        (&climber, std::path::PathBuf::from("/tmp/..")),
        (&beside, outside.join(&beside.name)),
        (&inside, allowed.join(&inside.name)),
    ];
    for (account, home) in &homes {
        admin(
            "usermod",
            &["-d", &home.display().to_string(), &account.name],
            None,
        );
    }
    let service = Service::new();
    let server = Server::start_with(Setup {
        sections: leak(format!(
            "[auth]\norder = [\"config\", \"pam\"]\nallowed_roots = [\"{}\"]\n\
             [auth.pam]\nservice = \"{}\"\nroot = \"{{home}}\"\n",
            allowed.display(),
            service.0,
        )),
        run_as: Some("nobody"),
        limits: "max_login_failures = 0",
        watch_log: true,
        ..Setup::default()
    });
    server.wait_for_log("PAM helper started", 0, Duration::from_secs(30));
    for account in [&climber, &beside] {
        let r = crate::pam::try_login(&server, &account.name, &account.password);
        assert!(r.starts_with("421 "), "{}: {r}", account.name);
    }
    // The log comes through a pipe here: both refusals in it first.
    server.wait_for_log("is refused", 1, Duration::from_secs(10));
    refusal_line(&server, &climber.name, "/tmp/..");
    refusal_line(&server, &beside.name, &homes[1].1.display().to_string());
    assert!(!homes[1].1.exists(), "a refused root was created");
    let r = crate::pam::try_login(&server, &inside.name, &inside.password);
    assert!(r.starts_with("230 "), "{r}");
    assert!(homes[2].1.is_dir());
}
