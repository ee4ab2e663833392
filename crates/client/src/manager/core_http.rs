//! Payments carried in HTTP requests (a 402 gateway in front of a web service), on both sides.
//!
//! Payee: [`Command::HttpCheck`] checks one proof as the stream would (it must link to the
//! newest proof taken from that payer and raise `transferred` by at least the price) and marks
//! it in flight, so that no second request rides on it; [`Command::HttpSettle`] takes it once
//! the upstream answered (answered when its snapshot is durable: the payment is then
//! settleable) or, when the upstream failed, keeps it uncharged, so the payer's next request
//! may carry the very same proof. Payer: [`Command::SignDetached`] signs one proof that is
//! returned instead of sent on the stream; the payee's ack still comes on the stream.

use paychan_channel::ChannelError;
use paychan_protocol::crypto::BatchVerifier;
use paychan_protocol::wire::PayItem;
use paychan_protocol::{ChannelId, Hash32, Payment, PublicKey, SignedProof};

use super::{Command, CommandId, Manager, Response};
use crate::manager::limits::ROUND_HTTP_CHECKS_MAX;
use crate::manager::ManagerError;

/// Why a payment carried in a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpRefusalKind {
    /// No channel of this key has that id.
    UnknownChannel,
    /// The proof is not one proof with one payment.
    Malformed,
    /// The payment's reference is not the one of this request.
    WrongReference,
    /// The proof does not fit the channel (seq, link, amounts, signature, status).
    Invalid,
    /// The proof raises `transferred` by less than the price.
    Underpaid,
    /// Another request of this channel is in flight: payments of one channel are sequential.
    Busy,
    /// The proof goes beyond the payer's deposit + what it received + the credit line this
    /// node extends to it.
    CreditLimit,
}

impl HttpRefusalKind {
    /// A short stable name, for the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpRefusalKind::UnknownChannel => "unknown_channel",
            HttpRefusalKind::Malformed => "malformed",
            HttpRefusalKind::WrongReference => "wrong_reference",
            HttpRefusalKind::Invalid => "invalid_proof",
            HttpRefusalKind::Underpaid => "underpaid",
            HttpRefusalKind::Busy => "busy",
            HttpRefusalKind::CreditLimit => "credit_limit",
        }
    }
}

/// A payment the payee refused, with what the payer needs to resynchronise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRefusal {
    /// Why.
    pub kind: HttpRefusalKind,
    /// In words.
    pub text: String,
    /// The newest proof of the payer that the payee holds durably (none before the first).
    pub newest: Option<Box<SignedProof>>,
}

/// What the payee's check of a carried payment found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpChecked {
    /// What the proof adds to `transferred`.
    pub amount: u64,
    /// The proof is one whose request failed upstream and that was never charged.
    pub reused: bool,
}

/// What the gateway keeps per channel between check and settle.
#[derive(Debug, Default)]
pub(super) struct HttpState {
    /// The checked proof (signature verified) of the request in flight on each channel.
    pub(super) in_flight: std::collections::BTreeMap<ChannelId, SignedProof>,
    /// A verified proof whose request failed upstream: not charged, and accepted once more
    /// for the payer's next request.
    pub(super) uncharged: std::collections::BTreeMap<ChannelId, Hash32>,
    /// Answers that wait for a batch (tag) to be durable.
    pub(super) held_replies: Vec<(u64, CommandId, Response)>,
    /// Checks asked for in this round: answered together at its end
    /// ([`Manager::http_check_round`]), their signatures verified in one batch; at most
    /// [`ROUND_HTTP_CHECKS_MAX`].
    pub(super) pending_checks: Vec<PendingCheck>,
}

/// One [`Command::HttpCheck`] waiting for the end of the round.
#[derive(Debug)]
pub(super) struct PendingCheck {
    cmd: CommandId,
    item: PayItem,
    price: u64,
    reference: Hash32,
}

impl Manager {
    pub(super) fn on_http_command(&mut self, cmd: CommandId, command: Command) {
        match command {
            Command::HttpCheck {
                item,
                price,
                reference,
            } => {
                if self.http.pending_checks.len() >= ROUND_HTTP_CHECKS_MAX {
                    // A full round is answered now, in order, before this check joins the next.
                    self.http_check_round();
                }
                self.http.pending_checks.push(PendingCheck {
                    cmd,
                    item,
                    price,
                    reference,
                })
            }
            Command::HttpSettle { item, answered } => self.http_settle(cmd, &item, answered),
            Command::SignDetached {
                id,
                amount,
                reference,
            } => {
                let r = self.sign_detached(&id, amount, reference);
                self.reply(cmd, r.map(Response::Signed));
            }
            Command::Received { id } => {
                let r = self
                    .channels
                    .get(&id)
                    .map(|s| Response::Received(s.ch.received_durable()))
                    .ok_or(ManagerError::UnknownChannel(id));
                self.reply(cmd, r);
            }
            _ => {}
        }
    }

    /// Answers the checks asked for in this round, in the order asked, each as it would be
    /// answered alone. The signatures come first, in one batch (several times cheaper per
    /// signature than one by one; one by one only if the batch fails), for every check whose
    /// channel exists and is not held by a request in flight (the others are refused before
    /// any signature matters); then each check runs in turn with its signature's answer.
    pub(super) fn http_check_round(&mut self) {
        let pending = std::mem::take(&mut self.http.pending_checks);
        if pending.is_empty() {
            return;
        }
        let keys: Vec<Option<PublicKey>> = pending
            .iter()
            .map(|p| {
                let id = p.item.proof.proof.channel_id;
                match self.http.in_flight.contains_key(&id) {
                    true => None,
                    false => self.channels.get(&id).map(|slot| slot.ch.counterparty_key()),
                }
            })
            .collect();
        let mut batch = BatchVerifier::new();
        for (p, key) in pending.iter().zip(&keys) {
            if let Some(key) = key {
                p.item.proof.queue(key, &mut batch);
            }
        }
        let all_valid = batch.len() > 1 && batch.verify().is_ok();
        for (p, key) in pending.iter().zip(&keys) {
            let signed = key.map(|key| all_valid || p.item.proof.verify(&key).is_ok());
            let r = self.http_check(&p.item, p.price, p.reference, signed);
            self.reply(p.cmd, Ok(Response::HttpChecked(r)));
        }
    }

