//! What an audit verified: the figures of the ledger at the verified height, its checkpoints,
//! and every account and channel. Serializable, so the CLI can print JSON.

use paychan_ledger::{ChannelStatus, LedgerState};
use paychan_protocol::Checkpoint;
use serde::Serialize;

/// Transactions replayed, by kind.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize)]
pub struct TxCounts {
    /// Transfers.
    pub transfer: u64,
    /// Channel opens.
    pub open: u64,
    /// Deposit top-ups.
    pub deposit: u64,
    /// Cooperative closes.
    pub coop_close: u64,
    /// Unilateral closes.
    pub unilateral_close: u64,
    /// Dispute updates.
    pub update: u64,
    /// Settlements.
    pub settle: u64,
    /// Credit grants.
    pub credit_grant: u64,
    /// Debt repayments.
    pub repay: u64,
}

impl TxCounts {
    /// All kinds together.
    pub fn total(&self) -> u64 {
        self.transfer
            + self.open
            + self.deposit
            + self.coop_close
            + self.unilateral_close
            + self.update
            + self.settle
            + self.credit_grant
            + self.repay
    }
}

/// Channel life-cycle events replayed, and what channels lock at the verified height.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize)]
pub struct ChannelCounts {
    /// Channels opened.
    pub opened: u64,
    /// Channels closed cooperatively (paid out at once).
    pub closed: u64,
    /// Unilateral closes started (challenge windows opened).
    pub close_started: u64,
    /// Channels settled after their challenge window.
    pub settled: u64,
    /// Channels open or closing at the verified height.
    pub live: u64,
    /// Deposits locked in live channels at the verified height.
    pub locked: u64,
}

/// A checkpoint whose signatures verified.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct CheckpointSummary {
    /// Height.
    pub height: u64,
    /// Log size.
    pub log_size: u64,
    /// Log root (hex).
    pub log_root: String,
    /// Block hash (hex).
    pub block_hash: String,
    /// Distinct valid witness cosignatures.
    pub cosigners: usize,
    /// Whether the cosigners reach the genesis threshold.
    pub witnessed: bool,
    /// Whether it was compared with the replayed block at its height (false: it is ahead of
    /// the blocks).
    pub matched: bool,
}

impl CheckpointSummary {
    pub(crate) fn new(cp: &Checkpoint, cosigners: usize, witnessed: bool, matched: bool) -> Self {
        CheckpointSummary {
            height: cp.height,
            log_size: cp.log_size,
            log_root: cp.log_root.to_hex(),
            block_hash: cp.block_hash.to_hex(),
            cosigners,
            witnessed,
            matched,
        }
    }
}

/// The outcome of an audit, for what was verified so far.
#[derive(Clone, PartialEq, Debug, Serialize)]
pub struct Report {
    /// Chain id (hex).
    pub chain_id: String,
    /// The genesis network name.
    pub network: String,
    /// Height verified to (every block up to it replayed).
    pub height: u64,
    /// Blocks replayed.
    pub blocks: u64,
    /// Ledger time at the verified height (ms).
    pub time_ms: u64,
    /// Transaction log size at the verified height.
    pub log_size: u64,
    /// Transactions replayed.
    pub transactions: u64,
    /// Transactions by kind.
    pub by_kind: TxCounts,
    /// Channel figures.
    pub channels: ChannelCounts,
    /// Accounts at the verified height.
    pub accounts: u64,
    /// The genesis supply; balances plus live deposits equalled it after every block.
    pub supply: u64,
    /// Checkpoints whose signatures verified.
    pub checkpoints: u64,
    /// Of those, the ones compared with the replayed blocks.
    pub checkpoints_matched: u64,
    /// The highest checkpoint seen (ahead of the blocks or not).
    pub newest_checkpoint: Option<CheckpointSummary>,
    /// The highest witnessed checkpoint seen.
    pub newest_witnessed: Option<CheckpointSummary>,
    /// Whether the blocks reach the newest witnessed checkpoint (true when there is none).
    pub reaches_newest_witnessed: bool,
    /// Blocks missing to reach the newest witnessed checkpoint (0 when reached).
    pub behind_newest_witnessed: u64,
    /// Whether the accepted checkpoint given to the auditor (if any) was compared and agreed.
    pub accepted_checked: Option<bool>,
    /// Time spent verifying (ms).
    pub verify_ms: f64,
    /// Transactions verified per second of that time.
    pub txs_per_s: f64,
}

impl Report {
    /// One paragraph of clear English for people.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "chain {} ({}): verified {} blocks, {} transactions, to height {} (log size {}); \
             supply {} conserved; {} accounts; {} channels opened, {} closed cooperatively, {} settled, \
             {} live locking {}",
            self.chain_id,
            self.network,
            self.blocks,
            self.transactions,
            self.height,
            self.log_size,
            self.supply,
            self.accounts,
            self.channels.opened,
            self.channels.closed,
            self.channels.settled,
            self.channels.live,
            self.channels.locked,
        );
        match &self.newest_witnessed {
            Some(w) if self.reaches_newest_witnessed => s.push_str(&format!(
                "; reaches the newest witnessed checkpoint (height {}, size {}, {} cosigners)",
                w.height, w.log_size, w.cosigners
            )),
            Some(w) => s.push_str(&format!(
                "; BEHIND the newest witnessed checkpoint it holds (height {}, size {}, {} cosigners) by {} blocks",
                w.height, w.log_size, w.cosigners, self.behind_newest_witnessed
            )),
            None => s.push_str("; no witnessed checkpoint"),
        }
        s
    }
}

