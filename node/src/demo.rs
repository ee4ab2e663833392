//! `paychan testnet demo`: the main job end to end against a running testnet.
//!
//! Opens channels between nodes and from a client account, streams 10,000 payments through
//! each (both directions on one), closes one cooperatively and one unilaterally (the
//! counterparty's watchtower answers with a newer proof), waits for the payouts, prints the final
//! balances next to the expected ones, and verifies the ledger from genesis; then a reader pays
//! a static site behind a 402 gateway per request, per KiB and with a donation
//! ([`crate::demo_site`]). Any difference is an error (non-zero exit).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use paychan_protocol::Payment;
use serde_json::{json, Value};

use crate::client::{read_key, Client, ClientOptions};
use crate::config::DataDir;
use crate::http::ApiClient;
use crate::testnet;

/// Payments streamed through each channel (each direction on the two-way one).
const PAYMENTS: u64 = 10_000;
/// Payments per API call, so that the progress bar moves.
const CHUNK: u64 = 2_000;

/// One control API call (a POST with `body`, else a GET) off the runtime's threads.
pub(crate) async fn call(api: &ApiClient, path: &str, body: Option<Value>) -> Result<Value> {
    let (api, path) = (api.clone(), path.to_owned());
    tokio::task::spawn_blocking(move || match body {
        Some(b) => api.post(&path, &b),
        None => api.get(&path),
    })
    .await?
}

pub(crate) fn bar(label: &str, len: u64) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{prefix:<28} {bar:30} {pos:>6}/{len} {per_sec:>14}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_prefix(label.to_owned());
    bar
}

/// Pays through a node's API in chunks, with a progress bar.
async fn node_pay(api: &ApiClient, label: &str, channel: &str, amount: u64) -> Result<f64> {
    let bar = bar(label, PAYMENTS);
    let started = Instant::now();
    let mut done = 0;
    while done < PAYMENTS {
        let n = CHUNK.min(PAYMENTS - done);
        call(
            api,
            &format!("channels/{channel}/pay"),
            Some(json!({"amount": amount, "count": n, "memo": label})),
        )
        .await?;
        done += n;
        bar.set_position(done);
    }
    bar.finish();
    Ok(PAYMENTS as f64 / started.elapsed().as_secs_f64())
}

async fn open(api: &ApiClient, peer: &str, deposit: u64, their_deposit: u64) -> Result<String> {
    let v = call(
        api,
        "channels",
        Some(json!({"peer": peer, "deposit": deposit, "their_deposit": their_deposit})),
    )
    .await?;
    Ok(v["channel_id"].as_str().context("channel id")?.to_owned())
}

/// `account`'s balance on the ledger as `api`'s node sees it.
pub(crate) async fn balance(api: &ApiClient, account: &str) -> Result<u64> {
    call(api, &format!("accounts/{account}"), None).await?["balance"]
        .as_u64()
        .context("balance")
}

