//! A client's view of the ledger through a node it does not trust.
//!
//! [`RemoteLedger`] fetches blocks from the node over `/paychan/ledger/1` and replays each one
//! with the ledger rules (sequencer signature, every transaction, every root), so a node can
//! withhold blocks but never make the client accept a forged one. Before acting on one of its
//! own transactions the client also checks a witnessed checkpoint and an inclusion proof
//! ([`RemoteLedger::verify_included`]). Transactions go to the sequencer directly as well as
//! through the node.

use std::sync::RwLock;

use paychan_ledger::LedgerState;
use paychan_net::{peer_id_from_public_key, Multiaddr, NetHandle, PeerId};
use paychan_protocol::merkle::verify_inclusion;
use paychan_protocol::wire::{LedgerRequest, LedgerResponse, BLOCKS_PER_RESPONSE_MAX};
use paychan_protocol::{ChannelId, Genesis, Hash32, PublicKey, Tx};

use crate::ledger::{BoxFuture, LedgerAccess, LedgerChannel};

/// Why the remote ledger could not be used.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RemoteError {
    /// The node could not be reached or answered something unexpected.
    #[error("node: {0}")]
    Node(String),
    /// The node served something that does not verify: it is lying or broken.
    #[error("verification failed: {0}")]
    Invalid(String),
    /// Nothing witnessed covers the transaction yet; ask again later.
    #[error("not yet witnessed: {0}")]
    NotYet(String),
}

/// The ledger as a client sees it: a verified replica fed by one node.
#[derive(Debug)]
pub struct RemoteLedger {
    net: NetHandle,
    node: PeerId,
    sequencer: Option<PeerId>,
    genesis: Genesis,
    state: RwLock<LedgerState>,
    /// Height of the newest witnessed checkpoint consistent with the verified blocks.
    witnessed: std::sync::atomic::AtomicU64,
    /// Ids of the verified transactions that concern each channel, in ledger order.
    channel_txs: RwLock<std::collections::HashMap<ChannelId, Vec<Hash32>>>,
}

impl RemoteLedger {
    /// Dials `node_addr` (with `/p2p/<id>`), fetches the genesis (its hash must be `chain_id`
    /// when given) and syncs every block.
    pub async fn connect(
        net: NetHandle,
        node_addr: Multiaddr,
        chain_id: Option<Hash32>,
    ) -> Result<RemoteLedger, RemoteError> {
        let node = net
            .dial(node_addr)
            .await
            .map_err(|e| RemoteError::Node(e.to_string()))?;
        let genesis = match net.request(node, LedgerRequest::GetGenesis).await {
            Ok(LedgerResponse::Genesis(g)) => g,
            other => return Err(RemoteError::Node(format!("genesis: {other:?}"))),
        };
        if chain_id.is_some_and(|c| c != genesis.chain_id()) {
            return Err(RemoteError::Invalid("the node is on another chain".into()));
        }
        let state = LedgerState::from_genesis(&genesis).map_err(|e| RemoteError::Invalid(e.to_string()))?;
        let me = RemoteLedger {
            sequencer: peer_id_from_public_key(&genesis.sequencer),
            net,
            node,
            genesis,
            state: RwLock::new(state),
            channel_txs: RwLock::new(Default::default()),
            witnessed: std::sync::atomic::AtomicU64::new(0),
        };
        me.sync().await?;
        Ok(me)
    }

    /// The genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The node this view follows.
    pub fn node(&self) -> PeerId {
        self.node
    }

    /// Height of the verified view.
    pub fn height(&self) -> u64 {
        self.state.read().expect("ledger lock").height()
    }

    /// Read access to the verified view.
    pub fn with_state<T>(&self, f: impl FnOnce(&LedgerState) -> T) -> T {
        f(&self.state.read().expect("ledger lock"))
    }

    /// Fetches and verifies blocks until the node has no newer one. Returns how many were
    /// applied.
    pub async fn sync(&self) -> Result<u64, RemoteError> {
        let mut applied = 0;
        loop {
            let from = self.height() + 1;
            let limit = BLOCKS_PER_RESPONSE_MAX as u32;
            let blocks = match self
                .net
                .request(self.node, LedgerRequest::GetBlocks { from, limit })
                .await
            {
                Ok(LedgerResponse::Blocks(b)) => b,
                other => return Err(RemoteError::Node(format!("blocks: {other:?}"))),
            };
            let n = blocks.len();
            {
                let mut state = self.state.write().expect("ledger lock");
                for b in &blocks {
                    if b.header.height <= state.height() {
                        continue;
                    }
                    // The auditor's block check: the ledger rules, signatures in one batch.
                    paychan_audit::apply_block(&mut state, b, paychan_ledger::Signatures::Batch)
                        .map_err(|e| RemoteError::Invalid(e.to_string()))?;
                    applied += 1;
                    let mut index = self.channel_txs.write().expect("index lock");
                    for tx in &b.txs {
                        if let Some(id) = tx_channel(tx) {
                            index.entry(id).or_default().push(tx.id());
                        }
                    }
                }
            }
            if n < BLOCKS_PER_RESPONSE_MAX {
                self.refresh_witnessed().await;
                return Ok(applied);
            }
        }
    }

