//! Ledger objects: genesis, transactions, blocks, checkpoints and cosignatures.

use serde::{Deserialize, Serialize};

use crate::channel::{ChannelId, SignedCoopClose, SignedOpen, SignedProof};
use crate::codec::encode;
use crate::crypto::{self, Keypair, PublicKey, Signature, SignatureError};
use crate::hash::{tagged_hash, tags, Hash32};
use crate::merkle;
use crate::note;

/// The parameters a ledger is born with. The chain id is its hash.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Genesis {
    /// A human name for the network (at most `NETWORK_NAME_BYTES_MAX` bytes).
    pub network: String,
    /// The name and symbol of the ledger's unit of account, as every amount is shown.
    pub unit: Unit,
    /// Ledger time (ms since the Unix epoch) of the genesis state.
    pub genesis_time_ms: u64,
    /// The key that signs blocks and checkpoints.
    pub sequencer: PublicKey,
    /// The witnesses that cosign checkpoints.
    pub witnesses: Vec<PublicKey>,
    /// Distinct witness cosignatures a checkpoint needs to be witnessed.
    pub witness_threshold: u32,
    /// Length of the challenge window of a unilateral close, in ledger time.
    pub challenge_period_ms: u64,
    /// How often the sequencer makes a block when there are transactions.
    pub block_interval_ms: u64,
    /// Longest gap between blocks: an idle sequencer makes an empty block this often.
    pub heartbeat_interval_ms: u64,
    /// Largest step of ledger time from one block to the next.
    pub max_time_step_ms: u64,
    /// Most transactions in one block.
    pub max_txs_per_block: u32,
    /// Most pending (not yet included) transactions per account at the sequencer.
    pub max_pending_per_account: u32,
    /// The fixed part of a transaction's fee (PROTOCOL.md §8.4, fees).
    pub tx_fee_min: u64,
    /// The part of a transaction's fee per byte of its canonical encoding.
    pub tx_fee_per_byte: u64,
    /// Initial balances, in strictly increasing key order.
    pub allocations: Vec<(PublicKey, u64)>,
}

/// The unit every amount of a ledger counts: a name (e.g. `credit`) and the symbol printed after
/// an amount (e.g. `cr`). Amounts are integers of this unit; there are no decimals.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Unit {
    /// At most `UNIT_NAME_BYTES_MAX` bytes.
    pub name: String,
    /// At most `UNIT_SYMBOL_BYTES_MAX` bytes, no whitespace.
    pub symbol: String,
}

impl Unit {
    /// The unit of the shipped geneses: `credit`, symbol `cr`.
    pub fn credit() -> Unit {
        Unit {
            name: "credit".into(),
            symbol: "cr".into(),
        }
    }
}

impl Genesis {
    /// The chain id: `H("paychan/v1/genesis" || 0x00 || postcard(genesis))`.
    pub fn chain_id(&self) -> Hash32 {
        tagged_hash(tags::GENESIS, &encode(self))
    }
}

/// Moves funds between two accounts. Signed by `from`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Transfer {
    /// Chain id.
    pub chain_id: Hash32,
    /// Sender.
    pub from: PublicKey,
    /// Recipient.
    pub to: PublicKey,
    /// Amount.
    pub amount: u64,
    /// The sender's next account nonce (starts at 0).
    pub nonce: u64,
}

/// Adds to one party's deposit in an open channel. Signed by `from`, a party of the channel.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Deposit {
    /// Chain id.
    pub chain_id: Hash32,
    /// Channel id.
    pub channel_id: ChannelId,
    /// The depositing party.
    pub from: PublicKey,
    /// Amount added to `from`'s deposit.
    pub amount: u64,
    /// `from`'s next account nonce.
    pub nonce: u64,
}

/// Starts the challenge window of a channel with the newest proofs the closer holds. Signed by
/// `closer`, a party of the channel.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct UnilateralClose {
    /// Chain id.
    pub chain_id: Hash32,
    /// Channel id.
    pub channel_id: ChannelId,
    /// The closing party.
    pub closer: PublicKey,
    /// Newest proof of direction A to B the closer holds, if any.
    pub proof_ab: Option<SignedProof>,
    /// Newest proof of direction B to A the closer holds, if any.
    pub proof_ba: Option<SignedProof>,
}

/// Offers newer proofs for a closing channel. Valid from anyone; the proofs carry the
/// signatures.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Update {
    /// Chain id.
    pub chain_id: Hash32,
    /// Channel id.
    pub channel_id: ChannelId,
    /// A proof of direction A to B, if any.
    pub proof_ab: Option<SignedProof>,
    /// A proof of direction B to A, if any.
    pub proof_ba: Option<SignedProof>,
}

