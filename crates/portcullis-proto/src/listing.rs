//! Listing formats: the `ls -l` lines of LIST, the facts of MLSD/MLST
//! (RFC 3659 section 7) and the timestamps of MDTM (RFC 3659 section 3).
//! All times are UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What kind of object a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    File,
    Dir,
    /// A symbolic link that is reported but never followed out of the root.
    Symlink,
    /// Devices, FIFOs, sockets: listed, never opened.
    Other,
}

/// Metadata of one object, enough for LIST, MLSx, SIZE and MDTM.
#[derive(Debug, Clone)]
pub struct Metadata {
    pub kind: FileKind,
    pub size: u64,
    pub modified: SystemTime,
    /// Unix permission bits (`0o755`), or a sensible default on back-ends
    /// without them.
    pub mode: u32,
    pub nlink: u64,
}

/// Whole seconds since the epoch (towards zero before it).
fn unix_secs(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// A UTC date and time to the second, for the listing formats.
#[derive(Debug, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
}

impl Civil {
    /// `t` in UTC. Listings convert one time per entry, so this is
    /// arithmetic only: days to a date after Howard Hinnant's
    /// `civil_from_days` (exact on the proleptic Gregorian calendar, as the
    /// time crate is). Years past the time crate's range (+-9999) come out
    /// as the epoch.
    fn of(t: SystemTime) -> Civil {
        let secs = unix_secs(t);
        let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097); // [0, 146096]
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
        let mp = (5 * doy + 2) / 153; // [0, 11], from March
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        if !(-9999..=9999).contains(&year) {
            return Civil::of(UNIX_EPOCH);
        }
        Civil {
            year,
            month: month as u8,
            day: day as u8,
            hour: (sod / 3600) as u8,
            minute: (sod / 60 % 60) as u8,
            second: (sod % 60) as u8,
        }
    }
}

/// Append ASCII digits and spaces made on the stack.
fn push_ascii(out: &mut String, bytes: &[u8]) {
    out.push_str(std::str::from_utf8(bytes).unwrap_or_default());
}

/// `n` in decimal, right-aligned in at least `width` (at most 20) columns,
/// as `{:>width$}` writes it, without the formatting machinery.
fn push_num(out: &mut String, mut n: u64, width: usize) {
    let mut buf = [b' '; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    push_ascii(out, &buf[i.min(buf.len() - width.min(buf.len()))..]);
}

/// `n` (below 100) as two digits.
fn push_2(out: &mut String, n: u8) {
    push_ascii(out, &[b'0' + n / 10 % 10, b'0' + n % 10]);
}

/// A year as four digits, as `{:04}` writes it (a sign before the years
/// before 0).
fn push_year(out: &mut String, year: i64) {
    if (0..=9999).contains(&year) {
        let y = year as u16;
        push_2(out, (y / 100) as u8);
        push_2(out, (y % 100) as u8);
    } else {
        use std::fmt::Write;
        let _ = write!(out, "{year:04}");
    }
}

/// `YYYYMMDDHHMMSS`, the time-val of MDTM and MLSx `modify` (RFC 3659 2.3).
pub fn time_val(t: SystemTime) -> String {
    let mut s = String::with_capacity(14);
    write_time_val(&mut s, t);
    s
}

/// [`time_val`] appended to `out`.
fn write_time_val(out: &mut String, t: SystemTime) {
    let d = Civil::of(t);
    push_year(out, d.year);
    for n in [d.month, d.day, d.hour, d.minute, d.second] {
        push_2(out, n);
    }
}

/// Read a time-val (RFC 3659 section 2.3: `YYYYMMDDHHMMSS[.sss]`, UTC), as
/// MFMT takes it. `None` unless every field is in range.
pub fn parse_time_val(s: &str) -> Option<SystemTime> {
    let (whole, frac) = match s.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (s, None),
    };
    if whole.len() != 14 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |r: std::ops::Range<usize>| whole[r].parse::<u16>().ok();
    let date = time::Date::from_calendar_date(
        i32::from(field(0..4)?),
        time::Month::try_from(u8::try_from(field(4..6)?).ok()?).ok()?,
        u8::try_from(field(6..8)?).ok()?,
    )
    .ok()?;
    let clock = time::Time::from_hms(
        u8::try_from(field(8..10)?).ok()?,
        u8::try_from(field(10..12)?).ok()?,
        u8::try_from(field(12..14)?).ok()?,
    )
    .ok()?;
    let nanos = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            f.parse::<u32>().ok()? * 10u32.pow(9 - f.len() as u32)
        }
        Some(_) => return None,
    };
    let secs = time::PrimitiveDateTime::new(date, clock)
        .assume_utc()
        .unix_timestamp();
    let t = match u64::try_from(secs) {
        Ok(s) => UNIX_EPOCH.checked_add(Duration::new(s, nanos))?,
        Err(_) => UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))?
            .checked_add(Duration::from_nanos(u64::from(nanos)))?,
    };
    Some(t)
}

