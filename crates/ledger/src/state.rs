//! The ledger state: accounts, channels, the transaction log, and the state root.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use paychan_protocol::codec::encode_into;
use paychan_protocol::hash::{tagged_hash, tags};
use paychan_protocol::merkle::{self, MerkleLog};
use paychan_protocol::{ChannelId, Checkpoint, Direction, Genesis, Hash32, PublicKey, SignedProof};

use crate::error::{GenesisError, ProofError};
use crate::genesis::validate_genesis;
use crate::log::Frontier;

/// An account: what it holds and the nonce its next transfer or deposit must carry.
///
/// An account exists once it has been credited; it is never removed (its nonce must survive so
/// that its old transactions can never be replayed).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Account {
    /// Spendable balance.
    pub balance: u64,
    /// Next nonce (starts at 0).
    pub nonce: u64,
}

/// Where a channel is in its life.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ChannelStatus {
    /// Usable: deposits may be added, either party may close.
    Open,
    /// A unilateral close started the challenge window.
    Closing {
        /// Ledger time of the block holding the close; the window is
        /// `[close_time_ms, close_time_ms + challenge_period_ms)` and never moves.
        close_time_ms: u64,
        /// Per direction ([`Direction::index`]), the submitted proof with the highest
        /// transferred amount, if any. Boxed: closed channels stay in the state forever and
        /// should not carry room for two proofs.
        best: Box<[Option<SignedProof>; 2]>,
    },
    /// Paid out. Kept so that the id is never reused.
    Closed {
        /// What A received.
        payout_a: u64,
        /// What B received.
        payout_b: u64,
    },
}

/// A channel as the ledger knows it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ChannelEntry {
    /// The party that proposed the open (payer of [`Direction::AToB`]).
    pub party_a: PublicKey,
    /// The accepting party (payer of [`Direction::BToA`]).
    pub party_b: PublicKey,
    /// What A has locked (open deposit plus top-ups). Unchanged once closing.
    pub deposit_a: u64,
    /// What B has locked.
    pub deposit_b: u64,
    /// Life cycle.
    pub status: ChannelStatus,
}

impl ChannelEntry {
    /// Sum of both deposits. Cannot overflow: the ledger never accepts a deposit that would.
    pub fn total(&self) -> u64 {
        self.deposit_a
            .checked_add(self.deposit_b)
            .expect("the ledger only accepts deposits whose total fits u64")
    }

    /// The payer of a direction.
    pub fn payer(&self, dir: Direction) -> PublicKey {
        match dir {
            Direction::AToB => self.party_a,
            Direction::BToA => self.party_b,
        }
    }

    /// Whether `key` is one of the two parties.
    pub fn is_party(&self, key: &PublicKey) -> bool {
        *key == self.party_a || *key == self.party_b
    }

    /// The best proof of a direction while closing.
    pub fn best(&self, dir: Direction) -> Option<&SignedProof> {
        match &self.status {
            ChannelStatus::Closing { best, .. } => best[dir.index()].as_ref(),
            _ => None,
        }
    }

    /// End of the challenge window while closing: `close_time_ms + challenge_period_ms`,
    /// saturating (a window that would end after `u64::MAX` never ends).
    pub fn window_end_ms(&self, challenge_period_ms: u64) -> Option<u64> {
        match self.status {
            ChannelStatus::Closing { close_time_ms, .. } => {
                Some(close_time_ms.saturating_add(challenge_period_ms))
            }
            _ => None,
        }
    }

    /// Whether the channel still locks its deposits (open or closing).
    pub fn is_live(&self) -> bool {
        !matches!(self.status, ChannelStatus::Closed { .. })
    }
}

/// A credit line on one channel, keyed by the channel and the debtor's paying direction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CreditLine {
    /// Who extends credit (the payee of the debtor's direction).
    pub creditor: PublicKey,
    /// Who may owe (the payer of the direction).
    pub debtor: PublicKey,
    /// The limit in force for future payments (0: ended).
    pub limit: u64,
    /// The highest limit the line ever had. Grants are taken only while the channel is open,
    /// so at settlement this is the highest limit in force while the proofs were made: what a
    /// debt is capped by (PROTOCOL.md, credit).
    pub peak: u64,
    /// Ledger time after which the line takes no new payments.
    pub expiry_ms: u64,
    /// The latest due time any grant of the line named: a later grant cannot bring a debt's
    /// due time forward.
    pub due_ms: u64,
}

