//! A deterministic simulation of many nodes in one thread: N channel manager cores with M
//! channels between them, over fault-injecting memory stores, a simulated network and the real
//! ledger rules with a simulated sequencer. Faults: delays (which reorder frames across
//! streams), streams cut with their frames in flight, partitions, dials that fail, frames of
//! an old stream delivered late (duplicates), crashes that lose unsynced writes and restarts at
//! any step, failed syncs, a mempool that loses what it held, and clock skew. The invariants of
//! DESIGN.md are checked after every step: conservation, nothing acknowledged lost, no double
//! signing, latest wins (every payout within what was acked and what was signed), nothing stuck
//! (once faults stop, every channel on the ledger ends closed).
//!
//! Every run replays from its seed: `PAYCHAN_SIM_SEED` (random by default, always printed).
//! `PAYCHAN_SIM_SEEDS` sets how many seeds the long run (`--ignored`, used by
//! `scripts/sim.sh`) goes through; it prints `{"seeds":N,"steps":S,"violations":V,"stuck":K}`
//! as its last line, and the failing seeds.

use std::collections::{BTreeMap, HashMap, VecDeque};

use paychan_client::manager::core::{Action, Batch, Command, Event, LedgerView, Manager, Response};
use paychan_client::{LedgerChannel, ManagerConfig};
use paychan_ledger::testkit::{TestChain, TestNet, TestParams};
use paychan_ledger::{LedgerState, Mempool};
use paychan_net::{peer_id_from_public_key, PeerId};
use paychan_protocol::wire::ChannelMsg;
use paychan_protocol::{ChannelId, Direction, Hash32, Keypair, PublicKey, Tx};
use paychan_store::{FaultyStore, MemStore, Store};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// Seeds a plain `cargo test` runs.
const CI_SEEDS: u64 = 6;
/// Seeds the planted-bug test may run before one catches the bug.
const PLANTED_SEEDS_MAX: u64 = 30;
/// Steps with faults, then at most this many more to heal and close.
const FAULT_STEPS: u64 = 1_500;
const HEAL_STEPS_MAX: u64 = 6_000;
/// Steps (about 5 ms each) that pay jobs get to finish once the faults stop.
const PAY_DRAIN_STEPS_MAX: u64 = 4_000;

struct Params {
    nodes: usize,
    channels: usize,
    /// Per-step probabilities in parts per 10,000.
    crash: u32,
    cut: u32,
    partition: u32,
    flush_fail: u32,
    mempool_loss: u32,
    /// Chance (per 10,000) that a node's replica does not apply a block when it is made, and
    /// lags behind the chain until it catches up (each step, one in 16).
    lag: u32,
}

impl Params {
    fn from_rng(rng: &mut ChaCha8Rng) -> Params {
        Params {
            nodes: 2 + (rng.next_u32() % 3) as usize,
            channels: 2 + (rng.next_u32() % 4) as usize,
            crash: 5 + rng.next_u32() % 20,
            cut: 10 + rng.next_u32() % 40,
            partition: rng.next_u32() % 10,
            flush_fail: rng.next_u32() % 30,
            mempool_loss: rng.next_u32() % 20,
            lag: rng.next_u32() % 3_000,
        }
    }
}

/// A node's replica of the chain: the state it has applied, and the chain's blocks (of which
/// it has applied those up to its state's height).
struct View<'a>(&'a LedgerState, &'a [paychan_protocol::ledger::Block]);

impl LedgerView for View<'_> {
    fn opens_naming(&self, key: &PublicKey, after: u64) -> paychan_client::manager::OpensScan {
        let to = self.0.height();
        let from = usize::try_from(after).unwrap_or(usize::MAX);
        let upto = usize::try_from(to).unwrap_or(usize::MAX).min(self.1.len());
        let opens = self.1[from.min(upto)..upto]
            .iter()
            .flat_map(|b| b.txs.iter())
            .filter_map(|tx| match tx {
                Tx::Open(o) if o.open.party_a == *key || o.open.party_b == *key => Some(o.clone()),
                _ => None,
            })
            .collect();
        paychan_client::manager::OpensScan {
            scanned_to: to.max(after),
            opens,
        }
    }
    fn chain_id(&self) -> Hash32 {
        self.0.chain_id()
    }
    fn time_ms(&self) -> u64 {
        self.0.time_ms()
    }
    fn height(&self) -> u64 {
        self.0.height()
    }
    fn witnessed_height(&self) -> u64 {
        self.0.height()
    }
    fn censored(&self, _id: &ChannelId) -> bool {
        false
    }
    fn channel(&self, id: &ChannelId) -> Option<LedgerChannel> {
        LedgerChannel::of(self.0, id)
    }
    fn balance(&self, key: &PublicKey) -> u64 {
        self.0.balance(key)
    }
}

