//! Two channel-manager processes for the latency figures: `paychan-bench peer payee` and
//! `paychan-bench peer payer`, each a [`ChannelManager`] of its own key over its own libp2p
//! swarm on 127.0.0.1 and its own sled store (the node's default durability, `flush`), as a
//! node or a client program runs it. The payer pays one payment at a time (each its own signed
//! proof) and waits for its ack; the payee's store notes the wall-clock time at which the
//! manager hands it the record of a verified proof. Both processes read the same realtime
//! clock, so the difference is a latency across processes.
//!
//! The ledger of both is a stand-in that reports every channel open and every balance large:
//! no ledger is on the payment path, and this keeps the two processes independent of a
//! testnet. Everything from the payer's `pay` call to the ack is the real path: the manager
//! core and driver, the channel state machine, the link over a libp2p stream (TCP + Noise +
//! Yamux), the payee's verification, persistence (sled, group commit) and ack.

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use paychan_client::ledger::BoxFuture;
use paychan_client::{ChannelManager, LedgerAccess, LedgerChannel, ManagerConfig};
use paychan_net::libp2p::multiaddr::Protocol;
use paychan_net::{Multiaddr, Net, NetConfig, NetHandle};
use paychan_protocol::{
    Block, ChannelId, Direction, Genesis, Hash32, Keypair, Payment, PublicKey, SignedCheckpoint, Tx,
};
use paychan_store::{PutOutcome, SledStore, Store};
use serde_json::json;

/// Nanoseconds since the Unix epoch (the clock both processes share).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The stand-in ledger: every channel is open, every balance is large, every submission is
/// taken. See the module documentation for why that leaves the payment path whole.
struct OpenLedger;

