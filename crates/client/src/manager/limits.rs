//! Every limit of the channel manager in one place: caps on what peers can make it hold, and
//! the waits and expiries that free what they held. Relations between them are checked at
//! compile time.

use paychan_protocol::limits::PAY_PROOFS_MAX;

/// Inputs waiting for the driver.
pub const INBOX_MAX: usize = 4096;
/// Inputs the driver takes per round before the core signs and persists.
pub const ROUND_INPUTS_MAX: usize = 1024;
/// Proofs signed per channel per round, so that acks and other channels are served between.
pub const ROUND_SIGNATURES_MAX: usize = 256;
const _: () = assert!(ROUND_SIGNATURES_MAX <= PAY_PROOFS_MAX);

/// HTTP payment checks held for the end of a round (their signatures verified as one batch);
/// one more answers those first, so what a round holds stays bounded whatever the driver sends.
pub const ROUND_HTTP_CHECKS_MAX: usize = 256;

/// Frames queued in the core for one peer's link. A peer that does not read (or floods us with
/// requests whose answers it does not read) fills it; one more frame then closes its link, and
/// the reestablish of the next link resends what matters. Other peers are not affected.
pub const OUTBOX_FRAMES_MAX: usize = 2048;
/// While a peer's queue holds this many frames, payments to that peer are not signed: a slow
/// peer pauses its own channels, never the others.
pub const OUTBOX_PAY_PAUSE_FRAMES: usize = 64;
const _: () = assert!(OUTBOX_PAY_PAUSE_FRAMES * 4 <= OUTBOX_FRAMES_MAX);

/// Ledger time after which an answer to a close or a settle that the ledger has not applied is
/// submitted again.
pub const RESUBMIT_MS: u64 = 2_000;
/// First wait before a transaction the ledger has not applied yet (an open, a cooperative
/// close, a unilateral close, an answer to a close, a settle) is submitted again; it doubles
/// after each submission up to [`RESUBMIT_WAIT_MAX_MS`]. A close proposal the peer has not
/// signed is resent on the same schedule.
pub const RESUBMIT_WAIT_FIRST_MS: u64 = 1_000;
/// Longest wait between two submissions.
pub const RESUBMIT_WAIT_MAX_MS: u64 = 30_000;
const _: () = assert!(RESUBMIT_WAIT_FIRST_MS <= RESUBMIT_WAIT_MAX_MS);

/// How long a dial may go without an outcome (a stream or a failure) before the peer is
/// dialled again.
pub const DIAL_WAIT_MS: u64 = 15_000;

/// Between two passes over every channel against the ledger. Between them, a block's event
/// brings the manager to the channels that block touched and to those that wait on the ledger
/// (pending opens, closes, payouts not yet witnessed); the full pass is the safety net for an
/// event a full inbox dropped.
pub const FULL_PASS_MS: u64 = 10_000;

/// First wait before the unacknowledged proofs of a channel go to the peer again after it
/// refused a burst for a passing reason; it doubles after each resend that brings no ack, up
/// to [`RESEND_WAIT_MAX_MS`], and starts again at an ack. A peer that keeps refusing costs
/// us at most one window per wait.
pub const RESEND_WAIT_FIRST_MS: u64 = 100;
/// Longest wait between two resends of a window.
pub const RESEND_WAIT_MAX_MS: u64 = 5_000;
const _: () = assert!(RESEND_WAIT_FIRST_MS <= RESEND_WAIT_MAX_MS);

/// How long an open proposal waits for a stream to its peer before it fails (the stream is
/// retried every tick meanwhile).
pub const OPEN_STREAM_WAIT_MS: u64 = 8_000;
/// Opens a peer proposed that wait, per peer and in total: accepted (signed by this key) and
/// waiting for the peer's signature, or signed by both and not yet on the ledger. A proposal
/// beyond either cap is refused before signing.
pub const ACCEPTANCES_PER_PEER_MAX: usize = 8;
pub const ACCEPTANCES_MAX: usize = 1_024;
/// How long an acceptance waits for the peer's signature before it is forgotten.
pub const ACCEPTANCE_TTL_MS: u64 = 60_000;
/// Opens this key proposed that wait for the peer's answer, per peer and in total.
pub const PROPOSALS_PER_PEER_MAX: usize = 8;
pub const PROPOSALS_MAX: usize = 256;
/// How long an open we proposed waits for the peer's answer once sent.
pub const PROPOSAL_TTL_MS: u64 = 30_000;
/// Open proposals queued for peers without a stream yet, in total.
pub const QUEUED_MAX: usize = PROPOSALS_MAX;
const _: () = assert!(ACCEPTANCES_PER_PEER_MAX <= ACCEPTANCES_MAX);
const _: () = assert!(PROPOSALS_PER_PEER_MAX <= PROPOSALS_MAX);
const _: () = assert!(OPEN_STREAM_WAIT_MS < PROPOSAL_TTL_MS);

/// Blocks a ledger view reads per call when it looks for opens naming this key.
pub const OPENS_SCAN_BLOCKS_MAX: u64 = 256;
/// Blocks between two writes of the height scanned for opens when nothing was adopted.
pub const ADOPTED_HEIGHT_WRITE_EVERY: u64 = 1_024;

/// Largest encoded persisted channel accepted back from the store.
pub const PERSISTED_BYTES_MAX: usize = 16 * 1024;
/// Largest encoded acceptance record accepted back from the store.
pub const ACCEPTANCE_RECORD_BYTES_MAX: usize = 1024;

/// Two streams to one peer that came up within this time of each other race: both sides keep
/// the one opened by the smaller peer id. A stream that comes up later replaces the older one,
/// whoever opened it: the peer opened it because it lost the old one (a restart, a ban), and
/// keeping a dead stream by the tie-break would cut the channel off for good.
pub const LINK_RACE_MS: u64 = 2_000;

/// Default: the most this key locks in a channel a peer proposes.
pub const ACCEPT_DEPOSIT_MAX_DEFAULT: u64 = 1_000_000_000;
