//! AUTH, PBSZ, PROT and CCC (RFC 4217), and the control connection with
//! its TLS stage ([`Channel`]).

use std::sync::Arc;

use crate::tls::SessionConfigs;
use portcullis_proto::command::{AuthMechanism, ProtLevel};
use portcullis_proto::reply::{Reply, ReplyCode};
use portcullis_proto::session::Login;
use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Session;

type Tcp = tokio::net::TcpStream;
type TlsTcp = Box<tokio_rustls::server::TlsStream<Tcp>>;

/// The control connection and where it is with TLS, as one value: the
/// stream is plain exactly where the stage says so. The configuration is
/// this session's own (see [`crate::tls`]): its data connections handshake
/// with it so that they can resume the control connection's TLS session.
/// Stage changes that need I/O (the handshake after AUTH, the shutdown
/// after CCC) are made by the read loop (`driver.rs`) once the reply that
/// announced them has been sent.
#[derive(Debug)]
pub enum Channel {
    /// Plain text.
    Plain(Tcp),
    /// AUTH was answered with 234; the handshake comes next. Whatever the
    /// client sent after AUTH in plain text is discarded, never run
    /// (CVE-2011-1575).
    Upgrading(Tcp, SessionConfigs),
    /// The control connection is TLS.
    Tls {
        stream: TlsTcp,
        config: SessionConfigs,
        /// PBSZ was sent (RFC 4217 section 9: it must precede PROT).
        pbsz: bool,
        prot: ProtLevel,
    },
    /// CCC was answered with 200: the TLS layer of the control connection
    /// is shut down next (`tls.allow_ccc`).
    Clearing {
        stream: TlsTcp,
        config: SessionConfigs,
        prot: ProtLevel,
    },
    /// After CCC: the control connection is plain text again (so that NAT
    /// and firewall helpers can read PORT/PASV); data connections keep the
    /// protection PROT chose.
    Cleared {
        stream: Tcp,
        config: SessionConfigs,
        prot: ProtLevel,
    },
    /// Gone: a handshake or CCC's shutdown failed. The session ends.
    Closed,
}

impl Channel {
    /// Implicit TLS: the handshake happened at connect. Data connections are
    /// protected from the start, as implicit-FTPS clients expect.
    pub fn implicit(stream: TlsTcp, config: SessionConfigs) -> Self {
        Channel::Tls {
            stream,
            config,
            pbsz: true,
            prot: ProtLevel::Private,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Channel::Tls { .. })
    }

    /// This session's TLS configurations, once TLS has been set up.
    pub fn configs(&self) -> Option<&SessionConfigs> {
        match self {
            Channel::Plain(_) | Channel::Closed => None,
            Channel::Upgrading(_, config)
            | Channel::Tls { config, .. }
            | Channel::Clearing { config, .. }
            | Channel::Cleared { config, .. } => Some(config),
        }
    }

    /// The configuration for a data connection under PROT P (`upload`:
    /// the client sends), if PROT P is on.
    pub fn data_config(&self, upload: bool) -> Option<Arc<ServerConfig>> {
        match self {
            Channel::Tls {
                config,
                prot: ProtLevel::Private,
                ..
            }
            | Channel::Cleared {
                config,
                prot: ProtLevel::Private,
                ..
            } => Some(if upload {
                config.upload.clone()
            } else {
                config.download.clone()
            }),
            _ => None,
        }
    }

    pub(super) async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Channel::Plain(s) | Channel::Upgrading(s, _) | Channel::Cleared { stream: s, .. } => {
                s.read(buf).await
            }
            Channel::Tls { stream, .. } | Channel::Clearing { stream, .. } => {
                stream.read(buf).await
            }
            Channel::Closed => Ok(0),
        }
    }

    pub(super) async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Channel::Plain(s) | Channel::Upgrading(s, _) | Channel::Cleared { stream: s, .. } => {
                s.write_all(bytes).await
            }
            Channel::Tls { stream, .. } | Channel::Clearing { stream, .. } => {
                stream.write_all(bytes).await
            }
            Channel::Closed => Err(std::io::ErrorKind::NotConnected.into()),
        }
    }

    pub(super) async fn shutdown(&mut self) {
        let _ = match self {
            Channel::Plain(s) | Channel::Upgrading(s, _) | Channel::Cleared { stream: s, .. } => {
                s.shutdown().await
            }
            Channel::Tls { stream, .. } | Channel::Clearing { stream, .. } => {
                stream.shutdown().await
            }
            Channel::Closed => Ok(()),
        };
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
        match self.channel {
            Channel::Plain(_) => {}
            Channel::Cleared { .. } => {
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
        let config = tls.session_configs(self.ends.peer_ip);
        if let Channel::Plain(tcp) = std::mem::replace(&mut self.channel, Channel::Closed) {
            self.channel = Channel::Upgrading(tcp, config);
        }
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
        match &mut self.channel {
            Channel::Tls { pbsz, .. } => {
                *pbsz = true;
                Reply::new(ReplyCode::OK, "PBSZ=0")
            }
            _ => Reply::new(ReplyCode::BAD_SEQUENCE, "PBSZ needs AUTH TLS first."),
        }
    }

    /// PROT C / PROT P (RFC 4217 section 9).
    pub(super) fn prot(&mut self, level: ProtLevel) -> Reply {
        let required = self.data_tls_required();
        match &mut self.channel {
            Channel::Tls { pbsz: false, .. } => {
                Reply::new(ReplyCode::BAD_SEQUENCE, "PBSZ must come before PROT.")
            }
            Channel::Tls { prot, .. } => {
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
        match &self.channel {
            Channel::Tls { .. } if allowed => {}
            Channel::Tls { .. } => {
                return Reply::new(
                    ReplyCode::POLICY_DENIED,
                    "CCC refused: the control connection stays encrypted.",
                )
            }
            _ => {
                return Reply::new(
                    ReplyCode::NEEDS_PROTECTION,
                    "The control connection is not protected.",
                )
            }
        }
        if let Channel::Tls {
            stream,
            config,
            prot,
            ..
        } = std::mem::replace(&mut self.channel, Channel::Closed)
        {
            self.channel = Channel::Clearing {
                stream,
                config,
                prot,
            };
        }
        Reply::new(
            ReplyCode::OK,
            "CCC successful: the control connection continues in plain text.",
        )
    }

    /// Does the logged-in user's policy require PROT P?
    pub(super) fn data_tls_required(&self) -> bool {
        match &self.login {
            Login::LoggedIn(u) => u.account.policy.data_tls_required,
            _ => false,
        }
    }
}
