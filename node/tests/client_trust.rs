//! `paychan client` trusts no genesis and no single peer, against real node processes: pinned to
//! one chain it refuses a node of another before it signs anything, it refuses a sequencer that
//! is not the pinned genesis's, and a counterparty that hides its own close (it closes with no
//! proofs and goes silent) does not keep the client's watchtower blind: the client reads the
//! sequencer, another peer and a public endpoint too, answers the close and is paid in full.

mod common;

use std::io::Read;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use paychan_protocol::ledger::UnilateralClose;
use paychan_protocol::{ChannelId, Hash32, Tx, Wire};
use serde_json::{json, Value};

/// `paychan client` args against node `i` of `net` with the key of its client account `k`.
fn client_args(net: &Testnet, k: usize, i: usize) -> Vec<String> {
    let key = net.root.join("clients").join(format!("client-{k}.key"));
    vec![
        "client".into(),
        "--key".into(),
        key.to_str().unwrap().into(),
        "--node".into(),
        net.p2p_addr(i).to_string(),
    ]
}

fn run_client(args: &[String]) -> std::process::Output {
    let mut cmd = paychan();
    cmd.args(args);
    run_bounded(cmd, CLI_TIMEOUT)
}

fn channels(api: &Api) -> Vec<Value> {
    api.get("/v1/channels")
        .expect("GET /v1/channels")
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Pointed at another chain's node, the client exits non-zero with a clear error and signs
/// nothing: no channel at that node, no transaction of its account on that ledger. A
/// `--sequencer` that is not the pinned genesis's sequencer is refused the same way, and an
/// unpinned run is refused by the CLI.
#[test]
fn a_client_pinned_to_another_chain_signs_nothing() {
    let a = Testnet::up(1);
    let b = Testnet::up(1);
    let (chain_a, chain_b) = (a.genesis().chain_id().to_hex(), b.genesis().chain_id().to_hex());
    assert_ne!(chain_a, chain_b);
    let client = b.client_key(0).public();
    let api = b.api(0);
    let balance = api.balance(&client).unwrap();
    let refused = |out: &std::process::Output, needles: &[&str]| {
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "the client must fail; stderr: {err}");
        for n in needles {
            assert!(err.contains(n), "stderr lacks {n:?}: {err}");
        }
        assert!(
            out.stdout.is_empty(),
            "a refused run reports nothing: {:?}",
            out.stdout
        );
    };

    // Pinned to A by chain id, then by A's genesis file, against B's node (funded key of B).
    let pay = ["--deposit", "1000", "--amount", "1", "--count", "5"].map(String::from);
    let mut by_id = client_args(&b, 0, 0);
    by_id.extend(["--chain-id".into(), chain_a.clone()]);
    by_id.extend(pay.clone());
    let out = run_client(&by_id);
    refused(
        &out,
        &["serves chain", &chain_b, &format!("pinned to chain {chain_a}")],
    );
    let mut by_file = client_args(&b, 0, 0);
    let genesis_a = a.dir(0).join("genesis.bin");
    by_file.extend(["--genesis".into(), genesis_a.to_str().unwrap().into()]);
    by_file.extend(pay.clone());
    refused(&run_client(&by_file), &["serves chain", &chain_b, &chain_a]);

    // Pinned to B, but the sequencer given is A's: refused before anything is signed.
    let mut wrong_seq = client_args(&b, 0, 0);
    wrong_seq.extend(["--chain-id".into(), chain_b.clone()]);
    wrong_seq.extend(["--sequencer".into(), a.p2p_addr(0).to_string()]);
    wrong_seq.extend(pay.clone());
    refused(
        &run_client(&wrong_seq),
        &["is not the sequencer of the pinned genesis"],
    );

    // No pin at all: the CLI refuses to start.
    let mut unpinned = client_args(&b, 0, 0);
    unpinned.extend(pay.clone());
    refused(&run_client(&unpinned), &["--chain-id"]);

    // Nothing was signed on B: no channel at its node, the client's balance untouched.
    assert!(channels(&api).is_empty(), "{:?}", channels(&api));
    assert_eq!(api.balance(&client).unwrap(), balance);

    // The control: pinned to B, the same run goes through.
    let mut ok = client_args(&b, 0, 0);
    ok.extend(["--chain-id".into(), chain_b.clone(), "--json".into()]);
    ok.extend(pay);
    let out = run_client(&ok);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    assert_eq!(report["chain_id"], chain_b.as_str());
    assert_eq!(report["paid"], 5);
    assert_eq!(channels(&api).len(), 1);
}

