//! Faults found reviewing the fleet's shared state (issue 35), each
//! against Debian's real `redis-server` (see `cluster.rs` for the helpers).
//!
//! Proven here: a ban message on the bus lasting longer than any ban can
//! neither break `ctl bans` nor outlast the longest ban; a
//! `cluster.key_prefix` holding Redis glob characters (`[`, `]`, `?`)
//! still shares bans between nodes (the bus and the key scans match the
//! prefix literally); a node whose connections to Redis went silent
//! without being closed (a NAT that forgot them) gets back to Redis and
//! hears the fleet's bans again; a Redis that answers each call a second
//! late does not let a node's quota reservation expire while that node
//! counts many roots (their refresh runs side by side); a node started
//! while an address is banned refuses it from its first connection.

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::cluster::{ctl_json, node, within, Redis};
use crate::harness::{password_hash, Raw, BIN};

/// The first reply a new connection gets starts with `220 `.
fn admitted(addr: std::net::SocketAddr) -> bool {
    use std::io::{BufRead, BufReader};
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut line = String::new();
    let _ = BufReader::new(s).read_line(&mut line);
    line.starts_with("220 ")
}

/// `ctl bans --json`, or `None` when the command failed.
fn bans(socket: &Path) -> Option<serde_json::Value> {
    let out = Command::new(BIN)
        .args(["ctl", "--socket"])
        .arg(socket)
        .args(["bans", "--json"])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| serde_json::from_slice(&out.stdout).ok())
        .flatten()
}

#[test]
fn a_ban_on_the_bus_longer_than_any_neither_breaks_ctl_bans_nor_lasts_for_ever() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let (_n, _d, s) = node("review-a", &redis.url(), "", "");
    assert!(within(Duration::from_secs(10), || ctl_json(
        &s,
        &["status"]
    )["cluster"]["redis"]
        == "up"));
    // What any client of the Redis can publish: u64::MAX milliseconds.
    redis.cli(&[
        "PUBLISH",
        "portcullis:bus:bans",
        r#"{"ip":"192.0.2.7","ms":18446744073709551615,"failures":1}"#,
    ]);
    let mut last = None;
    let listed = within(Duration::from_secs(10), || {
        last = bans(&s);
        last.as_ref()
            .and_then(|v| v.as_array().cloned())
            .is_some_and(|a| a.iter().any(|b| b["address"] == "192.0.2.7"))
    });
    assert!(listed, "ctl bans: {last:?}");
    let left = last.unwrap().as_array().unwrap()[0]["left_secs"]
        .as_u64()
        .unwrap();
    // No ban lasts longer than the control plane's longest (366 days).
    assert!(left <= 366 * 24 * 3600, "{left}");
}

#[test]
fn a_key_prefix_with_glob_characters_still_shares_bans() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let url = redis.url();
    let cluster = "key_prefix = \"fleet[1]?:\"\n";
    let (n1, _d1, s1) = node("review-b1", &url, cluster, "");
    let (n2, _d2, s2) = node("review-b2", &url, cluster, "");
    for s in [&s1, &s2] {
        assert!(within(Duration::from_secs(10), || ctl_json(s, &["status"])
            ["cluster"]["redis"]
            == "up"));
    }
    ctl_json(&s1, &["ban", "127.0.0.1", "--for", "1h"]);
    assert!(redis
        .cli(&["PTTL", "fleet[1]?:ban:127.0.0.1"])
        .trim()
        .parse::<i64>()
        .is_ok_and(|t| t > 3_500_000));
    // Heard on the bus by the other node...
    assert!(within(Duration::from_secs(5), || !admitted(n2.addr)));
    // ...and read back from the keys by a node started afterwards.
    let (n3, _d3, _s3) = node("review-b3", &url, cluster, "");
    assert!(within(Duration::from_secs(5), || !admitted(n3.addr)));
    ctl_json(&s2, &["unban", "127.0.0.1"]);
    assert!(within(Duration::from_secs(5), || admitted(n1.addr)));
}

