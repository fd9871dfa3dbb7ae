//! Quotas (`quota_bytes`, `quota_files`): exactly at the limit accepted,
//! one byte over refused with 552 and nothing left; parallel uploads that
//! together would pass it; files; APPE and overwrite; DELE and RNTO giving
//! space back; ALLO, AVBL, SITE QUOTA, STAT; the first scan of a root that
//! already holds files; a reload lowering a quota; and the same on an
//! object-store root (s3s-fs), checked with the store's own listing.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use crate::harness::{random_bytes, Raw, Server, Setup};
use crate::s3::store::{Kind, Moto};
use crate::s3::BUCKET;

const EXCEEDED: &str = "552 Requested file action aborted. Exceeded storage allocation.";

fn with_quota(alice_extra: &'static str) -> Server {
    Server::start_with(Setup {
        alice_extra,
        ..Setup::default()
    })
}

/// Upload `data` as `name` with `verb` (STOR, APPE); the final reply, or
/// the refusal that came instead of the 150. The data connection may be
/// cut by the server mid-way (a 552): write errors are not the test's.
pub(crate) fn put(c: &mut Raw, verb: &str, name: &str, data: &[u8]) -> String {
    assert!(c.cmd("TYPE I").starts_with("200 "));
    let mut d = c.pasv();
    let r = c.cmd(&format!("{verb} {name}"));
    if !r.starts_with("150 ") {
        return r;
    }
    let _ = d.write_all(data);
    let _ = d.shutdown(std::net::Shutdown::Write);
    drop::<TcpStream>(d);
    c.reply()
}

fn avbl(c: &mut Raw) -> u64 {
    let r = c.cmd("AVBL");
    assert!(r.starts_with("213 "), "{r}");
    r[4..].trim().parse().unwrap()
}

/// What the root holds: (files, bytes), upload temporaries included.
fn on_disk(root: &Path) -> (u64, u64, Vec<String>) {
    let (mut files, mut bytes, mut names) = (0, 0, Vec::new());
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let m = e.metadata().unwrap();
            if m.is_dir() {
                pending.push(e.path());
            } else {
                files += 1;
                bytes += m.len();
                names.push(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    (files, bytes, names)
}

#[test]
fn exactly_at_the_limit_is_stored_and_one_byte_over_is_552_with_nothing_left() {
    // 1 MiB: the large uploads go through the splice pump, the small ones
    // through the copy path.
    let server = with_quota("quota_bytes = \"1M\"");
    let mut c = Raw::login(server.addr, "alice");
    let limit = 1024 * 1024;
    let data = random_bytes(limit, 1);
    assert!(put(&mut c, "STOR", "full.bin", &data).starts_with("226 "));
    assert_eq!(std::fs::read(server.alice.join("full.bin")).unwrap(), data);
    assert_eq!(avbl(&mut c), 0);
    // One byte more: refused, nothing of it kept.
    assert_eq!(put(&mut c, "STOR", "one.bin", b"x"), EXCEEDED);
    assert!(!server.alice.join("one.bin").exists());
    // An empty file still fits.
    assert!(put(&mut c, "STOR", "empty.bin", b"").starts_with("226 "));
    assert!(c.cmd("DELE full.bin").starts_with("250 "));
    assert!(c.cmd("DELE empty.bin").starts_with("250 "));
    assert_eq!(avbl(&mut c), limit as u64);
    // Over by one byte through the pump: 552, nothing left.
    let over = random_bytes(limit + 1, 2);
    assert_eq!(put(&mut c, "STOR", "over.bin", &over), EXCEEDED);
    let (files, bytes, names) = on_disk(&server.alice);
    assert_eq!((files, bytes), (0, 0), "left behind: {names:?}");
    assert_eq!(
        avbl(&mut c),
        limit as u64,
        "the refused upload gave its lease back"
    );
    // And the exact size again, in one go.
    assert!(put(&mut c, "STOR", "again.bin", &data).starts_with("226 "));
    assert_eq!(on_disk(&server.alice).1, limit as u64);
}

#[test]
fn twenty_parallel_uploads_never_pass_the_quota_together() {
    let server = with_quota("quota_bytes = 1000000");
    let addr = server.addr;
    let each = 150_000;
    let threads: Vec<_> = (0..20)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = Raw::login(addr, "alice");
                let r = put(&mut c, "STOR", &format!("p{i}.bin"), &random_bytes(each, i));
                (i, r)
            })
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
    let (files, bytes, names) = on_disk(&server.alice);
    assert!(bytes <= 1_000_000, "{bytes} bytes stored: {names:?}");
    assert_eq!(files, stored, "only the 226s are kept: {names:?}");
    assert!((1..=6).contains(&stored), "{stored}");
    let mut c = Raw::login(addr, "alice");
    assert_eq!(avbl(&mut c), 1_000_000 - bytes);
}

