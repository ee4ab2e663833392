//! A sequencer that signs two blocks at one height is caught: every node keeps both signed
//! headers as evidence (across a restart), reports them at `/v1/alarms` and stops cosigning,
//! and no node cuts off the peers that relayed the second block (the fault is the signer's).

mod common;

use std::time::Duration;

use common::*;
use serde_json::Value;

/// The double blocks node `i` reports (waits until there is one).
fn double_blocks(net: &Testnet, i: usize) -> Vec<Value> {
    wait_until(
        &format!("node-{i} reports a double block"),
        Duration::from_secs(15),
        || {
            let a = net.api(i).get("/v1/alarms")?;
            match a["double_blocks"].as_array() {
                Some(v) if !v.is_empty() => Ok(v.clone()),
                _ => Err(format!("no double block yet: {a}")),
            }
        },
    )
}

#[test]
fn a_sequencer_that_signs_two_blocks_at_one_height_is_caught() {
    let net = Testnet::up_with(4, &["--test-double-block"]);
    let genesis = net.genesis();
    let sequencer = genesis.sequencer.to_hex();

    let mut height = 0;
    for i in 1..4 {
        let d = &double_blocks(&net, i)[0];
        assert_eq!(d["signer"], sequencer.as_str(), "node-{i}: {d}");
        assert_ne!(d["first_hash"], d["second_hash"], "node-{i}: {d}");
        let h = d["height"].as_u64().expect("height");
        // The block the node holds is the chain's; the other one is the sequencer's second.
        let ours = &net.api(i).blocks(h).expect("blocks")[h as usize - 1];
        assert_eq!(ours["hash"], d["first_hash"], "node-{i}: {d}");
        assert_eq!(d["evidence"]["first"]["height"], h);
        assert_eq!(d["evidence"]["second"]["height"], h);
        height = height.max(h);
    }
    println!("double block at height {height}");

    // Witnesses cosign nothing after the evidence.
    let cosigned = |i: usize| {
        net.api(i).get("/v1/alarms").expect("alarms")["cosigned"]["height"]
            .as_u64()
            .unwrap_or(0)
    };
    let before: Vec<u64> = (1..4).map(cosigned).collect();

    // The evidence survives a restart of a witness.
    let kept = double_blocks(&net, 1);
    net.kill9(1);
    net.restart(1);
    assert_eq!(double_blocks(&net, 1), kept, "node-1 kept the evidence");

    // The chain goes on and every node follows it: nobody banned the relays.
    let target = height + 3;
    for i in 0..4 {
        wait_until(
            &format!("node-{i} past height {target}"),
            Duration::from_secs(15),
            || {
                let h = net.api(i).height()?;
                if h >= target {
                    Ok(())
                } else {
                    Err(format!("height {h}"))
                }
            },
        );
    }
    for i in 0..4 {
        let peers = net.api(i).peers().expect("peers");
        assert!(peers.len() >= 2, "node-{i} still has its peers: {peers:?}");
    }
    let after: Vec<u64> = (1..4).map(cosigned).collect();
    assert_eq!(after, before, "witnesses stop cosigning after a double block");
    let cp = net.api(0).get("/v1/ledger/checkpoint").expect("checkpoint");
    assert!(cp["height"].as_u64().unwrap_or(0) >= target, "{cp}");
    assert_eq!(cp["witnessed"], false, "{cp}");
}
