//! `[[events.hooks]]` with `action = "http"`: a real HTTP receiver started
//! by the test (std's TcpListener, one thread) gets each event's JSON,
//! checks its signature with its own HMAC, and answers what the test says
//! (500 to make the server retry).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::mpsc;
use std::time::Duration;

use crate::harness::{stor, Raw, Server, Setup};

mod command;
mod delivery;
mod example;
mod stores;

const SECRET: &str = "s3cret-for-tests";

/// One request the receiver got.
#[derive(Debug)]
struct Got {
    signature: Option<String>,
    /// Every header, its name in lower case.
    headers: Vec<(String, String)>,
    body: String,
    json: serde_json::Value,
}

/// A receiver on `listener`: answers the statuses of `answers` in turn
/// (then 200), sends each request to the test.
fn receiver(listener: TcpListener, answers: Vec<(u16, &'static str)>) -> mpsc::Receiver<Got> {
    receiver_over(listener, answers, None, None)
}

/// A connection the receiver reads a request from and answers on.
trait Stream: Read + Write {}
impl<T: Read + Write> Stream for T {}

/// [`receiver`], over TLS with `tls` (https://); with `gate`, each
/// request is sent to the test at once and answered only when the test
/// sends a `()` on the gate's other end (a delivery held as long as the
/// test wants).
fn receiver_over(
    listener: TcpListener,
    answers: Vec<(u16, &'static str)>,
    tls: Option<std::sync::Arc<rustls::ServerConfig>>,
    gate: Option<mpsc::Receiver<()>>,
) -> mpsc::Receiver<Got> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut answers = answers.into_iter();
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
            let conn: Box<dyn Stream> = match &tls {
                None => Box::new(conn),
                Some(config) => Box::new(rustls::StreamOwned::new(
                    rustls::ServerConnection::new(config.clone()).unwrap(),
                    conn,
                )),
            };
            let mut reader = BufReader::new(conn);
            let mut line = String::new();
            let (mut length, mut signature, mut headers) = (0usize, None, Vec::new());
            // A client that gave up (a failed handshake) is no request.
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                continue;
            }
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                let (name, value) = line.split_once(':').unwrap_or(("", ""));
                headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "x-portcullis-signature" => signature = Some(value.trim().to_owned()),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let body = String::from_utf8(body).unwrap();
            let json = serde_json::from_str(&body).expect("a JSON body");
            let got = Got {
                signature,
                headers,
                body,
                json,
            };
            // Held: the test hears of the request before it is answered.
            let got = match &gate {
                None => Some(got),
                Some(gate) => {
                    if tx.send(got).is_err() || gate.recv().is_err() {
                        return;
                    }
                    None
                }
            };
            let (status, text) = answers.next().unwrap_or((200, ""));
            let conn = reader.get_mut();
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
            let _ = conn.flush();
            if let Some(got) = got {
                if tx.send(got).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Check `X-Portcullis-Signature: t=..,v1=..` with our own HMAC.
fn check_signature(g: &Got) {
    use hmac::{Hmac, Mac};
    let sig = g.signature.as_deref().expect("a signature header");
    let (t, v1) = sig.split_once(",v1=").expect("t=..,v1=..");
    let t = t.strip_prefix("t=").expect("t=");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let t_num: u64 = t.parse().unwrap();
    assert!(now.abs_diff(t_num) < 60, "old timestamp {t}");
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{}", g.body).as_bytes());
    let want: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v1, want, "signature of {}", g.body);
}

fn hook_section(name: &str, url: &str, on: &str, extra: &str) -> String {
    format!(
        "[[events.hooks]]\nname = \"{name}\"\non = [{on}]\naction = \"http\"\n\
         url = \"{url}\"\nsecret = \"{SECRET}\"\nretry_delay = \"50ms\"\n\
         timeout = \"2s\"\n{extra}\n"
    )
}

fn start(sections: String) -> Server {
    Server::start_with(Setup {
        sections: Box::leak(sections.into_boxed_str()),
        extra_server: "node_name = \"node-a\"",
        watch_log: true,
        metrics: true,
        ..Setup::default()
    })
}

fn next(rx: &mpsc::Receiver<Got>) -> Got {
    rx.recv_timeout(Duration::from_secs(10))
        .expect("an event within 10 s")
}

fn metric(server: &Server, needle: &str) -> String {
    let addr = server.metrics.unwrap();
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(s, "GET /metrics HTTP/1.0\r\n\r\n").unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.lines()
        .filter(|l| l.starts_with(needle))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn signed_events_for_upload_rename_delete_with_their_paths() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let rx = receiver(listener, Vec::new());
    let on = "\"upload\", \"rename\", \"delete\", \"mkdir\", \"rmdir\", \"login\"";
    let server = start(hook_section("all", &url, on, ""));
    let mut c = Raw::login(server.addr, "alice");
    let login = next(&rx);
    check_signature(&login);
    assert_eq!(login.json["event"], "login");
    assert_eq!(login.json["user"], "alice");
    assert_eq!(login.json["node"], "node-a");
    assert_eq!(login.json["client"], "127.0.0.1");
    let session = login.json["session"].as_str().unwrap().to_owned();
    assert_eq!(session.len(), 16, "64 bits in hex: {session}");

    assert!(stor(&mut c, "a.txt", b"hello").starts_with("226"));
    let up = next(&rx);
    check_signature(&up);
    // The final name, never the temporary one the upload was written to.
    assert_eq!(up.json["event"], "upload");
    assert_eq!(up.json["path"], "/a.txt");
    assert_eq!(up.json["size"], 5);
    assert_eq!(up.json["outcome"], "ok");
    assert_eq!(up.json["session"], session.as_str());
    assert!(up.json["duration_ms"].is_u64());

    assert!(c.cmd("MKD d").starts_with("257"));
    assert!(c.cmd("RNFR a.txt").starts_with("350"));
    assert!(c.cmd("RNTO d/b.txt").starts_with("250"));
    assert!(c.cmd("DELE d/b.txt").starts_with("250"));
    assert!(c.cmd("RMD d").starts_with("250"));
    // A refused operation fires nothing.
    assert!(c.cmd("DELE nothing-here").starts_with("550"));
    let got: Vec<Got> = (0..4).map(|_| next(&rx)).collect();
    // Delivered concurrently: in any order.
    let find = |e: &str| {
        got.iter()
            .find(|g| g.json["event"] == e)
            .unwrap_or_else(|| panic!("no {e} in {got:?}"))
    };
    assert_eq!(find("mkdir").json["path"], "/d");
    let rename = find("rename");
    assert_eq!(rename.json["path"], "/a.txt");
    assert_eq!(rename.json["target"], "/d/b.txt");
    assert_eq!(find("delete").json["path"], "/d/b.txt");
    for g in &got {
        check_signature(g);
    }
    assert_eq!(find("rmdir").json["path"], "/d");
    // Ids are each event's own.
    let mut ids: Vec<_> = got.iter().map(|g| g.json["id"].clone()).collect();
    ids.extend([login.json["id"].clone(), up.json["id"].clone()]);
    ids.sort_by_key(|v| v.to_string());
    ids.dedup();
    assert_eq!(ids.len(), 6);
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    // The log is read by a thread of the harness: waited for, not read once.
    let ten = Duration::from_secs(10);
    server.wait_for_log("verb=\"DELE\" path=\"/d/b.txt\" code=250", 0, ten);
    server.wait_for_log("verb=\"DELE\" path=\"/nothing-here\" code=550", 0, ten);
    server.wait_for_log(&format!("id={session}"), 0, ten);
    let delivered = metric(
        &server,
        "portcullis_hook_events_total{hook=\"all\",step=\"delivered\"}",
    );
    assert!(delivered.ends_with(" 6"), "{delivered}");
}

#[test]
fn retried_after_500_until_delivered() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let rx = receiver(listener, vec![(500, ""), (503, "")]);
    let server = start(hook_section("flaky", &url, "\"upload\"", ""));
    let mut c = Raw::login(server.addr, "alice");
    assert!(stor(&mut c, "x.bin", b"12345678").starts_with("226"));
    let tries: Vec<Got> = (0..3).map(|_| next(&rx)).collect();
    assert!(tries.iter().all(|g| g.json["id"] == tries[0].json["id"]));
    server.wait_for_log("step=\"delivered\"", 0, Duration::from_secs(10));
    let retried = metric(
        &server,
        "portcullis_hook_events_total{hook=\"flaky\",step=\"retried\"}",
    );
    assert!(retried.ends_with(" 2"), "{retried}");
    server.wait_for_log(
        "hook delivery failed, will retry",
        0,
        Duration::from_secs(10),
    );
}

