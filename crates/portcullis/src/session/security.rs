//! AUTH, PBSZ, PROT and CCC (RFC 4217), and the session's TLS stage.

use std::sync::Arc;

use crate::tls::SessionConfigs;
use portcullis_proto::command::{AuthMechanism, ProtLevel};
use portcullis_proto::reply::{Reply, ReplyCode};
use portcullis_proto::session::Login;
use rustls::ServerConfig;

use super::Session;

/// Where the control connection is with TLS. The configuration is this
/// session's own (see [`crate::tls`]): its data connections handshake with it
/// so that they can resume the control connection's TLS session.
#[derive(Debug)]
pub enum Security {
    /// Plain text.
    Plain,
    /// AUTH was answered with 234; the handshake comes next. Whatever the
    /// client sent after AUTH in plain text is discarded, never run
    /// (CVE-2011-1575).
    Upgrading(SessionConfigs),
    /// The control connection is TLS.
    Tls {
        config: SessionConfigs,
        /// PBSZ was sent (RFC 4217 section 9: it must precede PROT).
        pbsz: bool,
        prot: ProtLevel,
    },
    /// CCC was answered with 200: the TLS layer of the control connection
    /// is shut down next (`tls.allow_ccc`).
    Clearing {
        config: SessionConfigs,
        prot: ProtLevel,
    },
    /// After CCC: the control connection is plain text again (so that NAT
    /// and firewall helpers can read PORT/PASV); data connections keep the
    /// protection PROT chose.
    Cleared {
        config: SessionConfigs,
        prot: ProtLevel,
    },
}

impl Security {
    /// Implicit TLS: the handshake happened at connect. Data connections are
    /// protected from the start, as implicit-FTPS clients expect.
    pub fn implicit(config: SessionConfigs) -> Self {
        Security::Tls {
            config,
            pbsz: true,
            prot: ProtLevel::Private,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Security::Tls { .. })
    }

    /// This session's TLS configurations, once TLS has been set up.
    pub fn configs(&self) -> Option<&SessionConfigs> {
        match self {
            Security::Plain => None,
            Security::Upgrading(config)
            | Security::Tls { config, .. }
            | Security::Clearing { config, .. }
            | Security::Cleared { config, .. } => Some(config),
        }
    }

    /// The configuration for a data connection under PROT P (`upload`:
    /// the client sends), if PROT P is on.
    pub fn data_config(&self, upload: bool) -> Option<Arc<ServerConfig>> {
        match self {
            Security::Tls {
                config,
                prot: ProtLevel::Private,
                ..
            }
            | Security::Cleared {
                config,
                prot: ProtLevel::Private,
            } => Some(if upload {
                config.upload.clone()
            } else {
                config.download.clone()
            }),
            _ => None,
        }
    }
}

impl Session {
    /// AUTH TLS / AUTH SSL (RFC 4217 section 4).
    pub(super) fn auth(&mut self, mech: AuthMechanism) -> Reply {
        let Some(tls) = &self.shared.tls else {
            return Reply::new(
                ReplyCode::NOT_IMPLEMENTED,
                "AUTH not available: TLS is not configured on this server.",
            );
        };
        match self.security {
            Security::Plain => {}
            Security::Cleared { .. } => {
                return Reply::new(
                    ReplyCode::BAD_SEQUENCE,
                    "The control connection was cleared with CCC; reconnect to use TLS again.",
                )
            }
            _ => return Reply::new(ReplyCode::BAD_SEQUENCE, "Already using TLS."),
        }
        if matches!(self.login, Login::LoggedIn(_)) {
            return Reply::new(
                ReplyCode::BAD_SEQUENCE,
                "AUTH must come before login; reconnect and send AUTH TLS first.",
            );
        }
        // A USER sent before AUTH must be sent again inside TLS.
        self.login = Login::Start;
        self.security = Security::Upgrading(tls.session_configs(self.ends.peer_ip));
        let name = match mech {
            AuthMechanism::Tls => "TLS",
            AuthMechanism::Ssl => "SSL",
        };
        Reply::new(
            ReplyCode::AUTH_OK,
            format!("AUTH {name} successful, starting TLS handshake."),
        )
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
    pub(super) fn ccc(&mut self) -> Reply {
        let allowed = self
            .shared
            .tls
            .as_ref()
            .is_some_and(|t| t.options.allow_ccc);
        match std::mem::replace(&mut self.security, Security::Plain) {
            Security::Tls { config, prot, .. } if allowed => {
                self.security = Security::Clearing { config, prot };
                Reply::new(
                    ReplyCode::OK,
                    "CCC successful: the control connection continues in plain text.",
                )
            }
            tls @ Security::Tls { .. } => {
                self.security = tls;
                Reply::new(
                    ReplyCode::POLICY_DENIED,
                    "CCC refused: the control connection stays encrypted.",
                )
            }
            other => {
                self.security = other;
                Reply::new(
                    ReplyCode::NEEDS_PROTECTION,
                    "The control connection is not protected.",
                )
            }
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
