//! Keys put by another tool that the object-store client cannot make a
//! path of (`d/./x`, `d//y`, `d/../z`, a control character): the rest of
//! the directory lists, CWD works, RMD knows it is not empty, and the log
//! names the keys (or the prefixes a delimiter listing shows) left out,
//! quoted and escaped.

use super::{listing, server, Moto, BUCKET};
use crate::harness::Raw;

#[test]
fn s3_keys_that_cannot_be_paths_are_left_out_and_named_in_the_log() {
    let Some(moto) = Moto::start() else { return };
    let server = server(&moto);
    for key in [
        "alice/d/./x",
        "alice/d//y",
        "alice/d/../z",
        "alice/d/a\u{1}b",
    ] {
        moto.put(BUCKET, key, "from another tool");
    }
    moto.put(BUCKET, "alice/d/ok.txt", "ok");
    // Only keys that cannot be paths: still a directory, not an empty one.
    moto.put(BUCKET, "alice/bad/./only", "x");
    let mut c = Raw::login(server.addr, "alice");
    let list = listing(&mut c, "LIST d");
    let lines: Vec<&str> = list.lines().collect();
    assert!(
        lines.len() == 1 && lines[0].ends_with(" ok.txt"),
        "{list:?}"
    );
    let r = c.cmd("CWD d");
    assert!(r.starts_with("250 "), "{r}");
    assert_eq!(listing(&mut c, "NLST"), "ok.txt\r\n");
    let mlsd = listing(&mut c, "MLSD");
    assert!(mlsd.lines().any(|l| l.ends_with("; ok.txt")), "{mlsd:?}");
    assert!(c.cmd("CWD /").starts_with("250 "));
    let r = c.cmd("CWD bad");
    assert!(r.starts_with("250 "), "{r}");
    assert_eq!(listing(&mut c, "NLST"), "");
    assert!(c.cmd("CWD /").starts_with("250 "));
    let r = c.cmd("RMD bad");
    assert!(r.starts_with("550 ") && r.contains("not empty"), "{r}");
    // The store still has every key: nothing was removed on the way.
    assert_eq!(moto.keys(BUCKET).len(), 6, "{:?}", moto.keys(BUCKET));
    let log = server.log();
    let warned: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("left out keys and prefixes that cannot be paths"))
        .collect();
    // A warning for each listing request (a CWD asks for one key, a LIST
    // for a page): the one of LIST d names all four, the three below a
    // delimiter as the prefixes the listing gives.
    assert!(warned.len() >= 4, "{log}");
    let page = warned
        .iter()
        .find(|l| l.contains("skipped=4"))
        .unwrap_or_else(|| panic!("no warning about LIST d's page:\n{log}"));
    // One quoted, escaped list (crate::logging's text format).
    assert!(
        page.contains(r#"keys="alice/d/../, alice/d/./, alice/d//, alice/d/a\u{1}b""#),
        "{page}"
    );
    assert!(!log.contains('\u{1}'), "a raw control character in the log");
}