/// A debt recorded by a settlement, keyed by the channel.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Debt {
    /// Who is owed.
    pub creditor: PublicKey,
    /// Who owes.
    pub debtor: PublicKey,
    /// What the settlement recorded (before anything was paid).
    pub amount: u64,
    /// What is still owed.
    pub outstanding: u64,
    /// Ledger time of the settlement.
    pub created_ms: u64,
    /// When it falls due.
    pub due_ms: u64,
    /// Ledger time of the block that marked it defaulted (the first block whose time reached
    /// `due_ms` while something was outstanding). Stays set once set.
    pub defaulted_ms: Option<u64>,
}

impl CreditLine {
    /// The state entry `E` of this line, the line of channel `channel_id` whose debtor pays in
    /// direction `dir` (PROTOCOL.md §16.5): `0x02 || channel_id || dir (0x00 A->B, 0x01 B->A)
    /// || creditor || debtor || varint(limit) || varint(peak) || varint(expiry_ms) ||
    /// varint(due_ms)`. The state root hashes it as every entry.
    pub fn entry_bytes(&self, channel_id: &ChannelId, dir: Direction) -> Vec<u8> {
        let mut buf = Vec::new();
        line_entry_bytes(channel_id, dir.index() as u8, self, &mut buf);
        buf
    }
}

impl Debt {
    /// The state entry `E` of this debt, the debt recorded by the settlement of `channel_id`
    /// (PROTOCOL.md §16.5): `0x03 || channel_id || creditor || debtor || varint(amount) ||
    /// varint(outstanding) || varint(created_ms) || varint(due_ms) || (0x00 | 0x01 ||
    /// varint(defaulted_ms))`. The state root hashes it as every entry.
    pub fn entry_bytes(&self, channel_id: &ChannelId) -> Vec<u8> {
        let mut buf = Vec::new();
        debt_entry_bytes(channel_id, self, &mut buf);
        buf
    }
}

/// The part of the state that transactions change and the state root covers.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub(crate) struct Books {
    pub(crate) accounts: BTreeMap<PublicKey, Account>,
    pub(crate) channels: BTreeMap<ChannelId, ChannelEntry>,
    /// Credit lines by (channel, debtor's direction index).
    pub(crate) lines: BTreeMap<(ChannelId, u8), CreditLine>,
    /// Debts by the channel whose settlement recorded them (at most one per channel: only one
    /// party can have paid beyond its deposit and what it received).
    pub(crate) debts: BTreeMap<ChannelId, Debt>,
    /// Debts with something outstanding, by (debtor, created_ms, channel): the order in which a
    /// debtor's incoming funds pay them. Derived from `debts`, not covered by the root.
    pub(crate) owed: BTreeSet<(PublicKey, u64, ChannelId)>,
}

/// Leaf discriminants of the state tree.
const LEAF_ACCOUNT: u8 = 0;
const LEAF_CHANNEL: u8 = 1;
const LEAF_LINE: u8 = 2;
const LEAF_DEBT: u8 = 3;
const STATUS_OPEN: u8 = 0;
const STATUS_CLOSING: u8 = 1;
const STATUS_CLOSED: u8 = 2;

impl Books {
    /// The state root. See [`LedgerState::state_root`] for the exact bytes.
    pub(crate) fn state_root(&self) -> Hash32 {
        let mut leaves = Vec::with_capacity(self.accounts.len() + self.channels.len());
        // One buffer for every entry: this runs once per block over the whole state.
        let mut buf = Vec::with_capacity(512);
        for (key, account) in &self.accounts {
            buf.clear();
            account_entry_bytes(key, account, &mut buf);
            leaves.push(state_leaf_hash(&buf));
        }
        for (id, channel) in &self.channels {
            buf.clear();
            channel_entry_bytes(id, channel, &mut buf);
            leaves.push(state_leaf_hash(&buf));
        }
        for ((id, dir), line) in &self.lines {
            buf.clear();
            line_entry_bytes(id, *dir, line, &mut buf);
            leaves.push(state_leaf_hash(&buf));
        }
        for (id, debt) in &self.debts {
            buf.clear();
            debt_entry_bytes(id, debt, &mut buf);
            leaves.push(state_leaf_hash(&buf));
        }
        merkle::root_from_leaf_hashes(&leaves)
    }

