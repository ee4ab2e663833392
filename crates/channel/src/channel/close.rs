//! Closing: cooperative close, unilateral close, answering a close, expected payouts.

use paychan_protocol::channel::{settle_payouts, CoopClose, SignedCoopClose};
use paychan_protocol::codec::encode;
use paychan_protocol::crypto;
use paychan_protocol::hash::tags;
use paychan_protocol::ledger::{UnilateralClose, Update};
use paychan_protocol::wire::ChannelMsg;
use paychan_protocol::{ChannelId, Signature, Tx};

use super::Channel;
use crate::error::ChannelError;
use crate::state::{ChannelStatus, CloseState};

/// What the ledger pays each party when a channel settles.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Payouts {
    /// Paid to party A.
    pub a: u64,
    /// Paid to party B.
    pub b: u64,
}

impl Channel {
    /// Proposes a cooperative close with the balances of the holder's view
    /// ([`Channel::balances`]). Needs every outgoing proof acknowledged (so both views of the
    /// holder's direction agree). From here on the holder neither pays nor accepts payments:
    /// a payment taken after the proposal would not be in the balances the peer may sign.
    /// There is no way back to [`ChannelStatus::Open`]; if the peer refuses, close
    /// unilaterally.
    pub fn propose_close(&mut self) -> Result<ChannelMsg, ChannelError> {
        if self.status != ChannelStatus::Open {
            return Err(ChannelError::Status { status: self.status });
        }
        if self.out.restored {
            return Err(ChannelError::NotReestablished);
        }
        let unacked = self.out.window.len();
        if unacked > 0 {
            return Err(ChannelError::UnackedProofs { unacked });
        }
        let owed = self.credit_used_out().max(self.credit_used_in());
        if owed > 0 {
            return Err(ChannelError::CreditInUse { owed });
        }
        let (balance_a, balance_b) = self.balances();
        let close = CoopClose {
            chain_id: self.chain_id(),
            channel_id: self.id,
            balance_a,
            balance_b,
        };
        let sig = close.sign(&self.keypair);
        self.status = ChannelStatus::ShuttingDown;
        self.set_close(CloseState::Proposed { close, sig });
        self.meta_dirty = true;
        Ok(ChannelMsg::ClosePropose { close, sig })
    }

    /// Handles the peer's close proposal: signs it only if the balances sum to the total and
    /// give the holder at least its own view (its unacknowledged payments counted as paid).
    /// Returns the `CloseSign` to send and the close signed by both, ready to submit. The
    /// holder stops paying and receiving.
    ///
    /// If both parties proposed at once, the holder signs the peer's proposal when it is
    /// acceptable; either signed close may then reach the ledger, and both give each party
    /// at least its view.
    pub fn on_close_propose(
        &mut self,
        close: &CoopClose,
        sig: &Signature,
    ) -> Result<(ChannelMsg, SignedCoopClose), ChannelError> {
        if close.chain_id != self.chain_id() {
            return Err(ChannelError::WrongChain { got: close.chain_id });
        }
        self.check_channel_id(close.channel_id)?;
        match (&self.status, self.close_state()) {
            (ChannelStatus::Open, _) | (ChannelStatus::ShuttingDown, CloseState::Proposed { .. }) => {}
            (ChannelStatus::ShuttingDown, CloseState::CoopSigned(s)) if s.close == *close => {
                // A repeated proposal: answer it again.
                let sig = if self.holder_is_a() { s.sig_a } else { s.sig_b };
                return Ok((self.close_sign_msg(sig), *s));
            }
            (status, _) => return Err(ChannelError::Status { status: *status }),
        }
        if close.balance_a.checked_add(close.balance_b) != Some(self.total) {
            return Err(ChannelError::CloseBalanceMismatch);
        }
        if self.out.restored {
            return Err(ChannelError::NotReestablished);
        }
        let offered = if self.holder_is_a() {
            close.balance_a
        } else {
            close.balance_b
        };
        let expected = self.holder_balance();
        if offered < expected {
            return Err(ChannelError::CloseUnacceptable { offered, expected });
        }
        // The debt of what the peer paid on the holder's credit lives only in a settlement.
        let owed = self.credit_used_in();
        if owed > 0 {
            return Err(ChannelError::CreditInUse { owed });
        }
        crypto::verify(self.counterparty(), tags::COOP_CLOSE_SIG, &encode(close), sig)
            .map_err(|_| ChannelError::BadSignature)?;
        let own = close.sign(&self.keypair);
        let signed = self.assemble_close(*close, own, *sig);
        self.status = ChannelStatus::ShuttingDown;
        self.set_close(CloseState::CoopSigned(signed));
        self.meta_dirty = true;
        Ok((self.close_sign_msg(own), signed))
    }

