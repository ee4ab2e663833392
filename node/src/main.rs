//! The `paychan` binary: the command-line interface. It composes the library (`paychan`): the
//! node daemon, its control API and public endpoints, the auditor's commands and the testnet.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use paychan_protocol::{Keypair, PublicKey};
use serde_json::{json, Value};

use paychan::config::{Config, DataDir};
use paychan::http::ApiClient;
use paychan::output::{output, runtime, s};
use paychan::{audit_cmd, client, daemon, demo, offline, testnet};

#[derive(Debug, Parser)]
#[command(name = "paychan", version, about = "A payment channel node")]
struct Cli {
    /// The node's data dir.
    #[arg(long, global = true, env = "PAYCHAN_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a data dir: a key (ledger account and p2p identity), an API token, a config and a
    /// genesis (a one-node development chain, unless --genesis gives one).
    Init {
        /// Install this genesis (canonical bytes, as another node's genesis.bin).
        #[arg(long)]
        genesis: Option<PathBuf>,
    },
    /// Run the node until SIGINT or SIGTERM.
    Run {
        /// Log format.
        #[arg(long, value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Connected peers of the running node.
    Peers,
    /// Payment channels of the running node.
    Channel {
        #[command(subcommand)]
        command: ChannelCommand,
    },
    /// The ledger, through the running node.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// Verify a ledger trusting nobody who serves it: from export files, peers or public
    /// endpoints; offline inclusion proofs; consistency of two checkpoint notes.
    Audit(Box<audit_cmd::AuditCli>),
    /// A local testnet of several node processes.
    Testnet {
        #[command(subcommand)]
        command: TestnetCommand,
    },
    /// Key management.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// A client program: dial a node over the p2p protocol without running a node, open a
    /// channel, pay, close, and verify its transactions against witnessed checkpoints. The chain
    /// must be pinned (--chain-id or --genesis).
    Client(Box<client::ClientCli>),
    /// Run the node with an HTTP 402 gateway in front of a web service: requests are paid per
    /// request through a channel with this node (the payee). Flags override `[gateway]`.
    Gateway(Box<GatewayCli>),
    /// Request a URL behind a 402 gateway, paying per request through a channel with the
    /// gateway's node (opened over p2p when there is none); prints the body, and the total
    /// spent on standard error.
    Fetch(Box<paychan::fetch::FetchCli>),
    /// Give an amount to the creator behind a 402 gateway (a payment with a reference and no
    /// resource), through a channel with the gateway's node.
    Donate(Box<paychan::fetch::DonateCli>),
}

/// `paychan gateway`.
#[derive(Debug, clap::Args)]
struct GatewayCli {
    /// The service behind the gateway, `http://HOST:PORT`.
    #[arg(long)]
    upstream: String,
    /// Where the gateway listens.
    #[arg(long, default_value = "127.0.0.1:8402")]
    listen: String,
    /// The price of one request.
    #[arg(long)]
    price: u64,
    /// The price of each KiB of a response body, paid as it is read (0: none).
    #[arg(long, default_value_t = 0)]
    price_per_kib: u64,
    /// A path prefix served without payment (repeatable).
    #[arg(long = "free")]
    free: Vec<String>,
    /// An account (hex) advertised for donations.
    #[arg(long)]
    donate_to: Option<String>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum LedgerCommand {
    /// Height, time, roots.
    Status,
    /// Recent blocks.
    Blocks {
        /// First height (default: the newest `limit` blocks).
        #[arg(long)]
        from: Option<u64>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// An account's balance (default: the node's own).
    Balance {
        /// Account key (hex).
        account: Option<String>,
    },
    /// Write the ledger to an export file (from the running node, or a stopped one's store).
    Export {
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// Last height to export (default: the tip).
        #[arg(long)]
        to: Option<u64>,
    },
    /// The verifier keys of the log and of each witness (C2SP note keys), with the origin.
    Keys,
    /// Transfer from the node's account.
    Transfer {
        /// Recipient key (hex).
        #[arg(long)]
        to: String,
        /// Amount.
        #[arg(long)]
        amount: u64,
    },
}

#[derive(Debug, Subcommand)]
enum ChannelCommand {
    /// Open a channel with a peer (waits until the ledger holds the open).
    Open {
        /// The peer: its peer id or its account (hex).
        #[arg(long)]
        peer: String,
        /// What this node locks.
        #[arg(long)]
        deposit: u64,
        /// What the peer locks.
        #[arg(long, default_value_t = 0)]
        their_deposit: u64,
    },
    /// Channels with their balances.
    List,
    /// Pay through a channel: `count` payments of `amount`, each one signed proof, pipelined.
    Pay {
        /// Channel id (hex).
        channel: String,
        /// Amount of each payment.
        #[arg(long)]
        amount: u64,
        /// Number of payments.
        #[arg(long, default_value_t = 1)]
        count: u64,
        /// A memo committed to by each payment's reference.
        #[arg(long)]
        memo: Option<String>,
    },
    /// Close a channel cooperatively, or unilaterally with --force (waits for the payout).
    Close {
        /// Channel id (hex).
        channel: String,
        /// Close without the peer: submit the newest proofs and wait out the challenge window.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TestnetCommand {
    /// Write a genesis, start the nodes, wait until they are connected. Refuses a dir that
    /// already holds a testnet unless --force.
    Up {
        /// Number of nodes (node 0 is the sequencer, the others witnesses).
        #[arg(long, default_value_t = 4)]
        nodes: usize,
        /// Testnet directory.
        #[arg(long, default_value = "testnet")]
        dir: PathBuf,
        /// TEST ONLY: the sequencer drops dispute updates (to show that witnesses catch it).
        #[arg(long, hide = true)]
        test_drop_updates: bool,
        /// TEST ONLY: the sequencer signs two checkpoints for one log size, once (to show that
        /// every node catches the split view).
        #[arg(long, hide = true)]
        test_equivocate: bool,
        /// TEST ONLY: the sequencer signs two blocks at one height, once (to show that every
        /// node keeps the evidence and stops cosigning).
        #[arg(long, hide = true)]
        test_double_block: bool,
        /// TEST ONLY: the sequencer's clock runs this many ms ahead (to show that replicas
        /// refuse blocks from the future).
        #[arg(long, hide = true, default_value_t = 0)]
        test_clock_ahead_ms: u64,
        /// Delete a stopped testnet in the dir (keys, ledger, channels) and create a new one.
        #[arg(long)]
        force: bool,
    },
    /// Start a stopped testnet again with its data: same keys, genesis, channels and ports.
    Start {
        /// Testnet directory.
        #[arg(long, default_value = "testnet")]
        dir: PathBuf,
    },
    /// Show the nodes of a testnet.
    Status {
        /// Testnet directory.
        #[arg(long, default_value = "testnet")]
        dir: PathBuf,
    },
    /// Run the demo against a running testnet: channels, 10,000 payments each, closes,
    /// settlement, balances checked, ledger verified.
    Demo {
        /// Testnet directory.
        #[arg(long, default_value = "testnet")]
        dir: PathBuf,
    },
    /// Stop every node of a testnet (the data stays).
    Down {
        /// Testnet directory.
        #[arg(long, default_value = "testnet")]
        dir: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Generate a new ed25519 key (a ledger account and libp2p identity) and print it.
    New,
}

fn default_data_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".paychan")
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let dir = DataDir::new(cli.data_dir.clone().unwrap_or_else(default_data_dir));
    match cli.command {
        Command::Key {
            command: KeyCommand::New,
        } => {
            let kp = Keypair::generate();
            let public = kp.public().to_hex();
            let secret = hex::encode(kp.seed());
            if cli.json {
                println!("{}", json!({"public_key": public, "secret_key": secret}));
            } else {
                println!("public key: {public}");
                println!("secret key: {secret}");
            }
        }
        Command::Init { genesis } => {
            let kp = dir.init(&Config::default(), None)?;
            let genesis = match genesis {
                Some(path) => {
                    let bytes = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
                    <paychan_protocol::Genesis as paychan_protocol::Wire>::from_bytes(&bytes)
                        .context("not a valid genesis")?
                }
                None => testnet::init_genesis(kp.public()),
            };
            dir.write_genesis(&genesis)?;
            output(
                cli.json,
                json!({"data_dir": dir.root().display().to_string(), "account": kp.public().to_hex(),
                       "chain_id": genesis.chain_id().to_hex()}),
                |v| {
                    format!(
                        "initialised {}\naccount:  {}\nchain id: {}",
                        v["data_dir"], v["account"], v["chain_id"]
                    )
                    .replace('"', "")
                },
            );
        }
        Command::Run { log_format } => {
            init_tracing(log_format);
            let rt = runtime()?;
            rt.block_on(async move {
                let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
                tokio::spawn(async move {
                    wait_for_signal().await;
                    let _ = stop_tx.send(true);
                });
                daemon::run(dir, stop_rx).await
            })?;
        }
        Command::Gateway(g) => {
            init_tracing(g.log_format);
            let mut config = dir.config()?;
            config.gateway = Some(paychan::gateway::GatewayConfig {
                upstream: g.upstream,
                listen: g.listen,
                price: g.price,
                price_per_kib: g.price_per_kib,
                free: g.free,
                donate_to: g.donate_to,
            });
            let rt = runtime()?;
            rt.block_on(async move {
                let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
                tokio::spawn(async move {
                    wait_for_signal().await;
                    let _ = stop_tx.send(true);
                });
                daemon::run_with(dir, config, stop_rx).await
            })?;
        }
        Command::Fetch(args) => {
            init_quiet_tracing();
            let report = runtime()?.block_on(paychan::fetch::run(*args))?;
            let v = serde_json::to_value(&report)?;
            if cli.json {
                eprintln!("{v}");
            } else {
                eprintln!(
                    "{} requests, status {}, spent {} ({:.0} requests/s)",
                    v["requests"],
                    v["status"],
                    v["spent"],
                    v["requests_per_s"].as_f64().unwrap_or(0.0)
                );
            }
        }
        Command::Donate(args) => {
            init_quiet_tracing();
            let amount = args.amount;
            let id = runtime()?.block_on(paychan::fetch::donate(*args))?;
            output(cli.json, json!({"channel_id": id, "donated": amount}), |v| {
                format!("donated {} through channel {}", v["donated"], s(&v["channel_id"]))
            });
        }
        Command::Peers => {
            let v = ApiClient::from_data_dir(&dir)?.get("peers")?;
            output(cli.json, v, |v| {
                let rows: Vec<String> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| {
                        format!(
                            "{}  {}",
                            p["peer_id"].as_str().unwrap_or("?"),
                            p["account"].as_str().unwrap_or("")
                        )
                    })
                    .collect();
                if rows.is_empty() {
                    "no peers".into()
                } else {
                    rows.join("\n")
                }
            });
        }
        Command::Ledger { command } => ledger(&dir, cli.json, command)?,
        Command::Client(args) => {
            init_quiet_tracing();
            let report = runtime()?.block_on(client::run(*args))?;
            output(cli.json, serde_json::to_value(&report)?, |v| {
                format!(
                    "channel {} closed: paid {} in {} payments ({:.0}/s); balance {} -> {}; {} transactions proven in witnessed checkpoints",
                    s(&v["channel_id"]), v["paid"], v["payments"], v["per_second"].as_f64().unwrap_or(0.0),
                    v["balance_before"], v["balance_after"], v["verified_txs"]
                ) + &client::alarm_lines(v)
            });
        }
        Command::Channel { command } => channel(&dir, cli.json, command)?,
        Command::Audit(args) => {
            init_quiet_tracing();
            let code = audit_cmd::run_audit(&dir, cli.json, *args);
            std::process::exit(code);
        }
        Command::Testnet { command } => match command {
            TestnetCommand::Up {
                nodes,
                dir,
                test_drop_updates,
                test_equivocate,
                test_double_block,
                test_clock_ahead_ms,
                force,
            } => {
                let rows = testnet::up(
                    &dir,
                    nodes,
                    test_drop_updates,
                    test_equivocate,
                    test_double_block,
                    test_clock_ahead_ms,
                    force,
                )?;
                if cli.json {
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                } else {
                    testnet::print_table(&rows);
                    println!(
                        "testnet ready in {}; stop it with `paychan testnet down --dir {}`",
                        dir.display(),
                        dir.display()
                    );
                }
            }
            TestnetCommand::Start { dir } => {
                let rows = testnet::start(&dir)?;
                if cli.json {
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                } else {
                    testnet::print_table(&rows);
                    println!(
                        "testnet running again in {}; stop it with `paychan testnet down --dir {}`",
                        dir.display(),
                        dir.display()
                    );
                }
            }
            TestnetCommand::Status { dir } => {
                let rows = testnet::status(&dir)?;
                if cli.json {
                    println!("{}", serde_json::to_string_pretty(&rows)?);
                } else {
                    testnet::print_table(&rows);
                }
            }
            TestnetCommand::Demo { dir } => {
                init_quiet_tracing();
                let rt = runtime()?;
                rt.block_on(demo::run(&dir))?;
            }
            TestnetCommand::Down { dir } => {
                let report = testnet::down(&dir)?;
                if !cli.json {
                    for stale in &report.stale_pids {
                        println!(
                            "{}: node.pid named pid {}, which is not this node; removed it, signalled nothing",
                            stale.name, stale.pid
                        );
                    }
                    println!(
                        "stopped {} node(s); data kept in {}",
                        report.stopped,
                        dir.display()
                    );
                } else {
                    println!("{}", serde_json::to_string(&report)?);
                }
            }
        },
    }
    Ok(())
}

/// Where ledger reads come from: the running node's API, or a stopped node's data dir.
enum Reader {
    Api(ApiClient),
    Offline(Box<offline::Offline>),
}

impl Reader {
    fn open(dir: &DataDir) -> Result<Reader> {
        if let Ok(api) = ApiClient::from_data_dir(dir) {
            if api.get("info").is_ok() {
                return Ok(Reader::Api(api));
            }
        }
        Ok(Reader::Offline(Box::new(offline::Offline::open(dir)?)))
    }