/// Pays out a closing channel whose challenge window has ended. Valid from anyone.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Settle {
    /// Chain id.
    pub chain_id: Hash32,
    /// Channel id.
    pub channel_id: ChannelId,
}

/// Grants, changes or ends a credit line on one channel: the debtor may pay the creditor beyond
/// its deposit up to `limit` (PROTOCOL.md, credit). Signed by `creditor`, a party of the channel;
/// `debtor` is the other party. A later grant for the same line replaces the limit for future
/// payments; `limit == 0` ends the line.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct CreditGrant {
    /// Chain id.
    pub chain_id: Hash32,
    /// Channel id.
    pub channel_id: ChannelId,
    /// The party that extends credit (the payee of the debtor's direction).
    pub creditor: PublicKey,
    /// The party that may owe.
    pub debtor: PublicKey,
    /// Most the debtor may owe beyond its deposit and what it received.
    pub limit: u64,
    /// Ledger time after which the line takes no new payments.
    pub expiry_ms: u64,
    /// Ledger time by which a debt from this line must be repaid; at or after it an
    /// outstanding debt is defaulted.
    pub due_ms: u64,
    /// The creditor's next account nonce.
    pub nonce: u64,
}

/// Pays down the debt of a settled channel. Signed by `from` (any account).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Repay {
    /// Chain id.
    pub chain_id: Hash32,
    /// The channel whose settlement recorded the debt (a debt's id).
    pub channel_id: ChannelId,
    /// Who pays.
    pub from: PublicKey,
    /// Amount, at most what is outstanding.
    pub amount: u64,
    /// `from`'s next account nonce.
    pub nonce: u64,
}

/// A ledger transaction. The variant index is its postcard discriminant (varint).
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Tx {
    /// 0: a signed transfer.
    Transfer {
        /// Body.
        body: Transfer,
        /// `from`'s signature under `paychan/v1/sig/transfer`.
        sig: Signature,
    },
    /// 1: a channel open signed by both parties.
    Open(SignedOpen),
    /// 2: a deposit top-up.
    Deposit {
        /// Body.
        body: Deposit,
        /// `from`'s signature under `paychan/v1/sig/deposit`.
        sig: Signature,
    },
    /// 3: a cooperative close signed by both parties.
    CoopClose(SignedCoopClose),
    /// 4: a unilateral close.
    UnilateralClose {
        /// Body.
        body: UnilateralClose,
        /// `closer`'s signature under `paychan/v1/sig/unilateral-close`.
        sig: Signature,
    },
    /// 5: a dispute update (no signature of its own, no nonce).
    Update(Update),
    /// 6: a settlement after the window (no signature, no nonce).
    Settle(Settle),
    /// 7: a credit grant.
    CreditGrant {
        /// Body.
        body: CreditGrant,
        /// `creditor`'s signature under `paychan/v1/sig/credit-grant`.
        sig: Signature,
    },
    /// 8: a repayment of a debt.
    Repay {
        /// Body.
        body: Repay,
        /// `from`'s signature under `paychan/v1/sig/repay`.
        sig: Signature,
    },
}

impl Tx {
    /// The channel a transaction concerns, if any (every kind but a transfer).
    pub fn channel_id(&self) -> Option<ChannelId> {
        match self {
            Tx::Transfer { .. } => None,
            Tx::Open(o) => Some(o.open.channel_id()),
            Tx::Deposit { body, .. } => Some(body.channel_id),
            Tx::CoopClose(c) => Some(c.close.channel_id),
            Tx::UnilateralClose { body, .. } => Some(body.channel_id),
            Tx::Update(u) => Some(u.channel_id),
            Tx::Settle(s) => Some(s.channel_id),
            Tx::CreditGrant { body, .. } => Some(body.channel_id),
            Tx::Repay { body, .. } => Some(body.channel_id),
        }
    }

    /// A signed transfer.
    pub fn transfer(body: Transfer, kp: &Keypair) -> Tx {
        Tx::Transfer {
            sig: kp.sign(tags::TRANSFER_SIG, &encode(&body)),
            body,
        }
    }

    /// A signed deposit.
    pub fn deposit(body: Deposit, kp: &Keypair) -> Tx {
        Tx::Deposit {
            sig: kp.sign(tags::DEPOSIT_SIG, &encode(&body)),
            body,
        }
    }

    /// A credit grant signed by `kp` (valid only if `kp` is the creditor).
    pub fn credit_grant(body: CreditGrant, kp: &Keypair) -> Tx {
        Tx::CreditGrant {
            sig: kp.sign(tags::CREDIT_GRANT_SIG, &encode(&body)),
            body,
        }
    }

    /// A repayment signed by `kp` (valid only if `kp` is `from`).
    pub fn repay(body: Repay, kp: &Keypair) -> Tx {
        Tx::Repay {
            sig: kp.sign(tags::REPAY_SIG, &encode(&body)),
            body,
        }
    }

