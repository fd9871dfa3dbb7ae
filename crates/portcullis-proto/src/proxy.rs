//! The PROXY protocol header (HAProxy's specification, versions 1 and 2)
//! that a load balancer sends before anything else on a connection, to say
//! which client it forwards. No I/O: [`parse`] looks at the bytes read so
//! far and says either what the header holds and how long it was, or how
//! many more bytes to read at the least. A caller that reads exactly that
//! many never reads past the header, so whatever follows it (a TLS
//! ClientHello on an implicit-TLS port) stays in the socket.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The 12 bytes that open a version 2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Longest version 1 header, line end included (specification, 2.1).
pub const V1_MAX: usize = 107;
/// Longest version 2 header accepted here: the 16 fixed bytes, the
/// addresses and room for the TLVs a balancer adds (HAProxy's unique id,
/// TLS details). Longer ones are refused, not read.
pub const V2_MAX: usize = 16 + 1024;
/// What a reader takes first: the shortest header there is
/// (`PROXY UNKNOWN\r\n`).
pub const FIRST_READ: usize = 15;

/// What a header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// The balancer's own connection, not a client's (v2 `LOCAL`: a
    /// health check).
    Local,
    /// A client's connection that the balancer could not describe (v1
    /// `UNKNOWN`, v2 `PROXY` with the family `AF_UNSPEC` or `AF_UNIX`): the
    /// specification (2.1, 2.2) says to serve it with the connection's own
    /// addresses, the balancer standing for the client.
    Unknown,
    /// A forwarded client: who it is, and the address it connected to.
    Proxied {
        source: SocketAddr,
        destination: SocketAddr,
    },
}

/// How far a header has been read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parse {
    /// Read at least this many more bytes, then parse again.
    Need(usize),
    /// The header, and how many bytes it took.
    Done { header: Header, len: usize },
}

/// Why bytes are not a PROXY header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    #[error("not a PROXY protocol header")]
    NotProxy,
    #[error("malformed PROXY protocol header: {0}")]
    Malformed(&'static str),
    #[error("PROXY protocol header longer than {0} bytes")]
    TooLong(usize),
}

/// Parse the header at the start of `buf`.
pub fn parse(buf: &[u8]) -> Result<Parse, ProxyError> {
    if buf.is_empty() {
        return Ok(Parse::Need(FIRST_READ));
    }
    let n = buf.len().min(V2_SIGNATURE.len());
    if buf[..n] == V2_SIGNATURE[..n] {
        return parse_v2(buf);
    }
    let v1 = b"PROXY ";
    let m = buf.len().min(v1.len());
    if buf[..m] != v1[..m] {
        return Err(ProxyError::NotProxy);
    }
    if buf.len() < FIRST_READ {
        return Ok(Parse::Need(FIRST_READ - buf.len()));
    }
    parse_v1(buf)
}

fn parse_v1(buf: &[u8]) -> Result<Parse, ProxyError> {
    let Some(end) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() >= V1_MAX {
            return Err(ProxyError::TooLong(V1_MAX));
        }
        // A line end can only come one byte at a time without reading past it.
        return Ok(Parse::Need(1));
    };
    let len = end + 1;
    if len > V1_MAX {
        return Err(ProxyError::TooLong(V1_MAX));
    }
    let line = buf[..end]
        .strip_suffix(b"\r")
        .ok_or(ProxyError::Malformed("v1 line does not end with CRLF"))?;
    let line = std::str::from_utf8(line).map_err(|_| ProxyError::Malformed("v1 not ASCII"))?;
    let mut parts = line.split(' ');
    parts.next(); // "PROXY"
    let header = match parts.next() {
        // Whatever follows UNKNOWN on the line is to be ignored (2.1).
        Some("UNKNOWN") => Header::Unknown,
        Some(family @ ("TCP4" | "TCP6")) => {
            let mut field = || {
                parts
                    .next()
                    .ok_or(ProxyError::Malformed("v1 field missing"))
            };
            let (src, dst, sport, dport) = (field()?, field()?, field()?, field()?);
            if parts.next().is_some() {
                return Err(ProxyError::Malformed("v1 has too many fields"));
            }
            let ip = |s: &str| -> Result<IpAddr, ProxyError> {
                let ip: IpAddr = s.parse().map_err(|_| ProxyError::Malformed("v1 address"))?;
                match (family, ip) {
                    ("TCP4", IpAddr::V4(_)) | ("TCP6", IpAddr::V6(_)) => Ok(ip),
                    _ => Err(ProxyError::Malformed("v1 address of the other family")),
                }
            };
            let port = |s: &str| -> Result<u16, ProxyError> {
                // Decimal without a sign or a leading zero (specification, 2.1).
                if s.is_empty() || (s.len() > 1 && s.starts_with('0')) {
                    return Err(ProxyError::Malformed("v1 port"));
                }
                s.parse().map_err(|_| ProxyError::Malformed("v1 port"))
            };
            Header::Proxied {
                source: SocketAddr::new(ip(src)?, port(sport)?),
                destination: SocketAddr::new(ip(dst)?, port(dport)?),
            }
        }
        _ => {
            return Err(ProxyError::Malformed(
                "v1 protocol is not TCP4, TCP6 or UNKNOWN",
            ))
        }
    };
    Ok(Parse::Done { header, len })
}

