//! Unit tests of the core: no runtime, no process, no socket; each runs in milliseconds.

use std::collections::HashMap;

use paychan_channel::Channel;
use paychan_protocol::channel::{ChannelOpen, SignedOpen};
use paychan_store::{MemStore, Store};
use rand_core::SeedableRng;

use super::*;
use crate::manager::driver::write_batch;

/// A ledger the test sets by hand.
struct FakeLedger {
    time_ms: u64,
    balances: HashMap<PublicKey, u64>,
    channels: HashMap<ChannelId, LedgerChannel>,
    /// Opens the ledger applied, with the height of their block.
    opens: Vec<(u64, SignedOpen)>,
    /// Credit lines by (channel, debtor's direction).
    lines: HashMap<(ChannelId, Direction), paychan_ledger::CreditLine>,
}

impl LedgerView for FakeLedger {
    fn chain_id(&self) -> Hash32 {
        CHAIN
    }
    fn time_ms(&self) -> u64 {
        self.time_ms
    }
    fn height(&self) -> u64 {
        10
    }
    fn witnessed_height(&self) -> u64 {
        10
    }
    fn censored(&self, _id: &ChannelId) -> bool {
        false
    }
    fn channel(&self, id: &ChannelId) -> Option<LedgerChannel> {
        self.channels.get(id).copied()
    }
    fn balance(&self, key: &PublicKey) -> u64 {
        self.balances.get(key).copied().unwrap_or(0)
    }
    fn credit_line(&self, id: &ChannelId, dir: Direction) -> Option<paychan_ledger::CreditLine> {
        self.lines.get(&(*id, dir)).copied()
    }
    fn opens_naming(&self, key: &PublicKey, after: u64) -> OpensScan {
        OpensScan {
            scanned_to: self.height(),
            opens: self
                .opens
                .iter()
                .filter(|(h, o)| *h > after && (o.open.party_a == *key || o.open.party_b == *key))
                .map(|(_, o)| o.clone())
                .collect(),
        }
    }
}

const CHAIN: Hash32 = Hash32([5; 32]);
const NOW_MS: u64 = 1_000_000;

fn keys() -> (Keypair, Keypair) {
    (Keypair::from_seed([1; 32]), Keypair::from_seed([2; 32]))
}

fn ledger(keys: &[&Keypair]) -> FakeLedger {
    FakeLedger {
        time_ms: NOW_MS,
        balances: keys.iter().map(|k| (k.public(), 1_000_000)).collect(),
        channels: HashMap::new(),
        opens: Vec::new(),
        lines: HashMap::new(),
    }
}

fn peer_of(k: &Keypair) -> PeerId {
    peer_id_from_public_key(&k.public()).unwrap()
}

fn core_from(me: &Keypair, store: &MemStore) -> Manager {
    let rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
    let meta = store.meta_entries().unwrap();
    Manager::restore(
        me.clone(),
        CHAIN,
        ManagerConfig::default(),
        Box::new(rng),
        store.channels().unwrap(),
        meta,
        0,
    )
    .unwrap()
}

/// A core for `me` with a live link to `peer` (epoch 1, opened by the peer).
fn core_with_link(me: &Keypair, peer: &Keypair, l: &FakeLedger) -> Manager {
    let mut m = core_from(me, &MemStore::new());
    link_up(&mut m, peer, 1, 0, l);
    m
}

fn link_up(m: &mut Manager, peer: &Keypair, epoch: u64, now: u64, l: &FakeLedger) {
    let p = peer_of(peer);
    m.handle(
        Event::LinkUp {
            peer: p,
            epoch,
            dialer: p,
        },
        now,
        l,
    );
}

fn frame(m: &mut Manager, from: &Keypair, msg: ChannelMsg, l: &FakeLedger) {
    let peer = peer_of(from);
    let epoch = m.link_epoch(&peer).unwrap();
    m.handle(Event::Frame { peer, epoch, msg }, 0, l);
}

fn frames(m: &mut Manager, peer: &Keypair) -> Vec<ChannelMsg> {
    let mut out = Vec::new();
    m.take_frames(&peer_of(peer), usize::MAX, &mut out);
    out
}

/// Polls, then writes every batch asked for into `store` and reports it durable, until no batch
/// is asked for. Returns the other actions.
fn settle_batches(m: &mut Manager, store: &MemStore, l: &FakeLedger) -> Vec<Action> {
    let mut other = Vec::new();
    for _ in 0..16 {
        m.poll(0);
        let mut wrote = false;
        for a in m.take_actions() {
            match a {
                Action::Persist(b) => {
                    write_batch(store, &b).unwrap();
                    m.handle(
                        Event::Persisted {
                            batch: b.id,
                            result: Ok(()),
                        },
                        0,
                        l,
                    );
                    wrote = true;
                }
                a => other.push(a),
            }
        }
        if !wrote {
            break;
        }
    }
    other.extend(m.take_actions());
    other
}

fn proposal(from: &Keypair, to: &Keypair, i: u64, deposit_a: u64) -> ChannelMsg {
    let mut salt = [0u8; 32];
    salt[..8].copy_from_slice(&i.to_be_bytes());
    OpenProposal::new(
        CHAIN,
        from,
        to.public(),
        deposit_a,
        10,
        Hash32(salt),
        NOW_MS + 60_000,
    )
    .unwrap()
    .message()
}

fn count(msgs: &[ChannelMsg]) -> (usize, usize) {
    let accepted = msgs
        .iter()
        .filter(|m| matches!(m, ChannelMsg::OpenAccept { .. }))
        .count();
    let refused = msgs
        .iter()
        .filter(|m| matches!(m, ChannelMsg::Error { .. }))
        .count();
    (accepted, refused)
}

/// A channel of `a` (party A, deposit 100) with `b` (party B, deposit 50), signed by both.
fn signed_open(a: &Keypair, b: &Keypair, salt: u8) -> SignedOpen {
    signed_open_with(a, b, salt, 100)
}

fn signed_open_with(a: &Keypair, b: &Keypair, salt: u8, deposit_a: u64) -> SignedOpen {
    let open = ChannelOpen {
        chain_id: CHAIN,
        party_a: a.public(),
        party_b: b.public(),
        deposit_a,
        deposit_b: 50,
        salt_a: Hash32([8; 32]),
        salt_b: Hash32([salt; 32]),
        expiry_ms: NOW_MS + 60_000,
    };
    SignedOpen {
        sig_a: open.sign(a),
        sig_b: open.sign(b),
        open,
    }
}

