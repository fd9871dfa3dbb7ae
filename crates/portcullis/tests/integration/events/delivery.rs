//! What the delivery does beyond a first answer: a download's event and
//! an upload's digest, the hook's own headers on the wire, `max_age`, a
//! pre-action whose receiver does not answer in time, without a spool,
//! the bounded queue and the shutdown grace, and deliveries over one
//! kept-alive connection.

use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::{check_signature, hook_section, metric, next, receiver, receiver_over, start, Got};
use crate::harness::{read_all, stor, Raw, Server, Setup};

/// `download` fires after a RETR with its path and size; with
/// `limits.hash_on_upload = "sha256"`, an upload's event carries the
/// digest of what was stored; the hook's `headers` are on each request.
#[test]
fn download_events_upload_digests_and_the_hooks_headers() {
    use sha2::Digest;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let rx = receiver(listener, Vec::new());
    let server = Server::start_with(Setup {
        sections: Box::leak(
            hook_section(
                "both",
                &url,
                "\"upload\", \"download\"",
                "headers = { Authorization = \"Bearer t0ken\", X-Queue = \"ingest\" }",
            )
            .into_boxed_str(),
        ),
        limits: "hash_on_upload = \"sha256\"",
        ..Setup::default()
    });
    let data = crate::harness::random_bytes(70_000, 7);
    let mut c = Raw::login(server.addr, "alice");
    assert!(c.cmd("TYPE I").starts_with("200"));
    assert!(stor(&mut c, "d.bin", &data).starts_with("226"));
    let up = next(&rx);
    check_signature(&up);
    assert_eq!(up.json["event"], "upload");
    let want: String = sha2::Sha256::digest(&data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(up.json["sha256"], want.as_str(), "{}", up.body);
    let header = |g: &Got, name: &str| {
        g.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header(&up, "authorization").as_deref(),
        Some("Bearer t0ken")
    );
    assert_eq!(header(&up, "x-queue").as_deref(), Some("ingest"));
    let d = c.pasv();
    c.send(b"RETR d.bin\r\n");
    assert!(c.reply().starts_with("150"));
    assert_eq!(read_all(d), data);
    assert!(c.reply().starts_with("226"));
    let down = next(&rx);
    check_signature(&down);
    assert_eq!(down.json["event"], "download", "{}", down.body);
    assert_eq!(down.json["path"], "/d.bin");
    assert_eq!(down.json["size"], 70_000);
    assert_eq!(down.json["user"], "alice");
    assert_eq!(down.json["outcome"], "ok");
    assert_ne!(down.json["id"], up.json["id"]);
    assert_eq!(header(&down, "x-queue").as_deref(), Some("ingest"));
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
}

/// A receiver that accepts connections (the kernel's backlog does) and
/// never answers: the listener, kept open, and its URL.
fn silent() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/slow", l.local_addr().unwrap());
    (l, url)
}

