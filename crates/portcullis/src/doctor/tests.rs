use super::*;

#[test]
fn urls() {
    let t = parse_url("ftp://alice:s3cret%20pass@ftp.example.org:2121/").unwrap();
    assert_eq!(
        (
            t.host.as_str(),
            t.port,
            t.user.as_str(),
            t.password.as_deref()
        ),
        ("ftp.example.org", 2121, "alice", Some("s3cret pass"))
    );
    let t = parse_url("ftp://198.51.100.7").unwrap();
    assert_eq!(
        (t.port, t.user.as_str(), t.password),
        (21, "anonymous", None)
    );
    let t = parse_url("ftp://bob@[2001:db8::1]:990").unwrap();
    assert_eq!(
        (t.host.as_str(), t.port, t.user.as_str()),
        ("2001:db8::1", 990, "bob")
    );
    assert!(parse_url("http://x").is_err());
    assert!(parse_url("ftp://:21").is_err());
    assert!(parse_url("ftp://h:port").is_err());
    assert!(parse_url("ftp://a%zz@h").is_err());
}

#[test]
fn passive_replies() {
    assert_eq!(
        parse_227("Entering Passive Mode (203,0,113,7,156,64)."),
        Some("203.0.113.7:40000".parse().unwrap())
    );
    assert_eq!(
        parse_227("Entering Passive Mode 10,0,0,1,0,21"),
        Some("10.0.0.1:21".parse().unwrap())
    );
    assert_eq!(parse_227("garbage"), None);
    assert_eq!(parse_227("(1,2,3,4,5)"), None);
    assert_eq!(
        parse_229("Entering Extended Passive Mode (|||40001|)"),
        Some(40001)
    );
    assert_eq!(
        parse_229("Entering Extended Passive Mode (!!!40001!)"),
        Some(40001)
    );
    assert_eq!(parse_229("no port"), None);
}

#[test]
fn private_addresses() {
    for a in [
        "10.1.2.3",
        "192.168.0.1",
        "172.16.5.5",
        "127.0.0.1",
        "100.64.0.1",
        "fd00::1",
    ] {
        assert!(is_private(a.parse().unwrap()), "{a}");
    }
    for a in ["203.0.113.7", "198.51.100.1", "2001:db8::1"] {
        assert!(!is_private(a.parse().unwrap()), "{a}");
    }
}

#[test]
fn exit_bits() {
    let mode = |m: &'static str, ok| ModeReport {
        mode: m,
        ok,
        detail: String::new(),
        cause: None,
        cause_id: None,
    };
    let mut r = Report {
        server: "h:21".into(),
        tls: false,
        fatal: None,
        modes: vec![
            mode("PASV", false),
            mode("EPSV", true),
            mode("PORT", false),
            mode("EPRT", true),
        ],
        notes: vec![],
    };
    assert_eq!(r.exit_code(), EXIT_PASV | EXIT_PORT);
    r.fatal = Some("x".into());
    assert_eq!(r.exit_code(), EXIT_FATAL);
}

/// Reached at a private address while PASV names a public one: a client
/// inside the LAN, advised a per-network answer, not a new passive.address.
#[test]
fn a_client_inside_the_lan_is_advised_a_per_network_answer() {
    let public: IpAddr = "203.0.113.7".parse().unwrap();
    let cause = modes::lan_client_advice(public, "192.168.1.10".parse().unwrap()).unwrap();
    assert!(cause.contains("Keep passive.address"), "{cause}");
    assert!(
        cause.contains(
            "[[passive.address_by_network]] with network = \"192.168.0.0/16\" and address = \"local\""
        ),
        "{cause}"
    );
    let cause = modes::lan_client_advice(public, "172.20.0.5".parse().unwrap()).unwrap();
    assert!(cause.contains("\"172.16.0.0/12\""), "{cause}");
    // Outside clients, or a private address advertised: the NAT advice.
    assert_eq!(
        modes::lan_client_advice(public, "198.51.100.9".parse().unwrap()),
        None
    );
    assert_eq!(
        modes::lan_client_advice("10.0.0.5".parse().unwrap(), "192.168.1.10".parse().unwrap()),
        None
    );
}
