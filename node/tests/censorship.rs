//! Censorship does not pay: a sequencer that drops dispute updates gets its stale settlement
//! into a block, but never witnessed, and the honest party's node reports it; a witness keeps
//! the evidence and its refusal across a restart.

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

fn json(s: &str) -> Value {
    serde_json::from_str(s).expect("JSON output")
}

#[test]
fn a_sequencer_that_drops_updates_cannot_get_a_stale_settlement_witnessed() {
    let net = Testnet::up_with(4, &["--test-drop-updates"]);
    let genesis = net.genesis();
    assert_eq!(genesis.witness_threshold, 2, "3 witnesses, threshold 2");
    let d1 = net.dir(1);
    let d1 = d1.to_str().unwrap();
    let payer = net.node_key(1).public();
    let honest = net.node_key(2).public();
    let before_payer = net.api(0).balance(&payer).unwrap();
    let before_honest = net.api(0).balance(&honest).unwrap();

    let peer2 = net.peer_id(2).to_string();
    let open = json(&cli_ok(&[
        "channel",
        "open",
        "--data-dir",
        d1,
        "--peer",
        &peer2,
        "--deposit",
        "1000",
        "--their-deposit",
        "1000",
        "--json",
    ]));
    let channel = open["channel_id"].as_str().unwrap().to_owned();
    cli_ok(&[
        "channel",
        "pay",
        &channel,
        "--data-dir",
        d1,
        "--amount",
        "7",
        "--count",
        "100",
    ]);

    // The payer closes holding nothing from node-2: for its own 700 the close is stale. node-2's
    // watchtower answers with the payer's newest proof; the sequencer drops that update.
    // The closer's node does not count the payout: the settlement is never witnessed.
    let mut close = paychan();
    close.args(["channel", "close", &channel, "--force", "--data-dir", d1]);
    let out = run_bounded(close, CLI_TIMEOUT);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a censored settlement is not reported as a payout"
    );
    assert!(stderr.contains("censorship"), "{stderr}");

    // The stale settlement is in a block: the payer got its whole deposit back.
    let after_payer = net.api(0).balance(&payer).unwrap();
    let after_honest = net.api(0).balance(&honest).unwrap();
    println!("payer: {before_payer} -> {after_payer}; honest party: {before_honest} -> {after_honest}");
    // Only the fee of the open it proposed is gone.
    assert_eq!(
        after_payer,
        before_payer - net.open_fee(&channel),
        "the censoring sequencer settled the stale close"
    );
    assert_eq!(after_honest, before_honest);

    // Every witness and the honest party's node report the censorship, with the numbers.
    let mut height = 0;
    for i in 1..4 {
        let reports = wait_until(
            &format!("node-{i} reports the censorship"),
            Duration::from_secs(10),
            || {
                let r = net.api(i).get("/v1/censorship")?;
                if r.as_array().is_some_and(|a| !a.is_empty()) {
                    Ok(r)
                } else {
                    Err("no report yet".into())
                }
            },
        );
        let r = &reports[0];
        assert_eq!(r["channel_id"], channel.as_str());
        assert_eq!(r["held_ab"], 700, "node-{i} held the honest update");
        assert_eq!(r["ledger_ab"], 0, "node-{i} saw the ledger settle without it");
        height = r["height"].as_u64().unwrap();
    }
    println!("censored settlement at height {height}");

    // The evidence and the refusal survive a restart of a witness: it still reports the
    // censorship and cosigns nothing from the censored settlement on.
    let kept = net.api(1).get("/v1/censorship").unwrap();
    net.kill9(1);
    net.restart(1);
    let restarted = net.api(1).get("/v1/censorship").unwrap();
    assert_eq!(
        restarted, kept,
        "node-1 kept its censorship report across a restart"
    );

    // No checkpoint from that block on is witnessed: the sequencer's own view has no cosigner.
    let target = height + 2;
    let cp = wait_until("checkpoints past the settlement", Duration::from_secs(15), || {
        let cp = net.api(0).get("/v1/ledger/checkpoint")?;
        if cp["height"].as_u64().unwrap_or(0) >= target {
            Ok(cp)
        } else {
            Err(format!("checkpoint at {}", cp["height"]))
        }
    });
    println!("latest checkpoint: {cp}");
    assert_eq!(cp["witnessed"], false, "{cp}");
    assert_eq!(cp["cosigners"].as_array().map(Vec::len), Some(0), "{cp}");
    for i in 1..4 {
        let theirs = net.api(i).get("/v1/ledger/checkpoint").unwrap();
        assert_eq!(theirs["witnessed"], false, "node-{i}: {theirs}");
        let cosigned = net.api(i).get("/v1/alarms").unwrap()["cosigned"]["height"]
            .as_u64()
            .unwrap_or(0);
        assert!(
            cosigned < height,
            "node-{i} cosigned height {cosigned} past the censorship"
        );
    }
    // The restarted witness caught up past the settlement and still refuses.
    wait_until("node-1 to catch up", Duration::from_secs(15), || {
        let h = net.api(1).height()?;
        if h >= target {
            Ok(())
        } else {
            Err(format!("height {h}"))
        }
    });
    assert_eq!(net.api(1).get("/v1/censorship").unwrap(), kept);
}
