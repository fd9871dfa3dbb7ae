//! The server's side of the PAM helper ([`super::helper`]): starting it
//! before the privilege drop, and asking it questions from the sessions.
//!
//! The helper is the server's own binary run again (`current_exe()
//! pam-helper`), with one end of a socket pair as its standard input and
//! output; the other end stays here. It is started once per process (a
//! reload cannot start one: the server is no longer root), and kept in
//! [`HELPER`]. The socket becomes a tokio stream at the first login (the
//! runtime does not exist before the drop); one task writes the requests,
//! each line whole, and one reads the answers and hands each to the
//! session waiting for its `id`. When the helper dies,
//! that task fails every waiting login and every later one with
//! [`AuthError::Backend`] (421, not counted toward a ban), and says so in
//! the log once.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::{oneshot, Semaphore};

use super::protocol::{Answer, Ask, Outcome, Request, MAX_LINE};
use crate::auth::AuthError;

/// Questions in flight at once; more wait here (within their timeout).
const IN_FLIGHT: usize = 64;

/// The helper of this process, once started.
static HELPER: OnceLock<Helper> = OnceLock::new();

struct Helper {
    pid: u32,
    child: Arc<Mutex<Child>>,
    /// The server's end until the first login takes it.
    stream: Mutex<Option<UnixStream>>,
    client: tokio::sync::OnceCell<Client>,
}

/// Start the helper (before the privilege drop; a second call does
/// nothing). Its pid is logged, with the words the tests wait for.
pub fn start(workers: usize) -> Result<(), String> {
    if HELPER.get().is_some() {
        return Ok(());
    }
    let exe = std::env::current_exe().map_err(|e| format!("auth.pam: the server's binary: {e}"))?;
    let (ours, theirs) =
        UnixStream::pair().map_err(|e| format!("auth.pam: a socket pair for the helper: {e}"))?;
    let out = theirs
        .try_clone()
        .map_err(|e| format!("auth.pam: a socket pair for the helper: {e}"))?;
    let child = Command::new(exe)
        .args(["pam-helper", "--workers", &workers.to_string()])
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::from(OwnedFd::from(theirs)))
        .stdout(Stdio::from(OwnedFd::from(out)))
        .stderr(Stdio::inherit())
        // Its own process group: a ^C for the server's terminal is the
        // server's to handle (it drains), not the helper's.
        .process_group(0)
        .spawn()
        .map_err(|e| format!("auth.pam: cannot start the PAM helper: {e}"))?;
    let pid = child.id();
    tracing::info!(pid, workers, "PAM helper started");
    let _ = HELPER.set(Helper {
        pid,
        child: Arc::new(Mutex::new(child)),
        stream: Mutex::new(Some(ours)),
        client: tokio::sync::OnceCell::new(),
    });
    Ok(())
}

/// Whether [`start`] has run in this process.
pub fn started() -> bool {
    HELPER.get().is_some()
}

/// Ask the helper; the whole question, waiting for a slot included, must
/// be answered within `limit`.
pub async fn ask(ask: Ask, limit: Duration) -> Result<Outcome, AuthError> {
    let helper = HELPER
        .get()
        .ok_or_else(|| AuthError::Backend("the PAM helper was not started".into()))?;
    let client = helper
        .client
        .get_or_try_init(|| async { Client::connect(helper) })
        .await?;
    match tokio::time::timeout(limit, client.ask(ask)).await {
        Ok(answer) => answer,
        Err(_) => Err(AuthError::Backend(format!(
            "the PAM helper gave no answer within {}",
            humantime::format_duration(limit)
        ))),
    }
}

type Waiting = HashMap<u64, oneshot::Sender<Outcome>>;

struct Client {
    /// Request lines for the writer task, which writes each whole: a
    /// login that gives up (its timeout) cannot cut a line in two.
    lines: tokio::sync::mpsc::Sender<Vec<u8>>,
    /// `None` once the helper is gone.
    waiting: Arc<Mutex<Option<Waiting>>>,
    next: AtomicU64,
    slots: Semaphore,
}

