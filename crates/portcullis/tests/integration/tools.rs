//! The clients operators use, run as programs against the real server in
//! passive and active mode: curl, wget, lftp, Python's ftplib and rclone,
//! each over every kind of root ([`Root`]: a local directory, moto's S3
//! server, s3s-fs), checked in the storage itself. What an object store
//! cannot do (resumed uploads, keeping times) is tried on local roots and
//! its refusal on object stores. `.ci/run` installs them; on a machine
//! without one, its test says so and passes, except under CI (CI=true),
//! where a missing client is a failure.

use std::path::Path;
use std::process::Command;

use crate::harness::{random_bytes, Server, PASSWORD};
use crate::site::{Root, Site};

pub(crate) fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    installed(found, tool)
}

/// `found`, after saying so when it is not: a test without what it needs
/// passes with a note, except under CI, which must have installed it.
pub(crate) fn installed(found: bool, what: &str) -> bool {
    if !found {
        assert!(
            std::env::var("CI").is_err(),
            "{what} is not installed (CI must install it)"
        );
        crate::harness::skip(what);
    }
    found
}

/// Run a command, fail the test with its output if it fails; return stdout.
pub(crate) fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("spawn client");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn write_fixture(dir: &Path, name: &str, n: usize) -> Vec<u8> {
    let data = random_bytes(n, n as u64);
    std::fs::write(dir.join(name), &data).unwrap();
    data
}

/// Four tests of `f`, one per kind of root: `f(Root::..., args)`.
macro_rules! over_roots {
    ($f:ident($($arg:expr),*): $local:ident, $moto:ident, $s3sfs:ident, $az:ident) => {
        #[test]
        fn $local() {
            $f(Root::Local $(, $arg)*);
        }
        #[test]
        fn $moto() {
            $f(Root::Moto $(, $arg)*);
        }
        #[test]
        fn $s3sfs() {
            $f(Root::S3sFs $(, $arg)*);
        }
        #[test]
        fn $az() {
            $f(Root::Azurite $(, $arg)*);
        }
    };
}

/// Over one 5 MiB part (a multipart upload on object stores), and a
/// 100 MiB round trip, byte for byte.
fn curl(root: Root, active: bool) {
    if !have("curl") {
        return;
    }
    let Some(site) = Site::start(root) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let data = write_fixture(work.path(), "up.bin", 7 * 1024 * 1024 + 5);
    let base = site.server.url("alice");
    let mode: &[&str] = if active {
        &["--ftp-port", "127.0.0.1"]
    } else {
        &[]
    };
    let curl = || {
        let mut c = Command::new("curl");
        c.args(["-sS", "--fail", "--max-time", "120"]).args(mode);
        c
    };
    // Upload, creating a directory on the way.
    run(curl()
        .args(["--ftp-create-dirs", "-T"])
        .arg(work.path().join("up.bin"))
        .arg(format!("{base}dir/up.bin")));
    assert!(site.read("dir/up.bin") == Some(data.clone()));
    // List.
    let list = run(curl().arg(format!("{base}dir/")));
    assert!(list.contains(" up.bin"), "{list}");
    // Download, byte-identical.
    let out = work.path().join("down.bin");
    run(curl().arg("-o").arg(&out).arg(format!("{base}dir/up.bin")));
    assert!(std::fs::read(&out).unwrap() == data);
    // Resume a partial download (REST; a ranged GET on object stores).
    std::fs::write(&out, &data[..400_000]).unwrap();
    run(curl()
        .args(["-C", "-", "-o"])
        .arg(&out)
        .arg(format!("{base}dir/up.bin")));
    assert!(std::fs::read(&out).unwrap() == data);
    // Resume a partial upload: local roots only (an object store answers
    // REST+STOR and APPE with 502).
    let mut quote = vec!["-Q", "RNFR dir/up.bin", "-Q", "RNTO dir/moved.bin"];
    if !site.is_object_store() {
        site.write("dir/part.bin", &data[..300_000]);
        run(curl()
            .args(["-C", "-", "-T"])
            .arg(work.path().join("up.bin"))
            .arg(format!("{base}dir/part.bin")));
        assert!(site.read("dir/part.bin") == Some(data.clone()));
        quote.extend(["-Q", "DELE dir/part.bin"]);
    }
    // Rename (and delete) with quote commands.
    run(curl().args(&quote).arg(&base).arg("-o").arg("/dev/null"));
    assert_eq!(site.files(), vec!["dir/moved.bin".to_string()]);
    // PASV instead of EPSV.
    if !active {
        let list = run(curl().arg("--disable-epsv").arg(format!("{base}dir/")));
        assert!(list.contains(" moved.bin"), "{list}");
    }
    // 100 MiB up and down again.
    let big = write_fixture(work.path(), "big.bin", 100 * 1024 * 1024);
    run(curl()
        .arg("-T")
        .arg(work.path().join("big.bin"))
        .arg(format!("{base}big.bin")));
    run(curl().arg("-o").arg(&out).arg(format!("{base}big.bin")));
    assert!(
        std::fs::read(&out).unwrap() == big,
        "100 MiB round trip differs"
    );
}

