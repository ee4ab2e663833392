//! The bytes of a pay frame (`Envelope { epoch, msg: ChannelMsg::Pay { .. } }`), written and
//! read by hand: the same postcard bytes, without serde's walk over every byte of every
//! 32-byte reference and signature.
//!
//! A buffered proof carries up to 64 payments, each with a 32-byte reference: through serde,
//! the payee decoded a frame byte by byte and then encoded it again for the canonical check,
//! and the payer encoded it byte by byte. A profile of the payee at 64 payments per proof put
//! about 15 % of its time there. The layout (PROTOCOL.md §3 and §6):
//!
//! ```text
//! varint epoch | varint 3 (Pay) | channel_id[32] | varint n | n × item
//! item = chain_id[32] channel_id[32] varint direction varint seq varint transferred
//!        prev[32] memo_hash[32] signature[64] | varint m | m × (varint amount, reference[32])
//! ```
//!
//! [`decode`] is strict and sound, never complete: it returns a value only for bytes that are
//! exactly the canonical encoding of that value (minimal varints, no trailing bytes), and
//! `None` for anything else, which then takes the general path ([`crate::codec::decode`]) for
//! its value or its error. Tests check both against postcard.

use crate::channel::{BalanceProof, ChannelId, Direction, Payment, SignedProof};
use crate::crypto::Signature;
use crate::hash::Hash32;
use crate::wire::{ChannelMsg, Envelope, PayItem};

/// Index of `ChannelMsg::Pay` in declaration order.
const PAY_VARIANT: u64 = 3;
/// The shortest item: a proof with one-byte varints and an empty payment list.
const ITEM_BYTES_MIN: usize = 32 + 32 + 1 + 1 + 1 + 32 + 32 + 64 + 1;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The canonical bytes of a pay frame (the same as postcard's).
pub(crate) fn encode(epoch: u64, channel_id: &ChannelId, items: &[PayItem]) -> Vec<u8> {
    let per_item: usize = items.iter().map(|i| 220 + 42 * i.payments.len()).sum();
    let mut out = Vec::with_capacity(48 + per_item);
    put_varint(&mut out, epoch);
    put_varint(&mut out, PAY_VARIANT);
    out.extend_from_slice(&channel_id.0 .0);
    put_varint(&mut out, items.len() as u64);
    for item in items {
        let p = &item.proof.proof;
        out.extend_from_slice(&p.chain_id.0);
        out.extend_from_slice(&p.channel_id.0 .0);
        put_varint(&mut out, p.direction as u64);
        put_varint(&mut out, p.seq);
        put_varint(&mut out, p.transferred);
        out.extend_from_slice(&p.prev.0);
        out.extend_from_slice(&p.memo_hash.0);
        out.extend_from_slice(&item.proof.signature.0);
        put_varint(&mut out, item.payments.len() as u64);
        for pay in &item.payments {
            put_varint(&mut out, pay.amount);
            out.extend_from_slice(&pay.reference.0);
        }
    }
    out
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.bytes.split_first_chunk::<N>()?;
        self.bytes = rest;
        Some(*head)
    }

    /// A minimal varint of at most 64 bits.
    fn varint(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let (&b, rest) = self.bytes.split_first()?;
            self.bytes = rest;
            let low = u64::from(b & 0x7f);
            if i == 9 && b > 1 {
                return None;
            }
            v |= low << (7 * i);
            if b & 0x80 == 0 {
                // A last byte of 0 after others is an overlong encoding.
                return (i == 0 || b != 0).then_some(v);
            }
        }
        None
    }

    /// A varint that postcard reads as a `u32` (a variant index).
    fn varint_u32(&mut self) -> Option<u64> {
        self.varint().filter(|v| *v <= u64::from(u32::MAX))
    }

    /// A sequence length; each element takes at least `min_element` bytes, so a length the
    /// rest cannot hold is refused before anything is allocated for it.
    fn len(&mut self, min_element: usize) -> Option<usize> {
        let n = usize::try_from(self.varint()?).ok()?;
        (n <= self.bytes.len() / min_element).then_some(n)
    }
}