/// A pre-action whose receiver takes the connection but does not answer
/// within the hook's `timeout` follows `on_failure` (deny, allow), after
/// that timeout and not much later; an event older than `max_age` is
/// dropped with its reason, however many attempts remain.
#[test]
fn a_silent_pre_action_follows_on_failure_and_max_age_drops() {
    let (_slow, url) = silent();
    let down: SocketAddr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let hooks = format!(
        "[[events.hooks]]\nname = \"strict\"\non = [\"pre_upload\"]\naction = \"http\"\n\
         url = \"{url}\"\ntimeout = \"400ms\"\n\
         [[events.hooks]]\nname = \"lenient\"\non = [\"pre_download\"]\naction = \"http\"\n\
         url = \"{url}\"\ntimeout = \"400ms\"\non_failure = \"allow\"\n\
         [[events.hooks]]\nname = \"old\"\non = [\"mkdir\"]\naction = \"http\"\n\
         url = \"http://{down}/\"\nretry_delay = \"50ms\"\nmax_attempts = 1000\nmax_age = \"400ms\"\n"
    );
    let server = start(hooks);
    let mut c = Raw::login(server.addr, "alice");
    std::fs::write(server.alice.join("f.txt"), b"kept").unwrap();
    let _data = c.pasv();
    let t = Instant::now();
    let r = c.cmd("STOR new.txt");
    let took = t.elapsed();
    assert_eq!(
        r,
        "550 Refused: the server could not check this operation; try again later."
    );
    assert!(took >= Duration::from_millis(350), "{took:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(!server.alice.join("new.txt").exists());
    let log = server.wait_for_log("refused (on_failure", 0, Duration::from_secs(10));
    assert!(log.contains("no answer within 400ms"), "{log}");
    let d = c.pasv();
    let t = Instant::now();
    c.send(b"RETR f.txt\r\n");
    assert!(c.reply().starts_with("150"));
    assert!(t.elapsed() >= Duration::from_millis(350));
    assert_eq!(read_all(d), b"kept");
    assert!(c.reply().starts_with("226"));
    server.wait_for_log("allowed (on_failure", 0, Duration::from_secs(10));
    // max_age: a receiver down, attempts left, the age reached.
    let t = Instant::now();
    assert!(c.cmd("MKD aged").starts_with("257"));
    let log = server.wait_for_log("hook event dropped", 0, Duration::from_secs(10));
    let line = log
        .lines()
        .find(|l| l.contains("hook event dropped"))
        .unwrap();
    assert!(line.contains("hook=\"old\""), "{line}");
    assert!(line.contains("older than max_age"), "{line}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let retried = metric(
        &server,
        "portcullis_hook_events_total{hook=\"old\",step=\"retried\"}",
    );
    let n: u64 = retried.rsplit(' ').next().unwrap().parse().unwrap();
    // 400 ms at 50, 100, 200 ms: a few attempts, far from 1000.
    assert!((1..10).contains(&n), "{retried}");
    let dropped = metric(
        &server,
        "portcullis_hook_events_total{hook=\"old\",step=\"dropped\"}",
    );
    assert!(dropped.ends_with(" 1"), "{dropped}");
}

/// Without a spool: `queue = 2` and one delivery at once (held by the
/// receiver) keep three events; the fourth and fifth are dropped, counted
/// and logged. SIGTERM then waits for the queue within the grace (two
/// more are delivered after it), and what is still undelivered when the
/// grace ends is dropped, counted and logged; the server exits then.
#[test]
fn the_queue_is_bounded_and_the_shutdown_grace_waits_for_it() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (release, gate) = mpsc::channel();
    let rx = receiver_over(listener, Vec::new(), None, Some(gate));
    let mut server = Server::start_with(Setup {
        sections: Box::leak(
            // Held requests are not timed out during the test.
            hook_section("q", &url, "\"upload\"", "queue = 2\nconcurrency = 1")
                .replace("timeout = \"2s\"", "timeout = \"30s\"")
                .into_boxed_str(),
        ),
        extra_server: "shutdown_grace = \"3s\"",
        watch_log: true,
        metrics: true,
        ..Setup::default()
    });
    let mut c = Raw::login(server.addr, "alice");
    assert!(stor(&mut c, "f1", b"1").starts_with("226"));
    // Under way, held by the receiver: out of the queue.
    assert_eq!(next(&rx).json["path"], "/f1");
    for f in ["f2", "f3", "f4", "f5"] {
        assert!(stor(&mut c, f, b"x").starts_with("226"));
    }
    let log = server.wait_for_log("hook event dropped", 1, Duration::from_secs(10));
    let full: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("hook event dropped"))
        .collect();
    assert_eq!(full.len(), 2, "{log}");
    for l in &full {
        assert!(l.contains("the hook's queue is full"), "{l}");
        assert!(l.contains("hook=\"q\""), "{l}");
    }
    let dropped = |n: u64| {
        let m = metric(
            &server,
            "portcullis_hook_events_total{hook=\"q\",step=\"dropped\"}",
        );
        assert!(m.ends_with(&format!(" {n}")), "{m}");
    };
    dropped(2);
    assert!(c.cmd("QUIT").starts_with("221"));
    drop(c);
    let t = Instant::now();
    server.signal("TERM");
    // The grace: f1 delivered, then f2 comes and is delivered, then f3
    // comes and is held past its end.
    release.send(()).unwrap();
    assert_eq!(next(&rx).json["path"], "/f2");
    release.send(()).unwrap();
    assert_eq!(next(&rx).json["path"], "/f3");
    let log = server.wait_for_log(
        "still undelivered when the shutdown grace ended",
        0,
        Duration::from_secs(10),
    );
    let status = server.exit_within(Duration::from_secs(10));
    let took = t.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took >= Duration::from_millis(2500), "{took:?}");
    assert!(took < Duration::from_secs(8), "{took:?}");
    let grace: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("still undelivered when the shutdown grace ended"))
        .collect();
    assert_eq!(grace.len(), 1, "{log}");
    assert!(grace[0].contains("hook=\"q\""), "{}", grace[0]);
    // The two delivered during the grace, f1 and f2.
    let logged = server.log();
    assert_eq!(logged.matches("step=\"delivered\"").count(), 2, "{logged}");
    assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
}

