use super::*;

/// FTPS with an implicit-TLS listener on `addr`.
fn implicit_tls(addr: &str) -> crate::options::TlsOptions {
    crate::options::TlsOptions {
        cert: "c".into(),
        key: "k".into(),
        mode: crate::options::TlsMode::Optional,
        data_protection: crate::options::DataProtection::Optional,
        require_session_reuse: true,
        implicit_listen: vec![addr.parse().unwrap()],
        anonymous_exempt: false,
        handshake_timeout: std::time::Duration::from_secs(10),
        allow_ccc: false,
        client_auth: None,
        acme: None,
    }
}

#[test]
fn rules_follow_the_options() {
    let mut o = ServerOptions::with_anonymous_root(".".into());
    o.listen = vec!["0.0.0.0:21".parse().unwrap(), "[::]:21".parse().unwrap()];
    o.active.source_port = 20;
    let nft = rules(&o, Format::Nftables);
    assert!(nft.contains("tcp dport '{ 21 }' accept"), "{nft}");
    o.tls = Some(implicit_tls("0.0.0.0:990"));
    let with_implicit = rules(&o, Format::Nftables);
    assert!(
        with_implicit.contains("tcp dport '{ 21, 990 }' accept"),
        "{with_implicit}"
    );
    o.tls = None;
    assert!(nft.contains("tcp dport 40000-40999 accept"), "{nft}");
    assert!(nft.contains("tcp sport 20 tcp dport 1024-65535"), "{nft}");
    o.passive.enabled = false;
    o.active.enabled = false;
    let ipt = rules(&o, Format::Iptables);
    assert!(ipt.contains("iptables -I INPUT -p tcp --dport 21 -j ACCEPT"));
    assert!(!ipt.contains("40000"));
    assert!(!ipt.contains("OUTPUT"));
    assert!(rules(&o, Format::Ufw).contains("ufw allow 21/tcp"));
    assert!(rules(&o, Format::Firewalld).contains("--add-port=21/tcp"));
    assert!(rules(&o, Format::Windows).contains("-LocalPort 21 "));
}

/// The rules the file puts into `chain`, in order (its last, filled block).
fn file_chain<'a>(file: &'a str, chain: &str) -> Vec<&'a str> {
    let head = format!("\tchain portcullis_{chain} {{\n");
    let body = &file[file.rfind(&head).unwrap() + head.len()..];
    body.lines()
        .take_while(|l| *l != "\t}")
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

#[test]
fn nftables_file_declares_fills_then_jumps() {
    let mut o = ServerOptions::with_anonymous_root(".".into());
    o.listen = vec!["0.0.0.0:21".parse().unwrap()];
    o.passive.ports = 50000..=50099;
    let f = rules(&o, Format::NftablesFile);
    // Every line outside the blocks is a comment, or a command in the
    // order that makes it work: declare, flush, fill, jump.
    let commands: Vec<&str> = f
        .lines()
        .filter(|l| !l.starts_with(['#', '\t', '}']))
        .collect();
    assert_eq!(
        commands,
        [
            "table inet filter {",
            "flush chain inet filter portcullis_input",
            "flush chain inet filter portcullis_output",
            "table inet filter {",
            "insert rule inet filter input jump portcullis_input comment \"portcullis\"",
            "insert rule inet filter output jump portcullis_output comment \"portcullis\"",
        ],
        "{f}"
    );
    assert!(f.contains("\tchain input {\n\t\ttype filter hook input priority 0;\n\t}\n"));
    assert!(f.contains("\tchain output {\n\t\ttype filter hook output priority 0;\n\t}\n"));
    // An existing chain's policy is never touched.
    let code: String = f.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(!code.contains("policy"), "{f}");
    assert_eq!(code.matches('{').count(), code.matches('}').count(), "{f}");
    assert_eq!(
        file_chain(&f, "input"),
        [
            "ct state established,related accept",
            "tcp dport { 21 } accept",
            "tcp dport 50000-50099 accept",
        ]
    );
    assert_eq!(
        file_chain(&f, "output"),
        [
            "ct state established,related accept",
            "tcp dport 1024-65535 ct state new accept",
        ]
    );
    // Active mode from port 20, passive off, and an implicit-TLS port.
    o.active.source_port = 20;
    o.passive.enabled = false;
    o.tls = Some(implicit_tls("[::]:990"));
    let f = rules(&o, Format::NftablesFile);
    assert_eq!(
        file_chain(&f, "input"),
        [
            "ct state established,related accept",
            "tcp dport { 21, 990 } accept"
        ]
    );
    assert_eq!(
        file_chain(&f, "output")[1],
        "tcp sport 20 tcp dport 1024-65535 ct state new accept"
    );
    o.active.enabled = false;
    let f = rules(&o, Format::NftablesFile);
    assert_eq!(
        file_chain(&f, "output"),
        ["ct state established,related accept"]
    );
}

