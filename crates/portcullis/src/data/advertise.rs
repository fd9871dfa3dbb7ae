//! Which IPv4 address PASV advertises (RFC 959 section 4.1.2: the reply
//! carries an address, which NAT breaks). It can depend on the client's
//! network (LAN clients get the LAN address, everyone else the public one),
//! and the public one may be a host name, resolved again periodically for
//! dynamic DNS. EPSV carries only a port and needs none of this.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::RwLock;
use std::time::Duration;

use ipnet::IpNet;
use tracing::{info, warn};

use crate::options::{PassiveAddress, PassiveOptions};

/// Chooses the PASV address per client.
#[derive(Debug)]
pub struct Advertiser {
    /// First match wins; `None` = the control connection's local address.
    by_network: Vec<(IpNet, Option<Ipv4Addr>)>,
    default: Option<PassiveAddress>,
    /// The last good resolution of a host-name `default`.
    resolved: RwLock<Option<Ipv4Addr>>,
}

impl Advertiser {
    pub fn new(o: &PassiveOptions) -> Self {
        Advertiser {
            by_network: o.by_network.clone(),
            default: o.address.clone(),
            resolved: RwLock::new(None),
        }
    }

    /// The address to advertise to `peer` on a control connection whose
    /// local address is `local`; `None` when there is no IPv4 to give
    /// (an IPv6 connection with nothing configured).
    pub fn for_client(&self, peer: IpAddr, local: IpAddr) -> Option<Ipv4Addr> {
        let local4 = match local.to_canonical() {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        };
        let peer = peer.to_canonical();
        if let Some((_, a)) = self.by_network.iter().find(|(n, _)| n.contains(&peer)) {
            return a.or(local4);
        }
        match &self.default {
            None => local4,
            Some(PassiveAddress::Ip(a)) => Some(*a),
            Some(PassiveAddress::Host(_)) => self
                .resolved
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .or(local4),
        }
    }

    /// The host name to keep resolving, if the default is one.
    pub fn host(&self) -> Option<&str> {
        match &self.default {
            Some(PassiveAddress::Host(h)) => Some(h),
            _ => None,
        }
    }

    /// Resolve the host name once; keep the old address on failure.
    pub async fn refresh(&self) {
        let Some(host) = self.host() else { return };
        let found = tokio::net::lookup_host((host, 0)).await.map(|addrs| {
            addrs
                .filter_map(|a| match a.ip() {
                    IpAddr::V4(v4) => Some(v4),
                    IpAddr::V6(_) => None,
                })
                .next()
        });
        let mut cur = self.resolved.write().unwrap_or_else(|p| p.into_inner());
        match found {
            Ok(Some(a)) => {
                if *cur != Some(a) {
                    info!(host, address = %a, "passive.address resolved");
                }
                *cur = Some(a);
            }
            Ok(None) => warn!(
                host,
                "passive.address has no IPv4 address; keeping the last one"
            ),
            Err(e) => {
                warn!(host, error = %e, "passive.address did not resolve; keeping the last one")
            }
        }
    }

    /// Resolve the host name now and then every `every`, for ever.
    pub async fn refresh_every(&self, every: Duration) {
        loop {
            self.refresh().await;
            tokio::time::sleep(every).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(address: Option<PassiveAddress>) -> PassiveOptions {
        let mut o = crate::options::ServerOptions::with_anonymous_root(".".into()).passive;
        o.address = address;
        o.by_network = vec![
            (
                "10.0.0.0/8".parse().unwrap(),
                Some("10.0.0.5".parse().unwrap()),
            ),
            ("192.168.0.0/16".parse().unwrap(), None),
        ];
        o
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_network_then_default() {
        let a = Advertiser::new(&opts(Some(PassiveAddress::Ip(
            "203.0.113.7".parse().unwrap(),
        ))));
        let local = ip("172.16.0.2");
        assert_eq!(
            a.for_client(ip("10.1.2.3"), local),
            Some("10.0.0.5".parse().unwrap())
        );
        assert_eq!(
            a.for_client(ip("192.168.1.9"), local),
            Some("172.16.0.2".parse().unwrap())
        );
        assert_eq!(
            a.for_client(ip("198.51.100.4"), local),
            Some("203.0.113.7".parse().unwrap())
        );
        assert_eq!(
            a.for_client(ip("::ffff:10.9.9.9"), ip("::ffff:172.16.0.2")),
            Some("10.0.0.5".parse().unwrap())
        );
        let none = Advertiser::new(&opts(None));
        assert_eq!(none.for_client(ip("198.51.100.4"), ip("::1")), None);
    }

    #[tokio::test]
    async fn host_names_resolve_and_fall_back_to_local() {
        let a = Advertiser::new(&opts(Some(PassiveAddress::Host("localhost".into()))));
        let local = ip("172.16.0.2");
        // Before the first resolution: the local address.
        assert_eq!(
            a.for_client(ip("198.51.100.4"), local),
            Some("172.16.0.2".parse().unwrap())
        );
        a.refresh().await;
        assert_eq!(
            a.for_client(ip("198.51.100.4"), local),
            Some(Ipv4Addr::LOCALHOST)
        );
        let bad = Advertiser::new(&opts(Some(PassiveAddress::Host(
            "no-such-host.invalid".into(),
        ))));
        bad.refresh().await;
        assert_eq!(
            bad.for_client(ip("198.51.100.4"), local),
            Some("172.16.0.2".parse().unwrap())
        );
    }
}