impl LedgerAccess for OpenLedger {
    fn chain_id(&self) -> Hash32 {
        Hash32([0x42; 32])
    }
    fn time_ms(&self) -> u64 {
        now_ns() / 1_000_000
    }
    fn height(&self) -> u64 {
        1
    }
    fn witnessed_height(&self) -> u64 {
        1
    }
    fn channel(&self, _id: &ChannelId) -> Option<LedgerChannel> {
        Some(LedgerChannel::Open)
    }
    fn balance(&self, _key: &PublicKey) -> u64 {
        1 << 50
    }
    fn submit(&self, _tx: Tx) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// A store that notes when a channel record is written: on the payee, right after the manager
/// verified a burst of proofs, before the flush that makes it durable.
struct TimedStore {
    inner: SledStore,
    channel_writes_ns: Mutex<Vec<u64>>,
}

impl Store for TimedStore {
    fn put_genesis(&self, g: &Genesis) -> paychan_store::Result<PutOutcome> {
        self.inner.put_genesis(g)
    }
    fn genesis(&self) -> paychan_store::Result<Option<Genesis>> {
        self.inner.genesis()
    }
    fn put_block(&self, b: &Block) -> paychan_store::Result<PutOutcome> {
        self.inner.put_block(b)
    }
    fn block(&self, h: u64) -> paychan_store::Result<Option<Block>> {
        self.inner.block(h)
    }
    fn blocks(&self, from: u64, limit: usize) -> paychan_store::Result<Vec<Block>> {
        self.inner.blocks(from, limit)
    }
    fn tip(&self) -> paychan_store::Result<u64> {
        self.inner.tip()
    }
    fn put_checkpoint(&self, c: &SignedCheckpoint) -> paychan_store::Result<SignedCheckpoint> {
        self.inner.put_checkpoint(c)
    }
    fn checkpoint(&self, h: u64) -> paychan_store::Result<Option<SignedCheckpoint>> {
        self.inner.checkpoint(h)
    }
    fn checkpoints(&self, from: u64, limit: usize) -> paychan_store::Result<Vec<SignedCheckpoint>> {
        self.inner.checkpoints(from, limit)
    }
    fn latest_checkpoint(&self) -> paychan_store::Result<Option<SignedCheckpoint>> {
        self.inner.latest_checkpoint()
    }
    fn put_peer(&self, peer: &str, addrs: &[String]) -> paychan_store::Result<()> {
        self.inner.put_peer(peer, addrs)
    }
    fn delete_peer(&self, peer: &str) -> paychan_store::Result<()> {
        self.inner.delete_peer(peer)
    }
    fn peers(&self) -> paychan_store::Result<Vec<(String, Vec<String>)>> {
        self.inner.peers()
    }
    fn put_channel(&self, id: &ChannelId, record: &[u8]) -> paychan_store::Result<()> {
        let t = now_ns();
        self.channel_writes_ns.lock().expect("timestamps").push(t);
        self.inner.put_channel(id, record)
    }
    fn channel(&self, id: &ChannelId) -> paychan_store::Result<Option<Vec<u8>>> {
        self.inner.channel(id)
    }
    fn channels(&self) -> paychan_store::Result<Vec<(ChannelId, Vec<u8>)>> {
        self.inner.channels()
    }
    fn delete_channel(&self, id: &ChannelId) -> paychan_store::Result<()> {
        self.inner.delete_channel(id)
    }
    fn put_payments(&self, id: &ChannelId, first_seq: u64, record: &[u8]) -> paychan_store::Result<()> {
        self.inner.put_payments(id, first_seq, record)
    }
    fn payments(
        &self,
        id: &ChannelId,
        from: u64,
        limit: usize,
    ) -> paychan_store::Result<Vec<(u64, Vec<u8>)>> {
        self.inner.payments(id, from, limit)
    }
    fn payments_record_at(&self, id: &ChannelId, seq: u64) -> paychan_store::Result<Option<u64>> {
        self.inner.payments_record_at(id, seq)
    }
    fn reserve_seq(&self, id: &ChannelId, d: Direction, reserved: u64) -> paychan_store::Result<()> {
        self.inner.reserve_seq(id, d, reserved)
    }
    fn seq_reservation(&self, id: &ChannelId, d: Direction) -> paychan_store::Result<Option<u64>> {
        self.inner.seq_reservation(id, d)
    }
    fn seq_reservations(&self) -> paychan_store::Result<Vec<(ChannelId, Direction, u64)>> {
        self.inner.seq_reservations()
    }
    fn put_meta(&self, key: &str, value: &[u8]) -> paychan_store::Result<()> {
        self.inner.put_meta(key, value)
    }
    fn meta(&self, key: &str) -> paychan_store::Result<Option<Vec<u8>>> {
        self.inner.meta(key)
    }
    fn meta_entries(&self) -> paychan_store::Result<Vec<(String, Vec<u8>)>> {
        self.inner.meta_entries()
    }
    fn flush(&self) -> paychan_store::Result<()> {
        self.inner.flush()
    }
}

async fn start(seed: [u8; 32], store: Arc<dyn Store>) -> Result<(NetHandle, Multiaddr, ChannelManager)> {
    let kp = Keypair::from_seed(seed);
    let (net, mut events, _task) = Net::new(seed, NetConfig::new("/ip4/127.0.0.1/tcp/0".parse()?))
        .await
        .map_err(|e| anyhow!("start the swarm: {e}"))?;
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let mut addr = net
        .listen_addrs()
        .await
        .map_err(|e| anyhow!("listen addrs: {e}"))?
        .into_iter()
        .next()
        .context("no listen address")?;
    if !addr.iter().any(|p| matches!(p, Protocol::P2p(_))) {
        addr.push(Protocol::P2p(net.local_peer_id()));
    }
    let manager = ChannelManager::start(
        kp,
        net.clone(),
        store,
        Arc::new(OpenLedger),
        ManagerConfig::default(),
    )
    .map_err(|e| anyhow!("start the manager: {e}"))?;
    Ok((net, addr, manager))
}

fn seed_of(name: &str) -> [u8; 32] {
    paychan_protocol::hash::sha256(&[b"paychan-bench/peer", name.as_bytes()]).0
}

/// `peer payee DIR`: prints `ADDR <multiaddr>` and `KEY <hex>`, then serves; on each `dump`
/// line of stdin prints the channel-record timestamps so far as one JSON line and forgets
/// them; exits at the end of stdin.
pub fn payee(dir: &Path) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let _ = std::fs::remove_dir_all(dir);
    let store = Arc::new(TimedStore {
        inner: SledStore::open(dir).context("open the payee's store")?,
        channel_writes_ns: Mutex::new(Vec::new()),
    });
    let seed = seed_of("payee");
    let (_net, addr, _manager) = rt.block_on(start(seed, store.clone()))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ADDR {addr}")?;
    writeln!(out, "KEY {}", Keypair::from_seed(seed).public().to_hex())?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        if line?.trim() == "dump" {
            let ts = std::mem::take(&mut *store.channel_writes_ns.lock().expect("timestamps"));
            writeln!(out, "{}", json!({ "verified_ns": ts }))?;
            out.flush()?;
        }
    }
    drop(rt);
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

