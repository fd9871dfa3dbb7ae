//! Hooks on object-store roots: `upload` fires once the object exists
//! under its final key (a single PUT, and a multipart upload or block
//! list after its completion), with `object` naming it; an upload cut
//! short (reset mid-way) aborts its upload and fires `upload_failed`.
//! Over moto (`s3://`) and Azurite (`az://`).

use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

use super::{check_signature, hook_section, next, receiver};
use crate::harness::{random_bytes, stor, Raw, Server};

/// The hook's section for a receiver started here, and its events.
fn hook() -> (String, std::sync::mpsc::Receiver<super::Got>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let rx = receiver(listener, Vec::new());
    let section = hook_section("store", &url, "\"upload\", \"upload_failed\"", "");
    (format!("\n{section}"), rx)
}

/// alice's uploads on `server`, whose root is `root` (`s3://.../alice`),
/// parts or blocks of 5 MiB: a small file, then 6 MiB (two parts),
/// each event checked against the store (`keys`: what it holds under
/// alice/, `pending`: uploads begun and not completed); then an upload
/// reset after 6 MiB.
fn uploads_fire_after_the_commit(
    server: &Server,
    rx: &std::sync::mpsc::Receiver<super::Got>,
    root: &str,
    keys: &dyn Fn() -> Vec<String>,
    pending: &dyn Fn() -> Vec<String>,
) {
    let mut c = Raw::login(server.addr, "alice");
    crate::s3::binary(&mut c);
    for (name, size) in [("small.txt", 5), ("parts.bin", (6 << 20) + 1)] {
        assert!(stor(&mut c, name, &random_bytes(size, 3)).starts_with("226"));
        let g = next(rx);
        check_signature(&g);
        assert_eq!(g.json["event"], "upload", "{}", g.body);
        assert_eq!(g.json["path"], format!("/{name}"));
        assert_eq!(g.json["size"], size as u64);
        assert_eq!(g.json["object"], format!("{root}/{name}"), "{}", g.body);
        // Committed before the event: the object is there, nothing pending.
        assert!(keys().contains(&format!("alice/{name}")), "{:?}", keys());
    }
    assert!(pending().is_empty(), "{:?}", pending());
    // Cut: a reset (RST) after 6 MiB, one part sent.
    let mut d = c.pasv();
    assert!(c.cmd("STOR cut.bin").starts_with("150"));
    let chunk = random_bytes(1 << 20, 5);
    for _ in 0..6 {
        d.write_all(&chunk).unwrap();
    }
    crate::harness::reset(d);
    let r = c.reply();
    assert!(r.starts_with("426") || r.starts_with("451"), "{r}");
    let g = next(rx);
    check_signature(&g);
    assert_eq!(g.json["event"], "upload_failed", "{}", g.body);
    assert_eq!(g.json["path"], "/cut.bin");
    assert_eq!(g.json["object"], format!("{root}/cut.bin"));
    assert_ne!(g.json["outcome"], "ok");
    assert!(
        !keys().contains(&"alice/cut.bin".to_owned()),
        "{:?}",
        keys()
    );
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    // The session goes on.
    assert!(stor(&mut c, "after.txt", b"ok").starts_with("226"));
    assert_eq!(next(rx).json["path"], "/after.txt");
}

#[test]
fn s3_upload_events_follow_the_multipart_completion() {
    let Some(moto) = crate::s3::store::Moto::start() else {
        return;
    };
    let (section, rx) = hook();
    let server = crate::s3::server_configured(&moto, "", &section);
    let bucket = crate::s3::BUCKET;
    uploads_fire_after_the_commit(
        &server,
        &rx,
        &format!("s3://{bucket}/alice"),
        &|| moto.keys(bucket),
        &|| moto.uploads(bucket),
    );
}

#[test]
fn az_upload_events_follow_the_block_list_commit() {
    let Some(ctr) = crate::azure::store::Container::new("events") else {
        return;
    };
    let (section, rx) = hook();
    let server = crate::azure::server_with(&ctr, "", &section);
    uploads_fire_after_the_commit(
        &server,
        &rx,
        &format!("az://{}/alice", ctr.name),
        &|| ctr.keys(),
        &|| ctr.pending(),
    );
}
