//! Object-store roots against a real S3 server (moto's, on 127.0.0.1,
//! started per test): round trips through a client crate and through
//! curl, ftplib and lftp in passive and active mode, resumed downloads,
//! listings and directories over prefixes and markers, renames, the
//! refusals of what an object store cannot do, uploads reset mid-way (no
//! object, no incomplete multipart upload, as boto3 lists them), the drop
//! box, profiles and the start-up check of buckets.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{password_hash, random_bytes, read_all, Raw, Server, BIN, PASSWORD};

mod store;
mod tools;

use store::{Moto, KEY_ID, SECRET};

/// The bucket every server here uses.
const BUCKET: &str = "portcullis-test";
/// A second bucket, for the profile `other`.
const OTHER: &str = "portcullis-other";

/// A server whose accounts live in `BUCKET` on `moto`: alice (everything)
/// under `alice/`, `drop` (write, no overwrite) under `drop/`, carol on
/// the profile `other` (bucket `OTHER`), anonymous under `pub/`. Parts of
/// 5 MiB, so that a 12 MiB upload is a multipart upload of three.
fn server(moto: &Moto) -> Server {
    server_with(moto, "")
}

/// The same, with more lines at the end of the config file.
fn server_with(moto: &Moto, extra: &str) -> Server {
    moto.create_bucket(BUCKET);
    moto.create_bucket(OTHER);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("portcullis.toml");
    let text = config_text(&moto.endpoint, BUCKET) + extra;
    std::fs::write(&config, text).unwrap();
    Server::start_from_config(dir, &config)
}

fn config_text(endpoint: &str, bucket: &str) -> String {
    let hash = password_hash();
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
failed_login_delay = "50ms"
allow_root = true

[passive]
ports = "62000-64999"

[s3]
endpoint = "{endpoint}"
allow_http = true
access_key_id = "{KEY_ID}"
secret_access_key = "{SECRET}"
part_size = "5M"
request_timeout = "10s"

[s3.profiles.other]
region = "eu-west-1"

[anonymous]
enabled = true
root = "s3://{bucket}/pub"

[[users]]
name = "alice"
password_hash = "{hash}"
root = "s3://{bucket}/alice"
permissions = ["read", "write", "overwrite", "delete", "rename", "mkdir"]

[[users]]
name = "drop"
password_hash = "{hash}"
root = "s3://{bucket}/drop"
permissions = ["read", "write"]

[[users]]
name = "carol"
password_hash = "{hash}"
root = "s3://{OTHER}"
s3_profile = "other"
permissions = ["read", "write", "overwrite", "delete", "rename", "mkdir"]
"#
    )
}

/// Upload `data` as `name` over a passive connection; the final reply.
fn stor(c: &mut Raw, name: &str, data: &[u8]) -> String {
    let mut d = c.pasv();
    let r = c.cmd(&format!("STOR {name}"));
    assert!(r.starts_with("150 "), "{r}");
    d.write_all(data).unwrap();
    drop(d);
    c.reply()
}

/// Download `name` from `rest` over a passive connection.
fn retr(c: &mut Raw, name: &str, rest: u64) -> (Vec<u8>, String) {
    let d = c.pasv();
    if rest > 0 {
        let r = c.cmd(&format!("REST {rest}"));
        assert!(r.starts_with("350 "), "{r}");
    }
    let r = c.cmd(&format!("RETR {name}"));
    assert!(r.starts_with("150 "), "{r}");
    let got = read_all(d);
    (got, c.reply())
}

/// A listing command's output.
fn listing(c: &mut Raw, cmd: &str) -> String {
    let d = c.pasv();
    let r = c.cmd(cmd);
    assert!(r.starts_with("150 "), "{cmd}: {r}");
    let out = String::from_utf8(read_all(d)).unwrap();
    let end = c.reply();
    assert!(end.starts_with("226 "), "{cmd}: {end}");
    out
}

fn binary(c: &mut Raw) {
    assert!(c.cmd("TYPE I").starts_with("200 "));
}

