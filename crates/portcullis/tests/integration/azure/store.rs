//! Azurite (npm `azurite`, pinned at 3.35.0, the last that runs on Node
//! 20) for the tests: one per test binary, on 127.0.0.1 with a port of
//! its own choosing and a temporary directory, each test in a container
//! of its own (a test that stops its store starts one of its own,
//! [`Azurite::own`]). It runs under a shell that waits on the test binary's end
//! of a pipe: when the binary exits, however it exits, the pipe closes
//! and the shell stops Azurite and removes its directory. The tests look
//! at the account as the store shows it through `blob.py` (requests
//! signed with the account's key, no SDK).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use crate::tools::{installed, run};

/// Azurite's well-known account and key.
pub const ACCOUNT: &str = "devstoreaccount1";
pub const KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

const BLOB_PY: &str = include_str!("blob.py");

/// The Azurite of this test binary (or of one test, [`Azurite::own`]).
pub struct Azurite {
    /// The shell; kept so that its stdin stays open while the binary
    /// runs (closed by [`Azurite::stop`]).
    child: Mutex<Child>,
    /// `http://127.0.0.1:PORT/devstoreaccount1`
    pub endpoint: String,
    script: tempfile::TempPath,
}

/// One test's container on the shared Azurite.
pub struct Container {
    pub az: &'static Azurite,
    pub name: String,
}

static AZURITE: OnceLock<Option<Azurite>> = OnceLock::new();
static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Container {
    /// A fresh container named after `test`, or `None` (with a note)
    /// where Azurite is not installed; under CI its absence fails the test.
    pub fn new(test: &str) -> Option<Container> {
        let az = AZURITE.get_or_init(Azurite::start).as_ref()?;
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let mut name: String = test
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        name.truncate(50);
        let name = format!("{}-{n}", name.trim_matches('-')).replace("--", "-");
        let c = Container { az, name };
        c.create(&c.name);
        Some(c)
    }

    /// Make another container (for a profile's root).
    pub fn create(&self, name: &str) {
        self.az.py(&["create", name]);
    }

    /// Every committed blob name of the container, sorted, every page.
    pub fn keys(&self) -> Vec<String> {
        let out = self.az.py(&["keys", &self.name]);
        out.lines().map(str::to_owned).collect()
    }

    /// Take a snapshot of the blob `name`.
    pub fn snapshot(&self, name: &str) {
        self.az.py(&["snapshot", &self.name, name]);
    }

    /// Every blob and snapshot of the container (`NAME@TIME` for a
    /// snapshot), sorted.
    pub fn all(&self) -> Vec<String> {
        let out = self.az.py(&["all", &self.name]);
        out.lines().map(str::to_owned).collect()
    }

    /// The names with blocks sent but no blob committed (an upload under
    /// way, or given up), as the store's listing with uncommitted blobs
    /// shows them.
    pub fn pending(&self) -> Vec<String> {
        let out = self.az.py(&["pending", &self.name]);
        out.lines().map(str::to_owned).collect()
    }

    /// The blocks of `name` as Get Block List shows them, in order:
    /// (committed, size).
    pub fn blocks(&self, name: &str) -> Vec<(bool, u64)> {
        let out = self.az.py(&["blocks", &self.name, name]);
        out.lines()
            .map(|l| {
                let (kind, size) = l.split_once(' ').unwrap();
                (kind == "committed", size.parse().unwrap())
            })
            .collect()
    }

    /// A blob's bytes.
    pub fn get(&self, name: &str) -> Vec<u8> {
        let out = self.az.py(&["get", &self.name, name]);
        (0..out.len() / 2)
            .map(|i| u8::from_str_radix(&out[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    /// Put a blob straight into the store.
    pub fn put(&self, name: &str, body: &[u8]) {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), body).unwrap();
        self.az
            .py(&["put", &self.name, name, &file.path().to_string_lossy()]);
    }

    /// `files` one-byte blobs `PREFIXfNNNNN` and `dirs` prefixes
    /// `PREFIXdNN/` (one blob `x` in each), from eight threads.
    pub fn put_many(&self, prefix: &str, files: usize, dirs: usize) {
        self.az.py(&[
            "many",
            &self.name,
            prefix,
            &files.to_string(),
            &dirs.to_string(),
        ]);
    }
}

impl Container {
    /// A fresh container on `az` (an Azurite of the test's own).
    pub fn on(az: &'static Azurite, test: &str) -> Container {
        let c = Container {
            az,
            name: test.to_owned(),
        };
        c.create(&c.name);
        c
    }
}

impl Azurite {
    /// An Azurite of the calling test's own, which it may stop
    /// ([`Azurite::stop`]); `None` where Azurite is not installed. Kept
    /// for the rest of the binary's life (its directory goes when the
    /// binary exits, as the shared one's does).
    pub fn own() -> Option<&'static Azurite> {
        Some(Box::leak(Box::new(Azurite::start()?)))
    }

    /// Stop this Azurite now (a store that goes away): the shell's stdin
    /// closed, it kills Azurite and waits for it.
    pub fn stop(&self) {
        let mut child = self.child.lock().unwrap();
        drop(child.stdin.take());
        let _ = child.wait();
    }

    /// An account SAS token valid for an hour that may read, add,
    /// create, write, delete and list.
    pub fn sas(&self) -> String {
        self.py(&["sas", "1"]).trim().to_owned()
    }

    fn start() -> Option<Azurite> {
        let found = Command::new("sh")
            .args(["-c", "command -v azurite-blob"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !installed(found, "azurite (npm install -g azurite@3.35.0)") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap().keep();
        // The shell outlives nothing: its stdin is this binary's pipe.
        let script = format!(
            "azurite-blob --blobHost 127.0.0.1 --blobPort 0 --location '{d}' --silent \
             --disableTelemetry --skipApiVersionCheck </dev/null 2>&1 & a=$!; \
             cat >/dev/null; kill $a; wait $a; rm -rf '{d}'",
            d = dir.display()
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start azurite");
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(out).lines();
            for line in lines.by_ref().map_while(Result::ok) {
                if let Some(url) = line.split("successfully listens on ").nth(1) {
                    let _ = tx.send(url.trim().to_owned());
                    break;
                }
            }
            for _ in lines {}
        });
        let url = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("azurite did not say where it listens");
        let mut script = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut script, BLOB_PY.as_bytes()).unwrap();
        Some(Azurite {
            child: Mutex::new(child),
            endpoint: format!("{url}/{ACCOUNT}"),
            script: script.into_temp_path(),
        })
    }

    /// Run `blob.py` against this account; what it printed.
    fn py(&self, args: &[&str]) -> String {
        run(Command::new("python3")
            .arg(&*self.script)
            .args([self.endpoint.as_str(), ACCOUNT, KEY])
            .args(args))
    }
}
