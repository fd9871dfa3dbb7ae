//! Reply codes and edge cases over raw TCP, asserted byte for byte.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use crate::harness::{read_all, Raw, Server, Setup};

fn code(reply: &str) -> &str {
    &reply[..3]
}

#[test]
fn greeting_and_pre_login_sequencing() {
    let server = Server::start();
    let mut c = Raw::connect(server.addr);
    assert_eq!(c.cmd("PWD"), "530 Please login with USER and PASS.");
    assert_eq!(c.cmd("RETR x"), "530 Please login with USER and PASS.");
    assert_eq!(c.cmd("SITE HELP"), "530 Please login with USER and PASS.");
    assert_eq!(c.cmd("PASS x"), "503 Login with USER first.");
    assert_eq!(c.cmd("SYST"), "215 UNIX Type: L8");
    assert_eq!(c.cmd("NOOP"), "200 NOOP ok.");
    assert_eq!(c.cmd("QUIT"), "221 Goodbye.");
    assert!(c.closed());
}

#[test]
fn unknown_bad_and_unsupported_commands() {
    let server = Server::start();
    let mut c = Raw::login(server.addr, "alice");
    assert_eq!(c.cmd("XYZZ"), "502 Command XYZZ not implemented.");
    assert_eq!(c.cmd("REIN"), "502 Command REIN not implemented.");
    assert_eq!(code(&c.cmd("RETR")), "501");
    assert_eq!(code(&c.cmd("TYPE E")), "504");
    assert_eq!(code(&c.cmd("MODE B")), "504");
    assert_eq!(code(&c.cmd("STRU R")), "504");
    assert_eq!(code(&c.cmd("PORT 1,2,3")), "501");
    assert_eq!(code(&c.cmd("REST abc")), "501");
    assert_eq!(c.cmd("SITE UMASK 022"), "502 SITE UMASK not implemented.");
    assert_eq!(c.cmd("RNTO x"), "503 RNFR required first.");
    assert_eq!(c.cmd("ACCT x"), "202 ACCT not needed on this server.");
    assert_eq!(c.cmd("ALLO 100"), "202 ALLO not needed on this server.");
    assert_eq!(c.cmd("TYPE A"), "200 Switching to ASCII mode.");
    assert_eq!(c.cmd("TYPE I"), "200 Switching to Binary mode.");
    assert_eq!(c.cmd("MODE S"), "200 Mode set to S.");
    assert_eq!(c.cmd("STRU F"), "200 Structure set to F.");
    assert_eq!(c.cmd("ABOR"), "225 No transfer to abort.");
    // Garbage and invalid UTF-8 get replies and the session goes on.
    c.send(b"\x01\x02\x03\r\n");
    assert_eq!(code(&c.reply()), "500");
    c.send(b"CWD \xff\xfe\r\n");
    assert_eq!(code(&c.reply()), "501");
    assert_eq!(c.cmd("NOOP"), "200 NOOP ok.");
}

#[test]
fn feat_help_stat_are_multiline() {
    let server = Server::start();
    let mut c = Raw::connect(server.addr);
    let feat = c.cmd("FEAT");
    assert!(
        feat.starts_with(
            "211-Features:\n AVBL\n EPRT\n EPSV\n HASH SHA-1;SHA-256*;SHA-512;MD5;CRC32\n MDTM\n MFMT\n \
             MLST type*;size*;modify*;perm*;unix.mode*;\n"
        ),
        "{feat}"
    );
    assert!(
        feat.contains("\n UTF8\n")
            && feat.contains("\n REST STREAM\n")
            && feat.ends_with("\n211 End"),
        "{feat}"
    );
    let help = c.cmd("HELP");
    assert!(
        help.starts_with("214-") && help.ends_with("214 Help OK.") && help.contains("MLSD"),
        "{help}"
    );
    let mut c = Raw::login(server.addr, "alice");
    assert_eq!(c.cmd("OPTS UTF8 ON"), "200 UTF8 mode is always on.");
    assert_eq!(
        c.cmd("OPTS MLST type;size;bogus;"),
        "200 MLST OPTS type;size;"
    );
    let stat = c.cmd("STAT");
    assert!(
        stat.starts_with("211-")
            && stat.contains("Logged in as alice")
            && stat.ends_with("211 End of status"),
        "{stat}"
    );
    std::fs::write(server.alice.join("f.txt"), b"abc").unwrap();
    let stat = c.cmd("STAT /");
    assert!(
        stat.starts_with("213-Status of /:\n")
            && stat.contains(" f.txt\n")
            && stat.ends_with("213 End of status"),
        "{stat}"
    );
    let mlst = c.cmd("MLST f.txt");
    assert!(
        mlst.starts_with("250-Listing /f.txt\n type=file;size=3; /f.txt\n250 End"),
        "{mlst}"
    );
    assert_eq!(
        c.cmd("SITE HELP"),
        "214-SITE commands recognized:\n CHMOD HELP QUOTA\n214 Help OK."
    );
}

