use super::*;

fn meta(kind: FileKind, size: u64, secs: u64, mode: u32) -> Metadata {
    Metadata {
        kind,
        size,
        modified: UNIX_EPOCH + Duration::from_secs(secs),
        mode,
        nlink: 1,
    }
}

// 2026-11-24 22:18:48 UTC
const T: u64 = 1_795_558_728;

#[test]
fn name_patterns_match_like_the_shell() {
    let p = |s: &str| NamePattern::new(s).unwrap();
    assert!(NamePattern::new("plain.txt").is_none());
    assert!(NamePattern::new("[oops").is_none());
    assert!(p("*.txt").matches("a.txt"));
    assert!(!p("*.txt").matches("a.TXT"));
    assert!(!p("*").matches(".hidden"));
    assert!(p(".*").matches(".hidden"));
    assert!(p("?.txt").matches("a.txt"));
    assert!(!p("?.txt").matches("ab.txt"));
    assert!(p("[cd]*").matches("d.bin"));
    assert!(!p("[cd]*").matches("e.bin"));
    assert!(p("f*").matches("f with space"));
}

#[test]
fn time_vals_parse_back() {
    let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    assert_eq!(parse_time_val(&time_val(t)), Some(t));
    assert_eq!(
        parse_time_val("20231114221320.5"),
        Some(t + Duration::from_millis(500))
    );
    assert_eq!(
        parse_time_val("19691231235959"),
        Some(UNIX_EPOCH - Duration::from_secs(1))
    );
    for bad in [
        "",
        "2023111422132",
        "202311142213200",
        "20231314221320",
        "20230230221320",
        "20231114241320",
        "20231114221360",
        "20231114221320.",
        "20231114221320.1234567890",
        "2023111422132x",
        "+2023111422132",
    ] {
        assert_eq!(parse_time_val(bad), None, "{bad}");
    }
}

#[test]
fn time_val_is_utc_yyyymmddhhmmss() {
    assert_eq!(
        time_val(UNIX_EPOCH + Duration::from_secs(T)),
        "20261124221848"
    );
    assert_eq!(time_val(UNIX_EPOCH), "19700101000000");
}

#[test]
fn list_line_recent_and_old() {
    let now = UNIX_EPOCH + Duration::from_secs(T + 60);
    let m = meta(FileKind::File, 1234, T, 0o644);
    assert_eq!(
        list_line("a b.txt", None, &m, now),
        "-rw-r--r--   1 ftp      ftp              1234 Nov 24 22:18 a b.txt"
    );
    let old = meta(FileKind::Dir, 4096, T - 400 * 86400, 0o755);
    assert_eq!(
        list_line("d", Some("ignored"), &old, now),
        "drwxr-xr-x   1 ftp      ftp              4096 Oct 20  2025 d"
    );
    let link = meta(FileKind::Symlink, 9, T, 0o777);
    assert_eq!(
        list_line("l", Some("../a b.txt"), &link, now),
        "lrwxrwxrwx   1 ftp      ftp                 9 Nov 24 22:18 l -> ../a b.txt"
    );
    // A target that would forge a line is left out.
    assert_eq!(
        list_line("l", Some("x\r\n-rw"), &link, now),
        "lrwxrwxrwx   1 ftp      ftp                 9 Nov 24 22:18 l"
    );
}

#[test]
fn mlsx_facts() {
    let all = MLST_FACTS;
    let m = meta(FileKind::File, 5, T, 0o640);
    assert_eq!(
        mlsx_line("f", None, &m, MlsxRole::Entry, "adfrw", all),
        "type=file;size=5;modify=20261124221848;perm=adfrw;unix.mode=0640; f"
    );
    let d = meta(FileKind::Dir, 4096, T, 0o755);
    assert_eq!(
        mlsx_line(".", None, &d, MlsxRole::Current, "el", &["type"]),
        "type=cdir; ."
    );
    let link = meta(FileKind::Symlink, 5, T, 0o777);
    let ty = ["type"];
    assert_eq!(
        mlsx_line("l", Some("sub/f"), &link, MlsxRole::Entry, "", &ty),
        "type=OS.unix=slink:sub/f; l"
    );
    assert_eq!(
        mlsx_line("l", Some("a;b"), &link, MlsxRole::Entry, "", &ty),
        "type=OS.unix=slink; l"
    );
    assert_eq!(
        mlst_feat(&["size"]),
        "MLST type;size*;modify;perm;unix.mode;"
    );
}

#[test]
fn civil_dates_agree_with_the_time_crate() {
    use time::OffsetDateTime;
    let check = |secs: i64| {
        let t = match u64::try_from(secs) {
            Ok(s) => UNIX_EPOCH + Duration::from_secs(s),
            Err(_) => UNIX_EPOCH - Duration::from_secs(secs.unsigned_abs()),
        };
        let d = OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let want = Civil {
            year: i64::from(d.year()),
            month: u8::from(d.month()),
            day: d.day(),
            hour: d.hour(),
            minute: d.minute(),
            second: d.second(),
        };
        assert_eq!(Civil::of(t), want, "{secs}");
    };
    // Every day over 800 years around the epoch (leap days, centuries, 400
    // years), at a few times of day; then the edges of the time crate's range.
    for day in -146_097i64..146_097 {
        for sod in [0, 1, 3599, 43_200, 86_399] {
            check(day * 86_400 + sod);
        }
    }
    for secs in [
        -377_705_116_800,
        -377_705_116_801,
        253_402_300_799,
        253_402_300_800,
        i64::MIN / 2,
        i64::MAX / 2,
    ] {
        check(secs);
    }
}

#[test]
fn list_and_mlsx_numbers_are_padded_as_format_pads_them() {
    let mut m = meta(FileKind::File, 0, T, 0o7777);
    for (size, nlink) in [(0, 0), (7, 1), (123_456_789_012, 999), (u64::MAX, u64::MAX)] {
        m.size = size;
        m.nlink = nlink;
        let line = list_line("n", None, &m, UNIX_EPOCH + Duration::from_secs(T + 60));
        let want = format!(
            "-rwxrwxrwx {:>3} ftp      ftp      {size:>12} Nov 24 22:18 n",
            nlink.max(1)
        );
        assert_eq!(line, want);
        let all = MLST_FACTS;
        let fact = mlsx_line("n", None, &m, MlsxRole::Entry, "r", all);
        assert_eq!(
            fact,
            format!("type=file;size={size};modify=20261124221848;perm=r;unix.mode=7777; n")
        );
    }
    m.mode = 0o640;
    m.modified = UNIX_EPOCH - Duration::from_secs(1);
    let line = list_line("n", None, &m, UNIX_EPOCH + Duration::from_secs(T));
    assert!(line.starts_with("-rw-r----- "), "{line}");
    assert!(line.ends_with(" Dec 31  1969 n"), "{line}");
    assert_eq!(time_val(m.modified), "19691231235959");
}