#[test]
fn a_receiver_down_for_a_while_gets_the_event_when_it_comes_back() {
    // A port with nothing listening: bound, noted, closed.
    let addr: SocketAddr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let url = format!("http://{addr}/hook");
    let server = start(hook_section(
        "later",
        &url,
        "\"upload\"",
        "max_attempts = 100",
    ));
    let mut c = Raw::login(server.addr, "alice");
    assert!(stor(&mut c, "late.txt", b"late").starts_with("226"));
    // Two refused connections, then the receiver comes up.
    server.wait_for_log("will retry", 1, Duration::from_secs(10));
    let rx = receiver(TcpListener::bind(addr).unwrap(), Vec::new());
    let g = next(&rx);
    check_signature(&g);
    assert_eq!(g.json["path"], "/late.txt");
}

#[test]
fn filters_and_a_failed_upload() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let rx = receiver(listener, Vec::new());
    let mut hook = hook_section(
        "csv",
        &url,
        "\"upload\"",
        "paths = [\"/in/**/*.csv\"]\nmin_size = 3\nusers = [\"alice\"]",
    );
    // Without min_size: the cut upload may have moved no byte yet.
    hook += &hook_section("failed", &url, "\"upload_failed\"", "");
    let server = start(hook);
    let mut c = Raw::login(server.addr, "alice");
    assert!(c.cmd("MKD in").starts_with("257"));
    assert!(c.cmd("MKD in/x").starts_with("257"));
    assert!(stor(&mut c, "in/x/no.txt", b"abcdef").starts_with("226"));
    assert!(stor(&mut c, "in/x/small.csv", b"ab").starts_with("226"));
    assert!(stor(&mut c, "top.csv", b"abcdef").starts_with("226"));
    assert!(stor(&mut c, "in/x/yes.csv", b"abcdef").starts_with("226"));
    let g = next(&rx);
    assert_eq!(g.json["path"], "/in/x/yes.csv");
    // An upload cut short: ABOR while the data connection is open.
    let data = c.pasv();
    c.send(b"STOR in/cut.csv\r\n");
    assert!(c.reply().starts_with("150"));
    (&data).write_all(b"partial").unwrap();
    c.send(b"ABOR\r\n");
    let _ = c.reply();
    drop(data);
    let g = next(&rx);
    assert_eq!(g.json["event"], "upload_failed");
    assert_eq!(g.json["path"], "/in/cut.csv");
    assert_ne!(g.json["outcome"], "ok");
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
}