#[test]
fn overlong_line_is_refused_and_session_survives() {
    let server = Server::start();
    let mut c = Raw::connect(server.addr);
    let long = vec![b'A'; 100_000];
    c.send(&long);
    c.send(b"\r\n");
    assert_eq!(c.reply(), "500 Command line too long.");
    assert_eq!(c.cmd("NOOP"), "200 NOOP ok.");
}

#[test]
fn telnet_iac_around_abor_is_tolerated() {
    let server = Server::start();
    let mut c = Raw::login(server.addr, "alice");
    c.send(&[255, 244, 255, 242]);
    c.send(b"ABOR\r\n");
    assert_eq!(c.reply(), "225 No transfer to abort.");
}

#[test]
fn paths_cannot_leave_the_root() {
    let server = Server::start();
    std::fs::write(server.dir.path().join("secret.txt"), b"secret").unwrap();
    std::os::unix::fs::symlink(server.dir.path(), server.alice.join("escape")).unwrap();
    let mut c = Raw::login(server.addr, "alice");
    assert_eq!(code(&c.cmd("CWD ../../..")), "250");
    assert_eq!(c.cmd("PWD"), "257 \"/\" is the current directory.");
    assert_eq!(code(&c.cmd("SIZE ../secret.txt")), "550");
    assert_eq!(code(&c.cmd("SIZE escape/secret.txt")), "550");
    assert_eq!(code(&c.cmd("CWD escape")), "550");
    assert_eq!(code(&c.cmd("SIZE ..\\secret.txt")), "553");
    assert_eq!(code(&c.cmd("DELE /../secret.txt")), "550");
    let data = c.pasv();
    let r = c.cmd("RETR escape/secret.txt");
    assert_eq!(code(&r), "550", "{r}");
    drop(data);
    assert!(server.dir.path().join("secret.txt").exists());
}

#[test]
fn port_bounce_and_privileged_ports_are_refused() {
    let server = Server::start();
    let mut c = Raw::login(server.addr, "alice");
    let r = c.cmd("PORT 127,0,0,2,200,0");
    assert!(
        r.starts_with("501 PORT refused: the data address must be your own (127.0.0.1)"),
        "{r}"
    );
    assert_eq!(code(&c.cmd("PORT 127,0,0,1,0,21")), "501");
    assert_eq!(code(&c.cmd("EPRT |1|10.1.2.3|5000|")), "501");
    assert_eq!(code(&c.cmd("EPRT |2|::1|5000|")), "522");
    // Nothing was armed by the refused commands.
    assert_eq!(c.cmd("LIST"), "425 Use PORT, EPRT, PASV or EPSV first.");
}

