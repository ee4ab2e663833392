//! Shared checks of the fuzz targets in `fuzz_targets/`.
//!
//! Every target feeds the fuzzer's bytes to one decoder of untrusted input. A decoder may only
//! return a `Result`; whatever it accepts must re-encode to exactly the input (the encoding is
//! canonical) and decode again to the same value. Accepted values are then used the way a node
//! would use them (hashing, signature checks, payout arithmetic), which must not panic either.

use core::fmt::Debug;

use paychan_protocol::channel::{memo_hash, memo_total, settle_payouts, SignedProof};
use paychan_protocol::codec;
use paychan_protocol::crypto::{BatchVerifier, PublicKey};
use paychan_protocol::ledger::{Block, SignedCheckpoint, Tx};
use paychan_protocol::limits::SIGNED_PROOF_BYTES_MAX;
use paychan_protocol::wire::{ChannelMsg, Envelope, GossipMsg, LedgerRequest, LedgerResponse, Wire};
use paychan_protocol::Genesis;

/// Decodes `data` as `T`; if accepted, checks the round trip and returns the value.
pub fn check_wire<T: Wire + PartialEq + Debug>(data: &[u8]) -> Option<T> {
    match T::from_bytes(data) {
        Ok(v) => {
            let bytes = v.to_bytes();
            assert_eq!(bytes, data, "accepted a non-canonical encoding of {v:?}");
            assert!(bytes.len() <= T::BYTES_MAX);
            assert_eq!(v.check_limits(), Ok(()));
            assert_eq!(T::from_bytes(&bytes).as_ref(), Ok(&v));
            Some(v)
        }
        Err(e) => {
            let _ = e.to_string();
            None
        }
    }
}

/// `codec::decode::<SignedProof>` with the same checks.
pub fn check_signed_proof(data: &[u8]) -> Option<SignedProof> {
    let v = codec::decode::<SignedProof>(data, SIGNED_PROOF_BYTES_MAX).ok()?;
    assert_eq!(codec::encode(&v), data, "accepted a non-canonical proof");
    use_proof(&v);
    Some(v)
}

/// Uses a proof as a payee would: hash it, check its signature alone and in a batch, and the
/// two answers agree (the one signature rule).
pub fn use_proof(p: &SignedProof) {
    let _ = p.proof.hash();
    let _ = p.proof.signed_bytes();
    // The key is not known here: try the signature's own R half as a key, which exercises the
    // decoding of arbitrary points on both paths.
    let key = PublicKey(p.signature.0[..32].try_into().unwrap());
    let single = p.verify(&key).is_ok();
    let mut b = BatchVerifier::new();
    p.queue(&key, &mut b);
    assert_eq!(
        single,
        b.verify().is_ok(),
        "single and batch verification disagree"
    );
}

pub fn use_tx(tx: &Tx) {
    let _ = (
        tx.id(),
        tx.leaf_hash(),
        tx.chain_id(),
        tx.is_dispute(),
        tx.nonce_account(),
    );
    let _ = tx.verify_own_signature();
    match tx {
        Tx::Open(o) => {
            let _ = (o.open.channel_id(), o.open.total());
        }
        Tx::CoopClose(c) => {
            let _ = c.verify(
                &PublicKey(c.close.channel_id.0 .0),
                &PublicKey(c.close.chain_id.0),
            );
        }
        Tx::UnilateralClose { body, .. } => {
            for p in [body.proof_ab, body.proof_ba].iter().flatten() {
                use_proof(p);
            }
        }
        Tx::Update(u) => {
            let (ab, ba) = (u.proof_ab, u.proof_ba);
            for p in [ab, ba].iter().flatten() {
                use_proof(p);
            }
            let t = |p: Option<SignedProof>| p.map_or(0, |p| p.proof.transferred);
            let _ = settle_payouts(t(ab), t(ba), t(ab), t(ba));
        }
        _ => {}
    }
}

pub fn use_block(b: &Block) {
    let _ = b.header.hash();
    let _ = b.header.verify(&PublicKey(b.header.prev_hash.0), &b.signature);
    b.txs.iter().for_each(use_tx);
}

pub fn use_checkpoint(c: &SignedCheckpoint) {
    let _ = c
        .checkpoint
        .verify_sequencer(&PublicKey(c.checkpoint.block_hash.0), &c.signature);
    for co in &c.cosignatures {
        let _ = c.checkpoint.verify_cosignature(co);
    }
}

pub fn use_genesis(g: &Genesis) {
    let _ = g.chain_id();
}

pub fn use_envelope(e: &Envelope) {
    match &e.msg {
        ChannelMsg::Pay { items, .. } => {
            for i in items {
                use_proof(&i.proof);
                let _ = (memo_hash(&i.payments), memo_total(&i.payments));
            }
        }
        ChannelMsg::Reestablish {
            newest_from_you: Some(p),
            ..
        } => use_proof(p),
        ChannelMsg::OpenPropose { open } | ChannelMsg::OpenAccept { open, .. } => {
            let _ = (open.channel_id(), open.total());
        }
        _ => {}
    }
}

pub fn use_ledger_request(r: &LedgerRequest) {
    if let LedgerRequest::Submit(tx) = r {
        use_tx(tx);
    }
}

pub fn use_ledger_response(r: &LedgerResponse) {
    match r {
        LedgerResponse::Blocks(bs) => bs.iter().for_each(use_block),
        LedgerResponse::Checkpoint(Some(c)) => use_checkpoint(c),
        LedgerResponse::Genesis(g) => use_genesis(g),
        _ => {}
    }
}

pub fn use_gossip(g: &GossipMsg) {
    match g {
        GossipMsg::Block(b) => use_block(b),
        GossipMsg::Checkpoint(c) => use_checkpoint(c),
        GossipMsg::Cosignature { .. } => {}
        GossipMsg::SplitView(e) => {
            use_checkpoint(&e.first);
            use_checkpoint(&e.second);
        }
        GossipMsg::Dispute(tx) => use_tx(tx),
    }
}