#[test]
fn a_command_hook_gets_the_event_in_its_environment_and_on_stdin() {
    let out = tempfile::tempdir().unwrap();
    let dir = out.path().display();
    // The program is /bin/sh here only to write what it got; the server
    // runs argv as given, without a shell of its own.
    let script = format!(
        "cat > {dir}/$PORTCULLIS_ID.json && env | grep ^PORTCULLIS_ | sort > {dir}/$PORTCULLIS_ID.env"
    );
    let hook = format!(
        "[[events.hooks]]\nname = \"cmd\"\non = [\"upload\", \"rename\"]\naction = \"command\"\n\
         command = [\"/bin/sh\", \"-c\", {script:?}]\ntimeout = \"5s\"\nconcurrency = 1\n"
    );
    let server = start(hook);
    let mut c = Raw::login(server.addr, "alice");
    assert!(stor(&mut c, "cmd.txt", b"via command").starts_with("226"));
    assert!(c.cmd("RNFR cmd.txt").starts_with("350"));
    assert!(c.cmd("RNTO renamed.txt").starts_with("250"));
    server.wait_for_log("step=\"delivered\"", 1, Duration::from_secs(10));
    let mut envs = Vec::new();
    for e in std::fs::read_dir(out.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "env") {
            let env = std::fs::read_to_string(&p).unwrap();
            let json = std::fs::read_to_string(p.with_extension("json")).unwrap();
            let json: serde_json::Value = serde_json::from_str(&json).unwrap();
            envs.push((env, json));
        }
    }
    envs.sort_by_key(|(_, j)| j["event"].as_str().unwrap().to_owned());
    assert_eq!(envs.len(), 2, "{envs:?}");
    let (rename_env, rename) = &envs[0];
    assert_eq!(rename["event"], "rename");
    assert!(
        rename_env.contains("PORTCULLIS_PATH=/cmd.txt\n"),
        "{rename_env}"
    );
    assert!(rename_env.contains("PORTCULLIS_TARGET=/renamed.txt\n"));
    let (upload_env, upload) = &envs[1];
    assert_eq!(upload["path"], "/cmd.txt");
    assert_eq!(upload["size"], 11);
    assert!(
        upload_env.contains("PORTCULLIS_EVENT=upload\n"),
        "{upload_env}"
    );
    assert!(upload_env.contains("PORTCULLIS_SIZE=11\n"));
    assert!(upload_env.contains("PORTCULLIS_USER=alice\n"));
    assert!(upload_env.contains("PORTCULLIS_NODE=node-a\n"));
    assert!(upload_env.contains(&format!(
        "PORTCULLIS_ID={}\n",
        upload["id"].as_str().unwrap()
    )));
}