    /// The node's newest checkpoint, if it is witnessed (threshold of distinct genesis
    /// witnesses) and its log root is the one this verified view computes at its size.
    async fn witnessed_checkpoint(&self) -> Result<paychan_protocol::Checkpoint, RemoteError> {
        let cp = match self.net.request(self.node, LedgerRequest::GetCheckpoint).await {
            Ok(LedgerResponse::Checkpoint(Some(cp))) => cp,
            Ok(LedgerResponse::Checkpoint(None)) => return Err(RemoteError::NotYet("no checkpoint".into())),
            other => return Err(RemoteError::Node(format!("checkpoint: {other:?}"))),
        };
        let status = paychan_ledger::verify_checkpoint(&self.genesis, &cp)
            .map_err(|e| RemoteError::Invalid(format!("checkpoint: {e}")))?;
        if !status.witnessed {
            return Err(RemoteError::NotYet(format!(
                "checkpoint has {} cosignatures",
                status.cosigners
            )));
        }
        let c = cp.checkpoint;
        let ours = self.with_state(|s| {
            (c.log_size <= s.log_size())
                .then(|| s.log().root_at(c.log_size).ok())
                .flatten()
        });
        match ours {
            Some(root) if root == c.log_root => Ok(c),
            Some(_) => Err(RemoteError::Invalid(
                "witnessed checkpoint disagrees with the verified blocks".into(),
            )),
            None => Err(RemoteError::NotYet(
                "checkpoint ahead of the verified view".into(),
            )),
        }
    }

    /// Remembers the height of the node's newest witnessed checkpoint, when there is one.
    async fn refresh_witnessed(&self) {
        if let Ok(c) = self.witnessed_checkpoint().await {
            self.witnessed
                .fetch_max(c.height, std::sync::atomic::Ordering::AcqRel);
        }
    }

    /// Checks, without taking the node's word, that transaction `tx_id` is in the ledger: the
    /// node's newest checkpoint must be witnessed (threshold of genesis witnesses), name a block
    /// this view verified, and the node's inclusion proof must verify against its log root.
    pub async fn verify_included(&self, tx_id: Hash32) -> Result<u64, RemoteError> {
        self.sync().await?;
        let c = self.witnessed_checkpoint().await?;
        let leaf = self.with_state(|s| s.tx_log_index(&tx_id).and_then(|i| s.log().leaf(i).copied()));
        let leaf =
            leaf.ok_or_else(|| RemoteError::NotYet("transaction not in a verified block yet".into()))?;
        let (index, size, path) = match self
            .net
            .request(
                self.node,
                LedgerRequest::GetInclusion {
                    tx_id,
                    size: c.log_size,
                },
            )
            .await
        {
            Ok(LedgerResponse::Inclusion { index, size, path }) => (index, size, path),
            other => return Err(RemoteError::Node(format!("inclusion: {other:?}"))),
        };
        if size != c.log_size {
            return Err(RemoteError::Invalid(
                "inclusion proof for another log size".into(),
            ));
        }
        verify_inclusion(&leaf, index, size, &path, &c.log_root)
            .map_err(|e| RemoteError::Invalid(format!("inclusion proof: {e}")))?;
        Ok(c.height)
    }

    /// Ids of the verified transactions that concern channel `id` (open, deposits, closes,
    /// updates, settle), in ledger order.
    pub fn channel_txs(&self, id: &ChannelId) -> Vec<Hash32> {
        self.channel_txs
            .read()
            .expect("index lock")
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    async fn submit_to(&self, peer: PeerId, tx: Tx) -> Result<(), String> {
        match self.net.request(peer, LedgerRequest::Submit(Box::new(tx))).await {
            Ok(LedgerResponse::Submitted { .. }) => Ok(()),
            Ok(LedgerResponse::Error { text }) => Err(text),
            Ok(other) => Err(format!("unexpected answer: {other:?}")),
            Err(e) => Err(e.to_string()),
        }
    }
}

impl LedgerAccess for RemoteLedger {
    fn chain_id(&self) -> Hash32 {
        self.genesis.chain_id()
    }

    fn time_ms(&self) -> u64 {
        self.with_state(|s| s.time_ms())
    }

    fn channel(&self, id: &ChannelId) -> Option<LedgerChannel> {
        self.with_state(|s| LedgerChannel::of(s, id))
    }

    fn balance(&self, key: &PublicKey) -> u64 {
        self.with_state(|s| s.balance(key))
    }

    fn height(&self) -> u64 {
        RemoteLedger::height(self)
    }

    fn witnessed_height(&self) -> u64 {
        self.witnessed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Submits through the node and, independently, to the sequencer: a node that drops the
    /// client's transaction does not stop it.
    fn submit(&self, tx: Tx) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let via_node = self.submit_to(self.node, tx.clone()).await;
            let direct = match self.sequencer {
                Some(seq) if seq != self.node => self.submit_to(seq, tx).await,
                _ => via_node.clone(),
            };
            via_node.or(direct)
        })
    }
}

/// The channel a transaction concerns, if any.
fn tx_channel(tx: &Tx) -> Option<ChannelId> {
    match tx {
        Tx::Transfer { .. } => None,
        Tx::Open(o) => Some(o.open.channel_id()),
        Tx::Deposit { body, .. } => Some(body.channel_id),
        Tx::CoopClose(c) => Some(c.close.channel_id),
        Tx::UnilateralClose { body, .. } => Some(body.channel_id),
        Tx::Update(u) => Some(u.channel_id),
        Tx::Settle(s) => Some(s.channel_id),
    }
}
