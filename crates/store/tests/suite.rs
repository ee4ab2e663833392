//! One behaviour suite run against every backend, then the sled- and fault-specific tests.

mod common;

use common::*;
use paychan_protocol::limits::WITNESSES_MAX;
use paychan_protocol::Direction;
use paychan_store::keys::{self, CHANNEL_RECORD_BYTES_MAX, PAYMENTS_RECORD_BYTES_MAX, PEER_ADDRS_MAX};
use paychan_store::{FaultyStore, MemStore, PutOutcome, SledOptions, SledStore, Store, StoreError, SyncMode};
use tempfile::TempDir;

// ---------------------------------------------------------------------------------------------
// The generic suite.

fn genesis_round_trip(s: &dyn Store) {
    assert_eq!(s.genesis().unwrap(), None);
    let g = genesis("testnet");
    assert_eq!(s.put_genesis(&g).unwrap(), PutOutcome::Stored);
    assert_eq!(s.genesis().unwrap(), Some(g.clone()));
    assert_eq!(s.put_genesis(&g).unwrap(), PutOutcome::AlreadyStored);
    assert_eq!(s.put_genesis(&genesis("other")), Err(StoreError::GenesisConflict));
    assert_eq!(s.genesis().unwrap(), Some(g));
}

fn blocks_round_trip_in_height_order(s: &dyn Store) {
    assert_eq!(s.tip().unwrap(), 0);
    assert_eq!(s.block(1).unwrap(), None);
    // Past 255 and 256: a little-endian key would sort 256 before 2.
    for h in 1..=300 {
        assert_eq!(s.put_block(&block(h, 0)).unwrap(), PutOutcome::Stored);
    }
    assert_eq!(s.tip().unwrap(), 300);
    assert_eq!(s.block(257).unwrap(), Some(block(257, 0)));
    let all = s.blocks(0, usize::MAX).unwrap();
    assert_eq!(all.len(), 300);
    assert!(all
        .iter()
        .enumerate()
        .all(|(i, b)| b.header.height == i as u64 + 1));
    let some: Vec<u64> = s
        .blocks(254, 4)
        .unwrap()
        .iter()
        .map(|b| b.header.height)
        .collect();
    assert_eq!(some, [254, 255, 256, 257]);
    assert_eq!(s.blocks(299, 10).unwrap().len(), 2);
    assert!(s.blocks(301, 10).unwrap().is_empty());
    assert!(s.blocks(1, 0).unwrap().is_empty());
}

fn block_conflicts_and_gaps_refused(s: &dyn Store) {
    s.put_block(&block(1, 0)).unwrap();
    s.put_block(&block(2, 0)).unwrap();
    assert_eq!(s.put_block(&block(2, 0)).unwrap(), PutOutcome::AlreadyStored);
    assert_eq!(s.put_block(&block(1, 0)).unwrap(), PutOutcome::AlreadyStored);
    assert_eq!(s.put_block(&block(2, 1)), Err(StoreError::Conflict { height: 2 }));
    assert_eq!(s.put_block(&block(1, 1)), Err(StoreError::Conflict { height: 1 }));
    assert_eq!(
        s.put_block(&block(4, 0)),
        Err(StoreError::NotNext { height: 4, tip: 2 })
    );
    assert_eq!(
        s.put_block(&block(0, 0)),
        Err(StoreError::NotNext { height: 0, tip: 2 })
    );
    assert_eq!(s.block(2).unwrap(), Some(block(2, 0)));
    assert_eq!(s.tip().unwrap(), 2);
    assert_eq!(s.put_block(&block(3, 1)).unwrap(), PutOutcome::Stored);
}

fn block_over_limits_refused(s: &dyn Store) {
    let mut b = block(1, 0);
    b.txs = vec![b.txs[0].clone(); paychan_protocol::limits::BLOCK_TXS_MAX + 1];
    assert!(matches!(
        s.put_block(&b),
        Err(StoreError::Invalid { what: "block", .. })
    ));
    assert_eq!(s.tip().unwrap(), 0);
}