/// The last component of a LIST/NLST argument when it holds shell
/// wildcards (`*`, `?`, `[...]`), as vsftpd and ProFTPD take them: matched
/// against the names of one directory, never recursively, case-sensitively;
/// a leading dot must be matched by a literal dot (as `ls *` does).
/// (The matcher prunes: `*a` x 500 + `b` against 255 `a`s takes a few
/// microseconds, so a hostile pattern costs no more than the listing.)
#[derive(Debug, Clone)]
pub struct NamePattern(glob::Pattern);

impl NamePattern {
    /// `None` when `s` has no wildcard, or is not a valid pattern (an
    /// unclosed `[`): the argument is then a plain name.
    pub fn new(s: &str) -> Option<NamePattern> {
        if !s.contains(['*', '?', '[']) {
            return None;
        }
        glob::Pattern::new(s).ok().map(NamePattern)
    }

    pub fn matches(&self, name: &str) -> bool {
        const OPTIONS: glob::MatchOptions = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        self.0.matches_with(name, OPTIONS)
    }
}

/// English month abbreviations, as `ls -l` and ctime(3) write them.
pub const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Roughly six months, the cut-over `ls` uses between "HH:MM" and the year.
const SIX_MONTHS: Duration = Duration::from_secs(182 * 24 * 3600);

fn type_char(kind: FileKind) -> char {
    match kind {
        FileKind::File => '-',
        FileKind::Dir => 'd',
        FileKind::Symlink => 'l',
        FileKind::Other => 'p',
    }
}

fn push_mode(out: &mut String, kind: FileKind, mode: u32) {
    let mut s = [b'-'; 10];
    s[0] = type_char(kind) as u8;
    for (i, flag) in b"rwxrwxrwx".iter().enumerate() {
        if mode & (0o400 >> i) != 0 {
            s[i + 1] = *flag;
        }
    }
    push_ascii(out, &s);
}

/// One LIST line in the `ls -l` form that clients parse, e.g.
/// `-rw-r--r--   1 ftp      ftp          1234 Nov 24 22:18 name`
/// (without the line end). Owner and group are always `ftp`: real ids would
/// tell a client about the host's accounts. A symbolic link with a `target`
/// that may be shown ends `name -> target`, as `ls -l` prints it.
pub fn list_line(name: &str, target: Option<&str>, meta: &Metadata, now: SystemTime) -> String {
    let mut s = String::with_capacity(64 + name.len());
    write_list_line(&mut s, name, target, meta, now);
    s
}

/// Whether a link target can go into a listing line as it is: no line
/// ends or other control characters (which would forge lines), and for
/// MLSx no `;` (which ends a fact).
fn showable_target(target: &str, mlsx: bool) -> bool {
    !target.is_empty() && !target.chars().any(|c| c.is_control() || (mlsx && c == ';'))
}

