//! Namespaces, key layouts and the store's own limits.
//!
//! Each namespace is one sled tree; its name is a named constant so that a change of layout is
//! a visible change of this file (as LDK's `KVStore` namespaces are). Keys are chosen so that
//! sled's byte order is the order callers iterate in.
//!
//! | namespace          | key                                   | value                                   |
//! |--------------------|---------------------------------------|-----------------------------------------|
//! | `genesis`          | [`GENESIS_KEY`]                       | `Genesis`, canonical encoding           |
//! | `blocks`           | height, 8 bytes big-endian            | `Block`, canonical encoding             |
//! | `checkpoints`      | height, 8 bytes big-endian            | `SignedCheckpoint`, canonical encoding  |
//! | `peers`            | peer id, UTF-8                        | postcard `Vec<String>` of multiaddrs    |
//! | `channels`         | channel id, 32 bytes                  | opaque bytes encoded by the caller      |
//! | `seq_reservations` | channel id (32) ‖ direction (1: 0/1)  | reservation, 8 bytes big-endian         |
//! | `meta`             | key, UTF-8                            | opaque bytes                            |
//!
//! The tip is not stored separately: it is the last key of `blocks`, so it can never disagree
//! with the blocks that are there.

use paychan_protocol::{ChannelId, Direction, Hash32};

use crate::error::{Result, StoreError};

/// Namespace (sled tree) of the genesis.
pub const NS_GENESIS: &str = "genesis";
/// Namespace of blocks by height.
pub const NS_BLOCKS: &str = "blocks";
/// Namespace of signed checkpoints by height.
pub const NS_CHECKPOINTS: &str = "checkpoints";
/// Namespace of known peers and their addresses.
pub const NS_PEERS: &str = "peers";
/// Namespace of channel records.
pub const NS_CHANNELS: &str = "channels";
/// Namespace of payer seq reservations per channel direction.
pub const NS_SEQ_RESERVATIONS: &str = "seq_reservations";
/// Namespace of node metadata.
pub const NS_META: &str = "meta";
/// Namespace of the payments received on each channel: one record per burst, keyed by the
/// channel id and the burst's first seq.
pub const NS_PAYMENTS: &str = "payments";
/// Every namespace, in a fixed order.
pub const NAMESPACES: [&str; 8] = [
    NS_GENESIS,
    NS_BLOCKS,
    NS_CHECKPOINTS,
    NS_PEERS,
    NS_CHANNELS,
    NS_SEQ_RESERVATIONS,
    NS_META,
    NS_PAYMENTS,
];

/// The one key of the genesis namespace.
pub const GENESIS_KEY: &[u8] = b"genesis";

/// Longest peer id (a base58 libp2p peer id is about 52 bytes).
pub const PEER_ID_BYTES_MAX: usize = 128;
/// Most addresses kept per peer.
pub const PEER_ADDRS_MAX: usize = 32;
/// Longest multiaddr string.
pub const MULTIADDR_BYTES_MAX: usize = 512;
/// Largest encoded peer record.
pub const PEER_RECORD_BYTES_MAX: usize = 17 * 1024;
/// Largest payments record.
pub const PAYMENTS_RECORD_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Key of a payments record: the channel id, then the first seq big-endian.
pub fn payments_key(id: &ChannelId, first_seq: u64) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(&id.0 .0);
    k[32..].copy_from_slice(&first_seq.to_be_bytes());
    k
}

/// Largest channel record.
pub const CHANNEL_RECORD_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Longest metadata key.
pub const META_KEY_BYTES_MAX: usize = 128;
/// Largest metadata value.
pub const META_VALUE_BYTES_MAX: usize = 64 * 1024;

// A full peer record (each string: a varint length of at most 2 bytes, then its bytes; the
// list: a varint count of 1 byte) always fits the record limit.
const PEER_RECORD_BYTES_WORST: usize = 1 + PEER_ADDRS_MAX * (2 + MULTIADDR_BYTES_MAX);
const _: () = assert!(PEER_RECORD_BYTES_WORST <= PEER_RECORD_BYTES_MAX);
const _: () = assert!(MULTIADDR_BYTES_MAX < 1 << 14); // two-byte varint length
const _: () = assert!(PEER_ADDRS_MAX < 1 << 7); // one-byte varint count

/// Key of a block or checkpoint: the height, big-endian, so byte order is height order.
pub fn height_key(height: u64) -> [u8; 8] {
    height.to_be_bytes()
}

/// Reads a height key back.
pub fn parse_height_key(ns: &'static str, key: &[u8]) -> Result<u64> {
    let bytes: [u8; 8] = key
        .try_into()
        .map_err(|_| StoreError::corrupt(format!("{ns} key"), format!("{} bytes, expected 8", key.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

/// Key of a channel record.
pub fn channel_key(id: &ChannelId) -> [u8; 32] {
    id.0 .0
}

/// Reads a channel key back.
pub fn parse_channel_key(key: &[u8]) -> Result<ChannelId> {
    let bytes: [u8; 32] = key
        .try_into()
        .map_err(|_| StoreError::corrupt("channel key", format!("{} bytes, expected 32", key.len())))?;
    Ok(ChannelId(Hash32(bytes)))
}

/// Key of a seq reservation: channel id then the direction's index (0: A to B, 1: B to A).
pub fn seq_key(id: &ChannelId, direction: Direction) -> [u8; 33] {
    let mut key = [0u8; 33];
    key[..32].copy_from_slice(&id.0 .0);
    key[32] = direction.index() as u8;
    key
}

/// Reads a seq reservation key back.
pub fn parse_seq_key(key: &[u8]) -> Result<(ChannelId, Direction)> {
    let bad = || StoreError::corrupt("seq reservation key", format!("{key:02x?}"));
    if key.len() != 33 {
        return Err(bad());
    }
    let id = parse_channel_key(&key[..32])?;
    let direction = match key[32] {
        0 => Direction::AToB,
        1 => Direction::BToA,
        _ => return Err(bad()),
    };
    Ok((id, direction))
}