fn checkpoints_merge_cosignatures(s: &dyn Store) {
    assert_eq!(s.latest_checkpoint().unwrap(), None);
    // Duplicates within one put are dropped too.
    let stored = s.put_checkpoint(&checkpoint(5, 0, &[1, 2, 1])).unwrap();
    assert_eq!(stored, checkpoint(5, 0, &[1, 2]));
    let stored = s.put_checkpoint(&checkpoint(5, 0, &[2, 3])).unwrap();
    assert_eq!(stored, checkpoint(5, 0, &[1, 2, 3]));
    // A second cosignature by a witness already present is not added.
    let mut other_sig = checkpoint(5, 0, &[3]);
    other_sig.cosignatures[0].signature.0[0] ^= 1;
    other_sig.signature.0[0] ^= 1;
    assert_eq!(
        s.put_checkpoint(&other_sig).unwrap(),
        checkpoint(5, 0, &[1, 2, 3])
    );
    assert_eq!(s.checkpoint(5).unwrap(), Some(checkpoint(5, 0, &[1, 2, 3])));
    assert_eq!(
        s.put_checkpoint(&checkpoint(5, 1, &[4])),
        Err(StoreError::Conflict { height: 5 })
    );
    assert_eq!(s.checkpoint(5).unwrap(), Some(checkpoint(5, 0, &[1, 2, 3])));

    s.put_checkpoint(&checkpoint(9, 0, &[])).unwrap();
    s.put_checkpoint(&checkpoint(3, 0, &[7])).unwrap();
    assert_eq!(s.latest_checkpoint().unwrap().unwrap().checkpoint.height, 9);
    let heights: Vec<u64> = s
        .checkpoints(0, 10)
        .unwrap()
        .iter()
        .map(|c| c.checkpoint.height)
        .collect();
    assert_eq!(heights, [3, 5, 9]);
    assert_eq!(s.checkpoints(4, 1).unwrap(), vec![checkpoint(5, 0, &[1, 2, 3])]);
    assert_eq!(s.checkpoint(4).unwrap(), None);

    // A merge that would exceed the decoder's limit is refused and changes nothing.
    let full: Vec<u8> = (10..10 + WITNESSES_MAX as u8).collect();
    s.put_checkpoint(&checkpoint(20, 0, &full)).unwrap();
    assert!(matches!(
        s.put_checkpoint(&checkpoint(20, 0, &[200])),
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(s.checkpoint(20).unwrap(), Some(checkpoint(20, 0, &full)));
}

fn peers_round_trip(s: &dyn Store) {
    let a = vec!["/ip4/127.0.0.1/tcp/4001".to_string()];
    let b = vec![
        "/ip4/10.0.0.1/tcp/1".to_string(),
        "/dns4/x.example/tcp/2".to_string(),
    ];
    s.put_peer("peerB", &a).unwrap();
    s.put_peer("peerA", &b).unwrap();
    s.put_peer("peerC", &[]).unwrap();
    assert_eq!(
        s.peers().unwrap(),
        vec![
            ("peerA".into(), b.clone()),
            ("peerB".into(), a.clone()),
            ("peerC".into(), vec![])
        ]
    );
    s.put_peer("peerB", &b).unwrap();
    s.delete_peer("peerC").unwrap();
    s.delete_peer("nobody").unwrap();
    assert_eq!(
        s.peers().unwrap(),
        vec![("peerA".into(), b.clone()), ("peerB".into(), b)]
    );
    assert!(matches!(s.put_peer("", &a), Err(StoreError::Invalid { .. })));
    let many = vec!["/ip4/1.2.3.4/tcp/1".to_string(); PEER_ADDRS_MAX + 1];
    assert!(matches!(
        s.put_peer("peerD", &many),
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(s.peers().unwrap().len(), 2);
}

fn channels_round_trip(s: &dyn Store) {
    assert_eq!(s.channel(&chan(1)).unwrap(), None);
    s.put_channel(&chan(2), b"two").unwrap();
    s.put_channel(&chan(1), b"one").unwrap();
    s.put_channel(&chan(3), b"").unwrap();
    assert_eq!(s.channel(&chan(1)).unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(
        s.channels().unwrap(),
        vec![
            (chan(1), b"one".to_vec()),
            (chan(2), b"two".to_vec()),
            (chan(3), vec![])
        ]
    );
    s.put_channel(&chan(1), b"uno").unwrap();
    s.delete_channel(&chan(2)).unwrap();
    s.delete_channel(&chan(9)).unwrap();
    assert_eq!(
        s.channels().unwrap(),
        vec![(chan(1), b"uno".to_vec()), (chan(3), vec![])]
    );
    let big = vec![0u8; CHANNEL_RECORD_BYTES_MAX + 1];
    assert!(matches!(
        s.put_channel(&chan(4), &big),
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(s.channel(&chan(4)).unwrap(), None);
}

fn payments_in_seq_order_per_channel_and_deleted_with_it(s: &dyn Store) {
    assert_eq!(s.payments(&chan(1), 0, 10).unwrap(), vec![]);
    for seq in [300u64, 1, 256, u64::MAX - 1] {
        s.put_payments(&chan(1), seq, &seq.to_be_bytes()).unwrap();
    }
    s.put_payments(&chan(2), 5, b"other").unwrap();
    s.put_payments(&chan(0), 5, b"another").unwrap();
    let seqs = |from, limit| -> Vec<u64> {
        s.payments(&chan(1), from, limit)
            .unwrap()
            .into_iter()
            .map(|(seq, r)| {
                assert_eq!(r, seq.to_be_bytes());
                seq
            })
            .collect()
    };
    assert_eq!(seqs(0, 10), vec![1, 256, 300, u64::MAX - 1]);
    assert_eq!(seqs(2, 2), vec![256, 300]);
    assert_eq!(seqs(u64::MAX, 10), Vec::<u64>::new());
    // The record that holds a seq: the newest of this channel starting at or below it (the
    // neighbours' records, channels 0 and 2, are never taken).
    let at = |seq| s.payments_record_at(&chan(1), seq).unwrap();
    assert_eq!(
        (at(0), at(1), at(255), at(256), at(299)),
        (None, Some(1), Some(1), Some(256), Some(256))
    );
    assert_eq!((at(u64::MAX - 2), at(u64::MAX)), (Some(300), Some(u64::MAX - 1)));
    assert_eq!(s.payments_record_at(&chan(2), 4).unwrap(), None);
    assert_eq!(s.payments_record_at(&chan(3), u64::MAX).unwrap(), None);
    // A second put at one key replaces the first.
    s.put_payments(&chan(2), 5, b"again").unwrap();
    assert_eq!(s.payments(&chan(2), 0, 10).unwrap(), vec![(5, b"again".to_vec())]);
    let big = vec![0u8; PAYMENTS_RECORD_BYTES_MAX + 1];
    assert!(matches!(
        s.put_payments(&chan(3), 1, &big),
        Err(StoreError::Invalid { .. })
    ));
    s.put_channel(&chan(1), b"one").unwrap();
    s.delete_channel(&chan(1)).unwrap();
    assert_eq!(s.payments(&chan(1), 0, 10).unwrap(), vec![]);
    assert_eq!(
        s.payments(&chan(0), 0, 10).unwrap(),
        vec![(5, b"another".to_vec())]
    );
}

fn seq_reservations_only_grow(s: &dyn Store) {
    assert_eq!(s.seq_reservation(&chan(1), Direction::AToB).unwrap(), None);
    s.reserve_seq(&chan(1), Direction::BToA, 10).unwrap();
    s.reserve_seq(&chan(1), Direction::AToB, 65_536).unwrap();
    s.reserve_seq(&chan(0), Direction::AToB, 1).unwrap();
    s.reserve_seq(&chan(1), Direction::AToB, 65_536).unwrap();
    s.reserve_seq(&chan(1), Direction::AToB, 131_072).unwrap();
    assert_eq!(
        s.reserve_seq(&chan(1), Direction::AToB, 5),
        Err(StoreError::SeqRegress {
            channel: chan(1),
            direction: Direction::AToB,
            stored: 131_072,
            requested: 5
        })
    );
    assert_eq!(
        s.seq_reservation(&chan(1), Direction::AToB).unwrap(),
        Some(131_072)
    );
    assert_eq!(
        s.seq_reservations().unwrap(),
        vec![
            (chan(0), Direction::AToB, 1),
            (chan(1), Direction::AToB, 131_072),
            (chan(1), Direction::BToA, 10)
        ]
    );
    // Deleting the channel keeps its reservations.
    s.put_channel(&chan(1), b"x").unwrap();
    s.delete_channel(&chan(1)).unwrap();
    assert_eq!(s.seq_reservation(&chan(1), Direction::BToA).unwrap(), Some(10));
}

fn meta_round_trip(s: &dyn Store) {
    assert_eq!(s.meta("node.version").unwrap(), None);
    s.put_meta("node.version", b"1").unwrap();
    s.put_meta("a", b"").unwrap();
    s.put_meta("node.version", b"2").unwrap();
    assert_eq!(s.meta("node.version").unwrap(), Some(b"2".to_vec()));
    assert_eq!(
        s.meta_entries().unwrap(),
        vec![("a".into(), vec![]), ("node.version".into(), b"2".to_vec())]
    );
    assert!(matches!(s.put_meta("", b"x"), Err(StoreError::Invalid { .. })));
    let big = vec![0u8; keys::META_VALUE_BYTES_MAX + 1];
    assert!(matches!(s.put_meta("big", &big), Err(StoreError::Invalid { .. })));
    s.flush().unwrap();
}

macro_rules! backend_suite {
    ($name:ident, $make:expr) => {
        mod $name {
            use super::*;

            #[allow(clippy::redundant_closure_call)]
            fn run(test: fn(&dyn Store)) {
                let (_guard, store) = ($make)();
                test(&store);
                store.flush().unwrap();
            }

            #[test]
            fn genesis() {
                run(genesis_round_trip)
            }
            #[test]
            fn blocks() {
                run(blocks_round_trip_in_height_order)
            }
            #[test]
            fn block_conflicts() {
                run(block_conflicts_and_gaps_refused)
            }
            #[test]
            fn block_limits() {
                run(block_over_limits_refused)
            }
            #[test]
            fn checkpoints() {
                run(checkpoints_merge_cosignatures)
            }
            #[test]
            fn peers() {
                run(peers_round_trip)
            }
            #[test]
            fn channels() {
                run(channels_round_trip)
            }
            #[test]
            fn seq_reservations() {
                run(seq_reservations_only_grow)
            }
            #[test]
            fn payments() {
                run(payments_in_seq_order_per_channel_and_deleted_with_it)
            }
            #[test]
            fn meta() {
                run(meta_round_trip)
            }
        }
    };
}

fn sled_tmp() -> (TempDir, SledStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = SledStore::open(dir.path()).unwrap();
    (dir, s)
}

backend_suite!(mem, || ((), MemStore::new()));
backend_suite!(sled, sled_tmp);
backend_suite!(faulty_mem, || ((), FaultyStore::new(MemStore::new()).unwrap()));
backend_suite!(faulty_sled, || {
    let (dir, s) = sled_tmp();
    (dir, FaultyStore::new(s).unwrap())
});

// ---------------------------------------------------------------------------------------------
// sled: corruption and reopening.

/// Fills every namespace through the store.
fn fill(s: &dyn Store) {
    s.put_genesis(&genesis("testnet")).unwrap();
    for h in 1..=3 {
        s.put_block(&block(h, 0)).unwrap();
    }
    s.put_checkpoint(&checkpoint(3, 0, &[2, 3])).unwrap();
    s.put_peer("peerA", &["/ip4/127.0.0.1/tcp/1".to_string()])
        .unwrap();
    s.put_channel(&chan(1), b"state").unwrap();
    s.reserve_seq(&chan(1), Direction::AToB, 65_536).unwrap();
    s.put_meta("k", b"v").unwrap();
}

fn is_corrupt<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Corrupt { .. }))
}

#[test]
fn sled_garbage_reads_as_corrupt() {
    let (_dir, s) = sled_tmp();
    fill(&s);
    let tree = |ns| s.tree(ns).unwrap();

    tree(keys::NS_GENESIS)
        .insert(keys::GENESIS_KEY, &b"garbage"[..])
        .unwrap();
    assert!(is_corrupt(s.genesis()));
    assert!(is_corrupt(s.put_genesis(&genesis("testnet"))));

    tree(keys::NS_BLOCKS)
        .insert(keys::height_key(2), &b"\xff\xff\xff"[..])
        .unwrap();
    assert!(is_corrupt(s.block(2)));
    assert!(is_corrupt(s.blocks(1, 10)));
    assert_eq!(s.blocks(3, 10).unwrap(), vec![block(3, 0)]);
    // Re-putting the good block does not overwrite damage silently: it reports it.
    assert!(is_corrupt(s.put_block(&block(2, 0))));
    // A valid block under the wrong key.
    tree(keys::NS_BLOCKS)
        .insert(keys::height_key(3), block(1, 0).to_bytes())
        .unwrap();
    assert!(is_corrupt(s.block(3)));
    // Trailing bytes after a valid block.
    let mut long = block(1, 0).to_bytes();
    long.push(0);
    tree(keys::NS_BLOCKS).insert(keys::height_key(1), long).unwrap();
    assert!(is_corrupt(s.block(1)));
    // A key that is not a height.
    tree(keys::NS_BLOCKS).insert(&b"xyz"[..], &b""[..]).unwrap();
    assert!(is_corrupt(s.tip()));

    tree(keys::NS_CHECKPOINTS)
        .insert(keys::height_key(3), &b"\x00"[..])
        .unwrap();
    assert!(is_corrupt(s.checkpoint(3)));
    assert!(is_corrupt(s.latest_checkpoint()));
    assert!(is_corrupt(s.put_checkpoint(&checkpoint(3, 0, &[4]))));

    tree(keys::NS_PEERS).insert(&b"peerA"[..], &b"\x05"[..]).unwrap();
    assert!(is_corrupt(s.peers()));
    tree(keys::NS_PEERS).insert(&b"\xff"[..], &b"\x00"[..]).unwrap();
    tree(keys::NS_PEERS).remove(&b"peerA"[..]).unwrap();
    assert!(is_corrupt(s.peers()));

    tree(keys::NS_CHANNELS).insert(&b"short"[..], &b"x"[..]).unwrap();
    assert!(is_corrupt(s.channels()));
    assert_eq!(s.channel(&chan(1)).unwrap(), Some(b"state".to_vec()));

    tree(keys::NS_SEQ_RESERVATIONS)
        .insert(keys::seq_key(&chan(1), Direction::AToB), &b"123"[..])
        .unwrap();
    assert!(is_corrupt(s.seq_reservation(&chan(1), Direction::AToB)));
    assert!(is_corrupt(s.reserve_seq(&chan(1), Direction::AToB, 1 << 20)));
    assert!(is_corrupt(s.seq_reservations()));

    tree(keys::NS_META).insert(&b"\xc3\x28"[..], &b"v"[..]).unwrap();
    assert!(is_corrupt(s.meta_entries()));
}

#[test]
fn sled_gap_in_blocks_reads_as_corrupt() {
    let (_dir, s) = sled_tmp();
    fill(&s);
    s.tree(keys::NS_BLOCKS)
        .unwrap()
        .remove(keys::height_key(2))
        .unwrap();
    assert!(is_corrupt(s.blocks(1, 10)));
    assert!(is_corrupt(s.blocks(2, 10)));
}

use paychan_protocol::Wire;

#[test]
fn sled_reopen_keeps_flushed_data() {
    for sync_mode in [SyncMode::SyncFileRange, SyncMode::Fsync] {
        let dir = tempfile::tempdir().unwrap();
        let options = SledOptions {
            sync_mode,
            ..SledOptions::default()
        };
        let before = {
            let s = SledStore::open_with(dir.path(), options).unwrap();
            fill(&s);
            // Above sled's blob threshold (~128 KiB): stored in its own file under blobs/.
            s.put_channel(&chan(2), &vec![0xab; 300 * 1024]).unwrap();
            s.flush().unwrap();
            dump(&s).unwrap()
        };
        let s = SledStore::open_with(dir.path(), options).unwrap();
        assert_eq!(dump(&s).unwrap(), before, "{sync_mode:?}");
        assert_eq!(s.tip().unwrap(), 3);
        assert_eq!(s.put_block(&block(4, 0)).unwrap(), PutOutcome::Stored);
    }
}

// ---------------------------------------------------------------------------------------------
// FaultyStore: crashes and injected errors.

#[test]
fn crash_loses_unflushed_and_keeps_flushed() {
    let s = FaultyStore::new(MemStore::new()).unwrap();
    fill(&s);
    s.flush().unwrap();
    let flushed = dump(&s).unwrap();

    s.put_block(&block(4, 0)).unwrap();
    s.put_checkpoint(&checkpoint(3, 0, &[5])).unwrap();
    s.put_channel(&chan(1), b"newer").unwrap();
    s.delete_peer("peerA").unwrap();
    s.reserve_seq(&chan(1), Direction::AToB, 1 << 20).unwrap();
    s.put_meta("k", b"w").unwrap();
    assert_eq!(s.unflushed_writes(), 6);
    assert_eq!(s.channel(&chan(1)).unwrap(), Some(b"newer".to_vec()));

    let s = s.crash();
    assert_eq!(dump(&s).unwrap(), flushed);
    assert_eq!(s.unflushed_writes(), 0);
    // Block 4 was lost, so a different block 4 is now fine.
    assert_eq!(s.put_block(&block(4, 1)).unwrap(), PutOutcome::Stored);
    s.flush().unwrap();
    let s = s.crash();
    assert_eq!(s.block(4).unwrap(), Some(block(4, 1)));
}

#[test]
fn crash_keeping_keeps_a_prefix() {
    let s = FaultyStore::new(MemStore::new()).unwrap();
    s.put_block(&block(1, 0)).unwrap();
    s.flush().unwrap();
    s.put_block(&block(2, 0)).unwrap();
    s.put_block(&block(3, 0)).unwrap();
    s.put_block(&block(4, 0)).unwrap();
    let s = s.crash_keeping(2);
    assert_eq!(s.tip().unwrap(), 3);
    let s = s.crash_keeping(usize::MAX);
    assert_eq!(s.tip().unwrap(), 3);
}

#[test]
fn crash_of_sled_wrapper_keeps_flushed() {
    let (dir, sled) = sled_tmp();
    fill(&sled);
    sled.flush().unwrap();
    let s = FaultyStore::new(sled).unwrap();
    s.put_block(&block(4, 0)).unwrap();
    s.flush().unwrap();
    s.put_block(&block(5, 0)).unwrap();
    let crashed = s.crash();
    assert_eq!(crashed.tip().unwrap(), 4);
    assert_eq!(crashed.genesis().unwrap(), Some(genesis("testnet")));
    drop(dir);
}

#[test]
fn injected_write_failures() {
    let s = FaultyStore::new(MemStore::new()).unwrap();
    s.fail_next_writes(2);
    let e = s.put_meta("a", b"1").unwrap_err();
    assert!(matches!(e, StoreError::Io(_)) && e.is_retryable());
    assert!(matches!(s.put_block(&block(1, 0)), Err(StoreError::Io(_))));
    assert_eq!(s.meta("a").unwrap(), None);
    assert_eq!(s.tip().unwrap(), 0);
    s.put_meta("a", b"1").unwrap();
    s.put_block(&block(1, 0)).unwrap();
    assert_eq!(s.unflushed_writes(), 2);
    // Refused writes are neither applied nor recorded.
    assert!(!s.put_block(&block(1, 1)).unwrap_err().is_retryable());
    assert_eq!(s.unflushed_writes(), 2);
}

#[test]
fn injected_flush_failures() {
    let s = FaultyStore::new(MemStore::new()).unwrap();
    s.put_meta("a", b"1").unwrap();
    s.fail_next_flushes(1);
    assert!(matches!(s.flush(), Err(StoreError::Io(_))));
    assert_eq!(s.unflushed_writes(), 1);
    assert_eq!(s.durable().meta("a").unwrap(), None);
    s.flush().unwrap();
    let s = s.crash();
    assert_eq!(s.meta("a").unwrap(), Some(b"1".to_vec()));

    s.put_meta("b", b"2").unwrap();
    s.fail_next_flushes(1);
    assert!(s.flush().is_err());
    let s = s.crash();
    assert_eq!(s.meta("b").unwrap(), None);
}

#[test]
fn wrapping_a_filled_store_counts_it_as_durable() {
    let inner = MemStore::new();
    fill(&inner);
    let before = dump(&inner).unwrap();
    let s = FaultyStore::new(inner).unwrap();
    s.put_meta("k", b"lost").unwrap();
    assert_eq!(dump(&s.crash()).unwrap(), before);
}

#[test]
fn shared_store_through_arc() {
    let s: std::sync::Arc<dyn Store> = std::sync::Arc::new(MemStore::new());
    let t = s.clone();
    std::thread::spawn(move || t.put_block(&block(1, 0)).unwrap())
        .join()
        .unwrap();
    assert_eq!(s.tip().unwrap(), 1);
    fill_rest(&s);
}

fn fill_rest(s: &impl Store) {
    s.put_meta("x", b"y").unwrap();
    s.flush().unwrap();
}