fn replies(actions: &[Action]) -> Vec<(CommandId, Result<Response, ManagerError>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Reply { id, result } => Some((*id, result.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_flood_of_proposals_from_one_peer_is_capped_before_signing() {
    let (me, them) = keys();
    let l = ledger(&[&me, &them]);
    let store = MemStore::new();
    let mut m = core_with_link(&me, &them, &l);
    // The peer reads what it is sent (one that does not is cut off: its queue is bounded).
    let mut sent = Vec::new();
    for i in 0..10_000 {
        frame(&mut m, &them, proposal(&them, &me, i, 10), &l);
        settle_batches(&mut m, &store, &l);
        sent.extend(frames(&mut m, &them));
    }
    let (signed, refused) = count(&sent);
    assert_eq!(signed, ACCEPTANCES_PER_PEER_MAX, "signatures made");
    assert_eq!(
        refused,
        10_000 - ACCEPTANCES_PER_PEER_MAX,
        "the rest refused, unsigned"
    );
    assert_eq!(m.acceptances_len(), ACCEPTANCES_PER_PEER_MAX);
    let slots = store
        .meta_entries()
        .unwrap()
        .into_iter()
        .filter(|(k, v)| k.starts_with(ACCEPTANCE_SLOT_PREFIX) && !v.is_empty())
        .count();
    assert_eq!(
        slots, ACCEPTANCES_PER_PEER_MAX,
        "each acceptance is on disk, no more"
    );
}

#[test]
fn an_open_accept_leaves_only_once_the_acceptance_is_durable() {
    let (me, them) = keys();
    let l = ledger(&[&me, &them]);
    let mut m = core_with_link(&me, &them, &l);
    frame(&mut m, &them, proposal(&them, &me, 0, 10), &l);
    m.poll(0);
    assert!(
        frames(&mut m, &them).is_empty(),
        "held while its batch is in flight"
    );
    let batch = m
        .take_actions()
        .into_iter()
        .find_map(|a| match a {
            Action::Persist(b) => Some(b),
            _ => None,
        })
        .expect("a batch");
    assert_eq!(batch.meta.len(), 1, "the acceptance is in the batch");
    // The write fails: still held, and written again in the next batch.
    m.handle(
        Event::Persisted {
            batch: batch.id,
            result: Err("disk full".into()),
        },
        0,
        &l,
    );
    assert!(
        frames(&mut m, &them).is_empty(),
        "a failed write releases nothing"
    );
    let store = MemStore::new();
    settle_batches(&mut m, &store, &l);
    assert_eq!(count(&frames(&mut m, &them)), (1, 0), "released once durable");
}

#[test]
fn an_acceptance_survives_a_restart_and_the_peer_can_still_sign() {
    let (me, them) = keys();
    let l = ledger(&[&me, &them]);
    let store = MemStore::new();
    let mut m = core_with_link(&me, &them, &l);
    let msg = proposal(&them, &me, 0, 10);
    let ChannelMsg::OpenPropose { open } = &msg else {
        unreachable!()
    };
    let mut theirs = OpenProposal::new(
        CHAIN,
        &them,
        me.public(),
        open.deposit_a,
        open.deposit_b,
        open.salt_a,
        open.expiry_ms,
    )
    .unwrap();
    frame(&mut m, &them, msg, &l);
    settle_batches(&mut m, &store, &l);
    let accept = frames(&mut m, &them).pop().unwrap();
    let ChannelMsg::OpenAccept { open, sig_b } = accept else {
        panic!("{accept:?}")
    };
    let (_, signed_msg) = theirs.on_accept(&them, &open, &sig_b).unwrap();
    // Restart: the acceptance comes back from the store.
    drop(m);
    let mut m = core_from(&me, &store);
    assert_eq!(m.acceptances_len(), 1);
    link_up(&mut m, &them, 2, 0, &l);
    frame(&mut m, &them, signed_msg, &l);
    let actions = settle_batches(&mut m, &store, &l);
    assert_eq!(m.channel_ids(), vec![open.channel_id()], "the channel is known");
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::Submit { tx: Tx::Open(_), .. })),
        "and its open submitted once durable"
    );
    assert_eq!(m.acceptances_len(), 0);
    let _ = &mut theirs;
}

#[test]
fn a_proposer_that_locks_nothing_of_its_own_is_refused() {
    let (me, them) = keys();
    let l = ledger(&[&me, &them]);
    let mut m = core_with_link(&me, &them, &l);
    frame(&mut m, &them, proposal(&them, &me, 0, 0), &l);
    settle_batches(&mut m, &MemStore::new(), &l);
    assert_eq!(count(&frames(&mut m, &them)), (0, 1));
    assert_eq!(m.acceptances_len(), 0);
}

#[test]
fn a_proposal_the_ledger_would_refuse_is_not_signed() {
    let (me, them) = keys();
    let l = ledger(&[&me, &them]);
    let mut m = core_with_link(&me, &them, &l);
    frame(&mut m, &them, proposal(&them, &me, 0, 2_000_000), &l);
    settle_batches(&mut m, &MemStore::new(), &l);
    assert_eq!(count(&frames(&mut m, &them)), (0, 1));
    assert_eq!(m.acceptances_len(), 0);
}

#[test]
fn acceptances_expire_and_free_their_slots() {
    let (me, them) = keys();
    let l = ledger(&[&me, &them]);
    let store = MemStore::new();
    let mut m = core_with_link(&me, &them, &l);
    for i in 0..ACCEPTANCES_PER_PEER_MAX as u64 {
        frame(&mut m, &them, proposal(&them, &me, i, 10), &l);
    }
    settle_batches(&mut m, &store, &l);
    assert_eq!(count(&frames(&mut m, &them)), (ACCEPTANCES_PER_PEER_MAX, 0));
    m.handle(Event::Tick, ACCEPTANCE_TTL_MS + 1, &l);
    settle_batches(&mut m, &store, &l);
    assert_eq!(m.acceptances_len(), 0, "expired acceptances are dropped");
    let used = store
        .meta_entries()
        .unwrap()
        .into_iter()
        .filter(|(k, v)| k.starts_with(ACCEPTANCE_SLOT_PREFIX) && !v.is_empty())
        .count();
    assert_eq!(used, 0, "and their records freed");
    frame(&mut m, &them, proposal(&them, &me, 99_999, 10), &l);
    settle_batches(&mut m, &store, &l);
    assert_eq!(count(&frames(&mut m, &them)), (1, 0));
}

#[test]
fn opens_signed_but_not_yet_on_the_ledger_count_against_the_cap() {
    let (me, them) = keys();
    let l = ledger(&[&me, &them]);
    let store = MemStore::new();
    for salt in 0..ACCEPTANCES_PER_PEER_MAX as u8 {
        let ch = Channel::new(signed_open(&them, &me, salt), me.clone()).unwrap();
        store
            .put_channel(&ch.id(), &paychan_protocol::codec::encode(&ch.snapshot()))
            .unwrap();
    }
    let mut m = core_from(&me, &store);
    link_up(&mut m, &them, 1, 0, &l);
    frame(&mut m, &them, proposal(&them, &me, 0, 10), &l);
    settle_batches(&mut m, &store, &l);
    let sent = frames(&mut m, &them);
    assert_eq!(count(&sent), (0, 1), "refused before signing: {sent:?}");
}

/// A core for `me` with an open channel (A = me) with `them`, reestablished both ways.
fn open_channel(
    me: &Keypair,
    them: &Keypair,
    l: &mut FakeLedger,
    store: &MemStore,
) -> (Manager, Channel, ChannelId) {
    open_channel_with(me, them, l, store, 100)
}

fn open_channel_with(
    me: &Keypair,
    them: &Keypair,
    l: &mut FakeLedger,
    store: &MemStore,
    deposit: u64,
) -> (Manager, Channel, ChannelId) {
    let signed = signed_open_with(me, them, 9, deposit);
    let id = signed.open.channel_id();
    let ch = Channel::new(signed.clone(), me.clone()).unwrap();
    store
        .put_channel(&id, &paychan_protocol::codec::encode(&ch.snapshot()))
        .unwrap();
    l.channels.insert(id, LedgerChannel::Open);
    let mut m = core_from(me, store);
    m.handle(Event::LedgerChanged, 0, l);
    let mut theirs = Channel::new(signed, them.clone()).unwrap();
    theirs.on_open_confirmed().unwrap();
    link_up(&mut m, them, 1, 0, l);
    settle_batches(&mut m, store, l);
    let greet = theirs.peer_connected().unwrap();
    for msg in frames(&mut m, them) {
        for reply in theirs.handle_message(&msg).unwrap().send {
            frame(&mut m, them, reply, l);
        }
    }
    frame(&mut m, them, greet, l);
    settle_batches(&mut m, store, l);
    for msg in frames(&mut m, them) {
        let _ = theirs.handle_message(&msg);
    }
    (m, theirs, id)
}

#[test]
fn a_close_sign_leaves_only_once_durable_and_a_repeated_proposal_is_submitted_once() {
    let (me, them) = keys();
    let mut l = ledger(&[&me, &them]);
    let store = MemStore::new();
    let (mut m, mut theirs, _id) = open_channel(&me, &them, &mut l, &store);
    let propose = theirs.propose_close().unwrap();
    frame(&mut m, &them, propose.clone(), &l);
    assert!(
        !frames(&mut m, &them)
            .iter()
            .any(|f| matches!(f, ChannelMsg::CloseSign { .. })),
        "held before the write"
    );
    let mut actions = settle_batches(&mut m, &store, &l);
    assert!(
        frames(&mut m, &them)
            .iter()
            .any(|f| matches!(f, ChannelMsg::CloseSign { .. })),
        "released after it"
    );
    for _ in 0..1_000 {
        frame(&mut m, &them, propose.clone(), &l);
    }
    actions.extend(settle_batches(&mut m, &store, &l));
    let submitted = actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::Submit {
                    tx: Tx::CoopClose(_),
                    ..
                }
            )
        })
        .count();
    assert_eq!(submitted, 1, "one submission of the cooperative close");
}

