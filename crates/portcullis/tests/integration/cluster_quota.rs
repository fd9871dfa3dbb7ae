//! Quotas shared by a fleet (`[cluster]`): two nodes on one real
//! `redis-server`, a user `carol` whose root is one directory both nodes
//! serve, with a byte quota.
//!
//! Proven here: parallel uploads through both nodes never pass the quota
//! together (what the directory holds is checked on disk; every refused
//! upload is 552 and leaves no file); a node killed with `kill -9` in the
//! middle of an upload holds its reservation only until its key's time to
//! live runs out, after which the other node can use the space; the
//! first count of a root is made by one node and read by the other; with
//! Redis down, uploads still work (and the node's own tally still
//! refuses what passes the quota); Redis back but empty, the root is
//! counted again and stored there for the fleet. And on an object-store
//! root (s3s-fs) served by both nodes, checked with the store's listing.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::cluster::{changed_within, ctl_json, node, within, Redis, AFTER_KILL};
use crate::harness::{password_hash, random_bytes, Raw, Server};
use crate::s3::store::{Kind, Moto};
use crate::s3::BUCKET;

const EXCEEDED: &str = "552 Requested file action aborted. Exceeded storage allocation.";

/// `[[users]]` carol on `root` with `quota` (after the `[cluster]` lines
/// that [`node`] writes: an array of tables may come anywhere).
fn carol(root: &Path, quota: &str) -> String {
    format!(
        "\n[[users]]\nname = \"carol\"\npassword_hash = \"{}\"\nroot = \"{}\"\n\
         permissions = [\"read\", \"write\", \"overwrite\", \"delete\"]\nquota_bytes = {quota}\n",
        password_hash(),
        root.display()
    )
}

fn start(
    name: &str,
    redis: &Redis,
    root: &Path,
    quota: &str,
) -> (Server, tempfile::TempDir, std::path::PathBuf) {
    node(name, &redis.url(), &carol(root, quota), "")
}

/// Upload `data` as `name` in a new session of carol's (as quota.rs's `put`).
fn put(addr: std::net::SocketAddr, name: &str, data: &[u8]) -> String {
    crate::quota::put(&mut Raw::login(addr, "carol"), "STOR", name, data)
}

/// What `root` holds: (files, bytes, names), temporaries included.
fn on_disk(root: &Path) -> (u64, u64, Vec<String>) {
    let (mut files, mut bytes, mut names) = (0, 0, Vec::new());
    for e in std::fs::read_dir(root).unwrap() {
        let e = e.unwrap();
        let m = e.metadata().unwrap();
        files += 1;
        bytes += m.len();
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    (files, bytes, names)
}

fn avbl(addr: std::net::SocketAddr) -> u64 {
    let mut c = Raw::login(addr, "carol");
    let r = c.cmd("AVBL");
    assert!(r.starts_with("213 "), "{r}");
    r[4..].trim().parse().unwrap()
}

/// carol's line of `ctl quota --json` on the node of `socket`.
fn quota_of(socket: &Path) -> serde_json::Value {
    let v = ctl_json(socket, &["quota", "carol"]);
    v[0].clone()
}

#[test]
fn parallel_uploads_through_two_nodes_never_pass_one_quota() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let shared = tempfile::tempdir().unwrap();
    let (n1, _d1, s1) = start("q1", &redis, shared.path(), "1000000");
    let (n2, _d2, _s2) = start("q2", &redis, shared.path(), "1000000");
    let addrs = [n1.addr, n2.addr];
    let each = 150_000;
    let threads: Vec<_> = (0..20u64)
        .map(|i| {
            let addr = addrs[(i % 2) as usize];
            std::thread::spawn(move || (i, put(addr, &format!("p{i}.bin"), &random_bytes(each, i))))
        })
        .collect();
    let mut stored = 0;
    for t in threads {
        let (i, r) = t.join().unwrap();
        if r.starts_with("226 ") {
            stored += 1;
        } else {
            assert_eq!(r, EXCEEDED, "upload {i}");
        }
    }
    let (files, bytes, names) = on_disk(shared.path());
    assert!(bytes <= 1_000_000, "{bytes} bytes stored: {names:?}");
    assert_eq!(files, stored, "only the 226s are kept: {names:?}");
    assert!((1..=6).contains(&stored), "{stored}");
    // Both nodes answer from the fleet's count, once the commits are in.
    let left = 1_000_000 - bytes;
    assert!(within(Duration::from_secs(5), || avbl(n1.addr) == left
        && avbl(n2.addr) == left));
    let q = quota_of(&s1);
    assert_eq!(q["bytes"], bytes, "{q}");
    assert_eq!(q["files"], files, "{q}");
}