#[test]
fn s3_round_trips_small_and_multipart_passive_and_active() {
    let Some(moto) = Moto::start() else { return };
    let server = server(&moto);
    let small = random_bytes(1000, 1);
    let big = random_bytes(12 * 1024 * 1024 + 123, 2);
    let mut c = Raw::login(server.addr, "alice");
    binary(&mut c);
    assert!(stor(&mut c, "small.bin", &small).starts_with("226 "));
    assert!(stor(&mut c, "big.bin", &big).starts_with("226 "));
    // In the store, under the account's prefix, byte for byte.
    assert_eq!(
        moto.keys(BUCKET),
        vec!["alice/big.bin".to_string(), "alice/small.bin".to_string()]
    );
    assert!(moto.get(BUCKET, "alice/big.bin") == big);
    assert!(moto.uploads(BUCKET).is_empty());
    let (got, end) = retr(&mut c, "small.bin", 0);
    assert!(got == small && end.starts_with("226 "), "{end}");
    let (got, end) = retr(&mut c, "big.bin", 0);
    assert!(got == big, "multipart object read back differs");
    assert!(end.starts_with("226 "), "{end}");
    // Replacing an object with a multipart upload.
    let bigger = random_bytes(11 * 1024 * 1024, 3);
    assert!(stor(&mut c, "small.bin", &bigger).starts_with("226 "));
    assert!(moto.get(BUCKET, "alice/small.bin") == bigger);

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
    assert!(moto.get(BUCKET, "alice/active.bin") == bigger);
    assert_eq!(ftp.size("active.bin").unwrap(), bigger.len());
    ftp.quit().unwrap();
    assert!(moto.uploads(BUCKET).is_empty());
}

#[test]
fn s3_rest_resumes_downloads_with_ranged_gets() {
    let Some(moto) = Moto::start() else { return };
    let server = server(&moto);
    moto.put(BUCKET, "alice/f.txt", "0123456789");
    let mut c = Raw::login(server.addr, "alice");
    binary(&mut c);
    let (got, end) = retr(&mut c, "f.txt", 4);
    assert_eq!(got, b"456789");
    assert!(end.starts_with("226 "), "{end}");
    // From the very end: nothing, and 226.
    let (got, end) = retr(&mut c, "f.txt", 10);
    assert!(got.is_empty() && end.starts_with("226 "), "{end}");
    // Past the end: 554 (RFC 3659 section 5.4).
    let _d = c.pasv();
    assert!(c.cmd("REST 11").starts_with("350 "));
    let r = c.cmd("RETR f.txt");
    assert!(r.starts_with("554 "), "{r}");
    // Missing objects and directories are 550 before any 150.
    let _d = c.pasv();
    assert!(c.cmd("RETR nope.txt").starts_with("550 "));
    assert!(c.cmd("MKD d").starts_with("257 "));
    let _d = c.pasv();
    let r = c.cmd("RETR d");
    assert!(r.starts_with("550 "), "{r}");
}

