//! What the server and the PAM helper say to each other over their socket
//! pair: one JSON object a line each way, answers matched to questions by
//! `id` (several are in flight at once, answered in the order the PAM
//! checks finish). Two questions only: what does the system know of this
//! name (what getpwnam and getgrouplist say, which any user may read), and
//! are this name and password valid for this PAM service now.

use serde::{Deserialize, Serialize};

/// The longest line either side accepts (a request carries a name and a
/// password of at most one FTP command line each, JSON-escaped).
pub const MAX_LINE: usize = 16 * 1024;

/// One question.
#[derive(Serialize, Deserialize)]
pub struct Request {
    pub id: u64,
    pub ask: Ask,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ask {
    /// The account's passwd entry and groups.
    Lookup { user: String },
    /// pam_authenticate, then pam_acct_mgmt, for `service`.
    Check {
        service: String,
        user: String,
        password: String,
        /// The client's address, PAM_RHOST for the modules (pam_access,
        /// the log lines of pam_unix).
        rhost: String,
    },
}

impl std::fmt::Debug for Ask {
    // Never the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ask::Lookup { user } => write!(f, "Lookup({user:?})"),
            Ask::Check { service, user, .. } => write!(f, "Check({service:?}, {user:?})"),
        }
    }
}

/// One answer.
#[derive(Debug, Serialize, Deserialize)]
pub struct Answer {
    pub id: u64,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Lookup: no such account.
    Unknown,
    /// Lookup: the account.
    Found(Entry),
    /// Check: the password is right and the account may log in.
    Valid,
    /// Check: wrong password (or PAM says the user is unknown).
    Invalid,
    /// Check: the password is right but pam_acct_mgmt refuses the account
    /// (expired, locked, a password that must be changed first).
    Refused { reason: String },
    /// PAM or the system failed (no such service, a module error): the
    /// login is answered 421.
    Error { message: String },
}

/// A passwd entry and the names of the account's groups (its primary
/// group among them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
    pub groups: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_never_show_the_password() {
        let r = Request {
            id: 7,
            ask: Ask::Check {
                service: "portcullis".into(),
                user: "alice".into(),
                password: "pa\"ss\nword".into(),
                rhost: "192.0.2.7".into(),
            },
        };
        let line = serde_json::to_string(&r).unwrap();
        assert!(!line.contains('\n'), "{line}");
        let back: Request = serde_json::from_str(&line).unwrap();
        assert_eq!(back.id, 7);
        assert!(matches!(back.ask, Ask::Check { ref password, .. } if password == "pa\"ss\nword"));
        assert!(!format!("{:?}", back.ask).contains("pa\""));
        let a = Answer {
            id: 7,
            outcome: Outcome::Found(Entry {
                uid: 1000,
                gid: 1000,
                home: "/home/alice".into(),
                shell: "/bin/bash".into(),
                groups: vec!["alice".into(), "ftp".into()],
            }),
        };
        let back: Answer = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(back.outcome, a.outcome);
    }
}