#[test]
fn nftables_commands_and_file_hold_the_same_rules() {
    let mut o = ServerOptions::with_anonymous_root(".".into());
    o.active.source_port = 20;
    let cmds = rules(&o, Format::Nftables);
    let file = rules(&o, Format::NftablesFile);
    for chain in ["input", "output"] {
        let prefix = format!("nft insert rule inet filter {chain} ");
        // Inserted at the top one after the other: evaluated last to first.
        let mut inserted: Vec<String> = cmds
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .map(|r| r.replace('\'', ""))
            .collect();
        inserted.reverse();
        assert_eq!(inserted, file_chain(&file, chain), "{cmds}{file}");
    }
}

#[test]
fn the_single_passive_port_is_one_port_everywhere() {
    let mut o = ServerOptions::with_anonymous_root(".".into());
    o.listen = vec!["0.0.0.0:21".parse().unwrap()];
    o.passive.single_port = Some(40000);
    o.passive.ports = 40000..=40000;
    assert!(rules(&o, Format::Nftables).contains("tcp dport 40000 accept"));
    assert!(rules(&o, Format::Iptables).contains("--dport 40000 -j ACCEPT"));
    assert!(rules(&o, Format::Ufw).contains("ufw allow 40000/tcp"));
    assert!(rules(&o, Format::Firewalld).contains("--add-port=40000/tcp"));
    let bound = ["0.0.0.0:21".parse().unwrap()];
    let b = crate::server::banner(&o, &bound, &[], &[]);
    assert!(b.contains("one data port 40000 for every session"), "{b}");
    assert!(
        b.contains("inbound  TCP 40000  (passive data connections)"),
        "{b}"
    );
}

#[test]
fn acme_http_port_is_opened() {
    let mut o = ServerOptions::with_anonymous_root(".".into());
    o.listen = vec!["0.0.0.0:21".parse().unwrap()];
    let mut t = implicit_tls("0.0.0.0:990");
    t.acme = Some(crate::options::AcmeOptions {
        domains: vec!["ftp.example.com".into()],
        contact: Vec::new(),
        directory: crate::options::LETS_ENCRYPT.into(),
        ca_file: None,
        state_dir: "/var/lib/portcullis/acme".into(),
        challenge: crate::options::AcmeChallenge::Http01,
        http_listen: "[::]:80".parse().unwrap(),
        renew_before: std::time::Duration::from_secs(86400),
    });
    o.tls = Some(t);
    let nft = rules(&o, Format::Nftables);
    assert!(nft.contains("tcp dport '{ 21, 80, 990 }' accept"), "{nft}");
    assert!(nft.contains("Control connections: TCP 21, 990."), "{nft}");
    assert!(nft.contains("ACME HTTP-01 challenges"), "{nft}");
    let ufw = rules(&o, Format::Ufw);
    assert!(ufw.contains("80/tcp"), "{ufw}");
}
