//! Bans and session limits shared by two nodes through Debian's real
//! `redis-server` (see `cluster.rs` for the helpers).
//!
//! Proven here: a ban earned through one node refuses the address on the
//! other (421 before login), `ctl bans` lists it on both, `ctl unban` on
//! either lets it back on both; an account's `max_sessions` and
//! `limits.max_sessions_per_ip` count the sessions of both nodes, with the
//! replies of one node, while the server-wide `limits.max_sessions` stays
//! each node's own; a node killed with `kill -9` stops counting within
//! the sessions' time to live; Redis killed, logins work and bans are the
//! node's own; Redis back, a ban made meanwhile, a session that began
//! meanwhile and new bans are shared.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cluster::{changed_within, ctl_json, within, Redis, AFTER_KILL};
use crate::harness::{Raw, Server, Setup, PASSWORD};

/// A node as `cluster::node`, with lines for alice's entry.
fn node(
    name: &str,
    url: &str,
    alice_extra: &'static str,
    limits: &'static str,
) -> (Server, tempfile::TempDir, PathBuf) {
    crate::cluster::node_with(
        name,
        url,
        "",
        Setup {
            alice_extra,
            limits,
            ..Setup::default()
        },
    )
}

/// The first reply a new connection gets.
fn greeting(addr: SocketAddr) -> String {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut line = String::new();
    let _ = BufReader::new(s).read_line(&mut line);
    line
}

fn admitted(addr: SocketAddr) -> bool {
    greeting(addr).starts_with("220 ")
}

/// USER alice, PASS `password`: the reply to PASS (and the connection).
fn pass(addr: SocketAddr, password: &str) -> (String, Raw) {
    let mut c = Raw::connect(addr);
    assert!(c.cmd("USER alice").starts_with("331 "));
    let r = c.cmd(&format!("PASS {password}"));
    (r, c)
}

fn banned_on(socket: &Path) -> Vec<String> {
    ctl_json(socket, &["bans"])
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["address"].as_str().unwrap().to_owned())
        .collect()
}

fn redis_is(socket: &Path, state: &str) -> bool {
    ctl_json(socket, &["status"])["cluster"]["redis"] == state
}

#[test]
fn a_ban_through_one_node_holds_on_every_node_and_an_unban_on_any_lifts_it() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let url = redis.url();
    let limits = "max_login_failures = 2\nban_time = \"1h\"";
    let (n1, _d1, s1) = node("ban-a", &url, "", limits);
    let (n2, _d2, s2) = node("ban-b", &url, "", limits);
    // One failure on each node: counted together, the second bans.
    let (r, _c) = pass(n1.addr, "wrong");
    assert!(r.starts_with("530 "), "{r}");
    let (r, _c) = pass(n2.addr, "wrong");
    // (Published before that reply.)
    let banned = Instant::now();
    assert!(r.starts_with("421 ") && r.contains("banned"), "{r}");
    // Refused before login on the node that did not ban, within a second.
    changed_within(banned, Duration::from_secs(1), || {
        greeting(n1.addr).starts_with("421 ")
    });
    assert!(redis
        .cli(&["PTTL", "portcullis:ban:127.0.0.1"])
        .trim()
        .parse::<i64>()
        .is_ok_and(|t| t > 3_500_000));
    assert_eq!(banned_on(&s1), ["127.0.0.1"]);
    assert_eq!(banned_on(&s2), ["127.0.0.1"]);
    // The ban is reported once: by the node whose failure banned.
    const BANNED: &str = "address banned after repeated failed logins";
    let log = n2.wait_for_log(BANNED, 0, Duration::from_secs(5));
    assert_eq!(log.matches(BANNED).count(), 1, "{log}");
    assert!(!n1.log().contains(BANNED), "{}", n1.log());

    ctl_json(&s1, &["unban", "127.0.0.1"]);
    assert!(within(Duration::from_secs(5), || admitted(n2.addr)));
    assert!(admitted(n1.addr));
    assert!(banned_on(&s2).is_empty());
    Raw::login(n2.addr, "alice");

    // A ban through the control plane of one node: the other refuses too.
    ctl_json(&s2, &["ban", "127.0.0.1", "--for", "1h"]);
    assert!(within(Duration::from_secs(5), || !admitted(n1.addr)));
    ctl_json(&s1, &["unban", "127.0.0.1"]);
    assert!(within(Duration::from_secs(5), || admitted(n2.addr)));
}

