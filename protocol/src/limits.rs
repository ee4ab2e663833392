//! Every limit of the protocol, as named constants with units last.
//!
//! Relationships between them are asserted at compile time at the bottom of this file.

/// Largest frame on a channel stream, length prefix excluded. Ledger-protocol frames are
/// bounded by the `BYTES_MAX` of the type they carry instead.
pub const FRAME_BYTES_MAX: usize = 256 * 1024;
/// Largest encoded channel-protocol message (one frame).
pub const CHANNEL_MSG_BYTES_MAX: usize = FRAME_BYTES_MAX;
/// Most balance proofs in one pay frame.
pub const PAY_PROOFS_MAX: usize = 512;
/// Most payments one balance proof may add (entries of its memo).
pub const MEMO_PAYMENTS_MAX: usize = 64;
/// A bound on the encoded bytes of one pay item: its signed proof (at most 213 bytes) and
/// length prefix, plus a bound per payment (an amount varint and a 32-byte reference).
pub const fn pay_item_bytes_bound(payments: usize) -> usize {
    256 + 48 * payments
}
/// Most pay items, each carrying `payments` payments, that one pay frame can hold (and at most
/// [`PAY_PROOFS_MAX`]): a sender splits a burst so that no frame passes [`FRAME_BYTES_MAX`].
pub const fn pay_items_per_frame(payments: usize) -> usize {
    let n = (FRAME_BYTES_MAX - 1024) / pay_item_bytes_bound(payments);
    if n < PAY_PROOFS_MAX {
        n
    } else {
        PAY_PROOFS_MAX
    }
}
/// Largest encoded signed balance proof accepted on its own (a proof is at most 213 bytes).
pub const SIGNED_PROOF_BYTES_MAX: usize = 4 * 1024;
/// Largest error text carried in an error frame.
pub const ERROR_TEXT_BYTES_MAX: usize = 256;
/// Largest network name in a genesis.
pub const NETWORK_NAME_BYTES_MAX: usize = 64;
/// Largest name of a genesis's unit of account.
pub const UNIT_NAME_BYTES_MAX: usize = 32;
/// Largest symbol of a genesis's unit of account.
pub const UNIT_SYMBOL_BYTES_MAX: usize = 8;
/// Most witnesses a genesis may name.
pub const WITNESSES_MAX: usize = 64;
/// Most initial allocations in a genesis.
pub const ALLOCATIONS_MAX: usize = 10_000;
/// Largest encoded genesis.
pub const GENESIS_BYTES_MAX: usize = 1024 * 1024;
/// Largest encoded transaction.
pub const TX_BYTES_MAX: usize = 8 * 1024;
/// Hard ceiling on transactions per block, whatever a genesis says.
pub const BLOCK_TXS_MAX: usize = 4_096;
/// Largest encoded block.
pub const BLOCK_BYTES_MAX: usize = BLOCK_TXS_MAX * TX_BYTES_MAX / 4;
/// Largest encoded checkpoint with its cosignatures.
pub const CHECKPOINT_BYTES_MAX: usize = 16 * 1024;
/// Most hashes in an inclusion or consistency proof (a log of up to 2^64 leaves).
pub const MERKLE_PATH_MAX: usize = 128;
/// Seq numbers a payer reserves durably at a time before signing within them.
pub const SEQ_RESERVATION: u64 = 1 << 16;
/// Unacknowledged proofs a payer keeps in flight on one channel direction.
pub const UNACKED_PROOFS_MAX: usize = 4_096;

/// Fewest largest time steps a challenge window must span (`challenge_period_ms >=
/// CHALLENGE_STEPS_MIN * max_time_step_ms`), so that no window can pass in a few blocks after
/// a sequencer outage.
pub const CHALLENGE_STEPS_MIN: u64 = 20;
/// How far ahead of a replica's own clock a block's time may be before the replica refuses it
/// (a node rule, not a replay rule: an auditor replaying history has no such clock).
pub const BLOCK_TIME_AHEAD_MS_MAX: u64 = 5_000;

/// Encoded size of a balance proof carrying one payment, signature included (upper bound).
pub const SINGLE_PAYMENT_PROOF_BYTES_MAX: usize = 320;

// A pay frame can always carry a full batch of single-payment proofs.
const _: () = assert!(PAY_PROOFS_MAX * SINGLE_PAYMENT_PROOF_BYTES_MAX <= CHANNEL_MSG_BYTES_MAX);
const _: () = assert!(SINGLE_PAYMENT_PROOF_BYTES_MAX <= SIGNED_PROOF_BYTES_MAX);
const _: () = assert!(CHANNEL_MSG_BYTES_MAX <= FRAME_BYTES_MAX);
const _: () = assert!(TX_BYTES_MAX <= BLOCK_BYTES_MAX);
const _: () = assert!(BLOCK_BYTES_MAX <= 64 * 1024 * 1024);
const _: () = assert!(UNACKED_PROOFS_MAX as u64 <= SEQ_RESERVATION);
const _: () = assert!(WITNESSES_MAX * 200 <= CHECKPOINT_BYTES_MAX);
