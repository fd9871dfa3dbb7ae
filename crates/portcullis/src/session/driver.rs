//! The driver of one control connection: the read loop that owns the
//! control stream ([`Channel`]), the line decoder, the queue of commands
//! deferred behind a transfer and the running transfer, and carries out
//! each [`Step`] the session core decides. What a command means is
//! decided in the core (`mod.rs`, the one `dispatch`); this file only
//! decides when.
//!
//! Ordering rules (all here):
//! - Replies are gathered in one buffer and written together: replies to
//!   commands pipelined in one read go out in one write.
//! - A [`Step::Transfer`] writes its 150 into the buffer and becomes a
//!   [`Running`] transfer, a future that this task polls itself (no task
//!   of its own). A download is polled once before the buffer is flushed:
//!   that poll accepts a data connection already waiting (in
//!   `DataSetup::open`, the one place where a data connection is made),
//!   and a download that finishes at once (a small file, the client
//!   already connected) sends 150 and 226 in one write, so the client
//!   wakes once.
//!   Uploads are not polled early: their client sends only after the 150,
//!   so the accept is better made while the 150 travels.
//! - While a transfer runs, ABOR, STAT and NOOP are answered at once; any
//!   other command waits, in order (at most
//!   [`MAX_DEFERRED`](super::during::MAX_DEFERRED)), and runs after the
//!   transfer's final reply, its reply in the same write. The core decides
//!   what each line does (`session/during.rs`); this carries it out.
//! - Once a reply has said the connection closes (221 to QUIT, every 421,
//!   a ban), nothing else is executed or answered: the rest of the read
//!   that carried the command, and the commands deferred behind a
//!   transfer, are dropped unseen, and the connection is not read again.
//! - QUIT during a transfer (nothing deferred before it): during an
//!   upload the 221 goes out at once (some clients wait for it before
//!   closing the data connection); during a download it follows the
//!   transfer's final reply (some clients close the data connection when
//!   they read a reply during RETR). Either way the transfer runs to its
//!   end, which the control connection closing no longer cuts short; its
//!   226 or 426 is sent if the connection is still open, then it closes.
//! - After the 234 to AUTH, and after the 200 to CCC, the stage change is
//!   made before anything else is read; bytes read after AUTH and before
//!   the handshake are dropped unseen (CVE-2011-1575).
//! - The login timeout counts from connect and the idle timeout from the
//!   last whole command; neither runs during a transfer.
//! - A drain ([`crate::lifecycle`]) is checked at the top of every turn
//!   ([`Session::drain`]): an idle session gets 421 and closes; a running
//!   transfer goes on to its final reply, then 421 (deferred commands are
//!   not run); when the grace is over the transfer is cut (426), then 421.

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use portcullis_proto::framing::{Frame, LineDecoder};
use portcullis_proto::reply::{Reply, ReplyCode};
use tracing::debug;

use super::channel::{Channel, ControlStream};
use super::error::{self, SessionError};
use super::job::{Cut, Stop};
use super::security::Security;
use super::{Core, Shared, Step, Transfer};
use crate::endpoints::Endpoints;
use crate::events::Event;
use crate::events::SessionId;
use crate::lifecycle::Phase;

/// How long the end of a session waits to close the control connection
/// (TLS close_notify included).
const SHUTDOWN_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

mod running;
#[cfg(test)]
mod tests;

type JobFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send>>;

/// A transfer in progress.
struct Running {
    /// The transfer itself, polled by the session's own task (no task of
    /// its own: one wake-up less per transfer, which small files feel).
    job: JobFuture,
    stop: Stop,
    progress: Arc<AtomicU64>,
    verb: &'static str,
    /// The client sends (STOR, STOU, APPE).
    upload: bool,
    /// A download not polled yet: it is polled once before its 150 is
    /// flushed (see the ordering rules above).
    unpolled: bool,
}

