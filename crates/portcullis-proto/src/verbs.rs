//! The one table of the verbs the server knows. A row says everything
//! about a verb that is not its handler: its name and the older names that
//! mean the same (the X-verbs of RFC 775), whether it may come before
//! login, the shape of its argument and the [`Command`] it becomes, the
//! storage capability it needs, its FEAT line and what HELP says of it.
//! The line parser ([`Command::parse`], here so that `command.rs`, the
//! types, does not depend on the table), the sequencing check
//! ([`crate::session::check`]), FEAT ([`feat`]) and HELP ([`help`]) all
//! read it; [`Command::verb`] gives the same names. Adding a verb is a row
//! here, a `Command` variant (with its name) and its handler with its
//! dispatch arm.

use crate::command::args::{
    parse_allo, parse_auth, parse_eprt, parse_epsv, parse_list_args, parse_mfmt, parse_mode,
    parse_opts, parse_pbsz, parse_port, parse_prot, parse_rest, parse_site, parse_stru, parse_type,
};
use crate::command::{Command, Command as C, ParseError};
use crate::hash::{parse_rang, parse_xhash, HashAlgorithm};
use crate::listing;
use crate::reply::{Reply, ReplyCode};

/// One verb.
#[derive(Debug, Clone, Copy)]
pub struct Verb {
    /// The name the server answers to and reports (upper case).
    pub name: &'static str,
    /// Other names for the same command.
    pub aliases: &'static [&'static str],
    /// May run before login (STAT only without an argument).
    pub before_login: bool,
    /// What its argument may be, and how it becomes a [`Command`].
    pub arg: Arg,
    /// What the account's storage must be able to do for FEAT and HELP
    /// to offer the verb (the session's dispatch refuses it otherwise,
    /// [`Command::needs`]).
    pub needs: Option<Capability>,
    /// Its line in FEAT's reply, if any.
    pub feat: Feat,
    /// What `HELP VERB` answers: the syntax and where it is defined.
    pub help: &'static str,
}

/// The shape of a verb's argument, each with the parser that makes the
/// [`Command`] of it. An argument of only spaces counts as none.
#[derive(Debug, Clone, Copy)]
pub enum Arg {
    /// None: one given is a 501 ("VERB takes no argument").
    Never(fn() -> Command),
    /// Whatever follows the verb is not looked at.
    Ignored(fn() -> Command),
    /// Needed: without one, a 501 ("VERB requires an argument").
    Required(fn(&str) -> Result<Command, ParseError>),
    /// May be absent.
    Optional(fn(Option<&str>) -> Result<Command, ParseError>),
}

/// A storage capability that a verb needs (an object store cannot append
/// or set a modification time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// APPE: write at the end of an existing file.
    Append,
    /// MFMT: set a file's modification time.
    SetTimes,
    /// HASH, RANG and the X-hash verbs: hashing is on (`limits.hash`).
    Hash,
}

/// A verb's line in FEAT's reply (RFC 2389 section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feat {
    /// Not listed.
    No,
    /// Listed with this text.
    Line(&'static str),
    /// Listed with this text when the server has TLS (RFC 4217 section 6).
    Tls(&'static str),
    /// `MLST` and the facts, those the session shows starred (RFC 3659
    /// section 7.8).
    Mlst,
    /// `HASH` and the algorithms, the session's selected one starred
    /// (draft-bryan-ftpext-hash-02 section 3.1).
    Hash,
}

/// Features that are not verbs: TVFS (RFC 3659 section 6) and UTF8
/// (RFC 2640 section 3.3).
const EXTENSIONS: &[&str] = &["TVFS", "UTF8"];

use Arg::{Ignored, Never, Optional, Required};

/// May run before login.
const OPEN: bool = true;
/// Needs a login.
const LOGGED_IN: bool = false;

const fn verb(name: &'static str, before_login: bool, arg: Arg, help: &'static str) -> Verb {
    Verb {
        name,
        aliases: &[],
        before_login,
        arg,
        needs: None,
        feat: Feat::No,
        help,
    }
}

impl Verb {
    const fn alias(self, aliases: &'static [&'static str]) -> Self {
        Verb { aliases, ..self }
    }

    const fn feat(self, feat: Feat) -> Self {
        Verb { feat, ..self }
    }

    const fn needs(self, needs: Capability) -> Self {
        Verb {
            needs: Some(needs),
            ..self
        }
    }

    /// The command `arg` (absent, or not only spaces) makes of this verb.
    pub fn parse(&self, arg: Option<&str>) -> Result<Command, ParseError> {
        match (self.arg, arg) {
            (Arg::Never(_), Some(_)) => Err(ParseError::BadArgument(format!(
                "{} takes no argument",
                self.name
            ))),
            (Arg::Never(make) | Arg::Ignored(make), _) => Ok(make()),
            (Arg::Required(_), None) => Err(ParseError::MissingArgument(self.name)),
            (Arg::Required(parse), Some(a)) => parse(a),
            (Arg::Optional(parse), a) => parse(a),
        }
    }

    /// Offered by FEAT and HELP to an account whose storage `can` do
    /// what it can.
    pub fn offered(&self, can: &dyn Fn(Capability) -> bool) -> bool {
        self.needs.is_none_or(can)
    }
}

