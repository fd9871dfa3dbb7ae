//! Hostile clients: connection floods, password guessing, stalled and
//! vanishing transfers, slowloris, traversal through every path-taking
//! command, garbage. Each gets its refusal, and the server keeps serving
//! everyone else with no file changed that should not be.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::harness::{random_bytes, read_all, Raw, Server, Setup, PASSWORD};

fn code(reply: &str) -> &str {
    &reply[..3]
}

/// Read the greeting of a fresh connection (220 or 421), without asserting.
fn greeting(server: &Server) -> (TcpStream, String) {
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap_or(0);
    (s, String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn connection_flood_from_one_address() {
    let server = Server::start_with(Setup {
        limits: "max_sessions_per_ip = 20\nmax_sessions = 30",
        ..Setup::default()
    });
    // Held open at once: the first 20 are served, the rest refused with 421.
    let mut held = Vec::new();
    let mut refused = 0;
    for _ in 0..60 {
        let (s, g) = greeting(&server);
        if g.starts_with("220 ") {
            held.push(s);
        } else {
            assert!(
                g.starts_with("421 ") && g.contains("from your address"),
                "{g}"
            );
            refused += 1;
        }
    }
    assert_eq!(held.len(), 20);
    assert_eq!(refused, 40);
    drop(held);
    // Two thousand quick connect/close cycles: every slot comes back.
    for _ in 0..2000 {
        drop(TcpStream::connect(server.addr).unwrap());
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_s, g) = greeting(&server);
        if g.starts_with("220 ") {
            break;
        }
        assert!(Instant::now() < deadline, "slots not freed: {g}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut c = Raw::login(server.addr, "alice");
    assert_eq!(code(&c.cmd("NOOP")), "200");
}

#[test]
fn password_guessing_gets_the_address_banned() {
    let server = Server::start_with(Setup {
        limits: "max_login_failures = 3\nban_time = \"2s\"",
        ..Setup::default()
    });
    let mut c = Raw::connect(server.addr);
    for i in 0..3 {
        c.cmd("USER alice");
        let r = c.cmd("PASS wrong");
        if i < 2 {
            assert_eq!(code(&r), "530", "{r}");
        } else {
            assert!(r.starts_with("421 ") && r.contains("banned for 2 s"), "{r}");
            assert!(c.closed());
        }
    }
    // New connections, even with the right password, are turned away.
    let (_s, g) = greeting(&server);
    assert!(g.starts_with("421 ") && g.contains("failed logins"), "{g}");
    assert!(server
        .log()
        .contains("address banned after repeated failed logins"));
    // Once the ban is over, the right password works.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_s, g) = greeting(&server);
        if g.starts_with("220 ") {
            break;
        }
        assert!(Instant::now() < deadline, "ban never lifted");
        std::thread::sleep(Duration::from_millis(200));
    }
    Raw::login(server.addr, "alice");
}

#[test]
fn network_lists() {
    let server = Server::start_with(Setup {
        limits: "deny = [\"127.0.0.0/8\"]",
        ..Setup::default()
    });
    let (_s, g) = greeting(&server);
    assert!(g.starts_with("421 Access denied"), "{g}");

    let server = Server::start_with(Setup {
        alice_extra: "allow_from = [\"10.0.0.0/8\"]",
        ..Setup::default()
    });
    let mut c = Raw::connect(server.addr);
    c.cmd("USER alice");
    assert_eq!(code(&c.cmd(&format!("PASS {PASSWORD}"))), "530");
    Raw::login(server.addr, "bob");
}

#[test]
fn stalled_transfers_are_aborted() {
    let server = Server::start_with(Setup {
        limits: "data_timeout = \"1s\"",
        ..Setup::default()
    });
    std::fs::write(server.alice.join("big.bin"), random_bytes(32 << 20, 1)).unwrap();
    let mut c = Raw::login(server.addr, "alice");
    // A download nobody reads: the socket buffers fill, then nothing moves.
    let data = c.pasv();
    assert_eq!(code(&c.cmd("RETR big.bin")), "150");
    let t = Instant::now();
    let r = c.reply();
    assert!(r.starts_with("426 ") && r.contains("stalled"), "{r}");
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    drop(data);
    // An upload that sends nothing: aborted, and no file appears.
    let data = c.pasv();
    assert_eq!(code(&c.cmd("STOR silent.bin")), "150");
    let r = c.reply();
    assert!(r.starts_with("426 "), "{r}");
    drop(data);
    assert!(!server.alice.join("silent.bin").exists());
    // One that stops after 200 KB (on its own thread by then): the same.
    let mut data = c.pasv();
    assert_eq!(code(&c.cmd("STOR silent.bin")), "150");
    data.write_all(&random_bytes(200_000, 9)).unwrap();
    let t = Instant::now();
    let r = c.reply();
    assert!(r.starts_with("426 ") && r.contains("stalled"), "{r}");
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
    drop(data);
    assert!(!server.alice.join("silent.bin").exists());
    assert_eq!(code(&c.cmd("NOOP")), "200");
}

#[test]
fn bandwidth_is_limited_per_session() {
    let server = Server::start_with(Setup {
        limits: "session_download_rate = \"2M\"",
        ..Setup::default()
    });
    let body = random_bytes(5 << 20, 2);
    std::fs::write(server.alice.join("f.bin"), &body).unwrap();
    let mut c = Raw::login(server.addr, "alice");
    let data = c.pasv();
    let t = Instant::now();
    assert_eq!(code(&c.cmd("RETR f.bin")), "150");
    let got = read_all(data);
    let took = t.elapsed();
    assert!(c.reply().starts_with("226 "));
    assert!(got == body);
    // 5 MiB at 2 MiB/s, less the burst: about 2.5 s.
    assert!(
        took >= Duration::from_millis(2000) && took < Duration::from_secs(8),
        "{took:?}"
    );
}

#[test]
fn clients_vanishing_mid_transfer() {
    let server = Server::start_with(Setup {
        watch_log: true,
        ..Setup::default()
    });
    // What the server logs once a session is over (its control connection
    // seen closed, its transfer stopped): the order of the events below is
    // waited for there, not slept for.
    let gone = "session end";
    std::fs::write(server.alice.join("big.bin"), random_bytes(16 << 20, 3)).unwrap();
    {
        let mut c = Raw::login(server.addr, "alice");
        let mut data = c.pasv();
        assert_eq!(code(&c.cmd("RETR big.bin")), "150");
        let mut buf = [0u8; 4096];
        data.read_exact(&mut buf).unwrap();
        // Both connections vanish.
    }
    server.wait_for_log(gone, 0, Duration::from_secs(10));
    {
        let mut c = Raw::login(server.addr, "alice");
        let mut data = c.pasv();
        assert_eq!(code(&c.cmd("STOR half.bin")), "150");
        data.write_all(&random_bytes(100_000, 4)).unwrap();
        let _ = c.stream.shutdown(std::net::Shutdown::Both);
        // The control connection is gone, and the server has seen it go;
        // the data connection then resets.
        drop(c);
        server.wait_for_log(gone, 1, Duration::from_secs(10));
        drop(data);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.alice.join("half.bin").exists()
        || std::fs::read_dir(&server.alice).unwrap().count() != 1
    {
        assert!(
            Instant::now() < deadline,
            "abandoned upload left files: {:?}",
            std::fs::read_dir(&server.alice)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut c = Raw::login(server.addr, "alice");
    assert_eq!(code(&c.cmd("SIZE big.bin")), "213");
}

#[test]
fn passive_port_exhaustion_answers_425_and_ports_come_back() {
    let server = Server::start_with(Setup {
        passive_ports: crate::harness::passive_ports(2),
        ..Setup::default()
    });
    let mut a = Raw::login(server.addr, "alice");
    let mut b = Raw::login(server.addr, "alice");
    let mut c = Raw::login(server.addr, "alice");
    assert_eq!(code(&a.cmd("PASV")), "227");
    assert_eq!(code(&b.cmd("EPSV")), "229");
    let r = c.cmd("PASV");
    assert_eq!(code(&r), "425", "{r}");
    // A session that vanishes while holding a port gives it back.
    drop(a);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = c.cmd("PASV");
        if r.starts_with("227 ") {
            break;
        }
        assert!(Instant::now() < deadline, "port never returned: {r}");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(code(&b.cmd("NOOP")), "200");
}

#[test]
fn slowloris_cannot_hold_a_slot() {
    let server = Server::start_with(Setup {
        extra_server: "login_timeout = \"2s\"",
        ..Setup::default()
    });
    let mut s = TcpStream::connect(server.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    let t = Instant::now();
    let mut seen = Vec::new();
    // One byte every 300 ms, never a whole line, for at most 10 s.
    for b in b"USER aliceeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee"
        .iter()
        .cycle()
        .take(33)
    {
        if s.write_all(&[*b]).is_err() {
            break;
        }
        let mut buf = [0u8; 256];
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
    }
    let text = String::from_utf8_lossy(&seen);
    assert!(text.contains("421 Timeout"), "{text}");
    assert!(t.elapsed() < Duration::from_secs(8), "{:?}", t.elapsed());
}

/// A client that pipelines commands and never reads the replies: once its
/// receive window is full the server's write waits, and the login timeout
/// still ends the session (the write is bounded by it) instead of the
/// connection holding a place for as long as the client likes.
#[test]
fn a_client_that_never_reads_cannot_outlast_the_login_timeout() {
    let server = Server::start_with(Setup {
        extra_server: "login_timeout = \"2s\"",
        ..Setup::default()
    });
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    sock.connect(&server.addr.into()).unwrap();
    let mut s: TcpStream = sock.into();
    s.set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let t = Instant::now();
    let lines = b"USER nobody-at-all\r\n".repeat(1000);
    // Bounded: at most 30 s of writing, 20 KB a turn, never a read.
    let mut refused = false;
    while t.elapsed() < Duration::from_secs(30) {
        match s.write(&lines) {
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => {
                refused = true;
                break;
            }
        }
    }
    assert!(
        refused,
        "the session was still open after {:?}",
        t.elapsed()
    );
    assert!(t.elapsed() < Duration::from_secs(12), "{:?}", t.elapsed());
}

/// Every path-taking command with `..`, absolute and encoded escapes: all
/// stay inside the root; nothing outside changes.
#[test]
fn traversal_through_every_path_command() {
    let server = Server::start();
    let outside = server.dir.path().join("outside.txt");
    std::fs::write(&outside, b"keep").unwrap();
    let before: Vec<_> = std::fs::read_dir(server.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let mut c = Raw::login(server.addr, "alice");
    for p in [
        "../outside.txt",
        "/../outside.txt",
        "../../../../outside.txt",
        "sub/../../outside.txt",
    ] {
        for cmd in ["SIZE", "MDTM", "DELE", "RMD", "MLST", "RNFR", "STAT"] {
            let r = c.cmd(&format!("{cmd} {p}"));
            assert!(
                r.starts_with('5') || r.starts_with("213-") || r.starts_with("211"),
                "{cmd} {p}: {r}"
            );
        }
        for cmd in ["RETR", "LIST", "NLST", "MLSD"] {
            let data = c.pasv();
            let r = c.cmd(&format!("{cmd} {p}"));
            if r.starts_with("150") {
                // Listing the clamped path (inside the root) is fine.
                let listed = String::from_utf8_lossy(&read_all(data)).into_owned();
                assert!(!listed.contains("keep"), "{listed}");
                assert!(c.reply().starts_with("226"));
            } else {
                assert!(r.starts_with('5'), "{cmd} {p}: {r}");
            }
        }
        // Uploads and MKD land inside the root, under the clamped name.
        for cmd in ["STOR", "APPE", "STOU"] {
            let mut data = c.pasv();
            let r = c.cmd(&format!("{cmd} {p}"));
            if r.starts_with("150") {
                data.write_all(b"x").unwrap();
                drop(data);
                assert!(c.reply().starts_with("226"));
            }
        }
        let _ = c.cmd(&format!("MKD {p}.d"));
        c.cmd(&format!("RNFR {p}"));
        let _ = c.cmd("RNTO ../../moved.txt");
    }
    assert_eq!(std::fs::read(&outside).unwrap(), b"keep");
    let after: Vec<_> = std::fs::read_dir(server.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(before.len(), after.len(), "{before:?} -> {after:?}");
    // What was written went into alice's root (some of it renamed or
    // deleted again by the later commands).
    assert!(std::fs::read_dir(&server.alice).unwrap().count() > 0);
}

#[test]
fn garbage_and_binary_input() {
    let server = Server::start();
    let mut c = Raw::connect(server.addr);
    c.send(b"\x00\x01\x02\xff\xfe garbage\r\n");
    let r = c.reply();
    assert!(r.starts_with('5'), "{r}");
    c.send(b"USER \xc3\x28\r\n");
    assert_eq!(code(&c.reply()), "501");
    c.send(b"RETR a\x00b\r\n");
    assert_eq!(code(&c.reply()), "530");
    c.send(&[b'A'; 100_000]);
    c.send(b"\r\n");
    assert_eq!(code(&c.reply()), "500");
    assert_eq!(code(&c.cmd("NOOP")), "200");
    let mut other = Raw::login(server.addr, "bob");
    assert_eq!(code(&other.cmd("PWD")), "257");
}

/// `write` without `overwrite`: a drop box. New files yes, existing ones
/// neither replaced, appended to nor resumed; STOU picks a fresh name.
#[test]
fn write_without_overwrite_is_a_drop_box() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("drop");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("old.txt"), b"original").unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nallow_root = true\n[[users]]\nname = \"carol\"\npassword_hash = \"{}\"\nroot = \"{}\"\npermissions = [\"read\", \"write\"]\n",
            crate::harness::password_hash(),
            root.display()
        ),
    )
    .unwrap();
    let server = Server::start_from_config(dir, &cfg);
    let mut c = Raw::login(server.addr, "carol");
    let _d = c.pasv();
    let r = c.cmd("STOR old.txt");
    assert!(r.starts_with("550 ") && r.contains("overwrite"), "{r}");
    let _d = c.pasv();
    assert_eq!(code(&c.cmd("APPE old.txt")), "550");
    c.cmd("REST 3");
    let _d = c.pasv();
    assert_eq!(code(&c.cmd("STOR old.txt")), "550");
    let mut d = c.pasv();
    assert_eq!(code(&c.cmd("STOR new.txt")), "150");
    d.write_all(b"new").unwrap();
    drop(d);
    assert_eq!(code(&c.reply()), "226");
    // A file of the same name created by someone else during the upload
    // (small, and past 64 KiB) is not replaced.
    for size in [10usize, 200_000] {
        let mut d = c.pasv();
        assert_eq!(code(&c.cmd("STOR late.bin")), "150");
        d.write_all(&vec![1u8; size]).unwrap();
        std::fs::write(root.join("late.bin"), b"theirs").unwrap();
        drop(d);
        let r = c.reply();
        assert!(r.starts_with("451 ") && r.contains("appeared"), "{r}");
        assert_eq!(std::fs::read(root.join("late.bin")).unwrap(), b"theirs");
        std::fs::remove_file(root.join("late.bin")).unwrap();
    }
    let mut d = c.pasv();
    let r = c.cmd("STOU old.txt");
    assert!(r.starts_with("150 FILE: old.txt.1"), "{r}");
    d.write_all(b"unique").unwrap();
    drop(d);
    assert_eq!(code(&c.reply()), "226");
    let facts = c.cmd("MLST old.txt");
    assert!(facts.contains("perm=r;"), "{facts}");
    assert_eq!(std::fs::read(root.join("old.txt")).unwrap(), b"original");
    assert_eq!(std::fs::read(root.join("new.txt")).unwrap(), b"new");
    assert_eq!(std::fs::read(root.join("old.txt.1")).unwrap(), b"unique");
}

/// A full disk: the upload gets 552 and leaves nothing behind; the file it
/// would have replaced is intact. Needs root (a small tmpfs is mounted).
#[test]
fn disk_full_answers_552_and_leaves_no_partial_file() {
    let root_user = std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false);
    if !root_user {
        assert!(std::env::var("CI").is_err(), "CI runs the tests as root");
        crate::harness::skip("root (mounting a small tmpfs)");
        return;
    }
    struct Mount(std::path::PathBuf);
    impl Drop for Mount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let ok = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mount tmpfs");
    let _mount = Mount(small.clone());
    std::fs::write(small.join("keep.bin"), b"the good version").unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nallow_root = true\n[passive]\nports = \"{}\"\n[[users]]\nname = \"carol\"\npassword_hash = \"{}\"\nroot = \"{}\"\npermissions = [\"read\", \"write\", \"overwrite\"]\n",
            crate::harness::passive_ports(4),
            crate::harness::password_hash(),
            small.display()
        ),
    )
    .unwrap();
    let server = Server::start_from_config(tempfile::tempdir().unwrap(), &cfg);
    let mut c = Raw::login(server.addr, "carol");
    for name in ["keep.bin", "new.bin"] {
        let mut d = c.pasv();
        assert_eq!(code(&c.cmd(&format!("STOR {name}"))), "150");
        // 3 MiB into a 1 MiB filesystem; the server may stop reading early.
        let _ = d.write_all(&random_bytes(3 << 20, 9));
        drop(d);
        let r = c.reply();
        assert!(r.starts_with("552 "), "{name}: {r}");
    }
    assert_eq!(
        std::fs::read(small.join("keep.bin")).unwrap(),
        b"the good version"
    );
    let left: Vec<_> = std::fs::read_dir(&small)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["keep.bin"], "partial files left behind");
    assert_eq!(code(&c.cmd("NOOP")), "200");
}

