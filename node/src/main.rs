//! The `paychan` binary: the command-line interface. It composes the library (`paychan`): the
//! node daemon, its control API and public endpoints, the auditor's commands and the testnet.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use paychan_protocol::Keypair;
use serde_json::{json, Value};

use paychan::config::{Config, DataDir};
use paychan::http::ApiClient;
use paychan::output::{amount_text, grouped, output, report_error, runtime, s, short, time_text, CliError};
use paychan::{audit_cmd, client, commands, daemon, demo, offline, testnet};

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
    /// Who this node is and where it stands: peer id, account, addresses, role, chain, ledger
    /// height and time, peers, channels by status, balances, version.
    Info,
    /// Connected peers of the running node.
    Peers,
    /// Connect the running node to a peer now and keep it connected; the address is added to
    /// `config.toml`'s `bootstrap` so that the node dials it at every start.
    Connect {
        /// The peer's address, ending in `/p2p/<peer id>` (`testnet status` and `info` show them).
        addr: String,
    },
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
    /// Credit lines and debts on the ledger: list, grant, repay, score.
    Credit {
        #[command(subcommand)]
        command: paychan::credit_cmd::CreditCommand,
    },
}

/// `paychan gateway`.
#[derive(Debug, clap::Args)]
struct GatewayCli {
    /// The service behind the gateway: `http://HOST:PORT[/PREFIX]` (requests are forwarded to
    /// it), or `dir:PATH` (the gateway serves the files of that directory itself: `GET /a/b`
    /// answers `PATH/a/b`, `index.html` for a path ending in `/`, 404 for a missing file).
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
        /// The account: hex, a peer id, a testnet name (node-1, client-0) or a unique prefix.
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
        /// The recipient: an account (hex), a peer id, a testnet name (node-1, client-0) or a
        /// unique prefix of a known party's account or peer id.
        #[arg(long)]
        to: String,
        /// Amount.
        #[arg(long)]
        amount: u64,
        /// Wait until the transfer is in a witnessed block, showing its steps.
        #[arg(long)]
        wait: bool,
        /// How long --wait waits.
        #[arg(long, default_value_t = 60)]
        wait_secs: u64,
    },
    /// Where a transaction is: pending, in block H, witnessed.
    Tx {
        /// Transaction id (hex).
        tx_id: String,
    },
}

