//! Checksums: HASH with OPTS HASH and RANG (draft-bryan-ftpext-hash-02)
//! and XCRC, XMD5, XSHA1, XSHA256, XSHA512, every algorithm checked
//! against Python's hashlib and zlib (an implementation of its own, not
//! the crates the server uses), on files of 0 bytes, 1 byte, more than
//! one read chunk and 100 MiB; ranges; a file that changes while it is
//! hashed; ABOR, the drain and data_timeout during a long hash; the
//! limits, the account's download rate among them; TYPE A; lftp's `quote
//! HASH`; and object-store roots, whose objects are read.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use crate::harness::{random_bytes, stor, Raw, Server, Setup, PASSWORD};
use crate::site::{Root, Site};
use crate::tools::{have, run};

/// HASH's name, the X-verb and Python's name of each algorithm.
const ALGORITHMS: [(&str, &str, &str); 5] = [
    ("SHA-1", "XSHA1", "sha1"),
    ("SHA-256", "XSHA256", "sha256"),
    ("SHA-512", "XSHA512", "sha512"),
    ("MD5", "XMD5", "md5"),
    ("CRC32", "XCRC", "crc32"),
];

const PY_HASHES: &str = r#"
import hashlib, sys, zlib
d = open(sys.argv[1], 'rb').read()
if len(sys.argv) > 2:
    d = d[int(sys.argv[2]):int(sys.argv[3])]
for n in ('sha1', 'sha256', 'sha512', 'md5'):
    print(n, hashlib.new(n, d).hexdigest())
print('crc32', format(zlib.crc32(d) & 0xffffffff, '08x'))
"#;

/// Python's hashes of `path` (of bytes `start..end` when given), by
/// Python's name.
fn python(path: &Path, range: Option<(u64, u64)>) -> HashMap<String, String> {
    let mut cmd = Command::new("python3");
    cmd.args(["-c", PY_HASHES]).arg(path);
    if let Some((s, e)) = range {
        cmd.args([s.to_string(), e.to_string()]);
    }
    run(&mut cmd)
        .lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(n, h)| (n.to_owned(), h.to_owned()))
        .collect()
}

/// The last byte a HASH reply names for `len` bytes from `start`.
fn last(start: u64, len: u64) -> u64 {
    (start + len).saturating_sub(1).max(start)
}

#[test]
fn every_algorithm_matches_python() {
    if !have("python3") {
        return;
    }
    let server = Server::start();
    let files: [(&str, Vec<u8>); 3] = [
        ("empty.bin", Vec::new()),
        ("one.bin", vec![0x5a]),
        // More than one read of the server's (256 KiB).
        ("chunks.bin", random_bytes(600_001, 3)),
    ];
    let mut c = Raw::login(server.addr, "alice");
    let feat = c.cmd("FEAT");
    assert!(
        feat.contains("\n HASH SHA-1;SHA-256*;SHA-512;MD5;CRC32\n"),
        "{feat}"
    );
    assert!(feat.contains("\n RANG STREAM\n"), "{feat}");
    assert_eq!(c.cmd("OPTS HASH"), "200 SHA-256");
    for (name, data) in &files {
        std::fs::write(server.alice.join(name), data).unwrap();
        let want = python(&server.alice.join(name), None);
        let len = data.len() as u64;
        for (algo, xverb, py) in ALGORITHMS {
            assert_eq!(c.cmd(&format!("OPTS HASH {algo}")), format!("200 {algo}"));
            assert_eq!(
                c.cmd(&format!("HASH {name}")),
                format!("213 {algo} 0-{} {} {name}", last(0, len), want[py]),
                "{algo} of {name}"
            );
            assert_eq!(
                c.cmd(&format!("{xverb} {name}")),
                format!("250 {}", want[py]),
                "{xverb} of {name}"
            );
        }
    }
    // The selection shows in FEAT; lower case is the same name.
    assert_eq!(c.cmd("OPTS HASH md5"), "200 MD5");
    assert!(c
        .cmd("FEAT")
        .contains(" HASH SHA-1;SHA-256;SHA-512;MD5*;CRC32\n"));
    assert_eq!(
        c.cmd("OPTS HASH CRC-37"),
        "501 Unknown algorithm, current selection not changed."
    );
    assert_eq!(c.cmd("OPTS HASH"), "200 MD5");
}

