use std::net::IpAddr;
use std::time::Duration;

use super::*;

/// Tue Dec  1 20:37:55 2026 UTC.
fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_796_157_475).unwrap()
}

fn record() -> TransferRecord {
    TransferRecord {
        user: "alice".into(),
        peer: "127.0.0.1".parse().unwrap(),
        verb: "RETR",
        path: "/docs/f20.bin".into(),
        direction: Direction::Download,
        passive: true,
        tls: false,
        ascii: false,
        anonymous: false,
        bytes: 87655,
        duration: Duration::from_millis(700),
        outcome: Ok(()),
        sha256: None,
    }
}

/// The line split into its 18 fields (the time is 5 of them).
fn fields(t: &TransferRecord) -> Vec<String> {
    let l = line(t, now()).unwrap();
    assert!(l.ends_with('\n'), "{l:?}");
    assert_eq!(l.matches('\n').count(), 1, "{l:?}");
    let f: Vec<String> = l.split_whitespace().map(str::to_owned).collect();
    assert_eq!(f.len(), 18, "{l:?}");
    f
}

#[test]
fn a_download_field_by_field() {
    let l = line(&record(), now()).unwrap();
    assert_eq!(
        l,
        "Tue Dec  1 20:37:55 2026 1 127.0.0.1 87655 /docs/f20.bin b _ o r alice ftp 0 * c\n"
    );
    let f = fields(&record());
    assert_eq!(f[..5], ["Tue", "Dec", "1", "20:37:55", "2026"]);
    assert_eq!(f[5], "1", "transfer-time");
    assert_eq!(f[6], "127.0.0.1", "remote-host");
    assert_eq!(f[7], "87655", "file-size");
    assert_eq!(f[8], "/docs/f20.bin", "filename");
    assert_eq!(f[9], "b", "transfer-type");
    assert_eq!(f[10], "_", "special-action-flag");
    assert_eq!(f[11], "o", "direction");
    assert_eq!(f[12], "r", "access-mode");
    assert_eq!(f[13], "alice", "username");
    assert_eq!(f[14..], ["ftp", "0", "*", "c"]);
}

#[test]
fn a_failed_ascii_anonymous_upload() {
    let t = TransferRecord {
        user: "anonymous".into(),
        verb: "STOR",
        direction: Direction::Upload,
        ascii: true,
        anonymous: true,
        bytes: 12,
        duration: Duration::from_millis(2600),
        outcome: Err("connection closed".into()),
        sha256: None,
        ..record()
    };
    let f = fields(&t);
    assert_eq!(f[5], "3", "rounded to the nearest second");
    assert_eq!(f[9], "a");
    assert_eq!(f[11], "i");
    assert_eq!(f[12], "a");
    assert_eq!(f[13], "anonymous");
    assert_eq!(f[17], "i");
}

#[test]
fn never_less_than_one_second() {
    let t = TransferRecord {
        duration: Duration::ZERO,
        ..record()
    };
    assert_eq!(fields(&t)[5], "1");
    let t = TransferRecord {
        duration: Duration::from_secs(3600),
        ..record()
    };
    assert_eq!(fields(&t)[5], "3600");
}

#[test]
fn spaces_and_control_characters_become_underscores() {
    let t = TransferRecord {
        user: "eve\r\nTue Dec  1 20:37:55 2026".into(),
        path: "/a dir/new\nline\t\u{7f}\u{85}é.txt".into(),
        ..record()
    };
    let f = fields(&t);
    assert_eq!(f[8], "/a_dir/new_line___é.txt");
    assert_eq!(f[13], "eve__Tue_Dec__1_20:37:55_2026");
}

#[test]
fn listings_are_left_out() {
    let t = TransferRecord {
        verb: "LIST",
        direction: Direction::Listing,
        ..record()
    };
    assert_eq!(line(&t, now()), None);
}

#[test]
fn ipv6_and_mapped_peers() {
    let v6: IpAddr = "2001:db8::7".parse().unwrap();
    assert_eq!(
        fields(&TransferRecord {
            peer: v6,
            ..record()
        })[6],
        "2001:db8::7"
    );
    let mapped: IpAddr = "::ffff:192.0.2.9".parse().unwrap();
    assert_eq!(
        fields(&TransferRecord {
            peer: mapped,
            ..record()
        })[6],
        "192.0.2.9"
    );
}

#[test]
fn ctime_pads_the_day_with_a_space() {
    let mut s = String::new();
    // A leap day, and a day of one digit.
    write_ctime(
        &mut s,
        OffsetDateTime::from_unix_timestamp(1_709_164_809).unwrap(),
    );
    assert_eq!(s, "Thu Feb 29 00:00:09 2024");
    s.clear();
    write_ctime(&mut s, OffsetDateTime::UNIX_EPOCH);
    assert_eq!(s, "Thu Jan  1 00:00:00 1970");
}

#[test]
fn the_sink_appends_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("xferlog");
    std::fs::write(&path, "old line\n").unwrap();
    let x = Xferlog::open(&path).unwrap();
    x.event(&Event::Transfer(&record()));
    let listing = TransferRecord {
        direction: Direction::Listing,
        ..record()
    };
    x.event(&Event::Transfer(&listing));
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[0], "old line");
    assert!(lines[1].ends_with(" /docs/f20.bin b _ o r alice ftp 0 * c"));
    let moved = dir.path().join("xferlog.1");
    std::fs::rename(&path, &moved).unwrap();
    x.reopen().unwrap();
    x.event(&Event::Transfer(&record()));
    assert_eq!(std::fs::read_to_string(&moved).unwrap(), text);
    assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 1);
}