struct Node {
    key: Keypair,
    peer: PeerId,
    store: FaultyStore<MemStore>,
    core: Option<Manager>,
    /// The batch being written: completes at the given time.
    writing: Option<(u64, Batch)>,
    skew_ms: u64,
    down_until: u64,
    /// The state this node's replica holds while it lags behind the chain (`None`: at the tip).
    behind: Option<LedgerState>,
}

impl Node {
    fn replica<'a>(&'a self, chain: &'a LedgerState) -> &'a LedgerState {
        self.behind.as_ref().unwrap_or(chain)
    }
}

/// One direction of a stream: frames in order, each with its delivery time.
#[derive(Default)]
struct Pipe {
    frames: VecDeque<(u64, ChannelMsg)>,
}

struct Stream {
    a: usize,
    b: usize,
    epoch: u64,
    /// a to b, b to a.
    pipes: [Pipe; 2],
    up_at: u64,
    announced: bool,
    dialer: usize,
}

#[derive(Default, Debug, Clone, Copy)]
struct Stats {
    crashes: u64,
    acks: u64,
    payouts: u64,
    payments_acked: u64,
}

#[derive(Default, Debug, Clone, Copy)]
struct Outcome {
    stats: Stats,
    steps: u64,
    violations: u64,
    stuck: u64,
}

struct Sim {
    rng: ChaCha8Rng,
    p: Params,
    now: u64,
    chain: TestChain,
    mempool: Mempool,
    next_block_at: u64,
    nodes: Vec<Node>,
    streams: Vec<Stream>,
    /// Frames of cut streams that may still arrive late (a duplicate of an old connection).
    stale: Vec<(usize, PeerId, u64, ChannelMsg)>,
    partitioned_until: HashMap<(usize, usize), u64>,
    next_command: u64,
    /// Per command: the node, and what it was.
    commands: BTreeMap<u64, (usize, Command)>,
    /// Every proof ever signed: (channel, direction, seq) -> hash of its body.
    signed: HashMap<(ChannelId, Direction, u64), Hash32>,
    /// The highest transferred amount signed per (channel, direction), the amount of each
    /// proof, and the highest acknowledged.
    signed_max: HashMap<(ChannelId, Direction), u64>,
    transferred_of: HashMap<(ChannelId, Direction, u64), u64>,
    acked_max: HashMap<(ChannelId, Direction), u64>,
    /// Channels the simulation asked for, by the opener's command.
    wanted: BTreeMap<u64, (usize, usize)>,
    violations: Vec<String>,
    /// Non-vacuity: how much happened.
    stats: Stats,
    faults: bool,
    planted: Option<usize>,
}

fn seed_from_env() -> u64 {
    match std::env::var("PAYCHAN_SIM_SEED") {
        Ok(s) => s.parse().expect("PAYCHAN_SIM_SEED is a u64"),
        Err(_) => rand_core::OsRng.next_u64(),
    }
}

