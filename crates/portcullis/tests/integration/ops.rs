//! Operations: /metrics checked by Prometheus's own `promtool` and against
//! the bytes the test moved, /health and /ready (answering while idle
//! connections crowd the listener; a warning for a listener past loopback), JSON log lines with the
//! session's fields, and the drain on SIGTERM (an upload in flight that
//! finishes and is committed; one cut when the grace runs out, and not
//! committed).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{random_bytes, read_all, Raw, Server, Setup};

/// One HTTP/1.1 GET; the status code and the body.
pub fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let code = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("status line: {head}"));
    (code, body.to_owned())
}

/// The value of the sample `series` (name and sorted labels as rendered).
pub fn value(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no sample {series} in\n{page}"))
}

/// `promtool check metrics` on `page`.
fn promtool_check(page: &str) {
    promtool(&["check", "metrics"], page);
}

/// promtool with `args` and `input` on its standard input; it must pass
/// (and for `check metrics` say nothing). Without promtool: a failure
/// under CI (.ci/run installs it), a loud skip elsewhere.
pub fn promtool(args: &[&str], input: &str) {
    let child = Command::new("promtool")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("cannot run promtool ({e}); apt-get install prometheus");
            crate::harness::skip("promtool");
            return;
        }
        Err(e) => panic!("promtool is needed under CI (apt-get install prometheus): {e}"),
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool {args:?} failed: {said}\n{input}"
    );
    if args == ["check", "metrics"] {
        // Lint problems are printed even when they are not errors.
        assert!(said.trim().is_empty(), "promtool: {said}");
    }
}

/// The book's metrics pages (the listener and its alert rules, and the
/// series): every `portcullis_...` series they name is in `page`, and the
/// alert rules pass `promtool check rules`.
fn check_book_against(page: &str) {
    let book = |p: &str| {
        std::fs::read_to_string(format!("{}/../../docs/src/{p}", env!("CARGO_MANIFEST_DIR")))
            .unwrap()
    };
    let chapter = book("configuration/metrics.md") + &book("reference/metrics.md");
    let chapter = chapter.as_str();
    let mut names: Vec<&str> = chapter
        .match_indices("portcullis_")
        .map(|(i, _)| {
            let rest = &chapter[i..];
            let end = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.len() >= 15, "{names:?}");
    for name in names {
        let typed = page.contains(&format!("# TYPE {name} "));
        let sampled = page
            .lines()
            .any(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")));
        assert!(
            typed || sampled,
            "the book names {name}, the server does not export it"
        );
    }
    let rules = chapter
        .split("```yaml\n")
        .find(|b| b.starts_with("groups:"))
        .and_then(|b| b.split("```").next())
        .expect("alert rules on the metrics page");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), rules).unwrap();
    promtool(&["check", "rules", &file.path().display().to_string()], "");
}

/// More idle connections to the metrics listener than it serves at once,
/// and more than may wait for their request head, held open: `/ready` and
/// `/health` still answer at once (the oldest idle connection makes room),
/// and so does `/metrics`.
#[test]
fn idle_connections_leave_health_and_ready_answerable() {
    let server = Server::start_with(Setup {
        metrics: true,
        ..Setup::default()
    });
    let http = server.metrics.expect("metrics listener announced");
    let mut idle: Vec<TcpStream> = (0..80).map(|_| TcpStream::connect(http).unwrap()).collect();
    // Some of them with half a request.
    for s in idle.iter_mut().step_by(4) {
        s.write_all(b"GET /ready HTTP/1.1\r\n").unwrap();
    }
    for _ in 0..3 {
        let started = std::time::Instant::now();
        assert_eq!(get(http, "/ready"), (200, "ready\n".into()));
        assert_eq!(get(http, "/health"), (200, "serving\n".into()));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(get(http, "/metrics").0, 200);
    drop(idle);
    // On loopback: no warning about the listener's address.
    assert!(!server.log().contains("is not a loopback address"));
}

/// The metrics page has no authentication: a listen address past loopback
/// gets a warning, in serve's log and from check-config.
#[test]
fn a_metrics_listener_past_loopback_is_warned_about() {
    let server = Server::start_with(Setup {
        sections: "[metrics]\nlisten = \"0.0.0.0:0\"\n",
        ..Setup::default()
    });
    let warning = "metrics.listen: 0.0.0.0:0 is not a loopback address";
    assert!(server.log().contains(warning), "{}", server.log());
    let out = crate::cli::check_config(&server.config());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains(&format!("warning: {warning}")), "{stdout}");
}

