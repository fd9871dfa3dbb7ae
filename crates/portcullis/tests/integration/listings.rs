//! Listings as clients parse them: symbolic links with their targets (and
//! the links that lead out of the root left out and refused by name), the
//! order of LIST and NLST, and a tree walked by a client library
//! (Python's ftputil) and mirrored by lftp.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use crate::harness::{read_all, Raw, Server, PASSWORD};
use crate::tools::{have, installed, run};

/// A tree with every kind of link under `root`:
/// - `docs/a.txt`, `docs/ünïcode.txt`, `z.txt`, `sub/`;
/// - inside: `to_file -> docs/a.txt`, `to_dir -> docs`, `sub/up -> ../docs/a.txt`;
/// - broken: `broken -> missing.txt`, `loop1 <-> loop2`;
/// - absolute, beneath the root's host path (read as host paths, listed
///   and followed as the virtual paths they name): `abs_inside ->
///   ROOT/docs/a.txt`, `abs_dir -> ROOT/docs`;
/// - out of the root: `abs -> /etc`, `abs_climb -> ROOT/../..` (a host
///   path beneath the root only in words), `escape -> ../../../../../etc`,
///   `sub/escape -> ../..`.
fn link_tree(root: &Path) {
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::create_dir_all(root.join("sub")).unwrap();
    std::fs::write(root.join("docs/a.txt"), b"alpha\n").unwrap();
    std::fs::write(root.join("docs/ünïcode.txt"), b"unicode\n").unwrap();
    std::fs::write(root.join("z.txt"), b"zed\n").unwrap();
    symlink("docs/a.txt", root.join("to_file")).unwrap();
    symlink("docs", root.join("to_dir")).unwrap();
    symlink("../docs/a.txt", root.join("sub/up")).unwrap();
    symlink("missing.txt", root.join("broken")).unwrap();
    symlink("loop2", root.join("loop1")).unwrap();
    symlink("loop1", root.join("loop2")).unwrap();
    symlink("/etc", root.join("abs")).unwrap();
    symlink(root.join("docs/a.txt"), root.join("abs_inside")).unwrap();
    symlink(root.join("docs"), root.join("abs_dir")).unwrap();
    symlink(root.join("../.."), root.join("abs_climb")).unwrap();
    symlink("../../../../../etc", root.join("escape")).unwrap();
    symlink("../..", root.join("sub/escape")).unwrap();
}

const OUTSIDE: [&str; 4] = ["abs", "abs_climb", "escape", "sub/escape"];

fn list(c: &mut Raw, cmd: &str) -> String {
    let data = c.pasv();
    let r = c.cmd(cmd);
    assert!(r.starts_with("150 "), "{cmd}: {r}");
    let out = String::from_utf8(read_all(data)).unwrap();
    assert_eq!(c.reply(), "226 Transfer complete.", "{cmd}");
    out
}

/// The name part of LIST lines: what follows the 8 columns before it.
fn list_names(listing: &str) -> Vec<String> {
    listing
        .lines()
        .map(|l| {
            let mut rest = l;
            for _ in 0..8 {
                rest = rest.trim_start();
                rest = &rest[rest.find(' ').unwrap()..];
            }
            rest[1..].to_owned()
        })
        .collect()
}