#[test]
fn pre_actions_refuse_with_the_hooks_text_or_on_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/ask", listener.local_addr().unwrap());
    // The first question is refused (with a second line and a control
    // character that must not reach the client), the second allowed.
    let rx = receiver(
        listener,
        vec![(403, "No \x07uploads to /locked today\r\n226 forged")],
    );
    let down: SocketAddr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let script =
        "case \"$PORTCULLIS_PATH\" in *.keep) echo \"$PORTCULLIS_PATH is kept\"; exit 1;; esac";
    let mut hooks = hook_section("ask", &url, "\"pre_upload\"", "paths = [\"/locked/**\"]");
    hooks += &hook_section(
        "gone",
        &format!("http://{down}/"),
        "\"pre_download\"",
        "paths = [\"/deny/**\"]",
    );
    hooks += &format!(
        "[[events.hooks]]\nname = \"keep\"\non = [\"pre_delete\"]\naction = \"command\"\n\
             command = [\"/bin/sh\", \"-c\", {script:?}]\n\
             [[events.hooks]]\nname = \"lenient\"\non = [\"pre_download\"]\naction = \"http\"\n\
             url = \"http://{down}/\"\non_failure = \"allow\"\npaths = [\"/allow/**\"]\n"
    );
    let server = start(hooks);
    let mut c = Raw::login(server.addr, "alice");
    for d in ["locked", "deny", "allow"] {
        assert!(c.cmd(&format!("MKD {d}")).starts_with("257"));
        std::fs::write(server.alice.join(d).join("f.keep"), b"x").unwrap();
    }
    // Refused before any data connection is used: the 550 has the
    // hook's first line, without its control character.
    let _data = c.pasv();
    let r = c.cmd("STOR locked/new.txt");
    assert_eq!(r, "550 No uploads to /locked today", "{r:?}");
    let q = next(&rx);
    check_signature(&q);
    assert_eq!(q.json["event"], "pre_upload");
    assert_eq!(q.json["path"], "/locked/new.txt");
    assert_eq!(q.json["user"], "alice");
    assert!(!server.alice.join("locked/new.txt").exists());
    // The next question is allowed.
    assert!(stor(&mut c, "locked/ok.txt", b"fine").starts_with("226"));
    assert_eq!(next(&rx).json["path"], "/locked/ok.txt");
    // A command refuses with its output (exit 1), allows with exit 0.
    let r = c.cmd("DELE allow/f.keep");
    assert_eq!(r, "550 /allow/f.keep is kept");
    assert!(server.alice.join("allow/f.keep").exists());
    std::fs::write(server.alice.join("allow/f.tmp"), b"x").unwrap();
    assert!(c.cmd("DELE allow/f.tmp").starts_with("250"));
    // A rename is no way around them: pre_delete is asked about the
    // source and about a target it replaces, pre_upload about the target.
    assert!(c.cmd("RNFR allow/f.keep").starts_with("350"));
    assert_eq!(c.cmd("RNTO allow/moved.txt"), "550 /allow/f.keep is kept");
    assert!(server.alice.join("allow/f.keep").exists());
    std::fs::write(server.alice.join("allow/x.tmp"), b"y").unwrap();
    assert!(c.cmd("RNFR allow/x.tmp").starts_with("350"));
    assert_eq!(c.cmd("RNTO allow/f.keep"), "550 /allow/f.keep is kept");
    assert_eq!(
        std::fs::read(server.alice.join("allow/f.keep")).unwrap(),
        b"x"
    );
    assert!(c.cmd("RNFR allow/x.tmp").starts_with("350"));
    assert!(c.cmd("RNTO locked/moved.txt").starts_with("250"));
    let q = next(&rx);
    assert_eq!(q.json["event"], "pre_upload");
    assert_eq!(q.json["path"], "/locked/moved.txt");
    // A hook that cannot be reached: on_failure decides.
    let _data = c.pasv();
    assert!(c.cmd("RETR deny/f.keep").starts_with("550"));
    let data = c.pasv();
    c.send(b"RETR allow/f.keep\r\n");
    assert!(c.reply().starts_with("150"));
    assert_eq!(crate::harness::read_all(data), b"x");
    assert!(c.reply().starts_with("226"));
    server.wait_for_log("refused by a hook", 0, Duration::from_secs(10));
    server.wait_for_log(
        "pre-action hook failed; allowed",
        0,
        Duration::from_secs(10),
    );
}