over_roots!(curl(false): curl_passive, s3_curl_passive, s3sfs_curl_passive, az_curl_passive);
over_roots!(curl(true): curl_active, s3_curl_active, s3sfs_curl_active, az_curl_active);

fn wget(root: Root, active: bool) {
    if !have("wget") {
        return;
    }
    let Some(site) = Site::start(root) else {
        return;
    };
    let data = random_bytes(700_000, 7);
    site.write("file.bin", &data);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("file.bin");
    let mode: &[&str] = if active { &["--no-passive-ftp"] } else { &[] };
    let url = format!("{}file.bin", site.server.url("alice"));
    run(Command::new("wget")
        .args(["-q", "-t", "1", "-T", "30"])
        .args(mode)
        .arg("-O")
        .arg(&out)
        .arg(&url));
    assert!(std::fs::read(&out).unwrap() == data);
    // wget -c resumes with REST.
    std::fs::write(&out, &data[..123_456]).unwrap();
    run(Command::new("wget")
        .args(["-q", "-c", "-t", "1", "-T", "30"])
        .args(mode)
        .arg("-P")
        .arg(work.path())
        .arg(&url));
    assert!(std::fs::read(&out).unwrap() == data);
}

over_roots!(wget(false): wget_passive, s3_wget_passive, s3sfs_wget_passive, az_wget_passive);
over_roots!(wget(true): wget_active, s3_wget_active, s3sfs_wget_active, az_wget_active);

fn lftp(root: Root, active: bool) {
    if !have("lftp") {
        return;
    }
    let Some(site) = Site::start(root) else {
        return;
    };
    let server = &site.server;
    let work = tempfile::tempdir().unwrap();
    let data = write_fixture(work.path(), "local.bin", 900_000);
    let passive = if active { "off" } else { "on" };
    let script = format!(
        "set ftp:ssl-allow no; set ftp:passive-mode {passive}; set net:max-retries 1; set net:timeout 20; \
         open -u alice,'{PASSWORD}' ftp://{addr}; \
         mkdir sub; cd sub; put {w}/local.bin -o remote.bin; ls; get remote.bin -o {w}/back.bin; \
         mv remote.bin renamed.bin; cls -1; rm renamed.bin; cd ..; rmdir sub; ls",
        addr = server.addr,
        w = work.path().display(),
    );
    let out = run(Command::new("lftp").args(["-c", &script]));
    assert!(out.contains("remote.bin"), "{out}");
    assert!(out.contains("renamed.bin"), "{out}");
    assert!(std::fs::read(work.path().join("back.bin")).unwrap() == data);
    assert!(site.files().is_empty(), "{:?}", site.files());
    // Resume a download with get -c.
    site.write("r.bin", &data);
    std::fs::write(work.path().join("r.bin"), &data[..100_000]).unwrap();
    let script = format!(
        "set ftp:ssl-allow no; set ftp:passive-mode {passive}; open -u alice,'{PASSWORD}' ftp://{}; get -c r.bin -o {}/r.bin",
        server.addr,
        work.path().display()
    );
    run(Command::new("lftp").args(["-c", &script]));
    assert!(std::fs::read(work.path().join("r.bin")).unwrap() == data);
    if site.is_object_store() {
        // Objects have no times to set (MFMT is 502): mirror -R's
        // second run would send everything again.
        return;
    }
    // mirror -R keeps the files' times (MFMT), so a second run sends nothing.
    let tree = work.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    std::fs::write(tree.join("t.bin"), &data[..5000]).unwrap();
    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    std::fs::File::options()
        .write(true)
        .open(tree.join("t.bin"))
        .unwrap()
        .set_modified(old)
        .unwrap();
    let script = format!(
        "set ftp:ssl-allow no; set ftp:passive-mode {passive}; open -u alice,'{PASSWORD}' ftp://{}; mirror -R --verbose=1 {} /m",
        server.addr,
        tree.display()
    );
    let first = run(Command::new("lftp").args(["-c", &script]));
    assert!(first.contains("t.bin"), "{first}");
    let stored = std::fs::metadata(server.alice.join("m/t.bin")).unwrap();
    assert_eq!(stored.modified().unwrap(), old);
    let second = run(Command::new("lftp").args(["-c", &script]));
    assert!(!second.contains("t.bin"), "sent again: {second}");
}