#[test]
fn a_peer_that_does_not_read_pauses_only_its_own_channels() {
    let (me, slow) = keys();
    let fast = Keypair::from_seed([3; 32]);
    let mut l = ledger(&[&me, &slow, &fast]);
    let store = MemStore::new();
    // Two channels of `me`, one with each peer; build them from one store.
    let (m1, mut slow_ch, slow_id) = open_channel_with(&me, &slow, &mut l, &store, 1_000_000);
    drop(m1);
    let (mut m, mut fast_ch, fast_id) = open_channel_with(&me, &fast, &mut l, &store, 1_000_000);
    link_up(&mut m, &slow, 7, 0, &l);
    settle_batches(&mut m, &store, &l);
    for msg in frames(&mut m, &slow) {
        for r in slow_ch.handle_message(&msg).unwrap().send {
            frame(&mut m, &slow, r, &l);
        }
    }
    frame(&mut m, &slow, slow_ch.peer_connected().unwrap(), &l);
    settle_batches(&mut m, &store, &l);
    // The slow peer reads nothing from now on.
    m.handle(
        Event::Command {
            id: 1,
            command: Command::Pay {
                id: slow_id,
                amount: 1,
                count: 1_000_000,
                reference: Hash32::ZERO,
                per_proof: 1,
            },
        },
        0,
        &l,
    );
    m.handle(
        Event::Command {
            id: 2,
            command: Command::Pay {
                id: fast_id,
                amount: 1,
                count: 2_000,
                reference: Hash32::ZERO,
                per_proof: 1,
            },
        },
        0,
        &l,
    );
    let mut done = false;
    for _ in 0..200 {
        let actions = settle_batches(&mut m, &store, &l);
        if replies(&actions).iter().any(|(id, r)| *id == 2 && r.is_ok()) {
            done = true;
            break;
        }
        for msg in frames(&mut m, &fast) {
            if let Ok(h) = fast_ch.handle_message(&msg) {
                if h.received.is_some() {
                    let snap = fast_ch.snapshot();
                    if let Ok(Some(ack)) = fast_ch.persisted(&snap) {
                        frame(&mut m, &fast, ack, &l);
                    }
                }
            }
        }
    }
    assert!(
        done,
        "the fast peer's payments complete while the slow peer reads nothing"
    );
    assert!(
        m.frames_len(&peer_of(&slow)) <= OUTBOX_PAY_PAUSE_FRAMES,
        "the slow peer's queue stays bounded: {}",
        m.frames_len(&peer_of(&slow))
    );
    let _ = &mut slow_ch;
}

#[test]
fn own_proposals_are_capped() {
    let (me, them) = keys();
    let l = ledger(&[&me, &them]);
    let mut m = core_with_link(&me, &them, &l);
    for i in 0..PROPOSALS_PER_PEER_MAX as u64 + 3 {
        m.handle(
            Event::Command {
                id: i,
                command: Command::Open {
                    peer_key: them.public(),
                    deposit: 10,
                    their_deposit: 10,
                },
            },
            0,
            &l,
        );
    }
    let busy = replies(&m.take_actions())
        .into_iter()
        .filter(|(_, r)| matches!(r, Err(ManagerError::Busy(_))))
        .count();
    assert_eq!(busy, 3);
    assert_eq!(m.proposals_len(), PROPOSALS_PER_PEER_MAX);
}

#[test]
fn an_old_stream_gives_way_to_a_new_one_whoever_opened_it() {
    let (me, them) = keys();
    let l = ledger(&[&me, &them]);
    let mut m = core_from(&me, &MemStore::new());
    let (mine, theirs) = (m.local_peer_id(), peer_of(&them));
    let preferred = mine.min(theirs);
    let other = if preferred == mine { theirs } else { mine };
    let p = theirs;
    m.handle(
        Event::LinkUp {
            peer: p,
            epoch: 1,
            dialer: preferred,
        },
        0,
        &l,
    );
    // A racing stream from the other side loses the tie-break.
    m.handle(
        Event::LinkUp {
            peer: p,
            epoch: 2,
            dialer: other,
        },
        LINK_RACE_MS / 2,
        &l,
    );
    assert_eq!(
        m.link_epoch(&p),
        Some(1),
        "a race keeps the smaller peer id's stream"
    );
    // Much later the other side opens a stream again: it lost the old one.
    m.handle(
        Event::LinkUp {
            peer: p,
            epoch: 3,
            dialer: other,
        },
        10 * LINK_RACE_MS,
        &l,
    );
    assert_eq!(
        m.link_epoch(&p),
        Some(3),
        "a stale stream is not kept by the tie-break"
    );
    assert!(m
        .take_actions()
        .iter()
        .any(|a| matches!(a, Action::CloseLink { epoch: 1, .. })));
}

#[test]
fn pay_zero_times_on_an_unknown_channel_is_an_error() {
    let (me, them) = keys();
    let l = ledger(&[&me, &them]);
    let mut m = core_with_link(&me, &them, &l);
    m.handle(
        Event::Command {
            id: 1,
            command: Command::Pay {
                id: ChannelId(Hash32([9; 32])),
                amount: 1,
                count: 0,
                reference: Hash32::ZERO,
                per_proof: 1,
            },
        },
        0,
        &l,
    );
    let r = replies(&m.take_actions());
    assert!(
        matches!(r[..], [(1, Err(ManagerError::UnknownChannel(_)))]),
        "{r:?}"
    );
}

#[test]
fn a_settlement_below_our_view_lists_the_payout_and_the_shortfall() {
    let (me, them) = keys();
    let mut l = ledger(&[&me, &them]);
    let store = MemStore::new();
    let (mut m, _theirs, id) = open_channel(&me, &them, &mut l, &store);
    let list = listed;
    let before = list(&mut m, &l);
    assert_eq!((before[0].balance, before[0].their_balance), (100, 50));
    assert_eq!(
        (before[0].payout, before[0].expected, before[0].shortfall),
        (None, None, None)
    );
    l.channels.insert(
        id,
        LedgerChannel::Closed {
            payout_a: 60,
            payout_b: 90,
        },
    );
    m.handle(Event::LedgerChanged, 0, &l);
    let v = &list(&mut m, &l)[0];
    assert_eq!(v.status, "closed");
    assert_eq!((v.balance, v.their_balance), (60, 90), "the ledger's payout");
    assert_eq!(
        (v.payout, v.expected, v.shortfall),
        (Some(60), Some(100), Some(40))
    );
}

#[test]
fn a_close_proposed_while_the_peer_is_away_is_sent_once_it_is_back() {
    let (me, them) = keys();
    let mut l = ledger(&[&me, &them]);
    let store = MemStore::new();
    let (mut m, mut theirs, id) = open_channel(&me, &them, &mut l, &store);
    let peer = peer_of(&them);
    let epoch = m.link_epoch(&peer).unwrap();
    m.handle(Event::LinkDown { peer, epoch }, 0, &l);
    theirs.peer_disconnected();
    m.handle(
        Event::Command {
            id: 5,
            command: Command::Close { id, force: false },
        },
        0,
        &l,
    );
    let actions = settle_batches(&mut m, &store, &l);
    assert!(replies(&actions).is_empty(), "the close waits for the peer");
    assert!(frames(&mut m, &them).is_empty(), "nothing to send without a link");
    // The peer is back, on a stream it opened long after the old one.
    link_up(&mut m, &them, 2, 10 * LINK_RACE_MS, &l);
    let greet = theirs.peer_connected().unwrap();
    frame(&mut m, &them, greet, &l);
    settle_batches(&mut m, &store, &l);
    let mut proposed = false;
    for msg in frames(&mut m, &them) {
        proposed |= matches!(msg, ChannelMsg::ClosePropose { .. });
        if let Ok(h) = theirs.handle_message(&msg) {
            for r in h.send {
                frame(&mut m, &them, r, &l);
            }
        }
    }
    assert!(proposed, "the proposal is resent on the new stream");
    let actions = settle_batches(&mut m, &store, &l);
    assert!(
        actions.iter().any(|a| matches!(
            a,
            Action::Submit {
                tx: Tx::CoopClose(_),
                ..
            }
        )),
        "and the cooperative close, signed by both, goes to the ledger"
    );
}

