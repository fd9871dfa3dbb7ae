//! Unit tests of the generic back end that need no store: directory
//! pages. Keys and the requests are tested through a provider (the S3
//! provider's unit tests, and tests/integration/s3.rs against real S3
//! servers).

use super::*;
use object_store::ListResult;

fn meta(key: &str) -> ObjectMeta {
    ObjectMeta {
        location: ObjPath::parse(key).unwrap(),
        last_modified: Default::default(),
        size: 3,
        e_tag: None,
        version: None,
    }
}

#[test]
fn pages_set_the_marker_apart() {
    let dir = ObjPath::parse("p/d").unwrap();
    let only_marker = ListResult {
        common_prefixes: vec![],
        objects: vec![meta("p/d/")],
        extensions: Default::default(),
    };
    let p = list::Page::new(&dir, only_marker, 0);
    assert!(p.is_empty() && !p.is_absent() && p.marker_time().is_some());
    let nothing = ListResult {
        common_prefixes: vec![],
        objects: vec![],
        extensions: Default::default(),
    };
    assert!(list::Page::new(&dir, nothing, 0).is_absent());
    // Only keys that cannot be paths (left out of the listing): the
    // directory is there, and not empty (RMD is refused).
    let skipped_only = ListResult {
        common_prefixes: vec![],
        objects: vec![],
        extensions: Default::default(),
    };
    let p = list::Page::new(&dir, skipped_only, 1);
    assert!(!p.is_empty() && !p.is_absent());
    let full = ListResult {
        common_prefixes: vec![ObjPath::parse("p/d/sub/").unwrap()],
        objects: vec![meta("p/d/"), meta("p/d/f.txt")],
        extensions: Default::default(),
    };
    let p = list::Page::new(&dir, full, 0);
    assert!(!p.is_empty());
}