#[test]
fn the_spool_survives_kill_9_between_the_commit_and_the_delivery() {
    let spool = tempfile::tempdir().unwrap();
    // Nothing listens there until the second server runs.
    let addr: SocketAddr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let sections = format!(
        "[events]\nspool_dir = \"{}\"\n{}",
        spool.path().display(),
        hook_section(
            "kept",
            &format!("http://{addr}/hook"),
            "\"upload\"",
            "max_attempts = 1000\nmax_age = \"1h\""
        )
    );
    let mut first = start(sections.clone());
    let mut c = Raw::login(first.addr, "alice");
    assert!(stor(&mut c, "safe.txt", b"journalled").starts_with("226"));
    // The 226 came after the journal: the event is on disk now.
    let journalled: Vec<_> = std::fs::read_dir(spool.path().join("kept"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(journalled.len(), 1, "{journalled:?}");
    // Its intent, journalled before the commit, became the event.
    assert_eq!(files_ending(&spool.path().join("kept"), "intent"), 0);
    let id = journalled[0]
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    first.wait_for_log("will retry", 0, Duration::from_secs(10));
    first.signal("KILL");
    let _ = first.exit_within(Duration::from_secs(10));
    drop(c);
    let rx = receiver(TcpListener::bind(addr).unwrap(), Vec::new());
    let second = start(sections);
    let g = next(&rx);
    check_signature(&g);
    assert_eq!(g.json["id"], id.as_str());
    assert_eq!(g.json["path"], "/safe.txt");
    assert_eq!(g.json["event"], "upload");
    second.wait_for_log("step=\"delivered\"", 0, Duration::from_secs(10));
    // Delivered: out of the spool.
    let left = std::fs::read_dir(spool.path().join("kept"))
        .unwrap()
        .count();
    assert_eq!(left, 0);
    second.wait_for_log(
        "undelivered events from the spool queued again",
        0,
        Duration::from_secs(10),
    );
}

/// How many files of `dir` end in `.ext`.
fn files_ending(dir: &std::path::Path, ext: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == ext)
        })
        .count()
}