#[test]
fn metrics_count_the_transfers_made() {
    // A hook, so that its series are exported (at 0) as the book says.
    let server = Server::start_with(Setup {
        metrics: true,
        // A [cluster] whose Redis is not there (port 1): its two series
        // are exported, and the node serves from its own state.
        sections: "[[events.hooks]]\nname = \"audit\"\non = [\"mkdir\"]\n\
                   action = \"command\"\ncommand = [\"/bin/true\"]\n\
                   [cluster]\nredis = \"redis://127.0.0.1:1/0\"\n",
        // FTPS on, for the certificate's expiry gauge.
        tls: Some(String::new()),
        ..Setup::default()
    });
    let http = server.metrics.expect("metrics listener announced");
    assert_eq!(get(http, "/health"), (200, "serving\n".into()));
    assert_eq!(get(http, "/ready"), (200, "ready\n".into()));
    assert_eq!(get(http, "/nothing").0, 404);

    // A failed login, then alice: one upload, one download, one listing,
    // a command the server does not know, a PASV left waiting.
    let mut eve = Raw::connect(server.addr);
    assert!(eve.cmd("USER alice").starts_with("331 "));
    assert!(eve.cmd("PASS wrong").starts_with("530 "));
    assert!(eve.cmd("QUIT").starts_with("221 "));
    assert!(eve.closed());

    let mut c = Raw::login(server.addr, "alice");
    assert!(c.cmd("TYPE I").starts_with("200 "));
    let up_len = 1_234_567;
    let data = random_bytes(up_len, 17);
    let mut up = c.pasv();
    assert!(c.cmd("STOR m.bin").starts_with("150 "));
    up.write_all(&data).unwrap();
    drop(up);
    assert!(c.reply().starts_with("226 "));
    let down = c.pasv();
    assert!(c.cmd("RETR m.bin").starts_with("150 "));
    assert_eq!(read_all(down), data);
    assert!(c.reply().starts_with("226 "));
    let list = c.pasv();
    assert!(c.cmd("LIST").starts_with("150 "));
    let listing = read_all(list);
    assert!(c.reply().starts_with("226 "));
    assert!(c.cmd("FROBNICATE x").starts_with("5"));
    let nothing = c.pasv();
    assert!(c.cmd("RETR missing.bin").starts_with("550 "));
    drop(nothing);
    assert!(c.cmd("PASV").starts_with("227 "));

    let (code, page) = get(http, "/metrics");
    assert_eq!(code, 200);
    promtool_check(&page);
    let v = |s: &str| value(&page, s);
    assert_eq!(
        v("portcullis_received_bytes_total{mode=\"passive\",tls=\"no\"}"),
        up_len as f64
    );
    assert_eq!(
        v("portcullis_sent_bytes_total{mode=\"passive\",tls=\"no\"}"),
        (up_len + listing.len()) as f64
    );
    for (verb, dir) in [
        ("STOR", "upload"),
        ("RETR", "download"),
        ("LIST", "listing"),
    ] {
        let series = format!(
            "portcullis_transfers_total{{direction=\"{dir}\",mode=\"passive\",\
             outcome=\"ok\",tls=\"no\",verb=\"{verb}\"}}"
        );
        assert_eq!(v(&series), 1.0, "{series}");
        let count = format!("portcullis_transfer_duration_seconds_count{{direction=\"{dir}\"}}");
        assert_eq!(v(&count), 1.0, "{count}");
    }
    assert_eq!(v("portcullis_logins_total{outcome=\"ok\"}"), 1.0);
    assert_eq!(v("portcullis_logins_total{outcome=\"credentials\"}"), 1.0);
    assert_eq!(
        v("portcullis_sessions{listener=\"explicit\",tls=\"no\"}"),
        1.0
    );
    assert_eq!(v("portcullis_sessions_total{listener=\"explicit\"}"), 2.0);
    assert_eq!(
        v("portcullis_sessions_ended_total{listener=\"explicit\",tls=\"no\"}"),
        1.0
    );
    assert_eq!(
        v("portcullis_commands_total{class=\"5xx\",verb=\"other\"}"),
        1.0
    );
    assert_eq!(
        v("portcullis_commands_total{class=\"1xx\",verb=\"STOR\"}"),
        1.0
    );
    assert_eq!(
        v("portcullis_commands_total{class=\"2xx\",verb=\"PASV\"}"),
        5.0
    );
    assert_eq!(v("portcullis_passive_ports_in_use"), 1.0);
    assert_eq!(v("portcullis_passive_ports_exhausted_total"), 0.0);
    assert_eq!(
        v("portcullis_storage_errors_total{kind=\"not_found\"}"),
        1.0
    );
    assert_eq!(v("portcullis_config_last_reload_successful"), 1.0);
    // The harness's self-signed certificate (rcgen's) is valid for years.
    assert!(v("portcullis_tls_certificate_expiry_seconds") > 365.0 * 86400.0);
    // The hook heard nothing (no MKD), and its series are there at 0.
    for step in ["queued", "delivered", "retried", "dropped"] {
        let series = format!("portcullis_hook_events_total{{hook=\"audit\",step=\"{step}\"}}");
        assert_eq!(v(&series), 0.0, "{series}");
    }
    check_book_against(&page);
    crate::dashboard::check_against(&page);
    // Label values come from fixed sets: no user, path or address.
    for secret in ["alice", "m.bin", "127.0.0.1", "FROBNICATE"] {
        assert!(!page.contains(secret), "{secret} in\n{page}");
    }
    assert!(c.cmd("QUIT").starts_with("221 "));
}

