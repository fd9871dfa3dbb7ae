//! Data connection set-up: TYPE, and PORT, EPRT, PASV, EPSV (RFC 959, RFC
//! 2428) with the checks that keep them safe (no FTP bounce, RFC 2577; the
//! passive port range; EPSV ALL). What they arm, the next transfer command
//! uses (`transfer.rs`).

use std::net::SocketAddr;

use portcullis_proto::command::{EpsvArg, TransferType};
use portcullis_proto::reply::{Reply, ReplyCode};

use super::error::SessionError;
use super::Core;
use crate::data::{active, DataSetup};

impl Core {
    pub(super) fn set_type(&mut self, t: TransferType) -> Reply {
        self.transfer_type = t;
        match t {
            TransferType::Ascii => Reply::new(ReplyCode::OK, "Switching to ASCII mode."),
            TransferType::Image => Reply::new(ReplyCode::OK, "Switching to Binary mode."),
        }
    }

    /// PORT and EPRT: remember where to connect, after the bounce checks.
    pub(super) fn port(&mut self, target: SocketAddr, verb: &str) -> Reply {
        let o = &self.shared.options.active;
        if !o.enabled {
            return Reply::new(
                ReplyCode::NOT_IMPLEMENTED,
                format!(
                    "{verb} refused: active mode is disabled on this server; use PASV or EPSV."
                ),
            );
        }
        if self.epsv_all {
            return Reply::new(
                ReplyCode::BAD_SEQUENCE,
                format!("{verb} refused after EPSV ALL."),
            );
        }
        if target.ip().to_canonical().is_ipv4() != self.ends.peer_ip.is_ipv4() {
            let proto = if self.ends.peer_ip.is_ipv4() { 1 } else { 2 };
            return Reply::new(
                ReplyCode::PROTOCOL_NOT_SUPPORTED,
                format!("Network protocol not supported, use ({proto})."),
            );
        }
        if !active::target_allowed(target, self.ends.peer_ip) {
            tracing::warn!(peer = %self.ends.peer_ip, target = %target, "refused {verb}: bounce attempt or privileged port");
            return Reply::new(
                ReplyCode::BAD_ARGUMENT,
                format!(
                    "{verb} refused: the data address must be your own ({}) and the port 1024 or above.",
                    self.ends.peer_ip
                ),
            );
        }
        self.data = DataSetup::Active(SocketAddr::new(target.ip().to_canonical(), target.port()));
        let from = match o.source_port {
            0 => "any port".to_owned(),
            p => format!("port {p} (any port if {p} cannot be bound)"),
        };
        Reply::new(
            ReplyCode::OK,
            format!("{verb} command successful; will connect to {target} from {from}."),
        )
    }

    /// PASV (RFC 959): IPv4 only.
    pub(super) async fn pasv(&mut self) -> Result<Reply, SessionError> {
        if let Err(r) = self.passive_allowed("PASV") {
            return Ok(r);
        }
        let Some(advertised) = self
            .shared
            .advertiser
            .for_client(self.ends.peer_ip, self.ends.public_ip)
        else {
            return Ok(Reply::new(
                ReplyCode::PROTOCOL_NOT_SUPPORTED,
                "PASV is IPv4-only (RFC 2428); use EPSV on this IPv6 connection.",
            ));
        };
        let port = self.bind_passive().await?;
        let [a, b, c, d] = advertised.octets();
        Ok(Reply::new(
            ReplyCode::PASSIVE,
            format!(
                "Entering Passive Mode ({a},{b},{c},{d},{},{}).",
                port >> 8,
                port & 0xff
            ),
        ))
    }

    /// EPSV (RFC 2428 section 3): only the port, so NAT cannot garble it.
    pub(super) async fn epsv(&mut self, arg: EpsvArg) -> Result<Reply, SessionError> {
        if let Err(r) = self.passive_allowed("EPSV") {
            return Ok(r);
        }
        let ours = if self.ends.public_ip.is_ipv4() { 1 } else { 2 };
        match arg {
            EpsvArg::All => {
                self.epsv_all = true;
                return Ok(Reply::new(
                    ReplyCode::OK,
                    "EPSV ALL ok; only EPSV from now on.",
                ));
            }
            EpsvArg::Protocol(p) if p != ours => {
                return Ok(Reply::new(
                    ReplyCode::PROTOCOL_NOT_SUPPORTED,
                    format!("Network protocol not supported, use ({ours})."),
                ))
            }
            _ => {}
        }
        let port = self.bind_passive().await?;
        Ok(Reply::new(
            ReplyCode::EXTENDED_PASSIVE,
            format!("Entering Extended Passive Mode (|||{port}|)."),
        ))
    }

    fn passive_allowed(&self, verb: &str) -> Result<(), Reply> {
        if !self.shared.options.passive.enabled {
            return Err(Reply::new(
                ReplyCode::NOT_IMPLEMENTED,
                format!(
                    "{verb} refused: passive mode is disabled on this server; use PORT or EPRT."
                ),
            ));
        }
        if self.epsv_all && verb != "EPSV" {
            return Err(Reply::new(
                ReplyCode::BAD_SEQUENCE,
                format!("{verb} refused after EPSV ALL."),
            ));
        }
        Ok(())
    }

    async fn bind_passive(&mut self) -> Result<u16, SessionError> {
        // Drop an earlier unused listener first, so its port can be reused.
        self.data = DataSetup::None;
        let without_header =
            (self.shared.options.proxy.as_ref()).is_some_and(|p| p.data_without_header);
        if self.ends.client_unknown() && !without_header {
            // Its data connection could come from any client of the
            // balancer (crate::data::guard): refused now rather than at
            // the accept.
            return Err(SessionError::PassiveClientUnknown);
        }
        if let Some(single) = &self.shared.single_port {
            let o = &self.shared.options.passive;
            let ticket = single
                .reserve(self.ends.peer_ip, o.accept_timeout, o.single_port_wait)
                .await
                .ok_or(SessionError::SinglePortBusy)?;
            self.data = DataSetup::Single(ticket);
            return Ok(single.port());
        }
        let (listener, port) = self.shared.ports.bind(self.ends.bind_ip).ok_or_else(|| {
            self.shared
                .events
                .emit(crate::events::Event::PassivePortsExhausted);
            SessionError::NoPassivePort
        })?;
        self.data = DataSetup::Passive(listener);
        Ok(port)
    }
}
