//! A transfer the sequencer accepted and then lost is sent again by the node that signed it,
//! until the ledger shows it.

mod common;

use std::time::Duration;

use common::*;

#[test]
fn a_transfer_the_sequencer_lost_is_sent_again_until_a_block_holds_it() {
    let net = Testnet::up(2);
    // The sequencer answers the first transfer it is offered as accepted and drops it, as a
    // pool that loses it (a restart, an eviction) would.
    net.kill9(0);
    let config = net.dir(0).join("config.toml");
    let text = std::fs::read_to_string(&config).expect("node-0's config");
    std::fs::write(&config, format!("test_drop_transfers = 1\n{text}")).expect("write the config");
    net.restart(0);

    let to = net.node_key(0).public();
    let api = net.api(1);
    let id = wait_until(
        "node-1 to transfer through the sequencer",
        Duration::from_secs(20),
        || api.transfer(&to, 77),
    );
    let start = api.height().expect("height");
    let status = wait_until("the lost transfer in a block", Duration::from_secs(60), || {
        let v = api.get(&format!("/v1/tx/{id}"))?;
        if v["status"] == "in_block" || v["status"] == "witnessed" {
            Ok(v)
        } else {
            Err(format!("{v}"))
        }
    });
    // Not in the first block after it was sent: it was dropped, and went in after it was sent
    // again, some blocks later.
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
    let log = std::fs::read_to_string(net.dir(1).join("node.log")).expect("node-1's log");
    assert!(log.contains("own transaction sent again"), "node-1 sent it again");
    assert_eq!(net.down(), 2);
}