#[test]
fn s3_directories_listings_renames_and_deletes() {
    let Some(moto) = Moto::start() else { return };
    let server = server(&moto);
    let mut c = Raw::login(server.addr, "alice");
    binary(&mut c);
    // An empty directory exists through its marker.
    let r = c.cmd("MKD d");
    assert!(r.starts_with("257 \"/d\""), "{r}");
    assert_eq!(moto.keys(BUCKET), vec!["alice/d/".to_string()]);
    assert!(c.cmd("MKD d").starts_with("550 "));
    assert!(c.cmd("MKD no/such/parent").starts_with("550 "));
    assert!(stor(&mut c, "top.txt", b"top\n").starts_with("226 "));
    let long = listing(&mut c, "LIST");
    let lines: Vec<&str> = long.lines().collect();
    assert_eq!(lines.len(), 2, "{long}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with('d') && l.ends_with(" d")),
        "{long}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("-rw") && l.ends_with(" top.txt") && l.contains(" 4 ")),
        "{long}"
    );
    assert!(c.cmd("CWD d").starts_with("250 "));
    assert!(c.cmd("PWD").starts_with("257 \"/d\""));
    assert_eq!(listing(&mut c, "NLST"), "");
    assert!(stor(&mut c, "g.txt", b"hello").starts_with("226 "));
    assert_eq!(listing(&mut c, "NLST"), "g.txt\r\n");
    let mlsd = listing(&mut c, "MLSD");
    assert!(
        mlsd.lines()
            .any(|l| l.contains("type=file;size=5;") && l.ends_with(" g.txt")),
        "{mlsd}"
    );
    assert!(mlsd.lines().any(|l| l.contains("type=cdir")), "{mlsd}");
    let r = c.cmd("MLST g.txt");
    assert!(r.starts_with("250-") && r.contains("size=5;"), "{r}");
    assert!(c.cmd("SIZE g.txt").starts_with("213 5"));
    let r = c.cmd("MDTM g.txt");
    assert!(r.starts_with("213 2"), "{r}");
    assert!(c.cmd("CWD /").starts_with("250 "));
    // Not empty: neither removed nor renamed.
    assert!(c.cmd("RMD d").starts_with("550 "));
    assert!(c.cmd("RNFR d").starts_with("350 "));
    let r = c.cmd("RNTO e");
    assert!(r.starts_with("550 ") && r.contains("not empty"), "{r}");
    // Onto itself: nothing happens, and nothing is lost.
    assert!(c.cmd("RNFR top.txt").starts_with("350 "));
    let r = c.cmd("RNTO /top.txt");
    assert!(r.starts_with("250 "), "{r}");
    assert!(moto.get(BUCKET, "alice/top.txt") == b"top\n");
    // A file is renamed by copy and delete.
    assert!(c.cmd("RNFR d/g.txt").starts_with("350 "));
    assert!(c.cmd("RNTO top2.txt").starts_with("250 "));
    assert!(moto.get(BUCKET, "alice/top2.txt") == b"hello");
    assert!(!moto.keys(BUCKET).contains(&"alice/d/g.txt".to_string()));
    // Now empty: renamed (the marker moves), then removed.
    assert!(c.cmd("RNFR d").starts_with("350 "));
    assert!(c.cmd("RNTO e").starts_with("250 "));
    assert!(c.cmd("CWD d").starts_with("550 "));
    assert!(c.cmd("RMD e").starts_with("250 "));
    assert!(c.cmd("CWD e").starts_with("550 "));
    assert!(c.cmd("RMD e").starts_with("550 "));
    // A prefix without a marker is a directory too.
    moto.put(BUCKET, "alice/implicit/x.txt", "hi");
    assert!(c.cmd("CWD implicit").starts_with("250 "));
    assert_eq!(listing(&mut c, "NLST"), "x.txt\r\n");
    assert!(c.cmd("CDUP").starts_with("250 "));
    assert!(c.cmd("SIZE implicit").starts_with("550 "));
    assert!(c.cmd("DELE implicit").starts_with("550 "));
    assert!(c.cmd("DELE nope").starts_with("550 "));
    assert!(c.cmd("DELE implicit/x.txt").starts_with("250 "));
    assert!(c.cmd("DELE top.txt").starts_with("250 "));
    assert!(c.cmd("DELE top2.txt").starts_with("250 "));
    assert!(moto.keys(BUCKET).is_empty(), "{:?}", moto.keys(BUCKET));
    // Other accounts' prefixes are out of reach: `..` stops at the root.
    assert!(c.cmd("CWD ../drop").starts_with("550 "));
    assert!(c.cmd("PWD").starts_with("257 \"/\""));
}