impl Sim {
    fn new(seed: u64, planted: bool) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let p = Params::from_rng(&mut rng);
        let net = TestNet::with_params(TestParams {
            users: p.nodes,
            balance: 1_000_000,
            // A window of 20 time steps, the fewest a genesis may have.
            challenge_period_ms: 10_000,
            block_interval_ms: 500,
            heartbeat_interval_ms: 500,
            max_time_step_ms: 500,
            ..TestParams::default()
        });
        let mempool = Mempool::new(&net.genesis);
        let keys = net.users.clone();
        let chain = TestChain::new(net);
        let start = chain.state.time_ms();
        let mut sim = Sim {
            rng,
            now: start,
            next_block_at: start + 500,
            chain,
            mempool,
            nodes: Vec::new(),
            streams: Vec::new(),
            stale: Vec::new(),
            partitioned_until: HashMap::new(),
            next_command: 1,
            commands: BTreeMap::new(),
            signed: HashMap::new(),
            signed_max: HashMap::new(),
            transferred_of: HashMap::new(),
            acked_max: HashMap::new(),
            wanted: BTreeMap::new(),
            violations: Vec::new(),
            stats: Stats::default(),
            faults: true,
            planted: None,
            p,
        };
        for key in keys {
            let skew_ms = sim.rng.next_u64() % 3_000;
            let peer = peer_id_from_public_key(&key.public()).unwrap();
            sim.nodes.push(Node {
                key,
                peer,
                store: FaultyStore::new(MemStore::new()).unwrap(),
                core: None,
                writing: None,
                skew_ms,
                down_until: 0,
                behind: None,
            });
        }
        if planted {
            sim.planted = Some(0);
        }
        for i in 0..sim.nodes.len() {
            sim.start_node(i);
        }
        sim
    }

    fn start_node(&mut self, i: usize) {
        let seed = self.rng.next_u64();
        let n = &mut self.nodes[i];
        let records = n.store.channels().unwrap();
        let meta = n.store.meta_entries().unwrap();
        let mut core = Manager::restore(
            n.key.clone(),
            self.chain.net.chain_id,
            ManagerConfig::default(),
            Box::new(ChaCha8Rng::seed_from_u64(seed)),
            records,
            meta,
            self.now + n.skew_ms,
        )
        .expect("restore");
        if self.planted == Some(i) {
            core.plant_ack_before_durable();
        }
        // Nothing acknowledged is lost: every channel this node acked on is restored, with at
        // least what it acked.
        let me = self.nodes[i].key.public();
        let restored = core.channel_ids();
        for (id, e) in self.chain.state.channels() {
            let dir = if e.party_a == me {
                Direction::BToA
            } else {
                Direction::AToB
            };
            let acked = self.acked_max.get(&(*id, dir)).copied().unwrap_or(0);
            if (e.party_a == me || e.party_b == me) && acked > 0 && !restored.contains(id) {
                self.violations.push(format!(
                    "node {i} acked {acked} on {id} but did not restore the channel"
                ));
            }
        }
        for id in restored {
            let ch = core.channel(&id).unwrap();
            let dir = ch.incoming_direction();
            let acked = self.acked_max.get(&(id, dir)).copied().unwrap_or(0);
            let durable = ch.durable_incoming().map_or(0, |p| p.proof.transferred);
            if durable < acked {
                self.violations.push(format!(
                    "node {i} acked {acked} on {id} {dir:?} but restored only {durable}"
                ));
            }
        }
        core.handle(
            Event::LedgerChanged,
            self.now + self.nodes[i].skew_ms,
            &View(self.nodes[i].replica(&self.chain.state), &self.chain.blocks),
        );
        self.nodes[i].core = Some(core);
    }

    fn chance(&mut self, per_10k: u32) -> bool {
        self.faults && self.rng.next_u32() % 10_000 < per_10k
    }

    fn index_of(&self, peer: &PeerId) -> Option<usize> {
        self.nodes.iter().position(|n| n.peer == *peer)
    }

    fn partitioned(&self, a: usize, b: usize) -> bool {
        let k = (a.min(b), a.max(b));
        self.partitioned_until.get(&k).is_some_and(|t| self.now < *t)
    }

    fn command(&mut self, i: usize, command: Command) -> u64 {
        let id = self.next_command;
        self.next_command += 1;
        self.commands.insert(id, (i, command.clone()));
        self.deliver(i, Event::Command { id, command });
        id
    }

    fn deliver(&mut self, i: usize, event: Event) {
        let now = self.now + self.nodes[i].skew_ms;
        let node = &mut self.nodes[i];
        if let Some(core) = node.core.as_mut() {
            let state = node.behind.as_ref().unwrap_or(&self.chain.state);
            core.handle(event, now, &View(state, &self.chain.blocks));
        }
    }

    fn crash(&mut self, i: usize) {
        self.stats.crashes += 1;
        // What the crashed process was asked is never answered: a user asks for a lost open
        // again (else a crash before the first open answered left a run with no channel).
        let lost: Vec<u64> = self
            .commands
            .iter()
            .filter(|(_, (node, c))| *node == i && matches!(c, Command::Open { .. }))
            .map(|(id, _)| *id)
            .collect();
        for id in lost {
            if let Some(pair) = self.wanted.remove(&id) {
                let k = self.reopen_key();
                self.wanted.insert(k, pair);
            }
        }
        self.commands.retain(|_, (node, _)| *node != i);
        let n = &mut self.nodes[i];
        n.core = None;
        n.writing = None;
        let store = std::mem::replace(&mut n.store, FaultyStore::new(MemStore::new()).unwrap());
        n.store = store.crash();
        n.down_until = self.now + 50 + self.rng.next_u64() % 2_000;
        let streams: Vec<usize> = (0..self.streams.len())
            .filter(|s| self.streams[*s].a == i || self.streams[*s].b == i)
            .collect();
        for s in streams.into_iter().rev() {
            self.cut(s);
        }
    }

    fn cut(&mut self, s: usize) {
        let st = self.streams.remove(s);
        let (pa, pb) = (self.nodes[st.a].peer, self.nodes[st.b].peer);
        // A few frames of the old stream may still show up (the epoch must make them harmless).
        for (dir, pipe) in st.pipes.iter().enumerate() {
            if let Some((_, msg)) = pipe.frames.front() {
                let (to, from) = if dir == 0 { (st.b, pa) } else { (st.a, pb) };
                self.stale.push((to, from, st.epoch, msg.clone()));
            }
        }
        if st.announced {
            self.deliver(
                st.a,
                Event::LinkDown {
                    peer: pb,
                    epoch: st.epoch,
                },
            );
            self.deliver(
                st.b,
                Event::LinkDown {
                    peer: pa,
                    epoch: st.epoch,
                },
            );
        }
    }

    fn observe_frame(&mut self, from: usize, msg: &ChannelMsg) {
        match msg {
            ChannelMsg::Pay { channel_id, items } => {
                for item in items {
                    let p = &item.proof.proof;
                    let key = (*channel_id, p.direction, p.seq);
                    let hash = item.proof.proof.hash();
                    if let Some(old) = self.signed.insert(key, hash) {
                        if old != hash {
                            self.violations
                                .push(format!("node {from} signed two proofs for {key:?}"));
                        }
                    }
                    self.transferred_of.insert(key, p.transferred);
                    let m = self.signed_max.entry((*channel_id, p.direction)).or_default();
                    *m = (*m).max(p.transferred);
                }
            }
            ChannelMsg::Ack {
                channel_id,
                direction,
                seq,
                ..
            } => {
                self.stats.acks += 1;
                if let Some(t) = self.transferred_of.get(&(*channel_id, *direction, *seq)).copied() {
                    let m = self.acked_max.entry((*channel_id, *direction)).or_default();
                    *m = (*m).max(t);
                }
            }
            _ => {}
        }
    }

    /// Runs the node's actions and moves its frames into its streams.
    fn pump(&mut self, i: usize) {
        let now = self.now + self.nodes[i].skew_ms;
        let Some(core) = self.nodes[i].core.as_mut() else {
            return;
        };
        core.poll(now);
        let actions = core.take_actions();
        for a in actions {
            match a {
                Action::Persist(batch) => {
                    // Written now, synced when the write completes: a crash between loses it.
                    let n = &mut self.nodes[i];
                    for (id, seq, record) in &batch.payments {
                        n.store.put_payments(id, *seq, record).unwrap();
                    }
                    for (id, bytes) in &batch.channels {
                        n.store.put_channel(id, bytes).unwrap();
                    }
                    for id in &batch.deletes {
                        n.store.delete_channel(id).unwrap();
                    }
                    for (k, v) in &batch.meta {
                        n.store.put_meta(k, v).unwrap();
                    }
                    let at = self.now + 1 + self.rng.next_u64() % 20;
                    self.nodes[i].writing = Some((at, batch));
                }
                Action::Submit { tx, .. } => {
                    let _ = self.mempool.submit(tx, &self.chain.state);
                }
                Action::Reply { id, result } => self.on_reply(id, result),
                Action::Dial(peer) => {
                    let Some(j) = self.index_of(&peer) else { continue };
                    let ok = self.nodes[j].core.is_some() && !self.partitioned(i, j);
                    if ok {
                        let epoch = self.rng.next_u64();
                        let up_at = self.now + 1 + self.rng.next_u64() % 20;
                        self.streams.push(Stream {
                            a: i,
                            b: j,
                            epoch,
                            pipes: [Pipe::default(), Pipe::default()],
                            up_at,
                            announced: false,
                            dialer: i,
                        });
                    } else {
                        self.deliver(i, Event::DialFailed(peer));
                    }
                }
                Action::CloseLink { peer, epoch } => {
                    let Some(j) = self.index_of(&peer) else { continue };
                    let pair = |s: &Stream| (s.a == i && s.b == j) || (s.a == j && s.b == i);
                    if let Some(s) = self.streams.iter().position(|s| s.epoch == epoch && pair(s)) {
                        self.cut(s);
                    }
                }
            }
        }
        // Frames into the streams, in order, each after a random delay.
        let mut out = Vec::new();
        for s in 0..self.streams.len() {
            let (a, b) = (self.streams[s].a, self.streams[s].b);
            if !self.streams[s].announced || (a != i && b != i) {
                continue;
            }
            let (to, dir) = if a == i { (b, 0) } else { (a, 1) };
            let peer = self.nodes[to].peer;
            let Some(core) = self.nodes[i].core.as_mut() else {
                return;
            };
            if core.link_epoch(&peer) != Some(self.streams[s].epoch) {
                continue;
            }
            out.clear();
            core.take_frames(&peer, 64, &mut out);
            for msg in out.drain(..) {
                self.observe_frame(i, &msg);
                let last = self.streams[s].pipes[dir].frames.back().map_or(0, |(t, _)| *t);
                let at = (self.now + 1 + self.rng.next_u64() % 30).max(last);
                self.streams[s].pipes[dir].frames.push_back((at, msg));
            }
        }
    }

    /// An open that failed is asked for again later (the pair stays wanted); failed closes
    /// are asked again by the heal phase.
    fn on_reply(&mut self, id: u64, result: Result<Response, paychan_client::ManagerError>) {
        let Some((_, command)) = self.commands.remove(&id) else {
            return;
        };
        if let (Command::Open { .. }, Err(_)) = (command, result) {
            if let Some(pair) = self.wanted.remove(&id) {
                let k = self.reopen_key();
                self.wanted.insert(k, pair);
            }
        }
    }

    fn reopen_key(&mut self) -> u64 {
        // Keys above every command id mark "not asked yet".
        u64::MAX / 2 + self.rng.next_u64() % (u64::MAX / 4)
    }

    fn step(&mut self) {
        self.now += 1 + self.rng.next_u64() % 10;
        // Faults.
        let n = self.nodes.len();
        for i in 0..n {
            // Crashes favour the interesting moment: a write on its way to the disk.
            let rate = if self.nodes[i].writing.is_some() {
                self.p.crash * 4
            } else {
                self.p.crash
            };
            if self.nodes[i].core.is_some() && self.chance(rate) {
                self.crash(i);
            } else if self.nodes[i].core.is_none() && self.now >= self.nodes[i].down_until {
                self.start_node(i);
            }
        }
        if !self.streams.is_empty() && self.chance(self.p.cut) {
            let s = (self.rng.next_u64() % self.streams.len() as u64) as usize;
            self.cut(s);
        }
        if self.chance(self.p.partition) {
            let a = (self.rng.next_u64() % n as u64) as usize;
            let b = (self.rng.next_u64() % n as u64) as usize;
            if a != b {
                let until = self.now + 100 + self.rng.next_u64() % 3_000;
                self.partitioned_until.insert((a.min(b), a.max(b)), until);
                let cut: Vec<usize> = (0..self.streams.len())
                    .filter(|s| {
                        (self.streams[*s].a, self.streams[*s].b) == (a, b)
                            || (self.streams[*s].a, self.streams[*s].b) == (b, a)
                    })
                    .collect();
                for s in cut.into_iter().rev() {
                    self.cut(s);
                }
            }
        }
        if self.chance(self.p.mempool_loss) {
            self.mempool = Mempool::new(&self.chain.net.genesis);
        }
        for i in 0..n {
            if self.chance(self.p.flush_fail) {
                self.nodes[i].store.fail_next_flushes(1);
            }
        }
        // Late frames of old streams.
        if !self.stale.is_empty() && self.rng.next_u32().is_multiple_of(8) {
            let (to, from, epoch, msg) = self.stale.swap_remove(0);
            self.deliver(
                to,
                Event::Frame {
                    peer: from,
                    epoch,
                    msg,
                },
            );
        }
        // Lagging replicas catch up (at once when the faults have stopped).
        for i in 0..n {
            if self.nodes[i].behind.is_some() && (!self.faults || self.rng.next_u32().is_multiple_of(16)) {
                self.nodes[i].behind = None;
                self.deliver(i, Event::LedgerChanged);
            }
        }
        // The sequencer.
        if self.now >= self.next_block_at {
            // Replicas that do not apply this block yet keep the state before it.
            let lags: Vec<bool> = (0..n).map(|_| self.chance(self.p.lag)).collect();
            if lags
                .iter()
                .zip(&self.nodes)
                .any(|(l, node)| *l && node.behind.is_none())
            {
                let before = self.chain.state.clone();
                for (l, node) in lags.iter().zip(self.nodes.iter_mut()) {
                    if *l && node.behind.is_none() {
                        node.behind = Some(before.clone());
                    }
                }
            }
            let txs = self.mempool.take_block_candidates(&self.chain.state, 64);
            self.chain.block_at(txs, self.now);
            self.mempool.prune(&self.chain.state);
            self.next_block_at = self.now + 500;
            for i in 0..n {
                if self.nodes[i].behind.is_none() {
                    self.deliver(i, Event::LedgerChanged);
                }
            }
            // Conservation, after every block.
            if self.chain.state.total_value() != self.chain.state.genesis_supply() {
                self.violations.push("conservation broken".into());
            }
        }
        // Persist completions.
        for i in 0..n {
            let due = self.nodes[i]
                .writing
                .as_ref()
                .is_some_and(|(at, _)| self.now >= *at);
            if due {
                let (_, batch) = self.nodes[i].writing.take().unwrap();
                let result = self.nodes[i].store.flush().map_err(|e| e.to_string());
                self.deliver(
                    i,
                    Event::Persisted {
                        batch: batch.id,
                        result,
                    },
                );
            }
        }
        // Streams come up and carry frames.
        for s in 0..self.streams.len() {
            if !self.streams[s].announced && self.now >= self.streams[s].up_at {
                self.streams[s].announced = true;
                let st = &self.streams[s];
                let (a, b, epoch, dialer) = (st.a, st.b, st.epoch, self.nodes[st.dialer].peer);
                let (pa, pb) = (self.nodes[a].peer, self.nodes[b].peer);
                self.deliver(
                    a,
                    Event::LinkUp {
                        peer: pb,
                        epoch,
                        dialer,
                    },
                );
                self.deliver(
                    b,
                    Event::LinkUp {
                        peer: pa,
                        epoch,
                        dialer,
                    },
                );
            }
        }
        let mut s = 0;
        while s < self.streams.len() {
            for dir in 0..2 {
                loop {
                    let st = &mut self.streams[s];
                    let ready = st.pipes[dir].frames.front().is_some_and(|(t, _)| *t <= self.now);
                    if !ready {
                        break;
                    }
                    let (_, msg) = st.pipes[dir].frames.pop_front().unwrap();
                    let (to, from) = if dir == 0 { (st.b, st.a) } else { (st.a, st.b) };
                    let epoch = st.epoch;
                    let peer = self.nodes[from].peer;
                    self.deliver(to, Event::Frame { peer, epoch, msg });
                }
            }
            s += 1;
        }
        if self.rng.next_u32().is_multiple_of(50) {
            for i in 0..n {
                self.deliver(i, Event::Tick);
            }
        }
        for i in 0..n {
            self.pump(i);
        }
    }

    /// The user: asks for channels, pays on them now and then.
    fn user(&mut self) {
        let asked: Vec<u64> = self
            .wanted
            .keys()
            .copied()
            .filter(|k| *k > u64::MAX / 2)
            .collect();
        for k in asked {
            let Some((a, b)) = self.wanted.remove(&k) else {
                continue;
            };
            if self.nodes[a].core.is_none() {
                self.wanted.insert(k, (a, b));
                continue;
            }
            let peer_key = self.nodes[b].key.public();
            let id = self.command(
                a,
                Command::Open {
                    peer_key,
                    deposit: 10_000,
                    their_deposit: 5_000,
                },
            );
            self.wanted.insert(id, (a, b));
        }
        if !self.rng.next_u32().is_multiple_of(8) {
            return;
        }
        let i = (self.rng.next_u64() % self.nodes.len() as u64) as usize;
        let Some(core) = self.nodes[i].core.as_ref() else {
            return;
        };
        let ids = core.channel_ids();
        if ids.is_empty() {
            return;
        }
        let id = ids[(self.rng.next_u64() % ids.len() as u64) as usize];
        let count = 1 + self.rng.next_u64() % 300;
        let amount = 1 + self.rng.next_u64() % 5;
        self.command(
            i,
            Command::Pay {
                id,
                amount,
                count,
                reference: Hash32::ZERO,
                per_proof: 1,
            },
        );
    }

    /// Every channel the ledger knows, with its parties.
    fn ledger_channels(&self) -> Vec<(ChannelId, PublicKey, PublicKey, u64, u64, bool)> {
        self.chain
            .state
            .channels()
            .map(|(id, e)| {
                let closed = matches!(e.status, paychan_ledger::ChannelStatus::Closed { .. });
                (*id, e.party_a, e.party_b, e.deposit_a, e.deposit_b, closed)
            })
            .collect()
    }

    /// Latest wins and nothing acknowledged lost, on every payout.
    fn check_payouts(&mut self) {
        for (id, e) in self.chain.state.channels() {
            let paychan_ledger::ChannelStatus::Closed { payout_a, .. } = e.status else {
                continue;
            };
            let g = |m: &HashMap<(ChannelId, Direction), u64>, d| m.get(&(*id, d)).copied().unwrap_or(0);
            let (acked_ab, acked_ba) = (
                g(&self.acked_max, Direction::AToB),
                g(&self.acked_max, Direction::BToA),
            );
            let (signed_ab, signed_ba) = (
                g(&self.signed_max, Direction::AToB),
                g(&self.signed_max, Direction::BToA),
            );
            let low = (e.deposit_a + acked_ba).saturating_sub(signed_ab);
            let high = (e.deposit_a + signed_ba).saturating_sub(acked_ab);
            if payout_a < low || payout_a > high {
                self.violations.push(format!(
                    "channel {id}: payout to A {payout_a} outside [{low}, {high}] (acked {acked_ab}/{acked_ba}, signed {signed_ab}/{signed_ba})"
                ));
            }
        }
    }

    fn run(mut self) -> (Outcome, Vec<String>) {
        let n = self.nodes.len();
        for c in 0..self.p.channels {
            let a = c % n;
            let b = (a + 1 + c / n) % n;
            if a != b {
                let k = self.reopen_key();
                self.wanted.insert(k, (a, b));
            }
        }
        let mut steps = 0;
        let mut seen = self.violations.len();
        for _ in 0..FAULT_STEPS {
            self.user();
            self.step();
            steps += 1;
            if self.violations.len() > seen {
                seen = self.violations.len();
            }
        }
        // Heal: no more faults; every node up; close every channel the ledger holds.
        self.faults = false;
        self.partitioned_until.clear();
        // Every payment asked of a live node is answered once the faults stop: a pay job that
        // never ends (bursts the payee refused and nobody sent again) is money stuck in flight.
        let pays = |sim: &Sim| {
            sim.commands
                .values()
                .filter(|(_, c)| matches!(c, Command::Pay { .. }))
                .count()
        };
        for _ in 0..PAY_DRAIN_STEPS_MAX {
            if pays(&self) == 0 {
                break;
            }
            self.step();
            steps += 1;
            if self.now.is_multiple_of(7) {
                for i in 0..n {
                    self.deliver(i, Event::Tick);
                }
            }
        }
        let unanswered = pays(&self) as u64;
        if unanswered > 0 && std::env::var_os("PAYCHAN_SIM_DEBUG").is_some() {
            for (i, c) in self.commands.values() {
                if let Command::Pay { id, .. } = c {
                    let mine = self.nodes[*i].core.as_ref().and_then(|m| m.channel(id));
                    let other = (0..n).find(|j| {
                        *j != *i
                            && self.nodes[*j]
                                .core
                                .as_ref()
                                .is_some_and(|m| m.channel(id).is_some())
                    });
                    let theirs = other.and_then(|j| self.nodes[j].core.as_ref().and_then(|m| m.channel(id)));
                    if let Some(c) = mine {
                        let peer = peer_id_from_public_key(&c.counterparty_key()).unwrap();
                        eprintln!(
                            "  reestablished {} spendable {} link {:?} connected {}",
                            c.is_reestablished(),
                            c.spendable(),
                            self.nodes[*i].core.as_ref().unwrap().link_epoch(&peer),
                            c.is_connected()
                        );
                    }
                    eprintln!("pay on node {i} {id}: mine {:?} status {:?} unacked {:?} next_seq {:?} transferred_out {:?}; theirs (node {other:?}) {:?} in {:?} connected {:?}; ledger {:?}",
                        mine.is_some(), mine.map(|c| c.status()), mine.map(|c| c.unacked_len()), mine.map(|c| c.next_seq()), mine.map(|c| c.transferred_out()),
                        theirs.map(|c| c.status()), theirs.map(|c| c.transferred_in()), theirs.map(|c| c.is_connected()),
                        LedgerChannel::of(&self.chain.state, id));
                }
            }
        }
        if unanswered > 0 {
            self.violations.push(format!(
                "{unanswered} pay commands never answered after the faults stopped"
            ));
        }
        let mut closes: HashMap<ChannelId, u64> = HashMap::new();
        for _ in 0..HEAL_STEPS_MAX {
            self.step();
            steps += 1;
            if self.now.is_multiple_of(7) {
                for i in 0..n {
                    self.deliver(i, Event::Tick);
                }
            }
            let mut all_closed = true;
            for (id, a, _b, _, _, closed) in self.ledger_channels() {
                if closed {
                    continue;
                }
                all_closed = false;
                let ia = self.nodes.iter().position(|x| x.key.public() == a).unwrap();
                let tries = closes.entry(id).or_default();
                // Ask now and then; cooperatively first, then with force.
                if self.now.is_multiple_of(97) && self.nodes[ia].core.is_some() {
                    *tries += 1;
                    let force = *tries > 10;
                    self.command(ia, Command::Close { id, force });
                }
            }
            self.check_payouts();
            if all_closed && self.wanted.keys().all(|k| *k < u64::MAX / 2) && steps > FAULT_STEPS + 50 {
                break;
            }
        }
        self.check_payouts();
        let stuck = self.ledger_channels().iter().filter(|c| !c.5).count() as u64;
        self.stats.payouts = self.ledger_channels().iter().filter(|c| c.5).count() as u64;
        self.stats.payments_acked = self.acked_max.values().sum();
        let mut v = self.violations;
        v.dedup();
        (
            Outcome {
                stats: self.stats,
                steps,
                violations: v.len() as u64,
                stuck,
            },
            v,
        )
    }
}