/// Hands every frame of `m` to the bare channel `theirs`, answering refusals as a node does
/// (Busy for a passing reason) and acking each taken burst as soon as it is "persisted".
/// Returns how many bursts it refused.
fn deliver_to_bare(m: &mut Manager, them: &Keypair, theirs: &mut Channel, l: &FakeLedger) -> usize {
    let mut refused = 0;
    for msg in frames(m, them) {
        match theirs.handle_message(&msg) {
            Ok(h) => {
                let mut replies = h.send;
                if let Some(r) = h.received {
                    replies.extend(theirs.incoming_persisted(r.newest.proof.seq).unwrap());
                }
                for r in replies {
                    frame(m, them, r, l);
                }
            }
            Err(e) => {
                refused += 1;
                let code = if e.is_retryable() {
                    ErrorCode::Busy
                } else {
                    ErrorCode::Rejected
                };
                let channel_id = crate::manager::channel_of(&msg);
                frame(
                    m,
                    them,
                    ChannelMsg::Error {
                        channel_id,
                        code,
                        text: e.to_string(),
                    },
                    l,
                );
            }
        }
    }
    refused
}

#[test]
fn bursts_a_pending_payee_refused_go_again_once_it_can_take_them() {
    let (me, them) = keys();
    let mut l = ledger(&[&me, &them]);
    let store = MemStore::new();
    let signed = signed_open_with(&me, &them, 9, 100);
    let id = signed.open.channel_id();
    let ch = Channel::new(signed.clone(), me.clone()).unwrap();
    store
        .put_channel(&id, &paychan_protocol::codec::encode(&ch.snapshot()))
        .unwrap();
    // The payer's ledger shows the open; the payee has not applied that block yet.
    l.channels.insert(id, LedgerChannel::Open);
    let mut m = core_from(&me, &store);
    m.handle(Event::LedgerChanged, 0, &l);
    let mut theirs = Channel::new(signed, them.clone()).unwrap();
    link_up(&mut m, &them, 1, 0, &l);
    settle_batches(&mut m, &store, &l);
    let greet = theirs.peer_connected().unwrap();
    deliver_to_bare(&mut m, &them, &mut theirs, &l);
    frame(&mut m, &them, greet, &l);
    settle_batches(&mut m, &store, &l);
    m.handle(
        Event::Command {
            id: 3,
            command: Command::Pay {
                id,
                amount: 1,
                count: 90,
                reference: Hash32::ZERO,
                per_proof: 1,
            },
        },
        0,
        &l,
    );
    let mut refused = 0;
    let mut actions = Vec::new();
    for _ in 0..8 {
        actions.extend(settle_batches(&mut m, &store, &l));
        refused += deliver_to_bare(&mut m, &them, &mut theirs, &l);
    }
    assert!(refused >= 1, "the pending payee refused the bursts: {refused}");
    assert_eq!(theirs.transferred_in(), 0);
    assert!(
        replies(&actions).is_empty(),
        "nothing acked yet: {:?}",
        replies(&actions)
    );
    // The payee applies the block; a resend is due only after its wait.
    theirs.on_open_confirmed().unwrap();
    m.handle(Event::Tick, RESEND_WAIT_FIRST_MS - 1, &l);
    assert!(frames(&mut m, &them).is_empty(), "nothing before the wait");
    m.handle(Event::Tick, RESEND_WAIT_FIRST_MS, &l);
    for _ in 0..8 {
        refused = deliver_to_bare(&mut m, &them, &mut theirs, &l);
        assert_eq!(refused, 0, "the window resent in order is taken whole");
        actions.extend(settle_batches(&mut m, &store, &l));
    }
    assert_eq!(theirs.transferred_in(), 90, "every payment arrived once");
    assert!(
        matches!(
            replies(&actions)[..],
            [(3, Ok(Response::Paid(PayStats { count: 90, .. })))]
        ),
        "{:?}",
        replies(&actions)
    );
}

#[test]
fn a_resent_window_the_payee_already_holds_changes_nothing() {
    let (me, them) = keys();
    let mut l = ledger(&[&me, &them]);
    let store = MemStore::new();
    let (mut m, mut theirs, id) = open_channel(&me, &them, &mut l, &store);
    m.handle(
        Event::Command {
            id: 4,
            command: Command::Pay {
                id,
                amount: 2,
                count: 5,
                reference: Hash32::ZERO,
                per_proof: 1,
            },
        },
        0,
        &l,
    );
    settle_batches(&mut m, &store, &l);
    let sent = frames(&mut m, &them);
    assert!(!sent.is_empty());
    for msg in &sent {
        theirs.handle_message(msg).unwrap();
    }
    assert_eq!(theirs.transferred_in(), 10);
    // The same frames again (a resend that crossed the acks): skipped, no error, no state.
    for msg in &sent {
        let h = theirs.handle_message(msg).unwrap();
        assert_eq!(h, paychan_channel::Handled::default());
    }
    assert_eq!(theirs.transferred_in(), 10);
}

#[test]
fn an_open_the_peer_submitted_without_signing_to_us_is_adopted_and_survives_a_restart() {
    let (me, them) = keys();
    let mut l = ledger(&[&me, &them]);
    let store = MemStore::new();
    let mut m = core_with_link(&me, &them, &l);
    let msg = proposal(&them, &me, 0, 10);
    let ChannelMsg::OpenPropose { open } = &msg else {
        unreachable!()
    };
    let theirs = OpenProposal::new(
        CHAIN,
        &them,
        me.public(),
        open.deposit_a,
        open.deposit_b,
        open.salt_a,
        open.expiry_ms,
    )
    .unwrap();
    frame(&mut m, &them, msg, &l);
    settle_batches(&mut m, &store, &l);
    let ChannelMsg::OpenAccept { open, sig_b } = frames(&mut m, &them).pop().unwrap() else {
        panic!("no acceptance")
    };
    // The peer completes the open and submits it itself; it never sends OpenSigned.
    let (signed, _never_sent) = theirs.on_accept(&them, &open, &sig_b).unwrap();
    let id = signed.open.channel_id();
    l.opens.push((7, signed));
    l.channels.insert(id, LedgerChannel::Open);
    m.handle(Event::LedgerChanged, 0, &l);
    settle_batches(&mut m, &store, &l);
    assert_eq!(
        m.channel_ids(),
        vec![id],
        "the channel that locks our deposit is known"
    );
    assert_eq!(m.channel(&id).unwrap().status(), ChannelStatus::Open);
    assert_eq!(m.acceptances_len(), 0, "its acceptance slot is free again");
    // After a restart it is still there, and the scan does not start again from the genesis.
    drop(m);
    let mut m = core_from(&me, &store);
    assert_eq!(m.channel_ids(), vec![id]);
    assert_eq!(m.adopted_height, 10);
    // And it can be closed like any other channel.
    m.handle(Event::LedgerChanged, 0, &l);
    m.handle(
        Event::Command {
            id: 8,
            command: Command::Close { id, force: true },
        },
        0,
        &l,
    );
    let actions = settle_batches(&mut m, &store, &l);
    assert!(
        actions.iter().any(|a| matches!(
            a,
            Action::Submit {
                tx: Tx::UnilateralClose { .. },
                ..
            }
        )),
        "{actions:?}"
    );
}

#[test]
fn opens_of_other_keys_or_already_closed_channels_are_not_adopted() {
    let (me, them) = keys();
    let third = Keypair::from_seed([3; 32]);
    let mut l = ledger(&[&me, &them, &third]);
    let store = MemStore::new();
    let mut m = core_from(&me, &store);
    let others = signed_open(&them, &third, 1);
    let closed = signed_open(&them, &me, 2);
    l.channels.insert(others.open.channel_id(), LedgerChannel::Open);
    l.channels.insert(
        closed.open.channel_id(),
        LedgerChannel::Closed {
            payout_a: 100,
            payout_b: 50,
        },
    );
    l.opens.push((3, others));
    l.opens.push((4, closed));
    m.handle(Event::LedgerChanged, 0, &l);
    settle_batches(&mut m, &store, &l);
    assert!(m.channel_ids().is_empty());
}

/// The channel list the core answers.
fn listed(m: &mut Manager, l: &FakeLedger) -> Vec<ChannelView> {
    m.handle(
        Event::Command {
            id: 77,
            command: Command::List,
        },
        m.now_ms,
        l,
    );
    match replies(&m.take_actions()).pop() {
        Some((77, Ok(Response::Listed(v)))) => v,
        other => panic!("{other:?}"),
    }
}

