//! The explorer page in a real headless browser (Chromium over the DevTools protocol) against a
//! two-node testnet (a sequencer and one witness) after a transfer and a channel open: the page
//! lists the ledger's blocks, verifies the checkpoint and a transaction's inclusion in the
//! browser under pinned keys, shows a new block within 2 s, flags a tampered cosignature, and
//! logs no console error. With `PAYCHAN_WRITE_SCREENSHOTS=1` it writes its desktop and phone
//! screenshots to `docs/screenshots/` (the ones README shows).

mod browser;
mod common;

use std::time::Duration;

use browser::Browser;
use common::*;
use serde_json::Value;

/// Bound on what the page must show once the node has it.
const PAGE: Duration = Duration::from_secs(10);

/// The pids of the processes that hold `path` open (from `/proc/*/fd`).
fn holders(path: &std::path::Path) -> Vec<u32> {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    procs
        .flatten()
        .filter_map(|p| p.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|fds| {
                    fds.flatten()
                        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l == path))
                })
                .unwrap_or(false)
        })
        .collect()
}

/// A key pressed and released (`Input.dispatchKeyEvent`).
fn press(b: &mut Browser, key: &str, code: u32) {
    let text = if key == "Enter" { "\r" } else { "" };
    for kind in ["keyDown", "keyUp"] {
        b.call(
            "Input.dispatchKeyEvent",
            serde_json::json!({ "type": kind, "key": key, "code": key, "windowsVirtualKeyCode": code, "text": if kind == "keyDown" { text } else { "" } }),
        );
    }
}

fn public_url(net: &Testnet, i: usize) -> String {
    let addr = wait_until(&format!("node-{i}'s public.addr"), STEP, || {
        std::fs::read_to_string(net.dir(i).join("public.addr")).map_err(|e| e.to_string())
    });
    format!("http://{}", addr.trim())
}

/// Pins the keys the node announces (the test trusts its own testnet) on the page's origin.
fn pin_keys(b: &mut Browser, public: &str) {
    b.pin_announced_keys(public, PAGE);
}

/// Whether `png` looks like a PNG of the given size.
fn png_size(png: &[u8]) -> (u32, u32) {
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let be = |o: usize| u32::from_be_bytes(png[o..o + 4].try_into().expect("4 bytes"));
    (be(16), be(20))
}

/// `n` with a comma every three digits, as the page writes amounts.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn shot(b: &mut Browser, name: &str, width: u32, height: u32) {
    let png = b.screenshot();
    assert_eq!(png_size(&png), (width, height), "{name}");
    if std::env::var("PAYCHAN_WRITE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&dir).expect("docs/screenshots");
        std::fs::write(dir.join(name), png).expect("write the screenshot");
    }
}

/// The page's own checks (its global functions, in this browser) against the protocol's
/// vectors: the vector checkpoint note verifies under its keys, one flipped signature bit is
/// caught, and every inclusion vector leads to its root.
fn page_checks_the_vectors(b: &mut Browser) {
    let vectors = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../protocol/vectors");
    let cp = std::fs::read_to_string(vectors.join("checkpoint.json")).expect("checkpoint.json");
    let mk = std::fs::read_to_string(vectors.join("merkle.json")).expect("merkle.json");
    let r = b.eval(&format!(
        r#"(async () => {{
  const cp = {cp}; const mk = {mk};
  const wkeys = [];
  for (const c of cp.cosignatures) {{
    const name = "paychan/witness/" + c.public_key;
    const raw = concat([4], hexToBytes(c.public_key));
    const id = (await sha256(concat(enc.encode(name), [0x0a], raw))).slice(0, 4);
    wkeys.push(name + "+" + bytesToHex(id) + "+" + btoa(String.fromCharCode(...raw)));
  }}
  const pins = {{ log: cp.log_verifier_key, witnesses: wkeys, threshold: wkeys.length }};
  const good = await verifyCheckpoint(cp.note, pins);
  // One character of the first cosignature's signature (after its 4-byte key id and 8-byte time).
  const bad = await verifyCheckpoint(cp.note.replace(/(witness\/[0-9a-f]+ [A-Za-z0-9+\/]{{20}})(.)/, (m, a, c) => a + (c === "A" ? "B" : "A")), pins);
  let ok = 0;
  for (const v of mk.inclusion) {{
    const leaf = await sha256(concat([0], hexToBytes(mk.leaves[v.index])));
    const root = await rootFromInclusion(v.index, v.size, leaf, v.path.map(hexToBytes));
    if (bytesToHex(root) === mk.roots[v.size]) ok++;
  }}
  return [good.ok, good.cosigned, bad.ok, bad.reason, ok, mk.inclusion.length];
}})()"#
    ));
    assert_eq!(r[0], true, "the vector note: {r}");
    assert_eq!(r[1], 3, "{r}");
    assert_eq!(r[2], false, "{r}");
    assert!(
        r[3].as_str().is_some_and(|t| t.contains("does not verify")),
        "{r}"
    );
    assert!(r[5].as_u64().is_some_and(|n| n > 100), "{r}");
    assert_eq!(r[4], r[5], "inclusion vectors that lead to their root: {r}");
}

