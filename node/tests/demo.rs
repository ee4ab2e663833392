//! The main job and the client program, end to end against real node processes.

mod browser;
mod common;

use common::*;
use serde_json::Value;

/// `paychan testnet demo`: channels between nodes and from a client account, 10,000 payments
/// each, a cooperative and an answered unilateral close, balances and ledger checked; then a
/// static site sold through a 402 gateway (per request, per KiB, a donation); then a reader on
/// credit, its debt and the repayment, and every account's score equal from the CLI and the
/// auditor.
#[test]
fn the_demo_passes_against_a_fresh_testnet() {
    let net = Testnet::up(4);
    // The demo waits out a 30 s challenge window and then reads the paid site: more than one
    // CLI command's usual bound on a loaded machine.
    let mut cmd = paychan();
    cmd.args(["testnet", "demo", "--dir", net.root_str()]);
    let done = run_bounded(cmd, std::time::Duration::from_secs(180));
    assert!(
        done.status.success(),
        "the demo failed ({}):\nstdout: {}\nstderr: {}",
        done.status,
        String::from_utf8_lossy(&done.stdout),
        String::from_utf8_lossy(&done.stderr)
    );
    let out = String::from_utf8(done.stdout).expect("utf-8 output");
    println!("{out}");
    assert!(
        out.contains("demo passed: all balances as expected, ledger verified"),
        "{out}"
    );
    assert!(!out.contains("MISMATCH"), "{out}");
    // The pay-per-use part: 1,000 paid requests at 2, the 256 KiB file at 2 + 255 x 1, a
    // donation of 500, and the creator's balance grown by exactly that on every replica.
    assert!(
        out.contains("1,000 paid requests answered, 2,000 charged"),
        "{out}"
    );
    assert!(
        out.contains("streamed files/large.bin: 262,144 bytes, charged 257"),
        "{out}"
    );
    let site = out
        .lines()
        .find(|l| l.contains("creator's balance"))
        .unwrap_or_else(|| panic!("no creator's balance line: {out}"));
    assert!(site.contains("amount paid 2,757"), "{site}");
    assert!(site.trim_end().ends_with("ok"), "{site}");

    // The demo's ledger audits clean from an export, from a peer and from the public endpoints,
    // pinned to its chain id, and the report names that chain.
    let chain_id = net.genesis().chain_id().to_hex();
    let export = net.root.join("demo.export");
    let node1 = net.dir(1);
    let d1 = node1.to_str().unwrap();
    cli_ok(&[
        "ledger",
        "export",
        "--out",
        export.to_str().unwrap(),
        "--data-dir",
        d1,
    ]);
    let url = format!(
        "http://{}",
        std::fs::read_to_string(node1.join("public.addr")).unwrap().trim()
    );
    let peer = net.p2p_addr(2).to_string();
    for source in [
        ["--file", export.to_str().unwrap()],
        ["--url", url.as_str()],
        ["--peer", peer.as_str()],
    ] {
        let report = cli_ok(&["audit", source[0], source[1], "--chain-id", &chain_id, "--json"]);
        let v: Value = serde_json::from_str(report.trim()).expect("a JSON audit report");
        assert_eq!(v["ok"], true, "{source:?}: {v}");
        assert_eq!(v["chain_id"], chain_id, "{source:?}: {v}");
        let r = &v["sources"][0]["report"];
        assert_eq!(r["chain_id"], chain_id, "{source:?}: {v}");
        assert!(r["blocks"].as_u64().unwrap() > 0, "{source:?}: {v}");
        // The demo settles its unilateral close: the audit replayed it.
        assert!(r["channels"]["settled"].as_u64().unwrap() > 0, "{source:?}: {v}");
    }

    // The credit part: a reader past its deposit on a line, a debt at settlement, repaid from
    // the next transfer.
    for line in [
        "read 1,050 articles for 2,100: 100 from the deposit, 2,000 on credit",
        "a debt of 2,000 recorded",
        "of it paid the debt (now repaid)",
    ] {
        assert!(out.contains(line), "no {line:?} in:\n{out}");
    }
    // The score of every account of the demo, computed by the CLI from a node's replica,
    // equals the one the auditor computes from the export (the credit reader's included).
    let reader = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("the reader's account: "))
        .unwrap_or_else(|| panic!("no reader's account in:\n{out}"))
        .to_owned();
    let mut accounts: Vec<String> = (0..4).map(|i| net.node_key(i).public().to_hex()).collect();
    accounts.extend((0..3).map(|k| net.client_key(k).public().to_hex()));
    accounts.push(reader);
    let mut args = vec![
        "audit",
        "--file",
        export.to_str().unwrap(),
        "--chain-id",
        &chain_id,
        "--json",
    ];
    for a in &accounts {
        args.extend(["--score", a.as_str()]);
    }
    let audited: Value = serde_json::from_str(cli_ok(&args).trim()).expect("a JSON audit report");
    let mut nonzero = 0;
    for (k, account) in accounts.iter().enumerate() {
        let auditor = &audited["scores"][k];
        let node: Value =
            serde_json::from_str(cli_ok(&["credit", "score", account, "--data-dir", d1, "--json"]).trim())
                .unwrap();
        assert_eq!(auditor["account"], account.as_str());
        // Heartbeat blocks since the export change no factor within the demo's hour.
        assert_eq!(node["factors"], auditor["factors"], "{account}");
        assert_eq!(node["score"], auditor["score"], "{account}");
        nonzero += usize::from(node["score"].as_u64() > Some(0));
    }
    assert!(
        nonzero >= 2,
        "the demo's settled channels and repaid debt score: {audited}"
    );

    // The explorer after the demo, in a real browser (Chromium; required when CI=true): the
    // newest blocks with the same hashes as `paychan ledger blocks`, the checkpoint verified
    // under the pinned keys, the demo's credit grant verified by its inclusion proof, and no
    // console error.
    let grant = out
        .lines()
        .find_map(|l| l.split("(tx ").nth(1).and_then(|r| r.split(')').next()))
        .unwrap_or_else(|| panic!("no grant transaction in:\n{out}"))
        .to_owned();
    if let Some(mut b) = browser::Browser::launch() {
        let page = std::time::Duration::from_secs(10);
        b.pin_announced_keys(&url, page);
        b.viewport(1280, 900, false);
        b.goto(&format!("{url}/#/"));
        let shown: Vec<(u64, String)> = serde_json::from_value(b.wait_for(
            "blocks listed",
            page,
            "(() => { const r = [...document.querySelectorAll('#blocks tbody tr')]; return r.length >= 5 ? r.map(r => [Number(r.dataset.height), r.dataset.hash]) : null })()",
        ))
        .expect("rows");
        let (lowest, tip) = (
            shown.iter().map(|(h, _)| *h).min().unwrap(),
            shown.iter().map(|(h, _)| *h).max().unwrap(),
        );
        let (from, limit) = (lowest.to_string(), (tip - lowest + 1).to_string());
        let cli: Value = serde_json::from_str(
            cli_ok(&[
                "ledger",
                "blocks",
                "--from",
                &from,
                "--limit",
                &limit,
                "--data-dir",
                d1,
                "--json",
            ])
            .trim(),
        )
        .expect("JSON blocks");
        for (h, hash) in &shown {
            let theirs = cli
                .as_array()
                .and_then(|a| a.iter().find(|b| b["height"].as_u64() == Some(*h)))
                .unwrap_or_else(|| panic!("no block {h} from the CLI"));
            assert_eq!(theirs["hash"].as_str(), Some(hash.as_str()), "block {h}");
        }
        b.wait_for(
            "the checkpoint verified",
            page,
            "document.querySelector('#cp-verdict[data-verdict=verified]') !== null",
        );
        b.eval(&format!("location.hash = '#/tx/{grant}'"));
        let verdict = b.wait_for(
            "the credit grant's verdict",
            page,
            "(() => { const v = document.querySelector('#tx-verdict:not([data-verdict=pending])'); return v ? [v.dataset.verdict, v.textContent] : null })()",
        );
        assert_eq!(verdict[0], "verified", "{verdict}");
        let errors = b.errors();
        assert!(errors.is_empty(), "console errors: {errors:?}");
    }
}