#[test]
fn links_are_listed_with_their_targets_and_outside_ones_are_refused() {
    let server = Server::start();
    link_tree(&server.alice);
    let mut c = Raw::login(server.addr, "alice");
    let host_root = server.alice.display().to_string();

    let listing = list(&mut c, "LIST");
    let names = list_names(&listing);
    for want in [
        "to_file -> docs/a.txt",
        "to_dir -> docs",
        "broken -> missing.txt",
        "loop1 -> loop2",
        "loop2 -> loop1",
        // Absolute targets beneath the root: their virtual paths.
        "abs_inside -> /docs/a.txt",
        "abs_dir -> /docs",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} in\n{listing}");
    }
    for line in listing.lines().filter(|l| l.contains(" -> ")) {
        assert!(line.starts_with("lrwxrwxrwx "), "{line}");
    }
    for gone in OUTSIDE.iter().filter(|n| !n.contains('/')) {
        assert!(
            !names.iter().any(|n| n.split(" -> ").next() == Some(gone)),
            "{gone} leads out of the root and is listed:\n{listing}"
        );
    }
    assert!(
        !listing.contains("/etc") && !listing.contains(&host_root),
        "{listing}"
    );
    let sub = list(&mut c, "LIST sub");
    assert!(sub.contains(" up -> ../docs/a.txt\r\n"), "{sub}");
    assert!(!sub.contains("escape"), "{sub}");

    let mlsd = list(&mut c, "MLSD");
    assert!(mlsd.contains("type=OS.unix=slink:docs/a.txt;"), "{mlsd}");
    assert!(mlsd.contains("type=OS.unix=slink:docs;"), "{mlsd}");
    assert!(mlsd.contains("type=OS.unix=slink:missing.txt;"), "{mlsd}");
    assert!(mlsd.contains("type=OS.unix=slink:/docs/a.txt;"), "{mlsd}");
    assert!(
        !mlsd.contains("etc") && !mlsd.contains(" abs\r\n"),
        "{mlsd}"
    );
    let nlst = list(&mut c, "NLST");
    assert!(
        nlst.contains("to_file\r\n") && nlst.contains("broken\r\n"),
        "{nlst}"
    );
    assert!(nlst.contains("abs_inside\r\n"), "{nlst}");
    assert!(
        !nlst.contains("abs\r\n") && !nlst.contains("abs_climb") && !nlst.contains("escape"),
        "{nlst}"
    );

    // What the listing shows works, or says why it does not.
    let data = c.pasv();
    assert!(c.cmd("RETR to_file").starts_with("150 "));
    assert_eq!(read_all(data), b"alpha\n");
    assert_eq!(c.reply(), "226 Transfer complete.");
    let data = c.pasv();
    assert!(c.cmd("RETR sub/up").starts_with("150 "));
    assert_eq!(read_all(data), b"alpha\n");
    assert_eq!(c.reply(), "226 Transfer complete.");
    assert_eq!(c.cmd("SIZE to_file"), "213 6");
    // An absolute link beneath the root is followed to its virtual path.
    let data = c.pasv();
    assert!(c.cmd("RETR abs_inside").starts_with("150 "));
    assert_eq!(read_all(data), b"alpha\n");
    assert_eq!(c.reply(), "226 Transfer complete.");
    assert_eq!(c.cmd("SIZE abs_dir/a.txt"), "213 6");
    assert_eq!(c.cmd("CWD abs_dir"), "250 Directory successfully changed.");
    assert_eq!(c.cmd("SIZE a.txt"), "213 6");
    assert_eq!(c.cmd("CWD /"), "250 Directory successfully changed.");
    assert_eq!(c.cmd("CWD to_dir"), "250 Directory successfully changed.");
    assert_eq!(c.cmd("CWD /"), "250 Directory successfully changed.");
    assert_eq!(c.cmd("RETR broken"), "550 No such file or directory.");
    assert_eq!(c.cmd("CWD broken"), "550 No such file or directory.");
    assert_eq!(code3(&c.cmd("RETR loop1")), "550");
    let outside = "550 Symbolic link leads outside your home directory; not followed.";
    for name in OUTSIDE {
        assert_eq!(c.cmd(&format!("RETR {name}")), outside, "RETR {name}");
        assert_eq!(c.cmd(&format!("CWD {name}")), outside, "CWD {name}");
        assert_eq!(c.cmd(&format!("MLST {name}")), outside, "MLST {name}");
        assert_eq!(c.cmd(&format!("SIZE {name}")), outside, "SIZE {name}");
    }
    assert_eq!(c.cmd("CWD abs/ssl"), outside);
    // MLST and STAT of a link describe the link, as MLSD and LIST do.
    let mlst = c.cmd("MLST to_file");
    assert!(
        mlst.contains("\n type=OS.unix=slink:docs/a.txt;") && mlst.ends_with(" /to_file\n250 End"),
        "{mlst}"
    );
    let stat = c.cmd("STAT to_file");
    assert!(stat.contains(" to_file -> docs/a.txt\n"), "{stat}");
    let one = list(&mut c, "LIST broken");
    assert!(one.ends_with(" broken -> missing.txt\r\n"), "{one}");
    // A link leading out can still be removed by its name; its target stays.
    assert_eq!(c.cmd("DELE abs"), "250 File deleted.");
    assert!(std::path::Path::new("/etc").is_dir());
    assert!(std::fs::symlink_metadata(server.alice.join("abs")).is_err());
}

fn code3(r: &str) -> &str {
    &r[..3]
}