/// The counterparty (node-1) is paid 10 by the client and pays the client 5,000, then goes
/// silent and a close signed by its key with no proofs lands on the ledger (what a dishonest
/// node would do to keep what it paid). The client, holding the channel open with
/// `--hold-secs`, reads the sequencer, node-2 and node-3's public endpoint as well: it sees the
/// close, answers it with node-1's newest proof, settles, and is paid what it received. A
/// client that read only its counterparty would never see the close.
#[test]
fn a_counterparty_that_hides_its_close_does_not_blind_the_clients_watchtower() {
    let net = Testnet::up(4);
    let chain = net.genesis().chain_id().to_hex();
    let client = net.client_key(0).public();
    let before = net.api(0).balance(&client).unwrap();
    let public3 = format!(
        "http://{}",
        std::fs::read_to_string(net.dir(3).join("public.addr"))
            .unwrap()
            .trim()
    );
    let mut args = client_args(&net, 0, 1);
    args.extend(
        [
            "--chain-id",
            &chain,
            "--sequencer",
            &net.p2p_addr(0).to_string(),
            "--ledger-peer",
            &net.p2p_addr(2).to_string(),
            "--ledger-url",
            &public3,
            "--deposit",
            "1000",
            "--their-deposit",
            "50000",
            "--amount",
            "1",
            "--count",
            "10",
            "--hold-secs",
            "60",
            "--json",
        ]
        .map(String::from),
    );
    let mut child = paychan()
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the client");
    net.track_pid(child.id());

    // The channel is open at node-1 with the client's 10 received.
    let node1 = net.api(1);
    let id = wait_until("the client's channel at node-1", STEP, || {
        channels(&node1)
            .into_iter()
            .find(|c| c["counterparty"] == client.to_hex() && c["status"] == "open" && c["received"] == 10)
            .map(|c| c["id"].as_str().unwrap().to_owned())
            .ok_or_else(|| format!("{:?}", channels(&node1)))
    });
    // node-1 pays the client 5,000, acknowledged (so persisted) by the client.
    let (code, v) = node1
        .post(
            &format!("/v1/channels/{id}/pay"),
            &json!({"amount": 100, "count": 50}),
        )
        .unwrap();
    assert_eq!(code, 200, "{v}");
    wait_until("the client to ack node-1's payments", STEP, || {
        let c = channels(&node1)
            .into_iter()
            .find(|c| c["id"] == id.as_str())
            .ok_or("gone")?;
        (c["sent"] == 5000 && c["unacked"] == 0)
            .then_some(())
            .ok_or(format!("{c}"))
    });

    // node-1 goes silent, and a close by its key that holds no proof lands on the ledger.
    net.kill9(1);
    let close = Tx::unilateral_close(
        UnilateralClose {
            chain_id: net.genesis().chain_id(),
            channel_id: ChannelId(Hash32::from_hex(&id).unwrap()),
            closer: net.node_key(1).public(),
            proof_ab: None,
            proof_ba: None,
        },
        &net.node_key(1),
    );
    let (code, v) = net
        .api(2)
        .post("/v1/tx", &json!({"tx": hex::encode(close.to_bytes())}))
        .unwrap();
    assert_eq!(code, 200, "{v}");

    // The client answers the close, settles, sees the payout witnessed, and exits.
    let status = wait_until("the client to finish", Duration::from_secs(90), || {
        child
            .try_wait()
            .map_err(|e| e.to_string())?
            .ok_or("running".to_string())
    });
    let (mut out, mut err) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "client failed: {err}");
    let report: Value = serde_json::from_str(out.trim()).expect("JSON report");
    println!("{report}");
    let open_fee = net.open_fee(&id);
    // Paid out deposit + 5,000 received - 0 (the close carried none of the client's proofs),
    // less the fee of the open the client proposed.
    assert_eq!(
        report["balance_after"].as_u64().unwrap(),
        report["balance_before"].as_u64().unwrap() + 5000 - open_fee,
        "{report}"
    );
    assert!(
        report["verified_txs"].as_u64().unwrap() >= 4,
        "open, close, update, settle: {report}"
    );
    let target = net.api(0).height().unwrap();
    for i in [0, 2, 3] {
        wait_until("replicas catch up", STEP, || {
            let h = net.api(i).height()?;
            (h >= target).then_some(()).ok_or(format!("height {h}"))
        });
        assert_eq!(net.api(i).balance(&client).unwrap(), before + 5000 - open_fee);
    }
    // The silent counterparty is reported as an alarm; the other sources served.
    let sources = report["sources"].as_array().unwrap();
    let row = |what: &str| {
        sources
            .iter()
            .find(|s| s["source"].as_str().unwrap().starts_with(what))
            .unwrap_or_else(|| panic!("no {what} source: {report}"))
    };
    assert_eq!(row("counterparty")["alarm"], true, "{report}");
    for what in ["sequencer", "ledger peer", "public endpoint"] {
        assert_eq!(row(what)["alarm"], false, "{what}: {report}");
        assert!(
            row(what)["witnessed_height"].as_u64().unwrap() > 0,
            "{what}: {report}"
        );
    }
}

