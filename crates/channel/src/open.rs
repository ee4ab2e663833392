//! Open negotiation: three messages, then both parties hold the same [`SignedOpen`].
//!
//! ```text
//! A (proposer)                                  B (acceptor)
//! OpenProposal::new(.., salt_a) ---OpenPropose--> accept_open(policy, salt_b)
//!   proposal.on_accept(..)    <--OpenAccept---    (B's salt filled in, B signs)
//!   -> SignedOpen            ---OpenSigned--->    acceptance.on_signed(..) -> SignedOpen
//! ```
//! Either party may then submit `Tx::Open(signed_open)` and build its [`crate::Channel`] from
//! it. Salts are passed in (drawn by the caller), like every other source of randomness here.

use paychan_protocol::channel::{ChannelId, ChannelOpen, SignedOpen};
use paychan_protocol::wire::ChannelMsg;
use paychan_protocol::{Hash32, Keypair, PublicKey, Signature};

use crate::error::ChannelError;

/// B's rules for accepting a proposal. Time is ledger time, passed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenPolicy {
    /// The ledger B is on.
    pub chain_id: Hash32,
    /// Ledger time now (ms).
    pub now_ms: u64,
    /// The least time (ms) the open must stay valid, so that it can still be included.
    pub expiry_ms_min_ahead: u64,
    /// The most time (ms) ahead the expiry may be (bounds how long B's signature stays usable).
    pub expiry_ms_max_ahead: u64,
    /// The most B will lock itself.
    pub deposit_own_max: u64,
    /// The least A must lock.
    pub deposit_peer_min: u64,
}

/// Checks that hold for every open, whoever built it.
fn check_shape(open: &ChannelOpen) -> Result<(), ChannelError> {
    if open.party_a == open.party_b {
        return Err(ChannelError::OpenRefused("both parties have the same key"));
    }
    match open.total() {
        None => Err(ChannelError::OpenRefused("deposits overflow")),
        Some(0) => Err(ChannelError::OpenRefused("no deposit")),
        Some(_) => Ok(()),
    }
}

/// A's side: the proposal it sent, waiting for B's acceptance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenProposal {
    open: ChannelOpen,
}

impl OpenProposal {
    /// A proposes a channel to `party_b`, with `salt_a` (fresh random bytes from the caller)
    /// and B's salt zero for B to fill in.
    pub fn new(
        chain_id: Hash32,
        holder: &Keypair,
        party_b: PublicKey,
        deposit_a: u64,
        deposit_b: u64,
        salt_a: Hash32,
        expiry_ms: u64,
    ) -> Result<Self, ChannelError> {
        let open = ChannelOpen {
            chain_id,
            party_a: holder.public(),
            party_b,
            deposit_a,
            deposit_b,
            salt_a,
            salt_b: Hash32::ZERO,
            expiry_ms,
        };
        check_shape(&open)?;
        Ok(OpenProposal { open })
    }

    /// The proposed open.
    pub fn open(&self) -> &ChannelOpen {
        &self.open
    }

    /// The `OpenPropose` message to send.
    pub fn message(&self) -> ChannelMsg {
        ChannelMsg::OpenPropose {
            open: self.open.clone(),
        }
    }

    /// Handles B's `OpenAccept`: the final open must be the proposal with only B's salt
    /// changed, and B's signature over it must verify. Returns the open signed by both and the
    /// `OpenSigned` message to send.
    pub fn on_accept(
        &self,
        holder: &Keypair,
        open: &ChannelOpen,
        sig_b: &Signature,
    ) -> Result<(SignedOpen, ChannelMsg), ChannelError> {
        if holder.public() != self.open.party_a {
            return Err(ChannelError::NotAParty);
        }
        let expected = ChannelOpen {
            salt_b: open.salt_b,
            ..self.open.clone()
        };
        if *open != expected {
            return Err(ChannelError::OpenMismatch);
        }
        let sig_a = open.sign(holder);
        let signed = SignedOpen {
            open: open.clone(),
            sig_a,
            sig_b: *sig_b,
        };
        // Checks B's signature (and our own, which cannot fail) under the ledger's rule.
        signed.verify().map_err(|_| ChannelError::BadSignature)?;
        let msg = ChannelMsg::OpenSigned {
            channel_id: open.channel_id(),
            sig_a,
        };
        Ok((signed, msg))
    }
}

/// B's side: the open it accepted and signed, waiting for A's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenAcceptance {
    open: ChannelOpen,
    sig_b: Signature,
    channel_id: ChannelId,
}

/// B checks A's proposal against its policy, fills in `salt_b` (fresh random bytes from the
/// caller) and signs. Returns its pending acceptance and the `OpenAccept` message.
pub fn accept_open(
    holder: &Keypair,
    proposal: &ChannelOpen,
    policy: &OpenPolicy,
    salt_b: Hash32,
) -> Result<(OpenAcceptance, ChannelMsg), ChannelError> {
    if proposal.chain_id != policy.chain_id {
        return Err(ChannelError::WrongChain {
            got: proposal.chain_id,
        });
    }
    if proposal.party_b != holder.public() {
        return Err(ChannelError::OpenRefused(
            "the proposal is not addressed to this key",
        ));
    }
    if proposal.salt_b != Hash32::ZERO {
        return Err(ChannelError::OpenRefused("B's salt is B's to choose"));
    }
    check_shape(proposal)?;
    if proposal.deposit_b > policy.deposit_own_max {
        return Err(ChannelError::OpenRefused(
            "asks B to lock more than its policy allows",
        ));
    }
    if proposal.deposit_a < policy.deposit_peer_min {
        return Err(ChannelError::OpenRefused(
            "A's deposit is below the policy minimum",
        ));
    }
    let ahead = proposal.expiry_ms.checked_sub(policy.now_ms);
    match ahead {
        Some(a) if a >= policy.expiry_ms_min_ahead && a <= policy.expiry_ms_max_ahead => {}
        _ => return Err(ChannelError::OpenRefused("expiry outside the accepted range")),
    }
    let open = ChannelOpen {
        salt_b,
        ..proposal.clone()
    };
    let sig_b = open.sign(holder);
    let msg = ChannelMsg::OpenAccept {
        open: open.clone(),
        sig_b,
    };
    let channel_id = open.channel_id();
    Ok((
        OpenAcceptance {
            open,
            sig_b,
            channel_id,
        },
        msg,
    ))
}

impl OpenAcceptance {
    /// The final open B signed.
    pub fn open(&self) -> &ChannelOpen {
        &self.open
    }

    /// The channel id of the final open.
    pub fn channel_id(&self) -> ChannelId {
        self.channel_id
    }

    /// Handles A's `OpenSigned`: checks the id and A's signature, returns the open signed by
    /// both.
    pub fn on_signed(&self, channel_id: ChannelId, sig_a: &Signature) -> Result<SignedOpen, ChannelError> {
        if channel_id != self.channel_id {
            return Err(ChannelError::WrongChannel { got: channel_id });
        }
        let signed = SignedOpen {
            open: self.open.clone(),
            sig_a: *sig_a,
            sig_b: self.sig_b,
        };
        signed.verify().map_err(|_| ChannelError::BadSignature)?;
        Ok(signed)
    }
}