#[test]
fn s3_listing_pages_through_many_keys() {
    let Some(moto) = Moto::start() else { return };
    let server = server(&moto);
    // 1,200 keys and 30 prefixes: two listing pages of 1,000.
    moto.py(
        "for i in range(1200): s3.put_object(Bucket=sys.argv[1], Key='alice/many/f%05d' % i, Body=b'x')\n\
         for i in range(30): s3.put_object(Bucket=sys.argv[1], Key='alice/many/d%02d/x' % i, Body=b'x')",
        &[BUCKET],
    );
    let mut c = Raw::login(server.addr, "alice");
    let names = listing(&mut c, "NLST many");
    assert_eq!(names.lines().count(), 1230);
    assert!(names.contains("many/f01199\r\n") && names.contains("many/d29\r\n"));
    let mlsd = listing(&mut c, "MLSD many");
    assert_eq!(mlsd.lines().filter(|l| l.contains("type=dir;")).count(), 30);
    assert_eq!(
        mlsd.lines().filter(|l| l.contains("type=file;")).count(),
        1200
    );
}

#[test]
fn s3_refuses_what_an_object_store_cannot_do() {
    let Some(moto) = Moto::start() else { return };
    let server = server(&moto);
    moto.put(BUCKET, "alice/f.txt", "0123456789");
    let mut c = Raw::login(server.addr, "alice");
    let feat = c.cmd("FEAT");
    assert!(!feat.contains("MFMT"), "{feat}");
    assert!(feat.contains("REST STREAM"), "{feat}");
    let help = c.cmd("HELP");
    assert!(!help.contains("APPE") && !help.contains("MFMT"), "{help}");
    assert!(help.contains("STOR"), "{help}");
    let _d = c.pasv();
    let r = c.cmd("APPE f.txt");
    assert!(r.starts_with("502 ") && r.contains("storage"), "{r}");
    let _d = c.pasv();
    assert!(c.cmd("REST 5").starts_with("350 "));
    let r = c.cmd("STOR f.txt");
    assert!(r.starts_with("502 ") && r.contains("REST"), "{r}");
    let r = c.cmd("MFMT 20240102030405 f.txt");
    assert!(r.starts_with("502 "), "{r}");
    let r = c.cmd("SITE CHMOD 600 f.txt");
    assert!(r.starts_with("502 "), "{r}");
    // Nothing was changed by any of them.
    assert!(moto.get(BUCKET, "alice/f.txt") == b"0123456789");
}

#[test]
fn s3_upload_reset_midway_leaves_no_object_and_no_multipart_upload() {
    let Some(moto) = Moto::start() else { return };
    let server = server(&moto);
    moto.put(BUCKET, "alice/keep.bin", "original");
    let mut c = Raw::login(server.addr, "alice");
    binary(&mut c);
    for name in ["keep.bin", "fresh.bin"] {
        let mut d = c.pasv();
        assert!(c.cmd(&format!("STOR {name}")).starts_with("150 "));
        // Two parts' worth: the first is sent, the second in flight.
        let chunk = random_bytes(1024 * 1024, 9);
        for _ in 0..11 {
            d.write_all(&chunk).unwrap();
        }
        // A reset (RST), not a close: SO_LINGER 0.
        socket2::SockRef::from(&d)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(d);
        let r = c.reply();
        assert!(r.starts_with("426 ") || r.starts_with("451 "), "{r}");
    }
    // The reply came once the multipart upload was aborted.
    assert!(
        moto.uploads(BUCKET).is_empty(),
        "{:?}",
        moto.uploads(BUCKET)
    );
    assert_eq!(moto.keys(BUCKET), vec!["alice/keep.bin".to_string()]);
    assert!(moto.get(BUCKET, "alice/keep.bin") == b"original");
    // The session goes on.
    assert!(stor(&mut c, "after.txt", b"ok").starts_with("226 "));
}

#[test]
fn s3_session_end_mid_upload_aborts_the_multipart_upload() {
    let Some(moto) = Moto::start() else { return };
    let server = server(&moto);
    let mut c = Raw::login(server.addr, "alice");
    binary(&mut c);
    let mut d = c.pasv();
    assert!(c.cmd("STOR gone.bin").starts_with("150 "));
    let chunk = random_bytes(1024 * 1024, 4);
    for _ in 0..7 {
        d.write_all(&chunk).unwrap();
    }
    // The client goes away: the transfer is cancelled, its upload
    // dropped, and the abort runs as a task of its own.
    drop(c);
    drop(d);
    let left = no_uploads_left(&moto);
    assert!(left.is_empty(), "{left:?}");
    assert!(moto.keys(BUCKET).is_empty());
}

