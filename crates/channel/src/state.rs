//! What survives a restart: [`PersistedChannel`], and the status and close state it holds.

use serde::{Deserialize, Serialize};

use paychan_protocol::channel::{CoopClose, SignedCoopClose, SignedOpen};
use paychan_protocol::{Signature, SignedProof};

/// Version of the [`PersistedChannel`] layout. Bump it on any change of the stored fields.
pub const PERSISTED_FORMAT_VERSION: u16 = 1;

/// Where a channel is in its life.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ChannelStatus {
    /// Both parties signed the open; no applied block holds it yet. Nothing can be paid.
    Pending,
    /// The open is on the ledger: payments flow both ways.
    Open,
    /// A cooperative close was proposed or signed: no new payments either way.
    ShuttingDown,
    /// A close (cooperative or unilateral) was submitted or seen on the ledger.
    Closing,
    /// The ledger paid the channel out.
    Closed,
}

impl ChannelStatus {
    /// The status as one lowercase word, as APIs and messages show it.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelStatus::Pending => "pending",
            ChannelStatus::Open => "open",
            ChannelStatus::ShuttingDown => "shutting_down",
            ChannelStatus::Closing => "closing",
            ChannelStatus::Closed => "closed",
        }
    }
}

impl std::fmt::Display for ChannelStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The cooperative or unilateral close the holder takes part in.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum CloseState {
    /// No close started.
    None,
    /// The holder proposed these balances and signed them; the peer's signature is missing.
    Proposed {
        /// The proposed balances.
        close: CoopClose,
        /// The holder's signature.
        sig: Signature,
    },
    /// Both parties signed: the transaction either may submit.
    CoopSigned(SignedCoopClose),
    /// The holder built a unilateral close.
    Unilateral,
}

/// Everything a channel needs after a restart, and nothing more. The node writes it (as one
/// record, e.g. postcard through `paychan_protocol::codec`) and reports the write with
/// [`crate::Channel::persisted`].
///
/// Every field only moves forward: writing a newer snapshot over an older one is always
/// correct.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PersistedChannel {
    /// Always [`PERSISTED_FORMAT_VERSION`] when written by this crate.
    pub format: u16,
    /// The open both parties signed; the channel id and keys derive from it.
    pub signed_open: SignedOpen,
    /// The channel's status.
    pub status: ChannelStatus,
    /// The holder may sign outgoing proofs with seq up to this bound. After a restart it
    /// continues strictly above it, so a lost proof's seq is never reused.
    pub seq_reserved: u64,
    /// The newest outgoing proof the peer acknowledged (a lower bound on the holder's
    /// outgoing state; the peer's Reestablish tells the rest).
    pub acked_own: Option<SignedProof>,
    /// The newest incoming proof the holder verified; what it acks, reports and can settle.
    pub incoming: Option<SignedProof>,
    /// The close in progress.
    pub close: CloseState,
}

#[cfg(test)]
mod tests {
    use super::ChannelStatus;
    use crate::ChannelError;

    #[test]
    fn statuses_read_as_lowercase_words_in_messages() {
        let all = [
            (ChannelStatus::Pending, "pending"),
            (ChannelStatus::Open, "open"),
            (ChannelStatus::ShuttingDown, "shutting_down"),
            (ChannelStatus::Closing, "closing"),
            (ChannelStatus::Closed, "closed"),
        ];
        for (status, word) in all {
            assert_eq!(status.to_string(), word);
            assert_eq!(
                ChannelError::Status { status }.to_string(),
                format!("the channel is {word}")
            );
        }
    }
}
