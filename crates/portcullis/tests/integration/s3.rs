//! Object-store roots against a real S3 server (moto's, and s3s-fs for the
//! `s3sfs_` tests, on 127.0.0.1, started per test): round trips through a
//! client crate (the command-line clients run over every kind of root in
//! `tools.rs`), parts that grow with the upload, resumed downloads,
//! listings and directories over prefixes and markers, renames, the
//! refusals of what an object store cannot do, uploads reset mid-way (no
//! object, no incomplete multipart upload, as boto3 lists them), the drop
//! box (its renames too), profiles, the start-up check of buckets, what a
//! download asks of the store, and keys put by other tools that cannot be
//! paths.

use std::time::Duration;

use crate::harness::{password_hash, random_bytes, read_all, stor, Raw, Server, PASSWORD};

pub(crate) mod aborts;
pub(crate) mod drop_box;
mod hook;
mod keys;
mod requests;
mod startup;
pub(crate) mod store;
mod tls;

use store::{Kind, Moto, KEY_ID, SECRET};

/// The bucket every server here uses.
pub(crate) const BUCKET: &str = "portcullis-test";
/// A second bucket, for the profile `other`.
const OTHER: &str = "portcullis-other";

/// A server whose accounts live in `BUCKET` on `moto`: alice (everything)
/// under `alice/`, `drop` (write and rename, no overwrite) under `drop/`, `grow`
/// under `grow/` on the profile `grow` (parts double after every part), carol on
/// the profile `other` (bucket `OTHER`), anonymous under `pub/`. Parts of
/// 5 MiB, so that a 12 MiB upload is a multipart upload of three.
pub(crate) fn server(moto: &Moto) -> Server {
    server_with(moto, "")
}

/// The same, with more lines at the end of the config file.
fn server_with(moto: &Moto, extra: &str) -> Server {
    server_configured(moto, "", extra)
}

/// The same, with `lines` in `[server]` too.
pub(crate) fn server_configured(moto: &Moto, lines: &str, extra: &str) -> Server {
    moto.create_bucket(BUCKET);
    moto.create_bucket(OTHER);
    server_on_buckets(moto, lines, extra)
}

/// [`server_configured`] on the buckets made already (a fleet's second
/// node).
pub(crate) fn server_on_buckets(moto: &Moto, lines: &str, extra: &str) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("portcullis.toml");
    let text = config_text(&moto.endpoint, BUCKET).replacen(
        "[server]\n",
        &format!("[server]\n{lines}\n"),
        1,
    ) + extra;
    std::fs::write(&config, text).unwrap();
    Server::start_from_config(dir, &config)
}

fn config_text(endpoint: &str, bucket: &str) -> String {
    let hash = password_hash();
    let ports = crate::harness::passive_ports(20);
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
failed_login_delay = "50ms"
allow_root = true

[passive]
ports = "{ports}"

[s3]
endpoint = "{endpoint}"
allow_http = true
access_key_id = "{KEY_ID}"
secret_access_key = "{SECRET}"
part_size = "5M"
download_chunk = "1M"
request_timeout = "10s"

[s3.profiles.other]
region = "eu-west-1"

[s3.profiles.grow]
part_doubling = 1

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
permissions = ["read", "write", "rename"]

[[users]]
name = "grow"
password_hash = "{hash}"
root = "s3://{bucket}/grow"
s3_profile = "grow"
permissions = ["read", "write", "overwrite", "delete"]

[[users]]
name = "carol"
password_hash = "{hash}"
root = "s3://{OTHER}"
s3_profile = "other"
permissions = ["read", "write", "overwrite", "delete", "rename", "mkdir"]
"#
    )
}

