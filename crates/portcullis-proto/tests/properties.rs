//! Properties over arbitrary input: framing and parsing never panic, no
//! resolved path escapes its root, replies always frame correctly, and
//! addresses (PORT/EPRT) and times (MDTM/MFMT) survive a round trip.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use portcullis_proto::command::Command;
use portcullis_proto::framing::{Frame, LineDecoder};
use portcullis_proto::path::VirtualPath;
use portcullis_proto::reply::{Reply, ReplyCode};
use proptest::prelude::*;

/// Path-ish strings: separators, dots, backslashes, NUL and unicode mixed in.
fn path_strategy() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("/".to_owned()),
        Just("//".to_owned()),
        Just("\\".to_owned()),
        Just("\0".to_owned()),
        Just("...".to_owned()),
        Just("ü".to_owned()),
        "[a-z]{1,4}",
        any::<String>(),
    ];
    proptest::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

fn check_normal(p: &VirtualPath) {
    for c in p.components() {
        assert!(!c.is_empty(), "empty component in {p}");
        assert!(c != ".." && c != ".", "dot component in {p}");
        assert!(!c.contains('/'), "slash inside a component of {p}");
        assert!(!c.contains('\0'), "NUL in {p}");
    }
    let shown = p.to_string();
    assert!(shown.starts_with('/'), "{shown}");
    // The string form resolves to itself from anywhere.
    let again = VirtualPath::root()
        .resolve(&shown)
        .expect("own form resolves");
    assert_eq!(&again, p);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn framing_and_parsing_never_panic(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 0..8)) {
        let mut d = LineDecoder::new(256);
        let mut frames = Vec::new();
        for c in &chunks {
            d.feed(c, &mut frames);
        }
        for f in frames {
            match f {
                Frame::Line(l) => {
                    prop_assert!(l.len() <= 256);
                    prop_assert!(!l.contains(&b'\n'));
                    let _ = Command::parse(&l);
                }
                Frame::TooLong => {}
            }
        }
    }

    #[test]
    fn parsing_text_commands_never_panics(verb in "[A-Za-z]{1,6}", arg in any::<String>()) {
        let line = format!("{verb} {arg}");
        let _ = Command::parse(line.as_bytes());
    }

    #[test]
    fn resolved_paths_stay_inside_the_root(cwd in path_strategy(), arg in path_strategy()) {
        let base = match VirtualPath::root().resolve(&cwd) {
            Ok(p) => p,
            Err(_) => VirtualPath::root(),
        };
        check_normal(&base);
        if let Ok(p) = base.resolve(&arg) {
            check_normal(&p);
            // relative() never climbs out either.
            let rel = p.relative();
            prop_assert!(!rel.split('/').any(|c| c == ".."), "{rel}");
            prop_assert!(!rel.starts_with('/'), "{rel}");
        }
    }

    #[test]
    fn replies_always_frame(code in 100u16..600, lines in proptest::collection::vec(any::<String>(), 1..6)) {
        let r = if lines.len() == 1 {
            Reply::new(ReplyCode(code), lines[0].clone())
        } else {
            Reply::multi(ReplyCode(code), lines.clone())
        };
        let bytes = r.to_bytes();
        prop_assert!(bytes.ends_with(b"\r\n"));
        let text = String::from_utf8(bytes).unwrap();
        let body: Vec<&str> = text.strip_suffix("\r\n").unwrap().split("\r\n").collect();
        prop_assert_eq!(body.len(), lines.len());
        let last = body.last().unwrap();
        let final_prefix = format!("{code} ");
        prop_assert!(last.starts_with(&final_prefix), "{}", last);
        // No line before the last may look like the final one.
        for l in &body[..body.len() - 1] {
            prop_assert!(!l.starts_with(&final_prefix), "{}", l);
            prop_assert!(!l.contains('\r') && !l.contains('\n'));
        }
    }

    #[test]
    fn port_and_eprt_round_trip(ip in any::<u32>(), port in 1u16..) {
        let a = SocketAddrV4::new(Ipv4Addr::from(ip), port);
        let [h1, h2, h3, h4] = a.ip().octets();
        let line = format!("PORT {h1},{h2},{h3},{h4},{},{}", port >> 8, port & 0xff);
        prop_assert_eq!(Command::parse(line.as_bytes()), Ok(Command::Port(a)));
        let line = format!("EPRT |1|{}|{}|", a.ip(), port);
        prop_assert_eq!(Command::parse(line.as_bytes()), Ok(Command::Eprt(SocketAddr::V4(a))));
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Arguments after the verbs whose parsers take the line apart
    /// (MFMT's time and path, SITE CHMOD's mode and path, wildcards) never
    /// panic the parser or the pattern matcher.
    #[test]
    fn argument_parsers_never_panic(verb in prop_oneof![
        Just("MFMT "), Just("SITE "), Just("SITE CHMOD "), Just("NLST "), Just("LIST -la "),
    ], arg in "[0-9 .\\-+*?\\[\\]!a-zü]{0,40}") {
        let line = format!("{verb}{arg}");
        let _ = Command::parse(line.as_bytes());
        if let Some(p) = portcullis_proto::listing::NamePattern::new(&arg) {
            let _ = p.matches("some-name.txt");
            let _ = p.matches(&arg);
        }
        let _ = portcullis_proto::listing::parse_time_val(&arg);
    }

    /// Every second from 1970 to 9999 survives time_val and parse_time_val.
    #[test]
    fn time_vals_round_trip(secs in 0u64..253_402_300_799) {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        let text = portcullis_proto::listing::time_val(t);
        prop_assert_eq!(portcullis_proto::listing::parse_time_val(&text), Some(t));
    }
}

proptest! {
    /// A PROXY header parser fed what it asks for, from bytes that may
    /// start like a header: it ends (found, or refused) within the limits
    /// and never asks a reader to read past them.
    #[test]
    fn proxy_headers_parse_within_bounds(
        start in prop_oneof![
            Just(b"PROXY ".to_vec()),
            Just(portcullis_proto::proxy::V2_SIGNATURE.to_vec()),
            Just(Vec::new()),
        ],
        rest in proptest::collection::vec(any::<u8>(), 0..1200),
    ) {
        use portcullis_proto::proxy::{parse, Parse, FIRST_READ, V1_MAX, V2_MAX};
        let bytes = [start, rest].concat();
        let mut have = FIRST_READ.min(bytes.len());
        let mut reads = 0;
        loop {
            match parse(&bytes[..have]) {
                Ok(Parse::Done { len, .. }) => {
                    prop_assert!(len <= have);
                    break;
                }
                Ok(Parse::Need(n)) => {
                    prop_assert!(n > 0 && have + n <= V1_MAX.max(V2_MAX));
                    if have + n > bytes.len() {
                        break;
                    }
                    have += n;
                }
                Err(_) => break,
            }
            reads += 1;
            prop_assert!(reads <= V1_MAX + 2, "a header takes a bounded number of reads");
        }
    }
}
