//! The batch signature path of block application accepts and refuses exactly what the
//! reference path does, with the same errors and the same state.

use paychan_ledger::testkit::sample_history;
use paychan_ledger::{LedgerState, Signatures};
use paychan_protocol::{Block, Wire};

/// Applies `block` both ways from `state` and asserts they agree; returns whether it applied.
#[track_caller]
fn agree(state: &LedgerState, block: &Block) -> bool {
    let mut single = state.clone();
    let mut batched = state.clone();
    let a = single.apply_block_with(block, Signatures::EachAlone);
    let b = batched.apply_block_with(block, Signatures::Batch);
    assert_eq!(a, b, "both paths give the same answer");
    assert_eq!(single, batched, "both paths leave the same state");
    a.is_ok()
}

#[test]
fn batch_and_single_paths_agree_on_every_one_bit_change_of_every_block() {
    let chain = sample_history(6, 3);
    let mut state = chain.net.state();
    let (mut accepted, mut refused) = (0usize, 0usize);
    for block in &chain.blocks {
        let bytes = block.to_bytes();
        // Every signature, amount, key and root of the block sits in these bytes: a flip of
        // the first bit of each byte reaches each of them.
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 1;
            if let Ok(changed) = Block::from_bytes(&b) {
                if agree(&state, &changed) {
                    accepted += 1;
                } else {
                    refused += 1;
                }
            }
        }
        assert!(agree(&state, block), "the true block applies both ways");
        state.apply_block(block).expect("the true block");
    }
    assert!(refused > 1_000, "the changes were refused ({refused})");
    assert_eq!(accepted, 0, "no one-bit change of a signed block is accepted");
}