/// A stage change of the control stream, due once the reply that
/// announced it has been sent.
enum Change {
    /// The TLS handshake, with this configuration.
    Upgrade(Arc<rustls::ServerConfig>),
    /// The end of TLS (CCC).
    Clear,
}

/// What woke the control loop.
enum Wake {
    Read(std::io::Result<usize>),
    TransferDone(Reply),
    /// The control plane kicked the session: the top of the loop closes it.
    Kicked,
    Timeout,
}

/// One control connection: the session core and what it runs on, a TCP
/// connection when serving (any [`ControlStream`] in tests).
pub struct Session<S = tokio::net::TcpStream> {
    core: Core,
    channel: Channel<S>,
    transfer: Option<Running>,
    change: Option<Change>,
    /// A reply said the connection closes: close after flushing (after
    /// the running transfer's final reply, if one runs).
    closing: bool,
    /// The 221 to a QUIT received during a download, due after the
    /// transfer's final reply.
    quit_after: Option<Reply>,
    /// Writing to the control connection failed after QUIT while a
    /// transfer ran on: the transfer ends as it would, unanswered.
    control_lost: bool,
    /// Its place in the registry of live sessions (the control plane's
    /// list and kick); dropped with the session.
    reg: crate::registry::Registration,
}

impl<S: ControlStream> Session<S> {
    /// A session on a plain control connection.
    pub fn plain(shared: Arc<Shared>, ends: Endpoints, id: SessionId, stream: S) -> Self {
        Self::on(
            Core::new(shared, ends, id, Security::Plain),
            Channel::plain(stream),
        )
    }

    /// A session on an implicit-TLS listener, after the handshake.
    pub fn implicit_tls(
        shared: Arc<Shared>,
        ends: Endpoints,
        id: SessionId,
        stream: Box<crate::tls::ControlTls<S>>,
        config: crate::tls::SessionConfigs,
    ) -> Self {
        let cert = crate::tls::ClientIdentity::of(stream.common());
        let core = Core::new(shared, ends, id, Security::implicit(config, cert));
        Self::on(core, Channel::Tls(stream))
    }

    fn on(core: Core, channel: Channel<S>) -> Self {
        let ends = core.ends();
        let reg = core.shared().registry.register(
            core.origin().session,
            ends.peer,
            ends.listener,
            core.tls_used(),
        );
        Session {
            reg,
            core,
            channel,
            transfer: None,
            change: None,
            closing: false,
            quit_after: None,
            control_lost: false,
        }
    }

    /// Serve the connection until QUIT, a timeout or the client going away.
    /// A panic (a bug) ends this session alone: the client gets 421, the
    /// session its last event, and the server serves on.
    ///
    /// Not an `async fn`: its argument would be held twice in the future
    /// (once as the argument, once as the moved binding; rust-lang/rust
    /// issue 62958), which every idle session pays for.
    #[allow(clippy::manual_async_fn)]
    pub fn run(mut self) -> impl std::future::Future<Output = ()> + Send {
        async move {
            use futures_util::FutureExt;
            self.core.emit(Event::Connected {
                listener: self.core.ends().listener,
            });
            let served = std::panic::AssertUnwindSafe(self.serve())
                .catch_unwind()
                .await;
            let end_reason = match served {
                Ok(reason) => reason,
                Err(_) => {
                    // Logged by the panic hook (crate::logging). A transfer
                    // still running is dropped unfinished: an upload is not
                    // committed (storage aborts it on drop).
                    drop(self.transfer.take());
                    let mut out = Vec::new();
                    closing_reply(SessionError::Internal).encode(&mut out);
                    let _ = self.write_out(&out).await;
                    "internal error"
                }
            };
            // Reported before the socket closes: whoever sees the close can
            // read the session's last log line and its metrics.
            self.ended(end_reason);
            // Bounded too: a TLS close_notify to a client that reads
            // nothing would otherwise wait for ever.
            let _ = tokio::time::timeout(SHUTDOWN_LIMIT, self.channel.shutdown()).await;
        }
    }