/// `paychan client`: its own key, no node of its own; it opens a channel with a node, pays,
/// closes, and proves its transactions by inclusion in witnessed checkpoints.
#[test]
fn a_client_program_opens_pays_closes_and_verifies() {
    let net = Testnet::up(3);
    let key = net.root.join("clients").join("client-1.key");
    let client = net.client_key(1).public();
    let node = net.node_key(1).public();
    let node_before = net.api(0).balance(&node).unwrap();
    let chain_id = net.genesis().chain_id().to_hex();
    let out = cli_ok(&[
        "client",
        "--chain-id",
        &chain_id,
        "--key",
        key.to_str().unwrap(),
        "--node",
        &net.p2p_addr(1).to_string(),
        "--sequencer",
        &net.p2p_addr(0).to_string(),
        "--deposit",
        "50000",
        "--amount",
        "3",
        "--count",
        "5000",
        "--json",
    ]);
    let report: Value = serde_json::from_str(&out).expect("JSON report");
    println!("{report}");
    assert_eq!(report["account"], client.to_hex());
    assert_eq!(report["payments"], 5000);
    assert_eq!(report["paid"], 15000);
    // What it paid through the channel, and the fee of the open it proposed (PROTOCOL.md §8.4;
    // the cooperative close is free).
    let open_fee = net.open_fee(report["channel_id"].as_str().unwrap());
    assert_eq!(
        report["balance_before"].as_u64().unwrap() - report["balance_after"].as_u64().unwrap(),
        15000 + open_fee
    );
    // Open and cooperative close, each proven against a witnessed checkpoint.
    assert!(report["verified_txs"].as_u64().unwrap() >= 2, "{report}");
    // Every replica agrees with what the client verified.
    let target = net.api(0).height().unwrap();
    for i in 0..3 {
        wait_until("replicas catch up", std::time::Duration::from_secs(10), || {
            let h = net.api(i).height()?;
            (h >= target).then_some(()).ok_or(format!("height {h}"))
        });
        assert_eq!(
            net.api(i).balance(&client).unwrap(),
            report["balance_after"].as_u64().unwrap()
        );
        assert_eq!(net.api(i).balance(&node).unwrap(), node_before + 15000);
    }
}
