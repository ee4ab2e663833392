//! Test harness: builds a negotiated, confirmed, connected pair of channels in a few lines.

#![allow(dead_code)]

use paychan_channel::open::{accept_open, OpenPolicy, OpenProposal};
use paychan_channel::{Channel, Handled, PersistedChannel};
use paychan_protocol::channel::SignedOpen;
use paychan_protocol::wire::{ChannelMsg, PayItem};
use paychan_protocol::{Hash32, Keypair, Payment, SignedProof};

/// The chain id every test uses.
pub fn chain_id() -> Hash32 {
    Hash32([0xc4; 32])
}

/// Ledger time "now" in tests.
pub const NOW_MS: u64 = 1_000_000;

/// B's policy in tests.
pub fn policy() -> OpenPolicy {
    OpenPolicy {
        chain_id: chain_id(),
        now_ms: NOW_MS,
        expiry_ms_min_ahead: 1_000,
        expiry_ms_max_ahead: 3_600_000,
        deposit_own_max: u64::MAX,
        deposit_peer_min: 0,
    }
}

pub fn keypair_a() -> Keypair {
    Keypair::from_seed([0xa1; 32])
}

pub fn keypair_b() -> Keypair {
    Keypair::from_seed([0xb2; 32])
}

/// Runs the three-message negotiation and returns the open both hold.
pub fn negotiate(deposit_a: u64, deposit_b: u64) -> SignedOpen {
    let (ka, kb) = (keypair_a(), keypair_b());
    let prop = OpenProposal::new(
        chain_id(),
        &ka,
        kb.public(),
        deposit_a,
        deposit_b,
        Hash32([1; 32]),
        NOW_MS + 60_000,
    )
    .unwrap();
    let ChannelMsg::OpenPropose { open } = prop.message() else {
        unreachable!()
    };
    let (acc, msg) = accept_open(&kb, &open, &policy(), Hash32([2; 32])).unwrap();
    let ChannelMsg::OpenAccept { open, sig_b } = msg else {
        unreachable!()
    };
    let (signed_a, msg) = prop.on_accept(&ka, &open, &sig_b).unwrap();
    let ChannelMsg::OpenSigned { channel_id, sig_a } = msg else {
        unreachable!()
    };
    let signed_b = acc.on_signed(channel_id, &sig_a).unwrap();
    assert_eq!(signed_a, signed_b);
    signed_a
}

/// A party: its channel and what its disk holds.
#[derive(Debug)]
pub struct Party {
    pub ch: Channel,
    pub disk: PersistedChannel,
    pub kp: Keypair,
}

impl Party {
    /// Writes the snapshot and reports it; returns the message that waited for it.
    pub fn persist(&mut self) -> Option<ChannelMsg> {
        let snap = self.ch.snapshot();
        self.disk = snap.clone();
        self.ch.persisted(&snap).expect("own snapshot")
    }

    /// Restarts from the disk, losing everything in memory.
    pub fn crash(&mut self) {
        self.ch = Channel::restore(self.disk.clone(), self.kp.clone()).expect("restore");
    }
}

/// Two parties with a confirmed channel, connected and reestablished.
#[derive(Debug)]
pub struct Pair {
    pub a: Party,
    pub b: Party,
}

/// A confirmed, reestablished pair with these deposits.
pub fn open_pair(deposit_a: u64, deposit_b: u64) -> Pair {
    let signed = negotiate(deposit_a, deposit_b);
    let mk = |kp: Keypair| {
        let mut ch = Channel::new(signed.clone(), kp.clone()).unwrap();
        let disk = ch.snapshot();
        ch.persisted(&disk).unwrap();
        ch.on_open_confirmed().unwrap();
        Party { ch, disk, kp }
    };
    let mut pair = Pair {
        a: mk(keypair_a()),
        b: mk(keypair_b()),
    };
    pair.a.persist();
    pair.b.persist();
    pair.reconnect();
    pair
}

impl Pair {
    /// Disconnects, connects and runs the Reestablish exchange (persisting what waits).
    pub fn reconnect(&mut self) {
        self.a.ch.peer_disconnected();
        self.b.ch.peer_disconnected();
        let ra = self
            .a
            .ch
            .peer_connected()
            .or_else(|| self.a.persist())
            .expect("A's reestablish");
        let rb = self
            .b
            .ch
            .peer_connected()
            .or_else(|| self.b.persist())
            .expect("B's reestablish");
        let a_resends = self.a.ch.handle_message(&rb).unwrap().send;
        let b_resends = self.b.ch.handle_message(&ra).unwrap().send;
        for m in a_resends {
            self.a_to_b(&m);
        }
        for m in b_resends {
            self.b_to_a(&m);
        }
    }

    /// Delivers A's message to B, persisting and delivering the ack back.
    pub fn a_to_b(&mut self, msg: &ChannelMsg) -> Handled {
        let h = self.b.ch.handle_message(msg).unwrap();
        if h.received.is_some() {
            if let Some(ack) = self.b.persist() {
                self.a.ch.handle_message(&ack).unwrap();
            }
        }
        h
    }

    /// Delivers B's message to A, persisting and delivering the ack back.
    pub fn b_to_a(&mut self, msg: &ChannelMsg) -> Handled {
        let h = self.a.ch.handle_message(msg).unwrap();
        if h.received.is_some() {
            if let Some(ack) = self.a.persist() {
                self.b.ch.handle_message(&ack).unwrap();
            }
        }
        h
    }
}

/// A payment of `amount` with a reference derived from `n`.
pub fn payment(amount: u64, n: u64) -> Payment {
    let mut r = [0u8; 32];
    r[..8].copy_from_slice(&n.to_le_bytes());
    Payment {
        amount,
        reference: Hash32(r),
    }
}

/// A pay item for a one-payment proof.
pub fn item(proof: SignedProof, p: Payment) -> PayItem {
    PayItem {
        proof,
        payments: vec![p],
    }
}

/// A pay frame for `ch`.
pub fn frame(ch: &Channel, items: Vec<PayItem>) -> ChannelMsg {
    ChannelMsg::Pay {
        channel_id: ch.id(),
        items,
    }
}

/// Signs `n` one-payment proofs of `amount` each and returns them as items.
pub fn pay_items(ch: &mut Channel, n: u64, amount: u64) -> Vec<PayItem> {
    (0..n)
        .map(|i| {
            let p = payment(amount, i);
            item(ch.pay(p.amount, p.reference).unwrap(), p)
        })
        .collect()
}

/// Signs `n` one-payment proofs of `amount` each and returns them as one pay frame.
pub fn pay_frame(ch: &mut Channel, n: u64, amount: u64) -> ChannelMsg {
    let items = pay_items(ch, n, amount);
    frame(ch, items)
}
