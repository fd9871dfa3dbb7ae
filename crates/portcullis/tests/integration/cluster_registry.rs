//! The session registry across a fleet: two nodes on one real
//! `redis-server`; `ctl sessions` on one node lists the other's sessions
//! with their node's name, `ctl kick` (by id and by user) on one node
//! closes sessions held by the other; a node that does not answer (stopped
//! with SIGSTOP) is named as missing; Redis down, a node lists its own
//! sessions and says the list is partial; Redis back, the whole fleet's
//! again.

use std::path::Path;
use std::time::Duration;

use crate::cluster::{ctl_json, node, within, Redis};
use crate::harness::{Raw, BIN};

/// The `ctl sessions --json` answer.
fn sessions(socket: &Path) -> serde_json::Value {
    ctl_json(socket, &["sessions"])
}

/// The users and nodes of a listing, sorted.
fn who(list: &serde_json::Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["user"].as_str().unwrap_or("-").to_owned(),
                s["node"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// `ctl --socket SOCKET ARGS...` as text (success required).
fn ctl_text(socket: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new(BIN)
        .arg("ctl")
        .arg("--socket")
        .arg(socket)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "ctl {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn sessions_are_listed_and_kicked_across_nodes() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let url = redis.url();
    let (n1, _d1, s1) = node("node-1", &url, "", "");
    let (n2, _d2, s2) = node("node-2", &url, "", "");
    let mut alice = Raw::login(n2.addr, "alice");
    let mut bob1 = Raw::login(n2.addr, "bob");
    let mut bob2 = Raw::login(n1.addr, "bob");
    // node-2's bus may still be subscribing just after its start.
    let want = pairs(&[("alice", "node-2"), ("bob", "node-1"), ("bob", "node-2")]);
    assert!(
        within(Duration::from_secs(10), || who(&sessions(&s1)) == want),
        "{}",
        sessions(&s1)
    );
    let list = sessions(&s1);
    assert_eq!(list["partial"], false, "{list}");
    assert_eq!(list["missing"], serde_json::json!([]), "{list}");
    // The other node gives the same list.
    assert_eq!(who(&sessions(&s2)), want);
    // The table has the node column.
    let table = ctl_text(&s1, &["sessions"]);
    assert!(table.starts_with("ID  "), "{table}");
    assert!(
        table.contains("NODE") && table.contains("node-2"),
        "{table}"
    );
    assert!(!table.contains("partial"), "{table}");

    // Kick alice's session (on node-2) from node-1.
    let id = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["user"] == "alice")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let k = ctl_json(&s1, &["kick", &id]);
    assert_eq!(k["kicked"], 1, "{k}");
    assert_eq!(k["node"], "node-2", "{k}");
    let bye = alice.reply();
    assert!(bye.starts_with("421 "), "{bye}");
    assert!(alice.closed());
    n2.wait_for_log(
        "control: session kicked at another node's request",
        0,
        Duration::from_secs(10),
    );
    // Gone; an unknown id is refused once every node said no.
    assert!(within(Duration::from_secs(10), || who(&sessions(&s1))
        == pairs(&[("bob", "node-1"), ("bob", "node-2")])));
    let out = std::process::Command::new(BIN)
        .arg("ctl")
        .arg("--socket")
        .arg(&s1)
        .args(["kick", &id])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no session"), "{err}");

    // Kick bob everywhere from node-1: one session on each node.
    let k = ctl_json(&s1, &["kick", "--user", "bob"]);
    assert_eq!(k["kicked"], 2, "{k}");
    assert_eq!(k["partial"], false, "{k}");
    for b in [&mut bob1, &mut bob2] {
        let r = b.reply();
        assert!(r.starts_with("421 "), "{r}");
    }
    assert!(within(Duration::from_secs(10), || who(&sessions(&s2)).is_empty()));
}

#[test]
fn a_silent_node_is_named_and_redis_down_lists_this_nodes_own() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let url = redis.url();
    let (n1, _d1, s1) = node("asker", &url, "", "");
    let (n2, _d2, _s2) = node("sleeper", &url, "", "");
    let mut a = Raw::login(n1.addr, "alice");
    let _b = Raw::login(n2.addr, "bob");
    let want = pairs(&[("alice", "asker"), ("bob", "sleeper")]);
    assert!(within(Duration::from_secs(10), || who(&sessions(&s1)) == want));

    // Stopped, the sleeper stays live (its heartbeat key lasts 6 s) but
    // cannot answer: named as missing after twice cluster.timeout.
    n2.signal("STOP");
    let started = std::time::Instant::now();
    let list = sessions(&s1);
    n2.signal("CONT");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(who(&list), pairs(&[("alice", "asker")]), "{list}");
    assert_eq!(list["partial"], true, "{list}");
    assert_eq!(list["missing"], serde_json::json!(["sleeper"]), "{list}");
    assert!(list["note"].as_str().unwrap().contains("sleeper"), "{list}");

    // Redis down: this node's own sessions, and the list says so.
    redis.stop();
    assert!(within(Duration::from_secs(10), || {
        let l = sessions(&s1);
        l["partial"] == true && l["note"].as_str().unwrap_or("").contains("Redis")
    }));
    let list = sessions(&s1);
    assert_eq!(who(&list), pairs(&[("alice", "asker")]), "{list}");
    let table = ctl_text(&s1, &["sessions"]);
    assert!(table.contains("alice"), "{table}");
    assert!(table.contains("partial: Redis is unavailable"), "{table}");
    // Kicks still reach this node's own sessions.
    let k = ctl_json(&s1, &["kick", "--user", "alice"]);
    assert_eq!(k["kicked"], 1, "{k}");
    assert_eq!(k["partial"], true, "{k}");
    let r = a.reply();
    assert!(r.starts_with("421 "), "{r}");

    // Redis back (empty): once both nodes beat and hear the bus again, the
    // whole fleet is listed again; nothing had to be restored.
    redis.restart();
    assert!(
        within(Duration::from_secs(15), || {
            let l = sessions(&s1);
            l["partial"] == false && who(&l) == pairs(&[("bob", "sleeper")])
        }),
        "{}",
        sessions(&s1)
    );
}
