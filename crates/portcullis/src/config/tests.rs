use super::*;

#[test]
fn full_file() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().display();
    let hash = crate::auth::users::hash_password("x");
    let text = format!(
        r#"
[server]
listen = ["127.0.0.1:2121", "[::1]:2121"]
idle_timeout = "300s"
fsync_uploads = false
[passive]
enabled = true
ports = "40000-40999"
address = "203.0.113.7"
[active]
enabled = true
source_port = 20
[anonymous]
enabled = true
root = "{root}"
upload = true
[[users]]
name = "alice"
password_hash = "{hash}"
root = "{root}"
permissions = ["read", "write", "overwrite", "delete", "rename", "mkdir"]
"#
    );
    let (o, w) = parse(&text).unwrap();
    assert!(w.is_empty());
    assert_eq!(o.listen.len(), 2);
    assert!(!o.fsync_uploads && o.atomic_uploads);
    assert!(parse("").unwrap().0.fsync_uploads);
    assert_eq!(parse("").unwrap().0.umask, 0o022);
    for (text, mask) in [("027", 0o027), ("0077", 0o077), ("0o007", 0o007), ("0", 0)] {
        let o = parse(&format!("[server]\numask = \"{text}\"\n")).unwrap().0;
        assert_eq!(o.umask, mask, "{text}");
    }
    for bad in ["1000", "8", "", "+22", "u=rwx", "0o"] {
        let e = parse(&format!("[server]\numask = \"{bad}\"\n"))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("server.umask: "), "{bad}: {e}");
    }
    assert_eq!(
        o.passive.address,
        Some(PassiveAddress::Ip("203.0.113.7".parse().unwrap()))
    );
    assert_eq!(o.active.source_port, 20);
    assert!(o.anonymous.unwrap().upload);
    assert_eq!(o.users[0].permissions, Permissions::ALL);
}

#[test]
fn errors_name_their_keys() {
    let text = r#"
[passive]
ports = "40999-40000"
address = "nat example"
[anonymous]
enabled = true
[[users]]
name = "alice"
password_hash = "plain"
root = "/nonexistent/x"
permissions = ["exec"]
[[users]]
name = "alice"
password_hash = "plain"
root = "/"
"#;
    let e = parse(text).unwrap_err().to_string();
    for key in [
        "passive.ports: \"40999-40000\": low port above high port",
        "passive.address",
        "anonymous.root: required",
        "users[0].password_hash: not a valid PHC string",
        "users[0].root",
        "users[0].permissions: unknown permission \"exec\"",
        "users[1].name: duplicate user",
    ] {
        assert!(e.contains(key), "missing {key:?} in:\n{e}");
    }
    let e = parse("[server]\nlisten = []\nbogus = 1\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("bogus"), "{e}");
}

#[test]
fn tls_section() {
    let d = tempfile::tempdir().unwrap();
    let (cert, key) = crate::tls::self_signed(&["localhost".into()]).unwrap();
    std::fs::write(d.path().join("c.pem"), cert).unwrap();
    std::fs::write(d.path().join("k.pem"), key).unwrap();
    let root = d.path().display();
    let hash = crate::auth::users::hash_password("x");
    let text = format!(
        r#"
[tls]
cert = "{root}/c.pem"
key = "{root}/k.pem"
mode = "required"
data_protection = "required"
require_session_reuse = false
implicit_listen = ["0.0.0.0:990"]
anonymous_exempt = true
handshake_timeout = "5s"
[[users]]
name = "alice"
password_hash = "{hash}"
root = "{root}"
tls_mode = "optional"
"#
    );
    let (o, _) = parse(&text).unwrap();
    let t = o.tls.as_ref().unwrap();
    assert_eq!(t.mode, TlsMode::Required);
    assert_eq!(t.data_protection, DataProtection::Required);
    assert!(!t.require_session_reuse && t.anonymous_exempt);
    assert_eq!(t.implicit_listen[0].port(), 990);
    assert!(!o.control_tls_required("alice", false), "user override");
    assert!(o.control_tls_required("bob", false));
    assert!(!o.control_tls_required("anonymous", true), "exempt");
    assert!(o.data_tls_required("alice", false));

    let bad = format!(
        r#"
[tls]
cert = "{root}/nope.pem"
mode = "sometimes"
data_protection = "maybe"
[[users]]
name = "alice"
password_hash = "{hash}"
root = "{root}"
tls_mode = "always"
"#
    );
    let e = parse(&bad).unwrap_err().to_string();
    for key in [
        "tls.mode: \"sometimes\"",
        "tls.data_protection: \"maybe\"",
        "tls.key: required",
        "users[0].tls_mode: \"always\"",
    ] {
        assert!(e.contains(key), "missing {key:?} in:\n{e}");
    }
    let e = parse("[tls]\nmode = \"off\"\nimplicit_listen = [\"0.0.0.0:990\"]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("tls.implicit_listen"), "{e}");
    let (o, _) = parse("[tls]\nmode = \"off\"\n").unwrap();
    assert!(o.tls.is_none());
}

#[test]
fn log_section() {
    assert_eq!(parse("").unwrap().0.log.xferlog, None);
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("xferlog");
    let text = format!("[log]\nxferlog = \"{}\"\n", path.display());
    assert_eq!(parse(&text).unwrap().0.log.xferlog, Some(path));
    let missing = d.path().join("no/such/dir/xferlog");
    for bad in [missing.as_path(), d.path()] {
        let e = parse(&format!("[log]\nxferlog = \"{}\"\n", bad.display()))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("log.xferlog: "), "{e}");
        assert!(e.contains(&bad.display().to_string()), "{e}");
    }
    let e = parse("[log]\ntransfer_log = \"x\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown field"), "{e}");
}