#[test]
fn quota_files_counts_new_files_not_overwrites_nor_directories() {
    let server = with_quota("quota_files = 2");
    let mut c = Raw::login(server.addr, "alice");
    assert!(c.cmd("MKD d").starts_with("257 "));
    assert!(put(&mut c, "STOR", "a", b"1").starts_with("226 "));
    assert!(put(&mut c, "STOR", "d/b", b"2").starts_with("226 "));
    // A third file is refused before anything is sent.
    assert_eq!(put(&mut c, "STOR", "c", b"3"), EXCEEDED);
    assert!(!server.alice.join("c").exists());
    // Replacing one is not a new file.
    assert!(put(&mut c, "STOR", "a", b"11").starts_with("226 "));
    assert!(put(&mut c, "APPE", "a", b"1").starts_with("226 "));
    assert!(c.cmd("DELE a").starts_with("250 "));
    assert!(put(&mut c, "STOR", "c", b"3").starts_with("226 "));
    // APPE to a new name is a new file too.
    assert_eq!(put(&mut c, "APPE", "e", b"4"), EXCEEDED);
    assert!(!server.alice.join("e").exists());
    let q = c.cmd("SITE QUOTA");
    assert!(q.contains(" Files: 2 used, 0 in transfer, limit 2"), "{q}");
    assert!(
        q.contains(" Bytes: 2 used, 0 in transfer, limit unlimited"),
        "{q}"
    );
}

#[test]
fn appe_and_overwrite_are_counted_and_dele_and_rnto_give_space_back() {
    let server = with_quota("quota_bytes = 1000");
    let mut c = Raw::login(server.addr, "alice");
    assert!(put(&mut c, "STOR", "a", &[b'a'; 600]).starts_with("226 "));
    // An overwrite holds the old and the new bytes until its commit.
    assert_eq!(put(&mut c, "STOR", "a", &[b'b'; 500]), EXCEEDED);
    assert_eq!(
        std::fs::read(server.alice.join("a")).unwrap(),
        [b'a'; 600],
        "the old file stays"
    );
    assert!(put(&mut c, "STOR", "a", &[b'c'; 300]).starts_with("226 "));
    assert_eq!(avbl(&mut c), 700);
    // APPE up to the limit, then one byte more is refused and not written.
    assert!(put(&mut c, "APPE", "a", &[b'd'; 700]).starts_with("226 "));
    assert_eq!(avbl(&mut c), 0);
    assert_eq!(put(&mut c, "APPE", "a", b"e"), EXCEEDED);
    assert_eq!(
        std::fs::metadata(server.alice.join("a")).unwrap().len(),
        1000
    );
    // REST + STOR truncates at the offset: the rest is given back.
    assert!(c.cmd("REST 400").starts_with("350 "));
    assert!(put(&mut c, "STOR", "a", &[b'f'; 100]).starts_with("226 "));
    assert_eq!(
        std::fs::metadata(server.alice.join("a")).unwrap().len(),
        500
    );
    assert_eq!(avbl(&mut c), 500);
    // A rename over a file gives the replaced file's bytes back.
    assert!(put(&mut c, "STOR", "b", &[b'g'; 200]).starts_with("226 "));
    assert_eq!(avbl(&mut c), 300);
    assert!(c.cmd("RNFR b").starts_with("350 "));
    assert!(c.cmd("RNTO a").starts_with("250 "));
    assert_eq!(avbl(&mut c), 800);
    // A rename onto itself leaves the file, and its bytes counted (they
    // were once given back, again at every such rename).
    for _ in 0..3 {
        assert!(c.cmd("RNFR a").starts_with("350 "));
        assert!(c.cmd("RNTO ./a").starts_with("250 "));
    }
    assert_eq!(avbl(&mut c), 800);
    assert_eq!(
        std::fs::metadata(server.alice.join("a")).unwrap().len(),
        200
    );
    assert!(c.cmd("DELE a").starts_with("250 "));
    assert_eq!(avbl(&mut c), 1000);
}

