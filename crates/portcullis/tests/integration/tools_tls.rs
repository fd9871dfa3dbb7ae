//! FTPS with the clients operators use: curl (--ssl-reqd), lftp
//! (ftp:ssl-force), Python's ftplib FTP_TLS (prot_p) and rclone
//! (explicit_tls), against the certificate `portcullis gen-cert` made.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use crate::harness::{random_bytes, Server, Setup, PASSWORD};
use crate::tools::{have, run, write_fixture, Rclone};

fn ftps_server(lines: &str) -> Server {
    Server::start_with(Setup {
        tls: Some(format!(
            "mode = \"required\"\ndata_protection = \"required\"\n{lines}"
        )),
        ..Setup::default()
    })
}

/// curl in passive mode. (curl 7.88's active mode does not start TLS on the
/// data connection it accepts, whatever the server; lftp and ftplib cover
/// active FTPS.)
#[test]
fn curl_ftps() {
    if !have("curl") {
        return;
    }
    let server = ftps_server("");
    let work = tempfile::tempdir().unwrap();
    let data = write_fixture(work.path(), "up.bin", 1_200_000);
    let cert = server.cert.clone().unwrap();
    let base = server.url("alice");
    let curl = || {
        let mut c = Command::new("curl");
        c.args([
            "-sS",
            "--fail",
            "--max-time",
            "60",
            "--ssl-reqd",
            "--cacert",
        ])
        .arg(&cert);
        c
    };
    // The certificate is for "localhost": connect by that name.
    let base = base.replace("127.0.0.1", "localhost");
    run(curl()
        .arg("-T")
        .arg(work.path().join("up.bin"))
        .arg(format!("{base}up.bin")));
    assert!(std::fs::read(server.alice.join("up.bin")).unwrap() == data);
    let list = run(curl().arg(&base));
    assert!(list.contains(" up.bin"), "{list}");
    let out = work.path().join("down.bin");
    run(curl().arg("-o").arg(&out).arg(format!("{base}up.bin")));
    assert!(std::fs::read(&out).unwrap() == data);
    // Without TLS the server refuses the login.
    let plain = Command::new("curl")
        .args(["-sS", "--max-time", "20"])
        .arg(server.url("alice"))
        .output()
        .unwrap();
    assert!(!plain.status.success());
}

fn lftp_ftps(active: bool) {
    if !have("lftp") {
        return;
    }
    let server = ftps_server("");
    let work = tempfile::tempdir().unwrap();
    let data = write_fixture(work.path(), "local.bin", 700_000);
    let script = format!(
        "set ftp:ssl-force true; set ftp:ssl-protect-data true; set ssl:ca-file {cert}; \
         set ftp:passive-mode {pasv}; set net:max-retries 1; set net:timeout 20; \
         open -u alice,'{PASSWORD}' ftp://localhost:{port}; \
         put {w}/local.bin -o remote.bin; ls; get remote.bin -o {w}/back.bin; rm remote.bin",
        cert = server.cert.as_ref().unwrap().display(),
        pasv = if active { "off" } else { "on" },
        port = server.addr.port(),
        w = work.path().display(),
    );
    let out = run(Command::new("lftp").args(["-c", &script]));
    assert!(out.contains("remote.bin"), "{out}");
    assert!(std::fs::read(work.path().join("back.bin")).unwrap() == data);
    assert!(!server.alice.join("remote.bin").exists());
}

#[test]
fn lftp_ftps_passive() {
    lftp_ftps(false);
}

#[test]
fn lftp_ftps_active() {
    lftp_ftps(true);
}

/// Python's FTP_TLS does not reuse the control connection's TLS session on
/// data connections; `harness::PY_REUSING_FTP_TLS`, put before it, does.
const FTPLIB_TLS: &str = r#"
import ftplib, io, ssl, sys
host, port, pw, cafile, active, reuse = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5] == "1", sys.argv[6] == "1"
ctx = ssl.create_default_context(cafile=cafile)
f = (Reusing if reuse else ftplib.FTP_TLS)(context=ctx)
f.connect(host, port, timeout=30)
f.login("alice", pw)
f.prot_p()
f.set_pasv(not active)
data = bytes((i * 31) % 253 for i in range(500_000))
try:
    f.storbinary("STOR p.bin", io.BytesIO(data))