/// The totals the core answers, checked against the list they fold.
fn totals(m: &mut Manager, l: &FakeLedger) -> ChannelTotals {
    m.handle(
        Event::Command {
            id: 78,
            command: Command::Totals,
        },
        m.now_ms,
        l,
    );
    let t = match replies(&m.take_actions()).pop() {
        Some((78, Ok(Response::Totals(t)))) => t,
        other => panic!("{other:?}"),
    };
    let mut folded = ChannelTotals::default();
    for v in &listed(m, l) {
        folded.add(v);
    }
    assert_eq!(t, folded, "the totals are the list folded");
    t
}

fn listed_status(m: &mut Manager, l: &FakeLedger) -> String {
    listed(m, l)[0].status.clone()
}

#[test]
fn a_block_event_brings_the_manager_to_the_channels_it_names_and_the_full_pass_to_the_rest() {
    let (me, them) = keys();
    let mut l = ledger(&[&me, &them]);
    let store = MemStore::new();
    let (mut m, _theirs, id) = open_channel(&me, &them, &mut l, &store);
    m.handle(Event::Tick, 1, &l);
    l.channels.insert(
        id,
        LedgerChannel::Closed {
            payout_a: 100,
            payout_b: 50,
        },
    );
    // A block about other channels: an open channel has nothing to learn from it.
    m.handle(
        Event::BlockApplied {
            channels: vec![ChannelId(Hash32([9; 32]))],
        },
        2,
        &l,
    );
    assert_eq!(listed_status(&mut m, &l), "open");
    // Nor does a tick before the full pass is due.
    m.handle(Event::Tick, FULL_PASS_MS / 2, &l);
    assert_eq!(listed_status(&mut m, &l), "open");
    // The block that names it.
    m.handle(Event::BlockApplied { channels: vec![id] }, FULL_PASS_MS / 2, &l);
    assert_eq!(listed_status(&mut m, &l), "closed");
    let t = totals(&mut m, &l);
    assert_eq!(t.by_status.get("closed"), Some(&1));
    assert_eq!(
        t.balance_not_closed, 0,
        "a closed channel's balance is not counted"
    );

    // An event a full inbox dropped is made up by the next full pass.
    let (me2, them2) = (Keypair::from_seed([3; 32]), Keypair::from_seed([4; 32]));
    let mut l2 = ledger(&[&me2, &them2]);
    let (mut m2, _t, id2) = open_channel(&me2, &them2, &mut l2, &MemStore::new());
    m2.handle(Event::Tick, 1, &l2);
    l2.channels.insert(
        id2,
        LedgerChannel::Closed {
            payout_a: 100,
            payout_b: 50,
        },
    );
    m2.handle(Event::Tick, 1 + FULL_PASS_MS / 2, &l2);
    assert_eq!(listed_status(&mut m2, &l2), "open");
    m2.handle(Event::Tick, 1 + FULL_PASS_MS, &l2);
    assert_eq!(listed_status(&mut m2, &l2), "closed");
}

#[test]
fn a_dial_without_an_outcome_is_asked_for_again_after_the_wait() {
    let (me, them) = keys();
    let mut l = ledger(&[&me, &them]);
    let store = MemStore::new();
    let (mut m, _theirs, _id) = open_channel(&me, &them, &mut l, &store);
    let peer = peer_of(&them);
    m.handle(Event::LinkDown { peer, epoch: 1 }, 10, &l);
    let dials = |actions: Vec<Action>| {
        actions
            .iter()
            .filter(|a| matches!(a, Action::Dial(p) if *p == peer))
            .count()
    };
    m.handle(Event::Tick, 20, &l);
    assert_eq!(dials(m.take_actions()), 1, "a lost stream is dialled");
    // Neither a stream nor a failure comes back (the dial was lost on the way).
    m.handle(Event::Tick, 20 + DIAL_WAIT_MS / 2, &l);
    assert_eq!(dials(m.take_actions()), 0, "one dial in flight at a time");
    m.handle(Event::Tick, 21 + DIAL_WAIT_MS, &l);
    assert_eq!(
        dials(m.take_actions()),
        1,
        "a dial with no outcome does not block the peer for good"
    );
}

#[test]
fn a_buffered_burst_stores_each_payment_before_its_ack_and_the_list_survives_a_restart() {
    let (me, them) = keys();
    let mut l = ledger(&[&me, &them]);
    let store = MemStore::new();
    let (mut m, mut theirs, id) = open_channel(&me, &them, &mut l, &store);
    let snap = theirs.snapshot();
    theirs.persisted(&snap).unwrap();
    // The counterparty pays us three proofs: 3 payments, 3 others, then 1.
    let pays = |r: u8, n: u64| -> Vec<Payment> {
        (0..n)
            .map(|i| Payment {
                amount: 1 + i,
                reference: Hash32([r + i as u8; 32]),
            })
            .collect()
    };
    let items: Vec<PayItem> = [(1u8, 3u64), (10, 3), (20, 1)]
        .into_iter()
        .map(|(r, n)| {
            let p = pays(r, n);
            PayItem {
                proof: theirs.pay_many(&p).unwrap(),
                payments: p,
            }
        })
        .collect();
    frame(
        &mut m,
        &them,
        ChannelMsg::Pay {
            channel_id: id,
            items: items.clone(),
        },
        &l,
    );
    m.poll(0);
    let batch = m
        .take_actions()
        .into_iter()
        .find_map(|a| match a {
            Action::Persist(b) => Some(b),
            _ => None,
        })
        .expect("the burst asks for a batch");
    assert_eq!(
        batch.payments.len(),
        1,
        "one record for the burst, in the batch of its channel record"
    );
    assert!(
        !frames(&mut m, &them)
            .iter()
            .any(|f| matches!(f, ChannelMsg::Ack { .. })),
        "no ack before the batch is durable"
    );
    write_batch(&store, &batch).unwrap();
    m.handle(
        Event::Persisted {
            batch: batch.id,
            result: Ok(()),
        },
        0,
        &l,
    );
    assert!(frames(&mut m, &them)
        .iter()
        .any(|f| matches!(f, ChannelMsg::Ack { seq: 3, .. })));
    assert_eq!(listed(&mut m, &l)[0].payments_received, 7);
    let t = totals(&mut m, &l);
    assert_eq!((t.count(), t.payments_received), (1, 7));
    assert_eq!(t.by_status.get("open"), Some(&1));

    // A restart: the list comes from the store, exactly the memos' payments in order.
    drop(m);
    let want: Vec<(u64, usize, u64, String)> = items
        .iter()
        .flat_map(|i| {
            i.payments
                .iter()
                .enumerate()
                .map(move |(k, p)| (i.proof.proof.seq, k, p.amount, p.reference.to_string()))
        })
        .collect();
    let got: Vec<(u64, usize, u64, String)> = super::super::payments::list(&store, id, 0, 100)
        .unwrap()
        .into_iter()
        .map(|p| (p.seq, p.index, p.amount, p.reference))
        .collect();
    assert_eq!(got, want);
    let page = super::super::payments::list(&store, id, 2, 2).unwrap();
    assert_eq!(
        page.iter().map(|p| (p.seq, p.index)).collect::<Vec<_>>(),
        vec![(2, 0), (2, 1)]
    );
    let _ = core_from(&me, &store);
}

