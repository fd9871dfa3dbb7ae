//! Faults found reviewing the fleet's shared state (issue 35), each
//! against Debian's real `redis-server` (see `cluster.rs` for the helpers).
//!
//! Proven here: a ban message on the bus lasting longer than any ban can
//! neither break `ctl bans` nor outlast the longest ban; a
//! `cluster.key_prefix` holding Redis glob characters (`[`, `]`, `?`)
//! still shares bans between nodes (the bus and the key scans match the
//! prefix literally).

use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::cluster::{ctl_json, node, within, Redis};
use crate::harness::BIN;

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
