//! The book's example, tried as a new user would: the Python receiver
//! and the hook's TOML of events.md ("A receiver in a few lines of
//! Python"), taken from the page as they are (only the port changed),
//! notify the receiver of each upload within a second.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::{stor, Raw, Server, Setup};

/// The first ```lang block after `heading` in `page`.
fn block_after(page: &str, heading: &str, lang: &str) -> String {
    let from = page
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?}"));
    let fence = format!("```{lang}\n");
    let start = from + page[from..].find(&fence).expect("the block") + fence.len();
    let len = page[start..].find("```").expect("the block's end");
    page[start..start + len].to_owned()
}

/// Ends the receiver (the child this test started) when the test does.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_books_python_receiver_hears_each_upload_within_a_second() {
    if !crate::tools::have("python3") {
        return;
    }
    let page = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../docs/src/configuration/events.md"),
    )
    .unwrap();
    let heading = "## A receiver in a few lines of Python";
    let (toml, python) = (
        block_after(&page, heading, "toml"),
        block_after(&page, heading, "python"),
    );
    assert!(toml.contains("127.0.0.1:8080"), "{toml}");
    assert!(python.contains("8080"), "{python}");
    // A free port instead of the page's 8080.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let toml = toml.replace("8080", &port.to_string());
    let python = python.replace("8080", &port.to_string());
    let mut child = Child(
        Command::new("python3")
            .args(["-u", "-c", &python])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let (tx, lines) = mpsc::channel();
    let out = child.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if tx.send((line, Instant::now())).is_err() {
                return;
            }
        }
    });
    // Up when it accepts a connection.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the receiver did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let server = Server::start_with(Setup {
        sections: Box::leak(toml.into_boxed_str()),
        ..Setup::default()
    });
    let mut c = Raw::login(server.addr, "alice");
    assert!(c.cmd("MKD incoming").starts_with("257"));
    // Outside `paths`: not heard.
    assert!(stor(&mut c, "elsewhere.txt", b"no").starts_with("226"));
    for i in 0..5 {
        let name = format!("incoming/f{i}.csv");
        assert!(stor(&mut c, &name, b"a,b\n").starts_with("226"));
        let done = Instant::now();
        let (line, when) = lines
            .recv_timeout(Duration::from_secs(5))
            .expect("the receiver's line");
        assert_eq!(line, format!("upload alice /{name} 4"));
        let took = when.saturating_duration_since(done);
        assert!(took < Duration::from_secs(1), "{name}: {took:?}");
    }
    assert!(lines.recv_timeout(Duration::from_millis(300)).is_err());
}
