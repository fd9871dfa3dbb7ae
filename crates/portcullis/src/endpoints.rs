//! The addresses of one control connection, learnt once when it is
//! accepted and read from here by everything else: logs, bans, limits,
//! allow and deny lists, the PASV address, the passive-hijack guard and the
//! bounce check of PORT/EPRT. Behind a load balancer (the PROXY protocol)
//! the client and the address it connected to come from the header,
//! while the session's own sockets still bind on this host: the two are
//! kept apart here so that no code has to know which case it is in.

use std::net::{IpAddr, SocketAddr};

/// Who is at each end of a control connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    /// The client.
    pub peer: SocketAddr,
    /// The client's IP, canonical (an IPv4-mapped IPv6 address unmapped),
    /// as bans, limits, network lists and the data-connection guards
    /// compare it.
    pub peer_ip: IpAddr,
    /// Where the session's data sockets are made on this host: passive
    /// listeners bind here and active connections start from here (the
    /// control connection's local address).
    pub bind_ip: IpAddr,
    /// The server's address as the client sees it: what PASV advertises
    /// when `passive.address` does not say otherwise, and the network
    /// protocol EPSV and EPRT must match.
    pub public_ip: IpAddr,
    /// The kind of listener that accepted the connection.
    pub listener: Listener,
    /// The load balancer that forwarded the connection (its PROXY protocol
    /// header named the client); `None` for a direct client. Passive data
    /// connections from it without a header are taken only with
    /// `proxy_protocol.data_without_header`.
    pub balancer: Option<IpAddr>,
}

/// The kinds of control listener (`server.listen`, `tls.implicit_listen`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// Plain text at first (AUTH TLS may follow).
    Explicit,
    /// Implicit FTPS: TLS from the first byte.
    ImplicitTls,
}

impl Listener {
    /// The label value metrics use.
    pub fn label(self) -> &'static str {
        match self {
            Listener::Explicit => "explicit",
            Listener::ImplicitTls => "implicit_tls",
        }
    }
}

impl Endpoints {
    /// A connection accepted straight from the client.
    pub fn direct(peer: SocketAddr, local: SocketAddr) -> Self {
        let local = local.ip().to_canonical();
        Endpoints {
            peer,
            peer_ip: peer.ip().to_canonical(),
            bind_ip: local,
            public_ip: local,
            listener: Listener::Explicit,
            balancer: None,
        }
    }

    /// A connection from a load balancer whose PROXY protocol header named
    /// `client`, which had connected to `destination` (the balancer's own
    /// address, what PASV advertises); the session's sockets still bind on
    /// `local`, this host's end of the connection; `balancer` is the
    /// balancer's own address (the connection's peer).
    pub fn proxied(
        client: SocketAddr,
        destination: SocketAddr,
        local: SocketAddr,
        balancer: IpAddr,
    ) -> Self {
        let client = SocketAddr::new(client.ip().to_canonical(), client.port());
        Endpoints {
            peer: client,
            peer_ip: client.ip(),
            bind_ip: local.ip().to_canonical(),
            public_ip: destination.ip().to_canonical(),
            listener: Listener::Explicit,
            balancer: Some(balancer.to_canonical()),
        }
    }

    /// A connection from a load balancer that could not name its client
    /// (PROXY v1 `UNKNOWN`, v2 from a non-IP socket): served with the
    /// connection's own addresses, the balancer being its own client. Its
    /// passive data connections cannot be told from those of the
    /// balancer's other clients, so they are taken only as
    /// `proxy_protocol.data_without_header` takes header-less ones
    /// ([`crate::data::guard`]).
    pub fn unknown(balancer: SocketAddr, local: SocketAddr) -> Self {
        Endpoints {
            balancer: Some(balancer.ip().to_canonical()),
            ..Self::direct(balancer, local)
        }
    }

    /// The balancer forwarded the connection without naming the client
    /// ([`Endpoints::unknown`]).
    pub fn client_unknown(&self) -> bool {
        self.balancer == Some(self.peer_ip)
    }

    /// The same, accepted on a listener of the kind `listener`.
    pub fn on(self, listener: Listener) -> Self {
        Endpoints { listener, ..self }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_addresses_are_unmapped() {
        let e = Endpoints::direct(
            "[::ffff:198.51.100.7]:40000".parse().unwrap(),
            "[::ffff:203.0.113.1]:21".parse().unwrap(),
        );
        assert_eq!(e.peer_ip, "198.51.100.7".parse::<IpAddr>().unwrap());
        assert_eq!(e.bind_ip, "203.0.113.1".parse::<IpAddr>().unwrap());
        assert_eq!(e.public_ip, e.bind_ip);
        assert_eq!(e.peer.port(), 40000);
    }
}
