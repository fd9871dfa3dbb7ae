//! Commands: one typed [`Command`] per verb, parsed once from a line.
//!
//! Verbs are case-insensitive (RFC 959 section 5.3). Arguments are kept whole
//! (a path may contain spaces); nothing a client sent is dropped on the way to
//! the handler. A verb we do not implement is a [`ParseError::Unknown`], which
//! the server answers with 502.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};

/// Representation type (TYPE), RFC 959 section 3.1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TransferType {
    /// TYPE A (N): line ends converted to CRLF on the wire.
    Ascii,
    /// TYPE I (or L 8): bytes as they are.
    #[default]
    Image,
}

/// EPSV's argument, RFC 2428 section 3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpsvArg {
    /// Plain EPSV: use the control connection's protocol.
    Any,
    /// EPSV 1 or EPSV 2.
    Protocol(u8),
    /// EPSV ALL: from now on only EPSV may set up data connections.
    All,
}

/// OPTS subjects, RFC 2389 section 4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptsArg {
    /// OPTS UTF8 ON|OFF (RFC 2640 usage by clients).
    Utf8(bool),
    /// OPTS MLST fact;fact; (RFC 3659 section 7.9): the facts to show.
    Mlst(Vec<String>),
    /// Anything else: answered 501 by the server, naming the subject.
    Other(String),
}

/// A LIST/NLST argument: leading `-options` (as `ls` takes them) and a path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListArgs {
    /// `-a` was given (show entries starting with a dot).
    pub all: bool,
    /// The path, if any.
    pub path: Option<String>,
}

/// AUTH mechanisms (RFC 4217 section 4): all of them mean TLS on the
/// control connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMechanism {
    /// AUTH TLS (or TLS-C).
    Tls,
    /// AUTH SSL: the older name, answered as TLS (RFC 4217 section 4).
    Ssl,
}

/// Data channel protection level (PROT, RFC 2228 section 5.3.1 and RFC 4217
/// section 9). Only Clear and Private exist for TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtLevel {
    /// PROT C: data connections in the clear.
    #[default]
    Clear,
    /// PROT P: data connections in TLS.
    Private,
}

/// SITE subcommands (RFC 959 leaves them to the server; these are the ones
/// vsftpd and ProFTPD clients use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SiteCommand {
    /// SITE HELP.
    Help,
    /// SITE CHMOD mode path: the permission bits (at most 0o777), octal.
    Chmod { mode: u32, path: String },
    /// Any other subcommand, upper-cased: answered 502.
    Other(String),
}

/// One parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    User(String),
    Pass(String),
    Acct(String),
    Quit,
    Noop,
    Syst,
    Feat,
    Opts(OptsArg),
    Help(Option<String>),
    Stat(Option<String>),
    /// SITE and its subcommand.
    Site(SiteCommand),
    Pwd,
    Cwd(String),
    Cdup,
    Mkd(String),
    Rmd(String),
    Dele(String),
    Rnfr(String),
    Rnto(String),
    Size(String),
    Mdtm(String),
    /// MFMT time-val path (draft-somers-ftp-mfxx): set a file's
    /// modification time.
    Mfmt {
        time: std::time::SystemTime,
        path: String,
    },
    Type(TransferType),
    /// MODE: only S (stream) is accepted by the parser.
    Mode,
    /// STRU: only F (file) is accepted by the parser.
    Stru,
    Port(SocketAddrV4),
    Pasv,
    Epsv(EpsvArg),
    Eprt(SocketAddr),
    List(ListArgs),
    Nlst(ListArgs),
    Mlsd(Option<String>),
    Mlst(Option<String>),
    Retr(String),
    Stor(String),
    Stou(Option<String>),
    Appe(String),
    Rest(u64),
    Abor,
    Allo,
    /// AUTH TLS / AUTH SSL (RFC 4217 section 4).
    Auth(AuthMechanism),
    /// PBSZ n (RFC 4217 section 8): only 0 makes sense for TLS.
    Pbsz(u64),
    /// PROT C / PROT P (RFC 4217 section 9).
    Prot(ProtLevel),
    /// CCC: clear the control channel (RFC 4217 section 6).
    Ccc,
}

/// Why a line is not a command we can run. The server maps each variant to
/// its reply in one place; the code is noted per variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// 500: empty line, or a verb that is not ASCII letters.
    #[error("syntax error, command unrecognized")]
    Syntax,
    /// 502: a well-formed verb we do not implement.
    #[error("command {0} not implemented")]
    Unknown(String),
    /// 501: the command needs an argument.
    #[error("{0} requires an argument")]
    MissingArgument(&'static str),
    /// 501: the argument is malformed; the text says how.
    #[error("{0}")]
    BadArgument(String),
    /// 504: the argument is valid FTP but not supported (TYPE E, MODE B, ...).
    #[error("{0}")]
    Unsupported(String),
    /// 501: the argument is not valid UTF-8 (RFC 2640).
    #[error("argument is not valid UTF-8")]
    InvalidUtf8,
}