/// A 100 MiB file, written once and hashed with every algorithm (five
/// HASH commands): the times go to the test's output.
#[test]
fn a_100_mib_file() {
    if !have("python3") {
        return;
    }
    let server = Server::start();
    let path = server.alice.join("big.bin");
    let script = "import os, sys\nopen(sys.argv[1], 'wb').write(os.urandom(100 << 20))";
    run(Command::new("python3").args(["-c", script]).arg(&path));
    let want = python(&path, None);
    let mut c = Raw::login(server.addr, "alice");
    let mut times = Vec::new();
    for (algo, _, py) in ALGORITHMS {
        assert_eq!(c.cmd(&format!("OPTS HASH {algo}")), format!("200 {algo}"));
        let t = Instant::now();
        let reply = c.cmd("HASH big.bin");
        times.push(format!("{algo} {:.2} s", t.elapsed().as_secs_f64()));
        assert_eq!(
            reply,
            format!("213 {algo} 0-{} {} big.bin", (100 << 20) - 1, want[py])
        );
    }
    eprintln!("HASH of 100 MiB: {}", times.join(", "));
}

#[test]
fn ranges() {
    if !have("python3") {
        return;
    }
    let server = Server::start();
    let data = random_bytes(1000, 7);
    let path = server.alice.join("r.bin");
    std::fs::write(&path, &data).unwrap();
    let part = |s: u64, e: u64| python(&path, Some((s, e)));
    let whole = python(&path, None);
    let mut c = Raw::login(server.addr, "alice");
    // RANG's end is the last byte, and so is the reply's (draft 3.3).
    assert_eq!(
        c.cmd("RANG 0 49"),
        "350 Restarting at 0. End byte range at 49. HASH only."
    );
    let want = format!("213 SHA-256 0-49 {} r.bin", part(0, 50)["sha256"]);
    assert_eq!(c.cmd("HASH r.bin"), want);
    // It stays until RANG 1 0.
    assert_eq!(c.cmd("HASH r.bin"), want);
    // It is for HASH only: the X-verbs and RETR ignore it.
    assert_eq!(c.cmd("XSHA1 r.bin"), format!("250 {}", whole["sha1"]));
    assert!(c.cmd("RANG 1 0").starts_with("350 "));
    assert_eq!(
        c.cmd("HASH r.bin"),
        format!("213 SHA-256 0-999 {} r.bin", whole["sha256"])
    );
    // An end past the file stops at its end.
    c.cmd("RANG 990 5000");
    assert_eq!(
        c.cmd("HASH r.bin"),
        format!("213 SHA-256 990-999 {} r.bin", part(990, 1000)["sha256"])
    );
    c.cmd("RANG 1000 1000");
    assert!(c.cmd("HASH r.bin").starts_with("554 "));
    assert!(c.cmd("RANG 5 4").starts_with("501 "));
    assert!(c.cmd("RANG 5").starts_with("501 "));
    assert!(c.cmd("RANG 1 0").starts_with("350 "));
    // The X-verbs: start, and the offset after the last byte.
    assert_eq!(
        c.cmd("XMD5 r.bin 10 20"),
        format!("250 {}", part(10, 20)["md5"])
    );
    assert_eq!(
        c.cmd("XCRC r.bin 10"),
        format!("250 {}", part(10, 1000)["crc32"])
    );
    assert_eq!(
        c.cmd("XSHA512 \"r.bin\" 0 1"),
        format!("250 {}", part(0, 1)["sha512"])
    );
    assert!(c.cmd("XCRC r.bin 5000").starts_with("554 "));
    assert!(c.cmd("XCRC r.bin 20 10").starts_with("501 "));
}