/// A TCP relay to `to` that passes each chunk on `delay` after it came (a
/// latency, not a narrower pipe: a slow Redis), and whose connections
/// made so far can be made to go silent at once (what a NAT or a firewall
/// that forgot an idle connection does: nothing is delivered, nothing is
/// closed), while new ones still pass.
struct Relay {
    addr: std::net::SocketAddr,
    made: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    silent_below: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Relay {
    fn start(to: std::net::SocketAddr, delay: Duration) -> Relay {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let made = Arc::new(AtomicUsize::new(0));
        let silent_below = Arc::new(AtomicUsize::new(0));
        let (m, s) = (made.clone(), silent_below.clone());
        // The threads end when the sockets close (the node or Redis
        // stops); the acceptor with the test process.
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(a) = conn else { continue };
                let Ok(b) = TcpStream::connect(to) else {
                    continue;
                };
                let n = m.fetch_add(1, Ordering::SeqCst);
                for (mut from, mut into) in
                    [(a.try_clone().unwrap(), b.try_clone().unwrap()), (b, a)]
                {
                    let s = s.clone();
                    let (tx, rx) = std::sync::mpsc::channel::<(Instant, Vec<u8>)>();
                    std::thread::spawn(move || {
                        use std::io::Read;
                        let mut buf = [0u8; 16384];
                        loop {
                            let got = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(got) => got,
                            };
                            if n < s.load(Ordering::SeqCst) {
                                continue;
                            }
                            if tx
                                .send((Instant::now() + delay, buf[..got].to_vec()))
                                .is_err()
                            {
                                break;
                            }
                        }
                    });
                    std::thread::spawn(move || {
                        use std::io::Write;
                        for (due, bytes) in rx {
                            std::thread::sleep(due.saturating_duration_since(Instant::now()));
                            if into.write_all(&bytes).is_err() {
                                break;
                            }
                        }
                        let _ = into.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        Relay {
            addr,
            made,
            silent_below,
        }
    }

    /// Every connection made so far goes silent.
    fn silence(&self) {
        use std::sync::atomic::Ordering;
        self.silent_below
            .store(self.made.load(Ordering::SeqCst), Ordering::SeqCst);
    }
}

#[test]
fn a_bus_connection_gone_silent_is_noticed_and_bans_are_heard_again() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let port: u16 = redis.url().rsplit(':').next().unwrap()[..]
        .trim_end_matches("/0")
        .parse()
        .unwrap();
    let relay = Relay::start(([127, 0, 0, 1], port).into(), Duration::ZERO);
    let (n1, _d1, s1) = node("review-c1", &format!("redis://{}/0", relay.addr), "", "");
    let (_n2, _d2, s2) = node("review-c2", &redis.url(), "", "");
    for s in [&s1, &s2] {
        assert!(within(Duration::from_secs(10), || ctl_json(s, &["status"])
            ["cluster"]["redis"]
            == "up"));
    }
    // node1's connections to Redis (its bus among them) go silent.
    relay.silence();
    ctl_json(&s2, &["ban", "127.0.0.1", "--for", "1h"]);
    // node1 notices that its bus hears nothing, subscribes again through
    // a new connection and reads the fleet's bans.
    assert!(
        within(Duration::from_secs(30), || !admitted(n1.addr)),
        "{}",
        n1.log()
    );
}

#[test]
fn a_slow_redis_does_not_let_the_reservations_of_many_roots_expire() {
    let Some(redis) = Redis::start() else {
        return;
    };
    // Each way 0.5 s late: every call takes a second (under its timeout).
    let relay = Relay::start(
        ([127, 0, 0, 1], redis.port).into(),
        Duration::from_millis(500),
    );
    let roots = tempfile::tempdir().unwrap();
    let mut users = String::from("timeout = \"3s\"\n");
    for i in 0..8 {
        let root = roots.path().join(format!("u{i}"));
        std::fs::create_dir(&root).unwrap();
        users += &format!(
            "\n[[users]]\nname = \"u{i}\"\npassword_hash = \"{}\"\nroot = \"{}\"\n\
             permissions = [\"read\", \"write\"]\nquota_bytes = 100000000\n",
            password_hash(),
            root.display()
        );
    }
    let (n, _d, _s) = node("slow", &format!("redis://{}/0", relay.addr), &users, "");
    let addr = n.addr;
    // Eight roots counted by this node: its refresh writes each every 2 s.
    // One after the other that would take 8 s, past the reservations'
    // 6 s; side by side, about one second.
    let logins: Vec<_> = (1..8)
        .map(|i| std::thread::spawn(move || drop(Raw::login(addr, &format!("u{i}")))))
        .collect();
    let mut c = Raw::login(addr, "u0");
    logins.into_iter().for_each(|t| t.join().unwrap());
    // An upload into u0's root, left open: its chunk is reserved once.
    assert!(c.cmd("TYPE I").starts_with("200 "));
    let mut d = c.pasv();
    let r = c.cmd("STOR held.bin");
    assert!(r.starts_with("150 "), "{r}");
    std::io::Write::write_all(&mut d, &[7u8; 100_000]).unwrap();
    let held = || {
        !redis
            .cli(&["--scan", "--pattern", "portcullis:quota:*:res:slow"])
            .trim()
            .is_empty()
    };
    assert!(within(Duration::from_secs(20), held));
    // Held throughout, never expired between two refreshes.
    let end = Instant::now() + Duration::from_secs(12);
    while Instant::now() < end {
        assert!(held(), "the reservation expired: {}", n.log());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_node_started_after_a_ban_refuses_the_address_from_its_first_connection() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let (_n1, _d1, s1) = node("review-d1", &redis.url(), "", "");
    ctl_json(&s1, &["ban", "127.0.0.1", "--for", "1h"]);
    // The new node's Redis answers 0.3 s late each way: its read of the
    // fleet's bans takes over a second, and no connection may be admitted
    // before it ends (found by the fleet soak: a node just restarted let
    // a banned client in).
    let relay = Relay::start(
        ([127, 0, 0, 1], redis.port).into(),
        Duration::from_millis(300),
    );
    let url = format!("redis://{}/0", relay.addr);
    let (n2, _d2, _s2) = node("review-d2", &url, "timeout = \"3s\"\n", "");
    assert!(!admitted(n2.addr), "{}", n2.log());
}

/// The fleet's bans are read in few round trips, however many other keys
/// the Redis database holds: with SCAN's default of ten keys a call, a
/// database of 300,000 keys took thousands of round trips, past
/// `cluster.timeout` (0.5 s): the read failed at every start, the node
/// marked Redis unreachable, and a node started during a ban admitted
/// the banned address.
#[test]
fn the_bans_are_read_within_the_timeout_beside_many_other_keys() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let filled = redis.cli(&[
        "EVAL",
        "for i = 1, 300000 do redis.call('SET', 'other:' .. i, 'x') end return redis.call('DBSIZE')",
        "0",
    ]);
    assert!(filled.trim().parse::<u64>().unwrap() >= 300_000, "{filled}");
    let (_n1, _d1, s1) = node("many-1", &redis.url(), "", "");
    ctl_json(&s1, &["ban", "127.0.0.1", "--for", "1h"]);
    let (n2, _d2, _s2) = node("many-2", &redis.url(), "", "");
    assert!(!admitted(n2.addr), "{}", n2.log());
    assert!(!n2.log().contains("unreachable"), "{}", n2.log());
}