#[test]
fn a_buffered_job_puts_its_payments_in_proofs_of_the_size_asked_and_a_bad_size_is_refused() {
    let (me, them) = keys();
    let mut l = ledger(&[&me, &them]);
    let store = MemStore::new();
    let (mut m, mut theirs, id) = open_channel(&me, &them, &mut l, &store);
    for (cmd, per_proof) in [(1, 0), (2, MEMO_PAYMENTS_MAX + 1)] {
        m.handle(
            Event::Command {
                id: cmd,
                command: Command::Pay {
                    id,
                    amount: 1,
                    count: 5,
                    reference: Hash32::ZERO,
                    per_proof,
                },
            },
            0,
            &l,
        );
        let r = replies(&m.take_actions());
        assert!(
            matches!(r[..], [(c, Err(ManagerError::Channel(ChannelError::MemoLength { .. })))] if c == cmd),
            "{r:?}"
        );
    }
    m.handle(
        Event::Command {
            id: 3,
            command: Command::Pay {
                id,
                amount: 2,
                count: 21,
                reference: Hash32([5; 32]),
                per_proof: 8,
            },
        },
        0,
        &l,
    );
    let mut sizes = Vec::new();
    let mut actions = Vec::new();
    for _ in 0..8 {
        actions.extend(settle_batches(&mut m, &store, &l));
        for msg in frames(&mut m, &them) {
            if let ChannelMsg::Pay { items, .. } = &msg {
                sizes.extend(items.iter().map(|i| i.payments.len()));
            }
            payee_takes(&mut m, &them, &mut theirs, &msg, &l);
        }
    }
    assert_eq!(sizes, vec![8, 8, 5], "two whole proofs, then the rest");
    assert_eq!(theirs.transferred_in(), 42);
    assert!(
        matches!(
            replies(&actions)[..],
            [(
                3,
                Ok(Response::Paid(PayStats {
                    count: 21,
                    proofs: 3,
                    amount: 42,
                    ..
                }))
            )]
        ),
        "{:?}",
        replies(&actions)
    );
}

fn ask(
    m: &mut Manager,
    id: CommandId,
    command: Command,
    l: &FakeLedger,
) -> Vec<(CommandId, Result<Response, ManagerError>)> {
    m.handle(Event::Command { id, command }, 0, l);
    m.poll(0);
    let actions = m.take_actions();
    // Batches asked for stay unanswered here: the caller reports them.
    for a in &actions {
        if let Action::Persist(_) = a {
            m.actions.push(a.clone());
        }
    }
    replies(&actions)
}

/// Hands `command` to the core without ending its round (no poll): what a round collects.
fn asked(m: &mut Manager, id: CommandId, command: Command, l: &FakeLedger) {
    m.handle(Event::Command { id, command }, 0, l);
}

fn carried(ch: &mut Channel, amount: u64, reference: Hash32) -> PayItem {
    // The bare payer's seq reservation, "persisted".
    let snap = ch.snapshot();
    ch.persisted(&snap).unwrap();
    PayItem {
        proof: ch.pay(amount, reference).unwrap(),
        payments: vec![Payment { amount, reference }],
    }
}

/// The bare payee takes `msg` (a verified burst made durable at once) and its answers go back
/// to the manager.
fn payee_takes(m: &mut Manager, them: &Keypair, theirs: &mut Channel, msg: &ChannelMsg, l: &FakeLedger) {
    let h = theirs.handle_message(msg).unwrap();
    let mut replies = h.send;
    if let Some(r) = h.received {
        replies.extend(theirs.incoming_persisted(r.newest.proof.seq).unwrap());
    }
    for r in replies {
        frame(m, them, r, l);
    }
}

fn refusal_of(r: &[(CommandId, Result<Response, ManagerError>)]) -> HttpRefusalKind {
    match r {
        [(_, Ok(Response::HttpChecked(Err(refusal))))] => refusal.kind,
        other => panic!("not one refusal: {other:?}"),
    }
}

#[test]
fn a_payment_carried_in_a_request_is_taken_once_and_only_after_the_upstream_answered() {
    let (me, them) = keys();
    let mut l = ledger(&[&me, &them]);
    let store = MemStore::new();
    let (mut m, mut theirs, id) = open_channel(&me, &them, &mut l, &store);
    let (r1, r2) = (Hash32([1; 32]), Hash32([2; 32]));
    let p1 = carried(&mut theirs, 5, r1);
    let check = |item: &PayItem, price, reference| Command::HttpCheck {
        item: item.clone(),
        price,
        reference,
    };

    // Refusals change nothing.
    assert_eq!(
        refusal_of(&ask(&mut m, 1, check(&p1, 6, r1), &l)),
        HttpRefusalKind::Underpaid
    );
    assert_eq!(
        refusal_of(&ask(&mut m, 2, check(&p1, 5, r2), &l)),
        HttpRefusalKind::WrongReference
    );
    let mut other = p1.clone();
    other.proof.proof.channel_id = ChannelId(Hash32([7; 32]));
    assert_eq!(
        refusal_of(&ask(&mut m, 3, check(&other, 5, r1), &l)),
        HttpRefusalKind::UnknownChannel
    );
    let mut forged = p1.clone();
    forged.proof.signature = Signature([3; 64]);
    assert_eq!(
        refusal_of(&ask(&mut m, 4, check(&forged, 5, r1), &l)),
        HttpRefusalKind::Invalid
    );
    assert_eq!(m.channel(&id).unwrap().transferred_in(), 0);

    // Checked: held in flight, so that no second request rides on it.
    let ok = ask(&mut m, 5, check(&p1, 5, r1), &l);
    assert!(
        matches!(
            &ok[..],
            [(
                5,
                Ok(Response::HttpChecked(Ok(HttpChecked {
                    amount: 5,
                    reused: false
                })))
            )]
        ),
        "{ok:?}"
    );
    assert_eq!(
        refusal_of(&ask(&mut m, 6, check(&p1, 5, r1), &l)),
        HttpRefusalKind::Busy
    );

    // The upstream failed: not taken, and the same proof pays for the next request, whichever.
    let settled = ask(
        &mut m,
        7,
        Command::HttpSettle {
            item: p1.clone(),
            answered: false,
        },
        &l,
    );
    assert!(
        matches!(&settled[..], [(7, Ok(Response::HttpSettled { charged: false }))]),
        "{settled:?}"
    );
    assert_eq!(m.channel(&id).unwrap().transferred_in(), 0);
    let again = ask(&mut m, 8, check(&p1, 5, r2), &l);
    assert!(
        matches!(
            &again[..],
            [(8, Ok(Response::HttpChecked(Ok(HttpChecked { reused: true, .. }))))]
        ),
        "{again:?}"
    );

    // The upstream answered: taken, and answered only once the batch holding it is durable.
    m.actions.clear();
    let settled = ask(
        &mut m,
        9,
        Command::HttpSettle {
            item: p1.clone(),
            answered: true,
        },
        &l,
    );
    assert!(
        settled.is_empty(),
        "no answer before the batch is durable: {settled:?}"
    );
    let after = settle_batches(&mut m, &store, &l);
    assert!(
        matches!(
            &replies(&after)[..],
            [(9, Ok(Response::HttpSettled { charged: true }))]
        ),
        "{after:?}"
    );
    assert_eq!(m.channel(&id).unwrap().transferred_in(), 5);
    let restored = core_from(&me, &store);
    assert_eq!(
        restored
            .channel(&id)
            .unwrap()
            .durable_incoming()
            .map(|p| p.proof.transferred),
        Some(5),
        "what was answered is in the store"
    );

    // Replayed: refused. The next proof links on.
    assert_eq!(
        refusal_of(&ask(&mut m, 10, check(&p1, 5, r1), &l)),
        HttpRefusalKind::Invalid
    );
    let p2 = carried(&mut theirs, 5, r2);
    let ok = ask(&mut m, 11, check(&p2, 5, r2), &l);
    assert!(
        matches!(&ok[..], [(11, Ok(Response::HttpChecked(Ok(_))))]),
        "{ok:?}"
    );
}