#[test]
fn passive_connection_from_a_foreign_address_is_refused() {
    let server = Server::start();
    std::fs::write(server.alice.join("f.txt"), b"payload").unwrap();
    let mut c = Raw::login(server.addr, "alice");
    let port = c.epsv_port();
    // A third party (another loopback address) grabs the port first.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&"127.0.0.2:0".parse::<SocketAddr>().unwrap().into())
        .unwrap();
    sock.connect(&SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap();
    let mut thief: TcpStream = sock.into();
    thief
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let real = TcpStream::connect(("127.0.0.1", port)).unwrap();
    assert!(c.cmd("RETR f.txt").starts_with("150 "));
    assert_eq!(read_all(real), b"payload");
    assert_eq!(c.reply(), "226 Transfer complete.");
    let mut buf = [0u8; 16];
    assert_eq!(thief.read(&mut buf).unwrap_or(0), 0, "the thief got data");
    assert!(server
        .log()
        .contains("refused a passive data connection from a foreign address"));
}

#[test]
fn active_mode_connects_back_and_ascii_converts_line_ends() {
    let server = Server::start();
    std::fs::write(server.alice.join("unix.txt"), b"a\nb\n").unwrap();
    let mut c = Raw::login(server.addr, "alice");
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    let r = c.cmd(&format!("PORT 127,0,0,1,{},{}", p >> 8, p & 255));
    assert!(r.starts_with("200 PORT command successful"), "{r}");
    assert_eq!(c.cmd("TYPE A"), "200 Switching to ASCII mode.");
    assert!(c.cmd("RETR unix.txt").starts_with("150 Opening ASCII mode"));
    let (s, from) = l.accept().unwrap();
    assert_eq!(read_all(s), b"a\r\nb\r\n");
    assert_eq!(c.reply(), "226 Transfer complete.");
    // The log says which source port the connection came from.
    let log = server.log();
    assert!(
        log.contains(&format!("source_port={}", from.port())),
        "{log}"
    );
    // ASCII upload: CRLF stored as LF.
    let r = c.cmd(&format!("EPRT |1|127.0.0.1|{p}|"));
    assert!(r.starts_with("200 EPRT command successful"), "{r}");
    assert!(c.cmd("STOR dos.txt").starts_with("150 "));
    let (mut s, _) = l.accept().unwrap();
    s.write_all(b"x\r\ny\r\n").unwrap();
    drop(s);
    assert_eq!(c.reply(), "226 Transfer complete.");
    assert_eq!(
        std::fs::read(server.alice.join("dos.txt")).unwrap(),
        b"x\ny\n"
    );
}

#[test]
fn abor_stat_and_noop_during_a_transfer() {
    let server = Server::start();
    let mut c = Raw::login(server.addr, "alice");
    // A small upload is read on the runtime; past 64 KiB a plain binary
    // upload moves to a thread of its own: ABOR must stop both.
    for sent in [5000usize, 300_000] {
        let data = c.pasv();
        assert!(c.cmd("STOR slow.bin").starts_with("150 "));
        let mut data = data;
        data.write_all(&vec![7u8; sent]).unwrap();
        // The transfer is still running: these are answered right away.
        assert_eq!(c.cmd("NOOP"), "200 NOOP ok.");
        let want = format!("211-Transfer status:\n STOR in progress, {sent} bytes transferred");
        let mut stat = c.cmd("STAT");
        for _ in 0..50 {
            if stat.starts_with(&want) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
            stat = c.cmd("STAT");
        }
        assert!(stat.starts_with(&want), "{stat}");
        assert_eq!(c.cmd("ABOR"), "426 Connection closed; transfer aborted.");
        assert_eq!(c.reply(), "226 ABOR successful.");
        // The aborted upload left no file claiming success.
        assert!(!server.alice.join("slow.bin").exists());
        assert_eq!(c.cmd("NOOP"), "200 NOOP ok.");
        drop(data);
    }
}

#[test]
fn commands_sent_during_a_transfer_wait_their_turn() {
    let server = Server::start();
    std::fs::write(server.alice.join("f.txt"), b"data").unwrap();
    let mut c = Raw::login(server.addr, "alice");
    let data = c.pasv();
    assert!(c.cmd("STOR up.bin").starts_with("150 "));
    c.send(b"PWD\r\n");
    // NOOP is answered during the transfer, after the server has read
    // (and deferred) the PWD before it: no sleep needed to order them.
    assert_eq!(c.cmd("NOOP"), "200 NOOP ok.");
    drop(data);
    assert_eq!(c.reply(), "226 Transfer complete.");
    assert_eq!(c.reply(), "257 \"/\" is the current directory.");
}

#[test]
fn pasv_without_a_client_times_out_with_425() {
    let server = Server::start_with(Setup {
        accept_timeout: "1s",
        ..Setup::default()
    });
    std::fs::write(server.alice.join("f.txt"), b"data").unwrap();
    let mut c = Raw::login(server.addr, "alice");
    let _port = c.epsv_port();
    assert!(c.cmd("RETR f.txt").starts_with("150 "));
    let r = c.reply();
    assert!(r.starts_with("425 Can't open data connection"), "{r}");
}

#[test]
fn modes_can_be_switched_off() {
    let server = Server::start_with(Setup {
        passive: false,
        ..Setup::default()
    });
    let mut c = Raw::login(server.addr, "alice");
    assert_eq!(
        c.cmd("PASV"),
        "502 PASV refused: passive mode is disabled on this server; use PORT or EPRT."
    );
    assert_eq!(
        c.cmd("EPSV"),
        "502 EPSV refused: passive mode is disabled on this server; use PORT or EPRT."
    );
    let server = Server::start_with(Setup {
        active: false,
        ..Setup::default()
    });
    let mut c = Raw::login(server.addr, "alice");
    assert_eq!(
        c.cmd("PORT 127,0,0,1,200,0"),
        "502 PORT refused: active mode is disabled on this server; use PASV or EPSV."
    );
    assert_eq!(code(&c.cmd("EPRT |1|127.0.0.1|5000|")), "502");
}

#[test]
fn epsv_all_locks_out_other_data_commands() {
    let server = Server::start();
    let mut c = Raw::login(server.addr, "alice");
    assert_eq!(c.cmd("EPSV ALL"), "200 EPSV ALL ok; only EPSV from now on.");
    assert_eq!(c.cmd("PASV"), "503 PASV refused after EPSV ALL.");
    assert_eq!(
        c.cmd("PORT 127,0,0,1,200,0"),
        "503 PORT refused after EPSV ALL."
    );
    assert_eq!(
        c.cmd("EPSV 2"),
        "522 Network protocol not supported, use (1)."
    );
    c.epsv_port();
}

#[test]
fn idle_sessions_are_closed_with_421() {
    let server = Server::start_with(Setup {
        idle_timeout: "1s",
        ..Setup::default()
    });
    let mut c = Raw::login(server.addr, "alice");
    let r = c.reply();
    assert_eq!(
        r,
        "421 Timeout: no command for too long, closing control connection."
    );
    assert!(c.closed());
}

#[test]
fn file_commands_reply_codes() {
    let server = Server::start();
    let mut c = Raw::login(server.addr, "alice");
    assert_eq!(c.cmd("MKD new dir"), "257 \"/new dir\" created.");
    assert_eq!(code(&c.cmd("MKD new dir")), "550");
    assert_eq!(c.cmd("CWD new dir"), "250 Directory successfully changed.");
    assert_eq!(c.cmd("XPWD"), "257 \"/new dir\" is the current directory.");
    assert_eq!(c.cmd("XCUP"), "250 Directory successfully changed.");
    assert_eq!(c.cmd("SIZE nope"), "550 No such file or directory.");
    assert_eq!(c.cmd("SIZE new dir"), "550 Not a plain file.");
    assert_eq!(c.cmd("RETR new dir"), "550 Not a plain file.");
    assert_eq!(c.cmd("RETR nope"), "550 No such file or directory.");
    assert_eq!(c.cmd("RNFR nope"), "550 No such file or directory.");
    assert_eq!(c.cmd("RNFR new dir"), "350 Ready for RNTO.");
    assert_eq!(c.cmd("RNTO other"), "250 Rename successful.");
    assert_eq!(c.cmd("RMD other"), "250 Directory removed.");
    assert_eq!(c.cmd("DELE nope"), "550 No such file or directory.");
    assert_eq!(
        c.cmd("REST 5"),
        "350 Restarting at 5. Send STOR or RETR to continue."
    );
    std::fs::write(server.alice.join("f"), b"0123456789").unwrap();
    assert_eq!(c.cmd("MDTM f").len(), 18);
    assert_eq!(
        c.cmd("REST 11"),
        "350 Restarting at 11. Send STOR or RETR to continue."
    );
    assert_eq!(
        c.cmd("STOR f"),
        "554 Restart offset 11 is past the end of the file (10 bytes)."
    );
    assert_eq!(
        c.cmd("REST 11"),
        "350 Restarting at 11. Send STOR or RETR to continue."
    );
    assert_eq!(
        c.cmd("RETR f"),
        "554 Restart offset 11 is past the end of the file (10 bytes)."
    );
    let data = c.pasv();
    assert!(c.cmd("STOU f").starts_with("150 FILE: f.1"));
    drop(data);
    assert_eq!(c.reply(), "226 Transfer complete.");
    assert!(server.alice.join("f.1").exists());
    assert_eq!(
        std::fs::read(server.alice.join("f")).unwrap(),
        b"0123456789"
    );
}

#[test]
fn ipv6_control_uses_epsv_and_eprt_and_refuses_pasv() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        crate::harness::skip("IPv6 loopback");
        return;
    }
    let server = Server::start_with(Setup {
        listen: "[::1]:0",
        ..Setup::default()
    });
    std::fs::write(server.alice.join("v6.txt"), b"six").unwrap();
    let mut c = Raw::login(server.addr, "alice");
    assert_eq!(code(&c.cmd("PASV")), "522");
    assert_eq!(
        c.cmd("EPSV 1"),
        "522 Network protocol not supported, use (2)."
    );
    let port = c.epsv_port();
    let data = TcpStream::connect(("::1", port)).unwrap();
    assert!(c.cmd("RETR v6.txt").starts_with("150 "));
    assert_eq!(read_all(data), b"six");
    assert_eq!(c.reply(), "226 Transfer complete.");
    let l = TcpListener::bind("[::1]:0").unwrap();
    let p = l.local_addr().unwrap().port();
    assert!(c.cmd(&format!("EPRT |2|::1|{p}|")).starts_with("200 "));
    assert!(c.cmd("RETR v6.txt").starts_with("150 "));
    let (s, _) = l.accept().unwrap();
    assert_eq!(read_all(s), b"six");
    assert_eq!(c.reply(), "226 Transfer complete.");
}

