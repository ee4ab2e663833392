//! The task that owns the swarm: it turns commands into swarm calls and swarm events into
//! [`NetEvent`]s, and enforces the per-peer limits.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::gossipsub::{self, MessageAcceptance, PublishError};
use libp2p::metrics::{Metrics, Recorder};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, InboundRequestId, OutboundFailure, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{DialError, SwarmEvent};
use libp2p::{identify, kad, noise, tcp, yamux, Multiaddr, PeerId, Swarm, SwarmBuilder, Transport};
use paychan_protocol::wire::{GossipMsg, LedgerRequest, LedgerResponse};
use paychan_protocol::Wire;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

use crate::addrs::{dialable, DialPolicy, DialScope, ScopedTransport};
use crate::behaviour::{self, Behaviour, BehaviourEvent};
use crate::codec::{violation_of, InboundRequest};
use crate::handle::{Command, LedgerResponder, NetHandle, Reply};
use crate::identity::keypair_from_seed;
use crate::limits::*;
use crate::rate::{ByteBudget, TokenBucket};
use crate::{
    Misbehaviour, NetConfig, NetError, NetEvent, PeerLimits, Topic, KAD_PROTOCOL, REFUSED_BUSY,
    REFUSED_MALFORMED, REFUSED_RATE_LIMITED,
};

/// Builds and starts the network layer.
#[derive(Debug)]
pub struct Net;

impl Net {
    /// Builds the swarm with the identity of `keypair_seed` (the node's ed25519 seed: its
    /// ledger account and its libp2p identity are one key), listens on `config.listen` and
    /// waits for the first listen address, dials the bootstrap peers, and spawns the event loop
    /// on the current tokio runtime.
    ///
    /// Returns the handle, the event receiver (read it continuously: when it is full the loop
    /// sheds load, see [`EVENTS_QUEUE_MAX`]) and the loop's task, which ends on
    /// [`NetHandle::shutdown`] or when every handle is dropped.
    #[allow(clippy::new_ret_no_self)] // a constructor of the running network, not of `Net`
    pub async fn new(
        keypair_seed: [u8; 32],
        config: NetConfig,
    ) -> Result<(NetHandle, mpsc::Receiver<NetEvent>, JoinHandle<()>), NetError> {
        let registry = config.registry.clone().unwrap_or_default();
        // The scope follows the configured listen address, not the first address bound: a
        // node listening on 0.0.0.0 reports 127.0.0.1 among its addresses, often first.
        let dial_scope = config
            .dial_scope
            .unwrap_or_else(|| DialScope::of_listen_addrs([&config.listen]));
        let (mut swarm, metrics, own_metrics, policy) =
            build_swarm(keypair_seed, &config, dial_scope, &registry)?;
        let local_peer_id = *swarm.local_peer_id();

        swarm
            .listen_on(config.listen.clone())
            .map_err(|e| NetError::Config(format!("listen on {}: {e}", config.listen)))?;
        let first_addr = tokio::time::timeout(Duration::from_millis(LISTEN_TIMEOUT_MS), async {
            loop {
                match swarm.select_next_some().await {
                    SwarmEvent::NewListenAddr { address, .. } => return Ok(address),
                    SwarmEvent::ListenerClosed { reason, .. } => {
                        return Err(NetError::Config(format!("listener closed: {reason:?}")));
                    }
                    SwarmEvent::ListenerError { error, .. } => {
                        return Err(NetError::Config(format!("listener error: {error}")));
                    }
                    _ => {}
                }
            }
        })
        .await
        .map_err(|_| NetError::Timeout)??;

        let (commands_tx, commands_rx) = mpsc::channel(COMMANDS_QUEUE_MAX);
        let (events_tx, events_rx) = mpsc::channel(config.events_capacity.max(1));
        let handle = NetHandle {
            commands: commands_tx,
            control: swarm.behaviour().channel.new_control(),
            local_peer_id,
            registry,
            request_timeout: config.request_timeout,
            dials_refused: own_metrics.dials_refused.clone(),
        };

        let started = Instant::now();
        let mut event_loop = EventLoop {
            served_total: ByteBudget::new(
                config.served_bytes_total_per_s,
                config.served_bytes_total_burst,
                Duration::ZERO,
            ),
            reserved: config.reserved_peers.iter().copied().collect(),
            priority_reserve: config.events_capacity.max(1) / EVENTS_PRIORITY_SHARE_DIVISOR,
            policy,
            swarm,
            commands: commands_rx,
            events: events_tx,
            metrics,
            own: own_metrics,
            limits: config.limits,
            started,
            listen_addrs: vec![first_addr],
            peers: HashMap::new(),
            pending_dials: HashMap::new(),
            pending_requests: HashMap::new(),
            inbound: HashMap::new(),
            disconnect_after_response: HashMap::new(),
            condemned: HashMap::new(),
            ban_on_close: HashSet::new(),
            kept: HashMap::new(),
        };
        for addr in &config.bootstrap {
            // Bootstrap dials complete in the background; their outcome is only logged.
            let (tx, _rx) = oneshot::channel();
            event_loop.add_bootstrap(addr.clone(), tx).map_err(|(e, _)| e)?;
        }

        let span = tracing::info_span!("net.event_loop", local_peer = %local_peer_id);
        let task = tokio::spawn(event_loop.run().instrument(span));
        Ok((handle, events_rx, task))
    }
}