/// The longest verb we accept (RFC 959 verbs are 3-4 letters; leave room).
const MAX_VERB: usize = 8;

impl Command {
    /// Parse one line (without its line end).
    pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
        let (verb, rest) = match line.iter().position(|&b| b == b' ') {
            Some(i) => (&line[..i], Some(&line[i + 1..])),
            None => (line, None),
        };
        if verb.is_empty() || verb.len() > MAX_VERB || !verb.iter().all(u8::is_ascii_alphabetic) {
            return Err(ParseError::Syntax);
        }
        let verb = verb.to_ascii_uppercase();
        let verb = std::str::from_utf8(&verb).expect("ascii");
        let Some(known) = crate::verbs::lookup(verb) else {
            return Err(ParseError::Unknown(verb.to_owned()));
        };
        let arg = match rest {
            None => None,
            Some(r) => Some(std::str::from_utf8(r).map_err(|_| ParseError::InvalidUtf8)?),
        };
        // An argument of only spaces counts as none.
        let arg = arg.filter(|a| !a.trim().is_empty());
        parse_verb(known.name, arg)
    }

    /// The verb, for logs and the 502/503 texts.
    pub fn verb(&self) -> &'static str {
        use Command::*;
        match self {
            User(_) => "USER",
            Pass(_) => "PASS",
            Acct(_) => "ACCT",
            Quit => "QUIT",
            Noop => "NOOP",
            Syst => "SYST",
            Feat => "FEAT",
            Opts(_) => "OPTS",
            Help(_) => "HELP",
            Stat(_) => "STAT",
            Site(_) => "SITE",
            Pwd => "PWD",
            Cwd(_) => "CWD",
            Cdup => "CDUP",
            Mkd(_) => "MKD",
            Rmd(_) => "RMD",
            Dele(_) => "DELE",
            Rnfr(_) => "RNFR",
            Rnto(_) => "RNTO",
            Size(_) => "SIZE",
            Mdtm(_) => "MDTM",
            Mfmt { .. } => "MFMT",
            Type(_) => "TYPE",
            Mode => "MODE",
            Stru => "STRU",
            Port(_) => "PORT",
            Pasv => "PASV",
            Epsv(_) => "EPSV",
            Eprt(_) => "EPRT",
            List(_) => "LIST",
            Nlst(_) => "NLST",
            Mlsd(_) => "MLSD",
            Mlst(_) => "MLST",
            Retr(_) => "RETR",
            Stor(_) => "STOR",
            Stou(_) => "STOU",
            Appe(_) => "APPE",
            Rest(_) => "REST",
            Abor => "ABOR",
            Allo => "ALLO",
            Auth(_) => "AUTH",
            Pbsz(_) => "PBSZ",
            Prot(_) => "PROT",
            Ccc => "CCC",
        }
    }
}

fn required(verb: &'static str, arg: Option<&str>) -> Result<String, ParseError> {
    arg.map(str::to_owned)
        .ok_or(ParseError::MissingArgument(verb))
}

fn no_arg(verb: &'static str, arg: Option<&str>, cmd: Command) -> Result<Command, ParseError> {
    match arg {
        None => Ok(cmd),
        Some(_) => Err(ParseError::BadArgument(format!("{verb} takes no argument"))),
    }
}

