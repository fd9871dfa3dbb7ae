//! The argument parsers of the commands that take more than a path: what
//! each verb's argument may look like, and the error that says why not.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

use super::{
    AuthMechanism, Command, EpsvArg, ListArgs, OptsArg, ParseError, ProtLevel, SiteCommand,
    TransferType,
};

/// `YYYYMMDDHHMMSS[.sss] path`: the path is the rest of the line, spaces
/// and all.
pub(crate) fn parse_mfmt(arg: &str) -> Result<Command, ParseError> {
    let bad = || {
        ParseError::BadArgument(
            "MFMT takes a UTC time YYYYMMDDHHMMSS and a path, e.g. MFMT 20240131235959 file.txt"
                .to_owned(),
        )
    };
    let (time, path) = arg.trim_start().split_once(' ').ok_or_else(bad)?;
    let time = crate::listing::parse_time_val(time).ok_or_else(bad)?;
    if path.trim().is_empty() {
        return Err(bad());
    }
    Ok(Command::Mfmt {
        time,
        path: path.to_owned(),
    })
}

pub(crate) fn parse_site(arg: &str) -> Result<SiteCommand, ParseError> {
    let arg = arg.trim_start();
    let (sub, rest) = arg.split_once(' ').unwrap_or((arg, ""));
    Ok(match sub.to_ascii_uppercase().as_str() {
        "HELP" => SiteCommand::Help,
        "QUOTA" => SiteCommand::Quota,
        "CHMOD" => {
            let bad = || {
                ParseError::BadArgument(
                    "SITE CHMOD takes an octal mode (at most 777) and a path, e.g. SITE CHMOD 644 file.txt"
                        .to_owned(),
                )
            };
            let (mode, path) = rest.trim_start().split_once(' ').ok_or_else(bad)?;
            let mode = u32::from_str_radix(mode, 8)
                .ok()
                .filter(|m| *m <= 0o777)
                .ok_or_else(bad)?;
            if path.trim().is_empty() {
                return Err(bad());
            }
            SiteCommand::Chmod {
                mode,
                path: path.to_owned(),
            }
        }
        other => SiteCommand::Other(other.to_owned()),
    })
}

pub(crate) fn parse_type(arg: &str) -> Result<TransferType, ParseError> {
    let up = arg.trim().to_ascii_uppercase();
    let mut it = up.split_whitespace();
    let t = it.next().unwrap_or("");
    let param = it.next();
    match (t, param) {
        ("A", None | Some("N")) => Ok(TransferType::Ascii),
        ("A", Some("T" | "C")) => Err(ParseError::Unsupported(
            "only non-print format is supported".into(),
        )),
        ("I", None) => Ok(TransferType::Image),
        ("L", Some("8")) => Ok(TransferType::Image),
        ("L", _) => Err(ParseError::Unsupported(
            "only byte size 8 is supported".into(),
        )),
        ("E", _) => Err(ParseError::Unsupported("EBCDIC is not supported".into())),
        _ => Err(ParseError::BadArgument(format!("unknown type {arg:?}"))),
    }
}

pub(crate) fn parse_opts(arg: &str) -> OptsArg {
    let (subject, rest) = match arg.trim().split_once(' ') {
        Some((s, r)) => (s, r.trim()),
        None => (arg.trim(), ""),
    };
    match subject.to_ascii_uppercase().as_str() {
        "UTF8" | "UTF-8" => match rest.to_ascii_uppercase().as_str() {
            "ON" | "" => OptsArg::Utf8(true),
            "OFF" => OptsArg::Utf8(false),
            _ => OptsArg::Other(arg.to_owned()),
        },
        "MLST" => OptsArg::Mlst(
            rest.split(';')
                .filter(|f| !f.is_empty())
                .map(|f| f.to_ascii_lowercase())
                .collect(),
        ),
        "HASH" => OptsArg::Hash(crate::hash::parse_hash_opt(rest)),
        _ => OptsArg::Other(arg.to_owned()),
    }
}

/// PORT h1,h2,h3,h4,p1,p2 (RFC 959 section 4.1.2).
pub(crate) fn parse_port(arg: &str) -> Result<SocketAddrV4, ParseError> {
    let bad = || ParseError::BadArgument("PORT needs h1,h2,h3,h4,p1,p2".into());
    let nums: Vec<u8> = arg
        .trim()
        .split(',')
        .map(|n| n.trim().parse::<u8>())
        .collect::<Result<_, _>>()
        .map_err(|_| bad())?;
    if nums.len() != 6 {
        return Err(bad());
    }
    let ip = Ipv4Addr::new(nums[0], nums[1], nums[2], nums[3]);
    let port = u16::from(nums[4]) << 8 | u16::from(nums[5]);
    Ok(SocketAddrV4::new(ip, port))
}

/// EPRT |proto|addr|port| with any delimiter (RFC 2428 section 2).
pub(crate) fn parse_eprt(arg: &str) -> Result<SocketAddr, ParseError> {
    let arg = arg.trim();
    let bad =
        |why: &str| ParseError::BadArgument(format!("EPRT needs |proto|address|port|: {why}"));
    let delim = arg.chars().next().ok_or_else(|| bad("empty"))?;
    if !(33..=126).contains(&(delim as u32)) || delim.is_ascii_alphanumeric() {
        return Err(bad("bad delimiter"));
    }
    let parts: Vec<&str> = arg.split(delim).collect();
    // "", proto, addr, port, ""
    if parts.len() != 5 || !parts[0].is_empty() || !parts[4].is_empty() {
        return Err(bad("wrong number of fields"));
    }
    let port: u16 = parts[3].parse().map_err(|_| bad("bad port"))?;
    let ip: IpAddr = match parts[1] {
        "1" => IpAddr::V4(parts[2].parse().map_err(|_| bad("bad IPv4 address"))?),
        "2" => IpAddr::V6(parts[2].parse().map_err(|_| bad("bad IPv6 address"))?),
        _ => {
            return Err(ParseError::Unsupported(
                "network protocol not supported, use (1,2)".into(),
            ))
        }
    };
    Ok(SocketAddr::new(ip, port))
}