fn build_swarm(
    seed: [u8; 32],
    config: &NetConfig,
    dial_scope: DialScope,
    registry: &Arc<Mutex<Registry>>,
) -> Result<(Swarm<Behaviour>, Metrics, NetMetrics, Arc<DialPolicy>), NetError> {
    // The lock is held only while metrics are registered, never across an await.
    let mut registry = registry.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let metrics = Metrics::new(&mut registry);
    let own = NetMetrics::new(&mut registry);
    let policy = Arc::new(DialPolicy::new(dial_scope, own.dials_refused.clone()));
    let key = keypair_from_seed(seed);
    let behaviour = behaviour::build(&key, config, &mut registry)?;
    let transport_policy = policy.clone();
    let swarm = SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        // TCP + Noise + Yamux, as `with_tcp` builds it, with the dial scope enforced under the
        // upgrades: every dial, whichever behaviour supplied its addresses, passes it.
        .with_other_transport(|key| -> Result<_, Box<dyn std::error::Error + Send + Sync>> {
            let mut yamux = yamux::Config::default();
            yamux.set_max_num_streams(STREAMS_PER_CONNECTION_MAX);
            let tcp = tcp::tokio::Transport::new(tcp::Config::default().nodelay(true));
            Ok(ScopedTransport::new(tcp, transport_policy)
                .upgrade(libp2p::core::upgrade::Version::V1Lazy)
                .authenticate(noise::Config::new(key)?)
                .multiplex(yamux))
        })
        .map_err(|e| NetError::Config(format!("transport: {e}")))?
        .with_bandwidth_metrics(&mut registry)
        .with_behaviour(|_| behaviour)
        .expect("an infallible constructor")
        .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_connection_timeout))
        .build();
    Ok((swarm, metrics, own, policy))
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

/// This crate's own metrics, beside libp2p's.
struct NetMetrics {
    /// Inbound ledger requests by outcome: accepted, rate_limited, busy, malformed.
    ledger_inbound: Family<KindLabel, Counter>,
    /// Misbehaviour by kind.
    misbehaviour: Family<KindLabel, Counter>,
    /// Events the node was too slow to take, by kind.
    events_dropped: Family<KindLabel, Counter>,
    /// Gossip messages ignored at the door, by why: rate (over the forwarder's rate), crowded
    /// (the event queue's last places are kept for blocks and checkpoints).
    gossip_shed: Family<KindLabel, Counter>,
    /// Penalties charged to forwarders of ignored gossip.
    gossip_penalised: Family<KindLabel, Counter>,
    /// Peers with an established connection.
    peers: Gauge,
    /// Dial attempts refused because the address is outside the dial scope.
    dials_refused: Counter,
}

impl NetMetrics {
    fn new(registry: &mut Registry) -> Self {
        let sub = registry.sub_registry_with_prefix("paychan_net");
        let m = NetMetrics {
            ledger_inbound: Family::default(),
            misbehaviour: Family::default(),
            events_dropped: Family::default(),
            gossip_shed: Family::default(),
            gossip_penalised: Family::default(),
            peers: Gauge::default(),
            dials_refused: Counter::default(),
        };
        sub.register(
            "gossip_shed",
            "Gossip messages ignored before the node saw them, by reason",
            m.gossip_shed.clone(),
        );
        sub.register(
            "gossip_penalised",
            "Penalties charged to peers that forwarded ignored gossip",
            m.gossip_penalised.clone(),
        );
        sub.register(
            "ledger_inbound_requests",
            "Inbound ledger requests by outcome",
            m.ledger_inbound.clone(),
        );
        sub.register(
            "misbehaviour",
            "Protocol violations by peers, by kind",
            m.misbehaviour.clone(),
        );
        sub.register(
            "events_dropped",
            "Events dropped because the node did not keep up, by kind",
            m.events_dropped.clone(),
        );
        sub.register(
            "dials_refused",
            "Dials refused before any socket was opened: the address is outside the dial scope",
            m.dials_refused.clone(),
        );
        sub.register(
            "connected_peers",
            "Peers with an established connection",
            m.peers.clone(),
        );
        m
    }

    fn count(family: &Family<KindLabel, Counter>, kind: &'static str) {
        family.get_or_create(&KindLabel { kind }).inc();
    }
}

/// What the loop keeps per connected peer. Dropped when the peer disconnects.
struct PeerState {
    bucket: TokenBucket,
    /// Requests handed to the node and not yet answered.
    in_flight: u32,
    /// Requests refused on this connection.
    refusals: u32,
    /// Bytes of responses it may still be served.
    served: ByteBudget,
    /// Gossip it may forward (messages not authored by a reserved peer).
    gossip: TokenBucket,
    /// Its penalty for ignored gossip, decaying; its gossipsub application score is minus this.
    penalty: f64,
}

