//! A real S3 server for the tests, on 127.0.0.1 with a port of its own
//! choosing, killed on drop: moto's (`moto_server`, from
//! `pip install 'moto[server]'`), or s3s-fs (`cargo install s3s-fs
//! --features binary`; a store in a temporary directory that checks
//! request signatures); and boto3, which comes with moto, to look at the
//! bucket the way the store itself shows it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::tools::{installed, run};

/// The keys every test passes (moto accepts any, s3s-fs only these;
/// nothing ever reaches for instance metadata).
pub const KEY_ID: &str = "testing-key";
pub const SECRET: &str = "testing-secret";

/// Which S3 server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Moto,
    S3sFs,
}

/// A running S3 server (moto's or s3s-fs).
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    pub kind: Kind,
    /// s3s-fs's directory (its objects, and its incomplete uploads as
    /// `.upload-ID.json` files at the top).
    dir: Option<tempfile::TempDir>,
    /// The requests s3s-fs logged, headers and all ([`Moto::s3s_fs_logged`]).
    requests: Option<Requests>,
}

/// Lines that a store printed about the requests it received.
type Requests = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

impl Moto {
    /// Start one of `kind`, or `None` (with a note) where it is not
    /// installed; under CI its absence fails the test.
    pub fn of(kind: Kind) -> Option<Moto> {
        match kind {
            Kind::Moto => Moto::start(),
            Kind::S3sFs => Moto::s3s_fs(),
        }
    }

    /// Start s3s-fs over a fresh directory (with boto3 to look at it).
    pub fn s3s_fs() -> Option<Moto> {
        Moto::s3s_fs_with(false)
    }

    /// The same, keeping what s3s-fs logs of every request it receives
    /// (method, URI and headers: [`Moto::requests`]).
    pub fn s3s_fs_logged() -> Option<Moto> {
        Moto::s3s_fs_with(true)
    }

