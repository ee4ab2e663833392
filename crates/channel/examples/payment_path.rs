//! The payment hot path through both state machines, against a raw sign-only loop.
//!
//! Run in release mode:
//! `cargo run --release -p paychan-channel --example payment_path [payments] [runs]`
//!
//! One thread plays both parties: the payer signs one proof per payment (`pay`), each proof
//! goes into a `PayItem`; the payee takes bursts of `BURST` items (`receive`: one signature
//! check per burst by default), persists by taking a snapshot and reporting it
//! (`snapshot` + `persisted`), and the ack goes back to the payer (`on_ack`). Seq reservations
//! are persisted the same way when asked for. The sign-only loop signs the same number of
//! proof bodies with nothing else around it; the ratio of the two rates shows what the state
//! machines cost on top of the signatures. Each figure is the median of `runs` runs.
//!
//! Rates are computed from the thread's CPU time (`/proc/thread-self/schedstat`, in ns) when
//! it is available, so that other processes on a shared machine do not skew the ratio; wall
//! clock rates are printed beside them.

use std::hint::black_box;
use std::time::Instant;

use paychan_channel::open::{accept_open, OpenPolicy, OpenProposal};
use paychan_channel::{Channel, ChannelError, VerifyMode};
use paychan_protocol::channel::{memo_hash, BalanceProof};
use paychan_protocol::wire::{ChannelMsg, PayItem};
use paychan_protocol::{Direction, Hash32, Keypair, Payment};

/// Items per received burst.
const BURST: usize = 256;

fn open_channels() -> (Channel, Channel) {
    let (ka, kb) = (Keypair::from_seed([0xa1; 32]), Keypair::from_seed([0xb2; 32]));
    let chain_id = Hash32([0xc4; 32]);
    let prop = OpenProposal::new(
        chain_id,
        &ka,
        kb.public(),
        u64::MAX / 4,
        0,
        Hash32([1; 32]),
        10_000,
    )
    .expect("valid proposal");
    let policy = OpenPolicy {
        chain_id,
        now_ms: 0,
        expiry_ms_min_ahead: 0,
        expiry_ms_max_ahead: 1_000_000,
        deposit_own_max: 0,
        deposit_peer_min: 0,
    };
    let (acc, msg) = accept_open(&kb, prop.open(), &policy, Hash32([2; 32])).expect("accepted");
    let ChannelMsg::OpenAccept { open, sig_b } = msg else {
        unreachable!()
    };
    let (signed, msg) = prop.on_accept(&ka, &open, &sig_b).expect("signed");
    let ChannelMsg::OpenSigned { channel_id, sig_a } = msg else {
        unreachable!()
    };
    let signed_b = acc.on_signed(channel_id, &sig_a).expect("both signed");
    let mut a = Channel::new(signed, ka).expect("channel");
    let mut b = Channel::new(signed_b, kb).expect("channel");
    for ch in [&mut a, &mut b] {
        let snap = ch.snapshot();
        ch.persisted(&snap).expect("persisted");
        ch.on_open_confirmed().expect("confirmed");
    }
    let ra = a.peer_connected().expect("reestablish");
    let rb = b.peer_connected().expect("reestablish");
    a.handle_message(&rb).expect("reestablished");
    b.handle_message(&ra).expect("reestablished");
    (a, b)
}

/// A clock: this thread's CPU time in ns (Linux), with the wall clock beside it.
#[derive(Clone, Copy)]
struct Clock {
    cpu_ns: Option<u64>,
    wall: Instant,
}

fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

impl Clock {
    fn start() -> Clock {
        Clock {
            cpu_ns: thread_cpu_ns(),
            wall: Instant::now(),
        }
    }