/// An account at the verified height.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct AccountRow {
    /// Key (hex).
    pub key: String,
    /// Balance.
    pub balance: u64,
    /// Next nonce.
    pub nonce: u64,
}

/// A channel at the verified height.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct ChannelRow {
    /// Channel id (hex).
    pub channel_id: String,
    /// Party A (hex).
    pub party_a: String,
    /// Party B (hex).
    pub party_b: String,
    /// A's deposit.
    pub deposit_a: u64,
    /// B's deposit.
    pub deposit_b: u64,
    /// `open`, `closing` or `closed`.
    pub status: &'static str,
    /// While closing: end of the challenge window (ms).
    pub window_end_ms: Option<u64>,
    /// Once closed: what A and B received.
    pub payouts: Option<(u64, u64)>,
}

/// Every account and channel at the verified height.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct Balances {
    /// The verified height.
    pub height: u64,
    /// Accounts in key order.
    pub accounts: Vec<AccountRow>,
    /// Channels in id order.
    pub channels: Vec<ChannelRow>,
    /// Credit lines in (channel id, direction) order.
    pub credit_lines: Vec<CreditLineRow>,
    /// Debts in channel id order (repaid ones included; `status` tells them apart).
    pub debts: Vec<DebtRow>,
    /// What debtors owe in total, outstanding and not defaulted.
    pub debts_outstanding: u64,
    /// What debtors owe in total on defaulted debts.
    pub debts_defaulted: u64,
}

/// One credit line.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct CreditLineRow {
    /// Channel id (hex).
    pub channel_id: String,
    /// Creditor key (hex).
    pub creditor: String,
    /// Debtor key (hex).
    pub debtor: String,
    /// The limit in force (0: ended).
    pub limit: u64,
    /// The highest limit the line had: what caps a debt at settlement.
    pub peak: u64,
    /// Ledger time after which the line takes no new payments.
    pub expiry_ms: u64,
    /// Due time of a debt from this line.
    pub due_ms: u64,
}

/// One debt.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
pub struct DebtRow {
    /// The channel whose settlement recorded it (hex).
    pub channel_id: String,
    /// Creditor key (hex).
    pub creditor: String,
    /// Debtor key (hex).
    pub debtor: String,
    /// Recorded at settlement.
    pub amount: u64,
    /// Still owed.
    pub outstanding: u64,
    /// Ledger time of the settlement.
    pub created_ms: u64,
    /// Due time.
    pub due_ms: u64,
    /// When it was marked defaulted.
    pub defaulted_ms: Option<u64>,
    /// `outstanding`, `defaulted` (whatever is still owed) or `repaid`.
    pub status: &'static str,
}

impl Balances {
    /// The balances of a ledger state.
    pub fn of(state: &LedgerState) -> Balances {
        let period = state.genesis().challenge_period_ms;
        Balances {
            height: state.height(),
            accounts: state
                .accounts()
                .map(|(k, a)| AccountRow {
                    key: k.to_hex(),
                    balance: a.balance,
                    nonce: a.nonce,
                })
                .collect(),
            channels: state
                .channels()
                .map(|(id, c)| ChannelRow {
                    channel_id: id.0.to_hex(),
                    party_a: c.party_a.to_hex(),
                    party_b: c.party_b.to_hex(),
                    deposit_a: c.deposit_a,
                    deposit_b: c.deposit_b,
                    status: match c.status {
                        ChannelStatus::Open => "open",
                        ChannelStatus::Closing { .. } => "closing",
                        ChannelStatus::Closed { .. } => "closed",
                    },
                    window_end_ms: c.window_end_ms(period),
                    payouts: match c.status {
                        ChannelStatus::Closed { payout_a, payout_b } => Some((payout_a, payout_b)),
                        _ => None,
                    },
                })
                .collect(),
            credit_lines: state
                .credit_lines()
                .map(|((id, _), l)| CreditLineRow {
                    channel_id: id.0.to_hex(),
                    creditor: l.creditor.to_hex(),
                    debtor: l.debtor.to_hex(),
                    limit: l.limit,
                    peak: l.peak,
                    expiry_ms: l.expiry_ms,
                    due_ms: l.due_ms,
                })
                .collect(),
            debts: state
                .debts()
                .map(|(id, d)| DebtRow {
                    channel_id: id.0.to_hex(),
                    creditor: d.creditor.to_hex(),
                    debtor: d.debtor.to_hex(),
                    amount: d.amount,
                    outstanding: d.outstanding,
                    created_ms: d.created_ms,
                    due_ms: d.due_ms,
                    defaulted_ms: d.defaulted_ms,
                    status: if d.outstanding == 0 {
                        "repaid"
                    } else if d.defaulted_ms.is_some() {
                        "defaulted"
                    } else {
                        "outstanding"
                    },
                })
                .collect(),
            debts_outstanding: state
                .debts()
                .filter(|(_, d)| d.defaulted_ms.is_none())
                .map(|(_, d)| d.outstanding)
                .sum(),
            debts_defaulted: state
                .debts()
                .filter(|(_, d)| d.defaulted_ms.is_some())
                .map(|(_, d)| d.outstanding)
                .sum(),
        }
    }
}
