//! The CLI commands that talk to a running node and do more than one call: `info`,
//! `channel pay` (progress, and what went through when it stops early), `channel close` (its
//! steps as they happen), and the names a command accepts for channels.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::{json, Value};

use crate::http::ApiClient;
use crate::output::{
    amount_text, duration_text, grouped, output, print_line, s, time_text, with_done, CliError,
};

/// How often a waiting command looks at the node.
const POLL: Duration = Duration::from_millis(100);
/// How long a cooperative close waits for an unconnected counterparty before it says so.
pub const OFFLINE_PEER_HINT_AFTER: Duration = Duration::from_secs(4);
/// How long a pay job that stopped early waits for the acks in flight before it reports.
const ACKS_WAIT: Duration = Duration::from_secs(2);
/// Payments per API call when a job is large enough to show progress.
const PAY_CHUNK: u64 = 2_000;

/// `paychan info`: who this node is and where it stands.
pub fn info(api: &ApiClient, json_out: bool) -> Result<()> {
    let v = api.get("info")?;
    output(json_out, v, |v| {
        let channels = v["channels"]
            .as_object()
            .filter(|m| !m.is_empty())
            .map(|m| {
                m.iter()
                    .map(|(k, n)| format!("{n} {k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_else(|| "none".into());
        let addrs = v["p2p_addrs"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| s(x).to_owned())
                    .collect::<Vec<_>>()
                    .join("\n             ")
            })
            .unwrap_or_default();
        format!(
            "peer id:     {}\naccount:     {}\nrole:        {}\nchain id:    {}\nunit:        {} ({})\n\
             ledger:      height {}, time {}\np2p:         {}\napi:         {}\npublic url:  {}\n\
             peers:       {} connected\nchannels:    {}\nbalance:     {} on the ledger, {} in channels\n\
             version:     {}",
            s(&v["peer_id"]),
            s(&v["account"]),
            s(&v["role"]),
            s(&v["chain_id"]),
            s(&v["unit"]["name"]),
            s(&v["unit"]["symbol"]),
            v["height"],
            v["time_ms"].as_u64().map(time_text).unwrap_or_else(|| "?".into()),
            addrs,
            s(&v["api_url"]),
            v["public_url"].as_str().unwrap_or("none"),
            v["peers_connected"]
                .as_u64()
                .map_or("?".into(), |n| n.to_string()),
            channels,
            amount_text(&v["balance_ledger"]),
            amount_text(&v["balance_in_channels"]),
            s(&v["version"]),
        )
    });
    Ok(())
}

/// The full id of the channel `given` names: a whole id, or a unique prefix of one (as git
/// takes a commit), among the node's channels.
pub fn resolve_channel(api: &ApiClient, given: &str) -> Result<String> {
    let given = given.trim().to_lowercase();
    if given.is_empty() || !given.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(CliError::new(
            "bad_request",
            format!("{given:?} is not a channel id (hex, whole or a unique prefix)"),
        )
        .into());
    }
    if given.len() == 64 {
        return Ok(given);
    }
    let list = api.get("channels")?;
    let matches: Vec<&str> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["id"].as_str())
        .filter(|id| id.starts_with(&given))
        .collect();
    match matches.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Err(CliError::new("not_found", format!("no channel id starts with {given}")).into()),
        many => Err(CliError::new(
            "bad_request",
            format!(
                "{given} is ambiguous: {} channels start with it ({}); give more digits",
                many.len(),
                many.iter().map(|m| &m[..12]).collect::<Vec<_>>().join(", ")
            ),
        )
        .into()),
    }
}

/// A channel's row in `/v1/channels`.
fn channel_row(api: &ApiClient, id: &str) -> Result<Value> {
    let list = api.get("channels")?;
    list.as_array()
        .into_iter()
        .flatten()
        .find(|c| c["id"] == id)
        .cloned()
        .ok_or_else(|| CliError::new("not_found", format!("unknown channel {id}")).into())
}