/// PASV advertises per client network: here 127.0.0.0/8 is told another
/// address than everyone else; EPSV is unaffected.
#[test]
fn pasv_address_depends_on_the_client_network() {
    let server = Server::start_with(Setup {
        extra_passive: "address = \"203.0.113.7\"\n[[passive.address_by_network]]\nnetwork = \"127.0.0.0/8\"\naddress = \"198.51.100.5\"",
        ..Setup::default()
    });
    let mut c = Raw::login(server.addr, "alice");
    let r = c.cmd("PASV");
    assert!(r.contains("(198,51,100,5,"), "{r}");
    assert!(c.cmd("EPSV").starts_with("229 "));
    let server = Server::start_with(Setup {
        extra_passive: "address = \"localhost\"\naddress_refresh = \"1s\"",
        ..Setup::default()
    });
    let mut c = Raw::login(server.addr, "alice");
    let r = c.cmd("PASV");
    assert!(r.contains("(127,0,0,1,"), "{r}");
    assert!(server.log().contains("passive.address resolved"));
}

/// A command sent in the same write as a download that finishes at once
/// (150 and 226 in one reply write) is answered right after the 226, not
/// left waiting for the client's next line.
#[test]
fn command_pipelined_behind_a_small_download_is_answered() {
    let server = Server::start();
    std::fs::write(server.alice.join("f.txt"), b"payload").unwrap();
    let mut c = Raw::login(server.addr, "alice");
    let data = c.pasv();
    c.send(b"RETR f.txt\r\nPWD\r\n");
    assert!(c.reply().starts_with("150 "));
    assert_eq!(read_all(data), b"payload");
    assert_eq!(c.reply(), "226 Transfer complete.");
    assert_eq!(c.reply(), "257 \"/\" is the current directory.");
}