/// Wait (bounded) until the bucket has no incomplete multipart upload:
/// the abort of a cancelled upload runs as a task of its own, after the
/// reply.
fn no_uploads_left(moto: &Moto) -> Vec<String> {
    let started = Instant::now();
    let mut left = moto.uploads(BUCKET);
    while !left.is_empty() && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(200));
        left = moto.uploads(BUCKET);
    }
    left
}

#[test]
fn s3_stalled_and_aborted_uploads_abort_their_multipart_uploads() {
    let Some(moto) = Moto::start() else { return };
    let server = server_with(&moto, "\n[limits]\ndata_timeout = \"1s\"\n");
    moto.put(BUCKET, "alice/keep.bin", "original");
    let mut c = Raw::login(server.addr, "alice");
    binary(&mut c);
    let chunk = random_bytes(1024 * 1024, 8);
    // Stalled: 6 MiB (one part sent), then nothing for data_timeout.
    let mut d = c.pasv();
    assert!(c.cmd("STOR keep.bin").starts_with("150 "));
    for _ in 0..6 {
        d.write_all(&chunk).unwrap();
    }
    let r = c.reply();
    assert!(r.starts_with("426 ") && r.contains("stalled"), "{r}");
    drop(d);
    assert!(no_uploads_left(&moto).is_empty());
    // ABOR during the upload.
    let mut d = c.pasv();
    assert!(c.cmd("STOR keep.bin").starts_with("150 "));
    for _ in 0..6 {
        d.write_all(&chunk).unwrap();
    }
    let r = c.cmd("ABOR");
    assert!(r.starts_with("426 "), "{r}");
    assert!(c.reply().starts_with("226 "));
    drop(d);
    assert!(no_uploads_left(&moto).is_empty());
    assert_eq!(moto.keys(BUCKET), vec!["alice/keep.bin".to_string()]);
    assert!(moto.get(BUCKET, "alice/keep.bin") == b"original");
}

#[test]
fn s3_a_store_that_goes_away_mid_transfer_gives_451_not_a_hang() {
    let Some(mut moto) = Moto::start() else {
        return;
    };
    let server = server(&moto);
    moto.put(BUCKET, "alice/f.txt", "0123456789");
    let mut c = Raw::login(server.addr, "alice");
    binary(&mut c);
    let mut d = c.pasv();
    assert!(c.cmd("STOR big.bin").starts_with("150 "));
    let chunk = random_bytes(1024 * 1024, 6);
    for _ in 0..3 {
        d.write_all(&chunk).unwrap();
    }
    moto.stop();
    // The next part cannot be sent: the upload fails at once (the server
    // stops reading, so the client's writes may fail too).
    let started = Instant::now();
    for _ in 0..20 {
        if d.write_all(&chunk).is_err() {
            break;
        }
    }
    drop(d);
    let r = c.reply();
    assert!(r.starts_with("451 ") || r.starts_with("426 "), "{r}");
    assert!(started.elapsed() < Duration::from_secs(30));
    // Commands on a store that is gone: 451, in bounded time.
    let r = c.cmd("SIZE f.txt");
    assert!(r.starts_with("451 ") && r.contains("unavailable"), "{r}");
    assert!(server.log().contains("object store error"));
}

