//! `az://` roots against Azurite (one per test binary, a container per
//! test; [`store`]): the object-store cases of `s3.rs` and `s3/` over
//! Azure Blob Storage. Round trips small, in blocks and of 100 MiB in
//! bounded memory, resumed downloads, uploads reset mid-way (no committed
//! blob, an existing blob untouched, as the container's own listing shows
//! it), two uploads to one name at once, a listing of 2,500 blobs across
//! pages, directories as markers and prefixes, renames (copies whose
//! status is read before the source goes), the drop box's no-overwrite
//! down to the conditional block-list commit, and the drain; in
//! [`aborts`], uploads given up and the store gone, a blob replaced
//! mid-download; in [`profiles`], blocks that grow, the refusals,
//! profiles, an anonymous root and a SAS token.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::harness::{password_hash, random_bytes, stor, Raw, Server, PASSWORD};
use crate::s3::aborts::peak_rss;
use crate::s3::{binary, listing, listing_pages_of, retr};

mod aborts;
mod profiles;
pub(crate) mod store;

use store::{Container, ACCOUNT, KEY};

/// A server whose accounts live in the test's container: alice
/// (everything) under `alice/`, `drop` (write and rename, no overwrite)
/// under `drop/`, and `slow` (4 MiB/s uploads) under `slow/`; blocks of
/// 5 MiB, so that a 12 MiB upload is three blocks.
pub(crate) fn server(c: &Container, lines: &str) -> Server {
    server_with(c, lines, "")
}

/// The same, with `extra` at the end of the config file.
pub(crate) fn server_with(c: &Container, lines: &str, extra: &str) -> Server {
    let text = config_text(c, lines, &c.name, KEY) + extra;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("portcullis.toml");
    std::fs::write(&config, text).unwrap();
    Server::start_from_config(dir, &config)
}

/// The config of [`server`], its roots in container `ctr`, signed with `key`.
fn config_text(c: &Container, lines: &str, ctr: &str, key: &str) -> String {
    let hash = password_hash();
    let ports = crate::harness::passive_ports(20);
    let endpoint = &c.az.endpoint;
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
failed_login_delay = "50ms"
allow_root = true
{lines}

[passive]
ports = "{ports}"

[azure]
account = "{ACCOUNT}"
access_key = "{key}"
endpoint = "{endpoint}"
allow_http = true
block_size = "5M"
download_chunk = "1M"
request_timeout = "10s"

[azure.profiles.other]
upload_streams = 1

[[users]]
name = "alice"
password_hash = "{hash}"
root = "az://{ctr}/alice"
permissions = ["read", "write", "overwrite", "delete", "rename", "mkdir"]

[[users]]
name = "drop"
password_hash = "{hash}"
root = "az://{ctr}/drop"
permissions = ["read", "write", "rename"]

[[users]]
name = "slow"
password_hash = "{hash}"
root = "az://{ctr}/slow"
permissions = ["read", "write", "overwrite"]
upload_rate = "4M"
"#
    )
}