    fn get(&self, path: &str) -> Result<Value> {
        match self {
            Reader::Api(api) => api.get(path),
            Reader::Offline(o) => o.get(path),
        }
    }
}

fn ledger(dir: &DataDir, json_out: bool, command: LedgerCommand) -> Result<()> {
    // Reads work from a running node's API or, when it is stopped, from its data dir.
    let reader = || Reader::open(dir);
    match command {
        LedgerCommand::Export { out, to } => audit_cmd::export(dir, json_out, &out, to)?,
        LedgerCommand::Keys => audit_cmd::keys(dir, json_out)?,
        LedgerCommand::Transfer { to, amount } => {
            if PublicKey::from_hex(&to).is_err() {
                bail!("--to is an account: 64 hex characters");
            }
            let v = ApiClient::from_data_dir(dir)?.post("transfer", &json!({"to": to, "amount": amount}))?;
            output(json_out, v, |v| {
                format!("submitted {} ({})", s(&v["tx_id"]), s(&v["status"]))
            });
        }
        LedgerCommand::Status => {
            let v = reader()?.get("ledger/status")?;
            output(json_out, v, |v| {
                format!(
                    "chain id:   {}\nheight:     {}\ntime:       {} ms\nblock hash: {}\nstate root: {}\nlog:        {} txs, root {}\npending:    {}\nsupply:     {}",
                    s(&v["chain_id"]), v["height"], v["time_ms"], s(&v["block_hash"]), s(&v["state_root"]),
                    v["log_size"], s(&v["log_root"]), v["pending"], v["supply"]
                )
            });
        }
        LedgerCommand::Blocks { from, limit } => {
            let path = match from {
                Some(f) => format!("ledger/blocks?from={f}&limit={limit}"),
                None => format!("ledger/blocks?limit={limit}"),
            };
            let v = reader()?.get(&path)?;
            output(json_out, v, |v| {
                let mut out = vec![format!(
                    "{:>7}  {:<64}  {:>14}  {:>4}",
                    "HEIGHT", "HASH", "TIME (ms)", "TXS"
                )];
                for b in v.as_array().into_iter().flatten() {
                    out.push(format!(
                        "{:>7}  {:<64}  {:>14}  {:>4}",
                        b["height"].to_string(),
                        s(&b["hash"]),
                        b["time_ms"].to_string(),
                        b["txs"].as_array().map(Vec::len).unwrap_or(0)
                    ));
                }
                out.join("\n")
            });
        }
        LedgerCommand::Balance { account } => {
            let key = match account {
                Some(a) => PublicKey::from_hex(&a).context("an account is 64 hex characters")?,
                None => dir.keypair()?.public(),
            };
            let v = reader()?.get(&format!("accounts/{}", key.to_hex()))?;
            output(json_out, v, |v| {
                format!(
                    "{}  balance {}  nonce {}",
                    s(&v["account"]),
                    v["balance"],
                    v["nonce"]
                )
            });
        }
    }
    Ok(())
}

/// Payments per API call when a job is large enough to show progress.
const PAY_CHUNK: u64 = 2_000;

fn channel(dir: &DataDir, json_out: bool, command: ChannelCommand) -> Result<()> {
    let api = ApiClient::from_data_dir(dir)?;
    match command {
        ChannelCommand::Open {
            peer,
            deposit,
            their_deposit,
        } => {
            let v = api.post(
                "channels",
                &json!({"peer": peer, "deposit": deposit, "their_deposit": their_deposit}),
            )?;
            output(json_out, v, |v| {
                format!("channel {} is open", s(&v["channel_id"]))
            });
        }
        ChannelCommand::List => {
            let v = api.get("channels")?;
            output(json_out, v, |v| {
                // Once paid out, BALANCE is the ledger's payout; EXPECTED is the off-chain
                // balance and SHORTFALL what the ledger paid less than it ("-" before).
                let mut out = vec![format!(
                    "{:<64}  {:<12}  {:>12}  {:>12}  {:>10}  {:>10}  {:>12}  {:>12}",
                    "CHANNEL", "STATUS", "BALANCE", "THEIRS", "SENT", "RECEIVED", "EXPECTED", "SHORTFALL"
                )];
                let or_dash = |v: &serde_json::Value| v.as_u64().map_or("-".to_string(), |n| n.to_string());
                let mut short = false;
                for c in v.as_array().into_iter().flatten() {
                    short |= c["shortfall"].as_u64().is_some_and(|n| n > 0);
                    out.push(format!(
                        "{:<64}  {:<12}  {:>12}  {:>12}  {:>10}  {:>10}  {:>12}  {:>12}",
                        s(&c["id"]),
                        s(&c["status"]),
                        c["balance"].to_string(),
                        c["their_balance"].to_string(),
                        c["sent"].to_string(),
                        c["received"].to_string(),
                        or_dash(&c["expected"]),
                        or_dash(&c["shortfall"])
                    ));
                }
                if short {
                    out.push("warning: the ledger paid out less than this node's off-chain balance".into());
                }
                out.join("\n")
            });
        }
        ChannelCommand::Pay {
            channel,
            amount,
            count,
            memo,
        } => {
            let bar = (count >= 2 * PAY_CHUNK && !json_out).then(|| {
                let bar = indicatif::ProgressBar::new(count);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "{bar:40} {pos}/{len} payments {per_sec} eta {eta}",
                    )
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
                );
                bar
            });
            let started = std::time::Instant::now();
            let mut done = 0u64;
            // At least one call, so that the node judges every request (`--count 0` included).
            loop {
                let n = if bar.is_some() {
                    PAY_CHUNK.min(count - done)
                } else {
                    count - done
                };
                api.post(
                    &format!("channels/{channel}/pay"),
                    &json!({"amount": amount, "count": n, "memo": memo}),
                )?;
                done += n;
                if let Some(b) = &bar {
                    b.set_position(done);
                }
                if done >= count {
                    break;
                }
            }
            if let Some(b) = bar {
                b.finish();
            }
            let secs = started.elapsed().as_secs_f64();
            let v = json!({"channel_id": channel, "count": count, "amount": amount.saturating_mul(count),
                           "elapsed_ms": (secs * 1000.0) as u64, "per_second": count as f64 / secs.max(1e-9)});
            output(json_out, v, |v| {
                format!(
                    "paid {} in {} payments ({:.0} payments/s, all acknowledged)",
                    v["amount"],
                    v["count"],
                    v["per_second"].as_f64().unwrap_or(0.0)
                )
            });
        }
        ChannelCommand::Close { channel, force } => {
            let v = api.post(&format!("channels/{channel}/close"), &json!({"force": force}))?;
            output(json_out, v, |v| {
                format!("channel {} closed and paid out", s(&v["channel_id"]))
            });
        }
    }
    Ok(())
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// Warnings only: commands that print their own report.
fn init_quiet_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
