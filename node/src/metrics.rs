//! The node's own figures for operators: one function computes them ([`figures`]), a task
//! publishes them every second as Prometheus metrics in the registry that `/metrics` encodes
//! (next to libp2p's), and the public listener serves the same figures as JSON at
//! `/explorer/metrics` for the explorer's charts.
//!
//! Payment and amount totals are summed over this node's channels (`ChannelManager::totals`, which
//! folds them in the manager: a node with many channels lists none of them every second);
//! the ledger figures come from the replica and the store.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use serde::Serialize;
use tokio::sync::watch;

use crate::explorer::value_locked;
use crate::node::NodeHandle;

/// How often the metrics task refreshes the gauges.
pub const REFRESH: Duration = Duration::from_secs(1);

/// The node's figures at one moment.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Figures {
    /// Height of the verified replica.
    pub ledger_height: u64,
    /// Ledger time of the newest block.
    pub ledger_time_ms: u64,
    /// Ledger time between the two newest blocks (0 before the second block).
    pub block_interval_ms: u64,
    /// Transactions in the log.
    pub log_size: u64,
    /// Transactions pending in this node's pool (the sequencer's is the one that counts).
    pub mempool_size: u64,
    /// The ledger's channels by status (`open`, `closing`, `settled`).
    pub ledger_channels: std::collections::BTreeMap<String, u64>,
    /// Deposits locked in open and closing channels of the ledger.
    pub value_locked: u64,
    /// This node's channels by the manager's status.
    pub channels: std::collections::BTreeMap<String, u64>,
    /// Payments this node made on its channels since it started.
    pub payments_sent: u64,
    /// Payments it received since it started.
    pub payments_received: u64,
    /// Cumulative amount it paid on its channels.
    pub amount_sent: u64,
    /// Cumulative amount it received (verified).
    pub amount_received: u64,
    /// Height of the newest stored checkpoint (0 before the first).
    pub checkpoint_height: u64,
    /// Valid distinct cosignatures this node holds on it.
    pub checkpoint_cosignatures: u64,
    /// Whether enough witnesses cosigned it.
    pub checkpoint_witnessed: bool,
    /// Ledger time of the newest block minus that of the block the newest checkpoint names.
    pub cosignature_lag_ms: u64,
    /// Split views this node holds evidence of.
    pub split_views: u64,
    /// Double blocks this node holds evidence of.
    pub double_blocks: u64,
}

/// Computes the figures (a few store reads and, when the manager is up, one channel list).
pub async fn figures(node: &NodeHandle) -> Figures {
    let (ledger_height, ledger_time_ms, log_size, locked, ledger_channels) = node.with_ledger(|l| {
        let mut by = std::collections::BTreeMap::new();
        for (_, c) in l.channels() {
            let s = match c.status {
                paychan_ledger::ChannelStatus::Open => "open",
                paychan_ledger::ChannelStatus::Closing { .. } => "closing",
                paychan_ledger::ChannelStatus::Closed { .. } => "settled",
            };
            *by.entry(s.to_owned()).or_insert(0) += 1;
        }
        (l.height(), l.time_ms(), l.log_size(), value_locked(l), by)
    });
    let mut f = Figures {
        ledger_height,
        ledger_time_ms,
        log_size,
        value_locked: locked,
        ledger_channels,
        mempool_size: node.mempool_len() as u64,
        split_views: node.split_views().len() as u64,
        double_blocks: node.double_blocks().len() as u64,
        ..Figures::default()
    };
    if ledger_height >= 2 {
        if let Ok(b) = node.store().blocks(ledger_height - 1, 2) {
            if let [a, b] = b.as_slice() {
                f.block_interval_ms = b.header.time_ms.saturating_sub(a.header.time_ms);
            }
        }
    }
    if let Ok(Some(cp)) = node.store().latest_checkpoint() {
        f.checkpoint_height = cp.checkpoint.height;
        if let Ok(s) = paychan_ledger::verify_checkpoint(node.genesis(), &cp) {
            f.checkpoint_cosignatures = s.cosigners as u64;
            f.checkpoint_witnessed = s.witnessed;
        }
        if let Ok(b) = node.store().blocks(cp.checkpoint.height, 1) {
            if let Some(b) = b.first() {
                f.cosignature_lag_ms = ledger_time_ms.saturating_sub(b.header.time_ms);
            }
        }
    }
    if let Ok(t) = node.channels().totals().await {
        f.channels = t.by_status;
        f.payments_sent = t.payments_sent;
        f.payments_received = t.payments_received;
        f.amount_sent = t.sent;
        f.amount_received = t.received;
    }
    f
}

type Labels = Vec<(String, String)>;

/// The registered metrics.
struct Published {
    ledger_height: Gauge,
    block_interval_ms: Gauge,
    log_size: Gauge,
    mempool_size: Gauge,
    ledger_channels: Family<Labels, Gauge>,
    value_locked: Gauge,
    channels: Family<Labels, Gauge>,
    /// The statuses `channels` has shown.
    channel_statuses: std::sync::Mutex<std::collections::BTreeSet<String>>,
    payments_sent: Counter,
    payments_received: Counter,
    amount_sent: Gauge,
    amount_received: Gauge,
    checkpoint_height: Gauge,
    checkpoint_cosignatures: Gauge,
    cosignature_lag_ms: Gauge,
}