/// Without `server.atomic_uploads` a STOR over a file truncates it and
/// writes in place: a refused overwrite leaves what it wrote, and that
/// is counted (it once kept the old size, so the space could be taken
/// again and again past the quota).
#[test]
fn a_refused_overwrite_in_place_counts_what_it_left() {
    let server = Server::start_with(Setup {
        alice_extra: "quota_bytes = 1000",
        extra_server: "atomic_uploads = false",
        ..Setup::default()
    });
    let mut c = Raw::login(server.addr, "alice");
    assert!(put(&mut c, "STOR", "a", &[b'a'; 100]).starts_with("226 "));
    assert_eq!(put(&mut c, "STOR", "a", &[b'b'; 1500]), EXCEEDED);
    let on = on_disk(&server.alice).1;
    assert!(on <= 1000, "{on}");
    assert_eq!(avbl(&mut c), 1000 - on, "what the refused upload left");
    // The space left is all there is: the root never passes the quota.
    let _ = put(&mut c, "STOR", "b", &[b'c'; 1000]);
    let on = on_disk(&server.alice).1;
    assert!(on <= 1000, "{on} bytes stored under a quota of 1000");
}

#[test]
fn allo_avbl_site_quota_and_stat_answer_from_the_quota() {
    let server = with_quota("quota_bytes = 1000\nquota_files = 10");
    let mut c = Raw::login(server.addr, "alice");
    assert!(put(&mut c, "STOR", "a", &[0; 400]).starts_with("226 "));
    assert!(c.cmd("ALLO 600").starts_with("202 "));
    assert!(c.cmd("ALLO 600 R 10").starts_with("202 "));
    assert_eq!(c.cmd("ALLO 601"), EXCEEDED);
    assert!(c.cmd("ALLO").starts_with("202 "));
    assert!(c.cmd("ALLO lots").starts_with("501 "));
    assert_eq!(c.cmd("AVBL"), "213 600");
    assert_eq!(c.cmd("AVBL /"), "213 600");
    assert!(
        c.cmd("AVBL a").starts_with("550 "),
        "a file is not a directory"
    );
    assert_eq!(
        c.cmd("SITE QUOTA"),
        "200-Quota for alice:\n \
         Bytes: 400 used, 0 in transfer, limit 1000\n \
         Files: 1 used, 0 in transfer, limit 10\n \
         Bytes left: 600\n\
         200 End of quota"
    );
    let stat = c.cmd("STAT");
    assert!(
        stat.contains("\n Quota Bytes: 400 used, 0 in transfer, limit 1000\n"),
        "{stat}"
    );
    assert!(stat.contains("\n Quota Bytes left: 600\n"), "{stat}");
    assert!(c.cmd("FEAT").contains("\n AVBL\n"));
    // bob has no quota: nothing counted, nothing to say.
    let mut b = Raw::login(server.addr, "bob");
    assert!(b.cmd("ALLO 999999999999").starts_with("202 "));
    assert!(b.cmd("AVBL").starts_with("550 "));
    assert_eq!(b.cmd("SITE QUOTA"), "200 No quota for this account.");
    assert!(!b.cmd("STAT").contains("Quota"));
}