/// Runs the demo against the testnet in `root`; its pay-per-use part is [`crate::demo_site`].
pub async fn run(root: &Path) -> Result<()> {
    let rows = testnet::status(root)?;
    ensure!(rows.len() >= 3, "the demo needs a testnet of at least 3 nodes");
    ensure!(
        rows.iter().all(|r| r.pid.is_some()),
        "every node must be running (`paychan testnet up`)"
    );
    let dirs: Vec<DataDir> = (0..rows.len())
        .map(|i| DataDir::new(root.join(format!("node-{i}"))))
        .collect();
    let mut apis: Vec<ApiClient> = dirs.iter().map(ApiClient::from_data_dir).collect::<Result<_>>()?;
    let mut accounts = Vec::new();
    for api in &apis {
        accounts.push(
            call(api, "info", None).await?["account"]
                .as_str()
                .context("account")?
                .to_owned(),
        );
    }
    let (a, b, c) = (1, 2, if rows.len() > 3 { 3 } else { 0 });
    let name = |i: usize| format!("node-{i}");

    println!("starting a client with its own key (client-0), following node-{a}");
    let client_key = read_key(&root.join("clients").join("client-0.key"))?;
    let p2p = |i: usize| -> Result<paychan_net::Multiaddr> {
        Ok(rows[i].p2p_addr.as_deref().context("p2p address")?.parse()?)
    };
    // The client pins the testnet's genesis: a node serving another chain is refused.
    let pin = paychan_client::ChainPin::Genesis(Box::new(dirs[0].genesis()?));
    let client = Client::start(client_key, p2p(a)?, ClientOptions::new(pin, Some(p2p(0)?))).await?;
    let client_account = client.keypair.public().to_hex();

    let mut watched: BTreeMap<String, String> = BTreeMap::new();
    for i in [a, b, c] {
        watched.insert(accounts[i].clone(), name(i));
    }
    watched.insert(client_account.clone(), "client-0".into());
    let mut before = BTreeMap::new();
    for acct in watched.keys() {
        before.insert(acct.clone(), balance(&apis[0], acct).await?);
    }
    // Every block after this one is the demo's: the fees it pays are found there.
    let start_height = call(&apis[0], "ledger/status", None).await?["height"]
        .as_u64()
        .context("height")?;

    println!("opening channels: node-{a} <-> node-{b}, node-{b} -> node-{c}, client-0 -> node-{a}");
    let ch1 = open(&apis[a], &rows[b].peer_id, 1_000_000, 1_000_000).await?;
    let ch2 = open(&apis[b], &rows[c].peer_id, 1_000_000, 0).await?;
    let ch3 = client.open(1_000_000, 0).await?;

    println!(
        "streaming {PAYMENTS} individually signed payments through each channel (both ways on the first)"
    );
    let r1 = node_pay(&apis[a], &format!("node-{a} -> node-{b} (3 each)"), &ch1, 3).await?;
    let r2 = node_pay(&apis[b], &format!("node-{b} -> node-{a} (1 each)"), &ch1, 1).await?;
    let r3 = node_pay(&apis[b], &format!("node-{b} -> node-{c} (2 each)"), &ch2, 2).await?;
    let bar3 = bar(&format!("client-0 -> node-{a} (5 each)"), PAYMENTS);
    let started = Instant::now();
    let reference = Payment::text_reference("demo");
    let mut done = 0;
    while done < PAYMENTS {
        let n = CHUNK.min(PAYMENTS - done);
        client.channels.pay(ch3, 5, n, reference).await?;
        done += n;
        bar3.set_position(done);
    }
    bar3.finish();
    let r4 = PAYMENTS as f64 / started.elapsed().as_secs_f64();
    let g = |r: f64| crate::output::grouped(r.round() as u64);
    println!(
        "rates (payments/s, each acknowledged): {}, {}, {}, {}",
        g(r1),
        g(r2),
        g(r3),
        g(r4)
    );

    println!("closing: node-{a}/node-{b} cooperatively, node-{b}/node-{c} unilaterally by node-{b} (node-{c} answers), client channel cooperatively");
    call(
        &apis[a],
        &format!("channels/{ch1}/close"),
        Some(json!({"force": false})),
    )
    .await?;
    let t = Instant::now();
    call(
        &apis[b],
        &format!("channels/{ch2}/close"),
        Some(json!({"force": true})),
    )
    .await?;
    println!(
        "  unilateral close settled after the challenge window ({:.1} s)",
        t.elapsed().as_secs_f64()
    );
    client.channels.close(ch3, false).await?;

    // What each account should hold: deposits come back with what was paid moved across.
    let mut delta: BTreeMap<String, i64> = BTreeMap::new();
    let mut add = |acct: &str, d: i64| *delta.entry(acct.to_owned()).or_default() += d;
    let n = PAYMENTS as i64;
    add(&accounts[a], -3 * n + n);
    add(&accounts[b], 3 * n - n);
    add(&accounts[b], -2 * n);
    add(&accounts[c], 2 * n);
    add(&client_account, -5 * n);
    add(&accounts[a], 5 * n);

    // Fees (PROTOCOL.md §8.4): each open's proposer pays tx_fee_min + tx_fee_per_byte per byte
    // of the open, to the sequencer; the closes, updates and settle are free.
    let genesis = dirs[0].genesis()?;
    let target = call(&apis[0], "ledger/status", None).await?["height"]
        .as_u64()
        .unwrap_or(0);
    let proposers = [
        (ch1.clone(), accounts[a].clone()),
        (ch2.clone(), accounts[b].clone()),
        (ch3.to_string(), client_account.clone()),
    ];
    let mut fee_failures = Vec::new();
    let mut opens_seen = 0;
    let mut from = start_height + 1;
    while from <= target {
        let blocks = call(&apis[0], &format!("ledger/blocks?from={from}&limit=256"), None).await?;
        let blocks = blocks.as_array().context("blocks")?;
        ensure!(!blocks.is_empty(), "no block at height {from}");
        for tx in blocks
            .iter()
            .flat_map(|b| b["txs"].as_array().into_iter().flatten())
        {
            let kind = tx["kind"].as_str().unwrap_or("");
            if !matches!(kind, "transfer" | "deposit" | "open") {
                continue;
            }
            let channel = tx["channel"].as_str().unwrap_or("");
            let Some((_, payer)) = proposers
                .iter()
                .find(|(ch, _)| ch == channel)
                .filter(|_| kind == "open")
            else {
                fee_failures.push(format!(
                    "an unexpected fee-paying {kind} in the demo's blocks: {tx}"
                ));
                continue;
            };
            let bytes = tx["bytes"].as_u64().context("tx bytes")?;
            let fee = genesis.tx_fee_min + genesis.tx_fee_per_byte * bytes;
            println!("  open of channel {} paid a fee of {fee}", &channel[..12]);
            opens_seen += 1;
            add(payer, -(fee as i64));
            add(&accounts[0], fee as i64);
        }
        from += blocks.len() as u64;
    }
    if opens_seen != proposers.len() {
        fee_failures.push(format!(
            "{opens_seen} opens found in the demo's blocks, expected 3"
        ));
    }

    // Every replica must reach the same height before balances are compared.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut statuses = Vec::new();
    for api in &apis {
        loop {
            let st = call(api, "ledger/status", None).await?;
            if st["height"].as_u64().unwrap_or(0) >= target {
                statuses.push(st);
                break;
            }
            ensure!(Instant::now() < deadline, "a replica did not catch up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    let mut failures = fee_failures;
    println!(
        "\n{:<10} {:<64} {:>14} {:>14} {:>14}  ",
        "WHO", "ACCOUNT", "BEFORE", "EXPECTED", "ACTUAL"
    );
    // In the order of the names (node-1, node-2, ..., client-0), not of the random keys.
    let mut by_name: Vec<(&String, &String)> = watched.iter().collect();
    by_name.sort_by_key(|(_, who)| (who.starts_with("client"), who.to_string()));
    for (acct, who) in by_name {
        let expected = (before[acct] as i64 + delta.get(acct).copied().unwrap_or(0)) as u64;
        let mut actual = Vec::new();
        for api in &apis {
            actual.push(balance(api, acct).await?);
        }
        let ok = actual.iter().all(|x| *x == expected);
        println!(
            "{:<10} {:<64} {:>14} {:>14} {:>14}  {}",
            who,
            acct,
            before[acct],
            expected,
            actual[0],
            if ok { "ok" } else { "MISMATCH" }
        );
        if !ok {
            failures.push(format!("{who}: expected {expected}, replicas report {actual:?}"));
        }
    }

    println!("\nverifying the ledger");
    client.ledger.sync().await?;
    let (height, state_root, supply, total) = client
        .ledger
        .with_state(|s| (s.height(), s.state_root(), s.genesis_supply(), s.total_value()));
    println!("  replayed {height} blocks from genesis: every signature, transaction and root checks out");
    if supply != total {
        failures.push(format!(
            "conservation: supply {supply} != balances plus deposits {total}"
        ));
    }
    for (i, api) in apis.iter().enumerate() {
        let blocks = call(api, &format!("ledger/blocks?from={height}&limit=1"), None).await?;
        let root = blocks[0]["state_root"].as_str().unwrap_or("");
        if root != state_root.to_hex() {
            failures.push(format!(
                "node-{i}: state root at height {height} differs from the verified replay"
            ));
        }
        if statuses[i]["total_value"] != statuses[i]["supply"] {
            failures.push(format!("node-{i}: conservation fails"));
        }
    }
    println!(
        "  every node agrees with the replay at height {height} (state root {})",
        &state_root.to_hex()[..16]
    );
    let checked = client.verify_channel_txs(&ch3, Duration::from_secs(30)).await?;
    println!("  client: {checked} transactions of its channel proven by inclusion in a witnessed checkpoint");

    failures.extend(crate::demo_site::run(root, &rows, &dirs, &mut apis).await?);

    if !failures.is_empty() {
        for f in &failures {
            eprintln!("FAILED: {f}");
        }
        bail!("{} check(s) failed", failures.len());
    }
    println!("\ndemo passed: all balances as expected, ledger verified");
    Ok(())
}
