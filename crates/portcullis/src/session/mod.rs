//! One control connection: the read loop, the single dispatch `match`, and the
//! mapping from errors to replies. Handlers live in sibling modules grouped by
//! family and each returns its own [`Reply`].
//!
//! The control connection is read while a transfer runs (the transfer is a
//! future that the session's own task polls alongside the control socket,
//! see [`Running`]), so ABOR, STAT and NOOP are answered at once; other
//! commands that arrive meanwhile wait, in order, until the transfer's final
//! reply has been sent.

mod driver;
mod error;
mod fastpath;
mod files;
mod info;
mod job;
mod listing;
mod login;
mod security;
mod setup;
mod transfer;

pub use security::Channel;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Instant;

use portcullis_proto::command::{Command, TransferType};
use portcullis_proto::framing::Frame;
use portcullis_proto::path::VirtualPath;
use portcullis_proto::reply::{Reply, ReplyCode};
use portcullis_proto::session::{self as seq, Login};
use tokio_util::sync::CancellationToken;

use crate::auth::{Account, Authenticator};
use crate::data::{DataSetup, PortPool};
use crate::endpoints::Endpoints;
use crate::events::Event;
use crate::options::ServerOptions;
use crate::storage::Storage;
use crate::tls::TlsContext;
use error::{parse_error_reply, reply_for, Phase, SessionError};

/// What all sessions of one server share.
#[derive(Debug)]
pub struct Shared {
    pub options: ServerOptions,
    pub auth: Arc<dyn Authenticator>,
    pub ports: PortPool,
    /// `None` when FTPS is off.
    pub tls: Option<Arc<TlsContext>>,
    /// What PASV advertises to whom.
    pub advertiser: Arc<crate::data::Advertiser>,
    /// Session limits, bans and server-wide bandwidth.
    pub guard: Arc<crate::limits::Guard>,
    /// Where sessions report what happens (the log, later metrics).
    pub events: Arc<crate::events::Events>,
    /// Opens an account's storage from its root spec (roots opened at
    /// start-up, before dropping privileges, are kept there).
    pub storage: crate::storage::Factory,
    /// Serving, draining or stopping: the driver closes sessions on a drain.
    pub lifecycle: Arc<crate::lifecycle::Lifecycle>,
}

/// What the session keeps about a logged-in user.
#[derive(Debug)]
pub(crate) struct UserCtx {
    account: Account,
    storage: Arc<dyn Storage>,
}

/// State armed by one command for the next one (RFC 959 RNFR/RNTO, RFC 3659
/// REST). RNFR is for the very next command only; REST also survives the
/// commands that prepare a transfer (PASV, EPSV, PORT, EPRT, TYPE, MODE,
/// STRU, PBSZ, PROT) and is used by RETR and STOR. Any other command, or a
/// line that does not parse, disarms both.
#[derive(Debug, Default)]
enum Armed {
    #[default]
    None,
    RenameFrom(VirtualPath),
    Restart(u64),
}

type JobFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send>>;

/// A transfer in progress.
struct Running {
    /// The transfer itself, polled by the session's own task (no task of
    /// its own: one wake-up less per transfer, which small files feel).
    /// (In a Mutex only so that `Session` stays `Sync`; it is only ever
    /// reached through `&mut`, without locking.)
    job: std::sync::Mutex<JobFuture>,
    cancel: CancellationToken,
    progress: Arc<AtomicU64>,
    verb: &'static str,
    /// A download not polled yet: it is polled once before its 150 is
    /// flushed, so that one that finishes at once (a small file, the
    /// client already connected) sends 150 and 226 in one write.
    unpolled: bool,
}

/// Per-connection state.
pub struct Session {
    shared: Arc<Shared>,
    /// The client and this server's addresses, as learnt at accept.
    ends: Endpoints,
    login: Login<UserCtx>,
    cwd: VirtualPath,
    transfer_type: TransferType,
    armed: Armed,
    data: DataSetup,
    /// After EPSV ALL only EPSV may set up data connections (RFC 2428 section 4).
    epsv_all: bool,
    mlst_facts: Vec<String>,
    transfer: Option<Running>,
    /// QUIT was answered: close after flushing.
    closing: bool,
    started: Instant,
    /// The control connection and its TLS stage.
    channel: Channel,
    /// This session's own bandwidth buckets.
    buckets: crate::limits::Buckets,
}

