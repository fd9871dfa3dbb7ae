//! curl, Python's ftplib and lftp against an object-store root, passive
//! and active: what each client does on its own (create directories on
//! the way, resume downloads, list, rename, delete), checked in the store.

use std::process::Command;

use super::{server, Moto, BUCKET};
use crate::harness::PASSWORD;
use crate::tools::{have, run, write_fixture};

fn curl(active: bool) {
    if !have("curl") {
        return;
    }
    let Some(moto) = Moto::start() else { return };
    let server = server(&moto);
    let work = tempfile::tempdir().unwrap();
    // Over one part: a multipart upload.
    let data = write_fixture(work.path(), "up.bin", 7 * 1024 * 1024 + 5);
    let base = server.url("alice");
    let mode: &[&str] = if active {
        &["--ftp-port", "127.0.0.1"]
    } else {
        &[]
    };
    let curl = || {
        let mut c = Command::new("curl");
        c.args(["-sS", "--fail", "--max-time", "60"]).args(mode);
        c
    };
    run(curl()
        .args(["--ftp-create-dirs", "-T"])
        .arg(work.path().join("up.bin"))
        .arg(format!("{base}dir/up.bin")));
    assert!(moto.get(BUCKET, "alice/dir/up.bin") == data);
    let list = run(curl().arg(format!("{base}dir/")));
    assert!(list.contains(" up.bin"), "{list}");
    let out = work.path().join("down.bin");
    run(curl().arg("-o").arg(&out).arg(format!("{base}dir/up.bin")));
    assert!(std::fs::read(&out).unwrap() == data);
    // Resume a partial download (REST, a ranged GET).
    std::fs::write(&out, &data[..400_000]).unwrap();
    run(curl()
        .args(["-C", "-", "-o"])
        .arg(&out)
        .arg(format!("{base}dir/up.bin")));
    assert!(std::fs::read(&out).unwrap() == data);
    run(curl()
        .args(["-Q", "RNFR dir/up.bin", "-Q", "RNTO dir/moved.bin"])
        .arg(&base)
        .arg("-o")
        .arg("/dev/null"));
    assert_eq!(
        moto.keys(BUCKET),
        vec!["alice/dir/".to_string(), "alice/dir/moved.bin".to_string()]
    );
    assert!(moto.uploads(BUCKET).is_empty());
}

#[test]
fn s3_curl_passive() {
    curl(false);
}

#[test]
fn s3_curl_active() {
    curl(true);
}

/// ftplib's whole session on an object store (no APPE, no REST+STOR).
const FTPLIB_SCRIPT: &str = r#"
import ftplib, io, sys
host, port, pw, active = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
data = bytes((i * 7919) % 251 for i in range(6_000_000))
f = ftplib.FTP()
f.connect(host, port, timeout=30)
f.login("alice", pw)
f.set_pasv(not active)
f.mkd("d")
f.cwd("d")
f.storbinary("STOR a.bin", io.BytesIO(data))
assert f.size("a.bin") == len(data)
out = io.BytesIO()
f.retrbinary("RETR a.bin", out.write)
assert out.getvalue() == data, "download differs"
out = io.BytesIO()
f.retrbinary("RETR a.bin", out.write, rest=1000)
assert out.getvalue() == data[1000:], "resumed download differs"
f.storlines("STOR t.txt", io.BytesIO(b"l1\nl2\n"))
lines = []
f.retrlines("RETR t.txt", lines.append)
assert lines == ["l1", "l2"], lines
assert sorted(f.nlst()) == ["a.bin", "t.txt"], f.nlst()
facts = dict(f.mlsd())
assert facts["a.bin"]["type"] == "file" and facts["a.bin"]["size"] == str(len(data)), facts
try:
    f.sendcmd("MFMT 20200101000000 a.bin")
    raise SystemExit("MFMT accepted")
except ftplib.error_perm as e:
    assert str(e).startswith("502"), e
f.rename("a.bin", "c.bin")
f.delete("c.bin")
f.delete("t.txt")
f.cwd("..")
f.rmd("d")
f.quit()
print("ok")
"#;

