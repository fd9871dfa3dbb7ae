//! Uploads that do not finish (reset, stalled, ABORted, the client or the
//! store gone, cut by the drain): no object, no incomplete multipart
//! upload, an existing object untouched, and a reply in bounded time; and
//! a 100 MiB round trip in bounded memory.

use std::io::Write;
use std::time::{Duration, Instant};

use super::{binary, retr, server, server_configured, server_with, stor, Kind, Moto, BUCKET};
use crate::harness::{password_hash, random_bytes, Raw, Server};

#[test]
fn s3_upload_reset_midway_leaves_no_object_and_no_multipart_upload() {
    reset_midway(Kind::Moto);
}

#[test]
fn s3sfs_upload_reset_midway_leaves_no_object_and_no_multipart_upload() {
    reset_midway(Kind::S3sFs);
}

fn reset_midway(kind: Kind) {
    let Some(moto) = Moto::of(kind) else { return };
    let server = server(&moto);
    moto.put(BUCKET, "alice/keep.bin", "original");
    let mut c = reset_two_uploads(&server);
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

/// alice's session after an upload onto `keep.bin` and one onto
/// `fresh.bin`, each reset (RST) after 11 MiB, two parts' (blocks')
/// worth, the first sent, the second in flight: each answered 426 or
/// 451 (every provider's reset test; the caller checks the store).
pub(crate) fn reset_two_uploads(server: &Server) -> Raw {
    let mut c = Raw::login(server.addr, "alice");
    binary(&mut c);
    for name in ["keep.bin", "fresh.bin"] {
        let mut d = c.pasv();
        assert!(c.cmd(&format!("STOR {name}")).starts_with("150 "));
        let chunk = random_bytes(1024 * 1024, 9);
        for _ in 0..11 {
            d.write_all(&chunk).unwrap();
        }
        crate::harness::reset(d);
        let r = c.reply();
        assert!(r.starts_with("426 ") || r.starts_with("451 "), "{r}");
    }
    c
}

#[test]
fn s3_session_end_mid_upload_aborts_the_multipart_upload() {
    session_end_mid_upload(Kind::Moto);
}

#[test]
fn s3sfs_session_end_mid_upload_aborts_the_multipart_upload() {
    session_end_mid_upload(Kind::S3sFs);
}

fn session_end_mid_upload(kind: Kind) {
    let Some(moto) = Moto::of(kind) else { return };
    let server = server(&moto);
    end_session_mid_upload(&server, || {});
    let left = no_uploads_left(&moto);
    assert!(left.is_empty(), "{left:?}");
    assert!(moto.keys(BUCKET).is_empty());
}

/// alice's session ends (control and data connections closed) 7 MiB
/// into an upload of `gone.bin`, once `sent` has returned (it may wait
/// for the store to show the first part or block): the transfer is
/// cancelled, its upload dropped, and the abort runs as a task of its
/// own (every provider's test; the caller checks the store).
pub(crate) fn end_session_mid_upload(server: &Server, sent: impl FnOnce()) {
    let mut c = Raw::login(server.addr, "alice");
    binary(&mut c);
    let mut d = c.pasv();
    assert!(c.cmd("STOR gone.bin").starts_with("150 "));
    let chunk = random_bytes(1024 * 1024, 4);
    for _ in 0..7 {
        d.write_all(&chunk).unwrap();
    }
    sent();
    drop(c);
    drop(d);
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
    stalled_and_aborted(Kind::Moto);
}

#[test]
fn s3sfs_stalled_and_aborted_uploads_abort_their_multipart_uploads() {
    stalled_and_aborted(Kind::S3sFs);
}

fn stalled_and_aborted(kind: Kind) {
    let Some(moto) = Moto::of(kind) else { return };
    let server = server_with(&moto, STALL);
    moto.put(BUCKET, "alice/keep.bin", "original");
    stall_and_abort_uploads(&server, || assert!(no_uploads_left(&moto).is_empty()));
    assert_eq!(moto.keys(BUCKET), vec!["alice/keep.bin".to_string()]);
    assert!(moto.get(BUCKET, "alice/keep.bin") == b"original");
}

/// The config lines of [`stall_and_abort_uploads`]'s server.
pub(crate) const STALL: &str = "\n[limits]\ndata_timeout = \"1s\"\n";

/// Two uploads onto alice's `keep.bin` (which the caller put) given up
/// 6 MiB in, one part (block) sent: one stalled for `data_timeout` (1 s,
/// [`STALL`]), 426; one ABORted, 426 then 226. `after_each` checks the
/// store after each (every provider's test; the caller checks that
/// `keep.bin` is as it was).
pub(crate) fn stall_and_abort_uploads(server: &Server, after_each: impl Fn()) {
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
    after_each();
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
    after_each();
}

/// SIGTERM with a 1 s grace during a 50 MiB upload throttled to 4 MiB/s
/// (`upload_rate`), once its multipart upload exists: the upload is cut
/// (426, then 421), and the process aborts the multipart upload before it
/// exits, so the store's own listing shows neither an incomplete upload
/// nor an object right after the exit. The transfer's log line says who
/// cut it.
#[test]
fn s3_an_upload_cut_by_the_shutdown_grace_leaves_no_multipart_upload() {
    let Some(moto) = Moto::start() else { return };
    let slow = format!(
        r#"
[[users]]
name = "slow"
password_hash = "{}"
root = "s3://{BUCKET}/slow"
permissions = ["read", "write", "overwrite"]
upload_rate = "4M"
"#,
        password_hash()
    );
    let mut server = server_configured(&moto, "shutdown_grace = \"1s\"", &slow);
    let mut c = Raw::login(server.addr, "slow");
    binary(&mut c);
    let mut d = c.pasv();
    assert!(c.cmd("STOR cut.bin").starts_with("150 "));
    let data = random_bytes(50 << 20, 12);
    let writer = std::thread::spawn(move || d.write_all(&data));
    // Past the first 5 MiB part: the multipart upload exists.
    let started = Instant::now();
    while moto.uploads(BUCKET).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no multipart upload began"
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
    // Asked once, after the exit: nothing waits for a task still running.
    let left = moto.uploads(BUCKET);
    assert!(left.is_empty(), "incomplete uploads left: {left:?}");
    assert!(moto.keys(BUCKET).is_empty(), "{:?}", moto.keys(BUCKET));
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("transfer") && l.contains("cut.bin"))
        .unwrap_or_else(|| panic!("no transfer line:\n{log}"));
    assert!(line.contains("cut by the shutdown grace"), "{line}");
    assert!(!line.contains("aborted by the client"), "{line}");
}

