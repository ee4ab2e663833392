//! Helpers for tests of this crate and of the crates above it: deterministic keys, a funded
//! genesis, transaction builders and a small chain driver.
//!
//! Enabled by the `testkit` feature (and in this crate's own tests). Everything is
//! deterministic: keys come from fixed seeds, times from the caller.
//!
//! ```
//! use paychan_ledger::testkit::{TestChain, TestNet};
//! let net = TestNet::new(3, 1_000);
//! let (a, b) = (net.users[0].clone(), net.users[1].clone());
//! let mut chain = TestChain::new(net);
//! let tx = chain.net.transfer(&a, b.public(), 10, 0);
//! assert!(chain.next_block(vec![tx]).is_empty());
//! assert_eq!(chain.state.balance(&b.public()), 1_010);
//! ```

use paychan_protocol::channel::{ChannelOpen, CoopClose, SignedCoopClose, SignedOpen};
use paychan_protocol::hash::sha256;
use paychan_protocol::ledger::{Deposit, Settle, Transfer, UnilateralClose, Update};
use paychan_protocol::{
    BalanceProof, Block, ChannelId, Checkpoint, Direction, Genesis, Hash32, Keypair, PublicKey,
    SignedCheckpoint, SignedProof, Tx,
};

use crate::error::TxError;

/// The cosignature timestamp (seconds since the Unix epoch) of the test kit's witnesses.
pub const COSIGN_TIME_S: u64 = 1_700_000_000;
use crate::state::LedgerState;

/// The keypair number `n`: `seed = SHA-256("paychan-ledger/testkit/key" || n as u64 LE)`.
pub fn keypair(n: u64) -> Keypair {
    Keypair::from_seed(sha256(&[b"paychan-ledger/testkit/key", &n.to_le_bytes()]).0)
}

/// The parameters of a test genesis. `Default` gives a small, quick network.
#[derive(Clone, Debug)]
pub struct TestParams {
    /// Funded user accounts.
    pub users: usize,
    /// Initial balance of each user.
    pub balance: u64,
    /// Number of witnesses.
    pub witnesses: usize,
    /// Witness threshold.
    pub witness_threshold: u32,
    /// Genesis time.
    pub genesis_time_ms: u64,
    /// Challenge period.
    pub challenge_period_ms: u64,
    /// Block interval.
    pub block_interval_ms: u64,
    /// Heartbeat interval.
    pub heartbeat_interval_ms: u64,
    /// Largest time step per block.
    pub max_time_step_ms: u64,
    /// Transactions per block.
    pub max_txs_per_block: u32,
    /// Pending transactions per account.
    pub max_pending_per_account: u32,
    /// Fixed part of a fee.
    pub tx_fee_min: u64,
    /// Fee per byte.
    pub tx_fee_per_byte: u64,
}

impl Default for TestParams {
    fn default() -> Self {
        TestParams {
            users: 4,
            balance: 1_000_000,
            witnesses: 3,
            witness_threshold: 2,
            genesis_time_ms: 1_700_000_000_000,
            // The shortest window genesis allows: 20 largest steps.
            challenge_period_ms: 100_000,
            block_interval_ms: 1_000,
            heartbeat_interval_ms: 5_000,
            max_time_step_ms: 5_000,
            max_txs_per_block: 64,
            max_pending_per_account: 8,
            tx_fee_min: 0,
            tx_fee_per_byte: 0,
        }
    }
}

/// A genesis with its secret keys: sequencer (key 0), witnesses (keys 1..), users (keys 1000..).
#[derive(Clone, Debug)]
pub struct TestNet {
    /// The genesis.
    pub genesis: Genesis,
    /// Its chain id.
    pub chain_id: Hash32,
    /// The sequencer.
    pub sequencer: Keypair,
    /// The witnesses, in genesis order.
    pub witnesses: Vec<Keypair>,
    /// The funded users (not sorted by key).
    pub users: Vec<Keypair>,
}

