//! The one `NetworkBehaviour` of a paychan node and how it is configured.

use libp2p::gossipsub::{self, MessageAuthenticity, PeerScoreParams, PeerScoreThresholds, TopicScoreParams};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{allow_block_list, connection_limits, identify, kad, ping, StreamProtocol};
use paychan_protocol::hash::sha256;
use paychan_protocol::wire::LEDGER_PROTOCOL;
use prometheus_client::registry::Registry;

use crate::codec::LedgerCodec;
use crate::limits::*;
use crate::{NetConfig, NetError, Topic, IDENTIFY_PROTOCOL_VERSION, KAD_PROTOCOL};

/// Weight of one invalid (rejected) gossip message in a peer's score, before the topic weight.
/// The counter is squared: one rejection takes a peer below the gossip threshold, two below the
/// graylist threshold, after which its gossip is ignored until the counter decays.
const INVALID_MESSAGE_WEIGHT: f64 = -100.0;

/// Field order matters: the block list and the connection limits come first, so that they can
/// deny a connection before any other behaviour spends work on it.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    pub(crate) blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) slots: crate::slots::Slots,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
    pub(crate) kad: kad::Behaviour<kad::store::MemoryStore>,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) ledger: request_response::Behaviour<LedgerCodec>,
    pub(crate) channel: libp2p_stream::Behaviour,
}

