//! How a transfer command becomes a [`Transfer`]: the data connection armed
//! by PASV, EPSV, PORT or EPRT, the protection PROT chose, the account's
//! bandwidth and the record the transfer reports. The core decides all of
//! it; the driver sends the 150 and runs the transfer ([`super::job`]).

use std::time::Duration;

use portcullis_proto::reply::{Reply, ReplyCode};
use portcullis_proto::session::Login;

use super::error::{reply_for, Phase, SessionError};
use super::job::{DataOptions, DataTls, Job, JobInfo, Plan};
use super::Core;
use crate::data::{DataSetup, OpenParams};
use crate::events::Direction;

/// What a transfer command decided: a transfer to run, or a reply that
/// ends the command now.
pub(super) enum Started {
    Reply(Reply),
    Transfer(Box<Transfer>),
}

/// A transfer ready to run: the reply that opens it and its work.
pub(crate) struct Transfer {
    /// The 150 sent before the data moves.
    pub(super) opening: Reply,
    pub(super) plan: Plan,
}

impl Transfer {
    /// The client sends (STOR, STOU, APPE).
    pub(super) fn upload(&self) -> bool {
        matches!(self.plan.job, Job::Stor { .. })
    }

    pub(super) fn verb(&self) -> &'static str {
        self.plan.info.verb
    }

    /// The virtual path it moves.
    pub(super) fn path(&self) -> &str {
        &self.plan.info.path
    }
}

impl Core {
    /// Consume the armed data connection and make `job` a transfer that
    /// opens with a 150 saying `text`.
    pub(super) fn start(
        &mut self,
        job: Job,
        verb: &'static str,
        path: String,
        text: &str,
    ) -> Started {
        let setup = std::mem::take(&mut self.data);
        if matches!(setup, DataSetup::None) {
            return Started::Reply(reply_for(&SessionError::DataNotArmed, Phase::Command));
        }
        let upload = matches!(job, Job::Stor { .. });
        let tls_options = self.shared.tls.as_ref().map(|t| &t.options);
        let tls = match self.security.data_config(upload) {
            Some(config) => Some(DataTls {
                config,
                require_reuse: tls_options.is_some_and(|t| t.require_session_reuse),
                timeout: tls_options.map_or(Duration::from_secs(10), |t| t.handshake_timeout),
            }),
            _ if self.data_tls_required() => {
                return Started::Reply(reply_for(&SessionError::DataTlsRequired, Phase::Command));
            }
            _ => None,
        };
        let (user, anonymous, throttle) = match &self.login {
            Login::LoggedIn(u) => {
                let name = &u.account.name;
                let p = &u.account.policy;
                let rates = (p.download_rate, p.upload_rate);
                let t = self
                    .shared
                    .guard
                    .throttle(name, rates, &self.buckets, upload);
                (name.clone(), u.account.anonymous, t)
            }
            _ => (String::new(), false, crate::limits::Throttle::default()),
        };
        let data = DataOptions {
            tls,
            throttle,
            stall_timeout: self.shared.options.limits.data_timeout,
        };
        let o = &self.shared.options;
        let params = OpenParams {
            guard: crate::data::guard::Guard {
                peer_ip: self.ends.peer_ip,
                balancer: self.ends.balancer,
                without_header: o.proxy.as_ref().is_some_and(|p| p.data_without_header),
            },
            bind_ip: self.ends.bind_ip,
            accept_timeout: o.passive.accept_timeout,
            connect_timeout: o.active.connect_timeout,
            source_port: o.active.source_port,
            proxy: self.shared.proxy_data.clone(),
        };
        let direction = match &job {
            Job::Stor { .. } => Direction::Upload,
            Job::Retr { .. } => Direction::Download,
            Job::List(_) | Job::Bytes(_) => Direction::Listing,
        };
        let digest = match &job {
            Job::Stor { upload, .. } => upload.digest(),
            _ => None,
        };
        let info = JobInfo {
            verb,
            path,
            user,
            peer: self.ends.peer_ip,
            direction,
            anonymous,
            events: self.shared.events.clone(),
            origin: self.origin().clone(),
            digest,
        };
        Started::Transfer(Box::new(Transfer {
            opening: Reply::new(ReplyCode::OPENING_DATA, text),
            plan: Plan {
                job,
                setup,
                params,
                data,
                info,
            },
        }))
    }
}
