use super::*;
use crate::auth::Permissions;
use crate::options::EventKind;

/// [`super::parse`] with this machine's checks (certificates, CA bundles,
/// hash schemes), as the server makes them.
pub(super) fn parse(text: &str) -> Result<(ServerOptions, Vec<String>), ConfigError> {
    super::parse(text, &crate::server::SystemChecks)
}

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
    assert_eq!(o.users[0].policy.permissions, Permissions::ALL);
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
        "users[0].password_hash: not a salted hash",
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
    // A name no client can type, which would reach logs and audit lines.
    let e = parse("[[users]]\nname = \"ev\\u001bil\"\npassword_hash = \"plain\"\nroot = \"/\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("users[0].name: \"ev\\u{1b}il\" must be non-empty, without spaces or control characters"),
        "{e}"
    );
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
fn client_certificate_keys() {
    let d = tempfile::tempdir().unwrap();
    let (cert, key) = crate::tls::self_signed(&["localhost".into()]).unwrap();
    std::fs::write(d.path().join("c.pem"), &cert).unwrap();
    std::fs::write(d.path().join("k.pem"), key).unwrap();
    std::fs::write(d.path().join("ca.pem"), &cert).unwrap();
    let root = d.path().display();
    let hash = crate::auth::users::hash_password("x");
    let tls = format!("[tls]\ncert = \"{root}/c.pem\"\nkey = \"{root}/k.pem\"\n");
    let user = |keys: &str| {
        format!(
            "[[users]]\nname = \"alice\"\npassword_hash = \"{hash}\"\nroot = \"{root}\"\n{keys}\n"
        )
    };
    let fp = "AB:".repeat(31) + "AB";
    let good = format!(
        "{tls}[tls.client_auth]\nca_file = \"{root}/ca.pem\"\nmode = \"required\"\n{}",
        user(&format!(
            "tls_client_cert = \"required\"\ntls_client_cert_match = \"san_email\"\n\
             tls_client_cert_fingerprints = [\"{fp}\"]\npassword_with_cert = \"optional\""
        ))
    );
    let (o, _) = parse(&good).unwrap();
    let ca = o.tls.as_ref().unwrap().client_auth.as_ref().unwrap();
    assert_eq!(ca.mode, crate::options::ClientAuthMode::Required);
    let u = &o.users[0];
    assert!(u.password_optional_with_cert);
    assert_eq!(
        u.policy.client_cert,
        crate::options::ClientCertRule {
            use_cert: crate::options::CertUse::Required,
            matching: crate::options::CertMatch::SanEmail,
            fingerprints: vec![[0xAB; 32]],
        }
    );
    // Every problem with its key.
    let bad = format!(
        "{tls}[tls.client_auth]\nca_file = \"{root}/nope.pem\"\nmode = \"always\"\n{}",
        user(
            "tls_client_cert = \"yes\"\ntls_client_cert_match = \"dn\"\n\
             tls_client_cert_fingerprints = [\"AB:CD\"]\npassword_with_cert = \"never\""
        )
    );
    let e = parse(&bad).unwrap_err().to_string();
    for key in [
        "tls.client_auth.mode: \"always\"",
        "users[0].tls_client_cert: \"yes\"",
        "users[0].tls_client_cert_match: \"dn\"",
        "users[0].tls_client_cert_fingerprints[0]: \"AB:CD\"",
        "users[0].password_with_cert: \"never\"",
    ] {
        assert!(e.contains(key), "missing {key:?} in:\n{e}");
    }
    let e = parse(&format!(
        "{tls}[tls.client_auth]\nca_file = \"{root}/nope.pem\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("tls.client_auth.ca_file: "), "{e}");
    // A certificate login needs [tls.client_auth]; password_with_cert
    // needs a certificate login.
    let e = parse(&format!("{tls}{}", user("tls_client_cert = \"allowed\"")))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("users[0].tls_client_cert: needs a [tls.client_auth]"),
        "{e}"
    );
    let e = parse(&user("password_with_cert = \"optional\""))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("users[0].password_with_cert: \"optional\" needs"),
        "{e}"
    );
    assert_eq!(
        crate::config::auth::parse_fingerprint(&format!("sha256:{}", "0a".repeat(32))),
        Some([10; 32])
    );
    assert_eq!(
        crate::config::auth::parse_fingerprint(&"+a".repeat(32)),
        None
    );
    // A hook's account may require a certificate; the password stays its.
    let a = crate::config::auth::parse_account(
        br#"{"root": "/x", "tls_client_cert": "required", "tls_client_cert_match": "san_email"}"#,
        true,
    )
    .unwrap();
    assert_eq!(
        a.policy.client_cert.use_cert,
        crate::options::CertUse::Required
    );
    assert_eq!(
        a.policy.client_cert.matching,
        crate::options::CertMatch::SanEmail
    );
    let e = crate::config::auth::parse_account(
        br#"{"root": "/x", "password_with_cert": "optional"}"#,
        true,
    )
    .unwrap_err();
    assert!(e.contains("password_with_cert"), "{e}");
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
    assert!(e.contains("log.transfer_log: unknown key"), "{e}");
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

#[test]
fn auth_order_and_the_http_hook() {
    use crate::options::BackendKind;
    let (o, w) = parse("").unwrap();
    assert_eq!(o.auth.order, vec![BackendKind::Config]);
    assert!(o.auth.http.is_none() && w.is_empty());
    let (o, _) = parse(
        "[auth]\norder = [\"http\", \"config\"]\n[auth.http]\n\
         url = \"http://127.0.0.1:8080/login\"\ntimeout = \"2s\"\nbearer_token = \"t0k\"\n",
    )
    .unwrap();
    assert_eq!(o.auth.order, vec![BackendKind::Http, BackendKind::Config]);
    let h = o.auth.http.unwrap();
    assert_eq!(h.url.uri().path(), "/login");
    assert_eq!(h.timeout, Duration::from_secs(2));
    assert_eq!(h.bearer_token.as_deref(), Some("t0k"));
    // A hook section the order does not use is a warning.
    let (_, w) = parse("[auth.http]\nurl = \"http://127.0.0.1/\"\n").unwrap();
    assert!(
        w.iter().any(|m| m.starts_with("auth.http: not used")),
        "{w:?}"
    );
    let e = parse("[auth]\norder = [\"config\", \"config\", \"nis\", \"pam\", \"http\"]\n")
        .unwrap_err()
        .0;
    for needle in [
        "auth.order[1]: \"config\" is listed twice",
        "auth.order[2]: \"nis\" is not a back end",
        if cfg!(feature = "pam") {
            "auth.order: \"pam\" needs an [auth.pam] section"
        } else {
            "auth.order[3]: \"pam\": this portcullis was built without PAM support"
        },
        "auth.order: \"http\" needs an [auth.http] section",
    ] {
        assert!(e.iter().any(|m| m.starts_with(needle)), "{needle}: {e:?}");
    }
    let e = parse("[auth]\norder = []\n").unwrap_err().to_string();
    assert!(e.contains("auth.order: at least one"), "{e}");
    let e =
        parse("[auth]\norder = [\"http\"]\n[auth.http]\nurl = \"ftp://x/\"\ntimeout = \"0s\"\n")
            .unwrap_err()
            .to_string();
    assert!(e.contains("auth.http.url: \"ftp://x/\""), "{e}");
    assert!(!e.contains("needs an [auth.http]"), "{e}");
    let e = parse(
        "[auth]\norder = [\"http\"]\n[auth.http]\nurl = \"https://x/\"\nca_file = \"/nonexistent.pem\"\ntimeout = \"0s\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("auth.http.ca_file: /nonexistent.pem"), "{e}");
    assert!(e.contains("auth.http.timeout: must be above zero"), "{e}");
}

#[test]
fn auth_allowed_roots() {
    use crate::storage::{AllowedRoots, RootSpec};
    let hook = "[auth.http]\nurl = \"http://127.0.0.1/\"\n";
    let (o, _) = parse(hook).unwrap();
    assert_eq!(o.auth.allowed_roots, AllowedRoots::default());
    let (o, w) = parse(&format!(
        "[auth]\norder = [\"http\"]\nallowed_roots = [\"/srv/ftp\", \"s3://ftp-files/home\"]\n{hook}"
    ))
    .unwrap();
    assert!(w.is_empty(), "{w:?}");
    let a = &o.auth.allowed_roots;
    let root = |s: &str| RootSpec::parse(std::path::Path::new(s), None).unwrap();
    assert!(a.admit(&root("/srv/ftp/carol")).is_ok());
    assert!(a.admit(&root("s3://ftp-files/home/carol")).is_ok());
    assert!(a.admit(&root("/srv/ftpx")).is_err());
    // Bad entries, each by its key; an unknown key beside it is refused.
    let e = parse("[auth]\nallowed_roots = [\"/srv/ftp\", \"srv\", \"/a/../b\", \"s3://x\"]\n")
        .unwrap_err()
        .0;
    for needle in [
        "auth.allowed_roots[1]: \"srv\" is neither an absolute path nor an s3:// or az:// URL",
        "auth.allowed_roots[2]: \"/a/../b\" has a \"..\" component",
        "auth.allowed_roots[3]: \"x\" is not a bucket name",
    ] {
        assert!(e.iter().any(|m| m.starts_with(needle)), "{needle}: {e:?}");
    }
    assert_eq!(e.len(), 3, "{e:?}");
    let e = parse("[auth]\nallowed_roots = []\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("auth.allowed_roots: empty"), "{e}");
    assert!(parse("[auth]\nallowed_root = [\"/srv\"]\n").is_err());
    // Only config in the order: nothing to check, so a warning.
    let (_, w) = parse("[auth]\nallowed_roots = [\"/srv/ftp\"]\n").unwrap();
    assert!(
        w.iter()
            .any(|m| m.starts_with("auth.allowed_roots: not used")),
        "{w:?}"
    );
}

#[test]
fn a_hooks_account_uses_the_users_keys() {
    let crate::options::HookAccount {
        root, policy: p, ..
    } = auth::parse_account(
        br#"{"root": "/srv/ftp/carol", "permissions": ["read", "write"],
             "download_rate": "1M", "upload_rate": 10, "deny_from": ["10.0.0.0/8"],
             "max_sessions": 2}"#,
        false,
    )
    .unwrap();
    assert_eq!(root, std::path::Path::new("/srv/ftp/carol"));
    assert_eq!(p.max_sessions, 2);
    let a = auth::parse_account(br#"{"root": "s3://b/carol", "s3_profile": "other"}"#, false);
    assert_eq!(a.unwrap().profile.as_deref(), Some("other"));
    assert!(auth::parse_account(br#"{"root": "/x", "s3_profile": 1}"#, false).is_err());
    let a = auth::parse_account(
        br#"{"root": "az://ctr/carol", "storage_profile": "p"}"#,
        false,
    );
    assert_eq!(a.unwrap().profile.as_deref(), Some("p"));
    let e = auth::parse_account(
        br#"{"root": "/x", "storage_profile": "a", "s3_profile": "b"}"#,
        false,
    )
    .unwrap_err();
    assert!(e.contains("give one"), "{e}");
    assert!(p.permissions.write && !p.permissions.delete);
    assert_eq!((p.download_rate, p.upload_rate), (1 << 20, 10));
    assert!(!p.networks.permits("10.1.2.3".parse().unwrap()));
    let e = auth::parse_account(br#"{"root": "/x", "permissions": ["fly"]}"#, false).unwrap_err();
    assert!(e.contains("account.permissions"), "{e}");
    let e = auth::parse_account(br#"{"root": "/x", "tls_mode": "required"}"#, false).unwrap_err();
    assert!(e.contains("need a [tls] section"), "{e}");
    assert!(auth::parse_account(br#"{"permissions": []}"#, false).is_err());
    assert!(auth::parse_account(br#"{"root": "/x", "password_hash": "y"}"#, false).is_err());
    assert!(auth::parse_account(b"not json", false).is_err());
}

#[test]
fn migrated_password_hashes() {
    let d = tempfile::tempdir().unwrap();
    let user = |hash: &str| {
        format!(
            "[[users]]\nname = \"u\"\npassword_hash = '{hash}'\nroot = \"{}\"\n",
            d.path().display()
        )
    };
    let (o, w) = parse(&user(
        "$2b$04$abcdefghijklmnopqrstuuPNYwVOe4IPqHSbsUSH0.F4me0N.1dxC",
    ))
    .unwrap();
    assert!(
        o.users[0].password_hash.starts_with("$2b$") && w.is_empty(),
        "{w:?}"
    );
    let (_, w) = parse(&user("$1$abcdefgh$y4zchvpz5BpIro6mZ46ji/")).unwrap();
    assert!(
        w.iter()
            .any(|m| m.starts_with("users[0].password_hash: MD5 crypt")),
        "{w:?}"
    );
    let e = parse(&user("5f4dcc3b5aa765d61d8327deb882cf99"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("users[0].password_hash: not a salted hash"),
        "{e}"
    );
}

#[test]
fn auth_ldap_section() {
    use crate::options::LdapLookup;
    let (o, w) = parse(
        "[auth]\norder = [\"config\", \"ldap\"]\n[auth.ldap]\nurl = \"ldap://127.0.0.1:389\"\n\
         search_base = \"ou=people,dc=example,dc=org\"\nservice_dn = \"cn=s\"\nservice_password = \"p\"\n\
         root = \"/srv/ftp/{user}\"\n[auth.ldap.groups]\n\"CN=W,dc=x\" = [\"write\"]\n",
    )
    .unwrap();
    assert!(w.is_empty(), "{w:?}");
    let l = o.auth.ldap.unwrap();
    assert!(matches!(
        &l.lookup,
        LdapLookup::Search { filter, service: Some(_), .. } if filter == "(uid={user})"
    ));
    assert_eq!(
        l.groups,
        vec![("cn=w,dc=x".to_owned(), vec!["write".to_owned()])]
    );
    // A direct bind that is not last: warned about.
    let (_, w) = parse(
        "[auth]\norder = [\"ldap\", \"config\"]\n[auth.ldap]\nurl = \"ldap://h\"\n\
         bind_dn = \"uid={user},dc=x\"\nroot = \"/srv/{user}\"\n",
    )
    .unwrap();
    assert!(
        w.iter().any(|m| m.contains("decides for every name")),
        "{w:?}"
    );
    let e = parse(
        "[auth]\norder = [\"ldap\"]\n[auth.ldap]\nurl = \"http://h\"\nroot = \"srv\"\n\
         service_dn = \"cn=s\"\npermissions = [\"fly\"]\n[auth.ldap.groups]\n\"cn=g\" = [\"swim\"]\n",
    )
    .unwrap_err()
    .0;
    for needle in [
        "auth.ldap.url: \"http://h\"",
        "auth.ldap: set one of bind_dn",
        "auth.ldap.root: \"srv\" is not an absolute path",
        "auth.ldap.permissions:",
        "auth.ldap.groups.\"cn=g\":",
    ] {
        assert!(e.iter().any(|m| m.starts_with(needle)), "{needle}: {e:?}");
    }
    let e = parse(
        "[auth]\norder = [\"ldap\"]\n[auth.ldap]\nurl = \"ldaps://h\"\nstarttls = true\n\
         ca_file = \"/nonexistent.pem\"\nbind_dn = \"uid=x\"\nroot = \"/r\"\n",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("auth.ldap.starttls"), "{e}");
    assert!(e.contains("auth.ldap.ca_file: /nonexistent.pem"), "{e}");
    assert!(e.contains("auth.ldap.bind_dn: must contain {user}"), "{e}");
}

#[test]
fn a_users_entry_is_its_login_and_the_account_keys() {
    let entry = |extra: &str| {
        parse(&format!(
            "[[users]]\nname = \"bob\"\npassword_hash = \"$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA\"\nroot = \"/srv\"\n{extra}"
        ))
    };
    let (o, _) = entry("permissions = [\"read\", \"write\"]\nupload_rate = \"1K\"\n").unwrap();
    assert_eq!(o.users[0].name, "bob");
    assert!(o.users[0].policy.permissions.write);
    assert_eq!(o.users[0].policy.upload_rate, 1024);
    let e = entry("colour = \"red\"\n").unwrap_err().to_string();
    assert!(e.contains("users[0].colour: unknown key"), "{e}");
    let e = parse("[[users]]\nname = \"bob\"\nroot = \"/srv\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing key `password_hash`"), "{e}");
    let e = parse("[[users]]\nname = 7\npassword_hash = \"x\"\nroot = \"/srv\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("name: expected a string"), "{e}");
    let e = entry("s3_profile = \"p\"\n").unwrap_err().to_string();
    assert!(e.contains("users[0].storage_profile"), "{e}");
    let e = entry("storage_profile = \"p\"\n").unwrap_err().to_string();
    assert!(e.contains("users[0].storage_profile"), "{e}");
    let e = entry("storage_profile = \"p\"\ns3_profile = \"p\"\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("one key: give one"), "{e}");
    // A bad value names its key, as anywhere else in the file.
    let e = entry("max_sessions = -1\n").unwrap_err().to_string();
    assert!(e.contains("max_sessions: invalid value"), "{e}");
    let e = parse("[auth.ldap]\nurl = \"ldap://x\"\nbind_dn = \"uid={user}\"\nroot = \"/srv\"\npool_size = \"many\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("auth.ldap.pool_size: a number is needed, not the string \"many\""),
        "{e}"
    );
}

#[test]
fn proxy_data_without_header() {
    let (o, warnings) =
        parse("[proxy_protocol]\nfrom = [\"10.0.0.5\"]\ndata_without_header = true\n").unwrap();
    let p = o.proxy.unwrap();
    assert!(p.data_without_header && !p.data);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("hijack guard cannot tell the balancer's clients apart"),
        "{warnings:?}"
    );
    // Off by default.
    let (o, _) = parse("[proxy_protocol]\nfrom = [\"10.0.0.5\"]\n").unwrap();
    assert!(!o.proxy.unwrap().data_without_header);
    let e = parse(
        "[passive]\nsingle_port = 40000\n[proxy_protocol]\ndata = true\ndata_without_header = true\n",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("data_without_header: needs proxy_protocol.from"),
        "{e}"
    );
    assert!(e.contains("contradicts proxy_protocol.data = true"), "{e}");
    assert!(
        e.contains("data_without_header: passive.single_port"),
        "{e}"
    );
}

#[test]
fn secrets_never_show_in_a_debug_print_of_the_options() {
    let (o, _) = parse(
        "[auth]\norder = [\"config\", \"http\", \"ldap\"]\n\
         [auth.http]\nurl = \"https://hook.example/ftp\"\nbearer_token = \"tok-SECRET-1\"\n\
         [auth.ldap]\nurl = \"ldap://127.0.0.1\"\nsearch_base = \"dc=example\"\n\
         service_dn = \"cn=svc\"\nservice_password = \"pw-SECRET-2\"\nroot = \"/srv/{user}\"\n\
         [s3]\nendpoint = \"http://127.0.0.1:9000\"\nallow_http = true\n\
         access_key_id = \"AKID\"\nsecret_access_key = \"sk-SECRET-3\"\n",
    )
    .unwrap();
    let printed = format!("{o:?}");
    assert!(
        printed.contains("cn=svc") && printed.contains("hook.example"),
        "{printed}"
    );
    assert!(!printed.contains("SECRET"), "{printed}");
}

#[test]
fn the_start_up_summary_names_the_account_back_ends_in_order() {
    let (o, _) = parse(
        "[auth]\norder = [\"ldap\", \"config\", \"http\"]\ncache_ttl = \"30s\"\n\
         allowed_roots = [\"/srv\", \"s3://ftp-files/home\"]\n\
         [auth.http]\nurl = \"https://svc:hunter2@hook.example/ftp\"\n\
         [auth.ldap]\nurl = \"ldap://127.0.0.1\"\nbind_dn = \"uid={user},dc=example\"\nroot = \"/srv/{user}\"\n",
    )
    .unwrap();
    let b = crate::server::banner(&o, &["127.0.0.1:2121".parse().unwrap()], &[], &[]);
    let line = b
        .lines()
        .find(|l| l.starts_with("accounts, asked in turn: "))
        .unwrap_or_else(|| panic!("{b}"));
    assert_eq!(
        line,
        "accounts, asked in turn: ldap ldap://127.0.0.1; config; \
         http hook https://***@hook.example/ftp (successful logins cached 30s), \
         their roots under /srv, s3://ftp-files/home"
    );
    let (o, _) = parse("").unwrap();
    let b = crate::server::banner(&o, &["127.0.0.1:2121".parse().unwrap()], &[], &[]);
    assert!(!b.contains("accounts, asked in turn"), "{b}");
}

#[test]
fn events_hooks_are_validated_with_their_keys() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().display();
    let base = format!(
        "[server]\nnode_name = \"ftp-1\"\n[anonymous]\nenabled = true\nroot = \"{root}\"\n"
    );
    let good = format!(
        r#"{base}
[[events.hooks]]
name = "ingest"
on = ["upload", "rename"]
paths = ["/in/**/*.csv"]
users = ["alice"]
min_size = 10
action = "http"
url = "https://user:pw@hooks.example.org/ftp"
headers = {{ X-Team = "ftp" }}
secret = "k"
retry_delay = "200ms"
"#
    );
    let (o, _) = parse(&good).unwrap();
    assert_eq!(o.node_name, "ftp-1");
    let h = &o.events.hooks[0];
    assert_eq!(h.on, [EventKind::Upload, EventKind::Rename]);
    let globs = h.filter.paths.as_ref().unwrap();
    assert!(globs.is_match("/in/a/b/x.csv"));
    assert!(!globs.is_match("/in.csv"));
    assert!(!globs.is_match("/other/in/x.csv"));
    assert_eq!(h.retry_delay, Duration::from_millis(200));
    // Neither the secret nor the URL's password in a debug print.
    let shown = format!("{o:?}");
    assert!(
        !shown.contains("pw@") && !shown.contains("secret: Some"),
        "{shown}"
    );

    let bad = format!(
        r#"{base}
[[events.hooks]]
name = "a b"
on = ["uplod"]
paths = ["/in/[x"]
action = "http"
url = "ftp://example.org/"
[[events.hooks]]
name = "c"
on = []
action = "mail"
concurrency = 0
[[events.hooks]]
name = "d"
on = ["pre_upload", "upload"]
action = "http"
url = "http://127.0.0.1/"
on_failure = "maybe"
"#
    );
    let e = parse(&bad).unwrap_err().0.join("\n");
    for want in [
        "events.hooks[0].name:",
        "events.hooks[0].on: unknown event \"uplod\"",
        "events.hooks[0].paths: \"/in/[x\"",
        "events.hooks[0].url:",
        "events.hooks[1].on: names no event",
        "events.hooks[1].action: unknown action \"mail\"",
        "events.hooks[1].concurrency: must be more than 0",
        "events.hooks[2].on: pre_upload, pre_download and pre_delete are asked before",
        "events.hooks[2].on_failure: \"maybe\" is not",
    ] {
        assert!(e.contains(want), "{want} not in:\n{e}");
    }
}

#[test]
fn a_command_hook_must_name_an_executable() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().display();
    let text = |cmd: &str| {
        format!(
            "[anonymous]\nenabled = true\nroot = \"{root}\"\n[[events.hooks]]\nname = \"c\"\n\
             on = [\"upload\"]\naction = \"command\"\ncommand = {cmd}\n"
        )
    };
    let (o, _) = parse(&text(r#"["/bin/sh", "-c", "true"]"#)).unwrap();
    assert!(matches!(
        o.events.hooks[0].action,
        crate::options::HookAction::Command(_)
    ));
    let plain = d.path().join("not-executable");
    std::fs::write(&plain, "").unwrap();
    for (cmd, want) in [
        ("[]".to_owned(), "needs a command"),
        (r#"["sh"]"#.to_owned(), "not an absolute path"),
        (
            r#"["/nonexistent/x"]"#.to_owned(),
            "/nonexistent/x: No such file",
        ),
        (
            format!("[{:?}]", plain.display().to_string()),
            "is not an executable file",
        ),
    ] {
        let e = parse(&text(&cmd)).unwrap_err().0.join("\n");
        assert!(e.contains(want), "{cmd}: {want} not in {e}");
    }
}

mod explain;
mod start;

#[test]
fn quota_keys_on_every_kind_of_account_and_the_rescan() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().display();
    let hash = crate::auth::users::hash_password("x");
    let text = format!(
        "[limits]\nquota_rescan = \"1h\"\n\
         [anonymous]\nenabled = true\nroot = \"{root}\"\nupload = true\nquota_bytes = \"1G\"\n\
         [[users]]\nname = \"alice\"\npassword_hash = \"{hash}\"\nroot = \"{root}\"\n\
         quota_bytes = \"2T\"\nquota_files = 10\n\
         [[users]]\nname = \"bob\"\npassword_hash = \"{hash}\"\nroot = \"{root}\"\n\
         [auth]\norder = [\"config\", \"ldap\"]\n\
         [auth.ldap]\nurl = \"ldap://127.0.0.1\"\nsearch_base = \"dc=x\"\nroot = \"{root}/{{user}}\"\n\
         quota_bytes = 1000\n"
    );
    let (o, w) = parse(&text).unwrap();
    assert!(w.is_empty(), "{w:?}");
    let q = |bytes, files| crate::options::QuotaLimits { bytes, files };
    assert_eq!(o.users[0].policy.quota, q(Some(2 << 40), Some(10)));
    assert!(o.users[1].policy.quota.is_unlimited());
    assert_eq!(o.anonymous.unwrap().quota, q(Some(1 << 30), None));
    assert_eq!(o.auth.ldap.unwrap().policy.quota, q(Some(1000), None));
    assert_eq!(
        o.limits.quota_rescan,
        Some(std::time::Duration::from_secs(3600))
    );
    assert_eq!(parse("").unwrap().0.limits.quota_rescan, None);
    // A hook's answer takes them too.
    let a = auth::parse_account(
        br#"{"root": "/x", "quota_bytes": "5M", "quota_files": 3}"#,
        false,
    );
    assert_eq!(a.unwrap().policy.quota, q(Some(5 << 20), Some(3)));
    let e = auth::parse_account(br#"{"root": "/x", "quota_bytes": "5X"}"#, false).unwrap_err();
    assert!(
        e.contains("account.quota_bytes: \"5X\" is not a size"),
        "{e}"
    );
    let e = parse(&format!(
        "[[users]]\nname = \"c\"\npassword_hash = \"{hash}\"\nroot = \"{root}\"\nquota_bytes = \"lots\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("users[0].quota_bytes: \"lots\" is not a size"),
        "{e}"
    );
}

#[test]
fn azure_section_and_az_roots() {
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$RdescudvJCsgt3ub+b+dWRWJTmaaJObG";
    let users = format!(
        "[[users]]\nname = \"a\"\npassword_hash = \"{hash}\"\nroot = \"az://ctr/a\"\n\
         [[users]]\nname = \"b\"\npassword_hash = \"{hash}\"\nroot = \"az://ctr2\"\nstorage_profile = \"other\"\n\
         [[users]]\nname = \"c\"\npassword_hash = \"{hash}\"\nroot = \"az://ctr3\"\ns3_profile = \"other\"\n"
    );
    let good = format!(
        "[azure]\naccount = \"devstoreaccount1\"\naccess_key = \"a2V5\"\n\
         endpoint = \"http://127.0.0.1:10000/devstoreaccount1\"\nallow_http = true\n\
         block_size = \"4M\"\nupload_streams = 3\nblock_doubling = 50000\n\
         [azure.profiles.other]\nsas_token = \"?sv=2022&sig=abc\"\n{users}"
    );
    let (o, _) = parse(&good).unwrap();
    let az = &o.stores.azure;
    assert_eq!(az.default.tuning.part_size, 4 << 20);
    assert_eq!(az.default.tuning.upload_streams, 3);
    assert_eq!(az.default.tuning.part_doubling, 50_000);
    let other = &az.profiles["other"];
    // A profile's credential replaces the other kind; the rest is [azure]'s.
    assert_eq!(other.sas_token.as_deref(), Some("sv=2022&sig=abc"));
    assert!(other.access_key.is_none());
    assert_eq!(other.account.as_deref(), Some("devstoreaccount1"));
    let roots: Vec<String> = o.users.iter().map(|u| u.root.to_string()).collect();
    assert_eq!(
        roots,
        [
            "az://ctr/a",
            "az://ctr2 (azure profile other)",
            "az://ctr3 (azure profile other)"
        ]
    );
    let e = parse(
        "[azure]\naccount = \"Bad_Name\"\naccess_key = \"k\"\nsas_token = \"sv=1\"\n\
         endpoint = \"http://x\"\nblock_size = \"8G\"\nupload_streams = 0\nblock_doubling = 0\n\
         [[users]]\nname = \"a\"\npassword_hash = \"x\"\nroot = \"az://ctr/a\"\nstorage_profile = \"nope\"\n",
    )
    .unwrap_err()
    .0;
    for needle in [
        "azure.account: \"Bad_Name\" is not a storage account name",
        "azure.access_key: and azure.sas_token: give one",
        "azure.endpoint: \"http://x\" is plain HTTP",
        "azure.block_size: ",
        "azure.upload_streams: 0 is not 1 to 16",
        "azure.block_doubling: 0 is not 1 to 50000",
        "users[0].storage_profile: no [azure.profiles.nope] section",
    ] {
        assert!(e.iter().any(|m| m.starts_with(needle)), "{needle}: {e:?}");
    }
    let e = parse("[anonymous]\nenabled = true\nroot = \"az://Bad\"\n")
        .unwrap_err()
        .0;
    assert!(e[0].contains("is not a container name"), "{e:?}");
}

#[test]
fn acme_keys() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().display();
    let user = format!(
        "[[users]]\nname = \"a\"\npassword_hash = \"{}\"\nroot = \"{root}\"\n",
        crate::auth::users::hash_password("x")
    );
    // Defaults: Let's Encrypt production, port 80, 30 days; the served
    // files are the state directory's.
    let (o, _) = parse(&format!(
        "[tls]\n[tls.acme]\ndomains = [\"ftp.example.com\"]\ncontact = [\"ops@example.com\"]\n{user}"
    ))
    .unwrap();
    let t = o.tls.unwrap();
    let a = t.acme.clone().unwrap();
    assert_eq!(a.directory, crate::options::LETS_ENCRYPT);
    assert_eq!(a.contact, ["mailto:ops@example.com"]);
    assert_eq!(a.http_listen, "[::]:80".parse().unwrap());
    assert_eq!(a.renew_before, std::time::Duration::from_secs(30 * 86400));
    assert_eq!(t.cert, a.state_dir.join("cert.pem"));
    assert_eq!(t.key, a.state_dir.join("key.pem"));
    // Both, neither, and bad values: each named with its key.
    let e = parse(&format!(
        "[tls]\ncert = \"/c\"\n[tls.acme]\ndomains = [\"a.example\"]\n{user}"
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("not both"), "{e}");
    let e = parse(&format!("[tls]\nmode = \"required\"\n{user}"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("or [tls.acme] is set"), "{e}");
    let e = parse(&format!(
        "[tls.acme]\ndomains = [\"*.example.com\", \"\"]\ncontact = [\"nobody\"]\n\
         directory = \"ftp://ca\"\nstate_dir = \"relative\"\nhttp_listen = \"80\"\n\
         renew_before = \"0s\"\n{user}"
    ))
    .unwrap_err()
    .to_string();
    for key in [
        "tls.acme.domains[0]",
        "tls.acme.domains[1]",
        "tls.acme.contact[0]",
        "tls.acme.directory",
        "tls.acme.state_dir",
        "tls.acme.http_listen",
        "tls.acme.renew_before",
    ] {
        assert!(e.contains(key), "missing {key:?} in:\n{e}");
    }
    let e = parse(&format!("[tls.acme]\ndomains = []\n{user}"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("tls.acme.domains: at least one"), "{e}");
}

#[test]
fn acme_challenge_tls_alpn_01_needs_an_implicit_listener_and_warns_off_443() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().display();
    let hash = crate::auth::users::hash_password("x");
    let text = |tls: &str, challenge: &str| {
        format!(
            "[tls]\n{tls}\n[tls.acme]\ndomains = [\"ftp.example.com\"]\nstate_dir = \"{root}/acme\"\n\
             {challenge}\n[[users]]\nname = \"a\"\npassword_hash = \"{hash}\"\nroot = \"{root}\"\n"
        )
    };
    // HTTP-01 unless asked.
    let (o, w) = parse(&text("", "")).unwrap();
    let a = o.tls.unwrap().acme.unwrap();
    assert_eq!(a.challenge, crate::options::AcmeChallenge::Http01);
    assert!(w.is_empty(), "{w:?}");
    let (o, w) = parse(&text(
        "implicit_listen = [\"[::]:443\"]",
        "challenge = \"tls-alpn-01\"",
    ))
    .unwrap();
    let a = o.tls.unwrap().acme.unwrap();
    assert_eq!(a.challenge, crate::options::AcmeChallenge::TlsAlpn01);
    assert!(w.is_empty(), "{w:?}");
    let (_, w) = parse(&text(
        "implicit_listen = [\"[::]:990\"]",
        "challenge = \"tls-alpn-01\"",
    ))
    .unwrap();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("port 443"), "{w:?}");
    let e = parse(&text("", "challenge = \"tls-alpn-01\""))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tls.acme.challenge: \"tls-alpn-01\" needs an implicit-FTPS listener"),
        "{e}"
    );
    let e = parse(&text("", "challenge = \"dns-01\""))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("tls.acme.challenge: \"dns-01\" is not one of"),
        "{e}"
    );
}