fn run_seed(seed: u64, planted: bool) -> (Outcome, Vec<String>) {
    Sim::new(seed, planted).run()
}

fn run_seeds(first: u64, count: u64, planted: bool) -> (Outcome, Vec<(u64, Vec<String>, u64)>) {
    let mut total = Outcome::default();
    let mut failing = Vec::new();
    for seed in first..first + count {
        let (o, v) = run_seed(seed, planted);
        total.steps += o.steps;
        total.violations += o.violations;
        total.stuck += o.stuck;
        total.stats.crashes += o.stats.crashes;
        total.stats.acks += o.stats.acks;
        total.stats.payouts += o.stats.payouts;
        total.stats.payments_acked += o.stats.payments_acked;
        if o.violations > 0 || o.stuck > 0 {
            failing.push((seed, v, o.stuck));
        }
    }
    (total, failing)
}

#[test]
fn ci_seeds_hold_every_invariant() {
    let first = seed_from_env();
    println!("PAYCHAN_SIM_SEED={first} ({CI_SEEDS} seeds from it)");
    let (total, failing) = run_seeds(first, CI_SEEDS, false);
    for (seed, v, stuck) in &failing {
        println!("failing seed {seed}: stuck {stuck}, {v:?}");
    }
    println!("{:?}", total.stats);
    assert!(failing.is_empty(), "replay with PAYCHAN_SIM_SEED=<failing seed>");
    assert!(total.steps > CI_SEEDS * FAULT_STEPS);
    // Not vacuous: crashes happened, payments were acked, channels paid out.
    let s = total.stats;
    assert!(
        s.crashes >= CI_SEEDS && s.acks >= 10 * CI_SEEDS && s.payouts >= CI_SEEDS,
        "{s:?}"
    );
}