#[test]
fn an_upload_intent_left_by_a_crash_is_delivered_as_recovered_at_start() {
    let spool = tempfile::tempdir().unwrap();
    let dir = spool.path().join("kept");
    std::fs::create_dir(&dir).unwrap();
    // As a server killed between an upload's intent and its commit leaves
    // it: the intent alone...
    let lost = "0123456789abcdef0123456789abcdef";
    let intent = serde_json::json!({
        "id": lost, "event": "upload", "time": "2026-01-01T00:00:00.000Z",
        "node": "node-a", "session": "00000000000000aa", "client": "127.0.0.1",
        "user": "alice", "path": "/maybe.bin", "recovered": true,
    });
    std::fs::write(dir.join(format!("{lost}.intent")), intent.to_string()).unwrap();
    // ...and one killed after the event's journal, before the intent went:
    // the event is delivered once, the intent removed.
    let done = "fedcba9876543210fedcba9876543210";
    let mut event = intent.clone();
    event["id"] = done.into();
    event["path"] = "/done.bin".into();
    event["size"] = 3.into();
    event.as_object_mut().unwrap().remove("recovered");
    std::fs::write(dir.join(format!("{done}.json")), event.to_string()).unwrap();
    let mut stale = intent.clone();
    stale["id"] = done.into();
    stale["path"] = "/done.bin".into();
    std::fs::write(dir.join(format!("{done}.intent")), stale.to_string()).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let rx = receiver(listener, Vec::new());
    let server = start(format!(
        "[events]\nspool_dir = \"{}\"\n{}",
        spool.path().display(),
        hook_section("kept", &url, "\"upload\"", "")
    ));
    let mut got: Vec<Got> = vec![next(&rx), next(&rx)];
    got.sort_by_key(|g| g.json["path"].as_str().unwrap().to_owned());
    for g in &got {
        check_signature(g);
    }
    assert_eq!(got[0].json["id"], done);
    assert_eq!(got[0].json["path"], "/done.bin");
    assert_eq!(got[0].json["size"], 3);
    assert!(got[0].json.get("recovered").is_none(), "{}", got[0].body);
    assert_eq!(got[1].json["id"], lost);
    assert_eq!(got[1].json["path"], "/maybe.bin");
    assert_eq!(got[1].json["recovered"], true);
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    server.wait_for_log("delivered as recovered", 0, Duration::from_secs(10));
    // Both delivered: nothing left, no intent either.
    for _ in 0..200 {
        if std::fs::read_dir(&dir).unwrap().count() == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn a_failed_commit_leaves_no_intent_and_a_good_upload_is_delivered_once() {
    let spool = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let rx = receiver(listener, Vec::new());
    let server = start(format!(
        "[events]\nspool_dir = \"{}\"\n{}",
        spool.path().display(),
        hook_section("kept", &url, "\"upload\", \"upload_failed\"", "")
    ));
    let dir = spool.path().join("kept");
    let mut c = Raw::login(server.addr, "alice");
    // The upload's directory goes (removed by someone else) during the
    // upload: the commit fails, after the intent.
    assert!(c.cmd("MKD sub").starts_with("257"));
    let data = c.pasv();
    let r = c.cmd("STOR sub/gone.txt");
    assert!(r.starts_with("150"), "{r}");
    std::fs::remove_dir_all(server.alice.join("sub")).unwrap();
    (&data).write_all(b"mine").unwrap();
    drop(data);
    let r = c.reply();
    assert!(!r.starts_with("226"), "{r}");
    assert!(!server.alice.join("sub").exists());
    let g = next(&rx);
    assert_eq!(g.json["event"], "upload_failed");
    assert_eq!(g.json["path"], "/sub/gone.txt");
    assert_eq!(files_ending(&dir, "intent"), 0);
    // A good upload: one event, with the intent's id, no intent left.
    assert!(stor(&mut c, "good.txt", b"abc").starts_with("226"));
    assert_eq!(files_ending(&dir, "intent"), 0);
    let g = next(&rx);
    check_signature(&g);
    assert_eq!(g.json["event"], "upload");
    assert_eq!(g.json["path"], "/good.txt");
    assert_eq!(g.json["size"], 3);
    assert!(g.json.get("recovered").is_none(), "{}", g.body);
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
}

/// A command hook's program must be one the server's user can run: a
/// program with execute bits for its group and others but not for its
/// owner, the server's user, is refused by check-config with the command
/// that mends it (as root with `server.user = "nobody"` owning it; else
/// as the user running the test, who is then the server's).
#[test]
fn check_config_refuses_a_command_the_server_user_cannot_run() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let prog = dir.path().join("on-upload");
    std::fs::write(&prog, "#!/bin/sh\nexit 0\n").unwrap();
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o655)).unwrap();
    let user = if is_root() {
        std::os::unix::fs::chown(&prog, Some(65534), Some(65534)).unwrap();
        "[server]\nuser = \"nobody\"\n"
    } else {
        ""
    };
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "{user}[anonymous]\nenabled = true\nroot = \"{}\"\n\
             [[events.hooks]]\nname = \"c\"\non = [\"upload\"]\naction = \"command\"\n\
             command = [\"{}\"]\n",
            dir.path().display(),
            prog.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = crate::cli::check_config(&cfg);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "events.hooks[0].command: {}: cannot be run by the server's user, ",
            prog.display()
        )),
        "{err}"
    );
    assert!(err.contains("mode 0655, with no execute bit"), "{err}");
    assert!(
        err.contains(&format!("chmod u+x {}", prog.display())),
        "{err}"
    );
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = crate::cli::check_config(&cfg);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA made here and a certificate it signed for 127.0.0.1, written
/// to `dir/ca.pem`; the receiver's TLS config with that certificate.
fn private_ca(dir: &std::path::Path) -> std::sync::Arc<rustls::ServerConfig> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "hook receiver test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().unwrap())];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![cert.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    std::sync::Arc::new(config)
}

/// An https:// receiver whose certificate a private CA signed: the hook
/// with `ca_file` naming that CA delivers (signed); one without it (the
/// system's roots) cannot, and drops the event saying why.
#[test]
fn an_https_hook_trusts_the_ca_of_its_ca_file() {
    let pki = tempfile::tempdir().unwrap();
    let tls = private_ca(pki.path());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/hook", listener.local_addr().unwrap());
    let rx = receiver_over(listener, Vec::new(), Some(tls), None);
    let mut hooks = hook_section(
        "private",
        &url,
        "\"upload\"",
        &format!("ca_file = \"{}\"", pki.path().join("ca.pem").display()),
    );
    hooks += &hook_section("untrusted", &url, "\"mkdir\"", "max_attempts = 1");
    let server = start(hooks);
    let mut c = Raw::login(server.addr, "alice");
    assert!(stor(&mut c, "tls.txt", b"over https").starts_with("226"));
    let g = next(&rx);
    check_signature(&g);
    assert_eq!(g.json["event"], "upload");
    assert_eq!(g.json["path"], "/tls.txt");
    assert!(c.cmd("MKD nope").starts_with("257"));
    let log = server.wait_for_log("hook event dropped", 0, Duration::from_secs(10));
    let line = log
        .lines()
        .find(|l| l.contains("hook event dropped"))
        .unwrap();
    assert!(line.contains("hook=\"untrusted\""), "{line}");
    assert!(line.to_lowercase().contains("certificate"), "{line}");
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
}

