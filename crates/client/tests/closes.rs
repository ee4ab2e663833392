//! Closes that must land although the ledger or the peer link loses them: two managers in
//! process over real libp2p on 127.0.0.1, and a ledger whose submissions can fail or vanish.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use paychan_client::ledger::BoxFuture;
use paychan_client::{ChannelManager, LedgerAccess, LedgerChannel, ManagerConfig, ManagerError};
use paychan_net::{Multiaddr, Net, NetConfig, NetHandle};
use paychan_protocol::{ChannelId, Hash32, Keypair, PublicKey, Tx};
use paychan_store::{MemStore, Store};

/// Challenge window of the fake ledger.
const WINDOW_MS: u64 = 500;
/// Bound on every wait of these tests.
const WAIT: Duration = Duration::from_secs(30);

/// Which close transactions a submission is.
fn is_close(tx: &Tx) -> bool {
    matches!(tx, Tx::CoopClose(_) | Tx::UnilateralClose { .. })
}

/// A ledger that applies what it is given at once (every submission is a block, every block is
/// witnessed), except that the first `vanish` close submissions are answered `Ok` and dropped,
/// and the next `fail` are refused.
struct FakeLedger {
    chain_id: Hash32,
    start: Instant,
    vanish: AtomicUsize,
    fail: AtomicUsize,
    closes_submitted: AtomicUsize,
    state: Mutex<(u64, HashMap<ChannelId, LedgerChannel>)>,
}

impl FakeLedger {
    fn new(vanish: usize, fail: usize) -> Arc<FakeLedger> {
        Arc::new(FakeLedger {
            chain_id: Hash32([7; 32]),
            start: Instant::now(),
            vanish: AtomicUsize::new(vanish),
            fail: AtomicUsize::new(fail),
            closes_submitted: AtomicUsize::new(0),
            state: Mutex::new((0, HashMap::new())),
        })
    }

    fn take(counter: &AtomicUsize) -> bool {
        counter
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    fn apply(&self, tx: &Tx) {
        let now = self.time_ms();
        let mut st = self.state.lock().unwrap();
        let (height, channels) = &mut *st;
        let applied = match tx {
            Tx::Open(s) => channels
                .insert(s.open.channel_id(), LedgerChannel::Open)
                .is_none(),
            Tx::CoopClose(s) => match channels.get_mut(&s.close.channel_id) {
                Some(c @ LedgerChannel::Open) => {
                    *c = LedgerChannel::Closed {
                        payout_a: s.close.balance_a,
                        payout_b: s.close.balance_b,
                    };
                    true
                }
                _ => false,
            },
            Tx::UnilateralClose { body, .. } => match channels.get_mut(&body.channel_id) {
                Some(c @ LedgerChannel::Open) => {
                    *c = LedgerChannel::Closing {
                        window_end_ms: now + WINDOW_MS,
                        best_ab: 0,
                        best_ba: 0,
                    };
                    true
                }
                _ => false,
            },
            Tx::Settle(s) => match channels.get_mut(&s.channel_id) {
                Some(c @ LedgerChannel::Closing { .. }) => {
                    let LedgerChannel::Closing { window_end_ms, .. } = *c else {
                        unreachable!()
                    };
                    if now < window_end_ms {
                        false
                    } else {
                        *c = LedgerChannel::Closed {
                            payout_a: 0,
                            payout_b: 0,
                        };
                        true
                    }
                }
                _ => false,
            },
            _ => false,
        };
        if applied {
            *height += 1;
        }
    }

    fn status(&self, id: &ChannelId) -> Option<LedgerChannel> {
        self.state.lock().unwrap().1.get(id).copied()
    }
}

impl LedgerAccess for FakeLedger {
    fn chain_id(&self) -> Hash32 {
        self.chain_id
    }
    fn time_ms(&self) -> u64 {
        1_000_000 + self.start.elapsed().as_millis() as u64
    }
    fn height(&self) -> u64 {
        self.state.lock().unwrap().0
    }
    fn witnessed_height(&self) -> u64 {
        self.height()
    }
    fn channel(&self, id: &ChannelId) -> Option<LedgerChannel> {
        self.status(id)
    }
    fn balance(&self, _key: &PublicKey) -> u64 {
        1_000_000
    }
    fn submit(&self, tx: Tx) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            if is_close(&tx) {
                self.closes_submitted.fetch_add(1, Ordering::SeqCst);
                if FakeLedger::take(&self.vanish) {
                    return Ok(());
                }
                if FakeLedger::take(&self.fail) {
                    return Err("the sequencer is unreachable".into());
                }
            }
            self.apply(&tx);
            Ok(())
        })
    }
}

struct Party {
    key: Keypair,
    net: NetHandle,
    addr: Multiaddr,
    store: Arc<MemStore>,
    manager: ChannelManager,
}

async fn party(key: Keypair, ledger: Arc<FakeLedger>, store: Arc<MemStore>) -> Party {
    let (net, mut events, _task) = Net::new(
        key.seed(),
        NetConfig::new("/ip4/127.0.0.1/tcp/0".parse().unwrap()),
    )
    .await
    .expect("the net starts");
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let addr = net.listen_addrs().await.unwrap()[0].clone();
    let manager = ChannelManager::start(
        key.clone(),
        net.clone(),
        store.clone(),
        ledger,
        ManagerConfig::default(),
    )
    .expect("the manager starts");
    Party {
        key,
        net,
        addr,
        store,
        manager,
    }
}

async fn status_of(p: &Party, id: ChannelId) -> String {
    let views = p.manager.list().await.unwrap();
    let id = id.to_string();
    views
        .into_iter()
        .find(|v| v.id == id)
        .map(|v| v.status)
        .unwrap_or_default()
}