#[test]
fn a_runs_is_replayable_from_its_seed() {
    let seed = seed_from_env();
    println!("PAYCHAN_SIM_SEED={seed}");
    let (a, va) = run_seed(seed, false);
    let (b, vb) = run_seed(seed, false);
    assert_eq!((a.steps, a.violations, a.stuck), (b.steps, b.violations, b.stuck));
    assert_eq!(va, vb);
}

#[test]
fn an_ack_sent_before_its_write_is_durable_is_caught() {
    // The planted bug loses an ack only when a crash falls between the early report and the
    // write: not every seed draws one, so the seeds run until one catches it, at most
    // PLANTED_SEEDS_MAX of them (random seeds; a failure prints the first).
    let first = seed_from_env();
    println!("PAYCHAN_SIM_SEED={first}");
    let caught = (first..first + PLANTED_SEEDS_MAX).find_map(|seed| {
        let (o, v) = run_seed(seed, true);
        (o.violations > 0).then_some((seed, v))
    });
    let Some((seed, violations)) = caught else {
        panic!("the planted bug (batches reported durable before their sync) goes unnoticed in {PLANTED_SEEDS_MAX} seeds");
    };
    println!("caught by seed {seed}");
    assert!(
        violations.iter().any(|s| s.contains("acked")),
        "caught as an acknowledged payment lost: {violations:?}"
    );
}

/// The long run of `scripts/sim.sh`.
#[test]
#[ignore = "long: run by scripts/sim.sh"]
fn many_seeds() {
    let first = seed_from_env();
    let count: u64 = std::env::var("PAYCHAN_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    println!("PAYCHAN_SIM_SEED={first} ({count} seeds from it)");
    let (total, failing) = run_seeds(first, count, false);
    for (seed, v, stuck) in &failing {
        println!("failing seed {seed}: stuck {stuck}, {v:?}");
    }
    println!(
        "{{\"seeds\":{count},\"steps\":{},\"violations\":{},\"stuck\":{}}}",
        total.steps, total.violations, total.stuck
    );
    assert!(failing.is_empty());
}