struct EventLoop {
    /// Bytes of responses all peers together may still be served.
    served_total: ByteBudget,
    /// The genesis sequencer and witnesses (see `NetConfig::reserved_peers`).
    reserved: HashSet<PeerId>,
    /// Event-queue places kept for priority gossip ([`EVENTS_PRIORITY_SHARE_DIVISOR`]).
    priority_reserve: usize,
    /// What addresses this node dials (shared with the transport, which enforces it).
    policy: Arc<DialPolicy>,
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NetEvent>,
    metrics: Metrics,
    own: NetMetrics,
    limits: PeerLimits,
    started: Instant,
    listen_addrs: Vec<Multiaddr>,
    peers: HashMap<PeerId, PeerState>,
    pending_dials: HashMap<libp2p::swarm::ConnectionId, Reply<PeerId>>,
    pending_requests: HashMap<OutboundRequestId, Reply<LedgerResponse>>,
    /// Inbound requests handed to the node, by id: whose in-flight slot they hold.
    inbound: HashMap<InboundRequestId, PeerId>,
    /// Peers to disconnect once the error response to their bad request has gone out.
    disconnect_after_response: HashMap<InboundRequestId, PeerId>,
    /// Peers being cut off for a violation: their further requests are dropped unanswered, and
    /// the connection closes at the given time (`None`: once their error response is out).
    condemned: HashMap<PeerId, Option<Instant>>,
    /// Condemned peers banned by the node: blocked once their connection has closed, so that
    /// blocking does not cut off the error response that tells them why.
    ban_on_close: HashSet<PeerId>,
    /// Peers kept connected (bootstrap peers, and those the node asked for): dialled again
    /// whenever they are lost.
    kept: HashMap<PeerId, Kept>,
}

/// A peer the loop keeps connected.
struct Kept {
    /// Where to dial it (each with `/p2p/<id>`), newest last.
    addrs: Vec<Multiaddr>,
    /// The wait before the next dial after a loss or a failure.
    backoff: Duration,
    /// When to dial it next (`None`: connected, or a dial is under way).
    due: Option<Instant>,
}

impl Kept {
    fn new() -> Kept {
        Kept {
            addrs: Vec::new(),
            backoff: Duration::from_millis(REDIAL_BACKOFF_MIN_MS),
            due: None,
        }
    }

    fn add_addr(&mut self, addr: Multiaddr) {
        if !self.addrs.contains(&addr) {
            if self.addrs.len() >= REDIAL_ADDRS_PER_PEER_MAX {
                self.addrs.remove(0);
            }
            self.addrs.push(addr);
        }
    }

    /// Schedules the next dial after the current backoff, and doubles it (capped).
    fn schedule(&mut self, now: Instant) {
        if self.due.is_none() {
            self.due = Some(now + self.backoff);
            self.backoff = (self.backoff * 2).min(Duration::from_millis(REDIAL_BACKOFF_MAX_MS));
        }
    }
}