#[test]
fn az_round_trips_small_and_in_blocks_passive_and_active() {
    let Some(ctr) = Container::new("round-trips") else {
        return;
    };
    let server = server(&ctr, "");
    let small = random_bytes(1000, 1);
    let big = random_bytes(12 * 1024 * 1024 + 123, 2);
    let mut c = Raw::login(server.addr, "alice");
    binary(&mut c);
    assert!(stor(&mut c, "small.bin", &small).starts_with("226 "));
    assert!(stor(&mut c, "big.bin", &big).starts_with("226 "));
    assert_eq!(ctr.keys(), ["alice/big.bin", "alice/small.bin"]);
    assert!(ctr.get("alice/big.bin") == big);
    let (got, end) = retr(&mut c, "small.bin", 0);
    assert!(got == small && end.starts_with("226 "), "{end}");
    let (got, end) = retr(&mut c, "big.bin", 0);
    assert!(got == big, "blob read back differs");
    assert!(end.starts_with("226 "), "{end}");
    // Replacing a blob with one of blocks.
    let bigger = random_bytes(11 * 1024 * 1024, 3);
    assert!(stor(&mut c, "small.bin", &bigger).starts_with("226 "));
    assert!(ctr.get("alice/small.bin") == bigger);

    // Active mode, through the client crate.
    use suppaftp::types::FileType;
    let mut ftp = suppaftp::FtpStream::connect(server.addr)
        .unwrap()
        .active_mode(Duration::from_secs(10));
    ftp.login("alice", PASSWORD).unwrap();
    ftp.transfer_type(FileType::Binary).unwrap();
    let back = ftp.retr_as_buffer("big.bin").unwrap().into_inner();
    assert!(back == big, "active download differs");
    ftp.put_file("active.bin", &mut std::io::Cursor::new(&bigger))
        .unwrap();
    assert!(ctr.get("alice/active.bin") == bigger);
    assert_eq!(ftp.size("active.bin").unwrap(), bigger.len());
    ftp.quit().unwrap();
}

#[test]
fn az_a_100_mib_round_trip_streams_with_bounded_memory() {
    let Some(ctr) = Container::new("hundred") else {
        return;
    };
    let server = server(&ctr, "");
    let data = random_bytes(100 * 1024 * 1024, 11);
    let mut c = Raw::login(server.addr, "alice");
    binary(&mut c);
    let before = peak_rss(server.pid());
    let end = stor(&mut c, "big.bin", &data);
    assert!(end.starts_with("226 "), "{end}");
    let r = c.cmd("SIZE big.bin");
    assert_eq!(r, format!("213 {}", data.len()));
    let (got, end) = retr(&mut c, "big.bin", 0);
    assert!(end.starts_with("226 "), "{end}");
    assert!(got == data, "100 MiB read back differs");
    // Blocks of 5 MiB, at most three at once, ranged GETs of 1 MiB, four
    // at once, and what the allocator keeps of them: nothing near the
    // blob's size.
    let grown = peak_rss(server.pid()).saturating_sub(before);
    eprintln!(
        "server peak RSS grew by {} KiB for a 100 MiB round trip on Azurite",
        grown / 1024
    );
    assert!(grown < 50 * 1024 * 1024, "peak RSS grew by {grown} bytes");
}

#[test]
fn az_rest_resumes_downloads_with_ranged_gets() {
    let Some(ctr) = Container::new("rest") else {
        return;
    };
    let server = server(&ctr, "");
    ctr.put("alice/f.txt", b"0123456789");
    let mut c = Raw::login(server.addr, "alice");
    binary(&mut c);
    let (got, end) = retr(&mut c, "f.txt", 4);
    assert_eq!(got, b"456789");
    assert!(end.starts_with("226 "), "{end}");
    let (got, end) = retr(&mut c, "f.txt", 10);
    assert!(got.is_empty() && end.starts_with("226 "), "{end}");
    let _d = c.pasv();
    assert!(c.cmd("REST 11").starts_with("350 "));
    let r = c.cmd("RETR f.txt");
    assert!(r.starts_with("554 "), "{r}");
    // A resumed download of a blob of blocks, across their boundaries.
    let data = random_bytes(11 * 1024 * 1024, 5);
    assert!(stor(&mut c, "b.bin", &data).starts_with("226 "));
    for rest in [1, 5 << 20, (8 << 20) + 3] {
        let (got, end) = retr(&mut c, "b.bin", rest as u64);
        assert!(end.starts_with("226 "), "{end}");
        assert!(got == data[rest..], "from {rest}");
    }
}

/// An upload reset mid-way, onto an existing blob and onto a new name:
/// 426 or 451, and the container's own listing shows no new blob and
/// the existing one as it was (Azure has no abort: the blocks sent are
/// never committed).
#[test]
fn az_upload_reset_midway_leaves_no_blob() {
    let Some(ctr) = Container::new("reset") else {
        return;
    };
    let server = server(&ctr, "");
    ctr.put("alice/keep.bin", b"original");
    let mut c = crate::s3::aborts::reset_two_uploads(&server);
    assert_eq!(ctr.keys(), ["alice/keep.bin"]);
    assert!(ctr.get("alice/keep.bin") == b"original");
    assert!(stor(&mut c, "after.txt", b"ok").starts_with("226 "));
    assert!(ctr.get("alice/after.txt") == b"ok");
}

