//! The sequencer's pending transactions: idempotent submission, per-account limits, cheap
//! refusal of junk, expiry, and block candidates with disputes first and closes next.
//!
//! Every pending transaction is tied to something that costs an attacker, and every class has
//! its own room, so that no class can take another's:
//! - **regular** (transfers, deposits, opens): counted against the paying account's pending
//!   limit; admitted only within a small nonce window ([`NONCE_WINDOW`]) and only while the
//!   account's balance covers the amounts and fees of all its pending transactions together;
//!   at most `max_regular` in all, and a newcomer that pays a higher fee than the cheapest
//!   pending one evicts it (lowest fee first, newest first among equal fees).
//! - **closes** (cooperative and unilateral): their own room of `max_regular`, at most one
//!   pending close of each kind per channel, so bounded by the number of live channels (each
//!   paid its open's fee). Spam in the regular class never refuses or delays a close.
//! - **disputes** (updates, settles): never refused for a full pool, since a sequencer that
//!   drops updates lets stale closes settle; instead each closing channel holds at most one
//!   pending settle and, per direction, the one pending update with the highest transferred
//!   amount (an update that beats neither is refused as stale, and one beaten in every
//!   direction it carries is evicted). So disputes stay bounded by the number of closing
//!   channels.
//!
//! Regular transactions and closes expire [`EXPIRY_BLOCKS`] blocks after they were admitted,
//! so that what cannot run (a nonce after a gap that is never filled, a spend the balance no
//! longer covers) does not hold room for good. Block candidates come out disputes first, then
//! closes, then regular transactions: the reserved block space of disputes and closes.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use paychan_protocol::ledger::Update;
use paychan_protocol::wire::SubmitStatus;
use paychan_protocol::{ChannelId, Direction, Genesis, Hash32, PublicKey, Tx};

use crate::checked::CheckedTx;
use crate::error::TxError;
use crate::state::{ChannelStatus, LedgerState};
use crate::tx::tx_fee;

/// Blocks' worth of non-dispute transactions the pool holds by default (per class).
pub const POOL_BLOCKS: usize = 16;
/// Nonces ahead of an account's next one that a transfer or deposit may carry: nonces
/// `next .. next + NONCE_WINDOW` (and at most `max_pending_per_account` of them).
pub const NONCE_WINDOW: u64 = 16;
/// Blocks after which a pending transfer, deposit, open or close that has not gone into a
/// block is dropped.
pub const EXPIRY_BLOCKS: u64 = 32;

/// Which room a pending transaction takes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Class {
    Regular,
    Close,
    Dispute,
}

fn class_of(tx: &Tx) -> Class {
    match tx {
        Tx::Transfer { .. }
        | Tx::Deposit { .. }
        | Tx::Open(_)
        | Tx::CreditGrant { .. }
        | Tx::Repay { .. } => Class::Regular,
        Tx::CoopClose(_) | Tx::UnilateralClose { .. } => Class::Close,
        Tx::Update(_) | Tx::Settle(_) => Class::Dispute,
    }
}

#[derive(Clone, Debug)]
struct Entry {
    tx: Tx,
    id: Hash32,
    class: Class,
    /// The fee it pays (0 for the free kinds).
    fee: u64,
    /// The account whose pending limit it counts against, and what it takes from that
    /// account's balance (amount or deposit, plus fee).
    account: Option<(PublicKey, u64)>,
    /// The (account, nonce) it consumes.
    nonce: Option<(PublicKey, u64)>,
    /// The channel a pending open would create.
    opens: Option<ChannelId>,
    /// The channel and kind (0 cooperative, 1 unilateral) of a pending close.
    closes: Option<(ChannelId, u8)>,
    /// Ledger height when it was admitted.
    admitted_height: u64,
}

