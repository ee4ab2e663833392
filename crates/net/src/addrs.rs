//! Which addresses this node dials.
//!
//! Two layers. What a peer claims (identify's listen addresses) goes through [`dialable`]
//! before it reaches the Kademlia routing table or the redial list. And every dial, whoever
//! asked for it and wherever its addresses came from (Kademlia lookup answers, identify's
//! cache, the routing table), passes [`ScopedTransport`], which refuses an address outside the
//! node's [`DialScope`] before any socket is opened, unless the node itself was told to dial
//! exactly that address (a configured bootstrap peer, an explicit [`crate::NetHandle::dial`]).
//! So a peer cannot point the node's dials at arbitrary hosts and ports.

use std::collections::{HashSet, VecDeque};
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::core::Transport;
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};
use prometheus_client::metrics::counter::Counter;

use crate::limits::EXPLICIT_DIAL_ADDRS_MAX;
use crate::slots::ip_of;

/// What addresses this node dials when a peer names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DialScope {
    /// Only loopback addresses: a node that listens only on loopback (a local testnet) has no
    /// business dialling anything else because a peer said so.
    Loopback,
    /// Any unicast address except loopback and unspecified ones.
    Remote,
    /// Any unicast IP and TCP address (configured explicitly).
    Any,
}

impl DialScope {
    /// The scope of a node listening on `listen`: loopback if every address is loopback.
    pub fn of_listen_addrs<'a>(listen: impl IntoIterator<Item = &'a Multiaddr>) -> DialScope {
        let mut any = false;
        for addr in listen {
            any = true;
            if !ip_of(addr).is_some_and(|ip| ip.to_canonical().is_loopback()) {
                return DialScope::Remote;
            }
        }
        if any {
            DialScope::Loopback
        } else {
            DialScope::Remote
        }
    }

    /// Whether an IP is one this scope dials. Unspecified, multicast and broadcast addresses
    /// never are; an IPv4-mapped IPv6 address counts as its IPv4 address.
    pub fn contains(self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let unicast = match ip {
            IpAddr::V4(v4) => !(v4.is_broadcast() || v4.is_multicast() || v4.is_unspecified()),
            IpAddr::V6(v6) => !(v6.is_multicast() || v6.is_unspecified()),
        };
        unicast
            && match self {
                DialScope::Loopback => ip.is_loopback(),
                DialScope::Remote => !ip.is_loopback(),
                DialScope::Any => true,
            }
    }
}

/// `/ip4|ip6/<ip>/tcp/<port>`, optionally followed by `/p2p/<peer>`, with a port other than 0:
/// its IP and peer id. Anything else is `None`.
fn tcp_target(addr: &Multiaddr) -> Option<(IpAddr, Option<PeerId>)> {
    let mut it = addr.iter();
    let ip = match it.next()? {
        Protocol::Ip4(ip) => IpAddr::V4(ip),
        Protocol::Ip6(ip) => IpAddr::V6(ip),
        _ => return None,
    };
    if !matches!(it.next()?, Protocol::Tcp(port) if port != 0) {
        return None;
    }
    let peer = match it.next() {
        None => None,
        Some(Protocol::P2p(p)) => Some(p),
        Some(_) => return None,
    };
    if it.next().is_some() {
        return None;
    }
    Some((ip, peer))
}

/// Whether `addr`, given by `peer` as one of its own, may be dialled: `/ip4|ip6/<ip>/tcp/<port>`
/// with a port other than 0 and an IP in `scope`, optionally followed by `/p2p/<peer>` of that
/// same peer; nothing else.
pub fn dialable(addr: &Multiaddr, peer: &PeerId, scope: DialScope) -> bool {
    match tcp_target(addr) {
        Some((ip, named)) => named.is_none_or(|p| p == *peer) && scope.contains(ip),
        None => false,
    }
}

/// `addr` without a trailing `/p2p/<peer>`.
fn transport_part(addr: &Multiaddr) -> Multiaddr {
    let mut addr = addr.clone();
    if matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
        addr.pop();
    }
    addr
}

/// Addresses outside the scope that the node itself was told to dial.
#[derive(Debug, Default)]
struct Allowed {
    /// Bootstrap peers (configuration): kept for the node's life, since they are redialled.
    bootstrap: HashSet<Multiaddr>,
    /// One-off dials ([`crate::NetHandle::dial`]), newest last, at most
    /// [`EXPLICIT_DIAL_ADDRS_MAX`].
    dialled: VecDeque<Multiaddr>,
}

/// The one rule every outbound dial passes: shared by the event loop (which records what the
/// node asked for) and [`ScopedTransport`] (which enforces it).
#[derive(Debug)]
pub(crate) struct DialPolicy {
    scope: DialScope,
    allowed: Mutex<Allowed>,
    refused: Counter,
}

impl DialPolicy {
    /// A policy for `scope`, counting refused dials on `refused`.
    pub(crate) fn new(scope: DialScope, refused: Counter) -> DialPolicy {
        DialPolicy {
            scope,
            allowed: Mutex::new(Allowed::default()),
            refused,
        }
    }

    pub(crate) fn scope(&self) -> DialScope {
        self.scope
    }

    fn allowed(&self) -> std::sync::MutexGuard<'_, Allowed> {
        // Nothing panics while the lock is held; a poisoned lock still holds valid sets.
        self.allowed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The node was told to dial `addr` (a bootstrap peer, or a one-off dial): it may be
    /// dialled whatever the scope. Addresses in the scope are not recorded.
    pub(crate) fn allow(&self, addr: &Multiaddr, bootstrap: bool) {
        if tcp_target(addr).is_some_and(|(ip, _)| self.scope.contains(ip)) {
            return;
        }
        let addr = transport_part(addr);
        let mut allowed = self.allowed();
        if bootstrap {
            allowed.bootstrap.insert(addr);
        } else if !allowed.bootstrap.contains(&addr) && !allowed.dialled.contains(&addr) {
            if allowed.dialled.len() >= EXPLICIT_DIAL_ADDRS_MAX {
                allowed.dialled.pop_front();
            }
            allowed.dialled.push_back(addr);
        }
    }