/// A file truncated in place while it is being sent: the download ends
/// with 451, never with 226 for a short copy. Binary (sendfile) and ASCII
/// (the copying path) alike.
#[test]
fn a_file_truncated_during_a_download_is_not_reported_complete() {
    let server = Server::start();
    let mut c = Raw::login(server.addr, "alice");
    for ty in ["I", "A"] {
        let path = server.alice.join("shrinks.bin");
        std::fs::write(&path, vec![b'x'; 48 << 20]).unwrap();
        assert_eq!(code(&c.cmd(&format!("TYPE {ty}"))), "200");
        let mut data = c.pasv();
        assert_eq!(code(&c.cmd("RETR shrinks.bin")), "150");
        // The client reads a little; the server is held up by full socket
        // buffers, far from the end, when the file loses most of its bytes.
        let mut buf = vec![0u8; 64 << 10];
        data.read_exact(&mut buf).unwrap();
        // Held up means our receive buffer holds what the server sent
        // after those bytes and we have not read: wait for that to be
        // queued (a bounded number of looks at the socket, no sleep).
        let mut queued = vec![0u8; 256 << 10];
        let deadline = Instant::now() + Duration::from_secs(10);
        while data.peek(&mut queued).unwrap() < 32 << 10 {
            assert!(
                Instant::now() < deadline,
                "TYPE {ty}: the server sent nothing more"
            );
            std::thread::yield_now();
        }
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
        let got = 64 * 1024 + read_all(data).len();
        let r = c.reply();
        assert!(
            r.starts_with("451 ") && r.contains("changed"),
            "TYPE {ty}: {r}"
        );
        assert!(got < 48 << 20, "TYPE {ty}: {got}");
    }
    assert_eq!(code(&c.cmd("NOOP")), "200");
}
