//! What the channel manager needs from a ledger.

use std::future::Future;
use std::pin::Pin;

use paychan_protocol::{ChannelId, Hash32, PublicKey, Tx};

/// A channel as the ledger sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerChannel {
    /// Open on the ledger.
    Open,
    /// Unilaterally closed; the window ends at `window_end_ms` (ledger time).
    Closing {
        /// End of the challenge window.
        window_end_ms: u64,
        /// Highest transferred A to B the ledger holds.
        best_ab: u64,
        /// Highest transferred B to A the ledger holds.
        best_ba: u64,
    },
    /// Paid out.
    Closed {
        /// A's payout.
        payout_a: u64,
        /// B's payout.
        payout_b: u64,
    },
}

impl LedgerChannel {
    /// The status of channel `id` in a ledger state, if it knows the channel.
    pub fn of(state: &paychan_ledger::LedgerState, id: &ChannelId) -> Option<LedgerChannel> {
        use paychan_ledger::ChannelStatus;
        use paychan_protocol::Direction;
        let entry = state.channel(id)?;
        let period = state.genesis().challenge_period_ms;
        Some(match &entry.status {
            ChannelStatus::Open => LedgerChannel::Open,
            ChannelStatus::Closing { .. } => LedgerChannel::Closing {
                window_end_ms: entry.window_end_ms(period).unwrap_or(u64::MAX),
                best_ab: entry.best(Direction::AToB).map_or(0, |p| p.proof.transferred),
                best_ba: entry.best(Direction::BToA).map_or(0, |p| p.proof.transferred),
            },
            ChannelStatus::Closed { payout_a, payout_b } => LedgerChannel::Closed {
                payout_a: *payout_a,
                payout_b: *payout_b,
            },
        })
    }
}

/// A boxed future, so that the trait stays object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The manager's view of the ledger. A node implements it over its verified replica; a client
/// over a verified view of the node it talks to.
pub trait LedgerAccess: Send + Sync + 'static {
    /// Chain id.
    fn chain_id(&self) -> Hash32;
    /// Ledger time of the newest block the view holds (ms).
    fn time_ms(&self) -> u64;
    /// Height of the newest block the view holds.
    fn height(&self) -> u64;
    /// Height of the newest checkpoint known to be witnessed (threshold of genesis witnesses)
    /// and consistent with the view. Payouts count only once this covers them.
    fn witnessed_height(&self) -> u64;
    /// Whether this view has evidence that the settlement of channel `id` ignored a valid
    /// update (the sequencer censored it): such a settlement will never be witnessed.
    fn censored(&self, _id: &ChannelId) -> bool {
        false
    }
    /// The channel's status on the ledger, if the ledger knows it.
    fn channel(&self, id: &ChannelId) -> Option<LedgerChannel>;
    /// An account's balance.
    fn balance(&self, key: &PublicKey) -> u64;
    /// Opens that blocks above height `after` applied and that name `key` as a party, oldest
    /// first, reading at most [`crate::manager::OPENS_SCAN_BLOCKS_MAX`] blocks: the manager
    /// adopts every channel that locks this key's funds, including one a peer completed and
    /// submitted without telling us. A view without the blocks reports nothing, scanned up to
    /// its height.
    /// The fee the ledger charges for `tx`, from its genesis (0 where unknown).
    fn fee(&self, _tx: &Tx) -> u64 {
        0
    }
    /// The credit line of channel `id` whose debtor pays in direction `dir`, if the ledger
    /// records one (none where the view cannot tell).
    fn credit_line(
        &self,
        _id: &ChannelId,
        _dir: paychan_protocol::Direction,
    ) -> Option<paychan_ledger::CreditLine> {
        None
    }
    fn opens_naming(&self, _key: &PublicKey, _after: u64) -> crate::manager::OpensScan {
        crate::manager::OpensScan {
            scanned_to: self.height(),
            opens: Vec::new(),
        }
    }
    /// Submits a transaction (disputes are also spread to every node). Resubmitting is harmless.
    fn submit(&self, tx: Tx) -> BoxFuture<'_, Result<(), String>>;
}
