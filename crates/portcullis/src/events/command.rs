//! `action = "command"`: the hook's program run once per event, without a
//! shell, as the server's user: the event's fields in `PORTCULLIS_*`
//! variables (`PORTCULLIS_EVENT`, `PORTCULLIS_PATH`, ...), its JSON on
//! stdin. Exit status 0 is delivered; another status, a program that
//! cannot start or one still running at `timeout` (then killed, with
//! every process it started: it runs in a process group of its own) is a
//! failed attempt, retried as an http hook's.

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

use super::payload::Payload;
use crate::options::CommandHook;

/// A command hook's runner.
#[derive(Debug)]
pub struct Runner {
    hook: CommandHook,
}

impl Runner {
    pub fn new(hook: CommandHook) -> Self {
        Runner { hook }
    }

    /// One attempt.
    pub async fn run(&self, p: &Payload) -> Result<(), String> {
        let (status, _) = self.exec(p).await?;
        match status.success() {
            true => Ok(()),
            false => Err(format!("{}: {status}", self.hook.argv[0])),
        }
    }

    /// A pre-action's question: exit 0 allows, exit 1 refuses with the
    /// first line of its output; any other end is the hook's failure.
    pub async fn ask(&self, p: &Payload) -> Result<super::hooks::Answer, String> {
        use super::hooks::Answer;
        let (status, out) = self.exec(p).await?;
        match status.code() {
            Some(0) => Ok(Answer::Allow),
            Some(1) => Ok(Answer::Refuse(String::from_utf8_lossy(&out).into_owned())),
            _ => Err(format!("{}: {status}", self.hook.argv[0])),
        }
    }

    /// Run the program once: its status and (up to 4 KiB of) its output.
    /// The program leads a process group of its own; one still running at
    /// the timeout, or when the server stops waiting for it, is killed
    /// with the whole group, so what it started in turn does not outlive
    /// it. What a program that ended in time left running is its own.
    async fn exec(&self, p: &Payload) -> Result<(std::process::ExitStatus, Vec<u8>), String> {
        let program = &self.hook.argv[0];
        let mut child = tokio::process::Command::new(program)
            .args(&self.hook.argv[1..])
            // Only what the hook is given, and a PATH for its own use.
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .envs(p.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            // A timeout drops the child: it is killed, not left behind.
            .kill_on_drop(true)
            .process_group(0)
            .spawn()
            .map_err(|e| format!("{program}: {e}"))?;
        let mut group = KillGroup(child.id());
        let mut stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let body = p.body.clone();
        let work = async move {
            if let Some(mut s) = stdin.take() {
                // A program that does not read its input is not a failure.
                let _ = s.write_all(&body).await;
            }
            let mut out = Vec::new();
            if let Some(s) = stdout {
                use tokio::io::AsyncReadExt;
                let _ = s.take(4096).read_to_end(&mut out).await;
            }
            child.wait().await.map(|status| (status, out))
        };
        match tokio::time::timeout(self.hook.timeout, work).await {
            Err(_) => Err(format!(
                "{program}: still running after {:?}, killed",
                self.hook.timeout
            )),
            Ok(Err(e)) => Err(format!("{program}: {e}")),
            Ok(Ok(done)) => {
                // Ended in time: nothing to kill.
                group.0 = None;
                Ok(done)
            }
        }
    }
}

/// Kills the process group of a command hook's program when dropped,
/// unless the program was seen to end.
struct KillGroup(Option<u32>);

impl Drop for KillGroup {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.and_then(|p| i32::try_from(p).ok()) {
            // ESRCH: the group has already gone.
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pgid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}