#[test]
fn json_log_lines_carry_the_session_fields() {
    let server = Server::start_with(Setup {
        log_format: Some("json"),
        ..Setup::default()
    });
    let mut c = Raw::login(server.addr, "alice");
    let local = c.stream.local_addr().unwrap();
    let list = c.pasv();
    assert!(c.cmd("LIST").starts_with("150 "));
    read_all(list);
    assert!(c.reply().starts_with("226 "));
    assert!(c.cmd("QUIT").starts_with("221 "));
    assert!(c.closed());

    // The session's last line is written before its socket closes.
    let log = server.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    let message = |v: &serde_json::Value| v["fields"]["message"].as_str().map(str::to_owned);
    let find = |m: &str| {
        lines
            .iter()
            .find(|v| message(v).as_deref() == Some(m))
            .unwrap_or_else(|| panic!("no {m:?} line in\n{log}"))
    };
    for v in &lines {
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{v}");
    }
    let start = find("session start");
    let id = start["span"]["id"].as_str().expect("a session id");
    assert_eq!(start["span"]["peer"], local.to_string());
    let login = find("login");
    assert_eq!(login["fields"]["user"], "alice");
    let transfer = find("transfer");
    let end = find("session end");
    for v in [transfer, end] {
        assert_eq!(v["span"]["user"], "alice", "{v}");
        assert_eq!(v["span"]["peer"], local.to_string(), "{v}");
        assert_eq!(v["span"]["id"].as_str(), Some(id), "{v}");
    }
    assert_eq!(transfer["fields"]["verb"], "LIST");
}

/// alice's upload over PASV at `upload_rate`, written by a thread: the
/// control connection after its 150, and the writer.
fn slow_upload(
    server: &Server,
    name: &str,
    data: Vec<u8>,
) -> (Raw, std::thread::JoinHandle<std::io::Result<()>>) {
    let mut c = Raw::login(server.addr, "alice");
    assert!(c.cmd("TYPE I").starts_with("200 "));
    let mut up = c.pasv();
    let r = c.cmd(&format!("STOR {name}"));
    assert!(r.starts_with("150 "), "{r}");
    let writer = std::thread::spawn(move || {
        up.write_all(&data)?;
        up.shutdown(std::net::Shutdown::Write)
    });
    (c, writer)
}

