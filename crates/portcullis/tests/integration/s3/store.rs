//! A real S3 server for the tests: moto's (`moto_server`, from
//! `pip install 'moto[server]'`) on 127.0.0.1 with a port of its own
//! choosing, killed on drop; and boto3, which comes with it, to look at
//! the bucket the way the store itself shows it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::tools::{installed, run};

/// The keys every test passes (moto accepts any; nothing ever reaches
/// for instance metadata).
pub const KEY_ID: &str = "testing-key";
pub const SECRET: &str = "testing-secret";

/// A running moto server.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
}

impl Moto {
    /// Start one, or `None` (with a note) where moto is not installed;
    /// under CI its absence fails the test.
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
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Werkzeug says where it listens on stderr; the rest is drained.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stderr).lines();
            for line in lines.by_ref().map_while(Result::ok) {
                if let Some(url) = line.split("Running on ").nth(1) {
                    let _ = tx.send(url.trim().to_owned());
                    break;
                }
            }
            for _ in lines {}
        });
        let mut moto = Moto {
            child,
            endpoint: String::new(),
        };
        moto.endpoint = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("moto_server did not say where it listens");
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
            "import sys, boto3\n\
             s3 = boto3.client('s3', endpoint_url={ep:?}, aws_access_key_id={KEY_ID:?}, \
             aws_secret_access_key={SECRET:?}, region_name='us-east-1')\n{snippet}",
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

    /// The incomplete multipart uploads of the bucket, as "key upload-id".
    pub fn uploads(&self, bucket: &str) -> Vec<String> {
        let out = self.py(
            "r = s3.list_multipart_uploads(Bucket=sys.argv[1])\n\
             for u in r.get('Uploads', []): print(u['Key'], u['UploadId'])",
            &[bucket],
        );
        out.lines().map(str::to_owned).collect()
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
    /// Stop the store now (a store that goes away).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
