//! Why a command or a transfer failed, and the one function that turns
//! that into a reply ([`reply_for`]). Handlers return
//! `Result<Reply, SessionError>` and use `?`; the transfer task returns its
//! outcome the same way. The code of each variant is written on it, and
//! whether the session ends after that reply ([`SessionError::closes`]):
//! a handler that ends the session returns such an error, it sets no flag.
//! A connection refused at accept, before it has a session, is answered
//! here too ([`refusal_reply`]).

use std::time::Duration;

use portcullis_proto::command::ParseError;
use portcullis_proto::path::PathError;
use portcullis_proto::reply::{Reply, ReplyCode};

use crate::data::DataError;
use crate::limits::Refusal;
use crate::storage::StorageError;
use crate::tls::TlsError;

/// When the error happened: answering a command, or in a transfer that
/// had already been answered with 150.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Command,
    Transfer,
}

/// Where a transfer was stopped by ABOR or the session's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AbortedAt {
    /// Waiting for the data connection.
    Connecting,
    /// In the data connection's TLS handshake.
    Handshake,
    /// Moving data.
    Transfer,
    /// Reading a file to hash it (HASH, XSHA256, ...).
    Hashing,
}

/// Why a command or a transfer failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SessionError {
    /// 530: the command needs a logged-in user (`seq::check` lets no such
    /// command through before login, so this guards against a sequencing
    /// bug).
    #[error("not logged in")]
    NotLoggedIn,
    /// 530 "Can't change to another user.": USER after a login.
    #[error("already logged in")]
    AlreadyLoggedIn,
    /// 503: PASS without a USER before it (`seq::check` lets no such PASS
    /// through, so this guards against a sequencing bug).
    #[error("PASS without USER")]
    PassWithoutUser,
    /// 530: the account may log in only over TLS and the control
    /// connection is plain (before PASS when the back end can tell, so that
    /// the password is not sent in clear).
    #[error("TLS required before login")]
    TlsRequired,
    /// 530 "Login incorrect.": wrong password, unknown user or an address
    /// the account may not log in from (one answer, nothing to enumerate).
    #[error("login incorrect")]
    LoginIncorrect,
    /// 530: the account's root could not be opened (a storage failure at
    /// login; the detail goes to the log only).
    #[error("home directory unavailable")]
    HomeUnavailable,
    /// 421, closes: this failure was one too many; banned for this many
    /// seconds.
    #[error("banned for {0} s after failed logins")]
    LoginBanned(u64),
    /// 421, closes: the account has `max_sessions` (this many) sessions
    /// already; as a full server, not the password's fault.
    #[error("too many sessions of this user ({0})")]
    TooManySessions(usize),
    /// 421, closes: an account back end failed (not the client's fault: try
    /// again later, RFC 959 421).
    #[error("login service unavailable")]
    LoginBackend,
    /// 421, closes: the address is refused (banned, denied, or the server
    /// or the address has too many connections), at accept or, for a ban
    /// that another session caused meanwhile, at USER.
    #[error("refused: {0}")]
    Refused(Refusal),
    /// 421, closes: a PROXY protocol header from an address not in
    /// `proxy_protocol.from`.
    #[error("PROXY header not accepted")]
    ProxyHeaderRefused,
    /// 550 "Permission denied: you may not ...": the account's permissions
    /// do not allow the action named.
    #[error("permission denied: may not {0}")]
    Denied(String),
    /// 550 with the text a pre-action hook refused with (sanitised by
    /// `events::hooks`), or that the hook failed (`on_failure = "deny"`).
    #[error("refused by a hook: {0}")]
    HookRefused(String),
    /// 553: the client's path is refused before any storage sees it.
    #[error("bad path: {0}")]
    Path(#[from] PathError),
    /// 502: the account's storage cannot do this (see
    /// [`crate::storage::Capabilities`]); names the command.
    #[error("{0} not supported by this storage")]
    Unsupported(&'static str),
    /// 550: the path names a directory or a special file where a plain
    /// file is needed (RETR, SIZE, MDTM).
    #[error("not a plain file")]
    NotPlainFile,
    /// 550: STOU found every name it tried taken.
    #[error("no unique file name")]
    NoUniqueName,
    /// 554: a REST offset beyond the end of the file (RFC 3659 section 5.4).
    #[error("restart offset {offset} past the end ({size} bytes)")]
    RestPastEnd { offset: u64, size: u64 },
    /// The code noted on each [`StorageError`] variant. In a transfer
    /// (after its 150) 550 becomes 451, as the request itself was fine
    /// when it was accepted, and `AlreadyExists` (a file that appeared
    /// during a no-overwrite upload) is 451 with its own text.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// 425: the data connection could not be opened (no PORT/PASV,
    /// nothing connected in time, the client's port refused).
    #[error("no data connection: {0}")]
    NoDataConnection(#[from] DataError),
    /// 522 when a PROT P data connection did not resume a TLS session it
    /// may resume (as vsftpd answers), 425 for any other TLS failure.
    #[error("data connection TLS: {0}")]
    DataTls(#[from] TlsError),
    /// 425 "The data port is busy ...": `passive.single_port` is reserved
    /// by another session from the same address for longer than
    /// `passive.single_port_wait`.
    #[error("single data port busy")]
    SinglePortBusy,
    /// 425: every port of `passive.ports` is in use.
    #[error("no free passive port")]
    NoPassivePort,
    /// 425: PASV/EPSV of a session whose balancer did not name the client
    /// (PROXY UNKNOWN), without `proxy_protocol.data_without_header`: no
    /// data connection could be told to be its own.
    #[error("passive mode for a client the balancer did not name")]
    PassiveClientUnknown,
    /// 425 "Use PORT, EPRT, PASV or EPSV first.": a transfer command with
    /// no data connection armed.
    #[error("no data connection armed")]
    DataNotArmed,
    /// 521: the data connection would be plain and `tls.require_data` (or
    /// the account) wants it encrypted; PBSZ 0 and PROT P first.
    #[error("data connection protection required")]
    DataTlsRequired,
    /// 426: the data connection broke.
    #[error("data connection: {0}")]
    DataLost(std::io::Error),
    /// 426: ABOR, or the session ending, stopped the transfer.
    #[error("aborted by the client")]
    Aborted(AbortedAt),
    /// 426: the server is stopping and `server.shutdown_grace` ran out
    /// (or a second signal came) while the transfer ran.
    #[error("cut by the shutdown grace")]
    Drained,
    /// 426: the control plane kicked the session while the transfer ran.
    #[error("cut by a kick")]
    KickedTransfer,
    /// 426: nothing moved for `limits.data_timeout`.
    #[error("stalled: no data moved for {0:?}")]
    Stalled(Duration),
    /// 451: the file being sent got shorter (truncated in place) and
    /// ended this many bytes early.
    #[error("the file shrank during the transfer ({0} bytes missing)")]
    Shrank(u64),
    /// 502: hashing is turned off (`limits.hash = false`); names the
    /// command.
    #[error("{0} is turned off")]
    HashingOff(&'static str),
    /// 450: `limits.hash_concurrency` hashes already run on this server
    /// (draft-bryan-ftpext-hash-02 section 3.5: busy, try later).
    #[error("too many hashes in progress")]
    HashBusy,
    /// 556: the bytes to hash are more than `limits.hash_max_size` (the
    /// draft's reply for a policy refusal).
    #[error("{len} bytes to hash, over limits.hash_max_size ({max})")]
    HashTooLarge { len: u64, max: u64 },
    /// 553: HASH of a directory, which the draft leaves undefined.
    #[error("HASH of a directory")]
    HashDirectory,
    /// 554: the range to hash starts past the end of the file.
    #[error("range starts at {start}, past the end of the file ({size} bytes)")]
    HashRange { start: u64, size: u64 },
    /// 451: the file's size or modification time changed while it was
    /// read for hashing: the hash would be of no version of the file.
    #[error("the file changed while it was hashed")]
    HashChanged,
    /// 450: a line sent during a transfer with
    /// [`super::during::MAX_DEFERRED`] lines already waiting is dropped.
    #[error("too many commands queued behind the transfer")]
    TooManyQueued,
    /// 450: the account's root is still being counted for its quota
    /// (its first scan), after a wait; the client may try again.
    #[error("quota usage still being counted")]
    QuotaCounting,
    /// 421, closes: no login within `limits.login_timeout` of connecting.
    #[error("login timeout")]
    LoginTimeout,
    /// 421, closes: no command for `limits.idle_timeout` after login.
    #[error("idle timeout")]
    IdleTimeout,
    /// 421, closes: the server is stopping (a drain, or its grace over).
    #[error("server shutting down")]
    ShuttingDown,
    /// 421, closes: the control plane kicked the session.
    #[error("kicked")]
    Kicked,
    /// 421, closes: the session panicked (a bug); the detail is logged by
    /// the panic hook.
    #[error("internal error")]
    Internal,
}

impl SessionError {
    /// The session ends after this error's reply (the 421s: RFC 959 says
    /// the service is closing the control connection).
    pub(crate) fn closes(&self) -> bool {
        matches!(
            self,
            Self::LoginBanned(_)
                | Self::TooManySessions(_)
                | Self::LoginBackend
                | Self::Refused(_)
                | Self::ProxyHeaderRefused
                | Self::LoginTimeout
                | Self::IdleTimeout
                | Self::ShuttingDown
                | Self::Kicked
                | Self::Internal
        )
    }
}

/// The one place where errors become replies.
pub(crate) fn reply_for(e: &SessionError, phase: Phase) -> Reply {
    use SessionError as E;
    match e {
        E::NotLoggedIn => Reply::new(ReplyCode::NOT_LOGGED_IN, "Please login with USER and PASS."),
        E::AlreadyLoggedIn => Reply::new(ReplyCode::NOT_LOGGED_IN, "Can't change to another user."),
        E::PassWithoutUser => Reply::new(ReplyCode::BAD_SEQUENCE, "Login with USER first."),
        E::TlsRequired => Reply::new(
            ReplyCode::NOT_LOGGED_IN,
            "TLS required: send AUTH TLS before logging in.",
        ),
        E::LoginIncorrect => Reply::new(ReplyCode::NOT_LOGGED_IN, "Login incorrect."),
        E::HomeUnavailable => Reply::new(
            ReplyCode::NOT_LOGGED_IN,
            "Login failed: home directory unavailable.",
        ),
        E::LoginBanned(secs) => Reply::new(
            ReplyCode::NOT_AVAILABLE,
            format!("Login incorrect. Too many failed logins: banned for {secs} s."),
        ),
        E::TooManySessions(max) => Reply::new(
            ReplyCode::NOT_AVAILABLE,
            format!("Too many sessions of this user ({max}); try again later."),
        ),
        E::LoginBackend => Reply::new(
            ReplyCode::NOT_AVAILABLE,
            "Login service unavailable, try again later.",
        ),
        E::Refused(refusal) => Reply::new(ReplyCode::NOT_AVAILABLE, refusal.to_string()),
        E::ProxyHeaderRefused => Reply::new(
            ReplyCode::NOT_AVAILABLE,
            "PROXY protocol header not accepted from this address; closing.",
        ),
        E::NoUniqueName => Reply::new(
            ReplyCode::FILE_UNAVAILABLE,
            "Could not find a unique file name.",
        ),
        E::SinglePortBusy => Reply::new(
            ReplyCode::CANT_OPEN_DATA,
            "The data port is busy with another session from your address; try again.",
        ),
        E::NoPassivePort => Reply::new(
            ReplyCode::CANT_OPEN_DATA,
            "No free passive port; try again later.",
        ),
        E::PassiveClientUnknown => Reply::new(
            ReplyCode::CANT_OPEN_DATA,
            "Passive mode is unavailable: the load balancer did not name your address (PROXY UNKNOWN), so no data connection can be matched to you.",
        ),
        E::HookRefused(text) => Reply::new(ReplyCode::FILE_UNAVAILABLE, text.clone()),
        E::Denied(what) => Reply::new(
            ReplyCode::FILE_UNAVAILABLE,
            format!("Permission denied: you may not {what}."),
        ),
        E::Path(p) => Reply::new(
            ReplyCode::BAD_FILE_NAME,
            format!("File name not allowed: {p}."),
        ),
        E::NotPlainFile => Reply::new(ReplyCode::FILE_UNAVAILABLE, "Not a plain file."),
        E::Unsupported(what) => Reply::new(
            ReplyCode::NOT_IMPLEMENTED,
            format!("{what} is not available: the storage of this account cannot do it."),
        ),
        E::HashingOff(verb) => Reply::new(
            ReplyCode::NOT_IMPLEMENTED,
            format!("{verb} is turned off on this server."),
        ),
        E::HashBusy => Reply::new(
            ReplyCode::FILE_BUSY,
            "Too many files are being hashed; try again later.",
        ),
        E::HashTooLarge { len, max } => Reply::new(
            ReplyCode(556),
            format!("Not hashed: {len} bytes is more than this server hashes ({max})."),
        ),
        E::HashDirectory => Reply::new(
            ReplyCode::BAD_FILE_NAME,
            "The hash of a directory is not defined.",
        ),
        E::HashRange { start, size } => Reply::new(
            ReplyCode::INVALID_REST,
            format!("The range starts at {start}, past the end of the file ({size} bytes)."),
        ),
        E::HashChanged => Reply::new(
            ReplyCode::LOCAL_ERROR,
            "The file changed while it was hashed; try again.",
        ),
        E::RestPastEnd { offset, size } => Reply::new(
            ReplyCode::INVALID_REST,
            format!("Restart offset {offset} is past the end of the file ({size} bytes)."),
        ),
        E::Storage(StorageError::AlreadyExists) if phase == Phase::Transfer => Reply::new(
            ReplyCode::LOCAL_ERROR,
            "Not stored: a file of that name appeared during the upload, and this account may not replace files.",
        ),
        E::Storage(s) => {
            let mut r = storage_reply(s);
            if phase == Phase::Transfer && r.code == ReplyCode::FILE_UNAVAILABLE {
                r.code = ReplyCode::LOCAL_ERROR;
            }
            r
        }
        E::NoDataConnection(d) => Reply::new(
            ReplyCode::CANT_OPEN_DATA,
            format!("Can't open data connection: {d}."),
        ),
        E::DataTls(t) => {
            let code = match t {
                TlsError::NoReuse => ReplyCode::PROTOCOL_NOT_SUPPORTED,
                _ => ReplyCode::CANT_OPEN_DATA,
            };
            Reply::new(code, format!("Can't open data connection: {t}."))
        }
        E::DataNotArmed => Reply::new(
            ReplyCode::CANT_OPEN_DATA,
            "Use PORT, EPRT, PASV or EPSV first.",
        ),
        E::DataTlsRequired => Reply::new(
            ReplyCode::PROT_REFUSED,
            "Data connections must be encrypted: send PBSZ 0 and PROT P.",
        ),
        E::DataLost(io) => Reply::new(
            ReplyCode::TRANSFER_ABORTED,
            format!("Connection closed; transfer aborted ({io})."),
        ),
        E::Aborted(at) => Reply::new(
            ReplyCode::TRANSFER_ABORTED,
            match at {
                AbortedAt::Connecting => "Transfer aborted before the data connection opened.",
                AbortedAt::Handshake => "Transfer aborted during the TLS handshake.",
                AbortedAt::Transfer => "Connection closed; transfer aborted.",
                AbortedAt::Hashing => "Hash aborted.",
            },
        ),
        E::Drained => Reply::new(
            ReplyCode::TRANSFER_ABORTED,
            "Server shutting down; transfer aborted.",
        ),
        E::KickedTransfer => Reply::new(
            ReplyCode::TRANSFER_ABORTED,
            "Session closed by the administrator; transfer aborted.",
        ),
        E::Stalled(t) => Reply::new(
            ReplyCode::TRANSFER_ABORTED,
            format!(
                "Transfer stalled: no data moved for {} s; aborted.",
                t.as_secs()
            ),
        ),
        E::Shrank(missing) => Reply::new(
            ReplyCode::LOCAL_ERROR,
            format!(
                "File changed during the transfer: it ended {missing} bytes early; transfer aborted."
            ),
        ),
        E::TooManyQueued => Reply::new(
            ReplyCode::FILE_BUSY,
            "Transfer in progress; too many queued commands, this one was dropped.",
        ),
        E::QuotaCounting => Reply::new(
            ReplyCode::FILE_BUSY,
            "Storage usage is still being counted for your quota; try again shortly.",
        ),
        E::LoginTimeout => Reply::new(
            ReplyCode::NOT_AVAILABLE,
            "Timeout: login took too long, closing control connection.",
        ),
        E::IdleTimeout => Reply::new(
            ReplyCode::NOT_AVAILABLE,
            "Timeout: no command for too long, closing control connection.",
        ),
        E::ShuttingDown => Reply::new(
            ReplyCode::NOT_AVAILABLE,
            "Server shutting down, closing control connection.",
        ),
        E::Kicked => Reply::new(
            ReplyCode::NOT_AVAILABLE,
            "Session closed by the administrator, closing control connection.",
        ),
        E::Internal => Reply::new(
            ReplyCode::NOT_AVAILABLE,
            "Internal server error, closing control connection.",
        ),
    }
}

/// The 421 for a connection refused at accept (limits, bans, networks):
/// the accept layer has no session, but the code and the words are chosen
/// here with the rest.
pub(crate) fn refusal_reply(refusal: Refusal) -> Reply {
    reply_for(&SessionError::Refused(refusal), Phase::Command)
}

/// Lines that do not parse, as replies (500, 501, 502, 504).
pub(crate) fn parse_error_reply(e: &ParseError) -> Reply {
    let code = match e {
        ParseError::Syntax => ReplyCode::SYNTAX_ERROR,
        ParseError::Unknown(_) => ReplyCode::NOT_IMPLEMENTED,
        ParseError::MissingArgument(_) | ParseError::BadArgument(_) | ParseError::InvalidUtf8 => {
            ReplyCode::BAD_ARGUMENT
        }
        ParseError::Unsupported(_) => ReplyCode::PARAMETER_NOT_IMPLEMENTED,
    };
    let mut text = e.to_string();
    if let Some(first) = text.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    text.push('.');
    Reply::new(code, text)
}

/// Storage errors, by the codes documented on [`StorageError`]'s variants.
fn storage_reply(e: &StorageError) -> Reply {
    let (code, text) = match e {
        StorageError::NotFound => (ReplyCode::FILE_UNAVAILABLE, "No such file or directory."),
        StorageError::AlreadyExists => (ReplyCode::FILE_UNAVAILABLE, "File exists."),
        StorageError::NotADirectory => (ReplyCode::FILE_UNAVAILABLE, "Not a directory."),
        StorageError::IsADirectory => (ReplyCode::FILE_UNAVAILABLE, "Is a directory."),
        StorageError::DirectoryNotEmpty => (ReplyCode::FILE_UNAVAILABLE, "Directory not empty."),
        StorageError::PermissionDenied => (ReplyCode::FILE_UNAVAILABLE, "Permission denied."),
        StorageError::OutsideRoot => (
            ReplyCode::FILE_UNAVAILABLE,
            "Symbolic link leads outside your home directory; not followed.",
        ),
        StorageError::NoSpace => (ReplyCode::EXCEEDED_STORAGE, "Insufficient storage space."),
        StorageError::QuotaExceeded => (
            ReplyCode::EXCEEDED_STORAGE,
            "Requested file action aborted. Exceeded storage allocation.",
        ),
        StorageError::BadName => (ReplyCode::BAD_FILE_NAME, "File name not allowed."),
        StorageError::NameTooLong => (
            ReplyCode::BAD_FILE_NAME,
            "File name too long for this file system.",
        ),
        StorageError::IntoItself => (
            ReplyCode::FILE_UNAVAILABLE,
            "Cannot move a directory into itself.",
        ),
        // Logged as an event with the store's own message.
        StorageError::Unavailable(_) => (
            ReplyCode::LOCAL_ERROR,
            "Storage unavailable (the object store failed, throttled or did not answer); try again later.",
        ),
        StorageError::Refused(why) => (ReplyCode::FILE_UNAVAILABLE, *why),
        // The error itself is logged as an event, not told to the client.
        StorageError::Io(_) => (ReplyCode::LOCAL_ERROR, "Local error in processing."),
    };
    Reply::new(code, text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_storage_error_by_phase() {
        let nf = SessionError::Storage(StorageError::NotFound);
        assert_eq!(
            reply_for(&nf, Phase::Command).code,
            ReplyCode::FILE_UNAVAILABLE
        );
        assert_eq!(reply_for(&nf, Phase::Transfer).code, ReplyCode::LOCAL_ERROR);
        let full = SessionError::Storage(StorageError::NoSpace);
        for phase in [Phase::Command, Phase::Transfer] {
            assert_eq!(reply_for(&full, phase).code, ReplyCode::EXCEEDED_STORAGE);
        }
        let exists = SessionError::Storage(StorageError::AlreadyExists);
        assert_eq!(reply_for(&exists, Phase::Command).lines[0], "File exists.");
        assert!(reply_for(&exists, Phase::Transfer).lines[0].starts_with("Not stored"));
        // Client mistakes the filesystem reports: their own codes and
        // words, never "Local error".
        let long = SessionError::Storage(StorageError::NameTooLong);
        let r = reply_for(&long, Phase::Command);
        assert_eq!(r.code, ReplyCode::BAD_FILE_NAME);
        assert!(r.lines[0].contains("too long"), "{r:?}");
        let into = SessionError::Storage(StorageError::IntoItself);
        let r = reply_for(&into, Phase::Command);
        assert_eq!(r.code, ReplyCode::FILE_UNAVAILABLE);
        assert!(r.lines[0].contains("into itself"), "{r:?}");
        let reuse = SessionError::DataTls(TlsError::NoReuse);
        assert_eq!(
            reply_for(&reuse, Phase::Transfer).code,
            ReplyCode::PROTOCOL_NOT_SUPPORTED
        );
    }

    /// The login, refusal, data-setup and closing errors: their codes,
    /// their words, and which of them end the session.
    #[test]
    fn login_errors_and_which_close() {
        let cases: [(SessionError, u16, &str, bool); 16] = [
            (
                SessionError::AlreadyLoggedIn,
                530,
                "Can't change to another user.",
                false,
            ),
            (
                SessionError::TlsRequired,
                530,
                "TLS required: send AUTH TLS before logging in.",
                false,
            ),
            (SessionError::LoginIncorrect, 530, "Login incorrect.", false),
            (
                SessionError::HomeUnavailable,
                530,
                "Login failed: home directory unavailable.",
                false,
            ),
            (
                SessionError::LoginBanned(60),
                421,
                "Login incorrect. Too many failed logins: banned for 60 s.",
                true,
            ),
            (
                SessionError::TooManySessions(2),
                421,
                "Too many sessions of this user (2); try again later.",
                true,
            ),
            (
                SessionError::LoginBackend,
                421,
                "Login service unavailable, try again later.",
                true,
            ),
            (
                SessionError::NoPassivePort,
                425,
                "No free passive port; try again later.",
                false,
            ),
            (
                SessionError::NoUniqueName,
                550,
                "Could not find a unique file name.",
                false,
            ),
            (
                SessionError::DataNotArmed,
                425,
                "Use PORT, EPRT, PASV or EPSV first.",
                false,
            ),
            (
                SessionError::DataTlsRequired,
                521,
                "Data connections must be encrypted: send PBSZ 0 and PROT P.",
                false,
            ),
            (
                SessionError::LoginTimeout,
                421,
                "Timeout: login took too long, closing control connection.",
                true,
            ),
            (
                SessionError::IdleTimeout,
                421,
                "Timeout: no command for too long, closing control connection.",
                true,
            ),
            (
                SessionError::ShuttingDown,
                421,
                "Server shutting down, closing control connection.",
                true,
            ),
            (
                SessionError::Kicked,
                421,
                "Session closed by the administrator, closing control connection.",
                true,
            ),
            (
                SessionError::Internal,
                421,
                "Internal server error, closing control connection.",
                true,
            ),
        ];
        for (e, code, text, closes) in cases {
            let r = reply_for(&e, Phase::Command);
            assert_eq!(
                (r.code.0, r.lines[0].as_str(), e.closes()),
                (code, text, closes),
                "{e:?}"
            );
        }
    }

    /// A refusal at accept and the same refusal at USER: one reply.
    #[test]
    fn refusals_at_accept() {
        for refusal in [
            Refusal::Denied,
            Refusal::Banned(5),
            Refusal::ServerFull(3),
            Refusal::IpFull(2),
        ] {
            let r = refusal_reply(refusal.clone());
            assert_eq!(r.code, ReplyCode::NOT_AVAILABLE);
            assert_eq!(r.lines[0], refusal.to_string());
            assert!(SessionError::Refused(refusal).closes());
        }
    }
}