#[test]
fn s3_drop_box_never_overwrites() {
    let Some(moto) = Moto::start() else { return };
    let server = server(&moto);
    let mut c = Raw::login(server.addr, "drop");
    binary(&mut c);
    assert!(stor(&mut c, "new.txt", b"first").starts_with("226 "));
    let _d = c.pasv();
    let r = c.cmd("STOR new.txt");
    assert!(r.starts_with("550 ") && r.contains("overwrite"), "{r}");
    // A multipart upload into the drop box.
    let big = random_bytes(6 * 1024 * 1024, 5);
    assert!(stor(&mut c, "big.bin", &big).starts_with("226 "));
    assert!(moto.get(BUCKET, "drop/new.txt") == b"first");
    assert!(moto.get(BUCKET, "drop/big.bin") == big);
    assert!(c.cmd("DELE new.txt").starts_with("550 "));
}

#[test]
fn s3_profiles_and_anonymous_roots() {
    let Some(moto) = Moto::start() else { return };
    let server = server(&moto);
    moto.put(BUCKET, "pub/readme.txt", "hello anonymous\n");
    let mut c = Raw::login(server.addr, "carol");
    binary(&mut c);
    assert!(stor(&mut c, "c.txt", b"carol").starts_with("226 "));
    assert!(moto.get(OTHER, "c.txt") == b"carol");
    assert!(c.cmd("MKD sub").starts_with("257 "));
    assert_eq!(
        moto.keys(OTHER),
        vec!["c.txt".to_string(), "sub/".to_string()]
    );
    let mut a = Raw::login(server.addr, "anonymous");
    binary(&mut a);
    let (got, end) = retr(&mut a, "readme.txt", 0);
    assert_eq!(got, b"hello anonymous\n");
    assert!(end.starts_with("226 "));
}

/// A server child killed on drop, for the start-up tests that read its
/// whole output.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(config: &str) -> (tempfile::TempDir, Child) {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("portcullis.toml");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (dir, Child(child))
}