/// Pending transactions, in arrival order. Pure: the caller passes the ledger state it checks
/// against.
#[derive(Clone, Debug)]
pub struct Mempool {
    max_per_account: u32,
    max_regular: usize,
    next_seq: u64,
    entries: BTreeMap<u64, Entry>,
    by_id: BTreeMap<Hash32, u64>,
    /// Per account: pending transactions counted against it, and the sum they take from its
    /// balance.
    per_account: BTreeMap<PublicKey, (u32, u64)>,
    nonces: BTreeMap<(PublicKey, u64), u64>,
    opens: BTreeSet<ChannelId>,
    closes: BTreeSet<(ChannelId, u8)>,
    /// Regular entries by eviction order: lowest fee first, newest first among equal fees.
    by_fee: BTreeSet<(u64, Reverse<u64>)>,
    /// Per closing channel and direction: (seq, transferred) of the pending update that holds
    /// the highest transferred amount.
    holders: BTreeMap<ChannelId, [Option<(u64, u64)>; 2]>,
    regular: usize,
    close_count: usize,
}

impl Mempool {
    /// A pool with the genesis limit per account and room for [`POOL_BLOCKS`] full blocks of
    /// regular transactions, and as many closes.
    pub fn new(genesis: &Genesis) -> Mempool {
        Mempool::with_limits(
            genesis.max_pending_per_account,
            (genesis.max_txs_per_block as usize).saturating_mul(POOL_BLOCKS),
        )
    }

    /// A pool with explicit limits: pending transactions per account, and regular
    /// transactions in all (closes have as much room again).
    pub fn with_limits(max_per_account: u32, max_regular: usize) -> Mempool {
        Mempool {
            max_per_account,
            max_regular,
            next_seq: 0,
            entries: BTreeMap::new(),
            by_id: BTreeMap::new(),
            per_account: BTreeMap::new(),
            nonces: BTreeMap::new(),
            opens: BTreeSet::new(),
            closes: BTreeSet::new(),
            by_fee: BTreeSet::new(),
            holders: BTreeMap::new(),
            regular: 0,
            close_count: 0,
        }
    }

    /// Number of pending transactions.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether a transaction is pending.
    pub fn contains(&self, tx_id: &Hash32) -> bool {
        self.by_id.contains_key(tx_id)
    }

    /// Pending transactions counted against an account (its transfers, deposits, and opens it
    /// proposed).
    pub fn pending_for(&self, account: &PublicKey) -> u32 {
        self.per_account.get(account).map_or(0, |(n, _)| *n)
    }

    /// What an account's pending transactions take from its balance together (amounts,
    /// deposits and fees).
    pub fn pending_spend(&self, account: &PublicKey) -> u64 {
        self.per_account.get(account).map_or(0, |(_, spend)| *spend)
    }

    /// The nonces past an account's next one that this pool admits: [`NONCE_WINDOW`], or the
    /// pending limit per account if that is smaller.
    pub fn nonce_window(&self) -> u64 {
        NONCE_WINDOW.min(u64::from(self.max_per_account))
    }

    /// The nonce the holder of `account` gives its next transfer or deposit: the first one
    /// after the ledger's next nonce and the run of the account's transactions pending here,
    /// and after `last_used` (the highest nonce the holder signed that this pool may not count:
    /// submitted to another node's pool, or still on its way) when that is further ahead.
    ///
    /// Refused with [`TxError::PendingLimit`] when that nonce would fall outside the window
    /// [`Mempool::submit`] admits, or the account already has its maximum pending: a burst
    /// larger than the window is told to wait for the next block before anything is signed,
    /// rather than signed with a nonce the pool then refuses as [`TxError::BadNonce`]. Opens
    /// the account proposed count against its pending limit but take no nonce, so they do not
    /// move the nonce.
    pub fn next_own_nonce(
        &self,
        state: &LedgerState,
        account: &PublicKey,
        last_used: Option<u64>,
    ) -> Result<u64, TxError> {
        let base = state.nonce(account);
        let window = self.nonce_window();
        let mut next = base;
        // Bounded by the window: no nonce past it is ever admitted.
        while next - base < window && self.nonces.contains_key(&(*account, next)) {
            next += 1;
        }
        if let Some(last) = last_used {
            if last >= next {
                next = last.saturating_add(1);
            }
        }
        if next.saturating_sub(base) >= window {
            return Err(TxError::PendingLimit {
                account: *account,
                limit: u32::try_from(window).unwrap_or(u32::MAX),
            });
        }
        if self.pending_for(account) >= self.max_per_account {
            return Err(TxError::PendingLimit {
                account: *account,
                limit: self.max_per_account,
            });
        }
        Ok(next)
    }