/// Set by the first Ctrl-C during a pay job: the job stops after the call in flight. Returns
/// once the handler is installed (or could not be).
fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    // A small runtime of its own waits for the signal; the second Ctrl-C ends the process.
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
            let _ = ready_tx.send(());
            return;
        };
        rt.block_on(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let sig = signal(SignalKind::interrupt());
            let _ = ready_tx.send(());
            let Ok(mut sig) = sig else {
                return;
            };
            if sig.recv().await.is_none() {
                return;
            }
            set.store(true, Ordering::SeqCst);
            eprintln!("\nstopping after the payments in flight (Ctrl-C again to quit at once)");
            if sig.recv().await.is_some() {
                std::process::exit(130);
            }
        });
    });
    let _ = ready_rx.recv_timeout(Duration::from_secs(1));
    flag
}

/// `channel pay`: `count` payments of `amount`, `per_proof` in each signed proof. A job that stops early (funds, the peer gone,
/// Ctrl-C) fails with what went through: the payments and amount the node signed, and how
/// many of those the peer has not acknowledged yet.
pub fn pay(
    api: &ApiClient,
    json_out: bool,
    channel: &str,
    amount: u64,
    count: u64,
    memo: Option<String>,
    per_proof: usize,
) -> Result<()> {
    let channel = resolve_channel(api, channel)?;
    let sent_before = channel_row(api, &channel).ok().and_then(|c| c["sent"].as_u64());
    let chunked = count >= 2 * PAY_CHUNK;
    let bar = (chunked && !json_out).then(|| {
        let bar = indicatif::ProgressBar::new(count);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} payments {per_sec} eta {eta}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let stop = interrupt_flag();
    let started = Instant::now();
    let mut done = 0u64;
    // At least one call, so that the node judges every request (`--count 0` included).
    let failure: Option<anyhow::Error> = loop {
        let n = if chunked {
            PAY_CHUNK.min(count - done)
        } else {
            count - done
        };
        if let Err(e) = api.post(
            &format!("channels/{channel}/pay"),
            &json!({"amount": amount, "count": n, "memo": memo, "per_proof": per_proof}),
        ) {
            break Some(e);
        }
        done += n;
        if let Some(b) = &bar {
            b.set_position(done);
        }
        if done >= count {
            break None;
        }
        if stop.load(Ordering::SeqCst) {
            break Some(CliError::new("interrupted", "interrupted (Ctrl-C)").into());
        }
    };
    if let Some(b) = bar {
        b.abandon();
    }
    let secs = started.elapsed().as_secs_f64();
    if let Some(e) = failure {
        // What went through, from the node's own count of what it paid on this channel, once
        // the acks in flight are in (or after a short wait: a peer that is gone sends none).
        let acks_by = Instant::now() + ACKS_WAIT;
        let row = loop {
            let row = channel_row(api, &channel).ok();
            let unacked = row.as_ref().and_then(|c| c["unacked"].as_u64()).unwrap_or(0);
            if unacked == 0 || Instant::now() >= acks_by {
                break row;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let sent_after = row.as_ref().and_then(|c| c["sent"].as_u64());
        let (payments, total) = match (sent_before, sent_after) {
            (Some(b), Some(a)) if amount > 0 => {
                let total = a.saturating_sub(b);
                (total / amount, total)
            }
            _ => (done, done.saturating_mul(amount)),
        };
        let unacked = row.as_ref().and_then(|c| c["unacked"].as_u64()).unwrap_or(0);
        let summary = format!(
            "stopped after {} of {} payments: {} went through ({}{})",
            grouped(payments),
            grouped(count),
            amount_text(&json!(total)),
            if unacked == 0 {
                "all acknowledged".to_owned()
            } else {
                format!("{unacked} not acknowledged yet")
            },
            if total > 0 {
                "; `paychan channel list` shows the balance".to_owned()
            } else {
                String::new()
            }
        );
        return Err(with_done(
            e,
            json!({"channel_id": channel, "payments": payments, "payments_asked": count,
                   "amount_total": total, "amount_per_payment": amount,
                   "unacknowledged": unacked, "summary": summary}),
        ));
    }
    let v = json!({"channel_id": channel, "count": count, "amount_per_payment": amount,
                   "amount_total": amount.saturating_mul(count),
                   "elapsed_ms": (secs * 1000.0) as u64, "payments_per_second": (count as f64 / secs.max(1e-9)).round()});
    output(json_out, v, |v| {
        format!(
            "paid {} in {} payments of {} ({} payments/s, all acknowledged)",
            amount_text(&v["amount_total"]),
            grouped(count),
            amount_text(&v["amount_per_payment"]),
            grouped(v["payments_per_second"].as_f64().unwrap_or(0.0) as u64)
        )
    });
    Ok(())
}

/// `channel close`: submits the close, shows its steps as they happen (the proposal sent, the
/// close on the ledger, the challenge window of a unilateral close and the time left in it, the
/// payout) and returns once paid out, or right after submission with `no_wait`. A cooperative
/// close whose counterparty is not connected says so within seconds and suggests `--force`.
pub fn close(api: &ApiClient, json_out: bool, channel: &str, force: bool, no_wait: bool) -> Result<()> {
    let channel = resolve_channel(api, channel)?;
    if no_wait {
        let v = api.post(
            &format!("channels/{channel}/close"),
            &json!({"force": force, "wait": false}),
        )?;
        let closed = v["closed"] == true;
        output(json_out, v, |v| {
            if closed {
                format!("channel {} is closed", &channel[..16])
            } else {
                format!(
                    "close of channel {} submitted ({}); `paychan channel list` follows it",
                    &channel[..16],
                    s(&v["status"])
                )
            }
        });
        return Ok(());
    }
    let before = channel_row(api, &channel)?;
    let peer = before["counterparty_peer_id"].as_str().map(str::to_owned);
    // The close transaction lands above this height: where the steps look for its id.
    let start_height = api.get("ledger/status")?["height"].as_u64().unwrap_or(0);
    let step = |text: String| {
        if !json_out {
            print_line(&text);
        }
    };
    // The close call returns only at the payout: it runs beside the steps.
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let (api, channel) = (api.clone(), channel.clone());
        std::thread::spawn(move || {
            let _ = tx.send(api.post(&format!("channels/{channel}/close"), &json!({"force": force})));
        });
    }
    let started = Instant::now();
    let mut steps: Vec<Value> = Vec::new();
    // A close proposed before is proposed again: shown as a step of this close too.
    let mut last_status = match before["status"].as_str().unwrap_or("") {
        "shutting_down" | "close_expired" => "open".to_owned(),
        other => other.to_owned(),
    };
    let mut last_window_note = Instant::now() - Duration::from_secs(3600);
    let mut offline_since: Option<Instant> = None;
    let mut window_seen = false;
    let note = |steps: &mut Vec<Value>, what: &str, text: String, extra: Value| {
        let mut v = json!({"step": what, "at_ms": started.elapsed().as_millis() as u64});
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            o.extend(e.clone());
        }
        steps.push(v);
        step(text);
    };
    let result = loop {
        match rx.recv_timeout(POLL) {
            Ok(r) => break r,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                break Err(CliError::new("internal", "the close call ended without an answer").into())
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
        }
        let Ok(row) = channel_row(api, &channel) else {
            continue;
        };
        let status = row["status"].as_str().unwrap_or("").to_owned();
        if status != last_status {
            match status.as_str() {
                "shutting_down" => note(
                    &mut steps,
                    "proposed",
                    "cooperative close proposed to the peer".into(),
                    json!({}),
                ),
                "closing" => note(
                    &mut steps,
                    "submitted",
                    "unilateral close submitted with the newest proofs".into(),
                    json!({}),
                ),
                "close_expired" => note(
                    &mut steps,
                    "expired",
                    "the peer did not sign the cooperative close in time".into(),
                    json!({}),
                ),
                _ => {}
            }
            last_status = status.clone();
        }
        if let (Some(end), Some(now)) = (row["window_end_ms"].as_u64(), row["ledger_time_ms"].as_u64()) {
            if !window_seen {
                window_seen = true;
                let (text, extra) = close_tx_step(api, &channel, start_height);
                note(&mut steps, "on_ledger", text, extra);
            }
            if last_window_note.elapsed() >= Duration::from_secs(10) {
                last_window_note = Instant::now();
                note(
                    &mut steps,
                    "window",
                    format!(
                        "challenge window ends {} (in {}); the payout follows",
                        time_text(end),
                        duration_text(end.saturating_sub(now))
                    ),
                    json!({"window_end_ms": end, "ledger_time_ms": now}),
                );
            }
        }
        // A cooperative close needs the peer: say so when it is not connected.
        if !force && status == "shutting_down" {
            let connected = match &peer {
                Some(p) => api
                    .get("peers")
                    .ok()
                    .and_then(|v| v.as_array().map(|a| a.iter().any(|x| x["peer_id"] == p.as_str())))
                    .unwrap_or(true),
                None => true,
            };
            if connected {
                offline_since = None;
            } else if offline_since.get_or_insert_with(Instant::now).elapsed() >= OFFLINE_PEER_HINT_AFTER {
                let mut e = CliError::new(
                    "unreachable",
                    format!(
                        "the peer {} is not connected, so it cannot sign the cooperative close; the node keeps \
                         the proposal and resends it when the peer connects. To close without the peer, run \
                         `paychan channel close {} --force` (its deposit and yours are paid out after the \
                         challenge window)",
                        peer.as_deref().unwrap_or("?"),
                        &channel[..16]
                    ),
                );
                e.done = Some(json!({"channel_id": channel, "steps": steps}));
                return Err(e.into());
            }
        }
    };
    let answer = result.map_err(|e| with_done(e, json!({"channel_id": channel, "steps": steps.clone()})))?;
    // A cooperative close can finish between two looks: the steps it took are implied by its end.
    if !force && before["status"] != "closed" {
        if !steps.iter().any(|s| s["step"] == "proposed") {
            note(
                &mut steps,
                "proposed",
                "cooperative close proposed to the peer".into(),
                json!({}),
            );
        }
        let (text, extra) = close_tx_step(api, &channel, start_height);
        note(&mut steps, "signed", format!("signed by both; {text}"), extra);
    }
    let row = channel_row(api, &channel).unwrap_or(Value::Null);
    let waited = answer["closed"] == true;
    let v = json!({
        "channel_id": channel,
        "closed": waited,
        "status": row["status"],
        "payout": row["payout"],
        "their_payout": row["their_balance"],
        "steps": steps,
    });
    output(json_out, v, |v| {
        format!(
            "channel {} closed and paid out: {} to this node, {} to the peer",
            &channel[..16],
            amount_text(&v["payout"]),
            amount_text(&v["their_payout"])
        )
    });
    Ok(())
}

/// The step that names a channel's close transaction and its block: found in the blocks above
/// `from_height`, the height when the close began (`tx_id` and `height` are null if the node
/// no longer serves those blocks).
fn close_tx_step(api: &ApiClient, channel: &str, from_height: u64) -> (String, Value) {
    match find_close_tx(api, channel, from_height) {
        Some((tx_id, height)) => (
            format!("close transaction {tx_id} in block {height}"),
            json!({"tx_id": tx_id, "height": height}),
        ),
        None => (
            "the close transaction is in a block".into(),
            json!({"tx_id": null, "height": null}),
        ),
    }
}

/// The newest close transaction (cooperative or unilateral) of `channel` in the blocks above
/// `from_height`, with its height.
fn find_close_tx(api: &ApiClient, channel: &str, from_height: u64) -> Option<(String, u64)> {
    let tip = api.get("ledger/status").ok()?["height"].as_u64()?;
    let mut from = from_height + 1;
    let mut found = None;
    while from <= tip {
        let blocks = api.get(&format!("ledger/blocks?from={from}&limit=256")).ok()?;
        let blocks = blocks.as_array()?;
        if blocks.is_empty() {
            break;
        }
        for b in blocks {
            for t in b["txs"].as_array().into_iter().flatten() {
                if t["channel"] == channel && matches!(s(&t["kind"]), "coop_close" | "unilateral_close") {
                    found = Some((s(&t["id"]).to_owned(), b["height"].as_u64()?));
                }
            }
            from = b["height"].as_u64()? + 1;
        }
    }
    found
}

/// A transaction's status line.
fn tx_text(v: &Value) -> String {
    match v["status"].as_str() {
        Some("pending") => format!("{}: pending", s(&v["tx_id"])),
        Some(st) => format!(
            "{}: {} in block {} ({}){}",
            s(&v["tx_id"]),
            v["kind"].as_str().unwrap_or("transaction"),
            v["height"],
            v["block_time_ms"]
                .as_u64()
                .map(time_text)
                .unwrap_or_else(|| "?".into()),
            if st == "witnessed" {
                ", witnessed"
            } else {
                ", not witnessed yet"
            }
        ),
        None => format!("{}: ?", s(&v["tx_id"])),
    }
}

/// `ledger tx TXID`: pending, in block H, or witnessed.
pub fn tx(api: &ApiClient, json_out: bool, tx_id: &str) -> Result<()> {
    let tx_id = tx_id.trim().to_lowercase();
    let v = api.get(&format!("tx/{tx_id}"))?;
    output(json_out, v, tx_text);
    Ok(())
}

/// Waits until transaction `tx_id` is witnessed, printing each status it reaches; fails with
/// `timeout` (and the last status) after `wait`.
pub fn wait_tx(api: &ApiClient, json_out: bool, tx_id: &str, wait: Duration) -> Result<Value> {
    let started = Instant::now();
    let mut last = String::new();
    let mut last_v = json!({"tx_id": tx_id, "status": "submitted"});
    loop {
        // Unknown for a moment is normal: a witness forwards to the sequencer.
        if let Ok(v) = api.get(&format!("tx/{tx_id}")) {
            let status = v["status"].as_str().unwrap_or("").to_owned();
            if status != last {
                if !json_out {
                    print_line(&tx_text(&v));
                }
                last = status.clone();
            }
            last_v = v;
            if status == "witnessed" {
                return Ok(last_v);
            }
        }
        if started.elapsed() >= wait {
            let mut e = CliError::new(
                "timeout",
                format!(
                    "transaction {tx_id} not witnessed within {}; `paychan ledger tx {tx_id}` shows where it is",
                    duration_text(wait.as_millis() as u64)
                ),
            );
            e.done = Some(last_v);
            return Err(e.into());
        }
        std::thread::sleep(POLL);
    }
}

/// A party this CLI knows by name or key: a testnet node or client beside the data dir, a
/// connected peer, a channel's counterparty.
#[derive(Debug, Clone)]
pub struct Party {
    /// `node-2`, `client-0`, or empty when it has no name.
    pub name: String,
    /// Its ledger account.
    pub account: paychan_protocol::PublicKey,
    /// Its libp2p peer id.
    pub peer_id: String,
}

/// Most `client-K.key` files looked at in a testnet.
const CLIENTS_SCAN_MAX: usize = 64;

/// The shortest prefix length a party or channel may be named by.
pub const PREFIX_MIN: usize = 4;

/// The testnet's named parties when `dir` is a node of a testnet: its sibling `node-N` dirs
/// and the `clients/client-K.key` files.
pub fn testnet_parties(dir: &crate::config::DataDir) -> Vec<Party> {
    let mut out = Vec::new();
    let Some(root) = dir.root().parent() else {
        return out;
    };
    let mut add = |name: String, key_file: std::path::PathBuf| {
        let Ok(text) = std::fs::read_to_string(&key_file) else {
            return;
        };
        let mut seed = [0u8; 32];
        if hex::decode_to_slice(text.trim(), &mut seed).is_err() {
            return;
        }
        let account = paychan_protocol::Keypair::from_seed(seed).public();
        let peer_id = paychan_net::peer_id_from_public_key(&account)
            .map(|p| p.to_string())
            .unwrap_or_default();
        out.push(Party {
            name,
            account,
            peer_id,
        });
    };
    if let Ok(entries) = std::fs::read_dir(root) {
        let mut names: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_owned))
            .filter(|n| n.strip_prefix("node-").is_some_and(|i| i.parse::<u32>().is_ok()))
            .collect();
        names.sort_by_key(|n| n[5..].parse::<u32>().unwrap_or(u32::MAX));
        for n in names {
            add(n.clone(), root.join(&n).join("node.key"));
        }
    }
    for k in 0..CLIENTS_SCAN_MAX {
        let file = root.join("clients").join(format!("client-{k}.key"));
        if !file.exists() {
            break;
        }
        add(format!("client-{k}"), file);
    }
    out
}