impl TestNet {
    /// `users` accounts funded with `balance` each, default parameters otherwise.
    pub fn new(users: usize, balance: u64) -> TestNet {
        TestNet::with_params(TestParams {
            users,
            balance,
            ..TestParams::default()
        })
    }

    /// A network from explicit parameters.
    pub fn with_params(p: TestParams) -> TestNet {
        let sequencer = keypair(0);
        let witnesses: Vec<Keypair> = (1..=p.witnesses as u64).map(keypair).collect();
        let users: Vec<Keypair> = (0..p.users as u64).map(|i| keypair(1000 + i)).collect();
        let mut allocations: Vec<(PublicKey, u64)> = users.iter().map(|k| (k.public(), p.balance)).collect();
        allocations.sort();
        let genesis = Genesis {
            network: "paychan-test".into(),
            unit: paychan_protocol::Unit::credit(),
            genesis_time_ms: p.genesis_time_ms,
            sequencer: sequencer.public(),
            witnesses: witnesses.iter().map(Keypair::public).collect(),
            witness_threshold: p.witness_threshold,
            challenge_period_ms: p.challenge_period_ms,
            block_interval_ms: p.block_interval_ms,
            heartbeat_interval_ms: p.heartbeat_interval_ms,
            max_time_step_ms: p.max_time_step_ms,
            max_txs_per_block: p.max_txs_per_block,
            max_pending_per_account: p.max_pending_per_account,
            tx_fee_min: p.tx_fee_min,
            tx_fee_per_byte: p.tx_fee_per_byte,
            allocations,
        };
        TestNet {
            chain_id: genesis.chain_id(),
            genesis,
            sequencer,
            witnesses,
            users,
        }
    }

    /// The state at genesis.
    pub fn state(&self) -> LedgerState {
        LedgerState::from_genesis(&self.genesis).expect("test genesis is valid")
    }

    /// A signed transfer.
    pub fn transfer(&self, from: &Keypair, to: PublicKey, amount: u64, nonce: u64) -> Tx {
        Tx::transfer(
            Transfer {
                chain_id: self.chain_id,
                from: from.public(),
                to,
                amount,
                nonce,
            },
            from,
        )
    }

    /// The open body of a channel between `a` and `b`; `salt` picks both salts.
    pub fn channel_open(
        &self,
        a: &Keypair,
        b: &Keypair,
        deposits: (u64, u64),
        salt: u64,
        expiry_ms: u64,
    ) -> ChannelOpen {
        ChannelOpen {
            chain_id: self.chain_id,
            party_a: a.public(),
            party_b: b.public(),
            deposit_a: deposits.0,
            deposit_b: deposits.1,
            salt_a: sha256(&[b"salt-a", &salt.to_le_bytes()]),
            salt_b: sha256(&[b"salt-b", &salt.to_le_bytes()]),
            expiry_ms,
        }
    }

    /// An open signed by both parties, with the id of the channel it creates.
    pub fn open(
        &self,
        a: &Keypair,
        b: &Keypair,
        deposits: (u64, u64),
        salt: u64,
        expiry_ms: u64,
    ) -> (Tx, ChannelId) {
        let open = self.channel_open(a, b, deposits, salt, expiry_ms);
        let id = open.channel_id();
        let tx = Tx::Open(SignedOpen {
            sig_a: open.sign(a),
            sig_b: open.sign(b),
            open,
        });
        (tx, id)
    }

    /// A signed deposit top-up.
    pub fn deposit(&self, from: &Keypair, channel_id: ChannelId, amount: u64, nonce: u64) -> Tx {
        Tx::deposit(
            Deposit {
                chain_id: self.chain_id,
                channel_id,
                from: from.public(),
                amount,
                nonce,
            },
            from,
        )
    }

    /// A cooperative close signed by both parties.
    pub fn coop_close(&self, a: &Keypair, b: &Keypair, channel_id: ChannelId, balances: (u64, u64)) -> Tx {
        let close = CoopClose {
            chain_id: self.chain_id,
            channel_id,
            balance_a: balances.0,
            balance_b: balances.1,
        };
        Tx::CoopClose(SignedCoopClose {
            sig_a: close.sign(a),
            sig_b: close.sign(b),
            close,
        })
    }

