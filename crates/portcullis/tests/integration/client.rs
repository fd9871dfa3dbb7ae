//! Happy paths with a real client crate, in passive, extended passive and
//! active mode.

use std::io::Cursor;
use std::time::Duration;

use suppaftp::types::{FileType, Mode};
use suppaftp::FtpStream;

use crate::harness::{random_bytes, Server, PASSWORD};

fn connect(server: &Server, user: &str, mode: Mode) -> FtpStream {
    let mut ftp = FtpStream::connect(server.addr).unwrap();
    if mode == Mode::Active {
        ftp = ftp.active_mode(Duration::from_secs(10));
    } else {
        ftp.set_mode(mode);
    }
    let pass = if user == "anonymous" {
        "me@example.org"
    } else {
        PASSWORD
    };
    ftp.login(user, pass).unwrap();
    ftp.transfer_type(FileType::Binary).unwrap();
    ftp
}

/// Everything a user does in one session: mkdir, upload, list, download,
/// resume both ways, append, rename, delete.
fn full_session(mode: Mode) {
    let server = Server::start();
    let mut ftp = connect(&server, "alice", mode);
    assert_eq!(ftp.pwd().unwrap(), "/");
    ftp.mkdir("docs").unwrap();
    ftp.cwd("docs").unwrap();
    assert_eq!(ftp.pwd().unwrap(), "/docs");

    let data = random_bytes(3 * 1024 * 1024 + 17, 7);
    ftp.put_file("big.bin", &mut Cursor::new(&data)).unwrap();
    let on_disk = std::fs::read(server.alice.join("docs/big.bin")).unwrap();
    assert!(on_disk == data, "upload not byte-identical");
    assert_eq!(ftp.size("big.bin").unwrap(), data.len());
    ftp.mdtm("big.bin").unwrap();

    let back = ftp.retr_as_buffer("big.bin").unwrap().into_inner();
    assert!(back == data, "download not byte-identical");

    let list = ftp.list(None).unwrap();
    assert_eq!(list.len(), 1, "{list:?}");
    assert!(
        list[0].starts_with("-rw") && list[0].ends_with(" big.bin"),
        "{list:?}"
    );
    assert_eq!(ftp.nlst(None).unwrap(), vec!["big.bin".to_string()]);
    let mlsd = ftp.mlsd(None).unwrap();
    assert!(
        mlsd.iter()
            .any(|l| l.starts_with("type=file;size=3145745;") && l.ends_with(" big.bin")),
        "{mlsd:?}"
    );

    // Resumed download: REST then RETR.
    ftp.resume_transfer(1000).unwrap();
    let tail = ftp.retr_as_buffer("big.bin").unwrap().into_inner();
    assert!(tail == data[1000..], "resumed download differs");

    // Resumed upload: first half, then REST + STOR of the rest.
    ftp.put_file("half.bin", &mut Cursor::new(&data[..100_000]))
        .unwrap();
    ftp.resume_transfer(100_000).unwrap();
    ftp.put_file("half.bin", &mut Cursor::new(&data[100_000..]))
        .unwrap();
    assert!(std::fs::read(server.alice.join("docs/half.bin")).unwrap() == data);

    // APPE, small and then past the first 64 KiB (an O_APPEND file takes
    // no splice(2): the server falls back to copying).
    ftp.put_file("log.txt", &mut Cursor::new(b"one\n")).unwrap();
    ftp.append_file("log.txt", &mut Cursor::new(b"two\n"))
        .unwrap();
    assert_eq!(
        std::fs::read(server.alice.join("docs/log.txt")).unwrap(),
        b"one\ntwo\n"
    );
    ftp.append_file("log.txt", &mut Cursor::new(&data[..1_000_000]))
        .unwrap();
    let log = std::fs::read(server.alice.join("docs/log.txt")).unwrap();
    assert!(log[..8] == b"one\ntwo\n"[..] && log[8..] == data[..1_000_000]);

    ftp.rename("log.txt", "renamed.txt").unwrap();
    assert!(server.alice.join("docs/renamed.txt").exists());
    ftp.rm("renamed.txt").unwrap();
    ftp.rm("half.bin").unwrap();
    ftp.rm("big.bin").unwrap();
    ftp.cdup().unwrap();
    ftp.rmdir("docs").unwrap();
    assert!(
        std::fs::read_dir(&server.alice).unwrap().next().is_none(),
        "root not empty"
    );
    ftp.quit().unwrap();
}