    /// Offers a transaction. Resubmitting one that is pending or included is harmless and
    /// answered with [`SubmitStatus::AlreadyPending`] / [`SubmitStatus::AlreadyIncluded`].
    ///
    /// Refused with a typed error: a foreign chain id or a bad signature (violations); a
    /// transfer or deposit whose nonce is used, already pending, or outside the nonce window;
    /// a transfer, deposit or open whose amount and fee the payer's balance cannot cover
    /// together with its other pending transactions ([`TxError::Overdraft`],
    /// [`TxError::FeeUnpaid`]); an open, close or dispute that would not apply at the current
    /// ledger time (so a settle is accepted once ledger time has reached the end of the
    /// window); a second pending close of one kind for one channel; an update that raises
    /// neither direction above both the ledger and the pending updates; and the limits.
    pub fn submit(&mut self, tx: Tx, state: &LedgerState) -> Result<SubmitStatus, TxError> {
        self.submit_checked(tx.into(), state)
    }

    /// [`Mempool::submit`] for many transactions at once: their own signatures are checked in
    /// batches on every core ([`CheckedTx::check_all`]), then each is offered in order. The
    /// answers are in the order given and are the ones [`Mempool::submit`] gives one by one.
    pub fn submit_all(&mut self, txs: Vec<Tx>, state: &LedgerState) -> Vec<Result<SubmitStatus, TxError>> {
        CheckedTx::check_all(txs)
            .into_iter()
            .map(|tx| self.submit_checked(tx, state))
            .collect()
    }

