//! The paychan node as a library; the `paychan` binary (`main.rs`) is its command line.
//!
//! ## Layout
//! - [`config`]: the data dir and `config.toml`.
//! - [`node`]: the running node's logic: store, ledger replica, network, sequencer, witness.
//! - [`replica`]: the one owner of the ledger replica, and the event it publishes per block.
//! - [`daemon`]: `paychan run`: composes the node with its control API and public endpoints.
//! - [`api`]: the HTTP control API; [`public`]: the public read endpoints.
//! - [`http`]: the CLI's client of the control API.
//! - [`testnet`]: local multi-process testnets; [`demo`]: the self-checking demo on one
//!   ([`demo_site`]: its pay-per-use part).
//! - [`audit_cmd`]: `ledger export`, `ledger keys` and `audit` (the auditor's commands);
//!   [`ledger_source`]: where those read a ledger (a store, raw HTTP routes, a p2p peer).
//! - [`client`]: `paychan client`, a channel party that runs no node; [`offline`]: the ledger
//!   of a stopped node, read from its data dir.
//! - [`commands`]: the CLI's multi-step commands on a running node (info, pay, close);
//!   [`output`]: printing for the CLI, its error codes and exit codes.
//! - [`gateway`]: the HTTP 402 gateway in front of a web service, paid through channels;
//!   [`fetch`]: `paychan fetch` and [`fetch::PaidHttpClient`], the client that pays it.
//! - [`evidence`]: censorship evidence a witness keeps.
//!
//! Dependencies point one way: `daemon` → `api`/`public` → `node` → `replica`; nothing below
//! `daemon` knows the HTTP layers.

pub mod api;
pub mod audit_cmd;
pub mod client;
pub mod commands;
pub mod config;
pub mod credit_cmd;
pub mod credit_policy;
pub mod daemon;
pub mod demo;
pub mod demo_credit;
pub mod demo_site;
pub mod evidence;
pub mod explorer;
pub mod fetch;
pub mod gateway;
pub mod http;
pub mod ledger_source;
pub mod metrics;
pub mod node;
pub mod offline;
pub mod output;
pub mod public;
pub mod replica;
pub mod resubmit;
pub mod testnet;
