//! An `[auth.http]` hook that answers with an `s3://` root and a profile:
//! the account's files land in that profile's bucket on moto.

use std::io::Write;
use std::time::Duration;

use super::{server_with, Moto, OTHER};
use crate::accounts::{try_login, Hook};

#[test]
fn s3_a_hooks_account_with_an_s3_root_and_profile() {
    let Some(moto) = Moto::start() else { return };
    let hook = Hook::start(|req| {
        let account = match req["user"].as_str() {
            Some("dana") => serde_json::json!({
                "root": format!("s3://{OTHER}/hooked"),
                "s3_profile": "other",
                "permissions": ["read", "write"],
            }),
            _ => serde_json::json!({ "root": "s3://some-bucket/y", "s3_profile": "nowhere" }),
        };
        (200, account.to_string(), Duration::ZERO)
    });
    let server = server_with(
        &moto,
        &format!(
            "\n[auth]\norder = [\"config\", \"http\"]\n[auth.http]\nurl = \"{}\"\n",
            hook.url()
        ),
    );
    let (r, mut c) = try_login(&server, "dana", "from-the-hook");
    assert!(r.starts_with("230 "), "{r} {}", server.log());
    let mut data = c.pasv();
    assert!(c.cmd("STOR h.txt").starts_with("150 "));
    data.write_all(b"stored for the hook's account\n").unwrap();
    drop(data);
    let r = c.reply();
    assert!(r.starts_with("226 "), "{r}");
    assert_eq!(
        moto.get(OTHER, "hooked/h.txt"),
        b"stored for the hook's account\n"
    );
    // A profile that is not configured: a malformed account, 421.
    let (r, _c) = try_login(&server, "mallory", "x");
    assert!(r.starts_with("421 "), "{r}");
    assert!(
        server.log().contains("no [s3.profiles.nowhere] section"),
        "{}",
        server.log()
    );
}