    /// [`Mempool::submit`] for a transaction whose own signatures were checked ahead (so that
    /// the check can run outside the caller's lock, or in a batch): a signature found invalid
    /// is refused with [`TxError::BadSignature`] at the point [`Mempool::submit`] would check
    /// it; one not checked is checked there.
    pub fn submit_checked(
        &mut self,
        checked: CheckedTx,
        state: &LedgerState,
    ) -> Result<SubmitStatus, TxError> {
        let own = checked.own_signatures();
        let mut sigs = checked.sigs();
        let tx = checked.into_tx();
        let own_ok = |tx: &Tx| match own {
            Some(valid) => valid,
            None => tx.verify_own_signature().is_ok(),
        };
        let id = tx.id();
        if state.contains_tx(&id) {
            return Ok(SubmitStatus::AlreadyIncluded);
        }
        if self.by_id.contains_key(&id) {
            return Ok(SubmitStatus::AlreadyPending);
        }
        if tx.chain_id() != state.chain_id() {
            return Err(TxError::WrongChain {
                expected: state.chain_id(),
                got: tx.chain_id(),
            });
        }
        let fee = tx_fee(state.genesis(), &tx);
        let mut entry = Entry {
            id,
            class: class_of(&tx),
            fee,
            account: None,
            nonce: None,
            opens: None,
            closes: None,
            admitted_height: state.height(),
            tx,
        };
        let mut update_raises = None;
        match &entry.tx {
            Tx::Transfer { body, .. } => {
                if body.amount == 0 {
                    return Err(TxError::ZeroAmount);
                }
                if body.from == body.to {
                    return Err(TxError::SelfTransfer);
                }
                if !own_ok(&entry.tx) {
                    return Err(TxError::BadSignature);
                }
                self.check_nonce(state, body.from, body.nonce)?;
                let spend = self.check_funds(state, body.from, body.amount, fee)?;
                entry.account = Some((body.from, spend));
                entry.nonce = Some((body.from, body.nonce));
            }
            Tx::Deposit { body, .. } => {
                if body.amount == 0 {
                    return Err(TxError::ZeroAmount);
                }
                if !own_ok(&entry.tx) {
                    return Err(TxError::BadSignature);
                }
                let channel = state
                    .channel(&body.channel_id)
                    .ok_or(TxError::UnknownChannel(body.channel_id))?;
                match channel.status {
                    ChannelStatus::Open => {}
                    ChannelStatus::Closing { .. } => return Err(TxError::ChannelNotOpen(body.channel_id)),
                    ChannelStatus::Closed { .. } => return Err(TxError::ChannelClosed(body.channel_id)),
                }
                if !channel.is_party(&body.from) {
                    return Err(TxError::NotAParty(body.from));
                }
                self.check_nonce(state, body.from, body.nonce)?;
                let spend = self.check_funds(state, body.from, body.amount, fee)?;
                entry.account = Some((body.from, spend));
                entry.nonce = Some((body.from, body.nonce));
            }
            Tx::CreditGrant { body, .. } => {
                if !own_ok(&entry.tx) {
                    return Err(TxError::BadSignature);
                }
                self.check_nonce(state, body.creditor, body.nonce)?;
                let spend = self.check_funds(state, body.creditor, 0, fee)?;
                entry.account = Some((body.creditor, spend));
                entry.nonce = Some((body.creditor, body.nonce));
            }
            Tx::Repay { body, .. } => {
                if body.amount == 0 {
                    return Err(TxError::ZeroAmount);
                }
                if !own_ok(&entry.tx) {
                    return Err(TxError::BadSignature);
                }
                self.check_nonce(state, body.from, body.nonce)?;
                let spend = self.check_funds(state, body.from, body.amount, fee)?;
                entry.account = Some((body.from, spend));
                entry.nonce = Some((body.from, body.nonce));
            }
            Tx::Open(open) => {
                state.check_tx_sigs(&entry.tx, state.time_ms(), &mut sigs)?;
                let channel_id = open.open.channel_id();
                if self.opens.contains(&channel_id) {
                    return Err(TxError::DuplicateChannel(channel_id));
                }
                let spend = self.check_funds(state, open.open.party_a, open.open.deposit_a, fee)?;
                entry.account = Some((open.open.party_a, spend));
                entry.opens = Some(channel_id);
            }
            Tx::CoopClose(close) => {
                state.check_tx_sigs(&entry.tx, state.time_ms(), &mut sigs)?;
                entry.closes = Some((close.close.channel_id, 0));
            }
            Tx::UnilateralClose { body, .. } => {
                state.check_tx_sigs(&entry.tx, state.time_ms(), &mut sigs)?;
                entry.closes = Some((body.channel_id, 1));
            }
            Tx::Update(update) => {
                state.check_tx_sigs(&entry.tx, state.time_ms(), &mut sigs)?;
                update_raises = Some(self.update_raises(state, update)?);
            }
            Tx::Settle(_) => {
                state.check_tx_sigs(&entry.tx, state.time_ms(), &mut sigs)?;
            }
        }
        if let Some((account, _)) = entry.account {
            if self.pending_for(&account) >= self.max_per_account {
                return Err(TxError::PendingLimit {
                    account,
                    limit: self.max_per_account,
                });
            }
        }
        match entry.class {
            Class::Regular if self.regular >= self.max_regular => {
                // The cheapest pending one (the newest among equals) makes room for a newcomer
                // that pays strictly more; otherwise the newcomer waits.
                match self.by_fee.first().copied() {
                    Some((lowest, Reverse(seq))) if lowest < entry.fee => {
                        self.remove(seq);
                    }
                    _ => return Err(TxError::PoolFull),
                }
            }
            Class::Close => {
                let key = entry.closes.expect("a close names its channel");
                if self.closes.contains(&key) {
                    return Err(TxError::ClosePending(key.0));
                }
                if self.close_count >= self.max_regular {
                    return Err(TxError::PoolFull);
                }
            }
            Class::Regular | Class::Dispute => {}
        }
        let seq = self.insert(entry);
        if let (Some(raises), Tx::Update(update)) = (update_raises, &self.entries[&seq].tx) {
            let channel_id = update.channel_id;
            self.hold(channel_id, seq, raises);
        }
        Ok(SubmitStatus::Accepted)
    }