/// Wait (bounded) for the child to exit; its code and stderr.
fn exited(child: &mut Child, limit: Duration) -> (Option<i32>, String) {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.0.try_wait().unwrap() {
            let mut err = String::new();
            child
                .0
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return (status.code(), err);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the server did not exit within {limit:?}");
}

/// The stdout lines up to and including the first that starts with `want`.
fn lines_until(child: &mut Child, want: &str) -> String {
    use std::io::BufRead;
    let out = child.0.stdout.take().unwrap();
    let mut all = String::new();
    for line in std::io::BufReader::new(out).lines().take(100) {
        let line = line.unwrap();
        all.push_str(&line);
        all.push('\n');
        if line.starts_with(want) {
            return all;
        }
    }
    panic!("no line starting with {want:?} in:\n{all}");
}

#[test]
fn s3_start_up_checks_each_bucket() {
    let Some(moto) = Moto::start() else { return };
    // A missing bucket stops the start, saying so.
    let (_dir, mut child) = serve(&config_text(&moto.endpoint, "no-such-bucket"));
    let (code, err) = exited(&mut child, Duration::from_secs(30));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no such bucket"), "{err}");
    // A reachable one is named in the summary.
    moto.create_bucket(BUCKET);
    moto.create_bucket(OTHER);
    let (_dir, mut child) = serve(&config_text(&moto.endpoint, BUCKET));
    let out = lines_until(&mut child, "storage: s3://portcullis-other");
    assert!(
        out.contains("storage: s3://portcullis-test/alice at http://127.0.0.1:")
            && out.contains(": bucket reachable"),
        "{out}"
    );
    // A store that does not answer is a warning, and the server serves.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let started = Instant::now();
    let (_dir, mut child) = serve(&config_text(&format!("http://127.0.0.1:{port}"), BUCKET));
    let out = lines_until(&mut child, "storage: s3://portcullis-other");
    assert!(out.contains("NOT reachable"), "{out}");
    assert!(out.contains("listening on 127.0.0.1:"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(25));
}

#[test]
fn s3_check_config_names_the_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        r#"
[s3]
endpoint = "http://127.0.0.1:9000"
access_key_id = "k"
part_size = "1M"
request_timeout = "0s"

[s3.profiles.p]
endpoint = "ftp://x"
allow_http = true

[[users]]
name = "a"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
root = "s3://Bad_Bucket"

[[users]]
name = "b"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
root = "s3://good-bucket/x"
s3_profile = "missing"

[[users]]
name = "c"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
root = "/tmp"
s3_profile = "p"
"#,
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "s3.endpoint: \"http://127.0.0.1:9000\" is plain HTTP",
        "s3.secret_access_key: required with access_key_id",
        "s3.part_size",
        "s3.request_timeout",
        "s3.profiles.p.endpoint",
        "users[0].root: \"Bad_Bucket\" is not a bucket name",
        "users[1].s3_profile: no [s3.profiles.missing] section",
        "users[2].s3_profile: only for an s3:// root",
    ] {
        assert!(err.contains(key), "{key} missing from:\n{err}");
    }
    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, "[s3]\nbucket = \"x\"\n").unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&unknown)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `bucket`"));
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[s3]\nendpoint = \"https://s3.example.net\"\naccess_key_id = \"k\"\nsecret_access_key = \"s\"\n\
         [anonymous]\nenabled = true\nroot = \"s3://pub-bucket\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .arg("check-config")
        .arg(&good)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn s3_serve_root_without_a_config_file() {
    use std::io::BufRead;
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket(BUCKET);
    moto.put(BUCKET, "pub/hello.txt", "hello from a bucket\n");
    let child = Command::new(BIN)
        .args([
            "serve",
            "--root",
            &format!("s3://{BUCKET}/pub"),
            "--listen",
            "127.0.0.1:0",
            "--passive-ports",
            "62000-64999",
        ])
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Child(child);
    let out = child.0.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(out).lines();
    let mut addr = None;
    let mut storage = None;
    for line in lines.by_ref().take(20).map_while(Result::ok) {
        if let Some(a) = line.split("listening on ").nth(1) {
            addr = Some(a.parse::<std::net::SocketAddr>().unwrap());
        }
        if line.starts_with("storage: ") {
            storage = Some(line);
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let storage = storage.expect("no storage line");
    assert!(
        storage.contains(&format!("s3://{BUCKET}/pub at {}", moto.endpoint))
            && storage.ends_with("bucket reachable"),
        "{storage}"
    );
    let mut c = Raw::login(addr.expect("no listening line"), "anonymous");
    binary(&mut c);
    let (got, end) = retr(&mut c, "hello.txt", 0);
    assert_eq!(got, b"hello from a bucket\n");
    assert!(end.starts_with("226 "), "{end}");
    // Read-only, as without a config file over a directory.
    let _d = c.pasv();
    assert!(c.cmd("STOR x.txt").starts_with("550 "));
}

/// The server's peak resident memory (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap();
    kib * 1024
}

#[test]
fn s3_a_100_mib_round_trip_streams_with_bounded_memory() {
    let Some(moto) = Moto::start() else { return };
    let server = server(&moto);
    let data = random_bytes(100 * 1024 * 1024, 11);
    let mut c = Raw::login(server.addr, "alice");
    binary(&mut c);
    // After the login (whose argon2 hash takes 19 MiB by itself).
    let before = peak_rss(server.pid());
    let end = stor(&mut c, "big.bin", &data);
    assert!(end.starts_with("226 "), "{end}");
    let r = c.cmd("SIZE big.bin");
    assert_eq!(r, format!("213 {}", data.len()));
    let (got, end) = retr(&mut c, "big.bin", 0);
    assert!(end.starts_with("226 "), "{end}");
    assert!(got == data, "100 MiB read back differs");
    assert!(moto.uploads(BUCKET).is_empty());
    // Nothing near the object's size was held: parts of 5 MiB, at most
    // three at once (15 MiB), and what the allocator keeps of the parts
    // freed (26 MiB in all when measured).
    let grown = peak_rss(server.pid()).saturating_sub(before);
    eprintln!(
        "server peak RSS grew by {} KiB for a 100 MiB round trip",
        grown / 1024
    );
    assert!(grown < 50 * 1024 * 1024, "peak RSS grew by {grown} bytes");
}