fn gauge_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Published {
    fn register(node: &NodeHandle) -> Published {
        let p = Published {
            ledger_height: Gauge::default(),
            block_interval_ms: Gauge::default(),
            log_size: Gauge::default(),
            mempool_size: Gauge::default(),
            ledger_channels: Family::default(),
            value_locked: Gauge::default(),
            channels: Family::default(),
            channel_statuses: std::sync::Mutex::new(std::collections::BTreeSet::new()),
            payments_sent: Counter::default(),
            payments_received: Counter::default(),
            amount_sent: Gauge::default(),
            amount_received: Gauge::default(),
            checkpoint_height: Gauge::default(),
            checkpoint_cosignatures: Gauge::default(),
            cosignature_lag_ms: Gauge::default(),
        };
        let registry = node.net().metrics_registry();
        let mut r = registry.lock().expect("metrics lock");
        r.register(
            "paychan_ledger_height",
            "Height of the verified replica",
            p.ledger_height.clone(),
        );
        r.register(
            "paychan_block_interval_ms",
            "Ledger time between the two newest blocks, in ms",
            p.block_interval_ms.clone(),
        );
        r.register(
            "paychan_log_size",
            "Transactions in the ledger's log",
            p.log_size.clone(),
        );
        r.register(
            "paychan_mempool_size",
            "Transactions pending in this node's pool",
            p.mempool_size.clone(),
        );
        r.register(
            "paychan_ledger_channels",
            "The ledger's channels by status (open, closing, settled)",
            p.ledger_channels.clone(),
        );
        r.register(
            "paychan_value_locked",
            "Deposits locked in open and closing channels, in the ledger's unit",
            p.value_locked.clone(),
        );
        r.register(
            "paychan_channels",
            "This node's channels by status",
            p.channels.clone(),
        );
        r.register(
            "paychan_payments_sent",
            "Payments this node made on its channels since it started",
            p.payments_sent.clone(),
        );
        r.register(
            "paychan_payments_received",
            "Payments this node received on its channels since it started",
            p.payments_received.clone(),
        );
        r.register(
            "paychan_amount_sent",
            "Cumulative amount this node paid on its channels, in the ledger's unit",
            p.amount_sent.clone(),
        );
        r.register(
            "paychan_amount_received",
            "Cumulative amount this node received on its channels, in the ledger's unit",
            p.amount_received.clone(),
        );
        r.register(
            "paychan_checkpoint_height",
            "Height of the newest checkpoint this node holds",
            p.checkpoint_height.clone(),
        );
        r.register(
            "paychan_checkpoint_cosignatures",
            "Valid witness cosignatures this node holds on its newest checkpoint",
            p.checkpoint_cosignatures.clone(),
        );
        r.register(
            "paychan_cosignature_lag_ms",
            "Ledger time from the block of the newest checkpoint to the newest block, in ms",
            p.cosignature_lag_ms.clone(),
        );
        drop(r);
        p
    }

    fn set(&self, f: &Figures) {
        self.ledger_height.set(gauge_i64(f.ledger_height));
        self.block_interval_ms.set(gauge_i64(f.block_interval_ms));
        self.log_size.set(gauge_i64(f.log_size));
        self.mempool_size.set(gauge_i64(f.mempool_size));
        for s in ["open", "closing", "settled"] {
            let n = f.ledger_channels.get(s).copied().unwrap_or(0);
            self.ledger_channels
                .get_or_create(&vec![("status".to_owned(), s.to_owned())])
                .set(gauge_i64(n));
        }
        self.value_locked.set(gauge_i64(f.value_locked));
        // Every status seen so far (and the common ones, so that a node without channels shows
        // zeros): one that no channel has any more goes back to 0.
        let mut seen = self.channel_statuses.lock().expect("metrics lock");
        seen.extend(["open", "closing", "closed"].map(str::to_owned));
        seen.extend(f.channels.keys().cloned());
        for s in seen.iter() {
            let n = f.channels.get(s).copied().unwrap_or(0);
            self.channels
                .get_or_create(&vec![("status".to_owned(), s.clone())])
                .set(gauge_i64(n));
        }
        let bump = |c: &Counter, to: u64| {
            let now = c.get();
            if to > now {
                c.inc_by(to - now);
            }
        };
        bump(&self.payments_sent, f.payments_sent);
        bump(&self.payments_received, f.payments_received);
        self.amount_sent.set(gauge_i64(f.amount_sent));
        self.amount_received.set(gauge_i64(f.amount_received));
        self.checkpoint_height.set(gauge_i64(f.checkpoint_height));
        self.checkpoint_cosignatures
            .set(gauge_i64(f.checkpoint_cosignatures));
        self.cosignature_lag_ms.set(gauge_i64(f.cosignature_lag_ms));
    }
}

/// Registers the metrics and refreshes them every [`REFRESH`] until shutdown.
pub fn spawn(node: NodeHandle, mut shutdown: watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    let published = Published::register(&node);
    tokio::spawn(async move {
        loop {
            published.set(&figures(&node).await);
            tokio::select! {
                _ = tokio::time::sleep(REFRESH) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    })
}
