//! The drop box on an object store (`drop`: read, write and rename, no
//! overwrite): nothing it does replaces or removes an object, RNTO onto
//! an existing name included; its renames onto free names are
//! conditional copies that leave no incomplete upload; and with
//! `overwrite` (alice) RNTO still replaces.

use super::{binary, stor, Kind, Moto, BUCKET};
use crate::harness::{random_bytes, Raw, Server};

/// The drop box's session after what it may not do with `victim.txt`
/// (which the caller put): STOR onto it and RNTO onto it 550 for the
/// overwrite, DELE 550; `mine.txt` stored (every provider's drop-box
/// test; the caller checks the store).
pub(crate) fn drop_box_refusals(server: &Server) -> Raw {
    let mut c = Raw::login(server.addr, "drop");
    binary(&mut c);
    let _d = c.pasv();
    let r = c.cmd("STOR victim.txt");
    assert!(r.starts_with("550 ") && r.contains("overwrite"), "{r}");
    assert!(c.cmd("DELE victim.txt").starts_with("550 "));
    assert!(stor(&mut c, "mine.txt", b"mine").starts_with("226 "));
    assert!(c.cmd("RNFR mine.txt").starts_with("350 "));
    let r = c.cmd("RNTO victim.txt");
    assert!(r.starts_with("550 ") && r.contains("overwrite"), "{r}");
    c
}

#[test]
fn s3_drop_box_renames_replace_nothing() {
    drop_box_renames(Kind::Moto);
}

#[test]
fn s3sfs_drop_box_renames_replace_nothing() {
    drop_box_renames(Kind::S3sFs);
}

fn drop_box_renames(kind: Kind) {
    let Some(moto) = Moto::of(kind) else { return };
    let server = super::server(&moto);
    moto.put(BUCKET, "drop/victim.txt", "original");
    let mut c = drop_box_refusals(&server);
    assert!(moto.get(BUCKET, "drop/victim.txt") == b"original");
    assert!(moto.get(BUCKET, "drop/mine.txt") == b"mine");
    // Onto free names: a conditional copy (a multipart upload of one
    // copied part; an empty object is a conditional PUT), then a delete.
    let data = random_bytes(300_000, 28);
    assert!(stor(&mut c, "big.bin", &data).starts_with("226 "));
    assert!(stor(&mut c, "empty.txt", b"").starts_with("226 "));
    for (from, to) in [("big.bin", "moved.bin"), ("empty.txt", "still-empty.txt")] {
        assert!(c.cmd(&format!("RNFR {from}")).starts_with("350 "));
        let r = c.cmd(&format!("RNTO {to}"));
        assert!(r.starts_with("250 "), "{from} -> {to}: {r}");
    }
    assert!(moto.get(BUCKET, "drop/moved.bin") == data);
    assert!(moto.get(BUCKET, "drop/still-empty.txt").is_empty());
    assert_eq!(
        moto.keys(BUCKET),
        [
            "drop/mine.txt",
            "drop/moved.bin",
            "drop/still-empty.txt",
            "drop/victim.txt"
        ]
    );
    assert!(
        moto.uploads(BUCKET).is_empty(),
        "{:?}",
        moto.uploads(BUCKET)
    );

    // With `overwrite`, RNTO onto an existing name replaces it.
    moto.put(BUCKET, "alice/victim.txt", "original");
    moto.put(BUCKET, "alice/mine.txt", "mine");
    let mut a = Raw::login(server.addr, "alice");
    assert!(a.cmd("RNFR mine.txt").starts_with("350 "));
    assert!(a.cmd("RNTO victim.txt").starts_with("250 "));
    assert!(moto.get(BUCKET, "alice/victim.txt") == b"mine");
}