/// Download `name` from `rest` over a passive connection.
pub(crate) fn retr(c: &mut Raw, name: &str, rest: u64) -> (Vec<u8>, String) {
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
pub(crate) fn listing(c: &mut Raw, cmd: &str) -> String {
    let d = c.pasv();
    let r = c.cmd(cmd);
    assert!(r.starts_with("150 "), "{cmd}: {r}");
    let out = String::from_utf8(read_all(d)).unwrap();
    let end = c.reply();
    assert!(end.starts_with("226 "), "{cmd}: {end}");
    out
}

pub(crate) fn binary(c: &mut Raw) {
    assert!(c.cmd("TYPE I").starts_with("200 "));
}

#[test]
fn s3_round_trips_small_and_multipart_passive_and_active() {
    round_trips(Kind::Moto);
}

#[test]
fn s3sfs_round_trips_small_and_multipart_passive_and_active() {
    round_trips(Kind::S3sFs);
}

fn round_trips(kind: Kind) {
    let Some(moto) = Moto::of(kind) else { return };
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

/// Parts of 5, 10 and 20 MiB (`part_doubling = 1`): an upload of 18 MiB
/// is three parts, not the four of equal 5 MiB parts, and reads back
/// byte for byte.
#[test]
fn s3_part_size_grows_with_the_upload() {
    part_size_grows(Kind::Moto);
}

#[test]
fn s3sfs_part_size_grows_with_the_upload() {
    part_size_grows(Kind::S3sFs);
}

fn part_size_grows(kind: Kind) {
    let Some(moto) = Moto::of(kind) else { return };
    let server = server(&moto);
    let data = grown_round_trip(&server);
    assert!(moto.get(BUCKET, "grow/grown.bin") == data);
    // A multipart object's ETag ends in "-PARTS".
    let etag = moto.py(
        "print(s3.head_object(Bucket=sys.argv[1], Key=sys.argv[2])['ETag'])",
        &[BUCKET, "grow/grown.bin"],
    );
    assert!(etag.trim().ends_with("-3\""), "{etag}");
    assert!(moto.uploads(BUCKET).is_empty());
}

/// `grow` (parts or blocks of 5 MiB, doubling after each) stores 18 MiB
/// and 7 bytes as `grown.bin` and reads it back byte for byte (every
/// provider's test; the caller counts the parts in the store): the
/// bytes.
pub(crate) fn grown_round_trip(server: &Server) -> Vec<u8> {
    let data = random_bytes(18 * 1024 * 1024 + 7, 11);
    let mut c = Raw::login(server.addr, "grow");
    binary(&mut c);
    assert!(stor(&mut c, "grown.bin", &data).starts_with("226 "));
    let (got, end) = retr(&mut c, "grown.bin", 0);
    assert!(got == data, "grown object read back differs");
    assert!(end.starts_with("226 "), "{end}");
    data
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

/// A server whose extra user `name` reads alice's objects through the
/// profile `name`, which is `[s3]` with `line` added.
fn server_with_reader(moto: &Moto, name: &str, line: &str) -> Server {
    let extra = format!(
        r#"
[s3.profiles.{name}]
{line}

[[users]]
name = "{name}"
password_hash = "{hash}"
root = "s3://portcullis-test/alice"
s3_profile = "{name}"
permissions = ["read"]
"#,
        hash = password_hash()
    );
    server_with(moto, &extra)
}

/// Downloads are windows of ranged GETs of 1 MiB here (`download_chunk`,
/// four at once): objects of every size around the chunk's, read whole
/// and from offsets in the first chunk, on a boundary and in a later
/// chunk, come back byte for byte; with `download_streams = 1` (one GET)
/// too.
#[test]
fn s3_downloads_in_ranged_chunks_are_byte_identical() {
    ranged_chunks(Kind::Moto);
}

#[test]
fn s3sfs_downloads_in_ranged_chunks_are_byte_identical() {
    ranged_chunks(Kind::S3sFs);
}

fn ranged_chunks(kind: Kind) {
    let Some(moto) = Moto::of(kind) else { return };
    let server = server_with_reader(&moto, "one", "download_streams = 1");
    const M: usize = 1 << 20;
    let sizes = [0, 1, M - 1, M, M + 1, 3 * M, 6 * M + 3];
    let mut c = Raw::login(server.addr, "alice");
    binary(&mut c);
    let mut one = Raw::login(server.addr, "one");
    binary(&mut one);
    for (i, &size) in sizes.iter().enumerate() {
        let name = format!("f{size}.bin");
        let data = random_bytes(size, 40 + i as u64);
        assert!(stor(&mut c, &name, &data).starts_with("226 "), "{name}");
        for rest in [0, 7, M, M + 5, 2 * M + 1, size.saturating_sub(1)] {
            if rest >= size && rest > 0 {
                continue;
            }
            for (who, conn) in [("alice", &mut c), ("one", &mut one)] {
                let (got, end) = retr(conn, &name, rest as u64);
                assert!(end.starts_with("226 "), "{who} {name} from {rest}: {end}");
                assert!(
                    got == data[rest..],
                    "{who} {name} from {rest}: {} bytes back, {} expected",
                    got.len(),
                    size - rest
                );
            }
        }
    }
}

/// An object replaced while it is being downloaded: the later ranged GETs
/// carry `If-Match` on the first one's ETag, so the download ends with
/// 451 after a prefix of the old bytes, never a mix of two versions
/// passed off as complete.
#[test]
fn s3_an_object_replaced_mid_download_ends_it_with_451() {
    let Some(moto) = Moto::start() else { return };
    let server = server_with_reader(&moto, "two", "download_streams = 2");
    let old = random_bytes(32 << 20, 50);
    moto.put_bytes(BUCKET, "alice/moving.bin", &old);
    replaced_mid_download(&server, "two", &old, || {
        moto.put_bytes(BUCKET, "alice/moving.bin", b"replaced")
    });
}

/// `user` (two ranged GETs at once) downloads `moving.bin`, which holds
/// `old` (32 MiB of chunks of 1 MiB), and `replace` replaces it after the
/// first 64 KiB: the later ranged GETs carry `If-Match` on the first
/// one's ETag, so the download ends with 451 after a prefix of the old
/// bytes, never a mix of two versions passed off as complete (every
/// provider's test).
pub(crate) fn replaced_mid_download(
    server: &Server,
    user: &str,
    old: &[u8],
    replace: impl FnOnce(),
) {
    use std::io::Read;
    let mut c = Raw::login(server.addr, user);
    binary(&mut c);
    let mut d = c.pasv();
    let r = c.cmd("RETR moving.bin");
    assert!(r.starts_with("150 "), "{r}");
    // Take a little, so that most chunks are still to be fetched.
    let mut got = vec![0; 64 << 10];
    d.read_exact(&mut got).unwrap();
    replace();
    let mut buf = vec![0; 1 << 16];
    for _ in 0..100_000 {
        match d.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    let end = c.reply();
    assert!(end.starts_with("451 "), "{end}");
    assert!(got.len() < old.len(), "the whole old object came through");
    assert!(got == old[..got.len()], "bytes not from the old object");
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

/// 2,500 objects and 30 prefixes on moto (three listing pages of 1,000;
/// moto takes about 5 ms a PUT even from eight threads, so 10,000 would
/// take most of a minute to make), 10,000 and 30 on s3s-fs (made in its
/// directory): LIST, NLST and MLSD each give exactly their names.
#[test]
fn s3_listing_pages_through_many_keys() {
    listing_pages(Kind::Moto, 2_500);
}

#[test]
fn s3sfs_listing_pages_through_10000_keys() {
    listing_pages(Kind::S3sFs, 10_000);
}

fn listing_pages(kind: Kind, files: usize) {
    let Some(moto) = Moto::of(kind) else { return };
    let server = server(&moto);
    moto.put_many(BUCKET, "alice/many/", files, 30);
    listing_pages_of(&server, files);
}

/// The listing of `many/` (alice's), holding `files` objects `fNNNNN`
/// and 30 prefixes `dNN`, through several pages: LIST, NLST and MLSD
/// each give exactly their names (every provider's listing test).
pub(crate) fn listing_pages_of(server: &Server, files: usize) {
    let mut want: Vec<String> = (0..files).map(|i| format!("f{i:05}")).collect();
    want.extend((0..30).map(|i| format!("d{i:02}")));
    want.sort();
    let mut c = Raw::login(server.addr, "alice");
    assert!(c.cmd("CWD many").starts_with("250 "));
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let nlst = listing(&mut c, "NLST");
    assert!(
        sorted(nlst.lines().map(str::to_owned).collect()) == want,
        "NLST differs"
    );
    let list = listing(&mut c, "LIST");
    let names = list
        .lines()
        .map(|l| l.rsplit(' ').next().unwrap().to_owned());
    assert!(sorted(names.collect()) == want, "LIST differs");
    let mlsd = listing(&mut c, "MLSD");
    let entries: Vec<&str> = mlsd
        .lines()
        .filter(|l| !l.contains("type=cdir;") && !l.contains("type=pdir;"))
        .collect();
    assert_eq!(
        entries.iter().filter(|l| l.contains("type=dir;")).count(),
        30
    );
    let names = entries
        .iter()
        .map(|l| l.split_once("; ").unwrap().1.to_owned());
    assert!(sorted(names.collect()) == want, "MLSD differs");
}

/// s3s-fs keeps a marker `d/` as a directory on disk, which no listing
/// shows while it is empty and whose HEAD fails with 500: MKD, CWD, RMD
/// and RNFR/RNTO of an empty directory work all the same, and a missing
/// one is still 550.
#[test]
fn s3sfs_empty_directories_kept_on_disk() {
    let Some(store) = Moto::of(Kind::S3sFs) else {
        return;
    };
    let server = server(&store);
    let mut c = Raw::login(server.addr, "alice");
    binary(&mut c);
    assert!(c.cmd("MKD d").starts_with("257 "));
    let r = c.cmd("MKD d");
    assert!(r.starts_with("550 "), "{r}");
    let r = c.cmd("CWD d");
    assert!(r.starts_with("250 "), "{r}");
    assert_eq!(listing(&mut c, "NLST"), "");
    let r = c.cmd("MDTM /d");
    assert!(r.starts_with("550 "), "{r}");
    assert!(stor(&mut c, "g.txt", b"hello").starts_with("226 "));
    assert!(c.cmd("CWD /").starts_with("250 "));
    assert!(c.cmd("RMD d").starts_with("550 "));
    assert!(c.cmd("DELE d/g.txt").starts_with("250 "));
    // Empty again (the directory stays on disk): renamed, then removed.
    assert!(c.cmd("RNFR d").starts_with("350 "));
    let r = c.cmd("RNTO e");
    assert!(r.starts_with("250 "), "{r}");
    assert!(c.cmd("CWD d").starts_with("550 "));
    assert!(c.cmd("CWD e").starts_with("250 "));
    assert!(c.cmd("CWD /").starts_with("250 "));
    // RETR of the directory: 550 before any data connection is used.
    let _data = c.pasv();
    let r = c.cmd("RETR e");
    assert!(r.starts_with("550 "), "{r}");
    let r = c.cmd("RMD e");
    assert!(r.starts_with("250 "), "{r}");
    assert!(c.cmd("CWD e").starts_with("550 "));
    assert!(c.cmd("RMD e").starts_with("550 "));
    assert!(c.cmd("CWD nope").starts_with("550 "));
    assert!(c.cmd("SIZE nope").starts_with("550 "));
    assert!(store.keys(BUCKET).is_empty(), "{:?}", store.keys(BUCKET));
}

#[test]
fn s3_refuses_what_an_object_store_cannot_do() {
    let Some(moto) = Moto::start() else { return };
    let server = server(&moto);
    moto.put(BUCKET, "alice/f.txt", "0123456789");
    refusals(&server);
    // Nothing was changed by any of them.
    assert!(moto.get(BUCKET, "alice/f.txt") == b"0123456789");
}

/// What an object store cannot do, asked by alice of `f.txt` (which the
/// caller put): FEAT and HELP leave it out, APPE, REST before STOR, MFMT
/// and SITE CHMOD are 502 (every provider's test; the caller checks that
/// `f.txt` is as it was).
pub(crate) fn refusals(server: &Server) {
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
    profiles_and_anonymous(&server);
    assert!(moto.get(OTHER, "c.txt") == b"carol");
    assert_eq!(
        moto.keys(OTHER),
        vec!["c.txt".to_string(), "sub/".to_string()]
    );
}

/// carol (on a profile of her own, at the top of another bucket or
/// container) stores `c.txt` and makes `sub`; anonymous reads
/// `readme.txt` (which the caller put under the anonymous root): every
/// provider's test, the caller checks carol's store.
pub(crate) fn profiles_and_anonymous(server: &Server) {
    let mut c = Raw::login(server.addr, "carol");
    binary(&mut c);
    assert!(stor(&mut c, "c.txt", b"carol").starts_with("226 "));
    assert!(c.cmd("MKD sub").starts_with("257 "));
    let mut a = Raw::login(server.addr, "anonymous");
    binary(&mut a);
    let (got, end) = retr(&mut a, "readme.txt", 0);
    assert_eq!(got, b"hello anonymous\n");
    assert!(end.starts_with("226 "), "{end}");
}