/// `YYYYMMDDHHMMSS[.sss] path`: the path is the rest of the line, spaces
/// and all.
fn parse_mfmt(arg: &str) -> Result<Command, ParseError> {
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

fn parse_site(arg: &str) -> Result<SiteCommand, ParseError> {
    let arg = arg.trim_start();
    let (sub, rest) = arg.split_once(' ').unwrap_or((arg, ""));
    Ok(match sub.to_ascii_uppercase().as_str() {
        "HELP" => SiteCommand::Help,
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

fn parse_verb(verb: &str, arg: Option<&str>) -> Result<Command, ParseError> {
    use Command as C;
    Ok(match verb {
        "USER" => C::User(required("USER", arg)?),
        // A password may be empty (anonymous) and may contain spaces.
        "PASS" => C::Pass(arg.unwrap_or("").to_owned()),
        "ACCT" => C::Acct(required("ACCT", arg)?),
        "QUIT" => C::Quit,
        "NOOP" => C::Noop,
        "SYST" => no_arg("SYST", arg, C::Syst)?,
        "FEAT" => no_arg("FEAT", arg, C::Feat)?,
        "OPTS" => C::Opts(parse_opts(&required("OPTS", arg)?)),
        "HELP" => C::Help(arg.map(|a| a.trim().to_ascii_uppercase())),
        "STAT" => C::Stat(arg.map(str::to_owned)),
        "SITE" => C::Site(parse_site(&required("SITE", arg)?)?),
        "PWD" => no_arg("PWD", arg, C::Pwd)?,
        "CWD" => C::Cwd(required("CWD", arg)?),
        "CDUP" => no_arg("CDUP", arg, C::Cdup)?,
        "MKD" => C::Mkd(required("MKD", arg)?),
        "RMD" => C::Rmd(required("RMD", arg)?),
        "DELE" => C::Dele(required("DELE", arg)?),
        "RNFR" => C::Rnfr(required("RNFR", arg)?),
        "RNTO" => C::Rnto(required("RNTO", arg)?),
        "SIZE" => C::Size(required("SIZE", arg)?),
        "MDTM" => C::Mdtm(required("MDTM", arg)?),
        "MFMT" => parse_mfmt(&required("MFMT", arg)?)?,
        "TYPE" => C::Type(parse_type(&required("TYPE", arg)?)?),
        "MODE" => match required("MODE", arg)?.trim().to_ascii_uppercase().as_str() {
            "S" => C::Mode,
            "B" | "C" => {
                return Err(ParseError::Unsupported(
                    "only MODE S (stream) is supported".into(),
                ))
            }
            _ => return Err(ParseError::BadArgument("unknown transfer mode".into())),
        },
        "STRU" => match required("STRU", arg)?.trim().to_ascii_uppercase().as_str() {
            "F" => C::Stru,
            "R" | "P" => {
                return Err(ParseError::Unsupported(
                    "only STRU F (file) is supported".into(),
                ))
            }
            _ => return Err(ParseError::BadArgument("unknown file structure".into())),
        },
        "PORT" => C::Port(parse_port(&required("PORT", arg)?)?),
        "PASV" => no_arg("PASV", arg, C::Pasv)?,
        "AUTH" => match required("AUTH", arg)?.trim().to_ascii_uppercase().as_str() {
            "TLS" | "TLS-C" => C::Auth(AuthMechanism::Tls),
            "SSL" => C::Auth(AuthMechanism::Ssl),
            other => {
                return Err(ParseError::Unsupported(format!(
                    "AUTH {other} is not supported; use AUTH TLS"
                )))
            }
        },
        "PBSZ" => C::Pbsz(
            required("PBSZ", arg)?
                .trim()
                .parse()
                .map_err(|_| ParseError::BadArgument("PBSZ takes a decimal number".into()))?,
        ),
        "PROT" => match required("PROT", arg)?.trim().to_ascii_uppercase().as_str() {
            "C" => C::Prot(ProtLevel::Clear),
            "P" => C::Prot(ProtLevel::Private),
            "S" | "E" => {
                return Err(ParseError::Unsupported(
                    "only PROT C and PROT P are supported with TLS".into(),
                ))
            }
            _ => return Err(ParseError::BadArgument("unknown protection level".into())),
        },
        "CCC" => no_arg("CCC", arg, C::Ccc)?,
        "EPSV" => C::Epsv(parse_epsv(arg)?),
        "EPRT" => C::Eprt(parse_eprt(&required("EPRT", arg)?)?),
        "LIST" => C::List(parse_list_args(arg)),
        "NLST" => C::Nlst(parse_list_args(arg)),
        "MLSD" => C::Mlsd(arg.map(str::to_owned)),
        "MLST" => C::Mlst(arg.map(str::to_owned)),
        "RETR" => C::Retr(required("RETR", arg)?),
        "STOR" => C::Stor(required("STOR", arg)?),
        "STOU" => C::Stou(arg.map(str::to_owned)),
        "APPE" => C::Appe(required("APPE", arg)?),
        "REST" => {
            let a = required("REST", arg)?;
            C::Rest(a.trim().parse().map_err(|_| {
                ParseError::BadArgument("REST needs a byte offset (a non-negative integer)".into())
            })?)
        }
        "ABOR" => C::Abor,
        "ALLO" => C::Allo,
        other => return Err(ParseError::Unknown(other.to_owned())),
    })
}

fn parse_type(arg: &str) -> Result<TransferType, ParseError> {
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

fn parse_opts(arg: &str) -> OptsArg {
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
        _ => OptsArg::Other(arg.to_owned()),
    }
}

/// PORT h1,h2,h3,h4,p1,p2 (RFC 959 section 4.1.2).
fn parse_port(arg: &str) -> Result<SocketAddrV4, ParseError> {
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
fn parse_eprt(arg: &str) -> Result<SocketAddr, ParseError> {
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

fn parse_epsv(arg: Option<&str>) -> Result<EpsvArg, ParseError> {
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
fn parse_list_args(arg: Option<&str>) -> ListArgs {
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

#[cfg(test)]
mod tests {
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
        assert_eq!(p("ALLO 100 R 10"), Ok(Command::Allo));
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
}