#[test]
fn mfmt_sets_modification_times() {
    let server = Server::start();
    std::fs::write(server.alice.join("f 1.txt"), b"x").unwrap();
    std::fs::create_dir(server.alice.join("d")).unwrap();
    let mut c = Raw::login(server.addr, "alice");
    assert_eq!(
        c.cmd("MFMT 20200229123456 f 1.txt"),
        "213 Modify=20200229123456; f 1.txt"
    );
    assert_eq!(c.cmd("MDTM f 1.txt"), "213 20200229123456");
    let mtime = std::fs::metadata(server.alice.join("f 1.txt"))
        .unwrap()
        .modified()
        .unwrap();
    let secs = mtime
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(secs, 1_582_979_696);
    // Fractions of a second are kept; directories too.
    assert_eq!(
        c.cmd("MFMT 20010203040506.250 d"),
        "213 Modify=20010203040506; d"
    );
    let m = c.cmd("MLST d");
    assert!(m.contains("modify=20010203040506;"), "{m}");
    assert_eq!(code(&c.cmd("MFMT 20200229123456 missing")), "550");
    assert_eq!(code(&c.cmd("MFMT 20200230123456 f 1.txt")), "501");
    assert_eq!(code(&c.cmd("MFMT f 1.txt")), "501");
}

