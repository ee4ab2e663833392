//! `paychan credit list|grant|repay|score`: credit lines and debts through the running node's
//! control API (`/v1/credit/...`).

use anyhow::Result;
use serde_json::{json, Value};

use crate::commands;
use crate::config::DataDir;
use crate::http::ApiClient;
use crate::output::{amount_text, output, s, short, time_text};

/// `paychan credit`.
#[derive(Debug, clap::Subcommand)]
pub enum CreditCommand {
    /// Every credit line and debt on the ledger.
    List,
    /// Grant (raise, lower, or with --limit 0 end) a credit line on a channel of this node to
    /// the other party: this node is the creditor.
    Grant {
        /// The channel (id or unique prefix).
        #[arg(long)]
        channel: String,
        /// Most the other party may owe beyond its deposit and what it received.
        #[arg(long)]
        limit: u64,
        /// Ledger time (ms) after which the line takes no new payments (default: in an hour).
        #[arg(long)]
        expiry_ms: Option<u64>,
        /// Ledger time (ms) at which a debt from the line falls due (default: an hour after
        /// the expiry).
        #[arg(long)]
        due_ms: Option<u64>,
    },
    /// Pay down the debt a channel's settlement recorded, from this node's account.
    Repay {
        /// The channel (full id: a settled channel may be gone from the node's list).
        #[arg(long)]
        channel: String,
        /// How much (default: all that is outstanding).
        #[arg(long)]
        amount: Option<u64>,
    },
    /// An account's credit score from ledger history, with each factor and its weight.
    Score {
        /// The account: hex, a peer id, a testnet name or a unique prefix (default: this node).
        account: Option<String>,
    },
}

/// Runs one `paychan credit` command.
pub fn run(dir: &DataDir, json_out: bool, command: CreditCommand) -> Result<()> {
    let api = ApiClient::from_data_dir(dir)?;
    match command {
        CreditCommand::List => {
            let v = api.get("credit")?;
            let names = commands::testnet_parties(dir);
            output(json_out, v, |v| list_text(v, &names));
        }
        CreditCommand::Grant {
            channel,
            limit,
            expiry_ms,
            due_ms,
        } => {
            let channel = commands::resolve_channel(&api, &channel)?;
            let mut v = api.post(
                "credit/grant",
                &json!({"channel": channel, "limit": limit, "expiry_ms": expiry_ms, "due_ms": due_ms}),
            )?;
            v["channel_id"] = json!(channel);
            v["limit"] = json!(limit);
            output(json_out, v, |v| {
                format!(
                    "submitted {} ({}): a credit line of {} on channel {}",
                    s(&v["tx_id"]),
                    s(&v["status"]),
                    amount_text(&v["limit"]),
                    s(&v["channel_id"])
                )
            });
        }
        CreditCommand::Repay { channel, amount } => {
            let mut v = api.post("credit/repay", &json!({"channel": channel, "amount": amount}))?;
            v["channel_id"] = json!(channel);
            v["amount"] = json!(amount);
            output(json_out, v, |v| {
                let what = if v["amount"].is_u64() {
                    amount_text(&v["amount"])
                } else {
                    "all that is outstanding".into()
                };
                format!(
                    "submitted {} ({}): repaying {} of the debt of channel {}",
                    s(&v["tx_id"]),
                    s(&v["status"]),
                    what,
                    s(&v["channel_id"])
                )
            });
        }
        CreditCommand::Score { account } => {
            let key = match account {
                Some(a) => commands::resolve_party(dir, Some(&api), &a)?,
                None => dir.keypair()?.public(),
            };
            let v = api.get(&format!("credit/score/{}", key.to_hex()))?;
            output(json_out, v, score_text);
        }
    }
    Ok(())
}

fn list_text(v: &Value, names: &[commands::Party]) -> String {
    let party = |v: &Value| {
        names
            .iter()
            .find(|p| p.account.to_hex() == s(v))
            .map(|p| p.name.clone())
            .unwrap_or_else(|| short(v))
    };
    let mut out = vec![format!(
        "credit at height {} ({})",
        v["height"],
        v["time_ms"].as_u64().map(time_text).unwrap_or_default()
    )];
    let lines = v["lines"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    out.push(format!("lines: {}", lines.len()));
    for l in lines {
        out.push(format!(
            "  channel {}  creditor {}  debtor {}  limit {}  peak {}  expires {}  due {}",
            short(&l["channel_id"]),
            party(&l["creditor"]),
            party(&l["debtor"]),
            amount_text(&l["limit"]),
            amount_text(&l["peak"]),
            l["expiry_ms"].as_u64().map(time_text).unwrap_or_default(),
            l["due_ms"].as_u64().map(time_text).unwrap_or_default()
        ));
    }
    let debts = v["debts"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    out.push(format!("debts: {}", debts.len()));
    for d in debts {
        out.push(format!(
            "  channel {}  creditor {}  debtor {}  amount {}  outstanding {}  {}  due {}",
            short(&d["channel_id"]),
            party(&d["creditor"]),
            party(&d["debtor"]),
            amount_text(&d["amount"]),
            amount_text(&d["outstanding"]),
            s(&d["status"]),
            d["due_ms"].as_u64().map(time_text).unwrap_or_default()
        ));
    }
    out.push(format!(
        "owed: {} outstanding, {} defaulted",
        amount_text(&v["debts_outstanding"]),
        amount_text(&v["debts_defaulted"])
    ));
    out.join("\n")
}

/// A score (the JSON of [`paychan_audit::Score`]) as text, each factor with its weight.
pub fn score_text(v: &Value) -> String {
    let mut out = vec![format!(
        "score of {}: {} / 1000 (at height {})",
        s(&v["account"]),
        v["score"],
        v["height"]
    )];
    out.push(format!(
        "  {:<22} {:>8} {:>7} {:>6} {:>7}",
        "FACTOR", "VALUE", "WEIGHT", "CAP", "POINTS"
    ));
    for f in v["factors"].as_array().into_iter().flatten() {
        out.push(format!(
            "  {:<22} {:>8} {:>7} {:>6} {:>7}",
            s(&f["name"]),
            f["value"],
            f["weight"],
            f["cap"],
            f["points"]
        ));
    }
    out.join("\n")
}
