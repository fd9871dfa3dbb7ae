//! `[auth.ldap]` beyond the bind, against the real slapd of
//! `accounts_ldap`: the pool of service connections, the group search, the
//! root from an attribute, the account policy keys, and the delay of an
//! unknown name.

use std::time::{Duration, Instant};

use crate::accounts::try_login;
use crate::accounts_ldap::{roots, stor, Slapd, SEARCH};
use crate::harness::{Server, Setup};

#[test]
fn accounts_ldap_pool_binds_the_service_account_once_and_is_bounded() {
    let Some(mut slapd) = Slapd::start() else {
        return;
    };
    let (_roots, base) = roots();
    let server = Server::start_with(Setup {
        sections: slapd.sections(
            r#"["ldap"]"#,
            &base,
            &format!("{SEARCH}pool_size = 2\ntimeout = \"20s\"\n"),
        ),
        ..Setup::default()
    });
    let before = slapd.service_binds();
    for _ in 0..4 {
        let (r, _c) = try_login(&server, "lena", "lena-ldap-pw");
        assert!(r.starts_with("230 "), "{r} {}", server.log());
    }
    assert_eq!(
        slapd.service_binds() - before,
        1,
        "one pooled connection served the four searches"
    );
    // Six at once: at most pool_size service connections.
    let addr = server.addr;
    let logins: Vec<_> = (0..6)
        .map(|_| {
            std::thread::spawn(move || {
                let mut c = crate::harness::Raw::connect(addr);
                assert!(c.cmd("USER max").starts_with("331 "));
                c.cmd("PASS max-ldap-pw")
            })
        })
        .collect();
    for l in logins {
        let r = l.join().unwrap();
        assert!(r.starts_with("230 "), "{r}");
    }
    let binds = slapd.service_binds() - before;
    assert!((1..=2).contains(&binds), "{binds} service binds");
    // The directory restarts: the pooled connections are dead, and the
    // next login opens a new one rather than failing.
    slapd.restart();
    let (r, _c) = try_login(&server, "lena", "lena-ldap-pw");
    assert!(r.starts_with("230 "), "{r} {}", server.log());
    let (r, _c) = try_login(&server, "lena", "wrong");
    assert!(r.starts_with("530 "), "{r}");
}

#[test]
fn accounts_ldap_group_search_root_attribute_and_policy_keys() {
    let Some(slapd) = Slapd::start() else {
        return;
    };
    let (_roots, base) = roots();
    let lena_home = base.join("lena-home");
    std::fs::create_dir(&lena_home).unwrap();
    slapd.ldif(
        "ldapmodify",
        &format!(
            "dn: uid=lena,ou=people,dc=example,dc=org\nchangetype: modify\n\
             replace: homeDirectory\nhomeDirectory: {}\n",
            lena_home.display()
        ),
    );
    let groups = "group_search_base = \"ou=groups,dc=example,dc=org\"\n\
        group_filter = \"(|(&(objectClass=groupOfUniqueNames)(uniqueMember={dn}))(&(objectClass=posixGroup)(memberUid={user})))\"\n\
        root_attribute = \"homeDirectory\"\n";
    let server = Server::start_with(Setup {
        sections: slapd.sections(
            r#"["ldap"]"#,
            &base,
            &format!(
                "{SEARCH}{groups}max_sessions = 1\nallow_from = [\"127.0.0.0/8\"]\n\
                 download_rate = \"10M\"\n\
                 [auth.ldap.groups]\n\
                 \"cn=uploaders,ou=groups,dc=example,dc=org\" = [\"write\"]\n\
                 \"cn=makers,ou=groups,dc=example,dc=org\" = [\"mkdir\"]\n"
            ),
        ),
        ..Setup::default()
    });
    // max is in both groups only through the group search (neither kind
    // of group is in his memberOf): write and mkdir. He has no
    // homeDirectory: the template's root.
    let (r, mut max) = try_login(&server, "max", "max-ldap-pw");
    assert!(r.starts_with("230 "), "{r} {}", server.log());
    assert!(stor(&mut max, "m.txt").starts_with("226 "));
    assert!(base.join("max/m.txt").exists());
    assert!(max.cmd("MKD made").starts_with("257 "));
    assert!(max.cmd("DELE m.txt").starts_with("550 "));
    // max_sessions = 1 for every LDAP account.
    let (r, mut again) = try_login(&server, "max", "max-ldap-pw");
    assert!(
        r.starts_with("421 Too many sessions of this user (1)"),
        "{r}"
    );
    assert!(again.closed());
    // lena: her homeDirectory, and none of those groups (read only).
    let (r, mut lena) = try_login(&server, "lena", "lena-ldap-pw");
    assert!(r.starts_with("230 "), "{r}");
    assert!(stor(&mut lena, "l.txt").starts_with("550 "));
    std::fs::write(lena_home.join("mine.txt"), b"x").unwrap();
    assert!(lena.cmd("SIZE mine.txt").starts_with("213 1"));
    drop(server);

    // The networks key: loopback is not in allow_from, so 530.
    let server = Server::start_with(Setup {
        sections: slapd.sections(
            r#"["ldap"]"#,
            &base,
            &format!("{SEARCH}allow_from = [\"10.0.0.0/8\"]\n"),
        ),
        ..Setup::default()
    });
    let (r, _c) = try_login(&server, "max", "max-ldap-pw");
    assert!(r.starts_with("530 "), "{r}");
    drop(server);

    // A root attribute that is not an absolute path: the account is
    // malformed, 421 and a log line, not a root somewhere.
    slapd.ldif(
        "ldapmodify",
        "dn: uid=lena,ou=people,dc=example,dc=org\nchangetype: modify\n\
         replace: homeDirectory\nhomeDirectory: relative/lena\n",
    );
    let server = Server::start_with(Setup {
        sections: slapd.sections(
            r#"["ldap"]"#,
            &base,
            &format!("{SEARCH}root_attribute = \"homeDirectory\"\n"),
        ),
        ..Setup::default()
    });
    let (r, _c) = try_login(&server, "lena", "lena-ldap-pw");
    assert!(r.starts_with("421 "), "{r}");
    assert!(server.log().contains("homeDirectory"), "{}", server.log());
}