#[test]
fn explorer_in_a_headless_browser() {
    let Some(mut b) = Browser::launch() else {
        return;
    };
    let net = Testnet::up(2);
    let api = net.api(0);
    let public = public_url(&net, 0);

    // Some ledger activity: a channel between the nodes, a second one closing unilaterally, a
    // transfer to a client, and payments on the first channel while the page is open.
    let channel = open_cli(&net, 0, 1, 50_000, 20_000);
    let closing = open_cli(&net, 1, 0, 10_000, 0);
    cli_ok(&[
        "channel",
        "close",
        &closing,
        "--force",
        "--no-wait",
        "--data-dir",
        &dir_str(&net, 1),
        "--json",
    ]);
    // A third one closed cooperatively: settled at once, A's deposit back to A.
    let settled = open_cli(&net, 0, 1, 7_000, 0);
    cli_ok(&[
        "channel",
        "close",
        &settled,
        "--data-dir",
        &dir_str(&net, 0),
        "--json",
    ]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let payer = {
        let (api, channel, stop) = (net.api(0), channel.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut paid = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let body = serde_json::json!({ "amount": 1, "count": 20 });
                match api.post(&format!("/v1/channels/{channel}/pay"), &body) {
                    Ok((200, _)) => paid += 20,
                    other => panic!("pay: {other:?}"),
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            paid
        })
    };
    let to = net.client_key(0).public();
    let tx_id = wait_until("a transfer accepted", STEP, || api.transfer(&to, 1234));
    // Until a witnessed checkpoint covers the transfer.
    wait_until("a witnessed checkpoint covering the transfer", STEP, || {
        let tx = api.get(&format!("/v1/tx/{tx_id}"))?;
        (tx["status"] == "witnessed").then_some(()).ok_or(format!("{tx}"))
    });

    pin_keys(&mut b, &public);
    page_checks_the_vectors(&mut b);

    // The block list: the same hashes as `paychan ledger blocks`.
    b.viewport(1280, 900, false);
    b.goto(&format!("{public}/#/"));
    let tip = b
        .wait_for("blocks listed", PAGE, "(() => { const r = document.querySelector('#blocks tbody tr'); return r && Number(r.dataset.height) >= 5 ? Number(r.dataset.height) : null })()")
        .as_u64()
        .expect("a height");
    let shown: Vec<(u64, String)> = serde_json::from_value(b.eval(
        "[...document.querySelectorAll('#blocks tbody tr')].map(r => [Number(r.dataset.height), r.dataset.hash])",
    ))
    .expect("rows");
    assert!(shown.len() >= 5, "{shown:?}");
    let lowest = shown.iter().map(|(h, _)| *h).min().expect("rows");
    let cli = cli_json_ok(&[
        "ledger",
        "blocks",
        "--from",
        &lowest.to_string(),
        "--limit",
        &(tip - lowest + 1).to_string(),
        "--data-dir",
        &dir_str(&net, 0),
        "--json",
    ]);
    let cli: Vec<Value> = cli.as_array().expect("an array").clone();
    for (h, hash) in &shown {
        let theirs = cli
            .iter()
            .find(|b| b["height"].as_u64() == Some(*h))
            .unwrap_or_else(|| panic!("no block {h} from the CLI"));
        assert_eq!(theirs["hash"].as_str(), Some(hash.as_str()), "block {h}");
    }

    // The checkpoint verifies under the pinned keys.
    b.wait_for(
        "the checkpoint verified",
        PAGE,
        "document.querySelector('#cp-verdict[data-verdict=verified]') !== null",
    );

    // Live: new blocks show within 2 s of their creation (ledger time is the sequencer's
    // clock on this machine).
    let seen_tip = tip;
    let lags: Vec<(u64, i64)> = serde_json::from_value(b.wait_for(
        "three newer blocks listed",
        PAGE,
        &format!(
            "(() => {{ const s = window.paychanExplorer; const n = s.blocks.filter(b => b.height > {seen_tip}); \
             return n.length >= 3 ? n.map(b => [b.height, s.firstSeen[b.hash] - b.time_ms]) : null }})()"
        ),
    ))
    .expect("lags");
    for (h, lag) in &lags {
        assert!(
            *lag < 2000,
            "block {h} showed {lag} ms after its creation: {lags:?}"
        );
    }
    // The payments chart reads the node's figures: payments per second while the payer runs.
    let rate = b.wait_for(
        "payments per second above 0",
        PAGE,
        "(() => { const s = window.paychanExplorer.paymentsSeries; return s.length >= 3 && s[s.length - 1] > 0 ? s[s.length - 1] : null })()",
    );
    assert!(rate.as_f64().is_some_and(|r| r > 0.0), "{rate}");
    b.wait_for(
        "the payments chart",
        PAGE,
        "document.querySelector('svg[aria-label=\"payments per second\"] path') !== null",
    );
    shot(&mut b, "explorer-desktop.png", 1280, 900);

    // Keyboard: Tab moves from the search field to its button and on to a link; Enter on a
    // block's link opens the block.
    b.eval("document.getElementById('q').focus()");
    press(&mut b, "Tab", 9);
    assert_eq!(b.eval("document.activeElement.textContent"), "Go");
    press(&mut b, "Tab", 9);
    assert_eq!(b.eval("document.activeElement.tagName"), "A");
    let height = b.eval(
        "(() => { const a = document.querySelector('#blocks tbody a'); a.focus(); return a.textContent })()",
    );
    press(&mut b, "Enter", 13);
    b.wait_for(
        "the block opened from the keyboard",
        PAGE,
        &format!("location.hash === '#/block/{}' && document.querySelector('#view h2') && document.querySelector('#view h2').textContent === 'Block {}'", height.as_str().expect("a height"), height.as_str().expect("a height")),
    );

    // The search box finds the transaction by its id.
    b.eval(&format!(
        "document.getElementById('q').value = '{tx_id}'; document.querySelector('#search button').click()"
    ));
    b.wait_for(
        "the search to open the transaction",
        PAGE,
        &format!("location.hash === '#/tx/{tx_id}'"),
    );

    // A transaction page: its bytes, fields and a verified inclusion.
    b.eval(&format!("location.hash = '#/tx/{tx_id}'"));
    let verdict = b.wait_for(
        "the transfer's verdict",
        PAGE,
        "(() => { const v = document.querySelector('#tx-verdict:not([data-verdict=pending])'); return v ? [v.dataset.verdict, v.textContent] : null })()",
    );
    assert_eq!(verdict[0], "verified", "{verdict}");
    let bytes = b.eval("document.getElementById('tx-bytes').textContent");
    let fields = b.eval("document.getElementById('view').innerText");
    assert!(
        fields
            .as_str()
            .is_some_and(|t| t.contains("1,234 ") && t.contains(&to.to_hex())),
        "{fields}"
    );
    assert!(
        bytes
            .as_str()
            .is_some_and(|h| h.len() > 200 && h.starts_with("00")),
        "{bytes}"
    );
    shot(&mut b, "explorer-tx-desktop.png", 1280, 900);

    // A block page: every transaction verified.
    b.eval("location.hash = '#/block/' + document.querySelector('#view a[href^=\"#/block/\"]').textContent");
    b.wait_for(
        "every transaction of the block verified",
        PAGE,
        "(() => { const v = [...document.querySelectorAll('#txs [data-verdict]')]; return v.length > 0 && v.every(e => e.dataset.verdict === 'verified') })()",
    );

    // Channels: the open channel with its deposits.
    b.eval("location.hash = '#/channels'");
    let row = b.wait_for(
        "the channel listed",
        PAGE,
        &format!("(() => {{ const r = document.querySelector('#channels tr[data-channel=\"{channel}\"]'); return r ? [r.dataset.status, r.innerText] : null }})()"),
    );
    assert_eq!(row[0], "open", "{row}");
    assert!(
        row[1]
            .as_str()
            .is_some_and(|t| t.contains("50,000 ") && t.contains("20,000 ")),
        "{row}"
    );

    let row = b.wait_for(
        "the closing channel listed",
        PAGE,
        &format!("(() => {{ const r = document.querySelector('#channels tr[data-channel=\"{closing}\"][data-status=closing]'); return r ? r.innerText : null }})()"),
    );
    assert!(
        row.as_str()
            .is_some_and(|t| t.contains("left in the challenge window")),
        "{row}"
    );

    let row = b.wait_for(
        "the settled channel listed with its payouts",
        PAGE,
        &format!("(() => {{ const r = document.querySelector('#channels tr[data-channel=\"{settled}\"][data-status=settled]'); return r ? r.innerText : null }})()"),
    );
    assert!(
        row.as_str()
            .is_some_and(|t| t.contains("A got 7,000 cr, B got 0 cr")),
        "{row}"
    );

    // An account: balance and the transfer in its history.
    b.eval(&format!("location.hash = '#/account/{}'", to.to_hex()));
    let balance = api.balance(&to).expect("balance");
    let text = b.wait_for(
        "the account's balance and history",
        PAGE,
        "(() => { const t = document.getElementById('view').innerText; return t.includes('+1,234 ') ? t : null })()",
    );
    let unit_balance = format!("{} ", grouped(balance));
    assert!(
        text.as_str().is_some_and(|t| t.contains(&unit_balance)),
        "{unit_balance} in {text}"
    );

    // The checkpoint page: the log signature and the witness's cosignature verified.
    b.eval("location.hash = '#/checkpoint'");
    b.wait_for(
        "the log signature and the cosignature verified",
        PAGE,
        "document.querySelector('#cosignatures tr[data-role=log][data-status=verified]') && document.querySelector('#cosignatures tr[data-role=witness][data-status=verified]')",
    );
    shot(&mut b, "explorer-checkpoint-desktop.png", 1280, 900);

    // Phone width.
    b.viewport(390, 844, true);
    b.eval("location.hash = '#/'");
    b.wait_for(
        "blocks at phone width",
        PAGE,
        "document.querySelectorAll('#blocks tbody tr').length > 0",
    );
    let overflow = b.eval("document.documentElement.scrollWidth <= window.innerWidth + 1");
    assert_eq!(overflow, Value::Bool(true), "the page is wider than a phone");
    shot(&mut b, "explorer-phone.png", 390, 844);
    b.viewport(1280, 900, false);

    // The testnet view: both nodes, their roles, heights and peers, read from each node; the
    // status table prints its URL.
    b.eval("location.hash = '#/testnet'");
    let nodes = b.wait_for(
        "both nodes with their heights",
        PAGE,
        "(() => { const r = [...document.querySelectorAll('#testnet tbody tr')]; return r.length === 2 && r.every(x => Number(x.dataset.height) > 0) ? r.map(x => x.innerText) : null })()",
    );
    assert!(
        nodes[0]
            .as_str()
            .is_some_and(|t| t.contains("sequencer") && t.contains("witness")),
        "{nodes}"
    );
    assert!(
        nodes[1]
            .as_str()
            .is_some_and(|t| t.starts_with("node-1") && t.contains("witness") && t.contains("sequencer")),
        "{nodes}"
    );
    let table = cli_ok(&["testnet", "status", "--dir", net.root_str()]);
    assert!(
        table.contains(&format!("explorer: {public}/#/testnet")),
        "{table}"
    );

    let errors = b.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");

    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let paid = payer.join().expect("the payer");
    assert!(paid > 0);

    // The witness serves a checkpoint with a tampered cosignature (test-only switch): the page
    // shows the failure and why.
    let config = net.dir(1).join("config.toml");
    let text = std::fs::read_to_string(&config).expect("config.toml");
    assert!(text.contains("[public]"), "{text}");
    std::fs::write(
        &config,
        text.replacen("[public]", "[public]\ntest_tamper_cosignature = true", 1),
    )
    .expect("write config");
    net.kill9(1);
    // The store's lock goes with the last open descriptor of it.
    let db = net.dir(1).join("db").join("db");
    wait_until("node-1's store to be closed by every process", STEP, || {
        let held = holders(&db);
        held.is_empty()
            .then_some(())
            .ok_or(format!("held open by pids {held:?}"))
    });
    let _ = std::fs::remove_file(net.dir(1).join("public.addr"));
    net.restart(1);
    let witness = public_url(&net, 1);
    wait_until("the witness to serve a checkpoint", STEP, || {
        let (status, _) = agent()
            .get(&format!("{witness}/tlog/checkpoint"))
            .call()
            .map(|r| (r.status().as_u16(), ()))
            .map_err(|e| e.to_string())?;
        (status == 200).then_some(()).ok_or(status.to_string())
    });
    pin_keys(&mut b, &witness);
    b.goto(&format!("{witness}/#/checkpoint"));
    let failed = b.wait_for(
        "the tampered cosignature flagged",
        PAGE,
        "(() => { const v = document.querySelector('#cp-verdict[data-verdict=failed]'); const l = document.querySelector('#cosignatures tr[data-role=witness][data-status=failed]'); return v && l ? v.textContent : null })()",
    );
    assert!(
        failed.as_str().is_some_and(|t| t.contains("does not verify")),
        "{failed}"
    );
    shot(&mut b, "explorer-tampered-desktop.png", 1280, 900);
    // A transaction is not verified against a checkpoint that fails.
    b.eval(&format!("location.hash = '#/tx/{tx_id}'"));
    let verdict = b.wait_for(
        "the transfer's verdict under the bad checkpoint",
        PAGE,
        "(() => { const v = document.querySelector('#tx-verdict:not([data-verdict=pending])'); return v ? [v.dataset.verdict, v.textContent] : null })()",
    );
    assert_eq!(verdict[0], "failed", "{verdict}");
    let errors = b.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}

#[test]
fn a_split_view_alarm_shows_at_the_top_of_every_page() {
    let Some(mut b) = Browser::launch() else {
        return;
    };
    // A sequencer that signs two checkpoints for one log size, once.
    let net = Testnet::up_with(2, &["--test-equivocate"]);
    let reason = wait_until("node-1 reports a split view", STEP, || {
        let a = net.api(1).get("/v1/alarms")?;
        a["split_views"][0]["reason"]
            .as_str()
            .map(str::to_owned)
            .ok_or(format!("no split view yet: {a}"))
    });
    let witness = public_url(&net, 1);
    for view in ["#/", "#/channels", "#/checkpoint"] {
        b.goto(&format!("{witness}/{view}"));
        let alarm = b.wait_for(
            "the alarm at the top",
            PAGE,
            "(() => { const a = document.getElementById('alarms'); return a && a.textContent.includes('split view') ? a.textContent : null })()",
        );
        assert!(
            alarm.as_str().is_some_and(|t| t.contains(&reason)),
            "{view}: {alarm} lacks {reason}"
        );
    }
    let errors = b.errors();
    assert!(errors.is_empty(), "console errors: {errors:#?}");
}
