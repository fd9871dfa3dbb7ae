//! What a line does while a transfer runs, decided once, here, by the
//! core ([`Core::during_transfer`]); the driver only carries the decision
//! out (`driver/running.rs`). ABOR, STAT and NOOP are answered at once,
//! QUIT closes once the transfer is over (its 221 now during an upload,
//! after the final reply during a download), and every other line waits
//! its turn, at most [`MAX_DEFERRED`] of them.

use portcullis_proto::command::Command;
use portcullis_proto::framing::Frame;
use portcullis_proto::reply::{Reply, ReplyCode};

use super::error::{reply_for, Phase, SessionError};
use super::{Core, Step};
use crate::events::Event;

/// Most commands a client may queue behind a running transfer.
pub(crate) const MAX_DEFERRED: usize = 32;

/// What the driver tells the core about the running transfer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Progress {
    /// The transfer's command (RETR, STOR, LIST, ...).
    pub verb: &'static str,
    /// Bytes moved so far.
    pub bytes: u64,
    /// The client sends (STOR, STOU, APPE).
    pub upload: bool,
    /// Lines already waiting behind the transfer.
    pub queued: usize,
}

/// What the driver does with a line that arrived during a transfer.
#[derive(Debug)]
pub(crate) enum During {
    /// Send this reply now (NOOP, STAT, or the refusal of one line too
    /// many).
    Reply(Reply),
    /// ABOR: stop the transfer (its 426, then 226).
    Abort,
    /// QUIT: nothing more is read; the transfer runs to its end. The 221
    /// goes out now (`now`: during an upload, some clients wait for it
    /// before closing the data connection) or after the transfer's final
    /// reply (during a download, some clients close the data connection
    /// when they read a reply during RETR).
    Quit { reply: Reply, now: bool },
    /// Run this line after the transfer's final reply, in order.
    Defer(Frame),
}

impl Core {
    /// Decide what `frame`, read while the transfer `t` runs, does.
    pub(crate) async fn during_transfer(&mut self, frame: Frame, t: &Progress) -> During {
        let cmd = match &frame {
            Frame::Line(line) => Command::parse(line).ok(),
            Frame::TooLong => None,
        };
        match cmd {
            Some(Command::Stat(None)) => {
                let lines = vec![
                    "Transfer status:".into(),
                    format!(" {} in progress, {} bytes transferred", t.verb, t.bytes),
                    "End of status".into(),
                ];
                let reply = Reply::multi(ReplyCode::SYSTEM_STATUS, lines);
                self.emit(Event::Command {
                    verb: "STAT",
                    code: reply.code,
                });
                During::Reply(reply)
            }
            // The same dispatch as between transfers: NOOP's reply, ABOR
            // (which also drops what PASV or PORT armed), QUIT's 221.
            // Behind deferred commands, QUIT waits its turn as they do.
            Some(Command::Noop | Command::Abor) => self.handle_now(frame, t).await,
            Some(Command::Quit) if t.queued == 0 => self.handle_now(frame, t).await,
            _ if t.queued >= MAX_DEFERRED => {
                During::Reply(reply_for(&SessionError::TooManyQueued, Phase::Command))
            }
            _ => During::Defer(frame),
        }
    }

    /// A line answered during the transfer through the one dispatch.
    async fn handle_now(&mut self, frame: Frame, t: &Progress) -> During {
        match self.handle(frame).await {
            Step::Abort => During::Abort,
            Step::Close(reply) => During::Quit {
                reply,
                now: t.upload,
            },
            Step::Reply(reply) => During::Reply(reply),
            // NOOP, ABOR and QUIT give none of these; were one to, closing
            // is the safe answer.
            Step::StartTls(..) | Step::EndTls(_) | Step::Transfer(_) | Step::Hash(_) => {
                During::Quit {
                    reply: Reply::new(ReplyCode::CLOSING, "Goodbye."),
                    now: t.upload,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::tests::{core, login};

    fn line(s: &str) -> Frame {
        Frame::Line(s.as_bytes().to_vec())
    }

    fn progress(upload: bool, queued: usize) -> Progress {
        Progress {
            verb: if upload { "STOR" } else { "RETR" },
            bytes: 42,
            upload,
            queued,
        }
    }

    fn code(d: &During) -> Option<u16> {
        match d {
            During::Reply(r) | During::Quit { reply: r, .. } => Some(r.code.0),
            During::Abort | During::Defer(_) => None,
        }
    }

    /// NOOP, STAT and ABOR at once, QUIT at once unless lines wait before
    /// it, the rest deferred up to the limit.
    #[tokio::test]
    async fn what_a_line_does_during_a_transfer() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = core(dir.path(), None);
        login(&mut c).await;
        let idle = progress(false, 0);
        let d = c.during_transfer(line("NOOP"), &idle).await;
        assert_eq!(code(&d), Some(200));
        match c.during_transfer(line("STAT"), &idle).await {
            During::Reply(r) => {
                assert_eq!(r.code, ReplyCode::SYSTEM_STATUS);
                assert_eq!(r.lines[1], " RETR in progress, 42 bytes transferred");
            }
            other => panic!("STAT gave {other:?}"),
        }
        // STAT of a path is a command like any other: it waits.
        let d = c.during_transfer(line("STAT /"), &idle).await;
        assert!(matches!(d, During::Defer(_)), "{d:?}");
        let d = c.during_transfer(line("ABOR"), &progress(false, 3)).await;
        assert!(matches!(d, During::Abort), "{d:?}");
        let d = c.during_transfer(line("PWD"), &idle).await;
        assert!(
            matches!(&d, During::Defer(Frame::Line(l)) if l == b"PWD"),
            "{d:?}"
        );
        let d = c.during_transfer(line("PWD"), &progress(false, 31)).await;
        assert!(matches!(d, During::Defer(_)), "{d:?}");
        let d = c
            .during_transfer(line("PWD"), &progress(false, MAX_DEFERRED))
            .await;
        assert_eq!(code(&d), Some(450));
        let d = c.during_transfer(Frame::TooLong, &idle).await;
        assert!(matches!(d, During::Defer(Frame::TooLong)), "{d:?}");
        // Behind queued lines, QUIT waits its turn.
        let d = c.during_transfer(line("QUIT"), &progress(true, 1)).await;
        assert!(matches!(d, During::Defer(_)), "{d:?}");
        match c.during_transfer(line("QUIT"), &progress(true, 0)).await {
            During::Quit { reply, now } => assert!(reply.code.0 == 221 && now),
            other => panic!("QUIT during an upload gave {other:?}"),
        }
        let mut c = core(dir.path(), None);
        login(&mut c).await;
        match c.during_transfer(line("QUIT"), &idle).await {
            During::Quit { reply, now } => assert!(reply.code.0 == 221 && !now),
            other => panic!("QUIT during a download gave {other:?}"),
        }
    }
}
