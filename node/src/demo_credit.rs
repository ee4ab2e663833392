//! The demo's credit part (`paychan testnet demo`, after the pay-per-use part): a new reader
//! with a small deposit reads the gateway's articles past its deposit on a credit line, ends
//! with a debt, and the debt is paid out of the next transfer it receives.
//!
//! 1. node-0 funds a fresh key with [`FUND`]; the reader (a [`PaidHttpClient`] with that key)
//!    opens a channel with the gateway's node depositing [`DEPOSIT`].
//! 2. The gateway's node (the creditor) grants it a line of [`LINE`] (`POST /v1/credit/grant`).
//! 3. The reader reads until its own channel refuses the next payment: it paid exactly
//!    `DEPOSIT + LINE`.
//! 4. The creditor closes unilaterally (a cooperative close records no debt); the settlement
//!    records a debt of `LINE`, pays what it can at once from the reader's balance, and leaves
//!    the rest outstanding.
//! 5. node-0 sends the reader [`TRANSFER`]: the outstanding debt is paid from it first, and the
//!    creditor's balance grows by exactly that.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use crate::demo::{balance, call};
use crate::fetch::PaidHttpClient;
use crate::http::ApiClient;
use crate::output::grouped;
use paychan_protocol::{Hash32, Keypair};

/// What node-0 gives the new reader before it opens its channel.
pub const FUND: u64 = 1_000;
/// The reader's deposit.
pub const DEPOSIT: u64 = 100;
/// The line the creditor grants.
pub const LINE: u64 = 2_000;
/// The transfer that pays the rest of the debt.
pub const TRANSFER: u64 = 5_000;

/// Polls `f` every 50 ms until it gives a value, for at most `timeout`.
async fn wait_for<T, F>(what: &str, timeout: Duration, mut f: impl FnMut() -> F) -> Result<T>
where
    F: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await? {
            return Ok(v);
        }
        ensure!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The debt the ledger (as `api`'s node sees it) records for `channel`, if any.
async fn debt_of(api: &ApiClient, channel: &str) -> Result<Option<Value>> {
    let v = call(api, "credit", None).await?;
    Ok(v["debts"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["channel_id"] == channel).cloned()))
}

