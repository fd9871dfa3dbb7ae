//! FTPS with the clients operators use: curl (--ssl-reqd), lftp
//! (ftp:ssl-force), Python's ftplib FTP_TLS (prot_p) and rclone
//! (explicit_tls), against the certificate `portcullis gen-cert` made.

use std::process::Command;

use crate::harness::{Server, Setup, PASSWORD};
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
/// data connections; the subclass below does (as FileZilla and lftp do).
const FTPLIB_TLS: &str = r#"
import ftplib, io, ssl, sys
host, port, pw, cafile, active, reuse = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5] == "1", sys.argv[6] == "1"
class Reusing(ftplib.FTP_TLS):
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size
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
        FTPLIB_TLS,
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