    /// Balances plus deposits of live channels, in `u128` so that the sum itself cannot overflow.
    pub(crate) fn total_value(&self) -> u128 {
        let balances: u128 = self.accounts.values().map(|a| a.balance as u128).sum();
        let locked: u128 = self
            .channels
            .values()
            .filter(|c| c.is_live())
            .map(|c| c.deposit_a as u128 + c.deposit_b as u128)
            .sum();
        balances + locked
    }
}

/// `postcard((0u8, key, balance, nonce))`.
fn account_entry_bytes(key: &PublicKey, account: &Account, buf: &mut Vec<u8>) {
    encode_into(&(LEAF_ACCOUNT, key, account.balance, account.nonce), buf);
}

/// `postcard((1u8, id, party_a, party_b, deposit_a, deposit_b))` followed by the status.
fn channel_entry_bytes(id: &ChannelId, c: &ChannelEntry, buf: &mut Vec<u8>) {
    encode_into(
        &(LEAF_CHANNEL, id, c.party_a, c.party_b, c.deposit_a, c.deposit_b),
        buf,
    );
    match &c.status {
        ChannelStatus::Open => encode_into(&STATUS_OPEN, buf),
        ChannelStatus::Closing { close_time_ms, best } => {
            encode_into(&(STATUS_CLOSING, close_time_ms, &best[0], &best[1]), buf)
        }
        ChannelStatus::Closed { payout_a, payout_b } => {
            encode_into(&(STATUS_CLOSED, payout_a, payout_b), buf)
        }
    }
}

/// `postcard((2u8, channel_id, dir, creditor, debtor, limit, peak, expiry_ms, due_ms))`.
fn line_entry_bytes(id: &ChannelId, dir: u8, l: &CreditLine, buf: &mut Vec<u8>) {
    encode_into(
        &(
            LEAF_LINE,
            id,
            dir,
            l.creditor,
            l.debtor,
            l.limit,
            l.peak,
            l.expiry_ms,
            l.due_ms,
        ),
        buf,
    );
}

/// `postcard((3u8, channel_id, creditor, debtor, amount, outstanding, created_ms, due_ms,
/// defaulted_ms))`, `defaulted_ms` an option (`0x00` | `0x01 || varint`).
fn debt_entry_bytes(id: &ChannelId, d: &Debt, buf: &mut Vec<u8>) {
    encode_into(
        &(
            LEAF_DEBT,
            id,
            d.creditor,
            d.debtor,
            d.amount,
            d.outstanding,
            d.created_ms,
            d.due_ms,
            d.defaulted_ms,
        ),
        buf,
    );
}

/// `leaf_hash(tagged_hash(STATE, entry))`: the entry is hashed under its own domain first, so a
/// state leaf can never be taken for a transaction leaf.
fn state_leaf_hash(entry: &[u8]) -> Hash32 {
    merkle::leaf_hash(tagged_hash(tags::STATE, entry).as_bytes())
}

/// The whole ledger after some number of blocks: what every replica holds and what replaying
/// the chain from genesis rebuilds.
///
/// Cloning copies the accounts, channels and the transaction log; the sequencer avoids it with
/// [`LedgerState::produce_block`].
#[derive(Clone, PartialEq, Eq)]
pub struct LedgerState {
    pub(crate) genesis: Arc<Genesis>,
    pub(crate) chain_id: Hash32,
    pub(crate) supply: u64,
    pub(crate) height: u64,
    pub(crate) time_ms: u64,
    pub(crate) last_hash: Hash32,
    pub(crate) books: Books,
    pub(crate) log: MerkleLog,
    /// The right edge of `log`, to compute the log root a block would give without touching
    /// `log` (so that a refused block leaves no trace).
    pub(crate) frontier: Frontier,
    /// Transaction id to log index. Not covered by the state root: it is derived from the log.
    pub(crate) tx_index: BTreeMap<Hash32, u64>,
}