/// Every verb the server implements, by name.
pub const VERBS: &[Verb] = &[
    verb(
        "ABOR",
        OPEN,
        Ignored(|| C::Abor),
        "ABOR: abort the transfer in progress (RFC 959).",
    ),
    verb(
        "ACCT",
        OPEN,
        Required(|a| Ok(C::Acct(a.to_owned()))),
        "ACCT account: not needed here (RFC 959).",
    ),
    verb(
        "ALLO",
        LOGGED_IN,
        Optional(parse_allo),
        "ALLO size [R record-size]: check that size bytes fit the quota (RFC 959).",
    ),
    verb(
        "APPE",
        LOGGED_IN,
        Required(|a| Ok(C::Appe(a.to_owned()))),
        "APPE path: append to a file (RFC 959).",
    )
    .needs(Capability::Append),
    verb(
        "AUTH",
        OPEN,
        Required(parse_auth),
        "AUTH TLS: start TLS on the control connection (RFC 4217).",
    )
    .feat(Feat::Tls("AUTH TLS")),
    verb(
        "AVBL",
        LOGGED_IN,
        Optional(|a| Ok(C::Avbl(a.map(str::to_owned)))),
        "AVBL [path]: the bytes that may still be stored (draft-peterson-streamlined-ftp-command-extensions).",
    )
    .feat(Feat::Line("AVBL")),
    verb(
        "CCC",
        OPEN,
        Never(|| C::Ccc),
        "CCC: clear the control connection after login, if allowed (RFC 4217).",
    ),
    verb(
        "CDUP",
        LOGGED_IN,
        Never(|| C::Cdup),
        "CDUP: go to the parent directory (RFC 959).",
    )
    .alias(&["XCUP"]),
    verb(
        "CWD",
        LOGGED_IN,
        Required(|a| Ok(C::Cwd(a.to_owned()))),
        "CWD path: change the working directory (RFC 959).",
    )
    .alias(&["XCWD"]),
    verb(
        "DELE",
        LOGGED_IN,
        Required(|a| Ok(C::Dele(a.to_owned()))),
        "DELE path: delete a file (RFC 959).",
    ),
    verb(
        "EPRT",
        LOGGED_IN,
        Required(|a| Ok(C::Eprt(parse_eprt(a)?))),
        "EPRT |proto|address|port|: active mode, IPv4 or IPv6 (RFC 2428).",
    )
    .feat(Feat::Line("EPRT")),
    verb(
        "EPSV",
        LOGGED_IN,
        Optional(|a| Ok(C::Epsv(parse_epsv(a)?))),
        "EPSV [proto|ALL]: passive mode, port only (RFC 2428).",
    )
    .feat(Feat::Line("EPSV")),
    verb(
        "FEAT",
        OPEN,
        Never(|| C::Feat),
        "FEAT: list the extensions (RFC 2389).",
    ),
    verb(
        "HASH",
        LOGGED_IN,
        Required(|a| Ok(C::Hash(a.to_owned()))),
        "HASH path: hash of a file, OPTS HASH chooses the algorithm (draft-bryan-ftpext-hash-02).",
    )
    .feat(Feat::Hash)
    .needs(Capability::Hash),
    verb(
        "HELP",
        OPEN,
        Optional(|a| Ok(C::Help(a.map(|a| a.trim().to_ascii_uppercase())))),
        "HELP [verb]: this help (RFC 959).",
    ),
    verb(
        "LIST",
        LOGGED_IN,
        Optional(|a| Ok(C::List(parse_list_args(a)))),
        "LIST [-a] [path]: long listing, sorted by name (RFC 959).",
    ),
    verb(
        "MDTM",
        LOGGED_IN,
        Required(|a| Ok(C::Mdtm(a.to_owned()))),
        "MDTM path: modification time, UTC (RFC 3659).",
    )
    .feat(Feat::Line("MDTM")),
    verb(
        "MFMT",
        LOGGED_IN,
        Required(parse_mfmt),
        "MFMT YYYYMMDDHHMMSS path: set a modification time (draft-somers-ftp-mfxx).",
    )
    .feat(Feat::Line("MFMT"))
    .needs(Capability::SetTimes),
    verb(
        "MKD",
        LOGGED_IN,
        Required(|a| Ok(C::Mkd(a.to_owned()))),
        "MKD path: make a directory (RFC 959).",
    )
    .alias(&["XMKD"]),
    verb(
        "MLSD",
        LOGGED_IN,
        Optional(|a| Ok(C::Mlsd(a.map(str::to_owned)))),
        "MLSD [dir]: machine-readable listing (RFC 3659).",
    ),
    verb(
        "MLST",
        LOGGED_IN,
        Optional(|a| Ok(C::Mlst(a.map(str::to_owned)))),
        "MLST [path]: facts of one path (RFC 3659).",
    )
    .feat(Feat::Mlst),
    verb(
        "MODE",
        LOGGED_IN,
        Required(parse_mode),
        "MODE S: stream mode only (RFC 959).",
    ),
    verb(
        "NLST",
        LOGGED_IN,
        Optional(|a| Ok(C::Nlst(parse_list_args(a)))),
        "NLST [path]: names only, sorted (RFC 959).",
    ),
    verb(
        "NOOP",
        OPEN,
        Ignored(|| C::Noop),
        "NOOP: do nothing (RFC 959).",
    ),
    verb(
        "OPTS",
        OPEN,
        Required(|a| Ok(C::Opts(parse_opts(a)))),
        "OPTS UTF8 ON | OPTS MLST facts (RFC 2389, 3659).",
    ),
    verb(
        "PASS",
        OPEN,
        Optional(|a| Ok(C::Pass(a.unwrap_or("").to_owned()))),
        "PASS password: log in (RFC 959).",
    ),
    verb(
        "PASV",
        LOGGED_IN,
        Never(|| C::Pasv),
        "PASV: passive mode, IPv4 (RFC 959).",
    )
    .feat(Feat::Line("PASV")),
    verb(
        "PBSZ",
        OPEN,
        Required(parse_pbsz),
        "PBSZ 0: protection buffer size (RFC 4217).",
    )
    .feat(Feat::Tls("PBSZ")),
    verb(
        "PORT",
        LOGGED_IN,
        Required(|a| Ok(C::Port(parse_port(a)?))),
        "PORT h1,h2,h3,h4,p1,p2: active mode, IPv4 (RFC 959).",
    ),
    verb(
        "PROT",
        OPEN,
        Required(parse_prot),
        "PROT C|P: data connection protection (RFC 4217).",
    )
    .feat(Feat::Tls("PROT")),
    verb(
        "PWD",
        LOGGED_IN,
        Never(|| C::Pwd),
        "PWD: print the working directory (RFC 959).",
    )
    .alias(&["XPWD"]),
    verb(
        "QUIT",
        OPEN,
        Ignored(|| C::Quit),
        "QUIT: log out (RFC 959).",
    ),
    verb(
        "RANG",
        LOGGED_IN,
        Required(|a| Ok(C::Rang(parse_rang(a)?))),
        "RANG start end: the bytes the next HASH covers; RANG 1 0 resets (draft-bryan-ftp-range).",
    )
    .feat(Feat::Line("RANG STREAM"))
    .needs(Capability::Hash),
    verb(
        "REST",
        LOGGED_IN,
        Required(parse_rest),
        "REST offset: restart the next RETR or STOR there (RFC 3659).",
    )
    .feat(Feat::Line("REST STREAM")),
    verb(
        "RETR",
        LOGGED_IN,
        Required(|a| Ok(C::Retr(a.to_owned()))),
        "RETR path: download a file (RFC 959).",
    ),
    verb(
        "RMD",
        LOGGED_IN,
        Required(|a| Ok(C::Rmd(a.to_owned()))),
        "RMD path: remove a directory (RFC 959).",
    )
    .alias(&["XRMD"]),
    verb(
        "RNFR",
        LOGGED_IN,
        Required(|a| Ok(C::Rnfr(a.to_owned()))),
        "RNFR path: rename from (RFC 959).",
    ),
    verb(
        "RNTO",
        LOGGED_IN,
        Required(|a| Ok(C::Rnto(a.to_owned()))),
        "RNTO path: rename to (RFC 959).",
    ),
    verb(
        "SITE",
        LOGGED_IN,
        Required(|a| Ok(C::Site(parse_site(a)?))),
        "SITE HELP | SITE CHMOD mode path | SITE QUOTA (RFC 959).",
    ),
    verb(
        "SIZE",
        LOGGED_IN,
        Required(|a| Ok(C::Size(a.to_owned()))),
        "SIZE path: size of a file (RFC 3659).",
    )
    .feat(Feat::Line("SIZE")),
    verb(
        "STAT",
        OPEN,
        Optional(|a| Ok(C::Stat(a.map(str::to_owned)))),
        "STAT [path]: server status, or a listing over the control connection (RFC 959).",
    ),
    verb(
        "STOR",
        LOGGED_IN,
        Required(|a| Ok(C::Stor(a.to_owned()))),
        "STOR path: upload a file (RFC 959).",
    ),
    verb(
        "STOU",
        LOGGED_IN,
        Optional(|a| Ok(C::Stou(a.map(str::to_owned)))),
        "STOU [name]: upload under a unique name (RFC 959, 1123).",
    ),
    verb(
        "STRU",
        LOGGED_IN,
        Required(parse_stru),
        "STRU F: file structure only (RFC 959).",
    ),
    verb(
        "SYST",
        OPEN,
        Never(|| C::Syst),
        "SYST: system type (RFC 959).",
    ),
    verb(
        "TYPE",
        LOGGED_IN,
        Required(|a| Ok(C::Type(parse_type(a)?))),
        "TYPE A|I|L 8: transfer type (RFC 959).",
    ),
    verb(
        "USER",
        OPEN,
        Required(|a| Ok(C::User(a.to_owned()))),
        "USER name: log in (RFC 959).",
    ),
    verb(
        "XCRC",
        LOGGED_IN,
        Required(|a| Ok(C::Xcrc(parse_xhash(a)?))),
        "XCRC path [start [end]]: CRC-32 of a file (as ProFTPD's mod_digest).",
    )
    .needs(Capability::Hash),
    verb(
        "XMD5",
        LOGGED_IN,
        Required(|a| Ok(C::Xmd5(parse_xhash(a)?))),
        "XMD5 path [start [end]]: MD5 of a file (as ProFTPD's mod_digest).",
    )
    .needs(Capability::Hash),
    verb(
        "XSHA1",
        LOGGED_IN,
        Required(|a| Ok(C::Xsha1(parse_xhash(a)?))),
        "XSHA1 path [start [end]]: SHA-1 of a file (as ProFTPD's mod_digest).",
    )
    .needs(Capability::Hash),
    verb(
        "XSHA256",
        LOGGED_IN,
        Required(|a| Ok(C::Xsha256(parse_xhash(a)?))),
        "XSHA256 path [start [end]]: SHA-256 of a file (as ProFTPD's mod_digest).",
    )
    .needs(Capability::Hash),
    verb(
        "XSHA512",
        LOGGED_IN,
        Required(|a| Ok(C::Xsha512(parse_xhash(a)?))),
        "XSHA512 path [start [end]]: SHA-512 of a file (as ProFTPD's mod_digest).",
    )
    .needs(Capability::Hash),
];