    fn s3s_fs_with(logged: bool) -> Option<Moto> {
        let found = Command::new("sh")
            .args(["-c", "command -v s3s-fs && python3 -c 'import boto3'"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !installed(
            found,
            "s3s-fs (cargo install s3s-fs --features binary) and boto3",
        ) {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("s3s-fs")
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(["--access-key", KEY_ID, "--secret-key", SECRET])
            .arg(dir.path())
            .env(
                "RUST_LOG",
                if logged {
                    "s3s_fs=info,s3s::service=debug"
                } else {
                    "s3s_fs=info"
                },
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        let requests = logged.then(Requests::default);
        let url = said(
            child.stdout.take().unwrap(),
            "server is running at ",
            requests.clone(),
        );
        let mut store = Moto {
            child,
            endpoint: String::new(),
            kind: Kind::S3sFs,
            dir: Some(dir),
            requests,
        };
        store.endpoint = url.expect("s3s-fs did not say where it listens");
        Some(store)
    }

    /// Start moto's server, or `None` (with a note) where moto is not
    /// installed; under CI its absence fails the test.
    pub fn start() -> Option<Moto> {
        let found = Command::new("sh")
            .args(["-c", "command -v moto_server && python3 -c 'import boto3'"])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !installed(found, "moto_server and boto3 (pip install 'moto[server]')") {
            return None;
        }
        let mut child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start moto_server");
        // Werkzeug says where it listens on stderr.
        let url = said(child.stderr.take().unwrap(), "Running on ", None);
        let mut moto = Moto {
            child,
            endpoint: String::new(),
            kind: Kind::Moto,
            dir: None,
            requests: None,
        };
        moto.endpoint = url.expect("moto_server did not say where it listens");
        assert!(
            moto.endpoint.starts_with("http://127.0.0.1:"),
            "{}",
            moto.endpoint
        );
        Some(moto)
    }

    /// Run a Python snippet with `s3`, a boto3 client of this server, and
    /// `args` in `sys.argv[1:]`; returns what it printed.
    pub fn py(&self, snippet: &str, args: &[&str]) -> String {
        let script = format!(
            "import sys, boto3, botocore.config\n\
             s3 = boto3.client('s3', endpoint_url={ep:?}, aws_access_key_id={KEY_ID:?}, \
             aws_secret_access_key={SECRET:?}, region_name='us-east-1', \
             config=botocore.config.Config(max_pool_connections=8))\n{snippet}",
            ep = self.endpoint
        );
        run(Command::new("python3").arg("-c").arg(script).args(args))
    }

    pub fn create_bucket(&self, bucket: &str) {
        self.py("s3.create_bucket(Bucket=sys.argv[1])", &[bucket]);
    }

    /// Every key of the bucket, sorted.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let out = self.py(
            "p = s3.get_paginator('list_objects_v2')\n\
             for page in p.paginate(Bucket=sys.argv[1]):\n    \
             for o in page.get('Contents', []): print(o['Key'])",
            &[bucket],
        );
        let mut keys: Vec<String> = out.lines().map(str::to_owned).collect();
        keys.sort();
        keys
    }

    /// The incomplete multipart uploads of the bucket, as "key upload-id"
    /// (s3s-fs has no ListMultipartUploads: its `.upload-ID.json` files,
    /// of any bucket).
    pub fn uploads(&self, bucket: &str) -> Vec<String> {
        if let (Kind::S3sFs, Some(dir)) = (self.kind, &self.dir) {
            return std::fs::read_dir(dir.path())
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.starts_with(".upload"))
                .collect();
        }
        let out = self.py(
            "r = s3.list_multipart_uploads(Bucket=sys.argv[1])\n\
             for u in r.get('Uploads', []): print(u['Key'], u['UploadId'])",
            &[bucket],
        );
        out.lines().map(str::to_owned).collect()
    }

    /// `files` one-byte objects `PREFIXfNNNNN` and `dirs` prefixes
    /// `PREFIXdNN/` (one object `x` in each), as fast as the store takes
    /// them: moto from eight boto3 threads, s3s-fs as files in its
    /// directory.
    pub fn put_many(&self, bucket: &str, prefix: &str, files: usize, dirs: usize) {
        if let Some(dir) = &self.dir {
            let names = (0..files)
                .map(|i| format!("{prefix}f{i:05}"))
                .chain((0..dirs).map(|i| format!("{prefix}d{i:02}/x")));
            for key in names {
                let path = dir.path().join(bucket).join(&key);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(path, b"x").unwrap();
            }
            return;
        }
        self.py(
            "import concurrent.futures as cf\n\
             b, p, n, d = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])\n\
             keys = ['%sf%05d' % (p, i) for i in range(n)] + ['%sd%02d/x' % (p, i) for i in range(d)]\n\
             with cf.ThreadPoolExecutor(8) as ex:\n    \
             list(ex.map(lambda k: s3.put_object(Bucket=b, Key=k, Body=b'x'), keys))",
            &[bucket, prefix, &files.to_string(), &dirs.to_string()],
        );
    }

    /// Put an object of any bytes straight into the store.
    pub fn put_bytes(&self, bucket: &str, key: &str, body: &[u8]) {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), body).unwrap();
        self.py(
            "s3.put_object(Bucket=sys.argv[1], Key=sys.argv[2], Body=open(sys.argv[3], 'rb').read())",
            &[bucket, key, &file.path().to_string_lossy()],
        );
    }

    /// Put an object straight into the store.
    pub fn put(&self, bucket: &str, key: &str, body: &str) {
        self.py(
            "s3.put_object(Bucket=sys.argv[1], Key=sys.argv[2], Body=sys.argv[3].encode())",
            &[bucket, key, body],
        );
    }

    /// An object's bytes, read back from the store.
    pub fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        let out = self.py(
            "sys.stdout.write(s3.get_object(Bucket=sys.argv[1], Key=sys.argv[2])['Body'].read().hex())",
            &[bucket, key],
        );
        (0..out.len() / 2)
            .map(|i| u8::from_str_radix(&out[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }
}

impl Moto {
    /// The requests logged so far by a store from [`Moto::s3s_fs_logged`]
    /// whose URI contains `uri`, one line each.
    pub fn requests(&self, uri: &str) -> Vec<String> {
        let lines = self.requests.as_ref().expect("a store started logged");
        let needle = format!("uri: {uri}");
        lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("Request { method:") && l.contains(&needle))
            .cloned()
            .collect()
    }

    /// Stop the store now (a store that goes away).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The rest of the line after `marker` in what `from` prints, within 60
/// s; the rest of its output is drained (into `keep`, if given).
fn said(
    from: impl std::io::Read + Send + 'static,
    marker: &'static str,
    keep: Option<Requests>,
) -> Option<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(from).lines();
        for line in lines.by_ref().map_while(Result::ok) {
            if let Some(url) = line.split(marker).nth(1) {
                let _ = tx.send(url.trim().to_owned());
                break;
            }
        }
        for line in lines.map_while(Result::ok) {
            if let Some(k) = &keep {
                k.lock().unwrap().push(line);
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(60)).ok()
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
