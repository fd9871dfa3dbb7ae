//! Login family: USER, PASS, QUIT (RFC 959 section 4.1.1).

use portcullis_proto::path::VirtualPath;
use portcullis_proto::reply::{Reply, ReplyCode};
use portcullis_proto::session::Login;

use super::{Core, UserCtx};
use crate::auth::{Attempt, AuthError, BeforePassword};
use crate::events::{Event, LoginFailure};

impl Core {
    pub(super) fn user(&mut self, name: String) -> Reply {
        if matches!(self.login, Login::LoggedIn(_)) {
            return Reply::new(ReplyCode::NOT_LOGGED_IN, "Can't change to another user.");
        }
        if let Some(left) = self.shared.guard.banned(self.ends.peer_ip) {
            // Banned by another session's failures meanwhile.
            self.closing = true;
            return Reply::new(
                ReplyCode::NOT_AVAILABLE,
                crate::limits::Refusal::Banned(left.as_secs().max(1)).to_string(),
            );
        }
        let BeforePassword {
            anonymous,
            tls_required,
        } = self.shared.auth.before_password(&name);
        if !self.security.is_tls() && tls_required {
            // Refused before PASS, so the password is never sent in clear.
            self.login = Login::Start;
            return Reply::new(
                ReplyCode::NOT_LOGGED_IN,
                "TLS required: send AUTH TLS before logging in.",
            );
        }
        let text = if anonymous {
            "Anonymous login okay, send your e-mail address as password."
        } else {
            // Same reply for known and unknown users: nothing to enumerate.
            "Please specify the password."
        };
        self.login = Login::NeedPassword { user: name };
        Reply::new(ReplyCode::NEED_PASSWORD, text)
    }

    pub(super) async fn pass(&mut self, password: String) -> Reply {
        let Login::NeedPassword { user } = std::mem::take(&mut self.login) else {
            // seq::check lets PASS through only in NeedPassword.
            return Reply::new(ReplyCode::BAD_SEQUENCE, "Login with USER first.");
        };
        // A refusal is answered failed_login_delay after PASS came, however
        // long the back ends took to decide: an unknown name and a wrong
        // password then cost the same time (given a back end that answers
        // within the delay), whichever back end knew it or not.
        let fail_at = tokio::time::Instant::now() + self.shared.options.failed_login_delay;
        let attempt = Attempt {
            user: &user,
            password: &password,
            client_ip: self.ends.peer_ip,
            tls: self.security.is_tls(),
        };
        let authenticated = match self.shared.auth.authenticate(&attempt).await {
            Ok(account) if !account.policy.networks.permits(self.ends.peer_ip) => {
                Err((LoginFailure::Network, None::<String>))
            }
            Ok(account) if account.policy.control_tls_required && !self.security.is_tls() => {
                // A back end that could not tell before the password.
                self.login_failed(&user, LoginFailure::TlsRequired, None);
                return Reply::new(
                    ReplyCode::NOT_LOGGED_IN,
                    "TLS required: send AUTH TLS before logging in.",
                );
            }
            Ok(account) => match self
                .shared
                .guard
                .accounts
                .take(&account.name, account.policy.max_sessions)
            {
                Some(slot) => Ok((account, slot)),
                None => {
                    // As a full server: not the password's fault, no ban
                    // count, no delay.
                    let max = account.policy.max_sessions;
                    self.login_failed(&user, LoginFailure::TooManySessions, None);
                    self.closing = true;
                    return Reply::new(
                        ReplyCode::NOT_AVAILABLE,
                        format!("Too many sessions of this user ({max}); try again later."),
                    );
                }
            },
            Err(AuthError::Backend(msg)) => {
                // Not the client's fault: no ban count, no delay, and a
                // code that tells it to try again later (RFC 959 421).
                self.login_failed(&user, LoginFailure::Backend, Some(&msg));
                self.closing = true;
                return Reply::new(
                    ReplyCode::NOT_AVAILABLE,
                    "Login service unavailable, try again later.",
                );
            }
            Err(AuthError::Invalid | AuthError::Unknown) => Err((LoginFailure::Credentials, None)),
        };
        match authenticated {
            Ok((account, slot)) => match self.shared.storage.open(&account.root) {
                Ok(storage) => {
                    tracing::Span::current().record("user", account.name.as_str());
                    self.shared.events.emit(Event::LoggedIn {
                        user: &account.name,
                        anonymous: account.anonymous,
                    });
                    self.cwd = VirtualPath::root();
                    // Its siblings' data connections may now resume its TLS
                    // sessions, and its own theirs (see crate::tls).
                    if let Some(configs) = self.security.configs() {
                        configs.store.logged_in(&account.name);
                    }
                    self.login = Login::LoggedIn(UserCtx {
                        account,
                        storage,
                        _slot: slot,
                    });
                    Reply::new(ReplyCode::LOGGED_IN, "Login successful.")
                }
                Err(e) => {
                    let detail = format!("{}: {e}", account.root);
                    self.login_failed(&user, LoginFailure::Home, Some(&detail));
                    Reply::new(
                        ReplyCode::NOT_LOGGED_IN,
                        "Login failed: home directory unavailable.",
                    )
                }
            },
            Err((reason, detail)) => {
                self.login_failed(&user, reason, detail.as_deref());
                if let Some(ban) = self.shared.guard.login_failed(self.ends.peer_ip) {
                    self.shared.events.emit(Event::Banned {
                        ip: self.ends.peer_ip,
                        secs: ban.as_secs(),
                    });
                    self.closing = true;
                    return Reply::new(
                        ReplyCode::NOT_AVAILABLE,
                        format!(
                            "Login incorrect. Too many failed logins: banned for {} s.",
                            ban.as_secs()
                        ),
                    );
                }
                // The delay slows down password guessing; the reply is the same
                // whether or not the user exists.
                tokio::time::sleep_until(fail_at).await;
                Reply::new(ReplyCode::NOT_LOGGED_IN, "Login incorrect.")
            }
        }
    }

    fn login_failed(&self, user: &str, reason: LoginFailure, detail: Option<&str>) {
        self.shared.events.emit(Event::LoginFailed {
            user,
            peer: self.ends.peer,
            reason,
            detail,
        });
    }

    pub(super) fn quit(&mut self) -> Reply {
        self.closing = true;
        Reply::new(ReplyCode::CLOSING, "Goodbye.")
    }
}