#[test]
fn s3_a_store_that_goes_away_mid_transfer_gives_451_not_a_hang() {
    let Some(mut moto) = Moto::start() else {
        return;
    };
    let server = server(&moto);
    moto.put(BUCKET, "alice/f.txt", "0123456789");
    store_goes_away(&server, || moto.stop());
}

/// alice's upload, 3 MiB in, when `stop` stops the store (every
/// provider's test; the caller put alice's `f.txt`): the next part
/// (block) cannot be sent, so the upload fails at once, 451 or 426 (the
/// server stops reading, so the client's writes may fail too); SIZE on
/// the store that is gone is 451, in bounded time.
pub(crate) fn store_goes_away(server: &Server, stop: impl FnOnce()) {
    let mut c = Raw::login(server.addr, "alice");
    binary(&mut c);
    let mut d = c.pasv();
    assert!(c.cmd("STOR big.bin").starts_with("150 "));
    let chunk = random_bytes(1024 * 1024, 6);
    for _ in 0..3 {
        d.write_all(&chunk).unwrap();
    }
    stop();
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
    let r = c.cmd("SIZE f.txt");
    assert!(r.starts_with("451 ") && r.contains("unavailable"), "{r}");
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(server.log().contains("object store error"));
}

/// The server's peak resident memory (VmHWM), in bytes.
pub(crate) fn peak_rss(pid: u32) -> u64 {
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
