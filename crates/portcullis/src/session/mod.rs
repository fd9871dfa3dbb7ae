//! One control connection: the read loop, the single dispatch `match`, and the
//! mapping from errors to replies. Handlers live in sibling modules grouped by
//! family and each returns its own [`Reply`].
//!
//! The control connection is read while a transfer runs (the transfer is a
//! future that the session's own task polls alongside the control socket,
//! see [`Running`]), so ABOR, STAT and NOOP are answered at once; other
//! commands that arrive meanwhile wait, in order, until the transfer's final
//! reply has been sent.

mod error;
mod files;
mod info;
mod job;
mod listing;
mod login;
mod security;
mod transfer;

pub use security::Security;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use portcullis_proto::command::{Command, TransferType};
use portcullis_proto::framing::{Frame, LineDecoder};
use portcullis_proto::path::VirtualPath;
use portcullis_proto::reply::{Reply, ReplyCode};
use portcullis_proto::session::{self as seq, Login};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::either::Either;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::auth::{Account, Authenticator};
use crate::data::{DataSetup, PortPool};
use crate::endpoints::Endpoints;
use crate::events::Event;
use crate::options::ServerOptions;
use crate::storage::Storage;
use crate::tls::{MaybeTls, TlsContext};
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

/// What woke the control loop.
enum Wake {
    Read(std::io::Result<usize>),
    TransferDone(Reply),
    Timeout,
}

/// Most commands a client may queue behind a running transfer.
const MAX_DEFERRED: usize = 32;

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
    security: Security,
    /// This session's own bandwidth buckets.
    buckets: crate::limits::Buckets,
}