/// TYPE A hashes the bytes as stored (draft section 3: what a TYPE I
/// download would receive); directories and missing files are refused.
#[test]
fn type_a_directories_and_missing_files() {
    if !have("python3") {
        return;
    }
    let server = Server::start();
    let path = server.alice.join("t.txt");
    std::fs::write(&path, b"one\ntwo\nthree\n").unwrap();
    std::fs::create_dir(server.alice.join("sub")).unwrap();
    let want = python(&path, None);
    let mut c = Raw::login(server.addr, "alice");
    assert!(c.cmd("TYPE A").starts_with("200 "));
    assert_eq!(
        c.cmd("HASH t.txt"),
        format!("213 SHA-256 0-13 {} t.txt", want["sha256"])
    );
    assert_eq!(c.cmd("XMD5 t.txt"), format!("250 {}", want["md5"]));
    assert!(c.cmd("HASH sub").starts_with("553 "));
    assert!(c.cmd("XSHA256 sub").starts_with("550 "));
    assert!(c.cmd("HASH nothere").starts_with("550 "));
    assert!(c.cmd("HASH ../../etc/passwd").starts_with("550 "));
    // Read permission is enough (bob may only read).
    let mut b = Raw::login(server.addr, "bob");
    assert!(b.cmd("HASH b.txt").starts_with("213 SHA-256 0-10 "));
}

/// A server whose hashes run at 1 MiB/s (the session's download rate),
/// one at a time, none over 4 MiB; and a 3 MiB file on it.
fn slow_server() -> Server {
    let server = Server::start_with(Setup {
        limits: "session_download_rate = \"1M\"\nhash_concurrency = 1\nhash_max_size = \"4M\"",
        ..Setup::default()
    });
    std::fs::write(server.alice.join("slow.bin"), random_bytes(3 << 20, 9)).unwrap();
    server
}

/// HASH, then NOOP: NOOP's 200 comes while the hash runs (it is answered
/// at once during one), so the hash has begun.
fn start_slow_hash(c: &mut Raw) {
    c.send(b"HASH slow.bin\r\nNOOP\r\n");
    assert_eq!(c.reply(), "200 NOOP ok.");
}

#[test]
fn a_file_changed_while_hashed_is_refused() {
    let server = slow_server();
    let mut c = Raw::login(server.addr, "alice");
    start_slow_hash(&mut c);
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(server.alice.join("slow.bin"))
        .unwrap();
    std::io::Write::write_all(&mut f, b"more").unwrap();
    drop(f);
    assert_eq!(
        c.reply(),
        "451 The file changed while it was hashed; try again."
    );
}

#[test]
fn abor_stops_a_long_hash_and_the_limits_hold() {
    let server = slow_server();
    std::fs::write(server.alice.join("small.bin"), b"small").unwrap();
    std::fs::write(server.alice.join("huge.bin"), vec![0u8; 5 << 20]).unwrap();
    let mut c = Raw::login(server.addr, "alice");
    start_slow_hash(&mut c);
    // Another session meanwhile: the one place is taken.
    let mut other = Raw::login(server.addr, "alice");
    assert_eq!(
        other.cmd("HASH small.bin"),
        "450 Too many files are being hashed; try again later."
    );
    // A command other than NOOP, STAT and ABOR waits behind the hash.
    c.send(b"PWD\r\nABOR\r\n");
    assert_eq!(c.reply(), "426 Hash aborted.");
    assert_eq!(c.reply(), "226 ABOR successful.");
    // (At 1 MiB/s the hash had three seconds to go: the 426 is ABOR's.)
    assert!(c.reply().starts_with("257 "));
    // The place is free again.
    assert!(other.cmd("HASH small.bin").starts_with("213 SHA-256 0-4 "));
    // Over limits.hash_max_size: 556, unless a range keeps it under.
    assert_eq!(
        c.cmd("HASH huge.bin"),
        format!(
            "556 Not hashed: {} bytes is more than this server hashes ({}).",
            5 << 20,
            4 << 20
        )
    );
    c.cmd("RANG 0 9");
    assert!(c.cmd("HASH huge.bin").starts_with("213 SHA-256 0-9 "));
}