pub(crate) fn parse_epsv(arg: Option<&str>) -> Result<EpsvArg, ParseError> {
    match arg.map(|a| a.trim().to_ascii_uppercase()) {
        None => Ok(EpsvArg::Any),
        Some(a) if a == "ALL" => Ok(EpsvArg::All),
        Some(a) if a == "1" => Ok(EpsvArg::Protocol(1)),
        Some(a) if a == "2" => Ok(EpsvArg::Protocol(2)),
        Some(_) => Err(ParseError::Unsupported(
            "network protocol not supported, use (1,2)".into(),
        )),
    }
}

/// Split `ls`-style options off a LIST/NLST argument. "-la dir" lists "dir";
/// a lone "-" or a name that merely contains dashes is a path.
pub(crate) fn parse_list_args(arg: Option<&str>) -> ListArgs {
    let mut out = ListArgs::default();
    let mut rest = match arg {
        None => return out,
        Some(a) => a.trim_start(),
    };
    while rest.starts_with('-') && rest.len() > 1 {
        let (opt, tail) = rest.split_once(' ').unwrap_or((rest, ""));
        if opt[1..].chars().all(|c| c.is_ascii_alphanumeric()) {
            if opt.contains('a') {
                out.all = true;
            }
            rest = tail.trim_start();
        } else {
            break;
        }
    }
    if !rest.is_empty() {
        out.path = Some(rest.to_owned());
    }
    out
}

/// MODE: only S (stream); B and C are valid FTP that we do not do.
pub(crate) fn parse_mode(arg: &str) -> Result<Command, ParseError> {
    match arg.trim().to_ascii_uppercase().as_str() {
        "S" => Ok(Command::Mode),
        "B" | "C" => Err(ParseError::Unsupported(
            "only MODE S (stream) is supported".into(),
        )),
        _ => Err(ParseError::BadArgument("unknown transfer mode".into())),
    }
}

/// STRU: only F (file); R and P are valid FTP that we do not do.
pub(crate) fn parse_stru(arg: &str) -> Result<Command, ParseError> {
    match arg.trim().to_ascii_uppercase().as_str() {
        "F" => Ok(Command::Stru),
        "R" | "P" => Err(ParseError::Unsupported(
            "only STRU F (file) is supported".into(),
        )),
        _ => Err(ParseError::BadArgument("unknown file structure".into())),
    }
}

/// AUTH TLS, TLS-C or SSL (RFC 4217 section 4).
pub(crate) fn parse_auth(arg: &str) -> Result<Command, ParseError> {
    match arg.trim().to_ascii_uppercase().as_str() {
        "TLS" | "TLS-C" => Ok(Command::Auth(AuthMechanism::Tls)),
        "SSL" => Ok(Command::Auth(AuthMechanism::Ssl)),
        other => Err(ParseError::Unsupported(format!(
            "AUTH {other} is not supported; use AUTH TLS"
        ))),
    }
}

/// PBSZ: a decimal number (RFC 4217 section 8).
pub(crate) fn parse_pbsz(arg: &str) -> Result<Command, ParseError> {
    arg.trim()
        .parse()
        .map(Command::Pbsz)
        .map_err(|_| ParseError::BadArgument("PBSZ takes a decimal number".into()))
}

/// PROT C or P; S and E do not exist for TLS (RFC 4217 section 9).
pub(crate) fn parse_prot(arg: &str) -> Result<Command, ParseError> {
    match arg.trim().to_ascii_uppercase().as_str() {
        "C" => Ok(Command::Prot(ProtLevel::Clear)),
        "P" => Ok(Command::Prot(ProtLevel::Private)),
        "S" | "E" => Err(ParseError::Unsupported(
            "only PROT C and PROT P are supported with TLS".into(),
        )),
        _ => Err(ParseError::BadArgument("unknown protection level".into())),
    }
}

/// REST: a byte offset (RFC 3659 section 5).
/// ALLO n [R m] (RFC 959 section 4.1.3): both decimal byte counts.
pub(crate) fn parse_allo(arg: Option<&str>) -> Result<Command, ParseError> {
    let Some(arg) = arg else {
        return Ok(Command::Allo(None));
    };
    let bad = || {
        ParseError::BadArgument("ALLO takes a byte count, optionally R and a record size".into())
    };
    let mut words = arg.split_ascii_whitespace();
    let n: u64 = words.next().and_then(|w| w.parse().ok()).ok_or_else(bad)?;
    match (words.next(), words.next(), words.next()) {
        (None, _, _) => {}
        (Some(r), Some(m), None) if r.eq_ignore_ascii_case("R") && m.parse::<u64>().is_ok() => {}
        _ => return Err(bad()),
    }
    Ok(Command::Allo(Some(n)))
}

pub(crate) fn parse_rest(arg: &str) -> Result<Command, ParseError> {
    arg.trim().parse().map(Command::Rest).map_err(|_| {
        ParseError::BadArgument("REST needs a byte offset (a non-negative integer)".into())
    })
}
