//! The PAM helper: `portcullis pam-helper`, a hidden subcommand that the
//! server starts (as root, before it drops its privileges) when
//! `auth.order` names "pam". pam_unix can check another account's password
//! only as root (it reads /etc/shadow), and the server itself no longer
//! is; so this small process stays root and does nothing but answer the
//! questions of [`super::protocol`] read from its standard input (one end
//! of a socket pair), on its standard output.
//!
//! A bounded number of worker threads (`auth.pam.workers`) run the
//! lookups and PAM checks, so that the seconds pam_unix waits after each
//! failure hold up only one login. It exits when the server's end closes
//! (the server exited) or on a malformed request.

use std::ffi::{OsStr, OsString};
use std::io::{BufRead, Read, Write};
use std::process::ExitCode;
use std::sync::{mpsc, Arc, Mutex};

use nonstick::{AuthnFlags, ConversationAdapter, ErrorCode, Transaction, TransactionBuilder};

use super::protocol::{Answer, Ask, Entry, Outcome, Request, MAX_LINE};

/// Questions waiting for a worker; the server keeps at most this many in
/// flight anyway (see `client.rs`).
const QUEUE: usize = 256;

/// Serve questions until standard input closes.
pub fn run(workers: usize) -> ExitCode {
    let (tx, rx) = mpsc::sync_channel::<Request>(QUEUE);
    let rx = Arc::new(Mutex::new(rx));
    let out = Arc::new(Mutex::new(std::io::stdout()));
    for _ in 0..workers.clamp(1, crate::options::MAX_WORKERS) {
        let rx = rx.clone();
        let out = out.clone();
        std::thread::spawn(move || loop {
            let next = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
            let Ok(request) = next else { return };
            let answer = Answer {
                id: request.id,
                outcome: answer(request.ask),
            };
            let mut line = serde_json::to_string(&answer).unwrap_or_default();
            line.push('\n');
            let mut out = out.lock().unwrap_or_else(|p| p.into_inner());
            if out
                .write_all(line.as_bytes())
                .and_then(|()| out.flush())
                .is_err()
            {
                // The server is gone.
                std::process::exit(0);
            }
        });
    }
    let mut input = std::io::stdin().lock();
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut input)
            .take(MAX_LINE as u64 + 1)
            .read_until(b'\n', &mut line)
        {
            // The server closed its end: it has exited.
            Ok(0) => std::process::exit(0),
            Ok(_) if line.len() > MAX_LINE => {
                eprintln!("portcullis pam-helper: a request line longer than {MAX_LINE} bytes");
                return ExitCode::FAILURE;
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("portcullis pam-helper: reading requests: {e}");
                return ExitCode::FAILURE;
            }
        }
        let request: Request = match serde_json::from_slice(&line) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("portcullis pam-helper: a malformed request: {e}");
                return ExitCode::FAILURE;
            }
        };
        if tx.send(request).is_err() {
            return ExitCode::FAILURE;
        }
    }
}

/// Names and passwords PAM can take: C strings, so no NUL.
fn c_safe(s: &str) -> bool {
    !s.is_empty() && !s.contains('\0')
}

fn answer(ask: Ask) -> Outcome {
    match ask {
        Ask::Lookup { user } if c_safe(&user) => lookup(&user),
        Ask::Lookup { .. } => Outcome::Unknown,
        Ask::Check {
            service,
            user,
            password,
            rhost,
        } if c_safe(&service) && c_safe(&user) && c_safe(&password) && c_safe(&rhost) => {
            check(&service, &user, password, &rhost)
        }
        Ask::Check { .. } => Outcome::Invalid,
    }
}

/// getpwnam_r and getgrouplist, through NSS (so LDAP or sssd accounts
/// too, where the system is set up for them).
fn lookup(user: &str) -> Outcome {
    use nix::unistd::{getgrouplist, Group, User};
    let pw = match User::from_name(user) {
        Ok(Some(pw)) => pw,
        Ok(None) => return Outcome::Unknown,
        Err(e) => {
            return Outcome::Error {
                message: format!("getpwnam({user:?}): {e}"),
            }
        }
    };
    let name = match std::ffi::CString::new(user) {
        Ok(n) => n,
        Err(_) => return Outcome::Unknown,
    };
    let gids = match getgrouplist(&name, pw.gid) {
        Ok(g) => g,
        Err(e) => {
            return Outcome::Error {
                message: format!("getgrouplist({user:?}): {e}"),
            }
        }
    };
    let mut groups = Vec::new();
    for gid in gids {
        if let Ok(Some(g)) = Group::from_gid(gid) {
            groups.push(g.name);
        }
    }
    Outcome::Found(Entry {
        uid: pw.uid.as_raw(),
        gid: pw.gid.as_raw(),
        home: pw.dir.to_string_lossy().into_owned(),
        shell: pw.shell.to_string_lossy().into_owned(),
        groups,
    })
}