fn parse_v2(buf: &[u8]) -> Result<Parse, ProxyError> {
    if buf.len() < 16 {
        return Ok(Parse::Need(16 - buf.len()));
    }
    let (ver_cmd, family) = (buf[12], buf[13]);
    let body = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let len = 16 + body;
    if len > V2_MAX {
        return Err(ProxyError::TooLong(V2_MAX));
    }
    if ver_cmd >> 4 != 2 {
        return Err(ProxyError::Malformed("v2 version is not 2"));
    }
    if buf.len() < len {
        return Ok(Parse::Need(len - buf.len()));
    }
    let a = &buf[16..len];
    let header = match ver_cmd & 0x0f {
        0 => Header::Local,
        1 => match family {
            // TCP over IPv4, or UDP: only the addresses matter here.
            0x11 | 0x12 => {
                if a.len() < 12 {
                    return Err(ProxyError::Malformed("v2 IPv4 addresses cut short"));
                }
                let ip = |i: usize| IpAddr::V4(Ipv4Addr::new(a[i], a[i + 1], a[i + 2], a[i + 3]));
                let port = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
                Header::Proxied {
                    source: SocketAddr::new(ip(0), port(8)),
                    destination: SocketAddr::new(ip(4), port(10)),
                }
            }
            0x21 | 0x22 => {
                if a.len() < 36 {
                    return Err(ProxyError::Malformed("v2 IPv6 addresses cut short"));
                }
                let ip = |i: usize| {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(&a[i..i + 16]);
                    IpAddr::V6(Ipv6Addr::from(o))
                };
                let port = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
                Header::Proxied {
                    source: SocketAddr::new(ip(0), port(32)),
                    destination: SocketAddr::new(ip(16), port(34)),
                }
            }
            // Unspecified, or Unix sockets: no IP client to name.
            0x00 | 0x31 | 0x32 => Header::Unknown,
            // Other families are to be refused (2.2).
            _ => {
                return Err(ProxyError::Malformed(
                    "v2 address family is not a known one",
                ))
            }
        },
        _ => {
            return Err(ProxyError::Malformed(
                "v2 command is neither LOCAL nor PROXY",
            ))
        }
    };
    Ok(Parse::Done { header, len })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feed `bytes` the way a reader does: exactly what each `Need` asks.
    fn read_like_a_server(bytes: &[u8]) -> Result<(Header, usize), ProxyError> {
        let mut have = FIRST_READ.min(bytes.len());
        for _ in 0..2000 {
            match parse(&bytes[..have])? {
                Parse::Done { header, len } => return Ok((header, len)),
                Parse::Need(n) => {
                    assert!(n > 0);
                    if have + n > bytes.len() {
                        return Err(ProxyError::Malformed("eof"));
                    }
                    have += n;
                }
            }
        }
        panic!("no progress");
    }

    fn v2(cmd: u8, family: u8, addrs: &[u8]) -> Vec<u8> {
        let mut b = V2_SIGNATURE.to_vec();
        b.extend([0x20 | cmd, family]);
        b.extend((addrs.len() as u16).to_be_bytes());
        b.extend(addrs);
        b
    }

    #[test]
    fn version_1() {
        let line = b"PROXY TCP4 198.51.100.7 203.0.113.1 51000 21\r\nUSER x\r\n";
        let (h, len) = read_like_a_server(line).unwrap();
        assert_eq!(len, 46);
        assert_eq!(
            h,
            Header::Proxied {
                source: "198.51.100.7:51000".parse().unwrap(),
                destination: "203.0.113.1:21".parse().unwrap(),
            }
        );
        let six = b"PROXY TCP6 2001:db8::1 2001:db8::2 4000 990\r\n";
        let (h, _) = read_like_a_server(six).unwrap();
        assert!(matches!(h, Header::Proxied { source, .. } if source.port() == 4000));
        assert_eq!(
            read_like_a_server(b"PROXY UNKNOWN\r\n").unwrap(),
            (Header::Unknown, 15)
        );
        let addressed = b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
        assert_eq!(
            read_like_a_server(addressed).unwrap(),
            (Header::Unknown, addressed.len())
        );
        for bad in [
            &b"PROXY TCP4 198.51.100.7 203.0.113.1 51000\r\n"[..],
            b"PROXY TCP4 2001:db8::1 203.0.113.1 1 2\r\n",
            b"PROXY TCP4 198.51.100.7 203.0.113.1 051000 21\r\n",
            b"PROXY TCP4 198.51.100.7 203.0.113.1 70000 21\r\n",
            b"PROXY TCP4 198.51.100.7 203.0.113.1 1 21 x\r\n",
            b"PROXY UDP4 198.51.100.7 203.0.113.1 1 21\r\n",
            b"PROXY TCP4 198.51.100.7 203.0.113.1 1 21\n",
        ] {
            assert!(
                matches!(read_like_a_server(bad), Err(ProxyError::Malformed(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let long = [b"PROXY ".as_slice(), &[b'x'; 200]].concat();
        assert_eq!(read_like_a_server(&long), Err(ProxyError::TooLong(V1_MAX)));
        assert_eq!(parse(b"USER anonymous\r\n"), Err(ProxyError::NotProxy));
        assert_eq!(parse(b"PROX"), Ok(Parse::Need(11)));
    }

    #[test]
    fn version_2() {
        let mut a = vec![198, 51, 100, 7, 203, 0, 113, 1];
        a.extend(51000u16.to_be_bytes());
        a.extend(21u16.to_be_bytes());
        // A TLV after the addresses is skipped.
        a.extend([0x05, 0, 2, b'i', b'd']);
        let h = v2(1, 0x11, &a);
        let mut with_more = h.clone();
        with_more.extend(b"\x16\x03\x01");
        assert_eq!(
            read_like_a_server(&with_more).unwrap(),
            (
                Header::Proxied {
                    source: "198.51.100.7:51000".parse().unwrap(),
                    destination: "203.0.113.1:21".parse().unwrap(),
                },
                h.len()
            )
        );
        let mut six = [0u8; 36];
        six[15] = 1;
        six[31] = 2;
        six[32..34].copy_from_slice(&4000u16.to_be_bytes());
        let (h6, _) = read_like_a_server(&v2(1, 0x21, &six)).unwrap();
        assert_eq!(
            h6,
            Header::Proxied {
                source: "[::1]:4000".parse().unwrap(),
                destination: "[::2]:0".parse().unwrap(),
            }
        );
        assert_eq!(
            read_like_a_server(&v2(0, 0, &[])).unwrap(),
            (Header::Local, 16)
        );
        // PROXY with AF_UNSPEC or AF_UNIX: a client, though not an IP one.
        assert_eq!(
            read_like_a_server(&v2(1, 0x00, &[])).unwrap(),
            (Header::Unknown, 16)
        );
        assert_eq!(
            read_like_a_server(&v2(1, 0x31, &[0; 216])).unwrap().0,
            Header::Unknown
        );
        assert!(matches!(
            read_like_a_server(&v2(1, 0x41, &[])),
            Err(ProxyError::Malformed(_))
        ));
        assert!(matches!(
            read_like_a_server(&v2(1, 0x11, &[1, 2, 3])),
            Err(ProxyError::Malformed(_))
        ));
        assert!(matches!(
            read_like_a_server(&v2(2, 0x11, &a)),
            Err(ProxyError::Malformed(_))
        ));
        let mut wrong_version = v2(1, 0x11, &a);
        wrong_version[12] = 0x11;
        assert!(matches!(
            parse(&wrong_version),
            Err(ProxyError::Malformed(_))
        ));
        let mut huge = V2_SIGNATURE.to_vec();
        huge.extend([0x21, 0x11, 0xff, 0xff]);
        assert_eq!(parse(&huge), Err(ProxyError::TooLong(V2_MAX)));
        // The signature cut short asks for the rest of the fixed part.
        assert_eq!(parse(&V2_SIGNATURE[..5]), Ok(Parse::Need(11)));
    }
}
