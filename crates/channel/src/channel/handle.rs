//! One entry point for every channel message from the peer.

use paychan_protocol::channel::SignedCoopClose;
use paychan_protocol::wire::ChannelMsg;

use super::{Acked, Channel, Received};
use crate::error::ChannelError;

/// What handling one message produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Handled {
    /// Messages to send to the peer, in order.
    pub send: Vec<ChannelMsg>,
    /// A burst was taken: persist it, then call [`Channel::persisted`] for its ack.
    pub received: Option<Received>,
    /// An ack was applied.
    pub acked: Option<Acked>,
    /// A cooperative close is now signed by both parties: submit it.
    pub coop_close: Option<SignedCoopClose>,
}

impl Channel {
    /// Dispatches a message of this channel from the peer to its handler. Open negotiation
    /// messages belong to [`crate::open`] and are refused here; `Error` frames are accepted
    /// and change nothing (the node logs them).
    pub fn handle_message(&mut self, msg: &ChannelMsg) -> Result<Handled, ChannelError> {
        let mut out = Handled::default();
        match msg {
            ChannelMsg::Pay { channel_id, items } => {
                self.check_channel_id(*channel_id)?;
                // A retransmission repeats proofs the holder may already have verified: they
                // are skipped unread (they change nothing), and the rest must link to the
                // newest. A burst of nothing new is answered with nothing.
                let fresh = self.unseen(items);
                if items.is_empty() || !fresh.is_empty() {
                    out.received = Some(self.receive(fresh)?);
                }
            }
            ChannelMsg::Ack {
                channel_id,
                direction,
                seq,
                hash,
            } => {
                self.check_channel_id(*channel_id)?;
                out.acked = Some(self.on_ack(*direction, *seq, *hash)?);
            }
            ChannelMsg::Reestablish {
                channel_id,
                newest_from_you,
            } => {
                self.check_channel_id(*channel_id)?;
                out.send = self.on_reestablish(newest_from_you.as_ref())?;
            }
            ChannelMsg::ClosePropose { close, sig } => {
                let (reply, signed) = self.on_close_propose(close, sig)?;
                out.send.push(reply);
                out.coop_close = Some(signed);
            }
            ChannelMsg::CloseSign { channel_id, sig } => {
                out.coop_close = Some(self.on_close_sign(*channel_id, sig)?);
            }
            ChannelMsg::Error { channel_id, .. } => {
                if let Some(id) = channel_id {
                    self.check_channel_id(*id)?;
                }
            }
            ChannelMsg::OpenPropose { .. }
            | ChannelMsg::OpenAccept { .. }
            | ChannelMsg::OpenSigned { .. } => {
                return Err(ChannelError::UnexpectedMessage(
                    "open negotiation on an existing channel",
                ));
            }
            ChannelMsg::Hello { .. } => {
                return Err(ChannelError::UnexpectedMessage(
                    "stream greeting sent to a channel",
                ));
            }
        }
        Ok(out)
    }
}