over_roots!(lftp(false): lftp_passive, s3_lftp_passive, s3sfs_lftp_passive, az_lftp_passive);
over_roots!(lftp(true): lftp_active, s3_lftp_active, s3sfs_lftp_active, az_lftp_active);

/// ftplib's whole session; `objects` (argv[5] = "1"): an object store,
/// where REST+STOR and MFMT are 502.
const FTPLIB_SCRIPT: &str = r#"
import ftplib, io, sys
host, port, pw, active = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4] == "1"
objects = sys.argv[5] == "1"
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
f.storbinary("STOR b.bin", io.BytesIO(data[:5000]))
if objects:
    try:
        f.storbinary("STOR b.bin", io.BytesIO(data[5000:]), rest=5000)
        raise SystemExit("REST+STOR accepted")
    except ftplib.error_perm as e:
        assert str(e).startswith("502"), e
    try:
        f.sendcmd("MFMT 20200101000000 a.bin")
        raise SystemExit("MFMT accepted")
    except ftplib.error_perm as e:
        assert str(e).startswith("502"), e
    f.storbinary("STOR b.bin", io.BytesIO(data))
else:
    f.storbinary("STOR b.bin", io.BytesIO(data[5000:]), rest=5000)
out = io.BytesIO()
f.retrbinary("RETR b.bin", out.write)
assert out.getvalue() == data, "resumed upload differs"
f.storlines("STOR t.txt", io.BytesIO(b"l1\nl2\n"))
lines = []
f.retrlines("RETR t.txt", lines.append)
assert lines == ["l1", "l2"], lines
names = sorted(f.nlst())
assert names == ["a.bin", "b.bin", "t.txt"], names
# mget-style: the names NLST gives for a pattern are fetched as they are.
f.cwd("..")
got = {}
for name in f.nlst("d/*.bin"):
    out = io.BytesIO()
    f.retrbinary("RETR " + name, out.write)
    got[name] = len(out.getvalue())
assert got == {"d/a.bin": len(data), "d/b.bin": len(data)}, got
f.cwd("d")
facts = dict(f.mlsd())
assert facts["a.bin"]["type"] == "file" and facts["a.bin"]["size"] == str(len(data)), facts
listing = []
f.dir(listing.append)
assert len(listing) == 3, listing
f.rename("a.bin", "c.bin")
f.delete("c.bin")
f.delete("b.bin")
f.delete("t.txt")
f.cwd("..")
f.rmd("d")
f.quit()
print("ok")
"#;

fn ftplib(root: Root, active: bool) {
    if !have("python3") {
        return;
    }
    let Some(site) = Site::start(root) else {
        return;
    };
    let out = run(Command::new("python3").args([
        "-c",
        FTPLIB_SCRIPT,
        "127.0.0.1",
        &site.server.addr.port().to_string(),
        PASSWORD,
        if active { "1" } else { "0" },
        if site.is_object_store() { "1" } else { "0" },
    ]));
    assert_eq!(out.trim(), "ok");
    assert!(site.files().is_empty(), "{:?}", site.files());
}

over_roots!(ftplib(false): ftplib_passive, s3_ftplib_passive, s3sfs_ftplib_passive, az_ftplib_passive);
over_roots!(ftplib(true): ftplib_active, s3_ftplib_active, s3sfs_ftplib_active, az_ftplib_active);

/// rclone against `server` as alice: no config file, no retries, an
/// on-the-fly remote (explicit FTPS when the server has a certificate,
/// trusted through SSL_CERT_FILE, reached as "localhost" as it names).
pub(crate) struct Rclone {
    port: u16,
    pass: String,
    cert: Option<std::path::PathBuf>,
}

impl Rclone {
    pub(crate) fn new(server: &Server) -> Option<Rclone> {
        if !have("rclone") {
            return None;
        }
        let pass = run(Command::new("rclone").args(["obscure", PASSWORD]));
        Some(Rclone {
            port: server.addr.port(),
            pass: pass.trim().to_owned(),
            cert: server.cert.clone(),
        })
    }

