//! The driver of one control connection: the read loop that owns the
//! line decoder, the queue of commands deferred behind a transfer and the
//! running transfer, reads and writes through the [`Channel`] and makes
//! its TLS stage changes. What a command means is decided in the session
//! core (`mod.rs`, the one `dispatch`); this file only decides when.
//!
//! Ordering rules (all here):
//! - Replies are gathered in one buffer and written together: replies to
//!   commands pipelined in one read go out in one write.
//! - A transfer command writes its 150 into the buffer and leaves a
//!   [`Running`] transfer, a future that this task polls itself (no task
//!   of its own). A new download is polled once before the buffer is
//!   flushed: one that finishes at once (a small file, the client already
//!   connected) sends 150 and 226 in one write, so the client wakes once.
//!   Uploads are not polled early: their client sends only after the 150.
//! - While a transfer runs, ABOR, STAT and NOOP are answered at once; any
//!   other command waits, in order (at most [`MAX_DEFERRED`]), and runs
//!   after the transfer's final reply, its reply in the same write.
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
use std::sync::atomic::Ordering;

use portcullis_proto::command::Command;
use portcullis_proto::framing::{Frame, LineDecoder};
use portcullis_proto::reply::{Reply, ReplyCode};
use portcullis_proto::session::Login;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tracing::debug;

use super::{out_reply, Channel, Session};
use crate::data::DataSetup;
use crate::events::Event;
use crate::lifecycle::Phase;

/// What woke the control loop.
enum Wake {
    Read(std::io::Result<usize>),
    TransferDone(Reply),
    Timeout,
}

/// Most commands a client may queue behind a running transfer.
const MAX_DEFERRED: usize = 32;

impl Session {
    /// Serve the connection until QUIT, a timeout or the client going away.
    pub async fn run(mut self) {
        self.shared.events.emit(Event::Connected {
            peer: self.ends.peer,
            listener: self.ends.listener,
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
        let mut lifecycle = self.shared.lifecycle.subscribe();
        let end_reason = loop {
            // Drain (crate::lifecycle): checked before anything else runs.
            let phase = *lifecycle.borrow_and_update();
            if let Some(reason) = self.drain(phase, &mut out).await {
                let _ = self.channel.write_all(&out).await;
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
                out_reply(&mut out, reply);
                // Commands deferred behind the transfer go next, their
                // replies in the same write.
                continue;
            }
            if !out.is_empty() {
                if self.channel.write_all(&out).await.is_err() {
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
            // Stage changes announced by the reply just sent (CCC, AUTH).
            let changing = matches!(
                self.channel,
                Channel::Clearing { .. } | Channel::Upgrading(..)
            );
            if changing {
                match std::mem::replace(&mut self.channel, Channel::Closed) {
                    Channel::Clearing {
                        stream,
                        config,
                        prot,
                    } => match Box::pin(clear_tls(stream, self.tls_handshake_timeout())).await {
                        Ok(tcp) => {
                            debug!("control connection cleared (CCC)");
                            decoder = LineDecoder::default();
                            self.channel = Channel::Cleared {
                                stream: tcp,
                                config,
                                prot,
                            };
                            continue;
                        }
                        Err(e) => {
                            debug!(error = %e, "CCC shutdown");
                            return self.ended("CCC shutdown failed");
                        }
                    },
                    Channel::Upgrading(tcp, config) => {
                        // AUTH TLS was answered: anything read after it was
                        // sent in plain text before the handshake and is
                        // dropped unseen.
                        deferred.clear();
                        decoder = LineDecoder::default();
                        let limit = self.tls_handshake_timeout();
                        // Boxed: the handshake's state (about 1.4 KB) is held
                        // only while it runs, not in every idle session.
                        let shake =
                            Box::pin(crate::tls::accept(config.control.clone(), tcp, limit));
                        match shake.await {
                            Ok(stream) => {
                                debug!("control connection upgraded to TLS");
                                self.channel = Channel::Tls {
                                    stream,
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
                    other => self.channel = other,
                }
            }
            let o = &self.shared.options;
            let deadline = match self.login {
                Login::LoggedIn(_) => last_activity + o.idle_timeout,
                _ => tokio::time::Instant::from_std(self.started) + o.login_timeout,
            };
            let idle = self.transfer.is_none();
            let (channel, transfer) = (&mut self.channel, &mut self.transfer);
            let event = tokio::select! {
                r = channel.read(&mut buf) => Wake::Read(r),
                reply = async {
                    match transfer {
                        Some(t) => t.job.get_mut().unwrap_or_else(|p| p.into_inner()).as_mut().await,
                        None => std::future::pending().await,
                    }
                } => Wake::TransferDone(reply),
                _ = tokio::time::sleep_until(deadline), if idle => Wake::Timeout,
                // A drain began or its grace ran out: the check above decides.
                Ok(()) = lifecycle.changed() => continue,
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
                    let _ = self.channel.write_all(&out).await;
                    break "timeout";
                }
            }
        };
        if let Some(t) = self.transfer.take() {
            t.cancel.cancel();
            let _ = t.job.into_inner().unwrap_or_else(|p| p.into_inner()).await;
        }
        // Reported before the socket closes: whoever sees the close can
        // read the session's last log line and its metrics.
        self.ended(end_reason);
        self.channel.shutdown().await;
    }

    /// The session's last event.
    fn ended(&self, reason: &str) {
        self.shared.events.emit(Event::Ended {
            reason,
            secs: self.started.elapsed().as_secs_f64(),
            listener: self.ends.listener,
            tls: matches!(
                self.channel,
                Channel::Tls { .. } | Channel::Clearing { .. } | Channel::Cleared { .. }
            ),
        });
    }

    /// The drain hook: `Some(reason)` when the session must close now, its
    /// last replies in `out`. While draining, an idle session closes with
    /// 421 and a running transfer goes on (deferred commands do not run
    /// after it); once stopping, the transfer still running is cut (its
    /// 426; an upload is not committed) and 421 follows.
    async fn drain(&mut self, phase: Phase, out: &mut Vec<u8>) -> Option<&'static str> {
        match phase {
            Phase::Serving => return None,
            Phase::Draining if self.transfer.is_some() => return None,
            Phase::Draining | Phase::Stopping => {}
        }
        if let Some(t) = self.transfer.take() {
            t.cancel.cancel();
            let reply = t.job.into_inner().unwrap_or_else(|p| p.into_inner()).await;
            out_reply(out, reply);
        }
        Reply::new(
            ReplyCode::NOT_AVAILABLE,
            "Server shutting down, closing control connection.",
        )
        .encode(out);
        Some("server shutting down")
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
        matches!(self.channel, Channel::Upgrading(..))
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
    pub(super) async fn abort(&mut self, out: &mut Vec<u8>) {
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