/// The verb `name` (upper case) names, by its name or an alias.
pub fn lookup(name: &str) -> Option<&'static Verb> {
    // Every command line looks its verb up: a sorted index of the names
    // and aliases packed into integers (at most MAX_VERB bytes), searched
    // by halves, instead of comparing the name with every row.
    static INDEX: std::sync::OnceLock<Vec<(u64, &'static Verb)>> = std::sync::OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let mut v: Vec<(u64, &'static Verb)> = VERBS
            .iter()
            .flat_map(|verb| {
                std::iter::once(verb.name)
                    .chain(verb.aliases.iter().copied())
                    .filter_map(move |n| verb_key(n).map(|k| (k, verb)))
            })
            .collect();
        v.sort_by_key(|(k, _)| *k);
        v
    });
    let k = verb_key(name)?;
    let i = index.binary_search_by_key(&k, |(k, _)| *k).ok()?;
    // The key pads with zeros: the name itself decides.
    Some(index[i].1).filter(|v| v.name == name || v.aliases.contains(&name))
}

/// A verb of at most [`MAX_VERB`] bytes as an integer that sorts as it does.
fn verb_key(name: &str) -> Option<u64> {
    let b = name.as_bytes();
    let mut k = [0u8; MAX_VERB];
    k.get_mut(..b.len())?.copy_from_slice(b);
    Some(u64::from_be_bytes(k))
}