    /// `(rate from CPU time, rate from wall time)` for `n` operations since `self`.
    fn rates(self, n: usize) -> Rate {
        let wall = self.wall.elapsed().as_secs_f64();
        let cpu = match (self.cpu_ns, thread_cpu_ns()) {
            (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
            _ => wall,
        };
        Rate {
            cpu: n as f64 / cpu,
            wall: n as f64 / wall,
        }
    }
}

/// Operations per second, from CPU time and from wall time.
#[derive(Clone, Copy)]
struct Rate {
    cpu: f64,
    wall: f64,
}

/// Runs `n` payments through payer and payee; returns payments per second.
fn state_machine_run(n: usize, mode: VerifyMode) -> Rate {
    let (mut payer, mut payee) = open_channels();
    payee.set_verify_mode(mode);
    let mut burst: Vec<PayItem> = Vec::with_capacity(BURST);
    let clock = Clock::start();
    let mut i = 0usize;
    while i < n {
        let payment = Payment {
            amount: 1,
            reference: Hash32([i as u8; 32]),
        };
        match payer.pay(payment.amount, payment.reference) {
            Ok(proof) => {
                burst.push(PayItem {
                    proof,
                    payments: vec![payment],
                });
                i += 1;
            }
            Err(ChannelError::NeedsReservation { .. }) => {
                let snap = payer.snapshot();
                payer.persisted(&snap).expect("reservation persisted");
                continue;
            }
            Err(e) => panic!("pay failed: {e}"),
        }
        if burst.len() == BURST || i == n {
            payee.receive(&burst).expect("burst accepted");
            let snap = payee.snapshot();
            let ack = payee.persisted(&snap).expect("persisted").expect("ack");
            payer.handle_message(&ack).expect("ack accepted");
            burst.clear();
        }
        // The payer's lazy writes (its reservation ahead of time) go with the next group commit.
        if payer.persist_needs().reservation.is_some() && i.is_multiple_of(4096) {
            let snap = payer.snapshot();
            payer.persisted(&snap).expect("persisted");
        }
    }
    let rate = clock.rates(n);
    assert_eq!(payee.transferred_in(), n as u64);
    assert_eq!(payer.unacked_len(), 0);
    rate
}

/// The payer alone: `pay` for `n` payments, acked every `BURST` proofs straight from the
/// payer's own proofs (no payee). Isolates the payer's cost on top of the signature.
fn payer_only_run(n: usize) -> Rate {
    let (mut payer, _payee) = open_channels();
    let dir = payer.outgoing_direction();
    let clock = Clock::start();
    let mut i = 0usize;
    while i < n {
        match payer.pay(1, Hash32([i as u8; 32])) {
            Ok(proof) => {
                i += 1;
                if i.is_multiple_of(BURST) || i == n {
                    payer
                        .on_ack(dir, proof.proof.seq, proof.proof.hash())
                        .expect("ack");
                }
                black_box(proof);
            }
            Err(ChannelError::NeedsReservation { .. }) => {
                let snap = payer.snapshot();
                payer.persisted(&snap).expect("reservation persisted");
            }
            Err(e) => panic!("pay failed: {e}"),
        }
    }
    let rate = clock.rates(n);
    assert_eq!(payer.unacked_len(), 0);
    rate
}

/// Signs `n` proof bodies and nothing else; returns signatures per second.
fn sign_only_run(n: usize) -> Rate {
    let kp = Keypair::from_seed([0xa1; 32]);
    let mut body = BalanceProof {
        chain_id: Hash32([0xc4; 32]),
        channel_id: paychan_protocol::ChannelId(Hash32([7; 32])),
        direction: Direction::AToB,
        seq: 0,
        transferred: 0,
        prev: Hash32([8; 32]),
        memo_hash: memo_hash(&[Payment {
            amount: 1,
            reference: Hash32::ZERO,
        }]),
    };
    let clock = Clock::start();
    for i in 0..n as u64 {
        body.seq = i + 1;
        body.transferred = i + 1;
        black_box(black_box(body).sign(&kp));
    }
    clock.rates(n)
}

/// Medians of the CPU-time and wall-time rates.
fn median(v: &[Rate]) -> Rate {
    let mid = |mut x: Vec<f64>| {
        x.sort_by(|a, b| a.total_cmp(b));
        x[x.len() / 2]
    };
    Rate {
        cpu: mid(v.iter().map(|r| r.cpu).collect()),
        wall: mid(v.iter().map(|r| r.wall).collect()),
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(50_000);
    let runs: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    if cfg!(debug_assertions) {
        eprintln!("warning: debug build; run with --release for meaningful figures");
    }
    let (mut sign, mut payer, mut newest, mut all) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..runs {
        // Interleaved so that a noisy neighbour affects all of them alike.
        sign.push(sign_only_run(n));
        payer.push(payer_only_run(n));
        newest.push(state_machine_run(n, VerifyMode::Newest));
        all.push(state_machine_run(n, VerifyMode::All));
    }
    let (sign, payer, newest, all) = (median(&sign), median(&payer), median(&newest), median(&all));
    let overhead_ns = |rate: Rate| (1e9 / rate.cpu - 1e9 / sign.cpu).max(0.0);
    println!("payments: {n} per run, median of {runs} runs, burst {BURST}, one thread for both parties");
    println!("rates from thread CPU time (wall clock in brackets)");
    println!(
        "sign only                    : {:>7.0} signatures/s [{:>7.0}]  {:.2} us each",
        sign.cpu,
        sign.wall,
        1e6 / sign.cpu
    );
    for (name, r) in [
        ("payer only                   ", payer),
        ("payer + payee, verify newest ", newest),
        ("payer + payee, verify all    ", all),
    ] {
        println!(
            "{name}: {:>7.0} payments/s   [{:>7.0}]  ratio {:.3} [{:.3}]  overhead {:.0} ns/payment",
            r.cpu,
            r.wall,
            r.cpu / sign.cpu,
            r.wall / sign.wall,
            overhead_ns(r)
        );
    }
}
