//! A store reached over TLS (s3s-fs behind a real HAProxy that ends TLS,
//! with a certificate the server trusts through `SSL_CERT_FILE`): uploads
//! and downloads work, request bodies go as `UNSIGNED-PAYLOAD` over TLS
//! and are signed over plain HTTP or with `sign_payload = true`, as
//! s3s-fs's own log of each request shows.

use std::net::SocketAddr;

use super::store::Moto;
use super::{binary, config_text, retr, stor, BUCKET, OTHER};
use crate::haproxy::{free_port, Haproxy};
use crate::harness::{password_hash, random_bytes, Raw, Server, BIN};
use crate::tools::{have, run};

/// The `x-amz-content-sha256` of each PUT that s3s-fs received for `key`
/// (a single PUT, or the parts of a multipart upload).
fn payload_hashes(store: &Moto, key: &str) -> Vec<String> {
    let uri = format!("/{BUCKET}/{key}");
    store
        .requests(&uri)
        .iter()
        .filter(|l| l.contains("method: PUT"))
        // The key itself, not one that starts with it.
        .filter(|l| {
            let rest = &l[l.find(&uri).unwrap() + uri.len()..];
            rest.starts_with(',') || rest.starts_with('?')
        })
        .map(|l| {
            let at = l.find("\"x-amz-content-sha256\": \"").expect(l) + 25;
            l[at..at + l[at..].find('"').unwrap()].to_owned()
        })
        .collect()
}

#[test]
fn s3sfs_over_tls_sends_unsigned_bodies_and_signs_them_over_http() {
    if !have("haproxy") {
        return;
    }
    let Some(store) = Moto::s3s_fs_logged() else {
        return;
    };
    store.create_bucket(BUCKET);
    store.create_bucket(OTHER);
    let dir = tempfile::tempdir().unwrap();
    let cert_dir = dir.path().join("tls");
    run(std::process::Command::new(BIN)
        .args(["gen-cert", "--host", "127.0.0.1", "--out"])
        .arg(&cert_dir));
    let cert = cert_dir.join("cert.pem");
    let mut pem = std::fs::read(&cert).unwrap();
    pem.extend(std::fs::read(cert_dir.join("key.pem")).unwrap());
    std::fs::write(dir.path().join("both.pem"), pem).unwrap();
    let port = free_port([127, 0, 0, 1]);
    let haproxy = format!(
        r#"
global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend tls
    bind 127.0.0.1:{port} ssl crt {both}
    default_backend store
backend store
    server s3s {store}
"#,
        both = dir.path().join("both.pem").display(),
        store = store.endpoint.trim_start_matches("http://"),
    );
    let _haproxy = Haproxy::start(
        dir.path(),
        &haproxy,
        SocketAddr::from(([127, 0, 0, 1], port)),
    );

    // [s3] over TLS; the profile `signed` too, with signed bodies; the
    // profile `plain` straight to s3s-fs over HTTP.
    let hash = password_hash();
    let user = |name: &str| {
        format!(
            r#"
[[users]]
name = "{name}"
password_hash = "{hash}"
root = "s3://{BUCKET}/{name}"
s3_profile = "{name}"
permissions = ["read", "write", "overwrite"]
"#
        )
    };
    let text = config_text(&format!("https://127.0.0.1:{port}"), BUCKET)
        + &format!(
            "\n[s3.profiles.tls]\n\n[s3.profiles.signed]\nsign_payload = true\n\n[s3.profiles.plain]\nendpoint = \"{}\"\n",
            store.endpoint
        )
        + &user("tls")
        + &user("signed")
        + &user("plain");
    let config = dir.path().join("portcullis.toml");
    std::fs::write(&config, text).unwrap();
    let server = Server::start_from_config_env(
        dir,
        &config,
        &[("SSL_CERT_FILE", cert.display().to_string())],
    );

    let small = random_bytes(1000, 5);
    // Three parts of 5 MiB (part_size).
    let big = random_bytes(12 * 1024 * 1024 + 7, 6);
    for name in ["tls", "signed", "plain"] {
        let mut c = Raw::login(server.addr, name);
        binary(&mut c);
        for (file, data) in [("small.bin", &small), ("big.bin", &big)] {
            let end = stor(&mut c, file, data);
            assert!(end.starts_with("226 "), "{name}: {end}");
            let (got, end) = retr(&mut c, file, 0);
            assert!(end.starts_with("226 "), "{name}: {end}");
            assert!(&got == data, "{name}: {file} read back differs");
            assert!(store.get(BUCKET, &format!("{name}/{file}")) == *data);
        }
        c.cmd("QUIT");
        let small_put = payload_hashes(&store, &format!("{name}/small.bin"));
        let parts = payload_hashes(&store, &format!("{name}/big.bin"));
        assert_eq!((small_put.len(), parts.len()), (1, 3), "{name}");
        for h in small_put.iter().chain(&parts) {
            if name == "tls" {
                assert_eq!(h, "UNSIGNED-PAYLOAD", "{name}");
            } else {
                assert!(
                    h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{name}: a body's SHA-256, not {h}"
                );
            }
        }
    }
    assert!(store.uploads(BUCKET).is_empty());
}