impl EventLoop {
    async fn run(mut self) {
        tracing::info!(addrs = ?self.listen_addrs, "network started");
        let mut decay = tokio::time::interval(PENALTY_DECAY_TICK);
        decay.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let next_disconnect = self.condemned.values().flatten().min().copied();
            let next_redial = self.kept.values().filter_map(|k| k.due).min();
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.on_command(command),
                },
                () = sleep_until_or_never(next_disconnect) => self.disconnect_due(),
                () = sleep_until_or_never(next_redial) => self.redial_due(),
                _ = decay.tick() => self.decay_penalties(PENALTY_DECAY_TICK),
            }
        }
        tracing::info!("network stopped");
    }

    /// Charges one ignored gossip message to the peer that forwarded it: a lower gossipsub
    /// score, so that a peer that keeps sending worthless gossip is first left out of gossip,
    /// then graylisted. Reserved peers relay everyone's gossip and are not charged.
    fn penalise(&mut self, peer: PeerId) {
        if self.reserved.contains(&peer) {
            return;
        }
        if let Some(state) = self.peers.get_mut(&peer) {
            state.penalty += GOSSIP_IGNORED_PENALTY;
            let score = -state.penalty;
            self.swarm
                .behaviour_mut()
                .gossipsub
                .set_application_score(&peer, score);
            NetMetrics::count(&self.own.gossip_penalised, "ignored");
        }
    }

    /// Lets penalties decay (half-life [`GOSSIP_PENALTY_HALF_LIFE_MS`]).
    fn decay_penalties(&mut self, elapsed: Duration) {
        let half_lives = elapsed.as_secs_f64() * 1000.0 / GOSSIP_PENALTY_HALF_LIFE_MS as f64;
        let factor = 0.5f64.powf(half_lives);
        for (peer, state) in self.peers.iter_mut().filter(|(_, s)| s.penalty > 0.0) {
            state.penalty *= factor;
            if state.penalty < 0.01 {
                state.penalty = 0.0;
            }
            self.swarm
                .behaviour_mut()
                .gossipsub
                .set_application_score(peer, -state.penalty);
        }
    }

    /// Closes the connections of condemned peers whose linger time has come.
    fn disconnect_due(&mut self) {
        let now = Instant::now();
        let due: Vec<PeerId> = self
            .condemned
            .iter()
            .filter(|(_, at)| at.is_some_and(|at| at <= now))
            .map(|(peer, _)| *peer)
            .collect();
        for peer in due {
            // Stays condemned (requests dropped) until the close is reported.
            self.condemned.insert(peer, None);
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    /// Dials the kept peers whose wait is over and that are still not connected.
    fn redial_due(&mut self) {
        let now = Instant::now();
        let due: Vec<(PeerId, Vec<Multiaddr>)> = self
            .kept
            .iter_mut()
            .filter(|(_, k)| k.due.is_some_and(|at| at <= now))
            .map(|(peer, k)| {
                k.due = None;
                (*peer, k.addrs.clone())
            })
            .collect();
        for (peer, addrs) in due {
            if self.swarm.is_connected(&peer) {
                continue;
            }
            tracing::debug!(%peer, "dialling a lost peer again");
            // Without addresses of our own, the swarm asks the DHT for some.
            let opts = DialOpts::peer_id(peer)
                .addresses(addrs)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            match self.swarm.dial(opts) {
                Ok(()) => {}
                // A dial is under way already: its outcome schedules the next one.
                Err(DialError::DialPeerConditionFalse(_)) => {}
                Err(e) => {
                    tracing::debug!(%peer, %e, "redial not started");
                    if let Some(k) = self.kept.get_mut(&peer) {
                        k.schedule(now);
                    }
                }
            }
        }
    }

    /// Condemns `peer`: its requests are dropped from now on; the connection closes once the
    /// error response to `request_id` is out, plus a linger so that the peer can read it.
    fn condemn_after_response(&mut self, peer: PeerId, request_id: InboundRequestId) {
        self.condemned.entry(peer).or_insert(None);
        self.disconnect_after_response.insert(request_id, peer);
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }

    /// Hands an event to the node without ever waiting for it.
    fn emit(&mut self, event: NetEvent) {
        if let Err(e) = self.events.try_send(event) {
            let kind = match e.into_inner() {
                NetEvent::PeerConnected { .. } => "peer_connected",
                NetEvent::PeerDisconnected { .. } => "peer_disconnected",
                NetEvent::PeerSubscribed { .. } => "peer_subscribed",
                NetEvent::Gossip { .. } => "gossip",
                NetEvent::LedgerRequest { .. } => "ledger_request",
                NetEvent::Misbehaviour { .. } => "misbehaviour",
            };
            NetMetrics::count(&self.own.events_dropped, kind);
            tracing::warn!(kind, "event queue full or closed; event dropped");
        }
    }

    /// Records a violation, tells the node, and disconnects the peer now.
    fn misbehaved(&mut self, peer: PeerId, what: Misbehaviour) {
        self.report_misbehaviour(peer, what);
        let _ = self.swarm.disconnect_peer_id(peer);
    }

    fn report_misbehaviour(&mut self, peer: PeerId, what: Misbehaviour) {
        let kind = match &what {
            Misbehaviour::BadRequest(_) => "bad_request",
            Misbehaviour::BadResponse(_) => "bad_response",
            Misbehaviour::BadGossip(_) => "bad_gossip",
            Misbehaviour::GossipWrongTopic => "gossip_wrong_topic",
            Misbehaviour::IgnoredRefusals => "ignored_refusals",
        };
        NetMetrics::count(&self.own.misbehaviour, kind);
        tracing::warn!(%peer, kind, ?what, "peer misbehaved; disconnecting");
        self.emit(NetEvent::Misbehaviour { peer, what });
    }

    // ---- commands ----

    fn on_command(&mut self, command: Command) {
        match command {
            Command::ListenAddrs(reply) => {
                let _ = reply.send(Ok(self.listen_addrs.clone()));
            }
            Command::Dial(addr, reply) => self.dial(addr, reply),
            Command::AddBootstrap(addr, reply) => {
                if let Err((e, reply)) = self.add_bootstrap(addr, reply) {
                    let _ = reply.send(Err(e));
                }
            }
            Command::KeepConnected(peer, reply) => {
                let now = Instant::now();
                let kept = self.kept.entry(peer).or_insert_with(Kept::new);
                if !self.swarm.is_connected(&peer) {
                    kept.due = Some(now);
                }
                let _ = reply.send(Ok(()));
            }
            Command::Publish { topic, data, reply } => {
                let result = self.swarm.behaviour_mut().gossipsub.publish(topic.ident(), data);
                let _ = reply.send(result.map_err(|e| match e {
                    PublishError::NoPeersSubscribedToTopic => NetError::NoGossipPeers,
                    PublishError::Duplicate => NetError::DuplicateGossip,
                    PublishError::MessageTooLarge => NetError::TooLarge {
                        len: 0,
                        max: GOSSIP_TRANSMIT_BYTES_MAX,
                    },
                    other => NetError::Publish(other.to_string()),
                }));
            }
            Command::PenaliseGossip(peer) => self.penalise(peer),
            Command::ReportValidation {
                msg_id,
                source,
                acceptance,
            } => {
                // `false` means the message already left the cache (validated twice, or too
                // late); nothing else to do.
                let known = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&msg_id, &source, acceptance);
                tracing::debug!(%source, ?acceptance, known, "gossip validation reported");
            }
            Command::Request { peer, request, reply } => {
                let id = self.swarm.behaviour_mut().ledger.send_request(&peer, Ok(request));
                self.pending_requests.insert(id, reply);
            }
            Command::Respond { responder, response } => {
                let LedgerResponder {
                    peer,
                    request_id,
                    channel,
                } = responder;
                // Every byte served counts against the peer's budget and the total one; the
                // next request that needs bytes waits until both are positive again.
                let bytes = response.to_bytes().len() as u64;
                let now = self.now();
                self.served_total.spend(bytes, now);
                if let Some(state) = self.peers.get_mut(&peer) {
                    state.served.spend(bytes, now);
                }
                if self
                    .swarm
                    .behaviour_mut()
                    .ledger
                    .send_response(channel, response)
                    .is_err()
                {
                    // The stream is gone (peer left or its request timed out); the matching
                    // failure event frees the slot.
                    tracing::debug!(%peer, %request_id, "response dropped: request no longer open");
                }
            }
            Command::Ban(peer, reply) => {
                tracing::info!(%peer, "banning peer");
                let condemned = self.condemned.contains_key(&peer);
                let b = self.swarm.behaviour_mut();
                if condemned {
                    // Its connection closes once its error response is out (one connection per
                    // peer: it cannot open another meanwhile); block it then.
                    self.ban_on_close.insert(peer);
                } else {
                    // Closes every connection with it and denies new ones, inbound and outbound.
                    b.blocked.block_peer(peer);
                }
                b.gossipsub.blacklist_peer(&peer);
                b.kad.remove_peer(&peer);
                self.kept.remove(&peer);
                let _ = reply.send(Ok(()));
            }
            Command::Unban(peer, reply) => {
                self.ban_on_close.remove(&peer);
                let b = self.swarm.behaviour_mut();
                b.blocked.unblock_peer(peer);
                b.gossipsub.remove_blacklisted_peer(&peer);
                let _ = reply.send(Ok(()));
            }
            Command::ConnectedPeers(reply) => {
                let _ = reply.send(Ok(self.swarm.connected_peers().copied().collect()));
            }
            Command::MeshPeers(topic, reply) => {
                let hash = topic.ident().hash();
                let peers = self
                    .swarm
                    .behaviour()
                    .gossipsub
                    .mesh_peers(&hash)
                    .copied()
                    .collect();
                let _ = reply.send(Ok(peers));
            }
            Command::Shutdown => unreachable!("handled by run"),
        }
    }

    fn dial(&mut self, addr: Multiaddr, reply: Reply<PeerId>) {
        // The node asked for this address itself: it may be dialled outside the scope.
        self.policy.allow(&addr, false);
        let peer = match addr.iter().last() {
            Some(Protocol::P2p(peer)) => Some(peer),
            _ => None,
        };
        let opts = match peer {
            Some(peer) => DialOpts::peer_id(peer)
                .addresses(vec![addr])
                // Not `NotDialing`: when another dial (Kademlia's, say) is under way, ours runs
                // too, and whichever connection loses to the one-per-peer limit is reported as
                // success below, since the peer is then connected.
                .condition(PeerCondition::Disconnected)
                .build(),
            None => DialOpts::unknown_peer_id().address(addr).build(),
        };
        let connection_id = opts.connection_id();
        match self.swarm.dial(opts) {
            Ok(()) => {
                self.pending_dials.insert(connection_id, reply);
            }
            Err(DialError::DialPeerConditionFalse(_))
                if peer.is_some_and(|p| self.swarm.is_connected(&p)) =>
            {
                let _ = reply.send(Ok(peer.expect("checked")));
            }
            Err(e) => {
                let _ = reply.send(Err(NetError::Dial(e.to_string())));
            }
        }
    }

    /// Adds a `/p2p/` address to Kademlia, dials it and starts a bootstrap query.
    fn add_bootstrap(
        &mut self,
        addr: Multiaddr,
        reply: Reply<PeerId>,
    ) -> Result<(), (NetError, Reply<PeerId>)> {
        let Some(Protocol::P2p(peer)) = addr.iter().last() else {
            return Err((
                NetError::Config(format!("bootstrap address without /p2p/: {addr}")),
                reply,
            ));
        };
        self.policy.allow(&addr, true);
        let mut transport_addr = addr.clone();
        transport_addr.pop();
        self.swarm.behaviour_mut().kad.add_address(&peer, transport_addr);
        self.kept
            .entry(peer)
            .or_insert_with(Kept::new)
            .add_addr(addr.clone());
        self.dial(addr, reply);
        if let Err(e) = self.swarm.behaviour_mut().kad.bootstrap() {
            tracing::debug!(%e, "kademlia bootstrap not started");
        }
        Ok(())
    }

    // ---- swarm events ----

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.metrics.record(&event);
        match event {
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event),
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                if !self.listen_addrs.contains(&address) {
                    self.listen_addrs.push(address);
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| a != &address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                if let Some(reply) = self.pending_dials.remove(&connection_id) {
                    let _ = reply.send(Ok(peer_id));
                }
                if let Some(kept) = self.kept.get_mut(&peer_id) {
                    kept.backoff = Duration::from_millis(REDIAL_BACKOFF_MIN_MS);
                    kept.due = None;
                }
                if num_established.get() == 1 {
                    let now = self.now();
                    self.peers.insert(
                        peer_id,
                        PeerState {
                            bucket: TokenBucket::new(
                                self.limits.ledger_requests_per_s,
                                self.limits.ledger_request_burst,
                                now,
                            ),
                            in_flight: 0,
                            refusals: 0,
                            served: ByteBudget::new(
                                self.limits.served_bytes_per_s,
                                self.limits.served_bytes_burst,
                                now,
                            ),
                            gossip: TokenBucket::new(
                                self.limits.gossip_msgs_per_s,
                                self.limits.gossip_msg_burst.max(1),
                                now,
                            ),
                            penalty: 0.0,
                        },
                    );
                    self.own.peers.set(self.peers.len() as i64);
                    let (addr, inbound) = match endpoint {
                        ConnectedPoint::Dialer { address, .. } => (address, false),
                        ConnectedPoint::Listener { send_back_addr, .. } => (send_back_addr, true),
                    };
                    tracing::debug!(peer = %peer_id, %addr, inbound, "peer connected");
                    self.emit(NetEvent::PeerConnected {
                        peer: peer_id,
                        addr,
                        inbound,
                    });
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                tracing::debug!(peer = %peer_id, ?cause, "peer disconnected");
                self.peers.remove(&peer_id);
                self.own.peers.set(self.peers.len() as i64);
                self.inbound.retain(|_, p| *p != peer_id);
                self.disconnect_after_response.retain(|_, p| *p != peer_id);
                self.condemned.remove(&peer_id);
                if self.ban_on_close.remove(&peer_id) {
                    self.swarm.behaviour_mut().blocked.block_peer(peer_id);
                    self.kept.remove(&peer_id);
                }
                if let Some(kept) = self.kept.get_mut(&peer_id) {
                    kept.schedule(Instant::now());
                }
                self.emit(NetEvent::PeerDisconnected { peer: peer_id });
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                tracing::debug!(peer = ?peer_id, %error, "outgoing connection failed");
                if let Some(peer) = peer_id.filter(|p| !self.swarm.is_connected(p)) {
                    if let Some(kept) = self.kept.get_mut(&peer) {
                        kept.schedule(Instant::now());
                    }
                }
                if let Some(reply) = self.pending_dials.remove(&connection_id) {
                    let result = match peer_id {
                        Some(peer) if self.swarm.is_connected(&peer) => Ok(peer),
                        _ => Err(NetError::Dial(error.to_string())),
                    };
                    let _ = reply.send(result);
                }
            }
            SwarmEvent::IncomingConnectionError {
                peer_id,
                send_back_addr,
                error,
                ..
            } => {
                tracing::debug!(peer = ?peer_id, %send_back_addr, %error, "incoming connection refused or failed");
            }
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: BehaviourEvent) {
        match event {
            BehaviourEvent::Blocked(never) => match never {},
            BehaviourEvent::Limits(never) => match never {},
            BehaviourEvent::Identify(event) => {
                self.metrics.record(&event);
                if let identify::Event::Received { peer_id, info, .. } = event {
                    // What a peer says it listens on is a claim: only addresses in our dial
                    // scope, and only a few, go where they would be dialled.
                    let scope = self.policy.scope();
                    let listen_addrs: Vec<Multiaddr> = info
                        .listen_addrs
                        .iter()
                        .filter(|a| dialable(a, &peer_id, scope))
                        .take(IDENTIFY_ADDRS_PER_PEER_MAX)
                        .cloned()
                        .collect();
                    if listen_addrs.len() < info.listen_addrs.len() {
                        tracing::debug!(
                            peer = %peer_id,
                            reported = info.listen_addrs.len(),
                            kept = listen_addrs.len(),
                            "listen addresses outside the dial scope dropped"
                        );
                    }
                    if let Some(kept) = self.kept.get_mut(&peer_id) {
                        for addr in &listen_addrs {
                            let mut addr = addr.clone();
                            if !matches!(addr.iter().last(), Some(Protocol::P2p(_))) {
                                addr.push(Protocol::P2p(peer_id));
                            }
                            kept.add_addr(addr);
                        }
                    }
                    // Peers that serve our DHT become routing entries with the addresses they
                    // listen on.
                    if info.protocols.iter().any(|p| p.as_ref() == KAD_PROTOCOL) {
                        for addr in listen_addrs {
                            self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                        }
                    }
                }
            }
            BehaviourEvent::Ping(event) => self.metrics.record(&event),
            BehaviourEvent::Kad(event) => {
                self.metrics.record(&event);
                // Bucket inserts are manual: kad names a peer that just proved it serves the
                // DHT, and the address it was reached at goes into the routing table only if it
                // is one we would dial. (Inbound peers are unroutable until identify tells us
                // where they listen, filtered above.)
                if let kad::Event::RoutablePeer { peer, address } = event {
                    if dialable(&address, &peer, self.policy.scope()) {
                        self.swarm.behaviour_mut().kad.add_address(&peer, address);
                    }
                }
            }
            BehaviourEvent::Gossipsub(event) => {
                self.metrics.record(&event);
                self.on_gossip_event(event);
            }
            BehaviourEvent::Ledger(event) => self.on_ledger_event(event),
            BehaviourEvent::Channel(()) => {}
        }
    }

    fn on_gossip_event(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source: source,
                message_id: msg_id,
                message,
            } => {
                let verdict = match GossipMsg::from_bytes(&message.data) {
                    Err(e) => Err(Misbehaviour::BadGossip(e.to_string())),
                    Ok(msg) if message.topic != Topic::of(&msg).ident().hash() => {
                        Err(Misbehaviour::GossipWrongTopic)
                    }
                    Ok(msg) => Ok(msg),
                };
                match verdict {
                    Err(what) => {
                        // No honest peer forwards what does not decode: it validates first.
                        self.swarm
                            .behaviour_mut()
                            .gossipsub
                            .report_message_validation_result(&msg_id, &source, MessageAcceptance::Reject);
                        self.misbehaved(source, what);
                    }
                    Ok(msg) => {
                        let topic = Topic::of(&msg);
                        let by_reserved = message.source.is_some_and(|a| self.reserved.contains(&a));
                        let now = self.now();
                        // Anyone may author disputes; only reserved peers author blocks,
                        // checkpoints and cosignatures that matter. What a forwarder sends of
                        // the former beyond its rate is ignored and charged to it.
                        let over_rate = !by_reserved
                            && self
                                .peers
                                .get_mut(&source)
                                .is_some_and(|s| !s.gossip.try_take(now));
                        // The last places in the queue are kept for the sequencer's blocks and
                        // checkpoints (and the witnesses' cosignatures), whoever floods.
                        let priority = by_reserved && matches!(topic, Topic::Blocks | Topic::Checkpoints);
                        let crowded = !priority && self.events.capacity() < self.priority_reserve;
                        if over_rate || crowded {
                            NetMetrics::count(
                                &self.own.gossip_shed,
                                if over_rate { "rate" } else { "crowded" },
                            );
                            self.swarm
                                .behaviour_mut()
                                .gossipsub
                                .report_message_validation_result(
                                    &msg_id,
                                    &source,
                                    MessageAcceptance::Ignore,
                                );
                            if over_rate {
                                self.penalise(source);
                            }
                            return;
                        }
                        let event = NetEvent::Gossip {
                            msg_id: msg_id.clone(),
                            source,
                            author: message.source,
                            topic,
                            msg,
                        };
                        if self.events.try_send(event).is_err() {
                            // The node is behind: neither forward nor penalise.
                            NetMetrics::count(&self.own.events_dropped, "gossip");
                            self.swarm
                                .behaviour_mut()
                                .gossipsub
                                .report_message_validation_result(
                                    &msg_id,
                                    &source,
                                    MessageAcceptance::Ignore,
                                );
                        }
                    }
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic, .. } => {
                if let Some(topic) = Topic::from_hash(&topic) {
                    self.emit(NetEvent::PeerSubscribed { peer: peer_id, topic });
                }
            }
            gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            } => {
                tracing::debug!(peer = %peer_id, ?failed_messages, "slow gossip peer");
            }
            _ => {}
        }
    }

    fn on_ledger_event(&mut self, event: request_response::Event<InboundRequest, LedgerResponse>) {
        use request_response::{Event, Message};
        match event {
            Event::Message {
                peer,
                message:
                    Message::Request {
                        request_id,
                        request,
                        channel,
                    },
                ..
            } => self.on_inbound_request(peer, request_id, request, channel),
            Event::Message {
                message: Message::Response { request_id, response },
                ..
            } => {
                if let Some(reply) = self.pending_requests.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
            Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                let error = match error {
                    OutboundFailure::Io(e) => match violation_of(&e).cloned() {
                        Some(violation) => {
                            let text = violation.to_string();
                            self.misbehaved(peer, Misbehaviour::BadResponse(violation));
                            NetError::Protocol(text)
                        }
                        None => NetError::Io(e.to_string()),
                    },
                    OutboundFailure::Timeout => NetError::Timeout,
                    OutboundFailure::ConnectionClosed => NetError::ConnectionClosed,
                    OutboundFailure::DialFailure => NetError::Dial("cannot reach peer".into()),
                    OutboundFailure::UnsupportedProtocols => NetError::UnsupportedProtocol,
                };
                tracing::debug!(%peer, %request_id, %error, "ledger request failed");
                if let Some(reply) = self.pending_requests.remove(&request_id) {
                    let _ = reply.send(Err(error));
                }
            }
            Event::InboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                tracing::debug!(%peer, %request_id, %error, "inbound ledger request failed");
                self.inbound_done(request_id);
            }
            Event::ResponseSent { request_id, .. } => self.inbound_done(request_id),
        }
    }

    /// A response went out, or the request failed: free its slot, finish a pending disconnect.
    fn inbound_done(&mut self, request_id: InboundRequestId) {
        if let Some(peer) = self.inbound.remove(&request_id) {
            if let Some(state) = self.peers.get_mut(&peer) {
                state.in_flight = state
                    .in_flight
                    .checked_sub(1)
                    .expect("in-flight count matches the map");
            }
        }
        if let Some(peer) = self.disconnect_after_response.remove(&request_id) {
            // Closing at once would race the response out of the peer's hands: the connection
            // can close before its side has read the stream.
            let at = Instant::now() + Duration::from_millis(DISCONNECT_LINGER_MS);
            self.condemned.insert(peer, Some(at));
        }
    }

    fn refuse(&mut self, channel: ResponseChannel<LedgerResponse>, text: &str) {
        let text = paychan_protocol::wire::error_text(text);
        // Err only if the stream already closed; then there is no one to tell.
        let _ = self
            .swarm
            .behaviour_mut()
            .ledger
            .send_response(channel, LedgerResponse::Error { text });
    }

    fn on_inbound_request(
        &mut self,
        peer: PeerId,
        request_id: InboundRequestId,
        request: InboundRequest,
        channel: ResponseChannel<LedgerResponse>,
    ) {
        let span = tracing::debug_span!("net.ledger_inbound", %peer, %request_id);
        let _entered = span.enter(); // synchronous from here on: no await while entered

        if self.condemned.contains_key(&peer) {
            // Being cut off: nothing more is read from it. Dropping the channel closes the
            // stream without an answer.
            drop(channel);
            return;
        }

        let request = match request {
            Ok(request) => request,
            Err(violation) => {
                NetMetrics::count(&self.own.ledger_inbound, "malformed");
                self.refuse(channel, &format!("{REFUSED_MALFORMED}: {violation}"));
                // Disconnect once the error is out, so that the peer learns why.
                self.condemn_after_response(peer, request_id);
                self.report_misbehaviour(peer, Misbehaviour::BadRequest(violation));
                return;
            }
        };

        let now = self.now();
        let limits = self.limits;
        // Submissions are answered with a few bytes; every other request may be answered with
        // many (blocks, genesis), so it waits for a positive byte budget, its peer's and the
        // total one.
        let needs_bytes = !matches!(request, LedgerRequest::Submit(_));
        let total_credit = !needs_bytes || self.served_total.has_credit(now);
        let refusal = match self.peers.get_mut(&peer) {
            // Events of a connection that is closing can still arrive; nothing is owed to it.
            None => Some(REFUSED_BUSY),
            Some(state) => {
                if !state.bucket.try_take(now) {
                    Some(REFUSED_RATE_LIMITED)
                } else if state.in_flight >= limits.ledger_requests_in_flight_max
                    // Bytes served beyond the peer's or the total budget: busy as well.
                    || (needs_bytes && !(total_credit && state.served.has_credit(now)))
                {
                    Some(REFUSED_BUSY)
                } else {
                    state.in_flight += 1;
                    None
                }
            }
        };
        if let Some(text) = refusal {
            NetMetrics::count(
                &self.own.ledger_inbound,
                if text == REFUSED_RATE_LIMITED {
                    "rate_limited"
                } else {
                    "busy"
                },
            );
            self.refuse(channel, text);
            let abusive = self.peers.get_mut(&peer).is_some_and(|s| {
                s.refusals = s.refusals.saturating_add(1);
                s.refusals > limits.ledger_refusals_max
            });
            if abusive {
                self.condemn_after_response(peer, request_id);
                self.report_misbehaviour(peer, Misbehaviour::IgnoredRefusals);
            }
            return;
        }

        self.inbound.insert(request_id, peer);
        let responder = LedgerResponder {
            peer,
            request_id,
            channel,
        };
        match self.events.try_send(NetEvent::LedgerRequest {
            peer,
            request,
            responder,
        }) {
            Ok(()) => NetMetrics::count(&self.own.ledger_inbound, "accepted"),
            Err(e) => {
                // The node is behind; not the peer's fault, so no refusal is counted.
                NetMetrics::count(&self.own.events_dropped, "ledger_request");
                NetMetrics::count(&self.own.ledger_inbound, "busy");
                if let NetEvent::LedgerRequest { responder, .. } = e.into_inner() {
                    self.inbound_done(responder.request_id);
                    self.refuse(responder.channel, REFUSED_BUSY);
                }
            }
        }
    }
}

/// How often gossip penalties decay.
const PENALTY_DECAY_TICK: Duration = Duration::from_secs(1);

/// Sleeps until `at`, or forever if there is nothing to wait for.
async fn sleep_until_or_never(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