#[test]
fn max_sessions_of_an_account_and_per_address_count_every_node() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let url = redis.url();
    let (n1, _d1, _s1) = node("sess-a", &url, "max_sessions = 1", "");
    let (n2, _d2, _s2) = node("sess-b", &url, "max_sessions = 1", "");
    let first = Raw::login(n1.addr, "alice");
    // The reply of a single node (the same node again) and of the other.
    let (here, _c) = pass(n1.addr, PASSWORD);
    let (there, _c) = pass(n2.addr, PASSWORD);
    assert!(here.starts_with("421 "), "{here}");
    assert_eq!(here, there);
    drop(first);
    // Its place is freed when the session ends.
    assert!(within(Duration::from_secs(5), || pass(n2.addr, PASSWORD)
        .0
        .starts_with("230 ")));

    let (p1, _e1, _t1) = node("ip-a", &url, "", "max_sessions_per_ip = 2");
    let (p2, _e2, _t2) = node("ip-b", &url, "", "max_sessions_per_ip = 2");
    let a = Raw::connect(p1.addr);
    let _b = Raw::connect(p1.addr);
    let here = greeting(p1.addr);
    let there = greeting(p2.addr);
    assert!(here.starts_with("421 ") && here.contains("(2)"), "{here}");
    assert_eq!(here, there);
    drop(a);
    assert!(within(Duration::from_secs(5), || admitted(p2.addr)));
    drop(redis);
}

#[test]
fn the_server_wide_max_sessions_stays_per_node() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let url = redis.url();
    let (n1, _d1, _s1) = node("full-a", &url, "", "max_sessions = 1");
    let (n2, _d2, _s2) = node("full-b", &url, "", "max_sessions = 1");
    // It protects the node: one session on each node is admitted...
    let _a = Raw::login(n1.addr, "alice");
    let _b = Raw::login(n2.addr, "bob");
    // ...and a second on either is refused by that node.
    for addr in [n1.addr, n2.addr] {
        let r = greeting(addr);
        assert_eq!(r, "421 Too many connections (1); try again later.\r\n");
    }
}

#[test]
fn a_node_killed_stops_counting_within_the_sessions_ttl() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let url = redis.url();
    let (n1, _d1, _s1) = node("stays", &url, "max_sessions = 1", "");
    let (n2, _d2, _s2) = node("dies", &url, "max_sessions = 1", "");
    let _held = Raw::login(n2.addr, "alice");
    assert!(pass(n1.addr, PASSWORD).0.starts_with("421 "));
    n2.signal("KILL");
    let killed = Instant::now();
    // Documented: 6 s after the node's last refresh (every 2 s).
    changed_within(killed, AFTER_KILL, || {
        pass(n1.addr, PASSWORD).0.starts_with("230 ")
    });
    drop(redis);
}

#[test]
fn redis_down_bans_are_the_nodes_own_and_shared_again_when_it_is_back() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let url = redis.url();
    let limits = "max_login_failures = 1\nban_time = \"1h\"";
    let (n1, _d1, s1) = node("down-a", &url, "max_sessions = 1", limits);
    let (n2, _d2, s2) = node("down-b", &url, "max_sessions = 1", limits);
    redis.stop();
    for s in [&s1, &s2] {
        assert!(within(Duration::from_secs(10), || redis_is(s, "down")));
    }
    // Logins work; each node counts its own sessions.
    let a = Raw::login(n1.addr, "alice");
    let b = Raw::login(n2.addr, "alice");
    drop(b);
    // A ban while down is the node's own.
    ctl_json(&s1, &["ban", "127.0.0.1", "--for", "1h"]);
    assert!(!admitted(n1.addr));
    assert!(admitted(n2.addr));
    assert!(banned_on(&s2).is_empty());

    redis.restart();
    for s in [&s1, &s2] {
        assert!(within(Duration::from_secs(10), || redis_is(s, "up")));
    }
    // The ban made meanwhile is pushed to the fleet.
    assert!(within(Duration::from_secs(10), || !admitted(n2.addr)));
    ctl_json(&s2, &["unban", "127.0.0.1"]);
    assert!(within(Duration::from_secs(5), || admitted(n1.addr)));
    // alice's session that began meanwhile on node a counts in the fleet
    // (from node a's next refresh).
    assert!(within(Duration::from_secs(10), || pass(n2.addr, PASSWORD)
        .0
        .starts_with("421 Too many sessions")));
    drop(a);
    // A new ban is shared again.
    let (r, _c) = pass(n2.addr, "wrong");
    assert!(r.starts_with("421 ") && r.contains("banned"), "{r}");
    assert!(within(Duration::from_secs(5), || !admitted(n1.addr)));
    assert_eq!(banned_on(&s1), ["127.0.0.1"]);
    let log = n1.log();
    assert!(log.contains("cluster: Redis reachable again"), "{log}");
}

#[test]
fn a_repeated_ban_earned_on_another_node_is_twice_as_long() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let url = redis.url();
    let limits = "max_login_failures = 1\nban_time = \"1s\"";
    let (n1, _d1, _s1) = node("twice-a", &url, "", limits);
    let (n2, _d2, _s2) = node("twice-b", &url, "", limits);
    let (r, _c) = pass(n1.addr, "wrong");
    assert!(r.starts_with("421 ") && r.contains("1 s"), "{r}");
    assert_eq!(
        redis.cli(&["GET", "portcullis:strikes:127.0.0.1"]).trim(),
        "1"
    );
    // Over after a second, on both nodes.
    assert!(within(Duration::from_secs(5), || admitted(n2.addr)));
    let (r, _c) = pass(n2.addr, "wrong");
    assert!(r.starts_with("421 ") && r.contains("2 s"), "{r}");
}
