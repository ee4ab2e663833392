//! A transfer the sequencer accepted and then lost is sent again by the node that signed it,
//! until the ledger shows it, also when that node was killed and restarted in between.

mod common;

use std::time::Duration;

use common::*;

/// A 2-node testnet whose sequencer answers the first transfer it is offered as accepted and
/// drops it, as a pool that loses it (a restart, an eviction) would.
fn dropping_testnet() -> Testnet {
    let net = Testnet::up(2);
    net.kill9(0);
    let config = net.dir(0).join("config.toml");
    let text = std::fs::read_to_string(&config).expect("node-0's config");
    std::fs::write(&config, format!("test_drop_transfers = 1\n{text}")).expect("write the config");
    net.restart(0);
    net
}

/// Node-1 transfers 77 to node-0; the transfer's id and the height when it was sent.
fn transfer(net: &Testnet) -> (String, u64) {
    let to = net.node_key(0).public();
    let api = net.api(1);
    let id = wait_until(
        "node-1 to transfer through the sequencer",
        Duration::from_secs(20),
        || api.transfer(&to, 77),
    );
    (id, api.height().expect("height"))
}

/// Waits for `id` in a block and checks it went in after it was sent again, some blocks
/// after `start` (it was dropped).
fn lands_late(net: &Testnet, id: &str, start: u64) {
    let api = net.api(1);
    let status = wait_until("the lost transfer in a block", Duration::from_secs(60), || {
        let v = api.get(&format!("/v1/tx/{id}"))?;
        if v["status"] == "in_block" || v["status"] == "witnessed" {
            Ok(v)
        } else {
            Err(format!("{v}"))
        }
    });
    let height = status["height"].as_u64().expect("its height");
    assert!(
        height >= start + paychan::resubmit::RESUBMIT_AFTER_BLOCKS,
        "in block {height}, sent at {start}"
    );
    let seq_log = std::fs::read_to_string(net.dir(0).join("restart.log")).expect("node-0's log");
    assert!(
        seq_log.contains("TEST SWITCH: dropping a transfer"),
        "the switch dropped it"
    );
}

#[test]
fn a_transfer_the_sequencer_lost_is_sent_again_until_a_block_holds_it() {
    let net = dropping_testnet();
    let (id, start) = transfer(&net);
    lands_late(&net, &id, start);
    let log = std::fs::read_to_string(net.dir(1).join("node.log")).expect("node-1's log");
    assert!(log.contains("own transaction sent again"), "node-1 sent it again");
    assert_eq!(net.down(), 2);
}

#[test]
fn a_lost_transfer_is_still_sent_again_after_its_node_was_killed() {
    let net = dropping_testnet();
    let (id, start) = transfer(&net);
    // Killed before it could send it again: what it must send again is in its store.
    net.kill9(1);
    net.restart(1);
    lands_late(&net, &id, start);
    let log = std::fs::read_to_string(net.dir(1).join("restart.log")).expect("node-1's log");
    assert!(
        log.contains("own transactions to send again"),
        "node-1 read its tracker back"
    );
    assert!(
        log.contains("own transaction sent again"),
        "node-1 sent it again after the restart"
    );
    assert_eq!(net.down(), 2);
}