#[test]
fn accounts_ldap_unknown_names_and_wrong_passwords_are_both_delayed() {
    let Some(slapd) = Slapd::start() else {
        return;
    };
    let (_roots, base) = roots();
    let server = Server::start_with(Setup {
        sections: slapd.sections(r#"["ldap"]"#, &base, SEARCH),
        failed_login_delay: "1500ms",
        limits: "max_login_failures = 0",
        ..Setup::default()
    });
    for (user, password) in [("lena", "wrong"), ("nobody", "x"), ("lena", "")] {
        let mut c = crate::harness::Raw::connect(server.addr);
        assert!(c.cmd(&format!("USER {user}")).starts_with("331 "));
        let t = Instant::now();
        let r = c.cmd(&format!("PASS {password}"));
        let took = t.elapsed();
        assert_eq!(r, "530 Login incorrect.", "{user}");
        assert!(took >= Duration::from_millis(1500), "{user}: {took:?}");
    }
}

#[test]
fn accounts_ldap_root_attribute_must_pass_allowed_roots() {
    let Some(slapd) = Slapd::start() else {
        return;
    };
    let (_roots, base) = roots();
    let home = |dir: &str| {
        slapd.ldif(
            "ldapmodify",
            &format!(
                "dn: uid=lena,ou=people,dc=example,dc=org\nchangetype: modify\n\
                 replace: homeDirectory\nhomeDirectory: {dir}\n"
            ),
        )
    };
    let server = Server::start_with(Setup {
        sections: slapd.sections(
            &format!("[\"ldap\"]\nallowed_roots = [\"{}\"]", base.display()),
            &base,
            &format!("{SEARCH}root_attribute = \"homeDirectory\"\n"),
        ),
        limits: "max_login_failures = 0",
        ..Setup::default()
    });
    // The directory says "/": the whole tree, refused with or without a list.
    home("/");
    let (r, mut c) = try_login(&server, "lena", "lena-ldap-pw");
    assert!(r.starts_with("421 "), "{r}");
    assert!(c.closed());
    // Outside the list: refused, named in a warning.
    let outside = tempfile::tempdir().unwrap();
    home(&outside.path().display().to_string());
    let (r, _c) = try_login(&server, "lena", "lena-ldap-pw");
    assert!(r.starts_with("421 "), "{r}");
    let log = server.log();
    for needle in [
        "auth.ldap: the account's root \\\"/\\\" is refused",
        &format!(
            "root \\\"{}\\\" is refused: not under any of auth.allowed_roots",
            outside.path().display()
        ),
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains("WARN") && l.contains(needle) && l.contains("lena")),
            "{needle}: {log}"
        );
    }
    // Inside it: lena's own directory, and max's from the template.
    home(&base.join("lena").display().to_string());
    let (r, _lena) = try_login(&server, "lena", "lena-ldap-pw");
    assert!(r.starts_with("230 "), "{r}");
    let (r, _max) = try_login(&server, "max", "max-ldap-pw");
    assert!(r.starts_with("230 "), "{r}");
}
