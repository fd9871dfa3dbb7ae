//! `limits.hash_on_upload` on local roots: the SHA-256 of an upload kept
//! in a user extended attribute of the file (`user.portcullis.sha256`),
//! with the size and modification time it covers, so that HASH can answer
//! from it while the file is unchanged. A file system without user
//! attributes keeps none (the upload still succeeds; HASH reads the file).

use std::time::{Duration, UNIX_EPOCH};

use super::super::KeptDigest;

/// The attribute's name.
const NAME: &str = "user.portcullis.sha256";
/// More than any value we write; a longer one is not ours.
const MAX: usize = 256;

/// `v1 <hex> <size> <secs>.<nanos>`.
pub(super) fn encode(d: &KeptDigest) -> String {
    let t = d.modified.duration_since(UNIX_EPOCH).unwrap_or_default();
    format!(
        "v1 {} {} {}.{:09}",
        d.sha256,
        d.size,
        t.as_secs(),
        t.subsec_nanos()
    )
}

pub(super) fn decode(v: &str) -> Option<KeptDigest> {
    let mut it = v.split(' ');
    let (Some("v1"), Some(hex), Some(size), Some(time), None) =
        (it.next(), it.next(), it.next(), it.next(), it.next())
    else {
        return None;
    };
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let (secs, nanos) = time.split_once('.')?;
    let modified =
        UNIX_EPOCH.checked_add(Duration::new(secs.parse().ok()?, nanos.parse().ok()?))?;
    Some(KeptDigest {
        sha256: hex.to_owned(),
        size: size.parse().ok()?,
        modified,
    })
}

pub(super) fn set(f: &std::fs::File, value: &str) -> std::io::Result<()> {
    rustix::fs::fsetxattr(f, NAME, value.as_bytes(), rustix::fs::XattrFlags::empty())
        .map_err(std::io::Error::from)
}

/// Remove the attribute (a write in place makes the digest stale, and the
/// size and time it covers can be the same again: the clock's tick, or a
/// write of as many bytes as it replaces). None there is not a failure.
pub(super) fn remove(f: impl rustix::fd::AsFd) -> std::io::Result<()> {
    match rustix::fs::fremovexattr(f, NAME) {
        Ok(()) | Err(rustix::io::Errno::NODATA | rustix::io::Errno::NOTSUP) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The attribute's value; `None` when the file has none (or one that is
/// not ours).
pub(super) fn get(f: &std::fs::File) -> std::io::Result<Option<String>> {
    let mut buf = [0u8; MAX];
    match rustix::fs::fgetxattr(f, NAME, &mut buf) {
        Ok(n) => Ok(std::str::from_utf8(&buf[..n]).ok().map(str::to_owned)),
        Err(rustix::io::Errno::NODATA | rustix::io::Errno::RANGE) => Ok(None),
        Err(rustix::io::Errno::NOTSUP) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_foreign_values() {
        let d = KeptDigest {
            sha256: "ab".repeat(32),
            size: 12,
            modified: UNIX_EPOCH + Duration::new(1_700_000_000, 5),
        };
        let v = encode(&d);
        assert_eq!(v, format!("v1 {} 12 1700000000.000000005", "ab".repeat(32)));
        assert_eq!(decode(&v), Some(d));
        for bad in ["", "v2 x 1 1.0", "v1 AB 1 1.0", "v1 00 1 1.0 extra"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