/// The account's `download_rate` (a `[[users]]` key, not the session's
/// or the server's rate) slows a hash: 3 MiB at 1 MiB/s takes about
/// three seconds for alice, while bob, who has no rate, hashes the same
/// bytes at once.
#[test]
fn the_account_download_rate_slows_a_hash() {
    let server = Server::start_with(Setup {
        alice_extra: "download_rate = \"1M\"",
        ..Setup::default()
    });
    let data = random_bytes(3 << 20, 37);
    std::fs::write(server.alice.join("r.bin"), &data).unwrap();
    std::fs::write(server.bob.join("r.bin"), &data).unwrap();
    let timed = |user: &str| {
        let mut c = Raw::login(server.addr, user);
        let t = Instant::now();
        let reply = c.cmd("HASH r.bin");
        assert!(
            reply.starts_with("213 SHA-256 0-3145727 "),
            "{user}: {reply}"
        );
        (reply, t.elapsed().as_secs_f64())
    };
    let (fast, unlimited) = timed("bob");
    let (slow, limited) = timed("alice");
    assert_eq!(fast, slow);
    // (3 MiB less the bucket's first 100 KiB) at 1 MiB/s: 2.9 s.
    assert!(limited >= 2.5, "alice's hash took {limited:.2} s");
    assert!(unlimited < 2.0, "bob's hash took {unlimited:.2} s");
}

/// `limits.data_timeout` ends a hash that moves no byte for that long
/// (here its first 256 KiB read waits for an account rate of 1 KiB/s):
/// 426, the session goes on and the one hash place is free again.
#[test]
fn data_timeout_ends_a_hash_that_moves_nothing() {
    let server = Server::start_with(Setup {
        alice_extra: "download_rate = \"1K\"",
        limits: "data_timeout = \"1s\"\nhash_concurrency = 1",
        ..Setup::default()
    });
    std::fs::write(server.alice.join("s.bin"), random_bytes(300_000, 41)).unwrap();
    let mut c = Raw::login(server.addr, "alice");
    let t = Instant::now();
    assert_eq!(
        c.cmd("HASH s.bin"),
        "426 Transfer stalled: no data moved for 1 s; aborted."
    );
    let took = t.elapsed().as_secs_f64();
    assert!(took < 10.0, "the stall was noticed after {took:.2} s");
    assert_eq!(c.cmd("NOOP"), "200 NOOP ok.");
    // The place is free again (bob has no rate; alice's account still
    // owes the bytes of the read that stalled).
    let mut b = Raw::login(server.addr, "bob");
    assert!(b.cmd("HASH b.txt").starts_with("213 SHA-256 0-10 "));
}

/// The drain cuts a hash still running after `server.shutdown_grace`:
/// 426, then 421, and the server exits, long before the hash (5 s at
/// 1 MiB/s) would have ended.
#[test]
fn the_drain_cuts_a_long_hash() {
    let mut server = Server::start_with(Setup {
        limits: "session_download_rate = \"1M\"",
        extra_server: "shutdown_grace = \"1s\"",
        ..Setup::default()
    });
    std::fs::write(server.alice.join("slow.bin"), random_bytes(5 << 20, 43)).unwrap();
    let mut c = Raw::login(server.addr, "alice");
    start_slow_hash(&mut c);
    let t = Instant::now();
    server.signal("TERM");
    assert_eq!(c.reply(), "426 Server shutting down; transfer aborted.");
    assert!(c.reply().starts_with("421 Server shutting down"));
    let took = t.elapsed().as_secs_f64();
    assert!(took < 4.0, "the hash was cut after {took:.2} s");
    assert!(server
        .exit_within(std::time::Duration::from_secs(10))
        .success());
}