impl fmt::Debug for LedgerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LedgerState")
            .field("chain_id", &self.chain_id)
            .field("height", &self.height)
            .field("time_ms", &self.time_ms)
            .field("accounts", &self.books.accounts.len())
            .field("channels", &self.books.channels.len())
            .field("log_size", &self.log.size())
            .finish()
    }
}

/// An inclusion proof of one transaction in the log of a given size.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct InclusionProof {
    /// Leaf index of the transaction.
    pub index: u64,
    /// Log size the proof is against.
    pub size: u64,
    /// Audit path, leaf to root.
    pub path: Vec<Hash32>,
}

impl LedgerState {
    /// The state at height 0: the genesis allocations, no channels, an empty log.
    pub fn from_genesis(genesis: &Genesis) -> Result<LedgerState, GenesisError> {
        let supply = validate_genesis(genesis)?;
        let chain_id = genesis.chain_id();
        let accounts = genesis
            .allocations
            .iter()
            .map(|(key, balance)| {
                (
                    *key,
                    Account {
                        balance: *balance,
                        nonce: 0,
                    },
                )
            })
            .collect();
        Ok(LedgerState {
            genesis: Arc::new(genesis.clone()),
            chain_id,
            supply,
            height: 0,
            time_ms: genesis.genesis_time_ms,
            last_hash: chain_id,
            books: Books {
                accounts,
                ..Books::default()
            },
            log: MerkleLog::new(),
            frontier: Frontier::default(),
            tx_index: BTreeMap::new(),
        })
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The chain id (hash of the genesis).
    pub fn chain_id(&self) -> Hash32 {
        self.chain_id
    }

    /// Height of the last applied block (0 at genesis).
    pub fn height(&self) -> u64 {
        self.height
    }

    /// Ledger time: the last block's time, or the genesis time.
    pub fn time_ms(&self) -> u64 {
        self.time_ms
    }

    /// Hash of the last block's header; the chain id at height 0 (what block 1 links to).
    pub fn last_block_hash(&self) -> Hash32 {
        self.last_hash
    }

    /// Sum of the genesis allocations: what [`LedgerState::total_value`] always equals.
    pub fn genesis_supply(&self) -> u64 {
        self.supply
    }

    /// An account, if it was ever credited.
    pub fn account(&self, key: &PublicKey) -> Option<&Account> {
        self.books.accounts.get(key)
    }

    /// Balance of an account (0 if unknown).
    pub fn balance(&self, key: &PublicKey) -> u64 {
        self.account(key).map_or(0, |a| a.balance)
    }

    /// Next nonce of an account (0 if unknown).
    pub fn nonce(&self, key: &PublicKey) -> u64 {
        self.account(key).map_or(0, |a| a.nonce)
    }

    /// Every account, in key order.
    pub fn accounts(&self) -> impl Iterator<Item = (&PublicKey, &Account)> {
        self.books.accounts.iter()
    }

    /// A channel, in any status.
    pub fn channel(&self, id: &ChannelId) -> Option<&ChannelEntry> {
        self.books.channels.get(id)
    }

    /// Every channel, in id order.
    pub fn channels(&self) -> impl Iterator<Item = (&ChannelId, &ChannelEntry)> {
        self.books.channels.iter()
    }

    /// The credit line of a channel whose debtor pays in direction `dir`, if one was granted.
    pub fn credit_line(&self, id: &ChannelId, dir: Direction) -> Option<&CreditLine> {
        self.books.lines.get(&(*id, dir.index() as u8))
    }

    /// Every credit line, by (channel, debtor's direction index).
    pub fn credit_lines(&self) -> impl Iterator<Item = (&(ChannelId, u8), &CreditLine)> {
        self.books.lines.iter()
    }

    /// The debt a channel's settlement recorded, if any.
    pub fn debt(&self, id: &ChannelId) -> Option<&Debt> {
        self.books.debts.get(id)
    }

    /// Every debt (repaid ones included), by channel.
    pub fn debts(&self) -> impl Iterator<Item = (&ChannelId, &Debt)> {
        self.books.debts.iter()
    }

    /// What `debtor` still owes in total.
    pub fn outstanding_of(&self, debtor: &PublicKey) -> u64 {
        self.books
            .debts
            .values()
            .filter(|d| d.debtor == *debtor)
            .map(|d| d.outstanding)
            .sum()
    }

    /// End of a closing channel's challenge window.
    pub fn window_end_ms(&self, id: &ChannelId) -> Option<u64> {
        self.channel(id)?.window_end_ms(self.genesis.challenge_period_ms)
    }

    /// Balances plus the deposits locked in open and closing channels. Equals
    /// [`LedgerState::genesis_supply`] after every transaction (conservation).
    pub fn total_value(&self) -> u64 {
        u64::try_from(self.books.total_value()).expect("conservation: total value equals the genesis supply")
    }

    /// The state root: the RFC 6962 Merkle tree hash (`merkle::root_from_leaf_hashes`) over one
    /// leaf per account, in increasing key order, then one leaf per channel, in increasing
    /// channel id order; `SHA-256("")` when there are none.
    ///
    /// Each leaf hash is `SHA-256(0x00 || D)` with `D = SHA-256("paychan/v1/state" || 0x00 || E)`
    /// (32 bytes) and `E` the entry in postcard:
    ///
    /// ```text
    /// account:  0x00 || key[32] || varint(balance) || varint(nonce)
    /// channel:  0x01 || channel_id[32] || party_a[32] || party_b[32]
    ///                || varint(deposit_a) || varint(deposit_b) || status
    /// status:   0x00                                                   open
    ///         | 0x01 || varint(close_time_ms) || opt(best A->B) || opt(best B->A)   closing
    ///         | 0x02 || varint(payout_a) || varint(payout_b)           closed
    /// opt(p):   0x00 | 0x01 || postcard(SignedProof)
    ///           (the proof body as signed, then the 64 signature bytes)
    /// ```
    ///
    /// then one leaf per credit line in (channel id, direction) order, then one per debt in
    /// channel id order (lines and debts: PROTOCOL.md, credit, state leaves).
    ///
    /// `varint` is postcard's unsigned LEB128. The cost is a few hashes per entry, once per
    /// block.
    pub fn state_root(&self) -> Hash32 {
        self.books.state_root()
    }

    /// Number of transactions in the log.
    pub fn log_size(&self) -> u64 {
        self.log.size()
    }

    /// Current log root.
    pub fn log_root(&self) -> Hash32 {
        self.log.root()
    }

    /// The transaction log (leaf hashes, past roots, proofs).
    pub fn log(&self) -> &MerkleLog {
        &self.log
    }

    /// Log index of an included transaction.
    pub fn tx_log_index(&self, tx_id: &Hash32) -> Option<u64> {
        self.tx_index.get(tx_id).copied()
    }

    /// Whether a transaction is included.
    pub fn contains_tx(&self, tx_id: &Hash32) -> bool {
        self.tx_index.contains_key(tx_id)
    }

    /// The inclusion proof of an included transaction in the log of the first `size` leaves
    /// (`size` typically that of a witnessed checkpoint).
    pub fn inclusion_proof(&self, tx_id: &Hash32, size: u64) -> Result<InclusionProof, ProofError> {
        let index = self.tx_log_index(tx_id).ok_or(ProofError::UnknownTx(*tx_id))?;
        if index >= size {
            return Err(ProofError::NotInPrefix { index, size });
        }
        let path = self.log.inclusion_proof(index, size)?;
        Ok(InclusionProof { index, size, path })
    }

    /// The consistency proof between two log sizes.
    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash32>, ProofError> {
        if first == 0 && second <= self.log.size() {
            // RFC 6962 defines no proof from the empty tree: it is a prefix of every log, and
            // the checkpoint rule (`verify_checkpoint_consistency`) takes an empty path for it.
            return Ok(Vec::new());
        }
        Ok(self.log.consistency_proof(first, second)?)
    }

    /// The checkpoint of the current state (what the sequencer signs and witnesses cosign).
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            chain_id: self.chain_id,
            log_size: self.log.size(),
            log_root: self.log.root(),
            height: self.height,
            block_hash: self.last_hash,
        }
    }
}

