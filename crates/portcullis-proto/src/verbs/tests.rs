use super::*;

#[test]
fn every_verb_parses_and_reports_its_own_name() {
    for verb in VERBS {
        for name in std::iter::once(verb.name).chain(verb.aliases.iter().copied()) {
            // Each with the argument it needs, so that only the verb is tested.
            let line = match (name, verb.arg) {
                ("SITE", _) => "SITE HELP".to_owned(),
                ("ALLO", _) => "ALLO 10".to_owned(),
                ("TYPE", _) => "TYPE I".to_owned(),
                ("MODE", _) => "MODE S".to_owned(),
                ("STRU", _) => "STRU F".to_owned(),
                ("PORT", _) => "PORT 127,0,0,1,4,1".to_owned(),
                ("EPRT", _) => "EPRT |1|127.0.0.1|1025|".to_owned(),
                ("AUTH", _) => "AUTH TLS".to_owned(),
                ("PBSZ", _) => "PBSZ 0".to_owned(),
                ("PROT", _) => "PROT P".to_owned(),
                ("REST", _) => "REST 0".to_owned(),
                ("OPTS", _) => "OPTS UTF8 ON".to_owned(),
                ("MFMT", _) => "MFMT 20200101000000 f".to_owned(),
                ("EPSV", _) => "EPSV 2".to_owned(),
                ("RANG", _) => "RANG 0 9".to_owned(),
                (_, Arg::Never(_)) => name.to_owned(),
                _ => format!("{name} x"),
            };
            let cmd = Command::parse(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(cmd.verb(), verb.name, "{line}");
            assert_eq!(lookup(name).map(|v| v.name), Some(verb.name));
            // The shape is the row's: what it may not take, or must.
            let bare = Command::parse(name.as_bytes());
            match verb.arg {
                Arg::Never(_) => assert_eq!(
                    Command::parse(format!("{name} x").as_bytes()),
                    Err(ParseError::BadArgument(format!(
                        "{} takes no argument",
                        verb.name
                    )))
                ),
                Arg::Required(_) => {
                    assert_eq!(bare, Err(ParseError::MissingArgument(verb.name)))
                }
                Arg::Ignored(_) | Arg::Optional(_) => {
                    assert_eq!(bare.map(|c| c.verb()), Ok(verb.name))
                }
            }
        }
    }
    assert!(lookup("XYZZ").is_none());
    assert!(lookup("PASV\0").is_none(), "the index pads with zeros");
    assert!(lookup("TOOLONGVERB").is_none());
    assert!(VERBS.windows(2).all(|w| w[0].name < w[1].name));
}

fn encoded(r: &Reply) -> String {
    let mut out = Vec::new();
    r.encode(&mut out);
    String::from_utf8(out).unwrap()
}

fn facts() -> Vec<&'static str> {
    listing::MLST_FACTS.to_vec()
}

/// FEAT's reply, byte for byte as clients have seen it: TLS's lines
/// first when the server has it, MFMT only where the storage can set
/// times, MLST with the session's facts starred.
#[test]
fn feat_reply_is_pinned() {
    let all = |_: Capability| true;
    assert_eq!(
        encoded(&feat(false, &all, &facts(), HashAlgorithm::Sha256)),
        "211-Features:\r\n AVBL\r\n EPRT\r\n EPSV\r\n HASH SHA-1;SHA-256*;SHA-512;MD5;CRC32\r\n \
         MDTM\r\n MFMT\r\n MLST type*;size*;modify*;perm*;unix.mode*;\r\n PASV\r\n \
         RANG STREAM\r\n REST STREAM\r\n SIZE\r\n TVFS\r\n UTF8\r\n211 End\r\n"
    );
    // Hashing off (limits.hash = false): neither HASH nor RANG.
    let object_store = |c: Capability| {
        c != Capability::Append && c != Capability::SetTimes && c != Capability::Hash
    };
    assert_eq!(
        encoded(&feat(true, &object_store, &["size"], HashAlgorithm::Md5)),
        "211-Features:\r\n AUTH TLS\r\n PBSZ\r\n PROT\r\n AVBL\r\n EPRT\r\n EPSV\r\n MDTM\r\n \
         MLST type;size*;modify;perm;unix.mode;\r\n PASV\r\n REST STREAM\r\n \
         SIZE\r\n TVFS\r\n UTF8\r\n211 End\r\n"
    );
}

/// HELP's reply, byte for byte: every name and alias, eight to a line;
/// what the storage cannot do is neither listed nor explained.
#[test]
fn help_reply_is_pinned() {
    let all = |_: Capability| true;
    assert_eq!(
        encoded(&help(None, &all)),
        "214-The following commands are recognized:\r\n \
         ABOR ACCT ALLO APPE AUTH AVBL CCC CDUP\r\n \
         CWD DELE EPRT EPSV FEAT HASH HELP LIST\r\n \
         MDTM MFMT MKD MLSD MLST MODE NLST NOOP\r\n \
         OPTS PASS PASV PBSZ PORT PROT PWD QUIT\r\n \
         RANG REST RETR RMD RNFR RNTO SITE SIZE\r\n \
         STAT STOR STOU STRU SYST TYPE USER XCRC\r\n \
         XCUP XCWD XMD5 XMKD XPWD XRMD XSHA1 XSHA256\r\n \
         XSHA512\r\n214 Help OK.\r\n"
    );
    let no_append = |c: Capability| c != Capability::Append && c != Capability::Hash;
    assert_eq!(
        encoded(&help(None, &no_append)),
        "214-The following commands are recognized:\r\n \
         ABOR ACCT ALLO AUTH AVBL CCC CDUP CWD\r\n \
         DELE EPRT EPSV FEAT HELP LIST MDTM MFMT\r\n \
         MKD MLSD MLST MODE NLST NOOP OPTS PASS\r\n \
         PASV PBSZ PORT PROT PWD QUIT REST RETR\r\n \
         RMD RNFR RNTO SITE SIZE STAT STOR STOU\r\n \
         STRU SYST TYPE USER XCUP XCWD XMKD XPWD\r\n \
         XRMD\r\n214 Help OK.\r\n"
    );
    assert_eq!(
        encoded(&help(Some("XPWD"), &all)),
        "214 PWD: print the working directory (RFC 959).\r\n"
    );
    assert_eq!(
        encoded(&help(Some("APPE"), &all)),
        "214 APPE path: append to a file (RFC 959).\r\n"
    );
    assert_eq!(
        encoded(&help(Some("APPE"), &no_append)),
        "502 Unknown command APPE.\r\n"
    );
    assert_eq!(
        encoded(&help(Some("FOO"), &all)),
        "502 Unknown command FOO.\r\n"
    );
}
