//! The auditor's commands end to end against a real testnet: `ledger export` (running and
//! stopped node), `ledger keys`, `audit` from a file, a peer and the public endpoints, pins,
//! truncation, the saved state, split views between sources, `audit prove`, `audit
//! verify-proof` and `audit consistency`.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;
use paychan_protocol::note::{self, VerifierKey, KEY_TYPE_ED25519};
use paychan_protocol::Keypair;
use serde_json::Value;

fn run(args: &[&str]) -> Output {
    let mut cmd = paychan();
    cmd.args(args);
    run_bounded(cmd, CLI_TIMEOUT)
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a command and asserts its exit code; returns stdout and stderr together.
fn expect(code: i32, args: &[&str]) -> String {
    let out = run(args);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(code), "paychan {args:?}:\n{t}");
    t
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Node `from` opens a channel with node `to` through the CLI; returns its id.
fn open(net: &Testnet, from: usize, to: usize, deposit: u64) -> String {
    let peer = net.node_key(to).public().to_hex();
    let v = json(&cli_ok(&[
        "channel",
        "open",
        "--peer",
        &peer,
        "--deposit",
        &deposit.to_string(),
        "--their-deposit",
        "100",
        "--json",
        "--data-dir",
        p(&net.dir(from)),
    ]));
    v["channel_id"].as_str().expect("channel id").to_string()
}

/// The ids of the transactions of `kind` in the ledger of node `i`.
fn txs_of_kind(net: &Testnet, i: usize, kind: &str) -> Vec<String> {
    let v = json(&cli_ok(&[
        "ledger",
        "blocks",
        "--from",
        "1",
        "--limit",
        "256",
        "--json",
        "--data-dir",
        p(&net.dir(i)),
    ]));
    v.as_array()
        .into_iter()
        .flatten()
        .flat_map(|b| b["txs"].as_array().cloned().unwrap_or_default())
        .filter(|t| t["kind"] == kind)
        .map(|t| t["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn the_auditor_verifies_a_testnet_ledger_from_every_source() {
    let net = Testnet::up(3);
    let work = tempfile::tempdir().unwrap();
    let w = |name: &str| work.path().join(name);
    let d1 = net.dir(1);
    let d1 = p(&d1);
    let genesis_bin = net.dir(0).join("genesis.bin");
    let chain_id = net.genesis().chain_id().to_hex();

    // Every kind of transaction the CLI makes: open, pay (off the ledger), close, transfer.
    let ch = open(&net, 1, 2, 5_000);
    cli_ok(&[
        "channel",
        "pay",
        &ch,
        "--amount",
        "3",
        "--count",
        "20",
        "--data-dir",
        d1,
    ]);
    cli_ok(&["channel", "close", &ch, "--data-dir", d1]);
    let client = net.client_key(0).public();
    let before = net.api(1).balance(&client).unwrap();
    cli_ok(&[
        "ledger",
        "transfer",
        "--to",
        &net.client_key(0).public().to_hex(),
        "--amount",
        "5",
        "--data-dir",
        d1,
    ]);
    wait_until("the transfer lands and is witnessed", STEP, || {
        let b = net.api(1).balance(&client)?;
        let h = net.api(1).height()?;
        let cp = net.api(1).get("/v1/ledger/checkpoint")?;
        let done = b == before + 5 && cp["witnessed"] == true && cp["height"].as_u64() == Some(h);
        done.then_some(())
            .ok_or(format!("balance {b}, height {h}, checkpoint {cp}"))
    });

    // Keys.
    let keys = json(&cli_ok(&["ledger", "keys", "--json", "--data-dir", d1]));
    assert_eq!(keys["chain_id"], chain_id.as_str());
    let log_key = keys["log_key"].as_str().unwrap().to_string();
    let witness_keys: Vec<String> = keys["witness_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert_eq!(log_key, note::log_verifier_key(&net.genesis()));
    assert_eq!(witness_keys.len(), net.genesis().witnesses.len());

    // An export of the running node, audited clean with the chain pinned.
    let live = w("live.export");
    cli_ok(&["ledger", "export", "--out", p(&live), "--data-dir", d1]);
    let out = expect(0, &["audit", "--file", p(&live), "--chain-id", &chain_id]);
    assert!(out.contains(&chain_id) && out.contains("opened"), "{out}");
    let r = json(&expect(
        0,
        &[
            "audit",
            "--file",
            p(&live),
            "--genesis",
            p(&genesis_bin),
            "--json",
        ],
    ));
    let report = &r["sources"][0]["report"];
    assert_eq!(r["chain_id"], chain_id.as_str());
    assert!(report["by_kind"]["open"].as_u64() >= Some(1), "{r}");
    assert!(report["by_kind"]["coop_close"].as_u64() >= Some(1), "{r}");
    assert!(report["by_kind"]["transfer"].as_u64() >= Some(1), "{r}");
    assert!(report["channels"]["closed"].as_u64() >= Some(1), "{r}");

    // No pin: a usage error. Another chain: a verification failure.
    expect(2, &["audit", "--file", p(&live)]);
    let other = "ab".repeat(32);
    let out = expect(1, &["audit", "--file", p(&live), "--chain-id", &other]);
    assert!(out.contains("pinned"), "{out}");

    // The same ledger from a peer over the p2p protocol and from the public endpoints.
    let peer = net.p2p_addr(1).to_string();
    let out = expect(0, &["audit", "--peer", &peer, "--chain-id", &chain_id]);
    assert!(out.contains(&chain_id), "{out}");
    let url = format!(
        "http://{}",
        std::fs::read_to_string(net.dir(1).join("public.addr"))
            .unwrap()
            .trim()
    );
    let out = expect(
        0,
        &["audit", "--url", &url, "--chain-id", &chain_id, "--balances"],
    );
    assert!(
        out.contains(&chain_id) && out.contains("balances at height"),
        "{out}"
    );

    // A saved state: accepted once, then the next audit (another source) must agree.
    let state = w("audit.state");
    expect(
        0,
        &[
            "audit",
            "--file",
            p(&live),
            "--chain-id",
            &chain_id,
            "--state",
            p(&state),
        ],
    );
    let saved = json(&std::fs::read_to_string(&state).unwrap());
    let old_note = w("old.note");
    std::fs::write(&old_note, saved["note"].as_str().unwrap()).unwrap();
    let out = expect(
        0,
        &[
            "audit",
            "--url",
            &url,
            "--chain-id",
            &chain_id,
            "--state",
            p(&state),
        ],
    );
    assert!(
        out.contains("accepted checkpoint matched") || out.contains("checked against"),
        "{out}"
    );

    // A truncated export: `--to 2` holds a later witnessed checkpoint; a file cut short fails.
    let short = w("short.export");
    cli_ok(&[
        "ledger",
        "export",
        "--out",
        p(&short),
        "--to",
        "2",
        "--data-dir",
        d1,
    ]);
    let out = expect(0, &["audit", "--file", p(&short), "--chain-id", &chain_id]);
    assert!(out.contains("height 2 ") && out.contains("BEHIND"), "{out}");
    let bytes = std::fs::read(&live).unwrap();
    let cut = w("cut.export");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).unwrap();
    let out = expect(1, &["audit", "--file", p(&cut), "--chain-id", &chain_id]);
    assert!(
        out.contains("truncated") && out.contains("verified to height"),
        "{out}"
    );
    // The saved state is beyond the short export: refused.
    expect(
        1,
        &[
            "audit",
            "--file",
            p(&short),
            "--chain-id",
            &chain_id,
            "--state",
            p(&state),
        ],
    );

    // A channel that stays open: prove its open transaction offline.
    open(&net, 2, 1, 4_000);
    let opens = wait_until("node 1 holds both opens", STEP, || {
        let opens = txs_of_kind(&net, 1, "open");
        (opens.len() == 2)
            .then_some(opens.clone())
            .ok_or(format!("{opens:?}"))
    });
    let tx = opens[1].clone();
    let (proof, entry) = (w("open.proof"), w("open.tx"));
    wait_until("a witnessed checkpoint covers the open", STEP, || {
        let out = run(&[
            "audit",
            "prove",
            "--tx",
            &tx,
            "--out",
            p(&proof),
            "--entry-out",
            p(&entry),
            "--data-dir",
            d1,
        ]);
        out.status.success().then_some(()).ok_or_else(|| text(&out))
    });
    let mut verify = vec![
        "audit",
        "verify-proof",
        p(&proof),
        "--entry",
        p(&entry),
        "--log-key",
        &log_key,
    ];
    for k in &witness_keys {
        verify.extend(["--witness", k.as_str()]);
    }
    let threshold = net.genesis().witness_threshold.to_string();
    let mut with_quorum = verify.clone();
    with_quorum.extend(["--quorum", &threshold]);
    let out = expect(0, &with_quorum);
    assert!(out.contains("proof holds"), "{out}");
    // A quorum above the cosigners among the keys given: one real witness and one stranger.
    let stranger = note::witness_verifier_key(&net.genesis(), &Keypair::generate().public());
    let out = expect(
        1,
        &[
            "audit",
            "verify-proof",
            p(&proof),
            "--entry",
            p(&entry),
            "--log-key",
            &log_key,
            "--witness",
            &witness_keys[0],
            "--witness",
            &stranger,
            "--quorum",
            "2",
        ],
    );
    assert!(out.contains("needed"), "{out}");
    // A wrong log key.
    let wrong = VerifierKey::new(
        &note::origin(&net.genesis().chain_id()),
        KEY_TYPE_ED25519,
        Keypair::generate().public(),
    )
    .to_text();
    let mut wrong_key = with_quorum.clone();
    wrong_key[6] = wrong.as_str();
    expect(1, &wrong_key);
    // A flipped byte in the entry, and in each line of the proof's path.
    let entry_bytes = std::fs::read(&entry).unwrap();
    let mut flipped = entry_bytes.clone();
    flipped[entry_bytes.len() / 2] ^= 1;
    let bad_entry = w("bad.tx");
    std::fs::write(&bad_entry, &flipped).unwrap();
    let mut v = with_quorum.clone();
    v[4] = p(&bad_entry);
    expect(1, &v);
    let proof_text = std::fs::read_to_string(&proof).unwrap();
    let bad_proof = w("bad.proof");
    // A path hash (line 3), the note's log size (a body line) and a signature byte.
    let lines: Vec<&str> = proof_text.split('\n').collect();
    let targets: Vec<usize> = (0..lines.len())
        .filter(|&i| i == 2 || lines[i].starts_with('\u{2014}'))
        .collect();
    assert!(targets.len() >= 2, "{proof_text}");
    for i in targets {
        let mut l: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
        let line = &mut l[i];
        let at = line.len() - 4;
        let c = line.as_bytes()[at];
        let swapped = if c == b'A' { 'B' } else { 'A' };
        line.replace_range(at..at + 1, &swapped.to_string());
        std::fs::write(&bad_proof, l.join("\n")).unwrap();
        let mut v = with_quorum.clone();
        v[2] = p(&bad_proof);
        expect(1, &v);
    }

    // The newer checkpoint note (in the proof) extends the one the auditor saved.
    let new_note = w("new.note");
    std::fs::write(&new_note, proof_text.split_once("\n\n").unwrap().1).unwrap();
    let out = expect(
        0,
        &[
            "audit",
            "consistency",
            p(&old_note),
            p(&new_note),
            "--url",
            &url,
            "--genesis",
            p(&genesis_bin),
        ],
    );
    assert!(out.contains("consistent"), "{out}");
    expect(
        0,
        &[
            "audit",
            "consistency",
            p(&old_note),
            p(&new_note),
            "--peer",
            &peer,
            "--log-key",
            &log_key,
        ],
    );
    // Swapped: the "newer" is behind.
    expect(
        1,
        &[
            "audit",
            "consistency",
            p(&new_note),
            p(&old_note),
            "--url",
            &url,
            "--chain-id",
            &chain_id,
        ],
    );

    // The same node stopped: an export of its store, audited clean, and no split view with the
    // live export.
    let live2 = w("live2.export");
    cli_ok(&["ledger", "export", "--out", p(&live2), "--data-dir", d1]);
    assert_eq!(net.down(), 3);
    let stopped = w("stopped.export");
    cli_ok(&["ledger", "export", "--out", p(&stopped), "--data-dir", d1]);
    let out = expect(
        0,
        &[
            "audit",
            "--file",
            p(&stopped),
            "--chain-id",
            &chain_id,
            "--state",
            p(&state),
        ],
    );
    assert!(out.contains(&chain_id), "{out}");
    let out = expect(
        0,
        &[
            "audit",
            "--file",
            p(&live2),
            "--file",
            p(&stopped),
            "--chain-id",
            &chain_id,
        ],
    );
    assert!(out.contains("no split view"), "{out}");
    // Offline prove from the stopped store gives a proof that verifies too.
    let proof2 = w("open2.proof");
    cli_ok(&[
        "audit",
        "prove",
        "--tx",
        &tx,
        "--out",
        p(&proof2),
        "--data-dir",
        d1,
    ]);
    let mut v = with_quorum.clone();
    v[2] = p(&proof2);
    expect(0, &v);
}