#[cfg(test)]
mod tests {
    use paychan_protocol::{BalanceProof, Keypair};

    use super::*;

    #[test]
    fn account_leaf_bytes_are_as_documented() {
        let key = PublicKey([7; 32]);
        let mut buf = Vec::new();
        account_entry_bytes(
            &key,
            &Account {
                balance: 300,
                nonce: 1,
            },
            &mut buf,
        );
        let mut want = vec![0x00];
        want.extend_from_slice(&[7; 32]);
        want.extend_from_slice(&[0xac, 0x02, 0x01]);
        assert_eq!(buf, want);
    }

    #[test]
    fn channel_leaf_bytes_are_as_documented() {
        let id = ChannelId(Hash32([1; 32]));
        let mut c = ChannelEntry {
            party_a: PublicKey([2; 32]),
            party_b: PublicKey([3; 32]),
            deposit_a: 5,
            deposit_b: 128,
            status: ChannelStatus::Open,
        };
        let mut head = vec![0x01];
        head.extend_from_slice(&[1; 32]);
        head.extend_from_slice(&[2; 32]);
        head.extend_from_slice(&[3; 32]);
        head.extend_from_slice(&[0x05, 0x80, 0x01]);

        let mut buf = Vec::new();
        channel_entry_bytes(&id, &c, &mut buf);
        assert_eq!(buf, [head.clone(), vec![0x00]].concat());

        c.status = ChannelStatus::Closed {
            payout_a: 1,
            payout_b: 132,
        };
        buf.clear();
        channel_entry_bytes(&id, &c, &mut buf);
        assert_eq!(buf, [head.clone(), vec![0x02, 0x01, 0x84, 0x01]].concat());

        let kp = Keypair::from_seed([9; 32]);
        let proof = BalanceProof {
            chain_id: Hash32([4; 32]),
            channel_id: id,
            direction: Direction::BToA,
            seq: 1,
            transferred: 2,
            prev: id.0,
            memo_hash: Hash32([5; 32]),
        }
        .sign(&kp);
        c.status = ChannelStatus::Closing {
            close_time_ms: 3,
            best: Box::new([None, Some(proof)]),
        };
        buf.clear();
        channel_entry_bytes(&id, &c, &mut buf);
        let mut want = [head, vec![0x01, 0x03, 0x00, 0x01]].concat();
        want.extend_from_slice(&proof.proof.body());
        want.extend_from_slice(&proof.signature.0);
        assert_eq!(buf, want);
    }