    /// A signed unilateral close.
    pub fn unilateral_close(body: UnilateralClose, kp: &Keypair) -> Tx {
        Tx::UnilateralClose {
            sig: kp.sign(tags::UNILATERAL_CLOSE_SIG, &encode(&body)),
            body,
        }
    }

    /// The canonical bytes (the Merkle leaf input).
    pub fn bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// The transaction id: `H("paychan/v1/tx-id" || 0x00 || tx bytes)`.
    pub fn id(&self) -> Hash32 {
        tagged_hash(tags::TX_ID, &self.bytes())
    }

    /// The RFC 6962 leaf hash of the transaction.
    pub fn leaf_hash(&self) -> Hash32 {
        merkle::leaf_hash(&self.bytes())
    }

    /// The chain id the transaction is bound to.
    pub fn chain_id(&self) -> Hash32 {
        match self {
            Tx::Transfer { body, .. } => body.chain_id,
            Tx::Open(o) => o.open.chain_id,
            Tx::Deposit { body, .. } => body.chain_id,
            Tx::CoopClose(c) => c.close.chain_id,
            Tx::UnilateralClose { body, .. } => body.chain_id,
            Tx::Update(u) => u.chain_id,
            Tx::Settle(s) => s.chain_id,
            Tx::CreditGrant { body, .. } => body.chain_id,
            Tx::Repay { body, .. } => body.chain_id,
        }
    }

    /// Dispute transactions (update, settle) are valid from anyone, need no nonce and go first
    /// in a block.
    pub fn is_dispute(&self) -> bool {
        matches!(self, Tx::Update(_) | Tx::Settle(_))
    }

    /// The account whose nonce the transaction consumes, with that nonce.
    pub fn nonce_account(&self) -> Option<(PublicKey, u64)> {
        match self {
            Tx::Transfer { body, .. } => Some((body.from, body.nonce)),
            Tx::Deposit { body, .. } => Some((body.from, body.nonce)),
            Tx::CreditGrant { body, .. } => Some((body.creditor, body.nonce)),
            Tx::Repay { body, .. } => Some((body.from, body.nonce)),
            _ => None,
        }
    }

    /// Checks the signatures a transaction carries on its own (those that need no ledger
    /// state: transfer, deposit, unilateral close, open). Proof signatures and cooperative
    /// close signatures need the channel's keys and are checked by the ledger.
    pub fn verify_own_signature(&self) -> Result<(), SignatureError> {
        match self {
            Tx::Transfer { body, sig } => crypto::verify(&body.from, tags::TRANSFER_SIG, &encode(body), sig),
            Tx::Deposit { body, sig } => crypto::verify(&body.from, tags::DEPOSIT_SIG, &encode(body), sig),
            Tx::UnilateralClose { body, sig } => {
                crypto::verify(&body.closer, tags::UNILATERAL_CLOSE_SIG, &encode(body), sig)
            }
            Tx::Open(o) => o.verify(),
            Tx::CreditGrant { body, sig } => {
                crypto::verify(&body.creditor, tags::CREDIT_GRANT_SIG, &encode(body), sig)
            }
            Tx::Repay { body, sig } => crypto::verify(&body.from, tags::REPAY_SIG, &encode(body), sig),
            Tx::CoopClose(_) | Tx::Update(_) | Tx::Settle(_) => Ok(()),
        }
    }

    /// Queues the signatures [`Tx::verify_own_signature`] checks into `batch`, which then
    /// accepts exactly what that check accepts.
    pub fn queue_own_signature(&self, batch: &mut crypto::BatchVerifier) {
        match self {
            Tx::Transfer { body, sig } => batch.queue(&body.from, tags::TRANSFER_SIG, &encode(body), sig),
            Tx::Deposit { body, sig } => batch.queue(&body.from, tags::DEPOSIT_SIG, &encode(body), sig),
            Tx::UnilateralClose { body, sig } => {
                batch.queue(&body.closer, tags::UNILATERAL_CLOSE_SIG, &encode(body), sig)
            }
            Tx::Open(o) => {
                let body = o.open.body();
                batch.queue(&o.open.party_a, tags::OPEN_SIG, &body, &o.sig_a);
                batch.queue(&o.open.party_b, tags::OPEN_SIG, &body, &o.sig_b);
            }
            Tx::CreditGrant { body, sig } => {
                batch.queue(&body.creditor, tags::CREDIT_GRANT_SIG, &encode(body), sig)
            }
            Tx::Repay { body, sig } => batch.queue(&body.from, tags::REPAY_SIG, &encode(body), sig),
            Tx::CoopClose(_) | Tx::Update(_) | Tx::Settle(_) => {}
        }
    }
}