#[test]
fn a_payer_signs_a_carried_proof_without_sending_it() {
    let (me, them) = keys();
    let mut l = ledger(&[&me, &them]);
    let store = MemStore::new();
    let (mut m, _theirs, id) = open_channel(&me, &them, &mut l, &store);
    let _ = frames(&mut m, &them);
    let r = ask(
        &mut m,
        1,
        Command::SignDetached {
            id,
            amount: 4,
            reference: Hash32([1; 32]),
        },
        &l,
    );
    let item = match &r[..] {
        [(1, Ok(Response::Signed(item)))] => item.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(item.proof.proof.transferred, 4);
    item.proof.verify(&me.public()).expect("signed by the payer");
    assert_eq!(
        item.payments,
        vec![Payment {
            amount: 4,
            reference: Hash32([1; 32])
        }]
    );
    assert!(frames(&mut m, &them).is_empty(), "nothing went on the stream");
    assert_eq!(
        m.channel(&id).unwrap().unacked_len(),
        1,
        "it waits for the payee's ack"
    );
}

/// A line on the ledger: `creditor` lets `debtor` owe up to `limit` until `expiry_ms`.
fn grant(
    l: &mut FakeLedger,
    id: ChannelId,
    dir: Direction,
    creditor: &Keypair,
    debtor: &Keypair,
    limit: u64,
    expiry_ms: u64,
) {
    let peak = l.lines.get(&(id, dir)).map_or(limit, |x| x.peak.max(limit));
    l.lines.insert(
        (id, dir),
        paychan_ledger::CreditLine {
            creditor: creditor.public(),
            debtor: debtor.public(),
            limit,
            peak,
            expiry_ms,
            due_ms: expiry_ms + 60_000,
        },
    );
}

fn checked(m: &mut Manager, cmd: CommandId, item: &PayItem, l: &FakeLedger) -> Result<u64, HttpRefusalKind> {
    let reference = item.payments[0].reference;
    let r = ask(
        m,
        cmd,
        Command::HttpCheck {
            item: item.clone(),
            price: 1,
            reference,
        },
        l,
    );
    match &r[..] {
        [(_, Ok(Response::HttpChecked(Ok(c))))] => Ok(c.amount),
        [(_, Ok(Response::HttpChecked(Err(refusal))))] => Err(refusal.kind),
        other => panic!("{other:?}"),
    }
}

fn take(m: &mut Manager, cmd: CommandId, item: &PayItem, store: &MemStore, l: &FakeLedger) {
    m.handle(
        Event::Command {
            id: cmd,
            command: Command::HttpSettle {
                item: item.clone(),
                answered: true,
            },
        },
        0,
        l,
    );
    let after = settle_batches(m, store, l);
    assert!(
        matches!(
            &replies(&after)[..],
            [(_, Ok(Response::HttpSettled { charged: true }))]
        ),
        "{after:?}"
    );
}

#[test]
fn a_creditor_takes_proofs_up_to_deposit_received_and_line_and_refuses_the_next() {
    let (me, them) = keys();
    let mut l = ledger(&[&me, &them]);
    let store = MemStore::new();
    // `me` is A (deposit 100), `them` is B (deposit 50) and owes on `me`'s credit.
    let (mut m, mut theirs, id) = open_channel(&me, &them, &mut l, &store);
    grant(&mut l, id, Direction::BToA, &me, &them, 30, NOW_MS + 10_000);
    m.handle(Event::BlockApplied { channels: vec![id] }, 0, &l);
    assert_eq!(m.channel(&id).unwrap().credit(), (0, Some(30)));
    theirs.set_credit(30, None);

    // The deposit, then the line, in carried payments.
    let p1 = carried(&mut theirs, 50, Hash32([1; 32]));
    assert_eq!(checked(&mut m, 1, &p1, &l), Ok(50));
    take(&mut m, 2, &p1, &store, &l);
    let p2 = carried(&mut theirs, 30, Hash32([2; 32]));
    assert_eq!(checked(&mut m, 3, &p2, &l), Ok(30));
    take(&mut m, 4, &p2, &store, &l);
    assert_eq!(m.channel(&id).unwrap().credit_used_in(), 30);
    let view = &listed(&mut m, &l)[0];
    assert_eq!((view.their_owed, view.their_credit_limit), (30, Some(30)));

    // One more is beyond the line: the payer's side does not sign it...
    assert!(matches!(
        theirs.pay(1, Hash32([3; 32])),
        Err(paychan_channel::ChannelError::InsufficientFunds { available: 0, .. })
    ));
    // ...and a payer that signs it anyway is refused with a typed reason, nothing taken.
    theirs.set_credit(31, None);
    let p3 = carried(&mut theirs, 1, Hash32([3; 32]));
    assert_eq!(checked(&mut m, 5, &p3, &l), Err(HttpRefusalKind::CreditLimit));
    assert_eq!(m.channel(&id).unwrap().transferred_in(), 80);

    // On the stream too: an error frame, the proof not taken.
    let _ = frames(&mut m, &them);
    frame(
        &mut m,
        &them,
        ChannelMsg::Pay {
            channel_id: id,
            items: vec![p3.clone()],
        },
        &l,
    );
    let out = frames(&mut m, &them);
    assert!(
        matches!(&out[..], [ChannelMsg::Error { text, .. }] if text.contains("credit limit")),
        "{out:?}"
    );
    assert_eq!(m.channel(&id).unwrap().transferred_in(), 80);

    // Raised on the ledger: the same proof is taken.
    grant(&mut l, id, Direction::BToA, &me, &them, 31, NOW_MS + 10_000);
    m.handle(Event::BlockApplied { channels: vec![id] }, 0, &l);
    assert_eq!(checked(&mut m, 6, &p3, &l), Ok(1));
    take(&mut m, 7, &p3, &store, &l);

    // Past its expiry in ledger time the line takes nothing more (a heartbeat block names
    // no channel: the manager follows channels with a line on every block).
    theirs.set_credit(40, None);
    let p4 = carried(&mut theirs, 1, Hash32([4; 32]));
    l.time_ms = NOW_MS + 10_001;
    m.handle(Event::BlockApplied { channels: vec![] }, 0, &l);
    assert_eq!(m.channel(&id).unwrap().credit(), (0, Some(0)));
    assert_eq!(checked(&mut m, 8, &p4, &l), Err(HttpRefusalKind::CreditLimit));
}

#[test]
fn a_debtor_spends_up_to_deposit_and_line_and_its_close_goes_unilateral() {
    let (me, them) = keys();
    let mut l = ledger(&[&me, &them]);
    let store = MemStore::new();
    // `me` is A (deposit 100) and owes on `them`'s credit.
    let (mut m, mut theirs, id) = open_channel(&me, &them, &mut l, &store);
    let _ = frames(&mut m, &them);
    let sign = |m: &mut Manager, cmd, amount, l: &FakeLedger| {
        let r = ask(
            m,
            cmd,
            Command::SignDetached {
                id,
                amount,
                reference: Hash32([cmd as u8; 32]),
            },
            l,
        );
        settle_batches(m, &store, l);
        r
    };
    assert!(matches!(
        &sign(&mut m, 1, 101, &l)[..],
        [(
            _,
            Err(ManagerError::Channel(
                paychan_channel::ChannelError::InsufficientFunds { available: 100, .. }
            ))
        )]
    ));
    grant(&mut l, id, Direction::AToB, &them, &me, 20, NOW_MS + 10_000);
    m.handle(Event::BlockApplied { channels: vec![id] }, 0, &l);
    assert_eq!(listed(&mut m, &l)[0].spendable, 120);
    let item = match &sign(&mut m, 2, 120, &l)[..] {
        [(_, Ok(Response::Signed(item)))] => item.clone(),
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        &sign(&mut m, 3, 1, &l)[..],
        [(
            _,
            Err(ManagerError::Channel(
                paychan_channel::ChannelError::InsufficientFunds { available: 0, .. }
            ))
        )]
    ));
    // The creditor takes it (it knows the line) and acks.
    theirs.set_credit(0, Some(20));
    let taken = theirs
        .handle_message(&ChannelMsg::Pay {
            channel_id: id,
            items: vec![item],
        })
        .unwrap();
    let ack = theirs
        .incoming_persisted(taken.received.unwrap().newest.proof.seq)
        .unwrap()
        .unwrap();
    frame(&mut m, &them, ack, &l);
    let view = &listed(&mut m, &l)[0];
    assert_eq!((view.owed, view.spendable, view.credit_limit), (20, 0, 20));

    // The creditor would lose the debt in a cooperative close: it signs none...
    let (close, sig) = match theirs.propose_close() {
        Err(paychan_channel::ChannelError::CreditInUse { owed: 20 }) => {
            let close = paychan_protocol::channel::CoopClose {
                chain_id: CHAIN,
                channel_id: id,
                balance_a: 0,
                balance_b: 150,
            };
            (close, close.sign(&me))
        }
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        theirs.on_close_propose(&close, &sig),
        Err(paychan_channel::ChannelError::CreditInUse { owed: 20 })
    ));
    // ...and the debtor's close goes unilateral, so that the settlement records the debt.
    m.handle(
        Event::Command {
            id: 9,
            command: Command::Close { id, force: false },
        },
        0,
        &l,
    );
    let actions = settle_batches(&mut m, &store, &l);
    assert!(
        actions.iter().any(|a| matches!(
            a,
            Action::Submit {
                tx: Tx::UnilateralClose { .. },
                ..
            }
        )),
        "{actions:?}"
    );
}