#[test]
fn proxy_protocol_section() {
    assert_eq!(parse("").unwrap().0.proxy, None);
    let (o, warnings) = parse(
        "[proxy_protocol]\nfrom = [\"10.0.0.5\", \"2001:db8::/32\"]\ndata = true\ntimeout = \"2s\"\n",
    )
    .unwrap();
    let p = o.proxy.unwrap();
    assert!(p.data && p.timeout == Duration::from_secs(2));
    assert!(p.trusts("10.0.0.5".parse().unwrap()));
    assert!(p.trusts("::ffff:10.0.0.5".parse().unwrap()), "mapped");
    assert!(!p.trusts("10.0.0.6".parse().unwrap()));
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("2001:db8::/32 is a wide network"));
    let e = parse("[proxy_protocol]\ndata = true\nfrom = [\"nope\"]\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("proxy_protocol.from[0]"), "{e}");
    assert!(
        e.contains("proxy_protocol.data: needs proxy_protocol.from"),
        "{e}"
    );
}

#[test]
fn operations_keys() {
    use crate::options::LogFormat;
    let (o, _) = parse("").unwrap();
    assert_eq!(o.log.format, LogFormat::Text);
    assert_eq!(o.metrics, None);
    assert_eq!(o.shutdown_grace, Duration::from_secs(30));
    let (o, _) = parse(
        "[server]\nshutdown_grace = \"2m\"\n[log]\nformat = \"json\"\n\
         [metrics]\nlisten = \"127.0.0.1:9121\"\n",
    )
    .unwrap();
    assert_eq!(o.log.format, LogFormat::Json);
    assert_eq!(o.metrics, Some("127.0.0.1:9121".parse().unwrap()));
    assert_eq!(o.shutdown_grace, Duration::from_secs(120));
    let e = parse("[log]\nformat = \"xml\"\n[metrics]\nlisten = \"localhost\"\n")
        .unwrap_err()
        .0;
    assert!(
        e.iter().any(|m| m.starts_with("log.format: \"xml\"")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.starts_with("metrics.listen: \"localhost\"")),
        "{e:?}"
    );
    let e = parse("[metrics]\n").unwrap_err().to_string();
    assert!(e.contains("listen"), "{e}");
}

#[test]
fn single_passive_port() {
    let (o, _) = parse("[passive]\nsingle_port = 40000\n").unwrap();
    assert_eq!(o.passive.single_port, Some(40000));
    assert_eq!(o.passive.ports, 40000..=40000);
    let e = parse("[passive]\nsingle_port = 40000\nports = \"40000-40010\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("passive.single_port: replaces passive.ports"),
        "{e}"
    );
    let e = parse("[passive]\nsingle_port = 0\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("passive.single_port: 0 is not a port"), "{e}");
}