    /// Write to the control connection, bounded by the login timeout
    /// before login and by the idle timeout after: a client that sends
    /// commands and never reads its replies cannot hold the session past
    /// them (the write would wait for room in its receive window).
    async fn write_out(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let o = &self.core.shared().options;
        let limit = if self.core.logged_in() {
            o.idle_timeout
        } else {
            o.login_timeout
        };
        match tokio::time::timeout(limit, self.channel.write_all(bytes)).await {
            Ok(written) => written,
            Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
        }
    }

    /// The read loop; the reason the session ends.
    async fn serve(&mut self) -> &'static str {
        let shared = self.core.shared().clone();
        let mut out = Vec::with_capacity(256);
        Reply::new(ReplyCode::READY, shared.options.banner.clone()).encode(&mut out);
        let mut decoder = LineDecoder::default();
        // No read buffer is held across reads (see Channel::read_frames),
        // and `out` and `frames` are given back once emptied: an idle
        // session holds only its state.
        let mut frames = Vec::new();
        let mut deferred: VecDeque<Frame> = VecDeque::new();
        let mut last_activity = tokio::time::Instant::now();
        let mut lifecycle = shared.lifecycle.subscribe();
        let end_reason = loop {
            // Drain (crate::lifecycle): checked before anything else runs,
            // but after a TLS change a reply just announced (234 to AUTH,
            // 200 to CCC): the client is already making the handshake, so
            // the 421 goes out once it is done, in the protocol it expects.
            let phase = *lifecycle.borrow_and_update();
            let drain = match self.change {
                Some(_) => None,
                None if self.reg.entry.is_kicked() => Some(self.kicked(&mut out).await),
                None => self.drain(phase, &mut out).await,
            };
            if let Some(reason) = drain {
                let _ = self.write_out(&out).await;
                break reason;
            }
            while self.transfer.is_none() && !self.closing && !self.upgrading() {
                let Some(frame) = deferred.pop_front() else {
                    break;
                };
                self.handle_frame(frame, &mut out).await;
            }
            if let Some(reply) = self.poll_new_download().await {
                self.transfer = None;
                last_activity = tokio::time::Instant::now();
                self.finished(reply, &mut out);
                // Commands deferred behind the transfer go next, their
                // replies in the same write.
                continue;
            }
            if !out.is_empty() {
                if self.control_lost {
                    out.clear();
                } else if self.write_out(&out).await.is_err() {
                    if !(self.closing && self.transfer.is_some()) {
                        break "write failed";
                    }
                    // After QUIT the transfer runs to its end anyway.
                    self.control_lost = true;
                }
                out = Vec::new();
            }
            if self.closing && self.transfer.is_none() {
                break "quit";
            }
            // Stage changes announced by the reply just sent (AUTH, CCC).
            let limit = self.tls_handshake_timeout();
            match self.change.take() {
                Some(Change::Upgrade(config)) => {
                    // Anything read after AUTH was sent in plain text before
                    // the handshake and is dropped unseen.
                    deferred.clear();
                    decoder = LineDecoder::default();
                    if let Err(e) = self.channel.upgrade(config, limit).await {
                        match crate::tls::certificate_refused(&e) {
                            Some(why) => tracing::info!(
                                peer = %self.core.ends().peer,
                                reason = why,
                                "client certificate refused: TLS handshake ended with an alert"
                            ),
                            None => debug!(error = %e, "TLS handshake"),
                        }
                        return "TLS handshake failed";
                    }
                    debug!("control connection upgraded to TLS");
                    self.core.tls_established(self.channel.client_cert());
                    self.control_tls(true);
                    continue;
                }
                Some(Change::Clear) => {
                    decoder = LineDecoder::default();
                    if let Err(e) = self.channel.clear(limit).await {
                        debug!(error = %e, "CCC shutdown");
                        return "CCC shutdown failed";
                    }
                    debug!("control connection cleared (CCC)");
                    self.control_tls(false);
                    continue;
                }
                None => {}
            }
            let o = &shared.options;
            let deadline = if self.core.logged_in() {
                last_activity + o.idle_timeout
            } else {
                tokio::time::Instant::from_std(self.core.started_at()) + o.login_timeout
            };
            let idle = self.transfer.is_none();
            // Closing (QUIT during a transfer): nothing more is read, and
            // the client closing the connection does not cut the transfer.
            let reading = !self.closing;
            let entry = self.reg.entry.clone();
            let (channel, transfer) = (&mut self.channel, &mut self.transfer);
            let event = tokio::select! {
                r = channel.read_frames(&mut decoder, &mut frames), if reading => Wake::Read(r),
                reply = async {
                    match transfer {
                        Some(t) => t.job.as_mut().await,
                        None => std::future::pending().await,
                    }
                } => Wake::TransferDone(reply),
                _ = tokio::time::sleep_until(deadline), if idle => Wake::Timeout,
                // A drain began or its grace ran out: the check above decides.
                Ok(()) = lifecycle.changed() => continue,
                () = entry.kicked() => Wake::Kicked,
            };
            match event {
                // Only the control connection's TLS reads bad data: a
                // forged or broken record, an oversized message, too many
                // key updates. Said as such, so that it is not taken for
                // a client that went away.
                Wake::Read(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
                    debug!(error = %e, "TLS error on the control connection");
                    break "TLS protocol error";
                }
                Wake::Read(Ok(0)) | Wake::Read(Err(_)) => break "client closed the connection",
                Wake::Read(Ok(_)) => {
                    // Only whole commands count as activity: a byte now and
                    // then (slowloris) does not hold the session open.
                    if !frames.is_empty() {
                        last_activity = tokio::time::Instant::now();
                    }
                    for frame in std::mem::take(&mut frames) {
                        if let Frame::Line(l) = &frame {
                            self.reg.entry.command(l);
                        }
                        if self.closing {
                            // Read with or after the command that closes:
                            // never run, never answered.
                            continue;
                        }
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
                    self.finished(reply, &mut out);
                }
                Wake::Kicked => continue,
                Wake::Timeout => {
                    let why = if self.core.logged_in() {
                        SessionError::IdleTimeout
                    } else {
                        SessionError::LoginTimeout
                    };
                    closing_reply(why).encode(&mut out);
                    let _ = self.write_out(&out).await;
                    break "timeout";
                }
            }
        };
        if let Some(t) = self.transfer.take() {
            t.stop.stop(Cut::Client);
            let _ = t.job.await;
        }
        end_reason
    }

