//! `paychan client`: a program with its own key that dials a node over the p2p protocol without
//! running a node: it opens a channel, pays, closes, and checks its own transactions against
//! witnessed checkpoints with inclusion proofs instead of taking the node's word.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use paychan_client::{ChannelManager, ManagerConfig, RemoteError, RemoteLedger};
use paychan_net::{MessageAcceptance, Multiaddr, Net, NetConfig, NetEvent, NetHandle};
use paychan_protocol::wire::LedgerResponse;
use paychan_protocol::{ChannelId, Keypair, Payment};
use paychan_store::MemStore;
use serde::Serialize;

/// A running client: its network, its verified ledger view and its channel manager.
#[derive(Debug)]
pub struct Client {
    /// The client's key.
    pub keypair: Keypair,
    /// The verified view of the ledger.
    pub ledger: Arc<RemoteLedger>,
    /// The channel manager.
    pub channels: ChannelManager,
}

impl Client {
    /// Starts the client's network, dials the node (and the sequencer, when its address is
    /// given) and syncs the ledger view.
    pub async fn start(keypair: Keypair, node: Multiaddr, sequencer: Option<Multiaddr>) -> Result<Client> {
        let (net, events, _task) =
            Net::new(keypair.seed(), NetConfig::new("/ip4/127.0.0.1/tcp/0".parse()?)).await?;
        drain_events(net.clone(), events, "a client keeps no ledger");
        if let Some(seq) = sequencer {
            net.dial(seq).await.context("dial the sequencer")?;
        }
        let ledger = Arc::new(RemoteLedger::connect(net.clone(), node, None).await?);
        // A client run keeps its channel state in memory: it closes what it opens before it exits.
        let channels = ChannelManager::start(
            keypair.clone(),
            net.clone(),
            Arc::new(MemStore::new()),
            ledger.clone(),
            ManagerConfig::default(),
        )?;
        let (l, m) = (ledger.clone(), channels.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(n) = l.sync().await {
                    if n > 0 {
                        m.ledger_changed();
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Ok(Client {
            keypair,
            ledger,
            channels,
        })
    }

    /// Opens a channel with the node it follows.
    pub async fn open(&self, deposit: u64, their_deposit: u64) -> Result<ChannelId> {
        let node_key = paychan_net::public_key_from_peer_id(&self.ledger.node())
            .ok_or_else(|| anyhow!("the node's peer id carries no ed25519 key"))?;
        Ok(self.channels.open(node_key, deposit, their_deposit).await?)
    }

    /// Checks every transaction of a channel against a witnessed checkpoint with an inclusion
    /// proof, waiting (bounded) for the witnesses to cosign. Returns how many were checked.
    pub async fn verify_channel_txs(&self, id: &ChannelId, timeout: Duration) -> Result<usize> {
        let deadline = Instant::now() + timeout;
        let txs = self.ledger.channel_txs(id);
        if txs.is_empty() {
            bail!("no transaction of channel {id} in the verified ledger");
        }
        for tx in &txs {
            loop {
                match self.ledger.verify_included(*tx).await {
                    Ok(_) => break,
                    Err(RemoteError::NotYet(why)) if Instant::now() < deadline => {
                        tracing::debug!(%why, "waiting for a witnessed checkpoint");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => return Err(anyhow!("transaction {tx}: {e}")),
                }
            }
        }
        Ok(txs.len())
    }
}

/// What `paychan client run` did.
#[derive(Debug, Serialize)]
pub struct ClientReport {
    /// The client's account.
    pub account: String,
    /// The channel.
    pub channel_id: String,
    /// Payments made.
    pub payments: u64,
    /// Sum paid.
    pub paid: u64,
    /// Payments per second.
    pub per_second: f64,
    /// Balance before the open, from the verified view.
    pub balance_before: u64,
    /// Balance after the payout, from the verified view.
    pub balance_after: u64,
    /// Transactions checked against witnessed checkpoints with inclusion proofs.
    pub verified_txs: usize,
}

/// Opens a channel with the node, pays `count` times `amount`, closes, verifies.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    keypair: Keypair,
    node: Multiaddr,
    sequencer: Option<Multiaddr>,
    deposit: u64,
    their_deposit: u64,
    amount: u64,
    count: u64,
    force: bool,
) -> Result<ClientReport> {
    let client = Client::start(keypair, node, sequencer).await?;
    let me = client.keypair.public();
    let before = client.ledger.with_state(|s| s.balance(&me));
    let id = client.open(deposit, their_deposit).await?;
    let started = Instant::now();
    let reference = Payment::text_reference("paychan client");
    client.channels.pay(id, amount, count, reference).await?;
    let secs = started.elapsed().as_secs_f64();
    client.channels.close(id, force).await?;
    let verified = client.verify_channel_txs(&id, Duration::from_secs(30)).await?;
    let after = client.ledger.with_state(|s| s.balance(&me));
    Ok(ClientReport {
        account: me.to_hex(),
        channel_id: id.to_string(),
        payments: count,
        paid: amount.saturating_mul(count),
        per_second: count as f64 / secs.max(1e-9),
        balance_before: before,
        balance_after: after,
        verified_txs: verified,
    })
}

/// Reads a hex seed file.
pub fn read_key(path: &std::path::Path) -> Result<Keypair> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let mut seed = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut seed).context("a key file holds 64 hex characters")?;
    Ok(Keypair::from_seed(seed))
}

/// Answers the network events of a process that keeps no replica (a client, an auditor): it
/// relays no gossip and serves no ledger request, answering each with `refusal`.
pub fn drain_events(
    net: NetHandle,
    mut events: tokio::sync::mpsc::Receiver<NetEvent>,
    refusal: &'static str,
) {
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            match ev {
                NetEvent::Gossip { msg_id, source, .. } => {
                    let _ = net
                        .report_validation(msg_id, source, MessageAcceptance::Ignore)
                        .await;
                }
                NetEvent::LedgerRequest { responder, .. } => {
                    let text = refusal.into();
                    let _ = net.respond(responder, LedgerResponse::Error { text }).await;
                }
                _ => {}
            }
        }
    });
}