/// A block header. The sequencer signs it; its hash links the next block.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct BlockHeader {
    /// Chain id.
    pub chain_id: Hash32,
    /// Height; the first block after genesis has height 1.
    pub height: u64,
    /// Hash of the previous header; block 1 links to the chain id.
    pub prev_hash: Hash32,
    /// Ledger time of the block (ms).
    pub time_ms: u64,
    /// RFC 6962 root over this block's transactions.
    pub tx_root: Hash32,
    /// Size of the global transaction log after this block.
    pub log_size: u64,
    /// RFC 6962 root of the global transaction log after this block.
    pub log_root: Hash32,
    /// Root of the ledger state after this block.
    pub state_root: Hash32,
}

impl BlockHeader {
    /// The block hash: `H("paychan/v1/block-header" || 0x00 || header)`.
    pub fn hash(&self) -> Hash32 {
        tagged_hash(tags::BLOCK_HASH, &encode(self))
    }

    /// The sequencer's signature over the header.
    pub fn sign(&self, kp: &Keypair) -> Signature {
        kp.sign(tags::BLOCK_SIG, &encode(self))
    }

    /// Checks the sequencer's signature.
    pub fn verify(&self, sequencer: &PublicKey, sig: &Signature) -> Result<(), SignatureError> {
        crypto::verify(sequencer, tags::BLOCK_SIG, &encode(self), sig)
    }

    /// Queues the sequencer's signature into `batch` ([`BlockHeader::verify`] in a batch).
    pub fn queue(&self, sequencer: &PublicKey, sig: &Signature, batch: &mut crypto::BatchVerifier) {
        batch.queue(sequencer, tags::BLOCK_SIG, &encode(self), sig)
    }
}

/// A block: signed header plus its transactions, disputes first.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Block {
    /// Header.
    pub header: BlockHeader,
    /// Sequencer's signature over the header.
    pub signature: Signature,
    /// Transactions in order.
    pub txs: Vec<Tx>,
}

/// What the sequencer commits to and witnesses cosign.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Chain id.
    pub chain_id: Hash32,
    /// Size of the global transaction log.
    pub log_size: u64,
    /// RFC 6962 root of the log at that size.
    pub log_root: Hash32,
    /// Height of the block that ends at that size.
    pub height: u64,
    /// Hash of that block.
    pub block_hash: Hash32,
}

impl Checkpoint {
    /// The log's origin: `paychan/` + the 64 lower-case hex digits of the chain id.
    pub fn origin(&self) -> String {
        note::origin(&self.chain_id)
    }

    /// The checkpoint body, the exact text the sequencer signs (PROTOCOL.md §8.7).
    pub fn body(&self) -> String {
        note::checkpoint_body(self)
    }

    /// The sequencer's signature: plain Ed25519 over the body bytes (a C2SP signed-note
    /// signature by the log key).
    pub fn sign_sequencer(&self, kp: &Keypair) -> Signature {
        kp.sign_raw(self.body().as_bytes())
    }

    /// A witness's C2SP cosignature (v1) at `timestamp_s` (seconds since the Unix epoch).
    pub fn cosign(&self, kp: &Keypair, timestamp_s: u64) -> Cosignature {
        Cosignature {
            witness: kp.public(),
            timestamp_s,
            signature: kp.sign_raw(&note::cosignature_message(timestamp_s, &self.body())),
        }
    }

    /// Checks the sequencer's signature.
    pub fn verify_sequencer(&self, key: &PublicKey, sig: &Signature) -> Result<(), SignatureError> {
        crypto::verify_raw(key, self.body().as_bytes(), sig)
    }

    /// Checks one cosignature (a timestamp above 2^63 - 1 is invalid).
    pub fn verify_cosignature(&self, c: &Cosignature) -> Result<(), SignatureError> {
        if c.timestamp_s > note::TIMESTAMP_MAX {
            return Err(SignatureError::Invalid);
        }
        crypto::verify_raw(
            &c.witness,
            &note::cosignature_message(c.timestamp_s, &self.body()),
            &c.signature,
        )
    }
}

/// A witness's C2SP cosignature (v1) of a checkpoint.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Cosignature {
    /// The witness key.
    pub witness: PublicKey,
    /// When the witness cosigned, in seconds since the Unix epoch (at most 2^63 - 1).
    pub timestamp_s: u64,
    /// Its Ed25519 signature over `cosignature/v1\ntime <timestamp_s>\n` + the checkpoint body.
    pub signature: Signature,
}

/// A checkpoint with the sequencer's signature and the cosignatures gathered so far.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SignedCheckpoint {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The sequencer's signature.
    pub signature: Signature,
    /// Witness cosignatures.
    pub cosignatures: Vec<Cosignature>,
}
