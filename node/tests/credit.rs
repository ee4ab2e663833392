//! Credit end to end against real processes: a testnet whose node-1 is a 402 gateway (and the
//! creditor), and a debtor reading through the library's `PaidHttpClient`.
//!
//! The creditor grants a line with `paychan credit grant`; the debtor reads past its deposit up
//! to exactly deposit + line; its own channel refuses the next payment, and the gateway refuses
//! a proof past the line that the debtor signs anyway (402, `credit_limit`). The creditor closes
//! unilaterally; the settlement records the debt, pays what the debtor's balance covers at once,
//! and a later transfer to the debtor pays the rest first. The export of that ledger audits
//! (`paychan audit --balances` lists the line and the debt), the score `paychan credit score`
//! prints equals the auditor's from the export, and an export whose sequencer claims the
//! repayment never happened (the block re-signed with the state root of the unpaid debt) fails
//! the audit at that block.
//!
//! Then, with `[credit] policy = "score"`, node-1 grants the same debtor a line by itself
//! when it opens another channel, sized by the score its history earned.
//!
//! The testnet runs with a 10 s challenge window (the least the genesis rules allow with its 500 ms time step) (a test-only switch) so that the unilateral
//! close settles within seconds.

mod common;

use common::x402::*;
use common::*;
use paychan::fetch::PaidHttpClient;
use paychan::gateway::GatewayConfig;
use paychan_audit::{ExportReader, ExportWriter, Record};
use paychan_ledger::LedgerState;
use paychan_protocol::{Block, Keypair};
use serde_json::Value;

/// What node-0 gives the debtor.
const FUND: u64 = 1_000;
/// The debtor's deposit.
const DEPOSIT: u64 = 100;
/// The line node-1 grants.
const LINE: u64 = 2_000;
/// The price of one article.
const PRICE: u64 = 2;
/// The transfer that repays the rest.
const TRANSFER: u64 = 5_000;
const ARTICLE: &str = "an article on credit\n";

fn json_ok(net: &Testnet, i: usize, args: &[&str]) -> Value {
    let dir = dir_str(net, i);
    let mut all = vec!["--json", "--data-dir", dir.as_str()];
    all.extend_from_slice(args);
    cli_json_ok(&all)
}

/// The debt the ledger records for `channel`, as node `i`'s `credit list --json` shows it.
fn debt(net: &Testnet, i: usize, channel: &str) -> Option<Value> {
    json_ok(net, i, &["credit", "list"])["debts"]
        .as_array()?
        .iter()
        .find(|d| d["channel_id"] == channel)
        .cloned()
}

