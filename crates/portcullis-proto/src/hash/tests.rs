use super::*;
use crate::command::{Command, OptsArg};

fn parse(line: &str) -> Result<Command, ParseError> {
    Command::parse(line.as_bytes())
}

#[test]
fn algorithm_names_are_case_insensitive() {
    for a in HashAlgorithm::ALL {
        assert_eq!(HashAlgorithm::from_name(a.name()), Some(a));
        assert_eq!(
            HashAlgorithm::from_name(&a.name().to_ascii_lowercase()),
            Some(a)
        );
    }
    assert_eq!(HashAlgorithm::from_name("CRC-37"), None);
    assert_eq!(HashAlgorithm::from_name("SHA256"), None);
    assert_eq!(HashAlgorithm::default(), HashAlgorithm::Sha256);
}

#[test]
fn feat_line_stars_the_selection() {
    assert_eq!(
        feat_line(HashAlgorithm::Sha256),
        "HASH SHA-1;SHA-256*;SHA-512;MD5;CRC32"
    );
    assert_eq!(
        feat_line(HashAlgorithm::Crc32),
        "HASH SHA-1;SHA-256;SHA-512;MD5;CRC32*"
    );
}

#[test]
fn opts_hash() {
    assert_eq!(
        parse("OPTS HASH"),
        Ok(Command::Opts(OptsArg::Hash(HashOpt::Query)))
    );
    assert_eq!(
        parse("opts hash sha-512"),
        Ok(Command::Opts(OptsArg::Hash(HashOpt::Select(
            HashAlgorithm::Sha512
        ))))
    );
    assert_eq!(
        parse("OPTS HASH CRC-37"),
        Ok(Command::Opts(OptsArg::Hash(HashOpt::Unknown(
            "CRC-37".into()
        ))))
    );
}

#[test]
fn hash_keeps_the_whole_path() {
    assert_eq!(
        parse("HASH a file with spaces.txt"),
        Ok(Command::Hash("a file with spaces.txt".into()))
    );
    assert_eq!(parse("HASH"), Err(ParseError::MissingArgument("HASH")));
}

#[test]
fn rang_table() {
    let ok = |s: &str, r: RangArg| assert_eq!(parse(s), Ok(Command::Rang(r)), "{s}");
    ok("RANG 0 49", RangArg::Range { start: 0, end: 49 });
    ok("RANG 7 7", RangArg::Range { start: 7, end: 7 });
    ok("RANG  1   0 ", RangArg::Reset);
    for bad in [
        "RANG 5",
        "RANG 5 4",
        "RANG a b",
        "RANG -1 4",
        "RANG +1 4",
        "RANG 1 2 3",
        "RANG 99999999999999999999 1",
    ] {
        assert!(
            matches!(parse(bad), Err(ParseError::BadArgument(_))),
            "{bad}: {:?}",
            parse(bad)
        );
    }
}

#[test]
fn x_verbs_take_a_path_and_offsets() {
    let x = |path: &str, start, end| XHashArgs {
        path: path.into(),
        start,
        end,
    };
    assert_eq!(parse("XCRC f"), Ok(Command::Xcrc(x("f", None, None))));
    assert_eq!(
        parse("XMD5 dir/f 10"),
        Ok(Command::Xmd5(x("dir/f", Some(10), None)))
    );
    assert_eq!(
        parse("XSHA1 a b 10 20"),
        Ok(Command::Xsha1(x("a b", Some(10), Some(20))))
    );
    assert_eq!(
        parse("XSHA256 \"name 1 2\" 3 4"),
        Ok(Command::Xsha256(x("name 1 2", Some(3), Some(4))))
    );
    assert_eq!(
        parse("XSHA512 \"name 1 2\""),
        Ok(Command::Xsha512(x("name 1 2", None, None)))
    );
    // A name of digits alone is a name.
    assert_eq!(parse("XCRC 123"), Ok(Command::Xcrc(x("123", None, None))));
    for bad in ["XCRC f 20 10", "XCRC \"f", "XCRC \"f\" x", "XCRC \"\" 1"] {
        assert!(
            matches!(parse(bad), Err(ParseError::BadArgument(_))),
            "{bad}: {:?}",
            parse(bad)
        );
    }
    let c = parse("XSHA512 f").unwrap();
    assert_eq!(c.x_hash().map(|(a, _)| a), Some(HashAlgorithm::Sha512));
    assert_eq!(parse("HASH f").unwrap().x_hash(), None);
}