#[test]
fn the_first_login_counts_ten_thousand_files_already_there() {
    let server = with_quota("quota_files = 10001\nquota_bytes = 20001");
    // Put there before any login: the count is made at the first one.
    for d in 0..10 {
        let dir = server.alice.join(format!("d{d}"));
        std::fs::create_dir(&dir).unwrap();
        for f in 0..1000 {
            std::fs::write(dir.join(format!("f{f}")), b"xy").unwrap();
        }
    }
    let mut c = Raw::login(server.addr, "alice");
    let q = c.cmd("SITE QUOTA");
    assert!(q.contains(" Files: 10000 used"), "{q}");
    assert!(q.contains(" Bytes: 20000 used"), "{q}");
    assert!(put(&mut c, "STOR", "one", b"z").starts_with("226 "));
    assert_eq!(put(&mut c, "STOR", "two", b"z"), EXCEEDED);
}

#[test]
fn a_reload_lowering_a_quota_applies_to_the_next_write() {
    let server = Server::start_with(Setup {
        alice_extra: "quota_bytes = 1000",
        watch_log: true,
        ..Setup::default()
    });
    let mut c = Raw::login(server.addr, "alice");
    assert!(put(&mut c, "STOR", "a", &[0; 500]).starts_with("226 "));
    let text = std::fs::read_to_string(server.config()).unwrap();
    let lowered = text.replace("quota_bytes = 1000", "quota_bytes = 600");
    assert_ne!(lowered, text);
    std::fs::write(server.config(), lowered).unwrap();
    server.signal("HUP");
    server.wait_for_log("config reloaded", 0, Duration::from_secs(10));
    // The session from before the reload: its next write.
    assert_eq!(put(&mut c, "STOR", "b", &[0; 200]), EXCEEDED);
    assert_eq!(avbl(&mut c), 100);
    assert!(put(&mut c, "STOR", "b", &[0; 100]).starts_with("226 "));
    let mut fresh = Raw::login(server.addr, "alice");
    assert_eq!(avbl(&mut fresh), 0);
}

/// An object-store root: a user `q` under `q/` with a quota of 6 MiB
/// (parts of 5 MiB: a 7 MiB upload is refused inside its second part).
fn s3_server(moto: &Moto) -> Server {
    let hash = crate::harness::password_hash();
    crate::s3::server_configured(
        moto,
        "",
        &format!(
            "\n[[users]]\nname = \"q\"\npassword_hash = \"{hash}\"\nroot = \"s3://{BUCKET}/q\"\n\
             permissions = [\"read\", \"write\", \"overwrite\", \"delete\", \"rename\", \"mkdir\"]\n\
             quota_bytes = \"6M\"\nquota_files = 30\n"
        ),
    )
}

/// The sizes of the objects under `prefix`, by the store's own listing.
fn listed(moto: &Moto, prefix: &str) -> Vec<(String, u64)> {
    moto.py(
        "p = s3.get_paginator('list_objects_v2')\n\
         for page in p.paginate(Bucket=sys.argv[1], Prefix=sys.argv[2]):\n    \
         for o in page.get('Contents', []): print(o['Key'], o['Size'])",
        &[BUCKET, prefix],
    )
    .lines()
    .map(|l| {
        let (k, s) = l.rsplit_once(' ').unwrap();
        (k.to_owned(), s.parse().unwrap())
    })
    .collect()
}