/// `logout` (a logged-in session's end) and `ban` (an address banned
/// after failed logins) fire with their fields, as `login_failed` does.
#[test]
fn logout_ban_and_failed_logins_fire_with_their_fields() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let rx = receiver(listener, Vec::new());
    let server = Server::start_with(Setup {
        sections: Box::leak(
            hook_section("who", &url, "\"logout\", \"ban\", \"login_failed\"", "").into_boxed_str(),
        ),
        extra_server: "node_name = \"node-a\"",
        limits: "max_login_failures = 2\nban_time = \"5m\"",
        watch_log: true,
        ..Setup::default()
    });
    let mut c = Raw::login(server.addr, "alice");
    assert!(c.cmd("QUIT").starts_with("221"));
    let out = next(&rx);
    check_signature(&out);
    assert_eq!(out.json["event"], "logout");
    assert_eq!(out.json["user"], "alice");
    assert_eq!(out.json["client"], "127.0.0.1");
    assert_eq!(out.json["node"], "node-a");
    assert_eq!(out.json["session"].as_str().unwrap().len(), 16);
    assert!(out.json["duration_ms"].is_u64(), "{}", out.body);
    // Two wrong passwords: two failed logins, then the ban.
    for _ in 0..2 {
        let mut c = Raw::connect(server.addr);
        assert!(c.cmd("USER bob").starts_with("331"));
        let _ = c.cmd("PASS wrong");
    }
    let got: Vec<Got> = (0..3).map(|_| next(&rx)).collect();
    let failed: Vec<&Got> = got
        .iter()
        .filter(|g| g.json["event"] == "login_failed")
        .collect();
    assert_eq!(failed.len(), 2, "{got:?}");
    for f in &failed {
        assert_eq!(f.json["user"], "bob");
        assert_eq!(f.json["client"], "127.0.0.1");
    }
    let ban = got
        .iter()
        .find(|g| g.json["event"] == "ban")
        .unwrap_or_else(|| panic!("no ban in {got:?}"));
    check_signature(ban);
    assert_eq!(ban.json["client"], "127.0.0.1");
    assert_eq!(ban.json["ban_secs"], 300);
    assert_eq!(ban.json["node"], "node-a");
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
}

/// Run as root with `server.user`: the spool, made by root before the
/// privilege drop, and the events journalled after it belong to that
/// user (the server could not write them otherwise, nor remove them once
/// delivered).
#[test]
fn the_spool_belongs_to_the_server_user_after_the_drop() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !is_root() {
        crate::harness::skip("root (the spool's owner after the privilege drop)");
        return;
    }
    let base = tempfile::tempdir().unwrap();
    // nobody must reach the spool: the directories above it are searchable.
    std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let spool = base.path().join("spool");
    let down: SocketAddr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let server = Server::start_with(Setup {
        sections: Box::leak(
            format!(
                "[events]\nspool_dir = \"{}\"\n{}",
                spool.display(),
                hook_section(
                    "kept",
                    &format!("http://{down}/hook"),
                    "\"upload\"",
                    "max_attempts = 1000\nmax_age = \"1h\""
                )
            )
            .into_boxed_str(),
        ),
        run_as: Some("nobody"),
        watch_log: true,
        ..Setup::default()
    });
    let mut c = Raw::login(server.addr, "alice");
    assert!(stor(&mut c, "owned.txt", b"whose").starts_with("226"));
    // Journalled before the 226, by the server's user.
    let hook_dir = spool.join("kept");
    let events: Vec<_> = std::fs::read_dir(&hook_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    for p in [&spool, &hook_dir, &events[0]] {
        let m = std::fs::metadata(p).unwrap();
        assert_eq!((m.uid(), m.gid()), (65534, 65534), "{}", p.display());
    }
    assert_eq!(std::fs::metadata(&spool).unwrap().mode() & 0o777, 0o700);
    server.wait_for_log("will retry", 0, Duration::from_secs(10));
}

/// The config file with `from` replaced by `to`, then SIGHUP, and the
/// reload's log line waited for (the `skip`-th).
fn reload_with(server: &Server, from: &str, to: &str, skip: usize) {
    let text = std::fs::read_to_string(server.config()).unwrap();
    let changed = text.replacen(from, to, 1);
    assert_ne!(changed, text, "{from:?} not in the config");
    std::fs::write(server.config(), changed).unwrap();
    server.signal("HUP");
    server.wait_for_log("config reloaded", skip, Duration::from_secs(10));
}

