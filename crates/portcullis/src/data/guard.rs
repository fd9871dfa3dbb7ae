//! The passive-hijack guard (RFC 2577 section 5) for data connections
//! that carry no PROXY protocol header: whose connection may take a
//! session's passive port. A direct client's own address may; behind a
//! load balancer that sends no header on data ports
//! (`proxy_protocol.data_without_header`), the address of the balancer
//! that forwarded the control connection may too. That is weaker: every
//! client of that balancer arrives from the same address, so the guard
//! cannot tell them apart, and whichever reaches the port first gets the
//! data. `proxy_protocol.data = true` (HAProxy's `send-proxy-v2` on the
//! passive ports) keeps the guard whole.

use std::net::IpAddr;

use tracing::warn;

/// Who may connect to a session's passive port without a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guard {
    /// The control connection's client.
    pub peer_ip: IpAddr,
    /// The balancer that forwarded the control connection, if one did.
    pub balancer: Option<IpAddr>,
    /// `proxy_protocol.data_without_header`: connections from `balancer`
    /// are taken as the client's.
    pub without_header: bool,
}

impl Guard {
    /// A direct client at `peer_ip`, no balancer (the tests' guard; the
    /// session builds its own from its endpoints).
    #[cfg(test)]
    fn direct(peer_ip: IpAddr) -> Self {
        Guard {
            peer_ip,
            balancer: None,
            without_header: false,
        }
    }

    /// Whether a connection from `from` may be the session's data
    /// connection; a refusal is logged.
    pub fn admits(&self, from: std::net::SocketAddr) -> bool {
        let ip = from.ip().to_canonical();
        // The balancer first: a session whose client it could not name
        // (PROXY UNKNOWN) has the balancer's own address as its client,
        // and every other client of the balancer arrives from it too.
        if self.balancer != Some(ip) && ip == self.peer_ip {
            return true;
        }
        match self.balancer {
            Some(b) if b == ip && self.without_header => true,
            Some(b) if b == ip => {
                warn!(
                    %from,
                    client = %self.peer_ip,
                    client_named = self.balancer != Some(self.peer_ip),
                    "refused a passive data connection from the balancer without a PROXY protocol header: \
                     have the balancer send one (proxy_protocol.data = true), or accept them \
                     (proxy_protocol.data_without_header = true, weaker)"
                );
                false
            }
            _ => {
                warn!(%from, expected = %self.peer_ip, "refused a passive data connection from a foreign address");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_balancer_is_taken_only_with_the_key() {
        let client: IpAddr = "198.51.100.7".parse().unwrap();
        let balancer: IpAddr = "10.0.0.5".parse().unwrap();
        let at = |ip: &str| std::net::SocketAddr::new(ip.parse().unwrap(), 40000);
        let off = Guard {
            peer_ip: client,
            balancer: Some(balancer),
            without_header: false,
        };
        assert!(off.admits(at("198.51.100.7")));
        assert!(!off.admits(at("10.0.0.5")));
        assert!(!off.admits(at("10.0.0.6")));
        let on = Guard {
            without_header: true,
            ..off
        };
        assert!(on.admits(at("10.0.0.5")));
        assert!(on.admits(at("::ffff:10.0.0.5")));
        assert!(!on.admits(at("10.0.0.6")), "another balancer");
        // A direct client has no balancer to take.
        let direct = Guard {
            without_header: true,
            ..Guard::direct(client)
        };
        assert!(!direct.admits(at("10.0.0.5")));
    }

    /// PROXY UNKNOWN: the session's client is the balancer itself, so a
    /// connection from it is any of its clients': taken only with the key.
    #[test]
    fn a_client_the_balancer_could_not_name_needs_the_key() {
        let balancer: IpAddr = "10.0.0.5".parse().unwrap();
        let at = |ip: &str| std::net::SocketAddr::new(ip.parse().unwrap(), 40000);
        let mut unknown = Guard {
            peer_ip: balancer,
            balancer: Some(balancer),
            without_header: false,
        };
        assert!(!unknown.admits(at("10.0.0.5")));
        assert!(!unknown.admits(at("198.51.100.7")));
        unknown.without_header = true;
        assert!(unknown.admits(at("10.0.0.5")));
    }
}
