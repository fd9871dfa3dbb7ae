//! `az://` roots through profiles and kinds of account: blocks that grow
//! (`block_doubling`), the refusals of what an object store cannot do,
//! a user on another container through a profile, an `[anonymous]` root,
//! and a profile whose credential is a SAS token. The client side of
//! each is the S3 test's (`s3.rs`).

use super::store::Container;
use super::{exited, server_with, spawn};
use crate::harness::{password_hash, random_bytes, stor, Raw};
use crate::s3::{binary, listing, retr};

/// A `[[users]]` entry: `name` on `root` through profile `profile`.
fn user(name: &str, root: &str, profile: &str) -> String {
    format!(
        r#"
[[users]]
name = "{name}"
password_hash = "{}"
root = "{root}"
storage_profile = "{profile}"
permissions = ["read", "write", "overwrite", "delete", "rename", "mkdir"]
"#,
        password_hash()
    )
}

/// Blocks of 5, 10 and 20 MiB (`block_doubling = 1`): 18 MiB and 7 bytes
/// are three blocks, not the four of equal 5 MiB blocks, as Get Block
/// List shows them.
#[test]
fn az_block_size_grows_with_the_upload() {
    let Some(ctr) = Container::new("grow") else {
        return;
    };
    let extra = "\n[azure.profiles.grow]\nblock_doubling = 1\n".to_owned()
        + &user("grow", &format!("az://{}/grow", ctr.name), "grow");
    let server = server_with(&ctr, "", &extra);
    let data = crate::s3::grown_round_trip(&server);
    assert!(ctr.get("grow/grown.bin") == data);
    assert_eq!(
        ctr.blocks("grow/grown.bin"),
        [(true, 5 << 20), (true, 10 << 20), (true, (3 << 20) + 7)]
    );
}

#[test]
fn az_refuses_what_an_object_store_cannot_do() {
    let Some(ctr) = Container::new("refusals") else {
        return;
    };
    let server = super::server(&ctr, "");
    ctr.put("alice/f.txt", b"0123456789");
    crate::s3::refusals(&server);
    assert!(ctr.get("alice/f.txt") == b"0123456789");
    assert_eq!(ctr.keys(), ["alice/f.txt"]);
}

/// carol on another container through `[azure.profiles.other]`, and an
/// `[anonymous]` root on the test's container, serving.
#[test]
fn az_profiles_and_anonymous_roots() {
    let Some(ctr) = Container::new("profiles") else {
        return;
    };
    let other = format!("{}-other", ctr.name);
    ctr.create(&other);
    let extra = format!(
        "\n[anonymous]\nenabled = true\nroot = \"az://{}/pub\"\n",
        ctr.name
    ) + &user("carol", &format!("az://{other}"), "other");
    let server = server_with(&ctr, "", &extra);
    ctr.put("pub/readme.txt", b"hello anonymous\n");
    crate::s3::profiles_and_anonymous(&server);
    let theirs = Container {
        az: ctr.az,
        name: other,
    };
    assert_eq!(theirs.keys(), ["c.txt", "sub/"]);
    assert!(theirs.get("c.txt") == b"carol");
    assert_eq!(ctr.keys(), ["pub/readme.txt"]);
}

/// The config lines of a profile `sas` whose credential is `token`, and
/// of sasha, on `sas/` through it.
fn sas_profile(ctr: &Container, token: &str) -> String {
    format!("\n[azure.profiles.sas]\nsas_token = \"{token}\"\n")
        + &user("sasha", &format!("az://{}/sas", ctr.name), "sas")
}

/// A profile whose credential is an account SAS (signed by `blob.py`
/// with the account's key; the profile's token replaces `[azure]`'s
/// key): every kind of request, `object_store`'s (Put Blob, Put Block
/// and Put Block List, ranged GETs, listings, Copy Blob, Delete Blob)
/// and this server's own (markers, the copy's status), is accepted. The
/// same token with its signature changed stops the start-up check.
#[test]
fn az_a_sas_token_serves_a_round_trip() {
    let Some(ctr) = Container::new("sas") else {
        return;
    };
    let token = ctr.az.sas();
    let server = server_with(&ctr, "", &sas_profile(&ctr, &token));
    let mut c = Raw::login(server.addr, "sasha");
    binary(&mut c);
    let small = b"signed by the token\n";
    let big = random_bytes(12 << 20, 61);
    assert!(stor(&mut c, "small.txt", small).starts_with("226 "));
    assert!(c.cmd("MKD d").starts_with("257 "));
    assert!(stor(&mut c, "d/big.bin", &big).starts_with("226 "));
    assert_eq!(ctr.keys(), ["sas/d/", "sas/d/big.bin", "sas/small.txt"]);
    assert!(ctr.get("sas/d/big.bin") == big);
    assert_eq!(listing(&mut c, "NLST d"), "d/big.bin\r\n");
    let (got, end) = retr(&mut c, "d/big.bin", 5 << 20);
    assert!(end.starts_with("226 "), "{end}");
    assert!(got == big[5 << 20..], "resumed download differs");
    assert!(c.cmd("RNFR small.txt").starts_with("350 "));
    let r = c.cmd("RNTO d/moved.txt");
    assert!(r.starts_with("250 "), "{r}\n{}", server.log());
    assert!(ctr.get("sas/d/moved.txt") == small);
    for name in ["d/moved.txt", "d/big.bin"] {
        assert!(c.cmd(&format!("DELE {name}")).starts_with("250 "));
    }
    assert!(c.cmd("RMD d").starts_with("250 "));
    assert!(ctr.keys().is_empty(), "{:?}", ctr.keys());

    let (head, _) = token.split_once("sig=").unwrap();
    let forged = format!("{head}sig=AAAA{}", "A".repeat(40));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("forged.toml");
    let text = std::fs::read_to_string(server.config()).unwrap();
    std::fs::write(&config, text.replace(&token, &forged)).unwrap();
    let mut child = spawn(&["--config", &config.to_string_lossy()], &[]);
    let (code, err) = exited(&mut child);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("refused the credentials"), "{err}");
}