/// Incomplete multipart uploads: none once the aborts are done (they run
/// in tasks of their own; waited for, at most 10 s).
fn no_uploads_left(moto: &Moto) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let left = moto.uploads(BUCKET);
        if left.is_empty() {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "left: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn s3sfs_quota_holds_exactly_and_in_parallel_on_an_object_store() {
    let Some(moto) = Moto::of(Kind::S3sFs) else {
        return;
    };
    let server = s3_server(&moto);
    let limit: usize = 6 * 1024 * 1024;
    let mut c = Raw::login(server.addr, "q");
    // One byte over, as a multipart upload: 552, no object, no upload.
    assert_eq!(
        put(&mut c, "STOR", "over.bin", &random_bytes(limit + 1, 3)),
        EXCEEDED
    );
    assert!(listed(&moto, "q/").is_empty());
    no_uploads_left(&moto);
    // Exactly at the limit.
    let full = random_bytes(limit, 4);
    assert!(put(&mut c, "STOR", "full.bin", &full).starts_with("226 "));
    assert_eq!(
        listed(&moto, "q/"),
        [("q/full.bin".to_owned(), limit as u64)]
    );
    assert_eq!(avbl(&mut c), 0);
    assert_eq!(put(&mut c, "STOR", "one.bin", b"x"), EXCEEDED);
    assert!(c.cmd("DELE full.bin").starts_with("250 "));
    assert_eq!(avbl(&mut c), limit as u64);
    // Twenty at once, 512 KiB each (10 MiB in all): the sum stays under.
    let addr = server.addr;
    let threads: Vec<_> = (0..20u64)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = Raw::login(addr, "q");
                put(
                    &mut c,
                    "STOR",
                    &format!("p{i}.bin"),
                    &random_bytes(512 * 1024, i),
                )
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
    let objects = listed(&moto, "q/");
    let sum: u64 = objects.iter().map(|o| o.1).sum();
    assert!(sum <= limit as u64, "{sum}: {objects:?}");
    assert_eq!(objects.len(), stored, "{objects:?}");
    assert!(stored >= 1, "{objects:?}");
    no_uploads_left(&moto);
    assert_eq!(avbl(&mut c), limit as u64 - sum);
}

/// On an object store REST 0 + STOR is a whole upload published at its
/// commit, counted as an overwrite: the old object's bytes with the new
/// ones until then, and the old object still counted when it is given up.
/// (It was once taken as written in place, its old bytes given back at
/// the start: an upload given up lost them from the count for good.)
#[test]
fn s3sfs_a_refused_rest_0_overwrite_keeps_the_old_object_counted() {
    let Some(moto) = Moto::of(Kind::S3sFs) else {
        return;
    };
    let server = s3_server(&moto);
    let limit = 6 * 1024 * 1024u64;
    let mut c = Raw::login(server.addr, "q");
    assert!(put(&mut c, "STOR", "a.bin", &random_bytes(100_000, 5)).starts_with("226 "));
    assert!(c.cmd("REST 0").starts_with("350 "));
    assert_eq!(
        put(&mut c, "STOR", "a.bin", &random_bytes(limit as usize, 6)),
        EXCEEDED
    );
    no_uploads_left(&moto);
    assert_eq!(listed(&moto, "q/"), [("q/a.bin".to_owned(), 100_000)]);
    assert_eq!(avbl(&mut c), limit - 100_000);
}

#[test]
fn s3sfs_the_first_login_counts_what_the_prefix_holds() {
    let Some(moto) = Moto::of(Kind::S3sFs) else {
        return;
    };
    let server = s3_server(&moto);
    // 28 one-byte objects, one of them in each of 2 "directories", put
    // there before q's first login.
    moto.put_many(BUCKET, "q/", 26, 2);
    let mut c = Raw::login(server.addr, "q");
    let q = c.cmd("SITE QUOTA");
    assert!(q.contains(" Files: 28 used"), "{q}");
    assert!(q.contains(" Bytes: 28 used"), "{q}");
    assert!(c.cmd("MKD sub").starts_with("257 "));
    assert!(put(&mut c, "STOR", "sub/a", b"a").starts_with("226 "));
    assert!(put(&mut c, "STOR", "b", b"b").starts_with("226 "));
    assert_eq!(put(&mut c, "STOR", "c", b"c"), EXCEEDED);
    assert!(c.cmd("RNFR b").starts_with("350 "));
    assert!(c.cmd("RNTO sub/a").starts_with("250 "));
    assert!(put(&mut c, "STOR", "c", b"c").starts_with("226 "));
}