    /// The nonce of a transfer or deposit that may follow other pending transactions of the
    /// same account: within the window after the account's next nonce, and not yet pending.
    fn check_nonce(&self, state: &LedgerState, from: PublicKey, nonce: u64) -> Result<(), TxError> {
        let next = state.nonce(&from);
        // A nonce further ahead than the window (or the pending limit) could not be reached
        // while the transactions before it wait in the pool; spam with gaps gets no further.
        let window = self.nonce_window();
        if nonce < next || nonce - next >= window {
            return Err(TxError::BadNonce {
                expected: next,
                got: nonce,
            });
        }
        if self.nonces.contains_key(&(from, nonce)) {
            return Err(TxError::NonceConflict { nonce });
        }
        Ok(())
    }

    /// Whether `payer`'s balance covers `amount` and then `fee` on top of everything its
    /// pending transactions already take; returns what this one takes.
    fn check_funds(
        &self,
        state: &LedgerState,
        payer: PublicKey,
        amount: u64,
        fee: u64,
    ) -> Result<u64, TxError> {
        let balance = state.balance(&payer);
        let available = balance.saturating_sub(self.pending_spend(&payer));
        if amount > available {
            return Err(TxError::Overdraft {
                needed: amount,
                available,
            });
        }
        if fee > available - amount {
            return Err(TxError::FeeUnpaid {
                payer,
                fee,
                available: available - amount,
            });
        }
        Ok(amount + fee)
    }

    /// The directions in which `update` beats both the ledger's best proof and every pending
    /// update of its channel; refuses it as stale if there are none.
    fn update_raises(&self, state: &LedgerState, update: &Update) -> Result<[Option<u64>; 2], TxError> {
        let channel = state
            .channel(&update.channel_id)
            .ok_or(TxError::UnknownChannel(update.channel_id))?;
        let held = self.holders.get(&update.channel_id).copied().unwrap_or_default();
        let mut raises = [None; 2];
        for dir in [Direction::AToB, Direction::BToA] {
            let i = dir.index();
            let slot = if i == 0 {
                &update.proof_ab
            } else {
                &update.proof_ba
            };
            let Some(p) = slot else { continue };
            let ledger = channel.best(dir).map_or(0, |b| b.proof.transferred);
            let pending = held[i].map_or(0, |(_, t)| t);
            if p.proof.transferred > ledger.max(pending) {
                raises[i] = Some(p.proof.transferred);
            }
        }
        if raises == [None, None] {
            return Err(TxError::StaleProof);
        }
        Ok(raises)
    }

    /// Makes the update `seq` the holder of the directions it raised and evicts updates that
    /// no longer hold any direction: everything they carry is matched or beaten by a holder.
    fn hold(&mut self, channel_id: ChannelId, seq: u64, raises: [Option<u64>; 2]) {
        let slots = self.holders.entry(channel_id).or_default();
        let mut replaced = Vec::new();
        for (slot, raise) in slots.iter_mut().zip(raises) {
            if let Some(t) = raise {
                if let Some((old, _)) = slot.replace((seq, t)) {
                    replaced.push(old);
                }
            }
        }
        let slots = *slots;
        for old in replaced {
            if slots.iter().flatten().all(|(s, _)| *s != old) {
                self.remove(old);
            }
        }
    }