#[test]
fn full_session_passive() {
    full_session(Mode::Passive);
}

#[test]
fn full_session_extended_passive() {
    full_session(Mode::ExtendedPassive);
}

#[test]
fn full_session_active() {
    full_session(Mode::Active);
}

#[test]
fn anonymous_is_read_only() {
    let server = Server::start();
    let mut ftp = connect(&server, "anonymous", Mode::Passive);
    let text = ftp.retr_as_buffer("readme.txt").unwrap().into_inner();
    assert_eq!(text, b"hello anonymous\n");
    assert!(ftp.put_file("x.txt", &mut Cursor::new(b"x")).is_err());
    assert!(ftp.mkdir("d").is_err());
    assert!(ftp.rm("readme.txt").is_err());
    assert!(!server.anon.join("x.txt").exists());
    assert!(server.anon.join("readme.txt").exists());
}

#[test]
fn read_only_user_cannot_change_anything() {
    let server = Server::start();
    let mut ftp = connect(&server, "bob", Mode::Passive);
    assert_eq!(
        ftp.retr_as_buffer("b.txt").unwrap().into_inner(),
        b"bob's file\n"
    );
    assert!(ftp.put_file("new.txt", &mut Cursor::new(b"x")).is_err());
    assert!(ftp.rm("b.txt").is_err());
    assert!(ftp.rename("b.txt", "c.txt").is_err());
    assert!(ftp.mkdir("d").is_err());
    assert!(server.bob.join("b.txt").exists());
    assert!(!server.bob.join("new.txt").exists());
}

#[test]
fn wrong_password_and_unknown_user_get_the_same_530() {
    let server = Server::start();
    let mut a = FtpStream::connect(server.addr).unwrap();
    let e1 = a.login("alice", "wrong").unwrap_err().to_string();
    let mut b = FtpStream::connect(server.addr).unwrap();
    let e2 = b.login("mallory", "wrong").unwrap_err().to_string();
    assert!(e1.contains("530"), "{e1}");
    assert_eq!(e1, e2);
}

/// Modes of what alice's uploads (STOR through a temporary file renamed
/// into place, APPE creating, STOU) and MKD create, with `server.umask`
/// set by `extra` and the server started under umask 077.
fn created_modes(extra: &'static str) -> [u32; 4] {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start_with(crate::harness::Setup {
        extra_server: extra,
        start_umask: Some("077"),
        ..Default::default()
    });
    let mut ftp = connect(&server, "alice", Mode::Passive);
    ftp.put_file("stor.txt", &mut Cursor::new(b"s")).unwrap();
    ftp.append_file("appe.txt", &mut Cursor::new(b"a")).unwrap();
    ftp.mkdir("dir").unwrap();
    ftp.quit().unwrap();
    let mut raw = crate::harness::Raw::login(server.addr, "alice");
    let data = raw.pasv();
    assert!(raw.cmd("STOU stou.txt").starts_with("150 FILE: stou.txt"));
    drop(data);
    assert!(raw.reply().starts_with("226 "));
    let mode = |name: &str| {
        let m = std::fs::metadata(server.alice.join(name)).unwrap();
        m.permissions().mode() & 0o777
    };
    [
        mode("stor.txt"),
        mode("appe.txt"),
        mode("stou.txt"),
        mode("dir"),
    ]
}

#[test]
fn server_umask_027_gives_uploads_0640_and_directories_0750() {
    assert_eq!(
        created_modes("umask = \"027\""),
        [0o640, 0o640, 0o640, 0o750]
    );
}

/// The default replaces whatever umask the server was started with.
#[test]
fn default_umask_gives_uploads_0644_and_directories_0755() {
    assert_eq!(created_modes(""), [0o644, 0o644, 0o644, 0o755]);
}
