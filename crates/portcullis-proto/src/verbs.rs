//! The one table of the verbs the server knows: each one's name, the older
//! names that mean the same (the X-verbs of RFC 775), whether it may come
//! before login, and what HELP says of it. The parser
//! ([`crate::command::Command::parse`]), the sequencing check
//! ([`crate::session::check`]) and HELP all read it. Adding a verb is a row
//! here, a `Command` variant with its parse arm, and its dispatch arm.

/// One verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verb {
    /// The name the server answers to and reports (upper case).
    pub name: &'static str,
    /// Other names for the same command.
    pub aliases: &'static [&'static str],
    /// May run before login (STAT only without an argument).
    pub before_login: bool,
    /// What `HELP VERB` answers: the syntax and where it is defined.
    pub help: &'static str,
}

const fn v(name: &'static str, before_login: bool, help: &'static str) -> Verb {
    Verb {
        name,
        aliases: &[],
        before_login,
        help,
    }
}

const fn x(name: &'static str, alias: &'static [&'static str], help: &'static str) -> Verb {
    Verb {
        name,
        aliases: alias,
        before_login: false,
        help,
    }
}

/// Every verb the server implements, by name.
pub const VERBS: &[Verb] = &[
    v(
        "ABOR",
        true,
        "ABOR: abort the transfer in progress (RFC 959).",
    ),
    v("ACCT", true, "ACCT account: not needed here (RFC 959)."),
    v("ALLO", false, "ALLO size: not needed here (RFC 959)."),
    v("APPE", false, "APPE path: append to a file (RFC 959)."),
    v(
        "AUTH",
        true,
        "AUTH TLS: start TLS on the control connection (RFC 4217).",
    ),
    v(
        "CCC",
        true,
        "CCC: clear the control connection after login, if allowed (RFC 4217).",
    ),
    x(
        "CDUP",
        &["XCUP"],
        "CDUP: go to the parent directory (RFC 959).",
    ),
    x(
        "CWD",
        &["XCWD"],
        "CWD path: change the working directory (RFC 959).",
    ),
    v("DELE", false, "DELE path: delete a file (RFC 959)."),
    v(
        "EPRT",
        false,
        "EPRT |proto|address|port|: active mode, IPv4 or IPv6 (RFC 2428).",
    ),
    v(
        "EPSV",
        false,
        "EPSV [proto|ALL]: passive mode, port only (RFC 2428).",
    ),
    v("FEAT", true, "FEAT: list the extensions (RFC 2389)."),
    v("HELP", true, "HELP [verb]: this help (RFC 959)."),
    v(
        "LIST",
        false,
        "LIST [-a] [path]: long listing, sorted by name (RFC 959).",
    ),
    v(
        "MDTM",
        false,
        "MDTM path: modification time, UTC (RFC 3659).",
    ),
    v(
        "MFMT",
        false,
        "MFMT YYYYMMDDHHMMSS path: set a modification time (draft-somers-ftp-mfxx).",
    ),
    x("MKD", &["XMKD"], "MKD path: make a directory (RFC 959)."),
    v(
        "MLSD",
        false,
        "MLSD [dir]: machine-readable listing (RFC 3659).",
    ),
    v("MLST", false, "MLST [path]: facts of one path (RFC 3659)."),
    v("MODE", false, "MODE S: stream mode only (RFC 959)."),
    v("NLST", false, "NLST [path]: names only, sorted (RFC 959)."),
    v("NOOP", true, "NOOP: do nothing (RFC 959)."),
    v(
        "OPTS",
        true,
        "OPTS UTF8 ON | OPTS MLST facts (RFC 2389, 3659).",
    ),
    v("PASS", true, "PASS password: log in (RFC 959)."),
    v("PASV", false, "PASV: passive mode, IPv4 (RFC 959)."),
    v("PBSZ", true, "PBSZ 0: protection buffer size (RFC 4217)."),
    v(
        "PORT",
        false,
        "PORT h1,h2,h3,h4,p1,p2: active mode, IPv4 (RFC 959).",
    ),
    v(
        "PROT",
        true,
        "PROT C|P: data connection protection (RFC 4217).",
    ),
    x(
        "PWD",
        &["XPWD"],
        "PWD: print the working directory (RFC 959).",
    ),
    v("QUIT", true, "QUIT: log out (RFC 959)."),
    v(
        "REST",
        false,
        "REST offset: restart the next RETR or STOR there (RFC 3659).",
    ),
    v("RETR", false, "RETR path: download a file (RFC 959)."),
    x("RMD", &["XRMD"], "RMD path: remove a directory (RFC 959)."),
    v("RNFR", false, "RNFR path: rename from (RFC 959)."),
    v("RNTO", false, "RNTO path: rename to (RFC 959)."),
    v("SITE", false, "SITE HELP | SITE CHMOD mode path (RFC 959)."),
    v("SIZE", false, "SIZE path: size of a file (RFC 3659)."),
    v(
        "STAT",
        true,
        "STAT [path]: server status, or a listing over the control connection (RFC 959).",
    ),
    v("STOR", false, "STOR path: upload a file (RFC 959)."),
    v(
        "STOU",
        false,
        "STOU [name]: upload under a unique name (RFC 959, 1123).",
    ),
    v("STRU", false, "STRU F: file structure only (RFC 959)."),
    v("SYST", true, "SYST: system type (RFC 959)."),
    v("TYPE", false, "TYPE A|I|L 8: transfer type (RFC 959)."),
    v("USER", true, "USER name: log in (RFC 959)."),
];

/// The verb `name` (upper case) names, by its name or an alias.
pub fn lookup(name: &str) -> Option<&'static Verb> {
    VERBS
        .iter()
        .find(|v| v.name == name || v.aliases.contains(&name))
}

/// Every name the server answers to, aliases included, sorted (for HELP).
pub fn all_names() -> Vec<&'static str> {
    let mut names: Vec<&str> = VERBS
        .iter()
        .flat_map(|v| std::iter::once(v.name).chain(v.aliases.iter().copied()))
        .collect();
    names.sort_unstable();
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Command;

    #[test]
    fn every_verb_parses_and_reports_its_own_name() {
        for verb in VERBS {
            for name in std::iter::once(verb.name).chain(verb.aliases.iter().copied()) {
                // Each with the argument it needs, so that only the verb is tested.
                let line = match name {
                    "SITE" => "SITE HELP".to_owned(),
                    "TYPE" => "TYPE I".to_owned(),
                    "MODE" => "MODE S".to_owned(),
                    "STRU" => "STRU F".to_owned(),
                    "PORT" => "PORT 127,0,0,1,4,1".to_owned(),
                    "EPRT" => "EPRT |1|127.0.0.1|1025|".to_owned(),
                    "AUTH" => "AUTH TLS".to_owned(),
                    "PBSZ" => "PBSZ 0".to_owned(),
                    "PROT" => "PROT P".to_owned(),
                    "REST" => "REST 0".to_owned(),
                    "OPTS" => "OPTS UTF8 ON".to_owned(),
                    "MFMT" => "MFMT 20200101000000 f".to_owned(),
                    "PWD" | "XPWD" | "CDUP" | "XCUP" | "PASV" | "EPSV" | "FEAT" | "SYST"
                    | "CCC" => name.to_owned(),
                    _ => format!("{name} x"),
                };
                let cmd = Command::parse(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
                assert_eq!(cmd.verb(), verb.name, "{line}");
                assert_eq!(lookup(name), Some(verb));
            }
        }
        assert_eq!(lookup("XYZZ"), None);
        let names = all_names();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "{names:?}");
        assert_eq!(names.len(), VERBS.len() + 5);
    }
}
