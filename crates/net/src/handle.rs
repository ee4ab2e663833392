//! The node's side of the network layer: a cloneable handle that sends commands to the event
//! loop over a bounded queue and gets each answer on a oneshot.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::gossipsub::{MessageAcceptance, MessageId};
use libp2p::request_response::{InboundRequestId, ResponseChannel};
use libp2p::{Multiaddr, PeerId, Stream, StreamProtocol};
use libp2p_stream::{IncomingStreams, OpenStreamError};
use paychan_protocol::wire::{GossipMsg, LedgerRequest, LedgerResponse, CHANNEL_PROTOCOL};
use paychan_protocol::Wire;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};

use crate::limits::CHANNEL_STREAM_OPEN_TIMEOUT_MS;
use crate::{NetError, Topic};

/// Where the answer to one inbound ledger request goes. Pass it to [`NetHandle::respond`];
/// dropping it sends the peer nothing (its request times out) and frees its in-flight slot.
#[derive(Debug)]
pub struct LedgerResponder {
    pub(crate) peer: PeerId,
    pub(crate) request_id: InboundRequestId,
    pub(crate) channel: ResponseChannel<LedgerResponse>,
}

impl LedgerResponder {
    /// The peer that asked.
    pub fn peer(&self) -> PeerId {
        self.peer
    }
}

pub(crate) type Reply<T> = oneshot::Sender<Result<T, NetError>>;

/// What a handle asks of the event loop.
pub(crate) enum Command {
    ListenAddrs(Reply<Vec<Multiaddr>>),
    Dial(Multiaddr, Reply<PeerId>),
    AddBootstrap(Multiaddr, Reply<PeerId>),
    KeepConnected(PeerId, Reply<()>),
    Publish {
        topic: Topic,
        data: Vec<u8>,
        reply: Reply<MessageId>,
    },
    PenaliseGossip(PeerId),
    ReportValidation {
        msg_id: MessageId,
        source: PeerId,
        acceptance: MessageAcceptance,
    },
    Request {
        peer: PeerId,
        request: LedgerRequest,
        reply: Reply<LedgerResponse>,
    },
    Respond {
        responder: LedgerResponder,
        response: LedgerResponse,
    },
    Ban(PeerId, Reply<()>),
    Unban(PeerId, Reply<()>),
    ConnectedPeers(Reply<Vec<PeerId>>),
    MeshPeers(Topic, Reply<Vec<PeerId>>),
    Shutdown,
}

/// A cloneable handle to the network event loop. Every method is cheap to call from any task;
/// the ones that wait for an answer are bounded by a timeout or by the loop's own limits.
#[derive(Clone)]
pub struct NetHandle {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) control: libp2p_stream::Control,
    pub(crate) local_peer_id: PeerId,
    pub(crate) registry: Arc<Mutex<Registry>>,
    pub(crate) request_timeout: Duration,
    pub(crate) dials_refused: Counter,
}

impl fmt::Debug for NetHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetHandle")
            .field("local_peer_id", &self.local_peer_id)
            .finish_non_exhaustive()
    }
}

impl NetHandle {
    /// This node's peer id (derived from its ed25519 key).
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// The metrics registry (libp2p's metrics and this crate's), for the `/metrics` endpoint.
    pub fn metrics_registry(&self) -> Arc<Mutex<Registry>> {
        self.registry.clone()
    }

    /// Dial attempts refused so far because their address was outside the dial scope (one per
    /// address; also `paychan_net_dials_refused_total` in the registry).
    pub fn dials_refused(&self) -> u64 {
        self.dials_refused.get()
    }

