//! What a start would refuse or regret, caught by the config's validation
//! (so that `check-config`, `serve` and a reload say the same).

use super::parse;

#[test]
fn a_listener_inside_the_passive_ports_is_refused_naming_both_keys() {
    let e = parse("[server]\nlisten = [\"127.0.0.1:2121\", \"127.0.0.1:40100\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("server.listen[1]: port 40100 lies inside passive.ports = \"40000-40999\""),
        "{e}"
    );
    assert!(e.contains("move the listener"), "{e}");
    assert!(!e.contains("server.listen[0]"), "{e}");
    let e = parse("[server]\nlisten = [\"127.0.0.1:2121\"]\n[passive]\nsingle_port = 2121\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("server.listen[0]: port 2121 lies inside passive.single_port = 2121"),
        "{e}"
    );
    // Port 0 (tests, "any free port") and a port outside the range pass.
    parse("[server]\nlisten = [\"127.0.0.1:0\", \"127.0.0.1:2121\"]\n").unwrap();
}

#[test]
fn an_object_store_root_without_endpoint_or_keys_is_a_warning_not_a_refusal() {
    let (_, w) = parse("[anonymous]\nenabled = true\nroot = \"s3://ftp-files/pub\"\n").unwrap();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with(
            "anonymous.root: s3://ftp-files/pub: [s3] has neither endpoint nor access_key_id"
        ),
        "{w:?}"
    );
    assert!(w[0].contains("instance-metadata"), "{w:?}");
    assert!(
        w[0].contains("set endpoint, access_key_id and secret_access_key in [s3]"),
        "{w:?}"
    );
    // A profile is named as its own section.
    let hash = crate::auth::users::hash_password("x");
    let (_, w) = parse(&format!(
        "[s3.profiles.b]\nregion = \"eu-west-1\"\n[[users]]\nname = \"u\"\n\
         password_hash = \"{hash}\"\nroot = \"s3://bucket-b/u\"\ns3_profile = \"b\"\n"
    ))
    .unwrap();
    assert!(
        w.iter()
            .any(|w| w.contains("users[0].root") && w.contains("[s3.profiles.b] has neither")),
        "{w:?}"
    );
    // With an endpoint the store is named, only the keys' source is said.
    let (_, w) = parse(
        "[s3]\nendpoint = \"http://127.0.0.1:9000\"\nallow_http = true\n\
         [anonymous]\nenabled = true\nroot = \"s3://ftp-files/pub\"\n",
    )
    .unwrap();
    assert!(w[0].contains("no access_key_id configured"), "{w:?}");
}