#[test]
fn hashing_turned_off() {
    let server = Server::start_with(Setup {
        limits: "hash = false",
        ..Setup::default()
    });
    std::fs::write(server.alice.join("f"), b"x").unwrap();
    let mut c = Raw::login(server.addr, "alice");
    for line in ["HASH f", "XCRC f", "XSHA256 f", "RANG 0 1", "OPTS HASH"] {
        let reply = c.cmd(line);
        assert!(reply.starts_with("502 "), "{line}: {reply}");
    }
    let feat = c.cmd("FEAT");
    assert!(!feat.contains("HASH") && !feat.contains("RANG"), "{feat}");
    let help = c.cmd("HELP");
    assert!(!help.contains("HASH") && !help.contains("XCRC"), "{help}");
    assert!(c.cmd("HELP HASH").starts_with("502 "));
}

/// lftp's `quote HASH`, as a user would type it.
#[test]
fn lftp_quote_hash() {
    if !have("lftp") || !have("python3") {
        return;
    }
    let server = Server::start();
    let path = server.alice.join("q.bin");
    std::fs::write(&path, random_bytes(70_000, 5)).unwrap();
    let want = python(&path, None);
    let script = format!(
        "set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 20; \
         open -u alice,'{PASSWORD}' ftp://{}; quote OPTS HASH SHA-512; quote HASH q.bin",
        server.addr
    );
    let out = run(Command::new("lftp").args(["-c", &script]));
    assert!(
        out.contains(&format!("SHA-512 0-69999 {} q.bin", want["sha512"])),
        "{out}"
    );
}

/// On an object store the object is read (its ETag is not a SHA).
fn object_store(root: Root) {
    if !have("python3") {
        return;
    }
    let Some(site) = Site::start(root) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let data = random_bytes(300_000, 11);
    std::fs::write(work.path().join("o.bin"), &data).unwrap();
    site.write("o.bin", &data);
    let want = python(&work.path().join("o.bin"), None);
    let part = python(&work.path().join("o.bin"), Some((100, 200)));
    let mut c = Raw::login(site.server.addr, "alice");
    assert_eq!(
        c.cmd("HASH o.bin"),
        format!("213 SHA-256 0-299999 {} o.bin", want["sha256"])
    );
    assert_eq!(c.cmd("XMD5 o.bin 100 200"), format!("250 {}", part["md5"]));
    assert!(c.cmd("HASH missing.bin").starts_with("550 "));
}

#[test]
fn s3_object_is_read() {
    object_store(Root::Moto);
}

#[test]
fn s3sfs_object_is_read() {
    object_store(Root::S3sFs);
}

/// Whether `dir`'s file system keeps user extended attributes.
fn user_xattrs(dir: &Path) -> bool {
    let probe = dir.join(".xattr-probe");
    std::fs::write(&probe, b"").unwrap();
    let ok = Command::new("python3")
        .args([
            "-c",
            "import os, sys; os.setxattr(sys.argv[1], 'user.probe', b'1')",
        ])
        .arg(&probe)
        .status()
        .is_ok_and(|s| s.success());
    std::fs::remove_file(&probe).unwrap();
    crate::tools::installed(ok, "user extended attributes")
}