impl Session {
    /// A session on `channel` (plain, or TLS already for implicit-TLS
    /// listeners); [`Session::run`] serves it.
    pub fn new(shared: Arc<Shared>, ends: Endpoints, channel: Channel) -> Self {
        Session {
            ends,
            login: Login::Start,
            cwd: VirtualPath::root(),
            transfer_type: TransferType::default(),
            armed: Armed::None,
            data: DataSetup::None,
            epsv_all: false,
            mlst_facts: portcullis_proto::listing::MLST_FACTS
                .iter()
                .map(|s| s.to_string())
                .collect(),
            transfer: None,
            closing: false,
            started: Instant::now(),
            channel,
            buckets: crate::limits::Buckets::new(&shared.options.limits),
            shared,
        }
    }

    /// The reply for an error, reported first (storage errors are events).
    fn fail(&self, e: SessionError, phase: Phase) -> Reply {
        if let SessionError::Storage(error) = &e {
            self.shared.events.emit(Event::Storage { error });
        }
        reply_for(&e, phase)
    }

    /// The reply of a transfer command: `None` once its 150 is written.
    fn answered(&self, r: Result<Option<Reply>, SessionError>) -> Option<Reply> {
        r.unwrap_or_else(|e| Some(self.fail(e, Phase::Command)))
    }

    /// Parse, sequence-check and dispatch one line; its reply goes to `out`.
    async fn handle_frame(&mut self, frame: Frame, out: &mut Vec<u8>) {
        let (verb, reply) = match frame {
            Frame::TooLong => (
                "other",
                Reply::new(ReplyCode::SYNTAX_ERROR, "Command line too long."),
            ),
            Frame::Line(line) => match Command::parse(&line) {
                Ok(cmd) => {
                    let verb = cmd.verb();
                    match seq::check(&self.login, &cmd) {
                        Ok(()) => match self.dispatch(cmd, out).await {
                            Some(r) => (verb, r),
                            None => {
                                // A transfer's 150 was written.
                                let code = ReplyCode::OPENING_DATA;
                                self.shared.events.emit(Event::Command { verb, code });
                                return;
                            }
                        },
                        Err(r) => {
                            self.armed = Armed::None;
                            (verb, r)
                        }
                    }
                }
                Err(e) => {
                    self.armed = Armed::None;
                    ("other", parse_error_reply(&e))
                }
            },
        };
        self.shared.events.emit(Event::Command {
            verb,
            code: reply.code,
        });
        out_reply(out, reply);
    }

