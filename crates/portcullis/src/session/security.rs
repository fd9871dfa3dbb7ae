//! AUTH, PBSZ, PROT and CCC (RFC 4217), and where the control connection
//! is with TLS ([`Security`]).

use std::sync::Arc;

use crate::tls::{ClientIdentity, SessionConfigs};
use portcullis_proto::command::{AuthMechanism, ProtLevel};
use portcullis_proto::reply::{Reply, ReplyCode};
use portcullis_proto::session::Login;

use super::{Core, Step};

/// Where the control connection is with TLS, and what PBSZ and PROT set.
/// The configuration is this session's own (see [`crate::tls`]): its data
/// connections handshake with it so that they can resume the control
/// connection's TLS session. The core moves to `Tls` when it answers AUTH
/// and to `Cleared` when it answers CCC; the driver makes the handshake or
/// the shutdown ([`Step::StartTls`], [`Step::EndTls`]) before it reads
/// anything else, so the stream is never behind the stage a command sees.
#[derive(Debug)]
pub(crate) enum Security {
    /// Plain text.
    Plain,
    /// The control connection is TLS.
    Tls {
        config: SessionConfigs,
        /// PBSZ was sent (RFC 4217 section 9: it must precede PROT).
        pbsz: bool,
        prot: ProtLevel,
        /// The certificate the client presented in the handshake, verified
        /// (`[tls.client_auth]`); set by the driver once the handshake is done.
        client_cert: Option<Arc<ClientIdentity>>,
    },
    /// After CCC (`tls.allow_ccc`): the control connection is plain text
    /// again (so that NAT and firewall helpers can read PORT/PASV); data
    /// connections keep the protection PROT chose.
    Cleared {
        config: SessionConfigs,
        prot: ProtLevel,
        /// The certificate of the TLS session that CCC ended.
        client_cert: Option<Arc<ClientIdentity>>,
    },
}

impl Security {
    /// Implicit TLS: the handshake happened at connect. Data connections are
    /// protected from the start, as implicit-FTPS clients expect.
    pub(crate) fn implicit(
        config: SessionConfigs,
        client_cert: Option<Arc<ClientIdentity>>,
    ) -> Self {
        Security::Tls {
            config,
            pbsz: true,
            prot: ProtLevel::Private,
            client_cert,
        }
    }

    /// The client certificate of the control connection's TLS session.
    pub(crate) fn client_cert(&self) -> Option<&ClientIdentity> {
        match self {
            Security::Plain => None,
            Security::Tls { client_cert, .. } | Security::Cleared { client_cert, .. } => {
                client_cert.as_deref()
            }
        }
    }

    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, Security::Tls { .. })
    }

    /// This session's TLS configurations, once TLS has been set up.
    pub(crate) fn configs(&self) -> Option<&SessionConfigs> {
        match self {
            Security::Plain => None,
            Security::Tls { config, .. } | Security::Cleared { config, .. } => Some(config),
        }
    }

    /// The configuration for a data connection under PROT P (`upload`:
    /// the client sends), if PROT P is on.
    pub(crate) fn data_config(&self, upload: bool) -> Option<crate::tls::DataConfig> {
        match self {
            Security::Tls {
                config,
                prot: ProtLevel::Private,
                ..
            }
            | Security::Cleared {
                config,
                prot: ProtLevel::Private,
                ..
            } => Some(if upload {
                config.upload()
            } else {
                config.download()
            }),
            _ => None,
        }
    }

    /// STAT's line about the control and data connections.
    pub(super) fn describe(&self) -> &'static str {
        match self {
            Security::Tls {
                prot: ProtLevel::Private,
                ..
            } => " Control connection: TLS; data connections: TLS (PROT P)",
            Security::Tls { .. } => " Control connection: TLS; data connections: plain (PROT C)",
            Security::Cleared { .. } => " Control connection: plain text after CCC",
            Security::Plain => " Control connection: plain text",
        }
    }
}