/// ftputil (a client library that walks trees through LIST and follows
/// links by their `-> target`) walks the tree and reads every file.
const FTPUTIL_WALK: &str = r#"
import sys, warnings
warnings.simplefilter("ignore")
import ftputil, ftputil.session
host, port, pw = sys.argv[1], int(sys.argv[2]), sys.argv[3]
factory = ftputil.session.session_factory(port=port, encoding="utf-8")
with ftputil.FTPHost(host, "alice", pw, session_factory=factory) as h:
    seen = []
    for top, dirs, files in h.walk("/"):
        for f in files:
            p = h.path.join(top, f)
            if h.path.isfile(p):
                with h.open(p, "rb") as fh:
                    seen.append("%s=%d" % (p, len(fh.read())))
            else:
                seen.append("%s=link" % p)
        for d in dirs:
            seen.append(h.path.join(top, d) + "/")
    print("\n".join(sorted(seen)))
"#;

#[test]
fn ftputil_walks_a_tree_with_links_and_unicode_names() {
    let python_has_ftputil = have("python3")
        && Command::new("python3")
            .args(["-c", "import ftputil"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    if !installed(python_has_ftputil, "Python's ftputil") {
        return;
    }
    let server = Server::start();
    link_tree(&server.alice);
    let out = run(Command::new("python3").args([
        "-c",
        FTPUTIL_WALK,
        "127.0.0.1",
        &server.addr.port().to_string(),
        PASSWORD,
    ]));
    let seen: Vec<&str> = out.lines().collect();
    for want in [
        "/docs/",
        "/docs/a.txt=6",
        "/docs/ünïcode.txt=8",
        "/to_file=6",
        "/sub/up=6",
        "/z.txt=4",
        "/broken=link",
        "/abs_inside=6",
    ] {
        assert!(seen.contains(&want), "{want} not in\n{out}");
    }
    assert!(
        !out.contains("/abs=") && !out.contains("/abs/") && !out.contains("abs_climb"),
        "{out}"
    );
    assert!(!out.contains("escape"), "{out}");
}

#[test]
fn lftp_mirrors_a_tree_with_links() {
    if !have("lftp") {
        return;
    }
    let server = Server::start();
    link_tree(&server.alice);
    let work = tempfile::tempdir().unwrap();
    let script = format!(
        "set ftp:ssl-allow no; set net:max-retries 1; set net:timeout 20; \
         open -u alice,'{PASSWORD}' ftp://{}; mirror / {}/m",
        server.addr,
        work.path().display()
    );
    run(Command::new("lftp").args(["-c", &script]));
    let m = work.path().join("m");
    assert_eq!(
        std::fs::read(m.join("docs/ünïcode.txt")).unwrap(),
        b"unicode\n"
    );
    assert_eq!(
        std::fs::read_link(m.join("to_file")).unwrap(),
        Path::new("docs/a.txt")
    );
    assert_eq!(std::fs::read(m.join("to_file")).unwrap(), b"alpha\n");
    assert_eq!(
        std::fs::read_link(m.join("sub/up")).unwrap(),
        Path::new("../docs/a.txt")
    );
    assert_eq!(
        std::fs::read_link(m.join("broken")).unwrap(),
        Path::new("missing.txt")
    );
    for gone in OUTSIDE {
        assert!(
            std::fs::symlink_metadata(m.join(gone)).is_err(),
            "{gone} was mirrored"
        );
    }
}

#[test]
fn list_and_nlst_are_sorted_by_name_in_byte_order() {
    let server = Server::start();
    let names = [
        "b.txt", "A.txt", "ä.txt", "a.txt", "Z", "_x", "10", "9", "a b", "ab", "Ω", "zz",
    ];
    for (i, n) in names.iter().enumerate() {
        std::fs::write(server.alice.join(n), vec![b'x'; i]).unwrap();
    }
    // Enough entries that the directory's own order is not sorted by chance.
    for i in (0..300).rev() {
        std::fs::write(server.alice.join(format!("f{:03}", (i * 7) % 300)), b"").unwrap();
    }
    let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    want.extend((0..300).map(|i| format!("f{i:03}")));
    want.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    let mut c = Raw::login(server.addr, "alice");
    let listing = list(&mut c, "LIST");
    assert_eq!(list_names(&listing), want, "{listing}");
    let nlst = list(&mut c, "NLST");
    let got: Vec<&str> = nlst.lines().collect();
    assert_eq!(got, want);
    let some = list(&mut c, "NLST f2*");
    let got: Vec<&str> = some.lines().collect();
    let want: Vec<String> = (200..300).map(|i| format!("f{i:03}")).collect();
    assert_eq!(got, want);
}