#[test]
fn a_line_lets_a_debtor_spend_past_its_deposit_and_the_debt_is_settled_repaid_and_audited() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    let net = Testnet::up_with(2, &["--test-challenge-period-ms", "10000"]);
    let site = net.root.join("site");
    std::fs::create_dir_all(&site).unwrap();
    std::fs::write(site.join("article"), ARTICLE).unwrap();
    let gw = gateway_on(
        &net,
        1,
        GatewayConfig {
            upstream: format!("dir:{}", site.display()),
            listen: "127.0.0.1:0".into(),
            price: PRICE,
            price_per_kib: 0,
            free: vec![],
            donate_to: None,
        },
    );
    let url = format!("{gw}/article");
    let chain = net.genesis().chain_id();
    let creditor = net.node_key(1).public().to_hex();

    // A fresh debtor, funded by node-0, opens a channel with the gateway's node.
    let debtor = Keypair::generate();
    let debtor_hex = debtor.public().to_hex();
    net.api(0)
        .transfer(&debtor.public(), FUND)
        .expect("fund the debtor");
    wait_until("the debtor's funds", STEP, || {
        match net.api(1).balance(&debtor.public()) {
            Ok(FUND) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let mut client = PaidHttpClient::new(debtor.clone(), DEPOSIT, PRICE, Some(chain));
    rt.block_on(bounded("the debtor's channel", client.connect(&url)))
        .expect("the debtor opens a channel");
    let channel = client.channel().expect("a channel").0.to_hex();

    // Granted with the CLI, by a unique prefix of the channel id.
    let grant = json_ok(
        &net,
        1,
        &[
            "credit",
            "grant",
            "--channel",
            &channel[..12],
            "--limit",
            &LINE.to_string(),
        ],
    );
    assert!(grant["tx_id"].as_str().is_some_and(|t| t.len() == 64), "{grant}");
    let line = wait_until("the line on the ledger", STEP, || {
        json_ok(&net, 0, &["credit", "list"])["lines"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["channel_id"] == channel.as_str()).cloned())
            .ok_or_else(|| "no line yet".to_string())
    });
    assert_eq!(
        (line["creditor"].as_str(), line["debtor"].as_str()),
        (Some(creditor.as_str()), Some(debtor_hex.as_str()))
    );
    assert_eq!(
        (line["limit"].as_u64(), line["peak"].as_u64()),
        (Some(LINE), Some(LINE))
    );
    wait_until("the debtor to see its line", STEP, || {
        let v = rt.block_on(client.channel_view()).map_err(|e| e.to_string())?;
        match v {
            Some(v) if v.credit_limit == LINE && v.spendable == DEPOSIT + LINE => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });

    // Past the deposit, up to exactly deposit + line.
    let reads = (DEPOSIT + LINE) / PRICE;
    for n in 0..reads {
        let r = rt
            .block_on(client.get(&url))
            .unwrap_or_else(|e| panic!("read {n}: {e:#}"));
        assert_eq!((r.status.as_u16(), r.charged), (200, PRICE), "read {n}");
        assert_eq!(&r.body[..], ARTICLE.as_bytes());
    }
    assert_eq!(client.spent(), DEPOSIT + LINE);
    let view = rt.block_on(client.channel_view()).unwrap().unwrap();
    assert_eq!((view.spendable, view.owed), (0, LINE), "{view:?}");
    // The debtor's own channel refuses the next payment...
    let e = rt.block_on(client.get(&url)).expect_err("nothing left to spend");
    assert!(format!("{e:#}").contains("insufficient funds"), "{e:#}");
    // ...and the creditor's gateway refuses a proof past the line signed anyway.
    let template = payload_of(client.last_header().expect("a header was sent"));
    let newest = template.payload.proof.to_proof().expect("the last proof");
    assert_eq!(newest.proof.transferred, DEPOSIT + LINE);
    let past = forge(&debtor, &newest, PRICE as i64, "/article", "c0ffee");
    let (status, _, body) = raw_get(&url, Some(&header_for(&template, &past, "c0ffee")));
    assert_eq!(status, 402, "{body}");
    let r = refusal(&body);
    assert!(
        r.error_reason
            .as_deref()
            .unwrap_or("")
            .starts_with("credit_limit"),
        "{body}"
    );
    // The debtor closes. A cooperative close would drop the debt, so neither side signs one:
    // the debtor's close goes unilateral (with no proof of the creditor's to show), and the
    // creditor's watchtower answers within the window with the debtor's newest proof.
    let before = net.api(1).balance(&debtor.public()).unwrap();
    let creditor_before = net.api(1).balance(&net.node_key(1).public()).unwrap();
    assert!(
        before < LINE,
        "the debtor must not cover the debt at once ({before})"
    );
    rt.block_on(bounded("the debtor's close", client.close()))
        .expect("the close settles");
    let closed = wait_until("the payout on node-1", STEP, || {
        channel_view(&net.api(1), &channel).and_then(|v| {
            if v["status"] == "closed" {
                Ok(v)
            } else {
                Err(v.to_string())
            }
        })
    });
    // The payout rule gives the creditor the whole channel; the debt is the rest.
    assert_eq!(closed["payout"].as_u64(), Some(DEPOSIT), "{closed}");
    let d = wait_until("the debt", STEP, || {
        debt(&net, 1, &channel).ok_or("no debt yet".to_string())
    });
    assert_eq!(d["amount"].as_u64(), Some(LINE), "{d}");
    assert_eq!(
        d["outstanding"].as_u64(),
        Some(LINE - before),
        "paid at once from the balance: {d}"
    );
    assert_eq!(d["status"], "outstanding");
    assert_eq!(net.api(1).balance(&debtor.public()).unwrap(), 0);
    assert_eq!(
        net.api(1).balance(&net.node_key(1).public()).unwrap(),
        creditor_before + DEPOSIT + before,
        "the creditor has the deposit and what the debtor's balance paid"
    );

    // A later transfer to the debtor pays the debt first.
    net.api(0)
        .transfer(&debtor.public(), TRANSFER)
        .expect("a transfer to the debtor");
    let d = wait_until("the repayment", STEP, || match debt(&net, 1, &channel) {
        Some(d) if d["outstanding"] == 0 => Ok(d),
        other => Err(format!("{other:?}")),
    });
    assert_eq!(d["status"], "repaid");
    assert_eq!(
        net.api(1).balance(&debtor.public()).unwrap(),
        TRANSFER - (LINE - before)
    );
    assert_eq!(
        net.api(1).balance(&net.node_key(1).public()).unwrap(),
        creditor_before + DEPOSIT + LINE
    );

    // Export and audit: the line and the repaid debt are listed, the scores agree.
    let height = net.api(1).height().unwrap();
    let export = net.root.join("credit.export");
    let export_s = export.to_str().unwrap().to_owned();
    json_ok(
        &net,
        1,
        &[
            "ledger",
            "export",
            "--out",
            &export_s,
            "--to",
            &height.to_string(),
        ],
    );
    let chain_hex = chain.to_hex();
    let audit = cli_json_ok(&[
        "--json",
        "audit",
        "--file",
        &export_s,
        "--chain-id",
        &chain_hex,
        "--balances",
        "--score",
        &debtor_hex,
        "--score",
        &creditor,
    ]);
    assert_eq!(audit["ok"], true, "{audit}");
    let b = &audit["balances"];
    assert!(
        b["credit_lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["channel_id"] == channel.as_str()),
        "{b}"
    );
    assert!(
        b["debts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["channel_id"] == channel.as_str() && d["status"] == "repaid"),
        "{b}"
    );
    // The node's score at the export's height equals the auditor's (its replica may be ahead
    // by heartbeat blocks, which move the age factor: compare at equal heights).
    for (k, account) in [&debtor_hex, &creditor].into_iter().enumerate() {
        let auditor = &audit["scores"][k];
        assert_eq!(auditor["account"], account.as_str());
        assert_eq!(auditor["height"].as_u64(), Some(height));
        let node = json_ok(&net, 1, &["credit", "score", account]);
        assert!(node["height"].as_u64().unwrap() >= height);
        let same_age = node["factors"] == auditor["factors"];
        if node["height"].as_u64() == Some(height) || same_age {
            assert_eq!(node["score"], auditor["score"], "node {node}\nauditor {auditor}");
            assert_eq!(node["factors"], auditor["factors"]);
        } else {
            // Only the age factor may differ, and only by the time between the heights.
            let f = |v: &Value, name: &str| {
                v["factors"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|f| f["name"] == name)
                    .cloned()
            };
            for name in [
                "channels_settled",
                "volume_log2",
                "debts_repaid_on_time",
                "defaults",
                "outstanding_debts",
            ] {
                assert_eq!(f(&node, name), f(auditor, name), "{name}");
            }
        }
    }
    let human = cli_ok(&[
        "audit",
        "--file",
        &export_s,
        "--chain-id",
        &chain_hex,
        "--balances",
    ]);
    assert!(
        human.contains("CREDIT LINE") && human.contains("repaid"),
        "{human}"
    );

    // History justifies a line: with `[credit] policy = "score"`, node-1 grants the debtor
    // (one channel settled, one debt repaid on time) a line by itself when it opens another
    // channel, of its score times `per_point`.
    let score = json_ok(&net, 1, &["credit", "score", &debtor_hex])["score"]
        .as_u64()
        .unwrap();
    assert!(score > 0, "a settled channel and a debt repaid on time score");
    let dir1 = paychan::config::DataDir::new(net.dir(1));
    let mut config = dir1.config().unwrap();
    config.credit = paychan::credit_policy::CreditConfig {
        policy: paychan::credit_policy::Policy::Score,
        per_point: 3,
        max_limit: 10_000,
        ..Default::default()
    };
    dir1.write_config(&config).unwrap();
    // The first client program stops (its network with it): the same key comes back.
    drop(client);
    let gw = restart_gateway(&net, 1);
    let mut again = PaidHttpClient::new(debtor.clone(), DEPOSIT, PRICE, Some(chain));
    rt.block_on(bounded(
        "the second channel",
        again.connect(&format!("{gw}/article")),
    ))
    .expect("the debtor opens a second channel");
    let second = again.channel().expect("a channel").0.to_hex();
    let auto = wait_until("the policy's line", STEP, || {
        json_ok(&net, 0, &["credit", "list"])["lines"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["channel_id"] == second.as_str()).cloned())
            .ok_or_else(|| "no line yet".to_string())
    });
    assert_eq!(auto["limit"].as_u64(), Some(score * 3), "{auto}");
    assert_eq!(auto["creditor"].as_str(), Some(creditor.as_str()));
    drop(again);

    // A sequencer that claims the transfer repaid nothing: the block with the transfer to the
    // debtor re-signed with the state root of the ledger before it (the debt still owed). The
    // audit fails at that block.
    let forged = net.root.join("forged.export");
    let (genesis, blocks) = read_export(&export);
    let mut state = LedgerState::from_genesis(&genesis).unwrap();
    let mut out = ExportWriter::new(std::fs::File::create(&forged).unwrap(), &genesis).unwrap();
    let mut forged_at = None;
    for b in &blocks {
        let repays = b.txs.iter().any(|t| matches!(t, paychan_protocol::Tx::Transfer { body, .. } if body.to == debtor.public() && body.amount == TRANSFER));
        if repays {
            let mut header = b.header;
            header.state_root = state.state_root();
            assert_ne!(header.state_root, b.header.state_root);
            let fake = Block {
                signature: header.sign(&net.node_key(0)),
                header,
                txs: b.txs.clone(),
            };
            out.write_block(&fake).unwrap();
            forged_at = Some(b.header.height);
            break;
        }
        state.apply_block(b).unwrap();
        out.write_block(b).unwrap();
    }
    out.finish().unwrap();
    let forged_at = forged_at.expect("the repaying transfer is in the export");
    let out = run_bounded(
        {
            let mut c = paychan();
            c.args([
                "--json",
                "audit",
                "--file",
                forged.to_str().unwrap(),
                "--chain-id",
                &chain_hex,
            ]);
            c
        },
        CLI_TIMEOUT,
    );
    assert!(!out.status.success(), "a forged debt passes the audit");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("state") && text.contains(&forged_at.to_string()),
        "the failure names the state root and the block: {text}"
    );
}

fn read_export(path: &std::path::Path) -> (paychan_protocol::Genesis, Vec<Block>) {
    let (mut genesis, mut blocks) = (None, Vec::new());
    for r in ExportReader::new(std::io::BufReader::new(std::fs::File::open(path).unwrap())) {
        match r.expect("the honest export reads").1 {
            Record::Genesis(g) => genesis = Some(*g),
            Record::Block(b) => blocks.push(*b),
            Record::Checkpoint(_) | Record::End(_) => {}
        }
    }
    (genesis.expect("a genesis record"), blocks)
}