#[test]
fn the_checks_of_one_round_are_answered_together_and_a_bad_signature_refuses_only_its_own() {
    let me = Keypair::from_seed([1; 32]);
    let (a, b) = (Keypair::from_seed([2; 32]), Keypair::from_seed([3; 32]));
    let mut l = ledger(&[&me, &a, &b]);
    let store = MemStore::new();
    let mut payers = Vec::new();
    for (k, salt) in [(&a, 9), (&b, 10)] {
        let signed = signed_open_with(&me, k, salt, 100);
        let id = signed.open.channel_id();
        let ch = Channel::new(signed.clone(), me.clone()).unwrap();
        store
            .put_channel(&id, &paychan_protocol::codec::encode(&ch.snapshot()))
            .unwrap();
        l.channels.insert(id, LedgerChannel::Open);
        let mut theirs = Channel::new(signed.clone(), k.clone()).unwrap();
        theirs.on_open_confirmed().unwrap();
        // The payer signs only once reestablished: with a bare channel of the payee's, here
        // (the proofs travel in requests, not on this connection).
        let mut mirror = Channel::new(signed, me.clone()).unwrap();
        mirror.on_open_confirmed().unwrap();
        let (g1, g2) = (theirs.peer_connected().unwrap(), mirror.peer_connected().unwrap());
        for r in mirror.handle_message(&g1).unwrap().send {
            let _ = theirs.handle_message(&r);
        }
        for r in theirs.handle_message(&g2).unwrap().send {
            let _ = mirror.handle_message(&r);
        }
        payers.push(theirs);
    }
    // A core that has adopted both channels, nothing asked yet.
    let fresh = || {
        let mut m = core_from(&me, &store);
        m.handle(Event::LedgerChanged, 0, &l);
        settle_batches(&mut m, &store, &l);
        m
    };
    let mut m = fresh();
    let reference = Hash32([7; 32]);
    let good = carried(&mut payers[0], 5, reference);
    let signed_well = carried(&mut payers[1], 4, reference);
    let mut forged = signed_well.clone();
    forged.proof.signature.0[5] ^= 1;
    let check = |item: &PayItem| Command::HttpCheck {
        item: item.clone(),
        price: 1,
        reference,
    };

    // Asked in one round: nothing is answered before the round ends, then both in order.
    asked(&mut m, 1, check(&good), &l);
    asked(&mut m, 2, check(&forged), &l);
    assert!(
        replies(&m.take_actions()).is_empty(),
        "answered before the round ended"
    );
    m.poll(0);
    match &replies(&m.take_actions())[..] {
        [(1, Ok(Response::HttpChecked(Ok(c)))), (2, Ok(Response::HttpChecked(Err(refusal))))] => {
            assert_eq!((c.amount, c.reused), (5, false));
            assert_eq!(refusal.kind, HttpRefusalKind::Invalid);
            assert!(refusal.text.contains("signature"), "{}", refusal.text);
        }
        other => panic!("not one answer each: {other:?}"),
    }
    // The forged proof left its channel free: the proof it copied is taken at once; the good
    // one holds its channel in flight, so a second request there is busy.
    assert_eq!(checked(&mut m, 3, &signed_well, &l), Ok(4));
    assert_eq!(checked(&mut m, 4, &good, &l), Err(HttpRefusalKind::Busy));
    // A forged proof first, then the one it copied, in one round: the forged one holds
    // nothing, so the good one is taken as if it came alone.
    let mut m3 = fresh();
    asked(&mut m3, 7, check(&forged), &l);
    asked(&mut m3, 8, check(&signed_well), &l);
    m3.poll(0);
    let rs = replies(&m3.take_actions());
    assert!(
        matches!(
            &rs[..],
            [
                (
                    7,
                    Ok(Response::HttpChecked(Err(HttpRefusal {
                        kind: HttpRefusalKind::Invalid,
                        ..
                    })))
                ),
                (8, Ok(Response::HttpChecked(Ok(_))))
            ]
        ),
        "{rs:?}"
    );
    // Two valid checks of one round, one batch: both pass.
    let mut m2 = fresh();
    asked(&mut m2, 5, check(&good), &l);
    asked(&mut m2, 6, check(&signed_well), &l);
    m2.poll(0);
    let rs = replies(&m2.take_actions());
    assert!(
        matches!(
            &rs[..],
            [
                (5, Ok(Response::HttpChecked(Ok(_)))),
                (6, Ok(Response::HttpChecked(Ok(_))))
            ]
        ),
        "{rs:?}"
    );
    // A round holds at most ROUND_HTTP_CHECKS_MAX checks: the next one has the full round
    // answered first, in order, and waits for the end of its own.
    let mut m4 = fresh();
    let max = crate::manager::limits::ROUND_HTTP_CHECKS_MAX as u64;
    for id in 1..=max {
        asked(&mut m4, id, check(&good), &l);
    }
    assert!(replies(&m4.take_actions()).is_empty());
    asked(&mut m4, max + 1, check(&good), &l);
    let rs = replies(&m4.take_actions());
    assert_eq!(rs.len() as u64, max, "the full round is answered");
    assert!(
        matches!(&rs[0], (1, Ok(Response::HttpChecked(Ok(c)))) if c.amount == 5),
        "{:?}",
        rs[0]
    );
    for (i, (id, r)) in rs.iter().enumerate().skip(1) {
        assert_eq!(*id, i as u64 + 1, "in the order asked");
        assert!(
            matches!(
                r,
                Ok(Response::HttpChecked(Err(HttpRefusal {
                    kind: HttpRefusalKind::Busy,
                    ..
                })))
            ),
            "{r:?}"
        );
    }
    m4.poll(0);
    let rs = replies(&m4.take_actions());
    assert!(
        matches!(
            &rs[..],
            [(id, Ok(Response::HttpChecked(Err(HttpRefusal { kind: HttpRefusalKind::Busy, .. }))))] if *id == max + 1
        ),
        "{rs:?}"
    );
}

#[test]
fn every_pay_frame_of_a_buffered_job_fits_the_frame_size() {
    use paychan_protocol::limits::{pay_items_per_frame, FRAME_BYTES_MAX};
    // 32 payments per proof: a round of ROUND_SIGNATURES_MAX proofs in one frame passes the
    // frame size (321 KB when the cut was missing), which the payee refuses: the job never
    // ended.
    let (me, them) = keys();
    let mut l = ledger(&[&me, &them]);
    let store = MemStore::new();
    let (mut m, mut theirs, id) = open_channel_with(&me, &them, &mut l, &store, 20_000);
    let per_frame = pay_items_per_frame(32);
    assert!(per_frame < ROUND_SIGNATURES_MAX, "the case this test is for");
    m.handle(
        Event::Command {
            id: 1,
            command: Command::Pay {
                id,
                amount: 1,
                count: 32 * 600,
                reference: Hash32([5; 32]),
                per_proof: 32,
            },
        },
        0,
        &l,
    );
    let (mut largest, mut proofs) = (0, 0);
    let mut actions = Vec::new();
    for _ in 0..64 {
        actions.extend(settle_batches(&mut m, &store, &l));
        for msg in frames(&mut m, &them) {
            if let ChannelMsg::Pay { items, .. } = &msg {
                let bytes = paychan_protocol::codec::encode(&msg).len();
                assert!(bytes <= FRAME_BYTES_MAX, "a pay frame of {bytes} bytes");
                assert!(items.len() <= per_frame, "{} items in one frame", items.len());
                largest = largest.max(items.len());
                proofs += items.len();
            }
            payee_takes(&mut m, &them, &mut theirs, &msg, &l);
        }
        if replies(&actions).iter().any(|(c, _)| *c == 1) {
            break;
        }
    }
    assert_eq!(largest, per_frame, "some rounds were cut at the frame's room");
    assert_eq!((proofs, theirs.transferred_in()), (600, 32 * 600));
    assert!(
        matches!(
            replies(&actions)[..],
            [(1, Ok(Response::Paid(PayStats { proofs: 600, .. })))]
        ),
        "{:?}",
        replies(&actions)
    );
}