/// Start a STOR of `name` on a new session of `user`, with `data` sent
/// but the data connection still open.
fn open_upload(server: &Server, user: &str, name: &str, data: &[u8]) -> (Raw, std::net::TcpStream) {
    let mut c = Raw::login(server.addr, user);
    binary(&mut c);
    let mut d = c.pasv();
    let r = c.cmd(&format!("STOR {name}"));
    assert!(r.starts_with("150 "), "{r}");
    d.write_all(data).unwrap();
    (c, d)
}

/// Two uploads of 12 MiB (three blocks each) to one name, both under
/// way before either ends. The first to end is committed, and its Put
/// Block List discards the blocks the other had staged: with two of
/// its blocks staged before that commit (the store shows them), the
/// other ends with 451 and the blob is the first upload; with none
/// staged before (its bytes all sent after it), the other is committed
/// in turn and the blob is the second. Never a mix of the two.
#[test]
fn az_two_uploads_to_one_name_at_once() {
    let Some(ctr) = Container::new("two-at-once") else {
        return;
    };
    let server = server(&ctr, "");
    let a = random_bytes(12 << 20, 21);
    let b = random_bytes(12 << 20, 22);
    let (mut ca, da) = open_upload(&server, "alice", "same.bin", &a);
    let (mut cb, db) = open_upload(&server, "alice", "same.bin", &b);
    // Two 5 MiB blocks of each staged, the last 2 MiB of each buffered.
    let started = Instant::now();
    while ctr.blocks("alice/same.bin").len() < 4 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            ctr.blocks("alice/same.bin")
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(da);
    let ra = ca.reply();
    assert!(ra.starts_with("226 "), "{ra}");
    drop(db);
    let rb = cb.reply();
    assert!(rb.starts_with("451 "), "{rb}");
    assert!(
        ctr.get("alice/same.bin") == a,
        "the blob is not the first upload"
    );

    // The second begun but nothing sent when the first is committed.
    let (mut cb, mut db) = open_upload(&server, "alice", "same.bin", b"");
    let (mut ca, da) = open_upload(&server, "alice", "same.bin", &a);
    drop(da);
    let ra = ca.reply();
    assert!(ra.starts_with("226 "), "{ra}");
    db.write_all(&b).unwrap();
    drop(db);
    let rb = cb.reply();
    assert!(rb.starts_with("226 "), "{rb}");
    assert!(
        ctr.get("alice/same.bin") == b,
        "the blob is not the last upload"
    );
    assert_eq!(ctr.keys(), ["alice/same.bin"]);
}

/// 2,500 blobs and 30 prefixes: three listing pages of 1,000; LIST,
/// NLST and MLSD each give exactly their names.
#[test]
fn az_listing_pages_through_2500_blobs() {
    let Some(ctr) = Container::new("pages") else {
        return;
    };
    let server = server(&ctr, "");
    let files = 2_500;
    ctr.put_many("alice/many/", files, 30);
    listing_pages_of(&server, files);
}

