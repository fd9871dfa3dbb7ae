//! Reading the PROXY protocol header (`[proxy_protocol]`) that a listed
//! load balancer sends before anything else. The bytes are read exactly as
//! the sans-io parser ([`portcullis_proto::proxy`]) asks, so nothing after
//! the header (an implicit-TLS ClientHello) is taken from the socket; the
//! whole header must arrive within the timeout.

use std::time::Duration;

use portcullis_proto::proxy::{parse, Header, Parse, ProxyError};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// Why a listed balancer's connection is closed without a session.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("{0}")]
    Parse(#[from] ProxyError),
    #[error("no complete PROXY protocol header within {0:?}")]
    Timeout(Duration),
    #[error("connection closed before the PROXY protocol header ended")]
    Closed,
    #[error("reading the PROXY protocol header: {0}")]
    Io(std::io::Error),
}

/// Read the header at the start of `stream`, within `limit`.
pub async fn read_header(stream: &mut TcpStream, limit: Duration) -> Result<Header, HeaderError> {
    let read = async {
        let mut buf = Vec::with_capacity(64);
        let mut need = portcullis_proto::proxy::FIRST_READ;
        // Each round reads at least one byte and the parser refuses
        // headers past its limits, so this ends; the bound only says so.
        for _ in 0..=portcullis_proto::proxy::V2_MAX {
            let start = buf.len();
            buf.resize(start + need, 0);
            match stream.read_exact(&mut buf[start..]).await {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return Err(HeaderError::Closed)
                }
                Err(e) => return Err(HeaderError::Io(e)),
            }
            match parse(&buf)? {
                Parse::Done { header, .. } => return Ok(header),
                Parse::Need(n) => need = n,
            }
        }
        Err(HeaderError::Parse(ProxyError::TooLong(buf.len())))
    };
    tokio::time::timeout(limit, read)
        .await
        .unwrap_or(Err(HeaderError::Timeout(limit)))
}
