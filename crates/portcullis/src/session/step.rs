//! [`Step`]: what the core hands the driver for each line.

use std::sync::Arc;

use portcullis_proto::reply::Reply;

use super::Transfer;

/// What the driver does with one line, once the core has decided.
pub(crate) enum Step {
    /// Send this reply.
    Reply(Reply),
    /// Send this reply, then close the connection (QUIT, a ban).
    Close(Reply),
    /// Send this reply (234 to AUTH), then make the TLS handshake with this
    /// configuration before reading anything else; what the client sent
    /// before the handshake is dropped unread (CVE-2011-1575).
    StartTls(Reply, Arc<rustls::ServerConfig>),
    /// Send this reply (200 to CCC), then end TLS on the control connection.
    EndTls(Reply),
    /// Send the transfer's 150, then run it (its final reply comes later).
    Transfer(Box<Transfer>),
    /// Run this hash (HASH, XSHA256, ...) as the driver runs a transfer,
    /// with no 150 before it: its reply (213, 250, or an error) comes
    /// when it is done.
    Hash(Box<super::hash::HashJob>),
    /// ABOR: stop the running transfer, if there is one (RFC 959 section
    /// 4.1.3; the replies depend on it, so the driver writes them).
    Abort,
}
