//! Listing formats: the `ls -l` lines of LIST, the facts of MLSD/MLST
//! (RFC 3659 section 7) and the timestamps of MDTM (RFC 3659 section 3).
//! All times are UTC.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;

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

fn utc(t: SystemTime) -> OffsetDateTime {
    let secs = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    };
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `YYYYMMDDHHMMSS`, the time-val of MDTM and MLSx `modify` (RFC 3659 2.3).
pub fn time_val(t: SystemTime) -> String {
    let mut s = String::with_capacity(14);
    write_time_val(&mut s, t);
    s
}

/// [`time_val`] appended to `out`.
fn write_time_val(out: &mut String, t: SystemTime) {
    use std::fmt::Write;
    let d = utc(t);
    let _ = write!(
        out,
        "{:04}{:02}{:02}{:02}{:02}{:02}",
        d.year(),
        u8::from(d.month()),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    );
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
    out.push(type_char(kind));
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        out.push(if bits & 4 != 0 { 'r' } else { '-' });
        out.push(if bits & 2 != 0 { 'w' } else { '-' });
        out.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
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
    use std::fmt::Write;
    let d = utc(meta.modified);
    let recent = match now.duration_since(meta.modified) {
        Ok(age) => age < SIX_MONTHS,
        // In the future: ls shows the year.
        Err(_) => false,
    };
    push_mode(out, meta.kind, meta.mode);
    let _ = write!(
        out,
        " {:>3} ftp      ftp      {:>12} {} {:>2} ",
        meta.nlink.max(1),
        meta.size,
        MONTHS[usize::from(u8::from(d.month())) - 1],
        d.day(),
    );
    if recent {
        let _ = write!(out, "{:02}:{:02}", d.hour(), d.minute());
    } else {
        let _ = write!(out, " {:04}", d.year());
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
    enabled: &[String],
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
    enabled: &[String],
) {
    use std::fmt::Write;
    let on = |f: &str| enabled.iter().any(|e| e == f);
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
        let _ = write!(out, "size={};", meta.size);
    }
    if on("modify") {
        out.push_str("modify=");
        write_time_val(out, meta.modified);
        out.push(';');
    }
    if on("perm") {
        let _ = write!(out, "perm={perm};");
    }
    if on("unix.mode") {
        let _ = write!(out, "unix.mode={:04o};", meta.mode & 0o7777);
    }
    out.push(' ');
    out.push_str(name);
}

/// The FEAT line for MLST: every supported fact, the enabled ones starred.
pub fn mlst_feat(enabled: &[String]) -> String {
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
