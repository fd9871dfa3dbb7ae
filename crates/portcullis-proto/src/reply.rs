//! Replies: a three-digit code and one or more lines of text, encoded as
//! RFC 959 section 4.2 describes (multi-line replies start with `CODE-` and end
//! with `CODE `; inner lines that begin with a digit are indented so that no
//! client mistakes them for the last line).

use std::fmt;

/// A reply code. The constants name the codes portcullis sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReplyCode(pub u16);

impl ReplyCode {
    /// 110 restart marker (unused: we only support stream mode).
    pub const RESTART_MARKER: Self = Self(110);
    /// 125 data connection already open; transfer starting.
    pub const DATA_ALREADY_OPEN: Self = Self(125);
    /// 150 file status okay; about to open data connection.
    pub const OPENING_DATA: Self = Self(150);
    /// 200 command okay.
    pub const OK: Self = Self(200);
    /// 202 command not implemented, superfluous at this site (ALLO, ACCT).
    pub const SUPERFLUOUS: Self = Self(202);
    /// 211 system status, or FEAT's feature list.
    pub const SYSTEM_STATUS: Self = Self(211);
    /// 212 directory status (STAT path of a directory).
    pub const DIRECTORY_STATUS: Self = Self(212);
    /// 213 file status (SIZE, MDTM, STAT path of a file).
    pub const FILE_STATUS: Self = Self(213);
    /// 214 help message.
    pub const HELP: Self = Self(214);
    /// 215 system type.
    pub const SYSTEM_TYPE: Self = Self(215);
    /// 220 service ready for new user.
    pub const READY: Self = Self(220);
    /// 221 service closing control connection.
    pub const CLOSING: Self = Self(221);
    /// 225 data connection open; no transfer in progress (ABOR with nothing to abort).
    pub const DATA_OPEN_NO_TRANSFER: Self = Self(225);
    /// 226 closing data connection; requested file action successful.
    pub const TRANSFER_COMPLETE: Self = Self(226);
    /// 227 entering passive mode (h1,h2,h3,h4,p1,p2).
    pub const PASSIVE: Self = Self(227);
    /// 229 entering extended passive mode (|||port|), RFC 2428.
    pub const EXTENDED_PASSIVE: Self = Self(229);
    /// 230 user logged in.
    pub const LOGGED_IN: Self = Self(230);
    /// 234: AUTH accepted; the TLS handshake follows (RFC 4217 section 4).
    pub const AUTH_OK: Self = Self(234);
    /// 250 requested file action okay, completed.
    pub const FILE_ACTION_OK: Self = Self(250);
    /// 257 "PATHNAME" created / current directory.
    pub const PATH_CREATED: Self = Self(257);
    /// 331 user name okay, need password.
    pub const NEED_PASSWORD: Self = Self(331);
    /// 350 requested file action pending further information (RNFR, REST).
    pub const PENDING: Self = Self(350);
    /// 421 service not available, closing control connection.
    pub const NOT_AVAILABLE: Self = Self(421);
    /// 425 can't open data connection.
    pub const CANT_OPEN_DATA: Self = Self(425);
    /// 426 connection closed; transfer aborted.
    pub const TRANSFER_ABORTED: Self = Self(426);
    /// 450 requested file action not taken; file unavailable (busy).
    pub const FILE_BUSY: Self = Self(450);
    /// 451 requested action aborted: local error in processing.
    pub const LOCAL_ERROR: Self = Self(451);
    /// 452 requested action not taken: insufficient storage space.
    pub const INSUFFICIENT_STORAGE: Self = Self(452);
    /// 500 syntax error, command unrecognized (also: line too long).
    pub const SYNTAX_ERROR: Self = Self(500);
    /// 501 syntax error in parameters or arguments.
    pub const BAD_ARGUMENT: Self = Self(501);
    /// 502 command not implemented.
    pub const NOT_IMPLEMENTED: Self = Self(502);
    /// 503 bad sequence of commands.
    pub const BAD_SEQUENCE: Self = Self(503);
    /// 504 command not implemented for that parameter.
    pub const PARAMETER_NOT_IMPLEMENTED: Self = Self(504);
    /// 522 network protocol not supported (EPRT/EPSV), RFC 2428.
    pub const PROTOCOL_NOT_SUPPORTED: Self = Self(522);
    /// 530 not logged in.
    pub const NOT_LOGGED_IN: Self = Self(530);
    /// 521: the data connection cannot be opened with this PROT setting
    /// (RFC 4217 section 9).
    pub const PROT_REFUSED: Self = Self(521);
    /// 533: the command needs a protected control connection (RFC 2228).
    pub const NEEDS_PROTECTION: Self = Self(533);
    /// 534: request denied for policy reasons (RFC 2228, RFC 4217).
    pub const POLICY_DENIED: Self = Self(534);
    /// 550 requested action not taken; file unavailable.
    pub const FILE_UNAVAILABLE: Self = Self(550);
    /// 551 requested action aborted: page type unknown / bad offset.
    pub const PAGE_TYPE_UNKNOWN: Self = Self(551);
    /// 552 requested file action aborted: exceeded storage allocation.
    pub const EXCEEDED_STORAGE: Self = Self(552);
    /// 553 requested action not taken: file name not allowed.
    pub const BAD_FILE_NAME: Self = Self(553);
    /// 554 requested action not taken: invalid REST parameter (RFC 3659 section 5.4).
    pub const INVALID_REST: Self = Self(554);
}