#[derive(Debug, Subcommand)]
enum ChannelCommand {
    /// Open a channel with a peer (waits until the ledger holds the open).
    Open {
        /// The peer: its peer id, its account (hex), a testnet name (node-2) or a unique prefix
        /// of a known party's account or peer id.
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
    /// Pay through a channel: `count` payments of `amount`, pipelined, each signed proof
    /// carrying `--per-proof` of them (1 by default: each payment its own proof). A job that
    /// stops early says how many payments and how much went through.
    Pay {
        /// Channel id (hex, or a unique prefix of one).
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
        /// Payments per signed proof (1 to 64): one signature covers them, the proof's memo
        /// lists each, and the payee stores each.
        #[arg(long, default_value_t = 1)]
        per_proof: usize,
    },
    /// The payments received on a channel, one line each (a proof carries 1 to 64).
    Payments {
        /// Channel id (hex, or a unique prefix of one).
        channel: String,
        /// From the proof with this seq on.
        #[arg(long, default_value_t = 0)]
        from_seq: u64,
        /// At most this many (up to 10,000).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Close a channel cooperatively, or unilaterally with --force; shows the steps and waits
    /// for the payout unless --no-wait.
    Close {
        /// Channel id (hex, or a unique prefix of one).
        channel: String,
        /// Close without the peer: submit the newest proofs and wait out the challenge window.
        #[arg(long)]
        force: bool,
        /// Return once the close is under way (proposed, or submitted with --force).
        #[arg(long)]
        no_wait: bool,
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
        /// TEST ONLY: a challenge window of this many ms instead of 30 s (for tests of
        /// unilateral closes).
        #[arg(long, hide = true)]
        test_challenge_period_ms: Option<u64>,
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
    /// Generate a new ed25519 key (a ledger account and libp2p identity): with --out, write the
    /// secret to a new file (mode 0600) and print the public key; without, print both.
    New {
        /// The file for the secret key (hex seed, as `node.key` and the testnet's client keys);
        /// an existing file is never overwritten.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

fn default_data_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".paychan")
}

fn main() {
    let json_asked = std::env::args_os().any(|a| a == "--json");
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind as K;
            let shown = matches!(
                e.kind(),
                K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand
            );
            if json_asked && !shown {
                // The message is clap's first paragraph (a list of missing arguments is
                // indented under it), without the usage and help lines that follow.
                let text = e.render().to_string();
                let paragraph: Vec<&str> = text
                    .lines()
                    .map(str::trim)
                    .take_while(|l| !l.is_empty())
                    .collect();
                let first = paragraph.first().copied().unwrap_or("");
                let first = first.strip_prefix("error: ").unwrap_or(first);
                let message = match &paragraph[1.min(paragraph.len())..] {
                    [] => first.to_owned(),
                    rest => format!("{} {}", first, rest.join(", ")),
                };
                let err = CliError::new("usage", message);
                println!("{}", err.to_json());
                std::process::exit(err.exit_code());
            }
            e.exit()
        }
    };
    let json_out = cli.json;
    if let Err(e) = run(cli) {
        std::process::exit(report_error(json_out, &e));
    }
}

fn run(cli: Cli) -> Result<()> {
    // `--data-dir` is global so that it may come anywhere; where it does nothing it is refused
    // rather than silently ignored (testnet commands take `--dir`, a client `--key`).
    let ignores_data_dir = match &cli.command {
        Command::Testnet { .. } => Some("testnet commands take --dir"),
        Command::Client(_) => Some("a client runs no node: it takes --key"),
        Command::Key { .. } => Some("key new writes where --out says"),
        _ => None,
    };
    if let (Some(why), Some(_)) = (ignores_data_dir, &cli.data_dir) {
        if std::env::var_os("PAYCHAN_DATA_DIR").is_none() {
            return Err(CliError::new("usage", format!("--data-dir does nothing here ({why})")).into());
        }
    }
    let dir = DataDir::new(cli.data_dir.clone().unwrap_or_else(default_data_dir));
    if ignores_data_dir.is_none() {
        if let Ok(genesis) = dir.genesis() {
            paychan::output::set_unit(&genesis.unit);
        }
    }
    match cli.command {
        Command::Key {
            command: KeyCommand::New { out },
        } => {
            let kp = Keypair::generate();
            let public = kp.public().to_hex();
            let peer_id = paychan_net::peer_id_from_public_key(&kp.public()).map(|p| p.to_string());
            match out {
                Some(path) => {
                    paychan::config::write_private(&path, hex::encode(kp.seed()).as_bytes()).map_err(
                        |e| {
                            CliError::new(
                                "refused",
                                format!("{e:#} (an existing file is never overwritten)"),
                            )
                        },
                    )?;
                    output(
                        cli.json,
                        json!({"public_key": public, "peer_id": peer_id, "secret_key_file": path.display().to_string()}),
                        |v| {
                            format!(
                                "public key: {}\npeer id:    {}\nsecret key written to {} (mode 0600)",
                                s(&v["public_key"]),
                                s(&v["peer_id"]),
                                s(&v["secret_key_file"])
                            )
                        },
                    );
                }
                None => output(
                    cli.json,
                    json!({"public_key": public, "peer_id": peer_id, "secret_key": hex::encode(kp.seed())}),
                    |v| {
                        format!("public key: {}\npeer id:    {}\nsecret key: {}\n(keep the secret key private; `--out FILE` writes it to a 0600 file instead)",
                                s(&v["public_key"]), s(&v["peer_id"]), s(&v["secret_key"]))
                    },
                ),
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
            let root = dir.root().display().to_string();
            let next = format!("paychan run --data-dir {root}");
            output(
                cli.json,
                json!({"data_dir": root, "account": kp.public().to_hex(),
                       "peer_id": paychan_net::peer_id_from_public_key(&kp.public()).map(|p| p.to_string()),
                       "chain_id": genesis.chain_id().to_hex(), "next": next}),
                |v| {
                    format!(
                        "initialised {}\npeer id:  {}\naccount:  {}\nchain id: {}\nnext:     {}",
                        s(&v["data_dir"]),
                        s(&v["peer_id"]),
                        s(&v["account"]),
                        s(&v["chain_id"]),
                        s(&v["next"])
                    )
                },
            );
        }
        Command::Run { log_format } => {
            init_tracing(log_format);
            let rt = runtime()?;
            rt.block_on(until_signal(|stop_rx| daemon::run(dir, stop_rx)))?;
        }
        Command::Info => commands::info(&ApiClient::from_data_dir(&dir)?, cli.json)?,
        Command::Connect { addr } => {
            let api = ApiClient::from_data_dir(&dir)?;
            let mut v = api.post("peers", &json!({"addr": addr}))?;
            let mut config = dir.config()?;
            let remembered = !config.bootstrap.contains(&addr);
            if remembered {
                config.bootstrap.push(addr.clone());
                dir.write_config(&config)?;
            }
            v["remembered"] = json!(true);
            output(cli.json, v, |v| {
                format!(
                    "connected to {}{}",
                    s(&v["peer_id"]),
                    if remembered {
                        format!("; added to {} (bootstrap)", dir.config_path().display())
                    } else {
                        "; already in config.toml (bootstrap)".to_owned()
                    }
                )
            });
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
            rt.block_on(until_signal(|stop_rx| daemon::run_with(dir, config, stop_rx)))?;
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
                    "channel {} closed: paid {} in {} payments ({} payments/s); balance {} -> {}; {} transactions proven in witnessed checkpoints",
                    s(&v["channel_id"]), amount_text(&v["paid"]), grouped(v["payments"].as_u64().unwrap_or(0)),
                    grouped(v["per_second"].as_f64().unwrap_or(0.0).round() as u64),
                    amount_text(&v["balance_before"]), amount_text(&v["balance_after"]), v["verified_txs"]
                ) + &client::alarm_lines(v)
            });
        }
        Command::Channel { command } => channel(&dir, cli.json, command)?,
        Command::Credit { command } => paychan::credit_cmd::run(&dir, cli.json, command)?,
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
                test_challenge_period_ms,
                force,
            } => {
                let rows = testnet::up(
                    &dir,
                    &testnet::UpOptions {
                        nodes,
                        test_drop_updates,
                        test_equivocate,
                        test_double_block,
                        test_clock_ahead_ms,
                        test_challenge_period_ms,
                        force,
                    },
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
        LedgerCommand::Tx { tx_id } => commands::tx(&ApiClient::from_data_dir(dir)?, json_out, &tx_id)?,
        LedgerCommand::Transfer {
            to,
            amount,
            wait,
            wait_secs,
        } => {
            let api = ApiClient::from_data_dir(dir)?;
            let to = commands::resolve_party(dir, Some(&api), &to)?.to_hex();
            let mut v = api.post("transfer", &json!({"to": to, "amount": amount}))?;
            if wait {
                if !json_out {
                    paychan::output::print_line(&format!(
                        "submitted {} ({})",
                        s(&v["tx_id"]),
                        s(&v["status"])
                    ));
                }
                let id = s(&v["tx_id"]).to_owned();
                let done = commands::wait_tx(&api, json_out, &id, std::time::Duration::from_secs(wait_secs))
                    .map_err(|e| paychan::output::with_done(e, json!({"tx_id": id, "submitted": true})))?;
                v["height"] = done["height"].clone();
                v["witnessed"] = json!(true);
                v["status"] = done["status"].clone();
            }
            v["amount_total"] = json!(amount);
            output(json_out, v, |v| {
                if wait {
                    format!(
                        "transferred {} to {}: witnessed in block {}",
                        amount_text(&json!(amount)),
                        to,
                        v["height"]
                    )
                } else {
                    format!(
                        "submitted {} ({}): {} to {}",
                        s(&v["tx_id"]),
                        s(&v["status"]),
                        amount_text(&json!(amount)),
                        to
                    )
                }
            });
        }
        LedgerCommand::Status => {
            let v = reader()?.get("ledger/status")?;
            output(json_out, v, |v| {
                format!(
                    "chain id:   {}\nunit:       {} ({})\nheight:     {}\ntime:       {}\nblock hash: {}\nstate root: {}\nlog:        {} txs, root {}\npending:    {}\nsupply:     {}",
                    s(&v["chain_id"]), s(&v["unit"]["name"]), s(&v["unit"]["symbol"]), v["height"],
                    v["time_ms"].as_u64().map(time_text).unwrap_or_else(|| "?".into()),
                    s(&v["block_hash"]), s(&v["state_root"]),
                    v["log_size"], s(&v["log_root"]), v["pending"], amount_text(&v["supply"])
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
                    "{:>7}  {:<64}  {:<23}  {:>4}",
                    "HEIGHT", "HASH", "TIME", "TXS"
                )];
                for b in v.as_array().into_iter().flatten() {
                    out.push(format!(
                        "{:>7}  {:<64}  {:<23}  {:>4}",
                        b["height"].to_string(),
                        s(&b["hash"]),
                        b["time_ms"].as_u64().map(time_text).unwrap_or_else(|| "?".into()),
                        b["txs"].as_array().map(Vec::len).unwrap_or(0)
                    ));
                }
                out.join("\n")
            });
        }
        LedgerCommand::Balance { account } => {
            let key = match account {
                Some(a) => commands::resolve_party(dir, ApiClient::from_data_dir(dir).ok().as_ref(), &a)?,
                None => dir.keypair()?.public(),
            };
            let v = reader()?.get(&format!("accounts/{}", key.to_hex()))?;
            output(json_out, v, |v| {
                format!(
                    "{}  balance {}  nonce {}",
                    s(&v["account"]),
                    amount_text(&v["balance"]),
                    v["nonce"]
                )
            });
        }
    }
    Ok(())
}