fn ftplib(active: bool) {
    if !have("python3") {
        return;
    }
    let Some(moto) = Moto::start() else { return };
    let server = server(&moto);
    let out = run(Command::new("python3").args([
        "-c",
        FTPLIB_SCRIPT,
        "127.0.0.1",
        &server.addr.port().to_string(),
        PASSWORD,
        if active { "1" } else { "0" },
    ]));
    assert_eq!(out.trim(), "ok");
    assert!(moto.keys(BUCKET).is_empty(), "{:?}", moto.keys(BUCKET));
    assert!(moto.uploads(BUCKET).is_empty());
}

#[test]
fn s3_ftplib_passive() {
    ftplib(false);
}

#[test]
fn s3_ftplib_active() {
    ftplib(true);
}

fn lftp(active: bool) {
    if !have("lftp") {
        return;
    }
    let Some(moto) = Moto::start() else { return };
    let server = server(&moto);
    let work = tempfile::tempdir().unwrap();
    let data = write_fixture(work.path(), "local.bin", 900_000);
    let script = format!(
        "set ftp:ssl-allow no; set ftp:passive-mode {}; set net:max-retries 1; set net:timeout 20; \
         open -u alice,'{PASSWORD}' ftp://{addr}; \
         mkdir sub; cd sub; put {w}/local.bin -o remote.bin; ls; get remote.bin -o {w}/back.bin; \
         mv remote.bin renamed.bin; cls -1; get -c renamed.bin -o {w}/partial.bin; rm renamed.bin; cd ..; rmdir sub; ls",
        if active { "off" } else { "on" },
        addr = server.addr,
        w = work.path().display(),
    );
    // A partial local copy for `get -c` to resume.
    std::fs::write(work.path().join("partial.bin"), &data[..100_000]).unwrap();
    let out = run(Command::new("lftp").args(["-c", &script]));
    assert!(out.contains("remote.bin"), "{out}");
    assert!(out.contains("renamed.bin"), "{out}");
    assert!(std::fs::read(work.path().join("back.bin")).unwrap() == data);
    assert!(std::fs::read(work.path().join("partial.bin")).unwrap() == data);
    assert!(moto.keys(BUCKET).is_empty(), "{:?}", moto.keys(BUCKET));
}

#[test]
fn s3_lftp_passive() {
    lftp(false);
}

#[test]
fn s3_lftp_active() {
    lftp(true);
}

/// rclone's FTP back-end (passive only) on an object store: it does
/// without MFMT (502), and a copy, a listing, a move and a delete end up
/// as objects.
#[test]
fn s3_rclone_passive() {
    let Some(moto) = Moto::start() else { return };
    let server = server(&moto);
    let Some(rclone) = crate::tools::Rclone::new(&server) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let data = write_fixture(work.path(), "src.bin", 6 * 1024 * 1024);
    run(rclone
        .cmd()
        .arg("copyto")
        .arg(work.path().join("src.bin"))
        .arg(rclone.remote("dir/r.bin")));
    assert!(moto.get(BUCKET, "alice/dir/r.bin") == data);
    let ls = run(rclone.cmd().arg("lsf").arg(rclone.remote("dir/")));
    assert_eq!(ls.trim(), "r.bin");
    run(rclone
        .cmd()
        .arg("copyto")
        .arg(rclone.remote("dir/r.bin"))
        .arg(work.path().join("back.bin")));
    assert!(std::fs::read(work.path().join("back.bin")).unwrap() == data);
    run(rclone
        .cmd()
        .arg("moveto")
        .arg(rclone.remote("dir/r.bin"))
        .arg(rclone.remote("dir/s.bin")));
    run(rclone
        .cmd()
        .arg("deletefile")
        .arg(rclone.remote("dir/s.bin")));
    assert!(
        !moto.keys(BUCKET).iter().any(|k| k.ends_with(".bin")),
        "{:?}",
        moto.keys(BUCKET)
    );
    assert!(moto.uploads(BUCKET).is_empty());
}