impl Client {
    fn connect(helper: &Helper) -> Result<Client, AuthError> {
        let gone = |e: String| AuthError::Backend(format!("the PAM helper's socket: {e}"));
        let std = helper
            .stream
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| gone("already taken".into()))?;
        std.set_nonblocking(true).map_err(|e| gone(e.to_string()))?;
        let stream = tokio::net::UnixStream::from_std(std).map_err(|e| gone(e.to_string()))?;
        let (read, mut write) = stream.into_split();
        let (lines, mut queued) = tokio::sync::mpsc::channel::<Vec<u8>>(IN_FLIGHT);
        tokio::spawn(async move {
            while let Some(line) = queued.recv().await {
                if write.write_all(&line).await.is_err() {
                    // The reader sees the helper go and says so.
                    return;
                }
            }
        });
        let waiting = Arc::new(Mutex::new(Some(Waiting::new())));
        tokio::spawn(read_answers(
            read,
            waiting.clone(),
            helper.pid,
            helper.child.clone(),
        ));
        Ok(Client {
            lines,
            waiting,
            next: AtomicU64::new(1),
            slots: Semaphore::new(IN_FLIGHT),
        })
    }

    async fn ask(&self, ask: Ask) -> Result<Outcome, AuthError> {
        let exited = || AuthError::Backend("the PAM helper has exited".into());
        let _slot = self.slots.acquire().await.map_err(|_| exited())?;
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        match &mut *self.waiting.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(w) => w.insert(id, tx),
            None => return Err(exited()),
        };
        // Forgotten again however this ends (a timeout drops the future).
        let _forget = Forget(&self.waiting, id);
        let mut line = serde_json::to_vec(&Request { id, ask })
            .map_err(|e| AuthError::Backend(format!("the PAM helper's request: {e}")))?;
        line.push(b'\n');
        self.lines.send(line).await.map_err(|_| exited())?;
        rx.await.map_err(|_| exited())
    }
}

struct Forget<'a>(&'a Mutex<Option<Waiting>>, u64);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        if let Some(w) = &mut *self.0.lock().unwrap_or_else(|p| p.into_inner()) {
            w.remove(&self.1);
        }
    }
}

/// Hand each answer to its question until the helper's end closes; then
/// fail every question waiting and those to come.
async fn read_answers(
    read: tokio::net::unix::OwnedReadHalf,
    waiting: Arc<Mutex<Option<Waiting>>>,
    pid: u32,
    child: Arc<Mutex<Child>>,
) {
    let mut lines = tokio::io::BufReader::with_capacity(MAX_LINE, read).lines();
    let why = loop {
        match lines.next_line().await {
            Ok(Some(line)) => match serde_json::from_str::<Answer>(&line) {
                Ok(a) => {
                    let tx = waiting
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .as_mut()
                        .and_then(|w| w.remove(&a.id));
                    if let Some(tx) = tx {
                        let _ = tx.send(a.outcome);
                    }
                }
                Err(e) => break format!("a malformed answer: {e}"),
            },
            Ok(None) => break "its socket closed".to_owned(),
            Err(e) => break format!("reading its answers: {e}"),
        }
    };
    // Dropping the senders fails every question waiting.
    waiting.lock().unwrap_or_else(|p| p.into_inner()).take();
    let status = tokio::task::spawn_blocking(move || {
        let mut child = child.lock().unwrap_or_else(|p| p.into_inner());
        // Reaped if it has exited (it is root: the server cannot kill it).
        for _ in 0..20 {
            if let Ok(Some(s)) = child.try_wait() {
                return s.to_string();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        "still running".to_owned()
    })
    .await
    .unwrap_or_default();
    tracing::error!(
        pid,
        status = %status,
        "the PAM helper has exited ({why}); PAM logins are answered 421 until the server is restarted"
    );
}