except (ftplib.error_perm, ssl.SSLError, OSError) as e:
    print("refused", e)
    sys.exit(0)
out = io.BytesIO()
f.retrbinary("RETR p.bin", out.write)
assert out.getvalue() == data, "download differs"
assert "p.bin" in f.nlst()
f.delete("p.bin")
# Many data connections resuming the same control session (the store keeps
# the session in use however many new tickets come and go).
f.storbinary("STOR s.bin", io.BytesIO(b"s" * 1000))
for i in range(60):
    out = io.BytesIO()
    f.retrbinary("RETR s.bin", out.write)
    assert out.getvalue() == b"s" * 1000, i
f.delete("s.bin")
f.quit()
print("ok")
"#;

fn ftplib_tls(active: bool, reuse: bool, server: &Server) -> String {
    run(Command::new("python3").args([
        "-c",
        &format!("{}{}", crate::harness::PY_REUSING_FTP_TLS, FTPLIB_TLS),
        "localhost",
        &server.addr.port().to_string(),
        PASSWORD,
        &server.cert.as_ref().unwrap().display().to_string(),
        if active { "1" } else { "0" },
        if reuse { "1" } else { "0" },
    ]))
}

#[test]
fn ftplib_ftps_both_modes() {
    if !have("python3") {
        return;
    }
    let server = ftps_server("");
    for active in [false, true] {
        assert_eq!(ftplib_tls(active, true, &server).trim(), "ok");
    }
    // Plain FTP_TLS makes a new TLS session per data connection: refused
    // while reuse is required, and nothing is stored.
    let out = ftplib_tls(false, false, &server);
    assert!(out.starts_with("refused"), "{out}");
    assert!(!server.alice.join("p.bin").exists());
    // With reuse not required, the same client works.
    let relaxed = ftps_server("require_session_reuse = false");
    assert_eq!(ftplib_tls(false, false, &relaxed).trim(), "ok");
}

#[test]
fn rclone_ftps() {
    let server = ftps_server("");
    let Some(rclone) = Rclone::new(&server) else {
        return;
    };
    rclone.round_trip(&server, "", "r.bin", 600_000);
}

/// The tree rclone copies: name and size. Subdirectories, a non-ASCII
/// name, sizes from 1 KB to 2 MB.
const TREE: [(&str, usize); 20] = [
    ("a.bin", 1_024),
    ("b.txt", 3_000),
    ("big.bin", 2_000_000),
    ("c.bin", 65_536),
    ("d.bin", 17_000),
    ("docs/readme.txt", 1_500),
    ("docs/manual.bin", 700_000),
    ("docs/notes/n1.txt", 2_048),
    ("docs/notes/n2.txt", 9_999),
    ("docs/notes/été à Noël.txt", 4_321),
    ("docs/notes/n3.txt", 12_345),
    ("img/p1.bin", 150_000),
    ("img/p2.bin", 1_200_000),
    ("img/p3.bin", 333_333),
    ("img/thumbs/t1.bin", 5_000),
    ("img/thumbs/t2.bin", 6_000),
    ("img/thumbs/t3.bin", 7_000),
    ("src/main.rs", 2_222),
    ("src/lib.rs", 44_444),
    ("src/deep/er/x.bin", 888_888),
];

fn write_file(root: &Path, name: &str, size: usize, seed: u64) {
    let path = root.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, random_bytes(size, seed)).unwrap();
}

