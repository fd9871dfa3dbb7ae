//! `az://` uploads that do not finish and downloads that cannot: the
//! session gone (QUIT and a reset too), a stall, ABOR and the store
//! itself gone mid-upload leave no committed blob and an existing blob
//! as it was (the container's own listing shows it); a blob replaced
//! mid-download ends the download with 451. The client side of each is the S3 test's
//! (`s3/aborts.rs`, `s3.rs`).

use std::io::Write;
use std::time::{Duration, Instant};

use super::store::{Azurite, Container};
use super::{server, server_with};
use crate::harness::{password_hash, random_bytes, Raw};
use crate::s3::aborts::{end_session_mid_upload, stall_and_abort_uploads, store_goes_away, STALL};
use crate::s3::binary;

/// Wait (bounded) until `ok` holds.
fn until(what: &str, ok: impl Fn() -> bool) {
    let started = Instant::now();
    while !ok() {
        assert!(started.elapsed() < Duration::from_secs(30), "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The client goes away 7 MiB into an upload, a 5 MiB block staged (the
/// store shows it, uncommitted): the transfer ends, in the log, and no
/// blob is committed; nor after QUIT and a reset data connection.
#[test]
fn az_session_end_mid_upload_commits_no_blob() {
    let Some(ctr) = Container::new("session-end") else {
        return;
    };
    let server = server(&ctr, "");
    end_session_mid_upload(&server, || {
        until("no block was staged", || !ctr.pending().is_empty())
    });
    until("no transfer line for gone.bin", || {
        server
            .log()
            .lines()
            .any(|l| l.contains("transfer") && l.contains("gone.bin"))
    });
    assert!(ctr.keys().is_empty(), "{:?}", ctr.keys());
    assert_eq!(ctr.pending(), ["alice/gone.bin"]);

    // QUIT during an upload is answered at once and the transfer runs
    // on (an upload that then ends well is committed: closing.rs); one
    // whose data connection is then reset commits nothing.
    let mut c = Raw::login(server.addr, "alice");
    binary(&mut c);
    let mut d = c.pasv();
    assert!(c.cmd("STOR quit.bin").starts_with("150 "));
    d.write_all(&random_bytes(7 << 20, 5)).unwrap();
    until("no block of quit.bin was staged", || {
        ctr.pending().contains(&"alice/quit.bin".to_owned())
    });
    let r = c.cmd("QUIT");
    assert!(r.starts_with("221 "), "{r}");
    crate::harness::reset(d);
    let r = c.reply();
    assert!(r.starts_with("426 ") || r.starts_with("451 "), "{r}");
    assert!(c.closed());
    assert!(ctr.keys().is_empty(), "{:?}", ctr.keys());
}

/// A stalled upload and an ABORted one onto an existing blob: after
/// each, the blob is as it was and nothing else is committed.
#[test]
fn az_stalled_and_aborted_uploads_commit_no_blob() {
    let Some(ctr) = Container::new("stalled") else {
        return;
    };
    let server = server_with(&ctr, "", STALL);
    ctr.put("alice/keep.bin", b"original");
    stall_and_abort_uploads(&server, || {
        assert_eq!(ctr.keys(), ["alice/keep.bin"]);
        assert!(ctr.get("alice/keep.bin") == b"original");
    });
}

/// Azurite stopped mid-upload (an Azurite of this test's own): 451 or
/// 426, then 451 for the next command, in bounded time.
#[test]
fn az_a_store_that_goes_away_mid_transfer_gives_451_not_a_hang() {
    let Some(az) = Azurite::own() else {
        return;
    };
    let ctr = Container::on(az, "gone-away");
    let server = server(&ctr, "");
    ctr.put("alice/f.txt", b"0123456789");
    store_goes_away(&server, || az.stop());
}

/// A blob replaced while `two` (two ranged GETs at once) downloads it:
/// the later GETs' `If-Match` fails, 451 after a prefix of the old bytes.
#[test]
fn az_a_blob_replaced_mid_download_ends_it_with_451() {
    let Some(ctr) = Container::new("replaced") else {
        return;
    };
    let extra = format!(
        r#"
[azure.profiles.two]
download_streams = 2

[[users]]
name = "two"
password_hash = "{}"
root = "az://{}/alice"
storage_profile = "two"
permissions = ["read"]
"#,
        password_hash(),
        ctr.name
    );
    let server = server_with(&ctr, "", &extra);
    let old = random_bytes(32 << 20, 50);
    ctr.put("alice/moving.bin", &old);
    crate::s3::replaced_mid_download(&server, "two", &old, || {
        ctr.put("alice/moving.bin", b"replaced")
    });
    assert!(ctr.get("alice/moving.bin") == b"replaced");
}
