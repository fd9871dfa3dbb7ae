//! The permission table tried as an attacker would, on a local root: a
//! drop box (read, write and rename, no overwrite) can neither replace nor
//! remove a file, not by STOR, DELE nor RNTO, while an account with
//! `overwrite` renames onto existing names as before; and the client's
//! own mistakes (a name too long, a directory moved into itself) are
//! answered as such and never counted as I/O errors.

use crate::harness::{password_hash, stor, Raw, Server, Setup};
use crate::ops::get;

fn code(reply: &str) -> &str {
    &reply[..3]
}

#[test]
fn a_drop_box_cannot_replace_a_file_by_renaming() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("box");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("victim.txt"), b"original").unwrap();
    let cfg = dir.path().join("c.toml");
    let user = |name: &str, perms: &str| {
        format!(
            "[[users]]\nname = \"{name}\"\npassword_hash = \"{}\"\nroot = \"{}\"\npermissions = [{perms}]\n",
            password_hash(),
            root.display()
        )
    };
    std::fs::write(
        &cfg,
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nallow_root = true\n[passive]\nports = \"{}\"\n{}{}",
            crate::harness::passive_ports(4),
            user("carol", "\"read\", \"write\", \"rename\""),
            user("dave", "\"read\", \"write\", \"rename\", \"overwrite\""),
        ),
    )
    .unwrap();
    let server = Server::start_from_config(dir, &cfg);
    let mut c = Raw::login(server.addr, "carol");
    let _d = c.pasv();
    let r = c.cmd("STOR victim.txt");
    assert!(r.starts_with("550 ") && r.contains("overwrite"), "{r}");
    assert_eq!(code(&c.cmd("DELE victim.txt")), "550");
    assert_eq!(code(&stor(&mut c, "mine.txt", b"mine")), "226");
    assert_eq!(code(&c.cmd("RNFR mine.txt")), "350");
    let r = c.cmd("RNTO victim.txt");
    assert!(r.starts_with("550 ") && r.contains("overwrite"), "{r}");
    // Nor onto a symbolic link's name (the link is a name that exists).
    std::os::unix::fs::symlink("victim.txt", root.join("link")).unwrap();
    assert_eq!(code(&c.cmd("RNFR mine.txt")), "350");
    assert_eq!(code(&c.cmd("RNTO link")), "550");
    assert_eq!(std::fs::read(root.join("victim.txt")).unwrap(), b"original");
    assert_eq!(std::fs::read(root.join("mine.txt")).unwrap(), b"mine");
    assert!(std::fs::symlink_metadata(root.join("link"))
        .unwrap()
        .is_symlink());
    // Onto a free name, into a directory too, the drop box renames.
    std::fs::create_dir(root.join("sub")).unwrap();
    assert_eq!(code(&c.cmd("RNFR mine.txt")), "350");
    assert_eq!(code(&c.cmd("RNTO sub/moved.txt")), "250");
    assert_eq!(std::fs::read(root.join("sub/moved.txt")).unwrap(), b"mine");
    // The MLSx perm fact says the same: no 'w', 'a' or 'd' on the file.
    let r = c.cmd("MLST victim.txt");
    let perm = r.split("perm=").nth(1).unwrap().split(';').next().unwrap();
    assert_eq!(perm, "fr", "{r}");

    // With `overwrite`, RNTO onto an existing name replaces it.
    let mut d = Raw::login(server.addr, "dave");
    assert_eq!(code(&d.cmd("RNFR sub/moved.txt")), "350");
    assert_eq!(code(&d.cmd("RNTO victim.txt")), "250");
    assert_eq!(std::fs::read(root.join("victim.txt")).unwrap(), b"mine");
}

/// A 256-byte name and a directory moved beneath itself are the client's
/// mistakes: 553 and 550 with words that say so, counted under their
/// own kinds, never as `io` (the series the book's alert watches).
#[test]
fn client_mistakes_are_not_io_errors() {
    let server = Server::start_with(Setup {
        metrics: true,
        ..Setup::default()
    });
    let mut c = Raw::login(server.addr, "alice");
    let long = "n".repeat(256);
    let r = c.cmd(&format!("MKD {long}"));
    assert!(r.starts_with("553 ") && r.contains("too long"), "{r}");
    assert_eq!(code(&c.cmd("RNFR nothing")), "550");
    assert_eq!(code(&c.cmd("MKD dir")), "257");
    assert_eq!(code(&c.cmd("RNFR dir")), "350");
    let r = c.cmd("RNTO dir/sub");
    assert!(r.starts_with("550 ") && r.contains("into itself"), "{r}");
    assert!(server.alice.join("dir").is_dir());
    assert_eq!(
        std::fs::read_dir(server.alice.join("dir")).unwrap().count(),
        0
    );

    let (status, page) = get(server.metrics.expect("metrics listener"), "/metrics");
    assert_eq!(status, 200);
    let sample = |series: &str| {
        page.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(|v| v.parse::<f64>().unwrap())
    };
    let kind = |k: &str| sample(&format!("portcullis_storage_errors_total{{kind=\"{k}\"}}"));
    assert_eq!(kind("io").unwrap_or(0.0), 0.0, "{page}");
    assert_eq!(kind("name_too_long"), Some(1.0), "{page}");
    assert_eq!(kind("into_itself"), Some(1.0), "{page}");
    assert_eq!(kind("not_found"), Some(1.0), "{page}");
}