#[test]
fn az_directories_markers_renames_and_deletes() {
    let Some(ctr) = Container::new("dirs") else {
        return;
    };
    let server = server(&ctr, "");
    let mut c = Raw::login(server.addr, "alice");
    binary(&mut c);
    // An empty directory exists through its marker blob `d/`.
    let r = c.cmd("MKD d");
    assert!(r.starts_with("257 \"/d\""), "{r}");
    assert_eq!(ctr.keys(), ["alice/d/"]);
    assert!(c.cmd("MKD d").starts_with("550 "));
    assert!(c.cmd("MKD no/such/parent").starts_with("550 "));
    assert!(c.cmd("CWD d").starts_with("250 "));
    assert_eq!(listing(&mut c, "NLST"), "");
    assert!(stor(&mut c, "g.txt", b"hello").starts_with("226 "));
    assert_eq!(listing(&mut c, "NLST"), "g.txt\r\n");
    let mlsd = listing(&mut c, "MLSD");
    assert!(
        mlsd.lines()
            .any(|l| l.contains("type=file;size=5;") && l.ends_with(" g.txt")),
        "{mlsd}"
    );
    assert!(c.cmd("SIZE g.txt").starts_with("213 5"));
    assert!(c.cmd("MDTM g.txt").starts_with("213 2"));
    assert!(c.cmd("CWD /").starts_with("250 "));
    assert!(stor(&mut c, "top.txt", b"top\n").starts_with("226 "));
    let long = listing(&mut c, "LIST");
    assert_eq!(long.lines().count(), 2, "{long}");
    assert!(long
        .lines()
        .any(|l| l.starts_with('d') && l.ends_with(" d")));
    // Not empty: neither removed nor renamed.
    assert!(c.cmd("RMD d").starts_with("550 "));
    assert!(c.cmd("RNFR d").starts_with("350 "));
    let r = c.cmd("RNTO e");
    assert!(r.starts_with("550 ") && r.contains("not empty"), "{r}");
    // A file is renamed by a copy, seen to succeed, then a delete; one
    // of blocks too.
    assert!(c.cmd("RNFR d/g.txt").starts_with("350 "));
    assert!(c.cmd("RNTO top2.txt").starts_with("250 "));
    assert!(ctr.get("alice/top2.txt") == b"hello");
    let big = random_bytes(11 << 20, 31);
    assert!(stor(&mut c, "big.bin", &big).starts_with("226 "));
    assert!(c.cmd("RNFR big.bin").starts_with("350 "));
    assert!(c.cmd("RNTO d/big2.bin").starts_with("250 "));
    assert!(ctr.get("alice/d/big2.bin") == big);
    assert!(c.cmd("DELE d/big2.bin").starts_with("250 "));
    // Now empty (its marker alone): renamed (the marker moves), removed.
    assert!(c.cmd("RNFR d").starts_with("350 "));
    assert!(c.cmd("RNTO e").starts_with("250 "));
    assert!(c.cmd("CWD d").starts_with("550 "));
    assert!(c.cmd("CWD e").starts_with("250 "));
    assert!(c.cmd("CWD /").starts_with("250 "));
    assert!(c.cmd("RMD e").starts_with("250 "));
    assert!(c.cmd("RMD e").starts_with("550 "));
    // A prefix without a marker is a directory too.
    ctr.put("alice/implicit/x.txt", b"hi");
    assert!(c.cmd("CWD implicit").starts_with("250 "));
    assert_eq!(listing(&mut c, "NLST"), "x.txt\r\n");
    assert!(c.cmd("CDUP").starts_with("250 "));
    assert!(c.cmd("DELE implicit").starts_with("550 "));
    assert!(c.cmd("DELE implicit/x.txt").starts_with("250 "));
    assert!(c.cmd("DELE top.txt").starts_with("250 "));
    // A blob with snapshots (an operator's backup, say) is deleted with
    // them: Azure refuses (409) a Delete Blob that does not say so.
    ctr.snapshot("alice/top2.txt");
    assert_eq!(ctr.all().len(), 2, "{:?}", ctr.all());
    let r = c.cmd("DELE top2.txt");
    assert!(r.starts_with("250 "), "{r}");
    assert!(ctr.keys().is_empty(), "{:?}", ctr.keys());
    assert!(ctr.all().is_empty(), "{:?}", ctr.all());
    assert!(c.cmd("CWD ../drop").starts_with("550 "));
}