    fn insert(&mut self, entry: Entry) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_id.insert(entry.id, seq);
        if let Some((account, spend)) = entry.account {
            let slot = self.per_account.entry(account).or_insert((0, 0));
            slot.0 += 1;
            // Bounded by the balance (checked at admission), so it cannot overflow.
            slot.1 = slot.1.saturating_add(spend);
        }
        if let Some(key) = entry.nonce {
            self.nonces.insert(key, seq);
        }
        if let Some(id) = entry.opens {
            self.opens.insert(id);
        }
        if let Some(key) = entry.closes {
            self.closes.insert(key);
        }
        match entry.class {
            Class::Regular => {
                self.regular += 1;
                self.by_fee.insert((entry.fee, Reverse(seq)));
            }
            Class::Close => self.close_count += 1,
            Class::Dispute => {}
        }
        self.entries.insert(seq, entry);
        seq
    }

    fn remove(&mut self, seq: u64) -> Option<Tx> {
        let entry = self.entries.remove(&seq)?;
        self.by_id.remove(&entry.id);
        if let Some((account, spend)) = entry.account {
            if let Some(slot) = self.per_account.get_mut(&account) {
                slot.0 -= 1;
                slot.1 = slot.1.saturating_sub(spend);
                if slot.0 == 0 {
                    self.per_account.remove(&account);
                }
            }
        }
        if let Some(key) = entry.nonce {
            self.nonces.remove(&key);
        }
        if let Some(id) = entry.opens {
            self.opens.remove(&id);
        }
        if let Some(key) = entry.closes {
            self.closes.remove(&key);
        }
        match entry.class {
            Class::Regular => {
                self.regular -= 1;
                self.by_fee.remove(&(entry.fee, Reverse(seq)));
            }
            Class::Close => self.close_count -= 1,
            Class::Dispute => {
                if let Tx::Update(u) = &entry.tx {
                    if let Some(slots) = self.holders.get_mut(&u.channel_id) {
                        for slot in slots.iter_mut() {
                            if slot.is_some_and(|(s, _)| s == seq) {
                                *slot = None;
                            }
                        }
                        if *slots == [None, None] {
                            self.holders.remove(&u.channel_id);
                        }
                    }
                }
            }
        }
        Some(entry.tx)
    }

    /// Drops what can no longer apply to `state`: included transactions, used nonces, opens of
    /// existing channels or past their expiry, closes of channels that moved on, updates that
    /// no longer raise anything or whose window ended, settles of closed channels; and every
    /// regular transaction or close admitted more than [`EXPIRY_BLOCKS`] blocks ago. Cheap (no
    /// signature checks); call it after every applied block.
    pub fn prune(&mut self, state: &LedgerState) {
        let time = state.time_ms();
        let height = state.height();
        let period = state.genesis().challenge_period_ms;
        let dead: Vec<u64> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                if state.contains_tx(&e.id) {
                    return true;
                }
                if e.class != Class::Dispute && height.saturating_sub(e.admitted_height) > EXPIRY_BLOCKS {
                    return true;
                }
                if let Some((account, nonce)) = e.nonce {
                    return nonce < state.nonce(&account);
                }
                match &e.tx {
                    Tx::Open(o) => state.channel(&o.open.channel_id()).is_some() || time > o.open.expiry_ms,
                    Tx::CoopClose(c) => !state.channel(&c.close.channel_id).is_some_and(|c| c.is_live()),
                    Tx::UnilateralClose { body, .. } => !state
                        .channel(&body.channel_id)
                        .is_some_and(|c| c.status == ChannelStatus::Open),
                    Tx::Update(u) => match state.channel(&u.channel_id) {
                        Some(c) => {
                            let open = c.window_end_ms(period).is_some_and(|end| time < end);
                            let raises = [(Direction::AToB, &u.proof_ab), (Direction::BToA, &u.proof_ba)]
                                .into_iter()
                                .any(|(dir, p)| {
                                    p.is_some_and(|p| {
                                        p.proof.transferred > c.best(dir).map_or(0, |b| b.proof.transferred)
                                    })
                                });
                            !(open && raises)
                        }
                        None => true,
                    },
                    Tx::Settle(s) => !state.channel(&s.channel_id).is_some_and(|c| c.is_live()),
                    Tx::Transfer { .. } | Tx::Deposit { .. } | Tx::CreditGrant { .. } | Tx::Repay { .. } => {
                        false
                    }
                }
            })
            .map(|(seq, _)| *seq)
            .collect();
        for seq in dead {
            self.remove(seq);
        }
    }

    /// Removes and returns up to `max` transactions for the next block, in block order: every
    /// pending dispute first (oldest first), then every pending close (oldest first), then the
    /// regular ones, oldest first, except that each account's transfers and deposits come out
    /// in nonce order and only as a run that starts at the account's next nonce (those after a
    /// gap stay pending). So the block space of disputes and closes is reserved: regular
    /// transactions only get what they leave. Prunes first.
    ///
    /// Hand the result to [`LedgerState::produce_block`], which does not check again the own
    /// signatures checked at admission; resubmit the dropped candidates whose error is
    /// [`TxError::BlockFull`] (or, if wanted, any retryable one).
    pub fn take_block_candidates(&mut self, state: &LedgerState, max: usize) -> Vec<CheckedTx> {
        self.prune(state);
        let mut out = Vec::new();
        for class in [Class::Dispute, Class::Close] {
            let seqs: Vec<u64> = self
                .entries
                .iter()
                .filter(|(_, e)| e.class == class)
                .map(|(seq, _)| *seq)
                .take(max.saturating_sub(out.len()))
                .collect();
            out.extend(
                seqs.into_iter()
                    .filter_map(|seq| self.remove(seq))
                    .map(CheckedTx::admitted),
            );
        }
        let regular: Vec<(u64, Option<PublicKey>)> = self
            .entries
            .iter()
            .filter(|(_, e)| e.class == Class::Regular)
            .map(|(seq, e)| (*seq, e.nonce.map(|(account, _)| account)))
            .collect();
        // Each position an account's transaction holds in the arrival order yields that
        // account's next nonce, so a late-arriving lower nonce does not strand a higher one.
        let mut next_nonce: BTreeMap<PublicKey, u64> = BTreeMap::new();
        for (seq, account) in regular {
            if out.len() >= max {
                break;
            }
            let seq = match account {
                None => seq,
                Some(account) => {
                    let next = next_nonce.entry(account).or_insert_with(|| state.nonce(&account));
                    match self.nonces.get(&(account, *next)) {
                        Some(&s) => {
                            *next = next.saturating_add(1);
                            s
                        }
                        None => continue,
                    }
                }
            };
            out.extend(self.remove(seq).map(CheckedTx::admitted));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::{TestChain, TestNet, TestParams};

    fn chain(max_pending_per_account: u32) -> TestChain {
        TestChain::new(TestNet::with_params(TestParams {
            users: 3,
            max_pending_per_account,
            ..TestParams::default()
        }))
    }

    /// A burst of the holder's own transfers gets consecutive nonces up to the window, then a
    /// typed "too many pending" refusal before anything is signed (not a nonce the pool then
    /// refuses as BadNonce); the next block makes room again.
    #[test]
    fn own_nonces_fill_the_window_then_the_burst_is_told_to_wait() {
        let mut c = chain(256);
        let (a, b) = (c.net.users[0].clone(), c.net.users[1].public());
        let mut pool = Mempool::new(&c.net.genesis);
        assert_eq!(pool.nonce_window(), NONCE_WINDOW);
        for expected in 0..NONCE_WINDOW {
            let nonce = pool.next_own_nonce(&c.state, &a.public(), None).unwrap();
            assert_eq!(nonce, expected);
            let tx = c.net.transfer(&a, b, 1, nonce);
            assert_eq!(pool.submit(tx, &c.state), Ok(SubmitStatus::Accepted));
        }
        let refused = pool.next_own_nonce(&c.state, &a.public(), None);
        assert_eq!(
            refused,
            Err(TxError::PendingLimit {
                account: a.public(),
                limit: NONCE_WINDOW as u32
            })
        );
        // What the old count would have signed: refused by the pool as BadNonce.
        assert!(matches!(
            pool.submit(c.net.transfer(&a, b, 1, NONCE_WINDOW), &c.state),
            Err(TxError::BadNonce { .. })
        ));
        let cands = pool.take_block_candidates(&c.state, 64);
        assert_eq!(cands.len() as u64, NONCE_WINDOW);
        assert!(c.next_block(cands).is_empty());
        assert_eq!(pool.next_own_nonce(&c.state, &a.public(), None), Ok(NONCE_WINDOW));
    }

    /// The nonce follows the run of pending nonces, not the count of pending entries: an open
    /// the account proposed takes no nonce, and a pending nonce after a gap does not move it.
    #[test]
    fn own_nonce_skips_only_the_pending_run() {
        let c = chain(256);
        let (a, b) = (c.net.users[0].clone(), c.net.users[1].clone());
        let mut pool = Mempool::new(&c.net.genesis);
        let (open, _) = c.net.open(&a, &b, (100, 100), 1, u64::MAX);
        assert_eq!(pool.submit(open, &c.state), Ok(SubmitStatus::Accepted));
        assert_eq!(pool.pending_for(&a.public()), 1);
        assert_eq!(pool.next_own_nonce(&c.state, &a.public(), None), Ok(0));
        let tx = c.net.transfer(&a, b.public(), 1, 3);
        assert_eq!(pool.submit(tx, &c.state), Ok(SubmitStatus::Accepted));
        assert_eq!(pool.next_own_nonce(&c.state, &a.public(), None), Ok(0));
        let tx = c.net.transfer(&a, b.public(), 1, 0);
        assert_eq!(pool.submit(tx, &c.state), Ok(SubmitStatus::Accepted));
        assert_eq!(pool.next_own_nonce(&c.state, &a.public(), None), Ok(1));
    }

    /// Off the sequencer the pool is empty: the last nonce the holder used carries the burst,
    /// and the window bounds it all the same.
    #[test]
    fn own_nonce_follows_the_last_used_one_within_the_window() {
        let c = chain(256);
        let a = c.net.users[0].public();
        let pool = Mempool::new(&c.net.genesis);
        assert_eq!(pool.next_own_nonce(&c.state, &a, Some(4)), Ok(5));
        assert_eq!(
            pool.next_own_nonce(&c.state, &a, Some(NONCE_WINDOW - 2)),
            Ok(NONCE_WINDOW - 1)
        );
        assert!(matches!(
            pool.next_own_nonce(&c.state, &a, Some(NONCE_WINDOW - 1)),
            Err(TxError::PendingLimit { .. })
        ));
        assert!(matches!(
            pool.next_own_nonce(&c.state, &a, Some(u64::MAX)),
            Err(TxError::PendingLimit { .. })
        ));
    }

    /// A pending limit below the window is the window, and an account at its pending limit
    /// (opens included) is refused.
    #[test]
    fn own_nonce_respects_a_small_pending_limit() {
        let c = chain(2);
        let (a, b) = (c.net.users[0].clone(), c.net.users[1].clone());
        let mut pool = Mempool::new(&c.net.genesis);
        assert_eq!(pool.nonce_window(), 2);
        let (open, _) = c.net.open(&a, &b, (100, 100), 1, u64::MAX);
        assert_eq!(pool.submit(open, &c.state), Ok(SubmitStatus::Accepted));
        let tx = c.net.transfer(&a, b.public(), 1, 0);
        assert_eq!(pool.submit(tx, &c.state), Ok(SubmitStatus::Accepted));
        assert_eq!(
            pool.next_own_nonce(&c.state, &a.public(), None),
            Err(TxError::PendingLimit {
                account: a.public(),
                limit: 2
            })
        );
    }
}