fn channel(dir: &DataDir, json_out: bool, command: ChannelCommand) -> Result<()> {
    let api = ApiClient::from_data_dir(dir)?;
    match command {
        ChannelCommand::Open {
            peer,
            deposit,
            their_deposit,
        } => {
            let peer = commands::resolve_party(dir, Some(&api), &peer)?.to_hex();
            let v = api.post(
                "channels",
                &json!({"peer": peer, "deposit": deposit, "their_deposit": their_deposit}),
            )?;
            output(json_out, v, |v| {
                format!(
                    "channel {} is open: {} locked by this node, {} by the peer",
                    s(&v["channel_id"]),
                    amount_text(&json!(deposit)),
                    amount_text(&json!(their_deposit))
                )
            });
        }
        ChannelCommand::List => {
            let v = api.get("channels")?;
            let names = commands::testnet_parties(dir);
            output(json_out, v, |v| channel_table(v, &names));
        }
        ChannelCommand::Pay {
            channel,
            amount,
            count,
            memo,
            per_proof,
        } => commands::pay(&api, json_out, &channel, amount, count, memo, per_proof)?,
        ChannelCommand::Payments {
            channel,
            from_seq,
            limit,
        } => {
            let channel = commands::resolve_channel(&api, &channel)?;
            let v = api.get(&format!(
                "channels/{channel}/payments?from_seq={from_seq}&limit={limit}"
            ))?;
            output(json_out, v, |v| {
                let mut out = vec![format!(
                    "{:>12}  {:>5}  {:>12}  REFERENCE",
                    "SEQ", "INDEX", "AMOUNT"
                )];
                for p in v.as_array().into_iter().flatten() {
                    out.push(format!(
                        "{:>12}  {:>5}  {:>12}  {}",
                        p["seq"].to_string(),
                        p["index"].to_string(),
                        amount_text(&p["amount"]),
                        s(&p["reference"])
                    ));
                }
                out.join("\n")
            });
        }
        ChannelCommand::Close {
            channel,
            force,
            no_wait,
        } => commands::close(&api, json_out, &channel, force, no_wait)?,
    }
    Ok(())
}

