//! The transfer log (`log.xferlog`): one line per finished or failed file
//! transfer in the xferlog(5) format of wu-ftpd, vsftpd and ProFTPD, so
//! that the tools written for those servers read ours. A sink of
//! [`crate::events`]; listings are not file transfers and are left out.
//!
//! The file is opened (append, created if missing) before the privilege
//! drop, as the server's user (`server.rs` `open_xferlog`), and opened
//! again on SIGUSR1 (after logrotate has moved it away) by that same user.
//! A write error is logged once, until a write succeeds again, and never
//! fails a transfer.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use time::OffsetDateTime;
use tracing::{info, warn};

use crate::events::{Direction, Event, EventSink, TransferRecord};

/// The xferlog sink: the open file and where it lives.
#[derive(Debug)]
pub struct Xferlog {
    path: PathBuf,
    /// One `write` per line under the lock, so that sessions' lines never
    /// interleave; `O_APPEND` keeps them whole beside other writers too.
    file: Mutex<File>,
    /// A write has failed and was logged; the next failures are not.
    failing: AtomicBool,
}

impl Xferlog {
    /// Open (or create) the file for appending.
    pub fn open(path: &Path) -> std::io::Result<Xferlog> {
        Ok(Xferlog {
            path: path.to_owned(),
            file: Mutex::new(open_append(path)?),
            failing: AtomicBool::new(false),
        })
    }

    /// Where the log is written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Open the path again (SIGUSR1, after a rotation) and write there from
    /// now on. On an error the old file is kept.
    pub fn reopen(&self) -> std::io::Result<()> {
        let file = open_append(&self.path)?;
        *self.file.lock().unwrap_or_else(|e| e.into_inner()) = file;
        Ok(())
    }

    fn write_line(&self, line: &str) {
        let result = {
            let file = self.file.lock().unwrap_or_else(|e| e.into_inner());
            (&*file).write_all(line.as_bytes())
        };
        match result {
            Ok(()) => {
                if self.failing.swap(false, Ordering::Relaxed) {
                    info!(path = %self.path.display(), "xferlog writes succeed again");
                }
            }
            Err(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    warn!(
                        path = %self.path.display(),
                        error = %e,
                        "cannot write the xferlog; further failures are not logged until a write succeeds"
                    );
                }
            }
        }
    }
}

fn open_append(path: &Path) -> std::io::Result<File> {
    let mut o = std::fs::OpenOptions::new();
    o.append(true).create(true);
    #[cfg(unix)]
    {
        // User names and client addresses: not for everyone to read.
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o640);
    }
    o.open(path)
}

impl EventSink for Xferlog {
    fn event(&self, event: &Event<'_>) {
        if let Event::Transfer(t) = event {
            if let Some(l) = line(t, OffsetDateTime::now_utc()) {
                // A small append to a local file: quick enough for the
                // session's task, as the `tracing` lines are.
                self.write_line(&l);
            }
        }
    }
}

/// The xferlog(5) line of a transfer ending at `now`, with its newline;
/// `None` for a listing.
///
/// `current-time transfer-time remote-host file-size filename transfer-type
/// special-action-flag direction access-mode username service-name
/// authentication-method authenticated-user-id completion-status`
///
/// The time is ctime(3)'s form in UTC (the other servers write local
/// time; a server's log in UTC does not jump with daylight saving). The
/// transfer time is in whole seconds, rounded, and at least 1, as vsftpd
/// writes it. The size is the bytes that moved on the data connection
/// (after a REST, the rest of the file).
pub fn line(t: &TransferRecord, now: OffsetDateTime) -> Option<String> {
    let direction = match t.direction {
        Direction::Download => 'o',
        Direction::Upload => 'i',
        Direction::Listing => return None,
    };
    let secs = ((t.duration.as_millis() + 500) / 1000).max(1);
    let mut s = String::with_capacity(96 + t.path.len() + t.user.len());
    write_ctime(&mut s, now);
    let _ = write!(s, " {secs} {} {} ", t.peer.to_canonical(), t.bytes);
    push_field(&mut s, &t.path);
    let _ = write!(
        s,
        " {} _ {direction} {} ",
        if t.ascii { 'a' } else { 'b' },
        if t.anonymous { 'a' } else { 'r' },
    );
    push_field(&mut s, &t.user);
    let status = if t.outcome.is_ok() { 'c' } else { 'i' };
    let _ = writeln!(s, " ftp 0 * {status}");
    Some(s)
}

/// A field that comes from the client: every space and control character
/// becomes `_` (ProFTPD's rule), so that a name can neither add fields
/// nor start a line of its own.
fn push_field(out: &mut String, text: &str) {
    if text.is_empty() {
        out.push('_');
    }
    out.extend(text.chars().map(|c| {
        if c.is_whitespace() || c.is_control() {
            '_'
        } else {
            c
        }
    }));
}

/// ctime(3) without its newline: `Tue Dec  1 20:37:55 2026`.
fn write_ctime(out: &mut String, t: OffsetDateTime) {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let _ = write!(
        out,
        "{} {} {:>2} {:02}:{:02}:{:02} {}",
        DAYS[usize::from(t.weekday().number_days_from_monday())],
        portcullis_proto::listing::MONTHS[usize::from(u8::from(t.month()) - 1)],
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.year()
    );
}

#[cfg(test)]
mod tests;
