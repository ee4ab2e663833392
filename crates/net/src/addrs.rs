//! Which addresses a peer may make this node dial: what identify reports goes through here
//! before it reaches the Kademlia routing table or the redial list, so that a peer cannot point
//! the node's dials at arbitrary hosts and ports.

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use crate::slots::ip_of;

/// What addresses this node dials when a peer names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialScope {
    /// Only loopback addresses: a node that listens only on loopback (a local testnet) has no
    /// business dialling anything else because a peer said so.
    Loopback,
    /// Any unicast address except loopback and unspecified ones.
    Remote,
    /// Any IP and TCP address (configured explicitly).
    Any,
}

impl DialScope {
    /// The scope of a node listening on `listen`: loopback if every address is loopback.
    pub fn of_listen_addrs<'a>(listen: impl IntoIterator<Item = &'a Multiaddr>) -> DialScope {
        let mut any = false;
        for addr in listen {
            any = true;
            if !ip_of(addr).is_some_and(|ip| ip.is_loopback()) {
                return DialScope::Remote;
            }
        }
        if any {
            DialScope::Loopback
        } else {
            DialScope::Remote
        }
    }
}

/// Whether `addr`, given by `peer` as one of its own, may be dialled: `/ip4|ip6/<ip>/tcp/<port>`
/// with a port other than 0 and an IP in `scope`, optionally followed by `/p2p/<peer>` of that
/// same peer; nothing else.
pub fn dialable(addr: &Multiaddr, peer: &PeerId, scope: DialScope) -> bool {
    let mut it = addr.iter();
    let ip = match it.next() {
        Some(Protocol::Ip4(ip)) => {
            if ip.is_broadcast() || ip.is_multicast() {
                return false;
            }
            std::net::IpAddr::V4(ip)
        }
        Some(Protocol::Ip6(ip)) => {
            if ip.is_multicast() {
                return false;
            }
            std::net::IpAddr::V6(ip)
        }
        _ => return false,
    };
    if !matches!(it.next(), Some(Protocol::Tcp(port)) if port != 0) {
        return false;
    }
    match it.next() {
        None => {}
        Some(Protocol::P2p(p)) if p == *peer => {}
        _ => return false,
    }
    if it.next().is_some() || ip.is_unspecified() {
        return false;
    }
    match scope {
        DialScope::Loopback => ip.is_loopback(),
        DialScope::Remote => !ip.is_loopback(),
        DialScope::Any => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_loopback_node_dials_only_loopback_tcp() {
        let peer = PeerId::random();
        let other = PeerId::random();
        let scope = DialScope::of_listen_addrs(&[a("/ip4/127.0.0.1/tcp/7000")]);
        assert_eq!(scope, DialScope::Loopback);
        assert!(dialable(&a("/ip4/127.0.0.1/tcp/7001"), &peer, scope));
        assert!(dialable(
            &a(&format!("/ip4/127.0.0.1/tcp/7001/p2p/{peer}")),
            &peer,
            scope
        ));
        assert!(dialable(&a("/ip6/::1/tcp/7001"), &peer, scope));
        for bad in [
            "/ip4/10.1.2.3/tcp/22".to_string(),
            "/ip4/8.8.8.8/tcp/53".to_string(),
            "/ip4/127.0.0.1/tcp/0".to_string(),
            "/ip4/0.0.0.0/tcp/7001".to_string(),
            "/ip4/127.0.0.1/udp/7001".to_string(),
            "/dns4/example.com/tcp/80".to_string(),
            format!("/ip4/127.0.0.1/tcp/7001/p2p/{other}"),
            "/ip4/127.0.0.1/tcp/7001/ws".to_string(),
        ] {
            assert!(!dialable(&a(&bad), &peer, scope), "{bad}");
        }
        let remote = DialScope::of_listen_addrs(&[a("/ip4/0.0.0.0/tcp/7000")]);
        assert_eq!(remote, DialScope::Remote);
        assert!(dialable(&a("/ip4/8.8.8.8/tcp/7001"), &peer, remote));
        assert!(!dialable(&a("/ip4/127.0.0.1/tcp/7001"), &peer, remote));
        assert!(!dialable(&a("/ip4/224.0.0.1/tcp/7001"), &peer, remote));
        assert!(dialable(&a("/ip4/127.0.0.1/tcp/7001"), &peer, DialScope::Any));
    }
}