/// `peer payer DIR ADDR KEY COUNT`: opens a channel to the payee, pays a warm-up, then `COUNT`
/// payments one at a time; prints `{"start_ns": [...], "acked_ns": [...]}`.
pub fn payer(dir: &Path, addr: &str, key: &str, count: usize, warmup: usize) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let _ = std::fs::remove_dir_all(dir);
    let store: Arc<dyn Store> = Arc::new(SledStore::open(dir).context("open the payer's store")?);
    let peer_key = PublicKey::from_hex(key).map_err(|_| anyhow!("the payee key is not hex"))?;
    let addr: Multiaddr = addr.parse().context("the payee address")?;
    let result = rt.block_on(async move {
        let (net, _addr, manager) = start(seed_of("payer"), store).await?;
        net.dial(addr).await.map_err(|e| anyhow!("dial the payee: {e}"))?;
        let id = tokio::time::timeout(Duration::from_secs(30), manager.open(peer_key, 1 << 40, 0))
            .await
            .context("the open took over 30 s")?
            .map_err(|e| anyhow!("open: {e}"))?;
        let reference = Payment::text_reference("bench");
        // The payee sees the channel open at its next ledger check; the first payment waits for
        // both sides' reestablish.
        for _ in 0..warmup.max(1) {
            tokio::time::timeout(Duration::from_secs(30), manager.pay(id, 1, 1, reference))
                .await
                .context("a warm-up payment took over 30 s")?
                .map_err(|e| anyhow!("pay: {e}"))?;
        }
        let mut start_ns = Vec::with_capacity(count);
        let mut acked_ns = Vec::with_capacity(count);
        for _ in 0..count {
            let t0 = now_ns();
            manager
                .pay(id, 1, 1, reference)
                .await
                .map_err(|e| anyhow!("pay: {e}"))?;
            acked_ns.push(now_ns());
            start_ns.push(t0);
        }
        Ok::<_, anyhow::Error>(json!({ "start_ns": start_ns, "acked_ns": acked_ns }))
    });
    let v = result?;
    println!("{v}");
    rt.shutdown_timeout(Duration::from_millis(200));
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

/// Latencies (µs) from the payer's and payee's timestamps: for each payment, until the first
/// payee record written in its interval (unloaded: verified), and until its ack (durable).
/// A payment without a payee write inside its interval counts for the durable figure only.
pub fn latencies(start_ns: &[u64], acked_ns: &[u64], verified_ns: &[u64]) -> Result<(Vec<f64>, Vec<f64>)> {
    if start_ns.len() != acked_ns.len() {
        bail!("payer timestamps of different lengths");
    }
    let mut verified = verified_ns.to_vec();
    verified.sort_unstable();
    let mut unloaded = Vec::new();
    let mut durable = Vec::new();
    for (&t0, &t1) in start_ns.iter().zip(acked_ns) {
        durable.push(t1.saturating_sub(t0) as f64 / 1e3);
        let i = verified.partition_point(|&v| v < t0);
        if let Some(&v) = verified.get(i) {
            if v <= t1 {
                unloaded.push((v - t0) as f64 / 1e3);
            }
        }
    }
    Ok((unloaded, durable))
}

#[cfg(test)]
mod tests {
    use super::latencies;

    #[test]
    fn each_payment_takes_the_first_payee_write_inside_its_interval() {
        let start = [1_000, 5_000, 9_000];
        let acked = [2_000, 6_000, 10_000];
        // A warm-up write before, two writes in the first interval, none in the third.
        let verified = [500, 1_600, 1_800, 5_250];
        let (unloaded, durable) = latencies(&start, &acked, &verified).unwrap();
        assert_eq!(unloaded, vec![0.6, 0.25]);
        assert_eq!(durable, vec![1.0, 1.0, 1.0]);
        assert!(latencies(&start, &acked[..2], &verified).is_err());
    }
}
