//! Commands: one typed [`Command`] per verb, parsed once from a line.
//!
//! Verbs are case-insensitive (RFC 959 section 5.3). Arguments are kept whole
//! (a path may contain spaces); nothing a client sent is dropped on the way to
//! the handler. A verb we do not implement is a [`ParseError::Unknown`], which
//! the server answers with 502. A line becomes a command through the verb
//! table ([`Command::parse`], in `verbs.rs`): what each verb's argument may
//! be, and the variant it becomes, is its row there.

pub(crate) mod args;

use std::net::{SocketAddr, SocketAddrV4};

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
    /// OPTS HASH [algorithm] (draft-bryan-ftpext-hash-02 section 3.2).
    Hash(crate::hash::HashOpt),
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
    /// SITE QUOTA: the account's quota and usage (as ProFTPD's
    /// mod_quotatab answers it).
    Quota,
    /// Any other subcommand, upper-cased: answered 502.
    Other(String),
}

/// Declares [`Command`] with the verb each variant answers to, side by
/// side, and derives [`Command::verb`] from them.
macro_rules! commands {
    ($(
        $(#[$doc:meta])*
        $verb:literal => $variant:ident
            $(($($tuple:ty),*))?
            $({ $($field:ident: $fty:ty),* $(,)? })?,
    )*) => {
        /// One parsed command.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Command {
            $($(#[$doc])* $variant $(($($tuple),*))? $({ $($field: $fty),* })?,)*
        }

        impl Command {
            /// The verb (its name in [`crate::verbs::VERBS`]), for logs and
            /// the 502/503 texts.
            pub fn verb(&self) -> &'static str {
                match self {
                    $(Command::$variant { .. } => $verb,)*
                }
            }
        }
    };
}

commands! {
    "USER" => User(String),
    "PASS" => Pass(String),
    "ACCT" => Acct(String),
    "QUIT" => Quit,
    "NOOP" => Noop,
    "SYST" => Syst,
    "FEAT" => Feat,
    "OPTS" => Opts(OptsArg),
    "HELP" => Help(Option<String>),
    "STAT" => Stat(Option<String>),
    /// SITE and its subcommand.
    "SITE" => Site(SiteCommand),
    "PWD" => Pwd,
    "CWD" => Cwd(String),
    "CDUP" => Cdup,
    "MKD" => Mkd(String),
    "RMD" => Rmd(String),
    "DELE" => Dele(String),
    "RNFR" => Rnfr(String),
    "RNTO" => Rnto(String),
    "SIZE" => Size(String),
    "MDTM" => Mdtm(String),
    /// MFMT time-val path (draft-somers-ftp-mfxx): set a file's
    /// modification time.
    "MFMT" => Mfmt {
        time: std::time::SystemTime,
        path: String,
    },
    "TYPE" => Type(TransferType),
    /// MODE: only S (stream) is accepted by the parser.
    "MODE" => Mode,
    /// STRU: only F (file) is accepted by the parser.
    "STRU" => Stru,
    "PORT" => Port(SocketAddrV4),
    "PASV" => Pasv,
    "EPSV" => Epsv(EpsvArg),
    "EPRT" => Eprt(SocketAddr),
    "LIST" => List(ListArgs),
    "NLST" => Nlst(ListArgs),
    "MLSD" => Mlsd(Option<String>),
    "MLST" => Mlst(Option<String>),
    "RETR" => Retr(String),
    "STOR" => Stor(String),
    "STOU" => Stou(Option<String>),
    "APPE" => Appe(String),
    "REST" => Rest(u64),
    "ABOR" => Abor,
    /// ALLO n [R m] (RFC 959): the bytes the client is about to store
    /// (the record size, for record structures, is parsed and not kept).
    "ALLO" => Allo(Option<u64>),
    /// AVBL [path] (draft-peterson-streamlined-ftp-command-extensions):
    /// the bytes that may still be stored.
    "AVBL" => Avbl(Option<String>),
    /// AUTH TLS / AUTH SSL (RFC 4217 section 4).
    "AUTH" => Auth(AuthMechanism),
    /// PBSZ n (RFC 4217 section 8): only 0 makes sense for TLS.
    "PBSZ" => Pbsz(u64),
    /// PROT C / PROT P (RFC 4217 section 9).
    "PROT" => Prot(ProtLevel),
    /// CCC: clear the control channel (RFC 4217 section 6).
    "CCC" => Ccc,
    /// HASH path (draft-bryan-ftpext-hash-02): the selected algorithm's
    /// hash of the file, or of the RANG range.
    "HASH" => Hash(String),
    /// RANG start end (draft-bryan-ftp-range): the range the next HASH
    /// covers.
    "RANG" => Rang(crate::hash::RangArg),
    /// XCRC path [start [end]]: CRC-32 (as ProFTPD's mod_digest).
    "XCRC" => Xcrc(crate::hash::XHashArgs),
    /// XMD5 path [start [end]].
    "XMD5" => Xmd5(crate::hash::XHashArgs),
    /// XSHA1 path [start [end]].
    "XSHA1" => Xsha1(crate::hash::XHashArgs),
    /// XSHA256 path [start [end]].
    "XSHA256" => Xsha256(crate::hash::XHashArgs),
    /// XSHA512 path [start [end]].
    "XSHA512" => Xsha512(crate::hash::XHashArgs),
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

#[cfg(test)]
mod tests;