/// A keep-alive receiver: HTTP/1.1 answers without `Connection: close`;
/// each connection closes itself (without a word) after `per_connection`
/// requests. Sends the test (connection number, event name) per request.
fn keep_alive_receiver(
    listener: TcpListener,
    per_connection: usize,
) -> mpsc::Receiver<(usize, String)> {
    use std::io::{BufRead, BufReader, Read, Write};
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (n, conn) in listener.incoming().enumerate() {
            let Ok(conn) = conn else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(20)));
                let mut reader = BufReader::new(conn);
                for _ in 0..per_connection {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0usize;
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
                    let conn = reader.get_mut();
                    let _ = conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n");
                    let _ = conn.flush();
                    let event = json["event"].as_str().unwrap_or_default().to_owned();
                    if tx.send((n, event)).is_err() {
                        return;
                    }
                }
            });
        }
    });
    rx
}

/// An http hook keeps its connection to the receiver alive: one
/// connection carries every delivery in turn. A receiver that closes a
/// kept-alive connection between two deliveries gets the next on a new
/// one, without a failed attempt.
#[test]
fn deliveries_reuse_one_kept_alive_connection() {
    let one = TcpListener::bind("127.0.0.1:0").unwrap();
    let two = TcpListener::bind("127.0.0.1:0").unwrap();
    let (url_one, url_two) = (
        format!("http://{}/hook", one.local_addr().unwrap()),
        format!("http://{}/hook", two.local_addr().unwrap()),
    );
    let rx_one = keep_alive_receiver(one, usize::MAX);
    let rx_two = keep_alive_receiver(two, 2);
    let server = start(
        hook_section("kept", &url_one, "\"upload\"", "concurrency = 1")
            + &hook_section("closed", &url_two, "\"upload\"", "concurrency = 1"),
    );
    let mut c = Raw::login(server.addr, "alice");
    for i in 0..5 {
        assert!(stor(&mut c, &format!("k{i}"), b"x").starts_with("226"));
        // Delivered before the next upload: each request finds the
        // connection idle (and, on `two`, sometimes closed).
        let (n, event) = rx_one.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!((n, event.as_str()), (0, "upload"), "delivery {i}");
        let (n, _) = rx_two.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(n, i / 2, "delivery {i} to the closing receiver");
        std::thread::sleep(Duration::from_millis(100));
    }
    let retried = metric(
        &server,
        "portcullis_hook_events_total{hook=\"closed\",step=\"retried\"}",
    );
    assert!(retried.is_empty() || retried.ends_with(" 0"), "{retried}");
}
