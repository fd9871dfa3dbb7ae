//! `limits.hash_on_upload` on object stores: the SHA-256 of an upload
//! kept in the object's own user metadata, `portcullissha256`, as
//! `v1 <hex> <size>`. The name is one lower-case word: Azure's names
//! must be identifiers (no `-`), header names come back lower-cased,
//! and an `_` does not survive every S3 server's HTTP layer (WSGI
//! turns it into `-`, as moto's shows; nginx drops such headers).
//!
//! Why it still covers the object when HASH finds it: the metadata is
//! written with the bytes, in the request that writes them (the single
//! PUT, or a provider's own completion of the parts), or, where the
//! completion cannot carry it, by a conditional request right after it
//! that names the ETag the completion answered (the provider's
//! [`super::Provider::set_metadata`]: S3's copy of the object onto
//! itself). Every write of an object's bytes by anyone else (a PUT, a
//! completion, a copy onto it) replaces its metadata, so an object
//! overwritten straight in the store carries ours no longer, and HASH
//! reads it. A copy of the object (our RNTO, or another client's copy)
//! carries the metadata along with the same bytes. The size must match
//! as well. What this cannot tell: a client that writes new bytes and
//! sets our metadata name on them itself.

/// The metadata's name.
pub(super) const NAME: &str = "portcullissha256";

/// The metadata's value for `sha256` (lower-case hex) over `size` bytes.
pub(super) fn encode(sha256: &str, size: u64) -> String {
    format!("v1 {sha256} {size}")
}

/// The digest and the size it covers; `None` for a value that is not ours.
pub(super) fn decode(v: &str) -> Option<(String, u64)> {
    let mut it = v.split(' ');
    let (Some("v1"), Some(hex), Some(size), None) = (it.next(), it.next(), it.next(), it.next())
    else {
        return None;
    };
    if hex.len() != 64 || !hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    Some((hex.to_owned(), size.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_foreign_values() {
        let hex = "0f".repeat(32);
        let v = encode(&hex, 7);
        assert_eq!(v, format!("v1 {hex} 7"));
        assert_eq!(decode(&v), Some((hex.clone(), 7)));
        for bad in [
            "",
            "v1",
            &format!("v2 {hex} 7"),
            &format!("v1 {} 7", "0F".repeat(32)),
            &format!("v1 {hex} x"),
            &format!("v1 {hex} 7 1.0"),
            "v1 ab 7",
        ] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