pub(crate) fn build(
    key: &Keypair,
    config: &NetConfig,
    registry: &mut Registry,
) -> Result<Behaviour, NetError> {
    let local = key.public().to_peer_id();

    let limits = connection_limits::ConnectionLimits::default()
        .with_max_established_per_peer(Some(CONNECTIONS_PER_PEER_MAX))
        // The inbound total is the slots' to enforce: they know which peers are reserved.
        .with_max_established_outgoing(Some(CONNECTIONS_OUTBOUND_MAX))
        .with_max_pending_incoming(Some(CONNECTIONS_PENDING_INBOUND_MAX))
        .with_max_pending_outgoing(Some(CONNECTIONS_PENDING_OUTBOUND_MAX));

    let identify = identify::Behaviour::new(
        identify::Config::new(IDENTIFY_PROTOCOL_VERSION.to_string(), key.public())
            .with_agent_version(format!("paychan-net/{}", env!("CARGO_PKG_VERSION")))
            // No cache of what peers claim: identify would offer every address a peer reported
            // for our dials. The event loop keeps the filtered ones (Kademlia, redials).
            .with_cache_size(0),
    );

    let mut kad_config = kad::Config::new(StreamProtocol::new(KAD_PROTOCOL));
    kad_config.set_query_timeout(std::time::Duration::from_secs(30));
    // The DHT is for finding peers only: nothing here stores or reads records or providers.
    // Inbound PUT_VALUE / ADD_PROVIDER reach the (ignored) event stream, never the store, and
    // the store holds nothing even if asked.
    kad_config.set_record_filtering(kad::StoreInserts::FilterBoth);
    // Nothing enters the routing table by itself: not a peer reached at an address a lookup
    // answer named. The event loop adds the addresses that pass the dial scope (identify's,
    // and `RoutablePeer`'s), and the transport refuses to dial any other.
    kad_config.set_kbucket_inserts(kad::BucketInserts::Manual);
    let store = kad::store::MemoryStore::with_config(local, record_store_config());
    let mut kad = kad::Behaviour::with_config(local, store, kad_config);
    // Every node serves the DHT. Without this kad stays a client until an external address is
    // confirmed, which never happens on a loopback testnet.
    kad.set_mode(Some(kad::Mode::Server));

    let ledger = request_response::Behaviour::with_codec(
        LedgerCodec,
        [(StreamProtocol::new(LEDGER_PROTOCOL), ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(config.request_timeout)
            .with_max_concurrent_streams(LEDGER_STREAMS_PER_CONNECTION_MAX),
    );

    Ok(Behaviour {
        blocked: allow_block_list::Behaviour::default(),
        limits: connection_limits::Behaviour::new(limits),
        slots: crate::slots::Slots::new(config.slots.clone(), config.reserved_peers.iter().copied()),
        identify,
        ping: ping::Behaviour::new(ping::Config::new()),
        kad,
        gossipsub: gossipsub(key, config, registry)?,
        ledger,
        channel: libp2p_stream::Behaviour::new(),
    })
}

/// A record store that holds nothing: nothing in paychan uses DHT records.
pub(crate) fn record_store_config() -> kad::store::MemoryStoreConfig {
    kad::store::MemoryStoreConfig {
        max_records: 0,
        max_value_bytes: 0,
        max_providers_per_key: 0,
        max_provided_keys: 0,
    }
}

fn gossipsub(
    key: &Keypair,
    config: &NetConfig,
    registry: &mut Registry,
) -> Result<gossipsub::Behaviour, NetError> {
    let gs_config = gossipsub::ConfigBuilder::default()
        // Every message is signed by its author and every signature is checked.
        .validation_mode(gossipsub::ValidationMode::Strict)
        // Nothing is forwarded until the node has validated it (`report_validation`).
        .validate_messages()
        .max_transmit_size(GOSSIP_TRANSMIT_BYTES_MAX)
        .connection_handler_queue_len(GOSSIP_QUEUE_PER_PEER_MAX)
        .heartbeat_interval(config.gossip_heartbeat)
        .heartbeat_initial_delay(config.gossip_heartbeat)
        // Content addressing: one block is one message, whoever relays or re-publishes it.
        .message_id_fn(|m: &gossipsub::Message| {
            gossipsub::MessageId::new(
                sha256(&[m.topic.as_str().as_bytes(), &[0u8][..], &m.data[..]]).as_bytes(),
            )
        })
        .build()
        .map_err(|e| NetError::Config(format!("gossipsub: {e}")))?;

    let mut gs = gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), gs_config)
        .map_err(|e| NetError::Config(format!("gossipsub: {e}")))?
        .with_metrics(
            registry.sub_registry_with_prefix("libp2p_gossipsub_router"),
            gossipsub::MetricsConfig::default(),
        );

    let mut params = PeerScoreParams {
        // Testnets run many nodes on one address; co-location says nothing here.
        ip_colocation_factor_weight: 0.0,
        // The event loop charges ignored gossip (over the per-peer rate, or judged worthless
        // by the node) as a negative application score, one point per message.
        app_specific_weight: 1.0,
        ..PeerScoreParams::default()
    };
    for topic in Topic::ALL {
        params.topics.insert(
            topic.ident().hash(),
            TopicScoreParams {
                // Blocks come once per interval and checkpoints more rarely: a mesh peer that
                // delivers few messages is not failing, so delivery-rate penalties are off.
                mesh_message_deliveries_weight: 0.0,
                mesh_failure_penalty_weight: 0.0,
                invalid_message_deliveries_weight: INVALID_MESSAGE_WEIGHT,
                ..TopicScoreParams::default()
            },
        );
    }
    gs.with_peer_score(params, PeerScoreThresholds::default())
        .map_err(|e| NetError::Config(format!("gossipsub scoring: {e}")))?;

    for topic in Topic::ALL {
        gs.subscribe(&topic.ident())
            .map_err(|e| NetError::Config(format!("gossipsub subscribe: {e}")))?;
    }
    Ok(gs)
}

#[cfg(test)]
mod tests {
    use libp2p::kad::store::RecordStore;
    use libp2p::kad::{ProviderRecord, Record, RecordKey};

    use super::*;

    #[test]
    fn the_record_store_holds_nothing() {
        let local = libp2p::PeerId::random();
        let mut store = kad::store::MemoryStore::with_config(local, record_store_config());
        let key = RecordKey::new(&b"k");
        assert!(store.put(Record::new(key.clone(), vec![1; 1024])).is_err());
        assert!(store.get(&key).is_none());
        assert!(store
            .add_provider(ProviderRecord::new(key.clone(), libp2p::PeerId::random(), vec![]))
            .is_err());
        assert!(store.providers(&key).is_empty());
    }
}