#[test]
fn sigterm_drains_and_an_upload_in_flight_is_committed() {
    let mut server = Server::start_with(Setup {
        metrics: true,
        alice_extra: "upload_rate = \"40M\"",
        extra_server: "shutdown_grace = \"60s\"",
        ..Setup::default()
    });
    let http = server.metrics.unwrap();
    let mut idle = Raw::login(server.addr, "bob");
    // 100 MiB at 40 MiB/s: the upload is still running when the signal comes.
    let data = random_bytes(100 << 20, 5);
    let (mut c, writer) = slow_upload(&server, "big.bin", data.clone());

    server.signal("TERM");
    // The idle session is closed at once, and readiness goes.
    let r = idle.reply();
    assert!(r.starts_with("421 "), "{r}");
    assert!(idle.closed());
    assert_eq!(get(http, "/ready"), (503, "draining\n".into()));
    assert_eq!(get(http, "/health").0, 200);
    // The listeners were closed before the 421: no new session, while the
    // upload still runs.
    assert!(TcpStream::connect(server.addr).is_err(), "still listening");

    // The upload runs to its end, then its session is closed too.
    writer.join().unwrap().unwrap();
    let r = c.reply();
    assert!(r.starts_with("226 "), "{r}");
    let r = c.reply();
    assert!(r.starts_with("421 "), "{r}");
    assert!(c.closed());
    assert_eq!(std::fs::read(server.alice.join("big.bin")).unwrap(), data);
    let status = server.exit_within(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{status:?}\n{}", server.log());
    let log = server.log();
    assert!(log.contains("drained: every session has ended"), "{log}");
}

#[test]
fn an_upload_cut_by_the_grace_is_not_committed() {
    let left = cut_by_the_grace("64K", "shutdown_grace = \"1s\"");
    assert!(left.is_empty(), "not committed, nothing left: {left:?}");
}

#[test]
fn an_in_place_upload_cut_by_the_grace_keeps_what_was_written() {
    // 1 MiB/s: in the grace, more than the upload's buffers hold has been
    // written (what is still in them when the cut comes is not).
    let left = cut_by_the_grace("1M", "shutdown_grace = \"1s\"\natomic_uploads = false");
    let [(name, bytes)] = &left[..] else {
        panic!("one partial file: {left:?}")
    };
    assert_eq!(name, "cut.bin");
    assert!(
        !bytes.is_empty() && bytes.len() < 100 << 20,
        "a prefix: {} bytes",
        bytes.len()
    );
    assert_eq!(&bytes[..], &random_bytes(100 << 20, 9)[..bytes.len()]);
}

/// SIGTERM with a 1 s grace (in `server`, the `[server]` lines) during a
/// 100 MiB upload at `rate` (64K or 1M a second): minutes for the whole
/// file, far past the grace, and more than the sockets' buffers hold, so
/// the writer sees the cut. What alice's root holds then.
fn cut_by_the_grace(rate: &str, server: &'static str) -> Vec<(String, Vec<u8>)> {
    let alice: &'static str = Box::leak(format!("upload_rate = \"{rate}\"").into_boxed_str());
    let mut server = Server::start_with(Setup {
        alice_extra: alice,
        extra_server: server,
        ..Setup::default()
    });
    let (mut c, writer) = slow_upload(&server, "cut.bin", random_bytes(100 << 20, 9));
    server.signal("TERM");
    let r = c.reply();
    assert!(r.starts_with("426 "), "{r}");
    let r = c.reply();
    assert!(r.starts_with("421 "), "{r}");
    assert!(c.closed());
    // The writer ends with an error once the data connection is gone.
    assert!(writer.join().unwrap().is_err());
    let status = server.exit_within(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{status:?}\n{}", server.log());
    let log = server.log();
    assert!(log.contains("shutdown grace over"), "{log}");
    std::fs::read_dir(&server.alice)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            (name, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

#[test]
fn a_second_sigterm_cuts_at_once() {
    let mut server = Server::start_with(Setup {
        alice_extra: "upload_rate = \"64K\"",
        extra_server: "shutdown_grace = \"600s\"",
        ..Setup::default()
    });
    let mut idle = Raw::login(server.addr, "bob");
    let (mut c, writer) = slow_upload(&server, "cut.bin", random_bytes(16 << 20, 3));
    server.signal("TERM");
    // The drain has begun once the idle session is closed.
    assert!(idle.reply().starts_with("421 "));
    let started = std::time::Instant::now();
    server.signal("TERM");
    let r = c.reply();
    assert!(r.starts_with("426 "), "{r}");
    assert!(c.reply().starts_with("421 "));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "cut at once, not after the grace"
    );
    assert!(writer.join().unwrap().is_err());
    let status = server.exit_within(Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{status:?}\n{}", server.log());
    assert!(!server.alice.join("cut.bin").exists());
}
