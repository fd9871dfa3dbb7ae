use super::*;

fn p(s: &str) -> Result<Command, ParseError> {
    Command::parse(s.as_bytes())
}

#[test]
fn security_commands() {
    assert_eq!(p("AUTH TLS"), Ok(Command::Auth(AuthMechanism::Tls)));
    assert_eq!(p("auth tls-c"), Ok(Command::Auth(AuthMechanism::Tls)));
    assert_eq!(p("AUTH SSL"), Ok(Command::Auth(AuthMechanism::Ssl)));
    assert!(matches!(
        p("AUTH KERBEROS_V4"),
        Err(ParseError::Unsupported(_))
    ));
    assert_eq!(p("AUTH"), Err(ParseError::MissingArgument("AUTH")));
    assert_eq!(p("PBSZ 0"), Ok(Command::Pbsz(0)));
    assert_eq!(p("PBSZ 16384"), Ok(Command::Pbsz(16384)));
    assert!(matches!(p("PBSZ x"), Err(ParseError::BadArgument(_))));
    assert_eq!(p("PROT P"), Ok(Command::Prot(ProtLevel::Private)));
    assert_eq!(p("prot c"), Ok(Command::Prot(ProtLevel::Clear)));
    assert!(matches!(p("PROT S"), Err(ParseError::Unsupported(_))));
    assert!(matches!(p("PROT X"), Err(ParseError::BadArgument(_))));
    assert_eq!(p("CCC"), Ok(Command::Ccc));
}

#[test]
fn mfmt_takes_a_time_and_the_rest_as_path() {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
    assert_eq!(
        p("MFMT 20231114221320 my file.txt"),
        Ok(Command::Mfmt {
            time: t,
            path: "my file.txt".into()
        })
    );
    for bad in [
        "MFMT 20231114221320",
        "MFMT 20231114221320 ",
        "MFMT 2023 f",
        "MFMT 20231340221320 f",
        "MFMT f.txt",
    ] {
        assert!(matches!(p(bad), Err(ParseError::BadArgument(_))), "{bad}");
    }
    assert_eq!(p("MFMT"), Err(ParseError::MissingArgument("MFMT")));
}

#[test]
fn site_subcommands() {
    assert_eq!(p("SITE help"), Ok(Command::Site(SiteCommand::Help)));
    assert_eq!(
        p("SITE CHMOD 0644 a b.txt"),
        Ok(Command::Site(SiteCommand::Chmod {
            mode: 0o644,
            path: "a b.txt".into()
        }))
    );
    assert_eq!(
        p("site chmod 755 d"),
        Ok(Command::Site(SiteCommand::Chmod {
            mode: 0o755,
            path: "d".into()
        }))
    );
    for bad in [
        "SITE CHMOD 4755 f",
        "SITE CHMOD 8 f",
        "SITE CHMOD -1 f",
        "SITE CHMOD 644",
        "SITE CHMOD",
    ] {
        assert!(matches!(p(bad), Err(ParseError::BadArgument(_))), "{bad}");
    }
    assert_eq!(
        p("SITE umask 022"),
        Ok(Command::Site(SiteCommand::Other("UMASK".into())))
    );
}

#[test]
fn verbs_are_case_insensitive_and_x_variants_map() {
    assert_eq!(p("noop"), Ok(Command::Noop));
    assert_eq!(p("XPWD"), Ok(Command::Pwd));
    assert_eq!(p("xcwd /a"), Ok(Command::Cwd("/a".into())));
    assert_eq!(p("XCUP"), Ok(Command::Cdup));
    assert_eq!(p("XMKD d"), Ok(Command::Mkd("d".into())));
    assert_eq!(p("XRMD d"), Ok(Command::Rmd("d".into())));
}

#[test]
fn arguments_keep_spaces() {
    assert_eq!(
        p("RETR my file .txt"),
        Ok(Command::Retr("my file .txt".into()))
    );
    assert_eq!(
        p("PASS  two  spaces"),
        Ok(Command::Pass(" two  spaces".into()))
    );
    assert_eq!(p("PASS"), Ok(Command::Pass(String::new())));
}

#[test]
fn errors() {
    assert_eq!(p(""), Err(ParseError::Syntax));
    assert_eq!(p("12 x"), Err(ParseError::Syntax));
    assert_eq!(p("FOOBARBAZQ"), Err(ParseError::Syntax));
    assert_eq!(p("XYZZ"), Err(ParseError::Unknown("XYZZ".into())));
    assert_eq!(p("REIN"), Err(ParseError::Unknown("REIN".into())));
    assert_eq!(p("RETR"), Err(ParseError::MissingArgument("RETR")));
    assert_eq!(p("RETR   "), Err(ParseError::MissingArgument("RETR")));
    assert!(matches!(p("SYST x"), Err(ParseError::BadArgument(_))));
    assert_eq!(
        Command::parse(b"RETR \xff\xfe"),
        Err(ParseError::InvalidUtf8)
    );
}

#[test]
fn type_mode_stru() {
    assert_eq!(p("TYPE A"), Ok(Command::Type(TransferType::Ascii)));
    assert_eq!(p("TYPE a n"), Ok(Command::Type(TransferType::Ascii)));
    assert_eq!(p("TYPE I"), Ok(Command::Type(TransferType::Image)));
    assert_eq!(p("TYPE L 8"), Ok(Command::Type(TransferType::Image)));
    assert!(matches!(p("TYPE E"), Err(ParseError::Unsupported(_))));
    assert!(matches!(p("TYPE Q"), Err(ParseError::BadArgument(_))));
    assert_eq!(p("MODE s"), Ok(Command::Mode));
    assert!(matches!(p("MODE B"), Err(ParseError::Unsupported(_))));
    assert_eq!(p("STRU F"), Ok(Command::Stru));
    assert!(matches!(p("STRU R"), Err(ParseError::Unsupported(_))));
}