impl Core {
    /// AUTH TLS / AUTH SSL (RFC 4217 section 4).
    pub(super) fn auth(&mut self, mech: AuthMechanism) -> Step {
        let Some(tls) = &self.shared.tls else {
            return Step::Reply(Reply::new(
                ReplyCode::NOT_IMPLEMENTED,
                "AUTH not available: TLS is not configured on this server.",
            ));
        };
        let refused = match self.security {
            Security::Plain if matches!(self.login, Login::LoggedIn(_)) => {
                Some("AUTH must come before login; reconnect and send AUTH TLS first.")
            }
            Security::Plain => None,
            Security::Cleared { .. } => {
                Some("The control connection was cleared with CCC; reconnect to use TLS again.")
            }
            Security::Tls { .. } => Some("Already using TLS."),
        };
        if let Some(text) = refused {
            return Step::Reply(Reply::new(ReplyCode::BAD_SEQUENCE, text));
        }
        // A USER sent before AUTH must be sent again inside TLS.
        self.login = Login::Start;
        let config = tls.session_configs(self.ends.peer_ip);
        let control = config.control();
        self.security = Security::Tls {
            config,
            pbsz: false,
            prot: ProtLevel::Clear,
            client_cert: None,
        };
        let name = match mech {
            AuthMechanism::Tls => "TLS",
            AuthMechanism::Ssl => "SSL",
        };
        Step::StartTls(
            Reply::new(
                ReplyCode::AUTH_OK,
                format!("AUTH {name} successful, starting TLS handshake."),
            ),
            control,
        )
    }

    /// The handshake that AUTH started is done: what it says of the
    /// client's certificate (none unless `[tls.client_auth]` asked).
    pub(crate) fn tls_established(&mut self, cert: Option<Arc<ClientIdentity>>) {
        if let Security::Tls { client_cert, .. } = &mut self.security {
            *client_cert = cert;
        }
    }

    /// PBSZ (RFC 4217 section 8): TLS has no buffer size; the answer is 0.
    pub(super) fn pbsz(&mut self, _size: u64) -> Reply {
        match &mut self.security {
            Security::Tls { pbsz, .. } => {
                *pbsz = true;
                Reply::new(ReplyCode::OK, "PBSZ=0")
            }
            _ => Reply::new(ReplyCode::BAD_SEQUENCE, "PBSZ needs AUTH TLS first."),
        }
    }

    /// PROT C / PROT P (RFC 4217 section 9).
    pub(super) fn prot(&mut self, level: ProtLevel) -> Reply {
        let required = self.data_tls_required();
        match &mut self.security {
            Security::Tls { pbsz: false, .. } => {
                Reply::new(ReplyCode::BAD_SEQUENCE, "PBSZ must come before PROT.")
            }
            Security::Tls { prot, .. } => {
                if level == ProtLevel::Clear && required {
                    return Reply::new(
                        ReplyCode::POLICY_DENIED,
                        "Policy requires protected data connections: use PROT P.",
                    );
                }
                *prot = level;
                match level {
                    ProtLevel::Clear => Reply::new(ReplyCode::OK, "PROT now Clear."),
                    ProtLevel::Private => Reply::new(ReplyCode::OK, "PROT now Private."),
                }
            }
            _ => Reply::new(ReplyCode::BAD_SEQUENCE, "PROT needs AUTH TLS first."),
        }
    }

    /// CCC (RFC 4217 section 6). Refused unless `tls.allow_ccc`: a cleared
    /// control connection lets an on-path attacker read and inject commands.
    /// Allowed, it gives NAT and firewall helpers back the PORT/PASV replies.
    pub(super) fn ccc(&mut self) -> Step {
        let allowed = self
            .shared
            .tls
            .as_ref()
            .is_some_and(|t| t.options.allow_ccc);
        let security = std::mem::replace(&mut self.security, Security::Plain);
        let (security, refusal) = match security {
            Security::Tls {
                config,
                prot,
                client_cert,
                ..
            } if allowed => (
                Security::Cleared {
                    config,
                    prot,
                    client_cert,
                },
                None,
            ),
            s @ Security::Tls { .. } => (
                s,
                Some(Reply::new(
                    ReplyCode::POLICY_DENIED,
                    "CCC refused: the control connection stays encrypted.",
                )),
            ),
            s => (
                s,
                Some(Reply::new(
                    ReplyCode::NEEDS_PROTECTION,
                    "The control connection is not protected.",
                )),
            ),
        };
        self.security = security;
        match refusal {
            Some(r) => Step::Reply(r),
            None => Step::EndTls(Reply::new(
                ReplyCode::OK,
                "CCC successful: the control connection continues in plain text.",
            )),
        }
    }

    /// Does the logged-in user's policy require PROT P?
    pub(super) fn data_tls_required(&self) -> bool {
        match &self.login {
            Login::LoggedIn(u) => u.account.policy.data_tls_required,
            _ => false,
        }
    }
}