#[test]
fn a_node_killed_mid_upload_frees_its_reservation_within_the_ttl() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let shared = tempfile::tempdir().unwrap();
    let (victim, _d1, _s1) = start("victim", &redis, shared.path(), "4000000");
    let (keeper, _d2, s2) = start("keeper", &redis, shared.path(), "4000000");
    // carol is counted on the keeper (`ctl quota` lists her there).
    assert!(avbl(keeper.addr) == 4_000_000);

    // 3 MB sent through the victim, the upload left open.
    let mut c = Raw::login(victim.addr, "carol");
    assert!(c.cmd("TYPE I").starts_with("200 "));
    let mut d = c.pasv();
    let r = c.cmd("STOR big.bin");
    assert!(r.starts_with("150 "), "{r}");
    d.write_all(&random_bytes(3_000_000, 7)).unwrap();
    assert!(
        within(Duration::from_secs(10), || {
            quota_of(&s2)["reserved_bytes"].as_u64().unwrap() >= 3_000_000
        }),
        "{}",
        quota_of(&s2)
    );
    // The space is held for the fleet: 2 MB more do not fit.
    assert_eq!(
        put(keeper.addr, "other.bin", &random_bytes(2_000_000, 8)),
        EXCEEDED
    );

    victim.signal("KILL");
    let killed = Instant::now();
    drop(d);
    // Gone no later than the documented 6 s after its last refresh.
    let freed = changed_within(killed, AFTER_KILL, || {
        quota_of(&s2)["reserved_bytes"].as_u64() == Some(0)
    });
    eprintln!("reservation freed {freed:?} after kill -9");
    let r = put(keeper.addr, "other.bin", &random_bytes(2_000_000, 8));
    assert!(r.starts_with("226 "), "{r}");
    assert_eq!(
        std::fs::metadata(shared.path().join("other.bin"))
            .unwrap()
            .len(),
        2_000_000
    );
}

#[test]
fn with_redis_down_uploads_use_the_node_own_tally_and_are_counted_again_after() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let shared = tempfile::tempdir().unwrap();
    let (n1, _d1, s1) = start("solo", &redis, shared.path(), "1000000");
    let r = put(n1.addr, "a.bin", &random_bytes(300_000, 1));
    assert!(r.starts_with("226 "), "{r}");
    assert!(redis
        .cli(&["--scan", "--pattern", "portcullis:quota:*"])
        .contains("portcullis:quota:"));

    redis.stop();
    let r = put(n1.addr, "b.bin", &random_bytes(300_000, 2));
    assert!(r.starts_with("226 "), "{r}");
    // The node's own tally still holds the quota.
    assert_eq!(put(n1.addr, "c.bin", &random_bytes(500_000, 3)), EXCEEDED);
    assert_eq!(avbl(n1.addr), 400_000);

    // Back, empty: the root is counted again and stored for the fleet.
    redis.restart();
    assert!(
        within(Duration::from_secs(15), || {
            let key = redis.cli(&["--scan", "--pattern", "portcullis:quota:*"]);
            let Some(key) = key
                .lines()
                .find(|k| !k.contains(":res:") && !k.contains(":nodes") && !k.contains(":scan"))
            else {
                return false;
            };
            redis.cli(&["HGET", key, "bytes"]).trim() == "600000"
        }),
        "{}",
        redis.cli(&["--scan", "--pattern", "portcullis:quota:*"])
    );
    let q = quota_of(&s1);
    assert_eq!(q["bytes"], 600_000, "{q}");
    let r = put(n1.addr, "d.bin", &random_bytes(400_000, 4));
    assert!(r.starts_with("226 "), "{r}");
    assert_eq!(put(n1.addr, "e.bin", b"x"), EXCEEDED);
    assert_eq!(on_disk(shared.path()).1, 1_000_000);
}