/// Runs the part: `creditor` is the gateway's node API (`x` its index), `funder` node-0's,
/// `url` a paid article. Returns the checks that failed.
pub async fn run(
    funder: &ApiClient,
    creditor: &ApiClient,
    x: usize,
    url: &str,
    price: u64,
    chain: Hash32,
) -> Result<Vec<String>> {
    let mut failures = Vec::new();
    let creditor_account = call(creditor, "info", None).await?["account"]
        .as_str()
        .context("account")?
        .to_owned();
    let key = Keypair::generate();
    let reader_account = key.public().to_hex();
    println!(
        "\ncredit: a new reader with a deposit of {DEPOSIT} reads past it on a line of {} from node-{x}",
        grouped(LINE)
    );
    println!("  the reader's account: {reader_account}");
    call(
        funder,
        "transfer",
        Some(json!({"to": reader_account, "amount": FUND})),
    )
    .await?;
    wait_for("the reader's funds", Duration::from_secs(20), || async {
        Ok((balance(creditor, &reader_account).await.unwrap_or(0) == FUND).then_some(()))
    })
    .await?;

    let mut reader = PaidHttpClient::new(key, DEPOSIT, price, Some(chain));
    reader.connect(url).await?;
    let channel = reader
        .channel()
        .context("the reader opened no channel")?
        .0
        .to_hex();
    let grant = call(
        creditor,
        "credit/grant",
        Some(json!({"channel": channel, "limit": LINE})),
    )
    .await?;
    let line = wait_for("the line on the ledger", Duration::from_secs(20), || async {
        let v = call(creditor, "credit", None).await?;
        Ok(v["lines"]
            .as_array()
            .and_then(|l| l.iter().find(|l| l["channel_id"] == channel.as_str()).cloned()))
    })
    .await?;
    wait_for("the reader to see its line", Duration::from_secs(20), || async {
        Ok(reader
            .channel_view()
            .await?
            .filter(|v| v.credit_limit == LINE)
            .map(|_| ()))
    })
    .await?;
    println!(
        "  node-{x} granted a line of {} on channel {} (tx {}): expires {}, a debt from it is due {}",
        grouped(LINE),
        &channel[..16],
        grant["tx_id"].as_str().unwrap_or("?"),
        line["expiry_ms"]
            .as_u64()
            .map(crate::output::time_text)
            .unwrap_or_default(),
        line["due_ms"]
            .as_u64()
            .map(crate::output::time_text)
            .unwrap_or_default()
    );

    // Read until the reader's own channel refuses the next payment: deposit + line, no more.
    let most = (DEPOSIT + LINE) / price + 1;
    let (mut read, mut charged, mut refusal) = (0u64, 0u64, None);
    while read <= most {
        match reader.get(url).await {
            Ok(r) if r.status == 200 => {
                read += 1;
                charged += r.charged;
            }
            Ok(r) => {
                failures.push(format!("credit: an article answered {}", r.status));
                break;
            }
            Err(e) => {
                refusal = Some(format!("{e:#}"));
                break;
            }
        }
    }
    let refusal = refusal.unwrap_or_else(|| "none".into());
    println!(
        "  read {} articles for {}: {} from the deposit, {} on credit; the next payment was refused ({refusal})",
        grouped(read),
        grouped(charged),
        grouped(charged.min(DEPOSIT)),
        grouped(charged.saturating_sub(DEPOSIT))
    );
    if charged != DEPOSIT + LINE {
        failures.push(format!(
            "credit: the reader paid {charged} before the refusal, expected {}",
            DEPOSIT + LINE
        ));
    }
    if !refusal.contains("insufficient funds") {
        failures.push(format!(
            "credit: the payment past the line was not refused as insufficient funds: {refusal}"
        ));
    }

    // The creditor closes unilaterally: the settlement records the debt.
    let before_settle = balance(creditor, &reader_account).await?;
    let creditor_before = balance(creditor, &creditor_account).await?;
    let t = Instant::now();
    call(
        creditor,
        &format!("channels/{channel}/close"),
        Some(json!({"force": true})),
    )
    .await?;
    let debt = wait_for("the debt on the ledger", Duration::from_secs(20), || {
        debt_of(creditor, &channel)
    })
    .await?;
    let (amount, outstanding) = (
        debt["amount"].as_u64().unwrap_or(0),
        debt["outstanding"].as_u64().unwrap_or(0),
    );
    let at_once = amount - outstanding;
    println!(
        "  node-{x} closed unilaterally; settled after the window ({:.1} s): a debt of {} recorded, {} paid at once from the reader's balance of {}, {} outstanding, due {}",
        t.elapsed().as_secs_f64(),
        grouped(amount),
        grouped(at_once),
        grouped(before_settle),
        grouped(outstanding),
        debt["due_ms"].as_u64().map(crate::output::time_text).unwrap_or_default()
    );
    if amount != LINE || at_once != before_settle.min(LINE) {
        failures.push(format!(
            "credit: debt {amount} with {at_once} paid at once; expected {LINE} with {}",
            before_settle.min(LINE)
        ));
    }

    // A transfer to the reader pays the rest of the debt first.
    let settled_creditor = balance(creditor, &creditor_account).await?;
    call(
        funder,
        "transfer",
        Some(json!({"to": reader_account, "amount": TRANSFER})),
    )
    .await?;
    let after = wait_for("the debt to be repaid", Duration::from_secs(20), || async {
        Ok(debt_of(creditor, &channel)
            .await?
            .filter(|d| d["outstanding"] == 0))
    })
    .await?;
    let reader_after = balance(creditor, &reader_account).await?;
    let creditor_after = balance(creditor, &creditor_account).await?;
    println!(
        "  node-0 sent the reader {}: {} of it paid the debt (now {}), the reader keeps {}; node-{x} received {} in all for the {} articles",
        grouped(TRANSFER),
        grouped(outstanding),
        after["status"].as_str().unwrap_or("?"),
        grouped(reader_after),
        grouped(creditor_after.saturating_sub(creditor_before)),
        grouped(read)
    );
    let ok = reader_after == before_settle - at_once + TRANSFER - outstanding
        && creditor_after == settled_creditor + outstanding
        && creditor_after == creditor_before + charged
        && after["status"] == "repaid";
    if !ok {
        failures.push(format!(
            "credit: after the transfer the reader holds {reader_after} and the creditor {creditor_after} (debt {after})"
        ));
    }
    Ok(failures)
}