/// Two parties with an open channel (A proposed it) and an established link.
async fn open_pair(ledger: Arc<FakeLedger>) -> (Party, Party, ChannelId) {
    let a = party(Keypair::generate(), ledger.clone(), Arc::new(MemStore::new())).await;
    let b = party(Keypair::generate(), ledger.clone(), Arc::new(MemStore::new())).await;
    a.net.dial(b.addr.clone()).await.expect("a dials b");
    let id = tokio::time::timeout(WAIT, a.manager.open(b.key.public(), 1_000, 1_000))
        .await
        .expect("the open completes in time")
        .expect("the channel opens");
    b.manager.ledger_changed();
    let deadline = Instant::now() + WAIT;
    while status_of(&b, id).await != "open" {
        assert!(Instant::now() < deadline, "b sees the channel open");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One payment acknowledged: both directions reestablished and the link carries traffic.
    tokio::time::timeout(WAIT, a.manager.pay(id, 10, 1, Hash32([1; 32])))
        .await
        .expect("the payment completes in time")
        .expect("the payment is acknowledged");
    (a, b, id)
}

async fn close_in_time(p: &Party, id: ChannelId, force: bool) -> Result<(), ManagerError> {
    tokio::time::timeout(WAIT, p.manager.close(id, force))
        .await
        .expect("the close completes in bounded time")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unilateral_close_lost_by_the_ledger_is_resubmitted_until_it_lands() {
    // The first close submission vanishes, the next two are refused.
    let ledger = FakeLedger::new(1, 2);
    let (a, _b, id) = open_pair(ledger.clone()).await;
    close_in_time(&a, id, true)
        .await
        .expect("the unilateral close lands");
    assert!(matches!(ledger.status(&id), Some(LedgerChannel::Closed { .. })));
    assert!(ledger.closes_submitted.load(Ordering::SeqCst) >= 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooperative_close_lost_by_the_ledger_is_resubmitted_until_it_lands() {
    // Both parties submit the signed close once; both submissions vanish.
    let ledger = FakeLedger::new(2, 1);
    let (a, b, id) = open_pair(ledger.clone()).await;
    close_in_time(&a, id, false)
        .await
        .expect("the cooperative close lands");
    assert_eq!(
        ledger.status(&id),
        Some(LedgerChannel::Closed {
            payout_a: 990,
            payout_b: 1_010
        })
    );
    let deadline = Instant::now() + WAIT;
    while status_of(&b, id).await != "closed" {
        assert!(Instant::now() < deadline, "b sees the channel closed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_close_persisted_but_never_applied_is_sent_again_after_a_restart() {
    // Every close submission of the first run vanishes.
    let ledger = FakeLedger::new(usize::MAX, 0);
    let (a, _b, id) = open_pair(ledger.clone()).await;
    let closing = tokio::time::timeout(Duration::from_millis(1_500), a.manager.close(id, true)).await;
    assert!(
        closing.is_err(),
        "the close cannot land on a ledger that drops it"
    );
    assert_eq!(ledger.status(&id), Some(LedgerChannel::Open));
    // A restart: the same key and what the store holds, over a ledger that accepts closes (the
    // first run keeps its own ledger, which still drops them, so only the restart can land it).
    let store = Arc::new(MemStore::new());
    for (cid, bytes) in a.store.channels().unwrap() {
        store.put_channel(&cid, &bytes).unwrap();
    }
    store.flush().unwrap();
    let ledger2 = FakeLedger::new(0, 0);
    *ledger2.state.lock().unwrap() = ledger.state.lock().unwrap().clone();
    a.net.shutdown().await.unwrap();
    let a2 = party(a.key.clone(), ledger2.clone(), store).await;
    let deadline = Instant::now() + WAIT;
    while !matches!(ledger2.status(&id), Some(LedgerChannel::Closed { .. })) {
        assert!(Instant::now() < deadline, "the restarted node lands its close");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ledger.status(&id), Some(LedgerChannel::Open));
    let deadline = Instant::now() + WAIT;
    while status_of(&a2, id).await != "closed" {
        assert!(
            Instant::now() < deadline,
            "the restarted node sees its channel paid out"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    close_in_time(&a2, id, false)
        .await
        .expect("the channel is closed");
}

/// A stream that came up long ago gives way to a new one, whoever opened it: keeping the old,
/// dead one by the smaller-peer-id tie-break cut the channel off after a ban and unban.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooperative_close_proposed_while_the_peer_is_away_completes_on_reconnect() {
    let ledger = FakeLedger::new(0, 0);
    let (a, b, id) = open_pair(ledger.clone()).await;
    // The link goes down and stays down while A proposes.
    a.net.ban(b.net.local_peer_id()).await.unwrap();
    let deadline = Instant::now() + WAIT;
    while a
        .net
        .connected_peers()
        .await
        .unwrap()
        .contains(&b.net.local_peer_id())
    {
        assert!(Instant::now() < deadline, "the connection closes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let closer = a.manager.clone();
    let close = tokio::spawn(async move { closer.close(id, false).await });
    let deadline = Instant::now() + WAIT;
    while status_of(&a, id).await != "shutting_down" {
        assert!(Instant::now() < deadline, "a shuts the channel down");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        ledger.status(&id),
        Some(LedgerChannel::Open),
        "nothing closed while apart"
    );
    // The link comes back.
    a.net.unban(b.net.local_peer_id()).await.unwrap();
    a.net.dial(b.addr.clone()).await.expect("a dials b again");
    tokio::time::timeout(WAIT, close)
        .await
        .expect("the close completes in bounded time")
        .unwrap()
        .expect("the cooperative close lands");
    assert!(matches!(ledger.status(&id), Some(LedgerChannel::Closed { .. })));
}