/// `channel list` as a table. Once paid out, BALANCE is the ledger's payout; EXPECTED is the
/// off-chain balance and SHORTFALL what the ledger paid less than it ("-" before). PROOFS is
/// the newest seq sent and received; PAYMENTS counts since the node started (a proof carries 1
/// to 64 payments).
fn channel_table(v: &Value, names: &[commands::Party]) -> String {
    let mut out = vec![format!(
        "{:<16}  {:<16}  {:<13}  {:>12}  {:>12}  {:>12}  {:>12}  {:>12}  {:>15}  {:>17}  {}",
        "CHANNEL",
        "COUNTERPARTY",
        "STATUS",
        "CAPACITY",
        "BALANCE",
        "THEIRS",
        "EXPECTED",
        "SHORTFALL",
        "PROOFS OUT/IN",
        "PAYMENTS OUT/IN",
        "WINDOW"
    )];
    let or_dash = |v: &Value| {
        if v.is_u64() {
            amount_text(v)
        } else {
            "-".to_string()
        }
    };
    let mut any_shortfall = false;
    let rows = v.as_array().map(Vec::as_slice).unwrap_or(&[]);
    for c in rows {
        any_shortfall |= c["shortfall"].as_u64().is_some_and(|n| n > 0);
        let capacity = c["deposit"]
            .as_u64()
            .unwrap_or(0)
            .saturating_add(c["their_deposit"].as_u64().unwrap_or(0));
        let window = match (c["window_end_ms"].as_u64(), c["ledger_time_ms"].as_u64()) {
            (Some(end), Some(now)) => format!(
                "ends {} (in {})",
                time_text(end),
                paychan::output::duration_text(end.saturating_sub(now))
            ),
            _ => String::new(),
        };
        let named = names.iter().find(|p| p.account.to_hex() == s(&c["counterparty"]));
        let party = if let Some(p) = named {
            p.name.clone()
        } else if c["counterparty_peer_id"].is_string() {
            short(&c["counterparty_peer_id"])
        } else {
            short(&c["counterparty"])
        };
        out.push(format!(
            "{:<16}  {:<16}  {:<13}  {:>12}  {:>12}  {:>12}  {:>12}  {:>12}  {:>15}  {:>17}  {}",
            short(&c["id"]),
            party,
            s(&c["status"]),
            amount_text(&json!(capacity)),
            amount_text(&c["balance"]),
            amount_text(&c["their_balance"]),
            or_dash(&c["expected"]),
            or_dash(&c["shortfall"]),
            format!("{}/{}", c["newest_seq_sent"], c["newest_seq_received"]),
            format!("{}/{}", c["payments_sent"], c["payments_received"]),
            window
        ));
    }
    if any_shortfall {
        out.push("warning: the ledger paid out less than this node's off-chain balance".into());
    }
    out.push(format!(
        "{} channel(s); ids may be given by a unique prefix",
        grouped(rows.len() as u64)
    ));
    out.join("\n")
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p=warn,yamux=error"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
}

/// Runs the daemon `run` makes with a stop signal that turns true at SIGINT or SIGTERM.
async fn until_signal<F, Fut>(run: F) -> Result<()>
where
    F: FnOnce(tokio::sync::watch::Receiver<bool>) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = stop_tx.send(true);
    });
    run(stop_rx).await
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
