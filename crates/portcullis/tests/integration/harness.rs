//! Starts the real server binary in a temporary directory with a generated
//! config file, learns its port from the "listening on" line it prints, and
//! kills it on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_portcullis");
pub const PASSWORD: &str = "s3cret pass";

/// A passive port range of `n` ports that no other server of this run
/// gets while it may still be running: ranges handed out in turn from
/// 62000-64899 (above Linux's ephemeral range, 32768-60999, so that a
/// client's outgoing connection cannot hold one of these ports; and below
/// the haproxy test's own 64900-64919), starting again at the bottom only
/// after some 145 servers.
pub fn passive_ports(n: u16) -> String {
    const FIRST: u16 = 62000;
    const SPAN: u16 = 64900 - FIRST;
    static NEXT: Mutex<u16> = Mutex::new(0);
    assert!((1..=SPAN).contains(&n), "{n} passive ports");
    let mut next = NEXT.lock().unwrap();
    if *next + n > SPAN {
        *next = 0;
    }
    let lo = FIRST + *next;
    *next += n;
    format!("{lo}-{}", lo + n - 1)
}

/// A test that cannot run for want of `what` (a tool, root, IPv6) passes
/// saying `SKIP <what>`, and names it in the file `PORTCULLIS_SKIPPED`
/// names, if set (`.ci/run` lists them at the end).
pub fn skip(what: &str) {
    eprintln!("SKIP {what}");
    if let Some(path) = std::env::var_os("PORTCULLIS_SKIPPED") {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path);
        if let Ok(mut f) = file {
            let _ = writeln!(f, "{what}");
        }
    }
}

/// Knobs the tests turn; rendered into a config file.
#[derive(Clone)]
pub struct Setup {
    pub passive: bool,
    pub active: bool,
    pub anonymous: bool,
    pub anon_upload: bool,
    pub idle_timeout: &'static str,
    pub accept_timeout: &'static str,
    pub passive_ports: String,
    pub extra_server: &'static str,
    pub listen: &'static str,
    /// Lines of a `[tls]` section (cert and key are generated and added);
    /// `None` for no FTPS.
    pub tls: Option<String>,
    /// Extra lines in alice's `[[users]]` entry.
    pub alice_extra: &'static str,
    /// Lines of the `[limits]` section.
    pub limits: &'static str,
    /// More lines of the `[passive]` section.
    pub extra_passive: &'static str,
    /// `server.user` to drop to (alice's root is then given to that user,
    /// as she may write); `None` sets `server.allow_root = true` (tests run
    /// as root in CI).
    pub run_as: Option<&'static str>,
    /// The umask the server is started with (by `sh -c 'umask ...'`);
    /// `None`: the test process's own.
    pub start_umask: Option<&'static str>,
    /// Write a transfer log (`log.xferlog`) to [`Server::xferlog`].
    pub xferlog: bool,
    /// `log.format`; `None`: the default (text).
    pub log_format: Option<&'static str>,
    /// Serve metrics on `127.0.0.1:0` ([`Server::metrics`]).
    pub metrics: bool,
    /// Pass the server's log through the harness, so that a test can wait
    /// for a line ([`Server::wait_for_log`]); otherwise it goes straight
    /// to the file.
    pub watch_log: bool,
    /// Whole sections appended to the file (e.g. `[proxy_protocol]`).
    pub sections: &'static str,
    /// Environment variables for the server (e.g. `NOTIFY_SOCKET`); the
    /// harness removes `NOTIFY_SOCKET` otherwise, so that a test run
    /// under systemd does not notify it.
    pub env: Vec<(&'static str, String)>,
    /// `server.failed_login_delay` (short by default, to keep tests quick).
    pub failed_login_delay: &'static str,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            passive: true,
            active: true,
            anonymous: true,
            anon_upload: false,
            idle_timeout: "300s",
            accept_timeout: "10s",
            passive_ports: passive_ports(20),
            extra_server: "",
            listen: "127.0.0.1:0",
            tls: None,
            alice_extra: "",
            limits: "",
            extra_passive: "",
            run_as: None,
            start_umask: None,
            xferlog: false,
            log_format: None,
            metrics: false,
            watch_log: false,
            sections: "",
            env: Vec::new(),
            failed_login_delay: "50ms",
        }
    }
}