#[test]
fn the_first_count_is_made_by_one_node_and_read_by_the_other() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let shared = tempfile::tempdir().unwrap();
    for i in 0..3 {
        std::fs::write(shared.path().join(format!("old{i}")), vec![b'x'; 1000]).unwrap();
    }
    let (n1, _d1, _s1) = start("first", &redis, shared.path(), "10000");
    let (n2, _d2, s2) = start("second", &redis, shared.path(), "10000");
    assert_eq!(avbl(n1.addr), 7000);
    // A file the fleet did not write: the second node does not count
    // again, it reads the fleet's count.
    std::fs::write(shared.path().join("outside"), vec![b'y'; 500]).unwrap();
    assert_eq!(avbl(n2.addr), 7000);
    n1.wait_for_log("quota usage counted", 0, Duration::from_secs(5));
    let log = n2.wait_for_log("quota usage read from the fleet", 0, Duration::from_secs(5));
    assert!(!log.contains("quota usage counted"), "{log}");
    // A rescan on either node counts again for both.
    let v = ctl_json(&s2, &["quota", "rescan", "carol"]);
    assert!(v.is_object(), "{v}");
    assert!(within(Duration::from_secs(5), || avbl(n1.addr) == 6500));
}

/// A node of a fleet serving user `q` on `s3://BUCKET/q` with a 6 MiB
/// quota.
fn s3_node(moto: &Moto, redis: &Redis, name: &str, first: bool) -> Server {
    let start = if first {
        crate::s3::server_configured
    } else {
        crate::s3::server_on_buckets
    };
    start(
        moto,
        &format!("node_name = \"{name}\""),
        &format!(
            "\n[cluster]\nredis = \"{}\"\n\n[[users]]\nname = \"q\"\npassword_hash = \"{}\"\n\
             root = \"s3://{BUCKET}/q\"\npermissions = [\"read\", \"write\", \"overwrite\", \"delete\"]\n\
             quota_bytes = \"6M\"\n",
            redis.url(),
            password_hash()
        ),
    )
}

#[test]
fn s3sfs_parallel_uploads_through_two_nodes_never_pass_one_quota_on_a_bucket() {
    let Some(moto) = Moto::of(Kind::S3sFs) else {
        return;
    };
    let Some(redis) = Redis::start() else {
        return;
    };
    let n1 = s3_node(&moto, &redis, "s1", true);
    let n2 = s3_node(&moto, &redis, "s2", false);
    let addrs = [n1.addr, n2.addr];
    let limit = 6 * 1024 * 1024u64;
    // Twelve of 1 MiB at once through both nodes (12 MiB in all).
    let threads: Vec<_> = (0..12u64)
        .map(|i| {
            let addr = addrs[(i % 2) as usize];
            std::thread::spawn(move || {
                let mut c = Raw::login(addr, "q");
                assert!(c.cmd("TYPE I").starts_with("200 "));
                let mut d = c.pasv();
                let r = c.cmd(&format!("STOR p{i}.bin"));
                if !r.starts_with("150 ") {
                    return r;
                }
                let _ = d.write_all(&random_bytes(1024 * 1024, i));
                let _ = d.shutdown(std::net::Shutdown::Write);
                drop::<TcpStream>(d);
                c.reply()
            })
        })
        .collect();
    let mut stored = 0;
    for t in threads {
        let r = t.join().unwrap();
        if r.starts_with("226 ") {
            stored += 1;
        } else {
            assert_eq!(r, EXCEEDED);
        }
    }
    // Checked with the store's own listing.
    let objects: Vec<(String, u64)> = moto
        .py(
            "p = s3.get_paginator('list_objects_v2')\n\
             for page in p.paginate(Bucket=sys.argv[1], Prefix='q/'):\n    \
             for o in page.get('Contents', []): print(o['Key'], o['Size'])",
            &[BUCKET],
        )
        .lines()
        .map(|l| {
            let (k, s) = l.rsplit_once(' ').unwrap();
            (k.to_owned(), s.parse().unwrap())
        })
        .collect();
    let sum: u64 = objects.iter().map(|o| o.1).sum();
    assert!(sum <= limit, "{sum}: {objects:?}");
    assert_eq!(objects.len(), stored, "{objects:?}");
    assert!(stored >= 1, "{objects:?}");
}