/// The drop box (`drop`: no overwrite): STOR and RNTO onto an existing
/// name are refused and the blob stays; renames onto free names are
/// conditional copies; and two uploads of blocks to one free name at
/// once, both past the check that the name is free, end with exactly one
/// committed (Put Block List with `If-None-Match: *`): the other is
/// refused and replaces nothing.
#[test]
fn az_drop_box_never_overwrites() {
    let Some(ctr) = Container::new("drop-box") else {
        return;
    };
    let server = server(&ctr, "");
    ctr.put("drop/victim.txt", b"original");
    let mut c = crate::s3::drop_box::drop_box_refusals(&server);
    assert!(ctr.get("drop/victim.txt") == b"original");
    let data = random_bytes(300_000, 28);
    assert!(stor(&mut c, "big.bin", &data).starts_with("226 "));
    assert!(stor(&mut c, "empty.txt", b"").starts_with("226 "));
    for (from, to) in [("big.bin", "moved.bin"), ("empty.txt", "still-empty.txt")] {
        assert!(c.cmd(&format!("RNFR {from}")).starts_with("350 "));
        let r = c.cmd(&format!("RNTO {to}"));
        assert!(r.starts_with("250 "), "{from} -> {to}: {r}");
    }
    assert!(ctr.get("drop/moved.bin") == data);
    assert!(ctr.get("drop/still-empty.txt").is_empty());

    let a = random_bytes(11 << 20, 41);
    let b = random_bytes(11 << 20, 42);
    let (mut ca, da) = open_upload(&server, "drop", "race.bin", &a);
    let (mut cb, db) = open_upload(&server, "drop", "race.bin", &b);
    drop(da);
    let ra = ca.reply();
    assert!(ra.starts_with("226 "), "{ra}");
    drop(db);
    let rb = cb.reply();
    assert!(
        !rb.starts_with("226 "),
        "the second upload replaced the first: {rb}"
    );
    assert!(
        rb.starts_with("550 ") || rb.starts_with("553 ") || rb.starts_with("451 "),
        "{rb}"
    );
    assert!(
        ctr.get("drop/race.bin") == a,
        "the first upload was replaced"
    );
    assert_eq!(
        ctr.keys(),
        [
            "drop/mine.txt",
            "drop/moved.bin",
            "drop/race.bin",
            "drop/still-empty.txt",
            "drop/victim.txt"
        ]
    );
}

/// SIGTERM with a 1 s grace during a 50 MiB upload throttled to 4 MiB/s:
/// the upload is cut (426, then 421), the process exits 0, and the
/// container's own listing shows no blob.
#[test]
fn az_an_upload_cut_by_the_drain_leaves_no_blob() {
    let Some(ctr) = Container::new("drain") else {
        return;
    };
    let mut server = server(&ctr, "shutdown_grace = \"1s\"");
    let mut c = Raw::login(server.addr, "slow");
    binary(&mut c);
    let mut d = c.pasv();
    assert!(c.cmd("STOR cut.bin").starts_with("150 "));
    let data = random_bytes(50 << 20, 12);
    let writer = std::thread::spawn(move || d.write_all(&data));
    // Past the first 5 MiB block: the store shows uncommitted blocks.
    let started = Instant::now();
    while ctr.pending().is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no block was sent"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server.signal("TERM");
    let r = c.reply();
    assert!(r.starts_with("426 ") && r.contains("shutting down"), "{r}");
    let r = c.reply();
    assert!(r.starts_with("421 "), "{r}");
    let _ = writer.join().unwrap();
    let status = server.exit_within(Duration::from_secs(30));
    assert_eq!(status.code(), Some(0), "{status:?}\n{}", server.log());
    assert!(ctr.keys().is_empty(), "{:?}", ctr.keys());
}

/// A server child killed on drop, for the start-up tests that read its
/// output.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `portcullis serve` with `args` and `env`, its output piped.
fn spawn(args: &[&str], env: &[(&str, &str)]) -> Child {
    let mut cmd = std::process::Command::new(crate::harness::BIN);
    cmd.args(["serve"])
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Child(cmd.spawn().unwrap())
}