    pub(crate) fn remote(&self, path: &str) -> String {
        let (host, tls) = match self.cert {
            Some(_) => ("localhost", ",explicit_tls=true"),
            None => ("127.0.0.1", ""),
        };
        format!(
            ":ftp,host={host},port={},user=alice,pass={}{tls}:{path}",
            self.port, self.pass
        )
    }

    pub(crate) fn cmd(&self) -> Command {
        let mut c = Command::new("rclone");
        c.args([
            "--config",
            "/dev/null",
            "--low-level-retries",
            "1",
            "--retries",
            "1",
        ]);
        if let Some(cert) = &self.cert {
            c.env("SSL_CERT_FILE", cert);
        }
        c
    }

    /// Upload `size` random bytes to `path` (in `dir`, listed afterwards),
    /// check the stored file, download it again and compare.
    pub(crate) fn round_trip(&self, server: &Server, dir: &str, name: &str, size: usize) {
        let work = tempfile::tempdir().unwrap();
        let data = write_fixture(work.path(), "src.bin", size);
        let path = format!("{dir}{name}");
        run(self
            .cmd()
            .arg("copyto")
            .arg(work.path().join("src.bin"))
            .arg(self.remote(&path)));
        assert!(std::fs::read(server.alice.join(&path)).unwrap() == data);
        let ls = run(self.cmd().arg("lsf").arg(self.remote(dir)));
        assert_eq!(ls.trim(), name);
        run(self
            .cmd()
            .arg("copyto")
            .arg(self.remote(&path))
            .arg(work.path().join("back.bin")));
        assert!(std::fs::read(work.path().join("back.bin")).unwrap() == data);
    }
}

/// rclone's FTP back-end only speaks passive mode (EPSV/PASV): a copy up
/// and back, a listing, a move and a delete (on object stores it does
/// without MFMT, which is 502).
fn rclone(root: Root) {
    let Some(site) = Site::start(root) else {
        return;
    };
    let Some(rclone) = Rclone::new(&site.server) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let data = write_fixture(work.path(), "src.bin", 6 * 1024 * 1024);
    run(rclone
        .cmd()
        .arg("copyto")
        .arg(work.path().join("src.bin"))
        .arg(rclone.remote("dir/r.bin")));
    assert!(site.read("dir/r.bin") == Some(data.clone()));
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
    assert_eq!(site.files(), vec!["dir/s.bin".to_string()]);
    run(rclone
        .cmd()
        .arg("deletefile")
        .arg(rclone.remote("dir/s.bin")));
    assert!(site.files().is_empty(), "{:?}", site.files());
}

over_roots!(rclone(): rclone_passive, s3_rclone_passive, s3sfs_rclone_passive, az_rclone_passive);

/// rclone keeps the source's modification times (MFMT), and a second copy
/// of an unchanged tree transfers nothing.
#[test]
fn rclone_copy_twice_transfers_once() {
    let server = Server::start();
    let Some(rclone) = Rclone::new(&server) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("tree");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    write_fixture(&src, "a.bin", 5_000);
    write_fixture(&src.join("sub"), "b.bin", 70_000);
    // Old times, so that a server that cannot set them shows "now".
    let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    for f in ["a.bin", "sub/b.bin"] {
        let f = std::fs::File::options()
            .write(true)
            .open(src.join(f))
            .unwrap();
        f.set_modified(old).unwrap();
    }
    let copy = || {
        let out = rclone
            .cmd()
            .args(["copy", "-v"])
            .arg(&src)
            .arg(rclone.remote("mirror"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    copy();
    let inode = |p: &str| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(server.alice.join(p)).unwrap().ino()
    };
    let before = (inode("mirror/a.bin"), inode("mirror/sub/b.bin"));
    let mtime = |p: &std::path::Path| std::fs::metadata(p).unwrap().modified().unwrap();
    let (src_t, dst_t) = (
        mtime(&src.join("sub/b.bin")),
        mtime(&server.alice.join("mirror/sub/b.bin")),
    );
    let apart = src_t.duration_since(dst_t).unwrap_or_else(|e| e.duration());
    assert!(apart.as_secs() < 1, "{src_t:?} vs {dst_t:?}");
    let second = copy();
    assert!(!second.contains("Copied"), "{second}");
    assert_eq!(
        (inode("mirror/a.bin"), inode("mirror/sub/b.bin")),
        before,
        "re-uploaded: {second}"
    );
}