/// Issue 5: once the witnesses stop, no new checkpoint is witnessed and the client's view goes
/// stale. With `--stale-after-secs`, the client reports it and refuses to open or pay, with an
/// error that says why, and signs nothing; the same run while the witness was up succeeded.
#[test]
fn a_client_whose_witnessed_view_goes_stale_refuses_to_open_or_pay() {
    let net = Testnet::up(2);
    let chain = net.genesis().chain_id().to_hex();
    let client = net.client_key(0).public();
    let api = net.api(0);
    let mut args = client_args(&net, 0, 0);
    args.extend(["--chain-id", &chain, "--stale-after-secs", "2"].map(String::from));
    args.extend(["--deposit", "1000", "--amount", "1", "--count", "5"].map(String::from));

    // With the witness (node-1) up, the view is fresh and the run goes through.
    let out = run_client(&args);
    assert!(
        out.status.success(),
        "a fresh view must be accepted: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let opened = channels(&api).len();
    assert_eq!(opened, 1);

    // The only witness stops: checkpoints go on being signed, none is witnessed any more.
    net.kill9(1);
    let height = api.height().unwrap();
    wait_until("the sequencer moves on without its witness", STEP, || {
        let h = api.height()?;
        if h >= height + 2 {
            Ok(())
        } else {
            Err(format!("height {h}"))
        }
    });
    // Staleness is a matter of time: let the newest witnessed checkpoint age past the bound.
    std::thread::sleep(Duration::from_secs(3));
    let balance = api.balance(&client).unwrap();
    let out = run_client(&args);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success(),
        "a stale view must be refused; stderr: {err}"
    );
    for needle in [
        "stale ledger view",
        "witnessed checkpoint",
        "refusing to open or pay",
    ] {
        assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
    }
    assert!(
        out.stdout.is_empty(),
        "a refused run reports nothing: {:?}",
        out.stdout
    );
    // Nothing was signed: no new channel, no fee or deposit gone.
    assert_eq!(
        channels(&api).len(),
        opened,
        "a channel was opened on a stale view"
    );
    assert_eq!(api.balance(&client).unwrap(), balance);
}