    /// The one dispatch `match`. Returns `None` when the handler already wrote
    /// its replies (a transfer's 150, whose final reply comes later).
    async fn dispatch(&mut self, cmd: Command, out: &mut Vec<u8>) -> Option<Reply> {
        use Command as C;
        let armed = std::mem::take(&mut self.armed);
        // REST stays armed across the commands that only prepare the
        // transfer it is for (as vsftpd and ProFTPD keep it): a client may
        // send REST before PASV or TYPE, and the RETR or STOR that follows
        // must start at the offset, never at 0.
        let restart = match armed {
            Armed::Restart(n) => Some(n),
            _ => None,
        };
        let prepares = matches!(
            cmd,
            C::Pasv
                | C::Epsv(_)
                | C::Port(_)
                | C::Eprt(_)
                | C::Type(_)
                | C::Mode
                | C::Stru
                | C::Pbsz(_)
                | C::Prot(_)
        );
        if let (true, Some(n)) = (prepares, restart) {
            self.armed = Armed::Restart(n);
        }
        let reply = match cmd {
            C::User(name) => Ok(self.user(name)),
            C::Pass(pw) => Ok(self.pass(pw).await),
            C::Acct(_) => Ok(Reply::new(
                ReplyCode::SUPERFLUOUS,
                "ACCT not needed on this server.",
            )),
            C::Quit => Ok(self.quit()),
            C::Noop => Ok(Reply::new(ReplyCode::OK, "NOOP ok.")),
            C::Syst => Ok(Reply::new(ReplyCode::SYSTEM_TYPE, "UNIX Type: L8")),
            C::Feat => Ok(self.feat()),
            C::Opts(o) => Ok(self.opts(o)),
            C::Help(topic) => Ok(self.help(topic)),
            C::Stat(None) => Ok(self.stat_server()),
            C::Stat(Some(path)) => self.stat_path(&path).await,
            C::Site(sub) => self.site(sub).await,
            C::Pwd => Ok(self.pwd()),
            C::Cwd(path) => self.cwd(&path).await,
            C::Cdup => self.cwd("..").await,
            C::Mkd(path) => self.mkd(&path).await,
            C::Rmd(path) => self.rmd(&path).await,
            C::Dele(path) => self.dele(&path).await,
            C::Rnfr(path) => self.rnfr(&path).await,
            C::Rnto(path) => self.rnto(&path, armed).await,
            C::Size(path) => self.size(&path).await,
            C::Mdtm(path) => self.mdtm(&path).await,
            C::Mfmt { time, path } => self.mfmt(time, &path).await,
            C::Type(t) => Ok(self.set_type(t)),
            C::Mode => Ok(Reply::new(ReplyCode::OK, "Mode set to S.")),
            C::Stru => Ok(Reply::new(ReplyCode::OK, "Structure set to F.")),
            C::Port(addr) => Ok(self.port(addr.into(), "PORT")),
            C::Eprt(addr) => Ok(self.port(addr, "EPRT")),
            C::Pasv => Ok(self.pasv()),
            C::Epsv(arg) => Ok(self.epsv(arg)),
            C::List(args) => {
                let r = self.list(args, transfer::ListKind::Long, out).await;
                return self.answered(r);
            }
            C::Nlst(args) => {
                let r = self.list(args, transfer::ListKind::Names, out).await;
                return self.answered(r);
            }
            C::Mlsd(path) => {
                let r = self.mlsd(path, out).await;
                return self.answered(r);
            }
            C::Mlst(path) => self.mlst(path).await,
            C::Retr(path) => {
                let r = self.retr(&path, armed, out).await;
                return self.answered(r);
            }
            C::Stor(path) => {
                let r = self.stor(&path, armed, out).await;
                return self.answered(r);
            }
            // Where an appended or uniquely named upload would resume is
            // not defined (RFC 3659 section 5.5 names only RETR and STOR).
            C::Stou(_) | C::Appe(_) if restart.is_some() => Ok(Reply::new(
                ReplyCode::BAD_SEQUENCE,
                "REST applies to RETR and STOR only; the restart offset was cleared.",
            )),
            C::Stou(name) => {
                let r = self.stou(name, out).await;
                return self.answered(r);
            }
            C::Appe(path) => {
                let r = self.appe(&path, out).await;
                return self.answered(r);
            }
            C::Rest(n) => {
                self.armed = Armed::Restart(n);
                Ok(Reply::new(
                    ReplyCode::PENDING,
                    format!("Restarting at {n}. Send STOR or RETR to continue."),
                ))
            }
            C::Abor => {
                self.abort(out).await;
                return None;
            }
            C::Allo => Ok(Reply::new(
                ReplyCode::SUPERFLUOUS,
                "ALLO not needed on this server.",
            )),
            C::Auth(mech) => Ok(self.auth(mech)),
            C::Pbsz(n) => Ok(self.pbsz(n)),
            C::Prot(level) => Ok(self.prot(level)),
            C::Ccc => Ok(self.ccc()),
        };
        Some(reply.unwrap_or_else(|e| self.fail(e, Phase::Command)))
    }

    /// The logged-in user. `seq::check` ran before any handler that calls
    /// this, so the `Err` arm only guards against a sequencing bug.
    fn user_ctx(&self) -> Result<&UserCtx, SessionError> {
        match &self.login {
            Login::LoggedIn(u) => Ok(u),
            _ => Err(SessionError::NotLoggedIn),
        }
    }

    /// What the logged-in account's storage can do; before login, what
    /// the server offers at all (every account's storage is local today).
    fn capabilities(&self) -> crate::storage::Capabilities {
        match &self.login {
            Login::LoggedIn(u) => u.storage.capabilities(),
            _ => crate::storage::Capabilities::ALL,
        }
    }

    /// Resolve a client path against the working directory.
    fn resolve(&self, arg: &str) -> Result<VirtualPath, SessionError> {
        Ok(self.cwd.resolve(arg)?)
    }
}

fn out_reply(out: &mut Vec<u8>, reply: Reply) {
    reply.encode(out);
}