    /// The stream's checks of a carried payment, in the stream's order; `signed` is whether its
    /// signature verified, if that was found already (else it is verified here). On success the
    /// proof is held in flight.
    fn http_check(
        &mut self,
        item: &PayItem,
        price: u64,
        reference: Hash32,
        signed: Option<bool>,
    ) -> Result<HttpChecked, HttpRefusal> {
        let id = item.proof.proof.channel_id;
        let Some(slot) = self.channels.get(&id) else {
            return Err(HttpRefusal {
                kind: HttpRefusalKind::UnknownChannel,
                text: format!("no channel {id} with this node"),
                newest: None,
            });
        };
        let newest = slot.ch.durable_incoming().copied().map(Box::new);
        let refuse = |kind, text: String| Err(HttpRefusal { kind, text, newest });
        if self.http.in_flight.contains_key(&id) {
            return refuse(
                HttpRefusalKind::Busy,
                "another request paid on this channel is in flight".into(),
            );
        }
        if item.payments.len() != 1 {
            return refuse(
                HttpRefusalKind::Malformed,
                format!("{} payments in the proof's memo, not one", item.payments.len()),
            );
        }
        let hash = item.proof.proof.hash();
        let reused = self.http.uncharged.get(&id) == Some(&hash);
        // A proof whose request failed upstream was checked against that request; it pays for
        // the next one, whichever it is.
        if !reused && item.payments[0].reference != reference {
            return refuse(
                HttpRefusalKind::WrongReference,
                "the payment's reference is not the hash of this request".into(),
            );
        }
        let received = match slot.ch.check_detached_unsigned(std::slice::from_ref(item)) {
            Ok(r) => r,
            Err(e @ ChannelError::CreditLimit { .. }) => {
                return refuse(HttpRefusalKind::CreditLimit, e.to_string())
            }
            Err(e) => return refuse(HttpRefusalKind::Invalid, e.to_string()),
        };
        // After every other check of the burst, before the price: as `check_detached` does.
        if !signed.unwrap_or_else(|| item.proof.verify(&slot.ch.counterparty_key()).is_ok()) {
            return refuse(HttpRefusalKind::Invalid, ChannelError::BadSignature.to_string());
        }
        if received.amount < price {
            return refuse(
                HttpRefusalKind::Underpaid,
                format!("the proof pays {}, the price is {price}", received.amount),
            );
        }
        self.http.in_flight.insert(id, item.proof);
        Ok(HttpChecked {
            amount: received.amount,
            reused,
        })
    }

    fn http_settle(&mut self, cmd: CommandId, item: &PayItem, answered: bool) {
        let id = item.proof.proof.channel_id;
        let hash = item.proof.proof.hash();
        // The very proof that was checked, signature included: its signature is not verified
        // again when it is taken.
        let Some(verified) = self.http.in_flight.get(&id).copied().filter(|p| *p == item.proof) else {
            return self.reply(
                cmd,
                Err(ManagerError::Refused("no such payment in flight".into())),
            );
        };
        self.http.in_flight.remove(&id);
        if !answered {
            self.http.uncharged.insert(id, hash);
            return self.reply(cmd, Ok(Response::HttpSettled { charged: false }));
        }
        let Some(slot) = self.channels.get_mut(&id) else {
            return self.reply(cmd, Err(ManagerError::UnknownChannel(id)));
        };
        match slot
            .ch
            .receive_detached_verified(std::slice::from_ref(item), &verified)
        {
            Ok(_) => {
                self.http.uncharged.remove(&id);
                // Answered once the snapshot that holds the proof is durable.
                self.batch_wanted = true;
                self.http
                    .held_replies
                    .push((self.next_batch, cmd, Response::HttpSettled { charged: true }));
            }
            // The stream took a burst meanwhile, or the channel left `Open`.
            Err(e) => self.reply(cmd, Err(ManagerError::Channel(e))),
        }
    }

    fn sign_detached(
        &mut self,
        id: &ChannelId,
        amount: u64,
        reference: Hash32,
    ) -> Result<PayItem, ManagerError> {
        let slot = self
            .channels
            .get_mut(id)
            .ok_or(ManagerError::UnknownChannel(*id))?;
        let proof = slot.ch.pay(amount, reference)?;
        Ok(PayItem {
            proof,
            payments: vec![Payment { amount, reference }],
        })
    }

    /// Releases the answers that waited for `batch`.
    pub(super) fn http_persisted(&mut self, batch: u64) {
        let (ready, wait): (Vec<_>, Vec<_>) = std::mem::take(&mut self.http.held_replies)
            .into_iter()
            .partition(|(t, _, _)| *t <= batch);
        self.http.held_replies = wait;
        for (_, cmd, r) in ready {
            self.reply(cmd, Ok(r));
        }
    }

    /// The answers that waited for the failed `batch` wait for the next one.
    pub(super) fn http_persist_failed(&mut self, batch: u64) {
        let next = self.next_batch;
        for (t, _, _) in self.http.held_replies.iter_mut().filter(|(t, _, _)| *t == batch) {
            *t = next;
        }
    }
}