    /// Whether a dial of `addr` may open a socket.
    pub(crate) fn permits(&self, addr: &Multiaddr) -> bool {
        if tcp_target(addr).is_some_and(|(ip, _)| self.scope.contains(ip)) {
            return true;
        }
        let addr = transport_part(addr);
        let allowed = self.allowed();
        allowed.bootstrap.contains(&addr) || allowed.dialled.contains(&addr)
    }
}

/// A transport that dials only what the [`DialPolicy`] permits; a refused address fails at once
/// with [`TransportError::MultiaddrNotSupported`], before any socket is opened, and is counted
/// (`paychan_net_dials_refused_total`, [`crate::NetHandle::dials_refused`]). Listening is
/// untouched.
pub(crate) struct ScopedTransport<T> {
    inner: T,
    policy: Arc<DialPolicy>,
}

impl<T> ScopedTransport<T> {
    pub(crate) fn new(inner: T, policy: Arc<DialPolicy>) -> Self {
        ScopedTransport { inner, policy }
    }
}

impl<T: Transport + Unpin> Transport for ScopedTransport<T> {
    type Output = T::Output;
    type Error = T::Error;
    type ListenerUpgrade = T::ListenerUpgrade;
    type Dial = T::Dial;

    fn listen_on(&mut self, id: ListenerId, addr: Multiaddr) -> Result<(), TransportError<Self::Error>> {
        self.inner.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.inner.remove_listener(id)
    }

    fn dial(&mut self, addr: Multiaddr, opts: DialOpts) -> Result<Self::Dial, TransportError<Self::Error>> {
        if !self.policy.permits(&addr) {
            self.policy.refused.inc();
            tracing::debug!(%addr, scope = ?self.policy.scope, "dial outside the dial scope refused");
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        self.inner.dial(addr, opts)
    }

    fn poll(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        Pin::new(&mut self.get_mut().inner).poll(cx)
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
        assert!(!dialable(&a("/ip4/0.0.0.0/tcp/7001"), &peer, DialScope::Any));
    }

    #[test]
    fn ipv4_mapped_ipv6_counts_as_its_ipv4_address() {
        let peer = PeerId::random();
        let remote = DialScope::Remote;
        // The local host behind an IPv6 spelling is still the local host.
        assert!(!dialable(&a("/ip6/::ffff:127.0.0.1/tcp/7001"), &peer, remote));
        assert!(!dialable(
            &a("/ip6/::ffff:0.0.0.0/tcp/7001"),
            &peer,
            DialScope::Any
        ));
        assert!(!dialable(
            &a("/ip6/::ffff:224.0.0.1/tcp/7001"),
            &peer,
            DialScope::Any
        ));
        assert!(dialable(
            &a("/ip6/::ffff:127.0.0.1/tcp/7001"),
            &peer,
            DialScope::Loopback
        ));
        assert!(dialable(&a("/ip6/::ffff:8.8.8.8/tcp/7001"), &peer, remote));
        assert_eq!(
            DialScope::of_listen_addrs(&[a("/ip6/::ffff:127.0.0.1/tcp/7000")]),
            DialScope::Loopback
        );
    }

    #[test]
    fn the_policy_permits_the_scope_and_what_the_node_was_told_to_dial() {
        let refused = Counter::default();
        let policy = DialPolicy::new(DialScope::Loopback, refused);
        let peer = PeerId::random();
        assert!(policy.permits(&a("/ip4/127.0.0.1/tcp/7001")));
        assert!(policy.permits(&a(&format!("/ip4/127.0.0.1/tcp/7001/p2p/{peer}"))));
        assert!(!policy.permits(&a("/ip4/10.0.0.1/tcp/7001")));
        assert!(!policy.permits(&a("/ip4/0.0.0.0/tcp/7001")));
        assert!(!policy.permits(&a("/dns4/example.com/tcp/7001")));

        // A bootstrap peer outside the scope: that address (any /p2p suffix), and no other.
        policy.allow(&a(&format!("/ip4/10.0.0.1/tcp/7001/p2p/{peer}")), true);
        assert!(policy.permits(&a("/ip4/10.0.0.1/tcp/7001")));
        assert!(policy.permits(&a(&format!("/ip4/10.0.0.1/tcp/7001/p2p/{peer}"))));
        assert!(!policy.permits(&a("/ip4/10.0.0.1/tcp/7002")));
        assert!(!policy.permits(&a("/ip4/10.0.0.2/tcp/7001")));

        // One-off dials are remembered up to the cap, oldest forgotten first; bootstrap
        // addresses are never forgotten.
        for n in 0..=EXPLICIT_DIAL_ADDRS_MAX {
            policy.allow(&a(&format!("/ip4/10.1.{}.{}/tcp/7001", n / 256, n % 256)), false);
        }
        assert!(!policy.permits(&a("/ip4/10.1.0.0/tcp/7001")));
        assert!(policy.permits(&a("/ip4/10.1.0.1/tcp/7001")));
        let last = EXPLICIT_DIAL_ADDRS_MAX;
        assert!(policy.permits(&a(&format!("/ip4/10.1.{}.{}/tcp/7001", last / 256, last % 256))));
        assert!(policy.permits(&a("/ip4/10.0.0.1/tcp/7001")));
        assert_eq!(policy.allowed().dialled.len(), EXPLICIT_DIAL_ADDRS_MAX);
    }
}