    #[test]
    fn line_and_debt_leaf_bytes_are_as_documented() {
        let id = ChannelId(Hash32([1; 32]));
        let line = CreditLine {
            creditor: PublicKey([2; 32]),
            debtor: PublicKey([3; 32]),
            limit: 5,
            peak: 128,
            expiry_ms: 1,
            due_ms: 2,
        };
        let mut buf = Vec::new();
        line_entry_bytes(&id, 1, &line, &mut buf);
        let mut want = vec![0x02];
        want.extend_from_slice(&[1; 32]);
        want.push(0x01);
        want.extend_from_slice(&[2; 32]);
        want.extend_from_slice(&[3; 32]);
        want.extend_from_slice(&[0x05, 0x80, 0x01, 0x01, 0x02]);
        assert_eq!(buf, want);

        let mut debt = Debt {
            creditor: PublicKey([2; 32]),
            debtor: PublicKey([3; 32]),
            amount: 300,
            outstanding: 7,
            created_ms: 3,
            due_ms: 4,
            defaulted_ms: None,
        };
        let mut head = vec![0x03];
        head.extend_from_slice(&[1; 32]);
        head.extend_from_slice(&[2; 32]);
        head.extend_from_slice(&[3; 32]);
        head.extend_from_slice(&[0xac, 0x02, 0x07, 0x03, 0x04]);
        buf.clear();
        debt_entry_bytes(&id, &debt, &mut buf);
        assert_eq!(buf, [head.clone(), vec![0x00]].concat());
        debt.defaulted_ms = Some(4);
        buf.clear();
        debt_entry_bytes(&id, &debt, &mut buf);
        assert_eq!(buf, [head, vec![0x01, 0x04]].concat());
    }

    #[test]
    fn state_leaf_is_tagged_then_rfc6962() {
        let entry = [0u8, 1, 2];
        let d = paychan_protocol::hash::sha256(&[b"paychan/v1/state\0", &entry]);
        let want = paychan_protocol::hash::sha256(&[&[0x00], &d.0]);
        assert_eq!(state_leaf_hash(&entry), want);
        assert_eq!(Books::default().state_root(), merkle::empty_root());
    }
}