/// A server started without hooks gets them from a reload; a session
/// logged in before it reports to them too.
#[test]
fn a_reload_adds_hooks_to_a_server_started_without_any() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let rx = receiver(listener, Vec::new());
    let server = start(String::new());
    let mut before = Raw::login(server.addr, "alice");
    assert!(stor(&mut before, "early.txt", b"unheard").starts_with("226"));
    let text = std::fs::read_to_string(server.config()).unwrap();
    std::fs::write(
        server.config(),
        format!("{text}\n{}", hook_section("added", &url, "\"upload\"", "")),
    )
    .unwrap();
    server.signal("HUP");
    let log = server.wait_for_log("config reloaded", 0, Duration::from_secs(10));
    assert!(!log.contains("next restart"), "{log}");
    assert!(stor(&mut before, "late.txt", b"heard").starts_with("226"));
    let g = next(&rx);
    check_signature(&g);
    assert_eq!(g.json["path"], "/late.txt");
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    let m = metric(
        &server,
        "portcullis_hook_events_total{hook=\"added\",step=\"delivered\"}",
    );
    assert!(m.ends_with(" 1"), "{m}");
    // A spool that cannot be made refuses the reload: the hook in force
    // stays as it was.
    let file = server.dir.path().join("a-file");
    std::fs::write(&file, b"").unwrap();
    let text = std::fs::read_to_string(server.config()).unwrap();
    std::fs::write(
        server.config(),
        format!("[events]\nspool_dir = \"{}/spool\"\n{text}", file.display()),
    )
    .unwrap();
    server.signal("HUP");
    let log = server.wait_for_log("config reload failed", 0, Duration::from_secs(10));
    assert!(log.contains("events.spool_dir"), "{log}");
    assert!(stor(&mut before, "still.txt", b"heard").starts_with("226"));
    assert_eq!(next(&rx).json["path"], "/still.txt");
}

/// A reload that changes a hook's URL: events after it go to the new
/// receiver; the event the old hook held (its receiver down, retrying)
/// stays its own, in the spool, and reaches the old receiver when that
/// comes up. Removing the hook later retires it the same way; nothing is
/// lost or sent twice.
#[test]
fn a_reload_replaces_a_changed_hook_and_the_old_one_delivers_what_it_held() {
    let spool = tempfile::tempdir().unwrap();
    let old_addr: SocketAddr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let new_url = format!("http://{}/hook", listener.local_addr().unwrap());
    let new_rx = receiver(listener, Vec::new());
    let old_url = format!("http://{old_addr}/hook");
    let server = start(format!(
        "[events]\nspool_dir = \"{}\"\n{}",
        spool.path().display(),
        hook_section(
            "h",
            &old_url,
            "\"upload\"",
            "max_attempts = 1000\nmax_age = \"1h\""
        )
    ));
    let mut c = Raw::login(server.addr, "alice");
    assert!(stor(&mut c, "held.txt", b"old").starts_with("226"));
    server.wait_for_log("will retry", 0, Duration::from_secs(10));
    reload_with(&server, &old_url, &new_url, 0);
    let log = server.wait_for_log("retired=1", 0, Duration::from_secs(10));
    assert!(!log.contains("next restart"), "{log}");
    // The same spool directory, two hooks: the old one's event stays.
    assert_eq!(files_ending(&spool.path().join("h"), "json"), 1);
    assert!(stor(&mut c, "after.txt", b"new").starts_with("226"));
    let g = next(&new_rx);
    check_signature(&g);
    assert_eq!(g.json["path"], "/after.txt");
    // The old receiver comes up: the retired hook delivers its event.
    let old_rx = receiver(TcpListener::bind(old_addr).unwrap(), Vec::new());
    let g = next(&old_rx);
    check_signature(&g);
    assert_eq!(g.json["path"], "/held.txt");
    let mut left = usize::MAX;
    for _ in 0..400 {
        left = files_ending(&spool.path().join("h"), "json");
        if left == 0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    assert_eq!(left, 0, "delivered events leave the spool");
    // Sent once each.
    assert!(new_rx.recv_timeout(Duration::from_millis(300)).is_err());
    assert!(old_rx.recv_timeout(Duration::from_millis(100)).is_err());
    // An unchanged hook is kept across a reload for something else.
    reload_with(&server, "[passive]\n", "[passive]\n# touched\n", 1);
    server.wait_for_log("kept=1", 0, Duration::from_secs(10));
    assert!(stor(&mut c, "kept.txt", b"kept").starts_with("226"));
    assert_eq!(next(&new_rx).json["path"], "/kept.txt");
}
