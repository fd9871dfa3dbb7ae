//! SIGHUP reloads the whole config file: a user added can log in, a user
//! removed cannot, sessions already logged in go on with their account;
//! a file that does not validate keeps the running config.

use std::time::Duration;

use crate::harness::{read_all, Raw, Server, Setup, PASSWORD};

fn watched() -> Server {
    Server::start_with(Setup {
        watch_log: true,
        ..Setup::default()
    })
}

fn login_reply(server: &Server, user: &str) -> String {
    let mut c = Raw::connect(server.addr);
    assert!(c.cmd(&format!("USER {user}")).starts_with("331 "));
    c.cmd(&format!("PASS {PASSWORD}"))
}

#[test]
fn sighup_adds_a_user_and_running_sessions_keep_theirs() {
    let server = watched();
    let mut bob = Raw::login(server.addr, "bob");
    let carol = server.dir.path().join("carol");
    std::fs::create_dir(&carol).unwrap();
    std::fs::write(carol.join("c.txt"), b"carol's file\n").unwrap();
    // bob's entry becomes carol's: bob is gone from the file, carol is new.
    let text = std::fs::read_to_string(server.config()).unwrap();
    let changed = text.replace("name = \"bob\"", "name = \"carol\"").replace(
        &format!("root = \"{}\"", server.bob.display()),
        &format!("root = \"{}\"", carol.display()),
    );
    assert_ne!(changed, text);
    std::fs::write(server.config(), changed).unwrap();

    server.signal("HUP");
    server.wait_for_log("config reloaded", 0, Duration::from_secs(10));

    let r = login_reply(&server, "carol");
    assert!(r.starts_with("230 "), "{r}");
    let mut c = Raw::login(server.addr, "carol");
    let data = c.pasv();
    assert!(c.cmd("RETR c.txt").starts_with("150 "));
    assert_eq!(read_all(data), b"carol's file\n");
    assert!(c.reply().starts_with("226 "));
    let r = login_reply(&server, "bob");
    assert!(r.starts_with("530 "), "bob was removed: {r}");
    // bob's session from before the reload goes on as it was.
    let data = bob.pasv();
    assert!(bob.cmd("RETR b.txt").starts_with("150 "));
    assert_eq!(read_all(data), b"bob's file\n");
    assert!(bob.reply().starts_with("226 "));
    assert!(bob.cmd("QUIT").starts_with("221 "));
}

#[test]
fn a_config_that_does_not_validate_keeps_the_running_one() {
    let server = watched();
    let good = std::fs::read_to_string(server.config()).unwrap();
    let broken = good.replace("[passive]\n", "[passive]\nno_such_key = 1\n");
    assert_ne!(broken, good);
    std::fs::write(server.config(), broken).unwrap();
    server.signal("HUP");
    server.wait_for_log("config reload failed", 0, Duration::from_secs(10));
    // The TOML error spans lines, which the log reader takes one at a time:
    // wait for the line that names the key rather than race the rest.
    let log = server.wait_for_log("no_such_key", 0, Duration::from_secs(10));
    assert!(log.contains("no_such_key"), "{log}");
    let r = login_reply(&server, "alice");
    assert!(r.starts_with("230 "), "old config kept: {r}");

    // A valid file that moves the listener: the port stays (a restart is
    // needed, and the log says so), the rest is taken.
    let moved = good
        .replace("listen = [\"127.0.0.1:0\"]", "listen = [\"127.0.0.1:1\"]")
        .replace("name = \"bob\"", "name = \"dave\"");
    std::fs::write(server.config(), moved).unwrap();
    server.signal("HUP");
    let log = server.wait_for_log("config reloaded", 0, Duration::from_secs(10));
    assert!(
        log.lines().any(|l| l.contains("server.listen")
            && l.contains("next restart")
            && l.contains("ports below 1024")),
        "{log}"
    );
    let r = login_reply(&server, "dave");
    assert!(r.starts_with("230 "), "{r}");
    assert!(login_reply(&server, "bob").starts_with("530 "));
}

#[test]
fn a_reload_whose_back_end_cannot_be_set_up_changes_no_limit() {
    let server = watched();
    let _one = Raw::login(server.addr, "alice");
    // It validates, but its hook's certificates cannot be read: refused at
    // the reload, after the limits were parsed.
    let text = std::fs::read_to_string(server.config()).unwrap();
    let changed = text.replace("[limits]\n", "[limits]\nmax_sessions_per_ip = 1\n")
        + "\n[auth]\norder = [\"config\", \"http\"]\n\n[auth.http]\n\
           url = \"https://127.0.0.1:9/login\"\nca_file = \"/nonexistent/ca.pem\"\n";
    std::fs::write(server.config(), changed).unwrap();
    server.signal("HUP");
    let log = server.wait_for_log("config reload failed", 0, Duration::from_secs(10));
    assert!(log.contains("ca_file"), "{log}");
    // Still the old limit: a second session from this address is let in.
    let r = login_reply(&server, "bob");
    assert!(r.starts_with("230 "), "{r}");
}

#[test]
fn sighup_applies_limits_and_passive_settings_to_new_sessions() {
    let server = watched();
    let _one = Raw::login(server.addr, "alice");
    let mut two = Raw::login(server.addr, "bob");
    // Another free range above Linux's ephemeral ports, and at most two
    // sessions per address: the two open now count.
    let text = std::fs::read_to_string(server.config()).unwrap();
    let old = text.split("ports = \"").nth(1).unwrap();
    let old = &old[..old.find('"').unwrap()];
    let (lo, hi) = old.split_once('-').unwrap();
    let old_range = lo.parse::<u16>().unwrap()..=hi.parse::<u16>().unwrap();
    let changed = text
        .replace(&format!("ports = \"{old}\""), "ports = \"61000-61999\"")
        .replace("[limits]\n", "[limits]\nmax_sessions_per_ip = 2\n");
    assert_ne!(changed, text);
    std::fs::write(server.config(), changed).unwrap();
    server.signal("HUP");
    server.wait_for_log("config reloaded", 0, Duration::from_secs(10));

    let mut third = std::net::TcpStream::connect(server.addr).unwrap();
    let mut reply = String::new();
    std::io::Read::read_to_string(&mut third, &mut reply).unwrap();
    assert!(
        reply.starts_with("421 Too many connections from your address (2)"),
        "{reply}"
    );
    // A session from before keeps the old passive range; one after gets the new.
    let old_port = two.epsv_port();
    assert!(old_range.contains(&old_port), "{old_port}");
    assert!(two.cmd("QUIT").starts_with("221 "));
    assert!(two.closed());
    let mut new = Raw::login(server.addr, "alice");
    let new_port = new.epsv_port();
    assert!((61000..=61999).contains(&new_port), "{new_port}");
}
