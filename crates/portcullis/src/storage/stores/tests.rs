use std::path::Path;

use super::*;
use crate::storage::S3Root;

/// `[s3]` on a loopback port where nothing listens (connecting fails at
/// once), and a profile `p`.
fn options() -> StoreOptions {
    let default = S3Settings {
        endpoint: Some("http://127.0.0.1:9".into()),
        access_key_id: Some("k".into()),
        secret_access_key: Some("s".into()),
        allow_http: true,
        ..S3Settings::default()
    };
    let mut s3 = S3Options {
        default: default.clone(),
        ..Default::default()
    };
    s3.profiles.insert("p".into(), default);
    StoreOptions {
        s3,
        azure: Default::default(),
    }
}

fn spec(s: &str, profile: Option<&str>) -> RootSpec {
    RootSpec::parse(Path::new(s), profile.map(str::to_owned)).unwrap()
}

#[test]
fn an_answered_root_is_checked_with_the_messages_the_hook_tests_read() {
    let o = options();
    let root = |r: &str, p: Option<&str>| o.account_root(Path::new(r), p.map(str::to_owned));
    assert_eq!(root("/srv/a", None), Ok(spec("/srv/a", None)));
    assert_eq!(
        root("s3://bkt/x", Some("p")),
        Ok(spec("s3://bkt/x", Some("p")))
    );
    assert_eq!(root("s3://bkt/x", None), Ok(spec("s3://bkt/x", None)));
    assert_eq!(
        root("/srv/a", Some("p")),
        Err("account.storage_profile: only for an s3:// or az:// root".into())
    );
    assert_eq!(
        root("srv/a", None),
        Err("account.root: srv/a is not absolute".into())
    );
    assert_eq!(
        root("s3://bkt/x", Some("q")),
        Err("account.storage_profile: no [s3.profiles.q] section".into())
    );
    let bad = root("s3://B_/x", None).unwrap_err();
    assert!(bad.starts_with("account.root: "), "{bad}");
}

#[test]
fn a_reload_names_the_sections_it_cannot_change() {
    let old = options();
    assert!(old.changed(&old.clone()).is_empty());
    let mut new = old.clone();
    new.s3.default.region = "eu-west-1".into();
    assert_eq!(old.changed(&new), ["s3"]);
    new.azure.default.tuning.upload_streams = 5;
    assert_eq!(old.changed(&new), ["s3", "azure"]);
}

#[test]
fn object_store_urls_are_told_from_paths() {
    assert!(RootSpec::is_object_store(Path::new("s3://bkt/x")));
    assert!(RootSpec::is_object_store(Path::new("az://ctr/x")));
    assert!(RootSpec::is_object_store(Path::new("az://")));
    // Malformed, still meant as one (the caller reports why).
    assert!(RootSpec::is_object_store(Path::new("s3://")));
    assert!(!RootSpec::is_object_store(Path::new("/srv/s3://b")));
    assert!(!RootSpec::is_object_store(Path::new("bucket")));
}

#[tokio::test]
async fn the_start_up_check_asks_each_object_store_once() {
    let o = options();
    let roots = [
        spec("/srv/a", None),
        spec("s3://bkt/x", None),
        spec("s3://bkt/x", None),
        spec("s3://bkt/x", Some("missing")),
    ];
    let c = check(&roots, &o).await;
    // The local root is not the check's; the repeated one is asked once.
    assert_eq!(c.opened.len(), 1);
    assert_eq!(c.opened[0].0, spec("s3://bkt/x", None));
    assert_eq!(c.lines.len(), 1, "{:?}", c.lines);
    assert!(
        c.lines[0].starts_with("storage: s3://bkt/x at http://127.0.0.1:9: NOT reachable ("),
        "{}",
        c.lines[0]
    );
    assert!(
        c.lines[0].ends_with("); serving anyway, its users get 451 until it answers"),
        "{}",
        c.lines[0]
    );
    let unknown = S3Root::parse("s3://bkt/x", Some("missing".into()))
        .unwrap()
        .unwrap();
    assert_eq!(c.fatal, [format!("{unknown}: no such s3 profile")]);
}