    /// A signed unilateral close.
    pub fn unilateral_close(
        &self,
        closer: &Keypair,
        channel_id: ChannelId,
        proof_ab: Option<SignedProof>,
        proof_ba: Option<SignedProof>,
    ) -> Tx {
        Tx::unilateral_close(
            UnilateralClose {
                chain_id: self.chain_id,
                channel_id,
                closer: closer.public(),
                proof_ab,
                proof_ba,
            },
            closer,
        )
    }

    /// A dispute update.
    pub fn update(
        &self,
        channel_id: ChannelId,
        proof_ab: Option<SignedProof>,
        proof_ba: Option<SignedProof>,
    ) -> Tx {
        Tx::Update(Update {
            chain_id: self.chain_id,
            channel_id,
            proof_ab,
            proof_ba,
        })
    }

    /// A credit grant signed by `creditor`.
    #[allow(clippy::too_many_arguments)]
    pub fn grant(
        &self,
        creditor: &Keypair,
        debtor: PublicKey,
        channel_id: ChannelId,
        limit: u64,
        expiry_ms: u64,
        due_ms: u64,
        nonce: u64,
    ) -> Tx {
        Tx::credit_grant(
            paychan_protocol::ledger::CreditGrant {
                chain_id: self.chain_id,
                channel_id,
                creditor: creditor.public(),
                debtor,
                limit,
                expiry_ms,
                due_ms,
                nonce,
            },
            creditor,
        )
    }

    /// A repayment signed by `from`.
    pub fn repay(&self, from: &Keypair, channel_id: ChannelId, amount: u64, nonce: u64) -> Tx {
        Tx::repay(
            paychan_protocol::ledger::Repay {
                chain_id: self.chain_id,
                channel_id,
                from: from.public(),
                amount,
                nonce,
            },
            from,
        )
    }

    /// A settlement.
    pub fn settle(&self, channel_id: ChannelId) -> Tx {
        Tx::Settle(Settle {
            chain_id: self.chain_id,
            channel_id,
        })
    }

    /// A balance proof signed by `payer` (the ledger does not look at `prev` or the memo, so
    /// they are fixed).
    pub fn proof(
        &self,
        payer: &Keypair,
        channel_id: ChannelId,
        direction: Direction,
        seq: u64,
        transferred: u64,
    ) -> SignedProof {
        BalanceProof {
            chain_id: self.chain_id,
            channel_id,
            direction,
            seq,
            transferred,
            prev: channel_id.0,
            memo_hash: Hash32::ZERO,
        }
        .sign(payer)
    }

    /// The checkpoint signed by the sequencer and cosigned by the witnesses at `cosigners`
    /// (indices into [`TestNet::witnesses`]).
    pub fn signed_checkpoint(&self, checkpoint: Checkpoint, cosigners: &[usize]) -> SignedCheckpoint {
        SignedCheckpoint {
            signature: checkpoint.sign_sequencer(&self.sequencer),
            cosignatures: cosigners
                .iter()
                .map(|&i| checkpoint.cosign(&self.witnesses[i], COSIGN_TIME_S))
                .collect(),
            checkpoint,
        }
    }
}

/// A sequencer's view of a test chain: the state and every block made so far.
#[derive(Clone, Debug)]
pub struct TestChain {
    /// The network.
    pub net: TestNet,
    /// The state after the last block.
    pub state: LedgerState,
    /// Every block, from height 1.
    pub blocks: Vec<Block>,
}

impl TestChain {
    /// A chain at genesis.
    pub fn new(net: TestNet) -> TestChain {
        TestChain {
            state: net.state(),
            net,
            blocks: Vec::new(),
        }
    }

    /// Makes a block from `txs` one block interval after the last one; returns the dropped
    /// candidates.
    pub fn next_block<C: Into<crate::CheckedTx>>(&mut self, txs: Vec<C>) -> Vec<(Tx, TxError)> {
        let now = self.state.time_ms() + self.net.genesis.block_interval_ms;
        self.block_at(txs, now)
    }

