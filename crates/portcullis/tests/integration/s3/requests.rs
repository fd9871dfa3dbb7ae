//! What a download asks of the store, as s3s-fs's own log of each request
//! shows: a RETR is its GETs and nothing more (the GET's answer gives the
//! size that the 150 reply states), and a REST before it adds the one HEAD
//! that tells whether the offset is past the end.

use std::time::Duration;

use super::store::Moto;
use super::{binary, retr, server, stor, BUCKET};
use crate::harness::{random_bytes, read_all, Raw};

/// The reads (GET, HEAD) s3s-fs logged for exactly `key`, in order.
fn reads(store: &Moto, key: &str) -> Vec<String> {
    let uri = format!("/{BUCKET}/{key}");
    store
        .requests(&uri)
        .iter()
        .filter(|l| {
            let rest = &l[l.find(&uri).unwrap() + uri.len()..];
            rest.starts_with(',') || rest.starts_with('?')
        })
        .map(|l| {
            let at = l.find("method: ").unwrap() + 8;
            l[at..at + l[at..].find(',').unwrap()].to_owned()
        })
        .filter(|m| m == "GET" || m == "HEAD")
        .collect()
}

/// The reads of `key` after the first `before`, once at least `want`
/// have been logged (s3s-fs's log is read by a thread: up to 5 s) and
/// any more had 300 ms to show.
fn reads_since(store: &Moto, key: &str, before: usize, want: usize) -> Vec<String> {
    for _ in 0..100 {
        if reads(store, key).len() >= before + want {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    reads(store, key)[before..].to_vec()
}

#[test]
fn s3sfs_retr_is_its_gets_and_the_size_comes_from_the_first() {
    let Some(store) = Moto::s3s_fs_logged() else {
        return;
    };
    let server = server(&store);
    let mut c = Raw::login(server.addr, "alice");
    binary(&mut c);
    let small = random_bytes(1000, 11);
    // Chunks of 1 MiB (download_chunk in the test config): three from 0,
    // two from 10.
    let big = random_bytes(2 * 1024 * 1024 + 5, 12);
    for (file, data) in [("small.bin", &small), ("big.bin", &big)] {
        assert!(stor(&mut c, file, data).starts_with("226 "));
        let key = format!("alice/{file}");
        std::thread::sleep(Duration::from_millis(300));
        let before = reads(&store, &key).len();
        let d = c.pasv();
        let r = c.cmd(&format!("RETR {file}"));
        assert!(r.contains(&format!("({} bytes)", data.len())), "{r}");
        let got = read_all(d);
        let end = c.reply();
        assert!(end.starts_with("226 "), "{end}");
        assert!(&got == data, "{file} read back differs");
        // One GET per chunk of 1 MiB from the offset.
        let gets = |from: usize| (data.len() - from).div_ceil(1 << 20);
        assert_eq!(
            reads_since(&store, &key, before, gets(0)),
            vec!["GET"; gets(0)],
            "{file}"
        );

        // REST: one HEAD (is the offset past the end?), then the GETs.
        let before = reads(&store, &key).len();
        let (got, end) = retr(&mut c, file, 10);
        assert!(end.starts_with("226 "), "{end}");
        assert!(got == data[10..], "{file} from 10 differs");
        let asked = reads_since(&store, &key, before, 1 + gets(10));
        assert_eq!(asked[0], "HEAD", "{file}: {asked:?}");
        assert!(asked[1..].iter().all(|m| m == "GET"), "{file}: {asked:?}");
        assert_eq!(asked.len(), 1 + gets(10), "{file}: {asked:?}");
    }
    c.cmd("QUIT");
}