impl Session {
    /// A session on a connection whose TLS stage is `security` (plain, or TLS
    /// already for implicit-TLS listeners).
    pub fn new(shared: Arc<Shared>, ends: Endpoints, security: Security) -> Self {
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
            security,
            buckets: crate::limits::Buckets::new(&shared.options.limits),
            shared,
        }
    }

    /// Serve the connection until QUIT, a timeout or the client going away.
    pub async fn run(mut self, mut stream: MaybeTls) {
        self.shared.events.emit(Event::Connected {
            peer: self.ends.peer,
        });
        let mut out = Vec::with_capacity(256);
        Reply::new(ReplyCode::READY, self.shared.options.banner.clone()).encode(&mut out);
        let mut decoder = LineDecoder::default();
        // Commands are short: a small read buffer keeps idle sessions small
        // (a long line just takes several reads; the decoder joins them).
        let mut buf = vec![0u8; 1024];
        let mut frames = Vec::new();
        let mut deferred: VecDeque<Frame> = VecDeque::new();
        let mut last_activity = tokio::time::Instant::now();
        let end_reason = loop {
            while self.transfer.is_none() && !self.closing && !self.upgrading() {
                let Some(frame) = deferred.pop_front() else {
                    break;
                };
                self.handle_frame(frame, &mut out).await;
            }
            if let Some(reply) = self.poll_new_download().await {
                self.transfer = None;
                last_activity = tokio::time::Instant::now();
                out_reply(&mut out, reply);
                // Commands deferred behind the transfer go next, their
                // replies in the same write.
                continue;
            }
            if !out.is_empty() {
                if stream.write_all(&out).await.is_err() {
                    break "write failed";
                }
                out.clear();
                // A big reply (FEAT, HELP, STAT of a directory) need not stay
                // allocated for the rest of the session.
                if out.capacity() > 4096 {
                    out = Vec::with_capacity(256);
                }
            }
            if self.closing {
                break "quit";
            }
            if matches!(self.security, Security::Clearing { .. }) {
                let Security::Clearing { config, prot } =
                    std::mem::replace(&mut self.security, Security::Plain)
                else {
                    unreachable!("matched above")
                };
                let Either::Right(tls) = stream else {
                    unreachable!("CCC is only answered on a TLS connection")
                };
                match clear_tls(tls, self.tls_handshake_timeout()).await {
                    Ok(tcp) => {
                        debug!("control connection cleared (CCC)");
                        stream = Either::Left(tcp);
                        decoder = LineDecoder::default();
                        self.security = Security::Cleared { config, prot };
                        continue;
                    }
                    Err(e) => {
                        debug!(error = %e, "CCC shutdown");
                        return self.ended("CCC shutdown failed");
                    }
                }
            }
            if let Security::Upgrading(config) = &self.security {
                // AUTH TLS was answered: anything read after it was sent in
                // plain text before the handshake and is dropped unseen.
                let config = config.clone();
                deferred.clear();
                decoder = LineDecoder::default();
                let Either::Left(tcp) = stream else {
                    unreachable!("AUTH is refused on a TLS connection")
                };
                let limit = self.tls_handshake_timeout();
                match crate::tls::accept(config.control.clone(), tcp, limit).await {
                    Ok(tls) => {
                        debug!("control connection upgraded to TLS");
                        stream = Either::Right(tls);
                        self.security = Security::Tls {
                            config,
                            pbsz: false,
                            prot: portcullis_proto::command::ProtLevel::Clear,
                        };
                        continue;
                    }
                    Err(e) => {
                        debug!(error = %e, "TLS handshake");
                        return self.ended("TLS handshake failed");
                    }
                }
            }
            let o = &self.shared.options;
            let deadline = match self.login {
                Login::LoggedIn(_) => last_activity + o.idle_timeout,
                _ => tokio::time::Instant::from_std(self.started) + o.login_timeout,
            };
            let idle = self.transfer.is_none();
            let transfer = &mut self.transfer;
            let event = tokio::select! {
                r = stream.read(&mut buf) => Wake::Read(r),
                reply = async {
                    match transfer {
                        Some(t) => t.job.get_mut().unwrap_or_else(|p| p.into_inner()).as_mut().await,
                        None => std::future::pending().await,
                    }
                } => Wake::TransferDone(reply),
                _ = tokio::time::sleep_until(deadline), if idle => Wake::Timeout,
            };
            match event {
                Wake::Read(Ok(0)) | Wake::Read(Err(_)) => break "client closed the connection",
                Wake::Read(Ok(n)) => {
                    decoder.feed(&buf[..n], &mut frames);
                    // Only whole commands count as activity: a byte now and
                    // then (slowloris) does not hold the session open.
                    if !frames.is_empty() {
                        last_activity = tokio::time::Instant::now();
                    }
                    for frame in frames.drain(..) {
                        if self.upgrading() {
                            // Sent after AUTH TLS, before the handshake: dropped.
                            continue;
                        }
                        if self.transfer.is_some() {
                            self.during_transfer(frame, &mut deferred, &mut out).await;
                        } else if !deferred.is_empty() {
                            deferred.push_back(frame);
                        } else {
                            self.handle_frame(frame, &mut out).await;
                        }
                    }
                }
                Wake::TransferDone(reply) => {
                    self.transfer = None;
                    last_activity = tokio::time::Instant::now();
                    out_reply(&mut out, reply);
                }
                Wake::Timeout => {
                    let text = if matches!(self.login, Login::LoggedIn(_)) {
                        "Timeout: no command for too long, closing control connection."
                    } else {
                        "Timeout: login took too long, closing control connection."
                    };
                    Reply::new(ReplyCode::NOT_AVAILABLE, text).encode(&mut out);
                    let _ = stream.write_all(&out).await;
                    break "timeout";
                }
            }
        };
        if let Some(t) = self.transfer.take() {
            t.cancel.cancel();
            let _ = t.job.into_inner().unwrap_or_else(|p| p.into_inner()).await;
        }
        let _ = stream.shutdown().await;
        self.ended(end_reason);
    }

    fn ended(&self, reason: &str) {
        self.shared.events.emit(Event::Ended {
            reason,
            secs: self.started.elapsed().as_secs_f64(),
        });
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

    /// Poll a download that has just been started, once: its final reply
    /// if it has already finished. The client gets the 150 only after
    /// this, and with the 226 in the same segment it wakes once, not twice;
    /// it finds the data waiting either way. Uploads are not polled early:
    /// their client sends nothing before the 150, so the accept is better
    /// made while the 150 travels.
    async fn poll_new_download(&mut self) -> Option<Reply> {
        let t = self.transfer.as_mut().filter(|t| t.unpolled)?;
        t.unpolled = false;
        let job = t.job.get_mut().unwrap_or_else(|p| p.into_inner());
        match std::future::poll_fn(|cx| std::task::Poll::Ready(job.as_mut().poll(cx))).await {
            std::task::Poll::Ready(reply) => Some(reply),
            std::task::Poll::Pending => None,
        }
    }

    fn upgrading(&self) -> bool {
        matches!(self.security, Security::Upgrading(_))
    }

    fn tls_handshake_timeout(&self) -> std::time::Duration {
        self.shared
            .tls
            .as_ref()
            .map_or(std::time::Duration::from_secs(10), |t| {
                t.options.handshake_timeout
            })
    }

    /// A line that arrived while a transfer runs: ABOR, STAT and NOOP are
    /// answered now, the rest waits.
    async fn during_transfer(
        &mut self,
        frame: Frame,
        deferred: &mut VecDeque<Frame>,
        out: &mut Vec<u8>,
    ) {
        if let Frame::Line(line) = &frame {
            match Command::parse(line) {
                Ok(Command::Abor) => return self.abort(out).await,
                Ok(Command::Noop) => return out_reply(out, Reply::new(ReplyCode::OK, "NOOP ok.")),
                Ok(Command::Stat(None)) => {
                    let t = self.transfer.as_ref().expect("transfer running");
                    let n = t.progress.load(Ordering::Relaxed);
                    return out_reply(
                        out,
                        Reply::multi(
                            ReplyCode::SYSTEM_STATUS,
                            vec![
                                "Transfer status:".into(),
                                format!(" {} in progress, {n} bytes transferred", t.verb),
                                "End of status".into(),
                            ],
                        ),
                    );
                }
                _ => {}
            }
        }
        if deferred.len() >= MAX_DEFERRED {
            out_reply(
                out,
                Reply::new(
                    ReplyCode::FILE_BUSY,
                    "Transfer in progress; too many queued commands, this one was dropped.",
                ),
            );
        } else {
            deferred.push_back(frame);
        }
    }

    /// ABOR (RFC 959 section 4.1.3): 426 for the transfer it stops, then 226;
    /// with nothing to abort, 225.
    async fn abort(&mut self, out: &mut Vec<u8>) {
        self.data = DataSetup::None;
        match self.transfer.take() {
            Some(t) => {
                t.cancel.cancel();
                let reply = t.job.into_inner().unwrap_or_else(|p| p.into_inner()).await;
                out_reply(out, reply);
                out_reply(
                    out,
                    Reply::new(ReplyCode::TRANSFER_COMPLETE, "ABOR successful."),
                );
            }
            None => out_reply(
                out,
                Reply::new(ReplyCode::DATA_OPEN_NO_TRANSFER, "No transfer to abort."),
            ),
        }
    }

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

/// End the TLS layer of a control connection after CCC: send close_notify,
/// then go on with the TCP stream underneath, skipping the client's own TLS
/// records (its close_notify) record by record, so that no plain-text
/// command that follows them is swallowed. Bounded by `limit`.
async fn clear_tls(
    mut tls: Box<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>,
    limit: std::time::Duration,
) -> std::io::Result<tokio::net::TcpStream> {
    let deadline = tokio::time::Instant::now() + limit;
    tls.get_mut().1.send_close_notify();
    tokio::time::timeout_at(deadline, tls.flush())
        .await
        .map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::TimedOut, "CCC shutdown timed out")
        })??;
    let (mut tcp, _) = tls.into_inner();
    // At most a few records (close_notify, maybe a ticket ack); a command
    // starts with a letter, a TLS record with a content type 20..=23.
    for _ in 0..8 {
        let mut first = [0u8; 1];
        match tokio::time::timeout_at(deadline, tcp.peek(&mut first)).await {
            Ok(Ok(1)) if (0x14..=0x17).contains(&first[0]) => {}
            Ok(Ok(_)) | Err(_) => break,
            Ok(Err(e)) => return Err(e),
        }
        let mut header = [0u8; 5];
        let skip = async {
            tcp.read_exact(&mut header).await?;
            let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
            let mut body = vec![0u8; len.min(1 << 15)];
            tcp.read_exact(&mut body).await?;
            Ok::<_, std::io::Error>(())
        };
        tokio::time::timeout_at(deadline, skip)
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "partial TLS record after CCC")
            })??;
    }
    Ok(tcp)
}

fn out_reply(out: &mut Vec<u8>, reply: Reply) {
    reply.encode(out);
}
