//! Commands that read the ledger also work from a stopped node's data dir.

mod common;

use common::*;
use serde_json::Value;

#[test]
fn ledger_reads_work_from_a_stopped_nodes_data_dir() {
    let net = Testnet::up(2);
    let to = net.client_key(0).public();
    net.api(1).transfer(&to, 42).expect("transfer");
    wait_until("the transfer lands", std::time::Duration::from_secs(10), || {
        let b = net.api(1).balance(&to)?;
        (b == 1_000_000_042).then_some(b).ok_or(format!("balance {b}"))
    });
    let live: Value = serde_json::from_str(&cli_ok(&[
        "ledger",
        "status",
        "--json",
        "--data-dir",
        net.dir(1).to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(net.down(), 2);

    let dir = net.dir(1);
    let dir = dir.to_str().unwrap();
    let stopped: Value =
        serde_json::from_str(&cli_ok(&["ledger", "status", "--json", "--data-dir", dir])).unwrap();
    assert!(
        stopped["height"].as_u64() >= live["height"].as_u64(),
        "{stopped} vs {live}"
    );
    assert_eq!(stopped["chain_id"], live["chain_id"]);
    assert_eq!(stopped["total_value"], stopped["supply"]);
    let balance: Value = serde_json::from_str(&cli_ok(&[
        "ledger",
        "balance",
        &to.to_hex(),
        "--json",
        "--data-dir",
        dir,
    ]))
    .unwrap();
    assert_eq!(balance["balance"], 1_000_000_042u64);
    let blocks: Value =
        serde_json::from_str(&cli_ok(&["ledger", "blocks", "--json", "--data-dir", dir])).unwrap();
    let blocks = blocks.as_array().expect("blocks");
    assert!(!blocks.is_empty());
    assert_eq!(blocks.last().unwrap()["height"], stopped["height"]);
}
