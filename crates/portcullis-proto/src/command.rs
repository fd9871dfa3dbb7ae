//! Commands: one typed [`Command`] per verb, parsed once from a line.
//!
//! Verbs are case-insensitive (RFC 959 section 5.3). Arguments are kept whole
//! (a path may contain spaces); nothing a client sent is dropped on the way to
//! the handler. A verb we do not implement is a [`ParseError::Unknown`], which
//! the server answers with 502.

mod args;

use std::net::{SocketAddr, SocketAddrV4};

use args::{
    parse_eprt, parse_epsv, parse_list_args, parse_mfmt, parse_opts, parse_port, parse_site,
    parse_type,
};

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

#[cfg(test)]
mod tests;
