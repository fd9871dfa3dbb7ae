//! Tests of the root-directory check's advice.
use super::*;

fn nobody(how: RunAs) -> Runner {
    Runner {
        uid: 65534,
        gids: vec![65534],
        name: "nobody".into(),
        how,
    }
}

fn need(access: u32) -> Need {
    Need {
        access,
        accounts: vec!["anonymous".into()],
    }
}

fn eacces() -> std::io::Error {
    std::io::Error::from_raw_os_error(13)
}

fn msg(access: u32, uid: u32, gid: u32, mode: u32, runner: &Runner) -> String {
    let st = DirStat { uid, gid, mode };
    problem(
        Path::new("/srv/d"),
        &need(access),
        &st,
        runner,
        &eacces(),
        Some("root"),
        Some("root"),
    )
}

#[test]
fn a_private_root_directory_gets_chown_or_chmod_advice() {
    let m = msg(READ | SEARCH, 0, 0, 0o40700, &nobody(RunAs::Configured));
    assert_eq!(
        m,
        "root directory /srv/d (of anonymous) is not usable by the server's user, nobody (uid \
         65534): it is owned by root (uid 0), group root (gid 0), mode 0700, so \
         user nobody cannot list (r) or enter (x) it. Run `chown nobody /srv/d` or \
         `chmod o+rx /srv/d`, or set server.user to a user who can"
    );
}

#[test]
fn advice_follows_the_class_that_applies() {
    // The owner lacks x: chmod u+x.
    let m = msg(READ | SEARCH, 65534, 0, 0o600, &nobody(RunAs::Unprivileged));
    assert!(
        m.contains(
            "cannot enter (x) it. Run `chmod u+x /srv/d`, or start the server as a user who can"
        ),
        "{m}"
    );
    // In the directory's group: g+, not o+ (other bits do not apply).
    let m = msg(READ | SEARCH, 0, 65534, 0o705, &nobody(RunAs::Nobody));
    assert!(
        m.contains("`chown nobody /srv/d` or `chmod g+rx /srv/d`, or start portcullis"),
        "{m}"
    );
    // Writing is never advised for everyone, and chown needs u+w here.
    let m = msg(
        READ | WRITE | SEARCH,
        0,
        0,
        0o555,
        &nobody(RunAs::Configured),
    );
    assert!(m.contains("cannot write (w) it. Run `chown nobody /srv/d && chmod u+w /srv/d`, or set server.user"), "{m}");
    assert!(!m.contains("o+"), "{m}");
}

#[test]
fn denied_despite_the_mode_bits_names_the_cause() {
    let st = DirStat {
        uid: 0,
        gid: 0,
        mode: 0o777,
    };
    let runner = nobody(RunAs::Root);
    let rofs = std::io::Error::from_raw_os_error(30);
    let m = problem(
        Path::new("/srv/d"),
        &need(READ | WRITE | SEARCH),
        &st,
        &runner,
        &rofs,
        None,
        None,
    );
    assert!(
        m.contains(
            "owned by uid 0, group gid 0, mode 0777, but its file system is mounted read-only"
        ),
        "{m}"
    );
    let m = problem(
        Path::new("/srv/d"),
        &need(READ | SEARCH),
        &st,
        &runner,
        &eacces(),
        None,
        None,
    );
    assert!(
        m.contains("an ACL or a security module") && m.contains("getfacl /srv/d"),
        "{m}"
    );
}

#[test]
fn needs_join_the_accounts_of_a_root() {
    let d = tempfile::tempdir().unwrap();
    let mut o = ServerOptions::with_anonymous_root(d.path().to_owned());
    let entry = |name: &str, permissions| crate::options::UserEntry {
        name: name.into(),
        password_hash: String::new(),
        root: crate::storage::RootSpec::Local(d.path().to_owned()),
        policy: crate::options::AccountPolicy {
            permissions,
            ..Default::default()
        },
        password_optional_with_cert: false,
        disabled: false,
    };
    o.users
        .push(entry("bob", crate::auth::Permissions::READ_ONLY));
    let n = needs(&o);
    assert_eq!(n[0].1.access, READ | SEARCH);
    let drop_box = crate::auth::Permissions {
        write: true,
        ..Default::default()
    };
    o.users.push(entry("carol", drop_box));
    let n = needs(&o);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].1.access, READ | WRITE | SEARCH);
    assert_eq!(n[0].1.accounts, ["anonymous", "user bob", "user carol"]);
    o.anonymous = None;
    o.users.remove(0);
    assert_eq!(needs(&o)[0].1.access, WRITE | SEARCH);
}

#[test]
fn commands_quote_paths_for_the_shell() {
    let st = DirStat {
        uid: 0,
        gid: 0,
        mode: 0o700,
    };
    let runner = nobody(RunAs::Configured);
    let dir = Path::new("/srv/it's mine");
    let m = problem(
        dir,
        &need(READ | SEARCH),
        &st,
        &runner,
        &eacces(),
        None,
        None,
    );
    assert!(
        m.starts_with("root directory /srv/it's mine (of anonymous)"),
        "{m}"
    );
    assert!(m.contains(r"`chmod o+rx '/srv/it'\''s mine'`"), "{m}");
    assert_eq!(quoted(Path::new("/srv/ftp/pub-1")), "/srv/ftp/pub-1");
}
