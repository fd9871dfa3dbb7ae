//! The session's sequencing rules, without a socket: which commands need a
//! login, and which need a particular previous command (RFC 959 section 5.4).
//! The server keeps a [`Login`] and asks [`check`] before running a command.

use crate::command::Command;
use crate::reply::{Reply, ReplyCode};

/// Where a control connection is in logging in. `A` is what the server keeps
/// about a logged-in user (account, storage), so that "logged in" and "has an
/// account" cannot disagree.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Login<A> {
    /// Nothing sent yet, or the last USER/PASS failed.
    #[default]
    Start,
    /// USER was accepted; PASS must come next.
    NeedPassword { user: String },
    /// Logged in.
    LoggedIn(A),
}

/// True for commands that can run before login (the verb table says
/// which; STAT only without an argument, as a listing needs a user).
pub fn allowed_before_login(cmd: &Command) -> bool {
    !matches!(cmd, Command::Stat(Some(_)))
        && crate::verbs::lookup(cmd.verb()).is_some_and(|v| v.before_login)
}

/// Decide whether `cmd` may run now. `Err` carries the reply to send instead
/// (530 before login, 503 for PASS without USER).
pub fn check<A>(login: &Login<A>, cmd: &Command) -> Result<(), Reply> {
    match (login, cmd) {
        (Login::LoggedIn(_), Command::Pass(_)) => {
            Err(Reply::new(ReplyCode::BAD_SEQUENCE, "Already logged in."))
        }
        (Login::Start, Command::Pass(_)) => Err(Reply::new(
            ReplyCode::BAD_SEQUENCE,
            "Login with USER first.",
        )),
        (Login::LoggedIn(_), _) => Ok(()),
        (_, c) if allowed_before_login(c) => Ok(()),
        _ => Err(Reply::new(
            ReplyCode::NOT_LOGGED_IN,
            "Please login with USER and PASS.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequencing() {
        let start: Login<()> = Login::Start;
        assert_eq!(
            check(&start, &Command::Pass("x".into())).unwrap_err().code,
            ReplyCode::BAD_SEQUENCE
        );
        assert_eq!(
            check(&start, &Command::Retr("x".into())).unwrap_err().code,
            ReplyCode::NOT_LOGGED_IN
        );
        assert_eq!(
            check(&start, &Command::Stat(Some("x".into())))
                .unwrap_err()
                .code,
            ReplyCode::NOT_LOGGED_IN
        );
        assert!(check(&start, &Command::Feat).is_ok());
        assert!(check(&start, &Command::Stat(None)).is_ok());
        let need: Login<()> = Login::NeedPassword { user: "a".into() };
        assert!(check(&need, &Command::Pass("x".into())).is_ok());
        assert_eq!(
            check(&need, &Command::Pwd).unwrap_err().code,
            ReplyCode::NOT_LOGGED_IN
        );
        assert!(check(&Login::LoggedIn(()), &Command::Pwd).is_ok());
        assert_eq!(
            check(&Login::LoggedIn(()), &Command::Pass("x".into()))
                .unwrap_err()
                .code,
            ReplyCode::BAD_SEQUENCE
        );
    }
}