impl ReplyCode {
    /// The code as three digits (`{:03}`), appended to `out`.
    fn push_digits(self, out: &mut Vec<u8>) {
        if self.0 < 1000 {
            let c = self.0;
            out.extend_from_slice(&[
                b'0' + (c / 100) as u8,
                b'0' + (c / 10 % 10) as u8,
                b'0' + (c % 10) as u8,
            ]);
        } else {
            out.extend_from_slice(self.to_string().as_bytes());
        }
    }
}

impl fmt::Display for ReplyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03}", self.0)
    }
}

/// A complete reply. `lines` is never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: ReplyCode,
    pub lines: Vec<String>,
}

impl Reply {
    /// A single-line reply.
    pub fn new(code: ReplyCode, text: impl Into<String>) -> Self {
        Reply {
            code,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply: the first line goes after `CODE-`, the last after
    /// `CODE `, the ones between verbatim (indented if they start with a digit).
    pub fn multi(code: ReplyCode, lines: Vec<String>) -> Self {
        assert!(!lines.is_empty(), "a reply needs at least one line");
        Reply { code, lines }
    }

    /// True for 1xx replies, after which a final reply still has to come.
    pub fn is_preliminary(&self) -> bool {
        self.code.0 < 200
    }

    /// Append the wire form of this reply to `out`. CR and LF inside a line
    /// are replaced so that a file name can never inject a reply line.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // Written byte by byte, not with format!: every command's reply
        // goes through here (three per small-file transfer).
        let n = self.lines.len();
        for (i, line) in self.lines.iter().enumerate() {
            let clean = sanitize(line);
            let sep = match (n, i) {
                (1, _) => Some(b' '),
                (_, 0) => Some(b'-'),
                _ if i == n - 1 => Some(b' '),
                _ => None,
            };
            match sep {
                Some(sep) => {
                    self.code.push_digits(out);
                    out.push(sep);
                }
                None if clean.as_bytes().first().is_some_and(u8::is_ascii_digit) => out.push(b' '),
                None => {}
            }
            out.extend_from_slice(clean.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The wire form as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }
}

fn sanitize(line: &str) -> std::borrow::Cow<'_, str> {
    if line.contains(['\r', '\n']) {
        std::borrow::Cow::Owned(line.replace(['\r', '\n'], " "))
    } else {
        std::borrow::Cow::Borrowed(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line() {
        let r = Reply::new(ReplyCode::OK, "Command okay.");
        assert_eq!(r.to_bytes(), b"200 Command okay.\r\n");
    }

    #[test]
    fn multi_line_indents_digits() {
        let r = Reply::multi(
            ReplyCode::SYSTEM_STATUS,
            vec![
                "Features:".into(),
                " UTF8".into(),
                "123 x".into(),
                "End".into(),
            ],
        );
        assert_eq!(
            r.to_bytes(),
            b"211-Features:\r\n UTF8\r\n 123 x\r\n211 End\r\n".to_vec()
        );
    }

    #[test]
    fn newline_in_text_cannot_inject() {
        let r = Reply::new(ReplyCode::FILE_UNAVAILABLE, "a\r\n230 evil");
        assert_eq!(r.to_bytes(), b"550 a  230 evil\r\n");
    }
}
