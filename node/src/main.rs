//! The `paychan` binary: command-line interface of a paychan node.
//!
//! For now it offers key generation and the version; the node itself (networking, storage,
//! control API, testnet) is built on the pure crates in later steps.

use clap::{Parser, Subcommand};
use paychan_protocol::Keypair;

#[derive(Debug, Parser)]
#[command(name = "paychan", version, about = "A payment channel node")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Key management.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
}

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Generate a new ed25519 key (a ledger account and libp2p identity) and print it.
    New {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Key { command: KeyCommand::New { json } } => {
            let kp = Keypair::generate();
            let public = kp.public().to_hex();
            let secret = hex::encode(kp.seed());
            if json {
                println!("{{\"public_key\":\"{public}\",\"secret_key\":\"{secret}\"}}");
            } else {
                println!("public key: {public}");
                println!("secret key: {secret}");
            }
        }
    }
    Ok(())
}
