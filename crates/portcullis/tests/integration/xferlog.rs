//! The transfer log: real transfers, an aborted one, and a reopen on
//! SIGUSR1 after the file was moved away (as logrotate does).

use std::io::{Cursor, Write};
use std::time::Duration;

use suppaftp::types::{FileType, Mode};
use suppaftp::FtpStream;

use crate::harness::{random_bytes, Raw, Server, Setup, PASSWORD};

/// One xferlog line, split into its fields (the time is the first five).
struct Line {
    seconds: u64,
    host: String,
    bytes: u64,
    path: String,
    kind: String,
    direction: String,
    access: String,
    user: String,
    status: String,
}

fn parse(text: &str) -> Vec<Line> {
    text.lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').filter(|f| !f.is_empty()).collect();
            assert_eq!(f.len(), 18, "{l:?}");
            assert_eq!(f[4].len(), 4, "year: {l:?}");
            assert_eq!(f[10], "_", "special action: {l:?}");
            assert_eq!(f[14..17], ["ftp", "0", "*"], "{l:?}");
            Line {
                seconds: f[5].parse().unwrap(),
                host: f[6].into(),
                bytes: f[7].parse().unwrap(),
                path: f[8].into(),
                kind: f[9].into(),
                direction: f[11].into(),
                access: f[12].into(),
                user: f[13].into(),
                status: f[17].into(),
            }
        })
        .collect()
}

#[test]
fn xferlog_records_transfers_and_reopens_on_sigusr1() {
    let server = Server::start_with(Setup {
        xferlog: true,
        ..Setup::default()
    });
    let log = server.xferlog();
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "", "created empty");

    let mut ftp = FtpStream::connect(server.addr).unwrap();
    ftp.set_mode(Mode::ExtendedPassive);
    ftp.login("alice", PASSWORD).unwrap();
    ftp.transfer_type(FileType::Binary).unwrap();
    let data = random_bytes(300_000 + 11, 3);
    ftp.put_file("a file.bin", &mut Cursor::new(&data)).unwrap();
    let back = ftp.retr_as_buffer("a file.bin").unwrap().into_inner();
    assert_eq!(back, data);
    ftp.list(None).unwrap();
    ftp.quit().unwrap();

    // An upload aborted after exactly 5000 bytes.
    let mut c = Raw::login(server.addr, "alice");
    let mut up = c.pasv();
    assert!(c.cmd("STOR cut.bin").starts_with("150 "));
    up.write_all(&[7u8; 5000]).unwrap();
    let mut stat = c.cmd("STAT");
    for _ in 0..100 {
        if stat.contains("5000 bytes transferred") {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        stat = c.cmd("STAT");
    }
    assert!(stat.contains("5000 bytes transferred"), "{stat}");
    assert_eq!(c.cmd("ABOR"), "426 Connection closed; transfer aborted.");
    assert_eq!(c.reply(), "226 ABOR successful.");
    drop(up);

    // Each record is written before the transfer's final reply.
    let lines = parse(&std::fs::read_to_string(&log).unwrap());
    assert_eq!(lines.len(), 3, "the listing is left out");
    let (up, down, cut) = (&lines[0], &lines[1], &lines[2]);
    assert_eq!(up.path, "/a_file.bin", "the space becomes _");
    assert_eq!(
        (up.bytes, up.direction.as_str(), up.status.as_str()),
        (data.len() as u64, "i", "c")
    );
    assert_eq!(down.path, "/a_file.bin");
    assert_eq!(
        (down.bytes, down.direction.as_str(), down.status.as_str()),
        (data.len() as u64, "o", "c")
    );
    assert_eq!(cut.path, "/cut.bin");
    assert_eq!(
        (cut.bytes, cut.direction.as_str(), cut.status.as_str()),
        (5000, "i", "i")
    );
    for l in &lines {
        assert_eq!((l.kind.as_str(), l.access.as_str()), ("b", "r"));
        assert_eq!((l.user.as_str(), l.host.as_str()), ("alice", "127.0.0.1"));
        assert!(l.seconds >= 1);
    }

    // Rotate: move the file away, SIGUSR1, transfer again (anonymous, TYPE A).
    let rotated = server.dir.path().join("xferlog.1");
    std::fs::rename(&log, &rotated).unwrap();
    server.signal("USR1");
    let mut reopened = false;
    for _ in 0..100 {
        if server.log().contains("xferlog reopened") {
            reopened = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(reopened, "{}", server.log());
    let mut c = Raw::login(server.addr, "anonymous");
    assert!(c.cmd("TYPE A").starts_with("200 "));
    let down = c.pasv();
    assert!(c.cmd("RETR readme.txt").starts_with("150 "));
    assert_eq!(crate::harness::read_all(down), b"hello anonymous\r\n");
    assert_eq!(c.reply(), "226 Transfer complete.");

    assert_eq!(parse(&std::fs::read_to_string(&rotated).unwrap()).len(), 3);
    let fresh = parse(&std::fs::read_to_string(&log).unwrap());
    assert_eq!(fresh.len(), 1);
    let l = &fresh[0];
    assert_eq!(l.path, "/readme.txt");
    // The file's bytes (16), not the 17 on the wire after TYPE A's CRLF.
    assert_eq!(
        (l.bytes, l.kind.as_str(), l.direction.as_str()),
        (16, "a", "o")
    );
    assert_eq!((l.access.as_str(), l.user.as_str()), ("a", "anonymous"));
    assert_eq!(l.status, "c");
}

/// logrotate's postrotate sends SIGUSR1 whether or not this server writes
/// an xferlog: without one the signal is logged, never the end of the
/// process (the default action of an unhandled SIGUSR1).
#[test]
fn sigusr1_without_an_xferlog_does_not_stop_the_server() {
    let server = Server::start_with(Setup {
        watch_log: true,
        ..Setup::default()
    });
    server.signal("USR1");
    server.wait_for_log("no xferlog to reopen", 0, Duration::from_secs(10));
    let mut c = Raw::login(server.addr, "alice");
    assert!(c.cmd("NOOP").starts_with("200 "));
    assert!(c.cmd("QUIT").starts_with("221 "));
}
