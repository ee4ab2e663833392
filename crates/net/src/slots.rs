//! Inbound connection slots: a cap per remote IP, and slots that only reserved peers (the
//! genesis sequencer and witnesses) may take, so that an attacker with free peer ids cannot
//! lock them out of a node.
//!
//! A behaviour with no protocol of its own: it only denies connections once the remote's peer
//! id is known (after the handshake), which is the first moment a reserved peer can be told from
//! anyone else. Handshakes in progress are bounded by `connection_limits`.

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

/// How inbound connections are shared out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotLimits {
    /// Established inbound connections in total.
    pub inbound_max: u32,
    /// Of those, how many only reserved peers may take.
    pub inbound_reserved: u32,
    /// Established inbound connections from one IP address (reserved peers not counted).
    pub per_ip_max: u32,
    /// Whether loopback addresses are exempt from `per_ip_max` (a local testnet runs every node
    /// on 127.0.0.1).
    pub loopback_exempt: bool,
}

/// Why a connection was denied.
#[derive(Debug, thiserror::Error)]
pub enum SlotDenied {
    /// Every slot open to unreserved peers is taken.
    #[error("no inbound slot free for an unreserved peer ({taken} of {open} taken)")]
    NoSlot {
        /// Unreserved inbound connections.
        taken: u32,
        /// Slots open to them.
        open: u32,
    },
    /// The remote IP has its share already.
    #[error("{ip} already has {max} inbound connections")]
    PerIp {
        /// The remote IP.
        ip: IpAddr,
        /// The cap.
        max: u32,
    },
}

/// The behaviour. See the module doc.
pub(crate) struct Slots {
    limits: SlotLimits,
    reserved: HashSet<PeerId>,
    /// Unreserved inbound connections, with the IP each counts against (`None`: exempt).
    unreserved: HashMap<ConnectionId, Option<IpAddr>>,
    per_ip: HashMap<IpAddr, u32>,
}

impl Slots {
    pub(crate) fn new(limits: SlotLimits, reserved: impl IntoIterator<Item = PeerId>) -> Slots {
        Slots {
            limits,
            reserved: reserved.into_iter().collect(),
            unreserved: HashMap::new(),
            per_ip: HashMap::new(),
        }
    }

    /// Whether an inbound connection from `peer` at `remote` may be established; records it if
    /// so.
    fn admit(&mut self, id: ConnectionId, peer: PeerId, remote: &Multiaddr) -> Result<(), SlotDenied> {
        if self.reserved.contains(&peer) {
            return Ok(());
        }
        let open = self
            .limits
            .inbound_max
            .saturating_sub(self.limits.inbound_reserved);
        let taken = self.unreserved.len() as u32;
        if taken >= open {
            return Err(SlotDenied::NoSlot { taken, open });
        }
        let ip = ip_of(remote).filter(|ip| !(self.limits.loopback_exempt && ip.is_loopback()));
        if let Some(ip) = ip {
            let n = self.per_ip.get(&ip).copied().unwrap_or(0);
            if n >= self.limits.per_ip_max {
                return Err(SlotDenied::PerIp {
                    ip,
                    max: self.limits.per_ip_max,
                });
            }
            self.per_ip.insert(ip, n + 1);
        }
        self.unreserved.insert(id, ip);
        Ok(())
    }

    fn release(&mut self, id: ConnectionId) {
        if let Some(Some(ip)) = self.unreserved.remove(&id) {
            if let Some(n) = self.per_ip.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_ip.remove(&ip);
                }
            }
        }
    }
}

/// The IP address a multiaddr starts with, if any.
pub(crate) fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    match addr.iter().next()? {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    }
}

impl NetworkBehaviour for Slots {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.admit(connection_id, peer, remote_addr)
            .map_err(ConnectionDenied::new)?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            FromSwarm::ConnectionClosed(c) => self.release(c.connection_id),
            // Admitted here, then denied by a behaviour after this one.
            FromSwarm::ListenFailure(f) => self.release(f.connection_id),
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _cx: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn per_ip_cap_reserved_slots_and_release() {
        let reserved = PeerId::random();
        let mut slots = Slots::new(
            SlotLimits {
                inbound_max: 4,
                inbound_reserved: 1,
                per_ip_max: 2,
                loopback_exempt: true,
            },
            [reserved],
        );
        let a = addr("/ip4/10.0.0.1/tcp/1");
        let b = addr("/ip4/10.0.0.2/tcp/1");
        let ids: Vec<ConnectionId> = (0..8).map(|_| ConnectionId::new_unchecked(rand_id())).collect();
        assert!(slots.admit(ids[0], PeerId::random(), &a).is_ok());
        assert!(slots.admit(ids[1], PeerId::random(), &a).is_ok());
        // A third from one IP is refused, another IP is not.
        assert!(matches!(
            slots.admit(ids[2], PeerId::random(), &a),
            Err(SlotDenied::PerIp { .. })
        ));
        assert!(slots.admit(ids[3], PeerId::random(), &b).is_ok());
        // Three of four slots are open to anyone: the fourth is the reserved peer's.
        assert!(matches!(
            slots.admit(ids[4], PeerId::random(), &addr("/ip4/10.0.0.3/tcp/1")),
            Err(SlotDenied::NoSlot { taken: 3, open: 3 })
        ));
        assert!(slots.admit(ids[5], reserved, &a).is_ok());
        // A closed connection frees its slot and its IP's share.
        slots.release(ids[0]);
        assert!(slots.admit(ids[6], PeerId::random(), &a).is_ok());
        // Loopback is exempt from the per-IP cap when configured so.
        let mut local = Slots::new(
            SlotLimits {
                inbound_max: 16,
                inbound_reserved: 0,
                per_ip_max: 1,
                loopback_exempt: true,
            },
            [],
        );
        for _ in 0..4 {
            let id = ConnectionId::new_unchecked(rand_id());
            assert!(local
                .admit(id, PeerId::random(), &addr("/ip4/127.0.0.1/tcp/9"))
                .is_ok());
        }
    }

    fn rand_id() -> usize {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(1_000_000);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }
}