    /// Makes a block from `txs` with the sequencer's clock at `now_ms` (clamped by the ledger
    /// time rules); returns the dropped candidates. `txs` may be plain transactions or a
    /// mempool's candidates.
    pub fn block_at<C: Into<crate::CheckedTx>>(&mut self, txs: Vec<C>, now_ms: u64) -> Vec<(Tx, TxError)> {
        let (block, dropped) = self
            .state
            .produce_block(txs, now_ms, &self.net.sequencer)
            .expect("the test sequencer is the genesis sequencer");
        self.blocks.push(block);
        dropped
    }

    /// Makes empty heartbeat blocks until ledger time reaches `time_ms`.
    pub fn advance_to(&mut self, time_ms: u64) {
        while self.state.time_ms() < time_ms {
            self.block_at(Vec::<Tx>::new(), time_ms);
        }
    }
}

/// A small history that uses every transaction kind, for tests of replay, audit and export:
/// four users; block 1 opens channels 1 (users 0, 1) and 2 (users 2, 3) and transfers; block 2
/// tops up channel 1 and starts a unilateral close of channel 2 with a proof; block 3 answers
/// it with a higher proof (an update) and opens channel 3 (users 0, 2), which stays open;
/// heartbeats reach the end of the window; then channel 2 settles and channel 1 closes
/// cooperatively. Then `transfers` more transfers, at most `per_block` per block, round robin
/// between the users. Every candidate is accepted (the function checks it).
pub fn sample_history(transfers: usize, per_block: usize) -> TestChain {
    let net = TestNet::new(4, 1_000_000);
    let u: Vec<Keypair> = net.users.clone();
    let mut c = TestChain::new(net);
    let mut nonces = [0u64; 4];
    let mut next_nonce = |i: usize| {
        let n = nonces[i];
        nonces[i] += 1;
        n
    };
    let (open1, ch1) = c.net.open(&u[0], &u[1], (5_000, 1_000), 1, u64::MAX);
    let (open2, ch2) = c.net.open(&u[2], &u[3], (3_000, 3_000), 2, u64::MAX);
    let t = c.net.transfer(&u[0], u[3].public(), 250, next_nonce(0));
    let must = |dropped: Vec<(Tx, TxError)>| assert!(dropped.is_empty(), "{dropped:?}");
    must(c.next_block(vec![open1, open2, t]));
    let dep = c.net.deposit(&u[1], ch1, 700, next_nonce(1));
    let p_cd = c.net.proof(&u[2], ch2, Direction::AToB, 3, 1_200);
    let close = c.net.unilateral_close(&u[2], ch2, Some(p_cd), None);
    must(c.next_block(vec![dep, close]));
    let p_dc = c.net.proof(&u[3], ch2, Direction::BToA, 5, 400);
    let p_cd2 = c.net.proof(&u[2], ch2, Direction::AToB, 4, 1_500);
    let update = c.net.update(ch2, Some(p_cd2), Some(p_dc));
    let (open3, _ch3) = c.net.open(&u[0], &u[2], (2_000, 500), 3, u64::MAX);
    must(c.next_block(vec![update, open3]));
    let end = c.state.window_end_ms(&ch2).expect("channel 2 is closing");
    c.advance_to(end);
    let settle = c.net.settle(ch2);
    let coop = c.net.coop_close(&u[0], &u[1], ch1, (4_000, 2_700));
    must(c.next_block(vec![settle, coop]));
    let per_block = per_block.max(1);
    let mut left = transfers;
    let mut k = 0usize;
    while left > 0 {
        let n = left.min(per_block);
        let txs = (0..n)
            .map(|_| {
                let (from, to) = (k % 4, (k + 1) % 4);
                k += 1;
                c.net
                    .transfer(&u[from], u[to].public(), 1 + (k as u64 % 7), next_nonce(from))
            })
            .collect();
        must(c.next_block(txs));
        left -= n;
    }
    c
}