/// The account `given` names: a hex account, a peer id, a testnet name (`node-2`,
/// `client-0`), or a unique prefix (at least [`PREFIX_MIN`] characters) of the account or peer
/// id of a party this CLI knows (the testnet's, the node's connected peers and channel
/// counterparties).
pub fn resolve_party(
    dir: &crate::config::DataDir,
    api: Option<&ApiClient>,
    given: &str,
) -> Result<paychan_protocol::PublicKey> {
    use paychan_protocol::PublicKey;
    let given = given.trim();
    if let Ok(k) = PublicKey::from_hex(given) {
        return Ok(k);
    }
    if let Ok(peer) = given.parse::<paychan_net::PeerId>() {
        if let Some(k) = paychan_net::public_key_from_peer_id(&peer) {
            return Ok(k);
        }
    }
    let mut known = testnet_parties(dir);
    if let Some(named) = known.iter().find(|p| p.name == given) {
        return Ok(named.account);
    }
    if given.len() < PREFIX_MIN {
        return Err(CliError::new(
            "bad_request",
            format!(
                "{given:?} names no party: give an account (hex), a peer id, a testnet name (node-1, \
                 client-0) or a prefix of at least {PREFIX_MIN} characters"
            ),
        )
        .into());
    }
    if let Some(api) = api {
        let mut add = |account: Option<&str>| {
            if let Some(k) = account.and_then(|a| PublicKey::from_hex(a).ok()) {
                if !known.iter().any(|p| p.account == k) {
                    let peer_id = paychan_net::peer_id_from_public_key(&k)
                        .map(|p| p.to_string())
                        .unwrap_or_default();
                    known.push(Party {
                        name: String::new(),
                        account: k,
                        peer_id,
                    });
                }
            }
        };
        if let Ok(peers) = api.get("peers") {
            for p in peers.as_array().into_iter().flatten() {
                add(p["account"].as_str());
            }
        }
        if let Ok(chans) = api.get("channels") {
            for c in chans.as_array().into_iter().flatten() {
                add(c["counterparty"].as_str());
            }
        }
    }
    let lower = given.to_lowercase();
    let matches: Vec<&Party> = known
        .iter()
        .filter(|p| p.account.to_hex().starts_with(&lower) || p.peer_id.starts_with(given))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one.account),
        [] => Err(CliError::new(
            "not_found",
            format!("no known party's account or peer id starts with {given}"),
        )
        .into()),
        many => Err(CliError::new(
            "bad_request",
            format!(
                "{given} is ambiguous: {} parties match ({}); give more characters",
                many.len(),
                many.iter()
                    .map(|p| if p.name.is_empty() {
                        p.account.to_hex()[..12].to_owned()
                    } else {
                        p.name.clone()
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .into()),
    }
}