/// The pay frame `bytes` encode canonically, or `None` (not a pay frame, or anything the
/// general decoder must judge).
pub(crate) fn decode(bytes: &[u8]) -> Option<Envelope> {
    let mut r = Reader { bytes };
    let epoch = r.varint()?;
    if r.varint_u32()? != PAY_VARIANT {
        return None;
    }
    let channel_id = ChannelId(Hash32(r.take::<32>()?));
    let n = r.len(ITEM_BYTES_MIN)?;
    let mut items = Vec::with_capacity(n);
    for _ in 0..n {
        let chain_id = Hash32(r.take::<32>()?);
        let proof_channel = ChannelId(Hash32(r.take::<32>()?));
        let direction = match r.varint_u32()? {
            0 => Direction::AToB,
            1 => Direction::BToA,
            _ => return None,
        };
        let seq = r.varint()?;
        let transferred = r.varint()?;
        let prev = Hash32(r.take::<32>()?);
        let memo_hash = Hash32(r.take::<32>()?);
        let signature = Signature(r.take::<64>()?);
        let m = r.len(33)?;
        let mut payments = Vec::with_capacity(m);
        for _ in 0..m {
            let amount = r.varint()?;
            let reference = Hash32(r.take::<32>()?);
            payments.push(Payment { amount, reference });
        }
        items.push(PayItem {
            proof: SignedProof {
                proof: BalanceProof {
                    chain_id,
                    channel_id: proof_channel,
                    direction,
                    seq,
                    transferred,
                    prev,
                    memo_hash,
                },
                signature,
            },
            payments,
        });
    }
    if !r.bytes.is_empty() {
        return None;
    }
    Some(Envelope {
        epoch,
        msg: ChannelMsg::Pay { channel_id, items },
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::codec;

    fn hash() -> impl Strategy<Value = Hash32> {
        any::<[u8; 32]>().prop_map(Hash32)
    }

    /// Values of every varint size, 0 and u64::MAX included.
    fn varint_value() -> impl Strategy<Value = u64> {
        prop_oneof![
            Just(0u64),
            Just(u64::MAX),
            (0u32..64).prop_flat_map(|bits| 0..=(u64::MAX >> (63 - bits))),
        ]
    }

    fn item() -> impl Strategy<Value = PayItem> {
        (
            (
                hash(),
                hash(),
                any::<bool>(),
                varint_value(),
                varint_value(),
                hash(),
                hash(),
            ),
            any::<[u8; 32]>(),
            any::<[u8; 32]>(),
            prop::collection::vec((varint_value(), hash()), 0..5),
        )
            .prop_map(|((chain, ch, dir, seq, transferred, prev, memo), s1, s2, pays)| {
                let mut sig = [0u8; 64];
                sig[..32].copy_from_slice(&s1);
                sig[32..].copy_from_slice(&s2);
                PayItem {
                    proof: SignedProof {
                        proof: BalanceProof {
                            chain_id: chain,
                            channel_id: ChannelId(ch),
                            direction: if dir { Direction::BToA } else { Direction::AToB },
                            seq,
                            transferred,
                            prev,
                            memo_hash: memo,
                        },
                        signature: Signature(sig),
                    },
                    payments: pays
                        .into_iter()
                        .map(|(amount, reference)| Payment { amount, reference })
                        .collect(),
                }
            })
    }

    fn envelope() -> impl Strategy<Value = Envelope> {
        (varint_value(), hash(), prop::collection::vec(item(), 0..4)).prop_map(|(epoch, ch, items)| {
            Envelope {
                epoch,
                msg: ChannelMsg::Pay {
                    channel_id: ChannelId(ch),
                    items,
                },
            }
        })
    }

    fn parts(e: &Envelope) -> (u64, &ChannelId, &[PayItem]) {
        match &e.msg {
            ChannelMsg::Pay { channel_id, items } => (e.epoch, channel_id, items),
            _ => unreachable!("only pay frames here"),
        }
    }

    proptest! {
        #[test]
        fn the_hand_encoding_is_postcards_and_reads_back(e in envelope()) {
            let (epoch, ch, items) = parts(&e);
            let bytes = encode(epoch, ch, items);
            prop_assert_eq!(&bytes, &codec::encode(&e));
            prop_assert_eq!(decode(&bytes), Some(e));
        }

        /// Whatever a peer sends: a value only where the general decoder gives the same value.
        #[test]
        fn a_mangled_frame_is_read_only_as_the_general_decoder_reads_it(
            e in envelope(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
            cut in any::<prop::sample::Index>(),
            extra in prop::collection::vec(any::<u8>(), 0..3),
            choice in 0u8..3,
        ) {
            let (epoch, ch, items) = parts(&e);
            let mut bytes = encode(epoch, ch, items);
            match choice {
                0 => for (at, b) in &edits {
                    let i = at.index(bytes.len());
                    bytes[i] = *b;
                },
                1 => bytes.truncate(cut.index(bytes.len() + 1)),
                _ => bytes.extend_from_slice(&extra),
            }
            let general = codec::decode::<Envelope>(&bytes, usize::MAX);
            if let Some(v) = decode(&bytes) {
                prop_assert_eq!(general, Ok(v));
            }
        }
    }

    #[test]
    fn overlong_and_oversized_varints_are_left_to_the_general_decoder() {
        let mut r = Reader { bytes: &[0x80, 0x00] };
        assert_eq!(r.varint(), None);
        let mut r = Reader {
            bytes: &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02],
        };
        assert_eq!(r.varint(), None);
        let mut r = Reader {
            bytes: &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
        };
        assert_eq!(r.varint(), Some(u64::MAX));
        assert_eq!(Reader { bytes: &[0] }.varint(), Some(0));
        // Not a pay frame: epoch 1, variant 4 (Ack).
        assert_eq!(decode(&[1, 4]), None);
    }
}