    /// One line through the core, and what it decided carried out.
    async fn handle_frame(&mut self, frame: Frame, out: &mut Vec<u8>) {
        // Boxed: the largest command's state (a login, a storage call)
        // lives only while the command runs, not in every idle session's
        // future.
        match Box::pin(self.core.handle(frame)).await {
            Step::Reply(r) => r.encode(out),
            Step::Close(r) => {
                r.encode(out);
                self.closing = true;
            }
            Step::StartTls(r, config) => {
                r.encode(out);
                self.change = Some(Change::Upgrade(config));
            }
            Step::EndTls(r) => {
                r.encode(out);
                self.change = Some(Change::Clear);
            }
            Step::Transfer(t) => self.begin(*t, out),
            Step::Hash(h) => self.begin_hash(*h),
            Step::Abort => self.abort(out).await,
        }
        self.reg.entry.user(self.core.user_name());
    }

    /// Send a transfer's 150 and make it the running transfer.
    fn begin(&mut self, t: Transfer, out: &mut Vec<u8>) {
        let upload = t.upload();
        let verb = t.verb();
        t.opening.encode(out);
        let stop = Stop::default();
        let progress = Arc::new(AtomicU64::new(0));
        self.reg
            .entry
            .transfer(t.path().to_owned(), upload, progress.clone());
        let job = super::job::run(t.plan, stop.clone(), progress.clone());
        self.transfer = Some(Running {
            job: Box::pin(job),
            stop,
            progress,
            verb,
            upload,
            unpolled: !upload,
        });
    }