/// Every regular file under `root`, by its path relative to `root`.
fn files_under(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().to_str().unwrap();
                out.insert(rel.to_owned(), std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// The same names with the same bytes (a mismatch names the file, not its
/// megabytes).
fn assert_same_files(want: &BTreeMap<String, Vec<u8>>, root: &Path, what: &str) {
    let got = files_under(root);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: names"
    );
    for (name, bytes) in want {
        assert!(got[name] == *bytes, "{what}: {name} differs");
    }
}

/// rclone in its default concurrency (4 transfers, 8 checkers, one TLS
/// session cache for all its connections to the server), so that data
/// connections resume sessions of sibling control connections (alice's,
/// from 127.0.0.1) while session reuse is required. Bounded by rclone's
/// timeouts and the helper's single retry.
#[test]
fn rclone_syncs_a_tree_over_ftps_with_reuse_required() {
    let server = ftps_server("require_session_reuse = true");
    let Some(rclone) = Rclone::new(&server) else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    for (i, (name, size)) in TREE.iter().enumerate() {
        write_file(&src, name, *size, 1000 + i as u64);
    }
    // rclone's own bounds: idle I/O, connecting, and the replies after
    // a transfer.
    let bounded = || {
        let mut c = rclone.cmd();
        c.args(["--timeout", "15s", "--contimeout", "5s"]).args([
            "--ftp-close-timeout",
            "15s",
            "--ftp-shut-timeout",
            "15s",
        ]);
        c
    };
    let (local, remote) = (src.to_str().unwrap(), rclone.remote("tree"));
    let rc = |verb: &str, from: &str, to: &str| run(bounded().args([verb, from, to]));
    // Compares the bytes of every file (FTP has no hashes), in parallel;
    // exits non-zero on any difference.
    let check = |want: &BTreeMap<String, Vec<u8>>| {
        let out = run(bounded().args(["check", "--download", "--combined", "-", local, &remote]));
        let mut lines: Vec<&str> = out.lines().collect();
        lines.sort();
        let same: Vec<String> = want.keys().map(|n| format!("= {n}")).collect();
        assert_eq!(lines, same, "rclone check");
    };

    rc("copy", local, &remote);
    let tree = files_under(&src);
    assert_eq!(tree.len(), TREE.len());
    assert_same_files(&tree, &server.alice.join("tree"), "after copy");
    check(&tree);

    // Modify (other sizes, so that a same-second mtime cannot hide the
    // change), add, delete.
    write_file(&src, "b.txt", 5_000, 1);
    write_file(&src, "img/p1.bin", 150_001, 2);
    write_file(&src, "new.bin", 33_333, 3);
    write_file(&src, "docs/added/y.bin", 400_000, 4);
    std::fs::remove_file(src.join("a.bin")).unwrap();
    std::fs::remove_file(src.join("docs/notes/n2.txt")).unwrap();
    rc("sync", local, &remote);
    let tree = files_under(&src);
    assert_same_files(&tree, &server.alice.join("tree"), "after sync");
    check(&tree);

    let back = work.path().join("back");
    rc("copy", &remote, back.to_str().unwrap());
    assert_same_files(&tree, &back, "copied back");
}

/// curl --ftp-ssl-ccc: login under TLS, then the control connection in
/// plain text. curl does not resume the control session on its data
/// connections after CCC, so this set-up also relaxes session reuse.
#[test]
fn curl_ftps_ccc() {
    if !have("curl") {
        return;
    }
    let server = ftps_server("allow_ccc = true\nrequire_session_reuse = false");
    std::fs::write(server.alice.join("c.txt"), b"cleared").unwrap();
    let base = server.url("alice").replace("127.0.0.1", "localhost");
    let out = run(Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "--max-time",
            "30",
            "--ssl-reqd",
            "--ftp-ssl-ccc",
            "--cacert",
        ])
        .arg(server.cert.as_ref().unwrap())
        .arg(format!("{base}c.txt")));
    assert_eq!(out, "cleared");
    assert!(
        server.log().contains("control connection cleared (CCC)")
            || !server.log().contains("CCC shutdown failed")
    );
}