impl Command {
    /// The storage capability its verb needs ([`Verb::needs`]), if any:
    /// the session refuses the command in dispatch when the account's
    /// storage lacks it.
    pub fn needs(&self) -> Option<Capability> {
        lookup(self.verb()).and_then(|v| v.needs)
    }
}

/// The longest verb we accept (RFC 959 verbs are 3-4 letters; leave room).
const MAX_VERB: usize = 8;

/// A line becomes a [`Command`] here, through the table, so that the
/// command module's types do not depend on it.
impl Command {
    /// Parse one line (without its line end): the verb, case-insensitive
    /// (RFC 959 section 5.3), looked up in [`VERBS`], then its row's parser.
    pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
        let (verb, rest) = match line.iter().position(|&b| b == b' ') {
            Some(i) => (&line[..i], Some(&line[i + 1..])),
            None => (line, None),
        };
        // Letters, and digits after the first (XMD5, XSHA256).
        let word = verb.first().is_some_and(u8::is_ascii_alphabetic)
            && verb.iter().all(u8::is_ascii_alphanumeric);
        if verb.len() > MAX_VERB || !word {
            return Err(ParseError::Syntax);
        }
        let mut upper = [0u8; MAX_VERB];
        let upper = &mut upper[..verb.len()];
        upper.copy_from_slice(verb);
        upper.make_ascii_uppercase();
        let verb = std::str::from_utf8(upper).expect("ascii");
        let Some(known) = lookup(verb) else {
            return Err(ParseError::Unknown(verb.to_owned()));
        };
        let arg = match rest {
            None => None,
            Some(r) => Some(std::str::from_utf8(r).map_err(|_| ParseError::InvalidUtf8)?),
        };
        // An argument of only spaces counts as none.
        let arg = arg.filter(|a| !a.trim().is_empty());
        known.parse(arg)
    }
}