#[test]
fn site_chmod_sets_permission_bits() {
    use std::os::unix::fs::PermissionsExt;
    let server = Server::start();
    std::fs::write(server.alice.join("s.sh"), b"#!/bin/sh\n").unwrap();
    std::fs::create_dir(server.alice.join("d")).unwrap();
    let mode = |p: &str| {
        std::fs::metadata(server.alice.join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    let mut c = Raw::login(server.addr, "alice");
    assert_eq!(
        c.cmd("SITE CHMOD 750 s.sh"),
        "200 SITE CHMOD command ok (750)."
    );
    assert_eq!(mode("s.sh"), 0o750);
    assert_eq!(code(&c.cmd("site chmod 0700 d")), "200");
    assert_eq!(mode("d"), 0o700);
    let m = c.cmd("MLST s.sh");
    assert!(m.contains("unix.mode=0750;"), "{m}");
    // setuid and friends are refused, as are bad modes and missing paths.
    assert_eq!(code(&c.cmd("SITE CHMOD 4755 s.sh")), "501");
    assert_eq!(code(&c.cmd("SITE CHMOD rwx s.sh")), "501");
    assert_eq!(code(&c.cmd("SITE CHMOD 644 missing")), "550");
    assert_eq!(code(&c.cmd("SITE CHMOD 000 /")), "550");
    assert_eq!(code(&c.cmd("MFMT 20200229123456 /")), "213");
    assert_eq!(mode("s.sh"), 0o750);
    let help = c.cmd("SITE HELP");
    assert!(help.contains("CHMOD"), "{help}");
    // Read-only and anonymous accounts may change neither mode nor time.
    for user in ["bob", "anonymous"] {
        let mut r = Raw::login(server.addr, user);
        for cmd in [
            "SITE CHMOD 777 readme.txt",
            "MFMT 20200229123456 readme.txt",
        ] {
            let reply = r.cmd(cmd);
            assert!(
                reply.starts_with("550 Permission denied"),
                "{user} {cmd}: {reply}"
            );
        }
    }
}

/// NLST and LIST as vsftpd and ProFTPD answer them: names under a named
/// directory carry its path, and wildcards in the last component select
/// names of one directory.
#[test]
fn nlst_and_list_take_wildcards() {
    let server = Server::start();
    for f in ["a.txt", "b.log", ".hidden.txt", "sub/c.txt", "sub/d.bin"] {
        let p = server.alice.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }
    let mut c = Raw::login(server.addr, "alice");
    let mut names = |cmd: &str| {
        let data = c.pasv();
        let r = c.cmd(cmd);
        assert_eq!(code(&r), "150", "{cmd}: {r}");
        let text = String::from_utf8(read_all(data)).unwrap();
        assert_eq!(code(&c.reply()), "226", "{cmd}");
        let mut v: Vec<String> = text.lines().map(str::to_owned).collect();
        v.sort();
        v
    };
    assert_eq!(names("NLST"), ["a.txt", "b.log", "sub"]);
    assert_eq!(names("NLST sub"), ["sub/c.txt", "sub/d.bin"]);
    assert_eq!(names("NLST sub/"), ["sub/c.txt", "sub/d.bin"]);
    assert_eq!(names("NLST /sub"), ["/sub/c.txt", "/sub/d.bin"]);
    assert_eq!(names("NLST sub/c.txt"), ["sub/c.txt"]);
    assert_eq!(names("NLST *.txt"), ["a.txt"]);
    assert_eq!(names("NLST .*.txt"), [".hidden.txt"]);
    assert_eq!(names("NLST sub/[cd]*"), ["sub/c.txt", "sub/d.bin"]);
    assert_eq!(names("NLST s?b"), ["sub"]);
    assert!(names("NLST *.TXT").is_empty());
    let long = names("LIST -l sub/*.bin");
    assert!(
        long.len() == 1 && long[0].starts_with("-rw") && long[0].ends_with(" d.bin"),
        "{long:?}"
    );
    // Only the last component may hold wildcards; a missing directory is 550.
    assert_eq!(code(&c.cmd("NLST s*/c.txt")), "550");
    assert_eq!(code(&c.cmd("NLST nodir/*.txt")), "550");
    assert_eq!(code(&c.cmd("NLST a.txt/*")), "550");
}

/// The data of one download in the current set-up: `prep` are the commands
/// sent between REST (when `rest` is given) and RETR, in order; "PASV",
/// "EPSV" and "PORT" open the data connection they name.
fn resumed_download(c: &mut Raw, rest: Option<u64>, prep: &[&str]) -> (Vec<u8>, String) {
    if let Some(n) = rest {
        assert_eq!(
            c.cmd(&format!("REST {n}")),
            format!("350 Restarting at {n}. Send STOR or RETR to continue.")
        );
    }
    enum Data {
        None,
        Connected(TcpStream),
        Listening(TcpListener),
    }
    let mut data = Data::None;
    for p in prep {
        data = match *p {
            "PASV" => Data::Connected(c.pasv()),
            "EPSV" => {
                let port = c.epsv_port();
                Data::Connected(TcpStream::connect(("127.0.0.1", port)).unwrap())
            }
            "PORT" | "EPRT" => {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                let port = l.local_addr().unwrap().port();
                let line = if *p == "PORT" {
                    format!("PORT 127,0,0,1,{},{}", port >> 8, port & 255)
                } else {
                    format!("EPRT |1|127.0.0.1|{port}|")
                };
                assert_eq!(code(&c.cmd(&line)), "200", "{line}");
                Data::Listening(l)
            }
            other => {
                let r = c.cmd(other);
                assert!(r.starts_with('2'), "{other}: {r}");
                data
            }
        };
    }
    let opened = c.cmd("RETR f");
    assert!(opened.starts_with("150 "), "{prep:?}: {opened}");
    let stream = match data {
        Data::Connected(s) => s,
        Data::Listening(l) => l.accept().unwrap().0,
        Data::None => panic!("no data connection in {prep:?}"),
    };
    let got = read_all(stream);
    (got, c.reply())
}

#[test]
fn rest_survives_the_commands_that_prepare_a_transfer() {
    let server = Server::start();
    let content: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(server.alice.join("f"), &content).unwrap();
    let mut c = Raw::login(server.addr, "alice");
    let orders: &[&[&str]] = &[
        &["PASV"],
        &["EPSV"],
        &["PORT"],
        &["EPRT"],
        &["TYPE I", "PASV"],
        &["PASV", "TYPE I"],
        &["MODE S", "STRU F", "EPSV", "TYPE I"],
        &["PASV", "PASV"],
    ];
    for (i, prep) in orders.iter().enumerate() {
        let n = 1000 + i as u64 * 7919;
        let (got, done) = resumed_download(&mut c, Some(n), prep);
        assert_eq!(done, "226 Transfer complete.", "{prep:?}");
        assert!(
            got == content[n as usize..],
            "REST {n} then {prep:?}: {} bytes, not the {} after the offset",
            got.len(),
            content.len() - n as usize
        );
    }
    // The classic order too: the data connection first, then REST.
    let data = c.pasv();
    c.cmd("REST 99999");
    assert!(c.cmd("RETR f").starts_with("150 "));
    assert_eq!(read_all(data), &content[99_999..]);
    assert_eq!(c.reply(), "226 Transfer complete.");
    // Any other command clears it: the next RETR sends the whole file.
    for other in ["NOOP", "PWD", "SIZE f", "LIST", "XYZZ", "CWD nowhere"] {
        c.cmd("REST 10");
        if other == "LIST" {
            // LIST ignores the offset and clears it.
            let data = c.pasv();
            assert!(c.cmd("LIST").starts_with("150 "));
            let listing = String::from_utf8(read_all(data)).unwrap();
            assert!(listing.ends_with(" f\r\n"), "{listing}");
            assert_eq!(c.reply(), "226 Transfer complete.");
        } else {
            c.cmd(other);
        }
        let (got, done) = resumed_download(&mut c, None, &["PASV"]);
        assert_eq!(done, "226 Transfer complete.");
        assert!(got == content, "REST then {other}: the offset was kept");
    }
}

#[test]
fn rest_then_upload_commands() {
    let server = Server::start();
    std::fs::write(server.alice.join("f"), b"0123456789").unwrap();
    let mut c = Raw::login(server.addr, "alice");
    // REST, PASV, TYPE, then STOR resumes at the offset.
    c.cmd("REST 4");
    let mut data = c.pasv();
    c.cmd("TYPE I");
    assert!(c.cmd("STOR f").starts_with("150 "));
    data.write_all(b"abc").unwrap();
    drop(data);
    assert_eq!(c.reply(), "226 Transfer complete.");
    assert_eq!(std::fs::read(server.alice.join("f")).unwrap(), b"0123abc");
    // STOU and APPE do not take an offset: 503, and it is cleared.
    for verb in ["APPE f", "STOU f"] {
        c.cmd("REST 2");
        let _data = c.pasv();
        assert_eq!(
            c.cmd(verb),
            "503 REST applies to RETR and STOR only; the restart offset was cleared."
        );
    }
    let (got, done) = resumed_download(&mut c, None, &["PASV"]);
    assert_eq!(done, "226 Transfer complete.");
    assert_eq!(got, b"0123abc");
    assert!(!server.alice.join("f.1").exists());
}

#[test]
fn every_transfer_is_recorded_even_one_aborted_before_its_connection() {
    let server = Server::start();
    std::fs::write(server.alice.join("f"), b"abc").unwrap();
    let mut c = Raw::login(server.addr, "alice");
    // Never connected: aborted while waiting for the data connection.
    let _ = c.cmd("PASV");
    assert!(c.cmd("STOR never").starts_with("150 "));
    assert_eq!(
        c.cmd("ABOR"),
        "426 Transfer aborted before the data connection opened."
    );
    assert_eq!(c.reply(), "226 ABOR successful.");
    let data = c.pasv();
    assert!(c.cmd("RETR f").starts_with("150 "));
    assert_eq!(read_all(data), b"abc");
    assert_eq!(c.reply(), "226 Transfer complete.");
    // Each record is written before the transfer's final reply is sent.
    let log = server.log();
    let transfers: Vec<&str> = log.lines().filter(|l| l.contains(" transfer ")).collect();
    assert!(
        transfers.iter().any(|l| l.contains("verb=\"STOR\"")
            && l.contains("passive=true")
            && l.contains("result=\"aborted by the client\"")),
        "{log}"
    );
    assert!(
        transfers.iter().any(|l| l.contains("verb=\"RETR\"")
            && l.contains("bytes=3")
            && l.contains("result=ok")),
        "{log}"
    );
}