/// Answers PAM's prompts: the name for the visible one, the password for
/// the masked one; messages are kept for the log.
struct Conversation {
    user: String,
    password: String,
    messages: Mutex<Vec<String>>,
}

impl ConversationAdapter for Conversation {
    fn prompt(&self, _request: impl AsRef<OsStr>) -> nonstick::Result<OsString> {
        Ok(OsString::from(&self.user))
    }

    fn masked_prompt(&self, _request: impl AsRef<OsStr>) -> nonstick::Result<OsString> {
        Ok(OsString::from(&self.password))
    }

    fn error_msg(&self, message: impl AsRef<OsStr>) {
        self.note(message.as_ref());
    }

    fn info_msg(&self, message: impl AsRef<OsStr>) {
        self.note(message.as_ref());
    }
}

impl Conversation {
    fn note(&self, m: &OsStr) {
        let mut messages = self.messages.lock().unwrap_or_else(|p| p.into_inner());
        if messages.len() < 8 {
            messages.push(m.to_string_lossy().into_owned());
        }
    }
}

fn check(service: &str, user: &str, password: String, rhost: &str) -> Outcome {
    let conversation = Arc::new(Conversation {
        user: user.to_owned(),
        password,
        messages: Mutex::new(Vec::new()),
    });
    let mut txn = match TransactionBuilder::new_with_service(service)
        .username(user)
        .build(Shared(conversation.clone()).into_conversation())
    {
        Ok(t) => t,
        Err(e) => {
            return Outcome::Error {
                message: format!("pam_start({service:?}): {e}"),
            }
        }
    };
    // As vsftpd sets them: where the login comes from, and "ftp" as its
    // terminal (pam_access and pam_time rules can name both).
    {
        use nonstick::items::ItemsMut;
        use nonstick::PamShared;
        let mut items = txn.items_mut();
        let set = items
            .set_remote_host(Some(OsStr::new(rhost)))
            .and_then(|()| items.set_tty_name(Some(OsStr::new("ftp"))));
        if let Err(e) = set {
            return Outcome::Error {
                message: format!("pam_set_item: {e}"),
            };
        }
    }
    let said = || {
        conversation
            .messages
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .join("; ")
    };
    match txn.authenticate(AuthnFlags::empty()) {
        Ok(()) => {}
        Err(
            ErrorCode::AuthenticationError
            | ErrorCode::UserUnknown
            | ErrorCode::CredentialsInsufficient
            | ErrorCode::MaxTries
            | ErrorCode::PermissionDenied,
        ) => return Outcome::Invalid,
        Err(e) => {
            return Outcome::Error {
                message: format!("pam_authenticate: {e} {}", said()),
            }
        }
    }
    match txn.account_management(AuthnFlags::empty()) {
        Ok(()) => Outcome::Valid,
        Err(
            e @ (ErrorCode::AccountExpired
            | ErrorCode::AuthenticationError
            | ErrorCode::PermissionDenied
            | ErrorCode::NewAuthTokRequired
            | ErrorCode::UserUnknown),
        ) => Outcome::Refused {
            reason: format!("pam_acct_mgmt: {e} {}", said()).trim().to_owned(),
        },
        Err(e) => Outcome::Error {
            message: format!("pam_acct_mgmt: {e} {}", said()),
        },
    }
}

/// The conversation shared with [`check`], which reads its messages after.
struct Shared(Arc<Conversation>);

impl ConversationAdapter for Shared {
    fn prompt(&self, request: impl AsRef<OsStr>) -> nonstick::Result<OsString> {
        self.0.prompt(request)
    }

    fn masked_prompt(&self, request: impl AsRef<OsStr>) -> nonstick::Result<OsString> {
        self.0.masked_prompt(request)
    }

    fn error_msg(&self, message: impl AsRef<OsStr>) {
        self.0.error_msg(message)
    }

    fn info_msg(&self, message: impl AsRef<OsStr>) {
        self.0.info_msg(message)
    }
}
