//! Checksums of files: the HASH command of draft-bryan-ftpext-hash-02,
//! the RANG command of draft-bryan-ftp-range (here for HASH only) and the
//! older algorithm-named verbs (XCRC, XMD5, XSHA1, XSHA256, XSHA512, as
//! ProFTPD's mod_digest answers them). Parsing and the replies' text; the
//! hashing itself is the server's.

use crate::command::ParseError;

/// A hash algorithm a client may choose (draft-bryan-ftpext-hash-02
/// section 3.1: the names of IANA's "Hash Function Textual Names").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HashAlgorithm {
    /// SHA-1: the draft's mandatory algorithm (section 5).
    Sha1,
    /// SHA-256: the default here (no weaker than SHA-1, as section 5 asks).
    #[default]
    Sha256,
    /// SHA-512.
    Sha512,
    /// MD5 (for older clients; not collision resistant).
    Md5,
    /// CRC-32 (IEEE, as zlib's `crc32`): a checksum, not a hash.
    Crc32,
}

impl HashAlgorithm {
    /// Every algorithm, in the order FEAT lists them.
    pub const ALL: [HashAlgorithm; 5] = [
        HashAlgorithm::Sha1,
        HashAlgorithm::Sha256,
        HashAlgorithm::Sha512,
        HashAlgorithm::Md5,
        HashAlgorithm::Crc32,
    ];

    /// Its name in FEAT, OPTS HASH and the 213 reply.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgorithm::Sha1 => "SHA-1",
            HashAlgorithm::Sha256 => "SHA-256",
            HashAlgorithm::Sha512 => "SHA-512",
            HashAlgorithm::Md5 => "MD5",
            HashAlgorithm::Crc32 => "CRC32",
        }
    }

    /// The algorithm `name` names, case-insensitive (section 3.1).
    pub fn from_name(name: &str) -> Option<HashAlgorithm> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name.trim()))
    }
}

/// FEAT's HASH line (section 3.1): every algorithm, the selected one
/// starred.
pub fn feat_line(selected: HashAlgorithm) -> String {
    let mut line = "HASH ".to_owned();
    for (i, a) in HashAlgorithm::ALL.into_iter().enumerate() {
        if i > 0 {
            line.push(';');
        }
        line.push_str(a.name());
        if a == selected {
            line.push('*');
        }
    }
    line
}

/// OPTS HASH's argument (section 3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashOpt {
    /// `OPTS HASH`: which algorithm is selected.
    Query,
    /// `OPTS HASH name`: select it.
    Select(HashAlgorithm),
    /// A name we do not know: 501, the selection unchanged.
    Unknown(String),
}

/// OPTS HASH's argument, after the subject.
pub(crate) fn parse_hash_opt(rest: &str) -> HashOpt {
    match rest.trim() {
        "" => HashOpt::Query,
        name => match HashAlgorithm::from_name(name) {
            Some(a) => HashOpt::Select(a),
            None => HashOpt::Unknown(name.to_owned()),
        },
    }
}

/// RANG's argument (draft-bryan-ftp-range section 3): the bytes `start`
/// to `end`, both included, or `RANG 1 0`, which resets to whole files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangArg {
    /// `RANG 1 0`.
    Reset,
    /// `RANG start end`, `start <= end`.
    Range { start: u64, end: u64 },
}

/// RANG start end.
pub(crate) fn parse_rang(arg: &str) -> Result<RangArg, ParseError> {
    let bad = || ParseError::BadArgument("RANG needs two byte positions: start end".into());
    let mut it = arg.split_ascii_whitespace();
    let (Some(s), Some(e), None) = (it.next(), it.next(), it.next()) else {
        return Err(bad());
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if !digits(s) || !digits(e) {
        return Err(bad());
    }
    let (start, end): (u64, u64) = (s.parse().map_err(|_| bad())?, e.parse().map_err(|_| bad())?);
    match (start, end) {
        (1, 0) => Ok(RangArg::Reset),
        (s, e) if e < s => Err(ParseError::BadArgument(
            "RANG: the end must not be before the start (RANG 1 0 resets)".into(),
        )),
        (start, end) => Ok(RangArg::Range { start, end }),
    }
}

/// The argument of XCRC, XMD5, XSHA1, XSHA256 and XSHA512: a path, then
/// optionally where to start and where to stop (the offset after the last
/// byte hashed), as ProFTPD's mod_digest takes them. A path with spaces
/// may be quoted; an unquoted path is everything before the trailing
/// numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XHashArgs {
    pub path: String,
    pub start: Option<u64>,
    pub end: Option<u64>,
}

/// `path ["start" ["end"]]`, the path possibly in double quotes.
pub(crate) fn parse_xhash(arg: &str) -> Result<XHashArgs, ParseError> {
    let arg = arg.trim();
    let (path, numbers) = match arg.strip_prefix('"') {
        Some(quoted) => {
            let Some(close) = quoted.find('"') else {
                return Err(ParseError::BadArgument("unclosed quote in the path".into()));
            };
            (quoted[..close].to_owned(), &quoted[close + 1..])
        }
        None => {
            // The last one or two words, when they are numbers, are the
            // offsets; the rest is the path.
            let mut path = arg;
            let mut tail = "";
            for _ in 0..2 {
                match path.rsplit_once(' ') {
                    Some((p, last))
                        if !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()) =>
                    {
                        tail = &arg[p.len()..];
                        path = p.trim_end();
                    }
                    _ => break,
                }
            }
            (path.to_owned(), tail)
        }
    };
    if path.is_empty() {
        return Err(ParseError::BadArgument("a path is needed".into()));
    }
    let bad = || ParseError::BadArgument("start and end must be byte offsets".into());
    let nums: Vec<u64> = numbers
        .split_ascii_whitespace()
        .map(|n| match n.bytes().all(|b| b.is_ascii_digit()) {
            true => n.parse().map_err(|_| bad()),
            false => Err(bad()),
        })
        .collect::<Result<_, _>>()?;
    let (start, end) = match nums[..] {
        [] => (None, None),
        [s] => (Some(s), None),
        [s, e] if e >= s => (Some(s), Some(e)),
        [_, _] => {
            return Err(ParseError::BadArgument(
                "the end must not be before the start".into(),
            ))
        }
        _ => return Err(bad()),
    };
    Ok(XHashArgs { path, start, end })
}

impl crate::command::Command {
    /// An algorithm-named verb (XCRC, XMD5, XSHA1, XSHA256, XSHA512): its
    /// algorithm and arguments.
    pub fn x_hash(&self) -> Option<(HashAlgorithm, &XHashArgs)> {
        use crate::command::Command as C;
        match self {
            C::Xcrc(a) => Some((HashAlgorithm::Crc32, a)),
            C::Xmd5(a) => Some((HashAlgorithm::Md5, a)),
            C::Xsha1(a) => Some((HashAlgorithm::Sha1, a)),
            C::Xsha256(a) => Some((HashAlgorithm::Sha256, a)),
            C::Xsha512(a) => Some((HashAlgorithm::Sha512, a)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