/// A running server.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    /// alice's root (all permissions).
    pub alice: PathBuf,
    /// bob's root (read-only).
    pub bob: PathBuf,
    /// the anonymous root.
    pub anon: PathBuf,
    pub log: PathBuf,
    /// The implicit-TLS listener, when one is configured.
    pub implicit: Option<SocketAddr>,
    /// The server's certificate (PEM), when FTPS is on.
    pub cert: Option<PathBuf>,
    /// The metrics listener, when one is configured.
    pub metrics: Option<SocketAddr>,
    /// The control API's TCP listener (`control.listen`), when one is configured.
    pub control: Option<SocketAddr>,
    /// The log as read so far, and a signal for each new line (with
    /// [`Setup::watch_log`]).
    watched: Option<Arc<(Mutex<String>, Condvar)>>,
}

impl Server {
    /// Where `log.xferlog` points when [`Setup::xferlog`] is set.
    pub fn xferlog(&self) -> PathBuf {
        self.dir.path().join("log/xferlog")
    }
}

/// One argon2id hash of [`PASSWORD`], made once by `portcullis hash-password`.
pub fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        let mut child = Command::new(BIN)
            .arg("hash-password")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("run hash-password");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let h = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        assert!(h.starts_with("$argon2id$"), "unexpected hash {h}");
        h
    })
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(Setup::default())
    }

    pub fn start_with(s: Setup) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let alice = dir.path().join("alice");
        let bob = dir.path().join("bob");
        let anon = dir.path().join("pub");
        for d in [&alice, &bob, &anon] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(anon.join("readme.txt"), b"hello anonymous\n").unwrap();
        std::fs::write(bob.join("b.txt"), b"bob's file\n").unwrap();
        let hash = password_hash();
        let mut cert = None;
        let tls = match &s.tls {
            None => String::new(),
            Some(lines) => {
                let tls_dir = dir.path().join("tls");
                let out = Command::new(BIN)
                    .args(["gen-cert", "--host", "localhost", "--out"])
                    .arg(&tls_dir)
                    .output()
                    .unwrap();
                assert!(out.status.success(), "gen-cert failed: {out:?}");
                cert = Some(tls_dir.join("cert.pem"));
                format!(
                    "[tls]\ncert = \"{}\"\nkey = \"{}\"\n{lines}\n",
                    tls_dir.join("cert.pem").display(),
                    tls_dir.join("key.pem").display()
                )
            }
        };
        let toml = format!(
            r#"
[server]
listen = ["{listen}"]
idle_timeout = "{idle}"
failed_login_delay = "{delay}"
{privileges}
{extra}

[passive]
enabled = {passive}
{ports}
accept_timeout = "{accept}"
{extra_passive}

[active]
enabled = {active}
source_port = 0

[limits]
{limits}

[anonymous]
enabled = {anonymous}
root = "{anon}"
upload = {anon_upload}

[[users]]
name = "alice"
password_hash = "{hash}"
root = "{alice}"
permissions = ["read", "write", "overwrite", "delete", "rename", "mkdir"]
{alice_extra}

[[users]]
name = "bob"
password_hash = "{hash}"
root = "{bob}"
permissions = ["read"]

{tls}
{log}
{metrics}
{sections}
"#,
            // No test server binds the package's default control socket
            // (/run/portcullis/control.sock), unless it asks for one.
            sections = match s.sections.contains("[control]") {
                true => s.sections.to_owned(),
                false => format!("{}\n[control]\nsocket = \"\"\n", s.sections),
            },
            delay = s.failed_login_delay,
            listen = s.listen,
            idle = s.idle_timeout,
            extra = s.extra_server,
            passive = s.passive,
            // Empty: no `ports` line (for `single_port`).
            ports = match s.passive_ports.as_str() {
                "" => String::new(),
                p => format!("ports = \"{p}\""),
            },
            accept = s.accept_timeout,
            active = s.active,
            anonymous = s.anonymous,
            anon = anon.display(),
            anon_upload = s.anon_upload,
            alice = alice.display(),
            bob = bob.display(),
            alice_extra = s.alice_extra,
            limits = s.limits,
            extra_passive = s.extra_passive,
            log = {
                let mut l = String::from("[log]\n");
                if s.xferlog {
                    // In a directory of its own, which the server's user
                    // may write (a reopen after a rotation creates the file).
                    let logs = dir.path().join("log");
                    std::fs::create_dir_all(&logs).unwrap();
                    let x = logs.join("xferlog");
                    l.push_str(&format!("xferlog = \"{}\"\n", x.display()));
                }
                if let Some(f) = s.log_format {
                    l.push_str(&format!("format = \"{f}\"\n"));
                }
                l
            },
            metrics = if s.metrics {
                "[metrics]\nlisten = \"127.0.0.1:0\""
            } else {
                ""
            },
            privileges = match s.run_as {
                Some(u) => format!("user = \"{u}\""),
                None => "allow_root = true".to_owned(),
            },
        );
        let config = dir.path().join("portcullis.toml");
        std::fs::write(&config, toml).unwrap();
        if let Some(user) = s.run_as {
            let logs = dir.path().join("log");
            if s.xferlog {
                let ok = Command::new("chown").arg(user).arg(&logs).status();
                assert!(ok.unwrap().success(), "chown {user} {}", logs.display());
            }
            let ok = Command::new("chown")
                .arg(user)
                .arg(&alice)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown {user} {}", alice.display());
        }
        let mut server = Self::spawn(
            dir,
            &config,
            [alice, bob, anon],
            s.start_umask,
            s.watch_log,
            &s.env,
        );
        server.cert = cert;
        server
    }

    /// Start with a config file the test wrote itself (in `dir`); the
    /// alice/bob/anon paths then point into `dir` and mean nothing.
    pub fn start_from_config(dir: tempfile::TempDir, config: &Path) -> Server {
        let p = dir.path().to_owned();
        Self::spawn(dir, config, [p.clone(), p.clone(), p], None, false, &[])
    }

    /// The same, with environment variables for the server, its log
    /// watched ([`Server::wait_for_log`]).
    pub fn start_from_config_env(
        dir: tempfile::TempDir,
        config: &Path,
        env: &[(&'static str, String)],
    ) -> Server {
        let p = dir.path().to_owned();
        Self::spawn(dir, config, [p.clone(), p.clone(), p], None, true, env)
    }

    fn spawn(
        dir: tempfile::TempDir,
        config: &Path,
        [alice, bob, anon]: [PathBuf; 3],
        umask: Option<&str>,
        watch_log: bool,
        env: &[(&'static str, String)],
    ) -> Server {
        let log = dir.path().join("server.log");
        let log_file = std::fs::File::create(&log).unwrap();
        let mut command = match umask {
            // exec: the child is the server itself, not a shell.
            Some(m) => {
                let mut c = Command::new("sh");
                c.args(["-c", &format!("umask {m} && exec \"$0\" \"$@\""), BIN]);
                c
            }
            None => Command::new(BIN),
        };
        let mut child = command
            .args(["serve", "--config"])
            .arg(config)
            .env("PORTCULLIS_LOG", "debug")
            .env_remove("NOTIFY_SOCKET")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(if watch_log {
                Stdio::piped()
            } else {
                Stdio::from(log_file.try_clone().unwrap())
            })
            .spawn()
            .expect("start portcullis");
        let watched = child.stderr.take().map(|stderr| {
            let watched = Arc::new((Mutex::new(String::new()), Condvar::new()));
            let w = watched.clone();
            let mut file = log_file;
            std::thread::spawn(move || {
                let mut lines = BufReader::new(stderr);
                let mut line = String::new();
                while lines.read_line(&mut line).unwrap_or(0) > 0 {
                    let _ = file.write_all(line.as_bytes());
                    w.0.lock().unwrap().push_str(&line);
                    w.1.notify_all();
                    line.clear();
                }
            });
            watched
        });
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout);
        let mut addr = None;
        let mut implicit = None;
        let mut metrics = None;
        let mut control = None;
        let mut line = String::new();
        // The "listening on" lines come first; "passive mode" follows them.
        while lines.read_line(&mut line).unwrap_or(0) > 0 {
            if let Some(rest) = line.trim().split("listening on ").nth(1) {
                match rest.strip_suffix(" (implicit TLS)") {
                    Some(a) => implicit = Some(a.parse().expect("listen address")),
                    None => addr = Some(rest.parse().expect("listen address")),
                }
            }
            if let Some(rest) = line.trim().strip_prefix("metrics at http://") {
                let a = rest.split('/').next().unwrap_or_default();
                metrics = Some(a.parse().expect("metrics address"));
            }
            if let Some(rest) = line.trim().strip_prefix("control API at https://") {
                let a = rest.split('/').next().unwrap_or_default();
                control = Some(a.parse().expect("control address"));
            }
            if line.starts_with("passive mode") {
                break;
            }
            line.clear();
        }
        let addr = match addr {
            Some(a) => a,
            None => {
                let _ = child.kill();
                panic!(
                    "server did not start: {}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            let mut sink = Vec::new();
            let _ = lines.read_to_end(&mut sink);
        });
        Server {
            child,
            addr,
            dir,
            alice,
            bob,
            anon,
            log,
            implicit,
            cert: None,
            metrics,
            control,
            watched,
        }
    }

    /// The config file the server was started with.
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("portcullis.toml")
    }

    /// Wait until the log has `needle` in a line that came after the first
    /// `skip` occurrences, at most `limit`; the log so far. Needs
    /// [`Setup::watch_log`].
    pub fn wait_for_log(&self, needle: &str, skip: usize, limit: Duration) -> String {
        let (text, cv) = &**self.watched.as_ref().expect("Setup::watch_log");
        let deadline = std::time::Instant::now() + limit;
        let mut log = text.lock().unwrap();
        while log.matches(needle).count() <= skip {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(
                !left.is_zero(),
                "no {needle:?} in the log within {limit:?}:\n{log}"
            );
            log = cv.wait_timeout(log, left).unwrap().0;
        }
        log.clone()
    }

    /// Wait for the server to exit by itself, at most `limit` (then it is
    /// killed, and the status says so).
    pub fn exit_within(&mut self, limit: Duration) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(limit) {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
        });
        let status = self.child.wait().expect("wait for the server");
        drop(done);
        let _ = watchdog.join();
        status
    }

    /// The server process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send a signal ("HUP", "TERM", ...) to the server process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// ftp://user:password@host:port/ for command-line clients.
    pub fn url(&self, user: &str) -> String {
        format!(
            "ftp://{user}:{}@{}/",
            PASSWORD.replace(' ', "%20"),
            self.addr
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw control connection, for exact-byte assertions.
pub struct Raw {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        let mut r = Raw { stream, reader };
        let greeting = r.reply();
        assert!(greeting.starts_with("220 "), "{greeting}");
        r
    }

    /// Go on with a control connection opened elsewhere (no greeting read).
    pub fn from_stream(stream: TcpStream) -> Raw {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Raw { stream, reader }
    }

    /// Connect and log in as `user`.
    pub fn login(addr: SocketAddr, user: &str) -> Raw {
        let mut r = Raw::connect(addr);
        assert!(r.cmd(&format!("USER {user}")).starts_with("331 "));
        let pass = if user == "anonymous" {
            "me@example.org"
        } else {
            PASSWORD
        };
        let reply = r.cmd(&format!("PASS {pass}"));
        assert!(reply.starts_with("230 "), "{reply}");
        r
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Send one command line and read the complete reply.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Read one complete (possibly multi-line) reply, lines joined with "\n".
    pub fn reply(&mut self) -> String {
        let mut first = String::new();
        self.reader.read_line(&mut first).expect("read reply");
        assert!(
            first.ends_with("\r\n"),
            "reply line without CRLF: {first:?}"
        );
        let mut all = first.trim_end().to_owned();
        if first.len() >= 4 && &first[3..4] == "-" {
            let end = format!("{} ", &first[..3]);
            loop {
                let mut l = String::new();
                if self.reader.read_line(&mut l).unwrap() == 0 {
                    panic!("connection closed inside a multi-line reply: {all}");
                }
                all.push('\n');
                all.push_str(l.trim_end_matches(['\r', '\n']));
                if l.starts_with(&end) {
                    break;
                }
            }
        }
        all
    }

    /// True when the server has closed the connection.
    pub fn closed(&mut self) -> bool {
        let mut l = String::new();
        matches!(self.reader.read_line(&mut l), Ok(0))
    }

    /// PASV, then connect to the advertised port.
    pub fn pasv(&mut self) -> TcpStream {
        let r = self.cmd("PASV");
        assert!(r.starts_with("227 "), "{r}");
        let inner = &r[r.find('(').unwrap() + 1..r.find(')').unwrap()];
        let n: Vec<u16> = inner.split(',').map(|x| x.parse().unwrap()).collect();
        let addr = format!("{}.{}.{}.{}:{}", n[0], n[1], n[2], n[3], n[4] * 256 + n[5]);
        TcpStream::connect(addr).unwrap()
    }

    /// EPSV, returning the port.
    pub fn epsv_port(&mut self) -> u16 {
        let r = self.cmd("EPSV");
        assert!(r.starts_with("229 "), "{r}");
        let inner = &r[r.find("(|||").unwrap() + 4..r.find("|)").unwrap()];
        inner.parse().unwrap()
    }
}

/// Upload `data` as `name` over a passive connection; the final reply.
pub fn stor(c: &mut Raw, name: &str, data: &[u8]) -> String {
    let mut d = c.pasv();
    let r = c.cmd(&format!("STOR {name}"));
    assert!(r.starts_with("150 "), "{r}");
    d.write_all(data).unwrap();
    drop(d);
    c.reply()
}

/// End a data connection with a reset (RST), not a close: SO_LINGER 0.
pub fn reset(s: TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
}

/// Read a data connection to its end.
pub fn read_all(mut s: TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    s.read_to_end(&mut v).unwrap();
    v
}

/// Deterministic pseudo-random bytes.
pub fn random_bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Python: `Reusing`, an `ftplib.FTP_TLS` whose data connections resume
/// the control connection's TLS session (plain `FTP_TLS` does not; lftp
/// and FileZilla do), for scripts that start with it.
pub const PY_REUSING_FTP_TLS: &str = r#"
import ftplib
class Reusing(ftplib.FTP_TLS):
    def ntransfercmd(self, cmd, rest=None):
        conn, size = ftplib.FTP.ntransfercmd(self, cmd, rest)
        if self._prot_p:
            conn = self.context.wrap_socket(conn, server_hostname=self.host, session=self.sock.session)
        return conn, size
"#;

/// All that a child started with a piped stderr wrote there (once it has
/// exited, or closed it).
pub fn stderr_of(child: &mut std::process::Child) -> String {
    use std::io::Read;
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    err
}