/// [`list_line`] appended to `out`, without allocating (listings of large
/// directories write thousands of these).
pub fn write_list_line(
    out: &mut String,
    name: &str,
    target: Option<&str>,
    meta: &Metadata,
    now: SystemTime,
) {
    let d = Civil::of(meta.modified);
    let recent = match now.duration_since(meta.modified) {
        Ok(age) => age < SIX_MONTHS,
        // In the future: ls shows the year.
        Err(_) => false,
    };
    push_mode(out, meta.kind, meta.mode);
    out.push(' ');
    push_num(out, meta.nlink.max(1), 3);
    out.push_str(" ftp      ftp      ");
    push_num(out, meta.size, 12);
    out.push(' ');
    out.push_str(MONTHS[usize::from(d.month) - 1]);
    out.push(' ');
    push_num(out, u64::from(d.day), 2);
    out.push(' ');
    if recent {
        push_2(out, d.hour);
        out.push(':');
        push_2(out, d.minute);
    } else {
        out.push(' ');
        push_year(out, d.year);
    }
    out.push(' ');
    out.push_str(name);
    if let Some(t) = target.filter(|t| meta.kind == FileKind::Symlink && showable_target(t, false))
    {
        out.push_str(" -> ");
        out.push_str(t);
    }
}

/// The facts MLSx can show, in the order FEAT lists them (RFC 3659 7.8).
pub const MLST_FACTS: &[&str] = &["type", "size", "modify", "perm", "unix.mode"];

/// Which row of a directory listing an entry is (RFC 3659 7.5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MlsxRole {
    /// A plain entry.
    Entry,
    /// The listed directory itself (`type=cdir`).
    Current,
    /// Its parent (`type=pdir`).
    Parent,
}

/// One MLSx fact line, `fact=value;...; name` (without the line end and
/// without MLST's leading space). `perm` is the RFC 3659 7.5.5 string the
/// server computed from the user's permissions; `enabled` the facts chosen
/// with OPTS MLST (lower case). A symbolic link's type is
/// `OS.unix=slink:TARGET` (as ProFTPD and Pure-FTPd write it) when its
/// `target` may be shown, `OS.unix=slink` otherwise.
pub fn mlsx_line(
    name: &str,
    target: Option<&str>,
    meta: &Metadata,
    role: MlsxRole,
    perm: &str,
    enabled: &[&str],
) -> String {
    let mut out = String::with_capacity(96);
    write_mlsx_line(&mut out, name, target, meta, role, perm, enabled);
    out
}

/// [`mlsx_line`] appended to `out`, without allocating.
pub fn write_mlsx_line(
    out: &mut String,
    name: &str,
    target: Option<&str>,
    meta: &Metadata,
    role: MlsxRole,
    perm: &str,
    enabled: &[&str],
) {
    let on = |f: &str| enabled.contains(&f);
    if on("type") {
        let t = match (role, meta.kind) {
            (MlsxRole::Current, _) => "cdir",
            (MlsxRole::Parent, _) => "pdir",
            (_, FileKind::Dir) => "dir",
            (_, FileKind::File) => "file",
            (_, FileKind::Symlink) => "OS.unix=slink",
            (_, FileKind::Other) => "OS.unix=special",
        };
        out.push_str("type=");
        out.push_str(t);
        if let Some(target) = target.filter(|t| {
            role == MlsxRole::Entry && meta.kind == FileKind::Symlink && showable_target(t, true)
        }) {
            out.push(':');
            out.push_str(target);
        }
        out.push(';');
    }
    if on("size") && meta.kind != FileKind::Dir {
        out.push_str("size=");
        push_num(out, meta.size, 0);
        out.push(';');
    }
    if on("modify") {
        out.push_str("modify=");
        write_time_val(out, meta.modified);
        out.push(';');
    }
    if on("perm") {
        out.push_str("perm=");
        out.push_str(perm);
        out.push(';');
    }
    if on("unix.mode") {
        out.push_str("unix.mode=");
        let m = meta.mode & 0o7777;
        push_ascii(
            out,
            &[9, 6, 3, 0].map(|shift| b'0' + (m >> shift & 7) as u8),
        );
        out.push(';');
    }
    out.push(' ');
    out.push_str(name);
}

/// The FEAT line for MLST: every supported fact, the enabled ones starred.
pub fn mlst_feat(enabled: &[&str]) -> String {
    let mut s = String::from("MLST ");
    for f in MLST_FACTS {
        s.push_str(f);
        if enabled.iter().any(|e| e == f) {
            s.push('*');
        }
        s.push(';');
    }
    s
}

#[cfg(test)]
mod tests;