    /// Handles the peer's signature over the holder's proposal: returns the close signed by
    /// both, ready to submit.
    pub fn on_close_sign(
        &mut self,
        channel_id: ChannelId,
        sig: &Signature,
    ) -> Result<SignedCoopClose, ChannelError> {
        self.check_channel_id(channel_id)?;
        let (close, own) = match self.close_state() {
            CloseState::Proposed { close, sig } => (*close, *sig),
            // Both proposed and the holder already signed the peer's proposal.
            CloseState::CoopSigned(s) => return Ok(*s),
            _ => {
                return Err(ChannelError::UnexpectedMessage(
                    "close signature without a proposal",
                ))
            }
        };
        crypto::verify(self.counterparty(), tags::COOP_CLOSE_SIG, &encode(&close), sig)
            .map_err(|_| ChannelError::BadSignature)?;
        let signed = self.assemble_close(close, own, *sig);
        self.set_close(CloseState::CoopSigned(signed));
        self.meta_dirty = true;
        Ok(signed)
    }

    fn assemble_close(&self, close: CoopClose, own: Signature, theirs: Signature) -> SignedCoopClose {
        let (sig_a, sig_b) = if self.holder_is_a() {
            (own, theirs)
        } else {
            (theirs, own)
        };
        SignedCoopClose { close, sig_a, sig_b }
    }

    fn close_sign_msg(&self, sig: Signature) -> ChannelMsg {
        ChannelMsg::CloseSign {
            channel_id: self.id,
            sig,
        }
    }

    /// The cooperative close transaction, once both signed.
    pub fn coop_close_tx(&self) -> Option<Tx> {
        match self.close_state() {
            CloseState::CoopSigned(s) => Some(Tx::CoopClose(*s)),
            _ => None,
        }
    }

    /// A unilateral close signed by the holder (with the key the channel holds), carrying the
    /// newest incoming proof it holds (its own proofs only raise what it pays, so it leaves
    /// their slot empty: the peer's node answers with them). The holder stops paying and
    /// receiving. Calling it again rebuilds the same transaction.
    pub fn unilateral_close_tx(&mut self) -> Result<Tx, ChannelError> {
        match self.status {
            ChannelStatus::Pending | ChannelStatus::Closed => {
                return Err(ChannelError::Status { status: self.status })
            }
            ChannelStatus::Open | ChannelStatus::ShuttingDown | ChannelStatus::Closing => {}
        }
        let (proof_ab, proof_ba) = self.by_direction(None, self.inc.newest.as_deref().copied());
        let body = UnilateralClose {
            chain_id: self.chain_id(),
            channel_id: self.id,
            closer: self.keypair.public(),
            proof_ab,
            proof_ba,
        };
        if self.status != ChannelStatus::Closing {
            self.status = ChannelStatus::Closing;
            self.meta_dirty = true;
        }
        // A cooperative close signed by both stays on record: it is still valid to submit.
        if matches!(self.close_state(), CloseState::None | CloseState::Proposed { .. }) {
            self.set_close(CloseState::Unilateral);
            self.meta_dirty = true;
        }
        Ok(Tx::unilateral_close(body, &self.keypair))
    }

    /// Answers a close on the ledger: given the transferred totals of the proofs the ledger
    /// holds per direction (0 for none), returns an `Update` with the holder's newest incoming
    /// proof if it is higher than the ledger's. The holder's own direction is never raised.
    pub fn answer_close(&self, ledger_best_ab: u64, ledger_best_ba: u64) -> Option<Tx> {
        let (_, ledger_in) = self.as_out_in(ledger_best_ab, ledger_best_ba);
        let newest = *self.inc.newest.as_deref()?;
        if newest.proof.transferred <= ledger_in {
            return None;
        }
        let (proof_ab, proof_ba) = self.by_direction(None, Some(newest));
        Some(Tx::Update(Update {
            chain_id: self.chain_id(),
            channel_id: self.id,
            proof_ab,
            proof_ba,
        }))
    }

    /// The payouts when the channel settles after both parties submitted their newest proofs:
    /// per direction the highest of the ledger's total and the holder's (its newest incoming
    /// proof; its newest signed outgoing proof, which the peer may hold). Conservative for the
    /// holder: it counts every payment it signed as delivered.
    pub fn expected_payouts(&self, ledger_best_ab: u64, ledger_best_ba: u64) -> Payouts {
        let (ledger_out, ledger_in) = self.as_out_in(ledger_best_ab, ledger_best_ba);
        let t_out = ledger_out.max(self.out.transferred);
        let t_in = ledger_in.max(self.inc.transferred);
        let (t_ab, t_ba) = self.by_direction(t_out, t_in);
        let o = &self.signed_open.open;
        let (a, b) = settle_payouts(o.deposit_a, o.deposit_b, t_ab, t_ba);
        Payouts { a, b }
    }

    /// Orders an (A to B, B to A) pair as (outgoing, incoming).
    fn as_out_in<T>(&self, ab: T, ba: T) -> (T, T) {
        // Swapping the pair for a B holder is its own inverse.
        self.by_direction(ab, ba)
    }
}
