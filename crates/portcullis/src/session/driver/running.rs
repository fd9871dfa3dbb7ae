//! The driver while a transfer runs: the first poll of a new download,
//! the lines that arrive meanwhile (what each does is the core's decision,
//! `session/during.rs`; this carries it out), and ABOR.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use portcullis_proto::framing::Frame;
use portcullis_proto::reply::{Reply, ReplyCode};

use super::{ControlStream, Cut, Session};
use crate::events::Event;
use crate::session::during::{During, Progress};

impl<S: ControlStream> Session<S> {
    /// Poll a download that has just been started, once: its final reply
    /// if it has already finished (see the ordering rules above).
    pub(super) async fn poll_new_download(&mut self) -> Option<Reply> {
        let t = self.transfer.as_mut().filter(|t| t.unpolled)?;
        t.unpolled = false;
        let job = &mut t.job;
        match std::future::poll_fn(|cx| std::task::Poll::Ready(job.as_mut().poll(cx))).await {
            std::task::Poll::Ready(reply) => Some(reply),
            std::task::Poll::Pending => None,
        }
    }

    /// A line that arrived while a transfer runs: the core decides what
    /// it does (`session/during.rs`), this carries it out.
    pub(super) async fn during_transfer(
        &mut self,
        frame: Frame,
        deferred: &mut VecDeque<Frame>,
        out: &mut Vec<u8>,
    ) {
        let Some(t) = &self.transfer else {
            return deferred.push_back(frame);
        };
        let progress = Progress {
            verb: t.verb,
            bytes: t.progress.load(Ordering::Relaxed),
            upload: t.upload,
            queued: deferred.len(),
        };
        // Boxed, as in handle_frame.
        match Box::pin(self.core.during_transfer(frame, &progress)).await {
            During::Reply(r) => r.encode(out),
            During::Abort => self.abort(out).await,
            During::Quit { reply, now } => {
                self.closing = true;
                if now {
                    reply.encode(out);
                } else {
                    self.quit_after = Some(reply);
                }
            }
            During::Defer(frame) => deferred.push_back(frame),
        }
    }

    /// ABOR (RFC 959 section 4.1.3): 426 for the transfer it stops, then 226;
    /// with nothing to abort, 225.
    pub(super) async fn abort(&mut self, out: &mut Vec<u8>) {
        let last = match self.transfer.take() {
            Some(t) => {
                self.reg.entry.transfer_done();
                t.stop.stop(Cut::Client);
                t.job.await.encode(out);
                Reply::new(ReplyCode::TRANSFER_COMPLETE, "ABOR successful.")
            }
            None => Reply::new(ReplyCode::DATA_OPEN_NO_TRANSFER, "No transfer to abort."),
        };
        self.core.emit(Event::Command {
            verb: "ABOR",
            code: last.code,
        });
        last.encode(out);
    }
}
