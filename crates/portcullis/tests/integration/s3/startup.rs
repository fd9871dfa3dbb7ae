//! Start-up and the command line: each bucket checked (missing: the start
//! stops; unreachable: a warning), check-config naming every bad key, and
//! `serve --root s3://...` without a config file.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{binary, config_text, retr, Moto, BUCKET, KEY_ID, OTHER, SECRET};
use crate::cli::check_config;
use crate::harness::{Raw, BIN};

/// A server child killed on drop, for the start-up tests that read its
/// whole output.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(config: &str) -> (tempfile::TempDir, Child) {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("portcullis.toml");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (dir, Child(child))
}

/// Wait (bounded) for the child to exit; its code and stderr.
fn exited(child: &mut Child, limit: Duration) -> (Option<i32>, String) {
    let started = Instant::now();
    while started.elapsed() < limit {
        if let Some(status) = child.0.try_wait().unwrap() {
            return (status.code(), crate::harness::stderr_of(&mut child.0));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("the server did not exit within {limit:?}");
}

/// The stdout lines up to and including the first that starts with `want`.
fn lines_until(child: &mut Child, want: &str) -> String {
    use std::io::BufRead;
    let out = child.0.stdout.take().unwrap();
    let mut all = String::new();
    for line in std::io::BufReader::new(out).lines().take(100) {
        let line = line.unwrap();
        all.push_str(&line);
        all.push('\n');
        if line.starts_with(want) {
            return all;
        }
    }
    panic!("no line starting with {want:?} in:\n{all}");
}

#[test]
fn s3_start_up_checks_each_bucket() {
    let Some(moto) = Moto::start() else { return };
    // A missing bucket stops the start, saying so.
    let (_dir, mut child) = serve(&config_text(&moto.endpoint, "no-such-bucket"));
    let (code, err) = exited(&mut child, Duration::from_secs(30));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no such bucket"), "{err}");
    // A reachable one is named in the summary.
    moto.create_bucket(BUCKET);
    moto.create_bucket(OTHER);
    let (_dir, mut child) = serve(&config_text(&moto.endpoint, BUCKET));
    let out = lines_until(&mut child, "storage: s3://portcullis-other");
    assert!(
        out.contains("storage: s3://portcullis-test/alice at http://127.0.0.1:")
            && out.contains(": bucket reachable"),
        "{out}"
    );
    // A store that does not answer is a warning, and the server serves.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let started = Instant::now();
    let (_dir, mut child) = serve(&config_text(&format!("http://127.0.0.1:{port}"), BUCKET));
    let out = lines_until(&mut child, "storage: s3://portcullis-other");
    assert!(out.contains("NOT reachable"), "{out}");
    assert!(out.contains("listening on 127.0.0.1:"), "{out}");
    assert!(started.elapsed() < Duration::from_secs(25));
}

#[test]
fn s3_check_config_names_the_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        r#"
[s3]
endpoint = "http://127.0.0.1:9000"
access_key_id = "k"
part_size = "1M"
part_doubling = 0
upload_streams = 17
download_streams = 0
download_chunk = "1K"
request_timeout = "0s"

[s3.profiles.p]
endpoint = "ftp://x"
allow_http = true

[s3.profiles.p.profiles.q]
region = "eu-west-1"

[[users]]
name = "a"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
root = "s3://Bad_Bucket"

[[users]]
name = "b"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
root = "s3://good-bucket/x"
storage_profile = "missing"

[[users]]
name = "c"
password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"
root = "/tmp"
s3_profile = "p"
"#,
    )
    .unwrap();
    let out = check_config(&bad);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "s3.endpoint: \"http://127.0.0.1:9000\" is plain HTTP",
        "s3.secret_access_key: required with access_key_id",
        "s3.part_size",
        "s3.part_doubling: 0 is not 1 to 10000",
        "s3.upload_streams: 17 is not 1 to 16",
        "s3.download_streams: 0 is not 1 to 16",
        "s3.download_chunk: 1024 bytes is not \"64K\" to \"5G\"",
        "s3.request_timeout",
        "s3.profiles.p.endpoint",
        "s3.profiles.p.profiles: profiles are named in [s3] only",
        "users[0].root: \"Bad_Bucket\" is not a bucket name",
        "users[1].storage_profile: no [s3.profiles.missing] section",
        "users[2].storage_profile: only for an s3:// or az:// root",
    ] {
        assert!(err.contains(key), "{key} missing from:\n{err}");
    }
    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, "[s3]\nbucket = \"x\"\n").unwrap();
    let out = check_config(&unknown);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("s3.bucket: unknown key"));
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[server]\nallow_root = true\n\
         [s3]\nendpoint = \"https://s3.example.net\"\naccess_key_id = \"k\"\nsecret_access_key = \"s\"\n\
         [anonymous]\nenabled = true\nroot = \"s3://pub-bucket\"\n",
    )
    .unwrap();
    let out = check_config(&good);
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn s3_serve_root_without_a_config_file() {
    use std::io::BufRead;
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket(BUCKET);
    moto.put(BUCKET, "pub/hello.txt", "hello from a bucket\n");
    let child = Command::new(BIN)
        .args([
            "serve",
            "--root",
            &format!("s3://{BUCKET}/pub"),
            "--listen",
            "127.0.0.1:0",
            "--passive-ports",
            "62000-64999",
        ])
        .env("AWS_ENDPOINT_URL", &moto.endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", SECRET)
        .env("AWS_REGION", "us-east-1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = Child(child);
    let out = child.0.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(out).lines();
    let mut addr = None;
    let mut storage = None;
    for line in lines.by_ref().take(20).map_while(Result::ok) {
        if let Some(a) = line.split("listening on ").nth(1) {
            addr = Some(a.parse::<std::net::SocketAddr>().unwrap());
        }
        if line.starts_with("storage: ") {
            storage = Some(line);
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let storage = storage.expect("no storage line");
    assert!(
        storage.contains(&format!("s3://{BUCKET}/pub at {}", moto.endpoint))
            // Plain HTTP: bodies signed (sign_payload's default there).
            && storage.ends_with("bucket reachable; request bodies signed"),
        "{storage}"
    );
    let mut c = Raw::login(addr.expect("no listening line"), "anonymous");
    binary(&mut c);
    let (got, end) = retr(&mut c, "hello.txt", 0);
    assert_eq!(got, b"hello from a bucket\n");
    assert!(end.starts_with("226 "), "{end}");
    // Read-only, as without a config file over a directory.
    let _d = c.pasv();
    assert!(c.cmd("STOR x.txt").starts_with("550 "));
}