#[test]
fn port_and_eprt() {
    assert_eq!(
        p("PORT 127,0,0,1,4,1"),
        Ok(Command::Port("127.0.0.1:1025".parse().unwrap()))
    );
    assert!(matches!(
        p("PORT 127,0,0,1,4"),
        Err(ParseError::BadArgument(_))
    ));
    assert!(matches!(
        p("PORT 256,0,0,1,4,1"),
        Err(ParseError::BadArgument(_))
    ));
    assert_eq!(
        p("EPRT |1|132.235.1.2|6275|"),
        Ok(Command::Eprt("132.235.1.2:6275".parse().unwrap()))
    );
    assert_eq!(
        p("EPRT |2|1080::8:800:200C:417A|5282|"),
        Ok(Command::Eprt(
            "[1080::8:800:200C:417A]:5282".parse().unwrap()
        ))
    );
    assert_eq!(
        p("EPRT !1!10.0.0.1!99!"),
        Ok(Command::Eprt("10.0.0.1:99".parse().unwrap()))
    );
    assert!(matches!(p("EPRT |3|x|1|"), Err(ParseError::Unsupported(_))));
    assert!(matches!(
        p("EPRT |1|::1|1|"),
        Err(ParseError::BadArgument(_))
    ));
    assert!(matches!(
        p("EPRT |1|1.2.3.4|70000|"),
        Err(ParseError::BadArgument(_))
    ));
    assert!(matches!(
        p("EPRT 1|1.2.3.4|7|"),
        Err(ParseError::BadArgument(_))
    ));
}

#[test]
fn epsv() {
    assert_eq!(p("EPSV"), Ok(Command::Epsv(EpsvArg::Any)));
    assert_eq!(p("EPSV all"), Ok(Command::Epsv(EpsvArg::All)));
    assert_eq!(p("EPSV 2"), Ok(Command::Epsv(EpsvArg::Protocol(2))));
    assert!(matches!(p("EPSV 3"), Err(ParseError::Unsupported(_))));
}

#[test]
fn list_options_are_split_off() {
    assert_eq!(p("LIST"), Ok(Command::List(ListArgs::default())));
    assert_eq!(
        p("LIST -la"),
        Ok(Command::List(ListArgs {
            all: true,
            path: None
        }))
    );
    assert_eq!(
        p("LIST -l my dir"),
        Ok(Command::List(ListArgs {
            all: false,
            path: Some("my dir".into())
        }))
    );
    assert_eq!(
        p("NLST -a -l x"),
        Ok(Command::Nlst(ListArgs {
            all: true,
            path: Some("x".into())
        }))
    );
    assert_eq!(
        p("LIST -"),
        Ok(Command::List(ListArgs {
            all: false,
            path: Some("-".into())
        }))
    );
}

#[test]
fn opts_rest_misc() {
    assert_eq!(p("OPTS UTF8 ON"), Ok(Command::Opts(OptsArg::Utf8(true))));
    assert_eq!(
        p("OPTS MLST type;size;"),
        Ok(Command::Opts(OptsArg::Mlst(vec![
            "type".into(),
            "size".into()
        ])))
    );
    assert_eq!(
        p("OPTS FOO"),
        Ok(Command::Opts(OptsArg::Other("FOO".into())))
    );
    assert_eq!(p("REST 100"), Ok(Command::Rest(100)));
    assert!(matches!(p("REST -1"), Err(ParseError::BadArgument(_))));
    assert_eq!(p("ALLO 100 R 10"), Ok(Command::Allo(Some(100))));
    assert_eq!(p("ALLO 100"), Ok(Command::Allo(Some(100))));
    assert_eq!(p("ALLO  7  r  3 "), Ok(Command::Allo(Some(7))));
    assert_eq!(p("ALLO"), Ok(Command::Allo(None)));
    for bad in [
        "ALLO x",
        "ALLO -1",
        "ALLO 1 R",
        "ALLO 1 Q 2",
        "ALLO 1 R x",
        "ALLO 1 R 2 3",
    ] {
        assert!(matches!(p(bad), Err(ParseError::BadArgument(_))), "{bad}");
    }
    assert_eq!(p("AVBL"), Ok(Command::Avbl(None)));
    assert_eq!(p("AVBL dir"), Ok(Command::Avbl(Some("dir".into()))));
    assert_eq!(p("SITE quota"), Ok(Command::Site(SiteCommand::Quota)));
    assert_eq!(p("HELP list"), Ok(Command::Help(Some("LIST".into()))));
    assert_eq!(p("STOU"), Ok(Command::Stou(None)));
}

#[test]
fn never_panics_on_arbitrary_bytes() {
    let samples: &[&[u8]] = &[
        b"\xff",
        b" ",
        b"PORT ,,,,,",
        b"EPRT ||||",
        b"EPRT |",
        b"TYPE",
        b"OPTS  ",
        b"LIST --",
        b"\0\0\0",
    ];
    for s in samples {
        let _ = Command::parse(s);
    }
}