/// Wait (bounded) for the child to exit; its code and stderr.
fn exited(child: &mut Child) -> (Option<i32>, String) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        if let Some(status) = child.0.try_wait().unwrap() {
            return (status.code(), crate::harness::stderr_of(&mut child.0));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the server did not exit within 30 s");
}

/// The start-up check reaches each container: a missing one and a wrong
/// key stop the start, saying which; a reachable one is in the summary,
/// also for `serve --root az://...` with the account from the
/// `AZURE_STORAGE_*` variables and no config file.
#[test]
fn az_start_up_checks_the_container() {
    let Some(ctr) = Container::new("start-up") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    let missing = write(
        "missing.toml",
        config_text(&ctr, "", "no-such-container", KEY),
    );
    let mut child = spawn(&["--config", &missing], &[]);
    let (code, err) = exited(&mut child);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no such container"), "{err}");
    let wrong = "A".repeat(86) + "==";
    let refused = write("refused.toml", config_text(&ctr, "", &ctr.name, &wrong));
    let mut child = spawn(&["--config", &refused], &[]);
    let (code, err) = exited(&mut child);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("refused the credentials"), "{err}");

    let root = format!("az://{}/alice", ctr.name);
    let env = [
        ("AZURE_STORAGE_ACCOUNT_NAME", ACCOUNT),
        ("AZURE_STORAGE_ACCOUNT_KEY", KEY),
        ("AZURE_STORAGE_ENDPOINT", ctr.az.endpoint.as_str()),
        ("AZURE_STORAGE_ALLOW_HTTP", "true"),
    ];
    let mut child = spawn(&["--root", &root, "--listen", "127.0.0.1:0"], &env);
    use std::io::BufRead;
    let out = child.0.stdout.take().unwrap();
    let line = std::io::BufReader::new(out)
        .lines()
        .take(100)
        .map_while(Result::ok)
        .find(|l| l.starts_with("storage: "))
        .expect("no storage line");
    assert!(
        line.starts_with(&format!("storage: {root} at {}", ctr.az.endpoint))
            && line.contains("container reachable"),
        "{line}"
    );
}

/// An `[auth.http]` hook that answers with an `az://` root and a profile
/// (`storage_profile`, looked up in `[azure.profiles]` by the root's
/// scheme): the account's files land in that container; a profile that
/// is not configured is a malformed account, 421.
#[test]
fn az_a_hooks_account_with_an_az_root_and_profile() {
    use crate::accounts::{try_login, Hook};
    let Some(ctr) = Container::new("hook") else {
        return;
    };
    let other = format!("{}-other", ctr.name);
    ctr.create(&other);
    let root = format!("az://{other}/hooked");
    let hook = Hook::start(move |req| {
        let account = match req["user"].as_str() {
            Some("dana") => serde_json::json!({
                "root": root,
                "storage_profile": "other",
                "permissions": ["read", "write"],
            }),
            _ => serde_json::json!({ "root": "az://some-ctr/y", "storage_profile": "nowhere" }),
        };
        (200, account.to_string(), Duration::ZERO)
    });
    let server = server_with(
        &ctr,
        "",
        &format!(
            "\n[auth]\norder = [\"config\", \"http\"]\n[auth.http]\nurl = \"{}\"\n",
            hook.url()
        ),
    );
    let (r, mut c) = try_login(&server, "dana", "from-the-hook");
    assert!(r.starts_with("230 "), "{r} {}", server.log());
    assert!(stor(&mut c, "h.txt", b"stored for the hook's account\n").starts_with("226 "));
    let theirs = Container {
        az: ctr.az,
        name: other,
    };
    assert_eq!(theirs.keys(), ["hooked/h.txt"]);
    assert!(theirs.get("hooked/h.txt") == b"stored for the hook's account\n");
    let (r, _c) = try_login(&server, "mallory", "x");
    assert!(r.starts_with("421 "), "{r}");
    assert!(
        server.log().contains("no [azure.profiles.nowhere] section"),
        "{}",
        server.log()
    );
}
