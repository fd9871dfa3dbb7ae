//! The value types of the file: rates, networks, TLS modes, the umask,
//! port ranges, host names and directories, each parsed with the key it
//! came from, so that every problem names its key.

use std::net::IpAddr;
use std::path::Path;

use super::*;

pub(crate) fn parse_rate(key: &str, r: &Rate, errors: &mut Vec<String>) -> u64 {
    let t = match r {
        Rate::Bytes(n) => return *n,
        Rate::Text(t) => t.trim(),
    };
    let (num, mult) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 1 << 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    match num.trim().parse::<u64>() {
        Ok(n) => n.saturating_mul(mult),
        Err(_) => {
            errors.push(format!(
                "{key}: {t:?} is not a rate (bytes per second, e.g. 1048576 or \"10M\")"
            ));
            0
        }
    }
}

/// A size in bytes, as the rates write it: a number, or a string with a
/// K, M, G or T suffix (powers of 1024), e.g. "10G".
pub(crate) fn parse_size(key: &str, r: &Rate, errors: &mut Vec<String>) -> u64 {
    let t = match r {
        Rate::Bytes(n) => return *n,
        Rate::Text(t) => t.trim(),
    };
    let (num, mult) = match t.chars().last() {
        Some('K' | 'k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('M' | 'm') => (&t[..t.len() - 1], 1 << 20),
        Some('G' | 'g') => (&t[..t.len() - 1], 1 << 30),
        Some('T' | 't') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    match num.trim().parse::<u64>() {
        Ok(n) => n.saturating_mul(mult),
        Err(_) => {
            errors.push(format!(
                "{key}: {t:?} is not a size (bytes, e.g. 1073741824 or \"1G\")"
            ));
            0
        }
    }
}

pub(crate) fn parse_nets(
    key: &str,
    list: &[String],
    errors: &mut Vec<String>,
) -> Vec<ipnet::IpNet> {
    let mut out = Vec::new();
    for (i, n) in list.iter().enumerate() {
        // A bare address is a network of one.
        let parsed = n
            .parse::<ipnet::IpNet>()
            .or_else(|_| n.parse::<IpAddr>().map(ipnet::IpNet::from));
        match parsed {
            Ok(net) => out.push(net),
            Err(_) => errors.push(format!(
                "{key}[{i}]: {n:?} is not a network (e.g. \"10.0.0.0/8\", \"2001:db8::/32\", \"198.51.100.7\")"
            )),
        }
    }
    out
}

pub(crate) fn parse_tls_mode(key: &str, s: &str, errors: &mut Vec<String>) -> Option<TlsMode> {
    match s {
        "optional" => Some(TlsMode::Optional),
        "required" => Some(TlsMode::Required),
        _ => {
            errors.push(format!(
                "{key}: {s:?} is not one of off, optional, required"
            ));
            None
        }
    }
}

pub(crate) fn parse_data_protection(
    key: &str,
    s: &str,
    errors: &mut Vec<String>,
) -> Option<DataProtection> {
    match s {
        "optional" => Some(DataProtection::Optional),
        "required" => Some(DataProtection::Required),
        _ => {
            errors.push(format!("{key}: {s:?} is not one of optional, required"));
            None
        }
    }
}

/// Parse `server.umask`: octal digits (a leading "0o" allowed), at most 777.
pub(crate) fn parse_umask(s: &str, errors: &mut Vec<String>) -> u32 {
    let digits = s.trim().strip_prefix("0o").unwrap_or(s.trim());
    let octal = !digits.is_empty() && digits.bytes().all(|b| (b'0'..=b'7').contains(&b));
    match u32::from_str_radix(digits, 8) {
        Ok(m) if octal && m <= 0o777 => m,
        _ => {
            errors.push(format!(
                "server.umask: {s:?} is not an octal mask of at most 777 (e.g. \"022\" or \"027\")"
            ));
            crate::options::DEFAULT_UMASK
        }
    }
}

/// Parse "LO-HI".
pub fn parse_port_range(s: &str) -> Result<std::ops::RangeInclusive<u16>, String> {
    let (lo, hi) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?}: expected \"LO-HI\""))?;
    let lo: u16 = lo
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: bad low port"))?;
    let hi: u16 = hi
        .trim()
        .parse()
        .map_err(|_| format!("{s:?}: bad high port"))?;
    if lo == 0 {
        return Err(format!("{s:?}: port 0 is not a port"));
    }
    if lo > hi {
        return Err(format!("{s:?}: low port above high port"));
    }
    Ok(lo..=hi)
}

/// A DNS name: dot-separated labels of letters, digits and hyphens.
pub(crate) fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && s.parse::<IpAddr>().is_err()
}

pub(crate) fn check_dir(key: &str, p: &Path, errors: &mut Vec<String>) {
    if !p.is_dir() {
        errors.push(format!(
            "{key}: {} is not an existing directory",
            p.display()
        ));
    }
}