/// `limits.hash_on_upload = "sha256"`: the digest computed as the upload
/// arrives is kept with the file (a user extended attribute), in the
/// transfer's log line, and answers HASH without a read while the file is
/// unchanged (here every read would be refused: hash_max_size = 10).
#[test]
fn hash_on_upload_keeps_the_digest() {
    if !have("python3") {
        return;
    }
    let server = Server::start_with(Setup {
        limits: "hash_on_upload = \"sha256\"\nhash_max_size = 10",
        log_format: Some("json"),
        ..Setup::default()
    });
    if !user_xattrs(&server.alice) {
        return;
    }
    let data = random_bytes(700_000, 13);
    let mut c = Raw::login(server.addr, "alice");
    assert!(stor(&mut c, "up.bin", &data).starts_with("226 "));
    let path = server.alice.join("up.bin");
    let sha = python(&path, None)["sha256"].clone();
    let kept = run(Command::new("python3")
        .args([
            "-c",
            "import os, sys; print(os.getxattr(sys.argv[1], 'user.portcullis.sha256').decode())",
        ])
        .arg(&path));
    assert!(kept.starts_with(&format!("v1 {sha} 700000 ")), "{kept}");
    assert_eq!(
        c.cmd("HASH up.bin"),
        format!("213 SHA-256 0-699999 {sha} up.bin")
    );
    assert_eq!(c.cmd("XSHA256 up.bin"), format!("250 {sha}"));
    // Another algorithm, or a part, reads the file: over the cap here.
    assert!(c.cmd("XSHA256 up.bin 0 100").starts_with("556 "));
    c.cmd("OPTS HASH MD5");
    assert!(c.cmd("HASH up.bin").starts_with("556 "));
    c.cmd("OPTS HASH SHA-256");
    // The upload's log line carries it.
    let log = server.log();
    assert!(
        log.lines().any(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_default();
            v["fields"]["message"] == "transfer" && v["fields"]["sha256"] == sha.as_str()
        }),
        "{log}"
    );
    // Changed behind the server's back: the digest no longer covers it.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    std::io::Write::write_all(&mut f, b"x").unwrap();
    drop(f);
    assert!(c.cmd("HASH up.bin").starts_with("556 "));
    // TYPE A: the digest is of the bytes stored (line ends converted).
    assert!(c.cmd("TYPE A").starts_with("200 "));
    assert!(stor(&mut c, "a.txt", b"one\r\ntwo\r\n").starts_with("226 "));
    assert_eq!(
        std::fs::read(server.alice.join("a.txt")).unwrap(),
        b"one\ntwo\n"
    );
    let want = python(&server.alice.join("a.txt"), None)["sha256"].clone();
    assert_eq!(c.cmd("HASH a.txt"), format!("213 SHA-256 0-7 {want} a.txt"));
}

/// The `[limits]` of the object-store servers below: digests kept, and
/// every read refused (a HASH answered comes from the kept digest).
const KEEP_LIMITS: &str = "\n[limits]\nhash_on_upload = \"sha256\"\nhash_max_size = 1000\n";

/// `limits.hash_on_upload` on an object store: the digest is kept in the
/// object's metadata, for a single PUT (300 kB) and a multipart upload
/// (6 MiB in parts of 5 MiB), and HASH answers from it without reading
/// (`hash_max_size = 1000` refuses every read, 556), also after the
/// conditional completion of an account that may not overwrite; a
/// rename's copy keeps it. An object overwritten straight in the store (the store's
/// own API, not this server) is read again: a small one gives its new
/// digest, a large one 556, never the old digest.
fn kept_on_object_store(root: Root) {
    if !have("python3") {
        return;
    }
    enum Direct {
        S3(crate::s3::store::Moto),
        Azure(crate::azure::store::Container),
    }
    let (server, store) = match root {
        Root::Azurite => {
            let Some(c) = crate::azure::store::Container::new("hash-kept") else {
                return;
            };
            (
                crate::azure::server_with(&c, "", KEEP_LIMITS),
                Direct::Azure(c),
            )
        }
        Root::Moto | Root::S3sFs => {
            let kind = match root {
                Root::Moto => crate::s3::store::Kind::Moto,
                _ => crate::s3::store::Kind::S3sFs,
            };
            let Some(m) = crate::s3::store::Moto::of(kind) else {
                return;
            };
            (
                crate::s3::server_configured(&m, "", KEEP_LIMITS),
                Direct::S3(m),
            )
        }
        Root::Local => unreachable!("local roots: hash_on_upload_keeps_the_digest"),
    };
    let put = |name: &str, data: &[u8]| match &store {
        Direct::S3(m) => m.put_bytes(crate::s3::BUCKET, &format!("alice/{name}"), data),
        Direct::Azure(c) => c.put(&format!("alice/{name}"), data),
    };
    let work = tempfile::tempdir().unwrap();
    let sha = |data: &[u8]| {
        let f = work.path().join("h.bin");
        std::fs::write(&f, data).unwrap();
        python(&f, None)["sha256"].clone()
    };
    let mut c = Raw::login(server.addr, "alice");
    crate::s3::binary(&mut c);
    for (name, size) in [("one.bin", 300_000), ("parts.bin", (6 << 20) + 5)] {
        let data = random_bytes(size, 19);
        assert!(stor(&mut c, name, &data).starts_with("226 "), "{name}");
        let want = sha(&data);
        if let Direct::S3(m) = &store {
            let meta = m.py(
                "print(s3.head_object(Bucket=sys.argv[1], Key=sys.argv[2])['Metadata'].get('portcullissha256'))",
                &[crate::s3::BUCKET, &format!("alice/{name}")],
            );
            assert_eq!(meta.trim(), format!("v1 {want} {size}"), "{name}");
        }
        let last = size - 1;
        assert_eq!(
            c.cmd(&format!("HASH {name}")),
            format!("213 SHA-256 0-{last} {want} {name}")
        );
        assert_eq!(c.cmd(&format!("XSHA256 {name}")), format!("250 {want}"));
        // Any other hash reads the object: over the cap.
        assert!(c.cmd(&format!("XMD5 {name}")).starts_with("556 "));
    }
    // An account that may not overwrite: the conditional commits.
    let mut d = Raw::login(server.addr, "drop");
    crate::s3::binary(&mut d);
    let data = random_bytes((5 << 20) + 3, 31);
    assert!(stor(&mut d, "new.bin", &data).starts_with("226 "));
    assert_eq!(d.cmd("XSHA256 new.bin"), format!("250 {}", sha(&data)));
    // A rename copies the object with its metadata.
    assert!(c.cmd("RNFR one.bin").starts_with("350 "));
    assert!(c.cmd("RNTO moved.bin").starts_with("250 "));
    let r = c.cmd("HASH moved.bin");
    assert!(r.starts_with("213 SHA-256 0-299999 "), "{r}");
    // Overwritten in the store by another client: read again.
    let small = random_bytes(500, 23);
    put("parts.bin", &small);
    assert_eq!(
        c.cmd("HASH parts.bin"),
        format!("213 SHA-256 0-499 {} parts.bin", sha(&small))
    );
    put("moved.bin", &random_bytes(300_000, 29));
    assert!(c.cmd("HASH moved.bin").starts_with("556 "));
}

