//! Login family: USER, PASS, QUIT (RFC 959 section 4.1.1). A refused
//! login is a [`SessionError`]: its code, and whether the session ends
//! with it, are chosen in `error.rs`.

use portcullis_proto::path::VirtualPath;
use portcullis_proto::reply::{Reply, ReplyCode};
use portcullis_proto::session::Login;

use super::error::SessionError;
use super::{Core, Step, UserCtx};
use crate::auth::{Attempt, AuthError, BeforePassword, Decider, Denied, Why};
use crate::events::{Event, LoginFailure};

impl Core {
    pub(super) fn user(&mut self, name: String) -> Result<Reply, SessionError> {
        if matches!(self.login, Login::LoggedIn(_)) {
            return Err(SessionError::AlreadyLoggedIn);
        }
        if let Some(left) = self.shared.guard.banned(self.ends.peer_ip) {
            // Banned by another session's failures meanwhile.
            let secs = left.as_secs().max(1);
            return Err(SessionError::Refused(crate::limits::Refusal::Banned(secs)));
        }
        let BeforePassword {
            anonymous,
            tls_required,
        } = self.shared.auth.before_password(&name);
        if !self.security.is_tls() && tls_required {
            // Refused before PASS, so the password is never sent in clear.
            self.login = Login::Start;
            return Err(SessionError::TlsRequired);
        }
        let text = if anonymous {
            "Anonymous login okay, send your e-mail address as password."
        } else {
            // Same reply for known and unknown users: nothing to enumerate.
            "Please specify the password."
        };
        self.login = Login::NeedPassword { user: name };
        Ok(Reply::new(ReplyCode::NEED_PASSWORD, text))
    }

    pub(super) async fn pass(&mut self, password: String) -> Result<Reply, SessionError> {
        let Login::NeedPassword { user } = std::mem::take(&mut self.login) else {
            // seq::check lets PASS through only in NeedPassword.
            return Err(SessionError::PassWithoutUser);
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
            client_cert: self.security.client_cert(),
        };
        let result = self.shared.auth.authenticate(&attempt).await;
        // What the account's tls_client_cert says of the certificate.
        let cert = match &result {
            Ok(account) => self.cert_check(account),
            Err(_) => Ok(None),
        };
        let authenticated = match result {
            Ok(account) if !account.policy.networks.permits(self.ends.peer_ip) => {
                Err((LoginFailure::Network, None::<String>))
            }
            Ok(_) if cert.is_err() => {
                // A required certificate missing, or another account's:
                // refused as a wrong password is (530, counted, delayed).
                Err((LoginFailure::ClientCert, cert.clone().err()))
            }
            Ok(account) if account.policy.control_tls_required && !self.security.is_tls() => {
                // A back end that could not tell before the password.
                self.login_failed(&user, LoginFailure::TlsRequired, None);
                return Err(SessionError::TlsRequired);
            }
            Ok(account) => match self
                .shared
                .guard
                .take_account(&account.name, account.policy.max_sessions)
                .await
            {
                Some(slot) => Ok((account, slot)),
                None => {
                    // As a full server: not the password's fault, no ban
                    // count, no delay.
                    let max = account.policy.max_sessions;
                    self.login_failed(&user, LoginFailure::TooManySessions, None);
                    return Err(SessionError::TooManySessions(max));
                }
            },
            Err(AuthError::Backend(msg)) => {
                // Not the client's fault: no ban count, no delay, and a
                // code that tells it to try again later (RFC 959 421).
                self.login_failed(&user, LoginFailure::Backend, Some(&msg));
                return Err(SessionError::LoginBackend);
            }
            Err(AuthError::Invalid(denied)) => Err((LoginFailure::Credentials(denied), None)),
            // The chain answers `Invalid` for a name nobody knows; this
            // only guards a back end used on its own.
            Err(AuthError::Unknown) => Err((
                LoginFailure::Credentials(Denied::new(Decider::None, Why::UnknownUser)),
                None,
            )),
        };
        match authenticated {
            Ok((account, slot)) => match self.shared.storage.open(&account.root) {
                Ok(storage) => {
                    tracing::Span::current().record("user", account.name.as_str());
                    self.emit(Event::LoggedIn {
                        user: &account.name,
                        anonymous: account.anonymous,
                        client_cert: cert.ok().flatten().as_deref(),
                    });
                    self.cwd = VirtualPath::root();
                    // Its siblings' data connections may now resume its TLS
                    // sessions, and its own theirs (see crate::tls).
                    if let Some(configs) = self.security.configs() {
                        configs.store.logged_in(&account.name);
                    }
                    // An object store's paths are named by their URL too.
                    self.origin.object_root = account
                        .root
                        .local()
                        .is_none()
                        .then(|| account.root.to_string().into());
                    let quota = self.shared.quotas.attach(
                        &account.root,
                        &storage,
                        &account.name,
                        account.policy.quota,
                    );
                    self.login = Login::LoggedIn(UserCtx {
                        account,
                        storage,
                        quota,
                        _slot: slot,
                    });
                    Ok(Reply::new(ReplyCode::LOGGED_IN, "Login successful."))
                }
                Err(e) => {
                    let detail = format!("{}: {e}", account.root);
                    self.login_failed(&user, LoginFailure::Home, Some(&detail));
                    Err(SessionError::HomeUnavailable)
                }
            },
            Err((reason, detail)) => {
                self.login_failed(&user, reason, detail.as_deref());
                if let Some(ban) = self.shared.guard.login_failed(self.ends.peer_ip).await {
                    self.emit(Event::Banned {
                        ip: self.ends.peer_ip,
                        secs: ban.as_secs(),
                    });
                    return Err(SessionError::LoginBanned(ban.as_secs()));
                }
                // The delay slows down password guessing; the reply is the same
                // whether or not the user exists.
                tokio::time::sleep_until(fail_at).await;
                Err(SessionError::LoginIncorrect)
            }
        }
    }

    /// The account's `tls_client_cert` and this control connection's
    /// certificate: `Ok(Some(fingerprint))` when it belongs to the account,
    /// `Ok(None)` when certificates do not decide, `Err(why)` (with the
    /// certificate's names, for the log) when the login is refused.
    fn cert_check(&self, account: &crate::auth::Account) -> Result<Option<String>, String> {
        use crate::auth::cert::{verdict, CertVerdict};
        let cert = self.security.client_cert();
        match (
            verdict(&account.policy.client_cert, &account.name, cert),
            cert,
        ) {
            (CertVerdict::Belongs, Some(c)) => Ok(Some(c.fingerprint())),
            (CertVerdict::NotUsed | CertVerdict::Belongs, _) => Ok(None),
            (v, Some(c)) => Err(format!(
                "{} (subject CN {:?}, e-mail {:?}, SHA-256 {})",
                v.refusal().unwrap_or_default(),
                c.cn.as_deref().unwrap_or(""),
                c.emails,
                c.fingerprint()
            )),
            (v, None) => Err(v.refusal().unwrap_or_default().to_owned()),
        }
    }

    fn login_failed(&self, user: &str, reason: LoginFailure, detail: Option<&str>) {
        self.emit(Event::LoginFailed {
            user,
            peer: self.ends.peer,
            reason,
            detail,
        });
    }

    /// QUIT: the step itself says that the connection closes.
    pub(super) fn quit(&self) -> Step {
        Step::Close(Reply::new(ReplyCode::CLOSING, "Goodbye."))
    }
}
