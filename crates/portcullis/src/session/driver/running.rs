//! The driver while a transfer runs: the first poll of a new download,
//! the lines that arrive meanwhile (ABOR, STAT and NOOP at once, QUIT
//! at once or after the final reply, the rest queued), and ABOR.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;

use portcullis_proto::command::Command;
use portcullis_proto::framing::Frame;
use portcullis_proto::reply::{Reply, ReplyCode};

use super::{Cut, Session, MAX_DEFERRED};
use crate::events::Event;

impl Session {
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

    /// A line that arrived while a transfer runs: ABOR, STAT and NOOP are
    /// answered now, the rest waits.
    pub(super) async fn during_transfer(
        &mut self,
        frame: Frame,
        deferred: &mut VecDeque<Frame>,
        out: &mut Vec<u8>,
    ) {
        if let Frame::Line(line) = &frame {
            match Command::parse(line) {
                Ok(Command::Abor) => return self.abort(out).await,
                // Behind deferred commands, QUIT waits its turn as they do.
                Ok(Command::Quit) if deferred.is_empty() => return self.quit(frame, out).await,
                Ok(Command::Noop) => return Reply::new(ReplyCode::OK, "NOOP ok.").encode(out),
                Ok(Command::Stat(None)) => {
                    if let Some(t) = &self.transfer {
                        let n = t.progress.load(Ordering::Relaxed);
                        let lines = vec![
                            "Transfer status:".into(),
                            format!(" {} in progress, {n} bytes transferred", t.verb),
                            "End of status".into(),
                        ];
                        return Reply::multi(ReplyCode::SYSTEM_STATUS, lines).encode(out);
                    }
                }
                _ => {}
            }
        }
        if deferred.len() >= MAX_DEFERRED {
            Reply::new(
                ReplyCode::FILE_BUSY,
                "Transfer in progress; too many queued commands, this one was dropped.",
            )
            .encode(out);
        } else {
            deferred.push_back(frame);
        }
    }

    /// QUIT while a transfer runs (see the ordering rules in the driver):
    /// the transfer goes on to its end; the 221 goes out now during an
    /// upload, after the final reply during a download.
    async fn quit(&mut self, frame: Frame, out: &mut Vec<u8>) {
        let reply = match self.core.handle(frame).await {
            super::Step::Close(r) | super::Step::Reply(r) => r,
            // QUIT only ever closes; anything else would be a core bug,
            // and closing is still the safe answer.
            _ => Reply::new(ReplyCode::CLOSING, "Goodbye."),
        };
        self.closing = true;
        match &self.transfer {
            Some(t) if !t.upload => self.quit_after = Some(reply),
            _ => reply.encode(out),
        }
    }

    /// ABOR (RFC 959 section 4.1.3): 426 for the transfer it stops, then 226;
    /// with nothing to abort, 225.
    pub(super) async fn abort(&mut self, out: &mut Vec<u8>) {
        let last = match self.transfer.take() {
            Some(t) => {
                t.stop.stop(Cut::Client);
                t.job.await.encode(out);
                Reply::new(ReplyCode::TRANSFER_COMPLETE, "ABOR successful.")
            }
            None => Reply::new(ReplyCode::DATA_OPEN_NO_TRANSFER, "No transfer to abort."),
        };
        self.core.shared().events.emit(Event::Command {
            verb: "ABOR",
            code: last.code,
        });
        last.encode(out);
    }
}
