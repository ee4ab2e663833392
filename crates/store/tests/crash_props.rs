//! Property: random sequences of writes, flushes, injected failures and crashes on a
//! `FaultyStore<MemStore>` never lose a flushed write, and a crash leaves exactly the state of
//! the last successful flush (plus, with `crash_keeping(n)`, the first n writes after it).
//!
//! The reference is a plain `MemStore` fed the same accepted writes, snapshotted at every
//! successful flush.

mod common;

use common::*;
use paychan_protocol::Direction;
use paychan_store::{FaultyStore, MemStore, Store, StoreError};
use proptest::prelude::*;

/// A write with its inputs resolved (a block's height is chosen from the tip when drawn).
#[derive(Clone, Debug)]
enum Write {
    Block { height: u64, salt: u8 },
    Checkpoint { height: u64, salt: u8, witness: u8 },
    Peer { peer: u8, addrs: u8 },
    DeletePeer(u8),
    Channel { id: u8, value: u8 },
    DeleteChannel(u8),
    Seq { id: u8, ab: bool, value: u8 },
    Meta { key: u8, value: u8 },
}

impl Write {
    fn apply(&self, s: &dyn Store) -> Result<(), StoreError> {
        match *self {
            Write::Block { height, salt } => s.put_block(&block(height, salt)).map(drop),
            Write::Checkpoint {
                height,
                salt,
                witness,
            } => s.put_checkpoint(&checkpoint(height, salt, &[witness])).map(drop),
            Write::Peer { peer, addrs } => {
                let addrs: Vec<String> = (0..addrs).map(|i| format!("/ip4/10.0.0.{i}/tcp/1")).collect();
                s.put_peer(&format!("peer{peer}"), &addrs)
            }
            Write::DeletePeer(peer) => s.delete_peer(&format!("peer{peer}")),
            Write::Channel { id, value } => s.put_channel(&chan(id), &[value; 3]),
            Write::DeleteChannel(id) => s.delete_channel(&chan(id)),
            Write::Seq { id, ab, value } => {
                let d = if ab { Direction::AToB } else { Direction::BToA };
                s.reserve_seq(&chan(id), d, value as u64)
            }
            Write::Meta { key, value } => s.put_meta(&format!("k{key}"), &[value]),
        }
    }
}

#[derive(Clone, Debug)]
enum Action {
    /// A block `back` below the next height (0: the next block; more: a duplicate or conflict).
    Block {
        back: u8,
        salt: u8,
    },
    Write(Write),
    Flush,
    Crash {
        keep: u8,
    },
    FailWrites(u8),
    FailFlush,
}

fn action() -> impl Strategy<Value = Action> {
    let write = prop_oneof![
        (0u8..4, 0u8..4, 0u8..5).prop_map(|(h, salt, witness)| Write::Checkpoint {
            height: h as u64,
            salt: salt / 3, // mostly the same body, sometimes a conflict
            witness
        }),
        (0u8..3, 0u8..3).prop_map(|(peer, addrs)| Write::Peer { peer, addrs }),
        (0u8..3).prop_map(Write::DeletePeer),
        (0u8..4, any::<u8>()).prop_map(|(id, value)| Write::Channel { id, value }),
        (0u8..4).prop_map(Write::DeleteChannel),
        (0u8..3, any::<bool>(), any::<u8>()).prop_map(|(id, ab, value)| Write::Seq { id, ab, value }),
        (0u8..3, any::<u8>()).prop_map(|(key, value)| Write::Meta { key, value }),
    ];
    prop_oneof![
        4 => (0u8..3, 0u8..2).prop_map(|(back, salt)| Action::Block { back, salt }),
        8 => write.prop_map(Action::Write),
        3 => Just(Action::Flush),
        1 => (0u8..4).prop_map(|keep| Action::Crash { keep }),
        1 => (1u8..3).prop_map(Action::FailWrites),
        1 => Just(Action::FailFlush),
    ]
}

fn run(actions: Vec<Action>) -> Result<(), TestCaseError> {
    let mut store = FaultyStore::new(MemStore::new()).unwrap();
    let mut model = MemStore::new();
    let mut model_flushed = MemStore::new();
    let mut pending: Vec<Write> = Vec::new();
    let (mut writes_to_fail, mut flushes_to_fail) = (0u8, 0u8);

    for a in actions {
        let write = match a {
            Action::Block { back, salt } => {
                let tip = model.tip().unwrap();
                Some(Write::Block {
                    height: tip + 1 - (back as u64).min(tip),
                    salt,
                })
            }
            Action::Write(w) => Some(w),
            Action::Flush => {
                let r = store.flush();
                if flushes_to_fail > 0 {
                    flushes_to_fail -= 1;
                    prop_assert!(matches!(r, Err(StoreError::Io(_))));
                } else {
                    prop_assert_eq!(r, Ok(()));
                    model_flushed = model.clone();
                    pending.clear();
                }
                None
            }
            Action::Crash { keep } => {
                let keep = keep as usize;
                store = store.crash_keeping(keep);
                let expected = model_flushed.clone();
                for w in pending.iter().take(keep) {
                    prop_assert_eq!(w.apply(&expected), Ok(()));
                }
                // Nothing flushed is lost, and nothing after the kept prefix survives.
                prop_assert_eq!(dump(&store).unwrap(), dump(&expected).unwrap());
                model = expected.clone();
                model_flushed = expected;
                pending.clear();
                writes_to_fail = 0;
                flushes_to_fail = 0;
                None
            }
            Action::FailWrites(n) => {
                store.fail_next_writes(n as u32);
                writes_to_fail = n;
                None
            }
            Action::FailFlush => {
                store.fail_next_flushes(1);
                flushes_to_fail = 1;
                None
            }
        };
        if let Some(w) = write {
            let r = w.apply(&store);
            if writes_to_fail > 0 {
                writes_to_fail -= 1;
                prop_assert!(matches!(r, Err(StoreError::Io(_))));
            } else {
                prop_assert_eq!(&r, &w.apply(&model), "{:?}", w);
                if r.is_ok() {
                    pending.push(w);
                }
            }
        }
        prop_assert_eq!(store.unflushed_writes(), pending.len());
    }
    prop_assert_eq!(dump(&store).unwrap(), dump(&model).unwrap());
    prop_assert_eq!(dump(&store.crash()).unwrap(), dump(&model_flushed).unwrap());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn flushed_writes_survive_any_crash(actions in proptest::collection::vec(action(), 1..80)) {
        run(actions)?;
    }
}