    /// Make a hash the running "transfer": polled like one, so that ABOR,
    /// the drain and the stall timeout stop it and other commands wait
    /// behind it. It has no 150; its reply comes when it is done.
    fn begin_hash(&mut self, h: super::hash::HashJob) {
        let verb = h.verb();
        let stop = Stop::default();
        let progress = Arc::new(AtomicU64::new(0));
        let job = super::hash::run(h, stop.clone(), progress.clone());
        self.transfer = Some(Running {
            job: Box::pin(job),
            stop,
            progress,
            verb,
            upload: false,
            unpolled: true,
        });
    }

    /// The running transfer's final reply, and the 221 of a QUIT that
    /// arrived during it, if one is due.
    fn finished(&mut self, reply: Reply, out: &mut Vec<u8>) {
        self.reg.entry.transfer_done();
        reply.encode(out);
        if let Some(quit) = self.quit_after.take() {
            quit.encode(out);
        }
    }

    /// The session's last event.
    fn ended(&self, reason: &str) {
        self.core.emit(Event::Ended {
            reason,
            user: self.core.user_name(),
            secs: self.core.started_at().elapsed().as_secs_f64(),
            listener: self.core.ends().listener,
            tls: self.core.tls_used(),
            encrypted: matches!(self.channel, Channel::Tls(_)),
        });
    }

    /// The control connection became TLS (`on`) or plain text again.
    fn control_tls(&self, on: bool) {
        self.reg.entry.tls(on || self.core.tls_used());
        self.core.emit(Event::ControlTls {
            listener: self.core.ends().listener,
            on,
        });
    }

    /// The drain hook: `Some(reason)` when the session must close now, its
    /// last replies in `out`. While draining, an idle session closes with
    /// 421 and a running transfer goes on (deferred commands do not run
    /// after it); once stopping, the transfer still running is cut (its
    /// 426; an upload is not committed) and 421 follows.
    async fn drain(&mut self, phase: Phase, out: &mut Vec<u8>) -> Option<&'static str> {
        match phase {
            Phase::Serving | Phase::Closing => return None,
            Phase::Draining if self.transfer.is_some() => return None,
            Phase::Draining | Phase::Stopping => {}
        }
        if let Some(t) = self.transfer.take() {
            t.stop.stop(Cut::ShutdownGrace);
            t.job.await.encode(out);
        }
        closing_reply(SessionError::ShuttingDown).encode(out);
        Some("server shutting down")
    }

    /// Kicked by the control plane: the running transfer is cut (its 426;
    /// an upload is not committed, as any cut upload), then 421.
    async fn kicked(&mut self, out: &mut Vec<u8>) -> &'static str {
        if let Some(t) = self.transfer.take() {
            t.stop.stop(Cut::Kicked);
            t.job.await.encode(out);
        }
        closing_reply(SessionError::Kicked).encode(out);
        "kicked"
    }

    fn upgrading(&self) -> bool {
        matches!(self.change, Some(Change::Upgrade(_)))
    }

    fn tls_handshake_timeout(&self) -> std::time::Duration {
        self.core
            .shared()
            .tls
            .as_ref()
            .map_or(std::time::Duration::from_secs(10), |t| {
                t.options.handshake_timeout
            })
    }
}

/// The 421 the driver itself sends before closing (a timeout, the
/// shutdown, a panic), chosen in [`error`] with the others.
fn closing_reply(why: SessionError) -> Reply {
    debug_assert!(why.closes());
    error::reply_for(&why, error::Phase::Command)
}