#[test]
fn s3sfs_hash_on_upload_keeps_the_digest_in_metadata() {
    kept_on_object_store(Root::S3sFs);
}

#[test]
fn s3_hash_on_upload_keeps_the_digest_in_metadata() {
    kept_on_object_store(Root::Moto);
}

#[test]
fn az_hash_on_upload_keeps_the_digest_in_metadata() {
    kept_on_object_store(Root::Azurite);
}

/// What hash_on_upload costs a STOR of 100 MiB over loopback, the
/// figures in the test's output: the default route (splice(2) where it
/// can), the copy loop the digest needs (forced here without one by a
/// session upload rate too high to bite), and the copy loop with the
/// digest. Best of three each.
#[test]
fn hash_on_upload_cost() {
    let data = random_bytes(100 << 20, 17);
    let mut figures = Vec::new();
    for limits in [
        "",
        "session_upload_rate = \"64G\"",
        "session_upload_rate = \"64G\"\nhash_on_upload = \"sha256\"\nhash_max_size = 10",
    ] {
        let server = Server::start_with(Setup {
            limits,
            ..Setup::default()
        });
        let mut c = Raw::login(server.addr, "alice");
        let mut best = f64::MAX;
        for i in 0..3 {
            let t = Instant::now();
            assert!(stor(&mut c, &format!("big{i}.bin"), &data).starts_with("226 "));
            best = best.min(t.elapsed().as_secs_f64());
        }
        if limits.contains("hash_on_upload") {
            // Answered from the kept digest: a read would be over the cap.
            let r = c.cmd("HASH big0.bin");
            assert!(r.starts_with("213 SHA-256 0-104857599 "), "{r}");
        }
        figures.push(best);
    }
    eprintln!(
        "STOR 100 MiB, best of 3: {:.3} s default route, {:.3} s copy loop, {:.3} s copy loop with hash_on_upload",
        figures[0], figures[1], figures[2],
    );
}