    async fn send(&self, command: Command) -> Result<(), NetError> {
        self.commands.send(command).await.map_err(|_| NetError::Shutdown)
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, NetError> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx)).await?;
        rx.await.map_err(|_| NetError::Shutdown)?
    }

    /// The addresses the node listens on, each usable by a peer after appending `/p2p/<id>`.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.ask(Command::ListenAddrs).await
    }

    /// Dials `addr` and waits until the connection is established (or fails). With a `/p2p/`
    /// suffix, a peer already connected answers at once.
    pub async fn dial(&self, addr: Multiaddr) -> Result<PeerId, NetError> {
        self.ask(|r| Command::Dial(addr, r)).await
    }

    /// Adds a Kademlia bootstrap peer (`addr` must end in `/p2p/<id>`), dials it and starts a
    /// bootstrap query. Returns once the connection is up.
    pub async fn add_bootstrap_peer(&self, addr: Multiaddr) -> Result<PeerId, NetError> {
        self.ask(|r| Command::AddBootstrap(addr, r)).await
    }

    /// Keeps `peer` connected: whenever the connection is lost (or cannot be made), the loop
    /// dials it again with capped exponential backoff, at the addresses it learnt for it
    /// (bootstrap entries, identify, the DHT). Bootstrap peers are kept connected already. A
    /// ban ends it.
    pub async fn keep_connected(&self, peer: PeerId) -> Result<(), NetError> {
        self.ask(|r| Command::KeepConnected(peer, r)).await
    }

    /// Publishes a message on `topic`, which must be the message's own topic ([`Topic::of`]).
    pub async fn publish(&self, topic: Topic, msg: &GossipMsg) -> Result<MessageId, NetError> {
        if Topic::of(msg) != topic {
            return Err(NetError::WrongTopic(topic));
        }
        let data = msg.to_bytes();
        if data.len() > GossipMsg::BYTES_MAX {
            return Err(NetError::TooLarge {
                len: data.len(),
                max: GossipMsg::BYTES_MAX,
            });
        }
        self.ask(|reply| Command::Publish { topic, data, reply }).await
    }

    /// Reports the node's verdict on a gossip message ([`crate::NetEvent::Gossip`]): `Accept`
    /// forwards it, `Reject` drops it and penalises `source`, `Ignore` drops it quietly.
    pub async fn report_validation(
        &self,
        msg_id: MessageId,
        source: PeerId,
        acceptance: MessageAcceptance,
    ) -> Result<(), NetError> {
        self.send(Command::ReportValidation {
            msg_id,
            source,
            acceptance,
        })
        .await
    }

    /// Charges `peer` for forwarding a gossip message the node ignored as worthless (e.g. a
    /// cosignature for a block nobody knows): its gossipsub score drops a little, and decays
    /// back. A peer that keeps doing it is left out of gossip, then graylisted. Reserved peers
    /// are not charged.
    pub async fn penalise_gossip(&self, peer: PeerId) -> Result<(), NetError> {
        self.send(Command::PenaliseGossip(peer)).await
    }

    /// Sends a ledger request and waits for the response, at most the configured request
    /// timeout (plus the time to queue the request if the peer's stream limit is reached).
    pub async fn request(&self, peer: PeerId, request: LedgerRequest) -> Result<LedgerResponse, NetError> {
        let len = request.to_bytes().len();
        if len > LedgerRequest::BYTES_MAX {
            return Err(NetError::TooLarge {
                len,
                max: LedgerRequest::BYTES_MAX,
            });
        }
        // The loop answers every request (response, failure or libp2p's own timeout); this
        // outer bound only covers a request queued behind others for a long time.
        let bound = self.request_timeout.saturating_mul(2);
        tokio::time::timeout(bound, self.ask(|reply| Command::Request { peer, request, reply }))
            .await
            .map_err(|_| NetError::Timeout)?
    }

    /// Answers an inbound ledger request.
    pub async fn respond(
        &self,
        responder: LedgerResponder,
        response: LedgerResponse,
    ) -> Result<(), NetError> {
        self.send(Command::Respond { responder, response }).await
    }

    /// Disconnects `peer` and refuses every future connection with it, both ways; its gossip
    /// is ignored and it is dropped from the DHT.
    pub async fn ban(&self, peer: PeerId) -> Result<(), NetError> {
        self.ask(|r| Command::Ban(peer, r)).await
    }

    /// Lifts a ban.
    pub async fn unban(&self, peer: PeerId) -> Result<(), NetError> {
        self.ask(|r| Command::Unban(peer, r)).await
    }

    /// Peers with an established connection.
    pub async fn connected_peers(&self) -> Result<Vec<PeerId>, NetError> {
        self.ask(Command::ConnectedPeers).await
    }

    /// Peers in our gossipsub mesh for `topic` (those we forward validated messages to).
    pub async fn gossip_mesh_peers(&self, topic: Topic) -> Result<Vec<PeerId>, NetError> {
        self.ask(|r| Command::MeshPeers(topic, r)).await
    }

    /// Opens a `/paychan/channel/1` stream to `peer` (dialling it if it is not connected and
    /// its address is known). Frames on it are `paychan_protocol::wire` frames of `Envelope`s.
    pub async fn open_channel_stream(&self, peer: PeerId) -> Result<Stream, NetError> {
        let mut control = self.control.clone();
        let open = control.open_stream(peer, StreamProtocol::new(CHANNEL_PROTOCOL));
        match tokio::time::timeout(Duration::from_millis(CHANNEL_STREAM_OPEN_TIMEOUT_MS), open).await {
            Err(_) => Err(NetError::Timeout),
            Ok(Ok(stream)) => Ok(stream),
            Ok(Err(OpenStreamError::UnsupportedProtocol(_))) => Err(NetError::UnsupportedProtocol),
            Ok(Err(e)) => Err(NetError::Io(e.to_string())),
        }
    }

    /// Incoming `/paychan/channel/1` streams, as `(peer, stream)`. Only one receiver may exist
    /// at a time; dropping it refuses further streams. Poll it continuously: a stream that
    /// arrives while the receiver is not ready is dropped.
    pub fn accept_channel_streams(&self) -> Result<IncomingStreams, NetError> {
        self.control
            .clone()
            .accept(StreamProtocol::new(CHANNEL_PROTOCOL))
            .map_err(|_| NetError::AlreadyAccepting)
    }

    /// Stops the event loop; every connection closes.
    pub async fn shutdown(&self) -> Result<(), NetError> {
        self.send(Command::Shutdown).await
    }
}