/// FEAT's reply (RFC 2389 section 3): one feature per line, each
/// indented; those of TLS first (when the server has it), then the rest
/// by name. `can` says what the account's storage can do (before login,
/// what the server offers at all); `mlst_facts` are the facts MLST shows;
/// `hash` is the session's HASH algorithm.
pub fn feat(
    tls: bool,
    can: &dyn Fn(Capability) -> bool,
    mlst_facts: &[&str],
    hash: HashAlgorithm,
) -> Reply {
    let mut features: Vec<(bool, String)> = VERBS
        .iter()
        .filter(|v| v.offered(can))
        .filter_map(|v| match v.feat {
            Feat::No => None,
            Feat::Line(text) => Some((false, text.to_owned())),
            Feat::Tls(text) => tls.then(|| (true, text.to_owned())),
            Feat::Mlst => Some((false, listing::mlst_feat(mlst_facts))),
            Feat::Hash => Some((false, crate::hash::feat_line(hash))),
        })
        .chain(EXTENSIONS.iter().map(|e| (false, (*e).to_owned())))
        .collect();
    features.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut lines = vec!["Features:".to_owned()];
    lines.extend(features.into_iter().map(|(_, text)| format!(" {text}")));
    lines.push("End".to_owned());
    Reply::multi(ReplyCode::SYSTEM_STATUS, lines)
}

/// HELP's reply (RFC 959 section 4.1.3): every name the server answers
/// to, aliases included, sorted, eight to a line; or what one verb does.
/// What the account's storage cannot do (`can`) is not offered.
pub fn help(topic: Option<&str>, can: &dyn Fn(Capability) -> bool) -> Reply {
    match topic {
        None => {
            let mut names: Vec<&str> = VERBS
                .iter()
                .filter(|v| v.offered(can))
                .flat_map(|v| std::iter::once(v.name).chain(v.aliases.iter().copied()))
                .collect();
            names.sort_unstable();
            let mut lines = vec!["The following commands are recognized:".to_owned()];
            for chunk in names.chunks(8) {
                lines.push(format!(" {}", chunk.join(" ")));
            }
            lines.push("Help OK.".to_owned());
            Reply::multi(ReplyCode::HELP, lines)
        }
        Some(t) => match lookup(t) {
            Some(v) if v.offered(can) => Reply::new(ReplyCode::HELP, v.help),
            _ => Reply::new(ReplyCode::NOT_IMPLEMENTED, format!("Unknown command {t}.")),
        },
    }
}

#[cfg(test)]
mod tests;
